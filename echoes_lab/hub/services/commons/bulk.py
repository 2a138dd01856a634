"""Bulk contributions: ``POST /services/commons/bulk`` stores many annotations in one request.

Software does not annotate one region at a time: an OCR run over a manuscript gives thousands
of lines. The request carries either

* JSON-LD: an ``AnnotationPage`` (``items``), an ``AnnotationCollection`` whose ``first`` page
  is embedded, or a plain JSON array of annotations; or
* NDJSON (``Content-Type: application/x-ndjson``, https://github.com/ndjson/ndjson-spec): one
  annotation per line, as a client streams them.

Each item is checked on its own exactly as a single ``POST annotations/`` would be (data model,
visibility, the generator is one of the poster's actors, the run's RO-Crate as the generator's
``homepage``); the valid ones are stored in ONE transaction. The answer lists, in order, each
item's result: ``{"index", "status": 201, "id"}`` or ``{"index", "status", "error"}``.

Retrying is safe: with an ``Idempotency-Key`` header (draft-ietf-httpapi-idempotency-key-header)
item ``i`` is stored under the key ``<key>#<i>``; a batch sent again with the same key finds its
items (``status`` 200, the same ``id``) instead of storing them twice. Since the batch is one
transaction, a service killed mid-batch has stored all of it (then acknowledged or not) or none.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json

import orjson
from sqlalchemy.exc import IntegrityError
from tornado import web
from tornado.ioloop import IOLoop

from echoes_lab.commons.model import AnnotationError, prepare
from echoes_lab.commons.store import Batch, StoreError, check_visibility, new_id
from echoes_lab.hub.services.commons.app import CommonsHandler, ContainerHandler

#: items per request: the whole batch is parsed and held in memory, and written in one
#: transaction that blocks other writers meanwhile (about 1 s at 5,000 items here)
MAX_ITEMS = 10_000
NDJSON = ("application/x-ndjson", "application/ndjson", "application/jsonl")
# The batch's rows are written in the event loop's thread, not a writer thread: tried
# (2026-12-06), the sqlite3 module lets go of the GIL at every row it steps, so a writer thread
# and the loop checking the next request took the GIL from each other thousands of times a
# batch: 4,706 annotations per service CPU second against 6,116 without it, in the same
# sitting. Only the commit, one call that lets go of the GIL once, runs in a thread.


_handling = 0  # bulk requests being handled (they overlap while one commits)
_gc_was_enabled = False


@contextlib.contextmanager
def _collector_paused():
    """The cyclic garbage collector paused while any bulk request is handled.

    A batch makes hundreds of thousands of containers (parsed JSON, rows) that all stay alive
    until its commit, so the collector ran again and again over the whole service's heap and
    freed nothing (reference counting frees them after the answer; the few cycles a request
    makes are collected once it runs again). Measured: parsing 10,000 NDJSON lines went from
    10-12 to 3-5 us a line in-process (python.org gc docs: thresholds count allocations).
    """
    global _handling, _gc_was_enabled
    if _handling == 0:
        _gc_was_enabled = gc.isenabled()
        gc.disable()
    _handling += 1
    try:
        yield
    finally:
        _handling -= 1
        if _handling == 0 and _gc_was_enabled:
            gc.enable()


def items_of(body: bytes, ctype: str) -> list:
    """The annotations a request carries (NDJSON lines, or a JSON-LD page/collection/array).

    A line of NDJSON that is not JSON becomes an ``AnnotationError`` in its place, so that it
    is reported with its line number while the others are stored.
    """
    if any(t in ctype for t in NDJSON):
        out: list = []
        # the bytes are split and parsed as they are: decoding the whole body to a str first
        # was a fifth of the handler's own time, and str.splitlines also splits at U+2028 and
        # other characters JSON allows raw inside strings (NDJSON separates lines by \n only,
        # \r\n tolerated); bytes that are not UTF-8 make their line an error, not U+FFFD
        loads = orjson.loads
        for n, line in enumerate(body.split(b"\n"), 1):
            try:
                out.append(loads(line))
            except ValueError as exc:  # orjson.JSONDecodeError is one
                if line.strip():
                    out.append(AnnotationError(f"line {n} is not JSON ({exc}): write one "
                                               "annotation per line"))
        return out
    try:
        data = orjson.loads(body)
    except ValueError as exc:
        raise web.HTTPError(400, f"the body is not JSON: {exc}") from None
    if isinstance(data, list):
        return data
    if isinstance(data, dict):
        types = data.get("type") if isinstance(data.get("type"), list) else [data.get("type")]
        if "AnnotationPage" in types and isinstance(data.get("items"), list):
            return data["items"]
        first = data.get("first")
        if "AnnotationCollection" in types and isinstance(first, dict) and \
                isinstance(first.get("items"), list):
            return first["items"]
    raise web.HTTPError(400, "send an AnnotationPage with 'items', an AnnotationCollection "
                             "with an embedded 'first' page, a JSON array of annotations, or "
                             "NDJSON (Content-Type: application/x-ndjson)")


class BulkHandler(CommonsHandler):
    """``POST bulk``: many annotations, one transaction, one result per item."""

    allow_methods = "POST, OPTIONS"

    async def post(self):
        ctype = self.request.headers.get("Content-Type", "application/ld+json")
        if "json" not in ctype:
            raise web.HTTPError(415, "send JSON-LD (an AnnotationPage) or NDJSON "
                                     f"(application/x-ndjson), not {ctype}")
        key = self.request.headers.get("Idempotency-Key", "").strip()
        if len(key) > 200:
            raise web.HTTPError(400, "the Idempotency-Key is longer than 200 characters")
        viewer = await self.viewer()
        with _collector_paused():
            items, results, todo = self.check_batch(ctype, key, viewer)
            # its rows made before waiting for the previous batch's commit
            stored = await self.store_items(self.store.batch(todo) if todo else None)
            self.answer(items, results, todo, stored)

    def check_batch(self, ctype: str, key: str, viewer) -> tuple[list, list[dict], list[dict]]:
        """Parse and check the request's annotations: ``(items, results, todo)``, where
        ``todo`` are the valid ones, prepared, each with its (still empty) ``result``."""
        user = self.current_user
        items = items_of(self.request.body, ctype)
        if len(items) > MAX_ITEMS:
            raise web.HTTPError(413, f"{len(items)} annotations in one request; send at most "
                                     f"{MAX_ITEMS} a request (echoes_lab.commons.contribute "
                                     "splits them)")
        now = self.settings["service"].utcnow()
        actors: dict[str, tuple] = {}  # one lookup per generator a batch names
        results: list[dict] = []
        todo: list[dict] = []
        # looked up once, not per item
        container, base, licence = self.container, self.base, self.settings["licence"]
        name, display = user["name"], user.get("name")
        for i, data in enumerate(items):
            try:
                if isinstance(data, AnnotationError):
                    raise data
                if not isinstance(data, dict):
                    msg = "an item must be a JSON object (a Web Annotation)"
                    raise AnnotationError(msg)
                gen = data.get("generator")
                # what actor_for reads of it: its id and the run (homepage)
                gid = ((gen.get("id"), gen.get("homepage")) if isinstance(gen, dict)
                       else json.dumps(gen))
                if gid not in actors:
                    actors[gid] = ContainerHandler.actor_for(self, data, user["name"])
                actor, run = actors[gid]
                visibility = data.get("visibility", "private")
                if not isinstance(visibility, str):
                    msg = "'visibility' must be a string"
                    raise AnnotationError(msg)
                check_visibility(visibility)
                if visibility.startswith("group:") and visibility[6:] not in viewer.groups \
                        and not viewer.admin:
                    msg = f"you are not in the hub group {visibility[6:]!r}"
                    raise AnnotationError(msg, 403)
                ann_id = new_id()
                ann = prepare(data, iri=f"{container}{ann_id}", user=name, display=display,
                              base=base, now=now, licence=licence, actor=actor, run=run,
                              copy_data=False)
            except (AnnotationError, StoreError) as exc:
                results.append({"index": i, "status": exc.status, "error": str(exc)})
                continue
            except web.HTTPError as exc:
                results.append({"index": i, "status": exc.status_code, "error": exc.log_message})
                continue
            results.append({"index": i})
            todo.append({"id": ann_id, "owner": user["name"], "data": ann,
                         "visibility": visibility, "actor": actor,
                         "key": f"{key}#{i}" if key else None, "result": results[-1]})
        return items, results, todo

    async def store_items(self, batch: Batch | None) -> list[tuple[str, bool]]:
        """Store the batch in one transaction; ``Store.create_many``'s answer once committed.

        One batch is written at a time. Its commit (the WAL written and fsynced, and now and
        then a checkpoint: a fifth of a batch's time at 100,000 stored) runs in a thread,
        where sqlite3 and psycopg let go of the GIL, so the loop reads and checks the next
        request meanwhile; the answer is sent only once the commit has returned.
        """
        if batch is None:
            return []
        store = self.store
        try:
            async with self.settings.setdefault("bulk_lock", asyncio.Lock()):
                with store.engine.connect() as conn:
                    commit = conn.begin().commit  # closing the connection rolls back otherwise
                    stored = store.create_many(batch, conn)
                    await IOLoop.current().run_in_executor(None, commit)
        except IntegrityError:
            # the same Idempotency-Key sent twice at once: the other request stored the batch
            raise web.HTTPError(409, "a batch with this Idempotency-Key is being stored by "
                                     "another request: send it again to read its results") from None
        return stored

    def answer(self, items: list, results: list[dict], todo: list[dict],
               stored: list[tuple[str, bool]]) -> None:
        """Send each item's result, then tell the event streams of the new public ones."""
        container = self.container
        for item, (ann_id, created) in zip(todo, stored, strict=True):
            item["result"].update(status=201 if created else 200,
                                  id=f"{container}{ann_id}")
        failed = sum(1 for r in results if "error" in r)
        self.set_header("Content-Type", "application/json")
        self.finish(orjson.dumps({
            "type": "BatchResult", "total": len(items),
            "created": sum(1 for _, c in stored if c),
            "existing": sum(1 for _, c in stored if not c), "failed": failed,
            "items": results}))
        # told after the answer is on its way (the client prepares its next batch meanwhile):
        # a fifth of a batch's time in the service is encoding these events
        public = []
        for item, (_, created) in zip(todo, stored, strict=True):
            if created and item["visibility"] == "public":
                # stored already (its JSON is written): the event's copy gets the column back
                # in place, as render() would, instead of a new dict per item
                item["data"]["visibility"] = "public"
                public.append(item["data"])
        self.settings["events"].created(public)
