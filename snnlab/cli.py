"""The ``snnlab`` command.

* ``snnlab serve [APP ...] [--port 5006] [--address 127.0.0.1] [--show/--no-show]``
  serves the live dashboards (``neuron``, ``raster``, ``stdp-window``,
  ``stdp``, ``reward``; all by default) with a gallery at ``/``;
* ``snnlab sim`` runs the built-in default simulation and prints a text
  raster and a firing-rate summary (``snnlab sim --help`` lists its options).

``snnlab`` (or ``python -m snnlab``) with no sub-command prints this help.
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


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number in [0, 65535], got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port number in [0, 65535], got {text!r}")
    return value


# the app names, kept here so `snnlab --help` does not import the UI stack
APP_NAMES = ("neuron", "raster", "stdp-window", "stdp", "reward")


def _add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("apps", nargs="*", metavar="APP",
                        help=f"apps to serve (default: all of {', '.join(APP_NAMES)})")
    parser.add_argument("--port", type=_port, default=5006, help="port (5006; 0 picks a free one)")
    parser.add_argument("--address", default="127.0.0.1",
                        help="address to bind (127.0.0.1; use 0.0.0.0 to accept other machines)")
    parser.add_argument("--allow-websocket-origin", action="append", default=[], metavar="HOST[:PORT]",
                        help="extra origin allowed to open websockets (repeatable)")
    parser.add_argument("--show", action=argparse.BooleanOptionalAction, default=False,
                        help="open a browser tab (off by default)")
    parser.add_argument("--torch-threads", type=_positive_int, default=1, metavar="N",
                        help="torch intra-op threads of the server process (1: tabs step in parallel)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="snnlab", description="snnlab: an interactive lab for SNNs.")
    sub = parser.add_subparsers(dest="command", metavar="{serve,sim}")
    serve = sub.add_parser("serve", help="serve the live dashboards (gallery at /)")
    _add_serve_arguments(serve)
    sim = sub.add_parser("sim", help="run the built-in default simulation and print a text raster")
    _add_sim_arguments(sim)
    return parser


def run_serve(args: argparse.Namespace) -> int:
    unknown = [a for a in args.apps if a not in APP_NAMES]
    if unknown:
        print(f"snnlab serve: APP must be among {', '.join(APP_NAMES)}, got {', '.join(unknown)}",
              file=sys.stderr)
        return 2
    from .dashboards.server import serve

    try:
        serve(args.apps or None, port=args.port, address=args.address,
              allow_websocket_origin=args.allow_websocket_origin, show=args.show,
              torch_threads=args.torch_threads)
    except KeyboardInterrupt:  # pragma: no cover - interactive stop
        pass
    return 0


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
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "serve":
        return run_serve(args)
    if args.command == "sim":
        return run_sim(args)
    parser.print_help()
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
