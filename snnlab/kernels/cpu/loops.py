r"""Numba loops of the fused CPU neuron kernels (imported only when numba is present).

Arrays are 2-D ``[T, N]`` (a sequence flattened over the neuron dimensions)
or 1-D ``[N]``, all of one dtype (float32 or float64). Every scalar
parameter arrives in ``p`` (an array of that dtype, see
:mod:`snnlab.kernels.cpu.params`) so the arithmetic stays in the array's
dtype. The charge mode and the surrogate are compile-time constants: a
factory below builds one loop per mode (forward) or surrogate (backward), on
first use only, and :func:`charge` / :func:`surrogate_grad` resolve to the
one scalar function it names while the loop is typed, so a call compiles
just the code it runs. The reset kind, ``detach_reset`` and which sequences
to save are run-time switches. The compiled code is cached on disk
(``cache=True``; the compile-time switches are part of the cache key), so
later processes load it.

A loop covers the neurons ``lo:hi`` (the caller may run disjoint ranges on
several threads: the loops release the GIL), in chunks of ``chunk``; inside a
chunk ``T`` is the outer loop and the state of the chunk (``V`` forward,
:math:`\partial L/\partial V` backward) stays in the cache-resident output
slice, so every sequence is read or written once. Each step of a chunk is one
fused pass over the chunk's neurons (charge, fire and reset forward; surrogate,
:math:`\partial V_t/\partial H_t` and the chain rule backward, which then
scales :math:`\partial L/\partial H_t` into :math:`\partial L/\partial X_t` in a
second, cache-resident pass), built from the scalar functions below, which the
compiler inlines and vectorizes. ``fastmath`` is off: each step performs the
same IEEE operations in the same order as the torch reference, so spikes and
membrane potentials are bitwise equal (inf and NaN included).

Forward step (charge ``mode`` from :mod:`snnlab.kernels.cpu.params`):

.. math::
    H_t = f_{mode}(V_{t-1}, X_t), \quad S_t = [H_t - V_{th} \ge 0], \quad
    V_t = \begin{cases} (1 - S_t) H_t + S_t V_{reset} & \text{hard reset} \\
    H_t - S_t V_{th} & \text{soft reset} \end{cases}

Backward step, with :math:`g' = \partial S/\partial H` the surrogate
derivative at :math:`H_t - V_{th}`:

.. math::
    \frac{\partial L}{\partial H_t} = \frac{\partial L}{\partial S_t} g'
        + \frac{\partial L}{\partial V_t}\frac{\partial V_t}{\partial H_t}, \quad
    \frac{\partial L}{\partial X_t} = \frac{\partial L}{\partial H_t}\frac{\partial H}{\partial X}, \quad
    \frac{\partial L}{\partial V_{t-1}} = \frac{\partial L}{\partial H_t}\frac{\partial H}{\partial V}

The surrogates that need :math:`e^u` (Sigmoid, PiecewiseExp, Erf) use
:func:`vexp`, a branch-free exponential that the compiler vectorizes (a
libm ``exp`` call does not), within 1 ulp of the correctly rounded value in
float32 and float64.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic, overload

from .params import P_DH_DV, P_DH_DX, P_ONE, P_S0, P_S1, P_S2, P_TAU, P_V_RESET, P_V_TH, P_ZERO

_JIT = {"cache": True, "fastmath": False, "nogil": True, "boundscheck": False, "error_model": "numpy"}

# ------------------------------------------------------------------ vectorizable exponential
# e^x = 2^n e^r with n = round(x / ln 2) and r = x - n ln 2 (Cody-Waite: ln 2 split in a short
# high part, so that n ln2_hi is exact, and the rest), |r| <= ln 2 / 2. e^r = 1 + (r + r^2 P(r))
# with P a polynomial in Horner form, and 2^n is applied by building the exponent bits (as two
# factors, so that subnormal results and overflow come out of the last product). Rounding y to
# an integer adds and subtracts 1.5 * 2^(mantissa bits) (exact round-to-nearest). Every step
# is a plain IEEE operation in the argument's precision, so the loops that call it vectorize
# with fastmath off (a libm ``exp`` call does not).

_F = np.float32
_LOG2E_32, _ROUND_32 = _F(1.4426950408889634), _F(12582912.0)  # 1.5 * 2^23
_LN2_HI_32, _LN2_LO_32 = _F(0.693359375), _F(-2.12194440e-4)  # n * _LN2_HI_32 exact for |n| < 2^15
_LO_32, _HI_32 = _F(-104.0), _F(89.0)  # e^x is 0 below (after rounding) and inf above in float32
#: Cephes ``expf`` coefficients of P: e^r ~ 1 + r + r^2 P(r), relative error 1.7e-7 in float32.
_P32 = (_F(1.9875691500e-4), _F(1.3981999507e-3), _F(8.3334519073e-3), _F(4.1665795894e-2),
        _F(1.6666665459e-1), _F(5.0000001201e-1))  # fmt: skip
_ONE_32 = _F(1.0)

_LOG2E_64, _ROUND_64 = 1.4426950408889634, 6755399441055744.0  # 1.5 * 2^52
_LN2_HI_64 = 6.93147180369123816490e-01  # ln 2 to 32 bits: n * _LN2_HI_64 exact for |n| < 2^20
_LN2_LO_64 = 1.90821492927058770002e-10
_LO_64, _HI_64 = -1000.0, 1000.0  # e^x is 0 below and inf above in float64; 2^n fits two factors


@intrinsic
def _ldexp(typingctx, p, nf):  # type: ignore[no-untyped-def]
    """``p * 2^n`` for ``n`` = the integer-valued float ``nf`` (both float32 or both float64),
    as ``(p * 2^(n >> 1)) * 2^(n - (n >> 1))`` with each power built from its exponent bits;
    ``|n|`` up to 252 (float32) / 2044 (float64)."""
    if not isinstance(p, types.Float) or nf != p:
        return None

    def codegen(context, builder, signature, args):  # type: ignore[no-untyped-def]
        x, n_float = args
        wide = x.type == ir.DoubleType()
        ity = ir.IntType(64 if wide else 32)
        mantissa, bias = (52, 1023) if wide else (23, 127)
        n = builder.fptosi(n_float, ity)
        half = builder.ashr(n, ity(1))
        powers = [
            builder.bitcast(builder.shl(builder.add(k, ity(bias)), ity(mantissa)), x.type)
            for k in (half, builder.sub(n, half))
        ]
        return builder.fmul(builder.fmul(x, powers[0]), powers[1])

    return p(p, nf), codegen


@numba.njit(**_JIT)
def exp32(x):
    """:math:`e^x` of a float32 ``x``, in float32, within 1 ulp of the rounded exact value;
    0 (with subnormals before it) and inf where ``math.exp`` gives them; NaN propagates."""
    d = min(max(x, _LO_32), _HI_32)
    nf = (d * _LOG2E_32 + _ROUND_32) - _ROUND_32
    r = (d - nf * _LN2_HI_32) - nf * _LN2_LO_32
    p = _P32[0]
    p = p * r + _P32[1]
    p = p * r + _P32[2]
    p = p * r + _P32[3]
    p = p * r + _P32[4]
    p = p * r + _P32[5]
    y = _ldexp((p * (r * r) + r) + _ONE_32, nf)
    return x if x != x else y


@numba.njit(**_JIT)
def exp64(x):
    """:math:`e^x` of a float64 ``x``, within 1 ulp (P: the Taylor terms of degree 2 to 13,
    truncation 4e-18 relative); 0 / subnormal / inf where ``math.exp`` gives them; NaN propagates."""
    d = min(max(x, _LO_64), _HI_64)
    nf = (d * _LOG2E_64 + _ROUND_64) - _ROUND_64
    r = (d - nf * _LN2_HI_64) - nf * _LN2_LO_64
    p = 1.0 / 6227020800.0
    p = p * r + 1.0 / 479001600.0
    p = p * r + 1.0 / 39916800.0
    p = p * r + 1.0 / 3628800.0
    p = p * r + 1.0 / 362880.0
    p = p * r + 1.0 / 40320.0
    p = p * r + 1.0 / 5040.0
    p = p * r + 1.0 / 720.0
    p = p * r + 1.0 / 120.0
    p = p * r + 1.0 / 24.0
    p = p * r + 1.0 / 6.0
    p = p * r + 0.5
    y = _ldexp((p * (r * r) + r) + 1.0, nf)
    return x if x != x else y


def vexp(x: float) -> float:
    """:math:`e^x` in ``x``'s precision: :func:`exp32` for float32, :func:`exp64` for float64.

    In Python (outside numba) it is ``math.exp``; in compiled code the type picks the variant.
    """
    return math.exp(x)


@overload(vexp, jit_options=_JIT)
def _vexp_overload(x):  # type: ignore[no-untyped-def]
    if x == types.float32:
        return lambda x: exp32(x)
    if x == types.float64:
        return lambda x: exp64(x)
    return None


# ------------------------------------------------------------------ charge: H_t from V_{t-1}, X_t


@numba.njit(**_JIT)
def _h_if(v, x, c, vr):
    """Mode 0, IF: :math:`V + X`."""
    return v + x


@numba.njit(**_JIT)
def _h_div(v, x, c, vr):
    """Mode 1, LIF with ``decay_input``: :math:`V + (X - (V - V_{reset})) / \\tau`."""
    return v + (x - (v - vr)) / c


@numba.njit(**_JIT)
def _h_keep(v, x, c, vr):
    """Mode 2, LIF without ``decay_input``, :math:`V_{reset} = 0`: :math:`V (1 - 1/\\tau) + X`."""
    return v * c + x


@numba.njit(**_JIT)
def _h_leak_div(v, x, c, vr):
    """Mode 3, LIF without ``decay_input``: :math:`V - (V - V_{reset}) / \\tau + X`."""
    return v - (v - vr) / c + x


@numba.njit(**_JIT)
def _h_kernel(v, x, c, vr):
    """Mode 4, ``LIF_*`` kernels: :math:`V + (X - (V - V_{reset}))\\,(1/\\tau)`."""
    return v + (x - (v - vr)) * c


@numba.njit(**_JIT)
def _h_kernel_detach(v, x, c, vr):
    """Mode 5, ``LIF_*`` kernels with ``detach_input``: :math:`V + X + (V_{reset} - V)\\,(1/\\tau)`."""
    return v + x + (vr - v) * c


# ------------------------------------------------------------------ surrogates: g'(z), z = H - V_th


@numba.njit(**_JIT)
def _sg_atan(z, s0, s1, s2, one, zero):
    """ATan: :math:`(\\alpha/2) / (1 + (\\pi/2\\,\\alpha z)^2)`."""
    u = s1 * z
    return s0 / (one + u * u)


@numba.njit(**_JIT)
def _sg_sigmoid(z, s0, s1, s2, one, zero):
    """Sigmoid: :math:`\\alpha\\,\\sigma (1 - \\sigma)`, :math:`\\sigma = 1/(1 + e^{-\\alpha z})`."""
    sg = one / (one + vexp(-(s0 * z)))
    return s0 * sg * (one - sg)


@numba.njit(**_JIT)
def _sg_piecewise_quadratic(z, s0, s1, s2, one, zero):
    """PiecewiseQuadratic: :math:`\\alpha - \\alpha^2 |z|` inside :math:`|z| \\le 1/\\alpha`, else 0."""
    a = abs(z)
    return zero if a > s2 else s0 - s1 * a


@numba.njit(**_JIT)
def _sg_piecewise_exp(z, s0, s1, s2, one, zero):
    """PiecewiseExp: :math:`(\\alpha/2)\\,e^{-\\alpha |z|}`."""
    return s0 * vexp(s1 * abs(z))


@numba.njit(**_JIT)
def _sg_soft_sign(z, s0, s1, s2, one, zero):
    """SoftSign: :math:`1 / (2\\alpha (1/\\alpha + |z|)^2)`."""
    u = s1 + abs(z)
    return one / (s0 * (u * u))


@numba.njit(**_JIT)
def _sg_super_spike(z, s0, s1, s2, one, zero):
    """SuperSpike: :math:`\\alpha / (|z| + 1)^2`."""
    u = abs(z) + one
    return s0 / (u * u)


@numba.njit(**_JIT)
def _sg_erf(z, s0, s1, s2, one, zero):
    """Erf: :math:`\\alpha/\\sqrt{\\pi}\\,e^{-(\\alpha z)^2}`."""
    u = s1 * z
    return s0 * vexp(-(u * u))


@numba.njit(**_JIT)
def _sg_rect(z, s0, s1, s2, one, zero):
    """Rect: :math:`\\alpha\\,[|z| < 1/(2\\alpha)]`."""
    return s0 if abs(z) < s1 else zero


# ------------------------------------------------------------------ compile-time dispatch
# ``charge(mode, ...)`` and ``surrogate_grad(code, ...)`` take the mode / code as a compile-time
# constant (the kernels' closure variable, typed as a literal): the overloads below resolve the
# call to the one scalar function it names while typing, so only that one is compiled.

_CHARGES = (_h_if, _h_div, _h_keep, _h_leak_div, _h_kernel, _h_kernel_detach)
_SURROGATE_GRADS = (_sg_atan, _sg_sigmoid, _sg_piecewise_quadratic, _sg_piecewise_exp, _sg_soft_sign,
                    _sg_super_spike, _sg_erf, _sg_rect)  # fmt: skip


def charge(mode: int, v: float, x: float, c: float, vr: float) -> float:
    """:math:`H_t` of charge ``mode`` (a compile-time constant in compiled code); see ``_h_*``."""
    return _CHARGES[mode].py_func(v, x, c, vr)


def surrogate_grad(code: int, z: float, s0: float, s1: float, s2: float, one: float, zero: float) -> float:
    """:math:`g'(z)` of surrogate ``code`` (a compile-time constant in compiled code); see ``_sg_*``."""
    return _SURROGATE_GRADS[code].py_func(z, s0, s1, s2, one, zero)


@overload(charge, prefer_literal=True, jit_options=_JIT)
def _charge_overload(mode, v, x, c, vr):  # type: ignore[no-untyped-def]
    if not isinstance(mode, types.IntegerLiteral):
        return None
    fn = _CHARGES[mode.literal_value]
    return lambda mode, v, x, c, vr: fn(v, x, c, vr)


@overload(surrogate_grad, prefer_literal=True, jit_options=_JIT)
def _surrogate_grad_overload(code, z, s0, s1, s2, one, zero):  # type: ignore[no-untyped-def]
    if not isinstance(code, types.IntegerLiteral):
        return None
    fn = _SURROGATE_GRADS[code.literal_value]
    return lambda code, z, s0, s1, s2, one, zero: fn(z, s0, s1, s2, one, zero)


# ------------------------------------------------------------------ reset and its derivative


@numba.njit(**_JIT)
def _v_next(h, s, soft, vth, vr, one):
    """:math:`V_t` from :math:`H_t` and the spike ``s`` (0 or 1) as the reference computes it:
    hard :math:`(1 - S) H + S V_{reset}`, soft :math:`H - S V_{th}` (so also inf / NaN and the
    sign of zero come out the same)."""
    if soft:
        return h - s * vth
    return (one - s) * h + s * vr


@numba.njit(**_JIT)
def _dv_dh(h, z, sg, soft, detach, vr, vth, one, zero):
    """:math:`\\partial V_t/\\partial H_t` for the reset kind and ``detach_reset``.

    Soft: :math:`1 - V_{th} g'` (1 detached); hard: :math:`1 - S + (V_{reset} - H) g'`
    (:math:`1 - S` detached).
    """
    if soft:
        base = one
        slope = -vth
    else:
        base = zero if z >= zero else one
        slope = vr - h
    return base if detach else base + slope * sg


# ------------------------------------------------------------------ whole-array passes


@numba.njit(**_JIT)
def _add(gv, gvst):
    """``gv`` += ``gvst`` (the gradient reaching :math:`V_t` through ``v_seq``)."""
    for i in range(gv.shape[0]):
        gv[i] = gv[i] + gvst[i]


@numba.njit(**_JIT)
def _scale(dst, src, k):
    """``dst[:] = src * k``."""
    for i in range(dst.shape[0]):
        dst[i] = src[i] * k


@numba.njit(**_JIT)
def _copy(dst, src):
    """``dst[:] = src``."""
    for i in range(dst.shape[0]):
        dst[i] = src[i]


# ------------------------------------------------------------------ kernel factories
# Each factory returns a jitted closure over plain ints only (the cache key
# includes them): the charge mode and the surrogate are compile-time
# constants, so only the scalar functions of the selected charge / surrogate
# are compiled (once per dtype) and inlined into the loop. The reset kind and
# the other switches are run-time bools, loop-invariant, so they add no
# variants to compile.


@functools.cache
def forward_kernel(charge_mode: int) -> Callable:
    """``fn(x, v0, spike, v_last, h_seq, v_seq, p, soft, save_h, save_v, lo, hi, chunk)``: forward loop.

    ``T`` steps of neurons ``lo:hi`` with charge mode ``charge_mode``: ``x`` ``[T, N]``, ``v0``
    ``[N]`` -> ``spike`` ``[T, N]``, ``v_last`` ``[N]`` (may be ``v0`` itself: each neuron's
    ``V`` is read before it is written); ``h_seq`` (:math:`H_t`) and ``v_seq`` (:math:`V_t`)
    ``[T, N]`` are written when ``save_h`` / ``save_v`` (otherwise any ``[1, 1]`` array).
    ``soft``, ``save_h``, ``save_v``: Python bools.
    """

    def forward(x, v0, spike, v_last, h_seq, v_seq, p, soft, save_h, save_v, lo, hi, chunk):
        vth, vr, c, one, zero = p[P_V_TH], p[P_V_RESET], p[P_TAU], p[P_ONE], p[P_ZERO]
        for c_lo in range(lo, hi, chunk):
            c_hi = min(c_lo + chunk, hi)
            v = v_last[c_lo:c_hi]
            _copy(v, v0[c_lo:c_hi])
            for t in range(x.shape[0]):
                xt = x[t, c_lo:c_hi]
                st = spike[t, c_lo:c_hi]
                if save_h:
                    ht = h_seq[t, c_lo:c_hi]
                    for i in range(c_hi - c_lo):
                        h = charge(charge_mode, v[i], xt[i], c, vr)
                        ht[i] = h
                        st[i] = s = one if h - vth >= zero else zero
                        v[i] = _v_next(h, s, soft, vth, vr, one)
                else:
                    for i in range(c_hi - c_lo):
                        h = charge(charge_mode, v[i], xt[i], c, vr)
                        st[i] = s = one if h - vth >= zero else zero
                        v[i] = _v_next(h, s, soft, vth, vr, one)
                if save_v:
                    _copy(v_seq[t, c_lo:c_hi], v)

    return numba.njit(**_JIT)(forward)


@functools.cache
def forward_grads_kernel(charge_mode: int, code: int) -> Callable:
    """``fn(x, v0, spike, v_last, gsh, gvh, p, soft, detach, lo, hi, chunk)``: forward writing dS/dH, dV/dH.

    As :func:`forward_kernel` with surrogate ``code``; ``gsh`` = :math:`g'(H_t - V_{th})` and
    ``gvh`` = :math:`\\partial V_t/\\partial H_t` are ``[T, N]``; ``detach`` is ``detach_reset``.
    """

    def forward_grads(x, v0, spike, v_last, gsh, gvh, p, soft, detach, lo, hi, chunk):
        vth, vr, c, one, zero = p[P_V_TH], p[P_V_RESET], p[P_TAU], p[P_ONE], p[P_ZERO]
        s0, s1, s2 = p[P_S0], p[P_S1], p[P_S2]
        for c_lo in range(lo, hi, chunk):
            c_hi = min(c_lo + chunk, hi)
            v = v_last[c_lo:c_hi]
            _copy(v, v0[c_lo:c_hi])
            for t in range(x.shape[0]):
                xt = x[t, c_lo:c_hi]
                st = spike[t, c_lo:c_hi]
                sgt = gsh[t, c_lo:c_hi]
                gvt = gvh[t, c_lo:c_hi]
                for i in range(c_hi - c_lo):
                    h = charge(charge_mode, v[i], xt[i], c, vr)
                    z = h - vth
                    st[i] = s = one if z >= zero else zero
                    v[i] = _v_next(h, s, soft, vth, vr, one)
                    sgt[i] = sg = surrogate_grad(code, z, s0, s1, s2, one, zero)
                    gvt[i] = _dv_dh(h, z, sg, soft, detach, vr, vth, one, zero)

    return numba.njit(**_JIT)(forward_grads)


@functools.cache
def backward_kernel(code: int) -> Callable:
    """``fn(grad_spike, grad_v_last, grad_v_seq, h_seq, grad_x, grad_v0, p, soft, detach, has_grad_v_seq,
    lo, hi, chunk)``: BPTT from :math:`H_t` with surrogate ``code``.

    ``grad_spike`` ``[T, N]``, ``grad_v_last`` ``[N]``, ``grad_v_seq`` ``[T, N]`` (read when
    ``has_grad_v_seq``), ``h_seq`` ``[T, N]`` -> ``grad_x`` ``[T, N]``, ``grad_v0`` ``[N]``. The
    surrogate derivative and :math:`\\partial V_t/\\partial H_t` are recomputed from ``h_seq``;
    :math:`\\partial H/\\partial X` and :math:`\\partial H/\\partial V` come from ``p``.
    ``grad_x`` may be ``h_seq`` itself (it is then overwritten): each step first computes
    :math:`\\partial L/\\partial H_t` of a chunk into a chunk buffer, then writes
    :math:`\\partial L/\\partial X_t` over the chunk's :math:`H_t`.
    """

    def backward(grad_spike, grad_v_last, grad_v_seq, h_seq, grad_x, grad_v0, p, soft, detach, has_grad_v_seq,
                 lo, hi, chunk):  # fmt: skip
        vth, vr, dhdx, dhdv = p[P_V_TH], p[P_V_RESET], p[P_DH_DX], p[P_DH_DV]
        s0, s1, s2, one, zero = p[P_S0], p[P_S1], p[P_S2], p[P_ONE], p[P_ZERO]
        gb = np.empty(min(chunk, hi - lo), dtype=h_seq.dtype)
        for c_lo in range(lo, hi, chunk):
            c_hi = min(c_lo + chunk, hi)
            gh = gb[: c_hi - c_lo]
            gv = grad_v0[c_lo:c_hi]
            _copy(gv, grad_v_last[c_lo:c_hi])
            for t in range(h_seq.shape[0] - 1, -1, -1):
                ht = h_seq[t, c_lo:c_hi]
                gst = grad_spike[t, c_lo:c_hi]
                if has_grad_v_seq:
                    _add(gv, grad_v_seq[t, c_lo:c_hi])
                for i in range(c_hi - c_lo):
                    h = ht[i]
                    z = h - vth
                    sg = surrogate_grad(code, z, s0, s1, s2, one, zero)
                    g = gst[i] * sg + gv[i] * _dv_dh(h, z, sg, soft, detach, vr, vth, one, zero)
                    gh[i] = g
                    gv[i] = g * dhdv
                _scale(grad_x[t, c_lo:c_hi], gh, dhdx)

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
                gst = grad_spike[t, c_lo:c_hi]
                sgt = gsh[t, c_lo:c_hi]
                gvt = gvh[t, c_lo:c_hi]
                gxt = grad_x[t, c_lo:c_hi]
                for i in range(c_hi - c_lo):
                    gh = gst[i] * sgt[i] + gv[i] * gvt[i]
                    gxt[i] = gh * dhdx
                    gv[i] = gh * dhdv

    return numba.njit(**_JIT)(backward_grads)
