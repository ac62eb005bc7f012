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

The node's configuration is resolved once into a :class:`Plan` (switches,
packed parameters per dtype, the compiled loop) kept on the node;
:func:`forget` drops it, and :class:`snnlab.neuron.BaseNode` calls it
whenever a parameter is assigned. The plan also notices an in-place change
of the surrogate's ``alpha`` or ``spiking``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ... import surrogate
from . import available, buffers, load_loops, ops, require
from .autograd import FusedNeuronFunction
from .params import CHARGE_DIV, CHARGE_IF, CHARGE_KEEP, CHARGE_LEAK_DIV, SURROGATE_CODES, pack

_DTYPES = {torch.float32: np.float32, torch.float64: np.float64}

#: Attribute of the node that holds its :class:`Plan` (or ``False`` when the loops do not cover it).
PLAN_ATTR = "_cpu_fused_plan"


class Plan:
    """Resolved fused configuration of one node: switches, ``p`` per dtype, the no-grad forward loops."""

    __slots__ = (
        "alpha", "charge", "code", "detach", "forward", "p", "sf", "soft", "spiking", "switches", "v", "v_np",
    )  # fmt: skip

    def __init__(self, node: Any, charge: int, tau: float | None, code: int) -> None:
        sf = node.surrogate_function
        v_reset = node.v_reset
        if charge == CHARGE_IF:
            constant, dh_dx, dh_dv = 1.0, 1.0, 1.0
        elif charge == CHARGE_KEEP:
            constant, dh_dx, dh_dv = 1.0 - 1.0 / tau, 1.0, 1.0 - 1.0 / tau
        elif charge == CHARGE_DIV:
            constant, dh_dx, dh_dv = tau, 1.0 / tau, 1.0 - 1.0 / tau
        else:
            constant, dh_dx, dh_dv = tau, 1.0, 1.0 - 1.0 / tau
        args = (node.v_threshold, v_reset, constant, dh_dx, dh_dv, code, sf.alpha)
        self.p = {dt: pack(npdt, *args) for dt, npdt in _DTYPES.items()}
        self.sf, self.alpha, self.spiking = sf, sf.alpha, sf.spiking
        self.charge, self.soft, self.code = charge, v_reset is None, code
        self.detach = bool(node.detach_reset)
        self.switches = (self.charge, self.soft, self.code, self.detach)
        self.forward: Any = None
        self.v: torch.Tensor | None = None  # the last ``v`` written by the lean single step
        self.v_np: np.ndarray | None = None  # and its NumPy view ``[N]``

    def current(self) -> bool:
        """Whether the surrogate still has the ``alpha`` / ``spiking`` the plan was built with."""
        sf = self.sf
        return sf.alpha == self.alpha and sf.spiking is self.spiking

    def forward_loop(self) -> Any:
        """The compiled forward loop of the node's charge mode."""
        fn = self.forward
        if fn is None:
            fn = self.forward = load_loops().forward_kernel(self.charge)
        return fn


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


def plan(node: Any) -> Plan | None:
    """The :class:`Plan` of ``node``, or ``None`` if the fused loops do not cover it (kept on the node)."""
    found = node.__dict__.get(PLAN_ATTR)
    if found is not None and (found is False or found.current()):
        return found or None
    result: Plan | bool = False
    sf = node.surrogate_function
    sf_cls = type(sf)
    code = SURROGATE_CODES.get(sf_cls.__name__)
    known = code is not None and surrogate.SURROGATES[sf_cls.__name__] is sf_cls
    if known and not sf.spiking:
        return None  # not cached: set_spiking_mode(True) may make it a spike again, in place
    if known and _same_dynamics(type(node)):
        mode = _charge_mode(node)
        if mode is not None:
            result = Plan(node, mode[0], mode[1], code)
    object.__setattr__(node, PLAN_ATTR, result)
    return result or None


def forget(node: Any) -> None:
    """Drop the cached plan of ``node`` (its parameters changed)."""
    node.__dict__.pop(PLAN_ATTR, None)


def _refuse_device(x: torch.Tensor, name: str) -> None:
    raise ValueError(
        f"backend='cpu' runs CPU tensors, got {name} on {x.device}; "
        f"use backend='auto' (or 'torch') for {x.device.type} tensors"
    )


def _state(node: Any, like: torch.Tensor) -> torch.Tensor:
    """``node.v`` as a tensor shaped like ``like``.

    A float ``v`` (the state after a reset) becomes a tensor of ``like``'s shape and dtype filled
    with it, as ``v_float_to_tensor`` makes it, but from the recycled buffers and without
    assigning it to the node: the call replaces ``node.v`` with its result anyway.
    """
    v = node.v
    if isinstance(v, float):
        return buffers.empty(like.shape, like.dtype).fill_(v)
    node.v_float_to_tensor(like)
    return node.v


def _run(node: Any, x: torch.Tensor, n_steps: int, store_v_seq: bool, name: str) -> Any:
    if not available():
        require()
    if not x.is_cpu:
        _refuse_device(x, name)
    cfg = plan(node)
    if cfg is None or x.dtype not in _DTYPES or x.numel() == 0:
        return NotImplemented
    v = _state(node, x if n_steps == 0 else x[0])
    if v.dtype != x.dtype or not v.is_cpu:
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
        spike, v_last, v_seq = FusedNeuronFunction.apply(x2, v0, p, cfg.switches, store_v_seq)
    else:
        spike, v_last, _, v_seq = ops.forward(
            x2.detach(), v0.detach(), p, cfg.charge, cfg.soft, save_v=store_v_seq
        )
    node.v = v_last.view(v.shape)
    if store_v_seq:
        node.v_seq = v_seq.view(x.shape)
    return spike.view(x.shape)


def multi_step(node: Any, x_seq: torch.Tensor) -> Any:
    """``T`` steps of ``node``: ``x_seq`` ``[T, N, ...]`` -> spikes ``[T, N, ...]`` or ``NotImplemented``."""
    return _run(node, x_seq, x_seq.shape[0], node.store_v_seq, "x_seq")


def single_step(node: Any, x: torch.Tensor) -> Any:
    """One step of ``node`` on ``x`` ``[N, ...]`` -> spikes ``[N, ...]`` (or ``NotImplemented``).

    Without autograd this is the lean path: the plan, the compiled loop, ``p`` and the NumPy
    view of ``v`` come from the node's plan, and the only allocations are the spikes and the
    new ``v`` (``[N, ...]``; ``v`` is never updated in place, so references to an earlier
    ``v`` keep their values).
    """
    cfg = node.__dict__.get(PLAN_ATTR)
    if not cfg or not cfg.current() or not x.is_cpu or x.requires_grad or not x.is_contiguous():
        return _run(node, x, 0, False, "x")
    p = cfg.p.get(x.dtype)
    v = node._memories["v"]
    if p is None or not isinstance(v, torch.Tensor) or v.dtype is not x.dtype or v.shape != x.shape:
        return _run(node, x, 0, False, "x")  # first step, new dtype or shape: the full path and its checks
    if v is cfg.v:
        v_np = cfg.v_np
    elif v.requires_grad or not v.is_contiguous() or x.numel() == 0:
        return _run(node, x, 0, False, "x")
    else:
        v_np = v.numpy().reshape(-1)
    n = v_np.shape[0]
    spike = torch.empty_like(x)
    v_next = torch.empty_like(x)
    v_next_np = v_next.numpy().reshape(n)
    dummy = ops.placeholder(x.dtype)
    fn = cfg.forward or cfg.forward_loop()
    args = (x.numpy().reshape(1, n), v_np, spike.numpy().reshape(1, n), v_next_np, dummy, dummy, p, cfg.soft,
            False, False)  # fmt: skip
    if n <= ops.SMALL:
        fn(*args, 0, n, ops.CHUNK[x.dtype])
    else:
        ops.launch(fn, 1, n, x.dtype, args)
    node._memories["v"] = cfg.v = v_next
    cfg.v_np = v_next_np
    return spike
