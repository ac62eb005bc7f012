"""snnlab.functional: net-wide helpers and sequence folding."""

import logging

import pytest
import torch
from torch import nn

from snnlab import base, functional


class Counter(base.MemoryModule):
    def __init__(self):
        super().__init__()
        self.register_memory("n", 0.0)

    @property
    def supported_backends(self):
        return ("torch", "fast")

    def single_step_forward(self, x):
        self.n = self.n + x
        return self.n


class Holder(nn.Module, base.StepModule):
    """A container that keeps the step mode of what it holds."""

    keeps_inner_step_mode = True

    def __init__(self, inner):
        super().__init__()
        self.inner = inner
        self.step_mode = "s"


def test_reset_net_resets_every_memory_module():
    net = nn.Sequential(Counter(), nn.ReLU(), nn.Sequential(Counter()))
    x = torch.ones(2)
    net(x)
    assert net[0].n.sum() == 2
    functional.reset_net(net)
    assert net[0].n == 0.0 and net[2][0].n == 0.0


def test_set_step_mode_sets_all_but_protected_children():
    inner = Counter()
    net = nn.Sequential(Counter(), Holder(inner))
    functional.set_step_mode(net, "m")
    assert net[0].step_mode == "m"
    assert net[1].step_mode == "m"
    assert inner.step_mode == "s"
    with pytest.raises(ValueError, match="step_mode"):
        functional.set_step_mode(net, "q")


def test_set_backend_sets_supported_and_warns_otherwise(caplog):
    net = nn.Sequential(Counter(), Counter())
    functional.set_backend(net, "fast")
    assert [m.backend for m in net] == ["fast", "fast"]
    with caplog.at_level(logging.WARNING, logger="snnlab.functional"):
        functional.set_backend(net, "cupy")
    assert [m.backend for m in net] == ["fast", "fast"]
    assert "cupy" in caplog.text
    functional.set_backend(net, "torch", instance=nn.ReLU)  # no instance matches: unchanged
    assert net[0].backend == "fast"
    with pytest.raises(TypeError, match="backend"):
        functional.set_backend(net, 3)


def test_detach_net():
    net = nn.Sequential(Counter())
    x = torch.ones(3, requires_grad=True)
    net(x)
    functional.detach_net(net)
    assert not net[0].n.requires_grad


def test_multi_step_forward_equals_loop():
    torch.manual_seed(0)
    x_seq = torch.randn(4, 2, 3)
    lin = nn.Linear(3, 5)
    y = functional.multi_step_forward(x_seq, lin)
    torch.testing.assert_close(y, torch.stack([lin(x_seq[t]) for t in range(4)]))
    seq = [lin, nn.Tanh()]
    y2 = functional.multi_step_forward(x_seq, seq)
    torch.testing.assert_close(y2, torch.stack([torch.tanh(lin(x_seq[t])) for t in range(4)]))
    # stateful single-step module keeps state over t
    c = Counter()
    y3 = functional.multi_step_forward(torch.ones(3, 2), c)
    torch.testing.assert_close(y3, torch.tensor([[1.0, 1.0], [2.0, 2.0], [3.0, 3.0]]))


def test_seq_to_ann_forward_folds_time_into_batch():
    torch.manual_seed(0)
    x_seq = torch.randn(3, 2, 1, 5, 5)
    conv = nn.Conv2d(1, 4, 3)
    y = functional.seq_to_ann_forward(x_seq, conv)
    assert y.shape == (3, 2, 4, 3, 3)
    for t in range(3):
        torch.testing.assert_close(y[t], conv(x_seq[t]))
    y2 = functional.seq_to_ann_forward(x_seq, nn.Sequential(conv, nn.Flatten()))
    assert y2.shape == (3, 2, 36)
    with pytest.raises(ValueError, match="x_seq"):
        functional.seq_to_ann_forward(torch.ones(3), conv)
