"""The first minibatch losses of a suite task, seed by seed: HyperAdam's default beside tuned Adam.

Shows what happens in the first few updates, where a too-large step does its damage: on CNN-2 the first
HyperAdam update (an effective 5.2 × 0.005 on every coordinate) throws the minibatch loss from ~2.6 to
8-52 (median 16) on every seed, tuned Adam's to 3-11; the seeds that later train are those that recover.
Both optimizers are run here, in the same process, on the suite's own runs (same initial weights and
batches as `hyperadam-keras evaluate`: `evaluate.Trainer`), Adam at the rate the suite's tuning chose
(read from --compare-json, or --adam-lr). With --compare-json the suite's final loss of each seed is shown beside it.

    python benchmarks/first_steps.py --suite paper-cnn --task cnn-2 --steps 10 --seeds 0 1 2 \
        --compare-json benchmarks/paper-cnn/paper-cnn.json --json benchmarks/paper-cnn/first_steps.json
"""

from __future__ import annotations

import argparse
import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from hyperadam_keras import HyperAdam  # noqa: E402
from hyperadam_keras.lab.eval.evaluate import Trainer  # noqa: E402
from hyperadam_keras.lab.eval.suites import build_task, get_suite  # noqa: E402


def suite_result(compared: dict, task: str, label: str) -> dict | None:
    """The `label` optimizer's result on `task` in a suite JSON (`hyperadam-keras evaluate`), or None."""
    for entry in compared["tasks"]:
        if entry["name"] == task:
            return entry["results"].get(label)
    raise ValueError(f"task {task!r} is not in the comparison JSON")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suite", default="paper-cnn")
    parser.add_argument("--task", default="cnn-2", help="a task name of the suite")
    parser.add_argument("--steps", type=int, default=10, help="updates to record (default 10)")
    parser.add_argument("--seeds", type=int, nargs="+", default=list(range(20)), help="evaluation seeds")
    parser.add_argument("--compare-json", default=None,
                        help="the suite's JSON: Adam's tuned rate and each seed's final loss come from it")
    parser.add_argument("--adam-lr", type=float, default=None, help="Adam's rate (default: the suite's tuned one)")
    parser.add_argument("--json", default=None, help="write the numbers here")
    args = parser.parse_args()

    suite = get_suite(args.suite)
    spec = next((t for t in suite.tasks if t.name == args.task), None)
    if spec is None:
        parser.error(f"unknown task {args.task!r}; {args.suite} has: {', '.join(t.name for t in suite.tasks)}")
    compared = json.load(open(args.compare_json)) if args.compare_json else {}
    final_losses: dict[str, dict[int, float]] = {}
    adam_lr = args.adam_lr
    for label in ("HyperAdam", "Adam") if compared else ():
        result = suite_result(compared, spec.name, label)
        if result is not None:
            final_losses[label] = {run["seed"]: run["final_loss"] for run in result["runs"]}
            if label == "Adam" and adam_lr is None:
                adam_lr = result["learning_rate"]
    if adam_lr is None:
        parser.error("give --adam-lr, or --compare-json with a tuned Adam on this task")

    task = build_task(spec)
    optimizers = {"HyperAdam": (HyperAdam(), None), "Adam": (keras.optimizers.Adam(), adam_lr)}
    rows = []
    for label, (optimizer, rate) in optimizers.items():
        trainer = Trainer(task, optimizer, chunk_size=args.steps, jit_compile=spec.xla)
        for seed in args.seeds:
            trainer.reset(seed, rate)
            losses = [float(x) for x in trainer.train(seed, 0, args.steps)]
            final = final_losses.get(label, {}).get(seed)
            rows.append({"optimizer": label, "learning_rate": rate, "seed": seed, "minibatch_losses": losses,
                         "suite_final_loss": final})
            shown = " ".join(f"{x:6.2f}" for x in losses)
            print(f"{label:9s} seed {seed:2d}: {shown}" + ("" if final is None else f"   suite final {final:.3g}"),
                  flush=True)
    for label in optimizers:
        peaks = [max(r["minibatch_losses"][1:]) for r in rows if r["optimizer"] == label]
        firsts = [r["minibatch_losses"][0] for r in rows if r["optimizer"] == label]
        print(f"{label}: loss before the first update median {np.median(firsts):.2f}; highest loss after it "
              f"median {np.median(peaks):.2f} (min {min(peaks):.2f}, max {max(peaks):.2f}) over {len(peaks)} seeds")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"suite": args.suite, "task": spec.name, "steps": args.steps, "adam_lr": adam_lr,
                       "hyperadam_learning_rate": float(optimizers["HyperAdam"][0].learning_rate), "runs": rows}, f, indent=1)


if __name__ == "__main__":
    main()
