"""This machine's floor for one HyperAdam update, beside the measured update (a CLI around
`hyperadam_keras.lab.eval.floor`; the counts and the formula are in its docstring).

    python benchmarks/update_floor.py                    # n = 1,000,000, the shipped bundle
    python benchmarks/update_floor.py --n 100000 --json floor.json
    python benchmarks/update_floor.py --cpu-allocator bfc  # TensorFlow's BFC allocator, as the command uses
"""

from __future__ import annotations

import argparse
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main(argv: list[str] | None = None) -> int:
    from hyperadam_keras.cpu_allocator import CPU_ALLOCATORS, cpu_allocator_in_use, select_cpu_allocator

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1_000_000, help="coordinates of the update (default 1,000,000)")
    parser.add_argument("--repeats", type=int, default=7, help="timed calls per measurement, median (default 7)")
    parser.add_argument("--meta-params", default=None, help="bundle path (default: the shipped default)")
    parser.add_argument("--json", metavar="PATH", default=None, help="also write the result as JSON")
    parser.add_argument("--cpu-allocator", choices=CPU_ALLOCATORS, default="default",
                        help="TensorFlow's CPU allocator: its default or BFC, which the hyperadam-keras command "
                             "uses (hyperadam_keras/cpu_allocator.py; default: default)")
    args = parser.parse_args(argv)
    if args.n < 1 or args.repeats < 1:
        parser.error("--n and --repeats must be >= 1")
    select_cpu_allocator(args.cpu_allocator)

    from hyperadam_keras.lab.eval import floor
    from hyperadam_keras.bundle import resolve_meta_params

    result = floor.update_floor(resolve_meta_params(args.meta_params), n=args.n, repeats=args.repeats)
    result["cpu_allocator"] = cpu_allocator_in_use()
    result["command"] = " ".join([os.path.basename(sys.executable), "benchmarks/update_floor.py"] + sys.argv[1:])
    print(floor.format_floor(result))
    print(f"TensorFlow's CPU allocator: {result['cpu_allocator']}.")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
