"""The owners' named servers, through the hub's REST API: where reports are read and run.

The reports service never touches a user's files itself. For each owner it starts their named
server (``reports.server``, default ``reports``) through the hub's spawner, with the service's
own token (scopes ``servers``, ``access:servers``, ``read:users:name``), and then:

* reads notebooks and run outputs with the server's contents API — the server runs as the
  owner, so a link in their home leads only where the owner may go, and nothing is read as
  root or as the service's account;
* runs a batch in a kernel of that server (:func:`echoes_lab.runs.serve_jobs`, which starts
  one fresh kernel per notebook), reading its progress lines over the kernel's websocket;
* stops the server once no run or request needs it for ``reports.server_linger`` seconds.

The owner's default server (and any other named server) is never started, stopped or used.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import defaultdict
from urllib.parse import quote, urlparse

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
from tornado.websocket import websocket_connect

from echoes_lab.errors import RunError
from echoes_lab.hub.client import Execution

log = logging.getLogger("echoes.reports")


class ServerError(RunError):
    """The owner's named server could not be started or reached."""


class NotFound(RunError):  # noqa: N818 -- a 404 from the owner's server
    """The owner's server has no such file."""


def _q(name: str) -> str:
    return quote(name, safe="")


class OwnerServers:
    """Start, use and stop owners' named servers.

    Parameters
    ----------
    api_url
        The hub's REST API (``JUPYTERHUB_API_URL``).
    token
        The service's hub token.
    proxy_url
        Where users' servers are reached (the hub's public address). When users have hosts of
        their own (``[hub] subdomain_host``: the hub's model of a server gives a full URL), a
        request goes to the same address with the ``Host`` of the owner's server, by which the
        proxy routes it.
    name
        The named server's name.
    linger
        Seconds an unused server is kept before it is stopped.
    start_timeout
        Seconds a server may take to become ready.
    """

    def __init__(
        self,
        api_url: str,
        token: str,
        proxy_url: str,
        name: str = "reports",
        linger: float = 20,
        start_timeout: float = 120,
    ):
        self.api_url, self.token = api_url.rstrip("/"), token
        self.proxy_url, self.name = proxy_url.rstrip("/"), name
        self.linger, self.start_timeout = linger, start_timeout
        self.leases: dict[str, int] = defaultdict(int)
        self.locks: dict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self.stops: dict[str, asyncio.TimerHandle] = {}
        #: owner -> the host of their server, when servers have hosts of their own
        self.hosts: dict[str, str] = {}
        self.client = AsyncHTTPClient()

    # -- HTTP ------------------------------------------------------------------------------
    def _headers(self, owner: str | None = None) -> dict:
        headers = {"Authorization": f"token {self.token}"}
        if owner in self.hosts:
            headers["Host"] = self.hosts[owner]
        return headers

    async def _fetch(
        self, url: str, method: str = "GET", body=None, timeout: float = 60, owner=None
    ) -> tuple[int, bytes]:
        data = (
            None
            if body is None
            else (body if isinstance(body, bytes) else json.dumps(body).encode())
        )
        req = HTTPRequest(
            url,
            method=method,
            body=data,
            request_timeout=timeout,
            headers={**self._headers(owner), "Content-Type": "application/json"},
            allow_nonstandard_methods=True,
            follow_redirects=False,
        )
        try:
            resp = await self.client.fetch(req, raise_error=False)
        except (OSError, HTTPClientError) as exc:
            msg = f"cannot reach {url.split('?')[0]}: {exc}"
            raise ServerError(msg) from None
        if resp.code == 599:
            msg = f"cannot reach {url.split('?')[0]}: {resp.error}"
            raise ServerError(msg)
        return resp.code, resp.body or b""

    async def hub(self, method: str, path: str, body=None) -> tuple[int, dict | None]:
        """A call to the hub's REST API; returns the status and the decoded JSON (or None)."""
        code, data = await self._fetch(self.api_url + path, method, body)
        try:
            return code, json.loads(data) if data else None
        except ValueError:
            return code, None

    def base(self, owner: str) -> str:
        return f"{self.proxy_url}/user/{_q(owner)}/{_q(self.name)}/"

    async def server(
        self, owner: str, method: str, path: str, body=None, timeout: float = 60
    ) -> tuple[int, bytes]:
        """A request to the owner's named server (through the proxy, with our token)."""
        return await self._fetch(self.base(owner) + path, method, body, timeout, owner)

    # -- life cycle ----------------------------------------------------------------------
    async def model(self, owner: str) -> dict | None:
        """The hub's model of the owner's named server, or None when it is not running."""
        code, user = await self.hub("GET", f"/users/{_q(owner)}")
        if code == 404:
            msg = f"{owner} is not a user of the hub any more"
            raise ServerError(msg)
        if code != 200:
            msg = f"the hub answered {code} when asked about {owner}'s servers"
            raise ServerError(msg)
        server = (user.get("servers") or {}).get(self.name)
        url = urlparse((server or {}).get("url") or "")
        if url.netloc:  # a host of its own (subdomain_host), else a path on the hub's host
            self.hosts[owner] = url.netloc
        return server

    async def _start(self, owner: str) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.start_timeout
        delay, asked = 0.1, False
        while loop.time() < deadline:
            server = await self.model(owner)
            pending = (server or {}).get("pending")
            if server and server.get("ready") and not pending:
                return
            if pending == "stop":
                pass  # stopping (our own linger ran out): start it again once it is down
            elif not server or (not pending and not server.get("ready")):
                if asked:
                    msg = (
                        f"{owner}'s '{self.name}' server did not start (see the hub's log); "
                        "is the spawner able to start servers for this user?"
                    )
                    raise ServerError(msg)
                code, body = await self.hub(
                    "POST", f"/users/{_q(owner)}/servers/{_q(self.name)}", {}
                )
                if code not in (201, 202, 400):
                    reason = (body or {}).get("message", "")
                    msg = (
                        f"the hub refused to start {owner}'s '{self.name}' server ({code} {reason})"
                    )
                    raise ServerError(msg)
                asked = code != 400  # 400: it was starting or stopping meanwhile; look again
                if code == 201:
                    continue
            await asyncio.sleep(delay)
            delay = min(1.0, delay * 1.5)
        msg = f"{owner}'s '{self.name}' server was not ready after {self.start_timeout:.0f} s"
        raise ServerError(msg)

    async def stop(self, owner: str) -> None:
        """Stop the owner's named server (not their default one)."""
        self.stops.pop(owner, None)
        if self.leases[owner]:
            return
        try:
            code, _ = await self.hub("DELETE", f"/users/{_q(owner)}/servers/{_q(self.name)}")
            log.info("stopping %s's '%s' server: %s", owner, self.name, code)
        except ServerError as exc:
            log.warning("%s", exc)

    def _stop_later(self, owner: str) -> None:
        loop = asyncio.get_running_loop()

        def fire():
            self.stops.pop(owner, None)
            if not self.leases[owner]:
                loop.create_task(self.stop(owner))

        old = self.stops.pop(owner, None)
        if old:
            old.cancel()
        self.stops[owner] = loop.call_later(self.linger, fire)

    @contextlib.asynccontextmanager
    async def lease(self, owner: str):
        """Use the owner's named server: started if needed, stopped after the last user."""
        async with self.locks[owner]:
            pending = self.stops.pop(owner, None)
            if pending:
                pending.cancel()
            self.leases[owner] += 1
            try:
                await self._start(owner)
            except BaseException:
                self.leases[owner] -= 1
                if not self.leases[owner]:
                    self._stop_later(owner)
                raise
        cancelled = False
        try:
            yield self
        except asyncio.CancelledError:
            # the service is stopping: a run under way goes on in the server, and the next
            # start of the service collects its result and stops the server then
            cancelled = True
            raise
        finally:
            self.leases[owner] -= 1
            if not self.leases[owner] and not cancelled:
                self._stop_later(owner)

    async def close(self) -> None:
        """Stop the servers that only wait for their linger time (on the service's stop)."""
        owners = list(self.stops)
        for owner in owners:
            self.stops.pop(owner).cancel()
        await asyncio.gather(*(self.stop(o) for o in owners), return_exceptions=True)

    # -- files ---------------------------------------------------------------------------
    async def contents(self, owner: str, path: str, **params) -> dict:
        """The contents API model of ``path`` (relative to the owner's home).

        Raises :class:`NotFound` for a missing file; never passes the server's message on
        (it can quote the file).
        """
        query = "&".join(f"{k}={quote(str(v))}" for k, v in params.items())
        code, body = await self.server(
            owner, "GET", "api/contents/" + quote(path) + (f"?{query}" if query else "")
        )
        if code == 404:
            msg = f"{path}: no such file in the home folder"
            raise NotFound(msg)
        if code != 200:
            msg = (
                f"{path}: cannot be read as asked (HTTP {code} from the owner's server); "
                "is it a notebook inside the home folder that its owner may read?"
            )
            raise RunError(msg)
        return json.loads(body)

    # -- kernels -------------------------------------------------------------------------
    async def kernel_alive(self, owner: str, kernel_id: str) -> bool:
        code, _ = await self.server(owner, "GET", f"api/kernels/{_q(kernel_id)}")
        return code == 200

    async def delete_kernel(self, owner: str, kernel_id: str) -> None:
        with contextlib.suppress(RunError):
            await self.server(owner, "DELETE", f"api/kernels/{_q(kernel_id)}")

    async def execute(
        self, owner: str, code: str, on_line, timeout: float, kernel: str = "echoes", on_kernel=None
    ) -> None:
        """Run ``code`` in a new kernel of the owner's server; ``on_line(text)`` per stdout line.

        The kernel is deleted afterwards (also on timeout or error). Raises :class:`RunError`
        when the code raised, the kernel died, or ``timeout`` seconds passed.
        """
        status, body = await self.server(owner, "POST", "api/kernels", {"name": kernel})
        if status != 201:
            msg = f"{owner}'s server could not start a '{kernel}' kernel (HTTP {status})"
            raise ServerError(msg)
        kid = json.loads(body)["id"]
        if on_kernel:
            on_kernel(kid)
        ws_url = self.base(owner).replace("http", "ws", 1) + f"api/kernels/{kid}/channels"
        try:
            ws = await websocket_connect(
                HTTPRequest(ws_url, headers=self._headers(owner), connect_timeout=30)
            )
        except Exception as exc:
            await self.delete_kernel(owner, kid)
            msg = f"cannot connect to a kernel in {owner}'s server: {exc}"
            raise ServerError(msg) from None
        try:
            await asyncio.wait_for(self._drive(ws, owner, code, on_line), timeout)
        except asyncio.CancelledError:
            ws.close()  # the service stops; the runner finishes on its own (see lease)
            raise
        except TimeoutError:
            ws.close()
            await self.delete_kernel(owner, kid)
            msg = f"stopped after {timeout:.0f} s (reports.run_timeout)"
            raise RunError(msg) from None
        except BaseException:
            ws.close()
            await self.delete_kernel(owner, kid)
            raise
        ws.close()
        await self.delete_kernel(owner, kid)

    @staticmethod
    async def _drive(ws, owner: str, code: str, on_line) -> None:
        run = Execution(code, owner, stop_on_error=True)
        await ws.write_message(run.request)
        buffer = ""
        while not run.done:
            raw = await ws.read_message()
            if raw is None:
                msg = "the kernel's connection closed before the run finished (kernel died?)"
                raise RunError(msg)
            buffer += run.feed(raw)
            *lines, buffer = buffer.split("\n")
            for line in lines:
                on_line(line)
        if buffer:
            on_line(buffer)
        if run.errors:
            msg = f"the runner in the owner's server failed: {run.errors[-1]}"
            raise RunError(msg)
