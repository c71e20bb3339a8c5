"""This machine's floor for one HyperAdam update: the least time n coordinates can take, from measured rates.

One update of n coordinates (J candidates, LSTM width H) needs, per coordinate:

* **products** `flop_per_coordinate(J, H)` FLOP (10,400 at J = H = 20): the LSTM's [ĝ-features, h]
  × [2H, 4H], the decay logits' [m', h] × [J+H, 2J] and the weight cell's h × [H, J];
* **transcendental evaluations** `transcendentals_per_coordinate(J, H)`, counted at the fewest the
  equations need: the preprocessing ELU (H exponentials), the LSTM (4H gate activations and tanh(c_t),
  H), the decays (one exponential per pair σ(z), σ(−z): 2J), the candidates' square roots (J) and the
  weight cell's ELU (J); 6H + 4J = 200 at J = H = 20;
* **state traffic** one read and one write of the 2H + 4J float32 state, plus the gradient and the weight
  (read) and the weight (written): 4 (2 (2H + 4J) + 3) bytes = 972 at J = H = 20.

Rates are measured here, on this machine, each the best of the ways TensorFlow offers:

* products: the skinny float32 product [n, 2H] × [2H, 4H], as a TensorFlow graph op (oneDNN on x86) and
  under XLA;
* transcendentals: sigmoid, tanh, exp and sqrt evaluated 64 times per element (at shifted arguments)
  of a [16384, H] block that stays in cache, under XLA (so their arithmetic, not memory, is timed),
  weighted by how many of each the update needs;
* memory: an XLA program that reads and writes a [n, 2H + 4J] float32 variable in place.

floor = max(products + transcendentals, state traffic): the products and the transcendentals run on the
same vector units, one after the other; the state streams while they compute. The measured update is
`HyperAdam`'s own compiled per-variable update (`update.compiled_coordinate_update`) on n coordinates
of one variable; `fraction_of_floor` = floor / measured (1.0 would be the machine's limit).
"""

from __future__ import annotations

import statistics
import time
from typing import Callable, NamedTuple

import numpy as np
import tensorflow as tf

from hyperadam_keras import equations
from hyperadam_keras.meta_params import MetaParams
from hyperadam_keras.update import compiled_coordinate_update

EVALUATIONS_PER_ELEMENT = 64  # transcendental evaluations per element of the in-cache block
CACHE_ROWS = 16384  # rows of the in-cache block (16384 × 20 float32 = 1.3 MB)


def flop_per_coordinate(num_candidates: int = 20, hidden: int = 20) -> int:
    """FLOP of one HyperAdam update per coordinate: 2 × (8H² + 2(J+H)J + HJ) (matrix products only)."""
    J, H = num_candidates, hidden
    return 2 * (8 * H * H + 2 * (J + H) * J + H * J)


def transcendentals_per_coordinate(num_candidates: int = 20, hidden: int = 20) -> dict[str, int]:
    """The fewest transcendental evaluations per coordinate, by kind (see the module docstring)."""
    J, H = num_candidates, hidden
    return {"sigmoid": 3 * H, "tanh": 2 * H, "exp": H + 2 * J + J, "sqrt": J}


def state_bytes_per_coordinate(num_candidates: int = 20, hidden: int = 20) -> int:
    """Bytes one update moves per coordinate: the float32 state read and written, gradient and weight."""
    return 4 * (2 * (2 * hidden + 4 * num_candidates) + 3)


def median_seconds(fn: Callable[[], object], repeats: int) -> float:
    """The median wall time of `repeats` calls of `fn` (its result copied to the host), after two untimed ones."""
    np.asarray(fn())  # traces and compiles
    np.asarray(fn())
    seconds = []
    for _ in range(repeats):
        began = time.perf_counter()
        np.asarray(fn())
        seconds.append(time.perf_counter() - began)
    return statistics.median(seconds)


def product_rates(n: int, hidden: int, repeats: int = 7) -> dict[str, float]:
    """FLOP/s of [n, 2H] × [2H, 4H] as a graph op (oneDNN on x86) and under XLA."""
    rng = np.random.default_rng(0)
    a = tf.constant(rng.normal(size=(n, 2 * hidden)).astype(np.float32))
    k = tf.constant(rng.normal(size=(2 * hidden, 4 * hidden)).astype(np.float32))
    flop = 2 * n * (2 * hidden) * (4 * hidden)
    rates = {}
    for label, xla in (("graph", False), ("xla", True)):
        # Reading one entry keeps the product from being fused into what follows it.
        fn = tf.function(lambda: tf.matmul(a, k)[-1, -1], jit_compile=xla)
        rates[label] = flop / median_seconds(fn, repeats)
    return rates


def transcendental_rates(hidden: int, repeats: int = 7) -> dict[str, float]:
    """Evaluations per second of each kind over an in-cache block under XLA."""
    block = tf.constant(np.random.default_rng(1).uniform(0.1, 0.9, (CACHE_ROWS, hidden)).astype(np.float32))
    kinds = {"sigmoid": tf.sigmoid, "tanh": tf.tanh, "exp": lambda x: tf.exp(-x), "sqrt": tf.sqrt}
    rates = {}
    for kind, op in kinds.items():
        def chain(x, op=op):
            # Independent evaluations at shifted arguments (nothing is shared or elided), summed per
            # element: the evaluation throughput, with the block read from cache.
            total = op(x)
            for k in range(1, EVALUATIONS_PER_ELEMENT):
                total = total + op(x + k / EVALUATIONS_PER_ELEMENT)
            return tf.reduce_sum(total)
        fn = tf.function(lambda chain=chain: chain(block), jit_compile=True)
        rates[kind] = EVALUATIONS_PER_ELEMENT * CACHE_ROWS * hidden / median_seconds(fn, repeats)
    return rates


def memory_bandwidth(n: int, width: int, repeats: int = 7) -> float:
    """Bytes per second of an in-place read and write of a [n, width] float32 variable under XLA."""
    state = tf.Variable(tf.zeros((n, width), tf.float32))

    def stream():
        state.assign(state * 0.5 + 1.0)
        return state[-1, -1]

    seconds = median_seconds(tf.function(stream, jit_compile=True), repeats)
    return 2 * 4 * n * width / seconds


class UpdateInputs(NamedTuple):
    """Random inputs of one update of n coordinates (timing only): meta-parameters as tensors, the
    gradient [n] ~ N(0, 0.01²), the weights [n] ~ N(0, 1) and a state of entries ~ U[0.1, 0.5)."""

    meta: equations.MetaWeights
    gradient: tf.Tensor
    weights: tf.Tensor
    state: equations.CoordinateState


def update_inputs(meta_params: MetaParams, n: int, seed: int = 0) -> UpdateInputs:
    """`UpdateInputs` for n coordinates of `meta_params`' sizes, seeded."""
    J, H = meta_params.num_candidates, meta_params.hidden
    rng = np.random.default_rng(seed)
    gradient = tf.constant(rng.normal(0, 1e-2, n).astype(np.float32))
    weights = tf.constant(rng.normal(size=n).astype(np.float32))
    state = equations.CoordinateState(*(tf.constant(rng.uniform(0.1, 0.5, (H if i < 2 else J, n)).astype(np.float32))
                                        for i in range(6)))
    return UpdateInputs(equations.MetaWeights(*(tf.constant(a) for a in meta_params.weights())), gradient, weights,
                        state)


def measured_update_seconds(meta_params: MetaParams, n: int, repeats: int = 7) -> float:
    """Median time of `HyperAdam`'s compiled update of one variable of n coordinates (the step's
    global norms given, as the optimizer passes them)."""
    meta, gradient, weights, state = update_inputs(meta_params, n)
    clip = equations.feature_clip(meta_params.feature_normalization)
    update = compiled_coordinate_update(meta_params.num_candidates, meta_params.hidden, 1e-24, clip)
    grad_sq, col_sq = equations.feature_sq_scales([gradient], [state.m], meta_params.feature_normalization)
    args = (meta, gradient, list(state), weights, tf.constant(0.005), tf.constant(0.0), grad_sq, col_sq,
            tf.constant(True))
    return median_seconds(lambda: update(*args)[0][-1], repeats)


def floor_estimate(meta_params: MetaParams, n: int, repeats: int = 7) -> dict:
    """The rates measured at n coordinates and the floor of one update of n coordinates they give."""
    J, H = meta_params.num_candidates, meta_params.hidden
    products = product_rates(n, H, repeats)
    transcendentals = transcendental_rates(H, repeats)
    bandwidth = memory_bandwidth(n, 2 * H + 4 * J, repeats)
    counts = transcendentals_per_coordinate(J, H)
    product_seconds = n * flop_per_coordinate(J, H) / max(products.values())
    transcendental_seconds = n * sum(count / transcendentals[kind] for kind, count in counts.items())
    memory_seconds = n * state_bytes_per_coordinate(J, H) / bandwidth
    floor = max(product_seconds + transcendental_seconds, memory_seconds)
    return {
        "n": n, "num_candidates": J, "hidden": H,
        "rates": {"product_flops": products, "transcendentals_per_s": transcendentals,
                  "memory_bytes_per_s": bandwidth},
        "per_coordinate": {"flop": flop_per_coordinate(J, H), "transcendentals": counts,
                           "state_bytes": state_bytes_per_coordinate(J, H)},
        "floor_ms": {"products": 1e3 * product_seconds, "transcendentals": 1e3 * transcendental_seconds,
                     "memory": 1e3 * memory_seconds, "floor": 1e3 * floor},
    }


def update_floor(meta_params: MetaParams, n: int = 1_000_000, repeats: int = 7) -> dict:
    """`floor_estimate`, the measured update of n coordinates and their ratio (`fraction_of_floor`)."""
    result = floor_estimate(meta_params, n, repeats)
    measured = measured_update_seconds(meta_params, n, repeats)
    result["measured_update_ms"] = 1e3 * measured
    result["fraction_of_floor"] = result["floor_ms"]["floor"] / result["measured_update_ms"]
    return result


def format_floor(result: dict) -> str:
    """A short Markdown table of `update_floor`'s result."""
    rates, floor = result["rates"], result["floor_ms"]
    lines = [
        f"One HyperAdam update, n = {result['n']:,} coordinates, J = {result['num_candidates']}, "
        f"H = {result['hidden']}",
        "",
        "| part | rate measured here | time at n |",
        "|---|---|---|",
        f"| products ({result['per_coordinate']['flop']:,} FLOP/coordinate) | graph "
        f"{rates['product_flops']['graph'] / 1e9:.0f} GFLOP/s, XLA {rates['product_flops']['xla'] / 1e9:.0f} "
        f"GFLOP/s (best used) | {floor['products']:.1f} ms |",
        "| transcendentals (" + ", ".join(f"{k} {v}" for k, v in result['per_coordinate']['transcendentals'].items())
        + ") | " + ", ".join(f"{k} {v / 1e9:.2f} G/s" for k, v in rates['transcendentals_per_s'].items())
        + f" | {floor['transcendentals']:.1f} ms |",
        f"| state traffic ({result['per_coordinate']['state_bytes']} B/coordinate) | "
        f"{rates['memory_bytes_per_s'] / 1e9:.1f} GB/s | {floor['memory']:.1f} ms |",
        f"| **floor** = max(products + transcendentals, traffic) | | **{floor['floor']:.1f} ms** |",
        f"| measured update (`compiled_coordinate_update`) | | {result['measured_update_ms']:.1f} ms |",
        "",
        f"Fraction of the floor: {result['fraction_of_floor']:.2f} (floor time / measured time).",
    ]
    return "\n".join(lines)
