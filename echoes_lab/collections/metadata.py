"""Readers of collection metadata from museum systems, each giving records in one schema.

Each reader returns a list of dicts with the keys of :data:`echoes_lab.collections.records.SCHEMA`;
:func:`echoes_lab.collections.records.read` turns them into the normalised DataFrame.

Formats and the specifications followed:

* CSV exports, through a column mapping (:data:`PRESETS` for common exports);
* Dublin Core over OAI-PMH 2.0 (``oai_dc``), harvested with Sickle, resumption tokens included,
  and OAI-PMH responses saved to files (``oai_dc``, LIDO or EDM inside; a folder of them);
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

# the object table of a TMS (The Museum System) export: the same columns at both museums below
_TMS_OBJECTS = {
    "id": "ObjectNumber",
    "date_text": "Dated",
    "year_begin": "DateBegin",
    "year_end": "DateEnd",
    "object_type": "Classification",
    "materials": "Medium",
    "dimensions": "Dimensions",
    "rights": "CreditLine",
}

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
    # Colby College Museum of Art (ColbyMuseum/MuseumLOD, data/colby_data.csv, 2015)
    "colby": {
        "id": "Accession_num",
        "title": "Title",
        "creators": "Artist",
        "date_text": "Year_Made",
        "materials": "Media",
        "dimensions": "Dimensions",
        "rights": "Credit_Line",
    },
    # National Gallery of Ireland, "Creative Commons list" (data.gov.ie; Windows-1252, labels
    # end in ":" and makers are written "Role: Name, life dates")
    "ngi": {
        "id": "Object Number:",
        "title": "Title:",
        "creators": "Artist:",
        "materials": "Medium:",
    },
    # TMS object tables as the National Portrait Gallery (Smithsonian) and Crystal Bridges
    # Museum of American Art gave them to the American Art Collaborative; titles and makers are
    # in separate tables there
    "npg": dict(_TMS_OBJECTS),
    "crystal-bridges": dict(_TMS_OBJECTS),
    # Autry Museum of the American West (American Art Collaborative): objects, and their dates
    # in a table of their own
    "autry": {
        "id": "ObjectNumber",
        "title": "Title",
        "object_type": "ObjectName",
        "materials": "Materials",
        "dimensions": "Measurements",
        "rights": "CreditLine",
    },
    "autry-dated": {
        "id": "ObjectID",
        "date_text": "Dated",
        "year_begin": "EARLIEST_YEAR",
        "year_end": "LATEST_YEAR",
    },
}

#: column labels of museums' exports for each schema field, in order of preference, compared
#: without case, spaces, punctuation or a byte-order mark (see :func:`guess_mapping`); the
#: museum's own first/last year of the object go to ``year_begin``/``year_end`` (machine dates)
COLUMN_LABELS: dict[str, tuple[str, ...]] = {
    "id": ("accessionnumber", "accessionnum", "accessionno", "accno", "objectnumber", "objectno",
           "dispaccessno", "inventorynumber", "inventoryno", "inventarnummer", "invnr",
           "numeroinventario", "numinventario", "numerodinventaire", "identifier", "objectid"),
    "title": ("title", "objecttitle", "disptitle", "titre", "titel", "titolo", "titulo"),
    "creators": ("artist", "artists", "artistdisplayname", "maker", "makers", "creator",
                 "creators", "dispmaker1", "attribution", "author", "künstler", "hersteller",
                 "autore", "artista", "auteur", "autor"),
    "date_text": ("datetext", "dated", "date", "displaydate", "objectdate", "yearmade",
                  "creationdate", "dispcreatedt", "datierung", "datazione", "datation", "fecha"),
    "year_begin": ("datestart", "datebegin", "objectbegindate", "beginyear", "earliestyear",
                   "creationdateearliest", "dispstartdat", "yearearly", "annoinizio"),
    "year_end": ("dateend", "objectenddate", "endyear", "latestyear", "creationdatelatest",
                 "dispenddate", "yearlate", "annofine"),
    "object_type": ("classification", "objectname", "objecttype", "type", "objektbezeichnung",
                    "oggetto", "typologie"),
    "materials": ("medium", "media", "materials", "material", "materialtechnik", "technique",
                  "materiatecnica", "materiale", "technik"),
    "dimensions": ("dimensions", "measurements", "dispdimen", "dimension", "masse", "misure"),
    "place": ("place", "placemade", "placeofcreation", "herstellungsort", "luogo", "lieu"),
    "rights": ("creditline", "credit", "rights", "license", "licence"),
}

LIDO = "{http://www.lido-schema.org}"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
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


# -- languages --------------------------------------------------------------------------------

#: language tags that say "no particular language": untagged values are kept under ""
#: (Europeana's "def", IIIF's "none", BCP 47 "und" and "zxx")
UNTAGGED = {"", "def", "none", "und", "zxx"}
_BCP47 = re.compile(r"^[a-z]{2,3}(?:-[a-z0-9]{1,8})*$")


def lang_key(tag: str | None) -> str:
    """A language tag as a key of a language map: lower case BCP 47 ("en", "de-at"), "" for
    none (see ``UNTAGGED``)."""
    key = (tag or "").strip().lower().replace("_", "-")
    # a key that is no BCP 47 tag (Mirador's Hamilton manifest labels its title "true") says
    # nothing about the language: untagged
    return "" if key in UNTAGGED or not _BCP47.match(key) else key


def lang_map(pairs) -> dict[str, list[str]]:
    """``{language: [texts]}`` from (tag, text) pairs, in order, each text once per language,
    blank texts dropped: the form every reader gives ``titles`` and ``descriptions`` in."""
    out: dict[str, list[str]] = {}
    for tag, text in pairs:
        text = " ".join(str(text).split()) if text is not None else ""
        if text and text not in (texts := out.setdefault(lang_key(tag), [])):
            texts.append(text)
    return {k: v for k, v in out.items() if v}


def _tagged(el: Element | None, path: str, inherited: str | None = None) -> list[tuple]:
    """(xml:lang, text) of the elements at ``path`` under ``el``; an element without its own
    xml:lang takes ``inherited`` (the enclosing element's, as XML defines it)."""
    if el is None:
        return []
    return [(e.get(XML_LANG) or inherited, e.text)
            for e in el.iterfind(path, {"lido": LIDO[1:-1]}) if e.text and e.text.strip()]


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
    mapping: dict[str, str] | None = None,
    encoding: str = "utf-8",
    sep: str | None = None,
    creators_sep: str = ";",
    max_columns: int = MAX_COLUMNS,
    max_bytes: int = MAX_BYTES,
) -> list[dict]:
    """Records from a CSV export; ``mapping`` names the source column of each schema field
    (recognised from the column labels when omitted: :func:`from_frame`).

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


def _squash(label) -> str:
    return re.sub(r"[\W_]+", "", str(label).lstrip("\ufeff").casefold())


def guess_mapping(columns) -> dict[str, str]:
    """A column mapping (schema field -> column) from a table's column labels, by the label sets
    of :data:`COLUMN_LABELS` ("Object Number:", "accession_number", "DateBegin" …); each
    column is used once, fields without a recognised column are left out."""
    by_label: dict[str, str] = {}
    for col in columns:
        by_label.setdefault(_squash(col), col)
    mapping: dict[str, str] = {}
    for field, labels in COLUMN_LABELS.items():
        col = next((by_label[lab] for lab in labels if lab in by_label), None)
        if col is not None and col not in mapping.values():
            mapping[field] = col
    return mapping


#: a maker written "Role: Name" in a cell, and several of them in one cell ("?: Unknown Artist,
#: France, 19th century, After: Louis de Carmontelle, 1717-1806"; National Gallery of Ireland)
_CSV_ROLE = re.compile(r"^(?P<role>[\w?][\w .'/?-]{0,30}?):\s+(?P<name>\S.*)$")
_CSV_ROLE_SPLIT = re.compile(r",\s+(?=[\w?][\w .'/-]{0,30}:\s)")


def _year_cell(text: str | None) -> int | None:
    """A museum's begin/end year cell as an integer ("1887", "1887.0", "-300"); anything else
    (empty, "NULL", a date) is no year."""
    m = re.fullmatch(r"\s*(-?\d{1,4})(?:\.0+)?\s*", text or "")
    return int(m.group(1)) if m else None


def from_frame(
    frame, mapping: dict[str, str] | None = None, name: str = "the table",
    creators_sep: str = ";",
) -> list[dict]:
    """Records from a table already in memory (e.g. ``echoes_lab.open_dataset(...)``).

    ``mapping`` names the column of each schema field, plus ``year_begin``/``year_end``: the
    museum's own first and last year of the object, kept as machine dates (they win over the
    display date, which stays for comparison). Without a mapping, the columns are recognised
    by :func:`guess_mapping`. A creator written "Role: Name" (the National Gallery of Ireland's
    "Attributed to: …", "Engraver: …") becomes the name with that role."""
    # a byte-order mark left on the first label (a UTF-8 export read without "utf-8-sig")
    frame = frame.rename(columns=lambda c: c.lstrip("\ufeff") if isinstance(c, str) else c)
    if mapping is None:
        mapping = guess_mapping(frame.columns)
        if not {"id", "title", "date_text"} & set(mapping):
            msg = (
                f"{name}: no column recognised as an identifier, title or date (it has: "
                f"{', '.join(map(str, frame.columns))}); pass mapping={{field: column}}"
            )
            raise DataError(msg)
    mapping = {field: col.lstrip("\ufeff") if isinstance(col, str) else col
               for field, col in mapping.items()}
    missing = [f"{field} ← '{col}'" for field, col in mapping.items() if col not in frame.columns]
    if missing:
        msg = (
            f"{name}: mapped column(s) missing: {', '.join(missing)}; it has: "
            f"{', '.join(map(str, frame.columns))}"
        )
        raise DataError(msg)
    years = (mapping.get("year_begin"), mapping.get("year_end"))
    out = []
    for row in frame.astype("string").fillna("").to_dict("records"):
        # "NULL": an empty cell as SQL exports (TMS through the American Art Collaborative)
        # write it
        rec = {field: (row[col].strip() if row[col].strip() != "NULL" else "") or None
               for field, col in mapping.items()}
        begin, end = (_year_cell(rec.pop(k, None)) for k in ("year_begin", "year_end"))
        if begin == 0 and end in (0, None):  # TMS's "no date" (there is no year 0)
            begin = end = None
        if begin is not None or end is not None:
            rec["machine_dates"] = (begin, end, f"CSV {years[0]}/{years[1]}")
        actors = []
        cells = (rec.get("creators") or "").split(creators_sep)
        for text in [t for cell in cells for t in _CSV_ROLE_SPLIT.split(cell)]:
            m = _CSV_ROLE.match(text.strip())
            name_, role = (m["name"], m["role"]) if m else (text.strip(), "")
            if name_ and name_ not in [a["name"] for a in actors]:
                actors.append({"name": name_, "role": role, "event": "", "id": None})
        rec["creators"] = [a["name"] for a in actors]
        if any(a["role"] for a in actors):
            rec["actors"] = actors
        rec["original"] = row
        out.append(rec)
    return out


# -- OAI-PMH Dublin Core -----------------------------------------------------------------------

def harvest_oai(
    url: str, metadata_prefix: str = "oai_dc", set_spec: str | None = None
) -> list[dict]:
    """Harvest records from an OAI-PMH endpoint, following resumption tokens; each record is
    read as :func:`read_oai_file` reads a saved one (``oai_dc`` or LIDO)."""
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
        # the record as the repository sent it, read as a saved response is (same rules)
        try:
            rec = safe_et.fromstring(r.raw, forbid_dtd=True)
        except (DefusedXmlException, ParseError) as exc:
            msg = f"OAI-PMH harvest from {url}: a record is not readable XML ({exc})"
            raise DataError(msg) from None
        out += _oai_record(rec, url)
    return out


# -- LIDO -------------------------------------------------------------------------------------

SKOS = "{http://www.w3.org/2004/02/skos/core#}"
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
    # titles and descriptions with their xml:lang, inherited from lido:descriptiveMetadata (LIDO
    # requires it there) or the record when the value has none of its own
    titles, descriptions = [], []
    for meta in rec.iterfind(f"{LIDO}descriptiveMetadata"):
        lang = meta.get(XML_LANG) or rec.get(XML_LANG)
        for title_set in meta.iterfind(f".//{LIDO}titleWrap/{LIDO}titleSet"):
            titles += _tagged(title_set, "lido:appellationValue", title_set.get(XML_LANG) or lang)
        for note in meta.iterfind(f".//{LIDO}objectDescriptionWrap/{LIDO}objectDescriptionSet"):
            descriptions += _tagged(note, "lido:descriptiveNoteValue", note.get(XML_LANG) or lang)
    return {
        "id": _first(_texts(rec, "lido:lidoRecID")),
        "titles": lang_map(titles),
        "descriptions": lang_map(descriptions),
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
    ``*.xml`` response in a folder (in name order). Metadata in ``oai_dc``, LIDO or EDM
    (``rdf:RDF``, Europeana's ``metadataPrefix=edm``) is read;
    deleted records are skipped; an OAI error other than ``noRecordsMatch`` is raised. A single
    OAI ``<record>`` saved on its own (as harvesters such as Europeana's Metis keep them) is read
    too."""
    path = Path(path)
    files = sorted(path.glob("*.xml")) if path.is_dir() else [path]
    if not files:
        msg = f"{path}: no *.xml OAI-PMH responses in this folder"
        raise DataError(msg)
    out = []
    for file in files:
        root = parse_xml(file)
        if root.tag not in (f"{OAI}OAI-PMH", f"{OAI}record"):
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
            out += _oai_record(rec, str(file))
    return out


def _oai_record(rec: Element, where: str) -> list[dict]:
    """The records of one OAI ``<record>`` (none if deleted or without metadata; several for a
    ``lido:lidoWrap``); ``where`` (a file or URL) names it in errors."""
    header = rec.find(f"{OAI}header")
    ident = (
        _first([e.text.strip() for e in header.iter(f"{OAI}identifier") if e.text])
        if header is not None
        else None
    )
    if header is not None and header.get("status") == "deleted":
        return []
    metadata = rec.find(f"{OAI}metadata")
    payload = next(iter(metadata), None) if metadata is not None else None
    if payload is None:
        return []
    if payload.tag == f"{OAI_DC}dc":
        return [_dc_record(payload, ident)]
    if payload.tag == f"{LIDO}lido":
        return [{**_lido_record(payload), "oai_identifier": ident}]
    if payload.tag == f"{LIDO}lidoWrap":
        return [{**_lido_record(r), "oai_identifier": ident}
                for r in payload.findall(f"{LIDO}lido")]
    if payload.tag == _RDF_ROOT:
        return [{**r, "oai_identifier": ident} for r in _oai_edm(payload, where, ident)]
    msg = (
        f"{where}: record {ident}: metadata format <{_local(payload.tag)}> is not "
        "read (oai_dc, LIDO and EDM are); harvest with metadataPrefix=oai_dc, lido or edm"
    )
    raise DataError(msg)


_RDF_ROOT = "{http://www.w3.org/1999/02/22-rdf-syntax-ns#}RDF"


def _oai_edm(payload: Element, where: str, ident: str | None) -> list[dict]:
    """An EDM ``rdf:RDF`` payload (Europeana's OAI-PMH, ``metadataPrefix=edm``), read by
    :func:`read_edm_rdf` from a private temporary copy."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="echoes-oai-edm-") as tmp:
        copy = Path(tmp) / "record.rdf"
        copy.write_bytes(safe_et.tostring(payload, encoding="utf-8"))
        try:
            return read_edm_rdf(copy)
        except DataError as exc:
            msg = f"{where}: record {ident}: {str(exc).replace(str(copy), 'its EDM')}"
            raise DataError(msg) from None


#: a repository's own timestamp (DSpace writes dc.date.accessioned/available as dc:date beside
#: dc.date.issued, e.g. "2003-07-18T12:20:08Z" next to "2002")
_DC_TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:?\d\d)?$")
#: dc:format values that describe the file, not the object: MIME types and byte counts
_DC_FILE_FORMAT = re.compile(r"^([a-z]+/[\w.+-]+(\s.*)?|\d+( bytes)?)$")
#: dc:type values of the repositories' controlled lists (DRIVER/OpenAIRE), not a reader's word
_DC_TYPE_CODE = re.compile(r"^(info:eu-repo/|doc-type:)")
#: a role after the name, as the BnF (Gallica) writes it: "Name. Auteur du texte"
_DC_ROLE = re.compile(
    r"^(?P<name>.+?)\.\s+(?P<role>(?:Auteur|Ancien possesseur|Illustrateur|Éditeur|Traducteur|"
    r"Photographe|Graveur|Dessinateur|Compositeur|Imprimeur|Libraire|Préfacier|Commentateur|"
    r"Copiste|Enlumineur|Destinataire|Rédacteur|Cartographe|Annotateur)[\w\s'’-]*)$"
)


def _dc_actors(names: list[str], role: str) -> list[dict]:
    """One actor per distinct name, with the role the name carries ("Name. Auteur du texte")
    or the Dublin Core element it came from."""
    actors: dict[str, dict] = {}
    for text in names:
        m = _DC_ROLE.match(text)
        name, own = (m["name"], m["role"]) if m else (text, role)
        actors.setdefault(name, {"name": name, "role": own, "event": "", "id": None})
    return list(actors.values())


def _dc_record(dc: Element, ident: str | None) -> dict:
    """One Dublin Core record: the first value of each element a reader would take, skipping
    repository timestamps among several dates, MIME types and byte counts among formats, and
    repository type codes among types; creators fall back to contributors when a record (early
    DSpace exports) names its authors only as ``dc:contributor``. Text is composed to Unicode
    NFC (the Biodiversity Heritage Library writes "Söderberg" as "o" + combining diaeresis), so
    that names compare and deduplicate as a reader sees them."""
    from unicodedata import normalize

    def values(name):
        return [
            normalize("NFC", " ".join(e.text.split()))
            for e in dc.iter(f"{DC}{name}") if e.text and e.text.strip()
        ]

    def prefer(vals, unwanted):
        return _first([v for v in vals if not unwanted.match(v)] or vals)

    actors = _dc_actors(values("creator"), "creator") or _dc_actors(
        values("contributor"), "contributor"
    )
    formats = [v for v in values("format") if not _DC_FILE_FORMAT.match(v)]

    def tagged(name):
        return [(e.get(XML_LANG), normalize("NFC", e.text))
                for e in dc.iter(f"{DC}{name}") if e.text and e.text.strip()]

    return {"id": ident, "title": _first(values("title")),
            "titles": lang_map(tagged("title")), "descriptions": lang_map(tagged("description")),
            "creators": [a["name"] for a in actors], "actors": actors,
            "date_text": prefer(values("date"), _DC_TIMESTAMP),
            "object_type": prefer(values("type"), _DC_TYPE_CODE),
            "materials": _first(formats), "dimensions": None,
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


def _lang_pairs(value, tag: str | None = None) -> list[tuple]:
    """(language, text) of a IIIF v3 language map ({"en": [...], "none": [...]}) or a v2 value
    (a string, a list, {"@value", "@language"})."""
    if value is None:
        return []
    if isinstance(value, str):
        return [(tag, value)]
    if isinstance(value, list):
        return [p for v in value for p in _lang_pairs(v, tag)]
    if isinstance(value, dict):
        if "@value" in value:
            return [(value.get("@language") or tag, str(value["@value"]))]
        return [p for lang, v in value.items() for p in _lang_pairs(v, lang)]
    return [(tag, str(value))]


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
        "titles": lang_map(_lang_pairs(doc.get("label"))),
        "descriptions": lang_map(_lang_pairs(doc.get("summary" if version == 3
                                                     else "description"))),
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


#: Europeana's own enrichment entities (century time spans it links to every record): never the
#: provider's date, whichever proxy links them
_EDM_ENRICHMENT = ("data.europeana.eu/timespan/", "semium.org/time/")
#: dc:format values that describe the digital file, not the object: MIME types ("image/jpeg";
#: "Imatge/jpeg" as the Biblioteca de Catalunya writes it)
_EDM_FILE_FORMAT = re.compile(r"^[a-z]+/[\w.+-]+$", re.IGNORECASE)
#: a role after the name, as the BnF (Gallica) writes it in EDM too: "Name. Auteur du texte"
_EDM_ROLE = re.compile(
    r"^(?P<name>.+?)\.\s+(?P<role>(?:Auteur|Éditeur|Illustrateur|Traducteur|Photographe|"
    r"Graveur|Dessinateur|Compositeur|Imprimeur|Copiste|Enlumineur|Ancien possesseur)\b[^.]*)$"
)


def _edm_text(value) -> str:
    """Whitespace collapsed; C1 control characters (U+0080–U+009F), which no text means, read as
    the Windows-1252 characters they were written as (the WHATWG Encoding Standard's reading of
    "latin-1"): the BnF's ``AL-DIMA&#x8a;QĪ`` is "AL-DIMAŠQĪ"."""
    text = " ".join(str(value).split())
    if any("\x80" <= c <= "\x9f" for c in text):
        text = "".join(_cp1252(c) for c in text)
    return text


def _cp1252(char: str) -> str:
    if "\x80" <= char <= "\x9f":
        try:
            return bytes([ord(char)]).decode("cp1252")
        except UnicodeDecodeError:  # 0x81, 0x8d, 0x8f, 0x90, 0x9d have no character
            return char
    return char


def _edm_actors(names: list[tuple[str, str | None]]) -> list[dict]:
    """One actor per distinct name (``(name, link)`` pairs), links and identifiers that are no
    name left out; a role written after the name ("Name. Auteur du texte") goes to ``role``."""
    actors: dict[str, dict] = {}
    for text, link in names:
        if not text or text.startswith(("http://", "https://", "auth")):
            continue
        m = _EDM_ROLE.match(text)
        name, role = (m["name"], m["role"]) if m else (text, "creator")
        actors.setdefault(name, {"name": name, "role": role, "event": "", "id": link})
    return list(actors.values())


def _edm_enrichment(ref: str) -> bool:
    return any(e in ref for e in _EDM_ENRICHMENT)


def _dicts(value) -> list[dict]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _edm_values(value) -> list[str]:
    """A Record API value in any of its forms: a language map ({"def": [...], "en": [...]}),
    a list, a plain string (the ``fullbean`` form) or a tagged literal
    (``{"@lang": "de", "#value": ...}``, Europeana's database exports), English first."""
    if value is None:
        return []
    if isinstance(value, dict):
        if "#value" in value:
            return _edm_values(value["#value"])
        for key in ("def", "en"):
            if value.get(key):
                return _edm_values(value[key])
        return [s for v in value.values() for s in _edm_values(v)][:1]
    if isinstance(value, list):
        # tagged literals in other languages after the English and untagged ones
        value = sorted(value, key=lambda v: isinstance(v, dict) and v.get("@lang") not in
                       (None, "en", "def"))
        return [s for v in value for s in _edm_values(v)]
    text = _edm_text(value)
    return [text] if text else []


def _edm_pairs(value, tag: str | None = None) -> list[tuple]:
    """(language, text) of a Record API value in any of the forms ``_edm_values`` reads."""
    if value is None:
        return []
    if isinstance(value, dict):
        if "#value" in value:
            return _edm_pairs(value["#value"], value.get("@lang") or tag)
        return [p for lang, v in value.items() for p in _edm_pairs(v, lang)]
    if isinstance(value, list):
        return [p for v in value for p in _edm_pairs(v, tag)]
    return [(tag, _edm_text(value))]


def read_edm(path: Path) -> list[dict]:
    """Records from Europeana Record API v2 JSON: ``{"object": {...}}`` (full profile),
    ``{"fullbean": ...}``, the bare object (also as Europeana's database exports it), or a list
    of them.

    Values come from the **provider's** proxy (``europeanaProxy`` false); Europeana's own proxy
    holds its enrichments (links to its entities) and is used only for the machine-readable
    dates of the time spans it links (``edm:begin``/``edm:end``), never its century entities.
    A date given only as a link to the provider's own time span is displayed by the span's label;
    ``dcterms:issued`` is the date of a text (``edm:type`` TEXT) that has no other. MIME types in
    ``dc:format`` are the file's, not the object's materials.
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
        proxies = _dicts(obj["proxies"])
        provider = [p for p in proxies if not p.get("europeanaProxy")] or proxies[:1]
        europeana = [p for p in proxies if p.get("europeanaProxy")]

        def get(key, proxies=provider):
            return [v for p in proxies for v in _edm_values(p.get(key))]

        # contextual entities (agents, concepts, places) linked by URI: their preferred labels
        entities = {e["about"]: _first(_edm_values(e.get("prefLabel")))
                    for kind in ("agents", "concepts", "places") for e in _dicts(obj.get(kind))
                    if isinstance(e.get("about"), str)}

        def labelled(key, entities=entities):
            return [entities.get(v) or v for v in get(key)]

        actors = _edm_actors([(entities.get(v) or v, v if v in entities else None)
                              for v in get("dcCreator")])
        spans = {t["about"]: t for t in _dicts(obj.get("timespans"))
                 if isinstance(t.get("about"), str)}
        kind = _first(get("edmType")) or (obj["type"] if isinstance(obj.get("type"), str) else None)
        given = get("dcDate") + get("dctermsCreated")
        # a text's issue is its publication; an image's "issued" is often the record's own date
        issued = get("dctermsIssued") if kind == "TEXT" else []
        dates = [d for d in given if d not in spans] or [d for d in issued if d not in spans]
        if not dates:  # a date given only as a link to the provider's own time span
            dates = [_first(_edm_values(spans[d].get("prefLabel"))) for d in given
                     if d in spans and not _edm_enrichment(d)]
        machine = None
        for ref in (
            given
            + issued
            + get("dctermsCreated", europeana)
            + get("dcDate", europeana)
        ):
            span = spans.get(ref)
            if span is None or _edm_enrichment(ref):
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
        aggregation = next(iter(_dicts(obj.get("aggregations"))), {})
        chos = [c["about"] for c in _dicts(obj.get("providedCHOs"))
                if isinstance(c.get("about"), str)]
        out.append(
            {
                "id": obj.get("about") or obj.get("identifier") or _first(chos),
                "title": _first(get("dcTitle")) or _first(_edm_values(obj.get("title"))),
                "titles": lang_map([p for x in provider for p in _edm_pairs(x.get("dcTitle"))]
                                   or _edm_pairs(obj.get("title"))),
                "descriptions": lang_map([p for x in provider
                                          for p in _edm_pairs(x.get("dcDescription"))]),
                "creators": [a["name"] for a in actors],
                "actors": actors,
                "date_text": _first([d for d in dates if d]),
                "machine_dates": machine,
                "object_type": _first(labelled("dcType")) or kind,
                "materials": _first([m for m in labelled("dctermsMedium") + labelled("dcFormat")
                                     if not _EDM_FILE_FORMAT.match(m)]),
                "dimensions": _first(get("dctermsExtent")),
                "place": _first(labelled("dctermsSpatial") or labelled("dcCoverage")),
                "rights": _first(_edm_values(aggregation.get("edmRights"))),
                "original": obj,
            }
        )
    return out


# -- Europeana EDM: RDF/XML ----------------------------------------------------------------------


#: the base relative URIs are resolved against (``rdf:about="#GNM:7116411"``), taken off again so
#: that a record's id is what the file says, not a path on this machine
_EDM_HOST = "http://echoes-lab.invalid"
_EDM_BASE = _EDM_HOST + "/base/"


def _edm_id(node) -> str:
    text = str(node)
    for base in (_EDM_BASE, _EDM_HOST):  # "#GNM:7116411" and "/50/_providedCHO_…" as written
        if text.startswith(base):
            return text[len(base):]
    return text


def _position(raw: str, text: str) -> int:
    m = re.search(r"<(?:dc:date|dcterms:created)\b[^>]*>\s*" + re.escape(text) + r"\s*<", raw)
    return m.start() if m else len(raw)


def read_edm_rdf(path: Path) -> list[dict]:
    """Records from EDM RDF/XML (what Europeana harvests and what its Record API gives as
    ``.rdf``), read with rdflib: one record per ``edm:ProvidedCHO``, values from the provider's
    proxy (or from the ProvidedCHO itself in a provider's own EDM), linked agents, places and
    time spans resolved to their labels and ``edm:begin``/``edm:end`` years.

    A date given only as a link to a time span is displayed by the span's label;
    ``dcterms:issued`` is the date of a text (``edm:type`` TEXT) that has no other; MIME types in
    ``dc:format`` are the file's, not the object's materials. The provider's ``ore:Aggregation``
    gives rights and the data provider (``original["data_provider"]``), also when it names the
    object with another scheme (``https://`` for ``http://``, as the BnF's records do).
    """
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
        graph.parse(str(path), format="xml", publicID=_EDM_BASE)
    except Exception as exc:  # rdflib raises many kinds for bad RDF/XML
        msg = f"{path}: not readable as RDF/XML ({type(exc).__name__}: {exc})"
        raise DataError(msg) from None
    finally:
        quiet.level = level

    def label(node) -> str | None:
        if isinstance(node, Literal):
            return _edm_text(node) or None
        labels = list(graph.objects(node, SKOSNS.prefLabel))
        english = [lb for lb in labels if getattr(lb, "language", None) == "en"]
        if not labels:
            return None
        return _edm_text((english or labels)[0]) or None

    def aggregation_of(cho):
        aggregations = set(graph.subjects(RDF.type, ore.Aggregation))
        linked = list(graph.subjects(edm.aggregatedCHO, cho))
        # the provider's aggregation, not Europeana's (edm:EuropeanaAggregation)
        found = [a for a in linked if a in aggregations] or [
            a for a in aggregations
            if str(graph.value(a, edm.aggregatedCHO)).split("://", 1)[-1]
            == str(cho).split("://", 1)[-1]
        ] or linked
        return found[0] if found else None

    def literal_dates(nodes) -> list[str]:
        # rdflib keeps no order: the display date is the provider's first in the file
        return sorted({label(o) for o in nodes if isinstance(o, Literal) and label(o)},
                      key=lambda text: (_position(raw, text), text))

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

        actors = _edm_actors([(label(o), str(o) if isinstance(o, URIRef) else None)
                              for o in values(DCNS.creator)])
        date_nodes = values(DCNS.date) + values(DCTERMS.created)
        kind = _first(texts(edm.type))
        # a text's issue is its publication; an image's "issued" is often the record's own date
        issued = values(DCTERMS.issued) if kind == "TEXT" else []
        linked = [n for n in date_nodes if isinstance(n, URIRef) and not _edm_enrichment(str(n))]
        display = (
            _first(literal_dates(date_nodes))
            or _first(literal_dates(issued))
            or _first([t for t in (label(n) for n in linked) if t])  # only a time span's label
        )
        wanted = parse_date(display) if display else None
        spans = []
        for node in (date_nodes + issued + values(DCTERMS.created, europeana)
                     + values(DCNS.date, europeana)):
            if isinstance(node, URIRef) and not _edm_enrichment(str(node)):
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
        aggregation = aggregation_of(cho)

        def of_aggregation(prop, aggregation=aggregation):
            node = graph.value(aggregation, prop) if aggregation is not None else None
            return None if node is None else label(node) or str(node)

        rights = graph.value(aggregation, edm.rights) if aggregation is not None else None
        out.append({
            "id": _edm_id(cho), "title": _first(texts(DCNS.title)),
            "titles": lang_map((o.language, o) for o in values(DCNS.title)
                               if isinstance(o, Literal)),
            "descriptions": lang_map((o.language, o) for o in values(DCNS.description)
                                     if isinstance(o, Literal)),
            "creators": [a["name"] for a in actors], "actors": actors,
            "date_text": display, "machine_dates": machine,
            "object_type": _first(texts(DCNS.type)) or kind,
            "materials": _first([t for t in texts(DCTERMS.medium) + texts(DCNS.format)
                                 if not _EDM_FILE_FORMAT.match(t)]),
            "dimensions": _first(texts(DCTERMS.extent)),
            "place": _first(texts(DCTERMS.spatial) or texts(DCNS.coverage)),
            "rights": str(rights) if rights is not None else None,
            "original": {"about": _edm_id(cho), "format": "EDM RDF/XML", "file": str(path),
                         "data_provider": of_aggregation(edm.dataProvider),
                         "provider": of_aggregation(edm.provider)},
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
