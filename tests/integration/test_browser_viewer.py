"""The commons viewer in a real browser (Playwright + Debian's chromium), real hub.

A curator opens a real IIIF manifest (Bodleian's handbill of Mr. Becket, from Mirador's fixtures,
``tests/data/real/iiif/mirador-v3-001.json``) in the commons viewer, draws a rectangle on its
canvas and writes a public comment; a conservator opens the same manifest, sees the comment on
the same canvas (and who wrote it: a person), replies and draws a polygon of their own. The
protocol container then lists the three, the regions with their ``FragmentSelector`` and
``SvgSelector`` in the canvas's coordinates. Neither user's lab is running.

Offline: the manifest's image is on Bodleian's image server, so the test serves the manifest on
loopback with its painting body pointing at a real public-domain photograph
(``tests/data/real/iiif/images/``) and no image service: the viewer opens a plain image, as it
does for a IIIF level-0 deployment. Every request the browser makes is recorded; all go to
loopback (any other is aborted and fails the test).
"""

from __future__ import annotations

import json
import re
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from harness import LOCAL_HOSTS, REPO, login, open_page, serve_files

pytestmark = [pytest.mark.integration, pytest.mark.browser]

IIIF = REPO / "tests" / "data" / "real" / "iiif"
ARTIFACTS = REPO / "test-artifacts"
CURATOR, CONSERVATOR = "viewcurator", "viewconserv"
#: what a person reads in the manifest (its canvas and size)
CANVAS = "https://iiif.bodleian.ox.ac.uk/iiif/canvas/9cca8fdd-4a61-4429-8ac1-f648764b4d6d.json"
CANVAS_W, CANVAS_H = 5776, 9125
IMAGE_W, IMAGE_H = 512, 600  # grace_hopper.jpg
MARKUP = '<img src="nothing.png" onerror="window.pwned = 1">'


@pytest.fixture(scope="module")
def iiif_server():
    """The real manifest (image made local) and the real image, on a loopback port, with the
    CORS header IIIF servers send."""
    original = (IIIF / "mirador-v3-001.json").read_bytes()
    manifest = json.loads(original)
    image = (IIIF / "images" / "grace_hopper.jpg").read_bytes()

    files: dict[str, tuple[bytes, str]] = {}
    with serve_files(files) as base:
        body = manifest["items"][0]["items"][0]["items"][0]["body"]
        assert body["id"].startswith("https://iiif.bodleian.ox.ac.uk/")  # what is replaced
        body["id"] = f"{base}/grace_hopper.jpg"
        del body["service"]
        files.update({"/manifest.json": (json.dumps(manifest).encode(), "application/ld+json"),
                      "/original.json": (original, "application/ld+json"),
                      "/grace_hopper.jpg": (image, "image/jpeg")})
        yield f"{base}/manifest.json"


def _open(browser, hub, user: str, url: str, requests_seen: list, outside: list, errors: list):
    page = open_page(browser, hub, user, viewport={"width": 1400, "height": 1000},
                     seen=requests_seen, outside=outside, errors=errors)
    page.goto(url)
    page.wait_for_function("document.getElementById('viewer-status').textContent"
                           f".includes('{IMAGE_W} × {IMAGE_H} px')", timeout=60_000)
    return page.context, page


def _box(page):
    box = page.locator("#osd").bounding_box()
    return box["x"], box["y"], box["width"], box["height"]


def test_two_people_annotate_and_reply_on_a_real_manifest_offline(hub, browser, iiif_server):
    ARTIFACTS.mkdir(exist_ok=True)
    for user in (CURATOR, CONSERVATOR):
        hub.create_user(user)
    seen: list[str] = []
    outside: list[str] = []
    errors: list[str] = []
    url = f"{hub.url}/services/commons/viewer?manifest={iiif_server}"

    # the curator draws a rectangle and writes a public comment, CC0
    ctx, page = _open(browser, hub, CURATOR, url, seen, outside, errors)
    assert page.input_value("#new-licence") == "https://creativecommons.org/licenses/by/4.0/"
    assert page.locator("#canvas-select option").inner_text() == "Whole Page"
    page.click("#tool-rect")
    x, y, w, h = _box(page)
    page.mouse.move(x + w * 0.40, y + h * 0.30)
    page.mouse.down()
    page.mouse.move(x + w * 0.50, y + h * 0.45, steps=8)
    page.mouse.up()
    page.wait_for_selector("#new-annotation:not([hidden])", timeout=30_000)
    page.fill("#new-text", "The sitter's hat band: gold braid of a Commodore")
    page.select_option("#new-visibility", "public")
    page.select_option("#new-licence", "http://creativecommons.org/publicdomain/zero/1.0/")
    page.click("#new-save")
    page.wait_for_selector("#anno-list .annotation:has-text('gold braid')", timeout=30_000)
    page.wait_for_selector(".a9s-annotation", state="attached", timeout=30_000)  # drawn
    page.screenshot(path=str(ARTIFACTS / "commons-viewer-curator.png"), full_page=True)
    ctx.close()

    # a software actor's reading of the same canvas, with its confidence
    token = hub.api("POST", f"/users/{CURATOR}/tokens",
                    json={"scopes": ["access:services!service=commons"], "note": "ocr"})
    assert token.status_code == 201, token.text
    auth = {"Authorization": f"token {token.json()['token']}",
            "Content-Type": "application/ld+json"}
    commons = f"{hub.url}/services/commons/"
    actor = requests.post(f"{commons}actors/", headers=auth, timeout=30,
                          json={"name": "tesseract", "version": "5.3.0"})
    assert actor.status_code == 201, actor.text
    ocr = requests.post(f"{commons}annotations/", headers=auth, timeout=30, json={
        "type": "Annotation", "motivation": "transcribing", "confidence": 0.87,
        "generator": actor.json()["id"], "visibility": "public",
        "body": {"type": "TextualBody", "value": f"COMO HOPPER {MARKUP}"},
        "target": {"source": {"id": CANVAS, "type": "Canvas"},  # no conformsTo (optional
                   "selector": {"type": "FragmentSelector",  # in the model, §4.2.1)
                                "value": "xywh=pixel:900,8300,800,300"}}})
    assert ocr.status_code == 201, ocr.text

    # the conservator sees it on the same canvas, by a person; replies; draws a polygon
    ctx, page = _open(browser, hub, CONSERVATOR, url, seen, outside, errors)
    card = page.locator("#anno-list .annotation:has-text('gold braid')")
    card.wait_for(timeout=30_000)
    assert card.locator(".agent-person").count() == 1
    assert CURATOR in card.inner_text() and "CC0 1.0" in card.inner_text()
    machine = page.locator("#anno-list .annotation:has-text('COMO HOPPER')")
    assert machine.locator(".agent-software").inner_text() == "software: tesseract 5.3.0"
    assert machine.locator(".confidence").inner_text() == "confidence 0.87"
    assert machine.locator(".agent-person").count() == 0
    # a body is text: markup in it is shown, never run
    assert MARKUP in machine.locator(".anno-text").inner_text()
    assert page.evaluate("window.pwned") is None
    card.locator(".reply-text").fill("Agreed, and the braid has tarnished since")
    card.locator(".reply-send").click()
    card.locator(".reply:has-text('tarnished')").wait_for(timeout=30_000)
    card.locator(".agree").click()
    page.wait_for_function("[...document.querySelectorAll('#anno-list .annotation')]"
                           ".some(c => c.innerText.includes('agree 1'))", timeout=30_000)
    page.click("#tool-polygon")
    x, y, w, h = _box(page)
    corners = [(0.30, 0.60), (0.45, 0.62), (0.40, 0.75)]
    page.mouse.move(x + w * corners[0][0], y + h * corners[0][1])
    page.mouse.down()
    for cx, cy in corners[1:]:
        page.mouse.move(x + w * cx, y + h * cy, steps=6)
        page.mouse.up()
        page.mouse.down()
    page.mouse.up()
    page.mouse.dblclick(x + w * corners[-1][0], y + h * corners[-1][1])
    page.wait_for_selector("#new-annotation:not([hidden])", timeout=30_000)
    page.fill("#new-text", "Foxing on the lapel")
    page.select_option("#new-visibility", "public")
    page.click("#new-save")
    page.wait_for_selector("#anno-list .annotation:has-text('Foxing')", timeout=30_000)
    # the filters: by kind of agent, by confidence (people's claims have none), by text
    count = "document.getElementById('anno-count').textContent === '{}'"
    page.wait_for_function(count.format(3))
    page.select_option("#filter-kind", "software")
    page.wait_for_function(count.format(1))
    page.select_option("#filter-kind", "person")
    page.wait_for_function(count.format(2))
    page.select_option("#filter-kind", "")
    page.fill("#filter-confidence", "0.9")
    page.wait_for_function(count.format(2))
    page.fill("#filter-confidence", "")
    page.fill("#filter-text", "foxing")
    page.wait_for_function(count.format(1))
    page.fill("#filter-text", "")
    page.screenshot(path=str(ARTIFACTS / "commons-viewer-conservator.png"), full_page=True)
    ctx.close()

    # the protocol container lists both regions and the reply
    session = login(hub, CURATOR, hub.secrets["user_password"], "/services/commons/")
    resp = session.get(f"{hub.url}/services/commons/annotations/",
                       headers={"Accept": "application/ld+json"}, timeout=30)
    assert resp.status_code == 200
    items = resp.json()["first"]["items"]
    by_text = {}
    for a in items:
        body = a["body"] if isinstance(a["body"], list) else [a["body"]]
        by_text[body[0]["value"]] = a
    rect = by_text["The sitter's hat band: gold braid of a Commodore"]
    poly = by_text["Foxing on the lapel"]
    reply = by_text["Agreed, and the braid has tarnished since"]
    assert rect["creator"]["nickname"] == CURATOR and poly["creator"]["nickname"] == CONSERVATOR
    assert rect["rights"] == "http://creativecommons.org/publicdomain/zero/1.0/"
    assert poly["rights"] == "https://creativecommons.org/licenses/by/4.0/"
    assert rect["visibility"] == poly["visibility"] == reply["visibility"] == "public"
    for a in (rect, poly):
        assert a["target"]["source"]["id"] == CANVAS
        assert a["target"]["source"]["partOf"][0]["id"] == iiif_server
    assert rect["target"]["selector"]["type"] == "FragmentSelector"
    assert rect["target"]["selector"]["conformsTo"] == "http://www.w3.org/TR/media-frags/"
    # drawn on the 512 x 600 image, kept in the canvas's 5776 x 9125 coordinates
    rx, ry, rw, rh = map(float, rect["target"]["selector"]["value"]
                         .removeprefix("xywh=pixel:").split(","))
    assert rx > 0 and rx + rw <= CANVAS_W and ry > 0 and ry + rh <= CANVAS_H
    assert rw > IMAGE_W and rh > IMAGE_H  # scaled up: a box of ~1/10 of the view
    assert poly["target"]["selector"]["type"] == "SvgSelector"
    points = re.search(r"points=[\"']([^\"']+)", poly["target"]["selector"]["value"]).group(1)
    xy = [tuple(map(float, p.split(","))) for p in points.split()]
    assert len(xy) >= 3 and all(0 <= px <= CANVAS_W and 0 <= py <= CANVAS_H for px, py in xy)
    assert max(py for _, py in xy) > IMAGE_H  # canvas, not image, coordinates
    assert reply["motivation"] == "replying" and reply["target"] == rect["id"]
    assert reply["creator"]["nickname"] == CONSERVATOR
    # neither lab was started: the page needs only the commons
    for user in (CURATOR, CONSERVATOR):
        assert not hub.api("GET", f"/users/{user}").json()["servers"]

    # the real manifest as it is, its image on Bodleian's server: offline, the page says the
    # image cannot be loaded and still lists the canvas's annotations
    elsewhere: list[str] = []
    page = open_page(browser, hub, CURATOR, outside=elsewhere)
    page.goto(url.replace("/manifest.json", "/original.json"))
    page.wait_for_selector("#image-error:not([hidden])", timeout=60_000)
    assert ("https://iiif.bodleian.ox.ac.uk/iiif/image/9cca8fdd-4a61-4429-8ac1-f648764b4d6d"
            in page.inner_text("#image-error"))
    page.wait_for_selector("#anno-list .annotation:has-text('gold braid')", timeout=30_000)
    assert elsewhere and all(u.startswith("https://iiif.bodleian.ox.ac.uk/iiif/image/")
                             for u in elsewhere), elsewhere
    page.context.close()

    # nothing left the machine; the viewer's libraries came from the commons service
    assert not outside, f"requests for elsewhere: {outside}"
    hosts = {urlsplit(u).hostname for u in seen if u.startswith(("http:", "https:"))}
    assert hosts <= LOCAL_HOSTS, hosts
    assert any(u.endswith("/services/commons/viewer/lib/annotorious.min.js") for u in seen)
    assert any(u.endswith("/grace_hopper.jpg") for u in seen)
    assert not errors, f"JavaScript errors: {errors[:3]}"


def test_viewer_serves_only_its_listed_library_files(hub):
    hub.create_user("viewlibs")
    session = login(hub, "viewlibs", hub.secrets["user_password"], "/services/commons/")
    base = f"{hub.url}/services/commons/viewer/"
    ok = session.get(f"{base}lib/openseadragon.min.js", timeout=30)
    assert ok.status_code == 200 and "OpenSeadragon" in ok.text
    assert session.get(f"{base}lib/images/home_rest.png", timeout=30).status_code == 200
    for path in ("lib/openseadragon/package.json", "lib/..%2Fpackage.json",
                 "lib/images/..%2F..%2F..%2Fpackage.json", "static/..%2Fviewer.py"):
        assert session.get(f"{base}{path}", timeout=30).status_code == 404, path
    page = session.get(f"{base}?manifest=file:///etc/passwd", timeout=30)
    assert page.status_code in (400, 404)
    bad = session.get(f"{hub.url}/services/commons/viewer?manifest=file:///etc/passwd",
                      timeout=30)
    assert bad.status_code == 400 and "http(s) URL" in bad.text
    assert requests.get(f"{base}lib/openseadragon.min.js", timeout=30).status_code == 200


def test_the_commons_page_searches_and_links_into_the_viewer(hub, browser):
    user = "viewsearch"
    hub.create_user(user)
    token = hub.api("POST", f"/users/{user}/tokens",
                    json={"scopes": ["access:services!service=commons"], "note": "viewer"})
    assert token.status_code == 201, token.text
    headers = {"Authorization": f"token {token.json()['token']}",
               "Content-Type": "application/ld+json"}
    manifest = "https://iiif.bodleian.ox.ac.uk/iiif/manifest/9cca8fdd-4a61-4429-8ac1-f648764b4d6d.json"
    on_canvas = {"source": {"id": CANVAS, "type": "Canvas",
                            "partOf": [{"id": manifest, "type": "Manifest"}]},
                 "selector": {"type": "FragmentSelector", "value": "xywh=pixel:10,20,30,40"}}
    for text, target in (("Umbrella of the wild-born dwarf", on_canvas),
                         ("Handbill of 1787, printed in the Hay-market", "https://example.org/x")):
        r = requests.post(f"{hub.url}/services/commons/annotations/", headers=headers,
                          json={"type": "Annotation", "motivation": "commenting",
                                "body": {"type": "TextualBody", "value": text},
                                "target": target, "visibility": "public"}, timeout=30)
        assert r.status_code == 201, r.text
    outside: list[str] = []
    page = open_page(browser, hub, user, outside=outside)
    page.goto(f"{hub.url}/services/commons/")
    page.fill("#search-q", "umbrella")
    page.click("#commons-search button[type=submit]")
    page.wait_for_url("**/services/commons/?q=umbrella**", timeout=30_000)
    rows = page.locator("table tbody tr")
    assert rows.count() == 1 and "Umbrella of the wild-born dwarf" in rows.inner_text()
    assert page.input_value("#search-q") == "umbrella"
    href = rows.locator("a.viewer-link").get_attribute("href")
    query = parse_qs(urlsplit(href).query)
    assert urlsplit(href).path == "/services/commons/viewer"
    assert query == {"manifest": [manifest], "canvas": [CANVAS]}
    page.goto(f"{hub.url}/services/commons/?q=hay-market")
    assert page.locator("table tbody tr").count() == 1
    assert page.locator("a.viewer-link").count() == 0  # that target is no canvas of a manifest
    page.context.close()
    assert not outside, outside
