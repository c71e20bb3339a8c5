"""HyperAdam (the shipped bundle, or --bundle) at other step sizes, or with a linear warm-up, on one task of a suite.

The default step (0.005, an effective 5 × 0.005 with the shipped bundle's candidate weights) is what the
suites measure; this shows what a user-chosen smaller or larger step, a warm-up to it, or another ε does, seed by
seed (e.g. on CNN-2, where the default fails: BENCHMARKS.md `paper-cnn`).

    python benchmarks/hyperadam_step_size.py --suite paper-cnn --task cnn-2 --lr 0.005 0.002 --seeds 1 2
    python benchmarks/hyperadam_step_size.py --suite paper-cnn --task cnn-2 --warmup-steps 10 --seeds 0 1
    python benchmarks/hyperadam_step_size.py --suite paper-cnn --task cnn-2 --lr 0.005 --epsilon 1e-7
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


class LinearWarmup(keras.optimizers.schedules.LearningRateSchedule):
    """α · min(1, (t + 1) / W) at step t: α / W on the first step, α from step W - 1 on."""

    def __init__(self, learning_rate: float, warmup_steps: int):
        self.learning_rate, self.warmup_steps = float(learning_rate), int(warmup_steps)

    def __call__(self, step):
        fraction = (keras.ops.cast(step, "float32") + 1.0) / float(self.warmup_steps)
        return self.learning_rate * keras.ops.minimum(1.0, fraction)

    def get_config(self) -> dict:
        return {"learning_rate": self.learning_rate, "warmup_steps": self.warmup_steps}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suite", default="paper-cnn")
    parser.add_argument("--task", default="cnn-2", help="a task name of the suite")
    parser.add_argument("--lr", type=float, nargs="+", default=[0.005, 0.002], help="HyperAdam step sizes")
    parser.add_argument("--warmup-steps", type=int, default=0,
                        help="rise linearly to each step size over this many steps (default 0: constant)")
    parser.add_argument("--epsilon", type=float, default=None, help="HyperAdam's ε (default: the optimizer's)")
    parser.add_argument("--bundle", default=None, help="meta-parameter bundle (default: the shipped one)")
    parser.add_argument("--steps", type=int, default=None, help="training steps (default: the task's)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2], help="evaluation seeds")
    parser.add_argument("--json", default=None, help="write the numbers here")
    args = parser.parse_args()

    spec = next(t for t in get_suite(args.suite).tasks if t.name == args.task)
    task, steps = build_task(spec), args.steps or spec.num_steps(False)
    options = {"meta_params": args.bundle} if args.bundle else {}
    if args.epsilon is not None:
        options["epsilon"] = args.epsilon
    rows = []
    for lr in args.lr:
        rate = LinearWarmup(lr, args.warmup_steps) if args.warmup_steps else lr
        trainer = Trainer(task, HyperAdam(learning_rate=rate, **options), jit_compile=spec.xla)
        losses = []
        for seed in args.seeds:
            run = trainer.run(seed, steps, learning_rate=None)  # the optimizer's own rate or warm-up
            losses.append(run.final_loss)
            rows.append({"learning_rate": lr, "warmup_steps": args.warmup_steps, "epsilon": trainer.optimizer.epsilon,
                         "seed": seed, "final_loss": run.final_loss, "test": run.test,
                         "seconds": round(run.seconds, 1)})
            print(f"{args.task} lr {lr:g} seed {seed}: final loss {run.final_loss:.4g}, test {run.test}", flush=True)
        print(f"{args.task} lr {lr:g}, warm-up {args.warmup_steps}, ε {trainer.optimizer.epsilon:g}, {steps} steps: "
              f"mean final loss {np.mean(losses):.4f} ± {np.std(losses, ddof=1) if len(losses) > 1 else 0.0:.4f} over "
              f"{len(losses)} seeds", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"suite": args.suite, "task": args.task, "steps": steps,
                       "bundle": args.bundle or "shipped default", "runs": rows}, f, indent=1)


if __name__ == "__main__":
    main()
