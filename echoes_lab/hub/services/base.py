"""The scaffold every hub service is built on (the hub side, :class:`Feature`, is in
:mod:`echoes_lab.hub.services`).

* :class:`Service` — a managed service as one traitlets ``Application``, as
  jupyterhub-idle-culler keeps a whole service in one program: ``--settings FILE`` and the
  hub's ``JUPYTERHUB_*`` variables in, a tornado app from :meth:`Service.handlers` plus the
  OAuth callback, logging, a lock in the state directory (a second instance refuses to start),
  an exit of its own when the hub is gone, a bounded clean stop on SIGTERM/SIGINT, request
  bodies limited in size (413), and :meth:`Service.utcnow` as the clock tests patch.
* :class:`ServiceHandler` / :class:`APIHandler` — hub OAuth (browser cookie) or a hub token
  (``Authorization: token …``); pages from Jinja2 templates in ``echoes_lab/hub/templates``
  extending ``service-page.html`` (the hub's navbar and stylesheet); JSON errors for the API.

Started as ``python -m echoes_lab.hub.services.NAME --settings FILE``, whose ``__main__`` calls
:func:`echoes_lab.hub.services.run` with the service's class.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import json
import logging
import os
import signal
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from http.client import responses
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape
from jupyterhub.services.auth import HubOAuth, HubOAuthCallbackHandler, HubOAuthenticated
from jupyterhub.utils import url_path_join
from tornado import httputil, web
from tornado.httpclient import AsyncHTTPClient, HTTPClientError
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets
from traitlets import Float, Integer, Unicode, default
from traitlets.config import Application

from echoes_lab.errors import EchoesError
from echoes_lab.hub import i18n
from echoes_lab.hub.services import access_scope, listen_address, listening
from echoes_lab.hub.settings import Settings, load_settings

TEMPLATES = Path(__file__).resolve().parents[1] / "templates"
LOG_FORMAT = "[%(levelname)1.1s %(asctime)s %(name)s] %(message)s"


# -- pages --------------------------------------------------------------------------------------

_environments: dict[tuple[str, ...], Environment] = {}


def template_environment(extra_dirs: tuple[str, ...] = ()) -> Environment:
    """The Jinja2 environment for service pages: ``extra_dirs`` first, then ``TEMPLATES``."""
    key = tuple(str(d) for d in extra_dirs)
    if key not in _environments:
        _environments[key] = i18n.install(Environment(
            loader=FileSystemLoader([*key, str(TEMPLATES)]),
            autoescape=select_autoescape(default=True, default_for_string=True)))
    return _environments[key]


class ServiceHandler(HubOAuthenticated, web.RequestHandler):
    """A page or endpoint of a service, signed in through the hub.

    ``current_user`` is the hub's model of the user (or service) from the OAuth cookie or a
    token in ``Authorization: token …``; None when neither is there or the hub refuses it.
    """

    @property
    def hub_auth(self) -> HubOAuth:
        # the service's own instance (its cache age from the settings); the singleton otherwise
        return self.settings.get("hub_auth") or HubOAuth.instance()

    @hub_auth.setter
    def hub_auth(self, auth) -> None:  # HubAuthenticated's own setter; ours comes from settings
        self._hub_auth = auth

    @property
    def service(self) -> Service | None:
        return self.settings.get("service")

    @property
    def hub_prefix(self) -> str:
        return self.settings.get("hub_prefix", "/hub/")

    def user_or_none(self) -> dict | None:
        """The signed-in user for an error page: never raises."""
        try:
            return self.current_user
        except Exception:
            return None

    def template_namespace(self) -> dict:
        user = self.user_or_none()
        return {
            "hub_prefix": self.hub_prefix,
            "base_url": self.settings.get("service_prefix", "/"),
            "service_name": self.settings.get("service_name", ""),
            "user": user,
            "xsrf_token": self.xsrf_token.decode() if user else "",
            "lang": self.page_language(), "languages": i18n.LANGUAGES,
            # the language switch keeps the page's own query (a viewer's manifest, …)
            "query": {k: self.get_query_argument(k) for k in self.request.query_arguments
                      if k != "lang"},
        }

    def page_language(self) -> str:
        """The page's language (:func:`echoes_lab.hub.i18n.choose`); a ``?lang=`` switch is
        remembered in a cookie for a year, for the whole deployment."""
        # the cookie is the deployment's (its root, above /hub/): hub pages, every service and
        # the apps in users' labs follow one switch
        root = self.hub_prefix.removesuffix("hub/") or "/"
        return i18n.language_of(self, cookie_path=root)

    def render_page(self, template: str, **ns) -> None:
        """Finish with ``templates/<template>`` (which extends ``service-page.html``)."""
        env = template_environment(tuple(self.settings.get("template_dirs", ())))
        namespace = {**self.template_namespace(), **ns}
        with i18n.rendering_in(namespace["lang"]):
            self.finish(env.get_template(template).render(**namespace))

    def error_message(self, status_code: int, **kwargs) -> str:
        # an HTTPError's message is ours to show; any other exception's text stays in the log
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, web.HTTPError) and exc.log_message:
            return exc.log_message % exc.args if exc.args else exc.log_message
        return self._reason or responses.get(status_code, "error")

    def write_error(self, status_code: int, **kwargs) -> None:
        message = self.error_message(status_code, **kwargs)
        self.set_header("Content-Type", "text/html; charset=utf-8")
        env = template_environment(tuple(self.settings.get("template_dirs", ())))
        namespace = self.template_namespace()
        with i18n.rendering_in(namespace["lang"]):
            self.finish(env.get_template("error.html").render(
                **namespace, status_code=status_code,
                status_message=responses.get(status_code, "Error"), message=message))


class APIHandler(ServiceHandler):
    """A REST endpoint: needs a signed-in user or a token, answers errors as JSON.

    Errors are ``{"status": CODE, "message": "…"}``.
    """

    def prepare(self):
        if self.current_user is None:
            name = self.settings.get("service_name", "NAME")
            msg = (f"sign in through the hub, or send a hub API token with the scope "
                   f"{access_scope(name)}")
            raise web.HTTPError(403, msg)

    def write_error(self, status_code: int, **kwargs) -> None:
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"status": status_code,
                                "message": self.error_message(status_code, **kwargs)}))

    def get_json_body(self) -> dict:
        """The request's JSON object; 400 when it is not one."""
        try:
            data = json.loads(self.request.body or b"{}")
        except ValueError:
            raise web.HTTPError(400, "the request body is not JSON") from None
        if not isinstance(data, dict):
            raise web.HTTPError(400, "the request body must be a JSON object")
        return data

    def write_json(self, model, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(model, default=str))


class TokenOrXSRF:
    """Mixed into a handler that takes both hub tokens and browser cookies: a request with an
    ``Authorization`` header carries no cookie to forge, so only cookie (browser) requests are
    checked, by the hub's own rule (same-origin ``Sec-Fetch-*`` or the ``_xsrf`` token)."""

    def check_xsrf_cookie(self):
        if self.request.headers.get("Authorization"):
            return None
        return super().check_xsrf_cookie()


class NotFoundHandler(ServiceHandler):
    """Unknown paths: JSON under ``…/api/``, an error page elsewhere."""

    def prepare(self):
        raise web.HTTPError(404, f"nothing at {self.request.path}")

    def write_error(self, status_code: int, **kwargs) -> None:
        if "/api/" in self.request.path:
            APIHandler.write_error(self, status_code, **kwargs)
        else:
            super().write_error(status_code, **kwargs)


class MetricsHandler(ServiceHandler):
    """``NAME/metrics``: the service's Prometheus series, for callers with ``read:metrics``.

    As JupyterHub's ``/hub/metrics``: a token (or OAuth cookie) without that scope gets 403.
    """

    def get(self):
        from echoes_lab.hub.services import observe

        if not observe.may_read_metrics(self.user_or_none()):
            raise web.HTTPError(403, f"reading metrics needs the hub's {observe.METRICS_SCOPE} "
                                     f"scope")
        body, content_type = observe.metrics_text(self.settings.get("service_name", ""))
        self.set_header("Content-Type", content_type)
        self.finish(body)


class OAuthCallbackHandler(HubOAuthCallbackHandler):
    """The hub's OAuth callback with the service's own :class:`HubOAuth`."""

    hub_auth = ServiceHandler.hub_auth


class _BodyLimit(httputil.HTTPMessageDelegate):
    """Answers 413 (JSON) to a request whose ``Content-Length`` is above the limit.

    Tornado's own check closes the connection with a bare 400. Here the body is read and
    dropped chunk by chunk (memory stays flat), then the 413 is sent, so the client reads it.
    Bodies above ``hard_limit`` still get tornado's 400.
    """

    def __init__(self, inner, request_conn, limit: int, hard_limit: int):
        self.inner, self.conn = inner, request_conn
        self.limit, self.hard_limit = limit, hard_limit
        self.too_large = False

    def headers_received(self, start_line, headers):
        try:
            length = int(headers.get("Content-Length", "0"))
        except ValueError:
            length = 0  # tornado refuses it with a 400
        if length > self.limit:
            self.too_large = True
            if length <= self.hard_limit:
                self.conn.set_max_body_size(length)
            return None
        return self.inner.headers_received(start_line, headers)

    def data_received(self, chunk):
        return None if self.too_large else self.inner.data_received(chunk)

    def finish(self):
        if not self.too_large:
            return self.inner.finish()
        body = json.dumps({"status": 413, "message":
                           f"the request body is larger than {self.limit} bytes"}).encode()
        headers = httputil.HTTPHeaders({"Content-Type": "application/json",
                                        "Content-Length": str(len(body))})
        self.conn.write_headers(httputil.ResponseStartLine("HTTP/1.1", 413, "Payload Too Large"),
                                headers, body)
        self.conn.finish()
        return None

    def on_connection_close(self):
        if not self.too_large:
            self.inner.on_connection_close()


class ServiceApplication(web.Application):
    """A tornado application limiting request bodies (``max_body_size`` setting, bytes)."""

    def start_request(self, server_conn, request_conn):
        inner = super().start_request(server_conn, request_conn)
        limit = self.settings.get("max_body_size")
        if not limit:
            return inner
        return _BodyLimit(inner, request_conn, limit, 64 * limit)

    def log_request(self, handler) -> None:
        super().log_request(handler)
        from echoes_lab.hub.services import observe  # every request's latency, for /metrics

        observe.observe_request(handler)


# -- the service process ------------------------------------------------------------------------

#: HubOAuth's traits and the variables the hub passes them in (a managed service's environment)
_OAUTH_ENV = {"api_token": "JUPYTERHUB_API_TOKEN", "api_url": "JUPYTERHUB_API_URL",
              "oauth_client_id": "JUPYTERHUB_CLIENT_ID",
              "oauth_redirect_uri": "JUPYTERHUB_OAUTH_CALLBACK_URL",
              "hub_host": "JUPYTERHUB_HOST"}


class ServiceLocked(EchoesError):
    """Another instance of the service holds its lock."""


class Service(Application):
    """A managed service of the hub: subclass, set ``service_name``, define :meth:`handlers`.

    Hooks: :meth:`handlers`, :meth:`tornado_settings`, ``async`` :meth:`start_tasks` /
    :meth:`stop_tasks`, and :meth:`utcnow` (the clock tests patch). The instance is
    ``self.settings`` (validated), ``self.prefix``, ``self.hub_prefix``, ``self.log``.
    """

    #: the hub's name of the service (``JUPYTERHUB_SERVICE_NAME`` wins when set)
    service_name = "service"
    #: extra template folders searched before ``echoes_lab/hub/templates``
    template_dirs: tuple[str, ...] = ()

    name = Unicode("echoes-service")
    log_format = Unicode(LOG_FORMAT)
    aliases = {"settings": "Service.settings_file", "log-level": "Application.log_level"}

    settings_file = Unicode("", help="the deployment's settings file").tag(config=True)
    hub_poll_interval = Float(
        help="seconds between checks that the hub still answers (default: settings)"
    ).tag(config=True)
    hub_failures = Integer(
        3, help="consecutive failed checks after which the service stops: its hub is gone"
    ).tag(config=True)
    stop_timeout = Float(8.0, help="seconds stop_tasks() may take on SIGTERM").tag(config=True)

    @default("log_level")
    def _default_log_level(self):
        return logging.INFO

    @default("hub_poll_interval")
    def _default_poll(self):
        return float(self.settings.services.hub_check_every) if self.settings else 5.0

    settings: Settings | None = None
    #: the service's ``JUPYTERHUB_*`` variables when it shares a process with others
    #: (:mod:`echoes_lab.hub.services.host`); None: the process's own environment
    environ: dict[str, str] | None = None
    #: the service's own hub API token (``JUPYTERHUB_API_TOKEN`` of its environment)
    api_token: str = ""
    #: called with the reason when the service stops (the host stops the others)
    on_stop: Callable[[str], None] | None = None

    # -- hooks -----------------------------------------------------------------------------
    def handlers(self) -> list[tuple]:
        """Routes ``(path, handler[, kwargs])``, paths relative to the service prefix."""
        return []

    def tornado_settings(self) -> dict:
        """Extra tornado application settings (handlers read them as ``self.settings``).

        Called once, after the lock is held and the port bound, before :meth:`start_tasks`.
        """
        return {}

    async def start_tasks(self) -> None:
        """Start background work (after :meth:`tornado_settings`, before serving)."""

    async def stop_tasks(self) -> None:
        """Stop background work; must finish within ``stop_timeout`` seconds."""

    def metrics_collectors(self) -> list:
        """Prometheus collectors of the service's own series (its package's ``metrics.py``),
        served at ``NAME/metrics`` with every request's latency (:mod:`.observe`)."""
        return []

    def utcnow(self) -> datetime:
        """The current time (UTC); tests patch this instead of waiting."""
        return datetime.now(UTC)

    # -- set-up ----------------------------------------------------------------------------
    def initialize(self, argv=None) -> None:
        # the hub that started us, taken first: a hub killed while we start up must be noticed
        # too (read when the watch begins, the parent would already be its reaper)
        self.parent_pid = os.getppid()
        super().initialize(argv)
        self.setup_logging()
        if not self.settings_file:
            self.log.error("--settings FILE is required")
            self.exit(2)
        try:
            self.settings = load_settings(self.settings_file)
        except EchoesError as exc:
            self.log.error("%s", exc)
            self.exit(exc.exit_code)
        env = self.environ if self.environ is not None else os.environ
        self.service_name = env.get("JUPYTERHUB_SERVICE_NAME", self.service_name)
        self.prefix = env.get("JUPYTERHUB_SERVICE_PREFIX", f"/services/{self.service_name}/")
        self.hub_prefix = url_path_join(env.get("JUPYTERHUB_BASE_URL", "/"), "hub/")
        self.hub_api_url = env.get("JUPYTERHUB_API_URL", "")
        self.url = env.get("JUPYTERHUB_SERVICE_URL", "http://127.0.0.1:0")
        self.api_token = env.get("JUPYTERHUB_API_TOKEN", "")
        self._oauth = {trait: env[var] for trait, var in _OAUTH_ENV.items() if env.get(var)}
        if env.get("JUPYTERHUB_OAUTH_ACCESS_SCOPES"):
            self._oauth["access_scopes"] = set(json.loads(env["JUPYTERHUB_OAUTH_ACCESS_SCOPES"]))

    def setup_logging(self) -> None:
        """One format for the service and the libraries it uses, on stderr (the hub's log)."""
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter(LOG_FORMAT, datefmt="%Y-%m-%d %H:%M:%S"))
        root = logging.getLogger()
        root.handlers[:] = [handler]
        root.setLevel(self.log_level)
        # tornado's access log: errors only (the hub's proxy log has the requests)
        logging.getLogger("tornado.access").setLevel(logging.WARNING)
        self.log = logging.getLogger(f"echoes.{self.service_name}")

    @property
    def lock_path(self) -> Path:
        return self.settings.state_dir / "services" / f"{self.service_name}.lock"

    def acquire_lock(self) -> None:
        """Hold ``<state>/services/NAME.lock`` (with our pid in it) for the life of the process.

        Raises
        ------
        ServiceLocked
            Another process holds it: a second copy of the service must not run (two reports
            services would fire every schedule twice).
        """
        folder = self.lock_path.parent
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES):
                os.close(fd)
                raise
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            msg = (f"another {self.service_name} service (pid {holder}) holds {self.lock_path}; "
                   f"stop it first (a second copy would do the same work twice)")
            raise ServiceLocked(msg) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._lock_fd = fd
        self.pid_file = folder / f"{self.service_name}.pid"
        tmp = folder / f".{self.service_name}.pid.{os.getpid()}"
        with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as fh:
            fh.write(f"{os.getpid()}\n")
        os.replace(tmp, self.pid_file)

    def release_lock(self) -> None:
        fd = getattr(self, "_lock_fd", None)
        if fd is None:
            return
        pid_file = getattr(self, "pid_file", None)
        try:
            if pid_file and pid_file.read_text().strip() == str(os.getpid()):
                pid_file.unlink()
        except OSError:
            pass
        os.close(fd)  # releases the flock
        self._lock_fd = None

    def make_app(self) -> web.Application:
        """The tornado application: :meth:`handlers` under the prefix, plus the OAuth callback."""
        s = self.settings.services
        # a revoked token or a closed seat stops working here within the sign-in refresh
        cache_age = min(s.auth_cache_age, self.settings.workshops.auth_refresh_age)
        # the service's own OAuth client, given explicitly: HubOAuth reads the process's
        # environment by default, which several services sharing a process do not have
        hub_auth = HubOAuth(parent=self, cache_max_age=cache_age, base_url=self.prefix,
                            hub_prefix=self.hub_prefix, **getattr(self, "_oauth", {}))
        routes = [(url_path_join(self.prefix, "oauth_callback"), OAuthCallbackHandler),
                  (url_path_join(self.prefix, "metrics"), MetricsHandler)]
        for path, *rest in self.handlers():
            routes.append((url_path_join(self.prefix, path), *rest))
        tornado_settings = self.tornado_settings()
        from echoes_lab.hub.services import observe

        observe.register(self.metrics_collectors(), self.service_name)
        return ServiceApplication(
            routes,
            default_handler_class=NotFoundHandler,
            # the OAuth state cookie's key: a new one per start only means signing in again
            cookie_secret=os.urandom(32),
            hub_auth=hub_auth, service=self, service_name=self.service_name,
            service_prefix=self.prefix, hub_prefix=self.hub_prefix,
            template_dirs=self.template_dirs, max_body_size=s.max_body_size,
            **tornado_settings,
        )

    # -- running ---------------------------------------------------------------------------
    def start(self) -> None:
        try:
            self.acquire_lock()
        except ServiceLocked as exc:
            self.log.error("%s", exc)
            self.exit(exc.exit_code)
        try:
            code = asyncio.run(self.serve())
        finally:
            self.release_lock()
        self.exit(code)

    def stop(self, why: str = "") -> None:
        """Begin a clean stop (from a signal, the hub watch, or a test)."""
        if why:
            self.log.info("stopping: %s", why)
        self._stopping.set()
        if self.on_stop is not None:  # the services sharing our process stop with us
            self.on_stop(why)

    async def serve(self) -> int:
        """Serve until stopped (a signal, the hub gone); the process's exit status."""
        self._stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop, signal.Signals(sig).name)
        code = await self.begin()
        if code:
            return code
        self.open()
        await self.stopped()
        return 0

    async def begin(self, sockets: list | None = None) -> int:
        """Bind the port (or take ``sockets``), make the app, start the background tasks: all
        that may fail, before any request is served. 0, or the exit status to end with."""
        from urllib.parse import urlparse

        if not hasattr(self, "_stopping"):
            self._stopping = asyncio.Event()
        url = urlparse(self.url)
        if sockets is None:
            host, port = listen_address(self.url)
            try:  # the port first: a service that cannot serve starts nothing
                sockets = listening[:] or bind_sockets(port, host)
                listening.clear()
            except OSError as exc:
                self.log.error("cannot listen on %s: %s", url.netloc, exc)
                return 1
        self._sockets = sockets
        self._server = HTTPServer(self.make_app(), xheaders=True,
                                  max_body_size=64 * self.settings.services.max_body_size)
        try:
            await self.start_tasks()
        except EchoesError as exc:
            self.log.error("%s", exc)
            for sock in sockets:
                sock.close()
            return exc.exit_code
        return 0

    def open(self) -> None:
        """Serve requests from here on, and watch the hub."""
        from urllib.parse import urlparse

        self._server.add_sockets(self._sockets)
        self._watch = asyncio.ensure_future(self.watch_hub())
        self.log.info("%s service on %s%s", self.service_name, urlparse(self.url).netloc,
                      self.prefix)

    async def stopped(self) -> None:
        """Wait for :meth:`stop`, then stop serving and the background tasks in bounded time."""
        await self._stopping.wait()
        # from here on the process ends in bounded time, whatever a task does
        timer = threading.Timer(self.stop_timeout + 2, self._exit_now)
        timer.daemon = True
        timer.start()
        if getattr(self, "_watch", None) is not None:
            self._watch.cancel()
            self._server.stop()
        else:  # stopped before it served (a service sharing its process failed to start)
            for sock in self._sockets:
                sock.close()
        try:
            await asyncio.wait_for(self.stop_tasks(), self.stop_timeout)
        except TimeoutError:
            self.log.warning("background tasks did not stop within %.0f s", self.stop_timeout)
        except Exception:
            self.log.exception("stopping background tasks failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._server.close_all_connections(), 1)
        timer.cancel()
        self.log.info("%s service stopped", self.service_name)

    def _exit_now(self) -> None:
        self.log.warning("still running %.0f s after the stop: exiting now", self.stop_timeout + 2)
        self.release_lock()
        logging.shutdown()
        os._exit(1)

    async def watch_hub(self) -> None:
        """Stop when the hub is gone: our parent changed, or its API stopped answering."""
        parent = getattr(self, "parent_pid", None) or os.getppid()
        failures = 0
        client = AsyncHTTPClient()
        while True:
            if os.getppid() != parent:
                self.stop(f"the hub (pid {parent}) is gone")
                return
            await asyncio.sleep(self.hub_poll_interval)
            if not self.hub_api_url:
                continue
            try:
                await client.fetch(self.hub_api_url, request_timeout=5, connect_timeout=5)
                failures = 0
            except HTTPClientError as exc:
                # any answer (even an error status) means the hub is there; 599 is a timeout
                failures = failures + 1 if exc.code == 599 else 0
            except OSError:
                failures += 1
            if failures >= self.hub_failures:
                self.stop(f"the hub at {self.hub_api_url} did not answer {failures} times")
                return
