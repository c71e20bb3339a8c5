"""`lab/eval/adaptivity.py`: the effective step RMS(Δw) / α_t against weights recorded independently, and
Spearman's rank correlation on hand-derivable cases."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from hyperadam_keras import PAPER_SETTINGS, HyperAdam
from hyperadam_keras.lab.eval import adaptivity


def test_ranks_and_spearman_by_hand():
    np.testing.assert_array_equal(adaptivity.ranks([3.0, 1.0, 2.0]), [3, 1, 2])
    np.testing.assert_array_equal(adaptivity.ranks([1.0, 2.0, 2.0, 5.0]), [1, 2.5, 2.5, 4])
    assert adaptivity.spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert adaptivity.spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    # d = (0, 0, 1, -1): 1 - 6 Σd² / (n (n² - 1)) = 1 - 12 / 60 = 0.8
    assert adaptivity.spearman([1, 2, 3, 4], [1, 2, 4, 3]) == pytest.approx(0.8)
    with pytest.raises(ValueError, match="same length"):
        adaptivity.spearman([1, 2], [1])


def test_the_first_effective_step_of_a_fixed_mixture_is_its_weight_sum():
    """Hand-derivable: at the first update every bias-corrected candidate is sign(g) = ±1 per coordinate
    and ρ is the same on every coordinate of a model far from the bundle's inputs, so RMS(Δw) / α is
    |Σ_j ρ_j| (about 5.2 for the shipped bundle; `benchmarks/task_adaptivity.py`), uncapped."""
    variable = tf.Variable(np.linspace(-1, 1, 50).astype(np.float32))
    optimizer = HyperAdam(**PAPER_SETTINGS)
    grad = tf.constant(np.linspace(1, 2, 50).astype(np.float32))
    before = variable.numpy().copy()
    optimizer.apply_gradients([(grad, variable)])
    rms = np.sqrt(np.mean((variable.numpy() - before) ** 2)) / adaptivity.step_size_used(optimizer, 1)
    assert 5.0 < rms < 5.4


def test_fit_recorder_matches_weights_recorded_apart():
    """The callback's RMS(Δw) / α_t equals one computed from `get_weights()` around each batch, with the
    default's decay (decay_after=2, so α_t shrinks from update 3 on)."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 4)).astype(np.float32)
    y = (x @ rng.normal(size=(4, 1))).astype(np.float32)

    class Apart(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.values = []

        def on_train_batch_begin(self, batch, logs=None):
            self.before = np.concatenate([w.ravel() for w in self.model.get_weights()])

        def on_train_batch_end(self, batch, logs=None):
            after = np.concatenate([w.ravel() for w in self.model.get_weights()])
            s = int(self.model.optimizer.iterations)
            alpha = 0.01 * np.sqrt(2 / max(s, 2))
            self.values.append(np.sqrt(np.mean((after - self.before) ** 2)) / alpha)

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3), keras.layers.Dense(1)])
    model.compile(optimizer=HyperAdam(learning_rate=0.01, decay_after=2, max_relative_step=None), loss="mse")
    recorder, apart = adaptivity.EffectiveStepRecorder(), Apart()
    model.fit(x, y, batch_size=8, epochs=2, verbose=0, shuffle=False, callbacks=[apart, recorder])
    assert len(recorder.steps) == 8
    np.testing.assert_allclose(recorder.steps, apart.values, rtol=1e-5)
    summary = adaptivity.summarize(recorder.steps)
    assert summary["rms"] == pytest.approx(np.sqrt(np.mean(np.square(apart.values))), rel=1e-5)
    assert summary["updates"] == 8


def test_script_measures_a_task_resumes_reports_and_records_the_cap_and_warmup(tmp_path, capsys):
    """`benchmarks/task_adaptivity.py --effective-step` on a 100-step task: tuned Adam's rate comes from the
    committed suite results, a re-run skips what the JSON has, and the report says the spread. Under
    `--max-relative-step none` it measures the uncapped update: on the paper's MLP (weights N(0, 0.1²)) the
    default's 3 % cap binds, so the uncapped effective step is larger (a cap only shrinks steps); each JSON
    records its cap."""
    import json

    from test_floor import load_script

    script = load_script("task_adaptivity")
    path = tmp_path / "effective.json"
    args = ["--effective-step", "--suites", "paper-table1", "--tasks", "mlp-1x20-relu", "--json", str(path)]
    script.main(args)
    recorded = json.loads(path.read_text())
    first = recorded["tasks"]
    assert [row["task"] for row in first] == ["mlp-1x20-relu"]
    assert first[0]["tuned_adam_rate"] == script.tuned_adam_rates(script.SUITE_RESULTS["paper-table1"])["mlp-1x20-relu"]
    assert first[0]["updates"] == 100 and first[0]["rms"] > 0
    assert recorded["max_relative_step"] == "settings' own"  # the optimizer's default, 0.03
    capsys.readouterr()
    script.main(args)
    out = capsys.readouterr().out
    assert "paper-table1:mlp-1x20-relu:" not in out  # resumed, not re-run
    assert json.loads(path.read_text())["tasks"] == first
    assert "Effective step over 1 tasks" in out and "| paper-table1 | mlp-1x20-relu | 100 |" in out

    uncapped_path = tmp_path / "effective-none.json"
    script.main([*args[:-1], str(uncapped_path), "--max-relative-step", "none"])
    uncapped = json.loads(uncapped_path.read_text())
    assert uncapped["max_relative_step"] is None and "--max-relative-step none" in uncapped["command"]
    assert uncapped["tasks"][0]["rms"] > 1.05 * first[0]["rms"]  # 3.71 against 3.32 with run10's bundle

    warm_path = tmp_path / "effective-warm.json"
    script.main([*args[:-1], str(warm_path), "--warmup-steps", "50"])
    warm = json.loads(warm_path.read_text())
    assert warm["warmup_steps"] == 50 and "--warmup-steps 50" in warm["command"] and "warmup_steps" not in recorded
    # The measure is per unit of the step used, α·min(1, s/50): the warm-up changes it only through the 3 % cap,
    # which binds less on the smaller early steps (4.56 against 3.32 with run10's bundle).
    assert warm["tasks"][0]["rms"] > 1.05 * first[0]["rms"]
