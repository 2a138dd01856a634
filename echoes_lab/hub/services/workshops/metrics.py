"""The workshops service's Prometheus series (served at ``/services/workshops/metrics``).

Read from the workshops' records (``registry``) at each scrape: workshops and their seats,
open (not closed and before its end) or closed.
"""

from __future__ import annotations

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from echoes_lab.hub.services.workshops import registry


class WorkshopsCollector(Collector):
    def __init__(self, service):
        self.service = service

    def collect(self):
        held = GaugeMetricFamily("echoes_workshops", "Workshops by state", labels=["state"])
        seats = GaugeMetricFamily("echoes_workshops_seats", "Seats of workshops by state",
                                  labels=["state"])
        counts = {"open": [0, 0], "closed": [0, 0]}
        for w in registry.load_all(self.service.settings.state_dir):
            row = counts["open" if w.is_open else "closed"]
            row[0] += 1
            row[1] += len(w.seats)
        for state, (n, s) in counts.items():
            held.add_metric([state], n)
            seats.add_metric([state], s)
        yield from (held, seats)


def collectors(service) -> list:
    return [WorkshopsCollector(service)]
