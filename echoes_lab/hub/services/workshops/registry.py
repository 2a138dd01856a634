"""The workshops registry: one JSON record per workshop in the hub's state directory.

``<state>/workshops/<NAME>/workshop.json`` (mode 0600, the hub's administrator only) is data
written by the ``echoes-lab workshop`` tool and read by the hub's
:class:`~echoes_lab.hub.services.workshops.auth.WorkshopAuthenticator`: the seats, their password
hashes, the trainers, the end time and whether the workshop is closed.
Nothing here talks to the hub.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from echoes_lab.errors import WorkshopError

#: workshop names become a group, user names ``NAME-01`` and accounts ``jupyter-NAME-01``
#: (Linux user names are at most 32 characters)
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9-]{1,19}$")

#: scrypt cost (RFC 7914 §2: N a power of two, r block size, p parallelism). N = 2**14, r = 8
#: is the interactive-login setting recommended by the scrypt paper (Percival 2009, §7);
#: about 40 ms and 16 MiB per check here.
SCRYPT = {"n": 2**14, "r": 8, "p": 1}

#: no 0/O, 1/l/I: the card is read off paper and typed by people new to computers
_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"


def workshops_dir(state_dir: Path) -> Path:
    return Path(state_dir) / "workshops"


def check_name(name: str) -> str:
    if not NAME_PATTERN.match(name or ""):
        msg = (
            f"workshop name {name!r}: use 2 to 20 lower-case letters, digits and '-', starting "
            "with a letter (it becomes the group and the seats' user names, e.g. 'colour-101')"
        )
        raise WorkshopError(msg)
    return name


def new_password(groups: int = 3, size: int = 4) -> str:
    """A random password such as ``k7pm-x3qa-9tde`` (60 bits from :mod:`secrets`)."""
    return "-".join("".join(secrets.choice(_ALPHABET) for _ in range(size)) for _ in range(groups))


def hash_password(password: str) -> str:
    """``scrypt$N$r$p$salt$hash`` (hex) with :func:`hashlib.scrypt` (RFC 7914)."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, dklen=32, **SCRYPT)
    return f"scrypt${SCRYPT['n']}${SCRYPT['r']}${SCRYPT['p']}${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        kind, n, r, p, salt, digest = stored.split("$")
    except ValueError:
        return False
    if kind != "scrypt":
        return False
    got = hashlib.scrypt(
        password.encode(),
        salt=bytes.fromhex(salt),
        n=int(n),
        r=int(r),
        p=int(p),
        dklen=len(digest) // 2,
    )
    return hmac.compare_digest(got.hex(), digest)


def now() -> datetime:
    return datetime.now(timezone.utc)


def parse_ends(text: str, option: str = "--ends") -> datetime:
    """``2026-12-01T17:00`` (local time of this machine) or with an offset, to an aware time."""
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        msg = f"{option} {text!r}: write a date and time, e.g. 2026-12-01T17:00"
        raise WorkshopError(msg) from None
    return when.astimezone() if when.tzinfo is None else when


@dataclass
class Workshop:
    """One workshop's record; ``seats`` maps a seat's user name to its password hash ("" =
    the hub's shared user password)."""

    name: str
    trainers: list[str]
    seats: dict[str, str]
    ends: str
    credentials: str = "cards"  # "cards" (per-seat passwords) or "shared"
    materials: str = ""  # the folder or git URL given by the trainer
    materials_dir: str = ""  # the folder name in each seat's home
    mem_limit: str | None = None
    created: str = field(default_factory=lambda: now().isoformat(timespec="seconds"))
    closed: str | None = None
    announcement: str = ""
    starts: str | None = None            # the room arrives (``--starts``); servers warmed before
    warmed: str | None = None            # when every seat's server was last started by ``warm``

    @property
    def group(self) -> str:
        return self.name

    @property
    def trainer_role(self) -> str:
        return f"workshop-{self.name}-trainer"

    @property
    def ends_at(self) -> datetime:
        return datetime.fromisoformat(self.ends)

    @property
    def starts_at(self) -> datetime | None:
        return datetime.fromisoformat(self.starts) if self.starts else None

    @property
    def is_open(self) -> bool:
        return self.closed is None and now() < self.ends_at

    def role(self) -> dict:
        """The trainers' role: every scope filtered to this workshop's group, nothing else.

        Scope names are JupyterHub's (docs: "JupyterHub scopes", ``!group=`` filters). Opening a
        seat's lab is not in it: each seat's server is shared with the trainers through
        JupyterHub's sharing API (``manage.share_with_trainers``), the same mechanism as any
        shared lab, and those shares end when the workshop is closed.
        """
        g = f"group={self.group}"
        return {
            "name": self.trainer_role,
            "description": f"trainers of workshop {self.name}: its seats only",
            "scopes": [
                f"servers!{g}",
                f"read:users!{g}",
                f"read:users:activity!{g}",
                f"read:groups!{g}",
                f"list:users!{g}",
            ],
        }


def seat_names(name: str, count: int) -> list[str]:
    width = max(2, len(str(count)))
    return [f"{name}-{i:0{width}d}" for i in range(1, count + 1)]


def record_path(state_dir: Path, name: str) -> Path:
    return workshops_dir(state_dir) / name / "workshop.json"


def save(state_dir: Path, workshop: Workshop) -> Path:
    """Write the record atomically, mode 0600 from the start."""
    path = record_path(state_dir, workshop.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    # 0711: seats' accounts pass through to the materials repository, cannot list or read the rest
    for folder in (path.parent.parent, path.parent):
        os.chmod(folder, 0o711)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(asdict(workshop), fh, indent=1)
    os.replace(tmp, path)
    return path


def load(state_dir: Path, name: str) -> Workshop:
    path = record_path(state_dir, check_name(name))
    try:
        return Workshop(**json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        msg = f"no workshop named {name!r} (no {path}); create it first"
        raise WorkshopError(msg) from None
    except (ValueError, TypeError) as exc:
        msg = f"{path}: not a workshop record ({exc})"
        raise WorkshopError(msg) from None


def load_all(state_dir: Path) -> list[Workshop]:
    out = []
    for path in sorted(workshops_dir(state_dir).glob("*/workshop.json")):
        try:
            out.append(Workshop(**json.loads(path.read_text(encoding="utf-8"))))
        except (OSError, ValueError, TypeError):
            continue  # a half-written or foreign file must not stop logins for everyone
    return out
