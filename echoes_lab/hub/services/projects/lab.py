"""The spawner's part of team projects: groups and ``~/projects/NAME`` at each server start.

:func:`preexec_fn` replaces ``jupyterhub.spawner.set_user_setuid`` for the ``local`` spawner:
the same switch to the user's account (gid, supplementary groups, uid, in that order) with the
Unix groups of the user's current, non-archived projects added to the supplementary groups.
They are computed at every start from the hub's groups; a removal restarts the leaver's
servers at once (:func:`.manage.remove`). Then, already as the user, it makes
``~/projects/NAME`` a symbolic link to each project folder and removes links to projects the
user has left (only symbolic links that point into the projects root; the user's own files are
never touched). Done as the user, the
links cannot be turned against anyone else's files.
"""

from __future__ import annotations

import contextlib
import grp
import logging
import os
import pwd

from echoes_lab.hub.services.projects import (
    GROUP_PREFIX,
    is_project_group,
    unix_group,
)

log = logging.getLogger("echoes.projects")


def user_projects(user) -> list[str]:
    """Names of the hub user's current projects (``user.groups``: ORM groups)."""
    names = []
    for group in getattr(user, "groups", []) or []:
        if is_project_group(group) and not (group.properties or {}).get("archived"):
            names.append(group.name[len(GROUP_PREFIX):])
    return sorted(names)


def project_gids(names: list[str]) -> list[int]:
    gids = []
    for name in names:
        try:
            gids.append(grp.getgrnam(unix_group(name)).gr_gid)
        except KeyError:
            log.warning("project %s has no Unix group %s: run 'echoes-lab project create' again",
                        name, unix_group(name))
    return gids


def sync_links(home: str, projects_root: str, names: list[str]) -> None:
    """``~/projects/NAME`` → each project folder; stale links into ``projects_root`` removed.

    Runs as the user (or as the one account of a hub without root). A ``~/projects`` that is
    not a plain folder (the user replaced it) is left alone.
    """
    top = os.path.join(home, "projects")
    if names:  # no empty folder in the homes of people without projects
        with contextlib.suppress(FileExistsError):
            os.mkdir(top, 0o755)
    if os.path.islink(top) or not os.path.isdir(top):
        return
    prefix = projects_root.rstrip("/") + "/"
    for entry in os.listdir(top):
        path = os.path.join(top, entry)
        if entry not in names and os.path.islink(path) and os.readlink(path).startswith(prefix):
            os.unlink(path)
    for name in names:
        path = os.path.join(top, name)
        if not os.path.lexists(path):
            os.symlink(prefix + name, path)


def preexec_fn(spawner, system_user: str | None):
    """The ``preexec_fn`` of a user's server: account switch with project groups, then links.

    Parameters
    ----------
    spawner
        The ``EchoesSpawner``: its ``user``, ``home_dir``, and the projects root in its
        ``environment["ECHOES_PROJECTS"]`` (set by the projects feature; absent = no links).
    system_user
        The user's system account under root, or None (hub without root: no switch; the links
        are made here, in the hub's process, as the one account everybody shares).
    """
    names = user_projects(spawner.user)
    root = (spawner.environment or {}).get("ECHOES_PROJECTS", "")
    home = spawner.home_dir
    if system_user is None:
        if root:
            sync_links(home, root, names)
        return None
    entry = pwd.getpwnam(system_user)
    uid, gid = entry.pw_uid, entry.pw_gid
    gids = sorted(set(os.getgrouplist(system_user, gid)) | set(project_gids(names)))

    def preexec():
        # after fork, before exec; any exception here fails the spawn (never run with root's
        # groups): unlike set_user_setuid, a failed setgroups is not tolerated
        os.setgid(gid)
        os.setgroups(gids)
        os.setuid(uid)
        if root:
            # the lab still starts if this fails; the links come at the next start
            with contextlib.suppress(OSError):
                sync_links(home, root, names)

    return preexec
