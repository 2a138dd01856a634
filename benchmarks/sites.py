"""Monuments and sites: a spatial join of many sites with hazard polygons, and a map's layer.

1. **Join.** ``--sites`` random points over France (default 100,000) against ``--polygons``
   hazard polygons (default 2,000 random discs of 0.5-5 km, three classes) in Lambert-93:
   ``sites.hazards`` (``echoes_lab.sites.hazard_join``: transform the layer to WGS84, geopandas
   ``sjoin`` with an STRtree, classes per site) against a plain ``geopandas.sjoin`` of the same
   frames in the same run; both give the same pairs (checked).
2. **Map layer.** The time to build the sites layer of ``gdf.sites.map()`` (ipyleaflet GeoJSON)
   and the bytes of that layer's GeoJSON, which the widget sends to the browser, for
   ``--map-points`` (default 100,000 and 1,000,000 points).

Usage: ``.venv/bin/python benchmarks/sites.py [--sites 100000] [--polygons 2000]
[--map-points 100000 1000000]``. Wall time and CPU time of this process (the steadier figure
on a shared machine).
"""

from __future__ import annotations

import argparse
import json
import time

import geopandas as gpd
import numpy as np
import shapely

from echoes_lab.sites import hazard_join


def sites(n: int, seed: int = 1) -> gpd.GeoDataFrame:
    rng = np.random.default_rng(seed)
    lon, lat = rng.uniform(-4.5, 7.5, n), rng.uniform(43.0, 50.5, n)
    return gpd.GeoDataFrame({"id": [f"S{i}" for i in range(n)],
                             "name": [f"site {i}" for i in range(n)],
                             "designation": "monument", "protection": "classé MH", "period": "",
                             "geometry": gpd.points_from_xy(lon, lat)}, crs=4326)


def hazards(n: int, seed: int = 2) -> gpd.GeoDataFrame:
    rng = np.random.default_rng(seed)
    x, y = rng.uniform(150_000, 1_050_000, n), rng.uniform(6_150_000, 7_050_000, n)
    discs = shapely.buffer(shapely.points(x, y), rng.uniform(500, 5_000, n), quad_segs=8)
    return gpd.GeoDataFrame({"class": rng.choice(["high", "medium", "low"], n)},
                            geometry=discs, crs=2154)


def timed(fn):
    w, c = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - w, time.process_time() - c


def join(n_sites: int, n_polygons: int) -> None:
    s, h = sites(n_sites), hazards(n_polygons)
    ours, w1, c1 = timed(lambda: hazard_join(s, h, by="class"))
    stock, w2, c2 = timed(lambda: gpd.sjoin(s, h.to_crs(4326), how="left", predicate="intersects"))
    pairs = set(zip(ours["id"], ours["class"], strict=True))
    stock_pairs = set(zip(stock["id"], stock["class"].fillna("none"), strict=True))
    assert pairs == stock_pairs, "the two joins disagree"
    inside = int((ours["class"] != "none").sum())
    print(f"join {n_sites:,} sites x {n_polygons:,} polygons ({inside:,} site-polygon pairs):")
    print(f"  sites.hazards  wall {w1:6.2f} s  cpu {c1:6.2f} s")
    print(f"  geopandas.sjoin wall {w2:6.2f} s  cpu {c2:6.2f} s (stock, same frames)")
    print(f"  ratio stock/ours: wall {w2 / w1:.2f}x, cpu {c2 / c1:.2f}x")


def layer(n: int) -> None:
    import ipyleaflet

    s = sites(n)
    data, w1, c1 = timed(lambda: s.sites.geojson())
    _, w2, c2 = timed(lambda: ipyleaflet.GeoJSON(data=data, name="sites",
                                                 point_style={"radius": 4}))
    size = len(json.dumps(data, separators=(",", ":")).encode())
    print(f"map layer of {n:,} points: GeoJSON {w1:.2f} s wall ({c1:.2f} s cpu), widget "
          f"{w2:.2f} s wall, {size / 1e6:.1f} MB to send ({size / n:.0f} bytes a point)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sites", type=int, default=100_000)
    ap.add_argument("--polygons", type=int, default=2_000)
    ap.add_argument("--map-points", type=int, nargs="*", default=[100_000, 1_000_000])
    a = ap.parse_args()
    join(a.sites, a.polygons)
    for n in a.map_points:
        layer(n)


if __name__ == "__main__":
    main()
