"""Input validation shared by the figure builders.

Every helper converts its input to a numpy array (torch tensors, lists and
numpy arrays are accepted; torch is never imported here) and raises a
``TypeError`` or ``ValueError`` whose message names the argument, shows the
offending value or shape, and says what is allowed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = [
    "as_array",
    "check_dt",
    "check_labels",
    "check_positive_int",
    "check_same_length",
    "index_array",
    "real_array",
]


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def as_array(value: Any, name: str) -> np.ndarray:
    """Return ``value`` as a numpy array (a torch tensor is detached and moved to the CPU first)."""
    if value is None:
        raise TypeError(f"{name} must be an array-like of numbers, got None")
    if hasattr(value, "detach") and hasattr(value, "cpu"):
        value = value.detach().cpu().numpy()
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError) as exc:  # ragged nested sequences
        raise ValueError(f"{name} must be a rectangular array of numbers, got {_short(value)}") from exc
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.bool_)):
        raise TypeError(f"{name} must hold numbers, got dtype {arr.dtype} ({_short(value)})")
    return arr


def _check_ndim(arr: np.ndarray, name: str, ndim: int | tuple[int, ...]) -> None:
    allowed = (ndim,) if isinstance(ndim, int) else ndim
    if arr.ndim not in allowed:
        wanted = " or ".join(f"{d}-D" for d in allowed)
        raise ValueError(f"{name} must be {wanted}, got a {arr.ndim}-D array of shape {arr.shape}")


def real_array(value: Any, name: str, ndim: int | tuple[int, ...], *, finite: bool = False) -> np.ndarray:
    """A float64 array of the allowed ``ndim``; ``finite=True`` also rejects NaN and infinities."""
    arr = as_array(value, name)
    if np.issubdtype(arr.dtype, np.complexfloating):
        raise TypeError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    _check_ndim(arr, name, ndim)
    arr = arr.astype(np.float64, copy=False)
    if finite and arr.size and not np.all(np.isfinite(arr)):
        bad = arr[~np.isfinite(arr)].flat[0]
        raise ValueError(f"{name} must hold finite numbers, found {bad}")
    return arr


def index_array(value: Any, name: str, *, upper: int | None = None, upper_name: str = "") -> np.ndarray:
    """A 1-D int64 array of non-negative integers (each ``< upper`` when ``upper`` is given).

    Floats are accepted when they are whole numbers (``3.0``), since recorded
    step counters sometimes arrive as floats.
    """
    arr = as_array(value, name)
    _check_ndim(arr, name, 1)
    if arr.dtype == np.bool_:
        raise TypeError(f"{name} must hold integers, got booleans")
    if not np.issubdtype(arr.dtype, np.integer):
        if np.issubdtype(arr.dtype, np.complexfloating):
            raise TypeError(f"{name} must hold integers, got dtype {arr.dtype}")
        if arr.size and not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} must hold finite whole numbers, found {arr[~np.isfinite(arr)][0]}")
        if arr.size and not np.all(arr == np.round(arr)):
            bad = arr[arr != np.round(arr)][0]
            raise ValueError(f"{name} must hold whole numbers (indices), found {bad}")
    arr = arr.astype(np.int64, copy=False)
    if arr.size and arr.min() < 0:
        raise ValueError(f"{name} must hold non-negative indices, found {int(arr.min())}")
    if upper is not None and arr.size and arr.max() >= upper:
        raise ValueError(f"{name} must hold indices below {upper_name}={upper}, found {int(arr.max())}")
    return arr


def check_same_length(first: np.ndarray, first_name: str, other: np.ndarray, other_name: str) -> None:
    """Raise ``ValueError`` unless both arrays have the same length along their first axis."""
    if len(first) != len(other):
        raise ValueError(
            f"{other_name} must have one entry per entry of {first_name}: "
            f"len({first_name})={len(first)} but len({other_name})={len(other)}"
        )


def check_dt(dt: Any, name: str = "dt") -> float | None:
    """``None`` (time axis in steps) or a finite positive number of ms per step."""
    if dt is None:
        return None
    if isinstance(dt, bool) or not isinstance(dt, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a positive number of ms per step or None, got {_short(dt)}")
    dt = float(dt)
    if not math.isfinite(dt) or dt <= 0:
        raise ValueError(f"{name} must be a positive number of ms per step or None, got {dt}")
    return dt


def check_positive_int(value: Any, name: str, *, allow_none: bool = False) -> int | None:
    """A positive ``int`` (booleans are refused)."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        allowed = "a positive integer or None" if allow_none else "a positive integer"
        raise TypeError(f"{name} must be {allowed}, got {_short(value)}")
    if value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value}")
    return int(value)


def check_labels(labels: Sequence[Any] | None, name: str, count: int) -> list[str] | None:
    """``None`` or a sequence of exactly ``count`` labels, returned as strings."""
    if labels is None:
        return None
    if isinstance(labels, str) or not isinstance(labels, Sequence):
        raise TypeError(f"{name} must be a sequence of {count} strings or None, got {_short(labels)}")
    if len(labels) != count:
        raise ValueError(f"{name} must have {count} entries (one per column), got {len(labels)}")
    return [str(label) for label in labels]
