r"""Fused IF kernels, plain-torch reference behind :mod:`.dispatch`.

Charge :math:`H_t = V_{t-1} + X_t` (:math:`\partial H/\partial X = \partial H/\partial V_{t-1} = 1`);
fire and reset as in :mod:`snnlab.kernels.core`. SpikingJelly's ``IFStep`` /
``IFMultiStep`` call these kernels (named after its compiled ``IF_*``
functions); the soft-reset forms serve ``v_reset=None``.

Shapes: ``x``, ``v`` ``[N, ...]``; ``x_seq`` ``[T, N, ...]``. Forward outputs
carry no autograd graph; use :class:`snnlab.kernels.IFStep` /
:class:`snnlab.kernels.IFMultiStep` for gradients.
"""

from __future__ import annotations

import torch

from . import checks, core
from .dispatch import get_kernel, register_reference
from .templates import hard_reset_value, sequence_grads, step_grads, surrogate_args

__all__ = [
    "IF_backward",
    "IF_bptt",
    "IF_hard_reset_forward",
    "IF_hard_reset_forward_with_grad",
    "IF_hard_reset_fptt",
    "IF_hard_reset_fptt_with_grad",
    "IF_soft_reset_forward",
    "IF_soft_reset_forward_with_grad",
    "IF_soft_reset_fptt",
    "IF_soft_reset_fptt_with_grad",
]

Tensors2 = tuple[torch.Tensor, torch.Tensor]
Tensors4 = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


# --------------------------------------------------------------------------- torch reference


def _ref_soft_forward(x, v, v_threshold):
    return core.step(x, v, v_threshold, None)


def _ref_soft_fptt(x_seq, v, v_threshold):
    return core.fptt(x_seq, v, v_threshold, None)


def _ref_soft_forward_with_grad(x, v, v_threshold, alpha, detach_reset, index):
    return core.step_with_grad(x, v, v_threshold, None, alpha, detach_reset, index)


def _ref_soft_fptt_with_grad(x_seq, v, v_threshold, alpha, detach_reset, index):
    return core.fptt_with_grad(x_seq, v, v_threshold, None, alpha, detach_reset, index)


for _name, _fn in {
    "IF_hard_reset_forward": core.step,
    "IF_hard_reset_fptt": core.fptt,
    "IF_hard_reset_forward_with_grad": core.step_with_grad,
    "IF_hard_reset_fptt_with_grad": core.fptt_with_grad,
    "IF_soft_reset_forward": _ref_soft_forward,
    "IF_soft_reset_fptt": _ref_soft_fptt,
    "IF_soft_reset_forward_with_grad": _ref_soft_forward_with_grad,
    "IF_soft_reset_fptt_with_grad": _ref_soft_fptt_with_grad,
    "IF_backward": core.backward,
    "IF_bptt": core.bptt,
}.items():
    register_reference(_name, _fn)


# --------------------------------------------------------------------------- public


def IF_hard_reset_forward(x: torch.Tensor, v: torch.Tensor, v_threshold: float, v_reset: float) -> Tensors2:
    """One IF step with hard reset: ``(spike, v_next)``, both ``[N, ...]``."""
    x, v = checks.state_for_step(x, v)
    v_threshold, v_reset = hard_reset_value(v_threshold, v_reset)
    with torch.no_grad():
        return get_kernel("IF_hard_reset_forward", x.device)(x, v, v_threshold, v_reset)


def IF_hard_reset_fptt(x_seq: torch.Tensor, v: torch.Tensor, v_threshold: float, v_reset: float) -> Tensors2:
    """``T`` IF steps with hard reset: ``(spike_seq [T, N, ...], v_next = V_{T-1})``."""
    x_seq, v = checks.state_for_sequence(x_seq, v)
    v_threshold, v_reset = hard_reset_value(v_threshold, v_reset)
    with torch.no_grad():
        return get_kernel("IF_hard_reset_fptt", x_seq.device)(x_seq, v, v_threshold, v_reset)


def IF_hard_reset_forward_with_grad(
    x: torch.Tensor,
    v: torch.Tensor,
    v_threshold: float,
    v_reset: float,
    alpha: float,
    detach_reset: bool,
    grad_surrogate_function_index: int,
) -> Tensors4:
    """One IF step, hard reset: ``(spike, v_next, grad_s_to_h, grad_v_to_h)``, all ``[N, ...]``."""
    x, v = checks.state_for_step(x, v)
    v_threshold, v_reset = hard_reset_value(v_threshold, v_reset)
    alpha, detach_reset, index = surrogate_args(alpha, detach_reset, grad_surrogate_function_index)
    with torch.no_grad():
        kernel = get_kernel("IF_hard_reset_forward_with_grad", x.device)
        return kernel(x, v, v_threshold, v_reset, alpha, detach_reset, index)


def IF_hard_reset_fptt_with_grad(
    x_seq: torch.Tensor,
    v: torch.Tensor,
    v_threshold: float,
    v_reset: float,
    alpha: float,
    detach_reset: bool,
    grad_surrogate_function_index: int,
) -> Tensors4:
    """``T`` IF steps, hard reset: ``(spike_seq, v_next, grad_s_to_h, grad_v_to_h)``, ``v_next`` ``[N, ...]``.

    The other outputs are ``[T, N, ...]``.
    """
    x_seq, v = checks.state_for_sequence(x_seq, v)
    v_threshold, v_reset = hard_reset_value(v_threshold, v_reset)
    alpha, detach_reset, index = surrogate_args(alpha, detach_reset, grad_surrogate_function_index)
    with torch.no_grad():
        kernel = get_kernel("IF_hard_reset_fptt_with_grad", x_seq.device)
        return kernel(x_seq, v, v_threshold, v_reset, alpha, detach_reset, index)


def IF_soft_reset_forward(x: torch.Tensor, v: torch.Tensor, v_threshold: float) -> Tensors2:
    """One IF step with soft reset: ``(spike, v_next)``."""
    x, v = checks.state_for_step(x, v)
    v_threshold = checks.real("v_threshold", v_threshold)
    with torch.no_grad():
        return get_kernel("IF_soft_reset_forward", x.device)(x, v, v_threshold)


def IF_soft_reset_fptt(x_seq: torch.Tensor, v: torch.Tensor, v_threshold: float) -> Tensors2:
    """``T`` IF steps with soft reset: ``(spike_seq [T, N, ...], v_next = V_{T-1})``."""
    x_seq, v = checks.state_for_sequence(x_seq, v)
    v_threshold = checks.real("v_threshold", v_threshold)
    with torch.no_grad():
        return get_kernel("IF_soft_reset_fptt", x_seq.device)(x_seq, v, v_threshold)


def IF_soft_reset_forward_with_grad(
    x: torch.Tensor,
    v: torch.Tensor,
    v_threshold: float,
    alpha: float,
    detach_reset: bool,
    grad_surrogate_function_index: int,
) -> Tensors4:
    """One IF step, soft reset: ``(spike, v_next, grad_s_to_h, grad_v_to_h)``."""
    x, v = checks.state_for_step(x, v)
    v_threshold = checks.real("v_threshold", v_threshold)
    alpha, detach_reset, index = surrogate_args(alpha, detach_reset, grad_surrogate_function_index)
    with torch.no_grad():
        kernel = get_kernel("IF_soft_reset_forward_with_grad", x.device)
        return kernel(x, v, v_threshold, alpha, detach_reset, index)


def IF_soft_reset_fptt_with_grad(
    x_seq: torch.Tensor,
    v: torch.Tensor,
    v_threshold: float,
    alpha: float,
    detach_reset: bool,
    grad_surrogate_function_index: int,
) -> Tensors4:
    """``T`` IF steps, soft reset: ``(spike_seq, v_next, grad_s_to_h, grad_v_to_h)``."""
    x_seq, v = checks.state_for_sequence(x_seq, v)
    v_threshold = checks.real("v_threshold", v_threshold)
    alpha, detach_reset, index = surrogate_args(alpha, detach_reset, grad_surrogate_function_index)
    with torch.no_grad():
        kernel = get_kernel("IF_soft_reset_fptt_with_grad", x_seq.device)
        return kernel(x_seq, v, v_threshold, alpha, detach_reset, index)


def IF_backward(
    grad_spike: torch.Tensor, grad_v_next: torch.Tensor, grad_s_to_h: torch.Tensor, grad_v_to_h: torch.Tensor
) -> Tensors2:
    r"""Backward of one IF step: ``(grad_x, grad_v)``, both ``[N, ...]``.

    :math:`\partial H/\partial X = \partial H/\partial V_{t-1} = 1`.
    """
    grads = step_grads(grad_spike, grad_v_next, grad_s_to_h, grad_v_to_h)
    return get_kernel("IF_backward", grads[0].device)(*grads)


def IF_bptt(
    grad_spike_seq: torch.Tensor,
    grad_v_next: torch.Tensor,
    grad_s_to_h: torch.Tensor,
    grad_v_to_h: torch.Tensor,
) -> Tensors2:
    """Backward of ``T`` IF steps: ``(grad_x_seq [T, N, ...], grad_v = dL/dV_{-1} [N, ...])``."""
    grads = sequence_grads(grad_spike_seq, grad_v_next, grad_s_to_h, grad_v_to_h)
    return get_kernel("IF_bptt", grads[0].device)(*grads)
