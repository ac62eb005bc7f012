"""snnlab: an interactive lab for spiking neural networks.

Engine modules (``snnlab.neuron``, ``snnlab.surrogate``, ``snnlab.functional``,
``snnlab.kernels``, ``snnlab.monitor``, ``snnlab.encoding``, ``snnlab.base``)
keep SpikingJelly's public names, so ``from snnlab import neuron, surrogate,
functional`` ports SpikingJelly code by changing the import. Submodules load
on first access; ``import snnlab`` never imports a UI library or CuPy.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_SUBMODULES = (
    "base",
    "dashboards",
    "encoding",
    "functional",
    "kernels",
    "lab",
    "layer",
    "learning",
    "monitor",
    "neuron",
    "surrogate",
    "viz",
)

__all__ = ["__version__", *_SUBMODULES]


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        module = importlib.import_module(f".{name}", __name__)
        globals()[name] = module
        return module
    raise AttributeError(f"module 'snnlab' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_SUBMODULES))
