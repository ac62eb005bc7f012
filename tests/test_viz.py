"""snnlab.viz figure builders: figure data equal the input, reference lines, errors."""

import math

import numpy as np
import plotly.graph_objects as go
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from snnlab import viz

SETTINGS = settings(max_examples=25, deadline=None)


def events(n_events=40, n_steps=50, n_neurons=12, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, n_steps, n_events), rng.integers(0, n_neurons, n_events)


# ---------------------------------------------------------------- raster
def test_raster_xy_are_the_events():
    steps, neurons = events()
    fig = viz.raster(steps, neurons, n_neurons=12)
    assert isinstance(fig, go.Figure) and len(fig.data) == 1
    trace = fig.data[0]
    assert trace.mode == "markers"
    for i in range(len(steps)):
        assert trace.x[i] == steps[i] and trace.y[i] == neurons[i]
    assert tuple(fig.layout.yaxis.range) == (-0.5, 11.5)
    assert fig.layout.xaxis.title.text == "time (steps)"
    assert fig.layout.yaxis.title.text == "neuron index"
    assert "neuron" in trace.hovertemplate
    assert fig.layout.showlegend is False


def test_raster_time_in_ms_with_dt():
    steps, neurons = events()
    fig = viz.raster(torch.as_tensor(steps), torch.as_tensor(neurons), dt=0.25)
    expected = [s * 0.25 for s in steps.tolist()]
    np.testing.assert_allclose(np.asarray(fig.data[0].x, dtype=float), expected, rtol=0, atol=1e-12)
    assert fig.layout.xaxis.title.text == "time (ms)"
    assert "ms" in fig.data[0].hovertemplate


def test_raster_switches_to_webgl_for_many_events():
    steps, neurons = events(n_events=viz.WEBGL_THRESHOLD + 1, n_steps=200, n_neurons=1000)
    assert isinstance(viz.raster(steps, neurons).data[0], go.Scattergl)
    assert isinstance(viz.raster(steps[:10], neurons[:10]).data[0], go.Scatter)
    assert isinstance(viz.raster(steps[:10], neurons[:10], webgl=True).data[0], go.Scattergl)


def test_raster_empty_and_t_range():
    fig = viz.raster([], [], n_neurons=3, t_range=(0, 100))
    assert len(fig.data[0].x) == 0
    assert tuple(fig.layout.xaxis.range) == (0.0, 100.0)


@SETTINGS
@given(st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 500)), max_size=60))
def test_raster_property_events_round_trip(pairs):
    steps = [p[0] for p in pairs]
    neurons = [p[1] for p in pairs]
    fig = viz.raster(steps, neurons, dt=1.0)
    assert list(np.asarray(fig.data[0].x, dtype=float)) == [float(s) for s in steps]
    assert list(np.asarray(fig.data[0].y, dtype=int)) == neurons


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"steps": [0, 1, 2], "neurons": [0, 1]}, ValueError, "neurons"),
        ({"steps": [0, -1], "neurons": [0, 1]}, ValueError, "steps"),
        ({"steps": [0, 1], "neurons": [0, -3]}, ValueError, "neurons"),
        ({"steps": [0, 1], "neurons": [0, 5], "n_neurons": 5}, ValueError, "n_neurons"),
        ({"steps": [[0, 1]], "neurons": [[0, 1]]}, ValueError, "steps"),
        ({"steps": [0.5, 1.0], "neurons": [0, 1]}, ValueError, "steps"),
        ({"steps": ["a", "b"], "neurons": [0, 1]}, TypeError, "steps"),
        ({"steps": [0], "neurons": [0], "dt": -1.0}, ValueError, "dt"),
        ({"steps": [0], "neurons": [0], "dt": "1"}, TypeError, "dt"),
        ({"steps": [0], "neurons": [0], "n_neurons": 0}, ValueError, "n_neurons"),
        ({"steps": [0], "neurons": [0], "t_range": (5, 1)}, ValueError, "t_range"),
        ({"steps": [0], "neurons": [0], "height": -10}, ValueError, "height"),
    ],
)
def test_raster_rejects_bad_input(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        viz.raster(**kwargs)


def test_raster_layers_one_row_per_layer():
    s1, n1 = events(30, n_neurons=20, seed=1)
    s2, n2 = events(10, n_neurons=4, seed=2)
    fig = viz.raster_layers({"input": (s1, n1), "output": (s2, n2)}, sizes={"input": 20, "output": 4}, dt=2.0)
    assert [t.name for t in fig.data] == ["input", "output"]
    for trace, (s, n) in zip(fig.data, [(s1, n1), (s2, n2)]):
        assert list(np.asarray(trace.x, dtype=float)) == [2.0 * v for v in s.tolist()]
        assert list(np.asarray(trace.y)) == n.tolist()
    assert fig.data[0].yaxis == "y" and fig.data[1].yaxis == "y2"
    assert tuple(fig.layout.yaxis.range) == (-0.5, 19.5)
    assert tuple(fig.layout.yaxis2.range) == (-0.5, 3.5)
    assert fig.layout.xaxis2.title.text == "time (ms)"
    with pytest.raises(ValueError, match="layers"):
        viz.raster_layers({})
    with pytest.raises(ValueError, match="layers"):
        viz.raster_layers({"a": ([0, 1],)})
    with pytest.raises(ValueError, match="n_neurons"):
        viz.raster_layers({"a": ([0], [4])}, sizes={"a": 4})


# ---------------------------------------------------------------- membrane traces
def test_membrane_traces_lines_and_threshold():
    rng = np.random.default_rng(3)
    steps = np.arange(10, 40)
    values = rng.normal(size=(30, 3)).astype(np.float32)
    fig = viz.membrane_traces(steps, values, ["a", "b", "c"], threshold=1.0, v_reset=-0.5, dt=0.5)
    assert [t.name for t in fig.data] == ["a", "b", "c"]
    for j, trace in enumerate(fig.data):
        for i in range(30):
            assert trace.x[i] == pytest.approx(steps[i] * 0.5, abs=1e-12)
            assert trace.y[i] == pytest.approx(float(values[i, j]), abs=0)
    shapes = {s.name: s for s in fig.layout.shapes}
    assert shapes["v_threshold"].y0 == 1.0 and shapes["v_threshold"].y1 == 1.0
    assert shapes["v_threshold"].xref == "x domain" and shapes["v_threshold"].line.dash == "dash"
    assert shapes["v_reset"].y0 == -0.5
    texts = [a.text for a in fig.layout.annotations]
    assert "v_threshold = 1" in texts and "v_reset = -0.5" in texts
    assert fig.layout.yaxis.title.text == "membrane potential (a.u.)"
    assert fig.layout.xaxis.title.text == "time (ms)"
    assert fig.layout.showlegend is True


def test_membrane_traces_single_trace_and_per_trace_thresholds():
    fig = viz.membrane_traces([0, 1, 2], [0.1, 0.2, 0.3])
    assert len(fig.data) == 1 and list(fig.data[0].y) == [0.1, 0.2, 0.3]
    assert fig.data[0].name == "neuron 0" and fig.layout.showlegend is False
    assert len(fig.layout.shapes) == 0
    fig = viz.membrane_traces([0, 1], [[0.0, 0.0], [0.5, 0.2]], threshold=[1.0, 0.8])
    assert sorted(s.y0 for s in fig.layout.shapes) == [0.8, 1.0]
    # a trace's own threshold is drawn in the trace's colour
    colors = {t.line.color for t in fig.data}
    assert {s.line.color for s in fig.layout.shapes} == colors


def test_membrane_traces_many_traces_hide_legend():
    fig = viz.membrane_traces(np.arange(5), np.zeros((5, 11)))
    assert fig.layout.showlegend is False and len(fig.data) == 11


@pytest.mark.parametrize(
    ("args", "kwargs", "exc", "match"),
    [
        (([0, 1, 2], [0.0, 1.0]), {}, ValueError, "values"),
        (([0, 1], np.zeros((2, 2, 2))), {}, ValueError, "values"),
        (([0, 1], np.zeros((2, 2)), ["only one"]), {}, ValueError, "labels"),
        (([0, 1], np.zeros((2, 2)), "ab"), {}, TypeError, "labels"),
        (([0, 1], np.zeros((2, 2))), {"threshold": [1.0, 2.0, 3.0]}, ValueError, "threshold"),
        (([0, 1], np.zeros((2, 2))), {"threshold": float("nan")}, ValueError, "threshold"),
        (([0, 1], np.zeros((2, 2))), {"v_reset": "low"}, TypeError, "v_reset"),
        (([0, -1], np.zeros(2)), {}, ValueError, "steps"),
    ],
)
def test_membrane_traces_rejects_bad_input(args, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        viz.membrane_traces(*args, **kwargs)


def test_time_series_lines_equal_columns():
    values = np.arange(12, dtype=float).reshape(6, 2)
    fig = viz.time_series(np.arange(6), values, y_label="rate", dt=2.0)
    assert [t.name for t in fig.data] == ["rate 0", "rate 1"]
    for j in range(2):
        assert list(fig.data[j].y) == [values[i, j] for i in range(6)]
        assert list(fig.data[j].x) == [2.0 * i for i in range(6)]
    assert fig.layout.yaxis.title.text == "rate"
    assert viz.time_series([0, 1], [3.0, 4.0]).data[0].name == "value"


# ---------------------------------------------------------------- weights
def test_weight_heatmap_z_is_w_and_signed_scale_is_symmetric():
    w = np.random.default_rng(4).normal(size=(5, 7)).astype(np.float32)
    fig = viz.weight_heatmap(torch.as_tensor(w))
    heat = fig.data[0]
    assert isinstance(heat, go.Heatmap)
    z = np.asarray(heat.z)
    assert z.shape == (5, 7)
    for i in range(5):
        for j in range(7):
            assert z[i, j] == float(w[i, j])
    bound = max(abs(float(w.min())), abs(float(w.max())))
    assert heat.zmin == pytest.approx(-bound) and heat.zmax == pytest.approx(bound) and heat.zmid == 0.0
    assert fig.layout.yaxis.autorange == "reversed"
    assert fig.layout.xaxis.title.text == "presynaptic neuron index"
    assert fig.layout.yaxis.title.text == "postsynaptic neuron index"
    assert "w = " in heat.hovertemplate


def test_weight_heatmap_nonnegative_sequential_and_zrange():
    w = np.linspace(0.0, 1.0, 12).reshape(3, 4)
    heat = viz.weight_heatmap(w).data[0]
    assert heat.zmin == 0.0 and heat.zmax == 1.0 and heat.zmid is None
    heat = viz.weight_heatmap(w, zrange=(-2, 2)).data[0]
    assert (heat.zmin, heat.zmax) == (-2.0, 2.0)
    const = viz.weight_heatmap(np.full((2, 2), 0.3)).data[0]
    assert const.zmin < 0.3 < const.zmax


@pytest.mark.parametrize(
    ("w", "kwargs", "exc", "match"),
    [
        (np.zeros(4), {}, ValueError, "w"),
        (np.zeros((2, 2, 2)), {}, ValueError, "w"),
        ([["a", "b"]], {}, TypeError, "w"),
        (np.zeros((2, 2)), {"zrange": (1, 0)}, ValueError, "zrange"),
        (np.zeros((2, 2)), {"width": 0}, ValueError, "width"),
    ],
)
def test_weight_heatmap_rejects_bad_input(w, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        viz.weight_heatmap(w, **kwargs)


def test_receptive_field_tiles_equal_reshaped_rows():
    n_post, h, wd, gap, cols = 7, 3, 4, 1, 3
    w = np.random.default_rng(5).random((n_post, h * wd))
    fig = viz.receptive_fields(w, (h, wd), cols=cols, gap=gap)
    heat = fig.data[0]
    z = np.asarray(heat.z, dtype=float)
    rows = math.ceil(n_post / cols)
    assert z.shape == (rows * (h + gap) - gap, cols * (wd + gap) - gap)
    custom = np.asarray(heat.customdata)
    covered = np.zeros(z.shape, dtype=bool)
    for i in range(n_post):
        r0, c0 = (i // cols) * (h + gap), (i % cols) * (wd + gap)
        for r in range(h):
            for c in range(wd):
                assert z[r0 + r, c0 + c] == w[i, r * wd + c]
                assert tuple(custom[r0 + r, c0 + c]) == (i, r, c)
                covered[r0 + r, c0 + c] = True
    assert np.all(np.isnan(z[~covered]))
    assert fig.layout.yaxis.autorange == "reversed" and fig.layout.yaxis.scaleanchor == "x"
    assert "neuron %{customdata[0]}" in heat.hovertemplate


def test_receptive_fields_selection_and_limit():
    w = np.arange(20 * 4, dtype=float).reshape(20, 4)
    fig = viz.receptive_fields(w, (2, 2), max_fields=6)
    assert "first 6 of 20" in fig.layout.title.text
    owners = np.asarray(fig.data[0].customdata)[..., 0]
    assert sorted(set(owners[owners >= 0].ravel().tolist())) == list(range(6))
    fig = viz.receptive_fields(w, (2, 2), neurons=[19, 3], gap=0)
    z = np.asarray(fig.data[0].z)
    assert z.shape == (2, 4)
    np.testing.assert_array_equal(z[:, :2], w[19].reshape(2, 2))
    np.testing.assert_array_equal(z[:, 2:], w[3].reshape(2, 2))


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"image_shape": (3, 3)}, ValueError, "image_shape"),
        ({"image_shape": (2, 2, 1)}, ValueError, "image_shape"),
        ({"image_shape": 4}, TypeError, "image_shape"),
        ({"image_shape": (2, 0)}, ValueError, r"image_shape\[1\]"),
        ({"image_shape": (2, 2), "neurons": [5]}, ValueError, "neurons"),
        ({"image_shape": (2, 2), "neurons": [0, 1, 2], "max_fields": 2}, ValueError, "max_fields"),
        ({"image_shape": (2, 2), "gap": -1}, ValueError, "gap"),
        ({"image_shape": (2, 2), "cols": 0}, ValueError, "cols"),
    ],
)
def test_receptive_fields_reject_bad_input(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        viz.receptive_fields(np.zeros((3, 4)), **kwargs)


# ---------------------------------------------------------------- STDP window
def pair_window(dt, a_plus=0.01, a_minus=0.012, tau=20.0):
    out = []
    for d in dt:
        out.append(a_plus * math.exp(-d / tau) if d > 0 else -a_minus * math.exp(d / tau))
    return out


def test_stdp_window_measured_points_and_theory_curve():
    rng = np.random.default_rng(6)
    dt = rng.uniform(-30, 30, 25)
    dw = np.array(pair_window(dt)) + rng.normal(scale=1e-3, size=25)
    fig = viz.stdp_window(dt, dw, theory=lambda d: np.array(pair_window(d)))
    names = [t.name for t in fig.data]
    assert names == ["theory", "measured"]
    measured, theory = fig.data[1], fig.data[0]
    assert list(measured.x) == dt.tolist() and list(measured.y) == dw.tolist()
    assert measured.mode == "markers" and theory.mode == "lines"
    tx = np.asarray(theory.x)
    np.testing.assert_allclose(np.asarray(theory.y), pair_window(tx), rtol=0, atol=1e-15)
    span = 1.1 * np.abs(dt).max()
    assert tx.min() == pytest.approx(-span) and tx.max() == pytest.approx(span)
    assert np.any((tx < 0) & (tx > -1e-6)) and np.any((tx > 0) & (tx < 1e-6))  # the jump at 0 is drawn
    assert fig.layout.xaxis.title.text == "Δt = t_post − t_pre (ms)"
    assert fig.layout.yaxis.title.text == "Δw"
    assert {s.type for s in fig.layout.shapes} == {"line"} and len(fig.layout.shapes) == 2


def test_stdp_window_theory_as_points_and_range():
    fig = viz.stdp_window([1.0], [0.5], theory=([3.0, -3.0, 0.5], [0.1, -0.2, 0.3]), unit="steps")
    theory = fig.data[0]
    assert list(theory.x) == [-3.0, 0.5, 3.0] and list(theory.y) == [-0.2, 0.3, 0.1]
    assert "steps" in fig.layout.xaxis.title.text
    fig = viz.stdp_window([], [], theory=lambda d: 0 * d, dt_range=(-5, 10), n_points=16)
    tx = np.asarray(fig.data[0].x)
    assert tx.min() == -5 and tx.max() == 10
    assert len(viz.stdp_window([1.0], [2.0]).data) == 1


@pytest.mark.parametrize(
    ("args", "kwargs", "exc", "match"),
    [
        (([1.0, 2.0], [0.1]), {}, ValueError, "dw"),
        (([float("nan")], [0.1]), {}, ValueError, "dt"),
        (([1.0], [0.1]), {"theory": lambda d: d[:3]}, ValueError, "theory"),
        (([1.0], [0.1]), {"theory": 3.0}, TypeError, "theory"),
        (([1.0], [0.1]), {"theory": ([0.0, 1.0], [1.0])}, ValueError, "theory"),
        (([1.0], [0.1]), {"theory": np.sin, "dt_range": (2, 1)}, ValueError, "dt_range"),
        (([1.0], [0.1]), {"unit": "s"}, ValueError, "unit"),
    ],
)
def test_stdp_window_rejects_bad_input(args, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        viz.stdp_window(*args, **kwargs)


# ---------------------------------------------------------------- reward history
def trailing_mean(values, window):
    out = []
    for i in range(len(values)):
        chunk = values[max(0, i - window + 1) : i + 1]
        out.append(sum(chunk) / len(chunk))
    return out


@SETTINGS
@given(st.lists(st.floats(-5, 5), max_size=40), st.integers(1, 12))
def test_moving_average_matches_loop(values, window):
    np.testing.assert_allclose(viz.moving_average(values, window), trailing_mean(values, window), atol=1e-9)


def test_reward_history_reward_average_and_eligibility():
    rng = np.random.default_rng(7)
    steps = np.arange(0, 60, 2)
    reward = rng.choice([-1.0, 0.0, 1.0], size=30)
    elig = rng.random((30, 2))
    fig = viz.reward_history(steps, reward, elig, eligibility_labels=["syn a", "syn b"], window=5, dt=0.5)
    by_name = {t.name: t for t in fig.data}
    r = by_name["reward"]
    assert list(r.y) == reward.tolist() and list(r.x) == [0.5 * s for s in steps.tolist()]
    colors = list(r.marker.color)
    for value, color in zip(reward, colors):
        expected = {1.0: viz.COLORS["reward_positive"], -1.0: viz.COLORS["reward_negative"]}
        assert color == expected.get(value, viz.COLORS["zero"])
    avg = by_name["mean reward (last 5)"]
    np.testing.assert_allclose(np.asarray(avg.y), trailing_mean(reward.tolist(), 5), atol=1e-12)
    for j, name in enumerate(["syn a", "syn b"]):
        assert list(by_name[name].y) == elig[:, j].tolist()
        assert by_name[name].yaxis == "y2"
    assert fig.layout.yaxis.title.text == "reward" and fig.layout.yaxis2.title.text == "eligibility"
    assert fig.layout.xaxis2.title.text == "time (ms)"


def test_reward_history_eligibility_on_its_own_clock_and_no_average():
    fig = viz.reward_history([3, 9], [1.0, -1.0], ([0, 1, 2, 3], [0.1, 0.2, 0.3, 0.4]), window=None)
    assert [t.name for t in fig.data] == ["reward", "eligibility"]
    assert list(fig.data[1].x) == [0, 1, 2, 3] and list(fig.data[1].y) == [0.1, 0.2, 0.3, 0.4]
    fig = viz.reward_history([], [])
    assert len(fig.data) == 1 and len(fig.data[0].y) == 0


@pytest.mark.parametrize(
    ("args", "kwargs", "exc", "match"),
    [
        (([0, 1], [1.0]), {}, ValueError, "reward"),
        (([0, 1], [1.0, 2.0], [0.1]), {}, ValueError, "eligibility"),
        (([0, 1], [1.0, 2.0], ([0], [0.1, 0.2])), {}, ValueError, "eligibility values"),
        (([0, 1], [1.0, 2.0], ([0], [0.1], 3)), {}, ValueError, "eligibility"),
        (([0, 1], [1.0, 2.0]), {"window": 0}, ValueError, "window"),
        (
            ([0, 1], [1.0, 2.0], np.zeros((2, 2))),
            {"eligibility_labels": ["x"]},
            ValueError,
            "eligibility_labels",
        ),
    ],
)
def test_reward_history_rejects_bad_input(args, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        viz.reward_history(*args, **kwargs)


# ---------------------------------------------------------------- firing rates
def rates_by_loop(neurons, n_neurons, duration, dt=None):
    counts = [0] * n_neurons
    for n in neurons:
        counts[int(n)] += 1
    seconds = duration * dt / 1000.0 if dt is not None else duration
    return [c / seconds for c in counts]


def test_firing_rates_match_counting_loop():
    _steps, neurons = events(80, n_steps=100, n_neurons=9, seed=8)
    np.testing.assert_allclose(
        viz.firing_rates(neurons, 12, 100), rates_by_loop(neurons, 12, 100), atol=1e-12
    )
    np.testing.assert_allclose(
        viz.firing_rates(neurons, 12, 100, dt=0.5), rates_by_loop(neurons, 12, 100, 0.5), atol=1e-9
    )


def test_firing_rate_histogram_from_events_and_from_rates():
    steps, neurons = events(80, n_steps=100, n_neurons=9, seed=9)
    fig = viz.firing_rate_histogram(steps=steps, neurons=neurons, n_neurons=12, duration=100, dt=1.0)
    hist = fig.data[0]
    assert isinstance(hist, go.Histogram)
    expected = rates_by_loop(neurons, 12, 100, 1.0)
    np.testing.assert_allclose(np.asarray(hist.x), expected, atol=1e-9)
    (line,) = fig.layout.shapes
    assert line.x0 == pytest.approx(sum(expected) / 12)
    assert fig.layout.xaxis.title.text == "firing rate (Hz)"
    assert fig.layout.yaxis.title.text == "number of neurons"
    # duration defaults to the span of the recorded steps
    fig = viz.firing_rate_histogram(steps=[10, 19, 14], neurons=[0, 0, 1], n_neurons=2)
    assert list(fig.data[0].x) == [2 / 10, 1 / 10]
    assert "spikes / step" in fig.layout.xaxis.title.text
    fig = viz.firing_rate_histogram([1.0, 2.0, 3.0], nbins=5)
    assert list(fig.data[0].x) == [1.0, 2.0, 3.0] and fig.data[0].nbinsx == 5


@pytest.mark.parametrize(
    ("args", "kwargs", "exc", "match"),
    [
        (([1.0, -2.0],), {}, ValueError, "rates"),
        (([1.0],), {"neurons": [0], "steps": [0]}, ValueError, "rates"),
        ((), {"neurons": [0], "steps": [0]}, ValueError, "n_neurons"),
        ((), {"neurons": [0, 3], "steps": [0, 1], "n_neurons": 3}, ValueError, "n_neurons"),
        ((), {"neurons": [0], "steps": [0], "n_neurons": 2, "duration": 0}, ValueError, "duration"),
        ((), {"neurons": [], "steps": [], "n_neurons": 2}, ValueError, "duration"),
        ((), {"neurons": [0, 1], "steps": [0], "n_neurons": 2}, ValueError, "neurons"),
        (([1.0],), {"nbins": 0}, ValueError, "nbins"),
        (([[1.0]],), {}, ValueError, "rates"),
    ],
)
def test_firing_rate_histogram_rejects_bad_input(args, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        viz.firing_rate_histogram(*args, **kwargs)


def test_figures_share_the_look():
    figs = [
        viz.raster([0], [0]),
        viz.membrane_traces([0], [0.0]),
        viz.weight_heatmap(np.eye(2)),
        viz.stdp_window([1.0], [1.0]),
        viz.reward_history([0], [1.0]),
        viz.firing_rate_histogram([1.0]),
    ]
    for fig in figs:
        assert fig.layout.template.layout.paper_bgcolor is not None  # plotly_white applied
        assert fig.layout.height == 360 or fig.layout.height == 300
        assert fig.layout.title.text
        fig.to_json()  # serialisable as a notebook would send it


# ---------------------------------------------------------------- f-I curve and weight snapshots
def test_fi_curve_sorted_points_and_rheobase():
    currents = [2.0, 0.0, 1.0, 1.5, 0.5]
    rates = [40.0, 0.0, 0.0, 10.0, 0.0]
    fig = viz.fi_curve(currents, rates)
    pairs = sorted(zip(currents, rates))
    assert list(fig.data[0].x) == [p[0] for p in pairs] and list(fig.data[0].y) == [p[1] for p in pairs]
    (line,) = fig.layout.shapes
    assert line.x0 == 1.5  # smallest sampled current that fires
    assert fig.layout.xaxis.title.text == "input current (a.u.)"
    assert fig.layout.yaxis.title.text == "firing rate (Hz)"
    assert len(viz.fi_curve([0.0, 1.0], [0.0, 0.0]).layout.shapes) == 0
    with pytest.raises(ValueError, match="rates"):
        viz.fi_curve([0.0, 1.0], [0.0])
    with pytest.raises(ValueError, match="rates"):
        viz.fi_curve([0.0], [-1.0])
    with pytest.raises(ValueError, match="currents"):
        viz.fi_curve([float("inf")], [1.0])


def test_weight_snapshots_frames_and_slider():
    rng = np.random.default_rng(11)
    steps = [0, 100, 250]
    mats = rng.normal(size=(3, 4, 5)).astype(np.float32)
    fig = viz.weight_snapshots(steps, mats, dt=0.5)
    np.testing.assert_array_equal(np.asarray(fig.data[0].z), mats[-1])
    assert len(fig.frames) == 3
    for i in range(3):
        np.testing.assert_array_equal(np.asarray(fig.frames[i].data[0].z), mats[i])
    slider = fig.layout.sliders[0]
    assert [s.label for s in slider.steps] == ["0", "50", "125"]
    assert slider.active == 2
    bound = float(np.abs(mats).max())
    assert fig.data[0].zmin == pytest.approx(-bound) and fig.data[0].zmax == pytest.approx(bound)
    with pytest.raises(ValueError, match="matrices"):
        viz.weight_snapshots([0], np.zeros((4, 5)))
    with pytest.raises(ValueError, match="matrices"):
        viz.weight_snapshots([0, 1], np.zeros((1, 4, 5)))
    with pytest.raises(ValueError, match="matrices"):
        viz.weight_snapshots([], np.zeros((0, 4, 5)))


def test_raster_tick_height_fits_the_rows():
    few = viz.raster([0], [0], n_neurons=4).data[0].marker.size
    many = viz.raster([0], [0], n_neurons=1000).data[0].marker.size
    assert few == 8.0 and many == 2.0
    mid = viz.raster([0], [0], n_neurons=52, height=360).data[0].marker.size
    assert mid == pytest.approx(0.8 * (360 - 100) / 52)
    assert viz.raster([0], [0], marker_size=3.5).data[0].marker.size == 3.5
    layered = viz.raster_layers({"big": ([0], [0]), "small": ([0], [0])}, sizes={"big": 900, "small": 3})
    assert layered.data[0].marker.size == 2.0 and layered.data[1].marker.size == 8.0
