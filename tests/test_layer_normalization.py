"""snnlab.layer normalization: NeuNorm, tdBN, TEBN against explicit equations."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from snnlab import functional, layer

TOL = {"atol": 1e-5, "rtol": 1e-5}


def batch_norm(x, dims, eps=1e-5):
    """Training-mode BN without affine: statistics over ``dims``, biased variance."""
    mean = x.mean(dim=dims, keepdim=True)
    var = ((x - mean) ** 2).mean(dim=dims, keepdim=True)
    return (x - mean) / torch.sqrt(var + eps)


# ----------------------------------------------------------------------------- NeuNorm
def neunorm_reference(x_seq, w, k, F):
    k1 = (1 - k) / F**2
    X = torch.zeros_like(x_seq[0][:, :1])
    out, states = [], []
    for t in range(x_seq.shape[0]):
        X = k * X + k1 * x_seq[t].sum(dim=1, keepdim=True)
        out.append(x_seq[t] - w * X)
        states.append(X)
    return torch.stack(out), torch.stack(states)


@pytest.mark.parametrize("shared", [False, True])
def test_neunorm_recursion_both_modes_and_reset(shared):
    torch.manual_seed(0)
    T, N, F, H, W = 4, 2, 3, 2, 2
    x = (torch.rand(T, N, F, H, W) > 0.5).float()
    nn_s = layer.NeuNorm(F, H, W, k=0.8, shared_across_channels=shared)
    assert nn_s.w.shape == ((1 if shared else F), H, W)
    expected, states = neunorm_reference(x, nn_s.w.detach(), 0.8, F)
    y_s = torch.stack([nn_s(x[t]) for t in range(T)])
    torch.testing.assert_close(y_s, expected, **TOL)
    nn_s.reset()
    assert nn_s.x == 0.0
    torch.testing.assert_close(nn_s(x[0]), expected[0], **TOL)
    nn_m = layer.NeuNorm(F, H, W, k=0.8, shared_across_channels=shared, step_mode="m")
    nn_m.load_state_dict(nn_s.state_dict())
    y_m = nn_m(x)
    torch.testing.assert_close(y_m, expected, **TOL)
    y_m.sum().backward()
    # d/dw sum(x - w * X) = -sum_t sum_n X[t, n] per (h, w), once per channel using w
    x_total = states.sum(dim=(0, 1))  # [1, H, W]
    expected_grad = -F * x_total if shared else -x_total.expand(F, H, W)
    torch.testing.assert_close(nn_m.w.grad, expected_grad, **TOL)


def test_neunorm_bad_arguments_and_input():
    with pytest.raises(ValueError, match="k must satisfy"):
        layer.NeuNorm(2, 2, 2, k=1.5)
    with pytest.raises(ValueError, match="in_channels"):
        layer.NeuNorm(0, 2, 2)
    with pytest.raises(TypeError, match="height"):
        layer.NeuNorm(2, 2.5, 2)
    with pytest.raises(ValueError, match="in_spikes"):
        layer.NeuNorm(2, 2, 2)(torch.zeros(2, 2, 2))
    with pytest.raises(ValueError, match="in_spikes of shape"):
        layer.NeuNorm(2, 2, 2)(torch.zeros(1, 3, 2, 2))
    with pytest.raises(ValueError, match="x_seq"):
        layer.NeuNorm(2, 2, 2, step_mode="m")(torch.zeros(1, 2, 2, 2))


# ----------------------------------------------------------------------------- tdBN
@pytest.mark.parametrize(
    ("cls", "shape", "dims"),
    [
        (layer.ThresholdDependentBatchNorm1d, (3, 2, 4), (0, 1)),
        (layer.ThresholdDependentBatchNorm1d, (3, 2, 4, 5), (0, 1, 3)),
        (layer.ThresholdDependentBatchNorm2d, (3, 2, 4, 2, 2), (0, 1, 3, 4)),
        (layer.ThresholdDependentBatchNorm3d, (2, 2, 4, 2, 2, 2), (0, 1, 3, 4, 5)),
    ],
)
def test_tdbn_equation(cls, shape, dims):
    torch.manual_seed(0)
    alpha, v_th = 0.7, 1.5
    bn = cls(alpha, v_th, 4)
    assert bn.step_mode == "m"
    torch.testing.assert_close(bn.weight, torch.full((4,), alpha * v_th))
    with torch.no_grad():
        bn.bias.copy_(torch.randn(4))
    x = torch.randn(shape, requires_grad=True) * 3 + 1
    y = bn(x)
    view = [1] * len(shape)
    view[2] = 4
    expected = alpha * v_th * batch_norm(x, dims) + bn.bias.view(view)
    torch.testing.assert_close(y, expected, **TOL)
    y.square().sum().backward()
    assert bn.weight.grad is not None and torch.isfinite(bn.weight.grad).all()
    assert list(bn.state_dict()) == list(nn.BatchNorm1d(4).state_dict())


def test_tdbn_bad_arguments():
    with pytest.raises(ValueError, match="affine"):
        layer.ThresholdDependentBatchNorm2d(1.0, 1.0, 4, affine=False)
    with pytest.raises(ValueError, match="step_mode"):
        layer.ThresholdDependentBatchNorm2d(1.0, 1.0, 4, step_mode="s")
    with pytest.raises(TypeError, match="alpha"):
        layer.ThresholdDependentBatchNorm2d("a", 1.0, 4)
    with pytest.raises(ValueError, match="x_seq"):
        layer.ThresholdDependentBatchNorm2d(1.0, 1.0, 4)(torch.zeros(2, 4, 2, 2))


# ----------------------------------------------------------------------------- TEBN
@pytest.mark.parametrize(
    ("cls", "step_shape", "dims"),
    [
        (layer.TemporalEffectiveBatchNorm1d, (4, 3), (0,)),
        (layer.TemporalEffectiveBatchNorm1d, (4, 3, 5), (0, 2)),
        (layer.TemporalEffectiveBatchNorm2d, (4, 3, 2, 2), (0, 2, 3)),
        (layer.TemporalEffectiveBatchNorm3d, (2, 3, 2, 2, 2), (0, 2, 3, 4)),
    ],
)
def test_tebn_multi_step_equation(cls, step_shape, dims):
    torch.manual_seed(0)
    T = 3
    tebn = cls(T, 3, step_mode="m")
    with torch.no_grad():
        tebn.scale.copy_(torch.tensor([0.5, 2.0, -1.0]))
    x = torch.randn(T, *step_shape, requires_grad=True)
    y = tebn(x)
    seq_dims = (0, *(d + 1 for d in dims))
    normalized = batch_norm(x, seq_dims)
    expected = torch.stack([tebn.scale[t] * normalized[t] for t in range(T)])
    torch.testing.assert_close(y, expected, **TOL)
    y.sum().backward()
    expected_scale_grad = torch.stack([normalized[t].sum() for t in range(T)]).detach()
    torch.testing.assert_close(tebn.scale.grad, expected_scale_grad, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize(
    ("cls", "step_shape", "dims"),
    [
        (layer.TemporalEffectiveBatchNorm1d, (4, 3), (0,)),
        (layer.TemporalEffectiveBatchNorm1d, (4, 3, 5), (0, 2)),
        (layer.TemporalEffectiveBatchNorm2d, (4, 3, 2, 2), (0, 2, 3)),
    ],
)
def test_tebn_single_step_advances_and_wraps(cls, step_shape, dims):
    torch.manual_seed(0)
    T = 3
    tebn = cls(T, 3)
    scale = torch.tensor([0.5, 2.0, -1.0])
    with torch.no_grad():
        tebn.scale.copy_(scale)
    xs = [torch.randn(step_shape) for _ in range(2 * T + 1)]
    for i, x in enumerate(xs):
        assert tebn.t == i % T
        torch.testing.assert_close(tebn(x), scale[i % T] * batch_norm(x, dims), **TOL)
    tebn.reset()
    assert tebn.t == 0
    torch.testing.assert_close(tebn(xs[1]), scale[0] * batch_norm(xs[1], dims), **TOL)


def test_tebn_eval_mode_single_equals_multi():
    torch.manual_seed(0)
    T = 3
    tebn = layer.TemporalEffectiveBatchNorm2d(T, 2)
    tebn.train()
    tebn.step_mode = "m"
    tebn(torch.randn(T, 4, 2, 3, 3) + 2)  # update running statistics
    tebn.eval()
    x = torch.randn(T, 2, 2, 3, 3)
    y_m = tebn(x)
    tebn.step_mode = "s"
    tebn.reset()
    y_s = torch.stack([tebn(x[t]) for t in range(T)])
    torch.testing.assert_close(y_m, y_s, **TOL)
    rm = tebn.bn.running_mean.view(1, -1, 1, 1)
    rv = tebn.bn.running_var.view(1, -1, 1, 1)
    expected = torch.stack([tebn.scale[t] * (x[t] - rm) / torch.sqrt(rv + 1e-5) for t in range(T)])
    torch.testing.assert_close(y_m, expected.detach(), **TOL)


def test_tebn_state_dict_and_set_step_mode():
    tebn = layer.TemporalEffectiveBatchNorm2d(4, 3)
    assert set(tebn.state_dict()) == {
        "scale",
        "bn.weight",
        "bn.bias",
        "bn.running_mean",
        "bn.running_var",
        "bn.num_batches_tracked",
    }
    functional.set_step_mode(tebn, "m")
    assert tebn(torch.randn(4, 2, 3, 2, 2)).shape == (4, 2, 3, 2, 2)


def test_tebn_bad_arguments_and_input():
    with pytest.raises(ValueError, match="T must be"):
        layer.TemporalEffectiveBatchNorm2d(0, 3)
    with pytest.raises(ValueError, match="T=4"):
        layer.TemporalEffectiveBatchNorm2d(4, 3, step_mode="m")(torch.zeros(3, 2, 3, 2, 2))
    with pytest.raises(ValueError, match="x_seq"):
        layer.TemporalEffectiveBatchNorm2d(4, 3, step_mode="m")(torch.zeros(4, 3, 2, 2))
    with pytest.raises(ValueError, match="expects x with shape"):
        layer.TemporalEffectiveBatchNorm1d(4, 3)(torch.zeros(4, 2, 3, 2))
    with pytest.raises(ValueError, match="step_mode"):
        layer.TemporalEffectiveBatchNorm1d(4, 3, step_mode="z")
