"""Packaging: version, lazy submodules, and no UI/GPU imports from the engine."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

import snnlab

ROOT = Path(__file__).resolve().parents[1]
ENGINE = ("base", "surrogate", "functional", "neuron", "kernels", "monitor", "encoding", "layer", "learning")


def test_version_matches_pyproject():
    match = re.search(r'^version = "([^"]+)"$', (ROOT / "pyproject.toml").read_text(), re.M)
    assert match and snnlab.__version__ == match.group(1)


def test_engine_imports_no_ui_or_cupy():
    code = (
        "import sys, snnlab\n"
        f"for name in {ENGINE!r}: getattr(snnlab, name)\n"
        "bad = sorted({m.split('.')[0] for m in sys.modules} & "
        "{'panel', 'bokeh', 'plotly', 'ipywidgets', 'cupy'})\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_unknown_attribute():
    with pytest.raises(AttributeError, match="nothing_here"):
        snnlab.nothing_here
