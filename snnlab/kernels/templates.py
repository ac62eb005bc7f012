r"""Generic fused-kernel forms for any charge function (reference 003 ``*_template``).

Each template runs one neuron step (``*_forward_*``) or ``T`` steps
(``*_fptt_*``) of

.. math::
    H_t = f(X_t, V_{t-1}; \theta), \quad S_t = \Theta(H_t - V_{th}), \quad
    V_t = \begin{cases} S_t V_{reset} + (1 - S_t) H_t & \text{hard reset} \\
                        H_t - S_t V_{th} & \text{soft reset} \end{cases}

where :math:`f` is the keyword argument ``charge_function(x, v, *args, **kwargs)``
(default: the IF charge :math:`H_t = V_{t-1} + X_t`); the template's extra
positional and keyword arguments are :math:`\theta` and are passed on to it.
The ``*_with_grad_*`` forms also return :math:`\partial S_t/\partial H_t` and
:math:`\partial V_t/\partial H_t`; :func:`backward_template` and
:func:`bptt_template` turn them into input and state gradients, given the
charge's partial derivatives ``grad_h_to_x`` = :math:`\partial H_t/\partial X_t`
and ``grad_h_to_v`` = :math:`\partial H_t/\partial V_{t-1}` (numbers or
tensors; default 1, the IF charge). See :mod:`snnlab.kernels.core` for the
equations.

Forward outputs are computed without building an autograd graph, as a fused
kernel would; gradients come from the backward forms.

A new neuron's fused path, e.g. a leaky charge :math:`H_t = \lambda V_{t-1} + X_t`::

    import torch
    from snnlab.kernels import bptt_template, hard_reset_fptt_with_grad_template

    def leaky(x, v, decay):
        return decay * v + x

    class LeakyMultiStep(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x_seq, v, decay):
            spike_seq, v_next, grad_s_to_h, grad_v_to_h = hard_reset_fptt_with_grad_template(
                x_seq, v, 1.0, 0.0, 2.0, False, 0, decay, charge_function=leaky
            )
            ctx.save_for_backward(grad_s_to_h, grad_v_to_h)
            ctx.decay = decay
            return spike_seq, v_next

        @staticmethod
        def backward(ctx, grad_spike_seq, grad_v_next):
            grad_x_seq, grad_v = bptt_template(
                grad_spike_seq, grad_v_next, *ctx.saved_tensors, grad_h_to_x=1.0, grad_h_to_v=ctx.decay
            )
            return grad_x_seq, grad_v, None

    spike_seq, v_last = LeakyMultiStep.apply(x_seq, torch.zeros_like(x_seq[0]), 0.9)

Shapes: ``x``, ``v``: ``[N, ...]``; ``x_seq``: ``[T, N, ...]`` with ``v``: ``[N, ...]``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from . import checks, core
from .core import if_charge

__all__ = [
    "backward_template",
    "bptt_template",
    "hard_reset_forward_template",
    "hard_reset_forward_with_grad_template",
    "hard_reset_fptt_template",
    "hard_reset_fptt_with_grad_template",
    "soft_reset_forward_template",
    "soft_reset_forward_with_grad_template",
    "soft_reset_fptt_template",
    "soft_reset_fptt_with_grad_template",
]


def _charge_function(fn: Any) -> Callable[..., torch.Tensor]:
    if not callable(fn):
        raise TypeError(
            f"charge_function must be callable as f(x, v, *args, **kwargs), got {type(fn).__name__}"
        )
    return fn


def hard_reset_value(v_threshold: Any, v_reset: Any) -> tuple[float, float]:
    """``(v_threshold, v_reset)`` for a hard reset: ``v_reset`` must be a number below the threshold."""
    if v_reset is None:
        raise TypeError("v_reset must be a real number for a hard reset, got None (None means soft reset)")
    v_threshold, v_reset = checks.threshold_and_reset(v_threshold, v_reset)
    assert v_reset is not None
    return v_threshold, v_reset


def surrogate_args(alpha: Any, detach_reset: Any, index: Any) -> tuple[float, bool, int]:
    """Checked ``(alpha, detach_reset, grad_surrogate_function_index)``."""
    return (
        checks.positive("alpha", alpha),
        checks.flag("detach_reset", detach_reset),
        checks.surrogate_index(index),
    )


# --------------------------------------------------------------------------- forward


def hard_reset_forward_template(
    x: torch.Tensor,
    v: torch.Tensor,
    v_threshold: float,
    v_reset: float,
    *args: Any,
    charge_function: Callable[..., torch.Tensor] = if_charge,
    **kwargs: Any,
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""One step with hard reset; returns ``(spike, v_next)`` = :math:`(S_t, V_t)`, ``[N, ...]``.

    :math:`H_t = f(X_t, V_{t-1})`, :math:`S_t = \Theta(H_t - V_{th})`,
    :math:`V_t = S_t V_{reset} + (1 - S_t) H_t`.
    """
    x, v = checks.state_for_step(x, v)
    v_threshold, v_reset = hard_reset_value(v_threshold, v_reset)
    charge = _charge_function(charge_function)
    with torch.no_grad():
        return core.step(x, v, v_threshold, v_reset, charge, args, kwargs)


def hard_reset_fptt_template(
    x_seq: torch.Tensor,
    v: torch.Tensor,
    v_threshold: float,
    v_reset: float,
    *args: Any,
    charge_function: Callable[..., torch.Tensor] = if_charge,
    **kwargs: Any,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Multi-step :func:`hard_reset_forward_template`: ``(spike_seq [T, N, ...], v_next = V_{T-1})``."""
    x_seq, v = checks.state_for_sequence(x_seq, v)
    v_threshold, v_reset = hard_reset_value(v_threshold, v_reset)
    charge = _charge_function(charge_function)
    with torch.no_grad():
        return core.fptt(x_seq, v, v_threshold, v_reset, charge, args, kwargs)


def soft_reset_forward_template(
    x: torch.Tensor,
    v: torch.Tensor,
    v_threshold: float,
    *args: Any,
    charge_function: Callable[..., torch.Tensor] = if_charge,
    **kwargs: Any,
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""One step with soft reset; returns ``(spike, v_next)``, ``[N, ...]``.

    :math:`H_t = f(X_t, V_{t-1})`, :math:`S_t = \Theta(H_t - V_{th})`, :math:`V_t = H_t - S_t V_{th}`.
    """
    x, v = checks.state_for_step(x, v)
    v_threshold = checks.real("v_threshold", v_threshold)
    charge = _charge_function(charge_function)
    with torch.no_grad():
        return core.step(x, v, v_threshold, None, charge, args, kwargs)


def soft_reset_fptt_template(
    x_seq: torch.Tensor,
    v: torch.Tensor,
    v_threshold: float,
    *args: Any,
    charge_function: Callable[..., torch.Tensor] = if_charge,
    **kwargs: Any,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Multi-step :func:`soft_reset_forward_template`: ``(spike_seq [T, N, ...], v_next = V_{T-1})``."""
    x_seq, v = checks.state_for_sequence(x_seq, v)
    v_threshold = checks.real("v_threshold", v_threshold)
    charge = _charge_function(charge_function)
    with torch.no_grad():
        return core.fptt(x_seq, v, v_threshold, None, charge, args, kwargs)


# --------------------------------------------------------------------------- forward with gradients


def hard_reset_forward_with_grad_template(
    x: torch.Tensor,
    v: torch.Tensor,
    v_threshold: float,
    v_reset: float,
    alpha: float,
    detach_reset: bool,
    grad_surrogate_function_index: int,
    *args: Any,
    charge_function: Callable[..., torch.Tensor] = if_charge,
    **kwargs: Any,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    r"""One hard-reset step plus local gradients: ``(spike, v_next, grad_s_to_h, grad_v_to_h)``.

    :math:`\partial S_t/\partial H_t = g'(H_t - V_{th}; \alpha)` (index 0 ATan, 1 Sigmoid);
    :math:`\partial V_t/\partial H_t = 1 - S_t + (V_{reset} - H_t)\,\partial S_t/\partial H_t`,
    or :math:`1 - S_t` with ``detach_reset``. All outputs ``[N, ...]``.
    """
    x, v = checks.state_for_step(x, v)
    v_threshold, v_reset = hard_reset_value(v_threshold, v_reset)
    alpha, detach_reset, index = surrogate_args(alpha, detach_reset, grad_surrogate_function_index)
    charge = _charge_function(charge_function)
    with torch.no_grad():
        return core.step_with_grad(
            x, v, v_threshold, v_reset, alpha, detach_reset, index, charge, args, kwargs
        )


def hard_reset_fptt_with_grad_template(
    x_seq: torch.Tensor,
    v: torch.Tensor,
    v_threshold: float,
    v_reset: float,
    alpha: float,
    detach_reset: bool,
    grad_surrogate_function_index: int,
    *args: Any,
    charge_function: Callable[..., torch.Tensor] = if_charge,
    **kwargs: Any,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Multi-step :func:`hard_reset_forward_with_grad_template`.

    Returns ``(spike_seq, v_next, grad_s_to_h, grad_v_to_h)``: ``v_next`` is
    :math:`V_{T-1}` ``[N, ...]``, the others ``[T, N, ...]``.
    """
    x_seq, v = checks.state_for_sequence(x_seq, v)
    v_threshold, v_reset = hard_reset_value(v_threshold, v_reset)
    alpha, detach_reset, index = surrogate_args(alpha, detach_reset, grad_surrogate_function_index)
    charge = _charge_function(charge_function)
    with torch.no_grad():
        return core.fptt_with_grad(
            x_seq, v, v_threshold, v_reset, alpha, detach_reset, index, charge, args, kwargs
        )


def soft_reset_forward_with_grad_template(
    x: torch.Tensor,
    v: torch.Tensor,
    v_threshold: float,
    alpha: float,
    detach_reset: bool,
    grad_surrogate_function_index: int,
    *args: Any,
    charge_function: Callable[..., torch.Tensor] = if_charge,
    **kwargs: Any,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    r"""One soft-reset step plus local gradients: ``(spike, v_next, grad_s_to_h, grad_v_to_h)``.

    :math:`\partial V_t/\partial H_t = 1 - V_{th}\,\partial S_t/\partial H_t`, or 1 with ``detach_reset``.
    """
    x, v = checks.state_for_step(x, v)
    v_threshold = checks.real("v_threshold", v_threshold)
    alpha, detach_reset, index = surrogate_args(alpha, detach_reset, grad_surrogate_function_index)
    charge = _charge_function(charge_function)
    with torch.no_grad():
        return core.step_with_grad(x, v, v_threshold, None, alpha, detach_reset, index, charge, args, kwargs)


def soft_reset_fptt_with_grad_template(
    x_seq: torch.Tensor,
    v: torch.Tensor,
    v_threshold: float,
    alpha: float,
    detach_reset: bool,
    grad_surrogate_function_index: int,
    *args: Any,
    charge_function: Callable[..., torch.Tensor] = if_charge,
    **kwargs: Any,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Multi-step :func:`soft_reset_forward_with_grad_template` (outputs as the hard-reset form)."""
    x_seq, v = checks.state_for_sequence(x_seq, v)
    v_threshold = checks.real("v_threshold", v_threshold)
    alpha, detach_reset, index = surrogate_args(alpha, detach_reset, grad_surrogate_function_index)
    charge = _charge_function(charge_function)
    with torch.no_grad():
        return core.fptt_with_grad(
            x_seq, v, v_threshold, None, alpha, detach_reset, index, charge, args, kwargs
        )


# --------------------------------------------------------------------------- backward


def _no_extra(name: str, args: tuple, kwargs: dict) -> None:
    if args or kwargs:
        raise TypeError(
            f"{name} takes the charge's partial derivatives as the keywords grad_h_to_x and grad_h_to_v; "
            f"got unexpected positional {args!r} / keyword {sorted(kwargs)!r} arguments"
        )


def step_grads(
    grad_spike: Any, grad_v_next: Any, grad_s_to_h: Any, grad_v_to_h: Any
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Checked single-step gradient tensors (``grad_v_next=None`` means zero), all ``[N, ...]``."""
    grad_spike = checks.float_tensor("grad_spike", grad_spike)
    shape = grad_spike.shape
    if grad_v_next is None:
        grad_v_next = torch.zeros_like(grad_spike)
    grad_v_next = checks.like("grad_v_next", grad_v_next, "grad_spike", grad_spike, shape)
    grad_s_to_h = checks.like("grad_s_to_h", grad_s_to_h, "grad_spike", grad_spike, shape)
    grad_v_to_h = checks.like("grad_v_to_h", grad_v_to_h, "grad_spike", grad_spike, shape)
    return grad_spike, grad_v_next, grad_s_to_h, grad_v_to_h


def sequence_grads(
    grad_spike_seq: Any,
    grad_v_next: Any,
    grad_s_to_h: Any,
    grad_v_to_h: Any,
    seq_name: str = "grad_spike_seq",
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Checked multi-step gradients: sequences ``[T, N, ...]``, ``grad_v_next`` ``[N, ...]`` (None = 0)."""
    grad_spike_seq = checks.sequence(seq_name, grad_spike_seq)
    shape = grad_spike_seq.shape
    if grad_v_next is None:
        grad_v_next = torch.zeros_like(grad_spike_seq[0])
    grad_v_next = checks.like("grad_v_next", grad_v_next, seq_name, grad_spike_seq, shape[1:])
    grad_s_to_h = checks.like("grad_s_to_h", grad_s_to_h, seq_name, grad_spike_seq, shape)
    grad_v_to_h = checks.like("grad_v_to_h", grad_v_to_h, seq_name, grad_spike_seq, shape)
    return grad_spike_seq, grad_v_next, grad_s_to_h, grad_v_to_h


def backward_template(
    grad_spike: torch.Tensor,
    grad_v_next: torch.Tensor,
    grad_s_to_h: torch.Tensor,
    grad_v_to_h: torch.Tensor,
    *args: Any,
    grad_h_to_x: float | torch.Tensor = 1.0,
    grad_h_to_v: float | torch.Tensor = 1.0,
    **kwargs: Any,
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""One step back: ``(grad_x, grad_v)`` = (dL/dX_t, dL/dV_{t-1}).

    :math:`\partial L/\partial H_t = \partial L/\partial S_t\,\partial S_t/\partial H_t
    + \partial L/\partial V_t\,\partial V_t/\partial H_t`, then multiplied by ``grad_h_to_x``
    and ``grad_h_to_v`` (numbers or tensors broadcasting to ``[N, ...]``). All tensors ``[N, ...]``.
    """
    _no_extra("backward_template", args, kwargs)
    grads = step_grads(grad_spike, grad_v_next, grad_s_to_h, grad_v_to_h)
    shape, ref = grads[0].shape, grads[0]
    dx = checks.broadcastable("grad_h_to_x", grad_h_to_x, shape, ref)
    dv = checks.broadcastable("grad_h_to_v", grad_h_to_v, shape, ref)
    return core.backward(*grads, dx, dv)


def bptt_template(
    grad_spike_seq: torch.Tensor,
    grad_v_next: torch.Tensor,
    grad_s_to_h: torch.Tensor,
    grad_v_to_h: torch.Tensor,
    *args: Any,
    grad_h_to_x: float | torch.Tensor = 1.0,
    grad_h_to_v: float | torch.Tensor = 1.0,
    **kwargs: Any,
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Multi-step :func:`backward_template`: ``(grad_x_seq [T, N, ...], grad_v = dL/dV_{-1} [N, ...])``.

    Runs :math:`t = T-1, \dots, 0`, carrying :math:`\partial L/\partial V_t` from
    ``grad_v_next`` = :math:`\partial L/\partial V_{T-1}`. ``grad_h_to_x`` and
    ``grad_h_to_v`` are numbers or tensors broadcasting to ``[T, N, ...]``, so a
    charge whose partial derivatives change over time passes them per step.
    """
    _no_extra("bptt_template", args, kwargs)
    grads = sequence_grads(grad_spike_seq, grad_v_next, grad_s_to_h, grad_v_to_h)
    shape, ref = grads[0].shape, grads[0]
    dx = checks.broadcastable("grad_h_to_x", grad_h_to_x, shape, ref)
    dv = checks.broadcastable("grad_h_to_v", grad_h_to_v, shape, ref)
    return core.bptt(*grads, dx, dv)
