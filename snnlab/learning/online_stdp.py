"""Unsupervised online STDP (SPAIC's ``nearest_online_stdp``, ``full_online_stdp``,
``meta_nearest_online_stdp``; Diehl & Cook 2015) for fully connected synapses.

Shapes: per time step the synapse input ``pre`` is ``[N, N_pre]`` and the
post-synaptic spikes ``post`` are ``[N, N_post]`` (larger inputs are flattened
per sample); ``synapse.weight`` is ``[N_post, N_pre]`` (``nn.Linear``).
``Δw`` is summed over the batch. These rules take no reward (a reward passed
to ``step`` / ``update`` is ignored).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from .hooked import HookedLearner
from .registry import register

__all__ = ["FullSTDPLearner", "MetaNearestSTDPLearner", "NearestSTDPLearner"]


def _check_bounds(w_min: float, w_max: float) -> None:
    if w_min > w_max:
        raise ValueError(f"w_min must be <= w_max, got w_min={w_min!r}, w_max={w_max!r}")


def _normalize_rows_(weight: torch.Tensor, w_norm: float) -> None:
    """``w[j] <- w_norm · w[j] / Σ_i |w[j, i]|`` in place; rows with zero sum are left as they are."""
    total = weight.abs().sum(dim=1, keepdim=True)
    weight.mul_(torch.where(total > 0, w_norm / total.clamp_min(torch.finfo(weight.dtype).tiny), 1.0))


class _PairSTDP(HookedLearner):
    """Δw = Apost·postᵀX − Apre·Yᵀpre with the traces ``X`` (input) and ``Y`` (output) of the same step."""

    def _declare_common(self, Apost: float, Apre: float, w_min: float, w_max: float) -> None:
        self._param("Apost", Apost)
        self._param("Apre", Apre)
        self._param("w_min", w_min)
        self._param("w_max", w_max)
        _check_bounds(self.w_min, self.w_max)
        self.register_memory("input_trace", None)
        self.register_memory("output_trace", None)

    def _traces(self, pre: torch.Tensor, post: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return the updated ``(input_trace, output_trace)``; subclasses define the decay."""
        raise NotImplementedError

    def _pair_delta(self, pre: torch.Tensor, post: torch.Tensor, reward: Any) -> torch.Tensor:
        pre, post = self._linear_pair(pre, post)
        x, y = self._traces(pre, post)
        self.input_trace, self.output_trace = x, y
        return self.Apost * (post.t() @ x) - self.Apre * (y.t() @ pre)


class NearestSTDPLearner(_PairSTDP):
    r"""Nearest-spike online STDP, SPAIC's ``nearest_online_stdp``.

    .. math::

        X_t &= s^{pre}_t + (1 - s^{pre}_t) \, \lambda_{pre} X_{t-1}, \qquad
        Y_t = s^{post}_t + (1 - s^{post}_t) \, \lambda_{post} Y_{t-1} \\
        \Delta w_t &= A_{post} \, (s^{post}_t)^\top X_t - A_{pre} \, Y_t^\top s^{pre}_t

    (a binary spike resets its trace to 1; ``λ_pre = trace_pre``,
    ``λ_post = trace_post``). After each :meth:`update` the projection
    normalises every row of the weight to an L1 norm of ``w_norm``
    (``w[j] <- w_norm·w[j]/Σ_i|w[j,i]|``; skipped when ``w_norm`` is ``None``)
    and then clips it to ``[w_min, w_max]``.

    Differences from SPAIC: ``w_norm`` is a parameter (SPAIC hard-codes 78.4);
    the bounds are ``w_min`` / ``w_max``; the two traces may decay at different
    rates (``trace_decay`` sets both, as SPAIC's single parameter); rows whose
    L1 norm is zero are left unchanged instead of becoming NaN. In ``'m'`` mode
    one :meth:`update` adds the Δw of all ``T`` steps, then projects once.
    """

    def __init__(self, step_mode: str, synapse: nn.Module, sn: nn.Module, Apost: float = 1e-2,
                 Apre: float = 1e-4, trace_pre: float = math.exp(-1 / 20),
                 trace_post: float = math.exp(-1 / 20), w_norm: float | None = 78.4,
                 w_min: float = 0.0, w_max: float = 1.0, trace_decay: float | None = None) -> None:
        super().__init__(step_mode, synapse, sn)
        if trace_decay is not None:
            trace_pre = trace_post = trace_decay
        self._declare_common(Apost, Apre, w_min, w_max)
        self._param("trace_pre", trace_pre, low=0.0, high=1.0)
        self._param("trace_post", trace_post, low=0.0, high=1.0)
        self._param("w_norm", w_norm, low=0.0, low_open=True, allow_none=True)

    def _traces(self, pre: torch.Tensor, post: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self._state("input_trace", tuple(pre.shape), pre)
        y = self._state("output_trace", tuple(post.shape), post)
        return pre + (1 - pre) * self.trace_pre * x, post + (1 - post) * self.trace_post * y

    def project_(self) -> None:
        """Row-normalise ``synapse.weight`` to ``w_norm`` (unless ``None``), then clip to the bounds."""
        with torch.no_grad():
            if self.w_norm is not None:
                _normalize_rows_(self.synapse.weight, self.w_norm)
            self.synapse.weight.clamp_(self.w_min, self.w_max)


class FullSTDPLearner(_PairSTDP):
    r"""All-to-all online STDP, SPAIC's ``full_online_stdp``.

    .. math::

        X_t &= \lambda X_{t-1} + s^{pre}_t, \qquad Y_t = \lambda Y_{t-1} + s^{post}_t \\
        \Delta w_t &= A_{post} \, (s^{post}_t)^\top X_t - A_{pre} \, Y_t^\top s^{pre}_t

    with ``λ = trace_decay``. :meth:`update` clips the weight to
    ``[w_min, w_max]``; :meth:`normalize_` (call it when an episode ends) sets
    every row's L1 norm to ``w_norm`` and clips.

    Differences from SPAIC: SPAIC normalises (to a hard-coded 78.4) inside its
    last simulation step, which needs the run length at build time; here the
    caller decides when with :meth:`normalize_`, and ``w_norm`` is a parameter.
    """

    def __init__(self, step_mode: str, synapse: nn.Module, sn: nn.Module, Apost: float = 1e-2,
                 Apre: float = 1e-4, trace_decay: float = math.exp(-1 / 20),
                 w_norm: float | None = None, w_min: float = 0.0, w_max: float = 1.0) -> None:
        super().__init__(step_mode, synapse, sn)
        self._declare_common(Apost, Apre, w_min, w_max)
        self._param("trace_decay", trace_decay, low=0.0, high=1.0)
        self._param("w_norm", w_norm, low=0.0, low_open=True, allow_none=True)

    def _traces(self, pre: torch.Tensor, post: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self._state("input_trace", tuple(pre.shape), pre)
        y = self._state("output_trace", tuple(post.shape), post)
        return self.trace_decay * x + pre, self.trace_decay * y + post

    def project_(self) -> None:
        """Clip ``synapse.weight`` to ``[w_min, w_max]`` in place."""
        with torch.no_grad():
            self.synapse.weight.clamp_(self.w_min, self.w_max)

    def normalize_(self) -> None:
        """Set every row's L1 norm to ``w_norm``, then clip to ``[w_min, w_max]`` (in place)."""
        if self.w_norm is None:
            raise ValueError("w_norm is None; set w_norm to a positive float to normalize")
        with torch.no_grad():
            _normalize_rows_(self.synapse.weight, self.w_norm)
            self.synapse.weight.clamp_(self.w_min, self.w_max)


class MetaNearestSTDPLearner(_PairSTDP):
    r"""Nearest-spike STDP with homeostatic row means, SPAIC's ``meta_nearest_online_stdp``.

    Per time step, with ``W`` the weight before this step's increment and
    ``\bar y`` the batch mean of the output trace:

    .. math::

        X_t &= \lambda_{pre} X_{t-1} [s^{pre}_t \le 0] + s^{pre}_t, \qquad
        Y_t = \lambda_{post} Y_{t-1} [s^{post}_t \le 0] + s^{post}_t \\
        dw &= A_{post} \, (s^{post}_t)^\top X_t - A_{pre} \, Y_t^\top s^{pre}_t \\
        m &\leftarrow m - 0.1 A_{pre} (\bar y_j - \operatorname{mean}(Y_t)), \quad
        m \leftarrow m \cdot \bar m_0 / \operatorname{mean}(m) \qquad (\text{twice}) \\
        c &= [dw < 0] \, e^{-0.2/\max(W - w_{min}, 10^{-4})}
             + [dw > 0] \, e^{-0.2/\max(w_{max} - W, 10^{-4})} \\
        \Delta w_t &= W \Big( \frac{m}{\max(\operatorname{rowmean}(W), 10^{-6})} - 1 \Big) + c \, dw

    so ``W + Δw`` is SPAIC's new weight: the rows are rescaled to the target
    means ``m`` (``[N_post, 1]``) and the soft-bounded ``dw`` is added. ``m`` is
    taken from the row means of the weight at the first step, ``m̄_0`` is its
    mean; the target drift step is applied twice per time step, as SPAIC does.
    Within one :meth:`step` call (several records or ``'m'`` mode) each time step
    sees the weight plus the Δw of the earlier steps; ``scale`` multiplies the
    sum afterwards. There is no extra projection.

    ``reset()`` clears the traces but keeps the homeostatic target ``m`` (as in
    SPAIC, where it outlives a run); :meth:`reset_target` forgets it.
    """

    def __init__(self, step_mode: str, synapse: nn.Module, sn: nn.Module, Apost: float = 1e-2,
                 Apre: float = 1e-4, pre_decay: float = math.exp(-1 / 30),
                 post_decay: float = math.exp(-1 / 200), w_min: float = 0.0, w_max: float = 1.0) -> None:
        super().__init__(step_mode, synapse, sn)
        self._declare_common(Apost, Apre, w_min, w_max)
        self._param("pre_decay", pre_decay, low=0.0, high=1.0)
        self._param("post_decay", post_decay, low=0.0, high=1.0)
        self.register_buffer("w_mean", None, persistent=False)
        self.register_buffer("aw_mean", None, persistent=False)
        self._pending_delta: torch.Tensor | None = None

    def reset_target(self) -> None:
        """Forget the homeostatic row-mean target (re-taken from the weight at the next step)."""
        self.w_mean = None
        self.aw_mean = None

    def _traces(self, pre: torch.Tensor, post: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self._state("input_trace", tuple(pre.shape), pre)
        y = self._state("output_trace", tuple(post.shape), post)
        return self.pre_decay * x * (pre <= 0) + pre, self.post_decay * y * (post <= 0) + post

    def step(self, reward: Any = None, on_grad: bool = True, scale: float = 1.0) -> torch.Tensor | None:
        self._pending_delta = None
        try:
            return super().step(reward, on_grad, scale)
        finally:
            self._pending_delta = None

    def _pair_delta(self, pre: torch.Tensor, post: torch.Tensor, reward: Any) -> torch.Tensor:
        pre, post = self._linear_pair(pre, post)
        weight = self.synapse.weight.detach().to(post.dtype)
        if self._pending_delta is not None:
            weight = weight + self._pending_delta
        if self.w_mean is None:
            self.w_mean = weight.mean(dim=1, keepdim=True).clone()
            self.aw_mean = self.w_mean.mean()
        x, y = self._traces(pre, post)
        self.input_trace, self.output_trace = x, y
        dw = self.Apost * (post.t() @ x) - self.Apre * (y.t() @ pre)
        drift = (0.1 * self.Apre) * (y.mean(0) - y.mean()).unsqueeze(1)
        w_mean = self.w_mean
        for _ in range(2):
            w_mean = w_mean - drift
            w_mean = w_mean * self.aw_mean / w_mean.mean()
        self.w_mean = w_mean
        soft = (dw < 0) * torch.exp(-0.2 / (weight - self.w_min).clamp_min(1e-4)) + (dw > 0) * torch.exp(
            -0.2 / (self.w_max - weight).clamp_min(1e-4)
        )
        rescale = w_mean / weight.mean(dim=1, keepdim=True).clamp_min(1e-6)
        delta = weight * (rescale - 1) + soft * dw
        self._pending_delta = delta if self._pending_delta is None else self._pending_delta + delta
        return delta


register("nearest_online_stdp", NearestSTDPLearner)
register("full_online_stdp", FullSTDPLearner)
register("meta_nearest_online_stdp", MetaNearestSTDPLearner)
