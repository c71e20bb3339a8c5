"""`--cpu-durations`: the tests that used the most CPU, their child processes' included."""

from __future__ import annotations

import re
from pathlib import Path

TESTS = Path(__file__).resolve().parent

pytest_plugins = ["pytester"]


def test_cpu_durations_rank_tests_by_their_own_and_their_childrens_cpu(pytester, monkeypatch):
    pytester.makepyfile(test_burn="""
        import subprocess, sys, time

        def _burn(seconds):
            end = time.process_time() + seconds
            while time.process_time() < end:
                pass

        def test_idle():
            time.sleep(0.3)  # wall time, no CPU

        def test_burns_itself():
            _burn(0.4)

        def test_burns_in_a_child():
            subprocess.run([sys.executable, "-c", "import time\\nend = time.process_time() + 0.8\\n"
                            "while time.process_time() < end: pass"], check=True)
    """)
    monkeypatch.setenv("PYTHONPATH", str(TESTS))  # the plugin, without this suite's conftest (TensorFlow)
    result = pytester.runpytest_subprocess("-p", "cpu_durations", "--cpu-durations", "3", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)
    lines = [line for line in result.outlines if re.match(r"\s+\d+\.\d+s test_burn.py::", line)]
    ranked = [(line.split("::")[1], float(line.split("s ")[0])) for line in lines]
    assert [name for name, _ in ranked] == ["test_burns_in_a_child", "test_burns_itself", "test_idle"], lines
    seconds = dict(ranked)
    assert seconds["test_burns_in_a_child"] >= 0.8 and 0.4 <= seconds["test_burns_itself"] < 0.8
    assert seconds["test_idle"] < 0.2
