"""The services that run beside the hub, one package each (see ``ARCHITECTURE.md``), and the one
way a hub feature plugs into the hub.

* :class:`Feature` — what :func:`echoes_lab.hub.config.configure` needs from a feature (its
  managed service, roles, the scopes every user gets, the environment of users' servers, other
  hub options); ``configure`` walks one table of them (``FEATURES`` in ``config.py``).
* :func:`run` — what a service's ``__main__`` calls: it listens on the service's port, then
  imports and starts the service (:class:`echoes_lab.hub.services.base.Service`).

This module is light (standard library only): the launcher and the hub's configuration import it,
and so does every service process before its first import of JupyterHub or tornado.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

if TYPE_CHECKING:
    from echoes_lab.hub.settings import Settings


def _nothing(*_args) -> None:
    return None


def _no_list(*_args) -> list:
    return []


def _no_dict(*_args) -> dict:
    return {}


def _always(*_args) -> bool:
    return True


@dataclass(frozen=True)
class Feature:
    """One hub feature, as :func:`echoes_lab.hub.config.configure` sees it.

    Every field but ``name`` is a function of the validated settings; the defaults add nothing.

    Attributes
    ----------
    name
        The feature's name; also its service's name and the key of its API token in
        ``secrets.api_tokens`` when it runs one.
    enabled
        ``enabled(settings) -> bool``: whether ``configure`` uses the feature at all.
    service
        ``service(settings, secrets) -> dict | None``: its JupyterHub service definition
        (see :func:`managed_service`), or None.
    roles
        ``roles(settings) -> list[dict]``: JupyterHub roles to load (the service's own, …).
    user_scopes
        ``user_scopes(settings) -> list[str]``: scopes added to every user's ``user`` role,
        e.g. ``access:services!service=NAME``.
    environment
        ``environment(settings) -> dict``: variables for users' servers.
    configure_hub
        ``configure_hub(c, settings) -> None``: any other hub options (hooks, authenticator).
    """

    name: str
    enabled: Callable[[Settings], bool] = _always
    service: Callable[[Settings, Any], dict | None] = _nothing
    roles: Callable[[Settings], list[dict]] = _no_list
    user_scopes: Callable[[Settings], list[str]] = _no_list
    environment: Callable[[Settings], dict] = _no_dict
    configure_hub: Callable[[Any, Settings], None] = _nothing


def free_port() -> int:
    """A TCP port free on the loopback interface now (the hub passes it to the service)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def service_command(module: str, settings: Settings) -> list[str]:
    """``python -m MODULE --settings FILE`` with this interpreter and the hub's settings file."""
    return [sys.executable, "-m", module, "--settings", str(Path(settings.source).resolve())]


def managed_service(name: str, settings: Settings, command: list[str], port: int = 0,
                    **extra) -> dict:
    """A JupyterHub managed-service definition for one of our services.

    Parameters
    ----------
    name
        The service's name (its prefix is ``/services/NAME/``).
    settings
        The deployment's settings.
    command
        The command the hub runs, e.g. :func:`service_command`.
    port
        Its loopback port; 0 picks a free one at each start of the hub.
    **extra
        Other keys of the definition (``info``, ``display``, ``environment``…), overriding the
        defaults: our own services skip the "authorize access?" page and are listed in the
        hub's Services menu. ``configure`` adds ``api_token`` from the secrets.
    """
    service = {
        "name": name,
        "url": f"http://127.0.0.1:{port or free_port()}",
        "command": list(command),
        "oauth_no_confirm": True,
        "display": True,
        "environment": {"PYTHONUNBUFFERED": "1"},
    }
    service.update(extra)
    return service


def access_scope(name: str) -> str:
    """The scope a user needs to reach service ``name``."""
    return f"access:services!service={name}"


def hub_url(s: Settings) -> str:
    """The hub's address as services and labs on this machine reach it: its public origin
    when users have subdomains (``[hub] subdomain_host``: the proxy then routes by host, and
    the services are at the hub's own host), else its address on this machine."""
    if s.hub.subdomain_host:
        return s.hub.subdomain_host
    host = "127.0.0.1" if s.hub.ip in ("", "0.0.0.0", "::") else s.hub.ip
    return f"http://{host}:{s.hub.port}"


# -- the service side: listen first, then import ------------------------------------------------

#: the sockets :func:`run` opened before the service was imported (``Service.serve`` takes them)
listening: list[socket.socket] = []


def listen_address(service_url: str) -> tuple[str, int | None]:
    """Where to listen for the hub's URL of a service (``JUPYTERHUB_SERVICE_URL``): host, port.

    The URL names a loopback address on one machine, and the service's own name
    (``http://commons:8080``) on Kubernetes, where it listens on all its pod's interfaces ("").
    """
    url = urlparse(service_url)
    host = url.hostname or "127.0.0.1"
    if not (host == "localhost" or host.startswith("127.") or host == "::1"):
        host = ""
    return host, url.port


def run(target: str) -> None:
    """Start the service ``"module:Class"`` (a :class:`~echoes_lab.hub.services.base.Service`).

    The port is opened before the service's modules are imported (~0.6 s of JupyterHub, tornado
    and the service's own): the hub starts its services one at a time and polls each new one with
    a growing back-off, so a port that refuses at the first poll costs up to seconds more than
    the import, while a listening one holds that poll until the service answers it. A port that
    cannot be opened is reported by ``Service.serve`` as before (the service exits with 1).
    """
    from tornado.netutil import bind_sockets

    host, port = listen_address(os.environ.get("JUPYTERHUB_SERVICE_URL", ""))
    if port:  # if it cannot be opened, Service.serve tries again and says why in the log
        with contextlib.suppress(OSError):
            listening.extend(bind_sockets(port, host))
    module, name = target.split(":")
    getattr(importlib.import_module(module), name).launch_instance()
