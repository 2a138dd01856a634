"""Saved OAI-PMH responses of nine repositories (tests/data/real/oai/, sources in SOURCES.md).

Each test asserts what a person reads in the response: record counts, identifiers, titles,
creators (and their roles), dates and types, read from the files by ``read_oai_file``.
"""

from __future__ import annotations

import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from echoes_lab.collections import metadata
from echoes_lab.collections.records import harvest_oai, read
from echoes_lab.errors import DataError, EchoesError

OAI = Path(__file__).parent / "data" / "real" / "oai"

#: file -> (institution, records, identifier prefix)
FILES = {
    "metis-GetRecord-zamenhof.xml": ("Mediateka Centrum im. Ludwika Zamenhofa, Białystok", 1,
                                     "oai:mediateka.centrumzamenhofa.pl:"),
    "pyoai-ListRecords-eur-dspace.xml": ("Erasmus University Rotterdam (DSpace)", 16, "hdl:1765/"),
    "ckanext-GetRecord-helda.xml": ("University of Helsinki (Helda)", 1, "oai:helda.helsinki.fi:"),
    "krikri-ListRecords-huygens.xml": (
        "Huygens ING, KNAW (Arthurian Fiction)", 4, "oai:oaipmh.huygens.knaw.nl:"),
    "heidrun-ListRecords-bhl.xml": (
        "Biodiversity Heritage Library", 1, "oai:biodiversitylibrary.org:"),
    "pyclics-ListRecords-zenodo.xml": ("Zenodo (CERN)", 1, "oai:zenodo.org:"),
    "metis-sandbox-record-gallica.xml": (
        "Bibliothèque nationale de France (Gallica)", 1, "oai:bnf.fr:gallica/"),
    "europeana-GetRecord-edm-esbirky.xml": (
        "eSbírky, Národní muzeum (via Europeana, EDM)", 1, "http://data.europeana.eu/item/2048081/"),
    "europeana-GetRecord-edm-onb.xml": (
        "Österreichische Nationalbibliothek (via Europeana, EDM)", 1,
        "http://data.europeana.eu/item/92064/"),
}


def load(name):
    return read(OAI / name, format="oai-file").set_index("id", drop=False)


def test_nine_repositories_each_file_and_the_folder():
    assert sorted(p.name for p in OAI.glob("*.xml")) == sorted(FILES)
    assert len({inst for inst, *_ in FILES.values()}) >= 5
    for name, (_, count, prefix) in FILES.items():
        df = load(name)
        assert len(df) == count, name
        assert df["id"].str.startswith(prefix).all(), name
    folder = read(OAI)                                  # a folder of saved responses
    assert len(folder) == sum(count for _, count, _ in FILES.values()) == 27
    assert folder["source_system"].eq("oai-file:oai").all()


def test_erasmus_dspace_authors_named_only_as_contributors():
    df = load("pyoai-ListRecords-eur-dspace.xml")
    first = df.loc["hdl:1765/308"]
    assert first.title == "Kijken in het brein: Over de mogelijkheden van neuromarketing"
    # DSpace 2003 wrote the author as dc:contributor and no dc:creator
    assert first.creators == ["Smidts, A."] and first.actors[0]["role"] == "contributor"
    assert (first.date_text, first.date_earliest, first.object_type) == (
        "2003-04-15T10:18:51Z", 2003, "Other")
    assert df.loc["hdl:1765/316"].creators == [
        "Toktay, B.", "Laan, E.A. van der", "Brito, M.P. de"]
    # dc:format "995607" (bytes) and "application/pdf" describe the file, not the object
    assert df["materials"].dropna().tolist() == ["19 pages", "44 pages", "48 pages"]


def test_helsinki_folklore_photograph():
    r = load("ckanext-GetRecord-helda.xml").iloc[0]
    assert r.title == "Kansantanssiesitys, kuva 11"
    assert r.creators == ["Helsingin yliopisto, kulttuurien tutkimuksen laitos, kansatiede"]
    assert (r.date_text, r.date_earliest, r.date_latest) == ("1974-06-21", 1974, 1974)
    assert (r.object_type, r.place) == ("image", "Suomi")
    assert r.rights.startswith("Helsingin yliopisto, kulttuurien tutkimuksen laitos.")


def test_huygens_arthurian_manuscripts_with_a_provenance_block():
    df = load("krikri-ListRecords-huygens.xml")
    assert df["title"].tolist() == [
        "Aberystwyth, National Library of Wales, 446-E",
        "Aberystwyth, National Library of Wales, 5018-D",
        "Aberystwyth, National Library of Wales, 445-D",
        "Aberystwyth, National Library of Wales, 5667 E",
    ]
    assert all(c == ["Bart Besamusca"] for c in df["creators"])
    assert df["object_type"].eq("model").all() and df["date_earliest"].eq(2012).all()


def test_biodiversity_heritage_library_creators_with_life_dates():
    r = load("heidrun-ListRecords-bhl.xml").iloc[0]
    assert r.title == "Examen classis dioeciae."
    assert r.creators == [
        "Thunberg, Carl Peter, 1743-1828",
        "Kjellenberg, Fredrik Ulrik, 1795-1862",
        "S\u00f6derberg, Christopher, 1804-1833",      # the file's "o" + U+0308, composed
    ]
    assert (r.date_text, r.date_earliest, r.date_latest) == ("1900-1902", 1900, 1902)
    assert r.object_type == "text"


def test_zenodo_type_is_the_readers_word_not_the_repository_code():
    r = load("pyclics-ListRecords-zenodo.xml").iloc[0]
    assert r.title == "lexibank/diacl: Diachronic Atlas of Comparative Linguistics"
    assert r.creators == ["Robert Forkel", "Christoph Rzymski"]
    assert r.object_type == "dataset"                  # not "info:eu-repo/semantics/other"
    assert (r.date_text, r.date_earliest) == ("2019-07-04", 2019)
    assert r.rights == "info:eu-repo/semantics/openAccess"


def test_gallica_record_saved_on_its_own_with_bnf_roles():
    r = load("metis-sandbox-record-gallica.xml").iloc[0]
    assert r.id == "oai:bnf.fr:gallica/ark:/12148/btv1b110012843"
    assert r.title.startswith("AḤMAD IBN YŪSUF AL-DIMA")
    assert r.title.endswith("Taʾrīẖ aẖbār al-duwal wa āṯār al-uwal.")
    # "Name. Auteur du texte": the role is not part of the name (Latin and Arabic script)
    assert [a["role"] for a in r.actors] == ["Auteur du texte", "Auteur du texte"]
    assert r.creators[1] == "أحمد بن يوسف الدمشقي القرماني"
    assert (r.date_text, r.date_earliest, r.date_latest) == ("1601-1700", 1601, 1700)
    assert (r.object_type, r.rights) == ("manuscript", "domaine public")


def test_europeana_edm_payloads_read_as_edm_rdf():
    """Europeana's OAI-PMH (``metadataPrefix=edm``): the provider's values, its time span."""
    cz = load("europeana-GetRecord-edm-esbirky.xml").iloc[0]
    assert cz.title == "Zbožná vzpomínka - Wurmbrand-Stuppach, Wilhelm Graf"
    assert (cz.date_text, cz.date_earliest) == ("1884-9-8", 1884)
    assert (cz.materials, cz.object_type) == ("Materiál: papír", "IMAGE")
    assert cz.original["data_provider"] == "eSbírky"
    at = load("europeana-GetRecord-edm-onb.xml").iloc[0]
    assert at.title == "Francos große Offensive in Katalonien"
    assert (at.creators, at.place, at.object_type) == (["Weltbild"], "Castelldans", "Fotografie")
    assert (at.date_text, at.date_earliest) == ("1939-01-09", 1939)
    assert at.rights == "http://rightsstatements.org/vocab/CNE/1.0/"


def test_zamenhof_photograph():
    r = load("metis-GetRecord-zamenhof.xml").iloc[0]
    assert r.title == "Fotografowie z zakładu przy ul. Kocha, Białystok,ok. 1942 r."
    assert (r.creators, r.date_earliest, r.object_type) == (
        ["Dawdo Danuta"], 1942, "dokument obrazowy")


def test_a_folder_with_a_format_not_read_names_the_file_and_record(tmp_path):
    shutil.copy(OAI / "ckanext-GetRecord-helda.xml", tmp_path / "a.xml")
    text = (OAI / "pyclics-ListRecords-zenodo.xml").read_text(encoding="utf-8")
    (tmp_path / "b.xml").write_text(
        text.replace("oai_dc:dc", "oai_dc:resource").replace(
            "http://www.openarchives.org/OAI/2.0/oai_dc/", "http://datacite.org/schema/kernel-4"),
        encoding="utf-8")
    with pytest.raises(DataError, match=r"b\.xml: record oai:zenodo\.org:3268395: metadata "
                                        r"format <resource> is not read"):
        read(tmp_path)


@pytest.mark.parametrize("name", sorted(FILES))
def test_damaged_responses_give_values_or_an_echoes_error(name, tmp_path):
    """Truncated, re-encoded and record-less copies read as saved responses: values, or an
    ``EchoesError`` naming the file."""
    raw = (OAI / name).read_bytes()
    variants = {
        "truncated": raw[: len(raw) // 2],
        "utf-16": raw.decode("utf-8").encode("utf-16"),
        "cp1252": raw.decode("utf-8").encode("cp1252", "replace"),
        "no-metadata": raw.replace(b"<metadata", b"<meta").replace(b"</metadata>", b"</meta>"),
    }
    for kind, data in variants.items():
        bad = tmp_path / f"{kind}.xml"
        bad.write_bytes(data)
        try:
            df = read(bad, format="oai-file")
        except EchoesError as exc:
            assert str(bad) in str(exc), (kind, str(exc)[:200])
        else:
            assert kind != "truncated" or len(df) <= FILES[name][1]


class _Repository(BaseHTTPRequestHandler):
    """An OAI-PMH endpoint answering with saved responses: the Huygens page (it carries a
    resumptionToken), then the Erasmus page for the resumed request."""

    requests: list[str] = []

    def do_GET(self):
        self.requests.append(self.path)
        name = ("pyoai-ListRecords-eur-dspace.xml" if "resumptionToken" in self.path
                else "krikri-ListRecords-huygens.xml")
        body = (OAI / name).read_bytes()
        self.send_response(200)
        self.send_header("Content-Type", "text/xml; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_harvest_follows_the_token_and_reads_records_as_saved_ones(monkeypatch):
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Repository)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/oai"
        df = harvest_oai(url)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
    assert len(_Repository.requests) == 2
    assert "resumptionToken=MToxMHwyOnwzOnw0Onw1Om9haV9kYw" in _Repository.requests[1]
    assert len(df) == 4 + 16 and df["source_system"].eq(f"oai:{url}").all()
    saved = [*metadata.read_oai_file(OAI / "krikri-ListRecords-huygens.xml"),
             *metadata.read_oai_file(OAI / "pyoai-ListRecords-eur-dspace.xml")]
    fields = ["id", "title", "creators", "date_text", "object_type", "materials", "rights"]
    assert df[fields].astype(object).where(df[fields].notna(), None).to_dict("records") == [
        {k: r[k] for k in fields} for r in saved]
    assert df.set_index("id").loc["hdl:1765/308"].creators == ["Smidts, A."]
