"""Tests for snnlab.monitor: records are compared with values computed directly in the test."""

from __future__ import annotations

import gc
from collections import deque

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from snnlab import monitor
from snnlab.base import MemoryModule

ATOL = 1e-6


class HardIF(MemoryModule):
    """Tiny IF neuron: v += x; s = (v >= 1); v = v * (1 - s); spike grad is straight-through."""

    def __init__(self) -> None:
        super().__init__()
        self.register_memory("v", 0.0)

    def single_step_forward(self, x: torch.Tensor) -> torch.Tensor:
        self.v = self.v + x
        s_hard = (self.v >= 1.0).to(x)
        s = s_hard + self.v - self.v.detach()  # value = hard spike, gradient = 1
        self.v = self.v * (1.0 - s_hard)
        return s


class TwoArgs(nn.Module):
    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return a * b


class TupleOut(nn.Module):
    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor]:
        return (2 * x,)


def make_net(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Linear(5, 4), HardIF(), nn.Linear(4, 3), HardIF())
    with torch.no_grad():
        for p in net.parameters():
            p.abs_()
    return net


def manual_forward(net: nn.Sequential, xs: list[torch.Tensor]) -> dict[str, list]:
    """Run the network's equations by hand over a list of single-step inputs."""
    w1, b1 = net[0].weight, net[0].bias
    w2, b2 = net[2].weight, net[2].bias
    v1 = torch.zeros(1)
    v2 = torch.zeros(1)
    out = {"in1": [], "out1": [], "in3": [], "out3": [], "v1": [], "v3": []}
    for x in xs:
        h1 = x @ w1.T + b1
        v1 = v1 + h1
        s1 = (v1 >= 1.0).float()
        v1 = v1 * (1 - s1)
        h2 = s1 @ w2.T + b2
        v2 = v2 + h2
        s2 = (v2 >= 1.0).float()
        v2 = v2 * (1 - s2)
        out["in1"].append(h1)
        out["out1"].append(s1)
        out["in3"].append(h2)
        out["out3"].append(s2)
        out["v1"].append(v1)
        out["v3"].append(v2)
    return out


def inputs(T: int = 6, N: int = 2, seed: int = 1) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.rand(N, 5, generator=g) for _ in range(T)]


def assert_list_close(got, expected) -> None:
    assert len(got) == len(expected)
    for a, b in zip(got, expected):
        torch.testing.assert_close(a, b, atol=ATOL, rtol=0)


# ---------------------------------------------------------------- output / input
def test_output_monitor_records_outputs_in_order():
    net = make_net()
    mon = monitor.OutputMonitor(net, HardIF)
    xs = inputs()
    with torch.no_grad():
        for x in xs:
            net(x)
    ref = manual_forward(net, xs)
    assert mon.monitored_layers == ["1", "3"]
    assert isinstance(mon.records, list)
    # hooks fire layer by layer, step by step: 1, 3, 1, 3, ...
    expected = [v for pair in zip(ref["out1"], ref["out3"]) for v in pair]
    assert_list_close(mon.records, expected)
    assert_list_close(mon["1"], ref["out1"])
    assert_list_close(mon.name_records["3"], ref["out3"])
    torch.testing.assert_close(mon[0], ref["out1"][0])
    assert sum(float(s.sum()) for s in mon.records) > 0  # the test sees actual spikes


def test_input_monitor_records_inputs():
    net = make_net()
    mon = monitor.InputMonitor(net, instance=HardIF)
    xs = inputs()
    with torch.no_grad():
        for x in xs:
            net(x)
    ref = manual_forward(net, xs)
    assert_list_close(mon["1"], ref["in1"])
    assert_list_close(mon["3"], ref["in3"])
    assert len(mon.records) == 2 * len(xs)


def test_input_monitor_multiple_args_recorded_as_tuple():
    m = TwoArgs()
    mon = monitor.InputMonitor(m)
    a, b = torch.arange(3.0), torch.ones(3) * 2
    m(a, b)
    (rec,) = mon.records
    assert isinstance(rec, tuple) and len(rec) == 2
    assert rec[0] is a and rec[1] is b


def test_output_monitor_unpacks_len1_tuple():
    m = TupleOut()
    mon = monitor.OutputMonitor(m)
    x = torch.tensor([1.0, -2.0])
    m(x)
    torch.testing.assert_close(mon[0], torch.tensor([2.0, -4.0]))


def test_monitor_on_single_module_instance_none():
    node = HardIF()
    mon = monitor.OutputMonitor(node)
    assert mon.monitored_layers == [""]
    xs = [torch.tensor([0.6, 1.2]), torch.tensor([0.6, 0.1])]
    for x in xs:
        node(x)
    # v: [0.6, 1.2] -> s=[0,1], v=[0.6, 0]; v: [1.2, 0.1] -> s=[1,0]
    assert_list_close(mon.records, [torch.tensor([0.0, 1.0]), torch.tensor([1.0, 0.0])])
    assert_list_close(mon[""], mon.records)


def test_instance_none_on_container_watches_only_same_type():
    net = make_net()
    mon = monitor.OutputMonitor(net)  # type(net) is Sequential: only the root
    assert mon.monitored_layers == [""]
    x = inputs(T=1)[0]
    with torch.no_grad():
        y = net(x)
    assert len(mon.records) == 1
    torch.testing.assert_close(mon[0], y)


def test_instance_tuple_and_nested_names():
    net = nn.Sequential(nn.Sequential(nn.Linear(2, 2), nn.ReLU()), nn.Linear(2, 1), HardIF())
    mon = monitor.OutputMonitor(net, instance=(nn.Linear, HardIF))
    assert mon.monitored_layers == ["0.0", "1", "2"]
    assert set(mon.name_records) == {"0.0", "1", "2"}


def test_shared_module_listed_once():
    lin = nn.Linear(2, 2)
    net = nn.Sequential(lin, nn.ReLU(), lin)
    mon = monitor.OutputMonitor(net, nn.Linear)
    assert mon.monitored_layers == ["0"]
    x = torch.ones(1, 2)
    with torch.no_grad():
        net(x)
    assert len(mon["0"]) == 2  # one record per call


def test_function_on_output_applied():
    net = make_net()
    mon = monitor.OutputMonitor(net, HardIF, function_on_output=lambda s: s.sum().item())
    xs = inputs()
    with torch.no_grad():
        for x in xs:
            net(x)
    ref = manual_forward(net, xs)
    assert mon["1"] == pytest.approx([float(s.sum()) for s in ref["out1"]])


def test_multi_step_records_whole_sequence():
    node = HardIF()
    node.step_mode = "m"
    mon = monitor.OutputMonitor(node)
    x_seq = torch.tensor([[0.5], [0.6], [0.3], [0.9]])
    node(x_seq)
    (rec,) = mon.records
    # v: .5, 1.1 -> spike, .3, 1.2 -> spike
    torch.testing.assert_close(rec, torch.tensor([[0.0], [1.0], [0.0], [1.0]]))


# ---------------------------------------------------------------- control
def test_enable_disable_clear_remove():
    net = make_net()
    mon = monitor.OutputMonitor(net, HardIF)
    xs = inputs(T=4)
    with torch.no_grad():
        net(xs[0])
        assert len(mon.records) == 2
        mon.disable()
        assert not mon.is_enable()
        net(xs[1])
        assert len(mon.records) == 2
        mon.enable()
        assert mon.is_enable()
        net(xs[2])
        assert len(mon.records) == 4
        mon.clear_recorded_data()
        assert len(mon.records) == 0 and all(len(v) == 0 for v in mon.name_records.values())
        assert mon.monitored_layers == ["1", "3"]
        mon.remove_hooks()
        assert mon.hooks == []
        net(xs[3])
        assert len(mon.records) == 0
    assert all(len(m._forward_hooks) == 0 for m in net.modules())


def test_deleting_monitor_removes_hooks():
    net = make_net()
    mon = monitor.OutputMonitor(net, HardIF)
    assert len(net[1]._forward_hooks) == 1
    del mon
    gc.collect()
    assert len(net[1]._forward_hooks) == 0
    with torch.no_grad():
        net(inputs(T=1)[0])  # no error from a dangling hook


def test_getitem_bad_keys():
    mon = monitor.OutputMonitor(make_net(), HardIF)
    with pytest.raises(KeyError, match="nope"):
        mon["nope"]
    with pytest.raises(TypeError, match="index"):
        mon[1.5]


# ---------------------------------------------------------------- attribute
@pytest.mark.parametrize("pre_forward", [True, False])
def test_attribute_monitor_pre_and_post(pre_forward):
    node = HardIF()
    node.v = torch.zeros(2)
    mon = monitor.AttributeMonitor("v", pre_forward, node, function_on_attribute=lambda v: v.clone())
    xs = [torch.tensor([0.4, 0.7]), torch.tensor([0.4, 0.7]), torch.tensor([0.4, 0.7])]
    expected_pre, expected_post = [], []
    v = torch.zeros(2)
    for x in xs:
        expected_pre.append(v.clone())
        v = v + x
        s = (v >= 1).float()
        v = v * (1 - s)
        expected_post.append(v.clone())
        node(x)
    assert_list_close(mon[""], expected_pre if pre_forward else expected_post)


def test_attribute_monitor_in_network():
    net = make_net()
    mon = monitor.AttributeMonitor("v", False, net, HardIF)
    xs = inputs()
    with torch.no_grad():
        for x in xs:
            net(x)
    ref = manual_forward(net, xs)
    assert_list_close(mon["1"], ref["v1"])
    assert_list_close(mon["3"], ref["v3"])


# ---------------------------------------------------------------- gradients
def test_grad_monitors_record_true_gradients():
    torch.manual_seed(3)
    net = nn.Sequential(nn.Linear(4, 3), nn.Tanh(), nn.Linear(3, 2), nn.Tanh())
    gin = monitor.GradInputMonitor(net, nn.Tanh)
    gout = monitor.GradOutputMonitor(net, nn.Tanh)
    x = torch.randn(2, 4)
    net(x).pow(2).sum().backward()

    # by hand: L = sum(y^2), y = tanh(a2), a2 = W2 h + b2, h = tanh(a1), a1 = W1 x + b1
    w1, b1, w2, b2 = (p.detach() for p in (net[0].weight, net[0].bias, net[2].weight, net[2].bias))
    a1 = x @ w1.T + b1
    h = torch.tanh(a1)
    a2 = h @ w2.T + b2
    y = torch.tanh(a2)
    dy = 2 * y  # dL/dy at the last Tanh output
    da2 = dy * (1 - y**2)  # dL/da2 = grad of the last Tanh input
    dh = da2 @ w2  # dL/dh = grad of the first Tanh output
    da1 = dh * (1 - h**2)

    assert gout.monitored_layers == ["1", "3"]
    # backward visits layer 3 first
    assert_list_close(gout.records, [dy, dh])
    assert_list_close(gin.records, [da2, da1])
    assert_list_close(gin["1"], [da1])
    assert_list_close(gout["3"], [dy])


def test_grad_monitor_agrees_with_tensor_hook():
    node = HardIF()
    node.step_mode = "m"
    mon = monitor.GradInputMonitor(node)
    x_seq = torch.rand(4, 2, 3, requires_grad=True)
    captured = []
    x_seq.register_hook(lambda g: captured.append(g.clone()))
    w = torch.arange(24.0).reshape(4, 2, 3)
    (node(x_seq) * w).sum().backward()
    assert len(mon.records) == 1 and len(captured) == 1
    torch.testing.assert_close(mon[0], captured[0])
    torch.testing.assert_close(mon[0], x_seq.grad)


# ---------------------------------------------------------------- ring buffer
@settings(max_examples=30, deadline=None)
@given(k=st.integers(1, 6), steps=st.integers(0, 12))
def test_ring_buffer_keeps_newest(k, steps):
    node = HardIF()
    mon = monitor.InputMonitor(node, max_records=k)
    xs = [torch.full((2,), float(i)) for i in range(steps)]
    for x in xs:
        node(x)
    assert isinstance(mon.records, deque) and mon.records.maxlen == k
    kept = xs[max(0, steps - k) :]
    assert [float(r[0]) for r in mon.records] == [float(x[0]) for x in kept]
    assert [float(r[0]) for r in mon[""]] == [float(x[0]) for x in kept]


def test_ring_buffer_per_layer_and_pop():
    net = make_net()
    mon = monitor.OutputMonitor(net, HardIF, max_records=3)
    xs = inputs(T=5)
    with torch.no_grad():
        for x in xs:
            net(x)
    ref = manual_forward(net, xs)
    # records: newest 3 of (1,3,1,3,...,1,3) ; per layer: newest 3 of that layer
    assert_list_close(list(mon.records), [ref["out3"][3], ref["out1"][4], ref["out3"][4]])
    assert_list_close(mon["1"], ref["out1"][2:])
    assert_list_close(mon["3"], ref["out3"][2:])
    first = mon.records.pop(0)
    torch.testing.assert_close(first, ref["out3"][3])
    last = mon.records.pop()
    torch.testing.assert_close(last, ref["out3"][4])
    assert len(mon.records) == 1
    mon.clear_recorded_data()
    assert len(mon.records) == 0 and len(mon["1"]) == 0


def test_ring_buffer_pop_middle():
    rb = monitor.RingBuffer([1, 2, 3, 4], maxlen=4)
    assert rb.pop(2) == 3
    assert list(rb) == [1, 2, 4]
    assert rb[-2:] == [2, 4] and rb[0] == 1 and rb[-1] == 4
    rb.extend([5, 6])
    assert list(rb) == [2, 4, 5, 6]  # [1, 2, 4] + [5, 6] exceeds maxlen 4: the oldest (1) is dropped


# ---------------------------------------------------------------- bad input
@pytest.mark.parametrize("bad", [0, -3])
def test_max_records_non_positive(bad):
    with pytest.raises(ValueError, match="max_records"):
        monitor.OutputMonitor(HardIF(), max_records=bad)


@pytest.mark.parametrize("bad", [2.5, "3", True])
def test_max_records_wrong_type(bad):
    with pytest.raises(TypeError, match="max_records"):
        monitor.InputMonitor(HardIF(), max_records=bad)


@pytest.mark.parametrize("bad", ["HardIF", HardIF(), (HardIF, 3)])
def test_instance_wrong(bad):
    with pytest.raises(TypeError, match="instance"):
        monitor.OutputMonitor(make_net(), instance=bad)


def test_callables_validated():
    with pytest.raises(TypeError, match="function_on_output"):
        monitor.OutputMonitor(HardIF(), function_on_output=3)
    with pytest.raises(TypeError, match="function_on_input"):
        monitor.InputMonitor(HardIF(), function_on_input="x")
    with pytest.raises(TypeError, match="function_on_attribute"):
        monitor.AttributeMonitor("v", True, HardIF(), function_on_attribute=None)
    with pytest.raises(TypeError, match="function_on_grad_input"):
        monitor.GradInputMonitor(HardIF(), function_on_grad_input=1)
    with pytest.raises(TypeError, match="function_on_grad_output"):
        monitor.GradOutputMonitor(HardIF(), function_on_grad_output=1)


def test_net_and_attribute_args_validated():
    with pytest.raises(TypeError, match="net"):
        monitor.OutputMonitor("not a module")
    with pytest.raises(TypeError, match="attribute_name"):
        monitor.AttributeMonitor(3, True, HardIF())
    with pytest.raises(TypeError, match="pre_forward"):
        monitor.AttributeMonitor("v", "yes", HardIF())


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_monitors_on_cuda():
    net = make_net().cuda()
    out = monitor.OutputMonitor(net, HardIF, function_on_output=lambda s: s.cpu(), max_records=4)
    xs = inputs()
    with torch.no_grad():
        for x in xs:
            net(x.cuda())
    ref = manual_forward(net.cpu(), xs)
    assert_list_close(out["1"], ref["out1"][-4:])


def test_monitors_on_snnlab_neuron_records_returned_tensors():
    neuron = pytest.importorskip("snnlab.neuron")
    net = nn.Sequential(nn.Linear(3, 4), neuron.LIFNode(), nn.Linear(4, 2), neuron.LIFNode())
    out_mon = monitor.OutputMonitor(net, neuron.LIFNode)
    in_mon = monitor.InputMonitor(net, neuron.LIFNode)
    assert out_mon.monitored_layers == ["1", "3"]
    x = torch.rand(2, 3)
    with torch.no_grad():
        h1 = net[0](x)
        s1 = net[1](h1)
        h2 = net[2](s1)
        s2 = net[3](h2)
    assert [r is t for r, t in zip(out_mon.records, [s1, s2])] == [True, True]
    assert [r is t for r, t in zip(in_mon.records, [h1, h2])] == [True, True]
