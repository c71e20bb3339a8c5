"""Two `task_adaptivity.py --effective-step` JSONs side by side (same seed, same tasks), with tuned Adam.

    python benchmarks/compare_effective_step.py benchmarks/effective_step.json benchmarks/effective_step_run10.json

Per task of both: each run's effective step and final training loss, their loss ratio (second / first),
and tuned Adam's mean final loss over the suite's evaluation seeds (from the suite's committed result,
`task_adaptivity.SUITE_RESULTS`); then, per JSON, the effective step's spread and its rank correlation
with tuned Adam's rate over these tasks.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("first")
    parser.add_argument("second")
    args = parser.parse_args(argv)

    sys.path.insert(0, HERE)
    from task_adaptivity import SUITE_RESULTS

    from hyperadam_keras.lab.eval.adaptivity import spearman

    runs = []
    for path in (args.first, args.second):
        with open(path) as f:
            runs.append({(t["suite"], t["task"]): t for t in json.load(f)["tasks"]})
    keys = [k for k in runs[0] if k in runs[1] and "final_loss" in runs[0][k] and "final_loss" in runs[1][k]]
    adam = {}
    for suite in {s for s, _ in keys}:
        with open(os.path.join(os.path.dirname(HERE), SUITE_RESULTS[suite])) as f:
            for task in json.load(f)["tasks"]:
                if "Adam" in task["results"]:
                    adam[(suite, task["name"])] = task["results"]["Adam"]["final_loss"]["mean"]
    print("| task | step, first | loss, first | step, second | loss, second | second / first | tuned Adam's loss |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for key in keys:
        a, b = runs[0][key], runs[1][key]
        print(f"| {key[1]} | {a['rms']:.3g} | {a['final_loss']:.4g} | {b['rms']:.3g} | {b['final_loss']:.4g} | "
              f"{b['final_loss'] / a['final_loss']:.3g} | {adam.get(key, float('nan')):.4g} |")
    for label, run in (("first", runs[0]), ("second", runs[1])):
        steps = [run[k]["rms"] for k in keys]
        rates = [run[k]["tuned_adam_rate"] for k in keys]
        below = sum(run[k]["final_loss"] <= adam.get(k, float("-inf")) for k in keys)
        print(f"{label}: effective step {min(steps):.3g}-{max(steps):.3g} (max/min {max(steps) / min(steps):.2f}), "
              f"Spearman with tuned Adam's rate {spearman(steps, rates):.2f}; final loss at most tuned Adam's "
              f"mean on {below} of {len(keys)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
