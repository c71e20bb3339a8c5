"""Meta-train HyperAdam on YOUR Keras model, then use the result as an ordinary Keras optimizer.

    python examples/custom_meta_training.py --output-dir custom_meta_output   # ~7 CPU-minutes (15 min on a busy 2-core box)

1. Your model and data: here an MLP 784-32-10 with tanh units (the activation where the paper's
   HyperAdam lost to Adam) on the 4,000 training images of the bundled real MNIST subset; replace
   `make_model()` and `load_data()` with yours.
2. `KerasModelTask` turns (model, loss, data) into a meta-training task: every task seed is a fresh
   initialization of your model (from its own Keras initializers) and its own minibatch order.
3. `meta_train(MetaTrainConfig(...), output_dir, task=task)` meta-trains HyperAdam on it, starting from
   the shipped default bundle (its size, features and step α = 0.001), with truncated unrolls, a meta-validation on
   held-out task seeds after every epoch, checkpoints (rerun with --resume to continue an interrupted
   run) and the best meta-parameters exported as a bundle: OUTPUT_DIR/best_bundle.
4. `HyperAdam(meta_params=OUTPUT_DIR/best_bundle)` trains your model with `fit`, side by side with
   `HyperAdam()` (the shipped default), from the same initial weights on the same minibatches.

The defaults are a short run for a demonstration; the paper meta-trains for 100 epochs x 100 tasks
(`hyperadam-keras meta-train` runs that recipe on the paper's own task).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402


def make_model():
    """YOUR model (any Keras model with one input works; see `KerasModelTask`)."""
    import keras

    return keras.Sequential([keras.Input((784,)), keras.layers.Dense(32, activation="tanh"),
                             keras.layers.Dense(10)], name="my_tanh_mlp")


def load_data():
    """YOUR data: (train_x, train_y, test_x, test_y). Here the fixed 4,000 / 1,000 MNIST split."""
    from hyperadam_keras.lab.data.mnist import load_mnist_split

    return load_mnist_split()


def compare(bundle, train_x, train_y, test_x, test_y, steps: int, seeds: int, batch_size: int):
    """Trains fresh copies of your model with `fit`, once per optimizer and seed; returns the losses."""
    import keras
    import tensorflow as tf

    from hyperadam_keras import HyperAdam

    optimizers = {"HyperAdam() (shipped default)": lambda: HyperAdam(),
                  "HyperAdam(meta_params=best_bundle)": lambda: HyperAdam(meta_params=bundle)}
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    results = {name: {"train_loss": [], "test_loss": []} for name in optimizers}
    for seed in range(seeds):
        keras.utils.set_random_seed(seed)
        initial = make_model().get_weights()
        order = np.random.default_rng(seed).permutation(len(train_x))
        order = np.resize(order, steps * batch_size)  # repeats the permutation if more steps than data
        dataset = tf.data.Dataset.from_tensor_slices((train_x[order], train_y[order])).batch(batch_size)
        for name, make_optimizer in optimizers.items():
            model = make_model()
            model.set_weights(initial)
            model.compile(optimizer=make_optimizer(), loss=loss)
            model.fit(dataset, epochs=1, steps_per_epoch=steps, verbose=0, shuffle=False)
            results[name]["train_loss"].append(float(model.evaluate(train_x, train_y, verbose=0, batch_size=1000)))
            results[name]["test_loss"].append(float(model.evaluate(test_x, test_y, verbose=0, batch_size=1000)))
    return results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 2)[2],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output-dir", default="custom_meta_output", help="the meta-training run goes here")
    parser.add_argument("--resume", action="store_true", help="continue the run in --output-dir")
    parser.add_argument("--epochs", type=int, default=5, help="meta-training epochs (default 5)")
    parser.add_argument("--tasks-per-epoch", type=int, default=10,
                        help="tasks (fresh initializations) per epoch (default 10)")
    parser.add_argument("--horizon", type=int, default=100, help="optimizee steps per task, T (default 100)")
    parser.add_argument("--truncation", type=int, default=20, help="steps per meta-update, K (default 20)")
    parser.add_argument("--validation-tasks", type=int, default=4, help="held-out task seeds (default 4)")
    parser.add_argument("--meta-learning-rate", type=float, default=1e-3,
                        help="Adam's step on the meta-parameters (default 1e-3; the paper: 1e-4 for a much longer run)")
    parser.add_argument("--compare-seeds", type=int, default=3, help="initializations in the comparison (default 3)")
    parser.add_argument("--batch-size", type=int, default=128, help="minibatch size (default 128)")
    args = parser.parse_args(argv)

    import keras

    from hyperadam_keras import HyperAdam, default_bundle_path, load_meta_params, read_bundle_metadata
    from hyperadam_keras.defaults import DEFAULT_LEARNING_RATE
    from hyperadam_keras.lab.meta.config import MetaTrainConfig
    from hyperadam_keras.lab.meta.outer_loop import meta_train
    from hyperadam_keras.lab.tasks import KerasModelTask

    train_x, train_y, test_x, test_y = load_data()
    task = KerasModelTask(make_model(), keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                          train_x, train_y, batch_size=args.batch_size, test_x=test_x, test_y=test_y)
    shipped = load_meta_params(default_bundle_path())
    # Fine-tuning keeps the shipped bundle's size, features and the step it was meta-trained at.
    config = MetaTrainConfig(
        task="custom", init=str(default_bundle_path()), num_candidates=shipped.num_candidates,
        hidden=shipped.hidden, feature_normalization=shipped.feature_normalization,
        learning_rate=DEFAULT_LEARNING_RATE, horizon=args.horizon, truncation=args.truncation,
        epochs=args.epochs, meta_batches_per_epoch=args.tasks_per_epoch, validation_tasks=args.validation_tasks,
        meta_learning_rate=args.meta_learning_rate, batch_size=args.batch_size, progress_bar=False)
    print(f"meta-training HyperAdam on {task.name} ({sum(int(np.prod(s)) for s in task.param_shapes())} "
          f"parameters): {config.epochs} epochs x {config.meta_batches_per_epoch} tasks x "
          f"{config.truncations_per_task} truncations of {config.truncation} steps = {config.total_meta_steps} "
          f"meta-steps")
    t0 = time.time()
    result = meta_train(config, args.output_dir, resume=args.resume, task=task,
                        task_description="examples/custom_meta_training.py: make_model() on load_data()")
    print(f"meta-training: {result.meta_step}/{result.total_meta_steps} meta-steps in {time.time() - t0:.0f} s; "
          f"meta-validation loss {result.initial_validation_loss:.4f} (shipped default) -> "
          f"{result.best_validation_loss:.4f} (best, epoch {result.best_epoch})")
    meta = read_bundle_metadata(result.bundle_path)
    history = ", ".join(f"epoch {epoch}: {loss:.4f}" for epoch, loss in meta["validation"]["history"])
    print(f"  validation history: {history}")
    print(f"bundle: {result.bundle_path}  {load_meta_params(result.bundle_path)}")
    if result.best_epoch == 0:
        print("  (no epoch beat the starting point on meta-validation: the bundle equals the shipped default)")

    optimizer = HyperAdam(meta_params=result.bundle_path)  # a bundle path, a MetaParams or None
    print(f"loaded: HyperAdam(meta_params={str(result.bundle_path)!r}) -> {optimizer.meta_params}")

    print(f"\nfit {args.horizon} steps of batch {args.batch_size}, {args.compare_seeds} seed(s), same "
          f"initial weights and minibatches:")
    results = compare(result.bundle_path, train_x, train_y, test_x, test_y, args.horizon, args.compare_seeds,
                      args.batch_size)
    for name, entry in results.items():
        print(f"  {name:<36} train loss {np.mean(entry['train_loss']):.4f} ± {np.std(entry['train_loss']):.4f}"
              f"   test loss {np.mean(entry['test_loss']):.4f}")
    (Path(args.output_dir) / "comparison.json").write_text(json.dumps(results, indent=1))
    print(f"wrote {Path(args.output_dir) / 'comparison.json'}; meta-training logs and meta_loss.png in "
          f"{args.output_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
