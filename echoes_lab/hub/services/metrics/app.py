"""The metrics service: runs Prometheus, serves the admins' usage and contributions dashboard.

Prometheus (Debian's ``prometheus``, ``[metrics] prometheus``) is this service's child: it is
started with the service (so with the hub), its configuration generated from the hub's list
of services, its samples in ``<state_dir>/metrics/data`` kept ``[metrics] retention_days``,
listening on loopback only, and it ends with the service (SIGTERM, and the kernel's
parent-death signal if the service is killed). It scrapes the hub's ``/hub/metrics`` and every
service's ``/metrics`` with this service's hub token (``read:metrics``), which it reads from a
0600 file and which is never logged.

The dashboard (``/services/metrics/``, admins) and its exports (``api/usage`` as JSON,
``api/usage.csv``) are instant queries of Prometheus, with charts of range queries over the
last ``days`` (:mod:`.charts`; ``api/series`` gives their points as JSON). A figure counting
people (active users, users, running servers, seats, members) below ``[metrics] min_group`` is
not shown: the value is ``null`` with a note, so a small group's activity cannot be read off
the page.

The service also counts what no other part has (:mod:`.counts`): openings of catalogued
datasets, which users' labs post to ``api/opened``, servers' lifetimes, workshops' active seats
and projects' members read from the hub's REST API every scrape interval, and Dask Gateway's
clusters, workers and cores.
"""

from __future__ import annotations

import asyncio
import csv
import ctypes
import io
import json
import os
import signal
import subprocess
import time
from datetime import datetime
from pathlib import Path
from urllib.parse import urlparse

from tornado import web
from tornado.httpclient import AsyncHTTPClient, HTTPClientError

from echoes_lab.errors import EchoesError
from echoes_lab.hub import i18n
from echoes_lab.hub.i18n import N_
from echoes_lab.hub.services import free_port, observe
from echoes_lab.hub.services.base import APIHandler, Service, ServiceHandler, TokenOrXSRF
from echoes_lab.hub.services.metrics import charts
from echoes_lab.hub.services.metrics.counts import Counts, HubReading, MetricsCollector

#: services on our scaffold (``/metrics`` with read:metrics); others are not scraped
SCAFFOLD_SERVICES = ("reports", "commons", "knowledge", "workshops", "projects", "metrics")

#: the dashboard's figures: (section, figure, PromQL, label shown, counts people); JupyterHub labels
#: statuses with its enums' str() ("LoginStatus.success"), hence the regular expressions. The
#: section and figure are marked for the catalogue: the page shows them in its language, the CSV
#: and JSON keep them as written
FIGURES = [
    (N_("people"), N_("active users, last 24 h"),
     'jupyterhub_active_users{period="24h"}', "", True),
    (N_("people"), N_("active users, last 7 days"),
     'jupyterhub_active_users{period="7d"}', "", True),
    (N_("people"), N_("active users, last 30 days"),
     'jupyterhub_active_users{period="30d"}', "", True),
    (N_("people"), N_("users"), "jupyterhub_total_users", "", True),
    (N_("people"), N_("sign-ins"),
     'sum(jupyterhub_login_duration_seconds_count{status=~".*success"})',
     "", False),
    (N_("servers"), N_("servers running"), "jupyterhub_running_servers", "", True),
    (N_("servers"), N_("servers started"), 'sum(jupyterhub_server_spawn_duration_seconds_count'
     '{status=~".*success"})', "", False),
    (N_("servers"), N_("mean start time (s)"), 'sum(jupyterhub_server_spawn_duration_seconds_sum'
     '{status=~".*success"}) / sum(jupyterhub_server_spawn_duration_seconds_count'
     '{status=~".*success"})', "", False),
    (N_("servers"), N_("servers ended"), "echoes_server_lifetime_seconds_count", "", False),
    (N_("servers"), N_("mean lifetime (min)"), "echoes_server_lifetime_seconds_sum / 60 / "
     "echoes_server_lifetime_seconds_count", "", False),
    (N_("servers"), N_("servers ended having run at most (s)"),
     'echoes_server_lifetime_seconds_bucket{le!="+Inf"}', "le", False),
    (N_("reports"), N_("runs"), "sum by (status) (echoes_reports_runs)", "status", False),
    (N_("reports"), N_("missed fires"), "echoes_reports_missed_fires", "", False),
    (N_("reports"), N_("queue"), "echoes_reports_queue_length", "", False),
    (N_("commons"), N_("annotations by actor"), "sum by (actor) (echoes_commons_annotations)",
     "actor", False),
    (N_("commons"), N_("annotations by motivation"),
     "sum by (motivation) (echoes_commons_annotations)", "motivation", False),
    (N_("datasets"), N_("openings"), "sum by (dataset) (echoes_datasets_opened_total)", "dataset",
     False),
    (N_("knowledge"), N_("queries"), 'sum(echoes_service_request_duration_seconds_count'
     '{service="knowledge", handler="SparqlHandler"})', "", False),
    (N_("workshops"), N_("workshops"), "sum by (state) (echoes_workshops)", "state", False),
    (N_("workshops"), N_("seats"), "sum by (state) (echoes_workshops_seats)", "state", True),
    (N_("workshops"), N_("active seats"), "echoes_workshops_active_seats", "", True),
    (N_("projects"), N_("projects"), "echoes_projects", "", False),
    (N_("projects"), N_("members"), "echoes_projects_members", "", True),
    (N_("gateway"), N_("Dask clusters"),
     'echoes_gateway_clusters{status=~"created|submitted|running"}',
     "status", False),
    (N_("gateway"), N_("Dask workers"),
     'echoes_gateway_workers{status=~"created|submitted|running"}',
     "status", False),
    (N_("gateway"), N_("cores held"), "echoes_gateway_cores", "", False),
]


def _die_with_parent() -> None:
    # PR_SET_PDEATHSIG (1): Prometheus gets SIGTERM when this service dies, even by SIGKILL
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)


def _write_private(path: Path, text: str) -> None:
    """Write ``path`` 0600, never through a link someone placed there."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with open(fd, "w") as fh:
        fh.write(text)
    os.replace(tmp, path)


class MetricsService(Service):
    service_name = "metrics"
    prometheus: subprocess.Popen | None = None
    counts: Counts | None = None
    reading: HubReading | None = None
    _watch: asyncio.Task | None = None
    _catalogue: tuple[float, frozenset] = (-1.0, frozenset())

    def handlers(self) -> list[tuple]:
        return [("", DashboardHandler), ("api/usage", UsageHandler),
                ("api/usage.csv", UsageCSVHandler), ("api/series", SeriesHandler),
                ("api/opened", OpenedHandler)]

    def metrics_collectors(self) -> list:
        return [MetricsCollector(self)]

    @property
    def folder(self) -> Path:
        return self.settings.state_dir / "metrics"

    async def scrape_configs(self, token: str) -> list[dict]:
        """Prometheus scrape jobs: the hub, then each of our services the hub lists."""
        auth = {"type": "token", "credentials_file": str(self.folder / "token")}
        hub = urlparse(self.hub_api_url)
        jobs = [{"job_name": "jupyterhub", "metrics_path": urlparse(
                    self.hub_api_url.rstrip("/").removesuffix("/api") + "/metrics").path,
                 "authorization": auth, "static_configs": [{"targets": [hub.netloc]}]}]
        r = await AsyncHTTPClient().fetch(self.hub_api_url.rstrip("/") + "/services",
                                          headers={"Authorization": f"token {token}"})
        for name, model in sorted(json.loads(r.body).items()):
            if name not in SCAFFOLD_SERVICES or not model.get("url"):
                continue
            jobs.append({"job_name": name, "metrics_path": f"{model['prefix']}metrics",
                         "authorization": auth,
                         "static_configs": [{"targets": [urlparse(model["url"]).netloc]}]})
        return jobs

    async def start_tasks(self) -> None:
        m = self.settings.metrics
        binary = Path(m.prometheus)
        if not binary.is_file():
            msg = (f"[metrics] prometheus = {m.prometheus!r} in {self.settings.source}: no such "
                   f"program; install Debian's prometheus package or set [metrics] enabled = "
                   f"false")
            raise EchoesError(msg)
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        token = self.api_token
        _write_private(self.folder / "token", token)
        interval = f"{m.scrape_interval}s"
        config = {"global": {"scrape_interval": interval,
                             "scrape_timeout": f"{min(m.scrape_interval, 10)}s"},
                  "scrape_configs": await self.scrape_configs(token)}
        # JSON is YAML: Prometheus reads it as its configuration file
        _write_private(self.folder / "prometheus.yml", json.dumps(config, indent=1))
        self.prometheus_port = m.prometheus_port or free_port()
        self.prometheus_url = f"http://127.0.0.1:{self.prometheus_port}"
        self.prometheus = subprocess.Popen(
            [str(binary), f"--config.file={self.folder / 'prometheus.yml'}",
             f"--storage.tsdb.path={self.folder / 'data'}",
             f"--storage.tsdb.retention.time={m.retention_days}d",
             f"--web.listen-address=127.0.0.1:{self.prometheus_port}", "--log.level=warn"],
            stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent,
            env={k: v for k, v in os.environ.items() if k != "JUPYTERHUB_API_TOKEN"})
        client = AsyncHTTPClient()
        for _ in range(300):  # up to 30 s: a busy machine
            if self.prometheus.poll() is not None:
                msg = f"prometheus exited with {self.prometheus.returncode} (see the hub's log)"
                raise EchoesError(msg)
            try:
                await client.fetch(f"{self.prometheus_url}/-/ready", request_timeout=2)
                break
            except (HTTPClientError, OSError):
                await asyncio.sleep(0.1)
        self.log.info("prometheus on 127.0.0.1:%d, scraping every %s", self.prometheus_port,
                      interval)
        self.counts = Counts(self.folder / "counts.sqlite")
        self._watch = asyncio.ensure_future(self.watch_hub_usage())

    async def watch_hub_usage(self) -> None:
        """Read the hub's servers and groups every scrape interval (:meth:`read_hub`)."""
        while True:
            try:
                await self.read_hub()
            except (HTTPClientError, OSError, ValueError, KeyError) as exc:
                self.log.warning("reading the hub's servers and groups failed: %s", exc)
            await asyncio.sleep(self.settings.metrics.scrape_interval)

    async def _hub_items(self, path: str) -> list[dict]:
        """Every item of a paginated list of the hub's REST API."""
        token = self.api_token
        headers = {"Authorization": f"token {token}",
                   "Accept": "application/jupyterhub-pagination+json"}
        items, offset = [], 0
        while True:
            sep = "&" if "?" in path else "?"
            r = await AsyncHTTPClient().fetch(
                f"{self.hub_api_url.rstrip('/')}{path}{sep}offset={offset}&limit=200",
                headers=headers)
            page = json.loads(r.body)
            items += page["items"]
            after = (page.get("_pagination") or {}).get("next")
            if not after:
                return items
            offset = after["offset"]

    async def read_hub(self) -> None:
        """Servers' lifetimes, workshops' active seats and projects' members, from the hub."""
        from echoes_lab.hub.services.projects import is_project_group
        from echoes_lab.hub.services.workshops import registry

        users = await self._hub_items("/users?state=active")
        running, with_server = {}, set()
        for user in users:
            for server, model in (user.get("servers") or {}).items():
                if not model.get("started"):
                    continue
                with_server.add(user["name"])
                started = datetime.fromisoformat(model["started"].replace("Z", "+00:00"))
                key = self.counts.server_key(user["name"], server, model["started"])
                running[key] = started.timestamp()
        self.counts.servers_seen(running, self.utcnow().timestamp())
        seats = set()
        for workshop in registry.load_all(self.settings.state_dir):
            if workshop.is_open:
                seats.update(workshop.seats)
        members = set()
        for group in await self._hub_items("/groups"):
            if is_project_group(group):
                members.update(group.get("users") or ())
        self.reading = HubReading(active_seats=len(seats & with_server),
                                  project_members=len(members))

    def catalogued(self) -> frozenset:
        """Names of the deployment's catalogued datasets (packaged and shared catalogues)."""
        from echoes_lab import datasets

        shared = self.settings.shared_dir / "catalog.yaml"
        stamp = shared.stat().st_mtime if shared.is_file() else 0.0
        if self._catalogue[0] != stamp:
            names = frozenset(e["name"] for e in datasets.entries(self.settings.shared_dir)
                              if e["source"] != "user")
            self._catalogue = (stamp, names)
        return self._catalogue[1]

    async def stop_tasks(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
        if self.counts is not None:
            self.counts.close()
        proc = self.prometheus
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        for _ in range(50):
            if proc.poll() is not None:
                return
            await asyncio.sleep(0.1)
        proc.kill()
        proc.wait()

    async def query(self, promql: str) -> list[dict]:
        """An instant query of Prometheus: its ``data.result`` vector."""
        r = await AsyncHTTPClient().fetch(
            f"{self.prometheus_url}/api/v1/query", method="POST",
            body=f"query={_quote(promql)}",
            headers={"Content-Type": "application/x-www-form-urlencoded"})
        return json.loads(r.body)["data"]["result"]

    async def usage(self) -> list[dict]:
        """The dashboard's rows: section, figure, label, value (None when withheld), note."""
        rows = []
        floor = self.settings.metrics.min_group
        for section, figure, promql, label, people in FIGURES:
            for item in await self.query(promql) or [{"metric": {}, "value": [0, "0"]}]:
                value = float(item["value"][1])
                row = {"section": section, "figure": figure,
                       "label": item["metric"].get(label, "") if label else "",
                       "value": value if value == value else None, "note": ""}  # NaN: none
                if people and row["value"] is not None and 0 < value < floor:
                    row["value"], row["note"] = None, f"fewer than {floor} people"
                rows.append(row)
        return rows


    async def query_range(self, promql: str, start: float, end: float) -> list[dict]:
        """A range query from ``start`` to ``end``: about 120 points (at most one a scrape)."""
        step = max(self.settings.metrics.scrape_interval, (end - start) / 120)
        body = f"query={_quote(promql)}&start={start:.3f}&end={end:.3f}&step={step:.3f}"
        r = await AsyncHTTPClient().fetch(
            f"{self.prometheus_url}/api/v1/query_range", method="POST", body=body,
            headers={"Content-Type": "application/x-www-form-urlencoded"})
        return json.loads(r.body)["data"]["result"]

    async def series(self, days: float) -> list[dict]:
        """The charts' series over the last ``days``: title, window (start, end, epoch
        seconds), series by label, each a list of (time, value), withheld values None."""
        out = []
        floor = self.settings.metrics.min_group
        end = time.time()
        start = end - days * 86400
        for title, promql, label, people in charts.CHARTS:
            lines = {}
            for item in await self.query_range(promql, start, end):
                points = [(float(t), float(v)) for t, v in item["values"]]
                if people:
                    points = charts.withheld(points, floor)
                lines[item["metric"].get(label, "") if label else ""] = points
            out.append({"title": title, "people": people, "window": [start, end],
                        "series": lines})
        return out


def _quote(text: str) -> str:
    from urllib.parse import quote

    return quote(text, safe="")


class _AdminOnly:
    def check_admin(self):
        # an admin signed in, or a token with read:metrics (an admin's lab: the monthly report)
        user = self.current_user
        if not user or not (user.get("admin") or observe.may_read_metrics(user)):
            raise web.HTTPError(403, "the usage dashboard is for the hub's admins")


def _days(handler: web.RequestHandler) -> float:
    """The period charted: ``?days=`` (default 30), a positive number up to the retention."""
    raw = handler.get_argument("days", "30")
    try:
        days = float(raw)
    except ValueError:
        days = -1.0
    limit = handler.service.settings.metrics.retention_days
    if not 0 < days <= limit:
        raise web.HTTPError(400, f"'days' is {raw!r}: give a number of days above 0 and at most "
                                 f"{limit} (the samples kept)")
    return days


class DashboardHandler(_AdminOnly, ServiceHandler):
    @web.authenticated
    async def get(self):
        self.check_admin()
        days = _days(self)
        rows = await self.service.usage()
        top = max((r["value"] or 0 for r in rows), default=0) or 1
        figures = []
        words = i18n.translations(self.page_language())  # the charts' titles in it
        for chart in await self.service.series(days):
            svg = await asyncio.to_thread(charts.svg, words.gettext(chart["title"]),
                                          chart["series"], chart["window"])
            figures.append({**chart, "svg": svg})
        self.render_page("metrics.html", rows=rows, top=top, charts=figures, days=days,
                         floor=self.service.settings.metrics.min_group)


class SeriesHandler(_AdminOnly, APIHandler):
    async def get(self):
        self.check_admin()
        days = _days(self)
        self.write_json({"days": days, "charts": await self.service.series(days)})


class OpenedHandler(TokenOrXSRF, APIHandler):
    """``POST api/opened {"dataset": NAME}``: a lab opened a catalogued dataset (counted)."""

    async def post(self):
        name = self.get_json_body().get("dataset")
        if not isinstance(name, str) or name not in self.service.catalogued():
            raise web.HTTPError(400, f"'dataset' is {name!r}: not a dataset of this hub's "
                                     f"catalogue (echoes-lab datasets list names them)")
        self.service.counts.count_opening(name, self.service.utcnow().date().isoformat())
        self.set_status(204)
        self.finish()


class UsageHandler(_AdminOnly, APIHandler):
    async def get(self):
        self.check_admin()
        self.write_json({"figures": await self.service.usage()})


class UsageCSVHandler(_AdminOnly, APIHandler):
    async def get(self):
        self.check_admin()
        out = io.StringIO()
        writer = csv.DictWriter(out, ["section", "figure", "label", "value", "note"])
        writer.writeheader()
        writer.writerows(await self.service.usage())
        self.set_header("Content-Type", "text/csv; charset=utf-8")
        self.set_header("Content-Disposition", 'attachment; filename="echoes-usage.csv"')
        self.finish(out.getvalue())
