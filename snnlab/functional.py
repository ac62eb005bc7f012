"""Whole-network helpers with SpikingJelly's semantics.

``reset_net``, ``set_step_mode``, ``set_backend`` and ``detach_net`` walk
``net.modules()``; ``multi_step_forward`` and ``seq_to_ann_forward`` run
single-step or stateless modules over a ``[T, N, ...]`` sequence.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import torch
from torch import nn

from .base import STEP_MODES, MemoryModule, StepModule

logger = logging.getLogger(__name__)

ModuleOrModules = nn.Module | Callable[[torch.Tensor], torch.Tensor] | Sequence[nn.Module]


def reset_net(net: nn.Module) -> None:
    """Call ``reset()`` on every submodule of ``net`` that has one."""
    for module in net.modules():
        if hasattr(module, "reset"):
            if not isinstance(module, MemoryModule):
                logger.debug("reset_net: %s is not a MemoryModule but has reset()", type(module).__name__)
            module.reset()


def detach_net(net: nn.Module) -> None:
    """Call ``detach()`` on every submodule of ``net`` that has one (cut state from the graph)."""
    for module in net.modules():
        if hasattr(module, "detach"):
            module.detach()


def _keeps_inner_step_mode(module: nn.Module) -> bool:
    """Containers such as ``SeqToANNContainer`` fix the step mode of the modules they hold."""
    return bool(getattr(module, "keeps_inner_step_mode", False))


def set_step_mode(net: nn.Module, step_mode: str) -> None:
    """Set ``step_mode`` of every submodule of ``net`` that has one.

    Modules inside a container whose class sets ``keeps_inner_step_mode = True``
    (``StepModeContainer``, ``SeqToANNContainer``) keep their own mode; the
    container itself is set. Raises ``ValueError`` for a mode other than
    ``'s'`` / ``'m'``.
    """
    if step_mode not in STEP_MODES:
        raise ValueError(f"step_mode must be one of {STEP_MODES}, got {step_mode!r}")
    protected: set[int] = set()
    for module in net.modules():
        if _keeps_inner_step_mode(module):
            protected.update(id(m) for m in module.modules() if m is not module)
    for module in net.modules():
        if id(module) in protected or not hasattr(module, "step_mode"):
            continue
        if not isinstance(module, StepModule):
            logger.debug("set_step_mode: %s is not a StepModule", type(module).__name__)
        module.step_mode = step_mode


def set_backend(net: nn.Module, backend: str, instance: type | tuple[type, ...] = object) -> None:
    """Set ``backend`` of every submodule of ``net`` that is an ``instance`` and supports it.

    A module that does not list ``backend`` in ``supported_backends`` keeps its
    backend and a warning names it (SpikingJelly's behaviour).
    """
    if not isinstance(backend, str):
        raise TypeError(f"backend must be a str, got {type(backend).__name__} {backend!r}")
    for module in net.modules():
        if not isinstance(module, instance) or not hasattr(module, "backend"):
            continue
        supported = getattr(module, "supported_backends", ())
        if backend in supported:
            module.backend = backend
        else:
            logger.warning(
                "set_backend: %s does not support backend=%r (supported: %s); it keeps backend=%r",
                type(module).__name__,
                backend,
                supported,
                module.backend,
            )


def _apply(module: ModuleOrModules, x: torch.Tensor) -> torch.Tensor:
    if isinstance(module, (list, tuple, nn.Sequential)):
        for m in module:
            x = m(x)
        return x
    return module(x)


def multi_step_forward(x_seq: torch.Tensor, single_step_module: ModuleOrModules) -> torch.Tensor:
    """Run a single-step module (or a list / ``nn.Sequential`` of them) over ``x_seq``.

    ``x_seq``: ``[T, N, ...]``; returns ``torch.stack([module(x_seq[t]) for t in range(T)])``.
    """
    if x_seq.dim() < 1:
        raise ValueError(f"x_seq must have a leading time dimension [T, ...], got shape {tuple(x_seq.shape)}")
    return torch.stack([_apply(single_step_module, x) for x in x_seq.unbind(0)])


def seq_to_ann_forward(x_seq: torch.Tensor, stateless_module: ModuleOrModules) -> torch.Tensor:
    """Run a stateless module on ``x_seq`` ``[T, N, ...]`` with time folded into the batch.

    ``y = module(x_seq.flatten(0, 1))`` of shape ``[T*N, ...]`` is returned as ``[T, N, ...]``.
    """
    if x_seq.dim() < 2:
        raise ValueError(
            f"x_seq must have shape [T, N, ...] (at least 2 dims), got shape {tuple(x_seq.shape)}"
        )
    T, N = x_seq.shape[0], x_seq.shape[1]
    y = _apply(stateless_module, x_seq.flatten(0, 1))
    return y.view(T, N, *y.shape[1:])
