"""Where the time of one HyperAdam update goes: the update split at its LSTM output into two XLA programs,
each timed alone on n coordinates, beside the whole update and its two largest products alone.

    python benchmarks/update_stages.py                 # n = 1,000,000, the shipped bundle
    python benchmarks/update_stages.py --n 100000

Stages (the functions of `hyperadam_keras.equations`):
    task state    ĝ, m' (`normalized_features`), x (`preprocess`), (h, c) (`state_cell`)
    adam cells    β, γ logits (`adam_cell_decay_logits`), moments, candidates, ρ (`weight_cell`), d_t
    whole         `update.compiled_coordinate_update` (what `HyperAdam` runs per variable)
    products      Kᵀ [x; h] (LSTM) and [θ_u, θ_r]ᵀ [m'; h] alone, as graph ops (oneDNN on x86), on the
                  state's coordinates-last layout ([K, n])
The stages add up to more than the whole: each writes its outputs to memory and the next reads them.
"""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _median_ms(fn, repeats: int) -> float:
    from hyperadam_keras.lab.eval.floor import median_seconds

    return 1e3 * median_seconds(fn, repeats)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1_000_000, help="coordinates (default 1,000,000)")
    parser.add_argument("--repeats", type=int, default=7, help="timed calls per stage, median (default 7)")
    parser.add_argument("--meta-params", default=None, help="bundle path (default: the shipped default)")
    args = parser.parse_args(argv)

    import tensorflow as tf

    from hyperadam_keras import equations
    from hyperadam_keras.lab.eval.floor import update_inputs
    from hyperadam_keras.bundle import resolve_meta_params
    from hyperadam_keras.update import compiled_coordinate_update

    params = resolve_meta_params(args.meta_params)
    J, H, n = params.num_candidates, params.hidden, args.n
    meta, g, w, s = update_inputs(params, n)
    clip = equations.feature_clip(params.feature_normalization)
    grad_sq, col_sq = equations.feature_sq_scales([g], [s.m], params.feature_normalization)

    @tf.function(jit_compile=True)
    def task_state(g, h, c, m):
        g_hat, m_prime = equations.normalized_features(g, m, grad_sq, col_sq, clip)
        x = equations.preprocess(g_hat, meta.preprocess_kernel, meta.preprocess_bias)
        h, c = equations.state_cell(x, h, c, meta.state_cell_kernel, meta.state_cell_bias)
        return h, c, m_prime, x

    h, c, m_prime, x = task_state(g, s.h, s.c, s.m)

    @tf.function(jit_compile=True)
    def adam_cells(g, h, m_prime, m, v, beta_hat, gamma_hat):
        beta_logits, gamma_logits = equations.adam_cell_decay_logits(
            m_prime, h, meta.beta_kernel, meta.beta_bias, meta.gamma_kernel, meta.gamma_bias)
        m, v, beta_hat, gamma_hat = equations.adam_cell_moments(
            g, m, v, beta_hat, gamma_hat, tf.sigmoid(beta_logits), tf.sigmoid(gamma_logits),
            tf.sigmoid(-beta_logits), tf.sigmoid(-gamma_logits))
        m_corrected, root = equations.bias_corrected_moments(m, v, beta_hat, gamma_hat)
        rho = equations.weight_cell(h, meta.weight_kernel, meta.weight_bias)
        return equations.combine_corrected_moments(rho, m_corrected, root, 1e-24), m, v, beta_hat, gamma_hat

    whole = compiled_coordinate_update(J, H, 1e-24, clip)
    lstm_in = tf.concat([x, s.h], 0)
    cell_in = tf.concat([m_prime, h], 0)
    cell_kernel = tf.concat([meta.beta_kernel, meta.gamma_kernel], -1)
    product = tf.function(lambda a, k: tf.matmul(k, a, transpose_a=True)[-1, -1])
    timings = {
        "task state (XLA)": _median_ms(lambda: task_state(g, s.h, s.c, s.m)[0][-1, -1], args.repeats),
        "adam cells (XLA)": _median_ms(lambda: adam_cells(g, h, m_prime, s.m, s.v, s.beta_hat,
                                                          s.gamma_hat)[0][-1], args.repeats),
        "whole update (XLA)": _median_ms(lambda: whole(meta, g, list(s), w, tf.constant(0.005), tf.constant(0.0),
                                                      grad_sq, col_sq, tf.constant(True))[0][-1], args.repeats),
        "product Kᵀ [x; h] alone (graph)": _median_ms(lambda: product(lstm_in, meta.state_cell_kernel), args.repeats),
        "product [θu, θr]ᵀ [m'; h] alone (graph)": _median_ms(lambda: product(cell_in, cell_kernel), args.repeats),
    }
    print(f"One HyperAdam update, n = {n:,}, J = {J}, H = {H} (medians of {args.repeats})\n")
    print("| stage | ms |\n|---|---|")
    for name, ms in timings.items():
        print(f"| {name} | {ms:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
