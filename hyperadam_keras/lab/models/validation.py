"""The validation models: the four hand trials of issue 14 that showed the shipped default step unsafe,
as `compare` builders. Defaults and recipes are chosen on these (and on the meta-training distribution's
held-out tasks), never on the `generalization` suite that reports them.

All train on the 4,000 training images of the bundled MNIST (`load_mnist_split`), validated on the
1,000 held-out ones, with Keras default initializers.
"""

from __future__ import annotations

import keras

from hyperadam_keras.lab.data.mnist import load_mnist_split


def _classification(model: keras.Model, batch_size: int, *, epochs: int | None = None, steps: int | None = None,
                    image_shape: tuple[int, ...] = (784,)) -> dict:
    x_train, y_train, x_test, y_test = load_mnist_split()
    x_train, x_test = x_train.reshape((-1,) + image_shape), x_test.reshape((-1,) + image_shape)
    build = {"model": model, "loss": keras.losses.SparseCategoricalCrossentropy(from_logits=True),
             "x": x_train, "y": y_train, "validation_data": (x_test, y_test), "batch_size": batch_size,
             "metrics": ["accuracy"]}
    build.update({"epochs": epochs} if epochs is not None else {"steps": steps})
    return build


def beginner_mlp() -> dict:
    """The Keras beginner MLP: Dense(512, relu), Dropout(0.2), Dense(10); batch 128, 3 epochs (96 steps)."""
    model = keras.Sequential([keras.Input((784,)), keras.layers.Dense(512, activation="relu"),
                              keras.layers.Dropout(0.2), keras.layers.Dense(10)])
    return _classification(model, 128, epochs=3)


def mlp_256_256() -> dict:
    """784-256-256-10 ReLU MLP; batch 128, 300 steps."""
    model = keras.Sequential([keras.Input((784,)), keras.layers.Dense(256, activation="relu"),
                              keras.layers.Dense(256, activation="relu"), keras.layers.Dense(10)])
    return _classification(model, 128, steps=300)


def bn_cnn() -> dict:
    """A small CNN with BatchNormalization: [conv 3×3 (16, 32) - BN - ReLU - max-pool] × 2, Dense(10);
    batch 64, 400 steps (enough for BatchNormalization's moving statistics, momentum 0.99, to forget
    their initial values before the final inference-mode evaluation)."""
    layers = [keras.Input((28, 28, 1))]
    for filters in (16, 32):
        layers += [keras.layers.Conv2D(filters, 3, padding="same"), keras.layers.BatchNormalization(),
                   keras.layers.Activation("relu"), keras.layers.MaxPooling2D()]
    model = keras.Sequential(layers + [keras.layers.Flatten(), keras.layers.Dense(10)])
    return _classification(model, 64, steps=400, image_shape=(28, 28, 1))


def tiny_transformer() -> dict:
    """One transformer block over the 28 rows of an image (28 tokens of 28 pixels): Dense(64) embedding
    plus a learned position embedding, 4-head self-attention and a ReLU feed-forward layer (128), each
    with a residual connection and LayerNorm, mean-pooled into Dense(10); batch 64, 500 steps."""
    tokens = keras.Input((28, 28))
    x = keras.layers.Dense(64)(tokens)
    x = x + keras.layers.Embedding(28, 64)(keras.ops.arange(28))
    attention = keras.layers.MultiHeadAttention(num_heads=4, key_dim=16)(x, x)
    x = keras.layers.LayerNormalization()(x + attention)
    feed_forward = keras.layers.Dense(64)(keras.layers.Dense(128, activation="relu")(x))
    x = keras.layers.LayerNormalization()(x + feed_forward)
    outputs = keras.layers.Dense(10)(keras.layers.GlobalAveragePooling1D()(x))
    return _classification(keras.Model(tokens, outputs), 64, steps=500, image_shape=(28, 28))


BUILDERS = {"beginner-mlp": beginner_mlp, "mlp-256-256": mlp_256_256, "bn-cnn": bn_cnn,
            "tiny-transformer": tiny_transformer}
