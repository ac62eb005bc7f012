"""Figures from Experiment frames: merging frames and building each view kind."""

import numpy as np
import pytest

from snnlab import viz


def make_frame(t0, k=5, seed=0, with_weights=True):
    """A frame in the Experiment.frame() layout covering steps t0 .. t0 + k - 1."""
    rng = np.random.default_rng(seed)
    steps = np.arange(t0, t0 + k, dtype=np.int64)
    spike_steps = np.repeat(steps, 2)
    frame = {
        "t": t0 + k,
        "time_ms": float(t0 + k) * 0.5,
        "spikes": {
            "input": (spike_steps, rng.integers(0, 8, 2 * k).astype(np.int32)),
            "output": (steps, rng.integers(0, 3, k).astype(np.int32)),
        },
        "traces": {"membrane": (steps, rng.normal(size=(k, 3)).astype(np.float32))},
        "weights": {},
        "series": {
            "reward": (steps, rng.choice([-1.0, 1.0], k).astype(np.float32)),
            "eligibility": (steps, rng.random((k, 3)).astype(np.float32)),
            "rate": (steps, rng.random(k).astype(np.float32)),
        },
        "points": {
            "window": (rng.uniform(-20, 20, k).astype(np.float32), rng.normal(size=k).astype(np.float32))
        },
        "stats": {"steps_per_second": 100.0 + t0, "running": False, "error": None, "dropped": 1},
    }
    if with_weights:
        frame["weights"]["weights"] = rng.random((3, 8)).astype(np.float32)
    return frame


VIEWS = {
    "dt": 0.5,
    "raster": {"input": {"size": 8, "label": "inputs"}, "output": {"size": 3, "label": "outputs"}},
    "traces": {"membrane": {"labels": ["v[0]", "v[1]", "v[2]"], "threshold": 1.25, "label": "membrane"}},
    "weights": {"weights": {"shape": (3, 8), "rf_shape": (2, 4), "label": "W", "vmin": 0.0, "vmax": 2.0}},
    "series": {
        "reward": {"labels": ["reward"], "label": "reward"},
        "eligibility": {"labels": ["e[0]", "e[1]", "e[2]"], "label": "eligibility"},
        "rate": {"labels": ["rate"], "label": "rate (Hz)"},
    },
    "points": {"window": {"x_label": "dt (ms)", "y_label": "dw", "label": "STDP window"}},
    "params": ["tau"],
}


def test_merge_frames_concatenates_in_order():
    frames = [make_frame(0, seed=1), make_frame(5, seed=2, with_weights=False), make_frame(10, seed=3)]
    merged = viz.merge_frames(frames)
    assert merged["t"] == 15 and merged["time_ms"] == 7.5
    assert merged["stats"]["dropped"] == 3 and merged["stats"]["steps_per_second"] == 110.0
    for key in ("spikes", "traces", "series", "points"):
        for name in frames[0][key]:
            a = np.concatenate([f[key][name][0] for f in frames])
            b = np.concatenate([f[key][name][1] for f in frames])
            np.testing.assert_array_equal(merged[key][name][0], a)
            np.testing.assert_array_equal(merged[key][name][1], b)
    np.testing.assert_array_equal(merged["weights"]["weights"], frames[2]["weights"]["weights"])
    with pytest.raises(ValueError, match="frames"):
        viz.merge_frames([])
    with pytest.raises(TypeError, match=r"frames\[1\]"):
        viz.merge_frames([make_frame(0), "nope"])


def test_raster_views_from_frame():
    frame = make_frame(4)
    fig = viz.figure_from_frame(frame, VIEWS, "raster", "output")
    steps, neurons = frame["spikes"]["output"]
    assert list(fig.data[0].x) == [0.5 * s for s in steps.tolist()]
    assert list(fig.data[0].y) == neurons.tolist()
    assert tuple(fig.layout.yaxis.range) == (-0.5, 2.5) and fig.layout.title.text == "outputs"
    stacked = viz.figure_from_frame(frame, VIEWS, "raster")
    assert [t.name for t in stacked.data] == ["input", "output"]


def test_rates_view_counts_spikes_per_neuron():
    frame = make_frame(4, k=6)
    steps, neurons = frame["spikes"]["input"]
    fig = viz.figure_from_frame(frame, VIEWS, "rates", "input")
    duration = frame["t"] - int(steps.min())
    counts = [0] * 8
    for n in neurons:
        counts[int(n)] += 1
    expected = [c / (duration * 0.5 / 1000.0) for c in counts]
    np.testing.assert_allclose(np.asarray(fig.data[0].x), expected, rtol=1e-12)


def test_trace_weight_and_field_views_from_frame():
    frame = make_frame(0)
    fig = viz.figure_from_frame(frame, VIEWS, "traces")
    assert [t.name for t in fig.data] == ["v[0]", "v[1]", "v[2]"]
    np.testing.assert_array_equal(np.asarray(fig.data[1].y), frame["traces"]["membrane"][1][:, 1])
    assert [s.y0 for s in fig.layout.shapes] == [1.25]
    w = frame["weights"]["weights"]
    heat = viz.figure_from_frame(frame, VIEWS, "weights").data[0]
    np.testing.assert_array_equal(np.asarray(heat.z), w)
    assert (heat.zmin, heat.zmax) == (0.0, 2.0)
    fields = viz.figure_from_frame(frame, VIEWS, "receptive_fields", gap=0, cols=3)
    z = np.asarray(fields.data[0].z)
    for i in range(3):
        np.testing.assert_array_equal(z[:, 4 * i : 4 * i + 4], w[i].reshape(2, 4))


def test_series_reward_and_points_views_from_frame():
    frame = make_frame(2)
    fig = viz.figure_from_frame(frame, VIEWS, "series", "rate")
    np.testing.assert_array_equal(np.asarray(fig.data[0].y), frame["series"]["rate"][1])
    fig = viz.figure_from_frame(frame, VIEWS, "reward", window=2)
    names = [t.name for t in fig.data]
    assert names[:2] == ["reward", "mean reward (last 2)"] and names[2:] == ["e[0]", "e[1]", "e[2]"]
    np.testing.assert_array_equal(np.asarray(fig.data[0].y), frame["series"]["reward"][1])
    x, y = frame["points"]["window"]
    fig = viz.figure_from_frame(frame, VIEWS, "points", theory=lambda d: 0.5 * d)
    measured = next(t for t in fig.data if t.name == "measured")
    np.testing.assert_array_equal(np.asarray(measured.x), x)
    np.testing.assert_array_equal(np.asarray(measured.y), y)
    theory = next(t for t in fig.data if t.name == "theory")
    np.testing.assert_allclose(np.asarray(theory.y), 0.5 * np.asarray(theory.x))


@pytest.mark.parametrize(
    ("view", "name", "frame_kwargs", "exc", "match"),
    [
        ("histogram", None, {}, ValueError, "view"),
        ("raster", "hidden", {}, ValueError, "name"),
        ("weights", None, {"with_weights": False}, ValueError, "weights"),
        ("series", "nope", {}, ValueError, "name"),
    ],
)
def test_figure_from_frame_rejects_bad_requests(view, name, frame_kwargs, exc, match):
    with pytest.raises(exc, match=match):
        viz.figure_from_frame(make_frame(0, **frame_kwargs), VIEWS, view, name)


def test_figure_from_frame_rejects_non_dicts_and_missing_rf_shape():
    with pytest.raises(TypeError, match="frame"):
        viz.figure_from_frame([], VIEWS, "raster")
    with pytest.raises(TypeError, match="views"):
        viz.figure_from_frame(make_frame(0), None, "raster")
    views = {**VIEWS, "weights": {"weights": {**VIEWS["weights"]["weights"], "rf_shape": None}}}
    with pytest.raises(ValueError, match="rf_shape"):
        viz.figure_from_frame(make_frame(0), views, "receptive_fields")


class StandInExperiment:
    """The parts of the Experiment contract figure_from_experiment uses."""

    def __init__(self):
        self.frames_read = 0

    def frame(self):
        self.frames_read += 1
        return make_frame(0, seed=self.frames_read)

    def views(self):
        return VIEWS

    def theoretical_window(self, dts):
        return np.where(np.asarray(dts) > 0, 1.0, -1.0)


def test_figure_from_experiment_uses_frame_and_theory():
    exp = StandInExperiment()
    fig = viz.figure_from_experiment(exp, "points")
    assert exp.frames_read == 1
    theory = next(t for t in fig.data if t.name == "theory")
    np.testing.assert_array_equal(np.asarray(theory.y), np.where(np.asarray(theory.x) > 0, 1.0, -1.0))
    given = make_frame(0, seed=42)
    fig = viz.figure_from_experiment(exp, "traces", frame=given)
    assert exp.frames_read == 1  # a given frame is used as is
    np.testing.assert_array_equal(np.asarray(fig.data[0].y), given["traces"]["membrane"][1][:, 0])
    with pytest.raises(TypeError, match="exp"):
        viz.figure_from_experiment(object(), "raster")


def test_rates_view_of_a_silent_layer_is_all_zero():
    frame = make_frame(10, k=4)
    frame["spikes"]["output"] = (np.zeros(0, np.int64), np.zeros(0, np.int32))
    fig = viz.figure_from_frame(frame, VIEWS, "rates", "output")
    assert list(fig.data[0].x) == [0.0, 0.0, 0.0]


# ---------------------------------------------------------------- with the real experiments
def every_view(exp, merged):
    views = exp.views()
    figs = []
    for name in views["raster"]:
        figs.append(viz.figure_from_frame(merged, views, "raster", name))
        figs.append(viz.figure_from_frame(merged, views, "rates", name))
    for name in views["traces"]:
        figs.append(viz.figure_from_frame(merged, views, "traces", name))
    for name, meta in views["weights"].items():
        figs.append(viz.figure_from_frame(merged, views, "weights", name))
        if meta["rf_shape"] is not None:
            figs.append(viz.figure_from_frame(merged, views, "receptive_fields", name))
    for name in views["series"]:
        figs.append(viz.figure_from_frame(merged, views, "series", name))
    for name in views["points"]:
        figs.append(viz.figure_from_experiment(exp, "points", name, frame=merged))
    return figs


@pytest.mark.parametrize(
    ("cls", "kwargs"),
    [
        ("NeuronExplorer", {}),
        ("PopulationRaster", {"n": 64, "fan_in": 8, "view_shape": (8, 8)}),
        ("STDPWindow", {}),
        ("STDPLearning", {"side": 4, "n_out": 3}),
        ("RewardLearning", {"n_in": 6, "n_out": 2}),
    ],
)
def test_every_view_of_the_ready_made_experiments(cls, kwargs):
    lab = pytest.importorskip("snnlab.lab")
    exp = getattr(lab, cls)(**kwargs)
    try:
        frames = []
        for _ in range(2):
            exp.step(15)
            frames.append(exp.frame())
        merged = viz.merge_frames(frames)
        figs = every_view(exp, merged)
        assert figs
        views = exp.views()
        for name in views["raster"]:
            steps, neurons = merged["spikes"][name]
            fig = viz.figure_from_frame(merged, views, "raster", name)
            np.testing.assert_allclose(np.asarray(fig.data[0].x, dtype=float), steps * views["dt"])
            np.testing.assert_array_equal(np.asarray(fig.data[0].y), neurons)
        if "reward" in views["series"]:
            fig = viz.figure_from_frame(merged, views, "reward")
            np.testing.assert_array_equal(np.asarray(fig.data[0].y), merged["series"]["reward"][1])
            assert any(t.name == "eligibility" or t.name.startswith("e[") for t in fig.data)
        if views["points"]:
            fig = figs[-1]
            assert [t.name for t in fig.data] == ["theory", "measured"]
    finally:
        exp.close()
