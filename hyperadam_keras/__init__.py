"""HyperAdam, the learned optimizer of Wang, Sun & Xu (AAAI 2019), as a Keras 3 optimizer.

The public names below are loaded on first use (PEP 562): `import hyperadam_keras` alone imports
neither TensorFlow nor Keras, so the `hyperadam-keras` command can set TensorFlow's logging up before
TensorFlow starts. `from hyperadam_keras import HyperAdam` (or `hyperadam_keras.HyperAdam`) imports
the optimizer module, which registers `HyperAdam` with Keras (`hyperadam_keras>HyperAdam`), so that
`keras.saving.load_model` finds it without `custom_objects`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "HyperAdam",
    "MetaParams",
    "MetaParamsError",
    "adam_ensemble",
    "default_bundle_path",
    "load_meta_params",
    "optimizer_memory",
    "random_meta_params",
    "read_bundle_metadata",
    "save_meta_params",
]

# public name -> the module that defines it
_HOMES: dict[str, str] = {
    "HyperAdam": "hyperadam_keras.optimizer",
    "optimizer_memory": "hyperadam_keras.optimizer",
    "MetaParams": "hyperadam_keras.meta_params",
    "MetaParamsError": "hyperadam_keras.meta_params",
    "adam_ensemble": "hyperadam_keras.meta_params",
    "random_meta_params": "hyperadam_keras.meta_params",
    "default_bundle_path": "hyperadam_keras.bundle",
    "load_meta_params": "hyperadam_keras.bundle",
    "read_bundle_metadata": "hyperadam_keras.bundle",
    "save_meta_params": "hyperadam_keras.bundle",
}

if TYPE_CHECKING:
    from hyperadam_keras.bundle import default_bundle_path, load_meta_params, read_bundle_metadata, save_meta_params
    from hyperadam_keras.meta_params import MetaParams, MetaParamsError, adam_ensemble, random_meta_params
    from hyperadam_keras.optimizer import HyperAdam, optimizer_memory


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
