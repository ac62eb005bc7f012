"""Conv2dSTDPLearner / Conv2dRSTDPLearner against explicit per-kernel-offset loops written here."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from snnlab.learning import Conv2dRSTDPLearner, Conv2dSTDPLearner, create, learning_algorithms


class SeqConv2d(nn.Conv2d):
    """Conv2d that also takes a sequence ``[T, N, C, H, W]``."""

    def forward(self, x):
        if x.dim() == 5:
            return super().forward(x.flatten(0, 1)).unflatten(0, x.shape[:2])
        return super().forward(x)


def pad_input(conv, x):
    """The input as the convolution sees it, padded by hand (zeros) or with F.pad (other modes)."""
    kh, kw = conv.kernel_size
    if isinstance(conv.padding, str):  # 'same' (stride 1): total padding k - 1, the extra one after
        top, left = (kh - 1) // 2, (kw - 1) // 2
        bottom, right = kh - 1 - top, kw - 1 - left
    else:
        top = bottom = conv.padding[0]
        left = right = conv.padding[1]
    if conv.padding_mode != "zeros":
        return F.pad(x, (left, right, top, bottom), mode=conv.padding_mode)
    b, c, h, w = x.shape
    out = torch.zeros(b, c, h + top + bottom, w + left + right, dtype=x.dtype)
    out[:, :, top : top + h, left : left + w] = x
    return out


def correlate(conv, post, pre_pix):
    """out_b[o, c, h, w] = Σ_{y, x} post[b, o, y, x] · pre_pix[b, c, y·s + h, x·s + w] (per sample)."""
    b_n, o_n, ho, wo = post.shape
    c_n = pre_pix.shape[1]
    kh, kw = conv.kernel_size
    sh, sw = conv.stride
    out = torch.zeros(b_n, o_n, c_n, kh, kw, dtype=post.dtype)
    for o in range(o_n):
        for c in range(c_n):
            for h in range(kh):
                for w in range(kw):
                    window = pre_pix[:, c, h : h + sh * (ho - 1) + 1 : sh, w : w + sw * (wo - 1) + 1 : sw]
                    out[:, o, c, h, w] = (post[:, o] * window).sum(dim=(1, 2))
    return out


def stdp_reference(conv, xs, ys, lr, tau_plus, tau_minus, a_plus, a_minus, dt=1.0):
    """Nearest-spike traces on the padded input pixels; Δw per step."""
    dp, dm = math.exp(-dt / tau_plus), math.exp(-dt / tau_minus)
    p = m = None
    out = []
    for x, y in zip(xs, ys):
        xp = pad_input(conv, x)
        p = xp if p is None else (1 - xp) * dp * p + xp
        m = y if m is None else (1 - y) * dm * m + y
        e = a_plus * correlate(conv, y, p) + a_minus * correlate(conv, m, xp)
        out.append(lr * e.sum(0))
    return out


def rstdp_reference(conv, xs, ys, rewards, lr, tau_plus, tau_minus, a_plus, a_minus, dt=1.0):
    """All-to-all traces; the reward of step t times the per-sample eligibility of step t - 1."""
    dp, dm = math.exp(-dt / tau_plus), math.exp(-dt / tau_minus)
    p = m = prev = None
    out = []
    for x, y, r in zip(xs, ys, rewards):
        xp = pad_input(conv, x)
        p = a_plus * xp if p is None else dp * p + a_plus * xp
        m = a_minus * y if m is None else dm * m + a_minus * y
        e = correlate(conv, y, p) + correlate(conv, m, xp)  # [B, O, C, kh, kw]
        if prev is None:
            out.append(torch.zeros_like(e[0]))
        else:
            r = torch.as_tensor(r, dtype=e.dtype)
            if r.dim() == 1 and r.numel() == e.shape[0]:
                weights = r.view(-1, 1, 1, 1, 1)
            elif r.dim() == 1:  # per output channel
                weights = r.view(1, -1, 1, 1, 1)
            else:
                weights = r
            out.append(lr * (weights * prev).sum(0))
        prev = e
    return out


def data(conv, steps, batch, h, w, seed, p_in=0.4, p_out=0.3):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():  # output size, without going through the module's hooks
        probe = torch.zeros(1, conv.in_channels, h, w, dtype=conv.weight.dtype)
        ho, wo = conv._conv_forward(probe, conv.weight, None).shape[-2:]
    xs = [(torch.rand(batch, conv.in_channels, h, w, generator=g) < p_in).double() for _ in range(steps)]
    ys = [(torch.rand(batch, conv.out_channels, ho, wo, generator=g) < p_out).double() for _ in range(steps)]
    return xs, ys


def drive(conv, sn, x, y):
    conv(x)
    return sn(y)


CONVS = {
    "pad1": {"kernel_size": 3, "padding": 1},
    "stride2": {"kernel_size": 3, "padding": (1, 0), "stride": 2},
    "same_even": {"kernel_size": (2, 3), "padding": "same"},
    "circular": {"kernel_size": 3, "padding": 1, "padding_mode": "circular"},
    "reflect": {"kernel_size": (3, 2), "padding": (1, 1), "padding_mode": "reflect"},
    "nopad": {"kernel_size": 2},
}


def make_conv(name, cls=nn.Conv2d):
    return cls(2, 3, bias=False, **CONVS[name]).double()


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")
@pytest.mark.parametrize("geometry", sorted(CONVS))
@pytest.mark.parametrize("batch", [1, 2])
def test_conv_stdp_matches_reference(geometry, batch):
    conv = make_conv(geometry)
    sn = nn.Identity()
    kw = {"lr": 0.05, "tau_plus": 4.0, "tau_minus": 3.0, "A_plus": 0.8, "A_minus": -0.6, "dt": 0.5}
    learner = Conv2dSTDPLearner("s", conv, sn, **kw)
    xs, ys = data(conv, 4, batch, 5, 6, seed=batch)
    expect = stdp_reference(conv, xs, ys, 0.05, 4.0, 3.0, 0.8, -0.6, dt=0.5)
    w = conv.weight.detach().clone()
    for t in range(4):
        drive(conv, sn, xs[t], ys[t])
        d = learner.update()
        torch.testing.assert_close(d, expect[t], rtol=1e-10, atol=1e-12)
        w = w + expect[t]
        torch.testing.assert_close(conv.weight.detach(), w, rtol=1e-10, atol=1e-12)


def test_conv_stdp_multi_step_and_grad():
    conv = make_conv("pad1", SeqConv2d)
    sn = nn.Identity()
    learner = Conv2dSTDPLearner("m", conv, sn)
    xs, ys = data(conv, 5, 2, 4, 4, seed=9)
    expect = stdp_reference(conv, xs, ys, 0.1, 20.0, 20.0, 1.0, -1.0)
    drive(conv, sn, torch.stack(xs), torch.stack(ys))
    learner.step(on_grad=True, scale=2.0)
    torch.testing.assert_close(conv.weight.grad, -2.0 * sum(expect), rtol=1e-10, atol=1e-12)
    assert learner.step() is None


def test_conv_stdp_with_a_spiking_layer_and_window_sign():
    # pre fires at t=0 at the centre, post (driven through the conv) fires at t=1: potentiation only
    conv = nn.Conv2d(1, 1, 3, padding=1, bias=False).double()
    sn_fire = {"t": 0}

    class Gate(nn.Module):
        def forward(self, v):
            sn_fire["t"] += 1
            return torch.full_like(v, 1.0 if sn_fire["t"] == 2 else 0.0)

    learner = Conv2dSTDPLearner("s", conv, Gate(), A_minus=-1.0)
    x0 = torch.zeros(1, 1, 3, 3, dtype=torch.float64)
    x0[0, 0, 1, 1] = 1.0
    deltas = []
    for x in (x0, torch.zeros_like(x0)):
        learner.sn(conv(x))
        deltas.append(learner.step(on_grad=False))
    assert torch.equal(deltas[0], torch.zeros_like(deltas[0]))
    assert (deltas[1] >= 0).all() and deltas[1].sum() > 0
    # post before pre: depression only
    sn_fire["t"] = 0
    learner.reset()
    for x in (torch.zeros_like(x0), torch.zeros_like(x0), x0):
        learner.sn(conv(x))
        d = learner.step(on_grad=False)
    assert (d <= 0).all() and d.sum() < 0


REWARDS = {
    "float": lambda t, b, o: [0.5, -1.0, 2.0, 1.5][t],
    "zero_d": lambda t, b, o: torch.tensor([1.0, -0.5, 0.25, 2.0][t]),
    "per_sample": lambda t, b, o: torch.linspace(-1.0, 1.0, b) * (t + 1),
    "per_channel": lambda t, b, o: torch.tensor([1.0, -2.0, 0.5]) * (t % 2 * 2 - 1),
}


@pytest.mark.parametrize("reward_kind", sorted(REWARDS))
@pytest.mark.parametrize("geometry", ["pad1", "stride2", "circular"])
def test_conv_rstdp_matches_reference(reward_kind, geometry):
    batch = 2
    conv = make_conv(geometry)
    sn = nn.Identity()
    kw = {"lr": 0.02, "tau_plus": 5.0, "tau_minus": 2.0, "A_plus": 1.2, "A_minus": -0.7}
    learner = Conv2dRSTDPLearner("s", conv, sn, **kw)
    xs, ys = data(conv, 4, batch, 5, 5, seed=3)
    rewards = [REWARDS[reward_kind](t, batch, 3) for t in range(4)]
    expect = rstdp_reference(conv, xs, ys, rewards, 0.02, 5.0, 2.0, 1.2, -0.7)
    assert torch.equal(expect[0], torch.zeros_like(expect[0]))
    for t in range(4):
        drive(conv, sn, xs[t], ys[t])
        torch.testing.assert_close(learner.update(rewards[t]), expect[t], rtol=1e-10, atol=1e-12)
    assert learner.eligibility.shape == (batch, 3, 2 * 9)


def test_conv_rstdp_reward_sign_flips_update_and_reset():
    conv = make_conv("pad1")
    sn = nn.Identity()
    xs, ys = data(conv, 3, 1, 4, 4, seed=5, p_in=0.6, p_out=0.6)
    out = {}
    for r in (1.0, -1.0):
        learner = Conv2dRSTDPLearner("s", conv, sn)
        for t in range(3):
            drive(conv, sn, xs[t], ys[t])
            out[r] = learner.step(r, on_grad=False)
        learner.remove_hooks()
    assert out[1.0].abs().sum() > 0
    torch.testing.assert_close(out[-1.0], -out[1.0])
    learner = Conv2dRSTDPLearner("s", conv, sn)
    for t in range(2):
        drive(conv, sn, xs[t], ys[t])
        learner.step(1.0, on_grad=False)
    learner.reset()
    assert learner.eligibility is None and learner.trace_pre is None
    drive(conv, sn, xs[2], ys[2])
    assert torch.equal(learner.step(1.0, on_grad=False), torch.zeros_like(conv.weight))


def test_conv_rstdp_multi_step_matches_single_step_and_grad():
    conv = make_conv("pad1", SeqConv2d)
    sn = nn.Identity()
    learner = Conv2dRSTDPLearner("m", conv, sn)
    xs, ys = data(conv, 4, 2, 4, 4, seed=6)
    expect = rstdp_reference(conv, xs, ys, [0.7] * 4, 0.1, 20.0, 20.0, 1.0, -1.0)
    drive(conv, sn, torch.stack(xs), torch.stack(ys))
    learner.step(0.7)
    torch.testing.assert_close(conv.weight.grad, -sum(expect), rtol=1e-10, atol=1e-12)


def test_registry_and_own_constants():
    assert learning_algorithms["conv2d_stdp"] is Conv2dSTDPLearner
    assert learning_algorithms["conv2d_rstdp"] is Conv2dRSTDPLearner
    conv, sn = nn.Conv2d(1, 2, 3), nn.Identity()
    a = create("conv2d_stdp", "s", conv, sn, lr=0.3, A_minus=-0.2)
    b = create("conv2d_stdp", "s", conv, sn)
    c = create("conv2d_rstdp", "m", conv, sn, tau_plus=7.0)
    assert isinstance(a, Conv2dSTDPLearner) and isinstance(c, Conv2dRSTDPLearner)
    assert (a.lr, a.A_minus, b.lr, b.A_minus) == (0.3, -0.2, 0.1, -1.0)
    assert (c.tau_plus, c.tau_minus, c.A_plus, c.dt, c.step_mode) == (7.0, 20.0, 1.0, 1.0, "m")


@pytest.mark.parametrize("cls", [Conv2dSTDPLearner, Conv2dRSTDPLearner])
@pytest.mark.parametrize(
    ("kw", "exc", "match"),
    [
        ({"lr": -1.0}, ValueError, "lr"),
        ({"tau_plus": 0.0}, ValueError, "tau_plus"),
        ({"tau_minus": float("inf")}, ValueError, "tau_minus"),
        ({"A_plus": float("nan")}, ValueError, "A_plus"),
        ({"A_minus": "x"}, TypeError, "A_minus"),
        ({"dt": -1.0}, ValueError, "dt"),
    ],
)
def test_bad_hyper_parameters(cls, kw, exc, match):
    with pytest.raises(exc, match=match):
        cls("s", nn.Conv2d(1, 1, 3), nn.Identity(), **kw)


@pytest.mark.parametrize("cls", [Conv2dSTDPLearner, Conv2dRSTDPLearner])
def test_unsupported_synapses(cls):
    with pytest.raises(NotImplementedError, match="dilation"):
        cls("s", nn.Conv2d(1, 1, 3, dilation=2), nn.Identity())
    with pytest.raises(NotImplementedError, match="groups"):
        cls("s", nn.Conv2d(2, 2, 3, groups=2), nn.Identity())
    with pytest.raises(TypeError, match="weight"):
        cls("s", nn.Linear(3, 2), nn.Identity())


def test_bad_rewards_and_shapes():
    conv = make_conv("pad1")
    sn = nn.Identity()
    learner = Conv2dRSTDPLearner("s", conv, sn)
    xs, ys = data(conv, 2, 2, 4, 4, seed=1)
    for bad in (None, torch.ones(5), torch.ones(2, 3, 4), float("nan")):
        drive(conv, sn, xs[0], ys[0])
        with pytest.raises(ValueError, match="reward"):
            learner.step(bad)
    stdp = Conv2dSTDPLearner("s", conv, sn)
    conv(xs[0])
    sn(torch.ones(2, 3, 3, 3))  # wrong number of output positions
    with pytest.raises(ValueError, match="positions"):
        stdp.step()


def test_with_snnlab_layer_and_neuron():
    neuron = pytest.importorskip("snnlab.neuron")
    layer = pytest.importorskip("snnlab.layer")
    conv = layer.Conv2d(2, 3, 3, padding=1, bias=False, step_mode="m").double()
    sn = neuron.IFNode(v_threshold=0.3, step_mode="m")
    learner = Conv2dSTDPLearner("m", conv, sn)
    g = torch.Generator().manual_seed(0)
    x_seq = (torch.rand(4, 2, 2, 4, 4, generator=g) < 0.5).double()
    with torch.no_grad():
        conv.weight.copy_(torch.rand(conv.weight.shape, generator=g, dtype=torch.float64) * 0.3)
    y_seq = sn(conv(x_seq))
    assert 0 < y_seq.sum() < y_seq.numel()
    expect = stdp_reference(conv, list(x_seq), list(y_seq), 0.1, 20.0, 20.0, 1.0, -1.0)
    torch.testing.assert_close(learner.step(on_grad=False), sum(expect), rtol=1e-10, atol=1e-12)
