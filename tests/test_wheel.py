"""The built wheel, installed NON-editable into a temporary venv, finds its default bundle inside
that venv (not in the source checkout) and constructs `HyperAdam()`; installed without extras into a
fresh venv, it trains and saves bundles with TensorFlow, Keras and NumPy only.

The temporary venv reuses the project's installed dependencies through a .pth file that appends
the current venv's site-packages to sys.path. A .pth line only adds a path: the .pth files found
there (among them the editable install's finder) are NOT run, so the checkout cannot shadow the
wheel; the child also runs from an empty directory outside the repository.
"""

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from hyperadam_keras import load_meta_params

REPO = Path(__file__).resolve().parent.parent
SOURCES = ("setup.cfg", "pyproject.toml", "README.md", "hyperadam_keras", "saved_meta")

CHECK = """
import json, hyperadam_keras
from hyperadam_keras import HyperAdam, default_bundle_path
opt, paper = HyperAdam(), HyperAdam(**hyperadam_keras.PAPER_SETTINGS)
print(json.dumps({"module": hyperadam_keras.__file__, "bundle": str(default_bundle_path()),
                  "fingerprint": opt.meta_params.fingerprint(), "J": opt.num_candidates,
                  "paper_fingerprint": paper.meta_params.fingerprint(), "paper_J": paper.num_candidates}))
"""


def _can_build_without_isolation() -> bool:
    """setuptools is importable (pip does not enforce pyproject's ">=68" without isolation; the venv's
    setuptools 65 builds this setup.cfg fine), and `wheel` too where setuptools < 70.1 needs it."""
    try:
        import setuptools
    except ImportError:
        return False
    version = tuple(int(part) for part in setuptools.__version__.split(".")[:2] if part.isdigit())
    if version >= (70, 1):
        return True
    return importlib.util.find_spec("wheel") is not None


def run(cmd, timeout: float = 120, **kwargs):
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kwargs)
    assert result.returncode == 0, f"{cmd} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout


# One worker runs the module, so its module fixture (the wheel build) runs once.
pytestmark = pytest.mark.xdist_group("wheel")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The package's wheel, built once from a copy of the sources (the in-tree build leaves nothing in
    the checkout)."""
    tmp_path = tmp_path_factory.mktemp("wheel")
    src = tmp_path / "src"
    src.mkdir()
    for name in SOURCES:
        origin = REPO / name
        if origin.is_dir():
            shutil.copytree(origin, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(origin, src / name)
    dist = tmp_path / "dist"
    if _can_build_without_isolation():  # offline, with this interpreter's setuptools
        isolation = ["--no-build-isolation", "--no-index"]
    else:  # e.g. Python 3.12+ venvs have no setuptools: pip fetches the build backend from the registry
        isolation = []
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", *isolation, "-q", "-w", str(dist), str(src)])
    wheels = list(dist.glob("hyperadam_keras-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


def test_wheel_installs_and_finds_default_bundle(tmp_path, wheel):
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    python = venv / "bin" / "python"
    purelib = Path(run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).strip())
    (purelib / "_project_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    # Non-editable install of the wheel into the temporary venv (pip of this interpreter, --target).
    run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "-q", "--target", str(purelib),
         str(wheel)])
    for name in ("default", "paper"):
        assert (purelib / "hyperadam_keras" / "saved_meta" / name / "assets" / "meta.json").is_file()

    outside = tmp_path / "elsewhere"
    outside.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    report = json.loads(run([str(python), "-c", CHECK], cwd=outside, env=env).strip().splitlines()[-1])
    venv_root = venv.resolve()
    assert Path(report["module"]).resolve().is_relative_to(venv_root), report
    assert Path(report["bundle"]).resolve().is_relative_to(venv_root), report
    assert not Path(report["bundle"]).resolve().is_relative_to(REPO / "saved_meta")
    shipped = load_meta_params(REPO / "saved_meta" / "default")  # the checkout's bundle, read directly
    assert report["fingerprint"] == shipped.fingerprint() and report["J"] == 8
    paper = load_meta_params(REPO / "saved_meta" / "paper")
    assert report["paper_fingerprint"] == paper.fingerprint() and report["paper_J"] == 20


LEAN_CHECK = """
import importlib.util, sys
import numpy as np, keras
import hyperadam_keras
from hyperadam_keras import HyperAdam, adam_ensemble, load_meta_params, save_meta_params
keras.utils.set_random_seed(0)
x = np.random.default_rng(0).normal(size=(64, 8)).astype("float32")
y = (x.sum(axis=1) > 0).astype("int32")
model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(4, activation="relu"), keras.layers.Dense(2)])
model.compile(optimizer=HyperAdam(), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
history = model.fit(x, y, batch_size=16, epochs=2, verbose=0).history["loss"]
assert int(model.optimizer.iterations.numpy()) == 8 and all(np.isfinite(history)), history
params = adam_ensemble(3, 2)
path = save_meta_params(params, sys.argv[1])
assert load_meta_params(path).fingerprint() == params.fingerprint()
assert HyperAdam(meta_params=path).num_candidates == 3
lab = [m for m in ("mlxtend", "tensorflow_datasets", "tqdm") if importlib.util.find_spec(m)]
assert not lab, lab  # not installed: the base install does without them
loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("mlxtend", "tensorflow_datasets", "matplotlib", "tqdm"))
assert not loaded, loaded
print("lean ok", hyperadam_keras.__file__)
"""


@pytest.mark.slow
def test_base_install_trains_and_saves_without_the_lab_extra(tmp_path, wheel):
    """`pip install hyperadam-keras` (no extras) into a fresh venv: its dependencies are TensorFlow, Keras
    and NumPy only; HyperAdam trains a model and bundles save and load there; a lab command names the
    [lab] extra. About a minute: pip installs TensorFlow from the package registry."""
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", str(venv)])
    python, console = venv / "bin" / "python", venv / "bin" / "hyperadam-keras"
    run([str(python), "-m", "pip", "install", "-q", "--no-compile", str(wheel)], timeout=400)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    out = run([str(python), "-c", LEAN_CHECK, str(tmp_path / "bundle")], cwd=outside, env=env, timeout=240)
    assert "lean ok" in out and str(venv) in out
    result = subprocess.run([str(console), "evaluate", "--list"], capture_output=True, text=True, timeout=240,
                            cwd=outside, env=env)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "[lab] extra: pip install 'hyperadam-keras[lab]'" in result.stderr and "Traceback" not in result.stderr
