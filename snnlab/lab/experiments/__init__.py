"""The ready-made experiments, one module each."""

from __future__ import annotations

from .neuron_explorer import NeuronExplorer
from .population_raster import PopulationRaster
from .reward_learning import RewardLearning
from .stdp_learning import STDPLearning
from .stdp_window import STDPWindow

__all__ = ["NeuronExplorer", "PopulationRaster", "RewardLearning", "STDPLearning", "STDPWindow"]
