"""The hub side of Dask Gateway: a managed service of the hub, and users' clusters ending with
their server.

:data:`FEATURE` is its entry in ``echoes_lab.hub.config.FEATURES``: the managed service, users'
:data:`ACCESS`, the ``DASK_GATEWAY__*`` variables of users' servers (Dask's configuration reads
them as ``gateway.*``) and :func:`stop_clusters_hook`. The gateway's own configuration is
``echoes_lab.hub.services.gateway.config``; the hub proxies it at ``/services/dask-gateway/``.
The gateway is Dask's own server (``dask_gateway_server``), not one of ours on the scaffold.
"""

from __future__ import annotations

import json
import os
import sys

from echoes_lab.hub import HUB_CONFIG_DIR
from echoes_lab.hub.services import Feature
from echoes_lab.hub.settings import Settings

SERVICE = "dask-gateway"
PREFIX = f"/services/{SERVICE}"
CONFIG_FILE = HUB_CONFIG_DIR / "dask_gateway_config.py"
ACCESS = f"access:services!service={SERVICE}"
#: "0" in the hub's environment: schedulers and workers exec'd, not forked (see config.py)
FORK_SERVER_VARIABLE = "ECHOES_GATEWAY_FORK_SERVER"


def _url(s: Settings) -> str:
    return f"http://127.0.0.1:{s.gateway.port}"


def _service(s: Settings, secrets) -> dict:
    """The managed service; it needs no role: it only asks the hub who owns users' tokens."""
    return {
        "name": SERVICE,
        "url": _url(s),
        "command": [sys.executable, "-m", "dask_gateway_server", "-f", str(CONFIG_FILE)],
        "environment": {"ECHOES_SETTINGS": str(s.source),
                        # "0": no fork server (benchmarks/cluster.py --no-fork-server compares)
                        **{k: os.environ[k] for k in (FORK_SERVER_VARIABLE,) if k in os.environ}},
        "display": False,
    }


def _environment(s: Settings) -> dict:
    """Users' servers find the gateway (and the lab's Dask panel makes clusters on it)."""
    # users' servers run on this machine: they reach the proxy on loopback if it listens there
    host = "127.0.0.1" if s.hub.ip in ("", "0.0.0.0") else s.hub.ip
    return {
        "DASK_GATEWAY__ADDRESS": f"http://{host}:{s.hub.port}{PREFIX}",
        # browsers follow dashboard links relative to the hub's own address
        "DASK_GATEWAY__PUBLIC_ADDRESS": f"{PREFIX}/",
        "DASK_GATEWAY__PROXY_ADDRESS": f"gateway://{host}:{s.gateway.scheduler_port}",
        "DASK_GATEWAY__AUTH__TYPE": "jupyterhub",
        # the lab's Dask panel (dask-labextension) makes its "+ NEW" clusters on the gateway
        "DASK_LABEXTENSION__FACTORY__MODULE": "dask_gateway",
        "DASK_LABEXTENSION__FACTORY__CLASS": "GatewayCluster",
    }


def _configure_hub(c, s: Settings) -> None:
    # users' server tokens may call the gateway (it checks this scope); the first two are
    # JupyterHub's default 'server' role
    token_scopes = (c.Spawner.server_token_scopes if "server_token_scopes" in c.Spawner
                    else ["users:activity!user", "access:servers!server"])
    c.Spawner.server_token_scopes = [*token_scopes, ACCESS]
    # a user's clusters end with their server (the gateway's idle timeout is the fallback)
    c.Spawner.post_stop_hook = stop_clusters_hook(_url(s) + PREFIX)


def stop_clusters_hook(gateway_url: str, wait: float = 20.0):
    """A ``Spawner.post_stop_hook`` stopping the user's clusters when their server stops.

    The hub gives the user a token valid two minutes for the gateway only, lists the user's
    clusters through the gateway's REST API with it, stops each, waits (at most
    ``wait`` seconds) until none is still stopping, and deletes the token. Waiting makes a
    server's stop include its clusters': the gateway keeps running clusters across a restart
    of the hub, and a hub stopped right after a server would otherwise leave one half-stopped.
    """

    async def stop_user_clusters(spawner) -> None:
        import asyncio
        import time

        from jupyterhub import orm
        from tornado.httpclient import AsyncHTTPClient

        user = spawner.user
        token = user.new_api_token(note="stop Dask clusters with the server", expires_in=120,
                                   scopes=[ACCESS])
        headers = {"Authorization": f"jupyterhub {token}"}
        client = AsyncHTTPClient()
        try:
            resp = await client.fetch(f"{gateway_url}/api/v1/clusters/", headers=headers,
                                      request_timeout=20)
            for name in json.loads(resp.body):
                await client.fetch(f"{gateway_url}/api/v1/clusters/{name}", method="DELETE",
                                   headers=headers, request_timeout=60)
                spawner.log.info("Stopped Dask cluster %s of %s with the server", name, user.name)
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline:
                resp = await client.fetch(f"{gateway_url}/api/v1/clusters/?status=stopping",
                                          headers=headers, request_timeout=20)
                if not json.loads(resp.body):
                    break
                await asyncio.sleep(0.25)
        except Exception as exc:  # the gateway's idle timeout remains as the fallback
            spawner.log.warning("Could not stop the Dask clusters of %s: %s", user.name, exc)
        finally:
            orm_token = orm.APIToken.find(user.db, token)
            if orm_token is not None:
                user.db.delete(orm_token)
                user.db.commit()

    return stop_user_clusters


FEATURE = Feature(SERVICE, enabled=lambda s: s.gateway.enabled, service=_service,
                  user_scopes=lambda s: [ACCESS], environment=_environment,
                  configure_hub=_configure_hub)
