"""One look for every snnlab figure: colours, sizes, fonts and axis titles.

The palette is Okabe & Ito's colour-blind-safe set. Roles keep the same
colour in every figure (spikes are always near-black, the threshold always
vermillion, a theory curve always black, measured points always blue, ...),
so a person who has learnt one view reads the others at a glance.
"""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go

from ._checks import check_positive_int

__all__ = [
    "COLORS",
    "DEFAULT_HEIGHT",
    "DIVERGING_SCALE",
    "PALETTE",
    "SEQUENTIAL_SCALE",
    "apply_layout",
    "color_cycle",
    "time_axis_title",
]

#: Okabe-Ito palette (colour-blind safe), in the order series are coloured.
PALETTE: tuple[str, ...] = (
    "#0072B2",  # blue
    "#E69F00",  # orange
    "#009E73",  # bluish green
    "#CC79A7",  # reddish purple
    "#56B4E9",  # sky blue
    "#D55E00",  # vermillion
    "#F0E442",  # yellow
    "#000000",  # black
)

#: Colours by role, shared by all figures.
COLORS: dict[str, str] = {
    "spike": "#1f1f1f",
    "threshold": "#D55E00",
    "reset": "#7f7f7f",
    "theory": "#000000",
    "measured": "#0072B2",
    "reward_positive": "#009E73",
    "reward_negative": "#D55E00",
    "average": "#000000",
    "eligibility": "#E69F00",
    "histogram": "#0072B2",
    "mean": "#D55E00",
    "zero": "#b0b0b0",
}

#: Heatmap colour scales: diverging (signed weights, centred on 0) and sequential.
DIVERGING_SCALE = "RdBu_r"
SEQUENTIAL_SCALE = "Viridis"

#: Default figure height in pixels; the width follows the container (notebook cell or page).
DEFAULT_HEIGHT = 360

_FONT = {"family": "Inter, Helvetica, Arial, sans-serif", "size": 13}


def color_cycle(i: int) -> str:
    """The ``i``-th palette colour (cycling)."""
    return PALETTE[i % len(PALETTE)]


def time_axis_title(dt: float | None) -> str:
    """``'time (ms)'`` when a step length is known, else ``'time (steps)'``."""
    return "time (ms)" if dt is not None else "time (steps)"


def apply_layout(
    fig: go.Figure,
    *,
    title: str | None,
    height: int | None,
    width: int | None,
    showlegend: bool | None = None,
    **layout: Any,
) -> go.Figure:
    """Apply the shared template, title, size, margins and hover style to ``fig`` and return it.

    ``height`` / ``width`` are pixels (``None``: :data:`DEFAULT_HEIGHT` and the
    container's width).
    """
    height = check_positive_int(height, "height", allow_none=True)
    width = check_positive_int(width, "width", allow_none=True)
    fig.update_layout(
        template="plotly_white",
        title={"text": title, "x": 0.01, "xanchor": "left"} if title else None,
        height=DEFAULT_HEIGHT if height is None else height,
        width=width,
        autosize=width is None,
        margin={"l": 64, "r": 24, "t": 48 if title else 24, "b": 52},
        font=_FONT,
        hovermode="closest",
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "xanchor": "right", "x": 1.0},
        **layout,
    )
    if showlegend is not None:
        fig.update_layout(showlegend=showlegend)
    fig.update_xaxes(showline=True, linecolor="#444", ticks="outside", zeroline=False)
    fig.update_yaxes(showline=True, linecolor="#444", ticks="outside", zeroline=False)
    return fig
