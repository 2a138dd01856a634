"""The hub side of Dask Gateway: a managed service of the hub, and users' clusters ending with
their server.

``echoes_lab.hub.config.configure`` calls :func:`hub_service` and :func:`stop_clusters_hook`
(and grants users :data:`ACCESS`); the gateway's own configuration is ``echoes_lab.hub.services.gateway.config``. The
hub proxies the gateway at ``/services/dask-gateway/``; users' servers find it through
``DASK_GATEWAY__*`` variables, which Dask's configuration reads as ``gateway.*``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from echoes_lab.hub.settings import Settings

SERVICE = "dask-gateway"
PREFIX = f"/services/{SERVICE}"
CONFIG_FILE = Path(__file__).resolve().parents[4] / "hub_config" / "dask_gateway_config.py"
ACCESS = f"access:services!service={SERVICE}"


def hub_service(s: Settings, api_token: str) -> tuple[dict, dict]:
    """The hub side: the managed service and the users' server environment.

    The service needs no role: it only asks the hub who owns the tokens users present.
    """
    gw = s.gateway
    # users' servers run on this machine: they reach the proxy on loopback if it listens there
    host = "127.0.0.1" if s.hub.ip in ("", "0.0.0.0") else s.hub.ip
    service = {
        "name": SERVICE,
        "api_token": api_token,
        "url": f"http://127.0.0.1:{gw.port}",
        "command": [sys.executable, "-m", "dask_gateway_server", "-f", str(CONFIG_FILE)],
        "environment": {"ECHOES_SETTINGS": str(s.source)},
        "display": False,
    }
    env = {
        "DASK_GATEWAY__ADDRESS": f"http://{host}:{s.hub.port}{PREFIX}",
        # browsers follow dashboard links relative to the hub's own address
        "DASK_GATEWAY__PUBLIC_ADDRESS": f"{PREFIX}/",
        "DASK_GATEWAY__PROXY_ADDRESS": f"gateway://{host}:{gw.scheduler_port}",
        "DASK_GATEWAY__AUTH__TYPE": "jupyterhub",
        # the lab's Dask panel (dask-labextension) makes its "+ NEW" clusters on the gateway
        "DASK_LABEXTENSION__FACTORY__MODULE": "dask_gateway",
        "DASK_LABEXTENSION__FACTORY__CLASS": "GatewayCluster",
    }
    return service, env


def stop_clusters_hook(gateway_url: str):
    """A ``Spawner.post_stop_hook`` stopping the user's clusters when their server stops.

    The hub gives the user a token valid two minutes for the gateway only, lists the user's
    clusters through the gateway's REST API with it, stops each, and deletes the token.
    """

    async def stop_user_clusters(spawner) -> None:
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
        except Exception as exc:  # the gateway's idle timeout remains as the fallback
            spawner.log.warning("Could not stop the Dask clusters of %s: %s", user.name, exc)
        finally:
            orm_token = orm.APIToken.find(user.db, token)
            if orm_token is not None:
                user.db.delete(orm_token)
                user.db.commit()

    return stop_user_clusters
