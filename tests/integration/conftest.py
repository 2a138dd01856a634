"""Fixtures that start real hubs (see ``harness.py``) and check that nothing is left behind."""

from __future__ import annotations

import shutil

import pytest

from harness import CHROMIUM, CHROMIUM_FLAGS, Hub, new_root


@pytest.fixture
def hub_factory():
    """Start hubs with settings overrides; stops them and checks nothing is left behind."""
    hubs: list[Hub] = []

    def make(start: bool = True, **overrides) -> Hub:
        hub = Hub(new_root(), **overrides)
        hubs.append(hub)
        return hub.start() if start else hub

    yield make
    leftovers = []
    for hub in hubs:
        leftovers += hub.shutdown()
        shutil.rmtree(hub.root, ignore_errors=True)
    assert not leftovers, f"processes left behind: {leftovers}"


@pytest.fixture(scope="module")
def hub():
    """One running hub shared by a test module."""
    h = Hub(new_root()).start()
    yield h
    left = h.shutdown()
    shutil.rmtree(h.root, ignore_errors=True)
    assert not left, f"processes left behind: {left}"



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
