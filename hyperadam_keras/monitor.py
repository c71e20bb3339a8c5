"""`HyperAdamMonitor`: a Keras callback that writes HyperAdam's internals to TensorBoard.

Every `every_n_steps` updates it reads the optimizer state of a fixed, seeded sample of coordinates
(before and after one step) and writes, with TensorFlow's own `tf.summary` (no tensorboard package
needed to write):

    effective_step/overall, effective_step/<variable path>
                      RMS(w_{t-1} - w_t) / α_t over the sampled coordinates, α_t = learning_rate ·
                      min(1, s / W) · √(T / max(s, T)) the step the s-th update used
                      (`schedules.step_size_factor`; W = warmup_steps, no warm-up factor when None)
    rho/…             ρ_t = ELU(h_t θ_q + b_q)                     (`equations.weight_cell`)
    rho_sum/…         Σ_j ρ_t^j per coordinate
    beta/…, gamma/…   β_t = σ([m'_{t-1}, h_t] θ_u + b_u), γ_t = σ([m'_{t-1}, h_t] θ_r + b_r)
                      (`equations.adam_cell_decay_rates`), m'_{t-1} normalized by the GLOBAL column
                      norms over all coordinates of all variables, as the step itself did
    …/histogram, …/q05, …/q50, …/q95   a histogram and the 5/50/95 % quantiles (NumPy's linear ones)
    skipped/fraction, skipped/steps    steps skipped (non-finite gradient or invalid learning rate)
                      since monitoring began, over the updates since then (`HyperAdam.skipped_steps`)
    learning_rate/alpha_t              α_t

The math is `equations.py`'s: ρ needs only h_t (after the step); β and γ need m_{t-1} (before it),
so `on_train_batch_begin` of a sampled step gathers the sampled m and weights and the global column
norms of m (one reduction over the m slots, the only cost that grows with the model), and
`on_train_batch_end` gathers h and the weights. The gathers are `tf.gather` on the flattened slots
with indices chosen once, inside two `tf.function`s, so the rest costs the same on any model.
"""

from __future__ import annotations

import os
from typing import NamedTuple

import keras
import numpy as np
import tensorflow as tf
from tensorflow.core.framework import summary_pb2

from hyperadam_keras import equations
from hyperadam_keras.optimizer import HyperAdam
from hyperadam_keras.schedules import step_size_factor

DEFAULT_EVERY_N_STEPS = 10
DEFAULT_SAMPLE_SIZE = 2048  # coordinates in all
DEFAULT_PER_VARIABLE = 64  # coordinates of one variable at most
QUANTILES = (0.05, 0.5, 0.95)
HISTOGRAM_BUCKETS = 30  # TensorBoard's default
DISTRIBUTIONS = ("rho", "rho_sum", "beta", "gamma")


def _check_positive_int(name: str, value: object) -> int:
    """`value` as an int if it is an integer >= 1 (not a bool), else a ValueError naming `name`."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)


def sample_counts(sizes: list[int], per_variable: int, sample_size: int, seed: int = 0) -> list[int]:
    """How many coordinates to sample from each variable: min(size, c) with the largest common cap
    c <= `per_variable` whose total is <= `sample_size`; with more variables than `sample_size`, one
    coordinate each of a seeded choice of `sample_size` variables (0 for the others)."""
    cap = per_variable
    while cap > 1 and sum(min(p, cap) for p in sizes) > sample_size:
        cap -= 1
    counts = [min(p, cap) for p in sizes]
    if sum(counts) > sample_size:
        keep = set(np.random.default_rng(seed).choice(len(sizes), sample_size, replace=False).tolist())
        counts = [c if i in keep else 0 for i, c in enumerate(counts)]
    return counts


def histogram_buckets(values: tf.Tensor, bucket_count: int = HISTOGRAM_BUCKETS) -> tf.Tensor:
    """TensorBoard's histogram format, [k, 3] float64 rows (left edge, right edge, count), of `values`:
    k equal buckets over [min, max], a value in bucket floor((x - min) / width) (the maximum in the last),
    all of them in the last bucket when min == max, as TensorBoard's own `histogram` summary makes it.
    Computed in TensorFlow, so the monitor writes histograms without the tensorboard package."""
    data = tf.reshape(tf.cast(values, tf.float64), [-1])
    low, high = tf.reduce_min(data), tf.reduce_max(data)
    width = (high - low) / bucket_count
    index = tf.cast(tf.floor(tf.math.divide_no_nan(data - low, width)), tf.int32)
    index = tf.where(width > 0, tf.minimum(index, bucket_count - 1), bucket_count - 1)
    counts = tf.math.bincount(index, minlength=bucket_count, maxlength=bucket_count, dtype=tf.float64)
    edges = tf.linspace(low, high, bucket_count + 1)
    return tf.stack([edges[:-1], edges[1:], counts], axis=1)


def _metadata(plugin_name: str) -> summary_pb2.SummaryMetadata:
    """The summary metadata of TensorBoard's scalars or histograms plugin (plugin data version 0)."""
    return summary_pb2.SummaryMetadata(plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name=plugin_name))


_SCALAR, _HISTOGRAM = _metadata("scalars"), _metadata("histograms")


def _read(variable) -> tf.Tensor:
    """The value of a Keras or TF variable (a distributed one's too: `tf.convert_to_tensor`)."""
    return tf.convert_to_tensor(variable.value if isinstance(variable, keras.Variable) else variable)


def _count(variable) -> int:
    """An integer counter's value (`iterations`, `skipped_steps`), a distributed one's too."""
    return int(_read(variable).numpy())


class _Before(NamedTuple):
    """What a sampled step needs from before the update: the sampled weights [n] and m'_{t-1} [J, n]."""

    weights: tf.Tensor
    normalized_moment: tf.Tensor


class _CoordinateSample:
    """A fixed sample of coordinates of every variable, and the two compiled reads of one sampled step."""

    def __init__(self, optimizer: HyperAdam, variables: list, per_variable: int, sample_size: int, seed: int):
        self.optimizer, self.variables = optimizer, list(variables)
        self.slots = [optimizer.slots(v) for v in self.variables]  # KeyError: a variable it does not update
        sizes = [int(np.prod(v.shape)) for v in self.variables]
        rng = np.random.default_rng(seed)
        counts = sample_counts(sizes, per_variable, sample_size, seed)
        # Flat (row-major) indices into each variable, sorted; variables with none are left out.
        self.indices = {i: np.sort(rng.choice(p, k, replace=False)).astype(np.int64)
                        for i, (p, k) in enumerate(zip(sizes, counts)) if k > 0}
        self.paths = [getattr(self.variables[i], "path", self.variables[i].name) for i in self.indices]
        self.segments = tf.constant(np.repeat(np.arange(len(self.indices)), [len(ix) for ix in self.indices.values()]))
        meta = optimizer.meta_params
        self.meta = equations.MetaWeights(*(tf.constant(a) for a in meta.weights()))
        self.feature_normalization = meta.feature_normalization
        self.before = tf.function(self._before)
        self.after = tf.function(self._after)

    def _gather(self, name: str | None) -> tf.Tensor:
        """The sampled coordinates of the weights (name None, [n] float32) or of slot `name` ([K, n])."""
        parts = []
        for i, index in self.indices.items():
            if name is None:
                parts.append(tf.gather(tf.reshape(tf.cast(_read(self.variables[i]), tf.float32), [-1]), index))
            else:
                slot = _read(self.slots[i][name])
                parts.append(tf.gather(tf.reshape(slot, [slot.shape[0], -1]), index, axis=1))
        return tf.concat(parts, axis=-1)

    def _before(self) -> _Before:
        # The global column norms of m_{t-1}, over ALL coordinates of all variables, as in the step; the
        # variables stand in for the gradients, whose sizes alone (the "rms" count) are used.
        _, column_sq_norms = equations.feature_sq_scales(
            [_read(v) for v in self.variables], [_read(s["m"]) for s in self.slots], self.feature_normalization)
        m_prime = equations.normalized_moment(self._gather("m"), column_sq_norms)
        clip = equations.feature_clip(self.feature_normalization)
        if clip is not None:
            m_prime = tf.clip_by_value(m_prime, -clip, clip)
        return _Before(self._gather(None), m_prime)

    def _after(self, before: _Before, alpha: tf.Tensor) -> dict:
        h = self._gather("h")
        meta = self.meta
        rho = equations.weight_cell(h, meta.weight_kernel, meta.weight_bias)
        beta, gamma = equations.adam_cell_decay_rates(before.normalized_moment, h, meta.beta_kernel,
                                                      meta.beta_bias, meta.gamma_kernel, meta.gamma_bias)
        delta_sq = tf.square(before.weights - self._gather(None))
        stats = {"overall": tf.sqrt(tf.reduce_mean(delta_sq)) / alpha,
                 "per_variable": tf.sqrt(tf.math.segment_mean(delta_sq, self.segments)) / alpha,
                 "rho": rho, "rho_sum": tf.reduce_sum(rho, axis=0), "beta": beta, "gamma": gamma}
        stats.update({f"{name}/histogram": histogram_buckets(stats[name]) for name in DISTRIBUTIONS})
        return stats


class HyperAdamMonitor(keras.callbacks.Callback):
    """Writes HyperAdam's effective step, candidate weights ρ, decays β, γ and skipped steps to TensorBoard.

    Every `every_n_steps` updates (at updates s = n, 2n, …; the TensorBoard step is s) it samples a
    fixed, seeded set of coordinates, at most `per_variable` of each variable and `sample_size` in all,
    and writes the tags of the module docstring (docs/monitor.md) as `tf.summary` event files in
    `log_dir`. Its cost is sampled too: about one reduction over the m slots every n updates.

    Args:
        log_dir: the directory of the event files (created if needed); e.g. `"logs/hyperadam"` next to
            Keras's `TensorBoard("logs")`, whose runs are `logs/train` and `logs/validation`.
        every_n_steps: updates between two samples, an integer >= 1.
        sample_size: coordinates sampled in all, an integer >= 1.
        per_variable: coordinates sampled of one variable at most, an integer >= 1.
        seed: the seed of the sample, chosen once per model at the first `fit`.

    The model must be compiled with a `HyperAdam` (a `TypeError` otherwise, at the start of `fit`;
    Keras's `LossScaleOptimizer` around one is fine) and `steps_per_execution=1` (a `ValueError`): the
    state is read between single updates. A batch that applies no update (a micro-step of gradient
    accumulation) defers the sample to the next one that does.
    """

    def __init__(self, log_dir: str | os.PathLike, every_n_steps: int = DEFAULT_EVERY_N_STEPS,
                 sample_size: int = DEFAULT_SAMPLE_SIZE, per_variable: int = DEFAULT_PER_VARIABLE, seed: int = 0):
        super().__init__()
        self.log_dir = os.fspath(log_dir)
        self.every_n_steps = _check_positive_int("every_n_steps", every_n_steps)
        self.sample_size = _check_positive_int("sample_size", sample_size)
        self.per_variable = _check_positive_int("per_variable", per_variable)
        self.seed = int(seed)
        self._sample: _CoordinateSample | None = None
        self._writer = None
        self._baseline = None  # (iterations, skipped steps) when monitoring began
        self._pending = None  # (iterations before, α_t, _Before) of a sampled step in progress
        self._next_sample = None  # the update count s of the next sample

    @property
    def sample(self) -> dict[str, np.ndarray]:
        """The sampled coordinates: variable path -> sorted flat (row-major) indices (after the first `fit`)."""
        if self._sample is None:
            return {}
        return dict(zip(self._sample.paths, self._sample.indices.values()))

    def _optimizer(self) -> HyperAdam:
        optimizer = getattr(self.model, "optimizer", None)
        optimizer = getattr(optimizer, "inner_optimizer", optimizer)  # keras.optimizers.LossScaleOptimizer
        if not isinstance(optimizer, HyperAdam):
            raise TypeError(f"HyperAdamMonitor needs a model compiled with a hyperadam_keras.HyperAdam "
                            f"optimizer, got {type(optimizer).__name__}")
        return optimizer

    def on_train_begin(self, logs=None):
        optimizer = self._optimizer()
        steps_per_execution = getattr(self.model, "steps_per_execution", 1) or 1
        if steps_per_execution != 1:
            raise ValueError(f"HyperAdamMonitor needs model.compile(steps_per_execution=1), got "
                             f"{steps_per_execution}: it reads the optimizer state between single updates")
        if self._sample is not None and self._sample.optimizer is not optimizer:
            self._sample = self._baseline = None  # recompiled: a new optimizer, a new sample
        if self._baseline is None:
            self._baseline = (_count(optimizer.iterations), _count(optimizer.skipped_steps))
        self._writer = tf.summary.create_file_writer(self.log_dir)
        self._pending = self._next_sample = None

    def on_train_batch_begin(self, batch, logs=None):
        optimizer = self._optimizer()
        iterations = _count(optimizer.iterations)
        if self._next_sample is None:  # the first multiple of n from the next update on
            self._next_sample = (iterations // self.every_n_steps + 1) * self.every_n_steps
        if iterations + 1 < self._next_sample:
            self._pending = None
            return
        if self._sample is None:  # the optimizer is built by now
            self._sample = _CoordinateSample(optimizer, self.model.trainable_variables, self.per_variable,
                                             self.sample_size, self.seed)
        # α_t as the step computes it: learning_rate (at `iterations`) times the factor of update s.
        alpha = (tf.cast(optimizer.learning_rate, tf.float32)
                 * step_size_factor(iterations + 1, optimizer.decay_after, optimizer.warmup_steps))
        self._pending = (iterations, alpha, self._sample.before())

    def on_train_batch_end(self, batch, logs=None):
        if self._pending is None:
            return
        optimizer = self._optimizer()
        before_iterations, alpha, before = self._pending
        self._pending = None
        step = _count(optimizer.iterations)
        if step == before_iterations:  # no update applied: sample the next batch instead
            return
        self._next_sample = (step // self.every_n_steps + 1) * self.every_n_steps
        self._write(step, alpha, self._sample.after(before, alpha), optimizer)

    def _write(self, step: int, alpha: tf.Tensor, stats: dict, optimizer: HyperAdam) -> None:
        """Writes one sample's summaries at TensorBoard step `step`."""
        base_iterations, base_skipped = self._baseline
        skipped = _count(optimizer.skipped_steps) - base_skipped
        alpha_value = float(alpha)
        scalars = {"learning_rate/alpha_t": alpha_value}
        if np.isfinite(alpha_value) and alpha_value > 0:  # else the step was skipped (or is 0)
            scalars["effective_step/overall"] = float(stats["overall"])
            scalars.update((f"effective_step/{path}", value)
                           for path, value in zip(self._sample.paths, stats["per_variable"].numpy()))
        for name in DISTRIBUTIONS:
            scalars.update((f"{name}/q{round(100 * q):02d}", value)
                           for q, value in zip(QUANTILES, np.quantile(stats[name].numpy(), QUANTILES)))
        scalars["skipped/steps"] = skipped
        scalars["skipped/fraction"] = skipped / max(step - base_iterations, 1)
        with self._writer.as_default(step=step):
            for name in DISTRIBUTIONS:
                tf.summary.write(f"{name}/histogram", stats[f"{name}/histogram"], metadata=_HISTOGRAM)
            for tag, value in scalars.items():
                tf.summary.write(tag, tf.constant(value, tf.float32), metadata=_SCALAR)

    def on_epoch_end(self, epoch, logs=None):
        if self._writer is not None:
            self._writer.flush()

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()
            self._writer = None
