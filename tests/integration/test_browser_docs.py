"""The documentation as a reader reaches it, in a real browser against a real hub (issue 35).

A trainer signs in, follows "Read the guides" from the hub's home page to the trainer's guide
and comes back through the docs' own link to the hub; a service page links the guides too;
in the lab, the Help menu opens them. The pages are the HTML ``make docs`` built (built here
if absent). Screenshots go to ``test-artifacts/docs/``; ``make docs-screenshots`` copies them
into ``docs/_static/screenshots/``, which the guides and the README show.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from harness import REPO, sign_in

pytestmark = [pytest.mark.integration, pytest.mark.browser]

ARTIFACTS = REPO / "test-artifacts" / "docs"
HTML = REPO / "docs" / "_build" / "html"
#: unique to this module: Unix accounts are shared by every test hub of the machine
TRAINER = "docsguide14"


@pytest.fixture(scope="module")
def built_docs() -> Path:
    """The HTML the hub serves; ``make test`` built it (``make docs``) before the tests."""
    if not (HTML / "trainer" / "guide.html").is_file():
        subprocess.run([str(Path(sys.executable).parent / "sphinx-build"), "-b", "html", "-q",
                        "-d", str(HTML.parent / "doctrees"), str(REPO / "docs"), str(HTML)],
                       check=True, timeout=600)
    return HTML


def test_home_to_the_trainers_guide_and_back_and_the_labs_help_menu(hub, browser, built_docs):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1300, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        sign_in(page, hub, TRAINER)
        page.wait_for_url(f"**/user/{TRAINER}/**", timeout=120_000)
        hub.remember_processes()

        # the home page leads to the guides
        page.goto(f"{hub.url}/hub/home")
        page.wait_for_selector("#echoes-apps")
        page.screenshot(path=str(ARTIFACTS / "home.png"))
        assert page.get_attribute("#echoes-docs-link", "href") == "/hub/docs/"
        page.click("#echoes-docs")
        page.wait_for_url("**/hub/docs/")
        assert page.locator("h1").first.inner_text().strip() == "ECHOES Lab"

        # to the trainer's guide through the role pages, as a reader clicks
        page.get_by_role("link", name="The trainer", exact=True).first.click()
        page.wait_for_url("**/hub/docs/trainer/index.html")
        page.get_by_role("link", name="workshops from creation to archive").click()
        page.wait_for_url("**/hub/docs/trainer/guide.html")
        # (Sphinx writes the typographic apostrophe)
        assert page.locator("h1").first.inner_text().strip() == "The trainer\u2019s guide"
        guide = page.inner_text("main")
        assert "echoes-lab workshop" in guide  # the commands a trainer types are there
        page.screenshot(path=str(ARTIFACTS / "trainer-guide.png"))

        # and back to the hub from the guide
        page.locator(".echoes-back-to-hub:visible").click()
        page.wait_for_url("**/hub/home")
        page.wait_for_selector("#echoes-apps")

        # a service page links the guides in its navbar
        page.goto(f"{hub.url}/services/reports/")
        page.wait_for_selector("#echoes-docs-link", timeout=60_000)
        assert page.get_attribute("#echoes-docs-link", "href") == "/hub/docs/"

        # the lab's Help menu opens the guides in a new tab
        page.goto(f"{hub.url}/user/{TRAINER}/lab")
        help_menu = page.locator("#jp-MainMenu .lm-MenuBar-item", has_text="Help")
        help_menu.wait_for(timeout=120_000)
        help_menu.click()
        item = page.locator(".lm-Menu-item", has_text="ECHOES Lab documentation")
        item.wait_for()
        page.screenshot(path=str(ARTIFACTS / "lab-help-menu.png"))
        with page.expect_popup() as popup_info:
            item.click()
        docs = popup_info.value
        docs.wait_for_load_state()
        assert docs.url == f"{hub.url}/hub/docs/"
        assert docs.locator("h1").first.inner_text().strip() == "ECHOES Lab"
        docs.close()
        assert not errors, f"JavaScript errors: {errors[:3]}"
    finally:
        page.screenshot(path=str(ARTIFACTS / "last.png"))
        page.close()
