"""The optimizer and the equations against the independent float64 NumPy reference
(`tests/numpy_reference.py`), and J = 1 HyperAdam against `keras.optimizers.Adam`.

Every optimizer compared with the float64 reference runs the paper's update, `max_relative_step=None` (the
default's relative-step cap has its own reference test, tests/test_safety_options.py)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import numpy_reference as ref
from hyperadam_keras import HyperAdam, MetaParams, equations, random_meta_params
from hyperadam_keras.meta_params import expected_shapes

TOL = 1e-5


def make_model(seed=0, hidden=6):
    """784-6-10 MLP: 4 variables of 4 different shapes (kernels and biases)."""
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((784,)), keras.layers.Dense(hidden, activation="tanh"),
                              keras.layers.Dense(10)])
    for v in model.trainable_variables:  # non-zero biases, so every variable has a real gradient
        v.assign(np.random.default_rng(seed).normal(0, 0.1, v.shape).astype(np.float32))
    return model


def gradients(model, x, y):
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    with tf.GradientTape() as tape:
        loss = loss_fn(y, model(x))
    return [g.numpy() for g in tape.gradient(loss, model.trainable_variables)]


def optimizer_state(optimizer, variables):
    """The optimizer's slots as one [p, K] float64 array per state name (variables concatenated)."""
    return ref.flatten_state([{k: s.numpy() for k, s in optimizer.slots(v).items()} for v in variables])


@pytest.mark.parametrize("num_candidates,hidden,scale,weight_decay,normalization", [
    (5, 3, 1.0, 0.0, "norm"),      # J != H, so a transposed shape cannot pass; strongly non-linear meta-params
    (20, 20, 0.3, 0.05, "norm"),   # the paper's size, with decoupled weight decay
    (5, 3, 1.0, 0.0, "rms"),       # the feature-normalization variant, XLA-free
    (20, 20, 0.3, 0.0, "rms"),     # ... and XLA-compiled
    (5, 3, 1.0, 0.0, "rms-clip"),  # the clipped variant (the test checks that the clip binds), XLA-free
    (20, 20, 0.3, 0.0, "rms-clip"),  # ... and XLA-compiled
])
def test_optimizer_matches_numpy_reference_over_steps(mnist, num_candidates, hidden, scale, weight_decay,
                                                      normalization):
    """Six steps on a 4-variable model, gradients of real minibatches at the optimizer's own weights:
    the weights' displacement and all six state arrays match the float64 reference (which keeps its
    own state and weights), so the global norms over ALL variables are checked too."""
    x, y = mnist
    params = random_meta_params(num_candidates, hidden, seed=3, scale=scale).with_feature_normalization(normalization)
    model = make_model()
    variables = model.trainable_variables
    lr = 0.01
    # The (J, H) = (20, 20) case runs the default XLA-compiled update, the other one plain TF ops.
    optimizer = HyperAdam(max_relative_step=None, learning_rate=lr, meta_params=params, weight_decay=weight_decay or None,
                          jit_compile=num_candidates == 20)
    w0 = ref.flatten([v.numpy() for v in variables])
    w_ref = w0.copy()
    state = ref.zero_state(w0.size, num_candidates, hidden)
    unclipped = ref.zero_state(w0.size, num_candidates, hidden)
    for step in range(6):
        grads = gradients(model, x[64 * step:64 * (step + 1)], y[64 * step:64 * (step + 1)])
        optimizer.apply_gradients(zip([tf.constant(g) for g in grads], variables))
        if normalization == "rms-clip":  # the same step without the clip, from the same state
            _, unclipped, _ = ref.reference_step(params.arrays(), w_ref, ref.flatten(grads), state, lr,
                                                 feature_normalization="rms")
        w_ref, state, _ = ref.reference_step(params.arrays(), w_ref, ref.flatten(grads), state, lr,
                                             weight_decay=weight_decay, feature_normalization=normalization)
        w_opt = ref.flatten([v.numpy() for v in variables])
        assert ref.rel_err(w_opt - w0, w_ref - w0) < TOL, f"step {step}: weights"
        got = optimizer_state(optimizer, variables)
        # All six slots at 1e-5: this needs 1 - γ computed as σ(-z) (with γ ≈ 0.999, the float32
        # difference 1 - σ(z) keeps ~4 digits and v, γ̂ were off by 3e-5, the weights by 2.5e-5).
        for name in ref.STATE_NAMES:
            assert ref.rel_err(got[name], state[name]) < TOL, f"step {step}: slot {name}"
    # The check has teeth: per-variable norms (instead of global ones) would give another update.
    assert np.linalg.norm(w_ref - w0) > 0
    if normalization == "rms-clip":  # some features exceeded the bound, so the clip was tested
        assert ref.rel_err(unclipped["h"], state["h"]) > 100 * TOL


def test_per_variable_norms_would_differ(mnist):
    """Guards the test above: the reference applied variable by variable (local norms) differs
    from the global-norm result by far more than the tolerance, so global norms are really tested."""
    x, y = mnist
    params = random_meta_params(5, 3, seed=3, scale=1.0)
    model = make_model()
    grads = gradients(model, x[:64], y[:64])
    w = [v.numpy() for v in model.trainable_variables]
    glob, _, _ = ref.reference_step(params.arrays(), ref.flatten(w), ref.flatten(grads),
                                    ref.zero_state(sum(g.size for g in grads), 5, 3), 0.01)
    local = ref.flatten([ref.reference_step(params.arrays(), wi, gi, ref.zero_state(gi.size, 5, 3), 0.01)[0]
                         for wi, gi in zip(w, grads)])
    w0 = ref.flatten(w)
    assert ref.rel_err(local - w0, glob - w0) > 100 * TOL


def test_rms_normalization_makes_the_update_independent_of_the_model_size():
    """Hand-derivable: two copies of a vector with copied gradients have twice the squared norms but the
    same root mean squares, so with "rms" each copy takes exactly the step the single vector takes,
    while with "norm" (the paper: ĝ shrinks by √2) the step changes (random kernels make ĝ matter)."""
    rng = np.random.default_rng(2)
    w0, target = rng.normal(size=50).astype(np.float32), rng.normal(size=50).astype(np.float32)

    def final_weights(normalization: str, copies: int) -> np.ndarray:
        params = random_meta_params(4, 3, seed=7, scale=1.0).with_feature_normalization(normalization)
        variables = [tf.Variable(w0) for _ in range(copies)]
        optimizer = HyperAdam(max_relative_step=None, learning_rate=0.01, meta_params=params, jit_compile=False)
        for _ in range(5):
            optimizer.apply_gradients([(v - target, v) for v in variables])
        return variables[0].numpy()

    np.testing.assert_allclose(final_weights("rms", 2), final_weights("rms", 1), rtol=1e-6, atol=1e-7)
    assert np.abs(final_weights("norm", 2) - final_weights("norm", 1)).max() > 1e-4


def test_rms_clip_bounds_an_outlier_feature_and_leaves_the_rest():
    """Hand-derivable: g = (1000, 1 × 100) has RMS sqrt((10⁶ + 100) / 101) ≈ 99.55, so the outlier's
    ĝ ≈ 10.05 is clipped to 10 and every other ĝ = 1 / RMS is left as it is; likewise a moment column."""
    g = np.array([1000.0] + [1.0] * 100, np.float32)
    m = np.stack([g, -g])  # [J, n]: the two candidate moments, coordinates last
    rms = np.sqrt((1e6 + 100) / 101)
    for normalization, first in (("rms", 1000 / rms), ("rms-clip", 10.0)):
        g_sq, col_sq = equations.feature_sq_scales([tf.constant(g)], [tf.constant(m)], normalization)
        g_hat, m_prime = equations.normalized_features(tf.constant(g), tf.constant(m), g_sq, col_sq,
                                                       equations.feature_clip(normalization))
        np.testing.assert_allclose(g_hat.numpy(), [first] + [1 / rms] * 100, rtol=1e-5)
        np.testing.assert_allclose(m_prime.numpy(), np.stack([g_hat.numpy(), -g_hat.numpy()]), rtol=1e-5)
    assert equations.feature_clip("rms") is None is equations.feature_clip("norm")


def test_feature_sq_scales_rejects_unknown_normalization():
    with pytest.raises(ValueError, match="feature_normalization must be one of"):
        equations.feature_sq_scales([tf.ones(3)], [tf.zeros((3, 2))], "l1")


def test_equations_direction_matches_reference():
    """`equations.hyperadam_direction` on one flat vector with a random non-zero state (so the LSTM's
    recurrent rows, c_{t-1} and the moment normalization all matter) against the reference (whose state
    is [p, K], one row per coordinate; `equations` keeps the transpose)."""
    J, H, p = 4, 7, 300
    params = random_meta_params(J, H, seed=11, scale=1.0)
    rng = np.random.default_rng(5)
    g = rng.normal(0, 1e-2, p).astype(np.float32)
    st = {"h": rng.uniform(-0.9, 0.9, (p, H)), "c": rng.normal(0, 1, (p, H)),
          "m": rng.normal(0, 1e-2, (p, J)), "v": rng.uniform(0, 1e-3, (p, J)),
          "beta_hat": rng.uniform(0.1, 1, (p, J)), "gamma_hat": rng.uniform(0.01, 1, (p, J))}
    st = {k: v.astype(np.float32) for k, v in st.items()}
    direction, new = equations.hyperadam_direction(
        equations.MetaWeights(*(tf.constant(a) for a in params.weights())), tf.constant(g),
        equations.CoordinateState(*(tf.constant(st[k].T) for k in ref.STATE_NAMES)),
        equations.gradient_sq_norm([tf.constant(g)]), equations.moment_column_sq_norms([tf.constant(st["m"].T)]),
        1e-24)
    _, expected, expected_direction = ref.reference_step(params.arrays(), np.zeros(p), g, st, 1.0)
    assert ref.rel_err(direction.numpy(), expected_direction) < TOL
    for name, value in zip(ref.STATE_NAMES, new):
        assert ref.rel_err(value.numpy().T, expected[name]) < TOL, name


def test_zero_gradient_from_fresh_state_is_zero_update():
    """g = 0 on a fresh state: ĝ = 0, m = v = 0, so every candidate is 0/ε = 0 and d = 0, no NaN,
    also with random meta-parameters whose decays differ per coordinate."""
    params = random_meta_params(5, 3, seed=1, scale=1.0)
    var = keras.Variable(np.linspace(-1, 1, 12).reshape(3, 4).astype(np.float32))
    optimizer = HyperAdam(max_relative_step=None, meta_params=params, jit_compile=False)
    for _ in range(2):
        optimizer.apply_gradients([(tf.zeros((3, 4)), var)])
    np.testing.assert_array_equal(var.numpy(), np.linspace(-1, 1, 12).reshape(3, 4).astype(np.float32))
    for name, slot in optimizer.slots(var).items():
        assert np.all(np.isfinite(slot.numpy())), name
    np.testing.assert_array_equal(optimizer.slots(var)["m"].numpy(), 0.0)
    _, _, d = ref.reference_step(params.arrays(), np.zeros(12), np.zeros(12), ref.zero_state(12, 5, 3), 0.1)
    np.testing.assert_array_equal(d, 0.0)


def test_saturated_decay_gives_zero_candidate_not_nan():
    """A decay rate σ(200) == 1.0 in float32 gives β̂ = 0 and m = 0: the documented 0/0 -> 0."""
    arrays = {k: np.zeros(s, np.float32) for k, s in expected_shapes(2, 2).items()}
    arrays["adam_cell/beta_bias"] = np.array([200.0, 2.0], np.float32)  # σ(200) == 1, σ(-200) == 0
    arrays["adam_cell/gamma_bias"] = np.array([3.0, 3.0], np.float32)
    arrays["weight_cell/bias"] = np.array([1.0, 1.0], np.float32)
    params = MetaParams.from_arrays(arrays)
    var = keras.Variable(np.zeros(5, np.float32))
    g = np.array([1.0, -2.0, 0.5, 0.0, 3.0], np.float32)
    optimizer = HyperAdam(max_relative_step=None, learning_rate=0.1, meta_params=params, jit_compile=False)
    optimizer.apply_gradients([(tf.constant(g), var)])
    w, _, _ = ref.reference_step(params.arrays(), np.zeros(5), g, ref.zero_state(5, 2, 2), 0.1)
    assert np.all(np.isfinite(var.numpy()))
    np.testing.assert_array_equal(optimizer.slots(var)["beta_hat"].numpy()[0], 0.0)  # candidate 0
    # Only candidate 1 (plain bias-corrected Adam: m̂ = sign(g) at step 1) moves the weights.
    np.testing.assert_allclose(var.numpy(), -0.1 * np.sign(g), rtol=1e-5)
    np.testing.assert_allclose(var.numpy(), w, rtol=1e-5)


def _logit(p):
    return float(np.log(p) - np.log1p(-p))


def test_single_candidate_with_fixed_decays_is_keras_adam(mnist):
    """J = 1, zero kernels, β = σ(logit 0.9), γ = σ(logit 0.999), ρ = ELU(1) = 1: HyperAdam is Adam.

    Epsilon placement: Keras Adam computes w -= lr·sqrt(1-β2^t)/(1-β1^t) · m / (sqrt(v) + ε_k), i.e.
    m̂ / (sqrt(v̂) + ε_k/sqrt(1-β2^t)), while HyperAdam uses m̂ / (sqrt(v̂) + ε). The two agree exactly
    only for ε = ε_k = 0, which would make 0/0 on coordinates whose gradient is always 0 (MNIST border
    pixels). So both use a negligible 1e-24: for every coordinate with a non-zero gradient sqrt(v̂) is
    many orders of magnitude larger, and zero-gradient coordinates give 0 in both.
    """
    x, y = mnist
    J, H = 1, 3
    arrays = {k: np.zeros(s, np.float32) for k, s in expected_shapes(J, H).items()}
    arrays["adam_cell/beta_bias"][:] = _logit(0.9)
    arrays["adam_cell/gamma_bias"][:] = _logit(0.999)
    arrays["weight_cell/bias"][:] = 1.0
    params = MetaParams.from_arrays(arrays)
    lr = 0.003
    hyper_model, adam_model = make_model(), make_model()
    hyper = HyperAdam(max_relative_step=None, learning_rate=lr, meta_params=params, epsilon=1e-24, jit_compile=False)
    adam = keras.optimizers.Adam(learning_rate=lr, beta_1=0.9, beta_2=0.999, epsilon=1e-24)
    w0 = ref.flatten([v.numpy() for v in adam_model.trainable_variables])
    for step in range(6):
        batch = slice(64 * step, 64 * (step + 1))
        for model, opt in ((hyper_model, hyper), (adam_model, adam)):
            grads = gradients(model, x[batch], y[batch])
            opt.apply_gradients(zip([tf.constant(g) for g in grads], model.trainable_variables))
        w_h = ref.flatten([v.numpy() for v in hyper_model.trainable_variables])
        w_a = ref.flatten([v.numpy() for v in adam_model.trainable_variables])
        assert ref.rel_err(w_h - w0, w_a - w0) < TOL, f"step {step}"
    # Not trivially equal: the displacement is large compared with the tolerance.
    assert np.linalg.norm(w_a - w0) > 1e-3
    # And a different β (0.8) is clearly distinguishable, so the comparison has teeth.
    arrays["adam_cell/beta_bias"][:] = _logit(0.8)
    other = HyperAdam(max_relative_step=None, learning_rate=lr, meta_params=MetaParams.from_arrays(arrays), jit_compile=False)
    probe_a, probe_b = make_model(), make_model()
    for model, opt in ((probe_a, other), (probe_b, HyperAdam(max_relative_step=None, learning_rate=lr, meta_params=params, jit_compile=False))):
        for step in range(3):
            batch = slice(64 * step, 64 * (step + 1))
            grads = gradients(model, x[batch], y[batch])
            opt.apply_gradients(zip([tf.constant(g) for g in grads], model.trainable_variables))
    wa = ref.flatten([v.numpy() for v in probe_a.trainable_variables])
    wb = ref.flatten([v.numpy() for v in probe_b.trainable_variables])
    assert ref.rel_err(wa - w0, wb - w0) > 100 * TOL
