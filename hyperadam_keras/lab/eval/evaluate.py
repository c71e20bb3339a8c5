"""The evaluation engine: train one task with one optimizer over seeds, tune baselines' learning rates.

A *task* is any object with the interface of `hyperadam_keras.lab.tasks.tasks` (`init_params(seed)`,
`sample_batch(seed, step)`, `loss(params, batch)`, `full_loss(params)`, `test_metrics(params)`).
An optimizer is applied to `tf.Variable`s made from `task.init_params(seed)`; the training loop runs
`chunk_size` steps inside one compiled `tf.function` (XLA where it compiles), so Python is entered
once per chunk, not once per step. One `Trainer` serves every seed and every learning rate of a
(task, optimizer) pair: between runs it restores the weights and the optimizer's initial state, so
nothing is retraced.

Protocol (the same for every suite):
- "final loss" = `task.full_loss` of the final weights (the paper's criterion); the loss curve is
  the per-step minibatch loss.
- HyperAdam runs at its defaults, untuned: step size 0.005, decaying as 1/√t after 100 steps
  (`decay_after=100`; a run of at most 100 steps is the constant-step run).
- Each baseline is tuned on its grid on *tuning seeds* disjoint from the evaluation seeds
  (`TUNING_SEED_OFFSET + i`), by the mean final loss over those seeds (a non-finite loss counts as
  +inf). When the best rate lies at an edge of the grid, the grid is extended by one grid ratio in
  that direction, up to `max_extensions` times, so a reported best rate is interior or flagged.
- Evaluation seeds are 0..N-1; statistics are the mean and the sample standard deviation (ddof=1)
  over the seeds whose final loss is finite; non-finite seeds are counted separately.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import json
import math
import os
import sys
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import keras
import numpy as np
import tensorflow as tf

from hyperadam_keras.schedules import DEFAULT_DECAY_AFTER, check_decay_after

TUNING_SEED_OFFSET = 10_000

OptimizerFactory = Callable[[float], keras.optimizers.Optimizer]
ProgressCallback = Callable[[int], None]


# --- optimizers ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class OptimizerSpec:
    """An optimizer to evaluate: `factory(learning_rate)` builds a fresh instance.

    `grid` empty means untuned: the optimizer runs at `default_lr`.
    """
    label: str
    factory: OptimizerFactory
    default_lr: float
    grid: tuple[float, ...] = ()
    info: dict = field(default_factory=dict)

    @property
    def tuned(self) -> bool:
        return bool(self.grid)


# Default learning-rate grids (half-decade steps around each optimizer's usual range). Suites may
# override them per task. Adam's includes the grid of ../shared/baselines.md.
DEFAULT_GRIDS: dict[str, tuple[float, ...]] = {
    "Adam": (0.001, 0.003, 0.01, 0.02, 0.03, 0.05),
    "RMSprop": (0.0003, 0.001, 0.003, 0.01, 0.03),
    "SGD-momentum": (0.01, 0.03, 0.1, 0.3, 1.0),
    "Adagrad": (0.01, 0.03, 0.1, 0.3, 1.0),
    "Adadelta": (0.1, 0.3, 1.0, 3.0, 10.0),
}

_BASELINE_FACTORIES: dict[str, OptimizerFactory] = {
    "Adam": lambda lr: keras.optimizers.Adam(learning_rate=lr),
    "RMSprop": lambda lr: keras.optimizers.RMSprop(learning_rate=lr),
    "SGD-momentum": lambda lr: keras.optimizers.SGD(learning_rate=lr, momentum=0.9),
    "Adagrad": lambda lr: keras.optimizers.Adagrad(learning_rate=lr),
    "Adadelta": lambda lr: keras.optimizers.Adadelta(learning_rate=lr),
}

BASELINE_NAMES: tuple[str, ...] = tuple(_BASELINE_FACTORIES)


def baseline_spec(name: str, grid: Sequence[float] | None = None) -> OptimizerSpec:
    """A Keras baseline (`BASELINE_NAMES`; Keras defaults except SGD's momentum 0.9), tuned on `grid`
    (default `DEFAULT_GRIDS[name]`)."""
    if name not in _BASELINE_FACTORIES:
        raise ValueError(f"unknown baseline {name!r}; known: {', '.join(BASELINE_NAMES)}")
    grid = tuple(float(x) for x in (grid if grid is not None else DEFAULT_GRIDS[name]))
    return OptimizerSpec(label=name, factory=_BASELINE_FACTORIES[name], default_lr=grid[len(grid) // 2],
                         grid=grid, info={"kind": "baseline", "keras_class": name.split("-")[0],
                                          **({"momentum": 0.9} if name == "SGD-momentum" else {})})


def hyperadam_spec(bundle: str | None = None, label: str | None = None,
                   learning_rate: float = 0.005, decay_after: int | None = DEFAULT_DECAY_AFTER) -> OptimizerSpec:
    """HyperAdam with the bundle at `bundle` (None: the shipped default), untuned at `learning_rate`,
    with the optimizer's default `decay_after` unless told otherwise."""
    from hyperadam_keras.bundle import default_bundle_path, read_bundle_metadata
    from hyperadam_keras.optimizer import HyperAdam, resolve_meta_params

    params = resolve_meta_params(bundle)
    path = str(bundle) if bundle is not None else str(default_bundle_path())
    try:
        metadata = read_bundle_metadata(path)
    except Exception:  # metadata is informative only
        metadata = {}
    if label is None:
        label = "HyperAdam" if bundle is None else f"HyperAdam[J={params.num_candidates}]"

    def factory(lr: float) -> keras.optimizers.Optimizer:
        return HyperAdam(learning_rate=lr, meta_params=params, decay_after=decay_after)

    return OptimizerSpec(label=label, factory=factory, default_lr=float(learning_rate), grid=(), info={
        "kind": "hyperadam", "decay_after": check_decay_after(decay_after), "bundle": path,
        "bundle_is_default": bundle is None, "num_candidates": params.num_candidates, "hidden": params.hidden,
        "sha256": params.fingerprint(), "trained": metadata.get("trained"), "description": metadata.get("description")})


# --- statistics ---------------------------------------------------------------------------------

def summarize(values: Sequence[float]) -> dict:
    """Mean, sample std (ddof=1; 0 for one value), min, max over the finite values; counts."""
    array = np.asarray(values, dtype=np.float64)
    finite = array[np.isfinite(array)]
    n = int(finite.size)
    return {
        "mean": float(finite.mean()) if n else math.nan,
        "std": float(finite.std(ddof=1)) if n > 1 else 0.0 if n == 1 else math.nan,
        "min": float(finite.min()) if n else math.nan,
        "max": float(finite.max()) if n else math.nan,
        "n": n,
        "n_nonfinite": int(array.size - n),
    }


def _tuning_score(losses: Sequence[float]) -> float:
    array = np.asarray(losses, dtype=np.float64)
    return float(array.mean()) if array.size and np.all(np.isfinite(array)) else math.inf


# --- training -----------------------------------------------------------------------------------

@dataclass
class RunResult:
    """One training run: per-step minibatch losses and the final weights' metrics.

    A run restored by `from_json` may hold its curve as block means (`curve_block` > 1, as `to_json`
    stores curves of over `MAX_CURVE_POINTS` steps) and its recorded `finite` (`stored_finite`), so
    that its `to_json` is the original's.
    """
    seed: int
    learning_rate: float
    curve: np.ndarray
    final_loss: float
    test: dict | None
    seconds: float
    curve_block: int = 1
    stored_finite: bool | None = None

    @property
    def finite(self) -> bool:
        if self.stored_finite is not None:  # block means can hide (or, by overflow, add) a non-finite step
            return self.stored_finite
        return bool(math.isfinite(self.final_loss) and np.all(np.isfinite(self.curve)))

    def stored_curve(self) -> tuple[np.ndarray, int]:
        """The curve as `to_json` writes it, and its block: means over blocks of `curve_block(steps)` steps."""
        if self.curve_block > 1:  # restored from JSON: already block means
            return self.curve, self.curve_block
        block = curve_block(len(self.curve))
        if block == 1:
            return self.curve, 1
        return self.curve[:len(self.curve) // block * block].reshape(-1, block).mean(axis=1), block

    def to_json(self, with_curve: bool = True) -> dict:
        out = {"seed": self.seed, "learning_rate": self.learning_rate, "final_loss": _json_float(self.final_loss),
               "test": {k: _json_float(v) for k, v in (self.test or {}).items()} or None,
               "seconds": round(self.seconds, 4), "finite": self.finite}
        if with_curve:
            curve, block = self.stored_curve()
            out["curve"] = [_json_float(float(str(np.float32(x)))) for x in curve]  # float32, shortest
            out["curve_block"] = block
        return out

    @classmethod
    def from_json(cls, data: dict) -> "RunResult":
        """Inverse of `to_json`: `from_json(r.to_json()).to_json() == r.to_json()` ("nan"/"inf" strings
        included). A record without a curve restores an empty one."""
        # float32 holds the shortest-repr values of `to_json` exactly, as the trained curve held them.
        curve = np.asarray([float(x) for x in data.get("curve", ())], dtype=np.float32)
        test = data.get("test")
        return cls(seed=int(data["seed"]), learning_rate=float(data["learning_rate"]), curve=curve,
                   final_loss=float(data["final_loss"]),
                   test={str(k): float(v) for k, v in test.items()} if test else None,
                   seconds=float(data["seconds"]), curve_block=int(data.get("curve_block", 1)),
                   stored_finite=bool(data["finite"]))


MAX_CURVE_POINTS = 2000


def curve_block(steps: int) -> int:
    """Curves of more than `MAX_CURVE_POINTS` steps are stored as means over blocks of this many steps."""
    return 1 if steps <= MAX_CURVE_POINTS else math.ceil(steps / MAX_CURVE_POINTS)


def _json_float(x: float) -> float | str:
    """JSON has no NaN/inf: write them as strings."""
    x = float(x)
    return x if math.isfinite(x) else str(x)


class Trainer:
    """Compiled training of one task with one optimizer, reusable over seeds and learning rates.

    Args:
        task: the task (see module docstring).
        optimizer: a fresh Keras optimizer; it is built on the task's variables here.
        chunk_size: steps per compiled call (progress is reported once per chunk).
        jit_compile: compile the whole chunk with XLA; if XLA rejects it, falls back to a graph.
    """

    def __init__(self, task: Any, optimizer: keras.optimizers.Optimizer, chunk_size: int = 100,
                 jit_compile: bool = True):
        self.task = task
        self.optimizer = optimizer
        self.chunk_size = int(chunk_size)
        self.jit_compile = bool(jit_compile)
        self.variables = [tf.Variable(p, name=f"param_{i}") for i, p in enumerate(task.init_params(0))]
        optimizer.build(self.variables)
        self._initial_state = [np.array(v.numpy()) for v in optimizer.variables]
        self._chunk = self._make_chunk(self.jit_compile)

    def _make_chunk(self, jit_compile: bool):
        task, optimizer, variables = self.task, self.optimizer, self.variables

        def chunk(seed, start, num_steps: int):
            losses = tf.TensorArray(tf.float32, size=num_steps)
            for i in tf.range(num_steps):
                batch = task.sample_batch(seed, start + i)
                with tf.GradientTape() as tape:
                    loss = task.loss(variables, batch)
                grads = tape.gradient(loss, variables)
                optimizer.apply_gradients(zip(grads, variables))
                losses = losses.write(i, tf.cast(loss, tf.float32))
            return losses.stack()

        return tf.function(chunk, jit_compile=jit_compile)

    def params(self) -> list[tf.Tensor]:
        """The current weights, as tensors."""
        return [tf.convert_to_tensor(v) for v in self.variables]

    def reset(self, seed: int, learning_rate: float | None) -> None:
        """Weights from `task.init_params(seed)`, the optimizer's state as built (iteration 0), its rate
        set to `learning_rate`; None keeps the optimizer's own rate (e.g. a `LearningRateSchedule`)."""
        for variable, value in zip(self.variables, self.task.init_params(seed)):
            variable.assign(value)
        for variable, value in zip(self.optimizer.variables, self._initial_state):
            variable.assign(value)
        if learning_rate is not None:
            self.optimizer.learning_rate = float(learning_rate)

    def train(self, seed: int, start: int, num_steps: int) -> np.ndarray:
        """Runs `num_steps` steps from step index `start` (no reset); returns the minibatch losses."""
        seed_t, start_t = tf.constant(seed, tf.int32), tf.constant(start, tf.int32)
        try:
            return self._chunk(seed_t, start_t, int(num_steps)).numpy()
        except (tf.errors.InvalidArgumentError, tf.errors.UnimplementedError, tf.errors.InternalError):
            if not self.jit_compile:
                raise
            # XLA could not compile the chunk (it fails before running it): fall back to a graph.
            self.jit_compile = False
            self._chunk = self._make_chunk(False)
            return self._chunk(seed_t, start_t, int(num_steps)).numpy()

    def run(self, seed: int, steps: int, learning_rate: float | None,
            progress: ProgressCallback | None = None) -> RunResult:
        """Trains `steps` steps from `init_params(seed)` at `learning_rate` (None: the optimizer's own rate
        or schedule, which restarts at step 0); evaluates the final weights."""
        self.reset(seed, learning_rate)
        # A schedule's run is recorded at its step-0 rate.
        recorded_lr = float(np.asarray(self.optimizer.learning_rate)) if learning_rate is None else learning_rate
        curves, done, seconds = [], 0, 0.0
        while done < steps:
            n = min(self.chunk_size, steps - done)
            began = time.perf_counter()
            curves.append(self.train(seed, done, n))
            seconds += time.perf_counter() - began
            done += n
            if progress is not None:
                progress(n)
        params = self.params()
        extra = {"seed": seed} if getattr(self.task, "needs_seed", False) else {}
        final_loss = float(self.task.full_loss(params, **extra))
        test = self.task.test_metrics(params, **extra)
        test = {k: float(v) for k, v in test.items()} if test else None
        return RunResult(seed=int(seed), learning_rate=float(recorded_lr),
                         curve=np.concatenate(curves) if curves else np.zeros(0, np.float32),
                         final_loss=final_loss, test=test, seconds=seconds)


# --- tuning -------------------------------------------------------------------------------------

@dataclass
class TuningResult:
    """Final losses of every grid point on every tuning seed, and the chosen rate."""
    grid: list[float]
    losses: dict[float, list[float]]
    best_lr: float
    at_edge: bool
    seeds: list[int]

    def mean(self, lr: float) -> float:
        return _tuning_score(self.losses[lr])

    def to_json(self) -> dict:
        return {"grid": self.grid, "seeds": self.seeds, "best_lr": self.best_lr, "at_edge": self.at_edge,
                "criterion": "mean final loss over the tuning seeds (non-finite = inf)",
                "mean_final_loss": {repr(lr): _json_float(self.mean(lr)) for lr in self.grid},
                "final_losses": {repr(lr): [_json_float(x) for x in self.losses[lr]] for lr in self.grid}}


def tune_learning_rate(run: Callable[[int, float], float], grid: Sequence[float], seeds: Sequence[int],
                       max_extensions: int = 2) -> TuningResult:
    """Picks the grid rate with the lowest mean final loss over `seeds`.

    `run(seed, lr)` returns the final loss of one run. If the best rate is the smallest or largest
    grid point, the grid is extended by the ratio of its two outermost points on that side (up to
    `max_extensions` times). Ties go to the smaller rate.
    """
    grid = sorted(float(x) for x in grid)
    if not grid:
        raise ValueError("empty learning-rate grid")
    losses: dict[float, list[float]] = {}

    def evaluate(lr: float) -> None:
        if lr not in losses:
            losses[lr] = [float(run(seed, lr)) for seed in seeds]

    for lr in grid:
        evaluate(lr)
    for _ in range(max_extensions if len(grid) > 1 else 0):
        best = min(grid, key=lambda lr: (_tuning_score(losses[lr]), lr))
        if best == grid[0]:
            new = grid[0] * grid[0] / grid[1]
        elif best == grid[-1]:
            new = grid[-1] * grid[-1] / grid[-2]
        else:
            break
        new = float(f"{new:.3g}")
        evaluate(new)
        grid = sorted(grid + [new])
    best = min(grid, key=lambda lr: (_tuning_score(losses[lr]), lr))
    at_edge = len(grid) > 1 and best in (grid[0], grid[-1])
    return TuningResult(grid=grid, losses=losses, best_lr=best, at_edge=at_edge, seeds=list(seeds))


# --- the run cache ------------------------------------------------------------------------------

# Bump when a cached run would no longer be the run this code makes (the record's layout, or the
# training protocol of `Trainer.run`): old files then simply miss.
CACHE_FORMAT = 1


def _canonical_json(value: Any) -> str:
    # Sorted keys, no spaces, floats by repr (exact): equal identities give equal text. An object JSON
    # cannot write falls back to its repr; if that repr varies between processes the run just misses.
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=repr)


def run_key(identity: dict) -> str:
    """The cache key of a run: SHA-256 of the canonical JSON of its `run_identity`."""
    return hashlib.sha256(_canonical_json(identity).encode()).hexdigest()


def task_identity(spec: Any, steps: int) -> dict:
    """What of a suite's `TaskSpec` determines a run: its kind, constructor arguments (which also name
    the data: source, data_dir, with_test) and the steps actually run (so `--long` is another run).
    Not its display name, reference numbers or grids (a grid only chooses which rates run)."""
    return {"kind": spec.kind, "kwargs": spec.kwargs, "steps": int(steps)}


def optimizer_identity(spec: OptimizerSpec, optimizer: keras.optimizers.Optimizer,
                       steps: int | None = None) -> dict:
    """What of an optimizer determines a run of `steps` steps besides its learning rate: its class and
    Keras config (every hyper-parameter: momentum, epsilon, clipping, HyperAdam's epsilon and inner XLA
    flag...), HyperAdam's meta-parameters by their SHA-256 fingerprint (not the bundle's path, so a
    copied bundle still hits), and a baseline's label (a custom factory may do more than its config
    says; HyperAdam's label only names a bundle in the report).

    HyperAdam's `decay_after` is left out where it cannot change the run: None (a constant step, as
    every run before the option existed) or at least `steps` (its factor is exactly 1 for every step)."""
    config = dict(optimizer.get_config())
    for name in ("name", "learning_rate"):  # the name is cosmetic; the rate is keyed on its own
        config.pop(name, None)
    if "decay_after" in config and (config["decay_after"] is None
                                    or (steps is not None and steps <= config["decay_after"])):
        del config["decay_after"]
    meta_params = getattr(optimizer, "meta_params", None)
    if meta_params is not None and "meta_params" in config:
        config["meta_params"] = {"sha256": meta_params.fingerprint()}
    identity = {"class": f"{type(optimizer).__module__}.{type(optimizer).__qualname__}", "config": config}
    if spec.info.get("kind") != "hyperadam":
        identity["label"] = spec.label
    return identity


# The package's files that decide what a training run computes (evaluate.py's `Trainer` loop aside:
# it rarely changes, and this file often does for reports). Their SHA-256 for the current version is
# recorded in tests/test_evaluate_cache.py, so editing one fails that test until the hash is recorded
# again; an edit that can change a run's numbers must also bump TRAINING_CODE_VERSION, which is part of
# every run key from version 2 on (version-1 keys predate it and stay valid), so no run cached from the
# old code is reused.
TRAINING_CODE_FILES = ("lab/data/mnist.py", "equations.py", "optimizer.py", "schedules.py", "lab/eval/suites.py",
                       "lab/tasks/tasks.py")
TRAINING_CODE_VERSION = 1


def training_code_sha256() -> str:
    """SHA-256 of `TRAINING_CODE_FILES` as installed (names and bytes)."""
    digest = hashlib.sha256()
    package = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    for name in TRAINING_CODE_FILES:
        with open(os.path.join(package, name), "rb") as source:
            digest.update(name.encode() + b"\0" + source.read() + b"\0")
    return digest.hexdigest()


@functools.lru_cache(maxsize=1)
def _environment_identity() -> dict:
    # Library versions change kernels and round-off (hyperadam_keras's version: its tasks and its
    # optimizer); CPU and GPU kernels round differently. The CPU model is left out so that a cache can
    # move between CPU machines.
    import hyperadam_keras

    return {"tensorflow": tf.__version__, "keras": keras.__version__, "numpy": np.__version__,
            "hyperadam_keras": hyperadam_keras.__version__,
            "device": "gpu" if tf.config.list_physical_devices("GPU") else "cpu"}


def run_identity(task: dict, optimizer: dict, learning_rate: float, seed: int, jit_compile: bool,
                 chunk_size: int) -> dict:
    """Everything that determines one run's result, hashed by `run_key`.

    - `task` (`task_identity`) and `optimizer` (`optimizer_identity`), the learning rate and seed;
    - `jit_compile` as requested (XLA rounds differently from a graph; whether XLA falls back to a graph
      is itself decided by the task and this flag);
    - `chunk_size`: steps per compiled call change the compiled loop, hence possibly the round-off;
    - the versions of TensorFlow, Keras, NumPy and hyperadam_keras, and CPU or GPU;
    - `CACHE_FORMAT`, and `TRAINING_CODE_VERSION` once it is above 1.
    """
    identity = {"format": CACHE_FORMAT, "task": task, "optimizer": optimizer,
                "learning_rate": float(learning_rate), "seed": int(seed), "jit_compile": bool(jit_compile),
                "chunk_size": int(chunk_size), "environment": _environment_identity()}
    if TRAINING_CODE_VERSION > 1:
        identity["training_code"] = TRAINING_CODE_VERSION
    return identity


class RunCache:
    """Finished training runs, one small JSON file per run in `directory`, named `<run_key>.json`.

    A file holds the run (`RunResult.to_json` with its curve, and the unrounded seconds), whether its
    loop ran under XLA, its key and, for whoever reads it, its identity. Files are written whole
    (a temporary file, then `os.replace`), so a killed run leaves none half-written; a file that cannot
    be read back is a miss (one warning) and is overwritten when the run is stored again.
    """

    def __init__(self, directory: str | os.PathLike):
        self.directory = os.path.abspath(os.fspath(directory))
        os.makedirs(self.directory, exist_ok=True)
        self.hits = 0
        self.misses = 0

    def path(self, key: str) -> str:
        return os.path.join(self.directory, f"{key}.json")

    def load(self, key: str) -> tuple[RunResult, bool] | None:
        """The stored run of `key` and whether it ran under XLA, or None (also for an unreadable file)."""
        path = self.path(key)
        try:
            with open(path, encoding="utf-8") as f:
                record = json.load(f)
            if not isinstance(record, dict) or record.get("key") != key:
                raise ValueError("not a run of this key")
            found = RunResult.from_json(record["run"]), bool(record["xla"])
        except FileNotFoundError:
            found = None
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
            _warn(f"run cache: ignoring unreadable {path} ({type(error).__name__}: {error}); re-running it")
            found = None
        if found is None:
            self.misses += 1
        else:
            self.hits += 1
        return found

    def store(self, key: str, identity: dict, run: RunResult, xla: bool) -> None:
        """Writes the run of `key` atomically. A failure to write only warns: the suite goes on."""
        record = {"format": CACHE_FORMAT, "key": key, "identity": identity, "xla": bool(xla),
                  "run": {**run.to_json(with_curve=True), "seconds": run.seconds}}
        path = self.path(key)
        temporary = f"{path}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp"  # unique per writer; never read
        try:
            with open(temporary, "x", encoding="utf-8") as f:
                f.write(_canonical_json(record))
                f.flush()
                os.fsync(f.fileno())  # the data is on disk before the name points to it
            os.replace(temporary, path)
        except OSError as error:
            _warn(f"run cache: could not write {path} ({error})")
            with contextlib.suppress(OSError):
                os.remove(temporary)

    def summary(self) -> dict:
        return {"directory": self.directory, "runs": self.hits + self.misses, "from_cache": self.hits,
                "trained": self.misses}


def _warn(message: str) -> None:
    # tqdm.write keeps a progress bar intact; one line on stderr.
    from tqdm.auto import tqdm

    tqdm.write(f"warning: {message}", file=sys.stderr)


class _Runs:
    """`run(seed, lr)`: one run of `trainer`, taken from `cache` when it holds it (the progress bar
    still advances) and stored there when trained. `xla`: whether every run's loop was XLA-compiled."""

    def __init__(self, trainer: Trainer, spec: OptimizerSpec, steps: int, progress: ProgressCallback | None,
                 cache: RunCache | None, task_key: dict | None):
        self.trainer, self.steps, self.progress, self.cache = trainer, steps, progress, cache
        self.jit_compile = trainer.jit_compile  # as requested: the trainer's flag turns False on a fallback
        self.optimizer = optimizer_identity(spec, trainer.optimizer, steps) if cache is not None else None
        self.task_key = task_key
        self.xla = trainer.jit_compile

    def __call__(self, seed: int, learning_rate: float) -> RunResult:
        if self.cache is None:
            return self._train(seed, learning_rate)
        identity = run_identity(self.task_key, self.optimizer, learning_rate, seed, self.jit_compile,
                                self.trainer.chunk_size)
        key = run_key(identity)
        found = self.cache.load(key)
        if found is not None:
            run, xla = found
            self.xla = self.xla and xla
            if self.progress is not None:
                self.progress(self.steps)
            return run
        run = self._train(seed, learning_rate)
        self.cache.store(key, identity, run, self.trainer.jit_compile)
        return run

    def _train(self, seed: int, learning_rate: float) -> RunResult:
        run = self.trainer.run(seed, self.steps, learning_rate, self.progress)
        self.xla = self.xla and self.trainer.jit_compile
        return run


# --- one task, several optimizers ---------------------------------------------------------------

def tuning_seeds(count: int) -> list[int]:
    """The tuning seeds: disjoint from the evaluation seeds 0..N-1."""
    return [TUNING_SEED_OFFSET + i for i in range(count)]


def count_steps(optimizers: Sequence[OptimizerSpec], steps: int, num_seeds: int, num_tune_seeds: int,
                max_extensions: int = 2) -> int:
    """Upper bound of the training steps `evaluate_task` runs (for a progress bar)."""
    total = 0
    for spec in optimizers:
        total += steps * num_seeds
        if spec.tuned:
            total += steps * num_tune_seeds * (len(spec.grid) + (max_extensions if len(spec.grid) > 1 else 0))
    return total


def evaluate_task(task: Any, optimizers: Sequence[OptimizerSpec], steps: int, seeds: Sequence[int],
                  tune_seeds: Sequence[int], chunk_size: int = 100, jit_compile: bool = True,
                  max_extensions: int = 2, progress: ProgressCallback | None = None,
                  keep_curves: bool = True, cache: RunCache | None = None,
                  task_key: dict | None = None) -> dict:
    """Tunes (where the spec has a grid) and evaluates every optimizer on one task.

    With a `cache`, every run (tuning and evaluation) is looked up before it is trained and stored
    after; `task_key` (`task_identity`) then stands for the task in the runs' keys.
    Returns a JSON-ready dict: label -> {learning_rate, tuning, runs, final_loss stats, test stats}.
    """
    if cache is not None and task_key is None:
        raise ValueError("a run cache needs task_key (see task_identity): the task object has no identity")
    results: dict[str, dict] = {}
    for spec in optimizers:
        trainer = Trainer(task, spec.factory(spec.default_lr), chunk_size=chunk_size, jit_compile=jit_compile)
        run = _Runs(trainer, spec, steps, progress, cache, task_key)
        tuning = None
        lr = spec.default_lr
        if spec.tuned:
            tuning = tune_learning_rate(lambda seed, rate: run(seed, rate).final_loss,
                                        spec.grid, tune_seeds, max_extensions=max_extensions)
            lr = tuning.best_lr
        runs = [run(seed, lr) for seed in seeds]
        results[spec.label] = summarize_runs(runs, lr, tuning, keep_curves=keep_curves)
        results[spec.label]["optimizer"] = {"label": spec.label, "default_lr": spec.default_lr,
                                            "grid": list(spec.grid), **spec.info}
        results[spec.label]["xla"] = run.xla
    return results


def summarize_runs(runs: Sequence[RunResult], learning_rate: float, tuning: TuningResult | None,
                   keep_curves: bool = True) -> dict:
    """The JSON record of one optimizer on one task."""
    test_names = sorted({k for r in runs for k in (r.test or {})})
    return {
        "learning_rate": learning_rate,
        "tuning": tuning.to_json() if tuning else None,
        "final_loss": summarize([r.final_loss for r in runs]),
        "test": {name: summarize([(r.test or {}).get(name, math.nan) for r in runs]) for name in test_names}
                or None,
        "seconds_per_run": summarize([r.seconds for r in runs]),
        "runs": [r.to_json(with_curve=keep_curves) for r in runs],
    }


# --- time to reach a target loss (the paper's 8-layer comparison) -------------------------------

def time_to_target(trainer: Trainer, seed: int, learning_rate: float, target: float, max_steps: int,
                   check_every: int = 50) -> dict:
    """Trains until `task.full_loss` <= `target` (checked every `check_every` steps) or `max_steps`.

    Returns steps and training seconds to reach it (None if never), excluding the time of the checks
    and of the first (compiling) chunk, which is re-run from the start after a warm-up.
    """
    trainer.reset(seed, learning_rate)
    trainer.train(seed, 0, check_every)  # warm-up: trace and compile
    trainer.reset(seed, learning_rate)
    seconds, done = 0.0, 0
    while done < max_steps:
        began = time.perf_counter()
        trainer.train(seed, done, check_every)
        seconds += time.perf_counter() - began
        done += check_every
        extra = {"seed": seed} if getattr(trainer.task, "needs_seed", False) else {}
        loss = float(trainer.task.full_loss(trainer.params(), **extra))
        if loss <= target:
            return {"seed": seed, "reached": True, "steps": done, "seconds": seconds, "loss": loss}
    return {"seed": seed, "reached": False, "steps": None, "seconds": None, "loss": loss,
            "seconds_for_max_steps": seconds}


# --- suites -------------------------------------------------------------------------------------

def machine_info() -> dict:
    """What the numbers were measured on."""
    import datetime
    import platform

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "platform": platform.platform(), "cpu": cpu, "cpu_cores": affinity,
            "gpus": [d.name for d in tf.config.list_physical_devices("GPU")],
            "python": platform.python_version(), "tensorflow": tf.__version__, "keras": keras.__version__}


def suite_optimizers(suite: Any, task_spec: Any, bundles: Sequence[str | None],
                     baselines: Sequence[str] | None = None) -> list[OptimizerSpec]:
    """HyperAdam for each bundle (untuned) followed by the suite's baselines on the task's grids."""
    specs = []
    for bundle in bundles:
        spec = hyperadam_spec(bundle, label="HyperAdam")
        if len(bundles) > 1:
            name = "default" if bundle is None else os.path.basename(os.path.normpath(str(bundle)))
            label = f"HyperAdam[{name}, J={spec.info['num_candidates']}]"
            taken = [s.label for s in specs]
            if label in taken:
                label = f"{label} #{sum(t.startswith(label) for t in taken) + 1}"
            spec = dataclasses.replace(spec, label=label)
        specs.append(spec)
    for name in (baselines if baselines is not None else suite.baselines):
        specs.append(baseline_spec(name, task_spec.grids.get(name)))
    return specs


def run_suite(suite: Any, bundles: Sequence[str | None] = (None,), seeds: int | None = None,
              tune_seeds: int | None = None, long: bool = False, baselines: Sequence[str] | None = None,
              chunk_size: int = 100, jit_compile: bool = True, max_extensions: int = 2,
              progress: bool = True, command: str | None = None, keep_curves: bool = True,
              cache_dir: str | os.PathLike | None = None) -> dict:
    """Runs a comparison suite (a `suites.Suite` or its name) and returns every number as a JSON-ready
    dict (see `report.py` for the rendering). `seeds`/`tune_seeds` default to the suite's.

    `cache_dir`: a `RunCache` directory. Runs found there are not trained again (a killed suite resumes;
    a new bundle reuses the baselines' runs); the result's "cache" counts them.
    """
    from tqdm.auto import tqdm

    from hyperadam_keras.lab.eval import suites as suites_module

    if isinstance(suite, str):
        suite = suites_module.get_suite(suite)
    bundles = list(bundles) or [None]
    num_seeds = int(seeds if seeds is not None else suite.seeds)
    num_tune = int(tune_seeds if tune_seeds is not None else suite.tune_seeds)
    eval_seeds, tune = list(range(num_seeds)), tuning_seeds(num_tune)
    plan = [(spec, suite_optimizers(suite, spec, bundles, baselines)) for spec in suite.tasks]
    total = sum(count_steps(opts, spec.num_steps(long), num_seeds, num_tune, max_extensions) for spec, opts in plan)
    cache = RunCache(cache_dir) if cache_dir else None
    started = time.perf_counter()
    results = {"suite": suite.name, "description": suite.description, "note": suite.note,
               "command": command, "machine": machine_info(),
               "settings": {"seeds": eval_seeds, "tuning_seeds": tune, "long": long, "chunk_size": chunk_size,
                            "jit_compile": jit_compile, "max_grid_extensions": max_extensions,
                            "tuning": "baselines tuned on tuning seeds disjoint from the evaluation seeds, "
                                      "by mean final loss; HyperAdam untuned at its default step size and decay",
                            "std": "sample standard deviation (ddof=1) over seeds with a finite final loss"},
               "tasks": []}
    with tqdm(total=total, unit="step", desc=suite.name, disable=not progress, smoothing=0.05) as bar:
        for spec, optimizers in plan:
            bar.set_postfix_str(spec.name)
            task = suites_module.build_task(spec)
            steps = spec.num_steps(long)
            task_started, hits_before = time.perf_counter(), cache.hits if cache else 0
            per_optimizer = evaluate_task(task, optimizers, steps, eval_seeds, tune, chunk_size=chunk_size,
                                          jit_compile=jit_compile and spec.xla, max_extensions=max_extensions,
                                          progress=bar.update, keep_curves=keep_curves, cache=cache,
                                          task_key=task_identity(spec, steps))
            results["tasks"].append({
                "name": spec.name, "kind": spec.kind, "kwargs": spec.kwargs, "steps": steps,
                "reference": spec.reference, "optimizers": list(per_optimizer),
                "has_test": any(r["test"] for r in per_optimizer.values()),
                "seconds": round(time.perf_counter() - task_started, 2), "results": per_optimizer,
                **({"runs_from_cache": cache.hits - hits_before} if cache else {})})
        bar.total = bar.n
        bar.refresh()
    results["seconds"] = round(time.perf_counter() - started, 2)
    # The wall time above excludes the training of cached runs: say how many there were.
    results["cache"] = cache.summary() if cache else None
    return results


# --- the bench suite ----------------------------------------------------------------------------

def _state_bytes(optimizer: keras.optimizers.Optimizer) -> int:
    """Bytes of an optimizer's per-parameter state (every variable but the scalar counters/rates)."""
    return int(sum(np.prod(v.shape) * np.dtype(v.dtype).itemsize for v in optimizer.variables
                   if len(v.shape) > 0))


def run_bench(suite: Any = "bench", bundle: str | None = None, seeds: int | None = None,
              tune_seeds: int | None = None, speed_kwargs: dict | None = None, progress: bool = True,
              command: str | None = None, check_every: int = 50, horizon_factor: int = 3,
              with_speed: bool = True, jit_compile: bool = True) -> dict:
    """Speed and memory: `speed.run_speed_benchmarks` (step time HyperAdam vs Adam, update FLOP/s),
    time to reach tuned Adam's loss on the suite's task (the paper's 8-layer sigmoid MLP), and the
    optimizer state per parameter measured on the built optimizers.

    Time to target: Adam is tuned on the task's grid (tuning seeds, `steps` of the task), the target is
    tuned Adam's mean final loss over the evaluation seeds after `steps`; then HyperAdam (untuned) and
    tuned Adam train from each evaluation seed until their full loss reaches it (checked every
    `check_every` steps, at most `horizon_factor` × steps), timing the training alone.
    """
    from hyperadam_keras.lab.eval import suites as suites_module

    if isinstance(suite, str):
        suite = suites_module.get_suite(suite)
    started = time.perf_counter()
    num_seeds = int(seeds if seeds is not None else suite.seeds)
    num_tune = int(tune_seeds if tune_seeds is not None else suite.tune_seeds)
    results: dict = {"suite": suite.name, "kind": "bench", "description": suite.description,
                     "command": command, "machine": machine_info(), "note": suite.note,
                     "settings": {"seeds": list(range(num_seeds)), "tuning_seeds": tuning_seeds(num_tune)}}
    if not with_speed:
        results["speed"] = {"error": "not run (with_speed=False)"}
    else:
        try:
            from hyperadam_keras.lab.eval import speed
        except ImportError as error:  # the rest of the suite does not need it
            results["speed"] = {"error": f"hyperadam_keras.lab.eval.speed unavailable: {error}"}
        else:
            kwargs = dict(speed_kwargs or {})
            if bundle is not None:
                kwargs.setdefault("meta_params", bundle)
            results["speed"] = speed.run_speed_benchmarks(**kwargs)
            results["speed_markdown"] = speed.format_markdown(results["speed"])

    spec = suite.tasks[0]
    task = suites_module.build_task(spec)
    steps = spec.num_steps()
    hyper, adam = hyperadam_spec(bundle, label="HyperAdam"), baseline_spec("Adam", spec.grids.get("Adam"))
    tuned = evaluate_task(task, [adam], steps, list(range(num_seeds)), tuning_seeds(num_tune),
                          jit_compile=jit_compile, keep_curves=False)["Adam"]
    target = float(tuned["final_loss"]["mean"])
    trainers = {label: (Trainer(task, spec.factory(lr), jit_compile=jit_compile), lr) for label, spec, lr in
                (("HyperAdam", hyper, hyper.default_lr), ("Adam", adam, tuned["learning_rate"]))}
    reach = {}
    for label, (trainer, lr) in trainers.items():
        runs = []
        for seed in range(num_seeds):
            runs.append(time_to_target(trainer, seed, lr, target, horizon_factor * steps, check_every))
            if progress:
                print(f"[bench] {spec.name}: {label} seed {seed}: target {target:.4f} "
                      f"{'reached at step ' + str(runs[-1]['steps']) if runs[-1]['reached'] else 'not reached'}",
                      flush=True)
        reached = [r for r in runs if r["reached"]]
        reach[label] = {"learning_rate": lr, "runs": runs, "reached": len(reached),
                        "median_steps": float(np.median([r["steps"] for r in reached])) if reached else None,
                        "median_seconds": float(np.median([r["seconds"] for r in reached])) if reached else None}
    results["time_to_target"] = {
        "task": spec.name, "steps": steps, "target": target, "adam_tuning": tuned["tuning"],
        "adam_final_loss": tuned["final_loss"], "adam_final_losses": [r["final_loss"] for r in tuned["runs"]],
        "check_every": check_every,
        "max_steps": horizon_factor * steps, "results": reach}
    num_params = int(sum(np.prod(v.shape) for v in trainers["HyperAdam"][0].variables))
    results["memory"] = {label: {"parameters": num_params, "state_bytes": _state_bytes(t.optimizer),
                                 "bytes_per_parameter": _state_bytes(t.optimizer) / num_params}
                         for label, (t, _) in trainers.items()}
    results["memory"]["task"] = spec.name
    results["seconds"] = round(time.perf_counter() - started, 2)
    return results
