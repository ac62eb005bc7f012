"""JupyterLab and ipywidgets glue for snnlab dashboards.

Panel objects (``Dashboard(experiment)`` and its components) display inline in
JupyterLab 4 by themselves once :func:`notebook_extension` has run. This
module adds what only notebooks need:

* :func:`notebook_extension` -- load Panel's notebook support with every
  JavaScript and CSS resource inlined, so a notebook works with no internet;
* :func:`as_ipywidget` -- wrap a Panel object (or an Experiment, which gets a
  ``Dashboard``) as an ipywidget, so it can sit inside an ipywidgets layout
  (``ipywidgets.VBox([slider, as_ipywidget(dash)])``); needs ``jupyter_bokeh``;
* :func:`link_ipywidget` -- let an ipywidget control drive a live parameter of
  an Experiment (two-way): a value the parameter refuses (out of bounds,
  wrong type) puts the widget back to the parameter's current value and shows
  the refusal message; the simulation keeps its old value;
* :func:`param_ipywidget` -- build such a control from the parameter's
  declaration (slider over its bounds, checkbox, dropdown) and link it.

The experiment is any ``param.Parameterized``; nothing here touches its
simulation, it only reads and writes parameters, which the Experiment pushes
into the running network on its next step.
"""

from __future__ import annotations

import html
import math
import threading
from typing import Any

import param

__all__ = [
    "ParamLink",
    "as_ipywidget",
    "link_ipywidget",
    "notebook_extension",
    "param_ipywidget",
]

_LINKABLE = (param.Number, param.Boolean, param.Selector, param.String)


def notebook_extension(*extensions: str, **config: Any) -> None:
    """Load Panel in a notebook with its resources inlined (works offline).

    ``extensions`` and ``config`` are passed to ``panel.extension``;
    ``inline`` is forced to ``True`` (and ``pn.config.inline`` set) so the
    Bokeh/Panel JavaScript is embedded in the notebook instead of fetched
    from a CDN.
    """
    import panel as pn

    config["inline"] = True
    pn.config.inline = True
    pn.extension(*extensions, **config)


def as_ipywidget(obj: Any, **kwargs: Any) -> Any:
    """Return an ipywidget that renders ``obj`` (a Panel object or an Experiment).

    An Experiment (a ``param.Parameterized`` that is not a Panel object and has
    ``frame``) is first wrapped in ``snnlab.dashboards.Dashboard``. The result is
    ``panel.ipywidget(obj, **kwargs)``, a ``jupyter_bokeh`` ``BokehModel``
    widget that can be placed in any ipywidgets container.

    Raises ``ImportError`` naming the missing package when ``jupyter_bokeh``
    is not installed.
    """
    try:
        import jupyter_bokeh  # noqa: F401
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "as_ipywidget needs the 'jupyter_bokeh' package (pip install jupyter_bokeh)"
        ) from exc
    import panel as pn

    if _is_experiment(obj):
        from snnlab.dashboards import Dashboard

        obj = Dashboard(obj)
    if not pn.config.inline:
        return pn.ipywidget(obj, **kwargs)
    # Render with inline resources and inline the stylesheets of every element, as Panel does
    # for its own notebook output; otherwise the widget's CSS would be requested from a CDN.
    from bokeh.models import UIElement
    from panel.io.notebook import patch_inline_stylesheets
    from panel.io.resources import set_resource_mode

    with set_resource_mode("inline"):
        widget = pn.ipywidget(obj, **kwargs)
    model = widget._model
    for sub in model.select({"type": UIElement}):
        patch_inline_stylesheets(sub)
    widget.update_from_model(model)
    return widget


def _is_experiment(obj: Any) -> bool:
    if not isinstance(obj, param.Parameterized) or not callable(getattr(obj, "frame", None)):
        return False
    try:
        from panel.viewable import Viewable, Viewer
    except ImportError:  # pragma: no cover - panel is a dependency of dashboards
        return True
    return not isinstance(obj, Viewable | Viewer)


def _experiment_type_error(experiment: Any) -> TypeError:
    kind = type(experiment).__name__
    return TypeError(f"experiment must be a param.Parameterized (an snnlab Experiment), got {kind}")


def _unknown_name_error(experiment: param.Parameterized, name: Any) -> ValueError:
    allowed = [n for n in experiment.param if n != "name"]
    kind = type(experiment).__name__
    return ValueError(f"name={name!r} is not a parameter of {kind}; allowed: {allowed}")


def _check_link_args(widget: Any, experiment: Any, name: Any) -> param.Parameter:
    if not (hasattr(widget, "observe") and hasattr(widget, "has_trait") and widget.has_trait("value")):
        raise TypeError(
            f"widget must be an ipywidgets control with a 'value' trait, got {type(widget).__name__}"
        )
    if not isinstance(experiment, param.Parameterized):
        raise _experiment_type_error(experiment)
    if not isinstance(name, str):
        raise TypeError(f"name must be a parameter name (str), got {type(name).__name__}")
    if name not in experiment.param or name == "name":
        raise _unknown_name_error(experiment, name)
    parameter = experiment.param[name]
    if parameter.constant or parameter.readonly:
        raise ValueError(
            f"name={name!r} is a constant parameter of {type(experiment).__name__} and cannot be linked"
        )
    return parameter


class ParamLink:
    """A two-way link between an ipywidget's ``value`` and ``experiment.<name>``.

    Attributes: ``widget`` (the control), ``experiment``, ``name``,
    ``message`` (an ``ipywidgets.HTML`` that shows the last refusal, empty
    after an accepted value), ``error`` (the last refusal text or ``None``).
    Displaying the link shows the control above its message. ``unlink()``
    removes both observers.
    """

    def __init__(self, widget: Any, experiment: param.Parameterized, name: str, message: Any = None) -> None:
        import ipywidgets

        parameter = _check_link_args(widget, experiment, name)
        self._integer = isinstance(parameter, param.Integer)
        self.widget = widget
        self.experiment = experiment
        self.name = name
        self.message = message if message is not None else ipywidgets.HTML(value="")
        self.error: str | None = None
        self._guard = threading.local()
        self._watcher = experiment.param.watch(self._from_experiment, [name])
        widget.observe(self._from_widget, names="value")
        self._linked = True
        self._set_widget(getattr(experiment, name))

    # widget -> experiment
    def _from_widget(self, change: dict[str, Any]) -> None:
        if getattr(self._guard, "active", False):
            return
        value = change["new"]
        if self._integer and isinstance(value, float) and value.is_integer():
            value = int(value)  # numeric text boxes hold floats; 7.0 means 7 for an Integer parameter
        try:
            setattr(self.experiment, self.name, value)
        except (ValueError, TypeError) as exc:
            self.error = str(exc)
            self.message.value = f'<span style="color:#b00020">{html.escape(self.error)}</span>'
            self._set_widget(getattr(self.experiment, self.name))
        else:
            self.error = None
            self.message.value = ""

    # experiment -> widget
    def _from_experiment(self, event: param.parameterized.Event) -> None:
        self._set_widget(event.new)

    def _set_widget(self, value: Any) -> None:
        self._guard.active = True
        try:
            if self.widget.value != value:
                self.widget.value = value
        except Exception as exc:  # a value the widget itself cannot hold
            self.error = f"widget cannot show {self.name}={value!r}: {exc}"
            self.message.value = f'<span style="color:#b00020">{html.escape(self.error)}</span>'
        finally:
            self._guard.active = False

    def unlink(self) -> None:
        """Stop syncing the widget and the parameter (idempotent)."""
        if not self._linked:
            return
        self.widget.unobserve(self._from_widget, names="value")
        self.experiment.param.unwatch(self._watcher)
        self._linked = False

    def box(self) -> Any:
        """An ``ipywidgets.VBox`` with the control and its message line."""
        import ipywidgets

        return ipywidgets.VBox([self.widget, self.message])

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.box()._repr_mimebundle_(**kwargs)

    def __repr__(self) -> str:
        state = "linked" if self._linked else "unlinked"
        target = f"{type(self.experiment).__name__}.{self.name}"
        return f"ParamLink({type(self.widget).__name__} <-> {target}, {state})"


def link_ipywidget(widget: Any, experiment: param.Parameterized, name: str, message: Any = None) -> ParamLink:
    """Let ``widget.value`` drive ``experiment.<name>`` and follow its changes.

    Setting the widget sets the parameter (the Experiment applies it on its
    next simulated step). A value the parameter refuses -- out of its bounds
    or of the wrong type, ``ValueError``/``TypeError`` from ``param`` -- is
    not applied: the widget goes back to the parameter's current value and
    ``message`` (an ``ipywidgets.HTML``, created when not given) shows the
    refusal. Changes of the parameter made elsewhere (a script, a Panel
    slider) move the widget.

    Raises ``TypeError`` if ``widget`` has no ``value`` trait or ``experiment``
    is not a ``param.Parameterized``, and ``ValueError`` if ``name`` is not one
    of its (non-constant) parameters.
    """
    return ParamLink(widget, experiment, name, message=message)


def _finite(x: Any) -> bool:
    return x is not None and math.isfinite(x)


def param_ipywidget(experiment: param.Parameterized, name: str, **kwargs: Any) -> ParamLink:
    """Build an ipywidgets control for ``experiment.<name>`` and link it.

    ``param.Integer`` -> ``IntSlider`` (``IntText`` without two finite
    bounds), ``param.Number`` -> ``FloatSlider`` (``FloatText``),
    ``param.Boolean`` -> ``Checkbox``, ``param.Selector`` -> ``Dropdown``,
    ``param.String`` -> ``Text``. Slider ranges use ``softbounds`` when
    declared, else ``bounds``; the parameter's label and doc become the
    description and tooltip. ``kwargs`` override the control's options.
    Returns the :class:`ParamLink` (display it to show control and message).
    """
    import ipywidgets

    if not isinstance(experiment, param.Parameterized):
        raise _experiment_type_error(experiment)
    if not isinstance(name, str) or name not in experiment.param or name == "name":
        raise _unknown_name_error(experiment, name)
    p = experiment.param[name]
    if not isinstance(p, _LINKABLE):
        raise TypeError(
            f"name={name!r} is a {type(p).__name__} parameter; param_ipywidget supports "
            "Number, Integer, Boolean, Selector and String parameters"
        )
    options: dict[str, Any] = {
        "description": p.label or name,
        "tooltip": (p.doc or "").strip() or None,
        "style": {"description_width": "initial"},
        "continuous_update": False,
    }
    value = getattr(experiment, name)
    if isinstance(p, param.Boolean):
        options.pop("continuous_update")
        cls: Any = ipywidgets.Checkbox
    elif isinstance(p, param.Selector):
        options.pop("continuous_update")
        options["options"] = list(p.objects.values()) if isinstance(p.objects, dict) else list(p.objects)
        cls = ipywidgets.Dropdown
    elif isinstance(p, param.Number):
        lo, hi = p.softbounds if p.softbounds is not None else (None, None)
        blo, bhi = p.bounds if p.bounds is not None else (None, None)
        lo = lo if lo is not None else blo
        hi = hi if hi is not None else bhi
        integer = isinstance(p, param.Integer)
        if _finite(lo) and _finite(hi):
            cls = ipywidgets.IntSlider if integer else ipywidgets.FloatSlider
            options["min"], options["max"] = lo, hi
            if p.step is not None:
                options["step"] = p.step
            elif not integer:
                options["step"] = (hi - lo) / 200.0
                options["readout_format"] = ".3g"
        else:
            cls = ipywidgets.IntText if integer else ipywidgets.FloatText
    else:
        cls = ipywidgets.Text
    if options.get("tooltip") is None:
        options.pop("tooltip")
    options.update(kwargs)
    widget = cls(value=value, **options)
    return ParamLink(widget, experiment, name)
