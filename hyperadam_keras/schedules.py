"""The step-size decay HyperAdam applies beyond the horizon its meta-parameters were trained on."""

from __future__ import annotations

import tensorflow as tf

DEFAULT_DECAY_AFTER = 100  # the paper's meta-training horizon T, and the shipped bundle's


def check_decay_after(decay_after: int | None) -> int | None:
    """`decay_after` as an int ≥ 1, or None (no decay); anything else is a ValueError naming it."""
    if decay_after is None:
        return None
    message = f"decay_after must be None or an integer number of steps >= 1, got {decay_after!r}"
    if isinstance(decay_after, (bool, str)):
        raise ValueError(message)
    try:
        whole = float(decay_after).is_integer()
    except (TypeError, ValueError) as error:
        raise ValueError(message) from error
    if not whole or int(decay_after) < 1:
        raise ValueError(message)
    return int(decay_after)


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
