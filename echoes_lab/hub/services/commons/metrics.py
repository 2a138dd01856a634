"""The commons' Prometheus series (served at ``/services/commons/metrics``).

Counted in the annotation store at each scrape: annotations not deleted, by motivation (the
Web Annotation vocabulary's, ``none`` when an annotation has none) and by who made them: a
``person`` or ``software`` (an actor registered in the commons: the annotation's
``generator``, W3C Web Annotation Data Model §3.3.1). Request latency is the scaffold's
``echoes_service_request_duration_seconds{service="commons"}``.
"""

from __future__ import annotations

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import and_, func, select

from echoes_lab.commons.store import annotations, keys


class CommonsCollector(Collector):
    def __init__(self, service):
        self.service = service

    def collect(self):
        store = getattr(self.service, "store", None)
        family = GaugeMetricFamily("echoes_commons_annotations", "Annotations in the commons "
                                   "(not deleted) by motivation and actor type",
                                   labels=["motivation", "actor"])
        if store is not None:
            software = annotations.c.actor_id.isnot(None)
            query = (select(keys.c.value, software, func.count())
                     .select_from(annotations.outerjoin(keys, and_(
                         keys.c.annotation == annotations.c.id, keys.c.kind == "motivation")))
                     .where(annotations.c.deleted.is_(None))
                     .group_by(keys.c.value, software))
            with store.engine.connect() as conn:
                for motivation, is_software, n in conn.execute(query):
                    family.add_metric([motivation or "none",
                                       "software" if is_software else "person"], n)
        yield family


def collectors(service) -> list:
    return [CommonsCollector(service)]
