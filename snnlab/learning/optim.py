r"""SPAIC's gradient-side helpers: optimizers and LR schedules by name, and a rate regulariser.

* :func:`make_optimizer` builds a ``torch.optim`` optimizer from one of SPAIC's
  optimizer names (``'Adam'``, ``'SGD'``, ``'Rpop'``, ...);
* :func:`make_scheduler` builds a ``torch.optim.lr_scheduler`` schedule from one
  of SPAIC's schedule names (``'StepLR'``, ``'CosineAnnealingLR'``, ...);
* :class:`RateRegularizer` is SPAIC's rate-modulation loss

  .. math:: L = \alpha \, \lVert c - c^{*} \rVert_2,

  with :math:`c` the spike count of every neuron over an episode (summed over
  time, shape ``[N, ...]``), :math:`c^{*}` the target count and the norm taken
  over all elements (batch included), as SPAIC's ``Rate_Modulate.rate_loss``.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

__all__ = [
    "LR_SCHEDULES",
    "OPTIMIZERS",
    "RateRegularizer",
    "make_optimizer",
    "make_scheduler",
]

_sched = torch.optim.lr_scheduler

#: Optimizer classes by SPAIC's names. ``'Rpop'`` is SPAIC's spelling of
#: ``Rprop``; the correct spelling ``'Rprop'`` is accepted too.
OPTIMIZERS: dict[str, type[torch.optim.Optimizer]] = {
    "Adam": torch.optim.Adam,
    "AdamW": torch.optim.AdamW,
    "SparseAdam": torch.optim.SparseAdam,
    "Adamax": torch.optim.Adamax,
    "ASGD": torch.optim.ASGD,
    "LBFGS": torch.optim.LBFGS,
    "RMSprop": torch.optim.RMSprop,
    "Rpop": torch.optim.Rprop,
    "Rprop": torch.optim.Rprop,
    "SGD": torch.optim.SGD,
    "Adadelta": torch.optim.Adadelta,
    "Adagrad": torch.optim.Adagrad,
}

#: Learning-rate schedule classes by SPAIC's names.
LR_SCHEDULES: dict[str, type] = {
    "LambdaLR": _sched.LambdaLR,
    "StepLR": _sched.StepLR,
    "MultiStepLR": _sched.MultiStepLR,
    "ExponentialLR": _sched.ExponentialLR,
    "CosineAnnealingLR": _sched.CosineAnnealingLR,
    "ReduceLROnPlateau": _sched.ReduceLROnPlateau,
    "CyclicLR": _sched.CyclicLR,
    "CosineAnnealingWarmRestarts": _sched.CosineAnnealingWarmRestarts,
}


def make_optimizer(
    name: str, params: Iterable[torch.Tensor] | Iterable[dict[str, Any]], lr: float, **kw: Any
) -> torch.optim.Optimizer:
    """Build the optimizer SPAIC calls ``name``: ``OPTIMIZERS[name](params, lr=lr, **kw)``.

    ``name`` is case-sensitive, as in SPAIC (``Learner.set_optimizer``). ``lr``
    must be a finite number ``>= 0``. Unknown ``name`` -> ``ValueError`` listing
    the known names.
    """
    if not isinstance(name, str) or name not in OPTIMIZERS:
        raise ValueError(f"name={name!r} is not a known optimizer; known: {sorted(OPTIMIZERS)}")
    if isinstance(lr, bool) or not isinstance(lr, numbers.Real):
        raise TypeError(f"lr must be a real number, got {type(lr).__name__} {lr!r}")
    if not math.isfinite(lr) or lr < 0:
        raise ValueError(f"lr must be a finite number >= 0, got {lr!r}")
    return OPTIMIZERS[name](params, lr=float(lr), **kw)


def make_scheduler(name: str, optimizer: torch.optim.Optimizer, **kw: Any) -> Any:
    """Build the LR schedule SPAIC calls ``name``: ``LR_SCHEDULES[name](optimizer, **kw)``.

    Unknown ``name`` -> ``ValueError`` listing the known names; ``optimizer``
    not a ``torch.optim.Optimizer`` -> ``TypeError``.
    """
    if not isinstance(name, str) or name not in LR_SCHEDULES:
        raise ValueError(f"name={name!r} is not a known LR schedule; known: {sorted(LR_SCHEDULES)}")
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(
            f"optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__} {optimizer!r}"
        )
    return LR_SCHEDULES[name](optimizer, **kw)


class RateRegularizer(nn.Module):
    r"""Spike-count regulariser (SPAIC's ``rate_modulate``).

    .. math:: L = \alpha \, \lVert c - c^{*} \rVert_2

    where :math:`c` is the spike count per neuron and sample over an episode and
    :math:`c^{*}` = ``target_count`` (a number, or a tensor broadcastable to the
    counts, e.g. ``[N_out]``). The norm is the Euclidean norm over all elements
    of :math:`c - c^{*}` (batch included), as in SPAIC. Two ways to use it:

    * ``loss = reg(spike_seq)`` with a whole episode ``spike_seq`` of shape
      ``[T, N, ...]`` (counts are summed over dim 0);
    * step by step: ``reg.record(spikes)`` with ``[N, ...]`` each time step, then
      ``reg.loss()`` (``None`` before anything is recorded) and ``reg.reset()``
      at the start of the next episode.

    At :math:`c = c^{*}` the loss is 0 and its gradient is taken as 0.
    """

    def __init__(self, target_count: float | torch.Tensor, alpha: float = 1e-3) -> None:
        super().__init__()
        if isinstance(target_count, torch.Tensor):
            if not torch.is_floating_point(target_count):
                target_count = target_count.to(torch.get_default_dtype())
            if not bool(torch.isfinite(target_count).all()) or bool((target_count < 0).any()):
                raise ValueError(f"target_count must be finite and >= 0, got {target_count!r}")
            target = target_count.detach().clone()
        else:
            if isinstance(target_count, bool) or not isinstance(target_count, numbers.Real):
                raise TypeError(
                    "target_count must be a real number or a tensor, got "
                    f"{type(target_count).__name__} {target_count!r}"
                )
            if not math.isfinite(target_count) or target_count < 0:
                raise ValueError(f"target_count must be a finite number >= 0, got {target_count!r}")
            target = torch.tensor(float(target_count))
        if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real):
            raise TypeError(f"alpha must be a real number, got {type(alpha).__name__} {alpha!r}")
        if not math.isfinite(alpha) or alpha < 0:
            raise ValueError(f"alpha must be a finite number >= 0, got {alpha!r}")
        self.alpha = float(alpha)
        self.register_buffer("target_count", target)
        self._count: torch.Tensor | None = None

    def extra_repr(self) -> str:
        return f"target_count={self.target_count.tolist()}, alpha={self.alpha}"

    def _norm_loss(self, count: torch.Tensor) -> torch.Tensor:
        diff = count - self.target_count.to(count)
        sq = diff.square().sum()
        # sqrt with a zero-safe gradient: d||d||/dd = d / ||d||, taken as 0 at d = 0
        safe = torch.where(sq > 0, sq, torch.ones_like(sq))
        return self.alpha * torch.where(sq > 0, safe.sqrt(), torch.zeros_like(sq))

    def forward(self, spike_seq: torch.Tensor) -> torch.Tensor:
        """``alpha * ||spike_seq.sum(0) - target_count||``; ``spike_seq`` is ``[T, N, ...]``."""
        if not isinstance(spike_seq, torch.Tensor):
            raise TypeError(f"spike_seq must be a tensor, got {type(spike_seq).__name__}")
        if spike_seq.dim() < 2:
            raise ValueError(
                f"spike_seq must have shape [T, N, ...] (at least 2 dims), got shape {tuple(spike_seq.shape)}"
            )
        return self._norm_loss(spike_seq.sum(0))

    def record(self, spikes: torch.Tensor) -> None:
        """Add one time step's spikes ``[N, ...]`` to the running count (keeps the graph)."""
        if not isinstance(spikes, torch.Tensor):
            raise TypeError(f"spikes must be a tensor, got {type(spikes).__name__}")
        if self._count is not None and self._count.shape != spikes.shape:
            raise ValueError(
                f"spikes has shape {tuple(spikes.shape)} but earlier steps had {tuple(self._count.shape)}; "
                "call reset() between episodes"
            )
        self._count = spikes if self._count is None else self._count + spikes

    @property
    def count(self) -> torch.Tensor | None:
        """The running spike count ``[N, ...]`` (``None`` before :meth:`record`)."""
        return self._count

    def loss(self) -> torch.Tensor | None:
        """``alpha * ||count - target_count||`` of the recorded steps; ``None`` if none."""
        if self._count is None:
            return None
        return self._norm_loss(self._count)

    def reset(self) -> None:
        """Forget the recorded counts (start of an episode)."""
        self._count = None
