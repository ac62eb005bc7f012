"""The user documentation stays accurate: every ```python block in docs/*.md runs as written."""

from __future__ import annotations

import gc
import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"
BLOCK = re.compile(r"```python\n(.*?)```", re.S)


def _blocks() -> list[tuple[str, int, str]]:
    out = []
    for path in sorted(DOCS.glob("*.md")):
        for i, code in enumerate(BLOCK.findall(path.read_text(encoding="utf-8"))):
            out.append((path.name, i, code))
    return out


BLOCKS = _blocks()


def test_docs_pages_exist():
    names = {p.name for p in DOCS.glob("*.md")}
    assert {"index.md", "lab.md", "engine.md"} <= names


def test_docs_link_to_existing_pages():
    for path in DOCS.glob("*.md"):
        for target in re.findall(r"\]\(([\w./-]+\.md)\)", path.read_text(encoding="utf-8")):
            assert (DOCS / target).exists(), f"{path.name} links to missing {target}"


@pytest.mark.parametrize(("page", "index", "code"), BLOCKS, ids=[f"{p}-{i}" for p, i, _ in BLOCKS])
def test_docs_code_block_runs(page: str, index: int, code: str):
    if "ipywidgets" in code:
        pytest.importorskip("ipywidgets")
        pytest.importorskip("jupyter_bokeh")
    if "snnlab.dashboards" in code:
        pytest.importorskip("panel")
    if "snnlab.viz" in code:
        pytest.importorskip("plotly")
    namespace: dict = {"__name__": f"docs_{page}_{index}"}
    try:
        exec(compile(code, f"{page}[block {index}]", "exec"), namespace)
    finally:
        from snnlab.lab import Experiment

        for obj in gc.get_objects():
            if issubclass(type(obj), Experiment):  # type(): no attribute lookup on lazy module proxies
                obj.close()
