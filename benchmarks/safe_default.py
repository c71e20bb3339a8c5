"""Choosing a safe default step on the validation models (`lab/models/validation.py`), never on the
`generalization` suite that reports it.

Trains each validation model with HyperAdam configurations (learning rate, warm-up, relative-step cap)
and with Adam at fixed rates, through `model.fit` as `compare` does (same initial weights and batches
per seed), and records per run: final training loss (`model.evaluate` on the training set), held-out
accuracy, whether it diverged (non-finite, or final loss above the initial), and the largest batch loss
over the initial loss (a spike). Resumable: runs already in the JSON are not trained again.

    python benchmarks/safe_default.py --seeds 2                   # every model and configuration
    python benchmarks/safe_default.py --configs adam-0.003,lr-0.001 --models bn-cnn
    python benchmarks/safe_default.py --configs run10-lr-0.001-cap-0.03   # the default since 2026-12-03

HyperAdam configurations run the "paper" bundle (the default when they were recorded) unless named
run10-*: meta_training/run10's bundle, the default bundle since 2026-12-03, or run11-* / run12-* / run15-*:
meta_training/run11's / run12's / run15's (candidates, LOG.md). run10-lr-0.001, run12-lr-0.001 and run15-lr-0.001 run uncapped
(`max_relative_step=None`), as meta-training ran those bundles; the earlier configurations without "cap" in
their names were recorded when the optimizer had no cap. "-clip-5": each candidate m̂_j clipped to ±5
(`candidate_clip=5`).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
os.environ.setdefault("HYPERADAM_KERAS_QUIET_START", "1")

import hyperadam_keras  # noqa: E402,F401  (quiet start first)
import keras  # noqa: E402
import numpy as np  # noqa: E402

from hyperadam_keras import HyperAdam  # noqa: E402
from hyperadam_keras.lab.eval.baselines import OptimizerSpec  # noqa: E402
from hyperadam_keras.lab.eval.compare import FitRuns  # noqa: E402
from hyperadam_keras.lab.models.validation import BUILDERS  # noqa: E402

OUTPUT = os.path.join(HERE, "safe_default.json")


# The configurations recorded first ran the bundle shipped then, now the "paper" bundle; run10's
# bundle (the default since 2026-12-03) has configurations of its own.
RUN10 = os.path.join(os.path.dirname(HERE), "meta_training", "run10", "best_bundle")
RUN11 = os.path.join(os.path.dirname(HERE), "meta_training", "run11", "best_bundle")
RUN12 = os.path.join(os.path.dirname(HERE), "meta_training", "run12", "best_bundle")
RUN15 = os.path.join(os.path.dirname(HERE), "meta_training", "run15", "best_bundle")
# run16 goes on after its screens: its epoch-1 bundle, the one they measured, is kept apart.
RUN16 = os.path.join(os.path.dirname(HERE), "meta_training", "run16", "epoch1_bundle")


def hyperadam(label: str, learning_rate: float, meta_params: str = "paper", **kwargs) -> OptimizerSpec:
    return OptimizerSpec(label=label,
                         factory=lambda lr: HyperAdam(learning_rate=lr, meta_params=meta_params, **kwargs),
                         default_lr=learning_rate, info={"kind": "hyperadam", "learning_rate": learning_rate,
                                                         **kwargs})


def adam(rate: float) -> OptimizerSpec:
    return OptimizerSpec(label=f"adam-{rate:g}", factory=lambda lr: keras.optimizers.Adam(learning_rate=lr),
                         default_lr=rate, info={"kind": "baseline", "keras_class": "Adam"})


CONFIGS: dict[str, OptimizerSpec] = {spec.label: spec for spec in [
    hyperadam("shipped", 0.005),
    hyperadam("lr-0.002", 0.002),
    hyperadam("lr-0.001", 0.001),
    hyperadam("lr-0.0005", 0.0005),
    hyperadam("lr-0.001-warmup-100", 0.001, warmup_steps=100),
    hyperadam("lr-0.002-warmup-100", 0.002, warmup_steps=100),
    hyperadam("cap-0.1", 0.005, max_relative_step=0.1),
    hyperadam("cap-0.03", 0.005, max_relative_step=0.03),
    hyperadam("lr-0.002-cap-0.1", 0.002, max_relative_step=0.1),
    hyperadam("lr-0.002-warmup-100-cap-0.1", 0.002, warmup_steps=100, max_relative_step=0.1),
    hyperadam("lr-0.001-cap-0.1", 0.001, max_relative_step=0.1),
    hyperadam("lr-0.002-cap-0.03", 0.002, max_relative_step=0.03),
    hyperadam("lr-0.001-cap-0.03", 0.001, max_relative_step=0.03),
    hyperadam("run10-lr-0.001-cap-0.03", 0.001, meta_params=RUN10, max_relative_step=0.03),
    hyperadam("run10-lr-0.002-cap-0.03", 0.002, meta_params=RUN10, max_relative_step=0.03),
    hyperadam("run11-lr-0.001-cap-0.03", 0.001, meta_params=RUN11, max_relative_step=0.03),
    hyperadam("run12-lr-0.001-cap-0.03", 0.001, meta_params=RUN12, max_relative_step=0.03),
    # Without the cap, as meta-training ran and validated them (LOG.md, "What the cap costs", 2026-12-07).
    hyperadam("run10-lr-0.001", 0.001, meta_params=RUN10, max_relative_step=None),
    hyperadam("run12-lr-0.001", 0.001, meta_params=RUN12, max_relative_step=None),
    hyperadam("run12-lr-0.001-cap-0.1", 0.001, meta_params=RUN12, max_relative_step=0.1),
    # run15 (diverse-fit: the low-loss regime and batch normalization in the family), meta-trained uncapped.
    hyperadam("run15-lr-0.001", 0.001, meta_params=RUN15, max_relative_step=None),
    hyperadam("run15-lr-0.001-cap-0.1", 0.001, meta_params=RUN15, max_relative_step=0.1),
    hyperadam("run15-lr-0.001-cap-0.03", 0.001, meta_params=RUN15, max_relative_step=0.03),
    # Each candidate m̂_j clipped to ±5 (`candidate_clip`, 2026-12-07): the learned decays' β² > γ hazard.
    hyperadam("run15-lr-0.001-clip-5", 0.001, meta_params=RUN15, max_relative_step=None, candidate_clip=5.0),
    hyperadam("run15-lr-0.001-cap-0.1-clip-5", 0.001, meta_params=RUN15, max_relative_step=0.1, candidate_clip=5.0),
    hyperadam("run12-lr-0.001-clip-5", 0.001, meta_params=RUN12, max_relative_step=None, candidate_clip=5.0),
    hyperadam("run10-lr-0.001-clip-5", 0.001, meta_params=RUN10, max_relative_step=None, candidate_clip=5.0),
    hyperadam("run10-lr-0.001-cap-0.03-clip-5", 0.001, meta_params=RUN10, max_relative_step=0.03, candidate_clip=5.0),
    # run16: run15 meta-trained further with the clip (κ = 5) and without the cap, as it runs here.
    hyperadam("run16-lr-0.001-clip-5", 0.001, meta_params=RUN16, max_relative_step=None, candidate_clip=5.0),
    # ... with a linear warm-up, against the first steps' spike of normalized networks.
    hyperadam("run16-lr-0.001-clip-5-warmup-20", 0.001, meta_params=RUN16, max_relative_step=None,
              candidate_clip=5.0, warmup_steps=20),
    hyperadam("run16-lr-0.001-clip-5-warmup-100", 0.001, meta_params=RUN16, max_relative_step=None,
              candidate_clip=5.0, warmup_steps=100),
    adam(0.001), adam(0.003), adam(0.01),
]}


def run_one(runs: FitRuns, spec: OptimizerSpec, seed: int) -> dict:
    record = runs(spec, seed, spec.default_lr)
    curve = np.asarray(record["curve"], dtype=np.float64)
    initial = record["initial_loss"]
    return {"final_loss": record["final_loss"], "initial_loss": initial,
            "validation_accuracy": (record["validation"] or {}).get("accuracy"),
            "validation_loss": (record["validation"] or {}).get("loss"),
            "diverged": record["diverged"],
            "max_batch_loss_over_initial": float(np.nanmax(curve) / initial) if curve.size and initial else None,
            # The step (from 1) of that largest batch loss, and the first step above twice the initial loss.
            "max_batch_loss_step": int(np.nanargmax(curve)) + 1 if curve.size else None,
            "first_step_above_twice_initial": (int(np.argmax(curve > 2 * initial)) + 1
                                               if curve.size and initial and np.any(curve > 2 * initial) else None),
            "median_step_seconds": record["median_step_seconds"]}


def summary(results: dict, models, configs) -> str:
    lines = []
    for model in models:
        lines.append(f"\n{model}: final training loss (mean over seeds) | held-out acc | diverged | max spike")
        for name in configs:
            got = list(results.get(model, {}).get(name, {}).values())
            if not got:
                continue
            losses = [r["final_loss"] for r in got]
            mean = float(np.mean(losses)) if all(map(math.isfinite, losses)) else math.inf
            acc = np.mean([r["validation_accuracy"] or math.nan for r in got])
            spike = max(r["max_batch_loss_over_initial"] or 0 for r in got)
            lines.append(f"  {name:32s} {mean:9.4f}   {acc:.3f}   {sum(r['diverged'] for r in got)}/{len(got)}"
                         f"   {spike:7.2f}   losses {' '.join(f'{x:.3g}' for x in losses)}")
    return "\n".join(lines)


def markdown(results: dict, models, configs) -> str:
    """Configurations × models: mean final training loss, held-out accuracy, diverged runs, largest spike."""
    lines = ["| configuration | " + " | ".join(models) + " | geometric mean of final loss / best Adam's |",
             "|---|" + "---|" * (len(models) + 1)]

    def mean_loss(model, name):
        got = list(results.get(model, {}).get(name, {}).values())
        losses = [r["final_loss"] for r in got]
        return float(np.mean(losses)) if got and all(map(math.isfinite, losses)) else math.inf

    adams = [name for name in CONFIGS if name.startswith("adam-")]
    best_adam = {model: min(mean_loss(model, name) for name in adams) for model in models}
    for name in configs:
        ratios = [mean_loss(model, name) / best_adam[model] for model in models]
        geometric = math.exp(np.mean(np.log(ratios))) if all(map(math.isfinite, ratios)) else math.inf
        cells = []
        for model in models:
            got = list(results.get(model, {}).get(name, {}).values())
            if not got:
                cells.append("–")
                continue
            losses = [r["final_loss"] for r in got]
            mean = float(np.mean(losses)) if all(map(math.isfinite, losses)) else math.inf
            acc = np.mean([r["validation_accuracy"] or math.nan for r in got])
            spike = max(r["max_batch_loss_over_initial"] or 0 for r in got)
            diverged = sum(r["diverged"] for r in got)
            cells.append(f"{mean:.3g} / {acc:.3f}" + (f" / **{diverged} diverged**" if diverged else "")
                         + f" / ×{spike:.1f}")
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {geometric:.2f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=2, help="seeds 0..N-1 per model and configuration")
    parser.add_argument("--models", default=",".join(BUILDERS), help="comma-separated validation models")
    parser.add_argument("--configs", default=",".join(CONFIGS), help="comma-separated configurations")
    parser.add_argument("--output", default=OUTPUT, help="JSON of every run (read first: resumes)")
    parser.add_argument("--summary", action="store_true", help="print the summary of the JSON and exit")
    parser.add_argument("--markdown", action="store_true",
                        help="with --summary: a Markdown table (final loss / held-out accuracy / diverged / spike)")
    args = parser.parse_args(argv)
    models, configs = args.models.split(","), args.configs.split(",")
    for name in configs:
        if name not in CONFIGS:
            parser.error(f"unknown configuration {name!r}; known: {', '.join(CONFIGS)}")
    for name in models:
        if name not in BUILDERS:
            parser.error(f"unknown model {name!r}; known: {', '.join(BUILDERS)}")
    results = json.load(open(args.output)) if os.path.exists(args.output) else {}
    if not args.summary:
        for model in models:
            runs = FitRuns(BUILDERS[model], (), None)
            for name in configs:
                for seed in range(args.seeds):
                    done = results.setdefault(model, {}).setdefault(name, {})
                    if str(seed) in done:
                        continue
                    done[str(seed)] = run_one(runs, CONFIGS[name], seed)
                    print(f"{model} {name} seed {seed}: {done[str(seed)]}", flush=True)
                    with open(args.output + ".tmp", "w") as f:
                        json.dump(results, f, indent=1)
                    os.replace(args.output + ".tmp", args.output)
    print(markdown(results, models, configs) if args.markdown else summary(results, models, configs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
