"""The learning-step benchmark runs and writes a well-formed result (no timing assertions)."""

from __future__ import annotations

import json
import math

from benchmarks import learning_step


def test_learning_step_benchmark_quick_is_well_formed(tmp_path, capsys):
    out = tmp_path / "learning_step.json"
    result = learning_step.main(
        ["--quick", "--sizes", "48", "--batches", "1", "3", "--repeats", "2", "--out", str(out)]
    )
    saved = json.loads(out.read_text())
    assert saved == json.loads(json.dumps(result))
    rows = saved["rows"]
    assert len(rows) == 1 * 2 * 2 * 2  # sizes x batches x rules x modulations
    assert {(r["batch"], r["rule"], r["modulation"]) for r in rows} == {
        (b, rule, m) for b in (1, 3) for rule in ("stdp", "mstdp") for m in ("additive", "multiplicative")
    }
    for r in rows:
        assert r["n"] == 48
        for key in ("time_s", "bound_s", "ratio", "bandwidth_GBps", "naive_time_s", "speedup_vs_naive"):
            assert isinstance(r[key], float) and math.isfinite(r[key]) and r[key] > 0, key
        assert math.isclose(r["ratio"], r["time_s"] / r["bound_s"], rel_tol=1e-9)
    table = capsys.readouterr().out
    assert table.startswith("| N | batch | rule |") and table.count("\n") >= len(rows) + 1
