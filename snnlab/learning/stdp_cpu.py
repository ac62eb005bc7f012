"""What the STDP / mSTDP learners' fused CPU step keeps between steps.

The learners (:mod:`snnlab.learning.stdp`) run a time step of an ``nn.Linear``
synapse with a contiguous float32 / float64 CPU weight as one call of
:func:`snnlab.kernels.plasticity_cpu.fused_step`, whose arguments are numpy
arrays: the weight, ``weight.grad``, the spikes, the traces and (mSTDP) the
stored eligibility. Checking them and making the arrays anew at every step
costs more time than the kernel needs for a small layer. A :class:`CpuPlan`
keeps, for one learner:

* the detached weight and its array, for one parameter object with one storage,
  shape and dtype (:meth:`CpuPlan.fits`; any change builds a new plan);
* the grad's array, for one grad tensor (identity, storage and layout are
  checked at every step);
* the traces and the eligibility the plan last wrote into the learner's
  memories, with their arrays: reused only while the memory still holds that
  very object, so ``reset()``, a load, an assignment or a step on the torch path
  (which all replace it) send the next step through the full checks;
* the shapes of the last checked spikes, the ``[B]`` arrays of ones (the
  coefficients of a number-valued reward) and the mSTDP snapshot buffer.

Nothing derived from ``tau``, ``scale``, the reward or ``f_pre`` / ``f_post`` is
kept: the learner reads them, and calls ``f_pre`` / ``f_post``, at every step. A
plan is never copied (``copy.deepcopy`` or pickling a learner leaves it out; the
copy builds its own).
"""

from __future__ import annotations

import numbers
from types import ModuleType
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn

from .stdp_functional import Pairing, Trace, as_modulation, check_trace, linear_spikes

__all__ = ["CpuPlan", "Spikes"]

_FAST_DTYPES = (torch.float32, torch.float64)

#: A stored mSTDP eligibility as the kernel reads it: ``((post, x_pre, x_post, pre), G_post, G_pre)``,
#: the factors ``[B, features]`` arrays, ``G`` a float or an ``[n_out, n_in]`` array.
EligibilityArrays = tuple[tuple[np.ndarray, ...], Any, Any]


def _no_plan() -> None:
    return None


def _same_layout(a: torch.Tensor, b: torch.Tensor) -> bool:
    """``a`` and ``b`` are the same elements in memory (same start, dtype, device, shape, strides)."""
    return (
        a.data_ptr() == b.data_ptr()
        and a.dtype == b.dtype
        and a.device == b.device
        and a.shape == b.shape
        and a.stride() == b.stride()
    )


def _rows(x: torch.Tensor, n: int) -> torch.Tensor:
    """``x`` as contiguous ``[B, n]`` rows (``x`` itself when it is already)."""
    if x.dim() == 2 and x.is_contiguous():
        return x
    return x.reshape(-1, n).contiguous()


def _old_trace(name: str, trace: Trace, spike: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """The old trace as a contiguous ``[B, n]`` tensor like ``rows`` (``None`` is zeros)."""
    check_trace(name, trace, spike)
    if trace is None:
        return torch.zeros_like(rows)
    if not isinstance(trace, torch.Tensor):
        return torch.full_like(rows, float(trace))
    if trace.shape != spike.shape:
        trace = trace.expand(spike.shape)
    return trace.detach().reshape(rows.shape).contiguous()


class Spikes(NamedTuple):
    """One time step's checked spikes: as recorded (cast to the weight's dtype), as ``[B, n]``
    tensors and as their arrays."""

    x: torch.Tensor
    y: torch.Tensor
    pre: torch.Tensor
    post: torch.Tensor
    pre_np: np.ndarray
    post_np: np.ndarray


class CpuPlan:
    """The fused CPU step's reusable objects for one learner and one weight (see the module doc)."""

    __slots__ = (
        "dtype",
        "grad",
        "grad_np",
        "grad_ptr",
        "kernel",
        "ones",
        "ptr",
        "shape",
        "snap",
        "spike_shapes",
        "state",
        "state_arrays",
        "traces",
        "w",
        "w_np",
        "weight",
    )

    def __init__(self, kernel: ModuleType, weight: torch.Tensor) -> None:
        self.kernel = kernel
        self.weight = weight
        self.w = weight.detach()
        self.w_np: np.ndarray = self.w.numpy()
        self.ptr = weight.data_ptr()
        self.shape = weight.shape
        self.dtype = weight.dtype
        self.grad: torch.Tensor | None = None
        self.grad_ptr = 0
        self.grad_np: np.ndarray | None = None
        self.spike_shapes: tuple[torch.Size, torch.Size] | None = None
        self.traces: dict[str, tuple[torch.Tensor, np.ndarray]] = {}
        self.ones: dict[int, np.ndarray] = {}
        self.state: Any = None
        self.state_arrays: EligibilityArrays | None = None
        self.snap: tuple[torch.Tensor, Any] | None = None

    @staticmethod
    def build(kernel: ModuleType, weight: torch.Tensor) -> CpuPlan | None:
        """A plan for ``weight`` (run by ``kernel``, :mod:`snnlab.kernels.plasticity_cpu`), or
        ``None`` if it is not a contiguous 2-D float32 / float64 CPU tensor."""
        if not weight.is_cpu or weight.dtype not in _FAST_DTYPES or weight.dim() != 2:
            return None
        if weight.layout != torch.strided or not weight.is_contiguous():
            return None
        return CpuPlan(kernel, weight)

    def fits(self, weight: torch.Tensor) -> bool:
        """Whether ``weight`` is still the tensor of this plan, with the same storage and layout."""
        return (
            weight is self.weight
            and weight.data_ptr() == self.ptr
            and weight.dtype is self.dtype
            and weight.shape == self.shape
            and weight.is_cpu
            and weight.is_contiguous()
        )

    def __reduce__(self) -> tuple:
        return (_no_plan, ())

    def __deepcopy__(self, memo: dict) -> None:
        return None

    # ------------------------------------------------------------------ checks before a step
    def modulation(self, name: str, g: object) -> float | torch.Tensor | None:
        """``g = f(W)`` as the kernel takes it: a float; ``self.w`` when ``g`` is the weight itself
        (its elements, in its layout); another contiguous ``[n_out, n_in]`` CPU tensor of the weight's
        dtype (e.g. a soft bound ``w_max - W``) as it is. ``None`` for anything else (a broadcast
        or strided tensor, another dtype: the torch path then runs). Errors as :func:`as_modulation`."""
        if type(g) is float or g is self.w:
            return g  # type: ignore[return-value]
        g = as_modulation(name, g, self.w)
        if isinstance(g, float):
            return g
        if _same_layout(g, self.w):
            return self.w
        if g.shape == self.shape and g.layout == torch.strided and self._readable(g):
            return g.detach() if g.requires_grad else g
        return None

    def array(self, g: float | torch.Tensor) -> float | np.ndarray:
        """A modulation from :meth:`modulation` as the kernel's argument (a float or an array)."""
        if g is self.w:
            return self.w_np
        return g.numpy() if isinstance(g, torch.Tensor) else g

    def ready(self, memories: dict[str, Any], on_grad: bool) -> bool:
        """Whether the kernel can take this step's memories and (with ``on_grad``) grad: the weight's
        dtype, on the CPU, in a layout it reads. Keeps what it checked."""
        for name in ("trace_pre", "trace_post"):
            trace = memories[name]
            if isinstance(trace, torch.Tensor) and trace is not self.traces.get(name, (None,))[0]:
                if not trace.is_cpu or trace.dtype is not self.dtype:
                    return False
        if on_grad and not self._grad_ok(self.weight.grad):
            return False
        state = memories.get("_eligibility_factors")
        if state is not None and state is not self.state:
            arrays = self._eligibility_arrays(state)
            if arrays is None:
                return False
            self.state, self.state_arrays = state, arrays
        return True

    def _grad_ok(self, grad: torch.Tensor | None) -> bool:
        """Whether the kernel can add into ``grad`` (``None``: it will be created); keeps its array."""
        if grad is None:
            return True
        if grad is self.grad and grad.data_ptr() == self.grad_ptr:
            return grad.is_contiguous() and not grad.requires_grad and grad.shape == self.shape
        if (
            grad.layout != torch.strided
            or not grad.is_cpu
            or grad.dtype is not self.dtype
            or grad.shape != self.shape
            or not grad.is_contiguous()
            or grad.requires_grad
        ):
            return False
        self.grad, self.grad_ptr, self.grad_np = grad, grad.data_ptr(), grad.numpy()
        return True

    def target(self, on_grad: bool) -> tuple[torch.Tensor, np.ndarray]:
        """``weight.grad`` (created as zeros if missing; checked by :meth:`ready`) or a new zero
        ``delta_w``, with its array."""
        if not on_grad:
            delta = torch.zeros_like(self.w)
            return delta, delta.numpy()
        grad = self.weight.grad
        if grad is None:
            with torch.no_grad():
                self.weight.grad = grad = torch.zeros_like(self.weight)
            self._grad_ok(grad)
        return grad, self.grad_np  # type: ignore[return-value]

    # ------------------------------------------------------------------ one time step
    def spikes(self, synapse: nn.Linear, x: Any, y: Any) -> Spikes:
        """The checked spikes of one step (``[N, n]`` or ``[n]``, cast to the weight's dtype)."""
        if (
            isinstance(x, torch.Tensor)
            and isinstance(y, torch.Tensor)
            and (x.shape, y.shape) == self.spike_shapes
            and x.dtype is self.dtype
            and y.dtype is self.dtype
            and x.is_cpu
            and y.is_cpu
            and x.is_contiguous()
            and y.is_contiguous()
            and not x.requires_grad
            and not y.requires_grad
        ):  # the shapes a previous step checked, [B, n] rows already
            return Spikes(x, y, x, y, x.numpy(), y.numpy())
        x, y = linear_spikes(synapse, x, y)
        if not x.is_cpu or not y.is_cpu:
            raise ValueError(
                f"in_spike and out_spike must be on the weight's device (cpu), got {x.device} and {y.device}"
            )
        n_out, n_in = self.shape
        pre, post = _rows(x, n_in), _rows(y, n_out)
        if pre is x and post is y:
            self.spike_shapes = (x.shape, y.shape)
        return Spikes(x, y, pre, post, pre.numpy(), post.numpy())

    def old_trace(self, name: str, trace: Trace, spike: torch.Tensor, rows: torch.Tensor) -> np.ndarray:
        """The memory ``name`` as the kernel's old trace ``[B, n]`` (``None``: zeros; checked as
        :func:`~snnlab.learning.stdp_functional.check_trace`)."""
        kept = self.traces.get(name)
        if kept is not None and trace is kept[0] and trace.shape == spike.shape:  # type: ignore[union-attr]
            return kept[1]
        if isinstance(trace, torch.Tensor) and trace.shape == spike.shape and trace.is_contiguous():
            return trace.detach().numpy().reshape(rows.shape)
        return _old_trace(name, trace, spike, rows).numpy()

    def new_trace(
        self, memories: dict[str, Any], name: str, new: np.ndarray, spike: torch.Tensor
    ) -> torch.Tensor:
        """Store the kernel's new trace ``new`` ``[B, n]`` as the memory ``name``, shaped like
        ``spike``; return it as a ``[B, n]`` tensor."""
        rows = torch.from_numpy(new)
        memories[name] = trace = rows if spike.dim() == 2 else rows.view(spike.shape)
        self.traces[name] = (trace, new)
        return rows

    def ones_for(self, batch: int) -> np.ndarray:
        """A ``[batch]`` array of ones (coefficients ``a[b] = scale``; the kernel only reads it)."""
        ones = self.ones.get(batch)
        if ones is None:
            ones = self.ones[batch] = np.ones(batch, dtype=self.w_np.dtype)
        return ones

    def reward_coefficients(self, reward: Any, batch: int, sign: float) -> tuple[np.ndarray, float]:
        """``(coeff [batch], scale)`` with ``coeff[b] * scale = reward[b] * sign`` rounded once to the
        weight's dtype, the numbers ``reward * sign`` gives in torch. ``reward``: a real number, a
        one-element tensor or a ``[batch]`` tensor, as the learner's ``step`` checked it
        (:func:`~snnlab.learning.stdp_functional.check_reward`)."""
        if isinstance(reward, numbers.Real):
            return self.ones_for(batch), float(reward) * sign
        if reward.numel() == 1:
            return self.ones_for(batch), float(reward.item()) * sign
        r = reward.detach()
        if r.dtype is self.dtype and r.is_cpu and r.is_contiguous():
            return r.numpy(), sign
        return (r * sign).to(dtype=self.dtype).contiguous().numpy(), 1.0

    # ------------------------------------------------------------------ mSTDP eligibility
    def no_factors(self) -> tuple[np.ndarray, ...]:
        """A pairing with no samples (what the first mSTDP step applies)."""
        n_out, n_in = self.shape
        post, pre = np.zeros((0, n_out), self.w_np.dtype), np.zeros((0, n_in), self.w_np.dtype)
        return post, pre, post, pre

    def _eligibility_arrays(self, state: Any) -> EligibilityArrays | None:
        """A stored eligibility ``(G_post, G_pre, Pairing)`` as the kernel's arrays, or ``None`` if
        the kernel cannot read it (another dtype or device, a layout it does not take)."""
        if not (isinstance(state, tuple) and len(state) == 3 and isinstance(state[2], tuple)):
            return None
        g_post, g_pre, p = state
        if len(p) != 4 or not all(isinstance(f, torch.Tensor) for f in p) or p[0].dim() == 0:
            return None
        batch = p[0].shape[0]
        n_out, n_in = self.shape
        factors = []
        for f, n in zip(p, (n_out, n_in, n_out, n_in)):
            if not f.is_cpu or f.dtype is not self.dtype or f.numel() != batch * n:
                return None
            factors.append(f.detach().reshape(batch, n).contiguous().numpy())
        mods = []
        for g in (g_post, g_pre):
            if isinstance(g, torch.Tensor):
                if g.shape != self.shape or not self._readable(g):
                    return None
                mods.append(g.detach().numpy())
            elif isinstance(g, float):
                mods.append(g)
            else:
                return None
        return tuple(factors), mods[0], mods[1]

    def _readable(self, t: torch.Tensor) -> bool:
        """``t`` is a contiguous strided CPU tensor of the weight's dtype."""
        return t.is_cpu and t.dtype is self.dtype and t.layout == torch.strided and t.is_contiguous()

    def eligibility(self, state: Any, batch: int) -> EligibilityArrays | None:
        """The kernel's arrays of the stored eligibility ``state`` (``None``: none yet, e.g. after
        ``reset()``); ValueError if it was recorded with another batch size."""
        if state is None:
            return None
        if state is not self.state:  # not seen by ready(): the learner's own, kept below
            self.state, self.state_arrays = state, self._eligibility_arrays(state)
        arrays = self.state_arrays
        prev = arrays[0][0].shape[0]  # type: ignore[index]
        if prev != batch:
            raise ValueError(f"the batch size changed from {prev} to {batch}; call reset() first")
        return arrays

    def snapshot(self) -> Any:
        """The kernel's ``Snapshot`` into this plan's weight-shaped buffer (``f(W)`` kept for the
        next reward; the previous eligibility reads it at other positions in the same pass)."""
        if self.snap is None:
            snap = torch.zeros_like(self.w)
            self.snap = (snap, self.kernel.Snapshot(snap.numpy(), self.w_np))
        return self.snap[1]

    def keep(
        self,
        g_post: float | torch.Tensor,
        g_pre: float | torch.Tensor,
        s: Spikes,
        traces: tuple[torch.Tensor, torch.Tensor],
        arrays: tuple[np.ndarray, np.ndarray],
    ) -> tuple:
        """This step's eligibility as the learner stores it: ``(G_post, G_pre, Pairing)`` with ``G``
        the snapshot buffer where the modulation is the weight and ``[B, features]`` factors
        (``traces`` / ``arrays``: the new pre and post traces, ``[B, n]``). Kept with its arrays."""
        keep_post, keep_pre = g_post, g_pre
        mod_post = g_post if g_post is self.w else self.array(g_post)
        mod_pre = g_pre if g_pre is self.w else self.array(g_pre)
        if self.snap is not None:
            snap, snap_arrays = self.snap
            if g_post is self.w:
                keep_post, mod_post = snap, snap_arrays.snap
            if g_pre is self.w:
                keep_pre, mod_pre = snap, snap_arrays.snap
        state = (keep_post, keep_pre, Pairing(s.post, traces[0], traces[1], s.pre))
        self.state = state
        self.state_arrays = ((s.post_np, arrays[0], arrays[1], s.pre_np), mod_post, mod_pre)
        return state
