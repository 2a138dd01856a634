"""Slurm against one machine, on the two-node cluster of the tests: Dask workers, and users'
servers started by the hub (the ``slurm`` profile against the ``local`` one).

Run as root (it makes network namespaces, as tests/integration/test_slurm.py does):

    PYTEST_XDIST_WORKER=gw9 .venv/bin/python benchmarks/slurm.py [--rounds 3] \
        [--parts dask,hub,lost]

``dask``: seconds from ``sbatch`` to RUNNING for a one-core job; seconds from
``echoes_lab.compute.cluster(workers=2)`` to two connected workers, through Slurm (one job per
node) and with local processes. ``hub``: seconds from the REST API's "start alice's server" to
a server that answers, on a slurm-profile hub (the server a Slurm job) and on a local-profile
hub (a process beside the hub); then servers per node: five users start at once with one core
each on nodes of two CPUs, and the servers running on each node and those left waiting in the
queue are counted. ``lost``: a node killed under a running server, seconds until Slurm marks
it down and until the hub shows the server stopped. Everything made is undone at the end
(PYTEST_XDIST_WORKER picks the harness's port range, away from tests running beside it).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "integration"))

from slurm_cluster import SlurmCluster, slurm_profile  # noqa: E402


def _until(predicate, timeout: float = 180) -> float:
    start = time.perf_counter()
    while not predicate():
        if time.perf_counter() - start > timeout:
            raise TimeoutError
        time.sleep(0.05)
    return time.perf_counter() - start


def _two_workers(client) -> float:
    return _until(lambda: len(client.scheduler_info()["workers"]) == 2)


def _report(name: str, values: list[float]) -> None:
    print(f"{name:36s} median {statistics.median(values):6.2f} s  "
          f"(min {min(values):.2f}, max {max(values):.2f}, n={len(values)})")


def _spawn_seconds(hub, user: str) -> float:
    """From the REST API's start to a server the hub reports ready, then stop it."""
    t0 = time.perf_counter()
    r = hub.api("POST", f"/users/{user}/server")
    assert r.status_code in (201, 202), r.text
    _until(lambda: (hub.api("GET", f"/users/{user}").json()["servers"].get("") or {})
           .get("ready"))
    seconds = time.perf_counter() - t0
    hub.api("DELETE", f"/users/{user}/server")
    _until(lambda: not hub.api("GET", f"/users/{user}").json()["servers"])
    return seconds


def hub_part(cluster: SlurmCluster, rounds: int) -> None:
    from harness import Hub, new_root

    quiet = {"commons": {"enabled": False}, "knowledge": {"enabled": False},
             "projects": {"enabled": False}, "culler": {"enabled": False},
             "reports": {"enabled": False}}
    hubs = []
    try:
        on_slurm = Hub(new_root(), **quiet)
        hubs.append(on_slurm)
        slurm_profile(on_slurm, cluster)
        local = Hub(new_root(), **quiet, gateway={"enabled": False})
        hubs.append(local)
        for hub in hubs:
            hub.start(timeout=180)
            hub.create_user("bench-alice")
            _spawn_seconds(hub, "bench-alice")  # the account and home made once, not timed
        times = {name: [_spawn_seconds(hub, "bench-alice") for _ in range(rounds)]
                 for name, hub in (("server start through Slurm", on_slurm),
                                   ("server start, local profile", local))}
        for name, values in times.items():
            _report(name, values)

        users = [f"bench-u{i}" for i in range(5)]
        for user in users:
            on_slurm.create_user(user)
            on_slurm.api("POST", f"/users/{user}/server")
        ready = lambda: [u for u in users  # noqa: E731
                         if (on_slurm.api("GET", f"/users/{u}").json()["servers"].get("")
                             or {}).get("ready")]
        _until(lambda: len(ready()) == 4)
        rows = cluster.run("squeue", "-h", "-o", "%T %N").split()
        per_node = {n: rows.count(n) for n in cluster.nodes}
        print(f"5 servers of 1 core on 2 nodes of 2 CPUs: running per node {per_node}, "
              f"pending {rows.count('PENDING')}")
    finally:
        for hub in hubs:
            left = hub.shutdown()
            if left:
                print("left running (killed):", left)
            shutil.rmtree(hub.root, ignore_errors=True)


def lost_part(cluster: SlurmCluster) -> None:
    """A node killed under a running server: seconds until Slurm marks it down and until the
    hub no longer lists the server (the ``slurm`` profile's hub polls each job every 10 s)."""
    from harness import Hub, new_root

    hub = Hub(new_root(), **{s: {"enabled": False} for s in (
        "commons", "knowledge", "projects", "culler", "reports", "workshops")})
    try:
        slurm_profile(hub, cluster)
        hub.start(timeout=180)
        hub.create_user("bench-lost")
        hub.start_server("bench-lost", timeout=180)
        [(_, (_, node))] = cluster.jobs().items()
        t0 = time.perf_counter()
        cluster.stop_node(node)
        down = _until(lambda: cluster.node_states().get(node, "").startswith("down"))
        shown = _until(lambda: not hub.api("GET", "/users/bench-lost").json()["servers"])
        print(f"node killed: Slurm marks it down after {down:.1f} s, the hub shows the server "
              f"stopped after {time.perf_counter() - t0:.1f} s ({shown:.1f} s later)")
    finally:
        left = hub.shutdown()
        if left:
            print("left running (killed):", left)
        shutil.rmtree(hub.root, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--parts", default="dask,hub,lost")
    args = parser.parse_args()
    parts = args.parts.split(",")
    for part, run in (("hub", lambda c: hub_part(c, args.rounds)), ("lost", lost_part)):
        if part in parts:
            cluster = SlurmCluster(nodes=2).start()
            try:
                run(cluster)
            finally:
                cluster.close()
    if "dask" in parts:
        dask_part(args.rounds)
    print(f"load average at the end: {os.getloadavg()}")


def dask_part(rounds: int) -> None:
    import dask
    import dask_jobqueue  # noqa: F401 (its defaults in Dask's config before any set())

    from echoes_lab import compute

    cluster = SlurmCluster(nodes=2).start()
    try:
        os.environ["SLURM_CONF"] = str(cluster.conf)
        job_s, slurm_s, local_s = [], [], []
        for _ in range(rounds):
            t0 = time.perf_counter()
            job = cluster.run("sbatch", "--parsable", "-t", "1", "--mem=100",
                              "--wrap", "sleep 20").strip()
            _until(lambda j=job: cluster.jobs().get(j, ("",))[0] == "RUNNING")
            job_s.append(time.perf_counter() - t0)
            cluster.run("scancel", job)
            _until(lambda: not cluster.jobs())

            with tempfile.TemporaryDirectory() as logs, dask.config.set({
                    "gateway.address": None, "jobqueue.slurm.queue": "echoes",
                    "jobqueue.slurm.python": sys.executable,
                    "jobqueue.slurm.log-directory": logs,
                    "jobqueue.slurm.scheduler-options": {"host": cluster.host_addr}}):
                t0 = time.perf_counter()
                client = compute.cluster(workers=2, worker_cores=2, worker_memory=1.5)
                _two_workers(client)
                slurm_s.append(time.perf_counter() - t0)
                client.shutdown()
                _until(lambda: not cluster.jobs())
            with dask.config.set({"gateway.address": None, "jobqueue.slurm.queue": None}):
                t0 = time.perf_counter()
                client = compute.cluster(workers=2)
                _two_workers(client)
                local_s.append(time.perf_counter() - t0)
                client.close()
        for name, values in (("sbatch to RUNNING", job_s),
                             ("2 Dask workers through Slurm", slurm_s),
                             ("2 local Dask workers", local_s)):
            _report(name, values)
    finally:
        cluster.close()


if __name__ == "__main__":
    main()
