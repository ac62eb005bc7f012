"""Neuron layers against explicit loops of their equations written in this file.

The reference spike is the Heaviside step in the forward pass with the
derivative of ``sigmoid(alpha * u)`` in the backward pass (the default
``Sigmoid(alpha=4)`` surrogate), built from plain torch operations as
``H(u) + (g(u) - g(u).detach())``.
"""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from snnlab import functional, neuron, surrogate
from snnlab.kernels import cuda as cuda_kernels

ALPHA = 4.0
F64 = torch.float64

# ----------------------------------------------------------------------------- plain-torch reference


def ref_spike(u: torch.Tensor) -> torch.Tensor:
    """Heaviside forward, d/du sigmoid(ALPHA u) backward."""
    g = 1.0 / (1.0 + torch.exp(-ALPHA * u))
    return (u >= 0).to(u) + (g - g.detach())


def ref_run(charge, x_seq, v0, v_th, v_reset, detach_reset=False):
    """Loop H = charge(V, X); S = spike(H - V_th); hard / soft reset. Returns spikes, v after reset."""
    v = torch.full_like(x_seq[0], v0)
    spikes, vs = [], []
    for t in range(x_seq.shape[0]):
        h = charge(v, x_seq[t])
        s = ref_spike(h - v_th)
        sd = s.detach() if detach_reset else s
        if v_reset is None:
            v = h - sd * v_th
        else:
            v = (1.0 - sd) * h + sd * v_reset
        spikes.append(s)
        vs.append(v)
    return torch.stack(spikes), torch.stack(vs)


def if_charge():
    return lambda v, x: v + x


def lif_charge(tau, decay_input, v_reset):
    vr = 0.0 if v_reset is None else v_reset
    if decay_input:
        return lambda v, x: v + (x - (v - vr)) / tau
    return lambda v, x: v - (v - vr) / tau + x


def plif_charge(w, decay_input, v_reset):
    vr = 0.0 if v_reset is None else v_reset

    def charge(v, x):
        k = 1.0 / (1.0 + torch.exp(-w))
        return v + (x - (v - vr)) * k if decay_input else v - (v - vr) * k + x

    return charge


def qif_charge(tau, v_c, a0, v_rest):
    return lambda v, x: v + (x + a0 * (v - v_rest) * (v - v_c)) / tau


def eif_charge(tau, delta_T, theta_rh, v_rest):
    return lambda v, x: v + (x - (v - v_rest) + delta_T * torch.exp((v - theta_rh) / delta_T)) / tau


def ref_izhikevich(x_seq, tau, v_c, a0, v_th, v_reset, v_rest, w_rest, tau_w, a, b, detach_reset=False):
    v0 = 0.0 if v_reset is None else v_reset
    v = torch.full_like(x_seq[0], v0)
    w = torch.full_like(x_seq[0], w_rest)
    spikes, vs, ws = [], [], []
    for t in range(x_seq.shape[0]):
        h = v + (x_seq[t] + a0 * (v - v_rest) * (v - v_c) - w) / tau
        w = w + (a * (h - v_rest) - w) / tau_w
        s = ref_spike(h - v_th)
        sd = s.detach() if detach_reset else s
        if v_reset is None:
            v = h - sd * v_th
        else:
            v = (1.0 - sd) * h + s * v_reset
        w = w + b * s
        spikes.append(s)
        vs.append(v)
        ws.append(w)
    return torch.stack(spikes), torch.stack(vs), torch.stack(ws)


def inputs(T=6, shape=(3, 4), scale=1.5, seed=0, dtype=F64):
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(T, *shape, generator=gen, dtype=dtype) * scale


def run_single(node, x_seq):
    """Single-step mode, one call per step; returns spikes and v after each step."""
    node.step_mode = "s"
    spikes, vs = [], []
    for t in range(x_seq.shape[0]):
        spikes.append(node(x_seq[t]))
        vs.append(node.v)
    return torch.stack(spikes), torch.stack(vs)


def run_multi(node, x_seq):
    node.step_mode = "m"
    node.store_v_seq = True
    return node(x_seq), node.v_seq


def check_against_reference(make, charge, x_seq, v0, v_th, v_reset, detach_reset=False):
    """Single-step and multi-step runs equal the reference in forward values and input gradients."""
    ref_x = x_seq.clone().requires_grad_(True)
    ref_s, ref_v = ref_run(charge, ref_x, v0, v_th, v_reset, detach_reset)
    gen = torch.Generator().manual_seed(1)
    r1 = torch.rand(ref_s.shape, generator=gen, dtype=x_seq.dtype)
    r2 = torch.rand(ref_s.shape, generator=gen, dtype=x_seq.dtype)
    ((ref_s * r1).sum() + (ref_v * r2).sum()).backward()
    assert ref_s.sum() > 0, "test inputs should make the neurons fire"

    for runner in (run_single, run_multi):
        x = x_seq.clone().requires_grad_(True)
        s, v = runner(make(), x)
        assert s.dtype == x_seq.dtype and s.shape == x_seq.shape
        assert torch.equal(s.detach(), ref_s.detach())
        torch.testing.assert_close(v, ref_v.detach(), rtol=1e-10, atol=1e-12)
        ((s * r1).sum() + (v * r2).sum()).backward()
        torch.testing.assert_close(x.grad, ref_x.grad, rtol=1e-9, atol=1e-12)


# ----------------------------------------------------------------------------- IF / LIF / PLIF

RESETS = [0.0, None, -0.3, 0.4]
ALL_NODES = [
    neuron.IFNode,
    neuron.LIFNode,
    neuron.ParametricLIFNode,
    neuron.QIFNode,
    neuron.EIFNode,
    neuron.IzhikevichNode,
]


@pytest.mark.parametrize("detach_reset", [False, True])
@pytest.mark.parametrize("v_reset", RESETS)
def test_if_node(v_reset, detach_reset):
    x_seq = inputs() - 0.2
    check_against_reference(
        lambda: neuron.IFNode(v_reset=v_reset, detach_reset=detach_reset),
        if_charge(),
        x_seq,
        0.0 if v_reset is None else v_reset,
        1.0,
        v_reset,
        detach_reset,
    )


@pytest.mark.parametrize("detach_reset", [False, True])
@pytest.mark.parametrize("v_reset", RESETS)
@pytest.mark.parametrize("decay_input", [True, False])
@pytest.mark.parametrize("tau", [2.0, 3.7])
def test_lif_node(tau, decay_input, v_reset, detach_reset):
    x_seq = inputs(scale=2.5 if decay_input else 1.2)
    check_against_reference(
        lambda: neuron.LIFNode(tau=tau, decay_input=decay_input, v_reset=v_reset, detach_reset=detach_reset),
        lif_charge(tau, decay_input, v_reset),
        x_seq,
        0.0 if v_reset is None else v_reset,
        1.0,
        v_reset,
        detach_reset,
    )


def test_lif_threshold_other_than_one():
    x_seq = inputs(scale=1.0)
    check_against_reference(
        lambda: neuron.LIFNode(tau=1.5, v_threshold=0.6, v_reset=0.1),
        lif_charge(1.5, True, 0.1),
        x_seq,
        0.1,
        0.6,
        0.1,
    )


@pytest.mark.parametrize("v_reset", RESETS)
@pytest.mark.parametrize("decay_input", [True, False])
def test_parametric_lif_node_forward_and_gradients(decay_input, v_reset):
    init_tau = 3.0
    x_seq = inputs(scale=2.5 if decay_input else 1.2)
    # w is a float32 parameter; .double() keeps its float32-rounded value
    w_ref = torch.as_tensor(-math.log(init_tau - 1.0)).to(F64).requires_grad_(True)
    check_against_reference(
        lambda: neuron.ParametricLIFNode(init_tau, decay_input, v_reset=v_reset).double(),
        plif_charge(w_ref.detach(), decay_input, v_reset),
        x_seq,
        0.0 if v_reset is None else v_reset,
        1.0,
        v_reset,
    )

    # the gradient reaches w: compare with d/dw of the reference loop
    v0 = 0.0 if v_reset is None else v_reset
    s_ref, v_ref = ref_run(plif_charge(w_ref, decay_input, v_reset), x_seq, v0, 1.0, v_reset)
    (s_ref.sum() + v_ref.sum()).backward()
    node = neuron.ParametricLIFNode(init_tau=init_tau, decay_input=decay_input, v_reset=v_reset)
    node.double()
    s, v = run_multi(node, x_seq)
    (s.sum() + v.sum()).backward()
    assert node.w.grad is not None
    torch.testing.assert_close(node.w.grad, w_ref.grad, rtol=1e-9, atol=1e-12)
    assert w_ref.grad.abs() > 0


def test_parametric_lif_tau_property():
    node = neuron.ParametricLIFNode(init_tau=2.0)
    assert isinstance(node.w, nn.Parameter)
    assert node.w.item() == pytest.approx(0.0)
    assert node.tau == pytest.approx(2.0)
    node.tau = 5.0
    assert node.w.item() == pytest.approx(-math.log(4.0))
    assert node.tau == pytest.approx(5.0)
    assert "w" in dict(node.named_parameters())


# ----------------------------------------------------------------------------- QIF / EIF / Izhikevich


@pytest.mark.parametrize("detach_reset", [False, True])
@pytest.mark.parametrize("v_reset", [-0.1, None, -0.4])
def test_qif_node(v_reset, detach_reset):
    tau, v_c, a0, v_rest = 2.5, 0.7, 1.3, -0.05
    x_seq = inputs(scale=1.4)
    check_against_reference(
        lambda: neuron.QIFNode(
            tau=tau, v_c=v_c, a0=a0, v_rest=v_rest, v_reset=v_reset, detach_reset=detach_reset
        ),
        qif_charge(tau, v_c, a0, v_rest),
        x_seq,
        0.0 if v_reset is None else v_reset,
        1.0,
        v_reset,
        detach_reset,
    )


@pytest.mark.parametrize("detach_reset", [False, True])
@pytest.mark.parametrize("v_reset", [-0.1, None, -0.5])
def test_eif_node(v_reset, detach_reset):
    tau, delta_T, theta_rh, v_rest = 2.0, 0.7, 0.6, 0.05
    x_seq = inputs(scale=1.2)
    check_against_reference(
        lambda: neuron.EIFNode(
            tau, delta_T, theta_rh, v_rest=v_rest, v_reset=v_reset, detach_reset=detach_reset
        ),
        eif_charge(tau, delta_T, theta_rh, v_rest),
        x_seq,
        0.0 if v_reset is None else v_reset,
        1.0,
        v_reset,
        detach_reset,
    )


@pytest.mark.parametrize("detach_reset", [False, True])
@pytest.mark.parametrize("v_reset", [0.0, None, -0.2])
def test_izhikevich_node(v_reset, detach_reset):
    params = dict(tau=2.0, v_c=0.8, a0=1.1, v_reset=v_reset, v_rest=-0.1, w_rest=0.05, tau_w=3.0)
    params.update(a=0.3, b=0.2)
    x_seq = inputs(T=8, scale=2.0)
    ref_x = x_seq.clone().requires_grad_(True)
    ref_s, ref_v, ref_w = ref_izhikevich(
        ref_x, params["tau"], params["v_c"], params["a0"], 1.0, v_reset, params["v_rest"], params["w_rest"],
        params["tau_w"], params["a"], params["b"], detach_reset,
    )  # fmt: skip
    assert ref_s.sum() > 0
    (ref_s.sum() + (ref_v * 0.5).sum() + ref_w.sum()).backward()
    for mode in ("s", "m"):
        node = neuron.IzhikevichNode(**params, detach_reset=detach_reset, step_mode=mode, store_v_seq=True)
        x = x_seq.clone().requires_grad_(True)
        if mode == "s":
            s, v, w = [], [], []
            for t in range(x.shape[0]):
                s.append(node(x[t]))
                v.append(node.v)
                w.append(node.w)
            s, v, w = torch.stack(s), torch.stack(v), torch.stack(w)
            loss = s.sum() + (v * 0.5).sum() + w.sum()
            torch.testing.assert_close(w, ref_w.detach(), rtol=1e-10, atol=1e-12)
        else:
            s = node(x)
            v = node.v_seq
            loss = s.sum() + (v * 0.5).sum()
            torch.testing.assert_close(node.w, ref_w[-1].detach(), rtol=1e-10, atol=1e-12)
        assert torch.equal(s.detach(), ref_s.detach())
        torch.testing.assert_close(v, ref_v.detach(), rtol=1e-10, atol=1e-12)
        if mode == "s":
            loss.backward()
            torch.testing.assert_close(x.grad, ref_x.grad, rtol=1e-9, atol=1e-12)


def test_izhikevich_reset_restores_w():
    node = neuron.IzhikevichNode(w_rest=0.25, b=0.5)
    node(torch.ones(2, 3, dtype=F64) * 3.0)
    assert isinstance(node.w, torch.Tensor)
    node.reset()
    assert node.w == 0.25 and node.v == 0.0
    node.w_rest = -0.5
    node.reset()
    assert node.w == -0.5


# ----------------------------------------------------------------------------- semantics


def test_multi_step_equals_stacked_single_steps():
    x_seq = inputs(T=7, shape=(2, 3, 2))
    a = neuron.LIFNode(tau=3.0, v_reset=None)
    b = neuron.LIFNode(tau=3.0, v_reset=None, step_mode="m")
    s_single = torch.stack([a(x) for x in x_seq])
    s_multi = b(x_seq)
    assert torch.equal(s_single, s_multi)
    torch.testing.assert_close(a.v, b.v, rtol=0, atol=0)


@pytest.mark.parametrize("v_reset", [0.0, None])
def test_input_exactly_at_threshold_spikes(v_reset):
    # IF: H = 0 + 1.0 == V_th exactly
    node = neuron.IFNode(v_reset=v_reset)
    x = torch.tensor([[1.0, 0.9999999, 1.0000001]], dtype=F64)
    assert torch.equal(node(x), torch.tensor([[1.0, 0.0, 1.0]], dtype=F64))
    expected_v = [0.0, 0.9999999, 0.0] if v_reset == 0.0 else [0.0, 0.9999999, 1.0000001 - 1.0]
    torch.testing.assert_close(node.v, torch.tensor([expected_v], dtype=F64), rtol=0, atol=1e-15)
    # LIF, decay_input, tau=2: H = 0 + (2 - 0) / 2 == 1.0 exactly
    lif = neuron.LIFNode(tau=2.0, v_reset=v_reset)
    assert torch.equal(lif(torch.tensor([2.0, 1.999], dtype=torch.float32)), torch.tensor([1.0, 0.0]))
    # LIF, no decay_input, tau=4, from v = 0.5 (after one step of 0.5): H = 0.5 * 0.75 + 0.625 == 1.0
    lif = neuron.LIFNode(tau=4.0, decay_input=False, v_reset=v_reset)
    lif(torch.tensor([0.5], dtype=F64))
    assert lif(torch.tensor([0.625], dtype=F64)).item() == 1.0


def test_batch_elements_are_independent():
    x_seq = inputs(T=5, shape=(4, 3))
    batch = neuron.LIFNode(step_mode="m")(x_seq)
    for i in range(4):
        alone = neuron.LIFNode(step_mode="m")(x_seq[:, i : i + 1])
        assert torch.equal(batch[:, i : i + 1], alone)


@pytest.mark.parametrize("v_reset", [0.0, None])
def test_detach_reset_changes_gradient_as_expected(v_reset):
    x_seq = inputs(T=6, shape=(2, 5), scale=2.5)
    grads = {}
    for detach in (False, True):
        x = x_seq.clone().requires_grad_(True)
        node = neuron.LIFNode(v_reset=v_reset, detach_reset=detach, step_mode="m", store_v_seq=True)
        s = node(x)
        (s.sum() + node.v_seq.sum()).backward()
        ref_x = x_seq.clone().requires_grad_(True)
        ref_s, ref_v = ref_run(lif_charge(2.0, True, v_reset), ref_x, 0.0, 1.0, v_reset, detach_reset=detach)
        (ref_s.sum() + ref_v.sum()).backward()
        torch.testing.assert_close(x.grad, ref_x.grad, rtol=1e-9, atol=1e-12)
        grads[detach] = x.grad
        # the returned spike is not detached in either case
        assert s.requires_grad
    assert not torch.allclose(grads[False], grads[True])


def test_store_v_seq():
    x_seq = inputs(T=5, shape=(2, 3))
    node = neuron.LIFNode(step_mode="m")
    node(x_seq)
    assert not hasattr(node, "v_seq")
    node = neuron.LIFNode(step_mode="m", store_v_seq=True)
    node(x_seq)
    assert node.v_seq.shape == (5, 2, 3)
    _, ref_v = ref_run(lif_charge(2.0, True, 0.0), x_seq, 0.0, 1.0, 0.0)
    torch.testing.assert_close(node.v_seq, ref_v, rtol=1e-12, atol=0)
    torch.testing.assert_close(node.v, ref_v[-1], rtol=0, atol=0)
    node.reset()
    assert node.v_seq is None


@pytest.mark.parametrize("v_reset", [0.0, -0.2, None])
def test_reset_restores_initial_state(v_reset):
    node = neuron.LIFNode(v_reset=v_reset)
    initial = 0.0 if v_reset is None else v_reset
    assert node.v == initial and isinstance(node.v, float)
    node(torch.rand(3, 2) * 3)
    assert isinstance(node.v, torch.Tensor)
    node.reset()
    assert node.v == initial and isinstance(node.v, float)


def test_changing_v_reset_changes_reset_value():
    node = neuron.LIFNode()
    node.v_reset = -0.5
    node(torch.rand(2))
    node.reset()
    assert node.v == -0.5
    node.v_reset = None
    node.reset()
    assert node.v == 0.0


def test_live_tau_change_takes_effect_next_step():
    x_seq = inputs(T=6, shape=(3,), scale=1.0)
    node = neuron.LIFNode(tau=2.0)
    out = []
    for t in range(6):
        if t == 3:
            node.tau = 5.0
        out.append(node(x_seq[t]))
    v = torch.zeros(3, dtype=F64)
    ref = []
    for t in range(6):
        tau = 2.0 if t < 3 else 5.0
        h = v + (x_seq[t] - v) / tau
        s = (h >= 1.0).to(h)
        v = (1 - s) * h
        ref.append(s)
    assert torch.equal(torch.stack(out), torch.stack(ref))
    torch.testing.assert_close(node.v, v, rtol=1e-12, atol=0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("cls", ALL_NODES)
def test_dtype_and_shape_follow_input(cls, dtype):
    node = cls(step_mode="m")
    x_seq = inputs(T=3, shape=(2, 3, 2), dtype=dtype)
    s = node(x_seq)
    assert s.dtype == dtype and s.shape == (3, 2, 3, 2)
    assert node.v.dtype == dtype and node.v.shape == (2, 3, 2)
    assert set(s.unique().tolist()) <= {0.0, 1.0}


def test_functional_set_step_mode_and_reset_net():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 5), neuron.LIFNode(), nn.Linear(5, 3), neuron.IFNode(v_reset=None))
    net.double()
    x_seq = inputs(T=6, shape=(2, 4), scale=2.0)
    single = torch.stack([net(x) for x in x_seq])
    functional.reset_net(net)
    assert net[1].v == 0.0 and net[3].v == 0.0
    functional.set_step_mode(net, "m")
    assert net[1].step_mode == "m" and net[3].step_mode == "m"
    multi = net(x_seq)
    assert torch.equal(single, multi)
    # reference: the same network written as a plain loop
    w1, b1, w2, b2 = net[0].weight, net[0].bias, net[2].weight, net[2].bias
    v1 = torch.zeros(2, 5, dtype=F64)
    v2 = torch.zeros(2, 3, dtype=F64)
    ref = []
    with torch.no_grad():
        for x in x_seq:
            h1 = v1 + (x @ w1.T + b1 - v1) / 2.0
            s1 = (h1 >= 1.0).to(h1)
            v1 = (1 - s1) * h1
            h2 = v2 + s1 @ w2.T + b2
            s2 = (h2 >= 1.0).to(h2)
            v2 = h2 - s2
            ref.append(s2)
    assert torch.equal(multi.detach(), torch.stack(ref))


def test_detach_cuts_state_from_graph():
    node = neuron.LIFNode()
    x = torch.rand(3, requires_grad=True)
    node(x)
    assert node.v.requires_grad
    functional.detach_net(nn.Sequential(node))
    assert not node.v.requires_grad


def test_extra_repr_lists_parameters():
    text = repr(neuron.LIFNode(tau=3.0, v_reset=None, detach_reset=True))
    for piece in ("tau=3.0", "v_reset=None", "v_threshold=1.0", "detach_reset=True", "step_mode=s",
                  "backend=auto"):  # fmt: skip
        assert piece in text
    assert "theta_rh=0.8" in repr(neuron.EIFNode())
    assert "tau_w=2.0" in repr(neuron.IzhikevichNode())
    assert "a0=1.0" in repr(neuron.QIFNode())


def test_signature_defaults():
    lif = neuron.LIFNode()
    assert (lif.tau, lif.decay_input, lif.v_threshold, lif.v_reset) == (2.0, True, 1.0, 0.0)
    assert lif.detach_reset is False
    assert isinstance(lif.surrogate_function, surrogate.Sigmoid) and lif.surrogate_function.alpha == 4.0
    assert (lif.step_mode, lif.backend, lif.store_v_seq) == ("s", "auto", False)
    qif = neuron.QIFNode()
    assert (qif.tau, qif.v_c, qif.a0, qif.v_rest, qif.v_reset) == (2.0, 0.8, 1.0, 0.0, -0.1)
    eif = neuron.EIFNode()
    assert (eif.tau, eif.delta_T, eif.theta_rh, eif.v_rest, eif.v_reset) == (2.0, 1.0, 0.8, 0.0, -0.1)
    izh = neuron.IzhikevichNode()
    assert (izh.tau, izh.v_c, izh.a0, izh.v_reset, izh.v_rest, izh.w_rest, izh.tau_w, izh.a, izh.b) == (
        2.0, 0.8, 1.0, 0.0, -0.1, 0.0, 2.0, 0.0, 0.0,
    )  # fmt: skip
    ottt = neuron.OTTTLIFNode()
    assert (ottt.decay_input, ottt.v_reset, ottt.detach_reset) == (False, None, True)


@settings(max_examples=30, deadline=None)
@given(
    tau=st.floats(1.05, 10.0),
    v_th=st.floats(0.2, 2.0),
    v_reset=st.one_of(st.none(), st.floats(-1.0, 0.15)),
    decay_input=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_lif_property_matches_reference(tau, v_th, v_reset, decay_input, seed):
    x_seq = inputs(T=5, shape=(3,), scale=3.0, seed=seed) - 0.5
    node = neuron.LIFNode(tau=tau, decay_input=decay_input, v_threshold=v_th, v_reset=v_reset, step_mode="m")
    s = node(x_seq)
    ref_s, ref_v = ref_run(lif_charge(tau, decay_input, v_reset), x_seq, 0.0 if v_reset is None else v_reset,
                           v_th, v_reset)  # fmt: skip
    assert torch.equal(s, ref_s)
    torch.testing.assert_close(node.v, ref_v[-1], rtol=1e-10, atol=1e-12)


# ----------------------------------------------------------------------------- OTTT


def test_ottt_lif_node_training_and_eval():
    tau = 2.0
    x_seq = inputs(T=6, shape=(2, 3), scale=1.5)
    node = neuron.OTTTLIFNode(tau=tau)
    node.train()
    xs = [x.clone().requires_grad_(True) for x in x_seq]
    outs = [node(x) for x in xs]
    ref_s, _ = ref_run(lif_charge(tau, False, None), x_seq, 0.0, 1.0, None, detach_reset=True)
    trace = torch.zeros(2, 3, dtype=F64)
    for t, out in enumerate(outs):
        assert isinstance(out, list) and len(out) == 2
        spike, tr = out
        assert torch.equal(spike.detach(), ref_s[t])
        trace = trace * (1.0 - 1.0 / tau) + ref_s[t]
        torch.testing.assert_close(tr, trace, rtol=1e-12, atol=0)
        assert not tr.requires_grad
    assert ref_s.sum() > 0
    # v is detached from the previous step: the last spike depends on the last input only
    spike_last = outs[-1][0]
    spike_last.sum().backward()
    assert all(x.grad is None for x in xs[:-1])
    # d S[T-1] / d X[T-1] = sg'(H - 1) with H = V[T-2] (1 - 1/tau) + X[T-1] (decay_input=False)
    _, ref_v = ref_run(lif_charge(tau, False, None), x_seq, 0.0, 1.0, None, detach_reset=True)
    h = ref_v[-2] * (1.0 - 1.0 / tau) + x_seq[-1]
    sig = 1.0 / (1.0 + torch.exp(-ALPHA * (h - 1.0)))
    torch.testing.assert_close(xs[-1].grad, ALPHA * sig * (1.0 - sig), rtol=1e-10, atol=1e-12)
    node.eval()
    node.reset()
    assert node.trace == 0.0 and node.v == 0.0
    out = node(x_seq[0])
    assert isinstance(out, torch.Tensor) and torch.equal(out, ref_s[0])


def test_ottt_lif_node_is_single_step_only():
    with pytest.raises(ValueError, match="step_mode"):
        neuron.OTTTLIFNode(step_mode="m")
    node = neuron.OTTTLIFNode()
    with pytest.raises(ValueError, match="step_mode"):
        node.step_mode = "m"


# ----------------------------------------------------------------------------- backends


def test_registered_backend_replaces_multi_step_loop():
    calls = []

    def fake_fused(node, x_seq):
        calls.append(tuple(x_seq.shape))
        return node._multi_step_torch(x_seq)

    neuron.register_multi_step_backend(neuron.LIFNode, "fake", fake_fused)
    try:
        node = neuron.LIFNode(step_mode="m", backend="fake")
        assert node.supported_backends == ("torch", "auto", "cpu", "cupy", "fake")
        assert "fake" in neuron.OTTTLIFNode.__mro__[1]().supported_backends
        assert neuron.OTTTLIFNode().supported_backends == ("torch", "auto")
        assert neuron.IFNode().supported_backends == ("torch", "auto", "cpu", "cupy")
        assert neuron.ParametricLIFNode().supported_backends == ("torch", "auto")
        x_seq = inputs(T=4, shape=(2,))
        s = node(x_seq)
        assert calls == [(4, 2)]
        assert torch.equal(s, neuron.LIFNode(step_mode="m")(x_seq))
        functional.set_backend(nn.Sequential(node), "torch")
        assert node.backend == "torch"
    finally:
        neuron._MULTI_STEP_BACKENDS[neuron.LIFNode].pop("fake")
        neuron._RESOLVED.clear()


@pytest.mark.skipif(cuda_kernels.is_available(), reason="CuPy and a GPU are present")
@pytest.mark.parametrize("cls", [neuron.IFNode, neuron.LIFNode])
def test_cupy_backend_without_cupy_or_gpu_fails_early(cls):
    assert "cupy" in cls().supported_backends
    with pytest.raises(cuda_kernels.CuPyUnavailableError, match="backend='cupy' needs"):
        cls(step_mode="m", backend="cupy")
    node = cls(step_mode="m", backend="torch")
    with pytest.raises(ImportError, match="backend='cupy'"):  # CuPyUnavailableError is an ImportError
        node.backend = "cupy"
    assert node.backend == "torch"
    with pytest.raises(RuntimeError, match="cupy"):  # ... and a RuntimeError
        functional.set_backend(nn.Sequential(node), "cupy")
    assert node.backend == "torch"


def test_auto_uses_cupy_only_where_it_can_run(monkeypatch):
    """'auto' maps a device type to 'cupy' through AUTO_BACKENDS and asks is_available() first."""
    x_seq = inputs(T=3, shape=(2,))
    ref = neuron.LIFNode(step_mode="m", backend="torch")(x_seq)
    monkeypatch.setitem(neuron.AUTO_BACKENDS, "cpu", "cupy")  # CPU tensors stand in for CUDA ones
    monkeypatch.setattr(neuron, "_AUTO", {})
    monkeypatch.setattr(neuron, "_UNAVAILABLE", set())
    monkeypatch.setattr(cuda_kernels, "is_available", lambda: False)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # unavailable: the torch path, silently
        assert torch.equal(neuron.LIFNode(step_mode="m")(x_seq), ref)
    calls = []

    def fake_node_multi_step(node, x):
        calls.append(tuple(x.shape))
        return node._multi_step_torch(x)

    monkeypatch.setattr(cuda_kernels, "node_multi_step", fake_node_multi_step)
    monkeypatch.setattr(cuda_kernels, "is_available", lambda: True)
    monkeypatch.setattr(neuron, "_AUTO", {})
    assert torch.equal(neuron.LIFNode(step_mode="m")(x_seq), ref)
    if_ref = neuron.IFNode(step_mode="m", backend="torch")(x_seq)
    assert torch.equal(neuron.IFNode(step_mode="m")(x_seq), if_ref)
    assert calls == [(3, 2), (3, 2)]
    neuron.ParametricLIFNode(step_mode="m")(x_seq)  # no cupy backend registered for PLIF
    assert len(calls) == 2


def test_register_backend_bad_arguments():
    with pytest.raises(ValueError, match="name"):
        neuron.register_multi_step_backend(neuron.LIFNode, "torch", lambda n, x: x)
    with pytest.raises(ValueError, match="name"):
        neuron.register_single_step_backend(neuron.LIFNode, "auto", lambda n, x: x)
    with pytest.raises(TypeError, match="fn"):
        neuron.register_single_step_backend(neuron.LIFNode, "x", 3)
    with pytest.raises(TypeError, match="node_cls"):
        neuron.register_multi_step_backend(nn.Linear, "x", lambda n, x: x)
    with pytest.raises(TypeError, match="fn"):
        neuron.register_multi_step_backend(neuron.LIFNode, "x", None)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("cls", ALL_NODES)
def test_cuda_matches_cpu(cls):
    x_seq = inputs(T=5, shape=(3, 4), dtype=torch.float32)
    cpu = cls(step_mode="m", store_v_seq=True)
    gpu = cls(step_mode="m", store_v_seq=True).cuda()
    s_cpu = cpu(x_seq)
    s_gpu = gpu(x_seq.cuda())
    assert s_gpu.device.type == "cuda" and gpu.v.device.type == "cuda"
    assert torch.equal(s_gpu.cpu(), s_cpu)
    torch.testing.assert_close(gpu.v_seq.cpu(), cpu.v_seq, rtol=1e-5, atol=1e-6)


# ----------------------------------------------------------------------------- bad input

BAD_CONSTRUCTION = [
    (neuron.LIFNode, {"tau": 1.0}, ValueError, "tau"),
    (neuron.LIFNode, {"tau": 0.5}, ValueError, "tau"),
    (neuron.LIFNode, {"tau": float("nan")}, ValueError, "tau"),
    (neuron.LIFNode, {"tau": float("inf")}, ValueError, "tau"),
    (neuron.LIFNode, {"tau": "2.0"}, TypeError, "tau"),
    (neuron.LIFNode, {"tau": True}, TypeError, "tau"),
    (neuron.LIFNode, {"decay_input": 1}, TypeError, "decay_input"),
    (neuron.LIFNode, {"v_threshold": float("nan")}, ValueError, "v_threshold"),
    (neuron.LIFNode, {"v_threshold": "1"}, TypeError, "v_threshold"),
    (neuron.LIFNode, {"v_threshold": 0.0}, ValueError, "v_threshold.*v_reset"),
    (neuron.IFNode, {"v_threshold": 0.5, "v_reset": 0.8}, ValueError, "v_threshold.*v_reset"),
    (neuron.IFNode, {"v_reset": float("-inf")}, ValueError, "v_reset"),
    (neuron.IFNode, {"v_reset": "0"}, TypeError, "v_reset"),
    (neuron.IFNode, {"detach_reset": 1}, TypeError, "detach_reset"),
    (neuron.IFNode, {"surrogate_function": "ATan"}, TypeError, "surrogate_function"),
    (neuron.IFNode, {"store_v_seq": "yes"}, TypeError, "store_v_seq"),
    (neuron.IFNode, {"step_mode": "x"}, ValueError, "step_mode"),
    (neuron.LIFNode, {"backend": "cuda"}, ValueError, r"backend.*'torch'"),
    (neuron.ParametricLIFNode, {"backend": "cupy"}, ValueError, r"backend.*'torch'"),
    (neuron.ParametricLIFNode, {"init_tau": 1.0}, ValueError, "init_tau"),
    (neuron.ParametricLIFNode, {"init_tau": "2"}, TypeError, "init_tau"),
    (neuron.ParametricLIFNode, {"decay_input": None}, TypeError, "decay_input"),
    (neuron.QIFNode, {"tau": 1.0}, ValueError, "tau"),
    (neuron.QIFNode, {"a0": 0.0}, ValueError, "a0"),
    (neuron.QIFNode, {"v_c": -0.5}, ValueError, "v_c.*v_rest"),
    (neuron.QIFNode, {"v_rest": -0.5}, ValueError, "v_rest.*v_reset"),
    (neuron.QIFNode, {"v_c": float("nan")}, ValueError, "v_c"),
    (neuron.QIFNode, {"v_reset": 1.5}, ValueError, "v_threshold.*v_reset"),
    (neuron.EIFNode, {"delta_T": 0.0}, ValueError, "delta_T"),
    (neuron.EIFNode, {"delta_T": "1"}, TypeError, "delta_T"),
    (neuron.EIFNode, {"theta_rh": float("nan")}, ValueError, "theta_rh"),
    (neuron.EIFNode, {"v_rest": -0.2}, ValueError, "v_rest.*v_reset"),
    (neuron.EIFNode, {"tau": 0.9}, ValueError, "tau"),
    (neuron.IzhikevichNode, {"tau": 1.0}, ValueError, "tau"),
    (neuron.IzhikevichNode, {"tau_w": 1.0}, ValueError, "tau_w"),
    (neuron.IzhikevichNode, {"a0": -1.0}, ValueError, "a0"),
    (neuron.IzhikevichNode, {"v_c": -0.2}, ValueError, "v_c.*v_rest"),
    (neuron.IzhikevichNode, {"a": "x"}, TypeError, "^a must"),
    (neuron.IzhikevichNode, {"b": float("inf")}, ValueError, "^b must"),
    (neuron.IzhikevichNode, {"w_rest": None}, TypeError, "w_rest"),
    (neuron.OTTTLIFNode, {"tau": 1.0}, ValueError, "tau"),
]


@pytest.mark.parametrize(("cls", "kwargs", "exc", "match"), BAD_CONSTRUCTION)
def test_bad_construction(cls, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        cls(**kwargs)


def test_error_message_names_value_and_range():
    with pytest.raises(ValueError, match=r"tau must be a finite real number > 1, got 0\.5"):
        neuron.LIFNode(tau=0.5)
    with pytest.raises(TypeError, match=r"tau must be .* got str 'fast'"):
        neuron.LIFNode(tau="fast")


BAD_ASSIGNMENT = [
    (neuron.LIFNode, "tau", 1.0, ValueError),
    (neuron.LIFNode, "tau", "slow", TypeError),
    (neuron.LIFNode, "v_threshold", -0.5, ValueError),
    (neuron.LIFNode, "v_threshold", float("nan"), ValueError),
    (neuron.LIFNode, "v_reset", 2.0, ValueError),
    (neuron.LIFNode, "v_reset", "0", TypeError),
    (neuron.LIFNode, "detach_reset", "no", TypeError),
    (neuron.LIFNode, "decay_input", 0, TypeError),
    (neuron.LIFNode, "surrogate_function", 3, TypeError),
    (neuron.LIFNode, "backend", "cuda", ValueError),
    (neuron.OTTTLIFNode, "backend", "cupy", ValueError),
    (neuron.LIFNode, "step_mode", "t", ValueError),
    (neuron.LIFNode, "store_v_seq", None, TypeError),
    (neuron.ParametricLIFNode, "tau", 0.9, ValueError),
    (neuron.QIFNode, "a0", 0.0, ValueError),
    (neuron.QIFNode, "v_c", -1.0, ValueError),
    (neuron.EIFNode, "delta_T", -1.0, ValueError),
    (neuron.IzhikevichNode, "tau_w", 0.5, ValueError),
]


@pytest.mark.parametrize(("cls", "name", "value", "exc"), BAD_ASSIGNMENT)
def test_bad_assignment_is_refused_and_value_kept(cls, name, value, exc):
    node = cls()
    before = getattr(node, name)
    with pytest.raises(exc, match=name):
        setattr(node, name, value)
    after = getattr(node, name)
    assert after is before or after == before


def test_valid_assignment_converts_to_float():
    node = neuron.LIFNode()
    node.tau = 3
    node.v_threshold = 2
    assert node.tau == 3.0 and isinstance(node.tau, float)
    assert node.v_threshold == 2.0 and isinstance(node.v_threshold, float)
    node.surrogate_function = surrogate.ATan()
    assert isinstance(node.surrogate_function, surrogate.ATan)


def test_bad_inputs():
    node = neuron.LIFNode()
    with pytest.raises(TypeError, match="x"):
        node(torch.ones(3, dtype=torch.int64))
    with pytest.raises(TypeError, match="x"):
        node([1.0, 2.0])
    node(torch.ones(2, 3))
    with pytest.raises(ValueError, match="reset"):
        node(torch.ones(4, 3))
    node.reset()
    assert node(torch.ones(4, 3)).shape == (4, 3)
    multi = neuron.LIFNode(step_mode="m")
    with pytest.raises(ValueError, match="x_seq"):
        multi(torch.tensor(1.0))
    with pytest.raises(TypeError, match="x_seq"):
        multi(torch.ones(3, 2, dtype=torch.int32))


def test_deepcopy_and_state_dict_round_trip():
    import copy

    node = neuron.ParametricLIFNode(init_tau=3.0, v_reset=None)
    node(torch.rand(2, 3) * 2)
    node.detach()  # torch deep-copies graph leaves only
    clone = copy.deepcopy(node)
    assert torch.equal(clone.v, node.v) and clone.tau == pytest.approx(3.0)
    with pytest.raises(ValueError, match="tau"):
        clone.tau = 1.0
    state = node.state_dict()
    assert set(state) == {"w"}  # memories are not saved
    fresh = neuron.ParametricLIFNode(init_tau=5.0, v_reset=None)
    fresh.load_state_dict(state)
    assert fresh.tau == pytest.approx(3.0)
