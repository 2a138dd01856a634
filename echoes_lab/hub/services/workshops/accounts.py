"""Homes and system accounts of seats and trainers, as the hub's spawner makes them.

The tool runs on the hub machine as the hub's administrator. When the hub runs as root every
user's home belongs to the account ``jupyter-<name>``
(:func:`echoes_lab.hub.accounts.system_username`). Root creates the home itself, never through a
link; everything *inside* a home is done by a child process running as that account
(:mod:`~echoes_lab.hub.services.workshops.homes`), so a link a user plants in their home can
never make root read, write or hand over someone else's files.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import subprocess
from dataclasses import dataclass
from pathlib import Path

from echoes_lab.errors import WorkshopError
from echoes_lab.hub.accounts import isolated, system_username, useradd_command
from echoes_lab.hub.settings import Settings


@dataclass(frozen=True)
class Account:
    name: str  # hub user name
    home: Path
    uid: int
    gid: int
    isolated: bool  # True: a system account of its own (hub run as root)

    def run_as(self) -> dict:
        """``subprocess`` keyword arguments that run a command as this account in its home."""
        if not self.isolated:
            return {"cwd": self.home}
        return {"cwd": self.home, "user": self.uid, "group": self.gid, "extra_groups": []}


def _no_link_dir(name: str, dir_fd: int) -> int:
    """Open folder ``name`` in ``dir_fd`` without following a link (``O_NOFOLLOW``)."""
    try:
        return os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=dir_fd)
    except (NotADirectoryError, OSError) as exc:
        msg = (
            f"{name}: not a folder, or a symbolic link ({exc.strerror}); a home must be a "
            "real folder, never a link: remove it and run the command again"
        )
        raise WorkshopError(msg) from None


def ensure_account(settings: Settings, name: str) -> Account:
    """The user's home (mode 0700) and, under root, system account, created if missing.

    The same account the spawner would create on first sign-in (``useradd --system
    --user-group --no-create-home``), so the user's first server finds everything in place.
    The home is created and handed over relative to the homes folder's descriptor and never
    through a link (``O_NOFOLLOW``, ``fchown``): root touches nothing a user could redirect.
    """
    if not name or "/" in name or name in (".", ".."):
        msg = f"{name!r} cannot be a user's home folder name"
        raise WorkshopError(msg)
    home = settings.homes_dir / name
    settings.homes_dir.mkdir(parents=True, exist_ok=True)
    if isolated(settings.spawner.isolation):
        system = system_username(name)
        try:
            entry = pwd.getpwnam(system)
        except KeyError:
            done = subprocess.run(useradd_command(name, home), capture_output=True, text=True)
            try:
                entry = pwd.getpwnam(system)
            except KeyError:
                msg = (
                    f"could not create the account {system} for {name}: "
                    f"{done.stderr.strip() or done.stdout.strip()}"
                )
                raise WorkshopError(msg) from None
        uid, gid = entry.pw_uid, entry.pw_gid
    else:
        uid, gid = os.getuid(), os.getgid()
    homes_fd = os.open(settings.homes_dir, os.O_RDONLY | os.O_DIRECTORY)
    try:
        with contextlib.suppress(FileExistsError):
            os.mkdir(name, 0o700, dir_fd=homes_fd)
        fd = _no_link_dir(name, homes_fd)
    finally:
        os.close(homes_fd)
    try:
        st = os.fstat(fd)
        if (st.st_uid, st.st_gid) != (uid, gid):
            os.fchown(fd, uid, gid)
    finally:
        os.close(fd)
    return Account(name, home, uid, gid, isolated(settings.spawner.isolation))
