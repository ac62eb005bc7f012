"""Live views fed by Experiment frames.

Every view has an ``update(frame)`` method that sends the browser only what is
new, and the browser keeps a bounded window, so memory on both ends stays
constant over time. The scrolling views (:class:`LiveRaster`,
:class:`MembraneTrace`, :class:`SeriesHistory`) draw on
:class:`~snnlab.dashboards.scope.Scope` canvases; :class:`WeightHeatmap` and
:class:`StdpWindow` are Bokeh figures (canvas backend) whose sources are
replaced or streamed (``rollover``) only when their data change. The views
never touch the experiment: a :class:`Dashboard` drains ``experiment.frame()``
and hands the same frame to every view inside one ``pn.io.hold()``.

Frame layout consumed (see ``snnlab.lab.experiment``)::

    frame['spikes'][layer]  = (steps int64[k], neuron int32[k])
    frame['traces'][name]   = (steps int64[k], values float32[k, m])
    frame['weights'][name]  = float32[r, c]            (only when changed)
    frame['series'][name]   = (steps int64[k], values float32[k] or [k, m])
    frame['points'][name]   = (x float32[k], y float32[k])
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import panel as pn
from bokeh.models import ColorBar, ColumnDataSource, LinearColorMapper, Range1d, Span
from bokeh.palettes import Viridis256
from bokeh.plotting import figure

from .scope import PALETTE, Scope

__all__ = [
    "LiveRaster",
    "MembraneTrace",
    "SeriesHistory",
    "StdpWindow",
    "WeightHeatmap",
    "receptive_field_grid",
]

BACKEND = "canvas"


def _check_window(window: Any) -> int:
    if isinstance(window, bool) or not isinstance(window, (int, np.integer)) or window < 1:
        raise ValueError(f"window must be an integer >= 1 (steps shown), got {window!r}")
    return int(window)


def _figure(height: int, title: str, x_range: Range1d | None = None, **kwargs: Any) -> Any:
    opts: dict[str, Any] = dict(
        height=height,
        sizing_mode="stretch_width",
        title=title,
        output_backend=BACKEND,
        tools="pan,wheel_zoom,box_zoom,reset,save",
        toolbar_location="right",
    )
    if x_range is not None:
        opts["x_range"] = x_range
    opts.update(kwargs)
    fig = figure(**opts)
    fig.toolbar.logo = None
    return fig


def _tail(arrays: Sequence[np.ndarray], keep: int) -> list[np.ndarray]:
    """The last ``keep`` rows of aligned arrays (all have the same length)."""
    n = len(arrays[0])
    if n <= keep:
        return list(arrays)
    return [a[n - keep :] for a in arrays]


class _View(pn.viewable.Viewer):
    """Base class: a Bokeh figure (or column of figures) in a ``pn.pane.Bokeh``."""

    root: Any = None
    pane: Any = None

    def _set_root(self, root: Any) -> None:
        self.root = root
        self.pane = pn.pane.Bokeh(root, sizing_mode="stretch_width")

    def __panel__(self) -> pn.pane.Bokeh:
        return self.pane

    def update(self, frame: Mapping[str, Any]) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def clear(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError


def _ints(values: Any) -> np.ndarray:
    """int32 arrays: Bokeh sends them as binary buffers without walking them element by element."""
    return np.ascontiguousarray(np.asarray(values), dtype=np.int32)


class LiveRaster(pn.viewable.Viewer):
    """Spike raster of one or more layers over the last ``window`` steps.

    One :class:`~snnlab.dashboards.scope.Scope` canvas per layer (x: step,
    y: neuron index, neuron 0 at the bottom). :meth:`update` sends each layer
    only the spikes of the new frame and the current step count; the browser
    keeps the spikes of the last ``window`` steps. The server keeps the same
    window (at most ``max_points`` spikes per layer), readable with
    :meth:`events`.

    Parameters
    ----------
    layers : mapping
        ``{layer name: number of neurons}``.
    window : int
        Steps shown (the x axis follows the newest step).
    max_points : int
        Upper bound on the spikes a frame sends and the server keeps per layer.
    height : int
        Pixel height of each layer's plot (small layers get less).
    """

    def __init__(
        self,
        layers: Mapping[str, int],
        *,
        window: int = 200,
        max_points: int = 50_000,
        height: int = 220,
    ) -> None:
        super().__init__()
        if not isinstance(layers, Mapping) or not layers:
            raise ValueError(f"layers must be a non-empty mapping {{name: size}}, got {layers!r}")
        self.window = _check_window(window)
        if isinstance(max_points, bool) or not isinstance(max_points, int) or max_points < 1:
            raise ValueError(f"max_points must be an integer >= 1, got {max_points!r}")
        self.max_points = max_points
        self.sizes: dict[str, int] = {}
        self.scopes: dict[str, Scope] = {}
        self._steps: dict[str, np.ndarray] = {}
        self._neurons: dict[str, np.ndarray] = {}
        for name, size in layers.items():
            if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
                raise ValueError(f"layers[{name!r}] must be a size >= 1, got {size!r}")
            size = int(size)
            self.sizes[name] = size
            h = height if size > 8 else max(120, 20 * size + 60)
            self.scopes[name] = Scope(kind="raster", title=f"{name} spikes", window=self.window, size=size,
                                      height=h, sizing_mode="stretch_width")
            self._steps[name] = np.zeros(0, np.int64)
            self._neurons[name] = np.zeros(0, np.int64)
        self.t = 0
        self._clear = False
        self.layout = pn.Column(*self.scopes.values(), sizing_mode="stretch_width")

    def __panel__(self) -> pn.Column:
        return self.layout

    def update(self, frame: Mapping[str, Any]) -> None:
        """Send every layer the new spikes of ``frame['spikes']`` and the step count ``frame['t']``.

        Without ``'t'`` the step count becomes one past the newest spike. A
        layer gets no message when nothing changed for it (no new spike, same
        ``t``, no pending clear).
        """
        spikes = frame.get("spikes") or {}
        newest = [int(np.asarray(s)[-1]) + 1 for s, _ in spikes.values() if len(s)]
        t = int(frame["t"]) if frame.get("t") is not None else max([self.t, *newest])
        moved = t != self.t
        self.t = t
        first = max(self.window, t) - self.window
        for name, scope in self.scopes.items():
            steps, neurons = spikes.get(name, ((), ()))
            steps = np.asarray(steps, np.int64)[-self.max_points:]
            neurons = np.asarray(neurons, np.int64)[-self.max_points:]
            if not (moved or len(steps) or self._clear):
                continue
            kept_steps = np.concatenate([self._steps[name], steps])
            kept_neurons = np.concatenate([self._neurons[name], neurons])
            cut = max(int(np.searchsorted(kept_steps, first, side="left")), len(kept_steps) - self.max_points)
            self._steps[name], self._neurons[name] = kept_steps[cut:], kept_neurons[cut:]
            chunk: dict[str, Any] = {"t": t, "steps": _ints(steps), "neurons": _ints(neurons)}
            if self._clear:
                chunk["clear"] = True
            scope.send(chunk)
        self._clear = False

    def events(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """The spikes of layer ``name`` in the shown window: ``(steps int64[k], neurons int64[k])``."""
        return self._steps[name].copy(), self._neurons[name].copy()

    def clear(self) -> None:
        """Forget every spike (the next update tells the browser to do the same)."""
        for name in self.scopes:
            self._steps[name] = np.zeros(0, np.int64)
            self._neurons[name] = np.zeros(0, np.int64)
        self.t = 0
        self._clear = True


class MembraneTrace(pn.viewable.Viewer):
    """Membrane potential traces over the last ``window`` steps, with the threshold.

    ``frame['traces'][name] = (steps[k], values[k, m])`` becomes ``m`` lines on
    a :class:`~snnlab.dashboards.scope.Scope` canvas; a dashed line marks the
    firing threshold and moves when :meth:`set_threshold` is given a new value.
    The y range follows the data and the threshold in the browser. The server
    keeps the last ``window`` rows in :attr:`data` (``'x'`` and ``'v0'`` ..
    ``'v{m-1}'``).
    """

    def __init__(
        self,
        name: str,
        labels: Sequence[str],
        *,
        threshold: float | None = None,
        window: int = 200,
        height: int = 240,
        title: str | None = None,
    ) -> None:
        super().__init__()
        labels = [str(label) for label in labels]
        if not labels:
            raise ValueError(f"labels must name at least one trace for {name!r}, got {labels!r}")
        self.key = name
        self.labels = labels
        self.window = _check_window(window)
        self.columns = [f"v{i}" for i in range(len(labels))]
        self.scope = Scope(kind="traces", title=title or f"membrane {name}", window=self.window,
                           labels=labels, threshold=None if threshold is None else float(threshold),
                           height=height, sizing_mode="stretch_width")
        self.data: dict[str, np.ndarray] = self._empty()
        self.t = 0
        self._clear = False

    def __panel__(self) -> Scope:
        return self.scope

    def _empty(self) -> dict[str, np.ndarray]:
        data: dict[str, np.ndarray] = {"x": np.zeros(0, np.int64)}
        for col in self.columns:
            data[col] = np.zeros(0, np.float32)
        return data

    @property
    def threshold(self) -> float | None:
        """The threshold line's value (None: hidden)."""
        return self.scope.threshold

    def set_threshold(self, value: float | None) -> None:
        """Move the threshold line (hidden when ``value`` is None); no message if unchanged."""
        value = None if value is None else float(value)
        if self.scope.threshold != value:
            self.scope.threshold = value

    def update(self, frame: Mapping[str, Any]) -> None:
        """Send the new rows of ``frame['traces'][self.key]`` and the step count ``frame['t']``."""
        entry = (frame.get("traces") or {}).get(self.key)
        if entry is None:
            return
        steps, values = np.asarray(entry[0], np.int64), np.asarray(entry[1], np.float32)
        if len(steps) == 0 and not self._clear:
            return
        if values.ndim == 1:
            values = values[:, None]
        m = len(self.columns)
        if values.shape[1] < m:
            pad = np.full((len(steps), m - values.shape[1]), np.nan, np.float32)
            values = np.concatenate([values, pad], axis=1)
        steps, values = _tail([steps, values[:, :m]], self.window)
        t = int(frame["t"]) if frame.get("t") is not None else (int(steps[-1]) + 1 if len(steps) else self.t)
        self.t = t
        data = {"x": np.concatenate([self.data["x"], steps])[-self.window:]}
        for i, col in enumerate(self.columns):
            data[col] = np.concatenate([self.data[col], values[:, i]])[-self.window:]
        self.data = data
        chunk: dict[str, Any] = {"t": t, "steps": _ints(steps),
                                 "values": np.ascontiguousarray(values, np.float32).reshape(-1)}
        if self._clear:
            chunk["clear"] = True
            self._clear = False
        self.scope.send(chunk)

    def clear(self) -> None:
        """Forget the shown rows (the next update tells the browser to do the same)."""
        self.data = self._empty()
        self.t = 0
        self._clear = True


def receptive_field_grid(weights: np.ndarray, image_shape: Sequence[int],
                         columns: int | None = None) -> np.ndarray:
    """Tile the rows of ``weights`` ``[n, h*w]`` into a grid of ``h × w`` images.

    Returns an array of shape ``[rows*(h+1) - 1, columns*(w+1) - 1]`` with NaN
    separators, ``rows = ceil(n / columns)``, ``columns = ceil(sqrt(n))`` by
    default; image ``i`` sits at grid cell ``(i // columns, i % columns)``.
    """
    weights = np.asarray(weights, dtype=np.float32)
    h, w = (int(s) for s in image_shape)
    if weights.ndim != 2 or weights.shape[1] != h * w:
        raise ValueError(
            f"weights must have shape [n, {h * w}] for image_shape {tuple(image_shape)}, got {weights.shape}"
        )
    n = weights.shape[0]
    cols = columns or int(np.ceil(np.sqrt(n)))
    if cols < 1:
        raise ValueError(f"columns must be >= 1, got {columns!r}")
    rows = int(np.ceil(n / cols))
    grid = np.full((rows * (h + 1) - 1, cols * (w + 1) - 1), np.nan, dtype=np.float32)
    for i in range(n):
        r, c = divmod(i, cols)
        grid[r * (h + 1) : r * (h + 1) + h, c * (w + 1) : c * (w + 1) + w] = weights[i].reshape(h, w)
    return grid


class WeightHeatmap(_View):
    """A weight matrix as an image, replaced only when the weights changed.

    ``frame['weights'][name]`` (``[r, c]``, present only when changed) replaces
    the image; with ``image_shape=(h, w)`` each row is shown as an ``h × w``
    receptive field in a grid (:func:`receptive_field_grid`). Matrix row 0 is
    drawn at the top. The colour scale is ``[vmin, vmax]`` when given, else the
    data range of each new image. ``replacements`` counts image replacements and
    ``checksum`` is the sum of the weights shown.
    """

    def __init__(
        self,
        name: str,
        shape: Sequence[int],
        *,
        image_shape: Sequence[int] | None = None,
        vmin: float | None = None,
        vmax: float | None = None,
        height: int = 300,
        title: str | None = None,
    ) -> None:
        super().__init__()
        if len(tuple(shape)) != 2:
            raise ValueError(f"shape must be (rows, columns) for weights {name!r}, got {shape!r}")
        self.key = name
        self.shape = tuple(int(s) for s in shape)
        self.image_shape = tuple(int(s) for s in image_shape) if image_shape else None
        self.replacements = 0
        self.checksum = 0.0
        self.fixed = (vmin, vmax)
        self.mapper = LinearColorMapper(palette=Viridis256, low=0.0 if vmin is None else float(vmin),
                                        high=1.0 if vmax is None else float(vmax), nan_color="white")
        image = self._image(np.zeros(self.shape, np.float32))
        r, c = image.shape
        self.source = ColumnDataSource(data={"image": [image], "x": [0], "y": [0], "dw": [c], "dh": [r]})
        fig = _figure(height, title or f"weights {name}", x_range=Range1d(0, c), y_range=Range1d(r, 0),
                      match_aspect=True)
        fig.image(image="image", x="x", y="y", dw="dw", dh="dh", source=self.source,
                  color_mapper=self.mapper)
        fig.add_layout(ColorBar(color_mapper=self.mapper, width=8), "right")
        fig.xaxis.axis_label = "pre" if self.image_shape is None else "x"
        fig.yaxis.axis_label = "post" if self.image_shape is None else "y"
        self.figure = fig
        self._set_root(fig)

    def _image(self, weights: np.ndarray) -> np.ndarray:
        weights = np.asarray(weights, dtype=np.float32)
        if self.image_shape is not None:
            return receptive_field_grid(weights, self.image_shape)
        return weights

    def set_weights(self, weights: np.ndarray) -> None:
        """Replace the image (one message); rescale the colour map unless it is fixed."""
        image = self._image(weights)
        # image row 0 sits at y = 0, which the flipped y range draws at the top
        shown = np.ascontiguousarray(image)
        finite = image[np.isfinite(image)]
        lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
        lo = lo if self.fixed[0] is None else float(self.fixed[0])
        hi = hi if self.fixed[1] is None else float(self.fixed[1])
        if hi <= lo:
            hi = lo + 1e-6
        if (self.mapper.low, self.mapper.high) != (lo, hi):
            self.mapper.update(low=lo, high=hi)
        r, c = image.shape
        self.source.data = {"image": [shown], "x": [0], "y": [0], "dw": [c], "dh": [r]}
        self.replacements += 1
        self.checksum = float(finite.sum(dtype=np.float64))

    def update(self, frame: Mapping[str, Any]) -> None:
        """Replace the image only if ``frame['weights']`` carries this matrix."""
        weights = (frame.get("weights") or {}).get(self.key)
        if weights is not None:
            self.set_weights(weights)

    def clear(self) -> None:
        pass


class StdpWindow(_View):
    """Measured STDP pairs ``(Δt, Δw)`` over the rule's theoretical window.

    ``frame['points'][name] = (dt[k], dw[k])`` is streamed as dots (at most
    ``max_points`` kept); ``theory(dts) -> dws`` draws the curve, redrawn by
    :meth:`refresh_theory` only when its values change.
    """

    def __init__(
        self,
        name: str,
        *,
        theory: Callable[[np.ndarray], np.ndarray] | None = None,
        dt_range: tuple[float, float] = (-50.0, 50.0),
        max_points: int = 2000,
        height: int = 300,
        title: str | None = None,
        x_label: str | None = None,
        y_label: str | None = None,
    ) -> None:
        super().__init__()
        self.key = name
        self.theory = theory
        self.max_points = int(max_points)
        self.dts = np.linspace(float(dt_range[0]), float(dt_range[1]), 201)
        self.points = ColumnDataSource(data={"x": np.zeros(0, np.float32), "y": np.zeros(0, np.float32)})
        self.curve = ColumnDataSource(data={"x": self.dts, "y": np.full_like(self.dts, np.nan)})
        self._theory_values: np.ndarray | None = None
        fig = _figure(height, title or "STDP window", x_axis_label=x_label or "Δt = t_post − t_pre (ms)",
                      y_axis_label=y_label or "Δw")
        fig.line("x", "y", source=self.curve, color="#000000", line_width=2, legend_label="theory")
        fig.scatter("x", "y", source=self.points, color=PALETTE[0], size=6, alpha=0.7,
                    legend_label="measured")
        fig.legend.location = "top_left"
        fig.add_layout(Span(location=0, dimension="height", line_color="#888888", line_dash="dotted"))
        fig.add_layout(Span(location=0, dimension="width", line_color="#888888", line_dash="dotted"))
        self.figure = fig
        self._set_root(fig)
        self.refresh_theory()

    def refresh_theory(self) -> bool:
        """Recompute the theoretical curve; replaces it (returns True) only if it changed."""
        if self.theory is None:
            return False
        values = np.asarray(self.theory(self.dts), dtype=np.float64).reshape(-1)
        if self._theory_values is not None and np.array_equal(values, self._theory_values):
            return False
        self._theory_values = values
        self.curve.data = {"x": self.dts, "y": values}
        return True

    def update(self, frame: Mapping[str, Any]) -> None:
        """Stream the new measured pairs of ``frame['points'][self.key]``."""
        entry = (frame.get("points") or {}).get(self.key)
        if entry is None or len(entry[0]) == 0:
            return
        x, y = _tail([np.asarray(entry[0]), np.asarray(entry[1])], self.max_points)
        self.points.stream({"x": x, "y": y}, rollover=self.max_points)

    def clear(self) -> None:
        self.points.data = {"x": np.zeros(0, np.float32), "y": np.zeros(0, np.float32)}


class SeriesHistory(pn.viewable.Viewer):
    """History of scalar or vector series (reward, eligibility, ...), last ``window`` steps.

    ``frame['series'][name] = (steps[k], values[k] or [k, m])``; one
    :class:`MembraneTrace`-style scope per series (no threshold line), one line
    per column, y range following the data in the browser. ``traces[name]``
    is that series' view; its ``data`` holds the last ``window`` rows.

    A long history moves by a fraction of a pixel per frame, so the rows of
    consecutive frames are collected and sent together at most every
    ``interval`` seconds (0: every frame); :meth:`flush` sends them now.
    Nothing is dropped: only the last ``window`` rows are shown anyway, and
    at most that many wait.
    """

    def __init__(
        self,
        series: Mapping[str, int],
        *,
        labels: Mapping[str, Sequence[str] | None] | None = None,
        window: int = 2000,
        height: int = 160,
        title: str = "history",
        interval: float = 0.1,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        if not isinstance(series, Mapping) or not series:
            raise ValueError(f"series must be a non-empty mapping {{name: width}}, got {series!r}")
        if isinstance(interval, bool) or not isinstance(interval, (int, float)) or not interval >= 0:
            raise ValueError(f"interval must be a number >= 0 (seconds), got {interval!r}")
        self.window = _check_window(window)
        self.interval = float(interval)
        self.clock = clock
        self.widths = {name: max(1, int(m)) for name, m in series.items()}
        self.traces: dict[str, MembraneTrace] = {}
        for name, m in self.widths.items():
            names = list((labels or {}).get(name) or [])
            columns = [names[j] if j < len(names) else (name if m == 1 else f"{name}[{j}]") for j in range(m)]
            view = MembraneTrace(name, columns, window=self.window, height=height,
                                 title=name if len(self.widths) > 1 else title)
            view.scope.y_label = name
            self.traces[name] = view
        self._pending: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._t: int | None = None
        self._sent_at = -float("inf")
        self.layout = pn.Column(*self.traces.values(), sizing_mode="stretch_width")

    def __panel__(self) -> pn.Column:
        return self.layout

    def update(self, frame: Mapping[str, Any]) -> None:
        """Collect the new rows of every series in ``frame['series']``; send them when ``interval`` is up."""
        series = frame.get("series") or {}
        for name in self.traces:
            if name not in series:
                continue
            steps = np.asarray(series[name][0], np.int64)
            values = np.asarray(series[name][1], np.float32)
            m = self.widths[name]
            if values.ndim == 1:
                values = values[:, None]
            elif values.ndim != 2:
                values = values.reshape(len(steps), -1) if len(steps) else np.zeros((0, m), np.float32)
            # to the view's columns: extra ones are not shown, missing ones are NaN
            if values.shape[1] != m:
                shaped = np.full((len(steps), m), np.nan, np.float32)
                shaped[:, : min(m, values.shape[1])] = values[:, :m]
                values = shaped
            if name in self._pending:
                old_steps, old_values = self._pending[name]
                steps = np.concatenate([old_steps, steps])
                values = np.concatenate([old_values, values])
            self._pending[name] = (steps[-self.window:], values[-self.window:])
        if frame.get("t") is not None:
            self._t = int(frame["t"])
        if self.clock() - self._sent_at >= self.interval:
            self.flush()

    def flush(self) -> None:
        """Send the collected rows now."""
        self._sent_at = self.clock()
        pending, self._pending = self._pending, {}
        for name, view in self.traces.items():
            empty = (np.zeros(0, np.int64), np.zeros((0, self.widths[name]), np.float32))
            steps, values = pending.get(name, empty)
            view.update({"t": self._t, "traces": {name: (steps, values)}})

    def clear(self) -> None:
        self._pending = {}
        self._t = None
        self._sent_at = -float("inf")
        for view in self.traces.values():
            view.clear()
