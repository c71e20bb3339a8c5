"""Optimizee tasks for meta-training and evaluating HyperAdam, written functionally on a param list.

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

Example: the paper's meta-training task, one step of gradient descent inside XLA.

    >>> import tensorflow as tf
    >>> from hyperadam_keras.lab.data.mnist import load_mnist
    >>> from hyperadam_keras.lab.tasks.tasks import paper_meta_training_task
    >>> images, labels = load_mnist()
    >>> task = paper_meta_training_task(images, labels)   # RS(MLP sigmoid, 3) + RS(quadratic, 1)
    >>> params = task.init_params(7)
    >>> @tf.function(jit_compile=True)
    ... def sgd_step(params, seed, step):
    ...     batch = task.sample_batch(seed, step)
    ...     with tf.GradientTape() as tape:
    ...         tape.watch(params)
    ...         loss = task.loss(params, batch)
    ...     grads = tape.gradient(loss, params)
    ...     return [p - 0.1 * g for p, g in zip(params, grads)], loss
    >>> params, loss = sgd_step(params, tf.constant(7), tf.constant(0))

Tasks: `MLPTask`, `QuadraticTask`, `CNNTask`, `SineLSTMTask`, `KerasModelTask`; transforms
`RandomScaling` and `SumTask`; `paper_meta_training_task`.
"""

from __future__ import annotations

import abc
import math
from typing import Any, Callable, Sequence, Union

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
# Fixed seeds of the generated evaluation sets of `SineLSTMTask` (not task seeds: every task seed is
# evaluated on the same sequences, like every MNIST task on the same images).
_SINE_FULL_SEED = 1_000_001
_SINE_TEST_SEED = 1_000_002
_RNG = "philox"  # explicit: "auto_select" may pick a different generator on another device

# A task seed or step: a Python/NumPy int or a scalar integer tensor (also inside tf.function / XLA).
SeedLike = Union[int, np.integer, tf.Tensor]

ACTIVATIONS: dict[str, Callable[[tf.Tensor], tf.Tensor]] = {
    "sigmoid": tf.nn.sigmoid, "relu": tf.nn.relu, "elu": tf.nn.elu, "tanh": tf.nn.tanh}


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


# --- MLP ------------------------------------------------------------------------------------------


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


# --- CNN ------------------------------------------------------------------------------------------


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


# --- sine-prediction LSTM ---------------------------------------------------------------------------


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


# --- quadratic (CC) -------------------------------------------------------------------------------


class QuadraticTask(Task):
    """The convex function of "Combination with Convex functions": h(z) = mean(clip((z - a)², 0, 10)).

    z ∈ R^dim starts at 0; a ~ U(-1, 1)^dim is drawn from the seed. There is no data: the batch is
    ``a`` itself (the same at every step), so the loss needs no seed (see module docstring).
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


# --- any Keras model -------------------------------------------------------------------------------


def _materialize(dataset) -> tuple[np.ndarray, np.ndarray]:
    """A finite tf.data.Dataset of (x, y) batches -> (x, y) arrays, concatenated in order."""
    xs, ys = [], []
    for x, y in dataset.as_numpy_iterator():
        xs.append(np.asarray(x))
        ys.append(np.asarray(y))
    if not xs:
        raise ValueError("KerasModelTask: the dataset is empty")
    try:
        x, y = np.concatenate(xs), np.concatenate(ys)
    except ValueError as err:
        raise ValueError("KerasModelTask: could not concatenate the dataset's elements; it must "
                         "yield (x, y) *batches*, as `fit` takes them (call .batch(n) first)") from err
    if len(x) != len(y):
        raise ValueError(f"KerasModelTask: the dataset gave {len(x)} inputs but {len(y)} targets; it "
                         "must yield (x, y) batches (call .batch(n) first)")
    return x, y


def _seed_initializers(config: Any, seeds: list[int]) -> Any:
    """A copy of a layer config whose initializer configs all get the next seed of ``seeds``."""
    if isinstance(config, dict):
        config = {k: _seed_initializers(v, seeds) for k, v in config.items()}
        inner = config.get("config")
        if ("class_name" in config and isinstance(inner, dict) and "seed" in inner
                and str(config.get("module", "")).startswith("keras.initializers")):
            config["config"] = {**inner, "seed": seeds.pop(0)}
        return config
    if isinstance(config, list):
        return [_seed_initializers(v, seeds) for v in config]
    return config


class KerasModelTask(Task):
    """Any Keras model + loss + data as a task, through ``model.stateless_call``.

    Parameters are the model's trainable variables (in ``model.trainable_variables`` order); the
    non-trainable ones (e.g. BatchNorm moving statistics) stay fixed at their values when the task is
    made. The forward pass runs with ``training=training`` (default False: dropout off, BatchNorm on
    its moving statistics). Batch nest ``(x [B, ...], y [B, ...])``; minibatches as `MLPTask`.

    Args:
        model: a Keras model with one input (functional, Sequential or subclassed).
        loss_fn: ``loss_fn(y_true, y_pred)``, a Keras loss object, function or name; a per-example
            result is averaged.
        x: NumPy-convertible inputs, or a finite ``tf.data.Dataset`` of ``(x, y)`` batches (as `fit`
            takes it), which is iterated once and materialized to arrays (it must fit in memory).
        y: targets (None when ``x`` is a dataset).
        batch_size: minibatch size.
        init: ``"reinitialize"`` (default): ``init_params(seed)`` clones the model with every Keras
            initializer seeded from ``seed`` (a new draw from the model's own initializers; eager,
            needs a concrete int seed, functional/Sequential models). ``"model"``: the model's
            current weights for every seed (subclassed or pretrained models; works in graphs).
        test_x, test_y: optional held-out data for ``test_metrics`` (``{"test_loss"}``).
        training: the ``training`` flag of the forward pass.
        eval_chunk: examples per forward pass in ``full_loss``/``test_metrics``.
    """

    def __init__(self, model, loss_fn, x, y=None, batch_size: int = 128, init: str = "reinitialize",
                 test_x=None, test_y=None, training: bool = False, eval_chunk: int = 1024):
        import keras

        if init not in ("reinitialize", "model"):
            raise ValueError(f"init must be 'reinitialize' or 'model', got {init!r}")
        if isinstance(x, tf.data.Dataset):
            if y is not None:
                raise ValueError("KerasModelTask: pass y=None when x is a tf.data.Dataset of (x, y)")
            x, y = _materialize(x)
        x, y = np.asarray(x), np.asarray(y)
        _check_dataset(x, y, batch_size, "KerasModelTask")
        if not model.built:
            model(x[:1])  # builds the variables
        self.model, self.init, self.training = model, init, training
        self.loss_fn = keras.losses.get(loss_fn) if isinstance(loss_fn, str) else loss_fn
        self.x, self.y = tf.convert_to_tensor(x), tf.convert_to_tensor(y)
        self.test_x = None if test_x is None else tf.convert_to_tensor(np.asarray(test_x))
        self.test_y = None if test_y is None else tf.convert_to_tensor(np.asarray(test_y))
        self.batch_size, self.eval_chunk = batch_size, eval_chunk
        self.name = f"keras-{model.name}"
        self._initial = [tf.identity(tf.cast(v.value, tf.float32)) for v in model.trainable_variables]
        self._non_trainable = [tf.identity(v.value) for v in model.non_trainable_variables]

    def param_shapes(self) -> list[tuple[int, ...]]:
        return [tuple(p.shape) for p in self._initial]

    def init_params(self, seed: SeedLike) -> list[tf.Tensor]:
        if self.init == "model":
            return list(self._initial)
        import keras

        if isinstance(seed, tf.Tensor):
            if not tf.executing_eagerly():
                raise TypeError("KerasModelTask(init='reinitialize').init_params needs a concrete seed "
                                "(it runs the model's Keras initializers eagerly); call it outside "
                                "tf.function, or use init='model'")
            seed = int(seed.numpy())
        # Distinct seeds for the model's initializers, a deterministic function of the task seed.
        seeds = np.random.SeedSequence([int(seed) % 2 ** 63]).generate_state(4096, dtype=np.uint32)
        seeds = [int(v) % 2 ** 31 for v in seeds]
        try:
            clone = keras.models.clone_model(
                self.model, clone_function=lambda layer: layer.__class__.from_config(
                    _seed_initializers(layer.get_config(), seeds)))
        except (ValueError, TypeError, NotImplementedError) as err:
            raise ValueError(f"KerasModelTask: cannot re-initialize {self.model.name!r} by cloning "
                             f"({err}); use init='model' to start from its current weights") from err
        if not clone.built:
            clone(self.x[:1])
        params = [tf.cast(v.value, tf.float32) for v in clone.trainable_variables]
        if [tuple(p.shape) for p in params] != self.param_shapes():
            raise ValueError("KerasModelTask: the re-initialized clone's variables do not match the "
                             "model's; use init='model'")
        return params

    def sample_batch(self, seed: SeedLike, step: SeedLike) -> tuple[tf.Tensor, tf.Tensor]:
        idx = epoch_batch_indices(seed, step, int(self.x.shape[0]), self.batch_size)
        return tf.gather(self.x, idx), tf.gather(self.y, idx)

    def predict(self, params: Sequence[tf.Tensor], x: tf.Tensor) -> tf.Tensor:
        """The model's output for inputs ``x`` with trainable weights ``params``."""
        outputs, _ = self.model.stateless_call(list(params), self._non_trainable, x, training=self.training)
        return outputs

    def _loss_of(self, params, x, y) -> tf.Tensor:
        return tf.reduce_mean(tf.cast(self.loss_fn(y, self.predict(params, x)), tf.float32))

    def loss(self, params, batch) -> tf.Tensor:
        x, y = batch
        return self._loss_of(params, x, y)

    def full_loss(self, params, seed: SeedLike | None = None) -> tf.Tensor:
        return _chunked_mean(lambda x, y: self._loss_of(params, x, y), self.x, self.y, self.eval_chunk)

    def test_metrics(self, params, seed: SeedLike | None = None) -> dict[str, float] | None:
        if self.test_x is None:
            return None
        return {"test_loss": float(_chunked_mean(lambda x, y: self._loss_of(params, x, y),
                                                 self.test_x, self.test_y, self.eval_chunk))}


# --- transforms -----------------------------------------------------------------------------------


class RandomScaling(Task):
    """Random Scaling (RS): the optimizee sees ``task.loss(c ⊙ w)`` and starts at ``w0 / c``.

    Each coordinate gets its own c = exp(U(-r, r)), r = ``log_scale_range`` (spec: 3 for the MLP, 1
    for the quadratic), drawn from the seed. The scales travel in the batch:
    ``sample_batch(seed, step) -> {"batch": task.sample_batch(seed, step), "scales": [c_k]}``, one
    tensor of scales per parameter tensor.
    """

    needs_seed = True

    def __init__(self, task: Task, log_scale_range: float):
        self.task, self.log_scale_range = task, float(log_scale_range)
        self.name = f"rs{log_scale_range:g}({task.name})"

    def param_shapes(self) -> list[tuple[int, ...]]:
        return self.task.param_shapes()

    def scales(self, seed: SeedLike) -> list[tf.Tensor]:
        """c_k = exp(U(-r, r)) of the same shape as each parameter tensor k."""
        r = self.log_scale_range
        return [tf.exp(_uniform(shape, random_key(seed, _STREAM_SCALES, k), -r, r))
                for k, shape in enumerate(self.param_shapes())]

    def init_params(self, seed: SeedLike) -> list[tf.Tensor]:
        return [w / c for w, c in zip(self.task.init_params(seed), self.scales(seed))]

    def sample_batch(self, seed: SeedLike, step: SeedLike) -> dict[str, Any]:
        return {"batch": self.task.sample_batch(seed, step), "scales": self.scales(seed)}

    def loss(self, params, batch) -> tf.Tensor:
        return self.task.loss([w * c for w, c in zip(params, batch["scales"])], batch["batch"])

    def full_loss(self, params, seed: SeedLike | None = None) -> tf.Tensor:
        self._require_seed(seed)
        return self.task.full_loss([w * c for w, c in zip(params, self.scales(seed))], seed=seed)

    def test_metrics(self, params, seed: SeedLike | None = None) -> dict[str, float] | None:
        self._require_seed(seed)
        return self.task.test_metrics([w * c for w, c in zip(params, self.scales(seed))], seed=seed)


class SumTask(Task):
    """Sum of tasks sharing one parameter vector: params = the sub-tasks' lists concatenated.

    loss = Σ_i task_i.loss(params_i, batch_i); batch = tuple of the sub-batches. Sub-task i runs
    with seed `sub_seed`(seed, i), so two identical sub-tasks still get different draws.
    ``test_metrics`` merges the sub-tasks' metrics with keys prefixed ``"{i}:{name}/"``.
    """

    def __init__(self, tasks: Sequence[Task]):
        if not tasks:
            raise ValueError("SumTask needs at least one task")
        self.tasks = list(tasks)
        self.name = "sum(" + "+".join(t.name for t in self.tasks) + ")"
        self.needs_seed = any(t.needs_seed for t in self.tasks)
        counts = [len(t.param_shapes()) for t in self.tasks]
        self._bounds = np.cumsum([0] + counts).tolist()

    def _split(self, params) -> list[list[tf.Tensor]]:
        return [list(params[a:b]) for a, b in zip(self._bounds[:-1], self._bounds[1:])]

    def _seeds(self, seed) -> list:
        return [None if seed is None else sub_seed(seed, i) for i in range(len(self.tasks))]

    def param_shapes(self) -> list[tuple[int, ...]]:
        return [shape for t in self.tasks for shape in t.param_shapes()]

    def init_params(self, seed: SeedLike) -> list[tf.Tensor]:
        return [p for t, s in zip(self.tasks, self._seeds(seed)) for p in t.init_params(s)]

    def sample_batch(self, seed: SeedLike, step: SeedLike) -> tuple:
        return tuple(t.sample_batch(s, step) for t, s in zip(self.tasks, self._seeds(seed)))

    def loss(self, params, batch) -> tf.Tensor:
        return tf.add_n([t.loss(p, b) for t, p, b in zip(self.tasks, self._split(params), batch)])

    def full_loss(self, params, seed: SeedLike | None = None) -> tf.Tensor:
        if self.needs_seed:
            self._require_seed(seed)
        return tf.add_n([t.full_loss(p, seed=s) for t, p, s in
                         zip(self.tasks, self._split(params), self._seeds(seed))])

    def test_metrics(self, params, seed: SeedLike | None = None) -> dict[str, float] | None:
        merged: dict[str, float] = {}
        for i, (t, p, s) in enumerate(zip(self.tasks, self._split(params), self._seeds(seed))):
            if t.needs_seed and s is None:
                continue  # no metrics without the seed its loss depends on
            metrics = t.test_metrics(p, seed=s)
            merged.update({f"{i}:{t.name}/{k}": v for k, v in (metrics or {}).items()})
        return merged or None


def paper_meta_training_task(images, labels, batch_size: int = 128) -> SumTask:
    """The paper's meta-training task: RS(MLP 784-20-10 sigmoid, r=3) + RS(quadratic R^20, r=1)."""
    return SumTask([RandomScaling(MLPTask(images, labels, hidden_layers=1, width=20, activation="sigmoid",
                                          batch_size=batch_size), 3.0),
                    RandomScaling(QuadraticTask(), 1.0)])
