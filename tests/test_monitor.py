"""`HyperAdamMonitor`: the event files it writes during `fit`, read back and checked against an independent
float64 NumPy recomputation from state captured by the test itself (effective step, ρ, Σρ, β, γ, skipped
fraction), the histogram format against TensorBoard's own, the sample, and its errors."""

import glob
import os

import keras
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.util import event_pb2

from hyperadam_keras import HyperAdam, HyperAdamMonitor, random_meta_params
from hyperadam_keras.monitor import histogram_buckets, sample_counts

EVERY = 5
STEPS = 30
NAN_BATCH = 12  # the 13th update: skipped
QUANTILES = (0.05, 0.5, 0.95)


def read_events(log_dir) -> dict:
    """{(tag, step): value} of every summary in `log_dir`'s event files."""
    values = {}
    for path in glob.glob(os.path.join(log_dir, "events.out.tfevents.*")):
        for record in tf.data.TFRecordDataset(path):
            event = event_pb2.Event.FromString(record.numpy())
            for value in event.summary.value:
                values[(value.tag, event.step)] = tf.make_ndarray(value.tensor)
    return values


def small_model():
    keras.utils.set_random_seed(0)
    return keras.Sequential([keras.Input((20,)), keras.layers.Dense(6, activation="tanh"), keras.layers.Dense(3)])


def data(num_batches=STEPS, batch_size=16):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(num_batches * batch_size, 20)).astype(np.float32)
    x[NAN_BATCH * batch_size:(NAN_BATCH + 1) * batch_size] = np.nan  # a NaN loss: the step is skipped
    return x, rng.integers(0, 3, len(x))


class Capture(keras.callbacks.Callback):
    """Copies the weights, every m slot and α before each sampled update, and the weights and h after."""

    def __init__(self):
        super().__init__()
        self.before, self.after = {}, {}

    def on_train_batch_begin(self, batch, logs=None):
        opt, s = self.model.optimizer, int(self.model.optimizer.iterations) + 1
        if s % EVERY == 0:
            variables = self.model.trainable_variables
            self.before[s] = ([v.numpy() for v in variables], [opt.slots(v)["m"].numpy() for v in variables],
                              float(opt.learning_rate))

    def on_train_batch_end(self, batch, logs=None):
        opt, s = self.model.optimizer, int(self.model.optimizer.iterations)
        if s in self.before:
            self.after[s] = ([v.numpy() for v in self.model.trainable_variables],
                             [opt.slots(v)["h"].numpy() for v in self.model.trainable_variables])


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def expected(capture, s, sample, arrays, normalization, decay_after, lr_scale=1.0, warmup_steps=None):
    """Float64 tags of update s from the captured state: effective step, ρ, Σρ, β, γ on the sample."""
    weights, moments, lr = capture.before[s]
    after_weights, hidden = capture.after[s]
    J = moments[0].shape[0]  # slots (K,) + S: coordinates last
    index = list(sample.values())
    take = lambda arrays_, k=None: np.concatenate(  # noqa: E731
        [(np.asarray(a, np.float64).reshape(-1) if k is None else np.asarray(a, np.float64).reshape(k, -1).T)[ix]
         for a, ix in zip(arrays_, index)])
    alpha = lr * np.sqrt(decay_after / max(s, decay_after)) * lr_scale * (min(1, s / warmup_steps) if warmup_steps else 1)
    delta = take(weights) - take(after_weights)
    out = {"effective_step/overall": np.sqrt(np.mean(delta ** 2)) / alpha}
    start = 0
    for path, ix in sample.items():
        out[f"effective_step/{path}"] = np.sqrt(np.mean(delta[start:start + len(ix)] ** 2)) / alpha
        start += len(ix)
    h = take(hidden, hidden[0].shape[0])
    z = h @ arrays["weight_cell/kernel"] + arrays["weight_cell/bias"]
    rho = np.where(z > 0, z, np.expm1(np.minimum(z, 0)))
    # m'_{t-1}: every column by its norm (or RMS) over ALL coordinates of all variables.
    all_m = np.concatenate([np.asarray(m, np.float64).reshape(J, -1).T for m in moments])
    per = len(all_m) if normalization != "norm" else 1
    m_prime = take(moments, J) / np.sqrt(np.sum(all_m ** 2, axis=0) / per + 1e-16)
    if normalization == "rms-clip":
        m_prime = np.clip(m_prime, -10, 10)
    features = np.concatenate([m_prime, h], axis=1)
    beta = _sigmoid(features @ arrays["adam_cell/beta_kernel"] + arrays["adam_cell/beta_bias"])
    gamma = _sigmoid(features @ arrays["adam_cell/gamma_kernel"] + arrays["adam_cell/gamma_bias"])
    for name, values in (("rho", rho), ("rho_sum", rho.sum(axis=1)), ("beta", beta), ("gamma", gamma)):
        for q, value in zip(QUANTILES, np.quantile(values, QUANTILES)):
            out[f"{name}/q{round(100 * q):02d}"] = value
        out[f"{name}/extent"] = (values.size, values.min(), values.max())
    return out


@pytest.mark.parametrize("normalization, jit, warmup_steps", [("norm", False, None), ("rms-clip", True, 20)])
def test_fit_writes_the_expected_tags_and_values(tmp_path, normalization, jit, warmup_steps):
    """30 updates, every 5th sampled, one NaN batch; the model step with and without XLA (jit_compile);
    α_t with the decay after 10 updates, and with a warm-up over 20 updates."""
    params = random_meta_params(5, 3, seed=7, scale=1.0).with_feature_normalization(normalization)
    model = small_model()
    model.compile(optimizer=HyperAdam(learning_rate=0.01, meta_params=params, decay_after=10,
                                      warmup_steps=warmup_steps, max_relative_step=None), jit_compile=jit,
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    monitor, capture = HyperAdamMonitor(tmp_path, every_n_steps=EVERY), Capture()
    x, y = data()
    model.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0, callbacks=[monitor, capture])
    events = read_events(tmp_path)
    sample = monitor.sample
    assert list(sample) == [v.path for v in model.trainable_variables]
    assert [len(ix) for ix in sample.values()] == [64, 6, 18, 3]  # at most 64 of each variable
    sampled_steps = list(range(EVERY, STEPS + 1, EVERY))
    assert sorted({step for _, step in events}) == sampled_steps
    for s in sampled_steps:
        want = expected(capture, s, sample, params.arrays(), normalization, decay_after=10,
                        warmup_steps=warmup_steps)
        for tag, value in want.items():
            if tag.endswith("/extent"):  # the histogram: all n values, from their min to their max
                buckets = events[(tag.replace("/extent", "/histogram"), s)]
                count, low, high = value
                assert buckets.shape == (30, 3) and buckets[:, 2].sum() == count, tag
                np.testing.assert_allclose([buckets[0, 0], buckets[-1, 1]], [low, high], rtol=1e-5, atol=1e-6)
            else:
                np.testing.assert_allclose(events[(tag, s)], value, rtol=1e-5, atol=1e-6, err_msg=f"{tag} at {s}")
        warmup = min(1, s / warmup_steps) if warmup_steps else 1
        np.testing.assert_allclose(events[("learning_rate/alpha_t", s)], 0.01 * np.sqrt(10 / max(s, 10)) * warmup,
                                   rtol=1e-6)
        skipped = int(s > NAN_BATCH)
        assert events[("skipped/steps", s)] == skipped
        np.testing.assert_allclose(events[("skipped/fraction", s)], skipped / s)
    assert int(model.optimizer.skipped_steps.numpy()) == 1


def test_histogram_buckets_are_tensorboards():
    """`histogram_buckets` gives TensorBoard's own histogram summary tensor (its `histogram_pb`)."""
    from tensorboard.plugins.histogram.summary_v2 import histogram_pb

    rng = np.random.default_rng(1)
    for data_ in (rng.normal(size=1000).astype(np.float32), np.full(7, 0.25, np.float32), np.arange(31.0)):
        theirs = tf.make_ndarray(histogram_pb("x", data_).value[0].tensor)
        np.testing.assert_allclose(histogram_buckets(tf.constant(data_)).numpy(), theirs, rtol=1e-12)


def test_sample_respects_the_caps_and_is_seeded():
    assert sample_counts([120, 6, 18, 3], 64, 2048) == [64, 6, 18, 3]
    assert sample_counts([1000, 1000, 5], 64, 50) == [22, 22, 5]  # a common cap under the total
    counts = sample_counts([10] * 8, 64, 5, seed=3)
    assert sum(counts) == 5 and set(counts) == {0, 1}
    assert counts == sample_counts([10] * 8, 64, 5, seed=3)


def test_gradient_accumulation_and_micro_steps(tmp_path):
    """Micro-steps apply no update: the sample waits for the step that does; steps are update counts."""
    model = small_model()
    model.compile(optimizer=HyperAdam(meta_params=random_meta_params(5, 3, seed=7), gradient_accumulation_steps=2),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), jit_compile=False)
    x, y = data(20)
    model.fit(x[:320], y[:320], batch_size=16, epochs=1, shuffle=False, verbose=0,
              callbacks=[HyperAdamMonitor(tmp_path, every_n_steps=EVERY, sample_size=20, per_variable=8)])
    events = read_events(tmp_path)
    assert sorted({step for _, step in events}) == [5, 10]
    assert all(events[("effective_step/overall", s)] > 0 for s in (5, 10))
    assert events[("rho/histogram", 5)][:, 2].sum() == 18 * 5  # caps 5 + 5 + 5 + 3 (6 would be 21 > 20)


def test_mirrored_strategy_fit(tmp_path, mirrored_strategy):
    strategy = mirrored_strategy
    with strategy.scope():
        model = small_model()
        model.compile(optimizer=HyperAdam(meta_params=random_meta_params(5, 3, seed=7), jit_compile=False),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x, y = data(10, 32)
    model.fit(x, y, batch_size=32, epochs=1, shuffle=False, verbose=0,
              callbacks=[HyperAdamMonitor(tmp_path, every_n_steps=EVERY)])
    events = read_events(tmp_path)
    assert sorted({step for _, step in events}) == [5, 10]
    assert np.isfinite(events[("beta/q50", 10)]) and events[("skipped/steps", 10)] == 0


def test_errors_and_state_unchanged(tmp_path):
    x, y = data(2)
    model = small_model()
    model.compile(optimizer=keras.optimizers.Adam(), loss="sparse_categorical_crossentropy")
    with pytest.raises(TypeError, match="HyperAdamMonitor needs a model compiled with a hyperadam_keras.HyperAdam "
                                        "optimizer, got Adam"):
        model.fit(x, y, verbose=0, callbacks=[HyperAdamMonitor(tmp_path)])
    model.compile(optimizer=HyperAdam(), loss="sparse_categorical_crossentropy", steps_per_execution=2)
    with pytest.raises(ValueError, match="steps_per_execution=1"):
        model.fit(x, y, verbose=0, callbacks=[HyperAdamMonitor(tmp_path)])
    for name, value in (("every_n_steps", 0), ("sample_size", 1.5), ("per_variable", True)):
        with pytest.raises(ValueError, match=f"{name} must be an integer >= 1"):
            HyperAdamMonitor(tmp_path, **{name: value})
    # The skipped-step counter is not optimizer state: checkpoints and .keras files hold what they held.
    assert not any("skipped" in v.path for v in model.optimizer.variables)
