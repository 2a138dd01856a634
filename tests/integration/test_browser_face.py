"""ECHOES Lab's face in a real browser (Playwright + Debian's chromium) against a real hub.

A user signs in on ECHOES Lab's sign-in page, finds the datasets and the apps on the home
page, opens the climate dashboard (a curated notebook rendered by Voilà in their own server,
as them), chooses a sensor and sees the risk table; then schedules a report from the reports
page's form and sees its next fire times. Screenshots go to ``test-artifacts/``.
"""

from __future__ import annotations

import pytest
import requests

from harness import REPO

pytestmark = [pytest.mark.integration, pytest.mark.browser]

ARTIFACTS = REPO / "test-artifacts"
SHARED = REPO.parent / "shared" / "datasets"
APP = "examples/apps/climate-dashboard.ipynb"



def test_home_lists_datasets_and_apps_and_the_climate_app_answers(hub_factory, browser):
    tate = (SHARED / "tate-collection" / "artworks.csv.gz").is_file()
    hub = hub_factory(data={"install_demo": True, "mirror": str(SHARED) if tate else "",
                            "fetch": ["tate-collection"] if tate else []})
    ARTIFACTS.mkdir(exist_ok=True)
    logo = requests.get(f"{hub.url}/hub/logo", timeout=10)
    assert logo.status_code == 200 and "ECHOES" in logo.text  # our SVG, not Jupyter's
    if tate:  # the hub installed the real Tate data into its shared folder, verified
        assert (hub.state / "shared" / "tate-collection" / "artworks.csv.gz").is_file()
    page = browser.new_page(viewport={"width": 1300, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        page.goto(f"{hub.url}/hub/login")
        assert "research workbench for cultural heritage" in page.inner_text("#login-main, body")
        assert page.get_attribute("#jupyterhub-logo img", "alt") == "ECHOES Lab"
        page.fill("#username_input", "curator")
        page.fill("#password_input", hub.secrets["user_password"])
        page.click("#login_submit")
        page.wait_for_url("**/user/curator/**", timeout=120_000)
        hub.remember_processes()

        page.goto(f"{hub.url}/hub/home")
        page.wait_for_selector("#echoes-datasets")
        listed = page.locator("tr.echoes-dataset").evaluate_all(
            "rows => rows.map(r => r.dataset.name)")
        assert {"tate-collection", "moma-collection", "hyperspectral-pigments",
                "conscir-climate", "demo-climate"} <= set(listed)
        apps = page.locator("a.echoes-app")
        assert apps.all_inner_texts() == ["Climate dashboard", "Collection explorer",
                                          "Oral history player", "Sites at risk"]
        href = apps.first.get_attribute("href")
        assert href == f"/user/curator/voila/render/{APP}"
        assert page.locator("#echoes-examples a").count() >= 4
        page.screenshot(path=str(ARTIFACTS / "face-home.png"), full_page=True)

        # the curator opens the app: Voilà runs the notebook in their own server, code hidden
        page.goto(f"{hub.url}{href}")
        sensor = page.locator(".widget-dropdown:has(label:text-is('Sensor')) select")
        sensor.wait_for(timeout=120_000)
        page.wait_for_function(
            """() => [...document.querySelectorAll('.widget-dropdown select')]
                     .some(s => [...s.options].some(o => o.value === 'L03 (Gallery 3)'))""",
            timeout=120_000)
        body = page.inner_text("body")  # the curator sees no code
        assert "Climate dashboard" in body and "import echoes_lab" not in body
        # (ipywidgets writes the labels with no-break spaces; the values are the plain labels)
        sensor.select_option(value="L03 (Gallery 3)")
        page.wait_for_selector("#risk-table", timeout=180_000)
        risk = page.inner_text("#risk-table")
        assert "Gallery 3" in risk and "TWPI (years)" in risk
        assert page.inner_text("#ashrae-class") in {"AA", "As", "A", "B", "C", "D"}
        assert page.locator("#ashrae-table").count() == 1
        page.wait_for_selector(".widget-output img", timeout=60_000)  # the plot
        page.screenshot(path=str(ARTIFACTS / "face-climate-app.png"), full_page=True)

        # a report scheduled from the form: notebook picked, a parameter typed, the cron
        # expression in words with its next fire times before saving, then the schedule listed
        page.goto(f"{hub.url}/services/reports/")
        report = "examples/02-climate-report.ipynb"
        page.wait_for_selector(f"#notebook option[value='{report}']", state="attached",
                               timeout=180_000)
        page.select_option("#notebook", value=report)
        page.wait_for_selector("#p-room", timeout=60_000)
        assert page.get_attribute("#p-room", "placeholder") == '"Gallery 3"'
        page.fill("#p-room", "Gallery 1")
        page.fill("#cron", "30 7 * * 1-5")
        page.wait_for_function(
            "document.getElementById('cron-preview').innerText.includes('07:30')",
            timeout=30_000)
        preview = page.inner_text("#cron-preview")
        assert "Monday through Friday" in preview
        assert page.locator("#cron-preview li").count() == 3  # the next three fire times
        page.click("#new-schedule button[type=submit]")
        page.wait_for_selector("#schedules :text('02-climate-report')", timeout=60_000)
        page.screenshot(path=str(ARTIFACTS / "face-reports.png"), full_page=True)
        assert not errors, f"JavaScript errors: {errors[:3]}"
    finally:
        page.screenshot(path=str(ARTIFACTS / "face-last.png"))
        page.close()
