r"""IF / LIF neurons on the CuPy kernels of ``neuron.cu``: launches and autograd Functions.

One kernel launch runs all ``T`` steps of a multi-step call (time is the
inner loop of each thread, the potential stays in a register):

.. math::
    H_t = f(X_t, V_{t-1}), \quad S_t = \Theta(H_t - V_{th}), \quad
    V_t = \begin{cases} S_t V_{reset} + (1 - S_t) H_t & \text{hard reset} \\
                        H_t - S_t V_{th} & \text{soft reset } (V_{reset} = \text{None}) \end{cases}

with the charge :math:`f` one of (``charge``): ``CHARGE_IF``
:math:`H = V + X`; ``CHARGE_LIF`` :math:`H = V + \frac{1}{\tau}(X - (V - V_{reset}))`
(``decay_input=True``); ``CHARGE_LIF_UNSCALED``
:math:`H = V + X + \frac{1}{\tau}(V_{reset} - V)` (``decay_input=False``, the
kernels' ``detach_input=True``); the soft-reset LIF charges with
:math:`V_{reset} = 0`. The autograd Functions save only :math:`H` (``[T, N]``)
and the backward kernel recomputes :math:`S`, :math:`\partial S/\partial H`
(surrogate :math:`g'` by index, :data:`SURROGATE_NAMES`) and
:math:`\partial V/\partial H` from it (BPTT over ``T`` inside one launch),
as in :mod:`snnlab.kernels.core`. A float16 / bfloat16 :math:`H` is stored as
the nearest 16-bit value on the side of :math:`V_{th}` where the forward
decided :math:`S` (one unit in the last place away from plain rounding where
that rounding crossed the threshold), so the backward recomputes the same
spikes.

Shapes: ``x_seq`` ``[T, N, ...]``, ``v`` ``[N, ...]``; single step ``x``, ``v``
``[N, ...]``. Dtypes float16, bfloat16 (float32 arithmetic in registers),
float32 and float64; all tensors on one CUDA device.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any

import torch
from torch.autograd.function import once_differentiable

from .. import checks
from .runtime import THREADS, blocks_for, check_cuda_tensor, launch, require_cupy

__all__ = [
    "CHARGE_IF",
    "CHARGE_LIF",
    "CHARGE_LIF_UNSCALED",
    "SURROGATE_NAMES",
    "IFMultiStep",
    "IFStep",
    "LIFMultiStep",
    "LIFStep",
    "NeuronMultiStep",
    "NeuronParams",
    "NeuronStep",
    "bptt",
    "neuron_backward",
    "neuron_forward",
    "node_multi_step",
    "surrogate_index",
]

CHARGE_IF = 0
CHARGE_LIF = 1
CHARGE_LIF_UNSCALED = 2

#: Surrogate gradients of the kernels, by index (the names of :mod:`snnlab.surrogate` classes).
SURROGATE_NAMES: tuple[str, ...] = (
    "ATan",
    "Sigmoid",
    "PiecewiseQuadratic",
    "PiecewiseExp",
    "SoftSign",
    "SuperSpike",
    "Erf",
    "Rect",
    "STCARect",
    "STBPGaussian",
)

_SOURCE = "neuron.cu"


def surrogate_index(surrogate: Any, name: str = "grad_surrogate_function_index") -> int:
    """Kernel index of a surrogate given as an index, a name, a class or an instance.

    Raises ``TypeError`` / ``ValueError`` naming ``name`` and listing the choices.
    """
    allowed = ", ".join(f"{i} ({n})" for i, n in enumerate(SURROGATE_NAMES))
    if isinstance(surrogate, numbers.Integral) and not isinstance(surrogate, bool):
        if not 0 <= int(surrogate) < len(SURROGATE_NAMES):
            raise ValueError(f"{name} must be one of {allowed}, got {surrogate!r}")
        return int(surrogate)
    label = surrogate if isinstance(surrogate, str) else None
    if isinstance(surrogate, type):
        label = surrogate.__name__
    elif label is None and surrogate is not None and not isinstance(surrogate, bool):
        label = type(surrogate).__name__
    if label in SURROGATE_NAMES:
        return SURROGATE_NAMES.index(label)
    raise ValueError(f"{name} must be one of {allowed} (an index, a name or a surrogate), got {surrogate!r}")


@dataclass(frozen=True)
class NeuronParams:
    """Checked scalar parameters of one neuron kernel call.

    ``v_reset=None`` selects the soft reset; ``charge`` is ``CHARGE_IF``,
    ``CHARGE_LIF`` or ``CHARGE_LIF_UNSCALED``; ``reciprocal_tau`` is
    :math:`1/\\tau` (ignored by the IF charge); ``surrogate`` a kernel index.
    """

    v_threshold: float
    v_reset: float | None
    charge: int = CHARGE_IF
    reciprocal_tau: float = 1.0
    alpha: float = 2.0
    surrogate: int = 0
    detach_reset: bool = False

    @classmethod
    def checked(
        cls,
        v_threshold: Any,
        v_reset: Any,
        charge: Any = CHARGE_IF,
        reciprocal_tau: Any = 1.0,
        alpha: Any = 2.0,
        surrogate: Any = 0,
        detach_reset: Any = False,
    ) -> NeuronParams:
        """Validate every field (``TypeError`` / ``ValueError`` naming the argument)."""
        v_threshold, v_reset = checks.threshold_and_reset(v_threshold, v_reset)
        if charge not in (CHARGE_IF, CHARGE_LIF, CHARGE_LIF_UNSCALED) or isinstance(charge, bool):
            raise ValueError(
                f"charge must be CHARGE_IF (0), CHARGE_LIF (1) or CHARGE_LIF_UNSCALED (2), got {charge!r}"
            )
        return cls(
            v_threshold,
            v_reset,
            int(charge),
            checks.reciprocal_tau(reciprocal_tau),
            checks.positive("alpha", alpha),
            surrogate_index(surrogate),
            checks.flag("detach_reset", detach_reset),
        )

    @property
    def soft_reset(self) -> bool:
        return self.v_reset is None

    def kernel_args(self) -> tuple[float, float, float, int, int, float, int, int]:
        """``(v_th, v_reset, rtau, charge, soft_reset, alpha, surrogate, detach_reset)`` for the kernel."""
        return (
            self.v_threshold,
            0.0 if self.v_reset is None else self.v_reset,
            self.reciprocal_tau,
            self.charge,
            int(self.soft_reset),
            self.alpha,
            self.surrogate,
            int(self.detach_reset),
        )

    def partials(self) -> tuple[float, float]:
        r""":math:`(\partial H/\partial X, \partial H/\partial V_{t-1})` of the charge."""
        if self.charge == CHARGE_IF:
            return 1.0, 1.0
        h_to_x = self.reciprocal_tau if self.charge == CHARGE_LIF else 1.0
        return h_to_x, 1.0 - self.reciprocal_tau


def _same_device(name: str, tensor: torch.Tensor, ref_name: str, ref: torch.Tensor) -> None:
    check_cuda_tensor(name, tensor)
    if tensor.device != ref.device:
        raise ValueError(f"{name} must be on the device of {ref_name} ({ref.device}), got {tensor.device}")
    if tensor.dtype != ref.dtype:
        raise TypeError(f"{name} must have the dtype of {ref_name} ({ref.dtype}), got {tensor.dtype}")


def _sequence_and_state(x_seq: Any, v: Any, seq_name: str = "x_seq") -> tuple[torch.Tensor, torch.Tensor]:
    x_seq, v = checks.state_for_sequence(x_seq, v, seq_name)
    check_cuda_tensor(seq_name, x_seq)
    return x_seq.contiguous(), v.contiguous()


def neuron_forward(
    x_seq: torch.Tensor,
    v: torch.Tensor,
    params: NeuronParams,
    *,
    save_h: bool = False,
    save_v_seq: bool = False,
    with_partials: bool = False,
) -> dict[str, torch.Tensor]:
    r"""``T`` steps in one launch; returns a dict of ``[T, N, ...]`` / ``[N, ...]`` tensors.

    Always ``spike_seq`` and ``v_last`` (:math:`V_{T-1}`); ``h_seq``
    (:math:`H_t`) with ``save_h``; ``v_seq`` (:math:`V_t`) with ``save_v_seq``;
    ``grad_s_to_h`` and ``grad_v_to_h`` with ``with_partials``. No autograd graph.
    """
    require_cupy()
    x_seq, v = _sequence_and_state(x_seq, v)
    steps = x_seq.shape[0]
    n = v.numel()
    out = {"spike_seq": torch.empty_like(x_seq), "v_last": torch.empty_like(v)}
    if save_h:
        out["h_seq"] = torch.empty_like(x_seq)
    if save_v_seq:
        out["v_seq"] = torch.empty_like(x_seq)
    if with_partials:
        out["grad_s_to_h"] = torch.empty_like(x_seq)
        out["grad_v_to_h"] = torch.empty_like(x_seq)
    if n == 0:
        return out
    launch(
        _SOURCE,
        "snn_neuron_forward",
        x_seq.dtype,
        x_seq.device,
        (blocks_for(n),),
        (THREADS,),
        (
            x_seq,
            v,
            out["spike_seq"],
            out["v_last"],
            out.get("h_seq"),
            out.get("v_seq"),
            out.get("grad_s_to_h"),
            out.get("grad_v_to_h"),
            n,
            steps,
            *params.kernel_args(),
        ),
    )
    return out


def neuron_backward(
    grad_spike_seq: torch.Tensor | None,
    grad_v_last: torch.Tensor | None,
    grad_v_seq: torch.Tensor | None,
    h_seq: torch.Tensor,
    params: NeuronParams,
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""BPTT from the saved :math:`H` ``[T, N, ...]``: ``(grad_x_seq [T, N, ...], grad_v_init [N, ...])``.

    ``grad_spike_seq`` (``[T, ...]``), ``grad_v_last`` (``[N, ...]``) and
    ``grad_v_seq`` (``[T, ...]``, gradient of every step's :math:`V_t`) may be
    ``None`` (zero).
    """
    require_cupy()
    check_cuda_tensor("h_seq", h_seq)
    h_seq = h_seq.contiguous()
    grads = []
    for name, g, shape in (
        ("grad_spike_seq", grad_spike_seq, h_seq.shape),
        ("grad_v_last", grad_v_last, h_seq.shape[1:]),
        ("grad_v_seq", grad_v_seq, h_seq.shape),
    ):
        if g is not None:
            _same_device(name, g, "h_seq", h_seq)
            if g.shape != shape:
                raise ValueError(f"{name} must have shape {tuple(shape)}, got {tuple(g.shape)}")
            g = g.contiguous()
        grads.append(g)
    grad_x_seq = torch.empty_like(h_seq)
    grad_v = torch.empty(h_seq.shape[1:], dtype=h_seq.dtype, device=h_seq.device)
    n = grad_v.numel()
    if n == 0:
        return grad_x_seq, grad_v
    launch(
        _SOURCE,
        "snn_neuron_backward",
        h_seq.dtype,
        h_seq.device,
        (blocks_for(n),),
        (THREADS,),
        (*grads, h_seq, grad_x_seq, grad_v, n, h_seq.shape[0], *params.kernel_args()),
    )
    return grad_x_seq, grad_v


def bptt(
    grad_spike_seq: torch.Tensor,
    grad_v_next: torch.Tensor,
    grad_s_to_h: torch.Tensor,
    grad_v_to_h: torch.Tensor,
    grad_h_to_x: float,
    grad_h_to_v: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Reference-003 BPTT from saved partials (``[T, N, ...]``; ``grad_v_next`` ``[N, ...]``).

    :math:`\partial L/\partial H_t = g_{S,t}\,\partial S_t/\partial H_t + \partial L/\partial V_t\,
    \partial V_t/\partial H_t`; returns ``(grad_x_seq, dL/dV_{-1})``. Scalar charge partials.
    """
    require_cupy()
    seq = grad_spike_seq
    check_cuda_tensor("grad_spike", seq)
    for name, g in (("grad_v_next", grad_v_next), ("grad_s_to_h", grad_s_to_h), ("grad_v_to_h", grad_v_to_h)):
        _same_device(name, g, "grad_spike", seq)
    grad_x_seq = torch.empty_like(seq, memory_format=torch.contiguous_format)
    grad_v = torch.empty_like(grad_v_next, memory_format=torch.contiguous_format)
    n = grad_v.numel()
    if n == 0:
        return grad_x_seq, grad_v
    launch(
        _SOURCE,
        "snn_bptt",
        seq.dtype,
        seq.device,
        (blocks_for(n),),
        (THREADS,),
        (
            seq.contiguous(),
            grad_v_next.contiguous(),
            grad_s_to_h.contiguous(),
            grad_v_to_h.contiguous(),
            grad_x_seq,
            grad_v,
            n,
            seq.shape[0],
            float(grad_h_to_x),
            float(grad_h_to_v),
        ),
    )
    return grad_x_seq, grad_v


# --------------------------------------------------------------------------- autograd


def _check_params(params: Any) -> None:
    if not isinstance(params, NeuronParams):
        raise TypeError(
            f"params must be a NeuronParams (see NeuronParams.checked), got {type(params).__name__}"
        )


def _forward(
    ctx: Any, x_seq: torch.Tensor, v: torch.Tensor, params: NeuronParams, store_v_seq: bool
) -> dict[str, torch.Tensor]:
    needs_grad = bool(ctx.needs_input_grad[0] or ctx.needs_input_grad[1])
    out = neuron_forward(x_seq.detach(), v.detach(), params, save_h=needs_grad, save_v_seq=store_v_seq)
    ctx.params = params
    if needs_grad:
        ctx.save_for_backward(out["h_seq"])
    return out


def _backward(
    ctx: Any, grad_spike_seq: torch.Tensor | None, grad_v_last: torch.Tensor | None, grad_v_seq: Any
) -> tuple[torch.Tensor, torch.Tensor]:
    (h_seq,) = ctx.saved_tensors
    return neuron_backward(grad_spike_seq, grad_v_last, grad_v_seq, h_seq, ctx.params)


class NeuronMultiStep(torch.autograd.Function):
    """``T`` steps of an IF/LIF neuron with surrogate gradients.

    ``spike_seq, v_last = NeuronMultiStep.apply(x_seq, v, params, False)``, or
    ``spike_seq, v_last, v_seq = NeuronMultiStep.apply(x_seq, v, params, True)``. ``params`` is a
    :class:`NeuronParams`. Backward: one BPTT launch from the saved :math:`H`.
    """

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any, x_seq: torch.Tensor, v: torch.Tensor, params: NeuronParams, store_v_seq: bool
    ) -> tuple[torch.Tensor, ...]:
        _check_params(params)
        out = _forward(ctx, x_seq, v, params, store_v_seq)
        if store_v_seq:
            return out["spike_seq"], out["v_last"], out["v_seq"]
        return out["spike_seq"], out["v_last"]

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, *grads: torch.Tensor) -> tuple[Any, ...]:  # type: ignore[override]
        grad_v_seq = grads[2] if len(grads) > 2 else None
        grad_x_seq, grad_v = _backward(ctx, grads[0], grads[1], grad_v_seq)
        return grad_x_seq, grad_v, None, None


class NeuronStep(torch.autograd.Function):
    """One step: ``spike, v_next = NeuronStep.apply(x, v, params)`` (``[N, ...]``; the T = 1 kernel)."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any, x: torch.Tensor, v: torch.Tensor, params: NeuronParams
    ) -> tuple[torch.Tensor, torch.Tensor]:
        _check_params(params)
        x, v = _checked_state(x, v, False)
        out = _forward(ctx, x.unsqueeze(0), v, params, False)
        return out["spike_seq"][0], out["v_last"]

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_spike: torch.Tensor, grad_v_next: torch.Tensor):  # type: ignore[override]
        g = None if grad_spike is None else grad_spike.unsqueeze(0)
        grad_x, grad_v = _backward(ctx, g, grad_v_next, None)
        return grad_x[0], grad_v, None


def _checked_state(x: Any, v: Any, multi: bool) -> tuple[torch.Tensor, torch.Tensor]:
    if multi:
        x, v = checks.state_for_sequence(x, v)
        check_cuda_tensor("x_seq", x)
    else:
        x, v = checks.state_for_step(x, v)
        check_cuda_tensor("x", x)
    return x, v


def _lif_params(
    v_threshold: Any, v_reset: Any, alpha: Any, detach_reset: Any, index: Any, reciprocal_tau: Any,
    detach_input: Any,
) -> NeuronParams:  # fmt: skip
    charge = CHARGE_LIF_UNSCALED if checks.flag("detach_input", detach_input) else CHARGE_LIF
    return NeuronParams.checked(v_threshold, v_reset, charge, reciprocal_tau, alpha, index, detach_reset)


class LIFMultiStep(torch.autograd.Function):
    """Reference-003 signature on the CuPy kernels: ``spike_seq, v_last = LIFMultiStep.apply(x_seq, v,
    v_threshold, v_reset, alpha, detach_reset, grad_surrogate_function_index, reciprocal_tau,
    detach_input)``; ``v_reset=None`` is the soft reset; every surrogate of :data:`SURROGATE_NAMES`.
    """

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any, x_seq, v, v_threshold, v_reset, alpha, detach_reset, grad_surrogate_function_index,
        reciprocal_tau, detach_input,
    ) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
        x_seq, v = _checked_state(x_seq, v, True)
        params = _lif_params(
            v_threshold, v_reset, alpha, detach_reset, grad_surrogate_function_index, reciprocal_tau,
            detach_input,
        )  # fmt: skip
        out = _forward(ctx, x_seq, v, params, False)
        return out["spike_seq"], out["v_last"]

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_spike_seq, grad_v_next):  # type: ignore[override]
        grad_x_seq, grad_v = _backward(ctx, grad_spike_seq, grad_v_next, None)
        return grad_x_seq, grad_v, None, None, None, None, None, None, None


class LIFStep(torch.autograd.Function):
    """One LIF step, reference-003 signature (see :class:`LIFMultiStep`); ``x``, ``v`` ``[N, ...]``."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any, x, v, v_threshold, v_reset, alpha, detach_reset, grad_surrogate_function_index,
        reciprocal_tau, detach_input,
    ) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
        x, v = _checked_state(x, v, False)
        params = _lif_params(
            v_threshold, v_reset, alpha, detach_reset, grad_surrogate_function_index, reciprocal_tau,
            detach_input,
        )  # fmt: skip
        out = _forward(ctx, x.unsqueeze(0), v, params, False)
        return out["spike_seq"][0], out["v_last"]

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_spike, grad_v_next):  # type: ignore[override]
        g = None if grad_spike is None else grad_spike.unsqueeze(0)
        grad_x, grad_v = _backward(ctx, g, grad_v_next, None)
        return grad_x[0], grad_v, None, None, None, None, None, None, None


class IFMultiStep(torch.autograd.Function):
    """Reference-003 signature: ``spike_seq, v_last = IFMultiStep.apply(x_seq, v, v_threshold, v_reset,
    alpha, detach_reset, grad_surrogate_function_index)``; ``v_reset=None`` is the soft reset.
    """

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any, x_seq, v, v_threshold, v_reset, alpha, detach_reset, grad_surrogate_function_index
    ) -> tuple[torch.Tensor, torch.Tensor]:
        x_seq, v = _checked_state(x_seq, v, True)
        params = NeuronParams.checked(
            v_threshold, v_reset, CHARGE_IF, 1.0, alpha, grad_surrogate_function_index, detach_reset
        )
        out = _forward(ctx, x_seq, v, params, False)
        return out["spike_seq"], out["v_last"]

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_spike_seq, grad_v_next):  # type: ignore[override]
        grad_x_seq, grad_v = _backward(ctx, grad_spike_seq, grad_v_next, None)
        return grad_x_seq, grad_v, None, None, None, None, None


class IFStep(torch.autograd.Function):
    """One IF step, reference-003 signature (see :class:`IFMultiStep`); ``x``, ``v`` ``[N, ...]``."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any, x, v, v_threshold, v_reset, alpha, detach_reset, grad_surrogate_function_index
    ) -> tuple[torch.Tensor, torch.Tensor]:
        x, v = _checked_state(x, v, False)
        params = NeuronParams.checked(
            v_threshold, v_reset, CHARGE_IF, 1.0, alpha, grad_surrogate_function_index, detach_reset
        )
        out = _forward(ctx, x.unsqueeze(0), v, params, False)
        return out["spike_seq"][0], out["v_last"]

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_spike, grad_v_next):  # type: ignore[override]
        g = None if grad_spike is None else grad_spike.unsqueeze(0)
        grad_x, grad_v = _backward(ctx, g, grad_v_next, None)
        return grad_x[0], grad_v, None, None, None, None, None


# --------------------------------------------------------------------------- neuron modules


def node_params(node: Any) -> NeuronParams | None:
    """Kernel parameters of an ``snnlab.neuron`` IF/LIF node, or ``None`` if the kernels do not cover it.

    Covered: :class:`~snnlab.neuron.IFNode` and :class:`~snnlab.neuron.LIFNode`
    (and subclasses that keep their charge) whose ``surrogate_function`` is an
    instance of a surrogate in :data:`SURROGATE_NAMES` in spiking mode.
    """
    from ...neuron import IFNode, LIFNode

    sg = node.surrogate_function
    if not getattr(sg, "spiking", False) or type(sg).__name__ not in SURROGATE_NAMES:
        return None
    alpha = getattr(sg, "alpha", None)
    if not isinstance(alpha, float) or not math.isfinite(alpha) or alpha <= 0.0:
        return None
    if isinstance(node, LIFNode) and type(node).neuronal_charge is LIFNode.neuronal_charge:
        charge = CHARGE_LIF if node.decay_input else CHARGE_LIF_UNSCALED
        rtau = 1.0 / node.tau
    elif isinstance(node, IFNode) and type(node).neuronal_charge is IFNode.neuronal_charge:
        charge, rtau = CHARGE_IF, 1.0
    else:
        return None
    return NeuronParams.checked(
        node.v_threshold, node.v_reset, charge, rtau, alpha, type(sg).__name__, node.detach_reset
    )


def node_multi_step(node: Any, x_seq: torch.Tensor) -> torch.Tensor:
    """``backend='cupy'`` multi-step forward of an IF/LIF node: ``x_seq`` ``[T, N, ...]`` -> spikes.

    Leaves ``node.v`` = :math:`V_{T-1}` and, with ``store_v_seq``,
    ``node.v_seq`` ``[T, N, ...]``, as the torch path does. Raises
    :class:`~snnlab.kernels.cuda.CuPyUnavailableError` without CuPy or a GPU and
    ``ValueError`` for a CPU input; uses the torch path for nodes or
    surrogates the kernels do not cover (see :func:`node_params`).
    """
    require_cupy()
    check_cuda_tensor("x_seq", x_seq)
    params = node_params(node)
    if params is None:
        return node._multi_step_torch(x_seq)
    node.v_float_to_tensor(x_seq[0])
    v = node.v
    if v.dtype != x_seq.dtype or v.device != x_seq.device:
        v = v.to(x_seq)
    out = NeuronMultiStep.apply(x_seq, v, params, bool(node.store_v_seq))
    node.v = out[1]
    if node.store_v_seq:
        node.v_seq = out[2]
    return out[0]
