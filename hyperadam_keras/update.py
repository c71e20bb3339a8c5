"""HyperAdam's compiled update program: one tensor's coordinates per call (`coordinate_update`), and
whether a step is applied at all (`step_is_finite`). The math is `equations.py`'s; this module only
decides what one compiled call covers and what a skipped step returns. The optimizer calls it once per
variable, the way `tf.distribute` places updates; one program for all variables of a step was measured
no faster (`benchmarks/fused_probe.py`, docs/speed.md).
"""

from __future__ import annotations

import functools
from typing import Callable

import tensorflow as tf

from hyperadam_keras import equations


def coordinate_update(meta: equations.MetaWeights, gradient, state: list, weights, learning_rate, weight_decay,
                      grad_sq_norm, moment_col_sq_norms, is_finite, epsilon: float,
                      feature_clip: float | None = None, max_relative_step: float | None = None):
    """Pure update of the n flattened coordinates of one tensor: returns (Δw [n] to subtract, new state list).

    Δw = α (d_t + λ w), capped to `max_relative_step` of the tensor's scale when given
    (`equations.cap_relative_step`); on a non-finite step (`is_finite` False) Δw = 0 and the state is
    returned as it came, so the step leaves everything untouched.
    """
    direction, new_state = equations.hyperadam_direction(
        meta, gradient, equations.CoordinateState(*state), grad_sq_norm, moment_col_sq_norms, epsilon,
        feature_clip)
    delta = learning_rate * (direction + weight_decay * weights)
    if max_relative_step is not None:
        delta = equations.cap_relative_step(delta, weights, max_relative_step)
    new_state = [tf.where(is_finite, new, old) for new, old in zip(new_state, state)]
    return tf.where(is_finite, delta, tf.zeros_like(delta)), new_state


@functools.lru_cache(maxsize=None)
def compiled_coordinate_update(num_candidates: int, hidden: int, epsilon: float,
                               feature_clip: float | None = None, max_relative_step: float | None = None
                               ) -> Callable:
    """`coordinate_update` compiled with XLA, shared by every optimizer with this J, H, ε, feature clip
    and relative-step cap.

    The meta-parameters are arguments, not constants baked into the graph, so a new optimizer
    instance reuses the compiled program of an earlier one instead of paying for another XLA
    compile; only the number of coordinates varies between calls (`reduce_retracing`).
    """
    del num_candidates, hidden  # cache keys: one function per (J, H) keeps the traced J, H static
    return tf.function(functools.partial(coordinate_update, epsilon=epsilon, feature_clip=feature_clip,
                                         max_relative_step=max_relative_step),
                       jit_compile=True, reduce_retracing=True)


def step_is_finite(gradients: list, grad_sq_norm, learning_rate_is_valid, skip_nonfinite: bool):
    """Whether a step is applied: its learning rate is valid and, under `skip_nonfinite`, every gradient
    entry is finite (a scalar sum can overflow to inf on its own, so each entry is checked, and the sum)."""
    is_finite = learning_rate_is_valid
    if skip_nonfinite:
        is_finite = tf.logical_and(is_finite, tf.math.is_finite(grad_sq_norm))
        for g in gradients:
            is_finite = tf.logical_and(is_finite, tf.reduce_all(tf.math.is_finite(g)))
    return is_finite
