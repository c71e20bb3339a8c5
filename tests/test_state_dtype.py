"""`state_dtype="bfloat16"`: the state in half the memory, rounded stochastically.

The expectations are independent of the TF code: bfloat16's two neighbours of a float32 are computed on
its bits with NumPy, an EMA's float64 value by hand, and the float32 optimizer's own step."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import numpy_reference as ref
from hyperadam_keras import HyperAdam, optimizer_memory, random_meta_params
from hyperadam_keras.update import stochastic_round_to_bfloat16

PARAMS = random_meta_params(4, 3, seed=5, scale=1.0)


def bfloat16_neighbours(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The bfloat16 values (as float64) just below and just above |x| in magnitude, by x's float32 bits."""
    bits = np.asarray(x, np.float32).view(np.uint32)
    toward_zero = (bits & np.uint32(0xFFFF0000)).view(np.float32).astype(np.float64)
    away = ((bits & np.uint32(0xFFFF0000)) + np.uint32(0x10000)).view(np.float32).astype(np.float64)
    return toward_zero, away


def as_float64(tensor) -> np.ndarray:
    return tf.cast(tensor, tf.float64).numpy()


def test_each_value_goes_to_one_of_its_two_neighbours_unbiased():
    rng = np.random.default_rng(0)
    x = (rng.normal(size=4096) * 10.0 ** rng.uniform(-6, 3, 4096)).astype(np.float32)
    low, high = bfloat16_neighbours(x)
    rounded = np.stack([as_float64(stochastic_round_to_bfloat16(tf.constant(x), tf.constant([step, 3])))
                        for step in range(400)])
    assert np.all((rounded == low) | (rounded == high))
    # P(away from zero) = (|x| − |low|) / (|high| − |low|): the mean over 400 draws is x within 5 σ
    p = (np.abs(x) - np.abs(low)) / (np.abs(high) - np.abs(low))
    sigma = np.abs(high - low) * np.sqrt(p * (1 - p) / 400)
    assert np.all(np.abs(rounded.mean(axis=0) - x) <= 5 * sigma + 1e-30)
    assert 0.3 < np.mean(rounded[:, p > 0.5] == high[p > 0.5]) / np.mean(p[p > 0.5]) < 1.7


def test_representable_and_non_finite_values_are_kept_and_seeds_matter():
    exact = np.array([0.0, -0.0, 1.0, -2.5, 3.0e38, 1e-30], np.float32)
    exact = bfloat16_neighbours(exact)[0].astype(np.float32)  # bfloat16 values, as float32
    np.testing.assert_array_equal(as_float64(stochastic_round_to_bfloat16(tf.constant(exact), tf.constant([1, 0]))),
                                  exact.astype(np.float64))
    special = as_float64(stochastic_round_to_bfloat16(tf.constant([np.inf, -np.inf, np.nan], tf.float32),
                                                      tf.constant([7, 2])))
    assert special[0] == np.inf and special[1] == -np.inf and np.isnan(special[2])
    x = tf.constant(np.full(1000, 1.0 + 2 ** -9, np.float32))  # a quarter of the way from 1 to the next value
    same = [as_float64(stochastic_round_to_bfloat16(x, tf.constant([4, 1]))) for _ in range(2)]
    np.testing.assert_array_equal(same[0], same[1])  # deterministic for a seed
    assert not np.array_equal(same[0], as_float64(stochastic_round_to_bfloat16(x, tf.constant([5, 1]))))
    assert not np.array_equal(same[0], as_float64(stochastic_round_to_bfloat16(x, tf.constant([4, 2]))))
    assert not np.array_equal(same[0], as_float64(stochastic_round_to_bfloat16(x, tf.constant([4, 1]), stream=1)))


def test_a_slow_average_moves_in_bfloat16_only_when_rounded_stochastically():
    # v ← γ v + (1 − γ) g² with 1 − γ = 0.001, from v = 1 towards g² = 2: each change is below half of
    # bfloat16's spacing at 1 (2^-8), so rounding to nearest never moves v; the float64 value after
    # 300 steps is 2 − 0.999^300 = 1.2593.
    gamma, target, steps = 0.999, 2.0, 300
    nearest = tf.ones([2000], tf.bfloat16)
    stochastic = tf.ones([2000], tf.bfloat16)
    for step in range(steps):
        nearest = tf.cast(gamma * tf.cast(nearest, tf.float32) + (1 - gamma) * target, tf.bfloat16)
        stochastic = stochastic_round_to_bfloat16(gamma * tf.cast(stochastic, tf.float32) + (1 - gamma) * target,
                                                  tf.constant([step, 0]))
    exact = target - (target - 1.0) * gamma ** steps
    assert np.all(as_float64(nearest) == 1.0)
    assert abs(np.mean(as_float64(stochastic)) - exact) < 2e-3


def test_argument_is_checked():
    for bad in ("float16", "bf16", 16, None):
        with pytest.raises(ValueError, match="state_dtype"):
            HyperAdam(meta_params=PARAMS, state_dtype=bad)


def make_model(seed: int = 0):
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(5, activation="tanh"), keras.layers.Dense(2)])
    rng = np.random.default_rng(seed)
    model.set_weights([rng.normal(0, 0.5, w.shape).astype(np.float32) for w in model.get_weights()])
    return model


def data(seed: int = 1):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(64, 6)).astype(np.float32)
    return x, (x[:, :2] * 2.0 - x[:, 2:4]).astype(np.float32)


@pytest.mark.parametrize("jit_compile", [True, False])
def test_first_step_is_float32_s_and_the_state_its_rounding(jit_compile):
    # From the zero state (exact in bfloat16) the first step's arithmetic is float32's: the same weights;
    # the stored state is each float32 slot value rounded down or up to bfloat16.
    x, y = data()
    runs = {}
    for dtype in ("float32", "bfloat16"):
        model = make_model()
        optimizer = HyperAdam(learning_rate=0.01, meta_params=PARAMS, jit_compile=jit_compile, state_dtype=dtype)
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean((model(x) - y) ** 2)
        optimizer.apply_gradients(zip(tape.gradient(loss, model.trainable_variables), model.trainable_variables))
        runs[dtype] = (model, optimizer)
    (m32, o32), (m16, o16) = runs["float32"], runs["bfloat16"]
    np.testing.assert_array_equal(ref.flatten(m16.get_weights()), ref.flatten(m32.get_weights()))
    for v32, v16 in zip(m32.trainable_variables, m16.trainable_variables):
        for name, slot in o32.slots(v32).items():
            stored = o16.slots(v16)[name]
            assert stored.dtype == "bfloat16"
            low, high = bfloat16_neighbours(slot.numpy())
            value = as_float64(stored.value)
            assert np.all((value == low) | (value == high)), name


def test_memory_is_halved_and_reported():
    model = make_model()
    J, H = PARAMS.num_candidates, PARAMS.hidden
    optimizer = HyperAdam(meta_params=PARAMS, state_dtype="bfloat16")
    assert optimizer_memory(model, optimizer=optimizer)["bytes_per_parameter"] == 2 * (2 * H + 4 * J)
    optimizer.build(model.trainable_variables)
    built = optimizer_memory(model, optimizer=optimizer)
    assert built["state_dtype"] == "bfloat16" and built["bytes_per_parameter"] == 2 * (2 * H + 4 * J)
    assert optimizer_memory(model, state_dtype="bfloat16")["state_bytes"] * 2 == optimizer_memory(model)["state_bytes"]
    with pytest.raises(ValueError, match="state_dtype"):
        optimizer_memory(model, state_dtype="int8")


def final_loss(dtype: str, steps: int = 150) -> float:
    x, y = data()
    model = make_model()
    model.compile(optimizer=HyperAdam(learning_rate=0.01, meta_params=PARAMS, state_dtype=dtype), loss="mse")
    # One epoch over the data repeated: the batches of `steps // 4` unshuffled epochs, without their overhead.
    repeats = steps // 4
    model.fit(np.tile(x, (repeats, 1)), np.tile(y, (repeats, 1)), batch_size=16, epochs=1, shuffle=False, verbose=0)
    return float(model.evaluate(x, y, verbose=0))


def test_fit_trains_as_float32_does():
    loss32, loss16 = final_loss("float32"), final_loss("bfloat16")
    initial = float(np.mean((make_model()(data()[0]).numpy() - data()[1]) ** 2))
    assert loss16 < 0.2 * initial and loss32 < 0.2 * initial
    assert 0.7 < loss16 / loss32 < 1.4  # rounding noise, not a different optimizer


def test_keras_file_round_trip_continues_bit_for_bit(tmp_path):
    x, y = data()
    model = make_model()
    model.compile(optimizer=HyperAdam(learning_rate=0.01, meta_params=PARAMS, state_dtype="bfloat16"), loss="mse")
    model.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    assert loaded.optimizer.state_dtype == "bfloat16"
    for v, w in zip(model.trainable_variables, loaded.trainable_variables):
        for name, slot in model.optimizer.slots(v).items():
            restored = loaded.optimizer.slots(w)[name]
            assert restored.dtype == "bfloat16"
            np.testing.assert_array_equal(as_float64(restored.value), as_float64(slot.value))
    # the rounding is seeded by the step and the variable, both restored: the same next steps
    for m in (model, loaded):
        m.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)
    np.testing.assert_array_equal(ref.flatten(loaded.get_weights()), ref.flatten(model.get_weights()))


def test_config_round_trip_and_earlier_configs_are_float32():
    optimizer = HyperAdam(meta_params=PARAMS, state_dtype="bfloat16")
    config = optimizer.get_config()
    assert config["state_dtype"] == "bfloat16"
    assert HyperAdam.from_config(config).state_dtype == "bfloat16"
    del config["state_dtype"]  # a config written before the option
    assert HyperAdam.from_config(config).state_dtype == "float32"


def test_a_skipped_step_leaves_the_bfloat16_state_untouched():
    model = make_model()
    optimizer = HyperAdam(learning_rate=0.01, meta_params=PARAMS, state_dtype="bfloat16")
    x, y = data()
    for bad in (False, True):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean((model(x) - y) ** 2)
        grads = tape.gradient(loss, model.trainable_variables)
        if bad:
            before = [as_float64(s.value) for v in model.trainable_variables for s in optimizer.slots(v).values()]
            weights = ref.flatten(model.get_weights())
            grads = [g * np.nan for g in grads]
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
    after = [as_float64(s.value) for v in model.trainable_variables for s in optimizer.slots(v).values()]
    for a, b in zip(after, before):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(ref.flatten(model.get_weights()), weights)
    assert int(optimizer.skipped_steps) == 1


def test_mirrored_replicas_round_alike(mirrored_strategy):
    x, y = data()
    with mirrored_strategy.scope():
        model = make_model()
        model.compile(optimizer=HyperAdam(learning_rate=0.01, meta_params=PARAMS, state_dtype="bfloat16",
                                          jit_compile=False), loss="mse", jit_compile=False)
    model.fit(x, y, batch_size=32, epochs=2, shuffle=False, verbose=0)
    single = make_model()
    single.compile(optimizer=HyperAdam(learning_rate=0.01, meta_params=PARAMS, state_dtype="bfloat16",
                                       jit_compile=False), loss="mse", jit_compile=False)
    single.fit(x, y, batch_size=32, epochs=2, shuffle=False, verbose=0)
    for v, w in zip(model.trainable_variables, single.trainable_variables):
        for name, slot in model.optimizer.slots(v).items():
            copies = [as_float64(c) for c in mirrored_strategy.experimental_local_results(slot.value)]
            np.testing.assert_array_equal(copies[0], copies[1])  # one rounding for both replicas
            # and the single device's run, up to the all-reduce's round-off and a rare flipped rounding
            assert ref.rel_err(copies[0], as_float64(single.optimizer.slots(w)[name].value)) < 2e-2, name
