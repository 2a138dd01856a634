"""Monuments and sites (issue 30): real inventories read into one schema, coordinate systems,
repairs listed, surveys and the "at risk" rule, hazard joins, the offline map."""

from __future__ import annotations

import json
import math
import zipfile
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from pyproj import Transformer
from pyproj.transformer import TransformerGroup

import echoes_lab
from echoes_lab.errors import EchoesError
from echoes_lab.sites import GRADES, grid_reference, hazard_join

REAL = Path(__file__).parent / "data" / "real" / "sites"
MERIMEE = REAL / "merimee-toulouse.geojson"
WHC = REAL / "unesco-whc-sites-2019-excerpt.csv"


def _metres(lon1, lat1, lon2, lat2) -> float:
    """Distance on the sphere of radius 6,371,008.8 m (IUGG mean radius; haversine)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    a = (math.sin((p2 - p1) / 2) ** 2
         + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2)
    return 2 * 6_371_008.8 * math.asin(math.sqrt(a))


@pytest.fixture(scope="module")
def merimee():
    return echoes_lab.read_sites(MERIMEE, preset="merimee")


def test_merimee_values_a_person_reads(merimee):
    assert len(merimee) == 59
    assert list(merimee.columns[:6]) == ["id", "name", "designation", "protection", "authority",
                                         "period"]
    row = merimee[merimee["name"] == "cathédrale Saint-Etienne"].iloc[0]
    assert row["protection"] == "classé MH ; inscrit MH"
    assert row["period"].startswith("13e siècle")
    assert row["period_earliest"] == 1200
    assert row["licence"].startswith("Licence Ouverte")
    # the file's own WGS84 for the cathedral: 43.5999343977439, 1.45055881252176
    assert _metres(row.geometry.x, row.geometry.y, 1.45055881252176, 43.5999343977439) < 1
    assert row["original"]["chpcom"] == "Toulouse"
    assert merimee.attrs["source_crs"] == "EPSG:4326"
    sernin = merimee[merimee["name"].str.contains("basilique Saint-Sernin", na=False)].iloc[0]
    assert sernin["protection"] == "classé MH"


def test_merimee_conic_conformal_coordinates_reproject_to_the_published_wgs84(merimee, tmp_path):
    """The file gives each building in RGF93 / CC43 (EPSG:3943, in its field `chpcoorlb93`) and in
    WGS84 (`chpcoorwgs84`): read from CC43, every one lands within 1 m of the published WGS84."""
    rows = []
    for rec in merimee["original"]:
        x, y = (float(v) for v in rec["chpcoorlb93"].split(";"))
        lat, lon = (float(v) for v in rec["chpcoorwgs84"].split(","))
        rows.append({"nom": rec["chptico"], "x": x, "y": y, "lat_pub": lat, "lon_pub": lon})
    path = tmp_path / "cc43.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    sites = echoes_lab.read_sites(path, x="x", y="y", crs="EPSG:3943", name="nom")
    assert sites.attrs["source_crs"] == "EPSG:3943"
    worst = max(_metres(g.x, g.y, r["lon_pub"], r["lat_pub"])
                for g, r in zip(sites.geometry, rows, strict=True))
    assert worst < 1.0
    assert sites["name"].iloc[0] == rows[0]["nom"]


def test_unesco_list_three_countries(tmp_path):
    whc = echoes_lab.read_sites(WHC, preset="whc", encoding="cp1252")
    assert len(whc) == 42
    stonehenge = whc[whc["id"] == "373"].iloc[0]
    assert stonehenge["name"] == "Stonehenge, Avebury and Associated Sites"
    assert stonehenge["designation"] == "Cultural"
    assert (stonehenge.geometry.x, stonehenge.geometry.y) == (-1.825277778, 51.17888889)
    boyne = whc[whc["id"] == "659"].iloc[0]
    assert boyne["name"].startswith("Brú na Bóinne")
    assert boyne["original"]["states_name_en"] == "Ireland"
    assert whc[whc["id"] == "818"].iloc[0]["name"] == "Mill Network at Kinderdijk-Elshout"
    states = {r["states_name_en"] for r in whc["original"]}
    assert {"Ireland", "Netherlands",
            "United Kingdom of Great Britain and Northern Ireland"} <= states
    # the file is Windows-1252: its 0x96 is an en dash (a C1 control in Latin-1)
    assert whc[whc["id"] == "1150"].iloc[0]["name"] == "Liverpool – Maritime Mercantile City"
    # not UTF-8: an error that says which encoding to try, not mojibake
    with pytest.raises(EchoesError, match="encoding='cp1252'"):
        echoes_lab.read_sites(WHC, preset="whc")


def test_british_grid_letters():
    """Ordnance Survey, A Guide to Coordinate Systems in Great Britain, Annex C: TG 51409 13177
    is E 651409 N 313177; TQ 30 80 the 1 km square at E 530000 N 180000."""
    assert grid_reference("TG 51409 13177") == (651409.0, 313177.0, 1.0)
    assert grid_reference("TQ3080") == (530000.0, 180000.0, 1000.0)
    assert grid_reference("SV 0 0") == (0.0, 0.0, 10000.0)
    with pytest.raises(EchoesError, match="even number of digits"):
        grid_reference("TQ 308")
    with pytest.raises(EchoesError, match="British National Grid"):
        grid_reference("IQ 30 80")


def test_grid_references_in_a_csv_become_wgs84(tmp_path):
    path = tmp_path / "ngr.csv"
    path.write_text("name,ngr\nOS Annex C point,TG 51409 13177\nnowhere,\n")
    sites = echoes_lab.read_sites(path)
    assert sites.attrs["source_crs"] == "EPSG:27700"
    # the same square centre through PROJ directly, by the operation recorded
    op = sites.attrs["transformation"]
    assert op["accuracy_m"] <= 2.0 and "OSGB36 to WGS 84" in op["operation"]
    lon, lat = Transformer.from_crs(27700, 4326, always_xy=True).transform(651409.5, 313177.5)
    assert _metres(sites.geometry.iloc[0].x, sites.geometry.iloc[0].y, lon, lat) < 0.01
    # and the projection itself against the Annex C worked example (OSGB36 latitude/longitude
    # 52°39'27.2531"N 1°43'4.5177"E <-> E 651409.903 N 313177.270)
    e, n = Transformer.from_crs(4277, 27700, always_xy=True).transform(
        1 + 43 / 60 + 4.5177 / 3600, 52 + 39 / 60 + 27.2531 / 3600)
    assert abs(e - 651409.903) < 0.01 and abs(n - 313177.270) < 0.01
    quality = sites.sites.quality()
    assert "no geometry" in set(quality["issue"])
    assert "transformation" not in set(quality["issue"])  # OSTN15 is shipped: PROJ's best
    assert op["grids"] == ["uk_os_OSTN15_NTv2_OSGBtoETRS.tif"]


def test_lambert93_and_wkt(tmp_path):
    """Lambert-93 (EPSG:2154), as the IGN defines it: the point of origin 46°30'N 3°E has
    X0 = 700 000 m, Y0 = 6 600 000 m (IGN, "Lambert 93", décret 2000-1276 and its annex)."""
    path = tmp_path / "l93.csv"
    path.write_text("id;nom;wkt\nO;origine;POINT (700000 6600000)\n")
    sites = echoes_lab.read_sites(path, wkt="wkt", crs="EPSG:2154", name="nom")
    g = sites.geometry.iloc[0]
    assert _metres(g.x, g.y, 3.0, 46.5) < 0.01
    assert sites["id"].iloc[0] == "O" and sites.attrs["source_crs"] == "EPSG:2154"


def test_vector_formats_round_trip(merimee, tmp_path):
    few = merimee.iloc[:5][["id", "name", "protection", "geometry"]].copy()
    few["id"] = few["id"].astype(str)
    few.to_crs(2154).to_file(tmp_path / "sites.gpkg", driver="GPKG")
    shp = tmp_path / "shp"
    shp.mkdir()
    few.to_crs(2154).to_file(shp / "sites.shp")
    with zipfile.ZipFile(tmp_path / "sites.zip", "w") as z:
        for p in shp.iterdir():
            z.write(p, p.name)
    few.to_file(tmp_path / "sites.kml", driver="KML")
    for name in ("sites.gpkg", "sites.zip", "sites.kml"):
        back = echoes_lab.read_sites(tmp_path / name)
        assert len(back) == 5, name
        for a, b in zip(back.geometry, few.geometry, strict=True):
            assert _metres(a.x, a.y, b.x, b.y) < 0.01, name
    assert echoes_lab.read_sites(tmp_path / "sites.gpkg").attrs["source_crs"] == "EPSG:2154"


def test_invalid_polygon_is_repaired_and_listed(tmp_path):
    bowtie = {"type": "Feature", "properties": {"name": "bow-tie enclosure", "id": "B1"},
              "geometry": {"type": "Polygon",
                           "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]}}
    path = tmp_path / "bad.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [bowtie]}))
    sites = echoes_lab.read_sites(path)
    assert shapely.is_valid(sites.geometry.iloc[0])
    assert sites.geometry.iloc[0].area == pytest.approx(0.5)
    q = sites.sites.quality()
    assert q.loc[0, "issue"] == "invalid geometry" and "Self-intersection" in q.loc[0, "detail"]
    assert q.loc[0, "id"] == "B1"


@pytest.mark.parametrize(("text", "kwargs", "match"), [
    ("name,latitude,longitude\nA,151.2,-0.1\n", {}, "line 2: latitude 151.2"),
    ("name,latitude,longitude\nA,north,-0.1\n", {}, "'north' is not a number"),
    ("name,x,y\nA,1,2\n", {"x": "x", "y": "y"}, "crs='EPSG:2154'"),
    ("name,place\nA,here\n", {}, "no place columns"),
    ("name,lat,lon\nA,1,2\n", {"lat": "latitude"}, "no column 'latitude'"),
])
def test_bad_tables_name_file_and_fix(tmp_path, text, kwargs, match):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(EchoesError, match=match) as err:
        echoes_lab.read_sites(path, **kwargs)
    assert str(path) in str(err.value)


def test_unknown_format_and_missing_crs(tmp_path):
    p = tmp_path / "x.xlsx"
    p.write_bytes(b"PK")
    with pytest.raises(EchoesError, match="unknown kind of file"):
        echoes_lab.read_sites(p)
    with pytest.raises(EchoesError, match="unknown preset"):
        echoes_lab.read_sites(MERIMEE, preset="nope")


SURVEYS = pd.DataFrame({
    "site_id": ["A", "A", "A", "B", "B", "C"],
    "date": ["2015-06-01", "2019-06-01", "2024-06-01", "2016-05-01", "2023-05-01", "2022-01-10"],
    "assessor": ["ICOMOS mission", "HE", "HE", "HE", "HE", "HE"],
    "grade": ["good", "fair", "poor", "fair", "generally satisfactory", "fair"],
    "threats": ["", "4", "Climate change and severe weather events;7", "1", "", "13"],
    "source": ["SOC 2015"] * 6,
})


def test_condition_trend_and_at_risk_rule():
    from echoes_lab.sites.condition import condition_table

    t = condition_table(SURVEYS).set_index("site_id")
    assert t.loc["A", "trend"] == "worsening" and t.loc["A", "at_risk"]
    assert "latest grade poor" in t.loc["A", "why"]
    assert "fell from fair to poor" in t.loc["A", "why"]
    assert t.loc["A", "threats"] == ["Climate change and severe weather events",
                                     "Local conditions affecting physical fabric"]
    # ranks 4, 2, 1 at 0, 4.0, 9.0 years: slope = sum(dt*dr)/sum(dt^2) = -13.3/40.7 per year
    assert t.loc["A", "ranks_per_decade"] == pytest.approx(-3.28, abs=0.01)
    assert t.loc["B", "trend"] == "improving" and not t.loc["B", "at_risk"]
    assert t.loc["C", "trend"] == "single survey" and not t.loc["C", "at_risk"]
    assert GRADES[0] == "very bad"


def test_surveys_refuse_unknown_grades_and_threats():
    from echoes_lab.sites.condition import condition_table

    with pytest.raises(EchoesError, match="row 1: grade 'excellent'"):
        condition_table(SURVEYS.assign(grade=["excellent"] + list(SURVEYS["grade"][1:])))
    with pytest.raises(EchoesError, match="row 2: threat 'aliens'"):
        condition_table(SURVEYS.assign(threats=["", "aliens", "", "", "", ""]))


def test_hazard_join_counts_sites_per_class(merimee):
    """Two real buildings: the cathedral lies in a 200 m zone drawn round it; the others not."""
    cathedral = merimee[merimee["name"] == "cathédrale Saint-Etienne"].geometry.iloc[0]
    zone = gpd.GeoSeries([cathedral], crs=4326).to_crs(2154).buffer(200)
    hazards = gpd.GeoDataFrame({"zone": ["high"]}, geometry=zone, crs=2154)
    table = merimee.sites.hazards(hazards, by="zone")
    high = table[table["zone"] == "high"].iloc[0]
    ids = set(high["ids"])
    assert merimee.loc[merimee["name"] == "cathédrale Saint-Etienne", "id"].iloc[0] in ids
    inside = merimee.to_crs(2154).distance(zone.iloc[0]) == 0
    assert high["sites"] == int(inside.sum())
    assert table["sites"].sum() == len(merimee)
    with pytest.raises(EchoesError, match="no column 'class'"):
        hazard_join(merimee, hazards, by="class")


def test_condition_next_to_names(merimee):
    ids = list(merimee["id"][:2])
    surveys = SURVEYS[SURVEYS["site_id"].isin(["A", "B"])].replace({"A": ids[0], "B": ids[1]})
    table = merimee.sites.condition(surveys)
    assert list(table["site_id"]) == ids and table["name"].iloc[0] == merimee["name"].iloc[0]


def test_map_needs_no_internet(merimee):
    from echoes_lab.sites.condition import condition_table

    ids = list(merimee["id"][:2])
    surveys = SURVEYS[SURVEYS["site_id"].isin(["A", "B"])].replace({"A": ids[0], "B": ids[1]})
    m = merimee.sites.map(condition=condition_table(surveys))
    names = [getattr(layer, "name", "") for layer in m.layers]
    assert "sites" in names
    assert not [layer for layer in m.layers if hasattr(layer, "url")]  # no tile server
    sites = next(layer for layer in m.layers if getattr(layer, "name", "") == "sites")
    assert len(sites.data["features"]) == 59
    risky = [f for f in sites.data["features"] if f["properties"]["at_risk"]]
    assert [f["properties"]["id"] for f in risky] == [ids[0]]


def test_place_target_is_a_geojson_feature(merimee):
    site = merimee["id"].iloc[0]
    target = merimee.sites.place_target(site)
    assert target["type"] == "Feature" and target["geometry"]["type"] == "Point"
    # the register's id after the base, percent-encoded: an IRI whatever the id holds
    assert target["id"] == "urn:echoes:site:" + site.replace("#", "%23")
    lon, lat = target["geometry"]["coordinates"]
    assert (lon, lat) == (merimee.geometry.iloc[0].x, merimee.geometry.iloc[0].y)


def test_place_annotation_in_the_local_commons_is_listed_and_drawn(merimee, tmp_path,
                                                                  monkeypatch):
    """A place annotated through the commons' public API (a local commons outside a hub):
    the commons lists it by the site's IRI, and the map draws it on its own layer."""
    from echoes_lab import commons
    from echoes_lab.sites import annotated_places

    monkeypatch.setenv("ECHOES_COMMONS_DB", str(tmp_path / "commons.sqlite"))
    monkeypatch.delenv("ECHOES_COMMONS_URL", raising=False)
    monkeypatch.setattr(commons, "_current", None)  # the module's choice is restored after
    commons.connect(local=tmp_path / "commons.sqlite")
    row = merimee[merimee["name"] == "cathédrale Saint-Etienne"].iloc[0]
    place = merimee.sites.place_target(row["id"])
    made = commons.annotate(place, "Water ingress at the north transept, 2024 survey",
                            motivation="assessing", tags=["condition"])
    listed = commons.annotations(target=place["id"])
    assert list(listed["id"]) == [made["id"]]
    assert "north transept" in listed["text"].iloc[0]
    drawn = annotated_places(commons.annotations(tag="condition"))
    assert list(drawn["target"]) == [place["id"]]
    assert drawn.geometry.iloc[0].equals(row.geometry)
    m = merimee.sites.map(annotations=drawn)
    layer = next(layer for layer in m.layers if getattr(layer, "name", "") == "annotations")
    assert layer.data["features"][0]["properties"]["text"].startswith("Water ingress")


def test_a_sites_loggers_risk_table_next_to_its_condition(merimee):
    """The demo climate data's loggers standing for two sites' own: the site's rows carry the
    climate risk table's figures (as ds.climate computes them) and the site's condition."""
    raw = echoes_lab.open_dataset("demo-climate")
    ds = echoes_lab.read_climate(raw, resample="1h")
    ids = list(merimee["id"][:2])
    surveys = SURVEYS[SURVEYS["site_id"].isin(["A", "B"])].replace({"A": ids[0], "B": ids[1]})
    table = merimee.sites.climate(ds, {ids[0]: ["L01", "L03"], ids[1]: ["S0A"]}, surveys)
    assert list(table["sensor"]) == ["L01", "L03", "S0A"]
    assert list(table["site_id"]) == [ids[0], ids[0], ids[1]]
    direct = ds.sel(sensor=["S0A"]).climate.risk_table()
    assert table.loc[2, "TWPI (years)"] == direct["TWPI (years)"].iloc[0]
    assert table.loc[0, "latest_grade"] == "poor" and bool(table.loc[0, "at_risk"])
    with pytest.raises(EchoesError, match="not in the climate data"):
        merimee.sites.climate(ds, {ids[0]: ["nope"]})


def test_tile_server_is_deployment_settings(tmp_path, monkeypatch, merimee):
    """[spawner] map_tiles reaches users' servers as ECHOES_MAP_TILES, which maps then use;
    none by default, so nothing is asked of the internet."""
    from traitlets.config import Config

    from echoes_lab.hub.config import configure

    def environment(extra: str) -> dict:
        path = tmp_path / "settings.toml"
        path.write_text(f'profile = "test"\n[hub]\nstate_dir = "state"\n{extra}')
        c = Config()
        configure(c, path)
        return c.Spawner.environment.get_value({})  # what the spawner's trait will hold

    assert "ECHOES_MAP_TILES" not in environment("")
    url = "https://tiles.museum.example/{z}/{x}/{y}.png"
    assert environment(f'[spawner]\nmap_tiles = "{url}"\n')["ECHOES_MAP_TILES"] == url
    monkeypatch.setenv("ECHOES_MAP_TILES", url)
    tiles = [layer for layer in merimee.sites.map().layers if getattr(layer, "url", None)]
    assert [t.url for t in tiles] == [url]


# -- three national registers and a real hazard layer -----------------------------------------

ZURICH = REAL / "zurich-denkmalschutzobjekte-excerpt.csv"
TRAFFORD = REAL / "trafford-listed-buildings.geojson"
AQMA = REAL / "trafford-aqma.geojson"


def _swisstopo_lv95_to_wgs84(e: float, n: float) -> tuple[float, float]:
    """swisstopo, "Approximate formulas for the transformation between Swiss projection
    coordinates and WGS84" (Federal Office of Topography, Wabern), LV95 -> WGS84: auxiliary
    values y' = (E - 2 600 000 m) / 10^6, x' = (N - 1 200 000 m) / 10^6, longitude and latitude
    in units of 10000" then degrees; accuracy of the order of 1 m (the document's own figure),
    independent of PROJ."""
    y, x = (e - 2_600_000) / 1e6, (n - 1_200_000) / 1e6
    lam = 2.6779094 + 4.728982 * y + 0.791484 * y * x + 0.1306 * y * x * x - 0.0436 * y ** 3
    phi = (16.9023892 + 3.238272 * x - 0.270978 * y * y - 0.002528 * x * x
           - 0.0447 * y * y * x - 0.0140 * x ** 3)
    return lam * 100 / 36, phi * 100 / 36


@pytest.fixture(scope="module")
def zurich():
    return echoes_lab.read_sites(ZURICH, encoding="cp1252", x="E-Koordinate", y="N-Koordinate",
                                 crs="EPSG:2056", id="ODB-ID", name="Objekt",
                                 designation="Einstufung", period="Baujahr",
                                 licence="CC BY 4.0 (Kanton Zürich, Denkmalpflege)")


def test_zurich_register_values_a_person_reads(zurich):
    """Switzerland: the canton of Zürich's inventory of monuments of more than communal
    importance (semicolon-separated, Windows-1252, Swiss LV95 coordinates)."""
    assert len(zurich) == 47
    gross = zurich[zurich["id"] == "Objekt 3545"].iloc[0]
    assert gross["name"] == "Grossmünster" and gross["designation"] == "kantonal"
    assert gross["period"] == "1100–1787"
    assert (gross["period_earliest"], gross["period_latest"]) == (1100, 1787)
    assert gross["original"]["Strasse / Nr."] == "Grossmünsterplatz 4; Zwingliplatz 7"
    church = zurich[(zurich["name"] == "Klosterkirche")].iloc[0]
    assert church["original"]["Gemeinde"] == "Kappel am Albis"
    assert church["period"] == "um 1250 – 1304" and church["period_earliest"] == 1250
    assert zurich["name"].iloc[0] == "Eisenbahnbrücke über die Thur, südliche Hälfte"
    assert zurich.attrs["source_crs"] == "EPSG:2056"
    assert set(zurich["designation"]) == {"kantonal", "regional", "-"}
    # not UTF-8 (its ü is 0xfc): an error naming the encoding to try, not mojibake
    with pytest.raises(EchoesError, match="encoding='cp1252'"):
        echoes_lab.read_sites(ZURICH, x="E-Koordinate", y="N-Koordinate", crs="EPSG:2056")


def test_zurich_lv95_reprojects_within_1_m_of_swisstopos_formulas(zurich):
    """Every monument, read from LV95 (EPSG:2056) through PROJ, lands within 1 m of the point
    swisstopo's own approximate formulas give; the Grossmünster at E 2 683 490, N 1 247 173."""
    worst = 0.0
    for geom, rec in zip(zurich.geometry, zurich["original"], strict=True):
        lon, lat = _swisstopo_lv95_to_wgs84(float(rec["E-Koordinate"]),
                                            float(rec["N-Koordinate"]))
        worst = max(worst, _metres(geom.x, geom.y, lon, lat))
    assert worst < 1.0
    gross = zurich[zurich["id"] == "Objekt 3545"].geometry.iloc[0]
    assert _metres(gross.x, gross.y, *_swisstopo_lv95_to_wgs84(2683490, 1247173)) < 1.0
    assert zurich.attrs["transformation"]["accuracy_m"] <= 1.0


@pytest.fixture(scope="module")
def trafford():
    return echoes_lab.read_sites(TRAFFORD, id="ListEntry", name="Name", designation="Grade",
                                 licence="OGL v3 (Historic England)")


def test_england_listed_buildings_values_a_person_reads(trafford):
    """England: Historic England's National Heritage List entries in Trafford (points)."""
    assert len(trafford) == 265
    assert trafford["designation"].value_counts().to_dict() == {"II": 249, "II*": 10, "I": 6}
    werburg = trafford[trafford["id"] == "1067865"].iloc[0]
    assert werburg["name"] == "Old Church Of Saint Werburg" and werburg["designation"] == "I"
    assert werburg["original"]["NGR"] == "SJ 69694 89576"
    assert str(werburg["original"]["ListDate"]).startswith("1959-03-05")  # listed on
    assert werburg["original"]["hyperlink"].endswith("/list-entry/1067865")
    assert (werburg.geometry.x, werburg.geometry.y) == (-2.457281027999954, 53.402144969000055)


def test_england_grid_coordinates_agree_with_the_published_wgs84_within_1_m(trafford, tmp_path):
    """The file gives each point twice: British grid Easting/Northing and WGS84. Read from the
    grid through OSTN15 ("OSGB36 to WGS 84 (9)", shipped with the library), 255 of the 261
    single points land within 1 m of where Historic England put them (a steady 0.36 m apart:
    its producer's own datum step), among them the named buildings below; through the Helmert
    fallback ("OSGB36 to WGS 84 (6)") none does (1.4 m at best). Four points carry several
    Eastings (a list) and are left out; six lie 1-8.5 m apart in the source itself (their grid
    and WGS84 points disagree whatever the transformation)."""
    rows = [{"name": r["Name"], "id": r["ListEntry"], "e": r["Easting"], "n": r["Northing"]}
            for r in trafford["original"] if "," not in str(r["Easting"])]
    keep = [("," not in str(r["Easting"])) for r in trafford["original"]]
    assert len(rows) == 261
    path = tmp_path / "bng.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    grid = echoes_lab.read_sites(path, x="e", y="n", crs="EPSG:27700")
    op = grid.attrs["transformation"]
    assert op["operation"].startswith("Inverse of British National Grid + OSGB36 to WGS 84 (9)")
    assert op["accuracy_m"] == 1.0 and op["grids"] == ["uk_os_OSTN15_NTv2_OSGBtoETRS.tif"]
    assert "transformation" not in set(grid.sites.quality()["issue"])
    published = trafford[keep]
    apart = [_metres(a.x, a.y, b.x, b.y)
             for a, b in zip(grid.geometry, published.geometry, strict=True)]
    assert sum(d <= 1.0 for d in apart) == 255
    assert sorted(apart)[len(apart) // 2] == pytest.approx(0.36, abs=0.02)  # the median
    # named buildings: the point the official list entry gives (its WGS84) to within 1 m
    named = dict(zip(grid["id"], apart, strict=True))
    for entry, name in [("1067865", "Old Church Of Saint Werburg"),
                        ("1067598", "Buckhall, The Four Seasons Hotel")]:
        assert published.loc[published["id"] == entry, "name"].iloc[0] == name
        assert named[entry] < 1.0
    werburg = grid[grid["id"] == "1067865"].geometry.iloc[0]
    assert _metres(werburg.x, werburg.y, -2.457281027999954, 53.402144969000055) < 1.0
    # the same file through the Helmert fallback: no point within 1 m
    lon, lat = _helmert().transform(pd.to_numeric(grid["original"].str["e"]).to_numpy(),
                                 pd.to_numeric(grid["original"].str["n"]).to_numpy())
    assert min(_metres(a, b, p.x, p.y)
               for a, b, p in zip(lon, lat, published.geometry, strict=True)) > 1.0


# -- Ordnance Survey's OSTN15 test points ----------------------------------------------------

OSTN15 = Path(__file__).parent / "data" / "real" / "sites-ostn15"


def _helmert():
    """PROJ's fallback without the grid: EPSG 1314 "OSGB36 to WGS 84 (6)", 7-parameter Helmert,
    stated accuracy 2 m."""
    group = TransformerGroup(27700, 4326, always_xy=True)
    return next(t for t in group.transformers if "OSGB36 to WGS 84 (6)" in t.description)


def _os_test_points() -> pd.DataFrame:
    """The 40 points of Ordnance Survey's OSTN15/OSGM15 developer pack, OSGB36 -> ETRS89: the
    inputs (Easting, Northing) and the published result rows (latitude, longitude)."""
    given = pd.read_csv(OSTN15 / "OSTN15_OSGM15_TestInput_OSGBtoETRS.txt")
    given.columns = [c.strip() for c in given.columns]
    out = pd.read_csv(OSTN15 / "OSTN15_OSGM15_TestOutput_OSGBtoETRS.txt", dtype=str)
    out = out[out["Iteration No./RESULT"] == "RESULT"]
    return given.merge(out, on="PointID", validate="one_to_one")


def test_ostn15_reproduces_ordnance_surveys_published_test_points(tmp_path):
    """British grid -> WGS84 to the published millimetres: each of the 40 OS test points read
    from a CSV of Eastings/Northings lands within 1 cm of the ETRS89 latitude/longitude Ordnance
    Survey publishes for it (OSTN15_OSGM15_TestOutput_OSGBtoETRS.txt; TP01 St Mary's, Scilly,
    E 91492.146 N 11318.804 -> 49.92226393730 N 6.29977752014 W). The NTv2 form of OSTN15
    interpolates in latitude/longitude, OS's own in the grid: the worst is 7.8 mm. "OSGB36 to WGS
    84 (9)" takes ETRS89 as WGS84 (EPSG: 1 m); the 7-parameter Helmert misses by up to 4.9 m."""
    points = _os_test_points()
    assert len(points) == 40
    tp01 = points[points["PointID"] == "TP01"].iloc[0]
    assert (tp01["OSGB36 Eastings"], tp01["OSGB36 Northing"]) == (91492.146, 11318.804)
    assert (tp01["ETRSEast/Lat"], tp01["ETRSNorth/Long"]) == ("49.92226393730", "-6.29977752014")
    path = tmp_path / "os-test-points.csv"
    points[["PointID", "OSGB36 Eastings", "OSGB36 Northing"]].to_csv(path, index=False)
    sites = echoes_lab.read_sites(path, id="PointID", x="OSGB36 Eastings", y="OSGB36 Northing",
                                  crs="EPSG:27700")
    assert sites.attrs["transformation"]["grids"] == ["uk_os_OSTN15_NTv2_OSGBtoETRS.tif"]
    apart = {pid: _metres(g.x, g.y, float(lon), float(lat))
             for pid, g, lat, lon in zip(sites["id"], sites.geometry, points["ETRSEast/Lat"],
                                         points["ETRSNorth/Long"], strict=True)}
    assert max(apart.values()) < 0.01
    assert apart["TP01"] < 0.002
    # the Helmert fallback, which PROJ uses without the grid, is metres off on the same points
    lon, lat = _helmert().transform(points["OSGB36 Eastings"].to_numpy(),
                               points["OSGB36 Northing"].to_numpy())
    worst = max(_metres(a, b, float(c), float(d)) for a, b, c, d in zip(
        lon, lat, points["ETRSNorth/Long"], points["ETRSEast/Lat"], strict=True))
    assert 4.5 < worst < 5.0


def test_ostn15_forward_etrs89_to_the_published_grid_millimetres():
    """ETRS89 -> British grid through the same shipped grid (the inverse direction PROJ uses to
    write EPSG:27700): the 40 points of OSTN15_OSGM15_TestInput_ETRStoOSGB.txt land within 1 cm
    of the published Easting/Northing (TP01: 91492.146, 11318.804), through PROJ directly and
    through geopandas' own ``to_crs`` once ``echoes_lab.sites`` is imported."""
    given = pd.read_csv(OSTN15 / "OSTN15_OSGM15_TestInput_ETRStoOSGB.txt")
    out = pd.read_csv(OSTN15 / "OSTN15_OSGM15_TestOutput_ETRStoOSGB.txt")
    both = given.merge(out, on="PointID", validate="one_to_one")
    assert len(both) == 40
    to_grid = TransformerGroup(4258, 27700, always_xy=True).transformers[0]
    assert "OSGB36 to ETRS89 (2)" in to_grid.description  # EPSG 7709, OSTN15
    e, n = to_grid.transform(both["ETRS Longitude"].to_numpy(),
                             both["ETRS89 Latitude"].to_numpy())
    miss = ((e - both["OSGBEast"]) ** 2 + (n - both["OSGBNorth"]) ** 2) ** 0.5
    assert miss.max() < 0.01
    assert abs(e[0] - 91492.146) < 0.002 and abs(n[0] - 11318.804) < 0.002
    grid = gpd.GeoSeries(gpd.points_from_xy(both["ETRS Longitude"], both["ETRS89 Latitude"]),
                         crs=4258).to_crs(27700)
    published = gpd.GeoSeries(gpd.points_from_xy(both["OSGBEast"], both["OSGBNorth"]),
                              crs=27700)
    assert (grid.distance(published) < 0.01).all()


def test_scattered_grid_points_are_transformed_in_order_and_fast(tmp_path):
    """20,000 points scattered over the British grid, in no spatial order: each lands where
    PROJ puts it alone, and the whole read stays within seconds (PROJ reads a grid tile per
    point in row order: 10,000 such points took 12 s, 1,000 times the sorted time)."""
    import time

    rng = np.random.default_rng(3)
    n = 20_000
    e, north = rng.uniform(100_000, 650_000, n).round(1), rng.uniform(50_000, 1_000_000, n).round(1)
    path = tmp_path / "scattered.csv"
    pd.DataFrame({"name": [f"p{i}" for i in range(n)], "e": e, "n": north}).to_csv(path,
                                                                                  index=False)
    start = time.perf_counter()
    sites = echoes_lab.read_sites(path, x="e", y="n", crs="EPSG:27700")
    assert time.perf_counter() - start < 10  # row order: about 25 s here
    one = TransformerGroup(27700, 4326, always_xy=True).transformers[0]
    for i in rng.choice(n, 40, replace=False):
        lon, lat = one.transform(e[i], north[i])
        g = sites.geometry.iloc[i]
        if not math.isfinite(lon):  # beyond OSTN15's area: no place, and said so
            assert g is None and i + 1 in set(sites.sites.quality()["row"])
            continue
        assert (g.x, g.y) == (lon, lat)


def test_missing_grid_is_said_and_a_point_outside_the_grid_loses_its_place(tmp_path,
                                                                           monkeypatch):
    """Without the shipped grid PROJ falls back to the Helmert: a warning naming the file and
    the grid, and the quality report, say so; a grid point beyond OSTN15's area has no place
    rather than a wrong one."""
    import pyproj.datadir

    from echoes_lab.sites import readers

    path = tmp_path / "far.csv"
    path.write_text("name,e,n\nSt Mary's,91492.146,11318.804\nbeyond the grid,699999,1249999\n")
    sites = echoes_lab.read_sites(path, x="e", y="n", crs="EPSG:27700")
    assert sites.geometry.iloc[1] is None
    quality = sites.sites.quality()
    assert quality[["row", "id", "issue"]].values.tolist() == [
        [2, "far.csv#2", "outside the grid"]]
    assert "OSGB36 to WGS 84 (9)" in quality["detail"].iloc[0]

    saved = pyproj.datadir.get_data_dir()
    monkeypatch.setattr(readers, "GRIDS", tmp_path / "no-grids-here")
    pyproj.datadir.set_data_dir(saved.split(":")[0])  # PROJ's own data only
    try:
        with pytest.warns(UserWarning, match=r"far\.csv: .*uk_os_OSTN15_NTv2_OSGBtoETRS\.tif"):
            fallback = echoes_lab.read_sites(path, x="e", y="n", crs="EPSG:27700")
    finally:
        pyproj.datadir.set_data_dir(saved)
    op = fallback.attrs["transformation"]
    assert "OSGB36 to WGS 84 (6)" in op["operation"] and op["accuracy_m"] == 2.0
    detail = fallback.sites.quality().set_index("issue").loc["transformation", "detail"]
    assert "uk_os_OSTN15_NTv2_OSGBtoETRS.tif" in detail and "not installed" in detail


def test_real_hazard_layer_air_quality_management_area(trafford):
    """A real hazard layer: Defra's Air Quality Management Area over Trafford (declared where
    the annual mean NO2 exceeds 35 µg/m³; air pollution is factor 4, "Pollution", of the World
    Heritage list of factors). The join counts 13 listed buildings inside, as a point-in-polygon
    test in the British grid (independent of the join's own path) does."""
    aqma = gpd.read_file(AQMA)
    assert aqma["area_name"].tolist() == ["Trafford"]
    assert "annual mean of 35ug/m3" in aqma["description"].iloc[0]
    table = trafford.sites.hazards(aqma, by="area_name")
    inside = table[table["area_name"] == "Trafford"].iloc[0]
    # a building listed as several points (3 entries) counts once per class
    assert inside["sites"] == 13 and table["sites"].sum() == trafford["id"].nunique() == 262
    zone = aqma.to_crs(27700).geometry.iloc[0]
    within = trafford.to_crs(27700).within(zone)
    assert set(inside["ids"]) == set(trafford.loc[within, "id"])
    names = set(trafford.loc[trafford["id"].isin(inside["ids"]), "name"])
    assert {"Stretford War Memorial", "Civic Theatre", "Trafford Park Hotel"} <= names


FLOOD = REAL / "trafford-flood-risk-rofrs-2018.geojson"


@pytest.fixture(scope="module")
def flood():
    return gpd.read_file(FLOOD)


def test_real_flood_layer_values_a_person_reads(flood):
    """A real flood layer: the Environment Agency's Risk of Flooding from Rivers and Sea
    (published 2018-03-28) clipped to Trafford by Trafford Data Lab, as published: 1,494
    polygons, each with its yearly-chance band ``prob_4band`` and the scale it suits."""
    assert len(flood) == 1494 and flood.crs.to_epsg() == 4326
    assert flood["prob_4band"].value_counts().to_dict() == {
        "Medium": 741, "Low": 377, "High": 302, "Very Low": 74}
    assert set(flood["suitabilit"]) == {"County to Town", "Town to Street"}
    assert set(flood["area_name"]) == {"Trafford"} and set(flood["area_code"]) == {"E08000009"}
    first = flood.iloc[0]
    assert (first["prob_4band"], first["suitabilit"]) == ("High", "County to Town")
    assert first["st_area_sh"] == pytest.approx(148185.510403)
    assert str(first["pub_date"]).startswith("2018-03-28")


def test_listed_buildings_in_the_flood_risk_bands(trafford, flood):
    """Sites per flood-risk band (the hazard join) and the risk table, against a point-in-polygon
    test in the British grid that does not use the join. Brindley's Weir and the Bridgewater
    Canal aqueduct over the River Mersey stand in the river: band High, as the file says; the
    Old Church of St Werburg, Warburton, lies in a Low band polygon."""
    from echoes_lab.sites.hazards import ROFRS_BANDS, risk_table

    table = trafford.sites.hazards(flood, by="prob_4band").set_index("prob_4band")
    assert table["sites"].to_dict() == {"none": 247, "Low": 9, "High": 5, "Medium": 1}
    assert set(table.loc["High", "ids"]) == {"1067872", "1121942", "1255540", "1356510",
                                             "1458867"}
    assert table.loc["Medium", "ids"] == ["1356532"]
    names = dict(zip(trafford["id"], trafford["name"], strict=False))
    assert {names[i] for i in table.loc["High", "ids"]} == {
        "Bridgewater Canal Aqueduct Over River Mersey", "Bollington Mill", "Brindleys Weir",
        "Brick Kiln Lane Bridge", "Jackson's Bridge"}
    # independently: which polygon holds each point, in the British grid (EPSG:27700)
    grid = flood.to_crs(27700)
    points = trafford.to_crs(27700)
    for band, ids in table["ids"].items():
        if band == "none":
            continue
        zone = shapely.union_all(grid.loc[grid["prob_4band"] == band].geometry.to_numpy())
        assert set(points.loc[points.intersects(zone), "id"]) == set(ids)

    risk = risk_table(trafford, flood, "prob_4band", order=ROFRS_BANDS)
    assert len(risk) == trafford["id"].nunique() == 262
    assert risk.equals(trafford.sites.risk(flood, "prob_4band", ROFRS_BANDS))
    assert risk["worst"].value_counts().to_dict() == {"none": 247, "Low": 9, "High": 5,
                                                      "Medium": 1}
    top = risk.iloc[0]
    assert top["worst"] == "High" and top["rank"] == 0
    assert top["meaning"] == "3.3 % (1 in 30) or more each year"
    werburg = risk.set_index("id").loc["1067865"]
    assert werburg["name"] == "Old Church Of Saint Werburg"
    assert (werburg["worst"], werburg["classes"]) == ("Low", ["Low"])
    assert list(risk["rank"]) == sorted(risk["rank"])  # most exposed first
    # a band the ranking does not know is an error, not a silently wrong "worst"
    with pytest.raises(EchoesError, match=r"\['Very Low'\].*add them"):
        risk_table(trafford, flood, "prob_4band", order=["High", "Medium", "Low"])


def test_a_site_in_several_bands_is_reported_once_at_its_worst(trafford, flood):
    """Bollington Mill lies in a High polygon of the real layer; a Low zone drawn round it as
    well leaves it High (worst first), listed with both classes, once."""
    from echoes_lab.sites.hazards import risk_table

    mill = trafford[trafford["id"] == "1121942"].to_crs(27700).geometry.iloc[0]
    ring = gpd.GeoDataFrame({"prob_4band": ["Low"]}, geometry=[mill.buffer(200)],
                            crs=27700).to_crs(4326)
    layer = pd.concat([flood, ring], ignore_index=True)
    risk = risk_table(trafford, layer, "prob_4band", ["High", "Medium", "Low", "Very Low"])
    row = risk.set_index("id").loc["1121942"]
    assert (row["name"], row["worst"], row["rank"]) == ("Bollington Mill", "High", 0)
    assert row["classes"] == ["High", "Low"]
    assert "meaning" not in risk.columns and risk["id"].is_unique


def test_place_annotation_is_a_linked_art_place_in_the_knowledge_graph(trafford):
    """A place annotation's target (a GeoJSON Feature) becomes crm:E53_Place with its label and
    its geometry as WKT (Linked Art ``defined_by``) in the quads the knowledge base stores."""
    import pyoxigraph as ox

    from echoes_lab.knowledge.rdf import annotation_quads

    target = trafford.sites.place_target("1067865")
    ann = {"id": "https://commons.example/annotations/1", "type": "Annotation",
           "motivation": "assessing", "target": target,
           "body": {"type": "TextualBody", "value": "Churchyard wall leaning, 2024 survey"}}
    store = ox.Store()
    store.extend(annotation_quads(ann, ox.NamedNode("https://commons.example/graph")))
    rows = list(store.query(
        "PREFIX crm: <http://www.cidoc-crm.org/cidoc-crm/> "
        "PREFIX oa: <http://www.w3.org/ns/oa#> "
        "PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#> "
        "SELECT ?p ?label ?wkt WHERE { GRAPH ?g { ?a oa:hasTarget ?p . ?p a crm:E53_Place ; "
        "rdfs:label ?label ; crm:P168_place_is_defined_by ?wkt } }"))
    assert len(rows) == 1
    assert rows[0]["p"].value == "urn:echoes:site:1067865"
    assert rows[0]["label"].value == "Old Church Of Saint Werburg"
    point = shapely.from_wkt(rows[0]["wkt"].value)
    assert (point.x, point.y) == (-2.457281027999954, 53.402144969000055)
    bad = {**ann, "target": {**target, "geometry": {"type": "Point", "coordinates": "x"}}}
    with pytest.raises(EchoesError, match="GeoJSON Feature whose 'geometry' is not GeoJSON"):
        annotation_quads(bad, ox.NamedNode("https://commons.example/graph"))


def test_large_maps_draw_on_a_canvas(merimee):
    """Above CANVAS_ABOVE sites the map draws on one canvas (Leaflet's preferCanvas), not an
    SVG element per site; the small maps of the app stay SVG (clickable paths)."""
    from echoes_lab.sites import CANVAS_ABOVE

    assert not merimee.sites.map().prefer_canvas
    assert merimee.sites.map(canvas=True).prefer_canvas
    many = gpd.GeoDataFrame(
        {"id": [f"S{i}" for i in range(CANVAS_ABOVE + 1)], "name": "s", "designation": "",
         "protection": "", "period": ""},
        geometry=gpd.points_from_xy([2.0] * (CANVAS_ABOVE + 1), [46.0] * (CANVAS_ABOVE + 1)),
        crs=4326)
    m = many.sites.map(basemap=many.iloc[:0])
    assert m.prefer_canvas
    sites = next(layer for layer in m.layers if getattr(layer, "name", "") == "sites")
    assert len(sites.data["features"]) == CANVAS_ABOVE + 1


def test_sites_as_linked_art_places_valid_and_in_the_graph(zurich, trafford, merimee):
    """Every site of the three registers is a Linked Art Place valid against the Linked Art
    profile's JSON schema (tests/data/real/linked-art/schema); the Grossmünster's document says
    what the register says, its id makes an IRI (percent-encoded), and in RDF it is a
    crm:E53_Place defined by its WKT, with the same IRI a place annotation targets."""
    import pyoxigraph as ox
    from jsonschema import Draft202012Validator
    from referencing import Registry, Resource

    from echoes_lab.knowledge.rdf import jsonld_quads

    schemas = REAL.parent / "linked-art" / "schema"
    registry, place_schema = Registry(), None
    for f in schemas.glob("*.json"):
        doc = json.loads(f.read_text())
        registry = registry.with_resource(doc["$id"], Resource.from_contents(doc))
        place_schema = doc if f.stem == "place" else place_schema
    validator = Draft202012Validator(place_schema, registry=registry)
    for frame in (zurich, trafford, merimee):
        for doc in frame.sites.linked_art():
            errors = [e.message for e in validator.iter_errors(doc)]
            assert not errors, (doc["id"], errors[:2])
    gross = next(d for d in zurich.sites.linked_art() if d["_label"] == "Grossmünster")
    assert gross["id"] == "urn:echoes:site:Objekt%203545"
    assert gross["id"] == zurich.sites.place_target("Objekt 3545")["id"]
    assert {n["content"] for n in gross["identified_by"]} == {"Grossmünster", "Objekt 3545"}
    assert gross["referred_to_by"][0]["content"] == "designation: kantonal"
    point = shapely.from_wkt(gross["defined_by"])
    assert _metres(point.x, point.y, *_swisstopo_lv95_to_wgs84(2683490, 1247173)) < 1.0
    store = ox.Store()
    store.extend(jsonld_quads(gross, ox.NamedNode("https://example.org/sites")))
    rows = list(store.query(
        "SELECT ?wkt WHERE { GRAPH ?g { ?p a <http://www.cidoc-crm.org/cidoc-crm/E53_Place> ; "
        "<http://www.cidoc-crm.org/cidoc-crm/P168_place_is_defined_by> ?wkt } }"))
    assert [r["wkt"].value for r in rows] == [gross["defined_by"]]
