"""SPAIC's STCA and STBP surrogate gradients, checked against their formulas written here."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from snnlab.surrogate import STBPGaussian, STCARect


def stca_grad_ref(x: torch.Tensor, alpha: float) -> torch.Tensor:
    out = torch.zeros_like(x)
    for i, v in enumerate(x.tolist()):
        out[i] = 1.0 if abs(v) < alpha else 0.0
    return out


def stbp_grad_ref(x: torch.Tensor, alpha: float) -> torch.Tensor:
    out = torch.zeros_like(x)
    for i, v in enumerate(x.tolist()):
        out[i] = math.exp(-(v**2) / (2 * alpha)) / (2 * math.pi * alpha)
    return out


def test_defaults():
    assert STCARect().alpha == 0.5
    assert STBPGaussian().alpha == 0.5


@pytest.mark.parametrize(
    ("cls", "ref"), [(STCARect, stca_grad_ref), (STBPGaussian, stbp_grad_ref)], ids=["stca", "stbp"]
)
@settings(max_examples=30, deadline=None)
@given(alpha=st.floats(0.1, 3.0), seed=st.integers(0, 2**16))
def test_spike_forward_and_backward(cls, ref, alpha, seed):
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand(16, generator=g, dtype=torch.float64) - 0.5) * 6
    x = x.requires_grad_()
    sf = cls(alpha=alpha)
    y = sf(x)
    assert torch.equal(y.detach(), (x.detach() >= 0).double())
    w = torch.rand(16, generator=g, dtype=torch.float64)
    (y * w).sum().backward()
    torch.testing.assert_close(x.grad, w * ref(x.detach(), alpha), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(cls.surrogate_grad(x.detach(), alpha), ref(x.detach(), alpha))


@pytest.mark.parametrize("cls", [STCARect, STBPGaussian])
def test_primitive_derivative_is_the_surrogate(cls):
    alpha = 0.7
    # avoid the kinks of the rectangle at +-alpha
    x = torch.linspace(-3, 3, 61, dtype=torch.float64)
    x = x[(x.abs() - alpha).abs() > 1e-3].requires_grad_()
    cls.primitive_function(x, alpha).sum().backward()
    torch.testing.assert_close(x.grad, cls.surrogate_grad(x.detach(), alpha), rtol=1e-9, atol=1e-9)
    sf = cls(alpha=alpha, spiking=False)
    torch.testing.assert_close(sf(x.detach()), cls.primitive_function(x.detach(), alpha))


def test_primitive_values():
    x = torch.tensor([-2.0, -0.5, 0.0, 0.25, 2.0], dtype=torch.float64)
    a = 0.5
    torch.testing.assert_close(STCARect.primitive_function(x, a), torch.clamp(x + a, 0, 2 * a))
    # integral of the Gaussian bump from -inf: Phi(x / sqrt(a)) / sqrt(2 pi a)
    expect = torch.tensor([0.5 * math.erfc(-v / math.sqrt(2 * a)) / math.sqrt(2 * math.pi * a) for v in x])
    torch.testing.assert_close(STBPGaussian.primitive_function(x, a), expect.double())


@pytest.mark.parametrize("cls", [STCARect, STBPGaussian])
@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf")])
def test_bad_alpha(cls, bad):
    with pytest.raises(ValueError, match="alpha"):
        cls(alpha=bad)


@pytest.mark.parametrize("cls", [STCARect, STBPGaussian])
def test_alpha_type(cls):
    with pytest.raises(TypeError, match="alpha"):
        cls(alpha="0.5")
