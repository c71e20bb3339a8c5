"""Fit suites (`generalization`): runs through `model.fit` as `compare` makes them, tuned baselines, the
run cache, the targets' summary, the CLI's checks, and the generalization suite's own tasks."""

import math
import os

import numpy as np
import pytest

from hyperadam_keras.defaults import DEFAULT_LEARNING_RATE
from hyperadam_keras.lab.eval import fit_suite, suites
from hyperadam_keras.lab.eval.compare_builder import check_build, load_builder
from hyperadam_keras.lab.eval.fit_summary import target_summary
from hyperadam_keras.lab.eval.markdown_report import suite_markdown

HERE = os.path.dirname(os.path.abspath(__file__))
TINY = suites.Suite(
    name="tiny-fit", description="one tiny classifier", kind="fit", baselines=("Adam", "AdamW"), seeds=2,
    tune_seeds=1, tasks=(suites.TaskSpec(name="tiny", kind=suites.FIT_KIND, steps=12,
                                         kwargs={"builder": os.path.join(HERE, "fit_models.py") + ":tiny_classifier"},
                                         grids={"Adam": (0.003, 0.03), "AdamW": (0.003, 0.03)}),))


# Both tests below need the tuned baselines of TINY: trained once, into a cache the first test goes on with.
pytestmark = pytest.mark.xdist_group("fit_suite")  # one worker, so the module's fixture is computed once


@pytest.fixture(scope="module")
def baselines_only(tmp_path_factory):
    """TINY's baselines alone, tuned and trained into a fresh cache: (the result, the cache directory)."""
    cache_dir = tmp_path_factory.mktemp("fit-cache")
    return fit_suite.run_fit_suite(TINY, progress=False, cache_dir=cache_dir, include_hyperadam=False), cache_dir


def test_a_fit_suite_tunes_the_baselines_and_resumes_from_its_cache(baselines_only):
    baselines_only, tmp_path = baselines_only
    assert list(baselines_only["tasks"][0]["results"]) == ["Adam", "AdamW"]
    trained_baselines = baselines_only["cache"]["trained"]
    assert trained_baselines >= 2 * (2 + 2) and baselines_only["cache"]["from_cache"] == 0

    results = fit_suite.run_fit_suite(TINY, progress=False, cache_dir=tmp_path)
    task = results["tasks"][0]
    assert task["optimizers"] == ["HyperAdam", "Adam", "AdamW"]
    # every baseline run came from the cache; only HyperAdam's two seeds were trained
    assert results["cache"] == {"directory": str(tmp_path), "runs": trained_baselines + 2,
                                "from_cache": trained_baselines, "trained": 2}
    hyper, adam = task["results"]["HyperAdam"], task["results"]["Adam"]
    assert hyper["learning_rate"] == DEFAULT_LEARNING_RATE and hyper["tuning"] is None
    assert adam["tuning"]["best_lr"] == adam["learning_rate"] and adam["learning_rate"] in adam["tuning"]["grid"]
    for result in task["results"].values():
        runs = result["runs"]
        assert [r["seed"] for r in runs] == [0, 1] and all(r["steps"] == 12 for r in runs)
        assert result["final_loss"]["mean"] == pytest.approx(np.mean([r["final_loss"] for r in runs]))
        assert result["test"]["accuracy"]["mean"] == pytest.approx(np.mean([r["validation"]["accuracy"] for r in runs]))
        assert result["diverged"] == sum(r["diverged"] for r in runs)
    # the same initial weights for every optimizer of a seed
    assert len({r["initial_weights_sha256"] for res in task["results"].values() for r in res["runs"]
                if r["seed"] == 0}) == 1

    again = fit_suite.run_fit_suite(TINY, progress=False, cache_dir=tmp_path)
    assert again["cache"]["trained"] == 0
    for label, result in task["results"].items():
        assert again["tasks"][0]["results"][label]["final_loss"] == result["final_loss"]

    markdown = suite_markdown(results)
    summary = target_summary(results)
    ratio = hyper["final_loss"]["mean"] / adam["final_loss"]["mean"]
    assert summary["tasks"][0]["ratio"] == pytest.approx(ratio)
    assert "HyperAdam (untuned) against tuned Adam" in markdown and f"{ratio:.2f}" in markdown


def test_baselines_from_an_earlier_result_are_reused_after_one_run_reproduces_them(tmp_path, baselines_only):
    import json

    from hyperadam_keras.lab.eval.baseline_reuse import BaselineReuseError

    earlier = baselines_only[0]  # trained with a cache; the checks below train without one
    path = tmp_path / "tiny-fit.json"
    path.write_text(json.dumps(earlier))
    # No cache: every number below that is not HyperAdam's comes from the file, checked by one retrained run.
    results = fit_suite.run_fit_suite(TINY, progress=False, baselines_from=path)
    assert results["baselines_from"]["path"] == str(path)
    task = results["tasks"][0]
    assert task["optimizers"] == ["HyperAdam", "Adam", "AdamW"]
    for label in ("Adam", "AdamW"):
        reused, original = task["results"][label], earlier["tasks"][0]["results"][label]
        assert reused["final_loss"] == original["final_loss"] and reused["tuning"] == original["tuning"]
        assert reused["reused_from"]["checked"] == {"seed": 0, "final_loss": original["runs"][0]["final_loss"]}
    assert "reused_from" not in task["results"]["HyperAdam"]

    # A recorded run this code does not reproduce is refused, naming the task, baseline and losses.
    tampered = json.loads(path.read_text())
    tampered["tasks"][0]["results"]["Adam"]["runs"][0]["final_loss"] += 1e-6
    path.write_text(json.dumps(tampered))
    with pytest.raises(BaselineReuseError, match="tiny, Adam: seed 0 .* the runs would differ"):
        fit_suite.run_fit_suite(TINY, progress=False, baselines_from=path, include_hyperadam=False)
    # So are other seeds, another grid, another task definition.
    with pytest.raises(BaselineReuseError, match="its seeds are"):
        fit_suite.run_fit_suite(TINY, seeds=3, progress=False, baselines_from=path)
    regridded = json.loads(json.dumps(earlier))
    regridded["tasks"][0]["results"]["AdamW"]["optimizer"]["grid"] = [0.001]
    regridded["tasks"][0]["results"].pop("Adam")
    path.write_text(json.dumps(regridded))
    with pytest.raises(BaselineReuseError, match="tiny, AdamW: tuned on the grid"):
        fit_suite.run_fit_suite(TINY, progress=False, baselines_from=path, include_hyperadam=False)
    restepped = json.loads(json.dumps(earlier))
    restepped["tasks"][0]["steps"] = 13
    path.write_text(json.dumps(restepped))
    with pytest.raises(BaselineReuseError, match="defined differently"):
        fit_suite.run_fit_suite(TINY, progress=False, baselines_from=path, include_hyperadam=False)


def _result(hyper_loss, adam_loss, hyper_acc=None, adam_acc=None, diverged=0):
    def entry(loss, acc, div):
        return {"final_loss": {"mean": loss}, "runs": [{"curve": [3.0] * 90 + [loss] * 10}] * 5, "diverged": div,
                "test": {"accuracy": {"mean": acc}} if acc is not None else None}
    return {"HyperAdam": entry(hyper_loss, hyper_acc, diverged), "Adam": entry(adam_loss, adam_acc, 0)}


def test_target_summary_by_hand():
    results = {"tasks": [{"name": "a", "results": _result(0.5, 1.0, 0.90, 0.91)},
                         {"name": "b", "results": _result(2.0, 1.0)},
                         {"name": "c", "results": _result(1.0, 1.0, diverged=1)}]}
    summary = target_summary(results)
    assert [r["ratio"] for r in summary["tasks"]] == [0.5, 2.0, 1.0]
    assert summary["wins"] == 2 and summary["count"] == 3 and summary["worst_ratio"] == 2.0
    assert summary["geometric_mean_ratio"] == pytest.approx(1.0)
    assert summary["tasks"][0]["end_batch_loss"] == (0.5, 1.0)  # the last 10 % of the curves
    assert summary["tasks"][0]["accuracy_points"] == pytest.approx(-1.0)
    assert summary["tasks"][1]["accuracy_points"] is None and summary["hyperadam_diverged"] == 1
    results["tasks"][1]["results"]["HyperAdam"]["final_loss"]["mean"] = "nan"
    assert math.isinf(target_summary(results)["geometric_mean_ratio"])


def test_the_generalization_suite_is_what_issue_14_asks_and_apart_from_the_validation_models():
    from hyperadam_keras.lab.models import generalization, validation

    suite = suites.get_suite("generalization")
    assert suite.kind == "fit" and len(suite.tasks) >= 12 and suite.seeds >= 5
    assert set(suite.baselines) == {"Adam", "AdamW"} and suite.tune_seeds >= 2
    assert {t.name for t in suite.tasks} == set(generalization.BUILDERS)
    assert not set(generalization.BUILDERS) & set(validation.BUILDERS)
    batch_sizes = set()
    for task in suite.tasks:
        assert 300 <= task.steps <= 3000
        build = check_build(load_builder(task.kwargs["builder"])())
        assert build.steps == task.steps and build.validation_data is not None
        batch_sizes.add(build.batch_size)
    assert min(batch_sizes) == 32 and max(batch_sizes) == 256


@pytest.mark.parametrize("argv,message", [
    (["--suite", "paper-table1", "--baselines", "AdamW"], "only fit suites (generalization) run AdamW"),
    (["--suite", "generalization", "--task", "no-such-task"], "not a task of generalization"),
    (["--suite", "quick", "--no-hyperadam"], "only fit suites"),
    (["--suite", "bench", "--baselines-from", "x.json"], "measures time and reuses nothing"),
    (["--suite", "quick", "--baselines-from", "no-such.json"], "no such file or directory"),
    (["--suite", "quick", "--suite", "paper-lstm", "--baselines-from", __file__], "a file serves one suite"),
])
def test_evaluate_refuses_fit_options_where_they_do_not_apply(argv, message, capsys):
    from hyperadam_keras.cli import main

    assert main(["evaluate", *argv]) == 2
    assert message in capsys.readouterr().err


def test_cache_summary_reports_the_bundles_finished_runs_beside_the_baselines(tmp_path, capsys):
    # benchmarks/fit_cache_summary.py reads a run cache: only HyperAdam runs of the named bundle count,
    # each task's mean beside the baseline JSON's tuned-Adam mean, and the ratio.
    import importlib.util
    import json
    import pathlib

    from hyperadam_keras import default_bundle_path, load_meta_params

    path = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "fit_cache_summary.py"
    spec = importlib.util.spec_from_file_location("fit_cache_summary", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    sha = load_meta_params(default_bundle_path()).fingerprint()

    def entry(name, cls, fingerprint, seed, loss, accuracy):
        identity = {"builder": f"pkg:{name}", "seed": seed,
                    "optimizer": {"class": cls, "config": {"meta_params": {"sha256": fingerprint}}}}
        record = {"final_loss": loss, "finite": math.isfinite(loss), "diverged": False,
                  "validation": {"accuracy": accuracy}}
        (tmp_path / f"{name}-{cls}-{fingerprint}-{seed}.json").write_text(
            json.dumps({"identity": identity, "record": record}))

    cache = tmp_path
    entry("a", "hyperadam_keras.optimizer.HyperAdam", sha, 0, 0.1, 0.9)
    entry("a", "hyperadam_keras.optimizer.HyperAdam", sha, 1, 0.3, 0.8)
    entry("a", "hyperadam_keras.optimizer.HyperAdam", "another bundle", 2, 100.0, 0.1)
    entry("a", "keras.src.optimizers.adam.Adam", sha, 3, 100.0, 0.1)
    adam = {"final_loss": {"mean": 0.4}, "test": {"accuracy": {"mean": 0.85}}}
    baselines = tmp_path / "baselines.txt"
    baselines.write_text(json.dumps({"tasks": [
        {"name": "task-a", "kwargs": {"builder": "pkg:a"}, "results": {"Adam": adam}},
        {"name": "task-b", "kwargs": {"builder": "pkg:b"}, "results": {"Adam": adam}}]}))
    assert script.main([str(cache), "--baselines", str(baselines)]) == 0
    out = capsys.readouterr().out
    assert "| task-a | 0,1 | 0.2 | 0.4 | 0.50 | 0.8500 | 0.8500 | 0 |" in out
    assert "| task-b | none | – | 0.4 | – |" in out
    assert "Tasks with runs: 1; at most tuned Adam's mean on 1; geometric mean of the ratios 0.50" in out


def test_a_fit_run_cache_that_cannot_write_warns_and_leaves_no_temporary_file(tmp_path, capsys):
    cache = fit_suite.FitRunCache(tmp_path)
    os.makedirs(tmp_path / "blocked.json")  # a directory where the file should go: the rename fails
    cache.store("blocked", {"seed": 0}, {"final_loss": 1.0})
    warning = capsys.readouterr().err
    assert "could not write" in warning and "blocked.json" in warning
    assert sorted(os.listdir(tmp_path)) == ["blocked.json"] and os.path.isdir(tmp_path / "blocked.json")
    assert cache.load("blocked") is None
    cache.store("written", {"seed": 1}, {"final_loss": 2.0})
    assert cache.load("written") == {"final_loss": 2.0}
