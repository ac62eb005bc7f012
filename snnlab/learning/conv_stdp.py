r"""SPAIC's convolutional STDP and reward-modulated STDP (``conv2d_stdp``, ``conv2d_rstdp``).

Both rules work on the convolution's patches. With ``X = unfold(pad(x))`` the
padded input cut into patches ``[B, C_in·kh·kw, L]`` (padding as the
convolution pads, ``padding_mode`` honoured) and ``Y`` the post-synaptic
spikes ``[B, C_out, L]`` (``L`` output positions), per time step:

* :class:`Conv2dSTDPLearner` (nearest-spike traces, reset to 1 on a spike):

  .. math::
      P &\leftarrow (1 - X)\, e^{-dt/\tau_+} P + X, \qquad
      M \leftarrow (1 - Y)\, e^{-dt/\tau_-} M + Y \\
      e_b &= A_+\, Y_b P_b^{\top} + A_-\, M_b X_b^{\top}, \qquad
      \Delta w = \mathrm{lr} \sum_b e_b

* :class:`Conv2dRSTDPLearner` (all-to-all traces, reward-modulated):

  .. math::
      P &\leftarrow e^{-dt/\tau_+} P + A_+ X, \qquad
      M \leftarrow e^{-dt/\tau_-} M + A_- Y \\
      e_b(t) &= Y_b P_b^{\top} + M_b X_b^{\top}, \qquad
      \Delta w(t) = \mathrm{lr} \sum_b r_b(t)\, e_b(t-1)

  (the reward given with call ``t`` multiplies the eligibility of call
  ``t - 1``; the first call yields zero).

``e_b`` has shape ``[C_out, C_in·kh·kw]`` and is viewed as the weight
``[C_out, C_in, kh, kw]``; sums run over the batch and (through the matrix
products) over the output positions.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .hooked import HookedLearner
from .registry import register

__all__ = ["Conv2dRSTDPLearner", "Conv2dSTDPLearner"]


def _pair(v: Any) -> tuple[int, int]:
    if isinstance(v, (tuple, list)):
        return (int(v[0]), int(v[1]) if len(v) > 1 else int(v[0]))
    return (int(v), int(v))


class _ConvTraceLearner(HookedLearner):
    """Shared part: conv geometry, patch extraction and the hyper-parameters."""

    def __init__(
        self,
        step_mode: str,
        synapse: nn.Module,
        sn: nn.Module,
        lr: float,
        tau_plus: float,
        tau_minus: float,
        A_plus: float,
        A_minus: float,
        dt: float,
    ) -> None:
        super().__init__(step_mode, synapse, sn)
        if synapse.weight.dim() != 4:
            raise TypeError(
                f"synapse must be a 2-D convolution with weight [C_out, C_in, kh, kw], got weight shape "
                f"{list(synapse.weight.shape)}"
            )
        dilation = _pair(getattr(synapse, "dilation", 1))
        groups = int(getattr(synapse, "groups", 1))
        if dilation != (1, 1):
            raise NotImplementedError(f"{type(self).__name__} needs dilation=1, got dilation={dilation}")
        if groups != 1:
            raise NotImplementedError(f"{type(self).__name__} needs groups=1, got groups={groups}")
        self._param("lr", lr, low=0)
        self._param("tau_plus", tau_plus, low=0, low_open=True)
        self._param("tau_minus", tau_minus, low=0, low_open=True)
        self._param("A_plus", A_plus)
        self._param("A_minus", A_minus)
        self._param("dt", dt, low=0, low_open=True)
        self.register_memory("trace_pre", None)
        self.register_memory("trace_post", None)

    # ------------------------------------------------------------------ geometry
    def _pad_amounts(self) -> tuple[int, int, int, int]:
        conv = self.synapse
        rev = getattr(conv, "_reversed_padding_repeated_twice", None)
        if rev is not None:
            return tuple(int(p) for p in rev)  # type: ignore[return-value]
        ph, pw = _pair(getattr(conv, "padding", 0))
        return (pw, pw, ph, ph)

    def patches(self, x: torch.Tensor) -> torch.Tensor:
        """``unfold(pad(x))``: ``[B, C_in, H, W]`` -> ``[B, C_in·kh·kw, L]``."""
        conv = self.synapse
        _, c_in, kh, kw = conv.weight.shape
        if x.dim() == 3:
            x = x.unsqueeze(0)
        if x.dim() != 4 or x.shape[1] != c_in:
            raise ValueError(
                f"the synapse input must be [N, {c_in}, H, W] at each time step, got {list(x.shape)}"
            )
        pad = self._pad_amounts()
        mode = getattr(conv, "padding_mode", "zeros")
        if any(pad):
            x = F.pad(x, pad) if mode == "zeros" else F.pad(x, pad, mode=mode)
        return F.unfold(x, (kh, kw), stride=_pair(getattr(conv, "stride", 1)))

    def _prepare(self, pre: torch.Tensor, post: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        weight = self.synapse.weight
        dtype = weight.dtype if weight.dtype.is_floating_point else torch.float32
        x = self.patches(pre.to(dtype))
        if post.dim() == 3:
            post = post.unsqueeze(0)
        c_out = weight.shape[0]
        if post.dim() != 4 or post.shape[0] != x.shape[0] or post.shape[1] != c_out:
            raise ValueError(
                f"the sn output must be [N, {c_out}, H_out, W_out] with the input's N={x.shape[0]}, "
                f"got {list(post.shape)}"
            )
        y = post.to(dtype).reshape(post.shape[0], c_out, -1)
        if y.shape[2] != x.shape[2]:
            raise ValueError(
                f"the sn output has {y.shape[2]} positions but the convolution has {x.shape[2]} "
                f"(input {list(pre.shape)}, output {list(post.shape)})"
            )
        return x, y

    @staticmethod
    def _fresh(trace: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor:
        if trace is None or trace.shape != like.shape:
            return torch.zeros_like(like)
        return trace


class Conv2dSTDPLearner(_ConvTraceLearner):
    r"""Unsupervised convolutional STDP with nearest-spike traces (SPAIC's ``Conv2d_STDP``).

    Args:
        step_mode: ``'s'`` (``[N, C, H, W]`` per forward) or ``'m'`` (``[T, N, C, H, W]``).
        synapse: an ``nn.Conv2d``-like module (``weight [C_out, C_in, kh, kw]``,
            ``stride``, ``padding``, ``padding_mode``); ``dilation`` and ``groups``
            must be 1 (``NotImplementedError`` otherwise).
        sn: module whose output is the post-synaptic spikes ``[N, C_out, H_out, W_out]``.
        lr: learning rate (0.1).
        tau_plus: pre-synaptic trace time constant (20).
        tau_minus: post-synaptic trace time constant (20).
        A_plus: potentiation amplitude (1.0).
        A_minus: depression amplitude, negative for depression (-1.0).
        dt: time step (1.0); traces decay by ``exp(-dt/tau)``.

    ``update()`` adds ``lr·Σ_b e_b`` of the current step (SPAIC applies the
    previous step's eligibility, one step late, and works only after its
    build-time dry run; neither is reproduced). No projection.
    """

    def __init__(
        self,
        step_mode: str,
        synapse: nn.Module,
        sn: nn.Module,
        lr: float = 0.1,
        tau_plus: float = 20.0,
        tau_minus: float = 20.0,
        A_plus: float = 1.0,
        A_minus: float = -1.0,
        dt: float = 1.0,
    ) -> None:
        super().__init__(step_mode, synapse, sn, lr, tau_plus, tau_minus, A_plus, A_minus, dt)

    def _pair_delta(self, pre: torch.Tensor, post: torch.Tensor, reward: Any) -> torch.Tensor:
        x, y = self._prepare(pre, post)
        p = self._fresh(self.trace_pre, x)
        m = self._fresh(self.trace_post, y)
        p = (1.0 - x) * math.exp(-self.dt / self.tau_plus) * p + x
        m = (1.0 - y) * math.exp(-self.dt / self.tau_minus) * m + y
        self.trace_pre, self.trace_post = p, m
        # Σ_b Σ_l: [C_out, C_in·kh·kw]
        e = self.A_plus * torch.einsum("bol,bkl->ok", y, p) + self.A_minus * torch.einsum("bol,bkl->ok", m, x)
        return (self.lr * e).reshape(self.synapse.weight.shape)


class Conv2dRSTDPLearner(_ConvTraceLearner):
    r"""Reward-modulated convolutional STDP with all-to-all traces (SPAIC's ``Conv2d_RSTDP``).

    Args: as :class:`Conv2dSTDPLearner` (same names and defaults).

    ``step(reward)`` / ``update(reward)`` need a reward: a number, a 0-d
    tensor, ``[N]`` (per sample) or ``[C_out]`` (per output channel); see
    :meth:`HookedLearner.reward_tensor`. The reward of call ``t`` multiplies
    the eligibility of call ``t - 1`` (kept per sample until then) and the
    first call yields zero. SPAIC accepts only a global reward (``ndim <= 1``)
    and works only after its build-time dry run. No projection.

    Attributes:
        eligibility: the last step's per-sample eligibility ``[N, C_out, C_in·kh·kw]``
            (``None`` after :meth:`reset`).
        trace_pre, trace_post: the traces ``[N, C_in·kh·kw, L]`` and ``[N, C_out, L]``.
    """

    def __init__(
        self,
        step_mode: str,
        synapse: nn.Module,
        sn: nn.Module,
        lr: float = 0.1,
        tau_plus: float = 20.0,
        tau_minus: float = 20.0,
        A_plus: float = 1.0,
        A_minus: float = -1.0,
        dt: float = 1.0,
    ) -> None:
        super().__init__(step_mode, synapse, sn, lr, tau_plus, tau_minus, A_plus, A_minus, dt)
        self.register_memory("eligibility", None)

    def _pair_delta(self, pre: torch.Tensor, post: torch.Tensor, reward: Any) -> torch.Tensor:
        x, y = self._prepare(pre, post)
        batch, c_out = y.shape[0], y.shape[1]
        r = self.reward_tensor(reward, batch=batch, n_post=c_out, like=x)
        previous = self.eligibility
        p = self._fresh(self.trace_pre, x)
        m = self._fresh(self.trace_post, y)
        p = math.exp(-self.dt / self.tau_plus) * p + self.A_plus * x
        m = math.exp(-self.dt / self.tau_minus) * m + self.A_minus * y
        self.trace_pre, self.trace_post = p, m
        # per sample: [B, C_out, C_in·kh·kw]
        self.eligibility = torch.einsum("bol,bkl->bok", y, p) + torch.einsum("bol,bkl->bok", m, x)
        shape = self.synapse.weight.shape
        if previous is None or previous.shape != self.eligibility.shape:
            return torch.zeros(shape, dtype=x.dtype, device=x.device)
        r = r.reshape((*r.shape, 1)) if r.dim() == 2 else r  # [B|1, C_out|1, 1]
        return (self.lr * (r * previous).sum(0)).reshape(shape)


register("conv2d_stdp", Conv2dSTDPLearner)
register("conv2d_rstdp", Conv2dRSTDPLearner)
