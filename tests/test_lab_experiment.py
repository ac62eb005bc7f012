"""The Experiment contract: parameters, stepping, frames, threads, reset, save/load."""

from __future__ import annotations

import os
import time

import numpy as np
import param
import pytest
import torch

from snnlab import neuron
from snnlab.lab import (
    Experiment,
    NeuronExplorer,
    PopulationRaster,
    RewardLearning,
    STDPLearning,
    STDPWindow,
)


class Leaky(Experiment):
    """Three LIF neurons under uniform random current; `boom` makes the step fail."""

    tau = param.Number(default=5.0, bounds=(1.01, 100.0), doc="tau")
    gain = param.Number(default=3.0, bounds=(0.0, 10.0), doc="input gain")
    boom = param.Boolean(default=False, doc="raise in the next step")

    def build(self) -> None:
        self.node = self.add_module("node", neuron.LIFNode(tau=self.tau))
        self.syn = self.add_module("syn", torch.nn.Linear(3, 3, bias=False))
        self.raster = self.add_raster("node", 3, capacity=50)
        self.trace = self.add_trace("v", ["a", "b", "c"], capacity=20, threshold=lambda: 1.0)
        self.series = self.add_series("x", capacity=20)
        self.add_weights("w", lambda: self.syn.weight, snapshot_every=5, snapshots=3)

    def apply_params(self) -> None:
        self.node.tau = self.tau

    def advance(self) -> None:
        if self.boom:
            raise RuntimeError(f"boom at step {self.t}")
        x = torch.rand(3, generator=self.generator) * self.gain
        s = self.node(x)
        self.syn.weight.add_(0.01)
        self.weights_changed("w")
        step = np.array([self.t])
        self.raster.push_step(self.t, torch.nonzero(s).flatten().numpy())
        self.trace.push(steps=step, values=self.node.v.numpy()[None])
        self.series.push(steps=step, values=np.array([float(x.sum())], dtype=np.float32))


def reference_lif(xs: torch.Tensor, taus: list[float]) -> tuple[torch.Tensor, torch.Tensor]:
    """Plain LIF loop (decay_input, v_reset=0, threshold 1): returns v after reset and spikes."""
    v = torch.zeros(xs.shape[1])
    vs, ss = [], []
    for x, tau in zip(xs, taus):
        h = v + (x - v) / tau
        s = (h >= 1.0).float()
        v = h * (1 - s)
        vs.append(v.clone())
        ss.append(s)
    return torch.stack(vs), torch.stack(ss)


def test_frame_layout_and_dtypes() -> None:
    exp = Leaky()
    exp.step(7)
    f = exp.frame()
    assert f["t"] == 7 and f["time_ms"] == pytest.approx(7.0)
    steps, neurons = f["spikes"]["node"]
    assert steps.dtype == np.int64 and neurons.dtype == np.int32
    steps, values = f["traces"]["v"]
    assert steps.dtype == np.int64 and values.dtype == np.float32 and values.shape == (7, 3)
    steps, values = f["series"]["x"]
    assert values.dtype == np.float32 and values.shape == (7,)
    assert f["weights"]["w"].dtype == np.float32 and f["weights"]["w"].shape == (3, 3)
    assert set(f["stats"]) == {"steps_per_second", "running", "error", "dropped"}
    # nothing new: empty arrays, no weights
    f2 = exp.frame()
    assert f2["traces"]["v"][0].size == 0 and f2["weights"] == {}
    exp.step(1)
    assert exp.frame()["traces"]["v"][0].tolist() == [7]


def test_views_describe_recordings() -> None:
    v = Leaky().views()
    assert v["raster"]["node"]["size"] == 3
    assert v["traces"]["v"]["labels"] == ["a", "b", "c"] and v["traces"]["v"]["threshold"] == 1.0
    assert v["weights"]["w"]["shape"] == (3, 3)
    assert v["params"] == ["speed", "seed", "tau", "gain", "boom"]


def test_trace_matches_reference_and_tau_change_applies_next_step() -> None:
    exp = Leaky(seed=3)
    exp.step(10)
    exp.tau = 20.0
    exp.step(10)
    gen = torch.Generator().manual_seed(3)
    xs = torch.stack([torch.rand(3, generator=gen) * 3.0 for _ in range(20)])
    v_ref, _ = reference_lif(xs, [5.0] * 10 + [20.0] * 10)
    _, values = exp.frame()["traces"]["v"]
    np.testing.assert_allclose(values, v_ref.numpy(), rtol=1e-5, atol=1e-6)
    # the old tau for all 20 steps gives a different trace after step 10
    v_old, _ = reference_lif(xs, [5.0] * 20)
    assert not np.allclose(values[10:], v_old[10:].numpy(), atol=1e-4)


def test_out_of_bounds_parameter_refused_and_old_value_kept() -> None:
    exp = Leaky()
    with pytest.raises(ValueError, match="tau"):
        exp.tau = 0.5
    assert exp.tau == 5.0
    with pytest.raises(ValueError, match="speed"):
        exp.speed = 0
    assert exp.speed == 200.0
    exp.step(1)
    assert exp.node.tau == 5.0


def test_step_argument_validation() -> None:
    exp = Leaky()
    with pytest.raises(ValueError, match="n"):
        exp.step(-1)
    with pytest.raises(TypeError, match="n"):
        exp.step(1.5)  # type: ignore[arg-type]


def test_dropped_counts_overwritten_items() -> None:
    exp = Leaky()
    exp.step(25)  # trace capacity 20
    f = exp.frame()
    assert f["traces"]["v"][0].tolist() == list(range(5, 25))
    assert f["stats"]["dropped"] >= 5


def test_bounded_memory_after_many_steps() -> None:
    exp = Leaky()
    before = exp.recorder_nbytes()
    exp.step(500)
    exp.frame()
    assert exp.recorder_nbytes() == before
    assert exp.weight_snapshots("w")[1].shape[0] == 3


def test_run_and_pause_thread() -> None:
    exp = Leaky(speed=2000)
    exp.run()
    exp.run()  # idempotent
    assert exp.running
    deadline = time.monotonic() + 10
    while exp.t < 50 and time.monotonic() < deadline:
        time.sleep(0.01)
    exp.tau = 30.0  # a UI write while running
    exp.pause()
    assert not exp.running
    t = exp.t
    assert t >= 50
    time.sleep(0.05)
    assert exp.t == t
    assert exp.node.tau == 30.0 or exp.t == t  # applied on the next step if one ran
    exp.step(1)
    assert exp.node.tau == 30.0


def test_error_in_run_thread_is_captured_and_stops() -> None:
    exp = Leaky(speed=1000)
    exp.run()
    exp.boom = True
    deadline = time.monotonic() + 10
    while exp.error is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert exp.error is not None and "RuntimeError" in exp.error and "boom" in exp.error
    deadline = time.monotonic() + 10
    while exp.running and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not exp.running
    assert exp.frame()["stats"]["error"] == exp.error
    exp.pause()
    exp.boom = False
    exp.run()
    assert exp.error is None
    exp.pause()


def _wait(condition, what: str, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def test_one_shared_thread_steps_every_running_experiment() -> None:
    import threading

    from snnlab.lab.runner import RUNNER

    exps = [Leaky(speed=2000) for _ in range(4)]
    for exp in exps:
        exp.run()
    _wait(lambda: all(exp.t >= 20 for exp in exps), "every experiment to advance")
    runners = [th for th in threading.enumerate() if th.name == "snnlab-runner"]
    assert len(runners) == 1 and RUNNER.running() == 4
    # one fails: it stops with its error, the others go on
    exps[0].boom = True
    _wait(lambda: not exps[0].running, "the failing experiment to stop")
    assert "boom" in exps[0].error and all(exp.error is None for exp in exps[1:])
    marks = [exp.t for exp in exps[1:]]
    _wait(lambda: all(exp.t > m for exp, m in zip(exps[1:], marks)), "the others to keep running")
    # pausing one leaves the others running; pause returns with no step of it under way
    exps[1].pause()
    stopped_at = exps[1].t
    _wait(lambda: exps[2].t > marks[1] + 20, "the others to keep running after a pause")
    assert exps[1].t == stopped_at and not exps[1].running
    assert exps[1].frame()["stats"]["steps_per_second"] == 0.0
    for exp in exps[2:]:
        exp.pause()
    assert RUNNER.running() == 0
    _wait(lambda: not [th for th in threading.enumerate() if th.name == "snnlab-runner"],
          "the thread to end with no experiment running")


def test_reset_restores_start_but_keeps_parameters() -> None:
    exp = Leaky(seed=1)
    w0 = exp.syn.weight.detach().clone()
    exp.step(10)
    first = exp.frame()["traces"]["v"][1]
    exp.gain = 2.0
    exp.reset()
    assert exp.t == 0 and exp.gain == 2.0
    assert torch.equal(exp.syn.weight.detach(), w0)
    exp.gain = 3.0
    exp.step(10)
    f = exp.frame()
    np.testing.assert_array_equal(f["traces"]["v"][1], first)
    assert "w" in f["weights"]


# --------------------------------------------------------------------- save / load
def frames_equal(a: dict, b: dict) -> None:
    assert a["t"] == b["t"]
    for key in ("spikes", "traces", "series", "points"):
        assert a[key].keys() == b[key].keys()
        for name in a[key]:
            for x, y in zip(a[key][name], b[key][name]):
                np.testing.assert_array_equal(x, y)
    assert a["weights"].keys() == b["weights"].keys()
    for name in a["weights"]:
        np.testing.assert_array_equal(a["weights"][name], b["weights"][name])


SMALL = [
    (Leaky, {}),
    (NeuronExplorer, {"stimulus": "noisy"}),
    (NeuronExplorer, {"model": "Izhikevich", "stimulus": "ramp"}),
    (PopulationRaster, {"n": 60, "fan_in": 10, "rate": 80.0}),
    (STDPWindow, {"max_dt": 8}),
    (STDPLearning, {"side": 4, "n_out": 2, "n_patterns": 2, "present_steps": 10, "rest_steps": 3}),
    (RewardLearning, {"rule": "mstdp"}),
    (RewardLearning, {"rule": "mstdp_et"}),
]


@pytest.mark.parametrize(("cls", "kwargs"), SMALL, ids=lambda v: getattr(v, "__name__", str(v)))
def test_save_load_continuation_is_bit_identical(tmp_path, cls, kwargs) -> None:
    a = cls(seed=5, **kwargs)
    a.step(37)
    a.frame()
    if isinstance(a, RewardLearning):
        a.give_reward(1.0)
    a.step(4)
    path = tmp_path / "exp.pt"
    a.save(path)
    assert [p.name for p in tmp_path.iterdir()] == ["exp.pt"]  # no temporary left behind
    a.step(60)
    fa = a.frame()
    b = cls(seed=5, **kwargs)
    b.step(3)  # state that must be overwritten
    b.load(path)
    b.step(60)
    fb = b.frame()
    frames_equal(fa, fb)
    for name, module in a.modules.items():
        sb = b.modules[name].state_dict()
        for key, value in module.state_dict().items():
            assert torch.equal(value, sb[key]), f"{name}.{key}"


def test_load_restores_parameters(tmp_path) -> None:
    a = Leaky(tau=7.0)
    a.step(3)
    a.save(tmp_path / "a.pt")
    b = Leaky()
    b.load(tmp_path / "a.pt")
    assert b.tau == 7.0 and b.t == 3
    b.step(1)
    assert b.node.tau == 7.0


def test_load_refuses_other_class_and_non_archive(tmp_path) -> None:
    Leaky().save(tmp_path / "a.pt")
    with pytest.raises(ValueError, match="path"):
        STDPWindow().load(tmp_path / "a.pt")
    torch.save({"hello": 1}, tmp_path / "b.pt")
    with pytest.raises(ValueError, match="path"):
        Leaky().load(tmp_path / "b.pt")
    PopulationRaster(n=20, fan_in=4).save(tmp_path / "c.pt")
    with pytest.raises(ValueError, match="path"):
        PopulationRaster(n=30, fan_in=4).load(tmp_path / "c.pt")


def test_save_is_atomic_on_failure(tmp_path, monkeypatch) -> None:
    exp = Leaky()
    path = tmp_path / "keep.pt"
    exp.save(path)
    before = path.read_bytes()

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken)
    exp.step(5)
    with pytest.raises(OSError):
        exp.save(path)
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["keep.pt"]


def test_independent_experiments_run_concurrently() -> None:
    a, b = Leaky(speed=1000, seed=1), Leaky(speed=1000, seed=2)
    a.run()
    b.run()
    deadline = time.monotonic() + 10
    while (a.t < 20 or b.t < 20) and time.monotonic() < deadline:
        time.sleep(0.01)
    a.pause()
    assert not a.running and b.running
    b.close()
    assert a.t >= 20 and b.t >= 20


@pytest.mark.parametrize("rate", [0.05, 0.5])
def test_fan_in_synapse_event_driven_sum_matches_dense_reference(rate: float, monkeypatch) -> None:
    from snnlab.lab.experiments import population_raster as pr

    gen = torch.Generator().manual_seed(3)
    n_in, n_out, k = 50, 40, 7
    idx = torch.rand(n_out, n_in, generator=gen).argsort(1)[:, :k]
    weight = torch.rand(n_out, k, generator=gen)
    syn = pr.FanInSynapse(idx, weight, n_in)
    syn.scale = 1.5
    x = (torch.rand(n_in, generator=gen) < rate).float() * torch.rand(n_in, generator=gen)
    dense = torch.zeros(n_out, n_in, dtype=torch.float64)
    dense.scatter_add_(1, idx, weight.double())
    reference = 1.5 * dense @ x.double()  # y_j = scale * sum_k W[j, k] * x[idx[j, k]]
    compiled = syn(x)
    torch.testing.assert_close(compiled.double(), reference, rtol=1e-6, atol=1e-6)
    monkeypatch.setitem(pr._KERNEL, "fn", None)  # the torch path: the same sums in the same order
    torch.testing.assert_close(syn(x), compiled, rtol=0, atol=0)
