"""Generated sparse-feature classification data: the gradients of an embedding, on a linear model.

Each example is a bag of `active` feature counts out of `features`, the features drawn with a Zipf-like
frequency (p_i ∝ 1 / (i + 5)); its class (of 10) is the argmax of a fixed random linear teacher's
logits plus Gumbel noise. A model on these inputs gets, in a minibatch, a zero gradient on the first
layer's rows of every feature absent from it, and rare features get rare updates: the pattern of an
`Embedding` layer's gradients, whose tuned Adam rate is larger than a dense model's. The data is made
from `data_seed` alone, so the task is the same on every machine; the registry's "sparse-features"
kind is `MLPTask` on it.
"""

from __future__ import annotations

import functools

import numpy as np

_CLASSES = 10  # MLPTask's output width (the registry's "sparse-features" kind is an MLPTask)


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
