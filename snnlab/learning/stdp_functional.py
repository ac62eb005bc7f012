"""STDP, mSTDP and mSTDP-ET as pure functions (SpikingJelly's functional learning API).

Notation: ``s_pre`` / ``s_post`` are the pre- and post-synaptic spikes of one
time step, ``x_pre`` / ``x_post`` their traces, ``W`` the weight and
``f_pre`` / ``f_post`` the weight-modulation functions (default: identity,
so the default rule is multiplicative in ``W``). Traces are updated first and
then used:

* STDP (Euler traces): ``x <- x - x / tau + s``;
* mSTDP / mSTDP-ET (exponential traces): ``x <- x * exp(-1 / tau) + s``.

For one sample and a linear layer the weight change is

    delta_w[j, i] = f_post(W)[j, i] * s_post[j] * x_pre[i]
                    - f_pre(W)[j, i] * x_post[j] * s_pre[i]

so a pre spike followed by a post spike potentiates and the reverse order
depresses. STDP sums it over the batch; mSTDP keeps it per sample (the
*eligibility*). A convolution applies the same rule to every kernel offset,
pairing each output position with the input patch it reads (the input, and
so the pre trace, is padded as the layer pads it).

Every function returns new tensors and leaves its arguments untouched.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Iterable
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "UnsupportedSynapseError",
    "mstdp_linear_single_step",
    "mstdpet_linear_single_step",
    "stdp_conv1d_single_step",
    "stdp_conv2d_single_step",
    "stdp_linear_single_step",
    "stdp_multi_step",
]

Trace = float | torch.Tensor | None
Modulation = float | torch.Tensor


class UnsupportedSynapseError(NotImplementedError, TypeError):
    """A layer type or configuration that the STDP rules do not handle.

    Both a ``NotImplementedError`` (the exception SpikingJelly's reference
    names) and a ``TypeError``.
    """


def _identity(x: torch.Tensor) -> torch.Tensor:
    return x


# --------------------------------------------------------------------------- checks
def check_tau(name: str, value: object) -> float:
    """``value`` must be a finite real number > 0 (a Python number or a one-element tensor)."""
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a finite real number > 0, got {type(value).__name__} {value!r}")
    result = float(value)
    if not math.isfinite(result) or result <= 0.0:
        raise ValueError(f"{name} must be a finite real number > 0, got {value!r}")
    return result


def check_callable(name: str, value: object) -> None:
    if not callable(value):
        raise TypeError(f"{name} must be callable (a function of the weight), got {type(value).__name__}")


def _check_tensor(name: str, value: object) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__} {value!r}")
    return value


def check_conv(conv: nn.Module) -> None:
    """Raise :class:`UnsupportedSynapseError` unless ``conv`` has ``dilation == 1`` and ``groups == 1``."""
    if any(d != 1 for d in conv.dilation):
        raise UnsupportedSynapseError(
            f"STDP is implemented for dilation == 1 only; {type(conv).__name__} has "
            f"dilation={tuple(conv.dilation)}"
        )
    if conv.groups != 1:
        raise UnsupportedSynapseError(
            f"STDP is implemented for groups == 1 only; {type(conv).__name__} has groups={conv.groups}"
        )


def check_synapse(name: str, layer: object) -> None:
    """``layer`` must be an ``nn.Linear``, ``nn.Conv1d`` or ``nn.Conv2d`` (or a subclass)."""
    if not isinstance(layer, (nn.Linear, nn.Conv1d, nn.Conv2d)):
        raise UnsupportedSynapseError(
            f"{name} must be an nn.Linear, nn.Conv1d or nn.Conv2d (or a subclass), got {type(layer).__name__}"
        )
    if isinstance(layer, (nn.Conv1d, nn.Conv2d)):
        check_conv(layer)


# --------------------------------------------------------------------------- traces
def check_trace(name: str, trace: Trace, spike: torch.Tensor) -> None:
    """``trace`` must be ``None``, a number or a tensor that broadcasts to ``spike.shape``."""
    if isinstance(trace, torch.Tensor):
        if trace.dim() > 0 and trace.shape != spike.shape:
            try:
                shape = torch.broadcast_shapes(trace.shape, spike.shape)
            except RuntimeError:
                shape = None
            if shape != spike.shape:
                raise ValueError(
                    f"{name} has shape {tuple(trace.shape)}, which does not fit the spikes of shape "
                    f"{tuple(spike.shape)}; pass None (or call reset()) when the batch size or the layer "
                    "changes"
                )
    elif trace is not None and not isinstance(trace, numbers.Real):
        raise TypeError(f"{name} must be a float, a torch.Tensor or None, got {type(trace).__name__}")


def decay_trace(name: str, trace: Trace, spike: torch.Tensor, tau: float, euler: bool) -> torch.Tensor:
    """One trace step: ``x - x / tau + s`` (``euler``) or ``x * exp(-1 / tau) + s``; ``None`` means 0."""
    check_trace(name, trace, spike)
    if trace is None:
        trace = 0.0
    if euler:
        return trace - trace / tau + spike
    return trace * math.exp(-1.0 / tau) + spike


# --------------------------------------------------------------------------- pairings
class Pairing(NamedTuple):
    """The four factors of one time step, each ``[B, K, features]``.

    ``K`` is 1 for a linear layer and the number of output positions for a
    convolution, whose ``N_in`` is ``C_in * prod(kernel_size)`` (the weight
    seen as ``[C_out, N_in]``). For sample ``b`` the weight change is
    ``G_post ⊙ (post_bᵀ trace_pre_b) - G_pre ⊙ (trace_post_bᵀ pre_b)``.
    A linear layer's pairing may also be stored as ``[B, features]`` (``K = 1``
    left out); :func:`lift_pairing` gives the ``[B, K, features]`` form.
    """

    post: torch.Tensor
    trace_pre: torch.Tensor
    trace_post: torch.Tensor
    pre: torch.Tensor

    @property
    def batch_size(self) -> int:
        return self.post.shape[0]


def _detached_as(x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``x.detach().to(dtype)``, skipping the no-op conversion (per-step cost of the learners)."""
    x = x.detach()
    return x if x.dtype == dtype else x.to(dtype)


def linear_spikes(
    fc: nn.Linear, in_spike: torch.Tensor, out_spike: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Check shapes ``[N, in_features]`` / ``[N, out_features]`` (or 1-D) and cast to the weight's dtype."""
    _check_tensor("in_spike", in_spike)
    _check_tensor("out_spike", out_spike)
    n_out, n_in = fc.weight.shape
    if in_spike.dim() not in (1, 2) or in_spike.shape[-1] != n_in:
        raise ValueError(
            f"in_spike must have shape [batch_size, {n_in}] or [{n_in}], got {tuple(in_spike.shape)}"
        )
    if out_spike.dim() != in_spike.dim() or out_spike.shape[-1] != n_out:
        expected = f"[{in_spike.shape[0]}, {n_out}]" if in_spike.dim() == 2 else f"[{n_out}]"
        raise ValueError(f"out_spike must have shape {expected}, got {tuple(out_spike.shape)}")
    if in_spike.shape[:-1] != out_spike.shape[:-1]:
        raise ValueError(
            f"in_spike and out_spike must have the same batch size, got {tuple(in_spike.shape)} "
            f"and {tuple(out_spike.shape)}"
        )
    dtype = fc.weight.dtype
    return _detached_as(in_spike, dtype), _detached_as(out_spike, dtype)


def linear_pairing(
    in_spike: torch.Tensor, out_spike: torch.Tensor, trace_pre: torch.Tensor, trace_post: torch.Tensor
) -> Pairing:
    """Factors of a linear layer: ``[N, F]`` (or ``[F]``) tensors become ``[N, 1, F]`` views."""

    def lift(x: torch.Tensor) -> torch.Tensor:
        return x.reshape(-1, 1, x.shape[-1])

    return Pairing(lift(out_spike), lift(trace_pre), lift(trace_post), lift(in_spike))


def lift_pairing(p: Pairing) -> Pairing:
    """``p`` with ``[B, K, features]`` factors (``[B, features]`` ones become ``[B, 1, features]`` views)."""
    if p.post.dim() == 3:
        return p
    return Pairing(*(f.unsqueeze(1) for f in p))


def pad_conv_input(conv: nn.Module, in_spike: torch.Tensor) -> torch.Tensor:
    """Pad ``in_spike`` as ``conv`` pads its input (honours ``padding_mode`` and ``padding='same'``)."""
    pad = tuple(conv._reversed_padding_repeated_twice)
    if not any(pad):
        return in_spike
    if conv.padding_mode == "zeros":
        return F.pad(in_spike, pad)
    return F.pad(in_spike, pad, mode=conv.padding_mode)


def conv_spikes(
    conv: nn.Module, in_spike: torch.Tensor, out_spike: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Check conv spike shapes (``[N, C, *spatial]``), pad the input, cast to the weight's dtype."""
    _check_tensor("in_spike", in_spike)
    _check_tensor("out_spike", out_spike)
    check_conv(conv)
    dim = conv.weight.dim()  # 3 for Conv1d, 4 for Conv2d
    c_out, c_in = conv.weight.shape[:2]
    if in_spike.dim() != dim or in_spike.shape[1] != c_in:
        raise ValueError(
            f"in_spike must have shape [batch_size, {c_in}, *spatial] ({dim} dims) for "
            f"{type(conv).__name__}, got {tuple(in_spike.shape)}"
        )
    if out_spike.dim() != dim or out_spike.shape[1] != c_out or out_spike.shape[0] != in_spike.shape[0]:
        raise ValueError(
            f"out_spike must have shape [{in_spike.shape[0]}, {c_out}, *spatial] for "
            f"{type(conv).__name__}, got {tuple(out_spike.shape)}"
        )
    dtype = conv.weight.dtype
    return pad_conv_input(conv, in_spike.detach().to(dtype)), out_spike.detach().to(dtype)


def _patches(conv: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``[B, C_in, *padded]`` -> ``[B, L, C_in * prod(kernel)]``, the input patch of each output position."""
    if x.dim() == 3:
        x = x.unsqueeze(-2)
        kernel, stride = (1, conv.kernel_size[0]), (1, conv.stride[0])
    else:
        kernel, stride = tuple(conv.kernel_size), tuple(conv.stride)
    return F.unfold(x, kernel, stride=stride).transpose(1, 2)


def conv_pairing(
    conv: nn.Module,
    in_padded: torch.Tensor,
    out_spike: torch.Tensor,
    trace_pre: torch.Tensor,
    trace_post: torch.Tensor,
) -> Pairing:
    """Factors of a convolution: output positions become the ``K`` axis."""
    pre = _patches(conv, in_padded)
    if pre.shape[1] != out_spike[0, 0].numel():
        raise ValueError(
            f"out_spike has spatial shape {tuple(out_spike.shape[2:])}, but {type(conv).__name__} maps an "
            f"input of padded shape {tuple(in_padded.shape[2:])} to {pre.shape[1]} positions"
        )
    return Pairing(
        out_spike.flatten(2).transpose(1, 2),
        _patches(conv, trace_pre),
        trace_post.flatten(2).transpose(1, 2),
        pre,
    )


# --------------------------------------------------------------------------- modulation
def weight_2d(weight: torch.Tensor) -> torch.Tensor:
    """The weight seen as ``[C_out, N_in]`` (a view)."""
    return weight.reshape(weight.shape[0], -1)


def modulation(name: str, f: Callable, weight: torch.Tensor) -> Modulation:
    """``f(W)`` as a float (a constant factor) or a tensor of shape ``[C_out, N_in]``."""
    return as_modulation(name, f(weight), weight)


def as_modulation(name: str, g: object, weight: torch.Tensor) -> Modulation:
    """``g = f(W)`` (the value ``name`` returned) as a float or a tensor of shape ``[C_out, N_in]``."""
    if type(g) is float:
        return g
    if isinstance(g, numbers.Real) and not isinstance(g, bool):
        return float(g)
    if not isinstance(g, torch.Tensor):
        raise TypeError(f"{name}(weight) must return a real number or a tensor, got {type(g).__name__}")
    if g.dim() == 0:
        return float(g.item())
    if g.shape != weight.shape:
        try:
            g = g.expand(weight.shape)
        except RuntimeError:
            raise ValueError(
                f"{name}(weight) returned shape {tuple(g.shape)}, which does not broadcast to the "
                f"weight's shape {tuple(weight.shape)}"
            ) from None
    return g.reshape(weight.shape[0], -1)


def dense_delta(g_post: Modulation, g_pre: Modulation, p: Pairing, per_sample: bool) -> torch.Tensor:
    """``G_post ⊙ Σ post_bᵀ trace_pre_b - G_pre ⊙ Σ trace_post_bᵀ pre_b``; ``[C_out, N_in]``.

    With ``per_sample`` the sum over the batch is not taken: ``[B, C_out, N_in]``.
    """
    if per_sample:
        a = torch.bmm(p.post.transpose(1, 2), p.trace_pre)
        b = torch.bmm(p.trace_post.transpose(1, 2), p.pre)
    else:
        a = p.post.flatten(0, 1).T @ p.trace_pre.flatten(0, 1)
        b = p.trace_post.flatten(0, 1).T @ p.pre.flatten(0, 1)
    return g_post * a - g_pre * b


Term = tuple[Modulation, torch.Tensor, torch.Tensor]


def pairing_terms(
    g_post: Modulation, g_pre: Modulation, p: Pairing, coeff: float | torch.Tensor
) -> list[Term]:
    """The two low-rank terms ``(G, P [M, C_out], Q [M, N_in])`` of a pairing, times ``coeff``.

    ``coeff`` is a float or a per-sample ``[B]`` tensor (a reward).
    """
    if isinstance(coeff, torch.Tensor):
        coeff = coeff.reshape(-1, 1, 1)
    return [
        (g_post, (p.post * coeff).flatten(0, 1), p.trace_pre.flatten(0, 1)),
        (g_pre, (p.trace_post * -coeff).flatten(0, 1), p.pre.flatten(0, 1)),
    ]


#: A term touches few rows (columns) of the target when at most this fraction of them is involved.
SPARSE_FRACTION = 0.25


def _add_sparse_terms(
    target: torch.Tensor, ps: list[torch.Tensor], qs: list[torch.Tensor]
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Add the terms ``Pᵀ Q`` whose ``P`` (or ``Q``) has few non-zero columns into the rows (columns)
    of ``target`` they touch; return the remaining (dense) terms.

    Spikes are sparse: a post-spike factor touches only the rows of neurons that fired, a
    pre-spike factor only the columns of inputs that fired, so most of ``target`` is not read.
    """
    dense_p: list[torch.Tensor] = []
    dense_q: list[torch.Tensor] = []
    n_rows, n_cols = target.shape
    for p, q in zip(ps, qs):
        rows = p.ne(0).any(0).nonzero().squeeze(1)
        if rows.numel() <= SPARSE_FRACTION * n_rows:
            if rows.numel():
                target.index_add_(0, rows, p[:, rows].T @ q)
            continue
        cols = q.ne(0).any(0).nonzero().squeeze(1)
        if cols.numel() <= SPARSE_FRACTION * n_cols:
            if cols.numel():
                target.index_add_(1, cols, p.T @ q[:, cols])
            continue
        dense_p.append(p)
        dense_q.append(q)
    return dense_p, dense_q


def accumulate_terms(
    target: torch.Tensor | None,
    terms: Iterable[Term],
    shape: tuple[int, int],
    like: torch.Tensor,
    scratch: torch.Tensor | None = None,
) -> torch.Tensor:
    """``target += Σ G ⊙ (Pᵀ Q)`` in place, one matrix product per distinct ``G``.

    Constant ``G`` are folded into ``P``; a constant term that involves few rows
    or columns of ``target`` (sparse spikes) is added into those only, the others
    share a single ``addmm`` (one pass over ``target``); terms with the same modulation tensor
    share one product into ``scratch`` (``[C_out, N_in]``, reused) and one
    ``addcmul``. ``target=None`` allocates the result (zeros if no terms).
    """
    const_p: list[torch.Tensor] = []
    const_q: list[torch.Tensor] = []
    groups: dict[int, tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor]]] = {}
    for g, p, q in terms:
        if isinstance(g, float):
            if g != 0.0:
                const_p.append(p if g == 1.0 else p * g)
                const_q.append(q)
        else:
            entry = groups.setdefault(id(g), (g, [], []))
            entry[1].append(p)
            entry[2].append(q)
    if const_p and target is not None:
        const_p, const_q = _add_sparse_terms(target, const_p, const_q)
    if const_p:
        pt = torch.cat(const_p).T if len(const_p) > 1 else const_p[0].T
        q = torch.cat(const_q) if len(const_q) > 1 else const_q[0]
        if target is None:
            target = torch.mm(pt, q)
        else:
            target.addmm_(pt, q)
    for g, ps, qs in groups.values():
        pt = torch.cat(ps).T if len(ps) > 1 else ps[0].T
        q = torch.cat(qs) if len(qs) > 1 else qs[0]
        if target is None:
            target = torch.mm(pt, q).mul_(g)
            continue
        if scratch is not None and scratch.shape == target.shape and scratch.dtype == target.dtype:
            product = torch.mm(pt, q, out=scratch)
        else:
            product = torch.mm(pt, q)
        target.addcmul_(g, product)
    if target is None:
        target = torch.zeros(shape, dtype=like.dtype, device=like.device)
    return target


# --------------------------------------------------------------------------- public functions
def _check_common(tau_pre: float, tau_post: float, f_pre: Callable, f_post: Callable) -> tuple[float, float]:
    check_callable("f_pre", f_pre)
    check_callable("f_post", f_post)
    return check_tau("tau_pre", tau_pre), check_tau("tau_post", tau_post)


def stdp_linear_single_step(
    fc: nn.Linear,
    in_spike: torch.Tensor,
    out_spike: torch.Tensor,
    trace_pre: Trace,
    trace_post: Trace,
    tau_pre: float,
    tau_post: float,
    f_pre: Callable = _identity,
    f_post: Callable = _identity,
) -> tuple[Trace, Trace, torch.Tensor]:
    """One STDP step of a linear layer, traces by Euler steps.

    ``in_spike``: ``[N, in_features]`` (or ``[in_features]``), ``out_spike``:
    ``[N, out_features]``; traces have the spikes' shapes (``None`` = 0).

        x_pre  <- x_pre  - x_pre  / tau_pre  + s_pre
        x_post <- x_post - x_post / tau_post + s_post
        delta_w = f_post(W) ⊙ Σ_n s_post[n]ᵀ x_pre[n] - f_pre(W) ⊙ Σ_n x_post[n]ᵀ s_pre[n]

    Returns ``(trace_pre, trace_post, delta_w)``, ``delta_w`` shaped like ``fc.weight``.
    """
    tau_pre, tau_post = _check_common(tau_pre, tau_post, f_pre, f_post)
    in_spike, out_spike = linear_spikes(fc, in_spike, out_spike)
    trace_pre = decay_trace("trace_pre", trace_pre, in_spike, tau_pre, euler=True)
    trace_post = decay_trace("trace_post", trace_post, out_spike, tau_post, euler=True)
    weight = fc.weight.detach()
    p = linear_pairing(in_spike, out_spike, trace_pre, trace_post)
    delta_w = dense_delta(modulation("f_post", f_post, weight), modulation("f_pre", f_pre, weight), p, False)
    return trace_pre, trace_post, delta_w


def mstdp_linear_single_step(
    fc: nn.Linear,
    in_spike: torch.Tensor,
    out_spike: torch.Tensor,
    trace_pre: Trace,
    trace_post: Trace,
    tau_pre: float,
    tau_post: float,
    f_pre: Callable = _identity,
    f_post: Callable = _identity,
) -> tuple[Trace, Trace, torch.Tensor]:
    """One mSTDP step of a linear layer: exponential traces and the per-sample eligibility.

        x_pre  <- x_pre  * exp(-1 / tau_pre)  + s_pre
        x_post <- x_post * exp(-1 / tau_post) + s_post
        e[n] = f_post(W) ⊙ s_post[n]ᵀ x_pre[n] - f_pre(W) ⊙ x_post[n]ᵀ s_pre[n]

    ``in_spike`` ``[N, in_features]``, ``out_spike`` ``[N, out_features]``.
    Returns ``(trace_pre, trace_post, eligibility)`` with eligibility
    ``[N, out_features, in_features]`` (``[out_features, in_features]`` for
    1-D spikes).
    """
    tau_pre, tau_post = _check_common(tau_pre, tau_post, f_pre, f_post)
    in_spike, out_spike = linear_spikes(fc, in_spike, out_spike)
    trace_pre = decay_trace("trace_pre", trace_pre, in_spike, tau_pre, euler=False)
    trace_post = decay_trace("trace_post", trace_post, out_spike, tau_post, euler=False)
    weight = fc.weight.detach()
    p = linear_pairing(in_spike, out_spike, trace_pre, trace_post)
    g_post, g_pre = modulation("f_post", f_post, weight), modulation("f_pre", f_pre, weight)
    eligibility = dense_delta(g_post, g_pre, p, per_sample=True)
    if in_spike.dim() == 1:
        eligibility = eligibility[0]
    return trace_pre, trace_post, eligibility


def mstdpet_linear_single_step(
    fc: nn.Linear,
    in_spike: torch.Tensor,
    out_spike: torch.Tensor,
    trace_pre: Trace,
    trace_post: Trace,
    tau_pre: float,
    tau_post: float,
    tau_trace: float,
    f_pre: Callable = _identity,
    f_post: Callable = _identity,
) -> tuple[Trace, Trace, torch.Tensor]:
    """One mSTDP-ET step of a linear layer: exponential traces and the eligibility.

    ``in_spike`` ``[in_features]``, ``out_spike`` ``[out_features]``:

        x_pre  <- x_pre  * exp(-1 / tau_pre)  + s_pre
        x_post <- x_post * exp(-1 / tau_post) + s_post
        e = f_post(W) ⊙ outer(s_post, x_pre) - f_pre(W) ⊙ outer(x_post, s_pre)

    and ``e`` has the weight's shape. Batched spikes ``[N, features]`` (an
    extension) give the per-sample eligibility ``[N, out_features,
    in_features]``. ``tau_trace`` (the eligibility trace's time constant) is
    validated here and used by :class:`MSTDPETLearner`.
    """
    check_tau("tau_trace", tau_trace)
    return mstdp_linear_single_step(
        fc, in_spike, out_spike, trace_pre, trace_post, tau_pre, tau_post, f_pre, f_post
    )


def _stdp_conv_single_step(
    kind: type,
    conv: nn.Module,
    in_spike: torch.Tensor,
    out_spike: torch.Tensor,
    trace_pre: torch.Tensor | None,
    trace_post: torch.Tensor | None,
    tau_pre: float,
    tau_post: float,
    f_pre: Callable,
    f_post: Callable,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    if not isinstance(conv, kind):
        raise UnsupportedSynapseError(f"conv must be an nn.{kind.__name__}, got {type(conv).__name__}")
    tau_pre, tau_post = _check_common(tau_pre, tau_post, f_pre, f_post)
    in_padded, out_spike = conv_spikes(conv, in_spike, out_spike)
    trace_pre = decay_trace("trace_pre", trace_pre, in_padded, tau_pre, euler=True)
    trace_post = decay_trace("trace_post", trace_post, out_spike, tau_post, euler=True)
    weight = conv.weight.detach()
    p = conv_pairing(conv, in_padded, out_spike, trace_pre, trace_post)
    delta = dense_delta(modulation("f_post", f_post, weight), modulation("f_pre", f_pre, weight), p, False)
    return trace_pre, trace_post, delta.view_as(weight)


def stdp_conv2d_single_step(
    conv: nn.Conv2d,
    in_spike: torch.Tensor,
    out_spike: torch.Tensor,
    trace_pre: torch.Tensor | None,
    trace_post: torch.Tensor | None,
    tau_pre: float,
    tau_post: float,
    f_pre: Callable = _identity,
    f_post: Callable = _identity,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One STDP step of a 2-D convolution (Euler traces).

    ``in_spike`` ``[N, C_in, H_in, W_in]``, ``out_spike`` ``[N, C_out, H_out,
    W_out]``. The input is padded as ``conv`` pads it (``padding_mode``
    honoured) and ``trace_pre`` has the padded input's shape, ``trace_post``
    the output's (``None`` = zeros). For every kernel offset ``(h, w)``:

        delta_w[:, :, h, w] = f_post(W)[:, :, h, w] ⊙ Σ_{n,y,x} s_post[n,:,y,x]ᵀ x_pre[n,:,y s+h,x s+w]
                            - f_pre(W)[:, :, h, w] ⊙ Σ_{n,y,x} x_post[n,:,y,x]ᵀ s_pre[n,:,y s+h,x s+w]

    Returns ``(trace_pre, trace_post, delta_w)``; ``NotImplementedError`` if
    ``dilation != (1, 1)`` or ``groups != 1``.
    """
    return _stdp_conv_single_step(
        nn.Conv2d, conv, in_spike, out_spike, trace_pre, trace_post, tau_pre, tau_post, f_pre, f_post
    )


def stdp_conv1d_single_step(
    conv: nn.Conv1d,
    in_spike: torch.Tensor,
    out_spike: torch.Tensor,
    trace_pre: torch.Tensor | None,
    trace_post: torch.Tensor | None,
    tau_pre: float,
    tau_post: float,
    f_pre: Callable = _identity,
    f_post: Callable = _identity,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One STDP step of a 1-D convolution; as :func:`stdp_conv2d_single_step` with ``[N, C, L]`` spikes.

    ``NotImplementedError`` if ``dilation != (1,)`` or ``groups != 1``.
    """
    return _stdp_conv_single_step(
        nn.Conv1d, conv, in_spike, out_spike, trace_pre, trace_post, tau_pre, tau_post, f_pre, f_post
    )


def stdp_multi_step(
    layer: nn.Linear | nn.Conv1d | nn.Conv2d,
    in_spike: torch.Tensor,
    out_spike: torch.Tensor,
    trace_pre: Trace,
    trace_post: Trace,
    tau_pre: float,
    tau_post: float,
    f_pre: Callable = _identity,
    f_post: Callable = _identity,
) -> tuple[Trace, Trace, torch.Tensor]:
    """STDP over a sequence: ``in_spike`` ``[T, N, ...]``, ``out_spike`` ``[T, N, ...]``.

    Runs the layer's single-step rule for ``t = 0 .. T-1`` (traces carried
    over) and returns ``(trace_pre, trace_post, Σ_t delta_w[t])``. The weight
    is not changed in between, so ``f_pre`` / ``f_post`` are evaluated once.
    """
    check_synapse("layer", layer)
    tau_pre, tau_post = _check_common(tau_pre, tau_post, f_pre, f_post)
    _check_tensor("in_spike", in_spike)
    _check_tensor("out_spike", out_spike)
    if in_spike.dim() < 2 or out_spike.dim() < 2 or in_spike.shape[0] != out_spike.shape[0]:
        raise ValueError(
            f"in_spike and out_spike must be sequences [T, N, ...] with the same T, got "
            f"{tuple(in_spike.shape)} and {tuple(out_spike.shape)}"
        )
    weight = layer.weight.detach()
    terms: list[Term] = []
    g_post = modulation("f_post", f_post, weight)
    g_pre = modulation("f_pre", f_pre, weight)
    for x, y in zip(in_spike.unbind(0), out_spike.unbind(0)):
        if isinstance(layer, nn.Linear):
            x, y = linear_spikes(layer, x, y)
        else:
            x, y = conv_spikes(layer, x, y)
        trace_pre = decay_trace("trace_pre", trace_pre, x, tau_pre, euler=True)
        trace_post = decay_trace("trace_post", trace_post, y, tau_post, euler=True)
        if isinstance(layer, nn.Linear):
            p = linear_pairing(x, y, trace_pre, trace_post)
        else:
            p = conv_pairing(layer, x, y, trace_pre, trace_post)
        terms.extend(pairing_terms(g_post, g_pre, p, 1.0))
    delta = accumulate_terms(None, terms, tuple(weight_2d(weight).shape), weight)
    return trace_pre, trace_post, delta.view_as(weight)


def check_reward(reward: object, batch_size: int) -> None:
    """``reward`` must be a real number, a one-element tensor or a ``[batch_size]`` tensor."""
    if isinstance(reward, bool) or not isinstance(reward, (numbers.Real, torch.Tensor)):
        raise TypeError(f"reward must be a float or a tensor, got {type(reward).__name__} {reward!r}")
    if isinstance(reward, numbers.Real) or (reward.numel() == 1 and reward.dim() <= 1):
        return
    if reward.dim() != 1 or reward.shape[0] != batch_size:
        raise ValueError(
            f"reward must be a scalar, a 0-d tensor or a tensor of shape [batch_size] = [{batch_size}], "
            f"got shape {tuple(reward.shape)}"
        )
