"""The task protocol `Task` and the seeded randomness and minibatch order every task draws from.

A `Task` is a family of optimization problems indexed by an integer *seed*:

    params = task.init_params(seed)             # list of float32 tensors, deterministic in seed
    batch  = task.sample_batch(seed, step)      # a nest of tensors, deterministic in (seed, step)
    loss   = task.loss(params, batch)           # scalar float32, differentiable wrt params
    final  = task.full_loss(params, seed=seed)  # the paper's "final loss" (whole training set)
    task.test_metrics(params)                   # {"test_loss": ..., "test_accuracy": ...} or None
    task.param_shapes()                         # [(784, 20), (20,), (20, 10), (10,)] for the MLP

**How the seed reaches the loss.** Everything the loss needs that depends on the seed (the targets
``a`` of the quadratic, the Random-Scaling factors c) is *part of the batch*: ``sample_batch(seed,
step)`` recomputes it from the seed at every step with stateless random ops, so ``loss(params,
batch)`` needs no seed and no mutable state. All random numbers are derived from the raw bits of
``tf.random.stateless_uniform(alg="philox")`` keyed by (seed, stream, index), so ``seed`` and
``step`` may be Python ints or scalar integer tensors, inside ``tf.function(jit_compile=True)`` too;
the draws agree eagerly, in a graph and under XLA (batches and uniform draws bit for bit, Gaussian
draws up to float rounding), and a compiled function serves every seed and step without recompiling
(no seed or step value becomes an XLA compile-time constant). The one exception is
`KerasModelTask.init_params` with ``init="reinitialize"`` (the model's own Keras initializers): it
runs eagerly and needs a concrete seed. ``full_loss`` and ``test_metrics`` take an optional
``seed=`` for the tasks whose loss depends on it (``task.needs_seed`` is True: quadratic, Random
Scaling, sums of those); they raise ``ValueError`` without one.

The ``_``-prefixed draws (`_uniform`, `_normal`, ...) and ``_STREAM_*`` constants are private to
`hyperadam_keras.lab.tasks`: its task modules share them, so that every stream is defined here once.
"""

from __future__ import annotations

import abc
import math
from typing import Any, Sequence, Union

import numpy as np
import tensorflow as tf

# Independent random streams: a key is (seed, stream · 2³² + index), so e.g. the initial weights
# and the minibatch order of one seed never share random numbers.
_STREAM_INIT = 1
_STREAM_BATCH = 2
_STREAM_SCALES = 3
_STREAM_QUADRATIC = 4
_STREAM_SINE = 5
_STREAM_SUBTASK = 6
_RNG = "philox"  # explicit: "auto_select" may pick a different generator on another device

# A task seed or step: a Python/NumPy int or a scalar integer tensor (also inside tf.function / XLA).
SeedLike = Union[int, np.integer, tf.Tensor]


def random_key(seed: SeedLike, stream: int, index: SeedLike = 0) -> tf.Tensor:
    """The int64 [2] key of the stateless random ops for (seed, stream, index); tensors allowed."""
    seed = tf.cast(seed, tf.int64)
    index = tf.cast(index, tf.int64)
    return tf.stack([seed, tf.constant(stream, tf.int64) * (2 ** 32) + index])


def sub_seed(seed: SeedLike, index: int) -> tf.Tensor:
    """A seed for part ``index`` of a composite task, a decorrelated int64 function of ``seed``."""
    return tf.cast(_random_bits([], random_key(seed, _STREAM_SUBTASK, index)), tf.int64)


def _random_bits(shape, key) -> tf.Tensor:
    """Uniform uint32 bits. Unlike the float outputs of the stateless ops, which XLA computes
    differently from the TF kernels, the raw bits agree between eager, graph and XLA, so every draw
    of this module is derived from them."""
    return tf.random.stateless_uniform(shape, key, minval=None, maxval=None, dtype=tf.uint32, alg=_RNG)


def _unit_uniform(shape, key) -> tf.Tensor:
    """U[0, 1) float32 from the top 24 bits (exactly representable, so identical everywhere)."""
    bits = tf.bitwise.right_shift(_random_bits(shape, key), tf.constant(8, tf.uint32))
    return tf.cast(bits, tf.float32) * (2.0 ** -24)


def _uniform(shape, key, low: float, high: float) -> tf.Tensor:
    return low + (high - low) * _unit_uniform(shape, key)


def _normal(shape, key, std: float) -> tf.Tensor:
    """N(0, std²) by Box-Muller on two uniform draws (equal up to float rounding of log/cos)."""
    u = _unit_uniform([2] + list(shape), key)
    radius = tf.sqrt(-2.0 * tf.math.log(1.0 - u[0]))  # 1 - u ∈ (0, 1]: log is finite
    return std * radius * tf.cos((2.0 * math.pi) * u[1])


def _normal_params(seed: SeedLike, shapes: Sequence[tuple[int, ...]], std: float) -> list[tf.Tensor]:
    """Initial parameters ~ N(0, std²), tensor k drawn with the key (seed, init stream, k)."""
    return [_normal(shape, random_key(seed, _STREAM_INIT, k), std) for k, shape in enumerate(shapes)]


def epoch_batch_indices(seed: SeedLike, step: SeedLike, num_examples: int, batch_size: int) -> tf.Tensor:
    """Indices of minibatch ``step``: epoch-wise seeded permutations, without replacement in an epoch.

    Epoch e = step // (num_examples // batch_size) uses the permutation argsort(random bits^N) keyed by
    (seed, e); step takes its (step mod batches-per-epoch)-th slice of ``batch_size`` indices. The
    ``num_examples mod batch_size`` examples left at the end of a permutation are skipped in that epoch
    (a different few each epoch). Graph/XLA compatible: ``seed`` and ``step`` may be tensors.
    """
    per_epoch = num_examples // batch_size
    step = tf.cast(step, tf.int64)
    epoch = step // per_epoch
    keys = tf.cast(_random_bits([num_examples], random_key(seed, _STREAM_BATCH, epoch)), tf.int64)
    order = tf.argsort(keys, stable=True)
    start = tf.cast((step % per_epoch) * batch_size, tf.int32)
    # A gather, not tf.slice: XLA needs slice offsets at compile time, so a slice would recompile the
    # enclosing function for every new step.
    return tf.gather(order, start + tf.range(batch_size))


class Task(abc.ABC):
    """A seeded family of optimizees (see the module docstring for the protocol and the seed design).

    Attributes:
        name: short identifier, e.g. ``"mlp1x20-sigmoid"``.
        needs_seed: True when ``full_loss``/``test_metrics`` need ``seed=`` (the loss depends on it).
    """

    name: str = "task"
    needs_seed: bool = False

    @abc.abstractmethod
    def param_shapes(self) -> list[tuple[int, ...]]:
        """Shapes of the parameter tensors, in the order of ``init_params``."""

    @abc.abstractmethod
    def init_params(self, seed: SeedLike) -> list[tf.Tensor]:
        """Initial float32 parameters, deterministic in ``seed`` (int or scalar int tensor)."""

    @abc.abstractmethod
    def sample_batch(self, seed: SeedLike, step: SeedLike) -> Any:
        """Batch of optimizee step ``step`` (a nest of tensors), deterministic in (seed, step)."""

    @abc.abstractmethod
    def loss(self, params: Sequence[tf.Tensor], batch: Any) -> tf.Tensor:
        """Scalar float32 loss of ``params`` on ``batch``; differentiable, XLA compatible."""

    @abc.abstractmethod
    def full_loss(self, params: Sequence[tf.Tensor], seed: SeedLike | None = None) -> tf.Tensor:
        """The paper's "final loss": the loss on the whole training set (or the task's fixed set)."""

    def test_metrics(self, params: Sequence[tf.Tensor], seed: SeedLike | None = None) -> dict[str, float] | None:
        """Metrics on the held-out split (eager, Python floats), or None when there is none."""
        del params, seed
        return None

    def num_params(self) -> int:
        """Total number of scalar parameters p."""
        return int(sum(math.prod(shape) for shape in self.param_shapes()))

    def _require_seed(self, seed) -> None:
        if seed is None:
            raise ValueError(f"task {self.name!r}: its loss depends on the task seed; pass seed=")

