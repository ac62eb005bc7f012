r"""The ``'cpu'`` backend of :class:`snnlab.neuron.IFNode` and :class:`snnlab.neuron.LIFNode`.

:func:`multi_step` (``x_seq`` ``[T, N, ...]``) and :func:`single_step`
(``x`` ``[N, ...]``) run the node's dynamics with the fused loops and leave
the node as the torch path does (``v`` ``[N, ...]``, ``v_seq``
``[T, N, ...]`` when ``store_v_seq``). They cover exactly the node's own
equations (see :mod:`snnlab.neuron`):

* IF: :math:`H = V + X`; LIF with or without ``decay_input``, any ``v_reset``;
* hard or soft reset, ``detach_reset``, every surrogate of
  :data:`snnlab.surrogate.SURROGATES` (in spiking mode) with its ``alpha``;
* float32 and float64 CPU tensors, with autograd through
  :class:`~snnlab.kernels.cpu.autograd.FusedNeuronFunction` when the input or
  the state requires grad.

Anything else (a subclass that changes the dynamics, another surrogate,
float16, ``v`` of another dtype, an empty input) returns ``NotImplemented``
and the node runs the torch reference. Without numba they raise
``ImportError`` with the install command.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ... import surrogate
from . import ops, require
from .autograd import FusedNeuronFunction
from .params import (
    CHARGE_DIV,
    CHARGE_IF,
    CHARGE_KEEP,
    CHARGE_LEAK_DIV,
    SURROGATE_CODES,
    flags,
    pack,
)

_DTYPES = {torch.float32: np.float32, torch.float64: np.float64}
_CACHE = "_cpu_fused_config"


class _Config:
    """Packed parameters of one node configuration, per dtype and per save switches."""

    def __init__(self, charge: int, node: Any, code: int, alpha: float, tau: float | None) -> None:
        v_reset = node.v_reset
        if charge == CHARGE_IF:
            constant, dh_dx, dh_dv = 1.0, 1.0, 1.0
        elif charge == CHARGE_KEEP:
            constant, dh_dx, dh_dv = 1.0 - 1.0 / tau, 1.0, 1.0 - 1.0 / tau
        elif charge == CHARGE_DIV:
            constant, dh_dx, dh_dv = tau, 1.0 / tau, 1.0 - 1.0 / tau
        else:
            constant, dh_dx, dh_dv = tau, 1.0, 1.0 - 1.0 / tau
        args = (node.v_threshold, v_reset, constant, dh_dx, dh_dv, code, alpha)
        self.p = {dt: pack(npdt, *args) for dt, npdt in _DTYPES.items()}
        soft = v_reset is None
        base = (charge, soft, code, node.detach_reset)
        self.fwd = {
            (save_h, save_v): flags(*base, save_h=save_h, save_v=save_v)
            for save_h in (False, True)
            for save_v in (False, True)
        }
        self.bwd = flags(*base)


def _charge_mode(node: Any) -> tuple[int, float | None] | None:
    from ...neuron import IFNode, LIFNode

    cls = type(node)
    if cls.neuronal_charge is IFNode.neuronal_charge:
        return CHARGE_IF, None
    if cls.neuronal_charge is LIFNode.neuronal_charge:
        tau = node.tau
        v_reset = 0.0 if node.v_reset is None else node.v_reset
        if node.decay_input:
            return CHARGE_DIV, tau
        return (CHARGE_KEEP if v_reset == 0.0 else CHARGE_LEAK_DIV), tau
    return None


def _same_dynamics(cls: type) -> bool:
    from ...neuron import BaseNode

    return all(
        getattr(cls, name) is getattr(BaseNode, name)
        for name in ("neuronal_fire", "neuronal_reset", "v_float_to_tensor", "_multi_step_torch")
    )


def config(node: Any) -> _Config | None:
    """The packed configuration of ``node``, or ``None`` if the fused loops do not cover it (cached)."""
    sf = node.surrogate_function
    sf_cls = type(sf)
    key = (
        node.v_threshold,
        node.v_reset,
        node.detach_reset,
        node.__dict__.get("tau"),
        node.__dict__.get("decay_input"),
        sf_cls,
        getattr(sf, "alpha", None),
        getattr(sf, "spiking", None),
    )
    cached = node.__dict__.get(_CACHE)
    if cached is not None and cached[0] == key:
        return cached[1]
    cfg = None
    code = SURROGATE_CODES.get(sf_cls.__name__)
    if (
        code is not None
        and surrogate.SURROGATES[sf_cls.__name__] is sf_cls
        and sf.spiking
        and _same_dynamics(type(node))
    ):
        mode = _charge_mode(node)
        if mode is not None:
            cfg = _Config(mode[0], node, code, sf.alpha, mode[1])
    object.__setattr__(node, _CACHE, (key, cfg))
    return cfg


def _run(node: Any, x: torch.Tensor, n_steps: int, store_v_seq: bool, name: str) -> Any:
    require()
    if x.device.type != "cpu":
        raise ValueError(
            f"backend='cpu' runs CPU tensors, got {name} on {x.device}; "
            f"use backend='auto' (or 'torch') for {x.device.type} tensors"
        )
    if x.dtype not in _DTYPES or x.numel() == 0:
        return NotImplemented
    cfg = config(node)
    if cfg is None:
        return NotImplemented
    state_like = x if n_steps == 0 else x[0]
    node.v_float_to_tensor(state_like)
    v = node.v
    if v.dtype != x.dtype or v.device != x.device:
        return NotImplemented
    steps = 1 if n_steps == 0 else n_steps
    x2 = x.reshape(steps, -1)
    if not x2.is_contiguous():
        x2 = x2.contiguous()
    v0 = v.reshape(-1)
    if not v0.is_contiguous():
        v0 = v0.contiguous()
    p = cfg.p[x.dtype]
    if torch.is_grad_enabled() and (x.requires_grad or v.requires_grad):
        fwd = cfg.fwd[(True, store_v_seq)]
        spike, v_last, v_seq = FusedNeuronFunction.apply(x2, v0, p, fwd, cfg.bwd, store_v_seq)
    else:
        fwd = cfg.fwd[(False, store_v_seq)]
        spike, v_last, _, v_seq = ops.forward(
            x2.detach(), v0.detach(), p, fwd, save_v=store_v_seq
        )
    node.v = v_last.view(v.shape)
    if store_v_seq:
        node.v_seq = v_seq.view(x.shape)
    return spike.view(x.shape)


def multi_step(node: Any, x_seq: torch.Tensor) -> Any:
    """``T`` steps of ``node``: ``x_seq`` ``[T, N, ...]`` -> spikes ``[T, N, ...]`` or ``NotImplemented``."""
    return _run(node, x_seq, x_seq.shape[0], node.store_v_seq, "x_seq")


def single_step(node: Any, x: torch.Tensor) -> Any:
    """One step of ``node`` on ``x`` ``[N, ...]`` -> spikes ``[N, ...]`` (or ``NotImplemented``)."""
    return _run(node, x, 0, False, "x")
