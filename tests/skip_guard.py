"""A pytest plugin: a skip that ``tests/README.md`` does not allow fails the run.

A skip nobody reads hides a test that no longer runs (issue 27: PostgreSQL tests skipping on a
machine with another PostgreSQL version, the MoMA checksum on every machine). ``make test``
prints every skip's reason (``-rs``); this plugin compares them with the table "Skips allowed
on CI" in ``tests/README.md``: a row names a test (a node id, or the start of one) and a part of
the reason it prints. Any other skip is listed at the end of the run and, where the run is
CI's (root, ``../shared`` beside the repository), makes it fail.

``ECHOES_SKIP_CHECK``: ``strict`` (fail), ``warn`` (list only) or ``off``; by default strict
where the run is CI's, else warn (a developer without root or ``../shared`` skips more, by
design). ``ECHOES_ALLOWED_SKIPS``: another file holding the table (this plugin's own test).
Under pytest-xdist the controller checks, with every worker's reports.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = REPO / "tests" / "README.md"
HEADING = "## Skips allowed on CI"
#: a table row: | `node id` | `part of the reason` | why ... |
ROW = re.compile(r"^\|\s*`([^`]+)`\s*\|\s*`([^`]+)`\s*\|")


def allowed_skips(path: Path | None = None) -> list[tuple[str, str]]:
    """The (node id prefix, reason part) pairs of the README's table."""
    path = path or Path(os.environ.get("ECHOES_ALLOWED_SKIPS") or README)
    text = path.read_text(encoding="utf-8")
    if HEADING not in text:
        raise pytest.UsageError(f"{path}: no '{HEADING}' section: add it (an empty table "
                                "allows no skip)")
    section = text.split(HEADING, 1)[1].split("\n## ", 1)[0]
    return [m.groups() for line in section.splitlines() if (m := ROW.match(line.strip()))]


def _mode() -> str:
    mode = os.environ.get("ECHOES_SKIP_CHECK", "")
    if mode in ("strict", "warn", "off"):
        return mode
    ci_like = os.geteuid() == 0 and (REPO.parent / "shared").is_dir()
    return "strict" if ci_like else "warn"


def _reason(report) -> str:
    longrepr = report.longrepr
    # (file, line, "Skipped: reason"); a list once it has crossed from an xdist worker
    if isinstance(longrepr, (tuple, list)) and len(longrepr) == 3:
        return str(longrepr[2])
    return str(longrepr)


def unexpected_skips(reports, allowed: list[tuple[str, str]]) -> list[str]:
    """``node id: reason`` of every skipped report no row of ``allowed`` matches."""
    out = []
    for report in reports:
        reason = _reason(report)
        if not any(report.nodeid.startswith(node) and part in reason for node, part in allowed):
            out.append(f"{report.nodeid}: {reason}")
    return out


def pytest_sessionfinish(session, exitstatus):
    if hasattr(session.config, "workerinput"):  # an xdist worker: the controller checks
        return
    mode = _mode()
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if mode == "off" or reporter is None:
        return
    skipped = [r for r in reporter.stats.get("skipped", []) if getattr(r, "nodeid", None)]
    unexpected = unexpected_skips(skipped, allowed_skips())
    if not unexpected:
        return
    strict = mode == "strict"
    reporter.write_sep("=", f"{len(unexpected)} skip(s) not allowed on CI (tests/README.md)",
                       red=strict, yellow=not strict)
    for line in unexpected:
        reporter.write_line(line)
    if strict and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
