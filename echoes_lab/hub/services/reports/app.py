"""The reports service's web side: a REST API and one small HTML page (tornado).

People sign in through the hub (hub OAuth: ``HubOAuthenticated``); scripts send a hub API token
whose scopes include ``access:services!service=reports``. A user sees and changes only their
own schedules, runs and outputs (another user's answer 404, as if absent); admins see all.

API, under the service prefix (``/services/reports/``):

=======  ==================================  ============================================
GET      ``api/schedules``                   your schedules (admins: everyone's)
POST     ``api/schedules``                   ``{name, notebook, cron, parameters, enabled}``
GET      ``api/schedules/<id>``              one schedule with its run history
PATCH    ``api/schedules/<id>``              change ``name``/``cron``/``parameters``/``enabled``
DELETE   ``api/schedules/<id>``              remove the schedule (history and files stay)
POST     ``api/schedules/<id>/run``          run now
GET      ``api/runs/<id>``                   one run
GET      ``api/runs/<id>/files/<kind>``      ``notebook``, ``html`` or ``crate`` of a run
=======  ==================================  ============================================

``notebook`` is a path relative to the owner's home; parameters are checked against its cell
tagged ``parameters`` when the schedule is saved.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from jupyterhub.services.auth import HubOAuthCallbackHandler, HubOAuthenticated
from jupyterhub.utils import url_path_join
from tornado import web
from tornado.template import Template

from echoes_lab.errors import EchoesError
from echoes_lab.hub.services.reports.scheduler import Scheduler, check_cron, next_fire, owner_home, resolve_notebook
from echoes_lab.hub.services.reports.store import Store, now

FILES = {"notebook": "application/x-ipynb+json", "html": "text/html; charset=utf-8",
         "crate": "application/ld+json"}


class _Base(HubOAuthenticated, web.RequestHandler):
    @property
    def store(self) -> Store:
        return self.application.settings["store"]

    @property
    def scheduler(self) -> Scheduler:
        return self.application.settings["scheduler"]

    @property
    def prefix(self) -> str:
        return self.application.settings["prefix"]

    @property
    def user(self) -> dict:
        return self.current_user

    def may_see(self, owner: str) -> bool:
        return self.user.get("admin", False) or owner == self.user["name"]

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
        links = {k: url_path_join(self.prefix, f"api/runs/{run['id']}/files/{k}") for k in run["outputs"]}
        return {**run, "links": links}


class ApiHandler(_Base):
    def prepare(self):
        if self.current_user is None or self.current_user.get("kind", "user") != "user":
            raise web.HTTPError(403, "sign in through the hub, or send a hub API token with the "
                                     "scope access:services!service=reports")

    def write_error(self, status_code, **kwargs):
        exc = kwargs.get("exc_info", (None, None))[1]
        message = getattr(exc, "log_message", None) or self._reason
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"status": status_code, "message": message}))

    def body(self) -> dict:
        try:
            data = json.loads(self.request.body or b"{}")
        except ValueError:
            raise web.HTTPError(400, "the request body is not JSON") from None
        if not isinstance(data, dict):
            raise web.HTTPError(400, "the request body must be a JSON object")
        return data

    def validated(self, owner: str, data: dict, current: dict | None = None) -> dict:
        """The schedule fields in ``data``, checked: cron, notebook, parameters."""
        from echoes_lab.runs import check_parameters

        known = {"name", "notebook", "cron", "parameters", "enabled"}
        unknown = set(data) - known
        if unknown:
            raise web.HTTPError(400, f"unknown field(s) {', '.join(sorted(unknown))}; known: "
                                     f"{', '.join(sorted(known))}")
        fields = dict(current or {})
        fields.update(data)
        for key in ("notebook", "cron"):
            if not isinstance(fields.get(key), str) or not fields[key].strip():
                raise web.HTTPError(400, f"'{key}' is required (a string)")
        if not isinstance(fields.get("parameters", {}), dict):
            raise web.HTTPError(400, "'parameters' must be an object of name: value")
        try:
            cron = check_cron(fields["cron"])
            path = resolve_notebook(self.application.settings["hub_settings"], owner, fields["notebook"])
            params = check_parameters(path, fields.get("parameters") or {})
        except (ValueError, EchoesError) as exc:
            raise web.HTTPError(400, str(exc)) from None
        out = {k: v for k, v in data.items() if k in ("name", "enabled")}
        if "name" in out and not isinstance(out["name"], str):
            raise web.HTTPError(400, "'name' must be a string")
        if "enabled" in out and not isinstance(out["enabled"], bool):
            raise web.HTTPError(400, "'enabled' must be true or false")
        out.update(cron=cron, notebook=fields["notebook"], parameters=params)
        return out

    def reply(self, model, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(model, default=str))


class SchedulesHandler(ApiHandler):
    def get(self):
        owner = None if self.user.get("admin") else self.user["name"]
        self.reply([{**s, "last_run": next(iter(self.store.runs(s["id"], 1)), None)}
                    for s in self.store.schedules(owner)])

    def post(self):
        owner = self.user["name"]
        data = self.validated(owner, self.body())
        name = data.pop("name", None) or Path(data["notebook"]).stem
        sch = self.store.add_schedule(owner, name, data["notebook"], data["parameters"], data["cron"],
                                      next_fire(data["cron"], now()), data.get("enabled", True))
        self.reply(sch, 201)


class ScheduleHandler(ApiHandler):
    def get(self, sid):
        sch = self.schedule_or_404(sid)
        self.reply({**sch, "runs": [self.run_model(r) for r in self.store.runs(sch["id"])]})

    def patch(self, sid):
        sch = self.schedule_or_404(sid)
        data = self.validated(sch["owner"], self.body(), current=sch)
        if data.get("enabled", sch["enabled"]) and (data["cron"] != sch["cron"] or not sch["enabled"]):
            data["next_run"] = next_fire(data["cron"], now())  # no catch-up for a paused schedule
        self.reply(self.store.update_schedule(sch["id"], **data))

    def delete(self, sid):
        sch = self.schedule_or_404(sid)
        self.store.delete_schedule(sch["id"])
        self.set_status(204)
        self.finish()


class RunNowHandler(ApiHandler):
    def post(self, sid):
        sch = self.schedule_or_404(sid)
        self.reply(self.run_model(self.scheduler.enqueue(sch, "manual")), 202)


class RunHandler(ApiHandler):
    def get(self, rid):
        self.reply(self.run_model(self.run_or_404(rid)))


class FileHandler(ApiHandler):
    def get(self, rid, kind):
        run = self.run_or_404(rid)
        name = run["outputs"].get(kind)
        if kind not in FILES or not name or not run["output_dir"]:
            raise web.HTTPError(404, f"run {rid} has no {kind}")
        # outputs live in the owner's home, which they control: refuse anything that leads
        # outside it (a symbolic link planted in place of a run folder or file)
        home = owner_home(self.application.settings["hub_settings"], run["owner"]).resolve()
        path = Path(run["output_dir"]) / name
        real = path.resolve()
        if not real.is_relative_to(home) or path.is_symlink() or not real.is_file():
            raise web.HTTPError(404, f"run {rid}: {name} is no longer there")
        self.set_header("Content-Type", FILES[kind])
        if kind == "html":
            # a notebook's HTML is the owner's content: no scripts, no access to this origin
            self.set_header("Content-Security-Policy", "sandbox")
        else:
            self.set_header("Content-Disposition", f'attachment; filename="{name}"')
        with open(real, "rb") as fh:
            self.finish(fh.read())


PAGE = Template("""<!doctype html>
<html><head><meta charset="utf-8"><title>Scheduled reports</title>
<meta name="xsrf" content="{{ xsrf }}">
<style>body{font-family:sans-serif;margin:1.5em;max-width:70em}td,th{padding:3px 8px;
border-bottom:1px solid #ddd;text-align:left}.failed,.interrupted{color:#b00;font-weight:bold}
.completed{color:#070}input{margin-right:.5em}</style></head><body>
<p><a href="{{ hub }}">&larr; ECHOES Lab home</a> · signed in as <b>{{ user }}</b>{% if admin %} (admin: all schedules){% end %}</p>
<h1>Scheduled reports</h1>
<p>A notebook from your home runs on a cron schedule (UTC), as you, while you are away. Every run
keeps its executed notebook, an HTML rendering and its RO-Crate provenance.</p>
<table><tr><th>#</th><th>owner</th><th>name</th><th>notebook</th><th>cron</th><th>next</th><th>recent runs</th><th></th></tr>
{% for s in schedules %}<tr><td>{{ s['id'] }}</td><td>{{ s['owner'] }}</td><td>{{ s['name'] }}</td>
<td>{{ s['notebook'] }}</td><td><code>{{ s['cron'] }}</code>{% if not s['enabled'] %} (paused){% end %}</td>
<td>{{ s['next_run'] or '' }}</td><td>{% for r in s['runs'] %}<div><span class="{{ r['status'] }}">{{ r['status'] }}</span>
{{ r['started'] or r['queued'] }}{% for k, href in r['links'].items() %} <a href="{{ href }}">{{ k }}</a>{% end %}
{% if r['error'] %}<small>{{ r['error'] }}</small>{% end %}</div>{% end %}</td>
<td><button onclick="act('POST', 'api/schedules/{{ s['id'] }}/run')">Run now</button></td></tr>{% end %}
</table>
<h2>New schedule</h2>
<form onsubmit="create(event)"><input name="name" placeholder="name">
<input name="notebook" placeholder="notebook, e.g. reports/gallery3.ipynb" required size="36">
<input name="cron" placeholder="0 6 1 * *" required><input name="parameters" placeholder='{"gallery": "G3"}' size="24">
<button>Save</button></form><p id="msg"></p>
<script>
const xsrf = document.querySelector('meta[name=xsrf]').content;
async function act(method, path, body) {
  const r = await fetch(path, {method, body, headers: {'X-XSRFToken': xsrf, 'Content-Type': 'application/json'}});
  if (r.ok) { location.reload(); } else { document.getElementById('msg').textContent = (await r.json()).message; }
}
function create(e) {
  e.preventDefault();
  const f = new FormData(e.target);
  let parameters = {};
  try { parameters = JSON.parse(f.get('parameters') || '{}'); }
  catch (err) { document.getElementById('msg').textContent = 'parameters: not JSON'; return; }
  act('POST', 'api/schedules', JSON.stringify({name: f.get('name') || undefined, notebook: f.get('notebook'),
      cron: f.get('cron'), parameters}));
}
</script></body></html>""")


class PageHandler(_Base):
    @web.authenticated
    def get(self):
        user = self.current_user
        owner = None if user.get("admin") else user["name"]
        schedules = []
        for s in self.store.schedules(owner):
            schedules.append({**s, "runs": [self.run_model(r) for r in self.store.runs(s["id"], 5)]})
        self.finish(PAGE.generate(xsrf=self.xsrf_token, hub=self.application.settings["hub_prefix"],
                                  user=user["name"], admin=user.get("admin", False), schedules=schedules))


def make_app(hub_settings, store: Store, scheduler: Scheduler, prefix: str,
             hub_prefix: str = "/hub/") -> web.Application:
    """The tornado application of the service, mounted at ``prefix`` (``/services/reports/``)."""
    routes = [
        ("", PageHandler), ("oauth_callback", HubOAuthCallbackHandler),
        ("api/schedules", SchedulesHandler), (r"api/schedules/(\d+)", ScheduleHandler),
        (r"api/schedules/(\d+)/run", RunNowHandler), (r"api/runs/(\d+)", RunHandler),
        (r"api/runs/(\d+)/files/(\w+)", FileHandler),
    ]
    return web.Application(
        [(url_path_join(prefix, path), handler) for path, handler in routes],
        # the OAuth state cookie's key: a new one per start only means signing in again
        cookie_secret=os.urandom(32), store=store, scheduler=scheduler, prefix=prefix,
        hub_settings=hub_settings, hub_prefix=hub_prefix)
