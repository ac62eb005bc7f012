r"""Numba loops of the fused CPU neuron kernels (imported only when numba is present).

Arrays are 2-D ``[T, N]`` (a sequence flattened over the neuron dimensions)
or 1-D ``[N]``, all of one dtype (float32 or float64). Every scalar
parameter arrives in ``p`` (an array of that dtype, see
:mod:`snnlab.kernels.cpu.params`) so the arithmetic stays in the array's
dtype, and every switch arrives as an int in ``flags``; one compiled
specialisation per (loop, dtype) serves every neuron model, reset, surrogate
and flag combination. The neurons are split in chunks of ``chunk`` that run
in parallel; inside a chunk ``T`` is the outer loop and the state of the
chunk (``V`` forward, :math:`\partial L/\partial V` backward) stays in the
cache-resident output slice, so ``x`` is read and the outputs are written
once. Each step of a chunk runs as a few short passes (charge, fire and
reset, surrogate) whose switches are decided once per pass, so every pass
is a straight loop that the compiler vectorizes. ``fastmath`` is off: each
step performs the same IEEE operations in the same order as the torch
reference, so spikes are bitwise equal.

Forward step (charge ``mode`` from :mod:`snnlab.kernels.cpu.params`):

.. math::
    H_t = f_{mode}(V_{t-1}, X_t), \quad S_t = [H_t - V_{th} \ge 0], \quad
    V_t = \begin{cases} V_{reset} & S_t = 1,\ \text{hard} \\ H_t - V_{th} & S_t = 1,\ \text{soft}
    \\ H_t & S_t = 0 \end{cases}

Backward step, with :math:`g' = \partial S/\partial H` the surrogate
derivative at :math:`H_t - V_{th}`:

.. math::
    \frac{\partial L}{\partial H_t} = \frac{\partial L}{\partial S_t} g'
        + \frac{\partial L}{\partial V_t}\frac{\partial V_t}{\partial H_t}, \quad
    \frac{\partial L}{\partial X_t} = \frac{\partial L}{\partial H_t}\frac{\partial H}{\partial X}, \quad
    \frac{\partial L}{\partial V_{t-1}} = \frac{\partial L}{\partial H_t}\frac{\partial H}{\partial V}
"""

from __future__ import annotations

import math

import numba
import numpy as np

from .params import (
    F_CHARGE,
    F_DETACH,
    F_HAS_GRAD_V_SEQ,
    F_SAVE_H,
    F_SAVE_V,
    F_SOFT,
    F_SURROGATE,
    P_DH_DV,
    P_DH_DX,
    P_ONE,
    P_S0,
    P_S1,
    P_S2,
    P_TAU,
    P_V_RESET,
    P_V_TH,
    P_ZERO,
)

_JIT = {"cache": True, "fastmath": False, "nogil": True, "boundscheck": False}


@numba.njit(inline="always", **_JIT)
def _charge(mode, x, v, c, vr):
    if mode == 0:  # IF: V + X
        return v + x
    if mode == 1:  # LIF, decay_input: V + (X - (V - V_reset)) / tau
        return v + (x - (v - vr)) / c
    if mode == 2:  # LIF, no decay_input, V_reset = 0: V * (1 - 1/tau) + X
        return v * c + x
    if mode == 3:  # LIF, no decay_input: V - (V - V_reset) / tau + X
        return v - (v - vr) / c + x
    if mode == 4:  # kernel LIF: V + (X - (V - V_reset)) * (1/tau)
        return v + (x - (v - vr)) * c
    # mode 5, kernel LIF, input not decayed: V + X + (V_reset - V) * (1/tau)
    return v + x + (vr - v) * c


@numba.njit(inline="always", **_JIT)
def _surrogate_grad(code, z, s0, s1, s2, one, zero):
    if code == 0:  # ATan: (alpha/2) / (1 + (pi/2 alpha z)^2)
        u = s1 * z
        return s0 / (one + u * u)
    if code == 1:  # Sigmoid: alpha sg (1 - sg), sg = 1 / (1 + exp(-alpha z))
        sg = one / (one + math.exp(-(s0 * z)))
        return s0 * sg * (one - sg)
    if code == 2:  # PiecewiseQuadratic: alpha - alpha^2 |z| inside |z| <= 1/alpha
        a = abs(z)
        if a > s2:
            return zero
        return s0 - s1 * a
    if code == 3:  # PiecewiseExp: (alpha/2) exp(-alpha |z|)
        return s0 * math.exp(s1 * abs(z))
    if code == 4:  # SoftSign: 1 / (2 alpha (1/alpha + |z|)^2)
        u = s1 + abs(z)
        return one / (s0 * (u * u))
    if code == 5:  # SuperSpike: alpha / (|z| + 1)^2
        u = abs(z) + one
        return s0 / (u * u)
    if code == 6:  # Erf: alpha/sqrt(pi) exp(-(alpha z)^2)
        u = s1 * z
        return s0 * math.exp(-(u * u))
    # code 7, Rect: alpha [|z| < 1/(2 alpha)]
    if abs(z) < s1:
        return s0
    return zero


@numba.njit(inline="always", **_JIT)
def _grad_v_to_h(soft, detach, spiked, h, sg, vth, vr, one, zero):
    if soft:
        if detach:
            return one
        return one - vth * sg
    keep = zero if spiked else one
    if detach:
        return keep
    return keep + (vr - h) * sg


# ------------------------------------------------------------------ passes over one chunk-step


@numba.njit(inline="always", **_JIT)
def _charge_rows(mode, xt, v, hb, c, vr):
    for i in range(hb.shape[0]):
        hb[i] = _charge(mode, xt[i], v[i], c, vr)


@numba.njit(inline="always", **_JIT)
def _charge_pass(mode, xt, v, hb, c, vr):
    """``hb`` := :math:`H_t` of the chunk, one straight loop per charge mode."""
    if mode == 0:
        _charge_rows(0, xt, v, hb, c, vr)
    elif mode == 1:
        _charge_rows(1, xt, v, hb, c, vr)
    elif mode == 2:
        _charge_rows(2, xt, v, hb, c, vr)
    elif mode == 3:
        _charge_rows(3, xt, v, hb, c, vr)
    elif mode == 4:
        _charge_rows(4, xt, v, hb, c, vr)
    else:
        _charge_rows(5, xt, v, hb, c, vr)


@numba.njit(inline="always", **_JIT)
def _fire_pass(soft, hb, st, v, vth, vr, one, zero):
    """``st`` := :math:`S_t`, ``v`` := :math:`V_t` from ``hb`` = :math:`H_t`."""
    if soft:
        for i in range(hb.shape[0]):
            h = hb[i]
            spiked = h - vth >= zero
            st[i] = one if spiked else zero
            v[i] = (h - vth) if spiked else h
    else:
        for i in range(hb.shape[0]):
            h = hb[i]
            spiked = h - vth >= zero
            st[i] = one if spiked else zero
            v[i] = vr if spiked else h


@numba.njit(inline="always", **_JIT)
def _surrogate_rows(code, hb, out, vth, s0, s1, s2, one, zero):
    for i in range(hb.shape[0]):
        out[i] = _surrogate_grad(code, hb[i] - vth, s0, s1, s2, one, zero)


@numba.njit(inline="always", **_JIT)
def _surrogate_pass(code, hb, out, vth, s0, s1, s2, one, zero):
    """``out`` := :math:`g'(H_t - V_{th})`, one straight loop per surrogate."""
    if code == 0:
        _surrogate_rows(0, hb, out, vth, s0, s1, s2, one, zero)
    elif code == 1:
        _surrogate_rows(1, hb, out, vth, s0, s1, s2, one, zero)
    elif code == 2:
        _surrogate_rows(2, hb, out, vth, s0, s1, s2, one, zero)
    elif code == 3:
        _surrogate_rows(3, hb, out, vth, s0, s1, s2, one, zero)
    elif code == 4:
        _surrogate_rows(4, hb, out, vth, s0, s1, s2, one, zero)
    elif code == 5:
        _surrogate_rows(5, hb, out, vth, s0, s1, s2, one, zero)
    elif code == 6:
        _surrogate_rows(6, hb, out, vth, s0, s1, s2, one, zero)
    else:
        _surrogate_rows(7, hb, out, vth, s0, s1, s2, one, zero)


@numba.njit(inline="always", **_JIT)
def _v_to_h_rows(soft, detach, hb, sg, out, vth, vr, one, zero):
    for i in range(hb.shape[0]):
        h = hb[i]
        out[i] = _grad_v_to_h(soft, detach, h - vth >= zero, h, sg[i], vth, vr, one, zero)


@numba.njit(inline="always", **_JIT)
def _v_to_h_pass(soft, detach, hb, sg, out, vth, vr, one, zero):
    """``out`` := :math:`\\partial V_t/\\partial H_t` for the reset and ``detach_reset``."""
    if soft:
        if detach:
            _v_to_h_rows(True, True, hb, sg, out, vth, vr, one, zero)
        else:
            _v_to_h_rows(True, False, hb, sg, out, vth, vr, one, zero)
    elif detach:
        _v_to_h_rows(False, True, hb, sg, out, vth, vr, one, zero)
    else:
        _v_to_h_rows(False, False, hb, sg, out, vth, vr, one, zero)


@numba.njit(inline="always", **_JIT)
def _forward_chunk(x, v0, spike, v_last, h_seq, v_seq, p, flags, lo, hi):
    """All ``T`` steps of neurons ``lo:hi``; ``v_last[lo:hi]`` holds ``V`` between steps."""
    mode, soft, save_h, save_v = flags[F_CHARGE], flags[F_SOFT], flags[F_SAVE_H], flags[F_SAVE_V]
    vth, vr, c, one, zero = p[P_V_TH], p[P_V_RESET], p[P_TAU], p[P_ONE], p[P_ZERO]
    v = v_last[lo:hi]
    v[:] = v0[lo:hi]
    hb = np.empty(hi - lo, dtype=x.dtype)
    for t in range(x.shape[0]):
        _charge_pass(mode, x[t, lo:hi], v, hb, c, vr)
        if save_h:
            h_seq[t, lo:hi] = hb
        _fire_pass(soft, hb, spike[t, lo:hi], v, vth, vr, one, zero)
        if save_v:
            v_seq[t, lo:hi] = v


@numba.njit(inline="always", **_JIT)
def _forward_grads_chunk(x, v0, spike, v_last, gsh, gvh, p, flags, lo, hi):
    """:func:`_forward_chunk` that also writes dS/dH and dV/dH of every step."""
    mode, soft, code, detach = flags[F_CHARGE], flags[F_SOFT], flags[F_SURROGATE], flags[F_DETACH]
    vth, vr, c, one, zero = p[P_V_TH], p[P_V_RESET], p[P_TAU], p[P_ONE], p[P_ZERO]
    s0, s1, s2 = p[P_S0], p[P_S1], p[P_S2]
    v = v_last[lo:hi]
    v[:] = v0[lo:hi]
    hb = np.empty(hi - lo, dtype=x.dtype)
    sb = np.empty(hi - lo, dtype=x.dtype)
    gb = np.empty(hi - lo, dtype=x.dtype)
    for t in range(x.shape[0]):
        _charge_pass(mode, x[t, lo:hi], v, hb, c, vr)
        _fire_pass(soft, hb, spike[t, lo:hi], v, vth, vr, one, zero)
        _surrogate_pass(code, hb, sb, vth, s0, s1, s2, one, zero)
        _v_to_h_pass(soft, detach, hb, sb, gb, vth, vr, one, zero)
        gsh[t, lo:hi] = sb
        gvh[t, lo:hi] = gb


@numba.njit(inline="always", **_JIT)
def _backward_chunk(grad_spike, grad_v_last, grad_v_seq, h_seq, grad_x, grad_v0, p, flags, lo, hi):
    """Reverse loop over ``T`` for neurons ``lo:hi``; ``grad_v0[lo:hi]`` holds dL/dV between steps."""
    soft, code, detach, has_gvs = flags[F_SOFT], flags[F_SURROGATE], flags[F_DETACH], flags[F_HAS_GRAD_V_SEQ]
    vth, vr, dhdx, dhdv = p[P_V_TH], p[P_V_RESET], p[P_DH_DX], p[P_DH_DV]
    s0, s1, s2, one, zero = p[P_S0], p[P_S1], p[P_S2], p[P_ONE], p[P_ZERO]
    gv = grad_v0[lo:hi]
    gv[:] = grad_v_last[lo:hi]
    hb = np.empty(hi - lo, dtype=h_seq.dtype)
    sb = np.empty(hi - lo, dtype=h_seq.dtype)
    gb = np.empty(hi - lo, dtype=h_seq.dtype)
    for t in range(h_seq.shape[0] - 1, -1, -1):
        hb[:] = h_seq[t, lo:hi]
        if has_gvs:
            gvst = grad_v_seq[t, lo:hi]
            for i in range(gv.shape[0]):
                gv[i] = gv[i] + gvst[i]
        _surrogate_pass(code, hb, sb, vth, s0, s1, s2, one, zero)
        _v_to_h_pass(soft, detach, hb, sb, gb, vth, vr, one, zero)
        _chain_rows(grad_spike[t, lo:hi], sb, gb, grad_x[t, lo:hi], gv, dhdx, dhdv)


@numba.njit(inline="always", **_JIT)
def _chain_rows(gst, gsht, gvht, gxt, gv, dhdx, dhdv):
    """dL/dH = dL/dS dS/dH + dL/dV dV/dH; ``gxt`` := dL/dH dH/dX; ``gv`` := dL/dH dH/dV."""
    for i in range(gv.shape[0]):
        gh = gst[i] * gsht[i] + gv[i] * gvht[i]
        gxt[i] = gh * dhdx
        gv[i] = gh * dhdv


@numba.njit(inline="always", **_JIT)
def _backward_grads_chunk(grad_spike, grad_v_next, gsh, gvh, grad_x, grad_v0, p, lo, hi):
    """Reverse loop from saved dS/dH and dV/dH for neurons ``lo:hi``."""
    dhdx, dhdv = p[P_DH_DX], p[P_DH_DV]
    gv = grad_v0[lo:hi]
    gv[:] = grad_v_next[lo:hi]
    for t in range(gsh.shape[0] - 1, -1, -1):
        _chain_rows(grad_spike[t, lo:hi], gsh[t, lo:hi], gvh[t, lo:hi], grad_x[t, lo:hi], gv, dhdx, dhdv)


# ------------------------------------------------------------------ parallel loops over chunks


@numba.njit(parallel=True, **_JIT)
def fptt(x, v0, spike, v_last, h_seq, v_seq, p, flags, chunk):
    """Forward over ``T`` steps: ``x`` ``[T, N]``, ``v0`` ``[N]`` -> ``spike`` ``[T, N]``, ``v_last`` ``[N]``.

    ``h_seq`` (:math:`H_t`) and ``v_seq`` (:math:`V_t`), ``[T, N]``, are written when their flag
    is set (otherwise they may be ``[1, 1]`` placeholders).
    """
    n = x.shape[1]
    for k in numba.prange((n + chunk - 1) // chunk):
        _forward_chunk(x, v0, spike, v_last, h_seq, v_seq, p, flags, k * chunk, min(k * chunk + chunk, n))


@numba.njit(parallel=True, **_JIT)
def fptt_grads(x, v0, spike, v_last, gsh, gvh, p, flags, chunk):
    """Forward over ``T`` steps that also writes dS/dH (``gsh``) and dV/dH (``gvh``), ``[T, N]``."""
    n = x.shape[1]
    for k in numba.prange((n + chunk - 1) // chunk):
        _forward_grads_chunk(x, v0, spike, v_last, gsh, gvh, p, flags, k * chunk, min(k * chunk + chunk, n))


@numba.njit(parallel=True, **_JIT)
def bptt_from_h(grad_spike, grad_v_last, grad_v_seq, h_seq, grad_x, grad_v0, p, flags, chunk):
    """Backward over ``T`` steps from the saved :math:`H_t` ``[T, N]`` (surrogate recomputed).

    ``grad_spike`` ``[T, N]``, ``grad_v_last`` ``[N]``, ``grad_v_seq`` ``[T, N]`` (read when its flag is
    set) -> ``grad_x`` ``[T, N]``, ``grad_v0`` ``[N]``.
    """
    n = h_seq.shape[1]
    for k in numba.prange((n + chunk - 1) // chunk):
        _backward_chunk(
            grad_spike, grad_v_last, grad_v_seq, h_seq, grad_x, grad_v0, p, flags,
            k * chunk, min(k * chunk + chunk, n),
        )  # fmt: skip


@numba.njit(parallel=True, **_JIT)
def bptt_from_grads(grad_spike, grad_v_next, gsh, gvh, grad_x, grad_v0, p, chunk):
    """Backward over ``T`` steps from saved dS/dH (``gsh``) and dV/dH (``gvh``), both ``[T, N]``."""
    n = gsh.shape[1]
    for k in numba.prange((n + chunk - 1) // chunk):
        _backward_grads_chunk(grad_spike, grad_v_next, gsh, gvh, grad_x, grad_v0, p, k * chunk,
                              min(k * chunk + chunk, n))  # fmt: skip


# ------------------------------------------------------------------ serial forms for small calls
# One chunk holding every neuron, on the calling thread: a call of a few
# thousand neuron-steps costs less than waking the worker threads.


@numba.njit(**_JIT)
def fptt_serial(x, v0, spike, v_last, h_seq, v_seq, p, flags):
    """:func:`fptt` on the calling thread."""
    _forward_chunk(x, v0, spike, v_last, h_seq, v_seq, p, flags, 0, x.shape[1])


@numba.njit(**_JIT)
def fptt_grads_serial(x, v0, spike, v_last, gsh, gvh, p, flags):
    """:func:`fptt_grads` on the calling thread."""
    _forward_grads_chunk(x, v0, spike, v_last, gsh, gvh, p, flags, 0, x.shape[1])


@numba.njit(**_JIT)
def bptt_from_h_serial(grad_spike, grad_v_last, grad_v_seq, h_seq, grad_x, grad_v0, p, flags):
    """:func:`bptt_from_h` on the calling thread."""
    _backward_chunk(grad_spike, grad_v_last, grad_v_seq, h_seq, grad_x, grad_v0, p, flags, 0, h_seq.shape[1])


@numba.njit(**_JIT)
def bptt_from_grads_serial(grad_spike, grad_v_next, gsh, gvh, grad_x, grad_v0, p):
    """:func:`bptt_from_grads` on the calling thread."""
    _backward_grads_chunk(grad_spike, grad_v_next, gsh, gvh, grad_x, grad_v0, p, 0, gsh.shape[1])
