"""The defaults of HyperAdam, defined once (the optimizer, the bundle, the unroll and the lab import them),
and the checks of the values given in their place."""

from __future__ import annotations

import math

import numpy as np

PAPER_LEARNING_RATE = 0.005  # α of the paper's meta-training (and of ours): the step the unroll takes
# HyperAdam's default step: α = 0.001 with each tensor's step capped at 3 % of its scale. Chosen on the
# validation models (lab/models/validation.py, benchmarks/safe_default.py; docs/safety.md), where the
# paper's α = 0.005 diverged; the default bundle (since 2026-12-03, meta_training/run10) was meta-trained
# at this α.
DEFAULT_LEARNING_RATE = 0.001
DEFAULT_EPSILON = 1e-24  # ε of the candidate updates m̂ = (m / β̂) / (sqrt(v / γ̂) + ε) (paper)
DEFAULT_DECAY_AFTER = 100  # the paper's meta-training horizon T, and the shipped bundle's
DEFAULT_WARMUP_STEPS = None  # W of the linear warm-up min(1, s / W); None: none (the paper)
DEFAULT_MAX_RELATIVE_STEP = 0.03  # τ of the relative-step cap (equations.cap_relative_step); None: none

# The paper's algorithm: `HyperAdam(**PAPER_SETTINGS)` is the shipped "paper" bundle (meta-trained as the
# paper does: J = H = 20, the paper's feature normalization "norm", α = 0.005, 100-step horizons on the
# paper's task kinds; the default until 2026-12-03) taking the constant step α = 0.005 of its
# meta-training at every update, with no warm-up and no cap: the equations of docs/equations.md and
# nothing else. With another bundle, `HyperAdam(**{**PAPER_SETTINGS, "meta_params": bundle})`.
PAPER_BUNDLE = "paper"
PAPER_SETTINGS: dict = {"meta_params": PAPER_BUNDLE, "learning_rate": PAPER_LEARNING_RATE, "decay_after": None,
                        "warmup_steps": None, "max_relative_step": None}


def check_finite_non_negative(name: str, value: object, what: str = "a finite number >= 0") -> float:
    """`value` as a float if it is a finite real number >= 0, else a ValueError naming `name` and `value`."""
    message = f"{name} must be {what}, got {value!r}"
    if isinstance(value, (bool, np.bool_, str, bytes)):
        raise ValueError(message)
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(message) from None
    if not math.isfinite(number) or number < 0:
        raise ValueError(message)
    return number


def check_positive_or_none(name: str, value: object) -> float | None:
    """`value` as a float > 0 (finite), or None; anything else is a ValueError naming `name` and `value`."""
    if value is None:
        return None
    if check_finite_non_negative(name, value, "None or a finite number > 0") == 0:
        raise ValueError(f"{name} must be None or a finite number > 0, got {value!r}")
    return float(value)


def check_bool(name: str, value: object) -> bool:
    """`value` if it is True or False (Python or NumPy), else a ValueError naming `name` and `value`."""
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return bool(value)
