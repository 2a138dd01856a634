"""The commons' public changes as a stream: ``GET /services/commons/events`` (Server-Sent
Events, https://html.spec.whatwg.org/multipage/server-sent-events.html).

Each change to a public annotation is one event whose ``event`` is the Activity Streams type
of the change (``Create``, ``Update``, ``Delete``; https://www.w3.org/TR/activitystreams-vocabulary/)
and whose ``data`` is ``{"type": …, "object": <the annotation, or {"id": …} for Delete>,
"published": …}``. Only public annotations are told, so the stream is open to anyone, like
public reads. An annotation made private is told as a ``Delete`` (it leaves the public view).
Events carry increasing ids; a client reconnecting with ``Last-Event-ID`` gets what it missed
while the last ``keep`` events are held, else a ``Reset`` telling it to read the collection
again. The knowledge base follows this stream; IIIF Change Discovery can reuse it.
"""

from __future__ import annotations

import asyncio
from collections import deque
from datetime import UTC, datetime

import orjson
from tornado import web
from tornado.iostream import StreamClosedError


class Events:
    """Public changes, fanned out to the connected streams (one asyncio queue each)."""

    def __init__(self, keep: int = 1000):
        self.seq = 0
        self.recent: deque[tuple[int, str]] = deque(maxlen=keep)
        self.queues: set[asyncio.Queue] = set()

    def publish(self, kind: str, obj: dict) -> None:
        self.seq += 1
        payload = orjson.dumps({"type": kind, "object": obj,
                                "published": datetime.now(UTC).isoformat(timespec="seconds")}
                               ).decode()
        message = f"id: {self.seq}\nevent: {kind}\ndata: {payload}\n\n"
        self.recent.append((self.seq, message))
        for q in list(self.queues):
            q.put_nowait(message)

    def created(self, annotations: list[dict]) -> None:
        """Tell many public annotations created at once (a bulk batch): the same ``Create``
        messages, one each, as :meth:`changed` would give, with one ``published`` time for
        the batch (they were stored in one transaction) and one hand-off to each stream."""
        if not annotations:
            return
        published = datetime.now(UTC).isoformat(timespec="seconds")
        dumps = orjson.dumps
        seq = self.seq
        messages = []
        for obj in annotations:
            seq += 1
            # the payload's keys in publish's order; sliced together instead of one dict per
            # event around the annotation (a tenth of a bulk item's time in the handler)
            messages.append(f"id: {seq}\nevent: Create\ndata: "
                            '{"type":"Create","object":' + dumps(obj).decode() +
                            f',"published":"{published}"}}\n\n')
        self.seq = seq
        self.recent.extend(zip(range(seq - len(messages) + 1, seq + 1), messages,
                               strict=True))
        if self.queues:
            # one queue item for the batch: a stream writes what it takes as it is
            joined = "".join(messages)
            for q in list(self.queues):
                q.put_nowait(joined)

    def changed(self, before: str | None, after: str | None, annotation: dict) -> None:
        """Tell a change of an annotation whose visibility was ``before`` and is ``after``
        (None: it did not exist / no longer exists)."""
        if after == "public":
            self.publish("Create" if before is None else "Update", annotation)
        elif before == "public":
            self.publish("Delete", {"id": annotation["id"]})

    def since(self, last: int) -> list[str] | None:
        """The held messages after ``last``; None when some were already dropped."""
        if last >= self.seq:
            return []
        if not self.recent or self.recent[0][0] > last + 1:
            return None
        return [m for n, m in self.recent if n > last]


class EventsHandler(web.RequestHandler):
    """The stream; a comment line every ``heartbeat`` seconds keeps proxies from closing it."""

    heartbeat = 15.0

    def set_default_headers(self):
        self.set_header("Content-Type", "text/event-stream; charset=utf-8")
        self.set_header("Cache-Control", "no-cache")
        self.set_header("Access-Control-Allow-Origin", "*")

    queue: asyncio.Queue | None = None

    def on_connection_close(self):
        # the client left, or the service stops and closes every connection: end the loop now
        if self.queue is not None:
            self.queue.put_nowait(None)

    async def get(self):
        events: Events = self.settings["events"]
        queue = self.queue = asyncio.Queue()
        events.queues.add(queue)
        try:
            last = self.request.headers.get("Last-Event-ID", "")
            backlog = events.since(int(last)) if last.isdigit() else []
            if backlog is None:
                backlog = [f"id: {events.seq}\nevent: Reset\ndata: {{}}\n\n"]
            self.write(f"retry: 1000\n: {events.seq}\n\n" + "".join(backlog))
            await self.flush()
            while True:
                try:
                    message = await asyncio.wait_for(queue.get(), self.heartbeat)
                except TimeoutError:
                    message = ": ping\n\n"
                if message is None:
                    break
                # what queued up meanwhile goes in the same write: a bulk batch tells
                # thousands of changes at once, and one flush each was most of its cost here
                parts, closed = [message], False
                while not queue.empty():
                    more = queue.get_nowait()
                    if more is None:
                        closed = True
                        break
                    parts.append(more)
                self.write("".join(parts))
                await self.flush()
                if closed:
                    break
        except StreamClosedError:
            pass
        finally:
            events.queues.discard(queue)
