"""The model builder that `compare` trains: finding it (`load_builder`), checking what it returns
(`check_build`, `Build`) and the training batches (`training_data`).

A builder is a function of no arguments, called once per run (so each run gets a fresh model), that
returns a dict:

- `"model"` (required): an uncompiled `keras.Model`;
- `"loss"` (required): anything `model.compile(loss=...)` accepts;
- the training data, exactly one of: `"x"` and `"y"` (arrays, or dicts/lists of arrays for several
  inputs or outputs, with one row per sample), or `"dataset"`: a *batched*, finite `tf.data.Dataset`
  of `(x, y)` (or `(x, y, sample_weight)`) batches, as `model.fit` takes it;
- optional: `"validation_data"` (an `(x, y)` tuple or a batched dataset), `"batch_size"` (arrays only;
  default 32, as Keras), `"epochs"` (default 1) or `"steps"` (the number of training steps, the data
  repeated as needed), `"metrics"` (a list for `compile`).

Every malformed builder is a `BuilderError` (a `ValueError` and a `TypeError`) naming the problem.
"""

from __future__ import annotations

import importlib
import importlib.util
import math
import os
import sys
from dataclasses import dataclass
from typing import Any, Callable

import keras
import numpy as np
import tensorflow as tf

DEFAULT_BATCH_SIZE = 32
KEYS = ("model", "loss", "x", "y", "dataset", "validation_data", "batch_size", "epochs", "steps", "metrics")


class BuilderError(ValueError, TypeError):
    """The builder cannot be found or called, or what it returns breaks the contract (module docstring)."""


def load_builder(spec: str) -> Callable[[], dict]:
    """The builder named by `spec`: `path/to/file.py:build` or `package.module:build` (`:build` may be
    left out: the function is then `build`)."""
    module_part, _, attribute = spec.rpartition(":") if ":" in spec else (spec, ":", "build")
    attribute = attribute or "build"
    if not module_part:
        raise BuilderError(f"--model {spec!r}: expected path/to/file.py:build or package.module:build")
    if module_part.endswith(".py") or os.sep in module_part or "/" in module_part:
        if not os.path.isfile(module_part):
            raise BuilderError(f"{spec}: no such file {module_part!r}")
        name = f"_hyperadam_compare_{abs(hash(os.path.abspath(module_part)))}"
        module_spec = importlib.util.spec_from_file_location(name, module_part)
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[name] = module  # dataclasses and pickling look the module up by name
        module_spec.loader.exec_module(module)
    else:
        try:
            module = importlib.import_module(module_part)
        except ModuleNotFoundError as error:
            if error.name is None or not module_part.startswith(error.name):
                raise  # the module was found; something it imports was not
            raise BuilderError(f"{spec}: no module named {module_part!r}") from None
    if not hasattr(module, attribute):
        raise BuilderError(f"{spec}: {module_part} has no attribute {attribute!r}")
    builder = getattr(module, attribute)
    if not callable(builder):
        raise BuilderError(f"{spec}: {attribute} is not callable (a {type(builder).__name__})")
    return builder


@dataclass
class Build:
    """One checked result of `build()`."""
    model: keras.Model
    loss: Any
    x: Any = None
    y: Any = None
    dataset: tf.data.Dataset | None = None
    validation_data: Any = None
    batch_size: int = DEFAULT_BATCH_SIZE
    epochs: int | None = None
    steps: int | None = None
    metrics: list | None = None

    @property
    def num_samples(self) -> int | None:
        """Training samples (arrays), or None (a dataset)."""
        return None if self.x is None else len(tf.nest.flatten(self.x)[0])

    def batches_per_epoch(self) -> int | None:
        """Batches in one pass over the training data; None for a dataset of unknown cardinality."""
        if self.x is not None:
            return math.ceil(self.num_samples / self.batch_size)
        cardinality = int(self.dataset.cardinality())
        return cardinality if cardinality >= 0 else None

    def steps_per_run(self) -> int | None:
        """Training steps of one run (None when the dataset's length is unknown)."""
        if self.steps is not None:
            return self.steps
        per_epoch = self.batches_per_epoch()
        return None if per_epoch is None else per_epoch * (self.epochs or 1)


def _type_name(value: Any) -> str:
    return type(value).__name__


def _positive_int(result: dict, key: str) -> int | None:
    value = result.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise BuilderError(f'"{key}" must be an integer >= 1, got {value!r}')
    return int(value)


def _arrays(value: Any, key: str) -> Any:
    """`value` (an array or a dict/list/tuple of arrays) with every leaf a NumPy array of one length."""
    try:
        arrays = tf.nest.map_structure(np.asarray, value)
    except Exception as error:
        raise BuilderError(f'"{key}" must be an array or a dict/list of arrays, got {_type_name(value)}: {error}') from None
    leaves = tf.nest.flatten(arrays)
    if not leaves or any(a.ndim == 0 or a.dtype == object for a in leaves):
        raise BuilderError(f'"{key}" must be an array or a dict/list of arrays with one row per sample, '
                           f'got {_type_name(value)}')
    if len({len(a) for a in leaves}) > 1:
        raise BuilderError(f'"{key}": its arrays have different numbers of rows ({sorted({len(a) for a in leaves})})')
    return arrays


def check_build(result: Any) -> Build:
    """`result` of `build()` as a `Build`; a `BuilderError` naming the first problem found."""
    if not isinstance(result, dict):
        raise BuilderError(f"build() must return a dict, got {_type_name(result)}")
    unknown = sorted(set(map(str, result)) - set(KEYS))
    if unknown:
        raise BuilderError(f"build() returned unknown keys {', '.join(map(repr, unknown))}; known: {', '.join(KEYS)}")
    for key in ("model", "loss"):
        if result.get(key) is None:
            raise BuilderError(f'build() returned no "{key}"')
    model = result["model"]
    if not isinstance(model, keras.Model):
        raise BuilderError(f'"model" must be a keras.Model, got {_type_name(model)}')
    if getattr(model, "compiled", False) or getattr(model, "optimizer", None) is not None:
        raise BuilderError('"model" is compiled: return it uncompiled (compare compiles it with each optimizer)')
    has_arrays = result.get("x") is not None or result.get("y") is not None
    if has_arrays and result.get("dataset") is not None:
        raise BuilderError('build() returned both "x"/"y" and "dataset": give one of them')
    if not has_arrays and result.get("dataset") is None:
        raise BuilderError('build() returned no training data: give "x" and "y", or "dataset"')
    build = Build(model=model, loss=result["loss"], epochs=_positive_int(result, "epochs"),
                  steps=_positive_int(result, "steps"), metrics=result.get("metrics"))
    if build.epochs is not None and build.steps is not None:
        raise BuilderError('build() returned both "epochs" and "steps": give one of them')
    if has_arrays:
        for key in ("x", "y"):
            if result.get(key) is None:
                raise BuilderError(f'build() returned "{"y" if key == "x" else "x"}" but no "{key}"')
        build.x, build.y = _arrays(result["x"], "x"), _arrays(result["y"], "y")
        if len(tf.nest.flatten(build.x)[0]) != len(tf.nest.flatten(build.y)[0]):
            raise BuilderError(f'"x" has {len(tf.nest.flatten(build.x)[0])} rows but "y" has '
                               f'{len(tf.nest.flatten(build.y)[0])}')
        build.batch_size = _positive_int(result, "batch_size") or DEFAULT_BATCH_SIZE
    else:
        dataset = result["dataset"]
        if not isinstance(dataset, tf.data.Dataset):
            raise BuilderError(f'"dataset" must be a tf.data.Dataset, got {_type_name(dataset)}')
        if result.get("batch_size") is not None:
            raise BuilderError('"batch_size" goes with "x"/"y": batch the "dataset" yourself')
        if int(dataset.cardinality()) == tf.data.INFINITE_CARDINALITY:
            raise BuilderError('"dataset" is infinite: give a finite one (the final loss is one pass over it); '
                               'compare repeats it when "steps" asks for more')
        build.dataset = dataset
    validation = result.get("validation_data")
    if validation is not None:
        if isinstance(validation, tf.data.Dataset):
            build.validation_data = validation
        elif isinstance(validation, (tuple, list)) and len(validation) == 2:
            build.validation_data = (_arrays(validation[0], "validation_data[0]"),
                                     _arrays(validation[1], "validation_data[1]"))
        else:
            raise BuilderError(f'"validation_data" must be an (x, y) tuple or a tf.data.Dataset, got '
                               f'{_type_name(validation)}' + (f" of length {len(validation)}"
                                                              if isinstance(validation, (tuple, list)) else ""))
    metrics = result.get("metrics")
    if metrics is not None and not isinstance(metrics, (list, tuple, dict)):
        raise BuilderError(f'"metrics" must be a list, got {_type_name(metrics)}')
    build.metrics = list(metrics) if isinstance(metrics, tuple) else metrics
    return build


def array_order(num_samples: int, seed: int, epochs: int) -> np.ndarray:
    """The sample order of a run: one seeded permutation per epoch, shape [epochs, num_samples]."""
    rng = np.random.default_rng(seed)
    return np.stack([rng.permutation(num_samples) for _ in range(epochs)]) if epochs else np.zeros((0, num_samples), int)


def training_data(build: Build, seed: int) -> tuple[tf.data.Dataset, dict]:
    """The batches of a run and the `model.fit` arguments that go with them.

    Arrays: batches of `batch_size` in the order `array_order(n, seed, epochs)` (the last batch of an
    epoch may be smaller; no batch spans two epochs), so every optimizer of one seed sees the same
    batches. A dataset is used as it is (repeated when `"steps"` asks for more than one pass): it
    is built right after `keras.utils.set_random_seed(seed)`, so a shuffle without its own seed is the
    same for every optimizer of a seed too.
    """
    steps = build.steps_per_run()
    if build.x is None:
        if build.steps is not None:
            return build.dataset.repeat(), {"epochs": 1, "steps_per_epoch": build.steps}
        return build.dataset, {"epochs": build.epochs or 1}
    per_epoch = build.batches_per_epoch()
    order = array_order(build.num_samples, seed, math.ceil(steps / per_epoch))
    x, y = (tf.nest.map_structure(tf.constant, a) for a in (build.x, build.y))
    indices = tf.data.Dataset.from_tensor_slices(order).flat_map(
        lambda epoch: tf.data.Dataset.from_tensor_slices(epoch).batch(build.batch_size))
    dataset = indices.map(lambda i: (tf.nest.map_structure(lambda a: tf.gather(a, i), x),
                                     tf.nest.map_structure(lambda a: tf.gather(a, i), y)))
    if build.steps is not None:
        return dataset.prefetch(2), {"epochs": 1, "steps_per_epoch": steps}
    # steps_per_epoch keeps one iterator over all epochs' batches (Keras does not reset it).
    return dataset.prefetch(2), {"epochs": build.epochs or 1, "steps_per_epoch": per_epoch}


def sample_inputs(build: Build) -> Any:
    """One batch of inputs (to build a model that has no weights yet)."""
    if build.x is not None:
        return tf.nest.map_structure(lambda a: a[:build.batch_size], build.x)
    return next(iter(build.dataset.take(1)))[0]
