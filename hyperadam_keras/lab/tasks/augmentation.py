"""Task augmentation: Random Scaling of a task's coordinates, sums of tasks, the paper's meta-training task.

Each is a `Task` made of other tasks (as `learned_optimization`'s task augmentations): RS(task, r)
optimizes ``task.loss(c ⊙ w)`` from ``w0 / c`` with seeded per-coordinate scales c, a sum shares
one parameter list between its parts, and the paper meta-trains on RS(MLP, 3) + RS(quadratic, 1).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import tensorflow as tf

from hyperadam_keras.lab.tasks.base import _STREAM_SCALES, SeedLike, Task, _uniform, random_key, sub_seed
from hyperadam_keras.lab.tasks.mlp import MLPTask
from hyperadam_keras.lab.tasks.quadratic import QuadraticTask


class RandomScaling(Task):
    """Random Scaling (RS): the optimizee sees ``task.loss(c ⊙ w)`` and starts at ``w0 / c``.

    Each coordinate gets its own c = exp(U(-r, r)), r = ``log_scale_range`` (spec: 3 for the MLP, 1
    for the quadratic), drawn from the seed. The scales travel in the batch:
    ``sample_batch(seed, step) -> {"batch": task.sample_batch(seed, step), "scales": [c_k]}``, one
    tensor of scales per parameter tensor.
    """

    needs_seed = True

    def __init__(self, task: Task, log_scale_range: float):
        self.task, self.log_scale_range = task, float(log_scale_range)
        self.name = f"rs{log_scale_range:g}({task.name})"

    def param_shapes(self) -> list[tuple[int, ...]]:
        return self.task.param_shapes()

    def scales(self, seed: SeedLike) -> list[tf.Tensor]:
        """c_k = exp(U(-r, r)) of the same shape as each parameter tensor k."""
        r = self.log_scale_range
        return [tf.exp(_uniform(shape, random_key(seed, _STREAM_SCALES, k), -r, r))
                for k, shape in enumerate(self.param_shapes())]

    def init_params(self, seed: SeedLike) -> list[tf.Tensor]:
        return [w / c for w, c in zip(self.task.init_params(seed), self.scales(seed))]

    def sample_batch(self, seed: SeedLike, step: SeedLike) -> dict[str, Any]:
        return {"batch": self.task.sample_batch(seed, step), "scales": self.scales(seed)}

    def loss(self, params, batch) -> tf.Tensor:
        return self.task.loss([w * c for w, c in zip(params, batch["scales"])], batch["batch"])

    def full_loss(self, params, seed: SeedLike | None = None) -> tf.Tensor:
        self._require_seed(seed)
        return self.task.full_loss([w * c for w, c in zip(params, self.scales(seed))], seed=seed)

    def test_metrics(self, params, seed: SeedLike | None = None) -> dict[str, float] | None:
        self._require_seed(seed)
        return self.task.test_metrics([w * c for w, c in zip(params, self.scales(seed))], seed=seed)


class SumTask(Task):
    """Sum of tasks sharing one parameter vector: params = the sub-tasks' lists concatenated.

    loss = Σ_i task_i.loss(params_i, batch_i); batch = tuple of the sub-batches. Sub-task i runs
    with seed `sub_seed`(seed, i), so two identical sub-tasks still get different draws.
    ``test_metrics`` merges the sub-tasks' metrics with keys prefixed ``"{i}:{name}/"``.
    """

    def __init__(self, tasks: Sequence[Task]):
        if not tasks:
            raise ValueError("SumTask needs at least one task")
        self.tasks = list(tasks)
        self.name = "sum(" + "+".join(t.name for t in self.tasks) + ")"
        self.needs_seed = any(t.needs_seed for t in self.tasks)
        counts = [len(t.param_shapes()) for t in self.tasks]
        self._bounds = np.cumsum([0] + counts).tolist()

    def _split(self, params) -> list[list[tf.Tensor]]:
        return [list(params[a:b]) for a, b in zip(self._bounds[:-1], self._bounds[1:])]

    def _seeds(self, seed) -> list:
        return [None if seed is None else sub_seed(seed, i) for i in range(len(self.tasks))]

    def param_shapes(self) -> list[tuple[int, ...]]:
        return [shape for t in self.tasks for shape in t.param_shapes()]

    def init_params(self, seed: SeedLike) -> list[tf.Tensor]:
        return [p for t, s in zip(self.tasks, self._seeds(seed)) for p in t.init_params(s)]

    def sample_batch(self, seed: SeedLike, step: SeedLike) -> tuple:
        return tuple(t.sample_batch(s, step) for t, s in zip(self.tasks, self._seeds(seed)))

    def loss(self, params, batch) -> tf.Tensor:
        return tf.add_n([t.loss(p, b) for t, p, b in zip(self.tasks, self._split(params), batch)])

    def full_loss(self, params, seed: SeedLike | None = None) -> tf.Tensor:
        if self.needs_seed:
            self._require_seed(seed)
        return tf.add_n([t.full_loss(p, seed=s) for t, p, s in
                         zip(self.tasks, self._split(params), self._seeds(seed))])

    def test_metrics(self, params, seed: SeedLike | None = None) -> dict[str, float] | None:
        merged: dict[str, float] = {}
        for i, (t, p, s) in enumerate(zip(self.tasks, self._split(params), self._seeds(seed))):
            if t.needs_seed and s is None:
                continue  # no metrics without the seed its loss depends on
            metrics = t.test_metrics(p, seed=s)
            merged.update({f"{i}:{t.name}/{k}": v for k, v in (metrics or {}).items()})
        return merged or None


def paper_meta_training_task(images, labels, batch_size: int = 128) -> SumTask:
    """The paper's meta-training task: RS(MLP 784-20-10 sigmoid, r=3) + RS(quadratic R^20, r=1)."""
    return SumTask([RandomScaling(MLPTask(images, labels, hidden_layers=1, width=20, activation="sigmoid",
                                          batch_size=batch_size), 3.0),
                    RandomScaling(QuadraticTask(), 1.0)])
