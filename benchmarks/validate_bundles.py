"""Meta-validation of several bundles on one run's held-out task seeds: candidates compared on validation
tasks (never on an evaluation suite), by the training loss and by the held-out loss of their final weights.

Runs each bundle through `MetaTrainer.validate` with the recorded configuration of a meta-training run
(its family, horizon, step, decay and validation seeds) and each validation metric asked for, so that
bundles from different runs are compared on the same tasks. `--max-relative-step` runs them under another
relative-step cap than the run's (e.g. the default optimizer's 0.03 on a run meta-trained without one), so
that what the cap costs or saves is measured on validation tasks, never on an evaluation suite. Results are
written as JSON.

    python benchmarks/validate_bundles.py --run meta_training/run13 \
      --bundle meta_training/run10/best_bundle --bundle meta_training/run12/best_bundle \
      --json benchmarks/validate_bundles_run13.json
    python benchmarks/validate_bundles.py --run meta_training/run12 --metric final-loss \
      --bundle meta_training/run12/best_bundle --max-relative-step 0.03 --max-relative-step none \
      --json benchmarks/validate_bundles_cap.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
os.environ.setdefault("HYPERADAM_KERAS_QUIET_START", "1")

import hyperadam_keras  # noqa: E402,F401  (quiet start first)

from hyperadam_keras import load_meta_params  # noqa: E402
from hyperadam_keras.cli.arg_types import optional, positive_float  # noqa: E402
from hyperadam_keras.lab.meta.config import VALIDATION_METRICS, load_run_config  # noqa: E402
from hyperadam_keras.lab.meta.families import build_task, validation_task_seeds  # noqa: E402
from hyperadam_keras.lab.meta.trainer import MetaTrainer  # noqa: E402


_RUNS_OWN = "run's own"  # --max-relative-step not given: the run's recorded cap


def validate(run_dir: str, bundle: str, metric: str, tasks=None, max_relative_step=_RUNS_OWN) -> float:
    """`bundle`'s meta-validation `metric` on the held-out task seeds of the run in `run_dir`, under the run's
    relative-step cap or `max_relative_step` (a float, or None: no cap)."""
    config = dataclasses.replace(load_run_config(run_dir), validation_metric=metric)
    if max_relative_step != _RUNS_OWN:
        config = dataclasses.replace(config, max_relative_step=max_relative_step)
    params = load_meta_params(bundle)
    config = dataclasses.replace(config, num_candidates=params.num_candidates, hidden=params.hidden,
                                 feature_normalization=params.feature_normalization)
    trainer = MetaTrainer(config, build_task(config) if tasks is None else tasks, init=params)
    return trainer.validate(validation_task_seeds(config))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", required=True, help="a meta-training run directory (its config.json is used)")
    parser.add_argument("--bundle", action="append", required=True, help="a bundle directory (repeatable)")
    parser.add_argument("--metric", action="append", choices=VALIDATION_METRICS,
                        help="validation metric (repeatable; default: final-loss and held-out-loss)")
    parser.add_argument("--max-relative-step", action="append", type=optional(positive_float),
                        help="the relative-step cap to validate under (repeatable; 'none': no cap; default: the "
                             "run's own); results are then keyed 'METRIC, max_relative_step=VALUE'")
    parser.add_argument("--json", help="write {bundle: {metric: value}} here (read first: resumes)")
    args = parser.parse_args(argv)
    metrics = args.metric or ["final-loss", "held-out-loss"]
    caps = args.max_relative_step or [_RUNS_OWN]
    results = json.load(open(args.json)) if args.json and os.path.exists(args.json) else {}
    tasks = build_task(load_run_config(args.run))
    for bundle in args.bundle:
        for metric in metrics:
            for cap in caps:
                key = metric if cap == _RUNS_OWN else f"{metric}, max_relative_step={cap}"
                if key in results.get(bundle, {}):
                    continue
                start = time.time()
                value = validate(args.run, bundle, metric, tasks, cap)
                results.setdefault(bundle, {})[key] = value
                print(f"{bundle}  {key}: {value:.4f}  ({time.time() - start:.0f} s)", flush=True)
                if args.json:
                    with open(args.json + ".tmp", "w") as f:
                        json.dump(results, f, indent=1)
                    os.replace(args.json + ".tmp", args.json)
    for bundle, values in results.items():
        print(f"{bundle}: " + ", ".join(f"{m} {v:.4f}" for m, v in values.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
