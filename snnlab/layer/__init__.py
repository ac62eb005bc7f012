"""Step-mode layers, containers and online-learning (OTTT) layers.

Every layer keeps SpikingJelly's ``activation_based.layer`` name and
constructor signature. ``step_mode='s'`` takes one step ``[N, ...]``,
``step_mode='m'`` a sequence ``[T, N, ...]``. Submodules:

* :mod:`.containers` -- ``MultiStepContainer``, ``SeqToANNContainer``, ``StepModeContainer``;
* :mod:`.wrappers` -- stateless torch layers with a step mode (``Conv2d``, ``BatchNorm2d``, ...);
* :mod:`.normalization` -- ``NeuNorm``, tdBN, TEBN;
* :mod:`.dropout` -- ``Dropout``, ``Dropout2d``, ``DropConnectLinear``;
* :mod:`.temporal` -- ``SynapseFilter``, ``Delay``;
* :mod:`.recurrent` -- ``ElementWiseRecurrentContainer``, ``LinearRecurrentContainer``;
* :mod:`.attention` -- ``TemporalWiseAttention``, ``MultiDimensionalAttention``;
* :mod:`.misc` -- ``VotingLayer``, ``PrintShapeModule``;
* :mod:`.weight_standardization` -- ``WSConv2d``, ``WSLinear``;
* :mod:`.online_learning` -- ``ReplaceforGrad``, ``GradwithTrace``, ``SpikeTraceOp``, ``OTTTSequential``.
"""

from __future__ import annotations

from . import online_learning
from .attention import MultiDimensionalAttention, TemporalWiseAttention
from .containers import MultiStepContainer, SeqToANNContainer, StepModeContainer
from .dropout import DropConnectLinear, Dropout, Dropout2d
from .misc import PrintShapeModule, VotingLayer
from .normalization import (
    NeuNorm,
    TemporalEffectiveBatchNorm1d,
    TemporalEffectiveBatchNorm2d,
    TemporalEffectiveBatchNorm3d,
    TemporalEffectiveBatchNormNd,
    ThresholdDependentBatchNorm1d,
    ThresholdDependentBatchNorm2d,
    ThresholdDependentBatchNorm3d,
)
from .online_learning import GradwithTrace, OTTTSequential, ReplaceforGrad, SpikeTraceOp
from .recurrent import ElementWiseRecurrentContainer, LinearRecurrentContainer
from .temporal import Delay, SynapseFilter
from .weight_standardization import WSConv2d, WSLinear
from .wrappers import (
    AdaptiveAvgPool1d,
    AdaptiveAvgPool2d,
    AdaptiveAvgPool3d,
    AvgPool1d,
    AvgPool2d,
    AvgPool3d,
    BatchNorm1d,
    BatchNorm2d,
    BatchNorm3d,
    Conv1d,
    Conv2d,
    Conv3d,
    ConvTranspose1d,
    ConvTranspose2d,
    ConvTranspose3d,
    Flatten,
    GroupNorm,
    Linear,
    MaxPool1d,
    MaxPool2d,
    MaxPool3d,
    StepModeWrapper,
    Upsample,
)

__all__ = [
    "AdaptiveAvgPool1d",
    "AdaptiveAvgPool2d",
    "AdaptiveAvgPool3d",
    "AvgPool1d",
    "AvgPool2d",
    "AvgPool3d",
    "BatchNorm1d",
    "BatchNorm2d",
    "BatchNorm3d",
    "Conv1d",
    "Conv2d",
    "Conv3d",
    "ConvTranspose1d",
    "ConvTranspose2d",
    "ConvTranspose3d",
    "Delay",
    "DropConnectLinear",
    "Dropout",
    "Dropout2d",
    "ElementWiseRecurrentContainer",
    "Flatten",
    "GradwithTrace",
    "GroupNorm",
    "Linear",
    "LinearRecurrentContainer",
    "MaxPool1d",
    "MaxPool2d",
    "MaxPool3d",
    "MultiDimensionalAttention",
    "MultiStepContainer",
    "NeuNorm",
    "OTTTSequential",
    "PrintShapeModule",
    "ReplaceforGrad",
    "SeqToANNContainer",
    "SpikeTraceOp",
    "StepModeContainer",
    "StepModeWrapper",
    "SynapseFilter",
    "TemporalEffectiveBatchNorm1d",
    "TemporalEffectiveBatchNorm2d",
    "TemporalEffectiveBatchNorm3d",
    "TemporalEffectiveBatchNormNd",
    "TemporalWiseAttention",
    "ThresholdDependentBatchNorm1d",
    "ThresholdDependentBatchNorm2d",
    "ThresholdDependentBatchNorm3d",
    "Upsample",
    "VotingLayer",
    "WSConv2d",
    "WSLinear",
    "online_learning",
]
