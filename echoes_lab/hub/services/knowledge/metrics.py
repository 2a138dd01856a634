"""The knowledge service's Prometheus series (served at ``/services/knowledge/metrics``).

Queries and their latency are the scaffold's request series for the SPARQL endpoint:
``echoes_service_request_duration_seconds{service="knowledge", handler="SparqlHandler"}``
(``_count`` is the number of queries, by status code). Here: the graphs in the store.
"""

from __future__ import annotations

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector


class KnowledgeCollector(Collector):
    def __init__(self, service):
        self.service = service

    def collect(self):
        family = GaugeMetricFamily("echoes_knowledge_graphs", "Named graphs in the store")
        store = getattr(self.service, "store", None)
        if store is not None:
            family.add_metric([], sum(1 for _ in store.named_graphs()))
        yield family


def collectors(service) -> list:
    return [KnowledgeCollector(service)]
