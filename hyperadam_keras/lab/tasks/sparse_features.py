"""Generated sparse-feature classification data: the gradients of an embedding, on a linear model.

Each example is a bag of `active` feature counts out of `features`, the features drawn with a Zipf-like
frequency (p_i ∝ 1 / (i + 5)); its class (of 10) is the argmax of a fixed random linear teacher's
logits plus Gumbel noise. A model on these inputs gets, in a minibatch, a zero gradient on the first
layer's rows of every feature absent from it, and rare features get rare updates: the pattern of an
`Embedding` layer's gradients, whose tuned Adam rate is larger than a dense model's. The data is made
from `data_seed` alone, so the task is the same on every machine.

`build_sparse_features` is `MLPTask` on it. It is a meta-training task only: the meta-training
families name it as the kind "hyperadam_keras.lab.tasks.sparse_features:build_sparse_features" (any
"module:callable" is a kind of `registry.build`), and it is not in the registry's table, so that the
evaluation suites' run cache, which hashes the code their runs execute, is unchanged by it.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from hyperadam_keras.lab.tasks.mlp import MLPTask

_CLASSES = 10  # MLPTask's output width


@functools.lru_cache(maxsize=8)
def sparse_feature_data(features: int = 1000, active: int = 10, examples: int = 4096,
                        data_seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(counts [examples, features] float32, labels [examples] int32), deterministic in the arguments."""
    for name, value in (("features", features), ("active", active), ("examples", examples)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"sparse_feature_data: {name} must be a positive int, got {value!r}")
    rng = np.random.default_rng(data_seed)
    frequency = 1.0 / (np.arange(features) + 5.0)
    drawn = rng.choice(features, size=(examples, active), p=frequency / frequency.sum())
    counts = np.zeros((examples, features), np.float32)
    np.add.at(counts, (np.repeat(np.arange(examples), active), drawn.ravel()), 1.0)
    teacher = rng.normal(size=(features, _CLASSES))
    labels = np.argmax(counts @ teacher + rng.gumbel(size=(examples, _CLASSES)), axis=1).astype(np.int32)
    return counts, labels


def build_sparse_features(features: int = 1000, active: int = 10, examples: int = 4096, data_seed: int = 0,
                          **kwargs: Any) -> MLPTask:
    """`MLPTask` (its ``hidden_layers``, ``width``, ``activation``, ``init_std``, ``batch_size``) on the
    generated bag-of-features counts of `sparse_feature_data`; ``hidden_layers=0``: logistic regression."""
    counts, labels = sparse_feature_data(features, active, examples, data_seed)
    task = MLPTask(counts, labels, **kwargs)
    task.name = f"sparse{features}x{active}-{task.name}"
    return task
