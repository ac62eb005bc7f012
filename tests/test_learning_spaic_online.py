"""SPAIC online STDP learners (nearest, full, meta-nearest) against explicit-loop references."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from snnlab.learning import FullSTDPLearner, MetaNearestSTDPLearner, NearestSTDPLearner

DT = torch.float64
TOL = dict(rtol=1e-10, atol=1e-12)
DECAY_20 = math.exp(-1 / 20)


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


def rand_weight(n_out, n_in, seed=0, low=0.0, high=1.0):
    g = torch.Generator().manual_seed(seed)
    return low + (high - low) * torch.rand(n_out, n_in, generator=g, dtype=DT)


def linear_with(w0):
    fc = nn.Linear(w0.shape[1], w0.shape[0], bias=False, dtype=DT)
    with torch.no_grad():
        fc.weight.copy_(w0)
    return fc


# --------------------------------------------------------------------------- references
def pair_dw(pre_t, post_t, x, y, Apost, Apre):
    """Σ_b Apost·post_b ⊗ x_b − Apre·y_b ⊗ pre_b, element by element."""
    B, n_in = pre_t.shape
    n_out = post_t.shape[1]
    d = torch.zeros(n_out, n_in, dtype=DT)
    for b in range(B):
        for j in range(n_out):
            for i in range(n_in):
                d[j, i] += Apost * post_t[b, j] * x[b, i] - Apre * y[b, j] * pre_t[b, i]
    return d


def row_normalize(w, w_norm):
    out = w.clone()
    for j in range(w.shape[0]):
        total = sum(abs(float(v)) for v in w[j])
        if total > 0:
            out[j] = w_norm * w[j] / total
    return out


def ref_nearest(pre, post, w0, Apost=1e-2, Apre=1e-4, trace_pre=DECAY_20, trace_post=DECAY_20, w_norm=78.4,
                w_min=0.0, w_max=1.0):
    T, B, n_in = pre.shape
    x = torch.zeros(B, n_in, dtype=DT)
    y = torch.zeros(B, post.shape[2], dtype=DT)
    w = w0.clone()
    ws, deltas = [], []
    for t in range(T):
        x = pre[t] + (1 - pre[t]) * trace_pre * x
        y = post[t] + (1 - post[t]) * trace_post * y
        d = pair_dw(pre[t], post[t], x, y, Apost, Apre)
        w = w + d
        if w_norm is not None:
            w = row_normalize(w, w_norm)
        w = w.clamp(w_min, w_max)
        ws.append(w.clone())
        deltas.append(d)
    return ws, deltas, x, y


def ref_full(pre, post, w0, Apost=1e-2, Apre=1e-4, trace_decay=DECAY_20, w_min=0.0, w_max=1.0):
    T, B, n_in = pre.shape
    x = torch.zeros(B, n_in, dtype=DT)
    y = torch.zeros(B, post.shape[2], dtype=DT)
    w = w0.clone()
    ws, deltas = [], []
    for t in range(T):
        x = trace_decay * x + pre[t]
        y = trace_decay * y + post[t]
        d = pair_dw(pre[t], post[t], x, y, Apost, Apre)
        w = (w + d).clamp(w_min, w_max)
        ws.append(w.clone())
        deltas.append(d)
    return ws, deltas, x, y


DECAY_30, DECAY_200 = math.exp(-1 / 30), math.exp(-1 / 200)


def ref_meta(pre, post, w0, Apost=1e-2, Apre=1e-4, pre_decay=DECAY_30, post_decay=DECAY_200, w_min=0.0,
             w_max=1.0):
    T, B, n_in = pre.shape
    n_out = post.shape[2]
    x = torch.zeros(B, n_in, dtype=DT)
    y = torch.zeros(B, n_out, dtype=DT)
    w = w0.clone()
    w_mean = w.mean(dim=1, keepdim=True)
    aw_mean = w_mean.mean()
    ws = []
    for t in range(T):
        for b in range(B):
            for i in range(n_in):
                x[b, i] = pre[t, b, i] if pre[t, b, i] > 0 else pre_decay * x[b, i]
            for j in range(n_out):
                y[b, j] = post[t, b, j] if post[t, b, j] > 0 else post_decay * y[b, j]
        dw = pair_dw(pre[t], post[t], x, y, Apost, Apre)
        for _ in range(2):  # SPAIC applies the target drift twice per step
            for j in range(n_out):
                w_mean[j, 0] -= 0.1 * Apre * (y[:, j].mean() - y.mean())
            w_mean = w_mean * aw_mean / w_mean.mean()
        new = torch.empty_like(w)
        for j in range(n_out):
            row_mean = max(float(w[j].mean()), 1e-6)
            for i in range(n_in):
                if dw[j, i] < 0:
                    soft = math.exp(-0.2 / max(float(w[j, i]) - w_min, 1e-4))
                elif dw[j, i] > 0:
                    soft = math.exp(-0.2 / max(w_max - float(w[j, i]), 1e-4))
                else:
                    soft = 0.0
                new[j, i] = w[j, i] * w_mean[j, 0] / row_mean + dw[j, i] * soft
        w = new
        ws.append(w.clone())
    return ws, x, y, w_mean


def run_single(cls, pre, post, w0, **params):
    fc = linear_with(w0)
    sn = Replay(post.unbind(0))
    learner = cls("s", fc, sn, **params)
    ws, deltas = [], []
    for t in range(pre.shape[0]):
        sn(fc(pre[t]))
        deltas.append(learner.update())
        ws.append(fc.weight.detach().clone())
    return learner, ws, deltas


# --------------------------------------------------------------------------- nearest
@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("w_norm", [78.4, 2.0, None])
def test_nearest_single_step_matches_reference(batch, w_norm):
    T, n_in, n_out = 8, 5, 3
    pre, post = spikes((T, batch, n_in), 0.4, 1), spikes((T, batch, n_out), 0.4, 2)
    w0 = rand_weight(n_out, n_in, low=0.1, high=0.5)
    params = dict(Apost=0.05, Apre=0.03, trace_pre=0.8, trace_post=0.6, w_norm=w_norm, w_min=0.0, w_max=0.9)
    learner, ws, deltas = run_single(NearestSTDPLearner, pre, post, w0, **params)
    ref_ws, ref_d, ref_x, ref_y = ref_nearest(pre, post, w0, **params)
    for t in range(T):
        torch.testing.assert_close(deltas[t], ref_d[t], **TOL)
        torch.testing.assert_close(ws[t], ref_ws[t], **TOL)
    torch.testing.assert_close(learner.input_trace, ref_x, **TOL)
    torch.testing.assert_close(learner.output_trace, ref_y, **TOL)


def test_nearest_projection_normalises_rows_then_clips():
    w0 = torch.tensor([[0.2, 0.2, 0.6], [0.0, 0.0, 0.0], [1.0, 3.0, 0.0]], dtype=DT)
    fc = linear_with(w0)
    sn = Replay([torch.zeros(1, 3, dtype=DT)])
    learner = NearestSTDPLearner("s", fc, sn, w_norm=2.0, w_max=1.2)
    sn(fc(torch.zeros(1, 3, dtype=DT)))  # no spikes: Δw = 0, only the projection acts
    learner.update()
    expected = torch.tensor([[0.4, 0.4, 1.2], [0.0, 0.0, 0.0], [0.5, 1.2, 0.0]], dtype=DT)
    torch.testing.assert_close(fc.weight.detach(), expected, **TOL)


def test_nearest_multi_step_sums_then_projects_once_and_grad():
    T, B, n_in, n_out = 6, 2, 4, 3
    pre, post = spikes((T, B, n_in), 0.5, 3), spikes((T, B, n_out), 0.5, 4)
    w0 = rand_weight(n_out, n_in, low=0.2, high=0.4)
    fc = linear_with(w0)
    learner = NearestSTDPLearner("m", fc, Replay([post, post]), w_norm=1.5)
    learner.sn(fc(pre))
    delta = learner.update()
    _, ref_d, _, _ = ref_nearest(pre, post, w0, w_norm=1.5)
    total = sum(ref_d)
    torch.testing.assert_close(delta, total, **TOL)
    torch.testing.assert_close(fc.weight.detach(), row_normalize(w0 + total, 1.5).clamp(0.0, 1.0), **TOL)
    # on_grad: -Δw accumulates into .grad, the weight is untouched, scale multiplies
    learner.reset()
    w1 = fc.weight.detach().clone()
    fc.weight.grad = torch.ones_like(w1)
    learner.sn(fc(pre))
    assert learner.step(on_grad=True, scale=0.5) is None
    torch.testing.assert_close(fc.weight.grad, torch.ones_like(w1) - 0.5 * total, **TOL)
    torch.testing.assert_close(fc.weight.detach(), w1, rtol=0, atol=0)


def test_nearest_window_sign():
    """A pre spike before a post spike potentiates (Apost term); post before pre depresses (Apre term)."""
    def dw(pre_first):
        pre = torch.zeros(3, 1, 1, dtype=DT)
        post = torch.zeros(3, 1, 1, dtype=DT)
        pre[0 if pre_first else 2] = 1.0
        post[2 if pre_first else 0] = 1.0
        _, _, deltas = run_single(NearestSTDPLearner, pre, post, torch.full((1, 1), 0.5, dtype=DT),
                                  Apost=0.1, Apre=0.2, trace_pre=0.5, trace_post=0.5, w_norm=None)
        return torch.stack(deltas).sum().item()

    assert dw(True) == pytest.approx(0.1 * 0.25, rel=1e-12)
    assert dw(False) == pytest.approx(-0.2 * 0.25, rel=1e-12)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), batch=st.integers(1, 3), decay=st.floats(0.0, 1.0))
def test_nearest_property_matches_reference(seed, batch, decay):
    T, n_in, n_out = 4, 3, 2
    pre, post = spikes((T, batch, n_in), 0.5, seed), spikes((T, batch, n_out), 0.5, seed + 1)
    w0 = rand_weight(n_out, n_in, seed=seed)
    params = dict(trace_pre=decay, trace_post=decay, w_norm=1.0, Apost=0.1, Apre=0.05)
    _, ws, _ = run_single(NearestSTDPLearner, pre, post, w0, **params)
    torch.testing.assert_close(ws[-1], ref_nearest(pre, post, w0, **params)[0][-1], **TOL)


def test_nearest_trace_decay_sets_both_traces():
    learner = NearestSTDPLearner("s", linear_with(rand_weight(2, 3)), nn.Identity(), trace_decay=0.7)
    assert learner.trace_pre == learner.trace_post == 0.7


# --------------------------------------------------------------------------- full
@pytest.mark.parametrize("batch", [1, 2])
@pytest.mark.parametrize("step_mode", ["s", "m"])
def test_full_matches_reference(batch, step_mode):
    T, n_in, n_out = 7, 4, 3
    pre, post = spikes((T, batch, n_in), 0.5, 5), spikes((T, batch, n_out), 0.5, 6)
    w0 = rand_weight(n_out, n_in, low=0.3, high=0.7)
    params = dict(Apost=0.02, Apre=0.015, trace_decay=0.9, w_min=0.1, w_max=0.8)
    ref_ws, ref_d, ref_x, ref_y = ref_full(pre, post, w0, **params)
    if step_mode == "s":
        learner, ws, deltas = run_single(FullSTDPLearner, pre, post, w0, **params)
        for t in range(T):
            torch.testing.assert_close(deltas[t], ref_d[t], **TOL)
            torch.testing.assert_close(ws[t], ref_ws[t], **TOL)
    else:
        fc = linear_with(w0)
        learner = FullSTDPLearner("m", fc, Replay([post]), **params)
        learner.sn(fc(pre))
        torch.testing.assert_close(learner.step(on_grad=False), sum(ref_d), **TOL)
    torch.testing.assert_close(learner.input_trace, ref_x, **TOL)
    torch.testing.assert_close(learner.output_trace, ref_y, **TOL)


def test_full_update_clips_only_and_normalize_on_demand():
    w0 = torch.tensor([[0.5, 1.5], [0.25, 0.25]], dtype=DT)
    fc = linear_with(w0)
    sn = Replay([torch.zeros(1, 2, dtype=DT)])
    learner = FullSTDPLearner("s", fc, sn)
    with pytest.raises(ValueError, match="w_norm"):
        learner.normalize_()
    sn(fc(torch.zeros(1, 2, dtype=DT)))
    learner.update()
    torch.testing.assert_close(fc.weight.detach(), torch.tensor([[0.5, 1.0], [0.25, 0.25]], dtype=DT))
    learner.w_norm = 1.0
    learner.normalize_()
    expected = torch.tensor([[1 / 3, 2 / 3], [0.5, 0.5]], dtype=DT)
    torch.testing.assert_close(fc.weight.detach(), expected, **TOL)


# --------------------------------------------------------------------------- meta
@pytest.mark.parametrize("batch", [1, 3])
def test_meta_single_step_matches_reference(batch):
    T, n_in, n_out = 8, 4, 3
    pre, post = spikes((T, batch, n_in), 0.5, 7), spikes((T, batch, n_out), 0.5, 8)
    w0 = rand_weight(n_out, n_in, low=0.2, high=0.8)
    params = dict(Apost=0.05, Apre=0.04, pre_decay=0.7, post_decay=0.9)
    learner, ws, _ = run_single(MetaNearestSTDPLearner, pre, post, w0, **params)
    ref_ws, ref_x, ref_y, ref_mean = ref_meta(pre, post, w0, **params)
    for t in range(T):
        torch.testing.assert_close(ws[t], ref_ws[t], **TOL)
    torch.testing.assert_close(learner.input_trace, ref_x, **TOL)
    torch.testing.assert_close(learner.output_trace, ref_y, **TOL)
    torch.testing.assert_close(learner.w_mean, ref_mean, **TOL)


def test_meta_multi_step_sees_earlier_increments():
    T, B, n_in, n_out = 6, 2, 3, 2
    pre, post = spikes((T, B, n_in), 0.5, 9), spikes((T, B, n_out), 0.5, 10)
    w0 = rand_weight(n_out, n_in, low=0.2, high=0.8)
    fc = linear_with(w0)
    learner = MetaNearestSTDPLearner("m", fc, Replay([post]), Apost=0.05, Apre=0.04)
    learner.sn(fc(pre))
    learner.update()
    ref_ws = ref_meta(pre, post, w0, Apost=0.05, Apre=0.04)[0]
    torch.testing.assert_close(fc.weight.detach(), ref_ws[-1], **TOL)


def test_meta_reset_keeps_target_and_reset_target_forgets_it():
    w0 = rand_weight(2, 3, low=0.2, high=0.8)
    fc = linear_with(w0)
    sn = Replay([torch.ones(1, 2, dtype=DT)] * 3)
    learner = MetaNearestSTDPLearner("s", fc, sn)
    sn(fc(torch.ones(1, 3, dtype=DT)))
    learner.update()
    target = learner.w_mean.clone()
    learner.reset()
    assert learner.input_trace is None and learner.output_trace is None
    torch.testing.assert_close(learner.w_mean, target)
    learner.reset_target()
    assert learner.w_mean is None


# --------------------------------------------------------------------------- errors and hooks
def test_bad_hyper_parameters_name_the_parameter():
    fc, sn = linear_with(rand_weight(2, 3)), nn.Identity()
    for cls, name, value in [
        (NearestSTDPLearner, "trace_pre", 1.5),
        (NearestSTDPLearner, "trace_post", -0.5),
        (NearestSTDPLearner, "w_norm", 0.0),
        (NearestSTDPLearner, "w_norm", float("inf")),
        (NearestSTDPLearner, "Apost", float("nan")),
        (FullSTDPLearner, "trace_decay", 2.0),
        (FullSTDPLearner, "Apre", float("-inf")),
        (MetaNearestSTDPLearner, "pre_decay", -1.0),
        (MetaNearestSTDPLearner, "post_decay", 1.01),
    ]:
        with pytest.raises(ValueError, match=name):
            cls("s", fc, sn, **{name: value})
    for cls in (NearestSTDPLearner, FullSTDPLearner, MetaNearestSTDPLearner):
        with pytest.raises(ValueError, match="w_min"):
            cls("s", fc, sn, w_min=1.0, w_max=0.5)
    with pytest.raises(TypeError, match="w_max"):
        NearestSTDPLearner("s", fc, sn, w_max="one")
    learner = NearestSTDPLearner("s", fc, sn)
    with pytest.raises(ValueError, match="trace_pre"):
        learner.trace_pre = float("nan")


def test_weight_shape_mismatch_is_reported():
    fc = nn.Conv1d(2, 3, 1, dtype=DT)
    sn = Replay([torch.zeros(1, 3, 4, dtype=DT)])
    learner = NearestSTDPLearner("s", fc, sn)
    sn(fc(torch.zeros(1, 2, 4, dtype=DT)))
    with pytest.raises(ValueError, match="weight"):
        learner.step()


def test_batch_change_without_reset_is_reported():
    fc = linear_with(rand_weight(2, 3))
    sn = Replay([torch.zeros(1, 2, dtype=DT), torch.zeros(2, 2, dtype=DT)])
    learner = FullSTDPLearner("s", fc, sn)
    sn(fc(torch.zeros(1, 3, dtype=DT)))
    learner.step()
    sn(fc(torch.zeros(2, 3, dtype=DT)))
    with pytest.raises(ValueError, match="reset"):
        learner.step()


def test_tuple_output_and_remove_hooks():
    class TupleSN(nn.Module):
        def forward(self, x):
            return (x > 0).to(x.dtype), x

    fc = linear_with(torch.eye(2, dtype=DT))
    sn = TupleSN()
    learner = FullSTDPLearner("s", fc, sn)
    sn(fc(torch.tensor([[1.0, -1.0]], dtype=DT)))
    torch.testing.assert_close(learner.records[0][1], torch.tensor([[1.0, 0.0]], dtype=DT))
    learner.remove_hooks()
    sn(fc(torch.ones(1, 2, dtype=DT)))
    assert len(learner.records) == 1
