"""The ``workshops`` hub service: the trainers' page, and closing workshops at their end time.

A managed service of the hub (started with it when ``[workshops] enabled``), reached at
``/services/workshops/`` through hub OAuth like any JupyterHub service. A signed-in trainer
sees the workshops they train: each seat, whether it signed in, whether its server runs, its
last activity, with a link that opens the seat's lab. Every minute it closes workshops whose
``--ends`` has passed (stop, archive, lock: :func:`echoes_lab.hub.services.workshops.manage.close`).
It talks to the hub only through the REST API, with its own token (``workshops``).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
from html import escape
from urllib.parse import urlparse

from jupyterhub.services.auth import HubOAuthCallbackHandler, HubOAuthenticated
from jupyterhub.utils import url_path_join
from tornado import ioloop, web

from echoes_lab.hub.client import HubClient
from echoes_lab.hub.settings import load_settings
from echoes_lab.hub.services.workshops import manage, registry

log = logging.getLogger("echoes.workshops")

_PAGE = """<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Workshops</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:.3em .6em;text-align:left}}.running{{color:#080}}</style>
</head><body><h1>Your workshops</h1>{body}<p><a href="{hub}">Back to the hub</a></p></body></html>"""


def _lab_link(row: dict) -> str:
    if row["server"] != "running":
        return ""
    return f'<a href="/user/{escape(row["seat"])}/lab">open lab</a>'


class TrainerPage(HubOAuthenticated, web.RequestHandler):
    @web.authenticated
    async def get(self):
        user = self.get_current_user()["name"]
        settings, hub = self.settings["echoes_settings"], self.settings["hub_client"]
        parts = []
        for w in registry.load_all(settings.state_dir):
            if user not in w.trainers:
                continue
            rows = await asyncio.to_thread(manage.status, settings.source, w.name, hub)
            state = "closed" if w.closed else ("open" if w.is_open else "ended")
            lines = "".join(
                f"<tr><td>{escape(r['seat'])}</td><td>{'yes' if r['signed_in'] else 'no'}</td>"
                f"<td class='{r['server']}'>{r['server']}</td><td>{escape(r['last_activity'])}</td>"
                f"<td>{_lab_link(r)}</td></tr>"
                for r in rows)
            running = sum(r["server"] == "running" for r in rows)
            parts.append(
                f"<h2>{escape(w.name)} ({state}, ends {w.ends_at:%Y-%m-%d %H:%M})</h2>"
                f"<p>{sum(r['signed_in'] for r in rows)} of {len(rows)} signed in, {running} servers running."
                + (f" Announcement: <em>{escape(w.announcement)}</em>" if w.announcement else "")
                + "</p><table><tr><th>seat</th><th>signed in</th><th>server</th><th>last activity</th>"
                f"<th></th></tr>{lines}</table>")
        body = "".join(parts) or "<p>You train no workshop on this hub.</p>"
        self.write(_PAGE.format(body=body, hub="/hub/home"))


async def close_overdue(settings_file, hub: HubClient) -> None:
    for name in await asyncio.to_thread(manage.overdue, settings_file):
        log.info("workshop %s has reached its end time: closing it", name)
        try:
            out = await asyncio.to_thread(manage.close, settings_file, name, None, hub)
            log.info("workshop %s closed: %d homes archived", name, len(out["archives"]))
        except Exception:  # keep serving; the next round tries again
            log.exception("closing workshop %s failed", name)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--settings", required=True)
    parser.add_argument("--every", type=float, default=60, help="seconds between end-time checks")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[%(levelname)1.1s %(asctime)s workshops] %(message)s")
    settings = load_settings(args.settings)
    # the hub hands a managed service its address, prefix and token in these variables
    prefix = os.environ["JUPYTERHUB_SERVICE_PREFIX"]
    url = urlparse(os.environ["JUPYTERHUB_SERVICE_URL"])
    hub = HubClient(os.environ["JUPYTERHUB_API_URL"].rsplit("/hub/api", 1)[0], os.environ["JUPYTERHUB_API_TOKEN"])
    app = web.Application([
        (prefix, TrainerPage),
        (url_path_join(prefix, "oauth_callback"), HubOAuthCallbackHandler),
    ], cookie_secret=os.urandom(32), echoes_settings=settings, hub_client=hub)
    app.listen(url.port, url.hostname)
    ioloop.PeriodicCallback(lambda: asyncio.ensure_future(close_overdue(args.settings, hub)),
                            args.every * 1000).start()
    log.info("trainers' page at %s", prefix)
    ioloop.IOLoop.current().start()


if __name__ == "__main__":
    main()
