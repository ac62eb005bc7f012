"""STDPLearning: unsupervised STDP on repeated input patterns; weights become receptive fields.

Input: an ``side x side`` grid of Poisson neurons (``n_in = side**2``).
``n_patterns`` fixed binary patterns (bars: horizontal and vertical, two
pixels wide) are presented in random order (experiment generator), each for
``present_steps`` steps followed by ``rest_steps`` of background only.
Pixel ``i`` spikes with probability ``p_on`` (in the pattern) or
``p_off`` (otherwise, and during rest).

Output: ``n_out`` neurons of :class:`WTALIFLayer` (leaky integrators with
adaptive thresholds and winner-take-all lateral inhibition), input current
``X = W s_in`` with ``W`` ``[n_out, n_in]`` (``nn.Linear``, no bias).

Learning: an :class:`snnlab.learning.STDPLearner` (Euler traces) on
``W`` with soft-bound modulations ``f_post(W) = lr (w_max - W)`` and
``f_pre(W) = lr * depression * W``; after each update ``W`` is clipped to
``[0, w_max]`` and every row is rescaled to sum to ``row_sum`` (synaptic
scaling). A winner potentiates the inputs that were just active, the
normalisation takes the weight from the others, and the adaptive
thresholds make every neuron take a turn: rows of ``W`` turn into the
patterns (receptive fields, shape ``(side, side)``).

Records: rasters ``'input'`` and ``'output'``, trace ``'membrane'`` (all
output neurons, with their base threshold), weights ``'weights'``
(``[n_out, n_in]``, receptive-field shape ``(side, side)``), series
``'theta'`` (adaptive threshold per output) and ``'pattern'`` (index of the
pattern shown, ``-1`` at rest).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import param
import torch
from torch import nn

from ... import encoding
from ...base import MemoryModule
from ...learning import STDPLearner
from ..experiment import Experiment

__all__ = ["STDPLearning", "WTALIFLayer", "bar_patterns"]


def bar_patterns(side: int, n_patterns: int) -> torch.Tensor:
    """``n_patterns`` bar patterns on a ``side x side`` grid, ``[n_patterns, side * side]`` of 0/1.

    Horizontal and vertical bars, two pixels wide, spread evenly over the grid
    (alternating orientation).
    """
    if side < 2:
        raise ValueError(f"side must be >= 2, got {side!r}")
    n_h = (n_patterns + 1) // 2
    n_v = n_patterns // 2
    out = []

    def positions(k: int) -> list[int]:
        return [round((i + 0.5) * side / k - 1) for i in range(k)] if k else []

    rows, cols = positions(n_h), positions(n_v)
    for i in range(n_patterns):
        img = torch.zeros(side, side)
        if i % 2 == 0:
            r = min(max(rows[i // 2], 0), side - 2)
            img[r : r + 2, :] = 1.0
        else:
            c = min(max(cols[i // 2], 0), side - 2)
            img[:, c : c + 2] = 1.0
        out.append(img.reshape(-1))
    return torch.stack(out)


class WTALIFLayer(MemoryModule):
    """Leaky integrators with adaptive thresholds and winner-take-all inhibition.

    For input ``X[t]`` (``[n]``), memories ``v`` and ``theta`` (``[n]``):

        H = V + (V_rest - V) / tau + X
        candidates: H_j >= v_threshold + theta_j
        winner j* = argmax_j (H_j - v_threshold - theta_j) over candidates (at most one spike)
        V = v_reset for every neuron if there is a winner (lateral inhibition), else H
        theta = theta * (1 - 1 / tau_theta) + theta_plus * S

    Output: spikes ``S`` (``[n]``, one-hot or zero).
    """

    def __init__(
        self,
        n: int,
        tau: float = 10.0,
        v_threshold: float = 1.0,
        v_reset: float = 0.0,
        v_rest: float = 0.0,
        tau_theta: float = 2000.0,
        theta_plus: float = 0.05,
    ) -> None:
        super().__init__()
        self.n = int(n)
        self.tau = float(tau)
        self.v_threshold = float(v_threshold)
        self.v_reset = float(v_reset)
        self.v_rest = float(v_rest)
        self.tau_theta = float(tau_theta)
        self.theta_plus = float(theta_plus)
        self.register_memory("v", torch.full((self.n,), float(v_reset)))
        self.register_memory("theta", torch.zeros(self.n))

    def single_step_forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.v + (self.v_rest - self.v) / self.tau + x
        margin = h - self.v_threshold - self.theta
        spike = torch.zeros_like(h)
        best = int(torch.argmax(margin))
        if margin[best] >= 0:
            spike[best] = 1.0
            self.v = torch.full_like(h, self.v_reset)
        else:
            self.v = h
        self.theta = self.theta * (1.0 - 1.0 / self.tau_theta) + self.theta_plus * spike
        return spike


class STDPLearning(Experiment):
    """Unsupervised STDP with winner-take-all and adaptive thresholds on repeated bar patterns."""

    learning_rate = param.Number(default=0.02, bounds=(0.0, 1.0), doc="STDP learning rate lr.")
    depression = param.Number(
        default=0.5, bounds=(0.0, 5.0), doc="Depression-to-potentiation ratio of the STDP rule."
    )
    p_on = param.Number(default=0.3, bounds=(0.0, 1.0), doc="Spike probability of a pattern pixel per step.")
    p_off = param.Number(default=0.01, bounds=(0.0, 1.0), doc="Spike probability of a background pixel.")
    tau = param.Number(default=10.0, bounds=(1.01, 200.0), doc="Membrane time constant (steps).")
    v_threshold = param.Number(default=1.0, bounds=(0.1, 10.0), doc="Base firing threshold.")
    theta_plus = param.Number(default=0.05, bounds=(0.0, 5.0), doc="Threshold increase per spike.")
    tau_theta = param.Number(
        default=2000.0, bounds=(1.01, 100_000.0), doc="Threshold decay constant (steps)."
    )
    tau_pre = param.Number(
        default=10.0, bounds=(1.01, 200.0), doc="Pre-synaptic trace time constant (steps)."
    )
    tau_post = param.Number(default=10.0, bounds=(1.01, 200.0), doc="Post-synaptic trace time constant.")

    def __init__(
        self,
        side: int = 8,
        n_out: int = 4,
        n_patterns: int = 4,
        present_steps: int = 40,
        rest_steps: int = 10,
        w_max: float = 1.0,
        trace_capacity: int = 2000,
        **params: Any,
    ) -> None:
        for name, value, low in (
            ("side", side, 2), ("n_out", n_out, 1), ("n_patterns", n_patterns, 1),
            ("present_steps", present_steps, 1), ("rest_steps", rest_steps, 0),
        ):  # fmt: skip
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
                raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
        if not w_max > 0:
            raise ValueError(f"w_max must be > 0, got {w_max!r}")
        self.side = int(side)
        self.n_in = self.side * self.side
        self.n_out = int(n_out)
        self.n_patterns = int(n_patterns)
        self.present_steps = int(present_steps)
        self.rest_steps = int(rest_steps)
        self.w_max = float(w_max)
        self.row_sum = 4.0 * self.side * self.w_max / 2.0  # a two-pixel bar at w_max / 2
        self._trace_capacity = int(trace_capacity)
        super().__init__(**params)

    # ------------------------------------------------------------------ construction
    def build(self) -> None:
        self.patterns = bar_patterns(self.side, self.n_patterns)
        init = torch.Generator().manual_seed(int(self.seed) + 1)
        self.synapse = self.add_module("synapse", nn.Linear(self.n_in, self.n_out, bias=False))
        with torch.no_grad():
            self.synapse.weight.copy_(0.5 + torch.rand(self.n_out, self.n_in, generator=init))
            self._normalise()
        self.layer = self.add_module("layer", WTALIFLayer(self.n_out))
        self.learner = STDPLearner(
            "s", self.synapse, self.layer, self.tau_pre, self.tau_post,
            f_pre=self._f_pre, f_post=self._f_post,
        )  # fmt: skip
        self.add_module("learner", self.learner)
        self.encoder = encoding.PoissonEncoder(generator=self.generator)
        self.in_raster = self.add_raster("input", self.n_in, capacity=100_000, label="input pixels")
        self.out_raster = self.add_raster("output", self.n_out, capacity=20_000, label="output neurons")
        self.membrane = self.add_trace(
            "membrane", [f"v[{j}]" for j in range(self.n_out)], capacity=self._trace_capacity,
            threshold=lambda: self.v_threshold, label="membrane potential",
        )  # fmt: skip
        self.add_weights(
            "weights", lambda: self.synapse.weight, rf_shape=(self.side, self.side),
            vmin=0.0, vmax=self.w_max, snapshot_every=200, label="receptive fields",
        )  # fmt: skip
        self.theta_series = self.add_series(
            "theta", [f"theta[{j}]" for j in range(self.n_out)], capacity=self._trace_capacity,
            label="adaptive threshold",
        )  # fmt: skip
        self.pattern_series = self.add_series("pattern", capacity=self._trace_capacity, label="pattern shown")
        self.on_reset()

    def _f_post(self, w: torch.Tensor) -> torch.Tensor:
        return float(self.learning_rate) * (self.w_max - w)

    def _f_pre(self, w: torch.Tensor) -> torch.Tensor:
        return float(self.learning_rate) * float(self.depression) * w

    def _normalise(self) -> None:
        w = self.synapse.weight
        w.clamp_(0.0, self.w_max)
        w.mul_(self.row_sum / w.sum(1, keepdim=True).clamp_min(1e-12))
        w.clamp_(0.0, self.w_max)

    def apply_params(self) -> None:
        layer = self.layer
        layer.tau = float(self.tau)
        layer.v_threshold = float(self.v_threshold)
        layer.theta_plus = float(self.theta_plus)
        layer.tau_theta = float(self.tau_theta)
        self.learner.tau_pre = float(self.tau_pre)
        self.learner.tau_post = float(self.tau_post)

    def on_reset(self) -> None:
        self._pattern = -1
        self._phase = 0

    # ------------------------------------------------------------------ stepping
    def _next_pattern(self) -> None:
        """Advance the presentation schedule; ``self._pattern`` is the pattern of this step or -1."""
        cycle = self.present_steps + self.rest_steps
        if self._phase == 0:
            self._pattern = int(torch.randint(self.n_patterns, (1,), generator=self.generator).item())
        elif self._phase == self.present_steps:
            self._pattern = -1
            self.layer.v = torch.full_like(self.layer.v, self.layer.v_reset)
        self._phase = (self._phase + 1) % cycle

    def advance(self) -> None:
        self._next_pattern()
        p = torch.full((self.n_in,), float(self.p_off))
        if self._pattern >= 0:
            p = torch.where(self.patterns[self._pattern] > 0, torch.tensor(float(self.p_on)), p)
        s_in = self.encoder(p)
        s_out = self.layer(self.synapse(s_in))
        delta = self.learner.step(on_grad=False)
        t = self.t
        if delta is not None and float(self.learning_rate) > 0 and bool(delta.any()):
            self.synapse.weight.add_(delta)
            self._normalise()
            self.weights_changed("weights")
        self.in_raster.push_step(t, torch.nonzero(s_in).flatten().numpy())
        self.out_raster.push_step(t, torch.nonzero(s_out).flatten().numpy())
        step = np.array([t], dtype=np.int64)
        self.membrane.push(steps=step, values=self.layer.v.numpy()[None])
        self.theta_series.push(steps=step, values=self.layer.theta.numpy()[None])
        self.pattern_series.push(steps=step, values=np.array([self._pattern], dtype=np.float32))

    # ------------------------------------------------------------------ analysis
    def receptive_fields(self) -> np.ndarray:
        """Current weights as images, ``[n_out, side, side]``."""
        with self.lock:
            return self.synapse.weight.detach().numpy().reshape(self.n_out, self.side, self.side).copy()

    def pattern_match(self) -> np.ndarray:
        """Cosine similarity of every receptive field with every pattern, ``[n_out, n_patterns]``."""
        with self.lock:
            w = self.synapse.weight.detach()
            wn = w / w.norm(dim=1, keepdim=True).clamp_min(1e-12)
            pn = self.patterns / self.patterns.norm(dim=1, keepdim=True)
            return (wn @ pn.T).numpy()

    def extra_state(self) -> dict[str, Any]:
        return {"pattern": self._pattern, "phase": self._phase}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self._pattern = int(state["pattern"])
        self._phase = int(state["phase"])
