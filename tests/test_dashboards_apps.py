"""Every served app's Dashboard, over the real ready-made experiments (no browser)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("panel")

from snnlab.apps import APPS, factory

SMALL = {"raster": {"n": 64, "fan_in": 8, "view_shape": (8, 8)}}


@pytest.mark.parametrize("name", list(APPS))
def test_app_dashboard_streams_the_experiment_frames(name):
    options = SMALL.get(name, {})
    dash = factory(name)(autorun=False, **options)
    exp = dash.experiment
    reference = type(exp)(**options)
    try:
        frames = []
        for n in (5, 12):
            exp.step(n)
            reference.step(n)
            frames.append(reference.frame())
            assert dash.tick(), dash.messages
            dash.clock.ack.frame = dash.clock.pressure.sent
        assert not dash.messages
        for layer in (dash.raster.scopes if dash.raster else []):
            steps = np.concatenate([f["spikes"][layer][0] for f in frames])
            neurons = np.concatenate([f["spikes"][layer][1] for f in frames])
            shown = steps >= max(dash.raster.window, exp.t) - dash.raster.window
            kept_steps, kept_neurons = dash.raster.events(layer)
            np.testing.assert_array_equal(kept_steps, steps[shown])
            np.testing.assert_array_equal(kept_neurons, neurons[shown])
        for view in dash.traces:
            values = np.concatenate([f["traces"][view.key][1] for f in frames])[-view.window:]
            for i, col in enumerate(view.columns):
                np.testing.assert_allclose(view.data[col], values[:, i], rtol=0, atol=0)
        for view in dash.heatmaps:
            assert view.replacements >= 1  # the first frame carries every weight matrix
        assert f"<span class='snnlab-t'>{exp.t}</span>" in dash.status.text
    finally:
        exp.close()
        reference.close()


@pytest.mark.parametrize("name", ["neuron", "raster"])
def test_app_threshold_slider_changes_the_running_simulation(name):
    dash = factory(name)(autorun=False, **SMALL.get(name, {}))
    exp = dash.experiment
    widget = dash.parameters.widgets["v_threshold"]
    widget.value = 2.0
    assert exp.v_threshold == 2.0
    exp.step(3)
    dash.tick()
    assert dash.traces[0].threshold == 2.0
    widget.value = 99.0  # outside the declared bounds: refused, widget reverts
    assert exp.v_threshold == 2.0 and widget.value == 2.0
    assert any("v_threshold" in m for _, m in dash.messages)
    exp.close()


def test_reward_app_buttons_change_the_weights():
    dash = factory("reward")(autorun=False)
    exp = dash.experiment
    try:
        exp.auto_reward = False
        exp.step(30)
        dash.tick()
        before = np.array(dash.heatmaps[0].source.data["image"][0], copy=True)
        for _ in range(3):
            dash.reward.plus.clicks += 1
            exp.step(10)
        dash.clock.ack.frame = dash.clock.pressure.sent
        dash.tick()
        after = np.asarray(dash.heatmaps[0].source.data["image"][0])
        assert not dash.messages
        assert np.abs(after - before).max() > 0
    finally:
        exp.close()


def test_factory_rejects_unknown_app():
    with pytest.raises(ValueError, match="name"):
        factory("nope")
