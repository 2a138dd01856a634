"""Share your running lab with a colleague, a project or a workshop group — and take it back.

>>> import echoes_lab
>>> echoes_lab.share("bob")                                  # bob may use my lab, editing
>>> echoes_lab.share(project="p1", read_only=True, expires="2h")
>>> echoes_lab.shares()                                      # who has my lab, how
>>> echoes_lab.revoke("bob")

Everything goes through JupyterHub's sharing API (``/hub/api/shares/OWNER/SERVER``, JupyterHub
>= 5) with the lab's own token (``$JUPYTERHUB_API_TOKEN``, which has the scope
``shares!user``): a share grants ``access:servers!server=OWNER/SERVER``, so whoever receives it
opens ``/user/OWNER/`` after confirming once on the hub's "Authorize access" page; with
``jupyter-collaboration`` everyone in the lab edits the same notebooks live and sees each
other's cursors and the shared kernel's outputs.

* **Read-only** adds the custom scope ``custom:echoes-lab:read-only`` to the share. JupyterHub
  cannot make ``access:servers`` read-only by itself; the lab server enforces the scope
  (``echoes_lab.hub.services.projects.serverext``): the sharee may browse, open and download
  files (GET), nothing else — no saving, no kernels, no terminals, and not the live
  collaborative editor (its websocket accepts edits from anyone connected).
* **Expiry**: JupyterHub's shares do not expire (only share *codes* do). ``expires=`` registers
  the share with the hub's ``projects`` service, which revokes it through the same API when
  the time comes (within ``[projects] expiry_check_every`` seconds), plus the time the lab
  trusts a checked token (``[services] auth_cache_age``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

from echoes_lab.errors import EchoesError

READ_ONLY_SCOPE = "custom:echoes-lab:read-only"
log = logging.getLogger(__name__)
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


class ShareError(EchoesError):
    """A share cannot be made, listed or revoked (the message says why and what to do)."""


def _env(name: str) -> str:
    value = os.environ.get(name, "")
    if not value:
        msg = (f"${name} is not set: sharing works inside a lab started by the hub "
               f"(open a notebook on the hub and call it there)")
        raise ShareError(msg)
    return value


def _call(method: str, url: str, ok=(200, 201, 204), **kw):
    # the library's own small client: the hub side's (echoes_lab.hub.client) would load
    # pydantic settings and the secrets module into the user's kernel
    from echoes_lab._rest import call_json, session

    return call_json(session(_env("JUPYTERHUB_API_TOKEN")), method, url, ok=ok,
                     error=ShareError, timeout=30, **kw)


def _server_url(server: str | None) -> tuple[str, str, str]:
    owner = _env("JUPYTERHUB_USER")
    name = os.environ.get("JUPYTERHUB_SERVER_NAME", "") if server is None else server
    api = _env("JUPYTERHUB_API_URL").rstrip("/")
    return f"{api}/shares/{quote(owner)}/{quote(name)}", owner, name


def _target(user: str | None, project: str | None, group: str | None) -> dict:
    given = [(k, v) for k, v in (("user", user), ("project", project), ("group", group)) if v]
    if len(given) != 1:
        msg = ("say with whom to share, exactly one of: a user name (share('bob')), "
               "project='p1' or group='colour-101' (a workshop's group)")
        raise ShareError(msg)
    kind, value = given[0]
    return {"group": f"project-{value}"} if kind == "project" else {kind: value}


def parse_expiry(expires, now: datetime | None = None) -> datetime | None:
    """``expires`` as an aware UTC datetime: a duration ("30m", "2h", "7d", seconds as a
    number, a ``timedelta``) from ``now``, or a moment (``datetime``, ISO 8601 text)."""
    if expires is None:
        return None
    now = now or datetime.now(UTC)
    when = None
    if isinstance(expires, timedelta):
        when = now + expires
    elif isinstance(expires, int | float) and not isinstance(expires, bool):
        when = now + timedelta(seconds=expires)
    elif isinstance(expires, datetime):
        when = expires if expires.tzinfo else expires.astimezone()
    elif isinstance(expires, str):
        m = _DURATION.match(expires)
        if m:
            when = now + timedelta(seconds=float(m.group(1)) * _UNITS[m.group(2)])
        else:
            with contextlib.suppress(ValueError):
                when = datetime.fromisoformat(expires)
            if when is not None and not when.tzinfo:
                when = when.astimezone()
    if when is None:
        msg = (f"expires={expires!r}: give a duration such as '30m', '2h', '7d' or a number of "
               f"seconds, or a moment such as '2026-12-01T17:00'")
        raise ShareError(msg)
    when = when.astimezone(UTC)
    if when <= now:
        msg = f"expires={expires!r} is in the past ({when.isoformat(timespec='seconds')})"
        raise ShareError(msg)
    return when


def _expiry_api(path: str = "") -> str:
    return _env("ECHOES_PROJECTS_URL").rstrip("/") + "/api/expiries" + path


def share(user: str | None = None, *, project: str | None = None, group: str | None = None,
          read_only: bool = False, expires=None, server: str | None = None) -> dict:
    """Share this running lab (or another of your servers) with a user, a project or a group.

    Parameters
    ----------
    user
        A hub user name.
    project
        A project's name: its members (hub group ``project-NAME``).
    group
        Any hub group, e.g. a workshop's (``colour-101``).
    read_only
        Read files only (see the module's notes); ``False`` (default): full use, editing.
        Sharing again with the other value switches the share.
    expires
        When the share ends: a duration (``"30m"``, ``"2h"``, ``"7d"``, seconds, a
        ``timedelta``) or a moment; ``None``: until revoked.
    server
        One of your named servers; default: the server this code runs in.

    Returns
    -------
    dict
        JupyterHub's model of the share (``scopes``, ``user`` or ``group``, ``created_at``),
        plus ``expires_at`` (ISO 8601, UTC, or None).
    """
    url, owner, name = _server_url(server)
    target = _target(user, project, group)
    when = parse_expiry(expires)
    scopes = [f"access:servers!server={owner}/{name}"]
    if read_only:
        scopes.append(f"{READ_ONLY_SCOPE}!server={owner}/{name}")
    model = _call("POST", url, json={**target, "scopes": scopes})
    if not read_only and any(s.startswith(READ_ONLY_SCOPE) for s in model.get("scopes", [])):
        # editing after read-only: drop the read-only scope from the existing share
        read_only_scope = f"{READ_ONLY_SCOPE}!server={owner}/{name}"
        model = _call("PATCH", url, json={**target, "scopes": [read_only_scope]})
    key = {"owner": owner, "server": name, **target}
    if when is not None:
        try:
            _call("POST", _expiry_api(), json={**key, "expires_at": when.isoformat()})
        except ShareError:
            # an expiring share must not quietly become a permanent one
            _call("PATCH", url, json=target)
            raise
    elif os.environ.get("ECHOES_PROJECTS_URL"):
        try:  # a share given again without an end: forget the old end
            _call("DELETE", _expiry_api(), json=key, ok=(200, 204, 404))
        except ShareError as exc:
            log.warning("the share has no end now, but an earlier end may still apply: %s", exc)
    return {**model, "expires_at": when.isoformat() if when else None}


def shares(server: str | None = None) -> list[dict]:
    """Who may use your lab: one dict per share (``with``, ``kind``, ``read_only``,
    ``expires_at``, ``created_at``)."""
    url, owner, name = _server_url(server)
    items = _call("GET", url).get("items", [])
    expiries = {}
    if os.environ.get("ECHOES_PROJECTS_URL"):
        for e in _call("GET", _expiry_api()).get("items", []):
            expiries[(e.get("user") or "", e.get("group") or "")] = e["expires_at"]
    out = []
    for item in items:
        who_user = (item.get("user") or {}).get("name", "")
        who_group = (item.get("group") or {}).get("name", "")
        out.append({
            "with": who_user or who_group,
            "kind": "user" if who_user else "group",
            "read_only": any(s.startswith(READ_ONLY_SCOPE) for s in item.get("scopes", [])),
            "expires_at": expiries.get((who_user, who_group)),
            "created_at": item.get("created_at"),
        })
    return out


def revoke(user: str | None = None, *, project: str | None = None, group: str | None = None,
           server: str | None = None) -> None:
    """End a share now (the sharee's open pages stop working within the lab's token cache)."""
    url, owner, name = _server_url(server)
    target = _target(user, project, group)
    _call("PATCH", url, json=target)
    if os.environ.get("ECHOES_PROJECTS_URL"):
        _call("DELETE", _expiry_api(), json={"owner": owner, "server": name, **target},
              ok=(200, 204, 404))


def revoke_all(server: str | None = None) -> None:
    """End every share of your lab."""
    url, _, _ = _server_url(server)
    _call("DELETE", url)
