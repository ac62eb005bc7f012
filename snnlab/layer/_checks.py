"""Argument checks shared by the layer modules.

Every check raises ``TypeError`` for a value of the wrong type and
``ValueError`` for a value out of range; the message names the argument,
the value received and what is allowed.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable

import torch


def check_int(name: str, value: object, minimum: int) -> int:
    """``value`` must be an ``int`` (not ``bool``) with ``value >= minimum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int >= {minimum}, got {type(value).__name__} {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return int(value)


def check_real(name: str, value: object) -> float:
    """``value`` must be a finite real number (not ``bool``)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return float(value)


def check_probability(name: str, value: object) -> float:
    """``value`` must be a real number with ``0 <= value < 1``."""
    value = check_real(name, value)
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must satisfy 0 <= {name} < 1, got {value!r}")
    return value


def check_bool(name: str, value: object) -> bool:
    """``value`` must be a ``bool``."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__} {value!r}")
    return value


def check_tensor(name: str, value: object) -> torch.Tensor:
    """``value`` must be a ``torch.Tensor``."""
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    return value


def check_rank(name: str, x: object, ranks: Iterable[int], expected: str, owner: str, step_mode: str) -> None:
    """``x`` must be a tensor whose number of dimensions is in ``ranks``.

    ``expected`` describes the allowed shapes (e.g. ``'[T, N, C, H, W]'``).
    """
    x = check_tensor(name, x)
    if x.dim() not in ranks:
        raise ValueError(
            f"{owner} with step_mode={step_mode!r} expects {name} with shape {expected}, "
            f"got {name} with shape {tuple(x.shape)} ({x.dim()} dims)"
        )
