"""`hyperadam-keras make-bundle OUT`: write the untrained "Adam ensemble" as a bundle."""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
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


def _refusal(output: Path, overwrite: bool) -> str | None:
    """Why OUTPUT cannot be written, or None if it can (then it is new, empty, or a bundle to replace)."""
    if not output.exists():
        return None
    if not output.is_dir():
        return f"{output} exists and is not a directory; choose another path"
    if not any(output.iterdir()):
        return None
    if not (output / "saved_model.pb").is_file():
        return f"{output} exists, is not empty and holds no bundle; choose another path"
    if not overwrite:
        return f"{output} already holds a bundle; pass --overwrite to replace it, or choose another path"
    return None


def run(args: argparse.Namespace) -> int:
    if args.beta_min > args.beta_max:
        print(f"make-bundle: --beta-min ({args.beta_min}) must not exceed --beta-max ({args.beta_max})",
              file=sys.stderr)
        return 2
    output: Path = args.output
    refusal = _refusal(output, args.overwrite)
    if refusal:
        print(f"make-bundle: {refusal}", file=sys.stderr)
        return 2
    params = adam_ensemble(args.num_candidates, args.hidden, (args.beta_min, args.beta_max), args.gamma,
                           args.weight_sum)
    metadata = {
        "description": "UNTRAINED Adam ensemble: zero kernels, fixed decays, equal weights weight_sum/J",
        "trained": False,
        "made_by": {"command": "hyperadam-keras make-bundle", "num_candidates": args.num_candidates,
                    "hidden": args.hidden, "beta_range": [args.beta_min, args.beta_max], "gamma": args.gamma,
                    "weight_sum": args.weight_sum},
    }
    replace = output.is_dir() and any(output.iterdir())
    if replace:  # write beside it first: a failed write leaves the old bundle in place
        with tempfile.TemporaryDirectory(prefix=f".{output.name}-", dir=output.parent) as scratch:
            save_meta_params(params, Path(scratch) / "bundle", metadata=metadata)
            shutil.rmtree(output)
            (Path(scratch) / "bundle").rename(output)
    else:
        save_meta_params(params, output, metadata=metadata)
    print(f"wrote {output}: {params}")
    return 0
