"""`HyperAdam` as a Keras optimizer: XLA, non-finite and zero gradients, sparse gradients, the
base-class options (schedules, clipping, EMA, accumulation, loss scaling), fit, slots, memory and
argument validation (low precision and other reliability checks: test_reliability.py). Expected values
come from the float64 NumPy reference or from a second run.

Every optimizer compared with the float64 reference runs the paper's update, `max_relative_step=None` (the
default's relative-step cap has its own reference test, tests/test_safety_options.py)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import numpy_reference as ref
from hyperadam_keras import HyperAdam, optimizer_memory, random_meta_params

TOL = 1e-5
J, H = 5, 3
PARAMS = random_meta_params(J, H, seed=7, scale=1.0)


def small_model(seed=0):
    """20-6-3 MLP, 4 variables of different shapes, deterministic non-zero initial values."""
    model = keras.Sequential([keras.Input((20,)), keras.layers.Dense(6, activation="tanh"),
                              keras.layers.Dense(3)])
    rng = np.random.default_rng(seed)
    for v in model.trainable_variables:
        v.assign(rng.normal(0, 0.3, v.shape).astype(np.float32))
    return model


def gradient_sequence(num_steps, seed=0, shapes=((20, 6), (6,), (6, 3), (3,))):
    rng = np.random.default_rng(seed)
    return [[rng.normal(0, 0.1, s).astype(np.float32) for s in shapes] for _ in range(num_steps)]


def weights_of(variables):
    return ref.flatten([v.numpy() for v in variables])


def reference_run(w0, grad_steps, lrs, weight_decay=0.0, params=PARAMS):
    """Float64 reference trajectory: list of flat weights after every step and the final state."""
    w, state = w0.copy(), ref.zero_state(w0.size, params.num_candidates, params.hidden)
    out = []
    for grads, lr in zip(grad_steps, lrs):
        w, state, _ = ref.reference_step(params.arrays(), w, ref.flatten(grads), state, lr,
                                         weight_decay=weight_decay)
        out.append(w)
    return out, state


def slots_flat(optimizer, variables):
    return ref.flatten_state([{k: s.numpy() for k, s in optimizer.slots(v).items()} for v in variables])


def _applier(opt, variables):
    def apply(grads):
        opt.apply_gradients(zip(grads, variables))
    return apply


# --- XLA -------------------------------------------------------------------------------------------

def test_xla_and_no_xla_agree():
    """Eager without XLA is the baseline; the internal XLA update (jit_compile=True) and
    apply_gradients inside tf.function(jit_compile=True) agree with it and the reference (1e-5)."""
    grads = gradient_sequence(3)
    results = {}
    modes = {"eager": (False, False), "eager_xla_update": (True, False), "tf_function_xla": (True, True)}
    for mode, (internal_xla, outer_xla) in modes.items():
        model = small_model()
        variables = model.trainable_variables
        opt = HyperAdam(max_relative_step=None, learning_rate=0.01, meta_params=PARAMS, jit_compile=internal_xla)
        opt.build(variables)
        apply = _applier(opt, variables)
        if outer_xla:
            apply = tf.function(apply, jit_compile=True)
        for step in grads:
            apply([tf.constant(g) for g in step])
        results[mode] = weights_of(variables)
    w0 = weights_of(small_model().trainable_variables)
    expected, _ = reference_run(w0, grads, [0.01] * 3)
    for mode, w in results.items():
        assert ref.rel_err(w - w0, results["eager"] - w0) < TOL, mode
        assert ref.rel_err(w - w0, expected[-1] - w0) < TOL, mode


def test_model_compile_jit_matches_no_jit():
    """fit with model.compile(jit_compile=True) equals fit without XLA anywhere."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(32, 20)).astype(np.float32)
    y = rng.integers(0, 3, 32)
    out = {}
    for jit in (False, True):
        model = small_model()
        model.compile(optimizer=HyperAdam(max_relative_step=None, learning_rate=0.01, meta_params=PARAMS, jit_compile=jit),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), jit_compile=jit)
        model.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)
        out[jit] = weights_of(model.trainable_variables)
    w0 = weights_of(small_model().trainable_variables)
    assert np.linalg.norm(out[False] - w0) > 1e-3
    assert ref.rel_err(out[True] - w0, out[False] - w0) < TOL


# --- non-finite and zero gradients -------------------------------------------------------------------

@pytest.mark.parametrize("bad_value", [np.nan, np.inf])
@pytest.mark.parametrize("weight_decay", [None, 0.1])
def test_nonfinite_gradient_skips_the_step(bad_value, weight_decay):
    """One NaN/inf entry in ONE variable: weights and all six slots of every variable unchanged,
    the counter advances, and the next finite step is the step the skipped one never was."""
    grads = gradient_sequence(3)
    bad = [g.copy() for g in grads[1]]
    bad[2][1, 1] = bad_value
    model, control = small_model(), small_model()
    opt = HyperAdam(max_relative_step=None, learning_rate=0.01, meta_params=PARAMS, jit_compile=False, weight_decay=weight_decay)
    control_opt = HyperAdam(max_relative_step=None, learning_rate=0.01, meta_params=PARAMS, jit_compile=False, weight_decay=weight_decay)
    opt.apply_gradients(zip([tf.constant(g) for g in grads[0]], model.trainable_variables))
    control_opt.apply_gradients(zip([tf.constant(g) for g in grads[0]], control.trainable_variables))
    before_w = [v.numpy() for v in model.trainable_variables]
    before_s = slots_flat(opt, model.trainable_variables)
    opt.apply_gradients(zip([tf.constant(g) for g in bad], model.trainable_variables))
    for v, w in zip(model.trainable_variables, before_w):
        np.testing.assert_array_equal(v.numpy(), w)
    after_s = slots_flat(opt, model.trainable_variables)
    for name in ref.STATE_NAMES:
        np.testing.assert_array_equal(after_s[name], before_s[name], err_msg=name)
    assert int(opt.iterations) == 2
    opt.apply_gradients(zip([tf.constant(g) for g in grads[2]], model.trainable_variables))
    control_opt.apply_gradients(zip([tf.constant(g) for g in grads[2]], control.trainable_variables))
    np.testing.assert_allclose(weights_of(model.trainable_variables), weights_of(control.trainable_variables),
                               rtol=1e-6, atol=1e-7)


def test_nonfinite_gradient_skipped_inside_compiled_step():
    """The same inside tf.function(jit_compile=True) (the path of a compiled train step)."""
    model = small_model()
    opt = HyperAdam(max_relative_step=None, learning_rate=0.01, meta_params=PARAMS, jit_compile=False)
    apply = tf.function(lambda gs: opt.apply_gradients(zip(gs, model.trainable_variables)), jit_compile=True)
    grads = gradient_sequence(2)
    apply([tf.constant(g) for g in grads[0]])
    before = weights_of(model.trainable_variables)
    m_before = slots_flat(opt, model.trainable_variables)["m"]
    bad = [g.copy() for g in grads[1]]
    bad[0][0, 0] = np.nan
    apply([tf.constant(g) for g in bad])
    np.testing.assert_array_equal(weights_of(model.trainable_variables), before)
    np.testing.assert_array_equal(slots_flat(opt, model.trainable_variables)["m"], m_before)


def test_nonfinite_gradient_propagates_when_not_skipped():
    """skip_nonfinite=False really applies the step (so the skip above is the option's doing)."""
    model = small_model()
    opt = HyperAdam(max_relative_step=None, learning_rate=0.01, meta_params=PARAMS, jit_compile=False, skip_nonfinite=False)
    bad = gradient_sequence(1)[0]
    bad[2][1, 1] = np.nan
    opt.apply_gradients(zip([tf.constant(g) for g in bad], model.trainable_variables))
    assert not np.all(np.isfinite(weights_of(model.trainable_variables)))


def test_zero_gradients_after_steps_follow_reference():
    """Zero gradients after real steps: finite, and the momentum still moves the weights as the
    reference says (ĝ = 0/sqrt(1e-16) = 0 is well defined)."""
    grads = gradient_sequence(2)
    grads.append([np.zeros_like(g) for g in grads[0]])
    model = small_model()
    w0 = weights_of(model.trainable_variables)
    opt = HyperAdam(max_relative_step=None, learning_rate=0.01, meta_params=PARAMS, jit_compile=False)
    for step in grads:
        opt.apply_gradients(zip([tf.constant(g) for g in step], model.trainable_variables))
    expected, _ = reference_run(w0, grads, [0.01] * 3)
    w = weights_of(model.trainable_variables)
    assert np.all(np.isfinite(w))
    assert ref.rel_err(w - w0, expected[-1] - w0) < TOL


# --- sparse gradients ----------------------------------------------------------------------------------

def test_sparse_embedding_gradient_equals_densified():
    """Embedding gradients are tf.IndexedSlices with repeated indices; the result equals the dense
    gradient (densified here with np.add.at, independently of TensorFlow) and the reference."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((6,), dtype="int32"), keras.layers.Embedding(12, 4),
                              keras.layers.Flatten(), keras.layers.Dense(1)])
    ids = np.array([[1, 1, 3, 7, 7, 7], [3, 3, 0, 1, 11, 1]], np.int32)  # repeats, rows 2,4.. unused
    target = np.array([[0.5], [-1.0]], np.float32)
    sparse_model = keras.models.clone_model(model)
    sparse_model.set_weights(model.get_weights())
    w0 = weights_of(model.trainable_variables)
    sparse_opt = HyperAdam(max_relative_step=None, learning_rate=0.01, meta_params=PARAMS, jit_compile=False)
    dense_opt = HyperAdam(max_relative_step=None, learning_rate=0.01, meta_params=PARAMS, jit_compile=False)
    dense_steps = []
    for step in range(3):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean((sparse_model(ids) - target) ** 2)
        grads = tape.gradient(loss, sparse_model.trainable_variables)
        assert isinstance(grads[0], tf.IndexedSlices)
        dense = np.zeros((12, 4), np.float32)
        np.add.at(dense, grads[0].indices.numpy(), grads[0].values.numpy())
        assert len(set(grads[0].indices.numpy().tolist())) < len(grads[0].indices.numpy())
        dense_grads = [dense] + [g.numpy() for g in grads[1:]]
        dense_steps.append(dense_grads)
        sparse_opt.apply_gradients(zip(grads, sparse_model.trainable_variables))
        dense_opt.apply_gradients(zip([tf.constant(g) for g in dense_grads], model.trainable_variables))
        # keep both models at the same weights' gradients: sparse run drives, dense run follows
        np.testing.assert_allclose(weights_of(sparse_model.trainable_variables),
                                   weights_of(model.trainable_variables), rtol=1e-6, atol=1e-7)
    expected, _ = reference_run(w0, dense_steps, [0.01] * 3)
    w = weights_of(sparse_model.trainable_variables)
    assert ref.rel_err(w - w0, expected[-1] - w0) < TOL
    # unused embedding rows move too: HyperAdam's state evolves on zero gradients (densified, not sparse)
    emb_h = sparse_opt.slots(sparse_model.trainable_variables[0])["h"].numpy()
    assert np.abs(emb_h[:, 5]).sum() > 0  # slot (H, vocabulary, width): row 5 of every h


# --- learning rates, clipping, weight decay -------------------------------------------------------------

@pytest.mark.parametrize("kind", ["schedule", "callable"])
def test_learning_rate_schedule_and_callable(kind):
    if kind == "schedule":
        lr = keras.optimizers.schedules.ExponentialDecay(0.02, decay_steps=1, decay_rate=0.5)
        lrs = [0.02, 0.01, 0.005]
    else:
        lr = lambda: 0.007  # noqa: E731
        lrs = [0.007] * 3
    grads = gradient_sequence(3, seed=4)
    model = small_model()
    w0 = weights_of(model.trainable_variables)
    opt = HyperAdam(max_relative_step=None, learning_rate=lr, meta_params=PARAMS, jit_compile=False)
    for step in grads:
        opt.apply_gradients(zip([tf.constant(g) for g in step], model.trainable_variables))
    expected, _ = reference_run(w0, grads, lrs)
    constant, _ = reference_run(w0, grads, [lrs[0]] * 3)
    w = weights_of(model.trainable_variables)
    assert ref.rel_err(w - w0, expected[-1] - w0) < TOL
    if kind == "schedule":
        assert ref.rel_err(w - w0, constant[-1] - w0) > 0.1


def _clip(grads, kind, value):
    if kind == "clipnorm":
        return [g * min(1.0, value / np.linalg.norm(g)) for g in grads]
    if kind == "global_clipnorm":
        norm = np.sqrt(sum(np.sum(g.astype(np.float64) ** 2) for g in grads))
        return [g * min(1.0, value / norm) for g in grads]
    return [np.clip(g, -value, value) for g in grads]


@pytest.mark.parametrize("kind,value", [("clipnorm", 0.05), ("global_clipnorm", 0.1), ("clipvalue", 0.02)])
def test_gradient_clipping(kind, value):
    """Weights and moments follow the reference fed with NumPy-clipped gradients. The moment m
    scales with g (the update is nearly scale-free), so it shows that clipping happened."""
    grads = gradient_sequence(2, seed=5)
    model = small_model()
    w0 = weights_of(model.trainable_variables)
    opt = HyperAdam(max_relative_step=None, learning_rate=0.01, meta_params=PARAMS, jit_compile=False, **{kind: value})
    for step in grads:
        opt.apply_gradients(zip([tf.constant(g) for g in step], model.trainable_variables))
    clipped = [_clip(step, kind, value) for step in grads]
    expected, state = reference_run(w0, clipped, [0.01] * 2)
    _, unclipped_state = reference_run(w0, grads, [0.01] * 2)
    got = slots_flat(opt, model.trainable_variables)
    assert ref.rel_err(weights_of(model.trainable_variables) - w0, expected[-1] - w0) < TOL
    assert ref.rel_err(got["m"], state["m"]) < TOL
    assert ref.rel_err(got["m"], unclipped_state["m"]) > 0.05


def test_weight_decay_is_decoupled_and_inside_the_update():
    """w -= lr (d + λ w): the reference with λ, and clearly not the run without it."""
    grads = gradient_sequence(3, seed=6)
    model = small_model()
    w0 = weights_of(model.trainable_variables)
    opt = HyperAdam(max_relative_step=None, learning_rate=0.01, meta_params=PARAMS, jit_compile=False, weight_decay=0.5)
    for step in grads:
        opt.apply_gradients(zip([tf.constant(g) for g in step], model.trainable_variables))
    expected, _ = reference_run(w0, grads, [0.01] * 3, weight_decay=0.5)
    without, _ = reference_run(w0, grads, [0.01] * 3)
    w = weights_of(model.trainable_variables)
    assert ref.rel_err(w - w0, expected[-1] - w0) < TOL
    assert ref.rel_err(w - w0, without[-1] - w0) > 0.05


# --- EMA, accumulation, loss scaling -------------------------------------------------------------

def test_use_ema_tracks_moving_average():
    grads = gradient_sequence(4, seed=8)
    model, plain = small_model(), small_model()
    opt = HyperAdam(max_relative_step=None, learning_rate=0.01, meta_params=PARAMS, jit_compile=False, use_ema=True, ema_momentum=0.6)
    plain_opt = HyperAdam(max_relative_step=None, learning_rate=0.01, meta_params=PARAMS, jit_compile=False)
    average = None
    for step in grads:
        opt.apply_gradients(zip([tf.constant(g) for g in step], model.trainable_variables))
        plain_opt.apply_gradients(zip([tf.constant(g) for g in step], plain.trainable_variables))
        w = [v.numpy().astype(np.float64) for v in model.trainable_variables]
        # Keras: the first average is the weights themselves, then a = μ a + (1-μ) w
        average = w if average is None else [0.6 * a + 0.4 * x for a, x in zip(average, w)]
    np.testing.assert_allclose(weights_of(model.trainable_variables), weights_of(plain.trainable_variables),
                               rtol=1e-6)
    got = ref.flatten([a.numpy() for a in opt._model_variables_moving_average])
    np.testing.assert_allclose(got, ref.flatten(average), rtol=1e-5, atol=1e-7)
    assert ref.rel_err(got, weights_of(model.trainable_variables)) > 1e-4
    opt.finalize_variable_values(model.trainable_variables)
    np.testing.assert_allclose(weights_of(model.trainable_variables), ref.flatten(average), rtol=1e-5, atol=1e-7)


def test_gradient_accumulation_equals_one_averaged_step():
    grads = gradient_sequence(3, seed=9)
    model, single = small_model(), small_model()
    w0 = weights_of(model.trainable_variables)
    opt = HyperAdam(max_relative_step=None, learning_rate=0.01, meta_params=PARAMS, jit_compile=False, gradient_accumulation_steps=3)
    for i, step in enumerate(grads):
        opt.apply_gradients(zip([tf.constant(g) for g in step], model.trainable_variables))
        if i < 2:
            np.testing.assert_array_equal(weights_of(model.trainable_variables), w0)
    mean = [np.mean([step[k] for step in grads], axis=0) for k in range(4)]
    single_opt = HyperAdam(max_relative_step=None, learning_rate=0.01, meta_params=PARAMS, jit_compile=False)
    single_opt.apply_gradients(zip([tf.constant(g) for g in mean], single.trainable_variables))
    w = weights_of(model.trainable_variables)
    assert np.linalg.norm(w - w0) > 1e-3
    assert ref.rel_err(w - w0, weights_of(single.trainable_variables) - w0) < TOL
    got, want = slots_flat(opt, model.trainable_variables), slots_flat(single_opt, single.trainable_variables)
    for name in ref.STATE_NAMES:
        assert ref.rel_err(got[name], want[name]) < TOL, name


def test_loss_scale_factor_unscales_gradients():
    grads = gradient_sequence(2, seed=10)
    model, plain = small_model(), small_model()
    opt = HyperAdam(max_relative_step=None, learning_rate=0.01, meta_params=PARAMS, jit_compile=False, loss_scale_factor=64.0)
    plain_opt = HyperAdam(max_relative_step=None, learning_rate=0.01, meta_params=PARAMS, jit_compile=False)
    assert float(opt.scale_loss(tf.constant(2.0))) == 128.0
    for step in grads:
        opt.apply_gradients(zip([tf.constant(g * 64.0) for g in step], model.trainable_variables))
        plain_opt.apply_gradients(zip([tf.constant(g) for g in step], plain.trainable_variables))
    got, want = slots_flat(opt, model.trainable_variables), slots_flat(plain_opt, plain.trainable_variables)
    assert ref.rel_err(got["m"], want["m"]) < TOL  # m scales with g: unscaling really happened
    np.testing.assert_allclose(weights_of(model.trainable_variables), weights_of(plain.trainable_variables),
                               rtol=1e-6, atol=1e-7)


# --- fit, slots, memory (mixed precision: test_reliability.py) ------------------------------------------------------------------

def test_fit_lowers_the_loss_with_default_optimizer(mnist):
    x, y = mnist
    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.Input((784,)), keras.layers.Dense(20, activation="sigmoid"),
                              keras.layers.Dense(10)])
    model.compile(optimizer=HyperAdam(max_relative_step=None, jit_compile=False),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), jit_compile=False)
    first = model.evaluate(x[:1000], y[:1000], verbose=0)
    model.fit(x[:2000], y[:2000], batch_size=128, epochs=3, verbose=0)
    last = model.evaluate(x[:1000], y[:1000], verbose=0)
    assert last < 0.5 * first, (first, last)


def test_slots_shapes_dtypes_and_no_meta_params_in_variables():
    model = small_model()
    opt = HyperAdam(max_relative_step=None, meta_params=PARAMS)
    opt.build(model.trainable_variables)
    for v in model.trainable_variables:
        slots = opt.slots(v)
        assert set(slots) == {"h", "c", "m", "v", "beta_hat", "gamma_hat"}
        for name, slot in slots.items():
            assert tuple(slot.shape) == ((H,) if name in ("h", "c") else (J,)) + tuple(v.shape), name
            assert slot.dtype == "float32"
    p = sum(int(np.prod(v.shape)) for v in model.trainable_variables)
    sizes = [int(np.prod(v.shape)) for v in opt.variables]
    # six slots per variable plus scalars (iterations, learning_rate): no meta-parameter anywhere
    assert sum(s for s in sizes if s > 1) == p * (2 * H + 4 * J)
    assert sum(1 for s in sizes if s <= 1) <= 2


def test_optimizer_memory():
    model = small_model()
    p = sum(int(np.prod(v.shape)) for v in model.trainable_variables)
    default = optimizer_memory(model)
    assert default["parameters"] == p
    assert default["bytes_per_parameter"] == 192  # the default bundle: J = H = 8, 4 bytes × (2H + 4J)
    assert default["state_bytes"] == 192 * p and default["adam_state_bytes"] == 8 * p
    opt = HyperAdam(max_relative_step=None, meta_params=PARAMS)
    assert optimizer_memory(model, optimizer=opt)["bytes_per_parameter"] == 4 * (2 * H + 4 * J)
    opt.build(model.trainable_variables)
    built = optimizer_memory(model, optimizer=opt)
    measured = sum(int(np.prod(s.shape)) * 4 for v in model.trainable_variables for s in opt.slots(v).values())
    assert built["state_bytes"] == measured == p * 4 * (2 * H + 4 * J)


# --- the step decay beyond the meta-training horizon (decay_after) ----------------------------------

def apply_steps(opt, variables, grad_steps):
    """Applies every step's gradients in turn; returns the flat weights after the last."""
    for step in grad_steps:
        opt.apply_gradients(zip([tf.constant(g) for g in step], variables))
    return weights_of(variables)


def test_horizon_decay_factor_by_hand():
    from hyperadam_keras.schedules import check_decay_after, horizon_decay_factor

    got = [float(horizon_decay_factor(s, 4)) for s in (1, 2, 4, 9, 16, 100)]
    np.testing.assert_allclose(got, [1.0, 1.0, 1.0, 2 / 3, 0.5, 0.2], rtol=1e-7)
    assert float(horizon_decay_factor(10_000, None)) == 1.0
    assert float(horizon_decay_factor(4, 4)) == 1.0  # exactly: runs within the horizon are unchanged
    assert check_decay_after(None) is None and check_decay_after(100) == 100 and check_decay_after(3.0) == 3
    for bad in (0, -5, 2.5, True, "100", float("inf"), [3]):
        with pytest.raises(ValueError, match="decay_after"):
            check_decay_after(bad)
    with pytest.raises(ValueError, match="decay_after"):
        HyperAdam(max_relative_step=None, meta_params=PARAMS, decay_after=0)


def test_decay_after_follows_the_reference_with_a_decayed_step():
    """α √(T / max(s, T)) at the s-th update: for T = 2, α, α, α√(2/3), α√(1/2), α√(2/5)."""
    grads = gradient_sequence(5, seed=11)
    model = small_model()
    w0 = weights_of(model.trainable_variables)
    opt = HyperAdam(max_relative_step=None, learning_rate=0.01, meta_params=PARAMS, jit_compile=False, decay_after=2)
    w = apply_steps(opt, model.trainable_variables, grads)
    expected, _ = reference_run(w0, grads, [0.01 * np.sqrt(2 / max(s, 2)) for s in range(1, 6)])
    constant, _ = reference_run(w0, grads, [0.01] * 5)
    assert ref.rel_err(w - w0, expected[-1] - w0) < TOL and ref.rel_err(w - w0, constant[-1] - w0) > 0.02


@pytest.mark.parametrize("jit_compile", [False, True])
def test_runs_within_decay_after_are_bit_identical_to_the_constant_step(jit_compile):
    grads = gradient_sequence(4, seed=12)
    runs = {}
    for decay_after in (3, None):
        model = small_model()
        opt = HyperAdam(max_relative_step=None, learning_rate=0.01, meta_params=PARAMS, jit_compile=jit_compile, decay_after=decay_after)
        runs[decay_after] = [apply_steps(opt, model.trainable_variables, [step]) for step in grads]
    for step in range(3):
        np.testing.assert_array_equal(runs[3][step], runs[None][step])
    assert np.abs(runs[3][3] - runs[None][3]).max() > 0  # the 4th update is past T = 3


def test_decay_after_counts_updates_not_accumulation_micro_steps():
    """4 micro-steps with accumulation 2 are 2 updates: the second at α√(1/2) for T = 1, as a plain
    optimizer applying the two averaged gradients."""
    grads = gradient_sequence(4, seed=13)
    model, single = small_model(), small_model()
    opt = HyperAdam(max_relative_step=None, learning_rate=0.01, meta_params=PARAMS, jit_compile=False, decay_after=1,
                    gradient_accumulation_steps=2)
    single_opt = HyperAdam(max_relative_step=None, learning_rate=0.01, meta_params=PARAMS, jit_compile=False, decay_after=1)
    mean = [[np.mean([s[k] for s in pair], axis=0) for k in range(4)] for pair in (grads[:2], grads[2:])]
    w = apply_steps(opt, model.trainable_variables, grads)
    want = apply_steps(single_opt, single.trainable_variables, mean)
    w0 = weights_of(small_model().trainable_variables)
    assert ref.rel_err(w - w0, want - w0) < TOL
    # counting micro-steps instead would decay the second update by √(1/4)
    expected, _ = reference_run(w0, mean, [0.01, 0.01 * np.sqrt(1 / 2)])
    wrong, _ = reference_run(w0, mean, [0.01, 0.01 * np.sqrt(1 / 4)])
    assert ref.rel_err(w - w0, expected[-1] - w0) < TOL
    assert ref.rel_err(w - w0, wrong[-1] - w0) > 0.01


# --- argument validation --------------------------------------------------------------------------------

@pytest.mark.parametrize("argument,value,message", [
    ("learning_rate", -1.0, "learning_rate must be a finite number >= 0, a LearningRateSchedule or a callable, got -1.0"),
    ("learning_rate", -1, "learning_rate must be a finite number >= 0, a LearningRateSchedule or a callable, got -1"),
    ("learning_rate", float("nan"), "learning_rate must be a finite number >= 0, .* got nan"),
    ("learning_rate", float("inf"), "learning_rate must be .* got inf"),
    ("learning_rate", "0.01", "learning_rate must be .* got '0.01'"),
    ("learning_rate", None, "learning_rate must be .* got None"),
    ("learning_rate", True, "learning_rate must be .* got True"),
    ("epsilon", -1e-8, "epsilon must be a finite number >= 0, got -1e-08"),
    ("epsilon", float("nan"), "epsilon must be a finite number >= 0, got nan"),
    ("epsilon", float("inf"), "epsilon must be a finite number >= 0, got inf"),
    ("epsilon", "1e-8", "epsilon must be a finite number >= 0, got '1e-8'"),
    ("decay_after", 0, "decay_after must be None or an integer number of steps >= 1, got 0"),
    ("skip_nonfinite", "yes", "skip_nonfinite must be True or False, got 'yes'"),
    ("skip_nonfinite", 1, "skip_nonfinite must be True or False, got 1"),
    ("jit_compile", None, "jit_compile must be True or False, got None"),
    ("meta_params", 42, "meta_params must be None, a bundle path, a MetaParams or a dict, got int 42"),
    ("meta_params", "/nonexistent/bundle", "meta-parameter bundle not found: /nonexistent/bundle"),
])
def test_bad_arguments_are_a_value_error_naming_argument_and_value(argument, value, message):
    kwargs = {"meta_params": PARAMS, argument: value}
    with pytest.raises(ValueError, match=message):
        HyperAdam(max_relative_step=None, **kwargs)


def test_valid_numbers_of_any_type_are_accepted_as_floats():
    assert float(HyperAdam(max_relative_step=None, learning_rate=1, meta_params=PARAMS).learning_rate) == 1.0
    assert float(HyperAdam(max_relative_step=None, learning_rate=np.float32(0.002), meta_params=PARAMS).learning_rate) == np.float32(0.002)
    assert float(HyperAdam(max_relative_step=None, learning_rate=0, meta_params=PARAMS).learning_rate) == 0.0
    assert HyperAdam(max_relative_step=None, epsilon=0, meta_params=PARAMS, skip_nonfinite=np.bool_(False)).epsilon == 0.0


def test_setting_a_bad_learning_rate_later_is_refused():
    opt = HyperAdam(max_relative_step=None, meta_params=PARAMS)
    for bad in (-0.5, float("nan")):
        with pytest.raises(ValueError, match=f"learning_rate must be .* got {bad}"):
            opt.learning_rate = bad
    opt.learning_rate = 0.25  # as ReduceLROnPlateau does
    assert float(opt.learning_rate) == 0.25


class TurnsBad(keras.optimizers.schedules.LearningRateSchedule):
    """0.01 for the first `good` iterations, then `bad`."""

    def __init__(self, good, bad):
        self.good, self.bad = good, bad

    def __call__(self, step):
        return tf.where(step >= self.good, tf.constant(self.bad, tf.float32), 0.01)

    def get_config(self):
        return {"good": self.good, "bad": self.bad}


@pytest.mark.parametrize("bad", [-1.0, np.nan, np.inf])
@pytest.mark.parametrize("mode", ["eager", "tf_function", "xla"])
def test_learning_rate_turning_bad_at_run_time_skips_the_step_and_warns_once(bad, mode, capfd):
    """Steps 3..6 of a schedule that turns negative or non-finite leave weights and every slot as they
    were after step 2 (as a non-finite gradient does), and say so once. Inside XLA TensorFlow cannot
    print: the steps are skipped all the same."""
    model = small_model()
    variables = model.trainable_variables
    opt = HyperAdam(max_relative_step=None, learning_rate=TurnsBad(2, bad), meta_params=PARAMS, jit_compile=False, weight_decay=0.1)
    apply = _applier(opt, variables)
    if mode != "eager":
        apply = tf.function(apply, jit_compile=mode == "xla")
    grads = gradient_sequence(6, seed=14)
    capfd.readouterr()
    for step in grads[:2]:
        apply([tf.constant(g) for g in step])
    after_two, slots_after_two = weights_of(variables), slots_flat(opt, variables)
    for step in grads[2:]:
        apply([tf.constant(g) for g in step])
    np.testing.assert_array_equal(weights_of(variables), after_two)
    for name, value in slots_flat(opt, variables).items():
        np.testing.assert_array_equal(value, slots_after_two[name], err_msg=name)
    assert int(opt.iterations) == 6
    err = capfd.readouterr().err
    if mode == "xla":
        assert "HyperAdam" not in err
    else:
        assert err.count("HyperAdam: the learning rate must be finite and >= 0") == 1, err
        assert f"but is {'-1' if bad == -1.0 else str(bad)} at update 3" in err, err


def test_docstring_has_the_base_class_arguments():
    assert "{{" not in HyperAdam.__doc__
    assert "global_clipnorm" in HyperAdam.__doc__ and "gradient_accumulation_steps" in HyperAdam.__doc__
