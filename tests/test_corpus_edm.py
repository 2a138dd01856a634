"""Europeana EDM readers on real records of many institutions (tests/data/real/edm/, sources and
licences in tests/data/real/SOURCES.md): Record API JSON (``object``, ``fullbean`` and database
export forms) and EDM RDF/XML, each value checked against what a person reads in the file."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from echoes_lab.collections.dates import parse
from echoes_lab.collections.metadata import _edm_values
from echoes_lab.collections.records import read
from echoes_lab.errors import DataError, EchoesError

EDM = Path(__file__).parent / "data" / "real" / "edm"
JSON_FILES = sorted(EDM.glob("*.json"))
RDF_FILES = sorted(EDM.glob("*.xml"))


def rows(name):
    return read(EDM / name)


def one(name):
    df = read(EDM / name if isinstance(name, str) else name)
    assert len(df) == 1
    return df.iloc[0]


def provider(row) -> str:
    """The data provider (the holding institution) of a record, as its aggregation names it;
    the aggregator (``edm:provider``) where a record names no data provider."""
    original = row.original
    if original.get("format") == "EDM RDF/XML":
        return original["data_provider"]
    aggregation = original["aggregations"][0]
    return (_edm_values(aggregation.get("edmDataProvider"))
            or _edm_values(aggregation.get("edmProvider")))[0]


# -- at least five institutions per format ------------------------------------------------------


def test_five_or_more_institutions_per_format():
    json_providers = {provider(r) for f in JSON_FILES for _, r in rows(f.name).iterrows()}
    rdf_providers = {provider(r) for f in RDF_FILES for _, r in rows(f.name).iterrows()}
    assert len(json_providers) >= 5, json_providers
    assert len(rdf_providers) >= 5, rdf_providers
    assert {"eSbírky", "The National Archives of Norway", "Cité de la musique",
            "University of Edinburgh", "Biblioteca de Catalunya",
            "Bibliothek der Friedrich-Ebert-Stiftung"} <= json_providers
    assert {"Bolton Council", "Historic Scotland", "Germanisches Nationalmuseum",
            "Bibliothèque nationale de France", "National and University Library of Slovenia",
            "Archiwum Filmowe - Szkoła Filmowa w Łodzi",
            "Österreichische Nationalbibliothek - Austrian National Library"} <= rdf_providers
    # the format is told from the file: JSON is the Record API's, RDF/XML goes through rdflib
    assert set(rows(JSON_FILES[0].name).source_system) == {"edm"}
    assert set(rows(RDF_FILES[0].name).source_system) == {"edm-rdf"}


# -- Record API JSON -----------------------------------------------------------------------------


def test_json_database_export_esbirky_czech_national_museum():
    r = one("europeana-fullbean-2048081-esbirky.json")
    assert r.id == "/2048081/_O_532"           # the export has no "about": its "identifier"
    assert r.title == "Zbožná vzpomínka - Wurmbrand-Stuppach, Wilhelm Graf"
    assert r.creators == [] and r.date_text == "1884-9-8" and r.date_earliest == 1884
    assert (r.materials, r.dimensions) == ("Materiál: papír", "Rozměr: 145 x 90 mm")
    assert r.object_type == "IMAGE" and r.place == "Bez určení"
    assert r.rights == "http://creativecommons.org/licenses/by-nc-nd/4.0/"


def test_json_unpadded_iso_date_is_one_year():
    r = one("europeana-fullbean-2048081-esbirky.json")
    assert (r.date_earliest, r.date_latest) == (1884, 1884)


def test_json_and_rdf_of_one_record_agree():
    """The same eSbírky record from Europeana's database (JSON) and its OAI-PMH (RDF/XML)."""
    j = one("europeana-fullbean-2048081-esbirky.json")
    x = one("oai-excerpt-esbirky-rdf.xml")
    assert x.id == "http://data.europeana.eu/item/2048081/_O_532"
    fields = ["title", "creators", "date_text", "date_earliest", "object_type", "materials",
              "dimensions", "place", "rights"]
    assert j[fields].tolist() == x[fields].tolist()
    assert provider(j) == provider(x) == "eSbírky"


def test_json_national_archives_of_norway_census_sheet():
    r = one("europeana-fullbean-2058621-norway-archives.json")
    assert r.title == "Folketelling 1891 - Fredrikstad - personsedler - side 3499"
    assert r.creators == ["Det statistiske Centralbureau"]
    assert (r.date_text, r.date_earliest, r.date_latest) == ("1891", 1891, 1891)
    assert (r.object_type, r.materials, r.place) == ("TEXT", "paper", "Norge")
    assert r.rights == "http://creativecommons.org/publicdomain/mark/1.0/"
    assert provider(r) == "The National Archives of Norway"


def test_json_biblioteca_de_catalunya_tagged_labels_and_mime_type_not_material():
    r = one("europeana-fullbean-91949-bibcatalunya.json")
    assert r.id == "/91949/9A7023F9DEFFEDBC5AA376AAA8F4484E12FE6904"
    assert r.title == "Puig Major des de Sóller"   # the provider's, not the mis-encoded copy
    assert r.creators == ["Mompou, Frederic, 1893-1987"]   # not Europeana's agent link
    assert (r.date_text, r.date_earliest, r.date_latest) == ("[1919, 1920]", 1919, 1920)
    assert pd.isna(r.materials) and r.object_type == "Image"   # "Imatge/jpeg" is the file's
    assert r.rights == "http://rightsstatements.org/vocab/InC/1.0/"
    assert provider(r) == "Biblioteca de Catalunya"
    # the agent's labels come as tagged literals: the English one, never a language code
    agent = r.original["agents"][0]
    assert _edm_values(agent["prefLabel"])[0] == "Federico Mompou"


def test_json_text_issued_date_and_no_century_enrichment_fes():
    r = one("europeana-fullbean-fes-bibliothek.json")
    assert r.title == "Korrespondent für Deutschlands Buchdrucker und Schriftgießer - 1909, 103"
    assert (r.date_text, r.date_earliest, r.date_latest) == ("1909", 1909, 1909)  # dcterms:issued
    assert pd.isna(r.date_machine_source)   # Europeana's semium "19xx" is no machine date
    assert r.object_type == "item" and provider(r) == "Bibliothek der Friedrich-Ebert-Stiftung"


def test_json_image_issued_date_is_not_its_date_vastergotland():
    r = one("europeana-api2-91627-vastergotland.json")
    assert r.title == "Porträtt" and pd.isna(r.date_text)   # 2002-10-21 is the record's date


def test_json_mimo_exports_edinburgh_and_cite_de_la_musique():
    e = one("europeana-mongo-00000-uedin-mimo.json")
    assert (e.id, e.title) == ("/00000/_UEDIN_2050", "End-blown flute.")
    assert (e.date_text, e.date_earliest, e.date_latest) == ("1967-1968", 1967, 1968)
    assert e.object_type == "Ndere"           # the MIMO concept's label, not its URI
    assert pd.isna(e.rights)                # the aggregation's edmRights is ""
    assert provider(e) == "University of Edinburgh"
    cm = rows("europeana-mongo-cm-cite-musique.json")
    assert len(cm) == 2 and list(cm.id) == ["#CM:0159589", "#CM:0159590"]
    assert list(cm.title) == ["Hautbois musette", "Dessus de cornet à bouquin"]
    assert list(cm.object_type) == ["Hautbois musette", "Cornett"]
    assert list(cm.date_text) == ["début 19e", "16e"]
    assert list(cm.place) == ["FRANCE", "ITALIE"]
    assert [c for cs in cm.creators for c in cs] == ["Anonyme", "Anonyme"]
    assert {provider(r) for _, r in cm.iterrows()} == {"Cité de la musique"}


def test_json_french_century_shorthand_gives_years():
    cm = rows("europeana-mongo-cm-cite-musique.json")
    want = [parse("début du 19e siècle"), parse("16e siècle")]
    assert list(cm.date_earliest) == [w.earliest for w in want]


def test_json_unusual_value_types_give_values_or_an_echoes_error(tmp_path):
    doc = json.loads((EDM / "europeana-fullbean-2058621-norway-archives.json").read_text())
    doc["timespans"] = {"not": "a list"}
    doc["aggregations"] = "x"
    doc["proxies"][0]["dcCreator"] = [{"@lang": "no", "#value": "Det statistiske Centralbureau"}]
    doc["proxies"][0]["dcTitle"] = 5
    bad = tmp_path / "odd.json"
    bad.write_text(json.dumps(doc))
    r = one(bad)
    assert (r.title, r.creators) == ("5", ["Det statistiske Centralbureau"])
    assert pd.isna(r.rights)                  # no aggregation to take them from
    bad.write_text(json.dumps({"object": {"proxies": "none"}}))
    with pytest.raises(DataError, match="no 'proxies' list"):
        read(bad)


# -- EDM RDF/XML ---------------------------------------------------------------------------------


def test_rdf_bolton_council_time_span_label_and_relative_ids():
    r = one("metis-bolton-council-rdf.xml")
    assert r.id == "ProvidedCHO_Bolton_Council_1993_83_27_19"   # not a path on this machine
    assert r.title == "Washing Day"
    assert r.creators == []                   # a ULAN link with no label in the file
    assert r.date_text == "1937-1938"         # the linked time span's label
    assert (r.date_earliest, r.date_latest) == (1937, 1938)
    assert r.date_machine_source == "EDM edm:begin/edm:end"
    assert r.object_type == "IMAGE" and provider(r) == "Bolton Council"
    assert r.rights == "http://rightsstatements.org/vocab/InC/1.0/"


def test_rdf_historic_scotland_period_is_not_a_creation_date():
    r = one("metis-historic-scotland-rdf.xml")
    assert r.id == "CMC_HA/936"
    assert r.title == "Panoramic Photography of link path 7-8 at Skara Brae"
    assert (r.object_type, r.materials, r.place) == ("3D", "Dry Stone", "Skara Brae")
    # dcterms:temporal "Neolithic" (-3180/-2500) is what the site is about, not when it was made
    assert pd.isna(r.date_text) and pd.isna(r.date_earliest)
    assert provider(r) == "Historic Scotland" and r.original["provider"] == "CARARE"


def test_rdf_mimo_musical_instruments_nuremberg_and_leipzig():
    g = one("corelib-gnm-nuernberg-rdf.xml")
    assert (g.id, g.title, g.creators) == ("#GNM:7116411", "Langtrompete (Kopie)",
                                           ["Michael Münkwitz"])
    assert (g.date_text, g.date_earliest) == ("2009", 2009)
    assert (g.object_type, g.place) == ("Natural trumpet", "Rostock")   # concept, place labels
    assert g.rights == "http://creativecommons.org/licenses/by-nc-sa/3.0/"
    assert provider(g) == "Germanisches Nationalmuseum"
    leipzig = one("corelib-mfm-leipzig-rdf.xml")
    assert leipzig.title == "gebundenes Clavichord" and leipzig.creators == []
    assert leipzig.date_text == "2. Hälfte 17. Jahrhundert"
    assert (leipzig.date_earliest, leipzig.date_latest) == (1650, 1699)
    assert (leipzig.object_type, leipzig.place) == ("Clavichord", "Europa")
    assert provider(leipzig) == "Museum für Musikinstrumente der Universität Leipzig"


def test_rdf_bnf_manuscript_cp1252_repair_roles_and_https_aggregation():
    r = one("sandbox-bnf-rdf.xml")
    # the file writes "AL-DIMA&#x8a;QĪ": Windows-1252 0x8A is "Š"
    assert r.title.startswith("AḤMAD IBN YŪSUF AL-DIMAŠQĪ [AL-QARAMĀNĪ], m. 1019/1611.")
    assert r.creators == ["Aḥmad ibn Yūsuf al-Dimašqī al-Qaramānī",
                          "أحمد بن يوسف الدمشقي القرماني"]
    assert {a["role"] for a in r.actors} == {"Auteur du texte"}
    assert (r.date_text, r.date_earliest, r.date_latest) == ("1601-1700", 1601, 1700)
    assert r.object_type == "manuscript"
    # the aggregation names the object https://, the ProvidedCHO http://
    assert r.rights == "http://rightsstatements.org/vocab/NoC-OKLR/1.0/"
    assert provider(r) == "Bibliothèque nationale de France"


def test_rdf_slovenian_book_issued_date_and_polish_film():
    b = one("sandbox-nuk-slovenia-rdf.xml")
    assert b.id == "URN:NBN:SI:doc-35SZSOCF"
    assert b.title.startswith("Molitve in premishlovanja per objiskovanju shtirih")
    assert b.creators == ["Stanič, Valentin"]
    assert (b.date_text, b.date_earliest) == ("1826", 1826)   # dcterms:issued of a TEXT
    assert (b.object_type, b.materials) == ("knjige", "148 str., 12° (16 cm)")
    assert provider(b) == "National and University Library of Slovenia"
    f = one("metis-filmschool-lodz-rdf.xml")
    assert (f.title, f.creators) == ("Place To live", ["Wosiewicz Leszek", "Januszewicz Marek"])
    assert (f.date_text, f.date_earliest, f.object_type) == ("1976", 1976, "film")
    assert pd.isna(f.materials)             # "video/quicktime" is the file's format
    assert provider(f) == "Archiwum Filmowe - Szkoła Filmowa w Łodzi"


def test_rdf_austrian_national_library_provider_proxy_over_enrichment():
    r = one("oai-excerpt-onb-bildarchiv-rdf.xml")
    assert r.title == "Francos große Offensive in Katalonien"
    assert r.creators == ["Weltbild"]
    assert (r.date_text, r.date_earliest, r.date_latest) == ("1939-01-09", 1939, 1939)
    assert (r.object_type, r.place) == ("Fotografie", "Castelldans")   # not Europeana's "Spain"
    assert pd.isna(r.materials)             # dc:format "image/jpeg"
    assert r.rights == "http://rightsstatements.org/vocab/CNE/1.0/"
    assert provider(r) == "Österreichische Nationalbibliothek - Austrian National Library"


def test_rdf_organisation_link_resolved_to_its_label():
    r = one("metis-brandsma-rdf.xml")
    assert r.id == "/50/_providedCHO_NL_BwdADRKF_2_62_7"
    assert provider(r) == "Archive and Documentation Center for RK Friesland"
    assert r.original["provider"] == "Archives Portal Europe"
    assert [a["id"] for a in r.actors] == [None, "http://id.loc.gov/authorities/names/n80119298"]


def test_rdf_without_provided_cho_is_an_echoes_error(tmp_path):
    bad = tmp_path / "empty.rdf"
    bad.write_text('<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"/>')
    with pytest.raises(EchoesError, match="no edm:ProvidedCHO"):
        read(bad)
