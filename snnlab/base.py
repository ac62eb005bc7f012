"""Step modes and stateful modules.

Every snnlab module runs in one of two *step modes*, as in SpikingJelly:

* ``'s'`` (single-step): the input is one time step, shape ``[N, ...]``;
* ``'m'`` (multi-step): the input is a whole sequence, shape ``[T, N, ...]``.

:class:`MemoryModule` is the base of everything that carries state across
time steps (membrane potentials, traces, ...). State variables are declared
with :meth:`MemoryModule.register_memory`; :meth:`MemoryModule.reset` puts
them back to the value they were declared with.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

STEP_MODES: tuple[str, ...] = ("s", "m")


class StepModule:
    """A module that supports one or more step modes.

    ``step_mode`` is validated on assignment: a value outside
    :meth:`supported_step_mode` raises ``ValueError``.
    """

    def supported_step_mode(self) -> tuple[str, ...]:
        """The step modes this module can run in."""
        return STEP_MODES

    @property
    def step_mode(self) -> str:
        """``'s'`` for single-step input ``[N, ...]``, ``'m'`` for multi-step ``[T, N, ...]``."""
        return self._step_mode

    @step_mode.setter
    def step_mode(self, value: str) -> None:
        supported = self.supported_step_mode()
        if not isinstance(value, str) or value not in supported:
            raise ValueError(
                f"step_mode must be one of {supported} for {type(self).__name__}, got {value!r}"
            )
        self._step_mode = value


class SingleStepModule(StepModule):
    """A module that only runs in single-step mode ``'s'``."""

    def supported_step_mode(self) -> tuple[str, ...]:
        return ("s",)


class MultiStepModule(StepModule):
    """A module that only runs in multi-step mode ``'m'`` (input ``[T, N, ...]``)."""

    def supported_step_mode(self) -> tuple[str, ...]:
        return ("m",)


class MemoryModule(nn.Module, StepModule):
    """Base class of stateful modules (neurons, stateful layers).

    State is registered with :meth:`register_memory` and read and written as
    a plain attribute (``self.v``). :meth:`forward` dispatches on
    ``step_mode`` to :meth:`single_step_forward` (``[N, ...]``) or
    :meth:`multi_step_forward` (``[T, N, ...]``); the default multi-step
    forward loops the single-step one over ``T`` and stacks the outputs.

    Memories are not parameters or buffers: they are not in ``state_dict``,
    but ``module.to(...)`` / ``.double()`` move tensor memories along.
    """

    def __init__(self) -> None:
        super().__init__()
        self._memories: dict[str, Any] = {}
        self._memories_rv: dict[str, Any] = {}
        self._backend = "torch"
        self.step_mode = "s"

    # ------------------------------------------------------------------ backend
    @property
    def supported_backends(self) -> tuple[str, ...]:
        """Names accepted by :attr:`backend`."""
        return ("torch",)

    @property
    def backend(self) -> str:
        """The implementation used by :meth:`forward` (``'torch'`` is the reference)."""
        return self._backend

    @backend.setter
    def backend(self, value: str) -> None:
        if value not in self.supported_backends:
            raise ValueError(
                f"backend must be one of {self.supported_backends} for {type(self).__name__}, "
                f"got {value!r}"
            )
        self._backend = value

    # ------------------------------------------------------------------ forward
    def single_step_forward(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        """One time step: ``x`` has shape ``[N, ...]``."""
        raise NotImplementedError(f"{type(self).__name__} does not implement single_step_forward")

    def multi_step_forward(self, x_seq: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        """``T`` time steps: ``x_seq`` has shape ``[T, N, ...]``; returns ``[T, N, ...]``.

        ``y[t] = single_step_forward(x_seq[t])`` for ``t = 0 .. T-1``.
        """
        return torch.stack([self.single_step_forward(x, *args, **kwargs) for x in x_seq.unbind(0)])

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        if self.step_mode == "s":
            return self.single_step_forward(*args, **kwargs)
        return self.multi_step_forward(*args, **kwargs)

    def extra_repr(self) -> str:
        return f"step_mode={self.step_mode}, backend={self.backend}"

    # ------------------------------------------------------------------ memories
    def register_memory(self, name: str, value: Any) -> None:
        """Declare the state variable ``name`` with initial (and reset) value ``value``.

        Raises ``ValueError`` if ``name`` is already an attribute of the module.
        """
        if not isinstance(name, str) or not name.isidentifier():
            raise ValueError(f"memory name must be a Python identifier, got {name!r}")
        if name in self._memories or hasattr(self, name):
            raise ValueError(f"name={name!r} is already an attribute of {type(self).__name__}")
        self._memories[name] = value
        self.set_reset_value(name, value)

    def set_reset_value(self, name: str, value: Any) -> None:
        """Set the value that :meth:`reset` gives the memory ``name``."""
        self._memories_rv[name] = copy.deepcopy(value)

    def reset(self) -> None:
        """Restore every memory to its reset value."""
        for name, value in self._memories_rv.items():
            self._memories[name] = copy.deepcopy(value)

    def detach(self) -> None:
        """Cut every tensor memory from the autograd graph (truncated BPTT), in place."""
        for name, value in self._memories.items():
            if isinstance(value, torch.Tensor):
                self._memories[name] = value.detach()

    def memories(self) -> Iterator[Any]:
        """Iterate over the current values of the memories."""
        yield from self._memories.values()

    def named_memories(self) -> Iterator[tuple[str, Any]]:
        """Iterate over ``(name, value)`` pairs of the memories."""
        yield from self._memories.items()

    def __getattr__(self, name: str) -> Any:
        memories = self.__dict__.get("_memories")
        if memories is not None and name in memories:
            return memories[name]
        return super().__getattr__(name)

    def __setattr__(self, name: str, value: Any) -> None:
        memories = self.__dict__.get("_memories")
        if memories is not None and name in memories:
            memories[name] = value
        else:
            super().__setattr__(name, value)

    def __delattr__(self, name: str) -> None:
        memories = self.__dict__.get("_memories")
        if memories is not None and name in memories:
            del memories[name]
            self._memories_rv.pop(name, None)
        else:
            super().__delattr__(name)

    def __dir__(self) -> list[str]:
        return sorted(set(super().__dir__()) | set(self._memories))

    def _apply(self, fn, recurse: bool = True):  # type: ignore[override]
        for store in (self._memories, self._memories_rv):
            for name, value in store.items():
                if isinstance(value, torch.Tensor):
                    store[name] = fn(value)
        return super()._apply(fn, recurse)

    def _replicate_for_data_parallel(self):  # pragma: no cover - DataParallel only
        replica = super()._replicate_for_data_parallel()
        replica._memories = self._memories.copy()
        replica._memories_rv = self._memories_rv.copy()
        return replica
