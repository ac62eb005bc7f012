"""Membrane potential traces with the firing threshold drawn as a line.

Input is the recorded trace form: ``steps`` (int, ``[k]``) and ``values``
(float, ``[k]`` or ``[k, m]``): ``values[i, j]`` is the membrane potential
``v`` of trace ``j`` at step ``steps[i]``. A neuron fires when ``v`` reaches
``v_threshold``; the threshold (and optionally ``v_reset``) are drawn as
horizontal dashed lines so one sees how close each trace comes to firing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go

from ._checks import check_dt, check_labels, check_same_length, index_array, real_array
from .style import COLORS, apply_layout, color_cycle, time_axis_title

__all__ = ["LEGEND_LIMIT", "membrane_traces", "time_series"]

#: More traces than this and the legend is hidden (hover still names each trace).
LEGEND_LIMIT = 10


def _levels(value: Any, name: str, m: int) -> np.ndarray | None:
    """``None``, a scalar (one line for all traces) or one level per trace (``[m]``)."""
    if value is None:
        return None
    arr = real_array(value, name, (0, 1), finite=True)
    if arr.ndim == 1 and len(arr) not in (1, m):
        raise ValueError(f"{name} must be a number or have one value per trace ({m}), got {len(arr)} values")
    return arr.reshape(-1)


def _line_figure(
    steps: Any, values: Any, labels: Sequence[str] | None, dt: float | None, symbol: str
) -> tuple[go.Figure, str, int, list[str]]:
    """Validate ``steps`` / ``values`` and draw one line per column; returns (fig, unit, m, names)."""
    dt = check_dt(dt)
    s = index_array(steps, "steps")
    v = real_array(values, "values", (1, 2))
    check_same_length(s, "steps", v, "values")
    if v.ndim == 1:
        v = v[:, None]
    m = v.shape[1]
    names = check_labels(labels, "labels", m) or [f"neuron {j}" for j in range(m)]
    x = s * dt if dt is not None else s
    unit = "ms" if dt is not None else "steps"
    fig = go.Figure()
    for j in range(m):
        fig.add_trace(
            go.Scatter(
                x=x,
                y=v[:, j],
                mode="lines",
                name=names[j],
                line={"color": color_cycle(j), "width": 1.6},
                hovertemplate=f"t = %{{x}} {unit}<br>{symbol} = %{{y:.4g}}<extra>{names[j]}</extra>",
            )
        )
    fig.update_xaxes(title_text=time_axis_title(dt))
    return fig, unit, m, names


def time_series(
    steps: Any,
    values: Any,
    labels: Sequence[str] | None = None,
    *,
    y_label: str = "value",
    dt: float | None = None,
    title: str | None = None,
    height: int | None = None,
    width: int | None = None,
) -> go.Figure:
    """Any recorded series: one line per column of ``values`` (``[k]`` / ``[k, m]``) over ``steps`` (``[k]``).

    ``x`` = ``steps * dt`` (ms) or steps; ``y = values[:, j]``; ``y_label`` titles the y axis.
    """
    if labels is None:
        arr = real_array(values, "values", (1, 2))
        labels = [y_label] if arr.ndim == 1 else [f"{y_label} {j}" for j in range(arr.shape[1])]
    fig, _, m, _ = _line_figure(steps, values, labels, dt, "y")
    apply_layout(fig, title=title, height=height, width=width, showlegend=1 < m <= LEGEND_LIMIT)
    fig.update_yaxes(title_text=y_label)
    return fig


def membrane_traces(
    steps: Any,
    values: Any,
    labels: Sequence[str] | None = None,
    threshold: float | Sequence[float] | None = None,
    *,
    v_reset: float | Sequence[float] | None = None,
    dt: float | None = None,
    title: str | None = "Membrane potential",
    height: int | None = None,
    width: int | None = None,
) -> go.Figure:
    """Line plot of membrane potentials over time.

    Args:
        steps: int ``[k]``, the step of each sample (``>= 0``).
        values: float ``[k]`` (one trace) or ``[k, m]`` (``m`` traces). NaN leaves a gap.
        labels: ``m`` trace names (default ``'neuron j'``).
        threshold: ``v_threshold``; a number (one line) or ``m`` numbers (one per trace,
            in the trace's colour).
        v_reset: ``v_reset`` drawn the same way, dotted grey.
        dt: ms per step; the time axis is ``steps * dt`` (ms), else steps.

    Returns:
        A figure with one line trace per column (``x`` = time, ``y = values[:, j]``);
        threshold and reset lines are layout shapes (``fig.layout.shapes``) spanning
        the plot's width, each labelled with its value.
    """
    fig, _, m, names = _line_figure(steps, values, labels, dt, "v")
    thresholds = _levels(threshold, "threshold", m)
    resets = _levels(v_reset, "v_reset", m)
    for levels, label, color, dash in (
        (thresholds, "v_threshold", COLORS["threshold"], "dash"),
        (resets, "v_reset", COLORS["reset"], "dot"),
    ):
        if levels is None:
            continue
        per_trace = len(levels) > 1
        for j, level in enumerate(levels):
            text = f"{label} = {level:.4g}" + (f" ({names[j]})" if per_trace else "")
            line_color = color_cycle(j) if per_trace else color
            fig.add_hline(
                y=float(level),
                line={"color": line_color, "dash": dash, "width": 1.3},
                annotation_text=text if (not per_trace or m <= LEGEND_LIMIT) else None,
                annotation_position="top left" if label == "v_threshold" else "bottom left",
                annotation_font={"color": line_color, "size": 11},
                name=label,
            )
    apply_layout(fig, title=title, height=height, width=width, showlegend=1 < m <= LEGEND_LIMIT)
    fig.update_yaxes(title_text="membrane potential (a.u.)")
    return fig
