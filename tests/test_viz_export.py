"""Exports: self-contained HTML (no CDN), atomic writes, optional static images."""

import json
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

from snnlab import viz
from snnlab.viz import export


def small_figure(title="Spike raster"):
    return viz.raster([0, 1, 2], [2, 0, 1], n_neurons=3, title=title)


def script_srcs(text):
    return re.findall(r"<script[^>]*\bsrc\s*=\s*[\"']?([^\"' >]+)", text, flags=re.IGNORECASE)


def test_export_html_is_self_contained(tmp_path):
    path = viz.export_html(small_figure(), tmp_path / "raster.html")
    assert path == tmp_path / "raster.html"
    text = path.read_text(encoding="utf-8")
    assert script_srcs(text) == []  # nothing fetched: no CDN, no local file
    assert "cdn.plot.ly/plotly" not in text.split("<body>")[0]
    assert len(text) > 1_000_000  # the plotly.js bundle is inlined
    assert text.count("Plotly.newPlot(") == 1
    assert "<title>Spike raster</title>" in text
    assert "displaylogo" in text
    assert [p.name for p in tmp_path.iterdir()] == ["raster.html"]  # no temporary file left behind


def test_export_html_several_figures_share_one_bundle(tmp_path):
    one = viz.export_html(small_figure(), tmp_path / "one.html").stat().st_size
    figs = [small_figure(), viz.weight_heatmap(np.eye(3)), viz.stdp_window([1.0], [0.1])]
    path = viz.export_html(figs, tmp_path / "all.htm", title="Report <1>")
    text = path.read_text(encoding="utf-8")
    assert text.count("Plotly.newPlot(") == 3
    assert path.stat().st_size < 1.2 * one
    assert "<title>Report &lt;1&gt;</title>" in text
    assert script_srcs(text) == []


def test_export_html_overwrites_atomically(tmp_path):
    target = tmp_path / "fig.html"
    target.write_text("old")
    viz.export_html(small_figure("new title"), str(target))
    assert "new title" in target.read_text(encoding="utf-8")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fig.html"]


def test_export_html_failed_write_leaves_old_file(tmp_path, monkeypatch):
    target = tmp_path / "fig.html"
    target.write_text("old")

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(export.os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        viz.export_html(small_figure(), target)
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fig.html"]


@pytest.mark.parametrize(
    ("fig", "path", "exc", "match"),
    [
        ("not a figure", "x.html", TypeError, "fig"),
        ([], "x.html", TypeError, "fig"),
        (None, "x.png", TypeError, "fig"),
        ("fig", "x.txt", ValueError, "path"),
        ("fig", "missing/x.html", ValueError, "path"),
        ("fig", 3, TypeError, "path"),
    ],
)
def test_export_html_rejects_bad_input(tmp_path, fig, path, exc, match):
    fig = small_figure() if fig == "fig" else fig
    path = tmp_path / path if isinstance(path, str) else path
    with pytest.raises(exc, match=match):
        viz.export_html(fig, path)


def test_export_image_without_kaleido_names_it(tmp_path, monkeypatch):
    monkeypatch.setattr(export, "kaleido_available", lambda: False)
    with pytest.raises(ImportError, match="kaleido"):
        viz.export_image(small_figure(), tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()
    with pytest.raises(ValueError, match="path"):
        viz.export_image(small_figure(), tmp_path / "x.html")


@pytest.mark.skipif(
    not viz.kaleido_available() or not (shutil.which("chromium") or shutil.which("google-chrome")),
    reason="static export needs kaleido and a Chromium",
)
def test_export_image_writes_png(tmp_path):
    path = viz.export_image(small_figure(), tmp_path / "raster.png", width=300, height=200, scale=1)
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == (300, 200)


def test_figures_render_without_a_server():
    fig = viz.membrane_traces([0, 1, 2], [0.0, 0.5, 1.2], threshold=1.0)
    payload = json.loads(fig.to_json())
    assert payload["data"][0]["type"] == "scatter"
    html = fig.to_html(include_plotlyjs=False, full_html=False)
    assert "Plotly.newPlot" in html


def test_viz_imports_no_server_or_widget_library():
    code = (
        "import sys, snnlab.viz\n"
        "bad = [m for m in ('panel', 'bokeh', 'ipywidgets', 'cupy') if m in sys.modules]\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
