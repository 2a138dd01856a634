"""Project folders on the shared storage of the ``local`` profile.

Run by the hub's administrator (``echoes-lab project``). Under root (``spawner.isolation``
allows system accounts) every project gets a Unix group ``echoes-p-NAME`` and its folder is
``root:echoes-p-NAME``, mode 2770 (setgid: new files belong to the project's group) with
default ACLs ``group::rwx``, ``other::---`` and the project's group, so files stay writable by
every member whatever their umask (POSIX.1e ACLs, ``acl(5)``). Members get the group in their
server's supplementary groups at start (:mod:`.lab`); non-members cannot even list the folder.

Without root there is one account for everybody: the folder is plain (mode 0700 of the hub's
account) and **not isolated** — every user's server can read every project.

Root never follows a path a user controls: the projects root and each project folder are
created and changed through file descriptors opened with ``O_NOFOLLOW`` relative to their
parent (``dir_fd``); nothing inside a project folder (where members write) is touched.
"""

from __future__ import annotations

import contextlib
import grp
import os
import shutil
import subprocess
from pathlib import Path

from echoes_lab.hub.accounts import isolated
from echoes_lab.hub.services.projects import ProjectError, check_name, unix_group
from echoes_lab.hub.settings import Settings

_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def projects_root(settings: Settings) -> Path:
    return settings.path(settings.projects.folder, settings.state_dir)


def folder(settings: Settings, project: str) -> Path:
    return projects_root(settings) / check_name(project)


def _open_root(settings: Settings) -> int:
    """The projects root, mode 0711: members pass through to their project; nobody lists."""
    root = projects_root(settings)
    root.parent.mkdir(parents=True, exist_ok=True)
    parent = os.open(root.parent, _DIR)
    try:
        with contextlib.suppress(FileExistsError):
            os.mkdir(root.name, 0o711, dir_fd=parent)
        fd = os.open(root.name, _DIR, dir_fd=parent)
    except OSError as exc:
        os.close(parent)
        msg = f"{root}: cannot use it as the projects folder ({exc.strerror}); it must be a folder"
        raise ProjectError(msg) from None
    os.close(parent)
    st = os.fstat(fd)
    if st.st_uid == os.geteuid():
        os.fchmod(fd, 0o711)
    return fd


def ensure_unix_group(project: str) -> int:
    """The gid of ``echoes-p-NAME``, created (``groupadd --system``) if missing."""
    name = unix_group(project)
    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        pass
    groupadd = shutil.which("groupadd") or "/usr/sbin/groupadd"
    done = subprocess.run([groupadd, "--system", name], capture_output=True, text=True)
    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        why = done.stderr.strip() or done.stdout.strip()
        msg = f"could not create the Unix group {name}: {why}"
        raise ProjectError(msg) from None


def _set_acl(fd: int, group: str) -> None:
    """Default and access ACLs on the folder open as ``fd`` (setfacl through /proc/self/fd)."""
    setfacl = shutil.which("setfacl")
    if not setfacl:
        msg = "setfacl is missing: install the Debian package 'acl'"
        raise ProjectError(msg)
    spec = (f"g:{group}:rwx,m::rwx,o::---,"
            f"d:u::rwx,d:g::rwx,d:g:{group}:rwx,d:m::rwx,d:o::---")
    # the path is setfacl's own inherited descriptor: the folder we opened, not a name to follow
    done = subprocess.run([setfacl, "-m", spec, f"/proc/self/fd/{fd}"], pass_fds=(fd,),
                          capture_output=True, text=True)
    if done.returncode:
        msg = f"setfacl on the project folder failed: {done.stderr.strip()}"
        raise ProjectError(msg)


def ensure_folder(settings: Settings, project: str) -> Path:
    """Create (or repair) the project's folder with its owner, mode and ACLs; return its path.

    Returns
    -------
    Path
        ``<state>/<projects.folder>/NAME``.
    """
    check_name(project)
    root_fd = _open_root(settings)
    try:
        with contextlib.suppress(FileExistsError):
            os.mkdir(project, 0o700, dir_fd=root_fd)
        try:
            fd = os.open(project, _DIR, dir_fd=root_fd)
        except OSError as exc:
            msg = (f"{folder(settings, project)} is not a folder ({exc.strerror}): "
                   f"move it away and run the command again")
            raise ProjectError(msg) from None
        try:
            if isolated(settings.spawner.isolation):
                gid = ensure_unix_group(project)
                os.fchown(fd, 0, gid)
                os.fchmod(fd, 0o2770)
                _set_acl(fd, unix_group(project))
            else:
                os.fchmod(fd, 0o700)
        finally:
            os.close(fd)
    finally:
        os.close(root_fd)
    return folder(settings, project)


def isolation_note(settings: Settings) -> str:
    """One sentence saying whether project folders are protected on this machine."""
    if isolated(settings.spawner.isolation):
        return "writable by its members only (Unix group, setgid folder, default ACLs)"
    return ("NOT isolated: the hub does not run as root, so every user's server runs as one "
            "account and can read and write every project folder")
