"""SPAIC reward learners (RSTDP, RSTDPET, RewardSwitchSTDP) against explicit-loop references."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from snnlab.learning import RewardSwitchSTDPLearner, RSTDPETLearner, RSTDPLearner

DT = torch.float64
TOL = dict(rtol=1e-10, atol=1e-12)


class Replay(nn.Module):
    """A stand-in spiking module: returns prepared post-synaptic spikes, one tensor per call."""

    def __init__(self, outputs):
        super().__init__()
        self.outputs = list(outputs)

    def forward(self, x):
        return self.outputs.pop(0)


def spikes(shape, p, seed):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(shape, generator=g) < p).to(DT)


def make_fc(n_in, n_out, seed=0, low=0.0, high=0.1):
    torch.manual_seed(seed)
    fc = nn.Linear(n_in, n_out, bias=False, dtype=DT)
    nn.init.uniform_(fc.weight, low, high)
    return fc


def full_reward(r, batch, n_post, per_neuron=False):
    """Reference reading of a reward as a [batch, n_post] table."""
    r = torch.as_tensor(r, dtype=DT)
    if r.dim() == 0:
        return r.expand(batch, n_post).clone()
    if per_neuron:
        return r.reshape(1, n_post).expand(batch, n_post).clone()
    return r.reshape(batch, 1).expand(batch, n_post).clone()


# --------------------------------------------------------------------------- references
def ref_rstdp(pre, post, rewards, w0, lr=0.1, tau_plus=20.0, tau_minus=20.0, A_plus=1.0, A_minus=-1.0,
              dt=1.0, per_neuron=False):
    """Per step t: Δw_t = lr Σ_b Σ_j r[b,j] e_{t-1}[b,j,:]; traces then eligibility; explicit loops."""
    T, B, n_in = pre.shape
    n_out = post.shape[2]
    p_plus = torch.zeros(B, n_in, dtype=DT)
    p_minus = torch.zeros(B, n_out, dtype=DT)
    elig = torch.zeros(B, n_out, n_in, dtype=DT)
    w = w0.clone()
    ws, deltas, eligs = [], [], []
    for t in range(T):
        r = full_reward(rewards[t], B, n_out, per_neuron)
        d = torch.zeros(n_out, n_in, dtype=DT)
        for b in range(B):
            for j in range(n_out):
                d[j] += lr * r[b, j] * elig[b, j]
        for b in range(B):
            for i in range(n_in):
                p_plus[b, i] = math.exp(-dt / tau_plus) * p_plus[b, i] + A_plus * pre[t, b, i]
            for j in range(n_out):
                p_minus[b, j] = math.exp(-dt / tau_minus) * p_minus[b, j] + A_minus * post[t, b, j]
            for j in range(n_out):
                for i in range(n_in):
                    elig[b, j, i] = post[t, b, j] * p_plus[b, i] + p_minus[b, j] * pre[t, b, i]
        w = w + d
        ws.append(w.clone())
        deltas.append(d)
        eligs.append(elig.sum(0).clone())
    return ws, deltas, eligs, p_plus, p_minus


def ref_rstdpet(pre, post, rewards, w0, lr=0.1, tau_plus=20.0, tau_minus=20.0, tau_e_trace=25.0, tau_e=25.0,
                A_plus=1.0, A_minus=-1.0, dt=1.0, per_neuron=False):
    T, B, n_in = pre.shape
    n_out = post.shape[2]
    p_plus = torch.zeros(B, n_in, dtype=DT)
    p_minus = torch.zeros(B, n_out, dtype=DT)
    E = torch.zeros(B, n_out, n_in, dtype=DT)
    w = w0.clone()
    ws, deltas, traces = [], [], []
    for t in range(T):
        r = full_reward(rewards[t], B, n_out, per_neuron)
        d = torch.zeros(n_out, n_in, dtype=DT)
        for b in range(B):
            for j in range(n_out):
                d[j] += lr * dt * r[b, j] * E[b, j]
        p_plus = math.exp(-dt / tau_plus) * p_plus + A_plus * pre[t]
        p_minus = math.exp(-dt / tau_minus) * p_minus + A_minus * post[t]
        for b in range(B):
            e = torch.outer(post[t, b], p_plus[b]) + torch.outer(p_minus[b], pre[t, b])
            E[b] = math.exp(-dt / tau_e_trace) * E[b] + (dt / tau_e) * e
        w = w + d
        ws.append(w.clone())
        deltas.append(d)
        traces.append(E.clone())
    return ws, deltas, traces


DECAY_20 = math.exp(-1 / 20)


def ref_switch(pre, post, rewards, w0, Apost_pos=5e-3, Apre_pos=-4e-3, Apost_neg=-5e-3, Apre_neg=4e-3,
               pre_decay=DECAY_20, post_decay=DECAY_20, w_min=0.0, w_max=0.1,
               per_neuron=False, clip=True):
    T, B, n_in = pre.shape
    n_out = post.shape[2]
    x = torch.zeros(B, n_in, dtype=DT)
    y = torch.zeros(B, n_out, dtype=DT)
    w = w0.clone()
    ws, deltas = [], []
    for t in range(T):
        r = full_reward(rewards[t], B, n_out, per_neuron)
        for b in range(B):
            for i in range(n_in):
                x[b, i] = pre[t, b, i] if pre[t, b, i] > 0 else pre_decay * x[b, i]
            for j in range(n_out):
                y[b, j] = post[t, b, j] if post[t, b, j] > 0 else post_decay * y[b, j]
        d = torch.zeros(n_out, n_in, dtype=DT)
        for b in range(B):
            for j in range(n_out):
                a_post = Apost_pos if r[b, j] > 0 else Apost_neg
                a_pre = Apre_pos if r[b, j] > 0 else Apre_neg
                for i in range(n_in):
                    d[j, i] += (a_post * post[t, b, j] * x[b, i] + a_pre * y[b, j] * pre[t, b, i]) / B
        w = w + d
        if clip:
            w = w.clamp(w_min, w_max)
        ws.append(w.clone())
        deltas.append(d)
    return ws, deltas, x, y


# --------------------------------------------------------------------------- drivers
def run_single(cls, pre, post, rewards, w0, **params):
    """'s' mode, one forward and one update() per time step; returns weights and deltas per step."""
    fc = nn.Linear(pre.shape[2], post.shape[2], bias=False, dtype=DT)
    with torch.no_grad():
        fc.weight.copy_(w0)
    sn = Replay(post.unbind(0))
    learner = cls("s", fc, sn, **params)
    ws, deltas = [], []
    for t in range(pre.shape[0]):
        sn(fc(pre[t]))
        deltas.append(learner.update(rewards[t]))
        ws.append(fc.weight.detach().clone())
    return learner, ws, deltas


@pytest.mark.parametrize("batch", [1, 3])
def test_rstdp_single_step_matches_reference(batch):
    T, n_in, n_out = 7, 4, 3
    pre, post = spikes((T, batch, n_in), 0.4, 1), spikes((T, batch, n_out), 0.4, 2)
    rewards = [1.0, -0.5, torch.tensor(2.0), 0.3, -1.0, 1.5, 0.7]
    w0 = make_fc(n_in, n_out).weight.detach().clone()
    params = dict(lr=0.05, tau_plus=5.0, tau_minus=8.0, A_plus=1.2, A_minus=-0.9, dt=0.5)
    learner, ws, deltas = run_single(RSTDPLearner, pre, post, rewards, w0, **params)
    ref_ws, ref_d, ref_e, ref_pp, ref_pm = ref_rstdp(pre, post, rewards, w0, **params)
    assert torch.count_nonzero(deltas[0]) == 0  # the first call has no eligibility yet
    for t in range(T):
        torch.testing.assert_close(deltas[t], ref_d[t], **TOL)
        torch.testing.assert_close(ws[t], ref_ws[t], **TOL)
    torch.testing.assert_close(learner.p_plus, ref_pp, **TOL)
    torch.testing.assert_close(learner.p_minus, ref_pm, **TOL)
    torch.testing.assert_close(learner.eligibility, ref_e[-1], **TOL)
    assert ws[-1].abs().sum() != w0.abs().sum()


def test_rstdp_per_sample_and_per_neuron_rewards():
    T, B, n_in, n_out = 5, 2, 3, 4
    pre, post = spikes((T, B, n_in), 0.5, 3), spikes((T, B, n_out), 0.5, 4)
    w0 = make_fc(n_in, n_out).weight.detach().clone()
    per_sample = [torch.tensor([1.0, -2.0]) * (t + 1) for t in range(T)]
    _, ws, _ = run_single(RSTDPLearner, pre, post, per_sample, w0)
    ref_ws = ref_rstdp(pre, post, per_sample, w0)[0]
    torch.testing.assert_close(ws[-1], ref_ws[-1], **TOL)
    per_neuron = [torch.tensor([1.0, -1.0, 0.5, 0.0]) * (t - 2) for t in range(T)]
    _, ws, _ = run_single(RSTDPLearner, pre, post, per_neuron, w0)
    ref_ws = ref_rstdp(pre, post, per_neuron, w0, per_neuron=True)[0]
    torch.testing.assert_close(ws[-1], ref_ws[-1], **TOL)


def test_rstdp_multi_step_sums_steps_and_writes_grad():
    T, B, n_in, n_out = 6, 2, 4, 3
    pre, post = spikes((T, B, n_in), 0.5, 5), spikes((T, B, n_out), 0.5, 6)
    fc = make_fc(n_in, n_out)
    w0 = fc.weight.detach().clone()
    learner = RSTDPLearner("m", fc, Replay([post, post]), lr=0.2)
    fc.weight.grad = torch.full_like(w0, 0.25)
    learner.sn(fc(pre))
    assert learner.step(reward=-1.5, on_grad=True, scale=2.0) is None
    _, ref_d, *_ = ref_rstdp(pre, post, [-1.5] * T, w0, lr=0.2)
    expected = 2.0 * torch.stack(ref_d).sum(0)
    torch.testing.assert_close(fc.weight.grad, torch.full_like(w0, 0.25) - expected, **TOL)
    torch.testing.assert_close(fc.weight.detach(), w0, rtol=0, atol=0)  # step never edits the weight
    # an SGD step then applies +lr * delta
    opt = torch.optim.SGD(fc.parameters(), lr=1.0)
    fc.weight.grad = None
    learner.reset()
    learner.sn.outputs = [post]
    learner.sn(fc(pre))
    learner.step(reward=-1.5)
    opt.step()
    torch.testing.assert_close(fc.weight.detach(), w0 + torch.stack(ref_d).sum(0), **TOL)


def test_rstdp_stdp_window_shape():
    """One pre and one post spike Δt apart, reward 1 every step: the classic exponential window."""
    tau_plus, tau_minus, lr = 4.0, 6.0, 0.5

    def total_dw(delta_t):
        T, t0 = 20, 8
        pre = torch.zeros(T, 1, 1, dtype=DT)
        post = torch.zeros(T, 1, 1, dtype=DT)
        pre[t0] = 1.0
        post[t0 + delta_t] = 1.0
        _, _, deltas = run_single(RSTDPLearner, pre, post, [1.0] * T, torch.zeros(1, 1, dtype=DT),
                                  lr=lr, tau_plus=tau_plus, tau_minus=tau_minus)
        return torch.stack(deltas).sum().item()

    for dt_ in (1, 2, 5):
        assert total_dw(dt_) == pytest.approx(lr * math.exp(-dt_ / tau_plus), rel=1e-12)
        assert total_dw(-dt_) == pytest.approx(-lr * math.exp(-dt_ / tau_minus), rel=1e-12)
    assert total_dw(0) == pytest.approx(0.0, abs=1e-15)  # A_plus + A_minus = 0
    assert total_dw(1) > total_dw(2) > total_dw(5) > 0 > total_dw(-5) > total_dw(-2) > total_dw(-1)


@pytest.mark.parametrize("cls", [RSTDPLearner, RSTDPETLearner, RewardSwitchSTDPLearner])
def test_reward_sign_flips_the_update(cls):
    T, B, n_in, n_out = 6, 2, 4, 3
    pre, post = spikes((T, B, n_in), 0.5, 7), spikes((T, B, n_out), 0.5, 8)
    w0 = make_fc(n_in, n_out, low=0.04, high=0.06).weight.detach().clone()
    extra = {"w_max": 1.0} if cls is RewardSwitchSTDPLearner else {}
    _, _, d_pos = run_single(cls, pre, post, [1.0] * T, w0, **extra)
    _, _, d_neg = run_single(cls, pre, post, [-1.0] * T, w0, **extra)
    total_pos, total_neg = torch.stack(d_pos).sum(0), torch.stack(d_neg).sum(0)
    assert total_pos.abs().sum() > 0
    torch.testing.assert_close(total_neg, -total_pos, **TOL)


@pytest.mark.parametrize("batch", [1, 2])
def test_rstdpet_matches_reference(batch):
    T, n_in, n_out = 6, 3, 2
    pre, post = spikes((T, batch, n_in), 0.5, 9), spikes((T, batch, n_out), 0.5, 10)
    w0 = make_fc(n_in, n_out).weight.detach().clone()
    rewards = [torch.arange(batch, dtype=DT) - 0.5 * t for t in range(T)]
    params = dict(lr=0.3, tau_plus=3.0, tau_minus=5.0, tau_e_trace=7.0, tau_e=4.0, A_plus=0.8, A_minus=-1.1,
                  dt=0.5)
    learner, ws, deltas = run_single(RSTDPETLearner, pre, post, rewards, w0, **params)
    ref_ws, ref_d, ref_E = ref_rstdpet(pre, post, rewards, w0, **params)
    for t in range(T):
        torch.testing.assert_close(deltas[t], ref_d[t], **TOL)
    torch.testing.assert_close(ws[-1], ref_ws[-1], **TOL)
    torch.testing.assert_close(learner.eligibility_trace, ref_E[-1], **TOL)


def test_rstdpet_multi_step_per_neuron_reward():
    T, B, n_in, n_out = 5, 2, 3, 3
    pre, post = spikes((T, B, n_in), 0.5, 11), spikes((T, B, n_out), 0.5, 12)
    fc = make_fc(n_in, n_out)
    w0 = fc.weight.detach().clone()
    learner = RSTDPETLearner("m", fc, Replay([post[:3], post[3:]]))
    r = torch.tensor([[1.0, -2.0, 0.5]])  # [1, N_post]: per neuron even though N_post == batch + 1
    learner.sn(fc(pre[:3]))
    d1 = learner.update(r)
    learner.sn(fc(pre[3:]))
    d2 = learner.update(r)
    _, ref_d, _ = ref_rstdpet(pre, post, [r.reshape(-1)] * T, w0, per_neuron=True)
    torch.testing.assert_close(d1, sum(ref_d[:3]), **TOL)
    torch.testing.assert_close(d2, sum(ref_d[3:]), **TOL)
    torch.testing.assert_close(fc.weight.detach(), w0 + d1 + d2, **TOL)


@pytest.mark.parametrize("batch", [1, 3])
def test_reward_switch_matches_reference(batch):
    T, n_in, n_out = 8, 4, 3
    pre, post = spikes((T, batch, n_in), 0.4, 13), spikes((T, batch, n_out), 0.4, 14)
    w0 = make_fc(n_in, n_out, low=0.0, high=0.1).weight.detach().clone()
    rewards = [1.0, -1.0, 0.0, torch.tensor(0.5), -0.1, 2.0, 1.0, -3.0]
    learner, ws, deltas = run_single(RewardSwitchSTDPLearner, pre, post, rewards, w0, w_max=0.08)
    ref_ws, ref_d, ref_x, ref_y = ref_switch(pre, post, rewards, w0, w_max=0.08)
    for t in range(T):
        torch.testing.assert_close(deltas[t], ref_d[t], **TOL)
        torch.testing.assert_close(ws[t], ref_ws[t], **TOL)
    torch.testing.assert_close(learner.input_trace, ref_x, **TOL)
    torch.testing.assert_close(learner.output_trace, ref_y, **TOL)
    assert ws[-1].max() <= 0.08 and ws[-1].min() >= 0.0


def test_reward_switch_multi_step_per_sample_reward_and_grad():
    T, B, n_in, n_out = 5, 2, 3, 4
    pre, post = spikes((T, B, n_in), 0.5, 15), spikes((T, B, n_out), 0.5, 16)
    fc = make_fc(n_in, n_out)
    w0 = fc.weight.detach().clone()
    learner = RewardSwitchSTDPLearner("m", fc, Replay([post]))
    r = torch.tensor([1.0, -1.0])
    learner.sn(fc(pre))
    learner.step(r)
    _, ref_d, _, _ = ref_switch(pre, post, [r] * T, w0, clip=False)
    torch.testing.assert_close(fc.weight.grad, -sum(ref_d), **TOL)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), batch=st.integers(1, 3), reward=st.floats(-2, 2))
def test_rstdp_property_matches_reference(seed, batch, reward):
    T, n_in, n_out = 4, 3, 2
    pre, post = spikes((T, batch, n_in), 0.5, seed), spikes((T, batch, n_out), 0.5, seed + 1)
    w0 = make_fc(n_in, n_out, seed=seed).weight.detach().clone()
    _, ws, _ = run_single(RSTDPLearner, pre, post, [reward] * T, w0)
    torch.testing.assert_close(ws[-1], ref_rstdp(pre, post, [reward] * T, w0)[0][-1], **TOL)


# --------------------------------------------------------------------------- state, hooks, errors
def test_reset_clears_traces_and_eligibility_and_nothing_recorded_returns_none():
    fc = make_fc(3, 2)
    on, off = torch.ones(1, 3, dtype=DT), torch.zeros(1, 3, dtype=DT)
    post_on, post_off = torch.ones(1, 2, dtype=DT), torch.zeros(1, 2, dtype=DT)
    for cls in (RSTDPLearner, RSTDPETLearner):
        sn = Replay([post_off, post_on, post_off, post_off, post_on, post_off])
        learner = cls("s", fc, sn)
        assert learner.step(1.0) is None
        sn(fc(on))  # pre first ...
        learner.step(1.0, on_grad=False)
        sn(fc(off))  # ... then post: positive eligibility
        learner.step(1.0, on_grad=False)
        sn(fc(off))
        d3 = learner.step(1.0, on_grad=False)
        assert d3.min() > 0
        learner.reset()
        assert learner.p_plus is None and learner.p_minus is None
        assert learner.eligibility is None
        assert learner.records == []
        for x in (on, off, off):
            sn(fc(x))
        # the history is gone: the three calls behave exactly like the first three
        torch.testing.assert_close(learner.step(1.0, on_grad=False), d3, **TOL)


def test_disable_enable_and_pairing_of_same_forward_call():
    fc = make_fc(3, 2)
    outs = [torch.full((1, 2), float(k), dtype=DT) for k in range(5)]
    sn = Replay(outs)
    learner = RewardSwitchSTDPLearner("s", fc, sn)
    learner.disable()
    sn(fc(torch.zeros(1, 3, dtype=DT)))
    assert learner.records == [] and learner.step(1.0) is None
    learner.enable()
    sn(torch.zeros(1, 2, dtype=DT))  # sn without a synapse call: nothing to pair
    assert learner.records == []
    a, b = torch.rand(1, 3, dtype=DT), torch.rand(1, 3, dtype=DT)
    sn(fc(a))
    sn(fc(b))
    assert len(learner.records) == 2
    torch.testing.assert_close(learner.records[0][0], a)
    torch.testing.assert_close(learner.records[0][1], outs[2])
    torch.testing.assert_close(learner.records[1][0], b)


def test_bad_hyper_parameters_name_the_parameter():
    fc, sn = make_fc(3, 2), nn.Identity()
    for cls, name, value in [
        (RSTDPLearner, "tau_plus", 0.0),
        (RSTDPLearner, "tau_minus", -1.0),
        (RSTDPLearner, "lr", float("nan")),
        (RSTDPLearner, "dt", float("inf")),
        (RSTDPLearner, "A_plus", float("inf")),
        (RSTDPETLearner, "tau_e_trace", 0.0),
        (RSTDPETLearner, "tau_e", -2.0),
        (RewardSwitchSTDPLearner, "pre_decay", 1.5),
        (RewardSwitchSTDPLearner, "post_decay", -0.1),
        (RewardSwitchSTDPLearner, "Apost_pos", float("nan")),
    ]:
        with pytest.raises(ValueError, match=name):
            cls("s", fc, sn, **{name: value})
    with pytest.raises(TypeError, match="A_minus"):
        RSTDPLearner("s", fc, sn, A_minus="big")
    with pytest.raises(ValueError, match="w_min"):
        RewardSwitchSTDPLearner("s", fc, sn, w_min=0.5, w_max=0.1)
    with pytest.raises(ValueError, match="step_mode"):
        RSTDPLearner("x", fc, sn)
    with pytest.raises(TypeError, match="synapse"):
        RSTDPLearner("s", nn.ReLU(), sn)
    learner = RSTDPLearner("s", fc, sn)
    with pytest.raises(ValueError, match="tau_plus"):
        learner.tau_plus = 0.0
    assert learner.tau_plus == 20.0
    with pytest.raises(ValueError, match="scale"):
        learner.step(1.0, scale=float("nan"))


@pytest.mark.parametrize("cls", [RSTDPLearner, RSTDPETLearner, RewardSwitchSTDPLearner])
def test_bad_reward_raises_naming_reward(cls):
    fc = make_fc(3, 2)
    sn = Replay([torch.ones(4, 2, dtype=DT)] * 5)
    learner = cls("s", fc, sn)
    for bad in (torch.ones(3), torch.ones(4, 3), torch.ones(2, 2, 2), float("nan"), None):
        sn(fc(torch.ones(4, 3, dtype=DT)))
        with pytest.raises(ValueError, match="reward"):
            learner.step(bad)
