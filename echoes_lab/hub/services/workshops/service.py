"""The ``workshops`` hub service: the trainers' page, and closing workshops at their end time.

A managed service of the hub (started with it when ``[workshops] enabled``) on the service
scaffold, reached at ``/services/workshops/`` through hub OAuth like any JupyterHub service. A
signed-in trainer sees the workshops they train: each seat, whether it signed in, whether its
server runs, its last activity, with a link that opens the seat's lab. Every minute it closes
workshops whose ``--ends`` has passed (stop, archive, lock:
:func:`echoes_lab.hub.services.workshops.manage.close`). It talks to the hub only through the
REST API, with its own token (``workshops``).
"""

from __future__ import annotations

import asyncio

from tornado import ioloop, web
from traitlets import Float

from echoes_lab.hub.client import HubClient
from echoes_lab.hub.services.base import Service, ServiceHandler
from echoes_lab.hub.services.workshops import manage, registry


class TrainerPage(ServiceHandler):
    @web.authenticated
    async def get(self):
        user = self.current_user["name"]
        service: WorkshopsService = self.service
        workshops = []
        for w in registry.load_all(service.settings.state_dir):
            if user not in w.trainers:
                continue
            rows = await asyncio.to_thread(manage.status, service.settings.source, w.name,
                                           service.hub)
            workshops.append({
                "name": w.name, "ends_at": w.ends_at, "announcement": w.announcement,
                "state": "closed" if w.closed else ("open" if w.is_open else "ended"),
                "rows": rows, "signed_in": sum(r["signed_in"] for r in rows),
                "running": sum(r["server"] == "running" for r in rows),
            })
        self.render_page("workshops.html", workshops=workshops)


class WorkshopsService(Service):
    """The trainers' page and the end-time check."""

    service_name = "workshops"
    description = "Trainers' page of the workshops, and closing them at their end time"
    aliases = {**Service.aliases, "every": "WorkshopsService.check_every"}

    check_every = Float(60, help="seconds between end-time checks").tag(config=True)

    def handlers(self) -> list[tuple]:
        return [("", TrainerPage)]

    def metrics_collectors(self) -> list:
        from echoes_lab.hub.services.workshops.metrics import collectors

        return collectors(self)

    async def start_tasks(self) -> None:
        self.hub = HubClient(self.hub_api_url.rsplit("/hub/api", 1)[0],
                             self.api_token)
        self._closing: asyncio.Future | None = None
        self._check = ioloop.PeriodicCallback(self._start_check, self.check_every * 1000)
        self._check.start()

    def _start_check(self) -> None:
        if self._closing is None or self._closing.done():
            self._closing = asyncio.ensure_future(self.close_overdue())

    async def close_overdue(self) -> None:
        """Warm the seats of workshops about to start, close those past their end time."""
        source = self.settings.source
        for name in await asyncio.to_thread(manage.due_to_warm, source):
            self.log.info("workshop %s starts soon: starting its seats' servers", name)
            try:
                await asyncio.to_thread(manage.warm, source, name, 4, self.hub)
            except Exception:  # keep serving; the next round tries again
                self.log.exception("warming workshop %s failed", name)
        for name in await asyncio.to_thread(manage.overdue, source):
            self.log.info("workshop %s has reached its end time: closing it", name)
            try:
                out = await asyncio.to_thread(manage.close, source, name, None, self.hub)
                self.log.info("workshop %s closed: %d homes archived", name, len(out["archives"]))
            except Exception:  # keep serving; the next round tries again
                self.log.exception("closing workshop %s failed", name)

    async def stop_tasks(self) -> None:
        self._check.stop()
        if self._closing is not None and not self._closing.done():
            # a close under way finishes (it runs in a thread); the scaffold bounds the wait
            await self._closing
