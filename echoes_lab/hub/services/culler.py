"""jupyterhub-idle-culler as one more member of our services' host process (issue 36).

Alone, the culler is a Python process of its own (23 MiB PSS, 12.5 MiB USS at idle, forked
from the zygote) that only asks the hub, every ``cull_every`` seconds, which servers have been
idle for ``timeout`` seconds and stops them. It serves nothing, so it needs no port: in the
host (:mod:`echoes_lab.hub.services.host`) it is a :class:`Culler`, run as the culler's own
``IdleCuller.start`` runs it, with the library's own code:

* its options parsed by the library's ``IdleCuller`` application from the command line the
  hub would have given it (``--timeout=… --cull-every=…``), its config file loaded as it loads
  it, and :func:`jupyterhub_idle_culler.cull_idle` called with the same arguments, once at
  start and then every ``cull_every`` seconds by a tornado ``PeriodicCallback``;
* its own identity towards the hub: its service name and API token (the ``idle-culler`` role's
  scopes only), never the other members' tokens nor they its;
* its own log lines (the library's format, under the ``IdleCuller`` logger);
* an error of one run is logged and the next run comes as usual (what the library's loop does),
  never an exception into the host, so the other services go on serving;
* it stops with the host (SIGTERM/SIGINT, or another member stopping), a run in flight
  cancelled.

``cull_idle`` configures tornado's process-wide ``AsyncHTTPClient`` at each run
(``configure(None, defaults={"request_timeout": 60})``) and takes the loop's shared instance:
in a shared process that would change the other members' request timeout (20 s) and queue its
requests behind theirs in one client of 10 connections. The culler gets an HTTP client of its
own (:class:`CullerHTTPClient`), with the defaults the library asks for.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from typing import Any

from tornado.simple_httpclient import SimpleAsyncHTTPClient

#: seconds a run in flight is given to end when the host stops
STOP_TIMEOUT = 2.0


class CullerHTTPClient(SimpleAsyncHTTPClient):
    """The culler's own HTTP client: tornado keeps one instance per event loop and class
    (``AsyncHTTPClient._async_clients``, keyed by the class's name), so this class's instance
    is not the one the other members share; :meth:`configure` keeps the defaults the library
    sets for its requests here instead of in tornado's process-wide configuration."""

    _culler_defaults: dict[str, Any] = {}

    @classmethod
    def configure(cls, impl, **kwargs) -> None:  # noqa: ARG003 - always this class
        cls._culler_defaults = dict(kwargs.get("defaults") or {})

    def initialize(self, defaults: dict | None = None, **kwargs) -> None:
        super().initialize(defaults={**self._culler_defaults, **(defaults or {})}, **kwargs)


def culler_logger(app) -> logging.Logger:
    """The ``IdleCuller`` logger with the library's own format and level, on stderr (the hub's
    log), as ``traitlets`` would set it up, but without its ``logging.config.dictConfig``,
    which closes every handler of the process (the other members' too)."""
    log = logging.getLogger(type(app).__name__)
    log.propagate = False
    if not log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(app._log_formatter_cls(fmt=app.log_format, datefmt=app.log_datefmt))
        log.addHandler(handler)
    log.setLevel(app.log_level)
    return log


class Culler:
    """The idle culler as a member of a host process (the interface the host's ``_serve``
    drives: :meth:`initialize`, :meth:`begin`, :meth:`open`, :meth:`stopped`)."""

    service_name = "idle-culler"

    def __init__(self) -> None:
        self.environ: dict[str, str] | None = None
        self.on_stop = None
        self.log = logging.getLogger("IdleCuller")
        self._stopping: asyncio.Event | None = None
        self._periodic = None
        self._current: asyncio.Future | None = None

    def initialize(self, argv: list[str]) -> None:
        """Parse the culler's own command line (``--timeout=… --cull-every=…``) with the
        library's application, and take its token and the hub's API from its environment."""
        import jupyterhub_idle_culler as library
        from jupyterhub_idle_culler import IdleCuller

        env = self.environ if self.environ is not None else os.environ
        self.service_name = env.get("JUPYTERHUB_SERVICE_NAME", self.service_name)
        app = IdleCuller()
        # its logger set before anything asks for the default one (see culler_logger)
        app.log = culler_logger(app)
        app.initialize(argv)
        if app.config_file:  # as IdleCuller.start: idle_culler_config.py, if there is one
            app.load_config_file(app.config_file)
        self.app, self.log = app, app.log
        # the culler's own HTTP client (the module docstring says why); only it uses the module
        library.AsyncHTTPClient = CullerHTTPClient
        self.options = {
            # --url if given, else the hub's API from its environment (the library's default)
            "url": app.config.IdleCuller.get("url") or env.get("JUPYTERHUB_API_URL") or app.url,
            "api_token": env["JUPYTERHUB_API_TOKEN"],
            "inactive_limit": app.timeout, "logger": app.log, "cull_users": app.cull_users,
            "remove_named_servers": app.remove_named_servers, "max_age": app.max_age,
            "concurrency": app.concurrency, "ssl_enabled": app.ssl_enabled,
            "internal_certs_location": app.internal_certs_location,
            "cull_admin_users": app.cull_admin_users, "api_page_size": app.api_page_size,
            "cull_default_servers": app.cull_default_servers,
            "cull_named_servers": app.cull_named_servers, "cull_arbiter": app.cull_arbiter_hook,
        }

    def acquire_lock(self) -> None:
        """Nothing to hold: the culler alone keeps no lock or pid file either."""

    def release_lock(self) -> None:
        """Nothing held."""

    async def begin(self, sockets: list | None = None) -> int:  # noqa: ARG002 - no port
        if self._stopping is None:
            self._stopping = asyncio.Event()
        return 0

    def open(self) -> None:
        """The first run now, then one every ``cull_every`` seconds (``IdleCuller.start``)."""
        from tornado.ioloop import IOLoop, PeriodicCallback

        IOLoop.current().add_callback(self._cull)
        self._periodic = PeriodicCallback(self._cull, 1e3 * self.app.cull_every)
        self._periodic.start()
        self.log.info("%s in the services' process: servers idle for %d s are stopped, "
                      "checked every %d s", self.service_name, self.app.timeout,
                      self.app.cull_every)

    def _cull(self) -> asyncio.Future:
        self._current = asyncio.ensure_future(self._once())
        return self._current

    async def _once(self) -> None:
        from jupyterhub_idle_culler import cull_idle

        try:
            await cull_idle(**self.options)
        except asyncio.CancelledError:
            pass  # the host is stopping (stopped() cancelled the run)
        except Exception:
            # as the library's loop (tornado's PeriodicCallback): log it, the next run comes
            self.log.exception("culling idle servers failed; trying again in %d s",
                               self.app.cull_every)

    async def stopped(self) -> None:
        """Wait for the host to stop, then stop culling (a run in flight cancelled)."""
        await self._stopping.wait()
        if self._periodic is not None:
            self._periodic.stop()
        if self._current is not None and not self._current.done():
            self._current.cancel()
            await asyncio.wait([self._current], timeout=STOP_TIMEOUT)
        self.log.info("%s stopped", self.service_name)
