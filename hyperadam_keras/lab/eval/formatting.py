"""The numbers and labels of a results dict as the reports show them: number formats, which optimizer
is HyperAdam, the optimizers and reference columns of a suite, the best baseline of a task.

A results dict is the JSON-ready dict that `evaluate.run_suite` (or `evaluate.run_bench`) returns, or
the same read back from its JSON file.
"""

from __future__ import annotations

import math

from hyperadam_keras.lab.eval.references import LEGACY_COLUMNS

HYPERADAM_PREFIX = "HyperAdam"


def as_float(x: float | str | None) -> float:
    """A JSON number, or the strings "nan"/"inf"/"-inf" that stand for the non-finite ones."""
    return float(x) if x is not None else math.nan


def fmt(x: float | str | None) -> str:
    """A loss for a table: 3 decimals from 0.1 up, 3 significant digits below, "nan"/"inf" as such."""
    x = as_float(x)
    if not math.isfinite(x):
        return str(x)
    return f"{x:.3f}" if abs(x) >= 0.1 or x == 0 else f"{x:.3g}"


def fmt_delta(x: float | str) -> str:
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


def is_hyperadam(label: str) -> bool:
    """Whether an optimizer label names a HyperAdam (one label per bundle: "HyperAdam[...]")."""
    return label.startswith(HYPERADAM_PREFIX)


def optimizer_labels(results: dict) -> list[str]:
    """Every optimizer of any task, in order of first appearance."""
    labels: list[str] = []
    for task in results["tasks"]:
        labels += [label for label in task["optimizers"] if label not in labels]
    return labels


def task_references(task: dict) -> dict:
    """A task's reference columns (name -> number or text), the columns of older JSONs renamed."""
    return {LEGACY_COLUMNS.get(name, name): value for name, value in task.get("reference", {}).items()}


def reference_columns(results: dict) -> list[str]:
    """Every reference column of any task, in order of first appearance."""
    columns: list[str] = []
    for task in results["tasks"]:
        columns += [name for name in task_references(task) if name not in columns]
    return columns


def best_baseline(task: dict) -> tuple[str, float] | None:
    """The tuned baseline with the lowest mean final loss on `task` (None without baselines)."""
    candidates = [(label, as_float(r["final_loss"]["mean"])) for label, r in task["results"].items()
                  if not is_hyperadam(label) and math.isfinite(as_float(r["final_loss"]["mean"]))]
    return min(candidates, key=lambda c: c[1]) if candidates else None

