"""Re-trains runs recorded in a suite's result JSON with the code as it is now and compares their final
losses with the recorded ones, bit for bit.

Use it before re-recording the training code's hash without a version bump
(`tests/test_evaluate_cache.py`): a refactor that claims not to change any run must reproduce the
recorded numbers exactly, for HyperAdam and for the baselines at their chosen rates.

    python benchmarks/reproduce_runs.py benchmarks/paper-table1/paper-table1.json --seeds 0 1 2
    python benchmarks/reproduce_runs.py benchmarks/paper-lstm/paper-lstm.json --task lstm-2-layer --optimizer HyperAdam Adam
    python benchmarks/reproduce_runs.py runs/eval-run12/paper-table1/paper-table1.json   # a --bundle run: that bundle

Exit code 0 when every compared run is identical, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import sys

from hyperadam_keras.lab.eval import baselines, suites
from hyperadam_keras.lab.eval.trainer import Trainer
from hyperadam_keras.bundle import resolve_meta_params


def optimizer_spec(label: str, recorded: dict, task_spec: suites.TaskSpec):
    """The spec the suite ran under `label`: HyperAdam with the recorded bundle (the shipped default, or the
    bundle directory the JSON names, if its arrays still have the recorded SHA-256), or a baseline on its grid."""
    if recorded["optimizer"].get("kind") == "hyperadam":
        info = recorded["optimizer"]  # options a JSON written before they existed lacks were None then
        bundle = None if info.get("bundle_is_default") else info.get("bundle")
        if resolve_meta_params(bundle).fingerprint() != info.get("sha256"):
            raise SystemExit(f"{label}: the runs were made with the bundle of sha256 {info.get('sha256')}, which "
                             f"{'the shipped default' if bundle is None else bundle} no longer is")
        return baselines.hyperadam_spec(bundle, decay_after=info.get("decay_after"),
                                        warmup_steps=info.get("warmup_steps"),
                                        max_relative_step=info.get("max_relative_step"),
                                        candidate_clip=info.get("candidate_clip"))
    return baselines.baseline_spec(label, task_spec.grids.get(label))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("suite_json", help="a result JSON written by `hyperadam-keras evaluate`")
    parser.add_argument("--task", nargs="*", help="task names (default: all of the JSON)")
    parser.add_argument("--optimizer", nargs="*", help="optimizer labels (default: all of the JSON)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="evaluation seeds to re-train")
    args = parser.parse_args(argv)

    results = json.loads(open(args.suite_json, encoding="utf-8").read())
    suite = suites.get_suite(results["suite"])
    settings = results["settings"]
    specs = {spec.name: spec for spec in suite.tasks}
    mismatches = compared = 0
    for task_result in results["tasks"]:
        if args.task and task_result["name"] not in args.task:
            continue
        task_spec = specs[task_result["name"]]
        task = suites.build_task(task_spec)
        for label, recorded in task_result["results"].items():
            if args.optimizer and label not in args.optimizer:
                continue
            spec = optimizer_spec(label, recorded, task_spec)
            runs = {run["seed"]: run for run in recorded["runs"]}
            trainer = Trainer(task, spec.factory(recorded["learning_rate"]), chunk_size=settings["chunk_size"],
                              jit_compile=settings["jit_compile"] and task_spec.xla)
            for seed in args.seeds:
                run = trainer.run(seed, task_result["steps"], recorded["learning_rate"])
                same = run.final_loss == runs[seed]["final_loss"]
                compared += 1
                mismatches += not same
                print(f"{task_result['name']:24s} {label:14s} lr {recorded['learning_rate']:<8g} seed {seed:3d} "
                      f"recorded {runs[seed]['final_loss']!r:24} now {run.final_loss!r:24} "
                      f"{'identical' if same else 'DIFFERENT'}", flush=True)
    print(f"{compared - mismatches} of {compared} runs identical")
    return 1 if mismatches or not compared else 0


if __name__ == "__main__":
    sys.exit(main())
