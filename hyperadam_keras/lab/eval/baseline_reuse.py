"""Baselines of a suite taken from an earlier result JSON instead of trained again.

A new HyperAdam bundle changes none of the baselines' runs, but the run cache (`fit_suite.FitRunCache`)
is a local directory that a fresh clone does not have, and retraining every baseline's grid on every
tuning seed costs hours on two cores. `BaselineReuse` copies a baseline's whole entry (its tuning, its
evaluation runs) from an earlier result of the same suite, after checking that nothing that decides
those runs differs (seeds, tuning seeds, grid, task arguments and steps, library versions) and after
training one of its runs again here and finding its final loss bit for bit the recorded one: a change
to the fit code, the data or the environment that would alter the baselines fails that check loudly
rather than mixing runs of two different protocols in one table.
"""

from __future__ import annotations

import math
from typing import Any, Callable

from hyperadam_keras.lab.eval.machine import machine_info

# The environment fields of `machine_info` that can change a run's numbers.
_ENVIRONMENT_FIELDS = ("python", "tensorflow", "keras")


def _same_loss(a: Any, b: Any) -> bool:
    # A non-finite loss is recorded as NaN or as null (JSON): both mean the same diverged run.
    nonfinite = lambda x: x is None or not math.isfinite(x)  # noqa: E731
    return (nonfinite(a) and nonfinite(b)) or a == b


class BaselineReuseError(ValueError):
    """An earlier result cannot stand in for the baselines' runs here (what differs is in the message)."""


class BaselineReuse:
    """The baselines' entries of `earlier` (a suite's result JSON, as `run_fit_suite` or `run_suite`
    returns it) for a run of suite `suite_name`, whose results' "kind" is `kind` ("fit", or None for the
    suites `run_suite` runs) and whose `settings` (seeds, tuning seeds, grid extensions; for `run_suite`
    also the horizon, chunk size and compilation) must equal the earlier result's."""

    def __init__(self, earlier: dict, source: str, suite_name: str, kind: str | None, settings: dict):
        self.source = source
        if earlier.get("kind") != kind or earlier.get("suite") != suite_name:
            raise BaselineReuseError(f"{source}: a result of suite {earlier.get('suite')!r} "
                                     f"(kind {earlier.get('kind')!r}), not of suite {suite_name!r} (kind {kind!r})")
        recorded = earlier.get("settings") or {}
        for name, value in settings.items():
            if recorded.get(name) != value:
                raise BaselineReuseError(f"{source}: its {name} are {recorded.get(name)!r}, this run's {value!r}")
        here, there = machine_info(), earlier.get("machine") or {}
        for name in _ENVIRONMENT_FIELDS:
            if here.get(name) != there.get(name):
                raise BaselineReuseError(f"{source}: made with {name} {there.get(name)!r}, this is {here.get(name)!r}")
        self.tasks = {t["name"]: t for t in earlier.get("tasks", [])}
        self.date = there.get("date")
        # Not a reason to refuse (many runs agree across CPUs), but the likely cause when a check fails:
        # oneDNN and XLA choose their kernels per CPU.
        self.cpu_note = "" if here.get("cpu") == there.get("cpu") else (
            f" (it was made on {there.get('cpu')!r}, this machine is {here.get('cpu')!r}: TensorFlow's kernels "
            "differ between CPUs)")

    def entry(self, task: Any, label: str, grid: tuple[float, ...],
              train_one: Callable[[int, float], dict]) -> dict | None:
        """The earlier entry of baseline `label` on `task` (a suite's `TaskSpec`) if it can be reused, else
        None (the task or the baseline is not in the earlier result: train it). Raises BaselineReuseError
        where the earlier entry exists but was made differently. `train_one(seed, lr)` trains one run
        here: the entry's first evaluation run is trained again and must reproduce its final loss exactly."""
        earlier_task = self.tasks.get(task.name)
        if earlier_task is None or label not in earlier_task.get("results", {}):
            return None
        where = f"{self.source}: {task.name}, {label}"
        if earlier_task.get("kwargs") != task.kwargs or earlier_task.get("steps") != task.steps:
            raise BaselineReuseError(f"{where}: the task was defined differently (arguments or steps)")
        entry = earlier_task["results"][label]
        earlier_grid = [float(x) for x in (entry.get("optimizer") or {}).get("grid", [])]
        if earlier_grid != [float(x) for x in grid]:
            raise BaselineReuseError(f"{where}: tuned on the grid {earlier_grid}, this suite's is {list(grid)}")
        runs = entry.get("runs") or []
        if not runs:
            raise BaselineReuseError(f"{where}: no evaluation runs recorded")
        check = runs[0]
        again = train_one(int(check["seed"]), float(entry["learning_rate"]))
        if not _same_loss(again["final_loss"], check["final_loss"]):
            raise BaselineReuseError(
                f"{where}: seed {check['seed']} at rate {entry['learning_rate']} trains to a final loss of "
                f"{again['final_loss']!r} here, {check['final_loss']!r} there: the runs would differ{self.cpu_note}")
        return {**entry, "reused_from": {"path": self.source, "date": self.date,
                                         "checked": {"seed": int(check["seed"]), "final_loss": again["final_loss"]}}}

    def summary(self) -> dict:
        return {"path": self.source, "date": self.date}
