"""The run cache of the evaluation engine (`run_suite(cache_dir=...)`, `--cache-dir`): a second run
trains nothing, a new bundle reuses every baseline run, a corrupt file is re-run, keys are specific."""

from __future__ import annotations

import dataclasses
import json
import math
import shutil

import numpy as np
import pytest

from hyperadam_keras.defaults import DEFAULT_LEARNING_RATE

from hyperadam_keras import cli
from hyperadam_keras.lab.eval import cache as cache_module
from hyperadam_keras.lab.eval import evaluate
from hyperadam_keras.lab.eval import suites
from hyperadam_keras.bundle import save_meta_params
from hyperadam_keras.lab.eval.evaluate import RunCache, RunResult
from hyperadam_keras.meta_params import random_meta_params
from test_evaluate import TinyQuadratic, sgd_spec


def tiny_suite(seeds: int = 2, task_name: str = "quad") -> suites.Suite:
    suites.register_task_kind("tiny-quadratic", TinyQuadratic)
    return suites.Suite(name="tiny-cache", description="a tiny quadratic", baselines=("SGD-momentum",),
                        seeds=seeds, tune_seeds=1,
                        tasks=(suites.TaskSpec(name=task_name, kind="tiny-quadratic", kwargs={"noise": 0.1},
                                               steps=6, grids={"SGD-momentum": (0.01, 0.1, 0.3)}),))


def run_suite(suite: suites.Suite, cache_dir, **kwargs) -> dict:
    # tiny task: a graph compiles faster than XLA
    return evaluate.run_suite(suite, progress=False, jit_compile=False, chunk_size=3, cache_dir=cache_dir,
                              **kwargs)


TIMINGS = ("seconds", "seconds_per_run")  # a run trained again takes other seconds


def numbers(results: dict, label: str | None = None, drop: tuple[str, ...] = ()) -> str:
    """The results of every task (final losses, curves, rates, tuning, statistics) as JSON text, without
    the keys `drop` in each optimizer's record and in each run."""
    def clean(record: dict) -> dict:
        record = {k: v for k, v in record.items() if k not in drop}
        return {**record, "runs": [{k: v for k, v in r.items() if k not in drop} for r in record["runs"]]}

    tasks = [{name: clean(record) for name, record in t["results"].items()} for t in results["tasks"]]
    return json.dumps([t[label] for t in tasks] if label else tasks, sort_keys=True)


@pytest.fixture
def trained(monkeypatch) -> list:
    """(optimizer class, seed, learning rate) of every run actually trained."""
    calls = []
    original = evaluate.Trainer.run

    def counting_run(self, seed, steps, learning_rate, progress=None):
        calls.append((type(self.optimizer).__name__, seed, learning_rate))
        return original(self, seed, steps, learning_rate, progress)

    monkeypatch.setattr(evaluate.Trainer, "run", counting_run)
    return calls


def test_run_results_round_trip_through_json():
    rng = np.random.default_rng(0)
    long_curve = rng.normal(1.0, 0.1, 4001).astype(np.float32)  # 4001 steps: means over blocks of 3
    long_curve[7] = np.nan
    long = RunResult(seed=3, learning_rate=0.02, curve=long_curve, final_loss=math.inf,
                     test={"test_loss": math.nan, "accuracy": 0.25}, seconds=1.23456789)
    short = RunResult(seed=0, learning_rate=0.1, curve=rng.normal(0.0, 1.0, 10).astype(np.float32),
                      final_loss=0.123456789, test=None, seconds=0.5)
    for run in (long, short):
        written = json.loads(json.dumps(run.to_json()))  # strict JSON: "nan"/"inf" as strings
        restored = RunResult.from_json(written)
        assert restored.to_json() == run.to_json() and restored.finite == run.finite
        assert restored.to_json(with_curve=False) == run.to_json(with_curve=False)
    assert written["curve_block"] == 1 and restored.curve.dtype == np.float32
    np.testing.assert_array_equal(restored.curve, short.curve)  # float32 values, exactly
    long_json = long.to_json()
    assert long_json["curve_block"] == 3 and len(long_json["curve"]) == 1333 and long_json["curve"][2] == "nan"
    assert long_json["final_loss"] == "inf" and not RunResult.from_json(long_json).finite


def test_a_second_run_with_the_same_cache_trains_nothing_and_gives_the_same_numbers(tmp_path, trained):
    suite = tiny_suite()
    first = run_suite(suite, tmp_path)
    count = len(trained)
    assert count == len({*trained}) > 0  # every run trained once
    assert first["cache"] == {"directory": str(tmp_path), "runs": count, "from_cache": 0, "trained": count}
    assert len(list(tmp_path.glob("*.json"))) == count and not list(tmp_path.glob("*.tmp"))
    second = run_suite(suite, tmp_path)
    assert len(trained) == count  # nothing trained again
    assert second["cache"]["from_cache"] == count and second["cache"]["trained"] == 0
    assert second["tasks"][0]["runs_from_cache"] == count
    assert numbers(second) == numbers(first)
    assert second["tasks"][0]["results"]["SGD-momentum"]["tuning"]["best_lr"] == \
        first["tasks"][0]["results"]["SGD-momentum"]["tuning"]["best_lr"]
    # the cached runs are the runs: an uncached suite gives the same numbers but for the timings
    uncached = run_suite(suite, None)
    assert uncached["cache"] is None and "runs_from_cache" not in uncached["tasks"][0]
    assert numbers(uncached, drop=TIMINGS) == numbers(second, drop=TIMINGS)


def test_a_new_bundle_reruns_hyperadam_and_reuses_every_baseline_run(tmp_path, trained):
    bundle = save_meta_params(random_meta_params(num_candidates=3, hidden=2, seed=1), tmp_path / "random")
    cache = tmp_path / "cache"
    first = run_suite(tiny_suite(), cache)
    baseline_runs = sum(1 for c in trained if c[0] != "HyperAdam")
    trained.clear()
    second = run_suite(tiny_suite(), cache, bundles=[str(bundle)])
    assert trained == [("HyperAdam", 0, DEFAULT_LEARNING_RATE), ("HyperAdam", 1, DEFAULT_LEARNING_RATE)]
    assert second["cache"]["from_cache"] == baseline_runs and second["cache"]["trained"] == 2
    assert numbers(second, "SGD-momentum") == numbers(first, "SGD-momentum")
    assert numbers(second, "HyperAdam") != numbers(first, "HyperAdam")
    # Neither the bundle's path nor the task's display name is in the key: a copy and a rename hit.
    copy = shutil.copytree(bundle, tmp_path / "copy")
    third = run_suite(tiny_suite(task_name="renamed"), cache, bundles=[str(copy)])
    assert len(trained) == 2 and third["cache"]["trained"] == 0
    assert numbers(third, drop=("optimizer",)) == numbers(second, drop=("optimizer",))  # it names the path


def test_a_corrupt_cache_file_is_rerun_and_replaced(tmp_path, trained, capsys):
    first = run_suite(tiny_suite(), tmp_path)
    count = len(trained)
    half, wrong = sorted(tmp_path.glob("*.json"))[:2]
    half.write_text(half.read_text()[:100])  # a half-written file
    wrong.write_text(json.dumps({"key": wrong.stem, "xla": False, "run": {"seed": 0}}))  # JSON, not a run
    capsys.readouterr()
    second = run_suite(tiny_suite(), tmp_path)
    assert len(trained) == count + 2 and second["cache"]["trained"] == 2
    warnings = [line for line in capsys.readouterr().err.splitlines() if "run cache" in line]
    assert len(warnings) == 2 and all(line.startswith("warning: run cache: ignoring unreadable") for line in warnings)
    for path in (half, wrong):
        assert json.loads(path.read_text())["key"] == path.stem  # rewritten whole
    assert numbers(second, drop=TIMINGS) == numbers(first, drop=TIMINGS)
    third = run_suite(tiny_suite(), tmp_path)
    assert len(trained) == count + 2 and third["cache"]["from_cache"] == count


def test_another_seed_or_learning_rate_is_a_miss(tmp_path, trained):
    first = run_suite(tiny_suite(), tmp_path)
    trained.clear()
    run_suite(tiny_suite(seeds=3), tmp_path)  # seeds 0, 1 and the tuning runs are cached; seed 2 is new
    best = first["tasks"][0]["results"]["SGD-momentum"]["learning_rate"]
    assert sorted(trained) == [("HyperAdam", 2, DEFAULT_LEARNING_RATE), ("SGD", 2, best)]

    # One optimizer, one task, by evaluate_task: another rate misses; hits still advance the progress.
    trained.clear()
    cache, task, task_key = RunCache(tmp_path / "unit"), TinyQuadratic(), {"kind": "tiny", "kwargs": {}, "steps": 4}
    steps_done = []
    for lr in (0.1, 0.1, 0.2):
        spec = dataclasses.replace(sgd_spec(), default_lr=lr)
        evaluate.evaluate_task(task, [spec], 4, [0], [], chunk_size=4, jit_compile=False, cache=cache,
                               task_key=task_key, progress=steps_done.append)
    assert trained == [("SGD", 0, 0.1), ("SGD", 0, 0.2)] and sum(steps_done) == 12
    with pytest.raises(ValueError, match="task_key"):
        evaluate.evaluate_task(task, [sgd_spec()], 4, [0], [], cache=cache)
    # A loop that XLA could not compile ran as a graph: a cached run says so too.
    trained.clear()
    xla_task, xla_key = TinyQuadratic(numpy_batches=True), {**task_key, "kwargs": {"numpy_batches": True}}
    for _ in range(2):
        out = evaluate.evaluate_task(xla_task, [sgd_spec()], 4, [0], [], chunk_size=4, jit_compile=True,
                                     cache=cache, task_key=xla_key)
        assert out["SGD"]["xla"] is False
    assert len(trained) == 1

    # The key: every input that changes the run changes it.
    optimizer = {"class": "keras.optimizers.SGD", "config": {"momentum": 0.9}}
    base = dict(task=task_key, optimizer=optimizer, learning_rate=0.1, seed=0, jit_compile=True, chunk_size=100)
    changes = [{"seed": 1}, {"learning_rate": 0.2}, {"jit_compile": False}, {"chunk_size": 50},
               {"task": {**task_key, "steps": 5}}, {"task": {**task_key, "kwargs": {"noise": 0.1}}},
               {"optimizer": {**optimizer, "config": {"momentum": 0.5}}}]
    keys = [evaluate.run_key(evaluate.run_identity(**{**base, **change})) for change in [{}, *changes]]
    assert len(set(keys)) == len(keys)
    assert evaluate.run_key(evaluate.run_identity(**base)) == keys[0]  # and nothing else does


def test_optimizer_identity_holds_hyper_parameters_and_the_meta_parameters_fingerprint():
    hyper = evaluate.hyperadam_spec(None, label="HyperAdam[default, J=8]")
    identity = evaluate.optimizer_identity(hyper, hyper.factory(0.005))
    assert identity["config"]["meta_params"] == {"sha256": hyper.info["sha256"]}
    assert identity["config"]["epsilon"] == 1e-24 and "label" not in identity
    assert "learning_rate" not in identity["config"] and "bundle" not in json.dumps(identity)
    sgd = evaluate.baseline_spec("SGD-momentum")
    identity = evaluate.optimizer_identity(sgd, sgd.factory(0.1))
    assert identity["config"]["momentum"] == 0.9 and identity["label"] == "SGD-momentum"
    assert identity["class"].endswith("SGD")


def test_state_dtype_is_keyed_only_when_not_float32():
    """A float32 state (the default) is every earlier version's run: its key stays as it was; a bfloat16
    state changes the run and so its key."""
    from hyperadam_keras import HyperAdam
    spec = evaluate.hyperadam_spec(None)
    default = evaluate.optimizer_identity(spec, spec.factory(0.005))
    bfloat16 = evaluate.optimizer_identity(spec, HyperAdam(0.005, meta_params=spec.factory(0.005).meta_params,
                                                           state_dtype="bfloat16"))
    assert "state_dtype" not in default["config"] and bfloat16["config"]["state_dtype"] == "bfloat16"
    assert {k: v for k, v in bfloat16["config"].items() if k != "state_dtype"} == default["config"]


def test_decay_after_is_keyed_only_where_it_can_change_the_run():
    """A run of at most `decay_after` steps, or with no decay, is the constant-step run (bit for bit:
    tests/test_optimizer.py), so it keeps the key it had before the option existed; longer runs differ."""
    default, constant = evaluate.hyperadam_spec(None), evaluate.hyperadam_spec(None, decay_after=None)
    assert default.info["decay_after"] == 100 and constant.info["decay_after"] is None

    def identity(spec, steps):
        return evaluate.optimizer_identity(spec, spec.factory(0.005), steps)

    assert "decay_after" not in identity(constant, 10_000)["config"]
    assert identity(default, 100) == identity(constant, 100) == identity(constant, 10_000)
    assert identity(default, 101)["config"]["decay_after"] == 100
    assert identity(default, 101) != identity(constant, 101)
    shorter = evaluate.hyperadam_spec(None, decay_after=50)
    assert identity(shorter, 100)["config"]["decay_after"] == 50 and identity(shorter, 50) == identity(constant, 50)


def test_cli_cache_dir(tmp_path, capsys, trained):
    with pytest.raises(SystemExit):
        cli.main(["evaluate", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--cache-dir DIR" in text and "resumes" in text
    suite_file = tmp_path / "suite.json"
    suite_file.write_text(json.dumps({
        "name": "tiny-cli", "description": "a tiny quadratic", "baselines": ["Adam"], "seeds": 1, "tune_seeds": 1,
        "tasks": [{"name": "quad", "kind": "test_evaluate:TinyQuadratic", "steps": 4, "grids": {"Adam": [0.1]}}]}))
    args = ["evaluate", "--suite-file", str(suite_file), "--suite", "tiny-cli", "--no-xla", "--quiet",
            "--output-dir", str(tmp_path / "out"), "--cache-dir", str(tmp_path / "cache")]
    assert cli.main(args) == 0
    assert f"run cache {tmp_path / 'cache'}: 0 of 3 runs reused, 3 trained" in capsys.readouterr().out
    assert cli.main(args) == 0
    assert "3 of 3 runs reused, 0 trained" in capsys.readouterr().out and len(trained) == 3  # HyperAdam, Adam twice
    saved = json.loads((tmp_path / "out" / "tiny-cli" / "tiny-cli.json").read_text())
    assert saved["cache"]["from_cache"] == 3 and saved["tasks"][0]["runs_from_cache"] == 3


# The SHA-256 of evaluate.TRAINING_CODE_FILES recorded for evaluate.TRAINING_CODE_VERSION (1). Re-recorded
# without a bump for the "rms-clip" feature normalization: "norm" and "rms" runs are op for op the same; and
# for `decay_after` (schedules.py added to the files): a run it can change is keyed by it
# (`optimizer_identity`), every other run is the constant-step run bit for bit; and for the package layout
# (lab/, the task modules split, the registry, the training loop added to the files) and the argument
# checks and `equations.hyperadam_directions` (the unroll's and bundle's glue, op for op as before):
# `benchmarks/reproduce_runs.py` re-trained 30 runs of paper-table1 and paper-lstm (HyperAdam and
# baselines) identical bit for bit, and CNN-1's HyperAdam run equal to the previous code's in the same process
# setting (its recorded value came from a 1-thread worker: oneDNN's convolutions round by thread count);
# and for `warmup_steps`, `max_relative_step` and the generalization suite (a new default keys its runs by
# its rate and config; with both options None a run is op for op the earlier one): `reproduce_runs.py`
# re-trained 16 runs of paper-table1 (HyperAdam at 0.005 and tuned Adam, seeds 0 and 1) identical bit for bit;
# and for one argument check shared by `decay_after` and `warmup_steps` (no op of a run), and
# `HyperAdam.from_config` reading a config without the two options as uncapped (no run builds from a config);
# and for the coordinates-last slot layout, which changes the order of HyperAdam's arithmetic (not its
# math): HyperAdam's config now says `"state_layout": "coordinates-last"`, which `optimizer_identity` keeps,
# so every HyperAdam run key changed with it and no run of the earlier layout is reused; the baselines'
# runs do not touch these two files and keep their keys; and for the per-variable update moved from
# optimizer.py into update.py (added to the files), op for op as before: `reproduce_runs.py` on
# paper-table1's HyperAdam runs of seed 0 gave the same final losses, to the bit, as the previous code;
# and for `state_dtype` (a float32 state, the default, is op for op as before: its casts are no ops; a
# bfloat16 state is in the optimizer's config, which `optimizer_identity` keeps): the same two runs again
# identical to the bit; and for `equations.root_mean_square` taking its root only where mean(x²) > 0 (the
# same value for every finite input, 0 at 0; a meta-gradient through the cap stays finite):
# `reproduce_runs.py runs/eval-run12/paper-table1/paper-table1.json --seeds 0 1` re-trained the 16 runs
# (HyperAdam, capped at 0.03, and tuned Adam) recorded with the previous code on the same machine the
# same day, identical to the bit; and for `candidate_clip` (None, the default, is op for op the earlier
# update; a κ is in the optimizer's config, which `optimizer_identity` keeps, and None is dropped from it):
# the same command re-trained the same 16 runs identical to the bit; and for one positive-or-None argument
# check shared by `max_relative_step` and `candidate_clip` (no op of a run); and for the invalid-learning-rate
# warning moved from `optimizer.py` to `schedules.py` unchanged (the same ops): the same command re-trained the
# same 16 runs identical to the bit (2026-12-07, an AMD EPYC).
TRAINING_CODE_SHA256 = "f25c351c72cd2cd9fcc1b0025e3a23cbcfc4ed0881c8f40dedd8fff982fd520a"


def test_the_training_code_is_the_one_the_cache_version_was_recorded_for():
    assert evaluate.training_code_sha256() == TRAINING_CODE_SHA256, (
        f"{evaluate.TRAINING_CODE_FILES} changed. If the change can alter any training run's numbers, bump "
        "evaluate.TRAINING_CODE_VERSION (cached runs of the old code are then not reused); in either case "
        f"record the new hash {evaluate.training_code_sha256()} here.")


def test_a_new_training_code_version_changes_every_key_and_version_1_keys_stay(monkeypatch):
    task = {"kind": "quad", "kwargs": {}, "steps": 4}
    args = dict(task=task, optimizer={"class": "keras.optimizers.SGD", "config": {}}, learning_rate=0.1,
                seed=0, jit_compile=False, chunk_size=4)
    version_1 = evaluate.run_identity(**args)
    assert "training_code" not in version_1  # the keys of runs cached before the field existed
    monkeypatch.setattr(cache_module, "TRAINING_CODE_VERSION", 2)  # where run_identity reads it
    version_2 = evaluate.run_identity(**args)
    assert version_2["training_code"] == 2
    assert evaluate.run_key(version_2) != evaluate.run_key(version_1)


def test_baselines_from_an_earlier_result_skip_their_tuning_and_are_checked(tmp_path, trained):
    # A paper-style suite (`run_suite`) reusing its baseline from an earlier result: of the baseline
    # only one run is trained (the check), and the entry is the earlier one.
    suite = tiny_suite()
    earlier = run_suite(suite, None)
    path = tmp_path / "tiny-cache.json"
    path.write_text(json.dumps(earlier))
    trained.clear()
    results = run_suite(suite, None, baselines_from=path)
    assert [c[0] for c in trained].count("SGD") == 1 and results["baselines_from"]["path"] == str(path)
    reused, original = results["tasks"][0]["results"]["SGD-momentum"], earlier["tasks"][0]["results"]["SGD-momentum"]
    assert reused["final_loss"] == original["final_loss"] and reused["tuning"] == original["tuning"]
    assert reused["reused_from"]["checked"]["final_loss"] == original["runs"][0]["final_loss"]
    assert numbers(results, "HyperAdam", drop=TIMINGS) == numbers(earlier, "HyperAdam", drop=TIMINGS)

    from hyperadam_keras.lab.eval.baseline_reuse import BaselineReuseError
    with pytest.raises(BaselineReuseError, match="its chunk_size are 3, this run's 2"):
        evaluate.run_suite(suite, progress=False, jit_compile=False, chunk_size=2, baselines_from=path)
    earlier["tasks"][0]["results"]["SGD-momentum"]["runs"][0]["final_loss"] *= 1.5
    path.write_text(json.dumps(earlier))
    with pytest.raises(BaselineReuseError, match="quad, SGD-momentum: seed 0 .* the runs would differ$"):
        run_suite(suite, None, baselines_from=path)
    earlier["machine"]["cpu"] = "Another CPU"
    path.write_text(json.dumps(earlier))
    with pytest.raises(BaselineReuseError, match="the runs would differ \\(it was made on 'Another CPU', this machine"):
        run_suite(suite, None, baselines_from=path)


def _tiny_suite_hyperadam(tmp_path, *args: str) -> tuple[dict, str]:
    """`evaluate` of a one-task quadratic suite (HyperAdam and Adam, one seed) with `args` added: HyperAdam's
    result entry and the suite's Markdown report."""
    suite_file = tmp_path / "suite.json"
    suite_file.write_text(json.dumps({
        "name": "tiny", "description": "a tiny quadratic", "baselines": ["Adam"], "seeds": 1, "tune_seeds": 1,
        "tasks": [{"name": "quad", "kind": "test_evaluate:TinyQuadratic", "steps": 4, "grids": {"Adam": [0.1]}}]}))
    out = tmp_path / ("out-" + "-".join(args))
    assert cli.main(["evaluate", "--suite-file", str(suite_file), "--suite", "tiny", "--no-xla", "--quiet",
                     "--output-dir", str(out), *args]) == 0
    report = (out / "tiny" / "tiny.md").read_text()
    return json.loads((out / "tiny" / "tiny.json").read_text())["tasks"][0]["results"]["HyperAdam"], report


def test_cli_max_relative_step_reaches_hyperadam_and_is_recorded(tmp_path, capsys):
    def hyperadam_entry(*cap: str) -> dict:
        return _tiny_suite_hyperadam(tmp_path, *cap)[0]

    default, uncapped, tight = hyperadam_entry(), hyperadam_entry("--max-relative-step", "none"), \
        hyperadam_entry("--max-relative-step", "1e-4")
    assert default["optimizer"]["max_relative_step"] == 0.03
    assert uncapped["optimizer"]["max_relative_step"] is None and tight["optimizer"]["max_relative_step"] == 1e-4
    # w ~ N(0, 1): a cap of 1e-4 of its scale binds on every step, 0.03 and none do not (the same floats).
    assert uncapped["runs"][0]["final_loss"] == default["runs"][0]["final_loss"]
    assert tight["runs"][0]["final_loss"] > uncapped["runs"][0]["final_loss"]
    capsys.readouterr()
    assert cli.main(["evaluate", "--suite", "bench", "--max-relative-step", "none"]) == 2
    assert "measures the default optimizer's time" in capsys.readouterr().err


@pytest.mark.parametrize("option, flag, value, parsed", [
    # The first step's candidates are ±1: a clip of 0.1 binds, so the run differs.
    ("candidate_clip", "--candidate-clip", "0.1", 0.1),
    # Steps 1 and 2 of 4 at a third and two thirds of α: another run.
    ("warmup_steps", "--warmup-steps", "3", 3)])
def test_cli_hyperadam_option_reaches_hyperadam_and_is_recorded(tmp_path, capsys, option, flag, value, parsed):
    def hyperadam_entry(*args: str) -> tuple[dict, str]:
        return _tiny_suite_hyperadam(tmp_path, "--max-relative-step", "none", *args)

    (plain, plain_report), (chosen, chosen_report) = hyperadam_entry(), hyperadam_entry(flag, value)
    assert plain["optimizer"][option] is None and chosen["optimizer"][option] == parsed
    assert f"`{option}`" in chosen_report and f"`{option}`" not in plain_report
    assert chosen["runs"][0]["final_loss"] != plain["runs"][0]["final_loss"]
    capsys.readouterr()
    assert cli.main(["evaluate", "--suite", "bench", flag, value]) == 2
    assert f"{flag}: suite bench measures the default optimizer's time" in capsys.readouterr().err
