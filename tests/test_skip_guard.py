"""The skip guard (``tests/skip_guard.py``) on a real pytest run under pytest-xdist, and the
allow-list in ``tests/README.md`` it reads."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from skip_guard import README, allowed_skips

TESTS = Path(__file__).resolve().parent

SUITE = textwrap.dedent('''
    import pytest

    def test_runs():
        assert True

    def test_known():
        pytest.skip("the machine lacks a thing, as documented")

    def test_new():
        pytest.skip("something nobody wrote down")
''')


def run(tmp_path: Path, table: str, mode: str = "strict") -> subprocess.CompletedProcess:
    (tmp_path / "test_demo.py").write_text(SUITE)
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    allowed = tmp_path / "README.md"
    allowed.write_text("# tests\n\n## Skips allowed on CI\n\n| test | reason | why |\n"
                       f"| --- | --- | --- |\n{table}\n\n## After\n\n| `x` | `y` | z |\n")
    # only the plugins this needs (the installed ones take seconds to load, in each worker)
    env = {**os.environ, "PYTHONPATH": str(TESTS), "ECHOES_SKIP_CHECK": mode,
           "ECHOES_ALLOWED_SKIPS": str(allowed), "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    # two xdist workers: the skips reach the controller as serialized reports
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "xdist.plugin", "-p",
                           "skip_guard", "-n", "2", "-rs", "-q", str(tmp_path)], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=120)


KNOWN = "| `test_demo.py::test_known` | `lacks a thing` | documented |"
NEW = "| `test_demo.py::test_new` | `nobody wrote` | documented |"


def test_an_unlisted_skip_fails_the_run_and_is_named(tmp_path):
    done = run(tmp_path, KNOWN)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "1 skip(s) not allowed on CI" in done.stdout
    assert "test_demo.py::test_new: Skipped: something nobody wrote down" in done.stdout
    assert "test_known:" not in done.stdout.split("not allowed on CI")[1]


def test_listed_skips_pass_and_rows_after_the_section_do_not_count(tmp_path):
    done = run(tmp_path, f"{KNOWN}\n{NEW}")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "not allowed" not in done.stdout
    assert "1 passed, 2 skipped" in done.stdout


def test_outside_ci_an_unlisted_skip_is_named_without_failing(tmp_path):
    done = run(tmp_path, KNOWN, mode="warn")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "test_demo.py::test_new: Skipped: something nobody wrote down" in done.stdout


def test_the_readme_allows_few_skips_each_with_a_reason():
    rows = allowed_skips(README)
    assert 1 <= len(rows) <= 5, rows
    for node, part in rows:
        assert node.startswith("tests/") and len(part) >= 10, (node, part)
        assert (README.parents[1] / node.split("::")[0]).is_file(), node
