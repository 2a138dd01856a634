"""FAIR assessment of what the lab publishes: the catalogue's datasets, runs' RO-Crates and the
commons' exports of annotations (:func:`assess_annotations`).

The indicators are the FAIRsFAIR Data Object Assessment Metrics that F-UJI implements and that
can be tested without the network (no identifier is resolved, no landing page fetched), each
scored pass/fail with the evidence found:

=================  ===========================================================================
``FsF-F1-02D``      a persistent identifier (DOI, Handle or ARK) for the data
``FsF-F2-01M``      descriptive core metadata: title, summary, creator/citation, version or date
``FsF-A1-03D``      the data reachable through a standard protocol (HTTPS URLs for every file)
``FsF-I2-01M``      metadata in standard vocabularies (DCAT/Dublin Core terms, SPDX licence IRIs)
``FsF-R1.1-01M``    a licence, as a known SPDX identifier (``license-expression``'s SPDX list)
``FsF-R1.2-01M``    provenance: each file pinned (sha256) to its published source or generator
=================  ===========================================================================

A score is the fraction of indicators passed. ``FsF-F1-02D`` and ``FsF-A1-03D`` score what is
*stated* (an identifier's syntax, a URL's scheme); F-UJI also resolves them online.

References
----------
Devaraju, A., Mokrane, M., Cepinskas, L., Huber, R., Herterich, P., de Vries, J., Akerman, V.,
L'Hours, H., Davidson, J., Diepenbroek, M. (2021). From Conceptualization to Implementation:
FAIR Assessment of Research Data Objects. Data Science Journal 20(1): 4.
doi:10.5334/dsj-2021-004 (the metrics, Table 2).

Devaraju, A., Huber, R. (2021). An automated solution for measuring the progress toward FAIR
research data. Patterns 2(11): 100370. https://pmc.ncbi.nlm.nih.gov/articles/PMC8600246 (F-UJI,
the practical tests of each metric).
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from echoes_lab.errors import EchoesError

#: DOI (ISO 26324; "10." prefix, a suffix), Handle and ARK syntaxes, as F-UJI's idutils checks
PID_PATTERNS = {
    "doi": re.compile(r"\b(?:doi:|https?://(?:dx\.)?doi\.org/)?(10\.\d{4,9}/[^\s,;]+[^\s,;.)])",
                      re.IGNORECASE),
    "handle": re.compile(r"https?://hdl\.handle\.net/(\d+(?:\.\d+)*/\S+)"),
    "ark": re.compile(r"\bark:/?\d{5}/\S+"),
}

#: characters of SPDX license expressions (SPDX 2.3, Annex D: idstring, operators, parentheses)
_SPDX_CHARS = re.compile(r"[A-Za-z0-9.+:() -]+")

INDICATORS = {
    "FsF-F1-02D": "persistent identifier",
    "FsF-F2-01M": "descriptive core metadata",
    "FsF-A1-03D": "standard protocol",
    "FsF-I2-01M": "standard vocabularies",
    "FsF-R1.1-01M": "licence",
    "FsF-R1.2-01M": "provenance",
}


@dataclass(frozen=True)
class Indicator:
    """One indicator's result: ``metric`` (FsF id), ``name``, ``passed``, ``evidence``."""

    metric: str
    name: str
    passed: bool
    evidence: str


@dataclass(frozen=True)
class Assessment:
    """What was assessed (``kind``: dataset or crate; ``subject``) and its indicators."""

    kind: str
    subject: str
    indicators: tuple[Indicator, ...]

    @property
    def score(self) -> float:
        """Fraction of indicators passed (0-1)."""
        return sum(i.passed for i in self.indicators) / len(self.indicators)

    def indicator(self, metric: str) -> Indicator:
        return next(i for i in self.indicators if i.metric == metric)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "subject": self.subject, "score": round(self.score, 3),
                "indicators": [asdict(i) for i in self.indicators]}


def _ind(metric: str, passed: bool, evidence: str) -> Indicator:
    return Indicator(metric, INDICATORS[metric], bool(passed), evidence)


def _pid_indicator(pids: list[str], absent: str) -> Indicator:
    """``FsF-F1-02D`` from the identifiers :func:`find_pids` found; ``absent`` says why none."""
    return _ind("FsF-F1-02D", pids, f"stated: {', '.join(pids)}" if pids else absent)


def _core_indicator(core: dict) -> Indicator:
    """``FsF-F2-01M``: passed when every field of ``core`` (its name -> its value) has a
    value; the evidence names those it has and those it lacks."""
    missing = [k for k, v in core.items() if not v]
    return _ind("FsF-F2-01M", not missing,
                "has " + ", ".join(k for k in core if k not in missing)
                + (f"; lacks {', '.join(missing)}" if missing else ""))


def find_pids(*texts: str) -> list[str]:
    """Persistent identifiers (``doi:10.…``, ``hdl:…``, ``ark:…``) stated in ``texts``."""
    found: list[str] = []
    for text in texts:
        for scheme, pattern in PID_PATTERNS.items():
            for m in pattern.finditer(text or ""):
                pid = f"doi:{m.group(1).lower()}" if scheme == "doi" else (
                    f"hdl:{m.group(1)}" if scheme == "handle" else m.group(0))
                if pid not in found:
                    found.append(pid)
    return found


def spdx_licence(licence: str) -> tuple[bool, str]:
    """Whether ``licence`` is an SPDX expression of known licences, and why."""
    from license_expression import get_spdx_licensing

    if not licence:
        return False, "no licence stated"
    if not _SPDX_CHARS.fullmatch(licence):  # the library's parser fails on other characters
        return False, f"licence {licence!r} is not an SPDX identifier"
    info = get_spdx_licensing().validate(licence)
    if info.errors:
        return False, f"licence {licence!r} is not an SPDX identifier ({'; '.join(info.errors)})"
    return True, f"licence {licence} (https://spdx.org/licenses/{licence})"


# -- catalogue datasets -------------------------------------------------------------------------

def assess_dataset(entry: dict) -> Assessment:
    """The FAIR indicators of one catalogue entry (:func:`echoes_lab.datasets.entries`)."""
    name = entry.get("name", "?")
    files = entry.get("files") or []
    pids = find_pids(entry.get("homepage", ""), entry.get("citation", ""),
                     entry.get("identifier", ""))
    f1 = _pid_indicator(pids, "no DOI, Handle or ARK in the entry's homepage, citation or "
                        "identifier")

    core = {"title": entry.get("title"), "summary": entry.get("description"),
            "creator (citation)": entry.get("citation"),
            "version or date": entry.get("version") or entry.get("generator")}
    f2 = _core_indicator(core)

    urls = [f.get("url", "") for f in files]
    https = [u for u in urls if u.startswith("https://")]
    if entry.get("generator"):
        a1 = _ind("FsF-A1-03D", False, f"generated on this machine by {entry['generator']}; "
                                       f"not published at any URL")
    else:
        a1 = _ind("FsF-A1-03D", files and len(https) == len(files),
                  f"{len(https)} of {len(files)} files at an HTTPS URL"
                  + ("" if len(https) == len(files) else
                     " (the others only in a mirror: " + ", ".join(
                         f["path"] for f in files if not f.get("url", "").startswith("https://"))
                     + ")"))

    ok, why = spdx_licence(entry.get("licence", ""))
    r11 = _ind("FsF-R1.1-01M", ok, why)
    # the entry as DCAT 3 / Dublin Core terms with an SPDX licence IRI (echoes_lab.knowledge.rdf)
    i2 = _ind("FsF-I2-01M", ok and bool(entry.get("title")),
              "published as dcat:Dataset with dct:title, dct:description, "
              "dct:bibliographicCitation, dct:license <http://spdx.org/licenses/"
              f"{entry.get('licence', '')}>, dcat:distribution per file"
              if ok else "the licence is not an SPDX IRI: " + why)

    unpinned = [f["path"] for f in files if not f.get("sha256")]
    sourced = [f["path"] for f in files if f.get("url") or f.get("derived_from")]
    if entry.get("generator"):
        r12 = _ind("FsF-R1.2-01M", not unpinned,
                   f"synthetic: generated by {entry['generator']} ({entry.get('citation', '')})"
                   f"; {len(files) - len(unpinned)} of {len(files)} files pinned by sha256")
    else:
        r12 = _ind("FsF-R1.2-01M", files and not unpinned and len(sourced) == len(files)
                   and bool(entry.get("version")),
                   f"version {entry.get('version') or '(none)'}; {len(sourced)} of {len(files)} "
                   f"files name their source (url or derived_from), "
                   f"{len(files) - len(unpinned)} pinned by sha256")
    return Assessment("dataset", name, (f1, f2, a1, i2, r11, r12))


def assess_catalog(data: str | Path | None = None) -> list[Assessment]:
    """Every catalogue entry's assessment (:func:`echoes_lab.datasets.entries`)."""
    from echoes_lab import datasets

    return [assess_dataset(e) for e in datasets.entries(data)]


def catalog_table(data: str | Path | None = None):
    """:func:`echoes_lab.datasets.catalog` with a ``fair`` column (score 0-1)."""
    from echoes_lab import datasets

    table = datasets.catalog(data)
    scores = {a.subject: round(a.score, 2) for a in assess_catalog(data)}
    table["fair"] = [scores.get(n) for n in table.index]
    return table


# -- runs' RO-Crates ----------------------------------------------------------------------------

def _ids(value) -> list[str]:
    items = value if isinstance(value, list) else [value] if value else []
    return [v.get("@id") if isinstance(v, dict) else v for v in items]


def validate_crate(path: str | Path) -> list[str]:
    """The problems roc-validator finds in a run's crate (Process Run Crate 0.5, MUST checks);
    :func:`echoes_lab.runs.provenance.validate_crate`."""
    from echoes_lab.runs.provenance import validate_crate as validate

    folder = Path(path)
    return validate(folder if folder.is_dir() else folder.parent)


#: roc-validator's RO-Crate 1.3 checks that only fetch the JSON-LD context from w3id.org: on a
#: machine without internet they cannot run (the runs' crates skip their 1.1 twins likewise)
_CONTEXT_CHECKS = ("ro-crate-1.3_1.1:", "ro-crate-1.2_4.1:")


def validate_export(folder: str | Path) -> list[str]:
    """The problems roc-validator finds in a commons RO-Crate export (unzipped ``folder``):
    the RO-Crate 1.3 profile's MUST checks, as the ``rocrate`` library writes 1.3.

    Without internet the two checks that fetch the RO-Crate context cannot run and are left
    out, named in a warning."""
    import warnings

    from echoes_lab.runs.provenance import validate_crate as validate

    problems = validate(Path(folder), profile="ro-crate-1.3")
    offline = [p for p in problems if p.startswith(_CONTEXT_CHECKS) and (
        "Unable to retrieve" in p or "Max retries" in p or "resolve" in p)]
    if offline:
        warnings.warn(f"RO-Crate context not reachable: {len(offline)} checks not run "
                      f"({', '.join(p.split(':', 1)[0] for p in offline)})", stacklevel=2)
    return [p for p in problems if p not in offline]


def assess_crate(path: str | Path) -> Assessment:
    """The FAIR indicators of a run's RO-Crate (a folder or its ``ro-crate-metadata.json``)."""
    path = Path(path)
    meta = path / "ro-crate-metadata.json" if path.is_dir() else path
    try:
        doc = json.loads(meta.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        msg = f"{meta}: not a readable RO-Crate metadata file ({exc}); give a run's output folder"
        raise EchoesError(msg) from None
    return assess_crate_metadata(doc, str(path), label=str(meta))


def assess_crate_metadata(doc: dict, subject: str, label: str = "the crate") -> Assessment:
    """:func:`assess_crate` of a crate's metadata already read (``ro-crate-metadata.json`` as
    a dict); ``subject`` names it in the result, ``label`` in errors."""
    graph = doc.get("@graph") if isinstance(doc, dict) else None
    if not isinstance(graph, list):
        msg = f"{label}: no @graph list (RO-Crate 1.1 §4: the metadata file is flattened JSON-LD)"
        raise EchoesError(msg)
    g = {e.get("@id"): e for e in graph if isinstance(e, dict)}
    root_id = next((e.get("about", {}).get("@id") for e in g.values()
                    if e.get("@id") == "ro-crate-metadata.json"), "./")
    root = g.get(root_id, {})
    ident = " ".join(_ids(root.get("identifier"))) + " " + (root.get("@id") or "")
    pids = find_pids(ident)
    f1 = _pid_indicator(pids, "the crate's root has no DOI, Handle or ARK (a run's crate is "
                        "local until deposited)")
    core = {"name": root.get("name"), "description": root.get("description"),
            "datePublished": root.get("datePublished"),
            "author/creator": root.get("author") or root.get("creator")}
    f2 = _core_indicator(core)
    parts = [g.get(i, {"@id": i}) for i in _ids(root.get("hasPart"))]
    a1 = _ind("FsF-A1-03D", bool(parts), f"{len(parts)} files packaged with the crate "
              "(RO-Crate: a folder or ZIP any HTTP/WebDAV/file service serves)")
    ok, why = spdx_licence(next((i.rsplit("/", 1)[-1] for i in _ids(root.get("license"))),
                                ""))
    r11 = _ind("FsF-R1.1-01M", ok, why)
    contexts = doc.get("@context")
    std = "https://w3id.org/ro/crate/" in json.dumps(contexts)
    i2 = _ind("FsF-I2-01M", std, f"@context {contexts}: schema.org via the RO-Crate context"
              if std else f"@context {contexts} is not RO-Crate's")
    actions = [e for e in g.values() if "CreateAction" in _ids(e.get("@type"))
               or e.get("@type") == "CreateAction"]
    r12 = _ind("FsF-R1.2-01M", bool(actions),
               f"{len(actions)} CreateAction(s): instrument "
               + ", ".join(str(_ids(a.get("instrument"))) for a in actions)
               if actions else "no CreateAction saying what made the outputs")
    return Assessment("crate", subject, (f1, f2, a1, i2, r11, r12))


# -- commons exports (W3C Web Annotations) ------------------------------------------------------

#: the W3C Web Annotation Data Model's JSON-LD context (§A) and motivations (§3.3.5)
ANNO_CONTEXT = "http://www.w3.org/ns/anno.jsonld"
MOTIVATIONS = frozenset({"assessing", "bookmarking", "classifying", "commenting", "describing",
                         "editing", "highlighting", "identifying", "linking", "moderating",
                         "questioning", "replying", "tagging"})
#: a Creative Commons licence or dedication IRI (http or https), for its SPDX identifier
_CC_IRI = re.compile(r"^https?://creativecommons\.org/(?:licenses/([a-z-]+)/(\d\.\d)|"
                     r"publicdomain/(zero)/(1\.0))/?$")


def cc_spdx(iri: str) -> str:
    """The SPDX identifier of a Creative Commons licence IRI (``CC-BY-4.0``, ``CC0-1.0``), or
    ``""`` when ``iri`` is not one."""
    m = _CC_IRI.match(iri or "")
    if not m:
        return ""
    if m.group(3):
        return f"CC0-{m.group(4)}"
    return f"CC-{m.group(1).upper()}-{m.group(2)}"


def _read_annotations(source) -> dict:
    """The export as a JSON-LD object: a dict, a ``.json``/``.jsonld`` file, or the commons'
    RO-Crate ZIP (``export/crate``) holding ``annotations.jsonld``."""
    import zipfile

    if isinstance(source, dict):
        return source
    path = Path(source)
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as zf:
                text = zf.read("annotations.jsonld").decode("utf-8")
        else:
            text = path.read_text(encoding="utf-8")
        doc = json.loads(text)
    except KeyError:
        msg = f"{path}: a ZIP without annotations.jsonld; give the commons' export/crate ZIP"
        raise EchoesError(msg) from None
    except (OSError, ValueError) as exc:
        msg = f"{path}: not a readable Web Annotation export ({exc})"
        raise EchoesError(msg) from None
    if not isinstance(doc, dict):
        msg = f"{path}: the export is not a JSON object (an AnnotationCollection or Page)"
        raise EchoesError(msg)
    return doc


def _items(doc: dict) -> list[dict]:
    if isinstance(doc.get("items"), list):  # an AnnotationPage
        return [a for a in doc["items"] if isinstance(a, dict)]
    first = doc.get("first")
    if isinstance(first, dict) and isinstance(first.get("items"), list):  # a Collection
        return [a for a in first["items"] if isinstance(a, dict)]
    if doc.get("type") == "Annotation":
        return [doc]
    return []


def assess_annotations(source) -> Assessment:
    """The FAIR indicators of a commons export: W3C Web Annotations as an
    ``AnnotationCollection`` (``export/mine``, the annotations' container), an
    ``AnnotationPage`` or the commons' RO-Crate ZIP (``export/crate``).

    Each indicator passes when it holds for the export and every annotation in it: a
    persistent identifier for the export; its label and each annotation's ``creator`` and
    ``created`` (Web Annotation Data Model §3.3.1); annotation ids that are HTTP(S) IRIs, which
    the W3C Web Annotation Protocol serves; the W3C context and motivations (§3.3.5); a licence
    per annotation (``rights``, §3.3.6) that is a known SPDX licence; who made each annotation,
    a person (``creator``) or software (``generator``).

    References
    ----------
    Sanderson, R., Ciccarese, P., Young, B. (2017). Web Annotation Data Model. W3C
    Recommendation, https://www.w3.org/TR/annotation-model/ (§3.3.1 lifecycle, §3.3.5
    motivation, §3.3.6 rights). Sanderson, R. (2017). Web Annotation Protocol. W3C
    Recommendation, https://www.w3.org/TR/annotation-protocol/.
    """
    doc = _read_annotations(source)
    items = _items(doc)
    if not items:
        msg = ("the export holds no annotations: give an AnnotationCollection (with 'first' "
               "and its 'items'), an AnnotationPage ('items') or the commons' export/crate ZIP")
        raise EchoesError(msg)
    n = len(items)
    subject = str(doc.get("id") or ("(export)" if isinstance(source, dict) else source))
    pids = find_pids(str(doc.get("id") or ""), *(_ids(doc.get("identifier"))),
                     str(doc.get("canonical") or ""))
    f1 = _pid_indicator(pids, "no DOI, Handle or ARK: the export is identified by "
                        f"{doc.get('id') or 'nothing'}")

    label = doc.get("label")
    dated = sum(1 for a in items if a.get("creator") and a.get("created"))
    f2 = _ind("FsF-F2-01M", bool(label) and dated == n,
              (f"label {label!r}" if label else "no label") +
              f"; {dated} of {n} annotations state creator and created")

    served = sum(1 for a in items if str(a.get("id", "")).startswith(("https://", "http://")))
    a1 = _ind("FsF-A1-03D", served == n, f"{served} of {n} annotation ids are HTTP(S) IRIs "
              "(the W3C Web Annotation Protocol serves them)")

    contexts = doc.get("@context")
    contexts = contexts if isinstance(contexts, list) else [contexts]
    used = sorted({m for a in items for m in (a.get("motivation") if isinstance(
        a.get("motivation"), list) else [a.get("motivation")]) if m})
    foreign = [m for m in used if m not in MOTIVATIONS]
    w3c = ANNO_CONTEXT in contexts
    i2 = _ind("FsF-I2-01M", w3c and not foreign,
              (f"@context {ANNO_CONTEXT}" if w3c else f"@context {contexts} is not the W3C's")
              + (f"; motivations {', '.join(used)}" if used else "; no motivation stated")
              + (f" ({', '.join(foreign)} not in the W3C vocabulary)" if foreign else
                 (": all in the W3C vocabulary" if used else "")))

    licences: dict[str, int] = {}
    for a in items:
        spdx = cc_spdx(str(a.get("rights") or ""))
        if not spdx and a.get("rights") and spdx_licence(str(a["rights"]))[0]:
            spdx = str(a["rights"])
        if spdx:
            licences[spdx] = licences.get(spdx, 0) + 1
    licensed = sum(licences.values())
    r11 = _ind("FsF-R1.1-01M", licensed == n,
               f"{licensed} of {n} annotations state a known licence"
               + (" (" + ", ".join(f"{k} x{v}" for k, v in sorted(licences.items())) + ")"
                  if licences else ""))

    people = sum(1 for a in items if a.get("creator"))
    software = sum(1 for a in items if a.get("generator"))
    made = sum(1 for a in items if a.get("creator") or a.get("generator"))
    r12 = _ind("FsF-R1.2-01M", made == n,
               f"{made} of {n} annotations name who made them (creator: {people}, "
               f"generator, i.e. software: {software})")
    return Assessment("annotations", subject, (f1, f2, a1, i2, r11, r12))
