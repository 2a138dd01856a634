"""Secrets generated on first start and kept, mode 0600, in the state directory.

The state directory lives outside git. Nothing here is logged; the launcher prints the login
credentials once, on the first run only.
"""

from __future__ import annotations

import json
import os
import secrets as _random
from dataclasses import dataclass, field
from pathlib import Path

#: services that get their own hub API token
SERVICES = ("idle-culler", "echoes-cli", "dask-gateway", "reports", "workshops", "commons",
            "projects")


@dataclass(frozen=True)
class Secrets:
    cookie_secret_file: Path
    proxy_auth_token: str
    admin_password: str
    user_password: str
    api_tokens: dict[str, str] = field(default_factory=dict)


def _write_private(path: Path, text: str) -> None:
    # create with 0600 from the start: never a moment where the file is world-readable
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.chmod(path, 0o600)


def ensure_secrets(state_dir: Path, services: tuple[str, ...] = ()) -> tuple[Secrets, bool]:
    """Load the deployment's secrets, generating any that are missing.

    ``services`` names services beyond :data:`SERVICES` that need a token of their own.
    Returns the secrets and whether this was the first run: the passwords were generated now
    (a token added for a new service on an upgrade is not a first run, and does not show the
    passwords again).
    """
    state_dir.mkdir(parents=True, exist_ok=True)
    cookie = state_dir / "jupyterhub_cookie_secret"
    store = state_dir / "secrets.json"
    created = first_run = False
    if not cookie.exists():
        _write_private(cookie, _random.token_hex(32))
        created = True
    data = json.loads(store.read_text(encoding="utf-8")) if store.exists() else {}
    wanted = {
        "proxy_auth_token": lambda: _random.token_hex(32),
        # JupyterHub's shared-password authenticator asks for >= 32 characters for admins
        "admin_password": lambda: _random.token_urlsafe(30),
        "user_password": lambda: _random.token_urlsafe(9),
    }
    for key, make in wanted.items():
        if key not in data:
            data[key] = make()
            created = True
            first_run = first_run or key.endswith("_password")
    tokens = data.setdefault("api_tokens", {})
    for name in (*SERVICES, *services):
        if name not in tokens:
            tokens[name] = _random.token_hex(32)
            created = True
    if created or not store.exists():
        _write_private(store, json.dumps(data, indent=2))
    for path in (cookie, store):
        os.chmod(path, 0o600)
    return Secrets(cookie_secret_file=cookie, **data), first_run


def read_secrets(state_dir: Path) -> Secrets:
    """Read existing secrets without generating any (for tools talking to a running hub)."""
    data = json.loads((state_dir / "secrets.json").read_text(encoding="utf-8"))
    return Secrets(cookie_secret_file=state_dir / "jupyterhub_cookie_secret", **data)
