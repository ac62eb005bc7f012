"""Tests for snnlab.encoding against formulas written out in the test."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from snnlab import encoding


# ---------------------------------------------------------------- Poisson
def test_poisson_rates_converge():
    # n Bernoulli(p) draws: the mean has std sqrt(p(1-p)/n) <= 0.5/sqrt(n).
    # With n = 20000 that is <= 0.0036; a 6-sigma band (0.022) fails by chance with p < 1e-8.
    n = 20000
    p = torch.tensor([0.0, 0.05, 0.3, 0.5, 0.77, 1.0])
    enc = encoding.PoissonEncoder(generator=torch.Generator().manual_seed(123))
    x = p.expand(n, -1).contiguous()  # [n, 6]
    s = enc(x)
    assert s.shape == x.shape and s.dtype == x.dtype
    assert set(s.unique().tolist()) <= {0.0, 1.0}
    rate = s.mean(0)
    tol = 6 * torch.sqrt(p * (1 - p) / n)
    assert torch.all((rate - p).abs() <= tol + 1e-12), (rate, p)
    assert rate[0] == 0.0 and rate[-1] == 1.0  # exact at the ends


def test_poisson_matches_uniform_threshold_rule():
    # s = (u < x) with u drawn from the same generator stream
    x = torch.rand(3, 7, generator=torch.Generator().manual_seed(5))
    enc = encoding.PoissonEncoder(generator=torch.Generator().manual_seed(9))
    s = enc(x)
    u = torch.rand(3, 7, generator=torch.Generator().manual_seed(9))
    expected = torch.where(u < x, 1.0, 0.0)
    torch.testing.assert_close(s, expected, atol=0, rtol=0)


def test_poisson_reproducible_and_fresh_each_call():
    x = torch.full((4, 50), 0.5)
    a = encoding.PoissonEncoder(generator=torch.Generator().manual_seed(7))
    b = encoding.PoissonEncoder(generator=torch.Generator().manual_seed(7))
    s_a = [a(x) for _ in range(3)]
    s_b = [b(x) for _ in range(3)]
    for u, v in zip(s_a, s_b):
        assert torch.equal(u, v)
    assert not torch.equal(s_a[0], s_a[1])  # new draws at each step


def test_poisson_multi_step_shape_and_float64():
    enc = encoding.PoissonEncoder(step_mode="m", generator=torch.Generator().manual_seed(0))
    x = torch.rand(5, 2, 3, dtype=torch.float64)
    s = enc(x)
    assert s.shape == (5, 2, 3) and s.dtype == torch.float64


@pytest.mark.parametrize(
    "bad", [torch.tensor([0.5, 1.5]), torch.tensor([-0.1]), torch.tensor([float("nan")])]
)
def test_poisson_rejects_out_of_range(bad):
    with pytest.raises(ValueError, match=r"^x must"):
        encoding.PoissonEncoder()(bad)


def test_poisson_bad_arguments():
    with pytest.raises(TypeError, match="generator"):
        encoding.PoissonEncoder(generator=42)
    with pytest.raises(ValueError, match="step_mode"):
        encoding.PoissonEncoder(step_mode="x")
    with pytest.raises(TypeError, match=r"^x must"):
        encoding.PoissonEncoder()([0.5])


# ---------------------------------------------------------------- Latency
def ref_t_f(xi: float, T: int, enc_function: str) -> float:
    """Real-valued firing time t_f(x) from the definition."""
    if enc_function == "linear":
        return (T - 1) * (1 - xi)
    alpha = math.exp(T - 1) - 1
    return (T - 1) - math.log(alpha * xi + 1)


def ref_latency_times(x: torch.Tensor, T: int, enc_function: str) -> torch.Tensor:
    """Firing step per element, written from the definition (float64)."""
    out = torch.empty(x.shape, dtype=torch.long)
    flat_x = x.double().reshape(-1)
    flat_out = out.reshape(-1)
    # Python round() is round-half-to-even, the rule the encoder documents
    for i in range(flat_x.numel()):
        flat_out[i] = round(ref_t_f(float(flat_x[i]), T, enc_function))
    return out


def spike_times(spike: torch.Tensor) -> torch.Tensor:
    """Index of the (single) spike along dim 0."""
    return spike.argmax(0)


@pytest.mark.parametrize("enc_function", ["linear", "log"])
def test_latency_single_step_formula_and_once(enc_function):
    T = 8
    x = torch.rand(3, 5, generator=torch.Generator().manual_seed(2))
    x[0, 0], x[0, 1] = 0.0, 1.0
    enc = encoding.LatencyEncoder(T, enc_function)
    outs = torch.stack([enc(x) for _ in range(T)])  # [T, 3, 5]
    assert outs.shape == (T, 3, 5) and outs.dtype == x.dtype
    # exactly one spike per element in T steps
    torch.testing.assert_close(outs.sum(0), torch.ones(3, 5), atol=0, rtol=0)
    assert torch.equal(spike_times(outs), ref_latency_times(x, T, enc_function))
    assert spike_times(outs)[0, 0] == T - 1 and spike_times(outs)[0, 1] == 0
    # period T: the next T calls repeat the same train
    again = torch.stack([enc(x) for _ in range(T)])
    assert torch.equal(outs, again)


@settings(max_examples=40, deadline=None)
@given(
    T=st.integers(1, 30),
    enc_function=st.sampled_from(["linear", "log"]),
    values=st.lists(st.floats(0.0, 1.0), min_size=1, max_size=8),
)
def test_latency_property(T, enc_function, values):
    x = torch.tensor(values, dtype=torch.float64)
    enc = encoding.LatencyEncoder(T, enc_function, step_mode="m")
    out = enc(x.expand(T, -1))  # [T, N]
    assert out.shape == (T, len(values))
    assert torch.equal(out.sum(0), torch.ones(len(values), dtype=torch.float64))
    got = spike_times(out)
    ref = ref_latency_times(x, T, enc_function)
    # compare exactly except where t_f sits within rounding noise of a .5 tie
    for xi, g, r in zip(values, got.tolist(), ref.tolist()):
        t_f = ref_t_f(xi, T, enc_function)
        if abs(t_f - math.floor(t_f) - 0.5) > 1e-9:
            assert g == r, (xi, T, enc_function)
        else:
            assert abs(g - t_f) <= 0.5 + 1e-9


def test_latency_multi_step_equals_single_step_and_reset():
    T = 5
    x = torch.tensor([[0.1, 0.5, 0.9], [1.0, 0.0, 0.33]])
    single = encoding.LatencyEncoder(T, "log")
    s_seq = torch.stack([single(x) for _ in range(T)])
    multi = encoding.LatencyEncoder(T, "log", step_mode="m")
    m_seq = multi(x.expand(T, -1, -1))
    assert m_seq.shape == (T, 2, 3)
    assert torch.equal(s_seq, m_seq)
    # the spike train is fixed until reset; reset re-encodes a new input
    y = torch.tensor([[1.0, 1.0, 1.0], [0.0, 0.0, 0.0]])
    assert torch.equal(multi(y.expand(T, -1, -1)), m_seq)
    multi.reset()
    assert multi.t == 0 and multi.spike is None
    out = multi(y.expand(T, -1, -1))
    assert torch.equal(spike_times(out), torch.tensor([[0, 0, 0], [T - 1] * 3]))


def test_latency_large_T_log_no_overflow():
    T = 1000
    x = torch.tensor([0.0, 1e-300, 0.5, 1.0], dtype=torch.float64)
    enc = encoding.LatencyEncoder(T, "log")
    enc(x)
    times = spike_times(enc.spike)
    # t_f = -ln(x + (1-x) e^{-(T-1)}): x=0 -> T-1, x=0.5 -> ln 2 -> 1, x=1 -> 0
    assert times.tolist()[0] == T - 1
    assert times.tolist()[2:] == [round(math.log(2)), 0]


def test_latency_T1():
    enc = encoding.LatencyEncoder(1, "log")
    x = torch.tensor([0.0, 0.4, 1.0])
    torch.testing.assert_close(enc(x), torch.ones(3))
    torch.testing.assert_close(enc(x), torch.ones(3))


@pytest.mark.parametrize("bad_T", [0, -2])
def test_latency_bad_T_value(bad_T):
    with pytest.raises(ValueError, match=r"^T must"):
        encoding.LatencyEncoder(bad_T)


@pytest.mark.parametrize("bad_T", [2.0, "4", True])
def test_latency_bad_T_type(bad_T):
    with pytest.raises(TypeError, match=r"^T must"):
        encoding.LatencyEncoder(bad_T)


def test_latency_bad_enc_function_and_x():
    with pytest.raises(ValueError, match=r"^enc_function must") as info:
        encoding.LatencyEncoder(4, "exp")
    assert "linear" in str(info.value) and "log" in str(info.value)
    with pytest.raises(ValueError, match=r"^x must"):
        encoding.LatencyEncoder(4)(torch.tensor([1.2]))
    with pytest.raises(ValueError, match="step_mode"):
        encoding.LatencyEncoder(4, step_mode="q")


# ---------------------------------------------------------------- Periodic
def test_periodic_cycles_single_step():
    pattern = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    enc = encoding.PeriodicEncoder(pattern)
    assert enc.T == 3
    outs = [enc() for _ in range(7)]
    for t, o in enumerate(outs):
        torch.testing.assert_close(o, pattern[t % 3], atol=0, rtol=0)
    # input is ignored
    torch.testing.assert_close(enc(torch.full((2,), 9.0)), pattern[7 % 3], atol=0, rtol=0)


def test_periodic_multi_step_and_reset_keeps_pattern():
    pattern = torch.tensor([[1.0], [0.0], [0.0], [1.0]])
    enc = encoding.PeriodicEncoder(pattern, step_mode="m")
    out = enc(torch.zeros(6, 1))  # 6 steps
    expected = torch.stack([pattern[t % 4] for t in range(6)])
    torch.testing.assert_close(out, expected, atol=0, rtol=0)
    enc.reset()
    torch.testing.assert_close(enc(), pattern, atol=0, rtol=0)  # T steps from the start


def test_periodic_bad_spike():
    with pytest.raises(TypeError, match=r"^spike must"):
        encoding.PeriodicEncoder([1, 0, 1])
    with pytest.raises(ValueError, match=r"^spike must"):
        encoding.PeriodicEncoder(torch.tensor(1.0))
    with pytest.raises(ValueError, match=r"^spike must"):
        encoding.PeriodicEncoder(torch.zeros(0, 3))


def test_stateful_encoder_needs_input_first():
    enc = encoding.LatencyEncoder(3)
    with pytest.raises(ValueError, match=r"^x must"):
        enc()


@pytest.mark.parametrize("T", [2, 5, 12])
@pytest.mark.parametrize("enc_function", ["linear", "log"])
def test_latency_dense_grid(T, enc_function):
    # a dense grid plus tiny values, where the log form's "+1" term matters
    grid = torch.linspace(0, 1, 401, dtype=torch.float64)
    tiny = torch.logspace(-8, -1, 57, dtype=torch.float64)
    x = torch.cat([grid, tiny])
    enc = encoding.LatencyEncoder(T, enc_function)
    enc(x)
    assert enc.spike.shape == (T, x.numel())
    got = spike_times(enc.spike)
    ref = ref_latency_times(x, T, enc_function)
    mismatch = (got != ref).nonzero().flatten().tolist()
    for i in mismatch:  # only allowed at an exact .5 tie, up to rounding noise
        xi = float(x[i])
        t_f = ref_t_f(xi, T, enc_function)
        assert abs(t_f - math.floor(t_f) - 0.5) <= 1e-9, (xi, T)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_poisson_cuda_generator():
    x = torch.full((8, 64), 0.3, device="cuda")
    a = encoding.PoissonEncoder(generator=torch.Generator(device="cuda").manual_seed(1))
    b = encoding.PoissonEncoder(generator=torch.Generator(device="cuda").manual_seed(1))
    s = a(x)
    assert s.device.type == "cuda"
    assert torch.equal(s, b(x))
    with pytest.raises(ValueError, match="generator"):
        encoding.PoissonEncoder(generator=torch.Generator().manual_seed(1))(x)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_latency_cuda_matches_cpu():
    x = torch.rand(4, 6)
    cpu = encoding.LatencyEncoder(7, "log", step_mode="m")(x.expand(7, -1, -1))
    gpu = encoding.LatencyEncoder(7, "log", step_mode="m")(x.cuda().expand(7, -1, -1))
    assert gpu.device.type == "cuda"
    assert torch.equal(gpu.cpu(), cpu)


# ---------------------------------------------------------------- WeightedPhase
def test_weighted_phase_bits():
    K = 8
    ints = [192, 1, 128, 255, 0, 77]
    x = torch.tensor([i / 256 for i in ints])
    enc = encoding.WeightedPhaseEncoder(K)
    out = torch.stack([enc(x) for _ in range(K)])  # [K, 6]
    for j, n in enumerate(ints):
        bits = [(n >> (K - 1 - k)) & 1 for k in range(K)]  # most significant first
        assert out[:, j].tolist() == [float(b) for b in bits], n
    weights = torch.tensor([2.0 ** -(k + 1) for k in range(K)])
    torch.testing.assert_close((weights[:, None] * out).sum(0), x, atol=0, rtol=0)


def test_weighted_phase_bad_input():
    with pytest.raises(ValueError, match=r"^x must"):
        encoding.WeightedPhaseEncoder(3)(torch.tensor([0.9]))  # > 1 - 1/8
    with pytest.raises(ValueError, match=r"^K must"):
        encoding.WeightedPhaseEncoder(0)
    with pytest.raises(TypeError, match=r"^K must"):
        encoding.WeightedPhaseEncoder(2.0)
