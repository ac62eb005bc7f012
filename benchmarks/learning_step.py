"""Per-step cost of an STDP / mSTDP update on a Linear layer, against the memory-bandwidth bound.

    python -m benchmarks.learning_step [--quick] [--sizes N ...] [--batches B ...]
                                       [--threads K ...] [--repeats R] [--out PATH]

For each ``N x N`` float32 Linear (``N`` in 1000 and 4096; 1000 only with ``--quick``), batch
size, rule and modulation, one time step of spikes (probability 0.05) is handed to the learner's
monitors and the learner's ``step(on_grad=True)`` is timed (median wall time over repeats, after
warm-up), for every thread count in ``--threads`` (default: 1 and the count torch / numba use by
default; both libraries are set to it).

Bound, per row (``bound_s``)::

    bound_s = bytes_per_weight * N**2 / bandwidth

``bytes_per_weight``: what one step's update has to move at least per weight of the float32
``N x N`` layer. Additive modulation reads and writes ``weight.grad`` (8 B); multiplicative
modulation (``f(W) = W``) also reads ``W`` (12 B). Not counted: spikes and traces (``O(batch * N)``
bytes) and, for mSTDP with multiplicative modulation, the learner's snapshot of ``f(W)`` (the update
reads the snapshot in place of ``W``, and the step copies ``W`` into it at the positions its spikes
touch: up to 8 B more per weight), so for that rule the bound is below what its algorithm moves.

``bandwidth`` (``bandwidth_GBps``): ``2 * 4 * N**2 / t_copy`` (bytes read + written) for a
``dst.copy_(src)`` of two float32 tensors of ``N**2`` elements (the size of ``W``) with the row's
thread count, measured in this run: right before and right after the timings of every
configuration, each time the fastest of ``--repeats`` copies after 3 warm-up copies, on one pair of
buffers allocated once (so always warm). Every row of a given ``N`` uses the median of all these
measurements (``bandwidth_copies`` of them): other load on the machine can slow all copies of one
measurement down (single values of 2-20 GB/s next to 180 GB/s were seen on a busy 2-core
machine), which must not inflate that row's bound, and the median also ignores a lucky one.
``bandwidth_row_GBps``: the faster of the row's own two measurements (for reference).
``bound_source`` says whether W-sized data ran from cache: its bandwidth above 1.25x the one of a
128 MiB copy (``--dram-mib``, DRAM) measured at the start.

``ratio = time / bound``; the step time includes the learner's Python work (monitors, checks, the
kernel call), which moves no weight data. Sparse spikes let the update skip rows and columns of
``W``, so a ratio below 1 is possible. ``ratio`` uses the median step time, ``ratio_min`` the fastest
(less sensitive to other load on the machine). Each configuration is also timed with the fused
CPU kernel switched off (the learners' torch code, the implementation before the kernel), right
after the fused timing, for the ``torch path`` columns (``torch_path_ratio`` against the same bound).

Rules: ``stdp`` (:class:`~snnlab.learning.STDPLearner`) and ``mstdp``
(:class:`~snnlab.learning.MSTDPLearner`, a ``[batch]`` reward every step), each with additive
modulation (``f_pre = f_post = 1``: the update is one pass over ``W.grad``) and with the default
multiplicative modulation (``f(W) = W``, which also reads ``W``). A naive implementation of the
same formulas (per-step ``[batch, N, N]`` outer products, fresh tensors) runs in the same process
for the speed-up column.

Peer (``spikingjelly``, when its ``activation_based.learning`` imports: it needs ``tensorboard``):
its ``STDPLearner`` / ``MSTDPLearner`` on the same layer, spikes and rewards, with the same
``f_pre`` / ``f_post``, timed in the same process right after snnlab's learner, once its
``weight.grad`` after 6 steps of a 48 x 48 layer equals snnlab's (float32, ``rtol = 1e-4``,
``atol = 1e-6``; otherwise the peer is "not comparable" and not timed). Like the naive version it
builds ``[batch, N, N]`` tensors, so it is skipped above ``2**28`` bytes of them. ``peer_notes``
says why a peer was not measured. Prints a markdown table and writes JSON to
``benchmarks/results/learning_step.json`` (or ``--out``) and the table next to it (``.md``).
``path`` says whether the learners ran the fused CPU kernel (``fused-cpu``) or torch.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import inspect
import json
import math
import platform
import statistics
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from snnlab import learning as _learning
from snnlab.learning import stdp as _stdp

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "learning_step.json"
SPIKE_P = 0.05
MODULATIONS: dict[str, Callable] = {"additive": lambda w: 1.0, "multiplicative": lambda w: w}
BYTES_PER_WEIGHT = {"additive": 8, "multiplicative": 12}
DRAM_COPY_BYTES = 128 * 2**20
CACHE_FACTOR = 1.25


def _numba() -> Any:
    try:
        import numba
    except ImportError:  # pragma: no cover - numba missing
        return None
    return numba


def set_threads(k: int) -> None:
    """Use ``k`` threads in torch and in numba (the CPU plasticity kernel)."""
    torch.set_num_threads(k)
    numba = _numba()
    if numba is not None:
        numba.set_num_threads(min(k, numba.config.NUMBA_NUM_THREADS))


@contextlib.contextmanager
def torch_path() -> Any:
    """Run the learners on their torch code (the fused CPU kernel switched off) inside the block."""
    saved = getattr(_stdp, "_kernel_module", None)
    if hasattr(_stdp, "_kernel_module"):
        _stdp._kernel_module = False
    try:
        yield
    finally:
        if hasattr(_stdp, "_kernel_module"):
            _stdp._kernel_module = saved


def default_threads() -> int:
    """The thread count torch and numba use when nobody sets one."""
    numba = _numba()
    return max(torch.get_num_threads(), numba.config.NUMBA_NUM_THREADS if numba is not None else 1)


def _times(fn: Callable[[], Any], repeats: int, warmup: int) -> list[float]:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def _median_time(fn: Callable[[], Any], repeats: int, warmup: int) -> float:
    return statistics.median(_times(fn, repeats, warmup))


_COPY_BUFFERS: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}


def measure_bandwidth(numel: int, repeats: int) -> float:
    """Bytes per second of ``dst.copy_(src)`` for float32 tensors of ``numel`` elements (read + write).

    The fastest of ``repeats`` copies after 3 warm-up copies counts (what the hardware can do; a busy
    machine only slows copies down). The buffers are allocated once per size and reused, so every
    measurement of a size copies the same warm (touched, mapped) memory.
    """
    bufs = _COPY_BUFFERS.get(numel)
    if bufs is None:
        if len(_COPY_BUFFERS) > 4:
            _COPY_BUFFERS.clear()
        src = torch.rand(numel)
        bufs = _COPY_BUFFERS[numel] = (src, torch.empty_like(src))
    src, dst = bufs
    t = min(_times(lambda: dst.copy_(src), repeats, warmup=3))
    return 2 * src.nbytes / t


class _Null(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def _spike_pool(n: int, batch: int, count: int, gen: torch.Generator) -> list[tuple[torch.Tensor, ...]]:
    return [
        (
            (torch.rand(batch, n, generator=gen) < SPIKE_P).float(),
            (torch.rand(batch, n, generator=gen) < SPIKE_P).float(),
            torch.randn(batch, generator=gen),
        )
        for _ in range(count)
    ]


def time_learner(
    rule: str, f: Callable, n: int, batch: int, repeats: int, warmup: int, lib: Any = _learning
) -> list[float]:
    """Seconds of each timed ``step()``, each with one fresh time step of recorded spikes, of the
    learner of ``lib`` (snnlab.learning, or the peer's learning module)."""
    gen = torch.Generator().manual_seed(0)
    fc = nn.Linear(n, n, bias=False)
    fc.weight.grad = torch.zeros_like(fc.weight)
    learner = _make_learner(lib, rule, fc, f, batch)
    pool = _spike_pool(n, batch, 16, gen)
    state = {"k": 0}

    def one_step() -> None:
        x, y, r = pool[state["k"] % len(pool)]
        state["k"] += 1
        _learner_step(learner, rule, x, y, r)

    return _times(one_step, repeats, warmup)


def peer_learning() -> tuple[Any, str | None, str | None]:
    """``(spikingjelly's activation_based.learning module, its version, None)``, or ``(None, None,
    why not)``."""
    try:
        version = importlib.metadata.version("spikingjelly")
    except importlib.metadata.PackageNotFoundError:
        return None, None, "spikingjelly is not installed"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # import-time warnings of the peer
            from spikingjelly.activation_based import learning
    except Exception as exc:  # any failure means: not measured, and why
        return None, version, f"spikingjelly {version}: its learning module did not import ({exc})"
    return learning, version, None


def _make_learner(lib: Any, rule: str, fc: nn.Linear, f: Callable, batch: int) -> Any:
    """``rule``'s learner of ``lib`` (snnlab.learning or the peer's) on ``fc``, tau 20 / 20."""
    cls = lib.STDPLearner if rule == "stdp" else lib.MSTDPLearner
    kwargs: dict[str, Any] = {"step_mode": "s", "synapse": fc, "sn": _Null(), "tau_pre": 20.0}
    kwargs.update(tau_post=20.0, f_pre=f, f_post=f)
    if "batch_size" in inspect.signature(cls.__init__).parameters:
        kwargs["batch_size"] = batch
    return cls(**kwargs)


def _learner_step(learner: Any, rule: str, x: torch.Tensor, y: torch.Tensor, r: torch.Tensor) -> None:
    learner.in_spike_monitor.records.append(x)  # what the forward hooks record
    learner.out_spike_monitor.records.append(y)
    with torch.no_grad():
        if rule == "stdp":
            learner.step(on_grad=True)
        else:
            learner.step(r, on_grad=True)


def check_peer(peer: Any, rule: str, f: Callable, batch: int) -> tuple[bool, float]:
    """Whether the peer's learner adds the same ``weight.grad`` as snnlab's over 6 steps of a
    48 x 48 layer (the same spikes and rewards); and the largest difference."""
    from snnlab import learning as ours

    gen = torch.Generator().manual_seed(1)
    weight = torch.rand(48, 48, generator=gen)
    pool = _spike_pool(48, batch, 6, gen)
    grads = []
    for lib in (ours, peer):
        fc = nn.Linear(48, 48, bias=False)
        with torch.no_grad():
            fc.weight.copy_(weight)
        fc.weight.grad = torch.zeros_like(fc.weight)
        learner = _make_learner(lib, rule, fc, f, batch)
        for x, y, r in pool:
            _learner_step(learner, rule, x, y, r)
        grads.append(fc.weight.grad.clone())
    diff = float((grads[0] - grads[1]).abs().max())
    return bool(torch.allclose(grads[0], grads[1], rtol=1e-4, atol=1e-6)), diff


def time_naive(rule: str, f: Callable, n: int, batch: int, repeats: int, warmup: int) -> float:
    """The formulas done the obvious way: ``[batch, N, N]`` outer products, fresh tensors each step."""
    gen = torch.Generator().manual_seed(0)
    w = torch.rand(n, n, generator=gen)
    pool = _spike_pool(n, batch, 16, gen)
    st: dict[str, Any] = {"k": 0, "tp": 0.0, "tq": 0.0, "e": None, "grad": torch.zeros(n, n)}
    decay = math.exp(-1 / 20.0)

    def one_step() -> None:
        x, y, r = pool[st["k"] % len(pool)]
        st["k"] += 1
        if rule == "stdp":
            st["tp"] = st["tp"] - st["tp"] / 20.0 + x
            st["tq"] = st["tq"] - st["tq"] / 20.0 + y
            dw = f(w) * (st["tp"].unsqueeze(1) * y.unsqueeze(2)).sum(0) - f(w) * (
                st["tq"].unsqueeze(2) * x.unsqueeze(1)
            ).sum(0)
        else:
            e = st["e"] if st["e"] is not None else torch.zeros(batch, n, n)
            dw = (r.view(-1, 1, 1) * e).sum(0)
            st["tp"] = st["tp"] * decay + x
            st["tq"] = st["tq"] * decay + y
            st["e"] = f(w) * (st["tp"].unsqueeze(1) * y.unsqueeze(2)) - f(w) * (
                st["tq"].unsqueeze(2) * x.unsqueeze(1)
            )
        st["grad"] = st["grad"] - dw

    return _median_time(one_step, repeats, warmup)


def run(
    sizes: list[int],
    batches: list[int],
    repeats: int,
    naive_repeats: int,
    threads: int,
    dram_bytes: int = DRAM_COPY_BYTES,
    peer: Any = None,
    peer_notes: list[str] | None = None,
) -> list[dict[str, Any]]:
    """Rows of one thread count (set in torch and numba for the whole run).

    The W-sized copy is measured right before and right after the timings of every configuration;
    each row's bound uses the median of all W-sized copy measurements of its ``N`` in this run (see
    the module docstring), ``bandwidth_row_GBps`` the faster of its own two. ``peer``: spikingjelly's
    learning module (:func:`peer_learning`) or ``None``; why a configuration's peer time is missing
    is appended to ``peer_notes``.
    """
    notes = peer_notes if peer_notes is not None else []
    checked: dict[tuple[str, str, int], bool] = {}
    set_threads(threads)
    kernel = getattr(_stdp, "_kernel", None)
    path = "fused-cpu" if kernel is not None and kernel() is not None else "torch"
    bw_dram = measure_bandwidth(dram_bytes // 4, max(3, repeats // 8))
    rows = []
    copies: dict[int, list[float]] = {}
    for n in sizes:
        for batch in batches:
            for rule in ("stdp", "mstdp"):
                for mod_name, f in MODULATIONS.items():
                    bw_before = measure_bandwidth(n * n, repeats)
                    times = time_learner(rule, f, n, batch, repeats, warmup=5)
                    with torch_path():
                        times_torch = time_learner(rule, f, n, batch, repeats, warmup=5)
                    bw_after = measure_bandwidth(n * n, repeats)
                    copies.setdefault(n, []).extend((bw_before, bw_after))
                    t, t_min = statistics.median(times), min(times)
                    t_torch = statistics.median(times_torch)
                    naive_bytes = batch * n * n * 4
                    t_naive = (
                        time_naive(rule, f, n, batch, naive_repeats, warmup=1)
                        if naive_bytes <= 2**28
                        else None
                    )
                    t_peer = None
                    if peer is not None and naive_bytes <= 2**28:
                        key = (rule, mod_name, batch)
                        if key not in checked:
                            checked[key], diff = check_peer(peer, rule, f, batch)
                            if not checked[key]:
                                notes.append(
                                    f"spikingjelly {rule} {mod_name} batch {batch}: not comparable "
                                    f"(weight.grad differs by up to {diff:.3g})"
                                )
                        if checked[key]:
                            peer_times = time_learner(rule, f, n, batch, naive_repeats, 1, lib=peer)
                            t_peer = statistics.median(peer_times)
                    rows.append(
                        {
                            "n": n,
                            "batch": batch,
                            "rule": rule,
                            "modulation": mod_name,
                            "threads": threads,
                            "path": path,
                            "time_s": t,
                            "time_min_s": t_min,
                            "bytes_per_weight": BYTES_PER_WEIGHT[mod_name],
                            "bandwidth_row_GBps": max(bw_before, bw_after) / 1e9,
                            "bandwidth_dram_GBps": bw_dram / 1e9,
                            "torch_path_time_s": t_torch,
                            "naive_time_s": t_naive,
                            "speedup_vs_torch_path": t_torch / t,
                            "speedup_vs_naive": (t_naive / t) if t_naive is not None else None,
                            "spikingjelly_time_s": t_peer,
                            "speedup_vs_spikingjelly": (t_peer / t) if t_peer is not None else None,
                        }
                    )
    for r in rows:
        bw_w = statistics.median(copies[r["n"]])
        bound = r["bytes_per_weight"] * r["n"] ** 2 / bw_w
        cached = bw_w > CACHE_FACTOR * bw_dram
        r.update(
            {
                "bound_s": bound,
                "ratio": r["time_s"] / bound,
                "ratio_min": r["time_min_s"] / bound,
                "bandwidth_GBps": bw_w / 1e9,
                "bandwidth_copies": len(copies[r["n"]]),
                "bound_source": "W-sized copy (cache)" if cached else "W-sized copy (DRAM)",
                "torch_path_ratio": r["torch_path_time_s"] / bound,
            }
        )
    return rows


def markdown(result: dict[str, Any]) -> str:
    lines = [
        "| N | batch | rule | modulation | threads | time (ms) | min (ms) | bound (ms) | ratio "
        "| ratio (min) | torch path (ms) | torch ratio | W-copy GB/s | W-copy GB/s (row) | DRAM GB/s "
        "| bound from | naive (ms) | speed-up vs naive | spikingjelly (ms) | speed-up vs spikingjelly |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        naive = f"{r['naive_time_s'] * 1e3:.3f}" if r["naive_time_s"] is not None else "-"
        speed = f"{r['speedup_vs_naive']:.1f}x" if r["speedup_vs_naive"] is not None else "-"
        t_sj = r.get("spikingjelly_time_s")
        sj = f"{t_sj * 1e3:.3f}" if t_sj is not None else "-"
        sj_speed = f"{r['speedup_vs_spikingjelly']:.1f}x" if t_sj is not None else "-"
        lines.append(
            f"| {r['n']} | {r['batch']} | {r['rule']} | {r['modulation']} | {r['threads']} | "
            f"{r['time_s'] * 1e3:.3f} | {r['time_min_s'] * 1e3:.3f} | {r['bound_s'] * 1e3:.3f} | "
            f"{r['ratio']:.2f} | {r['ratio_min']:.2f} | {r['torch_path_time_s'] * 1e3:.3f} | "
            f"{r['torch_path_ratio']:.2f} | "
            f"{r['bandwidth_GBps']:.1f} | {r['bandwidth_row_GBps']:.1f} | {r['bandwidth_dram_GBps']:.1f} | "
            f"{r['bound_source']} | "
            f"{naive} | {speed} | {sj} | {sj_speed} |"
        )
    notes = [f"- {note}" for note in result.get("peer_notes", [])]
    return "\n".join(lines + (["", *notes] if notes else []))


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="N = 1000 only, fewer repeats")
    parser.add_argument("--sizes", type=int, nargs="+", help="layer sizes N (default 1000 4096)")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--repeats", type=int, help="timed steps per configuration")
    parser.add_argument(
        "--threads", type=int, nargs="+", help="thread counts to run (default: 1 and torch's / numba's)"
    )
    parser.add_argument(
        "--dram-mib", type=int, default=DRAM_COPY_BYTES // 2**20, help="size of the DRAM copy (MiB)"
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    for k in args.threads or ():
        if k < 1:
            parser.error(f"--threads must be >= 1, got {k}")
    default = default_threads()
    threads = args.threads or sorted({1, default})
    sizes = args.sizes or ([1000] if args.quick else [1000, 4096])
    repeats = args.repeats or (10 if args.quick else 40)
    rows: list[dict[str, Any]] = []
    peer, peer_version, why_not = peer_learning()
    peer_notes = [why_not] if why_not else []
    try:
        for k in threads:
            naive_repeats = max(3, repeats // 5)
            rows += run(
                sizes, args.batches, repeats, naive_repeats, k, args.dram_mib * 2**20, peer, peer_notes
            )
    finally:
        set_threads(default)
    result = {
        "benchmark": "learning_step",
        "spike_probability": SPIKE_P,
        "dtype": "float32",
        "torch": torch.__version__,
        "numba": getattr(_numba(), "__version__", None),
        "threads": threads,
        "default_threads": default,
        "peers": {"spikingjelly": peer_version} if peer is not None else {},
        "peer_notes": peer_notes,
        "dram_copy_MiB": args.dram_mib,
        "machine": platform.machine(),
        "processor": platform.processor(),
        "rows": rows,
    }
    table = markdown(result)
    print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    args.out.with_suffix(".md").write_text(table + "\n")
    return result


if __name__ == "__main__":
    main()
