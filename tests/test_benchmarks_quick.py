"""The benchmark harness: tiny end-to-end run (well-formed output only) and its building blocks.

No timing is asserted anywhere: only shapes, keys, signs and the spike checks.
"""

import importlib.util
import json
import math

import pytest
import torch

from benchmarks import common, neurons, peers
from benchmarks.__main__ import main

# ---------------------------------------------------------------------------- reference LIF in the test


def plain_lif(x_seq, tau=2.0, decay_input=True, strict=False):
    """LIF with hard reset to 0, threshold 1, written as explicit loops over T and N."""
    t_len, n = x_seq.shape
    spikes = torch.zeros(t_len, n, dtype=x_seq.dtype)
    h_all = torch.zeros(t_len, n, dtype=x_seq.dtype)
    for j in range(n):
        v = torch.zeros((), dtype=x_seq.dtype)
        for t in range(t_len):
            x = x_seq[t, j]
            h = v + (x - v) / tau if decay_input else v * (1.0 - 1.0 / tau) + x
            fire = bool(h > 1.0) if strict else bool(h >= 1.0)
            h_all[t, j] = h
            spikes[t, j] = 1.0 if fire else 0.0
            v = torch.zeros((), dtype=x_seq.dtype) if fire else h
    return spikes, h_all


# ---------------------------------------------------------------------------- end to end


def _tiny_argv(out_dir, peer_names=()):
    return [
        "--quick",
        "--quiet",
        "--device",
        "cpu",
        "--out-dir",
        str(out_dir),
        "--w1-sizes",
        "64",
        "--w1-steps",
        "3",
        "5",
        "--w2-sizes",
        "32",
        "--w2-steps-per-run",
        "5",
        "--w4-sizes",
        "16",
        "--w4-batches",
        "1",
        "--peers",
        *peer_names,
    ]


def _check_table(md: str) -> int:
    """Every markdown table in ``md`` has as many cells per row as headers; returns the row count."""
    rows = 0
    lines = md.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("|") and i + 1 < len(lines) and lines[i + 1].startswith("|---"):
            width = line.count("|")
            for body in lines[i + 2 :]:
                if not body.startswith("|"):
                    break
                assert body.count("|") == width, body
                rows += 1
    return rows


def _check_neuron_rows(result, expect_rows):
    assert result["device"] == "cpu" and result["dtype"] == "float32"
    assert "torch" in result["backends"]
    assert len(result["rows"]) == expect_rows
    for r in result["rows"]:
        assert r["error"] is None, r
        assert r["time_s"] > 0 and r["time_min_s"] > 0 and r["time_min_s"] <= r["time_s"]
        assert r["repeats"] >= 1
        assert r["bandwidth_Bps"] > 0 and r["bound_s"] > 0
        assert r["bytes"] > 0 and r["elem_steps_per_s"] > 0 and r["bound_pct"] > 0
        assert math.isclose(r["bound_s"], r["bytes"] / r["bandwidth_Bps"], rel_tol=1e-9)
        assert math.isclose(r["bound_pct"], 100 * r["bound_s"] / r["time_s"], rel_tol=1e-9)
        if r["library"] != "snnlab":
            assert r["spikes"]["equal"], r
            assert all(v is None or v > 0 for v in r["speedup"].values())


def test_quick_run_writes_well_formed_results(tmp_path):
    assert main(_tiny_argv(tmp_path)) == 0
    names = {"neurons_multi_step", "neurons_single_step", "learning_step"}
    for name in names:
        data = json.loads((tmp_path / f"{name}.json").read_text())
        env = data["environment"]
        for key in (
            "cpu",
            "cores",
            "torch",
            "snnlab_backends",
            "peers",
            "peers_skipped",
            "copy_bandwidth_GBps",
        ):
            assert key in env
        assert env["torch"] == torch.__version__ and env["copy_bandwidth_GBps"] > 0
        md = (tmp_path / f"{name}.md").read_text()
        assert md.startswith("## Environment") and _check_table(md) > 0
    backends = neurons.snnlab_backends("cpu")[0]
    w1 = json.loads((tmp_path / "neurons_multi_step.json").read_text())
    # 1 size x 2 sequence lengths x 2 passes x (backends with decay_input only: no peers asked)
    _check_neuron_rows(w1, 1 * 2 * 2 * len(backends))
    assert {(r["pass"], r["T"]) for r in w1["rows"]} == {
        (p, t) for p in ("forward", "forward+backward") for t in (3, 5)
    }
    fwd = next(r for r in w1["rows"] if r["pass"] == "forward" and r["T"] == 5)
    assert fwd["bytes"] == 2 * 4 * 64 * 5
    bwd = next(r for r in w1["rows"] if r["pass"] == "forward+backward" and r["T"] == 5)
    assert bwd["bytes"] == 6 * 4 * 64 * 5
    w2 = json.loads((tmp_path / "neurons_single_step.json").read_text())
    _check_neuron_rows(w2, len(backends))
    assert all(math.isclose(r["us_per_step"], r["time_s"] * 1e6) for r in w2["rows"])
    w4 = json.loads((tmp_path / "learning_step.json").read_text())
    assert len(w4["rows"]) == 4 and all(r["time_s"] > 0 for r in w4["rows"])
    summary = (tmp_path / "summary.md").read_text()
    assert "W1" in summary and "W2" in summary and "W4" in summary


@pytest.mark.skipif(importlib.util.find_spec("spikingjelly") is None, reason="spikingjelly not installed")
def test_quick_run_with_a_peer_reports_equal_spikes_and_ratios(tmp_path):
    argv = _tiny_argv(tmp_path, ["spikingjelly"])
    argv[argv.index("--w1-steps") + 1 : argv.index("--w2-sizes")] = ["4"]
    assert main([*argv, "--workloads", "w1", "w2"]) == 0
    w1 = json.loads((tmp_path / "neurons_multi_step.json").read_text())
    sj_rows = [r for r in w1["rows"] if r["library"] == "spikingjelly"]
    assert len(sj_rows) == 2  # forward and forward+backward
    for r in sj_rows:
        assert r["spikes"]["equal"] and r["speedup"]["snnlab[torch]"] > 0
    assert "× vs spikingjelly" in (tmp_path / "neurons_multi_step.md").read_text()


def test_bad_command_line():
    with pytest.raises(SystemExit):
        main(["--workloads", "w3"])
    with pytest.raises(SystemExit):
        main(["--w1-sizes", "0"])


def test_bad_device_is_reported(capsys, tmp_path):
    assert main(["--device", "tpu", "--out-dir", str(tmp_path)]) == 2
    assert "--device" in capsys.readouterr().err


# ---------------------------------------------------------------------------- spike check and peers


def test_lif_potential_loop_matches_hand_values():
    x = torch.tensor([[1.0], [1.0], [3.0], [0.5]])
    # H0 = 0.5; H1 = 0.5 + (1 - 0.5)/2 = 0.75; H2 = 0.75 + (3 - 0.75)/2 = 1.875 (spike, V=0); H3 = 0.25
    h = peers.lif_potential_loop(x, 2.0, True)
    torch.testing.assert_close(h[:, 0], torch.tensor([0.5, 0.75, 1.875, 0.25]), rtol=0, atol=0)
    # decay_input=False: H = V/2 + X -> 1 (spike), 1 (spike), 3 (spike), 0.5
    h = peers.lif_potential_loop(x, 2.0, False)
    torch.testing.assert_close(h[:, 0], torch.tensor([1.0, 1.0, 3.0, 0.5]), rtol=0, atol=0)


def test_lif_potential_loop_matches_plain_loop_on_random_input():
    x = 4 * torch.rand(12, 7, generator=torch.Generator().manual_seed(3))
    for decay_input in (True, False):
        _, h_ref = plain_lif(x, 2.0, decay_input)
        torch.testing.assert_close(peers.lif_potential_loop(x, 2.0, decay_input), h_ref, rtol=1e-6, atol=1e-7)


def test_compare_spikes_accepts_threshold_ties_only():
    # neuron 0 hits H == 1 exactly at t=0 (x=2): '>=' fires, '>' does not; neuron 1 is ordinary
    x = torch.tensor([[2.0, 0.4], [0.0, 3.0], [2.5, 0.2]])
    ref, _ = plain_lif(x)
    strict, _ = plain_lif(x, strict=True)
    assert not torch.equal(ref, strict)
    check = peers.compare_spikes(strict, ref, x, 2.0, True)
    assert check.equal and check.ties == 1 and check.mismatched == 0
    assert check.describe() == "equal (1 threshold ties)"
    assert peers.compare_spikes(ref, ref, x, 2.0, True) == peers.SpikeCheck(True, 0, 0)
    wrong = ref.clone()
    wrong[1, 1] = 1 - wrong[1, 1]  # H = 0.2 + (3 - 0.2)/2 = 1.6: not a tie
    check = peers.compare_spikes(wrong, ref, x, 2.0, True)
    assert not check.equal and check.mismatched == 1 and check.describe().startswith("differ")
    with pytest.raises(ValueError, match="shape"):
        peers.compare_spikes(ref[:2], ref, x, 2.0, True)


def test_find_peers_reports_missing_and_rejects_unknown():
    found, notes = peers.find_peers(2.0)
    assert {p.name for p in found} | set(notes) == set(peers.PEER_NAMES)
    assert all(isinstance(v, str) and v for v in notes.values())
    with pytest.raises(ValueError, match="names"):
        peers.find_peers(2.0, ["brian2"])


@pytest.mark.parametrize("name", peers.PEER_NAMES)
def test_each_installed_peer_spikes_like_the_plain_loop(name):
    found, notes = peers.find_peers(2.0, [name])
    if not found:
        pytest.skip(f"{name}: {notes[name]}")
    peer = found[0]
    x = 4 * torch.rand(10, 40, generator=torch.Generator().manual_seed(5))
    xin = x * peer.input_scale
    expect, _ = plain_lif(xin, 2.0, peer.decay_input)
    with torch.no_grad():
        out = peer.multi_step(xin)
        assert torch.equal(out, expect)
        assert torch.equal(peer.multi_step(xin), expect)  # fresh state on every call
        stepper = peer.make_stepper()
        stepped = torch.stack([stepper(xin[t]) for t in range(xin.shape[0])])
    assert torch.equal(stepped, expect)
    # differentiable: a surrogate gradient reaches the input
    leaf = xin.clone().requires_grad_(True)
    peer.multi_step(leaf).sum().backward()
    assert leaf.grad is not None and leaf.grad.shape == xin.shape


# ---------------------------------------------------------------------------- common helpers


def test_time_it_runs_warmup_plus_repeats_and_takes_the_median():
    calls = []
    timing = common.time_it(lambda: calls.append(1), repeats=5, warmup=2)
    assert len(calls) == 7 and timing.repeats == 5
    assert timing.min <= timing.median and timing.median == sorted(timing.times)[2]
    with pytest.raises(ValueError, match="repeats"):
        common.time_it(lambda: None, repeats=0)
    with pytest.raises(TypeError, match="repeats"):
        common.time_it(lambda: None, repeats=2.5)
    with pytest.raises(ValueError, match="warmup"):
        common.time_it(lambda: None, repeats=1, warmup=-1)
    with pytest.raises(TypeError, match="fn"):
        common.time_it(None, repeats=1)


def test_adaptive_repeats():
    assert common.adaptive_repeats(0.1, 1.0, 3, 30) == 10
    assert common.adaptive_repeats(10.0, 1.0, 3, 30) == 3
    assert common.adaptive_repeats(0.0, 1.0, 3, 30) == 30
    with pytest.raises(ValueError, match="max_repeats"):
        common.adaptive_repeats(0.1, 1.0, 5, 2)
    with pytest.raises(ValueError, match="estimate_s"):
        common.adaptive_repeats(float("nan"), 1.0, 1, 2)
    with pytest.raises(ValueError, match="budget_s"):
        common.adaptive_repeats(0.1, 0.0, 1, 2)


def test_bandwidth_and_bound():
    bw = common.measure_bandwidth(1 << 12, repeats=2)
    assert bw > 0 and math.isfinite(bw)
    assert common.bound_percent(8e6, 4e9, 4e-3) == pytest.approx(50.0)
    with pytest.raises(ValueError, match="numel"):
        common.measure_bandwidth(0)
    with pytest.raises(ValueError, match="bandwidth"):
        common.bound_percent(1.0, 0.0, 1.0)


def test_check_helpers_name_the_argument():
    assert common.check_positive_int_list("sizes", (1, 2)) == [1, 2]
    with pytest.raises(ValueError, match="sizes"):
        common.check_positive_int_list("sizes", [])
    with pytest.raises(ValueError, match="sizes"):
        common.check_positive_int_list("sizes", [3, -1])
    with pytest.raises(TypeError, match="sizes"):
        common.check_positive_int_list("sizes", "12")
    with pytest.raises(ValueError, match="device"):
        common.check_device("device", "tpu")
    with pytest.raises(TypeError, match="device"):
        common.check_device("device", 3)
    with pytest.raises(ValueError, match="sizes"):
        neurons.run_multi_step(sizes=[0])
    with pytest.raises(ValueError, match="passes"):
        neurons.run_multi_step(sizes=[4], steps=[2], passes=["sideways"])
    with pytest.raises(ValueError, match="steps_per_run"):
        neurons.run_single_step(sizes=[4], steps_per_run=0)


def test_markdown_and_writers(tmp_path):
    table = common.markdown_table(["a", "b"], [[1, 2], ["x", "y"]])
    assert table.splitlines() == ["| a | b |", "|---|---|", "| 1 | 2 |", "| x | y |"]
    with pytest.raises(ValueError, match="rows"):
        common.markdown_table(["a", "b"], [[1]])
    md, js = common.write_results("demo", {"v": float("inf"), "t": (1, 2)}, "# t", tmp_path)
    assert json.loads(js.read_text()) == {"v": None, "t": [1, 2]} and md.read_text() == "# t\n"
    with pytest.raises(ValueError, match="name"):
        common.write_results("a/b", {}, "", tmp_path)
    assert common.format_rate(1.5e9) == "1.5 G" and common.format_rate(12.0) == "12"
