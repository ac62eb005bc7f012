"""Base class of the SPAIC-style learners: record a synapse and a spiking module with hooks.

Contract for subclasses
-----------------------
A learner is built as ``Cls(step_mode, synapse, sn, **params)``:

* ``step_mode`` is ``'s'`` (one time step per forward call, tensors ``[N, ...]``)
  or ``'m'`` (a whole sequence per call, tensors ``[T, N, ...]``);
* ``synapse`` is the ``nn.Module`` whose ``weight`` learns (``nn.Linear``,
  ``nn.Conv2d``, a step-mode wrapper, ...);
* ``sn`` is any ``nn.Module`` whose output is the post-synaptic spike tensor
  (a tuple/list output contributes its element 0).

Forward hooks record ``synapse``'s ``input[0]`` and ``sn``'s output. Each
synapse input waits in a queue until ``sn`` fires its hook; the oldest waiting
input is then paired with that output, so the input and the output of the
**same** forward call form one record ``(pre, post)``.

A subclass implements

* ``_pair_delta(pre, post, reward) -> Tensor | None``: consume one time step
  (``pre`` ``[N, ...]``, ``post`` ``[N, ...]``), advance the rule's state
  (traces, eligibility) and return its ``Δw`` (shape of ``synapse.weight``) or
  ``None`` for "no change";
* ``_reset_state()``: put the rule's state back to its initial value;
* optionally ``project_()``: the in-place projection applied after each
  :meth:`HookedLearner.update` (normalisation, clipping); default no-op.

Hyper-parameters are declared in ``__init__`` with :meth:`HookedLearner._param`
(validated there and on every later assignment, so a slider and a script are
refused the same way). Each learner owns its constants as instance attributes;
nothing mutable lives on the class. Rule state (traces, eligibility) is best
declared with ``register_memory(name, None)`` so that :meth:`reset` clears it.

Helpers for subclasses: :meth:`HookedLearner.check_param` (one value, range
check), :meth:`HookedLearner.reward_tensor` (a reward as a tensor that
broadcasts against ``[N, N_post]``), ``_linear_pair`` (flatten one step of a
fully connected synapse and check the weight shape) and ``_state`` (a memory or
zeros of the right shape, refusing a silent batch-size change).

:meth:`HookedLearner.step` consumes every record in order (in ``'m'`` mode each
record is split along ``T``), sums the per-step ``Δw``, multiplies by
``scale`` and either returns it (``on_grad=False``) or adds ``-Δw`` to
``synapse.weight.grad`` (``on_grad=True``, so an SGD step with learning rate
``lr`` applies ``+lr·Δw``). :meth:`HookedLearner.update` is what a simulation
calls once per time step: ``Δw = step(reward, on_grad=False)``, then
``synapse.weight += Δw`` in place, then ``project_()``.
"""

from __future__ import annotations

import math
import numbers
from collections import deque
from typing import Any

import torch
from torch import nn

from ..base import MemoryModule

__all__ = ["HookedLearner"]

class HookedLearner(MemoryModule):
    """Base of learners that record ``synapse`` input and ``sn`` output with forward hooks.

    Args:
        step_mode: ``'s'`` (records ``[N, ...]``) or ``'m'`` (records ``[T, N, ...]``).
        synapse: module with a ``weight`` tensor (the weight that learns).
        sn: module whose output is the post-synaptic spike tensor.

    Attributes:
        records: recorded ``(pre, post)`` pairs not yet consumed by :meth:`step`.
    """

    #: Most synapse inputs kept while waiting for ``sn`` (older ones are dropped).
    max_pending: int = 64

    def __init__(self, step_mode: str, synapse: nn.Module, sn: nn.Module) -> None:
        super().__init__()
        if not isinstance(synapse, nn.Module):
            raise TypeError(f"synapse must be an nn.Module with a weight, got {type(synapse).__name__}")
        weight = getattr(synapse, "weight", None)
        if not isinstance(weight, torch.Tensor):
            raise TypeError(
                f"synapse must have a tensor attribute 'weight', got {type(synapse).__name__} "
                f"with weight={type(weight).__name__}"
            )
        if not isinstance(sn, nn.Module):
            raise TypeError(f"sn must be an nn.Module, got {type(sn).__name__}")
        self.step_mode = step_mode
        self.synapse = synapse
        self.sn = sn
        self._param_specs: dict[str, tuple[float | None, float | None, bool, bool, bool]] = {}
        self._enabled = True
        self._pending: deque[torch.Tensor] = deque(maxlen=self.max_pending)
        self.records: list[tuple[torch.Tensor, torch.Tensor]] = []
        self._handles = [
            synapse.register_forward_hook(self._on_synapse_forward),
            sn.register_forward_hook(self._on_sn_forward),
        ]

    # ------------------------------------------------------------------ hooks
    def _on_synapse_forward(self, module: nn.Module, args: tuple[Any, ...], output: Any) -> None:
        if not self._enabled or not args or not isinstance(args[0], torch.Tensor):
            return
        self._pending.append(args[0].detach().clone())

    def _on_sn_forward(self, module: nn.Module, args: tuple[Any, ...], output: Any) -> None:
        if not self._enabled or not self._pending:
            return
        if isinstance(output, (tuple, list)):
            output = output[0]
        if not isinstance(output, torch.Tensor):
            return
        self.records.append((self._pending.popleft(), output.detach().clone()))

    def enable(self) -> None:
        """Start (or resume) recording forward calls."""
        self._enabled = True

    def disable(self) -> None:
        """Stop recording forward calls (records already taken are kept)."""
        self._enabled = False
        self._pending.clear()

    @property
    def is_enabled(self) -> bool:
        """Whether forward calls are being recorded."""
        return self._enabled

    def remove_hooks(self) -> None:
        """Detach the learner from ``synapse`` and ``sn`` for good."""
        for handle in self._handles:
            handle.remove()
        self._handles = []
        self._pending.clear()

    # ------------------------------------------------------------------ state
    def reset(self) -> None:
        """Drop every record and put the rule's state (traces, eligibility) back to its start."""
        super().reset()
        self.records.clear()
        self._pending.clear()
        self._reset_state()

    def _reset_state(self) -> None:
        """Reset the rule's own state; subclasses extend this."""

    # ------------------------------------------------------------------ hyper-parameters
    def _param(
        self,
        name: str,
        value: Any,
        *,
        low: float | None = None,
        high: float | None = None,
        low_open: bool = False,
        high_open: bool = False,
        allow_none: bool = False,
    ) -> None:
        """Declare the hyper-parameter ``name`` with its allowed range and set it to ``value``.

        ``low`` / ``high`` bound the value (``low_open`` / ``high_open`` exclude the
        bound); ``allow_none`` lets ``None`` through (e.g. "no normalisation").
        Later assignments ``learner.name = v`` are checked the same way.
        """
        self._param_specs[name] = (low, high, low_open, high_open, allow_none)
        setattr(self, name, value)

    @staticmethod
    def check_param(
        name: str,
        value: Any,
        *,
        low: float | None = None,
        high: float | None = None,
        low_open: bool = False,
        high_open: bool = False,
        allow_none: bool = False,
    ) -> float | None:
        """Return ``value`` as a float after checking it is a finite real number in range.

        Raises ``TypeError`` for a non-number and ``ValueError`` for a non-finite or
        out-of-range value; both messages name ``name``, the value and what is allowed.
        """
        if value is None and allow_none:
            return None
        if isinstance(value, torch.Tensor) and value.numel() == 1:
            value = value.item()
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            allowed = "a real number or None" if allow_none else "a real number"
            raise TypeError(f"{name} must be {allowed}, got {type(value).__name__} {value!r}")
        value = float(value)
        lo = "-inf" if low is None else f"{low:g}"
        hi = "inf" if high is None else f"{high:g}"
        left = "(" if low is None or low_open else "["
        right = ")" if high is None or high_open else "]"
        interval = f"{left}{lo}, {hi}{right}"
        if not math.isfinite(value):
            raise ValueError(f"{name} must be finite, in {interval}; got {value!r}")
        too_low = low is not None and (value <= low if low_open else value < low)
        too_high = high is not None and (value >= high if high_open else value > high)
        if too_low or too_high:
            raise ValueError(f"{name} must be in {interval}, got {value!r}")
        return value

    def __setattr__(self, name: str, value: Any) -> None:
        specs = self.__dict__.get("_param_specs")
        if specs is not None and name in specs:
            low, high, low_open, high_open, allow_none = specs[name]
            value = self.check_param(
                name, value, low=low, high=high, low_open=low_open, high_open=high_open, allow_none=allow_none
            )
        super().__setattr__(name, value)

    def hyper_parameters(self) -> dict[str, float | None]:
        """The declared hyper-parameters and their current values."""
        return {name: getattr(self, name) for name in self._param_specs}

    def extra_repr(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.hyper_parameters().items())
        return f"step_mode={self.step_mode}" + (f", {params}" if params else "")

    # ------------------------------------------------------------------ rewards
    @staticmethod
    def reward_tensor(
        reward: Any, *, batch: int, n_post: int, like: torch.Tensor, required: bool = True
    ) -> torch.Tensor | None:
        """Turn ``reward`` into a tensor that broadcasts against ``[batch, n_post]``.

        Accepted: a Python number or 0-d tensor (returned 0-d, one reward for
        everything); a ``[batch]`` tensor (per sample, returned ``[batch, 1]``); a
        ``[n_post]`` tensor (per post-synaptic neuron, returned ``[1, n_post]``);
        ``[batch, 1]``, ``[1, n_post]`` or ``[batch, n_post]`` (returned as is).
        A 1-D reward whose length is both ``batch`` and ``n_post`` is read per
        sample; pass ``[1, n_post]`` to mean per neuron. Lists and numpy arrays are
        converted. The result has ``like``'s dtype and device.

        Raises ``ValueError`` naming ``reward`` when it is missing (``required``),
        non-finite or of a shape that fits none of the above.
        """
        if reward is None:
            if required:
                raise ValueError("reward is required by this learning rule, got None")
            return None
        if isinstance(reward, bool) or not isinstance(reward, (numbers.Real, torch.Tensor)):
            try:
                reward = torch.as_tensor(reward)
            except (TypeError, ValueError, RuntimeError) as exc:
                raise TypeError(
                    f"reward must be a number or a tensor, got {type(reward).__name__} {reward!r}"
                ) from exc
        r = torch.as_tensor(reward, dtype=like.dtype, device=like.device)
        if r.dtype.is_floating_point and not bool(torch.isfinite(r).all()):
            raise ValueError(f"reward must be finite, got {reward!r}")
        shape = tuple(r.shape)
        if r.dim() == 0:
            return r
        if r.dim() == 1:
            if shape[0] == batch:
                return r.reshape(batch, 1)
            if shape[0] == n_post:
                return r.reshape(1, n_post)
            if shape[0] == 1:
                return r.reshape(())
        elif r.dim() == 2 and shape[0] in (1, batch) and shape[1] in (1, n_post):
            return r
        raise ValueError(
            f"reward must be a number, a 0-d tensor, [batch]={batch}, [n_post]={n_post}, "
            f"[batch, 1], [1, n_post] or [batch, n_post]; got shape {list(shape)}"
        )

    # ------------------------------------------------------------------ helpers for rules
    def _linear_pair(self, pre: torch.Tensor, post: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Flatten one time step of a fully connected synapse to ``[N, N_pre]`` / ``[N, N_post]``.

        A 1-D tensor counts as batch 1. The results have the weight's dtype; the
        weight must be ``[N_post, N_pre]`` (``ValueError`` otherwise).
        """
        weight = self.synapse.weight
        pre = pre.unsqueeze(0) if pre.dim() == 1 else pre.reshape(pre.shape[0], -1)
        post = post.unsqueeze(0) if post.dim() == 1 else post.reshape(post.shape[0], -1)
        dtype = weight.dtype if weight.dtype.is_floating_point else torch.get_default_dtype()
        pre, post = pre.to(dtype), post.to(dtype)
        if pre.shape[0] != post.shape[0]:
            raise ValueError(
                f"synapse input batch {pre.shape[0]} differs from sn output batch {post.shape[0]}"
            )
        expected = (post.shape[1], pre.shape[1])
        if weight.dim() != 2 or tuple(weight.shape) != expected:
            raise ValueError(
                f"{type(self).__name__} needs synapse.weight of shape [N_post, N_pre]={list(expected)} "
                f"for input {list(pre.shape)} and output {list(post.shape)}, got {list(weight.shape)}"
            )
        return pre, post

    def _state(self, name: str, shape: tuple[int, ...], like: torch.Tensor) -> torch.Tensor:
        """The memory ``name``, or zeros of ``shape`` if it is unset.

        ``ValueError`` if it holds a tensor of another shape (e.g. the batch size
        changed without :meth:`reset`).
        """
        value = getattr(self, name)
        if value is None:
            return torch.zeros(shape, dtype=like.dtype, device=like.device)
        if tuple(value.shape) != tuple(shape):
            raise ValueError(
                f"{name} has shape {list(value.shape)} but this step needs {list(shape)} "
                "(did the batch size change? call reset() first)"
            )
        return value

    # ------------------------------------------------------------------ learning
    def _pair_delta(self, pre: torch.Tensor, post: torch.Tensor, reward: Any) -> torch.Tensor | None:
        """Consume one time step (``pre`` / ``post`` ``[N, ...]``); return its ``Δw`` or ``None``."""
        raise NotImplementedError(f"{type(self).__name__} must implement _pair_delta")

    def _time_steps(self, pre: torch.Tensor, post: torch.Tensor):
        if self.step_mode == "s":
            yield pre, post
            return
        if pre.dim() < 2 or post.dim() < 2 or pre.shape[0] != post.shape[0]:
            raise ValueError(
                "in step_mode='m' the synapse input and sn output must be [T, N, ...] with the same T, "
                f"got {list(pre.shape)} and {list(post.shape)}"
            )
        yield from zip(pre.unbind(0), post.unbind(0))

    def step(self, reward: Any = None, on_grad: bool = True, scale: float = 1.0) -> torch.Tensor | None:
        """Consume the records and compute ``Δw = scale · Σ_records Σ_t Δw(pre_t, post_t, reward)``.

        Args:
            reward: the reward signal (rules without reward ignore it); see :meth:`reward_tensor`.
            on_grad: add ``-Δw`` to ``synapse.weight.grad`` (creating it) and return ``None``;
                otherwise return ``Δw`` (shape of ``synapse.weight``).
            scale: multiplies ``Δw``.

        Returns ``None`` when nothing was recorded since the last call (and zeros
        when records were consumed but the rule produced no change yet). In
        ``'m'`` mode the same ``reward`` applies to every time step of a record.
        The weight itself is never changed here.
        """
        scale = self.check_param("scale", scale)
        if not self.records:
            return None
        weight = self.synapse.weight
        records, self.records = self.records, []
        delta: torch.Tensor | None = None
        with torch.no_grad():
            for pre_rec, post_rec in records:
                for pre, post in self._time_steps(pre_rec, post_rec):
                    d = self._pair_delta(pre, post, reward)
                    if d is not None:
                        delta = d if delta is None else delta + d
            if delta is None:
                delta = torch.zeros_like(weight)
            elif delta.shape != weight.shape:
                raise RuntimeError(
                    f"{type(self).__name__} produced a delta of shape {list(delta.shape)} "
                    f"for a weight of shape {list(weight.shape)}"
                )
            if scale != 1.0:
                delta = delta * scale
            delta = delta.to(weight.dtype)
        if on_grad:
            if weight.grad is None:
                weight.grad = -delta
            else:
                weight.grad = weight.grad - delta
            return None
        return delta

    def update(self, reward: Any = None) -> torch.Tensor | None:
        """One simulation step of learning: ``Δw = step(reward, on_grad=False)``,
        ``synapse.weight += Δw`` in place, then :meth:`project_`. Returns ``Δw``
        (``None`` and no change when nothing was recorded)."""
        delta = self.step(reward, on_grad=False)
        if delta is None:
            return None
        with torch.no_grad():
            self.synapse.weight.add_(delta)
            self.project_()
        return delta

    def project_(self) -> None:
        """The rule's in-place projection of ``synapse.weight`` after :meth:`update` (default: none)."""
