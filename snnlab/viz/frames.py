"""Figures straight from an experiment's frames (the ``Experiment.frame()`` layout).

A frame holds what was recorded since the previous one. :func:`merge_frames`
concatenates a list of frames into one frame-shaped history (events, traces,
series and points appended in order; for weights the newest matrix wins).
:func:`figure_from_frame` turns one view of a frame into a figure, using the
experiment's ``views()`` description for sizes, labels, thresholds and
colour ranges; :func:`figure_from_experiment` does the same from a live
experiment. View kinds:

==================== ===========================================================
``'raster'``         :func:`~snnlab.viz.raster` (all layers stacked when ``name`` is None
                     and there are several)
``'traces'``         :func:`~snnlab.viz.membrane_traces` with the view's threshold
``'weights'``        :func:`~snnlab.viz.weight_heatmap`, colour range ``(vmin, vmax)``
``'receptive_fields'`` :func:`~snnlab.viz.receptive_fields` with the view's ``rf_shape``
``'series'``         :func:`~snnlab.viz.time_series`
``'reward'``         :func:`~snnlab.viz.reward_history` from the series ``reward`` and,
                     when present, ``eligibility`` (names overridable)
``'points'``         :func:`~snnlab.viz.stdp_window` (``theory`` from the experiment's
                     ``theoretical_window`` when it has one)
``'rates'``          :func:`~snnlab.viz.firing_rate_histogram` of a raster layer over
                     the frame's span (earliest recorded step up to ``frame['t']``)
==================== ===========================================================
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import plotly.graph_objects as go

from .raster import raster, raster_layers
from .rates import firing_rate_histogram
from .reward import reward_history
from .stdp import stdp_window
from .traces import membrane_traces, time_series
from .weights import receptive_fields, weight_heatmap

__all__ = ["VIEW_KINDS", "figure_from_experiment", "figure_from_frame", "merge_frames"]

VIEW_KINDS = ("raster", "traces", "weights", "receptive_fields", "series", "reward", "points", "rates")

_STREAMS = ("spikes", "traces", "series", "points")


def _check_frame(frame: Any, name: str = "frame") -> Mapping[str, Any]:
    if not isinstance(frame, Mapping):
        raise TypeError(f"{name} must be a dict in the Experiment.frame() layout, got {type(frame).__name__}")
    return frame


def merge_frames(frames: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Concatenate frames, oldest first, into one frame-shaped dict.

    ``spikes`` / ``traces`` / ``series`` / ``points``: each pair of arrays is
    concatenated along the first axis, per name; ``weights``: the last matrix
    seen per name; ``t``, ``time_ms`` and ``stats`` from the last frame, with
    ``stats['dropped']`` summed over all frames.
    """
    merged: dict[str, Any] = {"t": 0, "time_ms": 0.0, "weights": {}, "stats": {}}
    parts: dict[str, dict[str, list[tuple[np.ndarray, np.ndarray]]]] = {key: {} for key in _STREAMS}
    dropped = 0
    count = 0
    for i, frame in enumerate(frames):
        frame = _check_frame(frame, f"frames[{i}]")
        count += 1
        merged["t"] = frame.get("t", merged["t"])
        merged["time_ms"] = frame.get("time_ms", merged["time_ms"])
        for key in _STREAMS:
            for name, pair in frame.get(key, {}).items():
                parts[key].setdefault(name, []).append((np.asarray(pair[0]), np.asarray(pair[1])))
        merged["weights"].update(frame.get("weights", {}))
        stats = dict(frame.get("stats", {}))
        dropped += int(stats.get("dropped", 0))
        merged["stats"] = stats
    if count == 0:
        raise ValueError("frames must contain at least one frame, got none")
    merged["stats"]["dropped"] = dropped
    for key in _STREAMS:
        merged[key] = {
            name: (np.concatenate([a for a, _ in pairs]), np.concatenate([b for _, b in pairs]))
            for name, pairs in parts[key].items()
        }
    return merged


def _recorded_span(frame: Mapping[str, Any]) -> int:
    """Steps covered by ``frame``: from its earliest recorded step (any stream) up to ``frame['t']``."""
    firsts = [
        int(np.min(pair[0]))
        for key in ("spikes", "traces", "series")
        for pair in frame.get(key, {}).values()
        if len(pair[0])
    ]
    t = int(frame.get("t", 0))
    return max(1, t - min(firsts)) if firsts else max(1, t)


def _pick(section: Mapping[str, Any], kind: str, name: str | None) -> str:
    if not section:
        raise ValueError(f"view {kind!r}: this experiment records no {kind}")
    if name is None:
        return next(iter(section))
    if name not in section:
        raise ValueError(f"name {name!r} is not a recorded {kind} view; allowed: {sorted(section)}")
    return name


def figure_from_frame(
    frame: Mapping[str, Any],
    views: Mapping[str, Any],
    view: str,
    name: str | None = None,
    **kwargs: Any,
) -> go.Figure:
    """Build the figure for one ``view`` kind (see the module docstring) of ``frame``.

    ``views`` is the experiment's ``views()``; ``name`` picks the layer /
    trace / matrix / series / point set (default: the first). Extra keyword
    arguments go to the figure function (e.g. ``title``, ``height``,
    ``theory``, ``duration``).
    """
    frame = _check_frame(frame)
    if not isinstance(views, Mapping):
        raise TypeError(f"views must be the dict returned by Experiment.views(), got {type(views).__name__}")
    if view not in VIEW_KINDS:
        raise ValueError(f"view must be one of {', '.join(VIEW_KINDS)}; got {view!r}")
    dt = views.get("dt")
    if view in ("raster", "rates"):
        layers = views.get("raster", {})
        if view == "raster" and name is None and len(layers) > 1:
            sizes = {n: meta["size"] for n, meta in layers.items()}
            return raster_layers({n: frame["spikes"][n] for n in layers}, sizes=sizes, dt=dt, **kwargs)
        key = _pick(layers, "raster", name)
        steps, neurons = frame["spikes"][key]
        meta = layers[key]
        if view == "raster":
            kwargs.setdefault("title", meta.get("label", key))
            return raster(steps, neurons, dt=dt, n_neurons=meta["size"], name=key, **kwargs)
        kwargs.setdefault("duration", _recorded_span(frame))
        kwargs.setdefault("title", f"Firing rates: {meta.get('label', key)}")
        return firing_rate_histogram(steps=steps, neurons=neurons, n_neurons=meta["size"], dt=dt, **kwargs)
    if view == "traces":
        key = _pick(views.get("traces", {}), "traces", name)
        meta = views["traces"][key]
        steps, values = frame["traces"][key]
        kwargs.setdefault("title", meta.get("label", key))
        kwargs.setdefault("threshold", meta.get("threshold"))
        return membrane_traces(steps, values, meta.get("labels"), dt=dt, **kwargs)
    if view in ("weights", "receptive_fields"):
        key = _pick(views.get("weights", {}), "weights", name)
        meta = views["weights"][key]
        if key not in frame.get("weights", {}):
            raise ValueError(
                f"frame holds no matrix for weights {key!r}: a frame carries a matrix only when it changed "
                "since the previous frame (merge_frames keeps the newest one)"
            )
        w = frame["weights"][key]
        kwargs.setdefault("title", meta.get("label", key))
        if meta.get("vmin") is not None and meta.get("vmax") is not None and meta["vmin"] < meta["vmax"]:
            kwargs.setdefault("zrange", (meta["vmin"], meta["vmax"]))
        if view == "weights":
            return weight_heatmap(w, **kwargs)
        if meta.get("rf_shape") is None:
            raise ValueError(f"weights {key!r} have no receptive-field image shape (rf_shape is None)")
        return receptive_fields(w, meta["rf_shape"], **kwargs)
    if view == "series":
        key = _pick(views.get("series", {}), "series", name)
        meta = views["series"][key]
        steps, values = frame["series"][key]
        labels = meta.get("labels")
        if labels is not None and np.ndim(values) == 2 and len(labels) != np.shape(values)[1]:
            labels = None
        kwargs.setdefault("title", meta.get("label", key))
        return time_series(steps, values, labels, y_label=key, dt=dt, **kwargs)
    if view == "reward":
        series = views.get("series", {})
        key = name or "reward"
        _pick(series, "series", key)
        trace_name = kwargs.pop("eligibility_series", "eligibility")
        steps, reward = frame["series"][key]
        eligibility = frame["series"].get(trace_name) if trace_name in series else None
        if eligibility is not None:
            labels = series[trace_name].get("labels")
            m = 1 if np.ndim(eligibility[1]) == 1 else np.shape(eligibility[1])[1]
            kwargs.setdefault("eligibility_labels", labels if m > 1 and labels and len(labels) == m else None)
        return reward_history(steps, reward, eligibility, dt=dt, **kwargs)
    key = _pick(views.get("points", {}), "points", name)
    meta = views["points"][key]
    x, y = frame["points"][key]
    kwargs.setdefault("title", meta.get("label", key))
    return stdp_window(x, y, **kwargs)


def figure_from_experiment(
    exp: Any, view: str, name: str | None = None, *, frame: Any = None, **kwargs: Any
) -> go.Figure:
    """:func:`figure_from_frame` for a live experiment.

    ``frame`` defaults to ``exp.frame()``, which *consumes* what is new (a
    dashboard reading the same experiment would miss it); pass a frame, e.g.
    ``merge_frames`` of the frames collected so far, to plot a longer history.
    For ``'points'`` the experiment's ``theoretical_window`` is the default
    ``theory`` when it has one.
    """
    if not (hasattr(exp, "frame") and hasattr(exp, "views")):
        raise TypeError(f"exp must be an Experiment (with frame() and views()), got {type(exp).__name__}")
    if view == "points" and "theory" not in kwargs and callable(getattr(exp, "theoretical_window", None)):
        kwargs["theory"] = exp.theoretical_window
    return figure_from_frame(exp.frame() if frame is None else frame, exp.views(), view, name, **kwargs)
