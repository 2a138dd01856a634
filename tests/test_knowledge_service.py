"""The knowledge service's rules without a hub (issue 28): which queries are refused, which
graphs a query names, content negotiation, the commons' public event stream, and a worker
process answering over a restricted dataset. The real-hub tests are in
tests/integration/test_knowledge.py."""

from __future__ import annotations

import json
import multiprocessing

import pyoxigraph as ox
import pytest

from echoes_lab.hub.services.commons.events import Events
from echoes_lab.hub.services.knowledge import worker
from echoes_lab.hub.services.knowledge.app import (
    Registry,
    is_update,
    query_dataset,
    uses_service,
)


@pytest.mark.parametrize(("query", "refused"), [
    ("SELECT * WHERE { SERVICE <http://10.0.0.1/sparql> { ?s ?p ?o } }", True),
    ("select * { service silent <x:y> { ?s ?p ?o } }", True),
    ('SELECT * WHERE { ?s ?p "SERVICE" }', False),
    ("SELECT * WHERE { ?s <http://ex.org/SERVICE> ?o } # SERVICE <x:y>", False),
])
def test_service_clause_refused_not_the_word(query, refused):
    assert uses_service(query) is refused


@pytest.mark.parametrize(("query", "update"), [
    ("INSERT DATA { <a:a> <a:b> <a:c> }", True),
    ("PREFIX ex: <http://ex.org/>\n DELETE WHERE { ?s ?p ?o }", True),
    ("  clear all", True),
    ("SELECT ?insert WHERE { ?insert ?p ?o }", False),
    ('# INSERT\nSELECT * WHERE { ?s ?p "DROP" }', False),
])
def test_updates_recognised(query, update):
    assert is_update(query) is update


def test_from_clauses_named_with_prefixes():
    q = ('PREFIX g: <http://x/g/>\nSELECT ?l FROM <http://a> FROM NAMED g:b '
         'WHERE { ?s ?p "FROM <http://c>" }')
    assert query_dataset(q, {}) == (["http://a"], ["http://x/g/b"])
    assert query_dataset("SELECT * WHERE { ?s ?p ?o }", {}) is None
    # an unknown prefix names no graph one could be allowed
    default, _ = query_dataset("SELECT * FROM nope:g WHERE { ?s ?p ?o }", {})
    assert not default[0].startswith("http")


@pytest.mark.parametrize(("accept", "chosen"), [
    (None, "application/sparql-results+json"),
    ("text/csv", "text/csv"),
    ("text/csv;q=0.5, application/sparql-results+xml", "application/sparql-results+xml"),
    ("text/*", "text/csv"),
    ("*/*", "application/sparql-results+json"),
    ("image/png", None),
    ("text/csv;q=0", None),
])
def test_content_negotiation(accept, chosen):
    assert worker.accepted(accept, worker.SOLUTION_TYPES) == chosen


def test_events_tell_only_public_changes_and_replay():
    ev = Events(keep=3)
    ev.changed(None, "private", {"id": "a:1"})
    assert ev.seq == 0
    ev.changed(None, "public", {"id": "a:2"})
    ev.changed("public", "public", {"id": "a:2", "v": 2})
    ev.changed("public", "private", {"id": "a:2"})
    ev.changed("private", None, {"id": "a:1"})
    assert ev.seq == 3
    kinds = [m.split("\n")[1] for m in ev.since(0)]
    assert kinds == ["event: Create", "event: Update", "event: Delete"]
    data = ev.since(2)[0].split("data: ", 1)[1]
    assert json.loads(data)["object"] == {"id": "a:2"}
    for i in range(3):
        ev.changed(None, "public", {"id": f"b:{i}"})
    assert ev.since(1) is None  # dropped: the client must read the collection again
    assert ev.since(ev.seq) == []


def test_worker_answers_only_over_its_dataset(tmp_path):
    path = str(tmp_path / "store")
    store = ox.Store(path)
    mine, theirs = ox.NamedNode("urn:g:mine"), ox.NamedNode("urn:g:theirs")
    store.extend([ox.Quad(ox.NamedNode("urn:o:1"), ox.NamedNode("urn:p"), ox.Literal("ok"), mine),
                  ox.Quad(ox.NamedNode("urn:o:2"), ox.NamedNode("urn:p"), ox.Literal("no"),
                          theirs)])
    registry = Registry(store)
    registry.set(mine.value, "alice", "private")
    registry.set(theirs.value, "bob", "group:lab")
    assert registry.allowed("alice", frozenset()) == [mine.value]
    assert set(registry.allowed("carol", frozenset({"lab"}))) == {theirs.value}
    store.flush()
    receive, send = multiprocessing.Pipe(duplex=False)
    worker.run_query(path, "SELECT ?o FROM NAMED <urn:g:theirs> WHERE { GRAPH ?g { ?s ?p ?o } }",
                     ([mine.value], [mine.value]), "text/csv", 10_000, {}, send)
    status, ctype, body = receive.recv()
    assert (status, ctype) == (200, "text/csv; charset=utf-8")
    assert body.decode().split() == ["o", "ok"]
    receive2, send2 = multiprocessing.Pipe(duplex=False)
    worker.run_query(path, "SELECT * WHERE { ?s ?p ?o }", ([mine.value], []), None, 10, {},
                     send2)
    assert receive2.recv()[0] == 413


def test_commons_events_applied_and_an_id_cannot_inject_an_update(tmp_path):
    import json

    from echoes_lab.hub.services.knowledge.app import CommonsFollower

    store = ox.Store(str(tmp_path / "store"))
    other = ox.Quad(ox.NamedNode("urn:o:1"), ox.NamedNode("urn:p"), ox.Literal("keep"),
                    ox.NamedNode("urn:g:other"))
    store.add(other)
    follower = CommonsFollower(store, Registry(store), "http://127.0.0.1:9/services/commons/",
                               "http://h/services/knowledge/commons/annotations")
    ann = {"id": "http://h/services/commons/annotations/a1", "type": "Annotation",
           "motivation": "describing", "target": "urn:o:1",
           "body": {"type": "TextualBody", "value": "smalt"}}
    follower.apply("Create", json.dumps({"type": "Create", "object": ann}))
    ask = ("ASK { GRAPH <http://h/services/knowledge/commons/annotations> { "
           "<http://h/services/commons/annotations/a1> <http://www.w3.org/ns/oa#hasBody>/"
           "<http://www.w3.org/1999/02/22-rdf-syntax-ns#value> 'smalt' } }")
    assert bool(store.query(ask))
    evil = "http://x> ?p ?o } } ; DROP ALL ; INSERT DATA { GRAPH <urn:g> { <a:a> <a:b> <a:c>"
    follower.apply("Delete", json.dumps({"type": "Delete", "object": {"id": evil}}))
    assert other in store and bool(store.query(ask))
    follower.apply("Delete", json.dumps({"type": "Delete", "object": {"id": ann["id"]}}))
    assert not bool(store.query(ask)) and other in store


def test_query_over_its_memory_stopped_in_its_own_process(tmp_path):
    import asyncio

    from echoes_lab.hub.services.knowledge.app import QueryRunner

    path = str(tmp_path / "store")
    store = ox.Store(path)
    g = ox.NamedNode("urn:g")
    store.extend([ox.Quad(ox.NamedNode(f"urn:o:{i}"), ox.NamedNode("urn:p"),
                          ox.Literal(str(i)), g) for i in range(3000)])
    store.flush()
    # the service's own fork server: its processes start small (a fork of this test process
    # would carry pytest's memory into the limit); stopped at the end, nothing left running
    from multiprocessing import forkserver

    runner = QueryRunner(path, timeout=60, limit=10_000_000, concurrent=1, memory_mb=512)
    try:
        # 9 million rows to sort: far above 512 MB (the store itself opens within it)
        heavy = "SELECT ?a ?d WHERE { ?a ?b ?c . ?d ?e ?f } ORDER BY ?c ?f"
        status, _, body = asyncio.run(runner.run(heavy, ([g.value], []), None))
        assert status == 503 and "more than 512 MB" in body
        status, _, body = asyncio.run(runner.run("SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }",
                                                 ([g.value], []), "text/csv"))
        assert (status, body.decode().split()) == (200, ["n", "3000"])
    finally:
        forkserver._forkserver._stop()


def test_follower_keeps_one_stream_past_100_mb_and_applies_a_bulk_run(tmp_path):
    """The event stream never ends: the follower keeps one connection however many bytes
    come (tornado's client counted them against its 100 MB ``max_body_size``, cut the stream
    and the follower read and mapped the whole collection again after each ~60,000 changes),
    and applies the events of a bulk batch in order in its writer thread (a Create, then its
    Delete, then two more Creates told in one write)."""
    import asyncio
    import socket
    import time

    import tornado.web

    from echoes_lab.hub.services.knowledge.app import CommonsFollower

    limit = 100 * 1024 * 1024  # tornado's simple_httpclient default max_body_size
    connections: list[int] = []
    done: asyncio.Event | None = None  # made in main(), in its event loop
    base = "http://h/services/commons/annotations/"

    def created(n: int) -> str:
        ann = {"id": f"{base}b{n}", "type": "Annotation", "motivation": "transcribing",
               "target": "urn:o:1", "body": {"type": "TextualBody", "value": f"line {n}"}}
        return f"event: Create\ndata: {json.dumps({'type': 'Create', 'object': ann})}\n\n"

    class EventsHandler(tornado.web.RequestHandler):
        async def get(self):
            connections.append(1)
            self.set_header("Content-Type", "text/event-stream")
            filler = ":" + "x" * (1 << 16) + "\n\n"  # comments, which a follower skips
            self.write(created(0))
            await self.flush()
            for _ in range(limit // len(filler) + 16):
                self.write(filler)
                await self.flush()
            self.write(f"event: Delete\ndata: {json.dumps({'object': {'id': base + 'b0'}})}"
                       "\n\n" + created(1) + created(2))
            await self.flush()
            await done.wait()

    class PageHandler(tornado.web.RequestHandler):
        def get(self):
            self.write({"type": "AnnotationPage", "items": []})

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    store = ox.Store(str(tmp_path / "store"))
    graph = "http://h/services/knowledge/commons/annotations"

    def has(n: int) -> bool:
        return next(store.quads_for_pattern(ox.NamedNode(f"{base}b{n}"), None, None,
                                            ox.NamedNode(graph)), None) is not None

    async def main() -> float:
        nonlocal done
        done = asyncio.Event()
        app = tornado.web.Application([(r"/c/events", EventsHandler),
                                       (r"/c/annotations/", PageHandler)])
        server = app.listen(port, address="127.0.0.1")
        follower = CommonsFollower(store, Registry(store), f"http://127.0.0.1:{port}/c/", graph)
        follower.start()
        t0 = time.monotonic()
        try:
            while not (has(1) and has(2)):  # the last write applied (or the test's timeout)
                assert time.monotonic() - t0 < 120, "the events after 100 MB never arrived"
                await asyncio.sleep(0.05)
            return follower.reconnections
        finally:
            done.set()
            await follower.stop()
            server.stop()

    assert asyncio.run(main()) == 0
    assert len(connections) == 1
    assert not has(0)  # created, then deleted: applied in the order told
