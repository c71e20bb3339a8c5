"""Training one task with one optimizer: the compiled `Trainer`, reused over seeds and learning rates,
and `RunResult`, one run's loss curve and final metrics as the JSON records and the run cache hold them.

A *task* is any object with the interface of `hyperadam_keras.lab.tasks.tasks` (`init_params(seed)`,
`sample_batch(seed, step)`, `loss(params, batch)`, `full_loss(params)`, `test_metrics(params)`).
An optimizer is applied to `tf.Variable`s made from `task.init_params(seed)`; the training loop runs
`chunk_size` steps inside one compiled `tf.function` (XLA where it compiles), so Python is entered
once per chunk, not once per step. One `Trainer` serves every seed and every learning rate of a
(task, optimizer) pair: between runs it restores the weights and the optimizer's initial state, so
nothing is retraced.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Callable

import keras
import numpy as np
import tensorflow as tf

from hyperadam_keras.lab.eval.stats import json_float

ProgressCallback = Callable[[int], None]


@dataclass
class RunResult:
    """One training run: per-step minibatch losses and the final weights' metrics.

    A run restored by `from_json` may hold its curve as block means (`curve_block` > 1, as `to_json`
    stores curves of over `MAX_CURVE_POINTS` steps) and its recorded `finite` (`stored_finite`), so
    that its `to_json` is the original's.
    """
    seed: int
    learning_rate: float
    curve: np.ndarray
    final_loss: float
    test: dict | None
    seconds: float
    curve_block: int = 1
    stored_finite: bool | None = None

    @property
    def finite(self) -> bool:
        if self.stored_finite is not None:  # block means can hide (or, by overflow, add) a non-finite step
            return self.stored_finite
        return bool(math.isfinite(self.final_loss) and np.all(np.isfinite(self.curve)))

    def stored_curve(self) -> tuple[np.ndarray, int]:
        """The curve as `to_json` writes it, and its block: means over blocks of `curve_block(steps)` steps."""
        if self.curve_block > 1:  # restored from JSON: already block means
            return self.curve, self.curve_block
        block = curve_block(len(self.curve))
        if block == 1:
            return self.curve, 1
        return self.curve[:len(self.curve) // block * block].reshape(-1, block).mean(axis=1), block

    def to_json(self, with_curve: bool = True) -> dict:
        out = {"seed": self.seed, "learning_rate": self.learning_rate, "final_loss": json_float(self.final_loss),
               "test": {k: json_float(v) for k, v in (self.test or {}).items()} or None,
               "seconds": round(self.seconds, 4), "finite": self.finite}
        if with_curve:
            curve, block = self.stored_curve()
            out["curve"] = [json_float(float(str(np.float32(x)))) for x in curve]  # float32, shortest
            out["curve_block"] = block
        return out

    @classmethod
    def from_json(cls, data: dict) -> "RunResult":
        """Inverse of `to_json`: `from_json(r.to_json()).to_json() == r.to_json()` ("nan"/"inf" strings
        included). A record without a curve restores an empty one."""
        # float32 holds the shortest-repr values of `to_json` exactly, as the trained curve held them.
        curve = np.asarray([float(x) for x in data.get("curve", ())], dtype=np.float32)
        test = data.get("test")
        return cls(seed=int(data["seed"]), learning_rate=float(data["learning_rate"]), curve=curve,
                   final_loss=float(data["final_loss"]),
                   test={str(k): float(v) for k, v in test.items()} if test else None,
                   seconds=float(data["seconds"]), curve_block=int(data.get("curve_block", 1)),
                   stored_finite=bool(data["finite"]))


MAX_CURVE_POINTS = 2000


def curve_block(steps: int) -> int:
    """Curves of more than `MAX_CURVE_POINTS` steps are stored as means over blocks of this many steps."""
    return 1 if steps <= MAX_CURVE_POINTS else math.ceil(steps / MAX_CURVE_POINTS)


class Trainer:
    """Compiled training of one task with one optimizer, reusable over seeds and learning rates.

    Args:
        task: the task (see module docstring).
        optimizer: a fresh Keras optimizer; it is built on the task's variables here.
        chunk_size: steps per compiled call (progress is reported once per chunk).
        jit_compile: compile the whole chunk with XLA; if XLA rejects it, falls back to a graph.
    """

    def __init__(self, task: Any, optimizer: keras.optimizers.Optimizer, chunk_size: int = 100,
                 jit_compile: bool = True):
        self.task = task
        self.optimizer = optimizer
        self.chunk_size = int(chunk_size)
        self.jit_compile = bool(jit_compile)
        self.variables = [tf.Variable(p, name=f"param_{i}") for i, p in enumerate(task.init_params(0))]
        optimizer.build(self.variables)
        self._initial_state = [np.array(v.numpy()) for v in optimizer.variables]
        self._chunk = self._make_chunk(self.jit_compile)

    def _make_chunk(self, jit_compile: bool):
        task, optimizer, variables = self.task, self.optimizer, self.variables

        def chunk(seed, start, num_steps: int):
            losses = tf.TensorArray(tf.float32, size=num_steps)
            for i in tf.range(num_steps):
                batch = task.sample_batch(seed, start + i)
                with tf.GradientTape() as tape:
                    loss = task.loss(variables, batch)
                grads = tape.gradient(loss, variables)
                optimizer.apply_gradients(zip(grads, variables))
                losses = losses.write(i, tf.cast(loss, tf.float32))
            return losses.stack()

        return tf.function(chunk, jit_compile=jit_compile)

    def params(self) -> list[tf.Tensor]:
        """The current weights, as tensors."""
        return [tf.convert_to_tensor(v) for v in self.variables]

    def reset(self, seed: int, learning_rate: float | None) -> None:
        """Weights from `task.init_params(seed)`, the optimizer's state as built (iteration 0), its rate
        set to `learning_rate`; None keeps the optimizer's own rate (e.g. a `LearningRateSchedule`)."""
        for variable, value in zip(self.variables, self.task.init_params(seed)):
            variable.assign(value)
        for variable, value in zip(self.optimizer.variables, self._initial_state):
            variable.assign(value)
        if learning_rate is not None:
            self.optimizer.learning_rate = float(learning_rate)

    def train(self, seed: int, start: int, num_steps: int) -> np.ndarray:
        """Runs `num_steps` steps from step index `start` (no reset); returns the minibatch losses."""
        seed_t, start_t = tf.constant(seed, tf.int32), tf.constant(start, tf.int32)
        try:
            return self._chunk(seed_t, start_t, int(num_steps)).numpy()
        except (tf.errors.InvalidArgumentError, tf.errors.UnimplementedError, tf.errors.InternalError):
            if not self.jit_compile:
                raise
            # XLA could not compile the chunk (it fails before running it): fall back to a graph.
            self.jit_compile = False
            self._chunk = self._make_chunk(False)
            return self._chunk(seed_t, start_t, int(num_steps)).numpy()

    def run(self, seed: int, steps: int, learning_rate: float | None,
            progress: ProgressCallback | None = None) -> RunResult:
        """Trains `steps` steps from `init_params(seed)` at `learning_rate` (None: the optimizer's own rate
        or schedule, which restarts at step 0); evaluates the final weights."""
        self.reset(seed, learning_rate)
        # A schedule's run is recorded at its step-0 rate.
        recorded_lr = float(np.asarray(self.optimizer.learning_rate)) if learning_rate is None else learning_rate
        curves, done, seconds = [], 0, 0.0
        while done < steps:
            n = min(self.chunk_size, steps - done)
            began = time.perf_counter()
            curves.append(self.train(seed, done, n))
            seconds += time.perf_counter() - began
            done += n
            if progress is not None:
                progress(n)
        params = self.params()
        extra = {"seed": seed} if getattr(self.task, "needs_seed", False) else {}
        final_loss = float(self.task.full_loss(params, **extra))
        test = self.task.test_metrics(params, **extra)
        test = {k: float(v) for k, v in test.items()} if test else None
        return RunResult(seed=int(seed), learning_rate=float(recorded_lr),
                         curve=np.concatenate(curves) if curves else np.zeros(0, np.float32),
                         final_loss=final_loss, test=test, seconds=seconds)

