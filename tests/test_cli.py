"""The default simulation and the ``snnlab`` command."""

import subprocess
import sys

import pytest
import torch

from snnlab import cli, demo


def test_default_simulation_matches_explicit_lif_loop():
    res = demo.run_default_simulation(n_inputs=30, n_neurons=5, steps=40, input_rate=0.3, tau=2.0, seed=3)
    assert res.inputs.shape == (40, 30) and res.spikes.shape == (40, 5) and res.v.shape == (40, 5)
    assert set(res.inputs.unique().tolist()) <= {0.0, 1.0}
    # the spikes must be what a LIF (tau=2, decay_input, hard reset to 0, threshold 1) does with the drive
    # implied by the recorded membrane trace: v[t] = 0 after a spike, else v[t] < 1
    fired = res.spikes.bool()
    assert torch.all(res.v[fired] == 0.0)
    assert torch.all(res.v[~fired] < 1.0)
    assert 0.0 < res.spikes.mean().item() < 1.0
    again = demo.run_default_simulation(n_inputs=30, n_neurons=5, steps=40, input_rate=0.3, tau=2.0, seed=3)
    assert torch.equal(res.spikes, again.spikes)


def test_render_raster_rows_are_neurons():
    spikes = torch.tensor([[1.0, 0.0], [0.0, 0.0], [1.0, 1.0]])
    text = demo.render_raster(spikes)
    assert text.splitlines() == ["   0 |·|", "   1 ··|"]
    assert demo.render_raster(spikes, width=1).splitlines() == ["   0 |", "   1 |"]


def test_bad_arguments():
    with pytest.raises(ValueError, match="n_neurons"):
        demo.run_default_simulation(n_neurons=0)
    with pytest.raises(ValueError, match="input_rate"):
        demo.run_default_simulation(input_rate=1.5)
    with pytest.raises(SystemExit):
        cli.main(["sim", "--tau", "0.5"])
    with pytest.raises(SystemExit):
        cli.main(["serve", "--port", "70000"])
    assert cli.main(["serve", "no-such-app"]) == 2


def test_command_prints_summary_and_raster():
    out = subprocess.run(
        [sys.executable, "-m", "snnlab", "sim", "--neurons", "4", "--steps", "30"],
        capture_output=True, text=True, check=True,
    ).stdout
    assert "LIF layer: 4 neurons" in out
    raster = [line for line in out.splitlines() if line[:5].strip().isdigit()]
    assert len(raster) == 4 and all(len(line) == 5 + 30 for line in raster)


def test_no_subcommand_prints_help_listing_serve_and_sim():
    out = subprocess.run([sys.executable, "-m", "snnlab"], capture_output=True, text=True, check=True).stdout
    assert "usage: snnlab" in out and "serve" in out and "sim" in out
