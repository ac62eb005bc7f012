r"""Numba loops of the fused CPU neuron kernels (imported only when numba is present).

Arrays are 2-D ``[T, N]`` (a sequence flattened over the neuron dimensions)
or 1-D ``[N]``, all of one dtype (float32 or float64). Every scalar
parameter arrives in ``p`` (an array of that dtype, see
:mod:`snnlab.kernels.cpu.params`) so the arithmetic stays in the array's
dtype. The charge mode and the surrogate are compile-time constants: a
factory below builds one small loop per mode (forward) or surrogate
(backward), on first use only, and numba prunes the branches of the others
before compiling it, so a call compiles just the code it runs. The reset
kind, ``detach_reset`` and which sequences to save are run-time switches.
The compiled code is cached on disk (``cache=True``; the compile-time
switches are part of the cache key), so later processes load it.

A loop covers the neurons ``lo:hi`` (the caller may run disjoint ranges on
several threads: the loops release the GIL), in chunks of ``chunk``; inside a
chunk ``T`` is the outer loop and the state of the chunk (``V`` forward,
:math:`\partial L/\partial V` backward) stays in the cache-resident output
slice, so ``x`` is read and the outputs are written once. Each step of a
chunk runs as a few short passes over 1-D slices (charge, fire and reset,
surrogate, chain rule), each a separately compiled straight loop that the
compiler vectorizes and that every kernel shares. ``fastmath`` is off: each
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

import functools
import math
from collections.abc import Callable

import numba
import numpy as np

from .params import P_DH_DV, P_DH_DX, P_ONE, P_S0, P_S1, P_S2, P_TAU, P_V_RESET, P_V_TH, P_ZERO

_JIT = {"cache": True, "fastmath": False, "nogil": True, "boundscheck": False, "error_model": "numpy"}

# ------------------------------------------------------------------ charge passes: hb := H_t of a chunk


@numba.njit(**_JIT)
def _charge_if(xt, v, hb, c, vr):
    """Mode 0, IF: :math:`V + X`."""
    for i in range(hb.shape[0]):
        hb[i] = v[i] + xt[i]


@numba.njit(**_JIT)
def _charge_div(xt, v, hb, c, vr):
    """Mode 1, LIF with ``decay_input``: :math:`V + (X - (V - V_{reset})) / \\tau`."""
    for i in range(hb.shape[0]):
        hb[i] = v[i] + (xt[i] - (v[i] - vr)) / c


@numba.njit(**_JIT)
def _charge_keep(xt, v, hb, c, vr):
    """Mode 2, LIF without ``decay_input``, :math:`V_{reset} = 0`: :math:`V (1 - 1/\\tau) + X`."""
    for i in range(hb.shape[0]):
        hb[i] = v[i] * c + xt[i]


@numba.njit(**_JIT)
def _charge_leak_div(xt, v, hb, c, vr):
    """Mode 3, LIF without ``decay_input``: :math:`V - (V - V_{reset}) / \\tau + X`."""
    for i in range(hb.shape[0]):
        hb[i] = v[i] - (v[i] - vr) / c + xt[i]


@numba.njit(**_JIT)
def _charge_kernel(xt, v, hb, c, vr):
    """Mode 4, ``LIF_*`` kernels: :math:`V + (X - (V - V_{reset}))\\,(1/\\tau)`."""
    for i in range(hb.shape[0]):
        hb[i] = v[i] + (xt[i] - (v[i] - vr)) * c


@numba.njit(**_JIT)
def _charge_kernel_detach(xt, v, hb, c, vr):
    """Mode 5, ``LIF_*`` kernels with ``detach_input``: :math:`V + X + (V_{reset} - V)\\,(1/\\tau)`."""
    for i in range(hb.shape[0]):
        hb[i] = v[i] + xt[i] + (vr - v[i]) * c


# ------------------------------------------------------------------ fire and reset: st := S_t, v := V_t


@numba.njit(**_JIT)
def _fire_hard(hb, st, v, vth, vr, one, zero):
    """:math:`S = [H - V_{th} \\ge 0]`, :math:`V = V_{reset}` where :math:`S = 1`, else :math:`H`."""
    for i in range(hb.shape[0]):
        h = hb[i]
        spiked = h - vth >= zero
        st[i] = one if spiked else zero
        v[i] = vr if spiked else h


@numba.njit(**_JIT)
def _fire_soft(hb, st, v, vth, vr, one, zero):
    """:math:`S = [H - V_{th} \\ge 0]`, :math:`V = H - V_{th}` where :math:`S = 1`, else :math:`H`."""
    for i in range(hb.shape[0]):
        h = hb[i]
        spiked = h - vth >= zero
        st[i] = one if spiked else zero
        v[i] = (h - vth) if spiked else h


# ------------------------------------------------------------------ surrogate passes: out := g'(H - V_th)


@numba.njit(**_JIT)
def _sg_atan(hb, out, vth, s0, s1, s2, one, zero):
    """ATan: :math:`(\\alpha/2) / (1 + (\\pi/2\\,\\alpha z)^2)`."""
    for i in range(hb.shape[0]):
        u = s1 * (hb[i] - vth)
        out[i] = s0 / (one + u * u)


@numba.njit(**_JIT)
def _sg_sigmoid(hb, out, vth, s0, s1, s2, one, zero):
    """Sigmoid: :math:`\\alpha\\,\\sigma (1 - \\sigma)`, :math:`\\sigma = 1/(1 + e^{-\\alpha z})`."""
    for i in range(hb.shape[0]):
        sg = one / (one + math.exp(-(s0 * (hb[i] - vth))))
        out[i] = s0 * sg * (one - sg)


@numba.njit(**_JIT)
def _sg_piecewise_quadratic(hb, out, vth, s0, s1, s2, one, zero):
    """PiecewiseQuadratic: :math:`\\alpha - \\alpha^2 |z|` inside :math:`|z| \\le 1/\\alpha`, else 0."""
    for i in range(hb.shape[0]):
        a = abs(hb[i] - vth)
        out[i] = zero if a > s2 else s0 - s1 * a


@numba.njit(**_JIT)
def _sg_piecewise_exp(hb, out, vth, s0, s1, s2, one, zero):
    """PiecewiseExp: :math:`(\\alpha/2)\\,e^{-\\alpha |z|}`."""
    for i in range(hb.shape[0]):
        out[i] = s0 * math.exp(s1 * abs(hb[i] - vth))


@numba.njit(**_JIT)
def _sg_soft_sign(hb, out, vth, s0, s1, s2, one, zero):
    """SoftSign: :math:`1 / (2\\alpha (1/\\alpha + |z|)^2)`."""
    for i in range(hb.shape[0]):
        u = s1 + abs(hb[i] - vth)
        out[i] = one / (s0 * (u * u))


@numba.njit(**_JIT)
def _sg_super_spike(hb, out, vth, s0, s1, s2, one, zero):
    """SuperSpike: :math:`\\alpha / (|z| + 1)^2`."""
    for i in range(hb.shape[0]):
        u = abs(hb[i] - vth) + one
        out[i] = s0 / (u * u)


@numba.njit(**_JIT)
def _sg_erf(hb, out, vth, s0, s1, s2, one, zero):
    """Erf: :math:`\\alpha/\\sqrt{\\pi}\\,e^{-(\\alpha z)^2}`."""
    for i in range(hb.shape[0]):
        u = s1 * (hb[i] - vth)
        out[i] = s0 * math.exp(-(u * u))


@numba.njit(**_JIT)
def _sg_rect(hb, out, vth, s0, s1, s2, one, zero):
    """Rect: :math:`\\alpha\\,[|z| < 1/(2\\alpha)]`."""
    for i in range(hb.shape[0]):
        out[i] = s0 if abs(hb[i] - vth) < s1 else zero


# ------------------------------------------------------------------ backward passes


@numba.njit(**_JIT)
def _v_to_h(soft, detach, hb, sg, out, vth, vr, one, zero):
    """``out`` := :math:`\\partial V_t/\\partial H_t` for the reset kind and ``detach_reset``.

    Soft: :math:`1 - V_{th} g'` (1 detached); hard: :math:`1 - S + (V_{reset} - H) g'`
    (:math:`1 - S` detached).
    """
    n = hb.shape[0]
    if soft:
        if detach:
            for i in range(n):
                out[i] = one
        else:
            for i in range(n):
                out[i] = one - vth * sg[i]
    elif detach:
        for i in range(n):
            out[i] = zero if hb[i] - vth >= zero else one
    else:
        for i in range(n):
            h = hb[i]
            keep = zero if h - vth >= zero else one
            out[i] = keep + (vr - h) * sg[i]


@numba.njit(**_JIT)
def _chain(gst, gsht, gvht, gxt, gv, dhdx, dhdv):
    """dL/dH = dL/dS dS/dH + dL/dV dV/dH; ``gxt`` := dL/dH dH/dX; ``gv`` := dL/dH dH/dV."""
    for i in range(gv.shape[0]):
        gh = gst[i] * gsht[i] + gv[i] * gvht[i]
        gxt[i] = gh * dhdx
        gv[i] = gh * dhdv


@numba.njit(**_JIT)
def _add(gv, gvst):
    """``gv`` += ``gvst`` (the gradient reaching :math:`V_t` through ``v_seq``)."""
    for i in range(gv.shape[0]):
        gv[i] = gv[i] + gvst[i]


@numba.njit(**_JIT)
def _copy(dst, src):
    for i in range(dst.shape[0]):
        dst[i] = src[i]


# ------------------------------------------------------------------ kernel factories
# Each factory returns a jitted closure over plain ints only (the cache key
# includes them): the charge mode and the surrogate are compile-time
# constants, and numba prunes the ``if <constant> == k`` chains before typing,
# so only the passes of the selected charge / surrogate are compiled (once
# per dtype, shared by every kernel that calls them). The reset kind and the
# other switches are run-time bools tested once per step, so they add no
# variants to compile.


@functools.cache
def forward_kernel(charge: int) -> Callable:
    """``fn(x, v0, spike, v_last, h_seq, v_seq, p, soft, save_h, save_v, lo, hi, chunk)``: forward loop.

    ``T`` steps of neurons ``lo:hi`` with charge mode ``charge``: ``x`` ``[T, N]``, ``v0``
    ``[N]`` -> ``spike`` ``[T, N]``, ``v_last`` ``[N]`` (may be ``v0`` itself: each neuron's
    ``V`` is read before it is written); ``h_seq`` (:math:`H_t`) and ``v_seq`` (:math:`V_t`)
    ``[T, N]`` are written when ``save_h`` / ``save_v`` (otherwise any ``[1, 1]`` array).
    ``soft``, ``save_h``, ``save_v``: Python bools.
    """

    def forward(x, v0, spike, v_last, h_seq, v_seq, p, soft, save_h, save_v, lo, hi, chunk):
        vth, vr, c, one, zero = p[P_V_TH], p[P_V_RESET], p[P_TAU], p[P_ONE], p[P_ZERO]
        hb = np.empty(min(chunk, hi - lo), dtype=x.dtype)
        for c_lo in range(lo, hi, chunk):
            c_hi = min(c_lo + chunk, hi)
            h = hb[: c_hi - c_lo]
            v = v_last[c_lo:c_hi]
            _copy(v, v0[c_lo:c_hi])
            for t in range(x.shape[0]):
                xt = x[t, c_lo:c_hi]
                if save_h:
                    h = h_seq[t, c_lo:c_hi]
                if charge == 0:
                    _charge_if(xt, v, h, c, vr)
                elif charge == 1:
                    _charge_div(xt, v, h, c, vr)
                elif charge == 2:
                    _charge_keep(xt, v, h, c, vr)
                elif charge == 3:
                    _charge_leak_div(xt, v, h, c, vr)
                elif charge == 4:
                    _charge_kernel(xt, v, h, c, vr)
                else:
                    _charge_kernel_detach(xt, v, h, c, vr)
                if soft:
                    _fire_soft(h, spike[t, c_lo:c_hi], v, vth, vr, one, zero)
                else:
                    _fire_hard(h, spike[t, c_lo:c_hi], v, vth, vr, one, zero)
                if save_v:
                    _copy(v_seq[t, c_lo:c_hi], v)

    return numba.njit(**_JIT)(forward)


@functools.cache
def forward_grads_kernel(charge: int, code: int) -> Callable:
    """``fn(x, v0, spike, v_last, gsh, gvh, p, soft, detach, lo, hi, chunk)``: forward writing dS/dH, dV/dH.

    As :func:`forward_kernel` with surrogate ``code``; ``gsh`` = :math:`g'(H_t - V_{th})` and
    ``gvh`` = :math:`\\partial V_t/\\partial H_t` are ``[T, N]``; ``detach`` is ``detach_reset``.
    """

    def forward_grads(x, v0, spike, v_last, gsh, gvh, p, soft, detach, lo, hi, chunk):
        vth, vr, c, one, zero = p[P_V_TH], p[P_V_RESET], p[P_TAU], p[P_ONE], p[P_ZERO]
        s0, s1, s2 = p[P_S0], p[P_S1], p[P_S2]
        hb = np.empty(min(chunk, hi - lo), dtype=x.dtype)
        for c_lo in range(lo, hi, chunk):
            c_hi = min(c_lo + chunk, hi)
            h = hb[: c_hi - c_lo]
            v = v_last[c_lo:c_hi]
            _copy(v, v0[c_lo:c_hi])
            for t in range(x.shape[0]):
                xt = x[t, c_lo:c_hi]
                if charge == 0:
                    _charge_if(xt, v, h, c, vr)
                elif charge == 1:
                    _charge_div(xt, v, h, c, vr)
                elif charge == 2:
                    _charge_keep(xt, v, h, c, vr)
                elif charge == 3:
                    _charge_leak_div(xt, v, h, c, vr)
                elif charge == 4:
                    _charge_kernel(xt, v, h, c, vr)
                else:
                    _charge_kernel_detach(xt, v, h, c, vr)
                if soft:
                    _fire_soft(h, spike[t, c_lo:c_hi], v, vth, vr, one, zero)
                else:
                    _fire_hard(h, spike[t, c_lo:c_hi], v, vth, vr, one, zero)
                sg = gsh[t, c_lo:c_hi]
                if code == 0:
                    _sg_atan(h, sg, vth, s0, s1, s2, one, zero)
                elif code == 1:
                    _sg_sigmoid(h, sg, vth, s0, s1, s2, one, zero)
                elif code == 2:
                    _sg_piecewise_quadratic(h, sg, vth, s0, s1, s2, one, zero)
                elif code == 3:
                    _sg_piecewise_exp(h, sg, vth, s0, s1, s2, one, zero)
                elif code == 4:
                    _sg_soft_sign(h, sg, vth, s0, s1, s2, one, zero)
                elif code == 5:
                    _sg_super_spike(h, sg, vth, s0, s1, s2, one, zero)
                elif code == 6:
                    _sg_erf(h, sg, vth, s0, s1, s2, one, zero)
                else:
                    _sg_rect(h, sg, vth, s0, s1, s2, one, zero)
                _v_to_h(soft, detach, h, sg, gvh[t, c_lo:c_hi], vth, vr, one, zero)

    return numba.njit(**_JIT)(forward_grads)


@functools.cache
def backward_kernel(code: int) -> Callable:
    """``fn(grad_spike, grad_v_last, grad_v_seq, h_seq, grad_x, grad_v0, p, soft, detach, has_grad_v_seq,
    lo, hi, chunk)``: BPTT from :math:`H_t` with surrogate ``code``.

    ``grad_spike`` ``[T, N]``, ``grad_v_last`` ``[N]``, ``grad_v_seq`` ``[T, N]`` (read when
    ``has_grad_v_seq``), ``h_seq`` ``[T, N]`` -> ``grad_x`` ``[T, N]``, ``grad_v0`` ``[N]``. The
    surrogate derivative and :math:`\\partial V_t/\\partial H_t` are recomputed from ``h_seq``;
    :math:`\\partial H/\\partial X` and :math:`\\partial H/\\partial V` come from ``p``.
    """

    def backward(grad_spike, grad_v_last, grad_v_seq, h_seq, grad_x, grad_v0, p, soft, detach, has_grad_v_seq,
                 lo, hi, chunk):  # fmt: skip
        vth, vr, dhdx, dhdv = p[P_V_TH], p[P_V_RESET], p[P_DH_DX], p[P_DH_DV]
        s0, s1, s2, one, zero = p[P_S0], p[P_S1], p[P_S2], p[P_ONE], p[P_ZERO]
        m = min(chunk, hi - lo)
        sb = np.empty(m, dtype=h_seq.dtype)
        gb = np.empty(m, dtype=h_seq.dtype)
        for c_lo in range(lo, hi, chunk):
            c_hi = min(c_lo + chunk, hi)
            sg = sb[: c_hi - c_lo]
            gvh = gb[: c_hi - c_lo]
            gv = grad_v0[c_lo:c_hi]
            _copy(gv, grad_v_last[c_lo:c_hi])
            for t in range(h_seq.shape[0] - 1, -1, -1):
                h = h_seq[t, c_lo:c_hi]
                if has_grad_v_seq:
                    _add(gv, grad_v_seq[t, c_lo:c_hi])
                if code == 0:
                    _sg_atan(h, sg, vth, s0, s1, s2, one, zero)
                elif code == 1:
                    _sg_sigmoid(h, sg, vth, s0, s1, s2, one, zero)
                elif code == 2:
                    _sg_piecewise_quadratic(h, sg, vth, s0, s1, s2, one, zero)
                elif code == 3:
                    _sg_piecewise_exp(h, sg, vth, s0, s1, s2, one, zero)
                elif code == 4:
                    _sg_soft_sign(h, sg, vth, s0, s1, s2, one, zero)
                elif code == 5:
                    _sg_super_spike(h, sg, vth, s0, s1, s2, one, zero)
                elif code == 6:
                    _sg_erf(h, sg, vth, s0, s1, s2, one, zero)
                else:
                    _sg_rect(h, sg, vth, s0, s1, s2, one, zero)
                _v_to_h(soft, detach, h, sg, gvh, vth, vr, one, zero)
                _chain(grad_spike[t, c_lo:c_hi], sg, gvh, grad_x[t, c_lo:c_hi], gv, dhdx, dhdv)

    return numba.njit(**_JIT)(backward)


@functools.cache
def backward_grads_kernel() -> Callable:
    """``fn(grad_spike, grad_v_next, gsh, gvh, grad_x, grad_v0, p, lo, hi, chunk)``: BPTT from dS/dH, dV/dH.

    :math:`\\partial L/\\partial H_t = \\partial L/\\partial S_t\\,` ``gsh`` :math:`+
    \\partial L/\\partial V_t\\,` ``gvh``; all sequences ``[T, N]``, states ``[N]``.
    """

    def backward_grads(grad_spike, grad_v_next, gsh, gvh, grad_x, grad_v0, p, lo, hi, chunk):
        dhdx, dhdv = p[P_DH_DX], p[P_DH_DV]
        for c_lo in range(lo, hi, chunk):
            c_hi = min(c_lo + chunk, hi)
            gv = grad_v0[c_lo:c_hi]
            _copy(gv, grad_v_next[c_lo:c_hi])
            for t in range(gsh.shape[0] - 1, -1, -1):
                _chain(
                    grad_spike[t, c_lo:c_hi], gsh[t, c_lo:c_hi], gvh[t, c_lo:c_hi], grad_x[t, c_lo:c_hi],
                    gv, dhdx, dhdv,
                )  # fmt: skip

    return numba.njit(**_JIT)(backward_grads)
