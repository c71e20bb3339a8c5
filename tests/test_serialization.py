"""get_config/from_config, `.keras` files and tf.train.Checkpoint: the same meta-parameters and the
same trajectory after save -> load -> continue as without stopping."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

import numpy_reference as ref
from hyperadam_keras import (HyperAdam, MetaParamsError, default_bundle_path, load_meta_params, random_meta_params,
                             save_meta_params)

PARAMS = random_meta_params(4, 3, seed=21, scale=1.0)
X = np.random.default_rng(0).normal(size=(48, 10)).astype(np.float32)
Y = np.random.default_rng(1).integers(0, 3, 48)


@pytest.fixture(scope="module")
def bundle_path(tmp_path_factory):
    return save_meta_params(PARAMS, tmp_path_factory.mktemp("bundle") / "b")


@pytest.mark.parametrize("source", ["default", "path", "memory"])
def test_config_round_trip_keeps_meta_params(source, bundle_path):
    meta = {"default": None, "path": bundle_path, "memory": PARAMS}[source]
    expected = {"default": load_meta_params(default_bundle_path()), "path": PARAMS, "memory": PARAMS}[source]
    opt = HyperAdam(learning_rate=0.003, meta_params=meta, epsilon=1e-20, skip_nonfinite=False,
                    jit_compile=False, weight_decay=0.01, global_clipnorm=2.0, decay_after=7)
    config = json.loads(json.dumps(opt.get_config()))  # plain JSON: what a .keras file stores
    clone = HyperAdam.from_config(config)
    assert clone.meta_params.fingerprint() == expected.fingerprint() == opt.meta_params.fingerprint()
    assert (clone.epsilon, clone.skip_nonfinite, clone.jit_compile, clone.decay_after) == (1e-20, False, False, 7)
    assert HyperAdam.from_config({**config, "decay_after": None}).decay_after is None
    assert clone.weight_decay == 0.01 and clone.global_clipnorm == 2.0
    np.testing.assert_allclose(float(clone.learning_rate), 0.003)
    # registered: generic Keras deserialization finds the class without custom_objects
    generic = keras.optimizers.deserialize(json.loads(json.dumps(keras.optimizers.serialize(opt))))
    assert isinstance(generic, HyperAdam)
    assert generic.meta_params.fingerprint() == expected.fingerprint()


def test_config_does_not_depend_on_the_bundle_file(tmp_path):
    """A user bundle's config embeds the arrays: deleting the bundle afterwards changes nothing."""
    path = save_meta_params(PARAMS, tmp_path / "gone")
    config = HyperAdam(meta_params=path).get_config()
    import shutil
    shutil.rmtree(path)
    assert HyperAdam.from_config(config).meta_params.fingerprint() == PARAMS.fingerprint()


def test_config_with_mismatched_sha256_raises():
    config = HyperAdam(meta_params=PARAMS).get_config()
    tampered = json.loads(json.dumps(config))
    tampered["meta_params"]["arrays"]["weight_cell/bias"][0] += 0.5
    with pytest.raises(MetaParamsError, match="sha256"):
        HyperAdam.from_config(tampered)
    wrong_hash = json.loads(json.dumps(config))
    wrong_hash["meta_params"]["sha256"] = "0" * 64
    with pytest.raises(MetaParamsError, match="sha256"):
        HyperAdam.from_config(wrong_hash)


def new_model():
    model = keras.Sequential([keras.Input((10,)), keras.layers.Dense(6, activation="tanh"), keras.layers.Dense(3)])
    rng = np.random.default_rng(5)
    model.set_weights([rng.normal(0, 0.3, w.shape).astype(np.float32) for w in model.get_weights()])
    return model


def compiled_model():
    model = new_model()
    model.compile(optimizer=HyperAdam(learning_rate=0.02, meta_params=PARAMS, jit_compile=False),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), jit_compile=False)
    return model


def fit(model, epochs=1):
    model.fit(X, Y, batch_size=16, epochs=epochs, shuffle=False, verbose=0)  # 3 steps per epoch


@pytest.fixture(scope="module")
def never_stopped():
    """Reference: 6 steps without interruption; also the weights after 3 (for the sanity checks)."""
    model = compiled_model()
    w0 = ref.flatten(model.get_weights())
    fit(model)
    halfway = ref.flatten(model.get_weights())
    fit(model)
    return w0, halfway, ref.flatten(model.get_weights())


def test_keras_file_save_load_continue(tmp_path, never_stopped):
    w0, halfway, final = never_stopped
    model = compiled_model()
    fit(model)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)  # no custom_objects: the class is registered
    assert isinstance(loaded.optimizer, HyperAdam)
    assert loaded.optimizer.meta_params.fingerprint() == PARAMS.fingerprint()
    _assert_restored_and_continues(model, loaded, w0, halfway, final)
    _assert_fresh_state_differs(halfway, final, w0)


def test_tf_train_checkpoint_save_restore_continue(tmp_path, never_stopped):
    w0, halfway, final = never_stopped
    model = compiled_model()
    fit(model)
    prefix = tf.train.Checkpoint(model=model, optimizer=model.optimizer).save(str(tmp_path / "ckpt"))

    fresh = compiled_model()
    fresh.optimizer.build(fresh.trainable_variables)
    fresh.set_weights([np.zeros_like(w) for w in fresh.get_weights()])  # nothing left from the start
    status = tf.train.Checkpoint(model=fresh, optimizer=fresh.optimizer).restore(prefix)
    status.assert_existing_objects_matched()
    assert int(fresh.optimizer.iterations) == 3
    _assert_restored_and_continues(model, fresh, w0, halfway, final)


def _assert_restored_and_continues(model, restored, w0, halfway, final):
    """`restored` holds the halfway weights and exactly `model`'s optimizer slots, and training it on
    gives the never-stopped trajectory."""
    np.testing.assert_array_equal(ref.flatten(restored.get_weights()), halfway)
    assert_same_slots(model, restored)
    fit(restored)
    assert ref.rel_err(ref.flatten(restored.get_weights()) - w0, final - w0) < 1e-6


def assert_same_slots(model, restored):
    """Every HyperAdam slot of `restored` equals `model`'s."""
    for v_old, v_new in zip(model.trainable_variables, restored.trainable_variables):
        for name, slot in model.optimizer.slots(v_old).items():
            np.testing.assert_array_equal(restored.optimizer.slots(v_new)[name].numpy(), slot.numpy(), err_msg=name)


def _assert_fresh_state_differs(halfway, final, w0):
    """The checks above have teeth: continuing from the halfway weights with a FRESH optimizer state
    gives a clearly different trajectory, so a lost optimizer state would fail them."""
    model = compiled_model()
    model.set_weights([w.reshape(v.shape) for w, v in zip(
        np.split(halfway, np.cumsum([int(np.prod(v.shape)) for v in model.get_weights()])[:-1]),
        model.get_weights())])
    fit(model)
    assert ref.rel_err(ref.flatten(model.get_weights()) - w0, final - w0) > 1e-3


# --- the shipped bundle by reference, configs of earlier versions ---------------------------------------

def test_default_bundle_is_referenced_by_name_and_sha256_and_user_bundles_embed_arrays():
    default = load_meta_params(default_bundle_path())
    config = HyperAdam().get_config()
    assert config["meta_params"] == {"bundle": "default", "sha256": default.fingerprint()}
    assert len(json.dumps(config)) < 2_000
    # The same arrays given in memory are the same update: referenced too.
    assert HyperAdam(meta_params=default).get_config()["meta_params"] == config["meta_params"]
    assert "arrays" in HyperAdam(meta_params=PARAMS).get_config()["meta_params"]
    assert HyperAdam.from_config(config).meta_params.fingerprint() == default.fingerprint()


def test_reference_to_another_default_fails_clearly():
    config = json.loads(json.dumps(HyperAdam().get_config()))
    config["meta_params"]["sha256"] = "f" * 64
    with pytest.raises(MetaParamsError, match="refers to the shipped bundle 'default' with sha256 'f{64}'"):
        HyperAdam.from_config(config)
    config["meta_params"] = {"bundle": "run5", "sha256": "f" * 64}
    with pytest.raises(MetaParamsError, match="names bundle 'run5'"):
        HyperAdam.from_config(config)


def old_format(config: dict) -> dict:
    """`config` as versions before the bundle reference wrote it: the shipped bundle's arrays embedded."""
    from hyperadam_keras.bundle import meta_params_from_config
    return {**config, "meta_params": meta_params_from_config(config["meta_params"]).to_config()}


def test_config_of_earlier_versions_with_embedded_default_arrays_loads():
    """Earlier versions embedded the arrays of the default of their time, now the "paper" bundle."""
    optimizer = HyperAdam(meta_params="paper", learning_rate=0.002, decay_after=None)
    config = json.loads(json.dumps(old_format(optimizer.get_config())))
    assert len(config["meta_params"]["arrays"]["state_cell/kernel"]) == 40
    clone = HyperAdam.from_config(config)
    assert clone.meta_params.fingerprint() == load_meta_params("paper").fingerprint()
    assert clone.decay_after is None and np.isclose(float(clone.learning_rate), 0.002)
    # and it is written back in the new, small form
    assert clone.get_config()["meta_params"]["bundle"] == "paper"
    # The same for today's default.
    clone = HyperAdam.from_config(json.loads(json.dumps(old_format(HyperAdam().get_config()))))
    assert clone.meta_params.fingerprint() == load_meta_params(default_bundle_path()).fingerprint()
    assert clone.get_config()["meta_params"]["bundle"] == "default"


def default_model(**settings):
    model = new_model()
    model.compile(optimizer=HyperAdam(jit_compile=False, **settings),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), jit_compile=False)
    return model


def keras_file_configs(path) -> dict:
    import zipfile
    with zipfile.ZipFile(path) as archive:
        return json.loads(archive.read("config.json"))


def test_keras_file_of_the_default_optimizer_is_small_and_continues_identically(tmp_path):
    reference = default_model()
    fit(reference)
    halfway = ref.flatten(reference.get_weights())
    model = default_model()
    fit(model)
    path = tmp_path / "model.keras"
    model.save(path)
    optimizer_entry = keras_file_configs(path)["compile_config"]["optimizer"]
    assert len(json.dumps(optimizer_entry)) < 10_000
    assert optimizer_entry["config"]["meta_params"]["bundle"] == "default"
    loaded = keras.saving.load_model(path)
    assert loaded.optimizer.meta_params.fingerprint() == model.optimizer.meta_params.fingerprint()
    np.testing.assert_array_equal(ref.flatten(loaded.get_weights()), halfway)
    fit(reference)
    fit(loaded)
    np.testing.assert_array_equal(ref.flatten(loaded.get_weights()), ref.flatten(reference.get_weights()))
    assert_same_slots(reference, loaded)


def test_keras_file_of_an_earlier_version_loads(tmp_path):
    """A `.keras` file whose optimizer config embeds the default's arrays (as earlier versions wrote it;
    their default is the "paper" bundle now)."""
    import zipfile
    model = default_model(meta_params="paper")
    fit(model)
    new_path, old_path = tmp_path / "new.keras", tmp_path / "old.keras"
    model.save(new_path)
    config = keras_file_configs(new_path)
    entry = config["compile_config"]["optimizer"]
    entry["config"] = old_format(entry["config"])
    with zipfile.ZipFile(new_path) as source, zipfile.ZipFile(old_path, "w") as target:
        for item in source.infolist():
            data = json.dumps(config).encode() if item.filename == "config.json" else source.read(item)
            target.writestr(item, data)
    assert len(json.dumps(keras_file_configs(old_path)["compile_config"]["optimizer"])) > 100_000
    loaded = keras.saving.load_model(old_path)
    assert loaded.optimizer.meta_params.fingerprint() == model.optimizer.meta_params.fingerprint()
    assert int(loaded.optimizer.iterations) == int(model.optimizer.iterations) == 3
    assert_same_slots(model, loaded)


def test_import_hyperadam_keras_is_all_a_fresh_process_needs_to_load_a_keras_file(tmp_path):
    import subprocess
    import sys

    from helpers_subprocess import REPO, child_env
    model = default_model()
    fit(model)
    path = tmp_path / "model.keras"
    model.save(path)
    load = f"import keras{{}}; m = keras.saving.load_model({str(path)!r}); print(type(m.optimizer).__name__)"
    with_import = subprocess.run([sys.executable, "-c", load.format(", hyperadam_keras")], cwd=REPO,
                                 env=child_env(), capture_output=True, text=True, timeout=120)
    assert with_import.returncode == 0 and with_import.stdout.strip() == "HyperAdam", with_import.stderr
    # Without the import Keras cannot know the class: the error names it and stays short (the config no
    # longer embeds the shipped meta-parameters).
    without = subprocess.run([sys.executable, "-c", load.format("")], cwd=REPO, env=child_env(),
                             capture_output=True, text=True, timeout=120)
    assert without.returncode != 0 and "HyperAdam" in without.stderr
    assert len(without.stderr.strip().splitlines()[-1]) < 5_000
