"""The paper's sine-prediction LSTM as a `Task`: regress f(10) from noisy f(0..9), f = A sin(ωx + φ)."""

from __future__ import annotations

import math
from typing import Sequence

import tensorflow as tf

from hyperadam_keras.lab.tasks.base import (_STREAM_SINE, SeedLike, Task, _normal, _normal_params, _unit_uniform,
                                            random_key)

# Fixed seeds of the generated evaluation sets of `SineLSTMTask` (not task seeds: every task seed is
# evaluated on the same sequences, like every MNIST task on the same images).
_SINE_FULL_SEED = 1_000_001
_SINE_TEST_SEED = 1_000_002


class SineLSTMTask(Task):
    """The paper's LSTM task: predict f(seq_len) from noisy f(0), ..., f(seq_len - 1), MSE.

    f(x) = A sin(ωx + φ), A ~ U(0, 10), ω ~ U(0, π/2), φ ~ U(0, 2π) per sequence; inputs get
    N(0, noise_std²) noise (paper: 0.1 baseline, 0.01 "small noise"), the target f(seq_len) is clean.
    Sequences are generated from (seed, step) by stateless ops. Model: ``num_layers`` stacked LSTMs
    of ``hidden`` units (gates i, f, g, o; kernel [in + hidden, 4 hidden], bias [4 hidden], no
    forget-gate offset) and a dense read-out of the last hidden state; all parameters
    ~ N(0, init_std²). Parameters ``[K_1, b_1, ..., K_L, b_L, W_out [hidden, 1], b_out [1]]``.
    Batch nest: ``(inputs [B, seq_len, 1], targets [B])``.

    ``full_loss`` is the MSE on a fixed generated set of ``eval_size`` sequences (the same for every
    seed: a fixed key); ``test_metrics`` gives ``{"test_loss"}`` on a second fixed set.
    """

    def __init__(self, num_layers: int = 1, noise_std: float = 0.1, hidden: int = 20,
                 batch_size: int = 128, init_std: float = 0.1, seq_len: int = 10, eval_size: int = 10_000):
        self.num_layers, self.noise_std, self.hidden = num_layers, noise_std, hidden
        self.batch_size, self.init_std, self.seq_len, self.eval_size = batch_size, init_std, seq_len, eval_size
        self.name = f"sine-lstm{num_layers}x{hidden}-noise{noise_std:g}"
        shapes, width = [], 1
        for _ in range(num_layers):
            shapes += [(width + hidden, 4 * hidden), (4 * hidden,)]
            width = hidden
        self._shapes = shapes + [(hidden, 1), (1,)]
        self._full_set = self._generate(_SINE_FULL_SEED, 0, eval_size)
        self._test_set = self._generate(_SINE_TEST_SEED, 0, eval_size)

    def _generate(self, seed, step, size: int) -> tuple[tf.Tensor, tf.Tensor]:
        # Two draws per step: the curve parameters (index 2·step) and the noise (index 2·step + 1).
        step = tf.cast(step, tf.int64)
        u = _unit_uniform([3, size], random_key(seed, _STREAM_SINE, 2 * step))
        amplitude, omega, phase = 10.0 * u[0], (math.pi / 2) * u[1], (2 * math.pi) * u[2]
        x = tf.range(self.seq_len + 1, dtype=tf.float32)
        curves = amplitude[:, None] * tf.sin(omega[:, None] * x[None, :] + phase[:, None])
        noise = _normal([size, self.seq_len], random_key(seed, _STREAM_SINE, 2 * step + 1), self.noise_std)
        return (curves[:, :self.seq_len] + noise)[:, :, None], curves[:, self.seq_len]

    def param_shapes(self) -> list[tuple[int, ...]]:
        return list(self._shapes)

    def init_params(self, seed: SeedLike) -> list[tf.Tensor]:
        return _normal_params(seed, self._shapes, self.init_std)

    def sample_batch(self, seed: SeedLike, step: SeedLike) -> tuple[tf.Tensor, tf.Tensor]:
        return self._generate(seed, step, self.batch_size)

    def predict(self, params: Sequence[tf.Tensor], inputs: tf.Tensor) -> tf.Tensor:
        """Predictions [B] for inputs [B, seq_len, 1] (a static unroll over the sequence)."""
        batch = tf.shape(inputs)[0]
        h = [tf.zeros([batch, self.hidden]) for _ in range(self.num_layers)]
        c = [tf.zeros([batch, self.hidden]) for _ in range(self.num_layers)]
        for t in range(self.seq_len):
            x = inputs[:, t, :]
            for layer in range(self.num_layers):
                z = tf.matmul(tf.concat([x, h[layer]], -1), params[2 * layer]) + params[2 * layer + 1]
                i, f, g, o = tf.split(z, 4, axis=-1)
                c[layer] = tf.sigmoid(f) * c[layer] + tf.sigmoid(i) * tf.tanh(g)
                h[layer] = tf.sigmoid(o) * tf.tanh(c[layer])
                x = h[layer]
        return (tf.matmul(x, params[-2]) + params[-1])[:, 0]

    def loss(self, params, batch) -> tf.Tensor:
        inputs, targets = batch
        return tf.reduce_mean(tf.square(self.predict(params, inputs) - targets))

    def full_loss(self, params, seed: SeedLike | None = None) -> tf.Tensor:
        return self.loss(params, self._full_set)

    def test_metrics(self, params, seed: SeedLike | None = None) -> dict[str, float] | None:
        return {"test_loss": float(self.loss(params, self._test_set))}
