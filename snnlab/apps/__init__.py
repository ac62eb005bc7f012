"""The served apps: one module per app, each with a ``create(**options) -> Dashboard`` factory.

Each module ends with the ``.servable()`` idiom, so it also runs as
``panel serve snnlab/apps/<module>.py``; each module sets ``pn.config.inline = True``
when imported, so that plain command already serves everything from the server (offline).
URL names map to modules (``stdp-window`` → :mod:`snnlab.apps.stdp_window`).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

__all__ = ["APPS", "DESCRIPTIONS", "factory"]

#: URL name -> module name
APPS: dict[str, str] = {
    "neuron": "neuron",
    "raster": "raster",
    "stdp-window": "stdp_window",
    "stdp": "stdp",
    "reward": "reward",
}

DESCRIPTIONS: dict[str, str] = {
    "neuron": "one IF / LIF / Izhikevich neuron under step, ramp or noisy current; f–I curve",
    "raster": "Poisson inputs driving a LIF population: live raster and membrane traces",
    "stdp-window": "pre/post pairing protocol: measured Δw against the rule's STDP window",
    "stdp": "unsupervised STDP on repeated patterns: weights become receptive fields",
    "reward": "reward-modulated STDP: teach a target neuron to win with +1 / −1 rewards",
}


def factory(name: str) -> Callable[..., Any]:
    """The ``create`` function of app ``name`` (a key of :data:`APPS`)."""
    if name not in APPS:
        raise ValueError(f"name must be one of {sorted(APPS)}, got {name!r}")
    module = importlib.import_module(f"{__name__}.{APPS[name]}")
    return module.create
