"""tests/conftest.py: with CI=true a skip for a missing requirement fails the run; other skips stay skips."""

from __future__ import annotations

from pathlib import Path

import pytest

INNER = '''
import pytest

from conftest import needs_data, skip_missing


@needs_data
def test_needs_data():
    raise AssertionError("the data marker must stop this test in setup, before its body runs")


def test_needs_a_program():
    skip_missing("a program")


def test_needs_a_module():
    pytest.importorskip("xstilts_no_such_module")


def test_skips_for_another_reason():
    pytest.skip("only on another platform")
'''


def test_ci_turns_missing_requirement_skips_into_failures(pytester, monkeypatch, tmp_path):
    """One pytest subprocess with CI=true and an empty data folder (without CI=true all four are plain skips)."""
    pytester.makeconftest((Path(__file__).parent / "conftest.py").read_text(encoding="utf-8"))
    pytester.makepyfile(test_inner=INNER)
    monkeypatch.setenv("XSTILTS_SHARED_DATA", str(tmp_path / "empty"))  # no benchmark data there
    monkeypatch.setenv("CI", "true")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=2, errors=1, skipped=1)  # the data marker fails in setup: an error
    result.stdout.fnmatch_lines(["*CI=true: a test may not skip for a missing requirement: benchmark data*",
                                 "*CI=true: a test may not skip for a missing requirement: a program*",
                                 "*could not import 'xstilts_no_such_module'*"])
    assert result.ret == pytest.ExitCode.TESTS_FAILED
