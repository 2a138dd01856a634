"""The metrics service's entry in the hub (``FEATURES`` in :mod:`echoes_lab.hub.config`)."""

from __future__ import annotations

from echoes_lab.hub.services import Feature, access_scope, managed_service, service_command
from echoes_lab.hub.settings import Settings

SERVICE = "metrics"


def _service(s: Settings, secrets) -> dict:
    return managed_service(SERVICE, s, service_command("echoes_lab.hub.services.metrics", s),
                           port=s.metrics.port,
                           info={"description": "Usage and contributions (admins)"})


def _roles(s: Settings) -> list[dict]:
    # Prometheus scrapes with this service's token: read:metrics on the hub and on every
    # service (which checks it through the hub), the services' addresses from the REST API;
    # users' running servers (their lifetimes, workshops' active seats) and groups (projects'
    # members) are counted from the hub's REST API
    return [{"name": SERVICE, "services": [SERVICE],
             "scopes": ["read:metrics", "access:services", "list:services", "read:services",
                        "list:users", "read:users:name", "read:servers", "list:groups",
                        "read:groups"]}]


def _environment(s: Settings) -> dict:
    """Labs count their openings of catalogued datasets here (``echoes_lab.datasets``)."""
    host = "127.0.0.1" if s.hub.ip in ("", "0.0.0.0", "::") else s.hub.ip
    return {"ECHOES_METRICS_URL": f"http://{host}:{s.hub.port}/services/{SERVICE}/"}


def _configure_hub(c, s: Settings) -> None:
    # jupyterhub_active_users is recounted every 10 minutes by default; as often as scraped
    c.PeriodicMetricsCollector.active_users_update_interval = s.metrics.scrape_interval
    # labs post their datasets' openings with the server's own token, and an admin's lab (the
    # monthly usage report) reads the usage export with it: the hub gives a server's token only
    # the scopes its owner has, so read:metrics reaches admins' labs alone. The first two
    # scopes are JupyterHub's default 'server' role
    token_scopes = (c.Spawner.server_token_scopes if "server_token_scopes" in c.Spawner
                    else ["users:activity!user", "access:servers!server"])
    c.Spawner.server_token_scopes = [*token_scopes, access_scope(SERVICE), "read:metrics"]


FEATURE = Feature(SERVICE, enabled=lambda s: s.metrics.enabled, service=_service,
                  roles=_roles, user_scopes=lambda s: [access_scope(SERVICE)],
                  environment=_environment, configure_hub=_configure_hub)
