"""STDP / mSTDP / mSTDP-ET (SpikingJelly's learning API) against explicit loops written here."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from snnlab import learning
from snnlab.learning import (
    MSTDPETLearner,
    MSTDPLearner,
    STDPLearner,
    mstdp_linear_single_step,
    mstdpet_linear_single_step,
    stdp_conv1d_single_step,
    stdp_conv2d_single_step,
    stdp_linear_single_step,
    stdp_multi_step,
)

ATOL = 1e-9
DT = torch.float64


# --------------------------------------------------------------------------- test doubles
class Replay(nn.Module):
    """A 'spiking module' that ignores its input and emits the next prepared spike tensor."""

    def __init__(self, outputs: list[torch.Tensor], as_tuple: bool = False) -> None:
        super().__init__()
        self.outputs = list(outputs)
        self.as_tuple = as_tuple

    def forward(self, x: torch.Tensor):
        y = self.outputs.pop(0)
        return (y, x) if self.as_tuple else y


def spikes(gen: torch.Generator, *shape: int, p: float = 0.4) -> torch.Tensor:
    return (torch.rand(*shape, generator=gen) < p).to(DT)


def drive(synapse: nn.Module, sn: nn.Module, x: torch.Tensor) -> None:
    """One forward call of ``sn(synapse(x))``, as a network would do it."""
    with torch.no_grad():
        sn(synapse(x))


# --------------------------------------------------------------------------- plain references
def ref_euler(tr: torch.Tensor, s: torch.Tensor, tau: float) -> torch.Tensor:
    out = tr.clone()
    for idx in range(out.numel()):
        v = out.view(-1)[idx].item()
        out.view(-1)[idx] = v - v / tau + s.reshape(-1)[idx].item()
    return out


def ref_exp(tr: torch.Tensor, s: torch.Tensor, tau: float) -> torch.Tensor:
    out = tr.clone()
    for idx in range(out.numel()):
        out.view(-1)[idx] = out.view(-1)[idx].item() * math.exp(-1.0 / tau) + s.reshape(-1)[idx].item()
    return out


def ref_linear_elig(W, pre, post, tr_pre, tr_post, f_pre, f_post) -> torch.Tensor:
    """Per sample b:

    e[b, j, i] = f_post(W)[j, i] post[b, j] tr_pre[b, i] - f_pre(W)[j, i] tr_post[b, j] pre[b, i]
    """
    gp, gq = f_post(W), f_pre(W)
    gp = gp if isinstance(gp, torch.Tensor) else torch.full_like(W, gp)
    gq = gq if isinstance(gq, torch.Tensor) else torch.full_like(W, gq)
    B, (n_out, n_in) = pre.shape[0], W.shape
    e = torch.zeros(B, n_out, n_in, dtype=W.dtype)
    for b in range(B):
        for j in range(n_out):
            for i in range(n_in):
                e[b, j, i] = gp[j, i] * post[b, j] * tr_pre[b, i] - gq[j, i] * tr_post[b, j] * pre[b, i]
    return e


def ref_pad(x: torch.Tensor, pads: list[int], mode: str) -> torch.Tensor:
    """Pad the trailing dims of x; ``pads`` = [(before, after) per trailing dim], index mapping by hand."""
    n_sp = len(pads) // 2
    sizes = x.shape[-n_sp:]
    new_sizes = [sizes[d] + pads[2 * d] + pads[2 * d + 1] for d in range(n_sp)]
    out = torch.zeros(*x.shape[:-n_sp], *new_sizes, dtype=x.dtype)

    def src(k: int, d: int) -> int | None:
        n, i = sizes[d], k - pads[2 * d]
        if 0 <= i < n:
            return i
        if mode == "zeros":
            return None
        if mode == "replicate":
            return 0 if i < 0 else n - 1
        if mode == "circular":
            return i % n
        if mode == "reflect":
            return -i if i < 0 else 2 * (n - 1) - i
        raise AssertionError(mode)

    import itertools

    for pos in itertools.product(*[range(s) for s in new_sizes]):
        srcs = [src(k, d) for d, k in enumerate(pos)]
        if None not in srcs:
            out[(..., *pos)] = x[(..., *srcs)]
    return out


def conv_pads(conv: nn.Module) -> list[int]:
    """(before, after) per spatial dim, first dim first."""
    return [p for p in conv.padding for _ in range(2)]


def ref_conv2d_delta(W, pre_pad, post, tr_pre_pad, tr_post, stride, f_pre, f_post) -> torch.Tensor:
    gp, gq = f_post(W), f_pre(W)
    c_out, c_in, kh, kw = W.shape
    B, _, ho, wo = post.shape
    d = torch.zeros_like(W)
    for co in range(c_out):
        for ci in range(c_in):
            for h in range(kh):
                for w in range(kw):
                    a = bq = 0.0
                    for b in range(B):
                        for y in range(ho):
                            for x in range(wo):
                                r, c = y * stride[0] + h, x * stride[1] + w
                                a += post[b, co, y, x] * tr_pre_pad[b, ci, r, c]
                                bq += tr_post[b, co, y, x] * pre_pad[b, ci, r, c]
                    d[co, ci, h, w] = gp[co, ci, h, w] * a - gq[co, ci, h, w] * bq
    return d


def ref_conv1d_delta(W, pre_pad, post, tr_pre_pad, tr_post, stride, f_pre, f_post) -> torch.Tensor:
    gp, gq = f_post(W), f_pre(W)
    c_out, c_in, k = W.shape
    B, _, lo = post.shape
    d = torch.zeros_like(W)
    for co in range(c_out):
        for ci in range(c_in):
            for h in range(k):
                a = bq = 0.0
                for b in range(B):
                    for y in range(lo):
                        r = y * stride + h
                        a += post[b, co, y] * tr_pre_pad[b, ci, r]
                        bq += tr_post[b, co, y] * pre_pad[b, ci, r]
                d[co, ci, h] = gp[co, ci, h] * a - gq[co, ci, h] * bq
    return d


FS = {
    "identity": lambda w: w,
    "clamp": lambda w: torch.clamp(w, -0.2, 0.3),
    "const": lambda w: 0.5,
}


# --------------------------------------------------------------------------- functions
@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    batch=st.integers(1, 3),
    tau_pre=st.floats(1.0, 20.0),
    tau_post=st.floats(1.0, 20.0),
    fp=st.sampled_from(sorted(FS)),
    fq=st.sampled_from(sorted(FS)),
)
def test_stdp_linear_single_step_matches_loop(seed, batch, tau_pre, tau_post, fp, fq):
    gen = torch.Generator().manual_seed(seed)
    fc = nn.Linear(4, 3, bias=False).to(DT)
    f_pre, f_post = FS[fp], FS[fq]
    tr_pre = tr_post = None
    ref_pre, ref_post = torch.zeros(batch, 4, dtype=DT), torch.zeros(batch, 3, dtype=DT)
    for _ in range(4):
        pre, post = spikes(gen, batch, 4), spikes(gen, batch, 3)
        tr_pre, tr_post, dw = stdp_linear_single_step(
            fc, pre, post, tr_pre, tr_post, tau_pre, tau_post, f_pre, f_post
        )
        ref_pre, ref_post = ref_euler(ref_pre, pre, tau_pre), ref_euler(ref_post, post, tau_post)
        ref_dw = ref_linear_elig(fc.weight.data, pre, post, ref_pre, ref_post, f_pre, f_post).sum(0)
        torch.testing.assert_close(tr_pre, ref_pre, atol=ATOL, rtol=0)
        torch.testing.assert_close(tr_post, ref_post, atol=ATOL, rtol=0)
        torch.testing.assert_close(dw, ref_dw, atol=ATOL, rtol=0)


def test_stdp_linear_single_step_float_trace_and_pure():
    fc = nn.Linear(2, 2, bias=False).to(DT)
    pre, post = torch.tensor([[1.0, 0.0]], dtype=DT), torch.tensor([[0.0, 1.0]], dtype=DT)
    tr = torch.tensor([[0.5, 0.25]], dtype=DT)
    tr_copy = tr.clone()
    tp, tq, _ = stdp_linear_single_step(fc, pre, post, tr, 0.0, 2.0, 2.0)
    torch.testing.assert_close(tr, tr_copy)  # inputs untouched
    torch.testing.assert_close(tp, torch.tensor([[1.25, 0.125]], dtype=DT))
    torch.testing.assert_close(tq, post)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), batch=st.integers(1, 3), tau=st.floats(1.0, 10.0))
def test_mstdp_linear_single_step_eligibility_per_sample(seed, batch, tau):
    gen = torch.Generator().manual_seed(seed)
    fc = nn.Linear(4, 3, bias=False).to(DT)
    tr_pre = tr_post = None
    ref_pre, ref_post = torch.zeros(batch, 4, dtype=DT), torch.zeros(batch, 3, dtype=DT)
    for _ in range(3):
        pre, post = spikes(gen, batch, 4), spikes(gen, batch, 3)
        tr_pre, tr_post, e = mstdp_linear_single_step(fc, pre, post, tr_pre, tr_post, tau, tau + 1)
        ref_pre, ref_post = ref_exp(ref_pre, pre, tau), ref_exp(ref_post, post, tau + 1)
        ref_e = ref_linear_elig(fc.weight.data, pre, post, ref_pre, ref_post, FS["identity"], FS["identity"])
        assert e.shape == (batch, 3, 4)
        torch.testing.assert_close(tr_pre, ref_pre, atol=ATOL, rtol=0)
        torch.testing.assert_close(tr_post, ref_post, atol=ATOL, rtol=0)
        torch.testing.assert_close(e, ref_e, atol=ATOL, rtol=0)


def test_mstdpet_linear_single_step_unbatched():
    gen = torch.Generator().manual_seed(3)
    fc = nn.Linear(5, 2, bias=False).to(DT)
    tr_pre = tr_post = None
    ref_pre, ref_post = torch.zeros(5, dtype=DT), torch.zeros(2, dtype=DT)
    for _ in range(4):
        pre, post = spikes(gen, 5), spikes(gen, 2)
        tr_pre, tr_post, e = mstdpet_linear_single_step(fc, pre, post, tr_pre, tr_post, 3.0, 4.0, 5.0)
        ref_pre, ref_post = ref_exp(ref_pre, pre, 3.0), ref_exp(ref_post, post, 4.0)
        ref_e = ref_linear_elig(
            fc.weight.data,
            pre[None],
            post[None],
            ref_pre[None],
            ref_post[None],
            FS["identity"],
            FS["identity"],
        )[0]
        assert e.shape == fc.weight.shape
        torch.testing.assert_close(e, ref_e, atol=ATOL, rtol=0)
        torch.testing.assert_close(tr_pre, ref_pre, atol=ATOL, rtol=0)


CONV2D_CASES = [
    dict(kernel_size=3, stride=1, padding=0, padding_mode="zeros"),
    dict(kernel_size=3, stride=2, padding=1, padding_mode="zeros"),
    dict(kernel_size=2, stride=1, padding=1, padding_mode="circular"),
    dict(kernel_size=3, stride=1, padding=1, padding_mode="reflect"),
    dict(kernel_size=(2, 3), stride=(2, 1), padding=(1, 2), padding_mode="replicate"),
]


@pytest.mark.parametrize("cfg", CONV2D_CASES)
@pytest.mark.parametrize("batch", [1, 2])
def test_stdp_conv2d_single_step_matches_loop(cfg, batch):
    gen = torch.Generator().manual_seed(batch)
    conv = nn.Conv2d(2, 3, bias=False, **cfg).to(DT)
    f = FS["identity"] if cfg["padding_mode"] == "zeros" else FS["clamp"]
    x0 = torch.zeros(batch, 2, 5, 5, dtype=DT)
    y0 = conv(x0)
    ho, wo = y0.shape[2:]
    tr_pre = tr_post = None
    ref_pre = ref_post = None
    stride = conv.stride
    for _ in range(3):
        pre, post = spikes(gen, batch, 2, 5, 5), spikes(gen, batch, 3, ho, wo)
        tr_pre, tr_post, dw = stdp_conv2d_single_step(conv, pre, post, tr_pre, tr_post, 2.0, 3.0, f, f)
        pre_pad = ref_pad(pre, conv_pads(conv), conv.padding_mode)
        ref_pre = ref_euler(torch.zeros_like(pre_pad) if ref_pre is None else ref_pre, pre_pad, 2.0)
        ref_post = ref_euler(torch.zeros_like(post) if ref_post is None else ref_post, post, 3.0)
        ref_dw = ref_conv2d_delta(conv.weight.data, pre_pad, post, ref_pre, ref_post, stride, f, f)
        torch.testing.assert_close(tr_pre, ref_pre, atol=ATOL, rtol=0)
        torch.testing.assert_close(tr_post, ref_post, atol=ATOL, rtol=0)
        torch.testing.assert_close(dw, ref_dw, atol=ATOL, rtol=0)


@pytest.mark.parametrize(
    "cfg", [dict(stride=1, padding=0), dict(stride=2, padding=1), dict(stride=1, padding=2)]
)
@pytest.mark.parametrize("batch", [1, 3])
def test_stdp_conv1d_single_step_matches_loop(cfg, batch):
    gen = torch.Generator().manual_seed(7)
    conv = nn.Conv1d(2, 2, kernel_size=3, bias=False, **cfg).to(DT)
    lo = conv(torch.zeros(batch, 2, 7, dtype=DT)).shape[-1]
    tr_pre = tr_post = None
    ref_pre, ref_post = None, None
    for _ in range(3):
        pre, post = spikes(gen, batch, 2, 7), spikes(gen, batch, 2, lo)
        tr_pre, tr_post, dw = stdp_conv1d_single_step(conv, pre, post, tr_pre, tr_post, 4.0, 2.0)
        pre_pad = ref_pad(pre, conv_pads(conv), "zeros")
        ref_pre = ref_euler(torch.zeros_like(pre_pad) if ref_pre is None else ref_pre, pre_pad, 4.0)
        ref_post = ref_euler(torch.zeros_like(post) if ref_post is None else ref_post, post, 2.0)
        ref_dw = ref_conv1d_delta(
            conv.weight.data, pre_pad, post, ref_pre, ref_post, conv.stride[0], FS["identity"], FS["identity"]
        )
        torch.testing.assert_close(dw, ref_dw, atol=ATOL, rtol=0)
        torch.testing.assert_close(tr_pre, ref_pre, atol=ATOL, rtol=0)


def test_stdp_multi_step_equals_sum_of_single_steps_loop():
    gen = torch.Generator().manual_seed(11)
    T, B = 5, 2
    fc = nn.Linear(4, 3, bias=False).to(DT)
    pre, post = spikes(gen, T, B, 4), spikes(gen, T, B, 3)
    tr_pre, tr_post, dw = stdp_multi_step(fc, pre, post, None, None, 2.0, 5.0)
    rp, rq = torch.zeros(B, 4, dtype=DT), torch.zeros(B, 3, dtype=DT)
    ref = torch.zeros_like(fc.weight)
    for t in range(T):
        rp, rq = ref_euler(rp, pre[t], 2.0), ref_euler(rq, post[t], 5.0)
        ref += ref_linear_elig(fc.weight.data, pre[t], post[t], rp, rq, FS["identity"], FS["identity"]).sum(0)
    torch.testing.assert_close(dw, ref, atol=ATOL, rtol=0)
    torch.testing.assert_close(tr_pre, rp, atol=ATOL, rtol=0)
    torch.testing.assert_close(tr_post, rq, atol=ATOL, rtol=0)

    conv = nn.Conv2d(1, 2, 2, padding=1, bias=False).to(DT)
    x, y = spikes(gen, T, B, 1, 3, 3), spikes(gen, T, B, 2, 4, 4)
    _, _, dwc = stdp_multi_step(conv, x, y, None, None, 2.0, 3.0)
    rp, rq, refc = None, None, torch.zeros_like(conv.weight)
    for t in range(T):
        xp = ref_pad(x[t], conv_pads(conv), "zeros")
        rp = ref_euler(torch.zeros_like(xp) if rp is None else rp, xp, 2.0)
        rq = ref_euler(torch.zeros_like(y[t]) if rq is None else rq, y[t], 3.0)
        refc += ref_conv2d_delta(conv.weight.data, xp, y[t], rp, rq, (1, 1), FS["identity"], FS["identity"])
    torch.testing.assert_close(dwc, refc, atol=ATOL, rtol=0)


# --------------------------------------------------------------------------- STDP window
@pytest.mark.parametrize("dt_steps", [-4, -2, -1, 0, 1, 2, 4])
def test_stdp_window_shape_single_pair(dt_steps):
    """pre at t_pre, post at t_pre + dt: Δw = (1 - 1/τ_pre)^dt for dt > 0, -(1 - 1/τ_post)^|dt| for dt < 0."""
    tau_pre, tau_post, T, t_pre = 4.0, 6.0, 12, 5
    fc = nn.Linear(1, 1, bias=False).to(DT)
    pre, post = torch.zeros(T, 1, 1, dtype=DT), torch.zeros(T, 1, 1, dtype=DT)
    pre[t_pre], post[t_pre + dt_steps] = 1.0, 1.0
    one = lambda w: 1.0  # noqa: E731  additive STDP: the window alone
    _, _, dw = stdp_multi_step(fc, pre, post, None, None, tau_pre, tau_post, one, one)
    if dt_steps > 0:
        expected = (1 - 1 / tau_pre) ** dt_steps
    elif dt_steps < 0:
        expected = -((1 - 1 / tau_post) ** -dt_steps)
    else:
        expected = 0.0
    assert dw.item() == pytest.approx(expected, abs=1e-12)


def test_stdp_window_monotone_in_lag_and_mstdp_exponential():
    tau = 5.0
    values, evalues = [], []
    for lag in range(1, 6):
        fc = nn.Linear(1, 1, bias=False).to(DT)
        pre, post = torch.zeros(8, 1, 1, dtype=DT), torch.zeros(8, 1, 1, dtype=DT)
        pre[0], post[lag] = 1.0, 1.0
        values.append(
            stdp_multi_step(fc, pre, post, None, None, tau, tau, lambda w: 1.0, lambda w: 1.0)[2].item()
        )
        tp = tq = None
        e_sum = 0.0
        for t in range(8):
            tp, tq, e = mstdp_linear_single_step(
                fc, pre[t], post[t], tp, tq, tau, tau, lambda w: 1.0, lambda w: 1.0
            )
            e_sum += e.sum().item()
        evalues.append(e_sum)
    assert all(a > b > 0 for a, b in itertools.pairwise(values))
    for lag, v in zip(range(1, 6), evalues):
        assert v == pytest.approx(math.exp(-lag / tau), rel=1e-12)


# --------------------------------------------------------------------------- STDPLearner
def linear_ref_run(W0, pres, posts, tau_pre, tau_post, f, lr, mode_m):
    """SGD(lr) after every step: W += lr * Δw with Δw from the loop reference (per time step)."""
    W = W0.clone()
    rp = rq = None
    traj, deltas = [], []
    for pre, post in zip(pres, posts):
        seq = list(zip(pre, post)) if mode_m else [(pre, post)]
        d = torch.zeros_like(W)
        for x, y in seq:
            rp = ref_euler(torch.zeros_like(x) if rp is None else rp, x, tau_pre)
            rq = ref_euler(torch.zeros_like(y) if rq is None else rq, y, tau_post)
            d += ref_linear_elig(W, x, y, rp, rq, f, f).sum(0)
        deltas.append(d)
        W = W + lr * d
        traj.append(W.clone())
    return traj, deltas, rp, rq


@pytest.mark.parametrize("step_mode", ["s", "m"])
@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("fname", ["identity", "const"])
def test_stdp_learner_linear_weight_trajectory(step_mode, batch, fname):
    gen = torch.Generator().manual_seed(batch + 10 * (step_mode == "m"))
    T = 3
    fc = nn.Linear(4, 3).to(DT)
    bias0 = fc.bias.detach().clone()
    W0 = fc.weight.detach().clone()
    shape_in = (T, batch, 4) if step_mode == "m" else (batch, 4)
    shape_out = (T, batch, 3) if step_mode == "m" else (batch, 3)
    pres = [spikes(gen, *shape_in) for _ in range(4)]
    posts = [spikes(gen, *shape_out) for _ in range(4)]
    sn = Replay(posts)
    f = FS[fname]
    learner = STDPLearner(step_mode, fc, sn, 2.0, 3.0, f, f)
    opt = torch.optim.SGD(fc.parameters(), lr=0.1)
    traj, deltas, rp, rq = linear_ref_run(W0, pres, posts, 2.0, 3.0, f, 0.1, step_mode == "m")
    for k, x in enumerate(pres):
        opt.zero_grad()
        drive(fc, sn, x)
        w_before = fc.weight.detach().clone()
        learner.step(on_grad=True)
        torch.testing.assert_close(fc.weight.detach(), w_before)  # step never edits the weight
        torch.testing.assert_close(fc.weight.grad, -deltas[k], atol=ATOL, rtol=0)
        assert fc.bias.grad is None
        opt.step()
        torch.testing.assert_close(fc.weight.detach(), traj[k], atol=ATOL, rtol=0)
    torch.testing.assert_close(fc.bias.detach(), bias0)
    torch.testing.assert_close(learner.trace_pre, rp, atol=ATOL, rtol=0)
    torch.testing.assert_close(learner.trace_post, rq, atol=ATOL, rtol=0)


def test_stdp_learner_return_scale_accumulate_and_multiple_records():
    gen = torch.Generator().manual_seed(5)
    fc = nn.Linear(4, 2, bias=False).to(DT)
    xs, ys = [spikes(gen, 2, 4) for _ in range(3)], [spikes(gen, 2, 2) for _ in range(3)]
    sn = Replay(ys)
    learner = STDPLearner("s", fc, sn, 3.0, 3.0)
    for x in xs:  # three records consumed by one step()
        drive(fc, sn, x)
    rp = rq = None
    ref = torch.zeros_like(fc.weight)
    for x, y in zip(xs, ys):
        rp = ref_euler(torch.zeros_like(x) if rp is None else rp, x, 3.0)
        rq = ref_euler(torch.zeros_like(y) if rq is None else rq, y, 3.0)
        ref += ref_linear_elig(fc.weight.data, x, y, rp, rq, FS["identity"], FS["identity"]).sum(0)
    dw = learner.step(on_grad=False, scale=0.5)
    torch.testing.assert_close(dw, 0.5 * ref, atol=ATOL, rtol=0)
    assert fc.weight.grad is None
    assert learner.step(on_grad=False) is None  # nothing recorded
    # on_grad accumulates into an existing grad
    fc.weight.grad = torch.ones_like(fc.weight)
    learner.reset()
    sn.outputs = [ys[0]]
    drive(fc, sn, xs[0])
    learner.step(on_grad=True, scale=2.0)
    d0 = ref_linear_elig(fc.weight.data, xs[0], ys[0], xs[0], ys[0], FS["identity"], FS["identity"]).sum(0)
    torch.testing.assert_close(fc.weight.grad, 1.0 - 2.0 * d0, atol=ATOL, rtol=0)
    grad = fc.weight.grad.clone()
    assert learner.step() is None
    torch.testing.assert_close(fc.weight.grad, grad)


@pytest.mark.parametrize("step_mode", ["s", "m"])
@pytest.mark.parametrize("batch", [1, 2])
def test_stdp_learner_conv2d_and_conv1d(step_mode, batch):
    """Step-mode conv wrappers (subclasses of nn.Conv2d / nn.Conv1d) record [N, ...] or [T, N, ...]."""
    layer = pytest.importorskip("snnlab.layer")
    gen = torch.Generator().manual_seed(batch)
    T = 2
    for conv, in_sp in [
        (
            layer.Conv2d(2, 2, 3, 2, 1, padding_mode="circular", bias=False, step_mode=step_mode).to(DT),
            (2, 5, 5),
        ),
        (layer.Conv1d(2, 3, 2, stride=1, padding=1, bias=False, step_mode=step_mode).to(DT), (2, 6)),
    ]:
        assert isinstance(conv, (nn.Conv2d, nn.Conv1d))
        out_sp = tuple(conv(torch.zeros(*lead_of(step_mode, 1), *in_sp, dtype=DT)).shape[-len(in_sp) :])
        lead = (T, batch) if step_mode == "m" else (batch,)
        xs = [spikes(gen, *lead, *in_sp) for _ in range(2)]
        ys = [spikes(gen, *lead, *out_sp) for _ in range(2)]
        sn = Replay(ys)
        learner = STDPLearner(step_mode, conv, sn, 2.0, 4.0)
        rp = rq = None
        for x, y in zip(xs, ys):
            drive(conv, sn, x)
            dw = learner.step(on_grad=False)
            ref = torch.zeros_like(conv.weight)
            for xt, yt in zip(x, y) if step_mode == "m" else [(x, y)]:
                xp = ref_pad(xt, conv_pads(conv), conv.padding_mode)
                rp = ref_euler(torch.zeros_like(xp) if rp is None else rp, xp, 2.0)
                rq = ref_euler(torch.zeros_like(yt) if rq is None else rq, yt, 4.0)
                delta_fn = ref_conv2d_delta if conv.weight.dim() == 4 else ref_conv1d_delta
                stride = conv.stride if conv.weight.dim() == 4 else conv.stride[0]
                ref += delta_fn(conv.weight.data, xp, yt, rp, rq, stride, FS["identity"], FS["identity"])
            torch.testing.assert_close(dw, ref, atol=ATOL, rtol=0)
        torch.testing.assert_close(learner.trace_pre, rp, atol=ATOL, rtol=0)


def lead_of(step_mode: str, batch: int) -> tuple[int, ...]:
    return (2, batch) if step_mode == "m" else (batch,)


def test_stdp_learner_with_snnlab_layer_and_tuple_output():
    layer = pytest.importorskip("snnlab.layer")
    fc = layer.Linear(3, 2, bias=False).to(DT)
    gen = torch.Generator().manual_seed(1)
    x, y = spikes(gen, 2, 3), spikes(gen, 2, 2)
    sn = Replay([y], as_tuple=True)
    learner = STDPLearner("s", fc, sn, 2.0, 2.0)
    drive(fc, sn, x)
    dw = learner.step(on_grad=False)
    ref = ref_linear_elig(fc.weight.data, x, y, x, y, FS["identity"], FS["identity"]).sum(0)
    torch.testing.assert_close(dw, ref, atol=ATOL, rtol=0)


def test_learner_disable_enable_and_reset():
    fc = nn.Linear(2, 2, bias=False).to(DT)
    sn = Replay([torch.ones(1, 2, dtype=DT)] * 3)
    learner = STDPLearner("s", fc, sn, 2.0, 2.0)
    learner.disable()
    drive(fc, sn, torch.ones(1, 2, dtype=DT))
    assert learner.step(on_grad=False) is None
    learner.enable()
    drive(fc, sn, torch.ones(1, 2, dtype=DT))
    assert learner.step(on_grad=False) is not None
    assert learner.trace_pre is not None
    drive(fc, sn, torch.ones(1, 2, dtype=DT))
    learner.reset()
    assert learner.trace_pre is None and learner.trace_post is None
    assert learner.in_spike_monitor.records == [] and learner.out_spike_monitor.records == []


# --------------------------------------------------------------------------- MSTDPLearner
def mstdp_reference(W_traj, pres, posts, rewards, tau_pre, tau_post, mode_m, f):
    """Returns per-call Δw (reward of call k × eligibility of the previous time step) and final state."""
    rp = rq = None
    e_prev = None
    deltas = []
    for k, (pre, post) in enumerate(zip(pres, posts)):
        W = W_traj[k]
        r = rewards[k]
        seq = list(zip(pre, post)) if mode_m else [(pre, post)]
        d = torch.zeros_like(W)
        for x, y in seq:
            if e_prev is not None:
                rr = torch.as_tensor(r, dtype=DT).reshape(-1)
                rr = rr.expand(e_prev.shape[0]) if rr.numel() == 1 else rr
                for b in range(e_prev.shape[0]):
                    d += rr[b] * e_prev[b]
            rp = ref_exp(torch.zeros_like(x) if rp is None else rp, x, tau_pre)
            rq = ref_exp(torch.zeros_like(y) if rq is None else rq, y, tau_post)
            e_prev = ref_linear_elig(W, x, y, rp, rq, f, f)
        deltas.append(d)
    return deltas, e_prev, rp, rq


@pytest.mark.parametrize("step_mode", ["s", "m"])
@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("reward_kind", ["float", "0d", "batch"])
def test_mstdp_learner_linear_matches_loop(step_mode, batch, reward_kind):
    gen = torch.Generator().manual_seed(batch * 7 + len(reward_kind))
    T, n_calls, lr = 2, 4, 0.2
    fc = nn.Linear(4, 3, bias=False).to(DT)
    lead = (T, batch) if step_mode == "m" else (batch,)
    pres = [spikes(gen, *lead, 4) for _ in range(n_calls)]
    posts = [spikes(gen, *lead, 3) for _ in range(n_calls)]
    raw = [torch.randn(batch, generator=gen, dtype=DT) for _ in range(n_calls)]
    if reward_kind == "float":
        rewards = [float(r[0]) for r in raw]
    elif reward_kind == "0d":
        rewards = [r[0].clone() for r in raw]
    else:
        rewards = raw
    sn = Replay(posts)
    learner = MSTDPLearner(step_mode, batch, fc, sn, 3.0, 5.0)
    opt = torch.optim.SGD(fc.parameters(), lr=lr)
    W_traj = [fc.weight.detach().clone()]
    grads = []
    for k in range(n_calls):
        opt.zero_grad()
        drive(fc, sn, pres[k])
        learner.step(rewards[k], on_grad=True)
        grads.append(fc.weight.grad.clone())
        opt.step()
        W_traj.append(fc.weight.detach().clone())
    deltas, e_last, rp, rq = mstdp_reference(
        W_traj, pres, posts, rewards, 3.0, 5.0, step_mode == "m", FS["identity"]
    )
    torch.testing.assert_close(grads[0], torch.zeros_like(grads[0]))  # the first call yields zero
    for k in range(n_calls):
        torch.testing.assert_close(grads[k], -deltas[k], atol=ATOL, rtol=0)
        torch.testing.assert_close(W_traj[k + 1], W_traj[k] + lr * deltas[k], atol=ATOL, rtol=0)
    torch.testing.assert_close(learner.eligibility, e_last, atol=ATOL, rtol=0)
    torch.testing.assert_close(learner.trace_pre, rp, atol=ATOL, rtol=0)
    torch.testing.assert_close(learner.trace_post, rq, atol=ATOL, rtol=0)


def test_mstdp_learner_conv_and_return_value():
    gen = torch.Generator().manual_seed(2)
    conv = nn.Conv2d(1, 2, 2, bias=False).to(DT)
    xs, ys = [spikes(gen, 2, 1, 3, 3) for _ in range(3)], [spikes(gen, 2, 2, 2, 2) for _ in range(3)]
    rewards = [torch.tensor([1.0, -0.5], dtype=DT), torch.tensor([0.3, 2.0], dtype=DT), 1.5]
    sn = Replay(ys)
    learner = MSTDPLearner("s", 2, conv, sn, 2.0, 2.0)
    rp = rq = None
    e_prev = None
    for x, y, r in zip(xs, ys, rewards):
        drive(conv, sn, x)
        dw = learner.step(r, on_grad=False, scale=0.5)
        ref = torch.zeros_like(conv.weight)
        if e_prev is not None:
            rr = torch.as_tensor(r, dtype=DT).reshape(-1).expand(2)
            ref = 0.5 * sum(rr[b] * e_prev[b] for b in range(2))
        torch.testing.assert_close(dw, ref, atol=ATOL, rtol=0)
        rp = ref_exp(torch.zeros_like(x) if rp is None else rp, x, 2.0)
        rq = ref_exp(torch.zeros_like(y) if rq is None else rq, y, 2.0)
        e_prev = torch.stack(
            [
                ref_conv2d_delta(
                    conv.weight.data,
                    x[b : b + 1],
                    y[b : b + 1],
                    rp[b : b + 1],
                    rq[b : b + 1],
                    (1, 1),
                    FS["identity"],
                    FS["identity"],
                )
                for b in range(2)
            ]
        )
        torch.testing.assert_close(learner.eligibility, e_prev, atol=ATOL, rtol=0)


def test_reward_sign_flips_update():
    gen = torch.Generator().manual_seed(9)
    xs, ys = [spikes(gen, 2, 4) for _ in range(3)], [spikes(gen, 2, 3) for _ in range(3)]
    results = {}
    for cls, sign in [
        (MSTDPLearner, 1.0),
        (MSTDPLearner, -1.0),
        (MSTDPETLearner, 1.0),
        (MSTDPETLearner, -1.0),
    ]:
        torch.manual_seed(0)
        fc = nn.Linear(4, 3, bias=False).to(DT)
        sn = Replay(list(ys))
        learner = cls("s", 2, fc, sn, 2.0, 2.0) if cls is MSTDPLearner else cls("s", fc, sn, 2.0, 2.0, 3.0)
        total = torch.zeros_like(fc.weight)
        for x in xs:
            drive(fc, sn, x)
            total += learner.step(sign, on_grad=False)
        results[(cls, sign)] = total
    for cls in (MSTDPLearner, MSTDPETLearner):
        assert results[(cls, 1.0)].abs().sum() > 0
        torch.testing.assert_close(results[(cls, -1.0)], -results[(cls, 1.0)], atol=ATOL, rtol=0)


def test_mstdp_reset_clears_traces_and_eligibility():
    gen = torch.Generator().manual_seed(4)
    fc = nn.Linear(3, 2, bias=False).to(DT)
    ys = [spikes(gen, 1, 2, p=0.9) for _ in range(4)]
    sn = Replay(ys)
    learner = MSTDPLearner("s", 1, fc, sn, 2.0, 2.0)
    drive(fc, sn, torch.ones(1, 3, dtype=DT))
    learner.step(1.0)
    assert learner.eligibility is not None
    learner.reset()
    assert learner.eligibility is None and learner.trace_pre is None
    drive(fc, sn, torch.ones(1, 3, dtype=DT))
    dw = learner.step(1.0, on_grad=False)
    torch.testing.assert_close(dw, torch.zeros_like(dw))  # the first call after reset yields zero

    et = MSTDPETLearner("s", fc, sn, 2.0, 2.0, 4.0)
    drive(fc, sn, torch.ones(1, 3, dtype=DT))
    et.step(1.0)
    drive(fc, sn, torch.ones(1, 3, dtype=DT))
    et.step(1.0)
    assert et.eligibility is not None and et.trace_e is not None
    et.reset()
    assert et.eligibility is None and et.trace_e is None and et.trace_pre is None


# --------------------------------------------------------------------------- MSTDPETLearner
@pytest.mark.parametrize("step_mode", ["s", "m"])
@pytest.mark.parametrize("shape", ["unbatched", "batch1", "batch3"])
def test_mstdpet_learner_linear_matches_loop(step_mode, shape):
    gen = torch.Generator().manual_seed(len(shape) + (step_mode == "m"))
    T, n_calls, tau_pre, tau_post, tau_tr = 2, 4, 2.0, 3.0, 4.0
    batch = {"unbatched": None, "batch1": 1, "batch3": 3}[shape]
    fc = nn.Linear(4, 2, bias=False).to(DT)
    bshape = () if batch is None else (batch,)
    lead = (T, *bshape) if step_mode == "m" else bshape
    pres = [spikes(gen, *lead, 4) for _ in range(n_calls)]
    posts = [spikes(gen, *lead, 2) for _ in range(n_calls)]
    if batch in (None, 1):
        rewards = [0.7, -1.2, torch.tensor(0.4, dtype=DT), 2.0]
    else:
        rewards = [torch.randn(batch, generator=gen, dtype=DT) for _ in range(n_calls)]
    sn = Replay(posts)
    learner = MSTDPETLearner(step_mode, fc, sn, tau_pre, tau_post, tau_tr)
    nb = 1 if batch is None else batch
    rp = rq = None
    e_prev = torch.zeros(nb, 2, 4, dtype=DT)
    trace_e = torch.zeros(nb, 2, 4, dtype=DT)
    for k in range(n_calls):
        drive(fc, sn, pres[k])
        fc.weight.grad = None
        learner.step(rewards[k], on_grad=True)
        seq = list(zip(pres[k], posts[k])) if step_mode == "m" else [(pres[k], posts[k])]
        d = torch.zeros(2, 4, dtype=DT)
        rr = torch.as_tensor(rewards[k], dtype=DT).reshape(-1)
        rr = rr.expand(nb) if rr.numel() == 1 else rr
        for x, y in seq:
            x2, y2 = x.reshape(nb, 4), y.reshape(nb, 2)
            trace_e = trace_e * math.exp(-1 / tau_tr) + e_prev / tau_tr
            for b in range(nb):
                d += rr[b] * trace_e[b]
            rp = ref_exp(torch.zeros_like(x2) if rp is None else rp, x2, tau_pre)
            rq = ref_exp(torch.zeros_like(y2) if rq is None else rq, y2, tau_post)
            e_prev = ref_linear_elig(fc.weight.data, x2, y2, rp, rq, FS["identity"], FS["identity"])
        torch.testing.assert_close(fc.weight.grad, -d, atol=ATOL, rtol=0)
        exp_e = e_prev[0] if batch is None else e_prev
        torch.testing.assert_close(learner.eligibility, exp_e, atol=ATOL, rtol=0)
        exp_tr = trace_e[0] if batch is None else trace_e
        torch.testing.assert_close(learner.trace_e.reshape(exp_tr.shape), exp_tr, atol=ATOL, rtol=0)
        with torch.no_grad():
            fc.weight.add_(0.05 * d)  # the weight moves between calls


def test_mstdpet_learner_conv2d():
    gen = torch.Generator().manual_seed(8)
    conv = nn.Conv2d(1, 1, 2, bias=False).to(DT)
    xs, ys = [spikes(gen, 2, 1, 3, 3) for _ in range(3)], [spikes(gen, 2, 1, 2, 2) for _ in range(3)]
    sn = Replay(ys)
    learner = MSTDPETLearner("s", conv, sn, 2.0, 2.0, 3.0)
    rp = rq = None
    e_prev = torch.zeros(2, *conv.weight.shape, dtype=DT)
    trace_e = torch.zeros_like(e_prev)
    for x, y in zip(xs, ys):
        drive(conv, sn, x)
        dw = learner.step(torch.tensor([1.0, -2.0], dtype=DT), on_grad=False)
        trace_e = trace_e * math.exp(-1 / 3.0) + e_prev / 3.0
        torch.testing.assert_close(dw, trace_e[0] - 2.0 * trace_e[1], atol=ATOL, rtol=0)
        rp = ref_exp(torch.zeros_like(x) if rp is None else rp, x, 2.0)
        rq = ref_exp(torch.zeros_like(y) if rq is None else rq, y, 2.0)
        e_prev = torch.stack(
            [
                ref_conv2d_delta(
                    conv.weight.data,
                    x[b : b + 1],
                    y[b : b + 1],
                    rp[b : b + 1],
                    rq[b : b + 1],
                    (1, 1),
                    FS["identity"],
                    FS["identity"],
                )
                for b in range(2)
            ]
        )


# --------------------------------------------------------------------------- bad input
def test_dilation_and_groups_not_implemented():
    x, y = torch.zeros(1, 2, 5, 5), torch.zeros(1, 2, 1, 1)
    with pytest.raises(NotImplementedError, match="dilation"):
        stdp_conv2d_single_step(nn.Conv2d(2, 2, 3, dilation=2), x, y, None, None, 2.0, 2.0)
    with pytest.raises(NotImplementedError, match="groups"):
        stdp_conv2d_single_step(
            nn.Conv2d(2, 2, 3, groups=2), x, torch.zeros(1, 2, 3, 3), None, None, 2.0, 2.0
        )
    with pytest.raises(NotImplementedError, match="dilation"):
        stdp_conv1d_single_step(
            nn.Conv1d(2, 2, 3, dilation=2), torch.zeros(1, 2, 7), torch.zeros(1, 2, 3), None, None, 2.0, 2.0
        )
    with pytest.raises(NotImplementedError, match="groups"):
        STDPLearner("s", nn.Conv2d(2, 2, 3, groups=2), nn.Identity(), 2.0, 2.0)
    with pytest.raises(NotImplementedError, match="dilation"):
        MSTDPLearner("s", 1, nn.Conv1d(2, 2, 3, dilation=3), nn.Identity(), 2.0, 2.0)


def test_unsupported_synapse():
    with pytest.raises(NotImplementedError, match="synapse"):
        STDPLearner("s", nn.Conv3d(1, 1, 1), nn.Identity(), 2.0, 2.0)
    with pytest.raises(TypeError, match="layer"):
        stdp_multi_step(
            nn.Bilinear(2, 2, 2), torch.zeros(2, 1, 2), torch.zeros(2, 1, 2), None, None, 2.0, 2.0
        )


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf")])
def test_bad_tau_raises(bad):
    fc = nn.Linear(2, 2)
    with pytest.raises(ValueError, match="tau_pre"):
        STDPLearner("s", fc, nn.Identity(), bad, 2.0)
    with pytest.raises(ValueError, match="tau_post"):
        MSTDPLearner("s", 1, fc, nn.Identity(), 2.0, bad)
    with pytest.raises(ValueError, match="tau_trace"):
        MSTDPETLearner("s", fc, nn.Identity(), 2.0, 2.0, bad)
    with pytest.raises(ValueError, match="tau_pre"):
        stdp_linear_single_step(fc, torch.zeros(1, 2), torch.zeros(1, 2), None, None, bad, 2.0)
    with pytest.raises(ValueError, match="tau_trace"):
        mstdpet_linear_single_step(fc, torch.zeros(2), torch.zeros(2), None, None, 2.0, 2.0, bad)
    learner = STDPLearner("s", fc, nn.Identity(), 2.0, 2.0)
    with pytest.raises(ValueError, match="tau_post"):
        learner.tau_post = bad


def test_bad_tau_type_step_mode_and_f():
    fc = nn.Linear(2, 2)
    with pytest.raises(TypeError, match="tau_pre"):
        STDPLearner("s", fc, nn.Identity(), "2", 2.0)
    with pytest.raises(ValueError, match="step_mode"):
        STDPLearner("x", fc, nn.Identity(), 2.0, 2.0)
    with pytest.raises(TypeError, match="f_pre"):
        STDPLearner("s", fc, nn.Identity(), 2.0, 2.0, f_pre=3)
    with pytest.raises(ValueError, match="batch_size"):
        MSTDPLearner("s", 0, fc, nn.Identity(), 2.0, 2.0)


@pytest.mark.parametrize("cls", ["mstdp", "mstdpet"])
def test_bad_reward_shape_raises(cls):
    fc = nn.Linear(3, 2, bias=False)
    sn = Replay([torch.ones(2, 2)] * 3)
    if cls == "mstdp":
        learner = MSTDPLearner("s", 2, fc, sn, 2.0, 2.0)
    else:
        learner = MSTDPETLearner("s", fc, sn, 2.0, 2.0, 2.0)
    for _ in range(2):
        drive(fc, sn, torch.ones(2, 3))
        learner.step(torch.ones(2))
    drive(fc, sn, torch.ones(2, 3))
    with pytest.raises(ValueError, match="reward"):
        learner.step(torch.ones(3))
    with pytest.raises(ValueError, match="reward"):
        learner.step(torch.ones(2, 2))
    with pytest.raises(TypeError, match="reward"):
        learner.step("1")


def test_bad_spike_shapes():
    fc = nn.Linear(3, 2)
    with pytest.raises(ValueError, match="in_spike"):
        stdp_linear_single_step(fc, torch.zeros(1, 4), torch.zeros(1, 2), None, None, 2.0, 2.0)
    with pytest.raises(ValueError, match="out_spike"):
        stdp_linear_single_step(fc, torch.zeros(1, 3), torch.zeros(1, 5), None, None, 2.0, 2.0)
    with pytest.raises(ValueError, match="trace_pre"):
        stdp_linear_single_step(fc, torch.zeros(2, 3), torch.zeros(2, 2), torch.zeros(3, 3), None, 2.0, 2.0)


# --------------------------------------------------------------------------- registry
def test_registry_entries():
    algos = learning.learning_algorithms
    assert algos["stdp"] is STDPLearner
    assert algos["mstdpet"] is MSTDPETLearner
    assert issubclass(algos["mstdp"], MSTDPLearner)
    fc = nn.Linear(3, 2)
    m = learning.create("mstdp", "s", fc, nn.Identity(), batch_size=2, tau_pre=2.0, tau_post=3.0)
    assert isinstance(m, MSTDPLearner) and m.batch_size == 2 and m.tau_post == 3.0
    s = learning.create("stdp", "m", fc, nn.Identity(), tau_pre=2.0, tau_post=2.0)
    assert isinstance(s, STDPLearner) and s.step_mode == "m"
    with pytest.raises(ValueError, match="stdp"):
        learning.register("stdp", STDPLearner)
    with pytest.raises(TypeError, match="batch_size"):
        MSTDPLearner("s", fc, nn.Identity(), 2.0, 2.0, 2.0)


def test_public_names():
    for name in learning.stdp.__all__:
        assert hasattr(learning, name)


@pytest.mark.parametrize("rule", ["stdp", "mstdp"])
def test_sparse_spikes_on_a_wider_layer(rule):
    """Sparse spikes take the row / column update path; it must agree with the loop reference."""
    gen = torch.Generator().manual_seed(21)
    n_in, n_out, steps = 40, 30, 5
    fc = nn.Linear(n_in, n_out, bias=False).to(DT)
    xs = [spikes(gen, 1, n_in, p=0.05) for _ in range(steps)]
    ys = [spikes(gen, 1, n_out, p=0.05) for _ in range(steps)]
    sn = Replay(ys)
    one = lambda w: 1.0  # noqa: E731
    if rule == "stdp":
        learner = STDPLearner("s", fc, sn, 3.0, 3.0, one, one)
    else:
        learner = MSTDPLearner("s", 1, fc, sn, 3.0, 3.0, one, one)
    fc.weight.grad = torch.zeros_like(fc.weight)
    rp = rq = e_prev = None
    expected = torch.zeros_like(fc.weight)
    for x, y in zip(xs, ys):
        drive(fc, sn, x)
        if rule == "stdp":
            learner.step()
            rp = ref_euler(torch.zeros_like(x) if rp is None else rp, x, 3.0)
            rq = ref_euler(torch.zeros_like(y) if rq is None else rq, y, 3.0)
            expected -= ref_linear_elig(fc.weight.data, x, y, rp, rq, one, one).sum(0)
        else:
            learner.step(0.5)
            if e_prev is not None:
                expected -= 0.5 * e_prev[0]
            rp = ref_exp(torch.zeros_like(x) if rp is None else rp, x, 3.0)
            rq = ref_exp(torch.zeros_like(y) if rq is None else rq, y, 3.0)
            e_prev = ref_linear_elig(fc.weight.data, x, y, rp, rq, one, one)
        torch.testing.assert_close(fc.weight.grad, expected, atol=ATOL, rtol=0)


@pytest.mark.parametrize("step_mode", ["s", "m"])
@pytest.mark.parametrize("fname", ["identity", "const"])
def test_mstdp_learner_float32_sparse_batch_matches_loop(step_mode, fname):
    """float32 weights, sparse spikes, batch 5, weight moved by SGD between calls (the CPU fast path)."""
    gen = torch.Generator().manual_seed(31 + (step_mode == "m"))
    T, batch, n_calls, lr = 2, 5, 4, 0.3
    fc = nn.Linear(12, 9, bias=False)
    lead = (T, batch) if step_mode == "m" else (batch,)
    pres = [spikes(gen, *lead, 12, p=0.1).float() for _ in range(n_calls)]
    posts = [spikes(gen, *lead, 9, p=0.1).float() for _ in range(n_calls)]
    rewards = [torch.randn(batch, generator=gen) for _ in range(n_calls)]
    f = FS[fname]
    sn = Replay(posts)
    learner = MSTDPLearner(step_mode, batch, fc, sn, 3.0, 5.0, f, f)
    opt = torch.optim.SGD(fc.parameters(), lr=lr)
    W_traj = [fc.weight.detach().clone()]
    grads = []
    for k in range(n_calls):
        opt.zero_grad()
        drive(fc, sn, pres[k])
        learner.step(rewards[k], on_grad=True)
        grads.append(fc.weight.grad.clone())
        opt.step()
        W_traj.append(fc.weight.detach().clone())
    deltas, e_last, rp, rq = mstdp_reference(W_traj, pres, posts, rewards, 3.0, 5.0, step_mode == "m", f)
    for k in range(n_calls):
        torch.testing.assert_close(grads[k], -deltas[k].float(), atol=1e-5, rtol=0)
    torch.testing.assert_close(learner.eligibility, e_last.float(), atol=1e-5, rtol=0)
    torch.testing.assert_close(learner.trace_pre, rp.float(), atol=1e-6, rtol=0)
    torch.testing.assert_close(learner.trace_post, rq.float(), atol=1e-6, rtol=0)


@pytest.mark.parametrize("fname", ["identity", "const"])
def test_stdp_learner_float32_batch_return_value_matches_loop(fname):
    gen = torch.Generator().manual_seed(41)
    fc = nn.Linear(10, 7, bias=False)
    xs = [spikes(gen, 6, 10, p=0.15).float() for _ in range(3)]
    ys = [spikes(gen, 6, 7, p=0.15).float() for _ in range(3)]
    f = FS[fname]
    sn = Replay(ys)
    learner = STDPLearner("s", fc, sn, 2.5, 4.0, f, f)
    rp = rq = None
    for x, y in zip(xs, ys):
        drive(fc, sn, x)
        dw = learner.step(on_grad=False, scale=0.25)
        rp = ref_euler(torch.zeros_like(x) if rp is None else rp, x, 2.5)
        rq = ref_euler(torch.zeros_like(y) if rq is None else rq, y, 4.0)
        ref = 0.25 * ref_linear_elig(fc.weight.data, x, y, rp, rq, f, f).sum(0)
        torch.testing.assert_close(dw, ref, atol=1e-5, rtol=0)
    torch.testing.assert_close(learner.trace_pre, rp, atol=1e-6, rtol=0)
