"""The meta-update: HyperAdam's meta-parameters, their meta-optimizer and the compiled truncations.

`MetaTrainer` holds the meta-parameters as variables and, per task, compiles one truncation of
`unroll.meta_gradient` (K optimizee steps and the meta-gradient of their mean loss) and one of
`unroll.evaluate` (meta-validation); `train_step` applies a clipped meta-gradient with the
meta-optimizer, or skips a non-finite one. `initial_meta_params` is where meta-training starts.
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

from hyperadam_keras.bundle import load_meta_params
from hyperadam_keras.lab.meta import unroll as U
from hyperadam_keras.lab.meta.config import MetaTrainConfig
from hyperadam_keras.meta_params import MetaParams, adam_ensemble, random_meta_params


def initial_meta_params(config: MetaTrainConfig) -> MetaParams:
    """The starting point: the Adam ensemble, random, or a bundle (J and H must match the config). Its
    arrays are used with the config's feature normalization, whatever a bundle was trained with."""
    if config.init == "adam-ensemble":
        params = adam_ensemble(config.num_candidates, config.hidden, weight_sum=config.init_weight_sum)
    elif config.init == "random":
        params = random_meta_params(config.num_candidates, config.hidden, config.init_seed, config.init_scale,
                                    weight_sum=config.init_weight_sum)
    else:
        params = load_meta_params(config.init)
        if (params.num_candidates, params.hidden) != (config.num_candidates, config.hidden):
            raise ValueError(f"init bundle {config.init} has J={params.num_candidates}, H={params.hidden}; "
                             f"the config says J={config.num_candidates}, H={config.hidden}")
    return params.with_feature_normalization(config.feature_normalization)


class MetaTrainer:
    """The meta-parameters, the meta-optimizer and the compiled truncations of one task family.

    `task` is a task or a list of tasks (a mixture: `index` selects one; each has its own compiled
    functions, since their shapes differ). Usable on its own (the benchmark does):
    `start_task(seed, index)`, then `train_step(state, seed, index)` per truncation, and `validate(seeds)`.
    """

    def __init__(self, config: MetaTrainConfig, task, init: MetaParams | None = None):
        self.config = config
        self.tasks = list(task) if isinstance(task, (list, tuple)) else [task]
        init = init if init is not None else initial_meta_params(config)
        if init.feature_normalization != config.feature_normalization:
            raise ValueError(f"init meta-parameters use feature_normalization={init.feature_normalization!r}, "
                             f"the config {config.feature_normalization!r}; see initial_meta_params")
        if config.validation_metric == "held-out-loss":
            _check_held_out_splits(self.tasks)
        self.meta = U.meta_variables(init)
        if config.meta_optimizer == "adam":
            import keras
            self.meta_optimizer = keras.optimizers.Adam(config.meta_learning_rate)
        else:
            import keras
            self.meta_optimizer = keras.optimizers.SGD(config.meta_learning_rate)
        self.meta_optimizer.build(list(self.meta))
        c = config
        self._gradient_fns = [U.compile_fn(
            lambda state, seed, task=task: U.meta_gradient(self.meta, task, state, seed, c.truncation,
                                                           c.learning_rate, c.epsilon, c.second_order,
                                                           c.meta_objective == "mean-log-loss",
                                                           c.feature_normalization, c.decay_after,
                                                           c.max_relative_step, c.candidate_clip,
                                                           c.second_order_clip),
            c.jit_compile) for task in self.tasks]
        self._evaluate_fns = [U.compile_fn(
            lambda state, seed, task=task: U.evaluate(self.meta, task, state, seed, c.truncation,
                                                      c.learning_rate, c.epsilon, c.feature_normalization,
                                                      c.decay_after, c.max_relative_step, c.candidate_clip),
            c.jit_compile) for task in self.tasks]
        self._full_loss_fns = [tf.function(lambda params, seed, task=task: task.full_loss(params, seed))
                               for task in self.tasks]
        self._apply_fn = tf.function(self._apply)

    @property
    def task(self):
        """The task (the first one of a mixture)."""
        return self.tasks[0]

    def start_task(self, seed: int, index: int = 0) -> U.UnrollState:
        """Initial weights of task `seed` (of the mixture's task `index`), zero optimizer state, step 0."""
        return U.init_unroll_state(self.tasks[index].init_params(seed), self.config.num_candidates,
                                   self.config.hidden)

    def _apply(self, meta_loss, grads):
        """Clips and applies the meta-gradient if it and the meta-loss are finite; else skips it.

        Returns (meta-gradient global norm, applied)."""
        norm = tf.linalg.global_norm(grads)
        finite = tf.logical_and(tf.math.is_finite(norm), tf.math.is_finite(meta_loss))
        if finite:  # autograph: a tf.cond, so a skipped update touches no variable
            if self.config.meta_clip_norm is not None:
                grads, _ = tf.clip_by_global_norm(grads, self.config.meta_clip_norm, use_norm=norm)
            self.meta_optimizer.apply_gradients(zip(grads, list(self.meta)))
        return norm, finite

    def train_step(self, state: U.UnrollState, seed: int,
                   index: int = 0) -> tuple[float, float, bool, U.UnrollState]:
        """One truncation and one meta-update: (meta-loss, meta-gradient norm, applied, new state).

        A non-finite meta-loss or meta-gradient skips the update (`applied` is False).
        """
        meta_loss, grads, new_state = self._gradient_fns[index](state, tf.constant(seed, tf.int64))
        norm, applied = self._apply_fn(meta_loss, grads)
        return float(meta_loss), float(norm), bool(applied), new_state

    def validate(self, seeds: list[int]) -> float:
        """The `config.validation_metric` over the held-out tasks `seeds` (seed i on task i mod the mixture).

        "mean-loss": mean optimizee minibatch loss over the whole horizon, averaged over the seeds.
        "final-loss": exp(mean log full_loss(final weights)); a non-finite loss makes it inf.
        "held-out-loss": exp(mean log test_metrics(final weights)["test_loss"]), likewise.
        With `config.validation_loss_floor` f each task's figure counts as max(figure, f).
        """
        return aggregate_validation(self.validation_losses(seeds), self.config.validation_metric,
                                    self.config.validation_loss_floor)

    def validation_losses(self, seeds: list[int]) -> list[float]:
        """Per held-out task (seed i on task i mod the mixture), what `validate` aggregates: its mean minibatch
        loss over the horizon ("mean-loss"), or the full or held-out loss of its final weights."""
        per_task = []
        for i, seed in enumerate(seeds):
            index = i % len(self.tasks)
            state = self.start_task(seed, index)
            seed_tensor = tf.constant(seed, tf.int64)
            means = []
            for _ in range(self.config.truncations_per_task):
                losses, state = self._evaluate_fns[index](state, seed_tensor)
                means.append(float(tf.reduce_mean(losses)))
            if self.config.validation_metric == "final-loss":
                per_task.append(float(self._full_loss_fns[index](state.params, seed_tensor)))
            elif self.config.validation_metric == "held-out-loss":
                per_task.append(self.tasks[index].test_metrics(state.params, seed=seed)["test_loss"])
            else:
                per_task.append(float(np.mean(means)))
        return per_task

    def meta_params(self, source: str = "meta-training") -> MetaParams:
        return U.to_meta_params(self.meta, source, self.config.feature_normalization)


def aggregate_validation(per_task: list[float], metric: str, floor: float | None = None) -> float:
    """`MetaTrainer.validate`'s figure from its per-task ones: their mean for "mean-loss", else their geometric
    mean (inf if one is not finite and > 0); with `floor` f each counts as max(figure, f), so that a task
    fitted to 1e-7 instead of 1e-4 does not move the figure (meta_training/LOG.md, run18)."""
    values = np.asarray(per_task, np.float64)
    if floor is not None:
        values = np.where(np.isnan(values), values, np.maximum(values, floor))
    if metric == "mean-loss":
        return float(np.mean(values))
    return float(np.exp(np.mean(np.log(values)))) if np.all(np.isfinite(values) & (values > 0)) else math.inf


def _check_held_out_splits(tasks) -> None:
    """Raises ValueError, before any meta-step, naming each task without a held-out split."""
    missing = [task.name for task in tasks if task.test_metrics(task.init_params(0), seed=0) is None]
    if missing:
        raise ValueError(f"validation_metric 'held-out-loss' needs a held-out split on every task; "
                         f"{', '.join(missing)} has none (use a '-held-out' family, e.g. diverse-wide-held-out)")
