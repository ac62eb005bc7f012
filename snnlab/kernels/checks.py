"""Argument checks shared by the kernel functions, autograd Functions and nodes.

Every check raises ``TypeError`` (wrong kind of value) or ``ValueError``
(right kind, wrong value) with a message that names the argument, shows the
value and says what is allowed.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import torch

#: Surrogate gradients understood by the fused kernels, in index order.
SURROGATE_NAMES: tuple[str, ...] = ("ATan", "Sigmoid")


def _describe(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return f"Tensor(shape={tuple(value.shape)}, dtype={value.dtype}, device={value.device})"
    return f"{type(value).__name__} {value!r}"


def real(name: str, value: Any) -> float:
    """``value`` as a finite ``float``; ``TypeError`` unless it is a real number (not a bool)."""
    if isinstance(value, torch.Tensor) and value.numel() == 1 and not value.requires_grad:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {_describe(value)}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return value


def positive(name: str, value: Any) -> float:
    """A finite ``float`` ``> 0``."""
    value = real(name, value)
    if value <= 0.0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return value


def flag(name: str, value: Any) -> bool:
    """A ``bool`` (``TypeError`` for anything else, including ``0`` / ``1``)."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool (True or False), got {_describe(value)}")
    return value


def reciprocal_tau(value: Any, *, allow_one: bool = True) -> float:
    r""":math:`1/\tau` in ``(0, 1]`` (kernels) or ``(0, 1)`` (nodes, where :math:`\tau > 1`)."""
    value = real("reciprocal_tau", value)
    upper_ok = value <= 1.0 if allow_one else value < 1.0
    if not (value > 0.0 and upper_ok):
        allowed = "(0, 1]" if allow_one else "(0, 1), i.e. tau > 1"
        raise ValueError(f"reciprocal_tau must be in {allowed}, got {value!r}")
    return value


def tau(value: Any) -> float:
    r"""Membrane time constant :math:`\tau > 1` (finite)."""
    value = real("tau", value)
    if value <= 1.0:
        raise ValueError(f"tau must be a finite number > 1, got {value!r}")
    return value


def threshold_and_reset(v_threshold: Any, v_reset: Any) -> tuple[float, float | None]:
    """``v_threshold`` finite; ``v_reset`` finite or ``None`` (soft reset), below the threshold."""
    v_threshold = real("v_threshold", v_threshold)
    if v_reset is None:
        return v_threshold, None
    v_reset = real("v_reset", v_reset)
    if not v_threshold > v_reset:
        raise ValueError(
            f"v_threshold must be greater than v_reset, got v_threshold={v_threshold!r}, v_reset={v_reset!r}"
        )
    return v_threshold, v_reset


def surrogate_index(value: Any) -> int:
    """``grad_surrogate_function_index``: ``0`` (ATan) or ``1`` (Sigmoid)."""
    name = "grad_surrogate_function_index"
    allowed = ", ".join(f"{i} ({n})" for i, n in enumerate(SURROGATE_NAMES))
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, one of {allowed}; got {_describe(value)}")
    if not 0 <= int(value) < len(SURROGATE_NAMES):
        raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
    return int(value)


def surrogate_name(value: Any) -> int:
    """Index of the surrogate named ``value`` (``'ATan'`` or ``'Sigmoid'``)."""
    if not isinstance(value, str):
        raise TypeError(f"surrogate_function must be one of {SURROGATE_NAMES}, got {_describe(value)}")
    if value not in SURROGATE_NAMES:
        raise ValueError(f"surrogate_function must be one of {SURROGATE_NAMES}, got {value!r}")
    return SURROGATE_NAMES.index(value)


def float_tensor(name: str, value: Any) -> torch.Tensor:
    """A floating-point tensor."""
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {_describe(value)}")
    if not value.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {value.dtype}")
    return value


def like(name: str, value: Any, ref_name: str, ref: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """A floating tensor with shape ``shape`` and the dtype and device of ``ref``."""
    value = float_tensor(name, value)
    if value.shape != shape:
        raise ValueError(
            f"{name} must have shape {tuple(shape)} (to match {ref_name} {tuple(ref.shape)}), "
            f"got {tuple(value.shape)}"
        )
    if value.dtype != ref.dtype:
        raise TypeError(f"{name} must have the dtype of {ref_name} ({ref.dtype}), got {value.dtype}")
    if value.device != ref.device:
        raise ValueError(f"{name} must be on the device of {ref_name} ({ref.device}), got {value.device}")
    return value


def sequence(name: str, value: Any) -> torch.Tensor:
    """A floating tensor ``[T, ...]`` with ``T >= 1``."""
    value = float_tensor(name, value)
    if value.dim() < 1 or value.shape[0] < 1:
        raise ValueError(
            f"{name} must have a leading time dimension T >= 1 (shape [T, N, ...]), "
            f"got shape {tuple(value.shape)}"
        )
    return value


def state_for_step(x: Any, v: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """``x`` ``[N, ...]`` and ``v`` of the same shape, dtype and device."""
    x = float_tensor("x", x)
    return x, like("v", v, "x", x, x.shape)


def state_for_sequence(x_seq: Any, v: Any, seq_name: str = "x_seq") -> tuple[torch.Tensor, torch.Tensor]:
    """``x_seq`` ``[T, N, ...]`` and ``v`` ``[N, ...]`` (shape ``x_seq.shape[1:]``)."""
    x_seq = sequence(seq_name, x_seq)
    return x_seq, like("v", v, seq_name, x_seq, x_seq.shape[1:])


def broadcastable(name: str, value: Any, shape: torch.Size, ref: torch.Tensor) -> float | torch.Tensor:
    """A finite number, or a tensor (ref's dtype and device) that broadcasts to ``shape``."""
    if isinstance(value, torch.Tensor):
        if not value.is_floating_point():
            raise TypeError(
                f"{name} must be a real number or a floating-point tensor, got dtype {value.dtype}"
            )
        try:
            fits = torch.broadcast_shapes(value.shape, shape) == shape
        except RuntimeError:
            fits = False
        if not fits:
            raise ValueError(f"{name} must broadcast to shape {tuple(shape)}, got shape {tuple(value.shape)}")
        if value.device != ref.device:
            raise ValueError(f"{name} must be on device {ref.device}, got {value.device}")
        return value.to(ref.dtype)
    return real(name, value)
