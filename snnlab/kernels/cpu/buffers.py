"""Output buffers of the fused CPU loops: huge pages, recycling, overwriting saved tensors.

A fresh output of many MiB costs page faults on its first write (the kernel
zeroes every new page), a sizeable share of a memory-bound loop. Three things
keep that cost down:

* :func:`empty` asks Linux for transparent huge pages for large new buffers
  (``madvise(MADV_HUGEPAGE)``), so a 256 MiB output takes 128 faults, not 65536
  (where the kernel has huge pages to give);
* :func:`empty` recycles buffers of at least :data:`RECYCLE_MIN` bytes: it keeps
  a reference to the storage of each buffer it hands out and hands one out again,
  for a request of the same size, once nothing else uses it (its storage's use
  count is 1, the pool's own reference: every tensor, view and NumPy array on
  that memory has been dropped). This is what an allocator does with freed
  memory, so results are unchanged; the difference is that freed buffers stay
  allocated between calls, at most :data:`RECYCLE_IDLE_BYTES` of them (the
  oldest go first). :func:`release` drops them all;
* :func:`can_overwrite` tells a backward that it may write its result over a
  tensor it saved in the forward (freed right after that backward anyway).

Where torch does not expose a storage's use count, nothing is recycled or
overwritten (every output is a new ``torch.empty``).
"""

from __future__ import annotations

import ctypes
import math
import os
import sys
import threading
from collections.abc import Callable, Sequence

import torch

#: New buffers of at least this many bytes ask Linux for transparent huge pages (``madvise``):
#: the first write into a fresh 256 MiB output then costs ~14 ms of page faults instead of ~80 ms.
HUGE_PAGE_MIN = 1 << 24

#: Buffers of at least this many bytes are recycled (a new page costs a fault, ~1-3 us per 4 KiB).
RECYCLE_MIN = 1 << 20

#: At most this many bytes of recycled buffers that nothing uses are kept.
RECYCLE_IDLE_BYTES = 1 << 29

#: At most this many buffers are tracked for recycling (in use or not).
RECYCLE_TRACKED = 64

_HUGE_PAGE = 1 << 21
_MADV_HUGEPAGE = 14
_USE_COUNT: Callable[[int], int] | None = getattr(torch._C, "_storage_Use_Count", None)
_KEEP_GRAPH: Callable[[], bool] | None = getattr(
    torch._C._autograd, "_get_current_graph_task_keep_graph", None
)
_KEPT: list[torch.UntypedStorage] = []  # oldest first
_LOCK = threading.Lock()


def _new_lock_in_child() -> None:  # a fork while another thread held the lock must not deadlock
    global _LOCK
    _LOCK = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_new_lock_in_child)


def _load_madvise() -> Callable | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        fn = ctypes.CDLL(None, use_errno=True).madvise
    except (OSError, AttributeError):
        return None
    fn.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
    fn.restype = ctypes.c_int
    return fn


_MADVISE = _load_madvise()


def _advise_huge_pages(t: torch.Tensor, nbytes: int) -> None:
    """``madvise(MADV_HUGEPAGE)`` over the 2 MiB-aligned interior of ``t``'s new memory."""
    if _MADVISE is None:
        return
    ptr = t.data_ptr()
    lo = -(-ptr // _HUGE_PAGE) * _HUGE_PAGE
    hi = (ptr + nbytes) // _HUGE_PAGE * _HUGE_PAGE
    if hi > lo:
        _MADVISE(lo, hi - lo, _MADV_HUGEPAGE)


def _uses(storage: torch.UntypedStorage) -> int:
    assert _USE_COUNT is not None
    return _USE_COUNT(storage._cdata)


def _take(nbytes: int) -> torch.UntypedStorage | None:
    """A kept storage of ``nbytes`` bytes that nothing else uses (now the most recent), or ``None``."""
    with _LOCK:
        for k, storage in enumerate(_KEPT):
            if storage.nbytes() == nbytes and _uses(storage) == 1:
                del _KEPT[k]
                _KEPT.append(storage)
                return storage
    return None


def _keep(storage: torch.UntypedStorage) -> None:
    """Track ``storage`` for recycling; then drop the oldest idle buffers beyond the limits."""
    with _LOCK:
        _KEPT.append(storage)
        idle = [k for k in _KEPT if _uses(k) == 1]
        idle_bytes = sum(k.nbytes() for k in idle)
        excess = len(_KEPT) - RECYCLE_TRACKED
        dropped = set()
        for k in idle:  # oldest first
            if idle_bytes <= RECYCLE_IDLE_BYTES and excess <= 0:
                break
            dropped.add(id(k))
            idle_bytes -= k.nbytes()
            excess -= 1
        _KEPT[:] = [k for k in _KEPT if id(k) not in dropped]
        if excess > 0:  # still too many: stop tracking the oldest ones in use
            del _KEPT[:excess]


def empty(shape: Sequence[int], dtype: torch.dtype) -> torch.Tensor:
    """A contiguous uninitialized CPU tensor, like ``torch.empty(shape, dtype=dtype)``.

    Large ones come from the recycled buffers when one of the right size is free, else are
    new (hinted to use huge pages, and kept for recycling); see the module docstring.
    """
    nbytes = math.prod(shape) * dtype.itemsize
    recycle = nbytes >= RECYCLE_MIN and _USE_COUNT is not None
    if recycle:
        storage = _take(nbytes)
        if storage is not None:
            return torch.empty(0, dtype=dtype).set_(storage, 0, tuple(shape))
    out = torch.empty(tuple(shape), dtype=dtype)
    if nbytes >= HUGE_PAGE_MIN:
        _advise_huge_pages(out, nbytes)
    if recycle:
        _keep(out.untyped_storage())
    return out


def release() -> None:
    """Drop the kept buffers (the memory of those no tensor uses any more is freed)."""
    with _LOCK:
        _KEPT.clear()


def can_overwrite(saved: torch.Tensor) -> bool:
    """Whether a backward may write its result over ``saved``, a tensor it saved itself.

    True when the running backward does not keep the graph (``retain_graph=False``: saved
    tensors are freed once their node has run) and no other tensor shares ``saved``'s memory
    (its storage's use count is ``saved``'s own, plus the recycling pool's). False outside a
    backward, and where this torch does not expose these two facts.
    """
    if _KEEP_GRAPH is None or _USE_COUNT is None:
        return False
    try:
        if _KEEP_GRAPH():
            return False
        storage = saved.untyped_storage()
        with _LOCK:
            kept = any(k._cdata == storage._cdata for k in _KEPT)
            return _uses(storage) == 2 + kept  # ``saved``, ``storage`` itself, the pool
    except (RuntimeError, AttributeError, TypeError):
        return False
