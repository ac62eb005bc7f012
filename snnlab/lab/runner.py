"""One background thread that steps every running :class:`~snnlab.lab.Experiment` of the process.

``Experiment.run()`` hands the experiment to the process-wide :data:`RUNNER`;
``pause()`` takes it back. The runner's thread goes round the running
experiments and gives each the steps its ``speed`` owes it:

.. math::

    \\text{debt} \\leftarrow \\min\\big(\\text{debt} + \\Delta t \\cdot \\text{speed},\\;
    \\max(1, \\text{speed} \\cdot 0.1\\,\\text{s})\\big)

and once ``debt`` reaches a batch (``max(1, speed · BATCH_S)`` steps) it takes
``floor(debt)`` steps under the experiment's lock, for at most
``LOCK_HOLD_S`` at a time, so a dashboard reading a frame never waits long.
An experiment that falls behind catches up at most 0.1 s of simulated time.

Why one thread for all: experiments in one process share the interpreter
lock. A server with ten browser tabs ran ten run threads that each woke up to
take a few steps; most of their CPU went into handing the interpreter lock
around (the raster app's step measured 550 µs of CPU per step with a thread
per experiment, 186 µs with one shared thread). With one thread the
experiments simply take turns, and when the machine cannot keep up they all
slow down alike.

The thread starts with the first running experiment and ends when none is
left. An exception raised by a step stops that experiment only: its message
and traceback go to ``experiment.error`` / ``error_traceback``.
"""

from __future__ import annotations

import threading
import time
import traceback
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from .experiment import Experiment

__all__ = ["BATCH_S", "LOCK_HOLD_S", "MAX_DEBT_S", "RUNNER", "Runner"]

LOCK_HOLD_S = 0.005  # longest time the runner holds one experiment's lock in one go
MAX_DEBT_S = 0.1  # a run that falls behind catches up at most this much simulated time
BATCH_S = 0.015  # a paced experiment is stepped at most this often, taking the steps due
_IDLE_WAIT_S = 0.05  # longest sleep of the thread (speed changes are picked up within it)
_RATE_WINDOW_S = 0.5  # steps/s is measured over windows of this length


class _Job:
    """Pacing state of one running experiment."""

    def __init__(self, experiment: Experiment) -> None:
        self.experiment = experiment
        self.stopped = False
        now = time.perf_counter()
        self.last = now
        self.debt = 0.0
        self.window_start = now
        self.window_steps = 0

    def advance(self, now: float) -> float:
        """Take the steps due at ``now``; returns seconds until the next batch is due (0: behind)."""
        exp = self.experiment
        speed = float(exp.speed)
        self.debt = min(self.debt + (now - self.last) * speed, max(1.0, speed * MAX_DEBT_S))
        self.last = now
        batch = max(1.0, speed * BATCH_S)
        if self.debt < batch:
            return (batch - self.debt) / speed
        todo = int(self.debt)
        done = 0
        deadline = now + LOCK_HOLD_S
        with exp.lock, torch.no_grad():
            while done < todo and not self.stopped and (done == 0 or time.perf_counter() < deadline):
                exp._step_one()
                done += 1
        self.debt -= done
        self.window_steps += done
        elapsed = time.perf_counter() - self.window_start
        if elapsed >= _RATE_WINDOW_S:
            exp._sps = self.window_steps / elapsed
            self.window_start, self.window_steps = time.perf_counter(), 0
        return 0.0 if done < todo else (batch - min(self.debt, batch)) / speed


class Runner:
    """Steps running experiments on one shared background thread (see the module docstring)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._jobs: dict[int, _Job] = {}
        self._current: _Job | None = None
        self._thread: threading.Thread | None = None

    def start(self, experiment: Experiment) -> None:
        """Start stepping ``experiment`` (no-op if it runs already)."""
        with self._cond:
            if id(experiment) in self._jobs:
                return
            self._jobs[id(experiment)] = _Job(experiment)
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="snnlab-runner", daemon=True)
                self._thread.start()
            self._cond.notify_all()

    def stop(self, experiment: Experiment) -> None:
        """Stop stepping ``experiment``; returns once no step of it is under way (no-op if not running).

        Called from a step of the experiment itself, it returns at once and
        the batch ends after that step.
        """
        with self._cond:
            job = self._jobs.pop(id(experiment), None)
            if job is None:
                return
            job.stopped = True
            if threading.current_thread() is not self._thread:
                while self._current is job:
                    self._cond.wait()
            experiment._sps = 0.0

    def is_running(self, experiment: Experiment) -> bool:
        """Whether ``experiment`` is being stepped."""
        return id(experiment) in self._jobs

    def running(self) -> int:
        """How many experiments are being stepped."""
        return len(self._jobs)

    def _loop(self) -> None:
        while True:
            with self._cond:
                jobs = list(self._jobs.values())
                if not jobs:
                    self._thread = None
                    return
            wake = _IDLE_WAIT_S
            behind = False
            for job in jobs:
                with self._cond:
                    if job.stopped:
                        continue
                    self._current = job
                try:
                    due = job.advance(time.perf_counter())
                except Exception as exc:  # shown to the person; this experiment stops, the others go on
                    exp = job.experiment
                    exp.error = f"{type(exc).__name__}: {exc}"
                    exp.error_traceback = traceback.format_exc()
                    with self._cond:
                        if self._jobs.get(id(exp)) is job:
                            del self._jobs[id(exp)]
                        job.stopped = True
                        exp._sps = 0.0
                    due = _IDLE_WAIT_S
                finally:
                    with self._cond:
                        self._current = None
                        self._cond.notify_all()
                behind = behind or due == 0.0
                wake = min(wake, due)
            if behind:
                time.sleep(0.0005)  # a batch was cut short: let readers take the experiments' locks
            elif wake > 0:
                with self._cond:
                    self._cond.wait(timeout=wake)  # start() and stop() wake the thread early


#: the process-wide runner that ``Experiment.run()`` / ``pause()`` use
RUNNER = Runner()
