"""RewardLearning: reward-modulated STDP (mSTDP or mSTDP-ET) teaches a target neuron to win.

``n_in`` Poisson inputs (probability ``input_rate * dt / 1000`` per step)
drive ``n_out`` :class:`snnlab.neuron.LIFNode` outputs through
``W`` (``nn.Linear(n_in, n_out)``, no bias). Two learners watch ``W``: an
:class:`snnlab.learning.MSTDPLearner` and an
:class:`snnlab.learning.MSTDPETLearner` (both with constant modulations
``f_post = A+ = 1``, ``f_pre = A- = a_minus``); ``rule`` picks the one
that records and learns (the other is disabled; a switch starts the new
rule with cleared traces). Each step ``t``:

    r[t] = manual[t] + (auto[t] if auto_reward)
    auto[t] = +1 if only the target spiked at t-1, -1 if only other outputs
              spiked at t-1, 0 otherwise
    W <- clip(W + learning_rate * delta_w(r[t]), 0, w_max)

where ``delta_w`` is the chosen learner's ``step(r[t], on_grad=False)``
(mSTDP: ``r * eligibility(t-1)``; mSTDP-ET: ``r * trace_e``) and
``manual[t]`` is the sum of :meth:`RewardLearning.give_reward` calls since
the previous step. The neuron that fires most is the *winner*.

Records: rasters ``'input'`` and ``'output'``, trace ``'membrane'`` (the
outputs), weights ``'weights'`` (``[n_out, n_in]``), series ``'reward'``
(``r[t]``), ``'eligibility'`` (mean eligibility of each output's row of the
applied rule), ``'output_rate'`` (exponential moving average, time constant
100 steps, of each output's rate in Hz).
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np
import param
import torch
from torch import nn

from ... import encoding, neuron
from ...learning import MSTDPETLearner, MSTDPLearner
from ..experiment import Experiment

__all__ = ["RewardLearning"]

RATE_TAU = 100.0
MAX_REWARD = 10.0


class RewardLearning(Experiment):
    """Poisson inputs -> LIF outputs; +1 / -1 rewards (buttons or automatic) make the target win."""

    rule = param.Selector(default="mstdp", objects=["mstdp", "mstdp_et"], doc="Reward-modulated rule.")
    auto_reward = param.Boolean(default=True, doc="Reward +1 / -1 automatically from the output spikes.")
    target = param.Integer(default=0, bounds=(0, 3), doc="Index of the output neuron that should win.")
    learning_rate = param.Number(default=0.05, bounds=(0.0, 1.0), doc="Scale of the weight updates.")
    a_minus = param.Number(default=1.05, bounds=(0.0, 5.0), doc="Depression amplitude relative to A+ = 1.")
    tau_pre = param.Number(
        default=20.0, bounds=(1.01, 200.0), doc="Pre-synaptic trace time constant (steps)."
    )
    tau_post = param.Number(default=20.0, bounds=(1.01, 200.0), doc="Post-synaptic trace time constant.")
    tau_trace = param.Number(default=5.0, bounds=(1.01, 1000.0), doc="Eligibility trace time constant (ET).")
    input_rate = param.Number(default=50.0, bounds=(0.0, 500.0), doc="Input Poisson rate (Hz).")
    tau = param.Number(default=10.0, bounds=(1.01, 200.0), doc="Membrane time constant (steps).")
    v_threshold = param.Number(default=1.0, bounds=(0.1, 5.0), doc="Firing threshold.")

    def __init__(
        self,
        n_in: int = 20,
        n_out: int = 4,
        w_max: float = 1.0,
        trace_capacity: int = 2000,
        **params: Any,
    ) -> None:
        for name, value in (("n_in", n_in), ("n_out", n_out)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        if n_out < 2:
            raise ValueError(f"n_out must be >= 2 (a target and a competitor), got {n_out!r}")
        self.n_in = int(n_in)
        self.n_out = int(n_out)
        self.w_max = float(w_max)
        self._trace_capacity = int(trace_capacity)
        target = params.get("target", 0)
        if isinstance(target, (int, np.integer)) and not isinstance(target, bool) and not 0 <= target < n_out:
            raise ValueError(f"target must be an output index in [0, {n_out - 1}], got {target!r}")
        super().__init__(**params)
        self.param.target.bounds = (0, self.n_out - 1)

    # ------------------------------------------------------------------ construction
    def build(self) -> None:
        init = torch.Generator().manual_seed(int(self.seed) + 1)
        self.synapse = self.add_module("synapse", nn.Linear(self.n_in, self.n_out, bias=False))
        with torch.no_grad():
            self.synapse.weight.copy_(
                self.w_max * (0.3 + 0.4 * torch.rand(self.n_out, self.n_in, generator=init))
            )
        self.out = self.add_module("out", neuron.LIFNode(tau=self.tau, decay_input=False))
        self.mstdp = MSTDPLearner(
            "s", 1, self.synapse, self.out, self.tau_pre, self.tau_post,
            f_pre=self._f_pre, f_post=self._f_post,
        )  # fmt: skip
        self.mstdp_et = MSTDPETLearner(
            "s", self.synapse, self.out, self.tau_pre, self.tau_post, self.tau_trace,
            f_pre=self._f_pre, f_post=self._f_post,
        )  # fmt: skip
        self.add_module("mstdp", self.mstdp)
        self.add_module("mstdp_et", self.mstdp_et)
        self._active_rule = ""
        self.encoder = encoding.PoissonEncoder(generator=self.generator)
        self.in_raster = self.add_raster("input", self.n_in, capacity=100_000, label="inputs")
        self.out_raster = self.add_raster("output", self.n_out, capacity=50_000, label="outputs")
        self.membrane = self.add_trace(
            "membrane", [f"v[{j}]" for j in range(self.n_out)], capacity=self._trace_capacity,
            threshold=lambda: self.v_threshold, label="membrane potential",
        )  # fmt: skip
        self.add_weights(
            "weights", lambda: self.synapse.weight, vmin=0.0, vmax=self.w_max, snapshot_every=200,
            label="weights (output x input)",
        )  # fmt: skip
        self.reward_series = self.add_series("reward", capacity=self._trace_capacity, label="reward")
        self.elig_series = self.add_series(
            "eligibility", [f"e[{j}]" for j in range(self.n_out)], capacity=self._trace_capacity,
            label="eligibility (row mean)",
        )  # fmt: skip
        self.rate_series = self.add_series(
            "output_rate", [f"rate[{j}]" for j in range(self.n_out)], capacity=self._trace_capacity,
            label="output rate (Hz)",
        )  # fmt: skip
        self.on_reset()

    def _f_post(self, w: torch.Tensor) -> float:
        return 1.0

    def _f_pre(self, w: torch.Tensor) -> float:
        return float(self.a_minus)

    def apply_params(self) -> None:
        self.out.tau = float(self.tau)
        self.out.v_threshold = float(self.v_threshold)
        for learner in (self.mstdp, self.mstdp_et):
            learner.tau_pre = float(self.tau_pre)
            learner.tau_post = float(self.tau_post)
        self.mstdp_et.tau_trace = float(self.tau_trace)
        if self.rule != self._active_rule:
            active, idle = self._learners()
            idle.disable()
            idle.reset()
            active.reset()
            active.enable()
            self._active_rule = self.rule
        self._p = min(1.0, float(self.input_rate) * self.dt / 1000.0)

    def _learners(self) -> tuple[MSTDPLearner | MSTDPETLearner, MSTDPLearner | MSTDPETLearner]:
        """``(active, idle)`` learners for the current ``rule``."""
        if self.rule == "mstdp":
            return self.mstdp, self.mstdp_et
        return self.mstdp_et, self.mstdp

    def on_reset(self) -> None:
        self._pending = 0.0
        self._last_out = torch.zeros(self.n_out)
        self._rate = torch.zeros(self.n_out)

    # ------------------------------------------------------------------ reward
    def give_reward(self, value: float) -> None:
        """Deliver ``value`` (e.g. +1 or -1) as reward at the next step (calls add up).

        Raises ``TypeError`` for a non-number and ``ValueError`` for a
        non-finite value or one outside ``[-10, 10]``.
        """
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(f"value must be a real number in [-10, 10], got {type(value).__name__} {value!r}")
        value = float(value)
        if not math.isfinite(value) or abs(value) > MAX_REWARD:
            raise ValueError(f"value must be a finite number in [-10, 10], got {value!r}")
        with self.lock:
            self._pending += value

    def auto_reward_value(self, out_spikes: torch.Tensor) -> float:
        """``+1`` if only the target spiked, ``-1`` if only others spiked, else ``0``."""
        target_fired = bool(out_spikes[int(self.target)] > 0)
        others = float(out_spikes.sum()) - (1.0 if target_fired else 0.0)
        if target_fired and others == 0:
            return 1.0
        if not target_fired and others > 0:
            return -1.0
        return 0.0

    # ------------------------------------------------------------------ stepping
    def advance(self) -> None:
        s_in = self.encoder(torch.full((self.n_in,), self._p))
        s_out = self.out(self.synapse(s_in))
        reward = self._pending
        self._pending = 0.0
        if self.auto_reward:
            reward += self.auto_reward_value(self._last_out)
        delta = self._learners()[0].step(reward, on_grad=False)
        lr = float(self.learning_rate)
        if delta is not None and lr > 0 and reward != 0 and bool(delta.any()):
            w = self.synapse.weight
            w.add_(delta, alpha=lr).clamp_(0.0, self.w_max)
            self.weights_changed("weights")
        self._last_out = s_out.detach().clone()
        self._rate = self._rate + (s_out * (1000.0 / self.dt) - self._rate) / RATE_TAU
        t = self.t
        step = np.array([t], dtype=np.int64)
        self.in_raster.push_step(t, torch.nonzero(s_in).flatten().numpy())
        self.out_raster.push_step(t, torch.nonzero(s_out).flatten().numpy())
        self.membrane.push(steps=step, values=self.out.v.numpy()[None])
        self.reward_series.push(steps=step, values=np.array([reward], dtype=np.float32))
        self.elig_series.push(steps=step, values=self._eligibility_rows()[None])
        self.rate_series.push(steps=step, values=self._rate.numpy()[None])

    def _eligibility_rows(self) -> np.ndarray:
        if self.rule == "mstdp":
            e = self.mstdp.eligibility
        else:
            e = self.mstdp_et.trace_e
        if e is None:
            return np.zeros(self.n_out, dtype=np.float32)
        return e.reshape(-1, self.n_out, self.n_in).sum(0).mean(1).numpy().astype(np.float32)

    # ------------------------------------------------------------------ analysis
    def output_rates(self) -> np.ndarray:
        """Current moving-average output rates (Hz), ``[n_out]``."""
        with self.lock:
            return self._rate.numpy().copy()

    def winner(self) -> int:
        """Index of the output with the highest moving-average rate."""
        return int(np.argmax(self.output_rates()))

    def extra_state(self) -> dict[str, Any]:
        return {"pending": self._pending, "last_out": self._last_out, "rate": self._rate}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self._pending = float(state["pending"])
        self._last_out = state["last_out"].clone()
        self._rate = state["rate"].clone()
