"""TensorFlow's BFC allocator on CPU, for HyperAdam's update of large tensors.

HyperAdam's compiled update of a tensor of n coordinates writes temporaries of about 200 bytes per
coordinate every step. TensorFlow's default CPU allocator hands buffers that large to `malloc`, which maps
fresh pages from the kernel for each and returns them when freed, so every step pays a page fault per 4 KiB
touched. TensorFlow's BFC allocator (`TF_CPU_ALLOCATOR_USE_BFC=true`, read when TensorFlow's runtime starts)
keeps the memory it got and reuses it. Measured on the 2-core development CPU (`benchmarks/step_time.py
--cpu-allocator`, docs/speed.md): the update of CNN-2 (117,434 parameters) and of a 1M-parameter MLP 2.3–2.7× faster (the
1M-parameter MLP's training step from 26.8× Adam's to 14.9×), the paper's 15,910-parameter MLP unchanged;
the results are bit-identical (tests/test_cpu_allocator.py).

The trade-off is TensorFlow's, not ours: the BFC allocator does not give memory back to the system while
the process runs, and caps what it hands out (`TF_CPU_BFC_MEM_LIMIT_IN_MB`). So importing the package
changes nothing; the `hyperadam-keras` command asks for it (a value already in the environment wins),
and a program of yours can call `use_bfc_cpu_allocator()` before TensorFlow runs its first operation.

Stdlib only at import: the package's `__init__` uses this module before TensorFlow starts.
"""

from __future__ import annotations

import os
import sys
import warnings

ALLOCATOR_VARIABLE = "TF_CPU_ALLOCATOR_USE_BFC"
CPU_ALLOCATORS = ("default", "bfc")


def _runtime_started() -> bool:
    """Whether TensorFlow's eager context (hence its CPU allocator) exists already in this process."""
    if "tensorflow" not in sys.modules:
        return False
    from tensorflow.python.eager import context

    return bool(context.context()._initialized)


def use_bfc_cpu_allocator() -> bool:
    """Asks TensorFlow to use its BFC allocator on CPU (sets `TF_CPU_ALLOCATOR_USE_BFC=true` unless the
    variable is set already): HyperAdam's update of large tensors then runs 2.3–2.7× faster on CPU, with
    the same results (see this module's docstring for what it costs).

    Call it before TensorFlow runs its first operation (before building a model). Returns whether the BFC
    allocator is, or will be, the one in use: False, with a warning, when the runtime has already started
    with the default allocator, or when the environment sets the variable to something else than true.
    """
    if _runtime_started():
        active = bfc_cpu_allocator_active()
        if not active:
            warnings.warn("use_bfc_cpu_allocator(): TensorFlow's runtime has started already with its default "
                          "CPU allocator; call it before the first TensorFlow operation, or set "
                          f"{ALLOCATOR_VARIABLE}=true in the environment", RuntimeWarning, stacklevel=2)
        return active
    value = os.environ.setdefault(ALLOCATOR_VARIABLE, "true")
    if not requests_bfc(value):
        warnings.warn(f"use_bfc_cpu_allocator(): the environment sets {ALLOCATOR_VARIABLE}={value!r}, which wins",
                      RuntimeWarning, stacklevel=2)
        return False
    return True


def requests_bfc(value: str) -> bool:
    """Whether TensorFlow reads `value` of `TF_CPU_ALLOCATOR_USE_BFC` as true ("true" or "1", any case)."""
    return value.strip().lower() in ("true", "1")


def bfc_cpu_allocator_active() -> bool:
    """Whether TensorFlow allocates CPU memory with its BFC allocator in this process (starts the runtime:
    only the BFC allocator keeps the statistics that `tf.config.experimental.get_memory_info` reads)."""
    import tensorflow as tf

    try:
        tf.config.experimental.get_memory_info("CPU:0")
    except ValueError:  # "Allocator stats not available for device 'CPU:0'": the default allocator
        return False
    return True


def cpu_allocator_in_use() -> str:
    """"bfc" or "default": the CPU allocator of this process, by its name in `CPU_ALLOCATORS` (starts the runtime)."""
    return "bfc" if bfc_cpu_allocator_active() else "default"


def select_cpu_allocator(name: str) -> None:
    """For benchmarks that compare the two: TensorFlow's "default" CPU allocator or its "bfc" one, whatever
    the environment says. Raises ValueError for another name, and RuntimeError once TensorFlow's runtime
    has started with the other one (the allocator is chosen when it starts)."""
    if name not in CPU_ALLOCATORS:
        raise ValueError(f"cpu allocator must be one of {CPU_ALLOCATORS}, got {name!r}")
    if _runtime_started():
        if cpu_allocator_in_use() != name:
            raise RuntimeError(f"the {name!r} CPU allocator was asked for after TensorFlow's runtime started "
                               "with the other one")
        return
    os.environ[ALLOCATOR_VARIABLE] = "true" if name == "bfc" else "false"


def request_for_the_command() -> None:
    """The `hyperadam-keras` command's default: the BFC allocator unless the environment says otherwise."""
    os.environ.setdefault(ALLOCATOR_VARIABLE, "true")
