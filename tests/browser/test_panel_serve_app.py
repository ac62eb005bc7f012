"""An app file served with plain ``panel serve`` (no extra options) works offline.

The app module itself turns on inline resources, so the page, its scripts and
styles, and every later request stay on the loopback server. Needs Python
playwright and Debian's ``chromium`` (skipped without them unless ``CI`` is set).
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import CHROME_ARGS, require_browser, serving

require_browser("panel")
from playwright.sync_api import sync_playwright  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def served_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from snnlab.dashboards.server import free_port

    port = free_port()
    log = tmp_path_factory.mktemp("panel-serve") / "serve.log"
    env = {k: v for k, v in os.environ.items() if k not in ("PANEL_INLINE", "BOKEH_RESOURCES")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    cmd = [sys.executable, "-m", "panel", "serve", str(ROOT / "snnlab" / "apps" / "neuron.py"),
           "--port", str(port), "--address", "127.0.0.1", "--allow-websocket-origin", f"127.0.0.1:{port}"]
    with serving(cmd, port, log, env=env, cwd=ROOT):
        yield f"http://127.0.0.1:{port}"


def test_plain_panel_serve_app_is_offline_safe(served_app: str) -> None:
    requests: list[str] = []
    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=CHROME_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.on("request", lambda r: requests.append(r.url))
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(f"{served_app}/neuron", timeout=60_000)
            page.wait_for_selector(".snnlab-status", timeout=60_000)

            def t_now() -> int:
                match = re.search(r"t = (\d+)", page.locator(".snnlab-status").first.inner_text())
                return int(match.group(1)) if match else -1

            deadline = time.monotonic() + 30
            first = t_now()
            while t_now() <= max(first, 0):
                assert time.monotonic() < deadline, "the simulated time did not advance"
                time.sleep(0.2)
            # the Pause button's label is drawn with glyphs every font has (no emoji)
            assert page.get_by_role("button", name="Pause", exact=True).count() == 1
            page.close()
        finally:
            browser.close()
    port = served_app.rsplit(":", 1)[1]
    local = (f"{served_app}/", f"ws://127.0.0.1:{port}/", "data:", "blob:")
    outside = [u for u in requests if not u.startswith(local)]
    assert outside == [], outside
    assert errors == [], errors
