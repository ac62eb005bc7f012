"""The notebooks in ``notebooks/``: stored clean, execute top to bottom, and serve with ``panel serve``.

Execution uses nbclient with the ``python3`` kernel, ``PANEL_INLINE=true``
(no CDN), a timeout per cell, and two cells appended by the test: an
``await asyncio.sleep(...)`` that lets periodic callbacks and run threads work,
and a check that no Experiment recorded an error (then closes them all).

The serving test starts ``panel serve notebooks/01_lab_dashboards.ipynb`` on a
free loopback port and opens it in headless Chromium with Playwright. It is
skipped when Chromium or Playwright are missing, except when the ``CI``
environment variable is set, where that is a failure.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from pathlib import Path

import pytest
from conftest import CHROME_ARGS, require_browser, serving

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
DASHBOARD_NOTEBOOK = NOTEBOOK_DIR / "01_lab_dashboards.ipynb"
CELL_TIMEOUT_S = 120

SLEEP_CELL = "import asyncio\nawait asyncio.sleep(1.5)"
CHECK_CELL = """\
import gc
from snnlab.lab import Experiment
_experiments = [o for o in gc.get_objects() if isinstance(o, Experiment)]
_errors = {type(e).__name__: e.error for e in _experiments if e.error is not None}
for _e in _experiments:
    _e.close()
assert not _errors, _errors
print("experiments checked:", len(_experiments))
"""


def _ids(paths: list[Path]) -> list[str]:
    return [p.stem for p in paths]


def _read(path: Path):
    nbformat = pytest.importorskip("nbformat")
    return nbformat.read(path, as_version=4)


def test_dashboard_notebook_exists():
    assert DASHBOARD_NOTEBOOK in NOTEBOOKS, f"missing {DASHBOARD_NOTEBOOK}"
    assert len(NOTEBOOKS) >= 1


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_notebook_is_stored_without_outputs(path: Path):
    nb = _read(path)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        assert cell.get("outputs", []) == [], f"{path.name} cell {i} has stored outputs"
        assert cell.get("execution_count") is None, f"{path.name} cell {i} has an execution count"
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_notebook_uses_public_api_only(path: Path):
    nb = _read(path)
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    private = re.findall(r"snnlab(?:\.\w+)*\._\w+|from snnlab[\w.]* import[^\n]*\b_\w+", code)
    assert not private, f"{path.name} uses private names: {private}"
    modules = set(re.findall(r"(?:from|import)\s+(snnlab[\w.]*)", code))
    allowed = ("snnlab.lab", "snnlab.viz", "snnlab.dashboards")
    outside = {m for m in modules if m != "snnlab" and not m.startswith(allowed)}
    engine = {"snnlab.neuron", "snnlab.encoding", "snnlab.learning", "snnlab.functional", "snnlab.surrogate"}
    assert outside <= engine, f"{path.name} imports {outside - engine}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_notebook_executes_top_to_bottom(path: Path, monkeypatch: pytest.MonkeyPatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    monkeypatch.setenv("PANEL_INLINE", "true")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = _read(path)
    n_cells = len(nb.cells)
    nb.cells.append(nbformat.v4.new_code_cell(SLEEP_CELL))
    nb.cells.append(nbformat.v4.new_code_cell(CHECK_CELL))
    client = nbclient.NotebookClient(
        nb,
        timeout=CELL_TIMEOUT_S,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOK_DIR)}},
    )
    client.execute()
    errors = []
    for i, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []):
            if out.output_type == "error":
                errors.append((i, out.ename, out.evalue))
            elif out.output_type == "stream" and out.name == "stderr" and "Traceback" in out.text:
                errors.append((i, "stderr", out.text[-500:]))
    assert not errors, f"{path.name}: {errors}"
    check_out = "".join(o.get("text", "") for o in nb.cells[-1].outputs if o.output_type == "stream")
    assert "experiments checked:" in check_out
    # every code cell of the stored notebook ran
    ran = [c for c in nb.cells[:n_cells] if c.cell_type == "code" and c.source.strip()]
    assert all(c.execution_count is not None for c in ran)


def _dashboard_notebook_shows_panel_objects():
    nb = _read(DASHBOARD_NOTEBOOK)
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    return ".servable(" in code


def test_dashboard_notebook_marks_servable_content():
    assert _dashboard_notebook_shows_panel_objects(), "01_lab_dashboards must mark what panel serve shows"


# ---------------------------------------------------------------- panel serve + headless chromium
# true once some model of the page's Bokeh documents carries the text (Markdown, HTML, Div, titles)
HAS_TEXT = """(text) => window.Bokeh && Bokeh.documents.some(
    (doc) => [...doc._all_models.values()].some(
        (m) => ["text", "object"].some((k) => typeof m[k] === "string" && m[k].includes(text))))"""

@pytest.fixture
def served_notebook(tmp_path: Path):
    pytest.importorskip("panel")
    from snnlab.dashboards.server import free_port

    port = free_port()
    log = tmp_path / "panel.log"
    pythonpath = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    env = dict(os.environ, PANEL_INLINE="true", PYTHONPATH=pythonpath)
    cmd = [
        sys.executable, "-m", "panel", "serve", str(DASHBOARD_NOTEBOOK),
        "--address", "127.0.0.1", "--port", str(port),
        "--allow-websocket-origin", f"127.0.0.1:{port}",
        "--check-unused-sessions", "1000", "--unused-session-lifetime", "1000",
    ]  # fmt: skip
    with serving(cmd, port, log, cwd=str(NOTEBOOK_DIR), env=env):
        yield f"http://127.0.0.1:{port}/{DASHBOARD_NOTEBOOK.stem}", log


def test_panel_serve_renders_dashboard_notebook(served_notebook):
    require_browser()
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium")
    url, log = served_notebook
    console_errors: list[str] = []
    outside: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=CHROME_ARGS)
        try:
            page = browser.new_page()

            def route(r):
                url = r.request.url
                host = url.split("/")[2].split(":")[0] if "://" in url else ""
                if url.startswith(("data:", "blob:")) or host in ("127.0.0.1", "localhost"):
                    r.continue_()
                else:
                    outside.append(url)
                    r.abort()

            page.route("**/*", route)
            page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: console_errors.append(str(e)))
            response = page.goto(url, wait_until="load", timeout=180_000)
            assert response is not None and response.ok, f"GET {url} -> {response and response.status}"
            page.wait_for_function("() => window.Bokeh && Bokeh.documents && Bokeh.documents.length > 0",
                                   timeout=90_000)  # fmt: skip
            page.wait_for_function(HAS_TEXT, arg="snnlab lab dashboards", timeout=120_000)
            page.wait_for_function(HAS_TEXT, arg="NeuronExplorer: one neuron", timeout=120_000)
            page.locator("canvas").first.wait_for(state="attached", timeout=120_000)
            n_roots = page.evaluate("() => Bokeh.documents[0].roots().length")
            assert n_roots >= 1
            page.wait_for_timeout(1500)  # let periodic callbacks stream a few frames
            log_while_open = log.read_text()[-4000:]  # closing the tab later may log closed-socket noise
        finally:
            browser.close()
    assert not console_errors, f"console errors: {console_errors}\nserver log:\n{log.read_text()[-4000:]}"
    assert not outside, f"requests outside 127.0.0.1: {outside}"
    assert "Traceback" not in log_while_open, log_while_open


def test_notebook_files_are_valid_json():
    for path in NOTEBOOKS:
        with path.open(encoding="utf-8") as fh:
            data = json.load(fh)
        assert data["nbformat"] == 4
