"""Time from asking for a cluster to 2 ready workers: through the hub's Dask Gateway with
``echoes_lab.compute.cluster(workers=2)``, against a plain
``distributed.LocalCluster(n_workers=2)``, in the same run on the same machine.

Both are timed inside a real kernel of a real user server (the hub's ``local`` profile on free
ports, started by the test harness), so both pay the same imports; each figure is the median of
``--repeat`` runs, each in a fresh kernel.

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
from harness import Hub, new_root  # noqa: E402

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
    start = created - 1 if "POST /api/v1/clusters/" in stamps[created - 1][1] else created
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-fork-server", action="store_true",
                        help="the gateway execs each scheduler and worker (as before issue 36) "
                             "instead of forking them from its fork server")
    args = parser.parse_args()
    if args.no_fork_server:  # passed to the gateway service by echoes_lab.hub.services.gateway
        os.environ["ECHOES_GATEWAY_FORK_SERVER"] = "0"
    hub = Hub(new_root("echoes-bench-"), hub={"log_level": "INFO"}).start(timeout=300)
    timelines = []
    try:
        hub.create_user("bench")
        hub.start_server("bench")
        gateway, local = [], []
        for _ in range(args.repeat):
            before = hub.log_path.read_text(errors="replace")
            gateway.append(timed(hub, "bench", GATEWAY))
            log = hub.log_path.read_text(errors="replace")[len(before):]
            import re
            names = re.findall(r"Created cluster (\w+)", log)
            if names:
                timelines.append(gateway_timeline(log, names[0]))
            local.append(timed(hub, "bench", LOCAL))
    finally:
        left = hub.shutdown()
        shutil.rmtree(hub.root, ignore_errors=True)
    for label, runs in (("cluster(workers=2) via the hub's gateway", gateway),
                        ("LocalCluster(n_workers=2)", local)):
        secs = [r["seconds"] for r in runs]
        print(f"{label:42} median {statistics.median(secs):5.2f} s  best {min(secs):5.2f} s  "
              f"runs {[round(x, 2) for x in secs]}")
        own = statistics.median(r["cpu"] for r in runs)
        kernel = statistics.median(r["kernel"] for r in runs)
        print(f"{'':42} CPU: its {runs[0]['procs']} processes {own:4.2f} s + the kernel's own "
              f"{kernel:4.2f} s (medians)")
    g = [r["seconds"] for r in gateway]
    lo = [r["seconds"] for r in local]
    cpu = [statistics.median(r["cpu"] + r["kernel"] for r in runs) for runs in (gateway, local)]
    print(f"gateway / LocalCluster: median {statistics.median(g) / statistics.median(lo):.2f}x, "
          f"best {min(g) / min(lo):.2f}x, CPU {cpu[0] / cpu[1]:.2f}x")
    for t in timelines:
        print("gateway timeline (s from the request):",
              ", ".join(f"{label} {sec:.2f}" for label, sec in t))
    if left:
        print("left behind:", left)


if __name__ == "__main__":
    main()
