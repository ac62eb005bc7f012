"""The ``'cpu'`` entries of the :mod:`snnlab.kernels` dispatch table (reference 003 kernels).

Each function here has the positional signature of the public kernel it
serves (already-validated arguments, see :mod:`snnlab.kernels.lif` and
:mod:`snnlab.kernels.integrate_fire`) and returns the same tensors, computed
by the fused loops with the kernels' own charge formulas (charge modes 0, 4
and 5 of :mod:`.params`). float16 / bfloat16 tensors go to the torch
reference. :func:`register` installs them; it is a no-op without numba.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np
import torch

from .. import dispatch
from . import available, ops
from .params import CHARGE_IF, CHARGE_KERNEL, CHARGE_KERNEL_DETACH, pack

_NP = {torch.float32: np.float32, torch.float64: np.float64}


def _lif(reciprocal_tau: float, detach_input: bool) -> tuple[int, float, float, float]:
    """``(mode, constant, dH/dX, dH/dV)`` of the kernels' LIF charge."""
    mode = CHARGE_KERNEL_DETACH if detach_input else CHARGE_KERNEL
    return mode, reciprocal_tau, (1.0 if detach_input else reciprocal_tau), 1.0 - reciprocal_tau


_IF = (CHARGE_IF, 1.0, 1.0, 1.0)


def _as_seq(x: torch.Tensor, v: torch.Tensor, single: bool) -> tuple[torch.Tensor, torch.Tensor]:
    steps = 1 if single else x.shape[0]
    return x.detach().reshape(steps, -1).contiguous(), v.detach().reshape(-1).contiguous()


def _fwd(name: str, single: bool, charge: Callable, with_grad: bool, soft: bool) -> Callable:
    reference = dispatch.reference_kernel(name)

    def kernel(x: torch.Tensor, v: torch.Tensor, v_threshold: float, *args):
        if x.dtype not in _NP or x.numel() == 0:
            return reference(x, v, v_threshold, *args)
        v_reset = None if soft else args[0]
        rest = args if soft else args[1:]
        if with_grad:
            alpha, detach_reset, index, *charge_args = rest
        else:
            alpha, detach_reset, index, charge_args = 1.0, False, 0, rest
        mode, constant, dh_dx, dh_dv = charge(*charge_args)
        p = pack(_NP[x.dtype], v_threshold, v_reset, constant, dh_dx, dh_dv, index, alpha)
        x2, v0 = _as_seq(x, v, single)
        if with_grad:
            spike, v_next, gsh, gvh = ops.forward_with_grads(x2, v0, p, mode, soft, index, detach_reset)
            return spike.view(x.shape), v_next.view(v.shape), gsh.view(x.shape), gvh.view(x.shape)
        spike, v_next, _, _ = ops.forward(x2, v0, p, mode, soft)
        return spike.view(x.shape), v_next.view(v.shape)

    kernel.__name__ = f"cpu_{name}"
    kernel.__doc__ = f"Fused CPU form of ``{name}`` (same arguments and outputs)."
    return kernel


def _bwd(name: str, single: bool, charge: Callable) -> Callable:
    reference = dispatch.reference_kernel(name)

    def kernel(grad_spike, grad_v_next, grad_s_to_h, grad_v_to_h, *charge_args):
        dtype = grad_spike.dtype
        tensors = (grad_spike, grad_v_next, grad_s_to_h, grad_v_to_h)
        if dtype not in _NP or grad_spike.numel() == 0 or any(t.dtype != dtype for t in tensors):
            return reference(grad_spike, grad_v_next, grad_s_to_h, grad_v_to_h, *charge_args)
        _, _, dh_dx, dh_dv = charge(*charge_args)
        p = pack(_NP[dtype], 0.0, 0.0, 1.0, dh_dx, dh_dv, 0, 1.0)
        steps = 1 if single else grad_spike.shape[0]
        seq = [t.detach().reshape(steps, -1).contiguous() for t in (grad_spike, grad_s_to_h, grad_v_to_h)]
        grad_x, grad_v = ops.backward_from_grads(
            seq[0], grad_v_next.detach().reshape(-1).contiguous(), seq[1], seq[2], p
        )
        return grad_x.view(grad_spike.shape), grad_v.view(grad_v_next.shape)

    kernel.__name__ = f"cpu_{name}"
    kernel.__doc__ = f"Fused CPU form of ``{name}`` (same arguments and outputs)."
    return kernel


def _if_charge() -> tuple[int, float, float, float]:
    return _IF


@functools.cache
def kernels() -> dict[str, Callable]:
    """Kernel name -> fused CPU implementation (built once)."""
    table: dict[str, Callable] = {}
    for prefix, charge in (("LIF", _lif), ("IF", _if_charge)):
        for reset, soft in (("hard", False), ("soft", True)):
            for form, single in (("forward", True), ("fptt", False)):
                for suffix, with_grad in (("", False), ("_with_grad", True)):
                    name = f"{prefix}_{reset}_reset_{form}{suffix}"
                    table[name] = _fwd(name, single, charge, with_grad, soft)
        table[f"{prefix}_backward"] = _bwd(f"{prefix}_backward", True, charge)
        table[f"{prefix}_bptt"] = _bwd(f"{prefix}_bptt", False, charge)
    return table


def register() -> bool:
    """Install the fused kernels for ``'cpu'`` tensors; ``False`` (nothing done) without numba."""
    if not available():
        return False
    for name, fn in kernels().items():
        dispatch.register_kernel(name, "cpu", fn)
    return True


def unregister() -> None:
    """Remove the ``'cpu'`` entries (the torch reference serves CPU tensors again)."""
    for name in kernels():
        dispatch.unregister_kernel(name, "cpu")
