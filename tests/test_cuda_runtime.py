"""CuPy CUDA kernels (``snnlab.kernels.cuda``): plumbing everywhere, kernels on a GPU.

Run the GPU part on a machine with a CUDA GPU and CuPy (one command, from the
repository root; ``--noconftest`` because the shared conftest needs the
dashboard packages, which a bare GPU image may lack)::

    python -m pytest -q --noconftest -p no:cacheprovider tests/test_cuda_runtime.py tests/test_cuda_compile.py

Tests marked ``cuda`` skip cleanly without CuPy or a GPU. The other tests run
everywhere: they check the error for a missing CuPy / GPU, the argument
checks, that importing never imports CuPy, and the Python plumbing: every
launch is intercepted, its arguments are matched by name against the
``extern "C"`` signature parsed from the ``.cu`` source, and then filled
twice: by a plain-torch emulation of that kernel (written here), and by the
kernel itself, built for the host (below), so the autograd Functions, the
dispatch registrations and the plasticity wrappers are compared with the
torch references end to end on CPU tensors.

The kernel tests (``dev``) run twice: on a GPU (marked ``cuda``), and on the
host, with the ``.cu`` sources themselves compiled by ``g++`` for the CPU and
each launch run block by block (:mod:`cuda_host_kernels`), so the kernels' own
code is checked against the references wherever a C++ compiler is installed.
That host run checks what the code computes; the GPU run is still what shows
that it runs on a GPU (memory model, streams, the real 16-bit hardware).

Every reference below is an explicit loop over the equations, in torch.
"""

from __future__ import annotations

import importlib.util
import math
import subprocess
import sys

import cuda_host_kernels  # (tests/cuda_host_kernels.py)
import pytest
import torch

import snnlab.kernels as K
from snnlab import surrogate
from snnlab.kernels import dispatch
from snnlab.kernels.cuda import neuron_ops, plasticity_ops, registration, source_files
from snnlab.kernels.cuda import runtime as cuda_runtime

HAS_GPU = importlib.util.find_spec("cupy") is not None and torch.cuda.is_available()
cuda = pytest.mark.cuda
needs_gpu = pytest.mark.skipif(not HAS_GPU, reason="needs CuPy and a CUDA GPU")

SURROGATES = neuron_ops.SURROGATE_NAMES


# =========================================================================== plain references


def sg_ref(index: int, x: torch.Tensor, a: float) -> torch.Tensor:
    """g'(x; alpha) of each kernel surrogate, written out."""
    ax = x.abs()
    if index == 0:
        return a / 2 / (1 + (math.pi / 2 * a * x) ** 2)
    if index == 1:
        s = torch.sigmoid(a * x)
        return a * s * (1 - s)
    if index == 2:
        return torch.where(ax <= 1 / a, a - a * a * ax, torch.zeros_like(x))
    if index == 3:
        return a / 2 * torch.exp(-a * ax)
    if index == 4:
        return 1 / (2 * a * (1 / a + ax) ** 2)
    if index == 5:
        return a / (ax + 1) ** 2
    if index == 6:
        return a / math.sqrt(math.pi) * torch.exp(-((a * x) ** 2))
    if index == 7:
        return a * (ax < 0.5 / a).to(x)
    if index == 8:
        return (ax < a).to(x)
    if index == 9:
        return torch.exp(-x * x / (2 * a)) / (2 * math.pi * a)
    raise AssertionError(index)


def ref_charge(charge: int, x, v, v_reset: float, rtau: float):
    if charge == 0:
        return v + x
    if charge == 1:
        return v + (x - (v - v_reset)) * rtau
    return v + x + (v_reset - v) * rtau


def ref_forward(x_seq, v, v_th, v_reset, charge=0, rtau=1.0, alpha=2.0, index=0, detach_reset=False):
    """Loop over t: H, S, V, dS/dH, dV/dH; returns dict of stacked [T, ...] tensors and v_last."""
    vr = 0.0 if v_reset is None else v_reset
    hs, ss, vs, gss, gvs = [], [], [], [], []
    for t in range(x_seq.shape[0]):
        h = ref_charge(charge, x_seq[t], v, vr, rtau)
        s = (h >= v_th).to(h)
        v = h - s * v_th if v_reset is None else s * vr + (1 - s) * h
        gs = sg_ref(index, h - v_th, alpha)
        if v_reset is None:
            gv = torch.ones_like(h) if detach_reset else 1 - v_th * gs
        else:
            gv = 1 - s if detach_reset else 1 - s + (vr - h) * gs
        hs.append(h)
        ss.append(s)
        vs.append(v)
        gss.append(gs)
        gvs.append(gv)
    st = torch.stack
    return {"h": st(hs), "s": st(ss), "v_seq": st(vs), "v_last": v, "gs": st(gss), "gv": st(gvs)}


def ref_backward(grad_s, grad_v_last, gs, gv, h_to_x, h_to_v, grad_v_seq=None):
    """Loop t = T-1 .. 0 of dL/dH = gS dS/dH + gV dV/dH; returns (grad_x_seq, dL/dV_{-1})."""
    grad_x = torch.empty_like(gs)
    g_v = grad_v_last
    for t in range(gs.shape[0] - 1, -1, -1):
        if grad_v_seq is not None:
            g_v = g_v + grad_v_seq[t]
        g_h = grad_s[t] * gs[t] + g_v * gv[t]
        grad_x[t] = g_h * h_to_x
        g_v = g_h * h_to_v
    return grad_x, g_v


def partials(charge: int, rtau: float) -> tuple[float, float]:
    if charge == 0:
        return 1.0, 1.0
    return (rtau if charge == 1 else 1.0), 1.0 - rtau


def ref_stdp(
    w, s_pre, s_post, x_pre, x_post, tau_pre, tau_post, euler, g_post, g_pre, per_sample, coeff=None
):
    """Traces, then e[b, j, i] = c_b (G_post s_post[b, j] x_pre[b, i] - G_pre x_post[b, j] s_pre[b, i])."""
    if euler:
        x_pre = x_pre - x_pre / tau_pre + s_pre
        x_post = x_post - x_post / tau_post + s_post
    else:
        x_pre = x_pre * math.exp(-1 / tau_pre) + s_pre
        x_post = x_post * math.exp(-1 / tau_post) + s_post
    batch = s_pre.shape[0]
    e = torch.zeros(batch, *w.shape, dtype=w.dtype, device=w.device)
    for b in range(batch):
        c = 1.0 if coeff is None else coeff[b]
        for j in range(w.shape[0]):
            e[b, j] = c * (g_post[j] * s_post[b, j] * x_pre[b] - g_pre[j] * x_post[b, j] * s_pre[b])
    return x_pre, x_post, (e if per_sample else e.sum(0))


# =========================================================================== everywhere


def test_import_never_imports_cupy():
    code = (
        "import sys, snnlab, snnlab.kernels, snnlab.kernels.cuda\n"
        "assert 'cupy' not in sys.modules, 'cupy imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_require_cupy_without_cupy_names_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", None)  # import cupy -> ImportError
    with pytest.raises(cuda_runtime.CuPyUnavailableError, match=r"cupy-cuda1\dx") as info:
        cuda_runtime.require_cupy()
    assert isinstance(info.value, ImportError) and isinstance(info.value, RuntimeError)
    assert "backend='cupy'" in str(info.value)


def test_require_cupy_without_gpu_says_so(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", type(sys)("cupy"))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(cuda_runtime.CuPyUnavailableError, match="CUDA GPU"):
        cuda_runtime.require_cupy()
    assert not cuda_runtime.is_available()


@pytest.mark.skipif(HAS_GPU, reason="checks the error raised where no GPU is usable")
def test_kernel_functions_raise_the_clear_error_without_gpu():
    x = torch.zeros(2, 3)
    with pytest.raises(cuda_runtime.CuPyUnavailableError, match="backend='cupy'"):
        neuron_ops.neuron_forward(x, x[0], neuron_ops.NeuronParams(1.0, 0.0))


def test_check_cuda_tensor_rejects_cpu_and_bad_dtype():
    with pytest.raises(ValueError, match="x_seq"):
        cuda_runtime.check_cuda_tensor("x_seq", torch.zeros(2))
    with pytest.raises(TypeError, match="x_seq"):
        cuda_runtime.check_cuda_tensor("x_seq", [1.0])


@pytest.mark.parametrize("i, name", list(enumerate(SURROGATES)))
def test_surrogate_index_by_index_name_class_and_instance(i, name):
    cls = getattr(surrogate, name)
    assert neuron_ops.surrogate_index(i) == i
    assert neuron_ops.surrogate_index(name) == i
    assert neuron_ops.surrogate_index(cls) == i
    assert neuron_ops.surrogate_index(cls()) == i


def test_every_fused_surrogate_matches_snnlab_surrogate_grad():
    x = torch.linspace(-3, 3, 601, dtype=torch.float64)
    for i, name in enumerate(SURROGATES):
        for a in (0.5, 1.0, 2.5):
            expect = getattr(surrogate, name).surrogate_grad(x, a)
            torch.testing.assert_close(sg_ref(i, x, a), expect, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("bad", [10, -1, "Nope", True, None, 1.5])
def test_surrogate_index_rejects(bad):
    with pytest.raises(ValueError, match="grad_surrogate_function_index"):
        neuron_ops.surrogate_index(bad)


def test_neuron_params_checks_name_the_argument():
    P = neuron_ops.NeuronParams.checked
    with pytest.raises(ValueError, match="v_threshold"):
        P(0.0, 0.5)
    with pytest.raises(TypeError, match="v_reset"):
        P(1.0, "0")
    with pytest.raises(ValueError, match="charge"):
        P(1.0, 0.0, charge=3)
    with pytest.raises(ValueError, match="reciprocal_tau"):
        P(1.0, 0.0, neuron_ops.CHARGE_LIF, reciprocal_tau=1.5)
    with pytest.raises(ValueError, match="alpha"):
        P(1.0, 0.0, alpha=0.0)
    with pytest.raises(TypeError, match="detach_reset"):
        P(1.0, 0.0, detach_reset=1)
    with pytest.raises(TypeError, match="params"):
        neuron_ops.NeuronMultiStep.apply(torch.zeros(1, 2), torch.zeros(2), {"v_threshold": 1.0}, False)
    p = P(1.0, None, neuron_ops.CHARGE_LIF_UNSCALED, 0.25, 1.0, "Sigmoid", True)
    assert p.soft_reset and p.surrogate == 1 and p.partials() == (1.0, 0.75)


def test_registered_names_cover_the_if_and_lif_reference_kernels():
    expected = {n for n in dispatch.kernel_names() if n.startswith(("IF_", "LIF_"))}
    assert set(registration.registered_kernels()) == expected


def test_register_and_unregister_round_trip():
    registration.register_kernels()
    try:
        for name in registration.registered_kernels():
            assert "cuda" in dispatch.backends(name)
            assert dispatch.get_kernel(name, "cuda").__name__ == f"cupy_{name}"
    finally:
        registration.unregister_kernels()
    for name in registration.registered_kernels():
        assert dispatch.get_kernel(name, "cuda") is dispatch.reference_kernel(name)
    if importlib.util.find_spec("cupy") is not None:
        registration.register_kernels()  # as the package import left it


# --------------------------------------------------------------------------- launch emulation

#: ``{kernel: [(kind, name)]}`` of every entry point, parsed from the sources.
SIGNATURES = {}
for _text in source_files.sources().values():
    SIGNATURES.update(cuda_host_kernels.signatures(_text))


def _emulate(kernel: str, a: dict) -> None:
    """Plain-torch stand-in for one kernel launch, writing its outputs in place."""
    if kernel == "snn_neuron_forward":
        n, steps = a["n"], a["steps"]
        x = a["x_seq"].reshape(steps, n)
        v_reset = None if a["soft_reset"] else a["v_reset"]
        r = ref_forward(
            x,
            a["v_init"].reshape(n),
            a["v_th"],
            v_reset,
            a["charge"],
            a["rtau"],
            a["alpha"],
            a["surrogate"],
            bool(a["detach_reset"]),
        )
        a["spike_seq"].view(steps, n).copy_(r["s"])
        a["v_last"].view(n).copy_(r["v_last"])
        for key, ref_key in (
            ("h_seq", "h"),
            ("v_seq", "v_seq"),
            ("grad_s_to_h", "gs"),
            ("grad_v_to_h", "gv"),
        ):
            if a[key] is not None:
                a[key].view(steps, n).copy_(r[ref_key])
    elif kernel == "snn_neuron_backward":
        n, steps = a["n"], a["steps"]
        h = a["h_seq"].reshape(steps, n)
        v_th, soft, rtau, charge = a["v_th"], a["soft_reset"], a["rtau"], a["charge"]
        vr = 0.0 if soft else a["v_reset"]
        s = (h >= v_th).to(h)
        gs = sg_ref(a["surrogate"], h - v_th, a["alpha"])
        if soft:
            gv = torch.ones_like(h) if a["detach_reset"] else 1 - v_th * gs
        else:
            gv = 1 - s if a["detach_reset"] else 1 - s + (vr - h) * gs
        zeros = torch.zeros_like(h)
        grad_s = zeros if a["grad_spike_seq"] is None else a["grad_spike_seq"].reshape(steps, n)
        grad_v = zeros[0] if a["grad_v_last"] is None else a["grad_v_last"].reshape(n)
        grad_v_seq = None if a["grad_v_seq"] is None else a["grad_v_seq"].reshape(steps, n)
        gx, gv0 = ref_backward(grad_s, grad_v, gs, gv, *partials(charge, rtau), grad_v_seq)
        a["grad_x_seq"].view(steps, n).copy_(gx)
        a["grad_v_init"].view(n).copy_(gv0)
    elif kernel == "snn_bptt":
        n, steps = a["n"], a["steps"]
        gx, gv = ref_backward(
            a["grad_spike_seq"].reshape(steps, n),
            a["grad_v_next"].reshape(n),
            a["grad_s_to_h"].reshape(steps, n),
            a["grad_v_to_h"].reshape(steps, n),
            a["h_to_x"],
            a["h_to_v"],
        )
        a["grad_x_seq"].view(steps, n).copy_(gx)
        a["grad_v_out"].view(n).copy_(gv)
    elif kernel == "snn_stdp_linear":
        b, n_out, n_in = a["batch"], a["n_out"], a["n_in"]
        s_pre, s_post = a["s_pre"].reshape(b, n_in), a["s_post"].reshape(b, n_out)
        x_pre = torch.zeros_like(s_pre) if a["x_pre_in"] is None else a["x_pre_in"].reshape(b, n_in)
        x_post = torch.zeros_like(s_post) if a["x_post_in"] is None else a["x_post_in"].reshape(b, n_out)
        ones = torch.ones(n_out, n_in, dtype=s_pre.dtype)
        g_post = (ones if a["g_post"] is None else a["g_post"]) * a["c_post"]
        g_pre = (ones if a["g_pre"] is None else a["g_pre"]) * a["c_pre"]
        coeff = a["scale"] * (torch.ones(b) if a["sample_coeff"] is None else a["sample_coeff"])
        xp, xq, e = ref_stdp(
            ones,
            s_pre,
            s_post,
            x_pre,
            x_post,
            a["tau_pre"],
            a["tau_post"],
            a["euler"],
            g_post,
            g_pre,
            a["per_sample"],
            coeff,
        )
        assert math.isclose(a["decay_pre"], math.exp(-1 / a["tau_pre"]))
        assert math.isclose(a["decay_post"], math.exp(-1 / a["tau_post"]))
        a["x_pre_out"].view(b, n_in).copy_(xp)
        a["x_post_out"].view(b, n_out).copy_(xq)
        out = a["out"].view(e.shape)
        out.copy_(out + e if a["accumulate"] else e)
    else:
        raise AssertionError(kernel)


@pytest.fixture(params=["torch", "host"])
def emulated(request, monkeypatch):
    """Route every launch, after checking it against the parsed signature, to :func:`_emulate`
    (``torch``) or to the host build of the kernel itself (``host``, :mod:`cuda_host_kernels`)."""
    host = None
    if request.param == "host":
        if cuda_host_kernels.compiler() is None:
            pytest.skip("g++ is not installed")
        host = cuda_host_kernels.host_kernels()
    launches = []

    def fake_launch(file_name, kernel, dtype, device, grid, block, args):
        assert kernel in source_files.KERNELS[file_name]
        sig = SIGNATURES[kernel]
        assert len(args) == len(sig), (kernel, len(args), len(sig))
        named = {}
        for (kind, name), value in zip(sig, args):
            if kind == "ptr":
                assert value is None or isinstance(value, torch.Tensor), (kernel, name, value)
                if value is not None:
                    assert value.dtype == dtype and value.is_contiguous(), (kernel, name)
            elif kind == "int":
                assert isinstance(value, int), (kernel, name, value)
            else:
                assert isinstance(value, float), (kernel, name, value)
            named[name] = value
        assert all(g >= 1 for g in grid) and all(b >= 1 for b in block)
        launches.append(kernel)
        if host is None:
            _emulate(kernel, named)
        else:
            host.launch(file_name, kernel, dtype, device, grid, block, args)

    for module in (neuron_ops, plasticity_ops):
        monkeypatch.setattr(module, "launch", fake_launch)
        monkeypatch.setattr(module, "require_cupy", lambda: None)
        monkeypatch.setattr(module, "check_cuda_tensor", lambda name, t: None)
    return launches


def _seq(steps=5, shape=(3, 4), dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(steps, *shape, generator=g, dtype=dtype) * 0.8 + 0.4
    v = torch.randn(*shape, generator=g, dtype=dtype) * 0.3
    return x, v


def _sample_args(name: str, dtype=torch.float64):
    """Positional arguments for reference kernel ``name`` (validated values)."""
    x, v = _seq(dtype=dtype)
    seq = "fptt" in name or "bptt" in name
    lif = name.startswith("LIF")
    if "backward" in name or "bptt" in name:
        g = torch.Generator().manual_seed(3)
        t = (x if seq else x[0]).shape
        grads = [torch.randn(t, generator=g, dtype=dtype), torch.randn(v.shape, generator=g, dtype=dtype)]
        grads += [torch.randn(t, generator=g, dtype=dtype) for _ in range(2)]
        return (*grads, 0.4, False) if lif else tuple(grads)
    args = [x if seq else x[0], v, 1.0]
    if "hard" in name:
        args.append(-0.1)
    if "with_grad" in name:
        args += [2.0, False, 1]
    if lif:
        args += [0.4, "detach" not in name]
    return tuple(args)


@pytest.mark.parametrize("name", registration.registered_kernels())
def test_registered_implementation_matches_reference_via_emulated_launch(name, emulated):
    impl = registration._implementations()[name]
    args = _sample_args(name)
    got = impl(*args)
    expect = dispatch.reference_kernel(name)(*args)
    assert len(got) == len(expect)
    for g, e in zip(got, expect):
        assert g.shape == e.shape
        torch.testing.assert_close(g, e, rtol=1e-12, atol=1e-12)
    assert emulated, "no kernel was launched"


@pytest.mark.parametrize("charge", [0, 1, 2])
@pytest.mark.parametrize("v_reset", [-0.1, None])
@pytest.mark.parametrize("detach_reset", [False, True])
def test_neuron_multistep_autograd_plumbing(charge, v_reset, detach_reset, emulated):
    x, v = _seq(steps=6, shape=(2, 5))
    x.requires_grad_(True)
    v.requires_grad_(True)
    index = 3
    params = neuron_ops.NeuronParams.checked(1.0, v_reset, charge, 0.3, 1.5, index, detach_reset)
    spike, v_last, v_seq = neuron_ops.NeuronMultiStep.apply(x, v, params, True)
    r = ref_forward(x.detach(), v.detach(), 1.0, v_reset, charge, 0.3, 1.5, index, detach_reset)
    torch.testing.assert_close(spike, r["s"], rtol=0, atol=0)
    torch.testing.assert_close(v_last, r["v_last"])
    torch.testing.assert_close(v_seq, r["v_seq"])
    g = torch.Generator().manual_seed(9)
    ws, wv, wq = (torch.randn(t.shape, generator=g, dtype=t.dtype) for t in (spike, v_last, v_seq))
    ((spike * ws).sum() + (v_last * wv).sum() + (v_seq * wq).sum()).backward()
    gx, gv = ref_backward(ws, wv, r["gs"], r["gv"], *partials(charge, 0.3), wq)
    torch.testing.assert_close(x.grad, gx, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(v.grad, gv, rtol=1e-12, atol=1e-12)


def test_reference_signature_functions_plumbing(emulated):
    x, v = _seq(steps=4, shape=(6,))
    for multi in (True, False):
        xs = x if multi else x[0]
        for cls, extra, charge in (
            (neuron_ops.LIFMultiStep if multi else neuron_ops.LIFStep, (0.5, True), 2),
            (neuron_ops.IFMultiStep if multi else neuron_ops.IFStep, (), 0),
        ):
            xg = xs.clone().requires_grad_(True)
            spike, v_next = cls.apply(xg, v, 1.0, 0.0, 2.0, False, "Erf", *extra)
            r = ref_forward(xs if multi else xs[None], v, 1.0, 0.0, charge, 0.5, 2.0, 6)
            torch.testing.assert_close(spike, r["s"] if multi else r["s"][0], rtol=0, atol=0)
            torch.testing.assert_close(v_next, r["v_last"])
            spike.sum().backward()
            gx, _ = ref_backward(
                torch.ones_like(r["s"]), torch.zeros_like(v), r["gs"], r["gv"], *partials(charge, 0.5)
            )
            torch.testing.assert_close(xg.grad, gx if multi else gx[0])
    with pytest.raises(ValueError, match="grad_surrogate_function_index"):
        neuron_ops.IFMultiStep.apply(x, v, 1.0, 0.0, 2.0, False, 11)
    with pytest.raises(ValueError, match="v"):
        neuron_ops.IFMultiStep.apply(x, v[:2], 1.0, 0.0, 2.0, False, 0)


@pytest.mark.parametrize("cls_name", ["IFNode", "LIFNode"])
def test_node_backend_plumbing(cls_name, emulated):
    from snnlab import neuron

    kwargs = {"tau": 3.0, "decay_input": False} if cls_name == "LIFNode" else {}
    make = getattr(neuron, cls_name)
    ref_node = make(
        step_mode="m", surrogate_function=surrogate.SoftSign(alpha=1.5), store_v_seq=True, **kwargs
    )
    node = make(step_mode="m", surrogate_function=surrogate.SoftSign(alpha=1.5), store_v_seq=True, **kwargs)
    params = neuron_ops.node_params(node)
    assert params is not None and params.surrogate == SURROGATES.index("SoftSign") and params.alpha == 1.5
    x, _ = _seq(steps=5, shape=(2, 3), dtype=torch.float64)
    xa, xb = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    out = neuron_ops.node_multi_step(node, xa)
    ref = ref_node._multi_step_torch(xb)
    torch.testing.assert_close(out, ref, rtol=0, atol=0)
    torch.testing.assert_close(node.v, ref_node.v, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(node.v_seq, ref_node.v_seq, rtol=1e-12, atol=1e-12)
    out.sum().backward()
    ref.sum().backward()
    torch.testing.assert_close(xa.grad, xb.grad, rtol=1e-10, atol=1e-12)
    # the primitive (spiking=False) is not a spike: the torch path handles it
    node.surrogate_function = surrogate.ATan(spiking=False)
    assert neuron_ops.node_params(node) is None


@pytest.mark.parametrize("batch", [1, 3, 20])
@pytest.mark.parametrize("modulation", ["identity", "constant", "tensor"])
def test_stdp_plumbing_matches_functional_reference(batch, modulation, emulated):
    from snnlab.learning.stdp_functional import stdp_linear_single_step

    g = torch.Generator().manual_seed(batch)
    fc = torch.nn.Linear(7, 5, bias=False).double()
    s_pre = (torch.rand(batch, 7, generator=g) < 0.4).double()
    s_post = (torch.rand(batch, 5, generator=g) < 0.4).double()
    tr_pre = torch.rand(batch, 7, generator=g, dtype=torch.float64)
    tr_post = torch.rand(batch, 5, generator=g, dtype=torch.float64)
    fs = {
        "identity": (lambda w: w, lambda w: w),
        "constant": (lambda w: 0.3, lambda w: 0.7),
        "tensor": (lambda w: w.abs(), lambda w: 1 - w),
    }[modulation]
    got = plasticity_ops.stdp_linear_step(fc.weight, s_pre, s_post, tr_pre, tr_post, 2.0, 3.0, *fs)
    expect = stdp_linear_single_step(fc, s_pre, s_post, tr_pre, tr_post, 2.0, 3.0, *fs)
    for a, b in zip(got, expect):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    grad = torch.randn(5, 7, generator=g, dtype=torch.float64)
    before = grad.clone()
    _, _, same = plasticity_ops.stdp_linear_step(
        fc.weight, s_pre, s_post, tr_pre, tr_post, 2.0, 3.0, *fs, scale=-1.0, out=grad
    )
    assert same is grad
    torch.testing.assert_close(grad, before - expect[2], rtol=1e-12, atol=1e-12)


def test_mstdp_plumbing_matches_functional_reference(emulated):
    from snnlab.learning.stdp_functional import mstdp_linear_single_step

    g = torch.Generator().manual_seed(1)
    fc = torch.nn.Linear(6, 4, bias=False).double()
    for lead in ((3,), ()):
        s_pre = (torch.rand(*lead, 6, generator=g) < 0.5).double()
        s_post = (torch.rand(*lead, 4, generator=g) < 0.5).double()
        got = plasticity_ops.mstdp_linear_step(fc.weight, s_pre, s_post, None, 0.5, 2.0, 4.0)
        expect = mstdp_linear_single_step(fc, s_pre, s_post, None, 0.5, 2.0, 4.0)
        for a, b in zip(got, expect):
            assert a.shape == b.shape
            torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def test_plasticity_argument_errors(emulated):
    w = torch.zeros(4, 6)
    with pytest.raises(ValueError, match="in_spike"):
        plasticity_ops.stdp_linear_step(w, torch.zeros(2, 5), torch.zeros(2, 4), None, None, 2.0, 2.0)
    with pytest.raises(ValueError, match="out_spike"):
        plasticity_ops.stdp_linear_step(w, torch.zeros(2, 6), torch.zeros(2, 3), None, None, 2.0, 2.0)
    with pytest.raises(ValueError, match="batch size"):
        plasticity_ops.stdp_linear_step(w, torch.zeros(2, 6), torch.zeros(3, 4), None, None, 2.0, 2.0)
    with pytest.raises(ValueError, match="tau_pre"):
        plasticity_ops.stdp_linear_step(w, torch.zeros(2, 6), torch.zeros(2, 4), None, None, 0.0, 2.0)
    with pytest.raises(ValueError, match="trace_pre"):
        plasticity_ops.stdp_linear_step(
            w, torch.zeros(2, 6), torch.zeros(2, 4), torch.zeros(3, 6), None, 2.0, 2.0
        )
    with pytest.raises(ValueError, match="weight"):
        plasticity_ops.stdp_linear_step(w[0], torch.zeros(2, 6), torch.zeros(2, 4), None, None, 2.0, 2.0)
    with pytest.raises(ValueError, match="sample_coeff"):
        plasticity_ops.stdp_linear_step(
            w, torch.zeros(2, 6), torch.zeros(2, 4), None, None, 2.0, 2.0, sample_coeff=torch.ones(3)
        )
    with pytest.raises(ValueError, match="f_post"):
        plasticity_ops.stdp_linear_step(
            w, torch.zeros(2, 6), torch.zeros(2, 4), None, None, 2.0, 2.0, f_post=lambda w: torch.ones(3)
        )


# =========================================================================== on a GPU


def _dev():
    return torch.device("cuda")


def _check_host_tensor(name, tensor):
    """``check_cuda_tensor`` without the device test (the host build runs CPU tensors)."""
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(tensor).__name__}")
    if tensor.dtype not in source_files.DTYPE_SUFFIXES:
        raise TypeError(f"{name} must have one of the kernels' dtypes, got {tensor.dtype}")


@pytest.fixture(params=[pytest.param("cuda", marks=cuda), "host"])
def dev(request, monkeypatch):
    """The device the kernels run on: a GPU through CuPy, or the CPU through the host build of the
    same sources (every launch of the neuron and plasticity wrappers goes to it)."""
    if request.param == "cuda":
        if not HAS_GPU:
            pytest.skip("needs CuPy and a CUDA GPU")
        return torch.device("cuda")
    if cuda_host_kernels.compiler() is None:
        pytest.skip("g++ is not installed")
    host = cuda_host_kernels.host_kernels()
    for module in (neuron_ops, plasticity_ops):
        monkeypatch.setattr(module, "launch", host.launch)
        monkeypatch.setattr(module, "require_cupy", lambda: None)
        monkeypatch.setattr(module, "check_cuda_tensor", _check_host_tensor)
    return torch.device("cpu")


PARAM_GRID = [
    (charge, v_reset, detach_reset)
    for charge in (0, 1, 2)
    for v_reset in (0.0, -0.2, None)
    for detach_reset in (False, True)
]


@pytest.mark.parametrize("charge, v_reset, detach_reset", PARAM_GRID)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_kernel_forward_and_partials_match_plain_loop(charge, v_reset, detach_reset, dtype, dev):
    x, v = _seq(steps=9, shape=(37, 29), dtype=dtype, seed=charge)
    x, v = x.to(dev), v.to(dev)
    for index in range(len(SURROGATES)):
        params = neuron_ops.NeuronParams.checked(1.0, v_reset, charge, 0.35, 1.3, index, detach_reset)
        out = neuron_ops.neuron_forward(x, v, params, save_h=True, save_v_seq=True, with_partials=True)
        r = ref_forward(x, v, 1.0, v_reset, charge, 0.35, 1.3, index, detach_reset)
        assert torch.equal(out["spike_seq"], r["s"])
        tol = {"rtol": 1e-6, "atol": 1e-6} if dtype == torch.float32 else {"rtol": 1e-12, "atol": 1e-12}
        torch.testing.assert_close(out["h_seq"], r["h"], **tol)
        torch.testing.assert_close(out["v_seq"], r["v_seq"], **tol)
        torch.testing.assert_close(out["v_last"], r["v_last"], **tol)
        torch.testing.assert_close(out["grad_s_to_h"], r["gs"], **tol)
        torch.testing.assert_close(out["grad_v_to_h"], r["gv"], **tol)


@pytest.mark.parametrize("charge, v_reset, detach_reset", PARAM_GRID)
def test_kernel_autograd_matches_plain_bptt(charge, v_reset, detach_reset, dev):
    x, v = _seq(steps=7, shape=(4, 33), dtype=torch.float32, seed=5)
    x, v = x.to(dev).requires_grad_(True), v.to(dev).requires_grad_(True)
    for index in (0, 1, 4, 7, 9):
        params = neuron_ops.NeuronParams.checked(1.0, v_reset, charge, 0.5, 2.0, index, detach_reset)
        spike, v_last, v_seq = neuron_ops.NeuronMultiStep.apply(x, v, params, True)
        g = torch.Generator(device=dev).manual_seed(index)
        ws, wv, wq = (torch.randn(t.shape, generator=g, device=t.device) for t in (spike, v_last, v_seq))
        gx, gv = torch.autograd.grad((spike * ws).sum() + (v_last * wv).sum() + (v_seq * wq).sum(), (x, v))
        r = ref_forward(x.detach(), v.detach(), 1.0, v_reset, charge, 0.5, 2.0, index, detach_reset)
        ex, ev = ref_backward(ws, wv, r["gs"], r["gv"], *partials(charge, 0.5), wq)
        torch.testing.assert_close(gx, ex, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(gv, ev, rtol=1e-5, atol=1e-6)
        # single step: the T = 1 kernel
        s1, v1 = neuron_ops.NeuronStep.apply(x[0], v, params)
        gx1, gv1 = torch.autograd.grad((s1 * ws[0]).sum() + (v1 * wv).sum(), (x, v))
        r1 = ref_forward(x[:1].detach(), v.detach(), 1.0, v_reset, charge, 0.5, 2.0, index, detach_reset)
        assert torch.equal(s1, r1["s"][0])
        ex1, ev1 = ref_backward(ws[:1], wv, r1["gs"], r1["gv"], *partials(charge, 0.5))
        torch.testing.assert_close(gx1[0], ex1[0], rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(gv1, ev1, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("charge, v_reset", [(c, r) for c in (0, 1, 2) for r in (0.0, None)])
def test_kernel_gradcheck_float64(charge, v_reset, dev):
    """With ``detach_reset`` the gradient of ``v_last`` is the true derivative (spikes are locally
    constant), so finite differences check the BPTT kernel exactly."""
    x, v = _seq(steps=5, shape=(3, 4), dtype=torch.float64, seed=11)
    x, v = x.to(dev).requires_grad_(True), v.to(dev).requires_grad_(True)
    params = neuron_ops.NeuronParams.checked(1.0, v_reset, charge, 0.4, 2.0, 0, True)
    with torch.no_grad():
        h = ref_forward(x, v, 1.0, v_reset, charge, 0.4)["h"]
    assert (h - 1.0).abs().min() > 1e-4, "an input sits on the threshold; pick another seed"

    def fn(x_seq, v0):
        return neuron_ops.NeuronMultiStep.apply(x_seq, v0, params, True)[1:]

    assert torch.autograd.gradcheck(fn, (x, v), eps=1e-6, atol=1e-8, rtol=1e-6)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("charge, v_reset", [(0, 0.0), (1, None), (2, -0.1)])
def test_kernel_half_precision_against_float32(dtype, charge, v_reset, dev):
    x, v = _seq(steps=16, shape=(64, 65), dtype=torch.float32, seed=2)
    x, v = x.to(dev).to(dtype), v.to(dev).to(dtype)
    xr, vr = x.float().requires_grad_(True), v.float()
    xh = x.clone().requires_grad_(True)
    params = neuron_ops.NeuronParams.checked(1.0, v_reset, charge, 0.5, 2.0, 0, False)
    spike, v_last = neuron_ops.NeuronMultiStep.apply(xh, v, params, False)
    assert spike.dtype == dtype and v_last.dtype == dtype
    r = ref_forward(xr.detach(), vr, 1.0, v_reset, charge, 0.5)
    # float32 arithmetic in registers on exactly representable inputs: the same spikes
    mismatch = (spike.float() != r["s"]).float().mean().item()
    assert mismatch <= 1e-3
    torch.testing.assert_close(v_last.float(), r["v_last"].to(dtype).float(), rtol=2e-2, atol=2e-2)
    spike.float().sum().backward()
    ex, _ = ref_backward(
        torch.ones_like(r["s"]), torch.zeros_like(vr), r["gs"], r["gv"], *partials(charge, 0.5)
    )
    # H is saved in the input dtype, so the surrogate sees H rounded to 8 (bf16) or 11 (fp16) bits;
    # the spikes the backward recomputes from it are the forward's (a crossed spike would cost ~1e-2)
    rel = ((xh.grad.float() - ex).norm() / ex.norm()).item()
    assert rel < (1e-2 if dtype == torch.bfloat16 else 2e-3), rel


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("v_th", [1.0, 0.3])
def test_kernel_half_precision_h_keeps_the_side_of_its_spike(dtype, v_th, dev):
    """H computed in float32 just above and below the threshold: the saved 16-bit H is the nearest
    16-bit value on the side where the spike was decided (the backward recomputes S from it)."""
    n = 4096
    g = torch.Generator().manual_seed(7)
    # 16-bit inputs; H = v0 + x in float32 has the low bits of a small v0, so it rarely is a 16-bit
    # value, and it spans a few 16-bit steps around v_th
    v0 = (torch.rand(n, generator=g) * 0.01).to(dtype)
    step = v_th * (2e-5 if dtype == torch.bfloat16 else 2e-6)
    x = (v_th - v0.float() + (torch.arange(n) - n // 2) * step).to(dtype)[None]
    params = neuron_ops.NeuronParams.checked(v_th, 0.0, 0, 1.0)
    got = neuron_ops.neuron_forward(x.to(dev), v0.to(dev), params, save_h=True)
    exact = neuron_ops.neuron_forward(x.float().to(dev), v0.float().to(dev), params, save_h=True)
    h16, h32, spike = got["h_seq"].cpu().float(), exact["h_seq"].cpu(), got["spike_seq"].cpu().float()
    assert torch.equal(spike, exact["spike_seq"].cpu())
    assert 0 < spike.sum() < n
    rounded = h32.to(dtype).float()
    assert (rounded >= v_th).ne(spike.bool()).any(), "no H was rounded across the threshold"
    assert torch.equal(h16 >= v_th, spike.bool())
    ulp = (torch.nextafter(h32.to(dtype), torch.tensor(float("inf"), dtype=dtype)).float() - rounded).abs()
    assert torch.all((h16 - h32).abs() <= ulp)
    assert torch.equal(h16[rounded.ge(v_th).eq(spike.bool())], rounded[rounded.ge(v_th).eq(spike.bool())])


@cuda
@needs_gpu
def test_gpu_runs_on_torch_current_stream():
    """Inputs written on a side stream after a long sleep: a kernel on another stream would read them
    before they are written. The STDP check (f_pre = 0, f_post = 1, one post spike everywhere, no
    old traces) gives delta_w[j, i] = s_pre[i]."""
    x, v = _seq(steps=8, shape=(1 << 16,), dtype=torch.float32, seed=4)
    src, v = x.to(_dev()), v.to(_dev())
    params = neuron_ops.NeuronParams.checked(1.0, 0.0, 1, 0.5)
    expect = ref_forward(src, v, 1.0, 0.0, 1, 0.5)
    side = torch.cuda.Stream()
    for _ in range(3):
        buf = torch.zeros_like(src)
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            torch.cuda._sleep(50_000_000)
            buf.copy_(src)
            out = neuron_ops.neuron_forward(buf, v, params)
            w = torch.zeros(64, 1 << 16, device=_dev())
            torch.cuda._sleep(50_000_000)
            _, _, dw = plasticity_ops.stdp_linear_step(
                w, buf[0:1] > 1.0, torch.ones(1, 64, device=_dev()), None, None, 2.0, 2.0, 0.0, 1.0
            )
        torch.cuda.current_stream().wait_stream(side)
        assert torch.equal(out["spike_seq"], expect["s"])
        torch.testing.assert_close(out["v_last"], expect["v_last"], rtol=1e-6, atol=1e-6)
        torch.testing.assert_close(dw, (buf[0:1] > 1.0).float().expand(64, -1), rtol=0, atol=0)


@cuda
@needs_gpu
@pytest.mark.parametrize("name", registration.registered_kernels())
def test_gpu_dispatch_matches_reference(name):
    registration.register_kernels()
    assert dispatch.get_kernel(name, "cuda").__name__ == f"cupy_{name}"
    for dtype in (torch.float32, torch.float64):
        args = tuple(a.to(_dev()) if isinstance(a, torch.Tensor) else a for a in _sample_args(name, dtype))
        got = getattr(K, name)(*args)
        expect = dispatch.reference_kernel(name)(*args)
        tol = 1e-5 if dtype == torch.float32 else 1e-12
        for g, e in zip(got, expect):
            torch.testing.assert_close(g, e, rtol=tol, atol=tol)


@cuda
@needs_gpu
def test_gpu_kernels_autograd_functions_use_cupy_and_match_cpu():
    x, v = _seq(steps=6, shape=(5, 7), dtype=torch.float64, seed=8)
    xc, vc = x.to(_dev()).requires_grad_(True), v.to(_dev())
    xr = x.clone().requires_grad_(True)
    sc, _ = K.LIFMultiStep.apply(xc, vc, 1.0, 0.0, 2.0, False, 1, 0.5, False)
    sr, _ = K.LIFMultiStep.apply(xr, v, 1.0, 0.0, 2.0, False, 1, 0.5, False)
    assert torch.equal(sc.cpu(), sr)
    sc.sum().backward()
    sr.sum().backward()
    torch.testing.assert_close(xc.grad.cpu(), xr.grad, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    "cls_name, kwargs",
    [
        ("IFNode", {}),
        ("LIFNode", {"tau": 2.0}),
        ("LIFNode", {"tau": 4.0, "decay_input": False, "v_reset": None}),
    ],
)
def test_kernel_node_backend_matches_torch_path(cls_name, kwargs, dev):
    from snnlab import neuron

    make = getattr(neuron, cls_name)
    a = make(step_mode="m", store_v_seq=True, **kwargs).to(dev)
    b = make(step_mode="m", store_v_seq=True, **kwargs).to(dev)
    x, _ = _seq(steps=12, shape=(8, 50), dtype=torch.float32, seed=6)
    xa, xb = x.to(dev).requires_grad_(True), x.to(dev).requires_grad_(True)
    sa = neuron_ops.node_multi_step(a, xa)
    sb = b._multi_step_torch(xb)
    assert (sa != sb).float().mean().item() <= 1e-3  # node's own rounding order may differ by an ulp
    torch.testing.assert_close(a.v, b.v, rtol=1e-5, atol=1e-5)
    sa.sum().backward()
    sb.sum().backward()
    torch.testing.assert_close(xa.grad, xb.grad, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("batch", [3, 20])
def test_kernel_plasticity_half_precision_against_float32(dtype, batch, dev):
    """16-bit tensors (float32 arithmetic inside): the traces and delta_w of the same, exactly
    representable inputs computed in float32, within the 16-bit type's rounding (batch 20: two
    sample chunks, whose partial sums are stored in the 16-bit output between them)."""
    n_out, n_in = 24, 150
    g = torch.Generator().manual_seed(batch)
    w = torch.randn(n_out, n_in, generator=g).to(dtype)
    s_pre = (torch.rand(batch, n_in, generator=g) < 0.3).to(dtype)
    s_post = (torch.rand(batch, n_out, generator=g) < 0.3).to(dtype)
    tr_pre = torch.rand(batch, n_in, generator=g).to(dtype)
    tr_post = torch.rand(batch, n_out, generator=g).to(dtype)
    d = [t.to(dev) for t in (w, s_pre, s_post, tr_pre, tr_post)]
    xp, xq, dw = plasticity_ops.stdp_linear_step(*d, 2.0, 5.0)
    assert xp.dtype == xq.dtype == dw.dtype == dtype
    f = [t.float() for t in (w, s_pre, s_post, tr_pre, tr_post)]
    ep, eq, e = ref_stdp(f[0], *f[1:], 2.0, 5.0, True, f[0], f[0], False)
    eps = 2.0**-8 if dtype == torch.bfloat16 else 2.0**-11  # half an ulp, relative
    torch.testing.assert_close(xp.cpu().float(), ep, rtol=eps, atol=0)
    torch.testing.assert_close(xq.cpu().float(), eq, rtol=eps, atol=0)
    scale = e.abs().max().item()
    assert ((dw.cpu().float() - e).abs() <= 4 * eps * scale).all()


@pytest.mark.parametrize("batch, n_out, n_in", [(1, 13, 300), (16, 40, 129), (20, 9, 64)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_kernel_plasticity_matches_plain_loop(batch, n_out, n_in, dtype, dev):
    g = torch.Generator().manual_seed(batch)
    w = torch.randn(n_out, n_in, generator=g, dtype=dtype)
    s_pre = (torch.rand(batch, n_in, generator=g) < 0.3).to(dtype)
    s_post = (torch.rand(batch, n_out, generator=g) < 0.3).to(dtype)
    tr_pre = torch.rand(batch, n_in, generator=g, dtype=dtype)
    tr_post = torch.rand(batch, n_out, generator=g, dtype=dtype)
    reward = torch.randn(batch, generator=g, dtype=dtype)
    tol = {"rtol": 1e-5, "atol": 1e-5} if dtype == torch.float32 else {"rtol": 1e-12, "atol": 1e-12}
    d = [t.to(dev) for t in (w, s_pre, s_post, tr_pre, tr_post, reward)]
    # STDP, multiplicative, per-sample reward, accumulated into a grad with scale -2
    grad = torch.ones_like(d[0])
    xp, xq, _ = plasticity_ops.stdp_linear_step(
        d[0], d[1], d[2], d[3], d[4], 2.0, 5.0, scale=-2.0, sample_coeff=d[5], out=grad
    )
    ep, eq, e = ref_stdp(w, s_pre, s_post, tr_pre, tr_post, 2.0, 5.0, True, w, w, False, reward)
    torch.testing.assert_close(xp.cpu(), ep, **tol)
    torch.testing.assert_close(xq.cpu(), eq, **tol)
    torch.testing.assert_close(grad.cpu(), 1 - 2 * e, **tol)
    # mSTDP eligibility, additive constants
    xp, xq, elig = plasticity_ops.mstdp_linear_step(d[0], d[1], d[2], d[3], None, 3.0, 4.0, 0.5, 1.5)
    c = torch.ones_like(w)
    ep, eq, e = ref_stdp(
        w, s_pre, s_post, tr_pre, torch.zeros_like(tr_post), 3.0, 4.0, False, 1.5 * c, 0.5 * c, True
    )
    torch.testing.assert_close(elig.cpu(), e, **tol)
    torch.testing.assert_close(xq.cpu(), eq, **tol)


def test_kernel_plasticity_matches_learning_functional(dev):
    from snnlab.learning.stdp_functional import mstdp_linear_single_step, stdp_linear_single_step

    fc = torch.nn.Linear(100, 30, bias=False).to(dev)
    g = torch.Generator(device=dev).manual_seed(0)
    s_pre = (torch.rand(4, 100, generator=g, device=dev) < 0.2).float()
    s_post = (torch.rand(4, 30, generator=g, device=dev) < 0.2).float()
    for fused, ref in (
        (plasticity_ops.stdp_linear_step, stdp_linear_single_step),
        (plasticity_ops.mstdp_linear_step, mstdp_linear_single_step),
    ):
        got = fused(fc.weight, s_pre, s_post, 0.5, None, 2.0, 3.0)
        expect = ref(fc, s_pre, s_post, 0.5, None, 2.0, 3.0)
        for a, b in zip(got, expect):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


# =========================================================================== host build, small grids


@pytest.fixture
def host():
    if cuda_host_kernels.compiler() is None:
        pytest.skip("g++ is not installed")
    return cuda_host_kernels.host_kernels()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_host_neuron_kernels_grid_stride_loop(host, dtype):
    """A grid of fewer threads than neurons: each thread takes every (blocks x threads)-th neuron."""
    x, v = _seq(steps=6, shape=(37,), dtype=dtype, seed=3)
    r = ref_forward(x, v, 1.0, -0.1, 1, 0.4, 2.0, 5, False)
    spike, v_last, h = torch.empty_like(x), torch.empty_like(v), torch.empty_like(x)
    args = (x, v, spike, v_last, h, None, None, None, 37, 6, 1.0, -0.1, 0.4, 1, 0, 2.0, 5, 0)
    host.launch("neuron.cu", "snn_neuron_forward", dtype, None, (2,), (8,), args)
    tol = {"rtol": 1e-6, "atol": 1e-6} if dtype == torch.float32 else {"rtol": 1e-12, "atol": 1e-12}
    assert torch.equal(spike, r["s"])
    torch.testing.assert_close(h, r["h"], **tol)
    torch.testing.assert_close(v_last, r["v_last"], **tol)
    g = torch.Generator().manual_seed(4)
    grad_s = torch.randn(x.shape, generator=g, dtype=dtype)
    grad_v = torch.randn(v.shape, generator=g, dtype=dtype)
    grad_x, grad_v0 = torch.empty_like(x), torch.empty_like(v)
    args = (grad_s, grad_v, None, h, grad_x, grad_v0, 37, 6, 1.0, -0.1, 0.4, 1, 0, 2.0, 5, 0)
    host.launch("neuron.cu", "snn_neuron_backward", dtype, None, (3,), (4,), args)
    ex, ev = ref_backward(grad_s, grad_v, r["gs"], r["gv"], *partials(1, 0.4))
    torch.testing.assert_close(grad_x, ex, **tol)
    torch.testing.assert_close(grad_v0, ev, **tol)


@pytest.mark.parametrize("per_sample", [0, 1])
def test_host_plasticity_kernel_row_tiles_and_sample_chunks(host, per_sample):
    """Fewer row tiles in the grid than the weight has (each block loops over its tiles), a batch of
    two sample chunks (20 > 16) and a last tile and block that stick out of the weight."""
    batch, n_out, n_in = 20, 43, 70
    g = torch.Generator().manual_seed(per_sample)
    w = torch.randn(n_out, n_in, generator=g, dtype=torch.float64)
    s_pre = (torch.rand(batch, n_in, generator=g) < 0.3).double()
    s_post = (torch.rand(batch, n_out, generator=g) < 0.3).double()
    tr_pre = torch.rand(batch, n_in, generator=g, dtype=torch.float64)
    tr_post = torch.rand(batch, n_out, generator=g, dtype=torch.float64)
    coeff = torch.randn(batch, generator=g, dtype=torch.float64)
    x_pre, x_post = torch.empty_like(s_pre), torch.empty_like(s_post)
    out = torch.ones(batch, n_out, n_in, dtype=torch.float64) if per_sample else torch.ones_like(w)
    tau_pre, tau_post = 2.0, 5.0
    args = (
        s_pre, s_post, tr_pre, tr_post, x_pre, x_post, w, w, coeff, out, batch, n_out, n_in, 1,
        tau_pre, tau_post, math.exp(-1 / tau_pre), math.exp(-1 / tau_post), 0.7, 0.3, -2.0, per_sample, 1,
    )  # fmt: skip
    host.launch("plasticity.cu", "snn_stdp_linear", torch.float64, None, (3, 2), (32,), args)
    ep, eq, e = ref_stdp(w, s_pre, s_post, tr_pre, tr_post, tau_pre, tau_post, True, 0.7 * w, 0.3 * w,
                         bool(per_sample), -2.0 * coeff)  # fmt: skip
    torch.testing.assert_close(x_pre, ep, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(x_post, eq, rtol=1e-12, atol=1e-12)
    expect = e if per_sample else 1 + e  # per_sample writes e; otherwise accumulates into out
    torch.testing.assert_close(out, expect, rtol=1e-12, atol=1e-12)

