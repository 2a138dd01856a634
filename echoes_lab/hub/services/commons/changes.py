"""The commons' public changes as a IIIF Change Discovery feed: ``GET changes``.

IIIF Change Discovery API 1.0 (https://iiif.io/api/discovery/1.0/): an Activity Streams 2.0
``OrderedCollection`` (https://www.w3.org/TR/activitystreams-core/#collections) whose pages,
oldest first, list ``Create`` / ``Update`` / ``Delete`` activities with the ``object`` (the
annotation's IRI) and the ``endTime`` of the change. An aggregator reads the ``last`` page and
walks ``prev`` until it meets an activity it already has (or an ``endTime`` before its last
harvest, §3.3), so each harvest costs only the pages written since.

Only what the public sees is told: an annotation made public is a ``Create``; changed while
public an ``Update``; deleted, hidden by a moderator or made private a ``Delete``. The feed is
read from the store's ``changes`` table, written in the transaction of each change; the
Server-Sent Events stream (``events.py``) tells the same changes live.
"""

from __future__ import annotations

from echoes_lab.commons.model import iso
from echoes_lab.hub.services.commons.app import CommonsHandler

CONTEXT = "http://iiif.io/api/discovery/1/context.json"


class ChangesHandler(CommonsHandler):
    """``changes`` (the collection), ``changes?page=N`` (a page), ``changes/<n>`` (one)."""

    def activity(self, e: dict) -> dict:
        return {"id": f"{self.base}changes/{e['n']}", "type": e["type"],
                "object": {"id": f"{self.container}{e['annotation']}", "type": "Annotation"},
                "endTime": iso(e["at"])}

    async def get(self, n=None):
        store = self.store
        iri = f"{self.base}changes"
        size = self.settings["page_size"]
        if n is not None:
            found = store.change(int(n))
            if found is None:
                self.send_error(404)
                return
            self.reply_ld({"@context": CONTEXT, **self.activity(found)})
            return
        total, _ = store.changes(limit=0)
        last = max(0, (total - 1) // size)

        def ref(k: int) -> dict:
            return {"id": f"{iri}?page={k}", "type": "OrderedCollectionPage"}

        page = self.get_query_argument("page", None)
        if page is None:
            self.reply_ld({"@context": CONTEXT, "id": iri, "type": "OrderedCollection",
                           "totalItems": total, "first": ref(0), "last": ref(last)})
            return
        if not page.isdigit() or int(page) > last:
            self.send_error(404)
            return
        k = int(page)
        _, entries = store.changes(offset=k * size, limit=size)
        model = {"@context": CONTEXT, "id": f"{iri}?page={k}", "type": "OrderedCollectionPage",
                 "startIndex": k * size, "partOf": {"id": iri, "type": "OrderedCollection"}}
        if k > 0:
            model["prev"] = ref(k - 1)
        if k < last:
            model["next"] = ref(k + 1)
        model["orderedItems"] = [self.activity(e) for e in entries]
        self.reply_ld(model)

    head = get
