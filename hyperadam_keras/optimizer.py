"""`HyperAdam`, a Keras 3 optimizer (TensorFlow backend) running the learned HyperAdam update."""

from __future__ import annotations

import functools
from typing import Callable, Union

import keras
import numpy as np
import tensorflow as tf

from hyperadam_keras import equations, update
from hyperadam_keras import state_layout as slot_layout
from hyperadam_keras.bundle import MetaParamsLike, meta_params_to_config, resolve_meta_params
from hyperadam_keras.defaults import (DEFAULT_DECAY_AFTER, DEFAULT_EPSILON, DEFAULT_LEARNING_RATE,
                                      DEFAULT_MAX_RELATIVE_STEP, DEFAULT_WARMUP_STEPS, check_bool,
                                      check_finite_non_negative)
from hyperadam_keras.schedules import (check_candidate_clip, check_decay_after, check_learning_rate,
                                       check_max_relative_step, check_warmup_steps, learning_rate_is_valid,
                                       report_invalid_learning_rate, step_size_factor)

SLOT_NAMES = ("h", "c", "m", "v", "beta_hat", "gamma_hat")
_COMPUTE_DTYPE = "float32"  # the update computes in float32 whatever the state is stored in

try:
    from keras.src.optimizers.optimizer import base_optimizer_keyword_args as _BASE_OPTIMIZER_KEYWORD_ARGS
except ImportError:  # the private name moved: a short list instead of Keras's own text
    _BASE_OPTIMIZER_KEYWORD_ARGS = (
        "name, weight_decay, clipnorm, clipvalue, global_clipnorm, use_ema, ema_momentum,\n"
        "            ema_overwrite_frequency, loss_scale_factor, gradient_accumulation_steps: the arguments of\n"
        "            `keras.optimizers.Optimizer` (see its documentation).")


@keras.saving.register_keras_serializable(package="hyperadam_keras")
class HyperAdam(keras.optimizers.Optimizer):
    """HyperAdam (Wang, Sun & Xu, AAAI 2019): a learned, task-adaptive combination of J Adams.

    Per trainable variable of shape S it keeps slots h, c of shape (H,) + S and m, v, β̂, γ̂ of shape
    (J,) + S (6J numbers per parameter when H = J; coordinates last, `state_layout.py`), in float32 or,
    with `state_dtype="bfloat16"`, in half the memory. The
    norms of the gradient and of every candidate moment m_{t-1}^j are global: computed once per step
    over all variables being updated.

    Args:
        learning_rate: α, a float (finite, >= 0), a `LearningRateSchedule` or a callable. Defaults
            to 0.001 (`defaults.DEFAULT_LEARNING_RATE`), chosen with `max_relative_step=0.03` on models
            where the paper's 0.005 diverged (docs/safety.md); `HyperAdam(**PAPER_SETTINGS)` is the
            paper's step (0.005, constant, no cap).
        meta_params: None (the shipped default bundle), a bundle path, or a `MetaParams`; the update
            uses the feature normalization they were trained with (`MetaParams.feature_normalization`).
        epsilon: ε of the candidate updates, finite and >= 0 (paper: 1e-24).
        decay_after: T: the step used at the s-th update is α · √(T / max(s, T)): α for the first T
            updates (the meta-training horizon: 100 for the shipped bundle and the paper), then decaying
            as 1/√s, so that runs much longer than the meta-training horizon settle
            (`schedules.horizon_decay_factor`). It multiplies whatever `learning_rate` is, a schedule
            included; s counts applied updates (with gradient accumulation, not micro-steps). None: α
            as given at every step (the paper's constant step).
        skip_nonfinite: if True, a step whose gradients contain NaN or inf leaves the weights and
            all optimizer state untouched (the iteration counter still advances). A step whose
            learning rate (from a schedule or callable, or set later) is not finite and >= 0 is
            skipped in the same way whatever this flag, and a warning is printed once.
        jit_compile: compile the per-variable update with XLA (`tf.function(jit_compile=True)`).
        warmup_steps: W: the step of the s-th update is also multiplied by min(1, s / W), a linear
            warm-up (`schedules.warmup_factor`). None: no warm-up (the paper).
        max_relative_step: τ: every update of a tensor w is shrunk, where needed, to move it by at
            most τ · max(RMS(w), 0.01) in root mean square (`equations.cap_relative_step`). Defaults
            to 0.03 (`defaults.DEFAULT_MAX_RELATIVE_STEP`). None: no cap (the paper).
        state_layout: the layout of the optimizer state this optimizer *loads*: "coordinates-last"
            (this version's) or "coordinates-first" (versions up to 2026-12-01, whose `.keras` configs
            `from_config` recognizes by the missing key). It decides only slots whose shape is the same
            in both layouts; the state is always kept coordinates-last. Never needed by hand.
        state_dtype: "float32" (default) or "bfloat16": the dtype the six state slots are stored in
            (4 or 2 bytes per number: 480 or 240 bytes per parameter at J = H = 20). The update always
            computes in float32; a bfloat16 state is rounded stochastically when written
            (`update.stochastic_round_to_bfloat16`: unbiased, where rounding to nearest would freeze
            the slow averages v, β̂, γ̂), so its runs differ from float32's by rounding noise.
        candidate_clip: κ: each candidate update m̂_j = m̃_j / (√ṽ_j + ε) is clipped to [−κ, κ] before
            the weights ρ combine them (`equations.combine_corrected_moments`). Learned decays with
            β_t² > γ_t make m̂ grow without bound where a coordinate's gradient falls to zero (dead ReLU
            units, blank pixels): without the relative-step cap that blew up wide ReLU MLPs late in
            training (docs/safety.md). None (default): unclipped (the paper).
        {{base_optimizer_keyword_args}}

    Invalid arguments are a `ValueError` naming the argument and the value (a `MetaParamsError`, also a
    `ValueError`, for `meta_params`).
    """

    def __init__(
        self,
        learning_rate: Union[float, Callable, keras.optimizers.schedules.LearningRateSchedule] = DEFAULT_LEARNING_RATE,
        meta_params: MetaParamsLike = None,
        epsilon: float = DEFAULT_EPSILON,
        decay_after: int | None = DEFAULT_DECAY_AFTER,
        skip_nonfinite: bool = True,
        jit_compile: bool = True,
        warmup_steps: int | None = DEFAULT_WARMUP_STEPS,
        max_relative_step: float | None = DEFAULT_MAX_RELATIVE_STEP,
        state_layout: str = slot_layout.COORDINATES_LAST,
        state_dtype: str = "float32",
        candidate_clip: float | None = None,
        weight_decay: float | None = None,
        clipnorm: float | None = None,
        clipvalue: float | None = None,
        global_clipnorm: float | None = None,
        use_ema: bool = False,
        ema_momentum: float = 0.99,
        ema_overwrite_frequency: int | None = None,
        loss_scale_factor: float | None = None,
        gradient_accumulation_steps: int | None = None,
        name: str = "hyperadam",
        **kwargs,
    ):
        # Checked before the base class sees them (it would take learning_rate=-1.0 and give
        # learning_rate=-1 a message about its type, not its sign).
        learning_rate = check_learning_rate(learning_rate)
        epsilon = check_finite_non_negative("epsilon", epsilon)
        decay_after = check_decay_after(decay_after)
        skip_nonfinite = check_bool("skip_nonfinite", skip_nonfinite)
        jit_compile = check_bool("jit_compile", jit_compile)
        warmup_steps = check_warmup_steps(warmup_steps)
        max_relative_step = check_max_relative_step(max_relative_step)
        saved_layout = slot_layout.check_state_layout(state_layout)
        state_dtype = update.check_state_dtype(state_dtype)
        candidate_clip = check_candidate_clip(candidate_clip)
        super().__init__(
            learning_rate=learning_rate,
            weight_decay=weight_decay,
            clipnorm=clipnorm,
            clipvalue=clipvalue,
            global_clipnorm=global_clipnorm,
            use_ema=use_ema,
            ema_momentum=ema_momentum,
            ema_overwrite_frequency=ema_overwrite_frequency,
            loss_scale_factor=loss_scale_factor,
            gradient_accumulation_steps=gradient_accumulation_steps,
            name=name,
            **kwargs,
        )
        self.meta_params = resolve_meta_params(meta_params)
        self.epsilon = epsilon
        self.decay_after = decay_after
        self.skip_nonfinite = skip_nonfinite
        self.jit_compile = jit_compile
        self.warmup_steps = warmup_steps
        self.max_relative_step = max_relative_step
        self.state_layout = saved_layout
        self.state_dtype = state_dtype
        self.candidate_clip = candidate_clip
        # Set once a step was skipped for its learning rate, so that the warning is printed once. Not an
        # optimizer variable (`self.variables` and so checkpoints stay as they were) and not tracked.
        object.__setattr__(self, "_invalid_learning_rate_seen", tf.Variable(
            False, trainable=False, name="invalid_learning_rate_seen",
            synchronization=tf.VariableSynchronization.ON_READ,
            aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA))
        # Steps skipped so far (a non-finite gradient or an invalid learning rate), for `HyperAdamMonitor`;
        # kept out of `self.variables` like the flag above, so checkpoints and `.keras` files are unchanged.
        object.__setattr__(self, "_skipped_steps", tf.Variable(
            0, dtype=tf.int64, trainable=False, name="skipped_steps",
            synchronization=tf.VariableSynchronization.ON_READ,
            aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA))

    @property
    def skipped_steps(self) -> tf.Variable:
        """The number of steps this optimizer object skipped (weights and state untouched): a non-finite
        gradient under `skip_nonfinite`, or an invalid learning rate. Not saved: it restarts at 0 when a
        model is loaded, while `iterations` is restored."""
        return self._skipped_steps

    @property
    def learning_rate(self):
        return self._get_current_learning_rate()

    @learning_rate.setter
    def learning_rate(self, learning_rate):
        # As in the constructor: a number must be finite and >= 0 (`ReduceLROnPlateau` and tuning set it).
        keras.optimizers.Optimizer.learning_rate.fset(self, check_learning_rate(learning_rate))

    @property
    def num_candidates(self) -> int:
        return self.meta_params.num_candidates

    @property
    def hidden(self) -> int:
        return self.meta_params.hidden

    def build(self, variables):
        """Creates the six state slots (in `state_dtype`) of every variable."""
        if self.built:
            return
        super().build(variables)
        sizes = {"h": self.hidden, "c": self.hidden}
        self._slots = {name: [] for name in SLOT_NAMES}
        for variable in variables:
            for name in SLOT_NAMES:
                self._slots[name].append(self._add_state_slot(
                    variable, name, sizes.get(name, self.num_candidates)))

    def _add_state_slot(self, variable, name: str, size: int):
        """`add_variable`, with a `state_layout.StateSlot` of shape (size,) + S (it reads checkpoints of
        the earlier layout too)."""
        reference = variable.value if isinstance(variable, keras.Variable) else variable
        prefix = (variable.path if hasattr(variable, "path") else variable.name).replace("/", "_").replace(":", "_")
        self._check_super_called()
        with self._distribution_strategy.extended.colocate_vars_with(reference):
            with keras.name_scope(self.name, caller=self):
                slot = slot_layout.StateSlot(initializer=keras.initializers.Zeros(),
                                              shape=(size,) + tuple(variable.shape), dtype=self.state_dtype,
                                              trainable=False, aggregation="none", name=f"{prefix}_{name}")
        self._track_variable(slot)
        return slot

    def load_own_variables(self, store):
        """Reads a `.keras` file's optimizer state, of this version or (transposed) of an earlier one.
        Checks every shape before it assigns anything."""
        if len(store.keys()) != len(self.variables):
            return super().load_own_variables(store)  # Keras warns and skips, as for any optimizer
        values = [store[str(i)] for i in range(len(self.variables))]
        slot_ids = {id(s) for name in SLOT_NAMES for s in self._slots.get(name, [])} if self.built else set()
        is_slot = [id(v) in slot_ids for v in self.variables]
        layout = slot_layout.stored_layout(
            [v.shape for v, slot in zip(self.variables, is_slot) if slot],
            [values[i].shape for i, slot in enumerate(is_slot) if slot], self.state_layout)
        arrays = []
        for variable, value, slot in zip(self.variables, values, is_slot):
            value = np.asarray(value)
            if slot and layout == slot_layout.COORDINATES_FIRST:
                value = slot_layout.from_coordinates_first(value)
            if tuple(value.shape) != tuple(variable.shape):
                raise ValueError(f"HyperAdam: the saved optimizer variable {variable.path!r} has shape "
                                 f"{tuple(value.shape)}, this optimizer's {tuple(variable.shape)}")
            arrays.append(value)
        for variable, value in zip(self.variables, arrays):
            variable.assign(value)

    def slots(self, variable) -> dict:
        """The state slots of one trainable variable, keyed by `SLOT_NAMES`."""
        index = self._get_variable_index(variable)
        return {name: self._slots[name][index] for name in SLOT_NAMES}

    # --- the step -------------------------------------------------------------------------------

    def _apply_weight_decay(self, variables):
        # Decoupled weight decay is applied inside the update, so a skipped (non-finite) step
        # leaves the weights untouched; see `_update_variable`.
        return

    def _backend_update_step(self, grads, trainable_variables, learning_rate):
        trainable_variables = [v.value if isinstance(v, keras.Variable) else v for v in trainable_variables]
        grads = [tf.convert_to_tensor(g) if isinstance(g, tf.IndexedSlices) else g for g in grads]
        grads_and_vars = self._all_reduce_sum_gradients(list(zip(grads, trainable_variables)))
        alpha = tf.cast(learning_rate, _COMPUTE_DTYPE)
        alpha_is_valid = learning_rate_is_valid(alpha)
        report_invalid_learning_rate(self._invalid_learning_rate_seen, alpha_is_valid, alpha, self._update_count())
        learning_rate = alpha * step_size_factor(self._update_count(), self.decay_after, self.warmup_steps)
        grads = [tf.cast(g, _COMPUTE_DTYPE) for g, _ in grads_and_vars]
        variables = [v for _, v in grads_and_vars]
        # Global reductions of the paper, once per step, over all variables updated in this step.
        moments = [tf.cast(self._slots["m"][self._get_variable_index(v)], _COMPUTE_DTYPE) for v in variables]
        grad_sq_norm, moment_col_sq_norms = equations.feature_sq_scales(
            grads, moments, self.meta_params.feature_normalization)
        is_finite = update.step_is_finite(grads, grad_sq_norm, alpha_is_valid, self.skip_nonfinite)
        self._skipped_steps.assign_add(tf.cast(tf.logical_not(is_finite), tf.int64))
        # One compiled call per variable, applied as tf.distribute places it (on the variable's devices).
        # One program for all variables was measured no faster (docs/speed.md, benchmarks/fused_probe.py).
        tf.__internal__.distribute.interim.maybe_merge_call(
            self._distributed_update, self._distribution_strategy, list(zip(grads, variables)),
            learning_rate, grad_sq_norm, moment_col_sq_norms, is_finite)

    def _update_count(self):
        """s of the update being applied: `iterations` counts applied updates (with gradient accumulation,
        Keras divides its micro-step counter), and advances after this one."""
        return tf.cast(self.iterations, tf.int64) + 1

    def _distributed_update(self, distribution, grads_and_vars, learning_rate, grad_sq_norm,
                            moment_col_sq_norms, is_finite):
        for grad, var in grads_and_vars:
            distribution.extended.update(
                var, self._update_variable,
                args=(grad, learning_rate, grad_sq_norm, moment_col_sq_norms, is_finite), group=False)

    def update_step(self, gradient, variable, learning_rate):
        """Updates one variable with norms over that variable alone (`apply` uses global norms)."""
        self._backend_update_step([gradient], [variable], learning_rate)

    def _update_variable(self, variable, gradient, learning_rate, grad_sq_norm, moment_col_sq_norms,
                         is_finite):
        slots = self.slots(variable)
        J, H = self.num_candidates, self.hidden
        # Flattened to [J, n] / [H, n] outside the compiled function: it then sees only n vary.
        state = [tf.reshape(tf.convert_to_tensor(slots[name]), (H if name in ("h", "c") else J, -1))
                 for name in SLOT_NAMES]
        decay = 0.0
        if self.weight_decay is not None and self._use_weight_decay(variable):
            decay = self.weight_decay
        clip = equations.feature_clip(self.meta_params.feature_normalization)
        run = (update.compiled_coordinate_update(J, H, self.epsilon, clip, self.max_relative_step, self.candidate_clip)
               if self.jit_compile else functools.partial(update.coordinate_update, epsilon=self.epsilon,
                                                          feature_clip=clip, max_relative_step=self.max_relative_step,
                                                          candidate_clip=self.candidate_clip))
        delta, new_state = run(
            equations.MetaWeights(*(tf.constant(a) for a in self.meta_params.weights())),
            tf.reshape(tf.cast(gradient, _COMPUTE_DTYPE), (-1,)), state,
            tf.reshape(tf.cast(variable, _COMPUTE_DTYPE), (-1,)), tf.cast(learning_rate, _COMPUTE_DTYPE),
            tf.cast(decay, _COMPUTE_DTYPE), grad_sq_norm, moment_col_sq_norms, is_finite,
            **self._rounding_seed(variable))
        for name, value in zip(SLOT_NAMES, new_state):
            slots[name].assign(tf.reshape(value, slots[name].shape))
        variable.assign_sub(tf.cast(tf.reshape(delta, variable.shape), variable.dtype))

    def _rounding_seed(self, variable) -> dict:
        """The stochastic rounding's seed (step, variable index) for a bfloat16 state; nothing for float32."""
        if self.state_dtype == "float32":
            return {}
        step = tf.cast(self.iterations % (2 ** 31), tf.int32)
        return {"rounding_seed": tf.stack([step, tf.constant(self._get_variable_index(variable), tf.int32)])}

    # --- configuration --------------------------------------------------------------------------

    @classmethod
    def from_config(cls, config: dict, custom_objects=None) -> "HyperAdam":
        # A config written before `warmup_steps` and `max_relative_step` existed (a `.keras` file of an
        # earlier version) describes an optimizer without them: it continues as it was saved, uncapped.
        # A config without `state_layout` (every version up to 2026-12-01) saved its state coordinates-first.
        config = dict(config)
        config.setdefault("warmup_steps", None)
        config.setdefault("max_relative_step", None)
        config.setdefault("state_layout", slot_layout.COORDINATES_FIRST)
        config.setdefault("state_dtype", "float32")  # the only state of versions before the option
        config.setdefault("candidate_clip", None)  # the paper's unclipped candidates, as before the option
        return super().from_config(config, custom_objects=custom_objects)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update({
            "meta_params": meta_params_to_config(self.meta_params),
            "epsilon": self.epsilon,
            "decay_after": self.decay_after,
            "skip_nonfinite": self.skip_nonfinite,
            "jit_compile": self.jit_compile,
            "warmup_steps": self.warmup_steps,
            "max_relative_step": self.max_relative_step,
            "state_layout": slot_layout.COORDINATES_LAST,
            "state_dtype": self.state_dtype,
            "candidate_clip": self.candidate_clip,
        })
        return config


HyperAdam.__doc__ = HyperAdam.__doc__.replace("{{base_optimizer_keyword_args}}", _BASE_OPTIMIZER_KEYWORD_ARGS)
