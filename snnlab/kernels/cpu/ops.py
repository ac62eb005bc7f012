"""Torch-tensor wrappers around the numba loops (zero-copy, preallocated outputs).

Inputs are made contiguous and handed to numba as NumPy views of the same
memory (``tensor.numpy()``); outputs are allocated once per call with
``torch.empty`` and written in place by the loops. Sequences are 2-D
``[T, N]`` (a ``[T, N, ...]`` tensor flattened over the neuron
dimensions), states 1-D ``[N]``.
"""

from __future__ import annotations

import numpy as np
import torch

from . import load_loops

#: Neurons per parallel work item: ``V`` of one chunk stays in the L1 cache.
CHUNK = {torch.float32: 2048, torch.float64: 1024}

#: Up to this many neuron-steps a call runs on the calling thread (no thread-pool wake-up).
SMALL = 1 << 16

_PLACEHOLDERS: dict[torch.dtype, np.ndarray] = {}


def placeholder(dtype: torch.dtype) -> np.ndarray:
    """A shared ``[1, 1]`` array for outputs a call does not write."""
    arr = _PLACEHOLDERS.get(dtype)
    if arr is None:
        arr = np.empty((1, 1), dtype=np.float32 if dtype == torch.float32 else np.float64)
        _PLACEHOLDERS[dtype] = arr
    return arr


def is_small(n_steps: int, n: int) -> bool:
    """Whether a ``[n_steps, n]`` call runs on the calling thread."""
    return n_steps * n <= SMALL


def forward(
    x2: torch.Tensor,
    v0: torch.Tensor,
    p: np.ndarray,
    flags: np.ndarray,
    *,
    save_h: bool = False,
    save_v: bool = False,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """Run the forward loop on contiguous ``x2`` ``[T, N]`` and ``v0`` ``[N]``.

    Returns ``(spike [T, N], v_last [N], h_seq, v_seq)``; ``h_seq`` (:math:`H_t`) and
    ``v_seq`` (:math:`V_t`) are ``[T, N]`` when requested, else ``None``. ``flags``
    must carry the matching save switches.
    """
    n_steps, n = x2.shape
    dtype = x2.dtype
    spike = torch.empty_like(x2)
    v_last = torch.empty_like(v0)
    dummy = placeholder(dtype)
    h_seq = torch.empty_like(x2) if save_h else None
    v_seq = torch.empty_like(x2) if save_v else None
    args = (
        x2.numpy(),
        v0.numpy(),
        spike.numpy(),
        v_last.numpy(),
        dummy if h_seq is None else h_seq.numpy(),
        dummy if v_seq is None else v_seq.numpy(),
        p,
        flags,
    )
    compiled = load_loops()
    if is_small(n_steps, n):
        compiled.fptt_serial(*args)
    else:
        compiled.fptt(*args, CHUNK[dtype])
    return spike, v_last, h_seq, v_seq


def forward_with_grads(
    x2: torch.Tensor, v0: torch.Tensor, p: np.ndarray, flags: np.ndarray
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Forward that also returns dS/dH and dV/dH: ``(spike, v_last, grad_s_to_h, grad_v_to_h)``.

    ``x2`` ``[T, N]``, ``v0`` ``[N]`` contiguous; sequences out are ``[T, N]``, ``v_last`` ``[N]``.
    """
    n_steps, n = x2.shape
    spike = torch.empty_like(x2)
    v_last = torch.empty_like(v0)
    gsh = torch.empty_like(x2)
    gvh = torch.empty_like(x2)
    args = (x2.numpy(), v0.numpy(), spike.numpy(), v_last.numpy(), gsh.numpy(), gvh.numpy(), p, flags)
    compiled = load_loops()
    if is_small(n_steps, n):
        compiled.fptt_grads_serial(*args)
    else:
        compiled.fptt_grads(*args, CHUNK[x2.dtype])
    return spike, v_last, gsh, gvh


def backward_from_h(
    grad_spike: torch.Tensor,
    grad_v_last: torch.Tensor,
    grad_v_seq: torch.Tensor | None,
    h_seq: torch.Tensor,
    p: np.ndarray,
    flags: np.ndarray,
) -> tuple[torch.Tensor, torch.Tensor]:
    """BPTT from the saved ``h_seq`` ``[T, N]``: ``(grad_x [T, N], grad_v0 [N])``.

    Gradient inputs must be contiguous and of ``h_seq``'s dtype; ``flags``
    must say whether ``grad_v_seq`` is given.
    """
    n_steps, n = h_seq.shape
    grad_x = torch.empty_like(h_seq)
    grad_v0 = torch.empty_like(grad_v_last)
    args = (
        grad_spike.numpy(),
        grad_v_last.numpy(),
        placeholder(h_seq.dtype) if grad_v_seq is None else grad_v_seq.numpy(),
        h_seq.numpy(),
        grad_x.numpy(),
        grad_v0.numpy(),
        p,
        flags,
    )
    compiled = load_loops()
    if is_small(n_steps, n):
        compiled.bptt_from_h_serial(*args)
    else:
        compiled.bptt_from_h(*args, CHUNK[h_seq.dtype])
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
    grad_x = torch.empty_like(grad_s_to_h)
    grad_v0 = torch.empty_like(grad_v_next)
    args = (
        grad_spike.numpy(),
        grad_v_next.numpy(),
        grad_s_to_h.numpy(),
        grad_v_to_h.numpy(),
        grad_x.numpy(),
        grad_v0.numpy(),
        p,
    )
    compiled = load_loops()
    if is_small(n_steps, n):
        compiled.bptt_from_grads_serial(*args)
    else:
        compiled.bptt_from_grads(*args, CHUNK[grad_s_to_h.dtype])
    return grad_x, grad_v0
