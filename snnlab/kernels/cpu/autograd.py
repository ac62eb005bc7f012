r"""Autograd Function of the fused CPU neuron: forward and BPTT, each in one call.

``spike, v_last, v_seq = FusedNeuronFunction.apply(x2, v0, p, switches, store_v_seq)``

* ``x2`` ``[T, N]`` and ``v0`` ``[N]``: contiguous float32 / float64 tensors;
* ``p``: packed by :mod:`.params`; ``switches``: ``(charge, soft, code, detach_reset)``
  (charge mode, soft reset, surrogate code, ``detach_reset``);
* returns ``spike`` ``[T, N]``, ``v_last`` = :math:`V_{T-1}` ``[N]`` and
  ``v_seq`` ``[T, N]`` (an empty tensor when ``store_v_seq`` is false).

The forward saves only :math:`H_t` ``[T, N]``; the backward recomputes
:math:`S_t`, the surrogate derivative and :math:`\partial V_t/\partial H_t` from
it and runs the reverse loop once (:func:`snnlab.kernels.cpu.loops.backward_kernel`),
adding the gradients that reach ``v_seq`` and ``v_last``. Gradients with
respect to ``x2`` and ``v0``; no double backward.

When the graph is not retained (``retain_graph=False``, the default) and nothing
else shares the memory of the saved :math:`H_t`, the backward writes
:math:`\partial L/\partial X_t` over it (:func:`.buffers.can_overwrite`) instead of
into a new tensor: the saved tensor is freed right after this backward anyway,
and the loop then reads and writes the same memory once.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch.autograd.function import once_differentiable

from . import buffers, ops


class FusedNeuronFunction(torch.autograd.Function):
    """Fused multi-step IF / LIF neuron with surrogate-gradient BPTT (see the module docstring)."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        x2: torch.Tensor,
        v0: torch.Tensor,
        p: np.ndarray,
        switches: tuple[int, bool, int, bool],
        store_v_seq: bool,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        charge, soft = switches[0], switches[1]
        spike, v_last, h_seq, v_seq = ops.forward(
            x2.detach(), v0.detach(), p, charge, soft, save_h=True, save_v=store_v_seq
        )
        ctx.save_for_backward(h_seq)
        ctx.p = p
        ctx.switches = switches
        ctx.set_materialize_grads(False)
        if v_seq is None:
            v_seq = v_last.new_empty(0)
            ctx.mark_non_differentiable(v_seq)
        return spike, v_last, v_seq

    @staticmethod
    @once_differentiable
    def backward(  # type: ignore[override]
        ctx: Any, grad_spike: torch.Tensor | None, grad_v_last: torch.Tensor | None, grad_v_seq: Any
    ):
        (h_seq,) = ctx.saved_tensors
        grad_spike = ops.zeros(h_seq.shape, h_seq.dtype) if grad_spike is None else _plain(grad_spike, h_seq)
        n = h_seq.shape[1]
        if grad_v_last is None:
            grad_v_last = ops.zeros((n,), h_seq.dtype)
        else:
            grad_v_last = _plain(grad_v_last, h_seq)
        if grad_v_seq is not None and grad_v_seq.numel() > 0:
            grad_v_seq = _plain(grad_v_seq, h_seq)
        else:
            grad_v_seq = None
        _, soft, code, detach = ctx.switches
        out = h_seq if buffers.can_overwrite(h_seq) else None
        grad_x, grad_v0 = ops.backward_from_h(
            grad_spike, grad_v_last, grad_v_seq, h_seq, ctx.p, code, soft, detach, out=out
        )
        return grad_x, grad_v0, None, None, None


def _plain(grad: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``grad`` as a contiguous tensor of ``like``'s dtype."""
    return grad.to(like.dtype).contiguous()
