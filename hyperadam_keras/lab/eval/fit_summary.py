"""The targets of a fit suite (`generalization`), computed from its results: HyperAdam against tuned
Adam per task (final training loss ratio, held-out accuracy difference) and over the suite (wins,
geometric mean of the ratios, worst ratio, divergences).

Beside the final loss (`model.evaluate`, inference mode) it gives the *end-of-training batch loss*: the
mean minibatch loss of the last 10 % of the steps, from the runs' curves (training mode). The two differ
where inference mode differs: BatchNormalization's moving statistics (momentum 0.99) lag weights that
still move after a few hundred steps, and can put the evaluated loss far above the batch losses."""

from __future__ import annotations

import math

import numpy as np

from hyperadam_keras.lab.eval.formatting import as_float, is_hyperadam

REFERENCE_BASELINE = "Adam"


def _mean(stats: dict | None) -> float:
    return as_float(stats["mean"]) if stats else math.nan


def end_batch_loss(result: dict, fraction: float = 0.1) -> float:
    """Mean over the runs of the mean minibatch loss over the last `fraction` of each run's curve."""
    values = []
    for run in result["runs"]:
        curve = np.asarray([as_float(x) for x in run.get("curve") or []], dtype=np.float64)
        if curve.size == 0:
            return math.nan
        values.append(float(np.mean(curve[-max(1, int(round(curve.size * fraction))):])))
    return float(np.mean(values)) if values else math.nan


def target_summary(results: dict, baseline: str = REFERENCE_BASELINE) -> dict:
    """Per task and overall: HyperAdam's mean final loss over `baseline`'s (tuned), the held-out accuracy
    difference (percentage points, classification tasks), and the diverged runs of every optimizer."""
    rows, ratios = [], []
    for task in results["tasks"]:
        labels = [label for label in task["results"] if is_hyperadam(label)]
        if not labels or baseline not in task["results"]:
            continue
        hyper, base = task["results"][labels[0]], task["results"][baseline]
        h, b = _mean(hyper["final_loss"]), _mean(base["final_loss"])
        ratio = h / b if math.isfinite(h) and math.isfinite(b) and b > 0 else math.inf
        accuracy = None
        if (hyper.get("test") or {}).get("accuracy") and (base.get("test") or {}).get("accuracy"):
            accuracy = 100.0 * (_mean(hyper["test"]["accuracy"]) - _mean(base["test"]["accuracy"]))
        ratios.append(ratio)
        rows.append({"task": task["name"], "hyperadam": h, "baseline": b, "ratio": ratio,
                     "end_batch_loss": (end_batch_loss(hyper), end_batch_loss(base)),
                     "accuracy_points": accuracy,
                     "diverged": {label: r.get("diverged", 0) for label, r in task["results"].items()},
                     "runs": len(hyper["runs"])})
    finite = [r for r in ratios if math.isfinite(r) and r > 0]
    geometric = math.exp(sum(map(math.log, finite)) / len(finite)) if finite and len(finite) == len(ratios) \
        else math.inf
    return {"baseline": baseline, "tasks": rows, "wins": sum(r <= 1.0 for r in ratios), "count": len(ratios),
            "geometric_mean_ratio": geometric, "worst_ratio": max(ratios) if ratios else math.nan,
            "hyperadam_diverged": sum(next(v for k, v in r["diverged"].items() if is_hyperadam(k)) for r in rows)}


def target_markdown(results: dict, heading: str = "###") -> str:
    """`target_summary` as a table and one line of totals."""
    summary = target_summary(results)
    if not summary["tasks"]:
        return ""
    base = summary["baseline"]
    lines = [f"{heading} HyperAdam (untuned) against tuned {base}", "",
             f"| task | HyperAdam final loss | tuned {base} | ratio | held-out accuracy, points | diverged runs "
             f"| end-of-training batch loss, HyperAdam / tuned {base} |",
             "|---|---|---|---|---|---|---|"]
    for row in summary["tasks"]:
        accuracy = "–" if row["accuracy_points"] is None else f"{row['accuracy_points']:+.1f}"
        diverged = ", ".join(f"{k} {v}" for k, v in row["diverged"].items() if v) or "none"
        end_h, end_b = row["end_batch_loss"]
        lines.append(f"| {row['task']} | {row['hyperadam']:.4g} | {row['baseline']:.4g} | {row['ratio']:.2f} | "
                     f"{accuracy} | {diverged} | {end_h:.3g} / {end_b:.3g} |")
    lines += ["", f"HyperAdam's final training loss is at most tuned {base}'s on {summary['wins']} of "
                  f"{summary['count']} tasks; geometric mean of the ratios {summary['geometric_mean_ratio']:.3f}, "
                  f"worst {summary['worst_ratio']:.2f}; HyperAdam runs diverged: {summary['hyperadam_diverged']} "
                  f"(a final loss above the initial one counts, also where only BatchNormalization's moving "
                  f"statistics put it there: compare the end-of-training batch loss).", ""]
    return "\n".join(lines)
