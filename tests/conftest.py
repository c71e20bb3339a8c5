"""Shared test set-up. TensorFlow's CPU must be split into 2 logical devices before the runtime
starts (for the tf.distribute tests), so this happens at import, before any test runs."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

_cpus = tf.config.list_physical_devices("CPU")
try:
    tf.config.set_logical_device_configuration(
        _cpus[0], [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()])
except RuntimeError:  # the runtime was already initialized by an earlier import
    pass
