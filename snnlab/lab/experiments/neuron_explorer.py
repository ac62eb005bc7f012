"""NeuronExplorer: one IF / LIF / Izhikevich neuron under a step, ramp or noisy current.

The stimulus is periodic with period ``P = stim_period`` steps; with
``k = t mod P`` and amplitude ``I0 = current``:

* ``'step'``:  ``I[t] = I0`` if ``k >= P / 4`` else ``0`` (off, then on);
* ``'ramp'``:  ``I[t] = I0 * k / (P - 1)`` (rising from 0 to ``I0``);
* ``'noisy'``: ``I[t] = I0 + noise * xi[t]``, ``xi[t] ~ N(0, 1)`` drawn from
  the experiment's generator.

The neuron (:class:`snnlab.neuron.IFNode`, :class:`~snnlab.neuron.LIFNode`
with ``decay_input=True`` or :class:`~snnlab.neuron.IzhikevichNode`) gets
``I[t]`` as its input ``X[t]`` (shape ``[1]``) and follows that module's
equations with hard reset to ``v_reset`` and threshold ``v_threshold``.

Records: raster ``'neuron'`` (size 1), trace ``'membrane'`` (``v`` after
reset; threshold ``v_threshold``), series ``'input'`` (``I[t]``).
:meth:`NeuronExplorer.fi_curve` gives the f-I curve of the current settings.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import param
import torch

from ... import neuron
from ..experiment import Experiment

__all__ = ["NeuronExplorer"]

MODELS = ("LIF", "IF", "Izhikevich")
STIMULI = ("step", "ramp", "noisy")


class NeuronExplorer(Experiment):
    """One neuron under a step, ramp or noisy current; membrane trace, spikes and f-I curve."""

    model = param.Selector(default="LIF", objects=list(MODELS), doc="Neuron model.")
    stimulus = param.Selector(default="step", objects=list(STIMULI), doc="Shape of the input current.")
    current = param.Number(default=1.5, bounds=(0.0, 10.0), doc="Amplitude I0 of the input current.")
    noise = param.Number(default=0.5, bounds=(0.0, 5.0), doc="Standard deviation of the noisy current.")
    stim_period = param.Integer(default=200, bounds=(10, 10_000), doc="Period of the stimulus in steps.")
    tau = param.Number(default=10.0, bounds=(1.01, 200.0), doc="Membrane time constant (steps).")
    v_threshold = param.Number(default=1.0, bounds=(0.1, 5.0), doc="Firing threshold.")
    v_reset = param.Number(default=0.0, bounds=(-5.0, 0.05), doc="Reset potential (below the threshold).")

    def __init__(self, trace_capacity: int = 5000, **params: Any) -> None:
        self._trace_capacity = int(trace_capacity)
        self._model_built: str | None = None
        super().__init__(**params)

    # ------------------------------------------------------------------ construction
    def _make_node(self, model: str) -> neuron.BaseNode:
        if model == "IF":
            return neuron.IFNode(v_threshold=self.v_threshold, v_reset=self.v_reset)
        if model == "LIF":
            return neuron.LIFNode(tau=self.tau, v_threshold=self.v_threshold, v_reset=self.v_reset)
        return neuron.IzhikevichNode(
            tau=self.tau,
            v_threshold=self.v_threshold,
            v_reset=self.v_reset,
            v_rest=-0.1,
            v_c=0.8,
            a0=1.0,
            tau_w=50.0,
            a=0.02,
            b=0.2,
        )

    def build(self) -> None:
        self.node = self.add_module("node", self._make_node(self.model))
        self._model_built = self.model
        self.raster = self.add_raster("neuron", 1, capacity=20_000, label="spikes")
        self.membrane = self.add_trace(
            "membrane", ["v"], capacity=self._trace_capacity, threshold=lambda: self.v_threshold,
            label="membrane potential",
        )  # fmt: skip
        self.input_series = self.add_series("input", capacity=self._trace_capacity, label="input current")

    def apply_params(self) -> None:
        if self.model != self._model_built:
            old = self.node
            self.node = self._make_node(self.model)
            self._modules["node"] = self.node
            self._model_built = self.model
            del old
            self._initial_state["node"] = {k: v.clone() for k, v in self.node.state_dict().items()}
        node = self.node
        # order the writes so that v_threshold > v_reset holds after each one
        if self.v_reset < node.v_threshold:
            node.v_reset = self.v_reset
            node.v_threshold = self.v_threshold
        else:
            node.v_threshold = self.v_threshold
            node.v_reset = self.v_reset
        if hasattr(node, "tau"):
            node.tau = self.tau

    # ------------------------------------------------------------------ stimulus
    def stimulus_at(self, t: int) -> float:
        """The deterministic part of ``I[t]`` (without the noise term)."""
        period = int(self.stim_period)
        k = t % period
        if self.stimulus == "step":
            return float(self.current) if k >= period / 4 else 0.0
        if self.stimulus == "ramp":
            return float(self.current) * k / (period - 1)
        return float(self.current)

    def advance(self) -> None:
        i = self.stimulus_at(self.t)
        x = torch.full((1,), i, dtype=torch.float32)
        if self.stimulus == "noisy":
            x = x + float(self.noise) * torch.randn(1, generator=self.generator)
        spike = self.node(x)
        step = np.array([self.t], dtype=np.int64)
        if spike[0] > 0:
            self.raster.push_step(self.t, np.zeros(1, dtype=np.int32))
        self.membrane.push(steps=step, values=self.node.v.detach().numpy().reshape(1, 1))
        self.input_series.push(steps=step, values=x.numpy().reshape(1))

    # ------------------------------------------------------------------ analysis
    def fi_curve(self, currents: Sequence[float] | np.ndarray, steps: int = 1000) -> np.ndarray:
        """Firing rate (Hz) under each constant current, with the current model and parameters.

        Simulates a fresh neuron per current (vectorised, no noise) for
        ``steps`` steps: ``rate = spikes / (steps * dt / 1000)``. The
        running simulation and its generator are not touched.
        """
        if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
            raise ValueError(f"steps must be an int >= 1, got {steps!r}")
        values = np.asarray(currents, dtype=np.float64).reshape(-1)
        if not np.all(np.isfinite(values)):
            raise ValueError(f"currents must be finite numbers, got {currents!r}")
        with self.lock:
            node = self._make_node(self.model)
        x = torch.as_tensor(values, dtype=torch.float32)
        count = torch.zeros_like(x)
        with torch.no_grad():
            for _ in range(int(steps)):
                count += node(x)
        return count.numpy().astype(np.float64) / (steps * self.dt / 1000.0)

    def theoretical_lif_rate(self, current: float) -> float:
        """Closed-form LIF rate (Hz) of the discrete map for constant ``current`` (``'LIF'`` model).

        With ``decay_input=True`` and ``V_reset``, ``V`` relaxes to ``I`` by
        ``V[t] - I = (1 - 1/tau) (V[t-1] - I)``; the neuron fires at the first
        ``n`` with ``V[n] >= V_th``, so ``n = ceil(log((V_th - I)/(V_reset - I)) /
        log(1 - 1/tau))`` and the rate is ``1000 / (n * dt)`` (0 if ``I <= V_th``).
        """
        i, th, vr, tau = float(current), float(self.v_threshold), float(self.v_reset), float(self.tau)
        if i <= th:
            return 0.0
        n = math.ceil(math.log((th - i) / (vr - i)) / math.log(1.0 - 1.0 / tau) - 1e-9)
        return 1000.0 / (max(n, 1) * self.dt)
