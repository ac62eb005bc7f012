r"""Plain-torch mathematics of the fused neuron kernels (no argument checks).

A neuron step with charge function :math:`f` and parameters :math:`\theta`:

.. math::
    H_t &= f(X_t, V_{t-1}; \theta) \\
    S_t &= \Theta(H_t - V_{th}) \\
    V_t &= S_t V_{reset} + (1 - S_t) H_t \quad \text{(hard reset)} \\
    V_t &= H_t - S_t V_{th} \quad \text{(soft reset, } V_{reset} = \text{None)}

with :math:`\Theta(x) = [x \ge 0]`, so :math:`H_t = V_{th}` fires. The
gradients the backward pass needs, with the surrogate derivative
:math:`g'` chosen by index (0 = ATan, 1 = Sigmoid, from :mod:`snnlab.surrogate`):

.. math::
    \frac{\partial S_t}{\partial H_t} &= g'(H_t - V_{th}; \alpha) \\
    \frac{\partial V_t}{\partial H_t} &= 1 - S_t + (V_{reset} - H_t)\frac{\partial S_t}{\partial H_t}
    \quad \text{(hard; } 1 - S_t \text{ with detach\_reset)} \\
    \frac{\partial V_t}{\partial H_t} &= 1 - V_{th}\frac{\partial S_t}{\partial H_t}
    \quad \text{(soft; } 1 \text{ with detach\_reset)}

and the backward step

.. math::
    \frac{\partial L}{\partial H_t} = \frac{\partial L}{\partial S_t}\frac{\partial S_t}{\partial H_t}
    + \frac{\partial L}{\partial V_t}\frac{\partial V_t}{\partial H_t}, \quad
    \frac{\partial L}{\partial X_t} = \frac{\partial L}{\partial H_t}\frac{\partial H_t}{\partial X_t}, \quad
    \frac{\partial L}{\partial V_{t-1}} = \frac{\partial L}{\partial H_t}
    \frac{\partial H_t}{\partial V_{t-1}}.

Shapes: single step ``x``, ``v``: ``[N, ...]``; multi-step ``x_seq``: ``[T, N, ...]``
and ``v``: ``[N, ...]``. Callers validate arguments; these functions only compute.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from ..surrogate import ATan, Sigmoid, heaviside

ChargeFunction = Callable[..., torch.Tensor]
Scalar = float | torch.Tensor

#: ``g'(x, alpha)`` by ``grad_surrogate_function_index``.
SURROGATE_GRADS: tuple[Callable[[torch.Tensor, float], torch.Tensor], ...] = (
    ATan.surrogate_grad,
    Sigmoid.surrogate_grad,
)


def if_charge(x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    r"""IF charge :math:`H_t = V_{t-1} + X_t` (:math:`\partial H/\partial X = \partial H/\partial V = 1`)."""
    return v + x


def lif_charge(
    x: torch.Tensor, v: torch.Tensor, v_reset: float, reciprocal_tau: float, detach_input: bool
) -> torch.Tensor:
    r"""LIF charge.

    ``detach_input=False``: :math:`H_t = V_{t-1} + \frac{1}{\tau}(X_t - (V_{t-1} - V_{reset}))`;
    ``detach_input=True`` (input not scaled by :math:`1/\tau`):
    :math:`H_t = V_{t-1} + X_t + \frac{1}{\tau}(V_{reset} - V_{t-1})`.
    """
    if detach_input:
        return v + x + (v_reset - v) * reciprocal_tau
    return v + (x - (v - v_reset)) * reciprocal_tau


def lif_partials(reciprocal_tau: float, detach_input: bool) -> tuple[float, float]:
    r"""LIF :math:`(\partial H/\partial X, \partial H/\partial V) = (1/\tau \text{ or } 1,\ 1 - 1/\tau)`."""
    return (1.0 if detach_input else reciprocal_tau), 1.0 - reciprocal_tau


def _charge(
    charge: ChargeFunction, x: torch.Tensor, v: torch.Tensor, args: Sequence[Any], kwargs: dict[str, Any]
) -> torch.Tensor:
    h = charge(x, v, *args, **kwargs)
    if not isinstance(h, torch.Tensor) or h.shape != x.shape:
        got = tuple(h.shape) if isinstance(h, torch.Tensor) else type(h).__name__
        raise ValueError(
            f"charge_function must return a tensor H of the input's shape {tuple(x.shape)}, got {got}"
        )
    return h


def fire_and_reset(
    h: torch.Tensor, v_threshold: float, v_reset: float | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(S_t, V_t)`` from the charged potential ``h`` (hard reset, or soft if ``v_reset`` is None)."""
    spike = heaviside(h - v_threshold)
    if v_reset is None:
        return spike, h - spike * v_threshold
    return spike, spike * v_reset + (1.0 - spike) * h


def reset_gradients(
    h: torch.Tensor,
    spike: torch.Tensor,
    v_threshold: float,
    v_reset: float | None,
    alpha: float,
    detach_reset: bool,
    grad_surrogate_function_index: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""``(dS/dH, dV/dH)`` at one step (see the module docstring)."""
    grad_s_to_h = SURROGATE_GRADS[grad_surrogate_function_index](h - v_threshold, alpha)
    if v_reset is None:
        if detach_reset:
            return grad_s_to_h, torch.ones_like(h)
        return grad_s_to_h, 1.0 - v_threshold * grad_s_to_h
    if detach_reset:
        return grad_s_to_h, 1.0 - spike
    return grad_s_to_h, 1.0 - spike + (v_reset - h) * grad_s_to_h


def step(
    x: torch.Tensor,
    v: torch.Tensor,
    v_threshold: float,
    v_reset: float | None,
    charge: ChargeFunction = if_charge,
    args: Sequence[Any] = (),
    kwargs: dict[str, Any] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One step: ``(spike, v_next)``, both ``[N, ...]``."""
    h = _charge(charge, x, v, args, kwargs or {})
    return fire_and_reset(h, v_threshold, v_reset)


def step_with_grad(
    x: torch.Tensor,
    v: torch.Tensor,
    v_threshold: float,
    v_reset: float | None,
    alpha: float,
    detach_reset: bool,
    grad_surrogate_function_index: int,
    charge: ChargeFunction = if_charge,
    args: Sequence[Any] = (),
    kwargs: dict[str, Any] | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """One step: ``(spike, v_next, grad_s_to_h, grad_v_to_h)``, all ``[N, ...]``."""
    h = _charge(charge, x, v, args, kwargs or {})
    spike, v_next = fire_and_reset(h, v_threshold, v_reset)
    grads = reset_gradients(
        h, spike, v_threshold, v_reset, alpha, detach_reset, grad_surrogate_function_index
    )
    return spike, v_next, *grads


def fptt(
    x_seq: torch.Tensor,
    v: torch.Tensor,
    v_threshold: float,
    v_reset: float | None,
    charge: ChargeFunction = if_charge,
    args: Sequence[Any] = (),
    kwargs: dict[str, Any] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``T`` steps: ``(spike_seq [T, N, ...], v_next = V_{T-1} [N, ...])``."""
    spikes = []
    for x in x_seq.unbind(0):
        spike, v = step(x, v, v_threshold, v_reset, charge, args, kwargs)
        spikes.append(spike)
    return torch.stack(spikes), v


def fptt_with_grad(
    x_seq: torch.Tensor,
    v: torch.Tensor,
    v_threshold: float,
    v_reset: float | None,
    alpha: float,
    detach_reset: bool,
    grad_surrogate_function_index: int,
    charge: ChargeFunction = if_charge,
    args: Sequence[Any] = (),
    kwargs: dict[str, Any] | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``T`` steps: ``(spike_seq, v_next, grad_s_to_h, grad_v_to_h)``; sequences are ``[T, N, ...]``."""
    spikes, s_to_h, v_to_h = [], [], []
    for x in x_seq.unbind(0):
        spike, v, gs, gv = step_with_grad(
            x,
            v,
            v_threshold,
            v_reset,
            alpha,
            detach_reset,
            grad_surrogate_function_index,
            charge,
            args,
            kwargs,
        )
        spikes.append(spike)
        s_to_h.append(gs)
        v_to_h.append(gv)
    return torch.stack(spikes), v, torch.stack(s_to_h), torch.stack(v_to_h)


def backward(
    grad_spike: torch.Tensor,
    grad_v_next: torch.Tensor,
    grad_s_to_h: torch.Tensor,
    grad_v_to_h: torch.Tensor,
    grad_h_to_x: Scalar = 1.0,
    grad_h_to_v: Scalar = 1.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One step back: ``(grad_x, grad_v)`` = ``(dL/dX_t, dL/dV_{t-1})``."""
    grad_h = grad_spike * grad_s_to_h + grad_v_next * grad_v_to_h
    return grad_h * grad_h_to_x, grad_h * grad_h_to_v


def _at_step(value: Scalar, t: int, seq_shape: torch.Size) -> Scalar:
    """Step ``t`` of a partial derivative given as a number or a tensor broadcasting to ``seq_shape``."""
    if isinstance(value, torch.Tensor):
        return value.broadcast_to(seq_shape)[t]
    return value


def bptt(
    grad_spike_seq: torch.Tensor,
    grad_v_next: torch.Tensor,
    grad_s_to_h: torch.Tensor,
    grad_v_to_h: torch.Tensor,
    grad_h_to_x: Scalar = 1.0,
    grad_h_to_v: Scalar = 1.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``T`` steps back from ``dL/dV_{T-1}``: ``(grad_x_seq [T, N, ...], dL/dV_{-1} [N, ...])``."""
    seq_shape = grad_spike_seq.shape
    grad_x_seq = torch.empty_like(grad_spike_seq)
    grad_v = grad_v_next
    for t in range(seq_shape[0] - 1, -1, -1):
        grad_x, grad_v = backward(
            grad_spike_seq[t],
            grad_v,
            grad_s_to_h[t],
            grad_v_to_h[t],
            _at_step(grad_h_to_x, t, seq_shape),
            _at_step(grad_h_to_v, t, seq_shape),
        )
        grad_x_seq[t] = grad_x
    return grad_x_seq, grad_v
