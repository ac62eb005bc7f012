"""The learning-step benchmark runs and writes a well-formed result (no timing assertions)."""

from __future__ import annotations

import json
import math
import platform
import shutil
import subprocess
import types
from pathlib import Path

import pytest

from benchmarks import learning_step
from snnlab.learning import MSTDPLearner, STDPLearner


def test_learning_step_benchmark_quick_is_well_formed(tmp_path, capsys):
    out = tmp_path / "learning_step.json"
    args = ["--quick", "--sizes", "48", "--batches", "1", "3", "--repeats", "2", "--threads", "1"]
    result = learning_step.main([*args, "--dram-mib", "4", "--out", str(out)])
    saved = json.loads(out.read_text())
    assert saved == json.loads(json.dumps(result))
    assert saved["threads"] == [1]
    rows = saved["rows"]
    assert len(rows) == 1 * 2 * 2 * 2  # sizes x batches x rules x modulations
    assert {(r["batch"], r["rule"], r["modulation"]) for r in rows} == {
        (b, rule, m) for b in (1, 3) for rule in ("stdp", "mstdp") for m in ("additive", "multiplicative")
    }
    for r in rows:
        assert r["n"] == 48 and r["threads"] == 1
        for key in (
            "time_s",
            "bound_s",
            "ratio",
            "bandwidth_GBps",
            "bandwidth_dram_GBps",
            "torch_path_time_s",
            "torch_path_ratio",
            "speedup_vs_torch_path",
            "naive_time_s",
            "speedup_vs_naive",
        ):
            assert isinstance(r[key], float) and math.isfinite(r[key]) and r[key] > 0, key
        assert math.isclose(r["ratio"], r["time_s"] / r["bound_s"], rel_tol=1e-9)
        t_peer = r["spikingjelly_time_s"]
        if t_peer is None:
            assert r["speedup_vs_spikingjelly"] is None
        else:
            assert math.isclose(r["speedup_vs_spikingjelly"], t_peer / r["time_s"], rel_tol=1e-9)
    if "spikingjelly" not in saved["peers"]:  # not measured: the notes say why
        assert any("spikingjelly" in note for note in saved["peer_notes"])
    else:
        assert all(r["spikingjelly_time_s"] is not None for r in rows) or saved["peer_notes"]
        assert r["bytes_per_weight"] == {"additive": 8, "multiplicative": 12}[r["modulation"]]
        bound = r["bytes_per_weight"] * 48 * 48 / (r["bandwidth_GBps"] * 1e9)
        assert math.isclose(r["bound_s"], bound, rel_tol=1e-9)
        assert r["bound_source"] in ("W-sized copy (cache)", "W-sized copy (DRAM)")
        assert r["path"] in ("fused-cpu", "torch")
    table = capsys.readouterr().out
    assert table.startswith("| N | batch | rule |") and table.count("\n") >= len(rows) + 1
    assert out.with_suffix(".md").read_text().strip() == table.strip()


def test_learning_step_benchmark_rejects_bad_threads(tmp_path):
    with pytest.raises(SystemExit):
        learning_step.main(["--quick", "--threads", "0", "--out", str(tmp_path / "x.json")])


CEILING = Path(__file__).resolve().parents[1] / "benchmarks" / "ceiling" / "stdp_batch_lookup.c"


@pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc is not installed")
def test_c_ceiling_program_compiles_without_warnings(tmp_path):
    """The C ceiling of the batch lookups builds (AVX-512 code, so it compiles on any x86-64 gcc; it is
    run by hand, on a machine with AVX-512, as its header says)."""
    if platform.machine() not in ("x86_64", "AMD64"):
        pytest.skip("x86-64 intrinsics")
    exe = tmp_path / "lookup"
    cmd = ["gcc", "-O2", "-mavx512f", "-fopenmp", "-Wall", "-Wextra", "-Werror", str(CEILING), "-o", str(exe)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert exe.is_file()


class _DoubledSTDP(STDPLearner):
    """snnlab's learner with every update doubled: a peer that must not pass the check."""

    def step(self, on_grad: bool = True, scale: float = 1.0):  # type: ignore[override]
        return super().step(on_grad, 2.0 * scale)


class _DoubledMSTDP(MSTDPLearner):
    def step(self, reward, on_grad: bool = True, scale: float = 1.0):  # type: ignore[override]
        return super().step(reward, on_grad, 2.0 * scale)


@pytest.mark.parametrize("rule", ["stdp", "mstdp"])
def test_peer_check_accepts_equal_grads_and_rejects_others(rule):
    """The peer check compares snnlab's weight.grad with the peer's after the same steps."""
    same = types.SimpleNamespace(STDPLearner=STDPLearner, MSTDPLearner=MSTDPLearner)
    ok, diff = learning_step.check_peer(same, rule, lambda w: w, 3)
    assert ok and diff == 0.0
    doubled = types.SimpleNamespace(STDPLearner=_DoubledSTDP, MSTDPLearner=_DoubledMSTDP)
    ok, diff = learning_step.check_peer(doubled, rule, lambda w: w, 3)
    assert not ok and diff > 0
