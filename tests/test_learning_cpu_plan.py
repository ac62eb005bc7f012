"""The learners' fused CPU step keeps objects between steps (snnlab.learning.stdp_cpu.CpuPlan).

Every test runs one script of steps twice, with the fused kernel and with the torch path (the kernel
switched off), and changes something between steps that the kept objects depend on: ``tau``, the
scale, the weight tensor or its storage, the grad, the dtype, the batch size, ``f_pre`` / ``f_post``,
the memories. Both runs must give the same grads, returned ``delta_w``, traces and eligibility.
"""

from __future__ import annotations

import copy
import pickle
from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch import nn

from snnlab.kernels import plasticity_cpu as K
from snnlab.learning import MSTDPLearner, STDPLearner
from snnlab.learning import stdp as stdp_module

pytestmark = pytest.mark.skipif(not K.available(), reason="numba is not installed")

N_IN, N_OUT, STEPS = 12, 9, 8
TOL = {torch.float64: {"atol": 1e-12, "rtol": 0.0}, torch.float32: {"atol": 1e-6, "rtol": 1e-5}}


class Null(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def identity(w: torch.Tensor) -> torch.Tensor:
    return w


def half(w: torch.Tensor) -> float:
    return 0.5


class Run:
    """One learner, its synapse and optimizer, driven step by step with recorded spikes."""

    def __init__(self, rule: str, batch: int, dtype: torch.dtype, f: Callable) -> None:
        torch.manual_seed(0)
        self.fc = nn.Linear(N_IN, N_OUT, bias=False).to(dtype)
        self.rule = rule
        if rule == "stdp":
            self.learner: Any = STDPLearner("s", self.fc, Null(), 3.0, 4.0, f, f)
        else:
            self.learner = MSTDPLearner("s", batch, self.fc, Null(), 3.0, 4.0, f, f)
        self.opt = torch.optim.SGD(self.fc.parameters(), lr=0.1)
        self.batch, self.dtype, self.spike_dtype = batch, dtype, dtype
        self.on_grad, self.scale, self.unbatched = True, 1.0, False
        self.gen = torch.Generator().manual_seed(1)

    def step(self) -> list[Any]:
        """One time step of random spikes and reward; what it produced (cloned)."""
        shape = () if self.unbatched else (self.batch,)
        x = torch.rand(*shape, N_IN, generator=self.gen) < 0.3
        y = torch.rand(*shape, N_OUT, generator=self.gen) < 0.3
        reward = torch.randn(self.batch, generator=self.gen).to(self.dtype)
        learner = self.learner
        learner.in_spike_monitor.records.append(x.to(self.spike_dtype))
        learner.out_spike_monitor.records.append(y.to(self.spike_dtype))
        with torch.no_grad():
            if self.rule == "stdp":
                out = learner.step(on_grad=self.on_grad, scale=self.scale)
            else:
                out = learner.step(reward, on_grad=self.on_grad, scale=self.scale)
        grad = self.fc.weight.grad
        result = [out, None if grad is None else grad.clone(), learner.trace_pre, learner.trace_post]
        if self.rule == "mstdp":
            result.append(learner.eligibility)
        if self.on_grad:
            self.opt.step()
        return [r.clone() if isinstance(r, torch.Tensor) else r for r in result]


Script = Callable[[int, Run], None]


def run_script(rule: str, script: Script, *, fused: bool, batch: int = 3, dtype=torch.float64, f=identity):
    """The outputs of every step of ``script`` (called before each step), fused kernel on or off."""
    calls = []
    real_step = K.fused_step
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(K, "fused_step", lambda *a, **k: calls.append(1) or real_step(*a, **k))
        if not fused:
            mp.setattr(stdp_module, "_kernel_module", False)
        run = Run(rule, batch, dtype, f)
        outputs = []
        for k in range(STEPS):
            script(k, run)
            outputs.append(run.step())
    assert bool(calls) == fused
    return outputs


def assert_same(rule: str, script: Script, **kw: Any) -> None:
    fused = run_script(rule, script, fused=True, **kw)
    reference = run_script(rule, script, fused=False, **kw)
    for k, (a, b) in enumerate(zip(fused, reference)):
        for name, u, v in zip(("returned", "grad", "trace_pre", "trace_post", "eligibility"), a, b):
            assert (u is None) == (v is None), (k, name)
            if u is not None:
                where = f"step {k}, {name}"
                torch.testing.assert_close(u, v, **TOL[u.dtype], msg=lambda m, where=where: f"{where}: {m}")


RULES = ["stdp", "mstdp"]


@pytest.mark.parametrize("rule", RULES)
def test_tau_changes_between_steps(rule):
    def script(k: int, run: Run) -> None:
        if k == 3:
            run.learner.tau_pre = 7.0
        if k == 5:
            run.learner.tau_post = 1.5

    assert_same(rule, script)


@pytest.mark.parametrize("rule", RULES)
def test_scale_and_on_grad_change_between_steps(rule):
    def script(k: int, run: Run) -> None:
        run.scale = [1.0, 0.5, 2.0, -1.0, 0.25, 1.0, 3.0, 1.0][k]
        run.on_grad = k not in (3, 4)

    assert_same(rule, script)


@pytest.mark.parametrize("rule", RULES)
def test_weight_tensor_replaced_or_its_storage_swapped(rule):
    def script(k: int, run: Run) -> None:
        if k == 3:  # a new parameter object (and a new optimizer for it)
            run.fc.weight = nn.Parameter(run.fc.weight.detach() * 0.5 + 0.1)
            run.opt = torch.optim.SGD(run.fc.parameters(), lr=0.1)
        if k == 5:  # same parameter object, new storage
            run.fc.weight.data = run.fc.weight.data.clone() - 0.2
        if k == 6:  # same storage, written in place
            with torch.no_grad():
                run.fc.weight.mul_(-1.0)

    assert_same(rule, script)


@pytest.mark.parametrize("rule", RULES)
def test_grad_set_to_none_replaced_or_zeroed(rule):
    def script(k: int, run: Run) -> None:
        if k == 2:
            run.opt.zero_grad(set_to_none=True)
        if k == 4:
            run.fc.weight.grad = torch.full_like(run.fc.weight, 0.3)
        if k == 6:
            run.opt.zero_grad(set_to_none=False)

    assert_same(rule, script)


@pytest.mark.parametrize("rule", RULES)
def test_dtype_change_after_reset(rule):
    def script(k: int, run: Run) -> None:
        if k == 4:
            run.learner.reset()
            run.fc.float()
            run.opt = torch.optim.SGD(run.fc.parameters(), lr=0.1)
            run.dtype = torch.float32

    assert_same(rule, script)


@pytest.mark.parametrize("rule", RULES)
def test_batch_size_change_after_reset(rule):
    def script(k: int, run: Run) -> None:
        if k == 4:
            run.learner.reset()
            run.batch = 5

    assert_same(rule, script)


@pytest.mark.parametrize("fused", [True, False])
def test_batch_size_change_without_reset_raises(fused):
    def script(k: int, run: Run) -> None:
        if k == 3:
            run.batch = 2

    with pytest.raises(ValueError, match="batch size"):
        run_script("mstdp", script, fused=fused)


@pytest.mark.parametrize("rule", RULES)
def test_modulation_switches_between_weight_and_constant(rule):
    def script(k: int, run: Run) -> None:
        f = half if k in (3, 4) else identity
        run.learner.f_pre = run.learner.f_post = f

    assert_same(rule, script)


def soft_bound(w: torch.Tensor) -> torch.Tensor:
    return 1.0 - w


def scaled(w: torch.Tensor) -> torch.Tensor:
    return 0.5 * w


def column_means(w: torch.Tensor) -> torch.Tensor:
    return w.mean(0)  # [n_in]: broadcast over the rows


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("rule", RULES)
def test_modulation_tensors_other_than_the_weight(rule, dtype):
    """``f`` returning new ``[n_out, n_in]`` tensors (soft bounds): the kernel reads them, mixed with
    the weight itself and a constant; mSTDP applies each step's tensors at the next reward while the
    optimizer moves the weight. A broadcast ``[n_in]`` result takes the torch path for its step."""
    modulations = {0: (soft_bound, scaled), 1: (soft_bound, identity), 2: (scaled, half)}
    modulations[5] = (column_means, scaled)

    def script(k: int, run: Run) -> None:
        run.learner.f_post, run.learner.f_pre = modulations.get(k, (soft_bound, soft_bound))

    calls = []
    real = K.fused_step
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(K, "fused_step", lambda *a, **k: calls.append(1) or real(*a, **k))
        assert_same(rule, script, dtype=dtype)
    # every step but the broadcast one (mSTDP: and the next, whose reward applies its eligibility)
    assert len(calls) == STEPS - (1 if rule == "stdp" else 2)


@pytest.mark.parametrize("rule", RULES)
def test_memories_replaced_from_outside_or_reset(rule):
    def script(k: int, run: Run) -> None:
        learner = run.learner
        if k == 2:
            learner.trace_pre = learner.trace_pre.clone() * 0.5
        if k == 3 and rule == "mstdp":  # another eligibility: a copy with the pre trace factor halved
            g_post, g_pre, p = copy.deepcopy(learner._eligibility_factors)
            learner._eligibility_factors = (g_post, g_pre, p._replace(trace_pre=p.trace_pre * 0.5))
        if k == 5:
            learner.reset()
        if k == 6:
            learner.trace_post = 0.25

    assert_same(rule, script)


@pytest.mark.parametrize("rule", RULES)
def test_spike_dtype_and_unbatched_spikes(rule):
    def script(k: int, run: Run) -> None:
        run.spike_dtype = torch.bool if k in (2, 5) else run.dtype

    assert_same(rule, script)

    def unbatched(k: int, run: Run) -> None:
        run.unbatched = True

    assert_same(rule, unbatched, batch=1)


@pytest.mark.parametrize("rule", RULES)
def test_plan_is_kept_while_nothing_changes_and_rebuilt_for_a_new_weight(rule):
    run = Run(rule, 3, torch.float64, identity)
    run.step()
    plan = run.learner.__dict__["_plan"]
    for _ in range(3):
        run.step()
        assert run.learner.__dict__["_plan"] is plan
    run.fc.weight = nn.Parameter(run.fc.weight.detach().clone())
    run.opt = torch.optim.SGD(run.fc.parameters(), lr=0.1)
    run.step()
    assert run.learner.__dict__["_plan"] is not plan
    assert run.learner.__dict__["_plan"].weight is run.fc.weight


def test_a_plan_is_never_copied():
    """Its arrays are views of the learner's tensors; a copy would write into copies of them."""
    run = Run("mstdp", 3, torch.float64, identity)
    run.step()
    plan = run.learner.__dict__["_plan"]
    assert copy.deepcopy(plan) is None
    assert pickle.loads(pickle.dumps(plan)) is None
