"""Our services forked from one fork server (issue 36, :mod:`echoes_lab.hub.launch.zygote`).

On a real hub started by ``echoes-lab hub`` with the whole local profile: every Python service
(ours, the Dask Gateway's server, and the idle culler, run inside our services' shared host
process, :mod:`echoes_lab.hub.services.culler`) is a child of the zygote, shows its own
command and environment, runs under its own account (reports as ``reports.service_user`` under
root) and holds its own pid file (ours); its pages are mostly shared; a service killed with
SIGKILL is started again through the zygote; SIGTERM to the launcher ends the hub, the zygote
and every service within 30 s and leaves users' servers running.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import signal
import sys
import time

import psutil
import pytest
import requests

from harness import gone, processes, wait_for

pytestmark = pytest.mark.integration

ZYGOTE = "echoes_lab.hub.launch.zygote"
#: service name -> the module its command runs
FORKED = {"workshops": "echoes_lab.hub.services.host", "reports": "echoes_lab.hub.services.reports",
          "commons": "echoes_lab.hub.services.commons",
          "knowledge": "echoes_lab.hub.services.knowledge",
          "idle-culler": "echoes_lab.hub.services.host", "dask-gateway": "dask_gateway_server"}


def zygotes(hub) -> list[psutil.Process]:
    hub_pid = hub.hub_pid
    return processes(lambda p: ZYGOTE in " ".join(p.cmdline()) and p.ppid() == hub_pid)


def forked(hub) -> dict[str, psutil.Process]:
    """This hub's services by name, each the one process that runs it."""
    out = {}
    for name, procs in hub.service_processes().items():
        assert len(procs) == 1, (name, procs)
        out[name] = procs[0]
    return out


def settled(hub) -> dict[str, psutil.Process] | None:
    """:func:`forked` once every service runs as one process (services starting or stopping
    meanwhile: None)."""
    services = hub.service_processes()
    if not set(FORKED) <= set(services) or any(len(p) != 1 for p in services.values()):
        return None
    return {name: procs[0] for name, procs in services.items()}


def answers(hub, name: str) -> bool:
    """The service answers through the proxy (its page, or a redirect to sign in)."""
    try:
        r = requests.get(f"{hub.url}/services/{name}/", allow_redirects=False, timeout=10)
    except requests.ConnectionError:
        return False
    return r.status_code in (200, 302)


@pytest.fixture(scope="module")
def hub(module_hubs):
    return module_hubs(culler={"enabled": True})


def test_each_service_forked_with_its_command_account_and_pid_file(hub):
    [zygote] = zygotes(hub)
    services = forked(hub)
    assert set(FORKED) <= set(services), services
    for name, module in FORKED.items():
        p = services[name]
        assert p.ppid() == zygote.pid, f"{name} is not the fork server's child"
        # /proc shows the command and environment JupyterHub gave it, not the zygote's
        assert p.cmdline()[:3] == [sys.executable, "-m", module]
        assert p.environ()["JUPYTERHUB_SERVICE_NAME"] in (name, "workshops")
        assert p.environ()["JUPYTERHUB_API_TOKEN"]
        assert os.getsid(p.pid) == p.pid  # a session of its own, as JupyterHub starts it
        if not name.startswith(("idle-culler", "dask-gateway")):  # ours: each its pid file
            folder = hub.state / ("reports" if name == "reports" else "services")
            assert (folder / f"{name}.pid").read_text().strip() == str(p.pid)
    # the zygote holds no token of the hub's
    assert not any(k.startswith("JUPYTERHUB_") for k in zygote.environ())
    # the gateway's proxy is the gateway's own child (a command), and no fork server of
    # schedulers runs while nobody has a cluster (tests/reliability/test_gateway_forkserver.py)
    children = services["dask-gateway"].children()
    assert len(children) == 1 and children[0].cmdline()[0].endswith("dask-gateway-proxy"), [
        c.cmdline() for c in children]

    reports = services["reports"]
    if os.geteuid() == 0:
        nobody = pwd.getpwnam(hub.settings["reports"].get("service_user", "nobody"))
        assert reports.uids().real == reports.uids().effective == nobody.pw_uid
        assert reports.gids().real == nobody.pw_gid
        assert services["commons"].uids().effective == 0
        # not dumpable: a copy of a root process's memory, which that account may not read
        assert os.stat(f"/proc/{reports.pid}/environ").st_uid == 0
    # they answer through the proxy as before
    assert all(answers(hub, name) for name in ("workshops", "reports", "commons", "knowledge"))


def test_forked_services_share_the_zygotes_pages(hub):
    services = forked(hub)
    for name in ("reports", "commons", "idle-culler", "dask-gateway"):
        info = services[name].memory_full_info()
        # most of what each imported is the zygote's, shared (PSS divides it)
        assert info.uss < 0.6 * info.rss, (name, info)
        assert info.pss < 0.75 * info.rss, (name, info)


def test_killed_service_forked_again(hub):
    before = forked(hub)
    victim = before["commons"]
    victim.kill()
    wait_for(lambda: gone(victim), 10, "the commons service to die")

    def back():
        now = (settled(hub) or {}).get("commons")
        return now if now is not None and now.pid != victim.pid else None

    # the hub polls its services every 3 s (zygote.SERVICE_POLL_INTERVAL)
    again = wait_for(back, 60, "the commons service to be started again", interval=1)
    [zygote] = zygotes(hub)
    assert again.ppid() == zygote.pid
    pid_file = hub.state / "services" / "commons.pid"
    wait_for(lambda: pid_file.read_text().strip() == str(again.pid), 30,
             "the new commons service's pid file")
    wait_for(lambda: answers(hub, "commons"), 30, "the commons service to answer")
    assert "Service commons exited" in hub.log_tail(2000)
    others = {n: p.pid for n, p in wait_for(lambda: settled(hub), 30, "every service").items()
              if n != "commons"}
    assert others == {n: p.pid for n, p in before.items() if n != "commons"}


def test_killed_fork_server_its_services_end_and_come_back_as_commands(hub):
    [zygote] = zygotes(hub)
    before = wait_for(lambda: settled(hub), 30, "every service running")
    zygote.kill()
    # each child's parent-death signal: none is left running without its fork server
    wait_for(lambda: all(gone(before[n]) for n in FORKED), 30,
             "the forked services to end with their fork server")

    def back():
        now = settled(hub)
        return now if now and all(now[n].pid != before[n].pid for n in FORKED) else None

    # the hub polls forked services every 3 s, then starts each as a command
    now = wait_for(back, 60, "every service started again", interval=1)
    assert {n: now[n].ppid() for n in FORKED} == {n: hub.hub_pid for n in FORKED}
    assert not zygotes(hub)
    wait_for(lambda: all(answers(hub, n) for n in ("workshops", "reports", "commons")), 30,
             "the services to answer")


def test_launcher_stays_the_hubs_parent_without_what_preparing_it_took(hub):
    """Issue 36: once the hub runs, the launcher (same pid) is the small supervising module,
    still the hub's parent; no settings machinery (pydantic's compiled core) in its memory."""
    launcher = psutil.Process(hub.proc.pid)
    assert "echoes_lab.hub.launch.supervision" in launcher.cmdline()
    assert psutil.Process(hub.hub_pid).ppid() == launcher.pid
    with open(f"/proc/{launcher.pid}/maps") as f:
        maps = f.read()
    assert "python3" in maps and "pydantic_core" not in maps and "_sqlite3" not in maps


def test_sigterm_to_launcher_ends_all_within_30_s_servers_stay(hub):
    hub.create_user("zyg-ada")
    hub.start_server("zyg-ada")
    api = f"127.0.0.1:{hub.settings['hub']['hub_port']}/"
    server = processes(lambda p: p.environ().get("JUPYTERHUB_USER") == "zyg-ada"
                       and api in p.environ().get("JUPYTERHUB_API_URL", ""))
    assert server
    side = [*zygotes(hub), *forked(hub).values()]
    started = time.monotonic()
    hub.stop_hub(timeout=35)
    wait_for(lambda: all(gone(p) for p in side), 30, "the zygote and every service to end")
    took = time.monotonic() - started
    assert took < 30, f"{took:.1f} s"
    assert not any(gone(p) for p in server), "a user's server must outlive the hub"
    for p in server:  # the hub is gone: the module's clean-up would count it as left behind
        with contextlib.suppress(psutil.NoSuchProcess):
            p.send_signal(signal.SIGTERM)
    wait_for(lambda: all(gone(p) for p in server), 30, "zyg-ada's server to stop")
