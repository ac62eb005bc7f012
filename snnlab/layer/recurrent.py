r"""Containers adding a recurrent connection around a single-step module.

Both hold ``sub_module`` (in ``step_mode='s'``), keep its previous output
``y[t-1]`` (memory ``y``, ``y[-1] = 0``) and feed it back. In ``'m'`` mode the
recursion runs over the ``T`` steps of ``x_seq``. ``set_step_mode`` leaves
``sub_module`` in ``'s'`` mode (``keeps_inner_step_mode = True``).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from ..base import MemoryModule
from ._checks import check_bool, check_int, check_rank, check_tensor

__all__ = ["ElementWiseRecurrentContainer", "LinearRecurrentContainer"]


def _check_sub_module(sub_module: object) -> nn.Module:
    if not isinstance(sub_module, nn.Module):
        raise TypeError(f"sub_module must be an nn.Module, got {type(sub_module).__name__}")
    mode = getattr(sub_module, "step_mode", "s")
    if mode != "s":
        raise ValueError(f"sub_module must have step_mode='s', got step_mode={mode!r}")
    return sub_module


class ElementWiseRecurrentContainer(MemoryModule):
    r"""Element-wise recurrent connection around ``sub_module``.

    With module input :math:`x[t]`, ``sub_module`` input :math:`i[t]` and
    output :math:`y[t]` (also this module's output):

    .. math::
        i[t] = f(y[t-1], x[t]), \qquad y[t] = \mathrm{sub\_module}(i[t]), \qquad y[-1] = 0

    ``element_wise_function`` is called as ``f(y[t-1], x[t])`` -- the previous
    output first, the input second -- as in every SpikingJelly release (whose
    documentation writes :math:`f(x[t], y[t-1])`); the order matters only for
    a non-symmetric ``f``. ``sub_module`` must map a shape to the same shape.

    :param sub_module: the contained single-step module
    :param element_wise_function: ``z = f(y_prev, x)``, element-wise
    :param step_mode: ``'s'`` (``[N, ...]``) or ``'m'`` (``[T, N, ...]``)
    """

    keeps_inner_step_mode = True

    def __init__(self, sub_module: nn.Module, element_wise_function: Callable, step_mode: str = "s") -> None:
        super().__init__()
        self.step_mode = step_mode
        self.sub_module = _check_sub_module(sub_module)
        if not callable(element_wise_function):
            raise TypeError(
                f"element_wise_function must be callable, got {type(element_wise_function).__name__}"
            )
        self.element_wise_function = element_wise_function
        self.register_memory("y", None)

    def single_step_forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``[N, ...]``; returns ``y[t]`` of the same shape."""
        check_tensor("x", x)
        if self.y is None:
            self.y = torch.zeros_like(x.detach())
        self.y = self.sub_module(self.element_wise_function(self.y, x))
        return self.y

    def multi_step_forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        """``x_seq``: ``[T, N, ...]``; the recursion over ``T``."""
        check_rank("x_seq", x_seq, range(1, 65), "[T, N, ...]", type(self).__name__, "m")
        return super().multi_step_forward(x_seq)

    def extra_repr(self) -> str:
        return f"element_wise_function={self.element_wise_function}, step_mode={self.step_mode}"


class LinearRecurrentContainer(MemoryModule):
    r"""Linear recurrent connection around ``sub_module``.

    .. math::
        i[t] = \begin{pmatrix} x[t] \\ y[t-1] \end{pmatrix} W^{T} + b, \qquad
        y[t] = \mathrm{sub\_module}(i[t]), \qquad y[-1] = 0

    The connection ``self.rc`` is ``nn.Linear(in_features + out_features,
    in_features, bias)``, so ``sub_module`` maps ``[N, *, in_features]`` to
    ``[N, *, out_features]``.

    :param sub_module: the contained single-step module
    :param in_features: last dimension of the input ``x[t]``
    :param out_features: last dimension of ``sub_module``'s output ``y[t]``
    :param bias: learn a bias in the recurrent connection
    :param step_mode: ``'s'`` (``[N, *, in_features]``) or ``'m'`` (``[T, N, *, in_features]``)
    """

    keeps_inner_step_mode = True

    def __init__(
        self,
        sub_module: nn.Module,
        in_features: int,
        out_features: int,
        bias: bool = True,
        step_mode: str = "s",
    ) -> None:
        super().__init__()
        self.step_mode = step_mode
        self.in_features = check_int("in_features", in_features, 1)
        self.sub_module_out_features = check_int("out_features", out_features, 1)
        self.rc = nn.Linear(in_features + out_features, in_features, check_bool("bias", bias))
        self.sub_module = _check_sub_module(sub_module)
        self.register_memory("y", None)

    def single_step_forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``[N, *, in_features]``; returns ``[N, *, out_features]``."""
        check_rank("x", x, range(2, 65), "[N, *, in_features]", type(self).__name__, "s")
        if x.shape[-1] != self.in_features:
            raise ValueError(
                f"{type(self).__name__} expects x with last dimension in_features={self.in_features}, "
                f"got shape {tuple(x.shape)}"
            )
        if self.y is None:
            self.y = x.new_zeros((*x.shape[:-1], self.sub_module_out_features))
        self.y = self.sub_module(self.rc(torch.cat((x, self.y), dim=-1)))
        return self.y

    def multi_step_forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        """``x_seq``: ``[T, N, *, in_features]``; the recursion over ``T``."""
        check_rank("x_seq", x_seq, range(3, 65), "[T, N, *, in_features]", type(self).__name__, "m")
        return super().multi_step_forward(x_seq)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.sub_module_out_features}, "
            f"step_mode={self.step_mode}"
        )
