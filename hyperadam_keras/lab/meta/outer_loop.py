"""Meta-training HyperAdam: the outer loop around the meta-update (`trainer`) and the unroll (`unroll`).

One *meta-step* is one truncation of K optimizee steps followed by one meta-update, so a meta-batch
(one task, one horizon of T steps) is T / K meta-steps; an epoch is `meta_batches_per_epoch`
meta-batches, with a meta-validation before training and after every epoch that keeps the best
meta-parameters. The recipe is a `config.MetaTrainConfig`, the task a `families` family (or yours).

Seeds and exact resumption. There is no stateful random generator anywhere: the task of meta-batch
n (counted over all epochs) is the task with seed `seed · 2³² + n`, its batches are keyed by
(task seed, step), and the meta-validation tasks are a fixed set of seeds disjoint from those. So
the whole run is a function of the config and the meta-step counter, and a checkpoint (meta-
parameters, meta-optimizer slots, best meta-parameters, counters, and the unfinished task's weights
and optimizer state) resumes it exactly.

Output directory:
    config.json          the run's configuration (a resume checks it)
    checkpoints/         tf.train.Checkpoint, written every `checkpoint_minutes` and at every stop
    train_log.csv        one row per meta-step: meta-loss, meta-gradient norm, skipped, time
    validation_log.csv   one row per meta-validation (before training and after every epoch)
    tensorboard/         the same scalars for TensorBoard
    meta_loss.png        meta-train and meta-validation loss
    best_bundle/         the best meta-parameters so far (by meta-validation), written at every stop
"""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from hyperadam_keras.lab.meta import unroll as U
from hyperadam_keras.lab.meta.checkpoints import CHECKPOINT_DIR, RunCheckpoint
from hyperadam_keras.lab.meta.config import MetaTrainConfig, start_run_directory
from hyperadam_keras.lab.meta.families import TASKS, build_task, training_task_seed, validation_task_seeds
from hyperadam_keras.lab.meta.logs import RunLogs, plot_losses
from hyperadam_keras.lab.meta.provenance import BUNDLE_DIR, bundle_metadata, export_bundle
from hyperadam_keras.lab.meta.signals import StopOnSignal
from hyperadam_keras.lab.meta.trainer import MetaTrainer
from hyperadam_keras.meta_params import MetaParams


@dataclasses.dataclass
class MetaTrainResult:
    """What a `meta_train` call achieved."""

    meta_step: int  # meta-steps done in total (all invocations)
    total_meta_steps: int
    complete: bool
    initial_validation_loss: float
    best_validation_loss: float
    best_epoch: int  # 0 = the initial meta-parameters were best
    bundle_path: Path
    output_dir: Path
    last_params: MetaParams  # the meta-parameters at the stop (the bundle holds the best ones)


class _Run:
    """One invocation of the outer loop on a run directory: the trainer, its checkpoint and logs, and
    the position (meta-step, the task in progress) that the loop advances."""

    def __init__(self, config: MetaTrainConfig, output_dir: Path, trainer: MetaTrainer, started: float,
                 resume: bool):
        self.config, self.output_dir, self.trainer, self.started = config, output_dir, trainer, started
        self.tasks = trainer.tasks
        self.task_name = " | ".join(getattr(t, "name", type(t).__name__) for t in self.tasks)
        self.best = U.meta_variables(trainer.meta_params(), trainable=False)
        self.checkpoint = RunCheckpoint(config, self.tasks, trainer.meta, trainer.meta_optimizer, self.best,
                                        output_dir / CHECKPOINT_DIR)
        if resume:
            self.checkpoint.restore_latest()
        self.counters = self.checkpoint.counters
        self.meta_step = int(self.counters["meta_step"].numpy())
        self.logs = RunLogs(output_dir, self.meta_step, int(self.counters["validated_at"].numpy()))
        self.elapsed_before = float(self.counters["elapsed_s"].numpy())
        self.validation_seeds = validation_task_seeds(config)
        self.state = self.checkpoint.unfinished_task(self.task_index(self.meta_step))
        self.progress = None
        self.recent: list[float] = []  # the last 50 meta-losses, for the progress bar

    def task_index(self, step: int) -> int:
        """The task of the mixture that meta-step `step` trains on."""
        return (step // self.config.truncations_per_task) % len(self.tasks)

    def elapsed(self) -> float:
        """Seconds of meta-training over all invocations."""
        return self.elapsed_before + time.monotonic() - self.started

    def save_checkpoint(self) -> None:
        self.checkpoint.save(self.meta_step, self.state, self.task_index(self.meta_step), self.elapsed())

    def validate(self) -> float:
        """Meta-validates, keeps the meta-parameters if they are the best so far, and logs the result."""
        counters = self.counters
        epoch = self.meta_step // self.config.meta_steps_per_epoch
        loss = self.trainer.validate(self.validation_seeds)
        if self.meta_step == 0:
            counters["initial_validation_loss"].assign(loss)
        if loss < counters["best_validation_loss"].numpy():  # NaN never wins
            counters["best_validation_loss"].assign(loss)
            counters["best_epoch"].assign(epoch)
            for target, source in zip(self.best, self.trainer.meta):
                target.assign(source)
        counters["validated_at"].assign(self.meta_step)
        self.logs.validation({
            "meta_step": self.meta_step, "epoch": epoch, "validation_loss": loss,
            "best_validation_loss": float(counters["best_validation_loss"].numpy()),
            "elapsed_s": round(self.elapsed(), 2)})
        return loss

    def train_one_meta_step(self) -> None:
        """One truncation of the current task (a fresh one at a horizon's start) and one meta-update."""
        per_task = self.config.truncations_per_task
        meta_batch, truncation = divmod(self.meta_step, per_task)
        seed, index = training_task_seed(self.config, meta_batch), self.task_index(self.meta_step)
        if truncation == 0 or self.state is None:
            self.state = self.trainer.start_task(seed, index)
        meta_loss, grad_norm, applied, self.state = self.trainer.train_step(self.state, seed, index)
        if not applied:  # a non-finite meta-gradient: skip it; the next meta-step restarts the task
            self.counters["skipped"].assign_add(1)
            self.state = None
        self.meta_step += 1
        if self.meta_step % per_task == 0:
            self.state = None  # the horizon is over: the next meta-step starts a fresh task
        self.logs.train({
            "meta_step": self.meta_step, "epoch": (self.meta_step - 1) // self.config.meta_steps_per_epoch + 1,
            "meta_batch": meta_batch, "truncation": truncation, "task_seed": seed, "meta_loss": meta_loss,
            "grad_norm": grad_norm, "skipped": int(not applied), "elapsed_s": round(self.elapsed(), 2)})
        self.recent = (self.recent + [meta_loss])[-50:]
        if self.progress is not None:
            self.progress.update(1)
            self.progress.set_postfix(meta_loss=f"{np.nanmean(self.recent):.4f}",
                                      best=f"{self.counters['best_validation_loss'].numpy():.4f}")

    def stop_requested(self, stop: StopOnSignal, steps_this_run: int) -> bool:
        """A signal arrived, or this invocation reached its meta-step or time limit."""
        config = self.config
        return stop.signal is not None or (
            config.stop_after_meta_steps is not None and steps_this_run >= config.stop_after_meta_steps) or (
            config.stop_after_minutes is not None and time.monotonic() - self.started >= 60 * config.stop_after_minutes)

    def loop(self, stop: StopOnSignal) -> bool:
        """Meta-steps until all epochs are done (False) or a stop is requested (True), validating at
        every epoch boundary and checkpointing every `checkpoint_minutes`."""
        config = self.config
        if config.progress_bar:
            from hyperadam_keras.lab._requires import require
            tqdm = require("tqdm.auto", feature="the meta-training progress bar").tqdm
            self.progress = tqdm(total=config.total_meta_steps, initial=self.meta_step, unit="meta-step",
                                 dynamic_ncols=True, desc="meta-train")
        last_checkpoint = time.monotonic()
        steps_this_run = 0
        while True:
            if (self.meta_step % config.meta_steps_per_epoch == 0
                    and int(self.counters["validated_at"].numpy()) != self.meta_step):
                loss = self.validate()
                if self.progress is not None:
                    self.progress.set_postfix(meta_loss=f"{np.mean(self.recent):.4f}" if self.recent else "-",
                                              val=f"{loss:.4f}",
                                              best=f"{self.counters['best_validation_loss'].numpy():.4f}")
            if self.meta_step >= config.total_meta_steps:
                return False
            if self.stop_requested(stop, steps_this_run):
                return True
            self.train_one_meta_step()
            steps_this_run += 1
            if time.monotonic() - last_checkpoint >= 60 * config.checkpoint_minutes:
                self.save_checkpoint()
                last_checkpoint = time.monotonic()

    def finish(self, stopped_early: bool, task_description: str | None) -> tuple[Path, dict, bool]:
        """Writes the checkpoint, the logs, the plot and the best bundle: (bundle path, its metadata, complete)."""
        if self.progress is not None:
            self.progress.close()
        self.save_checkpoint()
        self.logs.flush()
        plot_losses(self.output_dir)
        complete = not stopped_early and self.meta_step >= self.config.total_meta_steps
        best_params = U.to_meta_params(self.best, "best meta-parameters", self.config.feature_normalization)
        metadata = bundle_metadata(self.config, self.task_name, task_description, self.counters, self.meta_step,
                                   complete, self.elapsed(), self.logs.validation_rows())
        return export_bundle(best_params, self.output_dir / BUNDLE_DIR, metadata), metadata, complete


def meta_train(config: MetaTrainConfig, output_dir: str | os.PathLike, resume: bool = False, task: Any = None,
               task_description: str | None = None) -> MetaTrainResult:
    """Runs (or, with `resume`, continues) meta-training into `output_dir`. See the module docstring.

    `task`: your own task object (see `hyperadam_keras.lab.tasks.Task`) or list of tasks (a mixture)
    instead of `config.task`; then give `task_description` for the bundle's provenance. Returns when all
    epochs are done, a stop-after limit is reached or SIGTERM/SIGINT arrives (at the next meta-step
    boundary); in every case a checkpoint, the logs, the plot and `best_bundle/` are written.
    """
    started = time.monotonic()
    output_dir = Path(output_dir)
    start_run_directory(config, output_dir, resume)
    if task is None:
        task = build_task(config)
        task_description = TASKS[config.task].description
    run = _Run(config, output_dir, MetaTrainer(config, task), started, resume)
    stop = StopOnSignal()
    try:
        stopped_early = run.loop(stop)
        # Still under the signal handler: a SIGTERM now must not cut the checkpoint and bundle short.
        bundle_path, metadata, complete = run.finish(stopped_early, task_description)
    finally:
        stop.restore()
    return MetaTrainResult(
        meta_step=run.meta_step, total_meta_steps=config.total_meta_steps, complete=complete,
        initial_validation_loss=metadata["validation"]["initial_loss"],
        best_validation_loss=metadata["validation"]["best_loss"], best_epoch=metadata["validation"]["best_epoch"],
        bundle_path=bundle_path, output_dir=output_dir,
        last_params=run.trainer.meta_params("last meta-parameters"))
