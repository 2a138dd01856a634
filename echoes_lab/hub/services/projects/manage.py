"""``echoes-lab project …`` for the hub's administrators: projects through the hub's REST API.

A project's membership is the hub group ``project-NAME`` (changed through the REST API with
the ``echoes-cli`` token, as every tool on the hub machine); its admins and its state live in
the group's ``properties`` (``echoes_project``, ``admins``, ``archived``, ``created``), so the
hub's database is the one record and the projects page reads the same. The folder is made by
:mod:`.storage`.

Removing members and archiving take effect at once: the people concerned lose the group in
the hub, their running servers are stopped through the REST API, whatever process still holds
the group is killed and the folder is cleared of setuid/setgid files and of the leavers'
ownership (:func:`.storage.revoke`); then the servers that ran are started again, without the
group.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

from echoes_lab.errors import HubError
from echoes_lab.hub.client import HubClient, connect
from echoes_lab.hub.services.projects import (
    GROUP_PREFIX,
    ProjectError,
    check_name,
    group_name,
    is_project_group,
    storage,
)
from echoes_lab.hub.settings import load_settings


@dataclass
class Project:
    name: str
    members: list[str]
    admins: list[str]
    archived: bool = False
    created: str = ""
    folder: Path | None = None
    properties: dict = field(default_factory=dict)

    @classmethod
    def from_group(cls, group: dict, folder: Path | None = None) -> Project:
        props = group.get("properties") or {}
        return cls(name=group["name"][len(GROUP_PREFIX):], members=sorted(group.get("users", [])),
                   admins=sorted(props.get("admins", [])), archived=bool(props.get("archived")),
                   created=props.get("created", ""), folder=folder, properties=props)


def split_names(value: str | list[str] | None) -> list[str]:
    """``"alice, bob"`` or ``["alice", "bob,carol"]`` → ``["alice", "bob", "carol"]``."""
    if not value:
        return []
    items = [value] if isinstance(value, str) else value
    return sorted({n.strip() for item in items for n in item.split(",") if n.strip()})


def get(hub: HubClient, project: str) -> Project:
    name = group_name(check_name(project))
    try:
        group = hub.api("GET", f"/groups/{name}")
    except HubError:
        group = None
    if not group or not is_project_group(group):
        msg = f"no project {project!r} (list them with 'echoes-lab project list')"
        raise ProjectError(msg)
    return Project.from_group(group)


def _ensure_users(hub: HubClient, users: list[str]) -> None:
    for user in users:
        hub.api("POST", f"/users/{user}", ok=(201, 409))


def _set_properties(hub: HubClient, project: Project, **changes) -> None:
    props = {**project.properties, **changes}
    hub.api("PUT", f"/groups/{group_name(project.name)}/properties", json=props)
    project.properties = props


def create(settings_file: str | Path, project: str, members: list[str],
           admins: list[str] | None = None) -> Project:
    """Create project ``project``: hub users (if new), the group, the folder.

    Admins are members too. Running it again on an existing project repairs its folder and
    adds the people given; nobody is removed.
    """
    check_name(project)
    admins = sorted(set(admins or []))
    members = sorted(set(members) | set(admins))
    if not members:
        msg = f"project {project}: give at least one member (--members alice,bob)"
        raise ProjectError(msg)
    settings = load_settings(settings_file)
    hub = connect(settings_file)
    name = group_name(project)
    existing = hub.api("GET", f"/groups/{name}", ok=(200, 404))
    if existing and existing.get("name") == name and not is_project_group(existing):
        msg = (f"the hub group {name!r} exists and is not a project's: choose another name")
        raise ProjectError(msg)
    path = storage.ensure_folder(settings, project)
    _ensure_users(hub, members)
    if not existing or existing.get("name") != name:
        hub.api("POST", f"/groups/{name}", ok=(201, 409))
    group = hub.api("GET", f"/groups/{name}")
    proj = Project.from_group(group, path)
    extra = {}
    if storage.isolated(settings.spawner.isolation):
        # the project's gid on record: what a spawner elsewhere (a pod's supplemental groups)
        # needs to give members the same access to the same storage
        extra["gid"] = storage.ensure_unix_group(project)
    _set_properties(hub, proj, echoes_project=True,
                    admins=sorted(set(proj.admins) | set(admins)),
                    created=proj.created or datetime.now(UTC).isoformat(timespec="seconds"),
                    archived=False, **extra)
    hub.api("POST", f"/groups/{name}/users", json={"users": members})
    return get_with_folder(settings_file, project)


def get_with_folder(settings_file: str | Path, project: str) -> Project:
    settings = load_settings(settings_file)
    proj = get(connect(settings_file), project)
    proj.folder = storage.folder(settings, project)
    return proj


def add(settings_file: str | Path, project: str, users: list[str], admins: bool = False) -> Project:
    """Add members (or, with ``admins``, make them admins too); effective at their next start."""
    hub = connect(settings_file)
    proj = get(hub, project)
    _ensure_users(hub, users)
    hub.api("POST", f"/groups/{group_name(project)}/users", json={"users": users})
    if admins:
        _set_properties(hub, proj, admins=sorted(set(proj.admins) | set(users)))
    return get_with_folder(settings_file, project)


def _server_path(user: str, server: str) -> str:
    user = quote(user, safe="")
    return f"/users/{user}/servers/{quote(server, safe='')}" if server else f"/users/{user}/server"


def stop_servers(hub: HubClient, users: list[str], timeout: float = 120) -> dict[str, list[str]]:
    """Stop every running server of ``users`` through the REST API and wait until they are
    down; returns the servers that ran, by user (to start them again afterwards)."""
    ran: dict[str, list[str]] = {}
    for user in users:
        model = hub.api("GET", f"/users/{quote(user, safe='')}", ok=(200, 404)) or {}
        names = [name for name, s in (model.get("servers") or {}).items()
                 if s.get("ready") or s.get("pending") == "spawn"]
        for name in names:
            hub.api("DELETE", _server_path(user, name), ok=(202, 204, 400, 404))
        if names:
            ran[user] = names
    deadline = time.monotonic() + timeout
    while ran and time.monotonic() < deadline:
        up = [u for u in ran if (hub.api("GET", f"/users/{quote(u, safe='')}", ok=(200, 404))
                                 or {}).get("servers")]
        if not up:
            break
        time.sleep(0.5)  # the hub's REST API has no event for a server's end
    return ran


def start_servers(hub: HubClient, ran: dict[str, list[str]]) -> None:
    for user, names in ran.items():
        for name in names:
            hub.api("POST", _server_path(user, name), ok=(201, 202, 400))


def remove(settings_file: str | Path, project: str, users: list[str]) -> Project:
    """Remove members (and their admin right), at once: their servers restart without the
    project's group and what the group gave them is revoked (:func:`.storage.revoke`). The
    folder and every file in it stay."""
    settings = load_settings(settings_file)
    hub = connect(settings_file)
    proj = get(hub, project)
    hub.api("DELETE", f"/groups/{group_name(project)}/users", json={"users": users})
    if set(users) & set(proj.admins):
        _set_properties(hub, proj, admins=sorted(set(proj.admins) - set(users)))
    ran = stop_servers(hub, users)
    try:
        storage.revoke(settings, project, users)
    finally:
        start_servers(hub, ran)
    return get_with_folder(settings_file, project)


def list_projects(settings_file: str | Path) -> list[Project]:
    settings = load_settings(settings_file)
    hub = connect(settings_file)
    groups = hub.api("GET", "/groups")
    return [Project.from_group(g, storage.folder(settings, g["name"][len(GROUP_PREFIX):]))
            for g in groups if is_project_group(g)]


def archive(settings_file: str | Path, project: str) -> Project:
    """Close a project at once: members' servers restart without its group, every process
    still holding it is killed, and the folder becomes read-only to all (:func:`.storage.revoke`).

    The hub group (with its members, for the record) and the folder with every file stay; only
    the hub's administrator reaches the folder afterwards. Run ``create`` again to reopen it
    (the folder becomes writable again; files inside stay read-only until their owners or the
    administrator change them).
    """
    settings = load_settings(settings_file)
    hub = connect(settings_file)
    proj = get(hub, project)
    _set_properties(hub, proj, archived=True,
                    archived_at=datetime.now(UTC).isoformat(timespec="seconds"))
    ran = stop_servers(hub, proj.members)
    try:
        storage.revoke(settings, project, None, archive=True, members=proj.members)
    finally:
        start_servers(hub, ran)
    return get_with_folder(settings_file, project)
