"""Fused neuron kernels with SpikingJelly's ``cext.neuron`` API (reference 003).

* ``*_template`` -- generic hard/soft-reset, single/multi-step forward,
  forward-with-gradients, backward and BPTT for any charge function
  (:mod:`.templates`);
* ``LIF_*`` and ``IF_*`` kernels (:mod:`.lif`, :mod:`.integrate_fire`), each
  behind the dispatch table of :mod:`.dispatch` so a faster implementation
  per device type can be registered without touching callers;
* autograd Functions ``LIFStep``, ``LIFMultiStep``, ``IFStep``,
  ``IFMultiStep`` (:mod:`.functions`);
* modules ``BaseNode``, ``LIFNode``, ``MultiStepLIFNode``, ``IFNode``,
  ``MultiStepIFNode`` (:mod:`.nodes`).

The implementations here are plain torch (CPU and CUDA tensors, float32 and
float64) and are the reference every faster kernel is tested against.
Surrogate gradient index 0 is ATan, 1 is Sigmoid (:mod:`snnlab.surrogate`).
"""

from __future__ import annotations

from .core import if_charge, lif_charge
from .dispatch import get_kernel, kernel_names, reference_kernel, register_kernel, unregister_kernel
from .functions import IFMultiStep, IFStep, LIFMultiStep, LIFStep
from .integrate_fire import (
    IF_backward,
    IF_bptt,
    IF_hard_reset_forward,
    IF_hard_reset_forward_with_grad,
    IF_hard_reset_fptt,
    IF_hard_reset_fptt_with_grad,
    IF_soft_reset_forward,
    IF_soft_reset_forward_with_grad,
    IF_soft_reset_fptt,
    IF_soft_reset_fptt_with_grad,
)
from .lif import (
    LIF_backward,
    LIF_bptt,
    LIF_hard_reset_forward,
    LIF_hard_reset_forward_with_grad,
    LIF_hard_reset_fptt,
    LIF_hard_reset_fptt_with_grad,
    LIF_soft_reset_forward,
    LIF_soft_reset_forward_with_grad,
    LIF_soft_reset_fptt,
    LIF_soft_reset_fptt_with_grad,
)
from .nodes import BaseNode, IFNode, LIFNode, MultiStepIFNode, MultiStepLIFNode, surrogate_function_dict
from .templates import (
    backward_template,
    bptt_template,
    hard_reset_forward_template,
    hard_reset_forward_with_grad_template,
    hard_reset_fptt_template,
    hard_reset_fptt_with_grad_template,
    soft_reset_forward_template,
    soft_reset_forward_with_grad_template,
    soft_reset_fptt_template,
    soft_reset_fptt_with_grad_template,
)

__all__ = [
    "BaseNode",
    "IFMultiStep",
    "IFNode",
    "IFStep",
    "IF_backward",
    "IF_bptt",
    "IF_hard_reset_forward",
    "IF_hard_reset_forward_with_grad",
    "IF_hard_reset_fptt",
    "IF_hard_reset_fptt_with_grad",
    "IF_soft_reset_forward",
    "IF_soft_reset_forward_with_grad",
    "IF_soft_reset_fptt",
    "IF_soft_reset_fptt_with_grad",
    "LIFMultiStep",
    "LIFNode",
    "LIFStep",
    "LIF_backward",
    "LIF_bptt",
    "LIF_hard_reset_forward",
    "LIF_hard_reset_forward_with_grad",
    "LIF_hard_reset_fptt",
    "LIF_hard_reset_fptt_with_grad",
    "LIF_soft_reset_forward",
    "LIF_soft_reset_forward_with_grad",
    "LIF_soft_reset_fptt",
    "LIF_soft_reset_fptt_with_grad",
    "MultiStepIFNode",
    "MultiStepLIFNode",
    "backward_template",
    "bptt_template",
    "get_kernel",
    "hard_reset_forward_template",
    "hard_reset_forward_with_grad_template",
    "hard_reset_fptt_template",
    "hard_reset_fptt_with_grad_template",
    "if_charge",
    "kernel_names",
    "lif_charge",
    "reference_kernel",
    "register_kernel",
    "soft_reset_forward_template",
    "soft_reset_forward_with_grad_template",
    "soft_reset_fptt_template",
    "soft_reset_fptt_with_grad_template",
    "surrogate_function_dict",
    "unregister_kernel",
]

# CUDA tensors: route the kernels above to the CuPy kernels when CuPy is installed (imports no CuPy itself).
from . import cuda as cuda

# CPU tensors: route the kernels above to the fused numba loops (``snnlab.kernels.cpu``). Registering
# imports neither numba nor the loops; the first call of a kernel does. Without numba it is a no-op.
from .cpu import dispatch_kernels as _cpu_kernels

_cpu_kernels.register()
