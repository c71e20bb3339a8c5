"""Any Keras model, loss and data as a `Task`, through ``model.stateless_call``."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import tensorflow as tf

from hyperadam_keras.lab.tasks.base import SeedLike, Task, epoch_batch_indices
from hyperadam_keras.lab.tasks.supervised import _check_dataset, _chunked_mean


def _materialize(dataset) -> tuple[np.ndarray, np.ndarray]:
    """A finite tf.data.Dataset of (x, y) batches -> (x, y) arrays, concatenated in order."""
    xs, ys = [], []
    for x, y in dataset.as_numpy_iterator():
        xs.append(np.asarray(x))
        ys.append(np.asarray(y))
    if not xs:
        raise ValueError("KerasModelTask: the dataset is empty")
    try:
        x, y = np.concatenate(xs), np.concatenate(ys)
    except ValueError as err:
        raise ValueError("KerasModelTask: could not concatenate the dataset's elements; it must "
                         "yield (x, y) *batches*, as `fit` takes them (call .batch(n) first)") from err
    if len(x) != len(y):
        raise ValueError(f"KerasModelTask: the dataset gave {len(x)} inputs but {len(y)} targets; it "
                         "must yield (x, y) batches (call .batch(n) first)")
    return x, y


def _seed_initializers(config: Any, seeds: list[int]) -> Any:
    """A copy of a layer config whose initializer configs all get the next seed of ``seeds``."""
    if isinstance(config, dict):
        config = {k: _seed_initializers(v, seeds) for k, v in config.items()}
        inner = config.get("config")
        if ("class_name" in config and isinstance(inner, dict) and "seed" in inner
                and str(config.get("module", "")).startswith("keras.initializers")):
            config["config"] = {**inner, "seed": seeds.pop(0)}
        return config
    if isinstance(config, list):
        return [_seed_initializers(v, seeds) for v in config]
    return config


class KerasModelTask(Task):
    """Any Keras model + loss + data as a task, through ``model.stateless_call``.

    Parameters are the model's trainable variables (in ``model.trainable_variables`` order); the
    non-trainable ones (e.g. BatchNorm moving statistics) stay fixed at their values when the task is
    made. The forward pass runs with ``training=training`` (default False: dropout off, BatchNorm on
    its moving statistics). Batch nest ``(x [B, ...], y [B, ...])``; minibatches as `MLPTask`.

    Args:
        model: a Keras model with one input (functional, Sequential or subclassed).
        loss_fn: ``loss_fn(y_true, y_pred)``, a Keras loss object, function or name; a per-example
            result is averaged.
        x: NumPy-convertible inputs, or a finite ``tf.data.Dataset`` of ``(x, y)`` batches (as `fit`
            takes it), which is iterated once and materialized to arrays (it must fit in memory).
        y: targets (None when ``x`` is a dataset).
        batch_size: minibatch size.
        init: ``"reinitialize"`` (default): ``init_params(seed)`` clones the model with every Keras
            initializer seeded from ``seed`` (a new draw from the model's own initializers; eager,
            needs a concrete int seed, functional/Sequential models). ``"model"``: the model's
            current weights for every seed (subclassed or pretrained models; works in graphs).
        test_x, test_y: optional held-out data for ``test_metrics`` (``{"test_loss"}``).
        training: the ``training`` flag of the forward pass.
        eval_chunk: examples per forward pass in ``full_loss``/``test_metrics``.
    """

    def __init__(self, model, loss_fn, x, y=None, batch_size: int = 128, init: str = "reinitialize",
                 test_x=None, test_y=None, training: bool = False, eval_chunk: int = 1024):
        import keras

        if init not in ("reinitialize", "model"):
            raise ValueError(f"init must be 'reinitialize' or 'model', got {init!r}")
        if isinstance(x, tf.data.Dataset):
            if y is not None:
                raise ValueError("KerasModelTask: pass y=None when x is a tf.data.Dataset of (x, y)")
            x, y = _materialize(x)
        x, y = np.asarray(x), np.asarray(y)
        _check_dataset(x, y, batch_size, "KerasModelTask")
        if not model.built:
            model(x[:1])  # builds the variables
        self.model, self.init, self.training = model, init, training
        self.loss_fn = keras.losses.get(loss_fn) if isinstance(loss_fn, str) else loss_fn
        self.x, self.y = tf.convert_to_tensor(x), tf.convert_to_tensor(y)
        self.test_x = None if test_x is None else tf.convert_to_tensor(np.asarray(test_x))
        self.test_y = None if test_y is None else tf.convert_to_tensor(np.asarray(test_y))
        self.batch_size, self.eval_chunk = batch_size, eval_chunk
        self.name = f"keras-{model.name}"
        self._initial = [tf.identity(tf.cast(v.value, tf.float32)) for v in model.trainable_variables]
        self._non_trainable = [tf.identity(v.value) for v in model.non_trainable_variables]

    def param_shapes(self) -> list[tuple[int, ...]]:
        return [tuple(p.shape) for p in self._initial]

    def init_params(self, seed: SeedLike) -> list[tf.Tensor]:
        if self.init == "model":
            return list(self._initial)
        import keras

        if isinstance(seed, tf.Tensor):
            if not tf.executing_eagerly():
                raise TypeError("KerasModelTask(init='reinitialize').init_params needs a concrete seed "
                                "(it runs the model's Keras initializers eagerly); call it outside "
                                "tf.function, or use init='model'")
            seed = int(seed.numpy())
        # Distinct seeds for the model's initializers, a deterministic function of the task seed.
        seeds = np.random.SeedSequence([int(seed) % 2 ** 63]).generate_state(4096, dtype=np.uint32)
        seeds = [int(v) % 2 ** 31 for v in seeds]
        try:
            clone = keras.models.clone_model(
                self.model, clone_function=lambda layer: layer.__class__.from_config(
                    _seed_initializers(layer.get_config(), seeds)))
        except (ValueError, TypeError, NotImplementedError) as err:
            raise ValueError(f"KerasModelTask: cannot re-initialize {self.model.name!r} by cloning "
                             f"({err}); use init='model' to start from its current weights") from err
        if not clone.built:
            clone(self.x[:1])
        params = [tf.cast(v.value, tf.float32) for v in clone.trainable_variables]
        if [tuple(p.shape) for p in params] != self.param_shapes():
            raise ValueError("KerasModelTask: the re-initialized clone's variables do not match the "
                             "model's; use init='model'")
        return params

    def sample_batch(self, seed: SeedLike, step: SeedLike) -> tuple[tf.Tensor, tf.Tensor]:
        idx = epoch_batch_indices(seed, step, int(self.x.shape[0]), self.batch_size)
        return tf.gather(self.x, idx), tf.gather(self.y, idx)

    def predict(self, params: Sequence[tf.Tensor], x: tf.Tensor) -> tf.Tensor:
        """The model's output for inputs ``x`` with trainable weights ``params``."""
        outputs, _ = self.model.stateless_call(list(params), self._non_trainable, x, training=self.training)
        return outputs

    def _loss_of(self, params, x, y) -> tf.Tensor:
        return tf.reduce_mean(tf.cast(self.loss_fn(y, self.predict(params, x)), tf.float32))

    def loss(self, params, batch) -> tf.Tensor:
        x, y = batch
        return self._loss_of(params, x, y)

    def full_loss(self, params, seed: SeedLike | None = None) -> tf.Tensor:
        return _chunked_mean(lambda x, y: self._loss_of(params, x, y), self.x, self.y, self.eval_chunk)

    def test_metrics(self, params, seed: SeedLike | None = None) -> dict[str, float] | None:
        if self.test_x is None:
            return None
        return {"test_loss": float(_chunked_mean(lambda x, y: self._loss_of(params, x, y),
                                                 self.test_x, self.test_y, self.eval_chunk))}
