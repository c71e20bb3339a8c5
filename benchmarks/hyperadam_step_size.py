"""HyperAdam (the shipped bundle, or --bundle) at other step sizes or under a schedule, on tasks of a suite.

HyperAdam runs with the optimizer's other defaults (since 2026-12-02 each tensor's step capped at 3 % of its
scale, `max_relative_step=0.03`, recorded per run), the step α kept for 100 updates, then decaying as 1/√t
(`decay_after=100`). This shows, seed by seed, what a change does: a smaller or larger step (CNN-2, where the
earlier default α = 0.005 failed on 5 of 20 seeds), a linear warm-up to it, a cosine decay over
the run, another `decay_after` or none (`--decay-after none`: the paper's constant step), another relative-step
cap or none (`--max-relative-step none`, as meta-training runs the bundles), another ε, or a
bundle under another feature normalization (`--feature-normalization rms-clip` on an "rms" bundle). With
--compare-json, the suite's own runs of the same seeds (final losses are deterministic per seed) are printed
and stored beside them.

    python benchmarks/hyperadam_step_size.py --suite paper-cnn --task cnn-2 --lr 0.005 0.002 --seeds 1 2
    python benchmarks/hyperadam_step_size.py --suite paper-cnn --task cnn-2 --warmup-steps 10 --seeds 0 1
    python benchmarks/hyperadam_step_size.py --suite paper-cnn --task cnn-2 --lr 0.005 --epsilon 1e-7
    python benchmarks/hyperadam_step_size.py --suite paper-long --task all --decay-after none --seeds 0 1
    python benchmarks/hyperadam_step_size.py --suite paper-long --task all --lr 0.005 --cosine --decay-after none \\
        --seeds 0 1 \\
        --compare-json benchmarks/paper-long/paper-long.json --json benchmarks/paper-long/long_schedule.json

`--summary` reads such JSONs back (several: one invocation per seed, as for paper-cnn's 20 seeds) and prints,
per task and step size, how many seeds trained (finite, below the initial loss and below chance,
`CHANCE_FRACTION` of ln 10), the final losses' mean, median and maximum, the test accuracy, and against
each optimizer of the --compare-json suite runs on the same seeds: its mean and median, on how many seeds
HyperAdam's loss is lower, and (from the suite JSON, where it is on disk) its mean test accuracy and on how
many seeds HyperAdam's is at least as high:

    python benchmarks/hyperadam_step_size.py --summary benchmarks/paper-cnn/run10_cnn2_seeds0-19.json
"""

from __future__ import annotations

import argparse
import json
import math
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from hyperadam_keras import HyperAdam, default_bundle_path, load_meta_params  # noqa: E402
from hyperadam_keras.equations import FEATURE_NORMALIZATIONS  # noqa: E402
from hyperadam_keras.lab.eval.evaluate import Trainer  # noqa: E402
from hyperadam_keras.cli.arg_types import optional, positive_float  # noqa: E402
from hyperadam_keras.defaults import DEFAULT_MAX_RELATIVE_STEP  # noqa: E402
from hyperadam_keras.schedules import DEFAULT_DECAY_AFTER, check_decay_after  # noqa: E402
from hyperadam_keras.lab.eval.suites import build_task, get_suite  # noqa: E402


class LinearWarmup(keras.optimizers.schedules.LearningRateSchedule):
    """α · min(1, (t + 1) / W) at step t: α / W on the first step, α from step W - 1 on."""

    def __init__(self, learning_rate: float, warmup_steps: int):
        self.learning_rate, self.warmup_steps = float(learning_rate), int(warmup_steps)

    def __call__(self, step):
        fraction = (keras.ops.cast(step, "float32") + 1.0) / float(self.warmup_steps)
        return self.learning_rate * keras.ops.minimum(1.0, fraction)

    def get_config(self) -> dict:
        return {"learning_rate": self.learning_rate, "warmup_steps": self.warmup_steps}


def step_schedule(learning_rate: float, steps: int, warmup_steps: int = 0, cosine: bool = False):
    """The step HyperAdam is given: a constant, a linear warm-up to it, or a cosine decay from it to 0."""
    if warmup_steps and cosine:
        raise ValueError("choose a warm-up or a cosine decay, not both")
    if cosine:
        return keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=steps)
    return LinearWarmup(learning_rate, warmup_steps) if warmup_steps else learning_rate


def decay_after_argument(text: str) -> int | None:
    """--decay-after: a number of steps, or 'none'."""
    if text.lower() == "none":
        return None
    try:
        return check_decay_after(int(text))
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"expected 'none' or an integer >= 1, got {text!r}") from error


def suite_columns(suite_json: dict, task_name: str, seeds: list[int], value) -> dict[str, list] | None:
    """`value(run)` per seed of every optimizer in a suite's JSON for one task (None for a seed it lacks),
    keyed "label (lr …, suite)"; None when the JSON has no such task."""
    task = next((t for t in suite_json["tasks"] if t["name"] == task_name), None)
    if task is None:
        return None
    columns = {}
    for label, result in task["results"].items():
        by_seed = {run["seed"]: value(run) for run in result["runs"]}
        columns[f"{label} (lr {result['learning_rate']:g}, suite)"] = [by_seed.get(seed) for seed in seeds]
    return columns


def suite_runs(suite_json: dict, task_name: str, steps: int, seeds: list[int]) -> dict[str, list[float | None]]:
    """Final loss per seed of every optimizer in a suite's JSON for one task (None for a seed it lacks)."""
    columns = suite_columns(suite_json, task_name, seeds, lambda run: run["final_loss"])
    if columns is None:
        raise ValueError(f"task {task_name!r} is not in the comparison JSON")
    steps_run = next(t["steps"] for t in suite_json["tasks"] if t["name"] == task_name)
    if steps_run != steps:
        raise ValueError(f"the comparison JSON ran {task_name} for {steps_run} steps, this run {steps}")
    return columns


# A run "trained" when its final loss is finite, below its first minibatch loss, and below this fraction of
# ln 10 (a 10-class classifier at chance); the suites' CNNs start near ln 10 = 2.30.
CHANCE_FRACTION = 0.9


def _trained(run: dict) -> bool:
    loss, first = run["final_loss"], (run.get("minibatch_loss_every_100_steps") or [math.inf])[0]
    return math.isfinite(loss) and loss < first and loss < CHANCE_FRACTION * math.log(10)


def _suite_accuracies(compare_json: str | None, task: str, seeds: list[int]) -> dict[str, list[float | None]]:
    """Test accuracy per seed of each optimizer of a suite JSON on disk (`suite_columns`), else {}."""
    if not compare_json or not os.path.exists(compare_json):
        return {}
    with open(compare_json) as f:
        suite_json = json.load(f)
    return suite_columns(suite_json, task, seeds, lambda run: (run.get("test") or {}).get("test_accuracy")) or {}


def summarize_runs(paths: list[str]) -> list[str]:
    """The summary lines of `--summary` for the runs of these JSONs (a run of a (task, lr, seed) once)."""
    runs, suite_losses, compare_jsons = {}, {}, {}
    for path in paths:
        with open(path) as f:
            data = json.load(f)
        for run in data["runs"]:
            runs[(run["task"], run["learning_rate"], run["seed"])] = run
        for task, columns in (data.get("suite_runs") or {}).items():
            # suite_runs holds the invocation's --seeds in order, which its runs of the first step size follow
            seeds = list(dict.fromkeys(r["seed"] for r in data["runs"] if r["task"] == task))
            for label, values in columns.items():
                suite_losses.setdefault(task, {}).setdefault(label, {}).update(zip(seeds, values))
            compare_jsons[task] = data.get("compare_json")
    lines = []
    for task, lr in sorted({(t, lr) for t, lr, _ in runs}):
        mine = [runs[key] for key in sorted(runs) if key[:2] == (task, lr)]
        seeds = [run["seed"] for run in mine]
        losses = np.array([run["final_loss"] for run in mine])
        accuracies = [(run.get("test") or {}).get("test_accuracy") for run in mine]
        line = (f"{task} lr {lr:g}: {sum(map(_trained, mine))}/{len(mine)} seeds trained; final loss mean "
                f"{np.mean(losses):.3g} ± {np.std(losses, ddof=1) if len(losses) > 1 else 0.0:.2g}, median "
                f"{np.median(losses):.3g}, max {np.max(losses):.3g}")
        if None not in accuracies:
            line += f"; test accuracy {np.mean(accuracies):.3f} ({min(accuracies):.3f}-{max(accuracies):.3f})"
        lines.append(line)
        suite_accuracy = _suite_accuracies(compare_jsons.get(task), task, seeds)
        for label, by_seed in (suite_losses.get(task) or {}).items():
            theirs = [by_seed.get(seed) for seed in seeds]
            pairs = [(a, b) for a, b in zip(losses, theirs) if b is not None]
            if not pairs:
                continue
            values = [b for _, b in pairs]
            line = (f"  {label}: mean {np.mean(values):.3g}, median {np.median(values):.3g}; HyperAdam lower on "
                    f"{sum(a < b for a, b in pairs)}/{len(pairs)}")
            their_accuracy = suite_accuracy.get(label)
            if their_accuracy and None not in accuracies:
                both = [(a, b) for a, b in zip(accuracies, their_accuracy) if b is not None]
                if both:
                    line += (f"; test accuracy {np.mean([b for _, b in both]):.3f}, HyperAdam's at least as high "
                             f"on {sum(a >= b for a, b in both)}/{len(both)}")
            lines.append(line)
    return lines


def _mean_std(values: list[float]) -> str:
    std = np.std(values, ddof=1) if len(values) > 1 else 0.0
    return f"{np.mean(values):.4f} ± {std:.4f} over {len(values)} seeds"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--summary", nargs="+", default=None, metavar="JSON",
                        help="print the summary of these --json outputs and exit (trains nothing)")
    parser.add_argument("--suite", default="paper-cnn")
    parser.add_argument("--task", nargs="+", default=["cnn-2"], help="task names of the suite, or 'all'")
    parser.add_argument("--lr", type=float, nargs="+", default=[0.005, 0.002],
                        help="HyperAdam step sizes (with --cosine: the step before decay)")
    parser.add_argument("--warmup-steps", type=int, default=0,
                        help="rise linearly to each step size over this many steps (default 0: constant)")
    parser.add_argument("--cosine", action="store_true", help="decay each step size to 0 over the run (cosine)")
    parser.add_argument("--decay-after", type=decay_after_argument, default=DEFAULT_DECAY_AFTER,
                        help="HyperAdam's decay_after: steps at the full step before it decays as 1/√t, or "
                             f"'none' (constant) (default: the optimizer's, {DEFAULT_DECAY_AFTER})")
    parser.add_argument("--max-relative-step", type=optional(positive_float), default=DEFAULT_MAX_RELATIVE_STEP,
                        help="HyperAdam's relative-step cap, or 'none' (no cap) "
                             f"(default: the optimizer's, {DEFAULT_MAX_RELATIVE_STEP})")
    parser.add_argument("--candidate-clip", type=optional(positive_float), default=None,
                        help="HyperAdam's clip of each candidate update to ±this value, or 'none' (default: none)")
    parser.add_argument("--epsilon", type=float, default=None, help="HyperAdam's ε (default: the optimizer's)")
    parser.add_argument("--bundle", default=None, help="meta-parameter bundle (default: the shipped one)")
    parser.add_argument("--feature-normalization", choices=FEATURE_NORMALIZATIONS, default=None,
                        help="run the bundle under this feature normalization instead of its own")
    parser.add_argument("--steps", type=int, default=None, help="training steps (default: each task's)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2], help="evaluation seeds")
    parser.add_argument("--compare-json", default=None,
                        help="a suite's JSON (hyperadam-keras evaluate) whose runs of the same seeds to show alongside")
    parser.add_argument("--json", default=None, help="write the numbers here")
    args = parser.parse_args(argv)
    if args.summary:
        print("\n".join(summarize_runs(args.summary)))
        return
    if args.warmup_steps and args.cosine:
        parser.error("choose --warmup-steps or --cosine, not both")

    suite = get_suite(args.suite)
    specs = list(suite.tasks) if args.task == ["all"] else [
        next((t for t in suite.tasks if t.name == name), None) for name in args.task]
    if None in specs:
        parser.error(f"unknown task in {args.task}; {args.suite} has: {', '.join(t.name for t in suite.tasks)}")
    compared = json.load(open(args.compare_json)) if args.compare_json else None
    params = load_meta_params(args.bundle or default_bundle_path())
    if args.feature_normalization:
        params = params.with_feature_normalization(args.feature_normalization)
    options = {"meta_params": params, "decay_after": args.decay_after, "max_relative_step": args.max_relative_step,
               "candidate_clip": args.candidate_clip}
    if args.epsilon is not None:
        options["epsilon"] = args.epsilon
    schedule_name = "cosine" if args.cosine else (f"warm-up {args.warmup_steps}" if args.warmup_steps else "constant")
    if args.decay_after is not None:
        schedule_name += f", then 1/√t after {args.decay_after}"
    rows, comparison = [], {}

    def write_json() -> None:
        # Rewritten after every run, so that a stopped invocation keeps the runs it finished.
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"suite": args.suite, "bundle": args.bundle or "shipped default",
                           "feature_normalization": params.feature_normalization, "runs": rows,
                           "suite_runs": comparison, "compare_json": args.compare_json}, f, indent=1)

    for spec in specs:
        task, steps = build_task(spec), args.steps or spec.num_steps(False)
        if compared is not None:  # read first: a mismatch fails before any training
            comparison[spec.name] = suite_runs(compared, spec.name, steps, args.seeds)
        for lr in args.lr:
            rate = step_schedule(lr, steps, args.warmup_steps, args.cosine)
            trainer = Trainer(task, HyperAdam(learning_rate=rate, **options), jit_compile=spec.xla)
            losses = []
            for seed in args.seeds:
                run = trainer.run(seed, steps, learning_rate=None)  # the optimizer's own rate or schedule
                losses.append(run.final_loss)
                rows.append({"task": spec.name, "steps": steps, "learning_rate": lr, "schedule": schedule_name,
                             "warmup_steps": args.warmup_steps, "decay_after": args.decay_after,
                             "epsilon": trainer.optimizer.epsilon,
                             "max_relative_step": trainer.optimizer.max_relative_step,
                             "candidate_clip": trainer.optimizer.candidate_clip, "seed": seed,
                             "final_loss": run.final_loss, "test": run.test, "seconds": round(run.seconds, 1),
                             "minibatch_loss_every_100_steps": [float(x) for x in run.curve[::100]]})
                print(f"{spec.name} lr {lr:g} seed {seed}: final loss {run.final_loss:.4g}, test {run.test}", flush=True)
                write_json()
            print(f"{spec.name} lr {lr:g}, {schedule_name}, ε {trainer.optimizer.epsilon:g}, {steps} steps: "
                  f"mean final loss {_mean_std(losses)}", flush=True)
        for label, values in comparison.get(spec.name, {}).items():
            finite = [v for v in values if v is not None]
            print(f"  {label:40s} {' '.join(f'{v:.4f}' for v in finite)}   mean {_mean_std(finite)}")
    write_json()


if __name__ == "__main__":
    main()
