"""SpikingJelly's monitor-based learners: STDP, mSTDP and mSTDP-ET.

A learner watches a synapse layer (``nn.Linear``, ``nn.Conv1d``,
``nn.Conv2d`` or a subclass such as ``snnlab.layer.Linear``) with an
:class:`~snnlab.monitor.InputMonitor` (its input = pre-synaptic spikes) and a
spiking module ``sn`` with an :class:`~snnlab.monitor.OutputMonitor` (its
output = post-synaptic spikes). Records are ``[N, ...]`` in step mode ``'s'``
and ``[T, N, ...]`` in ``'m'``; :meth:`step` consumes them oldest first.

``step(on_grad=True)`` adds ``-delta_w`` to ``synapse.weight.grad`` (so
``torch.optim.SGD(lr)`` applies ``W += lr * delta_w``) and leaves the weight
and the bias alone; ``on_grad=False`` returns ``delta_w``; ``scale``
multiplies ``delta_w``. With nothing recorded :meth:`step` returns ``None``.
The equations are those of :mod:`snnlab.learning.stdp_functional`.

Implementation: ``delta_w`` is a sum of low-rank products (spikes times
traces), accumulated straight into ``weight.grad`` with one ``addmm`` when
the modulations ``f_pre`` / ``f_post`` are constants (additive STDP), or with
one product and one ``addcmul`` when they return the same tensor (the default
identity: multiplicative STDP). No ``[N, C_out, C_in]`` tensor is built.

CPU fast path: for an ``nn.Linear`` synapse with a float32 / float64 CPU
weight, when ``f_post(W)`` / ``f_pre(W)`` are numbers (additive) or the
weight itself (multiplicative, e.g. the default identity), ``STDPLearner``
and ``MSTDPLearner`` run each time step as one pass of the fused numba kernel
:mod:`snnlab.kernels.plasticity_cpu` (trace step, the two sparse outer
products, the mSTDP weight snapshot). The arrays it takes are kept between
steps in a :class:`~snnlab.learning.stdp_cpu.CpuPlan` (checked against the
weight, the grad and the memories at every step). Other cases use the torch
code above; both give the same numbers up to float rounding. The mSTDP
eligibility is stored as ``(G_post, G_pre, Pairing)``; the fast path keeps
its factors as ``[N, features]`` (:func:`~snnlab.learning.stdp_functional.lift_pairing`
gives the ``[N, 1, features]`` form).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import torch
from torch import nn

from .. import monitor
from ..base import MemoryModule
from .registry import register
from .stdp_cpu import CpuPlan, Spikes
from .stdp_functional import (
    Modulation,
    Pairing,
    Term,
    UnsupportedSynapseError,
    _identity,
    accumulate_terms,
    as_modulation,
    check_callable,
    check_reward,
    check_synapse,
    check_tau,
    conv_pairing,
    conv_spikes,
    decay_trace,
    dense_delta,
    lift_pairing,
    linear_pairing,
    linear_spikes,
    mstdp_linear_single_step,
    mstdpet_linear_single_step,
    pairing_terms,
    stdp_conv1d_single_step,
    stdp_conv2d_single_step,
    stdp_linear_single_step,
    stdp_multi_step,
    weight_2d,
)

__all__ = [
    "MSTDPETLearner",
    "MSTDPLearner",
    "STDPLearner",
    "UnsupportedSynapseError",
    "mstdp_linear_single_step",
    "mstdpet_linear_single_step",
    "stdp_conv1d_single_step",
    "stdp_conv2d_single_step",
    "stdp_linear_single_step",
    "stdp_multi_step",
]


def _first(value: Any) -> Any:
    """A module output / input recorded as a tuple or list contributes its element 0."""
    while isinstance(value, (tuple, list)):
        value = value[0]
    return value


def _check_scale(scale: object) -> float:
    if type(scale) is float and math.isfinite(scale):
        return scale
    if isinstance(scale, bool) or not isinstance(scale, numbers.Real) or not math.isfinite(scale):
        raise ValueError(f"scale must be a finite real number, got {scale!r}")
    return float(scale)


# --------------------------------------------------------------------------- CPU fast path
_kernel_module: Any = None


def _kernel() -> Any:
    """:mod:`snnlab.kernels.plasticity_cpu` if numba can run it, else ``None`` (imported on first use)."""
    global _kernel_module
    if _kernel_module is None:
        try:
            from ..kernels import plasticity_cpu
        except ImportError:  # pragma: no cover - numba missing
            _kernel_module = False
        else:
            _kernel_module = plasticity_cpu if plasticity_cpu.available() else False
    return _kernel_module or None


class _MonitoredLearner(MemoryModule):
    """Shared plumbing: monitors, trace memories, record pairing, grad writing."""

    _euler = True

    def __init__(
        self,
        step_mode: str,
        synapse: nn.Module,
        sn: nn.Module,
        tau_pre: float,
        tau_post: float,
        f_pre: Callable,
        f_post: Callable,
    ) -> None:
        super().__init__()
        self.step_mode = step_mode
        check_synapse("synapse", synapse)
        if not isinstance(sn, nn.Module):
            raise TypeError(
                f"sn must be an nn.Module whose output is the post-synaptic spikes, got {type(sn).__name__}"
            )
        check_callable("f_pre", f_pre)
        check_callable("f_post", f_post)
        self.tau_pre = check_tau("tau_pre", tau_pre)
        self.tau_post = check_tau("tau_post", tau_post)
        self.f_pre = f_pre
        self.f_post = f_post
        self.synapse = synapse
        self.in_spike_monitor = monitor.InputMonitor(synapse)
        self.out_spike_monitor = monitor.OutputMonitor(sn)
        self._scratch: torch.Tensor | None = None
        self.register_memory("trace_pre", None)
        self.register_memory("trace_post", None)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in ("tau_pre", "tau_post", "tau_trace") and "_memories" in self.__dict__:
            value = check_tau(name, value)
        super().__setattr__(name, value)

    def extra_repr(self) -> str:
        return f"step_mode={self.step_mode}, tau_pre={self.tau_pre}, tau_post={self.tau_post}"

    # ------------------------------------------------------------------ monitors
    def reset(self) -> None:
        """Clear traces (and eligibility) and the monitors' records."""
        super().reset()
        self.in_spike_monitor.clear_recorded_data()
        self.out_spike_monitor.clear_recorded_data()

    def disable(self) -> None:
        """Stop recording the synapse's input and ``sn``'s output."""
        self.in_spike_monitor.disable()
        self.out_spike_monitor.disable()

    def enable(self) -> None:
        """Resume recording the synapse's input and ``sn``'s output."""
        self.in_spike_monitor.enable()
        self.out_spike_monitor.enable()

    def _peek_batch(self) -> int | None:
        """Batch size of the oldest waiting record (1 for unbatched linear input); ``None`` if none."""
        ins, outs = self.in_spike_monitor.records, self.out_spike_monitor.records
        if not ins or not outs:
            return None
        x = _first(ins[0])
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"the synapse's input must be a tensor of spikes, got {type(x).__name__}")
        lead = 1 if self.step_mode == "m" else 0
        unbatched = isinstance(self._modules["synapse"], nn.Linear) and x.dim() == lead + 1
        return 1 if unbatched or x.dim() <= lead else x.shape[lead]

    def _take_records(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Pop the recorded ``(in_spike, out_spike)`` pairs, oldest first."""
        ins, outs = self.in_spike_monitor.records, self.out_spike_monitor.records
        n = min(len(ins), len(outs))
        if n == 1 and len(ins) == 1 and len(outs) == 1:  # the usual step: one record each
            return [(_first(ins.pop()), _first(outs.pop()))]
        return [(_first(ins.pop(0)), _first(outs.pop(0))) for _ in range(n)]

    def _time_steps(self, records: list[tuple[torch.Tensor, torch.Tensor]]) -> Iterable[tuple[Any, Any]]:
        """One ``(in_spike, out_spike)`` per time step (``'m'`` records are unbound along T)."""
        if self.step_mode == "s":  # each record is one time step
            return records
        if self.step_mode != "m":
            raise ValueError(f"step_mode must be 's' or 'm', got {self.step_mode!r}")
        return self._unbound_steps(records)

    @staticmethod
    def _unbound_steps(records: list[tuple[torch.Tensor, torch.Tensor]]) -> Iterator[tuple[Any, Any]]:
        """The time steps of ``'m'`` records ``[T, N, ...]``, in order."""
        for x, y in records:
            if x.dim() < 2 or y.dim() < 2 or x.shape[0] != y.shape[0]:
                raise ValueError(
                    f"in step_mode 'm' records must be [T, N, ...] with the same T, got in_spike "
                    f"{tuple(x.shape)} and out_spike {tuple(y.shape)}"
                )
            yield from zip(x.unbind(0), y.unbind(0))

    # ------------------------------------------------------------------ rule pieces
    def _pairing(self, x: torch.Tensor, y: torch.Tensor) -> Pairing:
        """Advance the traces with one time step of spikes; return its factors."""
        if isinstance(self.synapse, nn.Linear):
            x, y = linear_spikes(self.synapse, x, y)
        else:
            x, y = conv_spikes(self.synapse, x, y)
        self.trace_pre = decay_trace("trace_pre", self.trace_pre, x, self.tau_pre, self._euler)
        self.trace_post = decay_trace("trace_post", self.trace_post, y, self.tau_post, self._euler)
        if isinstance(self.synapse, nn.Linear):
            return linear_pairing(x, y, self.trace_pre, self.trace_post)
        return conv_pairing(self.synapse, x, y, self.trace_pre, self.trace_post)

    def _cpu_plan(self) -> CpuPlan | None:
        """The fused CPU step's :class:`~snnlab.learning.stdp_cpu.CpuPlan` for the synapse's current
        weight (rebuilt when the weight changes), or ``None`` when the kernel cannot run."""
        kernel = _kernel()
        synapse = self._modules["synapse"]
        if kernel is None or not isinstance(synapse, nn.Linear):
            return None
        weight = synapse._parameters.get("weight")  # (nn.Module.__getattr__ costs half a microsecond)
        if weight is None:
            weight = synapse.weight
        plan = self.__dict__.get("_plan")
        if plan is None or not plan.fits(weight):
            plan = self.__dict__["_plan"] = CpuPlan.build(kernel, weight)
        return plan

    def _modulations(self) -> tuple[Modulation, Modulation]:
        """``(G_post, G_pre)``: ``f_post(W)`` and ``f_pre(W)`` as floats or ``[C_out, N_in]`` tensors."""
        g_post, g_pre, w = self._raw_modulations(None)
        return as_modulation("f_post", g_post, w), as_modulation("f_pre", g_pre, w)

    def _raw_modulations(self, plan: CpuPlan | None) -> tuple[Any, Any, torch.Tensor]:
        """``(f_post(W), f_pre(W), W)`` with ``W`` the detached weight (the plan's, if any), unchecked."""
        w = plan.w if plan is not None else self._modules["synapse"].weight.detach()
        return self.f_post(w), self.f_pre(w), w

    def _fast_modulations(
        self, plan: CpuPlan | None, g_post: Any, g_pre: Any, on_grad: bool
    ) -> tuple[float | torch.Tensor, float | torch.Tensor] | None:
        """``(G_post, G_pre)`` as numbers or the weight itself when the fused CPU kernel can run this
        step (see :meth:`CpuPlan.ready <snnlab.learning.stdp_cpu.CpuPlan.ready>`), else ``None``."""
        if plan is None:
            return None
        gp, gq = plan.modulation("f_post", g_post), plan.modulation("f_pre", g_pre)
        if gp is None or gq is None or not plan.ready(self._memories, on_grad):
            return None
        return gp, gq

    def _fast_traces(self, plan: CpuPlan, s: Spikes) -> tuple[Any, Any]:
        """The old traces of one step as the kernel's ``[B, n]`` arrays."""
        memories = self._memories
        return (
            plan.old_trace("trace_pre", memories["trace_pre"], s.x, s.pre),
            plan.old_trace("trace_post", memories["trace_post"], s.y, s.post),
        )

    def _finish(self, terms: list[Term], on_grad: bool) -> torch.Tensor | None:
        """Accumulate ``terms`` (already signed for ``on_grad``) into the grad or a new ``delta_w``."""
        weight = self.synapse.weight
        w2 = weight_2d(weight.detach())
        with torch.no_grad():
            if not on_grad:
                return accumulate_terms(None, terms, tuple(w2.shape), w2).view_as(weight)
            if weight.grad is None:
                weight.grad = torch.zeros_like(weight)
            if self._scratch is None or self._scratch.shape != w2.shape or self._scratch.dtype != w2.dtype:
                self._scratch = torch.empty_like(w2)
            grad2 = weight.grad.view(w2.shape)
            accumulate_terms(grad2, terms, tuple(w2.shape), w2, self._scratch)
        return None


class STDPLearner(_MonitoredLearner):
    """STDP learner: Euler traces, ``delta_w`` summed over records, batch and positions.

        x_pre  <- x_pre  - x_pre  / tau_pre  + s_pre        (input of ``synapse``)
        x_post <- x_post - x_post / tau_post + s_post       (output of ``sn``)
        delta_w = Σ f_post(W) ⊙ s_postᵀ x_pre - f_pre(W) ⊙ x_postᵀ s_pre

    ``f_pre`` / ``f_post`` (default identity, i.e. ``delta_w`` proportional to
    ``W``) are evaluated on the weight at :meth:`step` time. Traces are
    memories ``trace_pre`` / ``trace_post``; :meth:`reset` clears them.
    """

    def __init__(
        self,
        step_mode: str,
        synapse: nn.Linear | nn.Conv1d | nn.Conv2d,
        sn: nn.Module,
        tau_pre: float,
        tau_post: float,
        f_pre: Callable = _identity,
        f_post: Callable = _identity,
    ) -> None:
        super().__init__(step_mode, synapse, sn, tau_pre, tau_post, f_pre, f_post)

    def step(self, on_grad: bool = True, scale: float = 1.0) -> torch.Tensor | None:
        """Consume the records; add ``-scale * delta_w`` to ``weight.grad`` or return ``scale * delta_w``."""
        scale = _check_scale(scale)
        records = self._take_records()
        if not records:
            return None
        coeff = -scale if on_grad else scale
        plan = self._cpu_plan()
        g_post, g_pre, w = self._raw_modulations(plan)
        fast = self._fast_modulations(plan, g_post, g_pre, on_grad)
        if fast is not None:
            return self._fast_step(plan, *fast, records, on_grad, coeff)  # type: ignore[arg-type]
        g_post, g_pre = as_modulation("f_post", g_post, w), as_modulation("f_pre", g_pre, w)
        terms: list[Term] = []
        for x, y in self._time_steps(records):
            terms.extend(pairing_terms(g_post, g_pre, self._pairing(x, y), coeff))
        return self._finish(terms, on_grad)

    def _fast_step(
        self,
        plan: CpuPlan,
        gp: float | torch.Tensor,
        gq: float | torch.Tensor,
        records: list[tuple[torch.Tensor, torch.Tensor]],
        on_grad: bool,
        coeff: float,
    ) -> torch.Tensor | None:
        """:meth:`step` on the fused CPU kernel: per recorded time step, one call that advances the
        traces and adds ``coeff * (G_post ⊙ Σ_b s_post[b]ᵀ x_pre[b] - G_pre ⊙ Σ_b x_post[b]ᵀ s_pre[b])``
        (new traces, ``[B, n]`` rows) into the grad or ``delta_w``."""
        kernel = plan.kernel
        target, target_np = plan.target(on_grad)
        memories = self._memories
        synapse = self._modules["synapse"]
        mod_post, mod_pre = plan.array(gp), plan.array(gq)
        for x, y in self._time_steps(records):
            s = plan.spikes(synapse, x, y)
            old_pre, old_post = self._fast_traces(plan, s)
            ones = plan.ones_for(s.pre_np.shape[0])
            new_pre, new_post = kernel.fused_step(
                target_np, ones, coeff, None, mod_post, mod_pre, s.pre_np, s.post_np, old_pre, old_post,
                self.tau_pre, self.tau_post, True,
            )  # fmt: skip
            plan.new_trace(memories, "trace_pre", new_pre, s.x)
            plan.new_trace(memories, "trace_post", new_post, s.y)
        return None if on_grad else target


def _reward_coeff(reward: object, batch_size: int, coeff: float) -> float | torch.Tensor:
    """``reward * coeff`` as a float or a ``[batch_size]`` tensor; ValueError for other shapes."""
    check_reward(reward, batch_size)
    if isinstance(reward, numbers.Real):
        return float(reward) * coeff
    if reward.numel() == 1:  # type: ignore[union-attr]
        return float(reward.item()) * coeff  # type: ignore[union-attr]
    return reward.detach() * coeff  # type: ignore[union-attr]


class MSTDPLearner(_MonitoredLearner):
    """Reward-modulated STDP (mSTDP): exponential traces and a per-sample eligibility.

        x <- x * exp(-1 / tau) + s                      (pre and post traces)
        e_t[n] = f_post(W) ⊙ s_post[n]ᵀ x_pre[n] - f_pre(W) ⊙ x_post[n]ᵀ s_pre[n]
        delta_w = Σ_n reward[n] * e_{t-1}[n]

    The reward given at call ``t`` multiplies the eligibility of the previous
    time step (zero at the first); ``reward`` is a float, a 0-d tensor or a
    ``[N]`` tensor. ``batch_size`` is the expected ``N`` (SpikingJelly's
    argument; the shape is taken from the records). The eligibility is kept in
    factored form; :attr:`eligibility` gives it as ``[N, *weight.shape]``.
    In the registry (key ``'mstdp'``) it is built as
    ``create('mstdp', step_mode, synapse, sn, batch_size=..., tau_pre=..., tau_post=...)``.
    """

    _euler = False

    def __init__(
        self,
        step_mode: str,
        batch_size: float,
        synapse: nn.Linear | nn.Conv1d | nn.Conv2d,
        sn: nn.Module,
        tau_pre: float,
        tau_post: float,
        f_pre: Callable = _identity,
        f_post: Callable = _identity,
    ) -> None:
        if isinstance(batch_size, nn.Module):
            raise TypeError(
                "MSTDPLearner takes (step_mode, batch_size, synapse, sn, tau_pre, tau_post, ...); got a "
                f"module ({type(batch_size).__name__}) as batch_size. The registry form is "
                "learning.create('mstdp', step_mode, synapse, sn, batch_size=..., tau_pre=..., tau_post=...)"
            )
        if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Real) or not batch_size >= 1:
            raise ValueError(f"batch_size must be a number >= 1, got {batch_size!r}")
        super().__init__(step_mode, synapse, sn, tau_pre, tau_post, f_pre, f_post)
        self.batch_size = batch_size
        self._snapshot_buffers: dict[str, torch.Tensor] = {}
        self.register_memory("_eligibility_factors", None)

    @property
    def eligibility(self) -> torch.Tensor | None:
        """The eligibility of the last recorded time step, ``[N, *weight.shape]`` (``None`` before any)."""
        state = self._eligibility_factors
        if state is None:
            return None
        g_post, g_pre, p = state
        e = dense_delta(g_post, g_pre, lift_pairing(p), per_sample=True)
        return e.reshape(p.batch_size, *self.synapse.weight.shape)

    def step(self, reward: Any, on_grad: bool = True, scale: float = 1.0) -> torch.Tensor | None:
        """Consume the records: ``delta_w = scale * Σ reward * eligibility(t-1)`` per time step.

        ``on_grad=True`` adds ``-delta_w`` to ``weight.grad``; ``False`` returns it.
        """
        scale = _check_scale(scale)
        batch = self._peek_batch()
        if batch is None:
            return None
        check_reward(reward, batch)
        records = self._take_records()
        coeff_sign = -scale if on_grad else scale
        plan = self._cpu_plan()
        g_post, g_pre, weight = self._raw_modulations(plan)
        fast = self._fast_modulations(plan, g_post, g_pre, on_grad)
        if fast is not None:
            return self._fast_step(plan, *fast, records, reward, on_grad, coeff_sign)  # type: ignore[arg-type]
        g_post, g_pre = as_modulation("f_post", g_post, weight), as_modulation("f_pre", g_pre, weight)
        terms: list[Term] = []
        state = self._eligibility_factors
        for x, y in self._time_steps(records):
            p = self._pairing(x, y)
            if state is not None:
                prev_post, prev_pre, prev = state
                if prev.batch_size != p.batch_size:
                    raise ValueError(
                        f"the batch size changed from {prev.batch_size} to {p.batch_size}; call reset() first"
                    )
                coeff = _reward_coeff(reward, prev.batch_size, coeff_sign)
                terms.extend(pairing_terms(prev_post, prev_pre, lift_pairing(prev), coeff))
            state = (g_post, g_pre, p)
        result = self._finish(terms, on_grad)  # uses the previous snapshot; it may be overwritten now
        kept_post = self._snapshot(state[0], weight, "post")
        kept_pre = kept_post if state[1] is state[0] else self._snapshot(state[1], weight, "pre")
        self._eligibility_factors = (kept_post, kept_pre, state[2])
        return result

    def _fast_step(
        self,
        plan: CpuPlan,
        gp: float | torch.Tensor,
        gq: float | torch.Tensor,
        records: list[tuple[torch.Tensor, torch.Tensor]],
        reward: Any,
        on_grad: bool,
        coeff_sign: float,
    ) -> torch.Tensor | None:
        """:meth:`step` on the fused CPU kernel: per recorded time step, one call that

        * adds ``coeff_sign * Σ_b reward[b] e_{t-1}[b]`` (the stored eligibility, ``[B, features]``
          factors and ``G`` kept at step ``t-1``) into the grad or ``delta_w``,
        * advances the exponential traces (``[B, n]`` rows),
        * when a modulation is the weight, copies ``W`` at the positions the new eligibility
          involves (rows of neurons that fired, columns of inputs that fired) into the plan's
          snapshot buffer -- ``f(W)`` of this step, kept for the next reward.
        """
        kernel = plan.kernel
        target, target_np = plan.target(on_grad)
        memories = self._memories
        synapse = self._modules["synapse"]
        decay_pre, decay_post = math.exp(-1.0 / self.tau_pre), math.exp(-1.0 / self.tau_post)
        snapshot = plan.snapshot() if gp is plan.w or gq is plan.w else None
        for x, y in self._time_steps(records):
            s = plan.spikes(synapse, x, y)
            batch = s.pre_np.shape[0]
            prev = plan.eligibility(memories["_eligibility_factors"], batch)
            if prev is None:
                factors, mod_post, mod_pre = plan.no_factors(), 0.0, 0.0
                coeff, scale = plan.ones_for(0), 0.0
            else:
                factors, mod_post, mod_pre = prev
                coeff, scale = plan.reward_coefficients(reward, batch, coeff_sign)
            old_pre, old_post = self._fast_traces(plan, s)
            new_pre, new_post = kernel.fused_step(
                target_np, coeff, scale, factors, mod_post, mod_pre, s.pre_np, s.post_np, old_pre, old_post,
                decay_pre, decay_post, False, snapshot,
            )  # fmt: skip
            traces = (
                plan.new_trace(memories, "trace_pre", new_pre, s.x),
                plan.new_trace(memories, "trace_post", new_post, s.y),
            )
            memories["_eligibility_factors"] = plan.keep(gp, gq, s, traces, (new_pre, new_post))
        return None if on_grad else target

    def _snapshot(self, g: Modulation, weight: torch.Tensor, slot: str) -> Modulation:
        """Keep ``f(W)`` for the next reward; copied into a reused buffer if it aliases the weight."""
        if not isinstance(g, torch.Tensor):
            return g
        if g.untyped_storage().data_ptr() != weight.untyped_storage().data_ptr():
            return g
        buf = self._snapshot_buffers.get(slot)
        if buf is None or buf.shape != g.shape or buf.dtype != g.dtype or buf.device != g.device:
            buf = self._snapshot_buffers[slot] = torch.empty_like(g)
        return buf.copy_(g)


class MSTDPETLearner(_MonitoredLearner):
    """mSTDP with an eligibility trace (mSTDP-ET).

        x <- x * exp(-1 / tau) + s                      (pre and post traces)
        e_t = f_post(W) ⊙ s_postᵀ x_pre - f_pre(W) ⊙ x_postᵀ s_pre
        trace_e <- trace_e * exp(-1 / tau_trace) + e_{t-1} / tau_trace
        delta_w = reward * trace_e

    The reward of call ``t`` meets the eligibility produced up to ``t-1``
    (zero at the first call). With batched records ``[N, ...]`` the
    eligibility and ``trace_e`` are per sample (``[N, *weight.shape]``) and
    ``delta_w = Σ_n reward[n] * trace_e[n]``; ``reward`` is a float, a 0-d
    tensor or ``[N]``. Memories: ``trace_pre``, ``trace_post``, ``trace_e``,
    ``eligibility``; :meth:`reset` clears all of them.
    """

    _euler = False

    def __init__(
        self,
        step_mode: str,
        synapse: nn.Linear | nn.Conv1d | nn.Conv2d,
        sn: nn.Module,
        tau_pre: float,
        tau_post: float,
        tau_trace: float,
        f_pre: Callable = _identity,
        f_post: Callable = _identity,
    ) -> None:
        super().__init__(step_mode, synapse, sn, tau_pre, tau_post, f_pre, f_post)
        self.tau_trace = check_tau("tau_trace", tau_trace)
        self.register_memory("trace_e", None)
        self.register_memory("eligibility", None)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, tau_trace={self.tau_trace}"

    def _reward_sum(self, reward: Any, trace_e: torch.Tensor, batch: int, coeff: float) -> torch.Tensor:
        """``coeff * Σ_n reward[n] * trace_e[n]`` (``trace_e`` per sample or weight-shaped)."""
        r = _reward_coeff(reward, batch, coeff)
        if trace_e.dim() == self.synapse.weight.dim():
            return trace_e * (r if isinstance(r, float) else r.sum())
        if isinstance(r, float):
            return trace_e.sum(0) * r
        return torch.tensordot(r.to(trace_e.dtype), trace_e, dims=1)

    def step(self, reward: Any, on_grad: bool = True, scale: float = 1.0) -> torch.Tensor | None:
        """Consume the records: per time step decay ``trace_e``, add ``scale * reward * trace_e``.

        ``on_grad=True`` adds ``-delta_w`` to ``weight.grad``; ``False`` returns it.
        """
        scale = _check_scale(scale)
        batch = self._peek_batch()
        if batch is None:
            return None
        check_reward(reward, batch)
        records = self._take_records()
        weight = self.synapse.weight
        g_post, g_pre = self._modulations()
        decay = math.exp(-1.0 / self.tau_trace)
        delta_w = torch.zeros_like(weight.detach())
        for x, y in self._time_steps(records):
            p = self._pairing(x, y)
            unbatched = isinstance(self.synapse, nn.Linear) and x.dim() == 1
            shape = (*(() if unbatched else (p.batch_size,)), *weight.shape)
            trace_e = self.trace_e if self.trace_e is not None else delta_w.new_zeros(shape)
            if trace_e.shape != shape:
                raise ValueError(
                    f"trace_e has shape {tuple(trace_e.shape)} but the spikes need {shape}: the batch size "
                    "changed; call reset() first"
                )
            trace_e = trace_e * decay
            if self.eligibility is not None:
                trace_e = trace_e + self.eligibility / self.tau_trace
            self.trace_e = trace_e
            batch = 1 if unbatched else p.batch_size
            delta_w += self._reward_sum(reward, trace_e, batch, scale)
            e = dense_delta(g_post, g_pre, p, per_sample=True)
            self.eligibility = e[0].view_as(weight) if unbatched else e.view(-1, *weight.shape)
        if not on_grad:
            return delta_w
        with torch.no_grad():
            if weight.grad is None:
                weight.grad = -delta_w
            else:
                weight.grad.sub_(delta_w)
        return None


class _MSTDPRegistryEntry(MSTDPLearner):
    """:class:`MSTDPLearner` built with the registry's argument order ``(step_mode, synapse, sn, ...)``."""

    def __init__(
        self, step_mode: str, synapse: nn.Module, sn: nn.Module, batch_size: float = 1, **params: Any
    ) -> None:
        super().__init__(step_mode, batch_size, synapse, sn, **params)


register("stdp", STDPLearner)
register("mstdp", _MSTDPRegistryEntry)
register("mstdpet", MSTDPETLearner)
