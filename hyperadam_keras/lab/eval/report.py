"""Reports of evaluation results: `write_report` writes a suite's JSON of every raw number, its PNG
plots and its Markdown section; this module also gathers the report API in one namespace.

Every function takes the JSON-ready dict that `evaluate.run_suite` (or `evaluate.run_bench`) returns,
so a report can be re-rendered from a saved JSON without re-running anything. The parts, one concern
each: `formatting.py` (numbers and labels), `markdown_report.py` (tables, sections, BENCHMARKS.md),
`plots.py` (PNGs).
"""

from __future__ import annotations

import json
import math
import os
from typing import Any

import numpy as np

from hyperadam_keras.lab.eval.formatting import (HYPERADAM_PREFIX, as_float, best_baseline, fmt, fmt_delta,
                                                 fmt_lr, fmt_stats, is_hyperadam, optimizer_labels,
                                                 reference_columns)
from hyperadam_keras.lab.eval.markdown_report import (BENCHMARKS_HEADER, bench_markdown, benchmarks_markdown,
                                                      final_loss_table, learning_rate_table, markdown,
                                                      suite_markdown, summary_table, test_metrics_table)
from hyperadam_keras.lab.eval.plots import plot_curves, plot_final_losses

__all__ = [
    "HYPERADAM_PREFIX", "as_float", "best_baseline", "fmt", "fmt_delta", "fmt_lr", "fmt_stats", "is_hyperadam",
    "optimizer_labels", "reference_columns",
    "BENCHMARKS_HEADER", "bench_markdown", "benchmarks_markdown", "final_loss_table", "learning_rate_table",
    "markdown", "suite_markdown", "summary_table", "test_metrics_table",
    "plot_curves", "plot_final_losses",
    "sanitize", "save_json", "load_json", "write_report",
]


def sanitize(value: Any) -> Any:
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
