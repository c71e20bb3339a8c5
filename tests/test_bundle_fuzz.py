"""Damaged bundles: copies of the shipped bundle, truncated, with flipped bytes, with files deleted, with
meta.json edited, with wrong shapes, dtypes and NaN values. Loading each either returns exactly the
original arrays (the damage was to a part loading does not read, e.g. the graph) or raises
`MetaParamsError` naming the path, never anything else, and never runs or loads any of the bundle's
functions or graphs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from hyperadam_keras import MetaParamsError, default_bundle_path, load_meta_params
from hyperadam_keras.meta_params import NAMES

OFFSETS_PER_FILE = 20
RNG_SEED = 20240611
ORIGINAL = load_meta_params(default_bundle_path())


@pytest.fixture(autouse=True)
def no_bundle_code(monkeypatch):
    """Any attempt to load the SavedModel's graph or functions fails the test."""
    import tensorflow.python.saved_model.load as tf_load

    def refuse(*args, **kwargs):
        pytest.fail(f"a SavedModel loader was called with {args} {kwargs}: loading must read variables only")

    for module, name in ((tf.saved_model, "load"), (tf_load, "load"), (tf_load, "load_partial"),
                         (tf.compat.v1.saved_model, "load"), (tf.compat.v1.saved_model.loader, "load")):
        monkeypatch.setattr(module, name, refuse)


@pytest.fixture(scope="module")
def original(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("fuzz") / "original"
    shutil.copytree(default_bundle_path(), path)
    return path


def bundle_files(bundle: Path) -> list[Path]:
    return sorted(p.relative_to(bundle) for p in bundle.rglob("*") if p.is_file())


class Fresh:
    """Numbered fresh copies of the original bundle."""

    def __init__(self, original: Path, root: Path):
        self.original, self.root, self.count = original, root, 0

    def __call__(self) -> Path:
        self.count += 1
        path = self.root / f"case{self.count}"
        shutil.copytree(self.original, path)
        return path


@pytest.fixture
def fresh(original, tmp_path):
    return Fresh(original, tmp_path)


def assert_original_or_clean_error(path: Path, what: str) -> str:
    """Loads `path`: exactly the original arrays, or a MetaParamsError naming the path. Returns the outcome."""
    try:
        params = load_meta_params(path)
    except MetaParamsError as error:
        assert str(path) in str(error), f"{what}: the error does not name the bundle: {error}"
        return "error"
    except Exception as error:  # noqa: BLE001 (the point of the test)
        pytest.fail(f"{what}: {type(error).__name__} instead of MetaParamsError: {error}")
    for name in NAMES:
        np.testing.assert_array_equal(params.values[name], ORIGINAL.values[name], err_msg=f"{what}: {name}")
    assert params.fingerprint() == ORIGINAL.fingerprint(), what
    assert params.feature_normalization == ORIGINAL.feature_normalization, what
    return "original"


def offsets(size: int, rng: np.random.Generator) -> list[int]:
    chosen = {0, max(size - 1, 0)} | set(rng.integers(0, max(size, 1), OFFSETS_PER_FILE).tolist())
    return sorted(chosen)[:OFFSETS_PER_FILE + 2]


def test_the_shipped_bundle_is_a_valid_start(original):
    assert assert_original_or_clean_error(original, "untouched") == "original"
    names = {str(p) for p in bundle_files(original)}
    assert {"saved_model.pb", "assets/meta.json", "variables/variables.index"} <= names


def test_truncated_files(original, fresh):
    rng = np.random.default_rng(RNG_SEED)
    outcomes = {}
    for relative in bundle_files(original):
        data = (original / relative).read_bytes()
        for offset in offsets(len(data), rng):
            path = fresh()
            (path / relative).write_bytes(data[:offset])
            outcomes[(str(relative), offset)] = assert_original_or_clean_error(path, f"{relative} cut at {offset}")
    # What loading reads cannot be cut without an error: the index anywhere, the data file within its
    # arrays (they come first; the object graph after them is not read), meta.json but for its newline.
    read_until = {"variables/variables.index": len((original / "variables" / "variables.index").read_bytes()),
                  "variables/variables.data-00000-of-00001": 4 * sum(a.size for a in ORIGINAL.values.values()),
                  "assets/meta.json": len((original / "assets" / "meta.json").read_bytes().rstrip())}
    for (relative, offset), outcome in outcomes.items():
        if offset < read_until.get(relative, 0):
            assert outcome == "error", (relative, offset)
    # Most cuts of the three read files are errors (the default bundle's data file is a quarter graph).
    assert sum(outcome == "error" for outcome in outcomes.values()) > 2 * OFFSETS_PER_FILE


def test_flipped_bytes(original, fresh):
    rng = np.random.default_rng(RNG_SEED + 1)
    outcomes = {}
    for relative in bundle_files(original):
        data = (original / relative).read_bytes()
        for offset in offsets(len(data), rng)[:OFFSETS_PER_FILE]:
            damaged = bytearray(data)
            damaged[offset] ^= int(rng.integers(1, 256))
            path = fresh()
            (path / relative).write_bytes(bytes(damaged))
            outcomes[(str(relative), offset)] = assert_original_or_clean_error(
                path, f"{relative} byte {offset} flipped")
    # The data file's arrays come first and are checksummed; the object graph after them is not read.
    arrays_end = 4 * sum(a.size for a in ORIGINAL.values.values())
    data_file = [key for key in outcomes if key[0].startswith("variables/variables.data") and key[1] < arrays_end]
    assert data_file and all(outcomes[key] == "error" for key in data_file), "the data file's arrays are checksummed"
    graph = [key for key in outcomes if key[0] == "saved_model.pb"]
    assert all(outcomes[key] == "original" for key in graph), "the graph is never read"


def test_deleted_files_and_directories(original, fresh):
    for relative in [*bundle_files(original), Path("variables"), Path("assets")]:
        path = fresh()
        target = path / relative
        shutil.rmtree(target) if target.is_dir() else target.unlink()
        outcome = assert_original_or_clean_error(path, f"{relative} deleted")
        if str(relative) not in ("saved_model.pb", "fingerprint.pb"):
            assert outcome == "error", relative
    path = fresh()
    shutil.rmtree(path)
    with pytest.raises(MetaParamsError, match="not found"):
        load_meta_params(path)


def edited_meta(meta: dict) -> list[tuple[str, object]]:
    """(description, new meta.json content: a dict to dump or raw bytes) pairs."""
    cases = []
    for key, values in {"format_version": [3, 0, "1", True, None, 1.5, [1]],
                        "num_candidates": [21, 0, "20", None], "hidden": [19, -1, [20]],
                        "sha256": ["0" * 64, ORIGINAL.fingerprint().upper(), 5, None],
                        "feature_normalization": ["layer", 3, None, "rms"]}.items():
        for value in values:
            cases.append((f"{key}={value!r}", {**meta, key: value}))
        cases.append((f"no {key}", {k: v for k, v in meta.items() if k != key}))
    raw = json.dumps(meta).encode()
    cases += [("empty file", b""), ("a list", b"[1, 2]"), ("a string", b'"bundle"'), ("null", b"null"),
              ("cut JSON", raw[: len(raw) // 2]), ("not UTF-8", b"\xff\xfe" + raw), ("NaN literal", b"NaN"),
              ("deeply nested", b"[" * 100_000 + b"]" * 100_000), ("trailing garbage", raw + b" }")]
    return cases


def test_edited_meta_json(original, fresh):
    meta = json.loads((original / "assets" / "meta.json").read_text())
    outcomes = {}
    for what, content in edited_meta(meta):
        path = fresh()
        data = content if isinstance(content, bytes) else json.dumps(content).encode()
        (path / "assets" / "meta.json").write_bytes(data)
        outcomes[what] = assert_original_or_clean_error(path, f"meta.json: {what}")
    # Removing what loading does not need changes nothing; a false claim about the arrays is an error.
    # Without feature_normalization a bundle reads as the paper's "norm": the default bundle's "rms-clip"
    # is then a false claim too (the SHA-256 covers the normalization).
    unneeded = {"no num_candidates", "no hidden", "no sha256", "sha256=None"}
    if ORIGINAL.feature_normalization == "norm":
        unneeded.add("no feature_normalization")
    else:
        assert outcomes["no feature_normalization"] == "error"
    assert {what for what, outcome in outcomes.items() if outcome == "original"} == unneeded
    assert outcomes["sha256='" + "0" * 64 + "'"] == "error"


def write_variables(bundle: Path, arrays: dict) -> None:
    """Replaces the bundle's variables by a checkpoint of `arrays` under the bundle's own keys
    (`group/name/.ATTRIBUTES/VARIABLE_VALUE`)."""
    groups = {}
    for name, value in arrays.items():
        group, variable = name.split("/")
        setattr(groups.setdefault(group, tf.Module()), variable, tf.Variable(value))
    shutil.rmtree(bundle / "variables")
    tf.train.Checkpoint(**groups).write(str(bundle / "variables" / "variables"))


def test_rewritten_variables(original, fresh):
    base = ORIGINAL.arrays()
    # The writer itself gives a loadable bundle: the errors below come from the one change made.
    path = fresh()
    write_variables(path, base)
    assert assert_original_or_clean_error(path, "rewritten unchanged") == "original"
    cases = {}
    for bad in (np.nan, np.inf, -np.inf):
        arrays = {k: v.copy() for k, v in base.items()}
        arrays["state_cell/kernel"][3, 7] = bad
        cases[f"state_cell/kernel has {bad}"] = arrays
    cases["wrong shape"] = {**base, "adam_cell/beta_kernel": np.zeros((41, 20), np.float32)}
    cases["transposed"] = {**base, "weight_cell/kernel": base["weight_cell/kernel"].T.copy()}
    cases["scalar"] = {**base, "preprocess/bias": np.float32(1.0)}
    cases["other J and H everywhere"] = {k: np.zeros([d // 2 or 1 for d in v.shape], np.float32) for k, v in base.items()}
    cases["float64 values changed"] = {**base, "weight_cell/bias": base["weight_cell/bias"].astype(np.float64) + 1e-3}
    cases["int32"] = {**base, "weight_cell/bias": np.ones(20, np.int32)}
    cases["strings"] = {**base, "weight_cell/bias": np.array([b"x"] * 20)}
    cases["one missing"] = {k: v for k, v in base.items() if k != "adam_cell/gamma_bias"}
    for what, arrays in cases.items():
        path = fresh()
        write_variables(path, arrays)
        assert assert_original_or_clean_error(path, what) == "error", what
