"""Surrogate spike functions against formulas written out in this file.

For every class: the forward pass is the Heaviside step (``x >= 0`` spikes,
``x == 0`` included), the backward pass is ``grad_output * g'(x)``, the
``spiking=False`` output is the primitive ``g(x)``, and autograd through the
primitive gives back ``g'(x)``.
"""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from snnlab import surrogate

# ----------------------------------------------------------------------------- reference formulas


def _sigmoid(z):
    return 1.0 / (1.0 + torch.exp(-z))


def g_sigmoid(x, a):
    return _sigmoid(a * x)


def dg_sigmoid(x, a):
    s = _sigmoid(a * x)
    return a * s * (1.0 - s)


def g_atan(x, a):
    return torch.atan(math.pi / 2.0 * a * x) / math.pi + 0.5


def dg_atan(x, a):
    return (a / 2.0) / (1.0 + (math.pi / 2.0 * a * x) ** 2)


def g_pq(x, a):
    inner = -0.5 * a**2 * x.abs() * x + a * x + 0.5
    return torch.where(x > 1.0 / a, torch.ones_like(x), torch.where(x < -1.0 / a, torch.zeros_like(x), inner))


def dg_pq(x, a):
    return torch.where(x.abs() <= 1.0 / a, a - a**2 * x.abs(), torch.zeros_like(x))


def g_pexp(x, a):
    return torch.where(x >= 0, 1.0 - 0.5 * torch.exp(-a * x), 0.5 * torch.exp(a * x))


def dg_pexp(x, a):
    return 0.5 * a * torch.exp(-a * x.abs())


def g_softsign(x, a):
    return 0.5 * (a * x / (1.0 + (a * x).abs()) + 1.0)


def dg_softsign(x, a):
    return a / (2.0 * (1.0 + (a * x).abs()) ** 2)


def g_superspike(x, a):
    return a * x / (1.0 + x.abs()) + 0.5


def dg_superspike(x, a):
    return a / (1.0 + x.abs()) ** 2


def g_erf(x, a):
    return 0.5 * (1.0 + torch.erf(a * x))


def dg_erf(x, a):
    return a / math.sqrt(math.pi) * torch.exp(-((a * x) ** 2))


def g_rect(x, a):
    return torch.minimum(torch.maximum(a * x + 0.5, torch.zeros_like(x)), torch.ones_like(x))


def dg_rect(x, a):
    return torch.where(x.abs() < 0.5 / a, torch.full_like(x, a), torch.zeros_like(x))


# name: (class, default alpha, g, g', kink points as functions of alpha)
CASES = {
    "Sigmoid": (surrogate.Sigmoid, 4.0, g_sigmoid, dg_sigmoid, lambda a: []),
    "ATan": (surrogate.ATan, 2.0, g_atan, dg_atan, lambda a: []),
    "PiecewiseQuadratic": (surrogate.PiecewiseQuadratic, 1.0, g_pq, dg_pq, lambda a: [-1 / a, 0.0, 1 / a]),
    "PiecewiseExp": (surrogate.PiecewiseExp, 1.0, g_pexp, dg_pexp, lambda a: [0.0]),
    "SoftSign": (surrogate.SoftSign, 2.0, g_softsign, dg_softsign, lambda a: [0.0]),
    "SuperSpike": (surrogate.SuperSpike, 1.0, g_superspike, dg_superspike, lambda a: [0.0]),
    "Erf": (surrogate.Erf, 2.0, g_erf, dg_erf, lambda a: []),
    "Rect": (surrogate.Rect, 1.0, g_rect, dg_rect, lambda a: [-0.5 / a, 0.5 / a]),
}
NAMES = sorted(CASES)
ALPHAS = [None, 0.5, 3.0]


def _points(dtype=torch.float64):
    gen = torch.Generator().manual_seed(0)
    x = (torch.rand(7, 9, generator=gen, dtype=dtype) - 0.5) * 6.0
    x[0, :5] = torch.tensor([0.0, -0.0, 1e-30, -1e-30, 0.2], dtype=dtype)
    return x


def _make(name, alpha, spiking=True):
    cls, default, *_ = CASES[name]
    module = cls(spiking=spiking) if alpha is None else cls(alpha=alpha, spiking=spiking)
    return module, default if alpha is None else alpha


# ----------------------------------------------------------------------------- tests


@pytest.mark.parametrize("name", NAMES)
def test_default_alpha_and_spiking(name):
    cls, default, *_ = CASES[name]
    module = cls()
    assert module.alpha == default
    assert module.spiking is True


def test_registry_has_every_class():
    for name in NAMES:
        assert surrogate.SURROGATES[name] is CASES[name][0]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("name", NAMES)
def test_forward_is_heaviside(name, dtype):
    module, _ = _make(name, None)
    x = _points(dtype)
    y = module(x)
    expected = torch.where(x >= 0, torch.ones_like(x), torch.zeros_like(x))
    assert y.dtype == dtype and y.shape == x.shape
    assert torch.equal(y, expected)
    # x exactly 0 (and -0.0) spikes; the tiny negative number does not
    assert y[0, 0] == 1 and y[0, 1] == 1 and y[0, 2] == 1 and y[0, 3] == 0


@pytest.mark.parametrize("alpha", ALPHAS)
@pytest.mark.parametrize("name", NAMES)
def test_spiking_gradient_is_surrogate_derivative(name, alpha):
    module, a = _make(name, alpha)
    dg = CASES[name][3]
    x = _points().requires_grad_(True)
    grad_out = torch.rand_like(x) + 0.5
    module(x).backward(grad_out)
    expected = grad_out * dg(x.detach(), a)
    torch.testing.assert_close(x.grad, expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("alpha", ALPHAS)
@pytest.mark.parametrize("name", NAMES)
def test_static_helpers_match_formulas(name, alpha):
    cls, _, g, dg, _ = CASES[name]
    _, a = _make(name, alpha)
    x = _points()
    torch.testing.assert_close(cls.surrogate_grad(x, a), dg(x, a), rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(cls.primitive_function(x, a), g(x, a), rtol=1e-10, atol=1e-12)
    go = torch.full_like(x, 2.0)
    torch.testing.assert_close(cls.backward(go, x, a), 2.0 * dg(x, a), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("alpha", ALPHAS)
@pytest.mark.parametrize("name", NAMES)
def test_non_spiking_output_is_primitive(name, alpha):
    module, a = _make(name, alpha, spiking=False)
    g = CASES[name][2]
    x = _points()
    torch.testing.assert_close(module(x), g(x, a), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_set_spiking_mode_switches(name):
    module, a = _make(name, None)
    x = _points()
    module.set_spiking_mode(False)
    torch.testing.assert_close(module(x), CASES[name][2](x, a), rtol=1e-10, atol=1e-12)
    module.set_spiking_mode(True)
    assert torch.equal(module(x), (x >= 0).to(x))


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=30, deadline=None)
@given(
    xs=st.lists(st.floats(-4.0, 4.0, allow_nan=False), min_size=1, max_size=8),
    alpha=st.floats(0.3, 5.0),
)
def test_autograd_of_primitive_equals_surrogate_grad(name, xs, alpha):
    cls, _, _, dg, kinks = CASES[name]
    # the primitive is differentiable away from its kinks
    xs = [v for v in xs if all(abs(v - k) > 1e-6 for k in kinks(alpha))]
    if not xs:
        return
    x = torch.tensor(xs, dtype=torch.float64, requires_grad=True)
    module = cls(alpha=alpha, spiking=False)
    (grad,) = torch.autograd.grad(module(x).sum(), x)
    torch.testing.assert_close(grad, dg(x.detach(), alpha), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_gradient_flows_through_a_graph(name):
    # gradient of sum(w * spike(w * x - 1)) w.r.t. w by the chain rule, written out
    module, a = _make(name, None)
    dg = CASES[name][3]
    x = _points()
    w = torch.tensor(0.7, dtype=torch.float64, requires_grad=True)
    u = w * x - 1.0
    y = module(u)
    (w * y).sum().backward()
    u0 = 0.7 * x - 1.0
    expected = ((u0 >= 0).to(x) + 0.7 * dg(u0, a) * x).sum()
    torch.testing.assert_close(w.grad, expected, rtol=1e-10, atol=1e-12)


def test_surrogate_spike_helper_uses_given_derivative():
    x = _points().requires_grad_(True)
    y = surrogate.surrogate_spike(x, 1.5, lambda z, a: a * torch.exp(-a * z.abs()))
    assert torch.equal(y, (x >= 0).to(x))
    y.sum().backward()
    torch.testing.assert_close(x.grad, 1.5 * torch.exp(-1.5 * x.detach().abs()), rtol=1e-12, atol=0)


def test_heaviside_function():
    x = torch.tensor([-1.0, -0.0, 0.0, 2.0])
    assert torch.equal(surrogate.heaviside(x), torch.tensor([0.0, 1.0, 1.0, 1.0]))


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf"), -float("inf")])
def test_bad_alpha_value(name, bad):
    with pytest.raises(ValueError, match="alpha"):
        CASES[name][0](alpha=bad)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("bad", ["2", True, [1.0], object()])
def test_bad_alpha_type(name, bad):
    with pytest.raises(TypeError, match="alpha"):
        CASES[name][0](alpha=bad)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("bad", [1, "yes", None])
def test_bad_spiking_type(name, bad):
    with pytest.raises(TypeError, match="spiking"):
        CASES[name][0](spiking=bad)
