"""Spike rasters: one mark per spike event at (time, neuron index).

Input is the event form the experiments record: ``steps`` (int, shape
``[k]``) and ``neurons`` (int, shape ``[k]``), event ``i`` being a spike of
neuron ``neurons[i]`` at step ``steps[i]``. The x coordinate of event ``i`` is
``steps[i] * dt`` (ms) when ``dt`` is given, else ``steps[i]`` (steps).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ._checks import check_dt, check_positive_int, check_same_length, index_array, real_array
from .style import COLORS, DEFAULT_HEIGHT, apply_layout, color_cycle, time_axis_title

__all__ = ["WEBGL_THRESHOLD", "auto_marker_size", "raster", "raster_layers", "spike_xy"]

#: Above this many events a raster switches to WebGL (``Scattergl``) when ``webgl=None``.
WEBGL_THRESHOLD = 20_000


def spike_xy(
    steps: Any, neurons: Any, *, dt: float | None = None, n_neurons: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Validate spike events and return their plot coordinates ``(x, y)``.

    ``x = steps * dt`` (float64, ms) when ``dt`` is given, else ``steps``
    (int64); ``y = neurons`` (int64). ``steps`` and ``neurons`` must be 1-D,
    of equal length, non-negative, and ``neurons < n_neurons`` when
    ``n_neurons`` is given.
    """
    dt = check_dt(dt)
    n_neurons = check_positive_int(n_neurons, "n_neurons", allow_none=True)
    s = index_array(steps, "steps")
    n = index_array(neurons, "neurons", upper=n_neurons, upper_name="n_neurons")
    check_same_length(s, "steps", n, "neurons")
    x = s * dt if dt is not None else s
    return x, n


def auto_marker_size(rows: int, plot_px: float) -> float:
    """Tick height for ``rows`` neuron rows in ``plot_px`` pixels: ``0.8 * plot_px / rows``, in ``[2, 8]``."""
    return float(min(8.0, max(2.0, 0.8 * plot_px / max(rows, 1))))


def _scatter_class(count: int, webgl: bool | None) -> type:
    if webgl is None:
        webgl = count > WEBGL_THRESHOLD
    return go.Scattergl if webgl else go.Scatter


def _spike_trace(
    x: np.ndarray, y: np.ndarray, *, name: str, color: str, marker_size: float, webgl: bool | None, unit: str
) -> go.Scatter:
    cls = _scatter_class(len(x), webgl)
    return cls(
        x=x,
        y=y,
        mode="markers",
        name=name,
        marker={
            "symbol": "line-ns-open",
            "size": marker_size,
            "color": color,
            "line": {"width": 1.5, "color": color},
        },
        hovertemplate=f"t = %{{x}} {unit}<br>neuron %{{y}}<extra>{name}</extra>",
    )


def _neuron_range(n_neurons: int | None, y: np.ndarray) -> list[float] | None:
    if n_neurons is not None:
        return [-0.5, n_neurons - 0.5]
    if len(y) == 0:
        return None
    return [-0.5, float(y.max()) + 0.5]


def raster(
    steps: Any,
    neurons: Any,
    *,
    dt: float | None = None,
    n_neurons: int | None = None,
    t_range: Sequence[float] | None = None,
    name: str = "spikes",
    color: str | None = None,
    marker_size: float | None = None,
    webgl: bool | None = None,
    title: str | None = "Spike raster",
    height: int | None = None,
    width: int | None = None,
) -> go.Figure:
    """Spike raster of events ``(steps[i], neurons[i])``.

    Args:
        steps: int ``[k]``, step of each spike (``>= 0``).
        neurons: int ``[k]``, neuron index of each spike (``>= 0``, ``< n_neurons``).
        dt: ms per step; the time axis is ``steps * dt`` in ms, or steps when ``None``.
        n_neurons: layer size; fixes the y range to ``[-0.5, n_neurons - 0.5]``.
        t_range: ``(start, end)`` of the x axis, in the axis' unit.
        name: label of the layer (hover text).
        marker_size: tick height in pixels; ``None`` fits it to the rows
            (``0.8 × plot height / rows``, clipped to ``[2, 8]``).
        webgl: draw with ``Scattergl``; ``None`` picks it above
            :data:`WEBGL_THRESHOLD` events (SVG is sharper and needs no GPU).

    Returns:
        A figure with one trace whose ``x`` / ``y`` are the event coordinates.
    """
    x, y = spike_xy(steps, neurons, dt=dt, n_neurons=n_neurons)
    height = check_positive_int(height, "height", allow_none=True)
    if marker_size is None:
        rows = n_neurons if n_neurons is not None else (int(y.max()) + 1 if len(y) else 1)
        marker_size = auto_marker_size(rows, (height or DEFAULT_HEIGHT) - 100)
    fig = go.Figure()
    unit = "ms" if dt is not None else "steps"
    fig.add_trace(
        _spike_trace(
            x, y, name=name, color=color or COLORS["spike"], marker_size=marker_size, webgl=webgl, unit=unit
        )
    )
    apply_layout(fig, title=title, height=height, width=width, showlegend=False)
    fig.update_xaxes(title_text=time_axis_title(dt))
    fig.update_yaxes(title_text="neuron index", range=_neuron_range(n_neurons, y))
    if t_range is not None:
        fig.update_xaxes(range=_check_range(t_range, "t_range"))
    return fig


def _check_range(value: Any, name: str) -> list[float]:
    arr = real_array(value, name, 1, finite=True)
    if arr.shape != (2,) or not arr[0] < arr[1]:
        raise ValueError(f"{name} must be (start, end) with start < end, got {list(arr)}")
    return [float(arr[0]), float(arr[1])]


def raster_layers(
    layers: Mapping[str, tuple[Any, Any]],
    *,
    sizes: Mapping[str, int] | None = None,
    dt: float | None = None,
    t_range: Sequence[float] | None = None,
    marker_size: float | None = None,
    webgl: bool | None = None,
    title: str | None = "Spike raster",
    height: int | None = None,
    width: int | None = None,
) -> go.Figure:
    """Rasters of several layers stacked in rows that share the time axis.

    ``layers`` maps a layer name to its ``(steps, neurons)`` events (the
    ``frame['spikes']`` layout). Each row's height is proportional to the
    layer's size (``sizes[name]``, else its largest neuron index + 1), within
    limits so that a small layer stays readable next to a large one.
    """
    if not isinstance(layers, Mapping) or not layers:
        raise ValueError(f"layers must be a non-empty mapping of name -> (steps, neurons), got {layers!r}")
    sizes = dict(sizes or {})
    coords = {}
    for name, events in layers.items():
        if not isinstance(events, (tuple, list)) or len(events) != 2:
            raise ValueError(f"layers[{name!r}] must be a (steps, neurons) pair, got {type(events).__name__}")
        size = sizes.get(name)
        coords[name] = spike_xy(events[0], events[1], dt=dt, n_neurons=size)
        if size is None:
            y = coords[name][1]
            sizes[name] = int(y.max()) + 1 if len(y) else 1
    height = check_positive_int(height, "height", allow_none=True) or max(260, 180 * len(layers))
    weights = np.array([sizes[name] for name in layers], dtype=float)
    weights = np.clip(weights / weights.sum(), 0.15, None)
    fractions = weights / weights.sum()
    fig = make_subplots(
        rows=len(layers),
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.04,
        row_heights=list(fractions),
    )
    unit = "ms" if dt is not None else "steps"
    for row, name in enumerate(layers, start=1):
        x, y = coords[name]
        color = COLORS["spike"] if len(layers) == 1 else color_cycle(row - 1)
        fig.add_trace(
            _spike_trace(
                x,
                y,
                name=name,
                color=color,
                marker_size=marker_size or auto_marker_size(sizes[name], (height - 100) * fractions[row - 1]),
                webgl=webgl,
                unit=unit,
            ),
            row=row,
            col=1,
        )
        fig.update_yaxes(title_text=f"{name}<br>neuron", range=[-0.5, sizes[name] - 0.5], row=row, col=1)
    apply_layout(fig, title=title, height=height, width=width, showlegend=False)
    fig.update_xaxes(title_text=time_axis_title(dt), row=len(layers), col=1)
    if t_range is not None:
        fig.update_xaxes(range=_check_range(t_range, "t_range"))
    return fig
