r"""Fused STDP / mSTDP steps of a linear synapse on the CuPy kernel of ``plasticity.cu``.

One launch per time step makes one pass over the weight ``W`` ``[n_out, n_in]``,
advancing both traces and forming both outer products on the fly:

.. math::
    x_{pre} &\leftarrow x_{pre} - x_{pre}/\tau_{pre} + s_{pre} \quad\text{(STDP, Euler)}
    \quad\text{or}\quad x_{pre} e^{-1/\tau_{pre}} + s_{pre} \quad\text{(mSTDP)} \\
    e_b[j, i] &= c_b \left(f_{post}(W)[j, i]\, s_{post}[b, j]\, x_{pre}[b, i]
                 - f_{pre}(W)[j, i]\, x_{post}[b, j]\, s_{pre}[b, i]\right)

(the post trace likewise). STDP returns :math:`\Delta W = \sum_b e_b`
(``[n_out, n_in]``, optionally added into ``out`` in place, e.g. ``-1 *`` into
``weight.grad``); mSTDP returns the per-sample eligibility ``[B, n_out, n_in]``.
:math:`c_b` = ``scale`` times ``sample_coeff[b]`` (e.g. a reward) when given.
The equations are those of :mod:`snnlab.learning.stdp_functional`
(``stdp_linear_single_step``, ``mstdp_linear_single_step``).

Shapes: ``in_spike`` ``[B, n_in]`` or ``[n_in]``, ``out_spike`` ``[B, n_out]``
or ``[n_out]``; traces have the spikes' shapes (``None`` = zero). All tensors
on the weight's CUDA device; spikes and traces are cast to the weight's dtype.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch

from .. import checks
from .runtime import check_cuda_tensor, launch, require_cupy

__all__ = ["mstdp_linear_step", "stdp_linear_step"]

_SOURCE = "plasticity.cu"
_THREADS = 128
_ROWS = 8  # SNN_ROWS in plasticity.cu
_MAX_GRID_Y = 65535

Modulation = Callable[[torch.Tensor], Any] | float | torch.Tensor | None


def _identity(w: torch.Tensor) -> torch.Tensor:
    return w


def _modulation(name: str, f: Modulation, weight: torch.Tensor) -> tuple[torch.Tensor | None, float]:
    """``f(W)`` as ``(tensor or None, constant)``: the kernel uses ``(tensor or 1) * constant``."""
    g = f(weight) if callable(f) else f
    if g is None:
        return None, 1.0
    if isinstance(g, torch.Tensor) and g.dim() == 0:
        g = g.item()
    if isinstance(g, (int, float)) and not isinstance(g, bool):
        return None, checks.real(name, g)
    if not isinstance(g, torch.Tensor):
        raise TypeError(
            f"{name} must give a real number or a tensor of the weight's shape, got {type(g).__name__}"
        )
    try:
        g = g.detach().expand(weight.shape)
    except RuntimeError:
        raise ValueError(
            f"{name} gave shape {tuple(g.shape)}, which does not broadcast to the weight's shape "
            f"{tuple(weight.shape)}"
        ) from None
    if g.device != weight.device:
        raise ValueError(f"{name} must give a tensor on the weight's device {weight.device}, got {g.device}")
    return g.to(weight.dtype).contiguous(), 1.0


def _spikes(name: str, spike: Any, features: int, feature_name: str) -> torch.Tensor:
    if not isinstance(spike, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(spike).__name__}")
    if spike.dim() not in (1, 2) or spike.shape[-1] != features:
        raise ValueError(
            f"{name} must have shape [batch_size, {features}] or [{features}] ({feature_name}), "
            f"got {tuple(spike.shape)}"
        )
    return spike


def _trace(name: str, trace: Any, like: torch.Tensor) -> torch.Tensor | None:
    if trace is None:
        return None
    if isinstance(trace, (int, float)) and not isinstance(trace, bool):
        return torch.full_like(like, float(trace))
    if not isinstance(trace, torch.Tensor):
        raise TypeError(f"{name} must be a tensor, a float or None, got {type(trace).__name__}")
    try:
        return trace.detach().to(like).expand(like.shape).contiguous()
    except RuntimeError:
        raise ValueError(
            f"{name} has shape {tuple(trace.shape)}, which does not fit the spikes of shape "
            f"{tuple(like.shape)}; pass None when the batch size changes"
        ) from None


def _prepare(weight, in_spike, out_spike, trace_pre, trace_post, tau_pre, tau_post):
    require_cupy()
    if not isinstance(weight, torch.Tensor) or weight.dim() != 2:
        got = tuple(weight.shape) if isinstance(weight, torch.Tensor) else type(weight).__name__
        raise ValueError(f"weight must be a 2-D tensor [out_features, in_features], got {got}")
    check_cuda_tensor("weight", weight)
    n_out, n_in = weight.shape
    in_spike = _spikes("in_spike", in_spike, n_in, "in_features")
    out_spike = _spikes("out_spike", out_spike, n_out, "out_features")
    if in_spike.dim() != out_spike.dim() or in_spike.shape[:-1] != out_spike.shape[:-1]:
        raise ValueError(
            f"in_spike and out_spike must have the same batch size, got {tuple(in_spike.shape)} and "
            f"{tuple(out_spike.shape)}"
        )
    for name, s in (("in_spike", in_spike), ("out_spike", out_spike)):
        if s.device != weight.device:
            raise ValueError(f"{name} must be on the weight's device {weight.device}, got {s.device}")
    s_pre = in_spike.detach().to(weight.dtype).contiguous()
    s_post = out_spike.detach().to(weight.dtype).contiguous()
    x_pre = _trace("trace_pre", trace_pre, s_pre)
    x_post = _trace("trace_post", trace_post, s_post)
    return (
        weight.detach(),
        s_pre,
        s_post,
        x_pre,
        x_post,
        checks.positive("tau_pre", tau_pre),
        checks.positive("tau_post", tau_post),
    )


def _run(
    weight: torch.Tensor,
    s_pre: torch.Tensor,
    s_post: torch.Tensor,
    x_pre: torch.Tensor | None,
    x_post: torch.Tensor | None,
    tau_pre: float,
    tau_post: float,
    euler: bool,
    f_pre: Modulation,
    f_post: Modulation,
    scale: float,
    sample_coeff: torch.Tensor | None,
    out: torch.Tensor,
    per_sample: bool,
    accumulate: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    n_out, n_in = weight.shape
    batch = 1 if s_pre.dim() == 1 else s_pre.shape[0]
    g_post, c_post = _modulation("f_post", f_post, weight)
    g_pre, c_pre = _modulation("f_pre", f_pre, weight)
    if g_pre is not None and g_post is not None and g_pre.data_ptr() == g_post.data_ptr():
        g_pre = g_post  # the kernel then reads the shared modulation once
    x_pre_out = torch.empty_like(s_pre)
    x_post_out = torch.empty_like(s_post)
    if n_out and n_in and batch:
        grid = ((n_in + _THREADS - 1) // _THREADS, min((n_out + _ROWS - 1) // _ROWS, _MAX_GRID_Y))
        launch(
            _SOURCE,
            "snn_stdp_linear",
            weight.dtype,
            weight.device,
            grid,
            (_THREADS,),
            (
                s_pre,
                s_post,
                x_pre,
                x_post,
                x_pre_out,
                x_post_out,
                g_post,
                g_pre,
                sample_coeff,
                out,
                batch,
                n_out,
                n_in,
                int(euler),
                tau_pre,
                tau_post,
                math.exp(-1.0 / tau_pre),
                math.exp(-1.0 / tau_post),
                c_post,
                c_pre,
                scale,
                int(per_sample),
                int(accumulate),
            ),
        )
    elif not accumulate:
        out.zero_()
    return x_pre_out, x_post_out


def _sample_coeff(sample_coeff: Any, batch: int, weight: torch.Tensor) -> torch.Tensor | None:
    if sample_coeff is None:
        return None
    if not isinstance(sample_coeff, torch.Tensor) or sample_coeff.shape != (batch,):
        got = tuple(sample_coeff.shape) if isinstance(sample_coeff, torch.Tensor) else sample_coeff
        raise ValueError(
            f"sample_coeff must be None or a tensor of shape [batch_size] = [{batch}], got {got}"
        )
    if sample_coeff.device != weight.device:
        raise ValueError(
            f"sample_coeff must be on the weight's device {weight.device}, got {sample_coeff.device}"
        )
    return sample_coeff.detach().to(weight.dtype).contiguous()


def stdp_linear_step(
    weight: torch.Tensor,
    in_spike: torch.Tensor,
    out_spike: torch.Tensor,
    trace_pre: torch.Tensor | float | None,
    trace_post: torch.Tensor | float | None,
    tau_pre: float,
    tau_post: float,
    f_pre: Modulation = _identity,
    f_post: Modulation = _identity,
    *,
    scale: float = 1.0,
    sample_coeff: torch.Tensor | None = None,
    out: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    r"""One STDP step (Euler traces), fused: ``(trace_pre, trace_post, delta_w)``.

    .. math::
        \Delta W = \text{scale} \sum_b c_b \left(f_{post}(W) \odot s_{post,b}^\top x_{pre,b}
                   - f_{pre}(W) \odot x_{post,b}^\top s_{pre,b}\right)

    ``weight`` ``[n_out, n_in]`` (CUDA); ``f_pre`` / ``f_post``: a function of
    the weight (default identity: multiplicative STDP), a constant (additive),
    a tensor, or ``None`` (1). ``sample_coeff`` ``[B]`` multiplies sample ``b``
    (``c_b``, e.g. a reward; default 1). With ``out`` (``[n_out, n_in]``, the
    weight's dtype and device, contiguous), :math:`\Delta W` is added into it
    in place and ``out`` is returned as ``delta_w``: ``out=weight.grad,
    scale=-1`` is a learner's ``step(on_grad=True)`` in one pass.
    """
    weight, s_pre, s_post, x_pre, x_post, tau_pre, tau_post = _prepare(
        weight, in_spike, out_spike, trace_pre, trace_post, tau_pre, tau_post
    )
    scale = checks.real("scale", scale)
    batch = 1 if s_pre.dim() == 1 else s_pre.shape[0]
    coeff = _sample_coeff(sample_coeff, batch, weight)
    accumulate = out is not None
    if out is None:
        out = torch.empty_like(weight, memory_format=torch.contiguous_format)
    else:
        checks.like("out", out, "weight", weight, weight.shape)
        if not out.is_contiguous():
            raise ValueError("out must be contiguous (it is updated in place)")
    x_pre, x_post = _run(
        weight, s_pre, s_post, x_pre, x_post, tau_pre, tau_post, True, f_pre, f_post, scale, coeff, out,
        False, accumulate,
    )  # fmt: skip
    return x_pre, x_post, out


def mstdp_linear_step(
    weight: torch.Tensor,
    in_spike: torch.Tensor,
    out_spike: torch.Tensor,
    trace_pre: torch.Tensor | float | None,
    trace_post: torch.Tensor | float | None,
    tau_pre: float,
    tau_post: float,
    f_pre: Modulation = _identity,
    f_post: Modulation = _identity,
    *,
    scale: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    r"""One mSTDP step (exponential traces), fused: ``(trace_pre, trace_post, eligibility)``.

    .. math::
        e_b = \text{scale}\left(f_{post}(W) \odot s_{post,b}^\top x_{pre,b}
              - f_{pre}(W) \odot x_{post,b}^\top s_{pre,b}\right)

    ``eligibility`` is ``[B, n_out, n_in]`` for ``[B, ...]`` spikes and
    ``[n_out, n_in]`` for 1-D spikes, as ``mstdp_linear_single_step`` returns.
    """
    weight, s_pre, s_post, x_pre, x_post, tau_pre, tau_post = _prepare(
        weight, in_spike, out_spike, trace_pre, trace_post, tau_pre, tau_post
    )
    scale = checks.real("scale", scale)
    lead = () if s_pre.dim() == 1 else (s_pre.shape[0],)
    out = torch.empty((*lead, *weight.shape), dtype=weight.dtype, device=weight.device)
    x_pre, x_post = _run(
        weight, s_pre, s_post, x_pre, x_post, tau_pre, tau_post, False, f_pre, f_post, scale, None, out,
        True, False,
    )  # fmt: skip
    return x_pre, x_post, out
