"""The projects service's Prometheus series (served at ``/services/projects/metrics``).

The projects' folders under ``[projects] folder``, counted at each scrape (a project's
members are its hub group's, in the hub's own ``jupyterhub_*`` series and REST API).
"""

from __future__ import annotations

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from echoes_lab.hub.services.projects import storage


class ProjectsCollector(Collector):
    def __init__(self, service):
        self.service = service

    def collect(self):
        family = GaugeMetricFamily("echoes_projects", "Project folders on this hub")
        root = storage.projects_root(self.service.settings)
        family.add_metric([], sum(1 for p in root.iterdir() if p.is_dir())
                          if root.is_dir() else 0)
        yield family


def collectors(service) -> list:
    return [ProjectsCollector(service)]
