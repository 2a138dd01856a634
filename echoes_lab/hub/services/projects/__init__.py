"""Team projects and shared labs: how people work together on the hub.

* A **project** is a hub group ``project-NAME`` (members; its admins in the group's
  ``properties``) and a folder ``<state>/<projects.folder>/NAME`` writable by its members only.
  Under root each project has a Unix group ``echoes-p-NAME``; the folder is
  ``root:echoes-p-NAME`` mode 2770 with default ACLs, and a member's server gets the group as
  a supplementary group at start (:mod:`.lab`), with the folder linked as ``~/projects/NAME``.
  Leaving a project, or its archive, takes effect at once (:func:`.storage.revoke`); files
  stay.
* ``echoes-lab project …`` (:mod:`.cli`, :mod:`.manage`) is the hub administrator's tool; the
  ``projects`` service (:mod:`.service`) is the page where a project's admins add and remove
  members, and the keeper of shared labs' expiry dates.
* **Sharing a lab** uses JupyterHub's sharing API (:mod:`echoes_lab.sharing`); a read-only
  share carries the custom scope :data:`READ_ONLY_SCOPE`, which the user's server enforces
  (:mod:`.serverext`).

This module stays light: the single-user server imports :mod:`.serverext` from it.
"""

from __future__ import annotations

import re

from echoes_lab.errors import EchoesError

#: hub groups of projects are ``project-NAME``
GROUP_PREFIX = "project-"
#: Unix groups of projects are ``echoes-p-NAME`` (at most 32 characters)
UNIX_PREFIX = "echoes-p-"
#: the custom scope a read-only share adds (JupyterHub filters it to the shared server)
READ_ONLY_SCOPE = "custom:echoes-lab:read-only"
#: project names: lower-case letters, digits and dashes; short enough for a Unix group name
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{0,22}$")
SERVICE = "projects"


class ProjectError(EchoesError):
    """A project command cannot proceed: bad or unknown project name, unknown user, a
    folder that is not what it should be (the message names the project and the fix)."""


def check_name(project: str) -> str:
    if not NAME_PATTERN.match(project or ""):
        msg = (f"project name {project!r}: use 1-23 lower-case letters, digits and dashes, "
               f"starting with a letter or digit (e.g. 'campaign-2026')")
        raise ProjectError(msg)
    return project


def group_name(project: str) -> str:
    return f"{GROUP_PREFIX}{project}"


def unix_group(project: str) -> str:
    return f"{UNIX_PREFIX}{project}"


def is_project_group(group: dict | object) -> bool:
    """Whether a hub group (REST model or ORM object) is a project's, made by our tools.

    The name alone is not enough (a workshop could be called ``project-x``): the group's
    ``properties`` carry ``echoes_project``, which only hub administrators can set.
    """
    name = group["name"] if isinstance(group, dict) else group.name
    props = (group.get("properties") if isinstance(group, dict) else group.properties) or {}
    return name.startswith(GROUP_PREFIX) and bool(props.get("echoes_project"))


def __getattr__(name: str):
    # FEATURE imports the service scaffold (jinja2, tornado): only the hub's config needs it
    if name == "FEATURE":
        from echoes_lab.hub.services.projects.feature import FEATURE

        return FEATURE
    msg = f"module {__name__!r} has no attribute {name!r}"
    raise AttributeError(msg)
