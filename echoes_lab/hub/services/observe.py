"""Prometheus metrics of every service on the scaffold (:mod:`echoes_lab.hub.services.base`).

Each service declares its own series in its package's ``metrics.py`` (as JupyterHub keeps its
own in ``jupyterhub/metrics.py``) and hands them to :meth:`Service.metrics_collectors`; the
scaffold adds what every service has (request latency) and serves them all at ``NAME/metrics``
in the Prometheus text format, to a caller whose hub token or OAuth cookie carries the hub's
``read:metrics`` scope, as JupyterHub guards its own ``/hub/metrics``
(``JupyterHub.authenticate_prometheus``, on by default): anyone else gets 403.

Series counted from a service's own database (runs, annotations, seats) are read at scrape
time by a collector, so they are right across restarts of the service; events with no row of
their own (requests) are counted in the process.
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Histogram, generate_latest
from tornado import web

#: the scope a caller needs for ``/metrics`` (JupyterHub's own, for ``/hub/metrics``)
METRICS_SCOPE = "read:metrics"

#: every request a service answered, as JupyterHub's ``jupyterhub_request_duration_seconds``
REQUEST_DURATION = Histogram(
    "echoes_service_request_duration_seconds",
    "Time a service took to answer a request, by service, handler, method and status code",
    ["service", "handler", "method", "code"],
)

#: the collectors registered, by class: a service made again in one process (tests) replaces its
#: own, as two collectors of the same series would be refused by the registry
_registered: dict[str, object] = {}


def register(collectors) -> None:
    """Add a service's collectors to the process's registry, replacing earlier ones of their
    class."""
    for collector in collectors:
        key = f"{type(collector).__module__}.{type(collector).__qualname__}"
        old = _registered.pop(key, None)
        if old is not None:
            REGISTRY.unregister(old)
        REGISTRY.register(collector)
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


def metrics_text() -> tuple[bytes, str]:
    """The registry in the Prometheus text exposition format, and its content type."""
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
