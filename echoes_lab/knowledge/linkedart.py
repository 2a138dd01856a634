"""Collection records as Linked Art (CIDOC-CRM in JSON-LD), built with ``cromulent``.

A row of the records schema (:mod:`echoes_lab.collections.records`) becomes a
``HumanMadeObject``; its makers become ``Person`` records and its place of creation a ``Place``.
The shapes follow the Linked Art 1.0 model and API (https://linked.art/model/,
https://linked.art/api/1.0/), and every document validates against the profile's JSON schemas
(linked-art/json-validator; ``tests/test_knowledge.py`` checks the real corpus):

========================  =====================================================================
record field              Linked Art
========================  =====================================================================
``id``                    ``identified_by`` Identifier (AccessionNumber for museum exports)
``title``                 ``identified_by`` Name classified as Primary Name (aat:300404670)
``creators``/``actors``   ``produced_by.carried_out_by`` (a role: a ``part`` of the production
                          classified by the role's name)
``date_text`` + years     ``produced_by.timespan``: ``begin_of_the_begin``/``end_of_the_end``
                          from the widened interval of :func:`echoes_lab.collections.dates.parse`,
                          the display string kept as the time-span's Display Name
``object_type``           ``classified_as`` an AAT type where the word is a known one (painting
                          aat:300033618 …), else a statement classified as Type of Work
``materials``             ``referred_to_by`` Material Statement (aat:300010358)
``dimensions``            ``referred_to_by`` Dimension Statement (aat:300435430)
``rights``                ``referred_to_by`` Rights Statement (aat:300435434)
``place``                 ``produced_by.took_place_at``
IIIF manifests            ``subject_of`` a text carried by a DigitalObject whose
                          ``access_point`` is the manifest, conforming to IIIF Presentation
========================  =====================================================================

References
----------
Linked Art, *Data model* and *API 1.0*, https://linked.art/ (CC BY 4.0).
ICOM/CIDOC, *Definition of the CIDOC Conceptual Reference Model*, version 7.1.3 (2024).
"""

from __future__ import annotations

import contextlib
import math
import re
import threading
from collections.abc import Iterable
from urllib.parse import quote

from echoes_lab.errors import DataError

#: Linked Art's JSON-LD context; documents name it, conversion to RDF uses cromulent's copy
CONTEXT = "https://linked.art/ns/v1/linked-art.json"
#: IRIs of the objects, people and places we mint, unless a base is given
DEFAULT_BASE = "urn:echoes:"
IIIF_PRESENTATION = "http://iiif.io/api/presentation"

# object-type words -> cromulent vocab class (each carries its AAT type)
_TYPES = {
    "painting": "Painting", "paintings": "Painting", "print": "Print", "prints": "Print",
    "drawing": "Drawing", "drawings": "Drawing", "photograph": "Photograph",
    "photographs": "Photograph", "photography": "Photograph", "sculpture": "Sculpture",
    "sculptures": "Sculpture", "coin": "Coin", "coins": "Coin",
}
_ACCESSION_SOURCES = ("csv:", "table:", "lido")

_lock = threading.Lock()  # cromulent's factory is module state


@contextlib.contextmanager
def _minting():
    """Hold cromulent's factory (module state) for this thread, set to mint no ids of its own:
    every entity gets ours (:func:`_made`)."""
    from cromulent import model

    with _lock:
        model.factory.auto_assign_id = False
        yield


def _slug(text: str) -> str:
    return quote(re.sub(r"\s+", "-", text.strip().lower()), safe="-._~")


def _text(value) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    try:
        import pandas as pd

        if value is pd.NA:
            return None
    except ImportError:  # pragma: no cover - pandas is a dependency
        pass
    text = str(value).strip()
    return text or None


def _year(value) -> int | None:
    text = _text(value)
    return None if text is None else int(float(text))


def _instant(year: int, end: bool) -> str:
    """A historical year as the xsd:dateTime Linked Art writes (``-0299`` is 300 BC: XSD 1.1
    counts astronomically, so 1 BC is year 0000)."""
    astro = year + 1 if year < 0 else year
    sign = "-" if astro < 0 else ""
    stamp = "12-31T23:59:59Z" if end else "01-01T00:00:00Z"
    return f"{sign}{abs(astro):04d}-{stamp}"


def person_iri(name: str, base: str = DEFAULT_BASE) -> str:
    """The IRI we give a maker known only by name (one per spelling)."""
    return f"{base}person/{_slug(name)}"


def place_iri(name: str, base: str = DEFAULT_BASE) -> str:
    return f"{base}place/{_slug(name)}"


def object_iri(source_system: str, ident: str, base: str = DEFAULT_BASE) -> str:
    return f"{base}object/{_slug(source_system or 'records')}/{quote(ident, safe='')}"


def _made(cls, iri: str, label: str, name: str | None = None):
    """A cromulent entity with our IRI: cromulent would prefix an ``urn:`` identifier with its
    own base URL, so the id is set after construction. ``name``, when given, is its Primary
    Name (Linked Art, "Names": https://linked.art/model/base/#names)."""
    from cromulent import vocab

    entity = cls(label=label)
    entity.id = iri
    if name:
        entity.identified_by = vocab.PrimaryName(content=name)
    return entity


#: the start of heritage sites' IRIs (echoes_lab.sites: place annotations and Linked Art)
SITE_BASE = "urn:echoes:site:"


def site_iri(ident, base: str = SITE_BASE) -> str:
    """The IRI of a heritage site: the register's own id, percent-encoded (RFC 3987), so that
    an id such as ``Objekt 3545`` (canton of Zürich) still makes an IRI."""
    return f"{base}{quote(str(ident), safe='')}"


def site_to_linked_art(row, base: str = SITE_BASE) -> dict:
    """A heritage site (a row of :mod:`echoes_lab.sites`' schema) as a Linked Art ``Place``.

    Its name is the Primary Name, the register's id an ``Identifier``, designation and
    protection a Description statement, and its geometry (WGS84) ``defined_by`` as WKT, as the
    Linked Art model writes a place's extent (Linked Art, "Place",
    https://linked.art/model/place/; CIDOC CRM 7.1.3, P168 place is defined by).

    Raises
    ------
    DataError
        The site has no ``id``.
    """
    from cromulent import model, vocab

    r, ident = _row_with_id(row, "site", "name", "a Linked Art place needs one; read the "
                            "inventory with id='<the column of register numbers>'")
    name = _text(r.get("name"))
    geometry = r.get("geometry")
    with _minting():
        place = _made(model.Place, site_iri(ident, base), name or ident, name)
        place.identified_by = model.Identifier(content=ident)
        said = "; ".join(f"{k}: {v}" for k in ("designation", "protection")
                         if (v := _text(r.get(k))))
        if said:
            place.referred_to_by = vocab.Description(content=said)
        if geometry is not None and not geometry.is_empty:
            place.defined_by = geometry.wkt
        return model.factory.toJSON(place)


def _row_dict(row) -> dict:
    return row if isinstance(row, dict) else row.to_dict()


def _row_with_id(row, what: str, name_field: str, why: str) -> tuple[dict, str]:
    """The row as a dict and its ``id``; a row without one is a :class:`DataError` naming it
    (by ``name_field``) and saying ``why`` it needs one."""
    r = _row_dict(row)
    ident = _text(r.get("id"))
    if ident is None:
        msg = f"{what} {r.get(name_field)!r} has no 'id': {why}"
        raise DataError(msg)
    return r, ident


def record_to_linked_art(row, base: str = DEFAULT_BASE) -> dict:
    """One record (a row of ``read_records``) as a Linked Art ``HumanMadeObject`` document.

    Parameters
    ----------
    row
        A mapping or a pandas row with the records schema's fields; parsed dates
        (``date_earliest_widened`` …, from ``df.records.parse_dates()``) are used when present.
    base
        The start of the IRIs minted for objects, people and places.

    Raises
    ------
    DataError
        The record has no ``id``.
    """
    from cromulent import model, vocab

    r, ident = _row_with_id(row, "record", "title", "Linked Art needs an identifier for every "
                            "object; give the column holding accession numbers as 'id'")
    source = _text(r.get("source_system")) or "records"
    title = _text(r.get("title"))
    with _minting():
        kind = _TYPES.get((_text(r.get("object_type")) or "").lower())
        cls = getattr(vocab, kind) if kind else model.HumanMadeObject
        obj = _made(cls, object_iri(source, ident, base), title or ident, title)
        number = (vocab.AccessionNumber(content=ident) if source.startswith(_ACCESSION_SOURCES)
                  else model.Identifier(content=ident))
        obj.identified_by = number
        otype = _text(r.get("object_type"))
        if otype and not kind:
            statement = model.LinguisticObject(content=otype)
            statement.classified_as = model.Type(ident="http://vocab.getty.edu/aat/300435443",
                                                 label="Type of Work")
            obj.referred_to_by = statement
        for field, statement_cls in (("materials", vocab.MaterialStatement),
                                     ("dimensions", vocab.DimensionStatement),
                                     ("rights", vocab.RightsStatement)):
            value = _text(r.get(field))
            if value:
                obj.referred_to_by = statement_cls(content=value)
        production = _production(r, base, model, vocab)
        if production is not None:
            obj.produced_by = production
        manifest = _manifest(r)
        if manifest:
            page = model.LinguisticObject(label="IIIF manifest")
            carrier = model.DigitalObject(label="IIIF manifest")
            carrier.access_point = model.DigitalObject(ident=manifest)
            carrier.conforms_to = model.InformationObject(ident=IIIF_PRESENTATION)
            page.digitally_carried_by = carrier
            obj.subject_of = page
        return model.factory.toJSON(obj)


def _production(r: dict, base: str, model, vocab):
    actors = [a for a in (r.get("actors") or []) if isinstance(a, dict) and _text(a.get("name"))]
    if not actors:
        actors = [{"name": n, "role": ""} for n in (r.get("creators") or []) if _text(n)]
    display = _text(r.get("date_text"))
    lo = _year(r.get("date_earliest_widened", r.get("date_earliest")))
    hi = _year(r.get("date_latest_widened", r.get("date_latest")))
    lo = lo if lo is not None else _year(r.get("date_earliest"))
    hi = hi if hi is not None else _year(r.get("date_latest"))
    place = _text(r.get("place"))
    if not (actors or display or lo is not None or hi is not None or place):
        return None
    prod = model.Production()
    parts: dict[str, object] = {}  # one part of the production per role, as Linked Art does
    for actor in actors:
        name = _text(actor["name"])
        person = _made(model.Person, person_iri(name, base), name)
        role = _text(actor.get("role"))
        if role:
            if role not in parts:
                parts[role] = model.Production()
                parts[role].classified_as = _made(model.Type, f"{base}role/{_slug(role)}", role)
                prod.part = parts[role]
            parts[role].carried_out_by = person
        else:
            prod.carried_out_by = person
    if display or lo is not None or hi is not None:
        span = model.TimeSpan()
        if lo is not None:
            span.begin_of_the_begin = _instant(lo, end=False)
        if hi is not None:
            span.end_of_the_end = _instant(hi, end=True)
        if display:
            span.identified_by = vocab.DisplayName(content=display)
        prod.timespan = span
    if place:
        prod.took_place_at = _made(model.Place, place_iri(place, base), place)
    return prod


def _manifest(r: dict) -> str | None:
    if not str(r.get("source_system") or "").startswith("iiif"):
        return None
    original = r.get("original")
    if isinstance(original, dict):
        ident = original.get("id") or original.get("@id")
        return ident if isinstance(ident, str) and ident.startswith("http") else None
    return None


def people(records: Iterable, base: str = DEFAULT_BASE) -> list[dict]:
    """The makers named in records, one Linked Art ``Person`` document each (by spelling)."""
    from cromulent import model

    names: dict[str, None] = {}
    for row in records:
        r = _row_dict(row)
        for a in r.get("actors") or []:
            if isinstance(a, dict) and _text(a.get("name")):
                names[_text(a["name"])] = None
        for n in r.get("creators") or []:
            if _text(n):
                names[_text(n)] = None
    out = []
    with _minting():
        for name in names:
            out.append(model.factory.toJSON(_made(model.Person, person_iri(name, base), name,
                                                  name)))
    return out


def places(records: Iterable, base: str = DEFAULT_BASE) -> list[dict]:
    """The places of creation named in records, one Linked Art ``Place`` document each."""
    from cromulent import model

    names = dict.fromkeys(p for p in (_text(_row_dict(r).get("place")) for r in records) if p)
    out = []
    with _minting():
        for name in names:
            out.append(model.factory.toJSON(_made(model.Place, place_iri(name, base), name,
                                                  name)))
    return out


def records_to_linked_art(df, base: str = DEFAULT_BASE) -> list[dict]:
    """Every record of a records table as Linked Art: the objects, then their people and
    places (dates parsed first when the table has not been)."""
    if "date_parsed" not in df.columns and "date_text" in df.columns:
        df = df.records.parse_dates()
    rows = [r for _, r in df.iterrows()]
    return ([record_to_linked_art(r, base) for r in rows] + people(rows, base)
            + places(rows, base))
