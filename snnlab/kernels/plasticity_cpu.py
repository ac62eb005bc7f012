r"""Fused CPU kernel (numba) of one STDP / mSTDP time step on a linear synapse.

Shapes: weight and target ``[n_out, n_in]``; spikes and traces of one time step
``s_pre``, ``x_pre`` ``[B, n_in]`` and ``s_post``, ``x_post`` ``[B, n_out]``;
per-sample coefficients ``a`` ``[B]``. One call does, in this order:

1. the trace step of the current spikes, into new arrays (the old traces are
   not modified)::

       x_new = x_old - x_old / tau + s          (Euler, STDP)
       x_new = x_old * exp(-1 / tau) + s        (exponential, mSTDP)

2. one pass over the rows of ``target`` (parallel over rows) that adds the
   update of one pairing ``(post, x_pre, x_post, pre)``::

       target[i, j] += G_post[i, j] * Σ_b a[b] post[b, i] x_pre[b, j]
                     - G_pre[i, j]  * Σ_b a[b] x_post[b, i] pre[b, j]

   with ``G = c`` (a constant: additive STDP) or ``G = c * M`` (``M`` an
   ``[n_out, n_in]`` array, e.g. the weight: multiplicative STDP). Spikes
   are sparse, so the pass is sparse too: row ``i`` gets the first sum only
   for the samples with ``post[b, i] != 0`` (the lists are built once per
   call) and the second only at the columns ``j`` with ``pre[b, j] != 0``;
   a row with neither is not touched. Zero factors are skipped, so a
   non-finite ``G`` at an untouched position does not turn into ``nan``.

3. optionally, in the same pass, a snapshot ``snap[i, j] = weight[i, j]`` at
   the positions that the *current* spikes will touch at the next call
   (whole rows of the neurons that fired, the columns of the inputs that
   fired): what mSTDP needs to apply this step's eligibility, which uses
   ``f(W)`` of this step, after the weight has moved.

STDP applies the current pairing (built from the new traces); mSTDP applies
the previous time step's pairing times this call's reward (its eligibility)
and snapshots the weight for the next one. All arrays share one floating
dtype (float32 or float64) and are C-contiguous.

Importing this module imports numba; :func:`available` tells whether it can.
"""

from __future__ import annotations

import math
import numbers
from typing import NamedTuple

import numpy as np
import torch

try:  # numba is a core dependency; without it the learners keep their torch path
    from numba import njit, prange

    NUMBA_AVAILABLE = True
except ImportError:  # pragma: no cover - exercised only without numba
    NUMBA_AVAILABLE = False

__all__ = [
    "NUMBA_AVAILABLE",
    "Factors",
    "available",
    "mstdp_linear_step",
    "pairing_update",
    "stdp_linear_step",
]

_DTYPES = (torch.float32, torch.float64)


def available() -> bool:
    """Whether the compiled kernel can run (numba importable)."""
    return NUMBA_AVAILABLE


# --------------------------------------------------------------------------- compiled part
if NUMBA_AVAILABLE:

    @njit(cache=True, fastmath=False)
    def _trace_step(old, spike, out, param, euler):  # pragma: no cover - compiled
        """``out = old - old / param + spike`` (Euler) or ``out = old * param + spike``."""
        B, n = spike.shape
        for b in range(B):
            o, s, r = old[b], spike[b], out[b]
            if euler:
                for j in range(n):
                    r[j] = o[j] - o[j] / param + s[j]
            else:
                for j in range(n):
                    r[j] = o[j] * param + s[j]

    @njit(cache=True, fastmath=False)
    def _rows_of_post(post, coeff):  # pragma: no cover - compiled
        """CSR over output neurons: for neuron ``i`` the samples ``b`` with ``post[b, i] != 0``
        and the value ``coeff[b] * post[b, i]``."""
        B, n = post.shape
        ptr = np.zeros(n + 1, np.int64)
        for b in range(B):
            for i in range(n):
                if post[b, i] != 0:
                    ptr[i + 1] += 1
        for i in range(n):
            ptr[i + 1] += ptr[i]
        sample = np.empty(ptr[n], np.int64)
        value = np.empty(ptr[n], post.dtype)
        fill = ptr[:n].copy()
        for b in range(B):
            for i in range(n):
                v = post[b, i]
                if v != 0:
                    k = fill[i]
                    sample[k] = b
                    value[k] = coeff[b] * v
                    fill[i] = k + 1
        return ptr, sample, value

    @njit(cache=True, fastmath=False)
    def _cols_of_pre(pre):  # pragma: no cover - compiled
        """CSR over samples: for sample ``b`` the inputs ``j`` with ``pre[b, j] != 0`` and ``pre[b, j]``;
        also whether every such value is exactly 1 (binary spikes: the kernel skips the product)."""
        B, n = pre.shape
        ptr = np.zeros(B + 1, np.int64)
        for b in range(B):
            c = 0
            for j in range(n):
                if pre[b, j] != 0:
                    c += 1
            ptr[b + 1] = ptr[b] + c
        col = np.empty(ptr[B], np.uint32)
        value = np.empty(ptr[B], pre.dtype)
        binary = True
        k = 0
        for b in range(B):
            for j in range(n):
                v = pre[b, j]
                if v != 0:
                    col[k] = j
                    value[k] = v
                    binary = binary and v == 1
                    k += 1
        return ptr, col, value, binary

    @njit(cache=True, fastmath=False)
    def _active(post, pre):  # pragma: no cover - compiled
        """Output neurons with any ``post[b, i] != 0`` (a mask) and inputs with any ``pre[b, j] != 0``."""
        B, n_out = post.shape
        n_in = pre.shape[1]
        rows = np.zeros(n_out, np.bool_)
        for b in range(B):
            for i in range(n_out):
                if post[b, i] != 0:
                    rows[i] = True
        seen = np.zeros(n_in, np.bool_)
        for b in range(B):
            for j in range(n_in):
                if pre[b, j] != 0:
                    seen[j] = True
        return rows, np.nonzero(seen)[0].astype(np.uint32)

    @njit(parallel=True, cache=True, fastmath=False)
    def _fused_step(
        target,
        coeff,
        post,
        x_pre,
        x_post,
        pre,
        mod_post,
        mod_pre,
        c_post,
        c_pre,
        mult_post,
        mult_pre,
        apply,
        spk_pre,
        spk_post,
        old_pre,
        old_post,
        new_pre,
        new_post,
        p_pre,
        p_post,
        euler,
        snap,
        weight,
        do_snap,
    ):  # pragma: no cover - compiled
        _trace_step(old_pre, spk_pre, new_pre, p_pre, euler)
        _trace_step(old_post, spk_post, new_post, p_post, euler)
        n_out, n_in = target.shape
        B = post.shape[0]
        if apply:
            row_ptr, row_b, row_v = _rows_of_post(post, coeff)
            pre_ptr, pre_col, pre_v, binary = _cols_of_pre(pre)
            u = np.empty((n_out, B), target.dtype)  # u[i, b] = c_pre * coeff[b] * x_post[b, i]
            for b in range(B):
                for i in range(n_out):
                    u[i, b] = c_pre * (coeff[b] * x_post[b, i])
        else:
            row_ptr = np.zeros(n_out + 1, np.int64)
            row_b = np.zeros(0, np.int64)
            row_v = np.zeros(0, target.dtype)
            pre_ptr = np.zeros(B + 1, np.int64)
            pre_col = np.zeros(0, np.uint32)
            pre_v = np.zeros(0, target.dtype)
            binary = True
            u = np.zeros((n_out, B), target.dtype)
        if do_snap:
            snap_rows, snap_cols = _active(spk_post, spk_pre)
        else:
            snap_rows = np.zeros(n_out, np.bool_)
            snap_cols = np.zeros(0, np.uint32)
        run_post = apply and c_post != 0
        n_snap_cols = snap_cols.shape[0]
        for i in prange(n_out):  # 2-D indexing throughout: row views would cost a refcount per row
            if run_post:
                for p in range(row_ptr[i], row_ptr[i + 1]):
                    c = c_post * row_v[p]
                    b = row_b[p]
                    if mult_post:
                        for j in range(n_in):
                            target[i, j] += (c * mod_post[i, j]) * x_pre[b, j]
                    else:
                        for j in range(n_in):
                            target[i, j] += c * x_pre[b, j]
            for b in range(B):
                ub = u[i, b]
                if ub == 0:
                    continue
                lo, hi = pre_ptr[b], pre_ptr[b + 1]
                if mult_pre:
                    if binary:
                        for p in range(lo, hi):
                            j = pre_col[p]
                            target[i, j] -= mod_pre[i, j] * ub
                    else:
                        for p in range(lo, hi):
                            j = pre_col[p]
                            target[i, j] -= mod_pre[i, j] * (ub * pre_v[p])
                elif binary:
                    for p in range(lo, hi):
                        target[i, pre_col[p]] -= ub
                else:
                    for p in range(lo, hi):
                        target[i, pre_col[p]] -= ub * pre_v[p]
            if do_snap:
                if snap_rows[i]:
                    for j in range(n_in):
                        snap[i, j] = weight[i, j]
                else:
                    for k in range(n_snap_cols):
                        j = snap_cols[k]
                        snap[i, j] = weight[i, j]


    # Small synapses: the same loop without a thread pool. Starting parallel workers costs more than
    # the whole update below a few ten thousand weights, and much more on a busy machine.
    _fused_step_serial = njit(cache=True, fastmath=False)(_fused_step.py_func)

#: Weights per update below which the serial kernel runs.
PARALLEL_MIN_WEIGHTS = 1 << 16


# --------------------------------------------------------------------------- python side
class Factors(NamedTuple):
    """One time step's pairing of a linear synapse, each ``[B, features]`` (C-contiguous).

    ``post`` / ``x_post`` ``[B, n_out]`` (post spikes and trace), ``x_pre`` /
    ``pre`` ``[B, n_in]`` (pre trace and spikes).
    """

    post: torch.Tensor
    x_pre: torch.Tensor
    x_post: torch.Tensor
    pre: torch.Tensor



Modulation = float | torch.Tensor
Coeff = float | torch.Tensor

_DUMMY: dict[torch.dtype, np.ndarray] = {}
_SCALAR = {torch.float32: np.float32, torch.float64: np.float64}


def _dummy(dtype: torch.dtype) -> np.ndarray:
    d = _DUMMY.get(dtype)
    if d is None:
        d = _DUMMY[dtype] = np.zeros((1, 1), dtype=_SCALAR[dtype])
    return d


def _split_mod(g: Modulation, dtype: torch.dtype) -> tuple[float, bool, np.ndarray]:
    """A modulation as ``(c, is_array, array)``: ``G = c`` or ``G = c * array``."""
    if isinstance(g, torch.Tensor):
        return 1.0, True, g.numpy()
    return float(g), False, _dummy(dtype)


def run(
    target: torch.Tensor,
    coeff: np.ndarray,
    factors: Factors | None,
    g_post: Modulation,
    g_pre: Modulation,
    s_pre: torch.Tensor,
    s_post: torch.Tensor,
    x_pre: torch.Tensor,
    x_post: torch.Tensor,
    p_pre: float,
    p_post: float,
    euler: bool,
    snapshot: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The kernel on checked arguments (one dtype, C-contiguous, CPU, ``[B, features]`` spikes/traces).

    ``factors``: the pairing to apply, or ``None`` to apply the pairing of this
    step's spikes with the *new* traces (STDP). Use :data:`NO_UPDATE` (an empty
    pairing) to skip the update. ``p_pre`` / ``p_post``: ``tau`` (``euler``) or
    ``exp(-1 / tau)``. ``snapshot``: ``(snap, weight)``. Returns the new traces.
    """
    dtype = target.dtype
    scalar = _SCALAR[dtype]
    new_pre, new_post = torch.empty_like(s_pre), torch.empty_like(s_post)
    new_pre_np, new_post_np = new_pre.numpy(), new_post.numpy()
    s_pre_np, s_post_np = s_pre.numpy(), s_post.numpy()
    if factors is None:
        f_post, f_xpre, f_xpost, f_pre = s_post_np, new_pre_np, new_post_np, s_pre_np
    else:
        f_post, f_xpre, f_xpost, f_pre = (f.numpy() for f in factors)
    apply = f_post.shape[0] > 0
    c_post, mult_post, mod_post = _split_mod(g_post, dtype)
    c_pre, mult_pre, mod_pre = _split_mod(g_pre, dtype)
    if snapshot is None:
        snap = weight = _dummy(dtype)
    else:
        snap, weight = snapshot[0].numpy(), snapshot[1].numpy()
    kernel = _fused_step if target.numel() >= PARALLEL_MIN_WEIGHTS else _fused_step_serial
    kernel(
        target.numpy(),
        coeff,
        f_post,
        f_xpre,
        f_xpost,
        f_pre,
        mod_post,
        mod_pre,
        scalar(c_post),
        scalar(c_pre),
        mult_post,
        mult_pre,
        apply,
        s_pre_np,
        s_post_np,
        x_pre.numpy(),
        x_post.numpy(),
        new_pre_np,
        new_post_np,
        scalar(p_pre),
        scalar(p_post),
        euler,
        snap,
        weight,
        snapshot is not None,
    )
    return new_pre, new_post


def empty_factors(n_out: int, n_in: int, dtype: torch.dtype) -> Factors:
    """A pairing with no samples (``B = 0``): applying it changes nothing."""
    post, pre = torch.zeros(0, n_out, dtype=dtype), torch.zeros(0, n_in, dtype=dtype)
    return Factors(post, pre, post, pre)


# --------------------------------------------------------------------------- checked public functions
def _check_target(target: object) -> torch.Tensor:
    if not isinstance(target, torch.Tensor):
        raise TypeError(f"target must be a torch.Tensor, got {type(target).__name__}")
    if target.device.type != "cpu" or target.dtype not in _DTYPES:
        raise TypeError(
            f"target must be a CPU tensor of dtype float32 or float64, got {target.dtype} on {target.device}"
        )
    if target.requires_grad:
        raise ValueError("target must not require grad (pass weight.grad or a plain tensor)")
    if target.dim() != 2 or not target.is_contiguous():
        raise ValueError(
            f"target must be a contiguous 2-D tensor [n_out, n_in], got shape {tuple(target.shape)} "
            f"(contiguous={target.is_contiguous()})"
        )
    return target


def _check_tau(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a finite real number > 0, got {type(value).__name__} {value!r}")
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite real number > 0, got {value!r}")
    return float(value)


def _as_rows(name: str, x: object, n: int, dtype: torch.dtype) -> torch.Tensor:
    """``[B, n]`` (or ``[n]``, seen as ``[1, n]``) as a contiguous CPU tensor of ``dtype``."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() not in (1, 2) or x.shape[-1] != n:
        raise ValueError(f"{name} must have shape [batch_size, {n}] or [{n}], got {tuple(x.shape)}")
    return x.detach().reshape(-1, n).to(device="cpu", dtype=dtype).contiguous()


def _check_batch(name: str, x: torch.Tensor, batch: int) -> None:
    if x.shape[0] != batch:
        raise ValueError(f"{name} has batch size {x.shape[0]}, expected {batch} (the spikes' batch size)")


def _old_trace(name: str, trace: object, spike: torch.Tensor) -> torch.Tensor:
    """``None`` (zeros), a number or a tensor broadcastable to the spikes' shape ``[B, n]``."""
    if trace is None:
        return torch.zeros_like(spike)
    if isinstance(trace, numbers.Real) and not isinstance(trace, bool):
        return torch.full_like(spike, float(trace))
    if not isinstance(trace, torch.Tensor):
        raise TypeError(f"{name} must be None, a number or a torch.Tensor, got {type(trace).__name__}")
    t = trace.detach().to(device="cpu", dtype=spike.dtype)
    if t.dim() == 1 or (t.dim() == 2 and t.shape[0] in (1, spike.shape[0])):
        if t.shape[-1] == spike.shape[1]:
            return t.reshape(-1, spike.shape[1]).expand_as(spike).contiguous()
    raise ValueError(
        f"{name} has shape {tuple(trace.shape)}, which does not fit the spikes of shape {tuple(spike.shape)}"
    )


def _check_coeff(coeff: object, batch: int, dtype: torch.dtype) -> np.ndarray:
    if isinstance(coeff, numbers.Real) and not isinstance(coeff, bool):
        return np.full(batch, float(coeff), dtype=_SCALAR[dtype])
    if isinstance(coeff, torch.Tensor) and coeff.numel() == batch and coeff.dim() <= 1:
        return coeff.detach().reshape(batch).to(device="cpu", dtype=dtype).contiguous().numpy()
    raise ValueError(f"coeff must be a real number or a tensor of shape [{batch}], got {coeff!r}")


def _check_mod(name: str, g: object, target: torch.Tensor) -> Modulation:
    if isinstance(g, numbers.Real) and not isinstance(g, bool):
        return float(g)
    if not isinstance(g, torch.Tensor):
        raise TypeError(f"{name} must be a real number or a tensor, got {type(g).__name__}")
    if g.shape != target.shape:
        raise ValueError(f"{name} must have the target's shape {tuple(target.shape)}, got {tuple(g.shape)}")
    return g.detach().to(device="cpu", dtype=target.dtype).contiguous()


def _shape_back(new: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return new.view(like.shape) if like.dim() == 1 else new


def stdp_linear_step(
    target: torch.Tensor,
    in_spike: torch.Tensor,
    out_spike: torch.Tensor,
    trace_pre: torch.Tensor | float | None,
    trace_post: torch.Tensor | float | None,
    tau_pre: float,
    tau_post: float,
    coeff: Coeff = 1.0,
    g_post: Modulation = 1.0,
    g_pre: Modulation = 1.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One STDP time step of a linear synapse, added into ``target`` ``[n_out, n_in]`` in place.

        x_pre  <- x_pre  - x_pre  / tau_pre  + s_pre         s_pre  = in_spike  [B, n_in]
        x_post <- x_post - x_post / tau_post + s_post        s_post = out_spike [B, n_out]
        target += G_post ⊙ Σ_b a[b] s_post[b]ᵀ x_pre[b] - G_pre ⊙ Σ_b a[b] x_post[b]ᵀ s_pre[b]

    ``a = coeff`` (a number or ``[B]``), ``G`` a number or an ``[n_out, n_in]``
    tensor (e.g. the weight). 1-D spikes are one sample. Traces ``None`` are
    zeros. Returns the new traces (the old ones are not modified).
    """
    target = _check_target(target)
    n_out, n_in = target.shape
    dtype = target.dtype
    s_pre = _as_rows("in_spike", in_spike, n_in, dtype)
    s_post = _as_rows("out_spike", out_spike, n_out, dtype)
    _check_batch("out_spike", s_post, s_pre.shape[0])
    x_pre, x_post = _old_trace("trace_pre", trace_pre, s_pre), _old_trace("trace_post", trace_post, s_post)
    tau_pre, tau_post = _check_tau("tau_pre", tau_pre), _check_tau("tau_post", tau_post)
    a = _check_coeff(coeff, s_pre.shape[0], dtype)
    gp, gq = _check_mod("g_post", g_post, target), _check_mod("g_pre", g_pre, target)
    new_pre, new_post = run(target, a, None, gp, gq, s_pre, s_post, x_pre, x_post, tau_pre, tau_post, True)
    return _shape_back(new_pre, in_spike), _shape_back(new_post, out_spike)


def mstdp_linear_step(
    target: torch.Tensor,
    in_spike: torch.Tensor,
    out_spike: torch.Tensor,
    trace_pre: torch.Tensor | float | None,
    trace_post: torch.Tensor | float | None,
    tau_pre: float,
    tau_post: float,
    previous: Factors | None = None,
    coeff: Coeff = 1.0,
    g_post: Modulation = 1.0,
    g_pre: Modulation = 1.0,
    snapshot: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One mSTDP time step of a linear synapse: apply the previous eligibility, advance the traces.

        target += G_post ⊙ Σ_b a[b] post[b]ᵀ x_pre[b] - G_pre ⊙ Σ_b a[b] x_post[b]ᵀ pre[b]
        x_pre  <- x_pre  * exp(-1 / tau_pre)  + s_pre        s_pre  = in_spike  [B, n_in]
        x_post <- x_post * exp(-1 / tau_post) + s_post       s_post = out_spike [B, n_out]

    where ``(post, x_pre, x_post, pre) = previous`` is the previous step's
    pairing (:class:`Factors`, ``None``: no update) and ``a = coeff`` (e.g.
    ``reward * lr``, a number or ``[B]``). ``snapshot=(snap, weight)`` copies
    ``weight`` into ``snap`` at the positions this step's spikes make the next
    update read (rows of ``s_post != 0``, columns of ``s_pre != 0``), in the
    same pass. Returns the new traces.
    """
    target = _check_target(target)
    n_out, n_in = target.shape
    dtype = target.dtype
    s_pre = _as_rows("in_spike", in_spike, n_in, dtype)
    s_post = _as_rows("out_spike", out_spike, n_out, dtype)
    _check_batch("out_spike", s_post, s_pre.shape[0])
    x_pre, x_post = _old_trace("trace_pre", trace_pre, s_pre), _old_trace("trace_post", trace_post, s_post)
    tau_pre, tau_post = _check_tau("tau_pre", tau_pre), _check_tau("tau_post", tau_post)
    if previous is None:
        factors = empty_factors(n_out, n_in, dtype)
    else:
        if not isinstance(previous, tuple) or len(previous) != 4:
            raise TypeError(
                "previous must be a Factors (post, x_pre, x_post, pre) or None, "
                f"got {type(previous).__name__}"
            )
        post = _as_rows("previous.post", previous[0], n_out, dtype)
        factors = Factors(
            post,
            _as_rows("previous.x_pre", previous[1], n_in, dtype),
            _as_rows("previous.x_post", previous[2], n_out, dtype),
            _as_rows("previous.pre", previous[3], n_in, dtype),
        )
        for name, f in zip(("x_pre", "x_post", "pre"), factors[1:]):
            _check_batch(f"previous.{name}", f, post.shape[0])
    a = _check_coeff(coeff, factors.post.shape[0], dtype) if factors.post.shape[0] else _dummy(dtype)[0]
    gp, gq = _check_mod("g_post", g_post, target), _check_mod("g_pre", g_pre, target)
    snap = None
    if snapshot is not None:
        if not isinstance(snapshot, tuple) or len(snapshot) != 2:
            raise TypeError(f"snapshot must be a pair (snap, weight) of tensors or None, got {snapshot!r}")
        snap_t = snapshot[0]
        if (
            not isinstance(snap_t, torch.Tensor)
            or snap_t.shape != target.shape
            or snap_t.dtype != dtype
            or snap_t.device.type != "cpu"
            or not snap_t.is_contiguous()
        ):
            raise ValueError(
                f"snapshot[0] must be a contiguous CPU {dtype} tensor of shape {tuple(target.shape)}, "
                f"got {snap_t!r:.80}"
            )
        snap = (snap_t, _check_mod("snapshot[1]", snapshot[1], target))
    decay_pre, decay_post = math.exp(-1.0 / tau_pre), math.exp(-1.0 / tau_post)
    new_pre, new_post = run(
        target, a, factors, gp, gq, s_pre, s_post, x_pre, x_post, decay_pre, decay_post, False, snap
    )
    return _shape_back(new_pre, in_spike), _shape_back(new_post, out_spike)


def pairing_update(
    target: torch.Tensor,
    factors: Factors,
    coeff: Coeff = 1.0,
    g_post: Modulation = 1.0,
    g_pre: Modulation = 1.0,
) -> torch.Tensor:
    """``target += G_post ⊙ Σ_b a[b] post[b]ᵀ x_pre[b] - G_pre ⊙ Σ_b a[b] x_post[b]ᵀ pre[b]`` in place.

    ``factors = (post [B, n_out], x_pre [B, n_in], x_post [B, n_out], pre [B, n_in])``;
    returns ``target``. (:func:`mstdp_linear_step` without spikes.)
    """
    target = _check_target(target)
    n_out, n_in = target.shape
    empty_in, empty_out = torch.zeros(0, n_in, dtype=target.dtype), torch.zeros(0, n_out, dtype=target.dtype)
    mstdp_linear_step(target, empty_in, empty_out, None, None, 1.0, 1.0, factors, coeff, g_post, g_pre)
    return target
