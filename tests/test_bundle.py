"""Meta-parameter bundles: round trip, every bad bundle's clear error, loading runs no bundle code,
the `step` signature agrees with the optimizer and the reference, and the shipped default."""

import json
import shutil
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

import numpy_reference as ref
from hyperadam_keras import (PAPER_SETTINGS, HyperAdam, MetaParams, MetaParamsError, default_bundle_path,
                             load_meta_params, random_meta_params, read_bundle_metadata, save_meta_params)
from hyperadam_keras.bundle import meta_params_from_config, meta_params_to_config, shipped_bundle_path
from hyperadam_keras.meta_params import NAMES
from hyperadam_keras.lab.meta.config import MetaTrainConfig

PARAMS = random_meta_params(4, 6, seed=13, scale=1.0)


@pytest.fixture(scope="module")
def good_bundle(tmp_path_factory):
    return save_meta_params(PARAMS, tmp_path_factory.mktemp("good") / "bundle",
                            metadata={"note": "made by test_bundle", "validation": {"loss": 0.25}})


def copy_bundle(src, dst):
    shutil.copytree(src, dst)
    return dst


def write_raw_bundle(path, arrays, meta):
    """A SavedModel of an arbitrary tf.Module whose variables sit at `group/name` (the checkpoint
    keys a bundle uses), plus a meta.json: how a foreign or broken bundle looks on disk."""
    module = tf.Module()
    for name, value in arrays.items():
        group, var = name.split("/")
        if not hasattr(module, group):
            setattr(module, group, tf.Module())
        setattr(getattr(module, group), var, tf.Variable(value))
    tf.saved_model.save(module, str(path))
    (path / "assets").mkdir(exist_ok=True)
    (path / "assets" / "meta.json").write_text(json.dumps(meta))
    return path


def valid_meta(params=PARAMS):
    return {"format_version": 1, "num_candidates": params.num_candidates, "hidden": params.hidden}


def test_round_trip_keeps_arrays_and_metadata(good_bundle):
    loaded = load_meta_params(good_bundle)
    for name in NAMES:
        np.testing.assert_array_equal(loaded.values[name], PARAMS.values[name], err_msg=name)
    assert (loaded.num_candidates, loaded.hidden) == (4, 6)
    assert loaded.fingerprint() == PARAMS.fingerprint()
    meta = read_bundle_metadata(good_bundle)
    assert meta["note"] == "made by test_bundle" and meta["validation"] == {"loss": 0.25}
    assert meta["format_version"] == 2 and meta["num_candidates"] == 4 and meta["hidden"] == 6
    assert meta["sha256"] == PARAMS.fingerprint()
    arrays = loaded.arrays()
    assert set(arrays) == set(NAMES) and all(a.dtype == np.float32 for a in arrays.values())
    assert MetaParams.from_arrays(arrays).fingerprint() == PARAMS.fingerprint()


def test_save_refuses_to_overwrite(good_bundle):
    with pytest.raises(FileExistsError, match=f"{good_bundle} already holds a bundle; pass overwrite=True"):
        save_meta_params(PARAMS, good_bundle)


def test_save_with_overwrite_replaces_a_bundle_and_nothing_else(tmp_path):
    path = save_meta_params(PARAMS, tmp_path / "b")
    other = random_meta_params(3, 2, seed=1)
    assert save_meta_params(other, path, overwrite=True) == path
    assert load_meta_params(path).fingerprint() == other.fingerprint()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]  # no staging or retired copies left
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("keep me")
    (tmp_path / "file").write_text("keep me")
    for target in (tmp_path / "notes", tmp_path / "file"):
        with pytest.raises(FileExistsError, match=f"{target} already exists and is not a HyperAdam bundle"):
            save_meta_params(PARAMS, target, overwrite=True)
    assert (tmp_path / "notes" / "todo.txt").read_text() == "keep me" and (tmp_path / "file").read_text() == "keep me"
    (tmp_path / "empty").mkdir()
    assert load_meta_params(save_meta_params(PARAMS, tmp_path / "empty")).fingerprint() == PARAMS.fingerprint()


def test_save_refuses_metadata_that_would_contradict_the_arrays(tmp_path):
    with pytest.raises(ValueError, match=r"metadata must not set \['sha256'\]"):
        save_meta_params(PARAMS, tmp_path / "b", metadata={"sha256": "0" * 64, "note": "x"})
    with pytest.raises(ValueError, match="epsilon must be a finite number >= 0, got -1.0"):
        save_meta_params(PARAMS, tmp_path / "b", epsilon=-1.0)
    assert not (tmp_path / "b").exists()


def test_checksum_mismatch(tmp_path, good_bundle):
    path = copy_bundle(good_bundle, tmp_path / "b")
    meta = json.loads((path / "assets" / "meta.json").read_text())
    meta["sha256"] = "0" * 64
    (path / "assets" / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(MetaParamsError, match=f"{path}: checksum mismatch: the variables' SHA-256 is "
                                              f"{PARAMS.fingerprint()}, meta.json records '0{{64}}'"):
        load_meta_params(path)


def test_truncated_or_damaged_variables(tmp_path, good_bundle):
    """Each is a MetaParamsError naming the bundle (was a bare IndexError / a TensorFlow OpError)."""
    data_file = next((good_bundle / "variables").glob("variables.data-*")).name
    path = copy_bundle(good_bundle, tmp_path / "cut")
    data = (path / "variables" / data_file).read_bytes()
    (path / "variables" / data_file).write_bytes(data[: len(data) // 3])
    with pytest.raises(MetaParamsError, match=f"{path}: cannot read meta-parameter variable .* truncated or damaged"):
        load_meta_params(path)
    path = copy_bundle(good_bundle, tmp_path / "flipped")
    damaged = bytearray(data)
    damaged[10] ^= 0xFF
    (path / "variables" / data_file).write_bytes(bytes(damaged))
    with pytest.raises(MetaParamsError, match=f"{path}: cannot read meta-parameter variable"):
        load_meta_params(path)
    path = copy_bundle(good_bundle, tmp_path / "index")
    (path / "variables" / "variables.index").write_bytes(b"")
    with pytest.raises(MetaParamsError, match=f"{path}: unreadable variables index"):
        load_meta_params(path)


def test_missing_path(tmp_path):
    with pytest.raises(MetaParamsError, match="not found"):
        load_meta_params(tmp_path / "nowhere")


def test_file_instead_of_directory(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(MetaParamsError, match="got a file"):
        load_meta_params(f)


def test_missing_meta_json(tmp_path, good_bundle):
    path = copy_bundle(good_bundle, tmp_path / "b")
    (path / "assets" / "meta.json").unlink()
    with pytest.raises(MetaParamsError, match="meta.json"):
        load_meta_params(path)


def test_malformed_json(tmp_path, good_bundle):
    path = copy_bundle(good_bundle, tmp_path / "b")
    (path / "assets" / "meta.json").write_text('{"format_version": 1,')
    with pytest.raises(MetaParamsError, match="malformed JSON"):
        load_meta_params(path)
    (path / "assets" / "meta.json").write_text("[1, 2]")
    with pytest.raises(MetaParamsError, match="JSON object"):
        load_meta_params(path)


@pytest.mark.parametrize("version", [3, None, "1"])
def test_unknown_format_version(tmp_path, good_bundle, version):
    path = copy_bundle(good_bundle, tmp_path / "b")
    meta = json.loads((path / "assets" / "meta.json").read_text())
    if version is None:
        del meta["format_version"]
    else:
        meta["format_version"] = version
    (path / "assets" / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(MetaParamsError, match="format_version"):
        load_meta_params(path)


def test_meta_json_disagreeing_with_variables(tmp_path, good_bundle):
    path = copy_bundle(good_bundle, tmp_path / "b")
    meta = json.loads((path / "assets" / "meta.json").read_text())
    meta["num_candidates"] = 20
    (path / "assets" / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(MetaParamsError, match="num_candidates=20"):
        load_meta_params(path)


def test_missing_variables_file(tmp_path, good_bundle):
    path = copy_bundle(good_bundle, tmp_path / "b")
    shutil.rmtree(path / "variables")
    with pytest.raises(MetaParamsError, match="variables"):
        load_meta_params(path)


def test_missing_variable(tmp_path):
    arrays = PARAMS.arrays()
    del arrays["adam_cell/gamma_kernel"]
    path = write_raw_bundle(tmp_path / "b", arrays, valid_meta())
    with pytest.raises(MetaParamsError, match="missing meta-parameter variable adam_cell/gamma_kernel"):
        load_meta_params(path)


def test_foreign_saved_model(tmp_path):
    """A SavedModel of some other tf.Module (a Keras-like dense layer) is not a bundle."""
    path = write_raw_bundle(tmp_path / "b", {"dense/kernel": np.ones((3, 2), np.float32),
                                             "dense/bias": np.zeros(2, np.float32)}, valid_meta())
    with pytest.raises(MetaParamsError, match="missing meta-parameter variable preprocess/kernel"):
        load_meta_params(path)


def test_wrong_shape(tmp_path):
    arrays = PARAMS.arrays()
    arrays["state_cell/kernel"] = np.zeros((12, 25), np.float32)  # expected (2H, 4H) = (12, 24)
    path = write_raw_bundle(tmp_path / "b", arrays, valid_meta())
    with pytest.raises(MetaParamsError, match=r"state_cell/kernel has shape \(12, 25\), expected \(12, 24\)"):
        load_meta_params(path)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_value(tmp_path, bad):
    arrays = PARAMS.arrays()
    arrays["weight_cell/kernel"][2, 1] = bad
    path = write_raw_bundle(tmp_path / "b", arrays, valid_meta())
    with pytest.raises(MetaParamsError, match="weight_cell/kernel contains non-finite"):
        load_meta_params(path)


def test_raw_writer_makes_loadable_bundles(tmp_path):
    """Guards the tests above: the same raw writer with correct arrays gives a loadable bundle,
    so each error really comes from the one defect introduced."""
    path = write_raw_bundle(tmp_path / "b", PARAMS.arrays(), valid_meta())
    assert load_meta_params(path).fingerprint() == PARAMS.fingerprint()


@pytest.mark.parametrize("damage", ["deleted", "garbage"])
def test_loading_runs_no_bundle_code(tmp_path, good_bundle, damage):
    """Loading reads only the variables and the JSON: without a usable saved_model.pb (the graph and
    its functions) the meta-parameters still load, while TensorFlow's own loader fails."""
    path = copy_bundle(good_bundle, tmp_path / "b")
    graph = path / "saved_model.pb"
    if damage == "deleted":
        graph.unlink()
    else:
        graph.write_bytes(b"\x00not a protobuf, and no function to run\xff" * 10)
    assert load_meta_params(path).fingerprint() == PARAMS.fingerprint()
    with pytest.raises(Exception):
        tf.saved_model.load(str(path))


@pytest.fixture(scope="module")
def rms_bundle(tmp_path_factory):
    return save_meta_params(PARAMS.with_feature_normalization("rms"), tmp_path_factory.mktemp("rms") / "bundle")


def test_feature_normalization_travels_with_the_bundle(good_bundle, rms_bundle, tmp_path):
    rms = load_meta_params(rms_bundle)
    assert rms.feature_normalization == "rms" and read_bundle_metadata(rms_bundle)["feature_normalization"] == "rms"
    assert load_meta_params(good_bundle).feature_normalization == "norm"
    # Same arrays, another update: another fingerprint; "norm" keeps the fingerprint of the arrays alone.
    assert rms.fingerprint() != PARAMS.fingerprint() == PARAMS.with_feature_normalization("norm").fingerprint()
    assert "feature_normalization='rms'" in repr(rms)
    assert MetaParams.from_config(rms.to_config()).fingerprint() == rms.fingerprint()
    restored = HyperAdam.from_config(HyperAdam(meta_params=rms).get_config())
    assert restored.meta_params.feature_normalization == "rms"
    # A bundle written before the option existed (no key) is the paper's normalization.
    meta = read_bundle_metadata(good_bundle)
    meta.pop("feature_normalization")
    old = copy_bundle(good_bundle, tmp_path / "old")
    (old / "assets" / "meta.json").write_text(json.dumps(meta))
    assert load_meta_params(old).fingerprint() == PARAMS.fingerprint()
    meta["feature_normalization"] = "layer"
    (old / "assets" / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(MetaParamsError, match="unknown feature_normalization 'layer'"):
        load_meta_params(old)


@pytest.fixture(scope="module")
def rms_clip_bundle(tmp_path_factory):
    return save_meta_params(PARAMS.with_feature_normalization("rms-clip"), tmp_path_factory.mktemp("rc") / "bundle")


@pytest.mark.parametrize("normalization", ["norm", "rms", "rms-clip"])
def test_step_signature_agrees_with_optimizer_and_reference(good_bundle, rms_bundle, rms_clip_bundle, normalization):
    """Two steps of the bundle's `step` signature on a flat vector vs HyperAdam on a flat variable
    (whose global norms are then that vector's) and vs the NumPy reference. One gradient coordinate is
    an outlier (ĝ ≈ 14 RMS), so "rms-clip" clips it."""
    bundle = {"norm": good_bundle, "rms": rms_bundle, "rms-clip": rms_clip_bundle}[normalization]
    assert load_meta_params(bundle).feature_normalization == normalization
    step = tf.saved_model.load(str(bundle)).signatures["step"]
    J, H, p = PARAMS.num_candidates, PARAMS.hidden, 200
    rng = np.random.default_rng(0)
    w = rng.normal(size=p).astype(np.float32)
    variable = keras.Variable(w.copy())
    opt = HyperAdam(learning_rate=0.01, meta_params=load_meta_params(bundle), jit_compile=False)
    state = {k: tf.zeros((H if k in ("h", "c") else J, p)) for k in ref.STATE_NAMES}  # coordinates last
    ref_w, ref_state = w.astype(np.float64), ref.zero_state(p, J, H)
    weights = tf.constant(w)
    for _ in range(2):
        g = rng.normal(0, 0.1, p).astype(np.float32)
        g[0] = 100 * np.abs(g).mean()
        out = step(weights=weights, gradient=tf.constant(g), learning_rate=tf.constant(0.01), **state)
        weights = out["weights"]
        state = {k: out[k] for k in ref.STATE_NAMES}
        opt.apply_gradients([(tf.constant(g), variable)])
        ref_w, ref_state, _ = ref.reference_step(PARAMS.arrays(), ref_w, g, ref_state, 0.01,
                                                 feature_normalization=normalization)
    assert ref.rel_err(weights.numpy() - w, variable.numpy() - w) < 1e-5
    assert ref.rel_err(weights.numpy() - w, ref_w - w) < 1e-5
    for name in ref.STATE_NAMES:
        assert ref.rel_err(state[name].numpy(), opt.slots(variable)[name].numpy()) < 1e-5, name
        assert ref.rel_err(state[name].numpy().T, ref_state[name]) < 1e-5, name


REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name, size, run, normalization", [
    ("default", (8, 8), "meta_training/run10", "rms-clip"),
    ("paper", (20, 20), "meta_training/run5", "norm"),
])
def test_each_shipped_bundle_is_the_meta_trained_bundle_of_its_recorded_run(name, size, run, normalization):
    path = shipped_bundle_path(name)
    assert (path / "saved_model.pb").is_file()
    params = load_meta_params(path)
    assert (params.num_candidates, params.hidden) == size and params.feature_normalization == normalization
    meta = read_bundle_metadata(path)
    assert meta["trained"] is True and meta["sha256"] == params.fingerprint()
    assert meta["made_by"]["command"] == "hyperadam-keras meta-train"
    recipe = MetaTrainConfig.from_dict(meta["made_by"]["config"]).recipe()  # a valid, complete recipe
    # It is the best bundle of the committed run directory it names, made by that run's config (so
    # `hyperadam-keras meta-train --config <run>/config.json` reproduces it; resumption is exact).
    assert meta["shipped_from"]["run"] == run
    assert load_meta_params(REPO / run / "best_bundle").fingerprint() == params.fingerprint()
    assert MetaTrainConfig.from_dict(json.loads((REPO / run / "config.json").read_text())).recipe() == recipe
    assert meta["validation"]["best_loss"] < meta["validation"]["initial_loss"]
    assert meta["meta_training"]["meta_steps"] >= meta["shipped_from"]["best_at_meta_step"] > 0
    # Meta-training moved the learned parts: the LSTM and the weight cell are not the ensemble's zeros.
    assert params.values["state_cell/kernel"].any() and params.values["weight_cell/kernel"].any()
    assert np.all(np.isfinite(np.concatenate([a.ravel() for a in params.weights()])))
    assert load_meta_params(name).fingerprint() == params.fingerprint()  # by name


def test_the_default_and_the_paper_settings_use_their_own_shipped_bundles():
    default, paper = load_meta_params("default"), load_meta_params("paper")
    assert default.fingerprint() != paper.fingerprint()
    assert HyperAdam().meta_params.fingerprint() == default.fingerprint()
    assert default_bundle_path() == shipped_bundle_path("default")
    optimizer = HyperAdam(**PAPER_SETTINGS)
    assert optimizer.meta_params.fingerprint() == paper.fingerprint()
    assert optimizer.max_relative_step is None and optimizer.decay_after is None
    assert float(optimizer.learning_rate) == pytest.approx(0.005)
    # Another bundle at the paper's settings, as the docs say.
    other = HyperAdam(**{**PAPER_SETTINGS, "meta_params": PARAMS})
    assert other.meta_params.fingerprint() == PARAMS.fingerprint()


def test_a_config_refers_to_a_shipped_bundle_by_name_and_an_earlier_name_still_loads():
    paper = load_meta_params("paper")
    assert meta_params_to_config(paper) == {"bundle": "paper", "sha256": paper.fingerprint()}
    assert meta_params_to_config(load_meta_params("default"))["bundle"] == "default"
    assert "arrays" in meta_params_to_config(PARAMS)
    # A .keras file saved before 2026-12-03 names the "paper" bundle "default" (it was the default then).
    earlier = {"bundle": "default", "sha256": paper.fingerprint()}
    assert meta_params_from_config(earlier).fingerprint() == paper.fingerprint()
    with pytest.raises(MetaParamsError, match="no other shipped bundle has that sha256"):
        meta_params_from_config({"bundle": "default", "sha256": "0" * 64})
    with pytest.raises(MetaParamsError, match="names bundle 'nope'.*'default', 'paper'"):
        meta_params_from_config({"bundle": "nope", "sha256": paper.fingerprint()})
    with pytest.raises(MetaParamsError, match="no shipped bundle named 'nope'"):
        shipped_bundle_path("nope")
    with pytest.raises(MetaParamsError, match="not found: nope .*'default', 'paper'"):
        load_meta_params("nope")


def test_shipped_bundle_at_the_paper_settings_beats_adam_at_its_tuned_rate_on_a_deep_sigmoid_mlp():
    """100 steps of the 5×20 sigmoid MLP (Fig. 5d): the shipped bundle at the paper's step
    (`PAPER_SETTINGS`, what it was meta-trained for) against Adam at the rate the paper-deep suite tuned for
    this task (0.03, benchmarks/paper-deep), same seeds, same batches."""
    from hyperadam_keras.lab.eval.evaluate import Trainer
    from hyperadam_keras.lab.tasks.registry import build_mlp
    task = build_mlp(hidden_layers=5)
    seeds = (0, 1, 2)
    hyper = Trainer(task, HyperAdam(**PAPER_SETTINGS))
    adam = Trainer(task, keras.optimizers.Adam(0.03))
    hyper_losses = [hyper.run(seed, 100, 0.005).final_loss for seed in seeds]
    adam_losses = [adam.run(seed, 100, 0.03).final_loss for seed in seeds]
    assert np.all(np.isfinite(hyper_losses))
    assert np.mean(hyper_losses) < np.mean(adam_losses) - 0.1, (hyper_losses, adam_losses)
