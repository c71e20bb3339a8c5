"""How much of a meta-validation figure is noise: the validation of a bundle, per task, and of copies of it
whose meta-weights carry small random offsets (a candidate's differences from its neighbours are what a
meta-step changes).

Runs `MetaTrainer.validation_losses` with a meta-training run's recorded configuration (family, horizon,
step, guards, validation seeds and metric) on the bundle and on `--draws` copies per `--scale`, each weight
w + scale · N(0, 1) (a meta-step of Adam moves each weight by about its learning rate). Prints each task's
loss and the aggregate, also with each task's loss floored (`--floors`, as `meta-train --validation-loss-floor`
would count it); writes them as JSON. Found with it (meta_training/LOG.md, run18): run16's epoch-1 bundle validates
at 0.0293 and at 0.0292 and 0.0294 under offsets of 1e-4, at 0.0461 and 0.0347 under 1e-3, and most of that
jump is one fitted MLP ending at 4.8e-3 instead of 3.4e-7; floored at 1e-3 the figures are 0.0550, 0.0547,
0.0553, 0.0610 and 0.0595.

    python benchmarks/validation_noise.py --run meta_training/run18 --bundle meta_training/run16/epoch1_bundle \\
        --scales 1e-4 1e-3 --draws 2 --json benchmarks/validation_noise_run16.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
os.environ.setdefault("HYPERADAM_KERAS_QUIET_START", "1")

import hyperadam_keras  # noqa: E402,F401  (quiet start first)
import numpy as np  # noqa: E402

from hyperadam_keras import load_meta_params  # noqa: E402
from hyperadam_keras.lab.meta.config import load_run_config  # noqa: E402
from hyperadam_keras.lab.meta.families import build_task, validation_task_seeds  # noqa: E402
from hyperadam_keras.lab.meta.trainer import MetaTrainer, aggregate_validation  # noqa: E402
from hyperadam_keras.meta_params import NAMES, MetaParams  # noqa: E402


def perturbed(params: MetaParams, scale: float, seed: int) -> MetaParams:
    """`params` with N(0, scale²) added to every meta-weight (a fixed seed per draw)."""
    rng = np.random.default_rng(seed)
    arrays = {name: np.asarray(w, np.float32) + np.float32(scale) * rng.standard_normal(np.shape(w)).astype(np.float32)
              for name, w in zip(NAMES, params.weights())}
    return MetaParams.from_arrays(arrays, source=f"perturbed {scale:g} #{seed}",
                                  feature_normalization=params.feature_normalization)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", required=True, help="a meta-training run directory (its config.json is used)")
    parser.add_argument("--bundle", required=True, help="the bundle to validate and perturb")
    parser.add_argument("--scales", type=float, nargs="+", default=[1e-4, 1e-3], help="std of the offsets")
    parser.add_argument("--draws", type=int, default=2, help="perturbed copies per scale")
    parser.add_argument("--floors", type=float, nargs="*", default=[1e-4, 1e-3, 1e-2],
                        help="also print the aggregate with each task's figure floored at these values")
    parser.add_argument("--json", help="write {label: {tasks, per_task, aggregate}} here (read first: resumes)")
    args = parser.parse_args(argv)
    config = load_run_config(args.run)
    tasks = build_task(config)
    tasks = tasks if isinstance(tasks, list) else [tasks]
    seeds = validation_task_seeds(config)
    names = [tasks[i % len(tasks)].name for i in range(len(seeds))]
    base = load_meta_params(args.bundle)
    results = json.load(open(args.json)) if args.json and os.path.exists(args.json) else {}
    candidates = [("bundle", base)] + [(f"scale {scale:g} draw {draw}", perturbed(base, scale, draw))
                                       for scale in args.scales for draw in range(args.draws)]
    trainer = MetaTrainer(config, tasks, init=base)  # one trainer: its compiled unrolls read its variables
    for label, params in candidates:
        if label not in results:
            for variable, value in zip(trainer.meta, params.weights()):
                variable.assign(value)
            per_task = trainer.validation_losses(seeds)
            results[label] = {"per_task": per_task, "aggregate": aggregate_validation(per_task, config.validation_metric)}
            if args.json:
                with open(args.json, "w") as f:
                    json.dump({"run": args.run, "bundle": args.bundle, "metric": config.validation_metric,
                               "tasks": names, **results}, f, indent=1)
        floored = "  ".join(f"floor {floor:g}: {aggregate_validation(results[label]['per_task'], config.validation_metric, floor):.4f}"
                            for floor in args.floors)
        print(f"{label:22s} {config.validation_metric} {results[label]['aggregate']:.4f}  {floored}", flush=True)
    labels = [label for label, _ in candidates]
    print("\n| task | " + " | ".join(labels) + " |\n|---|" + "---|" * len(labels))
    for i, name in enumerate(names):
        print(f"| {name} | " + " | ".join(f"{results[label]['per_task'][i]:.3g}" for label in labels) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
