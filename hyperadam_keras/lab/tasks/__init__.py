"""Optimizee tasks for meta-training and evaluating HyperAdam, written functionally on a param list.

A `Task` (`base`) is a seeded family of optimization problems: ``init_params(seed)``,
``sample_batch(seed, step)``, ``loss(params, batch)``, ``full_loss(params, seed=)``,
``test_metrics(params, seed=)``; `base`'s docstring has the protocol and how the seed reaches the loss.

Modules, one concern each:

- `base`: the protocol `Task` and the seeded random streams and minibatch order (`random_key`,
  `sub_seed`, `epoch_batch_indices`) every task draws from;
- the paper's tasks: `mlp` (`MLPTask`), `cnn` (`CNNTask`), `sine_lstm` (`SineLSTMTask`), `quadratic`
  (`QuadraticTask`); `keras_model` (`KerasModelTask`, any Keras model); `supervised`: their shared
  data checks and losses;
- `augmentation`: tasks made of tasks, `RandomScaling`, `SumTask`, `paper_meta_training_task`;
- `registry`: task *kinds* by name (``"mlp"``, ``"cnn"``, ...: a builder of keyword arguments), the one
  table through which the evaluation suites, meta-training and ``inspect`` make their tasks.

Example: the paper's meta-training task, one step of gradient descent inside XLA.

    >>> import tensorflow as tf
    >>> from hyperadam_keras.lab.data.mnist import load_mnist
    >>> from hyperadam_keras.lab.tasks import paper_meta_training_task
    >>> images, labels = load_mnist()
    >>> task = paper_meta_training_task(images, labels)   # RS(MLP sigmoid, 3) + RS(quadratic, 1)
    >>> params = task.init_params(7)
    >>> @tf.function(jit_compile=True)
    ... def sgd_step(params, seed, step):
    ...     batch = task.sample_batch(seed, step)
    ...     with tf.GradientTape() as tape:
    ...         tape.watch(params)
    ...         loss = task.loss(params, batch)
    ...     grads = tape.gradient(loss, params)
    ...     return [p - 0.1 * g for p, g in zip(params, grads)], loss
    >>> params, loss = sgd_step(params, tf.constant(7), tf.constant(0))
"""

from hyperadam_keras.lab.tasks.augmentation import RandomScaling, SumTask, paper_meta_training_task
from hyperadam_keras.lab.tasks.base import SeedLike, Task, epoch_batch_indices, random_key, sub_seed
from hyperadam_keras.lab.tasks.cnn import CNNTask
from hyperadam_keras.lab.tasks.keras_model import KerasModelTask
from hyperadam_keras.lab.tasks.mlp import ACTIVATIONS, MLPTask
from hyperadam_keras.lab.tasks.quadratic import QuadraticTask
from hyperadam_keras.lab.tasks.sine_lstm import SineLSTMTask

__all__ = [
    "ACTIVATIONS", "CNNTask", "KerasModelTask", "MLPTask", "QuadraticTask", "RandomScaling", "SeedLike",
    "SineLSTMTask", "SumTask", "Task", "epoch_batch_indices", "paper_meta_training_task", "random_key",
    "sub_seed",
]
