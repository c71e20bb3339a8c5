"""The slot layout's effect on the update: the earlier [n, K] update (slots S + (K,), versions up to
2026-12-01) against the shipped coordinates-last one ([K, n]) on the same inputs.

    python benchmarks/layout_probe.py                  # n = 1,000,000, the shipped bundle
    python benchmarks/layout_probe.py --n 100000

XLA vectorizes the minor axis. With [n, 20] tensors that axis has 20 entries, which AVX-512's 16 lanes
cover badly; with [20, n] it is n. The probe keeps the earlier layout's update (the paper's "norm"
features; other normalizations are rejected) as it was written then, checks that it gives the shipped
update's Δw and state (largest relative difference printed), and times both, alternating.
"""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def coordinates_first_update(meta, gradient, state, weights, learning_rate, grad_sq_norm, moment_col_sq_norms,
                             epsilon):
    """`update.coordinate_update` (no weight decay, a finite step, no cap) of the earlier layout:
    every state tensor [n, K], one row per coordinate, as the paper writes it."""
    import tensorflow as tf

    h0, c0, m0, v0, beta_hat0, gamma_hat0 = state
    g_hat = gradient / tf.sqrt(grad_sq_norm + 1e-16)
    x = tf.nn.elu(g_hat[:, None] * meta.preprocess_kernel + meta.preprocess_bias)
    z = tf.matmul(tf.concat([x, h0], -1), meta.state_cell_kernel) + meta.state_cell_bias
    i, f, g, o = tf.split(z, 4, -1)
    c = tf.sigmoid(f) * c0 + tf.sigmoid(i) * tf.tanh(g)
    h = tf.sigmoid(o) * tf.tanh(c)
    m_prime = m0 / tf.sqrt(moment_col_sq_norms + 1e-16)
    kernel = tf.concat([meta.beta_kernel, meta.gamma_kernel], -1)
    logits = tf.matmul(tf.concat([m_prime, h], -1), kernel) + tf.concat([meta.beta_bias, meta.gamma_bias], 0)
    beta_logits, gamma_logits = tf.split(logits, 2, -1)
    beta, gamma = tf.sigmoid(beta_logits), tf.sigmoid(gamma_logits)
    one_minus_beta, one_minus_gamma = tf.sigmoid(-beta_logits), tf.sigmoid(-gamma_logits)
    gradient_column = gradient[:, None]
    m = beta * m0 + one_minus_beta * gradient_column
    v = gamma * v0 + one_minus_gamma * tf.square(gradient_column)
    beta_hat = beta * beta_hat0 + one_minus_beta
    gamma_hat = gamma * gamma_hat0 + one_minus_gamma
    m_corrected, v_corrected = tf.math.divide_no_nan(m, beta_hat), tf.math.divide_no_nan(v, gamma_hat)
    positive = v_corrected > 0
    root = tf.where(positive, tf.sqrt(tf.where(positive, v_corrected, 1.0)), 0.0)
    rho = tf.nn.elu(tf.matmul(h, meta.weight_kernel) + meta.weight_bias)
    direction = tf.reduce_sum(rho * m_corrected / (root + epsilon), -1)
    return learning_rate * direction, [h, c, m, v, beta_hat, gamma_hat]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1_000_000, help="coordinates (default 1,000,000)")
    parser.add_argument("--repeats", type=int, default=7, help="timed calls per variant and round (default 7)")
    parser.add_argument("--rounds", type=int, default=4, help="alternating rounds of the two (default 4)")
    parser.add_argument("--meta-params", default="paper",
                        help="bundle path or shipped name (default: 'paper', J = H = 20 with the 'norm' features the "
                             "probe implements)")
    args = parser.parse_args(argv)

    import numpy as np
    import tensorflow as tf

    from hyperadam_keras import equations
    from hyperadam_keras.lab.eval.floor import median_seconds, update_inputs
    from hyperadam_keras.bundle import resolve_meta_params
    from hyperadam_keras.update import compiled_coordinate_update

    params = resolve_meta_params(args.meta_params)
    if params.feature_normalization != "norm":
        parser.error(f"the probe implements the 'norm' features only; the bundle uses {params.feature_normalization!r}")
    J, H, n, epsilon = params.num_candidates, params.hidden, args.n, 1e-24
    meta, gradient, weights, state = update_inputs(params, n)
    state = list(state)
    state_rows = [tf.constant(np.ascontiguousarray(s.numpy().T)) for s in state]  # [n, K]
    grad_sq, col_sq = equations.feature_sq_scales([gradient], [state[2]], "norm")
    rate = tf.constant(0.005)

    shipped = compiled_coordinate_update(J, H, epsilon, None)
    probe = tf.function(lambda *a: coordinates_first_update(*a, epsilon=epsilon), jit_compile=True)
    run_shipped = lambda: shipped(meta, gradient, state, weights, rate, tf.constant(0.0), grad_sq, col_sq,
                                  tf.constant(True))
    run_probe = lambda: probe(meta, gradient, state_rows, weights, rate, grad_sq, col_sq)

    (delta, new_state), (delta_t, new_state_t) = run_shipped(), run_probe()
    differences = [float(tf.reduce_max(tf.abs(delta - delta_t)) / tf.reduce_max(tf.abs(delta)))]
    differences += [float(tf.reduce_max(tf.abs(a - tf.transpose(b))) / tf.reduce_max(tf.abs(a)))
                    for a, b in zip(new_state, new_state_t)]
    times = {"earlier [n, K]": [], "shipped [K, n]": []}
    for _ in range(args.rounds):  # alternated, so a change of the machine's load hits both
        times["earlier [n, K]"].append(median_seconds(lambda: run_probe()[0][-1], args.repeats))
        times["shipped [K, n]"].append(median_seconds(lambda: run_shipped()[0][-1], args.repeats))
    ms = {name: 1e3 * float(np.median(t)) for name, t in times.items()}
    print(f"One HyperAdam update, n = {n:,}, J = {J}, H = {H} (median of {args.rounds} rounds of "
          f"{args.repeats})\n")
    print("| layout | ms |\n|---|---|")
    for name, value in ms.items():
        print(f"| {name} | {value:.1f} |")
    print(f"\nspeed-up of the shipped layout {ms['earlier [n, K]'] / ms['shipped [K, n]']:.2f}×; largest relative difference of Δw "
          f"and the six state tensors: {max(differences):.1e}")
    return 0 if max(differences) < 1e-5 else 1


if __name__ == "__main__":
    sys.exit(main())
