r"""W1 (multi-step LIF) and W2 (single-step LIF latency) against the bandwidth bound and peers.

The neuron is LIF, :math:`\tau = 2`, hard reset to 0, threshold 1 (equations in
:mod:`benchmarks.peers`); input ``x = 4 * U[0, 1)`` so that a good share of
neurons fire. Every implementation runs on the same tensors in one process.

**W1** -- ``x_seq`` ``[T, N]`` for ``T`` in ``steps`` and ``N`` in ``sizes``:

* ``forward``: inference (``torch.no_grad``), state reset before each run;
  it must read ``x`` and write the spikes, ``2 * itemsize`` bytes per
  neuron-step;
* ``forward+backward``: ``x`` requires grad, ``spikes.backward(grad)`` with a
  preallocated ``grad``; the bound counts ``6 * itemsize`` bytes per
  neuron-step (forward reads ``x``, writes spikes and one saved state;
  backward reads the incoming gradient and the saved state, writes ``grad_x``).

**W2** -- one step ``x`` ``[N]`` for ``N`` in ``sizes``, state kept between
calls, inference; the time per step includes Python dispatch and is measured
over ``steps_per_run`` consecutive calls. Bound: ``2 * itemsize * N`` bytes.

snnlab is measured with every neuron backend it reports for the device
(``LIFNode().supported_backends``, each probed on a tiny input first). Peers
are checked with :func:`benchmarks.peers.compare_spikes` against snnlab's
torch reference before they are timed; the speed-up ``peer time / snnlab
time`` is reported only when the spikes are equal, ``not comparable``
otherwise. A peer that needs another snnlab configuration (snnTorch:
``decay_input=False`` on ``x / tau``) is compared with snnlab timed in that
configuration.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from snnlab.neuron import LIFNode

from .common import (
    Timing,
    adaptive_repeats,
    bound_percent,
    check_device,
    check_positive_int,
    check_positive_int_list,
    format_rate,
    markdown_table,
    measure_bandwidth,
    sync_fn,
    time_it,
)
from .peers import PeerLIF, compare_spikes

__all__ = [
    "FULL",
    "QUICK",
    "TAU",
    "W1_SIZES",
    "W1_SIZES_GPU",
    "W1_STEPS",
    "W2_SIZES",
    "Settings",
    "multi_step_markdown",
    "run_multi_step",
    "run_single_step",
    "single_step_markdown",
    "snnlab_backends",
]

TAU = 2.0
W1_STEPS: tuple[int, ...] = (8, 64, 256)
W1_SIZES: tuple[int, ...] = (10**4, 10**6)
W1_SIZES_GPU: tuple[int, ...] = (10**4, 10**6, 10**7)
W2_SIZES: tuple[int, ...] = (10**3, 10**4, 10**5)
PASSES: tuple[str, ...] = ("forward", "forward+backward")
_BACKEND_DEVICE = {"cpu": "cpu", "cupy": "cuda"}  # fused backends bound to one device type
_BYTES_PER_ELEMENT = {"forward": 2, "forward+backward": 6}  # multiples of itemsize


@dataclass(frozen=True)
class Settings:
    """Repeat policy: ``warmup`` untimed runs, then as many timed runs as fit ``budget_s``
    (one run's time estimated from the warm-up), clipped to ``[min_repeats, max_repeats]``.

    ``unfused_backward_limit``: above this many neuron-steps (``T * N``), forward+backward of
    the torch reference and of the peers is skipped (on a 2-core machine one run takes tens of
    seconds and several GB); snnlab's fused backends are always measured."""

    min_repeats: int = 3
    max_repeats: int = 30
    budget_s: float = 2.0
    warmup: int = 1
    bandwidth_repeats: int = 5
    unfused_backward_limit: int = 2**26


FULL = Settings(budget_s=1.0)
QUICK = Settings(min_repeats=2, max_repeats=3, budget_s=0.05, warmup=1, bandwidth_repeats=2)


# ---------------------------------------------------------------------------- snnlab backends


def snnlab_backends(device: torch.device | str = "cpu") -> tuple[list[str], dict[str, str]]:
    """snnlab's LIF backends usable on ``device``: those in ``supported_backends`` (but the
    ``'auto'`` alias) that run a tiny multi-step input. Returns them and a note per dropped (or
    suspicious: spikes unlike the torch backend's) backend."""
    device = check_device("device", device)
    names = [b for b in LIFNode().supported_backends if b != "auto"]
    x = 4 * torch.rand(4, 8, generator=torch.Generator().manual_seed(1)).to(device)
    with torch.no_grad():
        ref = LIFNode(tau=TAU, step_mode="m")(x)
    usable: list[str] = []
    notes = {"auto": "alias, not measured separately: picks the fused backend for the tensor's device"}
    for name in names:
        home = _BACKEND_DEVICE.get(name)
        if home is not None and home != device.type:
            notes[name] = f"for {home} tensors only; not measured on {device.type}"
            continue
        try:
            node = LIFNode(tau=TAU, step_mode="m", backend=name)
            with torch.no_grad():
                out = node(x)
        except Exception as exc:  # e.g. 'cupy' on a CPU tensor
            notes[name] = f"not usable on {device.type}: {type(exc).__name__}: {exc}"
            continue
        if not torch.equal(out, ref):
            notes[name] = "spikes differ from the torch backend on the probe input; measured anyway"
        usable.append(name)
    return usable, notes


def _snnlab_multi(backend: str, decay_input: bool) -> Callable[[torch.Tensor], torch.Tensor]:
    node = LIFNode(tau=TAU, decay_input=decay_input, step_mode="m", backend=backend)

    def run(x_seq: torch.Tensor) -> torch.Tensor:
        node.reset()
        return node(x_seq)

    return run


def _snnlab_stepper(backend: str, decay_input: bool) -> Callable[[torch.Tensor], torch.Tensor]:
    return LIFNode(tau=TAU, decay_input=decay_input, step_mode="s", backend=backend)


# ---------------------------------------------------------------------------- helpers


@dataclass
class _Impl:
    name: str  # 'snnlab[cpu]', 'spikingjelly', ...
    library: str  # 'snnlab' or the peer's name
    backend: str | None
    decay_input: bool
    scale: float
    note: str = ""


def _implementations(backends: Sequence[str], peers: Sequence[PeerLIF]) -> list[_Impl]:
    variants = [True, *sorted({p.decay_input for p in peers} - {True})]
    impls = []
    for decay_input in variants:
        scale = 1.0 if decay_input else 1.0 / TAU
        for b in backends:
            impls.append(_Impl(f"snnlab[{b}]", "snnlab", b, decay_input, scale))
    for p in peers:
        impls.append(_Impl(p.name, p.name, None, p.decay_input, p.input_scale, p.mapping))
    return impls


def _input_label(impl: _Impl) -> str:
    di = "decay_input" if impl.decay_input else "no decay_input"
    return f"x, {di}" if impl.scale == 1.0 else f"x/{1 / impl.scale:g}, {di}"


def _timed(
    fn: Callable[[], Any], settings: Settings, sync: Callable[[], None], estimate: float | None = None
) -> Timing:
    """Warm up (estimating one run from it, unless ``estimate`` is given: the caller just ran
    ``fn``'s work), then time as many repeats as the settings allow."""
    if estimate is None:
        t0 = time.perf_counter()
        for _ in range(settings.warmup):
            fn()
        sync()
        estimate = (time.perf_counter() - t0) / max(settings.warmup, 1)
    repeats = adaptive_repeats(estimate, settings.budget_s, settings.min_repeats, settings.max_repeats)
    return time_it(fn, repeats, warmup=0, sync=sync)


def _speedups(rows: list[dict[str, Any]], key: tuple[str, ...]) -> None:
    """Fill ``speedup`` on peer rows: peer time / time of each snnlab backend in the same config."""
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault(tuple(r[k] for k in key), []).append(r)
    for group in groups.values():
        for r in group:
            if r["library"] == "snnlab":
                continue
            r["speedup"] = {}
            for s in group:
                if s["library"] != "snnlab" or s["decay_input"] != r["decay_input"]:
                    continue
                ok = r["spikes"] is not None and r["spikes"]["equal"] and r["time_s"] and s["time_s"]
                r["speedup"][s["implementation"]] = r["time_s"] / s["time_s"] if ok else None


def _cell_speedup(row: dict[str, Any], backend_name: str) -> str:
    if row["library"] == "snnlab":
        return "–"
    if row.get("error"):
        return "failed"
    if row.get("skipped"):
        return "skipped"
    value = row.get("speedup", {}).get(backend_name)
    return "not comparable" if value is None else f"{value:.1f}×"


def _spikes_cell(row: dict[str, Any]) -> str:
    s = row["spikes"]
    if row.get("error"):
        return "failed: " + row["error"][:60]
    if s is None:
        return "reference"
    if not s["equal"]:
        return f"differ ({s['mismatched']} neurons)"
    return "equal" if s["ties"] == 0 else f"equal ({s['ties']} ties)"


# ---------------------------------------------------------------------------- W1


def run_multi_step(
    sizes: Sequence[int] = W1_SIZES,
    steps: Sequence[int] = W1_STEPS,
    device: torch.device | str = "cpu",
    peers: Sequence[PeerLIF] = (),
    settings: Settings = FULL,
    passes: Sequence[str] = PASSES,
    dtype: torch.dtype = torch.float32,
    log: Callable[[str], None] | None = None,
    backends: tuple[list[str], dict[str, str]] | None = None,
) -> dict[str, Any]:
    """W1: multi-step LIF, forward and forward+backward, for every ``T`` x ``N``.

    Returns ``{"workload", "dtype", "backends", "backend_notes", "rows"}``; each row has
    ``pass, T, N, implementation, library, decay_input, input, time_s, elem_steps_per_s,
    bytes, bandwidth_Bps, bound_s, bound_pct, spikes, repeats`` and, on peer rows,
    ``speedup`` (snnlab implementation -> peer time / snnlab time, ``None`` if not comparable).
    ``backends``: the result of :func:`snnlab_backends` if already known (detected otherwise).
    """
    sizes = check_positive_int_list("sizes", sizes)
    steps = check_positive_int_list("steps", steps)
    device = check_device("device", device)
    bad = [p for p in passes if p not in PASSES]
    if bad or not passes:
        raise ValueError(f"passes must be a non-empty subset of {PASSES}, got {list(passes)!r}")
    log = log or (lambda _msg: None)
    sync = sync_fn(device)
    backends, backend_notes = backends if backends is not None else snnlab_backends(device)
    peer_by_name = {p.name: p for p in peers}
    impls = _implementations(backends, peers)
    itemsize = torch.empty((), dtype=dtype).element_size()
    rows: list[dict[str, Any]] = []
    gen = torch.Generator(device=device).manual_seed(0)
    for n in sizes:
        for t_len in steps:
            x = 4 * torch.rand(t_len, n, generator=gen, dtype=dtype, device=device)
            bandwidth = measure_bandwidth(min(t_len * n, 2**26), dtype, device, settings.bandwidth_repeats)
            grad = torch.ones_like(x)
            for decay_input in dict.fromkeys(i.decay_input for i in impls):
                group = [i for i in impls if i.decay_input == decay_input]
                inputs: dict[float, torch.Tensor] = {}
                for i in group:
                    if i.scale not in inputs:
                        inputs[i.scale] = x if i.scale == 1.0 else x * i.scale
                ref_scale = 1.0 if decay_input else 1.0 / TAU
                xref = inputs.get(ref_scale, x * ref_scale)
                with torch.no_grad():
                    ref = _snnlab_multi("torch", decay_input)(xref)
                for impl in group:
                    fn = (
                        _snnlab_multi(impl.backend, impl.decay_input)
                        if impl.library == "snnlab"
                        else peer_by_name[impl.library].multi_step
                    )
                    xin = inputs[impl.scale]
                    spikes, error, estimate = _check_multi(impl, fn, xin, ref)
                    for pass_name in passes:
                        row = _row(pass_name, t_len, n, impl, spikes, error, bandwidth)
                        row["bytes"] = _BYTES_PER_ELEMENT[pass_name] * itemsize * n * t_len
                        fused = impl.library == "snnlab" and impl.backend != "torch"
                        if (
                            pass_name != "forward"
                            and not fused
                            and n * t_len > settings.unfused_backward_limit
                        ):
                            row["skipped"] = (
                                f"T·N > {settings.unfused_backward_limit} (time and memory budget of "
                                "unfused implementations)"
                            )
                        elif error is None:
                            _time_multi(row, fn, xin, grad, settings, sync, estimate)
                        _finish_row(row, n * t_len, bandwidth)
                        rows.append(row)
                        log(_log_line(row))
                del inputs, xref, ref
            del x, grad
    order = {
        (n, t, p): i for i, (n, t, p) in enumerate((n, t, p) for n in sizes for t in steps for p in passes)
    }
    rows.sort(key=lambda r: order[(r["N"], r["T"], r["pass"])])
    _speedups(rows, ("pass", "T", "N"))
    return {
        "workload": "W1 multi-step LIF",
        "dtype": str(dtype).replace("torch.", ""),
        "device": device.type,
        "backends": backends,
        "backend_notes": backend_notes,
        "rows": rows,
    }


def _row(
    pass_name: str,
    t_len: int,
    n: int,
    impl: _Impl,
    spikes: dict[str, Any] | None,
    error: str | None,
    bandwidth: float,
) -> dict[str, Any]:
    return {
        "pass": pass_name,
        "T": t_len,
        "N": n,
        "implementation": impl.name,
        "library": impl.library,
        "decay_input": impl.decay_input,
        "input": _input_label(impl),
        "spikes": spikes,
        "error": error,
        "skipped": None,
        "time_s": None,
        "time_min_s": None,
        "repeats": 0,
        "bandwidth_Bps": bandwidth,
    }


def _check_multi(
    impl: _Impl, fn: Callable[[torch.Tensor], torch.Tensor], xin: torch.Tensor, ref: torch.Tensor
) -> tuple[dict[str, Any] | None, str | None, float | None]:
    """Run ``fn`` once (inference), compare its spikes with ``ref``: ``(spikes, error, seconds)``."""
    try:
        t0 = time.perf_counter()
        with torch.no_grad():
            out = fn(xin)
        elapsed = time.perf_counter() - t0
        if impl.library == "snnlab" and impl.backend == "torch":
            return None, None, elapsed
        check = compare_spikes(out, ref, xin, TAU, impl.decay_input)
        return {"equal": check.equal, "ties": check.ties, "mismatched": check.mismatched}, None, elapsed
    except Exception as exc:  # one failing implementation must not stop the others
        return None, f"{type(exc).__name__}: {exc}", None


def _time_multi(
    row: dict[str, Any],
    fn: Callable[[torch.Tensor], torch.Tensor],
    xin: torch.Tensor,
    grad: torch.Tensor,
    settings: Settings,
    sync: Callable[[], None],
    forward_estimate: float | None = None,
) -> None:
    """Time one pass of ``fn`` on ``xin``, filling ``row['time_s']`` / ``row['repeats']`` (or ``error``).

    ``forward_estimate``: seconds of a forward run just made (the spike check); it replaces the
    warm-up of the forward pass."""
    if row["pass"] == "forward":

        def work() -> None:
            with torch.no_grad():
                fn(xin)

    else:
        leaf = xin.detach().requires_grad_(True)

        def work() -> None:
            leaf.grad = None
            fn(leaf).backward(grad)

    try:
        estimate = forward_estimate if row["pass"] == "forward" else None
        timing = _timed(work, settings, sync, estimate)
        row["time_s"], row["time_min_s"], row["repeats"] = timing.median, timing.min, timing.repeats
    except Exception as exc:  # one failing implementation must not stop the others
        row["error"] = f"{type(exc).__name__}: {exc}"


def _finish_row(row: dict[str, Any], elem_steps: int, bandwidth: float) -> None:
    row["bound_s"] = row["bytes"] / bandwidth
    if row["time_s"]:
        row["elem_steps_per_s"] = elem_steps / row["time_s"]
        row["bound_pct"] = bound_percent(row["bytes"], bandwidth, row["time_s"])
    else:
        row["elem_steps_per_s"] = None
        row["bound_pct"] = None


def _log_line(row: dict[str, Any]) -> str:
    what = f"{row['pass']} T={row['T']} N={row['N']} {row['implementation']} ({row['input']})"
    if row["error"]:
        return f"  {what}: failed: {row['error']}"
    if row.get("skipped"):
        return f"  {what}: skipped: {row['skipped']}"
    return f"  {what}: {row['time_s'] * 1e3:.3f} ms, {row['bound_pct']:.0f}% of bound"


def _fmt_ms(t: float | None) -> str:
    return "–" if t is None else f"{t * 1e3:.3f}"


def _fmt_pct(p: float | None) -> str:
    return "–" if p is None else f"{p:.0f}%"


def _fmt_rate(r: float | None) -> str:
    return "–" if r is None else format_rate(r)


def multi_step_markdown(result: dict[str, Any]) -> str:
    """Summary table (one line per pass, T, N: the fastest snnlab backend and its speed-up over
    each peer) followed by the detail table (every implementation)."""
    rows = result["rows"]
    peers = sorted({r["library"] for r in rows if r["library"] != "snnlab"})
    snn_names = [f"snnlab[{b}]" for b in result["backends"]]
    summary = []
    for key in dict.fromkeys((r["pass"], r["T"], r["N"]) for r in rows):
        group = [r for r in rows if (r["pass"], r["T"], r["N"]) == key]
        main = [r for r in group if r["library"] == "snnlab" and r["decay_input"] and r["time_s"]]
        if not main:
            continue
        best = min(main, key=lambda r: r["time_s"])
        cells = [
            *key,
            best["implementation"],
            _fmt_ms(best["time_s"]),
            _fmt_rate(best["elem_steps_per_s"]),
            _fmt_pct(best["bound_pct"]),
        ]
        for p in peers:
            prow = next((r for r in group if r["library"] == p), None)
            if prow is None:
                cells.append("–")
                continue
            match = [
                r
                for r in group
                if r["library"] == "snnlab" and r["decay_input"] == prow["decay_input"] and r["time_s"]
            ]
            # the same backend as `best`, in the peer's configuration
            same = next((r for r in match if r["implementation"] == best["implementation"]), None)
            cells.append(_cell_speedup(prow, same["implementation"]) if same else "–")
        summary.append(cells)
    headers = ["pass", "T", "N", "fastest snnlab", "time (ms)", "elem·steps/s", "% of bound"]
    headers += [f"× vs {p}" for p in peers]
    detail_headers = [
        "pass",
        "T",
        "N",
        "implementation",
        "input",
        "time (ms)",
        "min (ms)",
        "elem·steps/s",
        "% of bound",
        "bound (ms)",
        "spikes",
        *[f"speed-up of {s}" for s in snn_names],
    ]
    detail = []
    for r in rows:
        detail.append(
            [
                r["pass"],
                r["T"],
                r["N"],
                r["implementation"],
                r["input"],
                "skipped" if r["skipped"] else _fmt_ms(r["time_s"]),
                _fmt_ms(r["time_min_s"]),
                _fmt_rate(r["elem_steps_per_s"]),
                _fmt_pct(r["bound_pct"]),
                _fmt_ms(r["bound_s"]),
                _spikes_cell(r),
                *[_cell_speedup(r, s) for s in snn_names],
            ]
        )
    return (
        f"### W1: multi-step LIF ({result['dtype']}, {result['device']})\n\n"
        "× = peer time / snnlab time (same tensors, same spikes); % of bound = bytes-moved / "
        "measured copy bandwidth / time (forward 2, forward+backward 6 × itemsize per neuron-step).\n\n"
        + markdown_table(headers, summary)
        + "\n\n#### W1 detail\n\n"
        + markdown_table(detail_headers, detail)
    )


# ---------------------------------------------------------------------------- W2


def run_single_step(
    sizes: Sequence[int] = W2_SIZES,
    device: torch.device | str = "cpu",
    peers: Sequence[PeerLIF] = (),
    settings: Settings = FULL,
    steps_per_run: int = 100,
    check_steps: int = 32,
    dtype: torch.dtype = torch.float32,
    log: Callable[[str], None] | None = None,
    backends: tuple[list[str], dict[str, str]] | None = None,
) -> dict[str, Any]:
    """W2: single-step latency (µs per step including Python dispatch), inference, state kept.

    Each implementation's stepper is first checked over ``check_steps`` steps against snnlab's
    torch multi-step reference, then timed over runs of ``steps_per_run`` consecutive steps.
    Rows as :func:`run_multi_step` plus ``us_per_step``.
    """
    sizes = check_positive_int_list("sizes", sizes)
    steps_per_run = check_positive_int("steps_per_run", steps_per_run)
    check_steps = check_positive_int("check_steps", check_steps)
    device = check_device("device", device)
    log = log or (lambda _msg: None)
    sync = sync_fn(device)
    backends, backend_notes = backends if backends is not None else snnlab_backends(device)
    peer_by_name = {p.name: p for p in peers}
    impls = _implementations(backends, peers)
    itemsize = torch.empty((), dtype=dtype).element_size()
    gen = torch.Generator(device=device).manual_seed(0)
    rows: list[dict[str, Any]] = []
    for n in sizes:
        pool = 4 * torch.rand(8, n, generator=gen, dtype=dtype, device=device)
        x_check = 4 * torch.rand(check_steps, n, generator=gen, dtype=dtype, device=device)
        bandwidth = measure_bandwidth(n, dtype, device, max(settings.bandwidth_repeats, 20))
        for impl in impls:
            row = _row("single step", 1, n, impl, None, None, bandwidth)
            row["bytes"] = 2 * itemsize * n
            try:
                make = (
                    (lambda impl=impl: _snnlab_stepper(impl.backend, impl.decay_input))
                    if impl.library == "snnlab"
                    else peer_by_name[impl.library].make_stepper
                )
                xs = x_check * impl.scale
                steps = list((pool * impl.scale).unbind(0))
                with torch.no_grad():
                    ref = _snnlab_multi("torch", impl.decay_input)(xs)
                    checker = make()
                    out = torch.stack([checker(xs[t]) for t in range(check_steps)])
                if not (impl.library == "snnlab" and impl.backend == "torch"):
                    check = compare_spikes(out, ref, xs, TAU, impl.decay_input)
                    row["spikes"] = {"equal": check.equal, "ties": check.ties, "mismatched": check.mismatched}
                stepper = make()

                def work(stepper: Callable = stepper, steps: list[torch.Tensor] = steps) -> None:
                    with torch.no_grad():
                        for k in range(steps_per_run):
                            stepper(steps[k & 7])

                timing = _timed(work, settings, sync)
                row["time_s"] = timing.median / steps_per_run
                row["time_min_s"] = timing.min / steps_per_run
                row["repeats"] = timing.repeats
            except Exception as exc:  # one failing implementation must not stop the others
                row["error"] = f"{type(exc).__name__}: {exc}"
            _finish_row(row, n, bandwidth)
            row["us_per_step"] = None if row["time_s"] is None else row["time_s"] * 1e6
            rows.append(row)
            log(_log_line(row))
    _speedups(rows, ("N",))
    return {
        "workload": "W2 single-step LIF latency",
        "dtype": str(dtype).replace("torch.", ""),
        "device": device.type,
        "backends": backends,
        "backend_notes": backend_notes,
        "steps_per_run": steps_per_run,
        "rows": rows,
    }


def single_step_markdown(result: dict[str, Any]) -> str:
    """Table of µs per step for every implementation and N, with peer speed-ups."""
    snn_names = [f"snnlab[{b}]" for b in result["backends"]]
    headers = [
        "N",
        "implementation",
        "input",
        "µs/step",
        "min µs/step",
        "elem·steps/s",
        "% of bound",
        "spikes",
        *[f"speed-up of {s}" for s in snn_names],
    ]
    body = []
    for r in result["rows"]:
        us = "–" if r["us_per_step"] is None else f"{r['us_per_step']:.1f}"
        us_min = "–" if r["time_min_s"] is None else f"{r['time_min_s'] * 1e6:.1f}"
        body.append(
            [
                r["N"],
                r["implementation"],
                r["input"],
                us,
                us_min,
                _fmt_rate(r["elem_steps_per_s"]),
                _fmt_pct(r["bound_pct"]),
                _spikes_cell(r),
                *[_cell_speedup(r, s) for s in snn_names],
            ]
        )
    return (
        f"### W2: single-step LIF latency ({result['dtype']}, {result['device']}, inference, "
        f"{result['steps_per_run']} consecutive steps per timed run)\n\n"
        "speed-up = peer µs/step / snnlab µs/step (same inputs, same spikes).\n\n"
        + markdown_table(headers, body)
    )
