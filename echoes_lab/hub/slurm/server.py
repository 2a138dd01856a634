"""What a user's Slurm job runs: report the server's port to the hub, then start the server.

batchspawner's own ``batchspawner-singleuser`` does the same for ``jupyterhub-singleuser``
scripts; ours starts the project's server module (``echoes_lab.hub.singleuser``, with its
arguments) and uses the standard library only, so the job imports nothing it does not run.

The port is chosen here, on the compute node, because only the node knows which of its ports
are free; the hub accepts it only from this server's own token, only while the server starts,
and only as a whole number in 1-65535 (``echoes_lab.hub.slurm.spawner.PortReportHandler``).
"""

from __future__ import annotations

import json
import os
import runpy
import socket
import urllib.request
from urllib.parse import urlparse, urlunparse


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("", 0))
        return sock.getsockname()[1]


def report_port(port: int) -> None:
    """POST ``{"port": port}`` to the hub's ``/hub/api/batchspawner`` with the server's token."""
    url = os.environ["JUPYTERHUB_API_URL"].rstrip("/") + "/batchspawner"
    request = urllib.request.Request(
        url, data=json.dumps({"port": port}).encode(), method="POST",
        headers={"Authorization": f"token {os.environ['JUPYTERHUB_API_TOKEN']}",
                 "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310 (the hub's URL)
        answer.read()


def cluster_address() -> str:
    """This node's address on the network that reaches the hub (no packet is sent)."""
    hub = urlparse(os.environ["JUPYTERHUB_API_URL"]).hostname
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.connect((hub, 9))
        return sock.getsockname()[0]


def main() -> None:
    # Dask from this lab (echoes_lab.compute.cluster): a scheduler here, its workers Slurm jobs
    # on other nodes, which reach it on the cluster's network; Dask would otherwise advertise
    # the address of the node's default route, which a compute node may not have
    os.environ.setdefault("DASK_JOBQUEUE__SLURM__SCHEDULER_OPTIONS",
                          repr({"host": cluster_address()}))
    port = _free_port()
    report_port(port)
    # the server binds the address and port of JUPYTERHUB_SERVICE_URL (JupyterHub >= 2)
    url = urlparse(os.environ["JUPYTERHUB_SERVICE_URL"])
    os.environ["JUPYTERHUB_SERVICE_URL"] = urlunparse(
        url._replace(netloc=f"{url.hostname}:{port}"))
    runpy.run_module("echoes_lab.hub.singleuser", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
