"""The W3C Web Annotation data model as the commons uses it: pure functions, no database.

* :func:`prepare` turns what a client sent into the annotation the commons keeps: the server
  sets ``id``, ``creator`` (the hub identity), ``generator`` (a registered software actor),
  ``created``/``modified`` and the licence (``rights``); nobody can post as someone else.
* :func:`index_keys` lists what an annotation can be found by (targets and their sources,
  motivations, tags, the text of its bodies).

References: Web Annotation Data Model, W3C Recommendation 23 February 2017,
https://www.w3.org/TR/annotation-model/ (``creator``/``generator`` §3.3.2–3.3.3, selectors
§4.2, motivations §3.3.5); the protocol, https://www.w3.org/TR/annotation-protocol/.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from functools import lru_cache

from echoes_lab.errors import EchoesError

CONTEXT = "http://www.w3.org/ns/anno.jsonld"
MEDIA_TYPE = 'application/ld+json; profile="http://www.w3.org/ns/anno.jsonld"'
CC_BY = "https://creativecommons.org/licenses/by/4.0/"
CC0 = "http://creativecommons.org/publicdomain/zero/1.0/"
#: the licences a contributor may choose for an annotation: CC BY 4.0 (the default) or the CC0
#: 1.0 dedication (both as Creative Commons writes them, http or https); the deployment's own
#: default licence is accepted too
LICENCES = frozenset({CC_BY, CC_BY.replace("https:", "http:"), CC0,
                      CC0.replace("http:", "https:")})
#: the motivations of the data model (§3.3.5)
MOTIVATIONS = frozenset({
    "assessing", "bookmarking", "classifying", "commenting", "describing", "editing",
    "highlighting", "identifying", "linking", "moderating", "questioning", "replying", "tagging",
    # IIIF Presentation 3 adds these two for content on canvases
    "painting", "supplementing",
    # not in the W3C vocabulary: transcribing a text in an image, as a narrower kind of
    # "describing" (§3.3.5 allows such extensions); used by IIIF transcription tools
    "transcribing",
})
#: properties only the server sets; a client's value is replaced (or refused, see prepare)
SERVER_SET = ("id", "created", "modified", "generated")


class AnnotationError(EchoesError):
    """An annotation sent to the commons is not a valid Web Annotation (the message names the
    property and the fix), or a request tries to act as someone else."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


@lru_cache(maxsize=256)
def iso(moment: datetime) -> str:
    """An xsd:dateTime in UTC with a ``Z``, as the data model's examples write them (a naive
    time is UTC: SQLite gives back the store's UTC times without their zone)."""
    # cached: every item of a bulk batch, and every row of a page read back, carries the same
    # few moments, and strftime was a tenth of the handler's time per bulk item
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def person(name: str, display: str | None, base: str) -> dict:
    """The ``creator`` of a hub user: a Person with the hub name as ``nickname``."""
    return {"id": f"{base}people/{name}", "type": "Person", "nickname": name,
            "name": display or name}


def software(actor: dict, base: str, homepage: str | None = None) -> dict:
    """The ``generator`` of a registered actor: a Software agent with its version and the
    link to the run (the RO-Crate) that produced the annotation, when one is given."""
    agent = {"id": f"{base}actors/{actor['id']}", "type": "Software", "name": actor["name"],
             "version": actor["version"]}
    if homepage or actor.get("homepage"):
        agent["homepage"] = homepage or actor["homepage"]
    return agent


def _as_list(value) -> list:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _same_agent(given, expected: dict) -> bool:
    """Whether a client's ``creator`` is the server's (a PUT sends back what GET returned)."""
    for agent in _as_list(given):
        if isinstance(agent, str):
            if agent != expected["id"]:
                return False
        elif isinstance(agent, dict):
            if agent.get("id", expected["id"]) != expected["id"]:
                return False
            if agent.get("nickname", expected["nickname"]) != expected["nickname"]:
                return False
        else:
            return False
    return True


def check(data) -> None:
    """Refuse what is not an annotation: no object, no Annotation type, no target."""
    if not isinstance(data, dict):
        msg = "the request body must be one JSON object (a Web Annotation)"
        raise AnnotationError(msg)
    types = _as_list(data.get("type"))
    if "Annotation" not in types and "oa:Annotation" not in types:
        msg = "'type' must be \"Annotation\" (Web Annotation Data Model §3.1)"
        raise AnnotationError(msg)
    if not data.get("target"):
        msg = "'target' is required: the IRI (or a SpecificResource) of what is annotated"
        raise AnnotationError(msg)
    for m in _as_list(data.get("motivation")):
        if not isinstance(m, str) or (m not in MOTIVATIONS and ":" not in m):
            msg = (f"unknown motivation {m!r}: use one of {', '.join(sorted(MOTIVATIONS))} "
                   "or an IRI")
            raise AnnotationError(msg)


def prepare(data: dict, *, iri: str, user: str, display: str | None, base: str, now: datetime,
            licence: str, actor: dict | None = None, run: str | None = None,
            previous: dict | None = None, copy_data: bool = True) -> dict:
    """The annotation the commons keeps for what a client sent.

    Parameters
    ----------
    data
        The client's JSON (already parsed).
    iri
        The annotation's IRI (new, or the existing one for an update).
    user, display
        The hub name and display name of the signed-in person; they become ``creator``.
    base
        The service's public IRI ending in ``/`` (agents' IRIs are under it).
    licence
        The deployment's default licence IRI, used when the client gives no ``rights``.
    actor
        A software actor the user owns; then ``generator`` is that Software agent, with
        ``run`` (a link to the run's RO-Crate) as its ``homepage``.
    previous
        The stored annotation when this is an update: ``created`` and the agents are kept.
    copy_data
        False when ``data`` was just parsed and nothing else holds it (a bulk request): it is
        then changed in place instead of deep-copied (a third of the time of a bulk item).

    Raises
    ------
    AnnotationError
        The JSON is not an annotation, or its ``creator``/``generator`` claim someone else
        (status 403).
    """
    check(data)
    out = copy.deepcopy(data) if copy_data else data
    for key in SERVER_SET:
        out.pop(key, None)
    out.pop("visibility", None)  # a column, put back by the service when it renders
    creator = person(user, display, base)
    if previous is not None:
        creator = previous.get("creator", creator)
    if "creator" in data and not _same_agent(data["creator"], creator):
        msg = ("'creator' is set by the commons from your hub identity; you cannot post as "
               "someone else")
        raise AnnotationError(msg, 403)
    generator = None
    if actor is not None:
        generator = software(actor, base, run)
    elif previous is not None and previous.get("generator"):
        generator = previous["generator"]
    if data.get("generator") and generator is None:
        msg = ("'generator' names a software actor: register it (POST actors/) and post with "
               "its id; the commons sets the generator itself")
        raise AnnotationError(msg, 403)
    if generator is not None and isinstance(data.get("generator"), dict):
        given = data["generator"].get("id")
        if given and given != generator["id"]:
            msg = f"'generator' {given} is not your actor {generator['id']}"
            raise AnnotationError(msg, 403)
    rights = data.get("rights")
    if rights is not None and rights not in LICENCES and rights != licence:
        msg = (f"'rights' {rights!r} is not a licence the commons takes: choose {CC_BY} "
               f"(CC BY 4.0, the default) or {CC0} (CC0 1.0)")
        raise AnnotationError(msg)
    out["@context"] = data.get("@context") or CONTEXT
    out["id"] = iri
    out["creator"] = creator
    if generator is not None:
        out["generator"] = generator
    stamp = iso(now)
    out["created"] = previous["created"] if previous else stamp
    out["modified"] = out["generated"] = stamp
    out.setdefault("rights", licence)
    # keep "@context" and "id" first, as every example in the specifications does
    return {"@context": out.pop("@context"), "id": out.pop("id"), **out}


def imported(data: dict, *, iri: str, now: datetime) -> dict:
    """The commons' copy of an annotation published by another annotation server.

    Provenance follows the data model's "Other Identities" (§3.3.6): the copy has its own
    ``id`` (so the protocol's GET, history and change feed work on it as on any annotation);
    ``via`` is the IRI of the annotation it was copied from; ``canonical`` is kept when the
    origin gives one, else set to the origin's IRI (the one IRI to cite, whichever copy is
    read). The origin's ``creator``, ``generator``, ``created``, ``modified`` and ``rights``
    stay as they are: they say who made it and under which licence, not the commons. No licence
    is invented when the origin states none. ``generated`` is when this copy was made (§3.3.3).

    Raises
    ------
    AnnotationError
        The item is not a Web Annotation (no ``id``, type or target, unknown motivation).
    """
    check(data)
    origin = data.get("id")
    if not isinstance(origin, str) or not origin.startswith(("http://", "https://")):
        msg = "an imported annotation needs its origin's 'id' (an http(s) IRI)"
        raise AnnotationError(msg)
    out = {k: v for k, v in data.items() if k not in ("@context", "id", "visibility", "via")}
    out["via"] = origin
    out["canonical"] = data.get("canonical") or origin
    out["generated"] = iso(now)
    return {"@context": data.get("@context") or CONTEXT, "id": iri, **out}


def _resource_keys(resource, keys: dict) -> None:
    for item in _as_list(resource):
        if isinstance(item, str):
            keys["target"].add(item)
        elif isinstance(item, dict):
            if isinstance(item.get("id"), str):
                keys["target"].add(item["id"])
            source = item.get("source")
            if isinstance(source, dict):
                source = source.get("id")
            if isinstance(source, str):
                keys["target"].add(source)
                keys["source"].add(source)


def _text(body) -> str:
    if isinstance(body, dict):
        if body.get("type") == "Choice" or "items" in body:
            return " ".join(_text(b) for b in _as_list(body.get("items")))
        return str(body.get("value") or "")
    return ""


def index_keys(data: dict) -> tuple[dict[str, set[str]], str]:
    """What an annotation is found by: ``{kind: values}`` and the text of its bodies.

    ``target`` holds every target IRI and every ``source`` of a SpecificResource (so a search
    for a IIIF canvas finds all regions on it), ``source`` the sources only; ``motivation``
    the annotation's and its bodies' ``purpose``; ``tag`` the values of tagging bodies.
    """
    keys: dict[str, set[str]] = {"target": set(), "source": set(), "motivation": set(),
                                 "tag": set()}
    _resource_keys(data.get("target"), keys)
    keys["motivation"].update(m for m in _as_list(data.get("motivation")) if isinstance(m, str))
    texts = []
    for body in _as_list(data.get("body")) + _as_list(data.get("bodyValue")):
        if isinstance(body, str):
            texts.append(body)
            continue
        if not isinstance(body, dict):
            continue
        purposes = [p for p in _as_list(body.get("purpose")) if isinstance(p, str)]
        keys["motivation"].update(purposes)
        if "tagging" in purposes and body.get("value"):
            keys["tag"].add(str(body["value"]))
        texts.append(_text(body))
    return keys, " ".join(t for t in texts if t)


def texts_by_language(data: dict) -> list[tuple[str | None, str]]:
    """The text of each body with its language (``language`` of a TextualBody, data model
    §3.2.4: a BCP 47 tag such as ``fr`` or ``de-CH``; None when not given)."""
    out: list[tuple[str | None, str]] = []
    for body in _as_list(data.get("body")) + _as_list(data.get("bodyValue")):
        if isinstance(body, str):
            out.append((None, body))
        elif isinstance(body, dict):
            if body.get("type") == "Choice" or "items" in body:
                out += texts_by_language({"body": body.get("items")})
                continue
            lang = body.get("language")
            lang = lang[0] if isinstance(lang, list) and lang else lang
            if body.get("value"):
                out.append((lang if isinstance(lang, str) else None, str(body["value"])))
    return out
