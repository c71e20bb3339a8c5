"""Optimizee tasks: losses against NumPy, seeds, batches, XLA, and the RS / CC / sum transforms."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from hyperadam_keras.lab.tasks import (CNNTask, KerasModelTask, MLPTask, QuadraticTask, RandomScaling, SineLSTMTask,
                                       SumTask, epoch_batch_indices, paper_meta_training_task, sub_seed)

N, BATCH = 300, 32


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    images = rng.uniform(0.0, 1.0, (N, 784)).astype(np.float32)
    labels = rng.integers(0, 10, N).astype(np.int32)
    return images, labels


def _np(tensors):
    return [np.asarray(t, dtype=np.float64) for t in tensors]


def _np_cross_entropy(logits, labels):
    logits = logits - logits.max(axis=1, keepdims=True)
    log_probs = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    return -log_probs[np.arange(len(labels)), labels].mean()


NP_ACT = {"sigmoid": lambda z: 1 / (1 + np.exp(-z)), "relu": lambda z: np.maximum(z, 0),
          "elu": lambda z: np.where(z > 0, z, np.expm1(np.minimum(z, 0))), "tanh": np.tanh}


def _np_mlp_logits(params, x, activation):
    h = np.asarray(x, np.float64)
    layers = len(params) // 2
    for k in range(layers):
        h = h @ params[2 * k] + params[2 * k + 1]
        if k < layers - 1:
            h = NP_ACT[activation](h)
    return h


def _grads(task, params, batch):
    with tf.GradientTape() as tape:
        tape.watch(params)
        loss = task.loss(params, batch)
    return loss, tape.gradient(loss, params)


# --- MLP ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("activation,layers", [("sigmoid", 1), ("relu", 2), ("elu", 1), ("tanh", 3)])
def test_mlp_loss_matches_numpy(data, activation, layers):
    images, labels = data
    task = MLPTask(images, labels, hidden_layers=layers, width=20, activation=activation, batch_size=BATCH)
    params = task.init_params(3)
    assert task.param_shapes() == [(784, 20), (20,)] + [(20, 20), (20,)] * (layers - 1) + [(20, 10), (10,)]
    x, y = task.sample_batch(3, 5)
    expected = _np_cross_entropy(_np_mlp_logits(_np(params), x, activation), np.asarray(y))
    np.testing.assert_allclose(float(task.loss(params, (x, y))), expected, rtol=1e-5)
    full = _np_cross_entropy(_np_mlp_logits(_np(params), images, activation), labels)
    np.testing.assert_allclose(float(task.full_loss(params)), full, rtol=1e-5)


def test_mlp_init_is_seeded_normal_with_std_0_1(data):
    task = MLPTask(*data, batch_size=BATCH)
    first, again, other = task.init_params(11), task.init_params(11), task.init_params(12)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    assert not np.allclose(first[0], other[0])
    values = np.concatenate([np.ravel(p) for p in first])
    assert values.size == task.num_params() == 784 * 20 + 20 + 20 * 10 + 10
    assert abs(values.std() - 0.1) < 0.004 and abs(values.mean()) < 0.004
    # Gaussian, not uniform: about 68.3 % within one standard deviation.
    assert abs(np.mean(np.abs(values) < 0.1) - 0.683) < 0.02


def test_batches_are_epochwise_permutations_deterministic_in_seed_and_step(data):
    images, labels = data
    task = MLPTask(images, labels, batch_size=BATCH)
    per_epoch = N // BATCH  # 9 batches, 12 images left out per epoch
    epoch = np.concatenate([np.asarray(epoch_batch_indices(4, s, N, BATCH)) for s in range(per_epoch)])
    assert len(np.unique(epoch)) == per_epoch * BATCH  # no repeats within an epoch
    next_epoch = np.asarray(epoch_batch_indices(4, per_epoch, N, BATCH))
    assert not np.array_equal(next_epoch, epoch[:BATCH])
    x, y = task.sample_batch(4, 2)
    np.testing.assert_array_equal(x, images[epoch[2 * BATCH:3 * BATCH]])
    np.testing.assert_array_equal(y, labels[epoch[2 * BATCH:3 * BATCH]])
    np.testing.assert_array_equal(task.sample_batch(4, 2)[0], task.sample_batch(tf.constant(4), tf.constant(2))[0])
    assert not np.array_equal(task.sample_batch(4, 3)[1], y)
    assert not np.array_equal(task.sample_batch(5, 2)[1], y)


def test_mlp_test_metrics_match_numpy(data):
    images, labels = data
    task = MLPTask(images[:200], labels[:200], batch_size=BATCH, test_images=images[200:], test_labels=labels[200:])
    params = task.init_params(0)
    logits = _np_mlp_logits(_np(params), images[200:], "sigmoid")
    metrics = task.test_metrics(params)
    np.testing.assert_allclose(metrics["test_loss"], _np_cross_entropy(logits, labels[200:]), rtol=1e-5)
    np.testing.assert_allclose(metrics["test_accuracy"], np.mean(logits.argmax(1) == labels[200:]), atol=1e-6)
    assert MLPTask(images, labels).test_metrics(params) is None


# --- quadratic and the transforms -----------------------------------------------------------------


def test_quadratic_matches_its_formula_including_the_clip():
    task = QuadraticTask()
    assert task.param_shapes() == [(20,)]
    np.testing.assert_array_equal(task.init_params(5)[0], np.zeros(20))
    a = np.asarray(task.sample_batch(5, 0))
    np.testing.assert_array_equal(a, task.sample_batch(5, 99))  # the target is fixed per task
    assert a.shape == (20,) and np.all(np.abs(a) <= 1) and not np.allclose(a, task.sample_batch(6, 0))
    z = np.linspace(-6, 6, 20).astype(np.float32)  # far enough out that some squares exceed 10
    expected = np.mean(np.minimum((z - a) ** 2, 10.0))
    assert np.any((z - a) ** 2 > 10)
    np.testing.assert_allclose(float(task.loss([tf.constant(z)], a)), expected, rtol=1e-6)
    np.testing.assert_allclose(float(task.full_loss([tf.constant(z)], seed=5)), expected, rtol=1e-6)
    with pytest.raises(ValueError, match="seed"):
        task.full_loss([tf.constant(z)])


def test_random_scaling_scales_start_and_loss_as_the_spec_says(data):
    inner = MLPTask(*data, batch_size=BATCH)
    task = RandomScaling(inner, 3.0)
    scales = _np(task.scales(8))
    logs = np.concatenate([np.log(c).ravel() for c in scales])
    assert logs.size == inner.num_params()
    assert logs.min() >= -3 - 1e-5 and logs.max() <= 3 + 1e-5
    assert abs(logs.std() - 3 / math.sqrt(3)) < 0.05 and abs(logs.mean()) < 0.05  # U(-3, 3)
    for w, w0, c in zip(task.init_params(8), _np(inner.init_params(8)), scales):
        np.testing.assert_allclose(w, w0 / c, rtol=1e-5)
    batch = task.sample_batch(8, 1)
    np.testing.assert_array_equal(batch["batch"][0], inner.sample_batch(8, 1)[0])
    params = [tf.constant(np.random.default_rng(1).normal(0, 0.1, s), tf.float32) for s in task.param_shapes()]
    x, y = batch["batch"]
    expected = _np_cross_entropy(_np_mlp_logits([w * c for w, c in zip(_np(params), scales)], x, "sigmoid"),
                                 np.asarray(y))
    np.testing.assert_allclose(float(task.loss(params, batch)), expected, rtol=1e-5)
    # Chain rule: d/dw L(c ⊙ w) = c ⊙ L'(c ⊙ w).
    _, grads = _grads(task, params, batch)
    _, inner_grads = _grads(inner, [w * c for w, c in zip(params, batch["scales"])], batch["batch"])
    for g, gi, c in zip(grads, inner_grads, scales):
        np.testing.assert_allclose(g, c * np.asarray(gi), rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(float(task.full_loss(params, seed=8)),
                               float(inner.full_loss([w * c for w, c in zip(params, batch["scales"])])), rtol=1e-6)


def test_random_scaling_of_the_quadratic_matches_numpy():
    task = RandomScaling(QuadraticTask(), 1.0)
    batch = task.sample_batch(2, 0)
    c, a = np.asarray(batch["scales"][0], np.float64), np.asarray(batch["batch"], np.float64)
    assert np.all(np.abs(np.log(c)) <= 1 + 1e-6)
    w = np.linspace(-2, 2, 20)
    np.testing.assert_allclose(float(task.loss([tf.constant(w, tf.float32)], batch)),
                               np.mean(np.minimum((c * w - a) ** 2, 10)), rtol=1e-5)


def test_sum_task_shares_one_parameter_list_and_adds_the_losses(data):
    task = paper_meta_training_task(*data, batch_size=BATCH)
    rs_mlp, rs_quad = task.tasks
    assert (rs_mlp.log_scale_range, rs_quad.log_scale_range) == (3.0, 1.0)
    assert isinstance(rs_mlp.task, MLPTask) and rs_mlp.task.activation == "sigmoid" and rs_mlp.task.width == 20
    assert task.param_shapes() == [(784, 20), (20,), (20, 10), (10,), (20,)]
    params = task.init_params(9)
    s0, s1 = sub_seed(9, 0), sub_seed(9, 1)
    for p, q in zip(params, rs_mlp.init_params(s0) + rs_quad.init_params(s1)):
        np.testing.assert_array_equal(p, q)
    batch = task.sample_batch(9, 4)
    assert len(batch) == 2
    x, y = batch[0]["batch"]
    c_mlp, c_quad = _np(batch[0]["scales"]), _np(batch[1]["scales"])[0]
    a = np.asarray(batch[1]["batch"], np.float64)
    mlp = _np_cross_entropy(_np_mlp_logits([w * c for w, c in zip(_np(params[:4]), c_mlp)], x, "sigmoid"),
                            np.asarray(y))
    quad = np.mean(np.minimum((c_quad * _np(params[4:])[0] - a) ** 2, 10))
    np.testing.assert_allclose(float(task.loss(params, batch)), mlp + quad, rtol=1e-5)
    full = float(rs_mlp.full_loss(params[:4], seed=s0) + rs_quad.full_loss(params[4:], seed=s1))
    np.testing.assert_allclose(float(task.full_loss(params, seed=9)), full, rtol=1e-6)
    # Two copies of one task get different draws (a per-part seed), not the same problem twice.
    twins = SumTask([QuadraticTask(), QuadraticTask()])
    b0, b1 = twins.sample_batch(9, 0)
    assert not np.allclose(b0, b1)


# --- CNN ------------------------------------------------------------------------------------------


def _np_conv_same(x, kernel, bias):
    padded = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    out = np.zeros(x.shape[:3] + (kernel.shape[-1],))
    for i in range(3):
        for j in range(3):
            out += np.einsum("bhwc,cf->bhwf", padded[:, i:i + x.shape[1], j:j + x.shape[2]], kernel[i, j])
    return np.maximum(out + bias, 0)


def _np_pool(x):
    b, h, w, c = x.shape
    return x.reshape(b, h // 2, 2, w // 2, 2, c).max(axis=(2, 4))


@pytest.mark.parametrize("variant", ["cnn1", "cnn2"])
def test_cnn_loss_matches_numpy(data, variant):
    images, labels = data
    task = CNNTask(images, labels, variant=variant, filters=(4, 6) if variant == "cnn1" else (4, 4, 6, 6),
                   dense_units=12, batch_size=8)
    params = task.init_params(1)
    p = _np(params)
    x, y = task.sample_batch(1, 0)
    assert x.shape == (8, 28, 28, 1)
    h = np.asarray(x, np.float64)
    convs = 2 if variant == "cnn1" else 4
    for k in range(convs):
        h = _np_conv_same(h, p[2 * k], p[2 * k + 1])
        if k % 2 == 1:
            h = _np_pool(h)
    h = h.reshape(8, -1)
    dense = p[2 * convs:]
    assert dense[0].shape[0] == (14 * 14 * 6 if variant == "cnn1" else 7 * 7 * 6)
    for k in range(len(dense) // 2):
        h = h @ dense[2 * k] + dense[2 * k + 1]
        if k < len(dense) // 2 - 1:
            h = np.maximum(h, 0)
    np.testing.assert_allclose(float(task.loss(params, (x, y))), _np_cross_entropy(h, np.asarray(y)), rtol=1e-4)
    # He-normal kernels, zero biases by default.
    assert np.all(p[1] == 0) and abs(p[2].std() - math.sqrt(2 / (9 * 4))) < 0.03


def test_cnn_chunked_full_loss_equals_the_mean_over_all_images(data):
    images, labels = data
    task = CNNTask(images[:50], labels[:50], filters=(2, 2), batch_size=8, eval_chunk=16)
    params = task.init_params(0)
    whole = float(task.loss(params, (tf.reshape(images[:50], [-1, 28, 28, 1]), tf.constant(labels[:50]))))
    np.testing.assert_allclose(float(task.full_loss(params)), whole, rtol=1e-5)


# --- sine LSTM ------------------------------------------------------------------------------------


def _np_lstm_predict(params, inputs, layers, hidden):
    b = inputs.shape[0]
    h, c = [np.zeros((b, hidden)) for _ in range(layers)], [np.zeros((b, hidden)) for _ in range(layers)]
    sig = NP_ACT["sigmoid"]
    for t in range(inputs.shape[1]):
        x = inputs[:, t, :]
        for k in range(layers):
            z = np.concatenate([x, h[k]], 1) @ params[2 * k] + params[2 * k + 1]
            i, f, g, o = np.split(z, 4, axis=1)
            c[k] = sig(f) * c[k] + sig(i) * np.tanh(g)
            h[k] = sig(o) * np.tanh(c[k])
            x = h[k]
    return (x @ params[-2] + params[-1])[:, 0]


@pytest.mark.parametrize("layers", [1, 2])
def test_sine_lstm_loss_matches_numpy(layers):
    task = SineLSTMTask(num_layers=layers, hidden=6, batch_size=16, eval_size=64)
    params = task.init_params(2)
    inputs, targets = task.sample_batch(2, 3)
    assert inputs.shape == (16, 10, 1) and targets.shape == (16,)
    pred = _np_lstm_predict(_np(params), np.asarray(inputs, np.float64), layers, 6)
    np.testing.assert_allclose(float(task.loss(params, (inputs, targets))),
                               np.mean((pred - np.asarray(targets)) ** 2), rtol=1e-5)


def test_sine_data_are_sines_plus_the_requested_noise():
    clean, noisy = SineLSTMTask(noise_std=0.0, batch_size=512), SineLSTMTask(noise_std=0.1, batch_size=512)
    x0, y0 = (np.asarray(t, np.float64) for t in clean.sample_batch(4, 7))
    x1, y1 = (np.asarray(t, np.float64) for t in noisy.sample_batch(4, 7))
    np.testing.assert_array_equal(y0, y1)  # the target is the clean f(10)
    assert abs((x1 - x0).std() - 0.1) < 0.005
    # A sine sampled at integers obeys f(t+1) + f(t-1) = 2 cos(ω) f(t), here with ω in [0, π/2].
    f = np.concatenate([x0[:, :, 0], y0[:, None]], axis=1)
    k = np.sum((f[:, 2:] + f[:, :-2]) * f[:, 1:-1], 1) / np.sum(f[:, 1:-1] ** 2, 1)
    residual = f[:, 2:] + f[:, :-2] - k[:, None] * f[:, 1:-1]
    assert np.max(np.abs(residual)) < 1e-3 * 10
    assert np.all(k > -1e-3) and np.all(k < 2 + 1e-3) and np.abs(f).max() <= 10 + 1e-4
    assert np.abs(f).max() > 9  # amplitudes span U(0, 10)
    assert not np.allclose(clean.sample_batch(4, 8)[1], y0)


def test_sine_full_and_test_sets_are_fixed_and_different():
    task = SineLSTMTask(batch_size=16, eval_size=256)
    params = task.init_params(0)
    full, test = float(task.full_loss(params)), task.test_metrics(params)["test_loss"]
    assert full == float(SineLSTMTask(batch_size=16, eval_size=256).full_loss(params)) and full != test


# --- every task under XLA -------------------------------------------------------------------------


def _tasks(images, labels):
    return {
        "paper": paper_meta_training_task(images, labels, batch_size=BATCH),
        "lstm2": SineLSTMTask(num_layers=2, hidden=4, batch_size=16, eval_size=32, seq_len=4),
    }


def _xla_step(tasks):
    """One XLA-compiled function: for each task, init, batch, loss and gradients at (seed, step)."""
    @tf.function(jit_compile=True)
    def init_and_step(seed, step):
        out = {}
        for name, task in tasks.items():
            params = task.init_params(seed)
            batch = task.sample_batch(seed, step)
            out[name] = (params, batch, *_grads(task, params, batch))
        return out

    return init_and_step


def test_cnn_lowers_to_one_xla_program_for_all_seeds_and_steps(data):
    # Lowering to HLO fails on any op without an XLA kernel; running XLA's conv is TensorFlow's business
    # (and costs seconds of compile time), so this test stops at the HLO.
    step = _xla_step({"cnn2": CNNTask(*data, variant="cnn2", filters=(2, 2, 3, 3), dense_units=8, batch_size=8)})
    hlo = [step.experimental_get_compiler_ir(tf.constant(seed), tf.constant(s, tf.int64))(stage="hlo")
           for seed, s in ((3, 5), (4, 77))]
    assert hlo[0] == hlo[1] and "convolution" in hlo[0]


def test_tasks_run_under_xla_with_tensor_seed_and_step(data):
    # All tasks in one compiled function ("paper" covers MLP, RS, CC and sums); err_msg names the task.
    tasks = _tasks(*data)
    init_and_step = _xla_step(tasks)
    compiled = init_and_step(tf.constant(3), tf.constant(5, tf.int64))
    # One compiled program for every seed and step: no value is baked in as a compile-time constant
    # (else XLA would recompile at every step of an unroll).
    hlo = [init_and_step.experimental_get_compiler_ir(tf.constant(seed), tf.constant(step, tf.int64))(stage="hlo")
           for seed, step in ((3, 5), (4, 77))]
    assert hlo[0] == hlo[1]
    for name, task in tasks.items():
        params, batch, loss, grads = compiled[name]
        eager_params = task.init_params(3)
        eager_batch = task.sample_batch(3, 5)
        for a, b in zip(tf.nest.flatten(batch), tf.nest.flatten(eager_batch)):
            # Batches and scales agree with eager mode (XLA's sin/exp differ from TF's in the last bits).
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-4, err_msg=name)
        for a, b in zip(params, eager_params):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6, err_msg=name)
        np.testing.assert_allclose(float(loss), float(task.loss(eager_params, eager_batch)), rtol=1e-4, err_msg=name)
        assert all(np.all(np.isfinite(g)) for g in grads) and any(np.any(np.asarray(g) != 0) for g in grads), name


# --- Keras models ---------------------------------------------------------------------------------


def _small_model():
    init = keras.initializers.GlorotUniform
    return keras.Sequential([keras.Input((784,)), keras.layers.Dense(8, activation="tanh", kernel_initializer=init(1)),
                             keras.layers.BatchNormalization(), keras.layers.Dense(10, kernel_initializer=init(2))],
                            name="small")


def test_keras_task_loss_equals_the_model_and_its_loss():
    # Separable classes (one pixel template per class, plus noise), so that a few descent steps must help.
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 10, N).astype(np.int32)
    images = (0.5 * rng.uniform(size=(10, 784))[labels] + 0.5 * rng.uniform(size=(N, 784))).astype(np.float32)
    model = _small_model()
    # Non-trivial moving statistics, so that the fixed non-trainable variables matter.
    model.layers[1].moving_mean.assign(np.full(8, 0.3, np.float32))
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    task = KerasModelTask(model, loss_fn, images, labels, batch_size=BATCH, init="model")
    params = task.init_params(0)
    x, y = task.sample_batch(0, 1)
    expected = float(loss_fn(y, model(x, training=False)))
    np.testing.assert_allclose(float(task.loss(params, (x, y))), expected, rtol=1e-6)
    np.testing.assert_allclose(float(task.full_loss(params)), float(loss_fn(labels, model(images))), rtol=1e-5)
    # Gradient descent on the task lowers the loss (the stateless call is differentiable).
    step = tf.function(lambda p, s: _grads(task, p, task.sample_batch(0, s)), jit_compile=True)
    hlo = [step.experimental_get_compiler_ir(params, tf.constant(s))(stage="hlo") for s in (0, 40)]
    assert hlo[0] == hlo[1]  # compiled once for all steps
    before = float(task.full_loss(params))
    for s in range(15):
        _, grads = step(params, tf.constant(s))
        params = [p - 0.1 * g for p, g in zip(params, grads)]
    assert float(task.full_loss(params)) < before - 0.3


def test_keras_task_reinitializes_with_the_models_own_seeded_initializers(data):
    images, labels = data
    task = KerasModelTask(_small_model(), "sparse_categorical_crossentropy", images, labels)
    a, b, other = task.init_params(5), task.init_params(5), task.init_params(6)
    assert [tuple(p.shape) for p in a] == task.param_shapes() == [(784, 8), (8,), (8,), (8,), (8, 10), (10,)]
    for p, q in zip(a, b):
        np.testing.assert_array_equal(p, q)
    assert not np.allclose(a[0], other[0]) and not np.allclose(a[4], other[4])
    limit = math.sqrt(6 / (784 + 8))  # Glorot uniform kernel, zero bias, BatchNorm gamma 1 / beta 0
    assert np.abs(a[0]).max() <= limit and np.abs(a[0]).max() > 0.9 * limit
    np.testing.assert_array_equal(a[1], 0)
    np.testing.assert_array_equal(a[2], 1)


def test_keras_task_materializes_a_batched_dataset_and_rejects_an_unbatched_one(data):
    images, labels = data
    dataset = tf.data.Dataset.from_tensor_slices((images, labels))
    task = KerasModelTask(_small_model(), "sparse_categorical_crossentropy", dataset.batch(64), init="model")
    np.testing.assert_array_equal(task.x, images)
    np.testing.assert_array_equal(task.y, labels)
    with pytest.raises(ValueError, match="batch"):
        KerasModelTask(_small_model(), "sparse_categorical_crossentropy", dataset)


def test_sparse_feature_data_is_deterministic_zipf_counts_and_gives_sparse_first_layer_gradients():
    from hyperadam_keras.lab.tasks.registry import build
    from hyperadam_keras.lab.tasks.sparse_features import sparse_feature_data

    counts, labels = sparse_feature_data(features=300, active=6, examples=2000, data_seed=3)
    again, labels_again = sparse_feature_data.__wrapped__(features=300, active=6, examples=2000, data_seed=3)
    np.testing.assert_array_equal(counts, again)
    np.testing.assert_array_equal(labels, labels_again)
    assert counts.shape == (2000, 300) and counts.dtype == np.float32 and labels.dtype == np.int32
    np.testing.assert_array_equal(counts.sum(axis=1), 6.0)  # `active` draws per example, repeats counted
    frequency = counts.sum(axis=0)
    assert frequency[:10].sum() > 5 * frequency[-10:].sum()  # Zipf-like: the first features are common
    assert len(np.unique(labels)) == 10 and np.bincount(labels).max() < 0.5 * len(labels)
    other, _ = sparse_feature_data.__wrapped__(features=300, active=6, examples=2000, data_seed=4)
    assert not np.array_equal(counts, other)
    with pytest.raises(ValueError, match="active must be a positive int"):
        sparse_feature_data(features=300, active=0)

    task = build("hyperadam_keras.lab.tasks.sparse_features:build_sparse_features", features=300, active=6, examples=2000, data_seed=3, hidden_layers=0,
                 batch_size=32)
    assert task.name.startswith("sparse300x6-") and task.param_shapes() == [(300, 10), (10,)]
    params = task.init_params(0)
    kernel_grad = _grads(task, params, task.sample_batch(0, 0))[1][0].numpy()
    zero_rows = np.all(kernel_grad == 0.0, axis=1)
    # A batch of 32 examples of 6 features each touches at most 192 of the 300 rows.
    assert zero_rows.mean() > 0.35
    batch = task.sample_batch(0, 0)[0].numpy()
    np.testing.assert_array_equal(zero_rows, batch.sum(axis=0) == 0)
