"""Live-dashboard benchmark: the ``raster`` app in headless Chromium.

    python -m benchmarks.dashboard [--duration 60] [--tabs 10] [--tab-duration 20] [--out PATH]

Serves the ``raster`` app (``snnlab serve raster``: 1,000 LIF neurons fed by
Poisson inputs, a raster of the last 200 steps, 3 membrane traces, a 32×32
weight heatmap) in a subprocess and drives it from headless Chromium:

* frames/s: counted in the page (not the server's counter): server frames
  that reached an animation frame (``window.snnlabFramesShown``, counted by
  the acknowledgement script of :mod:`snnlab.dashboards.streaming`, which
  waits for the animation frame after each server frame);
* latency: a ``V threshold`` slider step with the keyboard, timed in the page
  from the key press to the animation frame after the membrane scope drew
  the threshold line at its new value (``thresholdAt`` in
  ``window.snnlabScopes``, see :mod:`snnlab.dashboards.scope`);
  p50 / p95 over the repeats;
* server memory: resident set size of the server process, sampled every 5 s
  over ``--duration`` seconds (growth = last sample − first sample after a
  10 s warm-up);
* ``--tabs`` concurrent tabs (each its own experiment): frames/s of each.

Targets (2-core machine): ≥ 30 frames/s, p95 ≤ 150 ms, memory growth ≤ 5 MB
over 10 minutes, 10 tabs ≥ 15 frames/s each. Prints a JSON report and writes
it to ``--out`` (default ``benchmarks/results/dashboard.json``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

CHROME_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
]

COUNTER_JS = """() => {
  // frames: window.snnlabFramesShown, counted by the dashboard's acknowledgement script in the
  // animation frame after each server frame (no animation-frame loop of its own here: one in
  // every tab would make Chromium run its rendering pipeline 60 times a second in each)
  const st = window.__snnlab_bench = window.__snnlab_bench || {};
  st.span = (window.snnlabScopes || []).find((s) => s.kind === 'traces' && s.threshold != null) || null;
  return st.span !== null;
}"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def _open(browser: Any, url: str) -> Any:
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(url, timeout=120_000)
    page.wait_for_selector(".snnlab-status", timeout=120_000)
    page.wait_for_function("() => window.Bokeh && Bokeh.documents.length > 0", timeout=60_000)
    page.wait_for_function(
        "() => (window.snnlabScopes || []).some((s) => s.kind === 'traces' && s.threshold != null)",
        timeout=60_000,
    )
    page.evaluate(COUNTER_JS)
    return page


def _frames(page: Any) -> int:
    return int(page.evaluate("() => window.snnlabFramesShown || 0"))


def _fps(pages: list[Any], seconds: float) -> list[float]:
    start = [_frames(p) for p in pages]
    t0 = time.monotonic()
    time.sleep(seconds)
    dt = time.monotonic() - t0
    return [(_frames(p) - s) / dt for p, s in zip(pages, start)]


def _latencies(page: Any, repeats: int) -> list[float]:
    import re

    group = page.locator(".bk-input-group").filter(
        has=page.locator(".bk-slider-title", has_text=re.compile(r"^V threshold:"))
    )
    handle = group.locator(".noUi-handle").first
    out = []
    for i in range(repeats):
        n_before = page.evaluate("() => window.__snnlab_bench.span.thresholdChanges")
        try:
            handle.focus(timeout=10_000)
            t_press = page.evaluate("() => performance.now()")
            handle.press("ArrowRight" if i % 2 == 0 else "ArrowLeft", timeout=10_000)
            page.wait_for_function(
                f"() => window.__snnlab_bench.span.thresholdChanges > {n_before}", timeout=10_000
            )
        except Exception:
            out.append(float("inf"))
            continue
        t_seen = page.evaluate("() => window.__snnlab_bench.span.thresholdAt")
        out.append(float(t_seen - t_press))
        time.sleep(0.3)
    return out


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[k]


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--duration", type=float, default=60.0, help="seconds of the single-tab run (600 = 10 min)"
    )
    parser.add_argument("--tabs", type=int, default=10, help="concurrent tabs in the second run (0 skips it)")
    parser.add_argument(
        "--tab-duration", type=float, default=20.0, help="seconds measured with all tabs open"
    )
    parser.add_argument("--latency-repeats", type=int, default=20)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "dashboard.json"))
    args = parser.parse_args(argv)

    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("benchmarks.dashboard needs the chromium executable")
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "snnlab", "serve", "raster", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/raster"
    report: dict[str, Any] = {
        "app": "raster (1000 LIF neurons, 200-step raster, 3 traces, 32x32 heatmap)",
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "load_average_at_start": os.getloadavg(),
        },
        "duration_s": args.duration,
    }
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=CHROME_ARGS)
            page = _open(browser, url)
            time.sleep(10.0)  # warm-up
            memory = [(0.0, _rss_mb(server.pid))]
            fps_samples = []
            t0 = time.monotonic()
            while time.monotonic() - t0 < args.duration:
                fps_samples.extend(_fps([page], 5.0))
                memory.append((round(time.monotonic() - t0, 1), _rss_mb(server.pid)))
            lat = _latencies(page, args.latency_repeats)
            report["single_tab"] = {
                "frames_per_s_mean": statistics.fmean(fps_samples),
                "frames_per_s_min_5s": min(fps_samples),
                "latency_ms_p50": _pct(lat, 0.5),
                "latency_ms_p95": _pct(lat, 0.95),
                "latency_ms_all": lat,
                "server_rss_mb": memory,
                "server_rss_growth_mb": memory[-1][1] - memory[0][1],
            }
            page.close()
            _write(report, args.out)  # keep the single-tab numbers if the tab run is interrupted
            if args.tabs > 0:
                pages = [_open(browser, url) for _ in range(args.tabs)]
                time.sleep(5.0)
                fps = _fps(pages, args.tab_duration)
                report["tabs"] = {
                    "count": args.tabs,
                    "frames_per_s_each": fps,
                    "min": min(fps),
                    "mean": statistics.fmean(fps),
                    "server_rss_mb": _rss_mb(server.pid),
                }
                for pg in pages:
                    pg.close()
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=20)
    print(_write(report, args.out))
    return report


def _write(report: dict[str, Any], out: str | None) -> str:
    text = json.dumps(report, indent=2)
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(text + "\n")
    return text


if __name__ == "__main__":
    main()
