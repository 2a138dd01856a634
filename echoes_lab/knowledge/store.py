"""The knowledge base in a notebook: an embedded pyoxigraph store (SPARQL 1.1) in a folder.

Every source is a named graph, and the graph says where and when it came from (PROV-O,
inside the graph itself, so whoever may read a graph may read its provenance)::

    <graph> a prov:Entity ; prov:wasDerivedFrom <source> ; prov:generatedAtTime "…" ;
            dcterms:format "text/turtle" ; rdfs:label "…" .
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import pyoxigraph as ox

from echoes_lab.errors import DataError
from echoes_lab.knowledge import rdf

#: graph IRIs we mint start with this
GRAPH_BASE = "urn:echoes:graph:"

#: file suffix -> (pyoxigraph format, media type)
FORMATS = {
    ".ttl": ox.RdfFormat.TURTLE, ".turtle": ox.RdfFormat.TURTLE, ".nt": ox.RdfFormat.N_TRIPLES,
    ".nq": ox.RdfFormat.N_QUADS, ".trig": ox.RdfFormat.TRIG, ".rdf": ox.RdfFormat.RDF_XML,
    ".owl": ox.RdfFormat.RDF_XML, ".xml": ox.RdfFormat.RDF_XML, ".jsonld": ox.RdfFormat.JSON_LD,
    ".json": ox.RdfFormat.JSON_LD, ".n3": ox.RdfFormat.N3,
}
_NAMES = {"turtle": ox.RdfFormat.TURTLE, "ttl": ox.RdfFormat.TURTLE,
          "ntriples": ox.RdfFormat.N_TRIPLES, "nt": ox.RdfFormat.N_TRIPLES,
          "nquads": ox.RdfFormat.N_QUADS, "nq": ox.RdfFormat.N_QUADS,
          "trig": ox.RdfFormat.TRIG, "rdfxml": ox.RdfFormat.RDF_XML, "xml": ox.RdfFormat.RDF_XML,
          "jsonld": ox.RdfFormat.JSON_LD, "json-ld": ox.RdfFormat.JSON_LD}

#: prefixes every query may use without declaring them
PREFIXES = {
    "rdf": rdf.RDF, "rdfs": rdf.RDFS, "xsd": rdf.XSD, "crm": rdf.CRM, "la": "https://linked.art/ns/terms/",
    "aat": "http://vocab.getty.edu/aat/", "oa": rdf.OA, "as": rdf.AS, "dcterms": rdf.DCT,
    "dc": rdf.DC, "prov": rdf.PROV, "dcat": rdf.DCAT, "foaf": rdf.FOAF, "schema": rdf.SCHEMA,
    "skos": "http://www.w3.org/2004/02/skos/core#", "edm": "http://www.europeana.eu/schemas/edm/",
    "ore": "http://www.openarchives.org/ore/terms/",
}

_QUERY_POSITION = re.compile(r"error at (\d+):(\d+)")


class KnowledgeError(DataError):
    """RDF that cannot be read, or a SPARQL query that cannot be run (the message says where)."""


def rdf_format(name_or_path: str | None, media_type: str | None = None) -> ox.RdfFormat:
    """The RDF format of a name (``"turtle"``), a media type or a file name's suffix."""
    if media_type:
        fmt = ox.RdfFormat.from_media_type(media_type.split(";")[0].strip())
        if fmt is not None:
            return fmt
    if name_or_path:
        key = str(name_or_path).lower()
        if key in _NAMES:
            return _NAMES[key]
        suffix = Path(key.split("?")[0]).suffix
        if suffix in FORMATS:
            return FORMATS[suffix]
    msg = (f"cannot tell the RDF format of {name_or_path or media_type!r}: give format= one of "
           f"{', '.join(sorted(set(_NAMES)))}")
    raise KnowledgeError(msg)


def parse_error(exc: Exception, where: str) -> KnowledgeError:
    """pyoxigraph's syntax error as ours, naming the source, the line and the column."""
    text = str(exc)
    return KnowledgeError(f"{where}: {text}")


def query_error(exc: Exception) -> KnowledgeError:
    """A SPARQL syntax error naming line and column (``error at 2:9`` becomes words)."""
    text = str(exc)
    m = _QUERY_POSITION.search(text)
    where = f"line {m[1]}, column {m[2]}: " if m else ""
    return KnowledgeError(f"the SPARQL query does not parse: {where}{text}")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def provenance_quads(graph: ox.NamedNode, source: str, media_type: str, label: str,
                     when: str | None = None) -> list[ox.Quad]:
    """Where and when a graph came from, as PROV-O in the graph itself."""
    src = rdf.N(source) if re.match(r"^[a-z][a-z0-9+.-]*:", source) else rdf.lit(source)
    pred = rdf.PROV + ("wasDerivedFrom" if isinstance(src, ox.NamedNode) else "hadPrimarySource")
    return [ox.Quad(graph, rdf.N(rdf.RDF + "type"), rdf.N(rdf.PROV + "Entity"), graph),
            ox.Quad(graph, rdf.N(pred), src, graph),
            ox.Quad(graph, rdf.N(rdf.PROV + "generatedAtTime"),
                    rdf.lit(when or _now(), "dateTime"), graph),
            ox.Quad(graph, rdf.N(rdf.DCT + "format"), rdf.lit(media_type), graph),
            ox.Quad(graph, rdf.N(rdf.RDFS + "label"), rdf.lit(label), graph)]


def _python(term):
    """A SPARQL result term as a Python value: typed literals become numbers, booleans,
    timestamps; IRIs stay strings; blank nodes ``_:id``."""
    if term is None:
        return None
    if isinstance(term, ox.NamedNode):
        return term.value
    if isinstance(term, ox.BlankNode):
        return f"_:{term.value}"
    if isinstance(term, ox.Literal):
        dt = term.datatype.value[len(rdf.XSD):] if term.datatype.value.startswith(rdf.XSD) else ""
        try:
            if dt in ("integer", "int", "long", "short", "byte", "nonNegativeInteger",
                      "positiveInteger", "negativeInteger", "nonPositiveInteger",
                      "unsignedInt", "unsignedLong", "gYear"):
                return int(term.value)
            if dt in ("decimal", "double", "float"):
                return float(term.value)
            if dt == "boolean":
                return term.value in ("true", "1")
            if dt in ("dateTime", "dateTimeStamp", "date"):
                import pandas as pd

                return pd.Timestamp(term.value)
        except ValueError:
            return term.value  # out of pandas' range (before 1677): kept as written
        return term.value
    return str(term)


def _frame(columns: list[str], rows: list[list]):
    """A DataFrame whose columns carry the results' types (Int64, Float64, boolean, string,
    datetime64) when every value of the column has that type."""
    import pandas as pd

    df = pd.DataFrame(rows, columns=columns)
    for col in columns:
        values = [v for v in df[col] if v is not None]
        kinds = {type(v) for v in values}
        if not values:
            df[col] = df[col].astype("string")
        elif kinds == {bool}:
            df[col] = df[col].astype("boolean")
        elif kinds == {int}:
            df[col] = df[col].astype("Int64")
        elif kinds <= {int, float}:
            df[col] = df[col].astype("Float64")
        elif kinds == {pd.Timestamp}:
            df[col] = pd.to_datetime(df[col], utc=True, format="ISO8601")
        elif kinds == {str}:
            df[col] = df[col].astype("string")
    return df


def results_frame(result):
    """pyoxigraph's answer as a DataFrame (SELECT: one column per variable; CONSTRUCT and
    DESCRIBE: ``subject``/``predicate``/``object``) or a bool (ASK)."""
    if isinstance(result, ox.QueryBoolean):
        return bool(result)
    if isinstance(result, ox.QuerySolutions):
        names = [v.value for v in result.variables]
        return _frame(names, [[_python(s[n]) for n in names] for s in result])
    rows = [[_python(t.subject), _python(t.predicate), _python(t.object)] for t in result]
    return _frame(["subject", "predicate", "object"], rows)


class KnowledgeGraph:
    """A knowledge base in a folder: named graphs of Linked Art, annotations, runs and other
    institutions' RDF, queried with SPARQL 1.1.

    Open it with :func:`echoes_lab.knowledge.open`. One process writes a folder at a time;
    others may open it ``read_only``.
    """

    def __init__(self, path: str | Path | None = None, read_only: bool = False):
        self.path = Path(path).expanduser() if path is not None else None
        if self.path is None:
            self.store = ox.Store()
        elif read_only:
            self.store = ox.Store.read_only(str(self.path))
        else:
            self.path.mkdir(parents=True, exist_ok=True)
            self.store = ox.Store(str(self.path))

    def __repr__(self) -> str:
        return f"<KnowledgeGraph {self.path or 'in memory'}: {len(self)} quads>"

    def __len__(self) -> int:
        return len(self.store)

    # -- writing ----------------------------------------------------------------------------
    def _replace(self, graph: ox.NamedNode, quads: Iterable[ox.Quad]) -> None:
        """The graph's content becomes ``quads`` in one transaction (a reload replaces)."""
        quads = list(quads)
        self.store.remove_graph(graph) if self.store.contains_named_graph(graph) else None
        self.store.extend(quads)

    def add(self, data, graph: str | None = None, *, base: str | None = None) -> str:
        """Add what the library reads: a records table (``read_records``) becomes Linked Art;
        annotations (``commons.annotations(...)`` or a list of W3C annotations) become OA;
        Linked Art documents (a dict or a list of them) are read as JSON-LD.

        Returns the named graph's IRI. Adding to an existing graph replaces its content.
        """
        from echoes_lab.knowledge import linkedart

        base = base or linkedart.DEFAULT_BASE
        if hasattr(data, "columns") and "annotation" in data.columns:
            data = list(data["annotation"])  # commons.annotations(...): the JSON of each
        if hasattr(data, "columns") and "id" in getattr(data, "columns", ()):
            source = str(data["source_system"].iloc[0]) if "source_system" in data.columns \
                and len(data) else "records"
            g = rdf.N(graph or f"{GRAPH_BASE}records/{quote(source, safe='')}")
            quads = rdf.jsonld_quads(linkedart.records_to_linked_art(data, base), g,
                                     f"records from {source}")
            quads += provenance_quads(g, f"urn:echoes:source:{quote(source, safe=':')}",
                                      "application/ld+json", f"{len(data)} records from {source}")
        else:
            items = data if isinstance(data, list) else [data]
            if items and all(isinstance(a, dict) and "Annotation" in rdf._many(a.get("type"))
                             for a in items):
                g = rdf.N(graph or f"{GRAPH_BASE}annotations")
                quads = [q for a in items for q in rdf.annotation_quads(a, g)]
                quads += provenance_quads(g, "urn:echoes:commons", "application/ld+json",
                                          f"{len(items)} annotations")
            else:
                first = items[0].get("id", "documents") if items and isinstance(items[0], dict) \
                    else "documents"
                g = rdf.N(graph or f"{GRAPH_BASE}linked-art/{quote(str(first), safe='')}")
                quads = rdf.jsonld_quads(items, g, f"document {first}")
                quads += provenance_quads(g, str(first), "application/ld+json",
                                          f"{len(items)} Linked Art documents")
        self._replace(g, quads)
        return g.value

    def add_run(self, crate: str | Path, graph: str | None = None) -> str:
        """A notebook run's RO-Crate folder as PROV-O (see :func:`rdf.run_quads`)."""
        folder = Path(crate).resolve()
        g = rdf.N(graph or f"{GRAPH_BASE}run/{quote(folder.name, safe='')}")
        self._replace(g, rdf.run_quads(folder, g) + provenance_quads(
            g, folder.as_uri(), "application/ld+json", f"run {folder.name}"))
        return g.value

    def add_datasets(self, entries: Iterable[dict] | None = None,
                     graph: str | None = None) -> str:
        """The datasets catalogue as DCAT (``echoes_lab.datasets.entries()`` by default)."""
        if entries is None:
            from echoes_lab.datasets import entries as catalogue

            entries = catalogue()
        g = rdf.N(graph or f"{GRAPH_BASE}datasets")
        quads = list(rdf.dataset_quads(entries, g))
        self._replace(g, quads + provenance_quads(g, "urn:echoes:catalogue", "text/yaml",
                                                  "the datasets catalogue"))
        return g.value

    def load(self, source: str | Path | bytes, format: str | None = None,
             graph: str | None = None, *, media_type: str | None = None,
             base_iri: str | None = None) -> str:
        """Load RDF (Linked Art JSON-LD, Turtle, N-Triples, N-Quads, TriG, RDF/XML) from a
        file, a URL or bytes into its own named graph, with where and when it came from.

        Every statement of one source goes into one graph (``graph``, default: one named
        after the source; graph names inside N-Quads or TriG are not kept), so a source can be
        replaced, removed or restricted as a whole.

        Raises
        ------
        KnowledgeError
            The RDF does not parse (the message names the source, line and column) or the
            format cannot be told.
        """
        where, label = "the data", "bytes"
        if isinstance(source, bytes):
            payload = source
            src = graph or f"{GRAPH_BASE}upload/{_now()}"
        elif re.match(r"^https?://", str(source)):
            import requests

            try:
                resp = requests.get(str(source), timeout=60, headers={
                    "Accept": "application/ld+json, text/turtle, application/n-triples, "
                              "application/n-quads, application/rdf+xml;q=0.9"})
                resp.raise_for_status()
            except requests.RequestException as exc:
                msg = f"cannot download {source}: {exc}"
                raise KnowledgeError(msg) from None
            payload, src, where, label = resp.content, str(source), str(source), str(source)
            media_type = media_type or resp.headers.get("Content-Type")
        else:
            path = Path(source).expanduser()
            try:
                payload = path.read_bytes()
            except OSError as exc:
                msg = f"cannot read {path}: {exc.strerror}"
                raise KnowledgeError(msg) from None
            src, where, label = path.resolve().as_uri(), str(path), path.name
        fmt = rdf_format(format or (None if isinstance(source, bytes) else str(source)),
                         None if format else media_type)
        g = rdf.N(graph or (GRAPH_BASE + "source/" + quote(src, safe="")))
        quads = self._parse(payload, fmt, g, where, base_iri or src)
        self._replace(g, quads + provenance_quads(g, src, fmt.media_type, label))
        return g.value

    def _parse(self, payload: bytes, fmt: ox.RdfFormat, g: ox.NamedNode, where: str,
               base_iri: str) -> list[ox.Quad]:
        if fmt == ox.RdfFormat.JSON_LD:
            try:
                doc = json.loads(payload)
            except ValueError as exc:
                msg = f"{where}: not JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
                raise KnowledgeError(msg) from None
            try:
                return rdf.jsonld_quads(doc, g, where, base=base_iri)
            except DataError as exc:
                raise KnowledgeError(str(exc)) from None
        try:
            parsed = ox.parse(payload, format=fmt, base_iri=base_iri if ":" in base_iri else None)
            # a source's quads all go into its graph (its own graph names are not kept)
            return [ox.Quad(q.subject, q.predicate, q.object, g) for q in parsed]
        except SyntaxError as exc:
            raise parse_error(exc, where) from None

    def remove(self, graph: str) -> None:
        """Drop a named graph."""
        self.store.remove_graph(rdf.N(graph))

    # -- reading ----------------------------------------------------------------------------
    def query(self, sparql: str, *, union: bool = True, graphs: list[str] | None = None):
        """Run a SPARQL 1.1 query: SELECT → a typed DataFrame, ASK → bool, CONSTRUCT and
        DESCRIBE → a DataFrame of triples.

        The prefixes of :data:`PREFIXES` (``crm:``, ``la:``, ``oa:``, ``prov:`` …) need no
        declaration.

        Parameters
        ----------
        union
            Without ``GRAPH``, a query sees every named graph together (the union of the
            sources), which is what one wants across institutions.
        graphs
            Restrict the query to these named graphs (default graph and ``GRAPH ?g``).

        Raises
        ------
        KnowledgeError
            The query does not parse (line and column named) or cannot be evaluated.
        """
        kwargs: dict = {"use_default_graph_as_union": union and graphs is None,
                        "prefixes": PREFIXES}
        if graphs is not None:
            named = [rdf.N(g) for g in graphs]
            kwargs = {"default_graph": named, "named_graphs": named, "prefixes": PREFIXES}
        try:
            return results_frame(self.store.query(sparql, **kwargs))
        except SyntaxError as exc:
            raise query_error(exc) from None
        except OSError as exc:
            msg = f"the query failed: {exc}"
            raise KnowledgeError(msg) from None

    def graphs(self):
        """The named graphs, with where and when each came from and its size."""
        return self.query(
            "PREFIX prov: <http://www.w3.org/ns/prov#> "
            "PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#> "
            "SELECT ?graph ?label ?source ?loaded (COUNT(*) AS ?triples) WHERE { "
            " GRAPH ?graph { ?s ?p ?o } "
            " OPTIONAL { GRAPH ?graph { ?graph rdfs:label ?label ; prov:generatedAtTime ?loaded "
            "   OPTIONAL { ?graph prov:wasDerivedFrom|prov:hadPrimarySource ?source } } } "
            "} GROUP BY ?graph ?label ?source ?loaded ORDER BY ?graph", union=False)

    def export(self, path: str | Path | None = None, format: str = "nquads",
               graph: str | None = None):
        """The store (or one graph) serialised: N-Quads/TriG for all graphs, any format for one.
        Written to ``path`` when given (returned), else returned as bytes."""
        fmt = rdf_format(format)
        kwargs = {"from_graph": rdf.N(graph)} if graph else {}
        if not graph and not fmt.supports_datasets:
            msg = f"{format} holds one graph: give graph=, or export as 'nquads' or 'trig'"
            raise KnowledgeError(msg)
        data = self.store.dump(format=fmt, **kwargs)
        if path is None:
            return data
        target = Path(path).expanduser()
        tmp = target.with_name(f".{target.name}.{os.getpid()}")
        tmp.write_bytes(data)
        tmp.replace(target)
        return target

    def flush(self) -> None:
        self.store.flush()

    def close(self) -> None:
        """Write everything to disk (the store closes when the object is gone)."""
        if self.path is not None:
            self.store.flush()
