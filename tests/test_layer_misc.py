"""snnlab.layer attention, voting, print-shape and weight-standardized layers."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from snnlab import layer

TOL = {"atol": 1e-5, "rtol": 1e-5}


# ----------------------------------------------------------------------------- VotingLayer / PrintShape
@pytest.mark.parametrize("step_mode", ["s", "m"])
def test_voting_layer_averages_groups(step_mode):
    v, C = 3, 4
    shape = (2, 5, C * v) if step_mode == "m" else (5, C * v)
    x = torch.randn(shape, requires_grad=True)
    y = layer.VotingLayer(v, step_mode=step_mode)(x)
    flat = x.reshape(-1, C * v)
    rows = [torch.stack([flat[r, c * v : (c + 1) * v].sum() / v for c in range(C)]) for r in range(len(flat))]
    expected = torch.stack(rows).reshape(*shape[:-1], C)
    torch.testing.assert_close(y, expected, **TOL)
    y.sum().backward()
    torch.testing.assert_close(x.grad, torch.full(shape, 1.0 / v))


def test_voting_layer_errors():
    with pytest.raises(ValueError, match="voting_size"):
        layer.VotingLayer(0)
    with pytest.raises(ValueError, match="multiple of 3"):
        layer.VotingLayer(3)(torch.zeros(2, 10))
    with pytest.raises(ValueError, match="x_seq"):
        layer.VotingLayer(2, step_mode="m")(torch.zeros(4))


def test_print_shape_module(capsys):
    x = torch.zeros(2, 3)
    assert layer.PrintShapeModule("here")(x) is x
    assert "here torch.Size([2, 3])" in capsys.readouterr().out
    with pytest.raises(TypeError, match="ext_str"):
        layer.PrintShapeModule(3)


# ----------------------------------------------------------------------------- TemporalWiseAttention
@pytest.mark.parametrize("dimension", [2, 4])
def test_temporal_wise_attention_equation(dimension):
    torch.manual_seed(0)
    T, N, r = 4, 3, 2
    shape = (T, N, 2, 3, 3) if dimension == 4 else (T, N, 5)
    twa = layer.TemporalWiseAttention(T, reduction=r, dimension=dimension)
    assert twa.step_mode == "m"
    x = torch.randn(shape)
    y = twa(x)
    W1, W2 = twa.sharedMLP[0].weight, twa.sharedMLP[2].weight  # [T/r, T], [T, T/r]
    expected = torch.empty_like(x)
    for n in range(N):
        avg = torch.stack([x[t, n].mean() for t in range(T)])
        mx = torch.stack([x[t, n].max() for t in range(T)])
        score = torch.sigmoid(W2 @ torch.relu(W1 @ avg) + W2 @ torch.relu(W1 @ mx))
        for t in range(T):
            expected[t, n] = score[t] * x[t, n]
    torch.testing.assert_close(y, expected, **TOL)
    params = list(twa.parameters())
    g = torch.autograd.grad((y**2).sum(), params)
    g_ref = torch.autograd.grad((expected**2).sum(), params)
    for a, b in zip(g, g_ref):
        torch.testing.assert_close(a, b, **TOL)
    assert set(twa.state_dict()) == {"sharedMLP.0.weight", "sharedMLP.2.weight"}


def test_temporal_wise_attention_errors():
    with pytest.raises(ValueError, match="T must be >= reduction"):
        layer.TemporalWiseAttention(4, reduction=8)
    with pytest.raises(ValueError, match="dimension"):
        layer.TemporalWiseAttention(4, reduction=2, dimension=3)
    twa = layer.TemporalWiseAttention(4, reduction=2)
    with pytest.raises(ValueError, match="x_seq"):
        twa(torch.zeros(4, 2, 5))
    with pytest.raises(ValueError, match="T=4"):
        twa(torch.zeros(3, 2, 1, 2, 2))
    with pytest.raises(ValueError, match="step_mode"):
        twa.step_mode = "s"


# ----------------------------------------------------------------------------- MultiDimensionalAttention
def mlp(weights, v):
    w1 = weights[0].weight.flatten(1)
    w2 = weights[2].weight.flatten(1)
    return w2 @ torch.relu(w1 @ v)


def test_multi_dimensional_attention_equation():
    torch.manual_seed(0)
    T, N, C, H, W = 4, 2, 4, 3, 3
    ma = layer.MultiDimensionalAttention(T, C, reduction_t=2, reduction_c=2, kernel_size=3)
    x = torch.randn(T, N, C, H, W)
    y = ma(x)
    expected = torch.empty_like(x)
    for n in range(N):
        xn = x[:, n]  # [T, C, H, W]
        a = torch.stack([xn[t].mean() for t in range(T)])
        m = torch.stack([xn[t].max() for t in range(T)])
        st = torch.sigmoid(mlp(ma.ta.sharedMLP, a) + mlp(ma.ta.sharedMLP, m))
        u = st.view(T, 1, 1, 1) * xn
        a = torch.stack([u[:, c].mean() for c in range(C)])
        m = torch.stack([u[:, c].max() for c in range(C)])
        sc = torch.sigmoid(mlp(ma.ca.sharedMLP, a) + mlp(ma.ca.sharedMLP, m))
        v = sc.view(1, C, 1, 1) * u
        maps = v.reshape(T * C, H, W)
        pooled = torch.stack((maps.mean(0), maps.max(0).values)).unsqueeze(0)
        ss = torch.sigmoid(F.conv2d(pooled, ma.sa.conv.weight, padding=1))[0]  # [1, H, W]
        expected[:, n] = torch.relu(ss * v)
    torch.testing.assert_close(y, expected, **TOL)
    params = list(ma.parameters())
    g = torch.autograd.grad((y**2).sum(), params)
    g_ref = torch.autograd.grad((expected**2).sum(), params)
    for a_, b_ in zip(g, g_ref):
        torch.testing.assert_close(a_, b_, **TOL)


def test_multi_dimensional_attention_errors():
    with pytest.raises(ValueError, match="T must be >= reduction_t"):
        layer.MultiDimensionalAttention(2, 8, reduction_t=4, reduction_c=2)
    with pytest.raises(ValueError, match="C must be >= reduction_c"):
        layer.MultiDimensionalAttention(4, 2, reduction_t=2, reduction_c=4)
    with pytest.raises(ValueError, match="kernel_size"):
        layer.MultiDimensionalAttention(4, 4, 2, 2, kernel_size=5)
    ma = layer.MultiDimensionalAttention(4, 4, 2, 2)
    with pytest.raises(ValueError, match="x_seq"):
        ma(torch.zeros(4, 2, 4, 3))
    with pytest.raises(ValueError, match="C=4"):
        ma(torch.zeros(4, 2, 3, 3, 3))


# ----------------------------------------------------------------------------- weight standardization
def standardize(weight, gain, eps):
    out = torch.empty_like(weight)
    for o in range(weight.shape[0]):
        row = weight[o].flatten()
        n = row.numel()
        mean = row.sum() / n
        var = ((row - mean) ** 2).sum() / (n - 1)
        out[o] = (weight[o] - mean) / torch.sqrt(var * n + eps)
    return out if gain is None else out * gain


@pytest.mark.parametrize("gain", [True, False])
def test_ws_conv2d(gain):
    torch.manual_seed(0)
    conv = layer.WSConv2d(2, 3, 3, padding=1, step_mode="m", gain=gain, eps=1e-3)
    if gain:
        assert conv.gain.shape == (3, 1, 1, 1)
        with torch.no_grad():
            conv.gain.copy_(torch.rand(3, 1, 1, 1) + 0.5)
    else:
        assert conv.gain is None
    x = torch.randn(2, 2, 2, 4, 4)
    y = conv(x)
    w_hat = standardize(conv.weight, conv.gain, 1e-3)
    expected = torch.stack([F.conv2d(x[t], w_hat, conv.bias, padding=1) for t in range(2)])
    torch.testing.assert_close(y, expected, **TOL)
    params = list(conv.parameters())
    g = torch.autograd.grad(y.square().sum(), params)
    g_ref = torch.autograd.grad(expected.square().sum(), params)
    for a, b in zip(g, g_ref):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)
    conv.step_mode = "s"
    torch.testing.assert_close(conv(x[1]), expected[1], **TOL)


@pytest.mark.parametrize("gain", [True, False])
def test_ws_linear(gain):
    torch.manual_seed(0)
    lin = layer.WSLinear(5, 3, gain=gain)
    if gain:
        assert lin.gain.shape == (3, 1)
        with torch.no_grad():
            lin.gain.copy_(torch.rand(3, 1) + 0.5)
    x = torch.randn(4, 5)
    y = lin(x)
    w_hat = standardize(lin.weight, lin.gain, 1e-4)
    expected = torch.stack([w_hat @ x[n] + lin.bias for n in range(4)])
    torch.testing.assert_close(y, expected, **TOL)
    params = list(lin.parameters())
    g = torch.autograd.grad(y.square().sum(), params)
    g_ref = torch.autograd.grad(expected.square().sum(), params)
    for a, b in zip(g, g_ref):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)
    lin.step_mode = "m"
    torch.testing.assert_close(lin(x.unsqueeze(0)), expected.unsqueeze(0), **TOL)


def test_ws_errors():
    with pytest.raises(TypeError, match="gain"):
        layer.WSLinear(2, 2, gain="yes")
    with pytest.raises(ValueError, match="eps"):
        layer.WSConv2d(2, 2, 3, eps=-1.0)
    with pytest.raises(ValueError, match="x_seq"):
        layer.WSConv2d(2, 2, 3, step_mode="m")(torch.zeros(2, 2, 4, 4))
