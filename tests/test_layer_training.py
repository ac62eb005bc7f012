"""A small convolutional SNN built from snnlab.layer trains end to end in multi-step mode."""

from __future__ import annotations

import torch
from torch import nn

from snnlab import functional, layer, neuron, surrogate


def build_net() -> nn.Sequential:
    return nn.Sequential(
        layer.Conv2d(1, 4, 3, padding=1, bias=False),
        layer.BatchNorm2d(4),
        neuron.LIFNode(tau=2.0, surrogate_function=surrogate.ATan()),
        layer.MaxPool2d(2),
        layer.Flatten(),
        layer.Linear(4 * 4 * 4, 3),
        neuron.LIFNode(tau=2.0, surrogate_function=surrogate.ATan()),
    )


def test_conv_snn_trains_in_multi_step_mode():
    torch.manual_seed(0)
    T, N = 4, 12
    net = build_net()
    functional.set_step_mode(net, "m")
    x = torch.rand(T, N, 1, 8, 8) * 2.0
    labels = torch.arange(N) % 3
    target = nn.functional.one_hot(labels, 3).float()
    opt = torch.optim.Adam(net.parameters(), lr=0.05)
    losses = []
    for _ in range(15):
        out = net(x)
        assert out.shape == (T, N, 3)
        loss = nn.functional.mse_loss(out.mean(0), target)
        opt.zero_grad()
        loss.backward()
        assert net[0].weight.grad is not None and net[0].weight.grad.abs().sum() > 0
        opt.step()
        functional.reset_net(net)
        losses.append(loss.item())
    assert min(losses[-5:]) < losses[0] - 0.1


def test_conv_snn_single_step_matches_multi_step_in_eval():
    torch.manual_seed(1)
    T, N = 3, 2
    net = build_net().eval()
    x = torch.rand(T, N, 1, 8, 8) * 3.0
    functional.set_step_mode(net, "m")
    y_m = net(x)
    functional.reset_net(net)
    functional.set_step_mode(net, "s")
    y_s = torch.stack([net(x[t]) for t in range(T)])
    torch.testing.assert_close(y_m, y_s)
