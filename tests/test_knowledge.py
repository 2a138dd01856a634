"""The knowledge base in the library (issue 28): records as Linked Art validated against the
profile's JSON schemas on the real corpus, other institutions' Linked Art and RDF loaded into
named graphs with their provenance, SPARQL answers as typed tables, errors naming line and
column, annotations (W3C OA), runs (PROV-O) and datasets (DCAT).

Schemas and institutions' files: tests/data/real/linked-art/ (SOURCES.md there).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource

from echoes_lab import knowledge
from echoes_lab.collections.records import read
from echoes_lab.errors import DataError, EchoesError
from echoes_lab.knowledge.linkedart import record_to_linked_art, records_to_linked_art

REAL = Path(__file__).parent / "data" / "real"
LA = REAL / "linked-art"

#: every reader's real files the mapping is checked on (format -> files)
CORPUS = ([("lido", p) for p in sorted((REAL / "lido").glob("*.xml"))]
          + [("edm", p) for p in sorted((REAL / "edm").glob("*"))]
          + [("iiif", p) for p in sorted((REAL / "iiif").glob("*.json"))]
          + [("csv", REAL / "csv" / "tate-artworks-excerpt.csv")])


@pytest.fixture(scope="module")
def validators() -> dict[str, Draft202012Validator]:
    registry = Registry()
    schemas = {}
    for f in (LA / "schema").glob("*.json"):
        doc = json.loads(f.read_text())
        registry = registry.with_resource(doc["$id"], Resource.from_contents(doc))
        schemas[f.stem] = doc
    return {kind: Draft202012Validator(schemas[name], registry=registry,
                                       format_checker=Draft202012Validator.FORMAT_CHECKER)
            for kind, name in (("HumanMadeObject", "object"), ("Person", "person"),
                               ("Place", "place"), ("Group", "group"))}


def _records(kind: str, path: Path) -> pd.DataFrame:
    return read(path, preset="tate") if kind == "csv" else read(path)


@pytest.mark.parametrize(("kind", "path"), CORPUS, ids=[p.name for _, p in CORPUS])
def test_every_emitted_object_validates_against_linked_art_schemas(kind, path, validators):
    docs = records_to_linked_art(_records(kind, path))
    assert docs, f"{path.name}: nothing emitted"
    for doc in docs:
        errors = [f"/{'/'.join(map(str, e.absolute_path))}: {e.message}"
                  for e in validators[doc["type"]].iter_errors(doc)]
        assert not errors, f"{path.name} {doc['id']}: {errors[:3]}"


def test_lido_enigma_as_linked_art():
    """Deutsches Museum's Enigma I (LIDO): title, accession number, makers with their roles,
    and the production's time-span from the machine dates, the display date kept."""
    df = read(REAL / "lido" / "ddb-Deutsches_Museum.xml").records.parse_dates()
    doc = record_to_linked_art(df.iloc[0])
    assert doc["type"] == "HumanMadeObject"
    names = {n["content"] for n in doc["identified_by"]}
    assert {"Chiffriermaschine Enigma I", "DE-MUS-097410_715977"} <= names
    span = doc["produced_by"]["timespan"]
    assert span["begin_of_the_begin"] == "1939-01-01T00:00:00Z"
    assert span["end_of_the_end"] == "1939-12-31T23:59:59Z"
    assert span["identified_by"][0]["content"] == "1939"
    roles = {p["classified_as"][0]["_label"]: [a["_label"] for a in p["carried_out_by"]]
             for p in doc["produced_by"]["part"]}
    assert roles["Hersteller"] == ["Chiffriermaschinen AG"]
    assert roles["Erfinder/in"] == ["Scherbius, Arthur", "Korn, Willi"]
    statements = {s["classified_as"][0]["_label"]: s["content"] for s in doc["referred_to_by"]}
    assert statements["Material Statement"] == "Metall"
    assert statements["Dimension Statement"] == "152 x 279 x 338 mm"


def test_widened_interval_and_bc_years():
    """'c.1830' widens by the parser's approximation; 300 BC is xsd year -0299 (XSD 1.1
    counts 1 BC as year 0000, ISO 8601:2004 §4.1.2.4)."""
    circa = record_to_linked_art({"id": "A1", "title": "t", "date_text": "c.1830",
                                  "date_earliest": 1830, "date_latest": 1830,
                                  "date_earliest_widened": 1825, "date_latest_widened": 1835})
    span = circa["produced_by"]["timespan"]
    assert (span["begin_of_the_begin"], span["end_of_the_end"]) == (
        "1825-01-01T00:00:00Z", "1835-12-31T23:59:59Z")
    bc = record_to_linked_art({"id": "A2", "title": "t", "date_text": "300 BC",
                               "date_earliest": -300, "date_latest": -300})
    assert bc["produced_by"]["timespan"]["begin_of_the_begin"].startswith("-0299-01-01")


def test_record_without_id_is_an_error():
    with pytest.raises(DataError, match="no 'id'"):
        record_to_linked_art({"title": "Untitled"})


def test_iiif_manifest_is_a_digital_object_access_point():
    df = read(REAL / "iiif" / "mirador-v3-001.json")
    doc = records_to_linked_art(df)[0]
    carrier = doc["subject_of"][0]["digitally_carried_by"][0]
    assert carrier["access_point"][0]["id"].startswith("https://iiif.bodleian.ox.ac.uk/iiif/manifest/")
    assert carrier["conforms_to"][0]["id"] == "http://iiif.io/api/presentation"


# -- the store ------------------------------------------------------------------------------

@pytest.fixture
def kg():
    return knowledge.open(memory=True)


def test_institutions_linked_art_in_named_graphs_with_provenance(kg):
    before = datetime.now(UTC).replace(microsecond=0)
    g_ima = kg.load(LA / "ima-turner.json")
    g_ans = kg.load(LA / "ans-coin.json")
    assert g_ima != g_ans
    rows = kg.query("""
        SELECT ?o ?name WHERE { ?o crm:P1_is_identified_by ?n .
                                ?n crm:P190_has_symbolic_content ?name ;
                                   crm:P2_has_type aat:300404670 }""")
    assert "View of Exeter College from the Turl" in set(rows["name"])
    ima = rows.set_index("name").loc["View of Exeter College from the Turl", "o"]
    assert ima == "http://imamuseum.org/mercury/load-artwork/38020"
    # ANS's older draft: its identifier survives under today's context
    ans = kg.query("SELECT ?v WHERE { <http://numismatics.org/collection/1944.100.51606> "
                   "crm:P1_is_identified_by/crm:P90_has_value ?v }")
    assert "1944.100.51606" in set(ans["v"])
    graphs = kg.graphs().set_index("graph")
    assert graphs.loc[g_ima, "source"] == (LA / "ima-turner.json").resolve().as_uri()
    assert graphs.loc[g_ima, "loaded"] >= pd.Timestamp(before)
    assert graphs.loc[g_ans, "triples"] > 50


def test_getty_photo_archive_with_its_2017_context(kg):
    """The Getty Photo Archive's record of Rubens' *St. Sebastian* (Galleria Nazionale d'Arte
    Antica, Rome), written in 2017 against the context of its day: read offline with that
    context registered; without it, refused rather than read wrongly."""
    doc = LA / "getty-photoarchive-rubens-st-sebastian.json"
    url = "https://linked.art/ns/context/1/full.jsonld"
    knowledge.rdf.CONTEXTS.pop(url, None)
    with pytest.raises(EchoesError, match="register_context"):
        kg.load(doc)
    knowledge.register_context(url, LA / "contexts" / "linked-art-context-1-full-2017.jsonld")
    try:
        kg.load(doc)
    finally:
        knowledge.rdf.CONTEXTS.pop(url, None)
    rows = kg.query("""SELECT ?title ?maker ?begin ?height ?place WHERE {
        ?o a crm:E22_Man-Made_Object ; rdfs:label ?title ; crm:P108i_was_produced_by ?p ;
           crm:P43_has_dimension ?d ; crm:P55_has_current_location/rdfs:label ?place .
        ?p crm:P14_carried_out_by/rdfs:label ?maker ;
           crm:P4_has_time-span/crm:P82a_begin_of_the_begin ?begin .
        ?d crm:P2_has_type aat:300055644 ; rdf:value ?height }""")
    assert rows.to_dict("records") == [{"title": "St. Sebastian", "maker": "Rubens, Peter Paul",
                                        "begin": "1604", "height": 153, "place": "Rome"}]


def test_records_query_typed_dataframe(kg):
    kg.add(read(REAL / "csv" / "tate-artworks-excerpt.csv", preset="tate"))
    df = kg.query("""
        SELECT ?title ?begin (YEAR(?begin) AS ?year) WHERE {
          ?o a crm:E22_Human-Made_Object ; rdfs:label ?title ;
             crm:P108i_was_produced_by/crm:P4_has_time-span/crm:P82a_begin_of_the_begin ?begin }
        ORDER BY ?begin""")
    assert len(df) > 50
    assert str(df["title"].dtype) == "string"
    assert str(df["year"].dtype) == "Int64"
    assert str(df["begin"].dtype).startswith("datetime64")
    assert df["year"].iloc[0] == df["begin"].iloc[0].year
    assert kg.query("ASK { ?o a crm:E22_Human-Made_Object }") is True


def test_lido_and_rdfxml_and_turtle_load(kg, tmp_path):
    kg.add(read(REAL / "lido" / "ddb-Deutsches_Museum.xml"))
    g = kg.load(REAL / "edm" / "corelib-gnm-nuernberg-rdf.xml")
    assert kg.query(f"ASK {{ GRAPH <{g}> {{ ?s a edm:ProvidedCHO }} }}") is True
    ttl = tmp_path / "x.ttl"
    ttl.write_text("@prefix crm: <http://www.cidoc-crm.org/cidoc-crm/> .\n"
                   "<http://example.org/o/1> a crm:E22_Human-Made_Object .\n")
    kg.load(ttl)
    nt = tmp_path / "x.nt"
    nt.write_bytes(kg.export(format="ntriples", graph=kg.load(ttl)))
    kg.load(nt)
    hits = kg.query("SELECT ?o WHERE { ?o a crm:E22_Human-Made_Object }")
    assert "http://example.org/o/1" in set(hits["o"])


def test_bad_rdf_names_line_and_column(kg, tmp_path):
    bad = tmp_path / "broken.ttl"
    bad.write_text("<http://a> <http://b> <http://c> .\n<http://x> <http://y> .\n")
    with pytest.raises(EchoesError, match=r"broken\.ttl.*line 2"):
        kg.load(bad)
    bad_json = tmp_path / "broken.jsonld"
    bad_json.write_text('{"@context": "https://linked.art/ns/v1/linked-art.json",\n "id": }')
    with pytest.raises(EchoesError, match=r"broken\.jsonld.*line 2, column 8"):
        kg.load(bad_json)
    remote = tmp_path / "remote.jsonld"
    remote.write_text('{"@context": "https://example.org/ctx.json", "id": "http://x/1"}')
    with pytest.raises(EchoesError, match="not one we have offline"):
        kg.load(remote)
    assert len(kg) == 0  # nothing half-loaded


def test_bad_query_names_line_and_column(kg):
    with pytest.raises(EchoesError, match="line 2, column 9"):
        kg.query("SELECT ?x WHERE {\n ?x ?y }")


def test_export_round_trip(kg, tmp_path):
    kg.load(LA / "ima-turner.json")
    target = kg.export(tmp_path / "all.nq")
    other = knowledge.open(tmp_path / "store")
    other.load(target, graph="urn:test:copy")
    # every statement comes back, in one graph, plus the copy's own five of provenance
    assert len(other) == len(kg) + 5
    assert other.query("ASK { GRAPH <urn:test:copy> { "
                       "<http://imamuseum.org/mercury/load-artwork/38020> rdfs:label "
                       "'View of Exeter College from the Turl' } }") is True


def test_annotations_as_web_annotation_vocabulary(kg):
    kg.add(read(REAL / "lido" / "ddb-Deutsches_Museum.xml"))
    obj = kg.query("SELECT ?o WHERE { ?o a crm:E22_Human-Made_Object }")["o"].iloc[0]
    ann = {"@context": "http://www.w3.org/ns/anno.jsonld", "type": "Annotation",
           "id": "http://hub/services/commons/annotations/a1", "motivation": "assessing",
           "body": {"type": "TextualBody", "value": "Rotor wiring is a replacement",
                    "language": "en"},
           "target": {"source": obj, "selector": {"type": "FragmentSelector",
                                                  "value": "xywh=10,10,50,50"}},
           "creator": {"id": "http://hub/services/commons/people/alice", "type": "Person",
                       "nickname": "alice"},
           "created": "2026-12-01T10:00:00Z"}
    kg.add([ann])
    df = kg.query("""SELECT ?title ?text ?who WHERE {
        ?a a oa:Annotation ; oa:motivatedBy oa:assessing ; oa:hasBody/rdf:value ?text ;
           oa:hasTarget/oa:hasSource ?o ; dcterms:creator/foaf:nick ?who .
        ?o rdfs:label ?title }""")
    assert df.to_dict("records") == [{"title": "Chiffriermaschine Enigma I",
                                      "text": "Rotor wiring is a replacement", "who": "alice"}]
    with pytest.raises(DataError, match="no 'target'"):
        kg.add([{"id": "http://x/a", "type": "Annotation"}])


def test_datasets_as_dcat(kg):
    from echoes_lab.datasets import entries

    n = len(entries())
    kg.add_datasets()
    df = kg.query("SELECT (COUNT(?d) AS ?n) WHERE { ?d a dcat:Dataset ; dcterms:license ?l }")
    assert df["n"].iloc[0] == n


def test_run_crate_as_prov(kg, tmp_path):
    from echoes_lab.runs.provenance import write_crate

    src = tmp_path / "analysis.ipynb"
    src.write_text("{}")
    out = tmp_path / "analysis.out.ipynb"
    out.write_text("{}")
    write_crate(tmp_path, source=src, executed=out, html=None, parameters={"year": 1839},
                datasets=[], start=datetime(2026, 12, 1, 9, tzinfo=UTC),
                end=datetime(2026, 12, 1, 9, 5, tzinfo=UTC), status="completed")
    kg.add_run(tmp_path)
    df = kg.query("""SELECT ?start ?software ?out WHERE {
        ?run a prov:Activity ; prov:startedAtTime ?start ; prov:generated ?out ;
             prov:wasAssociatedWith/foaf:name ?software }""")
    assert df["start"].iloc[0] == pd.Timestamp("2026-12-01T09:00:00Z")
    assert df["software"].iloc[0].startswith("echoes-lab ")
    assert any(o.endswith("analysis.out.ipynb") for o in df["out"])


def test_sparql_cell_magic():
    """``%load_ext echoes_lab.knowledge`` and ``%%sparql kg -o table`` in a shell of its own
    (a subprocess: an IPython shell in this process would change how other tests' widgets and
    displays behave)."""
    import subprocess
    import sys

    script = f"""
from IPython.core.interactiveshell import InteractiveShell
from echoes_lab import knowledge
from echoes_lab.errors import EchoesError
ip = InteractiveShell.instance()
ip.run_line_magic("load_ext", "echoes_lab.knowledge")
kg = knowledge.open(memory=True)
kg.load({str(LA / "ima-turner.json")!r})
ip.user_ns.update(kg=kg, nope=1)
ip.run_cell_magic("sparql", "kg -o table",
                  "SELECT ?label WHERE {{ ?o a crm:E22_Human-Made_Object ; rdfs:label ?label }}")
print(list(ip.user_ns["table"]["label"]))
try:
    ip.run_cell_magic("sparql", "nope", "ASK {{}}")
except EchoesError as exc:
    print("refused:", exc)
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=120, check=True).stdout
    assert "['View of Exeter College from the Turl']" in out
    assert "refused: 'nope' is not a knowledge graph" in out
