"""Time from asking for a cluster to 2 ready workers: through the hub's Dask Gateway with
``echoes_lab.compute.cluster(workers=2)``, against a plain ``distributed.LocalCluster(n_workers=2)``,
in the same run on the same machine.

Both are timed inside a real kernel of a real user server (the hub's ``local`` profile on free
ports, started by the test harness), so both pay the same imports; each figure is the median of
``--repeat`` runs, each in a fresh kernel.

    .venv/bin/python benchmarks/cluster.py --repeat 3
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "integration"))
from harness import Hub, new_root  # noqa: E402

GATEWAY = r"""
import time
t0 = time.perf_counter()
from echoes_lab import compute
client = compute.cluster(workers=2)
client.wait_for_workers(2, timeout=120)
print("SECONDS", time.perf_counter() - t0)
client.shutdown()
"""

LOCAL = r"""
import time
t0 = time.perf_counter()
from distributed import Client, LocalCluster
cluster = LocalCluster(n_workers=2, threads_per_worker=1)
client = Client(cluster)
client.wait_for_workers(2, timeout=120)
print("SECONDS", time.perf_counter() - t0)
client.close(); cluster.close()
"""


def timed(hub: Hub, user: str, code: str) -> float:
    out = hub.execute(user, code, timeout=180)
    if out["errors"]:
        raise RuntimeError(out["errors"])
    return float(out["stdout"].split("SECONDS")[1].split()[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    hub = Hub(new_root("echoes-bench-")).start()
    try:
        hub.create_user("bench")
        hub.start_server("bench")
        gateway, local = [], []
        for _ in range(args.repeat):
            gateway.append(timed(hub, "bench", GATEWAY))
            local.append(timed(hub, "bench", LOCAL))
    finally:
        left = hub.shutdown()
        shutil.rmtree(hub.root, ignore_errors=True)
    g, l = statistics.median(gateway), statistics.median(local)
    print(f"cluster(workers=2) via the hub's gateway: median {g:.2f} s  runs {[round(x, 2) for x in gateway]}")
    print(f"LocalCluster(n_workers=2):               median {l:.2f} s  runs {[round(x, 2) for x in local]}")
    print(f"gateway / LocalCluster: {g / l:.2f}x")
    if left:
        print("left behind:", left)


if __name__ == "__main__":
    main()
