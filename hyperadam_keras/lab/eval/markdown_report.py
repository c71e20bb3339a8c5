"""Markdown reports of evaluation results: the tables and sections of one suite (comparison or bench),
and BENCHMARKS.md, every suite's section after a summary against the best tuned baseline."""

from __future__ import annotations

import math
import os
from typing import Iterable, Sequence

from hyperadam_keras.lab.eval.formatting import (as_float, best_baseline, fmt, fmt_delta, fmt_lr, fmt_stats,
                                                 is_hyperadam, optimizer_labels, reference_columns,
                                                 task_references)
from hyperadam_keras.lab.eval.references import PAPER_NOTE, TUNED_ADAM_8_SEEDS, TUNED_ADAM_8_SEEDS_NOTE


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _bundle_lines(results: dict) -> list[str]:
    lines, seen = [], set()
    for task in results["tasks"]:
        for label, r in task["results"].items():
            info = r.get("optimizer", {})
            if info.get("kind") != "hyperadam" or label in seen:
                continue
            seen.add(label)
            trained = {True: "meta-trained", False: "UNTRAINED (the Adam ensemble)"}.get(info.get("trained"),
                                                                                      "training status unknown")
            lines.append(f"- {label}: bundle `{info.get('bundle')}` (J = {info.get('num_candidates')}, "
                         f"H = {info.get('hidden')}, sha256 {str(info.get('sha256'))[:12]}…), {trained}; "
                         f"step size {fmt_lr(r['learning_rate'])}{_decay_text(info.get('decay_after'))}"
                         f"{_safety_text(info)}, untuned.")
    return lines


def _safety_text(info: dict) -> str:
    """The warm-up, relative-step cap and candidate clip of a HyperAdam run (none in reports written before
    they existed)."""
    parts = []
    if info.get("warmup_steps"):
        parts.append(f"a linear warm-up over {info['warmup_steps']} steps (`warmup_steps`)")
    if info.get("max_relative_step"):
        parts.append(f"each tensor's step capped at {info['max_relative_step']:g} of its scale (`max_relative_step`)")
    if info.get("candidate_clip"):
        parts.append(f"each candidate update clipped to ±{info['candidate_clip']:g} (`candidate_clip`)")
    return "; " + " and ".join(parts) if parts else ""


def _decay_text(decay_after: int | None) -> str:
    if decay_after is None:  # also every report written before the option existed
        return " (constant)"
    return f" for the first {decay_after} steps, then decaying as 1/√t (`decay_after={decay_after}`)"


def final_loss_table(results: dict) -> str:
    """Tasks × optimizers, mean ± std of the final loss; the best measured mean per row in bold;
    then the reference columns (the paper's numbers, tuned Adam's earlier 8-seed ones: `references.py`)."""
    labels, references = optimizer_labels(results), reference_columns(results)
    hyper = [label for label in labels if is_hyperadam(label)]
    delta = len(hyper) == 1 and any(not is_hyperadam(label) for label in labels)
    header = ["task", "steps", *labels] + (["HyperAdam − best baseline"] if delta else []) + references
    rows = []
    for task in results["tasks"]:
        means = {label: as_float(r["final_loss"]["mean"]) for label, r in task["results"].items()}
        finite = [m for m in means.values() if math.isfinite(m)]
        best = min(finite) if finite else None
        row = [task["name"], str(task["steps"])]
        for label in labels:
            if label not in task["results"]:
                row.append("–")
                continue
            cell = fmt_stats(task["results"][label]["final_loss"])
            row.append(f"**{cell}**" if best is not None and means[label] == best else cell)
        if delta:
            other = best_baseline(task)
            h = means.get(hyper[0], math.nan)
            row.append(f"{fmt_delta(h - other[1])} (vs {other[0]})" if other and math.isfinite(h) else "–")
        row += [fmt(v) if isinstance(v, (int, float)) else str(v) for v in
                (task_references(task).get(name, "–") for name in references)]
        rows.append(row)
    return _table(header, rows)


def test_metrics_table(results: dict) -> str | None:
    """Tasks with a test split: each test metric, mean ± std per optimizer."""
    labels = optimizer_labels(results)
    rows = []
    for task in results["tasks"]:
        metrics = sorted({m for r in task["results"].values() for m in (r.get("test") or {})})
        for metric in metrics:
            row = [task["name"], metric]
            for label in labels:
                stats = (task["results"].get(label, {}).get("test") or {}).get(metric)
                row.append(fmt_stats(stats) if stats else "–")
            rows.append(row)
    return _table(["task", "metric", *labels], rows) if rows else None


def learning_rate_table(results: dict) -> str:
    """The rate each optimizer ran at, and the grid it was chosen from (⚠ when at the grid's edge)."""
    labels = optimizer_labels(results)
    rows = []
    for task in results["tasks"]:
        row = [task["name"]]
        for label in labels:
            r = task["results"].get(label)
            if r is None:
                row.append("–")
            elif r["tuning"] is None:
                row.append(f"{fmt_lr(r['learning_rate'])} (untuned)")
            else:
                grid = ", ".join(fmt_lr(x) for x in r["tuning"]["grid"])
                edge = " ⚠ edge" if r["tuning"]["at_edge"] else ""
                row.append(f"**{fmt_lr(r['learning_rate'])}** of {{{grid}}}{edge}")
        rows.append(row)
    return _table(["task", *labels], rows)


def suite_markdown(results: dict, image_prefix: str = "", heading_level: int = 2) -> str:
    """The Markdown section of one suite's results."""
    h = "#" * heading_level
    settings, machine = results["settings"], results["machine"]
    seeds, tune = settings["seeds"], settings["tuning_seeds"]
    parts = [f"{h} `{results['suite']}`: {results['description']}", ""]
    if results.get("note"):
        parts += [results["note"], ""]
    parts += [
        f"- Command: `{results.get('command') or 'hyperadam_keras.lab.eval.evaluate.run_suite(...)'}`",
        f"- Machine: {machine['cpu']}, {machine['cpu_cores']} cores"
        f"{', GPUs: ' + ', '.join(machine['gpus']) if machine.get('gpus') else ', no GPU'}; "
        f"TensorFlow {machine['tensorflow']}, Keras {machine['keras']}; {machine['date']}; "
        f"wall time {results.get('seconds', 0):.0f} s{_cache_note(results)}.",
        f"- Seeds: {len(seeds)} evaluation seeds ({_seed_range(seeds)}); baselines tuned on {len(tune)} "
        f"separate tuning seeds ({_seed_range(tune)}) by mean final loss, the grid extended at its edge up to "
        f"{settings.get('max_grid_extensions', 0)} times.",
        *_bundle_lines(results),
        "",
        f"{h}# Final loss (loss of the final weights on the whole training set), mean ± std over "
        f"{len(seeds)} seeds",
        "",
        final_loss_table(results),
        "",
        "Bold: the lowest measured mean in the row." + _reference_note(reference_columns(results)),
        "",
    ]
    if results.get("kind") == "fit":
        from hyperadam_keras.lab.eval.fit_summary import target_markdown
        parts += [target_markdown(results, h + "#")]
    test_table = test_metrics_table(results)
    if test_table:
        parts += [f"{h}# Test metrics (final weights), mean ± std", "", test_table, ""]
    parts += [f"{h}# Learning rates (chosen rate in bold, of the grid searched)", "",
              learning_rate_table(results), ""]
    images = results.get("images", {})
    if images:
        parts += [f"{h}# Loss curves", ""]
        for caption, name in images.items():
            parts += [f"![{caption}]({image_prefix}{name})", ""]
        parts += ["Curves: per-step minibatch loss, mean over the evaluation seeds with a band of ± 1 std "
                  "(runs over 1,000 steps: a moving average over 1% of the curve; runs over 2,000 steps are stored as "
                  "means over blocks of steps, `curve_block` in the JSON).", ""]
    return "\n".join(parts)


def _reference_note(columns: Sequence[str]) -> str:
    notes = []
    if any(c.startswith("paper") for c in columns):
        notes.append(PAPER_NOTE)
    if TUNED_ADAM_8_SEEDS in columns:
        notes.append(TUNED_ADAM_8_SEEDS_NOTE)
    return (" Reference columns, not measured in this run: " + "; ".join(notes) + ".") if notes else ""


def _cache_note(results: dict) -> str:
    """Says how many runs came from the run cache: their training time is not in the wall time."""
    cache = results.get("cache") or {}
    if not cache.get("from_cache"):
        return ""
    return (f" ({cache['from_cache']} of {cache['runs']} runs read from the run cache `--cache-dir`, trained by "
            "earlier invocations: their time is in the per-run seconds of the JSON, not in this wall time)")


def _seed_range(seeds: Sequence[int]) -> str:
    if not seeds:
        return "none"
    if len(seeds) == 1:
        return str(seeds[0])
    return f"{seeds[0]}..{seeds[-1]}" if list(seeds) == list(range(seeds[0], seeds[0] + len(seeds))) else \
        ", ".join(map(str, seeds))


def bench_markdown(results: dict, heading_level: int = 2) -> str:
    """The Markdown section of the `bench` suite."""
    h = "#" * heading_level
    machine = results["machine"]
    parts = [f"{h} `{results['suite']}`: {results['description']}", "",
             f"- Command: `{results.get('command') or 'hyperadam_keras.lab.eval.evaluate.run_bench(...)'}`",
             f"- Machine: {machine['cpu']}, {machine['cpu_cores']} cores"
             f"{', GPUs: ' + ', '.join(machine['gpus']) if machine.get('gpus') else ', no GPU'}; "
             f"TensorFlow {machine['tensorflow']}, Keras {machine['keras']}; {machine['date']}; "
             f"wall time {results.get('seconds', 0):.0f} s.", ""]
    speed = results.get("speed", {})
    parts += [f"{h}# Step time, update FLOP/s, memory (hyperadam_keras.lab.eval.speed)", ""]
    if "error" in speed:
        parts += [f"Not measured: {speed['error']}", ""]
    else:
        parts += [results.get("speed_markdown", "").strip(), ""]
    ttt = results.get("time_to_target")
    if ttt:
        parts += [f"{h}# Time to reach tuned Adam's loss ({ttt['task']}, the paper's 8-layer comparison)", "",
                  f"Target: tuned Adam's mean final loss after {ttt['steps']} steps, {fmt(ttt['target'])} "
                  f"(Adam at {fmt_lr(ttt['adam_tuning']['best_lr'])}, the best of "
                  f"{{{', '.join(fmt_lr(x) for x in ttt['adam_tuning']['grid'])}}}). Each optimizer trains from "
                  f"each evaluation seed until its full training loss reaches the target (checked every "
                  f"{ttt['check_every']} steps, at most {ttt['max_steps']} steps); training time only, after "
                  "compilation. The paper (GPU, 2018): HyperAdam 26.33 s, Adam 28.97 s to reach loss 0.6.", ""]
        rows = []
        for label, r in ttt["results"].items():
            n = len(r["runs"])
            rows.append([label, fmt_lr(r["learning_rate"]), f"{r['reached']}/{n}",
                         "–" if r["median_steps"] is None else f"{r['median_steps']:.0f}",
                         "–" if r["median_seconds"] is None else f"{r['median_seconds']:.2f}"])
        parts += [_table(["optimizer", "learning rate", "seeds reaching the target", "median steps",
                          "median seconds"], rows), ""]
    memory = results.get("memory")
    if memory:
        rows = [[label, str(m["parameters"]), str(m["state_bytes"]), f"{m['bytes_per_parameter']:.1f}"]
                for label, m in memory.items() if isinstance(m, dict)]
        parts += [f"{h}# Optimizer state, measured on the built optimizers ({memory['task']})", "",
                  _table(["optimizer", "parameters", "state bytes", "bytes per parameter"], rows), ""]
    return "\n".join(parts)


def markdown(results: dict, image_prefix: str = "", heading_level: int = 2) -> str:
    """The section of any suite's results (comparison or bench)."""
    if results.get("kind") == "bench":
        return bench_markdown(results, heading_level)
    return suite_markdown(results, image_prefix, heading_level)


BENCHMARKS_HEADER = """# Benchmarks

Generated by `hyperadam-keras evaluate` (`hyperadam_keras/lab/eval/evaluate.py`, `report.py`); each section states
the command, the machine and the date of its run, and links its plots. The raw numbers (every seed, every
grid point, every loss curve) are in the JSON beside each section's plots. Regenerate this file with
`hyperadam-keras evaluate --from-json DIR/*.json --benchmarks-md BENCHMARKS.md` after re-running the suites.
"""


def summary_table(all_results: Sequence[dict]) -> str | None:
    """One row per (suite, task, HyperAdam bundle): its final loss against the best tuned baseline."""
    rows = []
    for results in all_results:
        if results.get("kind") == "bench":
            continue
        seeds = len(results["settings"]["seeds"])
        for task in results["tasks"]:
            other = best_baseline(task)
            for label, r in task["results"].items():
                if not is_hyperadam(label):
                    continue
                h = as_float(r["final_loss"]["mean"])
                verdict = "–"
                if other is not None and math.isfinite(h):
                    verdict = "HyperAdam" if h < other[1] else "baseline"
                rows.append([results["suite"], task["name"], str(task["steps"]), str(seeds), label,
                             fmt_stats(r["final_loss"]),
                             f"{other[0]} {fmt_stats(task['results'][other[0]]['final_loss'])}" if other else "–",
                             fmt_delta(h - other[1]) if other and math.isfinite(h) else "–", verdict])
    if not rows:
        return None
    return _table(["suite", "task", "steps", "seeds", "optimizer", "final loss", "best tuned baseline",
                   "difference", "lower mean"], rows)


def benchmarks_markdown(all_results: Sequence[dict], json_dirs: Sequence[str], out_dir: str,
                        preamble: str = "") -> str:
    """BENCHMARKS.md: the header, a preamble, a summary (HyperAdam against the best tuned baseline of
    every task), then each suite's section with image links relative to `out_dir` (the directory of
    the Markdown file)."""
    parts = [BENCHMARKS_HEADER.strip(), ""]
    if preamble:
        parts += [preamble.strip(), ""]
    summary = summary_table(all_results)
    if summary:
        parts += ["## Summary: HyperAdam (untuned) against the best tuned baseline of each task", "",
                  "Final loss, mean ± std over the seeds; difference of the means (negative: HyperAdam lower).",
                  "", summary, ""]
    for results, json_dir in zip(all_results, json_dirs):
        prefix = os.path.relpath(json_dir, out_dir).replace(os.sep, "/") + "/"
        prefix = "" if prefix == "./" else prefix
        parts += [markdown(results, image_prefix=prefix), ""]
    return "\n".join(parts)

