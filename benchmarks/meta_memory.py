"""Peak memory and time of one meta-step, per truncation length, for one task of a meta-training config.

Second-order meta-gradients keep every unrolled step's activations, so a meta-step's memory grows
linearly with the truncation K; on a CNN that decides whether a recipe fits the machine at all (run7's
`eval-mix-cnn` at K = 100 was killed by the kernel's OOM killer at its first CNN-2 meta-step on a 24 GiB
machine). Each K runs in a fresh process, so that its peak resident memory is its own; the meta-
parameters are the config's start (`init`), the task the first training seed's.

    python benchmarks/meta_memory.py --config meta_training/run7/config.json --truncations 10 25 50
    python benchmarks/meta_memory.py --config my_recipe.json --task-index 0 --json memory.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def one_meta_step(config_path: str, truncation: int, task_index: int | None) -> dict:
    """Runs one meta-step of `truncation` optimizee steps in this process; returns its numbers."""
    from hyperadam_keras.lab.meta.config import MetaTrainConfig
    from hyperadam_keras.lab.meta.families import build_task, training_task_seed
    from hyperadam_keras.lab.meta.trainer import MetaTrainer

    config = MetaTrainConfig.from_dict(json.loads(open(config_path).read()))
    config = dataclasses.replace(config, truncation=truncation, horizon=max(config.horizon, truncation))
    family = build_task(config)
    family = family if isinstance(family, (list, tuple)) else [family]
    index = len(family) - 1 if task_index is None else task_index
    trainer = MetaTrainer(config, family)  # starts from the config's init, as meta-training does
    seed = training_task_seed(config, 0)
    state = trainer.start_task(seed, index)
    began = time.perf_counter()
    meta_loss, grad_norm, applied, _ = trainer.train_step(state, seed, index)
    task = family[index]
    return {"truncation": truncation, "task_index": index,
            "task": f"{type(task).__name__} {getattr(task, 'name', '')}".strip(),
            "second_order": config.second_order, "seconds_with_tracing": round(time.perf_counter() - began, 1),
            "meta_loss": float(meta_loss), "applied": bool(applied),
            "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="a meta-training config JSON (a run's config.json)")
    parser.add_argument("--truncations", type=int, nargs="+", default=[10, 25, 50],
                        help="truncation lengths K to measure, each in its own process")
    parser.add_argument("--task-index", type=int, default=None,
                        help="which task of the config's family (default: the last; eval-mix-cnn: CNN-2)")
    parser.add_argument("--json", default=None, help="also write the results here")
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(one_meta_step(args.config, args.child, args.task_index)))
        return
    rows = []
    for truncation in args.truncations:
        command = [sys.executable, __file__, "--config", args.config, "--child", str(truncation)]
        if args.task_index is not None:
            command += ["--task-index", str(args.task_index)]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:  # -9: most likely the OOM killer
            row = {"truncation": truncation, "failed": f"exit status {done.returncode}",
                   "stderr_tail": done.stderr[-500:]}
        else:
            row = json.loads(done.stdout.strip().splitlines()[-1])
        rows.append(row)
        print(json.dumps(row), flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"config": args.config, "runs": rows}, f, indent=1)


if __name__ == "__main__":
    main()
