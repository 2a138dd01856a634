"""The commons' Prometheus series (served at ``/services/commons/metrics``).

Annotations not deleted, by motivation (the Web Annotation vocabulary's, ``none`` when an
annotation has none) and by who made them: a ``person`` or ``software`` (an actor registered
in the commons: the annotation's ``generator``, W3C Web Annotation Data Model §3.3.1). The
store keeps these counts as it writes (its ``tallies`` table, :meth:`Store.tallies`), so a
scrape reads a few rows: counting them with a join at each scrape took 230 ms of the
service's event loop at 100,000 annotations. Request latency is the scaffold's
``echoes_service_request_duration_seconds{service="commons"}``.
"""

from __future__ import annotations

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector


class CommonsCollector(Collector):
    def __init__(self, service):
        self.service = service

    def collect(self):
        store = getattr(self.service, "store", None)
        family = GaugeMetricFamily("echoes_commons_annotations", "Annotations in the commons "
                                   "(not deleted) by motivation and actor type",
                                   labels=["motivation", "actor"])
        if store is not None:
            for (motivation, actor), n in sorted(store.tallies().items()):
                family.add_metric([motivation, actor], n)
        yield family


def collectors(service) -> list:
    return [CommonsCollector(service)]
