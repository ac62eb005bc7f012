r"""The Tempotron rule (Gütig & Sompolinsky, 2006), as SPAIC's ``Tempotron`` learner.

An episode of ``T`` time steps is recorded: pre-synaptic spikes
:math:`x[t]` ``[B, N_in]`` (the synapse input) and the membrane potential
:math:`V[t]` ``[B, N_out]`` of the post-synaptic neurons (``sn.v`` after each
forward call; ``sn.v_seq`` in multi-step mode). At the episode's end, given
the class ``label[b]`` of every sample, for each sample :math:`b` and output
neuron :math:`o`:

.. math::
    t^{*}_{bo} &= \operatorname{argmax}_t V[t, b, o] \quad (\text{first maximum}) \\
    c_{bo} &= \begin{cases}
        +1, & o = \mathrm{label}[b] \text{ and } V[t^{*}_{bo}, b, o] < v_{th}
              \quad(\text{missed positive}) \\
        -1, & o \ne \mathrm{label}[b] \text{ and } V[t^{*}_{bo}, b, o] \ge v_{th}
              \quad(\text{false positive}) \\
        0, & \text{otherwise} \end{cases} \\
    \Delta w_{oi} &= \frac{\mathrm{lr}}{B} \sum_b c_{bo}
        \sum_{t \le t^{*}_{bo}} x[t, b, i]\, K(t^{*}_{bo} - t), \qquad
    K(s) = e^{-s\,dt/\tau} - e^{-s\,dt/\tau_s}

(averaged over the batch, as SPAIC). :meth:`TempotronLearner.update` adds
:math:`\Delta w` to the weight once, at the episode's end.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .hooked import HookedLearner
from .registry import register

__all__ = ["TempotronLearner"]


class TempotronLearner(HookedLearner):
    r"""Tempotron: push the membrane maximum of the right neuron above ``v_th``, the others below.

    Args:
        step_mode: ``'s'`` (one time step per forward, ``[N, ...]``) or ``'m'``
            (a sequence per forward, ``[T, N, ...]``; ``sn`` must then expose
            ``v_seq`` ``[T, N, N_out]``, e.g. a SpikingJelly-style node with
            ``store_v_seq=True``).
        synapse: a module with a 2-D ``weight`` ``[N_out, N_in]``.
        sn: the post-synaptic neurons; must have a membrane attribute ``v``.
        lr: learning rate (0.01).
        tau: membrane time constant of the kernel :math:`K` (20, in units of ``dt``·steps).
        tau_s: synaptic time constant of :math:`K` (5).
        v_th: the decision threshold on the membrane maximum (10).
        dt: time step; the kernel uses :math:`s\,dt` for a lag of :math:`s` steps (1).

    The decision reads the membrane as ``sn`` exposes it; a neuron that resets
    on firing hides its maximum, so give ``sn`` a firing threshold at or above
    ``v_th`` (e.g. ``v_threshold=float('inf')``) or use a non-resetting
    integrator, as the Tempotron's potential is a plain sum of kernels.

    Use: run the episode with the learner enabled, then call
    ``update(label)`` (or ``step(label, on_grad=...)``) once; both consume the
    recorded episode. ``label`` is an ``int`` (batch 1) or ``[B]`` integers in
    ``[0, N_out)``.

    Differences from SPAIC 0.6.3: the sign matrix :math:`c` is computed per
    sample (SPAIC carries it over from one sample to the next); the lag is
    :math:`t^{*} - t` (SPAIC pairs the input at ``t`` with
    :math:`K(t^{*} - 1 - t)`, one step off); the first forward call is not
    skipped; ``tau``, ``tau_s`` and ``v_th`` are parameters (hard-coded there).
    """

    def __init__(
        self,
        step_mode: str,
        synapse: nn.Module,
        sn: nn.Module,
        lr: float = 0.01,
        tau: float = 20.0,
        tau_s: float = 5.0,
        v_th: float = 10.0,
        dt: float = 1.0,
    ) -> None:
        super().__init__(step_mode, synapse, sn)
        if synapse.weight.dim() != 2:
            raise TypeError(
                f"synapse.weight must be 2-D [N_out, N_in] for {type(self).__name__}, "
                f"got shape {list(synapse.weight.shape)}"
            )
        if not hasattr(sn, "v"):
            raise TypeError(f"sn ({type(sn).__name__}) must have a membrane potential attribute 'v'")
        if self.step_mode == "m" and getattr(sn, "store_v_seq", None) is False:
            raise ValueError(
                f"step_mode='m' reads sn.v_seq: set store_v_seq=True on {type(sn).__name__}, "
                "got store_v_seq=False"
            )
        self._param("lr", lr, low=0)
        self._param("tau", tau, low=0, low_open=True)
        self._param("tau_s", tau_s, low=0, low_open=True)
        self._param("v_th", v_th)
        self._param("dt", dt, low=0, low_open=True)
        self.v_records: list[torch.Tensor] = []

    # ------------------------------------------------------------------ recording
    def _on_sn_forward(self, module: nn.Module, args: tuple[Any, ...], output: Any) -> None:
        n_before = len(self.records)
        super()._on_sn_forward(module, args, output)
        if len(self.records) == n_before:
            return
        post = self.records[-1][1]
        if self.step_mode == "m":
            v = getattr(module, "v_seq", None)
            if v is None:
                self.records.pop()
                raise RuntimeError(
                    f"in step_mode='m' {type(self).__name__} reads sn.v_seq, which "
                    f"{type(module).__name__} does not provide (e.g. set store_v_seq=True)"
                )
        else:
            v = module.v
        v = torch.as_tensor(v, dtype=post.dtype, device=post.device).detach().clone()
        self.v_records.append(v.expand_as(post) if v.shape != post.shape else v)

    def _reset_state(self) -> None:
        self.v_records = []

    def kernel(self, lags: torch.Tensor) -> torch.Tensor:
        r""":math:`K(s) = e^{-s\,dt/\tau} - e^{-s\,dt/\tau_s}` for integer lags ``s >= 0``."""
        s = lags * self.dt
        return torch.exp(-s / self.tau) - torch.exp(-s / self.tau_s)

    # ------------------------------------------------------------------ learning
    def _labels(self, label: Any, batch: int, n_out: int, device: torch.device) -> torch.Tensor:
        if label is None:
            raise ValueError("label is required by the Tempotron rule, got None")
        if isinstance(label, bool):
            raise TypeError(f"label must be an int or a tensor of ints, got {label!r}")
        lab = torch.as_tensor(label, device=device)
        if lab.dtype.is_floating_point or lab.dtype == torch.bool or lab.dtype.is_complex:
            raise TypeError(f"label must hold integers, got dtype {lab.dtype}")
        lab = lab.reshape(-1).to(torch.int64)
        if lab.numel() == 1 and batch > 1:
            lab = lab.expand(batch)
        if lab.numel() != batch:
            raise ValueError(f"label must be an int or [batch]={batch} integers, got shape {list(lab.shape)}")
        if bool(((lab < 0) | (lab >= n_out)).any()):
            raise ValueError(f"label values must be in [0, {n_out}), got {lab.tolist()}")
        return lab

    def _episode(self) -> tuple[torch.Tensor, torch.Tensor]:
        pres, vs = [], []
        for (pre, _post), v in zip(self.records, self.v_records):
            if self.step_mode == "s":
                pre, v = pre.unsqueeze(0), v.unsqueeze(0)
            pres.append(pre.reshape(pre.shape[0], pre.shape[1] if pre.dim() > 2 else 1, -1))
            vs.append(v.reshape(v.shape[0], v.shape[1] if v.dim() > 2 else 1, -1))
        return torch.cat(pres, 0), torch.cat(vs, 0)

    def step(self, label: Any = None, on_grad: bool = True, scale: float = 1.0) -> torch.Tensor | None:
        """Consume the recorded episode and compute its ``Δw`` (see the module docstring).

        ``on_grad=True`` adds ``-Δw`` to ``synapse.weight.grad`` and returns
        ``None``; otherwise ``Δw`` ``[N_out, N_in]`` is returned. ``scale``
        multiplies ``Δw``. Returns ``None`` when nothing was recorded.
        """
        scale = self.check_param("scale", scale)
        if not self.records:
            return None
        weight = self.synapse.weight
        n_out, n_in = weight.shape
        with torch.no_grad():
            x, v = self._episode()  # [T, B, N_in], [T, B, N_out]
            if x.shape[2] != n_in or v.shape[2] != n_out or x.shape[:2] != v.shape[:2]:
                self.records, self.v_records = [], []
                raise ValueError(
                    f"recorded input [T, B, {n_in}] and membrane [T, B, {n_out}] expected, "
                    f"got {list(x.shape)} and {list(v.shape)}"
                )
            lab = self._labels(label, x.shape[1], n_out, weight.device)
            self.records, self.v_records = [], []
            x = x.to(weight.dtype if weight.dtype.is_floating_point else torch.float32)
            v = v.to(x.dtype)
            t_steps = x.shape[0]
            t_star = v.argmax(0)  # [B, N_out], first maximum
            v_max = v.gather(0, t_star.unsqueeze(0)).squeeze(0)
            is_label = torch.arange(n_out, device=v.device).unsqueeze(0) == lab.unsqueeze(1)
            missed = is_label & (v_max < self.v_th)
            false_pos = ~is_label & (v_max >= self.v_th)
            sign = missed.to(x.dtype) - false_pos.to(x.dtype)
            t = torch.arange(t_steps, device=v.device).view(t_steps, 1, 1)
            lags = t_star.unsqueeze(0) - t  # [T, B, N_out]
            k = self.kernel(lags.clamp(min=0).to(x.dtype)) * (lags >= 0).to(x.dtype)
            # Δw[o, i] = lr / B * Σ_b sign[b, o] Σ_t K(t*_bo - t) x[t, b, i]
            delta = torch.einsum("tbo,tbi,bo->oi", k, x, sign) * (self.lr / x.shape[1] * scale)
            delta = delta.to(weight.dtype)
        if on_grad:
            weight.grad = -delta if weight.grad is None else weight.grad - delta
            return None
        return delta

    def update(self, label: Any = None) -> torch.Tensor | None:  # type: ignore[override]
        """At the episode's end: ``Δw = step(label, on_grad=False)``; ``synapse.weight += Δw``.

        Returns ``Δw`` (``None`` and no change when nothing was recorded).
        """
        delta = self.step(label, on_grad=False)
        if delta is None:
            return None
        with torch.no_grad():
            self.synapse.weight.add_(delta)
            self.project_()
        return delta


register("tempotron", TempotronLearner)
