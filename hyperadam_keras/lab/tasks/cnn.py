"""The paper's CNNs on MNIST as a `Task`: CNN-1 (c-c-p-f) and CNN-2 (c-c-p-c-c-p-f-f)."""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import tensorflow as tf

from hyperadam_keras.lab.tasks.base import _STREAM_INIT, SeedLike, Task, _normal, epoch_batch_indices, random_key
from hyperadam_keras.lab.tasks.supervised import (_accuracy, _as_float_tensor, _as_label_tensor, _check_dataset,
                                                  _chunked_mean, _cross_entropy)


class CNNTask(Task):
    """The paper's CNNs on MNIST 28×28×1, ReLU, 3×3 'SAME' convolutions, 2×2 max-pool stride 2.

    - ``"cnn1"`` (c-c-p-f): conv 16, conv 16, pool -> 14×14×16, dense 10.
    - ``"cnn2"`` (c-c-p-c-c-p-f-f): conv 16, conv 16, pool, conv 32, conv 32, pool -> 7×7×32,
      dense ``dense_units`` (64) ReLU, dense 10.

    The paper does not give filter counts; these are our choice (``filters`` overrides them).
    Parameters ``[K_1, b_1, ..., W, b, ...]``: kernels [3, 3, in, out], dense [in, out]. Initial
    weights: with ``init_std=None`` (default) He-normal, N(0, 2 / fan_in), and zero biases (a
    N(0, 0.1²) start saturates the 3,136-input dense layer); with a float, every weight and bias
    ~ N(0, init_std²) as the MLP. Mean softmax cross-entropy; batch nest
    ``(images [B, 28, 28, 1] float32, labels [B] int32)``; minibatches as `MLPTask`.

    Args:
        images: [N, 784] or [N, 28, 28(, 1)] in [0, 1]; labels: int [N].
        variant: ``"cnn1"`` or ``"cnn2"``.
        filters: conv filter counts (2 for cnn1, 4 for cnn2); None = (16, 16) / (16, 16, 32, 32).
        dense_units: hidden dense width of cnn2.
        batch_size, init_std, test_images, test_labels: as `MLPTask`.
        eval_chunk: examples per forward pass in ``full_loss``/``test_metrics`` (bounds memory).
    """

    def __init__(self, images, labels, variant: str = "cnn1", filters: Sequence[int] | None = None,
                 dense_units: int = 64, batch_size: int = 128, init_std: float | None = None,
                 test_images=None, test_labels=None, eval_chunk: int = 1000):
        default_filters = {"cnn1": (16, 16), "cnn2": (16, 16, 32, 32)}
        if variant not in default_filters:
            raise ValueError(f"unknown CNN variant {variant!r}; expected 'cnn1' or 'cnn2'")
        filters = tuple(filters or default_filters[variant])
        if len(filters) != len(default_filters[variant]):
            raise ValueError(f"{variant} needs {len(default_filters[variant])} filter counts, got {filters}")
        _check_dataset(images, labels, batch_size, "CNNTask")
        self.images = _as_float_tensor(np.asarray(images, np.float32).reshape(-1, 28, 28, 1))
        self.labels = _as_label_tensor(labels)
        self.test_images = None if test_images is None else _as_float_tensor(
            np.asarray(test_images, np.float32).reshape(-1, 28, 28, 1))
        self.test_labels = None if test_labels is None else _as_label_tensor(test_labels)
        self.variant, self.filters, self.dense_units = variant, filters, dense_units
        self.batch_size, self.init_std, self.eval_chunk = batch_size, init_std, eval_chunk
        self.name = variant
        shapes, channels = [], 1
        for f in filters:
            shapes += [(3, 3, channels, f), (f,)]
            channels = f
        side = 28 // 2 ** (len(filters) // 2)
        dense = [side * side * channels] + ([dense_units] if variant == "cnn2" else []) + [10]
        for fan_in, fan_out in zip(dense[:-1], dense[1:]):
            shapes += [(fan_in, fan_out), (fan_out,)]
        self._shapes = shapes

    def param_shapes(self) -> list[tuple[int, ...]]:
        return list(self._shapes)

    def init_params(self, seed: SeedLike) -> list[tf.Tensor]:
        params = []
        for k, shape in enumerate(self._shapes):
            key = random_key(seed, _STREAM_INIT, k)
            if self.init_std is not None:
                params.append(_normal(shape, key, self.init_std))
            elif len(shape) == 1:
                params.append(tf.zeros(shape, tf.float32))
            else:
                params.append(_normal(shape, key, math.sqrt(2.0 / math.prod(shape[:-1]))))
        return params

    def sample_batch(self, seed: SeedLike, step: SeedLike) -> tuple[tf.Tensor, tf.Tensor]:
        idx = epoch_batch_indices(seed, step, int(self.images.shape[0]), self.batch_size)
        return tf.gather(self.images, idx), tf.gather(self.labels, idx)

    def logits(self, params: Sequence[tf.Tensor], images: tf.Tensor) -> tf.Tensor:
        """Logits [B, 10] for images [B, 28, 28, 1]."""
        h = images
        num_conv = len(self.filters)
        for k in range(num_conv):
            h = tf.nn.relu(tf.nn.conv2d(h, params[2 * k], strides=1, padding="SAME") + params[2 * k + 1])
            if k % 2 == 1:  # a pool after every pair of convolutions
                h = tf.nn.max_pool2d(h, ksize=2, strides=2, padding="VALID")
        h = tf.reshape(h, [tf.shape(h)[0], -1])
        dense = params[2 * num_conv:]
        for k in range(len(dense) // 2):
            h = tf.matmul(h, dense[2 * k]) + dense[2 * k + 1]
            if k < len(dense) // 2 - 1:
                h = tf.nn.relu(h)
        return h

    def loss(self, params, batch) -> tf.Tensor:
        images, labels = batch
        return _cross_entropy(self.logits(params, images), labels)

    def full_loss(self, params, seed: SeedLike | None = None) -> tf.Tensor:
        return _chunked_mean(lambda x, y: _cross_entropy(self.logits(params, x), y),
                             self.images, self.labels, self.eval_chunk)

    def test_metrics(self, params, seed: SeedLike | None = None) -> dict[str, float] | None:
        if self.test_images is None:
            return None
        x, y = self.test_images, self.test_labels
        return {"test_loss": float(_chunked_mean(lambda a, b: _cross_entropy(self.logits(params, a), b),
                                                 x, y, self.eval_chunk)),
                "test_accuracy": float(_chunked_mean(lambda a, b: _accuracy(self.logits(params, a), b),
                                                     x, y, self.eval_chunk))}
