"""Reports of evaluation results: Markdown tables, PNG loss curves, and the JSON of every raw number.

Every function takes the JSON-ready dict that `evaluate.run_suite` (or `evaluate.run_bench`) returns,
so a report can be re-rendered from a saved JSON without re-running anything.
"""

from __future__ import annotations

import json
import math
import os
from typing import Iterable, Sequence

import numpy as np

HYPERADAM_PREFIX = "HyperAdam"


# --- numbers ------------------------------------------------------------------------------------

def as_float(x) -> float:
    """A JSON number, or the strings "nan"/"inf"/"-inf" that stand for the non-finite ones."""
    return float(x) if x is not None else math.nan


def fmt(x) -> str:
    """A loss for a table: 3 decimals from 0.1 up, 3 significant digits below, "nan"/"inf" as such."""
    x = as_float(x)
    if not math.isfinite(x):
        return str(x)
    return f"{x:.3f}" if abs(x) >= 0.1 or x == 0 else f"{x:.3g}"


def fmt_delta(x: float) -> str:
    """A signed difference of losses: 3 decimals from 0.001 up, 3 significant digits below."""
    x = as_float(x)
    return f"{x:+.3f}" if abs(x) >= 0.001 or x == 0 or not math.isfinite(x) else f"{x:+.3g}"


def fmt_stats(stats: dict) -> str:
    """"mean ± std" ("mean (1 seed)" for one seed), with "(k non-finite)" when some seeds diverged."""
    if stats.get("n") == 1:
        text = f"{fmt(stats['mean'])} (1 seed)"
    else:
        text = f"{fmt(stats['mean'])} ± {fmt(stats['std'])}"
    if stats.get("n_nonfinite"):
        text += f" ({stats['n_nonfinite']} non-finite)"
    return text


def fmt_lr(x: float) -> str:
    return f"{float(x):g}"


def _is_hyperadam(label: str) -> bool:
    return label.startswith(HYPERADAM_PREFIX)


def _optimizer_labels(results: dict) -> list[str]:
    labels: list[str] = []
    for task in results["tasks"]:
        labels += [label for label in task["optimizers"] if label not in labels]
    return labels


def _reference_columns(results: dict) -> list[str]:
    columns: list[str] = []
    for task in results["tasks"]:
        columns += [name for name in task.get("reference", {}) if name not in columns]
    return columns


def best_baseline(task: dict) -> tuple[str, float] | None:
    """The tuned baseline with the lowest mean final loss on `task` (None without baselines)."""
    candidates = [(label, as_float(r["final_loss"]["mean"])) for label, r in task["results"].items()
                  if not _is_hyperadam(label) and math.isfinite(as_float(r["final_loss"]["mean"]))]
    return min(candidates, key=lambda c: c[1]) if candidates else None


# --- Markdown -----------------------------------------------------------------------------------

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
                         f"step size {fmt_lr(r['learning_rate'])}{_decay_text(info.get('decay_after'))}, untuned.")
    return lines


def _decay_text(decay_after: int | None) -> str:
    if decay_after is None:  # also every report written before the option existed
        return " (constant)"
    return f" for the first {decay_after} steps, then decaying as 1/√t (`decay_after={decay_after}`)"


def final_loss_table(results: dict) -> str:
    """Tasks × optimizers, mean ± std of the final loss; the best measured mean per row in bold;
    then the reference columns (the paper's numbers, baselines.md)."""
    labels, references = _optimizer_labels(results), _reference_columns(results)
    hyper = [label for label in labels if _is_hyperadam(label)]
    delta = len(hyper) == 1 and any(not _is_hyperadam(label) for label in labels)
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
                (task.get("reference", {}).get(name, "–") for name in references)]
        rows.append(row)
    return _table(header, rows)


def test_metrics_table(results: dict) -> str | None:
    """Tasks with a test split: each test metric, mean ± std per optimizer."""
    labels = _optimizer_labels(results)
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
    labels = _optimizer_labels(results)
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
        "Bold: the lowest measured mean in the row." + _reference_note(_reference_columns(results)),
        "",
    ]
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
        notes.append("the paper's numbers are its own (means over 100 initializations, its data and "
                     "hand-tuned rates)")
    if any("baselines.md" in c for c in columns):
        notes.append("baselines.md's are tuned Adam measured earlier on this setup (8 seeds, the "
                     "evaluation seeds)")
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
                if not _is_hyperadam(label):
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


# --- plots --------------------------------------------------------------------------------------

def _smooth(curves: np.ndarray, window: int) -> np.ndarray:
    if window <= 1:
        return curves
    kernel = np.ones(window) / window
    return np.stack([np.convolve(c, kernel, mode="valid") for c in curves])


def plot_curves(results: dict, path: str) -> str:
    """One panel per task: mean minibatch-loss curve per optimizer with a ± std band."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = [t for t in results["tasks"] if any(r["runs"] and "curve" in r["runs"][0] for r in t["results"].values())]
    columns = min(len(tasks), 4) or 1
    rows = math.ceil(len(tasks) / columns) or 1
    fig, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 3.3 * rows), squeeze=False)
    for ax in axes.flat[len(tasks):]:
        ax.set_visible(False)
    for ax, task in zip(axes.flat, tasks):
        lows = []
        for label, r in task["results"].items():
            curves = np.array([[as_float(x) for x in run["curve"]] for run in r["runs"]], dtype=np.float64)
            block = r["runs"][0].get("curve_block", 1)
            window = max(1, curves.shape[1] // 100) if task["steps"] > 1000 else 1
            curves = _smooth(curves, window)
            mean, std = np.nanmean(curves, axis=0), np.nanstd(curves, axis=0)
            x = (np.arange(curves.shape[1]) + window) * block
            line, = ax.plot(x, mean, label=f"{label} ({fmt_lr(r['learning_rate'])})",
                            lw=2.0 if _is_hyperadam(label) else 1.2)
            ax.fill_between(x, np.maximum(mean - std, np.nanmin(mean) * 0.5), mean + std,
                            color=line.get_color(), alpha=0.15, lw=0)
            lows.append(np.nanmin(mean))
        highs = [np.nanmax(np.array([[as_float(x) for x in run["curve"]] for run in r["runs"]]))
                 for r in task["results"].values()]
        if lows and min(lows) > 0 and np.nanmax(highs) / min(lows) > 5:
            ax.set_yscale("log")
        ax.set_title(f"{task['name']} ({task['steps']} steps)", fontsize=10)
        ax.set_xlabel("step")
        ax.set_ylabel("minibatch loss")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(f"{results['suite']}: mean over {len(results['settings']['seeds'])} seeds, ± 1 std", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_final_losses(results: dict, path: str) -> str:
    """Final loss per task (x) and optimizer (one line each), mean with ± std error bars."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = _optimizer_labels(results)
    names = [t["name"] for t in results["tasks"]]
    fig, ax = plt.subplots(figsize=(max(6.0, 0.8 * len(names) + 3), 4.0))
    for k, label in enumerate(labels):
        means = [as_float(t["results"][label]["final_loss"]["mean"]) if label in t["results"] else math.nan
                 for t in results["tasks"]]
        stds = [as_float(t["results"][label]["final_loss"]["std"]) if label in t["results"] else math.nan
                for t in results["tasks"]]
        offset = (k - (len(labels) - 1) / 2) * 0.06
        ax.errorbar(np.arange(len(names)) + offset, means, yerr=stds, marker="o", ms=4, capsize=2,
                    lw=2.0 if _is_hyperadam(label) else 1.0, label=label)
    ax.set_xticks(np.arange(len(names)))
    ax.set_xticklabels(names, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("final loss (training set)")
    ax.set_title(f"{results['suite']}: final loss, mean ± std over {len(results['settings']['seeds'])} seeds")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# --- files --------------------------------------------------------------------------------------

def sanitize(value):
    """A copy that strict JSON accepts: non-finite floats become "nan"/"inf"/"-inf", numpy scalars
    and arrays become Python numbers and lists."""
    if isinstance(value, dict):
        return {str(k): sanitize(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [sanitize(v) for v in value]
    if isinstance(value, np.ndarray):
        return sanitize(value.tolist())
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else str(float(value))
    return value


def save_json(results: dict, path: str) -> str:
    """Writes `results` as strict JSON (see `sanitize`)."""
    with open(path, "w") as f:
        json.dump(sanitize(results), f, separators=(",", ":"), allow_nan=False)
        f.write("\n")
    return path


def load_json(path: str) -> dict:
    with open(path) as f:
        return json.load(f)


def write_report(results: dict, output_dir: str) -> dict:
    """Writes `<suite>.json`, `<suite>_curves.png` (and `<suite>_final.png` for 3+ tasks) and
    `<suite>.md` into `output_dir`; records the image names in `results["images"]`. Returns the paths."""
    os.makedirs(output_dir, exist_ok=True)
    name = results["suite"]
    paths = {}
    images = {}
    if results.get("tasks"):
        paths["curves"] = plot_curves(results, os.path.join(output_dir, f"{name}_curves.png"))
        images["loss curves"] = os.path.basename(paths["curves"])
        if len(results["tasks"]) >= 3:
            paths["final"] = plot_final_losses(results, os.path.join(output_dir, f"{name}_final.png"))
            images["final loss per task"] = os.path.basename(paths["final"])
    results["images"] = images
    paths["json"] = save_json(results, os.path.join(output_dir, f"{name}.json"))
    paths["markdown"] = os.path.join(output_dir, f"{name}.md")
    with open(paths["markdown"], "w") as f:
        f.write(markdown(results) + "\n")
    return paths
