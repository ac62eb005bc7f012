"""Saving and loading an :class:`~snnlab.lab.experiment.Experiment`.

The file is one ``torch.save`` archive holding only tensors and plain Python
values (so it loads with ``torch.load(weights_only=True)``):

* ``format``/``version``/``class`` -- identification;
* ``params`` -- every live parameter value;
* ``t`` -- steps simulated;
* ``modules`` -- ``state_dict()`` of every registered module;
* ``memories`` -- the memories of every :class:`~snnlab.base.MemoryModule`
  inside them (neuron potentials, learner traces and eligibilities);
* ``generator`` -- the state of the experiment's ``torch.Generator``;
* ``recorders`` -- contents and write counters of every ring buffer, frame
  cursors and weight-version bookkeeping;
* ``extra`` -- the subclass's :meth:`~snnlab.lab.experiment.Experiment.extra_state`.

The archive is written to a temporary file in the target directory and moved
into place with ``os.replace``, so a reader never sees a half-written file.
Loading into an experiment of the same class and sizes and then stepping
gives bit-identical results to never having stopped.
"""

from __future__ import annotations

import importlib
import os
import tempfile
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ..base import MemoryModule

if TYPE_CHECKING:
    from .experiment import Experiment

__all__ = ["load_experiment", "save_experiment"]

FORMAT = "snnlab-experiment"
VERSION = 1


# ---------------------------------------------------------------------- encoding to safe values
def _encode(value: Any) -> Any:
    """Turn ``value`` into tensors / plain values; numpy arrays and NamedTuples are tagged."""
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if isinstance(value, np.ndarray):
        return {"__ndarray__": torch.from_numpy(np.ascontiguousarray(value).copy())}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        return value.item()
    if isinstance(value, tuple) and hasattr(value, "_fields"):
        cls = type(value)
        return {
            "__namedtuple__": f"{cls.__module__}:{cls.__qualname__}",
            "fields": [_encode(v) for v in value],
        }
    if isinstance(value, tuple):
        return {"__tuple__": [_encode(v) for v in value]}
    if isinstance(value, list):
        return [_encode(v) for v in value]
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise TypeError(f"cannot save a dict with non-string keys: {list(value)[:5]!r}")
        return {k: _encode(v) for k, v in value.items()}
    raise TypeError(f"cannot save a value of type {type(value).__name__}: {value!r}")


def _decode(value: Any) -> Any:
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if not isinstance(value, dict):
        return value
    if "__ndarray__" in value:
        return value["__ndarray__"].numpy().copy()
    if "__tuple__" in value:
        return tuple(_decode(v) for v in value["__tuple__"])
    if "__namedtuple__" in value:
        module_name, _, qualname = value["__namedtuple__"].partition(":")
        if not module_name.startswith("snnlab."):
            raise ValueError(f"refusing to rebuild {value['__namedtuple__']!r}: not an snnlab type")
        cls: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            cls = getattr(cls, part)
        if not (isinstance(cls, type) and issubclass(cls, tuple) and hasattr(cls, "_fields")):
            raise ValueError(f"refusing to rebuild {value['__namedtuple__']!r}: not a NamedTuple")
        return cls(*[_decode(v) for v in value["fields"]])
    return {k: _decode(v) for k, v in value.items()}


# ---------------------------------------------------------------------- state collection
def _memories(exp: Experiment) -> dict[str, dict[str, dict[str, Any]]]:
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for name, module in exp._modules.items():
        per_module = {}
        for path, sub in module.named_modules():
            if isinstance(sub, MemoryModule):
                per_module[path] = {k: _encode(v) for k, v in sub.named_memories()}
        out[name] = per_module
    return out


def _recorders(exp: Experiment) -> dict[str, Any]:
    groups = {}
    for group_name, group in (
        ("raster", exp._rasters),
        ("trace", exp._traces),
        ("series", exp._series),
        ("points", exp._points),
    ):
        groups[group_name] = {name: _encode(ring.state()) for name, (ring, _) in group.items()}
    groups["weights"] = {
        name: {
            "ring": _encode(e["ring"].state()),
            "version": e["version"],
            "seen": e["seen"],
            "last_snapshot": e["last_snapshot"],
        }
        for name, e in exp._weights.items()
    }
    groups["cursors"] = dict(exp._cursors)
    return groups


def save_experiment(exp: Experiment, path: str | os.PathLike) -> None:
    """Write ``exp``'s full state to ``path`` atomically (temporary file + ``os.replace``)."""
    path = os.fspath(path)
    with exp.lock:
        archive = {
            "format": FORMAT,
            "version": VERSION,
            "class": f"{type(exp).__module__}.{type(exp).__qualname__}",
            "params": {name: _encode(getattr(exp, name)) for name in exp.live_param_names()},
            "t": int(exp.t),
            "modules": {
                name: {k: v.detach().clone() for k, v in m.state_dict().items()}
                for name, m in exp._modules.items()
            },
            "memories": _memories(exp),
            "generator": exp.generator.get_state(),
            "recorders": _recorders(exp),
            "extra": _encode(exp.extra_state()),
        }
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".snnlab-", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(archive, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def load_experiment(exp: Experiment, path: str | os.PathLike) -> None:
    """Restore a file written by :func:`save_experiment` into ``exp`` (same class and sizes).

    Raises ``ValueError`` if the file is not an experiment archive or was
    written by another class or with other sizes; ``exp`` is then unchanged.
    """
    path = os.fspath(path)
    archive = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(archive, dict) or archive.get("format") != FORMAT:
        raise ValueError(f"path {path!r} is not an snnlab experiment file")
    if archive.get("version") != VERSION:
        raise ValueError(f"path {path!r} has format version {archive.get('version')!r}, expected {VERSION}")
    expected = f"{type(exp).__module__}.{type(exp).__qualname__}"
    if archive["class"] != expected:
        raise ValueError(f"path {path!r} holds a {archive['class']}, cannot load it into a {expected}")
    if set(archive["modules"]) != set(exp._modules):
        raise ValueError(
            f"path {path!r} holds modules {sorted(archive['modules'])}, expected {sorted(exp._modules)}"
        )
    exp.pause()  # outside the lock: a background step may be waiting for it
    with exp.lock:
        # check shapes before touching anything
        for name, module in exp._modules.items():
            current = module.state_dict()
            for key, value in archive["modules"][name].items():
                if key not in current or tuple(current[key].shape) != tuple(value.shape):
                    raise ValueError(
                        f"path {path!r}: {name}.{key} has shape {tuple(value.shape)}, which does not match "
                        "this experiment's sizes"
                    )
        exp.param.update(**{k: _decode(v) for k, v in archive["params"].items()})
        exp.apply_params()  # structural switches (e.g. the neuron model) before the state goes in
        for name, module in exp._modules.items():
            module.load_state_dict(archive["modules"][name])
            subs = dict(module.named_modules())
            for sub_path, memories in archive["memories"][name].items():
                sub = subs[sub_path]
                if isinstance(sub, MemoryModule):
                    sub.reset()
                    for key, value in memories.items():
                        setattr(sub, key, _decode(value))
        exp.generator.set_state(archive["generator"])
        rec = archive["recorders"]
        for group_name, group in (
            ("raster", exp._rasters),
            ("trace", exp._traces),
            ("series", exp._series),
            ("points", exp._points),
        ):
            for name, (ring, _) in group.items():
                ring.load_state(_decode(rec[group_name][name]))
        for name, entry in exp._weights.items():
            saved = rec["weights"][name]
            entry["ring"].load_state(_decode(saved["ring"]))
            entry["version"] = saved["version"]
            entry["seen"] = saved["seen"]
            entry["last_snapshot"] = saved["last_snapshot"]
        exp._cursors = dict(rec["cursors"])
        exp.t = int(archive["t"])
        exp.error = None
        exp.load_extra_state(_decode(archive["extra"]))
        exp._params_dirty = True
