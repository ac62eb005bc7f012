"""TempotronLearner ('tempotron') against an explicit loop written here."""

import math

import pytest
import torch
from torch import nn

from snnlab.learning import TempotronLearner, create, learning_algorithms


class TinyLIF(nn.Module):
    """Leaky integrator ``v = decay * v + x`` that spikes at ``v >= 1e9`` (never, by default).

    Single-step input ``[N, n]``; with ``multi=True`` input ``[T, N, n]`` and ``v_seq`` is stored.
    """

    def __init__(self, decay: float = 0.8, multi: bool = False, fire: float = 1e9) -> None:
        super().__init__()
        self.decay, self.multi, self.fire = decay, multi, fire
        self.v = 0.0

    def _one(self, x):
        self.v = self.decay * self.v + x
        return (self.v >= self.fire).to(x.dtype)

    def forward(self, x):
        if not self.multi:
            return self._one(x)
        out, vs = [], []
        for t in range(x.shape[0]):
            out.append(self._one(x[t]))
            vs.append(self.v)
        self.v_seq = torch.stack(vs)
        return torch.stack(out)


def tempotron_reference(xs, vs, labels, lr, tau, tau_s, v_th, dt=1.0):
    """xs [T, B, N_in], vs [T, B, N_out] -> Δw [N_out, N_in] by explicit loops."""
    t_n, b_n, n_in = xs.shape
    n_out = vs.shape[2]
    dw = torch.zeros(n_out, n_in, dtype=torch.float64)
    for b in range(b_n):
        for o in range(n_out):
            t_star, v_max = 0, vs[0, b, o].item()
            for t in range(1, t_n):
                if vs[t, b, o].item() > v_max:
                    t_star, v_max = t, vs[t, b, o].item()
            if o == labels[b] and v_max < v_th:
                c = 1.0
            elif o != labels[b] and v_max >= v_th:
                c = -1.0
            else:
                c = 0.0
            for i in range(n_in):
                acc = 0.0
                for t in range(t_star + 1):
                    s = (t_star - t) * dt
                    acc += xs[t, b, i].item() * (math.exp(-s / tau) - math.exp(-s / tau_s))
                dw[o, i] += lr * c * acc / b_n
    return dw


def run_episode(syn, sn, xs, multi=False):
    sn.v = 0.0
    if multi:
        return sn(syn(xs))
    return torch.stack([sn(syn(xs[t])) for t in range(xs.shape[0])])


def membrane(syn, xs, decay):
    """The membrane trajectory [T, B, N_out] computed directly (for the reference)."""
    with torch.no_grad():
        v = torch.zeros(xs.shape[1], syn.weight.shape[0], dtype=xs.dtype)
        out = []
        for t in range(xs.shape[0]):
            v = decay * v + xs[t] @ syn.weight.t()
            out.append(v.clone())
        return torch.stack(out)


def make(n_in=6, n_out=3, seed=0, multi=False, **kw):
    g = torch.Generator().manual_seed(seed)
    syn = nn.Linear(n_in, n_out, bias=False).double()
    with torch.no_grad():
        syn.weight.copy_(torch.rand(n_out, n_in, generator=g, dtype=torch.float64) * 3.0)
    sn = TinyLIF(multi=multi)
    learner = TempotronLearner("m" if multi else "s", syn, sn, **kw)
    return syn, sn, learner


def spikes(t_n, batch, n_in, seed, p=0.35):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(t_n, batch, n_in, generator=g) < p).double()


@pytest.mark.parametrize("batch", [1, 4])
@pytest.mark.parametrize("multi", [False, True])
def test_delta_matches_reference(batch, multi):
    syn, sn, learner = make(multi=multi, lr=0.05, tau=8.0, tau_s=2.0, v_th=9.0)
    xs = spikes(12, batch, 6, seed=batch)
    labels = torch.arange(batch) % 3
    vs = membrane(syn, xs, sn.decay)
    w0 = syn.weight.detach().clone()
    run_episode(syn, sn, xs, multi)
    expect = tempotron_reference(xs, vs, labels.tolist(), 0.05, 8.0, 2.0, 9.0)
    assert expect.abs().sum() > 0
    delta = learner.update(labels if batch > 1 else int(labels[0]))
    torch.testing.assert_close(delta, expect, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(syn.weight.detach(), w0 + expect, rtol=1e-10, atol=1e-12)
    assert learner.update(labels) is None  # the episode was consumed


def test_on_grad_and_scale():
    syn, sn, learner = make(lr=0.1)
    xs = spikes(10, 2, 6, seed=3)
    vs = membrane(syn, xs, sn.decay)
    run_episode(syn, sn, xs)
    learner.step(torch.tensor([0, 2]), on_grad=True, scale=0.5)
    expect = tempotron_reference(xs, vs, [0, 2], 0.1, 20.0, 5.0, 10.0)
    torch.testing.assert_close(syn.weight.grad, -0.5 * expect, rtol=1e-10, atol=1e-12)


def test_dt_scales_the_kernel_lag():
    syn, sn, learner = make(lr=0.1, tau=4.0, tau_s=1.0, dt=0.5)
    xs = spikes(8, 1, 6, seed=4)
    vs = membrane(syn, xs, sn.decay)
    run_episode(syn, sn, xs)
    expect = tempotron_reference(xs, vs, [1], 0.1, 4.0, 1.0, 10.0, dt=0.5)
    torch.testing.assert_close(learner.step(1, on_grad=False), expect, rtol=1e-10, atol=1e-12)


def test_missed_positive_up_false_positive_down():
    n_in, n_out = 8, 2
    syn = nn.Linear(n_in, n_out, bias=False).double()
    with torch.no_grad():
        syn.weight[0].fill_(0.3)  # label neuron: stays below v_th -> missed positive
        syn.weight[1].fill_(3.0)  # other neuron: crosses v_th -> false positive
    sn = TinyLIF()
    learner = TempotronLearner("s", syn, sn, lr=0.05)
    xs = spikes(15, 1, n_in, seed=7, p=0.5)
    before = membrane(syn, xs, sn.decay).amax(0)[0]
    assert before[0] < learner.v_th <= before[1]
    w0 = syn.weight.detach().clone()
    run_episode(syn, sn, xs)
    delta = learner.update(0)
    assert (delta[0] >= 0).all() and delta[0].sum() > 0
    assert (delta[1] <= 0).all() and delta[1].sum() < 0
    after = membrane(syn, xs, sn.decay).amax(0)[0]
    assert after[0] > before[0] and after[1] < before[1]
    # a correct decision leaves the weights alone
    with torch.no_grad():
        syn.weight.copy_(w0)
        syn.weight[0].fill_(3.0)
        syn.weight[1].fill_(0.3)
    run_episode(syn, sn, xs)
    assert torch.equal(learner.update(0), torch.zeros(n_out, n_in, dtype=torch.float64))


def test_learns_to_classify_two_patterns():
    n_in = 10
    syn = nn.Linear(n_in, 2, bias=False).double()
    with torch.no_grad():
        syn.weight.fill_(1.0)
    sn = TinyLIF()
    learner = TempotronLearner("s", syn, sn, lr=0.2)
    patterns = [spikes(12, 1, n_in, seed=s, p=0.3) for s in (1, 2)]

    def fired(p):
        return [bool(v >= learner.v_th) for v in membrane(syn, p, sn.decay).amax(0)[0]]

    assert fired(patterns[0]) == fired(patterns[1])  # identical rows: no discrimination yet
    for _ in range(60):
        for label, p in enumerate(patterns):
            run_episode(syn, sn, p)
            learner.update(label)
    assert fired(patterns[0]) == [True, False]
    assert fired(patterns[1]) == [False, True]


def test_reset_forgets_the_episode():
    syn, sn, learner = make()
    run_episode(syn, sn, spikes(5, 1, 6, seed=1))
    assert len(learner.records) == 5 and len(learner.v_records) == 5
    learner.reset()
    assert learner.step(0) is None
    learner.disable()
    run_episode(syn, sn, spikes(5, 1, 6, seed=1))
    assert learner.step(0) is None
    learner.enable()
    run_episode(syn, sn, spikes(5, 1, 6, seed=1))
    assert learner.step(0, on_grad=False) is not None


def test_registry_and_own_constants():
    assert learning_algorithms["tempotron"] is TempotronLearner
    syn, sn = nn.Linear(3, 2), TinyLIF()
    a = create("tempotron", "s", syn, sn, lr=0.5, v_th=2.0)
    b = create("tempotron", "s", syn, sn)
    assert isinstance(a, TempotronLearner)
    assert (a.lr, a.v_th, a.tau, a.tau_s) == (0.5, 2.0, 20.0, 5.0)
    assert (b.lr, b.v_th) == (0.01, 10.0)


@pytest.mark.parametrize(
    ("kw", "exc", "match"),
    [
        ({"lr": -0.1}, ValueError, "lr"),
        ({"lr": float("nan")}, ValueError, "lr"),
        ({"tau": 0.0}, ValueError, "tau"),
        ({"tau_s": -5.0}, ValueError, "tau_s"),
        ({"v_th": float("inf")}, ValueError, "v_th"),
        ({"dt": 0.0}, ValueError, "dt"),
        ({"tau": "20"}, TypeError, "tau"),
    ],
)
def test_bad_hyper_parameters(kw, exc, match):
    with pytest.raises(exc, match=match):
        TempotronLearner("s", nn.Linear(3, 2), TinyLIF(), **kw)


def test_bad_labels_and_setup():
    syn, sn, learner = make()
    cases = [(None, ValueError), (3, ValueError), (-1, ValueError), ([0, 1], ValueError), (0.5, TypeError)]
    for bad, exc in cases:
        run_episode(syn, sn, spikes(4, 1, 6, seed=2))
        with pytest.raises(exc, match="label"):
            learner.step(bad)
    with pytest.raises(TypeError, match="'v'"):
        TempotronLearner("s", nn.Linear(3, 2), nn.Identity())
    with pytest.raises(TypeError, match="weight"):
        TempotronLearner("s", nn.Conv2d(1, 1, 3), TinyLIF())


def test_with_snnlab_lif_node_single_and_multi_step():
    neuron = pytest.importorskip("snnlab.neuron")
    xs = spikes(10, 2, 6, seed=12, p=0.5)
    labels = [1, 0]
    deltas = {}
    for mode in ("s", "m"):
        syn = nn.Linear(6, 2, bias=False).double()
        with torch.no_grad():
            syn.weight.copy_(torch.linspace(0.5, 8.0, 12, dtype=torch.float64).view(2, 6))
        sn = neuron.LIFNode(tau=2.0, v_threshold=1e6, v_reset=None, step_mode=mode, store_v_seq=mode == "m")
        learner = TempotronLearner(mode, syn, sn, lr=0.1, v_th=3.0)
        vs = []
        if mode == "s":
            for t in range(10):
                sn(syn(xs[t]))
                vs.append(sn.v.detach().clone())
        else:
            sn(syn(xs))
            vs = list(sn.v_seq.detach())
        expect = tempotron_reference(xs, torch.stack(vs), labels, 0.1, 20.0, 5.0, 3.0)
        deltas[mode] = learner.step(labels, on_grad=False)
        torch.testing.assert_close(deltas[mode], expect, rtol=1e-10, atol=1e-12)
    assert deltas["s"].abs().sum() > 0
    torch.testing.assert_close(deltas["s"], deltas["m"], rtol=1e-10, atol=1e-12)
    with pytest.raises(ValueError, match="store_v_seq"):
        TempotronLearner("m", nn.Linear(6, 2), neuron.LIFNode(step_mode="m"))
