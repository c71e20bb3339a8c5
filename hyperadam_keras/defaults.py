"""The defaults of HyperAdam, defined once (the optimizer, the bundle, the unroll and the lab import them),
and the checks of the values given in their place."""

from __future__ import annotations

import math

import numpy as np

DEFAULT_LEARNING_RATE = 0.005  # α of the paper's meta-training, and HyperAdam's default step
DEFAULT_EPSILON = 1e-24  # ε of the candidate updates m̂ = (m / β̂) / (sqrt(v / γ̂) + ε) (paper)
DEFAULT_DECAY_AFTER = 100  # the paper's meta-training horizon T, and the shipped bundle's


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


def check_bool(name: str, value: object) -> bool:
    """`value` if it is True or False (Python or NumPy), else a ValueError naming `name` and `value`."""
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return bool(value)
