"""`pytest --cpu-durations N`: the N tests that took the most CPU time, their own process's and their
children's, setup and teardown included.

The suite is CPU-bound on 2 cores, and pytest's `--durations` measures wall time, which under xdist
charges a test for the other worker's load and for the child processes it waits on: this says where the
CPU goes. A child's time counts once it has exited and been reaped, in the phase that reaps it.
"""

from __future__ import annotations

import collections
import resource
import time

import pytest

_PHASE_CPU = pytest.StashKey[dict]()


def cpu_seconds() -> float:
    """User and system CPU seconds of this process and of its reaped children."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--cpu-durations", type=int, default=0, metavar="N",
                     help="list the N tests that took the most CPU time (their process's and children's)")


def _measured(item: pytest.Item, phase: str):
    if not item.config.getoption("cpu_durations"):
        yield
        return
    start = cpu_seconds()
    yield
    item.stash.setdefault(_PHASE_CPU, {})[phase] = cpu_seconds() - start


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item):
    yield from _measured(item, "setup")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    yield from _measured(item, "call")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item):
    yield from _measured(item, "teardown")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    seconds = item.stash.get(_PHASE_CPU, {}).get(call.when)
    if seconds is not None:  # user_properties travel from an xdist worker to the controller
        outcome.get_result().user_properties.append(("cpu_seconds", seconds))


def pytest_terminal_summary(terminalreporter, config: pytest.Config) -> None:
    count = config.getoption("cpu_durations")
    if not count:
        return
    totals: collections.Counter = collections.Counter()
    for reports in terminalreporter.stats.values():
        for report in reports:
            for key, value in getattr(report, "user_properties", ()):
                if key == "cpu_seconds":
                    totals[report.nodeid] += value
    terminalreporter.write_sep("=", f"{count} tests with the most CPU time (of {sum(totals.values()):.0f} s in all)")
    for nodeid, seconds in totals.most_common(count):
        terminalreporter.write_line(f"{seconds:8.2f}s {nodeid}")
