r"""Optional peer libraries running the same LIF neuron as snnlab, and the spike check.

The neuron benchmarked everywhere is LIF with :math:`\tau = 2`, hard reset to
:math:`V_{reset} = 0`, threshold :math:`V_{th} = 1`:

.. math::
    H[t] = V[t-1] + \tfrac{1}{\tau}(X[t] - V[t-1]) \quad\text{(decay\_input=True)}, \qquad
    S[t] = \Theta(H[t] - V_{th}), \qquad V[t] = H[t]\,(1 - S[t])

Each peer is configured (and its input scaled) so that its spikes equal those
of one snnlab ``LIFNode`` configuration, recorded in :attr:`PeerLIF.decay_input`
and :attr:`PeerLIF.input_scale`:

* **spikingjelly** 2.x ``neuron.LIFNode(tau=2, step_mode='m')`` (``backend='torch'``
  where the constructor takes it): the same equations, ``decay_input=True``.
* **snntorch** ``snn.Leaky(beta=0.5, reset_mechanism='zero')``:
  ``mem = beta * (1 - S[t-1]) * mem + input`` equals ``LIFNode(decay_input=False)``
  (:math:`H = V (1 - 1/\tau) + X`); it is fed :math:`X / \tau` and compared
  with ``LIFNode(decay_input=False)`` on that input. Looped over ``T`` in Python
  (snnTorch has no multi-step LIF module).
* **norse** ``LIF`` (multi-step) and ``LIFBoxCell`` (single step) with
  ``dt=1``, ``tau_mem_inv=0.5``, ``tau_syn_inv=1`` (the synaptic current is
  the input of the step and fully decays), ``v_leak=0``: the same equations as
  ``decay_input=True``.

snnlab and spikingjelly fire at :math:`H \ge V_{th}`, snnTorch and Norse at
:math:`H > V_{th}`; the two differ only where :math:`H` equals the threshold
exactly. :func:`compare_spikes` therefore accepts a mismatch when, in that
neuron, the first differing step is such a tie (recomputed with a plain loop);
any other mismatch makes the peer "not comparable".

Shapes: multi-step callables take ``x_seq`` ``[T, N]`` and return spikes
``[T, N]`` starting from a fresh state each call; single-step steppers take
``x`` ``[N]`` and keep their state between calls.
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import torch

__all__ = [
    "PEER_NAMES",
    "PeerLIF",
    "SpikeCheck",
    "compare_spikes",
    "find_peers",
    "lif_potential_loop",
]

PEER_NAMES: tuple[str, ...] = ("spikingjelly", "snntorch", "norse")

MultiStep = Callable[[torch.Tensor], torch.Tensor]
Stepper = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class PeerLIF:
    """A peer library's LIF layer, configured to spike like ``snnlab.neuron.LIFNode``.

    Attributes:
        name: package name.
        version: its ``__version__``.
        mapping: how it is configured, for the results table.
        decay_input: the ``LIFNode(decay_input=...)`` whose spikes it reproduces.
        input_scale: the peer and that snnlab layer are fed ``input_scale * x``.
        multi_step: ``x_seq [T, N] -> spikes [T, N]``, fresh state per call, differentiable.
        make_stepper: returns a new single-step callable ``x [N] -> spikes [N]`` with its own state.
    """

    name: str
    version: str
    mapping: str
    decay_input: bool
    input_scale: float
    multi_step: MultiStep
    make_stepper: Callable[[], Stepper]


# ---------------------------------------------------------------------------- spike check


@dataclass(frozen=True)
class SpikeCheck:
    """Outcome of :func:`compare_spikes`.

    ``equal``: every spike matches except in neurons whose first mismatch is
    a threshold tie; ``ties``: such neurons; ``mismatched``: neurons with an
    unexplained mismatch (``equal`` is ``mismatched == 0``).
    """

    equal: bool
    ties: int
    mismatched: int

    def describe(self) -> str:
        if not self.equal:
            return f"differ ({self.mismatched} neurons)"
        return "equal" if self.ties == 0 else f"equal ({self.ties} threshold ties)"


def lif_potential_loop(
    x_seq: torch.Tensor, tau: float, decay_input: bool, v_threshold: float = 1.0
) -> torch.Tensor:
    r"""Plain-loop LIF (hard reset to 0, fire at :math:`H \ge V_{th}`): ``H [T, N]`` from ``x_seq [T, N]``.

    Same arithmetic as ``snnlab.neuron.LIFNode`` with ``v_reset=0``:
    :math:`H = V + (X - V)/\tau` (decay_input) or :math:`H = V(1 - 1/\tau) + X`.
    """
    v = torch.zeros_like(x_seq[0])
    hs = []
    for t in range(x_seq.shape[0]):
        h = v + (x_seq[t] - v) / tau if decay_input else v * (1.0 - 1.0 / tau) + x_seq[t]
        hs.append(h)
        v = torch.where(h >= v_threshold, torch.zeros_like(h), h)
    return torch.stack(hs)


def compare_spikes(
    out: torch.Tensor,
    ref: torch.Tensor,
    x_seq: torch.Tensor,
    tau: float,
    decay_input: bool,
    v_threshold: float = 1.0,
) -> SpikeCheck:
    """Compare spikes ``out`` with reference spikes ``ref`` (both ``[T, N, ...]``) for input ``x_seq``.

    Neurons (columns) that differ are re-simulated with :func:`lif_potential_loop`;
    a column counts as a tie when its first differing step has ``H == v_threshold``.
    """
    if out.shape != ref.shape or out.shape != x_seq.shape:
        raise ValueError(
            f"out, ref and x_seq must have the same shape [T, N, ...], got {tuple(out.shape)}, "
            f"{tuple(ref.shape)} and {tuple(x_seq.shape)}"
        )
    t_len = out.shape[0]
    diff = (out.detach() != ref.detach()).reshape(t_len, -1)
    columns = diff.any(0).nonzero().flatten()
    if columns.numel() == 0:
        return SpikeCheck(True, 0, 0)
    x_cols = x_seq.detach().reshape(t_len, -1)[:, columns].cpu()
    h = lif_potential_loop(x_cols, tau, decay_input, v_threshold)
    d = diff[:, columns].cpu()
    first = d.float().argmax(0)
    h_first = h.gather(0, first.unsqueeze(0)).squeeze(0)
    ties = int((h_first == v_threshold).sum())
    mismatched = int(columns.numel()) - ties
    return SpikeCheck(mismatched == 0, ties, mismatched)


# ---------------------------------------------------------------------------- peers


def _spikingjelly(tau: float) -> PeerLIF:
    from spikingjelly.activation_based import neuron

    sj = importlib.import_module("spikingjelly")
    version = getattr(sj, "__version__", None)
    if version is None:
        from importlib.metadata import version as dist_version

        version = dist_version("spikingjelly")

    def make(step_mode: str) -> torch.nn.Module:
        try:
            return neuron.LIFNode(tau=tau, step_mode=step_mode, backend="torch")
        except TypeError:  # 2.0's LIFNode is torch-only and takes no backend argument
            return neuron.LIFNode(tau=tau, step_mode=step_mode)

    node_m = make("m")

    def multi_step(x_seq: torch.Tensor) -> torch.Tensor:
        node_m.reset()
        return node_m(x_seq)

    def make_stepper() -> Stepper:
        return make("s")

    return PeerLIF(
        "spikingjelly",
        str(version),
        f"neuron.LIFNode(tau={tau:g}, step_mode='m'|'s'), v_reset=0, v_threshold=1; input x",
        True,
        1.0,
        multi_step,
        make_stepper,
    )


def _snntorch(tau: float) -> PeerLIF:
    import snntorch
    from snntorch import Leaky

    beta = 1.0 - 1.0 / tau
    leaky = Leaky(beta=beta, reset_mechanism="zero", threshold=1.0)

    def multi_step(x_seq: torch.Tensor) -> torch.Tensor:
        mem = torch.zeros_like(x_seq[0])  # what init_leaky() stands for, on the input's device
        spikes = []
        for t in range(x_seq.shape[0]):
            spk, mem = leaky(x_seq[t], mem)
            spikes.append(spk)
        return torch.stack(spikes)

    def make_stepper() -> Stepper:
        cell = Leaky(beta=beta, reset_mechanism="zero", threshold=1.0)
        state: dict[str, torch.Tensor | None] = {"mem": None}

        def step(x: torch.Tensor) -> torch.Tensor:
            mem = state["mem"] if state["mem"] is not None else torch.zeros_like(x)
            spk, state["mem"] = cell(x, mem)
            return spk

        return step

    return PeerLIF(
        "snntorch",
        str(snntorch.__version__),
        f"snn.Leaky(beta={beta:g}, reset_mechanism='zero'), python loop over T; "
        f"input x/{tau:g} vs snnlab LIFNode(decay_input=False)",
        False,
        1.0 / tau,
        multi_step,
        make_stepper,
    )


def _norse(tau: float) -> PeerLIF:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import norse
        import norse.torch as nt

    def t(v: float) -> torch.Tensor:
        return torch.as_tensor(v)

    p_lif = nt.LIFParameters(
        tau_syn_inv=t(1.0), tau_mem_inv=t(1.0 / tau), v_leak=t(0.0), v_th=t(1.0), v_reset=t(0.0)
    )
    p_box = nt.LIFBoxParameters(tau_mem_inv=t(1.0 / tau), v_leak=t(0.0), v_th=t(1.0), v_reset=t(0.0))
    lif = nt.LIF(p=p_lif, dt=1.0)

    def multi_step(x_seq: torch.Tensor) -> torch.Tensor:
        spikes, _ = lif(x_seq)
        return spikes

    def make_stepper() -> Stepper:
        cell = nt.LIFBoxCell(p=p_box, dt=1.0)
        state = {"s": None}

        def step(x: torch.Tensor) -> torch.Tensor:
            spk, state["s"] = cell(x, state["s"])
            return spk

        return step

    return PeerLIF(
        "norse",
        str(getattr(norse, "__version__", "unknown")),
        f"LIF (multi-step) / LIFBoxCell (single step), dt=1, tau_mem_inv=1/{tau:g}, tau_syn_inv=1, "
        "v_leak=0, v_reset=0, v_th=1; input x",
        True,
        1.0,
        multi_step,
        make_stepper,
    )


_BUILDERS: dict[str, Callable[[float], PeerLIF]] = {
    "spikingjelly": _spikingjelly,
    "snntorch": _snntorch,
    "norse": _norse,
}


def find_peers(
    tau: float = 2.0, names: tuple[str, ...] | list[str] = PEER_NAMES
) -> tuple[list[PeerLIF], dict[str, str]]:
    """Build every importable peer among ``names``; return them and a note per skipped one."""
    unknown = [n for n in names if n not in _BUILDERS]
    if unknown:
        raise ValueError(f"names must be drawn from {PEER_NAMES}, got unknown {unknown!r}")
    peers: list[PeerLIF] = []
    notes: dict[str, str] = {}
    for name in names:
        try:
            peers.append(_BUILDERS[name](tau))
        except ImportError as exc:
            notes[name] = f"not installed ({exc})"
        except Exception as exc:  # a broken optional install must not stop the benchmark
            notes[name] = f"failed to load: {type(exc).__name__}: {exc}"
    return peers, notes
