"""Readers of collection metadata from museum systems, each giving records in one schema.

Each reader returns a list of dicts with the keys of :data:`echoes_lab.collections.records.SCHEMA`;
:func:`echoes_lab.collections.records.read` turns them into the normalised DataFrame.

Formats and the specifications followed:

* CSV exports, through a column mapping (:data:`PRESETS` for common exports);
* Dublin Core over OAI-PMH 2.0 (``oai_dc``), harvested with Sickle, resumption tokens included,
  and OAI-PMH responses saved to files (``oai_dc`` or LIDO inside; a folder of them);
* LIDO 1.0/1.1 XML (Lightweight Information Describing Objects, ICOM-CIDOC): ``lido:term`` and
  ``skos:Concept`` terms, all creation-like events, one creator per actor with roles;
* IIIF Presentation API 2.1 and 3.0 manifests and collections (``label``/``metadata`` by common
  label sets in several languages, ``navDate``, rights);
* Europeana EDM records as returned by the Europeana Record API v2 (JSON, full and old
  full-bean forms; the provider's proxy) and as EDM RDF/XML (read with rdflib).

Machine-readable years (LIDO ``earliestDate``/``latestDate``, EDM ``edm:begin``/``edm:end``,
IIIF ``navDate``) are returned as ``machine_dates`` beside the display date.

XML is parsed with defusedxml: a document type declaration, an entity or an external
reference is refused (:class:`~echoes_lab.errors.UnsafeXMLError`), so neither "billion
laughs" nor external entities can reach the parser; Sickle's own lxml parser does not resolve
entities and never touches the network.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from xml.etree.ElementTree import Element, ParseError

import defusedxml.ElementTree as safe_et
from defusedxml import DefusedXmlException

from echoes_lab.collections.dates import parse as parse_date
from echoes_lab.errors import DataError, UnsafeXMLError

#: column mappings of common exports: schema field -> source column
PRESETS: dict[str, dict[str, str]] = {
    # the Tate's collection data on GitHub (artwork_data.csv / the flattened snapshot)
    "tate": {
        "id": "accession_number",
        "title": "title",
        "creators": "artist",
        "date_text": "date_text",
        "object_type": "classification",
        "materials": "medium",
        "dimensions": "dimensions",
        "rights": "credit_line",
    },
    # ECHOES Lab's demo export (a typical collection-management system's CSV)
    "echoes-demo": {
        "id": "Object Number",
        "title": "Title",
        "creators": "Maker",
        "date_text": "Date",
        "object_type": "Object Type",
        "materials": "Medium",
        "dimensions": "Dimensions",
        "place": "Place",
        "rights": "Rights",
    },
}

LIDO = "{http://www.lido-schema.org}"
logger = logging.getLogger(__name__)


# -- safe XML -----------------------------------------------------------------------------

def parse_xml(path: Path) -> Element:
    """Parse an XML file safely, or raise an error naming the file (and the line)."""
    try:
        return safe_et.parse(str(path), forbid_dtd=True).getroot()
    except DefusedXmlException as exc:
        msg = (
            f"{path}: refused for safety: the file declares a DTD, an entity or an external "
            f"reference ({type(exc).__name__}); export it without them"
        )
        raise UnsafeXMLError(msg) from None
    except ParseError as exc:
        line, col = exc.position
        msg = f"{path}: not well-formed XML at line {line}, column {col + 1}"
        raise DataError(msg) from None


def _texts(el: Element | None, path: str) -> list[str]:
    if el is None:
        return []
    return [
        " ".join(e.text.split())
        for e in el.iterfind(path, {"lido": LIDO[1:-1]})
        if e.text and e.text.strip()
    ]


def _first(values: list[str]) -> str | None:
    return values[0] if values else None


# -- CSV ------------------------------------------------------------------------------------

#: default guards on text tables (CSV exports, logger exports, spectra)
MAX_COLUMNS = 10_000
MAX_BYTES = 2_000_000_000


def guard_table(path: Path, max_columns: int = MAX_COLUMNS, max_bytes: int = MAX_BYTES) -> None:
    """Refuse a text table too large or too wide to be what a reader expects, before pandas
    tries to hold it (a 7 MB line of a million fields takes gigabytes to parse)."""
    path = Path(path)
    size = path.stat().st_size
    if size > max_bytes:
        msg = (
            f"{path}: {size:,} bytes, over the limit of {max_bytes:,} for a text export; "
            "split the file, or pass a larger max_bytes= if it is really one export"
        )
        raise DataError(msg)
    with path.open("rb") as fh:
        head = fh.read(4_000_000)
    first = head.split(b"\n", 1)[0]
    widest = max(first.count(s) for s in (b",", b";", b"\t")) + 1
    if widest > max_columns or (b"\n" not in head and len(head) == 4_000_000):
        msg = (
            f"{path}: line 1 has {widest:,} fields (limit {max_columns:,}); not the table "
            "this reader expects (wrong separator, or a transposed table?); pass a larger "
            "max_columns= if it really is that wide"
        )
        raise DataError(msg)



def read_csv(
    path: Path,
    mapping: dict[str, str],
    encoding: str = "utf-8",
    sep: str | None = None,
    creators_sep: str = ";",
    max_columns: int = MAX_COLUMNS,
    max_bytes: int = MAX_BYTES,
) -> list[dict]:
    """Records from a CSV export; ``mapping`` names the source column of each schema field.

    Files wider than ``max_columns`` fields or larger than ``max_bytes`` are refused with an
    error naming the limit (raise them if the file really is that large)."""
    import pandas as pd

    guard_table(path, max_columns, max_bytes)
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding=encoding, sep=sep,
                            engine="python" if sep is None else "c")
    except UnicodeDecodeError as exc:
        raw = Path(path).read_bytes()
        line = raw[: exc.start].count(b"\n") + 1
        msg = (
            f"{path}: line {line} is not valid {encoding} (byte {raw[exc.start]:#04x} at offset "
            f"{exc.start}); give the file's encoding, e.g. encoding='latin-1'"
        )
        raise DataError(msg) from None
    except pd.errors.ParserError as exc:
        msg = f"{path}: not a readable CSV ({exc})"
        raise DataError(msg) from None
    return from_frame(frame, mapping, str(path), creators_sep)


def from_frame(
    frame, mapping: dict[str, str], name: str = "the table", creators_sep: str = ";"
) -> list[dict]:
    """Records from a table already in memory (e.g. ``echoes_lab.open_dataset(...)``)."""
    missing = [f"{field} ← '{col}'" for field, col in mapping.items() if col not in frame.columns]
    if missing:
        msg = (
            f"{name}: mapped column(s) missing: {', '.join(missing)}; it has: "
            f"{', '.join(map(str, frame.columns))}"
        )
        raise DataError(msg)
    out = []
    for row in frame.astype("string").fillna("").to_dict("records"):
        rec = {field: (row[col].strip() or None) for field, col in mapping.items()}
        creators = rec.get("creators")
        rec["creators"] = (
            [c.strip() for c in creators.split(creators_sep) if c.strip()] if creators else []
        )
        rec["original"] = row
        out.append(rec)
    return out


# -- OAI-PMH Dublin Core -----------------------------------------------------------------------

def harvest_oai(
    url: str, metadata_prefix: str = "oai_dc", set_spec: str | None = None
) -> list[dict]:
    """Harvest Dublin Core records from an OAI-PMH endpoint, following resumption tokens."""
    from sickle import Sickle
    from sickle.oaiexceptions import NoRecordsMatch

    params = {"metadataPrefix": metadata_prefix, "ignore_deleted": True}
    if set_spec:
        params["set"] = set_spec
    try:
        records = list(Sickle(url, max_retries=2, timeout=60).ListRecords(**params))
    except NoRecordsMatch:
        return []
    except Exception as exc:  # network, HTTP and OAI errors all mean "harvest failed"
        msg = f"OAI-PMH harvest from {url} failed: {exc}"
        raise DataError(msg) from None
    out = []
    for r in records:
        md = r.metadata or {}
        first = lambda key, md=md: _first([v for v in md.get(key, []) if v])  # noqa: E731
        out.append({
            "id": r.header.identifier, "title": first("title"), "creators": md.get("creator", []),
            "date_text": first("date"), "object_type": first("type"),
            "materials": first("medium") or first("format"), "dimensions": first("extent"),
            "place": first("coverage") or first("spatial"), "rights": first("rights"),
            "original": {"header": r.header.identifier, "metadata": md},
        })
    return out


# -- LIDO -------------------------------------------------------------------------------------

SKOS = "{http://www.w3.org/2004/02/skos/core#}"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
#: LIDO event types whose actors made the object, and whose date is the object's date (LIDO
#: terminology labels and the usual local terms in English, German, French, Italian, Spanish)
CREATION_EVENTS = re.compile(
    r"production|creation|design|publication|manufactur|fabrication|herstellung|entwurf|"
    r"erschaffung|ver[öo]ffentlichung|druck|cr[ée]ation|conception|produzione|creazione|"
    r"progettazione|producci[oó]n|creaci[oó]n|dise[ñn]o|aufnahme|photograph|fotograf|gezeichnet|"
    r"drawing|verfasst|authored|written|gemalt|painted|hergestellt|gedruckt|printed|"
    r"lido00007|lido00012|lido00224|lido00228",
    re.I)
PREFERRED = ("preferred", "http://terminology.lido-schema.org/lido00169")


def _term(el: Element | None) -> str | None:
    """A LIDO term in either form: LIDO 1.0 ``lido:term`` or LIDO 1.1 ``skos:Concept``
    (its English ``skos:prefLabel`` first, else the first one)."""
    if el is None:
        return None
    terms = [t for t in el.iter(f"{LIDO}term") if t.text and t.text.strip()]
    if terms:
        return " ".join(terms[0].text.split())
    labels = [t for t in el.iter(f"{SKOS}prefLabel") if t.text and t.text.strip()]
    if labels:
        english = [t for t in labels if (t.get(XML_LANG) or "").startswith("en")]
        return " ".join((english or labels)[0].text.split())
    return None


def _year(text: str | None) -> int | None:
    """The signed year at the start of an ISO 8601 date ("1922-01-01", "-0300", "1939")."""
    m = re.match(r"^\s*(-?)(\d{1,4})(?!\d)", text or "")
    if not m:
        return None
    year = int(m.group(2))
    return -year if m.group(1) else year


def _actor_name(actor: Element) -> str | None:
    values = [
        v
        for v in actor.iterfind("lido:nameActorSet/lido:appellationValue", {"lido": LIDO[1:-1]})
        if v.text and v.text.strip()
    ]
    if not values:
        return None
    preferred = [v for v in values if v.get(f"{LIDO}pref") in PREFERRED]
    return " ".join((preferred or values)[0].text.split())


def _lido_record(rec: Element) -> dict:
    events = rec.findall(f".//{LIDO}eventSet/{LIDO}event")
    typed = [(e, _term(e.find(f"{LIDO}eventType")) or "") for e in events]
    making = [(e, t) for e, t in typed if CREATION_EVENTS.search(t)] or [
        (e, t) for e, t in typed if e.find(f"{LIDO}eventType") is None]
    actors, seen = [], {}
    for event, etype in making:
        for air in event.iterfind("lido:eventActor/lido:actorInRole", {"lido": LIDO[1:-1]}):
            actor = air.find(f"{LIDO}actor")
            if actor is None:
                continue
            name = _actor_name(actor)
            if not name:
                continue
            # one actor, however many alternative or display names: keyed by its identifier
            ids = [
                i.text.strip()
                for i in actor.iterfind(f"{LIDO}actorID")
                if i.text and i.text.strip()
            ]
            key = ids[0] if ids else name
            role = _term(air.find(f"{LIDO}roleActor"))
            if key in seen:
                entry = seen[key]
                if role and role not in entry["role"].split("; "):
                    entry["role"] = "; ".join(filter(None, [entry["role"], role]))
                continue
            seen[key] = entry = {
                "name": name,
                "role": role or "",
                "event": etype,
                "id": key if ids else None,
            }
            actors.append(entry)
    main = making[0][0] if making else None
    date_el = main.find(f"{LIDO}eventDate") if main is not None else None
    display = _first(_texts(date_el, "lido:displayDate"))
    lo = _year(_first(_texts(date_el, "lido:date/lido:earliestDate")))
    hi = _year(_first(_texts(date_el, "lido:date/lido:latestDate")))
    materials = _first(_texts(main, "lido:eventMaterialsTech/lido:displayMaterialsTech")) or _term(
        main.find(f".//{LIDO}materialsTech/{LIDO}termMaterialsTech") if main is not None else None)
    rights_el = rec.find(f".//{LIDO}rightsWorkSet")
    return {
        "id": _first(_texts(rec, "lido:lidoRecID")),
        "title": _first(_texts(rec, ".//lido:titleWrap/lido:titleSet/lido:appellationValue")),
        "creators": [a["name"] for a in actors],
        "actors": actors,
        "date_text": display,
        "machine_dates": (lo, hi if hi is not None else lo, "LIDO earliestDate/latestDate")
        if lo is not None or hi is not None
        else None,
        "object_type": _term(rec.find(f".//{LIDO}objectWorkType")),
        "materials": materials,
        "dimensions": _first(
            _texts(rec, ".//lido:objectMeasurementsSet/lido:displayObjectMeasurements")
        ),
        "place": _first(_texts(main, "lido:eventPlace/lido:displayPlace"))
        or _first(
            _texts(main, "lido:eventPlace/lido:place/lido:namePlaceSet/lido:appellationValue")
        ),
        "rights": _first(_texts(rights_el, "lido:creditLine"))
        or _term(rights_el.find(f"{LIDO}rightsType") if rights_el is not None else None),
        "original": safe_et.tostring(rec, encoding="unicode"),
    }


def read_lido(path: Path) -> list[dict]:
    """Records from a LIDO 1.0 or 1.1 file (one ``lido:lido`` or a ``lido:lidoWrap`` of many).

    The object's creators are the actors of its creation-like events (production, creation,
    design, publication… in any of their LIDO 1.0 ``lido:term`` or 1.1 ``skos:Concept`` forms),
    one per actor (its ``actorID``, else its preferred name) however many alternative names it
    has, with their roles in ``actors``; the machine-readable ``earliestDate``/``latestDate`` of
    that event are kept beside its display date.
    """
    root = parse_xml(path)
    records = [root] if root.tag == f"{LIDO}lido" else root.findall(f"{LIDO}lido")
    if not records:
        msg = (
            f"{path}: no lido:lido record found under <{_local(root.tag)}>; is this LIDO? "
            "(an OAI-PMH response is read with format='oai-file')"
        )
        raise DataError(msg)
    return [_lido_record(rec) for rec in records]


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


# -- saved OAI-PMH responses -----------------------------------------------------------------------

OAI = "{http://www.openarchives.org/OAI/2.0/}"
OAI_DC = "{http://www.openarchives.org/OAI/2.0/oai_dc/}"
DC = "{http://purl.org/dc/elements/1.1/}"


def read_oai_file(path: Path) -> list[dict]:
    """Records of OAI-PMH responses saved to files (``ListRecords``/``GetRecord``), or of every
    ``*.xml`` response in a folder (in name order). Metadata in ``oai_dc`` or LIDO is read;
    deleted records are skipped; an OAI error other than ``noRecordsMatch`` is raised."""
    path = Path(path)
    files = sorted(path.glob("*.xml")) if path.is_dir() else [path]
    if not files:
        msg = f"{path}: no *.xml OAI-PMH responses in this folder"
        raise DataError(msg)
    out = []
    for file in files:
        root = parse_xml(file)
        if root.tag != f"{OAI}OAI-PMH":
            msg = f"{file}: not an OAI-PMH response (root element <{_local(root.tag)}>)"
            raise DataError(msg)
        for err in root.iter(f"{OAI}error"):
            if err.get("code") == "noRecordsMatch":
                continue
            msg = (
                f"{file}: the repository answered with OAI-PMH error "
                f"'{err.get('code')}': {(err.text or '').strip()}"
            )
            raise DataError(msg)
        for rec in root.iter(f"{OAI}record"):
            header = rec.find(f"{OAI}header")
            ident = (
                _first([e.text.strip() for e in header.iter(f"{OAI}identifier") if e.text])
                if header is not None
                else None
            )
            if header is not None and header.get("status") == "deleted":
                continue
            metadata = rec.find(f"{OAI}metadata")
            payload = next(iter(metadata), None) if metadata is not None else None
            if payload is None:
                continue
            if payload.tag == f"{OAI_DC}dc":
                out.append(_dc_record(payload, ident))
            elif payload.tag == f"{LIDO}lido":
                out.append({**_lido_record(payload), "oai_identifier": ident})
            elif payload.tag == f"{LIDO}lidoWrap":
                out += [
                    {**_lido_record(r), "oai_identifier": ident}
                    for r in payload.findall(f"{LIDO}lido")
                ]
            else:
                msg = (
                    f"{file}: record {ident}: metadata format <{_local(payload.tag)}> is not "
                    "read (oai_dc and LIDO are); harvest with metadataPrefix=oai_dc or lido"
                )
                raise DataError(msg)
    return out


def _dc_record(dc: Element, ident: str | None) -> dict:
    def values(name):
        return [
            " ".join(e.text.split()) for e in dc.iter(f"{DC}{name}") if e.text and e.text.strip()
        ]

    return {"id": ident, "title": _first(values("title")), "creators": values("creator"),
            "date_text": _first(values("date")), "object_type": _first(values("type")),
            "materials": _first(values("format")), "dimensions": None,
            "place": _first(values("coverage")), "rights": _first(values("rights")),
            "original": safe_et.tostring(dc, encoding="unicode")}


# -- IIIF Presentation 2.1 / 3.0 ------------------------------------------------------------------

#: metadata labels (lower case, without a trailing "(English)"-like note) mapped to schema fields
FIELD_LABELS = {
    "title": {"title", "titre", "titel", "titolo", "título", "name", "object title"},
    "creators": {
        "creator",
        "creators",
        "artist",
        "artists",
        "maker",
        "makers",
        "author",
        "authors",
        "auteur",
        "auteurs",
        "künstler",
        "künstler/in",
        "artista",
        "autore",
        "autor",
        "urheber",
        "hersteller",
        "créateur",
        "artiste",
        "people",
        "contributor",
        "contributors",
        "personen",
        "personnes",
        "persone",
        "personas",
        "photographer",
        "fotograf",
    },
    "date_text": {
        "date",
        "dated",
        "datum",
        "data",
        "fecha",
        "date made",
        "creation date",
        "date statement",
        "date of origin",
        "date of creation",
        "datierung",
        "entstehungszeit",
        "date de création",
        "data di creazione",
        "fecha de creación",
        "production date",
        "object date",
        "display date",
        "date created",
        "created",
    },
    "object_type": {
        "type",
        "object type",
        "object name",
        "classification",
        "genre",
        "objektkategorie",
        "objekttyp",
        "objektart",
        "type d'objet",
        "tipo",
        "tipo de objeto",
        "document type",
        "original format",
        "work type",
    },
    "materials": {
        "medium",
        "materials",
        "material",
        "technique",
        "materials and techniques",
        "material/technik",
        "technik",
        "matériaux",
        "matériau",
        "materiale",
        "materiali",
        "técnica",
        "materiales",
        "support",
    },
    "dimensions": {
        "dimensions",
        "measurements",
        "size",
        "extent",
        "umfang",
        "maße",
        "abmessungen",
        "dimensioni",
        "dimensiones",
    },
    "place": {
        "place",
        "place made",
        "place of creation",
        "origin",
        "lieu",
        "place of origin",
        "ort",
        "entstehungsort",
        "herstellungsort",
        "luogo",
        "lugar",
        "lieu de création",
    },
}
_LABEL_NOTE = re.compile(
    r"\s*\((?:english|en|deutsch|de|français|fr|italiano|it|español|es)\)\s*$", re.I
)
_ROLE_PREFIX = re.compile(r"^(?P<role>[A-Z][\w .'/-]{1,30}):\s+(?P<name>\S.*)$")


def _lang(value) -> list[str]:
    """A IIIF v3 language map, a v2 string / list / {@value} - as plain strings."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [s for v in value for s in _lang(v)]
    if isinstance(value, dict):
        if "@value" in value:
            return [str(value["@value"])]
        langs = value.get("en") or value.get("none") or next(iter(value.values()), [])
        return [s for v in (langs if isinstance(langs, list) else [langs]) for s in _lang(v)]
    return [str(value)]


def _all_labels(value) -> set[str]:
    """Every language's form of a label, normalised for matching."""
    if isinstance(value, dict) and "@value" not in value:
        texts = [s for v in value.values() for s in _lang(v)]
    else:
        texts = _lang(value)
    return {_LABEL_NOTE.sub("", " ".join(t.split())).strip().lower() for t in texts}


def _iiif_version(doc, path) -> int:
    if not isinstance(doc, dict):
        msg = f"{path}: not a IIIF Presentation document (a JSON object is expected)"
        raise DataError(msg)
    context = json.dumps(doc.get("@context", ""))
    if "presentation/3" in context:
        return 3
    if "presentation/2" in context:
        return 2
    # no (or another) @context: judge by the keys each version requires
    if "@id" in doc and (
        str(doc.get("@type", "")).startswith("sc:") or "sequences" in doc or "manifests" in doc
    ):
        return 2
    if "id" in doc and doc.get("type") in ("Manifest", "Collection"):
        return 3
    msg = (
        f"{path}: not a IIIF Presentation 2 or 3 manifest or collection (its @context is "
        f"{context}, and it has neither @id with @type sc:… nor id with type Manifest)"
    )
    raise DataError(msg)


def _is_collection(doc, version) -> bool:
    return doc.get("@type") == "sc:Collection" if version == 2 else doc.get("type") == "Collection"


def _iiif_manifest(doc: dict, version: int) -> dict:
    if version == 3:
        ident = doc.get("id")
        rights = doc.get("rights") or _first(
            _lang((doc.get("requiredStatement") or {}).get("value"))
        )
    else:
        ident = doc.get("@id")
        rights = doc.get("license") or _first(_lang(doc.get("attribution")))
        rights = rights[0] if isinstance(rights, list) and rights else rights
    rec: dict = {
        "id": ident,
        "title": _first(_lang(doc.get("label"))),
        "creators": [],
        "actors": [],
        "rights": rights,
    }
    for pair in doc.get("metadata", []) or []:
        if not isinstance(pair, dict):
            continue
        labels = _all_labels(pair.get("label"))
        values = [v.strip() for v in _lang(pair.get("value")) if v and v.strip()]
        for field, names in FIELD_LABELS.items():
            if not labels & names or not values:
                continue
            if field == "creators":
                for v in values:
                    m = _ROLE_PREFIX.match(v)
                    name, role = (
                        (m.group("name"), m.group("role")) if m else (v, next(iter(labels)))
                    )
                    if name not in rec["creators"]:
                        rec["creators"].append(name)
                        rec["actors"].append({"name": name, "role": role, "event": "", "id": None})
            elif field == "title":
                rec["title"] = rec["title"] or values[0]
            else:
                rec.setdefault(field, values[0])
            break
    nav = doc.get("navDate")
    year = _year(nav) if isinstance(nav, str) else None
    if year is not None:
        rec["machine_dates"] = (year, year, "IIIF navDate")
    rec["original"] = doc
    return rec


def _members(doc: dict, version: int) -> list[dict]:
    if version == 3:
        return [m for m in doc.get("items", []) if isinstance(m, dict)]
    return [
        m
        for key in ("collections", "manifests", "members")
        for m in doc.get(key, [])
        if isinstance(m, dict)
    ]


def read_iiif(path: Path, *, members: str = "local", max_members: int = 1000,
              progress: bool = True) -> list[dict]:
    """The descriptive metadata of a IIIF Presentation manifest (v2.1 or v3.0), or of every
    manifest of a collection.

    Parameters
    ----------
    members
        How a collection's members are found: ``"local"`` (default) reads each member from the
        file of the same name beside the collection (a saved collection), ``"fetch"`` downloads
        the ones not found there, ``"none"`` keeps what the collection itself says of them
        (label, navDate). A member that cannot be read keeps the collection's description of it
        and is named in a logged warning.
    max_members
        At most this many manifests are read (nested collections included); more is an error.
    progress
        Show a tqdm progress bar over the members.
    """
    doc = _read_json(path)
    version = _iiif_version(doc, path)
    if not _is_collection(doc, version):
        return [_iiif_manifest(doc, version)]
    from tqdm.auto import tqdm

    out: list[dict] = []
    unresolved: list[str] = []
    queue = [(m, version) for m in _members(doc, version)]
    bar = tqdm(total=len(queue), desc=f"IIIF collection {Path(path).name}", disable=not progress,
               unit="member")
    while queue:
        stub, ver = queue.pop(0)
        bar.update(1)
        if len(out) >= max_members:
            bar.close()
            msg = (
                f"{path}: the collection has more than max_members={max_members} "
                "manifests; pass a larger max_members= to read them all"
            )
            raise DataError(msg)
        member = _resolve_member(stub, ver, Path(path).parent, members)
        if member is None:
            rec = _iiif_manifest(stub, ver)
            rec["original"] = {"collection": str(path), "unresolved_member": stub}
            unresolved.append(str(stub.get("id") or stub.get("@id")))
            out.append(rec)
            continue
        mdoc, mver = member
        if _is_collection(mdoc, mver):
            more = [(m, mver) for m in _members(mdoc, mver)]
            queue += more
            bar.total += len(more)
            continue
        rec = _iiif_manifest(mdoc, mver)
        if "machine_dates" not in rec and isinstance(stub.get("navDate"), str):
            year = _year(stub["navDate"])
            rec["machine_dates"] = (year, year, "IIIF navDate") if year is not None else None
        out.append(rec)
    bar.close()
    if unresolved:
        logger.warning("%s: %d of %d members not read (members=%r; e.g. %s): each keeps only the "
                       "collection's description of it (label, navDate); pass members='fetch' to "
                       "download them", path, len(unresolved), len(out), members, unresolved[0])
    return out


def _resolve_member(stub: dict, version: int, folder: Path, members: str):
    if members == "none":
        return None
    ident = str(stub.get("id") or stub.get("@id") or "")
    name = ident.rstrip("/").rsplit("/", 1)[-1]
    local = folder / name
    if name and local.is_file():
        doc = _read_json(local)
        return doc, _iiif_version(doc, local)
    if members == "fetch" and ident.startswith(("http://", "https://")):
        import urllib.request

        try:
            with urllib.request.urlopen(ident, timeout=30) as resp:  # noqa: S310 - http(s) only
                doc = json.loads(resp.read(50_000_000))
            return doc, _iiif_version(doc, ident)
        except (OSError, ValueError, DataError) as exc:
            logger.warning("%s: cannot fetch (%s)", ident, exc)
    return None


# -- Europeana EDM: Record API JSON ---------------------------------------------------------------


def _edm_values(value) -> list[str]:
    """A Record API value in any of its forms: a language map ({"def": [...], "en": [...]}),
    a list, or a plain string (the ``fullbean`` form)."""
    if value is None:
        return []
    if isinstance(value, dict):
        for key in ("def", "en"):
            if value.get(key):
                return _edm_values(value[key])
        return [s for v in value.values() for s in _edm_values(v)][:1]
    if isinstance(value, list):
        return [s for v in value for s in _edm_values(v)]
    text = " ".join(str(value).split())
    return [text] if text else []


def read_edm(path: Path) -> list[dict]:
    """Records from Europeana Record API v2 JSON: ``{"object": {...}}`` (full profile),
    ``{"fullbean": ...}``, the bare object, or a list of them.

    Values come from the **provider's** proxy (``europeanaProxy`` false); Europeana's own proxy
    holds its enrichments (links to its entities) and is used only for the machine-readable
    dates of the time spans it links (``edm:begin``/``edm:end``).
    """
    doc = _read_json(path)
    objects = doc if isinstance(doc, list) else [doc]
    out = []
    for n, item in enumerate(objects):
        if not isinstance(item, dict):
            msg = f"{path}: item {n}: not a Europeana record (a JSON object is expected)"
            raise DataError(msg)
        obj = item.get("object") or item.get("fullbean") or item.get("fullBean") or item
        if not isinstance(obj, dict) or not isinstance(obj.get("proxies"), list):
            msg = (
                f"{path}: item {n}: not a Europeana EDM record (no 'proxies' list); "
                "save the Record API's JSON (record/v2/<id>.json)"
            )
            raise DataError(msg)
        proxies = [p for p in obj["proxies"] if isinstance(p, dict)]
        provider = [p for p in proxies if not p.get("europeanaProxy")] or proxies[:1]
        europeana = [p for p in proxies if p.get("europeanaProxy")]

        def get(key, proxies=provider):
            return [v for p in proxies for v in _edm_values(p.get(key))]

        # contextual entities (agents, concepts, places) linked by URI: their preferred labels
        entities = {e.get("about"): _first(_edm_values(e.get("prefLabel")))
                    for kind in ("agents", "concepts", "places") for e in obj.get(kind) or []
                    if isinstance(e, dict) and e.get("about")}

        def labelled(key, entities=entities):
            return [entities.get(v) or v for v in get(key)]

        creators = labelled("dcCreator")
        creators = [c for c in dict.fromkeys(creators) if c and not c.startswith("http")]
        spans = {t.get("about"): t for t in obj.get("timespans", []) or [] if isinstance(t, dict)}
        dates = [d for d in get("dcDate") + get("dctermsCreated") if d not in spans]
        machine = None
        for ref in (
            get("dctermsCreated")
            + get("dcDate")
            + get("dctermsCreated", europeana)
            + get("dcDate", europeana)
        ):
            span = spans.get(ref)
            if span is None or "data.europeana.eu/timespan/" in (ref or ""):
                continue  # Europeana's century entities are enrichments, not the provider's date
            lo, hi = (
                _year(_first(_edm_values(span.get("begin")))),
                _year(_first(_edm_values(span.get("end")))),
            )
            if lo is not None or hi is not None:
                machine = (
                    lo if lo is not None else hi,
                    hi if hi is not None else lo,
                    "EDM edm:begin/edm:end",
                )
                break
        aggregation = next(
            (a for a in obj.get("aggregations", []) or [] if isinstance(a, dict)), {}
        )
        out.append(
            {
                "id": obj.get("about"),
                "title": _first(get("dcTitle")) or _first(_edm_values(obj.get("title"))),
                "creators": creators,
                "date_text": _first(dates),
                "machine_dates": machine,
                "object_type": _first(labelled("dcType")),
                "materials": _first(labelled("dctermsMedium") or labelled("dcFormat")),
                "dimensions": _first(get("dctermsExtent")),
                "place": _first(labelled("dctermsSpatial") or labelled("dcCoverage")),
                "rights": _first(_edm_values(aggregation.get("edmRights"))),
                "original": obj,
            }
        )
    return out


# -- Europeana EDM: RDF/XML ----------------------------------------------------------------------


def _position(raw: str, text: str) -> int:
    m = re.search(r"<(?:dc:date|dcterms:created)\b[^>]*>\s*" + re.escape(text) + r"\s*<", raw)
    return m.start() if m else len(raw)


def read_edm_rdf(path: Path) -> list[dict]:
    """Records from EDM RDF/XML (what Europeana harvests and what its Record API gives as
    ``.rdf``), read with rdflib: one record per ``edm:ProvidedCHO``, values from the provider's
    proxy (or from the ProvidedCHO itself in a provider's own EDM), linked agents, places and
    time spans resolved to their labels and ``edm:begin``/``edm:end`` years."""
    from rdflib import Graph, Literal, Namespace, URIRef
    from rdflib.namespace import DC as DCNS
    from rdflib.namespace import DCTERMS, RDF
    from rdflib.namespace import SKOS as SKOSNS

    parse_xml(path)  # refuses DTDs and entities before rdflib sees the file
    edm = Namespace("http://www.europeana.eu/schemas/edm/")
    ore = Namespace("http://www.openarchives.org/ore/terms/")
    graph = Graph()
    raw = Path(path).read_text(encoding="utf-8", errors="replace")
    quiet = logging.getLogger("rdflib.term")
    level, quiet.level = quiet.level, logging.CRITICAL  # malformed typed literals are not our data
    try:
        graph.parse(str(path), format="xml")
    except Exception as exc:  # rdflib raises many kinds for bad RDF/XML
        msg = f"{path}: not readable as RDF/XML ({type(exc).__name__}: {exc})"
        raise DataError(msg) from None
    finally:
        quiet.level = level

    def label(node) -> str | None:
        if isinstance(node, Literal):
            return " ".join(str(node).split()) or None
        labels = list(graph.objects(node, SKOSNS.prefLabel))
        english = [lb for lb in labels if getattr(lb, "language", None) == "en"]
        return " ".join(str((english or labels)[0]).split()) if labels else None

    out = []
    for cho in graph.subjects(RDF.type, edm.ProvidedCHO):
        proxies = list(graph.subjects(ore.proxyFor, cho))
        provider = [p for p in proxies if str(graph.value(p, edm.europeanaProxy)).lower() != "true"]
        europeana = [p for p in proxies if p not in provider]
        sources = provider or [cho]

        def values(prop, subjects=sources):
            return [o for s in subjects for o in graph.objects(s, prop)]

        def texts(prop):
            return [t for t in (label(o) for o in values(prop)) if t]

        creators = list(
            dict.fromkeys(t for t in texts(DCNS.creator) if not t.startswith(("http", "auth")))
        )
        date_nodes = values(DCNS.date) + values(DCTERMS.created)
        # rdflib keeps no order: the display date is the provider's first in the file
        literals = sorted({label(o) for o in date_nodes if isinstance(o, Literal) and label(o)},
                          key=lambda t: (_position(raw, t), t))
        display = _first(literals)
        wanted = parse_date(display) if display else None
        spans = []
        for node in date_nodes + values(DCTERMS.created, europeana) + values(DCNS.date, europeana):
            if isinstance(node, URIRef) and "data.europeana.eu/timespan/" not in str(node):
                lo, hi = (
                    _year(str(graph.value(node, edm.begin) or "")),
                    _year(str(graph.value(node, edm.end) or "")),
                )
                if lo is not None or hi is not None:
                    spans.append((lo if lo is not None else hi, hi if hi is not None else lo))
        # several time spans (one per provider date): the one matching the display date's years
        spans = sorted(set(spans))
        match = [
            sp for sp in spans if wanted is not None and sp == (wanted.earliest, wanted.latest)
        ]
        span = (match or spans or [None])[0]
        machine = (*span, "EDM edm:begin/edm:end") if span else None
        aggregation = next(graph.subjects(edm.aggregatedCHO, cho), None)
        rights = graph.value(aggregation, edm.rights) if aggregation is not None else None
        out.append({
            "id": str(cho), "title": _first(texts(DCNS.title)), "creators": creators,
            "date_text": display, "machine_dates": machine,
            "object_type": _first(texts(DCNS.type)) or _first(texts(edm.type)),
            "materials": _first(texts(DCTERMS.medium) or texts(DCNS.format)),
            "dimensions": _first(texts(DCTERMS.extent)),
            "place": _first(texts(DCTERMS.spatial) or texts(DCNS.coverage)),
            "rights": str(rights) if rights is not None else None,
            "original": {"about": str(cho), "format": "EDM RDF/XML", "file": str(path)},
        })
    if not out:
        msg = f"{path}: no edm:ProvidedCHO in this RDF/XML; is it EDM?"
        raise DataError(msg)
    return out


def _read_json(path: Path):
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        msg = f"{path}: not valid JSON at line {exc.lineno}, column {exc.colno} ({exc.msg})"
        raise DataError(msg) from None
    except UnicodeDecodeError as exc:
        msg = (
            f"{path}: not UTF-8 text (byte {exc.object[exc.start]:#04x} at offset {exc.start}); "
            "JSON must be UTF-8: re-save it as UTF-8"
        )
        raise DataError(msg) from None
    except OSError as exc:
        msg = f"{path}: cannot be read ({exc.strerror or exc})"
        raise DataError(msg) from None
