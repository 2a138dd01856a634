"""What the metrics service counts itself (issue 33): datasets opened, servers' lifetimes, the
charts' withholding, and Dask Gateway's clusters, workers and cores read from the database
dask-gateway-server itself writes (its ``DataManager``, the same code the gateway runs).

The service with a real hub and Prometheus: tests/integration/test_metrics.py.
"""

from __future__ import annotations

import asyncio
import stat

from prometheus_client import CollectorRegistry, generate_latest

from echoes_lab.hub.services.metrics import charts
from echoes_lab.hub.services.metrics.counts import (
    LIFETIME_BUCKETS,
    Counts,
    HubReading,
    MetricsCollector,
    gateway_counts,
)


class _Service:
    """What the collector reads of the metrics service."""

    def __init__(self, state, counts=None, reading=None):
        self.settings = type("S", (), {"state_dir": state})()
        self.counts = counts
        self.reading = reading


def scrape(service) -> dict[str, float]:
    registry = CollectorRegistry()
    registry.register(MetricsCollector(service))
    samples = {}
    for family in registry.collect():
        for s in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
            samples[f"{s.name}{{{labels}}}" if labels else s.name] = s.value
    assert generate_latest(registry)  # and the exposition format is made from them
    return samples


def test_openings_and_lifetimes_keep_no_user(tmp_path):
    counts = Counts(tmp_path / "counts.sqlite")
    assert stat.S_IMODE((tmp_path / "counts.sqlite").stat().st_mode) == 0o600
    for day in ("2026-11-30", "2026-12-01", "2026-12-01"):
        counts.count_opening("tate-collection", day)
    counts.count_opening("demo-climate", "2026-12-01")
    assert counts.openings() == {"tate-collection": 3, "demo-climate": 1}

    a = counts.server_key("ana", "", "2026-12-01T09:00:00Z")
    b = counts.server_key("bo", "gpu", "2026-12-01T09:30:00Z")
    assert a != b and "ana" not in a
    counts.servers_seen({a: 1000.0, b: 2800.0}, now=3000.0)
    counts.servers_seen({b: 2800.0}, now=4600.0)  # ana's server ended between the readings
    assert counts.lifetimes() == [3600.0]
    counts.servers_seen({}, now=5000.0)
    assert sorted(counts.lifetimes()) == [2200.0, 3600.0]
    # an ended server is its start and end only: no key, no name
    rows = counts.db.execute("SELECT * FROM lifetimes").fetchall()
    assert all(len(r) == 2 for r in rows)
    assert counts.db.execute("SELECT count(*) FROM running").fetchone()[0] == 0
    counts.close()

    # the same key after a restart of the service (the key is kept beside the counts)
    again = Counts(tmp_path / "counts.sqlite")
    assert again.server_key("ana", "", "2026-12-01T09:00:00Z") == a
    samples = scrape(_Service(tmp_path, again, HubReading(active_seats=7, project_members=3)))
    assert samples['echoes_datasets_opened_total{dataset="tate-collection"}'] == 3
    assert samples["echoes_server_lifetime_seconds_count"] == 2
    assert samples["echoes_server_lifetime_seconds_sum"] == 5800
    assert samples['echoes_server_lifetime_seconds_bucket{le="3600"}'] == 2
    assert samples['echoes_server_lifetime_seconds_bucket{le="900"}'] == 0
    assert len([k for k in samples if "_bucket" in k]) == len(LIFETIME_BUCKETS) + 1
    assert samples["echoes_workshops_active_seats"] == 7
    assert samples["echoes_projects_members"] == 3
    # no gateway database: no gateway series rather than zeros
    assert not any(k.startswith("echoes_gateway") for k in samples)


def test_before_the_first_reading_of_the_hub_there_is_no_sample(tmp_path):
    samples = scrape(_Service(tmp_path))
    assert "echoes_projects_members" not in samples
    assert "echoes_workshops_active_seats" not in samples


def test_gateway_clusters_workers_and_cores_from_its_own_database(tmp_path):
    from dask_gateway_server.backends.db_base import DataManager, JobStatus

    assert (tmp_path / "dask-gateway.sqlite").exists() is False
    assert gateway_counts(tmp_path / "dask-gateway.sqlite") is None
    from cryptography.fernet import Fernet

    async def write():  # the gateway's records hold asyncio futures: inside a loop, as there
        db = DataManager(f"sqlite:///{tmp_path / 'dask-gateway.sqlite'}",
                         encrypt_keys=[Fernet.generate_key()])
        config = {"worker_cores": 2, "scheduler_cores": 1, "worker_memory": 2**30}
        running = db.create_cluster("ana", {}, config)
        db.update_cluster(running, status=JobStatus.RUNNING)
        for status in (JobStatus.RUNNING, JobStatus.RUNNING, JobStatus.SUBMITTED):
            db.update_worker(db.create_worker(running), status=status)
        stopped = db.create_cluster("bo", {}, {**config, "worker_cores": 4})
        db.update_worker(db.create_worker(stopped), status=JobStatus.STOPPED)
        db.update_cluster(stopped, status=JobStatus.STOPPED)
        db.db.dispose()

    asyncio.run(write())

    clusters, workers, cores = gateway_counts(tmp_path / "dask-gateway.sqlite")
    assert clusters["running"] == 1 and clusters["stopped"] == 1
    assert workers == {"created": 0, "submitted": 1, "running": 2, "closing": 0,
                       "stopped": 1, "failed": 0}
    assert cores == 1 + 2 * 2  # the running scheduler and its two running workers
    samples = scrape(_Service(tmp_path))
    assert samples['echoes_gateway_clusters{status="running"}'] == 1
    assert samples['echoes_gateway_workers{status="running"}'] == 2
    assert samples["echoes_gateway_cores"] == 5


def test_charts_withhold_small_groups_and_draw_offline():
    points = [(0.0, 0.0), (60.0, 3.0), (120.0, 5.0), (180.0, 12.0)]
    assert charts.withheld(points, 5) == [(0.0, 0.0), (60.0, None), (120.0, 5.0),
                                          (180.0, 12.0)]
    svg = charts.svg("active users", {"": charts.withheld(points, 5)}, (0.0, 240.0))
    assert svg.startswith("<svg") and 'aria-label="active users"' in svg
    assert 'href="http' not in svg and "url(http" not in svg  # nothing to fetch
    assert "<text" in svg  # labels stay text (svg.fonttype none), not paths
    empty = charts.svg("datasets opened", {}, (0.0, 240.0))
    assert "no data yet" in empty



def test_the_services_process_loads_no_plotting_until_a_chart_is_drawn():
    """Issue 36: the host process (workshops, projects, metrics) starts without matplotlib,
    numpy and PIL (~26 MiB of its memory at idle); the first chart drawn imports them."""
    import json
    import subprocess
    import sys

    probe = ("import json, sys\n"
             "import echoes_lab.hub.services.host, echoes_lab.hub.services.metrics.app\n"
             "from echoes_lab.hub.services.metrics import charts\n"
             "before = sorted({m.split('.')[0] for m in sys.modules} & {'matplotlib', 'numpy', "
             "'PIL'})\n"
             "charts.svg('t', {'': [(0.0, 1.0)]}, (0.0, 60.0))\n"
             "print(json.dumps([before, 'matplotlib' in sys.modules]))\n")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True, timeout=120)
    assert json.loads(out.stdout.splitlines()[-1]) == [[], True]
