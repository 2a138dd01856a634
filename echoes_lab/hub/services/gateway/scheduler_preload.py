"""Scheduler preload of a gateway cluster: report to the gateway at once, with its workers.

The scheduler of every gateway cluster loads this file (``--preload <path>``, after
``dask_gateway.scheduler_preload``) in its own process, under the user's account. It imports
nothing of ``echoes_lab`` (loaded by path, not by name), so the scheduler pays no import for it.

dask-gateway's scheduler service sends its first heartbeat — the message that tells the
gateway where the scheduler listens, which marks the cluster running — 0.25 s after it
starts, and asks for workers only when the client, having seen the cluster running, asks to
scale. Here the first heartbeat leaves as soon as the scheduler has started, already carrying
the number of workers asked for with the cluster (``ECHOES_GATEWAY_WORKERS``, set by the
gateway from the cluster option ``workers``), so the gateway starts the workers in the same
step that marks the cluster running (``benchmarks/cluster.py`` measures the difference).
"""

from __future__ import annotations

import asyncio
import logging
import os

logger = logging.getLogger("distributed.scheduler")

#: environment variable holding the workers asked for with the cluster
WORKERS_VARIABLE = "ECHOES_GATEWAY_WORKERS"


async def _report(service) -> None:
    try:
        await service.heartbeat()
    except Exception:  # the service's own heartbeat loop retries, with its back-off
        logger.warning("First heartbeat to the gateway failed; it will be retried",
                       exc_info=True)


def dask_setup(scheduler) -> None:
    """Set the worker count asked for at creation and send the first heartbeat now."""
    service = scheduler.services.get("gateway")
    if service is None:  # dask_gateway's preload did not run: nothing to report through
        return
    try:
        workers = int(os.environ.get(WORKERS_VARIABLE, "0"))
    except ValueError:
        workers = 0
    if workers > 0 and service.count == 0:
        logger.info("Starting with %d workers, as asked with the cluster", workers)
        service.count = workers
    # the scheduler listens already (preloads start after it did); the task keeps a
    # reference in the service so that it is not collected before it ran
    service._echoes_first_heartbeat = asyncio.ensure_future(_report(service))
