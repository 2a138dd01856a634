"""What the library knows, as RDF: Linked Art documents, W3C annotations, runs (PROV-O) and
the datasets catalogue (DCAT), as pyoxigraph quads.

* Linked Art JSON-LD is read by pyoxigraph's JSON-LD parser with the Linked Art context
  shipped in ``cromulent`` (no download: the hub and users' labs may be offline).
* Annotations follow the Web Annotation Vocabulary (W3C Recommendation, 23 February 2017,
  https://www.w3.org/TR/annotation-vocab/): ``oa:Annotation``, ``oa:hasBody``,
  ``oa:hasTarget``, ``oa:motivatedBy``, ``oa:SpecificResource`` with ``oa:hasSource`` and
  ``oa:hasSelector``, ``oa:TextualBody`` with ``rdf:value``; agents with ``dcterms:creator``
  and ``as:generator`` as §3.3.1 of the model says.
* Runs follow PROV-O (W3C Recommendation, 30 April 2013, https://www.w3.org/TR/prov-o/):
  the run is a ``prov:Activity`` that ``prov:used`` its inputs and parameters,
  ``prov:generated`` its outputs and ``prov:wasAssociatedWith`` the software that ran it.
* A target that is a place (a GeoJSON Feature, IIIF ``navPlace`` style, as
  :mod:`echoes_lab.sites` makes them) is a Linked Art Place, ``crm:E53_Place`` defined by its
  geometry as WKT.
* Datasets follow DCAT 3 (W3C Recommendation, 22 August 2024, https://www.w3.org/TR/vocab-dcat-3/).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from functools import cache
from pathlib import Path

import pyoxigraph as ox

from echoes_lab.errors import DataError

RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
RDFS = "http://www.w3.org/2000/01/rdf-schema#"
XSD = "http://www.w3.org/2001/XMLSchema#"
OA = "http://www.w3.org/ns/oa#"
AS = "https://www.w3.org/ns/activitystreams#"
DCT = "http://purl.org/dc/terms/"
DC = "http://purl.org/dc/elements/1.1/"
PROV = "http://www.w3.org/ns/prov#"
DCAT = "http://www.w3.org/ns/dcat#"
FOAF = "http://xmlns.com/foaf/0.1/"
CRM = "http://www.cidoc-crm.org/cidoc-crm/"
SCHEMA = "http://schema.org/"

#: JSON-LD contexts resolved from local copies (url -> loader)
LINKED_ART_CONTEXTS = ("https://linked.art/ns/v1/linked-art.json",
                       "http://linked.art/ns/v1/linked-art.json")
#: other contexts registered with :func:`register_context` (url -> the context's content)
CONTEXTS: dict[str, dict | list] = {}


def register_context(url: str, source: str | Path | dict) -> None:
    """Read documents naming the remote context ``url`` with a local copy (a file or its
    parsed JSON): nothing is downloaded, so older Linked Art (``…/ns/context/1/full.jsonld``)
    or a museum's own context must be registered before its documents are loaded."""
    if not isinstance(source, dict):
        source = json.loads(Path(source).read_text(encoding="utf-8"))
    CONTEXTS[url] = source.get("@context", source)


def N(iri: str) -> ox.NamedNode:  # noqa: N802 - the RDF libraries' own spelling
    return ox.NamedNode(iri)


def lit(value, datatype: str | None = None, language: str | None = None) -> ox.Literal:
    if language:
        return ox.Literal(str(value), language=language)
    if datatype:
        return ox.Literal(str(value), datatype=N(XSD + datatype))
    return ox.Literal(str(value))


@cache
def linked_art_context() -> dict:
    """The Linked Art JSON-LD context (cromulent's copy of https://linked.art/ns/v1/linked-art.json)."""
    import cromulent

    path = Path(cromulent.__file__).parent / "data" / "linked-art.json"
    return json.loads(path.read_text(encoding="utf-8"))["@context"]


def _local_contexts(ctx):
    """The context with the remote contexts we ship replaced by their content."""
    if isinstance(ctx, str):
        if ctx in CONTEXTS:
            return CONTEXTS[ctx]
        return linked_art_context() if ctx in LINKED_ART_CONTEXTS else ctx
    if isinstance(ctx, list):
        return [_local_contexts(c) for c in ctx]
    return ctx


def _ox_term(term):
    """An rdflib term as pyoxigraph's."""
    import rdflib

    if isinstance(term, rdflib.URIRef):
        return ox.NamedNode(str(term))
    if isinstance(term, rdflib.BNode):
        return ox.BlankNode(str(term))
    if term.language:
        return ox.Literal(str(term), language=term.language)
    if term.datatype:
        return ox.Literal(str(term), datatype=ox.NamedNode(str(term.datatype)))
    return ox.Literal(str(term))


def jsonld_quads(doc: dict | list, graph: ox.NamedNode, where: str = "the document",
                 base: str | None = None) -> list[ox.Quad]:
    """A JSON-LD document or a list of them (Linked Art and other contexts we ship) as quads
    in ``graph``.

    rdflib's JSON-LD processor reads them: pyoxigraph's (0.5) re-processes Linked Art's
    type-scoped contexts at every node, 15 times slower on a museum's records. Documents
    sharing a context are read as one ``@graph``, so the context is processed once. Relative
    IRIs (and terms the context does not define, used as types) resolve against ``base``, the
    document's own address, as JSON-LD 1.1 §4.1.3 says; default: the graph's IRI.

    Raises
    ------
    DataError
        The JSON-LD is malformed or names a remote context we do not have (``where`` names it).
    """
    import rdflib

    docs = doc if isinstance(doc, list) else [doc]
    batches: dict[str, list[dict]] = {}
    for d in docs:
        if not isinstance(d, dict):
            msg = f"{where}: a JSON-LD document must be a JSON object, not {type(d).__name__}"
            raise DataError(msg)
        key = json.dumps(d.get("@context"), sort_keys=True)
        batches.setdefault(key, []).append({k: v for k, v in d.items() if k != "@context"})
    out: list[ox.Quad] = []
    for key, items in batches.items():
        ctx = _local_contexts(json.loads(key))
        if isinstance(ctx, str) or (isinstance(ctx, list) and any(isinstance(c, str)
                                                                   for c in ctx)):
            msg = (f"{where}: its JSON-LD context {ctx} is not one we have offline; "
                   f"Linked Art documents use {LINKED_ART_CONTEXTS[0]}; register a copy of "
                   "another with knowledge.register_context(url, path), or give it inline")
            raise DataError(msg)
        d = {"@graph": items} if ctx is None else {"@context": ctx, "@graph": items}
        g = rdflib.Graph()
        try:
            g.parse(data=json.dumps(d), format="json-ld", publicID=base or graph.value)
        except Exception as exc:  # rdflib raises many kinds on bad JSON-LD
            msg = f"{where}: not readable JSON-LD ({type(exc).__name__}: {exc})"
            raise DataError(msg) from None
        out.extend(ox.Quad(_ox_term(s), ox.NamedNode(str(p)), _ox_term(o), graph)
                   for s, p, o in g)
    return out


# -- annotations (W3C Web Annotation Vocabulary) ------------------------------------------------

_SELECTOR_TYPES = {"FragmentSelector", "CssSelector", "XPathSelector", "TextQuoteSelector",
                   "TextPositionSelector", "DataPositionSelector", "SvgSelector", "RangeSelector"}


def _node(value: str | None, mint=None) -> ox.NamedNode | ox.BlankNode:
    if isinstance(value, str) and ":" in value:
        return N(value)
    return mint() if mint else ox.BlankNode()


def _many(value) -> list:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _agent(agent, graph, out: list, kind: str) -> ox.NamedNode | ox.BlankNode:
    if isinstance(agent, str):
        return N(agent)
    node = _node(agent.get("id"))
    types = _many(agent.get("type")) or [kind]
    for t in types:
        out.append(ox.Quad(node, N(RDF + "type"), N((PROV if t == "SoftwareAgent" else AS
                                                        if t == "Application" else
                                                        SCHEMA if t == "Software" else FOAF) + t),
                           graph))
    for key, pred in (("name", FOAF + "name"), ("nickname", FOAF + "nick"),
                      ("version", SCHEMA + "softwareVersion")):
        if agent.get(key) is not None:
            out.append(ox.Quad(node, N(pred), lit(agent[key]), graph))
    if isinstance(agent.get("homepage"), str):
        out.append(ox.Quad(node, N(FOAF + "homepage"), N(agent["homepage"]), graph))
    return node


def _resource(res, graph, out: list, role: str, mint=None) -> ox.NamedNode | ox.BlankNode:
    """A body or target: an IRI, a TextualBody or a SpecificResource with its selectors."""
    if isinstance(res, str):
        return N(res)
    node = _node(res.get("id"), mint)
    rtype = res.get("type")
    if rtype == "TextualBody" or (role == "body" and "value" in res and "source" not in res):
        out.append(ox.Quad(node, N(RDF + "type"), N(OA + "TextualBody"), graph))
        out.append(ox.Quad(node, N(RDF + "value"), lit(res.get("value", ""), language=None
                                                       if not isinstance(res.get("language"), str)
                                                       else res["language"]), graph))
    if "source" in res:
        out.append(ox.Quad(node, N(RDF + "type"), N(OA + "SpecificResource"), graph))
        src = res["source"]
        out.append(ox.Quad(node, N(OA + "hasSource"),
                           N(src["id"] if isinstance(src, dict) else src), graph))
        for sel in _many(res.get("selector")):
            if not isinstance(sel, dict):
                continue
            s = _node(sel.get("id"), mint)
            out.append(ox.Quad(node, N(OA + "hasSelector"), s, graph))
            if sel.get("type") in _SELECTOR_TYPES:
                out.append(ox.Quad(s, N(RDF + "type"), N(OA + sel["type"]), graph))
            if sel.get("value") is not None:
                out.append(ox.Quad(s, N(RDF + "value"), lit(sel["value"]), graph))
            if isinstance(sel.get("conformsTo"), str):
                out.append(ox.Quad(s, N(DCT + "conformsTo"), N(sel["conformsTo"]), graph))
    for key, pred in (("format", DC + "format"), ("language", DC + "language")):
        for v in _many(res.get(key)):
            if isinstance(v, str):
                out.append(ox.Quad(node, N(pred), lit(v), graph))
    if isinstance(res.get("purpose"), str):
        out.append(ox.Quad(node, N(OA + "hasPurpose"), N(OA + res["purpose"]), graph))
    elif rtype == "Feature":
        _place(node, res, graph, out, role)
    elif rtype and rtype not in ("TextualBody", "SpecificResource") and isinstance(rtype, str):
        out.append(ox.Quad(node, N(RDF + "type"), N(SCHEMA + rtype), graph))
    return node


def _place(node, feature: dict, graph, out: list, role: str) -> None:
    """A GeoJSON Feature (a place annotated in the commons, ``echoes_lab.sites``) as a Linked
    Art Place: ``crm:E53_Place``, ``rdfs:label`` from its IIIF-style ``label`` and
    ``crm:P168_place_is_defined_by`` its geometry as WKT, the way Linked Art's ``defined_by``
    does (Linked Art model, "Place", https://linked.art/model/place/; CIDOC CRM 7.1.3, P168
    "place is defined by", whose range E94 Space Primitive Linked Art writes as WKT), so one
    SPARQL question finds the commons' places beside museums' Linked Art ones.
    """
    import shapely.geometry
    from shapely.errors import ShapelyError

    out.append(ox.Quad(node, N(RDF + "type"), N(CRM + "E53_Place"), graph))
    label = (feature.get("properties") or {}).get("label")
    pairs = label.items() if isinstance(label, dict) else [("none", label)]
    for language, values in pairs:
        for value in _many(values):
            if isinstance(value, str):
                out.append(ox.Quad(node, N(RDFS + "label"), lit(
                    value, language=None if language == "none" else language), graph))
    if feature.get("geometry") is None:
        return  # a place known by name only (GeoJSON allows a null geometry, RFC 7946 §3.2)
    try:
        wkt = shapely.geometry.shape(feature["geometry"]).wkt
    except (KeyError, TypeError, ValueError, AttributeError, ShapelyError) as exc:
        msg = (f"the {role} {feature.get('id', '')} is a GeoJSON Feature whose 'geometry' is "
               f"not GeoJSON ({exc}): give a geometry as RFC 7946 §3.1 writes it, e.g. "
               '{"type": "Point", "coordinates": [lon, lat]}')
        raise DataError(msg) from exc
    out.append(ox.Quad(node, N(CRM + "P168_place_is_defined_by"), lit(wkt), graph))


def annotation_quads(ann: dict, graph: ox.NamedNode, skolem: bool = False) -> list[ox.Quad]:
    """One W3C Web Annotation (the commons' JSON) as quads in ``graph``.

    With ``skolem``, bodies, targets and selectors without an id get IRIs under the
    annotation's own (``<id>#r1`` …, RDF 1.1 Concepts §3.5 skolemisation), so everything an
    annotation said can be removed again by its IRI when it changes or leaves.

    Raises
    ------
    DataError
        It has no ``id`` or no ``target``.
    """
    if not isinstance(ann, dict) or not isinstance(ann.get("id"), str):
        msg = "an annotation needs an 'id' (an IRI): add it to the commons first, then here"
        raise DataError(msg)
    if ann.get("target") is None:
        msg = f"annotation {ann['id']} has no 'target': what does it annotate?"
        raise DataError(msg)
    out: list[ox.Quad] = []
    a = N(ann["id"])
    counter = iter(range(1, 1 << 30))
    mint = (lambda: N(f"{ann['id']}#r{next(counter)}")) if skolem else None
    out.append(ox.Quad(a, N(RDF + "type"), N(OA + "Annotation"), graph))
    for m in _many(ann.get("motivation")):
        out.append(ox.Quad(a, N(OA + "motivatedBy"), N(OA + m), graph))
    for body in _many(ann.get("body")):
        out.append(ox.Quad(a, N(OA + "hasBody"), _resource(body, graph, out, "body", mint),
                           graph))
    for target in _many(ann.get("target")):
        out.append(ox.Quad(a, N(OA + "hasTarget"),
                           _resource(target, graph, out, "target", mint), graph))
    for key in ("created", "modified", "generated"):
        if isinstance(ann.get(key), str):
            out.append(ox.Quad(a, N(DCT + key if key != "generated" else DCT + "issued"),
                               lit(ann[key], "dateTime"), graph))
    if ann.get("creator"):
        out.append(ox.Quad(a, N(DCT + "creator"), _agent(ann["creator"], graph, out, "Person"),
                           graph))
    if ann.get("generator"):
        out.append(ox.Quad(a, N(AS + "generator"),
                           _agent(ann["generator"], graph, out, "Software"), graph))
    if isinstance(ann.get("rights"), str):
        out.append(ox.Quad(a, N(DCT + "rights"), N(ann["rights"]), graph))
    return out


# -- runs (PROV-O) and datasets (DCAT) ----------------------------------------------------------

def run_quads(crate: str | Path, graph: ox.NamedNode) -> list[ox.Quad]:
    """A notebook run's RO-Crate (``echoes_lab.runs``) as a PROV-O activity."""
    from echoes_lab import __version__
    from echoes_lab.runs.provenance import read_crate

    folder = Path(crate).resolve()
    info = read_crate(folder)
    run = N(folder.as_uri() + "#run")
    software = N(f"https://pypi.org/project/echoes-lab/{__version__}/")
    out = [ox.Quad(run, N(RDF + "type"), N(PROV + "Activity"), graph),
           ox.Quad(run, N(RDFS + "label"), lit(f"notebook run {folder.name}"), graph),
           ox.Quad(run, N(PROV + "wasAssociatedWith"), software, graph),
           ox.Quad(software, N(RDF + "type"), N(PROV + "SoftwareAgent"), graph),
           ox.Quad(software, N(FOAF + "name"), lit(f"echoes-lab {__version__}"), graph),
           ox.Quad(run, N(SCHEMA + "actionStatus"), lit(info["status"]), graph)]
    for key, pred in (("start", "startedAtTime"), ("end", "endedAtTime")):
        if info.get(key):
            out.append(ox.Quad(run, N(PROV + pred), lit(info[key], "dateTime"), graph))
    for name, value in info["parameters"].items():
        p = ox.BlankNode()
        out += [ox.Quad(run, N(PROV + "used"), p, graph),
                ox.Quad(p, N(RDF + "type"), N(SCHEMA + "PropertyValue"), graph),
                ox.Quad(p, N(SCHEMA + "name"), lit(name), graph),
                ox.Quad(p, N(SCHEMA + "value"), lit(json.dumps(value)), graph)]
    for item in info["inputs"]:
        for f in item["files"]:
            node = N((folder / f["path"]).as_uri())
            out += [ox.Quad(run, N(PROV + "used"), node, graph),
                    ox.Quad(node, N(RDF + "type"), N(PROV + "Entity"), graph),
                    ox.Quad(node, N(SCHEMA + "sha256"), lit(f["sha256"]), graph)]
    for output in info["outputs"]:
        node = N((folder / output).as_uri())
        out += [ox.Quad(run, N(PROV + "generated"), node, graph),
                ox.Quad(node, N(RDF + "type"), N(PROV + "Entity"), graph),
                ox.Quad(node, N(PROV + "wasGeneratedBy"), run, graph)]
    return out


def dataset_quads(entries: Iterable[dict], graph: ox.NamedNode,
                  base: str = "urn:echoes:dataset/") -> Iterator[ox.Quad]:
    """Catalogue entries (``echoes_lab.datasets.entries()``) as DCAT datasets."""
    for e in entries:
        d = N(base + e["name"])
        yield ox.Quad(d, N(RDF + "type"), N(DCAT + "Dataset"), graph)
        yield ox.Quad(d, N(DCT + "identifier"), lit(e["name"]), graph)
        for key, pred in (("title", DCT + "title"), ("description", DCT + "description"),
                          ("citation", DCT + "bibliographicCitation")):
            if e.get(key):
                yield ox.Quad(d, N(pred), lit(str(e[key]).strip()), graph)
        if e.get("licence"):
            yield ox.Quad(d, N(DCT + "license"),
                          N(f"http://spdx.org/licenses/{e['licence']}"), graph)
        if e.get("homepage"):
            yield ox.Quad(d, N(DCAT + "landingPage"), N(e["homepage"]), graph)
        for f in e.get("files") or []:
            dist = N(f"{base}{e['name']}/{f['path']}")
            yield ox.Quad(d, N(DCAT + "distribution"), dist, graph)
            yield ox.Quad(dist, N(RDF + "type"), N(DCAT + "Distribution"), graph)
            yield ox.Quad(dist, N(DCT + "format"),
                          lit(e.get("format", "")), graph)
            if f.get("url"):
                yield ox.Quad(dist, N(DCAT + "downloadURL"), N(f["url"]), graph)
            if f.get("sha256"):
                yield ox.Quad(dist, N("http://spdx.org/rdf/terms#checksumValue"),
                              lit(f["sha256"]), graph)
