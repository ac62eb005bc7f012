r"""Neuron modules over the fused kernels (reference 003 ``BaseNode`` ... ``MultiStepIFNode``).

``LIFNode`` / ``IFNode`` take one time step ``dv`` ``[N, ...]`` per call;
``MultiStepLIFNode`` / ``MultiStepIFNode`` take a sequence ``dv_seq``
``[T, N, ...]`` and return ``[T, N, ...]``. In training mode the autograd
Functions (:class:`~snnlab.kernels.LIFStep`, ...) give surrogate gradients; in
eval mode the forward-only kernels run. The membrane potential ``v`` is a float
(the reset value) until the first call, then a tensor ``[N, ...]`` that
:meth:`BaseNode.reset` turns back into the float. ``v_reset=None`` selects the
soft reset (``v`` starts at 0). Equations: :mod:`snnlab.kernels.core`,
:mod:`snnlab.kernels.lif`.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from . import checks
from .functions import IFMultiStep, IFStep, LIFMultiStep, LIFStep
from .integrate_fire import (
    IF_hard_reset_forward,
    IF_hard_reset_fptt,
    IF_soft_reset_forward,
    IF_soft_reset_fptt,
)
from .lif import LIF_hard_reset_forward, LIF_hard_reset_fptt, LIF_soft_reset_forward, LIF_soft_reset_fptt

__all__ = ["BaseNode", "IFNode", "LIFNode", "MultiStepIFNode", "MultiStepLIFNode", "surrogate_function_dict"]

#: Surrogate name -> ``grad_surrogate_function_index`` understood by the kernels.
surrogate_function_dict: dict[str, int] = {name: i for i, name in enumerate(checks.SURROGATE_NAMES)}


class BaseNode(nn.Module):
    """Common state and parameters of the fused-kernel neurons.

    Parameters are validated on construction and on assignment:
    ``v_threshold`` finite and above ``v_reset`` (a finite number, or ``None``
    for soft reset); ``surrogate_function`` one of ``'ATan'``, ``'Sigmoid'``;
    ``alpha`` finite and > 0; ``detach_reset`` a bool.
    """

    def __init__(
        self,
        v_threshold: float = 1.0,
        v_reset: float | None = 0.0,
        surrogate_function: str = "ATan",
        alpha: float = 2.0,
        detach_reset: bool = False,
    ) -> None:
        super().__init__()
        self._v_threshold, self._v_reset = checks.threshold_and_reset(v_threshold, v_reset)
        self.surrogate_function = surrogate_function
        self.alpha = alpha
        self.detach_reset = detach_reset
        self.reset()

    # ------------------------------------------------------------------ parameters
    @property
    def v_threshold(self) -> float:
        return self._v_threshold

    @v_threshold.setter
    def v_threshold(self, value: float) -> None:
        self._v_threshold, _ = checks.threshold_and_reset(value, self._v_reset)

    @property
    def v_reset(self) -> float | None:
        return self._v_reset

    @v_reset.setter
    def v_reset(self, value: float | None) -> None:
        _, self._v_reset = checks.threshold_and_reset(self._v_threshold, value)

    @property
    def surrogate_function(self) -> str:
        return self._surrogate_function

    @surrogate_function.setter
    def surrogate_function(self, value: str) -> None:
        self._grad_surrogate_function_index = checks.surrogate_name(value)
        self._surrogate_function = value

    @property
    def grad_surrogate_function_index(self) -> int:
        """Kernel index of :attr:`surrogate_function` (0 = ATan, 1 = Sigmoid)."""
        return self._grad_surrogate_function_index

    @property
    def alpha(self) -> float:
        return self._alpha

    @alpha.setter
    def alpha(self, value: float) -> None:
        self._alpha = checks.positive("alpha", value)

    @property
    def detach_reset(self) -> bool:
        return self._detach_reset

    @detach_reset.setter
    def detach_reset(self, value: bool) -> None:
        self._detach_reset = checks.flag("detach_reset", value)

    # ------------------------------------------------------------------ state
    def reset(self) -> None:
        """``v`` back to the reset value (``v_reset``, or 0.0 for soft reset) as a float."""
        self.v = 0.0 if self._v_reset is None else self._v_reset

    def detach(self) -> None:
        """Cut ``v`` from the autograd graph (truncated BPTT)."""
        if isinstance(self.v, torch.Tensor):
            self.v = self.v.detach()

    def _state_like(self, x: torch.Tensor, name: str) -> torch.Tensor:
        """``v`` as a tensor shaped like ``x`` (``[N, ...]``), created from the float on first use."""
        checks.float_tensor(name, x)
        if not isinstance(self.v, torch.Tensor):
            self.v = torch.full_like(x, float(self.v), requires_grad=False)
        elif self.v.shape != x.shape:
            raise ValueError(
                f"{name} has per-step shape {tuple(x.shape)} but the membrane potential v has shape "
                f"{tuple(self.v.shape)}; call reset() before feeding inputs of another shape"
            )
        return self.v

    def extra_repr(self) -> str:
        return (
            f"v_threshold={self.v_threshold}, v_reset={self.v_reset}, detach_reset={self.detach_reset}, "
            f"surrogate_function={self.surrogate_function}, alpha={self.alpha}"
        )


class LIFNode(BaseNode):
    r"""Single-step LIF neuron: ``spike = node(dv)`` with ``dv``, ``spike`` ``[N, ...]``.

    :math:`H_t = V_{t-1} + \frac{1}{\tau}(X_t - (V_{t-1} - V_{reset}))`, or with
    ``detach_input=True`` :math:`H_t = V_{t-1} + X_t + \frac{1}{\tau}(V_{reset} - V_{t-1})`;
    ``tau`` finite and > 1. Stores ``reciprocal_tau`` = :math:`1/\tau`.
    """

    def __init__(
        self,
        tau: float = 100.0,
        detach_input: bool = False,
        v_threshold: float = 1.0,
        v_reset: float | None = 0.0,
        surrogate_function: str = "ATan",
        alpha: float = 2.0,
        detach_reset: bool = False,
    ) -> None:
        super().__init__(v_threshold, v_reset, surrogate_function, alpha, detach_reset)
        self.tau = tau
        self.detach_input = detach_input

    @property
    def tau(self) -> float:
        return 1.0 / self.reciprocal_tau

    @tau.setter
    def tau(self, value: float) -> None:
        self.reciprocal_tau = 1.0 / checks.tau(value)

    @property
    def reciprocal_tau(self) -> float:
        return self._reciprocal_tau

    @reciprocal_tau.setter
    def reciprocal_tau(self, value: float) -> None:
        self._reciprocal_tau = checks.reciprocal_tau(value, allow_one=False)

    @property
    def detach_input(self) -> bool:
        return self._detach_input

    @detach_input.setter
    def detach_input(self, value: bool) -> None:
        self._detach_input = checks.flag("detach_input", value)

    def _args(self) -> tuple[Any, ...]:
        return (
            self.v_threshold,
            self.v_reset,
            self.alpha,
            self.detach_reset,
            self.grad_surrogate_function_index,
            self.reciprocal_tau,
            self.detach_input,
        )

    def forward(self, dv: torch.Tensor) -> torch.Tensor:
        v = self._state_like(dv, "dv")
        if self.training:
            spike, self.v = LIFStep.apply(dv, v, *self._args())
        elif self.v_reset is None:
            spike, self.v = LIF_soft_reset_forward(
                dv, v, self.v_threshold, self.reciprocal_tau, self.detach_input
            )
        else:
            spike, self.v = LIF_hard_reset_forward(
                dv, v, self.v_threshold, self.v_reset, self.reciprocal_tau, self.detach_input
            )
        return spike

    def extra_repr(self) -> str:
        return super().extra_repr() + f", tau={self.tau}, detach_input={self.detach_input}"


class MultiStepLIFNode(LIFNode):
    """Multi-step LIF neuron: ``spike_seq = node(dv_seq)``, ``[T, N, ...]`` in and out.

    After a call ``v`` holds :math:`V_{T-1}` ``[N, ...]``.
    """

    def forward(self, dv_seq: torch.Tensor) -> torch.Tensor:
        dv_seq = checks.sequence("dv_seq", dv_seq)
        v = self._state_like(dv_seq[0], "dv_seq[t]")
        if self.training:
            spike_seq, self.v = LIFMultiStep.apply(dv_seq, v, *self._args())
        elif self.v_reset is None:
            spike_seq, self.v = LIF_soft_reset_fptt(
                dv_seq, v, self.v_threshold, self.reciprocal_tau, self.detach_input
            )
        else:
            spike_seq, self.v = LIF_hard_reset_fptt(
                dv_seq, v, self.v_threshold, self.v_reset, self.reciprocal_tau, self.detach_input
            )
        return spike_seq


class IFNode(BaseNode):
    r"""Single-step IF neuron: :math:`H_t = V_{t-1} + X_t`; ``spike = node(dv)``, ``[N, ...]``."""

    def __init__(
        self,
        v_threshold: float = 1.0,
        v_reset: float | None = 0.0,
        surrogate_function: str = "ATan",
        alpha: float = 2.0,
        detach_reset: bool = False,
    ) -> None:
        super().__init__(v_threshold, v_reset, surrogate_function, alpha, detach_reset)

    def _args(self) -> tuple[Any, ...]:
        return (
            self.v_threshold,
            self.v_reset,
            self.alpha,
            self.detach_reset,
            self.grad_surrogate_function_index,
        )

    def forward(self, dv: torch.Tensor) -> torch.Tensor:
        v = self._state_like(dv, "dv")
        if self.training:
            spike, self.v = IFStep.apply(dv, v, *self._args())
        elif self.v_reset is None:
            spike, self.v = IF_soft_reset_forward(dv, v, self.v_threshold)
        else:
            spike, self.v = IF_hard_reset_forward(dv, v, self.v_threshold, self.v_reset)
        return spike


class MultiStepIFNode(IFNode):
    """Multi-step IF neuron: ``spike_seq = node(dv_seq)``, ``[T, N, ...]`` in and out.

    After a call ``v`` holds :math:`V_{T-1}` ``[N, ...]``.
    """

    def forward(self, dv_seq: torch.Tensor) -> torch.Tensor:
        dv_seq = checks.sequence("dv_seq", dv_seq)
        v = self._state_like(dv_seq[0], "dv_seq[t]")
        if self.training:
            spike_seq, self.v = IFMultiStep.apply(dv_seq, v, *self._args())
        elif self.v_reset is None:
            spike_seq, self.v = IF_soft_reset_fptt(dv_seq, v, self.v_threshold)
        else:
            spike_seq, self.v = IF_hard_reset_fptt(dv_seq, v, self.v_threshold, self.v_reset)
        return spike_seq
