"""`hyperadam-keras compare`: will HyperAdam help my model? Trains your model with `HyperAdam()` and
with tuned Adam (or other baselines) from the same weights on the same batches, prints a table and
writes OUTPUT_DIR/compare.json and OUTPUT_DIR/curves.png.

    hyperadam-keras compare --model examples/compare_model.py:build --seeds 2
    hyperadam-keras compare --model mypackage.models:build --baselines Adam AdamW --grid 1e-4 3e-4 1e-3

The builder contract and the rules: `hyperadam_keras.lab.eval.compare_builder` and `...compare`.
"""

from __future__ import annotations

import argparse
import sys

from hyperadam_keras.cli.arg_types import nonnegative_int, positive_float, positive_int


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from hyperadam_keras.lab.eval.compare import COMPARE_BASELINES, DEFAULT_SEEDS, DEFAULT_TUNE_SEEDS, MAX_EXTENSIONS

    parser.add_argument("--model", required=True, metavar="FILE.py:FUNCTION|MODULE:FUNCTION",
                        help="the builder: a function of no arguments returning a dict with an uncompiled "
                             "'model', its 'loss', 'x' and 'y' (or a batched 'dataset') and optionally "
                             "'validation_data', 'batch_size', 'epochs' or 'steps', 'metrics' (docs/compare.md)")
    parser.add_argument("--seeds", type=positive_int, default=DEFAULT_SEEDS, help="evaluation seeds 0..N-1")
    parser.add_argument("--tune-seeds", type=positive_int, default=DEFAULT_TUNE_SEEDS,
                        help="tuning seeds for the baselines' learning rates, disjoint from the evaluation seeds")
    parser.add_argument("--baselines", nargs="+", choices=COMPARE_BASELINES, default=["Adam"], metavar="NAME",
                        help=f"tuned baselines to compare with ({', '.join(COMPARE_BASELINES)})")
    parser.add_argument("--grid", nargs="+", type=positive_float, default=None, metavar="LR",
                        help="learning-rate grid of every baseline; None: the evaluation suites' grid of each "
                             "(Adam's for AdamW)")
    parser.add_argument("--max-extensions", type=nonnegative_int, default=MAX_EXTENSIONS,
                        help="times the grid may be extended when the best rate is at its edge")
    parser.add_argument("--output-dir", default="compare_output", help="where curves.png and compare.json go")
    parser.add_argument("--json", default=None, metavar="PATH", help="write the JSON here instead of OUTPUT_DIR/compare.json")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from hyperadam_keras.lab.eval.compare import compare
    from hyperadam_keras.lab.eval.compare_builder import BuilderError, load_builder
    from hyperadam_keras.lab.eval.compare_report import table, write_outputs

    try:
        builder = load_builder(args.model)
        results = compare(builder, seeds=args.seeds, baselines=args.baselines, grid=args.grid,
                          tune_seeds=args.tune_seeds, max_extensions=args.max_extensions,
                          progress=not args.quiet, model_name=args.model)
    except BuilderError as error:
        print(f"hyperadam-keras compare: {error}", file=sys.stderr)
        return 2
    paths = write_outputs(results, args.output_dir, args.json)
    print()
    print(table(results))
    print()
    print(f"plot (training loss per step): {paths['curves']}")
    print(f"every number (JSON): {paths['json']}")
    print(f"wall time: {results['seconds']:.0f} s")
    return 0
