"""`make test` runs with `--dist loadgroup` so that a module marked `xdist_group` (the example runs, the wheel,
the fit suite) runs on one worker and its costly module fixture is made once. This checks that the installed
pytest and pytest-xdist still honour the mark (pytest 9 with pytest-xdist 3.8 did not: setup.cfg)."""

from __future__ import annotations

import re

pytest_plugins = ["pytester"]


def test_a_marked_module_runs_on_one_worker(pytester):
    pytester.makepyfile(
        test_grouped="""
            import pytest
            pytestmark = pytest.mark.xdist_group("together")

            @pytest.mark.parametrize("i", range(6))
            def test_grouped(i):
                pass
        """,
        test_free="""
            import pytest

            @pytest.mark.parametrize("i", range(6))
            def test_free(i):
                pass
        """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", "2", "--dist", "loadgroup", "-v")
    result.assert_outcomes(passed=12)
    workers = re.findall(r"\[(gw\d)\] .*PASSED test_grouped\.py::test_grouped\[\d\]@together", result.stdout.str())
    assert len(workers) == 6, result.stdout.str()
    assert len(set(workers)) == 1, f"the group ran on {sorted(set(workers))}"
