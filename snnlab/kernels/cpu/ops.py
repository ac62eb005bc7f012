"""Torch-tensor wrappers around the numba loops (zero-copy views, preallocated outputs).

Inputs are made contiguous and handed to numba as NumPy views of the same
memory (``tensor.numpy()``); outputs are allocated once per call (large ones
recycled, see :mod:`.buffers`) and written in place by the loops. Sequences are 2-D
``[T, N]`` (a ``[T, N, ...]`` tensor flattened over the neuron
dimensions), states 1-D ``[N]``.

:func:`launch` runs a loop over all neurons: on the calling thread for
calls of up to :data:`SMALL` neuron-steps, otherwise split into disjoint
neuron ranges that ``torch.get_num_threads()`` threads (the caller and a
thread pool; the loops release the GIL) take in turn. The first call of a
loop for a dtype always runs on the calling thread, so compilation happens
once, there.
"""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import torch

from . import buffers, load_loops

#: Neurons per chunk inside a loop (64 KiB per row of a chunk): the chunk's state (``V``, or
#: :math:`\partial L/\partial V`) stays in the L2 cache, and each step reads / writes 64 KiB
#: runs of every sequence, long enough for the hardware prefetchers (8 KiB runs ran at ~2/3 of
#: the speed on a 1e6-neuron, 64-step LIF).
CHUNK = {torch.float32: 16384, torch.float64: 8192}

#: Neuron ranges of different threads start on a multiple of 64 bytes (no shared cache line).
ALIGN = {torch.float32: 16, torch.float64: 8}

#: A part of a call split over threads has at least this many neurons.
MIN_RANGE = 512

#: A call split over threads is cut into this many parts per thread (see :func:`launch`).
PARTS_PER_THREAD = 16

#: Up to this many neuron-steps a call runs on the calling thread (a thread-pool hand-off costs ~20 us).
SMALL = 1 << 18

_PLACEHOLDERS: dict[torch.dtype, np.ndarray] = {}
_RAN: set[tuple[Callable, torch.dtype]] = set()
_POOL: dict[str, Any] = {}
_POOL_LOCK = threading.Lock()


def placeholder(dtype: torch.dtype) -> np.ndarray:
    """A shared ``[1, 1]`` array for outputs a call does not write."""
    arr = _PLACEHOLDERS.get(dtype)
    if arr is None:
        arr = np.empty((1, 1), dtype=np.float32 if dtype == torch.float32 else np.float64)
        _PLACEHOLDERS[dtype] = arr
    return arr


def empty_like(t: torch.Tensor) -> torch.Tensor:
    """A new output shaped like the contiguous ``t`` (:func:`.buffers.empty`: huge pages, recycling)."""
    return buffers.empty(t.shape, t.dtype)


def zeros(shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
    """A zero-filled tensor (:func:`.buffers.empty`, filled): gradients that did not arrive."""
    return buffers.empty(shape, dtype).zero_()


def is_small(n_steps: int, n: int) -> bool:
    """Whether a ``[n_steps, n]`` call runs on the calling thread only."""
    return n_steps * n <= SMALL


def _pool(workers: int) -> ThreadPoolExecutor:
    pool = _POOL.get("pool")
    if pool is None or _POOL.get("workers") != workers:
        with _POOL_LOCK:
            pool = _POOL.get("pool")
            if pool is None or _POOL.get("workers") != workers:
                old = pool
                pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="snnlab-cpu")
                _POOL.update(pool=pool, workers=workers)
                if old is not None:
                    old.shutdown(wait=False)
    return pool


def _forget_pool() -> None:  # in a forked child the parent's threads do not exist
    _POOL.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


def threads() -> int:
    """Threads a large call is split over (``torch.get_num_threads()``)."""
    return torch.get_num_threads()


def ranges(n: int, parts: int, align: int) -> list[tuple[int, int]]:
    """``n`` neurons as at most ``parts`` contiguous, non-empty ``(lo, hi)`` ranges of nearly equal
    size (in units of ``align`` neurons), all but the last a multiple of ``align``."""
    units = -(-n // align)
    parts = max(1, min(parts, units))
    per, extra = divmod(units, parts)
    bounds = [0]
    for k in range(parts):
        bounds.append(min(n, bounds[-1] + (per + (k < extra)) * align))
    return list(itertools.pairwise(bounds))


def _drain(fn: Callable, args: tuple, parts: list[tuple[int, int]], chunk: int, helpers: int) -> None:
    """Run ``fn(*args, lo, hi, chunk)`` for every part, the calling thread and ``helpers`` pool
    threads each taking the next part until none is left."""
    queue = iter(parts)
    lock = threading.Lock()

    def work() -> None:
        while True:
            with lock:
                part = next(queue, None)
            if part is None:
                return
            fn(*args, part[0], part[1], chunk)

    pool = _pool(threads() - 1)
    futures = [pool.submit(work) for _ in range(helpers)]
    try:
        work()
    finally:
        for future in futures:
            future.result()


def launch(fn: Callable, n_steps: int, n: int, dtype: torch.dtype, args: tuple) -> None:
    """Run ``fn(*args, lo, hi, chunk)`` over the neurons ``0:n`` of a ``[n_steps, n]`` call.

    Calls of more than :data:`SMALL` neuron-steps are split into up to :data:`PARTS_PER_THREAD`
    parts per thread (nearly equal, of at least :data:`MIN_RANGE` neurons each), which the
    ``threads()`` threads take in turn: a thread whose memory is slower, or which is
    pre-empted, takes fewer parts.
    """
    chunk = CHUNK[dtype]
    if n_steps * n > SMALL and n >= 2 * MIN_RANGE:
        workers = threads()
        if workers > 1 and (fn, dtype) in _RAN:
            parts = ranges(n, min(workers * PARTS_PER_THREAD, n // MIN_RANGE), ALIGN[dtype])
            if len(parts) > 1:
                _drain(fn, args, parts, chunk, min(workers, len(parts)) - 1)
                return
    fn(*args, 0, n, chunk)
    _RAN.add((fn, dtype))


def forward(
    x2: torch.Tensor,
    v0: torch.Tensor,
    p: np.ndarray,
    charge: int,
    soft: bool,
    *,
    save_h: bool = False,
    save_v: bool = False,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """Run the forward loop on contiguous ``x2`` ``[T, N]`` and ``v0`` ``[N]``.

    Returns ``(spike [T, N], v_last [N], h_seq, v_seq)``; ``h_seq`` (:math:`H_t`) and
    ``v_seq`` (:math:`V_t`) are ``[T, N]`` when requested, else ``None``.
    """
    n_steps, n = x2.shape
    dtype = x2.dtype
    save_h, save_v = bool(save_h), bool(save_v)
    spike = empty_like(x2)
    v_last = empty_like(v0)
    dummy = placeholder(dtype)
    h_seq = empty_like(x2) if save_h else None
    v_seq = empty_like(x2) if save_v else None
    fn = load_loops().forward_kernel(int(charge))
    args = (
        x2.numpy(),
        v0.numpy(),
        spike.numpy(),
        v_last.numpy(),
        dummy if h_seq is None else h_seq.numpy(),
        dummy if v_seq is None else v_seq.numpy(),
        p,
        bool(soft),
        save_h,
        save_v,
    )
    launch(fn, n_steps, n, dtype, args)
    return spike, v_last, h_seq, v_seq


def forward_with_grads(
    x2: torch.Tensor, v0: torch.Tensor, p: np.ndarray, charge: int, soft: bool, code: int, detach: bool
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Forward that also returns dS/dH and dV/dH: ``(spike, v_last, grad_s_to_h, grad_v_to_h)``.

    ``x2`` ``[T, N]``, ``v0`` ``[N]`` contiguous; sequences out are ``[T, N]``, ``v_last`` ``[N]``.
    """
    n_steps, n = x2.shape
    spike = empty_like(x2)
    v_last = empty_like(v0)
    gsh = empty_like(x2)
    gvh = empty_like(x2)
    fn = load_loops().forward_grads_kernel(int(charge), int(code))
    args = (x2.numpy(), v0.numpy(), spike.numpy(), v_last.numpy(), gsh.numpy(), gvh.numpy(), p)
    args = (*args, bool(soft), bool(detach))
    launch(fn, n_steps, n, x2.dtype, args)
    return spike, v_last, gsh, gvh


def backward_from_h(
    grad_spike: torch.Tensor,
    grad_v_last: torch.Tensor,
    grad_v_seq: torch.Tensor | None,
    h_seq: torch.Tensor,
    p: np.ndarray,
    code: int,
    soft: bool,
    detach: bool,
    *,
    out: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """BPTT from the saved ``h_seq`` ``[T, N]``: ``(grad_x [T, N], grad_v0 [N])``.

    Gradient inputs must be contiguous and of ``h_seq``'s dtype; ``grad_v_seq`` (``[T, N]``,
    the gradient reaching every step's :math:`V_t`) may be ``None``. ``out``: where to write
    ``grad_x`` (a new tensor when ``None``); it may be ``h_seq`` itself, which is then
    overwritten.
    """
    n_steps, n = h_seq.shape
    grad_x = empty_like(h_seq) if out is None else out
    grad_v0 = empty_like(grad_v_last)
    has_gvs = grad_v_seq is not None
    fn = load_loops().backward_kernel(int(code))
    args = (
        grad_spike.numpy(),
        grad_v_last.numpy(),
        grad_v_seq.numpy() if has_gvs else placeholder(h_seq.dtype),
        h_seq.numpy(),
        grad_x.numpy(),
        grad_v0.numpy(),
        p,
        bool(soft),
        bool(detach),
        has_gvs,
    )
    launch(fn, n_steps, n, h_seq.dtype, args)
    return grad_x, grad_v0


def backward_from_grads(
    grad_spike: torch.Tensor,
    grad_v_next: torch.Tensor,
    grad_s_to_h: torch.Tensor,
    grad_v_to_h: torch.Tensor,
    p: np.ndarray,
) -> tuple[torch.Tensor, torch.Tensor]:
    """BPTT from saved ``grad_s_to_h`` / ``grad_v_to_h`` ``[T, N]``: ``(grad_x [T, N], grad_v0 [N])``."""
    n_steps, n = grad_s_to_h.shape
    grad_x = empty_like(grad_s_to_h)
    grad_v0 = empty_like(grad_v_next)
    args = (
        grad_spike.numpy(),
        grad_v_next.numpy(),
        grad_s_to_h.numpy(),
        grad_v_to_h.numpy(),
        grad_x.numpy(),
        grad_v0.numpy(),
        p,
    )
    launch(load_loops().backward_grads_kernel(), n_steps, n, grad_s_to_h.dtype, args)
    return grad_x, grad_v0
