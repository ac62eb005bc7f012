"""SPAIC's optimizer / LR-schedule names and the rate regulariser."""

import math

import pytest
import torch

from snnlab.learning import RateRegularizer, make_optimizer, make_scheduler
from snnlab.learning.optim import LR_SCHEDULES, OPTIMIZERS

SPAIC_OPTIMS = {
    "Adam": torch.optim.Adam,
    "AdamW": torch.optim.AdamW,
    "SparseAdam": torch.optim.SparseAdam,
    "Adamax": torch.optim.Adamax,
    "ASGD": torch.optim.ASGD,
    "LBFGS": torch.optim.LBFGS,
    "RMSprop": torch.optim.RMSprop,
    "Rpop": torch.optim.Rprop,
    "SGD": torch.optim.SGD,
    "Adadelta": torch.optim.Adadelta,
    "Adagrad": torch.optim.Adagrad,
}


@pytest.mark.parametrize("name", sorted(SPAIC_OPTIMS))
def test_every_spaic_optimizer_name(name):
    p = torch.nn.Parameter(torch.zeros(3))
    opt = make_optimizer(name, [p], 0.05)
    assert type(opt) is SPAIC_OPTIMS[name]
    assert opt.param_groups[0]["lr"] == 0.05
    assert opt.param_groups[0]["params"][0] is p


def test_optimizer_kwargs_and_step():
    p = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
    opt = make_optimizer("SGD", [p], 0.1, momentum=0.9)
    assert opt.param_groups[0]["momentum"] == 0.9
    p.grad = torch.tensor([1.0, 1.0])
    opt.step()
    torch.testing.assert_close(p.detach(), torch.tensor([0.9, -2.1]))
    assert "Rprop" in OPTIMIZERS


def test_unknown_optimizer_lists_names():
    with pytest.raises(ValueError, match="name") as e:
        make_optimizer("adam", [torch.nn.Parameter(torch.zeros(1))], 0.1)
    assert "Adam" in str(e.value) and "SGD" in str(e.value)


@pytest.mark.parametrize("bad", [-0.1, float("nan"), float("inf")])
def test_bad_lr(bad):
    with pytest.raises(ValueError, match="lr"):
        make_optimizer("SGD", [torch.nn.Parameter(torch.zeros(1))], bad)
    with pytest.raises(TypeError, match="lr"):
        make_optimizer("SGD", [torch.nn.Parameter(torch.zeros(1))], "0.1")


SCHEDULE_KW = {
    "LambdaLR": {"lr_lambda": lambda e: 0.5**e},
    "StepLR": {"step_size": 1, "gamma": 0.5},
    "MultiStepLR": {"milestones": [1], "gamma": 0.5},
    "ExponentialLR": {"gamma": 0.5},
    "CosineAnnealingLR": {"T_max": 4},
    "ReduceLROnPlateau": {},
    "CyclicLR": {"base_lr": 0.01, "max_lr": 0.1, "cycle_momentum": False},
    "CosineAnnealingWarmRestarts": {"T_0": 2},
}


@pytest.mark.parametrize("name", sorted(SCHEDULE_KW))
def test_every_spaic_schedule_name(name):
    assert set(LR_SCHEDULES) == set(SCHEDULE_KW)
    p = torch.nn.Parameter(torch.zeros(1))
    opt = make_optimizer("SGD", [p], 0.1)
    sched = make_scheduler(name, opt, **SCHEDULE_KW[name])
    assert type(sched) is getattr(torch.optim.lr_scheduler, name)


def test_step_schedule_halves_lr():
    p = torch.nn.Parameter(torch.zeros(1))
    opt = make_optimizer("SGD", [p], 0.4)
    sched = make_scheduler("StepLR", opt, step_size=1, gamma=0.5)
    for expected in (0.2, 0.1, 0.05):
        opt.step()
        sched.step()
        assert math.isclose(opt.param_groups[0]["lr"], expected)


def test_scheduler_errors():
    opt = make_optimizer("SGD", [torch.nn.Parameter(torch.zeros(1))], 0.1)
    with pytest.raises(ValueError, match="name") as e:
        make_scheduler("Step", opt)
    assert "StepLR" in str(e.value)
    with pytest.raises(TypeError, match="optimizer"):
        make_scheduler("StepLR", object(), step_size=1)


# ---------------------------------------------------------------- RateRegularizer
def rate_loss_ref(spike_seq, target, alpha):
    counts = torch.zeros_like(spike_seq[0])
    for t in range(spike_seq.shape[0]):
        counts = counts + spike_seq[t]
    total = 0.0
    diff = counts - target
    for v in diff.reshape(-1).tolist():
        total += v * v
    return alpha * math.sqrt(total), diff


@pytest.mark.parametrize("target", [3.0, torch.tensor([1.0, 2.0, 0.0, 4.0])])
def test_rate_regularizer_value_and_grad(target):
    g = torch.Generator().manual_seed(0)
    seq = (torch.rand(6, 2, 4, generator=g) < 0.4).double().requires_grad_()
    alpha = 0.01
    reg = RateRegularizer(target, alpha=alpha)
    loss = reg(seq)
    tgt = torch.as_tensor(target, dtype=torch.float64)
    expect, diff = rate_loss_ref(seq.detach(), tgt, alpha)
    assert math.isclose(loss.item(), expect, rel_tol=1e-12)
    loss.backward()
    # d/ds[t] alpha * ||sum_t s - c*|| = alpha * diff / ||diff||, identical for every t
    norm = math.sqrt(float((diff**2).sum()))
    expect_grad = (alpha * diff / norm).expand_as(seq)
    torch.testing.assert_close(seq.grad, expect_grad, rtol=1e-12, atol=1e-14)


def test_rate_regularizer_step_by_step_matches_sequence():
    g = torch.Generator().manual_seed(1)
    seq = (torch.rand(5, 3, 2, generator=g) < 0.5).double()
    reg = RateRegularizer(1.5, alpha=0.1)
    assert reg.loss() is None
    for t in range(5):
        reg.record(seq[t])
    torch.testing.assert_close(reg.loss(), reg(seq))
    torch.testing.assert_close(reg.count, seq.sum(0))
    reg.reset()
    assert reg.loss() is None and reg.count is None


def test_rate_regularizer_zero_at_target_has_zero_grad():
    seq = torch.ones(2, 1, 3, requires_grad=True)
    reg = RateRegularizer(2.0)
    loss = reg(seq)
    loss.backward()
    assert loss.item() == 0.0
    assert torch.equal(seq.grad, torch.zeros_like(seq))


def test_rate_regularizer_trains_a_rate_toward_target():
    # a bias-driven rate r = sigmoid(b) over T steps: minimising the loss moves T*r to the target
    b = torch.nn.Parameter(torch.zeros(3))
    opt = make_optimizer("Adam", [b], 0.05)
    target = torch.tensor([2.0, 5.0, 8.0])
    reg = RateRegularizer(target, alpha=1.0)
    first = None
    for _ in range(400):
        opt.zero_grad()
        loss = reg(torch.sigmoid(b).expand(10, 1, 3))
        first = loss.item() if first is None else first
        loss.backward()
        opt.step()
    assert loss.item() < 0.05 * first
    torch.testing.assert_close(10 * torch.sigmoid(b.detach()), target, atol=0.2, rtol=0)


@pytest.mark.parametrize(
    ("kw", "exc", "match"),
    [
        ({"target_count": -1.0}, ValueError, "target_count"),
        ({"target_count": float("nan")}, ValueError, "target_count"),
        ({"target_count": torch.tensor([1.0, float("inf")])}, ValueError, "target_count"),
        ({"target_count": "3"}, TypeError, "target_count"),
        ({"target_count": 1.0, "alpha": -1e-3}, ValueError, "alpha"),
        ({"target_count": 1.0, "alpha": float("inf")}, ValueError, "alpha"),
    ],
)
def test_rate_regularizer_bad_args(kw, exc, match):
    with pytest.raises(exc, match=match):
        RateRegularizer(**kw)


def test_rate_regularizer_bad_inputs():
    reg = RateRegularizer(1.0)
    with pytest.raises(ValueError, match="spike_seq"):
        reg(torch.ones(3))
    reg.record(torch.ones(2, 3))
    with pytest.raises(ValueError, match="spikes"):
        reg.record(torch.ones(3, 3))
