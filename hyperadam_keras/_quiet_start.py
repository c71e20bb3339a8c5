"""Keeps TensorFlow's C++ start-up lines off the console of the `hyperadam-keras` command.

TensorFlow (2.19+) logs a few lines through absl while its shared libraries load, before anything
reads `TF_CPP_MIN_LOG_LEVEL` (measured with TF 2.21: at every level the import prints "WARNING: All
log messages before absl::InitializeLog() …", "I0000 … port.cc] oneDNN custom operations are on …"
and "I0000 … cudart_stub.cc] Could not find cuda drivers …", twice). After the import the variable
works (e.g. level 3 hides the "E0000 … failed call to cuInit" line of a GPU-less machine). So the
command sets the variable before TensorFlow loads, and imports TensorFlow with stderr (file
descriptor 2) sent to a temporary file, from which it copies back every line except the log lines
below the level. Nothing changes TensorFlow's numerics (oneDNN stays on).

The package's `__init__` calls `quiet_if_the_command()` before it imports TensorFlow: the console
script imports the package (which registers `HyperAdam` with Keras, so that `import hyperadam_keras`
is all a user needs to load a `.keras` file) before `cli.main` runs, so `main` would be too late.
Stdlib only: this module runs before TensorFlow is imported.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from typing import Sequence

LOG_LEVEL_VARIABLE = "TF_CPP_MIN_LOG_LEVEL"
QUIET_LEVEL = 3  # 1 hides INFO, 2 also WARNING, 3 also ERROR (TensorFlow's meaning of the variable)
VERBOSE_LEVEL = 0

_SEVERITIES = "IWEF"  # absl's INFO, WARNING, ERROR, FATAL: index = the level that hides them
# absl's prefix ("I0000 00:00:1796155691.081521    5622 port.cc:153] ") and TSL's older one
# ("2025-09-17 14:44:05.157831: I external/local_xla/xla/tsl/cuda/cudart_stub.cc:32] ").
_LOG_LINE = re.compile(r"^(?:([IWEF])\d{4} \d\d:\d\d:\d+\.\d+ +\d+ |\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: ([IWEF]) )"
                       r"\S+:\d+\] ")
_ABSL_PREAMBLE = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"
# Second lines of multi-line log messages (cpu_feature_guard.cc's INFO message).
_CONTINUATIONS = ("To enable the following instructions:",)


def tensorflow_log_level(verbose: bool) -> int:
    """Sets `TF_CPP_MIN_LOG_LEVEL` for TensorFlow and returns it as a number: `VERBOSE_LEVEL` (0: show
    everything) with `verbose`, else the user's own value if the variable is set, else `QUIET_LEVEL`."""
    if verbose:
        os.environ[LOG_LEVEL_VARIABLE] = str(VERBOSE_LEVEL)
    else:
        os.environ.setdefault(LOG_LEVEL_VARIABLE, str(QUIET_LEVEL))
    try:
        return max(0, int(os.environ[LOG_LEVEL_VARIABLE]))
    except ValueError:  # TensorFlow reads an unparsable value as 0
        return 0


def filter_log_lines(text: str, level: int) -> str:
    """`text` without the TensorFlow/absl log lines whose severity is below `level` (and without absl's
    "All log messages before absl::InitializeLog()" notice once `level` >= 1). Other lines stay."""
    kept, dropping = [], False
    for line in text.splitlines(keepends=True):
        match = _LOG_LINE.match(line)
        if match:
            dropping = _SEVERITIES.index(match.group(1) or match.group(2)) < level
        elif line.startswith(_ABSL_PREAMBLE):
            dropping = level >= 1
        elif not (dropping and line.startswith(_CONTINUATIONS)):
            dropping = False
        if not dropping:
            kept.append(line)
    return "".join(kept)


def import_tensorflow(level: int) -> None:
    """Imports TensorFlow, dropping from stderr the start-up log lines below `level`; a no-op if it is
    imported already. Everything else written to stderr meanwhile is copied back afterwards."""
    if "tensorflow" in sys.modules or level <= 0:
        import tensorflow  # noqa: F401
        return
    with tempfile.TemporaryFile() as capture:
        sys.stderr.flush()
        try:
            saved = os.dup(2)
        except OSError:  # no file descriptor 2: nothing to keep clean
            saved = None
        else:
            os.dup2(capture.fileno(), 2)
        try:
            import tensorflow  # noqa: F401
        finally:
            if saved is not None:
                sys.stderr.flush()
                os.dup2(saved, 2)
                os.close(saved)
                capture.seek(0)
                sys.stderr.write(filter_log_lines(capture.read().decode("utf-8", "replace"), level))
                sys.stderr.flush()


COMMAND = "hyperadam-keras"
COMMAND_MODULE = "hyperadam_keras.cli"
VERBOSE_FLAG = "--verbose"


def verbose_requested(argv: Sequence[str]) -> bool:
    """Whether the global `--verbose` comes before the subcommand (the first non-option word)."""
    for token in argv:
        if token == VERBOSE_FLAG:
            return True
        if not token.startswith("-"):
            return False
    return False


def command_arguments() -> list[str] | None:
    """The arguments after the command when this process is `hyperadam-keras …` or `python -m
    hyperadam_keras.cli …`; None for any other program (a user's script importing the package)."""
    if os.path.basename(sys.argv[0]) == COMMAND:
        return list(sys.argv[1:])
    original = list(getattr(sys, "orig_argv", []))  # while `-m` locates the module, argv[0] is "-m"
    for index in range(len(original) - 1):
        if original[index] == "-m" and original[index + 1] in (COMMAND_MODULE, COMMAND_MODULE + ".__main__"):
            return original[index + 2:]
    return None


QUIET_VARIABLE = "HYPERADAM_KERAS_QUIET_START"  # "1": any program that imports the package starts quietly


def quiet_if_the_command() -> None:
    """In the `hyperadam-keras` command, or in any program run with HYPERADAM_KERAS_QUIET_START=1 (as
    `make demo` runs the quickstart): sets the log level and imports TensorFlow quietly."""
    argv = command_arguments()
    if argv is not None:
        import_tensorflow(tensorflow_log_level(verbose_requested(argv)))
    elif os.environ.get(QUIET_VARIABLE) == "1":
        import_tensorflow(tensorflow_log_level(verbose=False))
