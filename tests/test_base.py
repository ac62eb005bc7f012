"""snnlab.base: step modes, memories, reset, detach, dispatch."""

import pytest
import torch
from torch import nn

from snnlab import base


class Accumulator(base.MemoryModule):
    """y[t] = s[t] with s[t] = decay * s[t-1] + x[t], s[-1] = 0 (a leaky sum)."""

    def __init__(self, decay: float = 0.5, step_mode: str = "s"):
        super().__init__()
        self.decay = decay
        self.register_memory("s", 0.0)
        self.register_memory("count", 0)
        self.step_mode = step_mode

    def single_step_forward(self, x):
        self.s = self.decay * self.s + x
        self.count = self.count + 1
        return self.s


def leaky_sum_reference(x_seq, decay):
    s = torch.zeros_like(x_seq[0])
    out = []
    for x in x_seq:
        s = decay * s + x
        out.append(s)
    return torch.stack(out)


def test_step_mode_validation_names_argument_and_allowed_values():
    m = Accumulator()
    for bad in ("x", "single", None, 1):
        with pytest.raises(ValueError, match=r"step_mode.*\('s', 'm'\)"):
            m.step_mode = bad
    assert m.step_mode == "s"


def test_single_and_multi_only_modules():
    class OnlyMulti(base.MultiStepModule, nn.Module):
        pass

    class OnlySingle(base.SingleStepModule, nn.Module):
        pass

    m = OnlyMulti()
    m.step_mode = "m"
    with pytest.raises(ValueError, match="step_mode"):
        m.step_mode = "s"
    s = OnlySingle()
    s.step_mode = "s"
    with pytest.raises(ValueError, match="step_mode"):
        s.step_mode = "m"


def test_single_step_matches_reference_and_state_carries():
    torch.manual_seed(0)
    x_seq = torch.randn(5, 3, 4)
    m = Accumulator(decay=0.3)
    ys = torch.stack([m(x) for x in x_seq])
    torch.testing.assert_close(ys, leaky_sum_reference(x_seq, 0.3), rtol=0, atol=1e-6)
    assert m.count == 5


def test_multi_step_equals_stacked_single_steps():
    torch.manual_seed(1)
    x_seq = torch.randn(7, 2, 3)
    m = Accumulator(decay=0.8, step_mode="m")
    y = m(x_seq)
    assert y.shape == x_seq.shape
    torch.testing.assert_close(y, leaky_sum_reference(x_seq, 0.8), rtol=0, atol=1e-6)


def test_reset_restores_initial_values_and_is_a_copy():
    m = Accumulator()
    init = torch.zeros(3)
    m.register_memory("buf", init)
    m.buf.add_(5.0)  # in-place change of the live memory must not leak into the reset value
    m(torch.ones(3))
    m.reset()
    assert m.s == 0.0 and m.count == 0
    torch.testing.assert_close(m.buf, torch.zeros(3))
    m.set_reset_value("count", 3)
    m.reset()
    assert m.count == 3


def test_register_memory_refuses_existing_attribute():
    m = Accumulator()
    with pytest.raises(ValueError, match="decay"):
        m.register_memory("decay", 1.0)
    with pytest.raises(ValueError, match="s"):
        m.register_memory("s", 1.0)
    with pytest.raises(ValueError, match="name"):
        m.register_memory("not valid", 1.0)


def test_detach_cuts_graph():
    m = Accumulator()
    x = torch.ones(2, requires_grad=True)
    m(x)
    assert m.s.requires_grad
    m.detach()
    assert not m.s.requires_grad
    y = m(x)
    y.sum().backward()
    torch.testing.assert_close(x.grad, torch.ones(2))  # only the current step's path remains


def test_memories_follow_dtype_and_are_listed():
    m = Accumulator()
    m(torch.ones(2))
    m.double()
    assert m.s.dtype == torch.float64
    assert dict(m.named_memories()).keys() == {"s", "count"}
    assert "s" in dir(m)
    assert "s" not in m.state_dict()


def test_backend_validation_lists_supported():
    m = Accumulator()
    assert m.backend == "torch"
    with pytest.raises(ValueError, match=r"backend.*'torch'"):
        m.backend = "nope"


def test_delattr_memory():
    m = Accumulator()
    del m.count
    assert "count" not in dict(m.named_memories())
    m.reset()
    assert not hasattr(m, "count")


def test_extra_repr_mentions_mode():
    assert "step_mode=s" in repr(Accumulator())
