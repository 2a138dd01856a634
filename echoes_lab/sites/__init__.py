"""Monuments and sites: inventories on maps, their condition over time, the hazards they face.

>>> import echoes_lab
>>> sites = echoes_lab.read_sites("merimee.geojson", preset="merimee")   # doctest: +SKIP
>>> sites.sites.quality()                                                 # doctest: +SKIP
>>> sites.sites.condition(surveys)                                        # doctest: +SKIP
>>> sites.sites.hazards(flood_zones, by="zone")                           # doctest: +SKIP
>>> sites.sites.map()                                                     # doctest: +SKIP

:mod:`echoes_lab.sites.readers` reads the inventories (schema in its docstring);
:mod:`echoes_lab.sites.condition` holds state-of-conservation surveys, trends and the
"at risk" rule; this module the accessor ``gdf.sites``, the spatial join with hazard layers and
the map.

**Places in the commons.** An annotation about a place targets the place itself as a GeoJSON
Feature, the way IIIF's ``navPlace`` extension (IIIF Presentation 3 extension, 2022) places a
resource: ``{"type": "Feature", "id": <site URI>, "geometry": {...}, "properties": {"label":
...}}``, embedded as the annotation's target (W3C Web Annotation Data Model §3.2.3 allows any
resource as target) — :meth:`SitesAccessor.place_target` builds it. The commons lists such
annotations by the site's IRI, :func:`annotated_places` draws them, and the knowledge base
receives the place as a Linked Art Place (``crm:E53_Place`` with its geometry as WKT,
:mod:`echoes_lab.knowledge.rdf`).
"""

from __future__ import annotations

import html
import json
import os
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from echoes_lab.errors import DataError
from echoes_lab.sites.condition import FACTORS, GRADES, condition_table
from echoes_lab.sites.readers import COLUMNS, grid_reference, read_sites

__all__ = ["COLUMNS", "FACTORS", "GRADES", "SitesAccessor", "basemap", "condition_table",
           "annotated_places", "example", "grid_reference", "hazard_join", "read_sites",
           "WEBGL_ABOVE"]

DATA = Path(__file__).resolve().parents[1] / "data"

#: small inventories shipped with the library (excerpts of the real files in
#: tests/data/real/sites, whose SOURCES.md gives their origin), for notebooks and apps
EXAMPLES = {
    "world-heritage": dict(
        file="sites-world-heritage-gb-ie-nl-2019.csv", preset="whc",
        source="UNESCO World Heritage List (whc-sites-2019), UK, Ireland, Netherlands"),
    "merimee-toulouse": dict(
        file="sites-merimee-toulouse.csv", name="name", designation="designation",
        protection="protection", period="period", id=None,
        licence="Licence Ouverte / Open Licence 2.0 (Etalab)",
        source="Mérimée / Inventaire général du patrimoine culturel, Toulouse"),
}

#: where a deployment's own tile server is (a URL template); none by default: nothing leaves
#: the machine unless the operator sets it
TILES_ENV = "ECHOES_MAP_TILES"
#: above this many sites, maps draw on a canvas rather than as SVG elements (Leaflet's
#: ``preferCanvas``): measured in chromium (benchmarks/sites_browser.py), dragging an SVG map
#: of 10,000 points already stalls up to 1.9 s; a canvas holds no element per point
CANVAS_ABOVE = 5_000
#: above this many sites, maps are drawn by WebGL (:class:`echoes_lab.sites.glmap.PointsMap`:
#: binary buffers, one draw call) rather than by Leaflet: measured in chromium
#: (benchmarks/sites_browser.py), 100,000 sites take tens of seconds to arrive as GeoJSON
WEBGL_ABOVE = 50_000


def example(name: str) -> gpd.GeoDataFrame:
    """One of :data:`EXAMPLES`, read by :func:`read_sites`."""
    if name not in EXAMPLES:
        msg = f"no example inventory '{name}'; there are {', '.join(EXAMPLES)}"
        raise DataError(msg)
    spec = dict(EXAMPLES[name])
    return read_sites(DATA / spec.pop("file"), **spec)


def annotated_places(annotations: pd.DataFrame) -> gpd.GeoDataFrame:
    """The annotations of the commons whose target is a place (a GeoJSON Feature), as a
    GeoDataFrame to draw: ``annotation`` (its IRI), ``target``, ``text``, ``creator``, geometry.

    ``annotations`` is what :func:`echoes_lab.commons.annotations` returns.
    """
    from shapely.geometry import shape

    rows = []
    for _, a in annotations.iterrows():
        targets = a["annotation"].get("target")
        for t in targets if isinstance(targets, list) else [targets]:
            if isinstance(t, dict) and t.get("type") == "Feature" and t.get("geometry"):
                rows.append({"annotation": a["id"], "target": t.get("id"), "text": a["text"],
                             "creator": a["creator"], "geometry": shape(t["geometry"])})
    return gpd.GeoDataFrame(rows, columns=["annotation", "target", "text", "creator", "geometry"],
                            geometry="geometry", crs=4326)


def basemap() -> gpd.GeoDataFrame:
    """The countries of Europe from Natural Earth 1:110m (public domain), shipped as data, so a
    map has a background with no tile server (coordinates rounded to 0.001°)."""
    return gpd.read_file(DATA / "countries-europe-naturalearth.json")


def hazard_join(sites: gpd.GeoDataFrame, hazards: gpd.GeoDataFrame, by: str) -> pd.DataFrame:
    """Each site with the hazard class(es) of the polygons it intersects (geopandas ``sjoin``,
    an STRtree query); a site in no polygon gets class ``'none'``.

    Both layers are compared in WGS84; a hazard layer in another system is transformed first.
    """
    if by not in hazards.columns:
        names = ", ".join(map(str, hazards.columns))
        msg = f"hazard layer has no column '{by}'; columns are {names}"
        raise DataError(msg)
    if hazards.crs is None:
        msg = "hazard layer has no coordinate system; set it with .set_crs('EPSG:...')"
        raise DataError(msg)
    layer = hazards[[by, hazards.geometry.name]].to_crs(sites.crs)
    joined = gpd.sjoin(sites[["id", "name", sites.geometry.name]], layer, how="left",
                       predicate="intersects")
    joined[by] = joined[by].astype("string").fillna("none")
    return pd.DataFrame(joined.drop(columns=[sites.geometry.name, "index_right"]))


class SitesAccessor:
    """``gdf.sites``: what one does with a table of heritage places."""

    def __init__(self, obj):
        if "geometry" not in getattr(obj, "columns", ()) or "id" not in obj.columns:
            msg = "gdf.sites works on a table from echoes_lab.read_sites (columns id, geometry…)"
            raise AttributeError(msg)
        self._obj = obj

    def quality(self) -> pd.DataFrame:
        """What reading found and did: missing places, repaired or unrepaired geometries, a
        coordinate transformation less accurate than the best (one row each)."""
        rows = self._obj.attrs.get("quality", [])
        return pd.DataFrame(rows, columns=["row", "id", "issue", "detail"])

    def condition(self, surveys: pd.DataFrame) -> pd.DataFrame:
        """Per site: latest grade, trend and the "at risk" verdict with its reason
        (:func:`echoes_lab.sites.condition.condition_table`)."""
        table = condition_table(surveys)
        names = self._obj[["id", "name"]].rename(columns={"id": "site_id"})
        return names.merge(table, on="site_id", how="inner")

    def climate(self, ds, loggers: dict[str, list[str]], surveys: pd.DataFrame | None = None,
                **risk) -> pd.DataFrame:
        """Each site's own climate loggers through ``ds.climate.risk_table`` (one row per
        logger, with ``site_id`` and ``name``), next to the site's condition when ``surveys``
        are given (columns ``latest_grade``, ``trend``, ``at_risk``, ``why``).

        ``loggers`` maps a site's id to the names of its sensors in ``ds``; ``risk`` goes to
        :meth:`echoes_lab.climate.metrics.ClimateAccessor.risk_table` (``t_band``, ``rh_band``).
        """
        known = set(map(str, ds["sensor"].values))
        parts = []
        for site, sensors in loggers.items():
            missing = [s for s in sensors if s not in known]
            if missing:
                msg = (f"site {site}: logger(s) {missing} are not in the climate data; it has "
                       f"{', '.join(sorted(known))}")
                raise DataError(msg)
            table = ds.sel(sensor=list(sensors)).climate.risk_table(**risk)
            parts.append(table.rename_axis("sensor").reset_index().assign(site_id=site))
        out = pd.concat(parts, ignore_index=True)
        names = self._obj[["id", "name"]].rename(columns={"id": "site_id"})
        out = names.merge(out, on="site_id", how="inner")
        if surveys is not None:
            cond = condition_table(surveys)[["site_id", "latest_grade", "trend", "at_risk", "why"]]
            out = out.merge(cond, on="site_id", how="left")
        first = ["site_id", "name", "sensor"]
        return out[first + [c for c in out.columns if c not in first]]

    def hazards(self, hazards: gpd.GeoDataFrame, by: str) -> pd.DataFrame:
        """Sites per hazard class: ``class``, ``sites`` (count) and ``ids``."""
        joined = hazard_join(self._obj, hazards, by)
        table = joined.groupby(by).agg(sites=("id", "nunique"),
                                       ids=("id", lambda s: sorted(set(s))))
        return table.reset_index().sort_values("sites", ascending=False, ignore_index=True)

    def risk(self, hazards: gpd.GeoDataFrame, by: str, order) -> pd.DataFrame:
        """Each site with its most severe hazard class, ``order`` naming the classes most
        severe first (:func:`echoes_lab.sites.hazards.risk_table`; the EA flood-risk bands
        are :data:`echoes_lab.sites.hazards.ROFRS_BANDS`)."""
        from echoes_lab.sites.hazards import risk_table

        return risk_table(self._obj, hazards, by, order)

    def place_target(self, site_id: str, base: str = "urn:echoes:site:") -> dict:
        """The site as a GeoJSON Feature to embed as a Web Annotation target (navPlace style);
        its ``id`` is the register's id percent-encoded after ``base``."""
        from echoes_lab.knowledge.linkedart import site_iri

        hit = self._obj[self._obj["id"] == site_id]
        if hit.empty:
            msg = f"no site with id '{site_id}'"
            raise DataError(msg)
        row = hit.iloc[0]
        return {"id": site_iri(site_id, base), "type": "Feature",
                "properties": {"label": {"none": [str(row["name"])]}},
                "geometry": json.loads(gpd.GeoSeries([row.geometry]).to_json())["features"][0][
                    "geometry"]}

    def linked_art(self, base: str = "urn:echoes:site:") -> list[dict]:
        """Every site as a Linked Art ``Place`` document (``crm:E53_Place`` with its geometry
        as WKT), for the knowledge base: :func:`echoes_lab.knowledge.linkedart.site_to_linked_art`.
        """
        from echoes_lab.knowledge.linkedart import site_to_linked_art

        return [site_to_linked_art(row, base) for _, row in self._obj.iterrows()]

    def geojson(self, columns=("id", "name", "designation", "protection", "period")) -> dict:
        """The sites as a GeoJSON FeatureCollection with the record's fields as properties."""
        frame = self._obj[[*columns, self._obj.geometry.name]].copy()
        for c in columns:
            frame[c] = frame[c].astype(object).where(frame[c].notna(), None)
        geoms = frame.geometry.array
        if len(frame) and bool((frame.geometry.geom_type == "Point").all()):
            # points (most inventories): built from coordinate arrays, ~10x faster than to_json
            xs, ys = shapely.get_x(np.asarray(geoms)), shapely.get_y(np.asarray(geoms))
            props = frame[list(columns)].to_dict("records")
            return {"type": "FeatureCollection", "features": [
                {"type": "Feature", "properties": p,
                 "geometry": {"type": "Point", "coordinates": [float(x), float(y)]}}
                for p, x, y in zip(props, xs, ys, strict=True)]}
        return json.loads(frame.to_json(drop_id=True))

    def map(self, *, condition: pd.DataFrame | None = None,
            basemap: gpd.GeoDataFrame | None = None, tiles: str | None = None,
            hazards: gpd.GeoDataFrame | None = None,
            annotations: gpd.GeoDataFrame | None = None, canvas: bool | None = None,
            engine: str | None = None, key: str | None = None):
        """An ipyleaflet map that needs no internet: no tile layer unless ``tiles`` (a URL
        template of the deployment's own tile server, or the environment variable
        ``ECHOES_MAP_TILES``) is given; ``basemap`` (by default :func:`basemap`, Europe's
        countries shipped as data) is drawn as a vector layer. A click on a site opens a popup
        with its record; ``condition`` colours sites by "at risk"; ``hazards`` adds a layer;
        ``annotations`` (from :func:`annotated_places`) draws the places annotated in the
        commons, each with its text. ``canvas`` draws every layer on one canvas instead of an
        SVG element per feature; by default when there are more than :data:`CANVAS_ABOVE`
        sites. Either way the sites travel to the browser as GeoJSON (about 220 bytes a
        point), so a map of hundreds of thousands of sites is slow to arrive.

        ``engine="webgl"`` (the default above :data:`WEBGL_ABOVE` sites) draws the sites with
        WebGL instead, sent as binary buffers (:class:`echoes_lab.sites.glmap.PointsMap`: a
        million sites pan and filter smoothly); ``key`` names a column (at most 256 values)
        whose values its :meth:`~echoes_lab.sites.glmap.PointsMap.show` filters on. Polygon
        sites are drawn there at a point inside each.
        """
        tiles = tiles if tiles is not None else os.environ.get(TILES_ENV) or None
        basemap = _basemap() if basemap is None else basemap
        obj = self._obj[self._obj.geometry.notna() & ~self._obj.geometry.is_empty]
        if engine not in (None, "webgl", "leaflet"):
            msg = f"engine '{engine}' is not known: use 'webgl' or 'leaflet'"
            raise DataError(msg)
        if engine == "webgl" or (engine is None and len(obj) > WEBGL_ABOVE):
            return self._webgl_map(obj, condition=condition, basemap=basemap, tiles=tiles,
                                   hazards=hazards, annotations=annotations, key=key)
        import ipyleaflet

        minx, miny, maxx, maxy = obj.total_bounds if len(obj) else (-10, 35, 30, 60)
        canvas = len(obj) > CANVAS_ABOVE if canvas is None else canvas
        m = ipyleaflet.Map(center=((miny + maxy) / 2, (minx + maxx) / 2), zoom=5,
                           scroll_wheel_zoom=True, attribution_control=False,
                           prefer_canvas=bool(canvas))
        m.clear_layers()  # the default OpenStreetMap tiles would need the internet
        if tiles:
            m.add(ipyleaflet.TileLayer(url=tiles, name="tiles", base=True))
        if len(basemap):
            m.add(ipyleaflet.GeoJSON(
                data=json.loads(basemap.to_crs(4326).to_json()), name="basemap",
                style={"color": "#888", "weight": 1, "fillOpacity": 0.05}))
        if hazards is not None:
            m.add(ipyleaflet.GeoJSON(
                data=json.loads(hazards.to_crs(4326).to_json()), name="hazards",
                style={"color": "#c33", "weight": 1, "fillOpacity": 0.2}))
        data = obj.sites.geojson()
        risky = set()
        if condition is not None:
            risky = set(condition.loc[condition["at_risk"], "site_id"])
        for feature in data["features"]:
            feature["properties"]["at_risk"] = feature["properties"]["id"] in risky
        layer = ipyleaflet.GeoJSON(
            data=data, name="sites",
            point_style={"radius": 5, "color": "#1f4e79", "fillOpacity": 0.8, "weight": 1},
            style_callback=lambda f: {"color": "#b00" if f["properties"]["at_risk"] else "#1f4e79"})
        popup = ipyleaflet.Popup(close_button=True, auto_close=True)

        def show(event=None, feature=None, **kwargs):
            props = feature["properties"]
            coords = feature["geometry"]["coordinates"]
            while isinstance(coords[0], list):
                coords = coords[0]
            from ipywidgets import HTML

            shown = {k: v for k, v in props.items() if v is not None and k != "style"}
            popup.child = HTML("<br>".join(f"<b>{html.escape(k)}</b>: {html.escape(str(v))}"
                                           for k, v in shown.items()))
            popup.location = (coords[1], coords[0])
            if popup not in m.layers:
                m.add(popup)
            popup.open_popup(popup.location)

        layer.on_click(show)
        m.add(layer)
        if annotations is not None and len(annotations):
            notes = json.loads(annotations[["annotation", "text", "creator", "geometry"]]
                               .to_json(drop_id=True))
            note_layer = ipyleaflet.GeoJSON(
                data=notes, name="annotations",
                point_style={"radius": 8, "color": "#d98c00", "fillOpacity": 0.3, "weight": 2})
            note_layer.on_click(show)
            m.add(note_layer)
        m.add(ipyleaflet.LayersControl(position="topright"))
        return m

    def _webgl_map(self, obj, *, condition, basemap, tiles, hazards, annotations, key):
        from echoes_lab.sites.glmap import PointsMap

        minx, miny, maxx, maxy = obj.total_bounds if len(obj) else (-10, 35, 30, 60)
        flagged = None
        if condition is not None:
            flagged = obj["id"].isin(set(condition.loc[condition["at_risk"], "site_id"]))
        notes = {}
        if annotations is not None and len(annotations):
            notes = json.loads(annotations[["annotation", "text", "creator", "geometry"]]
                               .to_crs(4326).to_json(drop_id=True))
        m = PointsMap(obj, key=key, flagged=flagged, tiles=tiles or "",
                      center=((miny + maxy) / 2, (minx + maxx) / 2), zoom=5,
                      basemap=json.loads(basemap.to_crs(4326).to_json()) if len(basemap) else {},
                      hazards=json.loads(hazards.to_crs(4326).to_json())
                      if hazards is not None else {},
                      annotations=notes)
        if len(obj):
            m.fit((minx, miny, maxx, maxy))
        return m


_basemap = basemap  # SitesAccessor.map's argument of the same name hides the function
