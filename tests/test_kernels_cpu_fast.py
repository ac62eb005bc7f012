"""Numeric helpers and memory handling of the fused CPU loops.

* the vectorizable exponential (:func:`snnlab.kernels.cpu.loops.vexp`) against a
  higher-precision reference and ``math.exp``: ulp error, under / overflow, inf, NaN;
* surrogate gradients at extreme membrane potentials against the torch reference;
* recycled output buffers (:mod:`snnlab.kernels.cpu.buffers`) and the backward that writes
  its result over its own saved tensor.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from snnlab import neuron, surrogate

numba = pytest.importorskip("numba")

from snnlab.kernels.cpu import buffers, load_loops, ops  # noqa: E402

loops = load_loops()


@numba.njit
def _apply_vexp(a, out):
    for i in range(a.shape[0]):
        out[i] = loops.vexp(a[i])


def vexp(a: np.ndarray) -> np.ndarray:
    out = np.empty_like(a)
    _apply_vexp(a, out)
    return out


def exact_exp(a: np.ndarray) -> np.ndarray:
    """``e^a`` rounded to ``a``'s dtype from a more precise computation (long double if it has
    more bits than float64, else float64 -- which is exact enough for float32 only)."""
    with np.errstate(over="ignore", under="ignore"):
        return np.exp(a.astype(np.longdouble)).astype(a.dtype)


def ulps(got: np.ndarray, want: np.ndarray) -> np.ndarray:
    """Distance in units in the last place between finite or infinite values of one dtype (both >= 0)."""
    bits = np.int32 if got.dtype == np.float32 else np.int64
    return np.abs(got.view(bits).astype(np.int64) - want.view(bits).astype(np.int64))


def samples(dtype, n: int = 400_000, seed: int = 0) -> np.ndarray:
    """Uniform over the whole finite-result range, small magnitudes over many decades, a fine grid."""
    lo, hi = (-104.0, 89.0) if dtype == np.float32 else (-746.0, 710.0)
    rng = np.random.default_rng(seed)
    parts = [
        rng.uniform(lo, hi, n),
        rng.uniform(-1.0, 1.0, n) * 10.0 ** rng.uniform(-30, 2, n),
        np.linspace(-100.0, 100.0, 20_001),
    ]
    return np.concatenate(parts).astype(dtype)


LONG_DOUBLE_IS_WIDER = np.finfo(np.longdouble).nmant > np.finfo(np.float64).nmant


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_vexp_within_one_ulp_over_the_whole_range(dtype):
    if dtype == np.float64 and not LONG_DOUBLE_IS_WIDER:
        pytest.skip("needs an 80-bit long double for a float64 reference")
    a = samples(dtype)
    got, want = vexp(a), exact_exp(a)
    assert got.dtype == dtype
    err = ulps(got, want)
    assert err.max() <= 1, a[err.argmax()]
    assert (err == 0).mean() > 0.85  # mostly the correctly rounded value


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_vexp_matches_math_exp_on_a_grid(dtype):
    a = np.linspace(-110.0, 110.0, 4401).astype(dtype)
    got = vexp(a)
    for x, y in zip(a.tolist(), got.tolist()):
        try:
            ref = math.exp(x)
        except OverflowError:
            ref = math.inf
        with np.errstate(over="ignore"):
            ref = float(np.array(ref).astype(dtype))  # rounded to the dtype (inf past its range)
        if ref == 0.0 or math.isinf(ref):
            assert y == ref, x
        else:
            assert abs(y - ref) <= 2.5 * float(np.spacing(np.array(ref, dtype))), x


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_vexp_special_values(dtype):
    info = np.finfo(dtype)
    big = 89.0 if dtype == np.float32 else 710.0  # e^big overflows
    a = np.array([np.inf, -np.inf, np.nan, 0.0, -0.0, big, -big * 1.2, 1e30, -1e30, info.max, -info.max,
                  info.tiny, -info.tiny], dtype=dtype)  # fmt: skip
    got = vexp(a)
    assert got[0] == np.inf and got[1] == 0.0 and np.isnan(got[2])
    assert got[3] == 1.0 and got[4] == 1.0
    assert got[5] == np.inf and got[6] == 0.0
    assert got[7] == np.inf and got[8] == 0.0 and got[9] == np.inf and got[10] == 0.0
    assert got[11] == 1.0 and got[12] == 1.0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_vexp_subnormal_results_and_the_overflow_edge(dtype):
    if dtype == np.float64 and not LONG_DOUBLE_IS_WIDER:
        pytest.skip("needs an 80-bit long double for a float64 reference")
    info = np.finfo(dtype)
    # the largest finite result, the normal / subnormal boundary, the last subnormals before 0
    edges = [np.log(np.longdouble(v)) for v in (info.max, info.tiny, info.smallest_subnormal)]
    a = np.concatenate([np.linspace(e - 0.5, e + 0.5, 2001) for e in edges]).astype(dtype)
    got, want = vexp(a), exact_exp(a)
    assert ((got == 0) == (want == 0)).mean() > 0.999  # zero exactly where the rounded result is 0
    assert np.array_equal(np.isinf(got), np.isinf(want))
    finite = np.isfinite(want) & (want > 0)
    assert ulps(got[finite], want[finite]).max() <= 1
    assert (got[finite] < info.tiny).any() and (got[finite] >= info.tiny).any()


# ----------------------------------------------------------------------------- extreme potentials


def surrogate_grads(name, alpha, x, backend):
    node = neuron.LIFNode(tau=2.0, step_mode="m", backend=backend,
                          surrogate_function=surrogate.SURROGATES[name](alpha=alpha))  # fmt: skip
    xa = x.clone().requires_grad_(True)
    s = node(xa)
    w = torch.linspace(-1.0, 1.0, s.numel(), dtype=x.dtype).view(s.shape)
    (g,) = torch.autograd.grad((s * w).sum() + node.v.sum(), xa)
    return s.detach(), g


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("name", ["Sigmoid", "PiecewiseExp", "Erf"])
def test_exp_surrogates_at_extreme_potentials_match_torch(name, dtype):
    g = torch.Generator().manual_seed(4)
    mags = 10.0 ** torch.empty(6, 50).uniform_(-3, 4, generator=g)
    x = (mags * torch.randn(6, 50, generator=g).sign()).to(dtype)
    s_fast, g_fast = surrogate_grads(name, 4.0, x, "cpu")
    s_ref, g_ref = surrogate_grads(name, 4.0, x, "torch")
    assert torch.equal(s_fast, s_ref)
    tol = 1e-6 if dtype == torch.float32 else 1e-12
    torch.testing.assert_close(g_fast, g_ref, rtol=tol, atol=tol * max(float(g_ref.abs().max()), 1.0))


@pytest.mark.parametrize("v_reset", [0.0, None])
def test_nan_and_inf_inputs_give_the_references_states_and_gradients(v_reset):
    x = torch.tensor([[0.5, float("inf"), float("-inf"), float("nan"), 3.0, -0.0]] * 3)
    for backend in ("cpu", "torch"):
        with torch.no_grad():
            node = neuron.LIFNode(step_mode="m", backend=backend, v_reset=v_reset, store_v_seq=True)
            node(x)
        if backend == "cpu":
            v_fast = node.v_seq
    assert torch.equal(v_fast.view(torch.int32), node.v_seq.view(torch.int32))  # bit for bit
    s_fast, g_fast = surrogate_grads("Sigmoid", 4.0, x, "cpu")
    s_ref, g_ref = surrogate_grads("Sigmoid", 4.0, x, "torch")
    assert torch.equal(s_fast, s_ref)
    torch.testing.assert_close(g_fast, g_ref, rtol=1e-6, atol=1e-6, equal_nan=True)
    assert g_fast.isnan().any() and g_fast.isfinite().any()


# ----------------------------------------------------------------------------- recycled buffers


@pytest.fixture
def small_recycling(monkeypatch):
    """Recycle buffers from 4 KiB up (the default threshold is 16 MiB), starting from none kept."""
    monkeypatch.setattr(buffers, "RECYCLE_MIN", 4096)
    buffers.release()
    yield
    buffers.release()


def test_a_buffer_is_handed_out_again_only_once_nothing_uses_it(small_recycling):
    a = buffers.empty((4, 1024), torch.float32)
    a_ptr = a.data_ptr()
    view = a[1:]
    del a
    b = buffers.empty((4, 1024), torch.float32)
    assert b.data_ptr() != a_ptr  # a view still uses the memory
    del view
    c = buffers.empty((2, 2048), torch.float32)
    assert c.data_ptr() == a_ptr and c.shape == (2, 2048) and c.is_contiguous()
    arr = c.numpy()
    del c
    assert buffers.empty((2, 2048), torch.float32).data_ptr() != a_ptr  # a NumPy view counts too
    del arr
    d = buffers.empty((1024, 4), torch.float32)
    assert d.data_ptr() == a_ptr
    e = buffers.empty((4096,), torch.float64)  # other size: a new buffer
    assert e.data_ptr() not in (a_ptr, b.data_ptr())
    small = buffers.empty((8,), torch.float32)  # below RECYCLE_MIN: never kept
    assert all(k.data_ptr() != small.data_ptr() for k in buffers._KEPT)


def idle_bytes():
    return sum(k.nbytes() for k in buffers._KEPT if buffers._uses(k) == 1)


def test_idle_buffers_are_kept_up_to_the_byte_limit_and_release_drops_them(small_recycling, monkeypatch):
    monkeypatch.setattr(buffers, "RECYCLE_IDLE_BYTES", 3 * 4096 * 4)
    held = [buffers.empty((4096 + 16 * k,), torch.float32) for k in range(6)]  # six sizes, all in use
    assert len(buffers._KEPT) == 6 and idle_bytes() == 0
    del held
    buffers.empty((8,), torch.float32)  # below RECYCLE_MIN: not tracked, changes nothing
    assert len(buffers._KEPT) == 6
    newest = buffers.empty((5000,), torch.float32)  # tracking a new one trims the idle ones
    assert idle_bytes() <= buffers.RECYCLE_IDLE_BYTES
    assert len(buffers._KEPT) == 1 + 2 and buffers._KEPT[-1].data_ptr() == newest.data_ptr()
    assert [k.nbytes() for k in buffers._KEPT[:-1]] == [(4096 + 16 * k) * 4 for k in (4, 5)]  # oldest dropped
    monkeypatch.setattr(buffers, "RECYCLE_TRACKED", 4)
    held = [buffers.empty((6000 + 16 * k,), torch.float32) for k in range(6)]
    assert len(buffers._KEPT) == 4 and buffers._KEPT[-1].data_ptr() == held[-1].data_ptr()
    buffers.release()
    assert buffers._KEPT == []
    assert held[0].numel() == 6000  # tensors in use are untouched


def test_recycled_outputs_never_alias_live_results(small_recycling):
    x = torch.rand(8, 4000) * 3
    node = neuron.LIFNode(step_mode="m", backend="cpu")
    ref = neuron.LIFNode(step_mode="m", backend="torch")
    outs = []
    with torch.no_grad():
        for k in range(6):
            node.reset()
            ref.reset()
            xk = x * (1 + 0.1 * k)
            outs.append((node(xk), ref(xk)))
            if k % 2:
                outs.pop(0)  # drop some results so that their buffers come back
    for fast, slow in outs:
        assert torch.equal(fast, slow)


def test_can_overwrite_is_false_outside_a_backward():
    assert not buffers.can_overwrite(torch.empty(10))


def backward_twice(x, retain):
    node = neuron.LIFNode(tau=2.0, step_mode="m", backend="cpu", surrogate_function=surrogate.Sigmoid())
    xa = x.clone().requires_grad_(True)
    s = node(xa)
    w = torch.linspace(-1.0, 1.0, s.numel()).view(s.shape)
    loss = (s * w).sum() + node.v.sum()
    (g1,) = torch.autograd.grad(loss, xa, retain_graph=retain)
    return g1, (torch.autograd.grad(loss, xa)[0] if retain else None)


def test_backward_writing_over_its_saved_state_gives_the_same_gradients(monkeypatch):
    x = torch.rand(5, 300) * 3
    calls = []
    real = ops.backward_from_h

    def spy(*args, out=None, **kwargs):
        calls.append(out is not None)
        return real(*args, out=out, **kwargs)

    monkeypatch.setattr(ops, "backward_from_h", spy)
    g_donated, _ = backward_twice(x, retain=False)
    g_kept, g_again = backward_twice(x, retain=True)
    assert calls == [True, False, True]  # retain_graph=True: the saved state is kept for the second pass
    assert torch.equal(g_donated, g_kept) and torch.equal(g_kept, g_again)
    monkeypatch.setattr(buffers, "can_overwrite", lambda t: False)
    g_new, _ = backward_twice(x, retain=False)
    assert torch.equal(g_new, g_donated)


def test_backward_kernel_in_place_equals_separate_output():
    g = torch.Generator().manual_seed(2)
    for dtype in (torch.float32, torch.float64):
        h = (torch.rand(7, 1000, generator=g, dtype=torch.float64) * 3 - 1).to(dtype)
        gs = torch.randn(7, 1000, generator=g, dtype=torch.float64).to(dtype)
        gv = torch.randn(1000, generator=g, dtype=torch.float64).to(dtype)
        from snnlab.kernels.cpu.params import pack

        p = pack(np.float32 if dtype == torch.float32 else np.float64, 1.0, 0.0, 2.0, 0.5, 0.5, 1, 4.0)
        want, want_v0 = ops.backward_from_h(gs, gv, None, h.clone(), p, 1, False, False)
        h_in = h.clone()
        got, got_v0 = ops.backward_from_h(gs, gv, None, h_in, p, 1, False, False, out=h_in)
        assert got.data_ptr() == h_in.data_ptr()
        assert torch.equal(got, want) and torch.equal(got_v0, want_v0)
