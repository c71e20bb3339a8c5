"""A tiny `compare` builder for the fit-suite tests (a module of its own: `load_builder` imports it by path)."""

import keras
import numpy as np


def tiny_classifier() -> dict:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(96, 8)).astype(np.float32)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(np.int32)
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(8, activation="relu"),
                              keras.layers.Dense(2, activation="softmax")])
    return {"model": model, "loss": "sparse_categorical_crossentropy", "x": x[:64], "y": y[:64],
            "validation_data": (x[64:], y[64:]), "batch_size": 16, "steps": 12, "metrics": ["accuracy"]}
