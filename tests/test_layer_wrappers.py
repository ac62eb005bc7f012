"""snnlab.layer stateless wrappers: step modes against the plain torch layers."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from snnlab import functional, layer

ATOL = 1e-6

# name: (snnlab factory(step_mode), torch factory, shape of one step [N, ...])
SPECS = {
    "Conv1d": (lambda m: layer.Conv1d(2, 3, 3, step_mode=m), lambda: nn.Conv1d(2, 3, 3), (2, 2, 7)),
    "Conv2d": (
        lambda m: layer.Conv2d(2, 3, 3, padding=1, step_mode=m),
        lambda: nn.Conv2d(2, 3, 3, padding=1),
        (2, 2, 5, 5),
    ),
    "Conv3d": (lambda m: layer.Conv3d(2, 3, 2, step_mode=m), lambda: nn.Conv3d(2, 3, 2), (2, 2, 3, 3, 3)),
    "ConvTranspose1d": (
        lambda m: layer.ConvTranspose1d(2, 3, 3, stride=2, step_mode=m),
        lambda: nn.ConvTranspose1d(2, 3, 3, stride=2),
        (2, 2, 5),
    ),
    "ConvTranspose2d": (
        lambda m: layer.ConvTranspose2d(2, 3, 3, stride=2, step_mode=m),
        lambda: nn.ConvTranspose2d(2, 3, 3, stride=2),
        (2, 2, 3, 3),
    ),
    "ConvTranspose3d": (
        lambda m: layer.ConvTranspose3d(2, 3, 2, step_mode=m),
        lambda: nn.ConvTranspose3d(2, 3, 2),
        (2, 2, 2, 2, 2),
    ),
    "Upsample-nearest": (
        lambda m: layer.Upsample(scale_factor=2, step_mode=m),
        lambda: nn.Upsample(scale_factor=2),
        (2, 2, 3, 3),
    ),
    "Upsample-bilinear": (
        lambda m: layer.Upsample(size=(4, 5), mode="bilinear", align_corners=False, step_mode=m),
        lambda: nn.Upsample(size=(4, 5), mode="bilinear", align_corners=False),
        (2, 2, 3, 3),
    ),
    "BatchNorm1d-NC": (lambda m: layer.BatchNorm1d(3, step_mode=m), lambda: nn.BatchNorm1d(3), (4, 3)),
    "BatchNorm1d-NCL": (lambda m: layer.BatchNorm1d(3, step_mode=m), lambda: nn.BatchNorm1d(3), (2, 3, 4)),
    "BatchNorm2d": (lambda m: layer.BatchNorm2d(3, step_mode=m), lambda: nn.BatchNorm2d(3), (2, 3, 3, 3)),
    "BatchNorm3d": (lambda m: layer.BatchNorm3d(3, step_mode=m), lambda: nn.BatchNorm3d(3), (2, 3, 2, 2, 2)),
    "GroupNorm": (lambda m: layer.GroupNorm(2, 4, step_mode=m), lambda: nn.GroupNorm(2, 4), (2, 4, 3, 3)),
    "MaxPool1d": (lambda m: layer.MaxPool1d(2, step_mode=m), lambda: nn.MaxPool1d(2), (2, 2, 6)),
    "MaxPool2d": (
        lambda m: layer.MaxPool2d(2, stride=1, padding=1, step_mode=m),
        lambda: nn.MaxPool2d(2, stride=1, padding=1),
        (2, 2, 4, 4),
    ),
    "MaxPool3d": (lambda m: layer.MaxPool3d(2, step_mode=m), lambda: nn.MaxPool3d(2), (2, 2, 4, 4, 4)),
    "AvgPool1d": (lambda m: layer.AvgPool1d(2, step_mode=m), lambda: nn.AvgPool1d(2), (2, 2, 6)),
    "AvgPool2d": (
        lambda m: layer.AvgPool2d(3, stride=2, padding=1, step_mode=m),
        lambda: nn.AvgPool2d(3, stride=2, padding=1),
        (2, 2, 5, 5),
    ),
    "AvgPool3d": (lambda m: layer.AvgPool3d(2, step_mode=m), lambda: nn.AvgPool3d(2), (2, 2, 4, 4, 4)),
    "AdaptiveAvgPool1d": (
        lambda m: layer.AdaptiveAvgPool1d(3, step_mode=m),
        lambda: nn.AdaptiveAvgPool1d(3),
        (2, 2, 7),
    ),
    "AdaptiveAvgPool2d": (
        lambda m: layer.AdaptiveAvgPool2d((2, 3), step_mode=m),
        lambda: nn.AdaptiveAvgPool2d((2, 3)),
        (2, 2, 5, 7),
    ),
    "AdaptiveAvgPool3d": (
        lambda m: layer.AdaptiveAvgPool3d(2, step_mode=m),
        lambda: nn.AdaptiveAvgPool3d(2),
        (2, 2, 4, 5, 3),
    ),
    "Linear": (lambda m: layer.Linear(5, 3, step_mode=m), lambda: nn.Linear(5, 3), (2, 5)),
    "Flatten": (lambda m: layer.Flatten(step_mode=m), lambda: nn.Flatten(), (2, 3, 2, 2)),
}

# ranks that each step mode must refuse: (rank in 's', rank in 'm')
BAD_RANKS = {
    "Conv1d": (4, 3),
    "Conv2d": (5, 4),
    "Conv3d": (6, 5),
    "ConvTranspose1d": (4, 3),
    "ConvTranspose2d": (5, 4),
    "ConvTranspose3d": (6, 5),
    "Upsample-nearest": (6, 3),
    "BatchNorm1d-NC": (4, 5),
    "BatchNorm2d": (5, 4),
    "BatchNorm3d": (6, 5),
    "GroupNorm": (1, 2),
    "MaxPool1d": (4, 3),
    "MaxPool2d": (5, 4),
    "MaxPool3d": (6, 5),
    "AvgPool1d": (4, 3),
    "AvgPool2d": (5, 4),
    "AvgPool3d": (6, 5),
    "AdaptiveAvgPool1d": (4, 3),
    "AdaptiveAvgPool2d": (5, 4),
    "AdaptiveAvgPool3d": (6, 5),
    "Linear": (0, 2),
    "Flatten": (0, 1),
}


def _randomize_buffers(module: nn.Module) -> None:
    """Give BatchNorm non-trivial running statistics and affine parameters."""
    with torch.no_grad():
        for name, buf in module.named_buffers():
            if name.endswith("running_mean"):
                buf.copy_(torch.randn_like(buf))
            elif name.endswith("running_var"):
                buf.copy_(torch.rand_like(buf) + 0.5)
        for p in module.parameters():
            if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.GroupNorm)):
                p.copy_(torch.randn_like(p))


def _build(name: str):
    ours_factory, ref_factory, step_shape = SPECS[name]
    torch.manual_seed(0)
    ref = ref_factory()
    _randomize_buffers(ref)
    s_layer = ours_factory("s")
    m_layer = ours_factory("m")
    s_layer.load_state_dict(ref.state_dict())
    m_layer.load_state_dict(ref.state_dict())
    return s_layer, m_layer, ref, step_shape


@pytest.mark.parametrize("name", sorted(SPECS))
def test_state_dict_keys_equal_torch_layer(name):
    ours_factory, ref_factory, _ = SPECS[name]
    assert list(ours_factory("s").state_dict().keys()) == list(ref_factory().state_dict().keys())


@pytest.mark.parametrize("name", sorted(SPECS))
def test_multi_step_equals_stacked_single_steps_and_folded_torch(name):
    s_layer, m_layer, ref, step_shape = _build(name)
    for mod in (s_layer, m_layer, ref):
        mod.eval()
    T = 3
    x_seq = torch.randn(T, *step_shape)
    y_m = m_layer(x_seq)
    y_s = torch.stack([s_layer(x_seq[t]) for t in range(T)])
    # reference: the torch layer on the folded input, unfolded by hand
    folded = ref(x_seq.reshape(T * step_shape[0], *step_shape[1:]))
    y_ref = folded.reshape(T, step_shape[0], *folded.shape[1:])
    assert y_m.shape == y_ref.shape
    torch.testing.assert_close(y_m, y_ref, atol=ATOL, rtol=1e-5)
    torch.testing.assert_close(y_s, y_ref, atol=ATOL, rtol=1e-5)


@pytest.mark.parametrize("name", sorted(SPECS))
def test_multi_step_gradients_equal_torch(name):
    _, m_layer, ref, step_shape = _build(name)
    T = 2
    x = torch.randn(T, *step_shape)
    x1 = x.clone().requires_grad_(True)
    x2 = x.clone().requires_grad_(True)
    w = torch.randn_like(m_layer(x))
    (m_layer(x1) * w).sum().backward()
    folded = ref(x2.reshape(T * step_shape[0], *step_shape[1:]))
    (folded.reshape(w.shape) * w).sum().backward()
    torch.testing.assert_close(x1.grad, x2.grad, atol=1e-5, rtol=1e-5)
    for (n1, p1), (n2, p2) in zip(m_layer.named_parameters(), ref.named_parameters()):
        assert n1 == n2
        torch.testing.assert_close(p1.grad, p2.grad, atol=1e-5, rtol=1e-5)


def test_batchnorm_training_mode_uses_statistics_over_time_and_batch():
    T, N, C, H, W = 3, 2, 3, 2, 2
    bn = layer.BatchNorm2d(C, step_mode="m")
    x = torch.randn(T, N, C, H, W) * 2 + 1
    y = bn(x)
    # plain equations: statistics over T*N*H*W per channel, biased variance
    mean = x.mean(dim=(0, 1, 3, 4), keepdim=True)
    var = ((x - mean) ** 2).mean(dim=(0, 1, 3, 4), keepdim=True)
    torch.testing.assert_close(y, (x - mean) / torch.sqrt(var + bn.eps), atol=1e-5, rtol=1e-5)
    n = T * N * H * W
    expected_running_var = 0.9 * torch.ones(C) + 0.1 * var.flatten() * n / (n - 1)
    torch.testing.assert_close(bn.running_var, expected_running_var, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(bn.running_mean, 0.1 * mean.flatten(), atol=1e-6, rtol=1e-5)


def test_maxpool_return_indices_in_multi_step_mode():
    x = torch.randn(3, 2, 2, 4, 4)
    pool = layer.MaxPool2d(2, return_indices=True, step_mode="m")
    y, idx = pool(x)
    ref_y, ref_idx = nn.functional.max_pool2d(x.flatten(0, 1), 2, return_indices=True)
    torch.testing.assert_close(y, ref_y.view(3, 2, 2, 2, 2))
    assert torch.equal(idx, ref_idx.view(3, 2, 2, 2, 2))


def test_flatten_multi_step_keeps_time_and_batch():
    x = torch.randn(3, 2, 4, 2, 2)
    y = layer.Flatten(step_mode="m")(x)
    assert y.shape == (3, 2, 16)
    torch.testing.assert_close(y, x.reshape(3, 2, 16))


def test_linear_equation():
    lin = layer.Linear(4, 2, step_mode="m")
    x = torch.randn(3, 5, 4)
    expected = torch.empty(3, 5, 2)
    for t in range(3):
        for n in range(5):
            expected[t, n] = lin.weight @ x[t, n] + lin.bias
    torch.testing.assert_close(lin(x), expected, atol=1e-6, rtol=1e-5)


@settings(max_examples=25, deadline=None)
@given(T=st.integers(1, 4), N=st.integers(1, 3), stride=st.integers(1, 2), seed=st.integers(0, 2**16))
def test_conv2d_multi_step_property(T, N, stride, seed):
    torch.manual_seed(seed)
    conv = layer.Conv2d(2, 2, 3, stride=stride, padding=1, step_mode="m")
    x = torch.randn(T, N, 2, 5, 5)
    y = conv(x)
    for t in range(T):
        expected = nn.functional.conv2d(x[t], conv.weight, conv.bias, stride=stride, padding=1)
        torch.testing.assert_close(y[t], expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", sorted(BAD_RANKS))
def test_wrong_rank_raises_value_error(name):
    ours_factory, _, _ = SPECS[name]
    s_rank, m_rank = BAD_RANKS[name]
    with pytest.raises(ValueError, match="x_seq"):
        ours_factory("m")(torch.zeros((2,) * m_rank))
    with pytest.raises(ValueError, match=r"step_mode='s' expects x with shape"):
        ours_factory("s")(torch.zeros((2,) * s_rank))


def test_single_step_input_in_multi_step_mode_names_shapes():
    conv = layer.Conv2d(2, 3, 3, step_mode="m")
    with pytest.raises(ValueError, match=r"\[T, N, C, H, W\].*\(2, 2, 5, 5\)"):
        conv(torch.zeros(2, 2, 5, 5))


def test_non_tensor_input_raises_type_error():
    with pytest.raises(TypeError, match=r"x must be a torch\.Tensor"):
        layer.Linear(2, 2)([1.0, 2.0])


@pytest.mark.parametrize("name", sorted(SPECS))
def test_bad_step_mode_raises(name):
    ours_factory, _, _ = SPECS[name]
    with pytest.raises(ValueError, match="step_mode"):
        ours_factory("x")
    module = ours_factory("s")
    with pytest.raises(ValueError, match="step_mode"):
        module.step_mode = "multi"


def test_set_step_mode_switches_wrappers_and_repr():
    net = nn.Sequential(layer.Conv2d(1, 2, 3), layer.Flatten())
    functional.set_step_mode(net, "m")
    assert net[0].step_mode == "m" and net[1].step_mode == "m"
    assert "step_mode=m" in repr(net)
    assert net(torch.randn(2, 3, 1, 5, 5)).shape == (2, 3, 18)
