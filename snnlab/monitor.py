"""Monitors: record what flows through the modules of a network.

SpikingJelly's monitor API. A monitor attaches hooks to every submodule of
``net`` that is an ``instance`` (``instance=None`` means ``type(net)``, so
``OutputMonitor(lif_node)`` watches that one node, under the name ``''``) and
appends what it sees, after ``function_on_*`` is applied, to

* ``records``: every recorded value of every monitored module, in the order
  the hooks fired (``monitor[i]`` is ``records[i]``);
* ``name_records[name]``: the values of the module called ``name`` in
  ``net.named_modules()`` (``monitor[name]``).

``monitored_layers`` lists those names in ``named_modules()`` order.

Which hook records what:

========================  =====================================================
``OutputMonitor``         the output ``y`` of ``forward`` (a 1-tuple unpacked)
``InputMonitor``          the positional inputs of ``forward``: ``x`` if there is
                          one argument, else the tuple of them
``AttributeMonitor``      ``getattr(module, attribute_name)`` before
                          (``pre_forward=True``) or after the forward pass
``GradInputMonitor``      ``dL/dx`` for the module's inputs (1-tuple unpacked)
``GradOutputMonitor``     ``dL/dy`` for the module's outputs (1-tuple unpacked)
========================  =====================================================

Values are stored as given (no copy, no detach); pass e.g.
``function_on_output=lambda y: y.detach().cpu()`` to keep memory and the
autograd graph small.

Beyond SpikingJelly: the keyword-only ``max_records`` bounds memory. With
``max_records=k``, ``records`` and every ``name_records[name]`` are ring
buffers (:class:`RingBuffer`, a ``collections.deque(maxlen=k)``) that keep
only their newest ``k`` entries. ``records`` and ``name_records`` are separate
stores: taking an entry out of ``records`` (``records.pop(0)``, as the STDP
learners do) leaves ``name_records`` untouched.

Hooks hold only a weak reference to their monitor, so dropping the last
reference to a monitor removes its hooks.
"""

from __future__ import annotations

import weakref
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

from torch import nn

__all__ = [
    "AttributeMonitor",
    "BaseMonitor",
    "GradInputMonitor",
    "GradOutputMonitor",
    "InputMonitor",
    "OutputMonitor",
    "RingBuffer",
    "unpack_len1_tuple",
]

InstanceSpec = type | tuple[type, ...] | None


def _identity(x: Any) -> Any:
    return x


def unpack_len1_tuple(x: Any) -> Any:
    """Return ``x[0]`` if ``x`` is a tuple of length one, else ``x`` unchanged."""
    if isinstance(x, tuple) and len(x) == 1:
        return x[0]
    return x


class RingBuffer(deque):
    """A ``collections.deque`` with a fixed ``maxlen`` that also accepts ``pop(index)``.

    Appending to a full buffer drops the oldest entry. ``pop()`` removes the
    newest entry, ``pop(0)`` the oldest, ``pop(i)`` entry ``i`` (list-style),
    and ``buffer[a:b]`` returns a ``list``, so code written for a ``list`` of
    records keeps working.
    """

    def __getitem__(self, index: int | slice) -> Any:  # type: ignore[override]
        if isinstance(index, slice):
            return list(self)[index]
        return super().__getitem__(index)

    def pop(self, index: int = -1) -> Any:  # type: ignore[override]
        if index == -1:
            return super().pop()
        if index == 0:
            return self.popleft()
        value = self[index]
        del self[index]
        return value


def _check_max_records(max_records: Any) -> int | None:
    if max_records is None:
        return None
    if isinstance(max_records, bool) or not isinstance(max_records, int):
        raise TypeError(
            f"max_records must be a positive int or None, got {type(max_records).__name__} {max_records!r}"
        )
    if max_records < 1:
        raise ValueError(f"max_records must be a positive int or None, got {max_records!r}")
    return max_records


def _check_instance(instance: Any) -> None:
    if instance is None or isinstance(instance, type):
        return
    if isinstance(instance, tuple) and all(isinstance(t, type) for t in instance):
        return
    raise TypeError(
        f"instance must be None, a type or a tuple of types, got {type(instance).__name__} {instance!r}"
    )


def _check_callable(name: str, value: Any) -> None:
    if not callable(value):
        raise TypeError(f"{name} must be callable, got {type(value).__name__} {value!r}")


def _check_net(net: Any) -> None:
    if not isinstance(net, nn.Module):
        raise TypeError(f"net must be a torch.nn.Module, got {type(net).__name__} {net!r}")


class BaseMonitor:
    """Hook bookkeeping shared by all monitors.

    Attributes:
        hooks: the ``torch.utils.hooks.RemovableHandle`` of every hook.
        monitored_layers: names (from ``net.named_modules()``) of the watched modules.
        records: every recorded value in recording order (``list``, or a
            :class:`RingBuffer` when ``max_records`` is set).
        name_records: ``{name: values recorded from that module}``.
        max_records: ``None`` (unbounded) or the ring-buffer length.
    """

    def __init__(self, *, max_records: int | None = None) -> None:
        self.max_records = _check_max_records(max_records)
        self.hooks: list[Any] = []
        self.monitored_layers: list[str] = []
        self.records: list[Any] | RingBuffer = self._new_store()
        self.name_records: dict[str, list[Any] | RingBuffer] = {}
        self._enable = True

    # ----------------------------------------------------------------- storage
    def _new_store(self) -> list[Any] | RingBuffer:
        if self.max_records is None:
            return []
        return RingBuffer(maxlen=self.max_records)

    def _monitor_modules(self, net: nn.Module, instance: InstanceSpec) -> Iterator[tuple[str, nn.Module]]:
        """Yield ``(name, module)`` for every submodule of ``net`` that is an ``instance``."""
        if instance is None:
            instance = type(net)
        for name, module in net.named_modules():
            if isinstance(module, instance):
                self.monitored_layers.append(name)
                self.name_records[name] = self._new_store()
                yield name, module

    def _record(self, name: str, value: Any) -> None:
        self.records.append(value)
        self.name_records[name].append(value)

    def _hook_factory(self, name: str, record: Callable[[BaseMonitor, str, tuple], None]) -> Callable:
        """A hook that calls ``record(monitor, name, hook_args)`` while the monitor lives and is enabled."""
        ref = weakref.ref(self)

        def hook(*args: Any) -> None:
            monitor = ref()
            if monitor is not None and monitor.is_enable():
                record(monitor, name, args)

        return hook

    # ----------------------------------------------------------------- access
    def __getitem__(self, i: int | str) -> Any:
        """``monitor[i]`` is ``records[i]``; ``monitor[name]`` is ``list(name_records[name])``."""
        if isinstance(i, bool):
            raise TypeError(f"index must be an int or a layer name (str), got bool {i!r}")
        if isinstance(i, int):
            return self.records[i]
        if isinstance(i, str):
            if i not in self.name_records:
                raise KeyError(f"{i!r} is not a monitored layer; monitored_layers={self.monitored_layers}")
            return list(self.name_records[i])
        raise TypeError(f"index must be an int or a layer name (str), got {type(i).__name__} {i!r}")

    # ----------------------------------------------------------------- control
    def clear_recorded_data(self) -> None:
        """Empty ``records`` and every ``name_records[name]``."""
        self.records.clear()
        for store in self.name_records.values():
            store.clear()

    def enable(self) -> None:
        """Start (resume) recording."""
        self._enable = True

    def disable(self) -> None:
        """Stop recording; hooks stay attached."""
        self._enable = False

    def is_enable(self) -> bool:
        """Whether the monitor is recording."""
        return self._enable

    def remove_hooks(self) -> None:
        """Detach every hook from the network; the monitor records nothing afterwards."""
        for handle in self.hooks:
            handle.remove()
        self.hooks.clear()

    def __del__(self) -> None:
        # Tolerates a half-built monitor (a constructor that raised).
        if "_enable" in self.__dict__:
            self.disable()
        if "records" in self.__dict__:
            self.clear_recorded_data()
        if "hooks" in self.__dict__:
            self.remove_hooks()

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(monitored_layers={self.monitored_layers}, "
            f"records={len(self.records)}, max_records={self.max_records}, enabled={self._enable})"
        )


class OutputMonitor(BaseMonitor):
    """Record ``function_on_output(y)`` for the output ``y`` of every monitored module.

    Args:
        net: the network (or a single module) to watch.
        instance: watch submodules that are instances of this type (or tuple
            of types); ``None`` means ``type(net)``.
        function_on_output: applied to each output before it is stored.
        max_records: keyword-only; keep only the newest ``max_records`` entries.

    A module returning a 1-tuple is recorded as its single element. For a
    neuron in step mode ``'s'`` each record is ``[N, ...]``; in ``'m'`` it is
    ``[T, N, ...]``.
    """

    def __init__(
        self,
        net: nn.Module,
        instance: InstanceSpec = None,
        function_on_output: Callable[[Any], Any] = _identity,
        *,
        max_records: int | None = None,
    ) -> None:
        _check_net(net)
        _check_instance(instance)
        _check_callable("function_on_output", function_on_output)
        super().__init__(max_records=max_records)
        self.function_on_output = function_on_output
        for name, module in self._monitor_modules(net, instance):
            self.hooks.append(module.register_forward_hook(self.create_hook(name)))

    def create_hook(self, name: str) -> Callable:
        """The forward hook ``(module, inputs, output)`` that records under ``name``."""

        def record(monitor: OutputMonitor, name: str, args: tuple) -> None:
            _, _, output = args
            monitor._record(name, monitor.function_on_output(unpack_len1_tuple(output)))

        return self._hook_factory(name, record)


class InputMonitor(BaseMonitor):
    """Record ``function_on_input(x)`` for the positional inputs of every monitored module.

    With one positional argument the record is that argument ``x``; with
    several it is the tuple of them. Recorded after the module's forward pass
    (the same objects that were passed in). Arguments as for
    :class:`OutputMonitor`, with ``function_on_input``.
    """

    def __init__(
        self,
        net: nn.Module,
        instance: InstanceSpec = None,
        function_on_input: Callable[[Any], Any] = _identity,
        *,
        max_records: int | None = None,
    ) -> None:
        _check_net(net)
        _check_instance(instance)
        _check_callable("function_on_input", function_on_input)
        super().__init__(max_records=max_records)
        self.function_on_input = function_on_input
        for name, module in self._monitor_modules(net, instance):
            self.hooks.append(module.register_forward_hook(self.create_hook(name)))

    def create_hook(self, name: str) -> Callable:
        """The forward hook ``(module, inputs, output)`` that records under ``name``."""

        def record(monitor: InputMonitor, name: str, args: tuple) -> None:
            _, inputs, _ = args
            monitor._record(name, monitor.function_on_input(unpack_len1_tuple(inputs)))

        return self._hook_factory(name, record)


class AttributeMonitor(BaseMonitor):
    """Record ``function_on_attribute(module.<attribute_name>)`` around every forward pass.

    Args:
        attribute_name: the attribute to read (e.g. ``'v'`` for a membrane potential).
        pre_forward: ``True`` reads it just before ``forward`` runs, ``False``
            just after.
        net, instance, max_records: as for :class:`OutputMonitor`.
        function_on_attribute: applied to the value before it is stored; e.g.
            ``lambda v: v.clone()`` when the attribute is updated in place.
    """

    def __init__(
        self,
        attribute_name: str,
        pre_forward: bool,
        net: nn.Module,
        instance: InstanceSpec = None,
        function_on_attribute: Callable[[Any], Any] = _identity,
        *,
        max_records: int | None = None,
    ) -> None:
        if not isinstance(attribute_name, str) or not attribute_name:
            raise TypeError(
                f"attribute_name must be a non-empty str, got {type(attribute_name).__name__} "
                f"{attribute_name!r}"
            )
        if not isinstance(pre_forward, bool):
            raise TypeError(f"pre_forward must be a bool, got {type(pre_forward).__name__} {pre_forward!r}")
        _check_net(net)
        _check_instance(instance)
        _check_callable("function_on_attribute", function_on_attribute)
        super().__init__(max_records=max_records)
        self.attribute_name = attribute_name
        self.pre_forward = pre_forward
        self.function_on_attribute = function_on_attribute
        for name, module in self._monitor_modules(net, instance):
            if pre_forward:
                self.hooks.append(module.register_forward_pre_hook(self.create_hook(name)))
            else:
                self.hooks.append(module.register_forward_hook(self.create_hook(name)))

    def create_hook(self, name: str) -> Callable:
        """A forward (pre-)hook ``(module, ...)`` that records the attribute under ``name``."""

        def record(monitor: AttributeMonitor, name: str, args: tuple) -> None:
            module = args[0]
            value = getattr(module, monitor.attribute_name)
            monitor._record(name, monitor.function_on_attribute(value))

        return self._hook_factory(name, record)


class GradInputMonitor(BaseMonitor):
    """Record ``function_on_grad_input(dL/dx)`` for the inputs ``x`` of every monitored module.

    Uses ``register_full_backward_hook``: one record per backward pass through
    the module, ``dL/dx`` for one input (``None`` where an input needs no
    gradient), a tuple for several. Arguments as for :class:`OutputMonitor`,
    with ``function_on_grad_input``.
    """

    def __init__(
        self,
        net: nn.Module,
        instance: InstanceSpec = None,
        function_on_grad_input: Callable[[Any], Any] = _identity,
        *,
        max_records: int | None = None,
    ) -> None:
        _check_net(net)
        _check_instance(instance)
        _check_callable("function_on_grad_input", function_on_grad_input)
        super().__init__(max_records=max_records)
        self.function_on_grad_input = function_on_grad_input
        for name, module in self._monitor_modules(net, instance):
            self.hooks.append(module.register_full_backward_hook(self.create_hook(name)))

    def create_hook(self, name: str) -> Callable:
        """The full backward hook ``(module, grad_input, grad_output)`` that records under ``name``."""

        def record(monitor: GradInputMonitor, name: str, args: tuple) -> None:
            _, grad_input, _ = args
            monitor._record(name, monitor.function_on_grad_input(unpack_len1_tuple(grad_input)))

        return self._hook_factory(name, record)


class GradOutputMonitor(BaseMonitor):
    """Record ``function_on_grad_output(dL/dy)`` for the outputs ``y`` of every monitored module.

    Uses ``register_full_backward_hook``; backward runs from the last layer to
    the first, so records of a sequential network come in reverse layer
    order. Arguments as for :class:`OutputMonitor`, with
    ``function_on_grad_output``.
    """

    def __init__(
        self,
        net: nn.Module,
        instance: InstanceSpec = None,
        function_on_grad_output: Callable[[Any], Any] = _identity,
        *,
        max_records: int | None = None,
    ) -> None:
        _check_net(net)
        _check_instance(instance)
        _check_callable("function_on_grad_output", function_on_grad_output)
        super().__init__(max_records=max_records)
        self.function_on_grad_output = function_on_grad_output
        for name, module in self._monitor_modules(net, instance):
            self.hooks.append(module.register_full_backward_hook(self.create_hook(name)))

    def create_hook(self, name: str) -> Callable:
        """The full backward hook ``(module, grad_input, grad_output)`` that records under ``name``."""

        def record(monitor: GradOutputMonitor, name: str, args: tuple) -> None:
            _, _, grad_output = args
            monitor._record(name, monitor.function_on_grad_output(unpack_len1_tuple(grad_output)))

        return self._hook_factory(name, record)

