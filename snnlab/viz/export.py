"""Write figures to files: self-contained HTML (works offline) and static images.

``export_html`` embeds the plotly.js bundle in the page (no CDN request), so
the file opens in a browser with no network. Several figures go into one
page with the bundle included once. Files are written atomically: to a
temporary file in the target folder, then renamed over ``path``, so a reader
never sees half a file.

``export_image`` (PNG, SVG, PDF, ...) needs the optional ``kaleido`` package
and a Chromium/Chrome it can drive.
"""

from __future__ import annotations

import html
import importlib.util
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import plotly.graph_objects as go
import plotly.io as pio

__all__ = ["PLOTLY_CONFIG", "export_html", "export_image", "kaleido_available"]

#: plotly.js config used in exported pages: no logo, responsive, PNG download at 2x.
PLOTLY_CONFIG: dict = {
    "displaylogo": False,
    "responsive": True,
    "toImageButtonOptions": {"format": "png", "scale": 2},
}


def _figures(fig: go.Figure | Sequence[go.Figure]) -> list[go.Figure]:
    figs = [fig] if isinstance(fig, go.Figure) else list(fig) if isinstance(fig, (list, tuple)) else None
    if not figs or not all(isinstance(f, go.Figure) for f in figs):
        raise TypeError(
            f"fig must be a plotly.graph_objects.Figure or a non-empty list of them, got {type(fig).__name__}"
        )
    return figs


def _target(path: str | os.PathLike, suffixes: tuple[str, ...] | None = None) -> Path:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}")
    target = Path(path)
    if not target.parent.is_dir():
        raise ValueError(f"path {str(target)!r}: folder {str(target.parent)!r} does not exist")
    if suffixes is not None and target.suffix.lower() not in suffixes:
        raise ValueError(f"path {str(target)!r} must end in one of {', '.join(suffixes)}")
    return target


def _write_atomic(target: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def export_html(
    fig: go.Figure | Sequence[go.Figure], path: str | os.PathLike, *, title: str | None = None
) -> Path:
    """Write ``fig`` (or several figures, one below the other) to a self-contained HTML page.

    The plotly.js bundle is inlined once (the page makes no network request).
    ``title`` is the page title (default: the first figure's title, else
    ``'snnlab figure'``). Returns the written path.
    """
    figs = _figures(fig)
    target = _target(path, (".html", ".htm"))
    if title is None:
        title = figs[0].layout.title.text or "snnlab figure"
    parts = [
        pio.to_html(
            f,
            full_html=False,
            include_plotlyjs=(i == 0),
            include_mathjax=False,
            config=PLOTLY_CONFIG,
            default_width="100%",
        )
        for i, f in enumerate(figs)
    ]
    page = (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(str(title))}</title>\n"
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        "<style>body{margin:16px;font-family:Helvetica,Arial,sans-serif}"
        ".snnlab-figure{margin-bottom:24px}</style>\n</head>\n<body>\n"
        + "\n".join(f'<div class="snnlab-figure">{part}</div>' for part in parts)
        + "\n</body>\n</html>\n"
    )
    _write_atomic(target, page.encode("utf-8"))
    return target


def kaleido_available() -> bool:
    """Whether the optional ``kaleido`` package (static image export) is installed."""
    return importlib.util.find_spec("kaleido") is not None


def export_image(
    fig: go.Figure,
    path: str | os.PathLike,
    *,
    scale: float = 2.0,
    width: int | None = None,
    height: int | None = None,
) -> Path:
    """Write ``fig`` as a static image; the suffix picks the format (png, svg, pdf, jpg, webp).

    Needs ``kaleido`` (raises ``ImportError`` naming it otherwise). ``width``
    defaults to the figure's width or 900 px. Returns the written path.
    """
    (fig,) = _figures(fig)
    target = _target(path, (".png", ".svg", ".pdf", ".jpg", ".jpeg", ".webp"))
    if not kaleido_available():
        raise ImportError("export_image needs the optional package 'kaleido' (pip install kaleido)")
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not scale > 0:
        raise ValueError(f"scale must be a positive number, got {scale!r}")
    fmt = target.suffix.lower().lstrip(".").replace("jpg", "jpeg")
    data = pio.to_image(
        fig,
        format=fmt,
        scale=scale,
        width=width or fig.layout.width or 900,
        height=height or fig.layout.height,
    )
    _write_atomic(target, data)
    return target
