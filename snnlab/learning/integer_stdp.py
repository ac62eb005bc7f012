r"""SPAIC's integer-arithmetic STDP (``postpreintstdp``).

Traces and weight increments are integers; fractional increments are rounded
stochastically, so the rule runs on fixed-point hardware and is unbiased in
expectation. Per time step, with pre-synaptic spikes :math:`x` ``[B, N_in]``
and post-synaptic spikes :math:`y` ``[B, N_out]``:

.. math::
    X &\leftarrow (d \cdot X) \gg s, \quad X[x \ne 0] = S \qquad
    (\text{same for } Y \text{ with } y) \\
    \Delta w_{ji} &= \sum_b \big( \sigma_{pre}\, R(\nu_0 Y_{bj})\, x_{bi}
                   + y_{bj}\, R(\nu_1 X_{bi}) \big)

with :math:`d` = ``trace_decay``, :math:`s` = ``shift_spike_trace``,
:math:`S` = ``trace_scale`` (1 when ``shift_spike_trace == 0``),
:math:`\sigma_{pre}` = ``pre_sign`` and the stochastic rounding

.. math::
    R(v) = (v \gg k) + [\,U < (v \mathbin{\&} (2^k - 1))\,], \qquad U \sim \mathcal{U}\{0, \dots, 2^k - 1\}

(:math:`k` = ``shift``), so that :math:`E[R(v)] = v / 2^k`. One :math:`U` is
drawn per element of ``[B, N_out, N_in]``: first for the pre-synaptic branch,
then for the post-synaptic branch, from ``generator`` (a seeded
``torch.Generator`` makes a run reproducible).

Projection after :meth:`PostPreIntSTDPLearner.update`: every row ``j`` whose
post-synaptic threshold ``sn.thresh[j]`` exceeds ``max_threshold`` is halved
(``w >>= 1``, i.e. floor division by 2), then the weight is clipped to
``[w_min, w_max]``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .hooked import HookedLearner
from .registry import register

__all__ = ["PostPreIntSTDPLearner"]


class PostPreIntSTDPLearner(HookedLearner):
    r"""Integer pre/post STDP with stochastic rounding (SPAIC's ``PostPreIntSTDP``).

    Args:
        step_mode: ``'s'`` (records ``[N, N_in]`` / ``[N, N_out]``) or ``'m'`` (``[T, N, ...]``).
        synapse: a module with a 2-D ``weight`` ``[N_out, N_in]``: integer dtype
            (e.g. ``int32``) or floating dtype holding integer values.
        sn: the post-synaptic spiking module; with ``max_threshold`` set it must
            have a ``thresh`` attribute (number, ``[N_out]`` or ``[N, N_out]``).
        trace_decay: integer trace multiplier :math:`d` (31169 ≈ 2^15·e^{-1/20}).
        shift_spike_trace: right shift :math:`s` after the multiplication (15).
        trace_scale: trace value set by a spike :math:`S` (127).
        max_threshold: threshold above which a row is halved (4915); ``None``
            disables the halving (then ``sn`` needs no ``thresh``).
        shift: fixed-point shift :math:`k` of the stochastic rounding (14).
        nu0: pre-synaptic branch rate :math:`\nu_0` (14).
        nu1: post-synaptic branch rate :math:`\nu_1` (141).
        w_min, w_max: clipping bounds of the weight (0, 109).
        pre_sign: :math:`\sigma_{pre}` = ``+1`` or ``-1``.
        generator: ``torch.Generator`` for the rounding draws (``None``: the global one).

    ``pre_sign=+1`` (the default) is what SPAIC 0.6.3 ships: its code *adds*
    the pre-synaptic branch, although its docstring says that branch is
    negative; pass ``pre_sign=-1`` for the documented depression.

    Differences from SPAIC: a batch larger than 1 is summed over (SPAIC only
    handles batch 1); a threshold of shape ``[N, N_out]`` halves a row when any
    sample's threshold exceeds ``max_threshold``. ``step(on_grad=True)`` needs
    a floating-point weight (an integer tensor has no gradient): it raises
    ``TypeError`` for an integer weight.
    """

    _INT_PARAMS = ("trace_decay", "shift_spike_trace", "trace_scale", "shift", "nu0", "nu1", "w_min", "w_max")

    def __init__(
        self,
        step_mode: str,
        synapse: nn.Module,
        sn: nn.Module,
        trace_decay: int = 31169,
        shift_spike_trace: int = 15,
        trace_scale: int = 127,
        max_threshold: float | None = 4915,
        shift: int = 14,
        nu0: int = 14,
        nu1: int = 141,
        w_min: int = 0,
        w_max: int = 109,
        pre_sign: int = 1,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__(step_mode, synapse, sn)
        if synapse.weight.dim() != 2:
            raise TypeError(
                f"synapse.weight must be 2-D [N_out, N_in] for {type(self).__name__}, "
                f"got shape {list(synapse.weight.shape)}"
            )
        self._param("trace_decay", trace_decay, low=0)
        self._param("shift_spike_trace", shift_spike_trace, low=0, high=30)
        self._param("trace_scale", trace_scale, low=0)
        self._param("max_threshold", max_threshold, allow_none=True)
        self._param("shift", shift, low=0, high=30)
        self._param("nu0", nu0, low=0)
        self._param("nu1", nu1, low=0)
        self._param("w_min", w_min)
        self._param("w_max", w_max)
        if self.w_min > self.w_max:
            raise ValueError(f"w_max must be >= w_min={self.w_min}, got w_max={self.w_max}")
        if isinstance(pre_sign, bool) or pre_sign not in (1, -1):
            raise ValueError(f"pre_sign must be 1 or -1, got {pre_sign!r}")
        self.pre_sign = int(pre_sign)
        if generator is not None and not isinstance(generator, torch.Generator):
            raise TypeError(
                f"generator must be a torch.Generator or None, got {type(generator).__name__} {generator!r}"
            )
        self.generator = generator
        if self.max_threshold is not None and not hasattr(sn, "thresh"):
            raise TypeError(
                f"sn ({type(sn).__name__}) has no attribute 'thresh', needed with "
                f"max_threshold={self.max_threshold}; pass max_threshold=None to disable the halving"
            )
        self.register_memory("trace_pre", None)
        self.register_memory("trace_post", None)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in self._INT_PARAMS and "_param_specs" in self.__dict__ and name in self._param_specs:
            low, high, low_open, high_open, allow_none = self._param_specs[name]
            checked = self.check_param(
                name, value, low=low, high=high, low_open=low_open, high_open=high_open, allow_none=allow_none
            )
            if checked != int(checked):
                raise ValueError(f"{name} must be an integer, got {value!r}")
            nn.Module.__setattr__(self, name, int(checked))
            return
        super().__setattr__(name, value)

    # ------------------------------------------------------------------ rule
    def _stochastic_round(self, v: torch.Tensor) -> torch.Tensor:
        """``(v >> shift) + [U < (v & (2**shift - 1))]`` with ``U`` uniform on ``0 .. 2**shift - 1``."""
        k = self.shift
        frac = v & ((1 << k) - 1)
        draws = torch.randint(0, 1 << k, tuple(v.shape), generator=self.generator, dtype=torch.int64)
        return (v >> k) + (draws.to(v.device) < frac).to(v.dtype)

    def _decay_and_set(self, trace: torch.Tensor | None, spikes: torch.Tensor) -> torch.Tensor:
        if trace is None or trace.shape != spikes.shape:
            trace = torch.zeros(spikes.shape, dtype=torch.int64, device=spikes.device)
        trace = (self.trace_decay * trace) >> self.shift_spike_trace
        value = self.trace_scale if self.shift_spike_trace > 0 else 1
        return trace.masked_fill(spikes != 0, value)

    def _pair_delta(self, pre: torch.Tensor, post: torch.Tensor, reward: Any) -> torch.Tensor:
        weight = self.synapse.weight
        n_out, n_in = weight.shape
        if pre.dim() == 1:
            pre = pre.unsqueeze(0)
        if post.dim() == 1:
            post = post.unsqueeze(0)
        pre = pre.reshape(pre.shape[0], -1)
        post = post.reshape(post.shape[0], -1)
        if pre.shape[1] != n_in or post.shape[1] != n_out or pre.shape[0] != post.shape[0]:
            raise ValueError(
                f"pre-synaptic spikes [N, {n_in}] and post-synaptic spikes [N, {n_out}] expected, "
                f"got {list(pre.shape)} and {list(post.shape)}"
            )
        self.trace_pre = self._decay_and_set(self.trace_pre, pre)
        self.trace_post = self._decay_and_set(self.trace_post, post)
        x = (pre != 0).to(torch.int64)
        y = (post != 0).to(torch.int64)
        batch = x.shape[0]
        full = (batch, n_out, n_in)
        # pre-synaptic branch: rounded nu0 * post trace, paired with pre spikes
        pre_branch = self._stochastic_round((self.nu0 * self.trace_post).unsqueeze(2).expand(full))
        pre_branch = pre_branch * x.unsqueeze(1)
        # post-synaptic branch: rounded nu1 * pre trace, paired with post spikes
        post_branch = self._stochastic_round((self.nu1 * self.trace_pre).unsqueeze(1).expand(full))
        post_branch = post_branch * y.unsqueeze(2)
        return (self.pre_sign * pre_branch + post_branch).sum(0)

    def step(self, reward: Any = None, on_grad: bool = True, scale: float = 1.0) -> torch.Tensor | None:
        """As :meth:`HookedLearner.step` (``reward`` is ignored); ``on_grad`` needs a float weight."""
        if on_grad and not torch.is_floating_point(self.synapse.weight):
            raise TypeError(
                f"on_grad=True needs a floating-point synapse.weight, got dtype {self.synapse.weight.dtype}; "
                "use on_grad=False or update()"
            )
        return super().step(reward, on_grad=on_grad, scale=scale)

    def _row_halving_mask(self) -> torch.Tensor | None:
        if self.max_threshold is None:
            return None
        n_out = self.synapse.weight.shape[0]
        thresh = torch.as_tensor(self.sn.thresh, device=self.synapse.weight.device)
        if thresh.numel() == 1:
            thresh = thresh.reshape(1).expand(n_out)
        elif thresh.shape[-1] == n_out:
            thresh = thresh.reshape(-1, n_out).amax(0)
        else:
            raise ValueError(
                f"sn.thresh must be a number, [N_out]={n_out} or [N, N_out], got shape {list(thresh.shape)}"
            )
        return thresh > self.max_threshold

    def project_(self) -> None:
        """Halve the rows whose ``sn.thresh`` exceeds ``max_threshold``; clip to ``[w_min, w_max]``."""
        weight = self.synapse.weight
        with torch.no_grad():
            mask = self._row_halving_mask()
            if mask is not None and bool(mask.any()):
                rows = mask.unsqueeze(1)
                if torch.is_floating_point(weight):
                    halved = torch.floor(weight / 2)
                else:
                    halved = weight >> 1
                weight.copy_(torch.where(rows, halved, weight))
            weight.clamp_(self.w_min, self.w_max)


register("postpreintstdp", PostPreIntSTDPLearner)
