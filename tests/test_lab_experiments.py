"""The ready-made experiments against plain torch references, and their learning outcomes."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from snnlab.lab import NeuronExplorer, PopulationRaster, RewardLearning, STDPLearning, STDPWindow

ALL = [
    (NeuronExplorer, {}),
    (PopulationRaster, {"n": 50, "fan_in": 8}),
    (STDPWindow, {"max_dt": 5}),
    (STDPLearning, {"side": 4, "n_out": 2, "n_patterns": 2}),
    (RewardLearning, {}),
]


@pytest.mark.parametrize(("cls", "kwargs"), ALL, ids=lambda v: getattr(v, "__name__", ""))
def test_each_experiment_steps_and_frames_follow_the_layout(cls, kwargs) -> None:
    exp = cls(**kwargs)
    exp.step(30)
    f = exp.frame()
    views = exp.views()
    assert f["t"] == 30
    assert f["spikes"].keys() == views["raster"].keys()
    for steps, neurons in f["spikes"].values():
        assert steps.dtype == np.int64 and neurons.dtype == np.int32 and steps.shape == neurons.shape
    for name, (steps, values) in f["traces"].items():
        assert steps.dtype == np.int64 and values.dtype == np.float32
        assert values.shape == (30, len(views["traces"][name]["labels"]))
    for steps, values in f["series"].values():
        assert steps.dtype == np.int64 and values.dtype == np.float32 and values.shape[0] == steps.shape[0]
    for name, w in f["weights"].items():
        assert w.dtype == np.float32 and w.shape == tuple(views["weights"][name]["shape"])
    for x, y in f["points"].values():
        assert x.dtype == np.float32 and y.dtype == np.float32
    for name in views["params"]:
        assert exp.param[name].doc


# --------------------------------------------------------------------- NeuronExplorer
def reference_neuron(model: str, currents: list[float], tau: float, v_th: float, v_reset: float):
    v = v_reset
    vs, spikes = [], []
    for i in currents:
        h = v + i if model == "IF" else v + (i - (v - v_reset)) / tau
        s = h >= v_th
        v = v_reset if s else h
        vs.append(v)
        spikes.append(s)
    return np.array(vs, dtype=np.float32), np.array(spikes)


@pytest.mark.parametrize("model", ["LIF", "IF"])
@pytest.mark.parametrize("stimulus", ["step", "ramp"])
def test_neuron_explorer_trace_matches_reference(model: str, stimulus: str) -> None:
    exp = NeuronExplorer(model=model, stimulus=stimulus, current=1.7, stim_period=40, tau=6.0, v_reset=-0.2)
    exp.step(120)
    currents = []
    for t in range(120):
        k = t % 40
        currents.append((1.7 if k >= 10 else 0.0) if stimulus == "step" else 1.7 * k / 39)
    v_ref, s_ref = reference_neuron(model, currents, 6.0, 1.0, -0.2)
    f = exp.frame()
    np.testing.assert_allclose(f["traces"]["membrane"][1][:, 0], v_ref, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(f["series"]["input"][1], np.array(currents, dtype=np.float32), atol=1e-6)
    assert f["spikes"]["neuron"][0].tolist() == np.nonzero(s_ref)[0].tolist()


def test_neuron_explorer_threshold_change_takes_effect_next_step() -> None:
    exp = NeuronExplorer(stimulus="noisy", noise=0.0, current=3.0, tau=5.0)
    exp.step(100)
    exp.v_threshold = 2.5
    assert exp.views()["traces"]["membrane"]["threshold"] == 2.5
    exp.step(1)
    assert exp.node.v_threshold == 2.5
    exp.step(99)
    spikes = exp.frame()["spikes"]["neuron"][0]
    # reference: threshold 1 for steps 0..99, 2.5 from step 100 on
    v, ref = 0.0, []
    for t in range(200):
        h = v + (3.0 - v) / 5.0
        th = 1.0 if t < 100 else 2.5
        if h >= th:
            ref.append(t)
            v = 0.0
        else:
            v = h
    assert spikes.tolist() == ref
    assert np.diff(ref)[-1] > np.diff(ref)[0]


def test_neuron_explorer_noise_is_seeded_and_model_switch() -> None:
    exp = NeuronExplorer(stimulus="noisy", current=1.5, noise=0.5, seed=4)
    exp.step(50)
    gen = torch.Generator().manual_seed(4)
    ref = np.array([1.5 + 0.5 * float(torch.randn(1, generator=gen)) for _ in range(50)], dtype=np.float32)
    np.testing.assert_allclose(exp.frame()["series"]["input"][1], ref, rtol=1e-6)
    exp.model = "Izhikevich"
    exp.step(5)
    assert type(exp.node).__name__ == "IzhikevichNode"
    assert exp.node.v_threshold == exp.v_threshold


def test_fi_curve_matches_reference_loop_and_closed_form() -> None:
    exp = NeuronExplorer(tau=8.0, v_threshold=1.0, v_reset=0.0)
    currents = [0.5, 1.0, 1.2, 2.0, 4.0]
    rates = exp.fi_curve(currents, steps=400)
    for i, r in zip(currents, rates):
        _, s = reference_neuron("LIF", [i] * 400, 8.0, 1.0, 0.0)
        assert r == pytest.approx(s.sum() / 0.4)
    # closed form of the interspike interval: n = ceil(log((th - I)/(vr - I)) / log(1 - 1/tau))
    i = 2.0
    n = math.ceil(math.log((1.0 - i) / (0.0 - i)) / math.log(1 - 1 / 8.0))
    assert exp.theoretical_lif_rate(i) == pytest.approx(1000.0 / n)
    assert rates[3] == pytest.approx(1000.0 / n, rel=0.02)
    assert exp.t == 0  # the running simulation is untouched
    with pytest.raises(ValueError, match="steps"):
        exp.fi_curve([1.0], steps=0)
    with pytest.raises(ValueError, match="currents"):
        exp.fi_curve([float("nan")])


# --------------------------------------------------------------------- PopulationRaster
def test_population_synapse_matches_dense_reference() -> None:
    exp = PopulationRaster(n=40, fan_in=6, view_shape=(8, 10))
    syn = exp.synapse
    x = (torch.rand(40, generator=torch.Generator().manual_seed(0)) < 0.3).float()
    dense = torch.zeros(40, 40)
    for j in range(40):
        for k in range(6):
            dense[j, syn.idx[j, k]] += syn.weight[j, k]
    torch.testing.assert_close(syn(x), dense @ x, rtol=1e-5, atol=1e-6)
    assert all(len(set(row.tolist())) == 6 for row in syn.idx)
    f = exp.frame()
    np.testing.assert_allclose(f["weights"]["weights"], dense[:8, :10].numpy(), rtol=1e-6)


def test_population_lif_follows_reference_given_recorded_input() -> None:
    exp = PopulationRaster(n=30, fan_in=5, n_traces=30, rate=100.0, tau=4.0)
    exp.step(40)
    f = exp.frame()
    steps, neurons = f["spikes"]["input"]
    s_in = torch.zeros(40, 30)
    s_in[torch.as_tensor(steps), torch.as_tensor(neurons, dtype=torch.int64)] = 1.0
    syn = exp.synapse
    v = torch.zeros(30)
    out = torch.zeros(40, 30)
    for t in range(40):
        x = (s_in[t][syn.idx] * syn.weight).sum(1)
        h = v + (x - v) / 4.0
        out[t] = (h >= 1.0).float()
        v = h * (1 - out[t])
        np.testing.assert_allclose(f["traces"]["membrane"][1][t], v.numpy(), rtol=1e-4, atol=1e-5)
    ls, ln = f["spikes"]["lif"]
    ref = torch.nonzero(out)
    assert ls.tolist() == ref[:, 0].tolist() and ln.tolist() == ref[:, 1].tolist()


def test_population_rate_change_takes_effect() -> None:
    exp = PopulationRaster(n=200, fan_in=10, rate=10.0)
    exp.step(200)
    low = exp.frame()["series"]["rate"][1][:, 0].mean()
    exp.rate = 200.0
    exp.step(200)
    high = exp.frame()["series"]["rate"][1][:, 0].mean()
    # Poisson input rate estimates within 4 standard errors of 10 Hz and 200 Hz
    assert abs(low - 10.0) < 4 * math.sqrt(10.0 * 1000 / (200 * 200))
    assert abs(high - 200.0) < 4 * math.sqrt(200.0 * 1000 / (200 * 200))
    with pytest.raises(ValueError, match="rate"):
        exp.rate = -1.0
    assert exp.rate == 200.0
    exp.weight_scale = 2.0
    exp.step(1)
    assert "weights" in exp.frame()["weights"]


def test_population_constructor_validation() -> None:
    with pytest.raises(ValueError, match="n"):
        PopulationRaster(n=0)
    with pytest.raises(ValueError, match="fan_in"):
        PopulationRaster(n=10, fan_in=11)


# --------------------------------------------------------------------- STDPWindow
def reference_window(d: int, a_plus: float, a_minus: float, tau_pre: float, tau_post: float) -> float:
    """Simulate the pairing with explicit Euler traces: pre at step 0, post at step d (additive rule)."""
    t_pre, t_post = max(0, -d), max(0, d)
    x_pre = x_post = 0.0
    dw = 0.0
    for t in range(abs(d) + 30):
        s_pre = 1.0 if t == t_pre else 0.0
        s_post = 1.0 if t == t_post else 0.0
        x_pre = x_pre - x_pre / tau_pre + s_pre
        x_post = x_post - x_post / tau_post + s_post
        dw += a_plus * s_post * x_pre - a_minus * x_post * s_pre
    return dw


def test_stdp_window_points_lie_on_theory_and_reference() -> None:
    exp = STDPWindow(max_dt=15, a_plus=0.02, a_minus=0.015, tau_pre=8.0, tau_post=12.0, seed=2)
    exp.step(1200)
    x, y = exp.frame()["points"]["window"]
    assert x.size >= 25
    theory = exp.theoretical_window(x)
    np.testing.assert_allclose(y, theory, rtol=1e-4, atol=1e-7)
    for d, dw in zip(x[:15], y[:15]):
        assert dw == pytest.approx(reference_window(int(d), 0.02, 0.015, 8.0, 12.0), rel=1e-4, abs=1e-7)
    assert np.any(x > 0) and np.any(x < 0)
    assert np.all(y[x > 0] > 0) and np.all(y[x < 0] < 0)


def test_stdp_window_parameter_change_discards_mixed_trial() -> None:
    exp = STDPWindow(max_dt=10, seed=1)
    exp.step(35)
    exp.tau_pre = 5.0  # mid-trial
    exp.step(600)
    x, y = exp.frame()["points"]["window"]
    np.testing.assert_allclose(y, exp.theoretical_window(x), rtol=1e-4, atol=1e-7)
    assert exp.learner.tau_pre == 5.0
    exp.rule = "multiplicative"
    exp.step(600)
    x, y = exp.frame()["points"]["window"]
    assert x.size > 0
    w0 = 0.5
    for d, dw in zip(x, y):
        expected = 0.01 * (1 - w0) * (1 - 1 / 5.0) ** d if d > 0 else None
        if expected is not None:
            assert dw == pytest.approx(expected, rel=1e-4)
    np.testing.assert_allclose(y, exp.theoretical_window(x), rtol=1e-4, atol=1e-7)


# --------------------------------------------------------------------- STDPLearning
def test_stdp_learning_develops_receptive_fields() -> None:
    exp = STDPLearning(seed=0)
    initial = exp.pattern_match().max(axis=0)
    exp.step(3000)
    match = exp.pattern_match()
    best = match.argmax(axis=0)
    assert len(set(best.tolist())) == exp.n_patterns  # one neuron per pattern
    assert match.max(axis=0).min() > 0.8
    assert initial.max() < 0.6
    rf = exp.receptive_fields()
    assert rf.shape == (4, 8, 8)
    np.testing.assert_allclose(rf.reshape(4, -1).sum(1), exp.row_sum, rtol=1e-4)
    assert exp.views()["weights"]["weights"]["rf_shape"] == (8, 8)


def test_wta_layer_matches_reference() -> None:
    from snnlab.lab.experiments.stdp_learning import WTALIFLayer

    layer = WTALIFLayer(3, tau=4.0, v_threshold=1.0, tau_theta=10.0, theta_plus=0.5)
    gen = torch.Generator().manual_seed(0)
    v = torch.zeros(3)
    theta = torch.zeros(3)
    for _ in range(60):
        x = torch.rand(3, generator=gen) * 0.8
        s = layer(x)
        h = v - v / 4.0 + x
        margin = h - 1.0 - theta
        ref = torch.zeros(3)
        if margin.max() >= 0:
            ref[int(margin.argmax())] = 1.0
            v = torch.zeros(3)
        else:
            v = h
        theta = theta * 0.9 + 0.5 * ref
        torch.testing.assert_close(s, ref)
        torch.testing.assert_close(layer.v, v)
        torch.testing.assert_close(layer.theta, theta)


# --------------------------------------------------------------------- RewardLearning
@pytest.mark.parametrize(("rule", "target", "train"), [("mstdp", 2, 600), ("mstdp_et", 1, 1500)])
def test_reward_learning_makes_target_win(rule: str, target: int, train: int) -> None:
    exp = RewardLearning(rule=rule, target=target, seed=3)
    before = exp.synapse.weight.detach().clone()
    exp.step(train)
    exp.frame()
    exp.learning_rate = 0.0
    exp.step(300)
    _, neurons = exp.frame()["spikes"]["output"]
    counts = np.bincount(neurons, minlength=4)
    assert counts.argmax() == target
    others = np.delete(counts, target)
    assert counts[target] > 1.5 * others.max()
    assert exp.winner() == target
    # the target's weights grew relative to the others'
    gain = (exp.synapse.weight.detach() - before).sum(1)
    assert gain.argmax() == target


def test_reward_buttons_change_weights_and_sign_matters() -> None:
    def run(reward: float) -> torch.Tensor:
        exp = RewardLearning(auto_reward=False, seed=1)
        exp.step(5)
        while exp.mstdp.eligibility is None or not bool(exp.mstdp.eligibility.any()):
            exp.step(1)
        w = exp.synapse.weight.detach().clone()
        assert set(exp.frame()["series"]["reward"][1].tolist()) == {0.0}
        exp.give_reward(reward)
        exp.step(1)
        assert exp.frame()["series"]["reward"][1].tolist() == [reward]
        return exp.synapse.weight.detach() - w

    up, down = run(1.0), run(-1.0)
    assert up.abs().sum() > 0
    # the same eligibility times +1 or -1 (before clipping): opposite changes
    torch.testing.assert_close(up, -down, rtol=1e-5, atol=1e-6)


def test_reward_equals_learning_rate_times_eligibility() -> None:
    exp = RewardLearning(auto_reward=False, rule="mstdp", seed=2, learning_rate=0.1, w_max=100.0)
    exp.step(5)
    while exp.mstdp.eligibility is None or not bool(exp.mstdp.eligibility.any()):
        exp.step(1)
    e = exp.mstdp.eligibility.clone()  # eligibility of the last step, [1, n_out, n_in]
    w = exp.synapse.weight.detach().clone()
    exp.give_reward(0.5)
    exp.step(1)
    torch.testing.assert_close(exp.synapse.weight.detach() - w, 0.1 * 0.5 * e[0], rtol=1e-4, atol=1e-6)


def test_auto_reward_rule_and_reward_validation() -> None:
    exp = RewardLearning(target=1)
    assert exp.auto_reward_value(torch.tensor([0.0, 1.0, 0.0, 0.0])) == 1.0
    assert exp.auto_reward_value(torch.tensor([1.0, 0.0, 0.0, 0.0])) == -1.0
    assert exp.auto_reward_value(torch.tensor([1.0, 1.0, 0.0, 0.0])) == 0.0
    assert exp.auto_reward_value(torch.zeros(4)) == 0.0
    with pytest.raises(ValueError, match="value"):
        exp.give_reward(11.0)
    with pytest.raises(ValueError, match="value"):
        exp.give_reward(float("nan"))
    with pytest.raises(TypeError, match="value"):
        exp.give_reward("1")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="target"):
        exp.target = 4
    assert exp.target == 1
    with pytest.raises(ValueError, match="target"):
        RewardLearning(n_out=3, target=3)
    with pytest.raises(ValueError, match="n_out"):
        RewardLearning(n_out=1)


def test_reward_series_and_eligibility_views() -> None:
    exp = RewardLearning()
    exp.step(50)
    f = exp.frame()
    assert f["series"]["eligibility"][1].shape == (50, 4)
    assert f["series"]["output_rate"][1].shape == (50, 4)
    assert set(f["series"]) == {"reward", "eligibility", "output_rate"}
    exp.rule = "mstdp_et"
    exp.step(5)
    assert np.all(np.isfinite(exp.frame()["series"]["eligibility"][1]))
