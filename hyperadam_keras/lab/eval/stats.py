"""Statistics over seeds, the score that tuning ranks rates by, and numbers as the JSON records hold them."""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np


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


def tuning_score(losses: Sequence[float]) -> float:
    """The mean final loss over the tuning seeds; +inf when any of them is not finite."""
    array = np.asarray(losses, dtype=np.float64)
    return float(array.mean()) if array.size and np.all(np.isfinite(array)) else math.inf


def json_float(x: float) -> float | str:
    """JSON has no NaN/inf: write them as strings."""
    x = float(x)
    return x if math.isfinite(x) else str(x)
