"""`hyperadam-keras`: the command line. Each subcommand lives in its own module, which provides
`add_arguments(parser)` and `run(args) -> int`; this file only dispatches."""

from __future__ import annotations

import argparse
import importlib
import os
import sys

# subcommand -> (module, one-line help). Modules are imported lazily: `--help` stays fast.
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "make-bundle": ("hyperadam_keras.cli.make_bundle", "write an untrained Adam-ensemble bundle"),
    "meta-train": ("hyperadam_keras.cli.meta_train", "meta-train HyperAdam's meta-parameters (paper's recipe by default)"),
    "inspect": ("hyperadam_keras.lab.inspect_bundle", "show a bundle's arrays, provenance and gate statistics"),
    "evaluate": ("hyperadam_keras.cli.evaluate", "run evaluation suites against tuned baselines; write reports"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hyperadam-keras", description="HyperAdam for Keras: meta-parameter bundles, meta-training, evaluation.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        sub = commands.add_parser(name, help=help_text, description=help_text,
                                  formatter_class=argparse.ArgumentDefaultsHelpFormatter)
        importlib.import_module(module_name).add_arguments(sub)
        sub.set_defaults(_module=module_name)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args = build_parser().parse_args(argv)
    return int(importlib.import_module(args._module).run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
