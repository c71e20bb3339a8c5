"""`hyperadam-keras compare`: the CLI end to end on a tiny model, every malformed-builder error, and the
rules (same initial weights and same batches for every optimizer of a seed, mixed precision)."""

from __future__ import annotations

import hashlib
import json
import math
import textwrap

import keras
import numpy as np
import pytest

from hyperadam_keras.defaults import DEFAULT_LEARNING_RATE
import tensorflow as tf

from hyperadam_keras import cli
from hyperadam_keras.lab.eval.baselines import DEFAULT_GRIDS
from hyperadam_keras.lab.eval.compare import compare, resolve_specs
from hyperadam_keras.lab.eval.compare_builder import BuilderError, array_order, check_build
from hyperadam_keras.lab.eval.tuning import TUNING_SEED_OFFSET

TINY = """
import keras
import numpy as np

def build():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 20)).astype("float32")
    y = (x[:, :3].sum(axis=1) > 0).astype("int32")
    model = keras.Sequential([keras.Input((20,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(2)])
    return {"model": model, "loss": keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            "x": x, "y": y, "validation_data": (x[:50], y[:50]), "batch_size": 32, "epochs": 2,
            "metrics": ["accuracy"]}
"""


def _write(tmp_path, source: str, name: str = "model_file.py") -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(source))
    return str(path)


def test_cli_end_to_end_on_a_tiny_model(tmp_path, capsys):
    model = _write(tmp_path, TINY)
    out_dir, json_path = tmp_path / "out", tmp_path / "elsewhere" / "numbers.json"
    code = cli.main(["compare", "--model", f"{model}:build", "--seeds", "1", "--grid", "0.003", "0.01",
                     "--output-dir", str(out_dir), "--json", str(json_path), "--quiet"])
    printed = capsys.readouterr().out
    assert code == 0
    assert (out_dir / "curves.png").stat().st_size > 1000 and json_path.is_file()
    assert not (out_dir / "compare.json").exists()
    results = json.loads(json_path.read_text())
    assert list(results["optimizers"]) == ["HyperAdam", "Adam"]
    assert results["settings"]["seeds"] == [0] and results["settings"]["tuning_seeds"] == [TUNING_SEED_OFFSET]
    assert results["data"]["parameters"] == 20 * 16 + 16 + 16 * 2 + 2
    assert results["data"]["steps_per_run"] == 2 * math.ceil(200 / 32)
    sha = results["settings"]["initial_weights_sha256"]
    hyperadam, adam = results["optimizers"]["HyperAdam"], results["optimizers"]["Adam"]
    # HyperAdam untuned at its default rate; Adam tuned on the tuning seed, the grid possibly extended.
    assert hyperadam["learning_rate"] == DEFAULT_LEARNING_RATE and not hyperadam["tuned"] and "tuning" not in hyperadam
    tuning = adam["tuning"]
    assert {0.003, 0.01} <= set(tuning["grid"]) and adam["learning_rate"] == tuning["best_lr"] in tuning["grid"]
    assert len(tuning["runs"]) == len(tuning["grid"])
    for run in tuning["runs"]:
        assert run["seed"] == TUNING_SEED_OFFSET and run["initial_weights_sha256"] == sha[str(TUNING_SEED_OFFSET)]
    assert sha["0"] != sha[str(TUNING_SEED_OFFSET)]
    first_losses = set()
    for entry in (hyperadam, adam):
        (run,) = entry["runs"]
        assert run["seed"] == 0 and run["initial_weights_sha256"] == sha["0"]  # identical initial weights
        assert run["initial_loss"] == hyperadam["runs"][0]["initial_loss"]
        assert len(run["curve"]) == run["steps"] == 14 and all(math.isfinite(x) for x in run["curve"])
        assert math.isfinite(run["final_loss"]) and run["finite"] and not run["diverged"]
        assert set(run["validation"]) >= {"loss", "accuracy"} and run["median_step_seconds"] > 0
        assert entry["summary"]["final_loss"]["mean"] == run["final_loss"]
        first_losses.add(run["curve"][0])  # the first batch, before any update: the same loss
    assert len(first_losses) == 1
    assert hyperadam["summary"]["memory"]["bytes_per_parameter"] == 192
    assert adam["summary"]["memory"]["bytes_per_parameter"] == 8
    assert f"| HyperAdam | {DEFAULT_LEARNING_RATE:g} (default, untuned) |" in printed and "| Adam |" in printed
    assert "HyperAdam against tuned Adam: final train loss" in printed and str(json_path) in printed


NOT_A_MODEL = """
import numpy as np
def build():
    return {"model": [1, 2], "loss": "mse", "x": np.zeros((4, 2)), "y": np.zeros(4)}
"""


def _builder_source(body: str) -> str:
    return ("import keras\nimport numpy as np\nimport tensorflow as tf\n\ndef build():\n"
            "    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])\n"
            "    x, y = np.zeros((8, 2), 'float32'), np.zeros((8, 1), 'float32')\n"
            f"    {body}\n")


MALFORMED = {
    "no model": (_builder_source('return {"loss": "mse", "x": x, "y": y}'), 'build() returned no "model"'),
    "no loss": (_builder_source('return {"model": model, "x": x, "y": y}'), 'build() returned no "loss"'),
    "model not a model": (NOT_A_MODEL, '"model" must be a keras.Model, got list'),
    "unknown key": (_builder_source('return {"model": model, "loss": "mse", "x": x, "y": y, "lr": 1}'),
                    "build() returned unknown keys 'lr'"),
    "x and dataset": (_builder_source('return {"model": model, "loss": "mse", "x": x, "y": y, '
                                      '"dataset": tf.data.Dataset.from_tensor_slices((x, y)).batch(2)}'),
                      'build() returned both "x"/"y" and "dataset"'),
    "compiled": (_builder_source('model.compile(optimizer="adam", loss="mse"); '
                                 'return {"model": model, "loss": "mse", "x": x, "y": y}'), '"model" is compiled'),
    "no data": (_builder_source('return {"model": model, "loss": "mse"}'), "build() returned no training data"),
    "x without y": (_builder_source('return {"model": model, "loss": "mse", "x": x}'), 'returned "x" but no "y"'),
    "rows differ": (_builder_source('return {"model": model, "loss": "mse", "x": x, "y": y[:5]}'),
                    '"x" has 8 rows but "y" has 5'),
    "not a dataset": (_builder_source('return {"model": model, "loss": "mse", "dataset": [x, y]}'),
                      '"dataset" must be a tf.data.Dataset, got list'),
    "infinite dataset": (_builder_source('return {"model": model, "loss": "mse", '
                                         '"dataset": tf.data.Dataset.from_tensor_slices((x, y)).batch(2).repeat()}'),
                         '"dataset" is infinite'),
    "bad epochs": (_builder_source('return {"model": model, "loss": "mse", "x": x, "y": y, "epochs": 0}'),
                   '"epochs" must be an integer >= 1, got 0'),
    "epochs and steps": (_builder_source('return {"model": model, "loss": "mse", "x": x, "y": y, "epochs": 1, '
                                         '"steps": 3}'), 'both "epochs" and "steps"'),
    "bad validation": (_builder_source('return {"model": model, "loss": "mse", "x": x, "y": y, '
                                       '"validation_data": (x,)}'), '"validation_data" must be an (x, y) tuple'),
    "metrics not a list": (_builder_source('return {"model": model, "loss": "mse", "x": x, "y": y, "metrics": "mae"}'),
                           '"metrics" must be a list, got str'),
    "not a dict": ("def build():\n    return [1]\n", "build() must return a dict, got list"),
    "not callable": ("build = 3\n", "build is not callable (a int)"),
    "no attribute": ("def other():\n    return {}\n", "has no attribute 'build'"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_builders_are_one_line_errors_with_exit_code_2(case, tmp_path, capsys):
    source, message = MALFORMED[case]
    model = _write(tmp_path, source)
    code = cli.main(["compare", "--model", f"{model}:build", "--seeds", "1", "--grid", "0.01", "--quiet",
                     "--output-dir", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and "Traceback" not in err and err.count("\n") == 1, err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("spec, message", [("no/such/file.py:build", "no such file 'no/such/file.py'"),
                                           ("no_such_package_xyz.models:build", "no module named"),
                                           (":build", "expected path/to/file.py:build")])
def test_builders_that_cannot_be_found(spec, message, capsys):
    assert cli.main(["compare", "--model", spec, "--quiet"]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_builder_errors_are_value_and_type_errors():
    with pytest.raises(ValueError, match="got list"):
        check_build([1])
    with pytest.raises(TypeError, match='"model" must be a keras.Model, got str'):
        check_build({"model": "mlp", "loss": "mse", "x": np.zeros(2), "y": np.zeros(2)})
    assert issubclass(BuilderError, ValueError) and issubclass(BuilderError, TypeError)


def test_baselines_and_grids():
    labels = [spec.label for spec in resolve_specs(["Adam", "AdamW", "RMSprop"], None)]
    assert labels == ["HyperAdam", "Adam", "AdamW", "RMSprop"]
    specs = resolve_specs(["Adam", "AdamW"], None)
    assert specs[1].grid == specs[2].grid == DEFAULT_GRIDS["Adam"]
    assert isinstance(specs[2].factory(0.01), keras.optimizers.AdamW)
    assert resolve_specs(["Adam"], {"Adam": [0.1, 0.2]})[1].grid == (0.1, 0.2)
    with pytest.raises(ValueError, match="unknown baseline 'Lion'"):
        resolve_specs(["Lion"], None)


RECORDED: list[list[str]] = []


def _record(batch: np.ndarray) -> np.float32:
    RECORDED[-1].append(hashlib.sha256(np.ascontiguousarray(batch).tobytes()).hexdigest())
    return np.float32(0)


class _RecordBatches(keras.layers.Layer):
    """Identity; in training it records a hash of every batch it sees into RECORDED[-1]."""

    def call(self, x, training=False):
        if training:
            token = tf.numpy_function(_record, [x], tf.float32, stateful=True)
            x = x + tf.cast(tf.reshape(token, ()), x.dtype) * 0
        return x


def _recording_builder(use_dataset: bool):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(60, 5)).astype("float32")
    y = rng.normal(size=(60, 1)).astype("float32")
    calls = []

    def build() -> dict:
        RECORDED.append([])
        calls.append(1)
        # A different initializer seed on every call: compare must still start each seed's runs alike.
        model = keras.Sequential([keras.Input((5,)), _RecordBatches(),
                                  keras.layers.Dense(1, kernel_initializer=keras.initializers.RandomNormal(seed=len(calls)))])
        data = {"model": model, "loss": "mse"}
        if use_dataset:  # an unseeded shuffle: the same for every optimizer of a seed (seeded globally)
            data.update(dataset=tf.data.Dataset.from_tensor_slices((x, y)).shuffle(60).batch(16), steps=10)
        else:
            data.update(x=x, y=y, batch_size=16, epochs=2)
        return data

    return build


class _CountSteps(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.steps = 0

    def on_train_batch_end(self, batch, logs=None):
        self.steps += 1


@pytest.mark.parametrize("use_dataset", [False, True], ids=["arrays", "dataset"])
def test_every_optimizer_of_a_seed_sees_the_same_weights_and_batches(use_dataset):
    RECORDED.clear()
    counter = _CountSteps()
    results = compare(_recording_builder(use_dataset), seeds=1, grid=[0.01], tune_seeds=1, callbacks=[counter],
                      progress=False)
    # build() calls in order: the check before training (no batches); HyperAdam seed 0; Adam on the tuning
    # seed (one grid point); Adam seed 0.
    checked, hyperadam, tuning, adam = RECORDED
    assert checked == []
    steps = 10 if use_dataset else 2 * 4
    assert len(hyperadam) == len(tuning) == len(adam) == steps and counter.steps == 3 * steps
    assert hyperadam == adam and hyperadam != tuning
    runs = [results["optimizers"][label]["runs"][0] for label in ("HyperAdam", "Adam")]
    assert runs[0]["initial_weights_sha256"] == runs[1]["initial_weights_sha256"]
    assert runs[0]["curve"][0] == runs[1]["curve"][0]
    if not use_dataset:  # each epoch is its own permutation of all 60 samples
        assert hyperadam[:4] != hyperadam[4:]
        order = array_order(60, 0, 2)
        assert sorted(order[0]) == sorted(order[1]) == list(range(60)) and list(order[0]) != list(order[1])


def test_mixed_precision_policy():
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        RECORDED.clear()
        results = compare(_recording_builder(False), seeds=1, grid=[0.01], progress=False)
    finally:
        keras.config.set_dtype_policy(previous)
    assert results["data"]["dtype_policy"] == "mixed_float16"
    for entry in results["optimizers"].values():
        assert entry["runs"][0]["finite"] and math.isfinite(entry["summary"]["final_loss"]["mean"])
