"""Held-out accuracy of HyperAdam against a baseline, paired by seed, from suite JSONs: is a gap noise?

Issue 14 asks HyperAdam's held-out accuracy to be within 0.5 points of tuned Adam's on every
classification task, a difference of two 5-seed means whose seed-to-seed spread is 1-2 points on the
small held-out splits. Both optimizers of a seed start from the same weights and batches, so the
per-seed differences are paired: this prints, per task, their mean, their standard error (sd / √n) and
the mean over the standard error, so that a gap can be read against its noise.

    python benchmarks/paired_accuracy.py benchmarks/run12-candidate/generalization/generalization.json
    python benchmarks/paired_accuracy.py A.json B.json --baseline AdamW
"""

from __future__ import annotations

import argparse
import json
import math
import sys


def paired_differences(suite: dict, baseline: str) -> list[tuple[str, str, list[float]]]:
    """(task, HyperAdam label, per-seed accuracy differences in points) for each task with a held-out split."""
    rows = []
    for task in suite["tasks"]:
        results = task["results"]
        if baseline not in results:
            continue
        base = {run["seed"]: (run.get("validation") or {}).get("accuracy") for run in results[baseline]["runs"]}
        for label, result in results.items():
            if not label.startswith("HyperAdam"):
                continue
            diffs = [100.0 * (run["validation"]["accuracy"] - base[run["seed"]]) for run in result["runs"]
                     if (run.get("validation") or {}).get("accuracy") is not None
                     and base.get(run["seed"]) is not None]
            if diffs:
                rows.append((task["name"], label, diffs))
    return rows


def describe(diffs: list[float]) -> tuple[float, float]:
    """(mean, standard error of the mean); the error is nan for one seed."""
    n = len(diffs)
    mean = sum(diffs) / n
    if n < 2:
        return mean, math.nan
    sd = math.sqrt(sum((d - mean) ** 2 for d in diffs) / (n - 1))
    return mean, sd / math.sqrt(n)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("json", nargs="+", help="suite JSONs written by `hyperadam-keras evaluate`")
    parser.add_argument("--baseline", default="Adam", help="the baseline's label in the JSON (default Adam)")
    args = parser.parse_args(argv)
    for path in args.json:
        with open(path) as f:
            suite = json.load(f)
        print(f"\n{path}: held-out accuracy, HyperAdam minus {args.baseline}, paired by seed")
        print(f"{'task':24s} {'optimizer':18s} {'n':>2s} {'mean':>7s} {'s.e.':>6s} {'mean/s.e.':>9s}  per seed (points)")
        for name, label, diffs in paired_differences(suite, args.baseline):
            mean, error = describe(diffs)
            print(f"{name:24s} {label:18s} {len(diffs):2d} {mean:+7.2f} {error:6.2f} "
                  f"{mean / error if error else math.nan:+9.2f}  {' '.join(f'{d:+.1f}' for d in diffs)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
