"""What a fit-suite run cache holds so far: HyperAdam's finished runs per task beside a result JSON's baselines.

A `generalization` evaluation takes an hour or more on two cores; when a session ends before it does, its
cache (`evaluate --cache-dir`) still holds every finished run. This prints, per task of the suite, the
HyperAdam runs found there for one bundle (seeds, mean final training loss, held-out accuracy, divergences)
beside the baselines' 5-seed means from an earlier result JSON, and the ratio to tuned Adam. It reads the
cache, trains nothing; rerunning `evaluate` with the same `--cache-dir` completes the suite.

    python benchmarks/fit_cache_summary.py runs/fit-cache --bundle meta_training/run10/best_bundle \\
        --baselines benchmarks/generalization/generalization.json
"""

from __future__ import annotations

import argparse
import glob
import json
import math
import os
import statistics

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def bundle_sha(path: str | None) -> str:
    from hyperadam_keras import default_bundle_path, load_meta_params

    return load_meta_params(path or default_bundle_path()).fingerprint()


def hyperadam_runs(cache_dir: str, sha: str) -> dict[str, dict[int, dict]]:
    """builder -> seed -> the cached record of HyperAdam (the bundle `sha`) at its default step."""
    found: dict[str, dict[int, dict]] = {}
    for path in glob.glob(os.path.join(cache_dir, "*.json")):
        with open(path, encoding="utf-8") as f:
            entry = json.load(f)
        identity = entry.get("identity", {})
        optimizer = identity.get("optimizer", {})
        if not optimizer.get("class", "").endswith("HyperAdam"):
            continue
        if optimizer.get("config", {}).get("meta_params", {}).get("sha256") != sha:
            continue
        found.setdefault(identity["builder"], {})[identity["seed"]] = entry["record"]
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("cache_dir", help="the run cache (evaluate --cache-dir)")
    parser.add_argument("--bundle", default=None, help="HyperAdam's bundle (default: the shipped one)")
    parser.add_argument("--baselines", required=True, help="a result JSON of the suite (its baselines' entries)")
    args = parser.parse_args(argv)

    runs = hyperadam_runs(args.cache_dir, bundle_sha(args.bundle))
    with open(args.baselines, encoding="utf-8") as f:
        earlier = json.load(f)
    print("| task | seeds | HyperAdam final loss | tuned Adam | ratio | HyperAdam accuracy | Adam accuracy | "
          "diverged |")
    print("|---|---|---|---|---|---|---|---|")
    ratios = []
    for task in earlier["tasks"]:
        records = runs.get(task["kwargs"]["builder"], {})
        adam = task["results"]["Adam"]
        if not records:
            print(f"| {task['name']} | none | – | {adam['final_loss']['mean']:.3g} | – | – | – | – |")
            continue
        losses = [r["final_loss"] for r in records.values()]
        finite = [x for x in losses if math.isfinite(x)]
        mean = statistics.fmean(finite) if finite else math.nan
        ratio = mean / adam["final_loss"]["mean"]
        ratios.append(ratio)
        accuracies = [r["validation"]["accuracy"] for r in records.values() if "accuracy" in r.get("validation", {})]
        adam_accuracy = (adam.get("test") or {}).get("accuracy", {}).get("mean")
        ours = f"{statistics.fmean(accuracies):.4f}" if accuracies else "–"
        theirs = f"{adam_accuracy:.4f}" if adam_accuracy is not None else "–"
        diverged = sum(bool(r["diverged"]) or not r["finite"] for r in records.values())
        print(f"| {task['name']} | {','.join(str(s) for s in sorted(records))} | {mean:.3g} | "
              f"{adam['final_loss']['mean']:.3g} | {ratio:.2f} | {ours} | {theirs} | {diverged} |")
    if ratios:
        wins = sum(r <= 1 for r in ratios)
        print(f"\nTasks with runs: {len(ratios)}; at most tuned Adam's mean on {wins}; geometric mean of the ratios "
              f"{math.exp(statistics.fmean(math.log(r) for r in ratios)):.2f}; largest {max(ratios):.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
