"""snnlab.layer online learning (OTTT): values from spikes, gradients through traces."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from snnlab import layer, surrogate
from snnlab.neuron import OTTTLIFNode

TOL = {"atol": 1e-5, "rtol": 1e-5}


def test_replace_for_grad_value_and_gradients():
    x = torch.randn(3, 4, requires_grad=True)
    x_r = torch.randn(3, 4, requires_grad=True)
    y = layer.ReplaceforGrad.apply(x, x_r)
    assert torch.equal(y, x_r.detach())
    w = torch.randn(3, 4)
    (y * w).sum().backward()
    assert torch.equal(x.grad, w) and torch.equal(x_r.grad, w)
    with pytest.raises(ValueError, match="same shape"):
        layer.ReplaceforGrad.apply(torch.zeros(2), torch.zeros(3))


def test_grad_with_trace_linear():
    torch.manual_seed(0)
    lin = nn.Linear(4, 3)
    spike = (torch.rand(5, 4) > 0.5).float().requires_grad_(True)
    trace = torch.rand(5, 4).requires_grad_(True)
    y = layer.GradwithTrace(lin)([spike, trace])
    torch.testing.assert_close(y, spike.detach() @ lin.weight.T + lin.bias, **TOL)
    g = torch.randn(5, 3)
    (y * g).sum().backward()
    torch.testing.assert_close(lin.weight.grad, g.T @ trace.detach(), **TOL)  # dW = g^T trace
    torch.testing.assert_close(lin.bias.grad, g.sum(0), **TOL)
    torch.testing.assert_close(spike.grad, g @ lin.weight.detach(), **TOL)
    torch.testing.assert_close(trace.grad, g @ lin.weight.detach(), **TOL)


def test_spike_trace_op_applies_module_to_both():
    pool = nn.AvgPool1d(2)
    spike = (torch.rand(2, 3, 4) > 0.5).float().requires_grad_(True)
    trace = torch.rand(2, 3, 4).requires_grad_(True)
    s_out, t_out = layer.SpikeTraceOp(pool)([spike, trace])
    expected_s = (spike[..., 0::2] + spike[..., 1::2]) / 2
    expected_t = (trace[..., 0::2] + trace[..., 1::2]) / 2
    torch.testing.assert_close(s_out, expected_s, **TOL)
    torch.testing.assert_close(t_out, expected_t.detach(), **TOL)
    assert s_out.requires_grad and not t_out.requires_grad


def test_wrappers_reject_bad_pairs():
    with pytest.raises(TypeError, match="spike, trace"):
        layer.GradwithTrace(nn.Linear(2, 2))(torch.zeros(2, 2))
    with pytest.raises(ValueError, match="same shape"):
        layer.SpikeTraceOp(nn.Identity())([torch.zeros(2), torch.zeros(3)])
    with pytest.raises(TypeError, match="module"):
        layer.GradwithTrace(3)


def test_ottt_sequential_wrapping_rule():
    assert isinstance(layer.OTTTSequential.wrap(nn.Linear(2, 2)), layer.GradwithTrace)
    assert isinstance(layer.OTTTSequential.wrap(layer.Conv2d(1, 1, 3)), layer.GradwithTrace)
    assert isinstance(layer.OTTTSequential.wrap(nn.AvgPool2d(2)), layer.SpikeTraceOp)
    assert isinstance(layer.OTTTSequential.wrap(layer.Dropout(0.5)), layer.SpikeTraceOp)
    seq = layer.OTTTSequential(nn.Linear(3, 2), nn.ReLU())
    x = torch.randn(4, 3)
    torch.testing.assert_close(seq(x), torch.relu(seq[0](x)))  # tensors: plain Sequential
    s, tr = torch.ones(4, 3), torch.full((4, 3), 0.5)
    out = layer.OTTTSequential(nn.Identity(), nn.Linear(3, 2))([s, tr])
    assert isinstance(out, torch.Tensor)


def sg(x, alpha):
    """Derivative of sigmoid(alpha * x): the Sigmoid surrogate, written out."""
    sig = 1.0 / (1.0 + torch.exp(-alpha * x))
    return alpha * sig * (1.0 - sig)


def test_two_layer_ottt_network_gradients_by_hand():
    torch.manual_seed(3)
    T, N, n_in, n_hidden, n_out, v = 6, 4, 5, 6, 2, 2
    tau, v_th, alpha = 2.0, 1.0, 4.0
    fc1, fc2 = nn.Linear(n_in, n_hidden), nn.Linear(n_hidden // v, n_out)
    net = layer.OTTTSequential(
        fc1,
        OTTTLIFNode(tau=tau, v_threshold=v_th, surrogate_function=surrogate.Sigmoid(alpha)),
        layer.VotingLayer(v),  # parameter-free: goes through SpikeTraceOp
        fc2,
    )
    x = torch.rand(T, N, n_in) * 2.0
    target = torch.rand(T, N, n_out)
    # online training: one backward per step, gradients accumulate
    outputs = []
    for t in range(T):
        y = net(x[t])
        outputs.append(y.detach())
        (0.5 * ((y - target[t]) ** 2).sum()).backward()

    # by hand: LIF (soft reset, no input decay, v detached in time) and its trace
    W1, b1, W2, b2 = (p.detach() for p in (fc1.weight, fc1.bias, fc2.weight, fc2.bias))
    pool = lambda z: z.reshape(N, n_hidden // v, v).mean(-1)  # noqa: E731
    unpool_grad = lambda g: g.repeat_interleave(v, dim=-1) / v  # noqa: E731
    vm = torch.zeros(N, n_hidden)
    trace = torch.zeros(N, n_hidden)
    gW1, gb1 = torch.zeros_like(W1), torch.zeros_like(b1)
    gW2, gb2 = torch.zeros_like(W2), torch.zeros_like(b2)
    gW2_from_spikes = torch.zeros_like(W2)
    n_spikes = 0.0
    for t in range(T):
        u = x[t] @ W1.T + b1
        h = vm * (1.0 - 1.0 / tau) + u
        s = (h >= v_th).float()
        vm = h - s * v_th
        trace = trace * (1.0 - 1.0 / tau) + s
        n_spikes += s.sum().item()
        y = pool(s) @ W2.T + b2
        torch.testing.assert_close(outputs[t], y, **TOL)
        g = y - target[t]
        gW2 += g.T @ pool(trace)  # weight gradient from the trace, not the spike
        gW2_from_spikes += g.T @ pool(s)
        gb2 += g.sum(0)
        delta = unpool_grad(g @ W2) * sg(h - v_th, alpha)
        gW1 += delta.T @ x[t]
        gb1 += delta.sum(0)
    assert n_spikes > 0
    torch.testing.assert_close(fc2.weight.grad, gW2, **TOL)
    torch.testing.assert_close(fc2.bias.grad, gb2, **TOL)
    torch.testing.assert_close(fc1.weight.grad, gW1, **TOL)
    torch.testing.assert_close(fc1.bias.grad, gb1, **TOL)
    # the check can tell traces from spikes
    assert not torch.allclose(gW2, gW2_from_spikes, atol=1e-3)


def test_ottt_network_eval_mode_uses_spikes_only():
    torch.manual_seed(0)
    fc1, fc2 = nn.Linear(3, 4), nn.Linear(4, 2)
    neuron = OTTTLIFNode()
    net = layer.OTTTSequential(fc1, neuron, fc2).eval()
    x = torch.rand(2, 3) * 3
    h = fc1(x)
    s = (h >= 1.0).float()
    torch.testing.assert_close(net(x), fc2(s), **TOL)
