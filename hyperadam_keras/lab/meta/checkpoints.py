"""The checkpoint of a meta-training run: everything that resumes it exactly.

It holds the meta-parameters, the meta-optimizer's slots, the best meta-parameters so far, the
run's counters (meta-step, skipped meta-steps, best validation loss and epoch, elapsed time, ...)
and the weights and optimizer state of the task in progress (one `UnrollVariables` per task of a
mixture), in ``checkpoints/`` of the run directory.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import tensorflow as tf

from hyperadam_keras import equations
from hyperadam_keras.lab.meta import unroll as U
from hyperadam_keras.state_layout import StateSlot
from hyperadam_keras.lab.meta.config import MetaTrainConfig

CHECKPOINT_DIR = "checkpoints"


class UnrollVariables(tf.Module):
    """Holds an unfinished task's weights and optimizer state so that a checkpoint can carry them."""

    def __init__(self, shapes: list[tuple[int, ...]], num_candidates: int, hidden: int):
        super().__init__(name="unroll_state")
        self.params = [tf.Variable(tf.zeros(shape), name=f"param_{k}") for k, shape in enumerate(shapes)]
        self.opt_state = []
        for k, shape in enumerate(shapes):
            n = int(np.prod(shape))
            # [K, n], coordinates last; a `StateSlot` also restores a checkpoint of the earlier [n, K] layout.
            self.opt_state.append([StateSlot(initializer="zeros", shape=(hidden if name in ("h", "c") else num_candidates, n),
                                             dtype="float32", trainable=False, name=f"{name}_{k}")
                                   for name in equations.CoordinateState._fields])
        self.step = tf.Variable(0, dtype=tf.int64, name="step")

    def save(self, state: U.UnrollState) -> None:
        for variable, value in zip(self.params, state.params):
            variable.assign(value)
        for variables, values in zip(self.opt_state, state.opt_state):
            for variable, value in zip(variables, values):
                variable.assign(value)
        self.step.assign(state.step)

    def load(self) -> U.UnrollState:
        return U.UnrollState([tf.identity(v) for v in self.params],
                             [equations.CoordinateState(*(tf.identity(v) for v in s)) for s in self.opt_state],
                             tf.identity(self.step))


class RunCheckpoint:
    """The run's `tf.train.Checkpoint` (the two latest are kept) and the counters it carries."""

    def __init__(self, config: MetaTrainConfig, tasks: list, meta: equations.MetaWeights, meta_optimizer,
                 best: equations.MetaWeights, directory: Path):
        self.counters = {name: tf.Variable(value, dtype=dtype, name=name) for name, value, dtype in (
            ("meta_step", 0, tf.int64), ("validated_at", -1, tf.int64), ("skipped", 0, tf.int64),
            ("best_epoch", 0, tf.int64), ("best_validation_loss", math.inf, tf.float64),
            ("initial_validation_loss", math.nan, tf.float64), ("elapsed_s", 0.0, tf.float64),
            ("task_in_progress", False, tf.bool))}
        # One holder per task of a mixture (shapes differ); a single task keeps the original layout.
        self.unroll_vars = [UnrollVariables(t.param_shapes(), config.num_candidates, config.hidden) for t in tasks]
        self.checkpoint = tf.train.Checkpoint(meta=list(meta), meta_optimizer=meta_optimizer, best=list(best),
                                              unroll=self.unroll_vars[0] if len(tasks) == 1 else self.unroll_vars,
                                              **self.counters)
        self.manager = tf.train.CheckpointManager(self.checkpoint, directory, max_to_keep=2)

    def restore_latest(self) -> None:
        """Restores the latest checkpoint, if there is one (a run killed before its first has none)."""
        if self.manager.latest_checkpoint:
            self.checkpoint.restore(self.manager.latest_checkpoint).assert_existing_objects_matched()

    def unfinished_task(self, index: int) -> U.UnrollState | None:
        """The saved state of the task in progress (task `index` of the mixture), or None if there is none."""
        return self.unroll_vars[index].load() if bool(self.counters["task_in_progress"].numpy()) else None

    def save(self, meta_step: int, state: U.UnrollState | None, index: int, elapsed_s: float) -> None:
        """Writes a checkpoint at `meta_step`, with `state` of task `index` when a task is in progress."""
        if state is not None:
            self.unroll_vars[index].save(state)
        self.counters["task_in_progress"].assign(state is not None)
        self.counters["meta_step"].assign(meta_step)
        self.counters["elapsed_s"].assign(elapsed_s)
        self.manager.save(checkpoint_number=meta_step)
