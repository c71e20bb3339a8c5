"""HyperAdam, the learned optimizer of Wang, Sun & Xu (AAAI 2019), as a Keras 3 optimizer."""

from hyperadam_keras.bundle import default_bundle_path, load_meta_params, read_bundle_metadata, save_meta_params
from hyperadam_keras.meta_params import MetaParams, MetaParamsError, adam_ensemble, random_meta_params
from hyperadam_keras.optimizer import HyperAdam, optimizer_memory

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
