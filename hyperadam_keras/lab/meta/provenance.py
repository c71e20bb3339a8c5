"""What an exported bundle records about how it was made: the run's recipe, task, data, seed, commit,
progress and meta-validation history (``assets/meta.json``); and the export itself.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from hyperadam_keras.bundle import save_meta_params
from hyperadam_keras.lab.meta.config import MetaTrainConfig
from hyperadam_keras.lab.meta.families import validation_task_seeds
from hyperadam_keras.meta_params import MetaParams

BUNDLE_DIR = "best_bundle"


def git_commit() -> str | None:
    """The package checkout's commit (with '-dirty' if it has uncommitted changes), or None."""
    root = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                                timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("-dirty" if dirty else "")


def bundle_metadata(config: MetaTrainConfig, task_name: str, task_description: str | None, counters: dict,
                    meta_step: int, complete: bool, elapsed_s: float, validation: list[dict]) -> dict:
    """The provenance recorded in the exported bundle's meta.json."""
    return {
        "description": f"HyperAdam meta-trained on {task_name}" + ("" if complete else " (run not finished)"),
        "trained": True,
        "made_by": {
            "command": "hyperadam-keras meta-train",
            "config": config.recipe(),
            "task": task_name,
            "task_description": task_description,
            "data": {"source": config.data_source, "data_dir": config.data_dir},
            "seed": config.seed,
            "git_commit": git_commit(),
            "initialized_from": config.init,
        },
        "meta_training": {
            "complete": complete,
            "meta_steps": meta_step,
            "total_meta_steps": config.total_meta_steps,
            "optimizee_steps": meta_step * config.truncation,
            "skipped_meta_steps": int(counters["skipped"].numpy()),
            "elapsed_s": round(elapsed_s, 1),
        },
        "validation": {
            "task_seeds": validation_task_seeds(config),
            "metric": {
                "mean-loss": f"mean optimizee loss over the horizon of {config.horizon} steps, averaged over "
                             "the seeds",
                "final-loss": f"geometric mean over the seeds of the full training loss after {config.horizon} "
                              "steps",
                "held-out-loss": f"geometric mean over the seeds of the loss on each task's held-out split after "
                                 f"{config.horizon} steps",
            }[config.validation_metric],
            "initial_loss": float(counters["initial_validation_loss"].numpy()),
            "best_loss": float(counters["best_validation_loss"].numpy()),
            "best_epoch": int(counters["best_epoch"].numpy()),
            "history": [[int(r["epoch"]), float(r["validation_loss"])] for r in validation],
        },
    }


def export_bundle(params: MetaParams, path: str | os.PathLike, metadata: dict) -> Path:
    """Writes `params` as a bundle at `path`, replacing a previous export there."""
    return save_meta_params(params, path, metadata=metadata, overwrite=True)
