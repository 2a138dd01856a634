"""The metrics service's entry in the hub (``FEATURES`` in :mod:`echoes_lab.hub.config`)."""

from __future__ import annotations

from echoes_lab.hub.services import Feature, managed_service, service_command
from echoes_lab.hub.settings import Settings

SERVICE = "metrics"


def _service(s: Settings, secrets) -> dict:
    return managed_service(SERVICE, s, service_command("echoes_lab.hub.services.metrics", s),
                           port=s.metrics.port,
                           info={"description": "Usage and contributions (admins)"})


def _roles(s: Settings) -> list[dict]:
    # Prometheus scrapes with this service's token: read:metrics on the hub and on every
    # service (which checks it through the hub), the services' addresses from the REST API
    return [{"name": SERVICE, "services": [SERVICE],
             "scopes": ["read:metrics", "access:services", "list:services", "read:services"]}]


def _configure_hub(c, s: Settings) -> None:
    # jupyterhub_active_users is recounted every 10 minutes by default; as often as scraped
    c.PeriodicMetricsCollector.active_users_update_interval = s.metrics.scrape_interval


FEATURE = Feature(SERVICE, enabled=lambda s: s.metrics.enabled, service=_service,
                  roles=_roles, configure_hub=_configure_hub)
