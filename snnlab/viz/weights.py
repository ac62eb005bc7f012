"""Synaptic weight views: the weight matrix as a heatmap, and receptive fields.

Weights use the ``torch.nn.Linear`` convention: ``w`` has shape
``[n_post, n_pre]`` and ``w[i, j]`` is the weight of the synapse from
presynaptic neuron ``j`` onto postsynaptic neuron ``i``.

A *receptive field* is row ``w[i]`` reshaped to the input image shape
``(h, w_img)``: pixel ``(r, c)`` of tile ``i`` is ``w[i, r * w_img + c]``
(row-major, as ``numpy.reshape``). Tiles are laid out left to right, top to
bottom, in a grid of ``cols`` columns with ``gap`` blank (NaN) pixels between
them, and drawn as one heatmap so a grid of hundreds of fields stays light.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go

from ._checks import check_dt, check_positive_int, check_same_length, index_array, real_array
from .style import DIVERGING_SCALE, SEQUENTIAL_SCALE, apply_layout

__all__ = [
    "color_range",
    "receptive_field_mosaic",
    "receptive_fields",
    "weight_heatmap",
    "weight_snapshots",
]


def color_range(w: np.ndarray) -> dict[str, Any]:
    """Colour scale settings for weights ``w``.

    Signed weights (some ``< 0`` and some ``> 0``) get the diverging scale,
    symmetric about 0 (``zmin = -zmax``) so white means zero; otherwise the
    sequential scale over ``[min, max]``.
    """
    finite = w[np.isfinite(w)]
    if finite.size == 0:
        return {"colorscale": SEQUENTIAL_SCALE}
    lo, hi = float(finite.min()), float(finite.max())
    if lo < 0.0 < hi:
        bound = max(-lo, hi)
        return {"colorscale": DIVERGING_SCALE, "zmin": -bound, "zmax": bound, "zmid": 0.0}
    if lo == hi:
        return {"colorscale": SEQUENTIAL_SCALE, "zmin": lo - 0.5, "zmax": hi + 0.5}
    return {"colorscale": SEQUENTIAL_SCALE, "zmin": lo, "zmax": hi}


def _scale(w: np.ndarray, colorscale: str | None, zrange: Sequence[float] | None) -> dict[str, Any]:
    settings = color_range(w)
    if colorscale is not None:
        settings["colorscale"] = colorscale
    if zrange is not None:
        z = real_array(zrange, "zrange", 1, finite=True)
        if z.shape != (2,) or not z[0] < z[1]:
            raise ValueError(f"zrange must be (zmin, zmax) with zmin < zmax, got {list(z)}")
        settings.update(zmin=float(z[0]), zmax=float(z[1]))
        settings.pop("zmid", None)
    return settings


def weight_heatmap(
    w: Any,
    *,
    pre_label: str = "presynaptic neuron",
    post_label: str = "postsynaptic neuron",
    colorscale: str | None = None,
    zrange: Sequence[float] | None = None,
    title: str | None = "Synaptic weights",
    height: int | None = None,
    width: int | None = None,
) -> go.Figure:
    """Heatmap of the weight matrix ``w`` (``[n_post, n_pre]``).

    Row ``i`` (drawn top to bottom, as the matrix is written) is the
    postsynaptic neuron, column ``j`` the presynaptic one; the heatmap's ``z``
    is ``w`` itself. ``zrange=(zmin, zmax)`` pins the colour scale (useful to
    compare snapshots); by default see :func:`color_range`.
    """
    z = real_array(w, "w", 2)
    fig = go.Figure(
        go.Heatmap(
            z=z,
            colorbar={"title": {"text": "w"}, "thickness": 14},
            hovertemplate=f"{pre_label} %{{x}}<br>{post_label} %{{y}}<br>w = %{{z:.4g}}<extra></extra>",
            hoverongaps=False,
            **_scale(z, colorscale, zrange),
        )
    )
    apply_layout(fig, title=title, height=height, width=width, showlegend=False)
    fig.update_xaxes(title_text=f"{pre_label} index", showgrid=False)
    fig.update_yaxes(title_text=f"{post_label} index", autorange="reversed", showgrid=False)
    return fig


def _image_shape(image_shape: Any, n_pre: int) -> tuple[int, int]:
    if isinstance(image_shape, (int, np.integer)) or not isinstance(image_shape, Sequence):
        raise TypeError(
            f"image_shape must be a (height, width) pair of positive integers, got {image_shape!r}"
        )
    if len(image_shape) != 2:
        raise ValueError(f"image_shape must be (height, width), got {tuple(image_shape)!r}")
    h = check_positive_int(image_shape[0], "image_shape[0]")
    wd = check_positive_int(image_shape[1], "image_shape[1]")
    if h * wd != n_pre:
        raise ValueError(
            f"image_shape {(h, wd)} holds {h * wd} pixels but w has {n_pre} presynaptic inputs per row; "
            "height * width must equal w.shape[1]"
        )
    return h, wd


def receptive_field_mosaic(
    w: Any,
    image_shape: Sequence[int],
    *,
    neurons: Sequence[int] | None = None,
    cols: int | None = None,
    gap: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """Lay the receptive fields of ``neurons`` (default: all rows of ``w``) out in a grid.

    Returns ``(mosaic, owner)``: ``mosaic`` is float64 of shape
    ``(rows * (h + gap) - gap, cols * (w_img + gap) - gap)`` with tile ``t``
    (neuron ``neurons[t]``) at rows ``(t // cols) * (h + gap) + [0, h)`` and
    columns ``(t % cols) * (w_img + gap) + [0, w_img)``, NaN elsewhere;
    ``owner`` has the same shape and holds each pixel's neuron index (-1 in gaps).
    ``cols`` defaults to ``ceil(sqrt(len(neurons)))``.
    """
    z = real_array(w, "w", 2)
    h, wd = _image_shape(image_shape, z.shape[1])
    if neurons is None:
        idx = np.arange(z.shape[0], dtype=np.int64)
    else:
        idx = index_array(neurons, "neurons", upper=z.shape[0], upper_name="w.shape[0]")
    if len(idx) == 0:
        raise ValueError("neurons must select at least one row of w, got none")
    if isinstance(gap, bool) or not isinstance(gap, (int, np.integer)) or gap < 0:
        raise ValueError(f"gap must be a non-negative integer number of pixels, got {gap!r}")
    n = len(idx)
    cols = check_positive_int(cols, "cols", allow_none=True) or math.ceil(math.sqrt(n))
    cols = min(cols, n)
    rows = math.ceil(n / cols)
    mosaic = np.full((rows * (h + gap) - gap, cols * (wd + gap) - gap), np.nan)
    owner = np.full(mosaic.shape, -1, dtype=np.int64)
    for t, neuron in enumerate(idx):
        r0 = (t // cols) * (h + gap)
        c0 = (t % cols) * (wd + gap)
        mosaic[r0 : r0 + h, c0 : c0 + wd] = z[neuron].reshape(h, wd)
        owner[r0 : r0 + h, c0 : c0 + wd] = neuron
    return mosaic, owner


def receptive_fields(
    w: Any,
    image_shape: Sequence[int],
    *,
    neurons: Sequence[int] | None = None,
    cols: int | None = None,
    gap: int = 1,
    max_fields: int = 256,
    colorscale: str | None = None,
    zrange: Sequence[float] | None = None,
    title: str | None = "Receptive fields",
    height: int | None = None,
    width: int | None = None,
) -> go.Figure:
    """Grid of receptive fields: each postsynaptic neuron's weights as an image.

    ``w`` is ``[n_post, h * w_img]``; ``image_shape = (h, w_img)``. At most
    ``max_fields`` neurons are shown (the first ones, unless ``neurons`` picks
    them); the layout is :func:`receptive_field_mosaic`'s. All tiles share one
    colour scale so fields can be compared; hovering a pixel shows its neuron,
    its pixel coordinates and its weight. Pixels are square and the image's
    first row is at the top.
    """
    z = real_array(w, "w", 2)
    max_fields = check_positive_int(max_fields, "max_fields")
    heading = title
    if neurons is None:
        neurons = np.arange(min(z.shape[0], max_fields))
        if title and len(neurons) < z.shape[0]:
            heading = f"{title} (first {len(neurons)} of {z.shape[0]})"
    else:
        neurons = index_array(neurons, "neurons", upper=z.shape[0], upper_name="w.shape[0]")
    if len(neurons) > max_fields:
        raise ValueError(f"neurons selects {len(neurons)} fields, more than max_fields={max_fields}")
    mosaic, owner = receptive_field_mosaic(z, image_shape, neurons=neurons, cols=cols, gap=gap)
    h, wd = int(image_shape[0]), int(image_shape[1])
    pix_r = np.arange(mosaic.shape[0])[:, None] % (h + gap) + np.zeros(mosaic.shape[1], dtype=np.int64)
    pix_c = np.zeros(mosaic.shape[0], dtype=np.int64)[:, None] + np.arange(mosaic.shape[1]) % (wd + gap)
    custom = np.stack([owner, pix_r, pix_c], axis=-1)
    fig = go.Figure(
        go.Heatmap(
            z=mosaic,
            customdata=custom,
            colorbar={"title": {"text": "w"}, "thickness": 14},
            hovertemplate=(
                "neuron %{customdata[0]}<br>pixel (row %{customdata[1]}, col %{customdata[2]})"
                "<br>w = %{z:.4g}<extra></extra>"
            ),
            hoverongaps=False,
            **_scale(mosaic, colorscale, zrange),
        )
    )
    rows_px, cols_px = mosaic.shape
    if height is None:
        height = int(min(900, max(260, 60 + 320 * rows_px / max(cols_px, 1))))
    apply_layout(fig, title=heading, height=height, width=width, showlegend=False)
    fig.update_xaxes(showticklabels=False, ticks="", showgrid=False, showline=False, constrain="domain")
    fig.update_yaxes(
        showticklabels=False,
        ticks="",
        showgrid=False,
        showline=False,
        autorange="reversed",
        scaleanchor="x",
        scaleratio=1,
        constrain="domain",
    )
    fig.update_layout(plot_bgcolor="white")
    return fig


def weight_snapshots(
    steps: Any,
    matrices: Any,
    *,
    dt: float | None = None,
    pre_label: str = "presynaptic neuron",
    post_label: str = "postsynaptic neuron",
    colorscale: str | None = None,
    zrange: Sequence[float] | None = None,
    title: str | None = "Weights over time",
    height: int | None = None,
    width: int | None = None,
) -> go.Figure:
    """Weight matrices taken at ``steps`` (``[k]``), browsed with a slider.

    ``matrices`` is ``[k, n_post, n_pre]`` (``Experiment.weight_snapshots``).
    The figure opens on the newest snapshot; ``fig.frames[i]`` holds
    snapshot ``i`` and slider step ``i`` shows it. One colour range spans all
    snapshots (see :func:`color_range`) so colours compare across time.
    """
    dt = check_dt(dt)
    s = index_array(steps, "steps")
    m = real_array(matrices, "matrices", 3)
    check_same_length(s, "steps", m, "matrices")
    if len(s) == 0:
        raise ValueError("matrices must hold at least one snapshot, got none")
    scale = _scale(m.reshape(len(m), -1), colorscale, zrange)
    hover = f"{pre_label} %{{x}}<br>{post_label} %{{y}}<br>w = %{{z:.4g}}<extra></extra>"
    unit = "ms" if dt is not None else "steps"
    times = [f"{v * dt:g}" if dt is not None else str(int(v)) for v in s]
    fig = go.Figure(
        go.Heatmap(z=m[-1], colorbar={"title": {"text": "w"}, "thickness": 14}, hovertemplate=hover, **scale),
        frames=[go.Frame(data=[go.Heatmap(z=m[i])], name=times[i]) for i in range(len(s))],
    )
    fig.update_layout(
        sliders=[
            {
                "active": len(s) - 1,
                "currentvalue": {"prefix": f"t ({unit}) = "},
                "pad": {"t": 60},
                "steps": [
                    {
                        "label": times[i],
                        "method": "animate",
                        "args": [[times[i]], {"mode": "immediate", "frame": {"duration": 0, "redraw": True}}],
                    }
                    for i in range(len(s))
                ],
            }
        ]
    )
    apply_layout(fig, title=title, height=height or 440, width=width, showlegend=False)
    fig.update_xaxes(title_text=f"{pre_label} index", showgrid=False)
    fig.update_yaxes(title_text=f"{post_label} index", autorange="reversed", showgrid=False)
    return fig
