"""Collection metadata from CSV, OAI-PMH, LIDO, IIIF and EDM into one normalised table."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import matplotlib

matplotlib.use("Agg")

import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from echoes_lab.collections import metadata, records  # noqa: E402
from echoes_lab.collections.records import SCHEMA  # noqa: E402
from echoes_lab.errors import DataError, UnsafeXMLError  # noqa: E402


@pytest.fixture
def rec(data_dir):
    return data_dir / "records"


def test_lido(rec):
    df = records.read(rec / "lido.xml")
    assert list(df.columns[: len(SCHEMA)]) == SCHEMA
    first = df.iloc[0]
    assert first["id"] == "ECH-LIDO-0001" and first["title"] == "The Fighting Temeraire"
    assert first["creators"] == ["Turner, Joseph Mallord William"]
    assert (first["date_text"], first["date_earliest"], first["date_latest"]) == (
        "c.1838–9", 1838, 1839
    )
    assert first["materials"] == "Oil paint on canvas" and first["place"] == "London"
    assert first["dimensions"] == "907 x 1219 mm"
    assert first["rights"] == "Bequeathed by the artist 1856"
    assert "<" in first["original"] and "lidoRecID" in first["original"]
    second = df.iloc[1]
    assert (second["date_earliest"], second["date_latest"]) == (1800, 1832)
    assert second["rights"] == "Domaine public" and second["source_system"] == "lido"


@pytest.mark.parametrize("name, ident, title, creator, date, lo, hi", [
    ("iiif-v2.json", "https://example.org/iiif/ech-0100/manifest", "View of Venice",
     "Canal, Giovanni Antonio", "c.1740", 1740, 1740),
    ("iiif-v3.json", "https://example.org/iiif/ech-0200/manifest", "Portrait of a Lady",
     "Kauffman, Angelica", "1780s", 1780, 1789),
])
def test_iiif_v2_and_v3(rec, name, ident, title, creator, date, lo, hi):
    df = records.read(rec / name)
    r = df.iloc[0]
    assert (r["id"], r["title"], r["creators"], r["date_text"]) == (ident, title, [creator], date)
    assert (r["date_earliest"], r["date_latest"]) == (lo, hi)
    assert r["rights"].startswith("http") and r["source_system"] == "iiif"


def test_europeana_edm(rec):
    r = records.read(rec / "edm.json").iloc[0]
    assert r["id"] == "/9200000/ECH_0300" and r["title"] == "Vase with flowers"
    assert r["creators"] == ["Ruysch, Rachel"]
    assert (r["date_earliest"], r["date_latest"]) == (1700, 1710)
    assert r["materials"] == "oil on canvas" and r["dimensions"] == "92 x 70 cm"
    assert r["place"] == "Amsterdam"
    assert r["rights"] == "http://creativecommons.org/publicdomain/mark/1.0/"


class _OAIServer(BaseHTTPRequestHandler):
    pages: dict = {}
    requests: list = []

    def do_GET(self):  # noqa: N802 (http.server's name)
        query = parse_qs(urlparse(self.path).query)
        self.requests.append(query)
        token = query.get("resumptionToken", [None])[0]
        body = self.pages["page-2" if token == "page-2" else "first"]
        self.send_response(200)
        self.send_header("Content-Type", "text/xml; charset=utf-8")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def oai_server(rec):
    _OAIServer.pages = {"first": (rec / "oai-page1.xml").read_bytes(),
                        "page-2": (rec / "oai-page2.xml").read_bytes()}
    _OAIServer.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _OAIServer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/oai"
    server.shutdown()
    server.server_close()


def test_oai_pmh_harvest_follows_resumption_tokens(oai_server):
    df = records.harvest_oai(oai_server)
    assert list(df["id"]) == [
        "oai:echoes.example:1", "oai:echoes.example:2", "oai:echoes.example:3"
    ]
    assert _OAIServer.requests[0]["verb"] == ["ListRecords"]
    assert _OAIServer.requests[0]["metadataPrefix"] == ["oai_dc"]
    assert _OAIServer.requests[1]["resumptionToken"] == ["page-2"]
    assert df.iloc[1]["creators"] == ["Gogh, Vincent van"] and df.iloc[1]["date_earliest"] == 1888
    assert df.iloc[2]["place"] == "Rouen" and df.iloc[2]["date_approximate"]
    assert df["source_system"].str.startswith("oai:").all()
    assert records.read(oai_server).shape[0] == 3  # the same through read()


def test_demo_export_with_its_preset(demo_data):
    df = records.read(demo_data / "collection" / "objects.csv", preset="echoes-demo")
    assert len(df) > 3000 and df["source_system"].eq("csv:echoes-demo").all()
    multi = df[df["creators"].map(len) > 1].iloc[0]
    assert all(", " in name for name in multi["creators"])
    assert isinstance(df.iloc[0]["original"], dict) and "Object Number" in df.iloc[0]["original"]


def test_tate_preset_on_the_real_export(tate_dir):
    df = records.read(tate_dir / "artworks.csv.gz", preset="tate")
    assert len(df) == 69202
    assert df["date_parsed"].mean() > 0.99
    turner = df[df["creators"].map(lambda c: c == ["Joseph Mallord William Turner"])]
    assert len(turner) > 30000  # the Turner Bequest


@pytest.mark.parametrize("name", ["billion-laughs.xml", "external-entity.xml"])
def test_malicious_xml_is_refused(rec, name):
    with pytest.raises(UnsafeXMLError) as err:
        records.read(rec / name)
    assert name in str(err.value) and "refused for safety" in str(err.value)


def test_bad_input_names_file_line_or_column(rec, tmp_path):
    with pytest.raises(DataError, match=r"malformed.xml: not well-formed XML at line 4"):
        records.read(rec / "malformed.xml")
    with pytest.raises(DataError,
                       match=r"latin1.csv: line 3 is not valid utf-8.*encoding='latin-1'"):
        records.read(rec / "latin1.csv", preset="echoes-demo")
    ok = records.read(rec / "latin1.csv", mapping={"id": "Object Number", "title": "Title",
                                                  "creators": "Maker", "date_text": "Date"},
                      encoding="latin-1")
    assert ok.iloc[1]["title"] == "Café au lait" and ok.iloc[1]["creators"] == ["Manet, Édouard"]
    with pytest.raises(DataError, match=r"latin1.csv: mapped column\(s\) missing: "
                                        r"object_type ← 'Object Type'"):
        records.read(rec / "latin1.csv", preset="echoes-demo", encoding="latin-1")
    bad = tmp_path / "broken.json"
    bad.write_text('{"@context": "http://iiif.io/api/presentation/3/context.json",\n "label": }')
    with pytest.raises(DataError, match=r"broken.json: not valid JSON at line 2"):
        records.read(bad, format="iiif")


def test_quality_report(demo_data):
    df = records.read(demo_data / "collection" / "objects.csv", preset="echoes-demo")
    q = df.records.quality(vocabularies={
        "object_type": ["painting", "drawing", "print", "sculpture", "photograph"]
    })
    raw = pd.read_csv(demo_data / "collection" / "objects.csv", dtype=str, keep_default_na=False)
    # completeness against a direct count on the raw export
    assert q["completeness"]["materials"] == pytest.approx((raw["Medium"].str.strip() != "").mean())
    assert q["exact_duplicates"] == int(raw.duplicated().sum())
    assert len(q["near_duplicates"]) >= 1
    # 'textile' is outside the list given: conformity is the share of the others
    expected = (~raw["Object Type"].str.strip().str.lower().eq("textile")).mean()
    assert q["vocabulary"]["object_type"] == pytest.approx(expected)
    assert q["date_parse_rate"] == 1.0


def test_timeline_and_facets_are_figures(demo_data):
    df = records.read(demo_data / "collection" / "objects.csv", preset="echoes-demo")
    fig = df.records.timeline()
    bars = fig.axes[0].patches
    dated = df["date_earliest"].notna().sum()
    assert sum(b.get_height() for b in bars) == dated
    fig = df.records.facets("creators", top=5)
    assert len(fig.axes[0].patches) == 5
    with pytest.raises(DataError, match="no field 'colour'"):
        df.records.facets("colour")


def test_a_catalogued_table_in_memory(demo_data):
    import echoes_lab

    raw = echoes_lab.open_dataset("demo-collection", demo_data)
    df = records.read(raw, preset="echoes-demo")
    from_file = records.read(demo_data / "collection" / "objects.csv", preset="echoes-demo")
    assert df.drop(columns=["source_system", "original"]).equals(
        from_file.drop(columns=["source_system", "original"])
    )


# -- issue 16: real files (tests/data/real/, sources and licences in SOURCES.md) ------------------
REAL = Path(__file__).parent / "data" / "real"


def test_a_saved_oai_record_alone_goes_to_the_oai_reader():
    """An OAI-PMH ``<record>`` saved on its own (Europeana's Metis sandbox keeps Gallica's so) is
    guessed by its root's namespace, not sent to the LIDO reader."""
    path = REAL / "oai" / "metis-sandbox-record-gallica.xml"
    assert records._guess(str(path)) == "oai-file"
    df = records.read(path)
    assert len(df) == 1
    r = df.iloc[0]
    assert r["id"] == "oai:bnf.fr:gallica/ark:/12148/btv1b110012843"
    # (the record writes a C1 control character, U+008A, inside "DIMAQĪ")
    assert r["title"].startswith("AḤMAD IBN YŪSUF AL-DIMA") and r["title"].endswith("al-uwal.")
    assert r["creators"][0].startswith("Aḥmad ibn Yūsuf al-Dima") and len(r["creators"]) == 2
    assert (r["date_text"], r["date_earliest"], r["date_latest"]) == ("1601-1700", 1601, 1700)
    assert r["source_system"] == "oai-file:metis-sandbox-record-gallica.xml"
    # every saved response of the corpus goes to the OAI reader, every LIDO file to LIDO's
    assert {records._guess(str(f)) for f in (REAL / "oai").glob("*.xml")} == {"oai-file"}
    assert {records._guess(str(f)) for f in (REAL / "lido").glob("*.xml")} == {"lido"}


def test_a_record_root_is_oai_only_in_the_oai_namespace(tmp_path):
    prefixed = tmp_path / "prefixed.xml"  # the namespace decides, not the prefix
    prefixed.write_text('<?xml version="1.0"?>\n<o:record xmlns:o="http://www.openarchives.org/'
                        'OAI/2.0/"><o:header status="deleted"><o:identifier>oai:x:1'
                        '</o:identifier></o:header></o:record>', encoding="utf-8")
    assert records._guess(str(prefixed)) == "oai-file" and len(records.read(prefixed)) == 0
    marc = tmp_path / "marc.xml"  # MARCXML's <record> is not OAI-PMH: the LIDO reader says so
    marc.write_text('<?xml version="1.0"?>\n<record xmlns="http://www.loc.gov/MARC21/slim">'
                    "<leader>00000nam</leader></record>", encoding="utf-8")
    assert records._guess(str(marc)) == "lido"
    with pytest.raises(DataError, match="marc.xml"):
        records.read(marc)
    # a DTD is never parsed to guess: the reader refuses the file, naming it
    dtd = tmp_path / "dtd.xml"
    dtd.write_text('<?xml version="1.0"?>\n<!DOCTYPE record [<!ENTITY e "x">]>\n<record '
                   'xmlns="http://www.openarchives.org/OAI/2.0/"><header/></record>',
                   encoding="utf-8")
    with pytest.raises(UnsafeXMLError, match="dtd.xml: refused for safety"):
        records.read(dtd)


@pytest.mark.parametrize("name, encoding", [
    ("npg-objects-excerpt.csv", "utf-8"), ("autry-dated-excerpt.csv", "utf-8"),
    ("tate-artworks-excerpt.csv", "utf-8"), ("ngi-cc-list-excerpt.csv", "cp1252"),
])
def test_preset_auto_recognises_the_columns_from_their_labels(name, encoding):
    path = REAL / "csv" / name
    auto = records.read(path, preset="auto", encoding=encoding)
    raw = pd.read_csv(path, dtype=str, keep_default_na=False, encoding=encoding)
    given = records.read(path, mapping=metadata.guess_mapping(raw.columns), encoding=encoding)
    pd.testing.assert_frame_equal(auto, given)
    assert len(auto) == len(raw) and auto["source_system"].eq(f"csv:{name}").all()
    in_memory = records.read(raw, preset="auto")
    assert in_memory["source_system"].eq("table:auto").all()
    pd.testing.assert_frame_equal(in_memory.drop(columns="source_system"),
                                  auto.drop(columns="source_system"))


def test_preset_auto_keeps_the_museums_own_years():
    npg = records.read(REAL / "csv" / "npg-objects-excerpt.csv", preset="auto").set_index("id")
    r = npg.loc["NPG.84.26"]
    assert (r["date_text"], r["object_type"], r["materials"]) == (
        "1972 (printed 1983)", "Photograph", "Gelatin silver print")
    assert (r["date_earliest"], r["date_latest"]) == (1972, 1972)  # NPG's DateBegin/DateEnd
    assert (r["date_display_earliest"], r["date_display_latest"]) == (1972, 1972)
    assert r["date_machine_source"] == "CSV DateBegin/DateEnd"
    autry = records.read(REAL / "csv" / "autry-dated-excerpt.csv", preset="auto").set_index("id")
    late = autry.loc["2015.21.1"]
    assert (late["date_text"], late["date_earliest"], late["date_latest"]) == (
        "late 1900s", 1975, 1999)  # the Autry's own years win; the display reads 1967-1999
    assert (late["date_display_earliest"], late["date_display_latest"]) == (1967, 1999)


def test_preset_auto_without_a_recognisable_column_names_the_file(tmp_path):
    odd = tmp_path / "odd.csv"
    odd.write_text("foo,bar\n1,2\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"odd.csv: no column recognised .* pass mapping="):
        records.read(odd, preset="auto")
    with pytest.raises(DataError, match=r"unknown preset 'nope'.*'auto'"):
        records.read(odd, preset="nope")


# -- records in their languages (issue 34): titles and descriptions keep their language tags ----
REAL = Path(__file__).parent / "data" / "real"


def test_lido_titles_keep_xml_lang_and_inherit_it_from_descriptive_metadata():
    # LIDO 1.1 La Primavera: four titles, each with its xml:lang; the description has none of its
    # own and takes lido:descriptiveMetadata's xml:lang="de"
    row = records.read(REAL / "lido" / "lido11-LaPrimavera.xml").iloc[0]
    assert row["titles"] == {"it": ["La Primavera", "allegoria della primavera"],
                             "en": ["Spring"], "de": ["Der Frühling"],
                             "fr": ["Allégorie du Printemps"]}
    assert list(row["descriptions"]) == ["de"]
    assert row["descriptions"]["de"][0].startswith("Das berühmte Bild")
    # a DDB record: title and description in the record's German
    enigma = records.read(REAL / "lido" / "ddb-Deutsches_Museum.xml").iloc[0]
    assert enigma["titles"] == {"de": ["Chiffriermaschine Enigma I"]}


def test_edm_rdf_iiif_and_csv_titles_keep_their_languages():
    bolton = records.read(REAL / "edm" / "metis-bolton-council-rdf.xml").iloc[0]
    assert bolton["titles"] == {"en": ["Washing Day"], "fr": ["Jour de lessive"]}
    # the provider tags both descriptions (English and French text) "pl": kept as the source says
    assert list(bolton["descriptions"]) == ["pl"] and len(bolton["descriptions"]["pl"]) == 2
    budapest = records.read(REAL / "edm" / "europeana-record-2026110-budapest.json").iloc[0]
    assert budapest["titles"] == {"hu": ["Ex libris - Otto und Lilli Wolfskehl"]}
    # IIIF v2 {"@value", "@language"} lists (Mirador's collection, member 62)
    members = records.read(REAL / "iiif" / "mirador-v2-collection.json")
    m62 = members[members["title"].str.startswith("62:", na=False)].iloc[0]
    assert m62["titles"] == {"fr": ["62: quelque titre"], "en": ["62: some title"]}
    # a v3 language map with a key that is no language tag ("true"): untagged
    hamilton = records.read(REAL / "iiif" / "mirador-v3-hamilton.json").iloc[0]
    assert hamilton["titles"] == {"": ["Letter from Alexander Hamilton Papers (September 6, 1780)"]}
    # a CSV export has no language: its title is kept untagged
    tate = records.read(REAL / "csv" / "tate-artworks-excerpt.csv", preset="tate")
    assert all(t == {"": [title]} for t, title in zip(tate["titles"], tate["title"], strict=True)
               if pd.notna(title))


def test_in_language_picks_the_preferred_language_with_fallbacks():
    frames = [records.read(REAL / "lido" / "lido11-LaPrimavera.xml"),
              records.read(REAL / "edm" / "metis-bolton-council-rdf.xml"),
              records.read(REAL / "lido" / "ddb-Deutsches_Museum.xml")]
    df = pd.concat(frames, ignore_index=True)
    fr = df.records.in_language("fr", "en")
    assert fr["title"].tolist() == ["Allégorie du Printemps", "Jour de lessive",
                                    "Chiffriermaschine Enigma I"]
    assert fr["title_language"].tolist() == ["fr", "fr", "de"]  # German: the fallback
    en = df.records.in_language("en-GB")  # a regional tag takes its language's titles
    assert en["title"].tolist()[:2] == ["Spring", "Washing Day"]
    strict = df.records.in_language("fr", fallback=False)
    assert strict["title"].isna().tolist() == [False, False, True]
    assert fr["description_language"].tolist() == ["de", "pl", "de"]
    assert df["title"].tolist()[0] == "La Primavera"  # the original table is left as it was


def test_quality_counts_the_languages_of_titles_and_descriptions():
    df = pd.concat([records.read(REAL / "lido" / "lido11-LaPrimavera.xml"),
                    records.read(REAL / "edm" / "metis-bolton-council-rdf.xml"),
                    records.read(REAL / "lido" / "ddb-Deutsches_Museum.xml")], ignore_index=True)
    languages = df.records.quality()["languages"]
    assert languages.loc["de"].tolist() == [2, 2]  # La Primavera and the Enigma
    assert languages.loc["fr"].tolist() == [2, 0]
    assert languages.loc["en", "titles"] == 2 and languages.loc["it", "titles"] == 1
    assert languages.loc["pl", "descriptions"] == 1
