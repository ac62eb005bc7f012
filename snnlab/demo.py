"""The built-in default simulation and its text rendering.

A population of ``n_inputs`` Poisson spike trains (rate ``input_rate`` spikes
per step) drives ``n_neurons`` LIF neurons through a random non-negative
``Linear`` layer:

.. math::
    I[t] = W\\,X[t], \\qquad S[t] = \\mathrm{LIF}(I[t])

``run_default_simulation`` returns the input and output spike trains
(``[T, n_inputs]`` and ``[T, n_neurons]``); ``render_raster`` and
``render_summary`` turn them into text for a terminal.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import torch
from torch import nn

from .encoding import PoissonEncoder
from .neuron import LIFNode

_SPARK = " ▁▂▃▄▅▆▇█"


@dataclass(frozen=True)
class SimulationResult:
    """One run: ``inputs`` ``[T, n_inputs]``, ``spikes`` and membrane ``v`` ``[T, n_neurons]``."""

    inputs: torch.Tensor
    spikes: torch.Tensor
    v: torch.Tensor
    tau: float
    v_threshold: float


def _check_positive_int(name: str, value: int, upper: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= upper:
        raise ValueError(f"{name} must be an integer in [1, {upper}], got {value!r}")


def run_default_simulation(
    n_inputs: int = 100,
    n_neurons: int = 20,
    steps: int = 100,
    input_rate: float = 0.2,
    tau: float = 2.0,
    v_threshold: float = 1.0,
    seed: int = 0,
) -> SimulationResult:
    """Simulate the default network for ``steps`` time steps (multi-step mode, one call)."""
    _check_positive_int("n_inputs", n_inputs, 100_000)
    _check_positive_int("n_neurons", n_neurons, 100_000)
    _check_positive_int("steps", steps, 1_000_000)
    if not (isinstance(input_rate, (int, float)) and 0.0 <= input_rate <= 1.0):
        raise ValueError(f"input_rate must be a probability per step in [0, 1], got {input_rate!r}")
    generator = torch.Generator().manual_seed(seed)
    synapse = nn.Linear(n_inputs, n_neurons, bias=False)
    with torch.no_grad():
        # mean drive per step ~ 1.1 * threshold at the input rate: a lively but not saturated raster
        scale = 1.1 * v_threshold / max(n_inputs * max(input_rate, 1e-3), 1.0)
        synapse.weight.copy_(torch.rand(n_neurons, n_inputs, generator=generator) * 2.0 * scale)
    encoder = PoissonEncoder(generator=generator)
    lif = LIFNode(tau=tau, v_threshold=v_threshold, step_mode="m", store_v_seq=True)
    rates = torch.full((steps, n_inputs), float(input_rate))
    with torch.no_grad():
        inputs = torch.stack([encoder(r) for r in rates])
        spikes = lif(synapse(inputs))
    return SimulationResult(inputs, spikes, lif.v_seq, float(tau), float(v_threshold))


def render_raster(spikes: torch.Tensor, width: int = 100) -> str:
    """A text raster: one row per neuron, one column per step (the last ``width`` steps); ``|`` = spike."""
    shown = spikes[-width:]
    rows = []
    for i in range(shown.shape[1]):
        line = "".join("|" if s else "·" for s in shown[:, i].tolist())
        rows.append(f"{i:>4} {line}")
    return "\n".join(rows)


def render_summary(result: SimulationResult) -> str:
    """Firing rates per neuron and population activity over time, as text."""
    steps, n = result.spikes.shape
    rate = result.spikes.mean(0)
    in_rate = result.inputs.mean().item()
    pop = result.spikes.mean(1)
    bins = min(steps, 60)
    edges = [round(k * steps / bins) for k in range(bins + 1)]
    activity = [pop[a:b].mean().item() if b > a else 0.0 for a, b in itertools.pairwise(edges)]
    top = max(max(activity), 1e-12)
    spark = "".join(_SPARK[min(len(_SPARK) - 1, math.ceil(a / top * (len(_SPARK) - 1)))] for a in activity)
    lines = [
        f"LIF layer: {n} neurons, tau={result.tau:g}, v_threshold={result.v_threshold:g}, {steps} steps",
        f"input: {result.inputs.shape[1]} Poisson trains at {in_rate:.3f} spikes/step (measured)",
        f"output rate: mean {rate.mean().item():.3f}, min {rate.min().item():.3f}, "
        f"max {rate.max().item():.3f} spikes/step; silent neurons: {int((rate == 0).sum())}",
        f"membrane potential: mean {result.v.mean().item():.3f}, max {result.v.max().item():.3f}",
        f"population activity over time: [{spark}]",
    ]
    return "\n".join(lines)
