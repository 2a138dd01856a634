"""Dask clusters on demand: one call, the same code on the hub and on a laptop.

>>> import echoes_lab
>>> client = echoes_lab.compute.cluster(workers=2)        # doctest: +SKIP
>>> client                                                # the dashboard link shows here
>>> client.shutdown()                                     # the cluster ends (optional)

On the hub, :func:`cluster` asks the deployment's **Dask Gateway** for a cluster of your own:
its scheduler and workers run as separate processes (under your own system account when the hub
runs as root, or as pods on Kubernetes), within the per-user limits of the deployment. Anywhere
else (a laptop, Binder, a test) it starts a :class:`distributed.LocalCluster` with the same
options. The dashboard link is in the client's notebook display.

Where the code runs is read in one place, :func:`gateway_address`: the hub puts
``DASK_GATEWAY__ADDRESS`` (with ``DASK_GATEWAY__PROXY_ADDRESS``, ``DASK_GATEWAY__PUBLIC_ADDRESS``
and ``DASK_GATEWAY__AUTH__TYPE=jupyterhub``) into every user server's environment, which Dask's
configuration reads as ``gateway.address`` (the Kubernetes charts set the same keys). A
``~/.config/dask/gateway.yaml`` naming a gateway works too.

On an HPC cluster scheduled by Slurm (the ``slurm`` profile) the workers are Slurm jobs of your
own, submitted by `dask-jobqueue <https://jobqueue.dask.org>`_'s ``SLURMCluster``: the profile
sets Dask's ``jobqueue.slurm`` configuration (``DASK_JOBQUEUE__SLURM__QUEUE`` the partition,
``…__WALLTIME``, ``…__SCHEDULER_OPTIONS`` the address workers reach the scheduler at), and a
partition there chooses this backend (:func:`slurm_partition`).

A gateway cluster ends when its client's kernel exits (``shutdown_on_close``), when it has been
idle for the deployment's ``gateway.idle_timeout`` seconds, and when the owner's server stops
(the hub stops the owner's clusters then); :meth:`distributed.Client.shutdown` ends it at once.
"""

from __future__ import annotations

import functools
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import dask.config

from echoes_lab.errors import ClusterError

if TYPE_CHECKING:  # distributed is imported on the first cluster, not with echoes_lab
    from distributed import Client

__all__ = ["OPTIONS", "cluster", "gateway_address", "slurm_partition"]

#: Options accepted on every backend, with their meaning; on the hub their bounds come from
#: the deployment's settings (``gateway.max_worker_cores`` / ``gateway.max_worker_memory``).
OPTIONS = {
    "worker_cores": "CPU cores (and threads) per worker, a whole number",
    "worker_memory": "memory per worker in GiB, e.g. 2 or 1.5",
}


def gateway_address() -> str | None:
    """The Dask Gateway this code should use, or ``None`` outside a hub.

    This is the one place that decides: Dask's own configuration key ``gateway.address``,
    which the hub's spawner sets through the environment variable ``DASK_GATEWAY__ADDRESS``.
    """
    return dask.config.get("gateway.address", None) or None


def _check_options(options: dict) -> None:
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        known = "; ".join(f"{k}: {v}" for k, v in OPTIONS.items())
        msg = f"unknown cluster option(s) {', '.join(unknown)}; the options are {known}"
        raise ClusterError(msg)


def _check_workers(workers) -> int:
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 0:
        msg = f"workers must be a whole number of 0 or more, not {workers!r}"
        raise ClusterError(msg)
    return workers


def cluster(workers: int = 2, **options) -> Client:
    """Start a Dask cluster of your own and return a client connected to it.

    Parameters
    ----------
    workers
        Number of workers to start (0 is allowed, e.g. to scale later with
        ``client.cluster.scale(n)``). On the hub it may not exceed the deployment's
        ``gateway.max_workers``.
    **options
        ``worker_cores`` (whole cores per worker) and ``worker_memory`` (GiB per worker), see
        :data:`OPTIONS`. On the hub each is bounded by the deployment's settings.

    Returns
    -------
    distributed.Client
        Connected to the new cluster (``client.cluster``); displaying it in a notebook shows
        the dashboard link. ``client.shutdown()`` ends the cluster.

    Raises
    ------
    ClusterError
        An unknown option, a value above the deployment's limits, too many clusters already
        running, or a gateway that cannot be reached; the message says which and the limit.
    """
    workers = _check_workers(workers)
    _check_options(options)
    address = gateway_address()
    if address:
        return _gateway_client(address, workers, options)
    if slurm_partition():
        return _slurm_client(workers, options)
    return _local_client(workers, options)


def slurm_partition() -> str | None:
    """The Slurm partition workers are submitted to, or None: Dask's ``jobqueue.slurm.queue``
    (``DASK_JOBQUEUE__SLURM__QUEUE``, set by the ``slurm`` profile in users' servers)."""
    return dask.config.get("jobqueue.slurm.queue", None) or None


def _slurm_client(workers: int, options: dict) -> Client:
    from dask_jobqueue import SLURMCluster
    from distributed import Client

    cores = int(options.get("worker_cores", 1))
    memory = float(options.get("worker_memory", 2.0))
    try:
        # one worker process per job, its threads the job's cores (as a gateway worker);
        # the rest (partition, walltime, scheduler address, python) from jobqueue.slurm
        # the jobs' logs in the user's cache, not slurm-N.out files in the notebook's folder
        logs = dask.config.get("jobqueue.slurm.log-directory", None) or str(
            Path.home() / ".cache" / "echoes-lab" / "slurm")
        Path(logs).mkdir(parents=True, exist_ok=True)
        slurm = SLURMCluster(cores=cores, processes=1, memory=f"{memory}GiB",
                             log_directory=logs)
    except (OSError, ValueError) as exc:
        msg = f"the Slurm cluster could not start (partition {slurm_partition()!r}): {exc}"
        raise ClusterError(msg) from None
    try:
        slurm.scale(jobs=workers)
        return Client(slurm, set_as_default=True)
    except BaseException:
        slurm.close()
        raise


def _local_client(workers: int, options: dict) -> Client:
    kwargs = {"n_workers": workers, "threads_per_worker": int(options.get("worker_cores", 1))}
    if "worker_memory" in options:
        kwargs["memory_limit"] = f"{float(options['worker_memory'])}GiB"
    from distributed import Client

    # processes, as on the gateway; a Client that makes its own LocalCluster closes it too
    return Client(processes=True, **kwargs)


def _gateway_client(address: str, workers: int, options: dict) -> Client:
    from dask_gateway import Gateway, GatewayCluster, GatewayClusterError, GatewayServerError

    try:
        # a Gateway of its own, not shared with the cluster: a GatewayCluster given another
        # Gateway's loop dies when that Gateway is collected. Not closed explicitly either: its
        # __del__ closes it again and then complains that the loop is gone.
        wanted = Gateway(address).cluster_options()
        for key, value in options.items():
            wanted[key] = value
        if "workers" in wanted:  # this hub's gateway starts them together with the scheduler
            wanted["workers"] = workers
    except (AttributeError, KeyError) as exc:
        msg = f"the gateway at {address} does not offer the option {exc}"
        raise ClusterError(msg) from None
    except (TypeError, ValueError) as exc:
        msg = f"cluster option refused by the hub's limits: {exc}"
        raise ClusterError(msg) from None
    except OSError as exc:
        msg = f"cannot reach the Dask Gateway at {address}: {exc}"
        raise ClusterError(msg) from None
    try:
        # shutdown_on_close: when the kernel exits, its clusters go with it
        gc = GatewayCluster(address=address, cluster_options=wanted, shutdown_on_close=True)
    except ValueError as exc:  # 422 from the gateway: a limit or a bad option
        msg = f"the hub refused a new cluster: {exc}"
        raise ClusterError(msg) from None
    except (GatewayClusterError, GatewayServerError, OSError) as exc:
        msg = f"the cluster could not start: {exc}"
        raise ClusterError(msg) from None
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            gc.scale(workers)
        refused = [str(w.message) for w in caught if "limit" in str(w.message)]
        if refused:
            msg = (
                f"{workers} workers is above this hub's limit ({refused[0]}); "
                "ask for fewer workers, or ask the hub's administrator (gateway.max_workers)"
            )
            raise ClusterError(
                msg
            )
    except BaseException:
        gc.shutdown()
        raise
    client = _gateway_client_class()(gc, security=gc.security, set_as_default=True,
                                     asynchronous=False, loop=gc.loop)
    gc._clients.add(client)  # as GatewayCluster.get_client: closed with the cluster
    return client


@functools.cache
def _gateway_client_class() -> type:
    from distributed import Client

    class GatewayClient(Client):
        """A client whose ``shutdown()`` ends its gateway cluster.

        ``distributed.Client.shutdown`` awaits ``cluster.close()`` on the loop it shares with
        the ``GatewayCluster``, whose synchronous ``close`` waits on that same loop: a deadlock
        (dask-gateway 2026.3.0 with distributed 2026.8.0). ``GatewayCluster.shutdown`` closes
        the cluster's clients, then stops the cluster, from the caller's thread.
        """

        def shutdown(self):
            self.cluster.shutdown()

    return GatewayClient
