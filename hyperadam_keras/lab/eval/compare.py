"""Will HyperAdam help my model? `compare(builder)` trains the user's own Keras model with the shipped
`HyperAdam()` (untuned, at its default learning rate) and with tuned baselines (default: Adam), and
`write_outputs` reports the result (table, `compare.json`, `curves.png`).

Rules (those of the evaluation suites, `runner.py`):
- Each baseline's learning rate is tuned on its grid (default `baselines.DEFAULT_GRIDS`) on tuning
  seeds disjoint from the evaluation seeds (`tuning.tuning_seeds`), by the mean final training loss,
  the grid extended at an edge (`tuning.tune_learning_rate`); the chosen rate then runs on the
  evaluation seeds 0..N-1. HyperAdam is not tuned.
- Same initial weights: before each run `keras.utils.set_random_seed(seed)` and `build()`; the weights
  of the first model built for a seed are set on every later model of that seed (their SHA-256 is
  recorded per run). Same batches: arrays are batched in a seeded order per seed
  (`compare_builder.training_data`).
- Training is the user's `model.fit` (`verbose=0`, their callbacks passed through); "final loss" is
  `model.evaluate` of the final weights on the whole training set (inference mode: dropout off).
- A run diverged if any training loss or the final loss is not finite, or the final loss is above
  the initial one (the same `evaluate` before training).
"""

from __future__ import annotations

import functools
import hashlib
import math
import time
from typing import Any, Callable, Mapping, Sequence

import keras
import numpy as np

from hyperadam_keras.lab.eval.baselines import BASELINE_NAMES, OptimizerSpec, baseline_spec, hyperadam_spec
from hyperadam_keras.lab.eval.compare_builder import Build, check_build, sample_inputs, training_data
from hyperadam_keras.lab.eval.machine import machine_info
from hyperadam_keras.lab.eval.stats import json_float, summarize
from hyperadam_keras.lab.eval.trainer import RunResult
from hyperadam_keras.lab.eval.tuning import tune_learning_rate, tuning_seeds
from hyperadam_keras.memory import optimizer_memory
from hyperadam_keras.optimizer import HyperAdam

ADAMW = "AdamW"
COMPARE_BASELINES: tuple[str, ...] = BASELINE_NAMES + (ADAMW,)
DEFAULT_SEEDS = 3
DEFAULT_TUNE_SEEDS = 1
MAX_EXTENSIONS = 2


def compare_baseline_spec(name: str, grid: Sequence[float] | None = None) -> OptimizerSpec:
    """`baselines.baseline_spec`, plus AdamW (`keras.optimizers.AdamW`, its default weight decay 0.004,
    on Adam's grid)."""
    if name != ADAMW:
        return baseline_spec(name, grid)
    adam = baseline_spec("Adam", grid)
    return OptimizerSpec(label=ADAMW, factory=lambda lr: keras.optimizers.AdamW(learning_rate=lr),
                         default_lr=adam.default_lr, grid=adam.grid,
                         info={"kind": "baseline", "keras_class": ADAMW, "weight_decay": 0.004})


class _Recorder(keras.callbacks.Callback):
    """Per step: the training loss of that batch (from the difference of fit's loss tracker, whose
    running mean `logs["loss"]` is), and the wall time since the previous step ended."""

    def __init__(self):
        super().__init__()
        self.losses: list[float] = []
        self.seconds: list[float] = []

    def on_train_begin(self, logs=None):
        self._last = time.perf_counter()

    def on_epoch_begin(self, epoch, logs=None):
        self._total = self._count = 0.0  # the tracker is reset at each epoch

    def on_train_batch_end(self, batch, logs=None):
        tracker = self.model._loss_tracker
        total, count = float(tracker.total.numpy()), float(tracker.count.numpy())
        self.losses.append((total - self._total) / (count - self._count) if count > self._count else math.nan)
        self._total, self._count = total, count
        now = time.perf_counter()
        self.seconds.append(now - self._last)
        self._last = now


def weights_sha256(weights: Sequence[np.ndarray]) -> str:
    """A fingerprint of a list of weight arrays (values, shapes and dtypes)."""
    digest = hashlib.sha256()
    for w in weights:
        w = np.ascontiguousarray(w)
        digest.update(f"{w.dtype}{w.shape}".encode())
        digest.update(w.tobytes())
    return digest.hexdigest()


def _state_bytes(optimizer: keras.optimizers.Optimizer, model: keras.Model) -> dict:
    """Bytes of optimizer state: `optimizer_memory` for HyperAdam; otherwise the optimizer's non-scalar
    variables (Adam: m and v, 8 bytes per float32 parameter)."""
    if isinstance(optimizer, HyperAdam):
        memory = optimizer_memory(model, optimizer=optimizer)
        return {"state_bytes": memory["state_bytes"], "bytes_per_parameter": memory["bytes_per_parameter"]}
    state = int(sum(np.prod(v.shape) * np.dtype(v.dtype).itemsize for v in optimizer.variables if len(v.shape)))
    parameters = int(sum(np.prod(v.shape) for v in model.trainable_variables))
    return {"state_bytes": state, "bytes_per_parameter": state / max(parameters, 1)}


def _evaluate(model: keras.Model, build: Build, data: Any) -> dict:
    """`model.evaluate` on the training data (`data` None) or on `data` (validation), as a dict."""
    if data is None:
        data = (build.x, build.y) if build.x is not None else build.dataset
    if isinstance(data, tuple):
        result = model.evaluate(data[0], data[1], batch_size=build.batch_size, verbose=0, return_dict=True)
    else:
        result = model.evaluate(data, verbose=0, return_dict=True)
    return {str(k): float(v) for k, v in result.items()}


class FitRuns:
    """`self(spec, seed, lr)`: one run of the builder's model with `spec`'s optimizer, as a JSON record;
    the first model built for each seed fixes that seed's initial weights (`build`)."""

    def __init__(self, builder: Callable[[], dict], callbacks: Sequence[keras.callbacks.Callback],
                 on_run: Callable[[str], None] | None):
        self.builder, self.callbacks, self.on_run = builder, list(callbacks), on_run
        self.initial_weights: dict[int, list[np.ndarray]] = {}
        self.first: Build | None = None

    def build(self, seed: int) -> Build:
        keras.utils.set_random_seed(seed)
        build = check_build(self.builder())
        if not build.model.built:
            build.model(sample_inputs(build), training=False)
        if seed in self.initial_weights:
            build.model.set_weights(self.initial_weights[seed])
        else:
            self.initial_weights[seed] = [np.array(w) for w in build.model.get_weights()]
        self.first = self.first or build
        return build

    def __call__(self, spec: OptimizerSpec, seed: int, learning_rate: float) -> dict:
        if self.on_run is not None:
            self.on_run(f"{spec.label} lr={learning_rate:g} seed={seed}")
        build = self.build(seed)
        model = build.model
        initial_sha = weights_sha256(model.get_weights())
        optimizer = spec.factory(learning_rate)
        model.compile(optimizer=optimizer, loss=build.loss, metrics=build.metrics)
        initial = _evaluate(model, build, None)
        data, fit_args = training_data(build, seed)
        recorder = _Recorder()
        began = time.perf_counter()
        model.fit(data, verbose=0, shuffle=False, callbacks=[recorder, *self.callbacks], **fit_args)
        fit_seconds = time.perf_counter() - began  # "seconds" of the record
        final = _evaluate(model, build, None)
        validation = _evaluate(model, build, build.validation_data) if build.validation_data is not None else None
        # The suites' record (curve as float32, as block means past `trainer.MAX_CURVE_POINTS` steps) ...
        run = RunResult(seed=seed, learning_rate=float(learning_rate), final_loss=final["loss"], test=None,
                        curve=np.asarray(recorder.losses, dtype=np.float32), seconds=fit_seconds)
        record = run.to_json()
        del record["test"]
        later = recorder.seconds[1:]  # the first step includes tracing and compiling
        record.update({  # ... and what compare adds
            "initial_weights_sha256": initial_sha, "initial_loss": json_float(initial["loss"]),
            "train": {k: json_float(v) for k, v in final.items()},
            "validation": {k: json_float(v) for k, v in validation.items()} if validation else None,
            "diverged": not run.finite or not final["loss"] <= initial["loss"], "steps": len(run.curve),
            "first_step_seconds": round(recorder.seconds[0], 4) if recorder.seconds else None,
            "median_step_seconds": float(np.median(later)) if later else None,
            "memory": _state_bytes(optimizer, model)})
        return record


def _summary(runs: list[dict]) -> dict:
    """Mean ± std over seeds of every number the table shows."""
    def values(get):
        return [float(get(r)) for r in runs]
    out = {"final_loss": summarize(values(lambda r: r["final_loss"])),
           "median_step_seconds": summarize(values(lambda r: r["median_step_seconds"] or math.nan)),
           "diverged": sum(r["diverged"] for r in runs), "runs": len(runs), "memory": runs[0]["memory"]}
    if runs[0]["validation"]:
        out["validation"] = {k: summarize(values(lambda r: r["validation"][k])) for k in runs[0]["validation"]}
    return out


def resolve_specs(baselines: Sequence[str], grid: Sequence[float] | Mapping[str, Sequence[float]] | None
                  ) -> list[OptimizerSpec]:
    """HyperAdam (the shipped default) first, then each baseline on its grid: `grid` one grid for all,
    a dict name -> grid, or None (`DEFAULT_GRIDS`; AdamW: Adam's)."""
    specs = [hyperadam_spec()]
    for name in baselines:
        if name not in COMPARE_BASELINES:
            raise ValueError(f"unknown baseline {name!r}; known: {', '.join(COMPARE_BASELINES)}")
        own = grid.get(name) if isinstance(grid, Mapping) else grid
        specs.append(compare_baseline_spec(name, own))
    return specs


def evaluate_optimizer(spec: OptimizerSpec, run: Callable[[int, float], dict], eval_seeds: Sequence[int],
                       tune_seeds: Sequence[int], max_extensions: int = MAX_EXTENSIONS) -> dict:
    """One optimizer of a comparison: its rate tuned on `tune_seeds` (when `spec` has a grid), then
    `run(seed, rate)` (a run record of `FitRuns`) on every evaluation seed. Returns compare's entry:
    the optimizer, its tuning (every grid point's runs, without curves), rate, runs and summary."""
    entry: dict = {"optimizer": {"label": spec.label, "default_lr": spec.default_lr, "grid": list(spec.grid),
                                 **spec.info}, "tuned": spec.tuned}
    rate = spec.default_lr
    if spec.tuned:
        tuning_runs: list[dict] = []

        def tuning_run(seed: int, lr: float) -> float:
            record = run(seed, lr)
            tuning_runs.append({k: v for k, v in record.items() if k != "curve"})
            return float(record["final_loss"])

        tuning = tune_learning_rate(tuning_run, spec.grid, tune_seeds, max_extensions=max_extensions)
        rate = tuning.best_lr
        entry["tuning"] = {**tuning.to_json(), "runs": tuning_runs}
    entry["learning_rate"] = rate
    entry["runs"] = [run(seed, rate) for seed in eval_seeds]
    entry["summary"] = _summary(entry["runs"])
    return entry


def compare(builder: Callable[[], dict], seeds: int = DEFAULT_SEEDS, baselines: Sequence[str] = ("Adam",),
            grid: Sequence[float] | Mapping[str, Sequence[float]] | None = None,
            tune_seeds: int = DEFAULT_TUNE_SEEDS, max_extensions: int = MAX_EXTENSIONS,
            callbacks: Sequence[keras.callbacks.Callback] = (), progress: bool = True,
            model_name: str | None = None) -> dict:
    """Trains `builder()`'s model with `HyperAdam()` and with each baseline tuned (module docstring).

    Args:
        builder: returns the dict of `compare_builder` (called once per run).
        seeds: evaluation seeds 0..seeds-1.
        baselines: names out of `COMPARE_BASELINES`.
        grid: learning-rate grid(s) of the baselines (see `resolve_specs`).
        tune_seeds: tuning seeds (`tuning.tuning_seeds(tune_seeds)`).
        max_extensions: grid extensions at an edge (`tuning.tune_learning_rate`).
        callbacks: Keras callbacks passed to every `fit`.
        progress: a tqdm progress bar (one tick per run).
        model_name: how the JSON names the model (default: the builder's qualified name).

    Returns:
        The JSON-ready results: settings, model facts, and per optimizer its rate, tuning (every grid
        point's runs), every evaluation run (per-step losses included) and the summary over seeds.
    Raises:
        BuilderError: the builder broke its contract (checked on every call; first before any training).
    """
    from hyperadam_keras.lab._requires import require
    tqdm = require("tqdm.auto", feature="the compare progress bar").tqdm

    if seeds < 1 or tune_seeds < 1:
        raise ValueError(f"seeds and tune_seeds must be >= 1, got {seeds} and {tune_seeds}")
    specs = resolve_specs(baselines, grid)
    eval_seeds, tune = list(range(seeds)), tuning_seeds(tune_seeds)
    planned = sum(len(s.grid) * len(tune) for s in specs) + len(specs) * len(eval_seeds)
    started = time.perf_counter()
    runs = FitRuns(builder, callbacks, None)
    runs.build(eval_seeds[0])  # a broken builder fails here, before the progress bar starts
    with tqdm(total=planned, unit="run", desc="compare", disable=not progress) as bar:
        done = [0]

        def on_run(text: str) -> None:
            if done[0] >= bar.total:  # a grid extension: one more run than planned
                bar.total += 1
            if done[0]:
                bar.update(1)
            done[0] += 1
            bar.set_postfix_str(text)

        runs.on_run = on_run
        optimizers = {spec.label: evaluate_optimizer(spec, functools.partial(runs, spec), eval_seeds, tune,
                                                     max_extensions)
                      for spec in specs}
        bar.update(1)
    first = runs.first
    return {"kind": "compare", "model": model_name or getattr(builder, "__qualname__", repr(builder)),
            "machine": machine_info(), "seconds": round(time.perf_counter() - started, 2),
            "data": {"parameters": int(sum(np.prod(v.shape) for v in first.model.trainable_variables)),
                     "training_samples": first.num_samples, "batch_size": first.batch_size if first.x is not None else None,
                     "steps_per_run": first.steps_per_run(), "epochs": first.epochs, "steps": first.steps,
                     "validation": first.validation_data is not None, "dtype_policy": keras.config.dtype_policy().name},
            "settings": {"seeds": eval_seeds, "tuning_seeds": tune, "max_grid_extensions": max_extensions,
                         "baselines": list(baselines),
                         "initial_weights_sha256": {str(s): weights_sha256(w) for s, w in runs.initial_weights.items()},
                         "final_loss": "model.evaluate of the final weights on the whole training set",
                         "tuning": "baselines tuned on the tuning seeds by mean final loss (grid extended at an "
                                   "edge); HyperAdam untuned at its defaults",
                         "diverged": "a non-finite loss, or final loss above the initial loss",
                         "seconds": "wall time of the run's model.fit",
                         "curve": "training loss of each batch (float32; means over blocks of curve_block steps "
                                  "past 2,000 steps, as the evaluation suites store curves)",
                         "median_step_seconds": "median wall time between the ends of consecutive fit steps "
                                                "(the first step, with its compilation, left out)",
                         "std": "sample standard deviation (ddof=1) over seeds with a finite value"},
            "optimizers": optimizers}
