"""Dask Gateway as a managed service of a real hub: clusters from a user's real kernel.

One hub, on free ports, with its gateway; user A asks for a cluster from code in their own
server's kernel (``echoes_lab.compute.cluster``, with the environment the hub gives), user B
holds their own hub token. Nothing here is mocked: the gateway, its proxy, the schedulers and
workers are the real processes.
"""

from __future__ import annotations

import os
import re
import time
import warnings

import psutil
import pytest
import requests

from echoes_lab.hub.services.gateway.forkserver import MARKER

from harness import free_port, processes, wait_for

pytestmark = pytest.mark.integration

# seconds; the profile's default is half an hour. Long enough that ada's cluster, idle once
# her kernel's code ran, outlives the checks below on a machine at load 18 (bea's cluster
# start alone took 10 s there; with 20 s ada's cluster ended by idleness mid-test)
IDLE = 40
START = 180  # seconds for a hub with all its services to start on a busy machine

KERNEL_CODE = r"""
import dask.array as da
from echoes_lab import compute
from echoes_lab.errors import ClusterError

def refused(label, **kwargs):
    try:
        compute.cluster(**kwargs)
        print(label, "ACCEPTED")
    except ClusterError as exc:
        print(label, "REFUSED", str(exc).replace("\n", " "))

refused("WORKERS", workers=5)
refused("CORES", workers=1, worker_cores=3)
refused("MEMORY", workers=1, worker_memory=64)
client = compute.cluster(workers=2)
client.wait_for_workers(2, timeout=60)
x = da.arange(1_000_000, chunks=100_000)
print("SUM", int((x * x).sum().compute()))
print("NAME", client.cluster.name)
print("LINK", client.dashboard_link)
print("HTML", client.dashboard_link in client._repr_html_())
refused("CLUSTERS", workers=0)
# keep the cluster past this kernel, to see the hub end it with the server
client.cluster.shutdown_on_close = False
"""


def _gateway(hub, token):
    from dask_gateway import Gateway
    from dask_gateway.auth import JupyterHubAuth

    port = hub.settings["gateway"]["scheduler_port"]
    return Gateway(f"{hub.url}/services/dask-gateway", proxy_address=f"gateway://127.0.0.1:{port}",
                   auth=JupyterHubAuth(api_token=token))


def _cluster_processes(name: str) -> list[psutil.Process]:
    """The scheduler, nannies and workers the gateway started for cluster ``name``: exec'd
    ones show the cluster's environment, ones from the fork server work in its folder."""
    def ours(p: psutil.Process) -> bool:
        environ = p.environ()
        if environ.get("DASK_GATEWAY_CLUSTER_NAME") == name:
            return True
        return MARKER in environ and os.path.basename(p.cwd()) == name

    return processes(ours)


def _token(hub, user: str) -> str:
    """A hub token of ``user`` for the gateway, as the user would make on the hub's token page."""
    r = hub.api("POST", f"/users/{user}/tokens", json={
        "scopes": ["access:services!service=dask-gateway"], "expires_in": 600})
    assert r.status_code == 201, r.text
    return r.json()["token"]


def _names(gateway) -> set[str]:
    return {c.name for c in gateway.list_clusters()}


def test_clusters_per_user_through_the_hub(hub_factory):
    hub = hub_factory(gateway={
        "port": free_port(), "scheduler_port": free_port(), "api_port": free_port(),
        "max_workers": 2, "max_worker_cores": 2, "max_worker_memory": 2.0, "worker_memory": 1.0,
        "clusters_per_user": 1, "idle_timeout": IDLE,
    })
    for name in ("ada", "bea"):
        hub.create_user(name)
        hub.start_server(name)

    out = hub.execute("ada", KERNEL_CODE, timeout=150)
    assert out["errors"] == [], f"{out}\n{hub.log_tail()}"
    lines = dict(line.split(" ", 1) for line in out["stdout"].splitlines())
    # sum of k^2 for k < n is (n-1) n (2n-1) / 6
    n = 1_000_000
    assert int(lines["SUM"]) == (n - 1) * n * (2 * n - 1) // 6
    name = lines["NAME"]
    assert lines["LINK"] == f"/services/dask-gateway/clusters/{name}/status"
    assert lines["HTML"] == "True"
    assert lines["WORKERS"].startswith("REFUSED") and "limit of 2 workers" in lines["WORKERS"]
    assert lines["CORES"].startswith("REFUSED") and "worker_cores must be <= 2" in lines["CORES"]
    assert lines["MEMORY"].startswith("REFUSED") and "worker_memory" in lines["MEMORY"]
    assert lines["CLUSTERS"].startswith("REFUSED") and "allows per user (1)" in lines["CLUSTERS"]

    # the dashboard answers through the hub's proxy
    dash = requests.get(hub.url + lines["LINK"], timeout=30)
    assert dash.status_code == 200 and "bokeh" in dash.text.lower()
    # the lab's Dask panel (dask-labextension) answers in ada's server
    panel = hub.server_get("ada", "/dask/clusters")
    assert panel.status_code == 200 and isinstance(panel.json(), list)

    # the scheduler and both workers run under ada's own account when the hub is root
    procs = wait_for(lambda: len(_cluster_processes(name)) >= 3 and _cluster_processes(name), 20,
                     "ada's scheduler and workers")
    expected = "jupyter-ada" if os.geteuid() == 0 else psutil.Process().username()
    assert {p.username() for p in procs} == {expected}

    bea_token = _token(hub, "bea")
    ada, bea = _gateway(hub, _token(hub, "ada")), _gateway(hub, bea_token)
    assert name in _names(ada)
    # a cluster of bea's that nobody uses: its idle timeout runs while the checks below do
    idle = bea.new_cluster(shutdown_on_close=False)
    idle_name = idle.name
    idle.close(shutdown=False)
    created = time.monotonic()
    assert idle_name in _names(bea) and idle_name not in _names(ada)

    # bea can neither list, nor connect to, nor stop ada's cluster (the gateway's REST API, as
    # the client calls it, with a timeout: a refusal must come back, not hang)
    api = f"{hub.url}/services/dask-gateway/api/v1/clusters/"
    as_bea = {"Authorization": f"jupyterhub {bea_token}"}
    listed = requests.get(api, headers=as_bea, timeout=30)
    assert listed.status_code == 200 and name not in listed.json()
    assert requests.get(api + name, headers=as_bea, timeout=30).status_code in (403, 404)
    assert requests.delete(api + name, headers=as_bea, timeout=30).status_code in (403, 404)
    assert name in _names(ada), hub.log_tail()

    # a token without the gateway's scope is refused outright
    r = hub.api("POST", "/users/ada/tokens", json={"scopes": ["read:users:name!user"]})
    if r.status_code == 201:
        with pytest.raises(Exception, match="401|403|Unauthorized|Forbidden"):  # noqa: B017
            _gateway(hub, r.json()["token"]).list_clusters()

    # keep ada's cluster busy (not idle) while her server stops: the hub ends it anyway
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        busy = ada.connect(name).get_client()
        busy.submit(time.sleep, 120, pure=False)
        started = time.monotonic()
        hub.api("DELETE", "/users/ada/server")
        wait_for(lambda: not hub.api("GET", "/users/ada").json().get("servers"), 60,
                 "ada's server to stop")
        wait_for(lambda: not _cluster_processes(name), 30, "ada's cluster processes to end")
        assert time.monotonic() - started < IDLE, "stopped by the idle timeout, not with the server"
        busy.close()
    assert name not in _names(bea)

    # bea's idle cluster (made above) ends by itself after the idle timeout
    wait_for(lambda: idle_name not in _names(bea), IDLE * 3, "the idle cluster to stop")
    assert time.monotonic() - created >= IDLE * 0.75
    wait_for(lambda: not _cluster_processes(idle_name), 30, "the idle cluster's processes to end")
    assert re.search(r"Stopped Dask cluster \S+ of ada with the server", hub.log_path.read_text())
    ada.close()
    bea.close()


# dask-gateway 2026.3.0: a closed Gateway's __del__ closes it again and raises (loop stopped)
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_cluster_survives_a_hub_restart(hub_factory):
    """SIGTERM to the hub and a new start: a user's running cluster is found again and used.

    The gateway keeps its clusters in ``<state>/dask-gateway.sqlite`` (secrets encrypted with
    ``<state>/dask-gateway.key``), both 0600, and leaves clusters running when it stops.
    """
    hub = hub_factory(start=False, gateway={
        "port": free_port(), "scheduler_port": free_port(), "api_port": free_port(),
        "max_workers": 1, "worker_memory": 1.0, "idle_timeout": 600,
    }).start(timeout=START)
    hub.create_user("cleo")
    hub.start_server("cleo")  # makes cleo's account, which her cluster runs under
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gateway = _gateway(hub, _token(hub, "cleo"))
        cluster = gateway.new_cluster(shutdown_on_close=False)
        name = cluster.name
        cluster.scale(1)
        client = cluster.get_client()
        client.wait_for_workers(1, timeout=60)
        assert client.submit(sum, [1, 2, 3]).result(timeout=30) == 6
        before = {p.pid for p in _cluster_processes(name)}
        client.close()
        cluster.close(shutdown=False)
        assert len(before) >= 2  # the scheduler and the worker (and its nanny)

        for secret in ("dask-gateway.sqlite", "dask-gateway.key"):
            assert (hub.state / secret).stat().st_mode & 0o777 == 0o600, secret

        hub.stop_hub()
        # the cluster outlived the hub and its gateway
        assert {p.pid for p in _cluster_processes(name)} == before
        hub.start(timeout=START)

        again = _gateway(hub, _token(hub, "cleo"))
        assert name in _names(again)
        client = again.connect(name).get_client()
        client.wait_for_workers(1, timeout=60)
        assert client.submit(lambda x: x * 7, 6, pure=False).result(timeout=30) == 42
        assert {p.pid for p in _cluster_processes(name)} == before  # the same processes
        client.close()
        gateway.close()
        again.close()
    # cleo's server stops (hub_factory's shutdown): her cluster ends with it, nothing left
