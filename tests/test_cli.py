"""The `meta-train` and `inspect` subcommands of `hyperadam-keras`."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import tensorflow as tf

from hyperadam_keras import default_bundle_path, load_meta_params, random_meta_params, read_bundle_metadata
from hyperadam_keras import cli
from hyperadam_keras.lab.inspect_bundle import gate_statistics
from hyperadam_keras.lab.meta.meta_train import MetaTrainConfig
from hyperadam_keras.cli.meta_train import HELP

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
    assert "J = 20, H = 20" in capsys.readouterr().out


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
