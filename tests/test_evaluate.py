"""The evaluation engine on tiny tasks whose answers are derivable by hand."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest

from hyperadam_keras.defaults import DEFAULT_LEARNING_RATE
import tensorflow as tf

from hyperadam_keras import HyperAdam
from hyperadam_keras.lab.eval import evaluate
from hyperadam_keras.lab.eval import suites
from hyperadam_keras.bundle import default_bundle_path
from hyperadam_keras.lab.eval.evaluate import OptimizerSpec, Trainer, summarize, tune_learning_rate


class TinyQuadratic:
    """loss(w; x) = 0.5 ||w - x||² over two variables, x = noise · N(0, 1) drawn from (seed, step);
    full loss 0.5 ||w||²; test loss 0.5 ||w - 1||². With noise 0 and plain SGD at rate lr,
    w_t = (1 - lr)^t w_0, so every loss is known in closed form."""

    def __init__(self, noise: float = 0.0, numpy_batches: bool = False):
        self.noise = noise
        self.numpy_batches = numpy_batches  # a batch op XLA cannot compile (tests the fallback)
        self.shapes = [(3,), (2, 2)]

    def init_params(self, seed: int) -> list[tf.Tensor]:
        return [tf.random.stateless_normal(shape, seed=[seed, 1000 + i]) for i, shape in enumerate(self.shapes)]

    def sample_batch(self, seed, step):
        key = tf.stack([tf.cast(seed, tf.int32), tf.cast(step, tf.int32)])
        batch = [self.noise * tf.random.stateless_normal(shape, seed=key + i) for i, shape in enumerate(self.shapes)]
        if self.numpy_batches:
            batch = [tf.numpy_function(lambda x: x, [b], tf.float32, stateful=False) for b in batch]
        return batch

    def loss(self, params, batch):
        return 0.5 * tf.add_n([tf.reduce_sum(tf.square(w - x)) for w, x in zip(params, batch)])

    def full_loss(self, params):
        return 0.5 * tf.add_n([tf.reduce_sum(tf.square(w)) for w in params])

    def test_metrics(self, params):
        return {"test_loss": float(0.5 * sum(float(tf.reduce_sum(tf.square(w - 1.0))) for w in params))}


def sgd_spec(grid=()) -> OptimizerSpec:
    return OptimizerSpec(label="SGD", factory=lambda lr: keras.optimizers.SGD(learning_rate=lr),
                         default_lr=0.1, grid=tuple(grid))


def initial_sq_norm(task: TinyQuadratic, seed: int) -> float:
    return float(sum(np.sum(np.square(p.numpy())) for p in task.init_params(seed)))


def test_summarize_matches_hand_computed_values():
    stats = summarize([1.0, 2.0, 3.0, 4.0, math.nan, math.inf])
    assert stats["mean"] == pytest.approx(2.5)
    assert stats["std"] == pytest.approx(math.sqrt(5.0 / 3.0))  # sample std: sum of squares 5, n - 1 = 3
    assert (stats["min"], stats["max"], stats["n"], stats["n_nonfinite"]) == (1.0, 4.0, 4, 2)
    assert summarize([0.7]) == {"mean": 0.7, "std": 0.0, "min": 0.7, "max": 0.7, "n": 1, "n_nonfinite": 0}
    assert math.isnan(summarize([math.nan])["mean"]) and summarize([math.nan])["n_nonfinite"] == 1


def test_trainer_follows_the_closed_form_sgd_trajectory_in_chunks():
    task = TinyQuadratic()
    trainer = Trainer(task, keras.optimizers.SGD(learning_rate=0.1), chunk_size=4)
    lr, steps, seed = 0.25, 10, 3
    result = trainer.run(seed, steps, lr)
    s0 = initial_sq_norm(task, seed)
    expected = [0.5 * s0 * (1 - lr) ** (2 * t) for t in range(steps)]  # loss before the update of step t
    np.testing.assert_allclose(result.curve, expected, rtol=1e-5)
    assert result.final_loss == pytest.approx(0.5 * s0 * (1 - lr) ** (2 * steps), rel=1e-5)
    final = [p.numpy() for p in trainer.params()]
    expected_test = 0.5 * sum(np.sum(np.square(w - 1.0)) for w in final)
    assert result.test == {"test_loss": pytest.approx(expected_test)}
    assert result.finite and result.learning_rate == lr and len(result.curve) == steps


def test_trainer_runs_a_schedule_from_step_zero_on_every_run():
    task = TinyQuadratic()
    schedule = keras.optimizers.schedules.PiecewiseConstantDecay(boundaries=[3], values=[0.25, 0.1])
    trainer = Trainer(task, keras.optimizers.SGD(learning_rate=schedule), chunk_size=4)
    rates = [0.25 if t <= 3 else 0.1 for t in range(10)]  # Keras: values[0] while step <= boundary
    s0 = initial_sq_norm(task, 3)
    expected = [0.5 * s0 * np.prod([(1 - r) ** 2 for r in rates[:t]]) for t in range(10)]
    for _ in range(2):  # the second run restarts the schedule with the iteration counter
        result = trainer.run(3, 10, learning_rate=None)
        np.testing.assert_allclose(result.curve, expected, rtol=1e-5)
        assert result.learning_rate == 0.25
    with pytest.raises(TypeError, match="not settable"):
        trainer.run(3, 10, learning_rate=0.5)  # Keras refuses a float over a schedule: why None exists


def test_runs_are_deterministic_and_reset_weights_and_optimizer_state():
    task = TinyQuadratic(noise=0.5)
    trainer = Trainer(task, keras.optimizers.Adam(learning_rate=0.01), chunk_size=7)
    first = trainer.run(1, 20, 0.05)
    trainer.run(2, 20, 0.3)  # a different seed and rate in between changes weights, moments, iterations
    again = trainer.run(1, 20, 0.05)
    np.testing.assert_array_equal(first.curve, again.curve)
    assert first.final_loss == again.final_loss
    fresh = Trainer(task, keras.optimizers.Adam(learning_rate=0.05), chunk_size=20).run(1, 20, 0.05)
    np.testing.assert_allclose(fresh.curve, first.curve, rtol=1e-6)
    other_seed = trainer.run(2, 20, 0.05)
    assert not np.allclose(other_seed.curve, first.curve)
    # HyperAdam's six state slots are reset too.
    hyper = Trainer(task, HyperAdam(), chunk_size=10, jit_compile=False)
    first, _, again = hyper.run(1, 10, 0.005), hyper.run(2, 10, 0.01), hyper.run(1, 10, 0.005)
    np.testing.assert_array_equal(first.curve, again.curve)
    assert first.final_loss == again.final_loss < first.curve[0]


def test_tuning_picks_the_known_best_rate_and_treats_divergence_as_worst():
    # f(lr) = (log10 lr + 2)^2 is minimal at lr = 0.01; lr = 0.3 returns NaN for one seed.
    calls = []

    def run(seed, lr):
        calls.append((seed, lr))
        return math.nan if lr == 0.3 and seed == 1 else (math.log10(lr) + 2) ** 2 + 0.001 * seed

    result = tune_learning_rate(run, [0.3, 0.001, 0.003, 0.01, 0.03], seeds=[0, 1])
    assert result.best_lr == 0.01 and not result.at_edge
    assert result.grid == [0.001, 0.003, 0.01, 0.03, 0.3]
    assert result.mean(0.01) == pytest.approx(0.0005)
    assert result.mean(0.3) == math.inf
    assert sorted(calls) == sorted((s, lr) for s in (0, 1) for lr in result.grid)  # each point once per seed


def test_tuning_extends_the_grid_at_its_edge():
    # On the noiseless quadratic, SGD's final loss is 0.5 |w0|^2 (1 - lr)^(2T): best at lr = 1.
    # Grid {0.1, 0.3}: 0.3 is at the edge -> 0.9 is tried (better), still the edge -> 2.7 (diverging);
    # 0.9 is then interior: the answer.
    task = TinyQuadratic()
    trainer = Trainer(task, keras.optimizers.SGD(learning_rate=0.1), chunk_size=10)
    result = tune_learning_rate(lambda seed, lr: trainer.run(seed, 10, lr).final_loss, [0.1, 0.3], seeds=[7])
    assert result.grid == [0.1, 0.3, 0.9, 2.7]
    assert result.best_lr == 0.9 and not result.at_edge
    s0 = initial_sq_norm(task, 7)
    for lr in result.grid:
        assert result.mean(lr) == pytest.approx(0.5 * s0 * (1 - lr) ** 20, rel=1e-4)
    no_extension = tune_learning_rate(lambda seed, lr: trainer.run(seed, 10, lr).final_loss, [0.1, 0.3],
                                      seeds=[7], max_extensions=0)
    assert no_extension.best_lr == 0.3 and no_extension.at_edge


def test_evaluate_task_tunes_on_separate_seeds_and_runs_hyperadam_untuned():
    task = TinyQuadratic()
    specs = [evaluate.hyperadam_spec(None, label="HyperAdam"), sgd_spec(grid=(0.1, 0.5, 1.0, 1.5, 1.9))]
    seeds, tune = [0, 1, 2], evaluate.tuning_seeds(2)
    assert set(seeds).isdisjoint(tune)
    out = evaluate.evaluate_task(task, specs, steps=12, seeds=seeds, tune_seeds=tune, chunk_size=6,
                                 jit_compile=False)  # tiny task: a graph compiles faster than XLA
    hyper, sgd = out["HyperAdam"], out["SGD"]
    assert hyper["tuning"] is None and hyper["learning_rate"] == DEFAULT_LEARNING_RATE
    assert hyper["optimizer"]["kind"] == "hyperadam" and hyper["optimizer"]["num_candidates"] == 8
    assert sgd["tuning"]["seeds"] == tune and sgd["learning_rate"] == 1.0  # (1 - lr) = 0 is optimal
    assert [r["seed"] for r in sgd["runs"]] == seeds
    finals = [r["final_loss"] for r in hyper["runs"]]
    assert hyper["final_loss"]["mean"] == pytest.approx(np.mean(finals))
    assert hyper["final_loss"]["std"] == pytest.approx(np.std(finals, ddof=1))
    assert all(len(r["curve"]) == 12 and r["finite"] for r in hyper["runs"])
    # HyperAdam makes progress: each seed's final loss is below its initial full loss.
    for run in hyper["runs"]:
        assert run["final_loss"] < 0.5 * initial_sq_norm(task, run["seed"])
    assert set(hyper["test"]) == {"test_loss"}


def test_trainer_falls_back_from_xla_to_a_graph_when_xla_cannot_compile():
    task = TinyQuadratic(numpy_batches=True)
    trainer = Trainer(task, keras.optimizers.SGD(learning_rate=0.1), chunk_size=5, jit_compile=True)
    result = trainer.run(0, 5, 0.5)
    assert trainer.jit_compile is False
    s0 = initial_sq_norm(task, 0)
    assert result.final_loss == pytest.approx(0.5 * s0 * 0.5 ** 10, rel=1e-5)


def test_time_to_target_counts_steps_until_the_full_loss_reaches_the_target():
    task = TinyQuadratic()
    trainer = Trainer(task, keras.optimizers.SGD(learning_rate=0.1), chunk_size=100)
    s0 = initial_sq_norm(task, 0)
    # loss after n steps at lr 0.5: 0.5 s0 0.25^n; target between n = 5 and n = 6 -> checked every 2: 6
    target = 0.5 * s0 * 0.25 ** 5.5
    out = evaluate.time_to_target(trainer, 0, 0.5, target, max_steps=20, check_every=2)
    assert out["reached"] and out["steps"] == 6 and out["seconds"] > 0
    never = evaluate.time_to_target(trainer, 0, 0.01, target, max_steps=4, check_every=2)
    assert not never["reached"] and never["steps"] is None


def test_suites_are_data_and_a_user_can_add_one(tmp_path):
    for name in ("paper-table1", "paper-deep", "paper-cnn", "paper-lstm", "paper-long", "ablation-j",
                 "quick", "bench"):
        assert name in suites.SUITES
    table1 = suites.get_suite("paper-table1")
    assert [t.kwargs["activation"] for t in table1.tasks] == ["sigmoid", "relu", "elu", "tanh"]
    assert [t.reference[suites.PAPER_ADAM] for t in table1.tasks] == [0.35, 0.32, 0.31, 0.34]
    assert [t.reference[suites.PAPER_HYPERADAM] for t in table1.tasks] == [0.33, 0.29, 0.28, 0.36]
    assert [t.kwargs["hidden_layers"] for t in suites.get_suite("paper-deep").tasks] == list(range(1, 11))
    assert [t.num_steps(long) for t in suites.get_suite("paper-cnn").tasks for long in (False, True)] == \
        [2000, 10000, 2000, 10000]
    lstm = suites.get_suite("paper-lstm").tasks
    assert [(t.reference[suites.PAPER_ADAM], t.reference[suites.PAPER_HYPERADAM]) for t in lstm] == \
        [(0.65, 0.42), (0.39, 0.19), (0.51, 0.26)]

    suites.register_task_kind("tiny-quadratic", TinyQuadratic)
    path = tmp_path / "suite.json"
    path.write_text('{"name": "tiny", "description": "two tiny quadratics", "baselines": ["SGD-momentum"],'
                    ' "seeds": 2, "tune_seeds": 1, "tasks": ['
                    ' {"name": "clean", "kind": "tiny-quadratic", "steps": 8, "grids": {"SGD-momentum": [0.01, 0.1]}},'
                    ' {"name": "noisy", "kind": "tiny-quadratic", "steps": 8, "kwargs": {"noise": 0.2},'
                    '  "reference": {"paper": 0.5}}]}')
    suite = suites.load_suite_file(path)
    assert suites.get_suite("tiny") is suite and suite.tasks[1].kwargs == {"noise": 0.2}
    assert isinstance(suites.build_task(suite.tasks[1]), TinyQuadratic)
    assert suites.build_task(suite.tasks[1]).noise == 0.2
    clean, noisy = (evaluate.suite_optimizers(suite, task, [None]) for task in suite.tasks)
    assert [o.label for o in clean] == ["HyperAdam", "SGD-momentum"]
    assert clean[1].grid == (0.01, 0.1) and noisy[1].grid == evaluate.DEFAULT_GRIDS["SGD-momentum"]
    assert not clean[0].tuned and clean[0].default_lr == DEFAULT_LEARNING_RATE
    two = evaluate.suite_optimizers(suite, suite.tasks[0], [None, str(default_bundle_path())], ["Adam"])
    assert [o.label for o in two] == ["HyperAdam[default, J=8]", "HyperAdam[default, J=8] #2", "Adam"]
