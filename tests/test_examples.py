"""Every script in examples/ runs as documented (in its fast mode) and prints what it promises.

The fast-mode runs are independent child processes, so they start together (at most 3 at a time)
when the first test needs one; each test then waits for its own run (each bounded in time, and killed
on timeout) and checks its output and files.
"""

from __future__ import annotations

import json
import re
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from helpers_subprocess import EXAMPLES, run_script, tf_noise_free

SCRIPTS = ["quickstart.py", "tfds_pipeline.py", "export_for_serving.py", "distributed.py",
           "custom_meta_training.py"]

# name -> (script arguments after the script, given the run's own directory)
FAST_RUNS = {
    "quickstart": lambda d: ["quickstart.py", "--steps", "10", "--seeds", "1", "--eval-every", "5",
                             "--output-dir", str(d), "--tensorboard", str(d / "tb")],
    "tfds_pipeline": lambda d: ["tfds_pipeline.py", "--data-dir", str(d / "tfds"), "--output-dir", str(d / "run"),
                                "--epochs", "2", "--steps-per-epoch", "4", "--interrupt-at-epoch", "1"],
    "export_for_serving": lambda d: ["export_for_serving.py", "--output-dir", str(d), "--epochs", "1",
                                     "--steps-per-epoch", "5"],
    "distributed": lambda d: ["distributed.py", "mirrored", "--steps", "3", "--batch-size", "64",
                              "--output-dir", str(d)],
    "custom_meta_training": lambda d: ["custom_meta_training.py", "--output-dir", str(d / "run"), "--epochs", "1",
                                       "--tasks-per-epoch", "2", "--horizon", "10", "--truncation", "5",
                                       "--validation-tasks", "1", "--compare-seeds", "1"],
}


def _run(args, timeout=240):
    result = run_script([str(EXAMPLES / args[0]), *args[1:]], timeout=timeout)
    assert result.returncode == 0, tf_noise_free(result.stdout)[-4000:]
    return result.stdout


# One worker runs the module, so its module fixture (the example runs) runs once.
pytestmark = pytest.mark.xdist_group("examples")


@pytest.fixture(scope="module")
def fast_runs(tmp_path_factory):
    """name -> (its directory, a future of its stdout); all started at once."""
    dirs = {name: tmp_path_factory.mktemp(name) for name in FAST_RUNS}
    with ThreadPoolExecutor(max_workers=3) as pool:
        futures = {name: pool.submit(_run, make(dirs[name]), 300) for name, make in FAST_RUNS.items()}
        yield {name: (dirs[name], futures[name]) for name in FAST_RUNS}


def _result(fast_runs, name):
    directory, future = fast_runs[name]
    return directory, future.result()


@pytest.mark.parametrize("script", SCRIPTS)
def test_help(script):
    out = _run([script, "--help"], timeout=60)
    assert out.startswith("usage:") and "--" in out


def test_quickstart(fast_runs):
    tmp_path, out = _result(fast_runs, "quickstart")
    assert "5000 real MNIST images" in out
    finals = dict(re.findall(r"final loss (HyperAdam\(\)|HyperAdam\(\*\*PAPER_SETTINGS\)|Adam \(lr [\d.]+\)) +"
                             r"(\d+\.\d+) ±", out))
    assert set(finals) == {"HyperAdam()", "HyperAdam(**PAPER_SETTINGS)", "Adam (lr 0.03)"}
    png = (tmp_path / "loss_curves.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    assert f"tensorboard --logdir {tmp_path / 'tb'}" in out  # the monitor's event files, and where to look
    assert list((tmp_path / "tb").rglob("events.out.tfevents.*"))
    results = json.loads((tmp_path / "results.json").read_text())
    for label, entry in results["optimizers"].items():
        steps = [step for step, _ in entry["curves"][0]]
        losses = [loss for _, loss in entry["curves"][0]]
        assert steps == [0, 5, 10], label
        assert losses[-1] < losses[0], f"{label} did not reduce the loss: {losses}"
        assert entry["final_loss_mean"] == pytest.approx(float(finals[label]), abs=1e-4)
    # Both start from the same initial weights (same seed): the same loss at step 0.
    starts = {label: entry["curves"][0][0][1] for label, entry in results["optimizers"].items()}
    assert len(set(np.round(list(starts.values()), 6))) == 1


def test_tfds_pipeline_resumes_after_the_interruption(fast_runs):
    tmp_path, out = _result(fast_runs, "tfds_pipeline")
    assert "tfds.load('mnist_subset'" in out and "train 4000, test 1000 examples" in out
    assert (tmp_path / "tfds" / "mnist_subset").is_dir()
    assert "interrupted: simulated interruption at the start of epoch 2" in out
    assert "fit starts at epoch 2/2 (restored from the backup)" in out
    assert "attempt 2 ran 1 epoch(s); the optimizer is at iteration 8" in out  # 4 restored + 4 new steps
    assert "backup removed after success: True" in out
    events = list((tmp_path / "run" / "tensorboard").rglob("events.out.tfevents.*"))
    assert events, "TensorBoard wrote no event files"
    accuracy = float(re.search(r"final test loss [\d.]+, test accuracy ([\d.]+)", out).group(1))
    assert accuracy > 0.2  # 8 steps of a CNN: well above chance (0.1)


def test_export_for_serving(fast_runs):
    tmp_path, out = _result(fast_runs, "export_for_serving")
    assert "[FAILED]" not in out
    assert out.count("[ok]") == 4
    assert "optimizer / HyperAdam state variables: 0" in out
    assert (tmp_path / "serving" / "saved_model.pb").exists()
    served = json.loads((tmp_path / "served.json").read_text())
    assert served["num_variables"] == 4 and "serving_default" in served["signatures"]
    assert served["signature_matches_serve"]
    # The training checkpoint is much larger than the export: it holds 6 HyperAdam slots per variable.
    assert (tmp_path / "model.keras").stat().st_size > 20 * sum(
        p.stat().st_size for p in (tmp_path / "serving").rglob("*") if p.is_file())


def test_distributed_mirrored(fast_runs):
    tmp_path, out = _result(fast_runs, "distributed")
    assert "MirroredStrategy with 2 replicas" in out
    diff = float(re.search(r"max \|w_mirrored - w_one_device\| = (\S+)", out).group(1))
    assert diff < 1e-5
    with np.load(tmp_path / "mirrored.npz") as mirrored, np.load(tmp_path / "reference.npz") as reference:
        assert abs(mirrored["arr_0"] - reference["arr_0"]).max() == pytest.approx(diff, abs=1e-6)
        assert len(mirrored["losses"]) == 3


def test_custom_meta_training(fast_runs):
    tmp_path, out = _result(fast_runs, "custom_meta_training")
    out_dir = tmp_path / "run"
    assert "meta-training: 4/4 meta-steps" in out
    bundle = out_dir / "best_bundle"
    assert (bundle / "saved_model.pb").exists() and (bundle / "assets" / "meta.json").exists()
    meta = json.loads((bundle / "assets" / "meta.json").read_text())
    assert meta["made_by"]["task"] == "keras-my_tanh_mlp"
    from hyperadam_keras import default_bundle_path as shipped
    assert meta["made_by"]["initialized_from"] == str(shipped())  # fine-tunes the shipped default
    # The bundle loads into HyperAdam and is what the run exported (not the shipped default).
    from hyperadam_keras import HyperAdam, default_bundle_path, load_meta_params

    learned = load_meta_params(bundle)
    assert f"-> {learned}" in out
    assert HyperAdam(meta_params=bundle).meta_params.fingerprint() == learned.fingerprint()
    if meta["validation"]["best_epoch"] > 0:
        assert learned.fingerprint() != load_meta_params(default_bundle_path()).fingerprint()
    comparison = json.loads((out_dir / "comparison.json").read_text())
    assert set(comparison) == {"HyperAdam() (shipped default)", "HyperAdam(meta_params=best_bundle)"}
    for entry in comparison.values():
        assert np.isfinite(entry["train_loss"]).all() and entry["train_loss"][0] < np.log(10)
