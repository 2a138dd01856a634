"""End to end in a real browser: Playwright drives Debian's chromium against a real hub.

Sign in through the form, land in JupyterLab, open the curated ``01-collections`` notebook from
``~/examples``, run every cell, and see a figure and no error. A screenshot is kept in
``test-artifacts/`` whatever the outcome.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from harness import REPO

pytestmark = [pytest.mark.integration, pytest.mark.browser]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = REPO / "test-artifacts"
NOTEBOOK = "examples/01-collections.ipynb"
# without these, chromium tries to reach Google's services, which this closed network refuses
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage"]


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail("chromium is not installed: 'make test' installs it with apt-get")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        yield b
        b.close()


def test_sign_in_open_lab_and_run_collections_notebook(hub_factory, browser):
    hub = hub_factory(data={"install_demo": True})
    ARTIFACTS.mkdir(exist_ok=True)
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        page.goto(f"{hub.url}/hub/login")
        page.fill("#username_input", "hana")
        page.fill("#password_input", hub.secrets["user_password"])
        page.click("#login_submit")
        # the hub spawns the server and redirects into the lab
        page.wait_for_url("**/user/hana/lab**", timeout=120_000)
        page.wait_for_selector(".jp-LabShell", timeout=120_000)
        hub.remember_processes()

        page.goto(f"{hub.url}/user/hana/lab/tree/{NOTEBOOK}")
        page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=120_000)
        # the notebook's own kernel, the ECHOES one, starts without asking
        page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=120_000)
        # the notebook toolbar's "restart the kernel and run all cells", then confirm
        page.click("jp-button[data-command='notebook:restart-run-all']")
        page.click(".jp-Dialog .jp-mod-accept")
        page.wait_for_function(
            """() => {
                const prompts = [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')];
                const failed = document.querySelector(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']");
                return failed || (prompts.length > 0 && prompts.every(p => /\\[\\d+\\]/.test(p.textContent)));
            }""",
            timeout=300_000,
        )
        hub.remember_processes()
        page.wait_for_timeout(500)
        page.screenshot(path=str(ARTIFACTS / "browser-01-collections.png"), full_page=True)

        error_outputs = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
        tracebacks = [t for t in error_outputs.all_inner_texts() if "Error" in t or "Traceback" in t]
        assert not tracebacks, f"cell errors in the lab: {tracebacks[:2]}"
        assert page.locator(".jp-Dialog").count() == 0, "the lab shows an error dialog"
        assert page.locator(".jp-OutputArea-output img").count() >= 1, "no figure was drawn"
        assert not errors, f"JavaScript errors: {errors[:3]}"
    finally:
        page.screenshot(path=str(ARTIFACTS / "browser-last.png"))
        page.close()
