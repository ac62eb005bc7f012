"""Compile (or load from the disk cache) the loops a network will need, ahead of its first step.

A first call of the CPU fast path compiles the loop it runs (about a second
on a cold cache, about 0.4 s to load numba and the cached loop on a warm
one). :func:`warm_up` does that work up front, optionally on a background
thread, so an interactive session (a dashboard, a notebook) does not pause
on its first step. It changes no results: the loops are the same whether
compiled here or on first use.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

import numpy as np
import torch

from . import load_loops, require

_DTYPES = (torch.float32, torch.float64)


def _needs(modules: Iterable[object]) -> tuple[set[int], set[int]]:
    """Charge modes and surrogate codes of the IF / LIF nodes among ``modules`` that the loops cover."""
    from ...neuron import IFNode, LIFNode
    from .node_backend import plan

    charges: set[int] = set()
    codes: set[int] = set()
    for module in modules:
        if isinstance(module, (IFNode, LIFNode)):
            found = plan(module)
            if found is not None:
                charges.add(found.charge)
                codes.add(found.code)
    return charges, codes


def _compile(charges: set[int], codes: set[int], dtypes: tuple[torch.dtype, ...]) -> None:
    loops = load_loops()
    for dtype in dtypes:
        npdt = np.float32 if dtype == torch.float32 else np.float64
        one = np.zeros((1, 1), dtype=npdt)
        state = np.zeros(1, dtype=npdt)
        p = np.zeros(10, dtype=npdt)
        p[2] = 2.0  # a valid charge constant (tau); the values do not matter here
        switches = (False, False, False, 0, 1, 1)  # soft / detach / save flags, lo, hi, chunk
        for charge in sorted(charges):
            loops.forward_kernel(charge)(one, state, one.copy(), state.copy(), one, one, p, *switches)
        for code in sorted(codes):
            loops.backward_kernel(code)(one, state, one, one, one.copy(), state.copy(), p, *switches)


def warm_up(
    net: torch.nn.Module | Iterable[torch.nn.Module],
    dtypes: Iterable[torch.dtype] = (torch.float32,),
    backward: bool = False,
    background: bool = False,
) -> threading.Thread | None:
    """Compile the CPU loops that the IF / LIF nodes of ``net`` run, for ``dtypes``.

    Args:
        net: a module (all its submodules are visited) or an iterable of modules.
        dtypes: float32 and / or float64.
        backward: also the BPTT loops (training).
        background: compile on a daemon thread and return it (``join()`` waits); otherwise
            compile now and return ``None``.

    Raises ``ImportError`` without numba, ``TypeError`` / ``ValueError`` for bad arguments.
    """
    if isinstance(net, torch.nn.Module):
        modules: list[object] = list(net.modules())
    else:
        try:
            modules = list(net)
        except TypeError:
            raise TypeError(
                f"net must be a torch.nn.Module or an iterable of modules, got {type(net).__name__}"
            ) from None
    wanted = tuple(dtypes)
    bad = [d for d in wanted if d not in _DTYPES]
    if bad or not wanted:
        raise ValueError(f"dtypes must be a non-empty choice of torch.float32 / torch.float64, got {wanted}")
    for name, value in (("backward", backward), ("background", background)):
        if not isinstance(value, bool):
            raise TypeError(f"{name} must be a bool, got {type(value).__name__} {value!r}")
    require()
    charges, codes = _needs(modules)
    if not backward:
        codes = set()
    if not background:
        _compile(charges, codes, wanted)
        return None
    thread = threading.Thread(
        target=_compile, args=(charges, codes, wanted), name="snnlab-cpu-warm-up", daemon=True
    )
    thread.start()
    return thread
