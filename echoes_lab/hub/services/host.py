"""Several of our services in one process: the hub side's fixed memory (issue 36).

Each service on the scaffold (:mod:`echoes_lab.hub.services.base`) alone is a Python process of
60–70 MiB, nearly all of it the same modules (JupyterHub's OAuth helpers import its ORM,
SQLAlchemy and alembic; tornado; jinja2; pydantic). :func:`share` rewrites the hub's service
definitions so that the services which may share a process run in one:

* JupyterHub manages one process, the *host*, under the first service's name, URL and token
  (``python -m echoes_lab.hub.services.host --settings FILE``);
* the others are declared to JupyterHub as external services: their URL (the proxy routes
  ``/services/NAME/`` there), their own API token (so each keeps its role's scopes) and their
  own OAuth client (``service-NAME``, the same callback); no command.

The host runs every one of them in one event loop, as each would run alone: its own port and
prefix, its own :class:`~jupyterhub.services.auth.HubOAuth` client and token, its own lock and
pid file in ``state/services``, its own ``/metrics`` (:mod:`.observe`), its own watch of the
hub. It serves the managed service's port last, so the hub, which waits for that URL, finds
every service answering. SIGTERM/SIGINT stop them all; so does any one of them stopping (its
hub gone, a failed start): the process then exits, and the hub starts it again with every
service, as it restarts a managed service that exits.

What stays in a process of its own, and why:

* a service that runs under another account (``user`` in its definition: reports as
  ``reports.service_user`` when users are isolated): the account is the whole process's, and
  the other services run as root;
* services that are not ours: dask-gateway, which starts users' clusters under their
  accounts. jupyterhub-idle-culler, which serves nothing, is the exception: where a host runs
  with the hub's account, it is one more member of it, with no port, its own token and its
  role's scopes (:mod:`.culler`); with no host (our services each alone, or the culler the
  only service) it stays the managed service it is;
* services whose event loop does minutes of CPU work when asked (:data:`OWN_PROCESS`): in a
  shared loop they stall every other service (seen: a 20,000-annotation bulk import into the
  commons, which knowledge maps to Linked Art as the changes arrive, left the commons answering
  nothing for minutes once both shared a process).
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import sys
from urllib.parse import urlparse

#: the host's list of the services it runs (no secrets: each token is read from the state dir)
SERVICES_ENV = "ECHOES_HOSTED_SERVICES"
MODULE = "echoes_lab.hub.services.host"
#: the prefix of our services' packages (``python -m PACKAGE --settings FILE``)
OURS = "echoes_lab.hub.services."


#: jupyterhub-idle-culler's module (``python -m``) and its member class in a host (:mod:`.culler`)
CULLER_MODULE = "jupyterhub_idle_culler"
CULLER_TARGET = "echoes_lab.hub.services.culler:Culler"
#: what JupyterHub gives every managed service alike (the others name the service: its URL,
#: prefix, OAuth client), passed on to a hosted member that has no URL
HUB_WIDE = ("JUPYTERHUB_API_URL", "JUPYTERHUB_BASE_URL", "JUPYTERHUB_HOST",
            "JUPYTERHUB_PUBLIC_HUB_URL")


#: services kept in a process of their own, and why
OWN_PROCESS = {
    # bulk requests validate and store thousands of annotations per request, in its loop
    "commons": "CPU-heavy requests",
    # maps every public change of the commons to Linked Art (~12 ms a record) and loads it
    "knowledge": "CPU-heavy ingestion",
}


def _target(service: dict) -> str | None:
    """``module:Class`` of a definition made by :func:`~echoes_lab.hub.services.service_command`
    for a service on the scaffold; None for any other (third-party, no command)."""
    command = service.get("command") or []
    if len(command) != 5 or command[:2] != [sys.executable, "-m"] or command[3] != "--settings":
        return None
    if not command[2].startswith(OURS) or command[2] == MODULE:
        return None
    if service.get("name") in OWN_PROCESS:
        return None
    try:
        return getattr(importlib.import_module(command[2] + ".__main__"), "TARGET", None)
    except ImportError:
        return None


def _culler_args(service: dict) -> list[str] | None:
    """The options of jupyterhub-idle-culler's command (``python -m jupyterhub_idle_culler
    --timeout=… …`` of this interpreter) in ``service``; None for any other service, and for
    a culler whose token the hub makes at its start (not in the secrets file: the host could
    not know it)."""
    command = service.get("command") or []
    if (command[:3] != [sys.executable, "-m", CULLER_MODULE] or service.get("url")
            or not service.get("api_token")):
        return None
    return list(command[3:])


def share(services: list[dict]) -> list[dict]:
    """The hub's service definitions with our services grouped into host processes.

    Services on the scaffold with the same ``user`` (none: the hub's), except those of
    :data:`OWN_PROCESS`, share one process; a group of one is left as it is. The first of a
    group is the managed host (its name, URL, token); the others become external services with
    their own URL, token and OAuth client. jupyterhub-idle-culler joins the host of its
    account, if there is one, as a member with its own command line (``argv``) and token and
    no URL (:mod:`.culler`); it is then an external service with only its token.
    """
    groups: dict[str | None, list[tuple[int, str]]] = {}
    cullers: dict[str | None, list[int]] = {}
    for i, service in enumerate(services):
        target = _target(service)
        if target is not None:
            groups.setdefault(service.get("user"), []).append((i, target))
        elif _culler_args(service) is not None:
            cullers.setdefault(service.get("user"), []).append(i)
    out = [dict(s) for s in services]
    for user, members in groups.items():
        if len(members) < 2:
            continue
        first = out[members[0][0]]
        hosted = []
        for i, target in members:
            service = out[i]
            hosted.append({"name": service["name"], "url": service["url"], "target": target,
                           "environment": service.get("environment", {}),
                           "oauth_client_allowed_scopes": service.get(
                               "oauth_client_allowed_scopes")})
            if i != members[0][0]:
                service.pop("command")
                service.pop("environment", None)
        for i in cullers.get(user, []):  # after the others: it starts culling once they serve
            service = out[i]
            hosted.append({"name": service["name"], "target": CULLER_TARGET,
                           "argv": _culler_args(service),
                           "environment": service.pop("environment", None) or {}})
            service.pop("command")
        first["command"] = [*first["command"][:2], MODULE, *first["command"][3:]]
        first["environment"] = {**first.get("environment", {}),
                                SERVICES_ENV: json.dumps(hosted)}
    return out


def service_environ(hosted: dict, token: str, base: dict[str, str]) -> dict[str, str]:
    """What JupyterHub would give ``hosted`` as a managed service (``Service.start`` and
    ``Spawner.get_env``), from the host's own variables ``base`` (the hub's API, base URL)."""
    from jupyterhub.utils import url_path_join

    from echoes_lab.hub.services import access_scope

    name = hosted["name"]
    if not hosted.get("url"):  # serves nothing (the culler): the hub's API and its token only
        env = {k: v for k, v in base.items() if k in HUB_WIDE}
        env.update(hosted.get("environment") or {})
        env.update({"JUPYTERHUB_SERVICE_NAME": name, "JUPYTERHUB_API_TOKEN": token})
        return env
    prefix = url_path_join(base.get("JUPYTERHUB_BASE_URL", "/"), "services", name) + "/"
    access = json.dumps([access_scope(name)])
    env = {k: v for k, v in base.items() if k.startswith("JUPYTERHUB_")}
    env.update(hosted.get("environment") or {})
    env.update({
        "JUPYTERHUB_SERVICE_NAME": name, "JUPYTERHUB_SERVICE_URL": hosted["url"],
        "JUPYTERHUB_SERVICE_PREFIX": prefix, "JUPYTERHUB_API_TOKEN": token,
        "JUPYTERHUB_CLIENT_ID": f"service-{name}",
        "JUPYTERHUB_OAUTH_CALLBACK_URL": url_path_join(prefix, "oauth_callback"),
        "JUPYTERHUB_OAUTH_SCOPES": access, "JUPYTERHUB_OAUTH_ACCESS_SCOPES": access,
        "JUPYTERHUB_OAUTH_CLIENT_ALLOWED_SCOPES": json.dumps(
            hosted.get("oauth_client_allowed_scopes") or [access_scope(name)]),
    })
    if base.get("JUPYTERHUB_PUBLIC_URL"):
        origin = urlparse(base["JUPYTERHUB_PUBLIC_URL"])._replace(path="").geturl()
        env["JUPYTERHUB_PUBLIC_URL"] = url_path_join(origin, prefix)
    return env


def _bind(hosted: list[dict]) -> dict[str, list]:
    """Every service's port, opened before the services are imported (as
    :func:`echoes_lab.hub.services.run`); a port that cannot be opened is left to the service,
    which says why and stops."""
    from tornado.netutil import bind_sockets

    from echoes_lab.hub.services import listen_address

    sockets = {}
    for service in hosted:
        if not service.get("url"):  # serves nothing (the culler)
            continue
        host, port = listen_address(service["url"])
        if port:
            with contextlib.suppress(OSError):
                sockets[service["name"]] = bind_sockets(port, host)
    return sockets


async def _serve(apps: list, sockets: dict[str, list]) -> int:
    import asyncio
    import signal

    loop = asyncio.get_running_loop()

    def stop_all(why: str) -> None:
        for app in apps:
            if not app._stopping.is_set():
                app._stopping.set()
                app.log.info("stopping: %s", why)

    for app in apps:
        app._stopping = asyncio.Event()
        app.on_stop = stop_all
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop_all, signal.Signals(sig).name)
    begun = []
    for app in apps:
        code = await app.begin(sockets.get(app.service_name))
        if code:
            stop_all(f"{app.service_name} could not start")
            await asyncio.gather(*(other.stopped() for other in begun))
            return code
        begun.append(app)
    # the managed service (the hub waits for its URL) last: then every service answers
    for app in reversed(apps):
        app.open()
    await asyncio.gather(*(app.stopped() for app in apps))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the services of ``$ECHOES_HOSTED_SERVICES`` with the settings of ``--settings``."""
    import asyncio

    argv = sys.argv[1:] if argv is None else argv
    hosted = json.loads(os.environ.get(SERVICES_ENV) or "[]")
    sockets = _bind(hosted)  # before the imports below (~1 s): the hub's poll waits on them

    from echoes_lab.errors import EchoesError
    from echoes_lab.hub.secrets import read_secrets
    from echoes_lab.hub.settings import load_settings

    base = dict(os.environ)
    apps = []
    try:
        settings_file = argv[argv.index("--settings") + 1]
        tokens = read_secrets(load_settings(settings_file).state_dir).api_tokens
        for service in hosted:
            module, name = service["target"].split(":")
            cls = getattr(importlib.import_module(module), name)
            app = cls()
            # the managed one keeps what the hub gave it; the others get the same, their own
            app.environ = (base if base.get("JUPYTERHUB_SERVICE_NAME") == service["name"]
                           else service_environ(service, tokens.get(service["name"], ""), base))
            app.initialize(service.get("argv", argv))  # the culler: its own command line
            apps.append(app)
        for app in apps:
            app.acquire_lock()
    except (ValueError, IndexError):
        sys.stderr.write(f"usage: python -m {MODULE} --settings FILE\n")
        return 2
    except (EchoesError, OSError) as exc:
        code = getattr(exc, "exit_code", 1)
        sys.stderr.write(f"{exc}\n")
        for app in apps:
            app.release_lock()
        return code
    try:
        return asyncio.run(_serve(apps, sockets))
    finally:
        for app in apps:
            app.release_lock()


if __name__ == "__main__":
    sys.exit(main())
