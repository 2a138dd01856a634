"""Fixtures shared by the whole suite.

Real datasets from the workplace's ``shared/`` folder (beside the repository) are used when
present and skipped cleanly when absent; they are never copied into the repository.
"""

from __future__ import annotations

from pathlib import Path

import pytest

# a skip that tests/README.md does not allow fails a CI run (the plugin's docstring says how)
from skip_guard import pytest_sessionfinish  # noqa: F401

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



class Hubs:
    """Real hubs (``tests/integration/harness.py``) for a test or a module.

    Call it to make one (``start=False``: made, not started; keyword arguments: settings
    sections to override). At the end every hub is stopped and nothing it ran may be left
    running; when a test failed meanwhile, the hubs' logs are kept in ``test-artifacts/``.
    """

    def __init__(self, request):
        self.request = request
        self.failed_before = request.session.testsfailed
        self.hubs = []

    def __call__(self, start: bool = True, **overrides):
        from harness import Hub, new_root

        hub = Hub(new_root(), **overrides)
        self.hubs.append(hub)
        return hub.start(timeout=120) if start else hub  # 120 s: a busy CI machine

    def close(self) -> None:
        import shutil

        keep = self.request.session.testsfailed > self.failed_before
        artifacts = REPO / "test-artifacts"
        left = []
        for i, hub in enumerate(self.hubs):
            left += hub.shutdown()
            if keep and hub.log_path.exists():
                artifacts.mkdir(exist_ok=True)
                shutil.copy(hub.log_path, artifacts / f"{self.request.node.name}-hub{i}.log")
            shutil.rmtree(hub.root, ignore_errors=True)
        assert not left, f"processes left behind: {left}"


@pytest.fixture
def hub_factory(request):
    """Hubs for one test (see :class:`Hubs`)."""
    hubs = Hubs(request)
    yield hubs
    hubs.close()


@pytest.fixture(scope="module")
def module_hubs(request):
    """Hubs shared by a module's tests (see :class:`Hubs`)."""
    hubs = Hubs(request)
    yield hubs
    hubs.close()
