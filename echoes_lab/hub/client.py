"""A small client of the hub's REST API for the ``echoes-lab`` tools on the hub machine.

Services and tools talk to the hub only through its REST API, as jupyterhub-idle-culler does.
:func:`connect` reads the hub's address and the ``echoes-cli`` service token from a profile's
settings and state directory (readable by the hub's administrator only).
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

from echoes_lab._rest import call_json, session
from echoes_lab.errors import HubError
from echoes_lab.hub.secrets import read_secrets
from echoes_lab.hub.settings import Settings, load_settings


class HubClient:
    """``hub.api("GET", "/users")`` → decoded JSON; a refused request raises :class:`HubError`."""

    def __init__(self, url: str, token: str, timeout: float = 60):
        self.url = url.rstrip("/")
        self.session = session(token)
        self.timeout = timeout

    def api(self, method: str, path: str, ok=(200, 201, 202, 204), **kw):
        return call_json(self.session, method, f"{self.url}/hub/api{path}", ok=ok,
                         timeout=self.timeout, **kw)


def hub_url(settings: Settings) -> str:
    return f"http://{settings.hub.ip}:{settings.hub.port}"


def connect(settings_file: str | Path) -> HubClient:
    """A client for the hub described by ``settings_file``, with the ``echoes-cli`` token."""
    settings = load_settings(settings_file)
    try:
        secrets = read_secrets(settings.state_dir)
    except FileNotFoundError:
        msg = f"no hub state in {settings.state_dir}: start the hub first ('make hub')"
        raise HubError(
            msg
        ) from None
    except PermissionError:
        msg = f"cannot read {settings.state_dir}/secrets.json: run as the hub's administrator"
        raise HubError(msg) from None
    return HubClient(hub_url(settings), secrets.api_tokens["echoes-cli"])


class Execution:
    """One ``execute_request`` to a kernel and what comes back for it, over its websocket.

    The request (Jupyter messaging protocol 5.3, ``execute_request``:
    https://jupyter-client.readthedocs.io/en/stable/messaging.html#execute) is
    :attr:`request`; give :meth:`feed` every frame the kernel's ``/channels`` websocket sends
    until :attr:`done`. The shell reply and iopub's ``idle`` status come on two channels, in
    either order: the run is over only when both have come. Used by the reports service
    (tornado's websocket) and by :func:`execute` (websocket-client) in tests and benchmarks.
    """

    def __init__(self, code: str, username: str, **content):
        self.msg_id = uuid.uuid4().hex
        self.request = json.dumps({
            "header": {"msg_id": self.msg_id, "username": username, "session": uuid.uuid4().hex,
                       "msg_type": "execute_request", "version": "5.3"},
            "parent_header": {}, "metadata": {}, "channel": "shell",
            "content": {"code": code, "silent": False, "store_history": False,
                        "user_expressions": {}, "allow_stdin": False, **content},
        })
        self.stdout = ""
        self.errors: list[str] = []
        self.status: str | None = None
        self.idle = False

    @property
    def done(self) -> bool:
        return bool(self.status) and self.idle

    def feed(self, raw: str | bytes) -> str:
        """Take one websocket frame; return the stdout text it adds ("" for any other)."""
        if isinstance(raw, bytes):
            return ""  # binary buffers: not ours
        msg = json.loads(raw)
        if msg.get("parent_header", {}).get("msg_id") != self.msg_id:
            return ""
        kind, content = msg["msg_type"], msg["content"]
        if kind == "stream" and content.get("name") == "stdout":
            self.stdout += content["text"]
            return content["text"]
        if kind == "error":
            self.errors.append(f"{content['ename']}: {content['evalue']}")
        elif kind == "execute_reply":
            self.status = content["status"]
        elif kind == "status" and content["execution_state"] == "idle":
            self.idle = True
        return ""


def execute(ws, code: str, username: str, timeout: float = 60) -> dict:
    """Run ``code`` over ``ws``, a kernel's connected ``/channels`` websocket (websocket-client's
    ``send``/``recv``/``close``), and close it → ``{"stdout", "errors", "status"}``; ``status``
    is None when the kernel did not reply within ``timeout`` seconds."""
    run = Execution(code, username)
    try:
        ws.send(run.request)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not run.done:
            run.feed(ws.recv())
    finally:
        ws.close()
    return {"stdout": run.stdout, "errors": run.errors, "status": run.status}
