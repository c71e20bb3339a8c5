"""HyperAdam under tf.distribute.MirroredStrategy over the 2 logical CPU devices of conftest.py:
the same trajectory as one device for the same global batch (global norms after the all-reduce)."""

import keras
import numpy as np
import tensorflow as tf

import numpy_reference as ref
from hyperadam_keras import HyperAdam, random_meta_params

PARAMS = random_meta_params(4, 3, seed=2, scale=1.0)


def build_model():
    model = keras.Sequential([keras.Input((12,)), keras.layers.Dense(8, activation="tanh"),
                              keras.layers.Dense(3)])
    rng = np.random.default_rng(0)
    model.set_weights([rng.normal(0, 0.3, w.shape).astype(np.float32) for w in model.get_weights()])
    return model


def compile_model(model):
    model.compile(optimizer=HyperAdam(learning_rate=0.02, meta_params=PARAMS, jit_compile=False),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), jit_compile=False)


def test_mirrored_strategy_matches_single_device(mirrored_strategy):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(64, 12)).astype(np.float32)
    y = rng.integers(0, 3, 64)

    single = build_model()
    compile_model(single)
    w0 = ref.flatten(single.get_weights())
    single.fit(x, y, batch_size=32, epochs=2, shuffle=False, verbose=0)  # 4 steps of global batch 32

    strategy = mirrored_strategy
    assert strategy.num_replicas_in_sync == 2
    with strategy.scope():
        mirrored = build_model()
        compile_model(mirrored)
    mirrored.fit(x, y, batch_size=32, epochs=2, shuffle=False, verbose=0)

    w_single, w_mirrored = ref.flatten(single.get_weights()), ref.flatten(mirrored.get_weights())
    assert np.linalg.norm(w_single - w0) > 1e-2
    assert ref.rel_err(w_mirrored - w0, w_single - w0) < 1e-5
    # the state too: each replica's slot copies equal the single-device slots
    opt_single, opt_mirrored = single.optimizer, mirrored.optimizer
    for v_single, v_mirrored in zip(single.trainable_variables, mirrored.trainable_variables):
        for name, slot in opt_single.slots(v_single).items():
            mirrored_slot = opt_mirrored.slots(v_mirrored)[name]
            for value in strategy.experimental_local_results(mirrored_slot.value):
                assert ref.rel_err(value.numpy(), slot.numpy()) < 1e-5, name
