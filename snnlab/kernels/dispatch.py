"""One dispatch point between the public kernel functions and their implementations.

Each public kernel (``LIF_hard_reset_fptt``, ``IF_bptt``, ...) validates its
arguments and then calls ``get_kernel(name, device)``. The table holds, per
kernel name, one implementation per device type (``'cpu'``, ``'cuda'``, ...)
plus the plain-torch reference under the key ``'torch'``, used for every
device type without an entry of its own. A faster path is plugged in with
:func:`register_kernel` and is called with already-validated arguments and
the same positional signature as the public function; tests compare it with
:func:`reference_kernel`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

REFERENCE = "torch"

_KERNELS: dict[str, dict[str, Callable]] = {}


def _known(name: str) -> dict[str, Callable]:
    if name not in _KERNELS:
        raise ValueError(f"name must be one of the registered kernels {sorted(_KERNELS)}, got {name!r}")
    return _KERNELS[name]


def register_reference(name: str, fn: Callable) -> Callable:
    """Register ``fn`` as the plain-torch reference implementation of kernel ``name``."""
    _KERNELS.setdefault(name, {})[REFERENCE] = fn
    return fn


def register_kernel(name: str, device_type: str, fn: Callable) -> None:
    """Use ``fn`` for kernel ``name`` on tensors whose ``device.type`` is ``device_type``."""
    table = _known(name)
    if not isinstance(device_type, str) or device_type == REFERENCE or not device_type:
        raise ValueError(
            f"device_type must be a torch device type such as 'cpu' or 'cuda', got {device_type!r}"
        )
    if not callable(fn):
        raise TypeError(f"fn must be callable, got {type(fn).__name__}")
    table[device_type] = fn


def unregister_kernel(name: str, device_type: str) -> None:
    """Drop the ``device_type`` entry of kernel ``name`` (the reference is kept)."""
    table = _known(name)
    if device_type == REFERENCE:
        raise ValueError(f"device_type {REFERENCE!r} is the reference and cannot be removed")
    table.pop(device_type, None)


def get_kernel(name: str, device: torch.device | str) -> Callable:
    """The implementation of kernel ``name`` for tensors on ``device``."""
    table = _known(name)
    device_type = torch.device(device).type
    return table.get(device_type, table[REFERENCE])


def reference_kernel(name: str) -> Callable:
    """The plain-torch reference implementation of kernel ``name`` (the oracle)."""
    return _known(name)[REFERENCE]


def kernel_names() -> tuple[str, ...]:
    """Names of all registered kernels."""
    return tuple(sorted(_KERNELS))


def backends(name: str) -> tuple[str, ...]:
    """Keys of the implementations registered for kernel ``name`` (``'torch'`` first)."""
    table = _known(name)
    return (REFERENCE, *sorted(k for k in table if k != REFERENCE))
