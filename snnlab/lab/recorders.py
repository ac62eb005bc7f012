"""Bounded recorders: preallocated numpy ring buffers with a write counter.

A :class:`RingBuffer` holds the last ``capacity`` rows of one or more named
fields (numpy arrays of shape ``[capacity, *field_shape]``, allocated once).
Every row written increments a monotonically growing counter ``written``;
row ``i`` (counting from 0 since the last :meth:`RingBuffer.clear`) lives in
slot ``i % capacity`` while ``i >= written - capacity``.

A reader keeps a *cursor* (the value of ``written`` it has seen) and asks for
"everything since the cursor" with :meth:`RingBuffer.read_since`, which also
reports how many rows were overwritten before that reader got to them
(``dropped = max(0, written - capacity - cursor)``). Memory never grows with
simulated time.

Thin wrappers give the shapes the lab records:

* :class:`EventRing` -- spike events ``(step int64, neuron int32)``, one row
  per spike;
* :class:`TraceRing` -- ``(step int64, values float32[m])``, one row per step;
* :class:`SeriesRing` -- ``(step int64, values float32[] or [m])``;
* :class:`PointRing` -- ``(x float32, y float32)`` pairs;
* :class:`SnapshotRing` -- ``(step int64, matrix float32[r, c])``, for weight
  snapshots.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = [
    "EventRing",
    "PointRing",
    "RingBuffer",
    "SeriesRing",
    "SnapshotRing",
    "TraceRing",
]


def _check_capacity(capacity: Any) -> int:
    if isinstance(capacity, bool) or not isinstance(capacity, (int, np.integer)) or capacity < 1:
        raise ValueError(f"capacity must be an integer >= 1, got {capacity!r}")
    return int(capacity)


class RingBuffer:
    """Fixed-capacity ring of rows with named fields.

    Args:
        capacity: number of rows kept (``>= 1``).
        fields: ``{name: (row_shape, dtype)}``; each field is stored as a
            preallocated array of shape ``[capacity, *row_shape]``.

    Attributes:
        written: rows written since construction or the last :meth:`clear`.
    """

    def __init__(self, capacity: int, fields: Mapping[str, tuple[Sequence[int], Any]]) -> None:
        self.capacity = _check_capacity(capacity)
        if not fields:
            raise ValueError("fields must name at least one field, got an empty mapping")
        # np.full writes every page now (np.zeros / np.empty would map them lazily, so
        # the resident memory would creep up while the ring fills for the first time)
        self._fields: dict[str, np.ndarray] = {
            name: np.full((self.capacity, *tuple(shape)), 0, dtype=np.dtype(dtype))
            for name, (shape, dtype) in fields.items()
        }
        self.written = 0

    # ------------------------------------------------------------------ info
    @property
    def field_names(self) -> tuple[str, ...]:
        """Names of the fields, in declaration order."""
        return tuple(self._fields)

    @property
    def nbytes(self) -> int:
        """Bytes held by the preallocated arrays (constant over the buffer's life)."""
        return sum(a.nbytes for a in self._fields.values())

    def __len__(self) -> int:
        """Rows currently held: ``min(written, capacity)``."""
        return min(self.written, self.capacity)

    # ------------------------------------------------------------------ write
    def push(self, **rows: Any) -> None:
        """Append ``k`` rows: every field given as an array with leading dimension ``k``.

        All fields must be given with the same ``k``; ``k == 0`` is a no-op.
        If ``k > capacity`` only the last ``capacity`` rows are stored (the
        earlier ones count as written and then overwritten).
        """
        if set(rows) != set(self._fields):
            raise ValueError(f"push needs exactly the fields {sorted(self._fields)}, got {sorted(rows)}")
        arrays = {}
        k = None
        for name, value in rows.items():
            store = self._fields[name]
            arr = np.asarray(value, dtype=store.dtype)
            if arr.shape[1:] != store.shape[1:] or arr.ndim != store.ndim:
                raise ValueError(
                    f"field {name!r} needs rows of shape {store.shape[1:]}, got an array of shape {arr.shape}"
                )
            if k is None:
                k = arr.shape[0]
            elif arr.shape[0] != k:
                raise ValueError(f"all fields must have the same number of rows, {name!r} has {arr.shape[0]}")
            arrays[name] = arr
        if not k:
            return
        cap = self.capacity
        skip = max(0, k - cap)
        start = (self.written + skip) % cap
        n = k - skip
        first = min(n, cap - start)
        for name, arr in arrays.items():
            store = self._fields[name]
            src = arr[skip:]
            store[start : start + first] = src[:first]
            if first < n:
                store[: n - first] = src[first:]
        self.written += k

    def clear(self) -> None:
        """Forget every row (the arrays stay allocated; ``written`` goes back to 0)."""
        self.written = 0

    # ------------------------------------------------------------------ read
    def read_since(self, cursor: int) -> tuple[dict[str, np.ndarray], int, int]:
        """Rows written after ``cursor``, oldest first.

        Returns ``(fields, new_cursor, dropped)``: ``fields`` maps each name
        to a fresh array ``[k, *row_shape]``; ``new_cursor`` is ``written``;
        ``dropped`` counts rows written after ``cursor`` but overwritten
        before this read. A cursor beyond ``written`` (the buffer was
        cleared) reads from the start.
        """
        cursor = int(cursor)
        if cursor > self.written or cursor < 0:
            cursor = 0
        oldest = max(0, self.written - self.capacity)
        dropped = max(0, oldest - cursor)
        begin = max(cursor, oldest)
        return self._slice(begin, self.written), self.written, dropped

    def latest(self, n: int | None = None) -> dict[str, np.ndarray]:
        """The last ``n`` rows held (all rows held if ``n`` is ``None``), oldest first."""
        held = len(self)
        n = held if n is None else max(0, min(int(n), held))
        return self._slice(self.written - n, self.written)

    def _slice(self, begin: int, end: int) -> dict[str, np.ndarray]:
        k = end - begin
        cap = self.capacity
        start = begin % cap if k else 0
        out = {}
        for name, store in self._fields.items():
            if k <= 0:
                out[name] = store[:0].copy()
            elif start + k <= cap:
                out[name] = store[start : start + k].copy()
            else:
                out[name] = np.concatenate([store[start:], store[: start + k - cap]])
        return out

    # ------------------------------------------------------------------ persistence
    def state(self) -> dict[str, Any]:
        """A picklable copy of the buffer's contents and counter."""
        return {"written": self.written, "fields": {k: v.copy() for k, v in self._fields.items()}}

    def load_state(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state` output; shapes and dtypes must match this buffer."""
        fields = state["fields"]
        if set(fields) != set(self._fields):
            raise ValueError(f"recorder state has fields {sorted(fields)}, expected {sorted(self._fields)}")
        for name, arr in fields.items():
            store = self._fields[name]
            if arr.shape != store.shape or arr.dtype != store.dtype:
                raise ValueError(
                    f"recorder field {name!r} has shape {arr.shape} {arr.dtype}, "
                    f"expected {store.shape} {store.dtype}"
                )
        for name, arr in fields.items():
            self._fields[name][...] = arr
        self.written = int(state["written"])


class EventRing(RingBuffer):
    """Spike events: one row ``(step int64, neuron int32)`` per spike."""

    def __init__(self, capacity: int) -> None:
        super().__init__(capacity, {"steps": ((), np.int64), "neurons": ((), np.int32)})

    def push_step(self, step: int, neurons: np.ndarray) -> None:
        """Record the indices ``neurons`` (1-D) that spiked at ``step``."""
        neurons = np.asarray(neurons).reshape(-1)
        self.push(steps=np.full(neurons.shape[0], step, dtype=np.int64), neurons=neurons)


class TraceRing(RingBuffer):
    """Per-step traces: one row ``(step int64, values float32[m])`` per step."""

    def __init__(self, capacity: int, width: int) -> None:
        super().__init__(capacity, {"steps": ((), np.int64), "values": ((int(width),), np.float32)})


class SeriesRing(RingBuffer):
    """Scalar or vector series: rows ``(step int64, values float32[]``, or ``[m]`` if ``width``)."""

    def __init__(self, capacity: int, width: int | None = None) -> None:
        shape: tuple[int, ...] = () if width is None else (int(width),)
        super().__init__(capacity, {"steps": ((), np.int64), "values": (shape, np.float32)})


class PointRing(RingBuffer):
    """Scatter points: rows ``(x float32, y float32)``."""

    def __init__(self, capacity: int) -> None:
        super().__init__(capacity, {"x": ((), np.float32), "y": ((), np.float32)})


class SnapshotRing(RingBuffer):
    """Matrix snapshots: rows ``(step int64, matrix float32[r, c])``."""

    def __init__(self, capacity: int, shape: tuple[int, int]) -> None:
        super().__init__(capacity, {"steps": ((), np.int64), "matrix": (tuple(shape), np.float32)})
