"""ipywidgets interop (no browser): ipywidget controls drive Experiment parameters,
Panel dashboards become ipywidgets."""

from __future__ import annotations

import threading

import pytest

param = pytest.importorskip("param")
ipywidgets = pytest.importorskip("ipywidgets")

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from snnlab.dashboards.jupyter import (  # noqa: E402
    ParamLink,
    as_ipywidget,
    link_ipywidget,
    param_ipywidget,
)

TAU_BOUNDS = (1.0, 100.0)


class StandIn(param.Parameterized):
    """The parts of the Experiment contract the glue relies on: bounded params, a lock, frame()."""

    tau = param.Number(2.0, bounds=TAU_BOUNDS, doc="membrane time constant (steps)")
    v_threshold = param.Number(1.0, bounds=(0.1, 5.0), softbounds=(0.5, 2.0), doc="threshold")
    n_spikes = param.Integer(3, bounds=(0, 10))
    auto_reward = param.Boolean(False)
    mode = param.Selector(objects=["step", "ramp", "noise"], default="step")
    free = param.Number(0.5)
    size = param.Integer(10, constant=True)
    inputs = param.List([])

    def __init__(self, **params):
        super().__init__(**params)
        self.lock = threading.RLock()
        self.t = 0
        self.v = 0.0
        self.taus_used: list[float] = []

    def step(self, n: int = 1) -> None:
        # LIF charge with the tau current at each step: v += (x - v) / tau
        with self.lock:
            for _ in range(n):
                self.taus_used.append(self.tau)
                self.v = self.v + (1.0 - self.v) / self.tau
                self.t += 1

    def frame(self) -> dict:
        return {"t": self.t}


def test_widget_drives_parameter_and_next_step_uses_it():
    exp = StandIn()
    w = ipywidgets.FloatText(value=0.0)
    link = link_ipywidget(w, exp, "tau")
    assert isinstance(link, ParamLink)
    assert w.value == 2.0  # the widget starts at the parameter's value
    exp.step()
    w.value = 4.0
    assert exp.tau == 4.0
    exp.step()
    assert exp.taus_used == [2.0, 4.0]
    # the same two steps written out: v1 = 0 + (1 - 0)/2, v2 = v1 + (1 - v1)/4
    v1 = 0.5
    v2 = v1 + (1.0 - v1) / 4.0
    assert exp.v == pytest.approx(v2, abs=1e-12)
    assert link.error is None and link.message.value == ""


def test_refused_value_reverts_widget_and_shows_message():
    exp = StandIn(tau=3.0)
    w = ipywidgets.FloatText()
    link = link_ipywidget(w, exp, "tau")
    w.value = 0.5
    assert exp.tau == 3.0
    assert w.value == 3.0
    assert link.error is not None
    assert "tau" in link.error and "0.5" in link.error
    assert "tau" in link.message.value
    # an accepted value afterwards clears the message
    w.value = 50.0
    assert exp.tau == 50.0
    assert link.error is None and link.message.value == ""


def test_integer_parameter_refuses_fraction():
    exp = StandIn()
    w = ipywidgets.FloatText()
    link = link_ipywidget(w, exp, "n_spikes")
    w.value = 2.5
    assert exp.n_spikes == 3 and w.value == 3
    assert "n_spikes" in link.error
    w.value = 7
    assert exp.n_spikes == 7


def test_parameter_change_moves_widget_and_unlink_stops_both_ways():
    exp = StandIn()
    w = ipywidgets.FloatSlider(min=1.0, max=100.0)
    link = link_ipywidget(w, exp, "tau")
    exp.tau = 9.0
    assert w.value == 9.0
    link.unlink()
    link.unlink()  # idempotent
    exp.tau = 11.0
    assert w.value == 9.0
    w.value = 20.0
    assert exp.tau == 11.0
    assert "unlinked" in repr(link)


def test_parameter_change_from_another_thread_moves_widget():
    exp = StandIn()
    w = ipywidgets.FloatText()
    link_ipywidget(w, exp, "tau")

    def worker():
        exp.tau = 42.0

    th = threading.Thread(target=worker)
    th.start()
    th.join(5)
    assert w.value == 42.0 and exp.tau == 42.0


def test_custom_message_widget_is_used():
    exp = StandIn()
    msg = ipywidgets.HTML()
    w = ipywidgets.FloatText()
    link = link_ipywidget(w, exp, "v_threshold", message=msg)
    w.value = 9.0
    assert link.message is msg and "v_threshold" in msg.value
    assert exp.v_threshold == 1.0


def test_boolean_and_selector_links():
    exp = StandIn()
    cb = ipywidgets.Checkbox()
    dd = ipywidgets.Dropdown(options=["step", "ramp", "noise", "bogus"])
    link_ipywidget(cb, exp, "auto_reward")
    link = link_ipywidget(dd, exp, "mode")
    cb.value = True
    assert exp.auto_reward is True
    dd.value = "ramp"
    assert exp.mode == "ramp"
    dd.value = "bogus"
    assert exp.mode == "ramp" and dd.value == "ramp"
    assert "mode" in link.error


def test_bad_arguments_are_refused_with_clear_messages():
    exp = StandIn()
    with pytest.raises(TypeError, match="widget"):
        link_ipywidget(object(), exp, "tau")
    with pytest.raises(TypeError, match="widget"):
        link_ipywidget(ipywidgets.VBox(), exp, "tau")
    with pytest.raises(TypeError, match="experiment"):
        link_ipywidget(ipywidgets.FloatText(), object(), "tau")
    with pytest.raises(ValueError, match=r"name='nope'.*allowed"):
        link_ipywidget(ipywidgets.FloatText(), exp, "nope")
    with pytest.raises(TypeError, match="name"):
        link_ipywidget(ipywidgets.FloatText(), exp, 3)
    with pytest.raises(ValueError, match=r"name='size'.*constant"):
        link_ipywidget(ipywidgets.IntText(), exp, "size")
    with pytest.raises(TypeError, match="name='inputs'"):
        param_ipywidget(exp, "inputs")
    with pytest.raises(ValueError, match="name='nope'"):
        param_ipywidget(exp, "nope")
    with pytest.raises(TypeError, match="experiment"):
        param_ipywidget(42, "tau")


def test_param_ipywidget_builds_controls_from_declarations():
    exp = StandIn()
    tau = param_ipywidget(exp, "tau")
    assert isinstance(tau.widget, ipywidgets.FloatSlider)
    assert (tau.widget.min, tau.widget.max) == TAU_BOUNDS
    assert tau.widget.value == 2.0
    assert tau.widget.description == "Tau"
    assert "membrane" in tau.widget.tooltip
    vth = param_ipywidget(exp, "v_threshold")
    assert (vth.widget.min, vth.widget.max) == (0.5, 2.0)  # softbounds win
    n = param_ipywidget(exp, "n_spikes")
    assert isinstance(n.widget, ipywidgets.IntSlider) and (n.widget.min, n.widget.max) == (0, 10)
    assert isinstance(param_ipywidget(exp, "auto_reward").widget, ipywidgets.Checkbox)
    mode = param_ipywidget(exp, "mode")
    assert isinstance(mode.widget, ipywidgets.Dropdown)
    assert list(mode.widget.options) == ["step", "ramp", "noise"]
    assert isinstance(param_ipywidget(exp, "free").widget, ipywidgets.FloatText)
    custom = param_ipywidget(exp, "tau", description="τ (ms)")
    assert custom.widget.description == "τ (ms)"
    tau.widget.value = 10.0
    assert exp.tau == 10.0
    box = tau.box()
    assert isinstance(box, ipywidgets.VBox) and box.children == (tau.widget, tau.message)
    bundle = tau._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle


@settings(max_examples=40, deadline=None)
@given(values=st.lists(st.floats(min_value=-500.0, max_value=500.0, allow_nan=False), min_size=1, max_size=8))
def test_widget_and_parameter_always_agree(values):
    exp = StandIn()
    w = ipywidgets.FloatText()
    link = link_ipywidget(w, exp, "tau")
    expected = 2.0
    lo, hi = TAU_BOUNDS
    for v in values:
        changed = v != w.value  # an unchanged value sends no event and keeps the last message
        w.value = v
        accepted = lo <= v <= hi
        if accepted:
            expected = v
        assert exp.tau == expected
        assert w.value == expected
        if changed:
            assert (link.error is None) == accepted


def test_as_ipywidget_wraps_panel_object_for_ipywidgets_layouts():
    pn = pytest.importorskip("panel")
    pytest.importorskip("jupyter_bokeh")
    from jupyter_bokeh.widgets import BokehModel

    col = pn.Column(pn.pane.Markdown("# snnlab"), pn.widgets.FloatSlider(start=1, end=10))
    widget = as_ipywidget(col)
    assert isinstance(widget, BokehModel)
    box = ipywidgets.VBox([ipywidgets.FloatSlider(), widget])
    assert box.children[1] is widget


def test_as_ipywidget_with_inline_config_requests_nothing_from_a_cdn(monkeypatch):
    pn = pytest.importorskip("panel")
    pytest.importorskip("jupyter_bokeh")
    import json

    monkeypatch.setattr(pn.config, "inline", True)
    col = pn.Column(pn.pane.Markdown("# snnlab"), pn.widgets.Button(), pn.widgets.Select(options=[1, 2]))
    widget = as_ipywidget(col)
    bundle = json.dumps(widget.render_bundle, default=str)
    assert "cdn.holoviz.org" not in bundle
    assert "cdn.jsdelivr" not in bundle


def test_as_ipywidget_builds_a_dashboard_for_an_experiment():
    pytest.importorskip("panel")
    pytest.importorskip("jupyter_bokeh")
    lab = pytest.importorskip("snnlab.lab")
    from jupyter_bokeh.widgets import BokehModel

    exp = lab.NeuronExplorer()
    try:
        widget = as_ipywidget(exp)
        assert isinstance(widget, BokehModel)
        assert "NeuronExplorer" in json_dumps(widget.render_bundle)
    finally:
        exp.close()


def json_dumps(obj) -> str:
    import json

    return json.dumps(obj, default=str)


def test_link_with_a_real_experiment_changes_the_running_network():
    lab = pytest.importorskip("snnlab.lab")
    exp = lab.NeuronExplorer(model="LIF", stimulus="step", current=1.5, tau=10.0, stim_period=40)
    try:
        w = ipywidgets.FloatText()
        link = link_ipywidget(w, exp, "tau")
        exp.step(20)
        w.value = 30.0
        exp.step(20)
        w.value = 0.5  # refused
        assert exp.tau == 30.0 and w.value == 30.0 and "tau" in link.error
        exp.step(20)
        steps, v = exp.frame()["traces"]["membrane"]
        # the same 60 steps written out: H = V + (X - (V - V_reset)) / tau, hard reset at V_th
        vv, ref = 0.0, []
        for t in range(60):
            tau = 10.0 if t < 20 else 30.0
            x = 1.5 if (t % 40) >= 10 else 0.0
            h = vv + (x - (vv - 0.0)) / tau
            vv = 0.0 if h >= 1.0 else h
            ref.append(vv)
        assert steps.tolist() == list(range(60))
        assert v[:, 0].tolist() == pytest.approx(ref, abs=1e-5)
    finally:
        exp.close()
