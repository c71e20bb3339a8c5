"""A screen, not a result: a candidate bundle's runs of the `generalization` suite against a recorded run of
the suite's tuned baselines, for deciding whether a candidate is worth `evaluate_candidate.sh`'s hours.

`hyperadam-keras evaluate --suite generalization` tunes and trains Adam and AdamW in the same run (hours
on two cores, and `--baselines-from` reuses them only where their runs reproduce bit for bit, which fails
across CPU models). This trains HyperAdam alone, as the suite trains it (`FitRuns`, the suite's builders,
steps and seeds; the same initial weights and batches per seed), and compares its mean final loss and
held-out accuracy with tuned Adam's entry of a recorded suite JSON, which may come from another machine:
numbers to choose what to measure next, never to report. Resumable: runs already in --json are kept.

    python benchmarks/screen_generalization.py --bundle meta_training/run15/best_bundle \\
        --max-relative-step 0.1 --json benchmarks/run15-candidate/screen_generalization_cap0.1.json
    python benchmarks/screen_generalization.py --bundle meta_training/run16/epoch1_bundle --max-relative-step none \
        --candidate-clip 5 --warmup-steps 20 --json runs/screen-run16-clip5-warmup20.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
os.environ.setdefault("HYPERADAM_KERAS_QUIET_START", "1")

import hyperadam_keras  # noqa: E402,F401  (quiet start first)
import numpy as np  # noqa: E402

from hyperadam_keras.cli.arg_types import optional, positive_float, positive_int  # noqa: E402
from hyperadam_keras.defaults import DEFAULT_MAX_RELATIVE_STEP  # noqa: E402
from hyperadam_keras.lab.eval.baselines import hyperadam_spec  # noqa: E402
from hyperadam_keras.lab.eval.compare import FitRuns  # noqa: E402
from hyperadam_keras.lab.eval.compare_builder import load_builder  # noqa: E402
from hyperadam_keras.lab.eval.suites import get_suite  # noqa: E402

REFERENCE = os.path.join(HERE, "generalization", "generalization.json")


def reference_adam(path: str) -> dict:
    """{task: (tuned Adam's mean final loss, its mean held-out accuracy or None)} of a suite JSON."""
    with open(path, encoding="utf-8") as f:
        suite = json.load(f)
    out = {}
    for task in suite["tasks"]:
        adam = task["results"]["Adam"]
        accuracy = (adam.get("test") or {}).get("accuracy") or {}
        out[task["name"]] = (adam["final_loss"]["mean"], accuracy.get("mean"))
    return out


def summary(runs: dict, reference: dict) -> str:
    lines = ["| task | seeds | HyperAdam final loss | recorded tuned Adam | ratio | held-out accuracy, points | "
             "diverged |", "|---|---:|---:|---:|---:|---:|---:|"]
    ratios = []
    for name, seeds in runs.items():
        finals = [r["final_loss"] for r in seeds.values()]
        mean = float(np.mean(finals)) if finals and all(np.isfinite(finals)) else float("nan")
        adam, adam_accuracy = reference.get(name, (float("nan"), None))
        ratio = mean / adam if adam and np.isfinite(mean) else float("nan")
        ratios.append(ratio)
        accuracies = [r["accuracy"] for r in seeds.values() if r["accuracy"] is not None]
        points = (f"{100 * (np.mean(accuracies) - adam_accuracy):+.1f}"
                  if accuracies and adam_accuracy is not None else "–")
        lines.append(f"| {name} | {len(seeds)} | {mean:.4g} | {adam:.4g} | {ratio:.2f} | {points} | "
                     f"{sum(r['diverged'] for r in seeds.values())} |")
    finite = [r for r in ratios if np.isfinite(r)]
    if finite:
        lines.append(f"\nAt most the recorded tuned Adam on {sum(r <= 1 for r in finite)} of {len(finite)} tasks; "
                     f"geometric mean of the ratios {math.exp(np.mean(np.log(finite))):.3f}, worst {max(finite):.2f}.")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bundle", required=True, help="the candidate's bundle directory")
    parser.add_argument("--max-relative-step", type=optional(positive_float), default=DEFAULT_MAX_RELATIVE_STEP,
                        help="HyperAdam's relative-step cap, or 'none' (default 0.03, the optimizer's)")
    parser.add_argument("--candidate-clip", type=optional(positive_float), default=None,
                        help="HyperAdam's clip of each candidate update, or 'none' (default: none)")
    parser.add_argument("--warmup-steps", type=positive_int, default=None,
                        help="HyperAdam's linear warm-up over this many updates (default: none, the optimizer's)")
    parser.add_argument("--learning-rate", type=float, default=0.001, help="HyperAdam's α (default 0.001)")
    parser.add_argument("--seeds", type=int, default=5, help="seeds 0..N-1 (default 5, the suite's)")
    parser.add_argument("--task", action="append", default=None, help="only this task (repeatable)")
    parser.add_argument("--reference", default=REFERENCE, help="a recorded generalization suite JSON")
    parser.add_argument("--json", required=True, help="the runs (read first: resumes)")
    args = parser.parse_args(argv)
    suite = get_suite("generalization")
    tasks = [t for t in suite.tasks if args.task is None or t.name in args.task]
    if args.task and len(tasks) != len(set(args.task)):
        parser.error(f"unknown task in {args.task}; known: {', '.join(t.name for t in suite.tasks)}")
    settings = {"bundle": args.bundle, "max_relative_step": args.max_relative_step,
                "candidate_clip": args.candidate_clip, "learning_rate": args.learning_rate}
    if args.warmup_steps is not None:  # absent otherwise: screens recorded before the option still resume
        settings["warmup_steps"] = args.warmup_steps
    results = json.load(open(args.json)) if os.path.exists(args.json) else {"settings": settings, "runs": {}}
    if results["settings"] != settings:
        parser.error(f"{args.json} holds runs of {results['settings']}, not {settings}")
    spec = hyperadam_spec(args.bundle, learning_rate=args.learning_rate, max_relative_step=args.max_relative_step,
                          candidate_clip=args.candidate_clip, warmup_steps=args.warmup_steps)
    for task in tasks:
        runs = FitRuns(load_builder(task.kwargs["builder"]), (), None)
        done = results["runs"].setdefault(task.name, {})
        for seed in range(args.seeds):
            if str(seed) in done:
                continue
            record = runs(spec, seed, args.learning_rate)
            done[str(seed)] = {"final_loss": record["final_loss"], "initial_loss": record["initial_loss"],
                               "diverged": record["diverged"],
                               "accuracy": (record["validation"] or {}).get("accuracy")}
            print(f"{task.name} seed {seed}: {done[str(seed)]}", flush=True)
            os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
            with open(args.json + ".tmp", "w") as f:
                json.dump(results, f, indent=1)
            os.replace(args.json + ".tmp", args.json)
    print(summary(results["runs"], reference_adam(args.reference)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
