"""Step-mode wrappers of stateless torch layers.

Each class subclasses the torch layer of the same name (so parameters,
buffers and ``state_dict`` keys are the torch layer's) and adds a
``step_mode``:

* ``'s'``: ``y = layer(x)`` on one step ``x`` of shape ``[N, ...]``;
* ``'m'``: ``x_seq`` of shape ``[T, N, ...]`` is folded to ``[T*N, ...]``,
  ``y = layer(x_seq.flatten(0, 1))`` is unfolded to ``[T, N, ...]``
  (:func:`snnlab.functional.seq_to_ann_forward`).

Since the layers are stateless, ``'m'`` output equals stacking the ``'s'``
outputs step by step (BatchNorm: in eval mode; in training mode the batch
statistics of ``'m'`` are taken over ``T*N`` samples). An input whose number
of dimensions does not fit the step mode raises ``ValueError``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..base import StepModule
from ..functional import seq_to_ann_forward
from ._checks import check_rank

__all__ = [
    "AdaptiveAvgPool1d",
    "AdaptiveAvgPool2d",
    "AdaptiveAvgPool3d",
    "AvgPool1d",
    "AvgPool2d",
    "AvgPool3d",
    "BatchNorm1d",
    "BatchNorm2d",
    "BatchNorm3d",
    "Conv1d",
    "Conv2d",
    "Conv3d",
    "ConvTranspose1d",
    "ConvTranspose2d",
    "ConvTranspose3d",
    "Flatten",
    "GroupNorm",
    "Linear",
    "MaxPool1d",
    "MaxPool2d",
    "MaxPool3d",
    "StepModeWrapper",
    "Upsample",
]

_ANY_FROM_1 = range(1, 65)
_ANY_FROM_2 = range(2, 65)
_ANY_FROM_3 = range(3, 65)


class StepModeWrapper(StepModule):
    """Mixin giving a stateless torch layer the two step modes.

    Subclasses list it before the torch layer and set ``_s_ranks`` /
    ``_m_ranks`` (accepted numbers of input dimensions) and ``_s_shape`` /
    ``_m_shape`` (their description for error messages).
    """

    _s_ranks: Any = _ANY_FROM_1
    _s_shape: str = "[N, ...]"
    _m_ranks: Any = _ANY_FROM_2
    _m_shape: str = "[T, N, ...]"

    def ann_forward(self, x: torch.Tensor) -> Any:
        """The wrapped torch layer's own ``forward`` on ``x`` (no step logic)."""
        return super().forward(x)  # type: ignore[misc]

    def check_input(self, x: torch.Tensor) -> None:
        """Raise ``ValueError`` if ``x`` has a number of dims the step mode does not accept."""
        if self.step_mode == "s":
            check_rank("x", x, self._s_ranks, self._s_shape, type(self).__name__, "s")
        else:
            check_rank("x_seq", x, self._m_ranks, self._m_shape, type(self).__name__, "m")

    def forward(self, x: torch.Tensor) -> Any:
        """``'s'``: ``layer(x)``; ``'m'``: ``layer`` on ``x_seq`` with time folded into the batch."""
        self.check_input(x)
        if self.step_mode == "s":
            return self.ann_forward(x)
        return seq_to_ann_forward(x, self.ann_forward)

    def extra_repr(self) -> str:
        base = super().extra_repr()  # type: ignore[misc]
        return f"{base}, step_mode={self.step_mode}" if base else f"step_mode={self.step_mode}"


class _Spatial1d(StepModeWrapper):
    _s_ranks = (2, 3)
    _s_shape = "[N, C, L] (or unbatched [C, L])"
    _m_ranks = (4,)
    _m_shape = "[T, N, C, L]"


class _Spatial2d(StepModeWrapper):
    _s_ranks = (3, 4)
    _s_shape = "[N, C, H, W] (or unbatched [C, H, W])"
    _m_ranks = (5,)
    _m_shape = "[T, N, C, H, W]"


class _Spatial3d(StepModeWrapper):
    _s_ranks = (4, 5)
    _s_shape = "[N, C, D, H, W] (or unbatched [C, D, H, W])"
    _m_ranks = (6,)
    _m_shape = "[T, N, C, D, H, W]"


# ----------------------------------------------------------------------------- convolutions
class Conv1d(_Spatial1d, nn.Conv1d):
    """:class:`torch.nn.Conv1d` with ``step_mode``; ``'s'``: ``[N, C, L]``, ``'m'``: ``[T, N, C, L]``."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int],
        stride: int | tuple[int] = 1,
        padding: str | int | tuple[int] = 0,
        dilation: int | tuple[int] = 1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
        step_mode: str = "s",
    ) -> None:
        super().__init__(
            in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias, padding_mode
        )
        self.step_mode = step_mode


class Conv2d(_Spatial2d, nn.Conv2d):
    """:class:`torch.nn.Conv2d` with ``step_mode``.

    ``'s'``: ``[N, C, H, W]``, ``'m'``: ``[T, N, C, H, W]``.
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
    ) -> None:
        super().__init__(
            in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias, padding_mode
        )
        self.step_mode = step_mode


class Conv3d(_Spatial3d, nn.Conv3d):
    """:class:`torch.nn.Conv3d` with ``step_mode``.

    ``'s'``: ``[N, C, D, H, W]``, ``'m'``: ``[T, N, C, D, H, W]``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int, int],
        stride: int | tuple[int, int, int] = 1,
        padding: str | int | tuple[int, int, int] = 0,
        dilation: int | tuple[int, int, int] = 1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
        step_mode: str = "s",
    ) -> None:
        super().__init__(
            in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias, padding_mode
        )
        self.step_mode = step_mode


class ConvTranspose1d(_Spatial1d, nn.ConvTranspose1d):
    """:class:`torch.nn.ConvTranspose1d` with ``step_mode`` (``[N, C, L]`` / ``[T, N, C, L]``)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int],
        stride: int | tuple[int] = 1,
        padding: int | tuple[int] = 0,
        output_padding: int | tuple[int] = 0,
        groups: int = 1,
        bias: bool = True,
        dilation: int | tuple[int] = 1,
        padding_mode: str = "zeros",
        step_mode: str = "s",
    ) -> None:
        super().__init__(
            in_channels,
            out_channels,
            kernel_size,
            stride,
            padding,
            output_padding,
            groups,
            bias,
            dilation,
            padding_mode,
        )
        self.step_mode = step_mode


class ConvTranspose2d(_Spatial2d, nn.ConvTranspose2d):
    """:class:`torch.nn.ConvTranspose2d` with ``step_mode`` (``[N, C, H, W]`` / ``[T, N, C, H, W]``)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] = 0,
        output_padding: int | tuple[int, int] = 0,
        groups: int = 1,
        bias: bool = True,
        dilation: int = 1,
        padding_mode: str = "zeros",
        step_mode: str = "s",
    ) -> None:
        super().__init__(
            in_channels,
            out_channels,
            kernel_size,
            stride,
            padding,
            output_padding,
            groups,
            bias,
            dilation,
            padding_mode,
        )
        self.step_mode = step_mode


class ConvTranspose3d(_Spatial3d, nn.ConvTranspose3d):
    """:class:`torch.nn.ConvTranspose3d` with ``step_mode`` (``[N, C, D, H, W]`` / ``[T, N, C, D, H, W]``)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int, int],
        stride: int | tuple[int, int, int] = 1,
        padding: int | tuple[int, int, int] = 0,
        output_padding: int | tuple[int, int, int] = 0,
        groups: int = 1,
        bias: bool = True,
        dilation: int | tuple[int, int, int] = 1,
        padding_mode: str = "zeros",
        step_mode: str = "s",
    ) -> None:
        super().__init__(
            in_channels,
            out_channels,
            kernel_size,
            stride,
            padding,
            output_padding,
            groups,
            bias,
            dilation,
            padding_mode,
        )
        self.step_mode = step_mode


class Upsample(StepModeWrapper, nn.Upsample):
    """:class:`torch.nn.Upsample` with ``step_mode``; ``'s'``: ``[N, C, *spatial]`` (1 to 3 spatial dims)."""

    _s_ranks = (3, 4, 5)
    _s_shape = "[N, C, L], [N, C, H, W] or [N, C, D, H, W]"
    _m_ranks = (4, 5, 6)
    _m_shape = "[T, N, C, L], [T, N, C, H, W] or [T, N, C, D, H, W]"

    def __init__(
        self,
        size: int | tuple[int, ...] | None = None,
        scale_factor: float | tuple[float, ...] | None = None,
        mode: str = "nearest",
        align_corners: bool | None = None,
        recompute_scale_factor: bool | None = None,
        step_mode: str = "s",
    ) -> None:
        super().__init__(size, scale_factor, mode, align_corners, recompute_scale_factor)
        self.step_mode = step_mode


# ----------------------------------------------------------------------------- normalization
class BatchNorm1d(StepModeWrapper, nn.BatchNorm1d):
    """:class:`torch.nn.BatchNorm1d` with ``step_mode``.

    ``'s'``: ``[N, C]`` or ``[N, C, L]``; ``'m'``: ``[T, N, C]`` or ``[T, N, C, L]``, statistics over
    all ``T*N`` samples (and ``L``).
    """

    _s_ranks = (2, 3)
    _s_shape = "[N, C] or [N, C, L]"
    _m_ranks = (3, 4)
    _m_shape = "[T, N, C] or [T, N, C, L]"

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        step_mode: str = "s",
    ) -> None:
        super().__init__(num_features, eps, momentum, affine, track_running_stats)
        self.step_mode = step_mode


class BatchNorm2d(StepModeWrapper, nn.BatchNorm2d):
    """:class:`torch.nn.BatchNorm2d` with ``step_mode``.

    ``'s'``: ``[N, C, H, W]``, ``'m'``: ``[T, N, C, H, W]``.
    """

    _s_ranks = (4,)
    _s_shape = "[N, C, H, W]"
    _m_ranks = (5,)
    _m_shape = "[T, N, C, H, W]"

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        step_mode: str = "s",
    ) -> None:
        super().__init__(num_features, eps, momentum, affine, track_running_stats)
        self.step_mode = step_mode


class BatchNorm3d(StepModeWrapper, nn.BatchNorm3d):
    """:class:`torch.nn.BatchNorm3d` with ``step_mode``.

    ``'s'``: ``[N, C, D, H, W]``, ``'m'``: ``[T, N, C, D, H, W]``.
    """

    _s_ranks = (5,)
    _s_shape = "[N, C, D, H, W]"
    _m_ranks = (6,)
    _m_shape = "[T, N, C, D, H, W]"

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        step_mode: str = "s",
    ) -> None:
        super().__init__(num_features, eps, momentum, affine, track_running_stats)
        self.step_mode = step_mode


class GroupNorm(StepModeWrapper, nn.GroupNorm):
    """:class:`torch.nn.GroupNorm` with ``step_mode``; ``'s'``: ``[N, C, *]``, ``'m'``: ``[T, N, C, *]``."""

    _s_ranks = _ANY_FROM_2
    _s_shape = "[N, C, *]"
    _m_ranks = _ANY_FROM_3
    _m_shape = "[T, N, C, *]"

    def __init__(
        self, num_groups: int, num_channels: int, eps: float = 1e-5, affine: bool = True, step_mode: str = "s"
    ) -> None:
        super().__init__(num_groups, num_channels, eps, affine)
        self.step_mode = step_mode


# ----------------------------------------------------------------------------- pooling
class _MaxPoolWrapper(StepModeWrapper):
    """Max pooling: with ``return_indices=True`` both outputs are unfolded in ``'m'`` mode."""

    def forward(self, x: torch.Tensor) -> Any:
        if self.step_mode == "m" and getattr(self, "return_indices", False):
            self.check_input(x)
            T, N = x.shape[0], x.shape[1]
            y, idx = self.ann_forward(x.flatten(0, 1))
            return y.view(T, N, *y.shape[1:]), idx.view(T, N, *idx.shape[1:])
        return super().forward(x)


class MaxPool1d(_MaxPoolWrapper, _Spatial1d, nn.MaxPool1d):
    """:class:`torch.nn.MaxPool1d` with ``step_mode``; ``'s'``: ``[N, C, L]``, ``'m'``: ``[T, N, C, L]``."""

    def __init__(
        self,
        kernel_size: int | tuple[int],
        stride: int | tuple[int] | None = None,
        padding: int | tuple[int] = 0,
        dilation: int | tuple[int] = 1,
        return_indices: bool = False,
        ceil_mode: bool = False,
        step_mode: str = "s",
    ) -> None:
        super().__init__(kernel_size, stride, padding, dilation, return_indices, ceil_mode)
        self.step_mode = step_mode


class MaxPool2d(_MaxPoolWrapper, _Spatial2d, nn.MaxPool2d):
    """:class:`torch.nn.MaxPool2d` with ``step_mode``.

    ``'s'``: ``[N, C, H, W]``, ``'m'``: ``[T, N, C, H, W]``.
    """

    def __init__(
        self,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] | None = None,
        padding: int | tuple[int, int] = 0,
        dilation: int | tuple[int, int] = 1,
        return_indices: bool = False,
        ceil_mode: bool = False,
        step_mode: str = "s",
    ) -> None:
        super().__init__(kernel_size, stride, padding, dilation, return_indices, ceil_mode)
        self.step_mode = step_mode


class MaxPool3d(_MaxPoolWrapper, _Spatial3d, nn.MaxPool3d):
    """:class:`torch.nn.MaxPool3d` with ``step_mode``.

    ``'s'``: ``[N, C, D, H, W]``, ``'m'``: ``[T, N, C, D, H, W]``.
    """

    def __init__(
        self,
        kernel_size: int | tuple[int, int, int],
        stride: int | tuple[int, int, int] | None = None,
        padding: int | tuple[int, int, int] = 0,
        dilation: int | tuple[int, int, int] = 1,
        return_indices: bool = False,
        ceil_mode: bool = False,
        step_mode: str = "s",
    ) -> None:
        super().__init__(kernel_size, stride, padding, dilation, return_indices, ceil_mode)
        self.step_mode = step_mode


class AvgPool1d(_Spatial1d, nn.AvgPool1d):
    """:class:`torch.nn.AvgPool1d` with ``step_mode``; ``'s'``: ``[N, C, L]``, ``'m'``: ``[T, N, C, L]``."""

    def __init__(
        self,
        kernel_size: int | tuple[int],
        stride: int | tuple[int] | None = None,
        padding: int | tuple[int] = 0,
        ceil_mode: bool = False,
        count_include_pad: bool = True,
        step_mode: str = "s",
    ) -> None:
        super().__init__(kernel_size, stride, padding, ceil_mode, count_include_pad)
        self.step_mode = step_mode


class AvgPool2d(_Spatial2d, nn.AvgPool2d):
    """:class:`torch.nn.AvgPool2d` with ``step_mode``.

    ``'s'``: ``[N, C, H, W]``, ``'m'``: ``[T, N, C, H, W]``.
    """

    def __init__(
        self,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] | None = None,
        padding: int | tuple[int, int] = 0,
        ceil_mode: bool = False,
        count_include_pad: bool = True,
        divisor_override: int | None = None,
        step_mode: str = "s",
    ) -> None:
        super().__init__(kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override)
        self.step_mode = step_mode


class AvgPool3d(_Spatial3d, nn.AvgPool3d):
    """:class:`torch.nn.AvgPool3d` with ``step_mode``.

    ``'s'``: ``[N, C, D, H, W]``, ``'m'``: ``[T, N, C, D, H, W]``.
    """

    def __init__(
        self,
        kernel_size: int | tuple[int, int, int],
        stride: int | tuple[int, int, int] | None = None,
        padding: int | tuple[int, int, int] = 0,
        ceil_mode: bool = False,
        count_include_pad: bool = True,
        divisor_override: int | None = None,
        step_mode: str = "s",
    ) -> None:
        super().__init__(kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override)
        self.step_mode = step_mode


class AdaptiveAvgPool1d(_Spatial1d, nn.AdaptiveAvgPool1d):
    """:class:`torch.nn.AdaptiveAvgPool1d` with ``step_mode``.

    ``'s'``: ``[N, C, L]``, ``'m'``: ``[T, N, C, L]``.
    """

    def __init__(self, output_size: int | tuple[int], step_mode: str = "s") -> None:
        super().__init__(output_size)
        self.step_mode = step_mode


class AdaptiveAvgPool2d(_Spatial2d, nn.AdaptiveAvgPool2d):
    """:class:`torch.nn.AdaptiveAvgPool2d` with ``step_mode``.

    ``'s'``: ``[N, C, H, W]``, ``'m'``: ``[T, N, C, H, W]``.
    """

    def __init__(self, output_size: int | tuple[int | None, int | None] | None, step_mode: str = "s") -> None:
        super().__init__(output_size)
        self.step_mode = step_mode


class AdaptiveAvgPool3d(_Spatial3d, nn.AdaptiveAvgPool3d):
    """:class:`torch.nn.AdaptiveAvgPool3d` with ``step_mode``.

    ``'s'``: ``[N, C, D, H, W]``; ``'m'``: ``[T, N, C, D, H, W]``.
    """

    def __init__(
        self, output_size: int | tuple[int | None, int | None, int | None] | None, step_mode: str = "s"
    ) -> None:
        super().__init__(output_size)
        self.step_mode = step_mode


# ----------------------------------------------------------------------------- dense
class Linear(StepModeWrapper, nn.Linear):
    """:class:`torch.nn.Linear` with ``step_mode``: ``y = x W^T + b``.

    ``'s'``: ``[N, *, in_features]``; ``'m'``: ``[T, N, *, in_features]``; the output's last
    dimension is ``out_features``.
    """

    _s_ranks = _ANY_FROM_1
    _s_shape = "[N, *, in_features]"
    _m_ranks = _ANY_FROM_3
    _m_shape = "[T, N, *, in_features]"

    def __init__(self, in_features: int, out_features: int, bias: bool = True, step_mode: str = "s") -> None:
        super().__init__(in_features, out_features, bias)
        self.step_mode = step_mode


class Flatten(StepModeWrapper, nn.Flatten):
    """:class:`torch.nn.Flatten` with ``step_mode``.

    ``'s'``: ``[N, ...]`` flattened from ``start_dim`` to ``end_dim``; ``'m'``: ``[T, N, ...]``, the
    dims are counted on the folded ``[T*N, ...]`` tensor, so ``Flatten()`` maps
    ``[T, N, C, H, W]`` to ``[T, N, C*H*W]``.
    """

    _s_ranks = _ANY_FROM_1
    _s_shape = "[N, ...]"
    _m_ranks = _ANY_FROM_2
    _m_shape = "[T, N, ...]"

    def __init__(self, start_dim: int = 1, end_dim: int = -1, step_mode: str = "s") -> None:
        super().__init__(start_dim, end_dim)
        self.step_mode = step_mode
