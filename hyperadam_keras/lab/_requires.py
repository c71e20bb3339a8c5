"""The lab's third-party packages come with the `[lab]` extra; `require` imports one or says so.

    tfds = require("tensorflow_datasets", feature="MNIST through TFDS")
    # without the extra: MissingExtraError: MNIST through TFDS needs the package tensorflow-datasets
    # (module tensorflow_datasets), which comes with the [lab] extra: pip install 'hyperadam-keras[lab]'
"""

from __future__ import annotations

import importlib
from types import ModuleType

EXTRA = "lab"
INSTALL_HINT = f"pip install 'hyperadam-keras[{EXTRA}]'"

# top-level module -> the distribution that provides it
DISTRIBUTIONS: dict[str, str] = {
    "mlxtend": "mlxtend",
    "tensorflow_datasets": "tensorflow-datasets",
    "matplotlib": "matplotlib",
    "tqdm": "tqdm",
    "tensorboard": "tensorboard",
    "sklearn": "scikit-learn",
}


class MissingExtraError(ImportError):
    """A lab feature was used without the package of the `[lab]` extra that it needs."""


def require(module: str, feature: str) -> ModuleType:
    """Imports and returns `module` (e.g. "mlxtend.data", "tqdm.auto"); if it cannot be imported, raises
    `MissingExtraError` naming `feature`, the missing distribution and the `[lab]` extra."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        top = module.split(".")[0]
        package = DISTRIBUTIONS.get(top, top)
        raise MissingExtraError(f"{feature} needs the package {package} (module {module}), which comes with the "
                                f"[{EXTRA}] extra: {INSTALL_HINT}", name=module) from error
