"""Users' system accounts on the ``local`` profile, shared by everything that acts for a user
(see :func:`isolated`). Standard library only: the launcher and the command line import it.
"""

from __future__ import annotations

import hashlib
import os
import pwd
import re
import shutil

_SYSTEM_NAME = re.compile(r"^[a-z_][a-z0-9_-]*$")
#: endings of the hashed account names (old: ``-`` and 7 hex digits; now ``-`` and 16): a hub
#: user whose own name ends like this gets a hashed account too, so that the plain and the
#: hashed names can never meet
_HASHED_TAIL = re.compile(r"-[0-9a-f]{7}$|-[0-9a-f]{16}$")


def _legacy_username(name: str) -> str:
    """The mapping before 2026-11 (could give ``jean.dupont`` and ``jeandupont-c6314bc`` one
    account): still honoured for accounts it created, see :func:`system_username`."""
    candidate = f"jupyter-{name}"
    if len(candidate) <= 32 and _SYSTEM_NAME.match(candidate):
        return candidate
    digest = hashlib.sha256(name.encode()).hexdigest()[:7]
    safe = re.sub(r"[^a-z0-9_-]", "", name.lower())[:15]
    return f"jupyter-{safe}-{digest}"


def system_username(name: str) -> str:
    """The system account of hub user ``name``; two hub users never get the same one.

    * ``jupyter-<name>`` when that is a valid Linux user name (``[a-z_][a-z0-9_-]*``, at most
      32 characters) and ``name`` does not end like a hashed name (``-`` and 7 or 16 hex
      digits) — the convention of The Littlest JupyterHub;
    * otherwise ``jupyter-<up to 7 letters of the name>-<16 hex digits of its SHA-256>``: its
      8th character from the end is a hex digit, where the earlier hashed names have ``-``,
      and no plain name ends like it; two hashed names meet only if SHA-256 does on 64 bits.
    * An account made by the earlier mapping (7 hex digits) stays its user's: it is used when
      it exists and its home folder is this user's (``…/homes/<name>``, set by useradd when
      it was created), so whichever of two colliding users came first keeps it, and the
      other gets a new account of their own.
    """
    candidate = f"jupyter-{name}"
    if len(candidate) <= 32 and _SYSTEM_NAME.match(candidate) and not _HASHED_TAIL.search(name):
        return candidate
    legacy = _legacy_username(name)
    try:
        if os.path.basename(pwd.getpwnam(legacy).pw_dir.rstrip("/")) == name:
            return legacy
    except KeyError:
        pass
    digest = hashlib.sha256(name.encode()).hexdigest()[:16]
    safe = re.sub(r"[^a-z0-9]", "", name.lower())[:7]
    return f"jupyter-{safe}-{digest}"


def isolated(isolation: str) -> bool:
    """Whether users' processes run under their own system accounts: the ``spawner.isolation``
    setting allows it (``auto`` or ``system-users``) and this process runs as root.

    The spawner, the gateway's backend, the reports service and the workshop tools all ask
    this, so a user's server, clusters, scheduled runs and seat share one account.
    """
    return isolation != "none" and os.geteuid() == 0


def useradd_command(name: str, home: str | os.PathLike) -> list[str]:
    """The command creating hub user ``name``'s system account, home ``home`` (not created)."""
    useradd = shutil.which("useradd") or "/usr/sbin/useradd"
    return [useradd, "--system", "--user-group", "--no-create-home", "--home-dir", str(home),
            "--shell", "/bin/bash", system_username(name)]
