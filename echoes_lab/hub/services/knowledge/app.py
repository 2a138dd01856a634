"""The knowledge base's web side: SPARQL 1.1 Protocol, Graph Store HTTP Protocol, query page.

Under the service prefix (``/services/knowledge/``):

===========================  ======================  =========================================
``sparql``                   GET POST                SPARQL 1.1 Protocol (query only): ``query``
                                                     by GET, POST form or
                                                     ``application/sparql-query``; answers by
                                                     content negotiation (JSON, XML, CSV, TSV;
                                                     Turtle, N-Triples, RDF/XML, JSON-LD)
``data?graph=IRI``           GET PUT POST DELETE     Graph Store HTTP Protocol (indirect
                                                     identification) on contributors' graphs
``graphs``                   GET                     the graphs the asker may see (JSON)
``""``                       GET                     the query page
===========================  ======================  =========================================

Access follows the commons: a query sees the public graphs, the asker's own and their hub
groups' — whatever it says. The protocol's dataset is the allowed graphs (pyoxigraph's
``default_graph``/``named_graphs``), which replaces ``FROM``/``FROM NAMED`` and bounds
``GRAPH ?g``; ``SERVICE`` (a query reaching out from this machine) and SPARQL Update are
refused. Each query runs in its own process, killed at ``knowledge.query_timeout``
(:mod:`~echoes_lab.hub.services.knowledge.worker`).

Contributors' graphs are named ``<base>graphs/<user>/<name>``; a request's RDF is bounded by
``[services] max_body_size`` as every service's body is (413 above); a user writes only under
their own name, and says who may read with ``visibility=private|public|group:NAME``. The commons'
public annotations are kept in the public graph ``<base>commons/annotations`` (outside every
user's namespace), following the commons' event stream
(:mod:`echoes_lab.hub.services.commons.events`).

Protocols: https://www.w3.org/TR/sparql11-protocol/, https://www.w3.org/TR/sparql11-http-rdf-update/.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import multiprocessing
import os
import re
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import quote, urlencode

import orjson
import pyoxigraph as ox
from tornado import web
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

from echoes_lab.hub.services.base import APIHandler, Service, ServiceHandler, TokenOrXSRF
from echoes_lab.hub.services.knowledge import worker
from echoes_lab.hub.services.knowledge.feature import hub_url, public_base

log = logging.getLogger("echoes.knowledge")

REGISTRY = ox.NamedNode("urn:echoes:knowledge:registry")  # owners and visibility, never queried
OWNER = ox.NamedNode("urn:echoes:knowledge:owner")
VISIBILITY = ox.NamedNode("urn:echoes:knowledge:visibility")
RDF_TYPES = {"text/turtle": ox.RdfFormat.TURTLE, "application/n-triples": ox.RdfFormat.N_TRIPLES,
             "application/rdf+xml": ox.RdfFormat.RDF_XML, "application/ld+json": None,
             "application/n-quads": ox.RdfFormat.N_QUADS, "application/trig": ox.RdfFormat.TRIG}
_UPDATE = re.compile(r"^\s*(?:(?:PREFIX\s+\S*\s*<[^>]*>|BASE\s*<[^>]*>)\s*)*"
                     r"(INSERT|DELETE|LOAD|CLEAR|CREATE|DROP|COPY|MOVE|ADD|WITH)\b", re.I)
_LEXEMES = re.compile(r'"""(?:.|\n)*?"""|\'\'\'(?:.|\n)*?\'\'\'|"(?:\\.|[^"\\\n])*"|'
                      r"'(?:\\.|[^'\\\n])*'|<[^<>\"{}|^`\\\s]*>|#[^\n]*")


#: an absolute IRI with none of the characters an IRIREF excludes (SPARQL 1.1 Query §19.8)
_PLAIN_IRI = re.compile(r"^[a-z][a-z0-9+.-]*:[^<>\"{}|^`\\\s]+$", re.I)


def uses_service(query: str) -> bool:
    """Whether the query has a ``SERVICE`` clause (strings, IRIs and comments left aside)."""
    return re.search(r"\bSERVICE\b", _LEXEMES.sub(" ", query), re.I) is not None


_FROM = re.compile(r"\bFROM\s+(NAMED\s+)?(?:<([^<>\s]*)>|([A-Za-z][\w.-]*)?:([\w.-]*))", re.I)
_PREFIX = re.compile(r"\bPREFIX\s+([A-Za-z][\w.-]*)?:\s*<([^<>\s]*)>", re.I)


def query_dataset(query: str, prefixes: dict[str, str]) -> tuple[list[str], list[str]] | None:
    """The graphs the query's ``FROM`` and ``FROM NAMED`` clauses name (default, named), or
    None when it names none (strings and comments left aside; prefixed names resolved)."""
    text = _LEXEMES.sub(lambda m: m[0] if m[0].startswith("<") else " ", query)
    declared = {**prefixes, **{(m[1] or ""): m[2] for m in _PREFIX.finditer(text)}}
    default: list[str] = []
    named: list[str] = []
    found = False
    for m in _FROM.finditer(text):
        found = True
        iri = m[2] if m[2] is not None else declared.get(m[3] or "", "\0") + m[4]
        (named if m[1] else default).append(iri)
    return (default, named) if found else None


def is_update(query: str) -> bool:
    return _UPDATE.match(_LEXEMES.sub(lambda m: m[0] if m[0].startswith("<") else " ", query)) \
        is not None


class Registry:
    """Who owns each graph and who may read it, in a graph of the store no query can reach
    (it is never in a query's dataset)."""

    def __init__(self, store: ox.Store):
        self.store = store
        self.graphs: dict[str, tuple[str, str]] = {}
        for q in store.quads_for_pattern(None, OWNER, None, REGISTRY):
            self.graphs[q.subject.value] = (q.object.value, "private")
        for q in store.quads_for_pattern(None, VISIBILITY, None, REGISTRY):
            owner = self.graphs.get(q.subject.value, ("", ""))[0]
            self.graphs[q.subject.value] = (owner, q.object.value)

    def set(self, graph: str, owner: str, visibility: str) -> None:
        g = ox.NamedNode(graph)
        for q in list(self.store.quads_for_pattern(g, None, None, REGISTRY)):
            self.store.remove(q)
        self.store.extend([ox.Quad(g, OWNER, ox.Literal(owner), REGISTRY),
                           ox.Quad(g, VISIBILITY, ox.Literal(visibility), REGISTRY)])
        self.graphs[graph] = (owner, visibility)

    def drop(self, graph: str) -> None:
        g = ox.NamedNode(graph)
        for q in list(self.store.quads_for_pattern(g, None, None, REGISTRY)):
            self.store.remove(q)
        self.graphs.pop(graph, None)

    def allowed(self, user: str | None, groups: frozenset[str]) -> list[str]:
        """The graphs ``user`` (None: anonymous) may read."""
        return [g for g, (owner, vis) in self.graphs.items()
                if vis == "public" or (user and owner == user)
                or (vis.startswith("group:") and vis[6:] in groups)]


class HubGroups:
    """Users' hub groups, read with the service's token, kept ``max_age`` seconds."""

    def __init__(self, api_url: str, token: str, max_age: float):
        self.api_url, self.token, self.max_age = api_url.rstrip("/"), token, max_age
        self.cache: dict[str, tuple[float, frozenset[str]]] = {}

    async def of(self, user: dict) -> frozenset[str]:
        name = user["name"]
        hit = self.cache.get(name)
        if hit and time.monotonic() - hit[0] < self.max_age:
            return hit[1]
        try:
            resp = await AsyncHTTPClient().fetch(
                f"{self.api_url}/users/{quote(name)}", request_timeout=10,
                headers={"Authorization": f"token {self.token}"})
            groups = frozenset(json.loads(resp.body).get("groups") or ())
        except (HTTPClientError, OSError) as exc:
            log.warning("cannot read %s's groups from the hub: %s", name, exc)
            return hit[1] if hit else frozenset(user.get("groups") or ())
        self.cache[name] = (time.monotonic(), groups)
        return groups


class KnowledgeHandler(TokenOrXSRF, APIHandler):
    """Needs a hub identity (401 without); the asker's graphs."""

    def prepare(self):
        if self.current_user is None:
            raise web.HTTPError(401, "sign in through the hub, or send a hub API token with "
                                     "the scope access:services!service=knowledge")

    @property
    def registry(self) -> Registry:
        return self.settings["registry"]

    async def allowed(self) -> list[str]:
        user = self.current_user
        if user.get("kind", "user") != "user":
            return self.registry.allowed(None, frozenset())
        groups = await self.settings["hub_groups"].of(user)
        return self.registry.allowed(user["name"], groups)

    def write_error(self, status_code: int, **kwargs) -> None:
        if status_code == 401:  # RFC 9110 §11.6.1 (set here: send_error clears headers)
            self.set_header("WWW-Authenticate", 'token realm="knowledge"')
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.finish(self.error_message(status_code, **kwargs) + "\n")


class SparqlHandler(KnowledgeHandler):
    """The SPARQL 1.1 Protocol's query operation (§2.1), over the asker's graphs."""

    async def get(self):
        await self.answer(self.get_query_argument("query", None),
                          self.get_query_arguments("default-graph-uri"),
                          self.get_query_arguments("named-graph-uri"))

    async def post(self):
        ctype = self.request.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if ctype == "application/sparql-query":
            query = self.request.body.decode("utf-8", errors="replace")
            await self.answer(query, self.get_query_arguments("default-graph-uri"),
                              self.get_query_arguments("named-graph-uri"))
        elif ctype == "application/x-www-form-urlencoded":
            if self.get_body_argument("update", None) is not None:
                raise web.HTTPError(400, self.update_message())
            await self.answer(self.get_body_argument("query", None),
                              self.get_body_arguments("default-graph-uri"),
                              self.get_body_arguments("named-graph-uri"))
        elif ctype == "application/sparql-update":
            raise web.HTTPError(400, self.update_message())
        else:
            raise web.HTTPError(415, "send the query as application/sparql-query or as the "
                                     "form field 'query' (application/x-www-form-urlencoded)")

    def update_message(self) -> str:
        return ("SPARQL Update is not accepted at sparql; write your own graphs with the Graph "
                f"Store Protocol: PUT or POST {self.settings['base']}data?graph="
                f"{self.settings['base']}graphs/<you>/<name>")

    async def answer(self, query: str | None, default: list[str], named: list[str]) -> None:
        if not query or not query.strip():
            raise web.HTTPError(400, "give the query: sparql?query=… (GET), or POST it")
        if is_update(query):
            raise web.HTTPError(400, self.update_message())
        if uses_service(query):
            raise web.HTTPError(400, "SERVICE is refused: a query here reads only this "
                                     "knowledge base's graphs")
        allowed = await self.allowed()
        # the dataset: the protocol's, else the query's FROM / FROM NAMED, else every graph
        # the asker may see, always within those (SPARQL 1.1 Query §13.2, Protocol §2.1.4)
        asked = (default, named) if default or named else query_dataset(
            query, self.settings["runner"].prefixes)
        if asked is None:
            dataset = (allowed, allowed)
        else:
            dataset = ([g for g in asked[0] if g in allowed], [g for g in asked[1] if g in allowed])
        status, ctype, body = await self.settings["runner"].run(
            query, dataset, self.request.headers.get("Accept"))
        self.set_status(status)
        self.set_header("Content-Type", ctype if status == 200 else "text/plain; charset=utf-8")
        self.set_header("Vary", "Accept, Authorization, Cookie")
        self.finish(body)


class DataHandler(KnowledgeHandler):
    """The Graph Store HTTP Protocol (indirect graph identification, §4.2)."""

    def graph_iri(self) -> str:
        if self.get_query_argument("default", None) is not None:
            raise web.HTTPError(405, "the default graph is not writable here; name a graph of "
                                     "yours: data?graph=" + self.own_prefix() + "NAME")
        iri = self.get_query_argument("graph", None)
        if not iri:
            raise web.HTTPError(400, "give the graph: data?graph=IRI")
        return iri

    def own_prefix(self) -> str:
        return f"{self.settings['base']}graphs/{quote(self.current_user['name'], safe='')}/"

    def owned(self, iri: str) -> None:
        if self.current_user.get("kind", "user") != "user" or not iri.startswith(
                self.own_prefix()) or len(iri) == len(self.own_prefix()):
            raise web.HTTPError(403, f"you write only your own graphs, named "
                                     f"{self.own_prefix()}NAME")

    async def get(self):
        iri = self.graph_iri()
        if iri not in await self.allowed():
            raise web.HTTPError(404, f"no graph {iri}")
        mtype = worker.accepted(self.request.headers.get("Accept"),
                                {k: v for k, v in worker.GRAPH_TYPES.items()
                                 if k not in ("application/n-quads", "application/trig")})
        if mtype is None:
            raise web.HTTPError(406, "ask for text/turtle, application/n-triples, "
                                     "application/rdf+xml or application/ld+json")
        fmt = getattr(ox.RdfFormat, worker.GRAPH_TYPES[mtype])
        data = self.settings["store"].dump(format=fmt, from_graph=ox.NamedNode(iri))
        self.set_header("Content-Type", fmt.media_type)
        self.finish(data)

    head = get

    async def put(self):
        await self.write_graph(replace=True)

    async def post(self):
        await self.write_graph(replace=False)

    async def write_graph(self, replace: bool) -> None:
        iri = self.graph_iri()
        self.owned(iri)
        visibility = self.get_query_argument("visibility", None)
        registry = self.registry
        known = iri in registry.graphs
        if visibility is None:
            visibility = registry.graphs[iri][1] if known else "private"
        if visibility not in ("private", "public") and not visibility.startswith("group:"):
            raise web.HTTPError(400, "visibility is private, public or group:NAME")
        if visibility.startswith("group:"):
            groups = await self.settings["hub_groups"].of(self.current_user)
            if visibility[6:] not in groups:
                raise web.HTTPError(403, f"you are not in the hub group {visibility[6:]!r}")
        quads = self.parse(iri)
        store: ox.Store = self.settings["store"]
        g = ox.NamedNode(iri)
        if replace and known:
            store.remove_graph(g)
        store.extend(quads)
        if not store.contains_named_graph(g):
            store.add_graph(g)
        registry.set(iri, self.current_user["name"], visibility)
        # to disk now: each query's process opens the store read-only and would otherwise
        # replay this write from the log every time
        store.flush()
        self.set_status(201 if not known else 204)
        if not known:
            self.set_header("Location", f"{self.settings['base']}data?{urlencode({'graph': iri})}")
        self.finish()

    def parse(self, iri: str) -> list[ox.Quad]:
        from echoes_lab.knowledge import rdf
        from echoes_lab.knowledge.store import KnowledgeError

        ctype = self.request.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if ctype not in RDF_TYPES:
            raise web.HTTPError(415, f"send RDF as one of {', '.join(RDF_TYPES)}")
        g = ox.NamedNode(iri)
        try:
            if RDF_TYPES[ctype] is None:
                return rdf.jsonld_quads(json.loads(self.request.body), g, "the request body")
            return [ox.Quad(q.subject, q.predicate, q.object, g)
                    for q in ox.parse(self.request.body, format=RDF_TYPES[ctype], base_iri=iri)]
        except ValueError as exc:
            raise web.HTTPError(400, f"the request body is not {ctype}: {exc}") from None
        except (SyntaxError, KnowledgeError) as exc:
            raise web.HTTPError(400, f"the request body does not parse as {ctype}: "
                                     f"{exc}") from None

    async def delete(self):
        iri = self.graph_iri()
        if iri not in await self.allowed():
            raise web.HTTPError(404, f"no graph {iri}")
        self.owned(iri)
        self.settings["store"].remove_graph(ox.NamedNode(iri))
        self.registry.drop(iri)
        self.settings["store"].flush()
        self.set_status(204)
        self.finish()


class GraphsHandler(KnowledgeHandler):
    async def get(self):
        reg = self.registry
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps([{"graph": g, "owner": reg.graphs[g][0],
                                 "visibility": reg.graphs[g][1]}
                                for g in sorted(await self.allowed())]))


class HomeHandler(ServiceHandler):
    @web.authenticated
    async def get(self):
        self.render_page("knowledge.html", endpoint=f"{self.settings['service_prefix']}sparql",
                         example=EXAMPLE)


EXAMPLE = """SELECT ?object ?title ?begin WHERE {
  ?object a crm:E22_Human-Made_Object ;
          rdfs:label ?title .
  OPTIONAL { ?object crm:P108i_was_produced_by/crm:P4_has_time-span/
                     crm:P82a_begin_of_the_begin ?begin }
}
LIMIT 50"""


class QueryRunner:
    """Queries in killable processes, at most ``concurrent`` at once."""

    def __init__(self, path: str, timeout: float, limit: int, concurrent: int,
                 memory_mb: int = 0):
        from echoes_lab.knowledge.store import PREFIXES

        self.path, self.timeout, self.limit, self.memory_mb = path, timeout, limit, memory_mb
        self.prefixes = PREFIXES
        self.slots = asyncio.Semaphore(concurrent)
        self.ctx = multiprocessing.get_context("forkserver")
        self.ctx.set_forkserver_preload(["pyoxigraph",
                                         "echoes_lab.hub.services.knowledge.worker"])

    async def run(self, query: str, dataset: tuple[list[str], list[str]], accept: str | None):
        """``(status, content type, body)`` of ``query`` over ``dataset`` (default graphs,
        named graphs)."""
        async with self.slots:
            loop = asyncio.get_running_loop()
            receive, send = self.ctx.Pipe(duplex=False)
            proc = self.ctx.Process(target=worker.run_query, daemon=True,
                                    args=(self.path, query, dataset, accept, self.limit,
                                          self.prefixes, send, self.memory_mb))
            # in a thread: the first start launches the fork server (an interpreter importing
            # pyoxigraph, a second or more), which must not hold up the event loop
            await loop.run_in_executor(None, proc.start)
            send.close()
            try:
                ready = loop.create_future()
                loop.add_reader(receive.fileno(), lambda: ready.done() or ready.set_result(1))
                try:
                    await asyncio.wait_for(ready, self.timeout)
                finally:
                    loop.remove_reader(receive.fileno())
                try:
                    return await loop.run_in_executor(None, receive.recv)
                except EOFError:
                    await loop.run_in_executor(None, proc.join, 5)
                    if proc.exitcode is not None and proc.exitcode < 0:
                        return (503, "text/plain", "the query needed more than "
                                f"{self.memory_mb} MB and was stopped: narrow it (a LIMIT, "
                                "fewer variables to sort or join)")
                    return (500, "text/plain", "the query's process ended without an answer "
                                               f"(exit status {proc.exitcode})")
            except TimeoutError:
                return (503, "text/plain", f"the query ran longer than {self.timeout:g} s and "
                                           "was stopped: narrow it (fewer patterns, a LIMIT, "
                                           "no unbounded property paths)")
            finally:
                receive.close()
                if proc.is_alive():
                    proc.kill()
                await loop.run_in_executor(None, proc.join, 5)


def _lower_priority(nice: int) -> None:
    """Lower the calling thread's CPU priority (Linux: a thread's own nice value, setpriority(2)
    NOTES); where that is not allowed or not per thread, it keeps the process's."""
    import threading

    with contextlib.suppress(OSError, AttributeError):
        tid = threading.get_native_id()
        # never above the priority it has (a hub started niced keeps its follower niced)
        os.setpriority(os.PRIO_PROCESS, tid, max(nice, os.getpriority(os.PRIO_PROCESS, tid)))


class CommonsFollower:
    """Keeps the public graph of the commons' annotations up to date from its event stream.

    On each (re)connection the public collection is read again (anonymously: only public
    annotations), then every ``Create``/``Update``/``Delete`` event is applied at once.
    """

    #: the nice value of the thread that maps and writes (setpriority(2)): the knowledge base
    #: is derived and eventually consistent, so during a bulk load it yields the CPU to the
    #: commons storing what users send instead of competing with it for the cores (a bulk
    #: batch costs it ~2x the commons' CPU: Linked Art mapping and RocksDB writes)
    NICE = 10
    #: bytes of the event stream before the follower reconnects (and reads everything again)
    STREAM_LIMIT = 1 << 62
    #: seconds without events before the held ones are applied; the longest any is held;
    #: how many are held at most (~1.5 kB each)
    LULL, MAX_WAIT, MAX_HELD = 1.0, 20.0, 20_000

    def __init__(self, store: ox.Store, registry: Registry, commons: str, graph: str):
        self.store, self.registry, self.commons = store, registry, commons.rstrip("/") + "/"
        self.graph = ox.NamedNode(graph)
        self.task: asyncio.Task | None = None
        self.applied = 0
        self.reconnections = 0
        self.stopping = self.resyncing = False
        self.writer: ThreadPoolExecutor | None = None
        self.held: list[tuple[str, str]] = []
        self.held_since = self.last_told = 0.0
        self.drainer: asyncio.Task | None = None

    def start(self) -> None:
        self.registry.set(self.graph.value, "", "public")  # nobody's: no user writes it
        # ONE writer thread: the events are applied in the order they were told, after the
        # resync that precedes them, off the event loop (which keeps answering queries)
        self.writer = ThreadPoolExecutor(1, thread_name_prefix="commons-follower",
                                         initializer=_lower_priority, initargs=(self.NICE,))
        self.task = asyncio.ensure_future(self.follow())

    async def stop(self) -> None:
        self.stopping = True
        for task in (self.task, self.drainer):
            if task:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        if self.writer is not None:
            # what was handed over and not begun is dropped (a restart resyncs); the batch
            # being written ends first, so the store is flushed after it
            await asyncio.get_running_loop().run_in_executor(
                None, lambda: self.writer.shutdown(wait=True, cancel_futures=True))

    def told(self, events: list[tuple[str, str]]) -> None:
        """Events from the stream: held until the commons has been quiet for :attr:`LULL`
        seconds (a bulk load tells thousands a second; the knowledge base maps them after it,
        together, instead of taking a core from it meanwhile), at most :attr:`MAX_WAIT`
        seconds or :attr:`MAX_HELD` events."""
        loop = asyncio.get_running_loop()
        if not self.held:
            self.held_since = loop.time()
        self.held += events
        self.last_told = loop.time()
        if self.drainer is None or self.drainer.done():
            self.drainer = asyncio.ensure_future(self.drain())

    async def drain(self) -> None:
        loop = asyncio.get_running_loop()
        while self.held:
            # a timer, not a guess: the lull is measured from the last event told
            wait = min(self.last_told + self.LULL, self.held_since + self.MAX_WAIT) - loop.time()
            if self.resyncing:
                # told after the stream opened: applied after the collection read meanwhile
                # replaced the graph, not before it (the replacement would lose them)
                await asyncio.sleep(self.LULL)
                continue
            if wait > 0 and len(self.held) < self.MAX_HELD:
                await asyncio.sleep(wait)
                continue
            events, self.held = self.held, []
            await self.write(self.apply_logged, events)

    def write(self, fn, *args) -> asyncio.Future:
        """Run ``fn(*args)`` in the writer thread (inline before :meth:`start`)."""
        if self.writer is None:
            future = asyncio.get_running_loop().create_future()
            future.set_result(fn(*args))
            return future
        return asyncio.wrap_future(self.writer.submit(fn, *args))

    def apply_logged(self, events: list[tuple[str, str]]) -> None:
        try:
            self.apply_many(events)
        except Exception:
            log.exception("cannot apply commons events")

    def remove(self, ann_id: str) -> None:
        if not _PLAIN_IRI.match(ann_id):  # it goes into an update: nothing but an IRI
            log.warning("ignoring a commons event for the id %r", ann_id)
            return
        a = ox.NamedNode(ann_id)
        if next(self.store.quads_for_pattern(a, None, None, self.graph), None) is None:
            return  # not in the graph (a new annotation's Create): nothing to take out
        graph = self.graph.value
        # a place annotated (a GeoJSON Feature target: crm:E53_Place under the place's own IRI,
        # echoes_lab.knowledge.rdf) leaves with the last annotation that targets it
        self.store.update(
            "PREFIX oa: <http://www.w3.org/ns/oa#> "
            "PREFIX crm: <http://www.cidoc-crm.org/cidoc-crm/> "
            f"DELETE {{ GRAPH <{graph}> {{ ?t ?p ?o }} }} WHERE {{ GRAPH <{graph}> {{ "
            f"<{ann_id}> oa:hasTarget ?t . ?t a crm:E53_Place ; ?p ?o . FILTER NOT EXISTS {{ "
            f"?other oa:hasTarget ?t FILTER(?other != <{ann_id}>) }} }} }}")
        # the annotation's own node and its skolem nodes (<id>#r1 …, what annotation_quads
        # minted for its bodies, targets and selectors), found by walking from the annotation
        # through the subject index: a FILTER(STRSTARTS(STR(?s), "<id>#")) update scanned the
        # whole graph once per annotation, so a bulk load of n annotations cost O(n^2)
        # (20,000 of them: ~97 CPU s here, against a few with the walk)
        removed = [q for s in self.nodes_of(a)
                   for q in self.store.quads_for_pattern(s, None, None, self.graph)]
        # the annotation's own quads last: a remove cut short still finds it next time
        removed.sort(key=lambda q: q.subject == a)
        for q in removed:
            self.store.remove(q)

    def nodes_of(self, a: ox.NamedNode) -> list[ox.NamedNode]:
        """The annotation's node and the nodes under its IRI (``<id>#…``) reachable from it,
        through at most one node of another IRI (a body or target with an id of its own)."""
        prefix = a.value + "#"
        out, seen, todo = [a], {a}, [(a, 0)]
        while todo:
            node, depth = todo.pop()
            for q in self.store.quads_for_pattern(node, None, None, self.graph):
                o = q.object
                if not isinstance(o, ox.NamedNode) or o in seen:
                    continue
                seen.add(o)
                mine = o.value.startswith(prefix)
                if mine:
                    out.append(o)
                if mine or depth == 0:
                    todo.append((o, depth + 1))
        return out

    def put(self, ann: dict) -> None:
        self.put_many([ann])

    def put_many(self, anns: list[dict]) -> None:
        """Map annotations to Linked Art and store them in one transaction (a bulk batch's
        thousands of Create events: one ``extend`` instead of one each)."""
        from echoes_lab.knowledge import rdf

        quads: list[ox.Quad] = []
        pending: set[str] = set()
        for ann in anns:
            if not isinstance(ann.get("id"), str) or not _PLAIN_IRI.match(ann["id"]):
                continue
            if ann["id"] in pending:  # the same annotation twice: the first goes in first
                self.store.extend(quads)
                quads, pending = [], set()
            self.remove(ann["id"])
            with contextlib.suppress(Exception):  # one malformed annotation must not stop the rest
                quads += rdf.annotation_quads(ann, self.graph, skolem=True)
            pending.add(ann["id"])
            self.applied += 1
        if quads:
            # each annotation repeats its creator's and generator's quads: stored once a batch
            self.store.extend(dict.fromkeys(quads))

    def apply(self, kind: str, data: str) -> None:
        self.apply_many([(kind, data)])

    def apply_many(self, events: list[tuple[str, str]]) -> None:
        """Apply change events in order; consecutive ``Create``/``Update`` ones together."""
        run: list[dict] = []
        for kind, data in events:
            try:
                obj = orjson.loads(data).get("object") or {}
            except (ValueError, AttributeError):
                log.warning("ignoring a commons event that is not a JSON object")
                continue
            if kind in ("Create", "Update") and isinstance(obj, dict):
                run.append(obj)
                if len(run) >= 2000:  # a transaction's quads in memory: ~40,000, not millions
                    self.put_many(run)
                    run = []
                    if self.stopping:  # the rest is read again by the next start's resync
                        return
            elif kind == "Delete" and isinstance(obj, dict) and isinstance(obj.get("id"), str):
                self.put_many(run)
                run = []
                self.remove(obj["id"])
        self.put_many(run)

    async def resync(self) -> None:
        # pages by key: offset pages re-read every row before them, hours at 10^6 annotations
        url = f"{self.commons}annotations/?iris=0&after=0"
        seen = []
        while url:
            resp = await AsyncHTTPClient().fetch(url, request_timeout=30,
                                                 headers={"Accept": "application/ld+json"})
            page = json.loads(resp.body)
            seen += page.get("items", [])
            url = page.get("next")

        def replace() -> None:
            if self.store.contains_named_graph(self.graph):
                self.store.remove_graph(self.graph)
            for start in range(0, len(seen), 1000):  # a transaction per thousand, not per one
                self.put_many([a for a in seen[start:start + 1000] if isinstance(a, dict)])

        await self.write(replace)

    async def follow(self) -> None:
        while True:
            buf = bytearray()
            event: dict[str, str] = {}

            def on_chunk(chunk: bytes, buf=buf, event=event) -> None:
                buf.extend(chunk)
                end = buf.rfind(b"\n")
                if end < 0:
                    return
                # the chunk's complete lines at once (a bulk batch sends thousands of events
                # in one write), and the events they end applied together
                lines = bytes(buf[:end]).split(b"\n")
                del buf[:end + 1]
                done: list[tuple[str, str]] = []
                for line in lines:
                    text = line.decode("utf-8").rstrip("\r")
                    if not text:
                        if event.get("data"):
                            done.append((event.get("event", "message"), event["data"]))
                        event.clear()
                    elif not text.startswith(":"):
                        key, _, value = text.partition(":")
                        event[key] = value[1:] if value.startswith(" ") else value
                if done:
                    self.told(done)

            # a client of its own for the stream: tornado counts a streamed response against
            # max_body_size (100 MB by default) as a whole, and the stream never ends, so the
            # shared client cut it after ~100 MB of changes (~60,000 annotations) and every
            # reconnection read and mapped the whole collection again
            client = AsyncHTTPClient(force_instance=True, max_body_size=self.STREAM_LIMIT)
            try:
                stream = client.fetch(HTTPRequest(
                    f"{self.commons}events", streaming_callback=on_chunk,
                    request_timeout=0, connect_timeout=10,
                    headers={"Accept": "text/event-stream"}))
                self.resyncing = True
                try:
                    await self.resync()
                finally:
                    self.resyncing = False
                await stream
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the commons restarts, the hub is not up yet
                log.info("commons events: %s; reconnecting", exc)
            finally:
                client.close()
            self.reconnections += 1
            await asyncio.sleep(1)


class KnowledgeService(Service):
    """The SPARQL service of the hub (see :mod:`echoes_lab.hub.services.knowledge`)."""

    service_name = "knowledge"
    name = "echoes-knowledge"
    store: ox.Store | None = None
    follower: CommonsFollower | None = None
    runner: QueryRunner | None = None

    def handlers(self) -> list[tuple]:
        return [(r"", HomeHandler), (r"sparql", SparqlHandler), (r"data", DataHandler),
                (r"graphs", GraphsHandler)]

    def metrics_collectors(self) -> list:
        from echoes_lab.hub.services.knowledge.metrics import collectors

        return collectors(self)

    def tornado_settings(self) -> dict:
        s = self.settings
        k = s.knowledge
        folder = s.state_dir / k.store
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        # opened here, before serving: a store that cannot be opened stops the start
        self.store = ox.Store(str(folder))
        registry = Registry(self.store)
        base = public_base(s)
        commons = hub_url(s) + "/services/commons/"
        if s.commons.enabled:
            self.follower = CommonsFollower(self.store, registry, commons,
                                            f"{base}commons/annotations")
        hub_groups = HubGroups(self.hub_api_url, self.api_token,
                               max_age=min(s.services.auth_cache_age,
                                           s.workshops.auth_refresh_age))
        runner = QueryRunner(str(folder), k.query_timeout, k.max_result_bytes, k.max_concurrent,
                             k.query_memory)
        self.runner = runner
        return {"store": self.store, "registry": registry, "runner": runner, "base": base,
                "hub_groups": hub_groups, "follower": self.follower}

    async def start_tasks(self) -> None:
        if self.follower is not None:
            self.follower.start()
        # the queries' fork server (and multiprocessing's resource tracker: ~21 MiB PSS
        # together, issue 36) starts with the first query, in a thread (QueryRunner.run), not
        # here: a service nobody queries holds neither

    async def stop_tasks(self) -> None:
        if self.follower is not None:
            await self.follower.stop()
        if self.store is not None:
            self.store.flush()
