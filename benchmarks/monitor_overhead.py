"""What `HyperAdamMonitor` costs: `fit` of a 784-256-10 MLP on the bundled MNIST with and without it.

One model and optimizer; `fit` calls of `--steps` batches cycle through three callback lists, `--repeats`
times each after an untimed warm-up: none; a no-op callback with an `on_train_batch_end` (which, like
any such callback and the monitor, turns off Keras's asynchronous dispatch of the batch callbacks); and
the monitor (`every_n_steps`). The report: the ratios of the medians and of the fastest runs, and the
monitor's own time (its hooks timed inside the monitored fits) against the median fit: on a machine
shared with other jobs, fit times jump between load levels, and the hooks' own time is the steady figure.

    python benchmarks/monitor_overhead.py                     # 40 steps, 7 repeats, every_n_steps=10
    python benchmarks/monitor_overhead.py --every-n-steps 1   # the cost of one sample, every step
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


class _TimedMonitor:
    """Wraps the monitor's batch hooks with a clock: the seconds spent inside them (`elapsed`)."""

    def __init__(self, monitor):
        self.elapsed = 0.0
        for name in ("on_train_batch_begin", "on_train_batch_end"):
            setattr(monitor, name, self._timed(getattr(monitor, name)))

    def _timed(self, hook):
        def timed(*args, **kwargs):
            start = time.perf_counter()
            hook(*args, **kwargs)
            self.elapsed += time.perf_counter() - start
        return timed


def _no_op_batch_callback():
    """A callback that only overrides `on_train_batch_end`, so that Keras calls the batch hooks in step."""
    import keras

    class NoOp(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            pass

    return NoOp()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=40, help="batches per timed fit (default 40)")
    parser.add_argument("--repeats", type=int, default=7, help="timed fits per variant, interleaved (default 7)")
    parser.add_argument("--every-n-steps", type=int, default=10, help="the monitor's every_n_steps (default 10)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--hidden", type=int, default=256, help="width of the hidden layer (default 256)")
    args = parser.parse_args(argv)

    import keras
    import numpy as np

    from hyperadam_keras import HyperAdam, HyperAdamMonitor
    from hyperadam_keras.lab.data.mnist import load_mnist

    x, y = load_mnist()
    count = args.steps * args.batch_size  # the 5,000 images, repeated if needed
    x, y = np.resize(x, (count, x.shape[1])), np.resize(y, count)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((784,)), keras.layers.Dense(args.hidden, activation="relu"),
                              keras.layers.Dense(10)])
    model.compile(optimizer=HyperAdam(learning_rate=0.002),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    log_dir = tempfile.mkdtemp(prefix="monitor_overhead_")
    monitor = HyperAdamMonitor(log_dir, every_n_steps=args.every_n_steps)
    clock = _TimedMonitor(monitor)

    def fit(callbacks) -> float:
        start = time.perf_counter()
        model.fit(x, y, batch_size=args.batch_size, epochs=1, shuffle=False, verbose=0, callbacks=callbacks)
        return time.perf_counter() - start

    variants = {"no callback": [], "no-op batch callback": [_no_op_batch_callback()], "monitor": [monitor]}
    for callbacks in variants.values():  # warm-up: traces the train step and the monitor's functions
        fit(callbacks)
    times = {name: [] for name in variants}
    hook_seconds = []
    for _ in range(args.repeats):
        for name, callbacks in variants.items():
            before = clock.elapsed
            times[name].append(fit(callbacks))
            if name == "monitor":
                hook_seconds.append(clock.elapsed - before)
    medians = {name: statistics.median(values) for name, values in times.items()}
    samples = args.steps // args.every_n_steps
    parameters = int(sum(np.prod(v.shape) for v in model.trainable_variables))
    print(f"784-{args.hidden}-10 MLP ({parameters:,} parameters), batch {args.batch_size}, {args.steps} steps per fit, "
          f"every_n_steps={args.every_n_steps} ({samples} samples per fit), {args.repeats} interleaved repeats; "
          f"sample: {sum(len(ix) for ix in monitor.sample.values())} coordinates")
    for name, median in medians.items():
        print(f"fit, {name + ':':22s} median {median:.3f} s ({1000 * median / args.steps:.1f} ms/step); "
              f"runs {', '.join(f'{t:.3f}' for t in times[name])}")
    for baseline in ("no callback", "no-op batch callback"):
        ratio, best = medians["monitor"] / medians[baseline], min(times["monitor"]) / min(times[baseline])
        print(f"ratio monitor / {baseline}: medians {ratio:.4f} (overhead {100 * (ratio - 1):+.2f} %), "
              f"fastest runs {best:.4f} ({100 * (best - 1):+.2f} %)")
    hooks = statistics.median(hook_seconds)
    print(f"monitor's own hooks: median {1000 * hooks:.1f} ms per fit = {100 * hooks / medians['monitor']:.2f} % "
          f"of the monitored fit ({1000 * hooks / max(samples, 1):.1f} ms per sample, "
          f"{100 * hooks / max(samples, 1) / (medians['monitor'] / args.steps):.1f} % of a step)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
