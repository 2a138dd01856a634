"""The WebGL map of sites (echoes_lab.sites.glmap), the kernel's side: what travels to the
browser as binary buffers, filters, popups, bad input. Drawn in a browser by
tests/integration/test_browser_sites_webgl.py."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

import echoes_lab.sites as places
from echoes_lab.errors import EchoesError
from echoes_lab.sites.glmap import PointsMap


@pytest.fixture(scope="module")
def heritage():
    """UNESCO's World Heritage List 2019, UK, Ireland, Netherlands (shipped excerpt)."""
    table = places.example("world-heritage")
    table["country"] = [r["states_name_en"] for r in table["original"]]
    return table


def _lonlat(m) -> np.ndarray:
    return np.frombuffer(m.lonlat, dtype="float32").reshape(-1, 2)


def test_sites_travel_as_float32_lon_lat_and_one_byte_categories(heritage):
    m = heritage.sites.map(engine="webgl", key="country")
    assert isinstance(m, PointsMap)
    assert len(m.lonlat) == 8 * len(heritage) == 8 * 42
    # Stonehenge, Avebury and Associated Sites: 51.17888889 N, 1.82527778 W in the list
    i = int(np.flatnonzero(heritage["name"].str.startswith("Stonehenge"))[0])
    lon, lat = _lonlat(m)[i]
    assert lon == pytest.approx(-1.82527778, abs=1e-6)
    assert lat == pytest.approx(51.17888889, abs=1e-6)
    assert m.categories == ["Ireland", "Netherlands", "United Kingdom of Great Britain and "
                                                      "Northern Ireland"]
    keys = np.frombuffer(m.key, dtype="uint8")
    assert keys[i] == 2 and (keys == 0).sum() == 2  # Ireland: 2 sites in the 2019 list
    assert m.basemap["type"] == "FeatureCollection" and len(m.basemap["features"]) >= 30
    # the view fits the sites: north to the Heart of Neolithic Orkney (58.996 N in the list),
    # west to Sceilg Mhichíl (10.5 W)
    south, west, north, east = m.view
    assert north == pytest.approx(58.99605556) and west < -10


def test_a_filter_sends_category_numbers_or_one_byte_a_site(heritage):
    m = heritage.sites.map(engine="webgl", key="country")
    m.show(["Ireland"])
    assert m.shown_keys == [0]
    m.show(None)
    assert m.shown_keys is None
    m.select(heritage["name"].str.contains("Castle"))
    assert np.frombuffer(m.visible, dtype="uint8").sum() == heritage["name"].str.contains(
        "Castle").sum() > 0
    with pytest.raises(EchoesError, match=r"\['Atlantis'\] are not values of 'country'"):
        m.show(["Atlantis"])
    with pytest.raises(EchoesError, match="the mask has 3 values for 42 sites"):
        m.select([True, False, True])


def test_at_risk_sites_are_flagged_red(heritage):
    """Liverpool – Maritime Mercantile City was on the List of World Heritage in Danger in
    2019 (the list's ``danger`` column)."""
    danger = [str(r["danger"]) == "1" for r in heritage["original"]]
    condition = pd.DataFrame({"site_id": heritage["id"], "at_risk": danger})
    m = heritage.sites.map(engine="webgl", condition=condition)
    flags = np.frombuffer(m.flag, dtype="uint8")
    assert flags.sum() == sum(danger) >= 1
    assert heritage["name"][flags == 1].str.contains("Liverpool").any()


def test_a_click_gets_the_sites_record_escaped(heritage):
    m = heritage.sites.map(engine="webgl")
    i = int(np.flatnonzero(heritage["name"].str.startswith("Stonehenge"))[0])
    m.clicked = {"layer": "sites", "index": i, "click": 1}
    assert "<b>name</b>: Stonehenge, Avebury and Associated Sites" in m.popup["html"]
    assert m.popup["lat"] == pytest.approx(51.17888889, abs=1e-5)
    assert "original" not in m.popup["html"]
    odd = heritage.iloc[:1].copy()
    odd["name"] = "<script>alert(1)</script>"
    m2 = odd.sites.map(engine="webgl")
    m2.clicked = {"layer": "sites", "index": 0, "click": 1}
    assert "&lt;script&gt;" in m2.popup["html"] and "<script>" not in m2.popup["html"]


def test_annotations_hazards_and_tiles_reach_the_webgl_map(heritage):
    notes = gpd.GeoDataFrame(
        {"annotation": ["urn:a:1"], "text": ["cracks in the lintel"], "creator": ["ana"]},
        geometry=[shapely.Point(-1.8262, 51.1789)], crs=4326)
    zone = gpd.GeoDataFrame({"zone": ["high"]}, geometry=[shapely.box(-2, 51, -1.5, 51.5)],
                            crs=4326)
    m = heritage.sites.map(engine="webgl", annotations=notes, hazards=zone,
                           tiles="http://127.0.0.1:8080/{z}/{x}/{y}.png")
    assert m.tiles == "http://127.0.0.1:8080/{z}/{x}/{y}.png"
    assert m.hazards["features"][0]["properties"]["zone"] == "high"
    m.clicked = {"layer": "annotations", "index": 0, "click": 1}
    assert "cracks in the lintel" in m.popup["html"]


def test_large_inventories_get_the_webgl_map_small_ones_leaflet(heritage):
    n = places.WEBGL_ABOVE + 1
    rng = np.random.default_rng(3)
    many = gpd.GeoDataFrame(
        {"id": np.arange(n).astype(str), "name": "s", "designation": "", "protection": "",
         "period": ""},
        geometry=gpd.points_from_xy(rng.uniform(-4, 7, n), rng.uniform(43, 50, n)), crs=4326)
    assert isinstance(many.sites.map(basemap=many.iloc[:0]), PointsMap)
    assert not isinstance(heritage.sites.map(), PointsMap)  # the app's 42 sites: Leaflet
    assert not isinstance(many.iloc[:10].sites.map(engine="leaflet", basemap=many.iloc[:0]),
                          PointsMap)


def test_bad_map_arguments_say_what_to_do(heritage):
    with pytest.raises(EchoesError, match="engine 'deckgl' is not known"):
        heritage.sites.map(engine="deckgl")
    with pytest.raises(EchoesError, match="the map's key 'region' is not a column"):
        heritage.sites.map(engine="webgl", key="region")
    wide = heritage.iloc[[0] * 300].copy()
    wide["code"] = [f"c{i}" for i in range(300)]
    with pytest.raises(EchoesError, match="has 300 values; a map filters on at most 256"):
        wide.sites.map(engine="webgl", key="code")
    m = heritage.sites.map(engine="webgl")
    with pytest.raises(EchoesError, match="made without key="):
        m.show(["Ireland"])


def test_polygon_sites_are_drawn_at_a_point_inside():
    square = shapely.box(2.0, 48.0, 2.2, 48.2)
    sites = gpd.GeoDataFrame({"id": ["P"], "name": ["walled garden"], "designation": [""],
                              "protection": [""], "period": [""]}, geometry=[square], crs=4326)
    lon, lat = _lonlat(sites.sites.map(engine="webgl"))[0]
    assert square.contains(shapely.Point(lon, lat))


@pytest.mark.slow
def test_sites_at_risk_app_maps_a_large_inventory_with_webgl(tmp_path):
    """The *Sites at risk* app (notebooks/apps/sites-at-risk.ipynb, run as it is on the ECHOES
    kernel) given an inventory above WEBGL_ABOVE sites: the WebGL map, "only sites at risk" as
    its flag filter, a table of at most 1,000 rows and an ellipsis row."""
    import nbformat
    from nbclient import NotebookClient

    n = places.WEBGL_ABOVE + 1
    rng = np.random.default_rng(5)
    pd.DataFrame({"id": [f"B{i}" for i in range(n)], "name": [f"site {i}" for i in range(n)],
                  "latitude": rng.uniform(43, 50, n), "longitude": rng.uniform(-4, 7, n),
                  "danger": (np.arange(n) < 7).astype(int)}).to_csv(tmp_path / "big.csv",
                                                                     index=False)
    app = nbformat.read(Path(__file__).resolve().parents[1] / "notebooks" / "apps" /
                        "sites-at-risk.ipynb", as_version=4)
    params = next(c for c in app.cells if c.source.startswith("# Parameters"))
    params.source = f'inventory = "{tmp_path / "big.csv"}"\nsurveys_file = ""'
    app.cells.append(nbformat.v4.new_code_cell(
        "print(type(the_map).__name__, len(the_map), rows.value.count('<tr>'))\n"
        "only_risk.value = True\n"
        "print(the_map.only_flagged, shown.value, rows.value.count('<tr>'))"))
    NotebookClient(app, kernel_name="echoes", timeout=300,
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    printed = "".join(o.get("text", "") for o in app.cells[-1].outputs)
    assert printed.splitlines() == [
        f"PointsMap {n} 1001", "True <p id='sites-count'>7 sites shown, 7 at risk</p> 7"]
