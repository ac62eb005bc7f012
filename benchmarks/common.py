"""Shared benchmark machinery: timing, the bandwidth bound, environment header, writers.

Timing: a callable is run ``warmup`` times, then ``repeats`` times, each run
timed with :func:`time.perf_counter` (on CUDA, bracketed by
``torch.cuda.synchronize``); the reported figure is the median. With
:func:`adaptive_repeats` the number of repeats follows from the warm-up
time, so large configurations get fewer repeats than small ones.

Bandwidth bound: a workload that must move ``B`` bytes cannot finish in less
than ``B / bandwidth`` seconds. The bandwidth is measured in the same process
as ``2 * nbytes / t`` of ``dst.copy_(src)`` (one read and one write of
``nbytes``), a torch copy on CPU and a device-to-device copy on GPU, and
``% of bound = 100 * (B / bandwidth) / time``.
"""

from __future__ import annotations

import json
import math
import os
import platform
import statistics
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

RESULTS_DIR = Path(__file__).resolve().parent / "results"

__all__ = [
    "RESULTS_DIR",
    "Timing",
    "adaptive_repeats",
    "bound_percent",
    "check_device",
    "check_positive_int",
    "check_positive_int_list",
    "environment",
    "environment_markdown",
    "format_rate",
    "load_average",
    "markdown_table",
    "measure_bandwidth",
    "sync_fn",
    "time_it",
    "write_results",
]


# ---------------------------------------------------------------------------- argument checks


def check_positive_int(name: str, value: Any) -> int:
    """``value`` if it is an ``int`` >= 1; ``TypeError`` / ``ValueError`` naming ``name`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be a positive int, got {type(value).__name__} {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be a positive int (>= 1), got {value!r}")
    return value


def check_positive_int_list(name: str, values: Any) -> list[int]:
    """A non-empty sequence of positive ints, as a list."""
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise TypeError(f"{name} must be a non-empty sequence of positive ints, got {values!r}")
    values = list(values)
    if not values:
        raise ValueError(f"{name} must be a non-empty sequence of positive ints, got {values!r}")
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must contain only positive ints, got {v!r} in {values!r}")
    return values


def check_device(name: str, value: Any) -> torch.device:
    """A ``torch.device`` of type ``'cpu'`` or ``'cuda'`` (CUDA only when available)."""
    if isinstance(value, torch.device):
        device = value
    elif isinstance(value, str):
        try:
            device = torch.device(value)
        except RuntimeError:
            raise ValueError(f"{name} must be 'cpu' or 'cuda', got {value!r}") from None
    else:
        raise TypeError(f"{name} must be 'cpu', 'cuda' or a torch.device, got {type(value).__name__}")
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"{name} must be 'cpu' or 'cuda', got {value!r}")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"{name}={value!r} needs a CUDA GPU, and torch.cuda.is_available() is False")
    return device


# ---------------------------------------------------------------------------- timing


@dataclass
class Timing:
    """Seconds per run: ``median`` and ``min`` over ``times`` (the timed repeats)."""

    median: float
    min: float
    times: list[float] = field(default_factory=list)

    @property
    def repeats(self) -> int:
        return len(self.times)


def sync_fn(device: torch.device) -> Callable[[], None]:
    """A callable that waits for queued work on ``device`` (a no-op on CPU)."""
    if device.type == "cuda":
        return lambda: torch.cuda.synchronize(device)
    return lambda: None


def time_it(
    fn: Callable[[], Any],
    repeats: int,
    warmup: int = 1,
    sync: Callable[[], None] | None = None,
) -> Timing:
    """Run ``fn`` ``warmup`` times untimed, then ``repeats`` timed runs; return their median.

    Args:
        fn: the work, called without arguments; its result is discarded.
        repeats: timed runs, >= 1.
        warmup: untimed runs first, >= 0.
        sync: called before starting and before stopping each clock (device synchronisation).
    """
    repeats = check_positive_int("repeats", repeats)
    if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
        raise ValueError(f"warmup must be an int >= 0, got {warmup!r}")
    if not callable(fn):
        raise TypeError(f"fn must be callable, got {type(fn).__name__}")
    sync = sync or (lambda: None)
    for _ in range(warmup):
        fn()
    sync()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return Timing(statistics.median(times), min(times), times)


def adaptive_repeats(estimate_s: float, budget_s: float, min_repeats: int, max_repeats: int) -> int:
    """Repeats that fit ``budget_s`` given one run of ``estimate_s``, clipped to ``[min, max]``."""
    if not (estimate_s >= 0.0 and math.isfinite(estimate_s)):
        raise ValueError(f"estimate_s must be a finite number >= 0, got {estimate_s!r}")
    if not budget_s > 0.0:
        raise ValueError(f"budget_s must be > 0, got {budget_s!r}")
    min_repeats = check_positive_int("min_repeats", min_repeats)
    max_repeats = check_positive_int("max_repeats", max_repeats)
    if max_repeats < min_repeats:
        raise ValueError(f"max_repeats must be >= min_repeats, got {max_repeats!r} < {min_repeats!r}")
    fit = int(budget_s / estimate_s) if estimate_s > 0 else max_repeats
    return max(min_repeats, min(max_repeats, fit))


# ---------------------------------------------------------------------------- bandwidth


def measure_bandwidth(
    numel: int,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
    repeats: int = 5,
) -> float:
    """Bytes per second of ``dst.copy_(src)`` for two preallocated tensors of ``numel`` elements.

    Each copy reads and writes ``numel * itemsize`` bytes, so the figure is
    ``2 * nbytes / t`` with ``t`` the fastest of ``repeats`` timed runs (the
    bound is the best the machine does; on a shared machine a median would
    also count pre-emptions). Small tensors are copied several times per
    timed run (at least ~8 MB moved) so that clock resolution does not matter.
    Both tensors are touched before timing.
    """
    numel = check_positive_int("numel", numel)
    repeats = check_positive_int("repeats", repeats)
    device = check_device("device", device)
    src = torch.ones(numel, dtype=dtype, device=device)
    dst = torch.zeros_like(src)
    inner = max(1, min(1000, (8 * 2**20) // (2 * src.nbytes)))

    def copies() -> None:
        for _ in range(inner):
            dst.copy_(src)

    t = time_it(copies, repeats, warmup=2, sync=sync_fn(device))
    return 2 * src.nbytes * inner / t.min


def bound_percent(bytes_moved: float, bandwidth: float, seconds: float) -> float:
    """``100 * (bytes_moved / bandwidth) / seconds``: how close a run is to the bandwidth bound."""
    if not (bandwidth > 0 and seconds > 0):
        raise ValueError(
            f"bandwidth and seconds must be > 0, got bandwidth={bandwidth!r}, seconds={seconds!r}"
        )
    return 100.0 * (bytes_moved / bandwidth) / seconds


# ---------------------------------------------------------------------------- environment


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(module_name: str) -> str | None:
    try:
        module = __import__(module_name)
    except Exception:  # an optional package may fail on import for many reasons
        return None
    return str(getattr(module, "__version__", "unknown"))


def load_average() -> list[float] | None:
    """The 1, 5 and 15 minute load averages (runnable processes; above the core count, the
    benchmark shared the CPUs with other work), or ``None`` where the OS does not report them."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def environment(device: torch.device | str = "cpu", **extra: Any) -> dict[str, Any]:
    """Machine and software facts for the results header (``extra`` entries are appended)."""
    device = check_device("device", device)
    env: dict[str, Any] = {
        "date_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": _version("numpy"),
        "numba": _version("numba"),
        "cupy": None,
        "device": device.type,
        "gpu": None,
        "load_average_1_5_15min": load_average(),
    }
    if device.type == "cuda":
        env["gpu"] = torch.cuda.get_device_name(device)
        env["cupy"] = _version("cupy")
    env.update(extra)
    return env


def environment_markdown(env: dict[str, Any]) -> str:
    """The environment dict as a markdown bullet list."""
    lines = []
    for key, value in env.items():
        if isinstance(value, (list, tuple)):
            value = ", ".join(str(v) for v in value) or "none"
        elif isinstance(value, dict):
            value = "; ".join(f"{k}: {v}" for k, v in value.items()) or "none"
        lines.append(f"- **{key}**: {value}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------- formatting and writing


def format_rate(value: float) -> str:
    """``1.23e9`` -> ``'1.23 G'`` (engineering prefix, three significant digits)."""
    for scale, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= scale:
            return f"{value / scale:.3g} {prefix}"
    return f"{value:.3g}"


def markdown_table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A GitHub markdown table; every row must have ``len(headers)`` cells."""
    headers = list(headers)
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for i, row in enumerate(rows):
        cells = [str(c) for c in row]
        if len(cells) != len(headers):
            raise ValueError(f"rows[{i}] has {len(cells)} cells, expected {len(headers)} (one per header)")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if hasattr(obj, "__dataclass_fields__"):
        return _jsonable(asdict(obj))
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    return str(obj)


def write_results(name: str, result: dict[str, Any], markdown: str, out_dir: Path | str) -> tuple[Path, Path]:
    """Write ``<out_dir>/<name>.json`` (``result``) and ``<out_dir>/<name>.md``; return both paths."""
    if not isinstance(name, str) or not name or any(c in name for c in "/\\"):
        raise ValueError(f"name must be a non-empty file stem without slashes, got {name!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    json_path = out / f"{name}.json"
    md_path = out / f"{name}.md"
    json_path.write_text(json.dumps(_jsonable(result), indent=2) + "\n", encoding="utf-8")
    md_path.write_text(markdown.rstrip() + "\n", encoding="utf-8")
    return md_path, json_path
