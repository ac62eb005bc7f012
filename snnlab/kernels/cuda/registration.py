"""Plug the CuPy kernels into :mod:`snnlab.kernels.dispatch` for CUDA tensors.

After :func:`register_kernels`, the reference-003 functions
(``LIF_hard_reset_fptt``, ``IF_bptt``, ...) and so the autograd Functions
and nodes of :mod:`snnlab.kernels` run the kernels of ``neuron.cu`` on CUDA
tensors of dtype float16, bfloat16, float32 or float64, and the plain-torch
reference for any other dtype. Each implementation receives the public
function's already-validated positional arguments.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..dispatch import reference_kernel, register_kernel, unregister_kernel
from .neuron_ops import CHARGE_IF, CHARGE_LIF, CHARGE_LIF_UNSCALED, NeuronParams, bptt, neuron_forward
from .source_files import DTYPE_SUFFIXES

__all__ = ["register_kernels", "registered_kernels", "unregister_kernels"]

DEVICE_TYPE = "cuda"


def _lif_charge(detach_input: bool) -> int:
    return CHARGE_LIF_UNSCALED if detach_input else CHARGE_LIF


def _fptt(x_seq: torch.Tensor, v: torch.Tensor, params: NeuronParams, with_partials: bool):
    out = neuron_forward(x_seq, v, params, with_partials=with_partials)
    if with_partials:
        return out["spike_seq"], out["v_last"], out["grad_s_to_h"], out["grad_v_to_h"]
    return out["spike_seq"], out["v_last"]


def _step(x: torch.Tensor, v: torch.Tensor, params: NeuronParams, with_partials: bool):
    spike_seq, v_next, *partials = _fptt(x.unsqueeze(0), v, params, with_partials)
    return (spike_seq[0], v_next, *(p[0] for p in partials))


def _lif_hard(multi: bool, with_grad: bool) -> Callable:
    run = _fptt if multi else _step
    if with_grad:

        def fn(x, v, v_threshold, v_reset, alpha, detach_reset, index, reciprocal_tau, detach_input):
            p = NeuronParams(
                v_threshold, v_reset, _lif_charge(detach_input), reciprocal_tau, alpha, index, detach_reset
            )
            return run(x, v, p, True)

        return fn

    def fn_plain(x, v, v_threshold, v_reset, reciprocal_tau, detach_input):
        return run(x, v, NeuronParams(v_threshold, v_reset, _lif_charge(detach_input), reciprocal_tau), False)

    return fn_plain


def _lif_soft(multi: bool, with_grad: bool) -> Callable:
    run = _fptt if multi else _step
    if with_grad:

        def fn(x, v, v_threshold, alpha, detach_reset, index, reciprocal_tau, detach_input):
            p = NeuronParams(
                v_threshold, None, _lif_charge(detach_input), reciprocal_tau, alpha, index, detach_reset
            )
            return run(x, v, p, True)

        return fn

    def fn_plain(x, v, v_threshold, reciprocal_tau, detach_input):
        return run(x, v, NeuronParams(v_threshold, None, _lif_charge(detach_input), reciprocal_tau), False)

    return fn_plain


def _if_hard(multi: bool, with_grad: bool) -> Callable:
    run = _fptt if multi else _step
    if with_grad:

        def fn(x, v, v_threshold, v_reset, alpha, detach_reset, index):
            p = NeuronParams(v_threshold, v_reset, CHARGE_IF, 1.0, alpha, index, detach_reset)
            return run(x, v, p, True)

        return fn

    def fn_plain(x, v, v_threshold, v_reset):
        return run(x, v, NeuronParams(v_threshold, v_reset, CHARGE_IF), False)

    return fn_plain


def _if_soft(multi: bool, with_grad: bool) -> Callable:
    run = _fptt if multi else _step
    if with_grad:

        def fn(x, v, v_threshold, alpha, detach_reset, index):
            p = NeuronParams(v_threshold, None, CHARGE_IF, 1.0, alpha, index, detach_reset)
            return run(x, v, p, True)

        return fn

    def fn_plain(x, v, v_threshold):
        return run(x, v, NeuronParams(v_threshold, None, CHARGE_IF), False)

    return fn_plain


def _backward_one(grad_spike, grad_v_next, grad_s_to_h, grad_v_to_h, h_to_x, h_to_v):
    grad_x, grad_v = bptt(
        grad_spike.unsqueeze(0),
        grad_v_next,
        grad_s_to_h.unsqueeze(0),
        grad_v_to_h.unsqueeze(0),
        h_to_x,
        h_to_v,
    )
    return grad_x[0], grad_v


def _lif_partials(reciprocal_tau: float, detach_input: bool) -> tuple[float, float]:
    return (1.0 if detach_input else reciprocal_tau), 1.0 - reciprocal_tau


def _implementations() -> dict[str, Callable]:
    table: dict[str, Callable] = {}
    for multi, form in ((False, "forward"), (True, "fptt")):
        for with_grad, suffix in ((False, ""), (True, "_with_grad")):
            table[f"LIF_hard_reset_{form}{suffix}"] = _lif_hard(multi, with_grad)
            table[f"LIF_soft_reset_{form}{suffix}"] = _lif_soft(multi, with_grad)
            table[f"IF_hard_reset_{form}{suffix}"] = _if_hard(multi, with_grad)
            table[f"IF_soft_reset_{form}{suffix}"] = _if_soft(multi, with_grad)
    table["LIF_backward"] = lambda gs, gv, gsh, gvh, rtau, di: _backward_one(
        gs, gv, gsh, gvh, *_lif_partials(rtau, di)
    )
    table["LIF_bptt"] = lambda gs, gv, gsh, gvh, rtau, di: bptt(gs, gv, gsh, gvh, *_lif_partials(rtau, di))
    table["IF_backward"] = lambda gs, gv, gsh, gvh: _backward_one(gs, gv, gsh, gvh, 1.0, 1.0)
    table["IF_bptt"] = lambda gs, gv, gsh, gvh: bptt(gs, gv, gsh, gvh, 1.0, 1.0)
    return table


def _with_fallback(name: str, fn: Callable) -> Callable:
    """``fn`` for the kernels' dtypes, the reference for any other (e.g. float8)."""
    reference = reference_kernel(name)

    def dispatch(*args):
        if args[0].dtype in DTYPE_SUFFIXES:
            return fn(*args)
        return reference(*args)

    dispatch.__name__ = f"cupy_{name}"
    dispatch.__doc__ = f"CuPy implementation of ``{name}`` (reference for dtypes without a kernel)."
    return dispatch


def registered_kernels() -> tuple[str, ...]:
    """Names of the reference-003 kernels this package implements."""
    return tuple(sorted(_implementations()))


def register_kernels() -> tuple[str, ...]:
    """Register the CuPy implementations under device type ``'cuda'``; returns their names.

    Does not import CuPy: it is imported at the first launch.
    """
    table = _implementations()
    for name, fn in table.items():
        register_kernel(name, DEVICE_TYPE, _with_fallback(name, fn))
    return tuple(sorted(table))


def unregister_kernels() -> None:
    """Remove the ``'cuda'`` entries again (CUDA tensors then use the torch reference)."""
    for name in _implementations():
        unregister_kernel(name, DEVICE_TYPE)
