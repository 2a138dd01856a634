"""The digital commons in a notebook: annotate heritage objects, find, review and reply.

Every contribution is a W3C Web Annotation (https://www.w3.org/TR/annotation-model/) kept by
the hub's ``commons`` service with its full history, its author and its licence:

>>> from echoes_lab import commons
>>> page = commons.target.region("https://iiif.example/ms1/canvas/p3", 120, 40, 300, 90)
>>> a = commons.annotate(page, "Smalt, discoloured", motivation="describing",
...                      visibility="public")                          # doctest: +SKIP
>>> ocr = commons.actor("tesseract", "5.3.0", run="runs/2026-05-01/ro-crate-metadata.json")
>>> ocr.annotate(page, "ANNO 1642", motivation="transcribing", confidence=0.91)  # doctest: +SKIP
>>> commons.review(a["id"], "Agreed: the blue has turned grey", verdict="agree")  # doctest: +SKIP
>>> commons.annotations(canvas="https://iiif.example/ms1/canvas/p3")  # doctest: +SKIP
>>> lines = [commons.build(page, t, motivation="transcribing") for t in ocr_lines]  # doctest: +SKIP
>>> ocr.contribute(lines)   # thousands at once, in batches, with a progress bar  # doctest: +SKIP

**Where the annotations go.** In a lab started by the hub, the commons service
(``ECHOES_COMMONS_URL``, set by the hub) with the server's own token
(``JUPYTERHUB_API_TOKEN``, which carries the scope ``access:services!service=commons``):
annotations are signed with your hub name and shared as their ``visibility`` says
(``private``, ``group:<hub group>`` or ``public``). **Outside a hub** (a laptop, CI, Binder)
there is no service: the same calls use a *local commons*, a SQLite file
(``$ECHOES_COMMONS_DB``, else ``commons.sqlite`` in the current folder) with the same tables,
history and rules, signed with your login name; nothing is shared. :func:`where` says which
one is in use; :func:`connect` chooses explicitly.

The targets heritage work needs are built by the helpers of :class:`target`: an object
record, a IIIF canvas region, a climate sensor's time range, a region or pixel class of a
spectral cube, a catalogue dataset.

The rules and the storage are this package's own and the hub's commons service builds on
them: :mod:`echoes_lab.commons.model` (the data model: what the server sets, what an
annotation is found by) and :mod:`echoes_lab.commons.store` (SQLAlchemy tables on SQLite or
PostgreSQL, loaded on first use of a local commons).
"""

from __future__ import annotations

import getpass
import json
import logging
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from echoes_lab.errors import EchoesError

log = logging.getLogger(__name__)

CONTEXT = "http://www.w3.org/ns/anno.jsonld"
MEDIA_FRAGS = "http://www.w3.org/TR/media-frags/"
LD = {"Content-Type": "application/ld+json", "Accept": "application/ld+json"}


class CommonsError(EchoesError):
    """The commons refused a request or cannot be reached (the message says why and what to do)."""


# -- targets ------------------------------------------------------------------------------------

def _is_iri(value: str) -> bool:
    return isinstance(value, str) and ":" in value.split("/")[0]


class target:  # noqa: N801  (a namespace of functions, read as ``commons.target.region``)
    """Targets heritage work needs, as Web Annotation resources (Data Model §3.2, §4)."""

    @staticmethod
    def record(record, base: str | None = None) -> dict:
        """An object record: an IRI, or a record (a row of ``read_records``) with an ``id``.

        An identifier that is not an IRI (an accession number) is made one under ``base``,
        the collection's own address for its records (e.g. ``https://museum.example/object/``).
        """
        ident = record if isinstance(record, str) else (
            record.get("iri") or record.get("url") or record.get("id"))
        if not _is_iri(str(ident)):
            if not base:
                msg = (f"object record {ident!r} has no IRI: give base= (the collection's "
                       "address for its records, e.g. https://museum.example/object/)")
                raise CommonsError(msg)
            ident = base + quote(str(ident))
        return {"id": str(ident), "type": "Dataset"}

    @staticmethod
    def region(canvas: str, x: int, y: int, w: int, h: int, manifest: str | None = None) -> dict:
        """A region of a IIIF canvas (or image): ``SpecificResource`` + ``FragmentSelector``
        ``xywh=`` (Media Fragments 1.0 §4.2.2, in the canvas's pixels), ``source`` the canvas."""
        source: dict[str, Any] = {"id": canvas, "type": "Canvas"}
        if manifest:
            source["partOf"] = [{"id": manifest, "type": "Manifest"}]
        return {"type": "SpecificResource", "source": source,
                "selector": {"type": "FragmentSelector", "conformsTo": MEDIA_FRAGS,
                             "value": f"xywh={int(x)},{int(y)},{int(w)},{int(h)}"}}

    @staticmethod
    def sensor(sensor: str, start, end) -> dict:
        """A time range of a climate sensor's record: Media Fragments wall-clock time
        ``t=clock:START,END`` (Media Fragments 1.0 §4.2.1, ISO 8601 UTC)."""
        def stamp(t) -> str:
            t = t if isinstance(t, datetime) else datetime.fromisoformat(str(t))
            t = t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)
            return t.strftime("%Y-%m-%dT%H:%M:%SZ")

        return {"type": "SpecificResource", "source": {"id": sensor, "type": "Dataset"},
                "selector": {"type": "FragmentSelector", "conformsTo": MEDIA_FRAGS,
                             "value": f"t=clock:{stamp(start)},{stamp(end)}"}}

    @staticmethod
    def cube(dataset: str, x: int, y: int, w: int, h: int, label: str | None = None) -> dict:
        """A region of a spectral image cube (pixels; ``label`` names a pixel class in it)."""
        iri = dataset if _is_iri(dataset) else target.dataset(dataset)["id"]
        res = {"type": "SpecificResource", "source": {"id": iri, "type": "Dataset"},
               "selector": {"type": "FragmentSelector", "conformsTo": MEDIA_FRAGS,
                            "value": f"xywh={int(x)},{int(y)},{int(w)},{int(h)}"}}
        if label:
            res["scope"] = label
        return res

    @staticmethod
    def dataset(name: str) -> dict:
        """A dataset of the catalogue, named by a ``tag:`` IRI (RFC 4151) that stays the same
        wherever the dataset is mirrored."""
        return {"id": f"tag:echoes-lab.eu,2026:dataset/{quote(name)}", "type": "Dataset"}


def _body(body, purpose: str | None = None) -> list | dict | None:
    if body is None or isinstance(body, dict):
        return body
    if isinstance(body, list):
        return [_body(b) for b in body]
    out = {"type": "TextualBody", "value": str(body), "format": "text/plain"}
    if purpose:
        out["purpose"] = purpose
    return out


def build(target_, body=None, *, motivation: str = "commenting", visibility: str = "private",
          licence: str | None = None, tags=(), confidence: float | None = None,
          **extra) -> dict:
    """The Web Annotation JSON for :func:`annotate` (without the parts the commons sets)."""
    bodies = _body(body)
    bodies = [] if bodies is None else (bodies if isinstance(bodies, list) else [bodies])
    bodies += [{"type": "TextualBody", "value": t, "purpose": "tagging"} for t in tags]
    ann = {"@context": CONTEXT, "type": "Annotation", "motivation": motivation,
           "target": target_, "visibility": visibility, **extra}
    if bodies:
        ann["body"] = bodies[0] if len(bodies) == 1 else bodies
    if licence:
        ann["rights"] = licence
    if confidence is not None:
        ann["confidence"] = float(confidence)
    return ann


# -- the two back ends -----------------------------------------------------------------------

class _Remote:
    """The hub's commons service over HTTP, with the lab's own hub token."""

    def __init__(self, url: str, token: str):
        import requests

        self.url = url if url.endswith("/") else url + "/"
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"token {token}"

    def _check(self, r):
        if r.status_code >= 400:
            try:
                message = r.json().get("message", r.text)
            except ValueError:
                message = r.text[:300]
            msg = f"the commons answered {r.status_code}: {message}"
            raise CommonsError(msg)
        return r

    def post(self, ann: dict) -> dict:
        return self._check(self.http.post(self.url + "annotations/", json=ann, headers=LD,
                                          timeout=60)).json()

    def get(self, iri: str) -> dict:
        return self._check(self.http.get(self._iri(iri), headers=LD, timeout=60)).json()

    def put(self, iri: str, ann: dict, etag: str | None = None) -> dict:
        headers = {**LD, **({"If-Match": etag} if etag else {})}
        return self._check(self.http.put(self._iri(iri), json=ann, headers=headers,
                                         timeout=60)).json()

    def delete(self, iri: str) -> None:
        self._check(self.http.delete(self._iri(iri), timeout=60))

    def history(self, iri: str) -> list[dict]:
        return self._check(self.http.get(self._iri(iri) + "/versions", timeout=60)
                           ).json()["first"]["items"]

    def search(self, **filters) -> list[dict]:
        page = self._check(self.http.get(self.url + "search", params=filters, headers=LD,
                                         timeout=60)).json().get("first")
        items = []
        while page:
            items += page["items"]
            nxt = page.get("next")
            page = self._check(self.http.get(nxt, timeout=60)).json() if nxt else None
        return items

    def add_actor(self, name: str, version: str, homepage: str | None) -> dict:
        body = {"name": name, "version": version, **({"homepage": homepage} if homepage else {})}
        return self._check(self.http.post(self.url + "actors/", json=body, timeout=60)).json()

    #: bytes a request may carry: the hub services' default ``max_body_size`` (1 MiB), less
    #: room for the headers
    max_bytes = 1_000_000

    def post_batch(self, items: list[dict], key: str, patience: float = 300) -> list[dict]:
        """One batch to ``bulk`` as NDJSON, in requests of at most :attr:`max_bytes`.

        A request is sent again with the same ``Idempotency-Key`` while the service is away
        (connection refused, 502/503/504: the hub restarts it after a crash), so a request the
        service stored before its answer was lost is not stored twice. The split depends only
        on the items, so sending the same batch again gives the same keys.
        """
        from concurrent.futures import ThreadPoolExecutor

        # two requests in flight: one is sent and parsed while the service stores the other;
        # each is sent as soon as its lines are encoded (encoding a whole batch first kept the
        # service waiting for a twentieth of a 20,000-annotation bulk)
        sent = []
        with ThreadPoolExecutor(2) as pool:
            for first, body, part_key in self._parts(items, key):
                sent.append((first, pool.submit(self._send, body, part_key, patience)))
            answers = [(first, future.result()) for first, future in sent]
        return [{**r, "index": first + r["index"]} for first, got in answers for r in got]

    def _parts(self, items: list[dict], key: str):
        """``(index of the first item, NDJSON body, Idempotency-Key)`` of each request."""
        import orjson

        body, first, size, n = [], 0, 0, 0
        for i, item in enumerate(items):
            # orjson as the service reads it; keys that are not strings are written as
            # strings, as the json module does
            line = orjson.dumps(item, option=orjson.OPT_NON_STR_KEYS)
            if body and size + len(line) >= self.max_bytes:
                yield first, b"\n".join(body), f"{key}.{n}"
                body, first, size, n = [], i, 0, n + 1
            body.append(line)
            size += len(line) + 1
        if body:
            yield first, b"\n".join(body), f"{key}.{n}"

    def _send(self, body: bytes, key: str, patience: float) -> list[dict]:
        import time

        import requests

        headers = {"Content-Type": "application/x-ndjson", "Idempotency-Key": key}
        deadline, wait = time.monotonic() + patience, 0.5
        while True:
            try:
                r = self.http.post(self.url + "bulk", data=body, headers=headers, timeout=300)
                if r.status_code not in (409, 502, 503, 504):
                    return self._check(r).json()["items"]
                problem = f"{r.status_code} {r.text[:200]}"
            except requests.ConnectionError as exc:
                problem = str(exc)
            if time.monotonic() > deadline:
                msg = (f"the commons did not take a batch for {patience:.0f} s ({problem}); "
                       "call contribute again with the same key: what was stored is found, "
                       "not stored twice")
                raise CommonsError(msg)
            time.sleep(wait)  # back off while the service restarts
            wait = min(wait * 2, 5)

    def _iri(self, iri: str) -> str:
        return iri if iri.startswith(("http://", "https://")) else self.url + "annotations/" + iri


class _Local:
    """A commons in a SQLite file, for work outside a hub: the same rules, nothing shared."""

    def __init__(self, path: Path, user: str):
        from echoes_lab.commons.store import Store, Viewer

        self.path = Path(path).resolve()
        self.user = user
        self.base = self.path.as_uri() + "/"
        self.store = Store(f"sqlite:///{self.path}")
        self.viewer = Viewer(user, admin=True)

    def _prepare(self, ann: dict, iri: str, actor=None, previous=None) -> dict:
        from echoes_lab.commons.model import CC_BY, AnnotationError, prepare

        run = ann.get("generator", {}).get("homepage") if isinstance(ann.get("generator"),
                                                                      dict) else None
        try:
            return prepare(ann, iri=iri, user=self.user, display=self.user, base=self.base,
                           now=datetime.now(UTC), licence=CC_BY, actor=actor, run=run,
                           previous=previous)
        except AnnotationError as exc:
            raise CommonsError(str(exc)) from None

    def _actor_of(self, ann: dict) -> dict | None:
        gen = ann.get("generator")
        gid = gen.get("id") if isinstance(gen, dict) else gen
        if not gid:
            return None
        actor = self.store.actor(str(gid).rsplit("/", 1)[-1])
        if actor is None or actor["owner"] != self.user:
            msg = f"'generator' {gid!r} is not one of your actors"
            raise CommonsError(msg)
        return actor

    def _id(self, iri: str) -> str:
        return iri.rsplit("/", 1)[-1]

    def _render(self, rec) -> dict:
        return {**rec.data, "visibility": rec.visibility}

    def post(self, ann: dict) -> dict:
        from echoes_lab.commons.store import StoreError, new_id

        ann_id = new_id()
        actor = self._actor_of(ann)
        data = self._prepare(ann, f"{self.base}annotations/{ann_id}", actor=actor)
        try:
            rec = self.store.create(ann_id, self.user, data,
                                    visibility=ann.get("visibility", "private"), actor=actor)
        except StoreError as exc:
            raise CommonsError(str(exc)) from None
        return self._render(rec)

    def get(self, iri: str) -> dict:
        rec = self.store.get(self._id(iri))
        if rec is None or rec.deleted is not None:
            msg = f"no annotation {iri} in the local commons {self.path}"
            raise CommonsError(msg)
        return self._render(rec)

    def put(self, iri: str, ann: dict, etag: str | None = None) -> dict:
        rec = self.store.get(self._id(iri))
        if rec is None:
            msg = f"no annotation {iri}"
            raise CommonsError(msg)
        actor = self.store.actor(rec.actor_id) if rec.actor_id else None
        data = self._prepare(ann, rec.data["id"], actor=actor, previous=rec.data)
        return self._render(self.store.update(rec.id, self.user, data,
                                              visibility=ann.get("visibility")))

    def delete(self, iri: str) -> None:
        self.store.delete(self._id(iri), self.user)

    def history(self, iri: str) -> list[dict]:
        return [{**v["data"], "action": v["action"], "by": v["by"]}
                for v in self.store.versions(self._id(iri))]

    def search(self, **filters) -> list[dict]:
        if "canvas" in filters:
            filters["source"] = filters.pop("canvas")
        _, recs = self.store.search(self.viewer, limit=None, count=False, **filters)
        return [self._render(r) for r in recs]

    def post_batch(self, items: list[dict], key: str) -> list[dict]:
        from echoes_lab.commons.store import StoreError, check_visibility, new_id

        results, todo, actors = [], [], {}
        for i, ann in enumerate(items):
            try:
                ann_id = new_id()
                gen = json.dumps(ann.get("generator"), sort_keys=True)
                actor = actors[gen] = actors[gen] if gen in actors else self._actor_of(ann)
                visibility = check_visibility(ann.get("visibility", "private"))
                data = self._prepare(ann, f"{self.base}annotations/{ann_id}", actor=actor)
            except (CommonsError, StoreError) as exc:
                results.append({"index": i, "status": 400, "error": str(exc)})
                continue
            results.append({"index": i})
            todo.append({"id": ann_id, "owner": self.user, "data": data, "actor": actor,
                         "visibility": visibility, "key": f"{key}#{i}", "result": results[-1]})
        for item, (ann_id, created) in zip(todo, self.store.create_many(todo), strict=True):
            item["result"].update(status=201 if created else 200,
                                  id=f"{self.base}annotations/{ann_id}")
        return results

    def add_actor(self, name: str, version: str, homepage: str | None) -> dict:
        actor = self.store.add_actor(self.user, name, version, homepage)
        return {"id": f"{self.base}actors/{actor['id']}", "type": "Software", "name": name,
                "version": version}


_current: _Remote | _Local | None = None


def connect(url: str | None = None, token: str | None = None, local: str | Path | None = None):
    """Choose the commons the other functions use, and return it.

    With no arguments: the hub's service when ``ECHOES_COMMONS_URL`` and
    ``JUPYTERHUB_API_TOKEN`` are set (a lab started by the hub), else a local commons in
    ``$ECHOES_COMMONS_DB`` or ``./commons.sqlite``. ``local=PATH`` forces a local file.
    """
    global _current
    url = url or os.environ.get("ECHOES_COMMONS_URL")
    token = token or os.environ.get("JUPYTERHUB_API_TOKEN")
    if local is None and url and token:
        _current = _Remote(url, token)
    else:
        path = local or os.environ.get("ECHOES_COMMONS_DB") or "commons.sqlite"
        user = os.environ.get("JUPYTERHUB_USER") or getpass.getuser()
        _current = _Local(Path(path), user)
        log.info("no hub commons here: using the local commons %s", _current.path)
    return _current


def _commons():
    return _current or connect()


def where() -> str:
    """The address of the commons in use (the hub service's URL, or the local file)."""
    c = _commons()
    return c.url if isinstance(c, _Remote) else str(c.path)


# -- the verbs ----------------------------------------------------------------------------------

def annotate(target, body=None, motivation: str = "commenting", visibility: str = "private",
             licence: str | None = None, tags=(), confidence: float | None = None,
             **extra) -> dict:
    """Record an annotation on ``target``; returns it as the commons keeps it.

    Parameters
    ----------
    target
        An IRI or a target from :class:`target` (a canvas region, a record, a sensor range…).
    body
        Text (becomes a ``TextualBody``), a body object, or a list of them.
    motivation
        One of the data model's motivations (§3.3.5): ``commenting``, ``describing``,
        ``classifying``, ``identifying``, ``tagging``, ``assessing``, ``replying``… or
        ``transcribing``.
    visibility
        ``private`` (default), ``group:<hub group>`` or ``public``.
    licence
        A licence IRI; default: the deployment's (CC BY 4.0).
    tags
        Words added as ``tagging`` bodies.
    confidence
        A model's confidence in the claim (0–1), kept with the annotation.
    """
    return _commons().post(build(target, body, motivation=motivation, visibility=visibility,
                                 licence=licence, tags=tags, confidence=confidence, **extra))


def contribute(annotations: list[dict], *, batch: int = 2000, key: str | None = None,
               progress: bool = True) -> list[dict]:
    """Send many annotations (made with :func:`build`) at once: a bulk contribution.

    They go in batches of ``batch``; each batch is checked item by item and stored in one
    transaction by the commons (``POST bulk``), and a batch whose answer was lost is sent again
    without being stored twice (each item has an idempotency key ``<key>-<batch>#<index>``).

    Parameters
    ----------
    annotations
        Web Annotations as :func:`build` makes them (a ``generator`` names your actor; see
        :meth:`Actor.contribute`).
    batch
        Annotations per batch (the progress bar's step; a hub request carries at most 1 MB,
        so a large batch goes in several requests).
    key
        Names this contribution; calling again with the same key after an interruption
        stores only what was not stored yet. Default: a new random key.
    progress
        Show a tqdm progress bar.

    Returns
    -------
    list of dict
        One result per annotation, in order: ``{"index", "status", "id"}`` (201 stored, 200
        stored before under the same key) or ``{"index", "status", "error"}`` with the reason;
        invalid annotations do not stop the others.
    """
    import uuid

    from tqdm.auto import tqdm

    if batch < 1:
        msg = f"batch={batch}: give a positive number of annotations per batch"
        raise CommonsError(msg)
    items = list(annotations)
    key = key or uuid.uuid4().hex
    commons, results = _commons(), []
    with tqdm(total=len(items), unit="annotation", disable=not progress,
              desc="commons") as bar:
        for n, start in enumerate(range(0, len(items), batch)):
            part = items[start:start + batch]
            for r in commons.post_batch(part, f"{key}-{n}"):
                results.append({**r, "index": start + r["index"]})
            bar.update(len(part))
    failed = [r for r in results if "error" in r]
    if failed:
        log.warning("%d of %d annotations were refused; the first: item %d, %s", len(failed),
                    len(results), failed[0]["index"], failed[0]["error"])
    return results


def get(iri: str) -> dict:
    """One annotation (by IRI or id)."""
    return _commons().get(iri)


def history(iri: str) -> list[dict]:
    """Every version of an annotation, oldest first (each with ``action`` and ``by``)."""
    return _commons().history(iri)


def update(annotation: dict, **changes) -> dict:
    """Change your annotation (a new version; the previous one stays in its history)."""
    return _commons().put(annotation["id"], {**annotation, **changes})


def delete(iri: str) -> None:
    """Delete your annotation (it answers 410 from then on; admins can restore it)."""
    _commons().delete(iri)


def review(iri: str, text: str, verdict: str | None = None, visibility: str = "public") -> dict:
    """Assess an annotation (motivation ``assessing``), e.g. a model's claim.

    ``verdict`` (e.g. ``"agree"``, ``"disagree"``, ``"unsure"``) is added as a tag, so
    reviews can be counted with ``annotations(target=iri, tag="agree")``.
    """
    body = [{"type": "TextualBody", "value": text, "purpose": "assessing"}]
    if verdict:
        body.append({"type": "TextualBody", "value": verdict, "purpose": "tagging"})
    return annotate(iri, body, motivation="assessing", visibility=visibility)


def reply(iri: str, text: str, visibility: str = "public") -> dict:
    """Reply to an annotation (motivation ``replying``)."""
    return annotate(iri, _body(text, "replying"), motivation="replying", visibility=visibility)


@dataclass
class Actor:
    """A software agent you run (a model, an OCR engine), registered in the commons.

    Its annotations carry ``generator`` (this software, its version, and the run that made
    them) and ``creator`` (you, its owner).
    """

    name: str
    version: str
    run: str | None
    iri: str

    def annotate(self, target, body=None, motivation: str = "describing",
                 visibility: str = "private", confidence: float | None = None, **kw) -> dict:
        """:func:`annotate`, as this software."""
        generator = {"id": self.iri, **({"homepage": self.run} if self.run else {})}
        return annotate(target, body, motivation=motivation, visibility=visibility,
                        confidence=confidence, generator=generator, **kw)


    def contribute(self, annotations: list[dict], **kw) -> list[dict]:
        """:func:`contribute`, as this software (each annotation's ``generator`` is set)."""
        generator = {"id": self.iri, **({"homepage": self.run} if self.run else {})}
        return contribute([{**a, "generator": generator} for a in annotations], **kw)


def actor(name: str, version: str, run: str | None = None, homepage: str | None = None) -> Actor:
    """Register (or find) your software actor ``name`` ``version``.

    ``run`` links its annotations to the run that produced them: the IRI or path of the
    run's RO-Crate (``ro-crate-metadata.json`` written by :func:`echoes_lab.run_notebook`).
    """
    agent = _commons().add_actor(name, version, homepage)
    return Actor(name, version, str(run) if run else None, agent["id"])


def _selector(t) -> str | None:
    if isinstance(t, dict) and isinstance(t.get("selector"), dict):
        return t["selector"].get("value")
    return None


def _source(t):
    if isinstance(t, dict):
        src = t.get("source", t.get("id"))
        return src.get("id") if isinstance(src, dict) else src
    return t


def _texts(body, purpose: str | None = None) -> list[str]:
    bodies = body if isinstance(body, list) else [body] if body else []
    return [b.get("value", "") for b in bodies if isinstance(b, dict)
            and (b.get("purpose") == purpose if purpose else b.get("purpose") != "tagging")]


def annotations(target: str | None = None, canvas: str | None = None,
                creator: str | None = None, generator: str | None = None,
                motivation: str | None = None, tag: str | None = None,
                group: str | None = None, q: str | None = None, text: str | None = None,
                lang: str | None = None):
    """Annotations you may see, matching every criterion given, as a pandas DataFrame.

    ``target`` matches target IRIs and the sources of regions; ``canvas`` every region of one
    canvas; ``creator`` a hub name; ``generator`` a software actor's name; ``q`` a piece of
    the text; ``text`` words searched in full text, by their stems in the bodies' languages
    (``lang="fr"``: French stems only), best matches first.

    Columns: ``id``, ``created``, ``creator``, ``generator``, ``version`` (of the software),
    ``motivation``, ``target`` (the IRI or the region's source), ``selector`` (``xywh=…``),
    ``text``, ``tags``, ``confidence``, ``visibility``, ``rights`` and ``annotation`` (the
    whole JSON).
    """
    import pandas as pd

    filters = {k: v for k, v in dict(target=target, canvas=canvas, creator=creator,
                                     generator=generator, motivation=motivation, tag=tag,
                                     group=group, q=q, text=text, lang=lang).items() if v}
    rows = []
    for a in _commons().search(**filters):
        t = a.get("target")
        first = t[0] if isinstance(t, list) else t
        gen = a.get("generator") or {}
        rows.append({
            "id": a["id"], "created": pd.Timestamp(a.get("created")),
            "creator": (a.get("creator") or {}).get("nickname"),
            "generator": gen.get("name"), "version": gen.get("version"),
            "motivation": a.get("motivation"), "target": _source(first),
            "selector": _selector(first), "text": " ".join(_texts(a.get("body"))),
            "tags": _texts(a.get("body"), "tagging"), "confidence": a.get("confidence"),
            "visibility": a.get("visibility"), "rights": a.get("rights"), "annotation": a,
        })
    columns = ["id", "created", "creator", "generator", "version", "motivation", "target",
               "selector", "text", "tags", "confidence", "visibility", "rights", "annotation"]
    return pd.DataFrame(rows, columns=columns)


def show(image, frame=None, canvas: str | None = None, ax=None):
    """Draw ``image`` (an array or PIL image) with the regions of ``frame`` (from
    :func:`annotations`; default: every annotation on ``canvas``) as labelled boxes."""
    import matplotlib.patches as patches
    import matplotlib.pyplot as plt
    import numpy as np

    if frame is None and canvas:
        frame = annotations(canvas=canvas)
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 6))
    ax.imshow(np.asarray(image), cmap="gray")
    colours = {}
    for row in ([] if frame is None else frame.itertuples()):
        if not (row.selector or "").startswith("xywh="):
            continue
        x, y, w, h = (float(v) for v in row.selector[5:].split(","))
        colour = colours.setdefault(row.motivation, f"C{len(colours)}")
        ax.add_patch(patches.Rectangle((x, y), w, h, fill=False, edgecolor=colour, lw=2))
        conf = row.confidence
        known = conf is not None and conf == conf  # NaN != NaN: no confidence given
        label = row.text[:30] + (f" ({conf:.2f})" if known else "")
        ax.text(x, y - 2, label, color=colour, fontsize=8, va="bottom")
    ax.set_axis_off()
    return ax


def widget(image, canvas: str):
    """An ipywidgets panel: ``image`` with the canvas's annotations drawn on it, and a form to
    add one (a box in pixels, a text, a motivation, a visibility)."""
    import ipywidgets as w
    import matplotlib.pyplot as plt

    from echoes_lab.widgets import show_figure

    out = w.Output()
    x, y, wd, ht = (w.BoundedIntText(value=v, min=0, max=100000, description=d,
                                     layout=w.Layout(width="140px"))
                    for v, d in ((0, "x"), (0, "y"), (50, "w"), (50, "h")))
    text = w.Text(description="text", placeholder="what you see here")
    motivation = w.Dropdown(options=["commenting", "describing", "identifying", "classifying",
                                     "transcribing", "tagging"], description="motivation")
    visibility = w.Dropdown(options=["private", "public"], description="visibility")
    button = w.Button(description="Add annotation", button_style="primary")
    status = w.HTML()

    def draw(*_):
        fig, ax = plt.subplots(figsize=(8, 6))
        show(image, canvas=canvas, ax=ax)
        show_figure(out, fig)

    def add(_):
        try:
            a = annotate(target.region(canvas, x.value, y.value, wd.value, ht.value), text.value,
                         motivation=motivation.value, visibility=visibility.value)
            status.value = f"added <code>{a['id']}</code>"
        except EchoesError as exc:
            status.value = f"<b>not added</b>: {exc}"
        draw()

    button.on_click(add)
    draw()
    return w.VBox([out, w.HBox([x, y, wd, ht]), w.HBox([text, motivation, visibility]),
                   w.HBox([button, status])])
