"""SIGTERM and SIGINT to the JupyterHub process itself, after a user's session (issue 27).

An operator's ``kill``, systemd or a container runtime signals the hub's own pid
(``.state/jupyterhub.pid``), not the ``echoes-lab hub`` launcher that stops the services all at
once. JupyterHub then stops its managed services one after another, each with SIGINT and 30 s
of patience before SIGTERM. A hub started as a background job of a non-interactive shell
(``make hub &``) has SIGINT ignored and handed that on to its services: the idle culler, which
has no handler of its own, held the shutdown for 30 s, and everything else after it (34.5 s in
the issue). The hub process (``echoes_lab.hub.app``) now stops them at once and hands them a
working SIGINT. The session here is the issue's: a user's server with a notebook's kernel, an open
collaboration room, a Voilà app's kernel, a Dask cluster and a running report; then the hub's
pid is signalled.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
import warnings
from urllib.parse import urlparse

import psutil
import pytest
import requests
import websocket

from echoes_lab.hub.client import execute

from harness import gone, processes, wait_for, wait_gone

pytestmark = pytest.mark.integration

#: what the issue asks: the hub, its proxy and every service gone within this many seconds
DEADLINE = 30
#: how a kernel's command line reads: the ECHOES kernel spec's launcher, a report batch's
#: template (its forked kernels keep its command line), any other IPython kernel
KERNELS = ("echoes_lab._kernel", "echoes_lab.runs.kernels", "ipykernel")
KERNEL = {"kernelspec": {"name": "echoes", "display_name": "ECHOES", "language": "python"}}
APP = {"cells": [{"cell_type": "code", "execution_count": None, "id": "c1", "metadata": {},
                  "outputs": [], "source": "print('the app', 6 * 7)"}],
       "metadata": KERNEL, "nbformat": 4, "nbformat_minor": 5}
#: a report that is still running when the hub is signalled
SLOW = {"cells": [
    {"cell_type": "code", "execution_count": None, "id": "p1", "outputs": [],
     "metadata": {"tags": ["parameters"]}, "source": "seconds = 600"},
    {"cell_type": "code", "execution_count": None, "id": "c1", "metadata": {}, "outputs": [],
     "source": "import time\nprint('started', flush=True)\ntime.sleep(seconds)"}],
    "metadata": KERNEL, "nbformat": 4, "nbformat_minor": 5}


def server_tree(hub, user: str) -> list:
    """``user``'s server (found by its environment) and its kernels."""
    api = f"127.0.0.1:{hub.settings['hub']['hub_port']}/"
    servers = processes(lambda p: p.environ().get("JUPYTERHUB_USER") == user
                        and api in p.environ().get("JUPYTERHUB_API_URL", ""))
    tree = []
    for server in servers:
        tree.append(server)
        with contextlib.suppress(psutil.Error):  # it ended while we looked
            tree += server.children(recursive=True)
    return [p for p in tree if not gone(p)]


def hub_side(hub, keep: list) -> list[str]:
    """What still runs of the hub (launcher, hub, proxy, services, clusters), not ``keep``."""
    pids = {p.pid for p in keep}
    left = []
    for p in {p.pid: p for p in [*hub.alive(), *hub.strays()]}.values():
        if p.pid in pids or gone(p):
            continue
        with contextlib.suppress(psutil.Error):  # it ended meanwhile
            left.append(f"{p.pid} {' '.join(p.cmdline())[:120]}")
    return left


def session(hub, user: str) -> list:
    """The issue's session in ``user``'s lab → (what must stay open while the hub stops, the
    name of the user's Dask cluster)."""
    token = {"Authorization": f"token {hub.token}"}
    lab = f"{hub.url}/user/{user}"
    netloc = urlparse(hub.url).netloc

    # a notebook's kernel, with state in it (left running, as in an open lab)
    r = requests.post(f"{lab}/api/kernels", json={"name": "echoes"}, headers=token, timeout=60)
    assert r.status_code == 201, r.text
    auth = [f"Authorization: {token['Authorization']}"]
    ws = websocket.create_connection(
        f"ws://{netloc}/user/{user}/api/kernels/{r.json()['id']}/channels", header=auth, timeout=60)
    out = execute(ws, "import echoes_lab\nx = 6 * 7\nprint('x', x)", user, 60)
    assert out["errors"] == [] and "x 42" in out["stdout"], out

    # a collaboration room on a notebook, its websocket open
    r = requests.put(f"{lab}/api/contents/app.ipynb", headers=token, timeout=30,
                     json={"type": "notebook", "format": "json", "content": APP})
    assert r.status_code in (200, 201), r.text
    r = requests.put(f"{lab}/api/collaboration/session/app.ipynb", headers=token, timeout=30,
                     json={"format": "json", "type": "notebook"})
    assert r.status_code in (200, 201), r.text
    room = r.json()
    room_ws = websocket.create_connection(
        f"ws://{netloc}/user/{user}/api/collaboration/room/json:notebook:{room['fileId']}"
        f"?sessionId={room['sessionId']}", header=auth, timeout=60)
    assert room_ws.recv()  # the room's first sync message: it is open

    # a Voilà app (its kernel stays for the page's widgets)
    page = requests.get(f"{lab}/voila/render/app.ipynb", headers=token, timeout=120)
    assert page.status_code == 200 and "the app 42" in page.text, page.text[-2000:]

    # a Dask cluster from the hub's gateway, as the user
    from dask_gateway import Gateway
    from dask_gateway.auth import JupyterHubAuth

    r = hub.api("POST", f"/users/{user}/tokens", json={
        "scopes": ["access:services!service=dask-gateway"], "expires_in": 600})
    assert r.status_code == 201, r.text
    gw = hub.settings["gateway"]
    gateway = Gateway(f"{hub.url}/services/dask-gateway",
                      proxy_address=f"gateway://127.0.0.1:{gw['scheduler_port']}",
                      auth=JupyterHubAuth(api_token=r.json()["token"]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # dask-gateway warns about the closed event loop
        cluster = gateway.new_cluster(shutdown_on_close=False)
    name = cluster.name
    cluster.close()  # the client only; the cluster runs on
    gateway.close()

    assert wait_for(lambda: cluster_processes(name), 60, "the cluster's scheduler")

    # a report running in the user's 'reports' server (the reports service drives its kernel)
    r = requests.put(f"{lab}/api/contents/slow.ipynb", headers=token, timeout=30,
                     json={"type": "notebook", "format": "json", "content": SLOW})
    assert r.status_code in (200, 201), r.text
    r = hub.api("POST", f"/users/{user}/tokens", json={
        "scopes": ["access:services!service=reports"], "expires_in": 600})
    reports = {"Authorization": f"token {r.json()['token']}"}
    api = f"{hub.url}/services/reports/api"
    r = requests.post(f"{api}/schedules", headers=reports, timeout=60,
                      json={"name": "slow", "notebook": "slow.ipynb", "cron": "0 6 * * *"})
    assert r.status_code == 201, r.text
    r = requests.post(f"{api}/schedules/{r.json()['id']}/run", headers=reports, json={},
                      timeout=60)
    assert r.status_code == 202, r.text
    run = f"{api}/runs/{r.json()['id']}"

    def report_kernel():
        state = requests.get(run, headers=reports, timeout=30).json()["status"]
        assert state in ("queued", "running"), state
        return state == "running" and processes(
            lambda p: p.environ().get("JUPYTERHUB_USER") == user
            and p.environ().get("JUPYTERHUB_SERVER_NAME") == "reports"
            and any(kernel in " ".join(p.cmdline()) for kernel in KERNELS))

    wait_for(report_kernel, 120, "the report's kernel in the 'reports' server", interval=0.5)
    return [room_ws], name


def cluster_processes(name: str) -> list:
    """A gateway cluster's scheduler and workers: the user's, like their server, they outlive
    the gateway (``stop_clusters_on_shutdown = False``) and end with the user's server."""
    return processes(lambda p: p.environ().get("DASK_GATEWAY_CLUSTER_NAME") == name)


def signal_hub(hub, signum: int, server: list, user: str | None = None) -> float:
    """Signal the hub's own pid; wait until nothing of the hub runs; return the seconds taken.

    ``user``'s server trees are looked up again at each check: a kernel its servers start
    after ``server`` was listed (a report's, once its notebook was checked) is theirs too."""
    pid = hub.hub_pid
    assert pid is not None and pid != hub.proc.pid, "the hub's pid file names the launcher"

    def left() -> list[str]:
        return hub_side(hub, [*server, *(server_tree(hub, user) if user else [])])

    started = time.monotonic()
    os.kill(pid, signum)
    try:
        wait_for(lambda: not left(), DEADLINE,
                 f"the hub's processes to end after {signal.Signals(signum).name}", interval=0.1)
    except TimeoutError:
        pytest.fail(f"still running {DEADLINE} s after {signal.Signals(signum).name} to the "
                    f"hub: {left()}\n{hub.log_tail(40)}")
    took = time.monotonic() - started
    print(f"{signal.Signals(signum).name}: the hub's processes ended in {took:.1f} s")
    return took


def test_sigterm_to_the_hub_after_a_session_then_sigint(hub_factory):
    hub = hub_factory(start=False)
    hub.start(timeout=120, sigint_ignored=True)  # as `make hub &` from a script starts it
    hub.create_user("sig")
    hub.start_server("sig")
    keep, cluster = session(hub, "sig")
    try:
        # the servers (default, reports), the notebook's, the Voilà app's and the report's
        # kernels; the user's Dask cluster
        server = server_tree(hub, "sig")
        assert len(server) >= 5, server
        users = [*server, *cluster_processes(cluster)]
        took = signal_hub(hub, signal.SIGTERM, users, "sig")
        assert took < DEADLINE
        assert all(not gone(p) for p in users), "a user's server, kernels and cluster stay up"
    finally:
        for ws in keep:
            ws.close()

    # the next hub finds the servers, and reaches them through its new proxy
    hub.start(timeout=120)
    model = hub.api("GET", "/users/sig").json()
    assert model["servers"][""]["ready"] and model["servers"]["reports"]["ready"], model
    assert hub.server_get("sig", "/api").status_code == 200
    assert {p.pid for p in server} <= {p.pid for p in server_tree(hub, "sig")}
    kernels = json.loads(hub.server_get("sig", "/api/kernels").text)
    assert len(kernels) >= 2, kernels  # the notebook's and the app's kernels survived
    # stopped through the new hub, the servers take the cluster with them
    for path in ("/users/sig/server", "/users/sig/servers/reports"):
        assert hub.api("DELETE", path).status_code in (202, 204), path
    wait_gone(users, 60, "sig's servers, kernels and cluster to end with the servers' stop")

    # SIGINT (Ctrl-C to a hub in the foreground, or `kill -INT`) ends it the same way
    assert signal_hub(hub, signal.SIGINT, []) < DEADLINE
