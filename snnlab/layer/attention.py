r"""Attention layers for multi-step SNNs (input ``[T, N, ...]``, ``step_mode='m'`` only).

* :class:`TemporalWiseAttention` (TA-SNN, Yao et al. 2021): one weight per
  time step and sample;
* :class:`MultiDimensionalAttention` (MA-SNN, Yao et al. 2023): temporal,
  channel and spatial attention in sequence.
"""

from __future__ import annotations

import torch
from torch import nn

from ..base import MultiStepModule
from ._checks import check_int, check_rank

__all__ = ["MultiDimensionalAttention", "TemporalWiseAttention"]


def _squeeze_mlp(channels: int, reduction: int, conv: bool) -> nn.Sequential:
    hidden = channels // reduction
    if conv:
        return nn.Sequential(
            nn.Conv3d(channels, hidden, 1, bias=False), nn.ReLU(), nn.Conv3d(hidden, channels, 1, bias=False)
        )
    return nn.Sequential(
        nn.Linear(channels, hidden, bias=False), nn.ReLU(), nn.Linear(hidden, channels, bias=False)
    )


class TemporalWiseAttention(nn.Module, MultiStepModule):
    r"""Temporal-wise attention, placed as ``Conv2d -> TemporalWiseAttention -> LIF``.

    For ``x_seq`` ``[T, N, C, H, W]`` (``dimension=4``) or ``[T, N, L]``
    (``dimension=2``), with per-sample, per-step averages and maxima
    :math:`a_n[t] = \mathrm{mean}(x_n[t])`, :math:`m_n[t] = \max(x_n[t])`:

    .. math::
        s_n = \sigma\big(\mathrm{MLP}(a_n) + \mathrm{MLP}(m_n)\big) \in (0, 1)^T, \qquad
        y_n[t] = s_n[t] \, x_n[t]

    where ``MLP`` (``self.sharedMLP``) is ``Linear(T, T // reduction) -> ReLU ->
    Linear(T // reduction, T)`` without biases. Output shape = input shape.

    :param T: number of time steps of the input
    :param reduction: reduction ratio :math:`r`, ``1 <= reduction <= T``
    :param dimension: 4 for ``[T, N, C, H, W]`` input, 2 for ``[T, N, L]``
    """

    def __init__(self, T: int, reduction: int = 16, dimension: int = 4) -> None:
        super().__init__()
        self.T = check_int("T", T, 1)
        reduction = check_int("reduction", reduction, 1)
        if T < reduction:
            raise ValueError(f"T must be >= reduction, got T={T!r} and reduction={reduction!r}")
        if dimension not in (2, 4) or isinstance(dimension, bool):
            raise ValueError(f"dimension must be 2 ([T, N, L]) or 4 ([T, N, C, H, W]), got {dimension!r}")
        self.reduction = reduction
        self.dimension = dimension
        self.step_mode = "m"
        self.sharedMLP = _squeeze_mlp(T, reduction, conv=False)

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        """``x_seq``: ``[T, N, C, H, W]`` or ``[T, N, L]``; returns the same shape."""
        shape = "[T, N, C, H, W]" if self.dimension == 4 else "[T, N, L]"
        check_rank("x_seq", x_seq, (self.dimension + 1,), shape, "TemporalWiseAttention", "m")
        if x_seq.shape[0] != self.T:
            raise ValueError(
                f"TemporalWiseAttention was built for T={self.T}, got x_seq with {x_seq.shape[0]} steps"
            )
        flat = x_seq.transpose(0, 1).flatten(2)  # [N, T, features]
        scores = torch.sigmoid(self.sharedMLP(flat.mean(dim=2)) + self.sharedMLP(flat.amax(dim=2)))  # [N, T]
        return x_seq * scores.t().reshape(self.T, -1, *([1] * (x_seq.dim() - 2)))

    def extra_repr(self) -> str:
        return (
            f"T={self.T}, reduction={self.reduction}, dimension={self.dimension}, step_mode={self.step_mode}"
        )


class _TimeAttention(nn.Module):
    """``[N, T, C, H, W]`` -> weights ``[N, T, 1, 1, 1]`` from pooled per-step values."""

    def __init__(self, T: int, reduction: int) -> None:
        super().__init__()
        self.sharedMLP = _squeeze_mlp(T, reduction, conv=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        avg = x.mean(dim=(2, 3, 4), keepdim=True)
        mx = x.amax(dim=(2, 3, 4), keepdim=True)
        return torch.sigmoid(self.sharedMLP(avg) + self.sharedMLP(mx))


class _ChannelAttention(nn.Module):
    """``[N, T, C, H, W]`` -> weights ``[N, 1, C, 1, 1]`` from pooled per-channel values."""

    def __init__(self, C: int, reduction: int) -> None:
        super().__init__()
        self.sharedMLP = _squeeze_mlp(C, reduction, conv=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.transpose(1, 2)  # [N, C, T, H, W]
        avg = x.mean(dim=(2, 3, 4), keepdim=True)
        mx = x.amax(dim=(2, 3, 4), keepdim=True)
        return torch.sigmoid(self.sharedMLP(avg) + self.sharedMLP(mx)).transpose(1, 2)


class _SpatialAttention(nn.Module):
    """``[N, T, C, H, W]`` -> weights ``[N, 1, 1, H, W]`` from a conv over mean and max of ``T*C`` maps."""

    def __init__(self, kernel_size: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        maps = x.flatten(1, 2)  # [N, T*C, H, W]
        pooled = torch.cat((maps.mean(dim=1, keepdim=True), maps.amax(dim=1, keepdim=True)), dim=1)
        return torch.sigmoid(self.conv(pooled)).unsqueeze(1)


class MultiDimensionalAttention(nn.Module, MultiStepModule):
    r"""Multi-dimensional attention of MA-SNN on ``x_seq`` ``[T, N, C, H, W]``.

    With ``x`` the input as ``[N, T, C, H, W]``:

    .. math::
        u = A_t(x) \odot x, \quad v = A_c(u) \odot u, \quad w = A_s(v) \odot v, \quad
        y = \mathrm{ReLU}(w)

    * :math:`A_t` (``self.ta``): :math:`\sigma(\mathrm{MLP}_T(\mathrm{avg}) + \mathrm{MLP}_T(\max))`
      over ``(C, H, W)`` per step, shape ``[N, T, 1, 1, 1]``;
    * :math:`A_c` (``self.ca``): the same over ``(T, H, W)`` per channel, ``[N, 1, C, 1, 1]``;
    * :math:`A_s` (``self.sa``): :math:`\sigma(\mathrm{conv}_{k \times k}([\mathrm{mean}, \max]))`
      over the ``T*C`` maps, ``[N, 1, 1, H, W]``.

    The MLPs are 1x1x1 ``Conv3d`` layers ``n -> n // r -> n`` without bias.
    Output ``[T, N, C, H, W]``.

    :param T: number of time steps, ``T >= reduction_t``
    :param C: number of channels, ``C >= reduction_c``
    :param reduction_t: temporal reduction ratio
    :param reduction_c: channel reduction ratio
    :param kernel_size: spatial attention kernel, 3 or 7
    """

    def __init__(
        self, T: int, C: int, reduction_t: int = 16, reduction_c: int = 16, kernel_size: int = 3
    ) -> None:
        super().__init__()
        self.T = check_int("T", T, 1)
        self.C = check_int("C", C, 1)
        reduction_t = check_int("reduction_t", reduction_t, 1)
        reduction_c = check_int("reduction_c", reduction_c, 1)
        if T < reduction_t:
            raise ValueError(f"T must be >= reduction_t, got T={T!r} and reduction_t={reduction_t!r}")
        if C < reduction_c:
            raise ValueError(f"C must be >= reduction_c, got C={C!r} and reduction_c={reduction_c!r}")
        if kernel_size not in (3, 7) or isinstance(kernel_size, bool):
            raise ValueError(f"kernel_size must be 3 or 7, got {kernel_size!r}")
        self.step_mode = "m"
        self.ta = _TimeAttention(T, reduction_t)
        self.ca = _ChannelAttention(C, reduction_c)
        self.sa = _SpatialAttention(kernel_size)

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        """``x_seq``: ``[T, N, C, H, W]``; returns the same shape."""
        check_rank("x_seq", x_seq, (5,), "[T, N, C, H, W]", "MultiDimensionalAttention", "m")
        if x_seq.shape[0] != self.T or x_seq.shape[2] != self.C:
            raise ValueError(
                f"MultiDimensionalAttention was built for T={self.T}, C={self.C}, got x_seq with shape "
                f"{tuple(x_seq.shape)}"
            )
        x = x_seq.transpose(0, 1)
        x = self.ta(x) * x
        x = self.ca(x) * x
        x = self.sa(x) * x
        return torch.relu(x).transpose(0, 1)

    def extra_repr(self) -> str:
        return f"T={self.T}, C={self.C}, step_mode={self.step_mode}"
