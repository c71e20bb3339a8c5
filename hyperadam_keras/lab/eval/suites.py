"""Evaluation suites, as data.

A `Suite` is a list of `TaskSpec`s (a task kind, its constructor arguments, a number of steps, a
learning-rate grid per baseline when the defaults do not fit, and the paper's numbers for reference)
plus the baselines to tune. A user adds one with `register_suite(Suite(...))` in Python, or with a
JSON file (`load_suite_file`, CLI `--suite-file`) of the same fields:

    {"name": "my-suite", "description": "...", "baselines": ["Adam"],
     "tasks": [{"name": "mlp-2x20-relu", "kind": "mlp", "steps": 200,
                "kwargs": {"hidden_layers": 2, "activation": "relu"},
                "grids": {"Adam": [0.003, 0.01, 0.03]}}]}

Task kinds (`TASK_KINDS`): "mlp", "cnn", "sine-lstm", "quadratic", "keras-model", or any
"package.module:callable" returning a task. Tasks are built lazily (data is loaded when a suite runs).
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from typing import Any

from hyperadam_keras.lab.eval.baselines import BASELINE_NAMES
# The reference columns and their numbers; `references.py` says where each comes from.
from hyperadam_keras.lab.eval.references import (DEEP_TUNED_ADAM, PAPER_ADAM, PAPER_HYPERADAM, TABLE1_PAPER,
                                                 TABLE1_TUNED_ADAM, TABLE2_PAPER, TUNED_ADAM_8_SEEDS)

# Grids for the MLP tasks (Adam's: the grid of the tuned-Adam reference column,
# `references.TUNED_ADAM_8_SEEDS_GRID`; the others in half-decade steps).
MLP_GRIDS: dict[str, tuple[float, ...]] = {
    "Adam": (0.003, 0.01, 0.02, 0.03, 0.05),
    "RMSprop": (0.001, 0.003, 0.01, 0.03),
    "SGD-momentum": (0.03, 0.1, 0.3, 1.0),
    "Adagrad": (0.03, 0.1, 0.3, 1.0),
    "Adadelta": (0.3, 1.0, 3.0, 10.0),
}
# Longer horizons and convolutions: smaller rates.
LONG_GRIDS: dict[str, tuple[float, ...]] = {
    "Adam": (0.0003, 0.001, 0.003, 0.01),
    "RMSprop": (0.0001, 0.0003, 0.001, 0.003),
    "SGD-momentum": (0.003, 0.01, 0.03, 0.1),
    "Adagrad": (0.003, 0.01, 0.03, 0.1),
    "Adadelta": (0.3, 1.0, 3.0, 10.0),
}
LSTM_GRIDS: dict[str, tuple[float, ...]] = {
    "Adam": (0.001, 0.003, 0.01, 0.03, 0.1),
    "RMSprop": (0.0003, 0.001, 0.003, 0.01, 0.03),
    "SGD-momentum": (0.001, 0.003, 0.01, 0.03),
    "Adagrad": (0.01, 0.03, 0.1, 0.3),
    "Adadelta": (0.3, 1.0, 3.0, 10.0),
}


@dataclass(frozen=True)
class TaskSpec:
    """One task of a suite.

    Attributes:
        name: row label in the report.
        kind: a key of `TASK_KINDS` or "package.module:callable".
        kwargs: constructor arguments for the kind's builder.
        steps: optimizer steps per run.
        long_steps: steps under `--long` (None: same as `steps`).
        grids: learning-rate grid per baseline name (missing names use `baselines.DEFAULT_GRIDS`).
        reference: column name -> number (or text) shown next to the measured ones.
        xla: False: never compile this task's training loop with XLA (XLA's CPU convolutions were
            ~100× slower than TensorFlow's oneDNN ones here: 3.3 s against 34 ms per CNN-1 step).
    """
    name: str
    kind: str
    kwargs: dict = field(default_factory=dict)
    steps: int = 100
    long_steps: int | None = None
    grids: dict = field(default_factory=dict)
    reference: dict = field(default_factory=dict)
    xla: bool = True

    def num_steps(self, long: bool = False) -> int:
        return int(self.long_steps if long and self.long_steps else self.steps)


@dataclass(frozen=True)
class Suite:
    """A named list of tasks, the baselines to tune on them, and default seed counts.

    `kind` is "compare" (tasks × optimizers, the default), "fit" (Keras models trained by `fit`,
    `fit_suite.py`; their tasks name a builder) or "bench" (speed and memory).
    `multi_bundle`: the suite compares several HyperAdam bundles (`--bundle` given more than once).
    """
    name: str
    description: str
    tasks: tuple[TaskSpec, ...] = ()
    baselines: tuple[str, ...] = BASELINE_NAMES
    seeds: int = 20
    tune_seeds: int = 3
    kind: str = "compare"
    multi_bundle: bool = False
    note: str = ""


# --- task builders: the task registry ---------------------------------------------------------

# A suite names its tasks by kind; the kinds, their builders and `register_task_kind` live in the
# one task registry that meta-training and `inspect` build their tasks from too.
from hyperadam_keras.lab.tasks.registry import TASK_KINDS, build, register_task_kind  # noqa: E402,F401


def build_task(spec: TaskSpec) -> Any:
    """Constructs the task of `spec` (loading its data)."""
    return build(spec.kind, **spec.kwargs)


# --- the suites ---------------------------------------------------------------------------------

def _mlp(layers: int, activation: str = "sigmoid", steps: int = 100, reference: dict | None = None,
         grids: dict | None = None, long_steps: int | None = None) -> TaskSpec:
    return TaskSpec(name=f"mlp-{layers}x20-{activation}", kind="mlp",
                    kwargs={"hidden_layers": layers, "activation": activation}, steps=steps,
                    long_steps=long_steps, grids=dict(grids or MLP_GRIDS), reference=reference or {})


def _lstm(name: str, num_layers: int, noise_std: float, steps: int = 100, grids: dict | None = None) -> TaskSpec:
    reference = {}
    if name in TABLE2_PAPER and steps == 100:
        reference = {PAPER_ADAM: TABLE2_PAPER[name][0], PAPER_HYPERADAM: TABLE2_PAPER[name][1]}
    return TaskSpec(name=name, kind="sine-lstm", kwargs={"num_layers": num_layers, "noise_std": noise_std},
                    steps=steps, grids=dict(grids or LSTM_GRIDS), reference=reference)


SUITES: dict[str, Suite] = {}


def register_suite(suite: Suite) -> Suite:
    """Adds (or replaces) a suite by name."""
    SUITES[suite.name] = suite
    return suite


register_suite(Suite(
    name="paper-table1",
    description="Table 1: MLP 784-20-10 on MNIST, 100 steps, four activations",
    tasks=tuple(_mlp(1, act, reference={PAPER_ADAM: adam, PAPER_HYPERADAM: hyper,
                                        TUNED_ADAM_8_SEEDS: TABLE1_TUNED_ADAM[act]})
                for act, (adam, hyper) in TABLE1_PAPER.items()),
))
register_suite(Suite(
    name="paper-deep",
    description="Fig. 5d: MLPs of 1..10 hidden layers of 20 sigmoid units, 100 steps",
    tasks=tuple(_mlp(n, reference={TUNED_ADAM_8_SEEDS: DEEP_TUNED_ADAM[n]} if n in DEEP_TUNED_ADAM else {})
                for n in range(1, 11)),
))
register_suite(Suite(
    name="paper-cnn",
    description="CNN-1 (c-c-p-f) and CNN-2 (c-c-p-c-c-p-f-f) on MNIST, 2,000 steps (10,000 with --long)",
    tasks=(
        TaskSpec(name="cnn-1", kind="cnn", kwargs={"variant": "cnn1"}, steps=2000, long_steps=10000,
                 grids=dict(LONG_GRIDS), xla=False,
                 reference={"paper, Table 3 (10,000 steps): test loss / top-1": ".05 / 98.48 %"}),
        TaskSpec(name="cnn-2", kind="cnn", kwargs={"variant": "cnn2"}, steps=2000, long_steps=10000,
                 grids=dict(LONG_GRIDS), xla=False),
    ),
    seeds=20, tune_seeds=2,
))
register_suite(Suite(
    name="paper-lstm",
    description="Table 2: LSTM (20 units) regressing f(10) from noisy f(0..9), f = A sin(ωx + φ), 100 steps",
    tasks=(_lstm("lstm-baseline", 1, 0.1), _lstm("lstm-small-noise", 1, 0.01), _lstm("lstm-2-layer", 2, 0.1)),
))
register_suite(Suite(
    name="paper-long",
    description="Fig. 7: 9-layer sigmoid MLP and 2-layer LSTM, 10,000 steps",
    tasks=(_mlp(9, steps=10000, grids=LONG_GRIDS), _lstm("lstm-2-layer-long", 2, 0.1, steps=10000)),
    seeds=20, tune_seeds=2,
))
register_suite(Suite(
    name="ablation-j",
    description="HyperAdam bundles with different J (pass --bundle once per bundle) against tuned Adam",
    tasks=(_mlp(1), _mlp(3), _lstm("lstm-baseline", 1, 0.1)),
    baselines=("Adam",), multi_bundle=True,
))
register_suite(Suite(
    name="quick",
    description="A few-minute subset (make demo): MLP 1x20 and 3x20 sigmoid, HyperAdam vs tuned Adam",
    tasks=(_mlp(1, reference={PAPER_ADAM: 0.35, PAPER_HYPERADAM: 0.33,
                              TUNED_ADAM_8_SEEDS: TABLE1_TUNED_ADAM["sigmoid"]}),
           _mlp(3, reference={TUNED_ADAM_8_SEEDS: DEEP_TUNED_ADAM[3]})),
    baselines=("Adam",), seeds=5, tune_seeds=2,
))
register_suite(Suite(
    name="bench",
    description="Speed and memory: step time HyperAdam vs Adam, update FLOP/s, time to reach tuned Adam's "
                "loss on the 8-layer sigmoid MLP, optimizer memory per parameter",
    tasks=(_mlp(8, steps=500),),
    baselines=("Adam",), seeds=2, tune_seeds=2, kind="bench",
))


# The generalization suite: Keras models trained by `fit` (`fit_suite.py`), unlike the meta-training
# tasks and the validation models defaults are chosen on (`lab/models/`). One grid for Adam and AdamW.
FIT_GRID: tuple[float, ...] = (0.0003, 0.001, 0.003, 0.01)
FIT_KIND = "keras-fit"


def _fit_task(name: str, function: str, steps: int) -> TaskSpec:
    return TaskSpec(name=name, kind=FIT_KIND, kwargs={"builder": f"hyperadam_keras.lab.models.generalization:{function}"},
                    steps=steps, grids={"Adam": FIT_GRID, "AdamW": FIT_GRID})


register_suite(Suite(
    name="generalization",
    description="Keras models unlike the meta-training tasks (wide and deep MLPs, CNNs with BatchNorm and "
                "residual connections, attention, embeddings, an autoencoder, regressions, recurrent nets), "
                "trained by model.fit, 300-3,000 steps",
    tasks=tuple(_fit_task(name, function, steps) for name, function, steps in (
        ("mlp-128-relu", "mlp_128_relu", 1000),
        ("mlp-4x128-gelu", "mlp_4x128_gelu", 300),
        ("mlp-1024-gelu-dropout", "mlp_1024_gelu_dropout", 600),
        ("cnn-mnist", "cnn_mnist", 500),
        ("cnn-bn-digits", "cnn_bn_digits", 800),
        ("resnet-mnist", "resnet_mnist", 300),
        ("transformer-digits", "transformer_digits", 1000),
        ("lstm-digits", "lstm_digits", 500),
        ("embedding-bag", "embedding_bag", 600),
        ("autoencoder-mnist", "autoencoder_mnist", 500),
        ("regression-diabetes", "regression_diabetes", 1000),
        ("logistic-breast-cancer", "logistic_breast_cancer", 3000),
        ("gru-adding", "gru_adding", 800),
    )),
    baselines=("Adam", "AdamW"), seeds=5, tune_seeds=2, kind="fit",
    note="Trained as a user trains: `model.fit` with BatchNormalization in training mode and dropout on, Keras "
         "default initializers, the same initial weights and batches for every optimizer of a seed. Final "
         "loss: `model.evaluate` on the whole training set; test: the held-out split. None of these tasks is "
         "in a meta-training mixture or was used to choose a default.",
))


def get_suite(name: str) -> Suite:
    if name not in SUITES:
        raise KeyError(f"unknown suite {name!r}; known: {', '.join(SUITES)}")
    return SUITES[name]


def suite_from_dict(data: dict) -> Suite:
    """A `Suite` from plain data (the JSON format of the module docstring)."""
    data = dict(data)
    tasks = tuple(TaskSpec(**{**t, "grids": {k: tuple(v) for k, v in t.get("grids", {}).items()}})
                  for t in data.pop("tasks", ()))
    if "baselines" in data:
        data["baselines"] = tuple(data["baselines"])
    known = {f.name for f in dataclasses.fields(Suite)}
    unknown = set(data) - known
    if unknown:
        raise ValueError(f"unknown suite fields: {', '.join(sorted(unknown))}")
    return Suite(tasks=tasks, **data)


def load_suite_file(path: str | os.PathLike) -> Suite:
    """Reads a suite from a JSON file and registers it."""
    with open(path) as f:
        return register_suite(suite_from_dict(json.load(f)))


def describe_suites() -> str:
    """One paragraph per registered suite: name, description, seeds, baselines, tasks and their steps."""
    return "\n".join(
        f"{suite.name}: {suite.description}\n    seeds {suite.seeds}, tuning seeds {suite.tune_seeds}, "
        f"baselines {', '.join(suite.baselines)}\n    tasks: "
        + ", ".join(f"{t.name} ({t.num_steps()} steps)" for t in suite.tasks)
        for suite in SUITES.values())
