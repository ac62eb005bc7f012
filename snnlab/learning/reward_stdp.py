"""Reward-modulated STDP (SPAIC's ``rstdp``, ``rstdpet``, ``switch_rstdp``) for fully connected synapses.

Shapes: per time step the synapse input ``pre`` is ``[N, N_pre]`` and the
post-synaptic spikes ``post`` are ``[N, N_post]`` (larger inputs are flattened
per sample); ``synapse.weight`` is ``[N_post, N_pre]`` (``nn.Linear``). The
reward is a number, a 0-d tensor, ``[N]`` (per sample), ``[N_post]`` (per
post-synaptic neuron) or ``[N, N_post]``; see
:meth:`~snnlab.learning.hooked.HookedLearner.reward_tensor`.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from .hooked import HookedLearner
from .registry import register

__all__ = ["RSTDPETLearner", "RSTDPLearner", "RewardSwitchSTDPLearner"]


def _expand_reward(r: torch.Tensor, batch: int, n_post: int) -> torch.Tensor:
    """A reward from ``reward_tensor`` as a full ``[batch, n_post]`` tensor."""
    return r.expand(batch, n_post) if r.dim() else r.reshape(1, 1).expand(batch, n_post)


class _RewardTraces(HookedLearner):
    """Shared trace bookkeeping of the Florian (2007) rules.

    ``p_plus = exp(-dt/tau_plus)·p_plus + A_plus·pre`` (``[N, N_pre]``) and
    ``p_minus = exp(-dt/tau_minus)·p_minus + A_minus·post`` (``[N, N_post]``).
    """

    def _declare_common(self, lr: float, tau_plus: float, tau_minus: float, A_plus: float,
                        A_minus: float, dt: float) -> None:
        self._param("lr", lr, low=0.0)
        self._param("tau_plus", tau_plus, low=0.0, low_open=True)
        self._param("tau_minus", tau_minus, low=0.0, low_open=True)
        self._param("A_plus", A_plus)
        self._param("A_minus", A_minus)
        self._param("dt", dt, low=0.0, low_open=True)
        self.register_memory("p_plus", None)
        self.register_memory("p_minus", None)

    def _advance_traces(self, pre: torch.Tensor, post: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        p_plus = self._state("p_plus", tuple(pre.shape), pre)
        p_minus = self._state("p_minus", tuple(post.shape), post)
        self.p_plus = math.exp(-self.dt / self.tau_plus) * p_plus + self.A_plus * pre
        self.p_minus = math.exp(-self.dt / self.tau_minus) * p_minus + self.A_minus * post
        return self.p_plus, self.p_minus


class RSTDPLearner(_RewardTraces):
    r"""Reward-modulated STDP (Florian 2007), SPAIC's ``rstdp``.

    Per time step ``t`` (traces first, then the eligibility that uses them):

    .. math::

        p^+_t &= e^{-dt/\tau_+} p^+_{t-1} + A_+ \, s^{pre}_t \\
        p^-_t &= e^{-dt/\tau_-} p^-_{t-1} + A_- \, s^{post}_t \\
        e_t &= \sum_n \big( s^{post}_{t,n} \otimes p^+_{t,n} + p^-_{t,n} \otimes s^{pre}_{t,n} \big) \\
        \Delta w_t &= lr \cdot r_t \cdot e_{t-1}

    The reward given with time step ``t`` multiplies the eligibility of step
    ``t-1`` (the first step after :meth:`reset` yields zero), as SPAIC does. A
    per-sample reward weights each sample's eligibility before the batch sum; a
    per-neuron reward ``[N_post]`` weights row ``j`` of ``e``. With the default
    ``A_minus < 0``, pre-before-post potentiates and post-before-pre depresses
    (for a positive reward).

    Shapes: ``pre`` ``[N, N_pre]``, ``post`` ``[N, N_post]``, ``e`` and ``Δw``
    ``[N_post, N_pre]``. State: ``p_plus``, ``p_minus`` and the last step's
    spikes (from which :attr:`eligibility` is formed, so a per-sample reward
    costs no ``[N, N_post, N_pre]`` storage).

    Differences from SPAIC: ``A_plus`` / ``A_minus`` are scalars; ``dt`` is a
    parameter instead of the simulator's; the reward is required (``ValueError``
    when ``None``).
    """

    def __init__(self, step_mode: str, synapse: nn.Module, sn: nn.Module, lr: float = 0.1,
                 tau_plus: float = 20.0, tau_minus: float = 20.0, A_plus: float = 1.0,
                 A_minus: float = -1.0, dt: float = 1.0) -> None:
        super().__init__(step_mode, synapse, sn)
        self._declare_common(lr, tau_plus, tau_minus, A_plus, A_minus, dt)
        self.register_memory("last_pre", None)
        self.register_memory("last_post", None)

    @property
    def eligibility(self) -> torch.Tensor | None:
        """``e`` of the latest step, ``[N_post, N_pre]`` (``None`` before the first step)."""
        if self.last_post is None:
            return None
        return self.last_post.t() @ self.p_plus + self.p_minus.t() @ self.last_pre

    def _pair_delta(self, pre: torch.Tensor, post: torch.Tensor, reward: Any) -> torch.Tensor | None:
        pre, post = self._linear_pair(pre, post)
        batch, n_post = post.shape
        r = self.reward_tensor(reward, batch=batch, n_post=n_post, like=post)
        delta = None
        if self.last_post is not None:
            last_post = self._state("last_post", tuple(post.shape), post)
            last_pre = self._state("last_pre", tuple(pre.shape), pre)
            delta = self.lr * ((r * last_post).t() @ self.p_plus + (r * self.p_minus).t() @ last_pre)
        self._advance_traces(pre, post)
        self.last_pre, self.last_post = pre, post
        return delta


class RSTDPETLearner(_RewardTraces):
    r"""Reward-modulated STDP with an eligibility trace (Florian 2007), SPAIC's ``rstdpet``.

    Per time step ``t``, with traces ``p^\pm`` as in :class:`RSTDPLearner` and
    per sample ``n``:

    .. math::

        e_{t,n} &= s^{post}_{t,n} \otimes p^+_{t,n} + p^-_{t,n} \otimes s^{pre}_{t,n} \\
        E_{t,n} &= e^{-dt/\tau_{e,trace}} E_{t-1,n} + \frac{dt}{\tau_e} e_{t,n} \\
        \Delta w_t &= lr \cdot dt \cdot \sum_n r_{t,n} \, E_{t-1,n}

    The reward of step ``t`` multiplies the eligibility trace of step ``t-1``
    (zero on the first step after :meth:`reset`).

    Shapes: ``eligibility_trace`` is ``[N, N_post, N_pre]`` (one per sample, so
    a per-sample reward is exact); :attr:`eligibility` holds the batch sum of
    ``e_t`` (``[N_post, N_pre]``). ``Δw`` is ``[N_post, N_pre]``.

    Difference from SPAIC: batch > 1 is supported (SPAIC requires batch 1).
    """

    def __init__(self, step_mode: str, synapse: nn.Module, sn: nn.Module, lr: float = 0.1,
                 tau_plus: float = 20.0, tau_minus: float = 20.0, tau_e_trace: float = 25.0,
                 tau_e: float = 25.0, A_plus: float = 1.0, A_minus: float = -1.0,
                 dt: float = 1.0) -> None:
        super().__init__(step_mode, synapse, sn)
        self._declare_common(lr, tau_plus, tau_minus, A_plus, A_minus, dt)
        self._param("tau_e_trace", tau_e_trace, low=0.0, low_open=True)
        self._param("tau_e", tau_e, low=0.0, low_open=True)
        self.register_memory("eligibility", None)
        self.register_memory("eligibility_trace", None)

    def _pair_delta(self, pre: torch.Tensor, post: torch.Tensor, reward: Any) -> torch.Tensor | None:
        pre, post = self._linear_pair(pre, post)
        batch, n_post = post.shape
        r = self.reward_tensor(reward, batch=batch, n_post=n_post, like=post)
        shape = (batch, n_post, pre.shape[1])
        delta = None
        if self.eligibility_trace is not None:
            trace = self._state("eligibility_trace", shape, post)
            r_full = _expand_reward(r, batch, n_post)
            delta = (self.lr * self.dt) * torch.einsum("np,npi->pi", r_full, trace)
        p_plus, p_minus = self._advance_traces(pre, post)
        e = post.unsqueeze(2) * p_plus.unsqueeze(1) + p_minus.unsqueeze(2) * pre.unsqueeze(1)
        trace = self._state("eligibility_trace", shape, post)
        self.eligibility_trace = math.exp(-self.dt / self.tau_e_trace) * trace + (self.dt / self.tau_e) * e
        self.eligibility = e.sum(0)
        return delta


class RewardSwitchSTDPLearner(HookedLearner):
    r"""STDP whose amplitudes switch with the sign of the reward, SPAIC's ``switch_rstdp``.

    Nearest-spike traces (a spike sets the trace to the spike value), then the
    pairing of the same step, with amplitudes picked by the reward of that step:

    .. math::

        x_t &= \lambda_{pre} \, x_{t-1} [s^{pre}_t \le 0] + s^{pre}_t \qquad
        y_t = \lambda_{post} \, y_{t-1} [s^{post}_t \le 0] + s^{post}_t \\
        A_{post} &= A_{post}^{pos} \text{ if } r_t > 0 \text{ else } A_{post}^{neg}, \quad
        A_{pre} = A_{pre}^{pos} \text{ if } r_t > 0 \text{ else } A_{pre}^{neg} \\
        \Delta w_t &= \frac{1}{N} \sum_n \big( (A_{post} s^{post}_{t,n}) \otimes x_{t,n}
                      + (A_{pre} y_{t,n}) \otimes s^{pre}_{t,n} \big)

    ``Δw`` is averaged over the batch; :meth:`update` then clips the weight to
    ``[w_min, w_max]``. A per-sample or per-neuron reward picks the amplitudes per
    sample / per post-synaptic neuron.

    Differences from SPAIC: the clip uses ``w_min`` / ``w_max`` (SPAIC clips to
    ``[0, 0.1]`` whatever they are, hence the default ``w_max=0.1`` here); the
    unused ``lr``, ``m_rate`` and ``homoestatic`` parameters are not taken.
    """

    def __init__(self, step_mode: str, synapse: nn.Module, sn: nn.Module, Apost_pos: float = 5e-3,
                 Apre_pos: float = -4e-3, Apost_neg: float = -5e-3, Apre_neg: float = 4e-3,
                 pre_decay: float = math.exp(-1 / 20), post_decay: float = math.exp(-1 / 20),
                 w_min: float = 0.0, w_max: float = 0.1) -> None:
        super().__init__(step_mode, synapse, sn)
        for name, value in (("Apost_pos", Apost_pos), ("Apre_pos", Apre_pos),
                            ("Apost_neg", Apost_neg), ("Apre_neg", Apre_neg)):
            self._param(name, value)
        self._param("pre_decay", pre_decay, low=0.0, high=1.0)
        self._param("post_decay", post_decay, low=0.0, high=1.0)
        self._param("w_min", w_min)
        self._param("w_max", w_max)
        if self.w_min > self.w_max:
            raise ValueError(f"w_min must be <= w_max, got w_min={self.w_min!r}, w_max={self.w_max!r}")
        self.register_memory("input_trace", None)
        self.register_memory("output_trace", None)

    def _pair_delta(self, pre: torch.Tensor, post: torch.Tensor, reward: Any) -> torch.Tensor:
        pre, post = self._linear_pair(pre, post)
        batch, n_post = post.shape
        r = self.reward_tensor(reward, batch=batch, n_post=n_post, like=post)
        x = self._state("input_trace", tuple(pre.shape), pre)
        y = self._state("output_trace", tuple(post.shape), post)
        x = self.pre_decay * x * (pre <= 0) + pre
        y = self.post_decay * y * (post <= 0) + post
        self.input_trace, self.output_trace = x, y
        positive = r > 0
        def pick(if_pos: float, if_not: float) -> torch.Tensor:
            values = torch.tensor([if_not, if_pos], dtype=post.dtype, device=post.device)
            return values[positive.long()]

        a_post = pick(self.Apost_pos, self.Apost_neg)
        a_pre = pick(self.Apre_pos, self.Apre_neg)
        return ((a_post * post).t() @ x + (a_pre * y).t() @ pre) / batch

    def project_(self) -> None:
        """Clip ``synapse.weight`` to ``[w_min, w_max]`` in place."""
        with torch.no_grad():
            self.synapse.weight.clamp_(self.w_min, self.w_max)


register("rstdp", RSTDPLearner)
register("rstdpet", RSTDPETLearner)
register("switch_rstdp", RewardSwitchSTDPLearner)
