"""Meta-parameter bundles: TensorFlow SavedModel directories that hold `MetaParams`.

A bundle is a real SavedModel (`saved_model_cli show --all DIR` lists its `step` signature, one
HyperAdam update of a flat vector), but loading never runs any of its functions: `load_meta_params`
reads the variables with a checkpoint reader and `assets/meta.json` with `json`, then validates
(shapes, finiteness, and the arrays' SHA-256 against the one meta.json records).
"""

from __future__ import annotations

import datetime
import functools
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Mapping, Union

import numpy as np
import tensorflow as tf

from hyperadam_keras import equations
from hyperadam_keras.defaults import DEFAULT_EPSILON, PAPER_BUNDLE, check_bool, check_finite_non_negative
from hyperadam_keras.meta_params import NAMES, MetaParams, MetaParamsError

# 2: the `step` signature takes and returns the state coordinates last ([H, n], [J, n]); 1: [n, H], [n, J].
# The variables, all that `load_meta_params` reads, are the same in both.
FORMAT_VERSION = 2
SUPPORTED_FORMAT_VERSIONS = (1, 2)
META_JSON = os.path.join("assets", "meta.json")
DEFAULT_BUNDLE_NAME = "default"
# The bundles a release ships, by name: `HyperAdam(meta_params=name)` reads one, and an optimizer config
# refers to one as {"bundle": name, "sha256": ...} instead of embedding its arrays. "paper": the bundle
# meta-trained as the paper does (meta_training/run5; `defaults.PAPER_SETTINGS`), the default until
# 2026-12-03.
SHIPPED_BUNDLE_NAMES = (DEFAULT_BUNDLE_NAME, PAPER_BUNDLE)


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
        spec_h = tf.TensorSpec([H, None], tf.float32)  # coordinates last, as `equations` and the slots
        spec_j = tf.TensorSpec([J, None], tf.float32)
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
        (direction,), (state,) = equations.hyperadam_directions(
            self._weights(), [gradient], [equations.CoordinateState(h, c, m, v, beta_hat, gamma_hat)],
            self._epsilon, self._feature_normalization)
        return {"weights": weights - learning_rate * direction, **state._asdict()}


# meta.json keys that `save_meta_params` derives from the arrays and `load_meta_params` checks.
RESERVED_METADATA_KEYS = ("format_version", "num_candidates", "hidden", "sha256", "feature_normalization")


def save_meta_params(params: MetaParams, path: str | os.PathLike, metadata: Mapping | None = None,
                     epsilon: float = DEFAULT_EPSILON, overwrite: bool = False) -> Path:
    """Writes `params` as a bundle at `path` and returns the path.

    `path` must not exist yet or be an empty directory; with `overwrite=True` an existing bundle
    there is replaced (anything else that is not a bundle is never deleted: a `FileExistsError`).
    The bundle is written next to `path` first and moved into place at the end, so a failed save
    leaves no half-written bundle (and, when overwriting, the previous bundle intact).

    `metadata` (JSON-serializable) is stored in `assets/meta.json` beside the format version, J, H,
    the arrays' SHA-256 and the creation time, e.g. how the bundle was made and validation figures;
    it may not set the keys derived from the arrays (`RESERVED_METADATA_KEYS`). `epsilon` is the ε of
    the bundle's `step` signature.
    """
    path = Path(path)
    epsilon = check_finite_non_negative("epsilon", epsilon)
    overwrite = check_bool("overwrite", overwrite)
    clashes = sorted(set(metadata or {}) & set(RESERVED_METADATA_KEYS))
    if clashes:
        raise ValueError(f"metadata must not set {clashes}: save_meta_params records them from the arrays")
    replace = _check_destination(path, overwrite)
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
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        module = _BundleModule(params, epsilon)
        tf.saved_model.save(module, str(staging), signatures={"step": module.step})
        (staging / "assets").mkdir(exist_ok=True)
        (staging / META_JSON).write_text(json_text + "\n")
        if replace:
            retired = Path(tempfile.mkdtemp(prefix=f".{path.name}.old.", dir=path.parent))
            path.rename(retired / "bundle")
            staging.rename(path)
            shutil.rmtree(retired, ignore_errors=True)
        else:
            if path.is_dir():
                path.rmdir()  # empty (checked above)
            staging.rename(path)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return path


def _is_bundle_like(path: Path) -> bool:
    return path.is_dir() and ((path / "saved_model.pb").is_file() or (path / META_JSON).is_file())


def _check_destination(path: Path, overwrite: bool) -> bool:
    """Whether saving at `path` replaces an existing bundle; a `FileExistsError` where it may not write."""
    if not path.exists() or (path.is_dir() and not any(path.iterdir())):
        return False
    if not _is_bundle_like(path):
        raise FileExistsError(f"{path} already exists and is not a HyperAdam bundle (no saved_model.pb or "
                              f"{META_JSON}); it is never overwritten: remove it or choose another path")
    if not overwrite:
        raise FileExistsError(f"{path} already holds a bundle; pass overwrite=True to replace it, "
                              "or choose another path")
    return True


def read_bundle_metadata(path: str | os.PathLike) -> dict:
    """The bundle's `assets/meta.json`, checked for a supported format version."""
    path = Path(path)
    meta_file = path / META_JSON
    if not meta_file.is_file():
        raise MetaParamsError(f"{path}: not a HyperAdam bundle (no {META_JSON})")
    try:
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as error:
        raise MetaParamsError(f"{meta_file}: malformed JSON ({error})") from None
    except OSError as error:
        raise MetaParamsError(f"{meta_file}: unreadable ({error})") from None
    if not isinstance(meta, dict):
        raise MetaParamsError(f"{meta_file}: expected a JSON object")
    version = meta.get("format_version")
    if type(version) is not int or version not in SUPPORTED_FORMAT_VERSIONS:
        raise MetaParamsError(
            f"{meta_file}: unknown format_version {version!r}; this hyperadam-keras reads "
            f"{list(SUPPORTED_FORMAT_VERSIONS)}")
    return meta


def load_meta_params(path: str | os.PathLike) -> MetaParams:
    """Reads and validates a bundle's meta-parameters (variables and JSON only; no code is run). `path` is a
    bundle directory or the name of a shipped bundle (`SHIPPED_BUNDLE_NAMES`: "default", "paper"; a
    directory of that name is then "./paper").

    Every bundle that cannot be used is a `MetaParamsError` naming the path and the problem: missing,
    not a bundle, an unknown format version, malformed JSON, truncated or damaged variable files, a
    missing variable, a wrong shape, a non-finite value, or arrays whose SHA-256 is not the one
    meta.json records (a checksum mismatch).
    """
    if isinstance(path, str) and path in SHIPPED_BUNDLE_NAMES:
        path = shipped_bundle_path(path)
    path = Path(path)
    if not path.exists():
        raise MetaParamsError(f"meta-parameter bundle not found: {path} (the shipped bundles, by name: "
                              f"{', '.join(map(repr, SHIPPED_BUNDLE_NAMES))})")
    if not path.is_dir():
        raise MetaParamsError(f"{path}: a bundle is a SavedModel directory, got a file")
    meta = read_bundle_metadata(path)
    params = MetaParams.from_arrays(_read_variables(path), source=str(path),
                                    feature_normalization=meta.get("feature_normalization", "norm"))
    for key, value in (("num_candidates", params.num_candidates), ("hidden", params.hidden)):
        if key in meta and meta[key] != value:
            raise MetaParamsError(f"{path}: meta.json says {key}={meta[key]} but the variables give {value}")
    recorded = meta.get("sha256")
    if recorded is not None and recorded != params.fingerprint():
        raise MetaParamsError(
            f"{path}: checksum mismatch: the variables' SHA-256 is {params.fingerprint()}, meta.json "
            f"records {recorded!r} (the bundle is damaged or was edited)")
    return params


def _read_variables(path: Path) -> dict[str, np.ndarray]:
    """The meta-parameter arrays of a bundle, read with a checkpoint reader (no graph is loaded)."""
    prefix = path / "variables" / "variables"
    if not Path(f"{prefix}.index").is_file():
        raise MetaParamsError(f"{path}: no variables (missing variables/variables.index)")
    # The C++ checkpoint reader reports damaged files as OpError (DataLossError...), ValueError,
    # IndexError ("Read less bytes than requested") and others: each is a damaged bundle here.
    try:
        reader = tf.train.load_checkpoint(str(prefix))
        available = reader.get_variable_to_shape_map()
    except Exception as error:  # noqa: BLE001 (see above)
        raise MetaParamsError(
            f"{path}: unreadable variables index (truncated or damaged: {type(error).__name__}: {error})") from None
    arrays = {}
    for name in NAMES:
        key = _checkpoint_key(name)
        if key not in available:
            raise MetaParamsError(f"{path}: missing meta-parameter variable {name}")
        try:
            arrays[name] = np.asarray(reader.get_tensor(key))
        except Exception as error:  # noqa: BLE001 (see above)
            raise MetaParamsError(
                f"{path}: cannot read meta-parameter variable {name} (variables file truncated or damaged: "
                f"{type(error).__name__}: {error})") from None
    return arrays


@functools.lru_cache(maxsize=4)
def _load_cached(path: str) -> MetaParams:
    return load_meta_params(path)


def shipped_meta_params(name: str) -> MetaParams:
    """A shipped bundle's meta-parameters by name (read once per process)."""
    return _load_cached(str(shipped_bundle_path(name)))


def default_meta_params() -> MetaParams:
    """The shipped default bundle's meta-parameters (read once per process)."""
    return shipped_meta_params(DEFAULT_BUNDLE_NAME)


def meta_params_to_config(params: MetaParams) -> dict:
    """The `meta_params` entry of an optimizer config: a shipped bundle by name and SHA-256
    (`{"bundle": "default", "sha256": ...}`, a few bytes), any other meta-parameters with their arrays
    embedded (`MetaParams.to_config()`, so a config or `.keras` file needs no bundle file to load)."""
    for name in SHIPPED_BUNDLE_NAMES:
        if params.fingerprint() == shipped_meta_params(name).fingerprint():
            return {"bundle": name, "sha256": params.fingerprint()}
    return params.to_config()


def meta_params_from_config(config: Mapping) -> MetaParams:
    """Inverse of `meta_params_to_config`, also for configs of earlier versions (arrays embedded even for
    the default; a shipped bundle under the name it had then, such as the "paper" bundle as "default"
    before 2026-12-03); the SHA-256 is checked either way."""
    if "arrays" in config:
        return MetaParams.from_config(config)
    name, expected = config.get("bundle"), config.get("sha256")
    if name not in SHIPPED_BUNDLE_NAMES:
        raise MetaParamsError(f"optimizer config: meta_params names bundle {name!r}; the bundles referred to "
                              f"by name are the shipped ones, {', '.join(map(repr, SHIPPED_BUNDLE_NAMES))} "
                              f"(others embed their arrays)")
    for candidate in dict.fromkeys((name, *SHIPPED_BUNDLE_NAMES)):  # its name first, then the others
        params = shipped_meta_params(candidate)
        if expected == params.fingerprint():
            return params
    raise MetaParamsError(
        f"optimizer config: meta_params refers to the shipped bundle {name!r} with sha256 {expected!r}, but "
        f"this hyperadam-keras ships {shipped_meta_params(name).fingerprint()} ({shipped_bundle_path(name)}) and "
        f"no other shipped bundle has that sha256: the config was written with another version; install that "
        f"version, or pass meta_params= explicitly")


def shipped_bundle_path(name: str) -> Path:
    """A shipped bundle's directory: inside the installed package, or `saved_meta/` of a checkout."""
    if name not in SHIPPED_BUNDLE_NAMES:
        raise MetaParamsError(f"no shipped bundle named {name!r}; the shipped bundles are "
                              f"{', '.join(map(repr, SHIPPED_BUNDLE_NAMES))}")
    candidates = [
        Path(__file__).resolve().parent / "saved_meta" / name,  # installed wheel
        Path(__file__).resolve().parent.parent / "saved_meta" / name,  # source tree
    ]
    for candidate in candidates:
        if (candidate / META_JSON).is_file():
            return candidate
    raise MetaParamsError(
        f"the shipped meta-parameter bundle {name!r} was not found (looked in "
        + ", ".join(str(c) for c in candidates) + "); reinstall hyperadam-keras")


def default_bundle_path() -> Path:
    """The shipped default bundle: inside the installed package, or `saved_meta/` of a checkout."""
    return shipped_bundle_path(DEFAULT_BUNDLE_NAME)


MetaParamsLike = Union[None, str, os.PathLike, MetaParams, dict]


def resolve_meta_params(meta_params: MetaParamsLike) -> MetaParams:
    """None -> the shipped default bundle; a path -> that bundle; a `MetaParams` as is; a dict -> an
    optimizer config entry (`bundle.meta_params_to_config`: the shipped bundle by name and SHA-256, or
    embedded arrays as every config of earlier versions has) or a dict of arrays."""
    if meta_params is None:
        return default_meta_params()
    if isinstance(meta_params, MetaParams):
        return meta_params
    if isinstance(meta_params, (str, os.PathLike)):
        return load_meta_params(meta_params)
    if isinstance(meta_params, dict):
        if "arrays" in meta_params or "bundle" in meta_params:
            return meta_params_from_config(meta_params)
        return MetaParams.from_arrays(meta_params, source="meta_params")
    raise MetaParamsError(f"meta_params must be None, a bundle path, a MetaParams or a dict, "
                          f"got {type(meta_params).__name__} {meta_params!r:.200}")
