"""The two step-safety options of `HyperAdam`, against the float64 NumPy reference and by hand:
`warmup_steps` (α · min(1, s / W)) and `max_relative_step` (each tensor's step capped at τ of its scale)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import numpy_reference as ref
from hyperadam_keras import HyperAdam, random_meta_params
from hyperadam_keras.schedules import step_size_factor, warmup_factor

TOL = 1e-5
PARAMS = random_meta_params(5, 3, seed=7, scale=1.0)
SHAPES = ((20, 6), (6,), (6, 3), (3,))


def variables(seed=0, scale=0.3, zero_biases=False):
    rng = np.random.default_rng(seed)
    out = []
    for shape in SHAPES:
        value = rng.normal(0, scale, shape).astype(np.float32)
        if zero_biases and len(shape) == 1:
            value[:] = 0
        out.append(tf.Variable(value))
    return out


def gradients(steps, seed=1, scale=0.1):
    rng = np.random.default_rng(seed)
    return [[rng.normal(0, scale, s).astype(np.float32) for s in SHAPES] for _ in range(steps)]


def run(optimizer, variables_, grad_steps):
    for step in grad_steps:
        optimizer.apply_gradients(zip([tf.constant(g) for g in step], variables_))
    return [v.numpy().astype(np.float64) for v in variables_]


def reference_capped_run(initial, grad_steps, lr, tau):
    """Float64: the reference direction of all coordinates, then each tensor's step Δ = α d shrunk to
    RMS(Δ) ≤ τ · max(RMS(w), 0.01), written here apart from `equations.cap_relative_step`."""
    sizes = [int(np.prod(s)) for s in SHAPES]
    w = ref.flatten(initial)
    state = ref.zero_state(w.size, PARAMS.num_candidates, PARAMS.hidden)
    for step in grad_steps:
        _, state, direction = ref.reference_step(PARAMS.arrays(), w, ref.flatten(step), state, lr)
        new, start = [], 0
        for size in sizes:
            delta, weights = lr * direction[start:start + size], w[start:start + size]
            bound = tau * max(np.sqrt(np.mean(weights ** 2)), 0.01)
            rms = np.sqrt(np.mean(delta ** 2))
            new.append(weights - (delta * bound / rms if rms > bound else delta))
            start += size
        w = np.concatenate(new)
    return w


def test_warmup_factor_by_hand():
    assert [float(warmup_factor(s, 4)) for s in (1, 2, 3, 4, 5, 100)] == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    assert float(warmup_factor(1, None)) == 1.0
    # with the decay beyond T = 2: min(1, s/4) · √(2 / max(s, 2))
    got = [float(step_size_factor(s, 2, 4)) for s in (1, 2, 4, 8)]
    np.testing.assert_allclose(got, [0.25, 0.5, np.sqrt(0.5), np.sqrt(0.25)], rtol=1e-7)


@pytest.mark.parametrize("jit_compile", [False, True])
def test_warmup_follows_the_reference_with_a_ramped_step(jit_compile):
    grads = gradients(5)
    initial = [v.numpy() for v in variables()]
    got = run(HyperAdam(learning_rate=0.01, meta_params=PARAMS, decay_after=None, warmup_steps=4,
                        max_relative_step=None, jit_compile=jit_compile), variables(), grads)
    w, state = ref.flatten(initial), ref.zero_state(sum(g.size for g in grads[0]), 5, 3)
    for s, step in enumerate(grads, start=1):
        w, state, _ = ref.reference_step(PARAMS.arrays(), w, ref.flatten(step), state, 0.01 * min(1, s / 4))
    w0 = ref.flatten(initial)
    assert ref.rel_err(ref.flatten(got) - w0, w - w0) < TOL


@pytest.mark.parametrize("jit_compile", [False, True])
def test_relative_step_cap_follows_the_reference(jit_compile):
    """A large step (α = 0.05 on weights of RMS 0.3, zero biases: the floor) where the cap binds."""
    grads = gradients(4)
    initial = [v.numpy() for v in variables(zero_biases=True)]
    got = run(HyperAdam(learning_rate=0.05, meta_params=PARAMS, decay_after=None, max_relative_step=0.02,
                        jit_compile=jit_compile), variables(zero_biases=True), grads)
    want = reference_capped_run(initial, grads, 0.05, 0.02)
    uncapped = reference_capped_run(initial, grads, 0.05, 1e9)
    w0 = ref.flatten(initial)
    assert ref.rel_err(ref.flatten(got) - w0, want - w0) < TOL
    assert ref.rel_err(want - w0, uncapped - w0) > 0.1  # the cap did bind


@pytest.mark.parametrize("jit_compile", [False, True])
def test_a_cap_that_does_not_bind_leaves_the_step_bit_identical(jit_compile):
    grads = gradients(3)
    capped = run(HyperAdam(learning_rate=1e-4, meta_params=PARAMS, max_relative_step=10.0,
                           jit_compile=jit_compile), variables(), grads)
    plain = run(HyperAdam(learning_rate=1e-4, meta_params=PARAMS, max_relative_step=None, jit_compile=jit_compile),
                variables(), grads)
    for a, b in zip(capped, plain):
        np.testing.assert_array_equal(a, b)


def test_no_step_moves_a_tensor_by_more_than_the_cap_in_fit():
    """In `fit` with a huge α: every update of every tensor stays within τ · max(RMS(w), 0.01)."""
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(64, 20)).astype(np.float32), rng.integers(0, 3, 64)
    model = keras.Sequential([keras.Input((20,)), keras.layers.Dense(6, activation="tanh"), keras.layers.Dense(3)])
    tau = 0.05
    model.compile(optimizer=HyperAdam(learning_rate=1.0, meta_params=PARAMS, max_relative_step=tau),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    for _ in range(5):
        before = [v.numpy().astype(np.float64) for v in model.trainable_variables]
        model.fit(x, y, batch_size=64, epochs=1, verbose=0)
        for b, v in zip(before, model.trainable_variables):
            step = np.sqrt(np.mean((v.numpy() - b) ** 2))
            assert 0 < step <= tau * max(np.sqrt(np.mean(b ** 2)), 0.01) * (1 + 1e-5)


@pytest.mark.parametrize("argument,value", [
    ("warmup_steps", 0), ("warmup_steps", -3), ("warmup_steps", 2.5), ("warmup_steps", "10"), ("warmup_steps", True),
    ("max_relative_step", 0), ("max_relative_step", -0.1), ("max_relative_step", float("nan")),
    ("max_relative_step", float("inf")), ("max_relative_step", "0.1"),
])
def test_bad_values_are_a_value_error_naming_the_argument(argument, value):
    with pytest.raises(ValueError, match=f"{argument} must be None or .*got {value!r}"):
        HyperAdam(meta_params=PARAMS, **{argument: value})


def test_options_round_trip_through_the_config():
    optimizer = HyperAdam(meta_params=PARAMS, warmup_steps=50, max_relative_step=0.1)
    config = optimizer.get_config()
    assert config["warmup_steps"] == 50 and config["max_relative_step"] == 0.1
    again = HyperAdam.from_config(config)
    assert again.warmup_steps == 50 and again.max_relative_step == 0.1


def test_a_config_of_an_earlier_version_loads_without_the_options():
    """A config that predates the two options (an earlier `.keras` file) continues uncapped, as it was
    saved, not with today's default cap."""
    config = HyperAdam(meta_params=PARAMS).get_config()
    assert config["max_relative_step"] == 0.03  # today's default
    for name in ("warmup_steps", "max_relative_step"):
        del config[name]
    old = HyperAdam.from_config(config)
    assert old.max_relative_step is None and old.warmup_steps is None


# --- candidate_clip: each candidate m̂_j clipped to ±κ ------------------------------------------------


@pytest.mark.parametrize("jit_compile", [False, True])
def test_candidate_clip_follows_the_reference(jit_compile):
    """κ = 0.5 binds from the first step (every m̂ is ±1 there); 5 steps against the float64 reference."""
    grads = gradients(5)
    initial = [v.numpy() for v in variables()]
    got = run(HyperAdam(learning_rate=0.01, meta_params=PARAMS, decay_after=None, max_relative_step=None,
                        candidate_clip=0.5, jit_compile=jit_compile), variables(), grads)
    w0 = ref.flatten(initial)
    want = {}
    for kappa in (0.5, None):
        w, state = w0, ref.zero_state(w0.size, 5, 3)
        for step in grads:
            w, state, _ = ref.reference_step(PARAMS.arrays(), w, ref.flatten(step), state, 0.01, candidate_clip=kappa)
        want[kappa] = w
    assert ref.rel_err(ref.flatten(got) - w0, want[0.5] - w0) < TOL
    assert ref.rel_err(want[0.5] - w0, want[None] - w0) > 0.1  # the clip did bind


def _fading_gradient_steps(kappa, steps=150):
    """J = 1, fixed β = 0.99 > √γ (γ = 0.9), ρ = 1; the gradient is 1 at the first step, then 0.
    Returns each step's |Δw| / α."""
    from hyperadam_keras import adam_ensemble
    params = adam_ensemble(1, 2, beta_range=(0.99, 0.99), gamma=0.9, weight_sum=1.0)
    variable = tf.Variable([0.0])
    optimizer = HyperAdam(learning_rate=0.01, meta_params=params, decay_after=None, max_relative_step=None,
                          candidate_clip=kappa)
    moved = []
    for s in range(steps):
        before = float(variable.numpy()[0])
        optimizer.apply_gradients([(tf.constant([1.0 if s == 0 else 0.0]), variable)])
        moved.append(abs(float(variable.numpy()[0]) - before) / 0.01)
    return np.array(moved)


def test_candidate_clip_bounds_the_candidate_that_grows_where_the_gradient_fades():
    """By hand: after the gradient 1 and k zeros, m̂ = (0.01·0.99^k / (1 − 0.99^(k+1))) /
    √(0.1·0.9^k / (1 − 0.9^(k+1))), which grows as (0.99/√0.9)^k: β² > γ, a learned decay's hazard."""
    k = np.arange(150)
    m_hat = (0.01 * 0.99 ** k / (1 - 0.99 ** (k + 1))) / np.sqrt(0.1 * 0.9 ** k / (1 - 0.9 ** (k + 1)))
    assert m_hat[0] == pytest.approx(1.0) and m_hat[-1] > 5.0
    np.testing.assert_allclose(_fading_gradient_steps(None), m_hat, rtol=1e-4)
    np.testing.assert_allclose(_fading_gradient_steps(2.0), np.minimum(m_hat, 2.0), rtol=1e-4)


@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), float("inf"), "2", True])
def test_candidate_clip_rejects_what_is_not_a_positive_number(bad):
    with pytest.raises(ValueError, match=r"candidate_clip must be None or a finite number > 0"):
        HyperAdam(candidate_clip=bad)


def test_candidate_clip_is_in_the_config_and_absent_means_unclipped():
    optimizer = HyperAdam(meta_params=PARAMS, candidate_clip=5.0)
    config = optimizer.get_config()
    assert config["candidate_clip"] == 5.0
    assert HyperAdam.from_config(config).candidate_clip == 5.0
    del config["candidate_clip"]  # a config written before the option
    assert HyperAdam.from_config(config).candidate_clip is None and HyperAdam().candidate_clip is None
