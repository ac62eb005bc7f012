r"""Parameter packing for the fused CPU loops (no numba needed to import this module).

A call passes every scalar as one element of the array ``p`` in the data's
dtype (``P_*`` indices); the switches (charge mode, soft reset, surrogate,
``detach_reset``) select which loop of :mod:`.loops` runs. Constants are
computed in Python double precision and then rounded to the dtype, which
is what torch does when a tensor meets a Python number, so the loops
repeat the reference's arithmetic exactly.

Charge modes, with ``c = p[P_TAU]``:

====  ===============================================  ==========================
mode  :math:`H_t`                                       used by
====  ===============================================  ==========================
0     :math:`V + X`                                     IF (nodes and kernels)
1     :math:`V + (X - (V - V_{reset})) / \tau`          ``LIFNode``, decay_input
2     :math:`V (1 - 1/\tau) + X`                        ``LIFNode``, no decay, ``V_reset = 0``
3     :math:`V - (V - V_{reset}) / \tau + X`            ``LIFNode``, no decay
4     :math:`V + (X - (V - V_{reset}))\,(1/\tau)`       ``LIF_*`` kernels
5     :math:`V + X + (V_{reset} - V)\,(1/\tau)`         ``LIF_*`` kernels, ``detach_input``
====  ===============================================  ==========================

Surrogate codes follow the order of
:data:`snnlab.surrogate.SURROGATES` (0 ATan, 1 Sigmoid, 2 PiecewiseQuadratic,
3 PiecewiseExp, 4 SoftSign, 5 SuperSpike, 6 Erf, 7 Rect), so codes 0 and 1
are also the kernels' ``grad_surrogate_function_index``.
"""

from __future__ import annotations

import math

import numpy as np

from ...surrogate import SURROGATES

P_V_TH, P_V_RESET, P_TAU, P_S0, P_S1, P_S2, P_DH_DX, P_DH_DV, P_ONE, P_ZERO = range(10)
N_PARAMS = 10

CHARGE_IF, CHARGE_DIV, CHARGE_KEEP, CHARGE_LEAK_DIV, CHARGE_KERNEL, CHARGE_KERNEL_DETACH = range(6)

#: Surrogate class name -> code understood by the loops.
SURROGATE_CODES: dict[str, int] = {name: code for code, name in enumerate(SURROGATES)}


def surrogate_constants(code: int, alpha: float) -> tuple[float, float, float]:
    """``(s0, s1, s2)`` of surrogate ``code`` at ``alpha`` as the loops use them (double precision)."""
    name = list(SURROGATES)[code]
    table = {
        "ATan": (alpha / 2.0, math.pi / 2.0 * alpha, 0.0),
        "Sigmoid": (alpha, 0.0, 0.0),
        "PiecewiseQuadratic": (alpha, alpha**2, 1.0 / alpha),
        "PiecewiseExp": (alpha / 2.0, -alpha, 0.0),
        "SoftSign": (2.0 * alpha, 1.0 / alpha, 0.0),
        "SuperSpike": (alpha, 0.0, 0.0),
        "Erf": (alpha / math.sqrt(math.pi), alpha, 0.0),
        "Rect": (alpha, 0.5 / alpha, 0.0),
    }
    return table[name]


def pack(
    dtype: np.dtype,
    v_threshold: float,
    v_reset: float | None,
    charge_constant: float,
    dh_dx: float,
    dh_dv: float,
    code: int,
    alpha: float,
) -> np.ndarray:
    """The ``p`` array: threshold, reset (0 for soft reset), charge constant, surrogate, partials."""
    s0, s1, s2 = surrogate_constants(code, alpha)
    values = (v_threshold, 0.0 if v_reset is None else v_reset, charge_constant, s0, s1, s2, dh_dx, dh_dv)
    return np.array((*values, 1.0, 0.0), dtype=dtype)
