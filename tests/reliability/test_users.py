"""Many people at once, and people kept apart: 30 sign-ins through the login form at the same
moment; two hub users whose names used to map to one system account; per-user memory limits
(issue 13, items 4, 6 and 8)."""

from __future__ import annotations

import os
import pwd
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from echoes_lab.hub.accounts import system_username

from harness import login, processes

pytestmark = pytest.mark.integration

#: only the hub and the workshops' authenticator (the sign-in path); no other service
LEAN = {"reports": {"enabled": False}, "commons": {"enabled": False},
        "projects": {"enabled": False}, "gateway": {"enabled": False},
        "culler": {"enabled": False}, "spawner": {"mem_limit": "1G"}}


@pytest.fixture(scope="module")
def hub(module_hubs):
    return module_hubs(**LEAN)


def test_thirty_users_sign_in_at_once(hub):
    password = hub.secrets["user_password"]
    names = [f"room-{i:02d}" for i in range(30)]

    def sign_in(name: str) -> str:
        session = login(hub, name, password, next_url="/hub/home")
        return session.get(f"{hub.url}/hub/api/user", timeout=60).json()["name"]

    started = time.monotonic()
    with ThreadPoolExecutor(len(names)) as pool:
        futures = [pool.submit(sign_in, n) for n in names]
    errors = [repr(f.exception()) for f in futures if f.exception() is not None]
    print(f"30 sign-ins at once: {time.monotonic() - started:.1f} s")
    assert errors == []
    assert [f.result() for f in futures] == names


@pytest.mark.skipif(os.geteuid() != 0, reason="system accounts need the hub to run as root")
def test_names_that_collided_get_two_accounts_and_limits(hub):
    first, second = "jean.dupont", "jeandupont-c6314bc"  # one account before (issue 13)
    uids = {}
    for name in (first, second):
        hub.create_user(name)
        hub.start_server(name)
        uids[name] = pwd.getpwnam(system_username(name)).pw_uid
    assert uids[first] != uids[second]
    home = Path(hub.state) / "homes" / first
    assert home.stat().st_uid == uids[first] and (home.stat().st_mode & 0o077) == 0
    diary = home / "diary.txt"
    diary.write_text("jean only")
    os.chown(diary, uids[first], uids[first])
    # what the other user's kernel would run, under the other user's account
    peek = subprocess.run([sys.executable, "-c", (
        "try:\n"
        f"    print(open({str(diary)!r}).read())\n"
        "except PermissionError:\n"
        "    print('denied')\n")], user=uids[second], group=uids[second],
        capture_output=True, text=True, timeout=60)
    assert peek.stdout.strip() == "denied", peek

    # the server runs inside its user's memory group (cgroups, where this machine has them)
    for name in (first, second):
        server = next(iter(processes(
            lambda p, name=name: p.environ().get("JUPYTERHUB_USER") == name
            and p.environ().get("JUPYTERHUB_API_URL", "").startswith(
                f"http://127.0.0.1:{hub.settings['hub']['hub_port']}/"))))
        assert server.uids().real == uids[name]
        groups = dict(line.split(":", 2)[1:] for line in
                      Path(f"/proc/{server.pid}/cgroup").read_text().splitlines())
        memory = groups.get("memory", "")
        if "/echoes-lab/" not in memory:
            pytest.skip("no writable memory cgroup here: RLIMIT_DATA only")
        assert memory.endswith(f"/echoes-lab/{system_username(name)}")
        limit = Path("/sys/fs/cgroup/memory") / memory.lstrip("/") / "memory.limit_in_bytes"
        assert int(limit.read_text()) == 2**30

