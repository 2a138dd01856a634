"""Two people in one shared lab, live: Playwright drives two chromium contexts (alice and bob)
on the same notebook in alice's lab, shared with bob through JupyterHub's sharing API, with
jupyter-collaboration's real-time editing. Screenshots go to ``test-artifacts/``."""

from __future__ import annotations

import json
import time

import pytest

from harness import REPO, sign_in, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.browser]

ARTIFACTS = REPO / "test-artifacts"
NOTEBOOK = {"cells": [{"cell_type": "code", "execution_count": None, "id": "c1", "metadata": {},
                       "outputs": [], "source": "x = 1"}],
            "metadata": {"kernelspec": {"name": "echoes", "display_name": "ECHOES Lab (Python 3)",
                                        "language": "python"}},
            "nbformat": 4, "nbformat_minor": 5}


def open_notebook(page) -> None:
    page.wait_for_selector(".jp-Notebook .jp-Cell .cm-content", timeout=120_000)


def type_at_end(page, text: str) -> None:
    editor = page.locator(".jp-Notebook .jp-Cell .cm-content").first
    editor.click()
    page.keyboard.press("Control+End")
    page.keyboard.type(text)


def test_two_people_edit_one_notebook_live(hub_factory, browser):
    local = (REPO / "hub_config" / "local.toml").read_text()
    hub = hub_factory(**{section: {"enabled": False}  # only what sharing needs
                         for section in ("culler", "gateway", "reports", "workshops", "commons")
                         if f"[{section}]" in local})
    for user in ("alice", "bob"):
        hub.create_user(user)
    hub.start_server("alice")
    r = hub.server_get("alice", "/api/contents")  # warm-up; then the notebook, as alice's file
    assert r.status_code == 200
    import requests

    put = requests.put(f"{hub.url}/user/alice/api/contents/together.ipynb", timeout=30,
                       headers={"Authorization": f"token {hub.token}"},
                       json={"type": "notebook", "content": NOTEBOOK})
    assert put.status_code == 201, put.text
    share = hub.api("POST", "/shares/alice/", json={"user": "bob"})
    assert share.status_code == 200, share.text
    path = hub.state / "homes" / "alice" / "together.ipynb"
    lab = "/user/alice/lab/tree/together.ipynb"
    ARTIFACTS.mkdir(exist_ok=True)

    a_ctx, b_ctx = browser.new_context(), browser.new_context()
    alice, bob = a_ctx.new_page(), b_ctx.new_page()
    try:
        sign_in(alice, hub, "alice", lab)
        open_notebook(alice)
        sign_in(bob, hub, "bob", lab)
        # a shared server: bob confirms once on the hub's "Authorize access" page
        bob.wait_for_url("**/oauth2/authorize**", timeout=60_000)
        bob.click("form button[type=submit]")
        open_notebook(bob)

        type_at_end(bob, "  # bob was here")
        alice.wait_for_function(
            "() => document.querySelector('.jp-Notebook .jp-Cell .cm-content')"
            ".textContent.includes('bob was here')", timeout=30_000)
        type_at_end(alice, "\ny = 2  # alice too")
        bob.wait_for_function(
            "() => document.querySelector('.jp-Notebook').textContent.includes('alice too')",
            timeout=30_000)
        alice.keyboard.press("Control+s")

        def saved():
            try:
                source = "".join(json.loads(path.read_text())["cells"][0]["source"])
            except ValueError:  # caught in the middle of a save: look again
                return False
            return "bob was here" in source and "alice too" in source

        wait_for(saved, 30, "the notebook on disk with both edits")
        # the live-editing history lives in alice's own data folder, not in her files
        home = hub.state / "homes" / "alice"
        assert (home / ".local" / "share" / "jupyter" / "echoes_ystore.db").exists()
        assert not (home / ".jupyter_ystore.db").exists()
        # the lab's File menu has the Share page (hub_config/lab/overrides.json)
        alice.click(".lm-MenuBar-itemLabel:text-is('File')")
        assert alice.locator(".lm-Menu-itemLabel:text-is('Share this lab…')").count() == 1
    finally:
        alice.screenshot(path=str(ARTIFACTS / "collaboration-alice.png"))
        bob.screenshot(path=str(ARTIFACTS / "collaboration-bob.png"))
        a_ctx.close()
        b_ctx.close()
    # the room was open until now: the server still stops at once (an idle AnyIO worker thread
    # kept the process alive until the hub's SIGKILL, 30 s later; echoes_lab.hub.singleuser)
    started = time.monotonic()
    hub.api("DELETE", "/users/alice/server")
    wait_for(lambda: not hub.api("GET", "/users/alice").json()["servers"], 40,
             "alice's server to stop")
    assert time.monotonic() - started < 10, "the server waited for the hub's SIGKILL"
