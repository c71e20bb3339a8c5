"""HyperAdam's compiled update program: one tensor's coordinates per call (`coordinate_update`), whether a
step is applied at all (`step_is_finite`), and how its state is stored (`STATE_DTYPES`,
`stochastic_round_to_bfloat16`). The math is `equations.py`'s; this module only decides what one
compiled call covers, what a skipped step returns and how the new state is rounded. The optimizer calls
it once per variable, the way `tf.distribute` places updates; one program for all variables of a step
was measured no faster (`benchmarks/fused_probe.py`, docs/speed.md).
"""

from __future__ import annotations

import functools
from typing import Callable

import tensorflow as tf

from hyperadam_keras import equations

# The dtypes the optimizer state can be stored in; the update always computes in float32.
STATE_DTYPES = ("float32", "bfloat16")

# Odd 32-bit constants (golden ratio and MurmurHash3's finalizer): they spread step, variable and slot
# over the counter's 32 bits before the hash mixes them.
_STEP_MIX, _VARIABLE_MIX, _SLOT_MIX = 0x9E3779B9, 0x85EBCA6B, 0xC2B2AE35


def check_state_dtype(state_dtype: object) -> str:
    """`state_dtype` as one of `STATE_DTYPES`; anything else is a ValueError naming it."""
    if not isinstance(state_dtype, str) or state_dtype not in STATE_DTYPES:
        raise ValueError(f"state_dtype must be one of {', '.join(map(repr, STATE_DTYPES))}, got {state_dtype!r}")
    return state_dtype


def _hash32(x):
    """A 32-bit integer hash (the "lowbias32" finalizer): every output bit depends on every input bit."""
    x = tf.bitwise.bitwise_xor(x, tf.bitwise.right_shift(x, 16)) * tf.constant(0x7FEB352D, tf.uint32)
    x = tf.bitwise.bitwise_xor(x, tf.bitwise.right_shift(x, 15)) * tf.constant(0x846CA68B, tf.uint32)
    return tf.bitwise.bitwise_xor(x, tf.bitwise.right_shift(x, 16))


def stochastic_round_to_bfloat16(x, seed, stream: int = 0):
    """float32 x rounded to one of the two bfloat16 values around it, up with probability equal to its
    distance from the lower one over their spacing, so that E[round(x)] = x:

        round(x) = truncate_16(bits(x) + r),   r uniform on {0, …, 2^16 − 1}

    (bfloat16 is float32's upper 16 bits; adding r to the magnitude and cutting the lower half rounds the
    magnitude up with that probability, on either sign). r comes from a hash of each entry's index, the
    `seed` pair (step, variable) and `stream` (which slot): deterministic for given inputs, so replicas
    of a `tf.distribute` step round alike, and different from step to step. Non-finite entries are
    rounded to nearest (a NaN keeps being a NaN).

    Why not round to nearest: an EMA such as v_t = γ v + (1 − γ) g² with 1 − γ = 0.001 changes v by less
    than half of bfloat16's relative spacing (2^-8) each step, so rounding to nearest would freeze v, β̂
    and γ̂; rounded stochastically they move as they do in float32, on average.
    """
    seed = tf.cast(seed, tf.uint32)
    counter = (tf.bitcast(tf.reshape(tf.range(tf.size(x), dtype=tf.int32), tf.shape(x)), tf.uint32)
               + seed[0] * tf.constant(_STEP_MIX, tf.uint32) + seed[1] * tf.constant(_VARIABLE_MIX, tf.uint32)
               + tf.constant((stream * _SLOT_MIX) % 2**32, tf.uint32))
    dither = tf.bitwise.bitwise_and(_hash32(counter), tf.constant(0xFFFF, tf.uint32))
    rounded = tf.bitwise.bitwise_and(tf.bitcast(x, tf.uint32) + dither, tf.constant(0xFFFF0000, tf.uint32))
    return tf.where(tf.math.is_finite(x), tf.cast(tf.bitcast(rounded, tf.float32), tf.bfloat16),
                    tf.cast(x, tf.bfloat16))


def coordinate_update(meta: equations.MetaWeights, gradient, state: list, weights, learning_rate, weight_decay,
                      grad_sq_norm, moment_col_sq_norms, is_finite, epsilon: float,
                      feature_clip: float | None = None, max_relative_step: float | None = None,
                      rounding_seed=None, candidate_clip: float | None = None):
    """Pure update of the n flattened coordinates of one tensor: returns (Δw [n] to subtract, new state list).

    Δw = α (d_t + λ w), capped to `max_relative_step` of the tensor's scale when given
    (`equations.cap_relative_step`); on a non-finite step (`is_finite` False) Δw = 0 and the state is
    returned as it came, so the step leaves everything untouched. The state may arrive in bfloat16: it is
    computed on in float32, and the new state is returned in the dtype it came in, rounded stochastically
    (`stochastic_round_to_bfloat16`, seeded by `rounding_seed`, an int pair (step, variable)). With
    `candidate_clip` κ each candidate m̂_j is clipped to ±κ (`equations.combine_corrected_moments`).
    """
    stored = state
    state = [tf.cast(s, tf.float32) for s in state]  # float32 state: no op
    direction, new_state = equations.hyperadam_direction(
        meta, gradient, equations.CoordinateState(*state), grad_sq_norm, moment_col_sq_norms, epsilon,
        feature_clip, candidate_clip)
    if stored[0].dtype == tf.bfloat16:
        if rounding_seed is None:
            raise ValueError("coordinate_update: a bfloat16 state needs a rounding_seed")
        new_state = [stochastic_round_to_bfloat16(s, rounding_seed, stream) for stream, s in enumerate(new_state)]
    delta = learning_rate * (direction + weight_decay * weights)
    if max_relative_step is not None:
        delta = equations.cap_relative_step(delta, weights, max_relative_step)
    new_state = [tf.where(is_finite, new, old) for new, old in zip(new_state, stored)]
    return tf.where(is_finite, delta, tf.zeros_like(delta)), new_state


@functools.lru_cache(maxsize=None)
def compiled_coordinate_update(num_candidates: int, hidden: int, epsilon: float,
                               feature_clip: float | None = None, max_relative_step: float | None = None,
                               candidate_clip: float | None = None) -> Callable:
    """`coordinate_update` compiled with XLA, shared by every optimizer with this J, H, ε, feature clip,
    relative-step cap and candidate clip.

    The meta-parameters are arguments, not constants baked into the graph, so a new optimizer
    instance reuses the compiled program of an earlier one instead of paying for another XLA
    compile; only the number of coordinates varies between calls (`reduce_retracing`).
    """
    del num_candidates, hidden  # cache keys: one function per (J, H) keeps the traced J, H static
    return tf.function(functools.partial(coordinate_update, epsilon=epsilon, feature_clip=feature_clip,
                                         max_relative_step=max_relative_step, candidate_clip=candidate_clip),
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
