"""One conformance test over every task kind of the registry (`lab.tasks.registry.TASK_KINDS`): the
protocol's promises, the same for all. Initial weights match `param_shapes` and are deterministic in the
seed; batches are deterministic in (seed, step) and depend on them; the loss and its gradient computed
in one compiled program (XLA, seed and step as tensors) agree with eager mode; the full loss is finite.
A kind added to the registry without a case here fails `test_every_registered_kind_has_a_case`."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from hyperadam_keras.lab.tasks import registry
from hyperadam_keras.lab.tasks.registry import TASK_KINDS, build


def _keras_model_kwargs() -> dict:
    init = keras.initializers.GlorotUniform
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(5, activation="tanh", kernel_initializer=init(1)),
                              keras.layers.Dense(3, kernel_initializer=init(2))])
    rng = np.random.default_rng(0)
    return {"model": model, "loss_fn": keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            "x": rng.normal(size=(64, 6)).astype(np.float32), "y": rng.integers(0, 3, 64).astype(np.int32),
            "batch_size": 16}


# kind -> (the keyword arguments of a small instance, called lazily so data loads only for that test;
# whether its batches change from step to step: minibatches do, the quadratic's fixed target does not)
CASES = {
    "mlp": (lambda: {"hidden_layers": 2, "activation": "relu", "batch_size": 32}, True),
    "cnn": (lambda: {"variant": "cnn1", "batch_size": 8}, True),
    "sine-lstm": (lambda: {"batch_size": 16}, True),
    "quadratic": (lambda: {}, False),
    "keras-model": (_keras_model_kwargs, True),
    "random-scaling": (lambda: {"task": {"kind": "quadratic"}, "log_scale_range": 1.0}, False),
    "paper-meta-training": (lambda: {"batch_size": 32}, True),
    # not in the registry's table (meta-training only; lab/tasks/sparse_features.py says why)
    "hyperadam_keras.lab.tasks.sparse_features:build_sparse_features": (lambda: {"features": 50, "active": 4, "examples": 256, "hidden_layers": 1,
                                 "batch_size": 32}, True),
}


def test_every_registered_kind_has_a_case():
    # The package's own kinds (other tests register kinds of their own in the same table).
    assert {kind for kind in CASES if ":" not in kind} == {kind for kind, builder in TASK_KINDS.items() if builder.__module__ == registry.__name__}


def _arrays(nest) -> list:
    return [np.asarray(x) for x in tf.nest.flatten(nest)]


def _loss_and_grads(task, params, batch):
    with tf.GradientTape() as tape:
        tape.watch(params)
        loss = task.loss(params, batch)
    return loss, tape.gradient(loss, params)


@pytest.mark.parametrize("kind", sorted(CASES))
def test_every_task_kind_keeps_the_protocol(kind):
    make_kwargs, minibatches = CASES[kind]
    task = build(kind, **make_kwargs())
    params = task.init_params(3)
    assert [tuple(p.shape) for p in params] == [tuple(s) for s in task.param_shapes()]
    assert all(p.dtype == tf.float32 for p in params)
    assert sum(int(np.prod(s)) for s in task.param_shapes()) == task.num_params()
    for a, b in zip(_arrays(params), _arrays(task.init_params(3))):
        np.testing.assert_array_equal(a, b)
    batch = task.sample_batch(3, 5)
    for a, b in zip(_arrays(batch), _arrays(task.sample_batch(3, 5))):
        np.testing.assert_array_equal(a, b)
    # Another step draws another minibatch; another seed another problem (its start or its batches).
    next_batch = task.sample_batch(3, 6)
    assert any(not np.array_equal(a, b) for a, b in zip(_arrays(batch), _arrays(next_batch))) == minibatches
    other_start = any(not np.array_equal(a, b) for a, b in zip(_arrays(params), _arrays(task.init_params(4))))
    other_batch = any(not np.array_equal(a, b) for a, b in zip(_arrays(batch), _arrays(task.sample_batch(4, 5))))
    assert other_start or other_batch

    loss, grads = _loss_and_grads(task, params, batch)
    assert loss.shape == () and np.isfinite(float(loss))
    assert all(np.all(np.isfinite(g)) for g in grads) and any(np.any(np.asarray(g) != 0) for g in grads)

    @tf.function(jit_compile=True)
    def compiled(params, seed, step):
        return _loss_and_grads(task, params, task.sample_batch(seed, step))

    compiled_loss, compiled_grads = compiled(params, tf.constant(3), tf.constant(5, tf.int64))
    np.testing.assert_allclose(float(compiled_loss), float(loss), rtol=1e-4)
    for a, b in zip(compiled_grads, grads):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-5)

    full = task.full_loss(params, seed=3) if task.needs_seed else task.full_loss(params)
    assert np.isfinite(float(full))
