"""The ``projects`` hub service: the project admins' page, and the keeper of shares' expiry.

A managed service on the scaffold (:mod:`echoes_lab.hub.services.base`) at
``/services/projects/``, with its own token and role (``projects-service``: membership of
groups, revoking shares). It talks to the hub only through the REST API.

* ``GET /`` — the signed-in user's projects; for a project's admins (``admins`` in the group's
  properties) and hub admins, a form adding and removing members. Membership changes take
  effect at each member's next server start.
* ``api/expiries`` — ``GET`` (your shares' expiry dates), ``POST {"owner", "server", "user"
  | "group", "expires_at"}`` (register; only for your own servers), ``DELETE`` (forget).
  Every ``[projects] expiry_check_every`` seconds the service revokes the shares whose time
  has come, with ``PATCH /hub/api/shares/OWNER/SERVER`` (JupyterHub's shares never expire
  by themselves). Expiry dates are kept in ``<state>/services/projects.sqlite``.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
from datetime import UTC, datetime
from urllib.parse import quote

from tornado import web
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

from echoes_lab.hub.services.base import APIHandler, Service, ServiceHandler
from echoes_lab.hub.services.projects import (
    GROUP_PREFIX,
    SERVICE,
    group_name,
    is_project_group,
)


class ExpiryStore:
    """Shares' expiry dates (one row per owner, server and user or group)."""

    def __init__(self, path):
        self.db = sqlite3.connect(path, isolation_level=None)
        os.chmod(path, 0o600)
        self.db.execute("""CREATE TABLE IF NOT EXISTS expiries (
            owner TEXT NOT NULL, server TEXT NOT NULL, user TEXT NOT NULL DEFAULT '',
            grp TEXT NOT NULL DEFAULT '', expires_at TEXT NOT NULL,
            PRIMARY KEY (owner, server, user, grp))""")

    def put(self, owner, server, user, group, expires_at: datetime) -> None:
        self.db.execute("INSERT OR REPLACE INTO expiries VALUES (?, ?, ?, ?, ?)",
                        (owner, server, user, group, expires_at.astimezone(UTC).isoformat()))

    def delete(self, owner, server, user, group) -> int:
        return self.db.execute("DELETE FROM expiries WHERE owner=? AND server=? AND user=? "
                               "AND grp=?", (owner, server, user, group)).rowcount

    def of(self, owner) -> list[dict]:
        rows = self.db.execute("SELECT owner, server, user, grp, expires_at FROM expiries "
                               "WHERE owner=? ORDER BY expires_at", (owner,))
        return [dict(zip(("owner", "server", "user", "group", "expires_at"), r, strict=True))
                for r in rows]

    def due(self, now: datetime) -> list[tuple]:
        # ISO 8601 in UTC with the same offset sorts as time
        return list(self.db.execute("SELECT owner, server, user, grp FROM expiries "
                                    "WHERE expires_at <= ?", (now.astimezone(UTC).isoformat(),)))


class _Hub:
    """The hub's REST API with the service's token (asynchronous)."""

    def __init__(self, api_url: str, token: str):
        self.url, self.token = api_url.rstrip("/"), token
        self.client = AsyncHTTPClient()

    async def __call__(self, method: str, path: str, body=None, ok=(200, 201, 204)):
        req = HTTPRequest(f"{self.url}{path}", method=method,
                          headers={"Authorization": f"token {self.token}",
                                   "Content-Type": "application/json"},
                          body=None if body is None else json.dumps(body),
                          allow_nonstandard_methods=True, request_timeout=30)
        try:
            resp = await self.client.fetch(req)
        except HTTPClientError as exc:
            if exc.code in ok:
                return None
            reason = exc.response.body.decode(errors="replace")[:200] if exc.response else exc
            msg = f"the hub refused {method} {path}: {exc.code} {reason}"
            raise web.HTTPError(502, msg) from None
        return json.loads(resp.body) if resp.body else None


class ProjectsPage(ServiceHandler):
    def _service(self) -> ProjectsService:
        return self.service

    async def _projects(self) -> list[dict]:
        user = self.current_user
        groups = await self._service().hub("GET", "/groups")
        out = []
        for g in groups:
            if not is_project_group(g):
                continue
            admins = g["properties"].get("admins", [])
            may_manage = user.get("admin") or user["name"] in admins
            if user["name"] in g["users"] or may_manage:
                out.append({"name": g["name"][len(GROUP_PREFIX):], "members": sorted(g["users"]),
                            "admins": sorted(admins), "manage": bool(may_manage),
                            "archived": bool(g["properties"].get("archived"))})
        return sorted(out, key=lambda p: p["name"])

    @web.authenticated
    async def get(self):
        self.render_page("projects.html", projects=await self._projects(), message="")

    @web.authenticated
    async def post(self):
        self.check_xsrf_cookie()
        project = self.get_body_argument("project", "")
        action = self.get_body_argument("action", "")
        who = self.get_body_argument("user", "").strip()
        mine = {p["name"]: p for p in await self._projects()}
        if project not in mine or not mine[project]["manage"]:
            raise web.HTTPError(403, f"you are not an admin of project {project!r}")
        if action not in ("add", "remove") or not who:
            raise web.HTTPError(400, "choose add or remove, and give a user name")
        hub = self._service().hub
        if action == "add":
            if await hub("GET", f"/users/{quote(who)}", ok=(404,)) is None:
                raise web.HTTPError(400, f"no hub user {who!r}: they sign in once first")
            await hub("POST", f"/groups/{group_name(project)}/users", {"users": [who]})
            message = f"{who} added to {project}: the folder appears at their next server start"
        else:
            await hub("DELETE", f"/groups/{group_name(project)}/users", {"users": [who]})
            await self._service().revoke(project, who)
            message = (f"{who} removed from {project}: their access ended now (running servers "
                       f"restarted without the project's group)")
        self.service.log.info("%s: %s by %s", project, message, self.current_user["name"])
        self.render_page("projects.html", projects=await self._projects(), message=message)


class ExpiryAPI(APIHandler):
    def _key(self, body: dict) -> tuple[str, str, str, str]:
        owner = body.get("owner", "")
        if owner != self.current_user.get("name"):
            raise web.HTTPError(403, "you may set expiry dates of your own servers' shares only")
        user, group = body.get("user") or "", body.get("group") or ""
        if bool(user) == bool(group):
            raise web.HTTPError(400, "give exactly one of 'user' or 'group'")
        return owner, body.get("server") or "", user, group

    def get(self):
        self.write_json({"items": self.service.store.of(self.current_user["name"])})

    def post(self):
        body = self.get_json_body()
        key = self._key(body)
        try:
            when = datetime.fromisoformat(body.get("expires_at", ""))
        except (TypeError, ValueError):
            raise web.HTTPError(400, "expires_at: an ISO 8601 time with its offset") from None
        if when.tzinfo is None:
            raise web.HTTPError(400, "expires_at: give the offset, e.g. +00:00")
        self.service.store.put(*key, when)
        self.write_json({"owner": key[0], "server": key[1], "user": key[2], "group": key[3],
                         "expires_at": when.astimezone(UTC).isoformat()}, status=201)

    def delete(self):
        removed = self.service.store.delete(*self._key(self.get_json_body()))
        self.set_status(204 if removed else 404)
        self.finish()


class ProjectsService(Service):
    """The project admins' page and the expiry of shared labs."""

    service_name = SERVICE
    description = "Team projects' members, and the expiry of shared labs"

    def handlers(self) -> list[tuple]:
        return [("", ProjectsPage), ("api/expiries", ExpiryAPI)]

    def metrics_collectors(self) -> list:
        from echoes_lab.hub.services.projects.metrics import collectors

        return collectors(self)

    async def start_tasks(self) -> None:
        folder = self.settings.state_dir / "services"
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.store = ExpiryStore(folder / "projects.sqlite")
        self.hub = _Hub(self.hub_api_url, self.api_token)
        self._expiry = asyncio.ensure_future(self._expire_loop())

    async def stop_tasks(self) -> None:
        self._expiry.cancel()

    async def _expire_loop(self) -> None:
        while True:
            try:
                await self.expire_due()
            except Exception:  # keep serving; the next round tries again
                self.log.exception("revoking expired shares failed")
            await asyncio.sleep(self.settings.projects.expiry_check_every)

    async def revoke(self, project: str, user: str, timeout: float = 120) -> None:
        """End a removed member's access at once: stop their running servers through the hub,
        revoke the group's traces (:func:`.storage.revoke`, as root, off the event loop), start
        the servers again (without the group)."""
        from echoes_lab.hub.services.projects import storage

        path = f"/users/{quote(user, safe='')}"
        model = await self.hub("GET", path, ok=(404,)) or {}
        ran = [n for n, s in (model.get("servers") or {}).items()
               if s.get("ready") or s.get("pending") == "spawn"]
        for name in ran:
            await self.hub("DELETE", f"{path}/servers/{quote(name, safe='')}" if name
                           else f"{path}/server", ok=(202, 204, 400, 404))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while ran and loop.time() < deadline and ((await self.hub("GET", path, ok=(404,)) or {})
                                                   .get("servers")):
            await asyncio.sleep(0.5)  # the hub's REST API has no event for a server's end
        try:
            await loop.run_in_executor(None, storage.revoke, self.settings, project, [user])
        finally:
            for name in ran:
                await self.hub("POST", f"{path}/servers/{quote(name, safe='')}" if name
                               else f"{path}/server", {}, ok=(201, 202, 400))

    async def expire_due(self) -> int:
        """Revoke every share whose expiry time has passed; return how many."""
        done = 0
        for owner, server, user, group in self.store.due(self.utcnow()):
            target = {"user": user} if user else {"group": group}
            path = f"/shares/{quote(owner)}/{quote(server)}"
            # 404: the server or the share is gone already, which is what we want
            await self.hub("PATCH", path, target, ok=(200, 404))
            self.store.delete(owner, server, user, group)
            self.log.info("share of %s/%s with %s expired: revoked", owner, server,
                          user or f"group {group}")
            done += 1
        return done
