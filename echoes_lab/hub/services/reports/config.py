"""How the hub runs the reports service (called from :func:`echoes_lab.hub.config.configure`)."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

from echoes_lab.hub.settings import Settings

SERVICE = "reports"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def hub_service(s: Settings, settings_file: str | Path, api_token: str) -> tuple[dict, dict]:
    """The managed service definition and its role.

    The service learns everything else (homes, the shared folder, the kernel) from the same
    settings file as the hub, given on its command line. Its role lets it read the names and
    admin flags of the users it serves; its users need ``access:services!service=reports``,
    which :func:`~echoes_lab.hub.config.configure` adds to the ``user`` role.
    """
    port = s.reports.port or _free_port()
    service = {
        "name": SERVICE,
        "url": f"http://127.0.0.1:{port}",
        "command": [sys.executable, "-m", "echoes_lab.hub.services.reports", "--settings",
                    str(Path(settings_file).resolve())],
        "api_token": api_token,
        "oauth_no_confirm": True,  # our own service: no "authorize access?" page for users
        "display": True,           # listed in the hub's Services menu
        "info": {"description": "Scheduled notebook runs with their provenance"},
        "environment": {"PYTHONUNBUFFERED": "1"},
    }
    role = {"name": SERVICE, "scopes": ["read:users:name"], "services": [SERVICE]}
    return service, role
