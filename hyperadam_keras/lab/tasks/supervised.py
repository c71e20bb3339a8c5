"""Helpers of the supervised tasks (MLP, CNN, any Keras model): data checks, tensors, losses, metrics."""

from __future__ import annotations

from typing import Callable

import numpy as np
import tensorflow as tf


def _as_float_tensor(array) -> tf.Tensor:
    return tf.convert_to_tensor(np.asarray(array, dtype=np.float32))


def _as_label_tensor(array) -> tf.Tensor:
    return tf.convert_to_tensor(np.asarray(array, dtype=np.int32))


def _chunked_mean(fn: Callable[[tf.Tensor, tf.Tensor], tf.Tensor], x: tf.Tensor, y: tf.Tensor,
                  chunk: int) -> tf.Tensor:
    """Mean over all examples of ``fn`` (a per-chunk mean), evaluated ``chunk`` examples at a time."""
    n = int(x.shape[0])
    total = tf.constant(0.0, tf.float32)
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        total += fn(x[start:stop], y[start:stop]) * float(stop - start)
    return total / float(n)


def _cross_entropy(logits: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
    return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits))


def _accuracy(logits: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
    return tf.reduce_mean(tf.cast(tf.equal(tf.argmax(logits, -1, output_type=tf.int32), labels), tf.float32))


def _check_dataset(images, labels, batch_size: int, what: str) -> None:
    if len(images) != len(labels):
        raise ValueError(f"{what}: {len(images)} inputs but {len(labels)} labels")
    if not 0 < batch_size <= len(images):
        raise ValueError(f"{what}: batch_size={batch_size} must be in [1, {len(images)}]")

