"""The commons' import job against another annotation server on a real HTTP port (issue 29.5).

The other server here is a small tornado app publishing a W3C Web Annotation Protocol
container the way servers other than ours do: ``first`` as an IRI (not embedded), pages whose
items are annotations' IRIs (read one by one) or expanded ``as:items`` lists, and annotations
without a licence; and a real published collection, the W3C Web Annotation Working Group's 43
examples. The store is a real SQLite commons (the store's import tables are tested on SQLite
and PostgreSQL in ``test_commons_store.py``). The two-hub test is
``tests/integration/test_commons_exchange.py``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from tornado import web
from tornado.testing import AsyncHTTPTestCase, gen_test

from echoes_lab.commons.model import AnnotationError, imported
from echoes_lab.commons.store import Store, Viewer
from echoes_lab.hub.services.commons.imports import Importer, Source, digest

OURS = "https://commons.example/services/commons/annotations/"


class Foreign:
    """What the other server holds: annotation id -> JSON, and how its pages link."""

    def __init__(self):
        self.annotations: dict[str, dict] = {}
        self.next_link: str | None = None  # overrides page 1's "next" (an attack)


class Container(web.RequestHandler):
    def initialize(self, foreign: Foreign):
        self.foreign = foreign

    def get(self):
        base = f"{self.request.protocol}://{self.request.host}"
        self.write({"@context": "http://www.w3.org/ns/anno.jsonld", "id": f"{base}/anno/",
                    "type": ["BasicContainer", "AnnotationCollection"],
                    "total": len(self.foreign.annotations), "first": f"{base}/anno/page0"})


class Page(web.RequestHandler):
    def initialize(self, foreign: Foreign):
        self.foreign = foreign

    def get(self, n):
        base = f"{self.request.protocol}://{self.request.host}"
        ids = sorted(self.foreign.annotations)
        n = int(n)
        part = ids[n * 2:(n + 1) * 2]
        page = {"id": f"{base}/anno/page{n}", "type": "AnnotationPage", "startIndex": n * 2}
        if n == 0:  # IRIs only: the importer reads each annotation
            page["items"] = [f"{base}/anno/{i}" for i in part]
        else:  # the expanded form
            page["as:items"] = {"@list": [self.foreign.annotations[i] for i in part]}
        if (n + 1) * 2 < len(ids):
            page["next"] = f"{base}/anno/page{n + 1}"
        if n == 1 and self.foreign.next_link:
            page["next"] = self.foreign.next_link
        self.write(page)


class One(web.RequestHandler):
    def initialize(self, foreign: Foreign):
        self.foreign = foreign

    def get(self, ann):
        if ann not in self.foreign.annotations:
            raise web.HTTPError(404)
        self.write(self.foreign.annotations[ann])


#: the W3C Web Annotation Working Group's own examples as one AnnotationCollection (43
#: annotations, first page embedded; source and licence in the folder's SOURCES.md)
W3C_COLLECTION = (Path(__file__).parent / "data" / "real" / "annotations"
                  / "w3c-collection1.json")


class Published(web.RequestHandler):
    """A real collection file, served as it is."""

    def get(self):
        self.set_header("Content-Type", "application/ld+json")
        self.write(W3C_COLLECTION.read_bytes())


class ImportTest(AsyncHTTPTestCase):
    def get_app(self):
        self.foreign = Foreign()
        kw = {"foreign": self.foreign}
        return web.Application([(r"/anno/", Container, kw), (r"/anno/page(\d+)", Page, kw),
                                (r"/anno/([a-z0-9]+)", One, kw), (r"/w3c/", Published)])

    def setUp(self):
        super().setUp()
        import tempfile

        self.dir = Path(tempfile.mkdtemp(prefix="commons-import-"))
        self.store = Store(f"sqlite:///{self.dir / 'c.sqlite'}")
        self.told: list[tuple] = []
        self.source = Source(self.get_url("/anno/"), 60, private_network=True)
        for i in range(5):
            self.add(f"a{i}", f"Inscription {i} reads AVE")

    def tearDown(self):
        import shutil

        self.store.close()
        shutil.rmtree(self.dir, ignore_errors=True)
        super().tearDown()

    def add(self, key: str, text: str) -> dict:
        ann = {"@context": "http://www.w3.org/ns/anno.jsonld", "id": self.get_url(f"/anno/{key}"),
               "type": "Annotation", "motivation": "describing",
               "creator": {"id": "https://orcid.org/0000-0002-1825-0097", "type": "Person",
                           "name": "Josiah Carberry"},
               "created": "2024-03-01T10:00:00Z",
               "body": {"type": "TextualBody", "value": text, "language": "la"},
               "target": "https://iiif.example.org/stele/canvas/1"}
        self.foreign.annotations[key] = ann
        return ann

    def importer(self, source: Source | None = None) -> Importer:
        return Importer(self.store, [source or self.source], container=OURS,
                        clock=lambda: datetime.now(UTC),
                        changed=lambda *a: self.told.append(a))

    def copies(self) -> dict[str, dict]:
        _, recs = self.store.search(Viewer(), limit=None)
        return {r.data["via"]: r.data for r in recs}

    @gen_test
    async def test_copies_once_with_the_origins_provenance_and_follows_changes(self):
        job = self.importer()
        first = await job.run(self.source)
        assert (first["seen"], first["created"], first["refused"]) == (5, 5, 0), first
        again = await job.run(self.source)
        assert (again["created"], again["unchanged"]) == (0, 5), again
        copies = self.copies()
        assert set(copies) == {self.get_url(f"/anno/a{i}") for i in range(5)}
        a0 = copies[self.get_url("/anno/a0")]
        assert a0["id"].startswith(OURS) and a0["canonical"] == self.get_url("/anno/a0")
        assert a0["creator"]["name"] == "Josiah Carberry"
        assert a0["created"] == "2024-03-01T10:00:00Z"
        assert "rights" not in a0  # the origin states no licence: none is invented
        assert len(self.told) == 5  # the event stream (the knowledge base) heard each once

        # updated, deleted, and a copy of one of ours at the origin
        self.add("a0", "Inscription 0 reads AVE MARIA")
        gone = self.foreign.annotations.pop("a3")
        mirror = self.add("m1", "ours, copied there")
        mirror["via"] = f"{OURS}xyz"
        third = await job.run(self.source)
        assert (third["updated"], third["deleted"], third["created"]) == (1, 1, 0), third
        copies = self.copies()
        assert copies[self.get_url("/anno/a0")]["body"]["value"] == "Inscription 0 reads AVE MARIA"
        assert self.get_url("/anno/a3") not in copies and self.get_url("/anno/m1") not in copies
        # it comes back at the origin: restored, not copied a second time
        self.foreign.annotations["a3"] = gone
        fourth = await job.run(self.source)
        assert (fourth["restored"], fourth["created"]) == (1, 0), fourth
        assert len(self.copies()) == 5
        state = self.store.import_run(self.source.url)
        assert state["runs"] == 4 and state["result"] == fourth

    @gen_test
    async def test_the_w3c_working_groups_example_collection_is_copied_as_published(self):
        w3c = Source(self.get_url("/w3c/"), 60, private_network=True)
        job = self.importer(w3c)
        first = await job.run(w3c)
        assert (first["seen"], first["created"], first["refused"]) == (43, 43, 0), first
        copies = self.copies()
        assert set(copies) == {f"http://example.org/anno{i}" for i in range(1, 44)}
        # what a person reads in the file (its examples 1, 12 and 38), kept with its origin
        one = copies["http://example.org/anno1"]
        assert (one["body"], one["target"]) == ("http://example.org/post1",
                                                "http://example.com/page1")
        assert copies["http://example.org/anno12"]["creator"]["name"] == "My Pseudonym"
        assert copies["http://example.org/anno12"]["creator"]["nickname"] == "pseudo"
        assert copies["http://example.org/anno38"]["creator"]["name"] == "A. Person"
        again = await job.run(w3c)
        assert (again["created"], again["unchanged"]) == (0, 43), again

    @gen_test
    async def test_a_page_leading_off_the_origin_stops_the_run_and_deletes_nothing(self):
        job = self.importer()
        assert (await job.run(self.source))["created"] == 5
        self.foreign.next_link = "http://169.254.169.254/latest/meta-data/"
        failed = await job.run(self.source)
        assert "not on the origin of the source" in failed["error"]
        assert len(self.copies()) == 5  # an incomplete read deletes nothing

    @gen_test
    async def test_a_loopback_source_is_refused_unless_the_settings_allow_it(self):
        closed = Source(self.get_url("/anno/"), 60)
        failed = await self.importer(closed).run(closed)
        assert "127.0.0.1, not a public address" in failed["error"]
        assert "private_network = true" in failed["error"]
        assert self.copies() == {}


def test_the_copy_keeps_the_origins_iri_as_via_and_canonical():
    now = datetime(2025, 1, 2, tzinfo=UTC)
    origin = {"id": "https://other.example/anno/1", "type": "Annotation", "target": "urn:x",
              "canonical": "urn:uuid:6f1f", "visibility": "public"}
    copy = imported(origin, iri=f"{OURS}new", now=now)
    assert (copy["id"], copy["via"], copy["canonical"]) == (f"{OURS}new", origin["id"],
                                                            "urn:uuid:6f1f")
    assert copy["generated"] == "2025-01-02T00:00:00Z" and "visibility" not in copy
    with pytest.raises(AnnotationError, match="origin's 'id'"):
        imported({"type": "Annotation", "target": "urn:x"}, iri=f"{OURS}n", now=now)
    # the digest ignores key order and the origin's own visibility field
    assert digest({"a": 1, "b": 2}) == digest({"b": 2, "a": 1, "visibility": "public"})
