"""Learning-rule registry: keys of the SPAIC reward / online learners, create, register, namespaces."""

import inspect
import math

import pytest
import torch
from torch import nn

import snnlab.learning as learning
from snnlab.learning import hooked, online_stdp, reward_stdp

MY_KEYS = {
    "rstdp": "RSTDPLearner",
    "rstdpet": "RSTDPETLearner",
    "switch_rstdp": "RewardSwitchSTDPLearner",
    "nearest_online_stdp": "NearestSTDPLearner",
    "full_online_stdp": "FullSTDPLearner",
    "meta_nearest_online_stdp": "MetaNearestSTDPLearner",
}

#: SPAIC's spelling and defaults of each learner's parameters.
DEFAULTS = {
    "rstdp": dict(lr=0.1, tau_plus=20.0, tau_minus=20.0, A_plus=1.0, A_minus=-1.0, dt=1.0),
    "rstdpet": dict(lr=0.1, tau_plus=20.0, tau_minus=20.0, tau_e_trace=25.0, tau_e=25.0, A_plus=1.0,
                    A_minus=-1.0, dt=1.0),
    "switch_rstdp": dict(Apost_pos=5e-3, Apre_pos=-4e-3, Apost_neg=-5e-3, Apre_neg=4e-3, w_min=0.0,
                         w_max=0.1),
    "nearest_online_stdp": dict(Apost=1e-2, Apre=1e-4, w_norm=78.4, w_min=0.0, w_max=1.0),
    "full_online_stdp": dict(Apost=1e-2, Apre=1e-4, w_norm=None, w_min=0.0, w_max=1.0),
    "meta_nearest_online_stdp": dict(Apost=1e-2, Apre=1e-4, w_min=0.0, w_max=1.0),
}

DECAYS = {
    "switch_rstdp": {"pre_decay": 20.0, "post_decay": 20.0},
    "nearest_online_stdp": {"trace_pre": 20.0, "trace_post": 20.0},
    "full_online_stdp": {"trace_decay": 20.0},
    "meta_nearest_online_stdp": {"pre_decay": 30.0, "post_decay": 200.0},
}


class Threshold(nn.Module):
    def forward(self, x):
        return (x > 0.1).to(x.dtype)


@pytest.mark.parametrize("key", sorted(MY_KEYS))
def test_create_builds_every_key_with_spaic_defaults(key):
    fc, sn = nn.Linear(4, 3, bias=False), Threshold()
    learner = learning.create(key, "s", fc, sn)
    assert type(learner).__name__ == MY_KEYS[key]
    assert learning.learning_algorithms[key] is getattr(learning, MY_KEYS[key])
    assert isinstance(learner, hooked.HookedLearner)
    for name, value in DEFAULTS[key].items():
        assert getattr(learner, name) == value, name
    for name, tau in DECAYS.get(key, {}).items():
        assert getattr(learner, name) == pytest.approx(math.exp(-1.0 / tau), rel=1e-15)
    # create forwards the parameters and the step mode
    first = next(iter(DEFAULTS[key]))
    other = learning.create(key, "m", fc, sn, **{first: 0.05})
    assert other.step_mode == "m" and getattr(other, first) == 0.05


def test_unknown_key_lists_known_keys():
    with pytest.raises(ValueError, match="nearest_online_stdp") as info:
        learning.create("no_such_rule", "s", nn.Linear(2, 2), Threshold())
    assert "no_such_rule" in str(info.value)
    for key in MY_KEYS:
        assert key in str(info.value)


def test_register_refuses_duplicates_and_accepts_new_names():
    with pytest.raises(ValueError, match="rstdp"):
        learning.register("rstdp", reward_stdp.RSTDPLearner)

    class Custom(online_stdp.FullSTDPLearner):
        pass

    name = "test_registry_custom_rule"
    try:
        assert learning.register(name, Custom) is Custom
        assert isinstance(learning.create(name, "s", nn.Linear(2, 2), Threshold()), Custom)
        with pytest.raises(ValueError, match=name):
            learning.register(name, Custom)
    finally:
        learning.learning_algorithms.pop(name, None)


def test_two_learners_of_one_class_do_not_share_constants():
    for key in MY_KEYS:
        a = learning.create(key, "s", nn.Linear(3, 2), Threshold())
        b = learning.create(key, "s", nn.Linear(3, 2), Threshold())
        name = next(iter(DEFAULTS[key]))
        setattr(a, name, 0.0123)
        assert getattr(b, name) == DEFAULTS[key][name]
        assert a.hyper_parameters() != b.hyper_parameters()
        assert a._param_specs is not b._param_specs
        assert a.records is not b.records


def test_module_all_lists_exactly_the_public_classes():
    for module in (hooked, reward_stdp, online_stdp):
        public = {
            name for name, obj in vars(module).items()
            if inspect.isclass(obj) and obj.__module__ == module.__name__ and not name.startswith("_")
        }
        assert set(module.__all__) == public, module.__name__
        for name in module.__all__:
            assert getattr(learning, name) is getattr(module, name)


@pytest.mark.parametrize("key", sorted(MY_KEYS))
@pytest.mark.parametrize("step_mode", ["s", "m"])
def test_learners_run_with_a_real_neuron(key, step_mode):
    neuron = pytest.importorskip("snnlab.neuron")
    torch.manual_seed(0)
    fc = nn.Linear(6, 4, bias=False)
    nn.init.uniform_(fc.weight, 0.0, 1.0)
    sn = neuron.LIFNode(tau=2.0, v_threshold=0.5, step_mode=step_mode)
    learner = learning.create(key, step_mode, fc, sn)
    x = (torch.rand(5, 2, 6) < 0.6).float()
    outs = [sn(fc(x[t])) for t in range(5)] if step_mode == "s" else [sn(fc(x))]
    assert len(learner.records) == len(outs)
    inputs = list(x.unbind(0)) if step_mode == "s" else [x]
    for (pre, post), inp, out in zip(learner.records, inputs, outs):
        torch.testing.assert_close(pre, inp)
        torch.testing.assert_close(post, out)
    w_before = fc.weight.detach().clone()
    delta = learner.update(1.0)
    assert delta.shape == fc.weight.shape and torch.isfinite(delta).all()
    assert torch.isfinite(fc.weight).all()
    assert not torch.equal(fc.weight.detach(), w_before) or torch.count_nonzero(delta) == 0
