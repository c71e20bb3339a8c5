"""The convex quadratic of the paper's "Combination with Convex functions" (CC) as a `Task` (no data)."""

from __future__ import annotations

import tensorflow as tf

from hyperadam_keras.lab.tasks.base import _STREAM_QUADRATIC, SeedLike, Task, _uniform, random_key


class QuadraticTask(Task):
    """The convex function of "Combination with Convex functions": h(z) = mean(clip((z - a)², 0, 10)).

    z ∈ R^dim starts at 0; a ~ U(-1, 1)^dim is drawn from the seed. There is no data: the batch is
    ``a`` itself (the same at every step), so the loss needs no seed (see `base`).
    """

    needs_seed = True

    def __init__(self, dim: int = 20, target_range: float = 1.0, clip: float = 10.0):
        self.dim, self.target_range, self.clip = dim, target_range, clip
        self.name = f"quadratic{dim}"

    def param_shapes(self) -> list[tuple[int, ...]]:
        return [(self.dim,)]

    def init_params(self, seed: SeedLike) -> list[tf.Tensor]:
        del seed  # z_0 = 0 for every seed (spec)
        return [tf.zeros([self.dim], tf.float32)]

    def target(self, seed: SeedLike) -> tf.Tensor:
        """a ~ U(-target_range, target_range)^dim of task ``seed``."""
        return _uniform([self.dim], random_key(seed, _STREAM_QUADRATIC), -self.target_range, self.target_range)

    def sample_batch(self, seed: SeedLike, step: SeedLike) -> tf.Tensor:
        del step
        return self.target(seed)

    def loss(self, params, batch) -> tf.Tensor:
        return tf.reduce_mean(tf.clip_by_value(tf.square(params[0] - batch), 0.0, self.clip))

    def full_loss(self, params, seed: SeedLike | None = None) -> tf.Tensor:
        self._require_seed(seed)
        return self.loss(params, self.target(seed))
