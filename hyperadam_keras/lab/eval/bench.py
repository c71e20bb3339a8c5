"""The `bench` suite: step time and update FLOP/s (`speed.py`), the time to reach tuned Adam's loss
(the paper's 8-layer comparison), and the optimizer state per parameter."""

from __future__ import annotations

import time
from typing import Any

import keras
import numpy as np

from hyperadam_keras.lab.eval import speed
from hyperadam_keras.lab.eval import suites as suites_module
from hyperadam_keras.lab.eval.baselines import baseline_spec, hyperadam_spec
from hyperadam_keras.lab.eval.machine import machine_info
from hyperadam_keras.lab.eval.runner import evaluate_task
from hyperadam_keras.lab.eval.trainer import Trainer
from hyperadam_keras.lab.eval.tuning import tuning_seeds


def time_to_target(trainer: Trainer, seed: int, learning_rate: float, target: float, max_steps: int,
                   check_every: int = 50) -> dict:
    """Trains until `task.full_loss` <= `target` (checked every `check_every` steps) or `max_steps`.

    Returns steps and training seconds to reach it (None if never), excluding the time of the checks
    and of the first (compiling) chunk, which is re-run from the start after a warm-up.
    """
    trainer.reset(seed, learning_rate)
    trainer.train(seed, 0, check_every)  # warm-up: trace and compile
    trainer.reset(seed, learning_rate)
    seconds, done = 0.0, 0
    while done < max_steps:
        began = time.perf_counter()
        trainer.train(seed, done, check_every)
        seconds += time.perf_counter() - began
        done += check_every
        extra = {"seed": seed} if getattr(trainer.task, "needs_seed", False) else {}
        loss = float(trainer.task.full_loss(trainer.params(), **extra))
        if loss <= target:
            return {"seed": seed, "reached": True, "steps": done, "seconds": seconds, "loss": loss}
    return {"seed": seed, "reached": False, "steps": None, "seconds": None, "loss": loss,
            "seconds_for_max_steps": seconds}


def _state_bytes(optimizer: keras.optimizers.Optimizer) -> int:
    """Bytes of an optimizer's per-parameter state (every variable but the scalar counters/rates)."""
    return int(sum(np.prod(v.shape) * np.dtype(v.dtype).itemsize for v in optimizer.variables
                   if len(v.shape) > 0))


def run_bench(suite: Any = "bench", bundle: str | None = None, seeds: int | None = None,
              tune_seeds: int | None = None, speed_kwargs: dict | None = None, progress: bool = True,
              command: str | None = None, check_every: int = 50, horizon_factor: int = 3,
              with_speed: bool = True, jit_compile: bool = True) -> dict:
    """Speed and memory: `speed.run_speed_benchmarks` (step time HyperAdam vs Adam, update FLOP/s),
    time to reach tuned Adam's loss on the suite's task (the paper's 8-layer sigmoid MLP), and the
    optimizer state per parameter measured on the built optimizers.

    Time to target: Adam is tuned on the task's grid (tuning seeds, `steps` of the task), the target is
    tuned Adam's mean final loss over the evaluation seeds after `steps`; then HyperAdam (untuned) and
    tuned Adam train from each evaluation seed until their full loss reaches it (checked every
    `check_every` steps, at most `horizon_factor` × steps), timing the training alone.
    """
    if isinstance(suite, str):
        suite = suites_module.get_suite(suite)
    started = time.perf_counter()
    num_seeds = int(seeds if seeds is not None else suite.seeds)
    num_tune = int(tune_seeds if tune_seeds is not None else suite.tune_seeds)
    results: dict = {"suite": suite.name, "kind": "bench", "description": suite.description,
                     "command": command, "machine": machine_info(), "note": suite.note,
                     "settings": {"seeds": list(range(num_seeds)), "tuning_seeds": tuning_seeds(num_tune)}}
    if not with_speed:
        results["speed"] = {"error": "not run (with_speed=False)"}
    else:
        kwargs = dict(speed_kwargs or {})
        if bundle is not None:
            kwargs.setdefault("meta_params", bundle)
        results["speed"] = speed.run_speed_benchmarks(**kwargs)
        results["speed_markdown"] = speed.format_markdown(results["speed"])

    spec = suite.tasks[0]
    task = suites_module.build_task(spec)
    steps = spec.num_steps()
    hyper, adam = hyperadam_spec(bundle, label="HyperAdam"), baseline_spec("Adam", spec.grids.get("Adam"))
    tuned = evaluate_task(task, [adam], steps, list(range(num_seeds)), tuning_seeds(num_tune),
                          jit_compile=jit_compile, keep_curves=False)["Adam"]
    target = float(tuned["final_loss"]["mean"])
    trainers = {label: (Trainer(task, spec.factory(lr), jit_compile=jit_compile), lr) for label, spec, lr in
                (("HyperAdam", hyper, hyper.default_lr), ("Adam", adam, tuned["learning_rate"]))}
    reach = {}
    for label, (trainer, lr) in trainers.items():
        runs = []
        for seed in range(num_seeds):
            runs.append(time_to_target(trainer, seed, lr, target, horizon_factor * steps, check_every))
            if progress:
                print(f"[bench] {spec.name}: {label} seed {seed}: target {target:.4f} "
                      f"{'reached at step ' + str(runs[-1]['steps']) if runs[-1]['reached'] else 'not reached'}",
                      flush=True)
        reached = [r for r in runs if r["reached"]]
        reach[label] = {"learning_rate": lr, "runs": runs, "reached": len(reached),
                        "median_steps": float(np.median([r["steps"] for r in reached])) if reached else None,
                        "median_seconds": float(np.median([r["seconds"] for r in reached])) if reached else None}
    results["time_to_target"] = {
        "task": spec.name, "steps": steps, "target": target, "adam_tuning": tuned["tuning"],
        "adam_final_loss": tuned["final_loss"], "adam_final_losses": [r["final_loss"] for r in tuned["runs"]],
        "check_every": check_every,
        "max_steps": horizon_factor * steps, "results": reach}
    num_params = int(sum(np.prod(v.shape) for v in trainers["HyperAdam"][0].variables))
    results["memory"] = {label: {"parameters": num_params, "state_bytes": _state_bytes(t.optimizer),
                                 "bytes_per_parameter": _state_bytes(t.optimizer) / num_params}
                         for label, (t, _) in trainers.items()}
    results["memory"]["task"] = spec.name
    results["seconds"] = round(time.perf_counter() - started, 2)
    return results
