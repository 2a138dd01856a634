"""The WebGL map of sites (echoes_lab.sites.glmap) in a real browser, in a user's lab on a hub.

A user's notebook maps 200,000 sites (above ``WEBGL_ABOVE``: ``gdf.sites.map()`` gives the
WebGL layer) and is opened as a Voilà app in their own server, in Debian's chromium cut off
from the internet: every request to another host is aborted and fails the test. What is drawn
is read back from the WebGL canvas's pixels: all sites fill both halves of France's box, the
filter "west" leaves the eastern half empty and says how many sites it shows (the number of
sites west of 1.5° E in the data), the same with either renderer (WebGL's points, or the
script's image that a software WebGL such as this headless chromium's gets by default), and a
click on a drawn pixel opens the popup with that site's record, sent by the kernel.
"""

from __future__ import annotations

import nbformat
import numpy as np
import pytest
import requests

from harness import REPO, open_page, sign_in

pytestmark = [pytest.mark.integration, pytest.mark.browser]

ARTIFACTS = REPO / "test-artifacts"
USER = "glmapper"
N = 200_000
SEED = 7

NOTEBOOK = f"""
import numpy as np, geopandas as gpd, ipywidgets as w
import echoes_lab.sites  # the accessor gdf.sites
rng = np.random.default_rng({SEED})
n = {N}
lon, lat = rng.uniform(-4.5, 7.5, n), rng.uniform(43.0, 50.5, n)
gdf = gpd.GeoDataFrame({{"id": [f"G{{i}}" for i in range(n)],
                        "name": [f"site {{i}}" for i in range(n)],
                        "designation": "monument", "protection": "", "period": "",
                        "half": np.where(lon < 1.5, "west", "east")}},
                       geometry=gpd.points_from_xy(lon, lat), crs=4326)
m = gdf.sites.map(key="half")
m.layout.height = "500px"
half = w.Dropdown(options=["all", "west", "east"], value="all", description="Half")
half.observe(lambda change: m.show(None if change["new"] == "all" else [change["new"]]), "value")
renderer = w.Dropdown(options=["auto", "webgl", "cpu"], value="auto", description="Renderer")
renderer.observe(lambda change: setattr(m, "renderer", change["new"]), "value")
w.VBox([w.HTML(f"<p id='engine'>{{type(m).__name__}}</p>"), half, renderer, m])
"""

# painted pixels of the points' canvas (WebGL, or the script's image on a software WebGL) left
# and right of its middle column (±margin), and one painted pixel left of it, in the map's CSS
# pixels (the canvas reaches 25 % beyond the view)
READ_BACK = """([margin, shift]) => {
    const el = document.querySelector('.echoes-glmap');
    const cpu = el.dataset.renderer === 'cpu';
    const canvas = el.querySelector(cpu ? 'canvas.echoes-glmap-cpu' : 'canvas.echoes-glmap-webgl');
    const w = canvas.width, h = canvas.height;
    let px = new Uint8Array(4 * w * h);
    if (cpu) px = canvas.getContext('2d').getImageData(0, 0, w, h).data;
    else {
        const gl = canvas.getContext('webgl2');
        gl.readPixels(0, 0, w, h, gl.RGBA, gl.UNSIGNED_BYTE, px);
    }
    let left = 0, right = 0, pick = null;
    const dpr = window.devicePixelRatio || 1, mid = w / 2 + shift * dpr;
    const stageLeft = parseFloat(canvas.parentElement.style.left);
    const stageTop = parseFloat(canvas.parentElement.style.top);
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
        if (!px[4 * (y * w + x) + 3]) continue;
        if (x < mid - margin) {
            left++;
            const cx = x / dpr + stageLeft, cy = (cpu ? y : h - 1 - y) / dpr + stageTop;
            // a pixel inside the view, near the middle of the western half
            if (!pick && cx > el.clientWidth * 0.3 && cy > el.clientHeight * 0.4)
                pick = [cx, cy];
        } else if (x > mid + margin) right++;
    }
    return {left, right, pick, renderer: el.dataset.renderer};
}"""


def test_webgl_map_draws_filters_and_pops_up_200k_sites_offline(hub, browser):
    rng = np.random.default_rng(SEED)
    lon, _lat = rng.uniform(-4.5, 7.5, N), rng.uniform(43.0, 50.5, N)
    west = int((lon < 1.5).sum())
    ARTIFACTS.mkdir(exist_ok=True)
    hub.create_user(USER)
    hub.start_server(USER)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(NOTEBOOK)])
    nb.metadata["kernelspec"] = {"name": "echoes", "display_name": "ECHOES Lab (Python 3)",
                                 "language": "python"}
    r = requests.put(f"{hub.url}/user/{USER}/api/contents/glmap.ipynb",
                     json={"type": "notebook", "format": "json", "content": nb},
                     headers={"Authorization": f"token {hub.token}"}, timeout=60)
    assert r.status_code in (200, 201), r.text

    requests_seen: list[str] = []
    outside: list[str] = []
    errors: list[str] = []
    page = open_page(browser, viewport={"width": 1100, "height": 800}, seen=requests_seen,
                     outside=outside, errors=errors)
    try:
        sign_in(page, hub, USER, "/hub/home")
        page.wait_for_url("**/hub/home", timeout=60_000)
        page.goto(f"{hub.url}/user/{USER}/voila/render/glmap.ipynb")
        # every site drawn: the widget says so once the frame with them is on screen
        page.wait_for_selector(f".echoes-glmap[data-shown='{N}']", state="attached",
                               timeout=240_000)
        assert page.inner_text("#engine") == "PointsMap"
        before = page.evaluate(READ_BACK, [12, 0])
        # the sites are uniform over the box: both halves are covered by thousands of pixels
        assert before["left"] > 10_000 and before["right"] > 10_000, before

        page.locator(".widget-dropdown:has(label:text-is('Half')) select").select_option("west")
        page.wait_for_selector(f".echoes-glmap[data-shown='{west}']", state="attached",
                               timeout=60_000)
        after = page.evaluate(READ_BACK, [12, 0])
        assert after["right"] == 0, after
        assert after["left"] > 0.8 * before["left"], (before, after)
        # a drag of 150 px to the right: drawn again where the sites now are, the western
        # half's edge 150 px further right
        box = page.locator(".echoes-glmap").bounding_box()
        frames = page.get_attribute(".echoes-glmap", "data-frames")
        page.mouse.move(box["x"] + 300, box["y"] + 250)
        page.mouse.down()
        for step in range(1, 16):
            page.mouse.move(box["x"] + 300 + 10 * step, box["y"] + 250)
        page.mouse.up()
        page.wait_for_function(
            f"document.querySelector('.echoes-glmap').dataset.frames !== '{frames}'")
        moved = page.evaluate(READ_BACK, [12, 150])
        assert moved["right"] == 0 and moved["left"] > 0.8 * before["left"], moved
        between = page.evaluate(READ_BACK, [12, 0])["right"]
        assert between > 0, "nothing drawn in the 150 px the sites moved into"
        # either renderer draws the same: WebGL's points, or the script's image (chosen by
        # default on a software WebGL such as this headless chromium's)
        for renderer in ("webgl", "cpu"):
            page.locator(".widget-dropdown:has(label:text-is('Renderer')) select").select_option(
                renderer)
            page.wait_for_selector(f".echoes-glmap[data-renderer='{renderer}']",
                                   state="attached", timeout=60_000)
            after = page.evaluate(READ_BACK, [12, 150])
            assert after["renderer"] == renderer
            assert after["right"] == 0 and after["left"] > 10_000, after
        assert after["pick"], after

        # a click on a drawn site: the kernel sends its record; it is a western site
        page.mouse.click(box["x"] + after["pick"][0], box["y"] + after["pick"][1])
        page.wait_for_selector(".echoes-glmap-popup:not([hidden])", timeout=60_000)
        text = page.inner_text(".echoes-glmap-popup-content")
        assert "half: west" in text, text
        index = int(text.split("name: site ")[1].split()[0])
        assert lon[index] < 1.5
        assert f"id: G{index}" in text
        page.screenshot(path=str(ARTIFACTS / "sites-webgl.png"))
        assert not errors, f"JavaScript errors: {errors[:3]}"
    finally:
        page.close()
    assert len(requests_seen) > 20
    assert not outside, f"requests for the internet: {outside}"
