"""Does one compiled program for all variables of a step beat HyperAdam's one compiled call per variable?

Both variants run the same math on the same tensors of a model (its trainable variables' shapes), state
held in variables and written back each step, the step's global norms and non-finite check included:

    per-variable   the global reductions, then `update.compiled_coordinate_update` once per variable
                   (what `HyperAdam` runs), all inside one outer `tf.function`
    one program    the same, the reductions and every variable's update inside one XLA program

    python benchmarks/fused_probe.py                       # both models, 7 rounds of 20 steps
    python benchmarks/fused_probe.py --models deep-narrow --rounds 3 --json out.json

Models: `deep-narrow` (24 Dense(32) layers on 784 inputs: 50 variables, 45k parameters), `paper-mlp`
(784-20-10: 4 variables), `wide` (784-1000-200-10: 6 variables, 1M parameters). Prints the median
milliseconds per step of each variant, taken alternately round by round so that drift hits both.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

MODELS = {"deep-narrow": [784] + [32] * 24 + [10], "paper-mlp": [784, 20, 10], "wide": [784, 1000, 200, 10]}


def variable_shapes(widths: list[int]) -> list[tuple[int, ...]]:
    """Kernel and bias shapes of a Dense stack with these widths."""
    shapes = []
    for fan_in, fan_out in zip(widths[:-1], widths[1:]):
        shapes += [(fan_in, fan_out), (fan_out,)]
    return shapes


def build_variants(shapes, seed: int = 0):
    """(per_variable_step, one_program_step), each a no-argument callable running one update of every
    variable in `shapes`, writing the state back."""
    import numpy as np
    import tensorflow as tf

    from hyperadam_keras import equations, update
    from hyperadam_keras.bundle import resolve_meta_params

    params = resolve_meta_params(None)
    J, H = params.num_candidates, params.hidden
    normalization = params.feature_normalization
    clip = equations.feature_clip(normalization)
    meta = equations.MetaWeights(*(tf.constant(a) for a in params.weights()))
    rng = np.random.default_rng(seed)
    sizes = [int(np.prod(s)) for s in shapes]
    grads = [tf.constant(rng.normal(0, 1e-2, n).astype(np.float32)) for n in sizes]
    weights = [tf.constant(rng.normal(size=n).astype(np.float32)) for n in sizes]

    def new_state():
        return [[tf.Variable(rng.uniform(0.1, 0.5, (H if i < 2 else J, n)).astype(np.float32)) for i in range(6)]
                for n in sizes]

    alpha, decay, valid = tf.constant(0.001), tf.constant(0.0), tf.constant(True)

    def step(states, per_variable_call):
        current = [[tf.convert_to_tensor(s) for s in state] for state in states]
        grad_sq, col_sq = equations.feature_sq_scales(grads, [state[2] for state in current], normalization)
        is_finite = update.step_is_finite(grads, grad_sq, valid, True)
        total = tf.constant(0.0)
        for g, w, state, variables in zip(grads, weights, current, states):
            delta, new = per_variable_call(meta, g, state, w, alpha, decay, grad_sq, col_sq, is_finite)
            for variable, value in zip(variables, new):
                variable.assign(value)
            total += delta[-1]
        return total

    per_state, fused_state = new_state(), new_state()
    compiled = update.compiled_coordinate_update(J, H, 1e-24, clip, None)
    per_variable = tf.function(lambda: step(per_state, compiled))
    plain = lambda *a: update.coordinate_update(*a, epsilon=1e-24, feature_clip=clip)  # noqa: E731
    one_program = tf.function(lambda: step(fused_state, plain), jit_compile=True)
    return per_variable, one_program


def mean_step_ms(fn, steps: int) -> float:
    """Milliseconds per call over `steps` back-to-back calls (the last result read to the host)."""
    began = time.perf_counter()
    for _ in range(steps):
        value = fn()
    float(value)
    return 1e3 * (time.perf_counter() - began) / steps


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", choices=sorted(MODELS), default=["deep-narrow", "paper-mlp"])
    parser.add_argument("--steps", type=int, default=20, help="steps per timed round (default 20)")
    parser.add_argument("--rounds", type=int, default=7, help="timed rounds per variant, median (default 7)")
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args(argv)
    if args.steps < 1 or args.rounds < 1:
        parser.error("--steps and --rounds must be at least 1")

    results = {}
    for name in args.models:
        shapes = variable_shapes(MODELS[name])
        per_variable, one_program = build_variants(shapes)
        for fn in (per_variable, one_program):  # traces and compiles
            float(fn())
        times = {"per_variable_ms": [], "one_program_ms": []}
        for _ in range(args.rounds):
            times["per_variable_ms"].append(mean_step_ms(per_variable, args.steps))
            times["one_program_ms"].append(mean_step_ms(one_program, args.steps))
        row = {key: statistics.median(value) for key, value in times.items()}
        row.update(variables=len(shapes), parameters=sum(math.prod(s) for s in shapes),
                   rounds=times, ratio_one_program_over_per_variable=row["one_program_ms"] / row["per_variable_ms"])
        results[name] = row
        print(f"{name}: {row['variables']} variables, {row['parameters']:,} parameters: per-variable "
              f"{row['per_variable_ms']:.2f} ms, one program {row['one_program_ms']:.2f} ms "
              f"(ratio {row['ratio_one_program_over_per_variable']:.2f})", flush=True)
    if args.json:
        with open(args.json, "w") as out:
            json.dump(results, out, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
