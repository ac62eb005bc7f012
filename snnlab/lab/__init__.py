"""Live experiments: networks you step, steer and read frames from (UI-free).

:class:`Experiment` is the contract every UI codes against (see
:mod:`snnlab.lab.experiment`); the ready-made experiments are
:class:`NeuronExplorer`, :class:`PopulationRaster`, :class:`STDPWindow`,
:class:`STDPLearning` and :class:`RewardLearning`. This package imports
``param``, ``numpy`` and ``torch`` only.
"""

from __future__ import annotations

from .experiment import Experiment
from .experiments import (
    NeuronExplorer,
    PopulationRaster,
    RewardLearning,
    STDPLearning,
    STDPWindow,
)
from .recorders import EventRing, PointRing, RingBuffer, SeriesRing, SnapshotRing, TraceRing

__all__ = [
    "EventRing",
    "Experiment",
    "NeuronExplorer",
    "PointRing",
    "PopulationRaster",
    "RewardLearning",
    "RingBuffer",
    "STDPLearning",
    "STDPWindow",
    "SeriesRing",
    "SnapshotRing",
    "TraceRing",
]
