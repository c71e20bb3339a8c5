"""HyperAdam's step size: the decay it applies beyond the horizon its meta-parameters were trained on,
the checks of `decay_after` and `learning_rate`, and the warning when a step's learning rate is invalid."""

from __future__ import annotations

import sys

import keras
import tensorflow as tf

from hyperadam_keras.defaults import DEFAULT_DECAY_AFTER, check_finite_non_negative

__all__ = ["DEFAULT_DECAY_AFTER", "check_decay_after", "check_learning_rate", "check_max_relative_step",
           "check_warmup_steps", "horizon_decay_factor", "learning_rate_is_valid", "report_invalid_learning_rate",
           "step_size_factor", "warmup_factor"]


def check_decay_after(decay_after: int | None) -> int | None:
    """`decay_after` as an int ≥ 1, or None (no decay); anything else is a ValueError naming it."""
    return _check_step_count("decay_after", decay_after)


def _check_step_count(name: str, value: object) -> int | None:
    """`value` as an int ≥ 1 (a whole float too), or None; anything else is a ValueError naming `name`."""
    if value is None:
        return None
    message = f"{name} must be None or an integer number of steps >= 1, got {value!r}"
    if isinstance(value, (bool, str)):
        raise ValueError(message)
    try:
        whole = float(value).is_integer()
    except (TypeError, ValueError) as error:
        raise ValueError(message) from error
    if not whole or int(value) < 1:
        raise ValueError(message)
    return int(value)


def horizon_decay_factor(update_count: tf.Tensor | int, decay_after: int | None) -> tf.Tensor:
    """√(T / max(s, T)) for the s-th update (s ≥ 1) and T = `decay_after`; 1 when `decay_after` is None.

    Meta-training unrolls T steps at a constant α, so the learned update is trained to do well within T
    steps at that α and nothing tells it to settle later: with a constant α it hovers at the noise level
    of its effective step on runs far longer than T. Beyond T the step decays as 1/√s, the rate under which
    Adam-type methods are analysed; within T the factor is exactly 1.0 (√1 in IEEE arithmetic), so a
    run of at most T steps is the same run, bit for bit, as one without the decay. Unlike a cosine decay
    it needs no total number of steps.
    """
    if decay_after is None:
        return tf.constant(1.0, tf.float32)
    horizon = float(decay_after)
    s = tf.cast(update_count, tf.float32)
    return tf.sqrt(horizon / tf.maximum(s, horizon))


def check_warmup_steps(warmup_steps: int | None) -> int | None:
    """`warmup_steps` as an int ≥ 1, or None (no warm-up); anything else is a ValueError naming it."""
    return _check_step_count("warmup_steps", warmup_steps)


def _positive_or_none(name: str, value: object) -> float | None:
    """`value` as a float > 0 (finite), or None; anything else is a ValueError naming `name`."""
    if value is None:
        return None
    number = check_finite_non_negative(name, value, "None or a finite number > 0")
    if number == 0:
        raise ValueError(f"{name} must be None or a finite number > 0, got {value!r}")
    return number


def check_max_relative_step(max_relative_step: float | None) -> float | None:
    """`max_relative_step` as a float > 0 (finite), or None (no cap); anything else is a ValueError naming it."""
    return _positive_or_none("max_relative_step", max_relative_step)


def check_candidate_clip(candidate_clip: float | None) -> float | None:
    """`candidate_clip` as a float > 0 (finite), or None (no clip); anything else is a ValueError naming it."""
    return _positive_or_none("candidate_clip", candidate_clip)


def warmup_factor(update_count: tf.Tensor | int, warmup_steps: int | None) -> tf.Tensor:
    """min(1, s / W) for the s-th update (s ≥ 1) and W = `warmup_steps`; 1 when `warmup_steps` is None.

    The first steps of an Adam-type update are the least informed (its second moments rest on a few
    gradients, and each candidate's m̂/√v̂ is near ±1 on every coordinate): a linear warm-up keeps them
    small, the remedy Adam users apply to the spikes of batch-normalized and attention models.
    """
    if warmup_steps is None:
        return tf.constant(1.0, tf.float32)
    s = tf.cast(update_count, tf.float32)
    return tf.minimum(1.0, s / float(warmup_steps))


def step_size_factor(update_count: tf.Tensor | int, decay_after: int | None,
                     warmup_steps: int | None = None) -> tf.Tensor:
    """What multiplies α at the s-th update: `warmup_factor` × `horizon_decay_factor`."""
    factor = horizon_decay_factor(update_count, decay_after)
    if warmup_steps is None:
        return factor
    return factor * warmup_factor(update_count, warmup_steps)


def check_learning_rate(learning_rate: object) -> object:
    """`learning_rate` as HyperAdam takes it: a `LearningRateSchedule`, a callable or a tensor as given (their
    values are checked at every step), a number as a float if it is finite and >= 0; anything else is a
    ValueError naming the argument and the value."""
    if isinstance(learning_rate, keras.optimizers.schedules.LearningRateSchedule) or callable(learning_rate) \
            or tf.is_tensor(learning_rate) or isinstance(learning_rate, keras.Variable):
        return learning_rate
    return check_finite_non_negative(
        "learning_rate", learning_rate, "a finite number >= 0, a LearningRateSchedule or a callable")


def learning_rate_is_valid(learning_rate: tf.Tensor) -> tf.Tensor:
    """Whether a step's learning rate (a float32 scalar) is finite and >= 0: a step with any other is skipped."""
    return tf.logical_and(tf.math.is_finite(learning_rate), learning_rate >= 0)


def _in_xla_context() -> bool:
    """Whether the op being built is compiled with XLA (e.g. `model.compile(jit_compile=True)`), where
    `tf.print` cannot run."""
    try:
        from tensorflow.python.ops import control_flow_util
        return bool(control_flow_util.GraphOrParentsInXlaContext(tf.compat.v1.get_default_graph()))
    except (ImportError, AttributeError):  # private API moved: assume XLA, which only costs the warning
        return True


_INVALID_LEARNING_RATE_WARNING = (
    "HyperAdam: the learning rate must be finite and >= 0 but is {} at update {}: the step is skipped "
    "(weights and optimizer state untouched), as is every later step with such a rate. "
    "(This warning is printed once.)")


def report_invalid_learning_rate(seen: tf.Variable, is_valid: tf.Tensor, learning_rate: tf.Tensor,
                                 update_count: tf.Tensor) -> None:
    """Prints `_INVALID_LEARNING_RATE_WARNING` at the first step whose learning rate is invalid, and records in
    the boolean variable `seen` that one was. Inside an XLA-compiled step TensorFlow cannot print: there
    the step is skipped all the same, silently."""
    first = tf.logical_and(tf.logical_not(is_valid), tf.logical_not(seen.read_value()))
    if not _in_xla_context():
        def report():
            tf.print(tf.strings.format(_INVALID_LEARNING_RATE_WARNING, (learning_rate, update_count)),
                     output_stream=sys.stderr)
            return tf.constant(True)

        tf.cond(first, report, lambda: tf.constant(False))
    seen.assign(tf.logical_or(seen.read_value(), tf.logical_not(is_valid)))
