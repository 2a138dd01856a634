"""The commons' web side: the W3C Web Annotation Protocol over tornado, on the service scaffold.

Everything is under the service prefix (``/services/commons/``):

=========================================  ========================  ===========================
``annotations/``                           GET HEAD OPTIONS POST     the container (LDP
                                                                     BasicContainer +
                                                                     AnnotationCollection)
``annotations/<id>``                       GET HEAD OPTIONS PUT      one annotation
                                           DELETE
``annotations/<id>/versions[/<n>]``        GET                       its history
``annotations/<id>/restore``               POST                      undo a delete (admins)
``annotations/<id>/hidden``                PUT DELETE                hide with a reason (admins,
                                                                     group moderators)
``moderation``                             GET                       the public moderation log
``imports``                                GET POST                  imports from other servers
                                                                     (``imports.py``)
``changes[?page=N]`` / ``changes/<n>``     GET                       IIIF Change Discovery feed
                                                                     (``changes.py``)
``bulk``                                   POST                      many annotations in one
                                                                     transaction (``bulk.py``)
``search?target=&canvas=&creator=…&q=``    GET                       a filtered collection
``search?text=…&lang=fr``                  GET                       full text, stemmed, ranked
``export/iiif?canvas=IRI``                 GET                       IIIF Presentation 3
                                                                     AnnotationPage
``export/crate?…``                         GET                       RO-Crate (zip) of a search
``export/mine``                            GET                       all one's own contributions
``actors/`` / ``actors/<id>``              GET POST / GET            software agents
``people/<name>``                          GET                       a Person
``events``                                 GET                       public changes, Server-Sent
                                                                     Events (``events.py``)
=========================================  ========================  ===========================

Protocol: https://www.w3.org/TR/annotation-protocol/ (container §5, annotations §4, paging
§5.3, Prefer §5.2–5.3, ETag/If-Match §4.2). Reads are open to anyone for public annotations
(CORS ``*``, so IIIF viewers on other origins can show them); group and private ones need the
hub identity; writes need it always (401 without). The hub's groups of a user are read with
the service's own token (scopes ``read:users``, ``read:users:groups``, ``read:groups``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from typing import Any
from urllib.parse import quote, urlencode

from tornado import web
from tornado.httpclient import AsyncHTTPClient, HTTPClientError

from echoes_lab.commons.model import (
    CONTEXT,
    MEDIA_TYPE,
    AnnotationError,
    iso,
    prepare,
)
from echoes_lab.commons.store import Record, Store, StoreError, Viewer, new_id
from echoes_lab.hub.services.base import APIHandler, Service, ServiceHandler, TokenOrXSRF
from echoes_lab.hub.services.commons.events import Events, EventsHandler
from echoes_lab.hub.services.commons.feature import MODERATE_SCOPE, db_url, public_base

log = logging.getLogger("echoes.commons")

LDP = "http://www.w3.org/ns/ldp#"
PREFER_IRIS = "http://www.w3.org/ns/oa#PreferContainedIRIs"
PREFER_DESCRIPTIONS = "http://www.w3.org/ns/oa#PreferContainedDescriptions"
PREFER_MINIMAL = f"{LDP}PreferMinimalContainer"
CONTAINER_LINK = (f'<{LDP}BasicContainer>; rel="type", '
                  '<http://www.w3.org/TR/annotation-protocol/>; '
                  f'rel="{LDP}constrainedBy"')
RESOURCE_LINK = f'<{LDP}Resource>; rel="type"'
EXPOSED = "ETag, Link, Allow, Content-Location, Location, Vary, Preference-Applied"
#: annotations in a page read by key (``?after=``): a reader of the whole collection (the
#: knowledge service's re-read) makes a hundred requests for 10^5, not 5,000
KEY_PAGE_SIZE = 1000
FILTERS = ("target", "canvas", "source", "creator", "generator", "motivation", "tag", "group", "q",
           "text", "lang")  # text: full text, ranked (echoes_lab.commons.fulltext)


def prefer_includes(header: str | None) -> set[str]:
    """The IRIs in ``include="…"`` of a ``Prefer: return=representation`` header (RFC 7240,
    RFC 7089-style parameters as the protocol §5.2 uses them)."""
    found: set[str] = set()
    for part in (header or "").split(";"):
        key, _, value = part.strip().partition("=")
        if key.strip().lower() == "include":
            found.update(value.strip().strip('"').split())
    return found


async def viewer_for(user: dict | None, hub_users: HubUsers) -> Viewer:
    """Who is asking: a hub user with their groups and admin flag, or anonymous."""
    if not user or user.get("kind", "user") != "user":
        return Viewer()
    info = await hub_users.lookup(user["name"])
    admin = bool(info.get("admin", user.get("admin", False)))
    groups = frozenset(info.get("groups") or user.get("groups") or ())
    return Viewer(user["name"], groups, admin)


class CommonsHandler(TokenOrXSRF, APIHandler):
    """Anonymous reads allowed; JSON-LD answers; CORS for reads; the viewer's groups."""

    allow_methods = "GET, HEAD, OPTIONS"

    def prepare(self):  # not APIHandler's: anonymous people may read public annotations
        if self.request.method not in ("GET", "HEAD", "OPTIONS") and self.current_user is None:
            self.set_header("WWW-Authenticate", 'token realm="commons"')
            msg = ("writing to the commons needs a hub identity: sign in, or send a hub token "
                   "with the scope access:services!service=commons")
            raise web.HTTPError(401, msg)
        if (self.current_user is not None and self.current_user.get("kind", "user") != "user"
                and self.request.method not in ("GET", "HEAD", "OPTIONS")):
            raise web.HTTPError(403, "only people write to the commons (software through "
                                         "a registered actor of its owner)")

    def set_default_headers(self):
        self.set_header("Vary", "Accept, Prefer, Origin")
        self.set_header("Allow", self.allow_methods)
        if self.request.method in ("GET", "HEAD", "OPTIONS"):
            # public reads from any origin, without credentials (so only public annotations)
            self.set_header("Access-Control-Allow-Origin", "*")
            self.set_header("Access-Control-Expose-Headers", EXPOSED)

    def options(self, *_args):
        self.set_header("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS")
        self.set_header("Access-Control-Allow-Headers", "Accept, Prefer, If-None-Match")
        self.set_header("Access-Control-Max-Age", "600")
        self.set_status(200)
        self.finish()

    # -- context ------------------------------------------------------------------------------
    @property
    def store(self) -> Store:
        return self.settings["store"]

    @property
    def base(self) -> str:
        """The service's public IRI, ending in ``/`` (annotations' IRIs start with it)."""
        public = self.settings.get("public_base")
        if public:
            return public
        return f"{self.request.protocol}://{self.request.host}{self.settings['service_prefix']}"

    @property
    def container(self) -> str:
        return f"{self.base}annotations/"

    async def viewer(self) -> Viewer:
        return await viewer_for(self.current_user, self.settings["hub_users"])

    def reply_ld(self, model: Any, status: int = 200, etag: str | None = None) -> None:
        self.set_status(status)
        self.set_header("Content-Type", MEDIA_TYPE)
        if etag:
            self.set_header("ETag", etag)
        self.finish(json.dumps(model, ensure_ascii=False))

    def body_json(self) -> dict:
        ctype = self.request.headers.get("Content-Type", "application/ld+json")
        if "json" not in ctype:
            raise web.HTTPError(415, f"send the annotation as {MEDIA_TYPE}, not {ctype}")
        return self.get_json_body()

    def render(self, rec: Record) -> dict:
        return {**rec.data, "visibility": rec.visibility}

    async def visible(self, ann_id: str, *, gone_ok: bool = False) -> tuple[Record, Viewer]:
        viewer = await self.viewer()
        rec = self.store.get(ann_id)
        if rec is None or not viewer.may_see(rec):
            raise web.HTTPError(404, f"no annotation {ann_id}")
        if rec.deleted is not None and not gone_ok:
            raise web.HTTPError(410, f"annotation {ann_id} was deleted on {iso(rec.deleted)}")
        return rec, viewer

    def write_error(self, status_code: int, **kwargs) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, (AnnotationError, StoreError)):
            self.set_status(exc.status)
            status_code = exc.status
            kwargs = {}
            message = str(exc)
        else:
            message = self.error_message(status_code, **kwargs)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"status": status_code, "message": message}))

    def log_exception(self, typ, value, tb):
        if isinstance(value, (AnnotationError, StoreError)):
            return  # the client's mistake, answered with its status
        super().log_exception(typ, value, tb)

    def send_error(self, status_code: int = 500, **kwargs) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, (AnnotationError, StoreError)):
            status_code = exc.status
        super().send_error(status_code, **kwargs)


class CollectionMixin:
    """The container and search: an AnnotationCollection paged by AnnotationPages."""

    def filters(self) -> dict:
        got = {k: self.get_query_argument(k, None) for k in FILTERS}
        canvas = got.pop("canvas")
        if canvas:
            got["source"] = canvas
        return {k: v for k, v in got.items() if v}

    async def collection(self, iri: str, filters: dict) -> None:
        viewer = await self.viewer()
        size = self.settings["page_size"]
        prefer = prefer_includes(self.request.headers.get("Prefer"))
        iris = PREFER_IRIS in prefer and PREFER_DESCRIPTIONS not in prefer
        if self.get_query_argument("iris", None) is not None:
            iris = self.get_query_argument("iris") == "1"
        page = self.get_query_argument("page", None)
        after = self.get_query_argument("after", None)
        if after is not None:
            if page is not None:
                raise web.HTTPError(400, "'page' and 'after' both given: use one")
            self.key_page(iri, filters, viewer, iris, after)
            return
        total, items = self.store.search(viewer, offset=int(page or 0) * size if page and
                                         page.isdigit() else 0, limit=size, **filters)
        last = max(0, (total - 1) // size)
        sep = "&" if "?" in iri else "?"

        def page_iri(n: int) -> str:
            return f"{iri}{sep}{urlencode({'iris': int(iris), 'page': n})}"

        if page is not None:
            if not page.isdigit() or int(page) > last:
                raise web.HTTPError(404, f"no page {page}: pages are 0 to {last}")
            n = int(page)
            model = self.page(n, items, iris, page_iri, last, iri, total)
            self.set_header("Link", RESOURCE_LINK)
            self.reply_ld(model, etag=self.collection_etag(model))
            return
        model = {"@context": [CONTEXT, "http://www.w3.org/ns/ldp.jsonld"], "id": iri,
                 "type": ["BasicContainer", "AnnotationCollection"], "total": total,
                 "label": "ECHOES Lab commons"}
        if total:
            minimal = PREFER_MINIMAL in prefer
            model["first"] = (page_iri(0) if minimal else
                              self.page(0, items, iris, page_iri, last, iri, total, embed=True))
            model["last"] = page_iri(last)
            self.set_header("Preference-Applied", "return=representation")
        self.set_header("Link", CONTAINER_LINK)
        self.set_header("Content-Location", iri)
        self.reply_ld(model, etag=self.collection_etag(model))

    def key_page(self, iri: str, filters: dict, viewer: Viewer, iris: bool, after: str) -> None:
        """An AnnotationPage of the annotations after key ``after`` (0: from the start), its
        ``next`` naming the last one's key: a whole collection read in linear time.

        The ``page=N`` pages of the protocol (§5.2) stay as they are; these are the same
        AnnotationPages without ``startIndex`` or a ``total`` (neither is required, and the
        count would cost a scan of the table per page).
        """
        if not after.isdigit():
            raise web.HTTPError(400, f"'after' must be a key from a page's 'next' (0 for the "
                                f"start), not {after!r}")
        sep = "&" if "?" in iri else "?"

        def key_iri(key: int) -> str:
            return f"{iri}{sep}{urlencode({'iris': int(iris), 'after': key})}"

        # one more than a page: whether a next page exists, without counting
        _, items = self.store.search(viewer, after=int(after), limit=KEY_PAGE_SIZE + 1,
                                     count=False, **filters)
        model = {"@context": CONTEXT, "id": key_iri(int(after)), "type": "AnnotationPage",
                 "partOf": {"id": iri}}
        if len(items) > KEY_PAGE_SIZE:
            items = items[:KEY_PAGE_SIZE]
            model["next"] = key_iri(items[-1].seq)
        model["items"] = [r.data["id"] if iris else self.render(r) for r in items]
        self.set_header("Link", RESOURCE_LINK)
        self.reply_ld(model, etag=self.collection_etag(model))

    def page(self, n, items, iris, page_iri, last, iri, total, embed=False) -> dict:
        model = {} if embed else {"@context": CONTEXT}
        model.update({"id": page_iri(n), "type": "AnnotationPage"})
        if not embed:
            model["partOf"] = {"id": iri, "total": total}
        model["startIndex"] = n * self.settings["page_size"]
        if n < last:
            model["next"] = page_iri(n + 1)
        if n > 0:
            model["prev"] = page_iri(n - 1)
        model["items"] = [r.data["id"] if iris else self.render(r) for r in items]
        return model

    def collection_etag(self, model: dict) -> str:
        # the representation's own digest: it names the items, their versions and the total,
        # and costs no extra query (a COUNT over the table would, at 10^5 annotations)
        seed = json.dumps(model, sort_keys=True, ensure_ascii=False).encode()
        return f'"{hashlib.sha256(seed).hexdigest()[:32]}"'


class ContainerHandler(CollectionMixin, CommonsHandler):
    allow_methods = "GET, HEAD, OPTIONS, POST"

    def set_default_headers(self):
        super().set_default_headers()
        self.set_header("Accept-Post", MEDIA_TYPE)

    async def get(self):
        filters = self.filters()
        iri = self.container
        if filters:
            iri += "?" + urlencode(filters)
        await self.collection(iri, filters)

    head = get

    async def post(self):
        user = self.current_user
        data = self.body_json()
        actor, run = self.actor_for(data, user["name"])
        ann_id = new_id()
        iri = f"{self.container}{ann_id}"
        visibility = data.get("visibility", "private")
        if not isinstance(visibility, str):
            raise web.HTTPError(400, "'visibility' must be a string")
        if visibility.startswith("group:"):
            viewer = await self.viewer()
            if visibility[6:] not in viewer.groups and not viewer.admin:
                raise web.HTTPError(403, f"you are not in the hub group {visibility[6:]!r}")
        ann = prepare(data, iri=iri, user=user["name"], display=user.get("name"), base=self.base,
                      now=self.settings["service"].utcnow(), licence=self.settings["licence"],
                      actor=actor, run=run)
        rec = self.store.create(ann_id, user["name"], ann, visibility=visibility, actor=actor)
        self.settings["events"].changed(None, rec.visibility, self.render(rec))
        self.set_header("Location", iri)
        self.set_header("Link", RESOURCE_LINK)
        self.reply_ld(self.render(rec), 201, etag=rec.etag)

    def actor_for(self, data: dict, owner: str) -> tuple[dict | None, str | None]:
        """The registered actor a ``generator`` names, if the poster owns it."""
        gen = data.get("generator")
        if gen is None:
            return None, None
        gid = gen.get("id") if isinstance(gen, dict) else gen
        prefix = f"{self.base}actors/"
        actor = (self.store.actor(gid[len(prefix):]) if isinstance(gid, str)
                 and gid.startswith(prefix) else None)
        if actor is None or actor["owner"] != owner:
            msg = (f"'generator' must be the id of a software actor you registered "
                   f"(POST {prefix}); {gid!r} is not one of yours")
            raise web.HTTPError(403, msg)
        return actor, gen.get("homepage") if isinstance(gen, dict) else None


class SearchHandler(CollectionMixin, CommonsHandler):
    async def get(self):
        filters = self.filters()
        await self.collection(f"{self.base}search?{urlencode(filters)}", filters)

    head = get


class AnnotationHandler(CommonsHandler):
    allow_methods = "PUT, GET, OPTIONS, HEAD, DELETE"

    async def get(self, ann_id):
        rec, _ = await self.visible(ann_id)
        self.set_header("Link", RESOURCE_LINK)
        self.set_header("Content-Location", rec.data["id"])
        self.reply_ld(self.render(rec), etag=rec.etag)

    head = get

    def expected_version(self, rec: Record) -> int | None:
        given = self.request.headers.get("If-Match")
        if given is None:
            return None
        if given.strip() != "*" and rec.etag not in [t.strip() for t in given.split(",")]:
            raise web.HTTPError(412, f"If-Match {given} is not the current ETag {rec.etag}: "
                                     "read the annotation again and re-apply your change")
        return rec.version

    async def put(self, ann_id):
        rec, viewer = await self.visible(ann_id)
        if rec.owner != viewer.name:
            raise web.HTTPError(403, f"annotation {ann_id} belongs to {rec.owner}; reply to it "
                                     "(motivation 'replying') or assess it instead")
        expect = self.expected_version(rec)
        data = self.body_json()
        if data.get("id", rec.data["id"]) != rec.data["id"]:
            raise web.HTTPError(400, f"'id' {data['id']} is not this annotation's")
        visibility = data.get("visibility")
        if isinstance(visibility, str) and visibility.startswith("group:") and \
                visibility[6:] not in viewer.groups and not viewer.admin:
            raise web.HTTPError(403, f"you are not in the hub group {visibility[6:]!r}")
        actor = self.store.actor(rec.actor_id) if rec.actor_id else None
        run = data.get("generator", {}).get("homepage") if isinstance(
            data.get("generator"), dict) else None
        ann = prepare(data, iri=rec.data["id"], user=rec.owner, display=rec.owner,
                      base=self.base, now=self.settings["service"].utcnow(),
                      licence=self.settings["licence"], actor=actor, run=run, previous=rec.data)
        new = self.store.update(ann_id, viewer.name, ann, visibility=visibility, expect=expect)
        self.settings["events"].changed(rec.visibility, new.visibility, self.render(new))
        self.set_header("Link", RESOURCE_LINK)
        self.reply_ld(self.render(new), etag=new.etag)

    async def delete(self, ann_id):
        rec, viewer = await self.visible(ann_id)
        if rec.owner != viewer.name and not viewer.admin:
            raise web.HTTPError(403, f"annotation {ann_id} belongs to {rec.owner}")
        self.store.delete(ann_id, viewer.name, expect=self.expected_version(rec))
        self.settings["events"].changed(rec.visibility, None, rec.data)
        self.set_status(204)
        self.finish()


class VersionsHandler(CommonsHandler):
    async def get(self, ann_id, n=None):
        rec, viewer = await self.visible(ann_id, gone_ok=True)
        if rec.deleted is not None and not (viewer.admin or viewer.name == rec.owner):
            raise web.HTTPError(410, f"annotation {ann_id} was deleted")
        iri = f"{rec.data['id']}/versions"

        def as_version(v: dict) -> dict:
            return {**v["data"], "id": f"{iri}/{v['n']}", "via": rec.data["id"],
                    "visibility": v["visibility"], "action": v["action"], "by": v["by"]}

        if n is not None:
            v = self.store.version(ann_id, int(n))
            if v is None:
                raise web.HTTPError(404, f"annotation {ann_id} has no version {n}")
            self.set_header("Link", RESOURCE_LINK)
            self.reply_ld(as_version(v), etag=f'"{ann_id}.{n}"')
            return
        items = [as_version(v) for v in self.store.versions(ann_id)]
        self.reply_ld({"@context": CONTEXT, "id": iri, "type": "AnnotationCollection",
                       "total": len(items), "first": {"id": f"{iri}?page=0",
                                                      "type": "AnnotationPage", "items": items}})


def moderated_groups(scopes) -> set[str] | None:
    """The hub groups whose annotations the holder of ``scopes`` moderates: None for all
    (the unfiltered scope), else the groups of its ``!group=`` filters (maybe none)."""
    groups: set[str] = set()
    for scope in scopes or ():
        name, _, filt = scope.partition("!")
        if name != MODERATE_SCOPE:
            continue
        if not filt:
            return None
        if filt.startswith("group="):
            groups.add(filt[6:])
    return groups


class AdminHandler(CommonsHandler):
    allow_methods = "POST, PUT, DELETE"

    async def admin(self) -> Viewer:
        viewer = await self.viewer()
        if not viewer.admin:
            raise web.HTTPError(403, "only hub admins restore annotations")
        return viewer

    async def moderator(self, ann_id: str) -> Viewer:
        """A hub admin, or a moderator of a group the annotation's author is in (or whose
        visibility it has): the hub scope ``custom:commons-moderate!group=G``."""
        viewer = await self.viewer()
        if viewer.admin:
            return viewer
        groups = moderated_groups(self.current_user.get("scopes"))
        rec = self.store.get(ann_id)
        if rec is None:
            raise web.HTTPError(404, f"no annotation {ann_id}")
        if groups is None:
            return viewer
        if groups:
            info = await self.settings["hub_users"].lookup(rec.owner)
            theirs = set(info.get("groups") or ())
            if rec.visibility.startswith("group:"):
                theirs.add(rec.visibility[6:])
            if theirs & groups:
                return viewer
            raise web.HTTPError(403, f"you moderate the annotations of {', '.join(sorted(groups))}"
                                     f"; annotation {ann_id} is by {rec.owner}, not a member")
        raise web.HTTPError(403, "only hub admins and the group's moderators (hub scope "
                                 f"{MODERATE_SCOPE}!group=G) hide annotations")

    async def post(self, ann_id, what):
        viewer = await self.admin()
        if what != "restore":
            raise web.HTTPError(405)
        rec = self.store.restore(ann_id, viewer.name)
        self.reply_ld(self.render(rec), etag=rec.etag)

    async def put(self, ann_id, what):
        viewer = await self.moderator(ann_id)
        if what != "hidden":
            raise web.HTTPError(405)
        reason = self.get_json_body().get("reason")
        if not isinstance(reason, str) or not reason.strip():
            raise web.HTTPError(400, "give the reason: {\"reason\": \"…\"}")
        self.store.hide(ann_id, viewer.name, reason)
        self.write_json({"id": ann_id, "hidden": True, "reason": reason})

    async def delete(self, ann_id, what):
        viewer = await self.moderator(ann_id)
        if what != "hidden":
            raise web.HTTPError(405)
        # why it is shown again, for the public moderation log (?reason=… or a JSON body)
        why = self.get_query_argument("reason", None)
        if why is None and self.request.body:
            why = self.get_json_body().get("reason")
        self.store.hide(ann_id, viewer.name, None, why_shown=why if isinstance(why, str)
                        else None)
        self.set_status(204)
        self.finish()


class ModerationHandler(CommonsHandler):
    """The public moderation log: who hid or showed again which annotation, when and why,
    newest first; for every signed-in user (the hidden content itself is not in it)."""

    async def get(self):
        if self.current_user is None:
            raise web.HTTPError(401, "sign in to read the moderation log")
        size = self.settings["page_size"]
        page = self.get_query_argument("page", "0")
        n = int(page) if page.isdigit() else 0
        total, entries = self.store.moderation_log(offset=n * size, limit=size)
        iri = f"{self.base}moderation"
        model = {"@context": "https://www.w3.org/ns/activitystreams", "id": f"{iri}?page={n}",
                 "type": "OrderedCollectionPage", "partOf": {"id": iri, "totalItems": total},
                 "orderedItems": [{
                     "type": "Remove" if e["action"] == "hidden" else "Add",
                     "action": e["action"], "object": f"{self.container}{e['annotation']}",
                     "actor": f"{self.base}people/{quote(e['by'])}", "by": e["by"],
                     "published": iso(e["at"]), "summary": e["reason"]} for e in entries]}
        if (n + 1) * size < total:
            model["next"] = f"{iri}?page={n + 1}"
        if wants_page(self.request.headers.get("Accept", "")):  # a person's browser
            self.render_page("commons-moderation.html", log=model, page=n, total=total)
            return
        self.reply_ld(model)


def wants_page(accept: str) -> bool:
    """Whether an ``Accept`` header asks for HTML before JSON (a browser opening a link), not
    the JSON-LD every client of the protocol gets (RFC 9110 §12.5.1, without weights: browsers
    list ``text/html`` first)."""
    first = accept.split(",")[0].split(";")[0].strip().lower()
    return first in ("text/html", "application/xhtml+xml")


class ImportsHandler(CommonsHandler):
    """``GET imports``: each source of ``[[commons.imports]]`` with its runs and the last
    one's counts (signed-in users); ``POST imports``: run them all now (hub admins)."""

    allow_methods = "GET, HEAD, OPTIONS, POST"

    def state(self) -> list[dict]:
        out = []
        for source in self.settings["importer"].sources:
            run = self.store.import_run(source.url)
            out.append({"source": source.url, "every": source.every, "runs": run["runs"],
                        "started": iso(run["started"]) if run["started"] else None,
                        "finished": iso(run["finished"]) if run["finished"] else None,
                        "result": run["result"]})
        return out

    async def get(self):
        if self.current_user is None:
            raise web.HTTPError(401, "sign in to read the state of the imports")
        self.write_json({"imports": self.state()})

    async def post(self):
        viewer = await self.viewer()
        if not viewer.admin:
            raise web.HTTPError(403, "only hub admins start an import out of its schedule")
        importer = self.settings["importer"]
        for source in importer.sources:
            await importer.run(source)
        self.write_json({"imports": self.state()})


class ActorsHandler(CommonsHandler):
    allow_methods = "GET, HEAD, OPTIONS, POST"

    def agent(self, actor: dict) -> dict:
        model = {"@context": CONTEXT, "id": f"{self.base}actors/{actor['id']}",
                 "type": "Software", "name": actor["name"], "version": actor["version"],
                 "owner": f"{self.base}people/{actor['owner']}"}
        if actor.get("homepage"):
            model["homepage"] = actor["homepage"]
        return model

    async def get(self, actor_id=None):
        if actor_id:
            actor = self.store.actor(actor_id)
            if actor is None:
                raise web.HTTPError(404, f"no actor {actor_id}")
            self.reply_ld(self.agent(actor))
            return
        owner = self.current_user["name"] if self.current_user else None
        if owner is None:
            raise web.HTTPError(401, "sign in to list your actors")
        self.reply_ld([self.agent(a) for a in self.store.actors(owner)])

    async def post(self, actor_id=None):
        if actor_id:
            raise web.HTTPError(405)
        data = self.get_json_body()
        homepage = data.get("homepage")
        if homepage is not None and not isinstance(homepage, str):
            raise web.HTTPError(400, "'homepage' must be an IRI")
        actor = self.store.add_actor(self.current_user["name"], data.get("name"),
                                     data.get("version"), homepage)
        self.set_header("Location", f"{self.base}actors/{actor['id']}")
        self.reply_ld(self.agent(actor), 201)


class PersonHandler(CommonsHandler):
    allow_methods = "GET, HEAD, OPTIONS, DELETE"

    async def delete(self, name):
        """An account's annotations withdrawn on request (the person or a hub admin):
        private and group ones erased, public ones kept as attributed tombstones."""
        viewer = await self.viewer()
        if viewer.name != name and not viewer.admin:
            raise web.HTTPError(403, f"only {name} or a hub admin can withdraw {name}'s "
                                     "annotations")
        if self.get_query_argument("confirm", None) != name:
            raise web.HTTPError(400, f"confirm with ?confirm={name}: private and group "
                                     "annotations are erased, public ones withdrawn (their "
                                     "attribution stays)")
        _, public = self.store.search(Viewer(admin=True), creator=name, visibility="public",
                                      limit=None, count=False)
        done = self.store.withdraw_account(name, viewer.name)
        for rec in public:  # the stream's followers (the knowledge base) drop them too
            self.settings["events"].changed("public", None, {"id": rec.data["id"]})
        self.write_json({"person": name, **done})

    async def get(self, name):
        self.reply_ld({"@context": CONTEXT, "id": f"{self.base}people/{quote(name)}",
                       "type": "Person", "nickname": name, "name": name})


class IIIFExportHandler(CommonsHandler):
    """The annotations on one canvas as a IIIF Presentation 3 AnnotationPage (Mirador, UV)."""

    async def get(self):
        canvas = self.get_query_argument("canvas", None)
        if not canvas:
            raise web.HTTPError(400, "give the canvas: export/iiif?canvas=IRI")
        from echoes_lab.hub.services.commons.exports import iiif_page

        viewer = await self.viewer()
        _, records = self.store.search(viewer, target=canvas, limit=None, count=False)
        page = iiif_page(f"{self.base}export/iiif?{urlencode({'canvas': canvas})}",
                         [r.data for r in records])
        self.set_header("Content-Type",
                        'application/ld+json;profile="http://iiif.io/api/presentation/3/context.json"')
        self.finish(json.dumps(page, ensure_ascii=False))


class MineExportHandler(CommonsHandler):
    """Everything the signed-in person contributed (every visibility, their software's too),
    as one JSON-LD AnnotationCollection to download: their copy, under their licences."""

    async def get(self):
        if self.current_user is None or self.current_user.get("kind", "user") != "user":
            raise web.HTTPError(401, "sign in to export your annotations")
        name = self.current_user["name"]
        _, records = self.store.search(Viewer(name), creator=name, limit=None, count=False)
        items = [self.render(r) for r in records]
        self.set_header("Content-Disposition",
                        f'attachment; filename="commons-{quote(name)}.jsonld"')
        self.reply_ld({"@context": CONTEXT, "id": f"{self.base}export/mine",
                       "type": "AnnotationCollection", "label": f"Contributed by {name}",
                       "total": len(items),
                       "first": {"type": "AnnotationPage", "items": items}})


class CrateExportHandler(CollectionMixin, CommonsHandler):
    """An RO-Crate (zip) of the annotations a search finds, with their licences and agents."""

    async def get(self):
        from echoes_lab.hub.services.commons.exports import crate_zip

        viewer = await self.viewer()
        _, records = self.store.search(viewer, limit=None, count=False, **self.filters())
        data = crate_zip([self.render(r) for r in records],
                         f"{self.base}search?{urlencode(self.filters())}")
        self.set_header("Content-Type", "application/zip")
        self.set_header("Content-Disposition", 'attachment; filename="commons-selection.zip"')
        self.finish(data)


class HomeHandler(ServiceHandler):
    """A page listing what the signed-in user may see, most recent first."""

    @web.authenticated
    async def get(self):
        from echoes_lab.hub.services.commons.viewer import listing_filters, viewer_link

        viewer = await viewer_for(self.current_user, self.settings["hub_users"])
        filters = listing_filters(self)  # the page's search form (viewer.py)
        total, recs = self.settings["store"].search(viewer, limit=None, count=False, **filters)
        recent = sorted(recs, key=lambda r: r.modified, reverse=True)[:50]
        self.render_page("commons.html", total=total, annotations=[r.data for r in recent],
                         visibility={r.data["id"]: r.visibility for r in recent},
                         searched=filters, viewer_link=viewer_link)


class HubUsers:
    """The hub's groups and admin flag of users, read with the service's token, kept for
    ``max_age`` seconds (a user added to a group sees its annotations within that time)."""

    def __init__(self, api_url: str, token: str, max_age: float):
        self.api_url, self.token, self.max_age = api_url.rstrip("/"), token, max_age
        self.cache: dict[str, tuple[float, dict]] = {}

    async def lookup(self, name: str) -> dict:
        hit = self.cache.get(name)
        if hit and time.monotonic() - hit[0] < self.max_age:
            return hit[1]
        try:
            resp = await AsyncHTTPClient().fetch(
                f"{self.api_url}/users/{quote(name)}", request_timeout=10,
                headers={"Authorization": f"token {self.token}"})
            info = json.loads(resp.body)
        except (HTTPClientError, OSError) as exc:
            log.warning("cannot read %s's groups from the hub: %s", name, exc)
            return hit[1] if hit else {}
        self.cache[name] = (time.monotonic(), info)
        return info


def handlers() -> list[tuple]:
    from echoes_lab.hub.services.commons.bulk import BulkHandler
    from echoes_lab.hub.services.commons.changes import ChangesHandler
    from echoes_lab.hub.services.commons.viewer import handlers as viewer_handlers

    ann = r"annotations/([A-Za-z0-9_-]+)"
    return [
        (r"", HomeHandler),
        (r"annotations/", ContainerHandler),
        (r"bulk", BulkHandler),  # many annotations, one transaction (bulk.py)
        (ann, AnnotationHandler),
        (ann + r"/versions", VersionsHandler),
        (ann + r"/versions/(\d+)", VersionsHandler),
        (ann + r"/(restore|hidden)", AdminHandler),
        (r"search", SearchHandler),
        (r"export/iiif", IIIFExportHandler),
        (r"export/crate", CrateExportHandler),
        (r"export/mine", MineExportHandler),  # a person's own contributions (JSON-LD)
        (r"moderation", ModerationHandler),  # the public moderation log
        (r"imports", ImportsHandler),  # imports from other servers: state, run now
        (r"changes", ChangesHandler),  # IIIF Change Discovery feed (changes.py)
        (r"changes/(\d+)", ChangesHandler),
        (r"actors/", ActorsHandler),
        (r"actors/([A-Za-z0-9_-]+)", ActorsHandler),
        (r"people/([^/]+)", PersonHandler),
        (r"events", EventsHandler),  # public changes as Server-Sent Events (events.py)
        *viewer_handlers(),  # the IIIF viewer page and its assets (viewer.py)
    ]


class CommonsService(Service):
    """The W3C Web Annotation server of the hub (see :mod:`echoes_lab.hub.services.commons`)."""

    service_name = "commons"
    name = "echoes-commons"
    store: Store | None = None

    def handlers(self) -> list[tuple]:
        return handlers()

    def metrics_collectors(self) -> list:
        from echoes_lab.hub.services.commons.metrics import collectors

        return collectors(self)

    def tornado_settings(self) -> dict:
        s = self.settings
        # opened here, before serving: a database that cannot be opened stops the start
        self.store = Store(db_url(s), clock=self.utcnow)
        hub_users = HubUsers(self.hub_api_url, self.api_token,
                             max_age=min(s.services.auth_cache_age,
                                         s.workshops.auth_refresh_age))
        from echoes_lab.hub.services.commons.imports import Importer, sources_of

        events = Events()
        base = public_base(s) or f"http://127.0.0.1:{s.hub.port}{self.prefix}"
        self.importer = Importer(self.store, sources_of(s), container=f"{base}annotations/",
                                 clock=self.utcnow, changed=events.changed)
        return {"store": self.store, "page_size": s.commons.page_size,
                "licence": s.commons.licence, "public_base": public_base(s),
                "hub_users": hub_users, "events": events, "importer": self.importer}

    async def start_tasks(self) -> None:
        self.importer.start()  # the scheduled imports from other servers (imports.py)

    async def stop_tasks(self) -> None:
        importer = getattr(self, "importer", None)
        if importer is not None:
            await importer.stop()
        if self.store is not None:
            self.store.close()
