r"""Layers with weight standardization (WS), as used in NF-ResNets and OTTT.

For each output unit ``o`` with ``fan_in`` incoming weights :math:`W_o`:

.. math::
    \hat W_o = g_o \, \frac{W_o - \mathrm{mean}(W_o)}{\sqrt{\mathrm{var}(W_o)\,\mathrm{fan\_in} + \epsilon}}

(``var`` unbiased, :math:`g_o` the learnable ``gain`` or 1). The layer then
applies :math:`\hat W` in place of ``weight``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ._checks import check_bool, check_real
from .wrappers import Conv2d, Linear

__all__ = ["WSConv2d", "WSLinear", "standardize_weight"]


def standardize_weight(weight: torch.Tensor, gain: torch.Tensor | None, eps: float) -> torch.Tensor:
    """Standardize ``weight`` ``[out, *]`` over all but the first dimension, then scale by ``gain``."""
    dims = tuple(range(1, weight.dim()))
    fan_in = weight[0].numel()
    mean = weight.mean(dim=dims, keepdim=True)
    var = weight.var(dim=dims, keepdim=True)
    w = (weight - mean) / (var * fan_in + eps).sqrt()
    return w if gain is None else w * gain


def _check_eps(eps: object) -> float:
    eps = check_real("eps", eps)
    if eps < 0:
        raise ValueError(f"eps must be >= 0, got eps={eps!r}")
    return eps


class WSConv2d(Conv2d):
    """:class:`Conv2d` with a standardized weight; ``gain`` has shape ``[out_channels, 1, 1, 1]``.

    :param gain: learn a scale per output channel
    :param eps: added to ``var * fan_in`` under the square root
    Other arguments as :class:`Conv2d`.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        padding: str | int | tuple[int, int] = 0,
        dilation: int | tuple[int, int] = 1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
        step_mode: str = "s",
        gain: bool = True,
        eps: float = 1e-4,
    ) -> None:
        super().__init__(
            in_channels,
            out_channels,
            kernel_size,
            stride,
            padding,
            dilation,
            groups,
            bias,
            padding_mode,
            step_mode,
        )
        if check_bool("gain", gain):
            self.gain = nn.Parameter(torch.ones(self.out_channels, 1, 1, 1))
        else:
            self.register_parameter("gain", None)
        self.eps = _check_eps(eps)

    def get_weight(self) -> torch.Tensor:
        """The standardized (and scaled) weight ``[out_channels, in_channels/groups, kH, kW]``."""
        return standardize_weight(self.weight, self.gain, self.eps)

    def ann_forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(x, self.get_weight(), self.bias)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, gain={self.gain is not None}, eps={self.eps}"


class WSLinear(Linear):
    """:class:`Linear` with a standardized weight; ``gain`` has shape ``[out_features, 1]``.

    :param gain: learn a scale per output feature
    :param eps: added to ``var * fan_in`` under the square root
    Other arguments as :class:`Linear`.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        step_mode: str = "s",
        gain: bool = True,
        eps: float = 1e-4,
    ) -> None:
        super().__init__(in_features, out_features, bias, step_mode)
        if check_bool("gain", gain):
            self.gain = nn.Parameter(torch.ones(self.out_features, 1))
        else:
            self.register_parameter("gain", None)
        self.eps = _check_eps(eps)

    def get_weight(self) -> torch.Tensor:
        """The standardized (and scaled) weight ``[out_features, in_features]``."""
        return standardize_weight(self.weight, self.gain, self.eps)

    def ann_forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.get_weight(), self.bias)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, gain={self.gain is not None}, eps={self.eps}"
