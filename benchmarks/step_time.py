"""Step time, update FLOP/s and memory of HyperAdam against Keras Adam (a CLI around
`hyperadam_keras.lab.eval.speed`). Synthetic random data; all variants are timed side by side in one run.

    python benchmarks/step_time.py                       # mlp, cnn2, 1m; Markdown to stdout
    python benchmarks/step_time.py --models mlp --steps 200 --json step_time.json
    python benchmarks/step_time.py --cpu-allocator bfc    # TensorFlow's BFC allocator, as the command uses
"""

from __future__ import annotations

import argparse
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main(argv: list[str] | None = None) -> int:
    from hyperadam_keras.cpu_allocator import CPU_ALLOCATORS, select_cpu_allocator
    from hyperadam_keras.lab.eval import speed  # after parsing would hide --help speed; import is cheap enough

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["mlp", "cnn2", "1m"], choices=sorted(speed.MODELS),
                        help="models to time (default: all three)")
    parser.add_argument("--steps", type=int, default=50, help="timed train steps per variant (default 50)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed warm-up steps per variant (default 5)")
    parser.add_argument("--update-steps", type=int, default=None, help="timed update-only calls (default: --steps)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaving rounds of the variants (default 5)")
    parser.add_argument("--batch-size", type=int, default=128, help="synthetic batch size (default 128)")
    parser.add_argument("--no-xla", action="store_true", help="skip the XLA variants")
    parser.add_argument("--meta-params", default=None, help="bundle path (default: the shipped default)")
    parser.add_argument("--matmul-size", type=int, default=1024, help="n of the n x n matmul rate probe")
    parser.add_argument("--state-dtype", choices=("float32", "bfloat16"), default="float32",
                        help="HyperAdam's state_dtype (default float32)")
    parser.add_argument("--json", metavar="PATH", default=None, help="also write the results as JSON")
    parser.add_argument("--cpu-allocator", choices=CPU_ALLOCATORS, default="default",
                        help="TensorFlow's CPU allocator for every variant: its default or BFC, which the "
                             "hyperadam-keras command uses (hyperadam_keras/cpu_allocator.py; default: default)")
    args = parser.parse_args(argv)
    select_cpu_allocator(args.cpu_allocator)

    results = speed.run_speed_benchmarks(
        models=args.models, steps=args.steps, warmup=args.warmup, batch_size=args.batch_size,
        xla=not args.no_xla, meta_params=args.meta_params, rounds=args.rounds, update_steps=args.update_steps,
        matmul_size=args.matmul_size, progress=True, state_dtype=args.state_dtype)
    results["command"] = " ".join([os.path.basename(sys.executable), "benchmarks/step_time.py"] + sys.argv[1:])
    print(speed.format_markdown(results))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
