"""Is one truncation's meta-gradient finite on a task? (A probe, not a test.)

Runs `unroll.meta_gradient` once from a task's initial weights, as `meta-train` does (log objective, the
bundle's feature normalization, the optimizer's decay), first- and second-order, with and without the clip,
and prints which meta-weight tensors come back non-finite. Found with it (meta_training/LOG.md, run16): on
`diverse-fit`'s BatchNorm CNN every second-order meta-gradient is NaN from a 10-step truncation on; with
`--second-order-clip 1` (`meta-train --second-order-clip`, `unroll.bound_cotangent`) it is finite.

    python benchmarks/second_order_probe.py meta_training/run16/epoch1_bundle --steps 5 10 50
    python benchmarks/second_order_probe.py meta_training/run16/epoch1_bundle --steps 10 50 --second-order-clip 1
"""

from __future__ import annotations

import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
os.environ.setdefault("HYPERADAM_KERAS_QUIET_START", "1")

import hyperadam_keras  # noqa: E402,F401  (quiet start first)
import numpy as np  # noqa: E402

from hyperadam_keras.bundle import load_meta_params  # noqa: E402
from hyperadam_keras.lab.meta import unroll  # noqa: E402
from hyperadam_keras.lab.tasks.low_loss import build_batch_norm_cnn  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("bundle", help="the bundle whose meta-gradient is taken")
    parser.add_argument("--steps", type=int, nargs="+", default=[5, 10, 50], help="truncation lengths")
    parser.add_argument("--task-seed", type=int, default=22, help="task seed (22: the BN CNN's first in diverse-fit)")
    parser.add_argument("--learning-rate", type=float, default=0.001)
    parser.add_argument("--second-order-clip", type=float, default=None,
                        help="bound on each entry flowing back into an optimizee gradient (default: exact)")
    args = parser.parse_args(argv)
    task = build_batch_norm_cnn(filters=(8, 16), batch_size=64)  # diverse-fit's BATCH_NORM_CNNS
    params = load_meta_params(args.bundle)
    meta = unroll.meta_variables(params)
    for steps in args.steps:
        for second_order in (False, True):
            for clip in (None, 5.0):
                state = unroll.init_unroll_state(task.init_params(args.task_seed), params.num_candidates, params.hidden)
                loss, grads, new = unroll.meta_gradient(
                    meta, task, state, args.task_seed, steps, learning_rate=args.learning_rate,
                    second_order=second_order, log_objective=True,
                    feature_normalization=params.feature_normalization, decay_after=100, candidate_clip=clip,
                    second_order_clip=args.second_order_clip if second_order else None)
                bad = [i for i, g in enumerate(grads) if not np.all(np.isfinite(g.numpy()))]
                weights_finite = all(np.all(np.isfinite(p.numpy())) for p in new.params)
                print(f"steps {steps:3d} second_order={second_order!s:5} clip={clip!s:4} meta-loss {float(loss):8.4f} "
                      f"non-finite meta-gradients {len(bad)}/{len(grads)} weights finite {weights_finite}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
