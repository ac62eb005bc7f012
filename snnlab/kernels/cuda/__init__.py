"""CuPy CUDA kernels for the fused neurons and plasticity rules (``backend='cupy'``).

* ``neuron.cu``: IF / LIF neurons (hard and soft reset, ``decay_input``,
  ``detach_reset``, every surrogate of :data:`SURROGATE_NAMES`), one launch
  per multi-step call with time as the inner loop, forward and BPTT backward,
  float16 / bfloat16 (float32 registers) / float32 / float64;
* ``plasticity.cu``: one pass over the weight per step for STDP and mSTDP
  eligibility (trace decay and both outer products fused).

Python side: :func:`require_cupy` (raises :class:`CuPyUnavailableError` saying
what to install), autograd Functions (:class:`NeuronMultiStep`,
:class:`NeuronStep` and the reference-003 signatures :class:`LIFMultiStep`,
:class:`LIFStep`, :class:`IFMultiStep`, :class:`IFStep`), the node backend
:func:`node_multi_step`, the plasticity steps :func:`stdp_linear_step` and
:func:`mstdp_linear_step`, and :func:`register_kernels`, which makes
:mod:`snnlab.kernels`' reference-003 functions use these kernels for CUDA
tensors (called on import when CuPy is installed).

Importing this package never imports CuPy; the first launch does.
"""

from __future__ import annotations

from .neuron_ops import (
    CHARGE_IF,
    CHARGE_LIF,
    CHARGE_LIF_UNSCALED,
    SURROGATE_NAMES,
    IFMultiStep,
    IFStep,
    LIFMultiStep,
    LIFStep,
    NeuronMultiStep,
    NeuronParams,
    NeuronStep,
    bptt,
    neuron_backward,
    neuron_forward,
    node_multi_step,
    node_params,
    surrogate_index,
)
from .plasticity_ops import mstdp_linear_step, stdp_linear_step
from .registration import register_kernels, registered_kernels, unregister_kernels
from .runtime import CuPyUnavailableError, cupy_installed, from_cupy, is_available, require_cupy, to_cupy
from .source_files import DTYPE_SUFFIXES, KERNELS, entry_points, source, sources

__all__ = [
    "CHARGE_IF",
    "CHARGE_LIF",
    "CHARGE_LIF_UNSCALED",
    "DTYPE_SUFFIXES",
    "KERNELS",
    "SURROGATE_NAMES",
    "CuPyUnavailableError",
    "IFMultiStep",
    "IFStep",
    "LIFMultiStep",
    "LIFStep",
    "NeuronMultiStep",
    "NeuronParams",
    "NeuronStep",
    "bptt",
    "cupy_installed",
    "entry_points",
    "from_cupy",
    "is_available",
    "mstdp_linear_step",
    "neuron_backward",
    "neuron_forward",
    "node_multi_step",
    "node_params",
    "register_kernels",
    "registered_kernels",
    "require_cupy",
    "source",
    "sources",
    "stdp_linear_step",
    "surrogate_index",
    "to_cupy",
    "unregister_kernels",
]

if cupy_installed():
    register_kernels()
