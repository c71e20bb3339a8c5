"""The `generalization` suite's models: what Keras users train, unlike the meta-training tasks (the
paper's 20-unit MLPs and sine LSTMs) and unlike the `validation` models defaults are chosen on.

Each function is a `compare` builder (`lab.eval.compare_builder`): a fresh, uncompiled model with Keras
default initializers, its loss, training data and a held-out split. Data is offline: the bundled MNIST
(`load_mnist_split`: 4,000 training and 1,000 held-out images), data sets that scikit-learn ships
(digits, breast cancer, diabetes) and data generated from a fixed seed. Keep these tasks out of every
meta-training mixture and out of every choice of a default: they measure generalization.
"""

from __future__ import annotations

import functools
from typing import Callable

import keras
import numpy as np

from hyperadam_keras.lab.data.mnist import load_mnist_split

DATA_SEED = 1234  # the generated data sets and the held-out splits of scikit-learn's (not the run seeds)
SPARSE_XENT = "sparse_categorical_crossentropy"


def _split(x: np.ndarray, y: np.ndarray, held_out: float) -> tuple:
    """A fixed (DATA_SEED) random split into training and held-out parts."""
    order = np.random.default_rng(DATA_SEED).permutation(len(x))
    cut = int(round(len(x) * (1 - held_out)))
    return x[order[:cut]], y[order[:cut]], x[order[cut:]], y[order[cut:]]


def _standardize(train: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    """Zero mean, unit variance per feature, with the training part's statistics."""
    mean, std = train.mean(axis=0), train.std(axis=0) + 1e-8
    return [((a - mean) / std).astype(np.float32) for a in (train, *others)]


@functools.lru_cache(maxsize=None)
def _digits() -> tuple:
    """scikit-learn's 1,797 8×8 digits, pixels / 16, split 1,437 / 360."""
    from hyperadam_keras.lab._requires import require
    datasets = require("sklearn.datasets", feature="the generalization suite's scikit-learn data")
    data = datasets.load_digits()
    return _split((data.data / 16.0).astype(np.float32), data.target.astype(np.int32), 0.2)


def _classifier(model: keras.Model, data: tuple, batch_size: int, steps: int, loss=SPARSE_XENT) -> dict:
    x, y, x_val, y_val = data
    return {"model": model, "loss": loss, "x": x, "y": y, "validation_data": (x_val, y_val),
            "batch_size": batch_size, "steps": steps, "metrics": ["accuracy"]}


def _mnist(shape: tuple[int, ...] = (784,)) -> tuple:
    x, y, x_val, y_val = load_mnist_split()
    return x.reshape((-1,) + shape), y, x_val.reshape((-1,) + shape), y_val


def _mlp(inputs: int, widths: tuple[int, ...], activation: str, dropout: float = 0.0) -> keras.Model:
    layers: list = [keras.Input((inputs,))]
    for width in widths:
        layers.append(keras.layers.Dense(width, activation=activation))
        if dropout:
            layers.append(keras.layers.Dropout(dropout))
    return keras.Sequential(layers + [keras.layers.Dense(10, activation="softmax")])


def mlp_128_relu() -> dict:
    """MNIST, 784-128-10 ReLU; batch 32, 1,000 steps."""
    return _classifier(_mlp(784, (128,), "relu"), _mnist(), 32, 1000)


def mlp_4x128_gelu() -> dict:
    """MNIST, 784-128-128-128-128-10 GELU (a deeper MLP); batch 256, 300 steps."""
    return _classifier(_mlp(784, (128,) * 4, "gelu"), _mnist(), 256, 300)


def mlp_1024_gelu_dropout() -> dict:
    """Digits, 64-1024-10 GELU with Dropout(0.3) (a wide layer); batch 64, 600 steps."""
    return _classifier(_mlp(64, (1024,), "gelu", dropout=0.3), _digits(), 64, 600)


def cnn_mnist() -> dict:
    """MNIST, a plain CNN: conv 3×3 (32) ReLU - max-pool - conv 3×3 (64) ReLU - max-pool - Dense(10);
    batch 64, 500 steps."""
    model = keras.Sequential([
        keras.Input((28, 28, 1)),
        keras.layers.Conv2D(32, 3, activation="relu"), keras.layers.MaxPooling2D(),
        keras.layers.Conv2D(64, 3, activation="relu"), keras.layers.MaxPooling2D(),
        keras.layers.Flatten(), keras.layers.Dense(10, activation="softmax")])
    return _classifier(model, _mnist((28, 28, 1)), 64, 500)


def cnn_bn_digits() -> dict:
    """Digits as 8×8 images, a CNN with BatchNormalization: [conv 3×3 - BN - ReLU] (32, 64), global
    average pooling, Dense(10); batch 32, 800 steps."""
    x, y, x_val, y_val = _digits()
    layers = [keras.Input((8, 8, 1))]
    for filters in (32, 64):
        layers += [keras.layers.Conv2D(filters, 3, padding="same"), keras.layers.BatchNormalization(),
                   keras.layers.Activation("relu")]
    model = keras.Sequential(layers + [keras.layers.GlobalAveragePooling2D(),
                                       keras.layers.Dense(10, activation="softmax")])
    return _classifier(model, (x.reshape(-1, 8, 8, 1), y, x_val.reshape(-1, 8, 8, 1), y_val), 32, 800)


def resnet_mnist() -> dict:
    """MNIST, a small residual network: conv 3×3 stride 2 (16), two residual blocks
    [conv - BN - ReLU - conv - BN] + identity, ReLU, global average pooling, Dense(10); batch 128,
    300 steps."""
    inputs = keras.Input((28, 28, 1))
    x = keras.layers.Conv2D(16, 3, strides=2, padding="same", activation="relu")(inputs)
    for _ in range(2):
        y = keras.layers.Conv2D(16, 3, padding="same")(x)
        y = keras.layers.Activation("relu")(keras.layers.BatchNormalization()(y))
        y = keras.layers.BatchNormalization()(keras.layers.Conv2D(16, 3, padding="same")(y))
        x = keras.layers.Activation("relu")(keras.layers.Add()([x, y]))
    outputs = keras.layers.Dense(10, activation="softmax")(keras.layers.GlobalAveragePooling2D()(x))
    return _classifier(keras.Model(inputs, outputs), _mnist((28, 28, 1)), 128, 300)


def transformer_digits() -> dict:
    """Digits as 8 tokens (rows) of 8 pixels, one transformer block: Dense(32) embedding plus a learned
    position embedding, 2-head self-attention and a GELU feed-forward layer (64), each with a residual
    connection and LayerNorm (pre-norm), mean-pooled into Dense(10); batch 32, 1,000 steps."""
    x, y, x_val, y_val = _digits()
    tokens = keras.Input((8, 8))
    h = keras.layers.Dense(32)(tokens) + keras.layers.Embedding(8, 32)(keras.ops.arange(8))
    normed = keras.layers.LayerNormalization()(h)
    h = h + keras.layers.MultiHeadAttention(num_heads=2, key_dim=16)(normed, normed)
    normed = keras.layers.LayerNormalization()(h)
    h = h + keras.layers.Dense(32)(keras.layers.Dense(64, activation="gelu")(normed))
    h = keras.layers.LayerNormalization()(h)
    outputs = keras.layers.Dense(10, activation="softmax")(keras.layers.GlobalAveragePooling1D()(h))
    return _classifier(keras.Model(tokens, outputs), (x.reshape(-1, 8, 8), y, x_val.reshape(-1, 8, 8), y_val),
                       32, 1000)


def lstm_digits() -> dict:
    """Digits as sequences of 8 rows of 8 pixels, LSTM(64), Dense(10); batch 64, 500 steps."""
    x, y, x_val, y_val = _digits()
    model = keras.Sequential([keras.Input((8, 8)), keras.layers.LSTM(64),
                              keras.layers.Dense(10, activation="softmax")])
    return _classifier(model, (x.reshape(-1, 8, 8), y, x_val.reshape(-1, 8, 8), y_val), 64, 500)


@functools.lru_cache(maxsize=None)
def _bag_of_words() -> tuple:
    """Generated text classification: 5,000 documents of 20 tokens from a 2,000-word vocabulary with a
    Zipf-like frequency; each word has a fixed random polarity, and a document's label is the sign of
    its words' summed polarity. Split 4,000 / 1,000."""
    rng = np.random.default_rng(DATA_SEED)
    vocabulary, length, count = 2000, 20, 5000
    frequency = 1.0 / np.arange(1, vocabulary + 1)
    tokens = rng.choice(vocabulary, size=(count, length), p=frequency / frequency.sum()).astype(np.int32)
    polarity = rng.normal(size=vocabulary)
    labels = (polarity[tokens].sum(axis=1) > 0).astype(np.int32)
    return _split(tokens, labels, 0.2)


def embedding_bag() -> dict:
    """Generated text (`_bag_of_words`), Embedding(2000, 32) (sparse gradients: only the rows of a
    batch's words), global average pooling, Dense(2); batch 64, 600 steps."""
    model = keras.Sequential([keras.Input((20,), dtype="int32"), keras.layers.Embedding(2000, 32),
                              keras.layers.GlobalAveragePooling1D(), keras.layers.Dense(2, activation="softmax")])
    return _classifier(model, _bag_of_words(), 64, 600)


def autoencoder_mnist() -> dict:
    """MNIST, an autoencoder 784-128-32-128-784 (ReLU, sigmoid output), binary cross-entropy on the
    pixels; batch 128, 500 steps."""
    x, _, x_val, _ = _mnist()
    model = keras.Sequential([keras.Input((784,)), keras.layers.Dense(128, activation="relu"),
                              keras.layers.Dense(32, activation="relu"), keras.layers.Dense(128, activation="relu"),
                              keras.layers.Dense(784, activation="sigmoid")])
    return {"model": model, "loss": "binary_crossentropy", "x": x, "y": x, "validation_data": (x_val, x_val),
            "batch_size": 128, "steps": 500}


def regression_diabetes() -> dict:
    """scikit-learn's diabetes regression (442 patients, 10 features; features and target standardized),
    MLP 10-64-64-1 ReLU, mean squared error; batch 32, 1,000 steps; split 354 / 88."""
    from hyperadam_keras.lab._requires import require
    datasets = require("sklearn.datasets", feature="the generalization suite's scikit-learn data")
    data = datasets.load_diabetes()
    x, y, x_val, y_val = _split(data.data, data.target[:, None], 0.2)
    x, x_val = _standardize(x, x_val)
    y, y_val = _standardize(y, y_val)
    model = keras.Sequential([keras.Input((10,)), keras.layers.Dense(64, activation="relu"),
                              keras.layers.Dense(64, activation="relu"), keras.layers.Dense(1)])
    return {"model": model, "loss": "mse", "x": x, "y": y, "validation_data": (x_val, y_val),
            "batch_size": 32, "steps": 1000}


def logistic_breast_cancer() -> dict:
    """scikit-learn's breast cancer data (569 samples, 30 standardized features), logistic regression
    (Dense(1, sigmoid)), binary cross-entropy; batch 32, 3,000 steps; split 455 / 114."""
    from hyperadam_keras.lab._requires import require
    datasets = require("sklearn.datasets", feature="the generalization suite's scikit-learn data")
    data = datasets.load_breast_cancer()
    x, y, x_val, y_val = _split(data.data, data.target.astype(np.float32)[:, None], 0.2)
    x, x_val = _standardize(x, x_val)
    model = keras.Sequential([keras.Input((30,)), keras.layers.Dense(1, activation="sigmoid")])
    return {"model": model, "loss": "binary_crossentropy", "x": x, "y": y, "validation_data": (x_val, y_val),
            "batch_size": 32, "steps": 3000, "metrics": ["accuracy"]}


@functools.lru_cache(maxsize=None)
def _adding_problem() -> tuple:
    """The adding problem (Hochreiter & Schmidhuber): 5,000 sequences of 30 steps of (value ~ U(0, 1),
    marker); exactly two steps are marked, and the target is the sum of their values. Split 4,000 / 1,000."""
    rng = np.random.default_rng(DATA_SEED)
    count, length = 5000, 30
    values = rng.uniform(size=(count, length))
    markers = np.zeros((count, length))
    for row in range(count):
        markers[row, rng.choice(length, size=2, replace=False)] = 1.0
    x = np.stack([values, markers], axis=-1).astype(np.float32)
    y = (values * markers).sum(axis=1, keepdims=True).astype(np.float32)
    return _split(x, y, 0.2)


def gru_adding() -> dict:
    """The adding problem (`_adding_problem`), GRU(32), Dense(1), mean squared error; batch 64, 800 steps."""
    model = keras.Sequential([keras.Input((30, 2)), keras.layers.GRU(32), keras.layers.Dense(1)])
    x, y, x_val, y_val = _adding_problem()
    return {"model": model, "loss": "mse", "x": x, "y": y, "validation_data": (x_val, y_val),
            "batch_size": 64, "steps": 800}


BUILDERS: dict[str, Callable[[], dict]] = {
    "mlp-128-relu": mlp_128_relu,
    "mlp-4x128-gelu": mlp_4x128_gelu,
    "mlp-1024-gelu-dropout": mlp_1024_gelu_dropout,
    "cnn-mnist": cnn_mnist,
    "cnn-bn-digits": cnn_bn_digits,
    "resnet-mnist": resnet_mnist,
    "transformer-digits": transformer_digits,
    "lstm-digits": lstm_digits,
    "embedding-bag": embedding_bag,
    "autoencoder-mnist": autoencoder_mnist,
    "regression-diabetes": regression_diabetes,
    "logistic-breast-cancer": logistic_breast_cancer,
    "gru-adding": gru_adding,
}
