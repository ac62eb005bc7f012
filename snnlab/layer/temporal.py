r"""Stateful layers acting along time: :class:`SynapseFilter` and :class:`Delay`."""

from __future__ import annotations

import math

import torch
from torch import nn

from ..base import MemoryModule
from ._checks import check_bool, check_int, check_rank, check_real, check_tensor

__all__ = ["Delay", "SynapseFilter"]


class SynapseFilter(MemoryModule):
    r"""Low-pass synapse: the output current decays and jumps by one at each input spike.

    Continuous form :math:`\tau \, dI/dt = -I` between spikes, :math:`I \to I + 1`
    at a spike. With input :math:`S[t]` the discrete update is

    .. math::
        I[t] = I[t-1] - (1 - S[t]) \frac{1}{\tau} I[t-1] + S[t], \qquad I[-1] = 0

    and the output is :math:`I[t]` (shape of the input). It can be seen as a LIF
    neuron with an infinite threshold, e.g. as a read-out layer.

    With ``learnable=True`` the time constant is learnt through
    :math:`1/\tau = \mathrm{sigmoid}(w)`, ``w`` initialised to
    :math:`-\ln(\tau - 1)` (so the initial :math:`\tau` is the given one).

    :param tau: time constant, ``tau > 1``
    :param learnable: learn the time constant
    :param step_mode: ``'s'`` (``[N, ...]``) or ``'m'`` (``[T, N, ...]``)
    """

    def __init__(self, tau: float = 100.0, learnable: bool = False, step_mode: str = "s") -> None:
        super().__init__()
        tau = check_real("tau", tau)
        if not tau > 1.0:
            raise ValueError(f"tau must be > 1, got tau={tau!r}")
        self.learnable = check_bool("learnable", learnable)
        self.step_mode = step_mode
        if learnable:
            self.w = nn.Parameter(torch.as_tensor(-math.log(tau - 1.0)))
        else:
            self.tau = tau
        self.register_memory("out_i", 0.0)

    def inv_tau(self) -> torch.Tensor | float:
        """:math:`1/\\tau` (a tensor when ``learnable``)."""
        return self.w.sigmoid() if self.learnable else 1.0 / self.tau

    def single_step_forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: input spikes ``[N, ...]``; returns the current ``I[t]`` ``[N, ...]``."""
        check_tensor("x", x)
        if not isinstance(self.out_i, torch.Tensor):
            self.out_i = torch.full_like(x.detach(), float(self.out_i))
        self.out_i = self.out_i - (1.0 - x) * self.out_i * self.inv_tau() + x
        return self.out_i

    def multi_step_forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        """``x_seq``: ``[T, N, ...]``; the single-step update over ``T``."""
        check_rank("x_seq", x_seq, range(1, 65), "[T, N, ...]", "SynapseFilter", "m")
        return super().multi_step_forward(x_seq)

    def extra_repr(self) -> str:
        with torch.no_grad():
            tau = 1.0 / float(self.inv_tau())
        return f"tau={tau:.6g}, learnable={self.learnable}, step_mode={self.step_mode}"


class Delay(MemoryModule):
    r"""Delay line: ``y[t] = x[t - delay_steps]``, zeros for ``t < delay_steps``.

    The time index runs across calls in both step modes: the last
    ``delay_steps`` inputs are kept in the memory ``queue`` (a list of
    ``[N, ...]`` tensors), so ``'m'`` on ``x_seq`` equals ``'s'`` step by step
    and consecutive ``'m'`` calls continue the same sequence. :meth:`reset`
    empties the queue. Gradients flow from ``y[t]`` to ``x[t - delay_steps]``.

    :param delay_steps: number of delayed steps, ``>= 0``
    :param step_mode: ``'s'`` (``[N, ...]``) or ``'m'`` (``[T, N, ...]``)
    """

    def __init__(self, delay_steps: int, step_mode: str = "s") -> None:
        super().__init__()
        self._delay_steps = check_int("delay_steps", delay_steps, 0)
        self.step_mode = step_mode
        self.register_memory("queue", [])

    @property
    def delay_steps(self) -> int:
        """The number of delayed time steps."""
        return self._delay_steps

    def single_step_forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``[N, ...]``; returns the input of ``delay_steps`` calls ago (zeros at first)."""
        check_tensor("x", x)
        if self.delay_steps == 0:
            return x
        self.queue.append(x)
        if len(self.queue) > self.delay_steps:
            return self.queue.pop(0)
        return torch.zeros_like(x)

    def multi_step_forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        """``x_seq``: ``[T, N, ...]``; returns ``[T, N, ...]`` delayed by ``delay_steps``."""
        check_rank("x_seq", x_seq, range(1, 65), "[T, N, ...]", "Delay", "m")
        d = self.delay_steps
        if d == 0:
            return x_seq
        step_shape = x_seq.shape[1:]
        held = list(self.queue)
        for past in held:
            if past.shape != step_shape:
                raise ValueError(
                    f"Delay holds steps of shape {tuple(past.shape)}, got x_seq with steps of shape "
                    f"{tuple(step_shape)}; call reset() before a new simulation"
                )
        pad = x_seq.new_zeros((d - len(held), *step_shape))
        past_steps = torch.stack(held) if held else x_seq.new_zeros((0, *step_shape))
        full = torch.cat((pad, past_steps, x_seq))
        T = x_seq.shape[0]
        self.queue = list(full[T:].unbind(0))
        return full[:T]

    def extra_repr(self) -> str:
        return f"delay_steps={self.delay_steps}, step_mode={self.step_mode}"
