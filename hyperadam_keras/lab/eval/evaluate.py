"""The evaluation engine's public API in one namespace: `from hyperadam_keras.lab.eval import evaluate`.

Each name lives in the module of its concern; this module only re-exports them, so that callers (the
`hyperadam-keras evaluate` command, tests, benchmarks, examples) need one import:

- `baselines.py`: `OptimizerSpec`, the Keras baselines (`BASELINE_NAMES`, `baseline_spec`,
  `DEFAULT_GRIDS`) and `hyperadam_spec`;
- `trainer.py`: `Trainer` (compiled training over seeds and rates) and `RunResult`;
- `tuning.py`: the tuning seeds and `tune_learning_rate`;
- `stats.py`: `summarize` (statistics over seeds);
- `cache.py`: `RunCache` and the identities its keys hash;
- `runner.py`: `evaluate_task`, `run_suite` (the protocol is in its docstring);
- `bench.py`: `run_bench`, `time_to_target`;
- `machine.py`: `machine_info`.

To monkeypatch a module-level value (e.g. `TRAINING_CODE_VERSION`), patch it in its own module
(`cache`): the names here are copies of the bindings, not the bindings.
"""

from __future__ import annotations

from hyperadam_keras.lab.eval.baselines import (BASELINE_NAMES, DEFAULT_GRIDS, OptimizerFactory, OptimizerSpec,
                                                baseline_spec, hyperadam_spec)
from hyperadam_keras.lab.eval.bench import run_bench, time_to_target
from hyperadam_keras.lab.eval.cache import (CACHE_FORMAT, TRAINING_CODE_FILES, TRAINING_CODE_VERSION, RunCache,
                                            optimizer_identity, run_identity, run_key, task_identity,
                                            training_code_sha256)
from hyperadam_keras.lab.eval.machine import machine_info
from hyperadam_keras.lab.eval.runner import count_steps, evaluate_task, run_suite, suite_optimizers, summarize_runs
from hyperadam_keras.lab.eval.stats import summarize
from hyperadam_keras.lab.eval.trainer import MAX_CURVE_POINTS, ProgressCallback, RunResult, Trainer, curve_block
from hyperadam_keras.lab.eval.tuning import TUNING_SEED_OFFSET, TuningResult, tune_learning_rate, tuning_seeds

__all__ = [
    "BASELINE_NAMES", "DEFAULT_GRIDS", "OptimizerFactory", "OptimizerSpec", "baseline_spec", "hyperadam_spec",
    "run_bench", "time_to_target",
    "CACHE_FORMAT", "TRAINING_CODE_FILES", "TRAINING_CODE_VERSION", "RunCache", "optimizer_identity",
    "run_identity", "run_key", "task_identity", "training_code_sha256",
    "machine_info",
    "count_steps", "evaluate_task", "run_suite", "suite_optimizers", "summarize_runs",
    "summarize",
    "MAX_CURVE_POINTS", "ProgressCallback", "RunResult", "Trainer", "curve_block",
    "TUNING_SEED_OFFSET", "TuningResult", "tune_learning_rate", "tuning_seeds",
]
