"""Fixtures shared by the whole suite.

Real datasets from the workplace's ``shared/`` folder (beside the repository) are used when
present and skipped cleanly when absent; they are never copied into the repository.
"""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The small fixture files kept in ``tests/data``."""
    return DATA


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The workplace's ``shared/`` folder beside the repository, or skip."""
    shared = REPO.parent / "shared"
    if not shared.is_dir():
        pytest.skip(f"{shared} is absent: real shared datasets are not available here")
    return shared


@pytest.fixture(scope="session")
def tate_dir(shared_dir: Path) -> Path:
    """The Tate collection snapshot (69,202 artworks, CC0), or skip."""
    tate = shared_dir / "datasets" / "tate-collection"
    if not (tate / "artworks.csv.gz").is_file():
        pytest.skip(f"{tate}/artworks.csv.gz is absent")
    return tate


@pytest.fixture(scope="session")
def demo_data(tmp_path_factory) -> Path:
    """The demo datasets generated from their seeds (as the hub's shared folder holds them)."""
    import subprocess
    import sys

    out = tmp_path_factory.mktemp("demo-data")
    subprocess.run([sys.executable, "-m", "echoes_lab.demo", "--out", str(out)], check=True)
    return out


#: ``make test`` runs the suite on three pytest-xdist workers (``--dist loadgroup``): the real-hub
#: tests in two groups, each run one after another on one worker (a module's hub is shared by its
#: tests), beside each other and beside the tests without a hub. These modules form the first
#: group, every other real-hub module the second: about 200 s each, measured serially.
HUB_GROUP_A = {
    "test_lifecycle.py", "test_gateway.py", "test_browser_face.py", "test_browser.py",
    "test_browser_collaboration.py", "test_services.py", "test_users.py",
}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.get_closest_marker("integration") or item.get_closest_marker("browser"):
            group = "hub-a" if item.path.name in HUB_GROUP_A else "hub-b"
            item.add_marker(pytest.mark.xdist_group(group))
