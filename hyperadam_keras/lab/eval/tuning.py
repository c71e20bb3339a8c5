"""Tuning a baseline's learning rate: the tuning seeds, the grid search with its extension at an
edge, and `TuningResult`, every grid point's final losses.

Each baseline is tuned on its grid on *tuning seeds* disjoint from the evaluation seeds
(`TUNING_SEED_OFFSET + i`), by the mean final loss over those seeds (a non-finite loss counts as
+inf). When the best rate lies at an edge of the grid, the grid is extended by one grid ratio in
that direction, up to `max_extensions` times, so a reported best rate is interior or flagged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

from hyperadam_keras.lab.eval.stats import json_float, tuning_score

TUNING_SEED_OFFSET = 10_000


def tuning_seeds(count: int) -> list[int]:
    """The tuning seeds: disjoint from the evaluation seeds 0..N-1."""
    return [TUNING_SEED_OFFSET + i for i in range(count)]


@dataclass
class TuningResult:
    """Final losses of every grid point on every tuning seed, and the chosen rate."""
    grid: list[float]
    losses: dict[float, list[float]]
    best_lr: float
    at_edge: bool
    seeds: list[int]

    def mean(self, lr: float) -> float:
        return tuning_score(self.losses[lr])

    def to_json(self) -> dict:
        return {"grid": self.grid, "seeds": self.seeds, "best_lr": self.best_lr, "at_edge": self.at_edge,
                "criterion": "mean final loss over the tuning seeds (non-finite = inf)",
                "mean_final_loss": {repr(lr): json_float(self.mean(lr)) for lr in self.grid},
                "final_losses": {repr(lr): [json_float(x) for x in self.losses[lr]] for lr in self.grid}}


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
        best = min(grid, key=lambda lr: (tuning_score(losses[lr]), lr))
        if best == grid[0]:
            new = grid[0] * grid[0] / grid[1]
        elif best == grid[-1]:
            new = grid[-1] * grid[-1] / grid[-2]
        else:
            break
        new = float(f"{new:.3g}")
        evaluate(new)
        grid = sorted(grid + [new])
    best = min(grid, key=lambda lr: (tuning_score(losses[lr]), lr))
    at_edge = len(grid) > 1 and best in (grid[0], grid[-1])
    return TuningResult(grid=grid, losses=losses, best_lr=best, at_edge=at_edge, seeds=list(seeds))
