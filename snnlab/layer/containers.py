"""Containers that run single-step modules over a sequence.

* :class:`MultiStepContainer`: ``y[t] = f(x[t])`` step by step (for stateful
  single-step modules);
* :class:`SeqToANNContainer`: ``y = f(x.flatten(0, 1))`` unfolded to
  ``[T, N, ...]`` (for stateless modules, one call for the whole sequence);
* :class:`StepModeContainer`: either of the two in ``'m'`` mode (chosen by
  ``stateful``), plain ``nn.Sequential`` in ``'s'`` mode.

The modules inside keep their own single-step mode:
:func:`snnlab.functional.set_step_mode` sets the container but not its
children (class attribute ``keeps_inner_step_mode = True``).
"""

from __future__ import annotations

import logging

import torch
from torch import nn

from ..base import MultiStepModule, StepModule
from ..functional import multi_step_forward, seq_to_ann_forward
from ._checks import check_bool, check_rank

__all__ = ["MultiStepContainer", "SeqToANNContainer", "StepModeContainer"]

logger = logging.getLogger(__name__)

_SEQ_RANKS = range(2, 65)


def _check_children_single_step(container: nn.Sequential) -> None:
    """Every child that has a ``step_mode`` must be in ``'s'`` mode."""
    for index, module in enumerate(container):
        mode = getattr(module, "step_mode", "s")
        if mode != "s":
            raise ValueError(
                f"{type(container).__name__} runs its modules one step at a time, so module "
                f"[{index}] {type(module).__name__} must have step_mode='s', got step_mode={mode!r}"
            )
        if isinstance(module, StepModule) and "m" in module.supported_step_mode():
            logger.debug(
                "%s holds %s, which also supports step_mode='m'",
                type(container).__name__,
                type(module).__name__,
            )


class MultiStepContainer(nn.Sequential, MultiStepModule):
    """Run single-step modules over ``x_seq`` step by step.

    ``x_seq``: ``[T, N, ...]``; returns ``y_seq`` ``[T, N, ...]`` with
    ``y_seq[t] = modules(x_seq[t])``. Use it for stateful modules (neurons).
    """

    keeps_inner_step_mode = True

    def __init__(self, *args: nn.Module) -> None:
        super().__init__(*args)
        _check_children_single_step(self)
        self.step_mode = "m"

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        check_rank("x_seq", x_seq, _SEQ_RANKS, "[T, N, ...]", type(self).__name__, "m")
        return multi_step_forward(x_seq, super().forward)

    def extra_repr(self) -> str:
        return f"step_mode={self.step_mode}"


class SeqToANNContainer(nn.Sequential, MultiStepModule):
    """Run stateless modules once on ``x_seq`` with time folded into the batch.

    ``x_seq``: ``[T, N, ...]``; ``y = modules(x_seq.flatten(0, 1))`` of shape
    ``[T*N, ...]`` is returned as ``[T, N, ...]``.
    """

    keeps_inner_step_mode = True

    def __init__(self, *args: nn.Module) -> None:
        super().__init__(*args)
        _check_children_single_step(self)
        self.step_mode = "m"

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        check_rank("x_seq", x_seq, _SEQ_RANKS, "[T, N, ...]", type(self).__name__, "m")
        return seq_to_ann_forward(x_seq, super().forward)

    def extra_repr(self) -> str:
        return f"step_mode={self.step_mode}"


class StepModeContainer(nn.Sequential, StepModule):
    """``nn.Sequential`` of single-step modules that supports both step modes.

    ``'s'``: ``y = modules(x)`` on ``[N, ...]``. ``'m'`` on ``[T, N, ...]``: if
    ``stateful`` the modules run step by step (as :class:`MultiStepContainer`),
    otherwise once with time folded into the batch (as
    :class:`SeqToANNContainer`).

    :param stateful: whether the contained modules carry state across steps
    :param args: the modules, in order (each in ``step_mode='s'``)
    """

    keeps_inner_step_mode = True

    def __init__(self, stateful: bool, *args: nn.Module) -> None:
        super().__init__(*args)
        self.stateful = check_bool("stateful", stateful)
        _check_children_single_step(self)
        self.step_mode = "s"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.step_mode == "s":
            return super().forward(x)
        check_rank("x_seq", x, _SEQ_RANKS, "[T, N, ...]", type(self).__name__, "m")
        if self.stateful:
            return multi_step_forward(x, super().forward)
        return seq_to_ann_forward(x, super().forward)

    def extra_repr(self) -> str:
        return f"stateful={self.stateful}, step_mode={self.step_mode}"
