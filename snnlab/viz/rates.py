"""Firing-rate histograms: how many neurons fire at which rate.

The rate of neuron ``j`` over a window of ``duration`` steps is
``rate[j] = count[j] / duration`` spikes per step, or
``count[j] / (duration · dt / 1000)`` Hz when ``dt`` (ms per step) is given,
where ``count[j]`` is the number of spike events with ``neurons == j``.
Silent neurons count (rate 0): ``n_neurons`` says how many there are.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import plotly.graph_objects as go

from ._checks import check_dt, check_positive_int, check_same_length, index_array, real_array
from .style import COLORS, apply_layout

__all__ = ["firing_rate_histogram", "firing_rates"]


def firing_rates(neurons: Any, n_neurons: int, duration: int, *, dt: float | None = None) -> np.ndarray:
    """Rate of each of ``n_neurons`` neurons from spike events ``neurons`` (``[k]``) over ``duration`` steps.

    Returns float64 ``[n_neurons]``, in Hz when ``dt`` is given, else in spikes per step.
    """
    n_neurons = check_positive_int(n_neurons, "n_neurons")
    duration = check_positive_int(duration, "duration")
    dt = check_dt(dt)
    n = index_array(neurons, "neurons", upper=n_neurons, upper_name="n_neurons")
    counts = np.bincount(n, minlength=n_neurons).astype(np.float64)
    seconds_or_steps = duration * dt / 1000.0 if dt is not None else float(duration)
    return counts / seconds_or_steps


def firing_rate_histogram(
    rates: Any = None,
    *,
    steps: Any = None,
    neurons: Any = None,
    n_neurons: int | None = None,
    duration: int | None = None,
    dt: float | None = None,
    nbins: int = 30,
    title: str | None = "Firing rates",
    height: int | None = None,
    width: int | None = None,
) -> go.Figure:
    """Histogram of firing rates across neurons, with the mean rate marked.

    Give either ``rates`` (float ``[n]``, ``>= 0``; unit: Hz when ``dt`` is
    given, else spikes per step) or spike events ``steps`` / ``neurons``
    (``[k]`` each) with ``n_neurons``; ``duration`` (steps) defaults to
    ``max(steps) - min(steps) + 1``. Rates then come from :func:`firing_rates`.

    Returns:
        A figure whose single histogram trace has ``x`` = the rates (binned
        into about ``nbins`` bins by plotly) and a vertical line at their mean.
    """
    dt = check_dt(dt)
    nbins = check_positive_int(nbins, "nbins")
    if rates is not None:
        if neurons is not None or steps is not None:
            raise ValueError("give either rates or spike events (steps, neurons), not both")
        x = real_array(rates, "rates", 1, finite=True)
        if x.size and x.min() < 0:
            raise ValueError(f"rates must be non-negative, found {x.min()}")
    else:
        if neurons is None or steps is None or n_neurons is None:
            raise ValueError(
                "firing_rate_histogram needs rates, or steps, neurons and n_neurons (and optionally duration)"
            )
        s = index_array(steps, "steps")
        n = index_array(neurons, "neurons")
        check_same_length(s, "steps", n, "neurons")
        if duration is None:
            if len(s) == 0:
                raise ValueError("duration must be given when there are no spike events (steps is empty)")
            duration = int(s.max() - s.min() + 1)
        x = firing_rates(n, n_neurons, duration, dt=dt)
    unit = "Hz" if dt is not None else "spikes / step"
    fig = go.Figure(
        go.Histogram(
            x=x,
            nbinsx=nbins,
            name="neurons",
            marker={"color": COLORS["histogram"], "line": {"color": "white", "width": 1}},
            hovertemplate=f"rate %{{x}} {unit}<br>%{{y}} neurons<extra></extra>",
        )
    )
    if len(x):
        mean = float(x.mean())
        fig.add_vline(
            x=mean,
            line={"color": COLORS["mean"], "dash": "dash", "width": 1.5},
            annotation_text=f"mean {mean:.3g} {unit}",
            annotation_position="top right",
            annotation_font={"color": COLORS["mean"], "size": 11},
            name="mean rate",
        )
    apply_layout(fig, title=title, height=height, width=width, showlegend=False, bargap=0.02)
    fig.update_xaxes(title_text=f"firing rate ({unit})")
    fig.update_yaxes(title_text="number of neurons")
    return fig
