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
products, the mSTDP weight snapshot). Other cases use the torch code above;
both give the same numbers up to float rounding.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import nn

from .. import monitor
from ..base import MemoryModule
from .registry import register
from .stdp_functional import (
    Modulation,
    Pairing,
    Term,
    Trace,
    UnsupportedSynapseError,
    _identity,
    accumulate_terms,
    check_callable,
    check_synapse,
    check_tau,
    check_trace,
    conv_pairing,
    conv_spikes,
    decay_trace,
    dense_delta,
    linear_pairing,
    linear_spikes,
    modulation,
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
_FAST_DTYPES = (torch.float32, torch.float64)
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


def _fast_modulation(g: Modulation, w: torch.Tensor) -> float | torch.Tensor | None:
    """``g`` as the kernel takes it: a number, or ``w`` when ``g`` is the weight itself; else ``None``."""
    if isinstance(g, float):
        return g
    if (
        g.data_ptr() == w.data_ptr()
        and g.dtype == w.dtype
        and g.device == w.device
        and g.shape == w.shape
        and g.stride() == w.stride()
    ):
        return w
    return None


def _shaped(t: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """``t.view(shape)``, or ``t`` itself when it has that shape already (a view costs ~2 µs)."""
    return t if t.shape == shape else t.view(shape)


def _rows(x: torch.Tensor, n: int) -> torch.Tensor:
    """``x`` as contiguous ``[B, n]`` rows (``x`` itself when it is already)."""
    if x.dim() == 2 and x.is_contiguous():
        return x
    return x.reshape(-1, n).contiguous()


def _fast_trace(name: str, trace: Trace, spike: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """The old trace as a contiguous ``[B, n]`` tensor like ``rows`` (``None`` is zeros)."""
    if isinstance(trace, torch.Tensor) and trace.shape == spike.shape and trace.is_contiguous():
        return _shaped(trace.detach(), rows.shape)
    check_trace(name, trace, spike)
    if trace is None:
        return torch.zeros_like(rows)
    if not isinstance(trace, torch.Tensor):
        return torch.full_like(rows, float(trace))
    if trace.shape != spike.shape:
        trace = trace.expand(spike.shape)
    return trace.detach().reshape(rows.shape).contiguous()


_COEFF_CACHE: dict[tuple[float, int, torch.dtype], Any] = {}


def _as_coeff(value: float | torch.Tensor, batch: int, dtype: torch.dtype) -> Any:
    """A per-sample coefficient ``[batch]`` as the kernel's numpy array (read-only for the kernel)."""
    if isinstance(value, torch.Tensor):
        return value.detach().to(dtype=dtype).reshape(batch).contiguous().numpy()
    key = (value, batch, dtype)
    arr = _COEFF_CACHE.get(key)
    if arr is None:
        if len(_COEFF_CACHE) > 64:
            _COEFF_CACHE.clear()
        arr = _COEFF_CACHE[key] = torch.full((batch,), value, dtype=dtype).numpy()
    return arr


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
        unbatched = isinstance(self.synapse, nn.Linear) and x.dim() == lead + 1
        return 1 if unbatched or x.dim() <= lead else x.shape[lead]

    def _take_records(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Pop the recorded ``(in_spike, out_spike)`` pairs, oldest first."""
        ins, outs = self.in_spike_monitor.records, self.out_spike_monitor.records
        n = min(len(ins), len(outs))
        return [(_first(ins.pop(0)), _first(outs.pop(0))) for _ in range(n)]

    def _time_steps(self, records: list[tuple[torch.Tensor, torch.Tensor]]) -> Iterator[tuple[Any, Any]]:
        """Yield one ``(in_spike, out_spike)`` per time step (``'m'`` records are unbound along T)."""
        if self.step_mode not in ("s", "m"):
            raise ValueError(f"step_mode must be 's' or 'm', got {self.step_mode!r}")
        for x, y in records:
            if self.step_mode == "s":
                yield x, y
                continue
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

    def _modulations(self) -> tuple[Modulation, Modulation]:
        weight = self._modules["synapse"].weight.detach()
        return modulation("f_post", self.f_post, weight), modulation("f_pre", self.f_pre, weight)

    def _fast_setup(
        self, g_post: Modulation, g_pre: Modulation, on_grad: bool
    ) -> tuple[Any, torch.Tensor, float | torch.Tensor, float | torch.Tensor] | None:
        """``(kernel, W, G_post, G_pre)`` when the fused CPU kernel can run this step, else ``None``.

        Needs an ``nn.Linear`` synapse with a contiguous float32 / float64 CPU
        weight, modulations that are numbers or the weight itself, traces and
        grad (with ``on_grad``) on the CPU in the weight's dtype.
        """
        kernel = _kernel()
        synapse = self._modules["synapse"]
        if kernel is None or not isinstance(synapse, nn.Linear):
            return None
        w = synapse.weight.detach()
        if w.device.type != "cpu" or w.dtype not in _FAST_DTYPES or not w.is_contiguous():
            return None
        gp, gq = _fast_modulation(g_post, w), _fast_modulation(g_pre, w)
        if gp is None or gq is None:
            return None
        memories = self._memories
        for trace in (memories["trace_pre"], memories["trace_post"]):
            if isinstance(trace, torch.Tensor) and (trace.device.type != "cpu" or trace.dtype != w.dtype):
                return None
        grad = synapse.weight.grad
        if on_grad and grad is not None:
            if (
                grad.layout != torch.strided
                or grad.device.type != "cpu"
                or grad.dtype != w.dtype
                or grad.shape != w.shape
                or not grad.is_contiguous()
                or grad.requires_grad
            ):
                return None
        return kernel, w, gp, gq

    def _fast_target(self, w: torch.Tensor, on_grad: bool) -> torch.Tensor:
        """``weight.grad`` (created as zeros if missing) or a new zero ``delta_w``."""
        if not on_grad:
            return torch.zeros_like(w)
        weight = self._modules["synapse"].weight
        if weight.grad is None:
            with torch.no_grad():
                weight.grad = torch.zeros_like(weight)
        return weight.grad

    def _fast_spikes(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Checked spikes of one step: ``(x, y)`` as recorded and ``[B, n]`` contiguous CPU rows."""
        synapse = self._modules["synapse"]
        x, y = linear_spikes(synapse, x, y)
        if x.device.type != "cpu" or y.device.type != "cpu":
            raise ValueError(
                f"in_spike and out_spike must be on the weight's device (cpu), got {x.device} and {y.device}"
            )
        n_out, n_in = synapse.weight.shape
        return x, y, _rows(x, n_in), _rows(y, n_out)

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
        g_post, g_pre = self._modulations()
        coeff = -scale if on_grad else scale
        fast = self._fast_setup(g_post, g_pre, on_grad)
        if fast is not None:
            return self._fast_step(fast, records, on_grad, coeff)
        terms: list[Term] = []
        for x, y in self._time_steps(records):
            terms.extend(pairing_terms(g_post, g_pre, self._pairing(x, y), coeff))
        return self._finish(terms, on_grad)

    def _fast_step(
        self, fast: tuple, records: list[tuple[torch.Tensor, torch.Tensor]], on_grad: bool, coeff: float
    ) -> torch.Tensor | None:
        """:meth:`step` on the fused CPU kernel: one pass over ``W`` per recorded time step."""
        kernel, w, gp, gq = fast
        target = self._fast_target(w, on_grad)
        memories = self._memories
        tau_pre, tau_post = self.tau_pre, self.tau_post
        for x, y in self._time_steps(records):
            x, y, s_pre, s_post = self._fast_spikes(x, y)
            old_pre = _fast_trace("trace_pre", memories["trace_pre"], x, s_pre)
            old_post = _fast_trace("trace_post", memories["trace_post"], y, s_post)
            a = _as_coeff(coeff, s_pre.shape[0], w.dtype)
            new_pre, new_post = kernel.run(
                target, a, None, gp, gq, s_pre, s_post, old_pre, old_post, tau_pre, tau_post, True
            )
            memories["trace_pre"] = _shaped(new_pre, x.shape)
            memories["trace_post"] = _shaped(new_post, y.shape)
        return None if on_grad else target


def _reward_coeff(reward: object, batch_size: int, coeff: float) -> float | torch.Tensor:
    """``reward * coeff`` as a float or a ``[batch_size]`` tensor; ValueError for other shapes."""
    if isinstance(reward, bool) or not isinstance(reward, (numbers.Real, torch.Tensor)):
        raise TypeError(f"reward must be a float or a tensor, got {type(reward).__name__} {reward!r}")
    if isinstance(reward, numbers.Real):
        return float(reward) * coeff
    if reward.numel() == 1 and reward.dim() <= 1:
        return float(reward.item()) * coeff
    if reward.dim() == 1 and reward.shape[0] == batch_size:
        return reward.detach() * coeff
    raise ValueError(
        f"reward must be a scalar, a 0-d tensor or a tensor of shape [batch_size] = [{batch_size}], "
        f"got shape {tuple(reward.shape)}"
    )


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
        e = dense_delta(g_post, g_pre, p, per_sample=True)
        return e.reshape(p.batch_size, *self.synapse.weight.shape)

    def step(self, reward: Any, on_grad: bool = True, scale: float = 1.0) -> torch.Tensor | None:
        """Consume the records: ``delta_w = scale * Σ reward * eligibility(t-1)`` per time step.

        ``on_grad=True`` adds ``-delta_w`` to ``weight.grad``; ``False`` returns it.
        """
        scale = _check_scale(scale)
        batch = self._peek_batch()
        if batch is None:
            return None
        _reward_coeff(reward, batch, 1.0)
        records = self._take_records()
        weight = self.synapse.weight.detach()
        g_post, g_pre = self._modulations()
        coeff_sign = -scale if on_grad else scale
        fast = self._fast_setup(g_post, g_pre, on_grad)
        if fast is not None and self._fast_state_ok(fast[1]):
            return self._fast_step(fast, records, reward, on_grad, coeff_sign)
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
                terms.extend(pairing_terms(prev_post, prev_pre, prev, coeff))
            state = (g_post, g_pre, p)
        result = self._finish(terms, on_grad)  # uses the previous snapshot; it may be overwritten now
        kept_post = self._snapshot(state[0], weight, "post")
        kept_pre = kept_post if state[1] is state[0] else self._snapshot(state[1], weight, "pre")
        self._eligibility_factors = (kept_post, kept_pre, state[2])
        return result

    def _fast_state_ok(self, w: torch.Tensor) -> bool:
        """Whether the kernel can read the stored eligibility (its modulations are numbers or
        contiguous weight-shaped tensors of the weight's dtype)."""
        state = self._eligibility_factors
        if state is None:
            return True
        for g in state[:2]:
            if isinstance(g, torch.Tensor) and (
                g.shape != w.shape or g.dtype != w.dtype or g.device != w.device or not g.is_contiguous()
            ):
                return False
        p = state[2]
        return all(f.device.type == "cpu" and f.dtype == w.dtype for f in p)

    def _fast_step(
        self,
        fast: tuple,
        records: list[tuple[torch.Tensor, torch.Tensor]],
        reward: Any,
        on_grad: bool,
        coeff_sign: float,
    ) -> torch.Tensor | None:
        """:meth:`step` on the fused CPU kernel.

        Per time step one pass over ``W``: ``delta_w += Σ_n reward[n] e_{t-1}[n]``
        from the stored factors, the exponential trace step, and, when a
        modulation is the weight, a copy of ``W`` into a reused buffer at the
        positions the new eligibility involves (rows of neurons that fired,
        columns of inputs that fired) -- ``f(W)`` of this step, kept for the
        next reward.
        """
        kernel, w, gp, gq = fast
        n_out, n_in = w.shape
        target = self._fast_target(w, on_grad)
        memories = self._memories
        decay_pre, decay_post = math.exp(-1.0 / self.tau_pre), math.exp(-1.0 / self.tau_post)
        snap = None
        if gp is w or gq is w:
            snap = self._snapshot_buffers.get("fast")
            if snap is None or snap.shape != w.shape or snap.dtype != w.dtype:
                snap = self._snapshot_buffers["fast"] = torch.zeros_like(w)
        keep_post = snap if gp is w else gp
        keep_pre = snap if gq is w else gq
        state = memories["_eligibility_factors"]
        for x, y in self._time_steps(records):
            x, y, s_pre, s_post = self._fast_spikes(x, y)
            batch = s_pre.shape[0]
            if state is None:
                factors = kernel.empty_factors(n_out, n_in, w.dtype)
                a = _as_coeff(0.0, 1, w.dtype)
                prev_post, prev_pre = 0.0, 0.0
            else:
                prev_post, prev_pre, prev = state
                if prev.batch_size != batch:
                    raise ValueError(
                        f"the batch size changed from {prev.batch_size} to {batch}; call reset() first"
                    )
                factors = kernel.Factors(*(f.reshape(batch, -1) for f in prev))
                a = _as_coeff(_reward_coeff(reward, batch, coeff_sign), batch, w.dtype)
            old_pre = _fast_trace("trace_pre", memories["trace_pre"], x, s_pre)
            old_post = _fast_trace("trace_post", memories["trace_post"], y, s_post)
            new_pre, new_post = kernel.run(
                target,
                a,
                factors,
                prev_post,
                prev_pre,
                s_pre,
                s_post,
                old_pre,
                old_post,
                decay_pre,
                decay_post,
                False,
                None if snap is None else (snap, w),
            )
            memories["trace_pre"] = _shaped(new_pre, x.shape)
            memories["trace_post"] = _shaped(new_post, y.shape)
            state = (keep_post, keep_pre, linear_pairing(s_pre, s_post, new_pre, new_post))
        memories["_eligibility_factors"] = state
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
        _reward_coeff(reward, batch, 1.0)
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
