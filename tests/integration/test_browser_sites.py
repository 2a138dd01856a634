"""The Sites at risk app in a real browser (Playwright + Debian's chromium), real hub.

A user opens the app from the home page (Voilà, in their own server): the map shows the World
Heritage sites of the United Kingdom, Ireland and the Netherlands with the offline base map;
a click on a site opens its record; choosing a country changes what is drawn. The browser is
cut off from the internet: a request to any host but the machine's own is aborted and fails the
test, Voilà's own included (its Font Awesome and MathJax come from the user's server: the
``echoes`` Voilà template and bundled MathJax, echoes_lab.hub.voila_assets). The icons' font is
checked to load from the bundle. Screenshots go to ``test-artifacts/``.
"""

from __future__ import annotations

import pytest

from harness import REPO, open_app, open_page

pytestmark = [pytest.mark.integration, pytest.mark.browser]

ARTIFACTS = REPO / "test-artifacts"
APP = "examples/apps/sites-at-risk.ipynb"
USER = "sitesrisk"
# the sites layer's markers: ipyleaflet draws each point as an SVG circle with this stroke
SITE = "path.leaflet-interactive[stroke='#1f4e79'], path.leaflet-interactive[stroke='#b00']"


def test_app_draws_sites_with_popups_and_filters_without_leaving_the_machine(hub, browser):
    ARTIFACTS.mkdir(exist_ok=True)
    hub.create_user(USER)
    hub.start_server(USER)
    requests: list[str] = []
    outside: list[str] = []
    errors: list[str] = []
    page = open_page(browser, viewport={"width": 1200, "height": 1000}, seen=requests,
                     outside=outside, errors=errors)
    try:
        open_app(page, hub, USER, "Sites at risk", APP)
        page.wait_for_selector(".leaflet-container", timeout=180_000)
        page.wait_for_selector("#sites-count", timeout=180_000)
        assert "import echoes_lab" not in page.inner_text("body")
        # Voilà's page is told to use its bundled MathJax 3, not MathJax 2 from a URL
        config = page.evaluate(
            "JSON.parse(document.getElementById('jupyter-config-data').textContent)")
        assert config["fullMathjaxUrl"] is None and config["mathjaxConfig"] is None
        # Font Awesome (ipywidgets' icons) from Voilà's own bundle: the solid face loads
        loaded = page.evaluate("""async () => {
            const i = document.createElement('i');
            i.className = 'fa fa-search';
            document.body.appendChild(i);
            const faces = await document.fonts.load('900 16px "Font Awesome 5 Free"', '\\uf002');
            return [faces.length, getComputedStyle(i).fontFamily];
        }""")
        assert loaded[0] >= 1 and "Font Awesome 5 Free" in loaded[1], loaded
        # all 42 sites of the excerpt are drawn (one has no coordinates in the list: none)
        page.wait_for_function(f"document.querySelectorAll(\"{SITE}\").length === 42",
                               timeout=60_000)
        assert "42 sites shown" in page.inner_text("#sites-count")
        # the base map is drawn from data shipped with the library (countries as polygons)
        assert page.locator("path.leaflet-interactive[stroke='#888']").count() >= 30

        # a click on a site opens a popup with its record (from the kernel)
        page.locator(SITE).first.dispatch_event("click")
        page.wait_for_selector(".leaflet-popup-content", timeout=60_000)
        popup = page.inner_text(".leaflet-popup-content")
        assert "name" in popup and "designation" in popup
        names = set(page.inner_text("#sites-table").splitlines())
        assert any(line.startswith(popup.split("name: ")[1].splitlines()[0][:20])
                   for line in names), popup

        # a filter changes what is drawn: Ireland has 2 World Heritage sites in the 2019 list
        country = page.locator(".widget-dropdown:has(label:text-is('Country')) select")
        country.select_option(value="Ireland")
        page.wait_for_function(f"document.querySelectorAll(\"{SITE}\").length === 2",
                               timeout=60_000)
        page.wait_for_selector("#sites-count:has-text('2 sites shown')", timeout=30_000)
        page.wait_for_function(
            "!document.querySelector('#sites-table').innerText.includes('Stonehenge')",
            timeout=30_000)
        table = page.inner_text("#sites-table")
        assert "Sceilg Mhichíl" in table and "Stonehenge" not in table
        page.screenshot(path=str(ARTIFACTS / "sites-at-risk.png"), full_page=True)
        assert not errors, f"JavaScript errors: {errors[:3]}"
    finally:
        page.screenshot(path=str(ARTIFACTS / "sites-at-risk-last.png"))
        page.close()

    assert len(requests) > 20
    assert not outside, f"requests for the internet: {outside}"
