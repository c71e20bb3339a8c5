"""Truncated unrolls of HyperAdam on an optimizee task, and their meta-gradients (pure functions).

Three kinds of state are kept apart, as in `learned_optimization`:
  * meta-parameters: a `equations.MetaWeights` of tensors or `tf.Variable`s (what meta-training learns);
  * per-parameter optimizer state: one `equations.CoordinateState` per optimizee tensor, flattened to
    `[H, n]` / `[J, n]` matrices, coordinates last (what `HyperAdam` keeps in its slots);
  * the unroll: an `UnrollState` (optimizee parameters, their optimizer state, the step counter) that
    a truncation takes in and hands back, so a horizon of T steps is T / K truncations of K steps.

The update math is `equations.hyperadam_directions`: the two global reductions of the paper taken
over all optimizee tensors, then `hyperadam_direction` per tensor, exactly as `HyperAdam` does; a test checks that K steps here equal K steps of the optimizer.

Meta-loss of a truncation of K steps from iterate w_0: the mean of L(w_k; batch_k) for k = 1..K, the
losses of the K iterates the truncation produces, each on the batch that step k+1 computes its
gradient on. Every term depends on the meta-parameters (the loss of w_0 would not), and K-1 of the
K losses are the ones the next gradient needs anyway; only the last costs one extra forward pass.
The optimizee gradient is a constant to the meta-gradient (first order, as the paper) unless
`second_order=True`; then `second_order_clip` c may bound what flows back into it (`bound_cotangent`).

Task interface used here (see `hyperadam_keras.lab.tasks.base.Task`): `task.init_params(seed) ->
list[tf.Tensor]`, `task.sample_batch(seed, step)` (graph/XLA compatible) and `task.loss(params, batch)
-> scalar`.
"""

from __future__ import annotations

from typing import Callable, NamedTuple, Sequence

import tensorflow as tf

from hyperadam_keras import equations
from hyperadam_keras.defaults import DEFAULT_EPSILON, PAPER_LEARNING_RATE
from hyperadam_keras.meta_params import NAMES, MetaParams
from hyperadam_keras.schedules import horizon_decay_factor


_TINY_LOSS = 1e-30  # floor of log L: a zero loss must not give -inf


class UnrollState(NamedTuple):
    """What a truncation carries in and out: optimizee parameters, their HyperAdam state, step counter."""

    params: list  # optimizee tensors, their own shapes
    opt_state: list  # one equations.CoordinateState per tensor, rows = that tensor's coordinates
    step: tf.Tensor  # int64 scalar: optimizee steps taken so far on this task (selects the batches)


# --- meta-parameters ------------------------------------------------------------------------------


def meta_variables(params: MetaParams, trainable: bool = True, dtype=tf.float32) -> equations.MetaWeights:
    """The meta-parameters as `tf.Variable`s, in the order of `MetaWeights` / `meta_params.NAMES`."""
    return equations.MetaWeights(*(
        tf.Variable(tf.cast(params.values[name], dtype), trainable=trainable, name=name.replace("/", "_"))
        for name in NAMES))


def to_meta_params(meta: equations.MetaWeights, source: str = "meta-training",
                   feature_normalization: str = "norm") -> MetaParams:
    """Validated float32 `MetaParams` from tensors or variables (raises on NaN / inf)."""
    return MetaParams.from_arrays({name: tf.cast(value, tf.float32).numpy() for name, value in
                                   zip(NAMES, meta)}, source=source, feature_normalization=feature_normalization)


# --- per-parameter state and one step -------------------------------------------------------------


def init_opt_state(params: Sequence[tf.Tensor], num_candidates: int, hidden: int) -> list:
    """Zero HyperAdam state for each optimizee tensor (h = c = m = v = β̂ = γ̂ = 0, as the optimizer's slots)."""
    states = []
    for p in params:
        n = tf.size(p)
        zeros_h = tf.zeros(tf.stack([hidden, n]), p.dtype)
        zeros_j = tf.zeros(tf.stack([num_candidates, n]), p.dtype)
        states.append(equations.CoordinateState(zeros_h, zeros_h, zeros_j, zeros_j, zeros_j, zeros_j))
    return states


def init_unroll_state(params: Sequence[tf.Tensor], num_candidates: int, hidden: int) -> UnrollState:
    """Start of a task: given initial parameters, zero optimizer state, step 0."""
    params = [tf.convert_to_tensor(p) for p in params]
    return UnrollState(params, init_opt_state(params, num_candidates, hidden), tf.constant(0, tf.int64))


def hyperadam_update(meta: equations.MetaWeights, params: Sequence[tf.Tensor], grads: Sequence[tf.Tensor],
                     opt_state: Sequence[equations.CoordinateState], learning_rate: float,
                     epsilon: float = DEFAULT_EPSILON, feature_normalization: str = "norm",
                     max_relative_step: float | None = None, candidate_clip: float | None = None
                     ) -> tuple[list, list]:
    """One HyperAdam step on all optimizee tensors: w_t = w_{t-1} - α d_t, norms global over all of them.

    With `max_relative_step` (τ) each tensor's step α d_t is capped to τ of the tensor's scale
    (`equations.cap_relative_step`), as `HyperAdam(max_relative_step=τ)` caps it; with `candidate_clip` κ
    each candidate m̂_j is clipped to ±κ, as `HyperAdam(candidate_clip=κ)` clips it. Returns (new params,
    new per-tensor states). Same math and reductions as `HyperAdam`.
    """
    directions, new_states = equations.hyperadam_directions(
        meta, [tf.reshape(g, [-1]) for g in grads], list(opt_state), epsilon, feature_normalization, candidate_clip)
    new_params = []
    for p, d in zip(params, directions):
        delta = tf.cast(learning_rate, p.dtype) * d
        if max_relative_step is not None:
            delta = equations.cap_relative_step(delta, tf.reshape(p, [-1]), max_relative_step)
        new_params.append(p - tf.reshape(delta, tf.shape(p)))
    return new_params, new_states


# --- truncations ------------------------------------------------------------------------------------


def bound_cotangent(tensor: tf.Tensor, clip: float) -> tf.Tensor:
    """The identity forward; backward, the cotangent ∂M/∂x clipped entry by entry to [−c, c], non-finite → 0.

    Applied to each optimizee gradient g_t in a second-order unroll (`second_order_clip`). There
    ∂M/∂g_t carries the update's Jacobian ∂d_t/∂g_t, which is about 1/|g| on a coordinate whose
    gradient is ~0 but not exactly 0 (a conv bias before batch normalization, a dense weight behind a
    dead unit): measured 1e13-1e20 on such coordinates (`benchmarks/second_order_probe.py`), against
    1e-4-1e-2 elsewhere. The Hessian then carries it into every weight, and over 10 steps of a BatchNorm
    CNN it overflows to NaN. Clipping each entry bounds what one step feeds back, and leaves the
    entries below c (every coordinate whose gradient is not ~0) exact.
    """
    clip = float(clip)

    @tf.custom_gradient
    def identity(x):
        def backward(cotangent):
            finite = tf.where(tf.math.is_finite(cotangent), cotangent, tf.zeros_like(cotangent))
            return tf.clip_by_value(finite, -clip, clip)
        return tf.identity(x), backward

    return identity(tensor)


def _loss_and_grads(task, params: list, batch, second_order: bool, second_order_clip: float | None = None):
    with tf.GradientTape() as tape:
        tape.watch(params)
        loss = task.loss(params, batch)
    grads = tape.gradient(loss, params, unconnected_gradients=tf.UnconnectedGradients.ZERO)
    if not second_order:
        # First order (the paper): the optimizee gradient is data to the meta-gradient.
        grads = [tf.stop_gradient(g) for g in grads]
    elif second_order_clip is not None:
        grads = [bound_cotangent(g, second_order_clip) for g in grads]
    return loss, grads


def _step_size(learning_rate: float, update_count: tf.Tensor, decay_after: int | None):
    """α of the `update_count`-th update (from 1): `HyperAdam`'s α·√(T'/max(s, T')) beyond T' = `decay_after`.

    With `decay_after=None` it is `learning_rate` itself, so the unroll is the same graph, bit for bit,
    as before the option existed.
    """
    if decay_after is None:
        return learning_rate
    return learning_rate * horizon_decay_factor(update_count, decay_after)


def unroll(meta: equations.MetaWeights, task, state: UnrollState, task_seed, num_steps: int,
           learning_rate: float = PAPER_LEARNING_RATE, epsilon: float = DEFAULT_EPSILON,
           second_order: bool = False, feature_normalization: str = "norm",
           decay_after: int | None = None, max_relative_step: float | None = None,
           candidate_clip: float | None = None, second_order_clip: float | None = None
           ) -> tuple[tf.Tensor, tf.Tensor, UnrollState]:
    """Runs `num_steps` HyperAdam steps from `state` (a `tf.while_loop` of num_steps - 1 steps and a last one).

    Returns (meta-loss, losses [num_steps], new state): losses[k-1] = L(w_k; batch_k), the loss of the
    k-th new iterate on the batch of step `state.step + k`; meta-loss is their mean. Differentiable
    with respect to `meta` (record it under a `GradientTape`; see `meta_gradient`). `decay_after`: the
    optimizer's step decay (`HyperAdam(decay_after=...)`), counted in the task's steps (`state.step`);
    `max_relative_step`: the optimizer's relative-step cap (`HyperAdam(max_relative_step=...)`; None: none);
    `candidate_clip`: its clip of each candidate (`HyperAdam(candidate_clip=...)`; None: none);
    `second_order_clip`: with `second_order`, the bound of `bound_cotangent` on each gradient (None: exact).
    """
    params, opt_state, step = list(state.params), list(state.opt_state), state.step
    _, grads = _loss_and_grads(task, params, task.sample_batch(task_seed, step), second_order, second_order_clip)

    def body(k, params, opt_state, grads, losses):
        rate = _step_size(learning_rate, step + tf.cast(k, tf.int64) + 1, decay_after)
        params, opt_state = hyperadam_update(meta, params, grads, opt_state, rate, epsilon,
                                             feature_normalization, max_relative_step, candidate_clip)
        loss, grads = _loss_and_grads(task, params, task.sample_batch(task_seed, step + tf.cast(k, tf.int64) + 1),
                                      second_order, second_order_clip)
        return k + 1, params, opt_state, grads, losses.write(k, loss)

    # A while loop, not a Python loop: the graph (and XLA's compile time) does not grow with K.
    losses = tf.TensorArray(params[0].dtype, size=num_steps)
    _, params, opt_state, grads, losses = tf.while_loop(
        lambda k, *_: k < num_steps - 1, body, (tf.constant(0), params, opt_state, grads, losses),
        maximum_iterations=num_steps - 1)
    # The last iterate's loss only: its gradient belongs to the next truncation.
    params, opt_state = hyperadam_update(meta, params, grads, opt_state,
                                         _step_size(learning_rate, step + num_steps, decay_after), epsilon,
                                         feature_normalization, max_relative_step, candidate_clip)
    losses = losses.write(num_steps - 1, task.loss(params, task.sample_batch(task_seed, step + num_steps)))
    losses = losses.stack()
    return tf.reduce_mean(losses), losses, UnrollState(params, opt_state, step + num_steps)


def meta_gradient(meta: equations.MetaWeights, task, state: UnrollState, task_seed, num_steps: int,
                  learning_rate: float = PAPER_LEARNING_RATE, epsilon: float = DEFAULT_EPSILON,
                  second_order: bool = False, log_objective: bool = False,
                  feature_normalization: str = "norm", decay_after: int | None = None,
                  max_relative_step: float | None = None, candidate_clip: float | None = None,
                  second_order_clip: float | None = None) -> tuple[tf.Tensor, list, UnrollState]:
    """One truncation and the gradient of its meta-loss: (meta-loss, grads in `meta` order, new state).

    meta-loss = mean_k L(w_k) (the paper), or with `log_objective` mean_k log L(w_k): invariant to the
    scale of the loss, so in a mixture of tasks (cross-entropy near 1, sine MSE near 10) each task's
    relative progress counts alike. The carried-in state is a constant (truncated backpropagation
    through time); the carried-out state is returned without a gradient path, for the next truncation.
    """
    state = tf.nest.map_structure(tf.stop_gradient, state)
    with tf.GradientTape() as tape:
        tape.watch([m for m in meta if not isinstance(m, tf.Variable)])
        meta_loss, losses, new_state = unroll(meta, task, state, task_seed, num_steps, learning_rate, epsilon,
                                              second_order, feature_normalization, decay_after, max_relative_step,
                                              candidate_clip, second_order_clip)
        if log_objective:
            meta_loss = tf.reduce_mean(tf.math.log(tf.maximum(losses, _TINY_LOSS)))
    grads = tape.gradient(meta_loss, list(meta), unconnected_gradients=tf.UnconnectedGradients.ZERO)
    return meta_loss, grads, tf.nest.map_structure(tf.stop_gradient, new_state)


def evaluate(meta: equations.MetaWeights, task, state: UnrollState, task_seed, num_steps: int,
             learning_rate: float = PAPER_LEARNING_RATE, epsilon: float = DEFAULT_EPSILON,
             feature_normalization: str = "norm", decay_after: int | None = None,
             max_relative_step: float | None = None, candidate_clip: float | None = None
             ) -> tuple[tf.Tensor, UnrollState]:
    """Forward only, for meta-validation: (losses [num_steps] of the new iterates, final state)."""
    meta = equations.MetaWeights(*(tf.stop_gradient(tf.convert_to_tensor(m)) for m in meta))
    _, losses, new_state = unroll(meta, task, state, task_seed, num_steps, learning_rate, epsilon,
                                  feature_normalization=feature_normalization, decay_after=decay_after,
                                  max_relative_step=max_relative_step, candidate_clip=candidate_clip)
    return losses, new_state


def compile_fn(fn: Callable, jit_compile: bool) -> Callable:
    """`tf.function` with or without XLA; `reduce_retracing` so new tasks of one family reuse the graph."""
    return tf.function(fn, jit_compile=jit_compile, reduce_retracing=True)
