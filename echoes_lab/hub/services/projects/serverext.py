"""The single-user server's part of sharing: read-only shares, and the lab's "Share" page.

Loaded in every user's server as the server extension
``echoes_lab.hub.services.projects.serverext`` (``echoes_lab.hub.config.singleuser_args``).

* **Read-only shares.** JupyterHub lets a share carry any scope filtered to the shared server,
  but the single-user server only checks ``access:servers``. A share made with
  ``read_only=True`` also carries ``custom:echoes-lab:read-only!server=OWNER/NAME``. The
  server reads its own shares from the hub (its token may; cached for
  ``HubOAuth.cache_max_age`` seconds) and makes its identity provider — through which every
  request is authenticated, including handlers (jupyterlab-git, the lab's settings) that skip
  jupyter-server's ``@authorized`` — answer 403 to such a user for anything but a plain
  ``GET``/``HEAD``: no saving, no kernel or terminal, and no websocket at all (the live
  collaborative editor's websocket accepts edits from whoever is connected, so read-only
  users cannot join it). They can browse, open and download files, and read notebooks
  rendered as HTML (``/user/OWNER/nbconvert/html/PATH``). The owner is never read-only.
* **The Share page** at ``/user/NAME/echoes/share`` (File → Share this lab… in the lab,
  ``hub_config/lab/overrides.json``): the owner shares their lab with a user, a project or a
  group, read-only or editing, with an expiry; lists and revokes shares. It calls
  :mod:`echoes_lab.sharing`, i.e. JupyterHub's sharing API with the server's own token.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

from tornado import web

from echoes_lab.hub.services.projects import READ_ONLY_SCOPE

HERE = Path(__file__).resolve().parent
HUB_TEMPLATES = HERE.parents[1] / "templates"
_SAFE_METHODS = {"GET", "HEAD"}


def owner() -> tuple[str, str]:
    return os.environ.get("JUPYTERHUB_USER", ""), os.environ.get("JUPYTERHUB_SERVER_NAME", "")


def _is_owner(hub_user: dict) -> bool:
    return hub_user.get("kind", "user") == "user" and hub_user.get("name") == owner()[0]


def is_read_only(hub_user: dict | None, shares: list[dict] | None = None) -> bool:
    """Whether this hub user reaches this server through read-only shares only.

    Two sources, either suffices: the user's token carries the read-only scope of this server
    (it does when the token was issued for it), or — authoritative, whatever the token says —
    every share of this server that applies to the user (by name, or through one of their
    groups) carries it. ``shares`` is JupyterHub's list of this server's shares; None means it
    could not be read, and then a non-owner is treated as read-only (refusing, not allowing).
    """
    if not hub_user or _is_owner(hub_user):
        return False
    name, server = owner()
    marker = f"{READ_ONLY_SCOPE}!server={name}/{server}"
    if marker in (hub_user.get("scopes") or []):
        return True
    if shares is None:
        return True
    groups = set(hub_user.get("groups") or [])
    applying = [s for s in shares
                if (s.get("user") or {}).get("name") == hub_user.get("name")
                or (s.get("group") or {}).get("name") in groups]
    return bool(applying) and all(marker in s.get("scopes", []) for s in applying)


def refused(handler) -> bool:
    """Whether the request changes something (all but plain GET/HEAD; any websocket)."""
    request = handler.request
    if request.method not in _SAFE_METHODS:
        return True
    return request.headers.get("Upgrade", "").lower() == "websocket"


class _SharesCache:
    """This server's shares from the hub (the server's own token may read them), kept for
    as long as the server trusts a checked token (``HubOAuth.cache_max_age``)."""

    def __init__(self):
        self.at, self.items = 0.0, None

    async def get(self, max_age: float) -> list[dict] | None:
        import time

        from tornado.httpclient import AsyncHTTPClient

        if self.items is not None and time.monotonic() - self.at < max_age:
            return self.items
        name, server = owner()
        url = f"{os.environ.get('JUPYTERHUB_API_URL', '').rstrip('/')}/shares/{name}/{server}"
        try:
            resp = await AsyncHTTPClient().fetch(url, headers={
                "Authorization": f"token {os.environ.get('JUPYTERHUB_API_TOKEN', '')}"},
                request_timeout=10)
            items = json.loads(resp.body).get("items", [])
        except Exception:  # the hub is unreachable or refuses: refuse, do not allow
            return None
        self.at, self.items = time.monotonic(), items
        return items


_shares = _SharesCache()


class ReadOnlyGuard:
    """Mixed into the server's identity provider (JupyterHub's) at extension load."""

    async def get_user(self, handler):
        user = super().get_user(handler)
        if asyncio.iscoroutine(user) or isinstance(user, asyncio.Future):
            user = await user
        hub_user = getattr(user, "hub_user", None)
        if user is None or not hub_user or _is_owner(hub_user) or not refused(handler):
            return user
        if hub_user.get("kind") == "service":  # services reach labs by their roles, not shares
            return user
        max_age = getattr(getattr(self, "hub_auth", None), "cache_max_age", 30)
        if is_read_only(hub_user, await _shares.get(max_age)):
            msg = (f"{user.username} has read-only access to this lab: reading files only "
                   f"(ask its owner for an editing share)")
            raise web.HTTPError(403, msg)
        return user


def guard(identity_provider) -> None:
    """Give the running identity provider :class:`ReadOnlyGuard` (once)."""
    cls = identity_provider.__class__
    if not issubclass(cls, ReadOnlyGuard):
        identity_provider.__class__ = type(f"ReadOnly{cls.__name__}", (ReadOnlyGuard, cls), {})


def _environment():
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    return Environment(loader=FileSystemLoader([str(HUB_TEMPLATES)]),
                       autoescape=select_autoescape(default=True, default_for_string=True))


def _share_page_handler():
    from jupyter_server.base.handlers import JupyterHandler

    class SharePage(JupyterHandler):
        """The owner's page for sharing this lab."""

        def _check_owner(self):
            if self.current_user.username != owner()[0]:
                raise web.HTTPError(403, "only the owner of this lab can share it")

        async def _render(self, message="", error=""):
            from echoes_lab import sharing

            try:
                items = await asyncio.to_thread(sharing.shares)
            except sharing.ShareError as exc:
                items, error = [], error or str(exc)
            base = os.environ.get("JUPYTERHUB_BASE_URL", "/")
            page = self.settings["echoes_share_env"].get_template("lab-share.html").render(
                hub_prefix=base.rstrip("/") + "/hub/", user={"name": self.current_user.username},
                xsrf_token=self.xsrf_token.decode(), shares=items, message=message, error=error,
                owner=owner()[0], lab_url=self.base_url + "lab")
            self.finish(page)

        @web.authenticated
        async def get(self):
            self._check_owner()
            await self._render()

        @web.authenticated
        async def post(self):
            from echoes_lab import sharing

            self._check_owner()
            arg = self.get_body_argument
            kind, who = arg("kind", "user"), arg("who", "").strip()
            target = {kind: who} if kind in ("user", "project", "group") and who else None
            try:
                if target is None:
                    msg = "give a user, a project or a group"
                    raise sharing.ShareError(msg)
                if arg("action", "share") == "revoke":
                    await asyncio.to_thread(sharing.revoke, **target)
                    message = f"{who}: share revoked"
                else:
                    expires = arg("expires", "").strip() or None
                    model = await asyncio.to_thread(
                        sharing.share, **target, read_only=arg("mode", "edit") == "read",
                        expires=expires)
                    message = (f"shared with {kind} {who}"
                               + (f" until {model['expires_at']}" if model["expires_at"] else ""))
            except sharing.ShareError as exc:
                await self._render(error=str(exc))
                return
            await self._render(message=message)

    return SharePage


def _jupyter_server_extension_points():
    return [{"module": "echoes_lab.hub.services.projects.serverext"}]


def _load_jupyter_server_extension(serverapp) -> None:
    from jupyter_server.utils import url_path_join

    guard(serverapp.identity_provider)
    web_app = serverapp.web_app
    web_app.settings["echoes_share_env"] = _environment()
    route = url_path_join(web_app.settings["base_url"], "echoes", "share")
    web_app.add_handlers(".*$", [(route, _share_page_handler())])
