"""What the numbers were measured on: the machine and library versions a results JSON records."""

from __future__ import annotations

import datetime
import os
import platform

import keras
import tensorflow as tf

from hyperadam_keras.cpu_allocator import cpu_allocator_in_use


def machine_info() -> dict:
    """What the numbers were measured on."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    gpus = tf.config.list_physical_devices("GPU")
    info = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "platform": platform.platform(), "cpu": cpu, "cpu_cores": affinity,
            "gpus": [d.name for d in gpus], "device": "GPU" if gpus else "CPU",
            "python": platform.python_version(), "tensorflow": tf.__version__, "keras": keras.__version__,
            # Speed, not results: the BFC allocator reuses memory that the default one maps afresh (cpu_allocator.py).
            "cpu_allocator": cpu_allocator_in_use()}
    if gpus:
        try:
            info["gpu_details"] = [tf.config.experimental.get_device_details(g) for g in gpus]
        except Exception:  # noqa: BLE001 - the details are a courtesy; the GPU's name is already recorded
            pass
    return info

