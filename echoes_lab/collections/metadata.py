"""Readers of collection metadata from museum systems, each giving records in one schema.

Each reader returns a list of dicts with the keys of :data:`echoes_lab.collections.records.SCHEMA`;
:func:`echoes_lab.collections.records.read` turns them into the normalised DataFrame.

Formats and the specifications followed:

* CSV exports, through a column mapping (:data:`PRESETS` for common exports);
* Dublin Core over OAI-PMH 2.0 (``oai_dc``), harvested with Sickle, resumption tokens included;
* LIDO 1.0/1.1 XML (Lightweight Information Describing Objects, ICOM-CIDOC);
* IIIF Presentation API 2.1 and 3.0 manifests (the descriptive ``label``/``metadata``/rights);
* Europeana EDM records as returned by the Europeana Record API v2 (JSON).

XML is parsed with defusedxml: a document type declaration, an entity or an external
reference is refused (:class:`~echoes_lab.errors.UnsafeXMLError`), so neither "billion
laughs" nor external entities can reach the parser; Sickle's own lxml parser does not resolve
entities and never touches the network.
"""

from __future__ import annotations

import json
from pathlib import Path
from xml.etree.ElementTree import Element, ParseError

import defusedxml.ElementTree as safe_et
from defusedxml import DefusedXmlException

from echoes_lab.errors import DataError, UnsafeXMLError

#: column mappings of common exports: schema field -> source column
PRESETS: dict[str, dict[str, str]] = {
    # the Tate's collection data on GitHub (artwork_data.csv / the flattened snapshot)
    "tate": {"id": "accession_number", "title": "title", "creators": "artist",
             "date_text": "date_text", "object_type": "classification", "materials": "medium",
             "dimensions": "dimensions", "rights": "credit_line"},
    # ECHOES Lab's demo export (a typical collection-management system's CSV)
    "echoes-demo": {"id": "Object Number", "title": "Title", "creators": "Maker", "date_text": "Date",
                    "object_type": "Object Type", "materials": "Medium", "dimensions": "Dimensions",
                    "place": "Place", "rights": "Rights"},
}

LIDO = "{http://www.lido-schema.org}"


# -- safe XML -----------------------------------------------------------------------------

def parse_xml(path: Path) -> Element:
    """Parse an XML file safely, or raise an error naming the file (and the line)."""
    try:
        return safe_et.parse(str(path), forbid_dtd=True).getroot()
    except DefusedXmlException as exc:
        raise UnsafeXMLError(
            f"{path}: refused for safety: the file declares a DTD, an entity or an external "
            f"reference ({type(exc).__name__}); export it without them"
        ) from None
    except ParseError as exc:
        line, col = exc.position
        raise DataError(f"{path}: not well-formed XML at line {line}, column {col + 1}") from None


def _texts(el: Element | None, path: str) -> list[str]:
    if el is None:
        return []
    return [" ".join(e.text.split()) for e in el.iterfind(path, {"lido": LIDO[1:-1]}) if e.text and e.text.strip()]


def _first(values: list[str]) -> str | None:
    return values[0] if values else None


# -- CSV ------------------------------------------------------------------------------------

def read_csv(path: Path, mapping: dict[str, str], encoding: str = "utf-8", sep: str | None = None,
             creators_sep: str = ";") -> list[dict]:
    """Records from a CSV export; ``mapping`` names the source column of each schema field."""
    import pandas as pd

    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding=encoding, sep=sep,
                            engine="python" if sep is None else "c")
    except UnicodeDecodeError as exc:
        raw = Path(path).read_bytes()
        line = raw[: exc.start].count(b"\n") + 1
        raise DataError(
            f"{path}: line {line} is not valid {encoding} (byte {raw[exc.start]:#04x} at offset "
            f"{exc.start}); give the file's encoding, e.g. encoding='latin-1'"
        ) from None
    except pd.errors.ParserError as exc:
        raise DataError(f"{path}: not a readable CSV ({exc})") from None
    return from_frame(frame, mapping, str(path), creators_sep)


def from_frame(frame, mapping: dict[str, str], name: str = "the table", creators_sep: str = ";") -> list[dict]:
    """Records from a table already in memory (e.g. ``echoes_lab.open_dataset(...)``)."""
    missing = [f"{field} ← '{col}'" for field, col in mapping.items() if col not in frame.columns]
    if missing:
        raise DataError(
            f"{name}: mapped column(s) missing: {', '.join(missing)}; it has: "
            f"{', '.join(map(str, frame.columns))}"
        )
    out = []
    for row in frame.astype("string").fillna("").to_dict("records"):
        rec = {field: (row[col].strip() or None) for field, col in mapping.items()}
        creators = rec.get("creators")
        rec["creators"] = [c.strip() for c in creators.split(creators_sep) if c.strip()] if creators else []
        rec["original"] = row
        out.append(rec)
    return out


# -- OAI-PMH Dublin Core -----------------------------------------------------------------------

def harvest_oai(url: str, metadata_prefix: str = "oai_dc", set_spec: str | None = None) -> list[dict]:
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
        raise DataError(f"OAI-PMH harvest from {url} failed: {exc}") from None
    out = []
    for r in records:
        md = r.metadata or {}
        first = lambda key: _first([v for v in md.get(key, []) if v])  # noqa: E731
        out.append({
            "id": r.header.identifier, "title": first("title"), "creators": md.get("creator", []),
            "date_text": first("date"), "object_type": first("type"),
            "materials": first("medium") or first("format"), "dimensions": first("extent"),
            "place": first("coverage") or first("spatial"), "rights": first("rights"),
            "original": {"header": r.header.identifier, "metadata": md},
        })
    return out


# -- LIDO -------------------------------------------------------------------------------------

def read_lido(path: Path) -> list[dict]:
    """Records from a LIDO file (one ``lido:lido`` or a ``lido:lidoWrap`` of many)."""
    root = parse_xml(path)
    records = [root] if root.tag == f"{LIDO}lido" else root.findall(f"{LIDO}lido")
    if not records:
        raise DataError(f"{path}: no lido:lido record found (is this LIDO?)")
    out = []
    for rec in records:
        events = rec.findall(f".//{LIDO}eventSet/{LIDO}event")
        production = next((e for e in events if "production" in " ".join(_texts(e, "lido:eventType/lido:term")).lower()),
                          events[0] if events else None)
        out.append({
            "id": _first(_texts(rec, "lido:lidoRecID")),
            "title": _first(_texts(rec, ".//lido:titleWrap/lido:titleSet/lido:appellationValue")),
            "creators": _texts(production, ".//lido:eventActor//lido:nameActorSet/lido:appellationValue"),
            "date_text": _first(_texts(production, "lido:eventDate/lido:displayDate"))
            or _first(_texts(production, "lido:eventDate/lido:date/lido:earliestDate")),
            "object_type": _first(_texts(rec, ".//lido:objectWorkType/lido:term")),
            "materials": _first(_texts(production, "lido:eventMaterialsTech/lido:displayMaterialsTech")),
            "dimensions": _first(_texts(rec, ".//lido:objectMeasurementsSet/lido:displayObjectMeasurements")),
            "place": _first(_texts(production, "lido:eventPlace/lido:displayPlace")),
            "rights": _first(_texts(rec, ".//lido:rightsWorkSet/lido:creditLine"))
            or _first(_texts(rec, ".//lido:rightsWorkSet/lido:rightsType/lido:term")),
            "original": safe_et.tostring(rec, encoding="unicode"),
        })
    return out


# -- IIIF Presentation 2.1 / 3.0 ------------------------------------------------------------------

FIELD_LABELS = {
    "title": {"title", "titre", "titel", "titolo", "título"},
    "creators": {"creator", "artist", "maker", "author", "auteur", "künstler", "artista"},
    "date_text": {"date", "dated", "datum", "data", "fecha", "date made", "creation date"},
    "object_type": {"type", "object type", "object name", "classification", "genre"},
    "materials": {"medium", "materials", "material", "technique", "materials and techniques"},
    "dimensions": {"dimensions", "measurements", "size", "extent"},
    "place": {"place", "place made", "place of creation", "origin", "lieu"},
}


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
            return [value["@value"]]
        langs = value.get("en") or value.get("none") or next(iter(value.values()), [])
        return [s for v in langs for s in _lang(v)]
    return [str(value)]


def read_iiif(path: Path) -> list[dict]:
    """The descriptive metadata of a IIIF Presentation manifest (v2.1 or v3.0)."""
    doc = _read_json(path)
    context = json.dumps(doc.get("@context", ""))
    if "presentation/3" in context:
        ident, rights = doc.get("id"), doc.get("rights") or _first(_lang((doc.get("requiredStatement") or {}).get("value")))
    elif "presentation/2" in context:
        ident, rights = doc.get("@id"), doc.get("license") or _first(_lang(doc.get("attribution")))
    else:
        raise DataError(f"{path}: not a IIIF Presentation 2 or 3 manifest (its @context is {context})")
    rec: dict = {"id": ident, "title": _first(_lang(doc.get("label"))), "creators": [], "rights": rights}
    for pair in doc.get("metadata", []):
        label = (_first(_lang(pair.get("label"))) or "").strip().lower()
        values = _lang(pair.get("value"))
        for field, names in FIELD_LABELS.items():
            if label in names and values:
                if field == "creators":
                    rec["creators"] += values
                elif field == "title":
                    rec["title"] = rec["title"] or values[0]
                else:
                    rec.setdefault(field, values[0])
    rec["original"] = doc
    return [rec]


# -- Europeana EDM (Record API JSON) -----------------------------------------------------------------

def read_edm(path: Path) -> list[dict]:
    """Records from Europeana Record API v2 JSON (``{"object": {...}}``; a list of them too)."""
    doc = _read_json(path)
    objects = doc if isinstance(doc, list) else [doc]
    out = []
    for item in objects:
        obj = item.get("object", item)
        if "proxies" not in obj:
            raise DataError(f"{path}: not a Europeana EDM record (no 'proxies')")
        merged: dict[str, list[str]] = {}
        for proxy in obj["proxies"]:  # the provider's proxy first, Europeana's enrichments after
            for key, value in proxy.items():
                if isinstance(value, dict):
                    merged.setdefault(key, []).extend(_lang(value.get("def") or value.get("en") or next(iter(value.values()), [])))
        rights = _first([r for a in obj.get("aggregations", []) for r in _lang((a.get("edmRights") or {}).get("def"))])
        out.append({
            "id": obj.get("about"), "title": _first(merged.get("dcTitle", [])),
            "creators": merged.get("dcCreator", []), "date_text": _first(merged.get("dcDate", []) or merged.get("dctermsCreated", [])),
            "object_type": _first(merged.get("dcType", [])),
            "materials": _first(merged.get("dctermsMedium", []) or merged.get("dcFormat", [])),
            "dimensions": _first(merged.get("dctermsExtent", [])),
            "place": _first(merged.get("dctermsSpatial", []) or merged.get("dcCoverage", [])),
            "rights": rights, "original": obj,
        })
    return out


def _read_json(path: Path):
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: not valid JSON at line {exc.lineno}, column {exc.colno} ({exc.msg})") from None
    except UnicodeDecodeError:
        raise DataError(f"{path}: not UTF-8 text") from None
