"""`hyperadam-keras make-bundle OUT`: write the untrained "Adam ensemble" as a bundle."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hyperadam_keras.bundle import save_meta_params
from hyperadam_keras.cli.arg_types import open_unit_float, positive_float, positive_int
from hyperadam_keras.meta_params import adam_ensemble


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("output", type=Path,
                        help="directory to create (an existing empty directory will do; an existing bundle "
                             "only with --overwrite)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace OUTPUT if it holds a bundle (a SavedModel) already")
    parser.add_argument("--num-candidates", "-J", type=positive_int, default=20,
                        help="J, the number of candidate Adams")
    parser.add_argument("--hidden", "-H", type=positive_int, default=20, help="H, the StateCell (LSTM) width")
    parser.add_argument("--beta-min", type=open_unit_float, default=0.5, help="smallest fixed first-moment decay")
    parser.add_argument("--beta-max", type=open_unit_float, default=0.99, help="largest fixed first-moment decay")
    parser.add_argument("--gamma", type=open_unit_float, default=0.999,
                        help="fixed second-moment decay of every candidate")
    parser.add_argument("--weight-sum", type=positive_float, default=1.0,
                        help="sum of the candidate weights ρ (each ρ = weight-sum / J): the effective step is "
                             "weight-sum × learning_rate")


def run(args: argparse.Namespace) -> int:
    if args.beta_min > args.beta_max:
        print(f"make-bundle: --beta-min ({args.beta_min}) must not exceed --beta-max ({args.beta_max})",
              file=sys.stderr)
        return 2
    output: Path = args.output
    params = adam_ensemble(args.num_candidates, args.hidden, (args.beta_min, args.beta_max), args.gamma,
                           args.weight_sum)
    metadata = {
        "description": "UNTRAINED Adam ensemble: zero kernels, fixed decays, equal weights weight_sum/J",
        "trained": False,
        "made_by": {"command": "hyperadam-keras make-bundle", "num_candidates": args.num_candidates,
                    "hidden": args.hidden, "beta_range": [args.beta_min, args.beta_max], "gamma": args.gamma,
                    "weight_sum": args.weight_sum},
    }
    try:  # refuses what it must not replace; a failed write leaves an old bundle in place
        save_meta_params(params, output, metadata=metadata, overwrite=args.overwrite)
    except FileExistsError as error:
        print(f"make-bundle: {str(error).replace('overwrite=True', '--overwrite')}", file=sys.stderr)
        return 2
    print(f"wrote {output}: {params}")
    return 0
