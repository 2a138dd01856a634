"""Homes and system accounts of seats and trainers, as the hub's spawner makes them.

The tool runs on the hub machine as the hub's administrator, so it prepares homes directly
(materials before anyone signs in; collected work and archives into the trainer's home). When
the hub runs as root every user's home belongs to the account ``jupyter-<name>``
(:func:`echoes_lab.hub.spawner.system_username`); files put there are handed to that account.
"""

from __future__ import annotations

import os
import pwd
import subprocess
from dataclasses import dataclass
from pathlib import Path

from echoes_lab.errors import WorkshopError
from echoes_lab.hub.settings import Settings
from echoes_lab.hub.spawner import isolated, system_username, useradd_command


@dataclass(frozen=True)
class Account:
    name: str          # hub user name
    home: Path
    uid: int
    gid: int
    isolated: bool     # True: a system account of its own (hub run as root)

    def run_as(self) -> dict:
        """``subprocess`` keyword arguments that run a command as this account in its home."""
        if not self.isolated:
            return {"cwd": self.home}
        return {"cwd": self.home, "user": self.uid, "group": self.gid, "extra_groups": []}


def ensure_account(settings: Settings, name: str) -> Account:
    """The user's home (mode 0700) and, under root, system account, created if missing.

    The same account the spawner would create on first sign-in (``useradd --system
    --user-group --no-create-home``), so the user's first server finds everything in place.
    """
    home = settings.homes_dir / name
    settings.homes_dir.mkdir(parents=True, exist_ok=True)
    if not isolated(settings.spawner.isolation):
        home.mkdir(mode=0o700, exist_ok=True)
        return Account(name, home, os.getuid(), os.getgid(), False)
    system = system_username(name)
    try:
        entry = pwd.getpwnam(system)
    except KeyError:
        done = subprocess.run(useradd_command(name, home), capture_output=True, text=True)
        try:
            entry = pwd.getpwnam(system)
        except KeyError:
            raise WorkshopError(f"could not create the account {system} for {name}: "
                                f"{done.stderr.strip() or done.stdout.strip()}") from None
    home.mkdir(mode=0o700, exist_ok=True)
    os.chown(home, entry.pw_uid, entry.pw_gid)
    return Account(name, home, entry.pw_uid, entry.pw_gid, True)


def give(path: Path, account: Account) -> None:
    """Hand a file or folder tree to ``account`` (under root; otherwise nothing to do)."""
    if not account.isolated:
        return
    os.chown(path, account.uid, account.gid)
    if path.is_dir():
        for folder, dirs, files in os.walk(path):
            for entry in (*dirs, *files):
                os.chown(os.path.join(folder, entry), account.uid, account.gid, follow_symlinks=False)
