"""Encoders: turn analog inputs into spike trains (SpikingJelly's encoding API).

* :class:`PoissonEncoder` (stateless): each element spikes with probability
  equal to its value, independently at every call: ``s = (u < x)``,
  ``u ~ U[0, 1)``, ``x`` in ``[0, 1]``.
* :class:`LatencyEncoder` (stateful): each element spikes exactly once in
  ``T`` steps, earlier for larger values.
* :class:`PeriodicEncoder` (stateful): replays a given spike pattern
  ``[T, ...]`` periodically.
* :class:`WeightedPhaseEncoder` (stateful): the binary expansion of ``x``
  over ``K`` phases (Kim et al. 2018).

A stateful encoder computes its spikes ``spike`` (shape ``[T, *x.shape]``)
from the first input it sees after construction or :meth:`reset`; the
``t``-th call (``t = 0, 1, ...``) then returns ``spike[t % T]``. In step
mode ``'m'`` the encoder is called once per element of the leading
dimension of ``x_seq`` (``[T', N, ...]`` in, ``[T', N, ...]`` out) and the
spikes are computed from ``x_seq[0]``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .base import MemoryModule, StepModule

__all__ = [
    "ENC_FUNCTIONS",
    "LatencyEncoder",
    "PeriodicEncoder",
    "PoissonEncoder",
    "StatefulEncoder",
    "StatelessEncoder",
    "WeightedPhaseEncoder",
]

ENC_FUNCTIONS: tuple[str, ...] = ("linear", "log")


def _check_T(T: object, name: str = "T") -> int:
    if isinstance(T, bool) or not isinstance(T, int):
        raise TypeError(f"{name} must be an int >= 1, got {type(T).__name__} {T!r}")
    if T < 1:
        raise ValueError(f"{name} must be an int >= 1, got {T!r}")
    return T


def _check_unit_interval(x: object, name: str = "x") -> torch.Tensor:
    """``x`` must be a tensor with every element in ``[0, 1]`` (no NaN)."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor with values in [0, 1], got {type(x).__name__}")
    if x.numel() == 0:
        return x
    xf = x if x.is_floating_point() else x.double()
    lo, hi = (float(v) for v in torch.aminmax(xf))  # NaN propagates into lo / hi
    if not (0.0 <= lo and hi <= 1.0):
        raise ValueError(
            f"{name} must have every value in [0, 1] (a probability / intensity), "
            f"got values in [{lo}, {hi}]{' with NaN' if bool(torch.isnan(xf).any()) else ''}"
        )
    return x


def _float_dtype(x: torch.Tensor) -> torch.dtype:
    return x.dtype if x.is_floating_point() else torch.get_default_dtype()


class StatelessEncoder(nn.Module, StepModule):
    """Base of encoders without state: ``encoder(x)`` returns spikes with ``x``'s shape.

    The encoding is elementwise, so step modes ``'s'`` (``[N, ...]``) and
    ``'m'`` (``[T, N, ...]``) compute the same thing.
    """

    def __init__(self, step_mode: str = "s") -> None:
        super().__init__()
        self.step_mode = step_mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Encode ``x``; returns spikes of shape ``x.shape``."""
        raise NotImplementedError(f"{type(self).__name__} does not implement forward")

    def extra_repr(self) -> str:
        return f"step_mode={self.step_mode}"


class StatefulEncoder(MemoryModule):
    """Base of encoders that compute a ``[T, ...]`` spike train once and replay it.

    Memories: ``spike`` (``None`` until the first call, then ``[T, *x.shape]``)
    and ``t`` (index of the next step to emit). The ``t``-th call returns
    ``spike[t % T]``; :meth:`reset` forgets ``spike`` and sets ``t = 0``.
    Subclasses implement :meth:`single_step_encode`, which sets ``self.spike``.

    Args:
        T: the encoding period (usually the simulation length), an int ``>= 1``.
        step_mode: ``'s'`` or ``'m'``.
    """

    def __init__(self, T: int, step_mode: str = "s") -> None:
        super().__init__()
        self.step_mode = step_mode
        self.T = _check_T(T)
        self.register_memory("spike", None)
        self.register_memory("t", 0)

    def single_step_forward(self, x: torch.Tensor | None = None) -> torch.Tensor:
        """Return ``spike[t]`` and advance ``t`` (mod ``T``); encode ``x`` first if needed."""
        if self.spike is None:
            if x is None:
                raise ValueError(f"x must be a tensor on the first call of {type(self).__name__}, got None")
            self.single_step_encode(x)
        t = self.t
        self.t = (t + 1) % self.T
        return self.spike[t]

    def multi_step_forward(self, x_seq: torch.Tensor | None = None) -> torch.Tensor:
        """``x_seq``: ``[T', N, ...]``; returns ``y``: ``[T', N, ...]``, ``y[i] = forward(x_seq[i])``.

        The spikes are encoded from ``x_seq[0]`` when none are stored yet.
        """
        if x_seq is None:
            raise ValueError(f"x_seq must be a [T, N, ...] tensor for {type(self).__name__}, got None")
        return torch.stack([self.single_step_forward(x) for x in x_seq.unbind(0)])

    def single_step_encode(self, x: torch.Tensor) -> None:
        """Compute ``self.spike`` (``[T, *x.shape]``) from ``x``."""
        raise NotImplementedError(f"{type(self).__name__} does not implement single_step_encode")

    def extra_repr(self) -> str:
        return f"T={self.T}, step_mode={self.step_mode}"


class PeriodicEncoder(StatefulEncoder):
    """Emit ``spike[t % T]`` at the ``t``-th call, with ``T = spike.shape[0]``.

    Args:
        spike: the pattern, shape ``[T, ...]`` with ``T >= 1``.
        step_mode: ``'s'`` or ``'m'``.

    The input of ``forward`` is ignored (it may be omitted in step mode
    ``'s'``); in step mode ``'m'`` it sets how many steps are emitted
    (``x_seq.shape[0]``), or ``T`` steps when omitted. :meth:`reset` rewinds
    to ``spike[0]`` and keeps the pattern.
    """

    def __init__(self, spike: torch.Tensor, step_mode: str = "s") -> None:
        spike = self._check_spike(spike)
        super().__init__(spike.shape[0], step_mode)
        self.single_step_encode(spike)
        self.set_reset_value("spike", spike)

    @staticmethod
    def _check_spike(spike: object) -> torch.Tensor:
        if not isinstance(spike, torch.Tensor):
            raise TypeError(f"spike must be a torch.Tensor of shape [T, ...], got {type(spike).__name__}")
        if spike.ndim < 1 or spike.shape[0] < 1:
            raise ValueError(f"spike must have shape [T, ...] with T >= 1, got shape {tuple(spike.shape)}")
        return spike

    def single_step_encode(self, spike: torch.Tensor) -> None:
        """Use ``spike`` (``[T, ...]``) as the pattern and its length as the period."""
        spike = self._check_spike(spike)
        self.spike = spike
        self.T = spike.shape[0]

    def multi_step_forward(self, x_seq: torch.Tensor | None = None) -> torch.Tensor:
        """Emit ``x_seq.shape[0]`` steps (``T`` if ``x_seq`` is None): ``[T', ...]``."""
        steps = self.T if x_seq is None else x_seq.shape[0]
        return torch.stack([self.single_step_forward() for _ in range(steps)])


class LatencyEncoder(StatefulEncoder):
    """Latency (time-to-first-spike) coding: each element of ``x`` spikes once in ``T`` steps.

    For ``x`` in ``[0, 1]`` the firing step is ``round(t_f(x))`` (round half
    to even), with

    * ``'linear'``: ``t_f(x) = (T - 1)(1 - x)``;
    * ``'log'``: ``t_f(x) = (T - 1) - ln(alpha * x + 1)``, ``alpha = exp(T - 1) - 1``,

    so ``x = 1`` fires at step 0 and ``x = 0`` at step ``T - 1``. ``spike`` is
    the one-hot train ``[T, *x.shape]`` (``x``'s float dtype). The log form is
    evaluated as ``-ln(x + (1 - x) exp(-(T - 1)))`` in float64, the same value
    without overflow for large ``T``.

    Args:
        T: the number of steps (latest firing step ``T - 1``), an int ``>= 1``.
        enc_function: ``'linear'`` or ``'log'``.
        step_mode: ``'s'`` or ``'m'``.
    """

    def __init__(self, T: int, enc_function: str = "linear", step_mode: str = "s") -> None:
        super().__init__(T, step_mode)
        if enc_function not in ENC_FUNCTIONS:
            raise ValueError(f"enc_function must be one of {ENC_FUNCTIONS}, got {enc_function!r}")
        self.enc_function = enc_function
        if enc_function == "log":
            self.alpha = math.exp(T - 1.0) - 1.0 if T - 1 < 709 else math.inf

    def firing_time(self, x: torch.Tensor) -> torch.Tensor:
        """The integer firing step ``round(t_f(x))`` for each element (int64, ``x.shape``)."""
        _check_unit_interval(x)
        xd = x.detach().to(torch.float64)
        if self.enc_function == "log":
            t_f = -torch.log(xd + (1.0 - xd) * math.exp(-(self.T - 1.0)))
        else:
            t_f = (self.T - 1.0) * (1.0 - xd)
        return t_f.round().clamp_(0, self.T - 1).long()

    def single_step_encode(self, x: torch.Tensor) -> None:
        """Set ``spike[t] = (round(t_f(x)) == t)`` for ``t = 0 .. T-1``: ``[T, *x.shape]``."""
        t_f = self.firing_time(x)
        spike = F.one_hot(t_f, num_classes=self.T).to(_float_dtype(x))
        self.spike = spike.movedim(-1, 0)

    def extra_repr(self) -> str:
        return f"T={self.T}, enc_function={self.enc_function!r}, step_mode={self.step_mode}"


class PoissonEncoder(StatelessEncoder):
    """Rate coding: ``s = (u < x)`` elementwise, ``u ~ U[0, 1)`` drawn fresh at each call.

    Each element spikes with probability ``x`` (``x = 0`` never, ``x = 1``
    always). Output shape and (float) dtype follow ``x``; works on any shape,
    so ``[N, ...]`` in step mode ``'s'`` and ``[T, N, ...]`` in ``'m'``.

    Args:
        step_mode: ``'s'`` or ``'m'``.
        generator: keyword-only ``torch.Generator`` (on ``x``'s device) for
            reproducible spikes; ``None`` uses torch's global generator.

    Raises ``ValueError`` if an element of ``x`` lies outside ``[0, 1]``.
    """

    def __init__(self, step_mode: str = "s", *, generator: torch.Generator | None = None) -> None:
        super().__init__(step_mode)
        if generator is not None and not isinstance(generator, torch.Generator):
            raise TypeError(
                f"generator must be a torch.Generator or None, got {type(generator).__name__} {generator!r}"
            )
        self.generator = generator

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Spikes ``(u < x)`` with the shape of ``x``."""
        _check_unit_interval(x)
        if self.generator is not None and self.generator.device.type != x.device.type:
            raise ValueError(
                f"generator is on device {self.generator.device}, but x is on {x.device}; "
                "use a generator on the device of x"
            )
        dtype = _float_dtype(x)
        u = torch.rand(x.shape, generator=self.generator, device=x.device, dtype=dtype)
        return (u < x).to(dtype)


class WeightedPhaseEncoder(StatefulEncoder):
    """Weighted phase coding: the ``K``-bit binary expansion of ``x``, most significant bit first.

    Phase ``k = 0 .. K-1`` has weight ``w_k = 2^-(k+1)``; with ``r_0 = x``,

        ``spike[k] = (r_k >= w_k)``,  ``r_{k+1} = r_k - w_k * spike[k]``,

    so ``x = sum_k w_k spike[k]`` exactly for ``x`` a multiple of ``2^-K``.
    ``x`` must lie in ``[0, 1 - 2^-K]``. The period is ``T = K``.

    Args:
        K: the number of phases, an int ``>= 1``.
        step_mode: ``'s'`` or ``'m'``.
    """

    def __init__(self, K: int, step_mode: str = "s") -> None:
        super().__init__(_check_T(K, "K"), step_mode)

    def single_step_encode(self, x: torch.Tensor) -> None:
        """Set ``spike``: ``[K, *x.shape]``, the bits of ``x``."""
        _check_unit_interval(x)
        upper = 1.0 - 2.0 ** (-self.T)
        if bool((x > upper).any()):
            raise ValueError(
                f"x must have every value in [0, 1 - 2^-K] = [0, {upper}] for K={self.T}, "
                f"got max {float(x.max())}"
            )
        dtype = _float_dtype(x)
        residual = x.detach().to(dtype).clone()
        spike = torch.empty((self.T, *x.shape), dtype=dtype, device=x.device)
        w = 0.5
        for k in range(self.T):
            spike[k] = (residual >= w).to(dtype)
            residual -= w * spike[k]
            w *= 0.5
        self.spike = spike
