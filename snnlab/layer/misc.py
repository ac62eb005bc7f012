"""Small utility layers: :class:`VotingLayer` and :class:`PrintShapeModule`."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..base import StepModule
from ..functional import seq_to_ann_forward
from ._checks import check_int, check_rank

__all__ = ["PrintShapeModule", "VotingLayer"]


class VotingLayer(nn.Module, StepModule):
    r"""Average groups of ``voting_size`` neurons into one class score.

    For input ``[..., C * voting_size]`` the output is ``[..., C]`` with

    .. math::
        y[..., c] = \frac{1}{v} \sum_{j=0}^{v-1} x[..., c v + j], \qquad v = \mathrm{voting\_size}

    (average pooling with kernel and stride ``v`` on the last dimension).
    Stateless; ``'s'``: ``[N, *, C*v]``, ``'m'``: ``[T, N, *, C*v]``.

    :param voting_size: number of neurons voting for one class, ``>= 1``
    :param step_mode: ``'s'`` or ``'m'``
    """

    def __init__(self, voting_size: int = 10, step_mode: str = "s") -> None:
        super().__init__()
        self.voting_size = check_int("voting_size", voting_size, 1)
        self.step_mode = step_mode

    def extra_repr(self) -> str:
        return f"voting_size={self.voting_size}, step_mode={self.step_mode}"

    def single_step_forward(self, x: torch.Tensor) -> torch.Tensor:
        """Pool the last dimension of ``x`` (any leading shape)."""
        if x.shape[-1] % self.voting_size != 0:
            raise ValueError(
                f"VotingLayer(voting_size={self.voting_size}) expects the last dimension of x to be a "
                f"multiple of {self.voting_size}, got shape {tuple(x.shape)}"
            )
        lead = x.shape[:-1]
        y = F.avg_pool1d(x.reshape(-1, 1, x.shape[-1]), self.voting_size, self.voting_size)
        return y.reshape(*lead, -1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.step_mode == "s":
            check_rank("x", x, range(1, 65), "[N, *, C * voting_size]", "VotingLayer", "s")
            return self.single_step_forward(x)
        check_rank("x_seq", x, range(2, 65), "[T, N, *, C * voting_size]", "VotingLayer", "m")
        return seq_to_ann_forward(x, self.single_step_forward)


class PrintShapeModule(nn.Module):
    """Identity that prints ``ext_str`` and the input's shape (for debugging).

    :param ext_str: text printed before the shape
    """

    def __init__(self, ext_str: str = "PrintShapeModule") -> None:
        super().__init__()
        if not isinstance(ext_str, str):
            raise TypeError(f"ext_str must be a str, got {type(ext_str).__name__} {ext_str!r}")
        self.ext_str = ext_str

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        print(self.ext_str, x.shape)
        return x

    def extra_repr(self) -> str:
        return f"ext_str={self.ext_str!r}"
