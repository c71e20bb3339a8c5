"""`hyperadam-keras make-bundle OUT`: write the untrained "Adam ensemble" as a bundle."""

from __future__ import annotations

import argparse

from hyperadam_keras.bundle import save_meta_params
from hyperadam_keras.meta_params import adam_ensemble


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("output", help="directory to create (must not hold a SavedModel already)")
    parser.add_argument("--num-candidates", "-J", type=int, default=20, help="J, the number of candidate Adams")
    parser.add_argument("--hidden", "-H", type=int, default=20, help="H, the StateCell (LSTM) width")
    parser.add_argument("--beta-min", type=float, default=0.5, help="smallest fixed first-moment decay")
    parser.add_argument("--beta-max", type=float, default=0.99, help="largest fixed first-moment decay")
    parser.add_argument("--gamma", type=float, default=0.999, help="fixed second-moment decay of every candidate")
    parser.add_argument("--weight-sum", type=float, default=1.0,
                        help="sum of the candidate weights ρ (each ρ = weight-sum / J): the effective step is "
                             "weight-sum × learning_rate")


def run(args: argparse.Namespace) -> int:
    params = adam_ensemble(args.num_candidates, args.hidden, (args.beta_min, args.beta_max), args.gamma,
                           args.weight_sum)
    save_meta_params(params, args.output, metadata={
        "description": "UNTRAINED Adam ensemble: zero kernels, fixed decays, equal weights weight_sum/J",
        "trained": False,
        "made_by": {"command": "hyperadam-keras make-bundle", "num_candidates": args.num_candidates,
                    "hidden": args.hidden, "beta_range": [args.beta_min, args.beta_max], "gamma": args.gamma,
                    "weight_sum": args.weight_sum},
    })
    print(f"wrote {args.output}: {params}")
    return 0
