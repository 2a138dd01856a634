"""The metrics service: runs Prometheus, serves the admins' usage and contributions dashboard.

Prometheus (Debian's ``prometheus``, ``[metrics] prometheus``) is this service's child: it is
started with the service (so with the hub), its configuration generated from the hub's list
of services, its samples in ``<state_dir>/metrics/data`` kept ``[metrics] retention_days``,
listening on loopback only, and it ends with the service (SIGTERM, and the kernel's
parent-death signal if the service is killed). It scrapes the hub's ``/hub/metrics`` and every
service's ``/metrics`` with this service's hub token (``read:metrics``), which it reads from a
0600 file and which is never logged.

The dashboard (``/services/metrics/``, admins) and its exports (``api/usage`` as JSON,
``api/usage.csv``) are instant queries of Prometheus. A figure counting people (active users,
users, running servers, seats) below ``[metrics] min_group`` is not shown: the value is
``null`` with a note, so a small group's activity cannot be read off the page.
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
from pathlib import Path
from urllib.parse import urlparse

from tornado import web
from tornado.httpclient import AsyncHTTPClient, HTTPClientError

from echoes_lab.errors import EchoesError
from echoes_lab.hub.services import free_port
from echoes_lab.hub.services.base import APIHandler, Service, ServiceHandler

#: services on our scaffold (``/metrics`` with read:metrics); others are not scraped
SCAFFOLD_SERVICES = ("reports", "commons", "knowledge", "workshops", "projects", "metrics")

#: the dashboard's figures: (section, figure, PromQL, label shown, counts people); JupyterHub labels
#: statuses with its enums' str() ("LoginStatus.success"), hence the regular expressions
FIGURES = [
    ("people", "active users, last 24 h", 'jupyterhub_active_users{period="24h"}', "", True),
    ("people", "active users, last 7 days", 'jupyterhub_active_users{period="7d"}', "", True),
    ("people", "active users, last 30 days", 'jupyterhub_active_users{period="30d"}', "", True),
    ("people", "users", "jupyterhub_total_users", "", True),
    ("people", "sign-ins", 'sum(jupyterhub_login_duration_seconds_count{status=~".*success"})',
     "", False),
    ("servers", "servers running", "jupyterhub_running_servers", "", True),
    ("servers", "servers started", 'sum(jupyterhub_server_spawn_duration_seconds_count'
     '{status=~".*success"})', "", False),
    ("servers", "mean start time (s)", 'sum(jupyterhub_server_spawn_duration_seconds_sum'
     '{status=~".*success"}) / sum(jupyterhub_server_spawn_duration_seconds_count'
     '{status=~".*success"})', "", False),
    ("reports", "runs", "sum by (status) (echoes_reports_runs)", "status", False),
    ("reports", "missed fires", "echoes_reports_missed_fires", "", False),
    ("reports", "queue", "echoes_reports_queue_length", "", False),
    ("commons", "annotations by actor", "sum by (actor) (echoes_commons_annotations)",
     "actor", False),
    ("commons", "annotations by motivation",
     "sum by (motivation) (echoes_commons_annotations)", "motivation", False),
    ("knowledge", "queries", 'sum(echoes_service_request_duration_seconds_count'
     '{service="knowledge", handler="SparqlHandler"})', "", False),
    ("workshops", "workshops", "sum by (state) (echoes_workshops)", "state", False),
    ("workshops", "seats", "sum by (state) (echoes_workshops_seats)", "state", True),
    ("projects", "projects", "echoes_projects", "", False),
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

    def handlers(self) -> list[tuple]:
        return [("", DashboardHandler), ("api/usage", UsageHandler),
                ("api/usage.csv", UsageCSVHandler)]

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
        token = os.environ.get("JUPYTERHUB_API_TOKEN", "")
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

    async def stop_tasks(self) -> None:
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


def _quote(text: str) -> str:
    from urllib.parse import quote

    return quote(text, safe="")


class _AdminOnly:
    def check_admin(self):
        user = self.current_user
        if not user or not user.get("admin"):
            raise web.HTTPError(403, "the usage dashboard is for the hub's admins")


class DashboardHandler(_AdminOnly, ServiceHandler):
    @web.authenticated
    async def get(self):
        self.check_admin()
        rows = await self.service.usage()
        top = max((r["value"] or 0 for r in rows), default=0) or 1
        self.render_page("metrics.html", rows=rows, top=top)


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
