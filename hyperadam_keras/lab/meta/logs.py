"""The logs of a meta-training run: CSV files, TensorBoard scalars and the loss plot.

    train_log.csv        one row per meta-step: meta-loss, meta-gradient norm, skipped, time
    validation_log.csv   one row per meta-validation (before training and after every epoch)
    tensorboard/         the same scalars for TensorBoard
    meta_loss.png        meta-train and meta-validation loss
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
import tensorflow as tf

TRAIN_LOG = "train_log.csv"
VALIDATION_LOG = "validation_log.csv"
PLOT_FILE = "meta_loss.png"

TRAIN_FIELDS = ("meta_step", "epoch", "meta_batch", "truncation", "task_seed", "meta_loss", "grad_norm",
                "skipped", "elapsed_s")
VALIDATION_FIELDS = ("meta_step", "epoch", "validation_loss", "best_validation_loss", "elapsed_s")


def read_csv(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def truncate_csv(path: Path, fields: tuple[str, ...], max_meta_step: int) -> None:
    """Drops rows written after the checkpoint that a resume starts from (they will be redone)."""
    rows = [r for r in read_csv(path) if int(r["meta_step"]) <= max_meta_step]
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)


def append_csv(path: Path, fields: tuple[str, ...], row: dict) -> None:
    new = not path.is_file()
    with path.open("a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        if new:
            writer.writeheader()
        writer.writerow(row)


def plot_losses(output_dir: str | os.PathLike) -> Path:
    """Writes `meta_loss.png`: meta-train loss per meta-step (and its per-epoch mean) and validation."""
    from hyperadam_keras.lab._requires import require
    matplotlib = require("matplotlib", feature="the meta-training plot")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    output_dir = Path(output_dir)
    train = read_csv(output_dir / TRAIN_LOG)
    valid = read_csv(output_dir / VALIDATION_LOG)
    fig, ax = plt.subplots(figsize=(8, 4.5))
    if train:
        steps = np.array([int(r["meta_step"]) for r in train])
        losses = np.array([float(r["meta_loss"]) for r in train])
        ax.plot(steps, losses, color="tab:blue", alpha=0.25, lw=0.8, label="meta-train loss (per truncation)")
        epochs = np.array([int(r["epoch"]) for r in train])
        for_epochs = [(steps[epochs == e].max(), np.nanmean(losses[epochs == e])) for e in np.unique(epochs)]
        ax.plot(*zip(*for_epochs), color="tab:blue", marker=".", label="meta-train loss (epoch mean)")
    if valid:
        ax.plot([int(r["meta_step"]) for r in valid], [float(r["validation_loss"]) for r in valid],
                color="tab:red", marker="o", label="meta-validation loss")
    ax.set_xlabel("meta-step (truncation)")
    ax.set_ylabel("mean optimizee loss")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path = output_dir / PLOT_FILE
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


class RunLogs:
    """Appends the rows of a run to its CSV logs and TensorBoard; a resume first drops the rows logged
    after its checkpoint (by a process that was killed), since they will be redone."""

    def __init__(self, output_dir: Path, meta_step: int, validated_at: int):
        self.output_dir = output_dir
        for name, fields, last in ((TRAIN_LOG, TRAIN_FIELDS, meta_step),
                                   (VALIDATION_LOG, VALIDATION_FIELDS, validated_at)):
            if (output_dir / name).is_file():
                truncate_csv(output_dir / name, fields, last)
        self.writer = tf.summary.create_file_writer(str(output_dir / "tensorboard"))

    def train(self, row: dict) -> None:
        """Logs one meta-step (a row of `TRAIN_FIELDS`)."""
        append_csv(self.output_dir / TRAIN_LOG, TRAIN_FIELDS, row)
        with self.writer.as_default():
            tf.summary.scalar("meta_train/loss", row["meta_loss"], step=row["meta_step"])
            tf.summary.scalar("meta_train/grad_norm", row["grad_norm"], step=row["meta_step"])

    def validation(self, row: dict) -> None:
        """Logs one meta-validation (a row of `VALIDATION_FIELDS`)."""
        append_csv(self.output_dir / VALIDATION_LOG, VALIDATION_FIELDS, row)
        with self.writer.as_default():
            tf.summary.scalar("meta_validation/loss", row["validation_loss"], step=row["meta_step"])

    def validation_rows(self) -> list[dict]:
        """The validation log so far."""
        return read_csv(self.output_dir / VALIDATION_LOG)

    def flush(self) -> None:
        self.writer.flush()
