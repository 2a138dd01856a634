"""The reports service's Prometheus series (served at ``/services/reports/metrics``).

Read from the run history (``reports.sqlite``) at each scrape, so a restart of the service
loses nothing: runs by status and trigger (a ``missed`` status, or the ``catch-up`` trigger,
is a fire missed while the service was down: ``reports.missed``), the queue's length, and the
durations of finished runs (``finished - started``) as a summary.
"""

from __future__ import annotations

from prometheus_client.core import GaugeMetricFamily, SummaryMetricFamily
from prometheus_client.registry import Collector


class ReportsCollector(Collector):
    """Series of the reports service ``service`` (its ``store`` is the run history)."""

    def __init__(self, service):
        self.service = service

    def collect(self):
        store = getattr(self.service, "store", None)
        runs = GaugeMetricFamily("echoes_reports_runs", "Runs in the history by status and "
                                 "trigger (missed: a fire missed while the service was down)",
                                 labels=["status", "trigger"])
        queue = GaugeMetricFamily("echoes_reports_queue_length", "Runs waiting to start")
        missed = GaugeMetricFamily("echoes_reports_missed_fires",
                                   "Scheduled times that fell while the service was down")
        duration = SummaryMetricFamily("echoes_reports_run_duration_seconds",
                                       "Durations of finished runs", labels=["status"])
        if store is not None:
            db = store.db
            for status, trigger, n in db.execute(
                    "SELECT status, trigger, count(*) FROM runs GROUP BY status, trigger"):
                runs.add_metric([status, trigger], n)
            queue.add_metric([], db.execute(
                "SELECT count(*) FROM runs WHERE status = 'queued'").fetchone()[0])
            missed.add_metric([], db.execute(
                "SELECT count(*) FROM runs WHERE status = 'missed' OR trigger = 'catch-up'"
            ).fetchone()[0])
            # julianday differences are in days; ISO 8601 times with offsets are understood
            for status, n, total in db.execute(
                    "SELECT status, count(*), sum((julianday(finished) - julianday(started))"
                    " * 86400.0) FROM runs WHERE started IS NOT NULL AND finished IS NOT NULL"
                    " GROUP BY status"):
                duration.add_metric([status], n, total or 0.0)
        yield from (runs, queue, missed, duration)


def collectors(service) -> list:
    return [ReportsCollector(service)]
