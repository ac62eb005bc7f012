r"""Dropout layers whose mask stays fixed over a simulation.

In an SNN one sample is seen for ``T`` steps; drawing a new dropout mask at
each step would average the dropout away. :class:`Dropout` and
:class:`Dropout2d` draw the mask at the first step after :meth:`reset` and
keep it until the next :meth:`reset` (Lee et al. 2020).
:class:`DropConnectLinear` drops connections of a linear layer (Wan et al.
2013).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..base import MemoryModule
from ._checks import check_bool, check_int, check_probability, check_rank, check_tensor

__all__ = ["DropConnectLinear", "Dropout", "Dropout2d"]


def _broadcasts_to(shape: torch.Size, target: torch.Size) -> bool:
    try:
        return torch.broadcast_shapes(shape, target) == target
    except RuntimeError:
        return False


class Dropout(MemoryModule):
    r"""Dropout with one mask per simulation.

    In training mode ``y = x * m`` with
    :math:`m = \mathrm{Bernoulli}(1 - p) / (1 - p)` drawn at the first call
    after :meth:`reset` (shape of one step ``[N, ...]``) and reused for every
    following step, in both step modes (``'m'``: ``y_seq[t] = x_seq[t] * m``).
    In eval mode ``y = x``.

    :param p: probability of an element to be zeroed, ``0 <= p < 1``
    :param step_mode: ``'s'`` (``[N, ...]``) or ``'m'`` (``[T, N, ...]``)
    """

    def __init__(self, p: float = 0.5, step_mode: str = "s") -> None:
        super().__init__()
        self.p = check_probability("p", p)
        self.step_mode = step_mode
        self.register_memory("mask", None)

    def extra_repr(self) -> str:
        return f"p={self.p}, step_mode={self.step_mode}"

    def create_mask(self, x: torch.Tensor) -> None:
        """Draw ``self.mask`` for one step ``x`` of shape ``[N, ...]``."""
        keep = torch.full_like(x.detach(), 1.0 - self.p)
        self.mask = torch.bernoulli(keep) / (1.0 - self.p)

    def _apply_mask(self, x: torch.Tensor, step: torch.Tensor) -> torch.Tensor:
        if self.mask is None:
            self.create_mask(step)
        elif not _broadcasts_to(self.mask.shape, step.shape):
            raise ValueError(
                f"{type(self).__name__} holds a mask for steps of shape {tuple(self.mask.shape)}, got a step "
                f"of shape {tuple(step.shape)}; call reset() before a new simulation"
            )
        return x * self.mask

    def single_step_forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``[N, ...]``."""
        check_tensor("x", x)
        if not self.training or self.p == 0.0:
            return x
        return self._apply_mask(x, x)

    def multi_step_forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        """``x_seq``: ``[T, N, ...]``; the same mask multiplies every step."""
        check_rank("x_seq", x_seq, range(2, 65), "[T, N, ...]", type(self).__name__, "m")
        if not self.training or self.p == 0.0:
            return x_seq
        return self._apply_mask(x_seq, x_seq[0])


class Dropout2d(Dropout):
    r"""Channel dropout with one mask per simulation.

    As :class:`Dropout`, but whole channels are zeroed: for a step
    ``[N, C, *]`` the mask has shape ``[N, C, 1, ..., 1]``, each entry
    :math:`\mathrm{Bernoulli}(1 - p) / (1 - p)`.

    :param p: probability of a channel to be zeroed, ``0 <= p < 1``
    :param step_mode: ``'s'`` (``[N, C, *]``) or ``'m'`` (``[T, N, C, *]``)
    """

    def __init__(self, p: float = 0.2, step_mode: str = "s") -> None:
        super().__init__(p, step_mode)

    def create_mask(self, x: torch.Tensor) -> None:
        if x.dim() < 3:
            raise ValueError(
                f"Dropout2d expects steps of shape [N, C, *] (at least 3 dims), got shape {tuple(x.shape)}"
            )
        shape = (*x.shape[:2], *([1] * (x.dim() - 2)))
        keep = torch.full(shape, 1.0 - self.p, dtype=x.dtype, device=x.device)
        self.mask = torch.bernoulli(keep) / (1.0 - self.p)


_DEFAULT_ACTIVATION = nn.ReLU()


class DropConnectLinear(MemoryModule):
    r"""Linear layer with dropped connections (DropConnect).

    Training mode, input ``x`` ``[N, in_features]``: for each sample ``n`` a
    mask :math:`M_n \sim \mathrm{Bernoulli}(1 - p)` of the weight shape (and
    :math:`m_n` of the bias shape) gives

    .. math::
        y_n = a\big((M_n \odot W) x_n + m_n \odot b\big)

    (``a`` = ``activation``; no ``1/(1-p)`` rescaling). With
    ``invariant=True`` the masks are drawn once after :meth:`reset` and kept,
    otherwise they are redrawn at every call.

    Eval mode (Algorithm 2 of Wan et al.): with
    :math:`\mu = (1-p)(W x + b)` and
    :math:`\sigma^2 = p(1-p)(W^2 x^2 + b^2)`, the output is the mean over
    ``samples_num`` draws :math:`u \sim \mathcal{N}(\mu, \sigma^2)` of
    :math:`a(u)`.

    :param in_features: size of each input sample
    :param out_features: size of each output sample
    :param bias: learn an additive bias
    :param p: probability of a connection to be dropped, ``0 <= p < 1``
    :param samples_num: number of Gaussian samples at inference, ``>= 1``
    :param invariant: keep the dropped connections until :meth:`reset`
    :param activation: module applied after the linear map (``None`` for none)
    :param state_mode: the step mode (the reference document's name for it)
    :param step_mode: the step mode; overrides ``state_mode`` when given
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        p: float = 0.5,
        samples_num: int = 1024,
        invariant: bool = False,
        activation: nn.Module | None = _DEFAULT_ACTIVATION,
        state_mode: str = "s",
        *,
        step_mode: str | None = None,
    ) -> None:
        super().__init__()
        if step_mode is not None and state_mode != "s" and step_mode != state_mode:
            raise ValueError(
                f"state_mode and step_mode name the same setting; got state_mode={state_mode!r} "
                f"and step_mode={step_mode!r}"
            )
        self.step_mode = state_mode if step_mode is None else step_mode
        self.in_features = check_int("in_features", in_features, 1)
        self.out_features = check_int("out_features", out_features, 1)
        self.p = check_probability("p", p)
        self.samples_num = check_int("samples_num", samples_num, 1)
        self.invariant = check_bool("invariant", invariant)
        check_bool("bias", bias)
        if activation is _DEFAULT_ACTIVATION:
            activation = nn.ReLU()
        if activation is not None and not callable(activation):
            raise TypeError(
                f"activation must be an nn.Module, a callable or None, got {type(activation).__name__}"
            )
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        if bias:
            self.bias = nn.Parameter(torch.empty(out_features))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()
        self.activation = activation
        self.register_memory("dropped_w", None)
        if self.bias is not None:
            self.register_memory("dropped_b", None)

    @property
    def state_mode(self) -> str:
        """Alias of :attr:`step_mode`."""
        return self.step_mode

    @state_mode.setter
    def state_mode(self, value: str) -> None:
        self.step_mode = value

    def reset_parameters(self) -> None:
        """Initialise ``weight`` and ``bias`` as :class:`torch.nn.Linear` does."""
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1.0 / math.sqrt(self.in_features)
            nn.init.uniform_(self.bias, -bound, bound)

    def reset(self) -> None:
        """Back to full connectivity; also resets ``activation`` if it has ``reset()``."""
        super().reset()
        if hasattr(self.activation, "reset"):
            self.activation.reset()

    def drop(self, batch_size: int) -> None:
        """Draw per-sample masks: ``dropped_w`` ``[N, out, in]``, ``dropped_b`` ``[N, out]``."""
        keep = 1.0 - self.p
        mask_w = torch.bernoulli(
            torch.full((batch_size, *self.weight.shape), keep, device=self.weight.device)
        )
        self.dropped_w = self.weight * mask_w.to(self.weight.dtype)
        if self.bias is not None:
            mask_b = torch.bernoulli(
                torch.full((batch_size, *self.bias.shape), keep, device=self.bias.device)
            )
            self.dropped_b = self.bias * mask_b.to(self.bias.dtype)

    def _activate(self, y: torch.Tensor) -> torch.Tensor:
        return y if self.activation is None else self.activation(y)

    def single_step_forward(self, input: torch.Tensor) -> torch.Tensor:
        """``input``: ``[N, in_features]``; returns ``[N, out_features]``."""
        check_rank("input", input, (2,), "[N, in_features]", "DropConnectLinear", "s")
        if input.shape[1] != self.in_features:
            raise ValueError(
                f"DropConnectLinear expects input with in_features={self.in_features} columns, "
                f"got shape {tuple(input.shape)}"
            )
        if self.training:
            if not self.invariant or self.dropped_w is None:
                self.drop(input.shape[0])
            elif self.dropped_w.shape[0] != input.shape[0]:
                raise ValueError(
                    f"DropConnectLinear(invariant=True) dropped connections for batch size "
                    f"{self.dropped_w.shape[0]}, got input with batch size {input.shape[0]}; call reset()"
                )
            y = torch.bmm(self.dropped_w, input.unsqueeze(-1)).squeeze(-1)
            if self.bias is not None:
                y = y + self.dropped_b
            return self._activate(y)
        keep = 1.0 - self.p
        mu = keep * F.linear(input, self.weight, self.bias)
        b2 = None if self.bias is None else self.bias.square()
        sigma = (self.p * keep * F.linear(input.square(), self.weight.square(), b2)).sqrt()
        samples = mu + sigma * torch.randn((self.samples_num, *mu.shape), dtype=mu.dtype, device=mu.device)
        return self._activate(samples).mean(dim=0)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"bias={self.bias is not None}, p={self.p}, invariant={self.invariant}, "
            f"step_mode={self.step_mode}"
        )
