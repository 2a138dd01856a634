"""Fixtures of the reliability suite: real hubs from ``tests/integration/harness.py``.

pytest puts a test file's own folder on ``sys.path`` (``rootdir``-relative "prepend" import
mode, no ``__init__.py`` here), which is how ``tests/integration`` imports ``harness``; this
folder adds ``tests/integration`` so its tests import the same harness.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))

from harness import Hub, new_root  # noqa: E402


@pytest.fixture
def hub_factory():
    """Make hubs (started or not) with settings overrides; at the end stop them and check that
    nothing they ran is left behind."""
    hubs: list[Hub] = []

    def make(start: bool = True, **overrides) -> Hub:
        hub = Hub(new_root("echoes-rel-"), **overrides)
        hubs.append(hub)
        return hub.start(timeout=120) if start else hub  # a busy CI machine

    yield make
    leftovers = []
    for hub in hubs:
        leftovers += hub.shutdown()
        shutil.rmtree(hub.root, ignore_errors=True)
    assert not leftovers, f"processes left behind: {leftovers}"
