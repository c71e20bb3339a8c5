"""`MetaParams`: HyperAdam's frozen meta-parameters as validated float32 NumPy arrays.

Names (also the variable paths inside a bundle) and shapes, with J candidates and LSTM width H:

    preprocess/kernel        [1, H]       W_pre
    preprocess/bias          [H]          b_pre
    state_cell/kernel        [2H, 4H]     LSTM kernel, rows: input then recurrent; gates i, f, g, o
    state_cell/bias          [4H]
    adam_cell/beta_kernel    [J+H, J]     θ_u
    adam_cell/beta_bias      [J]          b_u
    adam_cell/gamma_kernel   [J+H, J]     θ_r
    adam_cell/gamma_bias     [J]          b_r
    weight_cell/kernel       [H, J]       θ_q
    weight_cell/bias         [J]          b_q

and the feature normalization the arrays were trained with (`equations.feature_sq_scales`): "norm"
(the paper's, the default), "rms" or "rms-clip"; a bundle records it in its meta.json.
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Mapping

import numpy as np

from hyperadam_keras.equations import FEATURE_NORMALIZATIONS, MetaWeights

NAMES: tuple[str, ...] = (
    "preprocess/kernel",
    "preprocess/bias",
    "state_cell/kernel",
    "state_cell/bias",
    "adam_cell/beta_kernel",
    "adam_cell/beta_bias",
    "adam_cell/gamma_kernel",
    "adam_cell/gamma_bias",
    "weight_cell/kernel",
    "weight_cell/bias",
)


class MetaParamsError(ValueError):
    """Meta-parameters (arrays or a bundle) that cannot be used: the message names the problem."""


def expected_shapes(num_candidates: int, hidden: int) -> dict[str, tuple[int, ...]]:
    """The shape of every meta-parameter for J = num_candidates and H = hidden."""
    J, H = num_candidates, hidden
    return {
        "preprocess/kernel": (1, H),
        "preprocess/bias": (H,),
        "state_cell/kernel": (2 * H, 4 * H),
        "state_cell/bias": (4 * H,),
        "adam_cell/beta_kernel": (J + H, J),
        "adam_cell/beta_bias": (J,),
        "adam_cell/gamma_kernel": (J + H, J),
        "adam_cell/gamma_bias": (J,),
        "weight_cell/kernel": (H, J),
        "weight_cell/bias": (J,),
    }


@dataclasses.dataclass(frozen=True, eq=False)
class MetaParams:
    """Validated meta-parameters. Build with `from_arrays`; J and H are inferred from the shapes."""

    values: Mapping[str, np.ndarray]
    num_candidates: int  # J
    hidden: int  # H
    feature_normalization: str = "norm"

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, object], source: str = "arrays",
                    feature_normalization: str = "norm") -> "MetaParams":
        """Validates names, shapes and finiteness; `source` names the origin in error messages."""
        if feature_normalization not in FEATURE_NORMALIZATIONS:
            raise MetaParamsError(f"{source}: unknown feature_normalization {feature_normalization!r}; "
                                  f"expected one of {list(FEATURE_NORMALIZATIONS)}")
        missing = [name for name in NAMES if name not in arrays]
        if missing:
            raise MetaParamsError(f"{source}: missing meta-parameter(s) {missing}")
        unknown = sorted(set(arrays) - set(NAMES))
        if unknown:
            raise MetaParamsError(f"{source}: unknown meta-parameter(s) {unknown}; expected {list(NAMES)}")
        values = {}
        for name in NAMES:
            try:
                values[name] = np.array(arrays[name], dtype=np.float32)
            except (TypeError, ValueError) as error:
                raise MetaParamsError(f"{source}: {name} is not a numeric array ({error})") from None
        bias_shape = values["weight_cell/bias"].shape
        hidden_shape = values["preprocess/bias"].shape
        if len(bias_shape) != 1 or len(hidden_shape) != 1 or not bias_shape[0] or not hidden_shape[0]:
            raise MetaParamsError(
                f"{source}: cannot infer J and H: weight_cell/bias has shape {bias_shape} and "
                f"preprocess/bias has shape {hidden_shape}; both must be non-empty vectors")
        num_candidates, hidden = bias_shape[0], hidden_shape[0]
        for name, shape in expected_shapes(num_candidates, hidden).items():
            if values[name].shape != shape:
                raise MetaParamsError(
                    f"{source}: {name} has shape {values[name].shape}, expected {shape} "
                    f"(J={num_candidates}, H={hidden})")
            if not np.all(np.isfinite(values[name])):
                raise MetaParamsError(f"{source}: {name} contains non-finite values (NaN or inf)")
        for array in values.values():
            array.setflags(write=False)
        return cls(values=values, num_candidates=num_candidates, hidden=hidden,
                   feature_normalization=feature_normalization)

    def arrays(self) -> dict[str, np.ndarray]:
        """A dict of (copies of) the float32 arrays keyed by `NAMES`."""
        return {name: self.values[name].copy() for name in NAMES}

    def weights(self) -> MetaWeights:
        """The arrays in the order the equations take them."""
        return MetaWeights(*(self.values[name] for name in NAMES))

    def with_feature_normalization(self, feature_normalization: str) -> "MetaParams":
        """The same arrays, used with another feature normalization."""
        return MetaParams.from_arrays(self.values, source=repr(self), feature_normalization=feature_normalization)

    def fingerprint(self) -> str:
        """SHA-256 of the names, shapes and float32 bytes, and of a non-default feature normalization:
        equal exactly when two `MetaParams` compute the same update."""
        digest = hashlib.sha256()
        if self.feature_normalization != "norm":  # "norm" hashes as before the option existed
            digest.update(f"feature_normalization:{self.feature_normalization};".encode())
        for name in NAMES:
            array = np.ascontiguousarray(self.values[name], dtype="<f4")
            digest.update(f"{name}:{array.shape};".encode())
            digest.update(array.tobytes())
        return digest.hexdigest()

    def to_config(self) -> dict:
        """JSON-serializable form that embeds the arrays (float32 values round-trip exactly)."""
        return {"arrays": {name: self.values[name].tolist() for name in NAMES},
                "feature_normalization": self.feature_normalization, "sha256": self.fingerprint()}

    @classmethod
    def from_config(cls, config: Mapping) -> "MetaParams":
        """Inverse of `to_config`; checks the embedded SHA-256."""
        params = cls.from_arrays(config["arrays"], source="optimizer config",
                                 feature_normalization=config.get("feature_normalization", "norm"))
        expected = config.get("sha256")
        if expected is not None and expected != params.fingerprint():
            raise MetaParamsError("optimizer config: meta-parameter arrays do not match their sha256")
        return params

    def __repr__(self) -> str:
        variant = ("" if self.feature_normalization == "norm"
                   else f", feature_normalization={self.feature_normalization!r}")
        return f"MetaParams(J={self.num_candidates}, H={self.hidden}{variant}, sha256={self.fingerprint()[:12]})"


def _logit(p: np.ndarray) -> np.ndarray:
    return np.log(p) - np.log1p(-p)


def adam_ensemble(num_candidates: int = 20, hidden: int = 20, beta_range: tuple[float, float] = (0.5, 0.99),
                  gamma: float = 0.999, weight_sum: float = 1.0) -> MetaParams:
    """The untrained "Adam ensemble": J Adam candidates with fixed decays, averaged.

    All kernels are zero, so the task state is constant (h = c = 0), the decay rates are
    β_j = σ(b_u^j) spread evenly over `beta_range`, γ_j = `gamma`, and ρ_j = ELU(s/J) = s/J with
    s = `weight_sum` (> 0): d_t is s times the mean of J bias-corrected Adam directions, i.e. an
    Adam-like step of size s·α. A sensible optimizer, not a learned one; s = 1 is the shipped default,
    a larger s is a starting point for meta-training whose effective step matches a tuned Adam.
    """
    if not weight_sum > 0:
        raise ValueError(f"weight_sum must be > 0 (ρ = ELU(weight_sum / J) is linear only there), got {weight_sum}")
    J, H = num_candidates, hidden
    arrays = {name: np.zeros(shape, np.float32) for name, shape in expected_shapes(J, H).items()}
    betas = np.linspace(beta_range[0], beta_range[1], J) if J > 1 else np.array([beta_range[1]])
    arrays["adam_cell/beta_bias"] = _logit(betas).astype(np.float32)
    arrays["adam_cell/gamma_bias"] = np.full(J, _logit(np.array(gamma)), np.float32)
    arrays["weight_cell/bias"] = np.full(J, weight_sum / J, np.float32)
    return MetaParams.from_arrays(arrays, source="adam_ensemble")


def random_meta_params(num_candidates: int = 20, hidden: int = 20, seed: int = 0,
                       scale: float = 0.3, weight_sum: float = 1.0) -> MetaParams:
    """Random meta-parameters (Glorot-like scale) around the Adam ensemble of `weight_sum`: for tests,
    ablations and as a meta-training start (the noise lets the LSTM kernels get a meta-gradient).

    Never shipped as a default: an untrained random optimizer is not a sensible one.
    """
    rng = np.random.default_rng(seed)
    base = adam_ensemble(num_candidates, hidden, weight_sum=weight_sum).arrays()
    arrays = {}
    for name, value in base.items():
        fan_in = value.shape[0] if value.ndim == 2 else 1
        arrays[name] = value + rng.normal(0.0, scale / np.sqrt(fan_in), value.shape).astype(np.float32)
    return MetaParams.from_arrays(arrays, source=f"random_meta_params(seed={seed})")
