"""The hub's life cycle on a real hub: SIGTERM, kill -9, killed services, a foreign port.

Issue 13, items 4-6: a hub with a workshop and a signed-in trainer must start again
(JupyterHub 6.1's ``KeyError: 'users'``); SIGTERM stops the hub, its proxy and every service
within 30 s and leaves users' servers running; after ``kill -9`` the next start stops what the
dead hub left (no doubled services, no schedule firing twice); a killed service comes back, and
SIGTERM still ends everything in time while one cannot (its port taken).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta

import psutil
import pytest

from harness import BIN, REPO, gone, login, processes, wait_for

pytestmark = pytest.mark.integration

MATERIALS = REPO / "tests" / "data" / "workshops" / "materials-v1"


def server_tree(hub, user: str) -> list[psutil.Process]:
    """The processes of ``user``'s server: the server (by its environment) and its kernels."""
    api = f"127.0.0.1:{hub.settings['hub']['hub_port']}/"
    found = []
    for p in processes(lambda p: p.environ().get("JUPYTERHUB_USER") == user
                       and api in p.environ().get("JUPYTERHUB_API_URL", "")):
        with contextlib.suppress(psutil.Error):  # it ended while we looked
            found += [p, *p.children(recursive=True)]
    return found


def hub_side(hub, keep: list[psutil.Process]) -> list[str]:
    """What still runs of the hub itself (hub, proxy, services), not counting ``keep``."""
    pids = {p.pid for p in keep}
    left = {p.pid: p for p in [*hub.alive(), *hub.strays()] if p.pid not in pids}
    out = []
    for p in left.values():
        with contextlib.suppress(psutil.NoSuchProcess):
            out.append(f"{p.pid} {' '.join(p.cmdline())[:120]}")
    return out


def service_counts(hub) -> dict[str, int]:
    return {name: len(procs) for name, procs in hub.service_processes().items()}


def lap(what: str, since: float) -> float:
    """Print how long a step took (pytest -s shows it); return the new start."""
    now = time.monotonic()
    print(f"{what}: {now - since:.1f} s")
    return now


#: the services this test needs (trainers' roles) and the two that are not ours; the full set
#: is in the kill -9 test below. Each service costs 2-4 s at every start of the hub.
LEAN = {"reports": {"enabled": False}, "commons": {"enabled": False},
        "projects": {"enabled": False}}


def test_sigterm_stops_all_and_restart_keeps_servers_and_trainers(hub_factory):
    hub = hub_factory(start=False, **LEAN)
    t = time.monotonic()
    hub.start(timeout=120, session=True)  # as `make hub` in a terminal: the group gets the signal
    t = lap("start", t)
    ends = (datetime.now() + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M")
    hub.cli("workshop", "create", "wl", "--seats", "1", "--trainer", "tina",
            "--materials", str(MATERIALS), "--ends", ends)
    t = lap("workshop create", t)
    password = hub.secrets["user_password"]
    tina = login(hub, "tina", password, next_url="/hub/home")
    # the trainer's role (authenticator-managed) reaches the seat: the role has a member now
    assert tina.get(f"{hub.url}/hub/api/users/wl-01", timeout=30).status_code == 200
    hub.create_user("alice")
    hub.start_server("alice")
    t = lap("alice's server", t)
    server = server_tree(hub, "alice")
    assert server, "alice's server process was not found"
    services = service_counts(hub)
    assert services and all(n == 1 for n in services.values()), services

    started = time.monotonic()
    hub.stop_hub(timeout=35)
    took = time.monotonic() - started
    t = lap("stop", t)
    assert took < 30, f"the hub took {took:.1f} s to stop"
    assert hub_side(hub, server) == []
    assert not any(gone(p) for p in server), "a user's server must survive a hub restart"

    # JupyterHub 6.1.1 failed here with KeyError: 'users' (manage_roles, a trainer signed in)
    hub.start(timeout=120, session=True)
    t = lap("restart", t)
    assert "KeyError" not in hub.log_tail(200)
    model = hub.api("GET", "/users/alice").json()
    assert model["servers"][""]["ready"]
    assert hub.server_get("alice", "/api").status_code == 200  # through the new proxy
    assert [p.pid for p in server_tree(hub, "alice")][:1] == [server[0].pid]
    tina = login(hub, "tina", password, next_url="/hub/home")
    assert tina.get(f"{hub.url}/hub/api/users/wl-01", timeout=30).status_code == 200
    assert service_counts(hub) == services


def test_kill9_then_one_set_of_services_killed_ones_come_back_sigterm_in_time(hub_factory):
    hub = hub_factory(start=False)
    hub.start(timeout=120, session=True)
    hub.create_user("bob")
    hub.start_server("bob")
    before = hub.service_processes()
    names = set(before)
    assert {"idle-culler", "dask-gateway", "workshops"} <= names, names
    assert all(len(v) == 1 for v in before.values()), before
    # kill -9 of `make hub`'s process group (the launcher): the hub, in its own session, gets
    # SIGTERM from the kernel (parent-death signal) and stops its proxy and services
    first = [hub.hub_pid, *(p.pid for procs in before.values() for p in procs)]
    os.killpg(hub.proc.pid, signal.SIGKILL)
    hub.proc.wait(10)
    wait_for(lambda: all(gone(pid) for pid in first), 30,
             "the hub and its services to stop after the launcher was killed")
    hub.start(timeout=120, session=True)
    before = hub.service_processes()
    assert set(before) == names and all(len(v) == 1 for v in before.values()), before
    assert hub.server_get("bob", "/api").status_code == 200
    old = {p.pid for procs in before.values() for p in procs}

    # kill -9 of the launcher's whole process group and of the hub itself: the proxy and the
    # services (their own sessions) are left behind, holding their ports
    hub_pid = hub.hub_pid
    os.killpg(hub.proc.pid, signal.SIGKILL)
    os.kill(hub_pid, signal.SIGKILL)
    hub.proc.wait(10)
    wait_for(lambda: gone(hub_pid), 10, "the hub to die")

    hub.start(timeout=120, session=True)
    after = hub.service_processes()
    assert {n: len(v) for n, v in after.items()} == {n: 1 for n in names}
    assert not old & {p.pid for procs in after.values() for p in procs}
    assert all(gone(pid) for pid in old)
    assert hub.server_get("bob", "/api").status_code == 200

    # SIGKILL of every service: the hub starts each again (it polls them every 30 s); the
    # gateway's port is kept by its own proxy (dask-gateway-proxy, a child in a session of its
    # own, may outlive it, as in issue 13) or else by a stranger, so the gateway cannot come
    # back and the hub restarts it in a loop: SIGTERM must still end everything within 30 s
    # (JupyterHub 6.1 could hang there, in ``check_services_health``)
    killed = {name: procs[0].pid for name, procs in after.items()}
    for p in {procs[0].pid: procs[0] for procs in after.values()}.values():  # hosts: once
        p.kill()
    wait_for(lambda: gone(killed["dask-gateway"]), 10, "the gateway to die")
    holder = hold_port(hub.settings["gateway"]["port"])
    try:
        def all_back():
            now = hub.service_processes()
            # the gateway's own proxy, if it outlived it, is listed under the gateway's name
            back = {n for n, v in now.items()
                    if len(v) == 1 and v[0].pid not in killed.values()} - {"dask-gateway"}
            return (back == names - {"dask-gateway"}
                    and "Service dask-gateway exited" in hub.log_tail(2000))

        wait_for(all_back, 60, "every service to be started again", interval=1)
        # the state is intact: users, the user's server, the services answering through the proxy
        assert hub.api("GET", "/users/bob").json()["servers"][""]["ready"]
        assert hub.server_get("bob", "/api").status_code == 200
        password = hub.secrets["user_password"]
        carol = login(hub, "carol", password, next_url="/hub/home")
        wait_for(lambda: carol.get(f"{hub.url}/services/reports/", timeout=30).status_code
                 == 200, 30, "the reports service to answer")
        hub.api("DELETE", "/users/bob/server")
        wait_for(lambda: not server_tree(hub, "bob"), 30, "bob's server to stop")

        started = time.monotonic()
        hub.stop_hub(timeout=35)
        took = time.monotonic() - started
        seen = [line for line in hub.log_tail(2000).splitlines() if any(
            w in line for w in ("exited with status", "AttributeError", "did not stop"))]
        print(f"stopped in {took:.1f} s; " + " | ".join(line[-90:] for line in seen))
        assert took < 30, f"the hub took {took:.1f} s to stop"
        assert hub_side(hub, []) == [], hub.log_tail(40)
        assert holder is None or holder.poll() is None  # not the hub's: left alone
    finally:
        if holder is not None:
            holder.kill()
            holder.wait()


def hold_port(port: int) -> subprocess.Popen | None:
    """A stranger's process listening on ``port``, unless something listens there already."""
    if any(c.laddr.port == port for c in psutil.net_connections("inet")
           if c.status == psutil.CONN_LISTEN):
        return None
    holder = subprocess.Popen(
        [sys.executable, "-c", "import socket, time\n"
         "s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
         f"s.bind(('127.0.0.1', {port})); s.listen()\n"
         "print('listening', flush=True); time.sleep(120)"], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "listening"
    return holder


def test_foreign_process_on_a_port_is_named_not_killed(hub_factory):
    hub = hub_factory(start=False)
    port = hub.settings["gateway"]["scheduler_port"]
    holder = subprocess.Popen(
        [sys.executable, "-c", "import socket, sys, time\n"
         f"s = socket.socket(); s.bind(('127.0.0.1', {port})); s.listen()\n"
         "print('listening', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "listening"
        command = [str(BIN / "echoes-lab"), "hub", "--settings", str(hub.settings_file)]
        done = subprocess.run(command, capture_output=True, text=True, timeout=60)
        assert done.returncode == 3, done.stderr
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
        assert f"port {port}" in lines[0] and "'gateway.scheduler_port'" in lines[0]
        assert f"pid {holder.pid}" in lines[0] and "import socket" in lines[0]
        assert holder.poll() is None, "a process that is not the hub's must not be stopped"
    finally:
        holder.kill()
        holder.wait()
