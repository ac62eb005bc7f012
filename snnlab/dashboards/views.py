"""Live Bokeh views fed by Experiment frames.

Each view owns Bokeh ``ColumnDataSource`` objects inside a ``pn.pane.Bokeh``
and an ``update(frame)`` method that appends what is new with
``ColumnDataSource.stream(..., rollover=...)`` (the browser receives only the
new rows and keeps a bounded window), so memory on both ends stays constant
over time. The views never touch the experiment: a :class:`Dashboard` drains
``experiment.frame()`` and hands the same frame to every view inside one
``pn.io.hold()``. Figures use Bokeh's canvas backend.

Frame layout consumed (see ``snnlab.lab.experiment``)::

    frame['spikes'][layer]  = (steps int64[k], neuron int32[k])
    frame['traces'][name]   = (steps int64[k], values float32[k, m])
    frame['weights'][name]  = float32[r, c]            (only when changed)
    frame['series'][name]   = (steps int64[k], values float32[k] or [k, m])
    frame['points'][name]   = (x float32[k], y float32[k])
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import panel as pn
from bokeh.layouts import column as bk_column
from bokeh.models import ColorBar, ColumnDataSource, LinearColorMapper, Range1d, Span
from bokeh.palettes import Viridis256
from bokeh.plotting import figure

__all__ = [
    "FollowRange",
    "LiveRaster",
    "MembraneTrace",
    "SeriesHistory",
    "StdpWindow",
    "WeightHeatmap",
    "receptive_field_grid",
]

PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#000000")
SPIKE_COLOR = "#1a1a1a"
THRESHOLD_COLOR = "#D55E00"
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


class FollowRange:
    """A ``Range1d`` the server keeps around the data shown, instead of a browser-computed ``DataRange1d``.

    A ``DataRange1d`` is recomputed by the browser after every streamed frame
    and each new ``start``/``end`` is sent back to the server, i.e. one message
    upstream per frame and view. :meth:`fit` sets
    ``[c - h, c + h]`` with ``c = (lo + hi) / 2`` and
    ``h = 0.55 * max(hi - lo, min_span)`` (5 % margin each side), and only when
    the data leaves the current range or fills less than ``shrink`` of it.
    """

    def __init__(self, start: float = 0.0, end: float = 1.0, *, min_span: float = 1e-3,
                 shrink: float = 0.25) -> None:
        self.range = Range1d(start, end)
        self.min_span = float(min_span)
        self.shrink = float(shrink)

    def fit(self, lo: float, hi: float) -> bool:
        """Follow data spanning ``[lo, hi]``; returns True when the range moved."""
        lo, hi = float(lo), float(hi)
        if not (np.isfinite(lo) and np.isfinite(hi)):
            return False
        span = max(hi - lo, self.min_span)
        start, end = self.range.start, self.range.end
        if lo >= start and hi <= end and span >= self.shrink * (end - start):
            return False
        center, half = (lo + hi) / 2.0, 0.55 * span
        self.range.update(start=center - half, end=center + half)
        return True


def _finite_bounds(columns: Sequence[Any]) -> tuple[float, float]:
    lo, hi = np.inf, -np.inf
    for col in columns:
        values = np.asarray(col, dtype=np.float64)
        values = values[np.isfinite(values)]
        if values.size:
            lo, hi = min(lo, float(values.min())), max(hi, float(values.max()))
    return lo, hi


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


class LiveRaster(_View):
    """Spike raster of one or more layers over the last ``window`` steps.

    One figure per layer (x: step, y: neuron index), a rectangle per spike.
    Each layer's source keeps at most ``rollover`` events, where
    ``rollover = min(window * size, max_points)``.

    Parameters
    ----------
    layers : mapping
        ``{layer name: number of neurons}``.
    window : int
        Steps shown (the x axis follows the newest step).
    max_points : int
        Upper bound on the events kept per layer.
    x_range : Range1d, optional
        A shared x range (a :class:`Dashboard` links the raster and traces).
    """

    def __init__(
        self,
        layers: Mapping[str, int],
        *,
        window: int = 200,
        max_points: int = 50_000,
        x_range: Range1d | None = None,
        height: int = 220,
    ) -> None:
        super().__init__()
        if not isinstance(layers, Mapping) or not layers:
            raise ValueError(f"layers must be a non-empty mapping {{name: size}}, got {layers!r}")
        self.window = _check_window(window)
        if isinstance(max_points, bool) or not isinstance(max_points, int) or max_points < 1:
            raise ValueError(f"max_points must be an integer >= 1, got {max_points!r}")
        self.x_range = x_range if x_range is not None else Range1d(0, self.window)
        self.sizes = {}
        self.sources: dict[str, ColumnDataSource] = {}
        self.rollover: dict[str, int] = {}
        figures = []
        for name, size in layers.items():
            size = int(size)
            if size < 1:
                raise ValueError(f"layers[{name!r}] must be a size >= 1, got {size!r}")
            self.sizes[name] = size
            self.rollover[name] = min(self.window * size, max_points)
            src = ColumnDataSource(data={"x": np.zeros(0, np.int64), "y": np.zeros(0, np.int32)})
            self.sources[name] = src
            h = height if size > 8 else max(120, 20 * size + 60)
            fig = _figure(h, f"{name} spikes", x_range=self.x_range, y_range=Range1d(-0.5, size - 0.5))
            fig.rect("x", "y", width=1.0, height=0.9 if size <= 200 else 1.0, source=src,
                     fill_color=SPIKE_COLOR, line_color=None)
            fig.xaxis.axis_label = "step"
            fig.yaxis.axis_label = "neuron"
            figures.append(fig)
        self.figures = figures
        self._set_root(bk_column(*figures, sizing_mode="stretch_width"))

    def update(self, frame: Mapping[str, Any]) -> None:
        """Stream the new spike events of every layer in ``frame['spikes']``."""
        for name, (steps, neurons) in (frame.get("spikes") or {}).items():
            src = self.sources.get(name)
            if src is None or len(steps) == 0:
                continue
            keep = self.rollover[name]
            steps, neurons = _tail([np.asarray(steps), np.asarray(neurons)], keep)
            src.stream({"x": steps, "y": neurons}, rollover=keep)

    def clear(self) -> None:
        for src in self.sources.values():
            src.data = {"x": np.zeros(0, np.int64), "y": np.zeros(0, np.int32)}


class MembraneTrace(_View):
    """Membrane potential traces over the last ``window`` steps, with the threshold.

    ``frame['traces'][name] = (steps[k], values[k, m])`` becomes ``m`` lines
    (columns ``v0 .. v{m-1}``); a dashed horizontal span marks the firing
    threshold and moves when :meth:`set_threshold` is given a new value.
    """

    def __init__(
        self,
        name: str,
        labels: Sequence[str],
        *,
        threshold: float | None = None,
        window: int = 200,
        x_range: Range1d | None = None,
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
        self.x_range = x_range if x_range is not None else Range1d(0, self.window)
        self.columns = [f"v{i}" for i in range(len(labels))]
        self.source = ColumnDataSource(data=self._empty())
        self.y = FollowRange(min(0.0, threshold or 0.0), max(1.0, threshold or 1.0), min_span=0.1)
        fig = _figure(height, title or f"membrane {name}", x_range=self.x_range, y_range=self.y.range)
        for i, (col, label) in enumerate(zip(self.columns, labels)):
            fig.line("x", col, source=self.source, color=PALETTE[i % len(PALETTE)], line_width=1.5,
                     legend_label=label)
        fig.legend.location = "top_left"
        fig.legend.click_policy = "hide"
        fig.xaxis.axis_label = "step"
        fig.yaxis.axis_label = "v"
        self.threshold_span = Span(location=threshold if threshold is not None else 0.0,
                                   dimension="width", line_color=THRESHOLD_COLOR, line_dash="dashed",
                                   line_width=1.5, visible=threshold is not None)
        fig.add_layout(self.threshold_span)
        self.figure = fig
        self._set_root(fig)

    def _empty(self) -> dict[str, np.ndarray]:
        data: dict[str, np.ndarray] = {"x": np.zeros(0, np.int64)}
        for col in self.columns:
            data[col] = np.zeros(0, np.float32)
        return data

    def set_threshold(self, value: float | None) -> None:
        """Move the threshold line (hidden when ``value`` is None); no message if unchanged."""
        if value is None:
            if self.threshold_span.visible:
                self.threshold_span.visible = False
            return
        value = float(value)
        if self.threshold_span.location != value:
            self.threshold_span.location = value
        if not self.threshold_span.visible:
            self.threshold_span.visible = True
        self._fit_y()

    def update(self, frame: Mapping[str, Any]) -> None:
        """Stream the new rows of ``frame['traces'][self.key]``."""
        entry = (frame.get("traces") or {}).get(self.key)
        if entry is None:
            return
        steps, values = np.asarray(entry[0]), np.asarray(entry[1])
        if len(steps) == 0:
            return
        if values.ndim == 1:
            values = values[:, None]
        steps, values = _tail([steps, values], self.window)
        data = {"x": steps}
        for i, col in enumerate(self.columns):
            data[col] = values[:, i] if i < values.shape[1] else np.full(len(steps), np.nan, np.float32)
        self.source.stream(data, rollover=self.window)
        self._fit_y()

    def _fit_y(self) -> None:
        lo, hi = _finite_bounds([self.source.data[col] for col in self.columns])
        if self.threshold_span.visible:
            lo, hi = min(lo, self.threshold_span.location), max(hi, self.threshold_span.location)
        self.y.fit(lo, hi)

    def clear(self) -> None:
        self.source.data = self._empty()


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


class SeriesHistory(_View):
    """History of scalar or vector series (reward, eligibility, ...), last ``window`` rows.

    ``frame['series'][name] = (steps[k], values[k] or [k, m])``; one figure
    per series, one line per column.
    """

    def __init__(
        self,
        series: Mapping[str, int],
        *,
        labels: Mapping[str, Sequence[str] | None] | None = None,
        window: int = 2000,
        height: int = 160,
        title: str = "history",
    ) -> None:
        super().__init__()
        if not isinstance(series, Mapping) or not series:
            raise ValueError(f"series must be a non-empty mapping {{name: width}}, got {series!r}")
        self.window = _check_window(window)
        self.widths = {name: max(1, int(m)) for name, m in series.items()}
        self.sources: dict[str, ColumnDataSource] = {}
        self.x = FollowRange(0.0, float(self.window), min_span=1.0, shrink=0.0)
        self.y: dict[str, FollowRange] = {}
        self.figures = []
        for name, m in self.widths.items():
            src = ColumnDataSource(data=self._empty(m))
            self.sources[name] = src
            self.y[name] = FollowRange(-1.0, 1.0, min_span=1e-3)
            fig = _figure(height, name if len(self.widths) > 1 else title, x_axis_label="step",
                          x_range=self.x.range, y_range=self.y[name].range)
            names = list((labels or {}).get(name) or [])
            for j in range(m):
                label = names[j] if j < len(names) else (name if m == 1 else f"{name}[{j}]")
                fig.line("x", f"v{j}", source=src, color=PALETTE[j % len(PALETTE)], line_width=1.5,
                         legend_label=label)
            fig.legend.location = "top_left"
            fig.legend.click_policy = "hide"
            self.figures.append(fig)
        self._set_root(bk_column(*self.figures, sizing_mode="stretch_width"))

    @staticmethod
    def _empty(m: int) -> dict[str, np.ndarray]:
        data = {"x": np.zeros(0, np.int64)}
        for j in range(m):
            data[f"v{j}"] = np.zeros(0, np.float32)
        return data

    def update(self, frame: Mapping[str, Any]) -> None:
        """Stream the new rows of every series in ``frame['series']``."""
        for name, (steps, values) in (frame.get("series") or {}).items():
            src = self.sources.get(name)
            if src is None or len(steps) == 0:
                continue
            steps, values = _tail([np.asarray(steps), np.asarray(values)], self.window)
            if values.ndim == 1:
                values = values[:, None]
            m = self.widths[name]
            data = {"x": steps}
            for j in range(m):
                data[f"v{j}"] = values[:, j] if j < values.shape[1] else np.full(len(steps), np.nan)
            src.stream(data, rollover=self.window)
            self.y[name].fit(*_finite_bounds([src.data[f"v{j}"] for j in range(m)]))
            xs = src.data["x"]
            last = float(xs[-1])
            if last > self.x.range.end or last < self.x.range.start:
                # the last `window` steps shown, room for 5 % more on the right
                end = max(float(self.window), last + 0.05 * self.window)
                self.x.range.update(start=max(0.0, end - self.window), end=end)

    def clear(self) -> None:
        for name, src in self.sources.items():
            src.data = self._empty(self.widths[name])
