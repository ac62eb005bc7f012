r"""Spiking neuron layers with SpikingJelly's names, signatures and equations.

Every neuron runs the same three stages at each time step ``t``:

.. math::
    H[t] &= f(V[t-1], X[t])                       &\text{(charge, model specific)} \\
    S[t] &= \Theta(H[t] - V_{th})                 &\text{(fire: spike when } H \ge V_{th}) \\
    V[t] &= \begin{cases} H[t]\,(1 - S[t]) + V_{reset}\,S[t] & \text{hard reset} \\
                          H[t] - S[t]\,V_{th} & \text{soft reset } (V_{reset} = \text{None})
            \end{cases}

:math:`\Theta` is the Heaviside step in the forward pass and the surrogate
gradient of ``surrogate_function`` in the backward pass. With
``detach_reset=True`` the spike used in the reset equation is detached from
the graph (the spike returned to the caller is not).

Shapes: single-step mode (``step_mode='s'``) takes ``x`` of shape ``[N, ...]``
and returns spikes of the same shape; multi-step mode (``'m'``) takes
``x_seq`` of shape ``[T, N, ...]`` and returns ``[T, N, ...]``. The membrane
potential ``v`` starts as a Python float (``v_reset``, or ``0.0`` for soft
reset) and becomes ``torch.full_like(x, v)`` on the first input, so the layer
follows the input's device and dtype. ``reset()`` (or
``snnlab.functional.reset_net``) restores it.

Backends (``backend=...``):

* ``'torch'`` -- the reference: the equations above as torch operations,
  exactly SpikingJelly's ``backend='torch'``;
* ``'cpu'`` -- fused numba kernels for :class:`IFNode` and :class:`LIFNode`
  on CPU tensors (float32 / float64, forward and BPTT in one call, spikes
  bit-identical to ``'torch'``; see :mod:`snnlab.kernels.cpu`). Needs numba
  (``pip install numba``; an ``ImportError`` says so). Configurations it
  does not cover (a surrogate outside :data:`snnlab.surrogate.SURROGATES`,
  float16, a subclass with other dynamics) run the torch reference;
* ``'cupy'`` -- the CuPy CUDA kernels of :mod:`snnlab.kernels.cuda` for
  :class:`IFNode` and :class:`LIFNode` in multi-step mode (single-step mode
  runs torch). Assigning it raises
  :class:`~snnlab.kernels.cuda.CuPyUnavailableError` at once when CuPy or a
  CUDA GPU is missing;
* ``'auto'`` (the default) -- resolved from the input's device type through
  :data:`AUTO_BACKENDS` (``'cpu'`` for CPU tensors, ``'cupy'`` for CUDA
  tensors when :func:`snnlab.kernels.cuda.is_available`), falling back to
  ``'torch'`` when no fused path is registered for the class, covers the
  call, or can be imported (the last case warns once). :class:`ParametricLIFNode`
  and the nonlinear neurons run the torch path.

A fused implementation is plugged in with :func:`register_multi_step_backend`
and :func:`register_single_step_backend`; it then appears in
``supported_backends``.

Parameters a person may move while a simulation runs (``tau``,
``v_threshold``, ``v_reset``, ...) are checked on every assignment, not only
in ``__init__``: a bad value raises ``TypeError`` / ``ValueError`` naming the
parameter, the value and the allowed range.
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Callable
from typing import Any, ClassVar

import torch
from torch import nn

from . import surrogate
from .base import MemoryModule

__all__ = [
    "AUTO_BACKENDS",
    "AdaptBaseNode",
    "BaseNode",
    "EIFNode",
    "IFNode",
    "IzhikevichNode",
    "LIFNode",
    "OTTTLIFNode",
    "ParametricLIFNode",
    "QIFNode",
    "register_multi_step_backend",
    "register_single_step_backend",
]

_MISSING = object()

_Checks = dict[str, Callable[[str, Any], Any]]

#: Default spike function, shared by default-constructed layers as in SpikingJelly.
_DEFAULT_SURROGATE = surrogate.Sigmoid()

# ---------------------------------------------------------------------------- validation helpers


def _real(name: str, value: Any, allowed: str = "a finite real number") -> float:
    """``value`` as a float; ``TypeError`` for non-numbers, ``ValueError`` for inf / nan."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be {allowed}, got {type(value).__name__} {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be {allowed}, got {value!r}")
    return value


def _check_real(name: str, value: Any) -> float:
    return _real(name, value)


def _check_optional_real(name: str, value: Any) -> float | None:
    if value is None:
        return None
    return _real(name, value, "None (soft reset) or a finite real number")


def _check_tau(name: str, value: Any) -> float:
    allowed = "a finite real number > 1"
    value = _real(name, value, allowed)
    if value <= 1.0:
        raise ValueError(f"{name} must be {allowed}, got {value!r}")
    return value


def _check_positive(name: str, value: Any) -> float:
    allowed = "a finite real number > 0"
    value = _real(name, value, allowed)
    if value <= 0.0:
        raise ValueError(f"{name} must be {allowed}, got {value!r}")
    return value


def _check_bool(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool (True or False), got {type(value).__name__} {value!r}")
    return value


def _check_callable(name: str, value: Any) -> Any:
    if not callable(value):
        raise TypeError(
            f"{name} must be callable (e.g. snnlab.surrogate.Sigmoid()), got {type(value).__name__} {value!r}"
        )
    return value


def _check_input(name: str, x: Any, min_dim: int = 0) -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor (float16/32/64), got dtype {x.dtype}")
    if x.dim() < min_dim:
        raise ValueError(
            f"{name} must have at least {min_dim} dimension(s) ([T, N, ...] in multi-step mode), "
            f"got shape {tuple(x.shape)}"
        )


# ---------------------------------------------------------------------------- backends

#: A fused implementation: ``fn(node, x) -> spikes`` or ``NotImplemented`` (use the torch path).
FusedBackend = Callable[["BaseNode", torch.Tensor], Any]
MultiStepBackend = FusedBackend

#: Backend that ``backend='auto'`` tries for tensors of each device type.
AUTO_BACKENDS: dict[str, str] = {"cpu": "cpu", "cuda": "cupy"}

_MULTI_STEP_BACKENDS: dict[type, dict[str, FusedBackend]] = {}
_SINGLE_STEP_BACKENDS: dict[type, dict[str, FusedBackend]] = {}
_RESOLVED: dict[tuple[type, bool], dict[str, FusedBackend]] = {}
#: ``(class, multi_step, backend name)`` -> ``(name, fn)`` used by ``backend='auto'`` (``None``: torch).
_AUTO: dict[tuple[type, bool, str], Any] = {}
_UNAVAILABLE: set[str] = set()
#: Node attribute where the CPU backend keeps its resolved configuration
#: (``snnlab.kernels.cpu.node_backend.PLAN_ATTR``); dropped when a checked parameter is assigned.
_FUSED_PLAN = "_cpu_fused_plan"


def _check_registration(node_cls: type, name: str, fn: Any, signature: str) -> None:
    if not (isinstance(node_cls, type) and issubclass(node_cls, BaseNode)):
        raise TypeError(f"node_cls must be a subclass of BaseNode, got {node_cls!r}")
    if not isinstance(name, str) or not name or name in ("torch", "auto"):
        raise ValueError(f"name must be a non-empty backend name other than 'torch' and 'auto', got {name!r}")
    if not callable(fn):
        raise TypeError(f"fn must be callable as {signature}, got {type(fn).__name__}")


def register_multi_step_backend(node_cls: type, name: str, fn: FusedBackend) -> None:
    """Make ``fn`` the multi-step implementation of ``backend=name`` for ``node_cls`` and subclasses.

    ``fn(node, x_seq)`` receives the node and ``x_seq`` ``[T, N, ...]`` and
    returns the spikes ``[T, N, ...]``. It must leave the node as
    :meth:`BaseNode._multi_step_torch` does: ``node.v`` holds the potential
    after the last step (``[N, ...]``) and, when ``node.store_v_seq`` is
    true, ``node.v_seq`` holds every step's potential after reset
    (``[T, N, ...]``). ``fn`` returns ``NotImplemented`` for cases it does
    not cover (the node then runs the torch path) and raises
    ``ImportError`` when a dependency is missing (``backend='auto'`` then
    warns once and uses torch).
    """
    _check_registration(node_cls, name, fn, "fn(node, x_seq)")
    _MULTI_STEP_BACKENDS.setdefault(node_cls, {})[name] = fn
    _RESOLVED.clear()
    _AUTO.clear()


def register_single_step_backend(node_cls: type, name: str, fn: FusedBackend) -> None:
    """Make ``fn`` the single-step implementation of ``backend=name`` for ``node_cls`` and subclasses.

    ``fn(node, x)`` receives ``x`` ``[N, ...]``, returns the spikes
    ``[N, ...]`` and leaves ``node.v`` (``[N, ...]``) as
    :meth:`BaseNode.single_step_forward` does; ``NotImplemented`` and
    ``ImportError`` as for :func:`register_multi_step_backend`. Without a
    single-step implementation, single-step mode runs the torch path.
    """
    _check_registration(node_cls, name, fn, "fn(node, x)")
    _SINGLE_STEP_BACKENDS.setdefault(node_cls, {})[name] = fn
    _RESOLVED.clear()
    _AUTO.clear()


def _registered_backends(cls: type, multi_step: bool = True) -> dict[str, FusedBackend]:
    key = (cls, multi_step)
    found = _RESOLVED.get(key)
    if found is None:
        table = _MULTI_STEP_BACKENDS if multi_step else _SINGLE_STEP_BACKENDS
        found = {}
        for klass in cls.__mro__:
            for name, fn in table.get(klass, {}).items():
                found.setdefault(name, fn)
        _RESOLVED[key] = found
    return found


# ---------------------------------------------------------------------------- base node


class BaseNode(MemoryModule):
    r"""Base class of differentiable spiking neurons (SpikingJelly's ``BaseNode``).

    Subclasses implement :meth:`neuronal_charge` (``self.v`` := :math:`H[t]`).
    :meth:`single_step_forward` runs charge, :meth:`neuronal_fire`
    (:math:`S = \Theta(H - V_{th})`, ``x >= 0`` spikes) and
    :meth:`neuronal_reset`:

    * hard reset (``v_reset`` a number): :math:`V = (1 - S)\,H + S\,V_{reset}`;
    * soft reset (``v_reset=None``): :math:`V = H - S\,V_{th}`.

    Args:
        v_threshold: firing threshold :math:`V_{th}`, finite, above ``v_reset``.
        v_reset: reset potential, or ``None`` for soft reset.
        surrogate_function: spike function; Heaviside forward, surrogate backward.
        detach_reset: detach :math:`S` in the reset equation only.
        step_mode: ``'s'`` (``[N, ...]``) or ``'m'`` (``[T, N, ...]``).
        backend: ``'auto'`` (default: the fused path for the input's device when
            available, else torch), ``'torch'`` (the reference), or a registered
            name such as ``'cpu'`` (see the module docstring).
        store_v_seq: in multi-step mode keep ``v_seq`` ``[T, N, ...]`` (potential after reset).
    """

    _PARAM_CHECKS: ClassVar[_Checks] = {
        "v_threshold": _check_real,
        "v_reset": _check_optional_real,
        "detach_reset": _check_bool,
        "surrogate_function": _check_callable,
    }

    def __init__(
        self,
        v_threshold: float = 1.0,
        v_reset: float | None = 0.0,
        surrogate_function: Callable = _DEFAULT_SURROGATE,
        detach_reset: bool = False,
        step_mode: str = "s",
        backend: str = "auto",
        store_v_seq: bool = False,
    ) -> None:
        super().__init__()
        v_threshold = _check_real("v_threshold", v_threshold)
        v_reset = _check_optional_real("v_reset", v_reset)
        self.register_memory("v", 0.0 if v_reset is None else v_reset)
        self.v_threshold = v_threshold
        self.v_reset = v_reset
        self.detach_reset = detach_reset
        self.surrogate_function = surrogate_function
        self.step_mode = step_mode
        self.backend = backend
        self.store_v_seq = store_v_seq

    # ------------------------------------------------------------------ parameter checks
    def __setattr__(self, name: str, value: Any) -> None:
        check = type(self)._PARAM_CHECKS.get(name)
        if check is not None:
            value = check(name, value)
            self._check_relations(**{name: value})
        super().__setattr__(name, value)
        if check is not None:
            self.__dict__.pop(_FUSED_PLAN, None)  # fused backends re-read the parameters
        if name == "v_reset" and "v" in self.__dict__.get("_memories_rv", {}):
            self.set_reset_value("v", 0.0 if value is None else value)

    def __getstate__(self) -> dict[str, Any]:
        """Pickle / deep-copy state without the fused backend's cache (rebuilt on the next call)."""
        state = super().__getstate__()
        state.pop(_FUSED_PLAN, None)
        return state

    def _param(self, name: str, override: dict[str, Any]) -> Any:
        if name in override:
            return override[name]
        return getattr(self, name, _MISSING)

    def _check_relations(self, **override: Any) -> None:
        """Check relations between parameters, with ``override`` replacing current values.

        Parameters not yet set (during ``__init__``) are skipped.
        """
        v_th = self._param("v_threshold", override)
        v_reset = self._param("v_reset", override)
        if v_th is not _MISSING and v_reset is not _MISSING and v_reset is not None and not v_th > v_reset:
            raise ValueError(
                f"v_threshold must be greater than v_reset, got v_threshold={v_th!r}, v_reset={v_reset!r}"
            )

    @property
    def store_v_seq(self) -> bool:
        """Whether multi-step forward keeps ``v_seq`` (``[T, N, ...]``)."""
        return self._store_v_seq

    @store_v_seq.setter
    def store_v_seq(self, value: bool) -> None:
        self._store_v_seq = _check_bool("store_v_seq", value)
        if value and "v_seq" not in self._memories:
            self.register_memory("v_seq", None)

    # ------------------------------------------------------------------ backends
    @property
    def supported_backends(self) -> tuple[str, ...]:
        """``'torch'``, ``'auto'`` and the fused backends registered for this class."""
        names = dict.fromkeys(_registered_backends(type(self)))
        names.update(dict.fromkeys(_registered_backends(type(self), multi_step=False)))
        return ("torch", "auto", *names)

    @property
    def backend(self) -> str:
        """The implementation used by :meth:`forward`: ``'auto'``, ``'torch'`` or a fused backend.

        Assigning ``'cupy'`` checks at once that CuPy and a CUDA GPU are usable and raises
        :class:`snnlab.kernels.cuda.CuPyUnavailableError` (an ``ImportError``) saying what
        is missing otherwise; the backend is then left unchanged.
        """
        return self._backend

    @backend.setter
    def backend(self, value: str) -> None:
        if value not in self.supported_backends:
            raise ValueError(
                f"backend must be one of {self.supported_backends} for {type(self).__name__}, "
                f"got {value!r}"
            )
        if value == "cupy":
            from .kernels.cuda import require_cupy

            require_cupy()
        self._backend = value

    def _run_fused(self, x: torch.Tensor, multi_step: bool) -> Any:
        """Spikes from the fused backend chosen for ``x``, or ``NotImplemented`` for the torch path."""
        backend = self._backend
        if backend == "torch":
            return NotImplemented
        if backend != "auto":
            fn = _registered_backends(type(self), multi_step).get(backend)
            if fn is None:
                if multi_step:  # unregistered after being chosen
                    raise ValueError(
                        f"backend must be one of {self.supported_backends} for {type(self).__name__}, "
                        f"got {backend!r}"
                    )
                return NotImplemented
            return fn(self, x)
        name = AUTO_BACKENDS.get("cpu" if x.is_cpu else x.device.type)
        key = (type(self), multi_step, name)
        found = _AUTO.get(key, _MISSING)
        if found is _MISSING:
            found = self._resolve_auto(multi_step, name)
            _AUTO[key] = found
        if found is None:
            return NotImplemented
        name, fn = found
        if name in _UNAVAILABLE:
            return NotImplemented
        try:
            return fn(self, x)
        except ImportError as error:
            _UNAVAILABLE.add(name)
            warnings.warn(
                f"backend='auto' cannot use the {name!r} fast path ({error}); using the torch backend",
                RuntimeWarning,
                stacklevel=4,
            )
            return NotImplemented

    def _resolve_auto(self, multi_step: bool, name: str | None) -> tuple[str, FusedBackend] | None:
        """``(name, fn)`` when ``backend='auto'`` can use backend ``name`` here, else ``None`` (torch)."""
        fn = _registered_backends(type(self), multi_step).get(name) if name is not None else None
        if fn is None or name not in self.supported_backends:
            return None
        if name == "cupy":
            from .kernels.cuda import is_available

            if not is_available():
                return None
        return name, fn

    # ------------------------------------------------------------------ dynamics
    def neuronal_charge(self, x: torch.Tensor) -> None:
        """Set ``self.v`` to :math:`H[t]` from :math:`V[t-1]` (``self.v``) and :math:`X[t]` (``x``)."""
        raise NotImplementedError(f"{type(self).__name__} must implement neuronal_charge")

    def neuronal_fire(self) -> torch.Tensor:
        r""":math:`S[t] = \Theta(H[t] - V_{th})` through ``surrogate_function``."""
        return self.surrogate_function(self.v - self.v_threshold)

    def neuronal_reset(self, spike: torch.Tensor) -> None:
        r"""Hard: :math:`V = (1 - S) H + S V_{reset}`; soft: :math:`V = H - S V_{th}`."""
        spike_d = spike.detach() if self.detach_reset else spike
        if self.v_reset is None:
            self.v = self.v - spike_d * self.v_threshold
        else:
            self.v = (1.0 - spike_d) * self.v + spike_d * self.v_reset

    def v_float_to_tensor(self, x: torch.Tensor) -> None:
        """Turn a float ``v`` into ``torch.full_like(x, v)`` (first step after a reset)."""
        if isinstance(self.v, float):
            self.v = torch.full_like(x.data, self.v)
        elif self.v.shape != x.shape:
            raise ValueError(
                f"input x of shape {tuple(x.shape)} does not match the state v of shape "
                f"{tuple(self.v.shape)} of {type(self).__name__}; call reset() (or "
                f"snnlab.functional.reset_net) before a batch of another shape"
            )

    def single_step_forward(self, x: torch.Tensor) -> torch.Tensor:
        """One step: ``x`` ``[N, ...]`` -> spikes ``[N, ...]`` (charge, fire, reset)."""
        _check_input("x", x)
        if self._backend != "torch":
            spike = self._run_fused(x, multi_step=False)
            if spike is not NotImplemented:
                return spike
        return self._single_step_torch(x)

    def _single_step_torch(self, x: torch.Tensor) -> torch.Tensor:
        """Reference single step: charge, fire, reset as torch operations."""
        self.v_float_to_tensor(x)
        self.neuronal_charge(x)
        spike = self.neuronal_fire()
        self.neuronal_reset(spike)
        return spike

    def multi_step_forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        """``T`` steps: ``x_seq`` ``[T, N, ...]`` -> spikes ``[T, N, ...]`` with the chosen backend."""
        _check_input("x_seq", x_seq, min_dim=1)
        spike_seq = self._run_fused(x_seq, multi_step=True)
        if spike_seq is NotImplemented:
            return self._multi_step_torch(x_seq)
        return spike_seq

    def _multi_step_torch(self, x_seq: torch.Tensor) -> torch.Tensor:
        """Multi-step path of the reference: :meth:`single_step_forward` looped over ``T``."""
        spikes = []
        v_seq = []
        for t in range(x_seq.shape[0]):
            spikes.append(self.single_step_forward(x_seq[t]))
            if self.store_v_seq:
                v_seq.append(self.v)
        if self.store_v_seq:
            self.v_seq = torch.stack(v_seq)
        return torch.stack(spikes)

    def extra_repr(self) -> str:
        return (
            f"v_threshold={self.v_threshold}, v_reset={self.v_reset}, detach_reset={self.detach_reset}, "
            f"step_mode={self.step_mode}, backend={self.backend}"
        )


# ---------------------------------------------------------------------------- IF / LIF / PLIF


class IFNode(BaseNode):
    r"""Integrate-and-fire neuron: a perfect integrator.

    .. math::
        H[t] = V[t-1] + X[t]

    Same arguments as :class:`BaseNode`.
    """

    def __init__(
        self,
        v_threshold: float = 1.0,
        v_reset: float | None = 0.0,
        surrogate_function: Callable = _DEFAULT_SURROGATE,
        detach_reset: bool = False,
        step_mode: str = "s",
        backend: str = "auto",
        store_v_seq: bool = False,
    ) -> None:
        super().__init__(
            v_threshold, v_reset, surrogate_function, detach_reset, step_mode, backend, store_v_seq
        )

    def neuronal_charge(self, x: torch.Tensor) -> None:
        self.v = self.v + x


class LIFNode(BaseNode):
    r"""Leaky integrate-and-fire neuron.

    With ``decay_input=True``:

    .. math::
        H[t] = V[t-1] + \frac{1}{\tau}\left(X[t] - (V[t-1] - V_{reset})\right)

    With ``decay_input=False``:

    .. math::
        H[t] = V[t-1] - \frac{1}{\tau}(V[t-1] - V_{reset}) + X[t]

    For soft reset (``v_reset=None``) :math:`V_{reset} = 0` in the leak.

    Args:
        tau: membrane time constant, a finite number > 1.
        decay_input: whether the input is scaled by :math:`1/\tau`.
        Others: as :class:`BaseNode`.
    """

    _PARAM_CHECKS: ClassVar[_Checks] = {
        **BaseNode._PARAM_CHECKS,
        "tau": _check_tau,
        "decay_input": _check_bool,
    }

    def __init__(
        self,
        tau: float = 2.0,
        decay_input: bool = True,
        v_threshold: float = 1.0,
        v_reset: float | None = 0.0,
        surrogate_function: Callable = _DEFAULT_SURROGATE,
        detach_reset: bool = False,
        step_mode: str = "s",
        backend: str = "auto",
        store_v_seq: bool = False,
    ) -> None:
        tau = _check_tau("tau", tau)
        super().__init__(
            v_threshold, v_reset, surrogate_function, detach_reset, step_mode, backend, store_v_seq
        )
        self.tau = tau
        self.decay_input = decay_input

    def extra_repr(self) -> str:
        return super().extra_repr() + f", tau={self.tau}, decay_input={self.decay_input}"

    def neuronal_charge(self, x: torch.Tensor) -> None:
        v, tau = self.v, self.tau
        v_reset = 0.0 if self.v_reset is None else self.v_reset
        if self.decay_input:
            if v_reset == 0.0:
                self.v = v + (x - v) / tau
            else:
                self.v = v + (x - (v - v_reset)) / tau
        elif v_reset == 0.0:
            self.v = v * (1.0 - 1.0 / tau) + x
        else:
            self.v = v - (v - v_reset) / tau + x


class ParametricLIFNode(BaseNode):
    r"""LIF neuron with a learnable membrane time constant (PLIF, Fang et al. 2021).

    .. math::
        \frac{1}{\tau} = \mathrm{sigmoid}(w), \qquad
        H[t] = \begin{cases}
            V[t-1] + \frac{1}{\tau}(X[t] - (V[t-1] - V_{reset})) & \text{decay\_input} \\
            V[t-1] - \frac{1}{\tau}(V[t-1] - V_{reset}) + X[t] & \text{otherwise}
        \end{cases}

    ``w`` is an ``nn.Parameter`` (a scalar) initialised to
    :math:`-\ln(\tau_0 - 1)` so that :math:`\tau = \tau_0` = ``init_tau``.
    ``tau`` reads :math:`1/\mathrm{sigmoid}(w)`; assigning it (> 1) sets ``w``.
    """

    _PARAM_CHECKS: ClassVar[_Checks] = {**BaseNode._PARAM_CHECKS, "decay_input": _check_bool}

    def __init__(
        self,
        init_tau: float = 2.0,
        decay_input: bool = True,
        v_threshold: float = 1.0,
        v_reset: float | None = 0.0,
        surrogate_function: Callable = _DEFAULT_SURROGATE,
        detach_reset: bool = False,
        step_mode: str = "s",
        backend: str = "auto",
        store_v_seq: bool = False,
    ) -> None:
        init_tau = _check_tau("init_tau", init_tau)
        super().__init__(
            v_threshold, v_reset, surrogate_function, detach_reset, step_mode, backend, store_v_seq
        )
        self.decay_input = decay_input
        self.w = nn.Parameter(torch.as_tensor(-math.log(init_tau - 1.0)))

    @property
    def tau(self) -> float:
        r""":math:`\tau = 1 / \mathrm{sigmoid}(w)` as a float."""
        with torch.no_grad():
            return float(1.0 / self.w.sigmoid())

    @tau.setter
    def tau(self, value: float) -> None:
        value = _check_tau("tau", value)
        with torch.no_grad():
            self.w.fill_(-math.log(value - 1.0))

    def extra_repr(self) -> str:
        return super().extra_repr() + f", tau={self.tau}, decay_input={self.decay_input}"

    def neuronal_charge(self, x: torch.Tensor) -> None:
        v, k = self.v, self.w.sigmoid()
        v_reset = 0.0 if self.v_reset is None else self.v_reset
        if self.decay_input:
            if v_reset == 0.0:
                self.v = v + (x - v) * k
            else:
                self.v = v + (x - (v - v_reset)) * k
        elif v_reset == 0.0:
            self.v = v * (1.0 - k) + x
        else:
            self.v = v - (v - v_reset) * k + x


# ---------------------------------------------------------------------------- OTTT


class OTTTLIFNode(LIFNode):
    r"""LIF neuron for online training through time (OTTT, Xiao et al. 2022); single-step only.

    The forward dynamics are :class:`LIFNode`'s (defaults: soft reset,
    ``decay_input=False``, ``detach_reset=True``), but ``v`` is detached from
    the previous step before charging, so no gradient flows back in time. In
    training mode the layer also keeps a presynaptic trace (no gradient)

    .. math::
        a[t] = a[t-1]\left(1 - \frac{1}{\tau}\right) + S[t], \qquad a[-1] = 0

    and returns ``[spike, trace]`` (both ``[N, ...]``) for
    ``snnlab.layer``'s ``OTTTSequential`` / ``GradwithTrace``. In eval mode
    it returns only ``spike``.
    """

    def __init__(
        self,
        tau: float = 2.0,
        decay_input: bool = False,
        v_threshold: float = 1.0,
        v_reset: float | None = None,
        surrogate_function: Callable = _DEFAULT_SURROGATE,
        detach_reset: bool = True,
        step_mode: str = "s",
        backend: str = "auto",
        store_v_seq: bool = False,
    ) -> None:
        super().__init__(
            tau, decay_input, v_threshold, v_reset, surrogate_function, detach_reset, step_mode, backend,
            store_v_seq,
        )  # fmt: skip
        self.register_memory("trace", 0.0)

    def supported_step_mode(self) -> tuple[str, ...]:
        return ("s",)

    @property
    def supported_backends(self) -> tuple[str, ...]:
        return ("torch", "auto")

    def neuronal_charge(self, x: torch.Tensor) -> None:
        self.v = self.v.detach()
        super().neuronal_charge(x)

    def single_step_forward(self, x: torch.Tensor) -> torch.Tensor | list[torch.Tensor]:  # type: ignore[override]
        """``x`` ``[N, ...]`` -> ``[spike, trace]`` in training, ``spike`` in eval."""
        spike = super().single_step_forward(x)
        if not self.training:
            return spike
        if isinstance(self.trace, float):
            self.trace = torch.full_like(x.data, self.trace)
        with torch.no_grad():
            self.trace = self.trace * (1.0 - 1.0 / self.tau) + spike
        return [spike, self.trace]


# ---------------------------------------------------------------------------- nonlinear IF


def _check_rest_above_reset(v_rest: Any, v_reset: Any) -> None:
    if v_rest is not _MISSING and v_reset is not _MISSING and v_reset is not None and not v_rest >= v_reset:
        raise ValueError(f"v_rest must be >= v_reset, got v_rest={v_rest!r}, v_reset={v_reset!r}")


def _check_vc_above_rest(v_c: Any, v_rest: Any) -> None:
    if v_c is not _MISSING and v_rest is not _MISSING and not v_c > v_rest:
        raise ValueError(f"v_c must be greater than v_rest, got v_c={v_c!r}, v_rest={v_rest!r}")


class QIFNode(BaseNode):
    r"""Quadratic integrate-and-fire neuron.

    .. math::
        H[t] = V[t-1] + \frac{1}{\tau}\left(X[t] + a_0 (V[t-1] - V_{rest})(V[t-1] - V_c)\right)

    Args:
        tau: membrane time constant (> 1).
        v_c: critical voltage (> ``v_rest``).
        a0: sharpness of the quadratic (> 0).
        v_rest: resting potential (>= ``v_reset`` for hard reset).
        Others: as :class:`BaseNode` (default hard reset to ``v_reset=-0.1``).
    """

    _PARAM_CHECKS: ClassVar[_Checks] = {
        **BaseNode._PARAM_CHECKS,
        "tau": _check_tau,
        "v_c": _check_real,
        "a0": _check_positive,
        "v_rest": _check_real,
    }

    def __init__(
        self,
        tau: float = 2.0,
        v_c: float = 0.8,
        a0: float = 1.0,
        v_threshold: float = 1.0,
        v_rest: float = 0.0,
        v_reset: float | None = -0.1,
        surrogate_function: Callable = _DEFAULT_SURROGATE,
        detach_reset: bool = False,
        step_mode: str = "s",
        backend: str = "auto",
        store_v_seq: bool = False,
    ) -> None:
        tau = _check_tau("tau", tau)
        a0 = _check_positive("a0", a0)
        super().__init__(
            v_threshold, v_reset, surrogate_function, detach_reset, step_mode, backend, store_v_seq
        )
        self.tau = tau
        self.v_rest = v_rest
        self.v_c = v_c
        self.a0 = a0

    def _check_relations(self, **override: Any) -> None:
        super()._check_relations(**override)
        v_rest = self._param("v_rest", override)
        _check_rest_above_reset(v_rest, self._param("v_reset", override))
        _check_vc_above_rest(self._param("v_c", override), v_rest)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", tau={self.tau}, v_c={self.v_c}, a0={self.a0}, v_rest={self.v_rest}"

    def neuronal_charge(self, x: torch.Tensor) -> None:
        v = self.v
        self.v = v + (x + self.a0 * (v - self.v_rest) * (v - self.v_c)) / self.tau


class EIFNode(BaseNode):
    r"""Exponential integrate-and-fire neuron.

    .. math::
        H[t] = V[t-1] + \frac{1}{\tau}\left(X[t] - (V[t-1] - V_{rest})
               + \Delta_T \exp\!\left(\frac{V[t-1] - \theta_{rh}}{\Delta_T}\right)\right)

    Args:
        tau: membrane time constant (> 1).
        delta_T: sharpness :math:`\Delta_T` (> 0).
        theta_rh: rheobase threshold :math:`\theta_{rh}`.
        v_rest: resting potential (>= ``v_reset`` for hard reset).
        Others: as :class:`BaseNode` (default hard reset to ``v_reset=-0.1``).
    """

    _PARAM_CHECKS: ClassVar[_Checks] = {
        **BaseNode._PARAM_CHECKS,
        "tau": _check_tau,
        "delta_T": _check_positive,
        "theta_rh": _check_real,
        "v_rest": _check_real,
    }

    def __init__(
        self,
        tau: float = 2.0,
        delta_T: float = 1.0,
        theta_rh: float = 0.8,
        v_threshold: float = 1.0,
        v_rest: float = 0.0,
        v_reset: float | None = -0.1,
        surrogate_function: Callable = _DEFAULT_SURROGATE,
        detach_reset: bool = False,
        step_mode: str = "s",
        backend: str = "auto",
        store_v_seq: bool = False,
    ) -> None:
        tau = _check_tau("tau", tau)
        delta_T = _check_positive("delta_T", delta_T)
        super().__init__(
            v_threshold, v_reset, surrogate_function, detach_reset, step_mode, backend, store_v_seq
        )
        self.tau = tau
        self.delta_T = delta_T
        self.v_rest = v_rest
        self.theta_rh = theta_rh

    def _check_relations(self, **override: Any) -> None:
        super()._check_relations(**override)
        _check_rest_above_reset(self._param("v_rest", override), self._param("v_reset", override))

    def extra_repr(self) -> str:
        return (
            super().extra_repr()
            + f", tau={self.tau}, delta_T={self.delta_T}, theta_rh={self.theta_rh}, v_rest={self.v_rest}"
        )

    def neuronal_charge(self, x: torch.Tensor) -> None:
        v = self.v
        exp_term = self.delta_T * torch.exp((v - self.theta_rh) / self.delta_T)
        self.v = v + (x + self.v_rest - v + exp_term) / self.tau


# ---------------------------------------------------------------------------- adaptive / Izhikevich


class AdaptBaseNode(BaseNode):
    r"""Base of neurons with an adaptation current ``w`` (SpikingJelly's ``AdaptBaseNode``).

    Each step: charge (subclass, uses :math:`W[t-1]`), then adaptation

    .. math::
        W[t] = W[t-1] + \frac{1}{\tau_w}\left(a (H[t] - V_{rest}) - W[t-1]\right),

    fire :math:`S = \Theta(H - V_{th})`, and reset with :math:`S_d` the spike
    (detached if ``detach_reset``):

    .. math::
        V[t] = \begin{cases} (1 - S_d) H[t] + S\,V_{reset} & \text{hard} \\
                             H[t] - S_d V_{th} & \text{soft} \end{cases}, \qquad
        W[t] \mathrel{+}= b\,S[t]

    ``w`` starts at ``w_rest`` (a float, expanded on the first input).
    """

    _PARAM_CHECKS: ClassVar[_Checks] = {
        **BaseNode._PARAM_CHECKS,
        "v_rest": _check_real,
        "w_rest": _check_real,
        "tau_w": _check_tau,
        "a": _check_real,
        "b": _check_real,
    }

    def __init__(
        self,
        v_threshold: float = 1.0,
        v_reset: float | None = 0.0,
        v_rest: float = 0.0,
        w_rest: float = 0.0,
        tau_w: float = 2.0,
        a: float = 0.0,
        b: float = 0.0,
        surrogate_function: Callable = _DEFAULT_SURROGATE,
        detach_reset: bool = False,
        step_mode: str = "s",
        backend: str = "auto",
        store_v_seq: bool = False,
    ) -> None:
        w_rest = _check_real("w_rest", w_rest)
        super().__init__(
            v_threshold, v_reset, surrogate_function, detach_reset, step_mode, backend, store_v_seq
        )
        self.register_memory("w", w_rest)
        self.w_rest = w_rest
        self.v_rest = v_rest
        self.tau_w = tau_w
        self.a = a
        self.b = b

    def __setattr__(self, name: str, value: Any) -> None:
        super().__setattr__(name, value)
        if name == "w_rest" and "w" in self.__dict__.get("_memories_rv", {}):
            self.set_reset_value("w", self.w_rest)

    def extra_repr(self) -> str:
        return (
            super().extra_repr()
            + f", v_rest={self.v_rest}, w_rest={self.w_rest}, tau_w={self.tau_w}, a={self.a}, b={self.b}"
        )

    def neuronal_adaptation(self) -> None:
        r""":math:`W = W + (a (V - V_{rest}) - W) / \tau_w` with ``V`` = :math:`H[t]`."""
        self.w = self.w + 1.0 / self.tau_w * (self.a * (self.v - self.v_rest) - self.w)

    def neuronal_reset(self, spike: torch.Tensor) -> None:
        spike_d = spike.detach() if self.detach_reset else spike
        if self.v_reset is None:
            self.v = self.v - spike_d * self.v_threshold
        else:
            self.v = (1.0 - spike_d) * self.v + spike * self.v_reset
        self.w = self.w + self.b * spike

    def w_float_to_tensor(self, x: torch.Tensor) -> None:
        """Turn a float ``w`` into ``torch.full_like(x, w)``."""
        if isinstance(self.w, float):
            self.w = torch.full_like(x.data, self.w)

    def single_step_forward(self, x: torch.Tensor) -> torch.Tensor:
        """One step: charge, adaptation, fire, reset; ``x`` ``[N, ...]`` -> spikes ``[N, ...]``."""
        _check_input("x", x)
        self.v_float_to_tensor(x)
        self.w_float_to_tensor(x)
        self.neuronal_charge(x)
        self.neuronal_adaptation()
        spike = self.neuronal_fire()
        self.neuronal_reset(spike)
        return spike


class IzhikevichNode(AdaptBaseNode):
    r"""Izhikevich-style neuron: quadratic integrate-and-fire with adaptation ``w``.

    .. math::
        H[t] = V[t-1] + \frac{1}{\tau}\left(X[t] + a_0 (V[t-1] - V_{rest})(V[t-1] - V_c) - W[t-1]\right)

    followed by :class:`AdaptBaseNode`'s adaptation, fire and reset.

    Args:
        tau: membrane time constant (> 1).
        v_c: critical voltage (> ``v_rest``).
        a0: sharpness of the quadratic (> 0).
        tau_w: adaptation time constant (> 1).
        a: subthreshold coupling; b: spike-triggered jump of ``w``.
        Others: as :class:`AdaptBaseNode`.
    """

    _PARAM_CHECKS: ClassVar[_Checks] = {
        **AdaptBaseNode._PARAM_CHECKS,
        "tau": _check_tau,
        "v_c": _check_real,
        "a0": _check_positive,
    }

    def __init__(
        self,
        tau: float = 2.0,
        v_c: float = 0.8,
        a0: float = 1.0,
        v_threshold: float = 1.0,
        v_reset: float | None = 0.0,
        v_rest: float = -0.1,
        w_rest: float = 0.0,
        tau_w: float = 2.0,
        a: float = 0.0,
        b: float = 0.0,
        surrogate_function: Callable = _DEFAULT_SURROGATE,
        detach_reset: bool = False,
        step_mode: str = "s",
        backend: str = "auto",
        store_v_seq: bool = False,
    ) -> None:
        tau = _check_tau("tau", tau)
        a0 = _check_positive("a0", a0)
        super().__init__(
            v_threshold, v_reset, v_rest, w_rest, tau_w, a, b, surrogate_function, detach_reset, step_mode,
            backend, store_v_seq,
        )  # fmt: skip
        self.tau = tau
        self.v_c = v_c
        self.a0 = a0

    def _check_relations(self, **override: Any) -> None:
        super()._check_relations(**override)
        _check_vc_above_rest(self._param("v_c", override), self._param("v_rest", override))

    def extra_repr(self) -> str:
        return super().extra_repr() + f", tau={self.tau}, v_c={self.v_c}, a0={self.a0}"

    def neuronal_charge(self, x: torch.Tensor) -> None:
        v = self.v
        self.v = v + (x + self.a0 * (v - self.v_rest) * (v - self.v_c) - self.w) / self.tau


# ---------------------------------------------------------------------------- fused backends


def _register_cpu_backend() -> None:
    from .kernels.cpu import node_backend

    for cls in (IFNode, LIFNode):
        register_multi_step_backend(cls, "cpu", node_backend.multi_step)
        register_single_step_backend(cls, "cpu", node_backend.single_step)


def _cupy_multi_step(node: BaseNode, x_seq: torch.Tensor) -> Any:
    """``backend='cupy'``: the CuPy CUDA kernels of :mod:`snnlab.kernels.cuda` (imported on first use)."""
    from .kernels.cuda import node_multi_step

    return node_multi_step(node, x_seq)


_register_cpu_backend()
register_multi_step_backend(IFNode, "cupy", _cupy_multi_step)
register_multi_step_backend(LIFNode, "cupy", _cupy_multi_step)
