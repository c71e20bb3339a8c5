"""The optimizers an evaluation compares: `OptimizerSpec`, the Keras baselines and their default
learning-rate grids, and HyperAdam from a bundle."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import keras

from hyperadam_keras.bundle import default_bundle_path, read_bundle_metadata, resolve_meta_params
from hyperadam_keras.defaults import (DEFAULT_DECAY_AFTER, DEFAULT_LEARNING_RATE, DEFAULT_MAX_RELATIVE_STEP,
                                      DEFAULT_WARMUP_STEPS)
from hyperadam_keras.optimizer import HyperAdam
from hyperadam_keras.schedules import (check_candidate_clip, check_decay_after, check_max_relative_step,
                                       check_warmup_steps)

OptimizerFactory = Callable[[float], keras.optimizers.Optimizer]


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
# override them per task. Adam's includes the grid of the tuned-Adam reference column
# (`references.TUNED_ADAM_8_SEEDS_GRID`).
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
                   learning_rate: float = DEFAULT_LEARNING_RATE,
                   decay_after: int | None = DEFAULT_DECAY_AFTER,
                   warmup_steps: int | None = DEFAULT_WARMUP_STEPS,
                   max_relative_step: float | None = DEFAULT_MAX_RELATIVE_STEP,
                   candidate_clip: float | None = None) -> OptimizerSpec:
    """HyperAdam with the bundle at `bundle` (None: the shipped default), untuned at `learning_rate`,
    with the optimizer's default `decay_after`, `warmup_steps`, `max_relative_step` and `candidate_clip`
    unless told otherwise."""
    params = resolve_meta_params(bundle)
    path = str(bundle) if bundle is not None else str(default_bundle_path())
    try:
        metadata = read_bundle_metadata(path)
    except Exception:  # metadata is informative only
        metadata = {}
    if label is None:
        label = "HyperAdam" if bundle is None else f"HyperAdam[J={params.num_candidates}]"

    def factory(lr: float) -> keras.optimizers.Optimizer:
        return HyperAdam(learning_rate=lr, meta_params=params, decay_after=decay_after, warmup_steps=warmup_steps,
                         max_relative_step=max_relative_step, candidate_clip=candidate_clip)

    return OptimizerSpec(label=label, factory=factory, default_lr=float(learning_rate), grid=(), info={
        "kind": "hyperadam", "decay_after": check_decay_after(decay_after),
        "warmup_steps": check_warmup_steps(warmup_steps), "max_relative_step": check_max_relative_step(max_relative_step),
        "candidate_clip": check_candidate_clip(candidate_clip),
        "bundle": path,
        "bundle_is_default": bundle is None, "num_candidates": params.num_candidates, "hidden": params.hidden,
        "sha256": params.fingerprint(), "trained": metadata.get("trained"), "description": metadata.get("description")})
