"""The Experiment contract: a live, steerable simulation that UIs read frames from.

An :class:`Experiment` is a :class:`param.Parameterized` that owns a network
(engine modules), its input, its learners and bounded recorders. It is
UI-free (``param``, ``numpy`` and ``torch`` only): dashboards, notebooks and
scripts drive it through this interface and nothing else.

Live parameters
    Declared as ``param.Number`` / ``Integer`` / ``Boolean`` / ``Selector``
    with ``bounds`` and ``doc``. Setting an out-of-bounds value raises
    ``ValueError`` (naming the parameter) and keeps the old value. Every
    accepted change is pushed into the engine modules, under :attr:`lock`,
    before the next simulated step. Base parameters: ``speed`` (target
    simulated steps per second while running, bounds ``(1, 100000)``) and
    ``seed`` (seed of the experiment's own ``torch.Generator``; takes effect
    on :meth:`reset`; initial weights are drawn once, at construction).
    Structural settings (sizes) are constructor arguments and read-only
    afterwards.

Attributes
    ``lock`` (``threading.RLock``; hold it to read or write engine state from
    another thread), ``t`` (steps simulated), ``dt`` (ms per step),
    ``running`` (bool, a background run is active), ``error`` (message of the
    last exception raised by a background step, or ``None``), ``generator``
    (the experiment's ``torch.Generator``; the global RNG is never used).

Methods
    ``step(n=1)`` simulate ``n`` steps now (in the caller's thread);
    ``run()`` start stepping in the background, paced to ``speed``
    (idempotent; one thread steps every running experiment, see
    :mod:`snnlab.lab.runner`); ``pause()`` stop and wait for the step under
    way; ``close()`` pause and release;
    ``reset()`` state, recorders and learner state back to the start,
    weights back to their initial values, the generator re-seeded from
    ``seed``; parameters keep their current values;
    ``frame()`` everything new since the previous ``frame()``;
    ``views()`` static description of what is recorded;
    ``save(path)`` / ``load(path)`` (see :mod:`snnlab.lab.persistence`):
    loading and then continuing is bit-identical to never stopping.

Frame layout (``frame()``; all arrays are fresh numpy arrays)::

    {'t': int,                      # steps simulated so far
     'time_ms': float,              # t * dt
     'spikes': {layer: (steps int64[k], neuron int32[k])},
     'traces': {name: (steps int64[k], values float32[k, m])},
     'weights': {name: float32[r, c]},   # only the matrices changed since the last frame
     'series': {name: (steps int64[k], values float32[k] or float32[k, m])},
     'points': {name: (x float32[k], y float32[k])},
     'stats': {'steps_per_second': float, 'running': bool,
               'error': str | None, 'dropped': int}}

``dropped`` counts items that were overwritten in a ring buffer before any
``frame()`` read them. The first frame after construction, :meth:`reset` or
:meth:`load` contains every weight matrix.

``views()`` layout::

    {'dt': float,
     'raster': {layer: {'size': int, 'label': str}},
     'traces': {name: {'labels': [str] * m, 'threshold': float | None, 'label': str}},
     'weights': {name: {'shape': (r, c), 'rf_shape': (h, w) | None, 'label': str,
                        'vmin': float, 'vmax': float}},
     'series': {name: {'labels': [str] * m or [str], 'label': str}},
     'points': {name: {'x_label': str, 'y_label': str, 'label': str}},
     'params': [names of the live parameters, in declaration order]}

Subclasses implement :meth:`build` (create modules with :meth:`add_module`
and recorders with :meth:`add_raster`, :meth:`add_trace`,
:meth:`add_weights`, :meth:`add_series`, :meth:`add_points`),
:meth:`apply_params` (push parameter values into the modules) and
:meth:`advance` (simulate one step and record it); optionally
:meth:`on_reset`, :meth:`extra_state` / :meth:`load_extra_state`.
"""

from __future__ import annotations

import copy
import os
import threading
from collections.abc import Callable
from typing import Any

import numpy as np
import param
import torch
from torch import nn

from ..base import MemoryModule
from .recorders import EventRing, PointRing, RingBuffer, SeriesRing, SnapshotRing, TraceRing
from .runner import RUNNER

__all__ = ["Experiment"]

_BASE_PARAMS = ("name",)



class Experiment(param.Parameterized):
    """Base class of live experiments; see the module docstring for the full contract."""

    speed = param.Number(
        default=200.0,
        bounds=(1, 100_000),
        doc="Target simulated steps per second while running.",
    )
    seed = param.Integer(
        default=0,
        bounds=(0, 2**31 - 1),
        doc="Seed of the experiment's random generator; takes effect on reset().",
    )

    #: simulated milliseconds per step
    dt: float = 1.0

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.lock = threading.RLock()
        self.t = 0
        self.error: str | None = None
        self.error_traceback: str | None = None
        self.generator = torch.Generator().manual_seed(int(self.seed))
        self._modules: dict[str, nn.Module] = {}
        self._rasters: dict[str, tuple[EventRing, dict[str, Any]]] = {}
        self._traces: dict[str, tuple[TraceRing, dict[str, Any]]] = {}
        self._series: dict[str, tuple[SeriesRing, dict[str, Any]]] = {}
        self._points: dict[str, tuple[PointRing, dict[str, Any]]] = {}
        self._weights: dict[str, dict[str, Any]] = {}
        self._cursors: dict[str, int] = {}
        self._sps = 0.0
        self._params_dirty = True
        with self.lock:
            self.build()
            self._initial_state = self._module_state_dicts()
            self.apply_params()
            self._params_dirty = False
        self.param.watch(self._on_param_change, self.live_param_names())

    # ================================================================== hooks for subclasses
    def build(self) -> None:
        """Create the network, input, learners and recorders (called once, under :attr:`lock`)."""

    def apply_params(self) -> None:
        """Push the current parameter values into the engine modules (called under :attr:`lock`)."""

    def advance(self) -> None:
        """Simulate the step with index :attr:`t` and record it (called under :attr:`lock`)."""
        raise NotImplementedError(f"{type(self).__name__} must implement advance()")

    def on_reset(self) -> None:
        """Reset state kept outside modules and recorders (called at the end of :meth:`reset`)."""

    def extra_state(self) -> dict[str, Any]:
        """State kept outside modules and recorders, for :meth:`save` (tensors and plain values)."""
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`extra_state` output."""

    # ================================================================== registration
    def add_module(self, name: str, module: nn.Module) -> nn.Module:
        """Register an engine module (its parameters, buffers and memories are saved and reset)."""
        if not isinstance(module, nn.Module):
            raise TypeError(f"module must be a torch.nn.Module, got {type(module).__name__}")
        self._modules[name] = module
        return module

    @property
    def modules(self) -> dict[str, nn.Module]:
        """The registered engine modules by name."""
        return dict(self._modules)

    def add_raster(self, name: str, size: int, capacity: int = 200_000, label: str = "") -> EventRing:
        """Record spike events of a layer of ``size`` neurons (``capacity`` events kept)."""
        ring = EventRing(capacity)
        self._rasters[name] = (ring, {"size": int(size), "label": label or name})
        return ring

    def add_trace(
        self,
        name: str,
        labels: list[str],
        capacity: int = 2000,
        threshold: Callable[[], float | None] | None = None,
        label: str = "",
    ) -> TraceRing:
        """Record ``len(labels)`` values per step (e.g. membrane potentials); ``threshold()`` for views."""
        ring = TraceRing(capacity, len(labels))
        self._traces[name] = (ring, {"labels": list(labels), "threshold": threshold, "label": label or name})
        return ring

    def add_series(
        self, name: str, labels: list[str] | None = None, capacity: int = 5000, label: str = ""
    ) -> SeriesRing:
        """Record a scalar series (``labels`` ``None``) or ``len(labels)`` values per row."""
        ring = SeriesRing(capacity, None if labels is None else len(labels))
        self._series[name] = (
            ring,
            {"labels": [name] if labels is None else list(labels), "label": label or name},
        )
        return ring

    def add_points(
        self, name: str, x_label: str, y_label: str, capacity: int = 5000, label: str = ""
    ) -> PointRing:
        """Record ``(x, y)`` points (e.g. measured STDP pairs)."""
        ring = PointRing(capacity)
        self._points[name] = (ring, {"x_label": x_label, "y_label": y_label, "label": label or name})
        return ring

    def add_weights(
        self,
        name: str,
        getter: Callable[[], torch.Tensor],
        rf_shape: tuple[int, int] | None = None,
        vmin: float = 0.0,
        vmax: float = 1.0,
        snapshot_every: int = 100,
        snapshots: int = 50,
        label: str = "",
    ) -> SnapshotRing:
        """Expose the 2-D matrix ``getter()``; a snapshot is kept every ``snapshot_every`` changed steps."""
        shape = tuple(getter().shape)
        if len(shape) != 2:
            raise ValueError(f"weights {name!r} must be a 2-D matrix, got shape {shape}")
        ring = SnapshotRing(snapshots, shape)  # type: ignore[arg-type]
        self._weights[name] = {
            "getter": getter,
            "ring": ring,
            "rf_shape": rf_shape,
            "vmin": float(vmin),
            "vmax": float(vmax),
            "label": label or name,
            "shape": shape,
            "every": int(snapshot_every),
            "version": 0,
            "seen": -1,
            "last_snapshot": -1,
        }
        return ring

    def weights_changed(self, name: str) -> None:
        """Tell readers that the matrix ``name`` changed at the current step."""
        entry = self._weights[name]
        entry["version"] += 1
        if self.t - entry["last_snapshot"] >= entry["every"]:
            self._snapshot_weights(name)

    def _snapshot_weights(self, name: str) -> None:
        entry = self._weights[name]
        matrix = entry["getter"]().detach().to(torch.float32).cpu().numpy()
        entry["ring"].push(steps=np.array([self.t], dtype=np.int64), matrix=matrix[None])
        entry["last_snapshot"] = self.t

    def weight_snapshots(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """The kept snapshots of ``name``: ``(steps int64[k], matrices float32[k, r, c])``."""
        with self.lock:
            rows = self._weights[name]["ring"].latest()
        return rows["steps"], rows["matrix"]

    # ================================================================== parameters
    def live_param_names(self) -> list[str]:
        """Names of the parameters a person can move (every parameter except ``name``)."""
        return [p for p in self.param if p not in _BASE_PARAMS]

    def _on_param_change(self, *events: Any) -> None:
        self._params_dirty = True

    def _apply_if_dirty(self) -> None:
        if self._params_dirty:
            self._params_dirty = False
            self.apply_params()

    # ================================================================== stepping
    def step(self, n: int = 1) -> None:
        """Simulate ``n`` steps now, in the caller's thread (pending parameter changes apply first)."""
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
            raise TypeError(f"n must be an int >= 0, got {type(n).__name__} {n!r}")
        if n < 0:
            raise ValueError(f"n must be an int >= 0, got {n!r}")
        with self.lock, torch.no_grad():
            for _ in range(int(n)):
                self._step_one()

    def _step_one(self) -> None:
        self._apply_if_dirty()
        self.advance()
        self.t += 1

    @property
    def running(self) -> bool:
        """Whether a background run is active."""
        return RUNNER.is_running(self)

    def run(self) -> None:
        """Start simulating in the background, paced to ``speed`` (no-op if already running).

        Every running experiment of the process is stepped by one shared
        thread (:mod:`snnlab.lab.runner`).
        """
        if self.running:
            return
        self.error = None
        self.error_traceback = None
        RUNNER.start(self)

    def pause(self) -> None:
        """Stop the background run; returns once no step of this experiment is under way.

        Call it without holding :attr:`lock` (a step in progress may be waiting for it).
        """
        RUNNER.stop(self)
        self._sps = 0.0

    def close(self) -> None:
        """Stop the background run; the experiment can still be stepped afterwards."""
        self.pause()

    # ================================================================== reset
    def reset(self) -> None:
        """Back to step 0: states, learners, recorders, weights, generator; parameters are kept."""
        with self.lock:
            for name, module in self._modules.items():
                module.load_state_dict(self._initial_state[name])
                for sub in module.modules():
                    if isinstance(sub, MemoryModule):
                        sub.reset()
            for ring in self._all_rings():
                ring.clear()
            for entry in self._weights.values():
                entry["version"] = 0
                entry["seen"] = -1
                entry["last_snapshot"] = -1
            self._cursors.clear()
            self.generator.manual_seed(int(self.seed))
            self.t = 0
            self.error = None
            self.error_traceback = None
            self.on_reset()
            self._params_dirty = True

    def _module_state_dicts(self) -> dict[str, dict[str, torch.Tensor]]:
        return {
            name: {k: v.detach().clone() for k, v in module.state_dict().items()}
            for name, module in self._modules.items()
        }

    def _all_rings(self) -> list[RingBuffer]:
        rings: list[RingBuffer] = []
        for group in (self._rasters, self._traces, self._series, self._points):
            rings.extend(ring for ring, _ in group.values())
        rings.extend(entry["ring"] for entry in self._weights.values())
        return rings

    # ================================================================== reading
    def _read(self, key: str, ring: RingBuffer) -> tuple[dict[str, np.ndarray], int]:
        rows, cursor, dropped = ring.read_since(self._cursors.get(key, 0))
        self._cursors[key] = cursor
        return rows, dropped

    def frame(self) -> dict[str, Any]:
        """Everything recorded since the previous call (see the module docstring for the layout)."""
        with self.lock:
            dropped = 0
            spikes, traces, series, points, weights = {}, {}, {}, {}, {}
            for name, (ring, _) in self._rasters.items():
                rows, d = self._read("raster:" + name, ring)
                spikes[name] = (rows["steps"], rows["neurons"])
                dropped += d
            for name, (ring, _) in self._traces.items():
                rows, d = self._read("trace:" + name, ring)
                traces[name] = (rows["steps"], rows["values"])
                dropped += d
            for name, (ring, _) in self._series.items():
                rows, d = self._read("series:" + name, ring)
                series[name] = (rows["steps"], rows["values"])
                dropped += d
            for name, (ring, _) in self._points.items():
                rows, d = self._read("points:" + name, ring)
                points[name] = (rows["x"], rows["y"])
                dropped += d
            for name, entry in self._weights.items():
                if entry["seen"] != entry["version"]:
                    weights[name] = entry["getter"]().detach().to(torch.float32).cpu().numpy().copy()
                    entry["seen"] = entry["version"]
            return {
                "t": int(self.t),
                "time_ms": float(self.t * self.dt),
                "spikes": spikes,
                "traces": traces,
                "weights": weights,
                "series": series,
                "points": points,
                "stats": {
                    "steps_per_second": float(self._sps),
                    "running": self.running,
                    "error": self.error,
                    "dropped": int(dropped),
                },
            }

    def views(self) -> dict[str, Any]:
        """Static description of what this experiment records (see the module docstring)."""
        with self.lock:
            traces = {}
            for name, (_, meta) in self._traces.items():
                threshold = meta["threshold"]() if meta["threshold"] is not None else None
                traces[name] = {
                    "labels": list(meta["labels"]),
                    "threshold": None if threshold is None else float(threshold),
                    "label": meta["label"],
                }
            return {
                "dt": float(self.dt),
                "raster": {name: dict(meta) for name, (_, meta) in self._rasters.items()},
                "traces": traces,
                "weights": {
                    name: {
                        "shape": e["shape"],
                        "rf_shape": e["rf_shape"],
                        "label": e["label"],
                        "vmin": e["vmin"],
                        "vmax": e["vmax"],
                    }
                    for name, e in self._weights.items()
                },
                "series": {name: copy.deepcopy(meta) for name, (_, meta) in self._series.items()},
                "points": {name: dict(meta) for name, (_, meta) in self._points.items()},
                "params": self.live_param_names(),
            }

    def recorder_nbytes(self) -> int:
        """Bytes held by all recorders (constant: ring buffers are preallocated)."""
        return sum(ring.nbytes for ring in self._all_rings())

    # ================================================================== persistence
    def save(self, path: str | os.PathLike) -> None:
        """Write the full state to ``path`` atomically (see :mod:`snnlab.lab.persistence`)."""
        from .persistence import save_experiment

        save_experiment(self, path)

    def load(self, path: str | os.PathLike) -> None:
        """Restore a state written by :meth:`save` from an experiment of the same class and sizes."""
        from .persistence import load_experiment

        load_experiment(self, path)

