"""``echoes_lab.compute.cluster()`` on a real Slurm cluster: workers are Slurm jobs on two
compute nodes, each in its own network namespace (``slurm_cluster.py``), the client and the
scheduler on this machine, as in a user's server on an HPC login or compute node.

The Slurm profile's hub side (users' servers as jobs through batchspawner) is tested in
``test_slurm_hub.py``.
"""

from __future__ import annotations

import sys

import dask
import pandas as pd
import pytest
from slurm_cluster import SlurmCluster, daemons_left, links_left

import echoes_lab
from echoes_lab import compute

from harness import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def slurm():
    cluster = SlurmCluster(nodes=2)
    try:
        yield cluster.start()
    finally:
        left = cluster.close()
        assert not left, f"processes left in the nodes' namespaces: {left}"
        assert not daemons_left(cluster), daemons_left(cluster)
        assert not links_left(cluster), links_left(cluster)


@pytest.fixture
def on_slurm(slurm, monkeypatch, tmp_path):
    """Dask's configuration as the slurm profile sets it in a user's server."""
    monkeypatch.setenv("SLURM_CONF", str(slurm.conf))
    monkeypatch.delenv("DASK_GATEWAY__ADDRESS", raising=False)
    with dask.config.set({
        "gateway.address": None,
        "jobqueue.slurm.queue": "echoes",
        "jobqueue.slurm.walltime": "00:10:00",
        "jobqueue.slurm.python": sys.executable,
        "jobqueue.slurm.log-directory": str(tmp_path),
        # workers on the nodes reach the scheduler at this machine's address on their link
        "jobqueue.slurm.scheduler-options": {"host": slurm.host_addr},
    }):
        yield slurm


def test_climate_risk_table_on_workers_on_both_nodes(on_slurm, demo_data):
    from distributed import get_task_stream

    slurm = on_slurm
    ds = echoes_lab.read_climate(demo_data / "climate" / "loggers.csv", resample="1h")
    local = ds.climate.risk_table()
    assert compute.slurm_partition() == "echoes"
    # 2 cores per worker, 2 CPUs per node: one worker job on each node
    client = compute.cluster(workers=2, worker_cores=2, worker_memory=1.5)
    try:
        workers = wait_for(lambda: (len(w := client.scheduler_info()["workers"]) == 2 and w),
                           120, f"2 Slurm workers; jobs: {slurm.jobs()}")
        hosts = {info["host"] for info in workers.values()}
        assert hosts == set(slurm.nodes.values()), hosts  # one on each node's own address
        running = {node for state, node in slurm.jobs().values() if state == "RUNNING"}
        assert running == set(slurm.nodes)
        with get_task_stream(client) as stream:
            table = ds.chunk({"sensor": 1, "time": 4000}).climate.risk_table()
        ran_on = {t["worker"] for t in stream.data}
        assert ran_on and ran_on <= set(workers), ran_on
        pd.testing.assert_frame_equal(table, local, rtol=1e-9)
    finally:
        client.shutdown()
    wait_for(lambda: not slurm.jobs(), 60, "the worker jobs to end after client.shutdown()")


def test_a_lost_node_and_new_work_lands_on_the_other(slurm):
    lost, other = list(slurm.nodes)
    slurm.stop_node(lost)
    # the controller marks it down once slurmd misses its SlurmdTimeout (10 s)
    wait_for(lambda: slurm.node_states().get(lost, "").startswith("down"), 90,
             f"{lost} to be down: {slurm.node_states()}")
    job = slurm.run("sbatch", "--parsable", "-t", "1", "--mem=100", "--wrap", "sleep 30").strip()
    state, node = wait_for(lambda: (s := slurm.jobs().get(job)) and s[0] == "RUNNING" and s,
                           60, f"job {job} to run: {slurm.jobs()}")
    assert node == other
    slurm.run("scancel", job)
