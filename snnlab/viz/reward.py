"""Reward and eligibility history of reward-modulated learning (mSTDP / mSTDP-ET).

The reward ``r[i]`` given at step ``steps[i]`` is drawn as a marker coloured
by its sign (green ``> 0``, vermillion ``< 0``, grey ``= 0``) with its trailing
moving average ``r̄[i] = mean(r[max(0, i - window + 1) : i + 1])`` (over
samples, not steps). The eligibility trace ``e`` (what mSTDP-ET multiplies
by the reward to change the weights, ``Δw = lr · r · e``) goes in a second
row sharing the time axis.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ._checks import check_dt, check_labels, check_positive_int, check_same_length, index_array, real_array
from .style import COLORS, apply_layout, color_cycle, time_axis_title

__all__ = ["moving_average", "reward_history"]

_ELIGIBILITY_LINES = 10


def moving_average(values: Any, window: int) -> np.ndarray:
    """Trailing mean over the last ``window`` samples: ``out[i] = mean(values[max(0, i-window+1) : i+1])``.

    ``values`` is 1-D; the result is float64 of the same length.
    """
    v = real_array(values, "values", 1)
    window = check_positive_int(window, "window")
    if len(v) == 0:
        return v
    csum = np.concatenate([[0.0], np.cumsum(v)])
    idx = np.arange(1, len(v) + 1)
    start = np.maximum(idx - window, 0)
    return (csum[idx] - csum[start]) / (idx - start)


def _eligibility(eligibility: Any, steps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``eligibility`` aligned with ``steps`` (``[k]`` / ``[k, m]``) or its own ``(steps, values)`` pair."""
    if isinstance(eligibility, tuple):
        if len(eligibility) != 2:
            raise ValueError(
                f"eligibility must be values or a (steps, values) pair, got a {len(eligibility)}-tuple"
            )
        e_steps = index_array(eligibility[0], "eligibility steps")
        e_values = real_array(eligibility[1], "eligibility values", (1, 2))
        check_same_length(e_steps, "eligibility steps", e_values, "eligibility values")
    else:
        e_steps = steps
        e_values = real_array(eligibility, "eligibility", (1, 2))
        check_same_length(steps, "steps", e_values, "eligibility")
    if e_values.ndim == 1:
        e_values = e_values[:, None]
    return e_steps, e_values


def reward_history(
    steps: Any,
    reward: Any,
    eligibility: Any = None,
    *,
    eligibility_labels: Sequence[str] | None = None,
    window: int | None = 50,
    dt: float | None = None,
    title: str | None = "Reward",
    height: int | None = None,
    width: int | None = None,
) -> go.Figure:
    """Reward over time, with its moving average and (optionally) the eligibility trace.

    Args:
        steps: int ``[k]``, step at which each reward was given.
        reward: float ``[k]``.
        eligibility: ``[k]`` / ``[k, m]`` aligned with ``steps``, or a
            ``(e_steps [k'], e_values [k'] / [k', m])`` pair on its own clock.
            Drawn in a second row, one line per column (at most 10 lines get
            a legend entry).
        eligibility_labels: ``m`` names for the eligibility columns.
        window: moving-average length in samples (``None``: no average line).
        dt: ms per step; the time axis is ``steps * dt`` (ms), else steps.

    Returns:
        A figure whose trace ``'reward'`` has ``x`` = time, ``y = reward``;
        ``'mean reward'`` the moving average; ``'eligibility …'`` traces in row 2.
    """
    dt = check_dt(dt)
    s = index_array(steps, "steps")
    r = real_array(reward, "reward", 1)
    check_same_length(s, "steps", r, "reward")
    window = check_positive_int(window, "window", allow_none=True)
    scale = dt if dt is not None else 1
    unit = "ms" if dt is not None else "steps"
    rows = 1
    if eligibility is not None:
        e_steps, e_values = _eligibility(eligibility, s)
        m = e_values.shape[1]
        names = check_labels(eligibility_labels, "eligibility_labels", m) or (
            ["eligibility"] if m == 1 else [f"eligibility {j}" for j in range(m)]
        )
        rows = 2
    fig = make_subplots(rows=rows, cols=1, shared_xaxes=True, vertical_spacing=0.08)
    x = s * scale
    colors = np.where(
        r > 0, COLORS["reward_positive"], np.where(r < 0, COLORS["reward_negative"], COLORS["zero"])
    )
    fig.add_trace(
        go.Scatter(
            x=x,
            y=r,
            mode="markers",
            name="reward",
            marker={"color": colors, "size": 6, "line": {"width": 0}},
            hovertemplate=f"t = %{{x}} {unit}<br>reward = %{{y:.3g}}<extra></extra>",
        ),
        row=1,
        col=1,
    )
    if window is not None and len(r):
        fig.add_trace(
            go.Scatter(
                x=x,
                y=moving_average(r, window),
                mode="lines",
                name=f"mean reward (last {window})",
                line={"color": COLORS["average"], "width": 1.8},
                hovertemplate=f"t = %{{x}} {unit}<br>mean = %{{y:.3g}}<extra></extra>",
            ),
            row=1,
            col=1,
        )
    fig.add_hline(y=0.0, line={"color": COLORS["zero"], "width": 1, "dash": "dot"}, row=1, col=1)
    fig.update_yaxes(title_text="reward", row=1, col=1)
    if rows == 2:
        ex = e_steps * scale
        for j in range(m):
            fig.add_trace(
                go.Scatter(
                    x=ex,
                    y=e_values[:, j],
                    mode="lines",
                    name=names[j],
                    line={"color": COLORS["eligibility"] if m == 1 else color_cycle(j + 1), "width": 1.4},
                    showlegend=j < _ELIGIBILITY_LINES,
                    hovertemplate=f"t = %{{x}} {unit}<br>e = %{{y:.4g}}<extra>{names[j]}</extra>",
                ),
                row=2,
                col=1,
            )
        fig.update_yaxes(title_text="eligibility", row=2, col=1)
    apply_layout(fig, title=title, height=height or (300 if rows == 1 else 460), width=width)
    fig.update_xaxes(title_text=time_axis_title(dt), row=rows, col=1)
    return fig
