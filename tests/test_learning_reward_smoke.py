"""Reward-learning smoke test: an mSTDP network learns to make a chosen output neuron fire most.

A fixed input pattern (12 Poisson inputs with fixed rates) drives a Linear(12 -> 3) layer and LIF
neurons. At every time step the reward is ``s_target - max(s_others)`` of the previous step's output
spikes (per sample): +1 when the chosen neuron fires and no other does, -1 when another fires and it
does not. The chosen neuron is the one that fires least before learning; within a bounded number of
training episodes it must fire clearly most (over 1.5x any other) with learning switched off.
Everything is drawn from a seeded generator, so the test is deterministic.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from snnlab import functional
from snnlab.learning import MSTDPLearner
from snnlab.neuron import LIFNode

N_IN, N_OUT, BATCH, T, LR, MAX_EPISODES = 12, 3, 2, 25, 0.05, 20


def run_episode(fc, sn, rates, gen, target=None, learner=None, opt=None, sign=1.0) -> torch.Tensor:
    """One episode of T steps; returns the spike count per output neuron (summed over the batch)."""
    functional.reset_net(sn)
    counts = torch.zeros(N_OUT)
    prev = None
    others = [j for j in range(N_OUT) if j != target] if target is not None else []
    for _ in range(T):
        x = (torch.rand(BATCH, N_IN, generator=gen) < rates).float()
        with torch.no_grad():
            y = sn(fc(x))
        counts += y.sum(0)
        if learner is not None:
            # the reward of this call meets the eligibility of the previous step: judge that step's spikes
            reward = torch.zeros(BATCH) if prev is None else prev[:, target] - prev[:, others].amax(1)
            opt.zero_grad()
            learner.step(sign * reward)
            opt.step()
            with torch.no_grad():
                fc.weight.clamp_(0.0, 1.0)
        prev = y
    return counts


@pytest.mark.parametrize("seed", [0, 3, 17])
def test_mstdp_makes_chosen_neuron_fire_most(seed):
    gen = torch.Generator().manual_seed(seed)
    rates = torch.rand(N_IN, generator=gen) * 0.6 + 0.1
    fc = nn.Linear(N_IN, N_OUT, bias=False)
    with torch.no_grad():
        fc.weight.copy_(torch.rand(N_OUT, N_IN, generator=gen) * 0.4 + 0.1)
    sn = LIFNode(tau=2.0)
    before = sum(run_episode(fc, sn, rates, gen) for _ in range(3))
    target = int(before.argmin())
    others = [j for j in range(N_OUT) if j != target]

    def wins(counts: torch.Tensor) -> bool:
        return bool(counts[target] > 1.5 * counts[others].max() and counts[target] >= 6)

    assert not wins(before)
    one = lambda w: 1.0  # noqa: E731  additive mSTDP (weights stay in [0, 1] by clamping)
    learner = MSTDPLearner("s", BATCH, fc, sn, 2.0, 2.0, one, one)
    opt = torch.optim.SGD(fc.parameters(), lr=LR)
    learned_at = None
    for episode in range(MAX_EPISODES):
        learner.reset()
        run_episode(fc, sn, rates, gen, target, learner, opt)
        learner.disable()
        counts = run_episode(fc, sn, rates, gen) + run_episode(fc, sn, rates, gen)
        learner.enable()
        if wins(counts):
            learned_at = episode
            break
    assert learned_at is not None, f"target {target} never fired most; last counts {counts.tolist()}"
    assert fc.weight.grad is not None and fc.bias is None


def test_flipped_reward_does_not_teach_the_chosen_neuron():
    """Control: with the reward's sign flipped the chosen neuron is silenced, not promoted."""
    gen = torch.Generator().manual_seed(3)
    rates = torch.rand(N_IN, generator=gen) * 0.6 + 0.1
    fc = nn.Linear(N_IN, N_OUT, bias=False)
    with torch.no_grad():
        fc.weight.copy_(torch.rand(N_OUT, N_IN, generator=gen) * 0.4 + 0.1)
    sn = LIFNode(tau=2.0)
    before = sum(run_episode(fc, sn, rates, gen) for _ in range(3))
    target = int(before.argmin())
    w_target0 = fc.weight[target].sum().item()
    learner = MSTDPLearner("s", BATCH, fc, sn, 2.0, 2.0, lambda w: 1.0, lambda w: 1.0)
    opt = torch.optim.SGD(fc.parameters(), lr=LR)
    for _ in range(5):
        learner.reset()
        run_episode(fc, sn, rates, gen, target, learner, opt, sign=-1.0)
    assert fc.weight[target].sum().item() < w_target0
