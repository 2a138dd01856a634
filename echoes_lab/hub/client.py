"""A small client of the hub's REST API for the ``echoes-lab`` tools on the hub machine.

Services and tools talk to the hub only through its REST API, as jupyterhub-idle-culler does.
:func:`connect` reads the hub's address and the ``echoes-cli`` service token from a profile's
settings and state directory (readable by the hub's administrator only).
"""

from __future__ import annotations

from pathlib import Path

import requests

from echoes_lab.errors import HubError
from echoes_lab.hub.secrets import read_secrets
from echoes_lab.hub.settings import Settings, load_settings


class HubClient:
    """``hub.api("GET", "/users")`` → decoded JSON; a refused request raises :class:`HubError`."""

    def __init__(self, url: str, token: str, timeout: float = 60):
        self.url = url.rstrip("/")
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"token {token}"
        self.timeout = timeout

    def api(self, method: str, path: str, ok=(200, 201, 202, 204), **kw):
        return call_json(self.session, method, f"{self.url}/hub/api{path}", ok=ok,
                         timeout=self.timeout, **kw)


def call_json(session, method: str, url: str, ok=(200, 201, 202, 204), error=HubError,
              timeout: float = 60, **kw):
    """One request to the hub's (or a hub service's) REST API → decoded JSON or None.

    No answer, or a status not in ``ok``, raises ``error`` naming the request and the hub's
    own reason; used by :class:`HubClient` and by :mod:`echoes_lab.sharing` in kernels.
    """
    what = url.split("/hub/api", 1)[-1]
    try:
        r = session.request(method, url, timeout=timeout, **kw)
    except requests.ConnectionError:
        msg = f"the hub at {url.split('/hub/api', 1)[0]} does not answer: is it running?"
        raise error(msg) from None
    if r.status_code not in ok:
        try:
            reason = r.json().get("message") or r.reason
        except ValueError:
            reason = r.reason
        msg = f"the hub refused {method} {what}: {r.status_code} {reason}"
        raise error(msg)
    return r.json() if r.content else None


def hub_url(settings: Settings) -> str:
    return f"http://{settings.hub.ip}:{settings.hub.port}"


def connect(settings_file: str | Path) -> HubClient:
    """A client for the hub described by ``settings_file``, with the ``echoes-cli`` token."""
    settings = load_settings(settings_file)
    try:
        secrets = read_secrets(settings.state_dir)
    except FileNotFoundError:
        msg = f"no hub state in {settings.state_dir}: start the hub first ('make hub')"
        raise HubError(
            msg
        ) from None
    except PermissionError:
        msg = f"cannot read {settings.state_dir}/secrets.json: run as the hub's administrator"
        raise HubError(msg) from None
    return HubClient(hub_url(settings), secrets.api_tokens["echoes-cli"])
