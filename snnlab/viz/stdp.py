"""The STDP window: weight change ``Δw`` against spike-time difference ``Δt``.

``Δt = t_post - t_pre``: positive when the presynaptic spike came first
(causal pairing, usually potentiation), negative otherwise. For the classic
pair-based rule with traces of time constants ``tau_pre``, ``tau_post`` the
theoretical window is ``Δw(Δt) = A+ · exp(-Δt / tau_pre)`` for ``Δt > 0``
and ``-A- · exp(Δt / tau_post)`` for ``Δt < 0``; here the theory is whatever
the caller supplies (a function of ``Δt``, e.g. an experiment's
``theoretical_window``, or sampled points), drawn as a curve under the
measured ``(Δt, Δw)`` pairs of the running learner.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go

from ._checks import check_positive_int, check_same_length, real_array
from .style import COLORS, apply_layout

__all__ = ["stdp_window", "theory_curve"]

Theory = Callable[[np.ndarray], Any] | tuple[Any, Any]


def theory_curve(
    theory: Theory, dt_range: Sequence[float], n_points: int = 401
) -> tuple[np.ndarray, np.ndarray]:
    """Sample ``theory`` over ``dt_range``.

    ``theory`` is a callable mapping a float64 array of ``Δt`` to ``Δw`` of
    the same shape (numpy or torch), or an explicit ``(dts, dws)`` pair which
    is returned sorted by ``Δt``. A callable is sampled on ``n_points``
    evenly spaced points of ``dt_range`` plus ``Δt = 0`` from both sides
    (``±1e-9``) so a jump at zero is drawn as a jump.
    """
    if callable(theory):
        lo, hi = _range(dt_range)
        n_points = check_positive_int(n_points, "n_points")
        grid = np.linspace(lo, hi, max(n_points, 2))
        if lo < 0.0 < hi:
            grid = np.unique(np.concatenate([grid, [-1e-9, 1e-9]]))
        dws = real_array(theory(grid.copy()), "theory(dt)", 1)
        if dws.shape != grid.shape:
            raise ValueError(f"theory(dt) must return one Δw per Δt ({grid.shape}), got shape {dws.shape}")
        return grid, dws
    if isinstance(theory, (tuple, list)) and len(theory) == 2:
        dts = real_array(theory[0], "theory[0] (Δt)", 1, finite=True)
        dws = real_array(theory[1], "theory[1] (Δw)", 1)
        check_same_length(dts, "theory[0] (Δt)", dws, "theory[1] (Δw)")
        order = np.argsort(dts, kind="stable")
        return dts[order], dws[order]
    raise TypeError(f"theory must be a callable dt -> dw or a (dts, dws) pair, got {type(theory).__name__}")


def _range(value: Any) -> tuple[float, float]:
    arr = real_array(value, "dt_range", 1, finite=True)
    if arr.shape != (2,) or not arr[0] < arr[1]:
        raise ValueError(f"dt_range must be (start, end) with start < end, got {list(arr)}")
    return float(arr[0]), float(arr[1])


def stdp_window(
    dt: Any,
    dw: Any,
    theory: Theory | None = None,
    *,
    dt_range: Sequence[float] | None = None,
    n_points: int = 401,
    unit: str = "ms",
    title: str | None = "STDP window",
    height: int | None = None,
    width: int | None = None,
) -> go.Figure:
    """Measured ``(Δt, Δw)`` pairs over the rule's theoretical window.

    Args:
        dt: float ``[k]``, ``t_post - t_pre`` of each measured pairing.
        dw: float ``[k]``, the weight change the learner made for it.
        theory: the theoretical window (see :func:`theory_curve`); drawn as a
            black line named ``'theory'``.
        dt_range: ``(start, end)`` over which a callable theory is sampled;
            default: ±1.1 × the largest measured ``|Δt|`` (±50 without points).
        unit: unit of ``Δt`` for the axis title (``'ms'`` or ``'steps'``).

    Returns:
        A figure with a marker trace ``'measured'`` (``x = dt``, ``y = dw``) and,
        when ``theory`` is given, a line trace ``'theory'``; dashed zero lines mark
        ``Δt = 0`` and ``Δw = 0``.
    """
    x = real_array(dt, "dt", 1, finite=True)
    y = real_array(dw, "dw", 1, finite=True)
    check_same_length(x, "dt", y, "dw")
    if unit not in ("ms", "steps"):
        raise ValueError(f"unit must be 'ms' or 'steps', got {unit!r}")
    fig = go.Figure()
    if theory is not None:
        if dt_range is None:
            span = 1.1 * float(np.abs(x).max()) if len(x) and np.abs(x).max() > 0 else 50.0
            dt_range = (-span, span)
        tx, ty = theory_curve(theory, dt_range, n_points)
        fig.add_trace(
            go.Scatter(
                x=tx,
                y=ty,
                mode="lines",
                name="theory",
                line={"color": COLORS["theory"], "width": 2},
                hovertemplate=f"Δt = %{{x:.3g}} {unit}<br>Δw = %{{y:.4g}}<extra>theory</extra>",
            )
        )
    fig.add_trace(
        go.Scatter(
            x=x,
            y=y,
            mode="markers",
            name="measured",
            marker={"color": COLORS["measured"], "size": 7, "opacity": 0.75, "line": {"width": 0}},
            hovertemplate=f"Δt = %{{x:.3g}} {unit}<br>Δw = %{{y:.4g}}<extra>measured</extra>",
        )
    )
    zero_line = {"color": COLORS["zero"], "width": 1, "dash": "dot"}
    fig.add_hline(y=0.0, line=zero_line, layer="below")
    fig.add_vline(x=0.0, line=zero_line, layer="below")
    apply_layout(fig, title=title, height=height, width=width, showlegend=theory is not None)
    fig.update_xaxes(title_text=f"Δt = t_post − t_pre ({unit})")
    fig.update_yaxes(title_text="Δw", exponentformat="power")
    return fig
