"""The gateway's fork server (``echoes_lab/hub/services/gateway/forkserver.py``) on a real hub.

The fork server runs as root and forks every user's scheduler and workers. Checked here
with two users' real clusters: each process runs with its user's ids only and no capability;
it cannot read the other cluster's TLS key; the fork server holds no cluster's token in its
memory (a later child, readable to its user, would inherit it) and no secret in its
environment; and its socket has no name and is held by no cluster process, so no user can
reach it. The user still sees their own processes (dumpable again after the uid change).
It is memory for clusters, not a fixed cost: none runs until the first cluster is asked for,
and it ends once no cluster has been active for ``gateway.fork_server_idle`` seconds.
"""

from __future__ import annotations

import os
import re
import sys
import warnings

import cloudpickle
import psutil
import pytest

from echoes_lab.hub.services.gateway.forkserver import MARKER

from harness import free_port, gone, processes, wait_for

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root (per-user accounts)"),
              # dask-gateway 2026.3.0: a closed Gateway's __del__ closes it again and raises
              pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")]

USERS = ("forka", "forkb")
#: seconds the fork server stays with no active cluster (the profile's default: 600)
FORK_SERVER_IDLE = 2

# the functions below run in the clusters' processes, which cannot import this module
cloudpickle.register_pickle_by_value(sys.modules[__name__])


def _gateway(hub, user: str):
    from dask_gateway import Gateway
    from dask_gateway.auth import JupyterHubAuth

    r = hub.api("POST", f"/users/{user}/tokens", json={
        "scopes": ["access:services!service=dask-gateway"], "expires_in": 600})
    assert r.status_code == 201, r.text
    port = hub.settings["gateway"]["scheduler_port"]
    return Gateway(f"{hub.url}/services/dask-gateway", proxy_address=f"gateway://127.0.0.1:{port}",
                   auth=JupyterHubAuth(api_token=r.json()["token"]))


def _forked(name: str) -> list[psutil.Process]:
    """Cluster ``name``'s processes that came from the fork server."""
    return processes(lambda p: MARKER in p.environ() and os.path.basename(p.cwd()) == name)


def _status(pid: int) -> dict[str, str]:
    with open(f"/proc/{pid}/status") as f:
        return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)


def _memory_holds(pid: int, needle: bytes) -> bool:
    """Whether ``needle`` is anywhere in the readable memory of process ``pid`` (read as root)."""
    with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/mem", "rb", 0) as mem:
        for line in maps:
            span, perms = line.split()[:2]
            if not perms.startswith("r"):
                continue
            start, end = (int(x, 16) for x in span.split("-"))
            try:
                mem.seek(start)
                if needle in mem.read(end - start):
                    return True
            except (OSError, ValueError, OverflowError):  # [vvar] and the like
                continue
    return False


def _read_other(path: str) -> str:
    try:
        with open(path, "rb") as f:
            return f"READ {len(f.read())} bytes"
    except OSError as exc:
        return type(exc).__name__


def test_forked_clusters_are_their_users_and_the_fork_server_holds_nothing(hub_factory):
    hub = hub_factory(gateway={
        "port": free_port(), "scheduler_port": free_port(), "api_port": free_port(),
        "max_workers": 1, "worker_memory": 1.0, "idle_timeout": 600,
        "fork_server_idle": FORK_SERVER_IDLE,
    })
    for user in USERS:
        hub.create_user(user)
        hub.start_server(user)  # makes the user's account, which their cluster runs under
    assert _fork_servers(hub) == [], "a fork server while nobody has asked for a cluster"
    clients, gateways, names, tokens = {}, [], {}, {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            for user in USERS:
                gateway = _gateway(hub, user)
                gateways.append(gateway)
                cluster = gateway.new_cluster(workers=1, shutdown_on_close=True)
                names[user] = cluster.name
                client = clients[user] = cluster.get_client()
                client.wait_for_workers(1, timeout=90)
                tokens[user] = client.run_on_scheduler(
                    lambda: os.environ["DASK_GATEWAY_API_TOKEN"])
            _check(hub, clients, names, tokens)
            _fork_server_killed(hub, gateways[0], clients, names)
            _fork_server_ends_when_idle(hub, gateways[1], clients)
        finally:
            for client in clients.values():
                client.cluster.shutdown()
                client.close()
            for gateway in gateways:
                gateway.close()


def _check(hub, clients, names, tokens) -> None:
    import pwd

    clusters = hub.state / "dask-gateway"
    for user in USERS:
        entry = pwd.getpwnam(f"jupyter-{user}")
        procs = wait_for(lambda u=user: len(_forked(names[u])) >= 3 and _forked(names[u]), 30,
                         f"{user}'s scheduler, nanny and worker from the fork server")
        for p in procs:
            # real, effective and saved ids all the user's; no supplementary group but theirs
            assert set(p.uids()) == {entry.pw_uid}, (p, p.uids())
            assert set(p.gids()) == {entry.pw_gid}, (p, p.gids())
            status = _status(p.pid)
            assert status["Groups"].split() in ([str(entry.pw_gid)], []), status["Groups"]
            for caps in ("CapPrm", "CapEff", "CapAmb"):
                assert int(status[caps], 16) == 0, (p, caps, status[caps])
            assert p.cwd() == str(clusters / names[user])
            # /proc shows what an exec'd process would (ps, and whatever finds a cluster's
            # processes by their environment), not the fork server's command and environment
            assert p.environ()["DASK_GATEWAY_CLUSTER_NAME"] == names[user]
            assert p.environ()["USER"] == f"jupyter-{user}"
            cmd = p.cmdline()
            assert cmd[1:3] in (["-m", "distributed.cli.dask_scheduler"],
                                ["-m", "distributed.cli.dask_worker"]), cmd
        # the user sees their own scheduler as one started with exec (dumpable again): its
        # working directory is readable to them, which needs ptrace-read access
        own = clients[user].run_on_scheduler(lambda: os.readlink(f"/proc/{os.getpid()}/cwd"))
        assert own == str(clusters / names[user])

    # each user's scheduler and worker cannot read the other cluster's TLS key (or list it)
    a, b = USERS
    key_b = str(clusters / names[b] / ".certs" / "dask.pem")
    assert os.path.getsize(key_b) > 0
    assert clients[a].run_on_scheduler(_read_other, key_b) == "PermissionError"
    assert set(clients[a].run(_read_other, key_b).values()) == {"PermissionError"}
    assert clients[b].run_on_scheduler(_read_other, key_b).startswith("READ")  # b's own

    server = _fork_server(hub)
    environ = server.environ()
    assert not [k for k in environ if "TOKEN" in k or "SECRET" in k or "KEY" in k], environ
    assert server.uids().real == 0 and server.cwd() == "/"
    # no cluster's token (both were sent through it) is in its memory, so none can reach a
    # later child; the clusters' own processes do hold theirs (the search finds a token)
    for user in USERS:
        assert re.fullmatch(r"[0-9a-f]{32,}", tokens[user])
        assert not _memory_holds(server.pid, tokens[user].encode()), user
    scheduler = min(_forked(names[a]), key=lambda p: p.create_time())
    assert _memory_holds(scheduler.pid, tokens[a].encode())
    assert not _memory_holds(scheduler.pid, tokens[b].encode())

    # its socket has no name in the file system (nothing for a user to connect to) and no
    # cluster process holds it (each child closed it before running user code)
    sockets = _socket_inodes(server.pid)
    assert sockets, "the fork server's socket to the gateway"
    with open("/proc/net/unix") as f:
        unnamed = {line.split()[-1] for line in f.read().splitlines()[1:]
                   if len(line.split()) == 7}
    assert sockets <= unnamed, "every socket of the fork server is unnamed"
    for user in USERS:
        for p in _forked(names[user]):
            assert not (_socket_inodes(p.pid) & sockets), p
            assert sorted(int(fd) for fd in os.listdir(f"/proc/{p.pid}/fd"))[:3] == [0, 1, 2]
    # and a user cannot look at the fork server's descriptors at all
    assert clients[a].run_on_scheduler(_list_fds, server.pid) == "PermissionError"


def _fork_server_killed(hub, gateway, clients, names) -> None:
    """kill -9 of the fork server: running clusters go on, the next one gets a new server."""
    a, b = USERS
    server = _fork_server(hub)
    running = {p.pid for p in _forked(names[b])}
    server.kill()
    server.wait(30)
    assert {p.pid for p in _forked(names[b])} == running
    assert clients[b].submit(sum, [1, 2, 3]).result(timeout=60) == 6

    clients[a].cluster.shutdown()
    clients[a].close()
    cluster = gateway.new_cluster(workers=1, shutdown_on_close=True)
    client = clients[a] = cluster.get_client()
    client.wait_for_workers(1, timeout=90)
    assert client.submit(lambda x: x * 7, 6, pure=False).result(timeout=60) == 42
    assert len(wait_for(lambda: len(_forked(cluster.name)) >= 3 and _forked(cluster.name), 30,
                        "the new cluster's processes from a new fork server")) >= 3
    assert _fork_server(hub).pid != server.pid
    assert "Fork server not running: starting it again" in hub.log_path.read_text()


def _fork_server_ends_when_idle(hub, gateway, clients) -> None:
    """No cluster left: the fork server ends after ``fork_server_idle`` s; the next cluster
    starts a new one (and is served by it)."""
    server = _fork_server(hub)
    for user in USERS:
        clients[user].cluster.shutdown()
        clients[user].close()
    wait_for(lambda: gone(server), FORK_SERVER_IDLE + 60, "the idle fork server to end")
    assert _fork_servers(hub) == []
    assert "Fork server ended: no cluster for" in hub.log_path.read_text()
    cluster = gateway.new_cluster(workers=1, shutdown_on_close=True)
    client = clients[USERS[1]] = cluster.get_client()
    client.wait_for_workers(1, timeout=90)
    assert client.submit(lambda x: x + 1, 41, pure=False).result(timeout=60) == 42
    assert len(wait_for(lambda: len(_forked(cluster.name)) >= 3 and _forked(cluster.name), 30,
                        "the cluster's processes from a new fork server")) >= 3
    assert _fork_server(hub).pid != server.pid


def _list_fds(pid: int) -> str:
    try:
        return str(os.listdir(f"/proc/{pid}/fd"))
    except OSError as exc:
        return type(exc).__name__


def _socket_inodes(pid: int) -> set[str]:
    found = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            found.add(target[len("socket:["):-1])
    return found


def _fork_server(hub) -> psutil.Process:
    """This hub's one fork server."""
    found = _fork_servers(hub)
    assert len(found) == 1, found
    return found[0]


def _fork_servers(hub) -> list[psutil.Process]:
    """This hub's fork servers: its gateway's children carrying the marker (other engineers'
    and tests' hubs may run theirs at the same time); a zombie has ended."""
    def is_server(p: psutil.Process) -> bool:
        parent = p.parent()
        return (MARKER in p.environ() and any(a.endswith("forkserver.py") for a in p.cmdline())
                and parent is not None
                and parent.environ().get("ECHOES_SETTINGS", "").startswith(str(hub.root)))

    return processes(is_server)
