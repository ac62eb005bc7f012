"""The ``snnlab`` command.

``snnlab`` (or ``python -m snnlab``) with no sub-command runs the built-in
default simulation and prints a text raster and a firing-rate summary;
``snnlab sim --help`` lists its options.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _probability(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {text!r}")
    return value


def _tau(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number > 1, got {text!r}") from None
    if not value > 1.0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a finite number > 1, got {text!r}")
    return value


def _add_sim_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--inputs", type=_positive_int, default=100, help="Poisson input trains (100)")
    parser.add_argument("--neurons", type=_positive_int, default=20, help="LIF neurons (20)")
    parser.add_argument("--steps", type=_positive_int, default=100, help="time steps (100)")
    parser.add_argument("--rate", type=_probability, default=0.2, help="input spikes per step (0.2)")
    parser.add_argument("--tau", type=_tau, default=2.0, help="membrane time constant in steps (2.0)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (0)")
    parser.add_argument("--width", type=_positive_int, default=100, help="raster columns shown (100)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="snnlab", description="snnlab: an interactive lab for SNNs.")
    _add_sim_arguments(parser)
    sub = parser.add_subparsers(dest="command")
    sim = sub.add_parser("sim", help="run the built-in default simulation and print a text raster")
    _add_sim_arguments(sim)
    return parser


def run_sim(args: argparse.Namespace) -> int:
    from .demo import render_raster, render_summary, run_default_simulation

    result = run_default_simulation(
        n_inputs=args.inputs,
        n_neurons=args.neurons,
        steps=args.steps,
        input_rate=args.rate,
        tau=args.tau,
        seed=args.seed,
    )
    print(render_summary(result))
    print(f"\nraster (last {min(args.width, args.steps)} steps; rows = neurons, | = spike):")
    print(render_raster(result.spikes, width=args.width))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_sim(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
