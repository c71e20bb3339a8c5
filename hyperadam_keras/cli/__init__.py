"""`hyperadam-keras`: the command line. Each subcommand lives in its own module, which provides
`add_arguments(parser)` and `run(args) -> int`; this file only dispatches.

TensorFlow's C++ start-up lines are kept off the console (`hyperadam_keras._quiet_start`): the
package's `__init__` does it when the process is this command, before it imports TensorFlow; `main`
does it for callers that import `hyperadam_keras.cli` some other way (a no-op once TensorFlow is in).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Sequence

from hyperadam_keras import _quiet_start as quiet
from hyperadam_keras.lab._requires import MissingExtraError

# subcommand -> (module, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "make-bundle": ("hyperadam_keras.cli.make_bundle", "write an untrained Adam-ensemble bundle"),
    "meta-train": ("hyperadam_keras.cli.meta_train", "meta-train HyperAdam's meta-parameters (paper's recipe by default)"),
    "inspect": ("hyperadam_keras.cli.inspect", "show a bundle's arrays, provenance and gate statistics"),
    "evaluate": ("hyperadam_keras.cli.evaluate", "run evaluation suites against tuned baselines; write reports"),
    "compare": ("hyperadam_keras.cli.compare", "will HyperAdam help my model? train it with HyperAdam and tuned Adam"),
}

VERBOSE_FLAG = quiet.VERBOSE_FLAG


def build_parser() -> argparse.ArgumentParser:
    """The full parser (imports every subcommand module, hence TensorFlow)."""
    parser = argparse.ArgumentParser(
        prog="hyperadam-keras", description="HyperAdam for Keras: meta-parameter bundles, meta-training, evaluation.",
        epilog="Environment: the command runs TensorFlow with its BFC allocator on CPU "
               "(TF_CPU_ALLOCATOR_USE_BFC=true unless set: HyperAdam's update of large tensors 2.3-2.7x faster, "
               "the same results; hyperadam_keras/cpu_allocator.py). TF_CPU_ALLOCATOR_USE_BFC=false keeps "
               "TensorFlow's default allocator.")
    parser.add_argument(VERBOSE_FLAG, action="store_true",
                        help=f"show TensorFlow's C++ log lines, start-up ones included ({quiet.LOG_LEVEL_VARIABLE}="
                             f"{quiet.VERBOSE_LEVEL}); without it the command uses {quiet.LOG_LEVEL_VARIABLE} "
                             f"from the environment, or {quiet.QUIET_LEVEL} (no INFO, WARNING or ERROR lines) "
                             "if unset. Goes before COMMAND")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        options = argparse.ArgumentParser(add_help=False)
        try:
            importlib.import_module(module_name).add_arguments(options)
        except MissingExtraError as error:  # e.g. `evaluate` without the [lab] extra: the others still work
            sub = commands.add_parser(name, help=help_text, description=help_text)
            sub.set_defaults(_unavailable=str(error))  # main() says so, whatever the other arguments
            continue
        sub = commands.add_parser(name, parents=[options], help=help_text, description=help_text,
                                  formatter_class=argparse.ArgumentDefaultsHelpFormatter)
        sub.set_defaults(_module=module_name)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    quiet.import_tensorflow(quiet.tensorflow_log_level(quiet.verbose_requested(argv)))
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown and not hasattr(args, "_unavailable"):
        parser.parse_args(argv)  # argparse's own error for them (exit code 2)
    try:
        if hasattr(args, "_unavailable"):
            raise MissingExtraError(args._unavailable)
        return int(importlib.import_module(args._module).run(args) or 0)
    except MissingExtraError as error:
        print(f"hyperadam-keras {args.command}: {error}", file=sys.stderr)
        return 1
