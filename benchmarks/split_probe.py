"""Does splitting one variable's update into column parts, run side by side, beat one compiled call?

HyperAdam's update of a tensor is one XLA program over its n coordinates (`update.compiled_coordinate_update`).
The probe times, on the state held in variables and read inside one outer `tf.function` as the optimizer
reads it, slices and concatenation included:

    base               one compiled call on all n coordinates (what `HyperAdam` runs)
    xla-halves         one compiled call that updates the two column halves apart and concatenates them
    halves, quarters   2 or 4 compiled calls on column parts, run side by side by TensorFlow
    halves-chunked     2 calls side by side, each a `while` loop over blocks of 8,192 coordinates (only when
                       n is a multiple of 16,384)

and checks each against base bit for bit (the columns are independent, so a split may only reorder work).

    python benchmarks/split_probe.py                   # n = 1,048,576, the default bundle, 3 rounds
    python benchmarks/split_probe.py --n 15680         # the paper MLP's largest tensor
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

_BLOCK = 8192


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=2 ** 20, help="coordinates (default 1,048,576)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (default 3)")
    parser.add_argument("--repeats", type=int, default=7, help="timed calls per variant and round (default 7)")
    parser.add_argument("--meta-params", default=None, help="bundle (default: the shipped default)")
    args = parser.parse_args(argv)

    import numpy as np
    import tensorflow as tf
    from tensorflow.compiler.tf2xla.python import xla

    from hyperadam_keras import equations, update
    from hyperadam_keras.lab.eval.floor import median_seconds, update_inputs
    from hyperadam_keras.bundle import resolve_meta_params

    params = resolve_meta_params(args.meta_params)
    n, clip = args.n, equations.feature_clip(params.feature_normalization)
    meta, gradient, weights, state = update_inputs(params, n)
    slots = [tf.Variable(s) for s in state]
    grad_sq, col_sq = equations.feature_sq_scales([gradient], [state.m], params.feature_normalization)
    scalars = (tf.constant(0.001), tf.constant(0.0), grad_sq, col_sq, tf.constant(True))
    one_call = update.compiled_coordinate_update(params.num_candidates, params.hidden, 1e-24, clip, None)

    def parts_of(count):  # [(start, stop)] of `count` column parts of near-equal size
        bounds = np.linspace(0, n, count + 1).astype(int)
        return list(zip(bounds[:-1], bounds[1:]))

    def plain(g, st, w):
        return update.coordinate_update(meta, g, st, w, *scalars, epsilon=1e-24, feature_clip=clip)

    @tf.function(jit_compile=True)
    def xla_halves(g, st, w):
        outs = [plain(g[a:b], [s[:, a:b] for s in st], w[a:b]) for a, b in parts_of(2)]
        return tf.concat([o[0] for o in outs], 0), [tf.concat([o[1][i] for o in outs], 1) for i in range(6)]

    @tf.function(jit_compile=True)
    def chunked(g, st, w):
        def body(i, d_acc, st_acc):
            start = i * _BLOCK
            d, new = plain(tf.slice(g, [start], [_BLOCK]), [tf.slice(s, [0, start], [s.shape[0], _BLOCK]) for s in st],
                           tf.slice(w, [start], [_BLOCK]))
            return (i + 1, xla.dynamic_update_slice(d_acc, d, [start]),
                    [xla.dynamic_update_slice(a, x, [0, start]) for a, x in zip(st_acc, new)])
        _, d, new = tf.while_loop(lambda i, *_: i < tf.shape(g)[0] // _BLOCK, body,
                                  (tf.constant(0), tf.zeros_like(g), [tf.zeros_like(s) for s in st]))
        return d, new

    def side_by_side(count, fn):
        @tf.function
        def step():
            st = [s.read_value() for s in slots]
            outs = [fn(gradient[a:b], [s[:, a:b] for s in st], weights[a:b]) for a, b in parts_of(count)]
            if count == 1:
                return outs[0][0], list(outs[0][1])
            return tf.concat([o[0] for o in outs], 0), [tf.concat([o[1][i] for o in outs], 1) for i in range(6)]
        return step

    call = lambda g, st, w: one_call(meta, g, st, w, *scalars)  # noqa: E731
    variants = {"base": side_by_side(1, call), "xla-halves": side_by_side(1, xla_halves),
                "halves": side_by_side(2, call), "quarters": side_by_side(4, call)}
    if n % (2 * _BLOCK) == 0:
        variants["halves-chunked"] = side_by_side(2, chunked)
    reference = variants["base"]()
    for name, fn in variants.items():
        delta, new = fn()
        same = bool(tf.reduce_all(delta == reference[0])) and all(
            bool(tf.reduce_all(a == b)) for a, b in zip(new, reference[1]))
        print(f"{name}: {'the same bits as base' if same else 'DIFFERENT from base'}", flush=True)
    print(f"n = {n:,}, J = {params.num_candidates}, H = {params.hidden}; ms per update, median of {args.repeats}:")
    for _ in range(args.rounds):
        print("  " + ", ".join(f"{name} {1e3 * median_seconds(lambda: fn()[0][-1], args.repeats):.1f}"
                               for name, fn in variants.items()), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
