"""HyperAdam with a cosine-decayed step on the `paper-long` tasks (10,000 steps), next to the suite's numbers.

The shipped bundle keeps a constant effective step, the 100-step optimum it was meta-trained for, and
loses to tuned Adam at 10,000 steps (BENCHMARKS.md, `paper-long`). This measures the obvious user-side
remedy: `HyperAdam(learning_rate=keras.optimizers.schedules.CosineDecay(0.005, steps))`, same tasks, same
seeds and minibatches as the suite. The constant-step HyperAdam and tuned Adam columns are read from the
suite's JSON (final losses are deterministic per seed, so they are the same runs' numbers).

    python benchmarks/long_schedule.py --seeds 2 --json benchmarks/paper-long/long_schedule.json
"""

from __future__ import annotations

import argparse
import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from hyperadam_keras import HyperAdam  # noqa: E402
from hyperadam_keras.evaluate import Trainer  # noqa: E402
from hyperadam_keras.suites import build_task, get_suite  # noqa: E402


def cosine_run(task, seed: int, steps: int, initial_lr: float) -> tuple[float, float]:
    """Trains one seed with a cosine-decayed HyperAdam step; returns (final full loss, seconds)."""
    schedule = keras.optimizers.schedules.CosineDecay(initial_lr, decay_steps=steps)
    run = Trainer(task, HyperAdam(learning_rate=schedule)).run(seed, steps, learning_rate=None)
    return run.final_loss, run.seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=2, help="evaluation seeds 0..N-1 (default 2)")
    parser.add_argument("--initial-lr", type=float, default=0.005, help="HyperAdam's step before decay")
    parser.add_argument("--suite-json", default="benchmarks/paper-long/paper-long.json",
                        help="the paper-long result to compare with (same seeds)")
    parser.add_argument("--json", default=None, help="write the numbers here")
    args = parser.parse_args()

    suite_results = json.load(open(args.suite_json))
    out = {"initial_lr": args.initial_lr, "seeds": list(range(args.seeds)), "tasks": {}}
    for spec in get_suite("paper-long").tasks:
        task, steps = build_task(spec), spec.num_steps(False)
        cosine = [cosine_run(task, seed, steps, args.initial_lr) for seed in range(args.seeds)]
        row = {"HyperAdam, cosine decay": [loss for loss, _ in cosine],
               "seconds": [round(s, 1) for _, s in cosine]}
        measured = next(t for t in suite_results["tasks"] if t["name"] == spec.name)["results"]
        for label, result in measured.items():
            by_seed = {r["seed"]: r["final_loss"] for r in result["runs"]}
            row[f"{label} (lr {result['learning_rate']:g}, suite)"] = [by_seed.get(s) for s in range(args.seeds)]
        out["tasks"][spec.name] = row
        print(f"{spec.name} ({steps} steps), final loss per seed and mean:")
        for label, values in row.items():
            if label != "seconds":
                finite = [v for v in values if v is not None]
                print(f"  {label:40s} {' '.join(f'{v:.4f}' for v in finite)}   mean {np.mean(finite):.4f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
