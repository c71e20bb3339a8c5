"""What a bfloat16 optimizer state costs in quality: `HyperAdam()` with `state_dtype="float32"` and
`"bfloat16"` on the same tasks and seeds, side by side.

    python benchmarks/state_dtype_quality.py                                  # paper-table1, paper-lstm, 10 seeds
    python benchmarks/state_dtype_quality.py --suite paper-deep --seeds 0 1 2 --json out.json
    python benchmarks/state_dtype_quality.py --paper-settings                 # at HyperAdam(**PAPER_SETTINGS)

Per task it prints the mean final training loss of each state dtype, their ratio, on how many seeds the
bfloat16 run is lower, and the paired difference against the float32 runs' own spread across seeds (the
noise a different seed makes): |mean difference| / (std of float32 over seeds).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suite", nargs="+", default=["paper-table1", "paper-lstm"], help="suites (default: "
                        "paper-table1 paper-lstm)")
    parser.add_argument("--task", nargs="*", default=None, help="only these task names")
    parser.add_argument("--seeds", type=int, nargs="+", default=list(range(10)), help="seeds (default 0-9)")
    parser.add_argument("--paper-settings", action="store_true",
                        help="HyperAdam(**PAPER_SETTINGS) (α = 0.005, no cap) instead of HyperAdam()")
    parser.add_argument("--json", default=None, help="write every run's final loss here")
    args = parser.parse_args(argv)

    from hyperadam_keras import PAPER_SETTINGS, HyperAdam
    from hyperadam_keras.lab.eval.evaluate import Trainer
    from hyperadam_keras.lab.eval.suites import build_task, get_suite

    settings = dict(PAPER_SETTINGS) if args.paper_settings else {}
    results = {"settings": "PAPER_SETTINGS" if args.paper_settings else "defaults", "seeds": args.seeds, "tasks": {}}
    for suite_name in args.suite:
        for spec in get_suite(suite_name).tasks:
            if args.task and spec.name not in args.task:
                continue
            task, steps = build_task(spec), spec.num_steps(False)
            losses = {}
            for dtype in ("float32", "bfloat16"):
                trainer = Trainer(task, HyperAdam(state_dtype=dtype, **settings), jit_compile=spec.xla)
                losses[dtype] = [float(trainer.run(seed, steps, learning_rate=None).final_loss) for seed in args.seeds]
            f32, bf16 = losses["float32"], losses["bfloat16"]
            spread = statistics.stdev(f32) if len(f32) > 1 else float("nan")
            difference = statistics.mean(b - f for b, f in zip(bf16, f32))
            row = {"suite": suite_name, "steps": steps, "float32": f32, "bfloat16": bf16,
                   "mean_float32": statistics.mean(f32), "mean_bfloat16": statistics.mean(bf16),
                   "ratio": statistics.mean(bf16) / statistics.mean(f32),
                   "bfloat16_lower_on": sum(b < f for b, f in zip(bf16, f32)),
                   "difference_over_seed_spread": abs(difference) / spread if spread > 0 else float("nan")}
            results["tasks"][spec.name] = row
            print(f"{suite_name:13s} {spec.name:24s} float32 {row['mean_float32']:.4f}  bfloat16 "
                  f"{row['mean_bfloat16']:.4f}  ratio {row['ratio']:.3f}  lower on {row['bfloat16_lower_on']}"
                  f"/{len(args.seeds)}  |diff|/seed-std {row['difference_over_seed_spread']:.2f}", flush=True)
            if args.json:  # rewritten after every task, so a stopped run keeps what it finished
                with open(args.json, "w") as out:
                    json.dump(results, out, indent=1)
    ratios = [row["ratio"] for row in results["tasks"].values()]
    if ratios:
        print(f"{len(ratios)} tasks: ratio median {statistics.median(ratios):.3f}, range "
              f"{min(ratios):.3f}-{max(ratios):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
