"""The service scaffold (``echoes_lab.hub.services.base``) and the one table of hub features.

The scaffold's behaviour is checked on a real process: a small service built on it, started
the way the hub starts ours (``JUPYTERHUB_*`` variables, ``--settings FILE``), answering real
HTTP requests, signalled for real. Its hub is an address where nothing listens.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import requests
from traitlets.config import Config

from echoes_lab.hub.services import Feature, free_port, host
from echoes_lab.hub.services.base import Service

from harness import gone, wait_for, wait_gone

#: services that are not ours: JupyterHub's idle culler and Dask's gateway server
THIRD_PARTY = {"jupyterhub_idle_culler", "dask_gateway_server"}

DEMO = textwrap.dedent('''
    import asyncio, os
    from tornado import web
    from echoes_lab.hub.services.base import APIHandler, Service, ServiceHandler

    class Page(ServiceHandler):
        def get(self):
            raise web.HTTPError(409, "this page is <b>busy</b>")

    class Echo(APIHandler):
        def post(self):
            self.write_json({"bytes": len(self.request.body)})

    class Teapot(APIHandler):
        def prepare(self):  # no sign-in needed: the error itself is tested
            pass

        def get(self):
            raise web.HTTPError(418, "short and stout")

    class Demo(Service):
        service_name = "demo"

        def handlers(self):
            return [("", Page), ("api/echo", Echo), ("api/teapot", Teapot)]

        async def stop_tasks(self):
            if os.environ.get("DEMO_HANG"):
                await asyncio.sleep(3600)

    if __name__ == "__main__":
        Demo.launch_instance()
''')


def _settings_file(tmp_path, extra: str = "") -> str:
    path = tmp_path / "settings.toml"
    path.write_text(f'profile = "test"\n[hub]\nstate_dir = "state"\n{extra}')
    return str(path)


class _ServiceProcess:
    """A process of demo services (``proc``, writing to ``log``) serving at ``urls``."""

    urls: list[str]
    proc: subprocess.Popen
    log: Path
    what = "the demo service"

    def wait_serving(self, timeout: float = 30):
        def answers() -> bool:
            assert self.proc.poll() is None, self.log.read_text()
            try:  # the teapot's 418 comes from the service's own handlers: it serves
                return all(requests.get(u + "api/teapot", timeout=1).status_code == 418
                           for u in self.urls)
            except (requests.ConnectionError, requests.Timeout):  # bound, not serving yet
                return False

        wait_for(answers, timeout, f"{self.what} to answer:\n{self.log}", interval=0.1)
        return self

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


class DemoProcess(_ServiceProcess):
    """The demo service, started as the hub starts a managed service."""

    def __init__(self, tmp_path, *args: str, hang: bool = False):
        script = tmp_path / "demo_service.py"
        script.write_text(DEMO)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/services/demo/"
        self.urls = [self.url]
        self.env = {**self.environment(self.port), "DEMO_HANG": "1" if hang else ""}
        self.command = [sys.executable, str(script), "--settings", _settings_file(tmp_path),
                        *args]
        self.state = tmp_path / "state"
        self.log = tmp_path / "demo.log"
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(self.command, env=self.env, stdout=log,
                                         stderr=subprocess.STDOUT)

    @staticmethod
    def environment(port: int) -> dict[str, str]:
        """What the hub gives its managed service ``demo`` on ``port``."""
        return {
            **os.environ,
            "JUPYTERHUB_SERVICE_NAME": "demo",
            "JUPYTERHUB_SERVICE_URL": f"http://127.0.0.1:{port}",
            "JUPYTERHUB_SERVICE_PREFIX": "/services/demo/",
            "JUPYTERHUB_API_URL": f"http://127.0.0.1:{free_port()}/hub/api",  # nothing there
            "JUPYTERHUB_API_TOKEN": "not-a-token",
            "JUPYTERHUB_CLIENT_ID": "service-demo",
        }


@pytest.fixture
def demo(tmp_path):
    service = DemoProcess(tmp_path, "--Service.hub_poll_interval=3600").wait_serving()
    yield service
    service.stop()


# -- the table of features -------------------------------------------------------------------

def _configured(tmp_path):
    from echoes_lab.hub.config import configure

    c = Config()
    configure(c, _settings_file(tmp_path))
    return c


def test_every_service_in_configure_starts_on_the_scaffold(tmp_path):
    from echoes_lab.hub.config import features

    table = features()
    assert all(isinstance(f, Feature) for f in table)
    assert len({f.name for f in table}) == len(table), "two features with one name"
    c = _configured(tmp_path)
    ours = []
    for service in c.JupyterHub.services:
        command = service.get("command")
        if not command:
            continue  # an API token only (echoes-cli), or run by a host (below): no process
        assert command[:2] == [sys.executable, "-m"], command
        module = command[2]
        if module in THIRD_PARTY:
            continue
        assert command[3:] == ["--settings", str(tmp_path / "settings.toml")]
        if module == host.MODULE:  # several services in one process, each on the scaffold
            targets = [(h["name"], h["target"])
                       for h in json.loads(service["environment"][host.SERVICES_ENV])]
        else:  # a package run with -m: its __main__ names the class that run() starts
            targets = [(service["name"], importlib.import_module(module + ".__main__").TARGET)]
        for name, target in targets:
            if target == host.CULLER_TARGET:  # jupyterhub-idle-culler, run in the host
                continue
            where, cls_name = target.split(":")
            cls = getattr(importlib.import_module(where), cls_name)
            assert issubclass(cls, Service), f"{name}: {target} is not a Service"
            ours.append(name)
    assert {"reports", "workshops", "commons", "projects"} <= set(ours)
    assert len(ours) == len(set(ours)), "a service started twice"


def test_services_that_may_share_a_process_run_in_one(tmp_path):
    """Our services with the hub's account run in one host process (the first one's identity);
    the others are external services with their own URL, token and OAuth client. Reports, run
    under its own account when users are isolated, keeps a process of its own."""
    c = _configured(tmp_path)
    services = {s["name"]: s for s in c.JupyterHub.services}
    hosts = [s for s in services.values() if (s.get("command") or [""] * 3)[2] == host.MODULE]
    assert len(hosts) == 1
    first = hosts[0]
    hosted = json.loads(first["environment"][host.SERVICES_ENV])
    names = [h["name"] for h in hosted]
    assert names[0] == first["name"] and {"metrics", "projects", "workshops"} <= set(names)
    assert "reports" not in names and services["reports"]["user"]  # its own account
    assert services["reports"]["command"][2] == "echoes_lab.hub.services.reports"
    for name in host.OWN_PROCESS:  # CPU-heavy work in their loops: never in a shared one
        assert services[name]["command"][2] == f"echoes_lab.hub.services.{name}"
    secrets = json.loads((tmp_path / "state" / "secrets.json").read_text())["api_tokens"]
    # the idle culler is the host's last member: its own command line and token, no port
    *hosted, culler = hosted
    assert culler == {"name": "idle-culler", "target": host.CULLER_TARGET,
                      "argv": ["--timeout=3600", "--cull-every=300"], "environment": {}}
    assert services["idle-culler"] == {"name": "idle-culler",
                                       "api_token": secrets["idle-culler"]}
    for h in hosted:
        s = services[h["name"]]
        assert h["url"] == s["url"] and s["url"].startswith("http://127.0.0.1:")
        assert s["api_token"] == secrets[h["name"]]  # its own token, so its own role's scopes
        assert s["oauth_no_confirm"] and "info" in s
        if s is not first:
            assert "command" not in s and "environment" not in s
    # no secret on the host's command line or in its environment: it reads the secrets file
    assert not any(t in json.dumps(first) for n, t in secrets.items() if n != first["name"])


def test_the_culler_keeps_a_process_of_its_own_where_no_host_runs(tmp_path):
    """One service of ours with the hub's account (projects; workshops and metrics off): no
    host, so jupyterhub-idle-culler stays the managed service it is, its command unchanged."""
    c = Config()
    from echoes_lab.hub.config import configure

    configure(c, _settings_file(tmp_path, "[workshops]\nenabled = false\n"
                                          "[metrics]\nenabled = false\n"))
    services = {s["name"]: s for s in c.JupyterHub.services}
    assert not any(host.MODULE in (s.get("command") or []) for s in services.values())
    assert services["idle-culler"]["command"] == [
        sys.executable, "-m", host.CULLER_MODULE, "--timeout=3600", "--cull-every=300"]


def test_a_hosted_service_gets_what_the_hub_gives_a_managed_one():
    base = {"JUPYTERHUB_API_URL": "http://127.0.0.1:8081/hub/api", "JUPYTERHUB_BASE_URL": "/x/",
            "JUPYTERHUB_SERVICE_NAME": "first", "JUPYTERHUB_API_TOKEN": "first-token",
            "JUPYTERHUB_PUBLIC_URL": "https://lab.example.org/x/services/first/", "HOME": "/"}
    env = host.service_environ({"name": "commons", "url": "http://127.0.0.1:9", "environment":
                                {"PYTHONUNBUFFERED": "1"}, "oauth_client_allowed_scopes":
                                ["access:services!service=commons", "moderate"]}, "tok", base)
    assert env == {
        "JUPYTERHUB_API_URL": "http://127.0.0.1:8081/hub/api", "JUPYTERHUB_BASE_URL": "/x/",
        "PYTHONUNBUFFERED": "1", "JUPYTERHUB_SERVICE_NAME": "commons",
        "JUPYTERHUB_SERVICE_URL": "http://127.0.0.1:9",
        "JUPYTERHUB_SERVICE_PREFIX": "/x/services/commons/", "JUPYTERHUB_API_TOKEN": "tok",
        "JUPYTERHUB_CLIENT_ID": "service-commons",
        "JUPYTERHUB_OAUTH_CALLBACK_URL": "/x/services/commons/oauth_callback",
        "JUPYTERHUB_OAUTH_SCOPES": '["access:services!service=commons"]',
        "JUPYTERHUB_OAUTH_ACCESS_SCOPES": '["access:services!service=commons"]',
        "JUPYTERHUB_OAUTH_CLIENT_ALLOWED_SCOPES": '["access:services!service=commons", '
                                                  '"moderate"]',
        "JUPYTERHUB_PUBLIC_URL": "https://lab.example.org/x/services/commons/",
    }
    # a member that serves nothing (the idle culler): the hub's API and its own token, none of
    # the managed service's own variables
    env = host.service_environ({"name": "idle-culler"}, "culler-token", base)
    assert env == {"JUPYTERHUB_API_URL": "http://127.0.0.1:8081/hub/api",
                   "JUPYTERHUB_BASE_URL": "/x/", "JUPYTERHUB_SERVICE_NAME": "idle-culler",
                   "JUPYTERHUB_API_TOKEN": "culler-token"}


def test_services_sharing_a_process_keep_their_own_oauth_client_and_metrics(tmp_path):
    from prometheus_client import CollectorRegistry, Counter

    from echoes_lab.hub.services import observe

    settings = _settings_file(tmp_path)
    apps = []
    for name in ("one", "two"):
        class Each(Service):
            service_name = name

        app = Each(config=Config())
        app.environ = host.service_environ({"name": name, "url": "http://127.0.0.1:1"},
                                           f"token-{name}", {})
        app.initialize(["--settings", settings])
        apps.append(app)
    auths = [a.make_app().settings["hub_auth"] for a in apps]
    assert [a.api_token for a in auths] == ["token-one", "token-two"]
    assert [a.oauth_client_id for a in auths] == ["service-one", "service-two"]
    assert [a.oauth_redirect_uri for a in auths] == ["/services/one/oauth_callback",
                                                     "/services/two/oauth_callback"]
    assert [a.access_scopes for a in auths] == [{"access:services!service=one"},
                                                {"access:services!service=two"}]
    assert auths[0].cookie_name != auths[1].cookie_name
    # each /metrics shows its own series and request latencies, never the other's
    counters = {}
    for name in ("one", "two"):
        counter = Counter(f"echoes_test_{name}_total", name, registry=CollectorRegistry())
        counter.inc()
        observe.register([counter], name)
        observe.REQUEST_DURATION.labels(service=name, handler="H", method="GET",
                                        code=200).observe(0.1)
        counters[name] = counter
    one, two = (observe.metrics_text(n)[0].decode() for n in ("one", "two"))
    assert "echoes_test_one_total 1.0" in one and "echoes_test_two" not in one
    assert "echoes_test_two_total 1.0" in two and "echoes_test_one" not in two
    assert 'service="one"' in one and 'service="two"' not in one
    assert "process_resident_memory_bytes" in one  # the process's own series, in each


HOST_DEMO = textwrap.dedent('''
    from demo_service import Demo

    class Second(Demo):
        service_name = "second"
''')


class HostProcess(_ServiceProcess):
    """Two demo services in one host process, started as the hub starts the host."""

    what = "both hosted services"

    def __init__(self, tmp_path, *args: str, ports: list[int] | None = None,
                 culler: list[str] | None = None):
        from echoes_lab.hub.secrets import ensure_secrets

        (tmp_path / "demo_service.py").write_text(DEMO)
        (tmp_path / "host_demo.py").write_text(HOST_DEMO)
        ensure_secrets(tmp_path / "state", ("second", "idle-culler"))
        ports = ports or [free_port(), free_port()]
        self.urls = [f"http://127.0.0.1:{ports[0]}/services/demo/",
                     f"http://127.0.0.1:{ports[1]}/services/second/"]
        hosted = [{"name": "demo", "url": f"http://127.0.0.1:{ports[0]}",
                   "target": "demo_service:Demo"},
                  {"name": "second", "url": f"http://127.0.0.1:{ports[1]}",
                   "target": "host_demo:Second"}]
        if culler is not None:  # jupyterhub-idle-culler as a member, with this command line
            hosted.append({"name": "idle-culler", "target": host.CULLER_TARGET, "argv": culler})
        self.env = {**DemoProcess.environment(ports[0]),
                    "PYTHONPATH": str(tmp_path), host.SERVICES_ENV: json.dumps(hosted)}
        self.state = tmp_path / "state"
        self.log = tmp_path / "host.log"
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", host.MODULE, "--settings", _settings_file(tmp_path),
                 *args], env=self.env, stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path)


def test_hosted_services_serve_each_as_itself_and_stop_together_on_sigterm(tmp_path):
    demo = HostProcess(tmp_path, "--Service.hub_poll_interval=3600")
    try:
        demo.wait_serving()
        for name, url in zip(("demo", "second"), demo.urls, strict=True):
            # each under its own prefix, naming its own scope: its own settings and sign-in
            r = requests.post(url + "api/echo", json={}, timeout=10)
            assert r.status_code == 403 and f"access:services!service={name}" in r.json()[
                "message"]
            assert requests.get(url + "api/nothing", timeout=10).json()["message"] == (
                f"nothing at /services/{name}/api/nothing")
            # its own lock and pid file, held by the one process
            assert (demo.state / "services" / f"{name}.pid").read_text().strip() == str(
                demo.proc.pid)
        start = time.monotonic()
        demo.proc.send_signal(signal.SIGTERM)
        assert demo.proc.wait(10) == 0
        assert time.monotonic() - start < 10
        log = demo.log.read_text()
        assert "demo service stopped" in log and "second service stopped" in log
        assert not list((demo.state / "services").glob("*.pid"))
    finally:
        demo.stop()


def test_a_failing_culler_leaves_the_host_serving_and_stops_with_it(tmp_path):
    """The idle culler in the host, its hub's API unreachable: each run fails, is logged by the
    culler and the next comes (the library's own loop does the same); the other services go
    on serving; SIGTERM stops the culler with them."""
    demo = HostProcess(tmp_path, "--Service.hub_poll_interval=3600",
                       culler=["--timeout=1", "--cull-every=1"])
    try:
        demo.wait_serving()
        wait_for(lambda: demo.log.read_text().count("culling idle servers failed") >= 3, 30,
                 "three failed culling runs")
        log = demo.log.read_text()
        # the culler's own lines (the library's format and logger), its run at start logged
        assert "IdleCuller" in log and "servers idle for 1 s are stopped" in log
        assert demo.proc.poll() is None
        assert all(requests.get(u + "api/teapot", timeout=10).status_code == 418
                   for u in demo.urls)
        demo.proc.send_signal(signal.SIGTERM)
        assert demo.proc.wait(10) == 0
        log = demo.log.read_text()
        assert "idle-culler stopped" in log and "demo service stopped" in log
    finally:
        demo.stop()


def test_the_culler_in_a_host_keeps_the_process_http_client_as_it_was(monkeypatch):
    """``cull_idle`` sets tornado's process-wide HTTP client defaults (a 60 s request timeout)
    and would take the loop's shared client; in the host it gets a client of its own, and the
    one the other services share keeps tornado's defaults (20 s)."""
    import asyncio

    import jupyterhub_idle_culler
    from tornado.httpclient import AsyncHTTPClient

    from echoes_lab.hub.services.culler import Culler, CullerHTTPClient

    monkeypatch.setattr(jupyterhub_idle_culler, "AsyncHTTPClient",
                        jupyterhub_idle_culler.AsyncHTTPClient)  # restored after the test
    culler = Culler()
    culler.environ = {"JUPYTERHUB_SERVICE_NAME": "idle-culler", "JUPYTERHUB_API_TOKEN": "t",
                      "JUPYTERHUB_API_URL": f"http://127.0.0.1:{free_port()}/hub/api"}
    culler.initialize(["--timeout=5", "--cull-every=5"])
    configured = AsyncHTTPClient.configured_class()

    async def run():
        await culler._once()  # nothing listens: the run fails and is logged
        return AsyncHTTPClient(), CullerHTTPClient()

    shared, own = asyncio.run(run())
    assert shared is not own
    assert shared.defaults["request_timeout"] == 20.0
    assert own.defaults["request_timeout"] == 60
    assert AsyncHTTPClient.configured_class() is configured


def test_hosted_services_all_stop_when_their_hub_is_gone(tmp_path):
    demo = HostProcess(tmp_path, "--Service.hub_poll_interval=0.2")
    try:
        assert demo.proc.wait(30) == 0
        log = demo.log.read_text()
        assert "did not answer 3 times" in log
        assert "demo service stopped" in log and "second service stopped" in log
    finally:
        demo.stop()


def test_a_hosted_service_that_cannot_start_stops_the_host(tmp_path):
    """A port taken: the host exits with the service's status before serving anything, and the
    hub sees its managed service fail, as with a service of its own."""
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        demo = HostProcess(tmp_path, "--Service.hub_poll_interval=3600",
                           ports=[free_port(), port])
        try:
            code = demo.proc.wait(60)
        finally:
            demo.stop()
    out = demo.log.read_text()
    assert code == 1, out
    assert f"cannot listen on 127.0.0.1:{port}" in out
    assert "demo service stopped" in out  # the one that had started, stopped cleanly
    assert not list((tmp_path / "state" / "services").glob("*.pid"))


def test_features_grant_users_their_scopes_and_roles(tmp_path):
    c = _configured(tmp_path)
    roles = {r["name"]: r for r in c.JupyterHub.load_roles}
    assert {"access:services!service=reports", "access:services!service=dask-gateway"} <= set(
        roles["user"]["scopes"])
    assert roles["reports"]["services"] == ["reports"]
    tokens = {s["name"]: s.get("api_token") for s in c.JupyterHub.services}
    assert all(tokens.values()), tokens


def test_auth_cache_is_no_longer_than_the_sign_in_refresh(tmp_path, monkeypatch):
    monkeypatch.setenv("JUPYTERHUB_SERVICE_URL", "http://127.0.0.1:1")
    settings = _settings_file(tmp_path, "[services]\nauth_cache_age = 600\n"
                                        "[workshops]\nauth_refresh_age = 45\n")

    class Empty(Service):
        service_name = "empty"

    app = Empty(config=Config())
    app.initialize(["--settings", settings])
    assert app.make_app().settings["hub_auth"].cache_max_age == 45
    assert app.hub_poll_interval == 5  # [services] hub_check_every


# -- the scaffold, on a real process -----------------------------------------------------------

def test_request_bodies_above_the_limit_get_413_json(demo):
    ok = requests.post(demo.url + "api/echo", data=b"x" * 1000, timeout=10)
    # 403, not 413: the size is fine, the request has no sign-in
    assert ok.status_code == 403 and ok.json()["status"] == 403
    big = requests.post(demo.url + "api/echo", data=b"x" * (1048576 + 1), timeout=30)
    assert big.status_code == 413
    assert big.json() == {"status": 413,
                          "message": "the request body is larger than 1048576 bytes"}
    # the connection's next request is served normally
    assert requests.get(demo.url + "api/teapot", timeout=10).status_code == 418


def test_api_errors_are_json_and_pages_are_templates(demo):
    r = requests.get(demo.url + "api/teapot", timeout=10)
    assert r.status_code == 418 and r.json() == {"status": 418, "message": "short and stout"}
    r = requests.get(demo.url + "api/nothing-here", timeout=10)
    assert r.status_code == 404 and r.headers["Content-Type"] == "application/json"
    assert r.json()["message"] == "nothing at /services/demo/api/nothing-here"
    r = requests.post(demo.url + "api/echo", json={}, timeout=10)
    assert r.status_code == 403
    assert "access:services!service=demo" in r.json()["message"]
    page = requests.get(demo.url, timeout=10)
    assert page.status_code == 409 and page.headers["Content-Type"].startswith("text/html")
    assert '<link rel="stylesheet" href="/hub/static/css/style.min.css">' in page.text
    assert "this page is &lt;b&gt;busy&lt;/b&gt;" in page.text  # escaped
    assert 'href="/hub/home"' in page.text


def test_a_second_instance_refuses_to_start(demo, tmp_path):
    pid = (demo.state / "services" / "demo.pid").read_text().strip()
    assert pid == str(demo.proc.pid)
    second = subprocess.run(demo.command, env=demo.env, capture_output=True, text=True,
                            timeout=60)
    assert second.returncode != 0
    assert f"another demo service (pid {pid}) holds" in second.stderr
    assert str(demo.state / "services" / "demo.lock") in second.stderr
    assert demo.proc.poll() is None  # the first one serves on
    assert requests.get(demo.url + "api/teapot", timeout=10).status_code == 418


def test_sigterm_stops_the_service_and_releases_the_lock(demo):
    start = time.monotonic()
    demo.proc.send_signal(signal.SIGTERM)
    assert demo.proc.wait(10) == 0
    assert time.monotonic() - start < 10
    assert not (demo.state / "services" / "demo.pid").exists()
    assert "stopping: SIGTERM" in demo.log.read_text()


def test_sigterm_is_bounded_when_stop_tasks_hang(tmp_path):
    demo = DemoProcess(tmp_path, "--Service.hub_poll_interval=3600",
                       "--Service.stop_timeout=1", hang=True).wait_serving()
    try:
        start = time.monotonic()
        demo.proc.send_signal(signal.SIGTERM)
        demo.proc.wait(10)
        took = time.monotonic() - start
        assert took < 5, took  # stop_timeout (1 s) + the scaffold's 2 s of grace
        assert "did not stop within 1 s" in demo.log.read_text()
    finally:
        demo.stop()


def test_the_service_exits_by_itself_when_its_hub_is_gone(tmp_path):
    demo = DemoProcess(tmp_path, "--Service.hub_poll_interval=0.2")
    try:
        assert demo.proc.wait(30) == 0
        log = demo.log.read_text()
        assert "did not answer 3 times" in log and "demo service stopped" in log
    finally:
        demo.stop()


def test_the_service_exits_when_its_parent_hub_is_killed(tmp_path):
    """``kill -9`` of the hub: its services are reparented, notice it, and stop."""
    import psutil

    demo = DemoProcess(tmp_path, "--version")  # only for its command and environment
    demo.proc.wait(30)
    parent_code = ("import subprocess, sys, time\n"
                   "child = subprocess.Popen(sys.argv[1:])\n"
                   "print(child.pid, flush=True)\n"
                   "time.sleep(600)\n")
    # the failures limit is out of reach: only the parent's death can stop the service
    command = [*demo.command[:-1], "--Service.hub_poll_interval=0.2",
               "--Service.hub_failures=1000000"]
    parent = subprocess.Popen([sys.executable, "-c", parent_code, *command], env=demo.env,
                              stdout=subprocess.PIPE, text=True)
    child = psutil.Process(int(parent.stdout.readline()))

    def serving() -> bool:
        assert not gone(child), "the service ended before it served"
        return (demo.state / "services" / "demo.pid").exists()

    try:
        wait_for(serving, 30, "the service's pid file", interval=0.1)
        parent.kill()
        parent.wait()
        # the orphan is not our child: PID 1 reaps it, on some machines late (a zombie)
        wait_gone([child], 30, "the orphaned service to notice and exit")
        assert not (demo.state / "services" / "demo.pid").exists()  # a clean stop
    finally:
        parent.kill()
        with contextlib.suppress(psutil.NoSuchProcess):
            if not gone(child):
                child.kill()
