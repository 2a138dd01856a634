"""The readers on real files from other institutions and instruments (tests/data/real/,
sources and licences in tests/data/real/SOURCES.md).

Each test asserts what a person reads in the file (titles, creators, dates, units, first
readings). The fuzz test feeds every corpus file truncated, re-encoded and with its columns
shuffled: a reader must give values or raise an ``EchoesError``, never anything else.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import echoes_lab
from echoes_lab.collections.records import read
from echoes_lab.errors import DataError, EchoesError

REAL = Path(__file__).parent / "data" / "real"


def one(path, **kw):
    df = read(REAL / path, **kw)
    assert len(df) == 1
    return df.iloc[0]


# -- LIDO ----------------------------------------------------------------------------------------

def test_lido_actors_roles_and_machine_dates_deutsches_museum():
    r = one("lido/ddb-Deutsches_Museum.xml")
    assert r.title == "Chiffriermaschine Enigma I"
    assert r.creators[:3] == ["Chiffriermaschinen AG", "Scherbius, Arthur", "Korn, Willi"]
    assert [a["role"] for a in r.actors[:2]] == ["Hersteller", "Erfinder/in"]
    assert (r.date_earliest, r.date_latest) == (1939, 1939)
    assert r.object_type == "cipher machine"


def test_lido_one_actor_with_several_names_is_one_creator_and_birth_is_not_the_date():
    r10 = one("lido/lido10-LaPrimavera.xml")
    assert r10.creators == ["Botticelli, Sandro"]        # 3 names of one actor (Filipepi …)
    assert (r10.date_earliest, r10.date_latest) == (1482, 1482)   # not his birth year 1445
    r11 = one("lido/lido11-LaPrimavera.xml")              # LIDO 1.1, skos:Concept terms
    assert r11.title == "La Primavera" and r11.creators == ["Botticelli, Sandro"]
    assert r11.object_type == "painting (visual work)"
    assert r11.rights == "No Copyright - other known legal restrictions (NoC-OKLR 1.0)"
    assert r11.date_text == "um 1480 oder 1482/1485"
    assert (r11.date_earliest, r11.date_latest) == (1480, 1485)
    assert r11.date_rule == "machine date: LIDO earliestDate/latestDate"


def test_lido_design_photograph_and_drawing_events_give_creators():
    marburg = one("lido/ddb-Bildarchiv_Foto_Marburg.xml")
    assert marburg.creators == ["Semper, Gottfried", "Hasenauer, Carl von (Freiherr)"]
    assert {a["role"] for a in marburg.actors} == {"Entwerfer"}
    assert (marburg.date_earliest, marburg.date_latest) == (1872, 1881)
    assert one("lido/ddb-Deutsche_Fotothek.xml").creators == ["Cölln, Fritz"]
    drawing = one("lido/ddb-Technik-Museum.xml")
    assert drawing.creators == ["H. Rauer (Technischer Zeichner/Ingenieur)"]
    assert drawing.date_text == "27.05.1902" and drawing.date_display_earliest == 1902


def test_lido_machine_dates_win_and_disagreements_are_reported():
    df = pd.concat(
        [
            read(REAL / "lido" / f)
            for f in ("ddb-Deutsche_Fotothek.xml", "ddb-minimaldatensatz.xml", "ddb-LWL-Museum.xml")
        ]
    )
    dis = df.records.quality()["date_disagreements"].set_index("date_text")
    assert dis.loc["1923", ["date_machine_earliest", "date_display_earliest"]].tolist() == [
        1922,
        1923,
    ]
    assert dis.loc["um 1600", ["date_machine_earliest", "date_machine_latest"]].tolist() == [
        1596,
        1605,
    ]
    assert "1762/1780" not in dis.index                     # display and machine dates agree
    kab = df[df["date_text"] == "um 1600"].iloc[0]
    assert (kab.date_earliest, kab.date_latest) == (1596, 1605)


def test_lido_every_institution_reads():
    for f in sorted((REAL / "lido").glob("*.xml")):
        df = read(f)
        assert len(df) == 1 and df["id"].notna().all() and df["title"].notna().all(), f.name


# -- IIIF ----------------------------------------------------------------------------------------

def test_iiif_people_medium_and_role_prefix_harvard():
    r = one("iiif/mirador-v2-299843.json")
    assert r.title == "Self-Portrait Dedicated to Paul Gauguin"
    assert r.creators == ["Vincent van Gogh, Dutch, 1853 - 1890"]
    assert r.actors[0]["role"] == "Artist"
    assert (r.date_text, r.date_earliest) == ("1888", 1888)
    assert (r.materials, r.object_type) == ("Oil on canvas", "Paintings")


def test_iiif_navdate_wins_even_malformed_loc():
    r = one("iiif/mirador-v2-2017498721.json")  # navDate "1949-01-01:T00:00:00Z"
    assert (r.date_earliest, r.date_latest, r.date_rule) == (
        1949,
        1949,
        "machine date: IIIF navDate",
    )
    assert "Ṣalāḥ al-Dīn Bak, Muḥammad, author." in r.creators   # label "Contributors"
    bsb = one("iiif/mirador-v2-canvasService.json")       # labels as de/zh/en lists
    assert bsb.date_earliest == 1451 and bsb.object_type is not pd.NA


def test_iiif_date_statement_and_date_of_origin():
    bodleian = one("iiif/mirador-v3-001.json")
    assert bodleian.date_text == "[1787]" and bodleian.date_earliest == 1787
    assert (
        bodleian.creators[0] == "Becket, Mr ([London], England) [author]"
        and len(bodleian.creators) == 3
    )
    gau = one("iiif/mirador-v2-gau.json")
    assert gau.date_text == "around 900 or 10th century"
    assert (gau.date_earliest, gau.date_latest) == (900, 999)
    assert (gau.place, gau.materials) == ("St. Gall", "Parchment")


def test_iiif_v2_manifest_without_context_is_read(tmp_path):
    doc = json.loads((REAL / "iiif/mirador-v2-299843.json").read_text())
    del doc["@context"]
    (tmp_path / "m.json").write_text(json.dumps(doc))
    assert (
        read(tmp_path / "m.json", format="iiif").iloc[0].title
        == "Self-Portrait Dedicated to Paul Gauguin"
    )


def test_iiif_collections_are_expanded_to_their_members():
    nav = read(REAL / "iiif/cookbook-0230-navdate/navdate-collection.json")
    assert len(nav) == 2 and sorted(nav["date_earliest"]) == [1986, 1987]
    assert nav["title"].str.contains("Chesapeake and Ohio Canal").all()
    papers = read(REAL / "iiif/cookbook-0068-newspaper/newspaper_title-collection.json")
    assert papers["title"].tolist()[0] == "Berliner Tageblatt - 1925-02-16" and len(papers) == 2
    stubs = read(REAL / "iiif/mirador-v2-collection.json")  # members not saved: described, not lost
    assert len(stubs) == 55 and stubs.iloc[0].title == "Test 1 Manifest: Minimum Required Fields"
    with pytest.raises(DataError, match="max_members"):
        from echoes_lab.collections.metadata import read_iiif
        read_iiif(REAL / "iiif/mirador-v2-collection.json", max_members=10, progress=False)


# -- Europeana EDM -------------------------------------------------------------------------------

def test_edm_json_record_api_provider_values():
    r = one("edm/europeana-record-2023008-limburg.json")
    assert (r.title, r.creators, r.date_earliest) == (
        "Compositie",
        ["Van den Meersch, Vincent"],
        1971,
    )
    assert r.rights == "http://www.europeana.eu/rights/rr-f/"
    b = one("edm/europeana-record-2026110-budapest.json")
    assert b.creators == ["Wenig, Bernhard"] and b.date_earliest == 1903
    assert (b.object_type, b.materials) == ("prints", "paper")  # concepts resolved, not URIs
    v = one("edm/europeana-api2-91627-vastergotland.json")    # old full-bean form with nulls
    assert v.title == "Porträtt"


def test_edm_rdf_xml_provider_proxy_and_time_spans():
    r = one("edm/metis-brandsma-rdf.xml")
    assert r.title.startswith("Teksten (fotokopieën, vijf bladzijden)")
    assert "Brandsma, Titus, O.Carm., 1881-1942" in r.creators
    assert not any(c.startswith("http") for c in r.creators)  # Europeana's agent link is not a name
    assert r.date_text == "[ca. 1942]" and (r.date_earliest, r.date_latest) == (1942, 1942)
    assert r.rights == "http://creativecommons.org/publicdomain/mark/1.0/"
    m = one("edm/metis-manuscriptorium-rdf.xml")
    assert m.date_text == "1426-1450" and (m.date_earliest, m.date_latest) == (1426, 1450)
    assert m.date_rule == "machine date: EDM edm:begin/edm:end"


# -- OAI-PMH saved responses ------------------------------------------------------------------

def test_saved_oai_response_and_folder(tmp_path):
    r = one("oai/metis-GetRecord-zamenhof.xml")
    assert r.id == "oai:mediateka.centrumzamenhofa.pl:19"
    assert r.title == "Fotografowie z zakładu przy ul. Kocha, Białystok,ok. 1942 r."
    assert r.creators == ["Dawdo Danuta"] and r.date_earliest == 1942
    for name in ("a.xml", "b.xml"):
        shutil.copy(REAL / "oai/metis-GetRecord-zamenhof.xml", tmp_path / name)
    assert len(read(tmp_path)) == 2


# -- museum CSV ---------------------------------------------------------------------------------

def test_tate_csv_excerpt_years_match_the_museum():
    df = read(REAL / "csv/tate-artworks-excerpt.csv", preset="tate")
    raw = pd.read_csv(REAL / "csv/tate-artworks-excerpt.csv", dtype=str, keep_default_na=False)
    assert len(df) == 120 and df.iloc[4].creators == ["Diane Arbus"]
    has = raw["date_start"] != ""
    end = raw["date_end"].where(raw["date_end"] != "", raw["date_start"])
    same = (
        df["date_earliest"].astype("Int64").to_numpy()
        == pd.to_numeric(raw["date_start"]).astype("Int64").to_numpy()
    ) & (
        df["date_latest"].astype("Int64").to_numpy()
        == pd.to_numeric(end).astype("Int64").to_numpy()
    )
    assert pd.Series(same)[has.to_numpy()].fillna(False).mean() >= 0.95


def test_csv_width_guard(tmp_path):
    wide = tmp_path / "wide.csv"
    wide.write_text(",".join(f"c{i}" for i in range(20_001)) + "\n")
    with pytest.raises(DataError, match="20,001 fields"):
        read(wide, preset="tate")
    with pytest.raises(DataError, match="max_bytes"):
        from echoes_lab.collections.metadata import read_csv
        read_csv(REAL / "csv/tate-artworks-excerpt.csv", {"id": "id"}, max_bytes=1000)


# -- loggers ------------------------------------------------------------------------------------

LOGGERS = [  # file, preset, first time, first T (°C), first RH (%), readings
    ("Hanwell_1.csv", None, "2025-11-21 00:00", 18.5, 40.5, 10),
    ("Rotronic_1.csv", "Rotronic", "2020-01-24 13:37:22", 20.0, 37.9, 10),
    ("Meaco_1.csv", None, "2025-11-06 15:59", 23.06, 54.91, 10),
    ("Meaco_3.csv", None, "2025-12-31 00:04", 17.25, 45.59, 10),
    ("miniClima_1.csv", None, "2025-08-07 00:00", 22.0, 55.0, 10),
    ("TinyTag_1.csv", "Tinytag", "2021-07-26 14:26", 20.873, 53.4, 10),
    ("TinyTag_2.csv", "Tinytag", "2021-09-01 08:58", 20.2, 47.6, 10),
    ("TandD_1.csv", "T&D", "2021-08-21 08:06", 22.7, 53.0, 10),
    ("TandD_2.csv", "T&D", "2021-11-12 15:51", 20.5, 51.0, 10),
    ("Case_1_A0000000.csv", "T&D", "2021-08-21 08:06", 22.7, 53.0, 10),
    ("Trend_1.csv", None, "2021-09-01 00:30", 20.6, None, 10),
    ("Trend_daily.csv", None, "2021-01-01 00:00", 14.5, None, 10),
]


@pytest.mark.parametrize("name, preset, t0, temp, rh, n", LOGGERS, ids=[x[0] for x in LOGGERS])
def test_logger_exports_of_seven_manufacturers(name, preset, t0, temp, rh, n):
    ds = echoes_lab.read_climate(REAL / "loggers" / name)
    layout = json.loads(ds.attrs["layout"])
    assert layout["preset"] == preset
    assert ds.sizes["time"] == n
    assert ds.indexes["time"][0] == pd.Timestamp(t0)
    assert ds["temperature"].values[0, 0] == pytest.approx(temp)
    if rh is None:  # a temperature-only logger: RH is absent, and says so
        assert np.isnan(ds["relative_humidity"].values).all()
        assert ds["relative_humidity"].attrs["measured"] == "no"
    else:
        assert ds["relative_humidity"].values[0, 0] == pytest.approx(rh)


def test_logger_layout_says_what_was_detected():
    mini = json.loads(echoes_lab.read_climate(REAL / "loggers/miniClima_1.csv").attrs["layout"])
    assert mini["separator"] == ";" and mini["date_order"].startswith("day first")
    meaco = json.loads(echoes_lab.read_climate(REAL / "loggers/Meaco_3.csv").attrs["layout"])
    assert meaco["header_line"] == 2 and "'31/12/2025 00:04'" in meaco["date_order"]
    rot = json.loads(echoes_lab.read_climate(REAL / "loggers/Rotronic_1.csv").attrs["layout"])
    assert rot["encoding"] == "utf-8-sig" and rot["first_data_line"] == 24


def test_logger_location_columns_are_kept():
    meaco = echoes_lab.read_climate(REAL / "loggers/Meaco_1.csv")
    assert meaco["sensor"].values.tolist() == ["Archive 1"]
    assert meaco["receiver"].values.tolist() == ["Anonymous Library"]
    tiny = echoes_lab.read_climate(REAL / "loggers/TinyTag_1.csv")
    assert tiny["room"].values.tolist() == ["Archive 1"]


# -- spectra ---------------------------------------------------------------------------------------

def test_ohta_colorchecker_both_layouts():
    cols = echoes_lab.read_spectra(REAL / "spectra/colorchecker_n_ohta.csv")
    rows = echoes_lab.read_spectra(REAL / "spectra/colorchecker_n_ohta_transposed.csv")
    assert cols.sizes == rows.sizes == {"measurement": 24, "wavelength": 81}
    assert float(cols.sel(wavelength=380).values[0]) == pytest.approx(0.048)
    np.testing.assert_allclose(cols.values, rows.values)


# -- fuzz: nothing but EchoesError ---------------------------------------------------------------


def _reader(path: Path):
    part = path.relative_to(REAL).parts[0]
    if part == "loggers":
        return echoes_lab.read_climate
    if part == "spectra":
        return echoes_lab.read_spectra
    if part == "csv":
        return lambda p: read(p, preset="tate")
    if part == "media":
        return echoes_lab.read_timed
    if part == "sites":
        return echoes_lab.read_sites
    return read


def _variants(path: Path, tmp: Path):
    raw = path.read_bytes()
    yield "truncated", raw[: len(raw) // 2]
    yield "truncated-early", raw[: max(1, len(raw) // 20)]
    yield "utf-16", raw.decode("utf-8", "replace").encode("utf-16")
    yield "cp1252-as-bytes", raw.decode("utf-8", "replace").encode("cp1252", "replace")
    if path.suffix in (".csv", ".txt"):
        text = raw.decode("utf-8", "replace")
        rows = list(csv.reader(io.StringIO(text, newline="")))
        width = max((len(r) for r in rows), default=0)
        order = list(range(width))[::-1]
        out = io.StringIO()
        csv.writer(out).writerows([[r[i] if i < len(r) else "" for i in order] for r in rows])
        yield "shuffled", out.getvalue().encode()


# dates/ holds display-date strings with their sources' years (tests/test_dates.py), not files a
# reader takes
CORPUS = sorted(p for p in REAL.rglob("*") if p.is_file() and p.name != "SOURCES.md"
                and not {"datasets", "dates"} & set(p.relative_to(REAL).parts)
                and "cookbook" not in str(p))


@pytest.mark.parametrize("path", CORPUS, ids=[str(p.relative_to(REAL)) for p in CORPUS])
def test_fuzzed_corpus_gives_values_or_an_echoes_error(path, tmp_path):
    reader = _reader(path)
    for kind, data in _variants(path, tmp_path):
        bad = tmp_path / f"{kind}{path.suffix}"
        bad.write_bytes(data)
        try:
            reader(bad)
        except EchoesError as exc:
            assert str(bad) in str(exc) or "the table" in str(exc), (kind, str(exc)[:200])
        except Exception as exc:  # noqa: BLE001 - the point of the test
            pytest.fail(f"{path.name} ({kind}): {type(exc).__name__}: {str(exc)[:300]}")
