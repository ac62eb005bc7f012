r"""Autograd Functions over the fused kernels (reference 003 ``LIFStep`` ... ``IFMultiStep``).

Forward runs a ``*_with_grad`` kernel, saves :math:`\partial S/\partial H` and
:math:`\partial V/\partial H`, and returns ``(spike, v_next)``; backward runs
the matching ``*_backward`` / ``*_bptt`` kernel and returns gradients for
``x`` (or ``x_seq``) and ``v``, ``None`` for the scalar arguments.
``v_reset=None`` selects the soft reset (LIF charges with :math:`V_{reset} = 0`).

Shapes: ``x``, ``v`` ``[N, ...]``; ``x_seq`` ``[T, N, ...]`` with ``v`` ``[N, ...]``.
The backward is not itself differentiable (no double backward).
"""

from __future__ import annotations

from typing import Any

import torch
from torch.autograd.function import once_differentiable

from . import integrate_fire as if_kernels
from . import lif as lif_kernels

__all__ = ["IFMultiStep", "IFStep", "LIFMultiStep", "LIFStep"]


class LIFStep(torch.autograd.Function):
    """One LIF step with surrogate gradients: ``spike, v_next = LIFStep.apply(x, v, ...)``."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        x: torch.Tensor,
        v: torch.Tensor,
        v_threshold: float,
        v_reset: float | None,
        alpha: float,
        detach_reset: bool,
        grad_surrogate_function_index: int,
        reciprocal_tau: float,
        detach_input: bool,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if v_reset is None:
            spike, v_next, grad_s_to_h, grad_v_to_h = lif_kernels.LIF_soft_reset_forward_with_grad(
                x,
                v,
                v_threshold,
                alpha,
                detach_reset,
                grad_surrogate_function_index,
                reciprocal_tau,
                detach_input,
            )
        else:
            spike, v_next, grad_s_to_h, grad_v_to_h = lif_kernels.LIF_hard_reset_forward_with_grad(
                x,
                v,
                v_threshold,
                v_reset,
                alpha,
                detach_reset,
                grad_surrogate_function_index,
                reciprocal_tau,
                detach_input,
            )
        ctx.save_for_backward(grad_s_to_h, grad_v_to_h)
        ctx.reciprocal_tau = reciprocal_tau
        ctx.detach_input = detach_input
        return spike, v_next

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_spike: torch.Tensor, grad_v_next: torch.Tensor):  # type: ignore[override]
        grad_s_to_h, grad_v_to_h = ctx.saved_tensors
        grad_x, grad_v = lif_kernels.LIF_backward(
            grad_spike, grad_v_next, grad_s_to_h, grad_v_to_h, ctx.reciprocal_tau, ctx.detach_input
        )
        return grad_x, grad_v, None, None, None, None, None, None, None


class LIFMultiStep(torch.autograd.Function):
    """``T`` LIF steps with surrogate gradients: ``spike_seq, v_last = LIFMultiStep.apply(x_seq, v, ...)``."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        x_seq: torch.Tensor,
        v: torch.Tensor,
        v_threshold: float,
        v_reset: float | None,
        alpha: float,
        detach_reset: bool,
        grad_surrogate_function_index: int,
        reciprocal_tau: float,
        detach_input: bool,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if v_reset is None:
            spike_seq, v_next, grad_s_to_h, grad_v_to_h = lif_kernels.LIF_soft_reset_fptt_with_grad(
                x_seq,
                v,
                v_threshold,
                alpha,
                detach_reset,
                grad_surrogate_function_index,
                reciprocal_tau,
                detach_input,
            )
        else:
            spike_seq, v_next, grad_s_to_h, grad_v_to_h = lif_kernels.LIF_hard_reset_fptt_with_grad(
                x_seq,
                v,
                v_threshold,
                v_reset,
                alpha,
                detach_reset,
                grad_surrogate_function_index,
                reciprocal_tau,
                detach_input,
            )
        ctx.save_for_backward(grad_s_to_h, grad_v_to_h)
        ctx.reciprocal_tau = reciprocal_tau
        ctx.detach_input = detach_input
        return spike_seq, v_next

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_spike_seq: torch.Tensor, grad_v_next: torch.Tensor):  # type: ignore[override]
        grad_s_to_h, grad_v_to_h = ctx.saved_tensors
        grad_x_seq, grad_v = lif_kernels.LIF_bptt(
            grad_spike_seq, grad_v_next, grad_s_to_h, grad_v_to_h, ctx.reciprocal_tau, ctx.detach_input
        )
        return grad_x_seq, grad_v, None, None, None, None, None, None, None


class IFStep(torch.autograd.Function):
    """One IF step with surrogate gradients: ``spike, v_next = IFStep.apply(x, v, ...)``."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        x: torch.Tensor,
        v: torch.Tensor,
        v_threshold: float,
        v_reset: float | None,
        alpha: float,
        detach_reset: bool,
        grad_surrogate_function_index: int,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if v_reset is None:
            spike, v_next, grad_s_to_h, grad_v_to_h = if_kernels.IF_soft_reset_forward_with_grad(
                x, v, v_threshold, alpha, detach_reset, grad_surrogate_function_index
            )
        else:
            spike, v_next, grad_s_to_h, grad_v_to_h = if_kernels.IF_hard_reset_forward_with_grad(
                x, v, v_threshold, v_reset, alpha, detach_reset, grad_surrogate_function_index
            )
        ctx.save_for_backward(grad_s_to_h, grad_v_to_h)
        return spike, v_next

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_spike: torch.Tensor, grad_v_next: torch.Tensor):  # type: ignore[override]
        grad_s_to_h, grad_v_to_h = ctx.saved_tensors
        grad_x, grad_v = if_kernels.IF_backward(grad_spike, grad_v_next, grad_s_to_h, grad_v_to_h)
        return grad_x, grad_v, None, None, None, None, None


class IFMultiStep(torch.autograd.Function):
    """``T`` IF steps with surrogate gradients: ``spike_seq, v_last = IFMultiStep.apply(x_seq, v, ...)``."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        x_seq: torch.Tensor,
        v: torch.Tensor,
        v_threshold: float,
        v_reset: float | None,
        alpha: float,
        detach_reset: bool,
        grad_surrogate_function_index: int,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if v_reset is None:
            spike_seq, v_next, grad_s_to_h, grad_v_to_h = if_kernels.IF_soft_reset_fptt_with_grad(
                x_seq, v, v_threshold, alpha, detach_reset, grad_surrogate_function_index
            )
        else:
            spike_seq, v_next, grad_s_to_h, grad_v_to_h = if_kernels.IF_hard_reset_fptt_with_grad(
                x_seq, v, v_threshold, v_reset, alpha, detach_reset, grad_surrogate_function_index
            )
        ctx.save_for_backward(grad_s_to_h, grad_v_to_h)
        return spike_seq, v_next

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_spike_seq: torch.Tensor, grad_v_next: torch.Tensor):  # type: ignore[override]
        grad_s_to_h, grad_v_to_h = ctx.saved_tensors
        grad_x_seq, grad_v = if_kernels.IF_bptt(grad_spike_seq, grad_v_next, grad_s_to_h, grad_v_to_h)
        return grad_x_seq, grad_v, None, None, None, None, None
