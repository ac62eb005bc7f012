"""snnlab.layer stateful layers: dropout, synapse filter, DropConnect, recurrent containers, delay."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from snnlab import base, functional, layer

TOL = {"atol": 1e-5, "rtol": 1e-5}


# ----------------------------------------------------------------------------- Dropout
@pytest.mark.parametrize("cls", [layer.Dropout, layer.Dropout2d])
def test_dropout_mask_fixed_until_reset(cls):
    torch.manual_seed(0)
    p, T = 0.4, 4
    drop = cls(p)
    x = torch.rand(T, 3, 4, 5, 5) + 0.5
    y = torch.stack([drop(x[t]) for t in range(T)])
    mask = y[0] / x[0]
    scale = 1.0 / (1.0 - p)
    # every mask entry is 0 or 1/(1-p) and the same mask multiplies every step
    assert torch.all((mask.abs() < 1e-6) | ((mask - scale).abs() < 1e-5))
    for t in range(T):
        torch.testing.assert_close(y[t], x[t] * mask, **TOL)
    if cls is layer.Dropout2d:
        # whole channels: the mask is constant over the spatial dims
        torch.testing.assert_close(mask, mask[..., :1, :1].expand_as(mask), **TOL)
    drop.reset()
    assert drop.mask is None
    new_mask = drop(x[0]) / x[0]
    assert not torch.equal(new_mask, mask)


@pytest.mark.parametrize("cls", [layer.Dropout, layer.Dropout2d])
def test_dropout_multi_step_equals_single_step(cls):
    x = torch.rand(3, 2, 4, 3, 3) + 0.5
    torch.manual_seed(1)
    d_s = cls(0.5)
    y_s = torch.stack([d_s(x[t]) for t in range(3)])
    torch.manual_seed(1)
    d_m = cls(0.5, step_mode="m")
    xm = x.clone().requires_grad_(True)
    y_m = d_m(xm)
    torch.testing.assert_close(y_m, y_s, **TOL)
    y_m.sum().backward()
    torch.testing.assert_close(xm.grad, d_m.mask.expand_as(x), **TOL)


def test_dropout_mask_is_unbiased_and_eval_is_identity():
    torch.manual_seed(0)
    drop = layer.Dropout(0.3)
    x = torch.ones(200, 200)
    y = drop(x)
    assert abs(y.mean().item() - 1.0) < 0.02
    assert abs((y == 0).float().mean().item() - 0.3) < 0.02
    drop.eval()
    z = torch.randn(4, 4)
    assert torch.equal(drop(z), z)


def test_dropout_errors():
    with pytest.raises(ValueError, match="p must satisfy"):
        layer.Dropout(1.0)
    with pytest.raises(ValueError, match="p must satisfy"):
        layer.Dropout2d(-0.1)
    with pytest.raises(TypeError, match="p must be a real number"):
        layer.Dropout("0.5")
    drop = layer.Dropout(0.5)
    drop(torch.ones(2, 3))
    with pytest.raises(ValueError, match="reset"):
        drop(torch.ones(4, 3))
    with pytest.raises(ValueError, match="Dropout2d"):
        layer.Dropout2d(0.5)(torch.ones(2, 3))
    with pytest.raises(ValueError, match="x_seq"):
        layer.Dropout(0.5, step_mode="m")(torch.ones(3))


# ----------------------------------------------------------------------------- SynapseFilter
def synapse_reference(x_seq, inv_tau):
    out, i = [], torch.zeros_like(x_seq[0])
    for t in range(x_seq.shape[0]):
        i = i - (1 - x_seq[t]) * inv_tau * i + x_seq[t]
        out.append(i)
    return torch.stack(out)


@pytest.mark.parametrize("learnable", [False, True])
def test_synapse_filter_recursion(learnable):
    torch.manual_seed(0)
    tau, T = 5.0, 6
    x = (torch.rand(T, 2, 3) > 0.6).float()
    syn = layer.SynapseFilter(tau, learnable=learnable)
    y_s = torch.stack([syn(x[t]) for t in range(T)])
    expected = synapse_reference(x, 1.0 / tau)
    torch.testing.assert_close(y_s, expected.detach(), **TOL)
    syn.reset()
    assert syn.out_i == 0.0
    syn.step_mode = "m"
    y_m = syn(x)
    torch.testing.assert_close(y_m, expected, **TOL)
    assert "tau=5," in repr(syn)
    if learnable:
        # d/dw through 1/tau = sigmoid(w), reference recursion on an explicit tensor
        w = torch.tensor(-math.log(tau - 1.0), requires_grad=True)
        (synapse_reference(x, torch.sigmoid(w)) ** 2).sum().backward()
        (y_m**2).sum().backward()
        torch.testing.assert_close(syn.w.grad, w.grad, **TOL)


def test_synapse_filter_input_gradient():
    x = torch.rand(4, 3, requires_grad=True)
    x_ref = x.detach().clone().requires_grad_(True)
    syn = layer.SynapseFilter(3.0, step_mode="m")
    syn(x).sum().backward()
    synapse_reference(x_ref, 1.0 / 3.0).sum().backward()
    torch.testing.assert_close(x.grad, x_ref.grad, **TOL)


def test_synapse_filter_bad_tau():
    with pytest.raises(ValueError, match="tau must be > 1"):
        layer.SynapseFilter(1.0)
    with pytest.raises(TypeError, match="tau"):
        layer.SynapseFilter("10")
    with pytest.raises(TypeError, match="learnable"):
        layer.SynapseFilter(10.0, learnable=1)


# ----------------------------------------------------------------------------- DropConnectLinear
def test_dropconnect_training_equation_and_invariance():
    torch.manual_seed(0)
    dc = layer.DropConnectLinear(4, 3, p=0.5, invariant=True)
    x = torch.randn(5, 4)
    y = dc(x)
    w_mask = dc.dropped_w / dc.weight
    b_mask = dc.dropped_b / dc.bias
    assert torch.all((w_mask == 0) | (w_mask == 1)) and torch.all((b_mask == 0) | (b_mask == 1))
    expected = torch.stack(
        [torch.relu((dc.weight * w_mask[n]) @ x[n] + dc.bias * b_mask[n]) for n in range(5)]
    )
    torch.testing.assert_close(y, expected, **TOL)
    first = dc.dropped_w.clone()
    dc(torch.randn(5, 4))
    assert torch.equal(dc.dropped_w, first)  # invariant: kept until reset
    dc.reset()
    assert dc.dropped_w is None and dc.dropped_b is None
    y.sum().backward()
    assert dc.weight.grad is not None


def test_dropconnect_redraws_without_invariant_and_multi_step():
    torch.manual_seed(0)
    dc = layer.DropConnectLinear(6, 5, p=0.5, activation=None, state_mode="m")
    assert dc.step_mode == "m" and dc.state_mode == "m"
    x = torch.randn(2, 3, 6)
    y = dc(x)
    assert y.shape == (2, 3, 5)
    # the last step used the masks left in dropped_w / dropped_b
    expected_last = torch.stack([dc.dropped_w[n] @ x[1, n] + dc.dropped_b[n] for n in range(3)])
    torch.testing.assert_close(y[1], expected_last, **TOL)
    last = dc.dropped_w.clone()
    dc(x)
    assert not torch.equal(dc.dropped_w, last)


def test_dropconnect_inference_is_gaussian_average():
    torch.manual_seed(0)
    p = 0.3
    dc = layer.DropConnectLinear(4, 3, p=p, samples_num=20000, activation=None).eval()
    x = torch.randn(2, 4)
    mu = (1 - p) * (x @ dc.weight.T + dc.bias)
    sigma = torch.sqrt(p * (1 - p) * (x**2 @ (dc.weight**2).T + dc.bias**2))
    y = dc(x)
    assert torch.all((y - mu).abs() <= 5 * sigma / math.sqrt(20000) + 1e-6)
    dc_relu = layer.DropConnectLinear(4, 3, p=p, samples_num=20000).eval()
    dc_relu.load_state_dict(dc.state_dict())
    # E[relu(u)] for u ~ N(mu, sigma^2) = mu * Phi(mu/sigma) + sigma * phi(mu/sigma)
    z = mu / sigma
    normal = torch.distributions.Normal(0.0, 1.0)
    expected = mu * normal.cdf(z) + sigma * torch.exp(normal.log_prob(z))
    assert torch.all((dc_relu(x) - expected).abs() <= 5 * sigma / math.sqrt(20000) + 1e-6)


def test_dropconnect_step_mode_keyword_and_errors():
    assert layer.DropConnectLinear(2, 2, step_mode="m").step_mode == "m"
    with pytest.raises(ValueError, match="state_mode"):
        layer.DropConnectLinear(2, 2, state_mode="m", step_mode="s")
    with pytest.raises(ValueError, match="step_mode"):
        layer.DropConnectLinear(2, 2, state_mode="q")
    with pytest.raises(ValueError, match="p must satisfy"):
        layer.DropConnectLinear(2, 2, p=1.0)
    with pytest.raises(ValueError, match="samples_num"):
        layer.DropConnectLinear(2, 2, samples_num=0)
    with pytest.raises(ValueError, match="input"):
        layer.DropConnectLinear(2, 2)(torch.zeros(3, 3))
    with pytest.raises(ValueError, match="input"):
        layer.DropConnectLinear(2, 2)(torch.zeros(3, 1, 2))
    dc = layer.DropConnectLinear(2, 2, invariant=True)
    dc(torch.zeros(3, 2))
    with pytest.raises(ValueError, match="reset"):
        dc(torch.zeros(4, 2))


def test_dropconnect_reset_resets_stateful_activation():
    class Acc(base.MemoryModule):
        def __init__(self):
            super().__init__()
            self.register_memory("s", 0.0)

        def single_step_forward(self, x):
            self.s = self.s + x
            return self.s

    dc = layer.DropConnectLinear(2, 2, activation=Acc())
    dc(torch.ones(1, 2))
    functional.reset_net(dc)
    assert dc.activation.s == 0.0


# ----------------------------------------------------------------------------- recurrent containers
def test_element_wise_recurrent_container_order_and_modes():
    torch.manual_seed(0)
    T = 5
    f = lambda y_prev, x: 2.0 * y_prev - x  # noqa: E731 -- not symmetric: the order matters
    x = torch.randn(T, 3, 4, requires_grad=True)
    net = layer.ElementWiseRecurrentContainer(nn.Tanh(), f)
    y_s = torch.stack([net(x[t]) for t in range(T)])
    y, ref = torch.zeros(3, 4), []
    for t in range(T):
        y = torch.tanh(2.0 * y - x[t])
        ref.append(y)
    ref = torch.stack(ref)
    torch.testing.assert_close(y_s, ref, **TOL)
    functional.reset_net(net)
    assert net.y is None
    net.step_mode = "m"
    y_m = net(x)
    torch.testing.assert_close(y_m, ref, **TOL)
    (g_ours,) = torch.autograd.grad(y_m.sum(), x)
    (g_ref,) = torch.autograd.grad(ref.sum(), x)
    torch.testing.assert_close(g_ours, g_ref, **TOL)


def test_linear_recurrent_container_equation_and_gradients():
    torch.manual_seed(0)
    T, N, fin, fout = 4, 2, 3, 2
    sub = nn.Sequential(nn.Linear(fin, fout), nn.Tanh())
    net = layer.LinearRecurrentContainer(sub, fin, fout, step_mode="m")
    assert net.rc.weight.shape == (fin, fin + fout)
    x = torch.randn(T, N, fin)
    y_m = net(x)
    W, b = net.rc.weight, net.rc.bias
    y, ref = torch.zeros(N, fout), []
    for t in range(T):
        i = torch.cat((x[t], y), dim=-1) @ W.T + b
        y = torch.tanh(i @ sub[0].weight.T + sub[0].bias)
        ref.append(y)
    ref = torch.stack(ref)
    torch.testing.assert_close(y_m, ref, **TOL)
    params = list(net.parameters())
    g_ours = torch.autograd.grad((y_m**2).sum(), params)
    g_ref = torch.autograd.grad((ref**2).sum(), params)
    for a, b_ in zip(g_ours, g_ref):
        torch.testing.assert_close(a, b_, **TOL)
    net.reset()
    net.step_mode = "s"
    y_s = torch.stack([net(x[t]) for t in range(T)])
    torch.testing.assert_close(y_s, ref, **TOL)


def test_recurrent_containers_keep_sub_module_single_step_and_validate():
    sub = layer.Linear(2, 2)
    net = layer.ElementWiseRecurrentContainer(sub, lambda a, b: a + b)
    functional.set_step_mode(net, "m")
    assert net.step_mode == "m" and sub.step_mode == "s"
    with pytest.raises(ValueError, match="sub_module"):
        layer.ElementWiseRecurrentContainer(layer.Linear(2, 2, step_mode="m"), lambda a, b: a + b)
    with pytest.raises(TypeError, match="element_wise_function"):
        layer.ElementWiseRecurrentContainer(nn.Identity(), 3)
    with pytest.raises(TypeError, match="sub_module"):
        layer.LinearRecurrentContainer(lambda x: x, 2, 2)
    with pytest.raises(ValueError, match="in_features"):
        layer.LinearRecurrentContainer(nn.Identity(), 0, 2)
    with pytest.raises(ValueError, match="in_features=2"):
        layer.LinearRecurrentContainer(nn.Linear(2, 2), 2, 2)(torch.zeros(3, 3))


# ----------------------------------------------------------------------------- Delay
def delay_reference(x_seq, d):
    y = torch.zeros_like(x_seq)
    for t in range(x_seq.shape[0]):
        if t - d >= 0:
            y[t] = x_seq[t - d]
    return y


def test_delay_document_example():
    delay = layer.Delay(1, step_mode="m")
    x = torch.rand(5, 2)
    x[3:].zero_()
    x.requires_grad_(True)
    y = delay(x)
    torch.testing.assert_close(y, delay_reference(x.detach(), 1))
    y.sum().backward()
    expected_grad = torch.ones(5, 2)
    expected_grad[4] = 0
    torch.testing.assert_close(x.grad, expected_grad)


@settings(max_examples=30, deadline=None)
@given(
    d=st.integers(0, 4),
    chunks=st.lists(st.tuples(st.sampled_from(["s", "m"]), st.integers(1, 4)), min_size=1, max_size=4),
)
def test_delay_state_carried_across_calls_in_both_modes(d, chunks):
    total = sum(n for _, n in chunks)
    x = torch.randn(total, 2, 3)
    delay = layer.Delay(d)
    outs, start = [], 0
    for mode, n in chunks:
        delay.step_mode = mode
        part = x[start : start + n]
        if mode == "m":
            outs.append(delay(part))
        else:
            outs.extend(delay(part[t]).unsqueeze(0) for t in range(n))
        start += n
    torch.testing.assert_close(torch.cat(outs), delay_reference(x, d))
    delay.reset()
    assert delay.queue == []


def test_delay_errors():
    with pytest.raises(ValueError, match="delay_steps"):
        layer.Delay(-1)
    with pytest.raises(TypeError, match="delay_steps"):
        layer.Delay(1.5)
    delay = layer.Delay(2, step_mode="m")
    delay(torch.zeros(3, 2))
    with pytest.raises(ValueError, match="reset"):
        delay(torch.zeros(3, 4))
    assert layer.Delay(3).delay_steps == 3
