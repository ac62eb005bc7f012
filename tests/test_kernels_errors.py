"""Bad input to snnlab.kernels: the exception type and a message that names the argument."""

from __future__ import annotations

import math

import pytest
import torch

import snnlab.kernels as K

X = torch.zeros(2, 3)
V = torch.zeros(2, 3)
XS = torch.zeros(4, 2, 3)
G = torch.zeros(2, 3)
GS = torch.zeros(4, 2, 3)


def lif_fwd(**kw):
    args = {"x": X, "v": V, "v_threshold": 1.0, "v_reset": 0.0, "reciprocal_tau": 0.5, "detach_input": False}
    args.update(kw)
    return K.LIF_hard_reset_forward(*args.values())


def lif_fwd_grad(**kw):
    args = {
        "x": X, "v": V, "v_threshold": 1.0, "v_reset": 0.0, "alpha": 2.0, "detach_reset": False,
        "grad_surrogate_function_index": 0, "reciprocal_tau": 0.5, "detach_input": False,
    }  # fmt: skip
    args.update(kw)
    return K.LIF_hard_reset_forward_with_grad(*args.values())


def lif_fptt(**kw):
    args = {
        "x_seq": XS,
        "v": V,
        "v_threshold": 1.0,
        "v_reset": 0.0,
        "reciprocal_tau": 0.5,
        "detach_input": False,
    }
    args.update(kw)
    return K.LIF_hard_reset_fptt(*args.values())


@pytest.mark.parametrize(
    ("call", "exc", "name"),
    [
        (lambda: lif_fwd(x=[0.0, 1.0]), TypeError, "x"),
        (lambda: lif_fwd(x=torch.zeros(2, 3, dtype=torch.int64)), TypeError, "x"),
        (lambda: lif_fwd(v=torch.zeros(3)), ValueError, "v"),
        (lambda: lif_fwd(v=torch.zeros(2, 3, dtype=torch.float64)), TypeError, "v"),
        (lambda: lif_fwd(v=0.0), TypeError, "v"),
        (lambda: lif_fwd(v_threshold=math.nan), ValueError, "v_threshold"),
        (lambda: lif_fwd(v_threshold="1"), TypeError, "v_threshold"),
        (lambda: lif_fwd(v_threshold=0.0, v_reset=0.5), ValueError, "v_threshold"),
        (lambda: lif_fwd(v_reset=None), TypeError, "v_reset"),
        (lambda: lif_fwd(v_reset=math.inf), ValueError, "v_reset"),
        (lambda: lif_fwd(reciprocal_tau=0.0), ValueError, "reciprocal_tau"),
        (lambda: lif_fwd(reciprocal_tau=1.5), ValueError, "reciprocal_tau"),
        (lambda: lif_fwd(reciprocal_tau=-0.1), ValueError, "reciprocal_tau"),
        (lambda: lif_fwd(reciprocal_tau=math.nan), ValueError, "reciprocal_tau"),
        (lambda: lif_fwd(reciprocal_tau=None), TypeError, "reciprocal_tau"),
        (lambda: lif_fwd(detach_input=1), TypeError, "detach_input"),
        (lambda: lif_fptt(x_seq=torch.tensor(1.0), v=torch.tensor(0.0)), ValueError, "x_seq"),
        (lambda: lif_fptt(x_seq=torch.zeros(0, 2, 3)), ValueError, "x_seq"),
        (lambda: lif_fptt(x_seq=X), ValueError, "v"),  # no T dimension: v does not match x_seq[0]
        (lambda: lif_fwd_grad(alpha=0.0), ValueError, "alpha"),
        (lambda: lif_fwd_grad(alpha=math.inf), ValueError, "alpha"),
        (lambda: lif_fwd_grad(detach_reset="yes"), TypeError, "detach_reset"),
        (lambda: lif_fwd_grad(grad_surrogate_function_index=2), ValueError, "grad_surrogate_function_index"),
        (lambda: lif_fwd_grad(grad_surrogate_function_index=-1), ValueError, "grad_surrogate_function_index"),
        (lambda: lif_fwd_grad(grad_surrogate_function_index=1.0), TypeError, "grad_surrogate_function_index"),
        (
            lambda: lif_fwd_grad(grad_surrogate_function_index=True),
            TypeError,
            "grad_surrogate_function_index",
        ),
        (lambda: K.LIF_backward(G, G, G, torch.zeros(3), 0.5, False), ValueError, "grad_v_to_h"),
        (lambda: K.LIF_backward([0.0], G, G, G, 0.5, False), TypeError, "grad_spike"),
        (lambda: K.LIF_backward(G, G, G, G, 2.0, False), ValueError, "reciprocal_tau"),
        (lambda: K.LIF_bptt(GS, torch.zeros(4, 2, 3), GS, GS, 0.5, False), ValueError, "grad_v_next"),
        (lambda: K.LIF_bptt(GS, G, GS[:2], GS, 0.5, False), ValueError, "grad_s_to_h"),
        (lambda: K.IF_bptt(GS, G, GS, GS.double()), TypeError, "grad_v_to_h"),
        (lambda: K.IF_hard_reset_forward(X, V, 1.0, 2.0), ValueError, "v_reset"),
        (lambda: K.IF_soft_reset_fptt(XS, V, "a"), TypeError, "v_threshold"),
        (lambda: K.IF_hard_reset_fptt_with_grad(XS, V, 1.0, 0.0, -1.0, False, 0), ValueError, "alpha"),
    ],
)
def test_kernel_bad_input(call, exc, name):
    with pytest.raises(exc, match=name):
        call()


def test_surrogate_index_message_lists_allowed_values():
    with pytest.raises(ValueError, match=r"0 \(ATan\), 1 \(Sigmoid\)"):
        lif_fwd_grad(grad_surrogate_function_index=5)
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        lif_fwd(reciprocal_tau=3.0)


def bad_charge(x, v):
    return (v + x).sum()


@pytest.mark.parametrize(
    ("call", "exc", "name"),
    [
        (
            lambda: K.hard_reset_forward_template(X, V, 1.0, 0.0, charge_function=3),
            TypeError,
            "charge_function",
        ),
        (
            lambda: K.soft_reset_fptt_template(XS, V, 1.0, charge_function=bad_charge),
            ValueError,
            "charge_function",
        ),
        (lambda: K.backward_template(G, G, G, G, 0.5), TypeError, "grad_h_to_x"),
        (lambda: K.backward_template(G, G, G, G, grad_h_to_v=torch.zeros(5)), ValueError, "grad_h_to_v"),
        (lambda: K.backward_template(G, G, G, G, grad_h_to_x="a"), TypeError, "grad_h_to_x"),
        (lambda: K.bptt_template(GS, G, GS, GS, grad_h_to_v=torch.zeros(5, 2, 3)), ValueError, "grad_h_to_v"),
        (lambda: K.bptt_template(GS, G, GS, GS, unknown=1), TypeError, "grad_h_to_x"),
        (lambda: K.hard_reset_fptt_with_grad_template(XS, V, 1.0, None, 2.0, False, 0), TypeError, "v_reset"),
        (lambda: K.soft_reset_forward_with_grad_template(X, V, 1.0, 2.0, 0, 0), TypeError, "detach_reset"),
        (lambda: K.LIFStep.apply(X, V, 1.0, 0.0, 2.0, False, 0, 0.0, False), ValueError, "reciprocal_tau"),
        (lambda: K.LIFMultiStep.apply(X, V, 1.0, 0.0, 2.0, False, 0, 0.5, False), ValueError, "v"),
        (lambda: K.IFStep.apply(X, V, 1.0, 0.0, 2.0, False, 7), ValueError, "grad_surrogate_function_index"),
        (lambda: K.IFMultiStep.apply(XS, V, 1.0, 0.0, math.nan, False, 0), ValueError, "alpha"),
    ],
)
def test_template_and_function_bad_input(call, exc, name):
    with pytest.raises(exc, match=name):
        call()


@pytest.mark.parametrize(
    ("make", "exc", "name"),
    [
        (lambda: K.LIFNode(tau=1.0), ValueError, "tau"),
        (lambda: K.LIFNode(tau=0.5), ValueError, "tau"),
        (lambda: K.MultiStepLIFNode(tau=math.nan), ValueError, "tau"),
        (lambda: K.LIFNode(tau="2"), TypeError, "tau"),
        (lambda: K.LIFNode(detach_input=0), TypeError, "detach_input"),
        (lambda: K.IFNode(v_threshold=0.0, v_reset=0.0), ValueError, "v_threshold"),
        (lambda: K.IFNode(v_threshold=math.inf), ValueError, "v_threshold"),
        (lambda: K.IFNode(v_reset="0"), TypeError, "v_reset"),
        (lambda: K.MultiStepIFNode(surrogate_function="Erf"), ValueError, "surrogate_function"),
        (lambda: K.MultiStepIFNode(surrogate_function=0), TypeError, "surrogate_function"),
        (lambda: K.BaseNode(alpha=-1.0), ValueError, "alpha"),
        (lambda: K.BaseNode(detach_reset=None), TypeError, "detach_reset"),
    ],
)
def test_node_bad_parameters(make, exc, name):
    with pytest.raises(exc, match=name):
        make()


def test_node_bad_assignment_and_input():
    node = K.MultiStepLIFNode(tau=2.0)
    with pytest.raises(ValueError, match="tau"):
        node.tau = 0.9
    with pytest.raises(ValueError, match="v_threshold"):
        node.v_threshold = -1.0
    with pytest.raises(ValueError, match="v_reset"):
        node.v_reset = 3.0
    with pytest.raises(ValueError, match=r"ATan.*Sigmoid"):
        node.surrogate_function = "Rect"
    assert node.tau == 2.0 and node.v_threshold == 1.0 and node.surrogate_function == "ATan"  # unchanged
    with pytest.raises(ValueError, match="dv_seq"):
        node(torch.tensor(1.0))
    with pytest.raises(TypeError, match="dv_seq"):
        node(torch.zeros(3, 2, dtype=torch.int32))
    with pytest.raises(TypeError, match="dv"):
        K.LIFNode()("not a tensor")
    node.v_reset = None  # switching to soft reset is allowed
    assert node(torch.ones(2, 3)).shape == (2, 3)
