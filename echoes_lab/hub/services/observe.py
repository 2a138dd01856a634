"""Prometheus metrics of every service on the scaffold (:mod:`echoes_lab.hub.services.base`).

Each service declares its own series in its package's ``metrics.py`` (as JupyterHub keeps its
own in ``jupyterhub/metrics.py``) and hands them to :meth:`Service.metrics_collectors`; the
scaffold adds what every service has (request latency) and serves them all at ``NAME/metrics``
in the Prometheus text format, to a caller whose hub token or OAuth cookie carries the hub's
``read:metrics`` scope, as JupyterHub guards its own ``/hub/metrics``
(``JupyterHub.authenticate_prometheus``, on by default): anyone else gets 403.

Several services may share one process (:mod:`echoes_lab.hub.services.host`): each then keeps
its own series in a registry of its own, and its ``/metrics`` shows its own request latencies
beside the process's series, never another service's (a sum over the scraped jobs would count
them twice).

Series counted from a service's own database (runs, annotations, seats) are read at scrape
time by a collector, so they are right across restarts of the service; events with no row of
their own (requests) are counted in the process.
"""

from __future__ import annotations

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Histogram,
    generate_latest,
)
from tornado import web

#: the scope a caller needs for ``/metrics`` (JupyterHub's own, for ``/hub/metrics``)
METRICS_SCOPE = "read:metrics"

#: every request a service answered, as JupyterHub's ``jupyterhub_request_duration_seconds``
REQUEST_DURATION = Histogram(
    "echoes_service_request_duration_seconds",
    "Time a service took to answer a request, by service, handler, method and status code",
    ["service", "handler", "method", "code"],
)

#: the collectors registered, by service and class: a service made again in one process (tests)
#: replaces its own, as two collectors of the same series would be refused by the registry
_registered: dict[tuple[str, str], object] = {}
#: each service's own registry (its series, its request latencies, the process's series)
_registries: dict[str, CollectorRegistry] = {}


class _ProcessSeries:
    """The process's registry as one service sees it: request latencies of that service only."""

    def __init__(self, service: str):
        self.service = service

    def collect(self):
        for family in REGISTRY.collect():
            if family.name == "echoes_service_request_duration_seconds":
                family.samples = [x for x in family.samples
                                  if x.labels.get("service") == self.service]
            yield family


def registry(service: str) -> CollectorRegistry:
    """The registry ``service``'s ``/metrics`` serves."""
    if service not in _registries:
        _registries[service] = CollectorRegistry(auto_describe=True)
        _registries[service].register(_ProcessSeries(service))
    return _registries[service]


def register(collectors, service: str = "") -> None:
    """Add a service's collectors to its registry, replacing earlier ones of their class."""
    reg = registry(service)
    for collector in collectors:
        key = (service, f"{type(collector).__module__}.{type(collector).__qualname__}")
        old = _registered.pop(key, None)
        if old is not None:
            reg.unregister(old)
        reg.register(collector)
        _registered[key] = collector


def observe_request(handler: web.RequestHandler) -> None:
    """Record one finished request (``ServiceApplication.log_request`` calls it)."""
    service = handler.settings.get("service_name", "")
    REQUEST_DURATION.labels(
        service=service, handler=type(handler).__name__, method=handler.request.method,
        code=handler.get_status(),
    ).observe(handler.request.request_time())


def may_read_metrics(user: dict | None) -> bool:
    """Whether a hub user/service model (with its token's ``scopes``) may read metrics."""
    return bool(user) and METRICS_SCOPE in (user.get("scopes") or ())


def metrics_text(service: str = "") -> tuple[bytes, str]:
    """``service``'s registry in the Prometheus text exposition format, and its content
    type."""
    return generate_latest(registry(service)), CONTENT_TYPE_LATEST
