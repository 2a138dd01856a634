"""The gateway keeps its clusters on disk (issue 13.5): a private database and key in the state
directory, read by dask-gateway-server's own backend. The restart itself is tested with a real
hub in ``tests/integration/test_gateway.py::test_cluster_survives_a_hub_restart``."""

from __future__ import annotations

import os

import pytest
from traitlets.config import Config

from echoes_lab.hub.services.gateway.config import persist_clusters


def _mode(path) -> int:
    return os.stat(path).st_mode & 0o777


def test_database_and_key_are_private_and_kept(tmp_path):
    from dask_gateway_server.backends.local import UnsafeLocalBackend

    c = Config()
    persist_clusters(c, tmp_path)
    assert _mode(tmp_path / "dask-gateway.key") == 0o600
    assert _mode(tmp_path / "dask-gateway.sqlite") == 0o600
    backend = UnsafeLocalBackend(config=c)  # dask-gateway-server validates the combination
    assert backend.db_url == f"sqlite:///{tmp_path / 'dask-gateway.sqlite'}"
    assert backend.stop_clusters_on_shutdown is False
    first = backend.db_encrypt_keys

    os.chmod(tmp_path / "dask-gateway.key", 0o644)  # e.g. restored from a backup
    again = Config()
    persist_clusters(again, tmp_path)
    assert UnsafeLocalBackend(config=again).db_encrypt_keys == first  # same key every start
    assert _mode(tmp_path / "dask-gateway.key") == 0o600


def test_a_link_in_place_of_the_key_is_refused(tmp_path):
    (tmp_path / "elsewhere").write_text("not a key")
    os.symlink(tmp_path / "elsewhere", tmp_path / "dask-gateway.key")
    with pytest.raises(OSError):
        persist_clusters(Config(), tmp_path)


def test_records_of_a_lost_key_are_set_aside(tmp_path):
    (tmp_path / "dask-gateway.sqlite").write_bytes(b"encrypted with a key that is gone")
    persist_clusters(Config(), tmp_path)
    aside = [p.name for p in tmp_path.iterdir() if ".unreadable-" in p.name]
    assert len(aside) == 1
    assert (tmp_path / "dask-gateway.sqlite").stat().st_size == 0


def test_stopping_a_cluster_signals_only_its_own_processes():
    """A cluster's pid whose process ended may name someone's server by now (pids are reused):
    the gateway runs as root and must leave such a process alone, and stop its own."""
    import asyncio
    import subprocess
    import sys
    from types import SimpleNamespace

    from echoes_lab.hub.services.gateway.config import EchoesLocalBackend

    backend = EchoesLocalBackend(sigint_timeout=1, sigterm_timeout=1, sigkill_timeout=1)
    sleep = [sys.executable, "-c", "import time; print('up', flush=True); time.sleep(60)"]
    stranger = subprocess.Popen(sleep, stdout=subprocess.PIPE)  # a reused pid's new process
    worker = subprocess.Popen(sleep, stdout=subprocess.PIPE,
                              env={**os.environ, "DASK_GATEWAY_CLUSTER_NAME": "c1"})
    try:
        assert stranger.stdout.readline() == worker.stdout.readline() == b"up\n"
        asyncio.run(backend.stop_process(stranger.pid))
        assert stranger.poll() is None
        assert not backend._check_status(SimpleNamespace(state={"pid": stranger.pid}))
        assert backend._check_status(SimpleNamespace(state={"pid": worker.pid}))
        asyncio.run(backend.stop_process(worker.pid))
        assert worker.wait(5) is not None
    finally:
        for p in (stranger, worker):
            p.kill()
            p.wait()


def test_forked_processes_are_recognised_by_their_cluster_folder(tmp_path):
    """A process from the fork server shows the fork server's environment block (marker, no
    cluster name): it is a cluster's only while it works in a cluster's folder, so the fork
    server itself (working in /) and a stranger with the marker elsewhere are left alone."""
    import subprocess
    import sys
    from types import SimpleNamespace

    from echoes_lab.hub.services.gateway.config import EchoesLocalBackend
    from echoes_lab.hub.services.gateway.forkserver import MARKER

    clusters = tmp_path / "dask-gateway"
    (clusters / "c1").mkdir(parents=True)
    backend = EchoesLocalBackend(clusters_directory=str(clusters))
    sleep = [sys.executable, "-c", "import time; print('up', flush=True); time.sleep(60)"]
    env = {**os.environ, MARKER: "1"}
    env.pop("DASK_GATEWAY_CLUSTER_NAME", None)
    procs = {where: subprocess.Popen(sleep, stdout=subprocess.PIPE, env=env, cwd=where)
             for where in (clusters / "c1", "/", tmp_path)}
    try:
        for p in procs.values():
            assert p.stdout.readline() == b"up\n"
        seen = {str(where): backend._check_status(SimpleNamespace(state={"pid": p.pid}))
                for where, p in procs.items()}
        assert seen == {str(clusters / "c1"): True, "/": False, str(tmp_path): False}
    finally:
        for p in procs.values():
            p.kill()
            p.wait()
