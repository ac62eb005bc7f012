"""The CPU fast path (``backend='cpu'`` / ``'auto'``) against plain torch references written here.

Each reference below is the neuron's equations as an explicit loop over ``T``
with a hand-written surrogate-gradient spike; spikes must be bitwise equal,
membrane potentials and gradients within the stated tolerances.
"""

from __future__ import annotations

import itertools
import math
import os
import subprocess
import sys
import textwrap

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from snnlab import neuron, surrogate

pytest.importorskip("numba")

from snnlab.kernels import cpu
from snnlab.kernels.cpu import node_backend, ops

# ----------------------------------------------------------------------------- independent reference

SG = {
    "ATan": lambda x, a: a / 2 / (1 + (math.pi / 2 * a * x) ** 2),
    "Sigmoid": lambda x, a: a * torch.sigmoid(a * x) * (1 - torch.sigmoid(a * x)),
    "PiecewiseQuadratic": lambda x, a: torch.where(x.abs() > 1 / a, torch.zeros_like(x), a - a * a * x.abs()),
    "PiecewiseExp": lambda x, a: a / 2 * torch.exp(-a * x.abs()),
    "SoftSign": lambda x, a: 1 / (2 * a * (1 / a + x.abs()) ** 2),
    "SuperSpike": lambda x, a: a / (x.abs() + 1) ** 2,
    "Erf": lambda x, a: a / math.sqrt(math.pi) * torch.exp(-((a * x) ** 2)),
    "Rect": lambda x, a: a * (x.abs() < 0.5 / a).to(x),
}
ALPHAS = {"ATan": 3.0, "Sigmoid": 2.5, "PiecewiseQuadratic": 0.8, "PiecewiseExp": 1.5, "SoftSign": 1.7,
          "SuperSpike": 0.9, "Erf": 1.3, "Rect": 0.6}  # fmt: skip


class RefSpike(torch.autograd.Function):
    @staticmethod
    def forward(ctx, z, name, alpha):
        ctx.save_for_backward(z)
        ctx.name, ctx.alpha = name, alpha
        return (z >= 0).to(z)

    @staticmethod
    def backward(ctx, g):
        (z,) = ctx.saved_tensors
        return g * SG[ctx.name](z, ctx.alpha), None, None


def ref_charge(kind, v, x, tau, decay_input, v_reset):
    if kind == "IF":
        return v + x
    vr = 0.0 if v_reset is None else v_reset
    if decay_input:
        return v + (x - v) / tau if vr == 0.0 else v + (x - (v - vr)) / tau
    return v * (1.0 - 1.0 / tau) + x if vr == 0.0 else v - (v - vr) / tau + x


def ref_run(kind, x_seq, v, tau, decay_input, v_th, v_reset, detach_reset, name, alpha):
    """Explicit loop: returns (spikes [T, ...], v after each step [T, ...])."""
    spikes, vs = [], []
    for t in range(x_seq.shape[0]):
        h = ref_charge(kind, v, x_seq[t], tau, decay_input, v_reset)
        s = RefSpike.apply(h - v_th, name, alpha)
        sd = s.detach() if detach_reset else s
        v = h - sd * v_th if v_reset is None else (1.0 - sd) * h + sd * v_reset
        spikes.append(s)
        vs.append(v)
    return torch.stack(spikes), torch.stack(vs)


def make_node(kind, step_mode, tau, decay_input, v_th, v_reset, detach_reset, name, alpha, **kw):
    sf = surrogate.SURROGATES[name](alpha=alpha)
    common = dict(v_threshold=v_th, v_reset=v_reset, surrogate_function=sf, detach_reset=detach_reset,
                  step_mode=step_mode, **kw)  # fmt: skip
    if kind == "IF":
        return neuron.IFNode(**common)
    return neuron.LIFNode(tau=tau, decay_input=decay_input, **common)


def data(T, shape, dtype, seed, scale=3.0):
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand((T, *shape), generator=g, dtype=torch.float64) * scale - 0.3 * scale).to(dtype)
    v0 = (torch.rand(shape, generator=g, dtype=torch.float64) * 0.5 - 0.2).to(dtype)
    w = torch.randn((3, T, *shape), generator=g, dtype=torch.float64).to(dtype)
    return x, v0, w


TOL = {torch.float32: dict(rtol=1e-6, atol=1e-6), torch.float64: dict(rtol=1e-12, atol=1e-12)}


def close(a, b, dtype):
    """``|a - b| <= rtol |b| + atol * max|b|``: relative with a floor scaled to the tensor."""
    tol = TOL[dtype]
    scale = max(float(b.abs().max()), 1.0) if b.numel() else 1.0
    torch.testing.assert_close(a, b, rtol=tol["rtol"], atol=tol["atol"] * scale)


def check_case(kind, step_mode, tau, decay_input, v_th, v_reset, detach_reset, name, dtype, seed=0,
               T=7, shape=(5, 6), store_v_seq=True):  # fmt: skip
    alpha = ALPHAS[name]
    x, v0, w = data(T, shape, dtype, seed)
    node = make_node(kind, step_mode, tau, decay_input, v_th, v_reset, detach_reset, name, alpha,
                     backend="cpu", store_v_seq=store_v_seq)  # fmt: skip
    xa = x.clone().requires_grad_(True)
    va = v0.clone().requires_grad_(True)
    node.v = va
    if step_mode == "m":
        s = node(xa)
        v_seq = node.v_seq if store_v_seq else None
    else:
        outs, vs = [], []
        for t in range(T):
            outs.append(node(xa[t]))
            vs.append(node.v)
        s, v_seq = torch.stack(outs), torch.stack(vs)
    v_last = node.v
    xb = x.clone().requires_grad_(True)
    vb = v0.clone().requires_grad_(True)
    rs, rv = ref_run(kind, xb, vb, tau, decay_input, v_th, v_reset, detach_reset, name, alpha)
    assert s.dtype == dtype and s.shape == x.shape
    assert torch.equal(s.detach(), rs.detach())
    close(v_last.detach(), rv[-1].detach(), dtype)
    if v_seq is not None:
        close(v_seq.detach(), rv.detach(), dtype)
    loss = (s * w[0]).sum() + (v_last * w[1][0]).sum()
    ref_loss = (rs * w[0]).sum() + (rv[-1] * w[1][0]).sum()
    if v_seq is not None:
        loss = loss + (v_seq * w[2]).sum()
        ref_loss = ref_loss + (rv * w[2]).sum()
    ga = torch.autograd.grad(loss, (xa, va))
    gb = torch.autograd.grad(ref_loss, (xb, vb))
    close(ga[0], gb[0], dtype)
    close(ga[1], gb[1], dtype)
    return rs


# ----------------------------------------------------------------------------- the grid
# The loops are compiled per (charge mode, dtype) forward and per (surrogate, dtype) backward; the
# grids below cover every one of them while compiling each only once.

RESETS = [0.0, -0.3, None]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("v_reset", RESETS)
@pytest.mark.parametrize("detach_reset", [False, True])
@pytest.mark.parametrize("decay_input", [True, False])
def test_lif_multi_step_matches_reference(decay_input, detach_reset, v_reset, dtype):
    name = "Sigmoid" if v_reset is None else "ATan"
    rs = check_case("LIF", "m", 1.7, decay_input, 0.9, v_reset, detach_reset, name, dtype)
    assert 0 < rs.sum() < rs.numel()  # both spiking and silent steps are exercised


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("v_reset", [0.0, None])
@pytest.mark.parametrize("name", list(surrogate.SURROGATES))
def test_every_surrogate_matches_reference(name, v_reset, dtype):
    rs = check_case("LIF", "m", 2.5, True, 0.8, v_reset, False, name, dtype)
    assert 0 < rs.sum() < rs.numel()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("v_reset", RESETS)
@pytest.mark.parametrize("detach_reset", [False, True])
def test_if_multi_step_matches_reference(detach_reset, v_reset, dtype):
    rs = check_case("IF", "m", None, None, 1.1, v_reset, detach_reset, "Rect", dtype)
    assert 0 < rs.sum() < rs.numel()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(("kind", "decay_input", "v_reset", "detach_reset", "name"), [
    ("LIF", True, 0.0, False, "Sigmoid"),
    ("LIF", False, -0.3, True, "ATan"),
    ("LIF", False, None, False, "Erf"),
    ("IF", None, None, True, "SoftSign"),
    ("IF", None, 0.2, False, "PiecewiseExp"),
])  # fmt: skip
def test_single_step_bptt_matches_reference(kind, decay_input, v_reset, detach_reset, name, dtype):
    check_case(kind, "s", 2.5, decay_input, 1.0, v_reset, detach_reset, name, dtype)


@settings(max_examples=30, deadline=None)
@given(
    tau=st.floats(1.05, 20.0),
    v_th=st.floats(0.3, 2.0),
    v_reset=st.one_of(st.none(), st.floats(-1.0, 0.25)),
    decay_input=st.booleans(),
    detach_reset=st.booleans(),
    name=st.sampled_from(list(surrogate.SURROGATES)),
    double=st.booleans(),
    T=st.integers(1, 9),
    n=st.integers(1, 40),
    seed=st.integers(0, 2**16),
)
def test_lif_property(tau, v_th, v_reset, decay_input, detach_reset, name, double, T, n, seed):
    dtype = torch.float64 if double else torch.float32
    check_case("LIF", "m", tau, decay_input, v_th, v_reset, detach_reset, name, dtype, seed=seed, T=T,
               shape=(n,))  # fmt: skip


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 10_000), parts=st.integers(1, 9), align=st.sampled_from([1, 7, 16, 2048]))
def test_ranges_cover_the_neurons_once_aligned_and_balanced(n, parts, align):
    got = ops.ranges(n, parts, align)
    assert 1 <= len(got) <= parts
    assert got[0][0] == 0 and got[-1][1] == n
    assert all(hi > lo for lo, hi in got)
    for (lo, hi), (next_lo, _) in itertools.pairwise(got):
        assert hi == next_lo and (hi - lo) % align == 0
    sizes = [hi - lo for lo, hi in got]
    assert max(sizes) - min(sizes) <= 2 * align  # nearly equal shares
    assert len(got) == min(parts, -(-n // align))  # every thread asked for gets work when there is enough


def test_thread_pool_path_matches_reference(monkeypatch):
    """Calls split over 3 threads (forced: zero small-call threshold, 64-neuron chunks), odd N."""
    monkeypatch.setattr(ops, "SMALL", 0)
    monkeypatch.setattr(ops, "MIN_RANGE", 16)
    monkeypatch.setattr(ops, "threads", lambda: 3)
    monkeypatch.setitem(ops.CHUNK, torch.float32, 64)
    monkeypatch.setitem(ops.CHUNK, torch.float64, 64)
    submitted = []
    real_pool = ops._pool

    def spy_pool(workers):
        pool = real_pool(workers)
        submitted.append(workers)
        return pool

    monkeypatch.setattr(ops, "_pool", spy_pool)
    for _ in range(2):  # the first call of a loop runs on the calling thread only
        for dtype in (torch.float32, torch.float64):
            check_case("LIF", "m", 2.0, True, 1.0, 0.0, False, "Sigmoid", dtype, T=5, shape=(301,))
            check_case("IF", "m", None, None, 1.0, None, True, "Rect", dtype, T=3, shape=(130,))
    assert submitted and set(submitted) == {2}  # a pool of 2 threads; the caller runs the third range


# ----------------------------------------------------------------------------- gradcheck


@pytest.mark.parametrize("kind", ["IF", "LIF"])
def test_gradcheck_subthreshold_float64(kind):
    """Below threshold (x_seq, v0) -> v_last is smooth: analytic gradients match finite differences."""
    g = torch.Generator().manual_seed(3)
    x = (torch.rand(4, 5, generator=g, dtype=torch.float64) * 0.1).requires_grad_(True)
    v0 = (torch.rand(5, generator=g, dtype=torch.float64) * 0.1).requires_grad_(True)

    def v_last(x_seq, v):
        node = make_node(kind, "m", 3.0, True, 1.0, 0.0, True, "ATan", 2.0, backend="cpu")
        node.v = v
        node(x_seq)
        return node.v

    assert torch.autograd.gradcheck(v_last, (x, v0), eps=1e-6, atol=1e-9)


# ----------------------------------------------------------------------------- node behaviour


def test_state_carries_across_calls_and_reset():
    x, _, _ = data(8, (3, 4), torch.float32, seed=5)
    one = neuron.LIFNode(step_mode="m", backend="cpu")
    two = neuron.LIFNode(step_mode="m", backend="cpu")
    s_one = one(x)
    s_two = torch.cat([two(x[:3]), two(x[3:])])
    assert torch.equal(s_one, s_two) and torch.equal(one.v, two.v)
    one.reset()
    assert one.v == 0.0
    assert torch.equal(one(x), s_one)


def test_non_contiguous_input_and_store_v_seq():
    x, _, _ = data(4, (6, 3), torch.float64, seed=6)
    xt = x.transpose(1, 2)
    assert not xt.is_contiguous()
    fast = neuron.LIFNode(step_mode="m", backend="cpu", store_v_seq=True)
    ref = neuron.LIFNode(step_mode="m", backend="torch", store_v_seq=True)
    assert torch.equal(fast(xt), ref(xt))
    assert fast.v_seq.shape == (4, 3, 6)
    torch.testing.assert_close(fast.v_seq, ref.v_seq, rtol=0, atol=0)
    assert fast.v.shape == (3, 6)


def test_auto_uses_the_fast_path_on_cpu(monkeypatch):
    calls = []
    real = ops.forward

    def spy(*args, **kwargs):
        calls.append(args[0].shape)
        return real(*args, **kwargs)

    monkeypatch.setattr(ops, "forward", spy)
    x, _, _ = data(3, (4,), torch.float32, seed=7)
    assert neuron.LIFNode().backend == "auto"
    auto = neuron.LIFNode(step_mode="m")
    s = auto(x)
    assert calls == [(3, 4)]
    assert torch.equal(s, neuron.LIFNode(step_mode="m", backend="torch")(x))
    neuron.IFNode()(x[0])
    assert calls[-1] == (1, 4)
    n_calls = len(calls)
    neuron.LIFNode(step_mode="m", backend="torch")(x)
    neuron.ParametricLIFNode(step_mode="m")(x)  # PLIF keeps the torch path
    neuron.LIFNode(step_mode="m", surrogate_function=lambda z: (z >= 0).to(z))(x)  # custom surrogate
    neuron.LIFNode(step_mode="m", surrogate_function=surrogate.Sigmoid(spiking=False))(x)
    neuron.LIFNode(step_mode="m")(x.half())
    neuron.OTTTLIFNode()(x[0])
    assert len(calls) == n_calls


def test_subclass_with_other_dynamics_runs_torch():
    class Doubled(neuron.LIFNode):
        def neuronal_charge(self, x):
            super().neuronal_charge(2.0 * x)

    x, _, _ = data(5, (4,), torch.float64, seed=8)
    fast = Doubled(step_mode="m", backend="cpu")(x)
    ref = neuron.LIFNode(step_mode="m", backend="torch")(2.0 * x)
    assert torch.equal(fast, ref)


def test_explicit_cpu_backend_refuses_other_devices():
    node = neuron.LIFNode(step_mode="m", backend="cpu")
    with pytest.raises(ValueError, match=r"backend='cpu' runs CPU tensors, got x_seq on meta"):
        node(torch.empty(2, 3, device="meta"))
    node = neuron.IFNode(backend="cpu")
    with pytest.raises(ValueError, match=r"got x on meta"):
        node(torch.empty(3, device="meta"))


def test_without_numba_auto_warns_once_and_cpu_names_the_install(monkeypatch):
    import snnlab.kernels.cpu as cpu

    monkeypatch.setitem(cpu._state, "available", False)
    monkeypatch.setattr(neuron, "_UNAVAILABLE", set())
    x, _, _ = data(3, (4,), torch.float32, seed=9)
    ref = neuron.LIFNode(step_mode="m", backend="torch")(x)
    with pytest.warns(RuntimeWarning, match="pip install numba"):
        s = neuron.LIFNode(step_mode="m")(x)
    assert torch.equal(s, ref)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert torch.equal(neuron.LIFNode(step_mode="m")(x), ref)  # no second warning
        neuron.IFNode()(x[0])
    with pytest.raises(ImportError, match="pip install numba"):
        neuron.LIFNode(step_mode="m", backend="cpu")(x)
    with pytest.raises(ImportError, match="pip install numba"):
        neuron.IFNode(backend="cpu")(x[0])


def test_no_grad_inference_matches_and_keeps_no_graph():
    x, _, _ = data(6, (10,), torch.float32, seed=10)
    xg = x.clone().requires_grad_(True)
    with torch.no_grad():
        s = neuron.LIFNode(step_mode="m", backend="cpu")(xg)
    assert not s.requires_grad
    assert torch.equal(s, neuron.LIFNode(step_mode="m", backend="torch")(x))


# ----------------------------------------------------------------------------- lean single step


def torch_twin(node):
    """A ``backend='torch'`` copy of ``node``'s parameters."""
    kind = "LIF" if isinstance(node, neuron.LIFNode) else "IF"
    sf = node.surrogate_function
    extra = dict(tau=node.tau, decay_input=node.decay_input) if kind == "LIF" else {}
    cls = neuron.LIFNode if kind == "LIF" else neuron.IFNode
    return cls(v_threshold=node.v_threshold, v_reset=node.v_reset, detach_reset=node.detach_reset,
               surrogate_function=type(sf)(alpha=sf.alpha), backend="torch", **extra)  # fmt: skip


def test_lean_single_step_follows_parameter_changes_and_keeps_old_states():
    x, _, _ = data(12, (4, 5), torch.float32, seed=11, scale=2.0)
    fast = neuron.LIFNode(tau=2.0, backend="cpu")
    ref = torch_twin(fast)
    seen_fast, seen_ref = [], []
    changes = {3: ("tau", 4.0), 5: ("v_threshold", 0.7), 7: ("v_reset", None), 9: ("decay_input", False),
               10: ("v_reset", -0.2)}  # fmt: skip
    with torch.no_grad():
        for t in range(x.shape[0]):
            if t in changes:
                for node in (fast, ref):
                    setattr(node, *changes[t])
            assert torch.equal(fast(x[t]), ref(x[t]))
            seen_fast.append(fast.v)
            seen_ref.append(ref.v)
    for a, b in zip(seen_fast, seen_ref):  # every v handed out keeps its value (no in-place update)
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_lean_single_step_runs_without_the_full_path(monkeypatch):
    x, _, _ = data(6, (50,), torch.float64, seed=12)
    node = neuron.IFNode(backend="cpu", surrogate_function=surrogate.Sigmoid())
    ref = neuron.IFNode(backend="torch")
    calls = []
    real = node_backend._run

    def spy(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(node_backend, "_run", spy)
    with torch.no_grad():
        for t in range(6):
            assert torch.equal(node(x[t]), ref(x[t]))
    assert len(calls) == 1  # only the first step (v still a float) takes the full path
    torch.testing.assert_close(node.v, ref.v, rtol=0, atol=0)
    node.v_threshold = 0.5  # a new plan: the next step builds it on the full path
    ref.v_threshold = 0.5
    assert node.__dict__.get(node_backend.PLAN_ATTR) is None
    with torch.no_grad():
        assert torch.equal(node(x[0]), ref(x[0]))
    assert len(calls) == 2
    node.surrogate_function.alpha = 7.0  # in place: noticed by the plan
    assert node_backend.plan(node).alpha == 7.0
    node.surrogate_function.set_spiking_mode(False)  # the primitive, not a spike: the torch path
    assert node_backend.plan(node) is None
    node.surrogate_function.set_spiking_mode(True)
    assert node_backend.plan(node) is not None


def test_single_step_shape_and_dtype_changes():
    node = neuron.LIFNode(backend="cpu")
    node(torch.rand(3, 4))
    node(torch.rand(3, 4))
    with pytest.raises(ValueError, match="reset"):
        node(torch.rand(4, 3))
    node.reset()
    x64 = torch.rand(2, 6, dtype=torch.float64) * 2
    ref = neuron.LIFNode(backend="torch")
    for _ in range(3):
        assert torch.equal(node(x64), ref(x64))
    assert node.v.dtype == torch.float64
    half = neuron.LIFNode(backend="cpu")
    assert half(x64.half()).dtype == torch.float16  # not covered: the torch path


def test_single_step_grad_path_after_lean_steps():
    x, _, _ = data(4, (6,), torch.float64, seed=13, scale=2.0)
    node = neuron.LIFNode(backend="cpu", surrogate_function=surrogate.ATan())
    ref = neuron.LIFNode(backend="torch", surrogate_function=surrogate.ATan())
    with torch.no_grad():
        node(x[0])
        ref(x[0])
    xa, xb = x[1:].clone().requires_grad_(True), x[1:].clone().requires_grad_(True)
    sa = torch.stack([node(xa[t]) for t in range(3)])
    sb = torch.stack([ref(xb[t]) for t in range(3)])
    assert torch.equal(sa, sb)
    (ga,) = torch.autograd.grad((sa * x[1:]).sum() + node.v.sum(), xa)
    (gb,) = torch.autograd.grad((sb * x[1:]).sum() + ref.v.sum(), xb)
    torch.testing.assert_close(ga, gb, rtol=1e-12, atol=1e-12)


def test_plan_attribute_is_the_one_the_node_clears():
    assert neuron._FUSED_PLAN == node_backend.PLAN_ATTR


def test_deepcopy_and_pickle_leave_the_plan_behind():
    import copy
    import io

    x, _, _ = data(3, (7,), torch.float32, seed=14, scale=2.0)
    node = neuron.LIFNode(backend="cpu")
    ref = neuron.LIFNode(backend="torch")
    with torch.no_grad():
        for t in range(2):
            node(x[t])
            ref(x[t])
    assert isinstance(node.__dict__[node_backend.PLAN_ATTR], node_backend.Plan)
    buffer = io.BytesIO()
    torch.save(node, buffer)
    buffer.seek(0)
    copies = [copy.deepcopy(node), torch.load(buffer, weights_only=False)]
    with torch.no_grad():
        expected = ref(x[2])
        for other in copies:
            assert node_backend.PLAN_ATTR not in other.__dict__
            assert torch.equal(other(x[2]), expected)
            torch.testing.assert_close(other.v, ref.v, rtol=0, atol=0)


# ----------------------------------------------------------------------------- compilation and import


def run_python(code, cache_dir):
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache_dir)}
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                         env=env, timeout=600)  # fmt: skip
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_import_does_not_load_numba(tmp_path):
    code = """
        import sys
        import snnlab.neuron, snnlab.kernels
        print('numba' in sys.modules)
    """
    assert run_python(code, tmp_path) == "False"


def test_first_call_compiles_only_what_it_runs_and_later_processes_load_it(tmp_path):
    code = """
        import torch
        from snnlab import neuron
        from snnlab.kernels.cpu import load_loops
        node = neuron.LIFNode(step_mode="m", backend="cpu")
        with torch.no_grad():
            node(torch.rand(4, 10))
        loops = load_loops()
        compiled = sorted(name for name, f in vars(loops).items() if getattr(f, "signatures", None))
        fwd = loops.forward_kernel(1)
        factories = (loops.forward_kernel, loops.forward_grads_kernel, loops.backward_kernel)
        print(compiled, [f.cache_info().currsize for f in factories], len(fwd.stats.cache_hits),
              len(fwd.stats.cache_misses))
    """
    # LIF charge only: no other charge mode, no surrogate, no backward loop; compiled once ...
    assert run_python(code, tmp_path) == "['_copy', '_h_div', '_v_next'] [1, 0, 0] 0 1"
    # ... and a later process loads the loop from the disk cache without compiling anything
    assert run_python(code, tmp_path) == "[] [1, 0, 0] 1 0"


def test_warm_up_compiles_what_the_first_step_then_uses(tmp_path):
    code = """
        import torch
        from torch import nn
        from snnlab import neuron, surrogate
        from snnlab.kernels import cpu
        lif = neuron.LIFNode(step_mode="m", surrogate_function=surrogate.ATan())
        net = nn.Sequential(nn.Linear(3, 5), lif, neuron.IFNode(step_mode="m"))  # IF: Sigmoid
        cpu.warm_up(net, backward=True, background=True).join()
        loops = cpu.load_loops()
        kernels = [loops.forward_kernel(1), loops.forward_kernel(0), loops.backward_kernel(0),
                   loops.backward_kernel(1)]
        before = [len(k.signatures) for k in kernels]
        x = torch.rand(4, 2, 3, requires_grad=True)
        net(x).sum().backward()
        print(before, [len(k.signatures) for k in kernels], x.grad.shape == x.shape)
    """
    assert run_python(code, tmp_path) == "[1, 1, 1, 1] [1, 1, 1, 1] True"


def test_warm_up_bad_arguments():
    node = neuron.LIFNode()
    with pytest.raises(ValueError, match="dtypes"):
        cpu.warm_up(node, dtypes=(torch.float16,))
    with pytest.raises(ValueError, match="dtypes"):
        cpu.warm_up(node, dtypes=())
    with pytest.raises(TypeError, match="net"):
        cpu.warm_up(3)
    with pytest.raises(TypeError, match="background"):
        cpu.warm_up(node, background="yes")
    assert cpu.warm_up([node, torch.nn.ReLU()], dtypes=[torch.float64]) is None
