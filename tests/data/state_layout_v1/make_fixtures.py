"""Writes the fixtures of `tests/test_state_layout.py`: a `.keras` file and a `tf.train.Checkpoint` of a
small model trained 3 steps by `HyperAdam()` with the state layout of versions up to 2026-12-01 (slots
of shape S + (K,), coordinates first), and the weights and slots after 3 more steps, as that version
computed them. Run once at commit f988e4c (the last [n, K] version); kept to show how the files were
made. Re-running it with a later version would write that version's layout, not this one. `HyperAdam()`
then ran the bundle shipped as "paper" since 2026-12-03: the optimizers below name it.

    python tests/data/state_layout_v1/make_fixtures.py
"""

from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from hyperadam_keras import HyperAdam

HERE = Path(__file__).resolve().parent
SLOT_NAMES = ("h", "c", "m", "v", "beta_hat", "gamma_hat")


def data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 5)).astype(np.float32)
    y = (x @ rng.normal(size=(5, 1)) + 0.1 * rng.normal(size=(64, 1))).astype(np.float32)
    return x, y


def model():
    """Dense(20) on 5 inputs: its bias (20,) has slots (20, 20) in either layout (the ambiguous case)."""
    keras.utils.set_random_seed(0)
    net = keras.Sequential([keras.Input((5,)), keras.layers.Dense(20, activation="sigmoid"), keras.layers.Dense(1)])
    net.compile(optimizer=HyperAdam(meta_params="paper"), loss="mse")
    return net


def fit(net, steps=3):
    x, y = data()
    net.fit(x, y, batch_size=64, epochs=steps, shuffle=False, verbose=0)


def slots(net):
    return {f"{i}/{name}": net.optimizer.slots(v)[name].numpy()
            for i, v in enumerate(net.trainable_variables) for name in SLOT_NAMES}


def bias_only():
    """A lone variable of shape (20,) updated by `apply`: every slot is ambiguous by shape."""
    variable = tf.Variable(np.linspace(-1.0, 1.0, 20).astype(np.float32), name="bias_only")
    optimizer = HyperAdam(meta_params="paper")
    target = np.linspace(1.0, -1.0, 20).astype(np.float32)
    for _ in range(3):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(tf.square(variable - target))
        optimizer.apply([tape.gradient(loss, variable)], [variable])
    return variable, optimizer, target


def main():
    net = model()
    fit(net)
    net.save(HERE / "model.keras")
    tf.train.Checkpoint(model=net, optimizer=net.optimizer).write(str(HERE / "ckpt"))
    fit(net)
    np.savez(HERE / "continued.npz", **{f"weight/{i}": w for i, w in enumerate(net.get_weights())},
             **{f"slot/{k}": v for k, v in slots(net).items()})

    variable, optimizer, target = bias_only()
    tf.train.Checkpoint(variable=variable, optimizer=optimizer).write(str(HERE / "bias_only"))
    for _ in range(3):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(tf.square(variable - target))
        optimizer.apply([tape.gradient(loss, variable)], [variable])
    np.savez(HERE / "bias_only_continued.npz", variable=variable.numpy(),
             **{f"slot/{name}": s.numpy() for name, s in optimizer.slots(variable).items()})


if __name__ == "__main__":
    main()
