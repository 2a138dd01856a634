"""End to end in a real browser: Playwright drives Debian's chromium against a real hub.

Sign in through the form, land in JupyterLab, open the curated ``01-collections`` notebook from
``~/examples``, run every cell, and see a figure and no error. A screenshot is kept in
``test-artifacts/`` whatever the outcome.
"""

from __future__ import annotations

import pytest

from harness import REPO, sign_in, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.browser]

ARTIFACTS = REPO / "test-artifacts"
NOTEBOOK = "examples/01-collections.ipynb"



def test_sign_in_open_lab_and_run_collections_notebook(hub_factory, browser):
    hub = hub_factory(data={"install_demo": True})
    ARTIFACTS.mkdir(exist_ok=True)
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        sign_in(page, hub, "hana")
        # the hub spawns the server and redirects into the lab
        page.wait_for_url("**/user/hana/lab**", timeout=120_000)
        page.wait_for_selector(".jp-LabShell", timeout=120_000)
        hub.remember_processes()

        page.goto(f"{hub.url}/user/hana/lab/tree/{NOTEBOOK}")
        page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=120_000)
        # the notebook's own kernel, the ECHOES one, starts without asking; run only once the
        # lab is connected to it (a cell run before that opens the "Select Kernel" dialog)
        wait_for(lambda: any(s["path"].endswith(NOTEBOOK) and s["kernel"]["name"] == "echoes"
                             and s["kernel"]["execution_state"] == "idle"
                             for s in hub.server_get("hana", "/api/sessions").json()),
                 120, "the notebook's ECHOES kernel")
        page.wait_for_selector(".jp-StatusBar-Widget:has-text('ECHOES Lab (Python 3) | Idle')",
                               timeout=120_000)
        assert page.locator(".jp-Dialog").count() == 0, "the lab asks for a kernel"
        # run every cell as a user does: select the first, then Shift+Enter through them all
        # (the last Shift+Enter adds an empty cell below, as in any lab; it is not waited for)
        cells = page.locator(".jp-Notebook .jp-Cell")
        cells.first.locator(".jp-InputPrompt").click()
        for _ in range(cells.count()):
            page.keyboard.press("Shift+Enter")
        page.wait_for_function(
            """() => {
                const code = [...document.querySelectorAll('.jp-Notebook .jp-CodeCell')]
                    .filter(c => c.querySelector('.jp-InputArea-editor').textContent.trim() !== '');
                const failed = document.querySelector(
                    ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']");
                return failed || (code.length > 0 && code.every(
                    c => /\\[\\d+\\]/.test(c.querySelector('.jp-InputPrompt').textContent)));
            }""",
            timeout=300_000,
        )
        hub.remember_processes()
        page.wait_for_timeout(500)
        page.screenshot(path=str(ARTIFACTS / "browser-01-collections.png"), full_page=True)

        error_outputs = page.locator(
            ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']"
        )
        tracebacks = [
            t for t in error_outputs.all_inner_texts() if "Error" in t or "Traceback" in t
        ]
        assert not tracebacks, f"cell errors in the lab: {tracebacks[:2]}"
        assert page.locator(".jp-Dialog").count() == 0, "the lab shows an error dialog"
        assert page.locator(".jp-OutputArea-output img").count() >= 1, "no figure was drawn"
        assert not errors, f"JavaScript errors: {errors[:3]}"
    finally:
        page.screenshot(path=str(ARTIFACTS / "browser-last.png"))
        page.close()
