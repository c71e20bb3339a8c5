"""How task-adaptive is a bundle? The spread of HyperAdam's weights ρ and decays β, γ over coordinates and steps.

HyperAdam's candidate weights ρ_t = ELU(s_t θ_q + b_q) and decays β_t, γ_t (equations.py) are functions of
the task state s_t, an LSTM over the globally normalized gradient ĝ = g / ||g||, and of the globally
normalized moments m'. Both inputs are O(1/√p) per coordinate for a model of p parameters. If the bundle's
kernels are small, s_t, ρ, β and γ are then the same for every coordinate and every step, and HyperAdam is a
fixed mixture of J Adams. This script trains a few suite tasks with a bundle (the meta-trainer's unroll, no
XLA) and measures ρ, Σ_j ρ_j, β and γ of every coordinate at every step (`inspect_bundle.gate_statistics`).

    python benchmarks/task_adaptivity.py --json benchmarks/task_adaptivity.json
"""

from __future__ import annotations

import argparse
import json
import os

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from hyperadam_keras.bundle import default_bundle_path, load_meta_params  # noqa: E402
from hyperadam_keras.lab.inspect_bundle import gate_statistics  # noqa: E402
from hyperadam_keras.lab.eval.suites import build_task, get_suite  # noqa: E402

DEFAULT_TASKS = ("paper-table1:mlp-1x20-sigmoid", "paper-deep:mlp-6x20-sigmoid", "paper-lstm:lstm-baseline",
                 "paper-cnn:cnn-2")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", nargs="+", default=list(DEFAULT_TASKS), help="SUITE:TASK names")
    parser.add_argument("--steps", type=int, default=100, help="training steps, all of them measured")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--learning-rate", type=float, default=0.005)
    parser.add_argument("--bundle", default=None, help="bundle directory (default: the shipped one)")
    parser.add_argument("--json", default=None, help="write the numbers here")
    args = parser.parse_args()
    params = load_meta_params(args.bundle or default_bundle_path())
    rows = []
    for item in args.tasks:
        suite, name = item.split(":")
        spec = next(t for t in get_suite(suite).tasks if t.name == name)
        task = build_task(spec)
        stats = gate_statistics(params, task, args.seed, args.steps, args.learning_rate)
        row = {"task": name, "parameters": int(sum(int(np.prod(s)) for s in task.param_shapes())), **stats}
        rows.append(row)
        print(f"{name} (p = {row['parameters']}): sum_j rho in [{stats['rho_sum']['min']:.5f}, "
              f"{stats['rho_sum']['max']:.5f}]; widest range of one candidate over coordinates and steps: "
              f"rho {stats['rho']['spread']:.2e}, beta {stats['beta']['spread']:.2e}, "
              f"gamma {stats['gamma']['spread']:.2e}; "
              f"beta in [{stats['beta']['min']:.3f}, {stats['beta']['max']:.3f}], "
              f"gamma in [{stats['gamma']['min']:.5f}, {stats['gamma']['max']:.5f}]", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"bundle": args.bundle or "shipped default", "seed": args.seed, "steps": args.steps,
                       "tasks": rows}, f, indent=1)


if __name__ == "__main__":
    main()
