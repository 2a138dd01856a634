"""Time from asking for a cluster to 2 ready workers: through the hub's Dask Gateway with
``echoes_lab.compute.cluster(workers=2)``, against a plain
``distributed.LocalCluster(n_workers=2)``, in the same run on the same machine.

Both are timed inside a real kernel of a real user server (the hub's ``local`` profile on free
ports, started by the test harness), so both pay the same imports; each figure is the median of
``--repeat`` runs, each in a fresh kernel.

The gateway's fork server of schedulers and workers starts with the first cluster asked for and
ends after ``gateway.fork_server_idle`` seconds with none active (:data:`FORK_SERVER_IDLE` here),
so each repeat times two gateway clusters: the **first after idle** (no fork server running: its
start and imports are on the path) and a **warm** one (the fork server kept by another cluster of
the same user with no workers, a scheduler idling, as when a user already has a cluster or had
one within the idle period), then the ``LocalCluster``.

    .venv/bin/python benchmarks/cluster.py --repeat 3
    .venv/bin/python benchmarks/cluster.py --repeat 3 --no-fork-server   # as before issue 36
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "integration"))
from harness import Hub, new_root, processes, wait_for  # noqa: E402

#: the bench hub's ``gateway.fork_server_idle`` (seconds): short, so that a cold run need not
#: wait the profile's 600
FORK_SERVER_IDLE = 2

CPU = r"""
import os, psutil
def cpu_of(procs):
    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
            total += t.user + t.system + t.children_user + t.children_system
        except psutil.Error:
            pass
    return total
"""

GATEWAY = CPU + r"""
import time
k0 = cpu_of([psutil.Process()])
t0 = time.perf_counter()
from echoes_lab import compute
client = compute.cluster(workers=2)
client.wait_for_workers(2, timeout=120)
print("SECONDS", time.perf_counter() - t0)
name = client.cluster.name
def of_cluster(p):
    # exec'd processes show the cluster's environment; forked ones (the gateway's fork server)
    # show the fork server's and work in the cluster's folder
    try:
        env = p.environ()
        return (env.get("DASK_GATEWAY_CLUSTER_NAME") == name
                or ("ECHOES_GATEWAY_FORK_SERVER" in env and os.path.basename(p.cwd()) == name))
    except psutil.Error:
        return False
procs = [p for p in psutil.process_iter() if of_cluster(p)]
print("CPU", cpu_of(procs), "PROCS", len(procs), "KERNEL", cpu_of([psutil.Process()]) - k0)
client.shutdown()
"""

LOCAL = CPU + r"""
import time
k0 = cpu_of([psutil.Process()])
t0 = time.perf_counter()
from distributed import Client, LocalCluster
cluster = LocalCluster(n_workers=2, threads_per_worker=1)
client = Client(cluster)
client.wait_for_workers(2, timeout=120)
print("SECONDS", time.perf_counter() - t0)
procs = psutil.Process().children(recursive=True)
print("CPU", cpu_of(procs), "PROCS", len(procs), "KERNEL", cpu_of([psutil.Process()]) - k0)
client.close(); cluster.close()
"""

#: what the gateway logs on a cluster's way to ready, in order (``hub.log``, INFO); the workers
#: asked for with the cluster are submitted with "is running", before the client's scale call
STAGES = [("request", "POST /api/v1/clusters/"), ("created", "Created cluster"),
          ("submitted", "Cluster {} submitted"), ("scheduler up", "Cluster {} is running"),
          ("worker 1 submitted", "submitted"), ("worker 2 submitted", "submitted"),
          ("worker 1 running", "is running"), ("worker 2 running", "is running")]


def gateway_timeline(log: str, name: str) -> list[tuple[str, float]]:
    """Seconds from the cluster request to each stage, from the gateway's log lines."""
    import re
    from datetime import datetime

    stamps = []
    for line in log.splitlines():
        if "DaskGateway]" not in line:
            continue
        m = re.search(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+) DaskGateway\]", line)
        if m:
            stamps.append((datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S.%f"), line))
    created = next(i for i, (_, line) in enumerate(stamps) if f"Created cluster {name}" in line)
    # the request's first line: the client's POST just before (a fork server started by this
    # cluster may be logged in between; the successful POST is logged after "Created")
    start = next((i for i in range(created - 1, max(created - 4, -1), -1)
                  if "POST /api/v1/clusters/ " in stamps[i][1]), created)
    t0, out, i = stamps[start][0], [], start
    for label, pattern in STAGES:
        pattern = pattern.format(name)
        while i < len(stamps):
            when, line = stamps[i]
            i += 1
            worker_line = "Worker" in line
            if pattern in line and ("worker" in label) == worker_line:
                out.append((label, (when - t0).total_seconds()))
                break
    return out


def timed(hub: Hub, user: str, code: str) -> dict:
    out = hub.execute(user, code, timeout=180)
    if out["errors"]:
        raise RuntimeError(out["errors"])
    words = out["stdout"].split()
    return {"seconds": float(words[words.index("SECONDS") + 1]),
            "cpu": float(words[words.index("CPU") + 1]),
            "procs": int(words[words.index("PROCS") + 1]),
            "kernel": float(words[words.index("KERNEL") + 1])}


def fork_servers(hub: Hub) -> list:
    """This hub's gateway fork server, if one runs (other hubs may run theirs meanwhile)."""
    def match(p) -> bool:
        parent = p.parent()
        return (any(a.endswith("forkserver.py") for a in p.cmdline()) and parent is not None
                and parent.environ().get("ECHOES_SETTINGS", "").startswith(str(hub.root)))

    return processes(match)


def keeper(hub: Hub, user: str):
    """A cluster of ``user`` with no workers, holding the fork server (shut down after use)."""
    from dask_gateway import Gateway
    from dask_gateway.auth import JupyterHubAuth

    r = hub.api("POST", f"/users/{user}/tokens", json={
        "scopes": ["access:services!service=dask-gateway"], "expires_in": 3600})
    r.raise_for_status()
    gateway = Gateway(f"{hub.url}/services/dask-gateway",
                      proxy_address=f"gateway://127.0.0.1:{hub.settings['gateway']['scheduler_port']}",
                      auth=JupyterHubAuth(api_token=r.json()["token"]))
    return gateway, gateway.new_cluster(workers=0, shutdown_on_close=True)


def report(label: str, runs: list[dict], local: list[dict]) -> None:
    secs, lo = [r["seconds"] for r in runs], [r["seconds"] for r in local]
    print(f"{label:50} median {statistics.median(secs):5.2f} s  best {min(secs):5.2f} s  "
          f"runs {[round(x, 2) for x in secs]}")
    own = statistics.median(r["cpu"] for r in runs)
    kernel = statistics.median(r["kernel"] for r in runs)
    print(f"{'':50} CPU: its {runs[0]['procs']} processes {own:4.2f} s + the kernel's own "
          f"{kernel:4.2f} s (medians)")
    if runs is not local:
        cpu = [statistics.median(r["cpu"] + r["kernel"] for r in x) for x in (runs, local)]
        print(f"{'':50} / LocalCluster: median "
              f"{statistics.median(secs) / statistics.median(lo):.2f}x, best "
              f"{min(secs) / min(lo):.2f}x, CPU {cpu[0] / cpu[1]:.2f}x")


def main() -> None:
    import re
    import warnings

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-fork-server", action="store_true",
                        help="the gateway execs each scheduler and worker (as before issue 36) "
                             "instead of forking them from its fork server")
    args = parser.parse_args()
    forking = not args.no_fork_server
    if not forking:  # passed to the gateway service by echoes_lab.hub.services.gateway
        os.environ["ECHOES_GATEWAY_FORK_SERVER"] = "0"
    # three clusters per user: the keeper, the one timed, and one still stopping
    hub = Hub(new_root("echoes-bench-"), hub={"log_level": "INFO"},
              gateway={"fork_server_idle": FORK_SERVER_IDLE, "clusters_per_user": 3}
              ).start(timeout=300)
    timelines: dict[str, list] = {"cold": [], "warm": []}

    def gateway_run(kind: str) -> dict:
        before = hub.log_path.read_text(errors="replace")
        out = timed(hub, "bench", GATEWAY)
        log = hub.log_path.read_text(errors="replace")[len(before):]
        names = re.findall(r"Created cluster (\w+)", log)
        if names:
            timelines[kind].append(gateway_timeline(log, names[0]))
        return out

    try:
        hub.create_user("bench")
        hub.start_server("bench")
        cold, warm, local = [], [], []
        for _ in range(args.repeat):
            if forking:
                wait_for(lambda: not fork_servers(hub), FORK_SERVER_IDLE + 60,
                         "the gateway's fork server to end (idle)")
                run = gateway_run("cold")
                # the fork server's start-up (its imports) is this cluster's cost too
                servers = fork_servers(hub)
                for server in servers:
                    times = server.cpu_times()
                    run["cpu"] += times.user + times.system
                    run["procs"] += 1
                if not servers:
                    print("note: the fork server ended before its CPU was read; a cold run's "
                          "CPU below leaves it out")
                cold.append(run)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # dask-gateway's event loop at close
                    gateway, kept = keeper(hub, "bench")
                    try:
                        wait_for(lambda: fork_servers(hub), 60, "the fork server")
                        warm.append(gateway_run("warm"))
                    finally:
                        kept.shutdown()
                        gateway.close()
            else:
                warm.append(gateway_run("warm"))
            local.append(timed(hub, "bench", LOCAL))
    finally:
        left = hub.shutdown()
        shutil.rmtree(hub.root, ignore_errors=True)
    report("LocalCluster(n_workers=2)", local, local)
    if cold:
        report("gateway, first cluster after idle (fork server start)", cold, local)
    report("gateway, warm" if forking else "gateway, no fork server", warm, local)
    for kind, found in timelines.items():
        for t in found:
            print(f"gateway timeline, {kind} (s from the request):",
                  ", ".join(f"{label} {sec:.2f}" for label, sec in t))
    if left:
        print("left behind:", left)


if __name__ == "__main__":
    main()
