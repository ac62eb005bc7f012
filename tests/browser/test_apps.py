"""Every app in headless Chromium: loads cleanly, runs, reacts to sliders and buttons, stops on close.

Needs Python playwright and Debian's ``chromium``; skipped without them unless
the environment variable ``CI`` is set, in which case their absence fails.
"""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from conftest import CHROME_ARGS, require_browser

require_browser()
from playwright.sync_api import sync_playwright  # noqa: E402

APPS = ["neuron", "raster", "stdp-window", "stdp", "reward"]
#: the slider each app's test moves: (parameter, its label)
SLIDER = {"neuron": ("tau", "Tau"), "raster": ("v_threshold", "V threshold"),
          "stdp-window": ("tau_pre", "Tau pre"), "stdp": ("v_threshold", "V threshold"),
          "reward": ("tau", "Tau")}


def wait_until(predicate: Callable[[], Any], timeout: float = 30.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.2)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=shutil.which("chromium"), args=CHROME_ARGS)
        yield b
        b.close()


def _session(server: Any, app: str, known: set[int]) -> dict[str, Any] | None:
    for s in server.status()["sessions"]:
        if s["app"] == app and s["running"]:
            return s
    return None


def _status_t(page: Any) -> int:
    text = page.locator(".snnlab-status").first.inner_text()
    match = re.search(r"t = (\d+)", text)
    return int(match.group(1)) if match else -1


@pytest.mark.parametrize("app", APPS)
def test_app_in_browser(app: str, browser: Any, snnlab_server: Any) -> None:
    wait_until(lambda: all(s["app"] != app for s in snnlab_server.status()["sessions"]), 20,
               f"earlier {app} sessions to end")
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    errors: list[str] = []
    requests: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: requests.append(r.url))
    page.goto(f"{snnlab_server.url}/{app}", timeout=60_000)
    page.wait_for_selector(".snnlab-status", timeout=60_000)

    # the status line's simulated time advances
    t1 = wait_until(lambda: _status_t(page) > 0 and _status_t(page), 60, "the simulation to start")
    wait_until(lambda: _status_t(page) > t1, 30, "the status line's time to advance")
    session = wait_until(lambda: _session(snnlab_server, app, set()), 20, "the server-side session")

    # moving a slider with the keyboard changes the running experiment
    name, label = SLIDER[app]
    before = session["params"][name]
    group = page.locator(".bk-input-group").filter(
        has=page.locator(".bk-slider-title", has_text=re.compile(rf"^{label}:")))
    handle = group.locator(".noUi-handle").first
    handle.focus()
    for _ in range(5):
        handle.press("ArrowRight")
    changed = wait_until(
        lambda: (s := _session(snnlab_server, app, set())) and s["params"][name] != before and s, 20,
        f"{name} to change on the server")
    assert changed["params"][name] > before
    # the live scopes keep drawing frames, and the raster shows spikes where there are any
    scopes = page.evaluate("() => window.snnlabScopes || []")
    assert scopes and all(s["frames"] > 0 for s in scopes), scopes
    # and server frames reach the screen (counted in the animation frame after each one)
    shown = page.evaluate("() => window.snnlabFramesShown || 0")
    wait_until(lambda: page.evaluate("() => window.snnlabFramesShown || 0") > shown, 20,
               "more server frames to be shown")
    t2 = _status_t(page)
    wait_until(lambda: _status_t(page) > t2, 30, "the simulation to keep running after the change")
    # after its first frames the page gets its frames, and acknowledges them, on the frame socket
    session = _session(snnlab_server, app, set())
    acks, frames = session["ack_channels"], session["frame_channels"]
    assert set(acks) == {"socket"} and acks["socket"] > 0, acks
    assert frames.get("socket", 0) > frames.get("document", 0), frames
    # and every scope draws what arrives there: the step each one shows keeps moving
    def scope_steps() -> list[int]:
        return [s["t"] for s in page.evaluate("() => window.snnlabScopes || []")]

    shown_steps = scope_steps()
    wait_until(lambda: all(now > then for now, then in zip(scope_steps(), shown_steps)), 20,
               f"every scope to draw newer steps than {shown_steps}")

    if app == "reward":
        page.get_by_role("button", name="automatic reward").click()
        wait_until(lambda: _session(snnlab_server, app, set())["params"]["auto_reward"] is False, 20,
                   "auto_reward to switch off")
        time.sleep(1.0)
        before_w = _session(snnlab_server, app, set())["weights"]["weights"]["checksum"]
        for _ in range(5):
            page.get_by_role("button", name="Reward +1").click()
            time.sleep(0.2)
        wait_until(lambda: _session(snnlab_server, app, set())["weights"]["weights"]["checksum"] != before_w,
                   20, "the reward buttons to change the weights")

    assert errors == [], errors
    local = (f"{snnlab_server.url}/", f"ws://127.0.0.1:{snnlab_server.port}/", "data:", "blob:")
    outside = [u for u in requests if not u.startswith(local)]
    assert outside == [], outside

    # closing the tab stops its simulation thread
    page.close()
    wait_until(lambda: all(s["app"] != app for s in snnlab_server.status()["sessions"]), 20,
               "the closed tab's session to be destroyed")
    assert snnlab_server.status()["running_threads"] == 0
