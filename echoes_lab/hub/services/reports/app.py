"""The reports service's web side: a REST API and its page, on the services scaffold.

People sign in through the hub (hub OAuth); scripts send a hub API token whose scopes include
``access:services!service=reports``. A user sees and changes only their own schedules, runs
and outputs (another user's answer 404, as if absent); admins see all. Every read of a user's
file (the notebook checked when a schedule is saved, the notebooks offered on the page, a run's
outputs) goes through the owner's named server (:mod:`.servers`), so it happens as the owner;
error replies never quote a file.

API, under the service prefix (``/services/reports/``):

=======  ==================================  ============================================
GET      ``api/schedules``                   your schedules (admins: everyone's)
POST     ``api/schedules``                   ``{name, notebook, cron, parameters, enabled,
                                             confirm}`` (409 when confirmation is needed)
GET      ``api/schedules/<id>``              one schedule with its run history
PATCH    ``api/schedules/<id>``              change ``name``/``cron``/``parameters``/``enabled``
DELETE   ``api/schedules/<id>``              remove it (queued runs are cancelled; files stay)
POST     ``api/schedules/<id>/run``          run now (``{confirm}``: as for saving)
POST     ``api/schedules/<id>/confirm``      ``{sha256}``: run this new content from now on
GET      ``api/runs/<id>``                   one run
GET      ``api/runs/<id>/files/<kind>``      ``notebook``, ``html`` or ``crate`` of a run
GET      ``api/runs/<id>/fair``              the FAIR assessment of a run's crate, with the
                                             evidence (:func:`echoes_lab.fair.assess_crate`)
GET      ``api/notebooks``                   the ``.ipynb`` files in your home and projects
                                             (``?details=1``: with their file owners)
GET      ``api/notebooks/parameters?path=``  a notebook's parameters (name, type, default)
GET      ``api/cron?expr=``                  the expression in words and its next three times
POST     ``api/users/<name>/disable``        admins: pause all of a user's schedules (a
                                             closed workshop seat, a deleted user)
=======  ==================================  ============================================

Whose notebook runs is checked as the owner (:mod:`.authorship`): another user's notebook, or
a shared one changed since it was confirmed, is answered 409 with its author and last change
until the request says ``"confirm": <sha256>``; a schedule pins that hash and its runs refuse
any other content.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path, PurePosixPath

from jupyterhub.utils import url_path_join
from tornado import web

from echoes_lab.errors import EchoesError
from echoes_lab.hub.services.base import APIHandler, Service, ServiceHandler
from echoes_lab.hub.services.reports import authorship
from echoes_lab.hub.services.reports.scheduler import (
    Scheduler,
    check_cron,
    check_notebook_path,
    describe_cron,
    next_fire,
    next_times,
)
from echoes_lab.hub.services.reports.servers import NotFound, OwnerServers, ServerError
from echoes_lab.hub.services.reports.store import Store

FILES = {
    "notebook": "application/x-ipynb+json",
    "html": "text/html; charset=utf-8",
    "crate": "application/ld+json",
}
KNOWN = {"name", "notebook", "cron", "parameters", "enabled", "confirm"}


class _Reports:
    """What the reports handlers share (mixed into pages and API endpoints)."""

    @property
    def store(self) -> Store:
        return self.settings["store"]

    @property
    def scheduler(self) -> Scheduler:
        return self.settings["scheduler"]

    @property
    def servers(self) -> OwnerServers:
        return self.settings["servers"]

    @property
    def cfg(self):
        return self.settings["reports_settings"]

    @property
    def prefix(self) -> str:
        return self.settings["service_prefix"]

    def may_see(self, owner: str) -> bool:
        return self.current_user.get("admin", False) or owner == self.current_user["name"]

    def schedule_or_404(self, sid: str) -> dict:
        sch = self.store.schedule(int(sid))
        if sch is None or not self.may_see(sch["owner"]):
            raise web.HTTPError(404, f"no schedule {sid}")
        return sch

    def run_or_404(self, rid: str) -> dict:
        run = self.store.run(int(rid))
        if run is None or not self.may_see(run["owner"]):
            raise web.HTTPError(404, f"no run {rid}")
        return run

    def run_model(self, run: dict) -> dict:
        links = {
            k: url_path_join(self.prefix, f"api/runs/{run['id']}/files/{k}") for k in run["outputs"]
        }
        if "crate" in links:  # the run index links each crate's FAIR assessment
            links["fair"] = url_path_join(self.prefix, f"api/runs/{run['id']}/fair")
        return {**{k: v for k, v in run.items() if k != "kernel"}, "links": links}

    async def read_notebook(self, owner: str, path: str) -> dict:
        """The owner's notebook, read by their own server (as them); 400/503 otherwise."""
        try:
            async with self.servers.lease(owner):
                model = await self.servers.contents(owner, path, type="notebook", content=1)
        except NotFound:
            raise web.HTTPError(400, f"{path}: no such notebook in your home folder") from None
        except ServerError as exc:
            raise web.HTTPError(503, str(exc)) from None
        except EchoesError as exc:
            # our own messages only: the server's reply could quote the file
            raise web.HTTPError(400, str(exc)) from None
        if not isinstance(model.get("content"), dict):
            raise web.HTTPError(400, f"{path}: not a Jupyter notebook")
        return model["content"]

    async def authorship(self, owner: str, path: str, pinned: str | None,
                         confirm: str | None) -> dict:
        """The notebook's author, last change and sha256, read as the owner; 409 (with them)
        when running it needs the owner's confirmation and ``confirm`` is not its sha256."""
        try:
            info = await authorship.inspect(self.servers, owner, path)
        except EchoesError as exc:
            raise web.HTTPError(503, str(exc)) from None
        if "error" in info:
            raise web.HTTPError(400, info["error"])
        if authorship.needs_confirmation(info, pinned) and confirm != info["sha256"]:
            self.set_status(409)
            self.finish({"status": 409, "message": authorship.ask(info, pinned),
                         "confirm": {k: info[k] for k in ("sha256", "author", "modified", "path")}})
            raise web.Finish
        return info


class ReportsAPI(_Reports, APIHandler):
    def prepare(self):
        super().prepare()
        if self.current_user.get("kind", "user") != "user":
            raise web.HTTPError(403, "the reports API is for users (a user's token or sign-in)")

    def check_size(self, params: dict) -> None:
        limit = self.cfg.max_parameter_bytes
        for key, value in params.items():
            size = len(json.dumps(value))
            if size > limit:
                msg = (
                    f"parameter '{key}' is {size} bytes as JSON; at most {limit} "
                    "(reports.max_parameter_bytes): pass a file name instead of the data"
                )
                raise web.HTTPError(400, msg)

    async def validated(self, owner: str, data: dict, current: dict | None = None) -> dict:
        """The schedule fields in ``data``, checked: cron, notebook, parameters."""
        from echoes_lab.runs import check_parameters

        unknown = set(data) - KNOWN
        if unknown:
            msg = (
                f"unknown field(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(KNOWN))}"
            )
            raise web.HTTPError(400, msg)
        fields = dict(current or {})
        fields.update(data)
        for key in ("notebook", "cron"):
            if not isinstance(fields.get(key), str) or not fields[key].strip():
                raise web.HTTPError(400, f"'{key}' is required (a string)")
        if not isinstance(fields.get("parameters") or {}, dict):
            raise web.HTTPError(400, "'parameters' must be an object of name: value")
        out = {k: v for k, v in data.items() if k in ("name", "enabled")}
        if "name" in out and (not isinstance(out["name"], str) or len(out["name"]) > 200):
            raise web.HTTPError(400, "'name' must be a string of at most 200 characters")
        if "enabled" in out and not isinstance(out["enabled"], bool):
            raise web.HTTPError(400, "'enabled' must be true or false")
        params = fields.get("parameters") or {}
        self.check_size(params)
        try:
            cron = check_cron(fields["cron"], self.cfg.min_interval)
            path = check_notebook_path(fields["notebook"])
        except ValueError as exc:
            raise web.HTTPError(400, str(exc)) from None
        notebook = await self.read_notebook(owner, path)
        try:
            params = check_parameters(notebook, params, label=path)
        except EchoesError as exc:
            raise web.HTTPError(400, str(exc)) from None
        same = current is not None and current.get("notebook") == path
        info = await self.authorship(owner, path, current.get("sha256") if same else None,
                                     data.get("confirm"))
        out.update(cron=cron, notebook=path, parameters=params, sha256=info["sha256"],
                   author=info["author"], modified=info["modified"], seen=None)
        return out


class SchedulesHandler(ReportsAPI):
    def get(self):
        owner = None if self.current_user.get("admin") else self.current_user["name"]
        self.write_json(
            [
                {**s, "last_run": next(iter(self.store.runs(s["id"], 1)), None)}
                for s in self.store.schedules(owner)
            ]
        )

    async def post(self):
        owner = self.current_user["name"]
        data = await self.validated(owner, self.get_json_body())
        name = data.pop("name", None) or PurePosixPath(data["notebook"]).stem
        sch = self.store.add_schedule(
            owner,
            name,
            data["notebook"],
            data["parameters"],
            data["cron"],
            next_fire(data["cron"], self.scheduler.clock()),
            data.get("enabled", True),
            pin=data,
        )
        self.write_json(sch, 201)


class ScheduleHandler(ReportsAPI):
    def get(self, sid):
        sch = self.schedule_or_404(sid)
        self.write_json({**sch, "runs": [self.run_model(r) for r in self.store.runs(sch["id"])]})

    async def patch(self, sid):
        sch = self.schedule_or_404(sid)
        body = self.get_json_body()
        if set(body) <= {"name", "enabled"} and body.get("enabled") is not True:
            # renaming or pausing reads nothing: it works while the owner's account closes
            if not isinstance(body.get("name", ""), str) or len(body.get("name", "")) > 200:
                raise web.HTTPError(400, "'name' must be a string of at most 200 characters")
            if body.get("enabled", False) is not False:
                raise web.HTTPError(400, "'enabled' must be true or false")
            self.write_json(self.store.update_schedule(sch["id"], **body))
            return
        data = await self.validated(sch["owner"], body, current=sch)
        enabled = data.get("enabled", sch["enabled"])
        if enabled and (data["cron"] != sch["cron"] or not sch["enabled"]):
            # no catch-up for a paused schedule
            data["next_run"] = next_fire(data["cron"], self.scheduler.clock())
        self.write_json(self.store.update_schedule(sch["id"], **data))

    def delete(self, sid):
        sch = self.schedule_or_404(sid)
        self.store.delete_schedule(sch["id"])
        self.set_status(204)
        self.finish()


class RunNowHandler(ReportsAPI):
    async def post(self, sid):
        sch = self.schedule_or_404(sid)
        body = self.get_json_body() if self.request.body else {}
        info = await self.authorship(sch["owner"], sch["notebook"], sch.get("sha256"),
                                     body.get("confirm"))
        if info["sha256"] != sch.get("sha256"):
            sch = self.store.update_schedule(sch["id"], sha256=info["sha256"],
                                             author=info["author"], modified=info["modified"],
                                             seen=None)
        self.write_json(self.run_model(self.scheduler.enqueue(sch, "manual")), 202)


class ConfirmHandler(ReportsAPI):
    """The owner confirms a notebook's new content (after a run refused it)."""

    async def post(self, sid):
        sch = self.schedule_or_404(sid)
        sha = self.get_json_body().get("sha256")
        if not isinstance(sha, str) or len(sha) != 64:
            raise web.HTTPError(400, "'sha256': the content's hash shown on the page")
        info = await self.authorship(sch["owner"], sch["notebook"], sch.get("sha256"), sha)
        if info["sha256"] != sha:
            # changed again since it was shown: confirm only what was read
            self.set_status(409)
            self.finish({"status": 409, "message": authorship.ask(info, sch.get("sha256")),
                         "confirm": {k: info[k] for k in ("sha256", "author", "modified", "path")}})
            return
        self.write_json(self.store.update_schedule(sch["id"], sha256=sha, author=info["author"],
                                                   modified=info["modified"], seen=None))


class RunHandler(ReportsAPI):
    def get(self, rid):
        self.write_json(self.run_model(self.run_or_404(rid)))


class FileHandler(ReportsAPI):
    async def get(self, rid, kind):
        run = self.run_or_404(rid)
        name = run["outputs"].get(kind)
        if kind not in FILES or not name or not run["output_dir"]:
            raise web.HTTPError(404, f"run {rid} has no {kind}")
        # read by the owner's own server: a link planted in the run folder leads only where
        # the owner may go
        try:
            async with self.servers.lease(run["owner"]):
                model = await self.servers.contents(
                    run["owner"],
                    f"{run['output_dir']}/{name}",
                    type="file",
                    format="text",
                    content=1,
                )
        except NotFound:
            raise web.HTTPError(404, f"run {rid}: {name} is no longer there") from None
        except EchoesError as exc:
            raise web.HTTPError(503, str(exc)) from None
        self.set_header("Content-Type", FILES[kind])
        if kind == "html":
            # a notebook's HTML is the owner's content: no scripts, no access to this origin
            self.set_header("Content-Security-Policy", "sandbox")
        else:
            self.set_header("Content-Disposition", f'attachment; filename="{name}"')
        self.finish(model.get("content") or "")


class FairHandler(ReportsAPI):
    """A run's crate read as the owner (as :class:`FileHandler`), FAIR-assessed."""

    async def get(self, rid):
        from echoes_lab import fair

        run = self.run_or_404(rid)
        name = run["outputs"].get("crate")
        if not name or not run["output_dir"]:
            raise web.HTTPError(404, f"run {rid} has no crate")
        try:
            async with self.servers.lease(run["owner"]):
                model = await self.servers.contents(
                    run["owner"], f"{run['output_dir']}/{name}", type="file", format="text",
                    content=1)
            doc = json.loads(model.get("content") or "")
            result = fair.assess_crate_metadata(doc, f"run {rid}", label=f"run {rid}'s crate")
        except NotFound:
            raise web.HTTPError(404, f"run {rid}: {name} is no longer there") from None
        except ValueError:
            raise web.HTTPError(400, f"run {rid}: its crate is not JSON") from None
        except EchoesError as exc:
            raise web.HTTPError(503 if isinstance(exc, ServerError) else 400, str(exc)) from None
        self.write_json(result.to_dict())


class NotebooksHandler(ReportsAPI):
    """The notebooks in the user's home and projects, for the page's picker: listed in the
    user's own server without following links (:func:`.authorship.list_notebooks`)."""

    async def get(self):
        try:
            found = await authorship.list_notebooks(self.servers, self.current_user["name"],
                                                    [self.cfg.outputs])
        except EchoesError as exc:
            raise web.HTTPError(503, str(exc)) from None
        found = sorted(found, key=lambda n: n["path"])[:500]
        if self.get_argument("details", ""):
            self.write_json(found)
        else:
            self.write_json([n["path"] for n in found])


class ParametersHandler(ReportsAPI):
    """A notebook's parameters (from its cell tagged ``parameters``) for the page's form."""

    async def get(self):
        from echoes_lab.runs import notebook_parameters

        try:
            path = check_notebook_path(self.get_argument("path"))
        except ValueError as exc:
            raise web.HTTPError(400, str(exc)) from None
        notebook = await self.read_notebook(self.current_user["name"], path)
        try:
            params = notebook_parameters(notebook)
        except EchoesError as exc:
            raise web.HTTPError(400, f"{path}: {exc}") from None
        self.write_json(
            [
                {"name": p.name, "type": p.type, "default": p.default, "help": p.help}
                for p in params.values()
            ]
        )


class CronHandler(ReportsAPI):
    def get(self):
        expr = self.get_argument("expr", "")
        try:
            cron = check_cron(expr, self.cfg.min_interval)
        except ValueError as exc:
            raise web.HTTPError(400, str(exc)) from None
        times = next_times(cron, self.scheduler.clock(), 3)
        self.write_json(
            {
                "cron": cron,
                "description": describe_cron(cron),
                "next": [t.isoformat() for t in times],
            }
        )


class DisableUserHandler(ReportsAPI):
    """Admins (and the workshops tooling with an admin's token): pause a user's schedules."""

    async def post(self, name):
        if not self.current_user.get("admin"):
            raise web.HTTPError(403, "only admins may disable another user's schedules")
        why = self.get_json_body().get("reason") or f"{name}'s schedules were disabled by an admin"
        count = await self.scheduler.disable_owner(name, str(why)[:500])
        self.write_json({"user": name, "disabled": count})


class PageHandler(_Reports, ServiceHandler):
    @web.authenticated
    def get(self):
        user = self.current_user
        owner = None if user.get("admin") else user["name"]
        schedules = []
        for s in self.store.schedules(owner):
            try:
                words = describe_cron(s["cron"])
            except Exception:
                words = ""
            schedules.append(
                {
                    **s,
                    "words": words,
                    "runs": [self.run_model(r) for r in self.store.runs(s["id"], 5)],
                }
            )
        token = self.xsrf_token  # bytes: the scaffold's namespace would render "b'…'"
        self.render_page(
            "reports.html",
            xsrf_token=token.decode() if isinstance(token, bytes) else token,
            schedules=schedules,
            admin=user.get("admin", False),
            min_interval=self.cfg.min_interval,
            server=self.cfg.server,
        )


def handlers() -> list[tuple]:
    return [
        ("", PageHandler),
        ("api/schedules", SchedulesHandler),
        (r"api/schedules/(\d+)", ScheduleHandler),
        (r"api/schedules/(\d+)/run", RunNowHandler),
        (r"api/schedules/(\d+)/confirm", ConfirmHandler),
        (r"api/runs/(\d+)", RunHandler),
        (r"api/runs/(\d+)/files/(\w+)", FileHandler),
        (r"api/runs/(\d+)/fair", FairHandler),
        ("api/notebooks", NotebooksHandler),
        ("api/notebooks/parameters", ParametersHandler),
        ("api/cron", CronHandler),
        (r"api/users/([^/]+)/disable", DisableUserHandler),
    ]


def proxy_url(settings) -> str:
    """Where users' servers are reached: the hub's public address (loopback if unbound)."""
    if os.environ.get("ECHOES_PROXY_URL"):
        return os.environ["ECHOES_PROXY_URL"]
    ip = settings.hub.ip if settings.hub.ip not in ("", "0.0.0.0", "::") else "127.0.0.1"
    return f"http://{ip}:{settings.hub.port}"


class ReportsService(Service):
    """Scheduled notebook runs in owners' named servers (see :mod:`.scheduler`).

    The service keeps its database and lock in ``<state>/reports/``, a folder of its own:
    under root the hub runs it as ``reports.service_user`` (an unprivileged account) and
    creates that folder for it.
    """

    service_name = "reports"
    name = "echoes-reports"
    store: Store | None = None
    scheduler: Scheduler | None = None

    @property
    def state(self) -> Path:
        return self.settings.state_dir / "reports"

    @property
    def lock_path(self) -> Path:
        return self.state / "reports.lock"

    def utcnow(self) -> datetime:
        """Now (UTC), moved by ``<state>/reports/clock-offset`` (seconds) when that exists.

        The offset file is a test seam, as ``utcnow`` is jupyterhub-idle-culler's: tests jump
        to a fire time instead of waiting for it. Only root and the service account can write
        that folder.
        """
        t = datetime.now(UTC)
        try:
            return t + timedelta(seconds=float((self.state / "clock-offset").read_text()))
        except (OSError, ValueError):
            return t

    def handlers(self) -> list[tuple]:
        return handlers()

    def metrics_collectors(self) -> list:
        from echoes_lab.hub.services.reports.metrics import collectors

        return collectors(self)

    def tornado_settings(self) -> dict:
        s = self.settings
        self.state.mkdir(mode=0o700, exist_ok=True)
        self.store = Store(self.state / "reports.sqlite")
        servers = OwnerServers(
            self.hub_api_url,
            self.api_token,
            proxy_url(s),
            s.reports.server,
            s.reports.server_linger,
            s.spawner.start_timeout,
        )
        self.scheduler = Scheduler(s, self.store, servers, clock=lambda: self.utcnow())
        return {
            "store": self.store,
            "scheduler": self.scheduler,
            "servers": servers,
            "reports_settings": s.reports,
        }

    async def start_tasks(self) -> None:
        self.scheduler.start()
        self.scheduler._spawn(self._watch_owners())
        self.log.info("%d schedules", len(self.store.schedules()))

    async def _watch_owners(self) -> None:
        import asyncio

        while True:
            await asyncio.sleep(60)
            try:
                await self.scheduler.check_owners()
            except Exception as exc:
                self.log.warning("checking owners: %s", exc)

    async def stop_tasks(self) -> None:
        if self.scheduler is not None:
            await self.scheduler.stop()
        if self.store is not None:
            self.store.close()
