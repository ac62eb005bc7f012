"""PostPreIntSTDPLearner ('postpreintstdp') against an explicit integer loop written here."""

import pytest
import torch
from torch import nn

from snnlab.learning import PostPreIntSTDPLearner, create, learning_algorithms


class Threshold(nn.Module):
    """Stateless spiking stand-in: fires where the input reaches 1; carries a ``thresh``."""

    def __init__(self, n_out: int, thresh=None) -> None:
        super().__init__()
        self.thresh = torch.zeros(n_out) if thresh is None else thresh

    def forward(self, v):
        return (v >= 1.0).to(v.dtype)


class IntLinear(nn.Module):
    """A linear synapse whose weight is an int32 tensor."""

    def __init__(self, w: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("weight", w.to(torch.int32))

    def forward(self, x):
        return x @ self.weight.to(x.dtype).t()


class SeqLinear(nn.Linear):
    """Linear that also takes a sequence ``[T, N, in]``."""


def reference(xs, ys, w0, p, seed, thresh=None, project=True, pre_sign=1):
    """Explicit loops of SPAIC's integer rule; the draws follow the documented order.

    xs, ys: lists of [B, N_in] / [B, N_out] spike tensors. Returns the list of Δw and the weights after
    each step (with the projection applied when ``project``).
    """
    g = torch.Generator().manual_seed(seed)
    b_n, n_in = xs[0].shape
    n_out = ys[0].shape[1]
    k = p["shift"]
    X = [[0] * n_in for _ in range(b_n)]
    Y = [[0] * n_out for _ in range(b_n)]
    w = [[int(v) for v in row] for row in w0.tolist()]
    deltas, weights = [], []
    for x, y in zip(xs, ys):
        for b in range(b_n):
            for i in range(n_in):
                X[b][i] = (p["trace_decay"] * X[b][i]) // (2 ** p["shift_spike_trace"])
                if x[b, i] != 0:
                    X[b][i] = p["trace_scale"]
            for j in range(n_out):
                Y[b][j] = (p["trace_decay"] * Y[b][j]) // (2 ** p["shift_spike_trace"])
                if y[b, j] != 0:
                    Y[b][j] = p["trace_scale"]
        u_pre = torch.randint(0, 2**k, (b_n, n_out, n_in), generator=g, dtype=torch.int64).tolist()
        u_post = torch.randint(0, 2**k, (b_n, n_out, n_in), generator=g, dtype=torch.int64).tolist()
        d = [[0] * n_in for _ in range(n_out)]
        for b in range(b_n):
            for j in range(n_out):
                for i in range(n_in):
                    v = p["nu0"] * Y[b][j]
                    r = v // 2**k + (1 if u_pre[b][j][i] < v % 2**k else 0)
                    d[j][i] += pre_sign * r * int(x[b, i] != 0)
                    v = p["nu1"] * X[b][i]
                    r = v // 2**k + (1 if u_post[b][j][i] < v % 2**k else 0)
                    d[j][i] += int(y[b, j] != 0) * r
        deltas.append(torch.tensor(d))
        for j in range(n_out):
            for i in range(n_in):
                w[j][i] += d[j][i]
        if project:
            for j in range(n_out):
                halve = thresh is not None and float(thresh[j]) > p["max_threshold"]
                for i in range(n_in):
                    if halve:
                        w[j][i] = w[j][i] // 2
                    w[j][i] = min(max(w[j][i], p["w_min"]), p["w_max"])
        weights.append(torch.tensor(w))
    return deltas, weights


DEFAULTS = {
    "trace_decay": 31169,
    "shift_spike_trace": 15,
    "trace_scale": 127,
    "max_threshold": 4915,
    "shift": 14,
    "nu0": 14,
    "nu1": 141,
    "w_min": 0,
    "w_max": 109,
}


def spike_data(steps, batch, n_in, n_out, seed, p_in=0.5, p_out=0.4):
    g = torch.Generator().manual_seed(seed)
    xs = [(torch.rand(batch, n_in, generator=g) < p_in).float() for _ in range(steps)]
    ys = [(torch.rand(batch, n_out, generator=g) < p_out).float() for _ in range(steps)]
    return xs, ys


def drive(syn, sn, x, y):
    """One forward call whose synapse input is ``x`` and whose sn output is exactly ``y``."""
    syn(x)
    return sn(y)


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("int_weight", [False, True])
@pytest.mark.parametrize("small_shift", [False, True])
def test_update_matches_reference(batch, int_weight, small_shift):
    n_in, n_out, steps = 4, 3, 6
    g = torch.Generator().manual_seed(5)
    w0 = torch.randint(20, 100, (n_out, n_in), generator=g)
    thresh = torch.tensor([0.0, 5000.0, 4915.0])  # row 1 is halved each update, row 2 is not (not >)
    syn = IntLinear(w0) if int_weight else nn.Linear(n_in, n_out, bias=False)
    if not int_weight:
        with torch.no_grad():
            syn.weight.copy_(w0.float())
    sn = Threshold(n_out, thresh)
    # a small rounding shift makes draws equal to the fraction frequent (checks '<', not '<=')
    kw = {"shift": 2, "nu0": 1, "nu1": 1} if small_shift else {}
    learner = PostPreIntSTDPLearner("s", syn, sn, generator=torch.Generator().manual_seed(11), **kw)
    xs, ys = spike_data(steps, batch, n_in, n_out, seed=3)
    exp_d, exp_w = reference(xs, ys, w0, dict(DEFAULTS, **kw), seed=11, thresh=thresh)
    for t in range(steps):
        drive(syn, sn, xs[t], ys[t])
        d = learner.update()
        assert torch.equal(d.double(), exp_d[t].double()), t
        assert torch.equal(syn.weight.double(), exp_w[t].double()), t
        if int_weight:
            assert syn.weight.dtype == torch.int32


def test_traces_are_integers_and_follow_the_shift_rule():
    syn = nn.Linear(2, 1, bias=False)
    sn = Threshold(1)
    learner = PostPreIntSTDPLearner("s", syn, sn, max_threshold=None)
    drive(syn, sn, torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0]]))
    learner.step(on_grad=False)
    assert learner.trace_pre.dtype == torch.int64
    assert learner.trace_pre.tolist() == [[127, 0]]
    drive(syn, sn, torch.tensor([[0.0, 0.0]]), torch.tensor([[1.0]]))
    learner.step(on_grad=False)
    assert learner.trace_pre.tolist() == [[(31169 * 127) >> 15, 0]]
    assert learner.trace_post.tolist() == [[127]]
    learner.reset()
    assert learner.trace_pre is None and learner.trace_post is None


def test_shift_spike_trace_zero_sets_trace_to_one():
    syn = nn.Linear(2, 1, bias=False)
    sn = Threshold(1)
    learner = PostPreIntSTDPLearner("s", syn, sn, max_threshold=None, shift_spike_trace=0, trace_decay=0)
    drive(syn, sn, torch.tensor([[1.0, 1.0]]), torch.tensor([[1.0]]))
    learner.step(on_grad=False)
    assert learner.trace_pre.tolist() == [[1, 1]]


def test_pre_sign_minus_one_and_no_projection_in_step():
    n_in, n_out = 3, 2
    w0 = torch.full((n_out, n_in), 50)
    xs, ys = spike_data(5, 2, n_in, n_out, seed=8, p_in=0.6, p_out=0.6)
    syn = nn.Linear(n_in, n_out, bias=False)
    with torch.no_grad():
        syn.weight.copy_(w0.float())
    sn = Threshold(n_out)
    gen = torch.Generator().manual_seed(2)
    learner = PostPreIntSTDPLearner("s", syn, sn, pre_sign=-1, nu0=8000, generator=gen)
    p = dict(DEFAULTS, nu0=8000)
    exp_d, _ = reference(xs, ys, w0, p, seed=2, project=False, pre_sign=-1)
    total = torch.zeros(n_out, n_in, dtype=torch.int64)
    for t in range(5):
        drive(syn, sn, xs[t], ys[t])
        d = learner.step(on_grad=False)
        assert torch.equal(d.to(torch.int64), exp_d[t])
        total += exp_d[t]
    assert (total < 0).any()  # the pre branch depresses
    assert torch.equal(syn.weight.detach(), w0.float())  # step never edits the weight


def test_multi_step_equals_single_step_and_grad():
    n_in, n_out, steps, batch = 3, 2, 5, 2
    xs, ys = spike_data(steps, batch, n_in, n_out, seed=21)
    w0 = torch.randint(0, 50, (n_out, n_in), generator=torch.Generator().manual_seed(1))
    exp_d, _ = reference(xs, ys, w0, DEFAULTS, seed=4, project=False)

    syn = SeqLinear(n_in, n_out, bias=False)
    with torch.no_grad():
        syn.weight.copy_(w0.float())
    sn = Threshold(n_out)
    learner = PostPreIntSTDPLearner("m", syn, sn, generator=torch.Generator().manual_seed(4))
    drive(syn, sn, torch.stack(xs), torch.stack(ys))
    assert len(learner.records) == 1
    learner.step(on_grad=True)
    total = sum(exp_d).float()
    torch.testing.assert_close(syn.weight.grad, -total, rtol=0, atol=0)
    assert learner.step() is None  # nothing recorded since


def test_scale_multiplies_delta():
    xs, ys = spike_data(3, 1, 3, 2, seed=9, p_in=0.9, p_out=0.9)
    w0 = torch.zeros(2, 3, dtype=torch.int64)
    exp_d, _ = reference(xs, ys, w0, DEFAULTS, seed=0, project=False)
    syn = nn.Linear(3, 2, bias=False)
    sn = Threshold(2)
    learner = PostPreIntSTDPLearner("s", syn, sn, generator=torch.Generator().manual_seed(0))
    for t in range(3):
        drive(syn, sn, xs[t], ys[t])
        torch.testing.assert_close(learner.step(on_grad=False, scale=2.0), 2.0 * exp_d[t].float())


def test_int_weight_on_grad_is_refused():
    syn = IntLinear(torch.zeros(2, 3))
    sn = Threshold(2)
    learner = PostPreIntSTDPLearner("s", syn, sn)
    drive(syn, sn, torch.ones(1, 3), torch.ones(1, 2))
    with pytest.raises(TypeError, match="on_grad"):
        learner.step(on_grad=True)


def test_stochastic_rounding_reproducible_and_unbiased():
    # step 1: only the post neuron fires; step 2: only the pre neuron fires -> the pre branch adds
    # R(nu0 * Y) with Y = (31169 * 127) >> 15 once per sample, a Bernoulli(frac) variable.
    batch = 4000
    x1, y1 = torch.zeros(batch, 1), torch.ones(batch, 1)
    x2, y2 = torch.ones(batch, 1), torch.zeros(batch, 1)

    def run(seed):
        syn = nn.Linear(1, 1, bias=False)
        sn = Threshold(1)
        learner = PostPreIntSTDPLearner("s", syn, sn, generator=torch.Generator().manual_seed(seed))
        drive(syn, sn, x1, y1)
        drive(syn, sn, x2, y2)
        return learner.step(on_grad=False)

    y_trace = (31169 * 127) >> 15
    v = 14 * y_trace
    expected_mean = v / 2**14  # < 1, so the rounding is 0 or 1
    d1, d1_again, d2 = run(7), run(7), run(8)
    assert torch.equal(d1, d1_again)
    assert not torch.equal(d1, d2)
    sigma = (expected_mean * (1 - expected_mean) / batch) ** 0.5
    for d in (d1, d2):
        assert abs(d.item() / batch - expected_mean) < 5 * sigma


def test_threshold_shapes():
    syn = nn.Linear(2, 3, bias=False)
    with torch.no_grad():
        syn.weight.fill_(40.0)
    # batch-shaped threshold: a row is halved if any sample's threshold exceeds max_threshold
    sn = Threshold(3, torch.tensor([[0.0, 6000.0, 0.0], [0.0, 0.0, 7000.0]]))
    learner = PostPreIntSTDPLearner("s", syn, sn)
    drive(syn, sn, torch.zeros(2, 2), torch.zeros(2, 3))
    learner.update()
    assert syn.weight[:, 0].tolist() == [40.0, 20.0, 20.0]
    sn.thresh = 5000.0
    drive(syn, sn, torch.zeros(2, 2), torch.zeros(2, 3))
    learner.update()
    assert syn.weight[:, 0].tolist() == [20.0, 10.0, 10.0]
    sn.thresh = torch.zeros(4)
    drive(syn, sn, torch.zeros(2, 2), torch.zeros(2, 3))
    with pytest.raises(ValueError, match="thresh"):
        learner.update()


def test_registry_and_own_constants():
    assert learning_algorithms["postpreintstdp"] is PostPreIntSTDPLearner
    syn, sn = nn.Linear(2, 2, bias=False), Threshold(2)
    a = create("postpreintstdp", "s", syn, sn, nu0=3, w_max=50)
    b = create("postpreintstdp", "s", syn, sn)
    assert isinstance(a, PostPreIntSTDPLearner)
    assert (a.nu0, a.w_max, b.nu0, b.w_max) == (3, 50, 14, 109)
    assert isinstance(a.nu0, int)
    a.remove_hooks()
    b.remove_hooks()


@pytest.mark.parametrize(
    ("kw", "exc", "match"),
    [
        ({"trace_decay": -1}, ValueError, "trace_decay"),
        ({"trace_decay": 1.5}, ValueError, "trace_decay"),
        ({"shift_spike_trace": 40}, ValueError, "shift_spike_trace"),
        ({"trace_scale": float("nan")}, ValueError, "trace_scale"),
        ({"max_threshold": float("inf")}, ValueError, "max_threshold"),
        ({"shift": -1}, ValueError, "shift"),
        ({"nu0": 2.5}, ValueError, "nu0"),
        ({"nu1": "141"}, TypeError, "nu1"),
        ({"w_min": 10, "w_max": 5}, ValueError, "w_max"),
        ({"pre_sign": 0}, ValueError, "pre_sign"),
        ({"generator": 3}, TypeError, "generator"),
    ],
)
def test_bad_hyper_parameters(kw, exc, match):
    with pytest.raises(exc, match=match):
        PostPreIntSTDPLearner("s", nn.Linear(2, 2, bias=False), Threshold(2), **kw)


def test_bad_setup_and_assignment():
    with pytest.raises(TypeError, match="thresh"):
        PostPreIntSTDPLearner("s", nn.Linear(2, 2), nn.Identity())
    PostPreIntSTDPLearner("s", nn.Linear(2, 2), nn.Identity(), max_threshold=None)
    with pytest.raises(TypeError, match="weight"):
        PostPreIntSTDPLearner("s", nn.Conv2d(1, 1, 3), Threshold(1))
    learner = PostPreIntSTDPLearner("s", nn.Linear(2, 2), Threshold(2))
    with pytest.raises(ValueError, match="nu1"):
        learner.nu1 = 0.5
    with pytest.raises(ValueError, match="step_mode"):
        PostPreIntSTDPLearner("x", nn.Linear(2, 2), Threshold(2))
