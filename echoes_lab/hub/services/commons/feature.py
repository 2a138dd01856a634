"""The commons' entry in the hub (``FEATURES`` in :mod:`echoes_lab.hub.config`): its managed
service, its role, the scope every user gets, and where users' labs find it."""

from __future__ import annotations

import hashlib
import re

from echoes_lab.hub.services import Feature, access_scope, hub_url, managed_service, service_command
from echoes_lab.hub.settings import Settings

SERVICE = "commons"
PREFIX = f"/services/{SERVICE}/"
#: the hub scope of moderators: unfiltered for every annotation, ``!group=G`` for those of G's
#: members (a JupyterHub custom scope: declared here, granted by roles, read by the service
#: in the identity the hub gives it for a token or a browser's OAuth sign-in)
MODERATE_SCOPE = "custom:commons-moderate"


def public_base(s: Settings) -> str | None:
    """The IRI the commons' annotations start with (``…/services/commons/``): the configured
    ``public_url``, else the hub's public origin (users on subdomains) or own address; None
    when the hub listens on every interface without either (then each request's host is
    used)."""
    if s.commons.public_url:
        return s.commons.public_url.rstrip("/") + PREFIX
    if s.hub.subdomain_host:
        return s.hub.subdomain_host + PREFIX
    if s.hub.ip in ("", "0.0.0.0", "::"):
        return None
    return f"http://{s.hub.ip}:{s.hub.port}{PREFIX}"


def db_url(s: Settings) -> str:
    return s.commons.db_url or f"sqlite:///{s.state_dir / 'commons.sqlite'}"


def _service(s: Settings, secrets) -> dict:
    return managed_service(SERVICE, s, service_command("echoes_lab.hub.services.commons", s),
                           port=s.commons.port,
                           # a browser's sign-in token carries the moderator scope it holds
                           oauth_client_allowed_scopes=[access_scope(SERVICE), MODERATE_SCOPE],
                           info={"description": "The digital commons: annotations by people "
                                                "and software (W3C Web Annotations)"})


def _roles(s: Settings) -> list[dict]:
    # the service reads each user's hub groups and admin flag (group visibility, moderation)
    roles = [{"name": SERVICE, "services": [SERVICE],
              "scopes": ["read:users", "read:users:groups", "read:groups"]}]
    # [commons] moderators: a project's or workshop's people who moderate its group's
    # annotations (hub role names are lower-case: the group's name is kept in the scope)
    for group, people in sorted(s.commons.moderators.items()):
        roles.append({"name": f"commons-moderators-{_role_part(group)}",
                      "description": f"moderate the commons annotations of group {group}",
                      "scopes": [f"{MODERATE_SCOPE}!group={group}"], "users": list(people)})
    return roles


def _role_part(group: str) -> str:
    part = re.sub(r"[^a-z0-9\-_.]", "-", group.lower()).strip("-._") or "group"
    if part != group:  # two groups must not share a role: the name's digest tells them apart
        part = f"{part}-{hashlib.sha256(group.encode()).hexdigest()[:8]}"
    return part


def _environment(s: Settings) -> dict:
    """Users' servers reach the commons through the hub's proxy (``echoes_lab.commons``)."""
    if s.commons.public_url:
        return {"ECHOES_COMMONS_URL": s.commons.public_url.rstrip("/") + PREFIX}
    return {"ECHOES_COMMONS_URL": hub_url(s) + PREFIX}


def _configure_hub(c, s: Settings) -> None:
    # code in users' labs posts with the server's own token (JUPYTERHUB_API_TOKEN); the first
    # two scopes are JupyterHub's default 'server' role
    token_scopes = (c.Spawner.server_token_scopes if "server_token_scopes" in c.Spawner
                    else ["users:activity!user", "access:servers!server"])
    c.Spawner.server_token_scopes = [*token_scopes, access_scope(SERVICE)]
    custom = dict(c.JupyterHub.custom_scopes) if "custom_scopes" in c.JupyterHub else {}
    custom[MODERATE_SCOPE] = {
        "description": "Hide and show again annotations in the commons, with a reason in its "
                       "public moderation log (!group=G: annotations by members of G).",
    }
    c.JupyterHub.custom_scopes = custom


FEATURE = Feature(SERVICE, enabled=lambda s: s.commons.enabled, service=_service, roles=_roles,
                  user_scopes=lambda s: [access_scope(SERVICE)], environment=_environment,
                  configure_hub=_configure_hub)
