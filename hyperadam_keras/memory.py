"""How much memory HyperAdam's state takes for a model (`optimizer_memory`)."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from hyperadam_keras.bundle import default_meta_params
from hyperadam_keras.state_layout import StateSlot
from hyperadam_keras.update import check_state_dtype


def optimizer_memory(model_or_variables, num_candidates: int | None = None, hidden: int | None = None,
                     optimizer=None, state_dtype: str | None = None) -> dict:
    """Bytes of HyperAdam state for a model (or list of variables), in total and per parameter.

    With a built `optimizer` (a `HyperAdam`) its state slots are counted as they are; with an unbuilt
    one its J, H and `state_dtype` give the size. Without one: J and H as given (default: the shipped
    bundle's) and `state_dtype` (default "float32"), 2H + 4J numbers per parameter.
    """
    variables = getattr(model_or_variables, "trainable_variables", model_or_variables)
    num_parameters = int(sum(np.prod(v.shape) for v in variables))
    if optimizer is not None:
        num_candidates, hidden = optimizer.num_candidates, optimizer.hidden
        state_dtype = optimizer.state_dtype
    state_dtype = check_state_dtype(state_dtype or "float32")
    if optimizer is not None and optimizer.built:
        state_bytes = int(sum(np.prod(s.shape) * tf.as_dtype(s.dtype).size
                              for s in optimizer.variables if isinstance(s, StateSlot)))
    else:
        if num_candidates is None or hidden is None:
            default = default_meta_params()
            num_candidates = num_candidates or default.num_candidates
            hidden = hidden or default.hidden
        state_bytes = num_parameters * (2 * hidden + 4 * num_candidates) * tf.as_dtype(state_dtype).size
    return {
        "parameters": num_parameters,
        "state_dtype": state_dtype,
        "state_bytes": state_bytes,
        "bytes_per_parameter": state_bytes / max(num_parameters, 1),
        "adam_state_bytes": num_parameters * 2 * 4,
    }
