"""Shared fixtures: a small stand-in experiment and a served ``snnlab serve`` process."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import param
import pytest


class ToyExperiment(param.Parameterized):
    """A tiny experiment that follows the ``snnlab.lab.Experiment`` contract (numpy only).

    ``n`` LIF neurons driven by Bernoulli input: ``v <- v + (I - v) / tau``,
    spike where ``v >= v_threshold``, then ``v <- v_reset``. Records spikes
    (layer ``'out'``), the first two membrane potentials (trace ``'v'``), one
    weight matrix ``'w'`` (changed by ``give_reward``), a reward series and
    one STDP-like point per step.
    """

    speed = param.Number(default=500.0, bounds=(1, 100_000), doc="steps per second while running")
    seed = param.Integer(default=0, bounds=(0, 2**31 - 1), doc="seed")
    tau = param.Number(default=5.0, bounds=(1.01, 100.0), doc="membrane time constant")
    v_threshold = param.Number(default=1.0, bounds=(0.1, 5.0), doc="threshold")
    v_reset = param.Number(default=0.0, bounds=(-5.0, 0.05), doc="reset")
    rate = param.Number(default=0.5, bounds=(0.0, 1.0), doc="input probability")
    auto_reward = param.Boolean(default=False, doc="reward automatically")
    size = param.Integer(default=6, constant=True, doc="neurons (structural)")

    dt = 1.0

    def __init__(self, n: int = 6, **params: Any) -> None:
        super().__init__(**params)
        self.n = n
        self.lock = threading.RLock()
        self.error: str | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.rewards: list[float] = []
        self.fail_next_step = False
        self.reset()

    # -- contract --------------------------------------------------------------------------
    def views(self) -> dict[str, Any]:
        return {
            "dt": self.dt,
            "raster": {"out": {"size": self.n, "label": "out"}},
            "traces": {"v": {"labels": ["v0", "v1"], "threshold": float(self.v_threshold), "label": "v"}},
            "weights": {"w": {"shape": (2, 4), "rf_shape": None, "label": "w", "vmin": -1.0, "vmax": 1.0}},
            "series": {"reward": {"labels": ["reward"], "label": "reward"}},
            "points": {"stdp": {"x_label": "dt", "y_label": "dw", "label": "stdp"}},
            "params": [p for p in self.param if p != "name"],
        }

    def theoretical_window(self, dts: np.ndarray) -> np.ndarray:
        dts = np.asarray(dts, dtype=np.float64)
        return np.where(dts >= 0, np.exp(-dts / self.tau), -np.exp(dts / self.tau))

    def reset(self) -> None:
        with self.lock:
            self.rng = np.random.default_rng(self.seed)
            self.t = 0
            self.v = np.zeros(self.n)
            self.w = np.zeros((2, 4), np.float32)
            self._w_dirty = True
            self._spikes: list[tuple[int, int]] = []
            self._trace: list[tuple[int, np.ndarray]] = []
            self._series: list[tuple[int, float]] = []
            self._points: list[tuple[float, float]] = []
            self.error = None

    def _advance(self) -> None:
        if self.fail_next_step:
            self.fail_next_step = False
            raise RuntimeError("boom in step")
        drive = (self.rng.random(self.n) < self.rate) * 3.0
        self.v = self.v + (drive - self.v) / self.tau
        fired = self.v >= self.v_threshold
        for i in np.flatnonzero(fired):
            self._spikes.append((self.t, int(i)))
        self.v[fired] = self.v_reset
        self._trace.append((self.t, self.v[:2].astype(np.float32)))
        r = 1.0 if (self.auto_reward and fired[0]) else 0.0
        self._series.append((self.t, r))
        self._points.append((float(self.t % 10 - 5), float(np.sin(self.t))))
        self.t += 1

    def step(self, n: int = 1) -> None:
        with self.lock:
            for _ in range(n):
                self._advance()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive() and not self._stop.is_set()

    def run(self) -> None:
        if self.running:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="toy-experiment")
        self._thread.start()

    def _loop(self) -> None:
        try:
            while not self._stop.is_set():
                self.step(1)
                self._stop.wait(1.0 / self.speed)
        except Exception as err:
            self.error = f"{type(err).__name__}: {err}"
            self._stop.set()

    def pause(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._thread = None

    def close(self) -> None:
        self.pause()

    def give_reward(self, value: float) -> None:
        with self.lock:
            self.rewards.append(float(value))
            self.w += np.float32(0.1 * value)
            self._w_dirty = True
            self._series.append((self.t, float(value)))

    def frame(self) -> dict[str, Any]:
        with self.lock:
            spikes, self._spikes = self._spikes, []
            trace, self._trace = self._trace, []
            series, self._series = self._series, []
            points, self._points = self._points, []
            weights = {}
            if self._w_dirty:
                weights["w"] = self.w.copy()
                self._w_dirty = False
            return {
                "t": self.t,
                "time_ms": self.t * self.dt,
                "spikes": {"out": (np.array([s for s, _ in spikes], np.int64),
                                   np.array([i for _, i in spikes], np.int32))},
                "traces": {"v": (np.array([s for s, _ in trace], np.int64),
                                 np.array([v for _, v in trace], np.float32).reshape(-1, 2))},
                "weights": weights,
                "series": {"reward": (np.array([s for s, _ in series], np.int64),
                                      np.array([v for _, v in series], np.float32))},
                "points": {"stdp": (np.array([x for x, _ in points], np.float32),
                                    np.array([y for _, y in points], np.float32))},
                "stats": {"steps_per_second": 0.0, "running": self.running, "error": self.error,
                          "dropped": 0},
            }


@pytest.fixture
def toy() -> Iterator[ToyExperiment]:
    exp = ToyExperiment()
    yield exp
    exp.close()


class FakeClock:
    """A settable monotonic clock for tests (``clock.now`` seconds)."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


#: Chromium flags of the browser tests (Debian's chromium, no network, no sandbox)
CHROME_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]


def require_browser(*commands: str) -> None:
    """Skip the calling test module when playwright, ``chromium`` or one of ``commands`` is missing.

    Under ``CI`` their absence is an error instead (CI installs them).
    """
    missing = []
    if importlib.util.find_spec("playwright") is None:
        missing.append("python playwright")
    for command in ("chromium", *commands):
        if shutil.which(command) is None:
            missing.append(f"the {command} command")
    if missing:
        if os.environ.get("CI"):
            raise RuntimeError(f"browser tests need {' and '.join(missing)} (CI is set, so this fails)")
        pytest.skip(f"browser tests need {' and '.join(missing)}", allow_module_level=True)


@contextlib.contextmanager
def serving(cmd: list[str], port: int, log: Path, timeout: float = 60.0, **popen: Any) -> Iterator[None]:
    """Start server ``cmd`` (output to ``log``), wait until it listens on ``port``; stop it afterwards."""
    name = " ".join(cmd[1:4])
    with open(log, "w") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, **popen)
        try:
            deadline = time.monotonic() + timeout
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"{name} exited early ({proc.returncode}): {log.read_text()}")
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                        break
                except OSError:
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"{name} did not listen on {port} within {timeout} s") from None
                    time.sleep(0.1)
            yield
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


class ServedApps:
    """A running ``snnlab serve`` subprocess on a free loopback port."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"

    def status(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.url}/snnlab/status.json", timeout=5) as r:
            return json.loads(r.read().decode())


@pytest.fixture(scope="session")
def snnlab_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedApps]:
    """``python -m snnlab serve --port <free>`` (all apps), stopped at the end of the session."""
    from snnlab.dashboards.server import free_port

    port = free_port()
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    cmd = [sys.executable, "-m", "snnlab", "serve", "--port", str(port), "--no-show"]
    with serving(cmd, port, log, env=dict(os.environ, PYTHONUNBUFFERED="1")):
        yield ServedApps(port)
