r"""Normalization layers designed for SNNs.

* :class:`NeuNorm` -- stateful normalization of spike maps (Wu et al. 2019);
* :class:`ThresholdDependentBatchNorm1d` / ``2d`` / ``3d`` -- tdBN
  (Zheng et al. 2021): BatchNorm over ``T*N`` samples whose scale starts at
  :math:`\alpha V_{th}`;
* :class:`TemporalEffectiveBatchNorm1d` / ``2d`` / ``3d`` -- TEBN
  (Duan et al. 2022): BatchNorm output times a learnable per-step scale
  :math:`k[t]`.

The plain step-mode BatchNorm wrappers are in :mod:`snnlab.layer.wrappers`.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from ..base import MemoryModule, MultiStepModule
from ..functional import seq_to_ann_forward
from ._checks import check_int, check_rank, check_real
from .wrappers import BatchNorm1d, BatchNorm2d, BatchNorm3d, StepModeWrapper

__all__ = [
    "NeuNorm",
    "TemporalEffectiveBatchNorm1d",
    "TemporalEffectiveBatchNorm2d",
    "TemporalEffectiveBatchNorm3d",
    "TemporalEffectiveBatchNormNd",
    "ThresholdDependentBatchNorm1d",
    "ThresholdDependentBatchNorm2d",
    "ThresholdDependentBatchNorm3d",
]


# ----------------------------------------------------------------------------- NeuNorm
class NeuNorm(MemoryModule):
    r"""NeuNorm, placed after the spiking neurons of a convolution: ``Conv2d -> LIF -> NeuNorm``.

    With input spikes :math:`S[t]` of shape ``[N, F, H, W]`` (``F = in_channels``):

    .. math::
        X[t] = k_0 X[t-1] + k_1 \sum_{c=1}^{F} S_c[t], \qquad
        y[t] = S[t] - w \odot X[t]

    where :math:`k_0 = k`, :math:`k_1 = (1 - k) / F^2` (from :math:`k + vF = 1`
    with :math:`v/F = k_1`), :math:`X[-1] = 0` of shape ``[N, 1, H, W]`` and the
    learnable ``w`` has shape ``[F, H, W]`` (``[1, H, W]`` when
    ``shared_across_channels``).

    :param in_channels: channels :math:`F` of the input
    :param height: height of the input
    :param width: width of the input
    :param k: momentum factor :math:`k_{\tau 2}`, ``0 <= k <= 1``
    :param shared_across_channels: share ``w`` over the channel dimension
    :param step_mode: ``'s'`` (``[N, F, H, W]``) or ``'m'`` (``[T, N, F, H, W]``)
    """

    def __init__(
        self,
        in_channels: int,
        height: int,
        width: int,
        k: float = 0.9,
        shared_across_channels: bool = False,
        step_mode: str = "s",
    ) -> None:
        super().__init__()
        self.in_channels = check_int("in_channels", in_channels, 1)
        check_int("height", height, 1)
        check_int("width", width, 1)
        k = check_real("k", k)
        if not 0.0 <= k <= 1.0:
            raise ValueError(f"k must satisfy 0 <= k <= 1, got {k!r}")
        self.step_mode = step_mode
        self.k0 = k
        self.k1 = (1.0 - k) / in_channels**2
        self.register_memory("x", 0.0)
        self.w = nn.Parameter(torch.empty(1 if shared_across_channels else in_channels, height, width))
        nn.init.kaiming_uniform_(self.w, a=math.sqrt(5))

    def single_step_forward(self, in_spikes: torch.Tensor) -> torch.Tensor:
        """``in_spikes``: ``[N, F, H, W]``; returns ``[N, F, H, W]``."""
        check_rank("in_spikes", in_spikes, (4,), "[N, F, H, W]", "NeuNorm", "s")
        if in_spikes.shape[1:] != (self.in_channels, *self.w.shape[1:]):
            raise ValueError(
                f"NeuNorm expects in_spikes of shape [N, {self.in_channels}, {self.w.shape[1]}, "
                f"{self.w.shape[2]}], got {tuple(in_spikes.shape)}"
            )
        self.x = self.k0 * self.x + self.k1 * in_spikes.sum(dim=1, keepdim=True)
        return in_spikes - self.w * self.x

    def multi_step_forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        """``x_seq``: ``[T, N, F, H, W]``; the single-step recursion over ``T``."""
        check_rank("x_seq", x_seq, (5,), "[T, N, F, H, W]", "NeuNorm", "m")
        return super().multi_step_forward(x_seq)

    def extra_repr(self) -> str:
        return f"shape={tuple(self.w.shape)}, k={self.k0}, step_mode={self.step_mode}"


# ----------------------------------------------------------------------------- tdBN
class _ThresholdDependentBatchNormBase(_BatchNorm, MultiStepModule):
    r"""tdBN: BatchNorm on ``x_seq`` ``[T, N, C, *]`` with statistics over ``T*N`` (and ``*``).

    .. math::
        y = \lambda \frac{x - \mu}{\sqrt{\sigma^2 + \epsilon}} + \beta,
        \qquad \lambda \text{ initialised to } \alpha V_{th}

    Multi-step only. ``affine`` must be ``True``.
    """

    _folded_ranks: tuple[int, ...] = ()
    _seq_shape: str = ""

    def __init__(self, alpha: float, v_th: float, *args: Any, **kwargs: Any) -> None:
        step_mode = kwargs.pop("step_mode", "m")
        alpha = check_real("alpha", alpha)
        v_th = check_real("v_th", v_th)
        super().__init__(*args, **kwargs)
        if not self.affine:
            raise ValueError(
                f"{type(self).__name__} needs affine=True (its weight starts at alpha * v_th), "
                f"got affine={self.affine!r}"
            )
        self.step_mode = step_mode
        self.alpha = alpha
        self.v_th = v_th
        with torch.no_grad():
            self.weight.fill_(alpha * v_th)

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() not in self._folded_ranks:
            raise ValueError(
                f"{type(self).__name__} expects x_seq with shape {self._seq_shape}, "
                f"got a folded input with shape {tuple(input.shape)}"
            )

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        ranks = tuple(r + 1 for r in self._folded_ranks)
        check_rank("x_seq", x_seq, ranks, self._seq_shape, type(self).__name__, "m")
        return seq_to_ann_forward(x_seq, super().forward)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, alpha={self.alpha}, v_th={self.v_th}, step_mode={self.step_mode}"


class ThresholdDependentBatchNorm1d(_ThresholdDependentBatchNormBase):
    """tdBN for ``x_seq`` ``[T, N, C]`` or ``[T, N, C, L]``.

    :param alpha: hyper-parameter depending on the network structure
    :param v_th: threshold of the next spiking neuron layer
    Other arguments as :class:`torch.nn.BatchNorm1d` (``num_features, eps, momentum, affine,
    track_running_stats``).
    """

    _folded_ranks = (2, 3)
    _seq_shape = "[T, N, C] or [T, N, C, L]"

    def __init__(self, alpha: float, v_th: float, *args: Any, **kwargs: Any) -> None:
        super().__init__(alpha, v_th, *args, **kwargs)


class ThresholdDependentBatchNorm2d(_ThresholdDependentBatchNormBase):
    """tdBN for ``x_seq`` ``[T, N, C, H, W]``; other arguments as :class:`torch.nn.BatchNorm2d`."""

    _folded_ranks = (4,)
    _seq_shape = "[T, N, C, H, W]"

    def __init__(self, alpha: float, v_th: float, *args: Any, **kwargs: Any) -> None:
        super().__init__(alpha, v_th, *args, **kwargs)


class ThresholdDependentBatchNorm3d(_ThresholdDependentBatchNormBase):
    """tdBN for ``x_seq`` ``[T, N, C, D, H, W]``; other arguments as :class:`torch.nn.BatchNorm3d`."""

    _folded_ranks = (5,)
    _seq_shape = "[T, N, C, D, H, W]"

    def __init__(self, alpha: float, v_th: float, *args: Any, **kwargs: Any) -> None:
        super().__init__(alpha, v_th, *args, **kwargs)


# ----------------------------------------------------------------------------- TEBN
class TemporalEffectiveBatchNormNd(MemoryModule):
    r"""TEBN: ``y[t] = k[t] * BN(x)[t]`` with a learnable scale ``k`` of shape ``[T]`` (``self.scale``).

    * ``'m'``: ``x_seq`` ``[T, N, C, *]``, BN statistics over ``T*N`` samples,
      ``y_seq = BN(x_seq) * k.view(T, 1, ..., 1)``; ``x_seq.shape[0]`` must be ``T``.
    * ``'s'``: ``x`` ``[N, C, *]``, BN statistics over ``N``,
      ``y = BN(x) * k[t]`` where the step index ``t`` (memory) advances by one per
      call and wraps at ``T``; :meth:`reset` sets it back to 0.

    ``bn_instance`` is the BatchNorm class held as ``self.bn``.
    """

    bn_instance: type[StepModeWrapper] = BatchNorm2d

    def __init__(
        self,
        T: int,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        step_mode: str = "s",
    ) -> None:
        super().__init__()
        self.T = check_int("T", T, 1)
        self.step_mode = step_mode
        self.bn = self.bn_instance(num_features, eps, momentum, affine, track_running_stats, step_mode="s")
        self.scale = nn.Parameter(torch.ones(T))
        self.register_memory("t", 0)

    def _scale_view(self, y: torch.Tensor) -> torch.Tensor:
        return self.scale.view(-1, *([1] * (y.dim() - 1)))

    def single_step_forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``[N, C, *]``; returns ``BN(x) * scale[t]`` and advances ``t`` modulo ``T``."""
        check_rank("x", x, self.bn._s_ranks, self.bn._s_shape, type(self).__name__, "s")
        y = self.bn.ann_forward(x) * self.scale[self.t]
        self.t = (self.t + 1) % self.T
        return y

    def multi_step_forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        """``x_seq``: ``[T, N, C, *]``; returns ``BN(x_seq) * scale.view(T, 1, ..., 1)``."""
        check_rank("x_seq", x_seq, self.bn._m_ranks, self.bn._m_shape, type(self).__name__, "m")
        if x_seq.shape[0] != self.T:
            raise ValueError(
                f"{type(self).__name__} was built for T={self.T} steps, got x_seq with "
                f"{x_seq.shape[0]} steps (shape {tuple(x_seq.shape)})"
            )
        y_seq = seq_to_ann_forward(x_seq, self.bn.ann_forward)
        return y_seq * self._scale_view(y_seq)

    def extra_repr(self) -> str:
        return f"T={self.T}, step_mode={self.step_mode}"


class TemporalEffectiveBatchNorm1d(TemporalEffectiveBatchNormNd):
    """TEBN over :class:`BatchNorm1d`.

    ``'s'``: ``[N, C]`` or ``[N, C, L]``; ``'m'``: ``[T, N, C]`` or ``[T, N, C, L]``.

    :param T: number of time steps. Other arguments as :class:`BatchNorm1d`.
    """

    bn_instance = BatchNorm1d

    def __init__(
        self,
        T: int,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        step_mode: str = "s",
    ) -> None:
        super().__init__(T, num_features, eps, momentum, affine, track_running_stats, step_mode)


class TemporalEffectiveBatchNorm2d(TemporalEffectiveBatchNormNd):
    """TEBN over :class:`BatchNorm2d`: ``'s'`` ``[N, C, H, W]``, ``'m'`` ``[T, N, C, H, W]``.

    :param T: number of time steps. Other arguments as :class:`BatchNorm2d`.
    """

    bn_instance = BatchNorm2d

    def __init__(
        self,
        T: int,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        step_mode: str = "s",
    ) -> None:
        super().__init__(T, num_features, eps, momentum, affine, track_running_stats, step_mode)


class TemporalEffectiveBatchNorm3d(TemporalEffectiveBatchNormNd):
    """TEBN over :class:`BatchNorm3d`: ``'s'`` ``[N, C, D, H, W]``, ``'m'`` ``[T, N, C, D, H, W]``.

    :param T: number of time steps. Other arguments as :class:`BatchNorm3d`.
    """

    bn_instance = BatchNorm3d

    def __init__(
        self,
        T: int,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        step_mode: str = "s",
    ) -> None:
        super().__init__(T, num_features, eps, momentum, affine, track_running_stats, step_mode)
