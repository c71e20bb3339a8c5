"""HyperAdam (the shipped bundle) at other step sizes on one task of a suite, seed by seed.

The default step (0.005, an effective 5 × 0.005 with the shipped bundle's candidate weights) is what the
suites measure; this shows what a user-chosen smaller or larger step does on a task where the default
fails (e.g. CNN-2, BENCHMARKS.md `paper-cnn`).

    python benchmarks/hyperadam_step_size.py --suite paper-cnn --task cnn-2 --lr 0.005 0.002 --seeds 1 2
"""

from __future__ import annotations

import argparse
import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from hyperadam_keras import HyperAdam  # noqa: E402
from hyperadam_keras.evaluate import Trainer  # noqa: E402
from hyperadam_keras.suites import build_task, get_suite  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suite", default="paper-cnn")
    parser.add_argument("--task", default="cnn-2", help="a task name of the suite")
    parser.add_argument("--lr", type=float, nargs="+", default=[0.005, 0.002], help="HyperAdam step sizes")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2], help="evaluation seeds")
    parser.add_argument("--json", default=None, help="write the numbers here")
    args = parser.parse_args()

    spec = next(t for t in get_suite(args.suite).tasks if t.name == args.task)
    task, steps = build_task(spec), spec.num_steps(False)
    trainer = Trainer(task, HyperAdam(), jit_compile=spec.xla)
    rows = []
    for lr in args.lr:
        for seed in args.seeds:
            run = trainer.run(seed, steps, lr)
            rows.append({"learning_rate": lr, "seed": seed, "final_loss": run.final_loss, "test": run.test,
                         "seconds": round(run.seconds, 1)})
            print(f"{args.task} lr {lr:g} seed {seed}: final loss {run.final_loss:.4g}, test {run.test}", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"suite": args.suite, "task": args.task, "steps": steps, "runs": rows}, f, indent=1)


if __name__ == "__main__":
    main()
