"""The reliability suite: attacks and kills on real hubs from ``tests/integration/harness.py``.

pytest puts a test file's own folder on ``sys.path`` (``rootdir``-relative "prepend" import
mode, no ``__init__.py`` here), which is how ``tests/integration`` imports ``harness``; this
folder adds ``tests/integration`` so its tests import the same harness. The hub fixtures
(``hub_factory``, ``module_hubs``) are in ``tests/conftest.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
