"""Meta-parameter bundles: TensorFlow SavedModel directories that hold `MetaParams`.

A bundle is a real SavedModel (`saved_model_cli show --all DIR` lists its `step` signature, one
HyperAdam update of a flat vector), but loading never runs any of its functions: `load_meta_params`
reads the variables with a checkpoint reader and `assets/meta.json` with `json`, then validates.
"""

from __future__ import annotations

import datetime
import json
import os
from pathlib import Path
from typing import Mapping

import numpy as np
import tensorflow as tf

from hyperadam_keras import equations
from hyperadam_keras.meta_params import NAMES, MetaParams, MetaParamsError

FORMAT_VERSION = 1
SUPPORTED_FORMAT_VERSIONS = (1,)
META_JSON = os.path.join("assets", "meta.json")
DEFAULT_BUNDLE_NAME = "default"


def _checkpoint_key(name: str) -> str:
    return f"{name}/.ATTRIBUTES/VARIABLE_VALUE"


class _Group(tf.Module):
    """One named group of variables (preprocess, state_cell, ...), so checkpoint keys read `group/var`."""


class _BundleModule(tf.Module):
    """The SavedModel's object: the meta-parameters as variables and a `step` function."""

    def __init__(self, params: MetaParams, epsilon: float):
        super().__init__(name="hyperadam_meta_params")
        self._names = NAMES
        self._epsilon = epsilon
        self._feature_normalization = params.feature_normalization
        for name in NAMES:
            group_name, variable_name = name.split("/")
            if not hasattr(self, group_name):
                setattr(self, group_name, _Group(name=group_name))
            setattr(getattr(self, group_name), variable_name,
                    tf.Variable(params.values[name], trainable=False, name=variable_name))
        J, H = params.num_candidates, params.hidden
        spec_h = tf.TensorSpec([None, H], tf.float32)
        spec_j = tf.TensorSpec([None, J], tf.float32)
        self.step = tf.function(self._step, input_signature=[
            tf.TensorSpec([None], tf.float32, name="weights"),
            tf.TensorSpec([None], tf.float32, name="gradient"),
            spec_h, spec_h, spec_j, spec_j, spec_j, spec_j,
            tf.TensorSpec([], tf.float32, name="learning_rate"),
        ])

    def _weights(self) -> equations.MetaWeights:
        return equations.MetaWeights(*(
            getattr(getattr(self, name.split("/")[0]), name.split("/")[1]) for name in self._names))

    def _step(self, weights, gradient, h, c, m, v, beta_hat, gamma_hat, learning_rate):
        """w_t = w_{t-1} - α d_t for one flat vector holding ALL coordinates (so norms are global)."""
        direction, state = equations.hyperadam_direction(
            self._weights(), gradient, equations.CoordinateState(h, c, m, v, beta_hat, gamma_hat),
            *equations.feature_sq_scales([gradient], [m], self._feature_normalization), self._epsilon,
            equations.feature_clip(self._feature_normalization))
        return {"weights": weights - learning_rate * direction, **state._asdict()}


def save_meta_params(params: MetaParams, path: str | os.PathLike, metadata: Mapping | None = None,
                     epsilon: float = 1e-24) -> Path:
    """Writes `params` as a bundle at `path` (created; must not hold a bundle already).

    `metadata` (JSON-serializable) is stored in `assets/meta.json` beside the format version, J, H,
    the arrays' SHA-256 and the creation time, e.g. how the bundle was made and validation figures.
    """
    path = Path(path)
    if (path / "saved_model.pb").exists():
        raise FileExistsError(f"{path} already holds a SavedModel; remove it or choose another path")
    meta = {
        "format_version": FORMAT_VERSION,
        "num_candidates": params.num_candidates,
        "hidden": params.hidden,
        "sha256": params.fingerprint(),
        "feature_normalization": params.feature_normalization,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "step_epsilon": epsilon,
        **dict(metadata or {}),
    }
    json_text = json.dumps(meta, indent=2, sort_keys=True)  # fail before writing anything
    module = _BundleModule(params, epsilon)
    tf.saved_model.save(module, str(path), signatures={"step": module.step})
    (path / "assets").mkdir(exist_ok=True)
    (path / META_JSON).write_text(json_text + "\n")
    return path


def read_bundle_metadata(path: str | os.PathLike) -> dict:
    """The bundle's `assets/meta.json`, checked for a supported format version."""
    path = Path(path)
    meta_file = path / META_JSON
    if not meta_file.is_file():
        raise MetaParamsError(f"{path}: not a HyperAdam bundle (no {META_JSON})")
    try:
        meta = json.loads(meta_file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise MetaParamsError(f"{meta_file}: malformed JSON ({error})") from None
    if not isinstance(meta, dict):
        raise MetaParamsError(f"{meta_file}: expected a JSON object")
    version = meta.get("format_version")
    if version not in SUPPORTED_FORMAT_VERSIONS:
        raise MetaParamsError(
            f"{meta_file}: unknown format_version {version!r}; this hyperadam-keras reads "
            f"{list(SUPPORTED_FORMAT_VERSIONS)}")
    return meta


def load_meta_params(path: str | os.PathLike) -> MetaParams:
    """Reads and validates a bundle's meta-parameters (variables and JSON only; no code is run)."""
    path = Path(path)
    if not path.exists():
        raise MetaParamsError(f"meta-parameter bundle not found: {path}")
    if not path.is_dir():
        raise MetaParamsError(f"{path}: a bundle is a SavedModel directory, got a file")
    meta = read_bundle_metadata(path)
    prefix = path / "variables" / "variables"
    if not Path(f"{prefix}.index").is_file():
        raise MetaParamsError(f"{path}: no variables (missing variables/variables.index)")
    try:
        reader = tf.train.load_checkpoint(str(prefix))
    except (tf.errors.OpError, ValueError) as error:
        raise MetaParamsError(f"{path}: unreadable variables ({error})") from None
    available = reader.get_variable_to_shape_map()
    arrays = {}
    for name in NAMES:
        key = _checkpoint_key(name)
        if key not in available:
            raise MetaParamsError(f"{path}: missing meta-parameter variable {name}")
        arrays[name] = np.asarray(reader.get_tensor(key))
    params = MetaParams.from_arrays(arrays, source=str(path),
                                    feature_normalization=meta.get("feature_normalization", "norm"))
    for key, value in (("num_candidates", params.num_candidates), ("hidden", params.hidden)):
        if key in meta and meta[key] != value:
            raise MetaParamsError(f"{path}: meta.json says {key}={meta[key]} but the variables give {value}")
    return params


def default_bundle_path() -> Path:
    """The shipped default bundle: inside the installed package, or `saved_meta/` of a checkout."""
    candidates = [
        Path(__file__).resolve().parent / "saved_meta" / DEFAULT_BUNDLE_NAME,  # installed wheel
        Path(__file__).resolve().parent.parent / "saved_meta" / DEFAULT_BUNDLE_NAME,  # source tree
    ]
    for candidate in candidates:
        if (candidate / META_JSON).is_file():
            return candidate
    raise MetaParamsError(
        "the default meta-parameter bundle was not found (looked in "
        + ", ".join(str(c) for c in candidates) + "); reinstall hyperadam-keras")
