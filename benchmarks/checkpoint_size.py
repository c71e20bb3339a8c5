"""What a checkpoint of a model trained with HyperAdam costs on disk (the README's "Saving and loading").

The 784-512-10 MLP (407,050 parameters) after one step of `fit` with `HyperAdam()` and with
`HyperAdam(meta_params="paper")`: the sizes of `model.save` (`.keras`, weights and optimizer state),
`model.save_weights` (`.weights.h5`), `model.save(..., include_optimizer=False)` (ignored by Keras 3's
`.keras` format), the uncompiled copy without the optimizer, and the length of the optimizer's serialized
config.

    python benchmarks/checkpoint_size.py
"""

from __future__ import annotations

import json
import os
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
os.environ.setdefault("HYPERADAM_KERAS_QUIET_START", "1")

import hyperadam_keras  # noqa: E402,F401  (quiet start first)
import keras  # noqa: E402
import numpy as np  # noqa: E402

from hyperadam_keras import HyperAdam  # noqa: E402


def sizes(meta_params: str, directory: str) -> dict:
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((784,)), keras.layers.Dense(512, activation="relu"), keras.layers.Dense(10)])
    model.compile(optimizer=HyperAdam(meta_params=meta_params),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    rng = np.random.default_rng(0)
    model.fit(rng.random((128, 784), dtype=np.float32), rng.integers(0, 10, 128), epochs=1, verbose=0)
    paths = {name: os.path.join(directory, f"{meta_params}_{name}") for name in
             ("model.keras", "model.weights.h5", "no_optimizer.keras", "uncompiled.keras")}
    model.save(paths["model.keras"])
    model.save_weights(paths["model.weights.h5"])
    model.save(paths["no_optimizer.keras"], include_optimizer=False)
    bare = model.__class__.from_config(model.get_config())
    bare.set_weights(model.get_weights())
    bare.save(paths["uncompiled.keras"])
    parameters = model.count_params()
    result = {"bundle": meta_params, "parameters": parameters,
              "optimizer_config_chars": len(json.dumps(keras.saving.serialize_keras_object(model.optimizer)))}
    for name, path in paths.items():
        size = os.path.getsize(path)
        result[name] = {"MB": round(size / 1e6, 1), "bytes_per_parameter": round(size / parameters, 1)}
    return result


def main() -> int:
    with tempfile.TemporaryDirectory() as directory:
        for meta_params in ("default", "paper"):
            print(json.dumps(sizes(meta_params, directory)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
