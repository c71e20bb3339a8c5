"""HyperAdam, the learned optimizer of Wang, Sun & Xu (AAAI 2019), as a Keras 3 optimizer.

`import hyperadam_keras` registers `HyperAdam` with Keras (`hyperadam_keras>HyperAdam`), so that
`keras.saving.load_model` rebuilds a model compiled with it without `custom_objects`. The package
needs only TensorFlow, Keras and NumPy; the research tooling in `hyperadam_keras.lab` needs the
`[lab]` extra.
"""

from hyperadam_keras import _quiet_start, cpu_allocator

# Before TensorFlow starts, in the `hyperadam-keras` command only: its BFC allocator on CPU is asked for
# (unless the environment says otherwise; `cpu_allocator.py`), and its C++ start-up lines are filtered.
if _quiet_start.command_arguments() is not None:
    cpu_allocator.request_for_the_command()
_quiet_start.quiet_if_the_command()

from hyperadam_keras.bundle import (  # noqa: E402
    default_bundle_path, load_meta_params, read_bundle_metadata, save_meta_params)
from hyperadam_keras.meta_params import (  # noqa: E402
    MetaParams, MetaParamsError, adam_ensemble, random_meta_params)
from hyperadam_keras.defaults import PAPER_SETTINGS  # noqa: E402
from hyperadam_keras.memory import optimizer_memory  # noqa: E402
from hyperadam_keras.cpu_allocator import bfc_cpu_allocator_active, use_bfc_cpu_allocator  # noqa: E402
from hyperadam_keras.optimizer import HyperAdam  # noqa: E402
from hyperadam_keras.monitor import HyperAdamMonitor  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "HyperAdam",
    "HyperAdamMonitor",
    "MetaParams",
    "MetaParamsError",
    "PAPER_SETTINGS",
    "adam_ensemble",
    "bfc_cpu_allocator_active",
    "default_bundle_path",
    "load_meta_params",
    "optimizer_memory",
    "random_meta_params",
    "read_bundle_metadata",
    "save_meta_params",
    "use_bfc_cpu_allocator",
]
