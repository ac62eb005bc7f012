"""Plasticity: SpikingJelly's STDP / mSTDP / mSTDP-ET and SPAIC's learning rules.

Every learner is attached to a synapse layer (whose ``weight`` learns) and a
spiking module (whose output is the post-synaptic spike tensor), records both
with forward hooks, and exposes ``step`` / ``reset`` / ``enable`` / ``disable``.
``create(name, step_mode, synapse, sn, **params)`` builds one by registry key.
"""

from .conv_stdp import *  # noqa: F403
from .hooked import *  # noqa: F403
from .integer_stdp import *  # noqa: F403
from .online_stdp import *  # noqa: F403
from .optim import *  # noqa: F403
from .registry import create as create
from .registry import learning_algorithms as learning_algorithms
from .registry import register as register
from .reward_stdp import *  # noqa: F403
from .stdp import *  # noqa: F403
from .tempotron import *  # noqa: F403
