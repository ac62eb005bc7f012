"""Run snnlab's benchmarks: ``python -m benchmarks [--quick] [--workloads w1 w2 w4] ...``.

Workloads (one process, the same tensors for every implementation, medians after warm-up):

* ``w1`` multi-step LIF, forward and forward+backward (:func:`benchmarks.neurons.run_multi_step`);
* ``w2`` single-step LIF latency (:func:`benchmarks.neurons.run_single_step`);
* ``w4`` STDP / mSTDP per-step update (:func:`benchmarks.learning_step.run`, CPU).

Each workload prints a markdown table and writes ``<out-dir>/<name>.md`` and
``<out-dir>/<name>.json`` (names ``neurons_multi_step``, ``neurons_single_step``,
``learning_step``), each with the machine / environment header;
``<out-dir>/summary.md`` collects the header and every table. The full run
writes to ``benchmarks/results/``, ``--quick`` (tiny sizes, seconds) to
``benchmarks/results/quick/``.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from . import neurons
from .common import (
    RESULTS_DIR,
    check_device,
    environment,
    environment_markdown,
    load_average,
    measure_bandwidth,
    write_results,
)
from .peers import PEER_NAMES, find_peers

WORKLOADS: tuple[str, ...] = ("w1", "w2", "w4")
RESULT_NAMES: tuple[str, ...] = ("neurons_multi_step", "neurons_single_step", "learning_step")

QUICK_W1_SIZES = [10**4]
QUICK_W1_STEPS = [8, 32]
QUICK_W2_SIZES = [10**3, 10**4]
QUICK_W4_SIZES = [256]
QUICK_W4_BATCHES = [1, 16]


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface of ``python -m benchmarks``."""
    p = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="snnlab benchmarks: multi-step LIF (w1), single-step latency (w2), STDP step (w4).",
    )
    p.add_argument("--quick", action="store_true", help="tiny sizes and few repeats (seconds)")
    p.add_argument("--workloads", nargs="+", choices=WORKLOADS, default=list(WORKLOADS))
    p.add_argument("--device", default="auto", help="'cpu', 'cuda' or 'auto' (cuda when available)")
    p.add_argument("--out-dir", type=Path, default=None, help="where the .md / .json files go")
    p.add_argument(
        "--peers", nargs="*", choices=PEER_NAMES, default=list(PEER_NAMES), help="peers to try (none: omit)"
    )
    p.add_argument("--w1-sizes", type=_positive_int, nargs="+", help="W1 neuron counts N")
    p.add_argument("--w1-steps", type=_positive_int, nargs="+", help="W1 sequence lengths T")
    p.add_argument("--w2-sizes", type=_positive_int, nargs="+", help="W2 neuron counts N")
    p.add_argument("--w2-steps-per-run", type=_positive_int, help="W2 consecutive steps per timed run")
    p.add_argument("--w4-sizes", type=_positive_int, nargs="+", help="W4 Linear sizes (N x N)")
    p.add_argument("--w4-batches", type=_positive_int, nargs="+", help="W4 batch sizes")
    p.add_argument("--quiet", action="store_true", help="print only the tables")
    return p


def _resolve_device(text: str) -> torch.device:
    if text == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return check_device("--device", text)


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run the selected workloads; write and return ``{workload name: result dict}``."""
    device = _resolve_device(args.device)
    quick = args.quick
    out_dir = args.out_dir or (RESULTS_DIR / "quick" if quick else RESULTS_DIR)
    settings = neurons.QUICK if quick else neurons.FULL
    if device.type == "cuda":  # GPU memory and speed allow the unfused paths at every size
        settings = dataclasses.replace(settings, unfused_backward_limit=2**31)

    def log(msg: str) -> None:
        if not args.quiet:
            print(msg, file=sys.stderr, flush=True)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # peers' import-time warnings
        peers, peer_notes = find_peers(neurons.TAU, args.peers)
    peer_notes.update({name: "not requested" for name in PEER_NAMES if name not in args.peers})
    detected = neurons.snnlab_backends(device)
    backends, backend_notes = detected
    big = 4 * 2**20 if quick else 64 * 2**20
    env = environment(
        device,
        snnlab_backends=backends,
        snnlab_backend_notes=backend_notes,
        peers={p.name: p.version for p in peers},
        peers_skipped=peer_notes,
        peer_mappings={p.name: p.mapping for p in peers},
        copy_bandwidth_GBps=round(measure_bandwidth(big, torch.float32, device, 5) / 1e9, 2),
        copy_bandwidth_bytes=2 * 4 * big,
        mode="quick" if quick else "full",
    )
    header = "## Environment\n\n" + environment_markdown(env)
    log(header)
    results: dict[str, Any] = {}
    sections: dict[str, str] = {}

    if "w1" in args.workloads:
        default_sizes = neurons.W1_SIZES_GPU if device.type == "cuda" else neurons.W1_SIZES
        sizes = args.w1_sizes or (QUICK_W1_SIZES if quick else list(default_sizes))
        steps = args.w1_steps or (QUICK_W1_STEPS if quick else list(neurons.W1_STEPS))
        log(f"W1: multi-step LIF, N={sizes}, T={steps}")
        res = neurons.run_multi_step(sizes, steps, device, peers, settings, log=log, backends=detected)
        res["environment"] = env
        res["load_average_at_end"] = load_average()
        md = neurons.multi_step_markdown(res)
        md += _load_note(res)
        write_results("neurons_multi_step", res, header + "\n\n" + md, out_dir)
        results["neurons_multi_step"] = res
        sections["neurons_multi_step"] = md
        print(md + "\n", flush=True)

    if "w2" in args.workloads:
        sizes = args.w2_sizes or (QUICK_W2_SIZES if quick else list(neurons.W2_SIZES))
        log(f"W2: single-step LIF latency, N={sizes}")
        per_run = args.w2_steps_per_run or (20 if quick else 100)
        res = neurons.run_single_step(
            sizes, device, peers, settings, steps_per_run=per_run, log=log, backends=detected
        )
        res["environment"] = env
        res["load_average_at_end"] = load_average()
        md = neurons.single_step_markdown(res)
        md += _load_note(res)
        write_results("neurons_single_step", res, header + "\n\n" + md, out_dir)
        results["neurons_single_step"] = res
        sections["neurons_single_step"] = md
        print(md + "\n", flush=True)

    if "w4" in args.workloads:
        from . import learning_step

        sizes = args.w4_sizes or (QUICK_W4_SIZES if quick else [1000, 4096])
        batches = args.w4_batches or (QUICK_W4_BATCHES if quick else [1, 16])
        log(f"W4: STDP / mSTDP step, N={sizes}, batch={batches} (CPU)")
        w4_argv = ["--sizes", *map(str, sizes), "--batches", *map(str, batches)]
        w4_argv += ["--out", str(Path(out_dir) / "learning_step.json")]
        if quick:
            w4_argv += ["--repeats", "5", "--threads", str(torch.get_num_threads()), "--dram-mib", "16"]
        with contextlib.redirect_stdout(io.StringIO()):  # its table is printed below with the others
            res = learning_step.main(w4_argv)
        res["environment"] = env
        res["load_average_at_end"] = load_average()
        md = (
            "### W4: STDP / mSTDP per-step update (CPU, benchmarks.learning_step)\n\n"
            "ratio = time / bandwidth bound (bytes the update must move / measured copy bandwidth); "
            "speed-up vs a naive implementation of the same formulas and vs spikingjelly's "
            "STDPLearner / MSTDPLearner (timed where its learning module imports and its weight.grad "
            "equals snnlab's; notes below the table say why not), in the same process.\n\n"
            + learning_step.markdown(res)
        )
        md += _load_note(res)
        write_results("learning_step", res, header + "\n\n" + md, out_dir)
        results["learning_step"] = res
        sections["learning_step"] = md
        print(md + "\n", flush=True)

    _write_summary(Path(out_dir), header, sections)
    return results


def _load_note(res: dict[str, Any]) -> str:
    load = res.get("load_average_at_end")
    if load is None:
        return ""
    return f"\n\nLoad average (1, 5, 15 min) when this workload ended: {load}."


def _write_summary(out_dir: Path, header: str, sections: dict[str, str]) -> None:
    """``summary.md``: this run's header and tables, plus the tables of workloads run earlier
    into the same folder (each with its own environment header, taken from its ``.md``)."""
    parts = ["# snnlab benchmarks", header]
    for name in RESULT_NAMES:
        if name in sections:
            parts.append(sections[name])
        elif (out_dir / f"{name}.md").exists():
            earlier = (
                (out_dir / f"{name}.md")
                .read_text(encoding="utf-8")
                .replace("## Environment", "#### Environment of this earlier run", 1)
            )
            parts.append(f"### {name} (from an earlier run into this folder)\n\n" + earlier)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "summary.md").write_text("\n\n".join(parts).rstrip() + "\n", encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: parse ``argv`` and run; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        run(args)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
