"""Fixtures of the real-hub tests: a hub shared by a module, and a browser.

``hub_factory`` and ``module_hubs`` (hubs that are stopped, checked for leftovers and whose logs
are kept when a test fails) are in ``tests/conftest.py``; the harness is ``harness.py``.
"""

from __future__ import annotations

import pytest

from harness import CHROMIUM, CHROMIUM_FLAGS


@pytest.fixture(scope="module")
def hub(module_hubs):
    """One running hub shared by a test module."""
    return module_hubs()


@pytest.fixture(scope="module")
def browser():
    """Debian's chromium driven by Playwright (headless), one per test module."""
    from pathlib import Path

    if not Path(CHROMIUM).exists():
        pytest.fail("chromium is not installed: 'make test' installs it with apt-get")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
        yield b
        b.close()
