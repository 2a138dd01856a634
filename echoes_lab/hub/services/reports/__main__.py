"""``python -m echoes_lab.hub.services.reports --settings FILE``: the reports service, started by the hub.

The hub passes the service's address and OAuth client in ``JUPYTERHUB_*`` environment
variables (read here, and by ``jupyterhub.services.auth``); everything else comes from the
deployment's settings file given on the command line.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from urllib.parse import urlparse

from echoes_lab.errors import EchoesError
from echoes_lab.hub.settings import load_settings
from echoes_lab.hub.services.reports.app import make_app
from echoes_lab.hub.services.reports.scheduler import Scheduler
from echoes_lab.hub.services.reports.store import Store

log = logging.getLogger("echoes.reports")


async def serve(settings_file: str) -> None:
    settings = load_settings(settings_file)
    url = urlparse(os.environ["JUPYTERHUB_SERVICE_URL"])
    prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/services/reports/")
    hub_prefix = os.environ.get("JUPYTERHUB_BASE_URL", "/").rstrip("/") + "/hub/"
    store = Store(settings.state_dir / "reports.sqlite")
    scheduler = Scheduler(settings, store)
    app = make_app(settings, store, scheduler, prefix, hub_prefix)
    server = app.listen(url.port, url.hostname or "127.0.0.1", xheaders=True)
    scheduler.start()
    log.info("reports service on %s%s (%d schedules)", url.netloc, prefix, len(store.schedules()))
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    await stopping.wait()
    log.info("reports service stopping")
    server.stop()
    await scheduler.stop()
    store.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m echoes_lab.hub.services.reports", description=__doc__.splitlines()[0])
    parser.add_argument("--settings", required=True, help="the deployment's settings file")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[%(levelname)1.1s %(asctime)s reports] %(message)s")
    try:
        asyncio.run(serve(args.settings))
    except EchoesError as exc:
        print(f"echoes-lab reports: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
