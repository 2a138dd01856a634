"""Dask workers through Slurm against local workers, on the two-node cluster of the tests.

Run as root (it makes network namespaces, as tests/integration/test_slurm.py does):

    .venv/bin/python benchmarks/slurm.py [--rounds 3]

Prints, per round: seconds from ``sbatch`` to RUNNING for a one-core job; seconds from
``echoes_lab.compute.cluster(workers=2)`` to two connected workers, through Slurm (one job per
node) and with local processes. Everything made is undone at the end.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "integration"))

from slurm_cluster import SlurmCluster  # noqa: E402


def _until(predicate, timeout: float = 180) -> float:
    start = time.perf_counter()
    while not predicate():
        if time.perf_counter() - start > timeout:
            raise TimeoutError
        time.sleep(0.05)
    return time.perf_counter() - start


def _two_workers(client) -> float:
    return _until(lambda: len(client.scheduler_info()["workers"]) == 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    import dask
    import dask_jobqueue  # noqa: F401 (its defaults in Dask's config before any set())

    from echoes_lab import compute

    cluster = SlurmCluster(nodes=2).start()
    try:
        os.environ["SLURM_CONF"] = str(cluster.conf)
        job_s, slurm_s, local_s = [], [], []
        for _ in range(args.rounds):
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
            print(f"{name:30s} median {statistics.median(values):6.2f} s  "
                  f"(min {min(values):.2f}, max {max(values):.2f}, n={len(values)})")
        print(f"load average at the end: {os.getloadavg()}")
    finally:
        cluster.close()


if __name__ == "__main__":
    main()
