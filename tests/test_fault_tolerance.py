"""Fault tolerance in `fit`: a training process with BackupAndRestore is SIGKILLed in the middle of an
epoch, restarted, and ends with exactly the weights (and HyperAdam state) of an uninterrupted run."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import numpy as np

from helpers_subprocess import REPO, TRAIN_EPOCHS, TRAIN_STEPS_PER_EPOCH, run_script, started, tf_noise_free

JOB = str(Path(__file__).with_name("helpers_subprocess.py"))
KILL_EPOCH = 1  # 0-based: killed after the backup of epoch 0, with 2 batches of epoch 1 done


def _load(path):
    with np.load(path) as data:
        return {name: data[name] for name in data.files}


def test_sigkill_mid_epoch_then_restart_gives_the_uninterrupted_weights(tmp_path):
    interrupted, reference = tmp_path / "interrupted", tmp_path / "reference"
    interrupted.mkdir()
    reference.mkdir()
    backup = interrupted / "backup"
    job = [JOB, "train", "--backup-dir", str(backup), "--result", str(interrupted / "result.npz")]

    # The uninterrupted reference run, alongside the first (to be killed) attempt.
    with started([JOB, "train", "--backup-dir", str(reference / "backup"), "--result",
                  str(reference / "result.npz")], reference / "log.txt") as ref_process, \
            started([*job, "--hang-at-epoch", str(KILL_EPOCH)], interrupted / "log1.txt") as victim:
        deadline = time.monotonic() + 400
        while not (interrupted / "hanging").exists():
            assert victim.poll() is None, tf_noise_free((interrupted / "log1.txt").read_text())[-3000:]
            assert time.monotonic() < deadline, "the job never reached the kill point"
            time.sleep(0.1)
        # The backup of the last finished epoch exists; part of the next epoch is trained (and lost).
        assert json.loads((backup / "training_metadata.json").read_text())["epoch"] == KILL_EPOCH
        victim.send_signal(signal.SIGKILL)
        assert victim.wait(timeout=30) == -signal.SIGKILL
        assert not (interrupted / "result.npz").exists()

        # Restart: the same command, without the hang. BackupAndRestore resumes at epoch KILL_EPOCH.
        restart = run_script(job, timeout=400, cwd=REPO)
        assert restart.returncode == 0, tf_noise_free(restart.stdout)[-3000:]
        assert ref_process.wait(timeout=400) == 0, tf_noise_free((reference / "log.txt").read_text())[-3000:]

    assert not backup.exists(), "BackupAndRestore deletes its backup after a successful fit"
    resumed, uninterrupted = _load(interrupted / "result.npz"), _load(reference / "result.npz")
    assert sorted(resumed) == sorted(uninterrupted)
    # The iteration counter: every step of the uninterrupted schedule, the lost half-epoch not counted.
    assert int(resumed["optimizer_0"]) == int(uninterrupted["optimizer_0"]) == TRAIN_EPOCHS * TRAIN_STEPS_PER_EPOCH
    for name in uninterrupted:  # weights and every HyperAdam slot, bit for bit
        np.testing.assert_array_equal(resumed[name], uninterrupted[name], err_msg=name)
    # The slots really hold state (a resume that reset them could not pass the check above).
    assert sum(float(np.abs(v).sum()) for k, v in uninterrupted.items() if k.startswith("optimizer_")) > 1.0
