"""Panel controls that write an Experiment's parameters and call its methods.

* :class:`ParameterControls` -- one widget per live parameter, generated from
  the experiment's ``param`` declarations (a slider for a bounded number, a
  numeric input for an unbounded one, a checkbox for a boolean, a select for
  a selector). Moving a widget sets the parameter; a refused value (the
  ``ValueError``/``TypeError`` param raises for an out-of-bounds or wrong
  value) is shown to the person and the widget goes back to the value the
  experiment kept.
* :class:`RunControls` -- run / pause / step / reset and the ``speed`` setting.
* :class:`RewardControls` -- reward +1 / -1 buttons and the ``auto_reward``
  toggle of a reward experiment.

Errors never escape a callback: they go to ``notify(message, level)``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import panel as pn
import param

__all__ = ["Notifier", "ParameterControls", "RewardControls", "RunControls", "default_notify", "live_params"]

log = logging.getLogger("snnlab.dashboards")

Notifier = Callable[[str, str], None]

#: parameters that never get a generic widget
_ALWAYS_EXCLUDED = ("name",)


def default_notify(message: str, level: str = "error") -> None:
    """Show ``message`` as a Panel notification when available; always log it."""
    getattr(log, "error" if level == "error" else "info")(message)
    area = getattr(pn.state, "notifications", None)
    if area is None:
        return
    try:
        getattr(area, level if level in ("error", "warning", "info", "success") else "info")(
            message, duration=6000
        )
    except Exception:  # a closed document cannot show it; the log has it
        log.debug("notification not shown", exc_info=True)


def live_params(experiment: param.Parameterized, exclude: Iterable[str] = ()) -> list[str]:
    """Names of the experiment's parameters a person may move (not constant / read-only)."""
    skip = set(exclude) | set(_ALWAYS_EXCLUDED)
    names = []
    for name, p in experiment.param.objects("existing").items():
        if name in skip or p.constant or p.readonly:
            continue
        if isinstance(p, (param.Number, param.Boolean, param.Selector)):
            names.append(name)
    return names


def _widget(cls: type, text: str, kind: str | None = None, **kw: Any) -> Any:
    """``cls(**kw)`` labelled ``text`` (``label``/``color`` on new Panel, ``name``/``button_type`` on old)."""
    kw["label" if "label" in cls.param else "name"] = text
    if kind is not None:
        kw["color" if "color" in cls.param else "button_type"] = kind
    return cls(**kw)


def _number_step(p: param.Number, lo: float, hi: float) -> float:
    step = getattr(p, "step", None)
    if step:
        return float(step)
    span = hi - lo
    if isinstance(p, param.Integer):
        return 1
    raw = span / 200.0
    mag = 10 ** np.floor(np.log10(raw)) if raw > 0 else 0.01
    return float(mag)


def make_widget(experiment: param.Parameterized, name: str) -> pn.widgets.Widget:
    """A widget for parameter ``name`` of ``experiment``, showing its current value."""
    p = experiment.param[name]
    value = getattr(experiment, name)
    label = p.label or name
    doc = (p.doc or "").strip()
    kw: dict[str, Any] = {"value": value, "sizing_mode": "stretch_width"}

    def build(cls: type, **extra: Any) -> pn.widgets.Widget:
        if doc and "description" in cls.param:
            extra["description"] = doc
        return _widget(cls, label, **kw, **extra)

    if isinstance(p, param.Boolean):
        return build(pn.widgets.Checkbox)
    if isinstance(p, param.Selector):
        return build(pn.widgets.Select, options=list(p.objects))
    lo, hi = p.softbounds if getattr(p, "softbounds", None) else (None, None)
    blo, bhi = p.bounds or (None, None)
    lo = blo if lo is None else lo
    hi = bhi if hi is None else hi
    integer = isinstance(p, param.Integer)
    if lo is None or hi is None or not np.isfinite(lo) or not np.isfinite(hi):
        return build(pn.widgets.IntInput if integer else pn.widgets.FloatInput)
    step = _number_step(p, float(lo), float(hi))
    if integer:
        return build(pn.widgets.IntSlider, start=int(lo), end=int(hi), step=int(step))
    return build(pn.widgets.FloatSlider, start=float(lo), end=float(hi), step=step)


class _Binding:
    """Two-way link between one widget and one experiment parameter, with refusal."""

    def __init__(self, experiment: param.Parameterized, name: str, widget: pn.widgets.Widget,
                 notify: Notifier) -> None:
        self.experiment = experiment
        self.name = name
        self.widget = widget
        self.notify = notify
        self._guard = False
        widget.param.watch(self._on_widget, "value")

    def _set_widget(self, value: Any) -> None:
        self._guard = True
        try:
            self.widget.value = value
        finally:
            self._guard = False

    def _on_widget(self, event: param.parameterized.Event) -> None:
        if self._guard:
            return
        try:
            setattr(self.experiment, self.name, event.new)
        except (ValueError, TypeError) as err:
            self.notify(f"{self.name} = {event.new!r} refused: {err}", "error")
            self._set_widget(getattr(self.experiment, self.name))
        except Exception as err:  # keep the dashboard alive whatever happens
            self.notify(f"setting {self.name} failed: {err}", "error")
            self._set_widget(getattr(self.experiment, self.name))

    def sync(self) -> None:
        """Show the experiment's current value (after a script or a reset changed it)."""
        value = getattr(self.experiment, self.name)
        if self.widget.value != value:
            self._set_widget(value)


class ParameterControls(pn.viewable.Viewer):
    """Widgets generated from the experiment's live parameters.

    ``widgets[name]`` is the widget of parameter ``name``; :meth:`sync` copies
    values changed elsewhere back into the widgets.
    """

    def __init__(self, experiment: param.Parameterized, *, exclude: Iterable[str] = ("speed", "seed"),
                 notify: Notifier = default_notify) -> None:
        super().__init__()
        self.experiment = experiment
        self.notify = notify
        self.widgets: dict[str, pn.widgets.Widget] = {}
        self._bindings: list[_Binding] = []
        for name in live_params(experiment, exclude):
            widget = make_widget(experiment, name)
            self.widgets[name] = widget
            self._bindings.append(_Binding(experiment, name, widget, notify))
        self.layout = pn.Column(pn.pane.Markdown("**Parameters**", margin=(0, 10)), *self.widgets.values(),
                                sizing_mode="stretch_width")

    def __panel__(self) -> pn.Column:
        return self.layout

    def sync(self) -> None:
        for binding in self._bindings:
            binding.sync()


_SPEEDS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10_000, 20_000, 50_000, 100_000)


class RunControls(pn.viewable.Viewer):
    """Run / pause / step / reset buttons and a speed selector (simulated steps per second).

    ``on_reset`` (optional) is called after ``experiment.reset()`` so views can
    clear what they show.
    """

    def __init__(self, experiment: Any, *, notify: Notifier = default_notify,
                 on_reset: Callable[[], None] | None = None) -> None:
        super().__init__()
        self.experiment = experiment
        self.notify = notify
        self.on_reset = on_reset
        self.run_button = _widget(pn.widgets.Button, "Run", "success", width=80)
        self.pause_button = _widget(pn.widgets.Button, "Pause", "warning", width=80)
        self.step_button = _widget(pn.widgets.Button, "Step", width=70)
        self.reset_button = _widget(pn.widgets.Button, "Reset", "danger", width=70)
        self.step_count = _widget(pn.widgets.IntInput, "steps per click", value=1, start=1, end=100_000,
                                              width=110)
        self.run_button.on_click(lambda _e: self._call(self.run))
        self.pause_button.on_click(lambda _e: self._call(self.pause))
        self.step_button.on_click(lambda _e: self._call(self.step))
        self.reset_button.on_click(lambda _e: self._call(self.reset))
        widgets: list[Any] = [self.run_button, self.pause_button, self.step_button, self.reset_button]
        self.speed: pn.widgets.Widget | None = None
        self._speed_binding: _Binding | None = None
        if "speed" in experiment.param:
            p = experiment.param["speed"]
            lo, hi = p.bounds or (1, 100_000)
            options = [s for s in _SPEEDS if (lo is None or s >= lo) and (hi is None or s <= hi)]
            current = experiment.speed
            if current not in options:
                options = sorted({*options, current})
            self.speed = _widget(pn.widgets.DiscreteSlider, "speed (steps/s)", options=options, value=current,
                                                   sizing_mode="stretch_width")
            self._speed_binding = _Binding(experiment, "speed", self.speed, notify)
        second = [self.step_count] + ([self.speed] if self.speed is not None else [])
        self.layout = pn.Column(pn.Row(*widgets), pn.Row(*second), sizing_mode="stretch_width")
        self.sync()

    def __panel__(self) -> pn.Column:
        return self.layout

    def _call(self, fn: Callable[[], None]) -> None:
        try:
            fn()
        except Exception as err:
            self.notify(f"{fn.__name__} failed: {err}", "error")
        self.sync()

    def run(self) -> None:
        self.experiment.run()

    def pause(self) -> None:
        self.experiment.pause()

    def step(self) -> None:
        self.experiment.step(int(self.step_count.value or 1))

    def reset(self) -> None:
        self.experiment.reset()
        if self.on_reset is not None:
            self.on_reset()

    def sync(self) -> None:
        running = bool(getattr(self.experiment, "running", False))
        if self.run_button.disabled != running:
            self.run_button.disabled = running
        if self.pause_button.disabled == running:
            self.pause_button.disabled = not running
        if self.step_button.disabled != running:
            self.step_button.disabled = running
        if self._speed_binding is not None:
            self._speed_binding.sync()


class RewardControls(pn.viewable.Viewer):
    """Reward +1 / −1 buttons and the automatic-reward toggle.

    The buttons call ``experiment.give_reward(+1.0)`` / ``give_reward(-1.0)``;
    the toggle writes the experiment's ``auto_reward`` parameter.
    """

    def __init__(self, experiment: Any, *, notify: Notifier = default_notify) -> None:
        super().__init__()
        if not callable(getattr(experiment, "give_reward", None)):
            raise TypeError(
                "experiment must have a give_reward(value) method for RewardControls, "
                f"got {type(experiment).__name__}"
            )
        self.experiment = experiment
        self.notify = notify
        self.plus = _widget(pn.widgets.Button, "Reward +1", "success", width=110)
        self.minus = _widget(pn.widgets.Button, "Punish −1", "danger", width=110)
        self.plus.on_click(lambda _e: self.give(1.0))
        self.minus.on_click(lambda _e: self.give(-1.0))
        items: list[Any] = [pn.Row(self.plus, self.minus)]
        self._auto: _Binding | None = None
        self.auto: pn.widgets.Widget | None = None
        if "auto_reward" in experiment.param:
            self.auto = _widget(pn.widgets.Toggle, "automatic reward", value=bool(experiment.auto_reward),
                                          width=150)
            self._auto = _Binding(experiment, "auto_reward", self.auto, notify)
            items.append(self.auto)
        self.layout = pn.Column(pn.pane.Markdown("**Reward**", margin=(0, 10)), *items)

    def __panel__(self) -> pn.Column:
        return self.layout

    def give(self, value: float) -> None:
        """Deliver reward ``value`` (errors are shown, not raised)."""
        try:
            self.experiment.give_reward(float(value))
        except Exception as err:
            self.notify(f"reward {value:+g} failed: {err}", "error")

    def sync(self) -> None:
        if self._auto is not None:
            self._auto.sync()
