"""The paper's MLP on MNIST as a `Task`: 784-(width × layers)-10, softmax cross-entropy."""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import tensorflow as tf

from hyperadam_keras.lab.tasks.base import SeedLike, Task, _normal_params, epoch_batch_indices
from hyperadam_keras.lab.tasks.supervised import (_accuracy, _as_float_tensor, _as_label_tensor, _check_dataset,
                                                  _cross_entropy)

ACTIVATIONS: dict[str, Callable[[tf.Tensor], tf.Tensor]] = {
    "sigmoid": tf.nn.sigmoid, "relu": tf.nn.relu, "elu": tf.nn.elu, "tanh": tf.nn.tanh}


class MLPTask(Task):
    """The paper's MLP on MNIST: 784-(width × hidden_layers)-10, mean softmax cross-entropy.

    Parameters ``[W_1, b_1, ..., W_out, b_out]``, all (weights and biases) ~ N(0, init_std²).
    Minibatches of ``batch_size`` via `epoch_batch_indices` (seeded epoch-wise permutations).
    Batch nest: ``(images [B, 784] float32, labels [B] int32)``.

    Args:
        images: float32-convertible [N, 784] (e.g. `data.load_mnist`); labels: int [N].
        hidden_layers: number of hidden layers (0 = logistic regression).
        width: units per hidden layer.
        activation: ``"sigmoid"``, ``"relu"``, ``"elu"`` or ``"tanh"``.
        batch_size: minibatch size (paper: 128).
        init_std: standard deviation of the initial weights and biases (paper: 0.1).
        test_images, test_labels: optional held-out split for ``test_metrics``.
    """

    def __init__(self, images, labels, hidden_layers: int = 1, width: int = 20,
                 activation: str = "sigmoid", batch_size: int = 128, init_std: float = 0.1,
                 test_images=None, test_labels=None):
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; expected one of {sorted(ACTIVATIONS)}")
        images = np.asarray(images, dtype=np.float32).reshape(len(images), -1)
        _check_dataset(images, labels, batch_size, "MLPTask")
        self.images, self.labels = _as_float_tensor(images), _as_label_tensor(labels)
        self.hidden_layers, self.width, self.activation = hidden_layers, width, activation
        self.batch_size, self.init_std = batch_size, init_std
        self.test_images = None if test_images is None else _as_float_tensor(
            np.asarray(test_images, dtype=np.float32).reshape(len(test_images), -1))
        self.test_labels = None if test_labels is None else _as_label_tensor(test_labels)
        self.name = f"mlp{hidden_layers}x{width}-{activation}"
        sizes = [images.shape[1]] + [width] * hidden_layers + [10]
        self._shapes = [s for fan_in, fan_out in zip(sizes[:-1], sizes[1:]) for s in ((fan_in, fan_out), (fan_out,))]

    def param_shapes(self) -> list[tuple[int, ...]]:
        return list(self._shapes)

    def init_params(self, seed: SeedLike) -> list[tf.Tensor]:
        return _normal_params(seed, self._shapes, self.init_std)

    def sample_batch(self, seed: SeedLike, step: SeedLike) -> tuple[tf.Tensor, tf.Tensor]:
        idx = epoch_batch_indices(seed, step, int(self.images.shape[0]), self.batch_size)
        return tf.gather(self.images, idx), tf.gather(self.labels, idx)

    def logits(self, params: Sequence[tf.Tensor], images: tf.Tensor) -> tf.Tensor:
        """The network's output logits [B, 10] for images [B, 784]."""
        act = ACTIVATIONS[self.activation]
        h = images
        for layer in range(len(params) // 2):
            h = tf.matmul(h, params[2 * layer]) + params[2 * layer + 1]
            if layer < len(params) // 2 - 1:
                h = act(h)
        return h

    def loss(self, params, batch) -> tf.Tensor:
        images, labels = batch
        return _cross_entropy(self.logits(params, images), labels)

    def full_loss(self, params, seed: SeedLike | None = None) -> tf.Tensor:
        return _cross_entropy(self.logits(params, self.images), self.labels)

    def test_metrics(self, params, seed: SeedLike | None = None) -> dict[str, float] | None:
        if self.test_images is None:
            return None
        logits = self.logits(params, self.test_images)
        return {"test_loss": float(_cross_entropy(logits, self.test_labels)),
                "test_accuracy": float(_accuracy(logits, self.test_labels))}
