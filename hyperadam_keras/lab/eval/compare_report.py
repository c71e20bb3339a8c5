"""What `hyperadam-keras compare` shows and writes for a results dict of `compare.compare`: the table
(`table`), the loss curves (`plot_curves`) and the files (`write_outputs`)."""

from __future__ import annotations

import json
import math
import os

from hyperadam_keras.lab.eval import plots
from hyperadam_keras.lab.eval.formatting import as_float, fmt, fmt_lr, fmt_stats, is_hyperadam


def _fmt_bytes(n: float) -> str:
    for unit, size in (("GiB", 2 ** 30), ("MiB", 2 ** 20), ("KiB", 2 ** 10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n:.0f} B"


def _fmt_seconds(stats: dict) -> str:
    mean = as_float(stats["mean"])
    return "–" if not math.isfinite(mean) else f"{mean * 1e3:.2f} ms" if mean < 1 else f"{mean:.2f} s"


def _rate(entry: dict) -> str:
    if not entry["tuned"]:
        return f"{fmt_lr(entry['learning_rate'])} (default, untuned)"
    grid = entry["tuning"]["grid"]
    edge = ", at the grid's edge" if entry["tuning"]["at_edge"] else ""
    return f"{fmt_lr(entry['learning_rate'])} (tuned on {fmt_lr(grid[0])}…{fmt_lr(grid[-1])}{edge})"


def _validation_keys(results: dict) -> list[str]:
    keys: list[str] = []
    for entry in results["optimizers"].values():
        keys += [k for k in entry["summary"].get("validation", {}) if k not in keys]
    return sorted(keys, key=lambda k: (k != "loss", keys.index(k)))  # the loss first


def table(results: dict) -> str:
    """The comparison as a Markdown table (mean ± std over the evaluation seeds) with the model's facts
    above it, each tuned baseline's grid and a one-line verdict per baseline below it."""
    data, settings = results["data"], results["settings"]
    seeds, tune = settings["seeds"], settings["tuning_seeds"]
    samples = f"{data['training_samples']:,} training samples, batch {data['batch_size']}, " \
        if data["training_samples"] is not None else "a tf.data.Dataset, "
    steps = f"{data['steps_per_run']} steps per run" if data["steps_per_run"] is not None else "its length unknown"
    lines = [f"model: {results['model']} ({data['parameters']:,} parameters; {samples}{steps})",
             f"evaluation seeds {seeds[0]}..{seeds[-1]}; baselines tuned on tuning seed(s) "
             f"{', '.join(map(str, tune))}; final loss = model.evaluate on the whole training set", ""]
    val_keys = _validation_keys(results)
    header = ["optimizer", "learning rate", "final train loss", *[f"val {k}" for k in val_keys],
              "time/step (median)", "optimizer state", "diverged"]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for label, entry in results["optimizers"].items():
        s = entry["summary"]
        validation = s.get("validation", {})
        memory = s["memory"]
        cells = [label, _rate(entry), fmt_stats(s["final_loss"]),
                 *[fmt_stats(validation[k]) if k in validation else "–" for k in val_keys],
                 _fmt_seconds(s["median_step_seconds"]),
                 f"{memory['bytes_per_parameter']:.0f} B/param ({_fmt_bytes(memory['state_bytes'])})",
                 f"{s['diverged']} of {s['runs']}"]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    for label, entry in results["optimizers"].items():
        if entry["tuned"]:
            t = entry["tuning"]
            points = [f"{fmt_lr(float(lr))}: {fmt(v)}" + (" (chosen)" if float(lr) == t["best_lr"] else "")
                      for lr, v in t["mean_final_loss"].items()]
            lines.append(f"{label}'s grid, mean final train loss on the tuning seeds: {', '.join(points)}")
    lines += verdicts(results)
    return "\n".join(lines)


def verdicts(results: dict) -> list[str]:
    """One line per baseline: HyperAdam's mean final training (and validation) loss against it."""
    entries = results["optimizers"]
    ours = next((e for label, e in entries.items() if is_hyperadam(label)), None)
    if ours is None:
        return []
    lines = []
    for label, entry in entries.items():
        if is_hyperadam(label):
            continue
        parts = []
        for name, get in (("final train loss", lambda e: e["summary"]["final_loss"]),
                          ("val loss", lambda e: e["summary"].get("validation", {}).get("loss"))):
            a, b = get(ours), get(entry)
            if a is None or b is None:
                continue
            a, b = as_float(a["mean"]), as_float(b["mean"])
            word = "lower" if a < b else "higher" if a > b else "equal"
            parts.append(f"{name} {fmt(a)} vs {fmt(b)} ({word})")
        a, b = (as_float(e["summary"]["median_step_seconds"]["mean"]) for e in (ours, entry))
        if math.isfinite(a) and math.isfinite(b) and b > 0:
            parts.append(f"time per step {a / b:.1f}x")
        diverged = ours["summary"]["diverged"], entry["summary"]["diverged"]
        parts.append(f"diverged {diverged[0]} vs {diverged[1]} of {ours['summary']['runs']} seeds")
        lines.append(f"HyperAdam against tuned {label}: " + "; ".join(parts))
    return lines


def plot_curves(results: dict, path: str) -> str:
    """The per-step training loss of each optimizer, mean ± std over the evaluation seeds
    (`plots.plot_curves`, the evaluation suites' plot, with the model as its one task)."""
    task = {"name": results["model"], "steps": results["data"]["steps_per_run"] or max(
                len(run["curve"]) * run["curve_block"] for e in results["optimizers"].values() for run in e["runs"]),
            "results": {label: {"runs": e["runs"], "learning_rate": e["learning_rate"]}
                        for label, e in results["optimizers"].items()}}
    return plots.plot_curves({"suite": "compare", "settings": results["settings"], "tasks": [task]}, path)


def write_outputs(results: dict, output_dir: str, json_path: str | None = None) -> dict[str, str]:
    """Writes OUTPUT_DIR/curves.png and the JSON (default OUTPUT_DIR/compare.json); returns their paths."""
    os.makedirs(output_dir, exist_ok=True)
    json_path = json_path or os.path.join(output_dir, "compare.json")
    os.makedirs(os.path.dirname(os.path.abspath(json_path)), exist_ok=True)
    with open(json_path, "w") as f:
        json.dump(results, f, indent=1)
        f.write("\n")
    return {"json": json_path, "curves": plot_curves(results, os.path.join(output_dir, "curves.png"))}
