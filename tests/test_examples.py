"""Every script in examples/ runs as documented (in its fast mode) and prints what it promises."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from helpers_subprocess import EXAMPLES, run_script, tf_noise_free

SCRIPTS = ["quickstart.py", "tfds_pipeline.py", "export_for_serving.py", "distributed.py",
           "custom_meta_training.py"]


def _run(args, timeout=240):
    result = run_script([str(EXAMPLES / args[0]), *args[1:]], timeout=timeout)
    assert result.returncode == 0, tf_noise_free(result.stdout)[-4000:]
    return result.stdout


@pytest.mark.parametrize("script", SCRIPTS)
def test_help(script):
    out = _run([script, "--help"], timeout=60)
    assert out.startswith("usage:") and "--" in out


def test_quickstart(tmp_path):
    out = _run(["quickstart.py", "--steps", "10", "--seeds", "1", "--eval-every", "5",
                "--output-dir", str(tmp_path)])
    assert "5000 real MNIST images" in out
    finals = dict(re.findall(r"final loss (HyperAdam|Adam) .*?(\d+\.\d+) ±", out))
    assert set(finals) == {"HyperAdam", "Adam"}
    png = (tmp_path / "loss_curves.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    results = json.loads((tmp_path / "results.json").read_text())
    for label, entry in results["optimizers"].items():
        steps = [step for step, _ in entry["curves"][0]]
        losses = [loss for _, loss in entry["curves"][0]]
        assert steps == [0, 5, 10], label
        assert losses[-1] < losses[0], f"{label} did not reduce the loss: {losses}"
        assert entry["final_loss_mean"] == pytest.approx(float(finals[label.split()[0]]), abs=1e-4)
    # Both start from the same initial weights (same seed): the same loss at step 0.
    starts = {label: entry["curves"][0][0][1] for label, entry in results["optimizers"].items()}
    assert len(set(np.round(list(starts.values()), 6))) == 1


def test_tfds_pipeline_resumes_after_the_interruption(tmp_path):
    out = _run(["tfds_pipeline.py", "--data-dir", str(tmp_path / "tfds"), "--output-dir", str(tmp_path / "run"),
                "--epochs", "2", "--steps-per-epoch", "4", "--interrupt-at-epoch", "1"])
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


def test_export_for_serving(tmp_path):
    out = _run(["export_for_serving.py", "--output-dir", str(tmp_path), "--epochs", "1",
                "--steps-per-epoch", "5"])
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


def test_distributed_mirrored(tmp_path):
    out = _run(["distributed.py", "mirrored", "--steps", "3", "--batch-size", "64", "--output-dir", str(tmp_path)])
    assert "MirroredStrategy with 2 replicas" in out
    diff = float(re.search(r"max \|w_mirrored - w_one_device\| = (\S+)", out).group(1))
    assert diff < 1e-5
    with np.load(tmp_path / "mirrored.npz") as mirrored, np.load(tmp_path / "reference.npz") as reference:
        assert abs(mirrored["arr_0"] - reference["arr_0"]).max() == pytest.approx(diff, abs=1e-6)
        assert len(mirrored["losses"]) == 3
