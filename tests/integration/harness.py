"""The real-component harness: a JupyterHub with configurable-http-proxy, real single-user
servers and real kernels, started through ``echoes-lab hub`` on free loopback ports in a
temporary state directory. Nothing here is mocked. Fixtures are in ``conftest.py``; tests import
``Hub``, ``login`` and ``wait_for`` from here.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
from http.client import HTTPConnection
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlparse

import psutil
import requests
import tomli_w
import websocket

from echoes_lab.hub.client import execute

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# without these, chromium tries to reach Google's services, which this closed network refuses
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--disable-dev-shm-usage"]
BIN = Path(sys.executable).parent


#: ports for this test process's hubs: below the kernel's ephemeral range (32768-60999), from
#: which outgoing connections and every ``bind(0)`` (kernels, servers) take theirs, and a range
#: of its own for each pytest-xdist worker; a port chosen here is still free seconds later, when
#: the hub or its service binds it (with hubs side by side, a port from bind(0) was taken
#: meanwhile: "address already in use" at the gateway's start). Twelve such ranges fit below
#: 32768; worker numbers beyond wrap round (gw46 once asked for ports above 65535)
_WORKER = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0) % 12
_PORTS = range(20000 + 1000 * _WORKER, 21000 + 1000 * _WORKER)
_next_port = itertools.count()


#: the services a test's hub may go without (the profile's sections that have ``enabled``)
OPTIONAL_SERVICES = ("culler", "gateway", "reports", "workshops", "commons", "knowledge")


def lean(*keep: str) -> dict[str, dict]:
    """Settings overrides for a hub without the optional services but ``keep`` (those the
    local profile has): the others cost start-up time and memory on a small machine."""
    text = (REPO / "hub_config" / "local.toml").read_text()
    return {section: {"enabled": False} for section in OPTIONAL_SERVICES
            if section not in keep and f"[{section}]" in text}


def free_port() -> int:
    for _ in _PORTS:
        port = _PORTS[next(_next_port) % len(_PORTS)]
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {_PORTS}")


def gone(proc: int | psutil.Process | subprocess.Popen) -> bool:
    """Whether a process has ended: the one test for it, for any process, ours or not.

    A zombie has ended: only its exit status waits for its parent, and when that is not us (a
    hub's service, a process reparented to PID 1, which on some machines reaps late)
    ``psutil.Process.wait`` would time out and ``is_running`` says True. A ``psutil.Process``
    also ends when its pid now belongs to a newer process (psutil compares start times). A
    ``Popen`` of ours is polled, which reaps it.
    """
    if isinstance(proc, subprocess.Popen):
        return proc.poll() is not None
    try:
        p = proc if isinstance(proc, psutil.Process) else psutil.Process(proc)
        return not p.is_running() or p.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:  # psutil.ZombieProcess is one too
        return True
    except psutil.AccessDenied:  # it exists, and is not ours to read
        return False


def wait_gone(procs, timeout: float, what: str) -> None:
    """Wait until every process of ``procs`` (pids, ``psutil.Process``, ``Popen``) has ended."""
    procs = list(procs)
    wait_for(lambda: all(gone(p) for p in procs), timeout, what, interval=0.1)


def processes(match) -> list[psutil.Process]:
    """The running processes (zombies left out) for which ``match(process)`` is true.

    A process may end between the listing and the look at it, or be unreadable: it is left
    out, never an error (``psutil.process_iter`` lists, ``match`` reads later).
    """
    found = []
    for p in psutil.process_iter():
        try:
            if p.status() != psutil.STATUS_ZOMBIE and match(p):
                found.append(p)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return found


def wait_for(predicate, timeout: float, what: str, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class Hub:
    """A real hub started by ``echoes-lab hub`` with a settings file of its own."""

    def __init__(self, root: Path, **overrides: dict):
        self.root = root
        self.state = root / "state"
        base = tomllib.loads((REPO / "hub_config" / "local.toml").read_text())
        base["hub"].update(
            state_dir=str(self.state), port=free_port(), proxy_api_port=free_port(),
            hub_port=free_port(), log_level="DEBUG",
        )
        base["data"]["install_demo"] = False
        base["data"]["fetch"] = []  # no real datasets unless a test asks (their copy takes time)
        base["spawner"]["examples"] = str(REPO / "notebooks")
        if "gateway" in base:  # the hub's Dask Gateway: free ports too, hubs run side by side
            base["gateway"].update(port=free_port(), scheduler_port=free_port(),
                                   api_port=free_port())
        for service in ("workshops", "reports", "projects", "commons", "knowledge"):
            base.setdefault(service, {})["port"] = free_port()
        # Prometheus (the metrics service) only in the hubs of tests that ask for it
        base.setdefault("metrics", {})["enabled"] = False
        for section, values in overrides.items():
            base.setdefault(section, {}).update(values)
        self.settings = base
        self.settings_file = root / "settings.toml"
        self.settings_file.write_text(tomli_w.dumps(base))
        self.url = f"http://127.0.0.1:{base['hub']['port']}"
        self.proc: subprocess.Popen | None = None
        self.signal_group = False  # True when proc is a wrapper (make) in its own session
        self.log_path = root / "hub.log"
        self.seen: dict[int, float] = {}  # pid -> create_time of every process the hub ran

    # -- life cycle ---------------------------------------------------------------
    def start(self, timeout: float = 60, session: bool = False,
              sigint_ignored: bool = False) -> "Hub":
        """Start ``echoes-lab hub``; ``session``: in a process group of its own, as ``make hub``
        is in a terminal (then :meth:`stop_hub` signals the whole group); ``sigint_ignored``:
        with SIGINT ignored, as a background job of a non-interactive shell (``make hub &``)
        starts, and hands on to what it runs."""
        # the hub's log is private (0600), as an operator's would be
        fd = os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        log = os.fdopen(fd, "ab")
        self.proc = subprocess.Popen(
            [str(BIN / "echoes-lab"), "hub", "--settings", str(self.settings_file)],
            stdout=log, stderr=subprocess.STDOUT, cwd=self.root, start_new_session=session,
            preexec_fn=_ignore_sigint if sigint_ignored else None,
        )
        log.close()
        self.signal_group = session

        self.wait_healthy(timeout)
        return self

    def wait_healthy(self, timeout: float = 60) -> None:
        def healthy():
            if self.proc.poll() is not None:
                raise RuntimeError(f"hub exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                return requests.get(f"{self.url}/hub/health", timeout=2).status_code == 200
            except (requests.ConnectionError, requests.Timeout):  # not up, or busy starting
                return False

        wait_for(healthy, timeout, "the hub's /hub/health")
        self.remember_processes()

    def remember_processes(self) -> None:
        if self.proc and self.proc.poll() is None:
            hub = psutil.Process(self.proc.pid)
            for p in [hub, *hub.children(recursive=True)]:
                with contextlib.suppress(psutil.NoSuchProcess):
                    self.seen[p.pid] = p.create_time()

    def stop_hub(self, timeout: float = 30) -> None:
        """Stop the hub process only (user servers keep running: cleanup_servers = False)."""
        if self.proc and self.proc.poll() is None:
            self.remember_processes()
            if self.signal_group:
                os.killpg(self.proc.pid, signal.SIGTERM)
            else:
                self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout)

    def alive(self) -> list[psutil.Process]:
        """Processes the hub started that still run (pid and start time both match)."""
        left = []
        for pid, created in self.seen.items():
            try:
                p = psutil.Process(pid)
                if abs(p.create_time() - created) < 0.01 and not gone(p):
                    left.append(p)
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                pass
        return left

    def strays(self) -> list[psutil.Process]:
        """Processes of this hub that nobody stopped, found without having seen them start.

        A hub that dies leaves its proxy and managed services running; they (and the servers
        and kernels) carry this hub's API address in their environment, and the proxy its port
        on its command line.
        """
        api = f"127.0.0.1:{self.settings['hub']['hub_port']}/"
        port = f"--port {self.settings['hub']['port']} "
        return processes(lambda p: api in p.environ().get("JUPYTERHUB_API_URL", "")
                         or port in " ".join(p.cmdline()) + " ")

    def shutdown(self) -> list[str]:
        """Stop every server through the API, then the hub; return what was left behind."""
        if self.proc and self.proc.poll() is None:
            self.remember_processes()
            for user in self.api("GET", "/users").json():
                for name in user.get("servers", {}):
                    path = (f"/users/{user['name']}/servers/{name}" if name
                            else f"/users/{user['name']}/server")
                    self.api("DELETE", path)
            with contextlib.suppress(TimeoutError):
                wait_for(lambda: not any(u.get("servers")
                                         for u in self.api("GET", "/users").json()),
                         60, "all servers to stop")
            self.stop_hub()
        with contextlib.suppress(TimeoutError):
            wait_for(lambda: not self.alive(), 15, "processes to end")
        left = {p.pid: p for p in [*self.alive(), *self.strays()]}
        described = []
        for p in left.values():
            try:
                described.append(f"{p.pid} {' '.join(p.cmdline())[:160]}")
                p.kill()
            except psutil.NoSuchProcess:
                pass
        return described

    def service_processes(self) -> dict[str, list[psutil.Process]]:
        """This hub's managed services as running processes, by service name.

        A service is a process whose environment names it (``JUPYTERHUB_SERVICE_NAME``) and
        this hub's API; processes a service started itself (dask-gateway's proxy) inherit that
        environment and are not counted again. A process running several of our services
        (``echoes_lab.hub.services.host``) is listed under each of their names.
        """
        api = f"127.0.0.1:{self.settings['hub']['hub_port']}/"
        found: dict[int, tuple[str, psutil.Process]] = {}

        def service(p: psutil.Process) -> bool:
            env = p.environ()
            if env.get("JUPYTERHUB_SERVICE_NAME") and api in env.get("JUPYTERHUB_API_URL", ""):
                found[p.pid] = (env["JUPYTERHUB_SERVICE_NAME"], p)
            return False

        processes(service)
        services: dict[str, list[psutil.Process]] = {}
        for name, p in found.values():
            try:
                parent = p.ppid()
            except psutil.NoSuchProcess:
                continue
            if found.get(parent, ("",))[0] != name:
                try:
                    hosted = json.loads(p.environ().get("ECHOES_HOSTED_SERVICES") or "[]")
                except psutil.NoSuchProcess:
                    continue
                for each in {name, *(h["name"] for h in hosted)}:
                    services.setdefault(each, []).append(p)
        return services

    @property
    def hub_pid(self) -> int | None:
        """The pid of the JupyterHub process (from its pid file), if it runs."""
        try:
            pid = int((self.state / "jupyterhub.pid").read_text())
        except (OSError, ValueError):
            return None
        return None if gone(pid) else pid

    def log_tail(self, n: int = 60) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])

    def cli(self, command: str, *args: str, timeout: float = 300) -> str:
        """Run ``echoes-lab COMMAND --settings <this hub's settings file> ARGS`` as its operator
        would (``project``, ``workshop``) and return what it printed; a failure fails the test
        with its output and the end of the hub's log."""
        done = subprocess.run([str(BIN / "echoes-lab"), command, "--settings",
                               str(self.settings_file), *args],
                              capture_output=True, text=True, timeout=timeout)
        assert done.returncode == 0, (f"{command} {args}: {done.stdout}\n{done.stderr}\n"
                                      f"{self.log_tail()}")
        return done.stdout

    # -- REST API -----------------------------------------------------------------
    @property
    def secrets(self) -> dict:
        return json.loads((self.state / "secrets.json").read_text())

    @property
    def token(self) -> str:
        return self.secrets["api_tokens"]["echoes-cli"]

    def api(self, method: str, path: str, token: str | None = None, **kw) -> requests.Response:
        headers = {"Authorization": f"token {token or self.token}"}
        return requests.request(method, f"{self.url}/hub/api{path}", headers=headers,
                                timeout=30, **kw)

    def create_user(self, name: str, admin: bool = False) -> dict:
        r = self.api("POST", f"/users/{name}", json={"admin": admin})
        assert r.status_code in (201, 409), r.text
        return self.api("GET", f"/users/{name}").json()

    def start_server(self, name: str, timeout: float = 120) -> dict:
        r = self.api("POST", f"/users/{name}/server")
        assert r.status_code in (201, 202, 400), f"{r.status_code} {r.text}\n{self.log_tail()}"

        def ready():
            model = self.api("GET", f"/users/{name}").json()
            server = model.get("servers", {}).get("")
            if server and server.get("ready"):
                return model
            if not server and not model.get("pending"):
                raise RuntimeError(f"server of {name} failed to start:\n{self.log_tail()}")
            return None

        model = wait_for(ready, timeout, f"{name}'s server", interval=0.1)
        self.remember_processes()
        return model

    def server_get(self, name: str, path: str, token: str | None = None) -> requests.Response:
        return requests.get(f"{self.url}/user/{name}{path}",
                            headers={"Authorization": f"token {token or self.token}"}, timeout=30)

    # -- kernels --------------------------------------------------------------------
    def execute(self, name: str, code: str, kernel: str = "echoes", timeout: float = 60,
                path: str | None = None) -> dict:
        """Start a kernel in ``name``'s server (in the folder ``path`` of the lab, as a
        notebook there would), run ``code``, return stdout/errors, stop it."""
        headers = {"Authorization": f"token {self.token}"}
        base = f"{self.url}/user/{name}/api"
        body = {"name": kernel} if path is None else {"name": kernel, "path": path}
        r = requests.post(f"{base}/kernels", json=body, headers=headers, timeout=60)
        assert r.status_code == 201, f"{r.status_code} {r.text}"
        kid = r.json()["id"]
        ws_url = f"ws://{urlparse(self.url).netloc}/user/{name}/api/kernels/{kid}/channels"
        ws = websocket.create_connection(ws_url, header=[f"Authorization: token {self.token}"],
                                         timeout=timeout)
        try:
            out = execute(ws, code, name, timeout)  # closes ws
        finally:
            self.remember_processes()
            requests.delete(f"{base}/kernels/{kid}", headers=headers, timeout=30)
        return out


@contextlib.contextmanager
def serve_files(files: dict[str, tuple[bytes, str]]):
    """Serve ``files`` (path -> (body, content type)) on a loopback port, with the CORS header
    IIIF servers send; yield the base URL. ``files`` is read at each request, so a test may
    fill it once it knows the URL (a manifest naming its own image)."""
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            if self.path not in files:
                self.send_error(404)
                return
            body, ctype = files[self.path]
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Access-Control-Allow-Origin", "*")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


@contextlib.contextmanager
def serve_tornado(app):
    """Serve the tornado application ``app`` on a free loopback port, on an event loop in a
    thread of its own (a test's own loop stays free for its requests); yield the port. On exit
    the server closes its connections and the thread has ended."""
    import asyncio

    from tornado.httpserver import HTTPServer
    from tornado.netutil import bind_sockets

    sockets = bind_sockets(0, "127.0.0.1")
    started, box = threading.Event(), {}

    def serve():
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        # the server is made on this thread's loop: add_sockets registers with the current one
        server = HTTPServer(app)
        server.add_sockets(sockets)
        box.update(loop=loop)
        loop.call_soon(started.set)
        loop.run_forever()
        server.stop()
        loop.run_until_complete(server.close_all_connections())
        loop.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert started.wait(10), "the tornado server's loop did not start"
    try:
        yield sockets[0].getsockname()[1]
    finally:
        box["loop"].call_soon_threadsafe(box["loop"].stop)
        thread.join(10)
        assert not thread.is_alive(), "the tornado server's thread did not end"


def http_get(port: int, path: str, **headers: str) -> tuple[int, list[tuple[str, str]], str]:
    """GET ``path`` from a loopback server on ``port``: the status, every header as sent
    (a list: ``Set-Cookie`` may come more than once) and the body as text."""
    conn = HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        return response.status, response.getheaders(), response.read().decode()
    finally:
        conn.close()


#: the hosts a test's browser may reach: the hub and servers the test started
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}


def offline(page, outside: list[str] | None = None) -> list[str]:
    """Make a browser ``page`` (Playwright) fail every request that would leave the machine, as
    if the network were down; return the list the refused URLs are appended to (``outside``,
    or a new one)."""
    outside = [] if outside is None else outside

    def route(route) -> None:
        url = urlparse(route.request.url)
        if url.scheme in ("http", "https", "ws", "wss") and url.hostname not in LOCAL_HOSTS:
            outside.append(route.request.url)
            route.abort("internetdisconnected")
        else:
            route.continue_()

    page.route("**/*", route)
    return outside


def sign_in(page, hub: Hub, user: str, next_url: str = "") -> None:
    """Sign ``user`` in on a browser ``page`` (Playwright) through the hub's login form."""
    page.goto(f"{hub.url}/hub/login" + (f"?next={next_url}" if next_url else ""))
    page.fill("#username_input", user)
    page.fill("#password_input", hub.secrets["user_password"])
    page.click("#login_submit")


def open_page(browser, hub: Hub | None = None, user: str = "", *,
              viewport: dict | None = None, seen: list[str] | None = None,
              outside: list[str] | None = None, errors: list[str] | None = None):
    """A new page of a Playwright ``browser``, in a browser context of its own (its own
    cookies, as another person's browser; ``page.context.close()`` closes both), watched: the
    URL of each request it makes is appended to ``seen``, each JavaScript error to ``errors``,
    and with ``outside`` it is :func:`offline`, the refused URLs appended there (each only when
    its list is given, so one list may gather several pages'). With ``user``, it is signed in
    to ``hub`` and on the hub's home page when returned."""
    page = browser.new_page(**({"viewport": viewport} if viewport else {}))
    if seen is not None:
        page.on("request", lambda r: seen.append(r.url))
    if errors is not None:
        page.on("pageerror", lambda exc: errors.append(str(exc)))
    if outside is not None:
        offline(page, outside)
    if user:
        sign_in(page, hub, user, "/hub/home")
        page.wait_for_url("**/hub/home**", timeout=60_000)
    return page


def open_app(page, hub: Hub, user: str, title: str, path: str) -> None:
    """Sign ``user`` in on a browser ``page`` and open the app ``title`` as a person does: by
    its link on the hub's home page (a new tab there), which must be Voilà in the user's own
    server rendering the notebook ``path``."""
    sign_in(page, hub, user, "/hub/home")
    app = page.locator(f"a.echoes-app:text-is('{title}')")
    app.wait_for(timeout=60_000)
    href = app.get_attribute("href")
    assert href == f"/user/{user}/voila/render/{path}"
    page.goto(f"{hub.url}{href}")


def login(hub: Hub, username: str, password: str, next_url: str = "") -> requests.Session:
    """Sign in through the hub's login form with a cookie session, as a browser does.

    ``next_url`` is where the hub sends the browser afterwards; the default (empty) is the
    user's server, which the hub starts; ``"/hub/home"`` signs in without starting it.
    """
    s = requests.Session()
    page = s.get(f"{hub.url}/hub/login", timeout=30)
    assert page.status_code == 200
    xsrf = s.cookies.get("_xsrf")
    r = s.post(f"{hub.url}/hub/login", params={"next": next_url},
               data={"username": username, "password": password, "_xsrf": xsrf}, timeout=120)
    r.raise_for_status()
    return s


def new_root(prefix: str = "echoes-hub-") -> Path:
    # not pytest's tmp_path: that is 0700, and users' servers (other uids under root) must
    # be able to pass through to their homes
    root = Path(tempfile.mkdtemp(prefix=prefix))
    os.chmod(root, 0o711)
    return root
