"""Registry of learning rules: a name (SPAIC's spelling) -> learner class.

``create(name, step_mode, synapse, sn, **params)`` builds a learner attached to
``synapse`` (the layer whose weight learns) and ``sn`` (the module whose output
is the post-synaptic spike tensor).
"""

from __future__ import annotations

from typing import Any

from torch import nn

#: Learner classes by registry key.
learning_algorithms: dict[str, type] = {}


def register(name: str, cls: type) -> type:
    """Register ``cls`` under ``name``; ``ValueError`` if ``name`` is taken. Returns ``cls``."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"name must be a non-empty str, got {name!r}")
    if not isinstance(cls, type):
        raise TypeError(f"cls must be a class, got {type(cls).__name__} {cls!r}")
    if name in learning_algorithms:
        raise ValueError(
            f"name={name!r} is already registered to {learning_algorithms[name].__name__}; "
            "choose another name"
        )
    learning_algorithms[name] = cls
    return cls


def create(name: str, step_mode: str, synapse: nn.Module, sn: nn.Module, **params: Any) -> Any:
    """Build the learner registered as ``name``: ``cls(step_mode, synapse, sn, **params)``."""
    if name not in learning_algorithms:
        raise ValueError(
            f"name={name!r} is not a registered learning algorithm; known: {sorted(learning_algorithms)}"
        )
    return learning_algorithms[name](step_mode, synapse, sn, **params)
