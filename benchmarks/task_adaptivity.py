"""How task-adaptive is a bundle? The spread of HyperAdam's weights ρ and decays β, γ over coordinates and steps.

HyperAdam's candidate weights ρ_t = ELU(s_t θ_q + b_q) and decays β_t, γ_t (equations.py) are functions of
the task state s_t, an LSTM over the globally normalized gradient ĝ = g / ||g||, and of the globally
normalized moments m'. Both inputs are O(1/√p) per coordinate for a model of p parameters. If the bundle's
kernels are small, s_t, ρ, β and γ are then the same for every coordinate and every step, and HyperAdam is a
fixed mixture of J Adams. This script trains a few suite tasks with a bundle and measures, after given
steps, ρ (and Σ_j ρ_j), β and γ for every coordinate, exactly as the next step would use them.

    python benchmarks/task_adaptivity.py --json benchmarks/task_adaptivity.json
"""

from __future__ import annotations

import argparse
import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from hyperadam_keras import HyperAdam, equations  # noqa: E402
from hyperadam_keras.evaluate import Trainer  # noqa: E402
from hyperadam_keras.suites import build_task, get_suite  # noqa: E402

DEFAULT_TASKS = ("paper-table1:mlp-1x20-sigmoid", "paper-deep:mlp-6x20-sigmoid", "paper-lstm:lstm-baseline",
                 "paper-cnn:cnn-2")


def weights_and_decays(optimizer: HyperAdam, variables: list, gradients: list) -> dict[str, np.ndarray]:
    """ρ [p, J], β [p, J], γ [p, J] of the step that `gradients` would take from the optimizer's state."""
    meta = optimizer.meta_params.weights()
    grads = [tf.cast(g, tf.float32) for g in gradients]
    grad_sq_norm = equations.gradient_sq_norm(grads)
    slots = [optimizer.slots(v) for v in variables]
    col_norms = equations.moment_column_sq_norms([tf.convert_to_tensor(s["m"]) for s in slots])
    rows = {"rho": [], "beta": [], "gamma": []}
    for g, s in zip(grads, slots):
        flat = lambda t, k: tf.reshape(tf.convert_to_tensor(t), (-1, k))  # noqa: E731
        x = equations.preprocess(equations.normalized_gradient(tf.reshape(g, (-1,)), grad_sq_norm),
                                 meta.preprocess_kernel, meta.preprocess_bias)
        h, _ = equations.state_cell(x, flat(s["h"], optimizer.hidden), flat(s["c"], optimizer.hidden),
                                    meta.state_cell_kernel, meta.state_cell_bias)
        beta, gamma = equations.adam_cell_decay_rates(
            equations.normalized_moment(flat(s["m"], optimizer.num_candidates), col_norms), h,
            meta.beta_kernel, meta.beta_bias, meta.gamma_kernel, meta.gamma_bias)
        rows["rho"].append(equations.weight_cell(h, meta.weight_kernel, meta.weight_bias).numpy())
        rows["beta"].append(np.asarray(beta))
        rows["gamma"].append(np.asarray(gamma))
    return {k: np.concatenate(v) for k, v in rows.items()}


def measure(suite: str, name: str, checkpoints: list[int], seed: int, bundle: str | None) -> dict:
    spec = next(t for t in get_suite(suite).tasks if t.name == name)
    task = build_task(spec)
    optimizer = HyperAdam(meta_params=bundle)
    trainer = Trainer(task, optimizer, jit_compile=spec.xla)
    trainer.reset(seed, 0.005)
    seen: dict[str, list[np.ndarray]] = {"rho": [], "beta": [], "gamma": []}
    done = 0
    for step in checkpoints:
        if step > done:
            trainer.train(seed, done, step - done)
            done = step
        batch = task.sample_batch(seed, done)
        with tf.GradientTape() as tape:
            loss = task.loss(trainer.variables, batch)
        values = weights_and_decays(optimizer, trainer.variables, tape.gradient(loss, trainer.variables))
        for key, value in values.items():
            seen[key].append(value)
    stacked = {k: np.concatenate(v) for k, v in seen.items()}  # [checkpoints * p, J]
    rho_sum = stacked["rho"].sum(axis=1)
    spread = lambda a: float(np.max(a.max(axis=0) - a.min(axis=0)))  # noqa: E731  widest over the J columns
    return {"task": name, "parameters": int(sum(np.prod(s) for s in task.param_shapes())),
            "checkpoints": checkpoints, "rho_sum_min": float(rho_sum.min()), "rho_sum_max": float(rho_sum.max()),
            "rho_spread": spread(stacked["rho"]), "beta_spread": spread(stacked["beta"]),
            "gamma_spread": spread(stacked["gamma"]),
            "beta_range": [float(stacked["beta"].min()), float(stacked["beta"].max())],
            "gamma_range": [float(stacked["gamma"].min()), float(stacked["gamma"].max())]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", nargs="+", default=list(DEFAULT_TASKS), help="SUITE:TASK names")
    parser.add_argument("--checkpoints", type=int, nargs="+", default=[0, 1, 10, 50, 100],
                        help="training steps after which ρ, β, γ are measured")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--bundle", default=None, help="bundle directory (default: the shipped one)")
    parser.add_argument("--json", default=None, help="write the numbers here")
    args = parser.parse_args()
    rows = []
    for item in args.tasks:
        suite, name = item.split(":")
        row = measure(suite, name, sorted(args.checkpoints), args.seed, args.bundle)
        rows.append(row)
        print(f"{name} (p = {row['parameters']}): sum_j rho in [{row['rho_sum_min']:.5f}, {row['rho_sum_max']:.5f}]; "
              f"widest spread over coordinates and steps: rho_j {row['rho_spread']:.2e}, "
              f"beta_j {row['beta_spread']:.2e}, gamma_j {row['gamma_spread']:.2e}", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"bundle": args.bundle or "shipped default", "seed": args.seed, "tasks": rows}, f, indent=1)


if __name__ == "__main__":
    main()
