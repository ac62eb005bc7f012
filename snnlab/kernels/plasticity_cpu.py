r"""Fused CPU kernel (numba) of one STDP / mSTDP time step on a linear synapse.

Shapes: weight and target ``[n_out, n_in]``; spikes and traces of one time step
``s_pre``, ``x_pre`` ``[B, n_in]`` and ``s_post``, ``x_post`` ``[B, n_out]``;
per-sample coefficients ``a[b] = coeff[b] * scale`` ``[B]`` (e.g. ``reward[b] * lr``). One
call does, in this order:

1. the trace step of the current spikes, into new arrays (the old traces are
   not modified)::

       x_new = x_old - x_old / tau + s          (Euler, STDP)
       x_new = x_old * exp(-1 / tau) + s        (exponential, mSTDP)

2. one pass over the rows of ``target`` (parallel: one contiguous range of rows
   per thread) that adds the update of one pairing ``(post, x_pre, x_post, pre)``::

       target[i, j] += G_post[i, j] * Σ_b a[b] post[b, i] x_pre[b, j]
                     - G_pre[i, j]  * Σ_b a[b] x_post[b, i] pre[b, j]

   with ``G = c`` (a constant: additive STDP) or ``G = c * M`` (``M`` an
   ``[n_out, n_in]`` array, e.g. the weight: multiplicative STDP). Spikes are
   sparse, and so is the work:

   * post term: ``v[b] = c_post * (a[b] * post[b, i])`` for the samples with
     ``post[b, i] != 0``; rows of neurons that did not fire get none. With column
     blocks (below), the first two such samples ride along with the blocks'
     pass, ``target[i, j] += (M_post[i, j] *) Σ_b v[b] x_pre[b, j]``; any others
     (all of them without blocks) get one vectorized pass per sample,
     ``target[i, :] += (v[b] * M_post[i, :]) * x_pre[b, :]``.
   * pre term, with ``u[b] = c_pre * (a[b] * x_post[b, i])``: only the columns
     ``j`` with ``pre[b, j] != 0`` change, in one of two ways, picked per call
     from the number of entries of ``pre`` and the work of the second way:

     - few entries (e.g. batch 1), or rows shorter than one block: per-sample
       column lists,
       ``target[i, j] -= (M_pre[i, j] *) u[b] (* pre[b, j])`` for every listed
       ``(b, j)`` with ``u[b] != 0``;
     - many entries (e.g. batch 16): blocks of ``L`` columns (one vector register,
       e.g. 16 float32 with AVX-512), samples in chunks of ``L``; per row and
       chunk, the ``u[b]`` form a table of ``L`` values (computed for a tile of
       rows at a time, read as scalars) and a block's ``d`` comes from variable
       permutes (table lookups for all ``L`` columns at once)::

           d[j] = Σ_{b: pre[b, j] != 0} u[b] (* pre[b, j])
           target[i, j] -= (M_pre[i, j] *) d[j]        where d[j] != 0

       With 0/1 spikes the entries of a chunk are one bit mask per column (bit
       ``k``: sample ``chunk0 + k``); the samples form groups of ``g = log2(L)``
       (4 with ``L = 16``), each with a table of the sums of its subsets, so a
       block costs ``ceil(L / g)`` lookups whatever its spikes::

           T_k[code] = Σ_{m: bit m of code} u[k g + m]
           d[j] = Σ_k T_k[(mask[j] >> k g) mod L]

       Other spike values are stored as layers of sample indices per column
       (one lookup, times the value, per layer). A row is read and written
       once per chunk; with other values the blocks without entries not at
       all (unless a post term rides along), with 0/1 spikes every block (at
       the batch sizes that take this way, a block without entries is rare,
       and a test per block costs more than it saves).

   Zero factors are skipped (``post[b, i] == 0``, ``u[b] == 0``, ``d[j] == 0``;
   with a constant ``G_pre``, ``target - 0`` is ``target``), so a non-finite ``G``
   at a position no spike touches does not turn into ``nan``. The post samples of
   a tile of rows are found first, as one bit mask per row (batches up to 63).

3. optionally, in the same pass (row by row, right after the row's update),
   a snapshot ``snap[i, j] = weight[i, j]`` at the positions that the
   *current* spikes will touch at the next call (whole rows of the neurons that
   fired, the columns of the inputs that fired): what mSTDP needs to apply this
   step's eligibility, which uses ``f(W)`` of this step, after the weight has
   moved.

STDP applies the current pairing (built from the new traces); mSTDP applies
the previous time step's pairing times this call's reward (its eligibility)
and snapshots the weight for the next one. All arrays share one floating
dtype (float32 or float64) and are C-contiguous.

Importing this module imports numba; :func:`available` tells whether it can.
"""

from __future__ import annotations

import math
import numbers
import threading
from types import FunctionType
from typing import NamedTuple

import numpy as np
import torch

try:  # numba is a core dependency; without it the learners keep their torch path
    from numba import config as numba_config
    from numba import njit, prange

    NUMBA_AVAILABLE = True
except ImportError:  # pragma: no cover - exercised only without numba
    NUMBA_AVAILABLE = False

__all__ = [
    "NUMBA_AVAILABLE",
    "Factors",
    "Snapshot",
    "available",
    "fused_step",
    "mstdp_linear_step",
    "pairing_update",
    "stdp_linear_step",
    "warm_up",
]

_DTYPES = (torch.float32, torch.float64)


def available() -> bool:
    """Whether the compiled kernel can run (numba importable)."""
    return NUMBA_AVAILABLE


# --------------------------------------------------------------------------- compiled part
def _vector_bytes() -> int:
    """Bytes of the widest float vector register the compiled code may use (64, 32 or 16).

    Read from the features numba compiles for (``NUMBA_CPU_FEATURES`` or the host's), which are
    part of numba's cache key, so a cached kernel always matches this width.
    """
    from numba.core import config
    from numba.core.codegen import get_host_cpu_features

    features = config.CPU_FEATURES if config.CPU_FEATURES is not None else get_host_cpu_features()
    flags = set(features.split(","))
    if "+avx512f" in flags:
        return 64
    if "+avx2" in flags:
        return 32
    return 16


if NUMBA_AVAILABLE:
    from llvmlite import ir
    from numba import types
    from numba.core import cgutils
    from numba.extending import intrinsic, overload

    #: Bytes of one column block (``VECTOR_BYTES / itemsize`` columns; also the samples per table).
    VECTOR_BYTES = _vector_bytes()
    #: Rows per tile: the bit masks of a tile's post samples are built first, in one vectorized loop
    #: per sample, in place of a scan with a data-dependent branch per sample and row.
    _ROW_TILE = 64
    #: Batches up to this size keep each row's post samples as one int64 bit mask.
    _MASK_SAMPLES = 63
    #: The pre term goes through per-sample column lists (scalar) instead of the column blocks when
    #: it has at most this many entries per block layer that the blocks would look up (measured:
    #: the two cost about the same at 2.5-2.8 with AVX-512, e.g. batch 3-4 at spike rate 0.05).
    _SCATTER_RATIO = 2.6

    def _lanes(a):  # pragma: no cover - replaced by the overload in compiled code
        """Columns per block (= samples per lookup table) for ``a``'s dtype."""
        return VECTOR_BYTES // a.itemsize

    @overload(_lanes)
    def _lanes_overload(a):  # pragma: no cover - compiled
        lanes = VECTOR_BYTES * 8 // a.dtype.bitwidth
        return lambda a: lanes

    def _splat(builder, x, lanes):  # pragma: no cover - compiled
        vt = ir.VectorType(x.type, lanes)
        i32 = ir.IntType(32)
        one = builder.insert_element(ir.Constant(vt, ir.Undefined), x, i32(0))
        return builder.shuffle_vector(
            one, ir.Constant(vt, ir.Undefined), ir.Constant(ir.VectorType(i32, lanes), [0] * lanes)
        )

    def _lookup(builder, table, index, lanes):  # pragma: no cover - compiled
        """``r[k] = table[index[k]]`` for ``index[k] < lanes``, else 0 (one variable permute)."""
        i32 = ir.IntType(32)
        vi = index.type
        lane = builder.and_(index, ir.Constant(vi, [lanes - 1] * lanes))
        r = ir.Constant(table.type, ir.Undefined)
        for k in range(lanes):  # extract/insert with indices taken from a vector: lowered to vperm*
            picked = builder.extract_element(table, builder.extract_element(lane, i32(k)))
            r = builder.insert_element(r, picked, i32(k))
        hit = builder.icmp_unsigned("<", index, ir.Constant(vi, [lanes] * lanes))
        return builder.select(hit, r, ir.Constant(table.type, None))

    def _row_values(builder, u_tab, u_off, u_stride, lanes):  # pragma: no cover - compiled
        """The ``lanes`` scalars ``u[s] = u_tab[u_off + s * u_stride]`` of one row's table (each
        feeds one broadcast, so it compiles to a broadcast load)."""
        return [
            builder.load(builder.gep(u_tab, [builder.add(u_off, builder.mul(u_off.type(s), u_stride))]))
            for s in range(lanes)
        ]

    def _group_bits(lanes: int) -> int:
        """Samples per group table: ``log2(lanes)`` (a group's bits index one lane of a register)."""
        return max(lanes.bit_length() - 1, 1)

    def _group_tables(builder, values, lanes):  # pragma: no cover - compiled
        """The group tables of the ``lanes`` scalars ``values`` (``u``, loaded one by one: each term
        below is then one masked add of a broadcast load).

        Group ``k`` holds the samples ``s = k * g + m``, ``m < g`` (``g = log2(lanes)``); its table
        has one entry per code ``0 <= code < lanes``::

            T_k[code] = Σ_{m: bit m of code set} u[k * g + m]        (T_k[0] = 0)
        """
        g = _group_bits(lanes)
        vt = ir.VectorType(values[0].type, lanes)
        tables = []
        for k in range(0, lanes, g):
            acc = ir.Constant(vt, None)
            for m, s in enumerate(range(k, min(k + g, lanes))):
                u = _splat(builder, values[s], lanes)
                bits = [(code >> m) & 1 for code in range(lanes)]
                bit = ir.Constant(ir.VectorType(ir.IntType(1), lanes), bits)
                acc = builder.select(bit, builder.fadd(acc, u), acc)
            tables.append(acc)
        return tables

    def _mask_sum(builder, tables, masks, lanes):  # pragma: no cover - compiled
        """``d[j] = Σ_k T_k[(masks[j] >> k * g) & (lanes - 1)]`` for the lanes ``j`` (a vector of
        sample bit masks, bit ``s``: sample ``s`` spiked): ``Σ_{s in masks[j]} u[s]``, one variable
        permute per group."""
        g = _group_bits(lanes)
        d = None
        for k, table in enumerate(tables):
            code = builder.lshr(masks, ir.Constant(masks.type, [k * g] * lanes)) if k else masks
            r = _permute(builder, table, code, lanes)
            d = r if d is None else builder.fadd(d, r)
        return d

    def _permute(builder, table, code, lanes):  # pragma: no cover - compiled
        """``r[k] = table[code[k] & (lanes - 1)]``: one variable permute (``vpermps``)."""
        if lanes == 16 and table.type.element == ir.FloatType():  # AVX-512: the low 4 bits index
            fnty = ir.FunctionType(table.type, [table.type, code.type])
            fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.x86.avx512.permvar.sf.512")
            return builder.call(fn, [table, code])
        i32 = ir.IntType(32)
        code = builder.and_(code, ir.Constant(code.type, [lanes - 1] * lanes))
        r = ir.Constant(table.type, ir.Undefined)
        for lane in range(lanes):  # extract/insert with indices from a vector: lowered to vperm*
            picked = builder.extract_element(table, builder.extract_element(code, i32(lane)))
            r = builder.insert_element(r, picked, i32(lane))
        return r

    @intrinsic
    def _row_pass(
        typingctx, t, row, mod_pre, mod_post, mult, u_tab, u_off, u_stride, idx, off, stride, blocks,
        blocks_off, n_main, tail_col0, tail_first, val, scaled, x_pre, n_x, b0, v0, b1, v1, n_post,
    ):  # fmt: skip  # pragma: no cover - compiled
        """One pass over the blocks of ``L = lanes`` columns of one row of ``t``, in place.

        Blocks: ``q < n_main`` at columns ``col = q * L``, and, if ``tail_col0 >= 0``, one more at
        ``col = tail_col0`` whose lanes ``k < tail_first`` keep their value (a last block shifted
        left to end at the end of the row; its layers are ``blocks[blocks_off + n_main]``). The
        row's table ``u[s]``, ``s < L``, is read as scalars from a tile of precomputed values
        (:func:`_update_rows`: ``c_pre * (a[b] * x_post[b, i])``, zero past the last sample)::

            u[s] = u_tab[u_off + s * u_stride]

        At the columns ``j = col + k`` of a block with ``layers = blocks[blocks_off + q]``, with
        ``scaled`` (``o_l = off + l * stride + j``; ``idx[o_l] = L`` means no term)::

            d[k] = Σ_{l < layers} u[idx[o_l]] * val[o_l]                    (idx[o_l] < L)

        else (0/1 spikes; ``idx[off + j]`` the bit mask of the samples that spiked,
        :func:`_mask_sum`)::

            d[k] = Σ_{s: bit s of idx[off + j]} u[s]

        and then::

            p[k] = v0 * x_pre[b0 * n_x + j] (+ v1 * x_pre[b1 * n_x + j])    (n_post = 1 or 2 terms)
            t[row + j] += (mod_post[row + j] *) p[k]                        if n_post > 0
            t[row + j] -= (mod_pre[row + j] *) d[k]                         where d[k] != 0

        (``mod_*`` only with ``mult``; a product that feeds a sum is fused with it, ``fma``: one
        rounding). Each lookup is one variable permute of a table in one vector register. With
        ``scaled``, blocks without layers are skipped when ``n_post = 0``; the whole row is skipped
        when ``u = 0`` and ``n_post = 0``. ``t``, ``mod_*``, ``u_tab``,
        ``val``, ``x_pre``: 1-D C-contiguous arrays of one float dtype; ``idx`` int32; ``blocks``
        int64. ``mult``, ``scaled`` and ``n_post`` (0, 1 or 2) pick one of twelve loops, each with no
        test of them inside.
        """
        names = "t row mod_pre mod_post mult u_tab u_off u_stride idx off stride blocks blocks_off n_main"
        names = [*names.split(), *"tail_col0 tail_first val scaled x_pre n_x b0 v0 b1 v1 n_post".split()]
        sig = types.void(
            t, row, mod_pre, mod_post, mult, u_tab, u_off, u_stride, idx, off, stride, blocks, blocks_off,
            n_main, tail_col0, tail_first, val, scaled, x_pre, n_x, b0, v0, b1, v1, n_post,
        )  # fmt: skip
        ty = dict(zip(names, sig.args))
        floats = [t, mod_pre, mod_post, u_tab, val, x_pre]
        arrays = (*floats, idx, blocks)
        if not all(isinstance(a, types.Array) and a.ndim == 1 and a.layout == "C" for a in arrays):
            return None
        if not isinstance(t.dtype, types.Float) or any(a.dtype != t.dtype for a in floats):
            return None
        if idx.dtype != types.int32 or blocks.dtype != types.int64:
            return None
        if not (isinstance(mult, types.Boolean) and isinstance(scaled, types.Boolean)):
            return None
        if not all(isinstance(v, types.Float) for v in (v0, v1)):
            return None

        def codegen(context, builder, signature, args):
            value = dict(zip(names, args))
            fty = t.dtype
            ft = context.get_value_type(fty)
            lanes = VECTOR_BYTES * 8 // fty.bitwidth
            vf = ir.VectorType(ft, lanes)
            vi = ir.VectorType(ir.IntType(32), lanes)
            zero = ir.Constant(vf, None)
            align = fty.bitwidth // 8
            ptr, num, flag = {}, {}, {}
            for name in names:
                if isinstance(ty[name], types.Array):
                    ptr[name] = context.make_array(ty[name])(context, builder, value[name]).data
                elif isinstance(ty[name], types.Boolean):
                    flag[name] = context.cast(builder, value[name], ty[name], types.boolean)
                elif isinstance(ty[name], types.Float):
                    num[name] = context.cast(builder, value[name], ty[name], fty)
                else:
                    num[name] = context.cast(builder, value[name], ty[name], types.intp)
            intp = num["row"].type

            def vec(base, offset, vt=vf, al=align):
                return builder.load(builder.bitcast(builder.gep(base, [offset]), vt.as_pointer()), align=al)

            values = _row_values(builder, ptr["u_tab"], num["u_off"], num["u_stride"], lanes)

            def value_vector():  # u as one vector (for the layered lookups)
                table_v = ir.Constant(vf, ir.Undefined)
                for s, value in enumerate(values):
                    table_v = builder.insert_element(table_v, value, ir.IntType(32)(s))
                return table_v
            first = builder.trunc(num["tail_first"], ir.IntType(32))
            keep = builder.icmp_unsigned(
                "<", ir.Constant(vi, list(range(lanes))), _splat(builder, first, lanes)
            )
            d_acc = cgutils.alloca_once(builder, vf)
            groups = _group_tables(builder, values, lanes)
            x0 = builder.mul(num["b0"], num["n_x"])
            x1 = builder.mul(num["b1"], num["n_x"])
            post_v = [_splat(builder, num["v0"], lanes), _splat(builder, num["v1"], lanes)]

            fma_name = f"llvm.fma.v{lanes}f{fty.bitwidth}"
            fma_fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(vf, [vf] * 3), fma_name)

            def fma(a, b, c):  # a * b + c, rounded once
                return builder.call(fma_fn, [a, b, c])

            def block(col, n_layers, mult, scaled, n_post, tail, table_v):
                # a block without entries is skipped only where that saves a row's read and write
                go = cgutils.true_bit
                if scaled and n_post == 0:
                    go = builder.icmp_signed(">", n_layers, n_layers.type(0))
                with builder.if_then(go):
                    base = builder.add(num["off"], col)
                    if scaled:
                        builder.store(zero, d_acc)
                        with cgutils.for_range(builder, n_layers) as layer:
                            o = builder.add(base, builder.mul(layer.index, num["stride"]))
                            term = _lookup(builder, table_v, vec(ptr["idx"], o, vi, 4), lanes)
                            term = builder.fmul(term, vec(ptr["val"], o))
                            builder.store(builder.fadd(builder.load(d_acc), term), d_acc)
                        d = builder.load(d_acc)
                    else:
                        d = _mask_sum(builder, groups, vec(ptr["idx"], base, vi, 4), lanes)
                    pos = builder.add(num["row"], col)
                    t_ptr = builder.bitcast(builder.gep(ptr["t"], [pos]), vf.as_pointer())
                    old = builder.load(t_ptr, align=align)
                    cur = old
                    if n_post:
                        x_0 = vec(ptr["x_pre"], builder.add(x0, col))
                        if n_post == 2:
                            x_1 = vec(ptr["x_pre"], builder.add(x1, col))
                            p = fma(post_v[1], x_1, builder.fmul(post_v[0], x_0))
                            cur = fma(vec(ptr["mod_post"], pos), p, cur) if mult else builder.fadd(cur, p)
                        elif mult:
                            cur = fma(vec(ptr["mod_post"], pos), builder.fmul(post_v[0], x_0), cur)
                        else:
                            cur = fma(post_v[0], x_0, cur)
                    if mult:  # a zero d leaves the value alone even where M is not finite
                        hit = builder.fcmp_unordered("!=", d, zero)
                        new = builder.select(hit, fma(builder.fneg(vec(ptr["mod_pre"], pos)), d, cur), cur)
                    else:  # cur - 0 == cur
                        new = builder.fsub(cur, d)
                    if tail:
                        new = builder.select(keep, old, new)
                    builder.store(new, t_ptr, align=align)

            def row_loop(mult, scaled, n_post):
                table_v = value_vector() if scaled else None  # built in the loops that read it
                with cgutils.for_range(builder, num["n_main"]) as blk:
                    n_layers = builder.load(
                        builder.gep(ptr["blocks"], [builder.add(num["blocks_off"], blk.index)])
                    )
                    block(builder.mul(blk.index, intp(lanes)), n_layers, mult, scaled, n_post, False, table_v)
                with builder.if_then(builder.icmp_signed(">=", num["tail_col0"], intp(0))):
                    at = builder.add(num["blocks_off"], num["n_main"])
                    n_layers = builder.load(builder.gep(ptr["blocks"], [at]))
                    block(num["tail_col0"], n_layers, mult, scaled, n_post, True, table_v)

            # u != 0 somewhere: T_k[1 << m] = u[k g + m], so some group table has a nonzero entry
            any_u = cgutils.false_bit
            for table in groups:
                bits = builder.bitcast(builder.fcmp_unordered("!=", table, zero), ir.IntType(lanes))
                any_u = builder.or_(any_u, builder.icmp_unsigned("!=", bits, ir.IntType(lanes)(0)))
            has_post = builder.icmp_signed(">", num["n_post"], intp(0))
            skip = builder.append_basic_block("row_pass.skip")
            work = builder.append_basic_block("row_pass.work")
            builder.cbranch(builder.or_(any_u, has_post), work, skip)
            builder.position_at_end(work)
            i8 = ir.IntType(8)
            kind = builder.add(
                builder.add(
                    builder.mul(builder.zext(flag["mult"], i8), i8(6)),
                    builder.mul(builder.zext(flag["scaled"], i8), i8(3)),
                ),
                builder.trunc(num["n_post"], i8),
            )
            done = builder.append_basic_block("row_pass.done")
            switch = builder.switch(kind, done)
            for code in range(12):
                block_bb = builder.append_basic_block(f"row_pass.kind{code}")
                switch.add_case(i8(code), block_bb)
                builder.position_at_end(block_bb)
                row_loop(code >= 6, code % 6 >= 3, code % 3)
                builder.branch(done)
            builder.position_at_end(done)
            builder.branch(skip)
            builder.position_at_end(skip)
            return context.get_dummy_value()

        return sig, codegen

    @njit(cache=True, fastmath=False)
    def _trace_step(old, spike, out, param, euler, j0, j1):  # pragma: no cover - compiled
        """``out = old - old / param + spike`` (Euler) or ``out = old * param + spike`` in the
        columns ``j0:j1`` (all ``[B, n]``)."""
        for b in range(spike.shape[0]):
            o, s, r = old[b, j0:j1], spike[b, j0:j1], out[b, j0:j1]  # views: the loops vectorize
            if euler:
                for j in range(j1 - j0):
                    r[j] = o[j] - o[j] / param + s[j]
            else:
                for j in range(j1 - j0):
                    r[j] = o[j] * param + s[j]

    @intrinsic
    def _trailing_zeros(typingctx, x):  # pragma: no cover - compiled
        """Trailing zero bits of the integer ``x`` (its bit width for 0)."""
        if not isinstance(x, types.Integer):
            return None

        def codegen(context, builder, signature, args):
            return builder.cttz(args[0], ir.Constant(ir.IntType(1), 0))

        return x(x), codegen

    @intrinsic
    def _bit_count(typingctx, x):  # pragma: no cover - compiled
        """Set bits of the integer ``x``."""
        if not isinstance(x, types.Integer):
            return None

        def codegen(context, builder, signature, args):
            return builder.ctpop(args[0])

        return x(x), codegen

    @njit(cache=True)
    def _aligned_zeros(n):  # pragma: no cover - compiled
        """``n`` int32 zeros starting at a multiple of 64 bytes (one cache line per block of masks)."""
        buf = np.zeros(n + 16, np.int32)
        skip = (-(buf.ctypes.data >> 2)) & 15
        return buf[skip : skip + n]

    @njit(cache=True, fastmath=False)
    def _pre_entries(pre, lanes):  # pragma: no cover - compiled
        """The nonzero entries of ``pre`` ``[B, n_in]``, arranged for the pre term of the row passes.

        Samples go in chunks of ``lanes`` (chunk ``c``: ``b = c * lanes + k``, ``k < lanes``).
        ``blocks[c, q]``: the most entries of chunk ``c`` in one column of block ``q``: columns
        ``q * lanes + k`` for the ``n_in // lanes`` full blocks, then, if ``n_in % lanes``, the last
        ``min(lanes, n_in)`` columns. ``binary``: every nonzero value is 1 (else the values are
        kept next to the indices). With few entries for the blocks they touch, or with rows shorter
        than one block (``scatter``), the entries are lists per sample:
        ``cols[col_ptr[b]:col_ptr[b + 1]]`` (and ``col_val``).
        Otherwise, with ``stride = max(n_in, lanes)``, a bit mask per column and chunk (bit ``k``:
        ``pre[b, j] != 0``): ``binary``: ``idx[c * stride + j]`` is that mask (no ``val``); else
        layers of sample indices per chunk: for column ``j`` and layer ``l``,
        ``idx[(layer_ptr[c] + l) * stride + j]`` is the ``k`` of the ``l``-th sample (in sample
        order) of chunk ``c`` with ``pre[b, j] != 0`` (``lanes`` where there is none), and ``val``
        (same layout) the value: the mask's set bits, lowest first.
        """
        B, n_in = pre.shape
        n_chunks = (B + lanes - 1) // lanes
        stride = max(n_in, lanes)
        n_full = n_in // lanes
        n_blocks = n_full + (1 if n_in % lanes else 0)
        masks = _aligned_zeros(n_chunks * stride).reshape(n_chunks, stride)
        col_ptr = np.zeros(B + 1, np.int64)
        odd = 0
        for b in range(B):
            c = b // lanes
            bit = np.int32(1 << (b - c * lanes))
            spikes, mask = pre[b], masks[c]  # views: the loop vectorizes
            n_b = np.int32(0)
            odd_b = np.int32(0)
            for j in range(n_in):
                v = spikes[j]
                mask[j] |= bit if v != 0 else np.int32(0)
                odd_b += np.int32((v != 0) & (v != 1))
                n_b += np.int32(v != 0)
            odd += odd_b
            col_ptr[b + 1] = col_ptr[b] + n_b
        binary = odd == 0
        layer_ptr = np.zeros(n_chunks + 1, np.int64)
        blocks = np.zeros((n_chunks, n_blocks), np.int64)
        for c in range(n_chunks):
            top = 0
            for q in range(n_blocks):
                j0 = q * lanes if q < n_full else max(n_in - lanes, 0)
                m = 0
                for j in range(j0, min(j0 + lanes, n_in)):
                    m = max(m, _bit_count(masks[c, j]))
                blocks[c, q] = m
                top = max(top, m)
            layer_ptr[c + 1] = layer_ptr[c] + top
        no_idx, no_val = np.zeros(0, np.int32), np.zeros(0, pre.dtype)
        if n_in < lanes or col_ptr[B] <= _SCATTER_RATIO * blocks.sum():  # per-sample lists
            cols = np.empty(col_ptr[B], np.uint32)
            col_val = np.empty(0 if binary else col_ptr[B], pre.dtype)
            p = 0
            for b in range(B):
                for j in range(n_in):
                    v = pre[b, j]
                    if v != 0:
                        cols[p] = j
                        if not binary:
                            col_val[p] = v
                        p += 1
            return layer_ptr, blocks, no_idx, no_val, binary, True, col_ptr, cols, col_val
        if binary:  # the masks themselves: looked up by groups of samples
            no_cols = np.zeros(0, np.uint32)
            return layer_ptr, blocks, masks.reshape(-1), no_val, binary, False, col_ptr, no_cols, no_val
        total = layer_ptr[n_chunks] * stride
        idx = np.full(total, lanes, np.int32)
        val = np.zeros(0 if binary else total, pre.dtype)
        sentinel = np.int32(lanes)
        for c in range(n_chunks):
            rest = masks[c]
            for layer in range(layer_ptr[c], layer_ptr[c + 1]):
                o = layer * stride
                if binary:  # branch-free: the loop vectorizes
                    for j in range(n_in):
                        m = rest[j]
                        idx[o + j] = _trailing_zeros(m) if m != 0 else sentinel
                        rest[j] = m & (m - 1)
                else:
                    for j in range(n_in):
                        m = rest[j]
                        if m != 0:
                            k = _trailing_zeros(m)
                            idx[o + j] = k
                            val[o + j] = pre[c * lanes + k, j]
                            rest[j] = m & (m - 1)
        return layer_ptr, blocks, idx, val, binary, False, col_ptr, np.zeros(0, np.uint32), no_val

    @njit(cache=True, fastmath=False)
    def _active(post, pre, wanted):  # pragma: no cover - compiled
        """Output neurons with any ``post[b, i] != 0`` and inputs with any ``pre[b, j] != 0`` (masks),
        and the indices of those inputs (placeholders that nothing reads unless ``wanted``)."""
        if not wanted:
            return np.zeros(1, np.bool_), np.zeros(1, np.bool_), np.zeros(0, np.uint32)
        B, n_out = post.shape
        n_in = pre.shape[1]
        rows = np.zeros(n_out, np.bool_)
        for b in range(B):
            for i in range(n_out):
                rows[i] |= post[b, i] != 0
        cols = np.zeros(n_in, np.bool_)
        for b in range(B):
            for j in range(n_in):
                cols[j] |= pre[b, j] != 0
        return rows, cols, np.nonzero(cols)[0].astype(np.uint32)

    @njit(cache=True, fastmath=False)
    def _update_rows(
        lo,
        hi,
        target,
        coeff,
        post,
        x_pre,
        x_post,
        c_post,
        c_pre,
        mod_post,
        mult_post,
        mod_pre,
        mult_pre,
        lanes,
        layer_ptr,
        blocks,
        idx,
        val,
        binary,
        scatter,
        col_ptr,
        cols,
        col_val,
        snap,
        weight,
        do_snap,
        snap_rows,
        snap_mask,
        snap_cols,
        dense_snap,
        old_post,
        spk_post,
        new_post,
        p_post,
        euler,
    ):  # pragma: no cover - compiled
        """Rows ``lo:hi`` of the post trace step, the update and the snapshot; see the module docstring.

        The trace step ``new_post[:, i]`` of a tile of rows comes first: with STDP, ``new_post`` is
        the ``x_post`` that the tile's tables read.

        The arrays from :func:`_pre_entries` give the pre term. With per-sample column lists,
        row ``i`` gets one pass per sample with ``post[b, i] != 0`` and the listed entries. With
        column blocks, each row gets one :func:`_row_pass` per chunk with entries (it reads the
        row's lookup table ``c_pre * (a[b] * x_post[b, i])``, computed for a tile of rows at a time,
        and stops there if it is zero); the first two post samples go into the pass of the first
        chunk (when ``M_post`` and ``M_pre`` are both arrays or both constants), any others get
        passes of their own. With ``n_in % lanes != 0`` the last block is shifted left to end at
        ``n_in`` (its first lanes, which belong to the block before it, keep their values). The
        snapshot of a row follows its update.
        """
        n_in = target.shape[1]
        B = post.shape[0]
        n_chunks = layer_ptr.shape[0] - 1
        n_blocks = blocks.shape[1]
        n_full = n_in // lanes
        stride = max(n_in, lanes)
        dtype = target.dtype
        flat_t, flat_xp = target.reshape(-1), x_pre.reshape(-1)
        flat_mp, flat_mq = mod_post.reshape(-1), mod_pre.reshape(-1)
        flat_blocks = blocks.reshape(-1)
        blocked = not scatter
        tail_col0 = n_in - lanes if n_blocks > n_full else -1  # the shifted last block (n_full >= 1)
        tail_first = n_full * lanes - tail_col0
        post_b = np.zeros(max(B, 2), np.int64)
        post_v = np.zeros(max(B, 2), dtype)
        fusable = blocked and n_chunks > 0 and mult_post == mult_pre
        n_snap_cols = snap_cols.shape[0]
        scaled = not binary
        # Per tile of rows: first the bit masks of the rows' post samples (a loop over the samples
        # that vectorizes), then the rows' updates.
        masked = c_post != 0 and 0 < B <= _MASK_SAMPLES
        post_mask = np.zeros(_ROW_TILE, np.int64)
        # The tables of a tile's rows, for the column blocks (one vectorized loop per sample; samples
        # past B stay 0): u_tab[b * _ROW_TILE + r] = c_pre * (a[b] * x_post[b, t0 + r]).
        u_tab = np.zeros(n_chunks * lanes * _ROW_TILE if blocked else 0, dtype)
        for t0 in range(lo, hi, _ROW_TILE):
            nt = min(_ROW_TILE, hi - t0)
            _trace_step(old_post, spk_post, new_post, p_post, euler, t0, t0 + nt)
            if masked:
                for r in range(nt):
                    post_mask[r] = 0
                for b in range(B):
                    bit, spikes = np.int64(1) << b, post[b, t0 : t0 + nt]  # a view: contiguous loads
                    for r in range(nt):
                        post_mask[r] |= bit if spikes[r] != 0 else np.int64(0)
            if blocked:
                for b in range(B):
                    ab, xs, us = coeff[b], x_post[b, t0 : t0 + nt], u_tab[b * _ROW_TILE : (b + 1) * _ROW_TILE]
                    for r in range(nt):
                        us[r] = c_pre * (ab * xs[r])
            for r in range(nt):
                i = t0 + r
                n_post = 0
                if masked:
                    m = post_mask[r]
                    n_post = _bit_count(m)
                    b0 = min(_trailing_zeros(m), B - 1)
                    rest = m & (m - 1)
                    b1 = min(_trailing_zeros(rest), B - 1)
                    post_b[0], post_b[1] = b0, b1
                    post_v[0] = c_post * (coeff[b0] * post[b0, i])
                    post_v[1] = c_post * (coeff[b1] * post[b1, i])
                    if n_post > 2:
                        for s in range(2, n_post):
                            rest = rest & (rest - 1)
                            b = _trailing_zeros(rest)
                            post_b[s] = b
                            post_v[s] = c_post * (coeff[b] * post[b, i])
                elif c_post != 0:
                    for b in range(B):
                        v = post[b, i]
                        if v != 0:
                            post_b[n_post] = b
                            post_v[n_post] = c_post * (coeff[b] * v)
                            n_post += 1
                # the first two post samples ride along with the pass of the first chunk, the others
                # (and all of them where the passes cannot take them) get passes of their own
                n_fused = min(n_post, 2) if fusable else 0
                if n_post > n_fused:
                    for s in range(n_fused, n_post):
                        b, cb = post_b[s], post_v[s]
                        if mult_post:
                            for j in range(n_in):
                                target[i, j] += (cb * mod_post[i, j]) * x_pre[b, j]
                        else:
                            for j in range(n_in):
                                target[i, j] += cb * x_pre[b, j]
                if scatter:
                    for b in range(B):
                        ub = c_pre * (coeff[b] * x_post[b, i])
                        if ub == 0:
                            continue
                        p0, p1 = col_ptr[b], col_ptr[b + 1]
                        if mult_pre and binary:
                            for p in range(p0, p1):
                                j = cols[p]
                                target[i, j] -= mod_pre[i, j] * ub
                        elif mult_pre:
                            for p in range(p0, p1):
                                j = cols[p]
                                target[i, j] -= mod_pre[i, j] * (ub * col_val[p])
                        elif binary:
                            for p in range(p0, p1):
                                target[i, cols[p]] -= ub
                        else:
                            for p in range(p0, p1):
                                target[i, cols[p]] -= ub * col_val[p]
                else:
                    for c in range(n_chunks):
                        n_post_c = n_fused if c == 0 else 0
                        if layer_ptr[c + 1] == layer_ptr[c] and n_post_c == 0:
                            continue
                        off = (layer_ptr[c] if scaled else c) * stride
                        u_off = c * lanes * _ROW_TILE + r
                        _row_pass(
                            flat_t, i * n_in, flat_mq, flat_mp, mult_pre, u_tab, u_off, _ROW_TILE, idx, off,
                            stride, flat_blocks, c * n_blocks, n_full, tail_col0, tail_first, val, scaled,
                            flat_xp, n_in, post_b[0], post_v[0], post_b[1], post_v[1], n_post_c,
                        )  # fmt: skip
                if do_snap:  # right after the row's update, which just read the row of f(W)
                    if snap_rows[i]:
                        for j in range(n_in):
                            snap[i, j] = weight[i, j]
                    elif dense_snap:
                        for j in range(n_in):  # both loads first: the loop vectorizes (a blend)
                            w, old = weight[i, j], snap[i, j]
                            snap[i, j] = w if snap_mask[j] else old
                    else:
                        for k in range(n_snap_cols):
                            j = snap_cols[k]
                            snap[i, j] = weight[i, j]

    @njit(parallel=True, cache=True, fastmath=False)
    def _fused_step(
        target,
        coeff,
        scale,
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
        parts,
    ):  # pragma: no cover - compiled
        """The trace step, the update with ``a[b] = coeff[b] * scale`` and the snapshot (module docstring).

        The numbers (``scale``, ``c_*``, ``p_*``) may come as Python floats: they are rounded to the
        arrays' dtype here, as ``dtype.type(x)`` would round them."""
        scale = target.dtype.type(scale)
        c_post, c_pre = target.dtype.type(c_post), target.dtype.type(c_pre)
        p_pre, p_post = target.dtype.type(p_pre), target.dtype.type(p_post)
        # the pre trace here; the post trace per tile of rows, in the parallel pass
        _trace_step(old_pre, spk_pre, new_pre, p_pre, euler, 0, spk_pre.shape[1])
        n_out, n_in = target.shape
        lanes = _lanes(target)
        a = np.empty_like(coeff)
        for b in range(coeff.shape[0]):
            a[b] = coeff[b] * scale
        layer_ptr, blocks, idx, val, binary, scatter, col_ptr, cols, col_val = _pre_entries(pre, lanes)
        # (array expressions here would each become a parallel loop, started at every call)
        snap_rows, snap_mask, snap_cols = _active(spk_post, spk_pre, do_snap)
        dense_snap = 8 * snap_cols.shape[0] >= n_in
        parts = max(min(parts, n_out), 1)
        for part in prange(parts):  # balanced contiguous row ranges, one per thread
            _update_rows(
                part * n_out // parts, (part + 1) * n_out // parts, target, a, post, x_pre, x_post,
                c_post, c_pre, mod_post, mult_post, mod_pre, mult_pre, lanes, layer_ptr, blocks, idx, val,
                binary, scatter, col_ptr, cols, col_val, snap, weight, do_snap, snap_rows, snap_mask,
                snap_cols, dense_snap, old_post, spk_post, new_post, p_post, euler,
            )  # fmt: skip

    def _renamed(fn, name):
        """A copy of the function ``fn`` called ``name``: numba's disk cache is per (file, name, line),
        not per compile options, so a copy under the same name would share (and swap) cached code."""
        copy = FunctionType(fn.__code__, fn.__globals__, name, fn.__defaults__, fn.__closure__)
        copy.__qualname__ = name
        return copy

    # Small synapses: the same loop without a thread pool. Starting parallel workers costs more than
    # the whole update below a few ten thousand weights, and much more on a busy machine.
    _fused_step_serial = njit(cache=True, fastmath=False)(_renamed(_fused_step.py_func, "_fused_step_serial"))

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


class Snapshot(NamedTuple):
    """Arrays of :func:`fused_step`'s snapshot: ``snap[i, j] = weight[i, j]`` at the positions the
    step's spikes touch (both ``[n_out, n_in]``)."""

    snap: np.ndarray
    weight: np.ndarray


Modulation = float | torch.Tensor
Coeff = float | torch.Tensor
Arrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]

_SCALAR = {torch.float32: np.float32, torch.float64: np.float64}
_DUMMY: dict[type, np.ndarray] = {}


def _dummy(scalar: type) -> np.ndarray:
    """An unused ``[1, 1]`` array of the float type ``scalar`` (a placeholder argument)."""
    d = _DUMMY.get(scalar)
    if d is None:
        d = _DUMMY[scalar] = np.zeros((1, 1), dtype=scalar)
    return d


def fused_step(
    target: np.ndarray,
    coeff: np.ndarray,
    scale: float,
    factors: Arrays | None,
    g_post: float | np.ndarray,
    g_pre: float | np.ndarray,
    s_pre: np.ndarray,
    s_post: np.ndarray,
    x_pre: np.ndarray,
    x_post: np.ndarray,
    p_pre: float,
    p_post: float,
    euler: bool,
    snapshot: Snapshot | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """One kernel call on checked numpy arrays (one float dtype, C-contiguous); returns the new traces.

    ``target`` ``[n_out, n_in]``; spikes and old traces ``s_pre``, ``x_pre`` ``[B, n_in]`` and
    ``s_post``, ``x_post`` ``[B, n_out]``. ``factors``: the pairing ``(post, x_pre, x_post, pre)``
    to apply, ``[B', features]``, with ``a[b] = coeff[b] * scale`` (``coeff`` ``[B']``); ``None``:
    the pairing of this step's spikes with the *new* traces (STDP, ``B' = B``). ``g_*``: a number
    (``G = c``) or an ``[n_out, n_in]`` array (``G = M``). ``p_pre`` / ``p_post``: ``tau``
    (``euler``) or ``exp(-1 / tau)``. The new traces ``[B, n_in]`` / ``[B, n_out]`` are new arrays.
    """
    dummy = _dummy(target.dtype.type)
    new_pre, new_post = np.empty_like(s_pre), np.empty_like(s_post)
    if factors is None:
        factors = (s_post, new_pre, new_post, s_pre)
    mult_post, mult_pre = isinstance(g_post, np.ndarray), isinstance(g_pre, np.ndarray)
    c_post, mod_post = (1.0, g_post) if mult_post else (g_post, dummy)
    c_pre, mod_pre = (1.0, g_pre) if mult_pre else (g_pre, dummy)
    snap, weight = (dummy, dummy) if snapshot is None else snapshot
    if target.size >= PARALLEL_MIN_WEIGHTS:
        # One row range per thread of numba's pool (ranges beyond the threads in use run one after
        # the other; numba.get_num_threads() would cost a microsecond per call).
        kernel, parts = _fused_step, numba_config.NUMBA_NUM_THREADS
    else:
        kernel, parts = _fused_step_serial, 1
    kernel(
        target, coeff, scale, *factors, mod_post, mod_pre, c_post, c_pre, mult_post, mult_pre, s_pre, s_post,
        x_pre, x_post, new_pre, new_post, p_pre, p_post, euler, snap, weight, snapshot is not None, parts,
    )  # fmt: skip
    return new_pre, new_post


def _warm(dtypes: tuple[torch.dtype, ...], parallel: bool) -> None:
    sizes = (2, math.isqrt(PARALLEL_MIN_WEIGHTS - 1) + 1) if parallel else (2,)  # serial, parallel
    for dtype in dtypes:
        scalar = _SCALAR[dtype]
        for n in sizes:
            spikes, traces = np.zeros((1, n), scalar), np.zeros((1, n), scalar)
            fused_step(np.zeros((n, n), scalar), np.ones(1, scalar), 1.0, None, 1.0, 1.0, spikes, spikes,
                       traces, traces, 2.0, 2.0, True)  # fmt: skip


def warm_up(
    dtypes: tuple[torch.dtype, ...] = (torch.float32,), parallel: bool = False, background: bool = False
) -> threading.Thread | None:
    """Compile (or load from numba's disk cache) the kernel that :func:`fused_step` runs, ahead of a
    learner's first step: the serial kernel (layers below :data:`PARALLEL_MIN_WEIGHTS` weights) and,
    with ``parallel``, the parallel one, for each of ``dtypes`` (float32 / float64). One compiled
    kernel serves every rule, modulation and batch size of a dtype.

    On a cold cache this takes seconds (once per installation); from the cache, about half a second.
    ``background``: on a daemon thread, returned (``join()`` waits); a step that comes first waits
    for it and compiles nothing twice. Raises ``ImportError`` without numba, ``ValueError`` for a
    dtype other than float32 / float64, ``TypeError`` for a single dtype (not a tuple) or a flag
    that is not a bool.
    """
    if not NUMBA_AVAILABLE:
        raise ImportError("the fused plasticity kernel needs numba: pip install numba")
    if isinstance(dtypes, torch.dtype):
        raise TypeError(f"dtypes must be a tuple of dtypes, got the single dtype {dtypes}: write ({dtypes},)")
    for name, value in (("parallel", parallel), ("background", background)):
        if not isinstance(value, bool):
            raise TypeError(f"{name} must be a bool, got {type(value).__name__} {value!r}")
    wanted = tuple(dtypes)
    if not wanted or any(d not in _SCALAR for d in wanted):
        raise ValueError(f"dtypes must be a non-empty choice of torch.float32 / torch.float64, got {wanted}")
    if not background:
        _warm(wanted, parallel)
        return None
    thread = threading.Thread(target=_warm, args=(wanted, parallel), name="snnlab-stdp-warm-up", daemon=True)
    thread.start()
    return thread


def _array_mod(g: Modulation) -> float | np.ndarray:
    return g.numpy() if isinstance(g, torch.Tensor) else float(g)


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
    """:func:`fused_step` on checked tensors (one dtype, C-contiguous, CPU, ``[B, features]``).

    ``factors``: the pairing to apply, or ``None`` to apply the pairing of this
    step's spikes with the *new* traces (STDP). Use :func:`empty_factors` (a
    pairing with no samples) to skip the update. ``p_pre`` / ``p_post``: ``tau`` (``euler``) or
    ``exp(-1 / tau)``. ``snapshot``: ``(snap, weight)``. Returns the new traces.
    """
    new_pre, new_post = fused_step(
        target.numpy(),
        coeff,
        1.0,
        None if factors is None else tuple(f.numpy() for f in factors),  # type: ignore[arg-type]
        _array_mod(g_post),
        _array_mod(g_pre),
        s_pre.numpy(),
        s_post.numpy(),
        x_pre.numpy(),
        x_post.numpy(),
        p_pre,
        p_post,
        euler,
        None if snapshot is None else Snapshot(snapshot[0].numpy(), snapshot[1].numpy()),
    )
    return torch.from_numpy(new_pre), torch.from_numpy(new_post)


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
    batch = factors.post.shape[0]
    a = _check_coeff(coeff, batch, dtype) if batch else np.zeros(0, dtype=_SCALAR[dtype])
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
