"""The commons' entry in the hub (``FEATURES`` in :mod:`echoes_lab.hub.config`): its managed
service, its role, the scope every user gets, and where users' labs find it."""

from __future__ import annotations

from echoes_lab.hub.services import Feature, access_scope, managed_service, service_command
from echoes_lab.hub.settings import Settings

SERVICE = "commons"
PREFIX = f"/services/{SERVICE}/"


def public_base(s: Settings) -> str | None:
    """The IRI the commons' annotations start with (``…/services/commons/``): the configured
    ``public_url``, else the hub's own address; None when the hub listens on every interface
    without a ``public_url`` (then each request's host is used)."""
    if s.commons.public_url:
        return s.commons.public_url.rstrip("/") + PREFIX
    if s.hub.ip in ("", "0.0.0.0", "::"):
        return None
    return f"http://{s.hub.ip}:{s.hub.port}{PREFIX}"


def db_url(s: Settings) -> str:
    return s.commons.db_url or f"sqlite:///{s.state_dir / 'commons.sqlite'}"


def _service(s: Settings, secrets) -> dict:
    return managed_service(SERVICE, s, service_command("echoes_lab.hub.services.commons", s),
                           port=s.commons.port,
                           info={"description": "The digital commons: annotations by people "
                                                "and software (W3C Web Annotations)"})


def _roles(s: Settings) -> list[dict]:
    # the service reads each user's hub groups and admin flag (group visibility, moderation)
    return [{"name": SERVICE, "services": [SERVICE],
             "scopes": ["read:users", "read:users:groups", "read:groups"]}]


def _environment(s: Settings) -> dict:
    """Users' servers reach the commons through the hub's proxy (``echoes_lab.commons``)."""
    if s.commons.public_url:
        return {"ECHOES_COMMONS_URL": s.commons.public_url.rstrip("/") + PREFIX}
    host = "127.0.0.1" if s.hub.ip in ("", "0.0.0.0", "::") else s.hub.ip
    return {"ECHOES_COMMONS_URL": f"http://{host}:{s.hub.port}{PREFIX}"}


def _configure_hub(c, s: Settings) -> None:
    # code in users' labs posts with the server's own token (JUPYTERHUB_API_TOKEN); the first
    # two scopes are JupyterHub's default 'server' role
    token_scopes = (c.Spawner.server_token_scopes if "server_token_scopes" in c.Spawner
                    else ["users:activity!user", "access:servers!server"])
    c.Spawner.server_token_scopes = [*token_scopes, access_scope(SERVICE)]


FEATURE = Feature(SERVICE, enabled=lambda s: s.commons.enabled, service=_service, roles=_roles,
                  user_scopes=lambda s: [access_scope(SERVICE)], environment=_environment,
                  configure_hub=_configure_hub)
