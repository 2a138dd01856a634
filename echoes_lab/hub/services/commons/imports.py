"""Import from other annotation servers: a scheduled job of the commons service.

Each ``[[commons.imports]]`` source of the settings is a W3C Web Annotation Protocol container
(https://www.w3.org/TR/annotation-protocol/ §5): an ``AnnotationCollection`` whose ``first``
page (embedded or an IRI) leads through ``next`` to every ``AnnotationPage``; items are the
annotations themselves or their IRIs (then each is read). Every ``every`` seconds the service
reads the whole container **without credentials**, so only what its origin publishes is
copied, and:

* an annotation not seen before is stored once, public, with the provenance
  :func:`echoes_lab.commons.model.imported` keeps (``via``/``canonical`` = the origin's IRI,
  the origin's ``creator``, ``generator``, times and licence);
* one whose JSON changed at the origin (its sha256 differs) gets a new version here;
* one copied before and no longer in the container is deleted here (a tombstone, as any
  delete: its history stays) — only after a complete read: a run that fails half-way deletes
  nothing; one that comes back is restored.

The table ``imported`` (origin IRI -> local annotation) makes a run idempotent: however often it
runs, and across restarts of the service, each origin annotation is here once. Copies of this
commons' own annotations (their ``via``/``canonical`` are ours) are not imported back.

Where it may connect: the sources are the operator's settings, never a user's input; still the
import runs inside the hub's network, so an address that is not public (loopback, private,
link-local: :attr:`ipaddress.IPv4Address.is_global`) is refused unless the source says
``private_network = true``. The check is in the resolver the client connects with (a name that
resolves differently later cannot slip past it), every page and item must stay on the
source's origin (scheme, host, port: a page cannot send the import elsewhere), redirects too,
and bodies are bounded in size.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import ipaddress
import json
import logging
import socket
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.netutil import DefaultLoopResolver, Resolver
from tornado.simple_httpclient import SimpleAsyncHTTPClient

from echoes_lab.commons.model import AnnotationError, imported
from echoes_lab.commons.store import Store, new_id

log = logging.getLogger("echoes.commons.imports")

ACCEPT = 'application/ld+json; profile="http://www.w3.org/ns/anno.jsonld"'
PREFER = ('return=representation;include="http://www.w3.org/ns/oa#PreferContainedDescriptions"')
#: bounds of one run: bytes of one response, pages of one container, redirects of one request
MAX_BODY = 50 * 1024 * 1024
MAX_PAGES = 100_000
MAX_REDIRECTS = 5


class ImportRefused(Exception):
    """A source (or a link it gives) the import will not read; the message says why."""


class GuardedResolver(Resolver):
    """Resolves as usual, then keeps only public addresses (unless private ones are allowed)."""

    def initialize(self, allow_private: bool = False) -> None:
        self.inner = DefaultLoopResolver()
        self.allow_private = allow_private

    async def resolve(self, host: str, port: int, family=socket.AF_UNSPEC):
        found = await self.inner.resolve(host, port, family)
        if self.allow_private:
            return found
        kept = [(fam, addr) for fam, addr in found
                if ipaddress.ip_address(addr[0].split("%")[0]).is_global]
        if not kept:
            shown = ", ".join(sorted({addr[0] for _, addr in found}))
            msg = (f"{host} is at {shown}, not a public address: an import reads only public "
                   "servers unless its [[commons.imports]] entry says private_network = true")
            raise ImportRefused(msg)
        return kept


@dataclass(frozen=True)
class Source:
    url: str
    every: int
    private_network: bool = False

    @property
    def origin(self) -> tuple[str, str]:
        parts = urlsplit(self.url)
        return parts.scheme, parts.netloc

    @property
    def owner(self) -> str:
        # not a hub name (':' is not allowed in the system users labs run as): nobody here
        # owns a copy, so nobody here can edit it; admins can delete or hide it
        return f"import:{urlsplit(self.url).netloc}"


def digest(data: dict) -> str:
    """sha256 of an annotation's JSON in a canonical form (keys sorted): a change at the
    origin changes it; another server's key order does not."""
    text = json.dumps({k: v for k, v in data.items() if k != "visibility"}, sort_keys=True,
                      ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _as_list(value) -> list:
    return value if isinstance(value, list) else ([] if value is None else [value])


def page_items(page: dict) -> list:
    """A page's annotations: ``items`` (the protocol's JSON-LD context), or the expanded
    ``as:items`` ``{"@list": [...]}`` some servers write (KNAW HuC's AnnoRepo did)."""
    if "items" in page:
        return _as_list(page["items"])
    expanded = page.get("as:items")
    if isinstance(expanded, dict):
        return _as_list(expanded.get("@list"))
    return _as_list(expanded)


def _link(value) -> str | None:
    if isinstance(value, dict):
        value = value.get("id")
    return value if isinstance(value, str) else None


class Importer:
    """The import job of one commons service: its sources, their schedule, their runs."""

    def __init__(self, store: Store, sources: list[Source], *, container: str, clock,
                 changed=None):
        self.store, self.sources, self.container = store, sources, container
        self.clock = clock
        self.changed = changed or (lambda before, after, data: None)
        self.locks = {s.url: asyncio.Lock() for s in sources}
        self.clients = {s.url: SimpleAsyncHTTPClient(
            force_instance=True, max_body_size=MAX_BODY,
            resolver=GuardedResolver(allow_private=s.private_network)) for s in sources}
        self.task: asyncio.Task | None = None

    # -- schedule -------------------------------------------------------------------------
    def start(self) -> None:
        if self.sources:
            self.task = asyncio.ensure_future(self.loop())

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        for client in self.clients.values():
            client.close()

    def due_in(self, source: Source) -> float:
        """Seconds until ``source`` is due: from the end of its last run, kept in the store,
        so a restarted service neither runs it early nor forgets it."""
        state = self.store.import_run(source.url)
        last = state.get("finished") or state.get("started")
        if last is None:
            return 0.0
        last = last if last.tzinfo else last.replace(tzinfo=self.clock().tzinfo)
        return source.every - (self.clock() - last).total_seconds()

    async def loop(self) -> None:
        while True:
            waits = []
            for source in self.sources:
                wait = self.due_in(source)
                if wait <= 0:
                    await self.run(source)
                    wait = self.due_in(source)
                waits.append(wait)
            await asyncio.sleep(max(0.05, min(60.0, *waits)))

    # -- one run --------------------------------------------------------------------------
    async def run(self, source: Source) -> dict:
        """Read ``source`` once and bring the copies up to date; returns the run's counts
        (also kept as its ``result``): ``seen``, ``created``, ``updated``, ``deleted``,
        ``restored``, ``unchanged``, ``refused`` (with ``errors``), or ``error``."""
        async with self.locks[source.url]:
            self.store.import_run(source.url, started=self.clock())
            try:
                items, refused = await self.read(source)
                result, invalid = self.apply(source, items)
                refused += invalid
                result["refused"] = len(refused)
                result["errors"] = refused[:20]  # the first reasons, for the operator
                if refused:
                    log.info("import from %s: %d items refused, e.g. %s", source.url,
                             len(refused), refused[0])
            except (ImportRefused, HTTPClientError, OSError, ValueError) as exc:
                log.warning("import from %s failed: %s", source.url, exc)
                result = {"error": str(exc)}
            except Exception as exc:  # a scheduled job outlives one bad run: log, record
                log.exception("import from %s failed", source.url)
                result = {"error": f"{type(exc).__name__}: {exc}"}
            self.store.import_run(source.url, finished=self.clock(), result=result)
            return result

    async def get(self, source: Source, url: str) -> dict:
        """One JSON-LD document of the source, following redirects on its own origin."""
        for _ in range(MAX_REDIRECTS + 1):
            parts = urlsplit(url)
            if (parts.scheme, parts.netloc) != source.origin:
                msg = f"{url} is not on the origin of the source {source.url}: not read"
                raise ImportRefused(msg)
            resp = await self.clients[source.url].fetch(HTTPRequest(
                url, headers={"Accept": ACCEPT, "Prefer": PREFER}, follow_redirects=False,
                request_timeout=60, connect_timeout=10), raise_error=False)
            if resp.code in (301, 302, 303, 307, 308) and resp.headers.get("Location"):
                url = urljoin(url, resp.headers["Location"])
                continue
            if resp.error is not None and resp.code == 599:
                raise resp.error
            if resp.code != 200:
                msg = f"{url} answered {resp.code}"
                raise ImportRefused(msg)
            data = json.loads(resp.body)
            if not isinstance(data, dict):
                msg = f"{url} is not a JSON object"
                raise ValueError(msg)
            return data
        msg = f"{url}: more than {MAX_REDIRECTS} redirects"
        raise ImportRefused(msg)

    async def read(self, source: Source) -> tuple[list[dict], list[str]]:
        """Every annotation of the container, and why any item was left out."""
        top = await self.get(source, source.url)
        types = _as_list(top.get("type"))
        page: dict | None = top if "AnnotationPage" in types else None
        if page is None:
            first = top.get("first")
            if isinstance(first, dict) and ("items" in first or "as:items" in first):
                page = first
            elif _link(first):
                page = await self.get(source, urljoin(source.url, _link(first)))
            elif top.get("total", 0) == 0 and "AnnotationCollection" in types:
                return [], []  # an empty container has no pages
            else:
                msg = f"{source.url} is not an AnnotationCollection with a 'first' page"
                raise ValueError(msg)
        items: list[dict] = []
        refused: list[str] = []
        seen_pages: set[str] = set()
        while page is not None:
            for item in page_items(page):
                if isinstance(item, str):  # the container gave IRIs: read each
                    item = await self.get(source, urljoin(source.url, item))
                if not isinstance(item, dict):
                    refused.append("an item that is neither an annotation nor its IRI")
                    continue
                if item.get("visibility", "public") != "public":
                    continue  # not published (a server showing more than it should)
                items.append(item)
            nxt = _link(page.get("next"))
            if not nxt:
                break
            nxt = urljoin(source.url, nxt)
            if nxt in seen_pages or len(seen_pages) >= MAX_PAGES:
                msg = f"{source.url}: the pages' 'next' links loop or exceed {MAX_PAGES} pages"
                raise ValueError(msg)
            seen_pages.add(nxt)
            page = await self.get(source, nxt)
        return items, refused

    def ours(self, item: dict) -> bool:
        """Whether ``item`` is (a copy of) one of this commons' own annotations."""
        return any(isinstance(v, str) and v.startswith(self.container)
                   for v in (item.get("id"), item.get("canonical"), *_as_list(item.get("via"))))

    def apply(self, source: Source, items: list[dict]) -> tuple[dict, list[str]]:
        """Store the read items: new ones in one transaction, changed ones as new versions,
        vanished ones deleted (the read was complete: :meth:`read` raised otherwise)."""
        now = self.clock()
        known = self.store.imported_from(source.url)
        counts = dict(seen=len(items), created=0, updated=0, deleted=0, restored=0,
                      unchanged=0)
        todo, seen, errors = [], set(), []
        for item in items:
            origin = item.get("id")
            if not isinstance(origin, str) or origin in seen or self.ours(item):
                continue
            seen.add(origin)
            sha = digest(item)
            hit = known.get(origin)
            try:
                if hit is None:
                    ann_id = new_id()
                    data = imported(item, iri=f"{self.container}{ann_id}", now=now)
                    todo.append({"id": ann_id, "owner": source.owner, "data": data,
                                 "visibility": "public", "origin": origin,
                                 "source": source.url, "digest": sha,
                                 "licence": data.get("rights") or ""})
                    continue
                ann_id, old_sha, deleted = hit
                if deleted:  # back at the origin: the copy comes back too
                    rec = self.store.restore(ann_id, source.owner)
                    counts["restored"] += 1
                    self.changed(None, "public", {**rec.data, "visibility": "public"})
                if old_sha == sha:
                    counts["unchanged"] += 0 if deleted else 1
                    continue
                data = imported(item, iri=f"{self.container}{ann_id}", now=now)
                rec = self.store.update(ann_id, source.owner, data)
                self.store.set_import_digest(origin, sha)
                counts["updated"] += 1
                self.changed("public", rec.visibility, {**rec.data, "visibility": "public"})
            except AnnotationError as exc:
                errors.append(f"{origin}: {exc}")
        if todo:
            stored = self.store.create_many(todo)
            for item, (_, created) in zip(todo, stored, strict=True):
                if created:
                    counts["created"] += 1
                    self.changed(None, "public", {**item["data"], "visibility": "public"})
        for origin, (ann_id, _, deleted) in known.items():
            if origin not in seen and not deleted:
                rec = self.store.delete(ann_id, source.owner)
                counts["deleted"] += 1
                self.changed("public", None, rec.data)
        return counts, errors


def sources_of(settings) -> list[Source]:
    return [Source(i.url, i.every, i.private_network) for i in settings.commons.imports]
