"""STDPWindow: a pre/post pairing protocol that measures the STDP window of a running learner.

One synapse ``nn.Linear(1, 1)`` (weight ``w0 = 0.5``) is watched by an
:class:`snnlab.learning.STDPLearner` together with a post-synaptic
:class:`snnlab.neuron.IFNode`. The protocol repeats *trials* of
``L = 2 * max_dt + 2 * margin`` steps. A trial draws an integer lag
``d`` uniformly from ``[-max_dt, max_dt]`` (experiment generator); the pre
neuron spikes at step ``a = max_dt + margin`` and the post neuron is driven
to spike at step ``a + d`` (a unit current into the IF neuron, threshold 1).
Every step the learner's ``delta_w`` is added to the weight. At the end of
the trial the measured ``(d * dt, w - w0)`` is recorded, the weight goes
back to ``w0`` and the learner's traces are cleared.

Rule (Euler traces ``x <- x - x / tau + s``; ``delta_w = f_post(W) s_post
x_pre - f_pre(W) x_post s_pre``): additive ``f_post = A+``, ``f_pre = A-``,
or multiplicative (soft bounds) ``f_post = A+ (1 - W)``, ``f_pre = A- W``.
The theoretical window of this rule at ``W = w0`` is, with ``d`` in steps,

    dw(d > 0) = f_post(w0) * (1 - 1/tau_pre) ** d
    dw(d < 0) = -f_pre(w0) * (1 - 1/tau_post) ** |d|
    dw(0)     = f_post(w0) - f_pre(w0)

(:meth:`STDPWindow.theoretical_window`). A trial during which a rule
parameter changed is not recorded, so every point belongs to one rule.

Records: raster ``'pair'`` (neuron 0 = pre, 1 = post), trace ``'traces'``
(``trace_pre``, ``trace_post``), series ``'weight'``, points ``'window'``
(``dt`` in ms, ``dw``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import param
import torch
from torch import nn

from ... import neuron
from ...learning import STDPLearner
from ..experiment import Experiment

__all__ = ["STDPWindow"]

W0 = 0.5
MARGIN = 5


class STDPWindow(Experiment):
    """Pairing protocol; measured (dt, dw) points of the running learner and its theoretical window."""

    rule = param.Selector(
        default="additive", objects=["additive", "multiplicative"], doc="Weight dependence of the rule."
    )
    a_plus = param.Number(default=0.01, bounds=(0.0, 0.1), doc="Potentiation amplitude A+.")
    a_minus = param.Number(default=0.012, bounds=(0.0, 0.1), doc="Depression amplitude A-.")
    tau_pre = param.Number(
        default=20.0, bounds=(1.01, 100.0), doc="Pre-synaptic trace time constant (steps)."
    )
    tau_post = param.Number(
        default=20.0, bounds=(1.01, 100.0), doc="Post-synaptic trace time constant (steps)."
    )
    max_dt = param.Integer(default=40, bounds=(1, 100), doc="Largest |t_post - t_pre| tried (steps).")

    def __init__(self, trace_capacity: int = 5000, points_capacity: int = 5000, **params: Any) -> None:
        self._trace_capacity = int(trace_capacity)
        self._points_capacity = int(points_capacity)
        super().__init__(**params)

    # ------------------------------------------------------------------ construction
    def build(self) -> None:
        self.synapse = self.add_module("synapse", nn.Linear(1, 1, bias=False))
        with torch.no_grad():
            self.synapse.weight.fill_(W0)
        self.post = self.add_module("post", neuron.IFNode(v_threshold=1.0, v_reset=0.0))
        self.learner = STDPLearner(
            "s", self.synapse, self.post, self.tau_pre, self.tau_post,
            f_pre=self._f_pre, f_post=self._f_post,
        )  # fmt: skip
        self.add_module("learner", self.learner)
        self.raster = self.add_raster("pair", 2, capacity=20_000, label="pre (0) / post (1)")
        self.traces = self.add_trace(
            "traces", ["trace_pre", "trace_post"], capacity=self._trace_capacity, label="STDP traces"
        )
        self.weight_series = self.add_series("weight", capacity=self._trace_capacity, label="weight")
        self.window = self.add_points(
            "window", "dt (ms)", "dw", capacity=self._points_capacity, label="STDP window"
        )
        self.on_reset()

    def _f_post(self, w: torch.Tensor) -> Any:
        if self.rule == "additive":
            return float(self.a_plus)
        return float(self.a_plus) * (1.0 - w)

    def _f_pre(self, w: torch.Tensor) -> Any:
        if self.rule == "additive":
            return float(self.a_minus)
        return float(self.a_minus) * w

    def _rule_key(self) -> tuple[Any, ...]:
        return (self.rule, float(self.a_plus), float(self.a_minus), float(self.tau_pre), float(self.tau_post))

    def apply_params(self) -> None:
        self.learner.tau_pre = float(self.tau_pre)
        self.learner.tau_post = float(self.tau_post)
        key = self._rule_key()
        if key != self._trial_rule:
            self._tainted = True
            self._trial_rule = key

    def on_reset(self) -> None:
        self._trial_rule = self._rule_key()
        self._tainted = False
        self._k = 0
        self._start_trial()

    def _start_trial(self) -> None:
        max_dt = int(self.max_dt)
        self._lag = int(torch.randint(-max_dt, max_dt + 1, (1,), generator=self.generator).item())
        self._length = 2 * max_dt + 2 * MARGIN
        self._t_pre = max_dt + MARGIN
        self._t_post = self._t_pre + self._lag
        self._k = 0
        self._tainted = False

    # ------------------------------------------------------------------ stepping
    def advance(self) -> None:
        k = self._k
        s_pre = torch.tensor([1.0 if k == self._t_pre else 0.0])
        drive = torch.tensor([1.0 if k == self._t_post else 0.0])
        self.synapse(s_pre)
        s_post = self.post(drive)
        delta = self.learner.step(on_grad=False)
        if delta is not None:
            self.synapse.weight.add_(delta)
        t = self.t
        fired = [i for i, s in enumerate((s_pre[0], s_post[0])) if s > 0]
        if fired:
            self.raster.push_step(t, np.asarray(fired, dtype=np.int32))
        step = np.array([t], dtype=np.int64)
        tp = self.learner.trace_pre
        tq = self.learner.trace_post
        values = np.array([[float(tp.reshape(-1)[0]), float(tq.reshape(-1)[0])]], dtype=np.float32)
        self.traces.push(steps=step, values=values)
        w = float(self.synapse.weight.reshape(-1)[0])
        self.weight_series.push(steps=step, values=np.array([w], dtype=np.float32))
        self._k = k + 1
        if self._k >= self._length:
            if not self._tainted:
                self.window.push(
                    x=np.array([self._lag * self.dt], dtype=np.float32),
                    y=np.array([w - W0], dtype=np.float32),
                )
            self.synapse.weight.fill_(W0)
            self.learner.reset()
            self.post.reset()
            self._start_trial()

    # ------------------------------------------------------------------ theory
    def theoretical_window(self, dts: Sequence[float] | np.ndarray) -> np.ndarray:
        """Theoretical ``dw`` at ``W = w0`` for lags ``dts`` in ms (``t_post - t_pre``); see module doc."""
        d = np.asarray(dts, dtype=np.float64) / self.dt
        if not np.all(np.isfinite(d)):
            raise ValueError(f"dts must be finite numbers (ms), got {dts!r}")
        w = torch.tensor(W0, dtype=torch.float64)
        g_post = float(self._f_post(w))
        g_pre = float(self._f_pre(w))
        ltp = g_post * (1.0 - 1.0 / float(self.tau_pre)) ** np.abs(d)
        ltd = -g_pre * (1.0 - 1.0 / float(self.tau_post)) ** np.abs(d)
        out = np.where(d > 0, ltp, ltd)
        return np.where(d == 0, g_post - g_pre, out)

    def extra_state(self) -> dict[str, Any]:
        return {
            "k": self._k,
            "lag": self._lag,
            "length": self._length,
            "t_pre": self._t_pre,
            "t_post": self._t_post,
            "tainted": self._tainted,
            "trial_rule": list(self._trial_rule),
        }

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self._k = int(state["k"])
        self._lag = int(state["lag"])
        self._length = int(state["length"])
        self._t_pre = int(state["t_pre"])
        self._t_post = int(state["t_post"])
        self._tainted = bool(state["tainted"])
        self._trial_rule = tuple(state["trial_rule"])
