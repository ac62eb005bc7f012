"""Per-step cost of an STDP / mSTDP update on a Linear layer, against the memory-bandwidth bound.

    python -m benchmarks.learning_step [--quick] [--sizes N ...] [--batches B ...] [--threads K] [--out PATH]

For each ``N x N`` Linear (``N`` in 1000 and 4096; 1000 only with ``--quick``), batch size and
rule, one time step of spikes (probability 0.05) is handed to the learner's monitors and the
learner's ``step()`` is timed (median over repeats, after warm-up). The update reads and writes
``weight.grad``, so its bound is ``2 * W.nbytes / bandwidth``, with the bandwidth measured in the
same run as ``bytes moved / time`` of a torch copy of a W-sized tensor. ``ratio = time / bound``.

Rules: ``stdp`` (:class:`~snnlab.learning.STDPLearner`) and ``mstdp``
(:class:`~snnlab.learning.MSTDPLearner`, a ``[batch]`` reward every step), each with additive
modulation (``f_pre = f_post = 1``: the update is one pass over ``W.grad``) and with the default
multiplicative modulation (``f(W) = W``, which also reads ``W``). A naive implementation of the
same formulas (per-step ``[batch, N, N]`` outer products, fresh tensors) runs in the same process
for the speed-up column. Prints a markdown table and writes JSON to
``benchmarks/results/learning_step.json`` (or ``--out``).
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from snnlab.learning import MSTDPLearner, STDPLearner

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "learning_step.json"
SPIKE_P = 0.05
MODULATIONS: dict[str, Callable] = {"additive": lambda w: 1.0, "multiplicative": lambda w: w}


def _median_time(fn: Callable[[], Any], repeats: int, warmup: int) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def measure_bandwidth(n: int, repeats: int) -> float:
    """Bytes per second of ``dst.copy_(src)`` for ``n x n`` float32 tensors (read + write)."""
    src = torch.rand(n, n)
    dst = torch.empty_like(src)
    t = _median_time(lambda: dst.copy_(src), repeats, warmup=3)
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


def time_learner(rule: str, f: Callable, n: int, batch: int, repeats: int, warmup: int) -> float:
    """Median seconds of one ``step()`` with one fresh time step of recorded spikes."""
    gen = torch.Generator().manual_seed(0)
    fc = nn.Linear(n, n, bias=False)
    fc.weight.grad = torch.zeros_like(fc.weight)
    if rule == "stdp":
        learner = STDPLearner("s", fc, _Null(), 20.0, 20.0, f, f)
    else:
        learner = MSTDPLearner("s", batch, fc, _Null(), 20.0, 20.0, f, f)
    pool = _spike_pool(n, batch, 16, gen)
    state = {"k": 0}

    def one_step() -> None:
        x, y, r = pool[state["k"] % len(pool)]
        state["k"] += 1
        learner.in_spike_monitor.records.append(x)  # what the forward hooks record
        learner.out_spike_monitor.records.append(y)
        with torch.no_grad():
            if rule == "stdp":
                learner.step(on_grad=True)
            else:
                learner.step(r, on_grad=True)

    return _median_time(one_step, repeats, warmup)


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


def run(sizes: list[int], batches: list[int], repeats: int, naive_repeats: int) -> dict[str, Any]:
    rows = []
    for n in sizes:
        bandwidth = measure_bandwidth(n, repeats)
        bound = 2 * n * n * 4 / bandwidth
        for batch in batches:
            for rule in ("stdp", "mstdp"):
                for mod_name, f in MODULATIONS.items():
                    t = time_learner(rule, f, n, batch, repeats, warmup=5)
                    naive_bytes = batch * n * n * 4
                    t_naive = (
                        time_naive(rule, f, n, batch, naive_repeats, warmup=1)
                        if naive_bytes <= 2**28
                        else None
                    )
                    rows.append(
                        {
                            "n": n,
                            "batch": batch,
                            "rule": rule,
                            "modulation": mod_name,
                            "time_s": t,
                            "bound_s": bound,
                            "ratio": t / bound,
                            "bandwidth_GBps": bandwidth / 1e9,
                            "naive_time_s": t_naive,
                            "speedup_vs_naive": (t_naive / t) if t_naive is not None else None,
                        }
                    )
    return {
        "benchmark": "learning_step",
        "spike_probability": SPIKE_P,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "machine": platform.machine(),
        "processor": platform.processor(),
        "rows": rows,
    }


def markdown(result: dict[str, Any]) -> str:
    lines = [
        "| N | batch | rule | modulation | time (ms) | bound (ms) | ratio | naive (ms) | speed-up |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        naive = f"{r['naive_time_s'] * 1e3:.3f}" if r["naive_time_s"] is not None else "-"
        speed = f"{r['speedup_vs_naive']:.1f}x" if r["speedup_vs_naive"] is not None else "-"
        lines.append(
            f"| {r['n']} | {r['batch']} | {r['rule']} | {r['modulation']} | {r['time_s'] * 1e3:.3f} | "
            f"{r['bound_s'] * 1e3:.3f} | {r['ratio']:.2f} | {naive} | {speed} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="N = 1000 only, fewer repeats")
    parser.add_argument("--sizes", type=int, nargs="+", help="layer sizes N (default 1000 4096)")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--repeats", type=int, help="timed steps per configuration")
    parser.add_argument("--threads", type=int, help="torch.set_num_threads (default: torch's choice)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    sizes = args.sizes or ([1000] if args.quick else [1000, 4096])
    repeats = args.repeats or (10 if args.quick else 40)
    result = run(sizes, args.batches, repeats, naive_repeats=max(3, repeats // 5))
    print(markdown(result))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
