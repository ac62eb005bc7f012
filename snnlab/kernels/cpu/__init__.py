"""CPU fast path: fused IF / LIF kernels compiled with numba (``backend='cpu'``).

One call runs all ``T`` steps of a layer with ``V`` kept in cache, forward and
backward (BPTT inside one call), for float32 and float64 tensors; spikes
equal the torch reference bit for bit (see :mod:`.loops` for the equations).
Large calls are split over ``torch.get_num_threads()`` threads.

Nothing is compiled at install or import time. A call compiles only the
small loop it runs (one per charge mode forward, one per surrogate backward,
each ~0.3 s of CPU; the first one in a process also pays numba's ~0.4 s
start-up) and numba caches the machine code on disk (``cache=True``), so
later processes load it instead. ``import snnlab.neuron`` /
``import snnlab.kernels`` do not import numba; :func:`available` says whether
it can be imported, and :func:`load_loops` imports it on first use.

* :mod:`.params` -- packing of scalars for the loops;
* :mod:`.loops` -- the numba loops and their factories (imports numba);
* :mod:`.ops` -- torch-tensor wrappers (zero-copy views, output allocation, threads);
* :mod:`.buffers` -- recycled output buffers (first-touch allocation is slow; :func:`.buffers.release`);
* :mod:`.autograd` -- :class:`~.autograd.FusedNeuronFunction`, BPTT in one call;
* :mod:`.node_backend` -- the ``'cpu'`` backend of :class:`snnlab.neuron.IFNode` / ``LIFNode``;
* :mod:`.dispatch_kernels` -- the ``'cpu'`` entries of the ``snnlab.kernels`` dispatch table
  (registered by ``import snnlab.kernels``);
* :mod:`.warm` -- :func:`warm_up`, compiling a network's loops ahead of its first step.
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

__all__ = ["INSTALL_HINT", "available", "load_loops", "require", "warm_up"]

INSTALL_HINT = "the CPU fast path needs numba: pip install numba"

_state: dict[str, object] = {}


def available() -> bool:
    """Whether numba can be imported (checked once, without importing it)."""
    found = _state.get("available")
    if found is None:
        found = importlib.util.find_spec("numba") is not None
        _state["available"] = found
    return bool(found)


def require() -> None:
    """Raise ``ImportError`` with the install command when numba is missing."""
    if not available():
        raise ImportError(INSTALL_HINT)


def load_loops() -> ModuleType:
    """The compiled-loop module :mod:`.loops` (imports numba on the first call)."""
    module = _state.get("loops")
    if module is None:
        require()
        module = importlib.import_module(".loops", __name__)
        _state["loops"] = module
    return module  # type: ignore[return-value]


def warm_up(*args, **kwargs):  # type: ignore[no-untyped-def]
    """Compile the loops of a network's IF / LIF nodes ahead of time (see :func:`.warm.warm_up`)."""
    from .warm import warm_up as run

    return run(*args, **kwargs)
