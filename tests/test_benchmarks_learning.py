"""The learning-step benchmark runs and writes a well-formed result (no timing assertions)."""

from __future__ import annotations

import json
import math
import platform
import shutil
import subprocess
from pathlib import Path

import pytest

from benchmarks import learning_step


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
