"""PNG plots of evaluation results: the loss curves of every task, and the final loss per task."""

from __future__ import annotations

import math

import numpy as np

from hyperadam_keras.lab.eval.formatting import as_float, fmt_lr, is_hyperadam, optimizer_labels


def _smooth(curves: np.ndarray, window: int) -> np.ndarray:
    if window <= 1:
        return curves
    kernel = np.ones(window) / window
    return np.stack([np.convolve(c, kernel, mode="valid") for c in curves])


def plot_curves(results: dict, path: str) -> str:
    """One panel per task: mean minibatch-loss curve per optimizer with a ± std band."""
    from hyperadam_keras.lab._requires import require
    matplotlib = require("matplotlib", feature="the evaluation plots")
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
                            lw=2.0 if is_hyperadam(label) else 1.2)
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
    from hyperadam_keras.lab._requires import require
    matplotlib = require("matplotlib", feature="the evaluation plots")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = optimizer_labels(results)
    names = [t["name"] for t in results["tasks"]]
    fig, ax = plt.subplots(figsize=(max(6.0, 0.8 * len(names) + 3), 4.0))
    for k, label in enumerate(labels):
        means = [as_float(t["results"][label]["final_loss"]["mean"]) if label in t["results"] else math.nan
                 for t in results["tasks"]]
        stds = [as_float(t["results"][label]["final_loss"]["std"]) if label in t["results"] else math.nan
                for t in results["tasks"]]
        offset = (k - (len(labels) - 1) / 2) * 0.06
        ax.errorbar(np.arange(len(names)) + offset, means, yerr=stds, marker="o", ms=4, capsize=2,
                    lw=2.0 if is_hyperadam(label) else 1.0, label=label)
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

