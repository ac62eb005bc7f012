"""snnlab.layer containers: MultiStepContainer, SeqToANNContainer, StepModeContainer."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from snnlab import base, functional, layer


class Accumulator(base.MemoryModule):
    """Test module with state: s[t] = 0.5 * s[t-1] + x[t]."""

    def __init__(self):
        super().__init__()
        self.register_memory("s", 0.0)

    def single_step_forward(self, x):
        self.s = 0.5 * self.s + x
        return self.s


def accumulate(x_seq):
    out, s = [], torch.zeros_like(x_seq[0])
    for t in range(x_seq.shape[0]):
        s = 0.5 * s + x_seq[t]
        out.append(s)
    return torch.stack(out)


def test_multi_step_container_runs_step_by_step():
    torch.manual_seed(0)
    lin = nn.Linear(3, 2)
    net = layer.MultiStepContainer(lin, Accumulator())
    x = torch.randn(4, 2, 3, requires_grad=True)
    y = net(x)
    expected = accumulate(torch.stack([x[t] @ lin.weight.T + lin.bias for t in range(4)]))
    torch.testing.assert_close(y, expected, atol=1e-6, rtol=1e-5)
    y.sum().backward()
    assert x.grad is not None and lin.weight.grad is not None
    functional.reset_net(net)
    assert net[1].s == 0.0


def test_seq_to_ann_container_folds_time_into_batch():
    torch.manual_seed(0)
    bn = nn.BatchNorm1d(3)
    net = layer.SeqToANNContainer(nn.Linear(4, 3), bn)
    x = torch.randn(5, 2, 4)
    y = net(x)
    z = x.reshape(10, 4) @ net[0].weight.T + net[0].bias
    mean, var = z.mean(0), z.var(0, unbiased=False)
    expected = ((z - mean) / torch.sqrt(var + bn.eps)).reshape(5, 2, 3)
    torch.testing.assert_close(y, expected, atol=1e-5, rtol=1e-5)
    assert net.step_mode == "m"


@pytest.mark.parametrize("stateful", [True, False])
def test_step_mode_container_both_modes(stateful):
    torch.manual_seed(0)
    lin = nn.Linear(3, 3)
    modules = (lin, Accumulator()) if stateful else (lin, nn.ReLU())
    net = layer.StepModeContainer(stateful, *modules)
    x = torch.randn(4, 2, 3)
    z = torch.stack([x[t] @ lin.weight.T + lin.bias for t in range(4)])
    expected = accumulate(z) if stateful else torch.relu(z)
    y_s = torch.stack([net(x[t]) for t in range(4)])
    torch.testing.assert_close(y_s, expected, atol=1e-6, rtol=1e-5)
    functional.reset_net(net)
    net.step_mode = "m"
    torch.testing.assert_close(net(x), expected, atol=1e-6, rtol=1e-5)
    assert f"stateful={stateful}" in repr(net)


def test_set_step_mode_keeps_inner_modes():
    inner = layer.Conv2d(1, 1, 3)
    seq = layer.SeqToANNContainer(layer.Linear(2, 2))
    net = nn.Sequential(layer.StepModeContainer(False, inner), seq, layer.Linear(2, 2))
    for cls in (layer.StepModeContainer, layer.SeqToANNContainer, layer.MultiStepContainer):
        assert cls.keeps_inner_step_mode is True
    functional.set_step_mode(net, "m")
    assert net[0].step_mode == "m"
    assert inner.step_mode == "s"
    assert seq[0].step_mode == "s"
    assert net[2].step_mode == "m"


def test_children_in_multi_step_mode_are_refused():
    for cls in (layer.MultiStepContainer, layer.SeqToANNContainer):
        with pytest.raises(ValueError, match=r"step_mode='s'"):
            cls(layer.Linear(2, 2, step_mode="m"))
    with pytest.raises(ValueError, match=r"step_mode='s'"):
        layer.StepModeContainer(True, layer.Linear(2, 2, step_mode="m"))


def test_stateful_must_be_bool():
    with pytest.raises(TypeError, match="stateful"):
        layer.StepModeContainer("yes", nn.ReLU())


def test_containers_refuse_wrong_rank_and_single_step_mode():
    with pytest.raises(ValueError, match="x_seq"):
        layer.SeqToANNContainer(nn.ReLU())(torch.zeros(3))
    with pytest.raises(ValueError, match="x_seq"):
        layer.MultiStepContainer(nn.ReLU())(torch.zeros(3))
    with pytest.raises(ValueError, match="step_mode"):
        layer.SeqToANNContainer(nn.ReLU()).step_mode = "s"
    net = layer.StepModeContainer(False, nn.ReLU())
    net.step_mode = "m"
    with pytest.raises(ValueError, match="x_seq"):
        net(torch.zeros(3))
