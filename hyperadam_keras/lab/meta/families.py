"""The task families of meta-training, as named compositions of task-registry kinds, and the task seeds.

A family is one task or a round-robin mixture of tasks, each a `Member`: a kind of
`hyperadam_keras.lab.tasks.registry` with its arguments, some of them (`FromConfig`) taken from the
run's config (the MNIST source, the batch size). Meta-batch n trains on the mixture's task n mod its
size, with the task seed `training_task_seed`; meta-validation uses the fixed `validation_task_seeds`.
"""

from __future__ import annotations

from typing import Any, Mapping, NamedTuple

from hyperadam_keras.lab.meta.config import MetaTrainConfig
from hyperadam_keras.lab.tasks.registry import build

_TRAIN_SEED_STRIDE = 2 ** 32  # task seed of meta-batch n: seed · 2³² + n
_VALIDATION_SEED_BASE = 2 ** 62  # validation seeds: 2⁶² + seed · 2¹⁶ + i, never a training seed


class FromConfig(NamedTuple):
    """A member's argument that is a field of the run's `MetaTrainConfig`."""

    field: str


class Member(NamedTuple):
    """One task of a family: a task-registry kind and its arguments (`FromConfig` ones filled in)."""

    kind: str
    kwargs: Mapping[str, Any]

    def build(self, config: MetaTrainConfig) -> Any:
        return build(self.kind, **{name: getattr(config, value.field) if isinstance(value, FromConfig) else value
                                   for name, value in self.kwargs.items()})


class TaskFamily(NamedTuple):
    """A meta-training task family: its members (more than one: a mixture) and its description."""

    members: tuple[Member, ...]
    description: str

    def build(self, config: MetaTrainConfig) -> Any:
        """The task, or for a mixture the list of tasks (meta-batch n trains on task n mod len(list))."""
        tasks = [member.build(config) for member in self.members]
        return tasks[0] if len(tasks) == 1 else tasks


# The arguments MNIST tasks and batched tasks take from the config.
_BATCHED = {"batch_size": FromConfig("batch_size")}
_MNIST = {"source": FromConfig("data_source"), "data_dir": FromConfig("data_dir"), **_BATCHED}

# (hidden layers, activation) and (LSTM layers, input noise) of the "eval-mix" family: Table 1's four
# activations, deeper sigmoid MLPs (Fig. 5d) and Table 2's LSTMs, at the suites' sizes; and the CNN
# variants that "eval-mix-cnn" adds.
EVAL_MIX_MLPS = ((1, "sigmoid"), (1, "relu"), (1, "elu"), (1, "tanh"), (3, "sigmoid"), (6, "sigmoid"))
EVAL_MIX_LSTMS = ((1, 0.1), (1, 0.01), (2, 0.1))
EVAL_MIX_CNNS = ("cnn1", "cnn2")

_EVAL_MIX = tuple(Member("mlp", {**_MNIST, "hidden_layers": layers, "activation": activation})
                  for layers, activation in EVAL_MIX_MLPS) + tuple(
    Member("sine-lstm", {**_BATCHED, "num_layers": layers, "noise_std": noise}) for layers, noise in EVAL_MIX_LSTMS)
# The suites' CNNs on the 4,000-image training split of paper-cnn, without its 1,000 held-out images
# (which therefore never reach meta-training).
_EVAL_MIX_CNNS = tuple(Member("cnn", {**_MNIST, "variant": variant, "test_metrics": False})
                       for variant in EVAL_MIX_CNNS)

# The "diverse" family (issue 14's training distribution): MLPs, LSTMs and a CNN that vary in width,
# depth, activation, initialization scale and batch size, none of them a task of any evaluation suite
# (`tests/test_meta_train.py` checks it) and all narrower than the `generalization` suite's models
# (width 16-96 against 128-1024; N(0, σ²) initializations against Keras's defaults), so that suite
# measures generalization. Sizes stay below ~80k parameters: second-order unrolls of 100 steps keep
# every step's activations (CNN-2's 117k parameters needed ~31 GiB at J = 20, LOG.md run7).
# (hidden layers, width, activation, init std, batch size):
DIVERSE_MLPS = ((1, 32, "relu", 0.05, 64), (1, 64, "tanh", 0.1, 128), (1, 96, "relu", 0.02, 128),
                (2, 32, "elu", 0.1, 32), (2, 48, "relu", 0.03, 128), (3, 24, "tanh", 0.1, 64),
                (1, 16, "sigmoid", 0.3, 128), (2, 64, "sigmoid", 0.05, 64), (4, 16, "relu", 0.1, 128))
# (layers, hidden units, input noise, init std, batch size):
DIVERSE_LSTMS = ((1, 10, 0.1, 0.1, 128), (1, 32, 0.05, 0.05, 64), (2, 16, 0.1, 0.2, 128))
# (filters, dense units, batch size) of a CNN-1-shaped net on the paper-cnn training split:
DIVERSE_CNNS = (((8, 8), 32, 64),)

_DIVERSE = tuple(
    Member("mlp", {**_MNIST, "batch_size": batch, "hidden_layers": layers, "width": width,
                   "activation": activation, "init_std": init_std})
    for layers, width, activation, init_std, batch in DIVERSE_MLPS) + tuple(
    Member("sine-lstm", {"batch_size": batch, "num_layers": layers, "hidden": hidden, "noise_std": noise,
                         "init_std": init_std})
    for layers, hidden, noise, init_std, batch in DIVERSE_LSTMS) + tuple(
    Member("cnn", {**_MNIST, "batch_size": batch, "variant": "cnn1", "filters": filters, "dense_units": dense,
                   "test_metrics": False})
    for filters, dense, batch in DIVERSE_CNNS)

# The "diverse-large-step" family adds to "diverse" four tasks whose tuned Adam rate is 3-10x the
# others' (at 100 steps, Adam's best of 1e-3 … 1e-1: 0.1, 0.03, 0.03, 0.03, where the diverse MLPs' is
# ~0.01; LOG.md run11): linear and shallow models on sparse bag-of-features counts (`sparse_features`,
# an embedding's gradient pattern on generated data), MNIST logistic regression, and an LSTM started
# near zero. They stay unlike the `generalization` suite's tasks (its embedding, logistic regression and
# GRU have other data, sizes and layers), which are where `diverse`'s bundle took too small a step.
# (features, active per example, hidden layers, width, activation, init std, batch size):
LARGE_STEP_SPARSE = ((1000, 10, 0, 20, "relu", 0.01, 64), (500, 8, 1, 32, "relu", 0.05, 128))
SPARSE_FEATURES_KIND = "hyperadam_keras.lab.tasks.sparse_features:build_sparse_features"
_LARGE_STEP = tuple(
    Member(SPARSE_FEATURES_KIND, {"features": features, "active": active, "hidden_layers": layers, "width": width,
                               "activation": activation, "init_std": init_std, "batch_size": batch})
    for features, active, layers, width, activation, init_std, batch in LARGE_STEP_SPARSE) + (
    Member("mlp", {**_MNIST, "hidden_layers": 0, "init_std": 0.01}),
    Member("sine-lstm", {"batch_size": 64, "num_layers": 1, "hidden": 16, "noise_std": 0.1, "init_std": 0.01}))

# The "diverse-wide" family adds to "diverse-large-step" ReLU MLPs as wide as the `generalization` suite's
# (whose 784-128-10 ReLU MLP run11's bundle, meta-trained on models up to 96 units and on the large-step
# tasks, trained 2.6x worse than tuned Adam: LOG.md run11), of other widths, depths, N(0, σ²)
# initializations and batch sizes than that suite's (Glorot-initialized 128 / 4x128 / 1024 units), so
# the wide end of the small-rate range is held while the large-step tasks pull the step up.
# (hidden layers, width, activation, init std, batch size):
WIDE_MLPS = ((1, 192, "relu", 0.05, 64), (2, 160, "relu", 0.03, 128))
_WIDE = tuple(Member("mlp", {**_MNIST, "batch_size": batch, "hidden_layers": layers, "width": width,
                             "activation": activation, "init_std": init_std})
              for layers, width, activation, init_std, batch in WIDE_MLPS)

# The "diverse-fit" family adds to "diverse-wide" the two regimes where run12's bundle blew up without the
# relative-step cap (LOG.md run12, run15): over-parameterized MLPs on 1,024-2,048 images, which they fit
# within the horizon (10-12 epochs), so the cells see the low-loss regime where the 784-256-256-10 MLP diverged late; and
# a CNN with batch normalization, where the BatchNorm CNN spiked in its first steps. None is a model of
# the `generalization` suite or of the validation models (other widths, data sizes and layouts).
# (hidden layers, width, activation, init std, batch size, training images):
FIT_MLPS = ((2, 96, "relu", 0.05, 128, 2048), (1, 112, "elu", 0.03, 64, 1024), (3, 72, "tanh", 0.1, 128, 1536))
# (filters, batch size) of a conv-BN-ReLU × 2, pool, dense net on the paper-cnn training split:
BATCH_NORM_CNNS = (((8, 16), 64),)
FEW_EXAMPLES_KIND = "hyperadam_keras.lab.tasks.low_loss:build_mlp_few_examples"
BATCH_NORM_CNN_KIND = "hyperadam_keras.lab.tasks.low_loss:build_batch_norm_cnn"
_FIT = tuple(
    Member(FEW_EXAMPLES_KIND, {"source": FromConfig("data_source"), "data_dir": FromConfig("data_dir"),
                               "examples": examples, "batch_size": batch, "hidden_layers": layers, "width": width,
                               "activation": activation, "init_std": init_std})
    for layers, width, activation, init_std, batch, examples in FIT_MLPS) + tuple(
    Member(BATCH_NORM_CNN_KIND, {"source": FromConfig("data_source"), "data_dir": FromConfig("data_dir"),
                                 "filters": filters, "batch_size": batch})
    for filters, batch in BATCH_NORM_CNNS)

# The "diverse-wide-held-out" family is "diverse-wide" with a held-out split on every task, for
# meta-validation by held-out loss (`--validation-metric held-out-loss`): its MNIST tasks train on the
# training part of `load_mnist_split` (never the 1,000 images the suites test on) less every 8th image,
# which they hold out; the sparse-feature tasks hold out every 8th of their generated examples; the sine
# LSTMs keep their own fixed test set (`lab/tasks/held_out.py`).
HELD_OUT_KINDS = {"mlp": "hyperadam_keras.lab.tasks.held_out:build_mlp_held_out",
                  "cnn": "hyperadam_keras.lab.tasks.held_out:build_cnn_held_out",
                  SPARSE_FEATURES_KIND: "hyperadam_keras.lab.tasks.held_out:build_sparse_features_held_out"}


def with_held_out(members: tuple[Member, ...]) -> tuple[Member, ...]:
    """`members` with each MNIST or sparse-feature task made by its held-out builder (same arguments)."""
    return tuple(Member(HELD_OUT_KINDS[m.kind], {k: v for k, v in m.kwargs.items() if k != "test_metrics"})
                 if m.kind in HELD_OUT_KINDS else m for m in members)


# name -> (members, description); `--help` of `hyperadam-keras meta-train` lists them.
TASKS: dict[str, TaskFamily] = {
    "paper": TaskFamily((Member("paper-meta-training", _MNIST),),
                        "the paper's task: RS(MLP 784-20-10 sigmoid, r=3) + RS(CC quadratic, r=1), MNIST"),
    "mlp": TaskFamily((Member("mlp", _MNIST),), "MLP 784-20-10 sigmoid on MNIST, no transforms"),
    "quadratic": TaskFamily((Member("quadratic", {}),),
                            "CC quadratic mean(clip((z-a)², 0, 10)), z ∈ R^20 (no data)"),
    "quadratic-rs": TaskFamily((Member("random-scaling", {"task": {"kind": "quadratic"}, "log_scale_range": 1.0}),),
                               "RS(CC quadratic, r=1) (no data)"),
    "sine-lstm": TaskFamily((Member("sine-lstm", _BATCHED),),
                            "the sine-prediction LSTM of the paper's Table 2 (generated data)"),
    "eval-mix": TaskFamily(_EVAL_MIX, "a round-robin mixture of the evaluation suites' tasks, unscaled: MLP 1x20 "
                                      "sigmoid/ReLU/ELU/tanh, 3x20 and 6x20 sigmoid (MNIST), sine LSTM 1 layer "
                                      "(noise 0.1, 0.01) and 2 layers"),
    "eval-mix-cnn": TaskFamily(_EVAL_MIX + _EVAL_MIX_CNNS, "eval-mix plus CNN-1 and CNN-2 (the paper-cnn suite's "
                                                           "models, on its 4,000-image training split): 11 tasks"),
    "diverse": TaskFamily(_DIVERSE, "13 tasks unlike every evaluation suite's: MNIST MLPs of 1-4 layers, widths "
                                    "16-96, four activations, init std 0.02-0.3, batches 32-128; sine LSTMs of "
                                    "10-32 units, 1-2 layers; a small CNN (8/8 filters) on paper-cnn's training "
                                    "split"),
    "diverse-large-step": TaskFamily(_DIVERSE + _LARGE_STEP,
                                     "diverse plus 4 tasks of large tuned Adam rates: logistic regression and a "
                                     "1x32 ReLU MLP on generated sparse bag-of-features counts, MNIST logistic "
                                     "regression, a 16-unit sine LSTM started at init std 0.01: 17 tasks"),
    "diverse-wide": TaskFamily(_DIVERSE + _LARGE_STEP + _WIDE,
                               "diverse-large-step plus two wide ReLU MLPs on MNIST (1x192, init std 0.05, batch "
                               "64; 2x160, init std 0.03, batch 128): 19 tasks"),
    "diverse-fit": TaskFamily(_DIVERSE + _LARGE_STEP + _WIDE + _FIT,
                              "diverse-wide plus over-parameterized MLPs fitted within the horizon (2x96 ReLU on "
                              "2,048 MNIST images, 1x112 ELU on 1,024, 3x72 tanh on 1,536) and a conv-BN-ReLU CNN "
                              "(8/16 filters): 23 tasks"),
    "diverse-wide-held-out": TaskFamily(with_held_out(_DIVERSE + _LARGE_STEP + _WIDE),
                                        "diverse-wide with a held-out split on every task (every 8th example "
                                        "of the MNIST training part or of the generated data; the sine LSTMs' "
                                        "own test set), for --validation-metric held-out-loss: 19 tasks"),
}


def build_task(config: MetaTrainConfig) -> Any:
    """The task family named by `config.task` (a task, or a list of tasks for a mixture)."""
    if config.task not in TASKS:
        raise ValueError(f"unknown task {config.task!r}; choose from {sorted(TASKS)} "
                         "(or pass task= to meta_train for your own)")
    return TASKS[config.task].build(config)


def training_task_seed(config: MetaTrainConfig, meta_batch: int) -> int:
    """Seed of the task of meta-batch `meta_batch` (counted over all epochs)."""
    return config.seed * _TRAIN_SEED_STRIDE + meta_batch


def validation_task_seeds(config: MetaTrainConfig) -> list[int]:
    """The fixed held-out task seeds of meta-validation (never a training seed)."""
    return [_VALIDATION_SEED_BASE + config.seed * 2 ** 16 + i for i in range(config.validation_tasks)]
