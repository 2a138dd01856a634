"""The projects feature as the hub's configuration sees it (:data:`FEATURE`).

Besides the ``projects`` managed service it sets what sharing a lab needs from the hub:

* the custom scope :data:`READ_ONLY_SCOPE`, which a read-only share adds next to
  ``access:servers`` (JupyterHub filters both to the shared server); the shared server reads
  its own shares to enforce it (a sharee's OAuth token does not carry it: JupyterHub 6.1
  resolves ``!server`` in ``oauth_client_allowed_scopes`` against the sharee's own servers,
  and a callable there breaks its ``get_env``);
* in every user's role and server token: ``shares!user`` (share one's own servers),
  ``read:users:name`` and ``read:groups:name`` (JupyterHub asks for them to share with a user
  or group by name), the read-only scope on one's own servers (one can only share what one
  holds), and access to this service (to register a share's expiry).
"""

from __future__ import annotations

from echoes_lab.hub import services
from echoes_lab.hub.services.projects import READ_ONLY_SCOPE, SERVICE
from echoes_lab.hub.services.projects.storage import projects_root
from echoes_lab.hub.settings import Settings

#: JupyterHub's default ``server`` role, the base of users' server tokens
DEFAULT_SERVER_TOKEN_SCOPES = ["users:activity!user", "access:servers!server"]
_ports: dict[str, int] = {}


def _port(settings: Settings) -> int:
    # one port per hub start, known both to the service definition and to users' servers
    key = str(settings.source)
    if key not in _ports:
        _ports[key] = settings.projects.port or services.free_port()
    return _ports[key]


def _url(settings: Settings) -> str:
    return f"http://127.0.0.1:{_port(settings)}/services/{SERVICE}/"


def _service(settings: Settings, secrets) -> dict:
    return services.managed_service(
        SERVICE, settings, services.service_command("echoes_lab.hub.services.projects", settings),
        port=_port(settings),
        info={"description": "Team projects: add and remove members"})


def _roles(settings: Settings) -> list[dict]:
    return [{
        "name": "projects-service",
        "description": "membership of projects' groups; revokes expired shares",
        # groups: add and remove members (not create); shares: revoke an expired share;
        # servers: restart a removed member's servers without the project's group
        "scopes": ["list:groups", "read:groups", "groups", "list:users", "read:users:name",
                   "shares", "read:servers", "servers"],
        "services": [SERVICE],
    }]


def user_scopes(settings: Settings | None = None) -> list[str]:
    return [services.access_scope(SERVICE), "shares!user", "read:users:name", "read:groups:name",
            f"{READ_ONLY_SCOPE}!user"]


def _environment(settings: Settings) -> dict:
    return {"ECHOES_PROJECTS": str(projects_root(settings)), "ECHOES_PROJECTS_URL": _url(settings)}


def _configure_hub(c, settings: Settings) -> None:
    # JupyterHub 6.1 leaves group shares out of tokens' permissions (see .hubfix)
    from echoes_lab.hub.services.projects import hubfix

    hubfix.apply()
    custom = dict(c.JupyterHub.custom_scopes) if "custom_scopes" in c.JupyterHub else {}
    custom[READ_ONLY_SCOPE] = {
        "description": "Read-only use of a shared server: read files, no edits, no kernels.",
    }
    c.JupyterHub.custom_scopes = custom
    token = (list(c.Spawner.server_token_scopes) if "server_token_scopes" in c.Spawner
             else list(DEFAULT_SERVER_TOKEN_SCOPES))
    c.Spawner.server_token_scopes = [*token, *(s for s in user_scopes() if s not in token)]


FEATURE = services.Feature(
    name=SERVICE,
    enabled=lambda s: s.projects.enabled,
    service=_service,
    roles=_roles,
    user_scopes=user_scopes,
    environment=_environment,
    configure_hub=_configure_hub,
)
