"""How `HyperAdam` lays out its per-coordinate state, and how it reads state saved by earlier versions.

The slots of a variable of shape S have shape (K,) + S (K = H for h and c, J for the moments): the
coordinates last, so that every state tensor is a [K, n] matrix whose long axis is the one the CPU's
vector units run along (docs/speed.md). Versions up to 2026-12-01 kept S + (K,) ("coordinates-first").
Their `.keras` files and `tf.train.Checkpoint`s still load: their state is transposed on the way in.

When S + (K,) and (K,) + S are the same shape (a bias of K entries: (20, 20) in either layout, K > 1),
the shape alone cannot tell the layouts apart. This version therefore never writes such a slot in that
shape: a `tf.train.Checkpoint` holds it as (K, n, 1) (`checkpoint_shape`; a SavedModel keeps the
variable's own shape), and a `.keras` config says ``"state_layout": "coordinates-last"`` (an earlier
config has no such key, and `HyperAdam.from_config` then reads its state as coordinates-first). A
`.weights.h5` file has no config: its other slots' shapes decide, else the optimizer's `state_layout`.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

import keras

COORDINATES_LAST = "coordinates-last"
COORDINATES_FIRST = "coordinates-first"  # versions up to 2026-12-01
STATE_LAYOUTS = (COORDINATES_LAST, COORDINATES_FIRST)
_VALUE_KEY = "VARIABLE_VALUE"  # the key of a variable's tensor in a TensorFlow checkpoint


def check_state_layout(state_layout: str) -> str:
    """Returns `state_layout` if it is one of `STATE_LAYOUTS`; a ValueError naming it otherwise."""
    if state_layout not in STATE_LAYOUTS:
        raise ValueError(f"state_layout must be one of {STATE_LAYOUTS}, got {state_layout!r}")
    return state_layout


def earlier_shape(shape: tuple) -> tuple:
    """The shape S + (K,) that earlier versions gave the slot that is (K,) + S now."""
    return tuple(shape[1:]) + tuple(shape[:1])


def is_ambiguous(shape: tuple) -> bool:
    """Whether a slot of this shape holds different values in the two layouts although their shapes agree."""
    shape = tuple(shape)
    return earlier_shape(shape) == shape and shape[0] > 1 and int(np.prod(shape[1:])) > 1


def from_coordinates_first(value):
    """An array or tensor S + (K,) of an earlier version as (K,) + S."""
    rank = len(value.shape)
    permutation = (rank - 1,) + tuple(range(rank - 1))
    if isinstance(value, np.ndarray):
        return np.ascontiguousarray(np.transpose(value, permutation))
    return tf.transpose(value, permutation)


def stored_layout(slot_shapes: list, stored_shapes: list, hint: str) -> str:
    """The layout of a set of saved slots (their shapes as stored, beside the slots' own), by their shapes
    where any tells, else `hint`. Raises ValueError on a slot that fits neither layout."""
    votes = set()
    for own, stored in zip(slot_shapes, stored_shapes):
        own, stored = tuple(own), tuple(stored)
        if own == stored:
            if earlier_shape(own) != own:
                votes.add(COORDINATES_LAST)
        elif stored == earlier_shape(own):
            votes.add(COORDINATES_FIRST)
        else:
            raise ValueError(f"HyperAdam: a saved optimizer slot has shape {stored}, where this optimizer's slot "
                             f"is {own} (or {earlier_shape(own)} in the layout of earlier versions): the file "
                             "was written for another model or another J, H")
    if len(votes) > 1:
        raise ValueError("HyperAdam: the saved optimizer slots mix two layouts; the file is damaged")
    return votes.pop() if votes else hint


def checkpoint_shape(shape: tuple) -> tuple:
    """The shape a slot of shape (K,) + S has in a `tf.train.Checkpoint` of this version: its own, or
    (K, n, 1) where the own shape is ambiguous (`is_ambiguous`), so that no earlier checkpoint has it."""
    shape = tuple(shape)
    return (shape[0], int(np.prod(shape[1:])), 1) if is_ambiguous(shape) else shape


class StateSlot(keras.Variable):
    """An optimizer slot of shape (K,) + S that restores a TensorFlow checkpoint of either layout."""

    def _serialize_to_tensors(self):
        own = tuple(self.shape)
        if not is_ambiguous(own) or _in_saved_model_save():
            return super()._serialize_to_tensors()
        return {_VALUE_KEY: tf.reshape(tf.convert_to_tensor(self.value), checkpoint_shape(own))}

    def _restore_from_tensors(self, restored_tensors):
        value = restored_tensors[_VALUE_KEY]
        own, stored = tuple(self.shape), tuple(value.shape)
        if stored == own and is_ambiguous(own):  # only an earlier version writes this shape
            value = from_coordinates_first(value)
        elif stored != own and stored == checkpoint_shape(own):
            value = tf.reshape(value, own)
        elif stored != own and stored == earlier_shape(own):
            value = from_coordinates_first(value)
        return super()._restore_from_tensors({**restored_tensors, _VALUE_KEY: value})


def _in_saved_model_save() -> bool:
    """Whether a SavedModel is being written (its loader rebuilds plain variables of the own shape)."""
    try:
        from tensorflow.python.saved_model import save_context
        return bool(save_context.in_save_context())
    except (ImportError, AttributeError):  # private API moved: a checkpoint's (K, n, 1) is then written
        return False
