"""What the metrics service counts itself, and serves at ``/services/metrics/metrics``.

Series no other part of the hub has:

* ``echoes_datasets_opened_total{dataset}``: openings of the deployment's catalogued datasets,
  posted by users' labs (:func:`echoes_lab.datasets.open_dataset`) with the lab's own token.
  The service keeps the dataset's name and the day (UTC), never who opened it;
* ``echoes_server_lifetime_seconds``: how long users' servers ran, from start to stop, a
  histogram of the servers that ended. The service reads the running servers and their start
  times from the hub's REST API every scrape interval; a server gone from the list ended
  between two reads, so a lifetime is right to within one interval. A running server is known
  by a keyed hash of its owner, name and start (the key kept beside it) and an ended one by
  its start and end only;
* ``echoes_workshops_active_seats``: seats of open workshops whose server is running;
* ``echoes_projects_members``: people in at least one project (the projects' hub groups);
* ``echoes_gateway_clusters{status}``, ``echoes_gateway_workers{status}`` and
  ``echoes_gateway_cores``: Dask Gateway's clusters and workers by status and the cores held
  by running schedulers and workers, read from the gateway's own database
  (``<state_dir>/dask-gateway.sqlite``, opened read-only): dask-gateway-server has no
  ``/metrics`` of its own.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

#: upper bounds of the lifetime histogram's buckets, seconds: a minute, 5 and 15 minutes, an
#: hour, a half day of work (4 h, 8 h), a day, a week
LIFETIME_BUCKETS = (60, 300, 900, 3600, 4 * 3600, 8 * 3600, 86400, 7 * 86400)

#: dask-gateway-server's ``JobStatus`` values (``backends/db_base.py``) and their names
GATEWAY_STATUS = {1: "created", 2: "submitted", 3: "running", 4: "closing", 5: "stopped",
                  6: "failed"}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS opened (dataset TEXT NOT NULL, day TEXT NOT NULL,
                                   n INTEGER NOT NULL, PRIMARY KEY (dataset, day));
CREATE TABLE IF NOT EXISTS running (key TEXT PRIMARY KEY, started REAL NOT NULL,
                                    seen REAL NOT NULL);
CREATE TABLE IF NOT EXISTS lifetimes (started REAL NOT NULL, ended REAL NOT NULL);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


class Counts:
    """The service's own counts in ``path`` (SQLite, 0600)."""

    def __init__(self, path: Path):
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        os.close(fd)
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.db.executescript(_SCHEMA)
        row = self.db.execute("SELECT value FROM meta WHERE name = 'key'").fetchone()
        if row is None:
            self.db.execute("INSERT INTO meta VALUES ('key', ?)", (os.urandom(32).hex(),))
            row = self.db.execute("SELECT value FROM meta WHERE name = 'key'").fetchone()
        self._key = bytes.fromhex(row[0])

    def close(self) -> None:
        self.db.close()

    def count_opening(self, dataset: str, day: str) -> None:
        self.db.execute("INSERT INTO opened VALUES (?, ?, 1) ON CONFLICT (dataset, day) "
                        "DO UPDATE SET n = n + 1", (dataset, day))

    def openings(self) -> dict[str, int]:
        return dict(self.db.execute("SELECT dataset, sum(n) FROM opened GROUP BY dataset"))

    def server_key(self, user: str, server: str, started: str) -> str:
        msg = json.dumps([user, server, started]).encode()
        return hmac.new(self._key, msg, hashlib.sha256).hexdigest()

    def servers_seen(self, running: dict[str, float], now: float) -> None:
        """Record the servers running at ``now`` (key → start, epoch seconds); those running
        at the last reading and not now ended now."""
        with self.db:
            self.db.execute("BEGIN")
            for key, started in running.items():
                self.db.execute("INSERT INTO running VALUES (?, ?, ?) ON CONFLICT (key) "
                                "DO UPDATE SET seen = excluded.seen", (key, started, now))
            gone = [(k, s) for k, s in self.db.execute("SELECT key, started FROM running")
                    if k not in running]
            for key, started in gone:
                self.db.execute("INSERT INTO lifetimes VALUES (?, ?)", (started, now))
                self.db.execute("DELETE FROM running WHERE key = ?", (key,))

    def lifetimes(self) -> list[float]:
        return [e - s for s, e in self.db.execute("SELECT started, ended FROM lifetimes")]


@dataclass
class HubReading:
    """The hub's state at the last reading (:meth:`MetricsService.read_hub`)."""

    active_seats: int | None = None
    project_members: int | None = None
    running_ages: list[float] = field(default_factory=list)


def gateway_counts(database: Path) -> tuple[dict, dict, float] | None:
    """Clusters and workers by status and the cores held by running ones, from dask-gateway's
    database; None when there is none (the gateway is off or has not started)."""
    if not database.is_file():
        return None
    try:
        db = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    except sqlite3.Error:
        return None
    try:
        clusters = dict.fromkeys(GATEWAY_STATUS.values(), 0)
        workers = dict.fromkeys(GATEWAY_STATUS.values(), 0)
        cores = 0.0
        config = {}
        for cid, status, cfg in db.execute("SELECT id, status, config FROM clusters"):
            clusters[GATEWAY_STATUS.get(status, str(status))] += 1
            config[cid] = json.loads(cfg) if cfg else {}
            if status == 3:
                cores += float(config[cid].get("scheduler_cores", 1))
        for cid, status in db.execute("SELECT cluster_id, status FROM workers"):
            workers[GATEWAY_STATUS.get(status, str(status))] += 1
            if status == 3:
                cores += float(config.get(cid, {}).get("worker_cores", 1))
    except sqlite3.Error:
        return None  # the gateway has not made its tables yet
    finally:
        db.close()
    return clusters, workers, cores


class MetricsCollector(Collector):
    """The series of :mod:`this module <.counts>` for the metrics service ``service``."""

    def __init__(self, service):
        self.service = service

    def collect(self):
        counts: Counts | None = getattr(self.service, "counts", None)
        reading: HubReading = getattr(self.service, "reading", None) or HubReading()
        opened = CounterMetricFamily("echoes_datasets_opened", "Openings of catalogued "
                                     "datasets in users' labs", labels=["dataset"])
        life = HistogramMetricFamily("echoes_server_lifetime_seconds",
                                     "How long users' servers ran, start to stop (servers "
                                     "that ended)")
        if counts is not None:
            for name, n in sorted(counts.openings().items()):
                opened.add_metric([name], n)
            spans = counts.lifetimes()
            buckets = [(str(b), sum(1 for x in spans if x <= b)) for b in LIFETIME_BUCKETS]
            life.add_metric([], [*buckets, ("+Inf", len(spans))], sum(spans))
        yield from (opened, life)
        for name, text, value in (
                ("echoes_workshops_active_seats", "Seats of open workshops whose server runs",
                 reading.active_seats),
                ("echoes_projects_members", "People in at least one project",
                 reading.project_members)):
            if value is not None:  # not read from the hub yet: no sample rather than a 0
                yield GaugeMetricFamily(name, text, value=value)
        gateway = gateway_counts(self.service.settings.state_dir / "dask-gateway.sqlite")
        if gateway is not None:
            clusters, workers, cores = gateway
            c = GaugeMetricFamily("echoes_gateway_clusters", "Dask Gateway clusters by status",
                                  labels=["status"])
            w = GaugeMetricFamily("echoes_gateway_workers", "Dask Gateway workers by status",
                                  labels=["status"])
            for status, n in clusters.items():
                c.add_metric([status], n)
            for status, n in workers.items():
                w.add_metric([status], n)
            yield from (c, w, GaugeMetricFamily("echoes_gateway_cores", "Cores held by "
                                                "running Dask schedulers and workers",
                                                value=cores))
