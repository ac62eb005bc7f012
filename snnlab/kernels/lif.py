r"""Fused LIF kernels (reference 003 ``LIF_*``), plain-torch reference behind :mod:`.dispatch`.

Charge (``reciprocal_tau`` = :math:`1/\tau \in (0, 1]`):

.. math::
    H_t = V_{t-1} + \tfrac{1}{\tau}\,(X_t - (V_{t-1} - V_{reset}))
    \quad (\text{detach\_input=False}; \ \partial H/\partial X = 1/\tau)

    H_t = V_{t-1} + X_t + \tfrac{1}{\tau}\,(V_{reset} - V_{t-1})
    \quad (\text{detach\_input=True: input not scaled}; \ \partial H/\partial X = 1)

with :math:`\partial H/\partial V_{t-1} = 1 - 1/\tau` in both cases. Fire and
reset as in :mod:`snnlab.kernels.core`. The ``LIF_soft_reset_*`` forms (not
in reference 003; the autograd Functions use them for ``v_reset=None``)
charge with :math:`V_{reset} = 0` and reset by subtracting :math:`V_{th}`.

Shapes: ``x``, ``v`` ``[N, ...]``; ``x_seq`` ``[T, N, ...]``. Forward
outputs carry no autograd graph; use :class:`snnlab.kernels.LIFStep` /
:class:`snnlab.kernels.LIFMultiStep` for gradients.
"""

from __future__ import annotations

import functools

import torch

from . import checks, core
from .dispatch import get_kernel, register_reference
from .templates import hard_reset_value, sequence_grads, step_grads, surrogate_args

__all__ = [
    "LIF_backward",
    "LIF_bptt",
    "LIF_hard_reset_forward",
    "LIF_hard_reset_forward_with_grad",
    "LIF_hard_reset_fptt",
    "LIF_hard_reset_fptt_with_grad",
    "LIF_soft_reset_forward",
    "LIF_soft_reset_forward_with_grad",
    "LIF_soft_reset_fptt",
    "LIF_soft_reset_fptt_with_grad",
]

Tensors2 = tuple[torch.Tensor, torch.Tensor]
Tensors4 = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


def _charge(v_reset: float, reciprocal_tau: float, detach_input: bool):
    return functools.partial(
        core.lif_charge, v_reset=v_reset, reciprocal_tau=reciprocal_tau, detach_input=detach_input
    )


def _lif_args(reciprocal_tau: object, detach_input: object) -> tuple[float, bool]:
    return checks.reciprocal_tau(reciprocal_tau), checks.flag("detach_input", detach_input)


# --------------------------------------------------------------------------- torch reference


def _ref_hard_forward(x, v, v_threshold, v_reset, reciprocal_tau, detach_input):
    return core.step(x, v, v_threshold, v_reset, _charge(v_reset, reciprocal_tau, detach_input))


def _ref_hard_fptt(x_seq, v, v_threshold, v_reset, reciprocal_tau, detach_input):
    return core.fptt(x_seq, v, v_threshold, v_reset, _charge(v_reset, reciprocal_tau, detach_input))


def _ref_hard_forward_with_grad(
    x, v, v_threshold, v_reset, alpha, detach_reset, index, reciprocal_tau, detach_input
):
    charge = _charge(v_reset, reciprocal_tau, detach_input)
    return core.step_with_grad(x, v, v_threshold, v_reset, alpha, detach_reset, index, charge)


def _ref_hard_fptt_with_grad(
    x_seq, v, v_threshold, v_reset, alpha, detach_reset, index, reciprocal_tau, detach_input
):
    charge = _charge(v_reset, reciprocal_tau, detach_input)
    return core.fptt_with_grad(x_seq, v, v_threshold, v_reset, alpha, detach_reset, index, charge)


def _ref_soft_forward(x, v, v_threshold, reciprocal_tau, detach_input):
    return core.step(x, v, v_threshold, None, _charge(0.0, reciprocal_tau, detach_input))


def _ref_soft_fptt(x_seq, v, v_threshold, reciprocal_tau, detach_input):
    return core.fptt(x_seq, v, v_threshold, None, _charge(0.0, reciprocal_tau, detach_input))


def _ref_soft_forward_with_grad(x, v, v_threshold, alpha, detach_reset, index, reciprocal_tau, detach_input):
    charge = _charge(0.0, reciprocal_tau, detach_input)
    return core.step_with_grad(x, v, v_threshold, None, alpha, detach_reset, index, charge)


def _ref_soft_fptt_with_grad(x_seq, v, v_threshold, alpha, detach_reset, index, reciprocal_tau, detach_input):
    charge = _charge(0.0, reciprocal_tau, detach_input)
    return core.fptt_with_grad(x_seq, v, v_threshold, None, alpha, detach_reset, index, charge)


def _ref_backward(grad_spike, grad_v_next, grad_s_to_h, grad_v_to_h, reciprocal_tau, detach_input):
    return core.backward(
        grad_spike, grad_v_next, grad_s_to_h, grad_v_to_h, *core.lif_partials(reciprocal_tau, detach_input)
    )


def _ref_bptt(grad_spike, grad_v_next, grad_s_to_h, grad_v_to_h, reciprocal_tau, detach_input):
    return core.bptt(
        grad_spike, grad_v_next, grad_s_to_h, grad_v_to_h, *core.lif_partials(reciprocal_tau, detach_input)
    )


for _name, _fn in {
    "LIF_hard_reset_forward": _ref_hard_forward,
    "LIF_hard_reset_fptt": _ref_hard_fptt,
    "LIF_hard_reset_forward_with_grad": _ref_hard_forward_with_grad,
    "LIF_hard_reset_fptt_with_grad": _ref_hard_fptt_with_grad,
    "LIF_soft_reset_forward": _ref_soft_forward,
    "LIF_soft_reset_fptt": _ref_soft_fptt,
    "LIF_soft_reset_forward_with_grad": _ref_soft_forward_with_grad,
    "LIF_soft_reset_fptt_with_grad": _ref_soft_fptt_with_grad,
    "LIF_backward": _ref_backward,
    "LIF_bptt": _ref_bptt,
}.items():
    register_reference(_name, _fn)


# --------------------------------------------------------------------------- public, hard reset


def LIF_hard_reset_forward(
    x: torch.Tensor,
    v: torch.Tensor,
    v_threshold: float,
    v_reset: float,
    reciprocal_tau: float,
    detach_input: bool,
) -> Tensors2:
    """One LIF step with hard reset: ``(spike, v_next)``, both ``[N, ...]``."""
    x, v = checks.state_for_step(x, v)
    v_threshold, v_reset = hard_reset_value(v_threshold, v_reset)
    reciprocal_tau, detach_input = _lif_args(reciprocal_tau, detach_input)
    with torch.no_grad():
        kernel = get_kernel("LIF_hard_reset_forward", x.device)
        return kernel(x, v, v_threshold, v_reset, reciprocal_tau, detach_input)


def LIF_hard_reset_fptt(
    x_seq: torch.Tensor,
    v: torch.Tensor,
    v_threshold: float,
    v_reset: float,
    reciprocal_tau: float,
    detach_input: bool,
) -> Tensors2:
    """``T`` LIF steps with hard reset: ``(spike_seq [T, N, ...], v_next = V_{T-1} [N, ...])``."""
    x_seq, v = checks.state_for_sequence(x_seq, v)
    v_threshold, v_reset = hard_reset_value(v_threshold, v_reset)
    reciprocal_tau, detach_input = _lif_args(reciprocal_tau, detach_input)
    with torch.no_grad():
        kernel = get_kernel("LIF_hard_reset_fptt", x_seq.device)
        return kernel(x_seq, v, v_threshold, v_reset, reciprocal_tau, detach_input)


def LIF_hard_reset_forward_with_grad(
    x: torch.Tensor,
    v: torch.Tensor,
    v_threshold: float,
    v_reset: float,
    alpha: float,
    detach_reset: bool,
    grad_surrogate_function_index: int,
    reciprocal_tau: float,
    detach_input: bool,
) -> Tensors4:
    """One LIF step, hard reset: ``(spike, v_next, grad_s_to_h, grad_v_to_h)``, all ``[N, ...]``."""
    x, v = checks.state_for_step(x, v)
    v_threshold, v_reset = hard_reset_value(v_threshold, v_reset)
    alpha, detach_reset, index = surrogate_args(alpha, detach_reset, grad_surrogate_function_index)
    reciprocal_tau, detach_input = _lif_args(reciprocal_tau, detach_input)
    with torch.no_grad():
        kernel = get_kernel("LIF_hard_reset_forward_with_grad", x.device)
        return kernel(x, v, v_threshold, v_reset, alpha, detach_reset, index, reciprocal_tau, detach_input)


def LIF_hard_reset_fptt_with_grad(
    x_seq: torch.Tensor,
    v: torch.Tensor,
    v_threshold: float,
    v_reset: float,
    alpha: float,
    detach_reset: bool,
    grad_surrogate_function_index: int,
    reciprocal_tau: float,
    detach_input: bool,
) -> Tensors4:
    """``T`` LIF steps, hard reset: ``(spike_seq, v_next, grad_s_to_h, grad_v_to_h)``.

    ``v_next`` is :math:`V_{T-1}` ``[N, ...]``; the rest are ``[T, N, ...]``.
    """
    x_seq, v = checks.state_for_sequence(x_seq, v)
    v_threshold, v_reset = hard_reset_value(v_threshold, v_reset)
    alpha, detach_reset, index = surrogate_args(alpha, detach_reset, grad_surrogate_function_index)
    reciprocal_tau, detach_input = _lif_args(reciprocal_tau, detach_input)
    with torch.no_grad():
        kernel = get_kernel("LIF_hard_reset_fptt_with_grad", x_seq.device)
        return kernel(
            x_seq, v, v_threshold, v_reset, alpha, detach_reset, index, reciprocal_tau, detach_input
        )


# --------------------------------------------------------------------------- public, soft reset


def LIF_soft_reset_forward(
    x: torch.Tensor, v: torch.Tensor, v_threshold: float, reciprocal_tau: float, detach_input: bool
) -> Tensors2:
    """One LIF step with soft reset (:math:`V_{reset} = 0` in the charge): ``(spike, v_next)``."""
    x, v = checks.state_for_step(x, v)
    v_threshold = checks.real("v_threshold", v_threshold)
    reciprocal_tau, detach_input = _lif_args(reciprocal_tau, detach_input)
    with torch.no_grad():
        kernel = get_kernel("LIF_soft_reset_forward", x.device)
        return kernel(x, v, v_threshold, reciprocal_tau, detach_input)


def LIF_soft_reset_fptt(
    x_seq: torch.Tensor, v: torch.Tensor, v_threshold: float, reciprocal_tau: float, detach_input: bool
) -> Tensors2:
    """``T`` LIF steps with soft reset: ``(spike_seq [T, N, ...], v_next = V_{T-1})``."""
    x_seq, v = checks.state_for_sequence(x_seq, v)
    v_threshold = checks.real("v_threshold", v_threshold)
    reciprocal_tau, detach_input = _lif_args(reciprocal_tau, detach_input)
    with torch.no_grad():
        kernel = get_kernel("LIF_soft_reset_fptt", x_seq.device)
        return kernel(x_seq, v, v_threshold, reciprocal_tau, detach_input)


def LIF_soft_reset_forward_with_grad(
    x: torch.Tensor,
    v: torch.Tensor,
    v_threshold: float,
    alpha: float,
    detach_reset: bool,
    grad_surrogate_function_index: int,
    reciprocal_tau: float,
    detach_input: bool,
) -> Tensors4:
    """One LIF step, soft reset: ``(spike, v_next, grad_s_to_h, grad_v_to_h)``, all ``[N, ...]``."""
    x, v = checks.state_for_step(x, v)
    v_threshold = checks.real("v_threshold", v_threshold)
    alpha, detach_reset, index = surrogate_args(alpha, detach_reset, grad_surrogate_function_index)
    reciprocal_tau, detach_input = _lif_args(reciprocal_tau, detach_input)
    with torch.no_grad():
        kernel = get_kernel("LIF_soft_reset_forward_with_grad", x.device)
        return kernel(x, v, v_threshold, alpha, detach_reset, index, reciprocal_tau, detach_input)


def LIF_soft_reset_fptt_with_grad(
    x_seq: torch.Tensor,
    v: torch.Tensor,
    v_threshold: float,
    alpha: float,
    detach_reset: bool,
    grad_surrogate_function_index: int,
    reciprocal_tau: float,
    detach_input: bool,
) -> Tensors4:
    """``T`` LIF steps, soft reset: ``(spike_seq, v_next, grad_s_to_h, grad_v_to_h)``."""
    x_seq, v = checks.state_for_sequence(x_seq, v)
    v_threshold = checks.real("v_threshold", v_threshold)
    alpha, detach_reset, index = surrogate_args(alpha, detach_reset, grad_surrogate_function_index)
    reciprocal_tau, detach_input = _lif_args(reciprocal_tau, detach_input)
    with torch.no_grad():
        kernel = get_kernel("LIF_soft_reset_fptt_with_grad", x_seq.device)
        return kernel(x_seq, v, v_threshold, alpha, detach_reset, index, reciprocal_tau, detach_input)


# --------------------------------------------------------------------------- public, backward


def LIF_backward(
    grad_spike: torch.Tensor,
    grad_v_next: torch.Tensor,
    grad_s_to_h: torch.Tensor,
    grad_v_to_h: torch.Tensor,
    reciprocal_tau: float,
    detach_input: bool,
) -> Tensors2:
    r"""Backward of one LIF step (hard or soft reset): ``(grad_x, grad_v)``, both ``[N, ...]``.

    :math:`\partial H/\partial X = 1/\tau` (1 with ``detach_input``),
    :math:`\partial H/\partial V_{t-1} = 1 - 1/\tau`.
    """
    grads = step_grads(grad_spike, grad_v_next, grad_s_to_h, grad_v_to_h)
    reciprocal_tau, detach_input = _lif_args(reciprocal_tau, detach_input)
    kernel = get_kernel("LIF_backward", grads[0].device)
    return kernel(*grads, reciprocal_tau, detach_input)


def LIF_bptt(
    grad_spike: torch.Tensor,
    grad_v_next: torch.Tensor,
    grad_s_to_h: torch.Tensor,
    grad_v_to_h: torch.Tensor,
    reciprocal_tau: float,
    detach_input: bool,
) -> Tensors2:
    r"""Backward of ``T`` LIF steps: ``(grad_x_seq [T, N, ...], grad_v = dL/dV_{-1} [N, ...])``.

    ``grad_spike``, ``grad_s_to_h``, ``grad_v_to_h`` are ``[T, N, ...]``;
    ``grad_v_next`` = :math:`\partial L/\partial V_{T-1}` is ``[N, ...]``.
    """
    grads = sequence_grads(grad_spike, grad_v_next, grad_s_to_h, grad_v_to_h, seq_name="grad_spike")
    reciprocal_tau, detach_input = _lif_args(reciprocal_tau, detach_input)
    kernel = get_kernel("LIF_bptt", grads[0].device)
    return kernel(*grads, reciprocal_tau, detach_input)
