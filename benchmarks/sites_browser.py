"""Monuments and sites in a real browser: how many points a map in the lab draws and pans.

Each case is a notebook rendered by a standalone Voilà server on a loopback port (as the *Sites
at risk* app is, in a user's server) and opened in Debian's chromium through Playwright, cut off
from the internet: a request to another host is aborted and listed.

* **ipyleaflet** (what ``gdf.sites.map()`` draws: a GeoJSON layer drawn by Leaflet) for
  ``--points`` random sites over France, as SVG (``canvas=False``, the stock way: an element
  per point) and on a canvas (``canvas=True``, the default above ``CANVAS_ABOVE`` sites): the
  time from opening the page to the points drawn, the frame times while the map is
  dragged 400 px in 40 steps (``requestAnimationFrame`` intervals, median and 95th
  percentile; 16.7 ms is 60 frames/s), and a filter's time: a dropdown that keeps about half
  the sites, from the choice to the new count shown (sent by the kernel after the layer's new
  data, as the *Sites at risk* app does).
* **webgl** (what ``gdf.sites.map()`` draws above ``WEBGL_ABOVE`` sites:
  :class:`echoes_lab.sites.glmap.PointsMap`, binary buffers and one WebGL2 draw call) for
  ``--webgl-points`` sites: drawn (the frame with every point presented), a click's popup (the
  record from the kernel), the same drag (the last frame moves; the time from releasing the
  mouse to the new frame is printed, and is the drag's worst frame) and the same filter, a
  category mask (the points are not sent again), from the choice to its frame presented, and
  how much of it the browser took.
* **lonboard** (deck.gl, GeoArrow/Parquet to the browser) for ``--lonboard-points``, when it is
  importable (``PYTHONPATH`` may name a folder it was installed into with ``pip --target``):
  whether it draws at all without the internet, and which requests it tried.

Usage: ``.venv/bin/python benchmarks/sites_browser.py [--points 1000 10000 100000]
[--kinds svg canvas] [--webgl-points 1000000] [--lonboard-points 1000000]``. Timings of a
shared 2-core machine: read them with the load average the script prints.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from urllib.parse import urlsplit

import nbformat
import requests

LOCAL = {"127.0.0.1", "localhost", "::1", "[::1]"}

SITES = """
import numpy as np, geopandas as gpd
rng = np.random.default_rng(1)
n = {n}
lon, lat = rng.uniform(-4.5, 7.5, n), rng.uniform(43.0, 50.5, n)
gdf = gpd.GeoDataFrame({{"id": [f"S{{i}}" for i in range(n)],
                        "name": [f"site {{i}}" for i in range(n)],
                        "designation": "monument", "protection": "", "period": ""}},
                       geometry=gpd.points_from_xy(lon, lat), crs=4326)
"""

IPYLEAFLET = SITES + """
import ipywidgets as w
import echoes_lab.sites  # the accessor
m = gdf.sites.map(basemap=gdf.iloc[:0], canvas={canvas}, engine="leaflet")
m.layout.height = "600px"
layer = next(x for x in m.layers if x.name == "sites")
half = w.Dropdown(options=["all", "west"], value="all", description="Sites")
shown = w.HTML(f"<span id='shown'>{{n}} shown</span>")


def pick(change):  # the filter: what the app does, the layer's data replaced
    sub = gdf if half.value == "all" else gdf[gdf.geometry.x < 1.5]
    data = sub.sites.geojson()
    for f in data["features"]:  # what the map's style reads (gdf.sites.map: at risk in red)
        f["properties"]["at_risk"] = False
    layer.data = data
    shown.value = f"<span id='shown'>{{len(sub)}} shown</span>"


half.observe(pick, "value")
w.VBox([half, shown, m])
"""

WEBGL = SITES + """
import ipywidgets as w
import echoes_lab.sites  # the accessor
gdf["half"] = np.where(gdf.geometry.x < 1.5, "west", "east")
m = gdf.sites.map(basemap=gdf.iloc[:0], engine="webgl", key="half")
m.renderer = "{renderer}"
m.layout.height = "600px"
half = w.Dropdown(options=["all", "west"], value="all", description="Sites")
shown = w.HTML(f"<span id='shown'>{{n}} shown</span>")


def pick(change):  # the filter: a category mask, the points are not sent again
    m.show(None if half.value == "all" else ["west"])
    shown.value = f"<span id='shown'>{{(gdf['half'] == 'west').sum()}} shown</span>"


half.observe(pick, "value")
w.VBox([half, shown, m])
"""

LONBOARD = SITES + """
from lonboard import Map, ScatterplotLayer
layer = ScatterplotLayer.from_geopandas(gdf[["id", "geometry"]], get_radius=300,
                                        get_fill_color=[31, 78, 121])
Map(layers=[layer], basemap=None)
"""


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _notebook(folder: Path, name: str, code: str) -> str:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(textwrap.dedent(code))])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nbformat.write(nb, folder / f"{name}.ipynb")
    return f"{name}.ipynb"


def _offline(outside: list[str]):
    """A route handler: a request for another host is aborted and listed."""
    def handle(route) -> None:
        url = route.request.url
        if url.startswith(("http", "ws")) and urlsplit(url).hostname not in LOCAL:
            outside.append(url)
            route.abort("internetdisconnected")
        else:
            route.continue_()
    return handle


def _frames(page, selector: str, counter: str | None = None) -> tuple[list[float], float | None]:
    """Drag the map 400 px in 40 steps and return the frame intervals seen meanwhile (ms) and,
    for a map that counts its draws in ``counter`` (an element's ``data-frames``: the WebGL
    layer, which moves its last frame during the drag and draws when it ends), the seconds
    from releasing the mouse to the new frame drawn."""
    box = page.locator(selector).first.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.evaluate("""() => { window.__frames = []; window.__rec = true;
        const tick = t => { if (!window.__rec) return; window.__frames.push(t);
                            requestAnimationFrame(tick); };
        requestAnimationFrame(tick); }""")
    page.mouse.move(x, y)
    page.mouse.down()
    for i in range(1, 41):
        page.mouse.move(x + 10 * i, y + 4 * i)
    before = counter and page.get_attribute(counter, "data-frames")
    page.mouse.up()
    up = time.perf_counter()
    settle = None
    if counter:
        page.wait_for_function(
            f"document.querySelector(\"{counter}\").dataset.frames !== '{before}'",
            timeout=120_000, polling="raf")
        settle = time.perf_counter() - up
    page.wait_for_timeout(300)  # the last frames of the drag
    stamps = page.evaluate("() => { window.__rec = false; return window.__frames; }")
    return [b - a for a, b in zip(stamps, stamps[1:], strict=False)], settle


def _filter(page, n: int) -> float:
    """Choose "west" (the sites west of 1.5° E): seconds until the page shows the new count,
    which the kernel sends after the layer's new data (widget messages arrive in order)."""
    start = time.perf_counter()
    page.locator(".widget-dropdown select").select_option("west")
    page.wait_for_function(
        f"document.querySelector('#shown') && !document.querySelector('#shown')"
        f".innerText.startsWith('{n} ')", timeout=120_000, polling=100)
    page.wait_for_timeout(0)
    return time.perf_counter() - start


def _click(page) -> float:
    """Click the middle of the WebGL map (a site there: they cover the view): seconds until
    the popup shows the record the kernel sent."""
    box = page.locator(".echoes-glmap-events").bounding_box()
    start = time.perf_counter()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.wait_for_selector(".echoes-glmap-popup:not([hidden])", timeout=60_000)
    return time.perf_counter() - start


def _summary(intervals: list[float]) -> str:
    if len(intervals) < 3:
        return "no frames"
    q = statistics.quantiles(intervals, n=20)
    return (f"{len(intervals)} frames, median {statistics.median(intervals):.0f} ms, "
            f"p95 {q[18]:.0f} ms, worst {max(intervals):.0f} ms")


def run(points: list[int], lonboard_points: list[int], timeout_s: float,
        kinds: tuple[str, ...] = ("svg", "canvas"), webgl_points: tuple[int, ...] = (),
        renderer: str = "auto") -> None:
    from playwright.sync_api import sync_playwright

    folder = Path(tempfile.mkdtemp(prefix="echoes-sites-browser-"))
    cases = [(kind, n, _notebook(folder, f"{kind}-{n}",
                                 IPYLEAFLET.format(n=n, canvas=kind == "canvas")))
             for kind in kinds for n in points]
    cases += [("webgl", n, _notebook(folder, f"webgl-{n}", WEBGL.format(n=n, renderer=renderer)))
              for n in webgl_points]
    has_lonboard = subprocess.run([sys.executable, "-c", "import lonboard"],
                                  capture_output=True).returncode == 0
    if has_lonboard:
        cases += [("lonboard", n, _notebook(folder, f"lonboard-{n}", LONBOARD.format(n=n)))
                  for n in lonboard_points]
    else:
        print("lonboard: not importable here, not measured")
    port = _port()
    # as in a hub's labs: the 'echoes' Voilà template (echoes_lab.hub.voila_assets), found on
    # JUPYTER_PATH, so that Voilà's own page asks nothing of the internet
    from echoes_lab.hub.voila_assets import TEMPLATE, install_voila_template

    install_voila_template(folder / "jupyter")
    env = {**os.environ, "JUPYTER_PATH": str(folder / "jupyter")}
    server = subprocess.Popen(
        [sys.executable, "-m", "voila", "--no-browser", f"--port={port}", "--Voila.ip=127.0.0.1",
         f"--template={TEMPLATE}", str(folder)],
        cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(f"{base}/voila/tree", timeout=2).status_code < 500:
                    break
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                msg = "voila did not start"
                raise SystemExit(msg)
            time.sleep(0.5)
        print(f"load average before: {os.getloadavg()[0]:.1f}")
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium",
                                        args=["--enable-unsafe-swiftshader"])
            for kind, n, nb in cases:
                page = browser.new_page(viewport={"width": 1200, "height": 900})
                outside: list[str] = []
                errors: list[str] = []

                page.route("**/*", _offline(outside))
                page.on("console", lambda m, errors=errors: m.type == "error" and errors.append(
                    m.text[:160]))
                start = time.perf_counter()
                try:
                    # Voilà streams the page while the kernel runs: wait for what is drawn
                    page.goto(f"{base}/voila/render/{nb}", wait_until="commit",
                              timeout=timeout_s * 1000)
                    if kind == "svg":
                        page.wait_for_function(
                            f"document.querySelectorAll('path.leaflet-interactive').length >= {n}",
                            timeout=timeout_s * 1000, polling=1000)
                        selector = ".leaflet-container"
                    elif kind == "webgl":  # drawn: the frame with every point is on screen
                        page.wait_for_selector(f".echoes-glmap[data-shown='{n}']",
                                               timeout=timeout_s * 1000)
                        selector = ".echoes-glmap-events"
                    elif kind == "canvas":  # one canvas, drawn when the layer arrives
                        page.wait_for_selector(".leaflet-overlay-pane canvas",
                                               timeout=timeout_s * 1000)
                        page.wait_for_timeout(500)
                        selector = ".leaflet-container"
                    else:
                        # deck.gl draws once lonboard's Parquet is decoded by parquet-wasm,
                        # whose .wasm lonboard fetches from a CDN (lonboard issue 457)
                        limit = time.monotonic() + timeout_s
                        while not page.locator("canvas").count():
                            if any("parquet" in u for u in outside):
                                msg = "parquet-wasm asked of the internet"
                                raise RuntimeError(msg)
                            if time.monotonic() > limit:
                                raise TimeoutError
                            page.wait_for_timeout(1000)
                        page.wait_for_timeout(5000)  # the data decoded and drawn
                        selector = "canvas"
                    drawn = time.perf_counter() - start
                    click = _click(page) if kind == "webgl" else None
                    frames, settle = _frames(page, selector,
                                             ".echoes-glmap" if kind == "webgl" else None)
                    print(f"{kind:10s} {n:>9,} points: drawn {drawn:6.1f} s after opening; "
                          f"pan: {_summary(frames)}")
                    if settle is not None:
                        renderer, script = (page.get_attribute(".echoes-glmap", a) for a in
                                            ("data-renderer", "data-draw-ms"))
                        print(f"           drawn again {settle:.2f} s after the drag ended "
                              f"(renderer: {renderer}; the script's draw {script} ms)")
                    if kind in ("svg", "canvas"):
                        print(f"           filter (about half the sites): {_filter(page, n):.1f} s")
                    if kind == "webgl":
                        start = time.perf_counter()
                        page.locator(".widget-dropdown select").select_option("west")
                        page.wait_for_function(
                            f"(e => e && e.dataset.shown !== '{n}')"
                            f"(document.querySelector('.echoes-glmap'))", timeout=120_000)
                        took = time.perf_counter() - start
                        page.wait_for_selector(".echoes-glmap[data-filter-ms]")
                        gl_ms = page.get_attribute(".echoes-glmap", "data-filter-ms")
                        kept = page.get_attribute(".echoes-glmap", "data-shown")
                        print(f"           filter (about half the sites): {took:.2f} s from the "
                              f"choice to the frame drawn ({int(kept):,} shown), {gl_ms} ms of "
                              f"it in the browser")
                        print(f"           click to popup (before the drag): {click:.2f} s")
                except Exception as exc:  # noqa: BLE001 - a case that cannot draw is a result
                    print(f"{kind:10s} {n:>9,} points: not drawn within {timeout_s:.0f} s "
                          f"({type(exc).__name__}: {str(exc)[:80]})")
                if outside:
                    print(f"           requests for the internet (aborted): {sorted(set(outside))}")
                if errors:
                    print(f"           console errors: {errors[:3]}")
                page.close()
            browser.close()
        print(f"load average after: {os.getloadavg()[0]:.1f}")
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, nargs="*", default=[1_000, 10_000, 100_000])
    ap.add_argument("--lonboard-points", type=int, nargs="*", default=[1_000_000])
    ap.add_argument("--timeout", type=float, default=240.0, help="seconds a case may take")
    ap.add_argument("--kinds", nargs="*", default=["svg", "canvas"], choices=["svg", "canvas"])
    ap.add_argument("--webgl-points", type=int, nargs="*", default=[1_000_000],
                    help="sites drawn by the WebGL layer (gdf.sites.map(engine='webgl'))")
    ap.add_argument("--renderer", default="auto", choices=["auto", "webgl", "cpu"],
                    help="the WebGL layer's renderer (auto: the script's image on a software "
                         "WebGL)")
    a = ap.parse_args()
    run(a.points, a.lonboard_points, a.timeout, tuple(a.kinds), tuple(a.webgl_points),
        a.renderer)


if __name__ == "__main__":
    main()
