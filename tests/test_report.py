"""Reports: the Markdown tables hold the numbers of the JSON, the plots are real PNGs."""

from __future__ import annotations

import json
import math

import pytest

from hyperadam_keras.lab.eval import evaluate
from hyperadam_keras.lab.eval import report
from hyperadam_keras.lab.eval import suites
from test_evaluate import TinyQuadratic

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def results() -> dict:
    suites.register_task_kind("tiny-quadratic", TinyQuadratic)
    suite = suites.register_suite(suites.Suite(
        name="tiny-report", description="a tiny quadratic", baselines=("SGD-momentum",), seeds=3, tune_seeds=1,
        tasks=(suites.TaskSpec(name="quad", kind="tiny-quadratic", kwargs={"noise": 0.1}, steps=10,
                               grids={"SGD-momentum": (0.01, 0.1, 0.3)},
                               reference={"paper's Adam": 0.35, suites.TUNED_ADAM_8_SEEDS: "0.228 ± 0.004"}),)))
    return evaluate.run_suite(suite, progress=False, command="hyperadam-keras evaluate --suite tiny-report",
                              jit_compile=False)  # tiny task: a graph compiles faster than XLA


def test_number_formatting():
    assert report.fmt(0.22812) == "0.228"
    assert report.fmt(2.30259) == "2.303"
    assert report.fmt(0.051234) == "0.0512"
    assert report.fmt("nan") == "nan" and report.fmt(math.inf) == "inf"
    assert report.fmt_stats({"mean": 0.2281, "std": 0.0041, "n_nonfinite": 0}) == "0.228 ± 0.0041"
    assert report.fmt_stats({"mean": 1.5, "std": 0.25, "n_nonfinite": 2}) == "1.500 ± 0.250 (2 non-finite)"
    assert report.fmt_stats({"mean": 1.5e-5, "std": 0.0, "n": 1, "n_nonfinite": 0}) == "1.5e-05 (1 seed)"
    assert report.fmt_delta(-0.2811) == "-0.281" and report.fmt_delta(9.4e-06) == "+9.4e-06"


def test_report_files_hold_the_json_numbers(results, tmp_path):
    paths = report.write_report(results, str(tmp_path))
    saved = json.loads(open(paths["json"]).read())  # strict JSON (no bare NaN)
    markdown = open(paths["markdown"]).read()
    task = saved["tasks"][0]
    assert list(task["results"]) == ["HyperAdam", "SGD-momentum"]
    row = next(line for line in markdown.splitlines() if line.startswith("| quad | 10 |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    hyper, sgd = task["results"]["HyperAdam"], task["results"]["SGD-momentum"]
    for cell, record in zip(cells[2:4], (hyper, sgd)):
        stats = record["final_loss"]
        assert cell.strip("*") == f"{report.fmt(stats['mean'])} ± {report.fmt(stats['std'])}"
        finals = [r["final_loss"] for r in record["runs"]]
        assert stats["mean"] == pytest.approx(sum(finals) / len(finals))
    best = min((hyper, sgd), key=lambda r: r["final_loss"]["mean"])
    assert cells[2 + [hyper, sgd].index(best)].startswith("**")  # the lower mean is in bold
    delta = hyper["final_loss"]["mean"] - sgd["final_loss"]["mean"]
    assert cells[4] == f"{report.fmt_delta(delta)} (vs SGD-momentum)"
    assert cells[5:] == ["0.350", "0.228 ± 0.004"]  # the reference columns
    assert "tuned Adam's 8-seed numbers were measured earlier" in markdown  # and where they come from
    lr_row = next(line for line in markdown.splitlines() if line.startswith("| quad |") and "untuned" in line)
    grid = ", ".join(report.fmt_lr(x) for x in sgd["tuning"]["grid"])
    assert f"**{report.fmt_lr(sgd['learning_rate'])}** of {{{grid}}}" in lr_row
    assert "0.001 (untuned)" in lr_row
    test_row = next(line for line in markdown.splitlines() if line.startswith("| quad | test_loss |"))
    assert report.fmt_stats(hyper["test"]["test_loss"]) in test_row
    assert "3 evaluation seeds (0..2)" in markdown and "1 separate tuning seeds (10000)" in markdown
    assert "meta-trained" in markdown and "hyperadam-keras evaluate --suite tiny-report" in markdown
    assert ("step size 0.001 for the first 100 steps, then decaying as 1/√t (`decay_after=100`); each tensor's "
            "step capped at 0.03 of its scale (`max_relative_step`), untuned") in markdown
    for info in ({"kind": "hyperadam", "decay_after": None}, {"kind": "hyperadam"}):  # the latter: older JSON
        constant = json.loads(json.dumps(results))
        constant["tasks"][0]["results"]["HyperAdam"]["optimizer"] = info
        assert "step size 0.001 (constant), untuned" in report.suite_markdown(constant)
    assert "run cache" not in markdown  # no --cache-dir
    png = open(paths["curves"], "rb").read()
    assert png.startswith(PNG_MAGIC) and len(png) > 10_000
    assert "![loss curves](tiny-report_curves.png)" in markdown
    # The JSON alone re-renders the same report.
    assert report.suite_markdown(report.load_json(paths["json"])) + "\n" == markdown
    # Runs read from a run cache are said to be so: the wall time does not include their training.
    cached = dict(results, cache={"directory": "c", "runs": 12, "from_cache": 9, "trained": 3})
    assert "9 of 12 runs read from the run cache" in report.suite_markdown(cached)


def test_nonfinite_results_are_counted_and_written_as_strict_json(results, tmp_path):
    broken = json.loads(json.dumps(report.sanitize(results)))
    record = broken["tasks"][0]["results"]["SGD-momentum"]
    record["runs"][0]["final_loss"] = "nan"
    record["final_loss"] = evaluate.summarize([report.as_float(r["final_loss"]) for r in record["runs"]])
    assert record["final_loss"]["n_nonfinite"] == 1 and record["final_loss"]["n"] == 2
    path = report.save_json(broken, str(tmp_path / "broken.json"))
    assert "NaN" not in open(path).read()
    assert "(1 non-finite)" in report.final_loss_table(report.load_json(path))
    png = report.plot_final_losses(broken, str(tmp_path / "final.png"))
    assert open(png, "rb").read().startswith(PNG_MAGIC)


def test_bench_measures_time_to_target_and_state_bytes_per_parameter(tmp_path):
    suites.register_task_kind("tiny-quadratic", TinyQuadratic)
    suite = suites.register_suite(suites.Suite(
        name="tiny-bench", description="bench on a tiny quadratic", kind="bench", seeds=2, tune_seeds=1,
        tasks=(suites.TaskSpec(name="quad", kind="tiny-quadratic", steps=20, grids={"Adam": (0.03, 0.1, 0.3)}),)))
    results = evaluate.run_bench(suite, with_speed=False, progress=False, check_every=5, jit_compile=False)
    ttt = results["time_to_target"]
    assert len(ttt["adam_final_losses"]) == 2
    assert ttt["target"] == pytest.approx(sum(ttt["adam_final_losses"]) / 2)
    assert ttt["adam_tuning"]["best_lr"] == ttt["results"]["Adam"]["learning_rate"]
    # Tuned Adam reaches its own mean final loss within its horizon on at least one seed.
    assert ttt["results"]["Adam"]["reached"] >= 1 and ttt["max_steps"] == 60
    for run in ttt["results"]["Adam"]["runs"]:
        assert (run["steps"] is None) or (run["steps"] % 5 == 0 and run["loss"] <= ttt["target"])
    # 7 parameters; HyperAdam keeps h, c (H = 8) and m, v, beta_hat, gamma_hat (J = 8): 48 float32.
    memory = results["memory"]
    assert memory["HyperAdam"]["parameters"] == 7
    assert memory["HyperAdam"]["bytes_per_parameter"] == 192.0 and memory["Adam"]["bytes_per_parameter"] == 8.0
    paths = report.write_report(results, str(tmp_path))
    text = open(paths["markdown"]).read()
    assert "| HyperAdam | 7 | 1344 | 192.0 |" in text and "| Adam | 7 | 56 | 8.0 |" in text
    assert f"{report.fmt(ttt['target'])}" in text and "Not measured: not run" in text


def test_benchmarks_markdown_summarizes_against_the_best_baseline_and_links_images(results, tmp_path):
    run_dir = tmp_path / "runs" / "tiny-report"
    report.write_report(results, str(run_dir))
    saved = report.load_json(str(run_dir / "tiny-report.json"))
    text = report.benchmarks_markdown([saved], [str(run_dir)], str(tmp_path), preamble="Shipped bundle: untrained.")
    task = saved["tasks"][0]["results"]
    h, b = task["HyperAdam"]["final_loss"], task["SGD-momentum"]["final_loss"]
    row = next(line for line in text.splitlines() if line.startswith("| tiny-report | quad |"))
    assert row == (f"| tiny-report | quad | 10 | 3 | HyperAdam | {report.fmt_stats(h)} | SGD-momentum "
                   f"{report.fmt_stats(b)} | {report.fmt_delta(h['mean'] - b['mean'])} | "
                   f"{'HyperAdam' if h['mean'] < b['mean'] else 'baseline'} |")
    assert "Shipped bundle: untrained." in text
    assert "![loss curves](runs/tiny-report/tiny-report_curves.png)" in text


def test_step_size_summary_counts_seeds_by_hand(tmp_path, capsys):
    """`benchmarks/hyperadam_step_size.py --summary` over two per-seed JSONs: trained seeds (one at chance),
    mean/median/max, and per suite optimizer the seeds where HyperAdam is lower and its accuracy as high."""
    from test_floor import load_script

    suite = {"tasks": [{"name": "cnn-2", "steps": 200, "results": {"Adam": {"learning_rate": 0.01, "runs": [
        {"seed": s, "final_loss": loss, "test": {"test_accuracy": acc}}
        for s, loss, acc in ((0, 0.02, 0.95), (1, 0.02, 0.95), (2, 0.02, 0.90))]}}}]}
    (tmp_path / "suite.json").write_text(json.dumps(suite))

    def run(seed, loss, accuracy, first=2.3):
        return {"task": "cnn-2", "learning_rate": 0.001, "seed": seed, "final_loss": loss,
                "test": {"test_accuracy": accuracy}, "minibatch_loss_every_100_steps": [first, loss]}

    for name, runs in (("a.json", [run(0, 0.01, 0.96), run(1, 0.04, 0.94)]), ("b.json", [run(2, 2.25, 0.10)])):
        seeds = [r["seed"] for r in runs]
        (tmp_path / name).write_text(json.dumps({
            "runs": runs, "compare_json": str(tmp_path / "suite.json"),
            "suite_runs": {"cnn-2": {"Adam (lr 0.01, suite)": [0.02 for _ in seeds]}}}))
    script = load_script("hyperadam_step_size")
    script.main(["--summary", str(tmp_path / "a.json"), str(tmp_path / "b.json")])
    lines = capsys.readouterr().out.splitlines()
    # 2.25 is above 0.9 ln 10 = 2.07: at chance, so 2 of 3 trained
    assert lines[0].startswith("cnn-2 lr 0.001: 2/3 seeds trained; final loss mean 0.767")
    assert "median 0.04, max 2.25; test accuracy 0.667 (0.100-0.960)" in lines[0]
    assert lines[1] == ("  Adam (lr 0.01, suite): mean 0.02, median 0.02; HyperAdam lower on 1/3; test accuracy "
                        "0.933, HyperAdam's at least as high on 1/3")


def test_step_size_summary_pairs_suite_runs_with_the_invocations_seed_order_over_two_step_sizes(tmp_path, capsys):
    """One invocation with --lr 0.002 0.001 --seeds 2 0: suite_runs lists seeds 2, 0 in that order."""
    from test_floor import load_script

    runs = [{"task": "t", "learning_rate": lr, "seed": seed, "final_loss": loss, "test": None,
             "minibatch_loss_every_100_steps": [2.3, loss]}
            for lr, seed, loss in ((0.002, 2, 0.5), (0.002, 0, 0.1), (0.001, 2, 0.05), (0.001, 0, 0.3))]
    path = tmp_path / "one.json"
    path.write_text(json.dumps({"runs": runs, "compare_json": None,
                                "suite_runs": {"t": {"Adam (lr 0.01, suite)": [0.2, 0.4]}}}))  # seed 2, seed 0
    load_script("hyperadam_step_size").main(["--summary", str(path)])
    lines = capsys.readouterr().out.splitlines()
    # lr 0.001: seeds 0, 2 lose 0.3 / 0.05 against Adam's 0.4 / 0.2: lower on both; lr 0.002: 0.1 < 0.4, 0.5 > 0.2
    assert lines[0].startswith("t lr 0.001: 2/2 seeds trained")
    assert lines[1] == "  Adam (lr 0.01, suite): mean 0.3, median 0.3; HyperAdam lower on 2/2"
    assert lines[2].startswith("t lr 0.002: 2/2 seeds trained")
    assert lines[3] == "  Adam (lr 0.01, suite): mean 0.3, median 0.3; HyperAdam lower on 1/2"


def test_paired_accuracy_pairs_runs_by_seed_and_gives_the_standard_error_by_hand(tmp_path, capsys):
    """`benchmarks/paired_accuracy.py`: per-seed differences in points, matched by seed not by order."""
    from test_floor import load_script

    def runs(pairs):
        return [{"seed": seed, "validation": {"accuracy": acc}} for seed, acc in pairs]

    suite = {"tasks": [
        {"name": "clf", "results": {"Adam": {"runs": runs([(0, 0.90), (1, 0.80), (2, 0.70)])},
                                    "HyperAdam[J=8]": {"runs": runs([(2, 0.73), (0, 0.91), (1, 0.80)])}}},
        {"name": "regression", "results": {"Adam": {"runs": [{"seed": 0, "validation": None}]},
                                           "HyperAdam[J=8]": {"runs": [{"seed": 0, "validation": None}]}}}]}
    script = load_script("paired_accuracy")
    [(name, label, diffs)] = script.paired_differences(suite, "Adam")
    assert (name, label) == ("clf", "HyperAdam[J=8]") and diffs == pytest.approx([3.0, 1.0, 0.0])
    mean, error = script.describe(diffs)  # sd of (3, 1, 0) = √(7/3); s.e. = sd / √3
    assert mean == pytest.approx(4 / 3) and error == pytest.approx((7 / 3) ** 0.5 / 3 ** 0.5)
    path = tmp_path / "suite.json"
    path.write_text(json.dumps(suite))
    script.main([str(path)])
    out = capsys.readouterr().out
    assert "clf" in out and "+1.33" in out and "regression" not in out
