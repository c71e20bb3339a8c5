"""Does HyperAdam's step adapt to the task? Its effective step per task, beside tuned Adam's best rate.

The effective step of one update is RMS(Δw) / α_t: the root mean square of the update over all trainable
coordinates of the model, per unit of the step size actually used at that update (α times the decay
and warm-up factors, `schedules.step_size_factor`). A run's effective step is the root mean square of
that over its updates. For a fixed mixture of Adams it is about Σρ on every task (each bias-corrected
candidate is ±1 per coordinate at first); a task-adaptive optimizer takes a smaller one where a
smaller step is what the task needs, which is where tuned Adam's best rate is smaller: across tasks,
the two should rank alike (`spearman`).

`fit_effective_step` trains a `generalization`-style builder with Keras `fit`; `task_effective_step` a
suite task (the paper's MLPs and LSTMs) with the optimizer's `apply_gradients` in a plain loop.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import keras
import numpy as np
import tensorflow as tf

from hyperadam_keras.optimizer import HyperAdam
from hyperadam_keras.schedules import step_size_factor


def _flat(variables: Sequence) -> tf.Tensor:
    return tf.concat([tf.reshape(tf.cast(tf.convert_to_tensor(v), tf.float64), [-1]) for v in variables], 0)


def step_size_used(optimizer: HyperAdam, update: int) -> float:
    """α_t of update `update` (1-based): the rate times the decay and warm-up factors (the rate as the
    optimizer reads it now: a `LearningRateSchedule`'s value one iteration after the update)."""
    factor = step_size_factor(tf.constant(update, tf.int64), optimizer.decay_after, optimizer.warmup_steps)
    return float(optimizer.learning_rate) * float(factor)


class EffectiveStepRecorder(keras.callbacks.Callback):
    """Records RMS(Δw) / α_t of every update `fit` applies (a skipped step, Δw = 0, counts as 0)."""

    def __init__(self):
        super().__init__()
        self.steps: list[float] = []
        self._before: tf.Tensor | None = None

    def on_train_batch_begin(self, batch, logs=None):
        self._before = _flat(self.model.trainable_variables)

    def on_train_batch_end(self, batch, logs=None):
        optimizer = self.model.optimizer
        delta = _flat(self.model.trainable_variables) - self._before
        alpha = step_size_used(optimizer, int(optimizer.iterations))
        rms = float(tf.sqrt(tf.reduce_mean(tf.square(delta))))
        self.steps.append(rms / alpha if alpha > 0 else 0.0)


def summarize(steps: Sequence[float]) -> dict:
    """A run's effective step: the RMS over its updates, with the median, first and last beside it."""
    values = np.asarray(steps, np.float64)
    return {"rms": float(np.sqrt(np.mean(values ** 2))), "median": float(np.median(values)),
            "first": float(values[0]), "last": float(values[-1]), "updates": int(values.size)}


def fit_effective_step(builder: Callable[[], dict], optimizer_factory: Callable[[], HyperAdam],
                       seed: int) -> dict:
    """Trains the builder's model once with `fit` (as the `generalization` suite does) and returns
    `summarize` of its effective steps and the final training loss."""
    from hyperadam_keras.lab.eval.compare import FitRuns
    from hyperadam_keras.lab.eval.baselines import OptimizerSpec

    recorder = EffectiveStepRecorder()
    rate = float(optimizer_factory().learning_rate)
    spec = OptimizerSpec(label="HyperAdam", factory=lambda lr: optimizer_factory(), default_lr=rate,
                         info={"kind": "hyperadam"})
    record = FitRuns(builder, [recorder], None)(spec, seed, rate)
    return {**summarize(recorder.steps), "final_loss": record["final_loss"]}


def task_effective_step(task: Any, optimizer: HyperAdam, steps: int, seed: int) -> dict:
    """Trains a suite task (`suites.build_task`) for `steps` updates with `optimizer` and returns
    `summarize` of its effective steps and the last minibatch loss."""
    variables = [tf.Variable(p) for p in task.init_params(seed)]
    effective = []
    loss = None
    for step in range(steps):
        batch = task.sample_batch(seed, step)
        with tf.GradientTape() as tape:
            loss = task.loss(variables, batch)
        before = _flat(variables)
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        alpha = step_size_used(optimizer, int(optimizer.iterations))
        rms = float(tf.sqrt(tf.reduce_mean(tf.square(_flat(variables) - before))))
        effective.append(rms / alpha if alpha > 0 else 0.0)
    return {**summarize(effective), "last_batch_loss": float(loss)}


def ranks(values: Sequence[float]) -> np.ndarray:
    """Ranks 1..n of `values`, ties given their mean rank."""
    values = np.asarray(values, np.float64)
    order = np.argsort(values, kind="stable")
    result = np.empty(len(values))
    result[order] = np.arange(1, len(values) + 1)
    for value in np.unique(values):
        tied = values == value
        result[tied] = result[tied].mean()
    return result


def spearman(a: Sequence[float], b: Sequence[float]) -> float:
    """Spearman's rank correlation of two equally long sequences (Pearson's of their `ranks`)."""
    if len(a) != len(b) or len(a) < 2:
        raise ValueError(f"spearman needs two sequences of the same length >= 2, got {len(a)} and {len(b)}")
    ra, rb = ranks(a), ranks(b)
    ra, rb = ra - ra.mean(), rb - rb.mean()
    denominator = np.sqrt(np.sum(ra ** 2) * np.sum(rb ** 2))
    return float(np.sum(ra * rb) / denominator) if denominator > 0 else float("nan")
