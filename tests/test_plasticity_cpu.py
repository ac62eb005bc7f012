"""The fused CPU plasticity kernel against explicit loops written here."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from snnlab.kernels import plasticity_cpu as K
from snnlab.learning import MSTDPLearner, STDPLearner
from snnlab.learning import stdp as stdp_module

pytestmark = pytest.mark.skipif(not K.available(), reason="numba is not installed")

TOL = {torch.float64: 1e-10, torch.float32: 2e-5}
DENSITY = {"dense": 0.6, "sparse": 0.03, "zero": 0.0}


def spikes(gen: torch.Generator, shape: tuple[int, ...], p: float, dtype: torch.dtype) -> torch.Tensor:
    return (torch.rand(*shape, generator=gen) < p).to(dtype)


# --------------------------------------------------------------------------- plain references
def ref_trace(old: torch.Tensor, s: torch.Tensor, tau: float, euler: bool) -> torch.Tensor:
    out = torch.empty_like(old)
    for b in range(old.shape[0]):
        for j in range(old.shape[1]):
            x = old[b, j].item()
            out[b, j] = (x - x / tau if euler else x * math.exp(-1.0 / tau)) + s[b, j].item()
    return out


def ref_update(target, post, x_pre, x_post, pre, a, g_post, g_pre) -> torch.Tensor:
    """target[i, j] + Σ_b a[b] (G_post[i, j] post[b, i] x_pre[b, j] - G_pre[i, j] x_post[b, i] pre[b, j])."""
    out = target.clone()
    n_out, n_in = target.shape
    for i in range(n_out):
        for j in range(n_in):
            gp = g_post if isinstance(g_post, float) else g_post[i, j].item()
            gq = g_pre if isinstance(g_pre, float) else g_pre[i, j].item()
            acc = 0.0
            for b in range(post.shape[0]):
                acc += a[b] * (gp * post[b, i].item() * x_pre[b, j].item())
                acc -= a[b] * (gq * x_post[b, i].item() * pre[b, j].item())
            out[i, j] += acc
    return out


@pytest.fixture(params=["serial", "parallel"])
def kernel_variant(request, monkeypatch):
    """Run a test with the serial kernel (small synapses) and with the parallel one forced."""
    if request.param == "parallel":
        monkeypatch.setattr(K, "PARALLEL_MIN_WEIGHTS", 0)
    return request.param


def make_mod(kind: str, w: torch.Tensor) -> float | torch.Tensor:
    return {"additive": 0.7, "multiplicative": w, "zero": 0.0}[kind]


# --------------------------------------------------------------------------- STDP step
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("batch", [1, 4])
@pytest.mark.parametrize("density", sorted(DENSITY))
@pytest.mark.parametrize(
    "mods",
    [
        ("additive", "additive"),
        ("multiplicative", "multiplicative"),
        ("multiplicative", "additive"),
        ("zero", "multiplicative"),
    ],
)
def test_stdp_linear_step_matches_loops(dtype, batch, density, mods, kernel_variant):
    gen = torch.Generator().manual_seed(batch * 13 + len(density))
    n_out, n_in, tau_pre, tau_post = 7, 11, 3.0, 5.0
    w = torch.randn(n_out, n_in, generator=gen).to(dtype)
    target0 = torch.randn(n_out, n_in, generator=gen).to(dtype)
    target = target0.clone()
    g_post, g_pre = make_mod(mods[0], w), make_mod(mods[1], w)
    tr_pre, tr_post = None, None
    ref_pre, ref_post = torch.zeros(batch, n_in, dtype=dtype), torch.zeros(batch, n_out, dtype=dtype)
    expected = target0.clone()
    coeff = -0.5
    for _ in range(3):
        pre = spikes(gen, (batch, n_in), DENSITY[density], dtype)
        post = spikes(gen, (batch, n_out), DENSITY[density], dtype)
        tr_pre, tr_post = K.stdp_linear_step(
            target, pre, post, tr_pre, tr_post, tau_pre, tau_post, coeff, g_post, g_pre
        )
        ref_pre = ref_trace(ref_pre, pre, tau_pre, euler=True)
        ref_post = ref_trace(ref_post, post, tau_post, euler=True)
        expected = ref_update(expected, post, ref_pre, ref_post, pre, [coeff] * batch, g_post, g_pre)
        tol = TOL[dtype]
        torch.testing.assert_close(tr_pre, ref_pre, atol=tol, rtol=0)
        torch.testing.assert_close(tr_post, ref_post, atol=tol, rtol=0)
        torch.testing.assert_close(target, expected, atol=tol * 10, rtol=0)
    if density == "zero":
        torch.testing.assert_close(target, target0, atol=0, rtol=0)  # nothing fired: untouched


def test_stdp_linear_step_unbatched_and_old_traces_untouched():
    gen = torch.Generator().manual_seed(1)
    target = torch.zeros(3, 4, dtype=torch.float64)
    pre = spikes(gen, (4,), 0.5, torch.float64)
    post = torch.tensor([1.0, 0.0, 1.0], dtype=torch.float64)
    old_pre, old_post = torch.rand(4, dtype=torch.float64), torch.rand(3, dtype=torch.float64)
    keep_pre, keep_post = old_pre.clone(), old_post.clone()
    tp, tq = K.stdp_linear_step(target, pre, post, old_pre, old_post, 2.0, 4.0)
    assert tp.shape == (4,) and tq.shape == (3,)
    torch.testing.assert_close(old_pre, keep_pre, atol=0, rtol=0)
    torch.testing.assert_close(old_post, keep_post, atol=0, rtol=0)
    ref_pre = ref_trace(keep_pre[None], pre[None], 2.0, True)
    ref_post = ref_trace(keep_post[None], post[None], 4.0, True)
    expected = ref_update(
        torch.zeros(3, 4, dtype=torch.float64), post[None], ref_pre, ref_post, pre[None], [1.0], 1.0, 1.0
    )
    torch.testing.assert_close(target, expected, atol=1e-12, rtol=0)


def test_stdp_linear_step_scalar_and_broadcast_traces():
    target = torch.zeros(2, 3, dtype=torch.float64)
    pre = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]], dtype=torch.float64)
    post = torch.tensor([[1.0, 0.0], [0.0, 0.0]], dtype=torch.float64)
    tp, tq = K.stdp_linear_step(
        target, pre, post, 0.5, torch.tensor([0.25, 1.0], dtype=torch.float64), 2.0, 2.0
    )
    torch.testing.assert_close(tp, 0.25 + pre, atol=1e-15, rtol=0)
    torch.testing.assert_close(tq, torch.tensor([[0.125, 0.5]] * 2, dtype=torch.float64) + post)


# --------------------------------------------------------------------------- mSTDP step
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("density", sorted(DENSITY))
@pytest.mark.parametrize("mod", ["additive", "multiplicative"])
def test_mstdp_linear_step_matches_loops(dtype, batch, density, mod, kernel_variant):
    """Eligibility of step t-1 (with f(W) of step t-1) times the reward of step t; W moves in between."""
    gen = torch.Generator().manual_seed(batch + 7 * len(density))
    n_out, n_in, tau_pre, tau_post = 6, 9, 2.0, 4.0
    w = torch.randn(n_out, n_in, generator=gen).to(dtype)
    target = torch.zeros(n_out, n_in, dtype=dtype)
    snap = torch.full((n_out, n_in), 123.0, dtype=dtype)  # sentinel: only touched positions change
    tr_pre = tr_post = None
    ref_pre, ref_post = torch.zeros(batch, n_in, dtype=dtype), torch.zeros(batch, n_out, dtype=dtype)
    previous, prev_g = None, None
    expected = torch.zeros(n_out, n_in, dtype=dtype)
    for _ in range(4):
        pre = spikes(gen, (batch, n_in), DENSITY[density], dtype)
        post = spikes(gen, (batch, n_out), DENSITY[density], dtype)
        reward = torch.randn(batch, generator=gen).to(dtype)
        g = 0.8 if mod == "additive" else snap
        snap_before = snap.clone()
        tr_pre, tr_post = K.mstdp_linear_step(
            target,
            pre,
            post,
            tr_pre,
            tr_post,
            tau_pre,
            tau_post,
            previous,
            reward,
            g,
            g,
            snapshot=(snap, w) if mod == "multiplicative" else None,
        )
        if previous is not None:
            expected = ref_update(expected, *previous, reward.tolist(), prev_g, prev_g)
        ref_pre = ref_trace(ref_pre, pre, tau_pre, euler=False)
        ref_post = ref_trace(ref_post, post, tau_post, euler=False)
        tol = TOL[dtype]
        torch.testing.assert_close(target, expected, atol=tol * 10, rtol=0)
        torch.testing.assert_close(tr_pre, ref_pre, atol=tol, rtol=0)
        torch.testing.assert_close(tr_post, ref_post, atol=tol, rtol=0)
        if mod == "multiplicative":
            for i in range(n_out):
                for j in range(n_in):
                    touched = bool(post[:, i].any()) or bool(pre[:, j].any())
                    want = w[i, j] if touched else snap_before[i, j]
                    assert snap[i, j].item() == want.item(), (i, j)
            prev_g = w.clone()  # f(W) of this step, as the next call must see it
        else:
            prev_g = 0.8
        previous = K.Factors(post, tr_pre, tr_post, pre)
        with torch.no_grad():
            w += 0.1 * torch.randn(n_out, n_in, generator=gen).to(dtype)  # the weight moves


def test_pairing_update_matches_loop_and_zero_coeff():
    gen = torch.Generator().manual_seed(4)
    dt = torch.float64
    post, pre = spikes(gen, (2, 5), 0.5, dt), spikes(gen, (2, 4), 0.5, dt)
    xp, xq = torch.rand(2, 4, generator=gen, dtype=dt), torch.rand(2, 5, generator=gen, dtype=dt)
    g = torch.randn(5, 4, generator=gen, dtype=dt)
    target = torch.randn(5, 4, generator=gen, dtype=dt)
    expected = ref_update(target, post, xp, xq, pre, [1.5, -2.0], g, 0.3)
    out = K.pairing_update(target, K.Factors(post, xp, xq, pre), torch.tensor([1.5, -2.0], dtype=dt), g, 0.3)
    assert out is target
    torch.testing.assert_close(target, expected, atol=1e-12, rtol=0)
    before = target.clone()
    K.pairing_update(target, K.Factors(post, xp, xq, pre), 0.0, g, g)
    torch.testing.assert_close(target, before, atol=0, rtol=0)


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    n_out=st.integers(1, 9),
    n_in=st.integers(1, 9),
    batch=st.integers(1, 4),
    p=st.sampled_from([0.0, 0.1, 0.5, 1.0]),
    mult=st.booleans(),
    f32=st.booleans(),
)
def test_pairing_update_property(seed, n_out, n_in, batch, p, mult, f32):
    dt = torch.float32 if f32 else torch.float64
    gen = torch.Generator().manual_seed(seed)
    post, pre = spikes(gen, (batch, n_out), p, dt), spikes(gen, (batch, n_in), p, dt)
    xp = torch.rand(batch, n_in, generator=gen).to(dt)
    xq = torch.rand(batch, n_out, generator=gen).to(dt)
    a = torch.randn(batch, generator=gen).to(dt)
    g = torch.randn(n_out, n_in, generator=gen).to(dt) if mult else -1.25
    target = torch.randn(n_out, n_in, generator=gen).to(dt)
    expected = ref_update(target, post, xp, xq, pre, a.tolist(), g, g)
    K.pairing_update(target, K.Factors(post, xp, xq, pre), a, g, g)
    torch.testing.assert_close(target, expected, atol=TOL[dt] * 10, rtol=0)


# --------------------------------------------------------------------------- bad input
def test_bad_input_names_the_argument():
    t = torch.zeros(2, 3)
    x, y = torch.zeros(1, 3), torch.zeros(1, 2)
    with pytest.raises(TypeError, match="target"):
        K.stdp_linear_step(t.to(torch.int32), x, y, None, None, 2.0, 2.0)
    with pytest.raises(ValueError, match="target"):
        K.stdp_linear_step(torch.zeros(3, 2).T, x, y, None, None, 2.0, 2.0)
    with pytest.raises(ValueError, match="target"):
        K.stdp_linear_step(torch.zeros(2, 3, requires_grad=True), x, y, None, None, 2.0, 2.0)
    with pytest.raises(ValueError, match="tau_pre"):
        K.stdp_linear_step(t, x, y, None, None, 0.0, 2.0)
    with pytest.raises(TypeError, match="tau_post"):
        K.mstdp_linear_step(t, x, y, None, None, 2.0, "2")
    with pytest.raises(ValueError, match="in_spike"):
        K.stdp_linear_step(t, torch.zeros(1, 4), y, None, None, 2.0, 2.0)
    with pytest.raises(ValueError, match="out_spike"):
        K.stdp_linear_step(t, x, torch.zeros(2, 2), None, None, 2.0, 2.0)
    with pytest.raises(ValueError, match="trace_pre"):
        K.stdp_linear_step(t, x, y, torch.zeros(2, 3), None, 2.0, 2.0)
    with pytest.raises(ValueError, match="coeff"):
        K.stdp_linear_step(t, x, y, None, None, 2.0, 2.0, coeff=torch.ones(3))
    with pytest.raises(ValueError, match="g_post"):
        K.stdp_linear_step(t, x, y, None, None, 2.0, 2.0, g_post=torch.ones(3, 2))
    with pytest.raises(TypeError, match="g_pre"):
        K.stdp_linear_step(t, x, y, None, None, 2.0, 2.0, g_pre="w")
    with pytest.raises(TypeError, match="previous"):
        K.mstdp_linear_step(t, x, y, None, None, 2.0, 2.0, previous=(x, y))
    with pytest.raises(ValueError, match=r"previous\.x_post"):
        K.mstdp_linear_step(t, x, y, None, None, 2.0, 2.0, previous=K.Factors(y, x, torch.zeros(2, 2), x))
    with pytest.raises(ValueError, match="snapshot"):
        K.mstdp_linear_step(t, x, y, None, None, 2.0, 2.0, snapshot=(torch.zeros(2, 2), t))


# --------------------------------------------------------------------------- learners use the kernel
class Replay(nn.Module):
    def __init__(self, outputs: list[torch.Tensor]) -> None:
        super().__init__()
        self.outputs = list(outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.outputs.pop(0)


def _learner_steps(rule: str, fc: nn.Linear, f, gen: torch.Generator, p: float) -> None:
    """Two time steps (batch 2, spike probability ``p``) of an STDP or mSTDP learner (reward 1) on
    ``fc``, with ``f_pre = f_post = f`` (``None``: the default)."""
    dtype = fc.weight.dtype
    n_out, n_in = fc.weight.shape
    sn = Replay([spikes(gen, (2, n_out), p, dtype) for _ in range(2)])
    kw = {} if f is None else {"f_pre": f, "f_post": f}
    if rule == "stdp":
        learner = STDPLearner("s", fc, sn, 2.0, 2.0, **kw)
    else:
        learner = MSTDPLearner("s", 2, fc, sn, 2.0, 2.0, **kw)
    for _ in range(2):
        with torch.no_grad():
            sn(fc(spikes(gen, (2, n_in), p, dtype)))
        learner.step() if rule == "stdp" else learner.step(1.0)


@pytest.mark.parametrize(
    ("f", "fused"),
    [
        (None, True),
        (lambda w: w, True),
        (lambda w: 0.5, True),
        (lambda w: torch.clamp(w, -0.1, 0.1), True),  # a new tensor of the weight's shape
        (lambda w: w.mean(0), False),  # [n_in], broadcast over the rows: the torch path
    ],
)
@pytest.mark.parametrize("rule", ["stdp", "mstdp"])
def test_learners_take_the_kernel_for_numbers_and_weight_shaped_modulation(monkeypatch, f, fused, rule):
    calls = []
    real_step = K.fused_step
    monkeypatch.setattr(K, "fused_step", lambda *a, **k: calls.append(1) or real_step(*a, **k))
    _learner_steps(rule, nn.Linear(5, 4, bias=False), f, torch.Generator().manual_seed(0), 0.5)
    assert bool(calls) == fused
    assert stdp_module._kernel() is K


@pytest.mark.parametrize("rule", ["stdp", "mstdp"])
@pytest.mark.parametrize("batch", [1, 16])
def test_fused_learner_equals_torch_learner_float32(rule, batch, monkeypatch):
    """Same spikes through the kernel (every step) and the torch path (the kernel switched off),
    default (identity) f."""
    gen = torch.Generator().manual_seed(batch)
    n_in, n_out, steps = 30, 20, 6
    xs = [spikes(gen, (batch, n_in), 0.1, torch.float32) for _ in range(steps)]
    ys = [spikes(gen, (batch, n_out), 0.1, torch.float32) for _ in range(steps)]
    rewards = [torch.randn(batch, generator=gen) for _ in range(steps)]
    calls = []
    real_step = K.fused_step
    monkeypatch.setattr(K, "fused_step", lambda *a, **k: calls.append(1) or real_step(*a, **k))
    results = []
    for fused in (True, False):
        if not fused:
            assert len(calls) == steps
            monkeypatch.setattr(stdp_module, "_kernel_module", False)
        torch.manual_seed(3)
        fc = nn.Linear(n_in, n_out, bias=False)
        sn = Replay(ys)
        if rule == "stdp":
            learner = STDPLearner("s", fc, sn, 4.0, 3.0)
        else:
            learner = MSTDPLearner("s", batch, fc, sn, 4.0, 3.0)
        opt = torch.optim.SGD(fc.parameters(), lr=0.05)
        for x, r in zip(xs, rewards):
            opt.zero_grad()
            with torch.no_grad():
                sn(fc(x))
            learner.step() if rule == "stdp" else learner.step(r)
            opt.step()
        results.append((fc.weight.detach().clone(), learner.trace_pre, learner.trace_post))
    assert len(calls) == steps  # none on the torch path
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, atol=2e-5, rtol=1e-5)


def test_learner_with_a_non_contiguous_grad_uses_torch_and_matches_loops(monkeypatch):
    calls = []
    real_step = K.fused_step
    monkeypatch.setattr(K, "fused_step", lambda *a, **k: calls.append(1) or real_step(*a, **k))
    gen = torch.Generator().manual_seed(5)
    dt = torch.float64
    fc = nn.Linear(4, 3, bias=False).to(dt)
    fc.weight.grad = torch.zeros(4, 3, dtype=dt).T  # same shape, column-major
    x, y = spikes(gen, (2, 4), 0.5, dt), spikes(gen, (2, 3), 0.5, dt)
    learner = STDPLearner("s", fc, Replay([y]), 2.0, 3.0)
    with torch.no_grad():
        learner.out_spike_monitor.records.append(y)
        learner.in_spike_monitor.records.append(x)
    learner.step(on_grad=True, scale=1.0)
    assert not calls
    xp = ref_trace(torch.zeros(2, 4, dtype=dt), x, 2.0, True)
    xq = ref_trace(torch.zeros(2, 3, dtype=dt), y, 3.0, True)
    w = fc.weight.detach()
    expected = ref_update(torch.zeros(3, 4, dtype=dt), y, xp, xq, x, [-1.0, -1.0], w, w)
    torch.testing.assert_close(fc.weight.grad, expected, atol=1e-12, rtol=0)


# --------------------------------------------------------------------------- column lists and column blocks
def as_double(g: float | torch.Tensor) -> torch.Tensor:
    return g.double() if isinstance(g, torch.Tensor) else torch.tensor(float(g), dtype=torch.float64)


def torch_update(target, post, x_pre, x_post, pre, a, g_post, g_pre):
    """``target + G_post ⊙ Σ_b a[b] post[b]ᵀ x_pre[b] - G_pre ⊙ Σ_b a[b] x_post[b]ᵀ pre[b]`` in float64,
    and ``scale``: the same sum with every term made positive, to compare results relative to the
    size of what was added (the update has cancellations)."""
    t, post, x_pre, x_post, pre, a = (v.double() for v in (target, post, x_pre, x_post, pre, a))
    gp, gq = as_double(g_post), as_double(g_pre)
    p = torch.einsum("b,bi,bj->ij", a, post, x_pre)
    q = torch.einsum("b,bi,bj->ij", a, x_post, pre)
    p_abs = torch.einsum("b,bi,bj->ij", a.abs(), post.abs(), x_pre.abs())
    q_abs = torch.einsum("b,bi,bj->ij", a.abs(), x_post.abs(), pre.abs())
    return t + gp * p - gq * q, t.abs() + gp.abs() * p_abs + gq.abs() * q_abs


def lanes(dtype: torch.dtype) -> int:
    return K.VECTOR_BYTES // torch.tensor([], dtype=dtype).element_size()


REL = {torch.float32: 1e-6, torch.float64: 1e-13}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(
    ("batch", "density", "path"),
    [(1, 0.05, "lists"), (3, 0.02, "lists"), (16, 0.3, "blocks"), (21, 0.3, "blocks"), (40, 0.6, "blocks")],
)
@pytest.mark.parametrize("n_in", ["short", "blocks", "blocks+tail"])
@pytest.mark.parametrize("mods", ["additive", "multiplicative", "mult-post", "mult-pre"])
@pytest.mark.parametrize("values", ["binary", "graded"])
def test_pairing_update_lists_and_blocks_match_torch(
    dtype, batch, density, path, n_in, mods, values, kernel_variant
):
    """Both ways of the pre term (per-sample column lists, column blocks with table lookups), every
    row length (shorter than a block, whole blocks, whole blocks and a shifted last block), sample
    chunks (batch above the block width), binary and graded pre values, against torch in float64."""
    width = lanes(dtype)
    cols = {"short": max(width - 3, 1), "blocks": 2 * width, "blocks+tail": 2 * width + 5}[n_in]
    gen = torch.Generator().manual_seed(batch * 1000 + cols + len(mods) + len(values))
    n_out = 13
    post = spikes(gen, (batch, n_out), max(density, 0.2), dtype)
    pre = spikes(gen, (batch, cols), density, dtype)
    if values == "graded":
        pre = pre * (torch.rand(batch, cols, generator=gen) * 2 - 0.5).to(dtype)
    x_pre = torch.rand(batch, cols, generator=gen).to(dtype)
    x_post = torch.rand(batch, n_out, generator=gen).to(dtype)
    a = torch.randn(batch, generator=gen).to(dtype)
    w = torch.randn(n_out, cols, generator=gen).to(dtype)
    g_post, g_pre = {
        "additive": (0.7, -1.3),
        "multiplicative": (w, w),
        "mult-post": (w, 0.6),
        "mult-pre": (1.1, w),
    }[mods]
    target = torch.randn(n_out, cols, generator=gen).to(dtype)
    expected, scale = torch_update(target, post, x_pre, x_post, pre, a, g_post, g_pre)
    takes_lists = K._pre_entries(pre.numpy(), width)[5]
    if n_in == "short":  # rows shorter than one block always take the lists
        assert takes_lists
    elif K.VECTOR_BYTES == 64:  # with AVX-512 (the widths the cases were picked for), the way it names
        assert takes_lists == (path == "lists")
    K.pairing_update(target, K.Factors(post, x_pre, x_post, pre), a, g_post, g_pre)
    err = (target.double() - expected).abs()
    assert bool((err <= REL[dtype] * scale).all()), float((err / scale.clamp_min(1e-300)).max())


@pytest.mark.parametrize("batch", [5, 16, 63, 64, 70])
@pytest.mark.parametrize("mods", ["additive", "multiplicative"])
def test_rows_across_tiles_and_post_sample_masks_match_torch(batch, mods, kernel_variant):
    """Many rows (several row tiles and a partial one), with 0, 1, 2 and more post samples per row:
    batches up to 63 keep each row's post samples as a bit mask, larger ones scan them."""
    assert K._ROW_TILE < 150 < 3 * K._ROW_TILE
    dtype = torch.float32
    gen = torch.Generator().manual_seed(batch * 7 + len(mods))
    n_out, cols = 150, 3 * lanes(dtype) + 3
    post = spikes(gen, (batch, n_out), 0.04, dtype)
    post[:, :4] = 0  # rows without post samples
    post[:3, 5] = 1  # a row with three or more
    post[-1, 6] = 1  # a row whose only post sample is the last one
    pre = spikes(gen, (batch, cols), 0.3, dtype)
    x_pre = torch.rand(batch, cols, generator=gen).to(dtype)
    x_post = torch.rand(batch, n_out, generator=gen).to(dtype)
    a = torch.randn(batch, generator=gen).to(dtype)
    w = torch.randn(n_out, cols, generator=gen).to(dtype)
    g_post, g_pre = (0.7, -1.3) if mods == "additive" else (w, w)
    counts = (post != 0).sum(0)
    assert {0, 1, 2} <= set(counts.tolist()) and int(counts.max()) >= 3
    target = torch.randn(n_out, cols, generator=gen).to(dtype)
    expected, scale = torch_update(target, post, x_pre, x_post, pre, a, g_post, g_pre)
    K.pairing_update(target, K.Factors(post, x_pre, x_post, pre), a, g_post, g_pre)
    err = (target.double() - expected).abs()
    assert bool((err <= REL[dtype] * scale).all()), float((err / scale.clamp_min(1e-300)).max())


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("batch", [1, 16])
def test_untouched_positions_keep_their_bits_with_non_finite_modulation(dtype, batch, kernel_variant):
    """Rows of neurons that did not fire and columns of inputs that did not fire stay exactly as they
    were (bits included: -0.0 and nan in the target), even where ``G = W`` is inf or nan."""
    width = lanes(dtype)
    n_out, n_in = 9, 3 * width + 2
    gen = torch.Generator().manual_seed(batch)
    post = torch.zeros(batch, n_out, dtype=dtype)
    post[0, 2] = post[-1, 5] = 1.0
    pre = torch.zeros(batch, n_in, dtype=dtype)
    pre[0, 1] = pre[-1, width + 4] = pre[batch // 2, n_in - 1] = 1.0
    if batch > 1:
        pre[:, 7] = 1.0  # a column with many entries: several layers
    x_pre = torch.rand(batch, n_in, generator=gen).to(dtype)
    x_post = torch.rand(batch, n_out, generator=gen).to(dtype)
    w = torch.randn(n_out, n_in, generator=gen).to(dtype)
    fired_rows = post.ne(0).any(0)
    fired_cols = pre.ne(0).any(0)
    untouched = ~fired_rows[:, None] & ~fired_cols[None, :]
    spots = [tuple(rc) for rc in untouched.nonzero().tolist()[::5]]
    assert len(spots) >= 6
    for r, c in spots[0::3]:
        w[r, c] = float("inf")
    for r, c in spots[1::3]:
        w[r, c] = float("nan")
    target = torch.randn(n_out, n_in, generator=gen).to(dtype)
    for r, c in spots[1::3]:
        target[r, c] = -0.0
    for r, c in spots[2::3]:
        target[r, c] = float("nan")
    before = target.clone()
    a = torch.rand(batch, generator=gen).to(dtype) + 0.5
    K.pairing_update(target, K.Factors(post, x_pre, x_post, pre), a, w, w)
    same = target.view(torch.int32 if dtype == torch.float32 else torch.int64) == before.view(
        torch.int32 if dtype == torch.float32 else torch.int64
    )
    assert bool(same[untouched].all())
    expected, scale = torch_update(before, post, x_pre, x_post, pre, a, w, w)
    touched = ~untouched
    err = (target.double() - expected).abs()[touched]
    assert bool((err <= REL[dtype] * scale[touched]).all())


@pytest.mark.parametrize("batch", [1, 16])
@pytest.mark.parametrize("n_in", [40, 400])
def test_mstdp_snapshot_copies_exactly_the_touched_positions(batch, n_in, kernel_variant):
    """The snapshot through the column list (few input spikes) and through the row blend (many):
    the weight at rows of fired neurons and columns of fired inputs, the old snapshot elsewhere."""
    dt = torch.float32
    gen = torch.Generator().manual_seed(n_in + batch)
    n_out = 11
    w = torch.randn(n_out, n_in, generator=gen)
    snap = torch.full((n_out, n_in), 123.0)
    pre = spikes(gen, (batch, n_in), 0.05, dt)
    post = spikes(gen, (batch, n_out), 0.1, dt)
    target = torch.zeros(n_out, n_in)
    K.mstdp_linear_step(target, pre, post, None, None, 2.0, 3.0, None, 1.0, snap, snap, snapshot=(snap, w))
    touched = post.ne(0).any(0)[:, None] | pre.ne(0).any(0)[None, :]
    torch.testing.assert_close(snap[touched], w[touched], atol=0, rtol=0)
    assert bool((snap[~touched] == 123.0).all())


@pytest.mark.parametrize("with_snapshot", [False, True])
def test_parallel_step_starts_one_parallel_loop(with_snapshot):
    """The parallel kernel's body holds exactly one parallel loop (the row ranges): numba turns any
    array expression written there (e.g. ``np.zeros``) into a parallel loop of its own, started,
    threads and all, at every call."""
    import numba
    import numpy as np

    compiled = numba.njit(parallel=True)(K._fused_step.py_func)  # a fresh compile, with diagnostics
    f32, n_out, n_in, batch = np.float32, 3, 40, 2
    target, weight, snap = (np.zeros((n_out, n_in), f32) for _ in range(3))
    spk_pre, x_pre, new_pre = (np.zeros((batch, n_in), f32) for _ in range(3))
    spk_post, x_post, new_post = (np.zeros((batch, n_out), f32) for _ in range(3))
    spk_pre[0, 5] = spk_post[0, 2] = 1
    dummy = np.zeros((1, 1), f32)
    compiled(
        target, np.ones(batch, f32), f32(0.1), spk_post, new_pre, new_post, spk_pre, dummy, dummy, f32(1),
        f32(0.5), False, False, spk_pre, spk_post, x_pre, x_post, new_pre, new_post, f32(20), f32(20), True,
        snap, weight, with_snapshot, 2,
    )  # fmt: skip
    diagnostics = compiled.overloads[compiled.signatures[0]].metadata["parfor_diagnostics"]
    assert len(diagnostics.initial_parfors) == 1
    assert target[2, 5] == np.float32(0.1) * (1 - 0.5)  # it ran the update: 0.1 * (1 * 1 - 0.5 * 1 * 1)


def test_warm_up_compiles_the_kernel_the_learners_then_run():
    """After warm_up, steps of STDP / mSTDP learners (numbers, the weight, soft-bound tensors; float32
    small and parallel-sized layers, float64 small ones) add no new compiled kernel."""
    thread = K.warm_up((torch.float32,), parallel=True, background=True)
    assert thread is not None and thread.daemon
    thread.join()
    assert K.warm_up((torch.float64,)) is None
    kernels = (K._fused_step_serial, K._fused_step)
    counts = [len(k.signatures) for k in kernels]
    assert counts[0] >= 2 and counts[1] >= 1
    gen = torch.Generator().manual_seed(0)
    for dtype, n in ((torch.float32, 6), (torch.float32, 256), (torch.float64, 6)):
        for rule, f in (("stdp", lambda w: 1.0 - w), ("mstdp", None), ("stdp", lambda w: 0.5)):
            _learner_steps(rule, nn.Linear(n, n, bias=False).to(dtype), f, gen, 0.3)
    assert [len(k.signatures) for k in kernels] == counts


def test_warm_up_rejects_other_dtypes():
    with pytest.raises(ValueError, match="dtypes"):
        K.warm_up((torch.float16,))
    with pytest.raises(ValueError, match="dtypes"):
        K.warm_up(())
    with pytest.raises(TypeError, match="dtypes"):
        K.warm_up(torch.float32)
    with pytest.raises(TypeError, match="background"):
        K.warm_up(background=1)
    with pytest.raises(TypeError, match="parallel"):
        K.warm_up(parallel="yes")
