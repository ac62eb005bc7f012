r"""Online training through time (OTTT, Xiao et al. 2022).

In OTTT a neuron layer (``snnlab.neuron.OTTTLIFNode`` in training mode)
outputs the pair ``[spike, trace]`` with the presynaptic trace
:math:`\hat a[t] = \lambda \hat a[t-1] + s[t]`. A parametrised layer ``f``
that follows it must produce its *value* from the spikes and its *gradient*
from the trace:

.. math::
    \text{forward: } y = f(s), \qquad
    \text{backward: } \frac{\partial L}{\partial \theta}
    = \Big(\frac{\partial f(\hat a)}{\partial \theta}\Big)^{\!T} \frac{\partial L}{\partial y}

(for a linear layer: :math:`\partial L / \partial W = \delta^T \hat a`). The
gradient with respect to the input is passed on to ``spike`` (and ``trace``),
so it reaches the neuron's surrogate gradient.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

__all__ = ["GradwithTrace", "OTTTSequential", "ReplaceforGrad", "SpikeTraceOp"]


class ReplaceforGrad(torch.autograd.Function):
    r"""Forward returns ``x_r``; backward passes the incoming gradient to both ``x`` and ``x_r``.

    ``ReplaceforGrad.apply(x, x_r)``: the value of ``x_r`` with the gradient
    path of ``x`` (and of ``x_r``). ``x`` and ``x_r`` must have the same shape.
    """

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, x_r: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        if x.shape != x_r.shape:
            raise ValueError(
                "ReplaceforGrad needs x and x_r of the same shape, "
                f"got {tuple(x.shape)} and {tuple(x_r.shape)}"
            )
        return x_r.clone()

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # type: ignore[override]
        return grad, grad


def _split_pair(x: object, owner: str) -> tuple[torch.Tensor, torch.Tensor]:
    if not isinstance(x, (list, tuple)) or len(x) != 2:
        raise TypeError(f"{owner} expects x = [spike, trace] (a list of two tensors), got {type(x).__name__}")
    spike, trace = x
    if not isinstance(spike, torch.Tensor) or not isinstance(trace, torch.Tensor):
        raise TypeError(f"{owner} expects x = [spike, trace] of tensors")
    if spike.shape != trace.shape:
        raise ValueError(
            f"{owner} expects spike and trace of the same shape, "
            f"got {tuple(spike.shape)} and {tuple(trace.shape)}"
        )
    return spike, trace


class GradwithTrace(nn.Module):
    r"""Wrap a parametrised module so that its value comes from spikes and its gradient from traces.

    ``forward([spike, trace])`` returns a tensor with the value of
    ``module(spike)`` (computed without a graph) whose backward pass runs
    through ``module(ReplaceforGrad(spike, trace))``, i.e. ``module`` evaluated
    on ``trace`` with the input gradient sent to ``spike`` and ``trace``.

    :param module: the module to wrap (e.g. ``Linear``, ``Conv2d``)
    """

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        if not callable(module):
            raise TypeError(f"module must be an nn.Module, got {type(module).__name__}")
        self.module = module

    def forward(self, x: Sequence[torch.Tensor]) -> torch.Tensor:
        """``x = [spike, trace]`` (same shape); returns ``module`` output (value from spike)."""
        spike, trace = _split_pair(x, "GradwithTrace")
        with torch.no_grad():
            out = self.module(spike).detach()
        out_for_grad = self.module(ReplaceforGrad.apply(spike, trace))
        return ReplaceforGrad.apply(out_for_grad, out)


class SpikeTraceOp(nn.Module):
    """Apply the same parameter-free module (dropout, pooling, flatten, ...) to spike and trace.

    ``forward([spike, trace])`` returns ``[module(spike), module(trace)]``; the
    trace branch runs without a graph.

    :param module: the module to wrap
    """

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        if not callable(module):
            raise TypeError(f"module must be an nn.Module, got {type(module).__name__}")
        self.module = module

    def forward(self, x: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """``x = [spike, trace]``; returns ``[module(spike), module(trace)]``."""
        spike, trace = _split_pair(x, "SpikeTraceOp")
        spike = self.module(spike)
        with torch.no_grad():
            trace = self.module(trace)
        return [spike, trace]


class OTTTSequential(nn.Sequential):
    """``nn.Sequential`` for OTTT networks.

    A tensor input goes through a module as usual. A ``[spike, trace]`` list
    input (the training output of an OTTT neuron) goes through
    :meth:`wrap` of the module: :class:`GradwithTrace` if the module has
    parameters, :class:`SpikeTraceOp` otherwise. The output of a
    :class:`GradwithTrace` is a tensor again, so the following modules (e.g.
    BatchNorm, the next neuron) get a tensor.

    :param args: the modules, in order
    """

    @staticmethod
    def wrap(module: nn.Module) -> nn.Module:
        """``GradwithTrace(module)`` if ``module`` has parameters, else ``SpikeTraceOp(module)``."""
        if any(True for _ in module.parameters()):
            return GradwithTrace(module)
        return SpikeTraceOp(module)

    def forward(self, input: torch.Tensor | list[torch.Tensor]) -> torch.Tensor | list[torch.Tensor]:
        for module in self:
            input = module(input) if not isinstance(input, list) else self.wrap(module)(input)
        return input
