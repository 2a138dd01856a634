"""The knowledge base's entry in the hub (``FEATURES`` in :mod:`echoes_lab.hub.config`)."""

from __future__ import annotations

from echoes_lab.hub.services import Feature, access_scope, hub_url, managed_service, service_command
from echoes_lab.hub.settings import Settings

SERVICE = "knowledge"
PREFIX = f"/services/{SERVICE}/"


def public_base(s: Settings) -> str:
    """The start of the IRIs of contributors' graphs (``…/services/knowledge/``)."""
    public = s.commons.public_url.rstrip("/") if s.commons.public_url else hub_url(s)
    return public + PREFIX


def _service(s: Settings, secrets) -> dict:
    return managed_service(SERVICE, s, service_command("echoes_lab.hub.services.knowledge", s),
                           port=s.knowledge.port,
                           info={"description": "The knowledge base: SPARQL over Linked Art, "
                                                "the commons' annotations and your graphs"})


def _roles(s: Settings) -> list[dict]:
    # the service reads each user's hub groups (group graphs)
    return [{"name": SERVICE, "services": [SERVICE],
             "scopes": ["read:users", "read:users:groups", "read:groups"]}]


def _environment(s: Settings) -> dict:
    return {"ECHOES_KNOWLEDGE_URL": hub_url(s) + PREFIX}


def _configure_hub(c, s: Settings) -> None:
    # code in users' labs queries with the server's own token (JUPYTERHUB_API_TOKEN)
    token_scopes = (c.Spawner.server_token_scopes if "server_token_scopes" in c.Spawner
                    else ["users:activity!user", "access:servers!server"])
    if access_scope(SERVICE) not in token_scopes:
        c.Spawner.server_token_scopes = [*token_scopes, access_scope(SERVICE)]


FEATURE = Feature(SERVICE, enabled=lambda s: s.knowledge.enabled, service=_service,
                  roles=_roles, user_scopes=lambda s: [access_scope(SERVICE)],
                  environment=_environment, configure_hub=_configure_hub)
