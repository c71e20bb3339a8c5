"""Running comparisons: every optimizer on one task (`evaluate_task`), and a whole suite (`run_suite`).

Protocol (the same for every suite):
- "final loss" = `task.full_loss` of the final weights (the paper's criterion); the loss curve is
  the per-step minibatch loss.
- HyperAdam runs at its defaults, untuned: step size `defaults.DEFAULT_LEARNING_RATE`, decaying as
  1/√t after `defaults.DEFAULT_DECAY_AFTER` steps (a run of at most that many steps is the
  constant-step run), each tensor's step capped at `defaults.DEFAULT_MAX_RELATIVE_STEP` of its scale.
- Each baseline is tuned on its grid on tuning seeds disjoint from the evaluation seeds (`tuning.py`).
- Evaluation seeds are 0..N-1; statistics are the mean and the sample standard deviation (ddof=1)
  over the seeds whose final loss is finite; non-finite seeds are counted separately.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import os
import time
from typing import Any, Callable, Sequence

from hyperadam_keras.lab._requires import require
from hyperadam_keras.lab.eval import suites as suites_module
from hyperadam_keras.lab.eval.baseline_reuse import BaselineReuse
from hyperadam_keras.lab.eval.baselines import OptimizerSpec, baseline_spec, hyperadam_spec
from hyperadam_keras.lab.eval.cache import RunCache, optimizer_identity, run_identity, run_key, task_identity
from hyperadam_keras.lab.eval.machine import machine_info
from hyperadam_keras.lab.eval.stats import summarize
from hyperadam_keras.lab.eval.trainer import ProgressCallback, RunResult, Trainer
from hyperadam_keras.lab.eval.tuning import TuningResult, tune_learning_rate, tuning_seeds

tqdm = require("tqdm.auto", feature="the evaluation progress bar").tqdm
BaselineReuser = Callable[[OptimizerSpec, Callable[[int, float], dict]], "dict | None"]


class _Runs:
    """`run(seed, lr)`: one run of `trainer`, taken from `cache` when it holds it (the progress bar
    still advances) and stored there when trained. `xla`: whether every run's loop was XLA-compiled."""

    def __init__(self, trainer: Trainer, spec: OptimizerSpec, steps: int, progress: ProgressCallback | None,
                 cache: RunCache | None, task_key: dict | None):
        self.trainer, self.steps, self.progress, self.cache = trainer, steps, progress, cache
        self.jit_compile = trainer.jit_compile  # as requested: the trainer's flag turns False on a fallback
        self.optimizer = optimizer_identity(spec, trainer.optimizer, steps) if cache is not None else None
        self.task_key = task_key
        self.xla = trainer.jit_compile

    def __call__(self, seed: int, learning_rate: float) -> RunResult:
        if self.cache is None:
            return self._train(seed, learning_rate)
        identity = run_identity(self.task_key, self.optimizer, learning_rate, seed, self.jit_compile,
                                self.trainer.chunk_size)
        key = run_key(identity)
        found = self.cache.load(key)
        if found is not None:
            run, xla = found
            self.xla = self.xla and xla
            if self.progress is not None:
                self.progress(self.steps)
            return run
        run = self._train(seed, learning_rate)
        self.cache.store(key, identity, run, self.trainer.jit_compile)
        return run

    def _train(self, seed: int, learning_rate: float) -> RunResult:
        run = self.trainer.run(seed, self.steps, learning_rate, self.progress)
        self.xla = self.xla and self.trainer.jit_compile
        return run


def count_steps(optimizers: Sequence[OptimizerSpec], steps: int, num_seeds: int, num_tune_seeds: int,
                max_extensions: int = 2) -> int:
    """Upper bound of the training steps `evaluate_task` runs (for a progress bar)."""
    total = 0
    for spec in optimizers:
        total += steps * num_seeds
        if spec.tuned:
            total += steps * num_tune_seeds * (len(spec.grid) + (max_extensions if len(spec.grid) > 1 else 0))
    return total


def evaluate_task(task: Any, optimizers: Sequence[OptimizerSpec], steps: int, seeds: Sequence[int],
                  tune_seeds: Sequence[int], chunk_size: int = 100, jit_compile: bool = True,
                  max_extensions: int = 2, progress: ProgressCallback | None = None,
                  keep_curves: bool = True, cache: RunCache | None = None,
                  task_key: dict | None = None, reuse: BaselineReuser | None = None) -> dict:
    """Tunes (where the spec has a grid) and evaluates every optimizer on one task.

    With a `cache`, every run (tuning and evaluation) is looked up before it is trained and stored
    after; `task_key` (`task_identity`) then stands for the task in the runs' keys.
    `reuse(spec, train_one)`: a baseline's earlier entry to take instead of tuning and training it, or
    None (see `baseline_reuse.BaselineReuse.entry`; `train_one(seed, lr)` trains one of its runs).
    Returns a JSON-ready dict: label -> {learning_rate, tuning, runs, final_loss stats, test stats}.
    """
    if cache is not None and task_key is None:
        raise ValueError("a run cache needs task_key (see task_identity): the task object has no identity")
    results: dict[str, dict] = {}
    for spec in optimizers:
        trainer = Trainer(task, spec.factory(spec.default_lr), chunk_size=chunk_size, jit_compile=jit_compile)
        run = _Runs(trainer, spec, steps, progress, cache, task_key)
        if reuse is not None and spec.info.get("kind") != "hyperadam":
            reused = reuse(spec, lambda seed, rate: {"final_loss": run(seed, rate).final_loss})
            if reused is not None:
                results[spec.label] = reused
                continue
        tuning = None
        lr = spec.default_lr
        if spec.tuned:
            tuning = tune_learning_rate(lambda seed, rate: run(seed, rate).final_loss,
                                        spec.grid, tune_seeds, max_extensions=max_extensions)
            lr = tuning.best_lr
        runs = [run(seed, lr) for seed in seeds]
        results[spec.label] = summarize_runs(runs, lr, tuning, keep_curves=keep_curves)
        results[spec.label]["optimizer"] = {"label": spec.label, "default_lr": spec.default_lr,
                                            "grid": list(spec.grid), **spec.info}
        results[spec.label]["xla"] = run.xla
    return results


def summarize_runs(runs: Sequence[RunResult], learning_rate: float, tuning: TuningResult | None,
                   keep_curves: bool = True) -> dict:
    """The JSON record of one optimizer on one task."""
    test_names = sorted({k for r in runs for k in (r.test or {})})
    return {
        "learning_rate": learning_rate,
        "tuning": tuning.to_json() if tuning else None,
        "final_loss": summarize([r.final_loss for r in runs]),
        "test": {name: summarize([(r.test or {}).get(name, math.nan) for r in runs]) for name in test_names}
                or None,
        "seconds_per_run": summarize([r.seconds for r in runs]),
        "runs": [r.to_json(with_curve=keep_curves) for r in runs],
    }


def _reuse(earlier: BaselineReuse, task_spec: Any, spec: OptimizerSpec, train_one) -> dict | None:
    return earlier.entry(task_spec, spec.label, spec.grid, train_one)


def suite_optimizers(suite: Any, task_spec: Any, bundles: Sequence[str | None],
                     baselines: Sequence[str] | None = None, hyperadam_options: dict | None = None
                     ) -> list[OptimizerSpec]:
    """HyperAdam for each bundle (untuned; `hyperadam_options`: keywords of `hyperadam_spec` other than the
    default's) followed by the suite's baselines on the task's grids."""
    specs = []
    for bundle in bundles:
        spec = hyperadam_spec(bundle, label="HyperAdam", **(hyperadam_options or {}))
        if len(bundles) > 1:
            name = "default" if bundle is None else os.path.basename(os.path.normpath(str(bundle)))
            label = f"HyperAdam[{name}, J={spec.info['num_candidates']}]"
            taken = [s.label for s in specs]
            if label in taken:
                label = f"{label} #{sum(t.startswith(label) for t in taken) + 1}"
            spec = dataclasses.replace(spec, label=label)
        specs.append(spec)
    for name in (baselines if baselines is not None else suite.baselines):
        specs.append(baseline_spec(name, task_spec.grids.get(name)))
    return specs


def run_suite(suite: Any, bundles: Sequence[str | None] = (None,), seeds: int | None = None,
              tune_seeds: int | None = None, long: bool = False, baselines: Sequence[str] | None = None,
              chunk_size: int = 100, jit_compile: bool = True, max_extensions: int = 2,
              progress: bool = True, command: str | None = None, keep_curves: bool = True,
              cache_dir: str | os.PathLike | None = None,
              baselines_from: str | os.PathLike | None = None, hyperadam_options: dict | None = None) -> dict:
    """Runs a comparison suite (a `suites.Suite` or its name) and returns every number as a JSON-ready
    dict (see `report.py` for the rendering). `seeds`/`tune_seeds` default to the suite's.

    `cache_dir`: a `RunCache` directory. Runs found there are not trained again (a killed suite resumes;
    a new bundle reuses the baselines' runs); the result's "cache" counts them.
    `baselines_from`: an earlier result JSON of this suite whose baselines' entries are reused where it
    has them, each checked by training one of its runs again (`baseline_reuse.BaselineReuse`).
    `hyperadam_options`: HyperAdam's options other than the default's (`baselines.hyperadam_spec`'s keywords,
    e.g. {"max_relative_step": None}).
    """
    if isinstance(suite, str):
        suite = suites_module.get_suite(suite)
    bundles = list(bundles) or [None]
    num_seeds = int(seeds if seeds is not None else suite.seeds)
    num_tune = int(tune_seeds if tune_seeds is not None else suite.tune_seeds)
    eval_seeds, tune = list(range(num_seeds)), tuning_seeds(num_tune)
    plan = [(spec, suite_optimizers(suite, spec, bundles, baselines, hyperadam_options)) for spec in suite.tasks]
    total = sum(count_steps(opts, spec.num_steps(long), num_seeds, num_tune, max_extensions) for spec, opts in plan)
    cache = RunCache(cache_dir) if cache_dir else None
    earlier = None
    if baselines_from is not None:
        with open(baselines_from, encoding="utf-8") as f:
            earlier = BaselineReuse(json.load(f), os.fspath(baselines_from), suite.name, None,
                                    {"seeds": eval_seeds, "tuning_seeds": tune, "long": long, "chunk_size": chunk_size,
                                     "jit_compile": jit_compile, "max_grid_extensions": max_extensions})
    started = time.perf_counter()
    results = {"suite": suite.name, "description": suite.description, "note": suite.note,
               "command": command, "machine": machine_info(),
               "settings": {"seeds": eval_seeds, "tuning_seeds": tune, "long": long, "chunk_size": chunk_size,
                            "jit_compile": jit_compile, "max_grid_extensions": max_extensions,
                            "tuning": "baselines tuned on tuning seeds disjoint from the evaluation seeds, "
                                      "by mean final loss; HyperAdam untuned at its default step size and decay",
                            "std": "sample standard deviation (ddof=1) over seeds with a finite final loss"},
               "tasks": []}
    if earlier is not None:
        results["baselines_from"] = earlier.summary()
    with tqdm(total=total, unit="step", desc=suite.name, disable=not progress, smoothing=0.05) as bar:
        for spec, optimizers in plan:
            bar.set_postfix_str(spec.name)
            task = suites_module.build_task(spec)
            steps = spec.num_steps(long)
            task_started, hits_before = time.perf_counter(), cache.hits if cache else 0
            per_optimizer = evaluate_task(task, optimizers, steps, eval_seeds, tune, chunk_size=chunk_size,
                                          jit_compile=jit_compile and spec.xla, max_extensions=max_extensions,
                                          progress=bar.update, keep_curves=keep_curves, cache=cache,
                                          task_key=task_identity(spec, steps),
                                          reuse=None if earlier is None else functools.partial(_reuse, earlier, spec))
            results["tasks"].append({
                "name": spec.name, "kind": spec.kind, "kwargs": spec.kwargs, "steps": steps,
                "reference": spec.reference, "optimizers": list(per_optimizer),
                "has_test": any(r["test"] for r in per_optimizer.values()),
                "seconds": round(time.perf_counter() - task_started, 2), "results": per_optimizer,
                **({"runs_from_cache": cache.hits - hits_before} if cache else {})})
        bar.total = bar.n
        bar.refresh()
    results["seconds"] = round(time.perf_counter() - started, 2)
    # The wall time above excludes the training of cached runs: say how many there were.
    results["cache"] = cache.summary() if cache else None
    return results
