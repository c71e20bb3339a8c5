"""Speed and memory of HyperAdam against Keras Adam, measured side by side in one run.

What is measured (all on synthetic random data: inputs ~ U[0, 1), labels uniform over 10 classes,
batch 128 by default; the numbers measure compute, not learning):

* **Training-step time**: one compiled train step (forward + backward + optimizer apply inside one
  `tf.function`), the median over many steps after a warm-up, for each model and variant:

  ================  ==========================================================================
  ``adam``            `keras.optimizers.Adam`, step in a `tf.function` (graph, no XLA)
  ``adam_xla``        Adam, step in `tf.function(jit_compile=True)`
  ``hyperadam``       `HyperAdam(jit_compile=False)`, graph step, no XLA anywhere
  ``hyperadam_xla_update``  `HyperAdam()` (its per-variable update XLA-compiled), graph step
                      (what `model.compile(jit_compile=False)` runs; Keras' default on CPU)
  ``hyperadam_xla``   `HyperAdam()`, whole step in `tf.function(jit_compile=True)`
                      (what `model.compile(jit_compile=True)` runs; Keras' default on GPU)
  ================  ==========================================================================

  The variants are timed interleaved (a slice of steps of each, in turn, for several rounds), so a
  change of the machine's load during the run affects all of them alike; ratios are of medians,
  HyperAdam over the Adam variant with the same outer compilation (no XLA / XLA).

* **Optimizer update alone**: `apply_gradients` with fixed gradients (in `tf.function`, with and
  without XLA), converted to FLOP/s with the count of :data:`FLOP_COUNT_NOTE`, against the float32
  matmul rate of the machine (a square `tf.matmul`, 2n³ FLOP).

* **Floor**: this machine's least time for one update of the model's parameter count, from its measured
  product, transcendental and memory rates (`floor.floor_estimate`); each HyperAdam update alone is
  also given as a fraction of it (floor time / measured time; 1.0 is the machine's limit).

* **Memory**: optimizer state per parameter (`optimizer_memory`): 4 (2H + 4J) bytes, 480 at J = H = 20,
  against Adam's 8; half of it with `state_dtype="bfloat16"` (`--state-dtype` of benchmarks/step_time.py,
  which times every HyperAdam variant with that state).

Models: ``mlp`` the paper's 784-20-10 sigmoid MLP (15,910 parameters); ``cnn2`` the paper's CNN-2,
c-c-p-c-c-p-f-f on 28×28×1 inputs with 3×3 kernels ("same" padding, ReLU), 16/16/32/32 filters,
2×2 max-pooling of stride 2, a 64-unit ReLU dense layer and the 10-way output (117,434 parameters;
the paper does not give the widths, these are ours); ``1m`` a 784-1000-200-10 ReLU MLP (987,210).
"""

from __future__ import annotations

import datetime
import time
from typing import Callable, Iterable, Sequence

import keras
import numpy as np
import tensorflow as tf

from hyperadam_keras.bundle import MetaParamsLike, resolve_meta_params
from hyperadam_keras.defaults import DEFAULT_LEARNING_RATE
from hyperadam_keras.lab.eval.floor import floor_estimate, flop_per_coordinate, median_seconds
from hyperadam_keras.lab.eval.machine import machine_info
from hyperadam_keras.memory import optimizer_memory
from hyperadam_keras.optimizer import HyperAdam

MODELS: dict[str, str] = {
    "mlp": "784-20-10 sigmoid MLP (paper)",
    "cnn2": "CNN-2 c-c-p-c-c-p-f-f, 3x3, 16/16/32/32 filters, dense 64 (28x28x1)",
    "1m": "784-1000-200-10 ReLU MLP (~1M parameters)",
}

VARIANTS: dict[str, str] = {
    "adam": "Adam, graph",
    "adam_xla": "Adam, XLA step",
    "hyperadam": "HyperAdam, no XLA",
    "hyperadam_xla_update": "HyperAdam, XLA update in graph step",
    "hyperadam_xla": "HyperAdam, XLA step",
}
_XLA_VARIANTS = ("adam_xla", "hyperadam_xla_update", "hyperadam_xla")
_BASELINE = {"hyperadam": "adam", "hyperadam_xla_update": "adam", "hyperadam_xla": "adam_xla"}

FLOP_COUNT_NOTE = (
    "FLOP per coordinate and update = 2 x multiply-adds of the three matrix products: LSTM [x, h] (2H) x "
    "kernel (2H x 4H) = 8H^2, decay rates [m', h] (J+H) x (J+H x 2J) = 2(J+H)J, weight cell h (H) x (H x J) = HJ; "
    "element-wise work (about 30 J + 20 H operations: gates, moments, candidates) is not counted. "
    "J = H = 20: 5,200 multiply-adds = 10,400 FLOP per coordinate.")


def build_model(name: str, seed: int = 0) -> keras.Model:
    """One of :data:`MODELS` (``mlp``, ``cnn2``, ``1m``), built, with seeded initial weights."""
    keras.utils.set_random_seed(seed)
    if name == "mlp":
        layers = [keras.Input((784,)), keras.layers.Dense(20, activation="sigmoid"), keras.layers.Dense(10)]
    elif name == "cnn2":
        conv = dict(kernel_size=3, padding="same", activation="relu")
        layers = [keras.Input((28, 28, 1)), keras.layers.Conv2D(16, **conv), keras.layers.Conv2D(16, **conv),
                  keras.layers.MaxPooling2D(2, 2), keras.layers.Conv2D(32, **conv),
                  keras.layers.Conv2D(32, **conv), keras.layers.MaxPooling2D(2, 2), keras.layers.Flatten(),
                  keras.layers.Dense(64, activation="relu"), keras.layers.Dense(10)]
    elif name == "1m":
        layers = [keras.Input((784,)), keras.layers.Dense(1000, activation="relu"),
                  keras.layers.Dense(200, activation="relu"), keras.layers.Dense(10)]
    else:
        raise ValueError(f"unknown model {name!r}; choose from {sorted(MODELS)}")
    return keras.Sequential(layers, name=f"speed_{name}")


def synthetic_batch(model: keras.Model, batch_size: int = 128, seed: int = 0) -> tuple[tf.Tensor, tf.Tensor]:
    """Random inputs ~ U[0, 1) of the model's input shape and random labels in 0..9 (timing only)."""
    rng = np.random.default_rng(seed)
    shape = (batch_size,) + tuple(model.input_shape[1:])
    return (tf.constant(rng.uniform(size=shape).astype(np.float32)),
            tf.constant(rng.integers(0, 10, batch_size).astype(np.int32)))


def make_optimizer(variant: str, meta_params: MetaParamsLike = None, learning_rate: float | None = None,
                   state_dtype: str = "float32") -> keras.optimizers.Optimizer:
    """The optimizer of a variant (Adam's learning rate 1e-3, HyperAdam's default: timing only)."""
    if variant.startswith("adam"):
        return keras.optimizers.Adam(learning_rate or 1e-3)
    return HyperAdam(learning_rate or DEFAULT_LEARNING_RATE, meta_params=meta_params, jit_compile=variant != "hyperadam",
                     state_dtype=state_dtype)


def make_train_step(model: keras.Model, optimizer: keras.optimizers.Optimizer, xla: bool) -> Callable:
    """A compiled train step (forward, backward, `apply_gradients`) returning the loss."""
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    variables = model.trainable_variables

    def step(x, y):
        with tf.GradientTape() as tape:
            loss = loss_fn(y, model(x, training=True))
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return loss

    return tf.function(step, jit_compile=xla)


def make_update_step(model: keras.Model, optimizer: keras.optimizers.Optimizer, xla: bool) -> Callable:
    """A compiled optimizer update alone: `apply_gradients` with the given gradients."""
    variables = model.trainable_variables

    def update(grads):
        optimizer.apply_gradients(zip(grads, variables))
        return optimizer.iterations

    return tf.function(update, jit_compile=xla)


def _sync(value) -> None:
    """Waits for the computation (a host copy of a small result)."""
    np.asarray(value)


def time_interleaved(functions: dict[str, Callable[[], object]], steps: int, warmup: int,
                     rounds: int = 5) -> dict[str, list[float]]:
    """Calls every function `warmup` times, then `steps` times each, interleaved in `rounds` slices;
    returns the wall time of every timed call in seconds, per name."""
    for fn in functions.values():
        for _ in range(max(warmup, 1)):  # the first call traces and compiles
            _sync(fn())
    times: dict[str, list[float]] = {name: [] for name in functions}
    rounds = max(1, min(rounds, steps))
    per_round = [steps // rounds + (1 if r < steps % rounds else 0) for r in range(rounds)]
    for count in per_round:
        for name, fn in functions.items():
            for _ in range(count):
                start = time.perf_counter()
                _sync(fn())
                times[name].append(time.perf_counter() - start)
    return times


def _summary(seconds: Sequence[float]) -> dict:
    ms = np.asarray(seconds) * 1e3
    return {"median_ms": float(np.median(ms)), "p10_ms": float(np.percentile(ms, 10)),
            "p90_ms": float(np.percentile(ms, 90)), "n": int(len(ms))}


def matmul_rate(size: int = 1024, repeats: int = 10) -> dict:
    """Measured float32 matmul rate: median time of a [size, size] × [size, size] `tf.matmul`, 2n³ FLOP."""
    rng = np.random.default_rng(0)
    a = tf.constant(rng.normal(size=(size, size)).astype(np.float32))
    b = tf.constant(rng.normal(size=(size, size)).astype(np.float32))
    median = median_seconds(tf.function(lambda: tf.reduce_sum(tf.matmul(a, b))), repeats)
    return {"size": size, "median_ms": median * 1e3, "gflops": 2 * size ** 3 / median / 1e9}


def benchmark_model(name: str, steps: int = 50, warmup: int = 5, batch_size: int = 128, xla: bool = True,
                    meta_params: MetaParamsLike = None, rounds: int = 5, update_steps: int | None = None,
                    seed: int = 0, state_dtype: str = "float32") -> dict:
    """Step time of every variant, update-alone time and FLOP/s, and memory, for one model."""
    params = resolve_meta_params(meta_params)
    variants = [v for v in VARIANTS if xla or v not in _XLA_VARIANTS]
    reference = build_model(name, seed)
    x, y = synthetic_batch(reference, batch_size, seed)
    initial = reference.get_weights()
    num_parameters = int(sum(np.prod(v.shape) for v in reference.trainable_variables))

    step_fns = {}
    for variant in variants:
        model = build_model(name, seed)
        model.set_weights(initial)
        train_step = make_train_step(model, make_optimizer(variant, params, state_dtype=state_dtype), xla=variant.endswith("_xla"))
        step_fns[variant] = (lambda f=train_step: f(x, y))
    step_times = time_interleaved(step_fns, steps, warmup, rounds)
    step_ms = {v: _summary(t) for v, t in step_times.items()}
    ratios = {v: step_ms[v]["median_ms"] / step_ms[b]["median_ms"] for v, b in _BASELINE.items()
              if v in step_ms and b in step_ms}

    # The optimizer update alone, with fixed gradients (no model forward/backward).
    rng = np.random.default_rng(seed + 1)
    grads = [tf.constant(rng.normal(0, 1e-2, v.shape).astype(np.float32)) for v in reference.trainable_variables]
    update_variants = {"hyperadam": ("hyperadam", False), "adam": ("adam", False)}
    if xla:
        update_variants.update({"hyperadam_xla": ("hyperadam_xla", True), "adam_xla": ("adam_xla", True)})
    update_fns = {}
    for label, (variant, outer_xla) in update_variants.items():
        model = build_model(name, seed)
        update = make_update_step(model, make_optimizer(variant, params, state_dtype=state_dtype), outer_xla)
        update_fns[label] = (lambda f=update: f(grads))
    update_times = time_interleaved(update_fns, update_steps or steps, warmup, rounds)
    flop = flop_per_coordinate(params.num_candidates, params.hidden) * num_parameters
    update = {}
    for label, seconds in update_times.items():
        summary = _summary(seconds)
        if label.startswith("hyperadam"):
            summary["flop"] = flop
            summary["gflops"] = flop / (summary["median_ms"] * 1e-3) / 1e9
        update[label] = summary

    memory = optimizer_memory(reference, num_candidates=params.num_candidates, hidden=params.hidden,
                              state_dtype=state_dtype)
    return {"model": name, "description": MODELS[name], "parameters": num_parameters,
            "batch_size": batch_size, "step": step_ms, "ratios": ratios, "update": update, "memory": memory}


def run_speed_benchmarks(models: Iterable[str] = ("mlp", "cnn2", "1m"), steps: int = 50, warmup: int = 5,
                         batch_size: int = 128, xla: bool = True, meta_params: MetaParamsLike = None,
                         rounds: int = 5, update_steps: int | None = None, matmul_size: int = 1024,
                         seed: int = 0, progress: bool = False, with_floor: bool = True,
                         floor_repeats: int = 5, state_dtype: str = "float32") -> dict:
    """Runs :func:`benchmark_model` for each model and measures the matmul rate; returns a JSON-able dict.

    Args:
        models: names from :data:`MODELS`.
        steps: timed train steps per variant (after `warmup` untimed ones); medians are reported.
        batch_size: synthetic batch size (the paper: 128).
        xla: include the XLA variants (``adam_xla``, ``hyperadam_xla_update``, ``hyperadam_xla``).
        meta_params: HyperAdam's meta-parameters (None: the shipped default; J and H set the cost).
        rounds: slices in which the variants' steps are interleaved.
        update_steps: timed calls of the update alone (default: `steps`).
        matmul_size: n of the n × n float32 matmul that measures the machine's rate.
        progress: print a line per model.
        with_floor: also measure this machine's floor for an update of each model's parameter count
            (`floor.floor_estimate`, `floor_repeats` calls per rate) and give each HyperAdam update as a
            fraction of it (floor time / measured time).
        state_dtype: HyperAdam's `state_dtype` ("float32" or "bfloat16"); the floor is float32's.
    """
    params = resolve_meta_params(meta_params)
    started = time.perf_counter()
    results = {
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "settings": {"steps": steps, "warmup": warmup, "batch_size": batch_size, "xla": xla, "rounds": rounds,
                     "update_steps": update_steps or steps, "matmul_size": matmul_size, "seed": seed,
                     "num_candidates": params.num_candidates, "hidden": params.hidden,
                     "state_dtype": state_dtype},
        "data": "synthetic random data: inputs ~ U[0, 1), labels uniform in 0..9 (timing only)",
        "flop_count": FLOP_COUNT_NOTE,
        "flop_per_coordinate": flop_per_coordinate(params.num_candidates, params.hidden),
        "variants": {v: VARIANTS[v] for v in VARIANTS if xla or v not in _XLA_VARIANTS},
        "models": {},
    }
    results["matmul"] = matmul_rate(matmul_size)
    for name in models:
        result = benchmark_model(name, steps, warmup, batch_size, xla, params, rounds, update_steps, seed, state_dtype)
        for summary in result["update"].values():
            if "gflops" in summary:
                summary["fraction_of_matmul_rate"] = summary["gflops"] / results["matmul"]["gflops"]
        if with_floor:
            result["floor"] = floor_estimate(params, result["parameters"], repeats=floor_repeats)
            for label, summary in result["update"].items():
                if label.startswith("hyperadam"):
                    summary["fraction_of_floor"] = result["floor"]["floor_ms"]["floor"] / summary["median_ms"]
        results["models"][name] = result
        if progress:
            print(f"[speed] {name}: " + ", ".join(f"{v} {s['median_ms']:.2f} ms" for v, s in result["step"].items()),
                  flush=True)
    results["seconds"] = time.perf_counter() - started
    return results


def _fmt(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def format_markdown(results: dict) -> str:
    """The results of :func:`run_speed_benchmarks` as Markdown: step times, update FLOP/s, memory."""
    machine = results.get("machine", {})
    settings = results.get("settings", {})
    variants = list(results.get("variants", VARIANTS))
    lines = [
        f"Machine: {machine.get('device', '?')} ({machine.get('cpu', machine.get('processor', '?'))}, "
        f"{machine.get('cpu_cores', machine.get('cpu_count', '?'))} "
        f"CPUs{', GPUs: ' + ', '.join(machine['gpus']) if machine.get('gpus') else ''}), TensorFlow "
        f"{machine.get('tensorflow', '?')}, Keras {machine.get('keras', '?')}, CPU allocator "
        f"{machine.get('cpu_allocator', 'default')}. {results.get('data', '')}. "
        f"Batch {settings.get('batch_size')}, median of {settings.get('steps')} steps per variant after "
        f"{settings.get('warmup')} warm-up steps, variants interleaved in {settings.get('rounds')} rounds. "
        f"HyperAdam J = {settings.get('num_candidates')}, H = {settings.get('hidden')}, state "
        f"{settings.get('state_dtype', 'float32')}.",
        "",
        "Training-step time (forward + backward + update, ms, median):",
        "",
        "| model | parameters | " + " | ".join(VARIANTS.get(v, v) for v in variants)
        + " | HyperAdam / Adam (no XLA) | HyperAdam / Adam (XLA step) |",
        "|---|---:|" + "---:|" * len(variants) + "---:|---:|",
    ]
    for name, result in results.get("models", {}).items():
        ratios = result.get("ratios", {})
        lines.append(
            f"| {name}: {result['description']} | {result['parameters']:,} | "
            + " | ".join(_fmt(result["step"][v]["median_ms"]) if v in result["step"] else "–" for v in variants)
            + f" | {_fmt(ratios.get('hyperadam'))}× | "
            + (f"{_fmt(ratios.get('hyperadam_xla'))}×" if "hyperadam_xla" in ratios else "–") + " |")
    matmul = results.get("matmul", {})
    lines += [
        "",
        f"Optimizer update alone (`apply_gradients`, fixed gradients; ms, median). {results.get('flop_count', '')} "
        f"Machine float32 matmul rate ({matmul.get('size')}² × {matmul.get('size')}²): "
        f"{_fmt(matmul.get('gflops'), 1)} GFLOP/s.",
        "",
        "| model | parameters | Adam | Adam XLA | HyperAdam | HyperAdam XLA | HyperAdam GFLOP/update "
        "| HyperAdam GFLOP/s | HyperAdam XLA GFLOP/s | % of matmul rate (best) | floor (ms) "
        "| fraction of floor (best) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, result in results.get("models", {}).items():
        update = result["update"]
        ms = {label: _fmt(update.get(label, {}).get("median_ms")) for label in
              ("adam", "adam_xla", "hyperadam", "hyperadam_xla")}
        gflops = {label: update.get(label, {}).get("gflops") for label in ("hyperadam", "hyperadam_xla")}
        flop = update.get("hyperadam", {}).get("flop", 0)
        fractions = [update[label]["fraction_of_matmul_rate"] for label in ("hyperadam", "hyperadam_xla")
                     if "fraction_of_matmul_rate" in update.get(label, {})]
        best = _fmt(100 * max(fractions), 1) + " %" if fractions else "–"
        of_floor = [update[label]["fraction_of_floor"] for label in ("hyperadam", "hyperadam_xla")
                    if "fraction_of_floor" in update.get(label, {})]
        floor_ms = result.get("floor", {}).get("floor_ms", {}).get("floor")
        lines.append(
            f"| {name} | {result['parameters']:,} | {ms['adam']} | {ms['adam_xla']} | {ms['hyperadam']} | "
            f"{ms['hyperadam_xla']} | {_fmt(flop / 1e9, 3)} | {_fmt(gflops['hyperadam'], 1)} | "
            f"{_fmt(gflops['hyperadam_xla'], 1)} | {best} | {_fmt(floor_ms, 1)} | "
            f"{_fmt(max(of_floor)) if of_floor else '–'} |")
    lines += ["", "Optimizer memory (`optimizer_memory`):", "",
              "| model | parameters | HyperAdam bytes/parameter | HyperAdam state | Adam state |",
              "|---|---:|---:|---:|---:|"]
    for name, result in results.get("models", {}).items():
        memory = result["memory"]
        lines.append(f"| {name} | {result['parameters']:,} | {memory['bytes_per_parameter']:.0f} | "
                     f"{memory['state_bytes'] / 2 ** 20:.1f} MiB | {memory['adam_state_bytes'] / 2 ** 20:.2f} MiB |")
    return "\n".join(lines) + "\n"
