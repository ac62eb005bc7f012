"""The ``'cpu'`` entries of the ``snnlab.kernels`` dispatch table against the torch reference kernels."""

from __future__ import annotations

import pytest
import torch

import snnlab.kernels as K
from snnlab.kernels import dispatch

pytest.importorskip("numba")

from snnlab.kernels.cpu import dispatch_kernels


@pytest.fixture(scope="module")
def fused():
    assert dispatch_kernels.register()  # already done by ``import snnlab.kernels``; kept registered
    return dispatch_kernels.kernels()


def test_registered_on_import():
    """``import snnlab.kernels`` routes every reference-003 kernel of CPU tensors to the fused loops."""
    assert all(dispatch.get_kernel(name, "cpu") is fn for name, fn in dispatch_kernels.kernels().items())
    names = {name for name in dispatch.kernel_names() if name.startswith(("LIF_", "IF_"))}
    assert set(dispatch_kernels.kernels()) == names


def seq(shape, dtype, seed, scale=3.0, shift=0.3):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(shape, generator=g, dtype=torch.float64) * scale - shift * scale).to(dtype)


def args_for(name, dtype, single, seed):
    """Positional arguments of kernel ``name`` (validated forms), with inputs that spike sometimes."""
    shape = (4, 3) if single else (6, 4, 3)
    x = seq(shape, dtype, seed, scale=5.0)
    v = seq(shape[-2:], dtype, seed + 1, scale=0.5, shift=0.4)
    lif = name.startswith("LIF")
    tail = (0.4, False) if lif else ()
    if "backward" in name or "bptt" in name:
        grads = (x, seq(shape[-2:], dtype, seed + 2), seq(shape, dtype, seed + 3, 1.0, 0.0),
                 seq(shape, dtype, seed + 4, 2.0, 0.5))  # fmt: skip
        return (*grads, *((0.3, True) if lif else ()))
    reset = () if "soft" in name else (-0.2,)
    surrogate_args = (2.5, True, 1) if "with_grad" in name else ()
    return (x, v, 0.8, *reset, *surrogate_args, *tail)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("name", sorted(dispatch_kernels.kernels()))
def test_fused_kernel_equals_reference(fused, name, dtype):
    single = "forward" in name or name.endswith("_backward")
    args = args_for(name, dtype, single, seed=len(name))
    assert dispatch.get_kernel(name, "cpu") is fused[name]
    got = fused[name](*args)
    want = dispatch.reference_kernel(name)(*args)
    assert len(got) == len(want)
    tol = dict(rtol=1e-6, atol=1e-6) if dtype == torch.float32 else dict(rtol=1e-12, atol=1e-12)
    for i, (a, b) in enumerate(zip(got, want)):
        assert a.shape == b.shape and a.dtype == b.dtype
        if i == 0 and ("forward" in name or "fptt" in name):
            assert torch.equal(a, b)  # spikes bit for bit
            assert 0 < b.sum() < b.numel()
        else:
            torch.testing.assert_close(a, b, **tol)


def test_lif_hard_reset_fptt_plain_loop(fused):
    x = seq((5, 7), torch.float32, 11)
    v = torch.zeros(7)
    s, v_last = K.LIF_hard_reset_fptt(x, v, 1.0, 0.0, 0.5, False)
    vv, spikes = v.clone(), []
    for t in range(5):
        h = vv + (x[t] - (vv - 0.0)) * 0.5
        st = (h - 1.0 >= 0).float()
        vv = st * 0.0 + (1 - st) * h
        spikes.append(st)
    assert torch.equal(s, torch.stack(spikes))
    torch.testing.assert_close(v_last, vv, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("v_reset", [0.0, None])
@pytest.mark.parametrize("fn", ["LIFMultiStep", "IFMultiStep", "LIFStep", "IFStep"])
def test_autograd_functions_through_fused_kernels(fused, fn, v_reset):
    single = fn.endswith("Step") and "Multi" not in fn
    shape = (4, 5) if single else (6, 4, 5)
    x0 = seq(shape, torch.float64, 21)
    v0 = seq(shape[-2:], torch.float64, 22, 0.5, 0.4)
    extra = (0.5, False) if fn.startswith("LIF") else ()
    results = []
    try:
        for use_fused in (True, False):
            if not use_fused:
                dispatch_kernels.unregister()
            x = x0.clone().requires_grad_(True)
            v = v0.clone().requires_grad_(True)
            s, vl = getattr(K, fn).apply(x, v, 1.0, v_reset, 2.0, False, 0, *extra)
            grads = torch.autograd.grad((s * x0).sum() + (vl * 1.5).sum(), (x, v))
            results.append((s, vl, *grads))
    finally:
        dispatch_kernels.register()
    assert torch.equal(results[0][0], results[1][0])
    for a, b in zip(results[0][1:], results[1][1:]):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def test_half_precision_goes_to_reference(fused):
    x = seq((3, 4), torch.bfloat16, 31)
    v = torch.zeros(4, dtype=torch.bfloat16)
    got = fused["IF_hard_reset_fptt"](x, v, 1.0, 0.0)
    want = dispatch.reference_kernel("IF_hard_reset_fptt")(x, v, 1.0, 0.0)
    assert all(torch.equal(a, b) for a, b in zip(got, want))


def test_register_without_numba_is_a_no_op(monkeypatch):
    import snnlab.kernels.cpu as cpu

    monkeypatch.setitem(cpu._state, "available", False)
    assert dispatch_kernels.register() is False
