"""Response curves: the f–I curve of a neuron (firing rate against input current).

``rates[i]`` is the steady firing rate under the constant input current
``currents[i]`` (as ``NeuronExplorer.fi_curve`` computes it). Points are
drawn in increasing current, joined by a line; the smallest sampled current
with a non-zero rate (an upper bound on the rheobase) is marked.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import plotly.graph_objects as go

from ._checks import check_same_length, real_array
from .style import COLORS, apply_layout

__all__ = ["fi_curve"]


def fi_curve(
    currents: Any,
    rates: Any,
    *,
    label: str = "measured",
    unit: str = "Hz",
    title: str | None = "f–I curve",
    height: int | None = None,
    width: int | None = None,
) -> go.Figure:
    """Firing rate against input current.

    Args:
        currents: float ``[k]``, the constant input currents (a.u.).
        rates: float ``[k]``, ``>= 0``, the firing rate under each current.
        label: trace name; ``unit`` the rate unit for the axis title.

    Returns:
        A figure whose trace has ``x`` = the currents sorted ascending and ``y``
        the matching rates; a dotted vertical line marks the rheobase.
    """
    x = real_array(currents, "currents", 1, finite=True)
    y = real_array(rates, "rates", 1, finite=True)
    check_same_length(x, "currents", y, "rates")
    if y.size and y.min() < 0:
        raise ValueError(f"rates must be non-negative, found {y.min()}")
    order = np.argsort(x, kind="stable")
    x, y = x[order], y[order]
    fig = go.Figure(
        go.Scatter(
            x=x,
            y=y,
            mode="lines+markers",
            name=label,
            line={"color": COLORS["measured"], "width": 2},
            marker={"size": 6},
            hovertemplate=f"I = %{{x:.4g}}<br>rate = %{{y:.4g}} {unit}<extra></extra>",
        )
    )
    firing = np.nonzero(y > 0)[0]
    if firing.size:
        rheobase = float(x[firing[0]])
        fig.add_vline(
            x=rheobase,
            line={"color": COLORS["threshold"], "dash": "dot", "width": 1.3},
            annotation_text=f"rheobase ≤ {rheobase:.3g}",
            annotation_position="top left",
            annotation_font={"color": COLORS["threshold"], "size": 11},
            name="rheobase",
        )
    apply_layout(fig, title=title, height=height, width=width, showlegend=False)
    fig.update_xaxes(title_text="input current (a.u.)")
    fig.update_yaxes(title_text=f"firing rate ({unit})", rangemode="tozero")
    return fig
