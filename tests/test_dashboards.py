"""Dashboard components driven with a stand-in experiment, no browser."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import FakeClock, ToyExperiment

pn = pytest.importorskip("panel")

from snnlab.dashboards import (  # noqa: E402
    BackPressure,
    Dashboard,
    LiveRaster,
    MembraneTrace,
    ParameterControls,
    RewardControls,
    RunControls,
    StdpWindow,
    WeightHeatmap,
    receptive_field_grid,
)
from snnlab.dashboards.streaming import FrameClock, RateMeter  # noqa: E402


# ---------------------------------------------------------------- back-pressure
def test_backpressure_allows_two_in_flight_then_skips_until_ack():
    clock = FakeClock()
    bp = BackPressure(max_in_flight=2, timeout=1.0, clock=clock)
    assert bp.may_send() and bp.next_id() == 0
    assert bp.may_send() and bp.next_id() == 1
    assert not bp.may_send() and not bp.may_send()
    assert bp.skipped == 2 and bp.in_flight == 2
    bp.ack(0)
    assert bp.in_flight == 1 and bp.may_send()
    assert bp.next_id() == 2
    assert not bp.may_send()
    bp.ack(2)  # acknowledging a later frame acknowledges all earlier ones
    assert bp.in_flight == 0
    bp.ack(99)  # never beyond what was sent
    assert bp.acked == 2


def test_backpressure_timeout_sends_one_more_frame():
    clock = FakeClock()
    bp = BackPressure(max_in_flight=2, timeout=1.0, clock=clock)
    bp.next_id()
    bp.next_id()
    clock.now = 0.5
    assert not bp.may_send()
    clock.now = 1.01
    assert bp.may_send() and bp.timeouts == 1
    assert bp.next_id() == 2
    assert bp.in_flight == 1  # frames presumed lost are forgotten
    clock.now = 1.5
    assert bp.may_send()


@pytest.mark.parametrize("bad", [0, -1, 1.5, True])
def test_backpressure_rejects_bad_max_in_flight(bad):
    with pytest.raises(ValueError, match="max_in_flight"):
        BackPressure(max_in_flight=bad)


def test_backpressure_rejects_bad_timeout():
    with pytest.raises(ValueError, match="timeout"):
        BackPressure(timeout=0)


def test_frame_clock_ack_model_feeds_backpressure():
    clock = FrameClock(BackPressure(2, 1.0, clock=FakeClock()))
    assert clock.mark(10) == 0 and clock.mark(11) == 1
    assert list(clock.source.data["frame"]) == [1] and list(clock.source.data["t"]) == [11]
    assert not clock.may_send()
    clock.ack.frame = 1  # what the browser's CustomJS writes
    assert clock.pressure.in_flight == 0 and clock.may_send()
    cb = clock.source.js_property_callbacks["streaming"][0]
    assert cb.args["ack"] is clock.ack and "ack.frame" in cb.code


def test_rate_meter_counts_events_per_second():
    clock = FakeClock()
    meter = RateMeter(window=2.0, clock=clock)
    for i in range(11):
        clock.now = i * 0.1
        meter.tick()
    assert meter.rate == pytest.approx(10.0)
    clock.now = 10.0
    assert meter.rate == 0.0


# ---------------------------------------------------------------- views
def _spike_frame(steps, neurons, layer="out"):
    return {"spikes": {layer: (np.asarray(steps, np.int64), np.asarray(neurons, np.int32))}}


def test_live_raster_sends_exactly_the_frame_events():
    raster = LiveRaster({"out": 4}, window=10)
    scope = raster.scopes["out"]
    raster.update(_spike_frame([0, 0, 1], [1, 3, 2]))
    np.testing.assert_array_equal(scope.sent["steps"], [0, 0, 1])
    np.testing.assert_array_equal(scope.sent["neurons"], [1, 3, 2])
    assert scope.sent["t"] == 2  # without 't': one past the newest spike
    assert scope.sent["steps"].dtype == np.int32 and "clear" not in scope.sent
    raster.update({"t": 5, **_spike_frame([2], [0])})
    np.testing.assert_array_equal(scope.sent["steps"], [2])
    assert scope.sent["t"] == 5
    sent = scope.sent
    raster.update({"t": 5, **_spike_frame([], [])})  # nothing new, same t: no message
    assert scope.sent is sent
    raster.update({"t": 6, **_spike_frame([], [])})  # time moved: the browser scrolls
    assert scope.sent["t"] == 6 and len(scope.sent["steps"]) == 0
    steps, neurons = raster.events("out")
    assert list(steps) == [0, 0, 1, 2] and list(neurons) == [1, 3, 2, 0]
    assert scope.kind == "raster" and scope.size == 4 and scope.window == 10


def test_scope_writes_the_chunk_into_every_rendered_model():
    import base64

    from bokeh.document import Document

    from snnlab.dashboards.scope import Scope

    scope = Scope(kind="traces", labels=["a", "b"])
    models = [scope.get_root(Document()).data for _ in range(2)]
    steps = np.array([0, 2, 70_000], np.int32)
    values = np.array([0.5, -1.25, np.nan, 3e-7, 1e9, -0.0], np.float32)
    scope.send({"t": 3, "steps": steps, "values": values})
    for data in models:
        wire = data.chunk
        assert wire["t"] == 3 and set(wire) == {"t", "steps", "values"}
        # arrays travel as base64 text of their little-endian bytes: exact values, NaN included
        assert isinstance(wire["steps"], str) and isinstance(wire["values"], str)
        np.testing.assert_array_equal(np.frombuffer(base64.b64decode(wire["steps"]), "<i4"), steps)
        np.testing.assert_array_equal(np.frombuffer(base64.b64decode(wire["values"]), "<f4"), values)
    assert scope.sent["steps"] is steps
    assert scope.chunk == {}  # the parameter is left alone: a new rendering replays no delta
    # the same chunk again changes nothing, and leaves no "server's own change" mark behind that
    # would swallow a later edit from the browser
    scope.send({"t": 3, "steps": steps, "values": values})
    assert not any(scope._changing.values()) and scope.chunk == {}


def test_series_history_sends_collected_rows_at_most_every_interval():
    from snnlab.dashboards.views import SeriesHistory

    clock = FakeClock()
    hist = SeriesHistory({"r": 1, "e": 2}, labels={"e": ["a", "b"]}, window=5, interval=0.1, clock=clock)
    r, e = hist.traces["r"], hist.traces["e"]
    assert e.labels == ["a", "b"] and r.labels == ["r"]
    hist.update({"t": 1, "series": {"r": ([0], [1.0]), "e": ([0], [[1.0, 2.0]])}})  # the first goes now
    assert r.scope.sent["t"] == 1 and list(r.scope.sent["steps"]) == [0]
    clock.now = 0.05  # within the interval: collected, not sent
    hist.update({"t": 3, "series": {"r": ([1, 2], [2.0, 3.0]), "e": ([1, 2], [[3.0], [5.0]])}})
    assert r.scope.sent["t"] == 1 and list(r.data["x"]) == [0]
    clock.now = 0.2  # interval up: everything collected goes in one chunk per series
    hist.update({"t": 4, "series": {"r": ([3], [4.0])}})
    assert r.scope.sent["t"] == 4 and list(r.scope.sent["steps"]) == [1, 2, 3]
    np.testing.assert_array_equal(r.scope.sent["values"], [2.0, 3.0, 4.0])
    # a row with fewer columns than the view is padded with NaN (row-major [k, m] on the wire)
    np.testing.assert_array_equal(e.scope.sent["values"], [3.0, np.nan, 5.0, np.nan])
    assert list(r.data["x"]) == [0, 1, 2, 3] and list(r.data["v0"]) == [1.0, 2.0, 3.0, 4.0]
    # while waiting, at most `window` rows are kept: the ones that would be shown
    clock.now = 0.25
    hist.update({"t": 14, "series": {"r": (np.arange(4, 14), np.arange(4, 14, dtype=np.float32))}})
    hist.flush()
    assert list(r.scope.sent["steps"]) == [9, 10, 11, 12, 13] and list(r.data["x"]) == [9, 10, 11, 12, 13]
    hist.clear()  # a reset: the next update tells the browser to forget, at once
    hist.update({"t": 0, "series": {}})
    assert r.scope.sent.get("clear") is True and len(r.data["x"]) == 0
    with pytest.raises(ValueError, match="interval"):
        SeriesHistory({"r": 1}, interval=-1.0)


def test_pack_refuses_other_dtypes():
    from snnlab.dashboards.scope import pack

    with pytest.raises(TypeError, match=r"int32 or float32.*int64"):
        pack(np.arange(3))


def test_live_raster_keeps_only_the_window():
    raster = LiveRaster({"out": 2}, window=3)
    steps = np.repeat(np.arange(8), 2)
    neurons = np.tile([0, 1], 8)
    raster.update({"t": 3, **_spike_frame(steps[:5], neurons[:5])})
    kept, _ = raster.events("out")
    assert list(kept) == [0, 0, 1, 1, 2]  # t = 3: steps 0..2 are shown
    raster.update({"t": 8, **_spike_frame(steps[5:], neurons[5:])})
    kept, who = raster.events("out")
    # t = 8, window 3: steps 5, 6, 7
    assert list(kept) == [5, 5, 6, 6, 7, 7] and list(who) == [0, 1, 0, 1, 0, 1]


def test_live_raster_caps_the_events_per_layer():
    raster = LiveRaster({"out": 3}, window=100, max_points=4)
    raster.update({"t": 3, **_spike_frame([0, 0, 0, 1, 1, 2], [0, 1, 2, 0, 1, 2])})
    np.testing.assert_array_equal(raster.scopes["out"].sent["steps"], [0, 1, 1, 2])
    kept, _ = raster.events("out")
    assert list(kept) == [0, 1, 1, 2]


def test_live_raster_clear_reaches_the_browser_once():
    raster = LiveRaster({"out": 2}, window=5)
    raster.update({"t": 2, **_spike_frame([0, 1], [0, 1])})
    raster.clear()
    assert len(raster.events("out")[0]) == 0
    raster.update({"t": 1, **_spike_frame([0], [1])})
    assert raster.scopes["out"].sent.get("clear") is True
    raster.update({"t": 2, **_spike_frame([1], [0])})
    assert "clear" not in raster.scopes["out"].sent


def test_live_raster_rejects_bad_arguments():
    with pytest.raises(ValueError, match="layers"):
        LiveRaster({})
    with pytest.raises(ValueError, match="window"):
        LiveRaster({"a": 3}, window=0)


def test_membrane_trace_sends_values_and_moves_threshold():
    view = MembraneTrace("v", ["a", "b"], threshold=1.0, window=4)
    values = np.arange(12, dtype=np.float32).reshape(6, 2)
    view.update({"t": 6, "traces": {"v": (np.arange(6, dtype=np.int64), values)}})
    chunk = view.scope.sent
    # at most a window of rows per message, values row-major [k, m]
    np.testing.assert_array_equal(chunk["steps"], [2, 3, 4, 5])
    np.testing.assert_array_equal(chunk["values"], values[2:].reshape(-1))
    assert chunk["t"] == 6
    view.update({"t": 7, "traces": {"v": (np.array([6]), np.array([[20.0, 21.0]], np.float32))}})
    data = view.data
    assert list(data["x"]) == [3, 4, 5, 6]  # only the window is kept
    np.testing.assert_array_equal(data["v0"], [6.0, 8.0, 10.0, 20.0])
    np.testing.assert_array_equal(data["v1"], [7.0, 9.0, 11.0, 21.0])
    assert view.threshold == 1.0 and view.scope.threshold == 1.0
    view.set_threshold(1.7)
    assert view.scope.threshold == 1.7
    view.set_threshold(None)
    assert view.scope.threshold is None


def test_membrane_trace_pads_missing_columns_with_nan():
    view = MembraneTrace("v", ["a", "b", "c"], window=10)
    view.update({"t": 2, "traces": {"v": (np.array([0, 1]), np.array([1.0, 2.0], np.float32))}})
    np.testing.assert_array_equal(view.data["v0"], [1.0, 2.0])
    assert np.isnan(view.data["v2"]).all()
    assert view.scope.sent["values"].shape == (6,)


def test_receptive_field_grid_matches_explicit_tiling():
    rng = np.random.default_rng(0)
    w = rng.random((5, 6)).astype(np.float32)  # 5 fields of 2 x 3
    grid = receptive_field_grid(w, (2, 3))
    cols, rows = 3, 2  # ceil(sqrt(5)) = 3 columns, 2 rows
    assert grid.shape == (rows * 3 - 1, cols * 4 - 1)
    for i in range(5):
        r, c = i // cols, i % cols
        for y in range(2):
            for x in range(3):
                assert grid[r * 3 + y, c * 4 + x] == w[i, y * 3 + x]
    assert np.isnan(grid[2, 0]) and np.isnan(grid[0, 3])  # separators
    assert np.all(np.isnan(grid[3:, 8:]))  # the unused sixth cell
    with pytest.raises(ValueError, match="weights"):
        receptive_field_grid(w, (2, 2))


def test_weight_heatmap_replaced_only_when_weights_change():
    view = WeightHeatmap("w", (2, 3))
    w = np.array([[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]], np.float32)
    view.update({"weights": {"w": w}})
    assert view.replacements == 1
    np.testing.assert_array_equal(view.source.data["image"][0], w)  # row 0 on top (flipped y range)
    assert (view.mapper.low, view.mapper.high) == (0.0, 5.0)
    view.update({"weights": {}})
    view.update({"spikes": {}})
    assert view.replacements == 1
    view.update({"weights": {"w": w + 1}})
    assert view.replacements == 2
    fixed = WeightHeatmap("w", (2, 3), vmin=-1.0, vmax=1.0)
    fixed.update({"weights": {"w": w}})
    assert (fixed.mapper.low, fixed.mapper.high) == (-1.0, 1.0)


def test_stdp_window_theory_and_measured_points():
    tau = 7.0

    def theory(dts):
        return np.where(dts >= 0, 0.5 * np.exp(-dts / tau), -0.3 * np.exp(dts / tau))

    view = StdpWindow("pairs", theory=theory, dt_range=(-10, 10))
    dts = np.linspace(-10, 10, 201)
    expected = np.array([0.5 * np.exp(-d / tau) if d >= 0 else -0.3 * np.exp(d / tau) for d in dts])
    np.testing.assert_allclose(np.asarray(view.curve.data["y"]), expected, rtol=1e-12, atol=0)
    assert not view.refresh_theory()  # unchanged: no replacement
    x = np.array([-3.0, 4.0], np.float32)
    y = np.array([-0.1, 0.2], np.float32)
    view.update({"points": {"pairs": (x, y)}})
    np.testing.assert_array_equal(np.asarray(view.points.data["x"]), x)
    np.testing.assert_array_equal(np.asarray(view.points.data["y"]), y)


# ---------------------------------------------------------------- controls
def test_parameter_controls_generated_from_params(toy):
    controls = ParameterControls(toy, notify=lambda m, level="error": None)
    assert set(controls.widgets) == {"tau", "v_threshold", "v_reset", "rate", "auto_reward"}
    tau = controls.widgets["tau"]
    assert isinstance(tau, pn.widgets.FloatSlider) and (tau.start, tau.end) == (1.01, 100.0)
    assert isinstance(controls.widgets["auto_reward"], pn.widgets.Checkbox)
    tau.value = 12.5
    assert toy.tau == 12.5


def test_refused_parameter_notifies_and_reverts(toy):
    messages = []
    controls = ParameterControls(toy, notify=lambda m, level="error": messages.append((level, m)))
    widget = controls.widgets["v_reset"]
    widget.value = 3.0  # above the bound 0.05
    assert toy.v_reset == 0.0
    assert widget.value == 0.0
    assert messages and messages[0][0] == "error" and "v_reset" in messages[0][1]
    widget.value = -1.0
    assert toy.v_reset == -1.0 and len(messages) == 1


def test_parameter_controls_sync_shows_script_changes(toy):
    controls = ParameterControls(toy)
    toy.tau = 33.0
    controls.sync()
    assert controls.widgets["tau"].value == 33.0


def test_reward_buttons_call_give_reward(toy):
    controls = RewardControls(toy)
    controls.plus.clicks += 1
    controls.minus.clicks += 1
    controls.plus.clicks += 1
    assert toy.rewards == [1.0, -1.0, 1.0]
    controls.auto.value = True
    assert toy.auto_reward is True


def test_reward_controls_need_give_reward():
    with pytest.raises(TypeError, match="give_reward"):
        RewardControls(object())


def test_run_controls_run_pause_step_reset(toy):
    resets = []
    controls = RunControls(toy, on_reset=lambda: resets.append(True))
    controls.run_button.clicks += 1
    assert toy.running and controls.run_button.disabled and not controls.pause_button.disabled
    controls.pause_button.clicks += 1
    assert not toy.running and not controls.run_button.disabled
    t = toy.t
    controls.step_count.value = 5
    controls.step_button.clicks += 1
    assert toy.t == t + 5
    controls.reset_button.clicks += 1
    assert toy.t == 0 and resets == [True]
    controls.speed.value = 50
    assert toy.speed == 50


# ---------------------------------------------------------------- dashboard
def _concat(frames, key, name, i):
    return np.concatenate([np.asarray(f[key][name][i]) for f in frames])


def test_dashboard_streams_what_the_experiment_recorded(toy):
    dash = Dashboard(toy, autorun=False, window=50)
    reference = ToyExperiment()  # same seed, stepped identically
    frames = []
    for n in (7, 3, 11):
        toy.step(n)
        reference.step(n)
        frames.append(reference.frame())
        assert dash.tick()
        dash.clock.ack.frame = dash.clock.pressure.sent  # the browser acknowledges
    steps, neurons = dash.raster.events("out")
    np.testing.assert_array_equal(steps, _concat(frames, "spikes", "out", 0))
    np.testing.assert_array_equal(neurons, _concat(frames, "spikes", "out", 1))
    last = frames[-1]["spikes"]["out"]  # the last message carries the last frame's spikes only
    np.testing.assert_array_equal(dash.raster.scopes["out"].sent["steps"], last[0])
    assert dash.raster.scopes["out"].sent["t"] == 21
    values = _concat(frames, "traces", "v", 1)
    np.testing.assert_array_equal(dash.traces[0].data["v1"], values[:, 1])
    assert dash.heatmaps[0].replacements == 1  # weights sent once, unchanged afterwards
    assert "t = <span class='snnlab-t'>21</span>" in dash.status.text
    assert dash.frames == 3


def test_dashboard_backpressure_skips_ticks_and_resumes(toy):
    dash = Dashboard(toy, autorun=False)
    clock = FakeClock()
    dash.clock.pressure.clock = clock
    toy.step(2)
    assert dash.tick() and dash.tick()
    t_sent = dash.last_frame["t"]
    toy.step(2)
    assert not dash.tick() and dash.clock.pressure.skipped == 1
    assert dash.last_frame["t"] == t_sent  # nothing drained while skipping
    dash.clock.ack.frame = 0
    assert dash.tick()
    assert not dash.tick()
    clock.now = 5.0  # no acknowledgement for longer than the timeout
    assert dash.tick() and dash.clock.pressure.timeouts == 1


def test_dashboard_heatmap_replaced_after_reward(toy):
    dash = Dashboard(toy, autorun=False)
    dash.tick()
    dash.reward.plus.clicks += 1
    dash.clock.ack.frame = dash.clock.pressure.sent
    dash.tick()
    assert dash.heatmaps[0].replacements == 2
    np.testing.assert_allclose(dash.heatmaps[0].source.data["image"][0], np.full((2, 4), 0.1), rtol=1e-6)


def test_dashboard_threshold_and_widgets_follow_parameter_changes(toy):
    dash = Dashboard(toy, autorun=False)
    dash.tick()
    toy.v_threshold = 2.5
    dash.clock.ack.frame = dash.clock.pressure.sent
    dash.tick()
    assert dash.traces[0].threshold == 2.5
    assert dash.parameters.widgets["v_threshold"].value == 2.5


def test_dashboard_callback_errors_are_shown_and_it_keeps_running(toy, monkeypatch):
    dash = Dashboard(toy, autorun=False)
    original = toy.frame

    def broken():
        raise RuntimeError("frame exploded")

    monkeypatch.setattr(toy, "frame", broken)
    assert dash.tick() is False
    assert any("frame exploded" in m for _, m in dash.messages)
    monkeypatch.setattr(toy, "frame", original)
    assert dash.tick() is True


def test_dashboard_reports_run_thread_errors(toy):
    dash = Dashboard(toy, autorun=False)
    toy.fail_next_step = True
    toy.run()
    toy._thread.join(timeout=5)
    dash.tick()
    assert any("boom in step" in m for _, m in dash.messages)


def test_dashboard_reset_clears_views(toy):
    dash = Dashboard(toy, autorun=False)
    toy.step(30)
    dash.tick()
    assert len(dash.traces[0].data["x"]) > 0 and len(dash.raster.events("out")[0]) > 0
    dash.run_controls.reset_button.clicks += 1
    assert toy.t == 0 and len(dash.traces[0].data["x"]) == 0
    assert len(dash.raster.events("out")[0]) == 0
    toy.step(2)
    dash.clock.ack.frame = dash.clock.pressure.sent
    dash.tick()
    assert dash.raster.scopes["out"].sent.get("clear") is True  # the browser forgets too


def test_dashboard_start_stop_runs_and_stops_the_thread(toy):
    from snnlab.dashboards import registry

    dash = Dashboard(toy, autorun=True)
    dash.start()  # no document: no periodic callback, but the run thread starts
    assert toy.running and registry.running_experiments() >= 1
    assert any(s["app"] == "ToyExperiment" for s in registry.snapshot()["sessions"])
    dash.stop()
    assert not toy.running
    assert all(s["app"] != "ToyExperiment" for s in registry.snapshot()["sessions"])
    dash.stop()  # idempotent


def test_dashboard_needs_the_experiment_contract():
    with pytest.raises(TypeError, match="experiment"):
        Dashboard(object())
    with pytest.raises(ValueError, match="period_ms"):
        Dashboard(ToyExperiment(), period_ms=0)


def test_dashboard_layout_renders_to_a_bokeh_model(toy):
    dash = Dashboard(toy, autorun=False)
    model = pn.panel(dash).get_root()
    assert model is not None
    assert dash.clock.ack.frame == -1


def test_tick_skips_the_frame_while_a_runner_holds_the_lock(toy):
    import threading

    dash = Dashboard(toy, autorun=False)
    toy.step(3)
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with toy.lock:
            held.set()
            release.wait(10)

    worker = threading.Thread(target=hold)
    worker.start()
    held.wait(10)
    try:
        assert dash.tick() is False and dash.lock_skips == 1 and dash.frames == 0  # no wait, no frame
        assert dash.tick() is False and dash.lock_skips == 2
    finally:
        release.set()
        worker.join()
    assert dash.tick() is True and dash.frames == 1  # the lock is free again: the frame goes out
    assert dash.raster.scopes["out"].sent["t"] == 3
