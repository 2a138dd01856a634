"""Group moderators of the commons in a real browser (Playwright + Debian's chromium), real hub
(issue 29, item 4: "roles for moderators per group through hub roles/scopes").

The operator names the moderators in the settings (``[commons] moderators``: ``modgrpg`` by
``modm``, ``modgrph`` by ``modh``); the hub gives each a role carrying
``custom:commons-moderate!group=<group>``, and a browser's OAuth sign-in to the commons carries
it (``oauth_client_allowed_scopes``). ``modw``, a member of ``modgrpg``, posts a public
annotation. In Chromium, each person signs in through the hub's login form and opens the commons
viewer on a real IIIF manifest (Bodleian's handbill, from Mirador's fixtures,
``tests/data/real/iiif/mirador-v3-001.json``, served on loopback; its image stays unreachable
offline, which the viewer reports while still listing the annotations):

- ``modw`` also posts one for ``modgrpg`` only: ``modm``'s viewer lists it, ``modo``'s does not
  (the page's reads carry the sign-in and its XSRF token; without the token JupyterHub treats a
  script's GET as anonymous and the viewer listed public annotations only);

- ``modo`` (in no group, no role) has no hide control, and a hide request forged from its page
  (``fetch`` with its cookies and the page's XSRF token) is refused (403);
- ``modh`` (moderator of another group) has the control, but the commons refuses (403, shown on
  the page) and the annotation stays public;
- ``modm`` hides it with a reason through the page's control (the public no longer gets it) and
  shows it again with a reason;
- the public moderation log, opened by ``modo`` in its browser from the commons page's link (a
  page for browsers, ActivityStreams JSON-LD for software), has both entries with the reasons
  and ``modm``'s name, not the hidden body.
"""

from __future__ import annotations

import json

import pytest
import requests

from harness import REPO, offline, serve_files, sign_in, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.browser]

MANIFEST = REPO / "tests" / "data" / "real" / "iiif" / "mirador-v3-001.json"
#: what a person reads in the manifest: its one canvas
CANVAS = "https://iiif.bodleian.ox.ac.uk/iiif/canvas/9cca8fdd-4a61-4429-8ac1-f648764b4d6d.json"
GROUP, OTHER = "modgrpg", "modgrph"
MOD, WRITER, OUTSIDER, OTHER_MOD = "modm", "modw", "modo", "modh"
BODY = "Cheap pigments at pigments-spam.example, order now"
GROUP_BODY = "For the group: the varnish on the lower margin is recent"
OFF = {"gateway": {"enabled": False}, "workshops": {"enabled": False},
       "reports": {"enabled": False}, "projects": {"enabled": False},
       "knowledge": {"enabled": False}}


@pytest.fixture(scope="module")
def modhub(module_hubs):
    hub = module_hubs(**OFF, commons={"moderators": {GROUP: [MOD], OTHER: [OTHER_MOD]}})
    for name in (MOD, WRITER, OUTSIDER, OTHER_MOD):
        hub.create_user(name)
    for group, users in ((GROUP, [MOD, WRITER]), (OTHER, [OTHER_MOD])):
        r = hub.api("POST", f"/groups/{group}", json={"users": users})
        assert r.status_code in (201, 409), r.text
    wait_for(lambda: requests.get(f"{hub.url}/services/commons/annotations/",
                                  timeout=10).status_code == 200, 90, "the commons")
    return hub


@pytest.fixture(scope="module")
def manifest_url():
    """The real manifest on a loopback port, with the CORS header IIIF servers send."""
    body = MANIFEST.read_bytes()
    assert json.loads(body)["items"][0]["id"] == CANVAS

    with serve_files({"/manifest.json": (body, "application/ld+json")}) as base:
        yield f"{base}/manifest.json"


def _open(browser, hub, user: str, url: str, outside: list, errors: list):
    """``user`` signed in through the hub's login form (and the commons' OAuth), on the viewer,
    once the commons' annotations of the canvas are listed."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.on("pageerror", lambda exc: errors.append(f"{user}: {exc}"))
    offline(page, outside)
    sign_in(page, hub, user, "/hub/home")
    page.wait_for_url("**/hub/home**", timeout=60_000)
    page.goto(url)
    page.wait_for_selector(f"#anno-list .annotation:has-text('{BODY}')", timeout=60_000)
    return context, page


def _forged_hide(page, ann_id: str) -> dict:
    """A hide request made by the page's own script, with the user's cookies and XSRF token."""
    return page.evaluate("""async (id) => {
        const cfg = JSON.parse(document.getElementById("viewer-config").textContent);
        const r = await fetch(`${cfg.base}annotations/${id}/hidden`, {
            method: "PUT", credentials: "same-origin", body: JSON.stringify({reason: "mine"}),
            headers: {"Content-Type": "application/json", "X-XSRFToken": cfg.xsrf}});
        return {status: r.status, body: await r.json().catch(() => ({}))};
    }""", ann_id)


def test_a_group_moderator_hides_and_shows_again_in_the_browser(modhub, browser, manifest_url):
    hub = modhub
    commons = f"{hub.url}/services/commons/"
    token = hub.api("POST", f"/users/{WRITER}/tokens",
                    json={"scopes": ["access:services!service=commons"], "note": "modtest"})
    assert token.status_code == 201, token.text
    posted = requests.post(f"{commons}annotations/", timeout=30, headers={
        "Authorization": f"token {token.json()['token']}", "Content-Type": "application/ld+json"},
        json={"type": "Annotation", "motivation": "commenting", "visibility": "public",
              "body": {"type": "TextualBody", "value": BODY},
              "target": {"source": {"id": CANVAS, "type": "Canvas"},
                         "selector": {"type": "FragmentSelector",
                                      "value": "xywh=pixel:100,200,300,400"}}})
    assert posted.status_code == 201, posted.text
    iri = posted.json()["id"]
    # and one for the group only: its members' viewer lists it (the page's reads carry the
    # sign-in), the outsider's does not
    grouped = requests.post(f"{commons}annotations/", timeout=30, headers={
        "Authorization": f"token {token.json()['token']}", "Content-Type": "application/ld+json"},
        json={"type": "Annotation", "motivation": "commenting", "visibility": f"group:{GROUP}",
              "body": {"type": "TextualBody", "value": GROUP_BODY},
              "target": {"source": {"id": CANVAS, "type": "Canvas"},
                         "selector": {"type": "FragmentSelector",
                                      "value": "xywh=pixel:500,600,100,100"}}})
    assert grouped.status_code == 201, grouped.text
    ann_id = iri.rstrip("/").rsplit("/", 1)[1]
    card = f"#anno-list .annotation:has-text('{BODY}')"
    url = f"{hub.url}/services/commons/viewer?manifest={manifest_url}"
    outside: list[str] = []
    errors: list[str] = []

    # outside the group, no role: no control, and a forged request is refused
    octx, opage = _open(browser, hub, OUTSIDER, url, outside, errors)
    assert opage.locator(f"{card} button.hide").count() == 0
    assert opage.locator("#anno-list .annotation").count() == 1  # not the group's one
    forged = _forged_hide(opage, ann_id)
    assert forged["status"] == 403, forged
    assert "moderators" in forged["body"]["message"]

    # the moderator of another group: the control is there, the commons refuses
    hctx, hpage = _open(browser, hub, OTHER_MOD, url, outside, errors)
    hpage.fill(f"{card} .moderation-reason", "not ours to judge")
    hpage.click(f"{card} button.hide")
    hpage.wait_for_function("document.getElementById('viewer-status').textContent"
                            ".includes('not a member')", timeout=30_000)
    assert f"you moderate the annotations of {OTHER}" in hpage.inner_text("#viewer-status")
    assert hpage.locator(f"{card} .moderation-hidden").count() == 0
    hctx.close()
    assert requests.get(iri, timeout=30).status_code == 200

    # the group's moderator hides it with a reason, then shows it again with one
    mctx, mpage = _open(browser, hub, MOD, url, outside, errors)
    mpage.wait_for_selector(f"#anno-list .annotation:has-text('{GROUP_BODY}')", timeout=30_000)
    mpage.click(f"{card} button.hide")  # no reason: refused on the page, nothing sent
    mpage.wait_for_function("document.getElementById('viewer-status').textContent"
                            ".includes('write the reason first')", timeout=30_000)
    assert requests.get(iri, timeout=30).status_code == 200
    mpage.fill(f"{card} .moderation-reason", "advertising")
    mpage.click(f"{card} button.hide")
    mpage.wait_for_selector(f"{card} .moderation-hidden", timeout=30_000)
    assert mpage.inner_text(f"{card} .moderation-hidden").endswith(f"{MOD}: advertising")
    assert requests.get(iri, timeout=30).status_code == 404  # hidden from the public
    mpage.fill(f"{card} .moderation-reason", "the link was removed")
    mpage.click(f"{card} button.show-again")
    mpage.wait_for_selector(f"{card} button.hide", timeout=30_000)
    assert mpage.locator(f"{card} .moderation-hidden").count() == 0
    wait_for(lambda: requests.get(iri, timeout=30).status_code == 200, 30, "shown again")
    mctx.close()

    # the public moderation log, as the outsider's browser reads it
    # the public moderation log: the outsider follows the commons page's link to it
    opage.goto(commons)
    opage.click("#moderation-log")
    opage.wait_for_selector("#moderation-log .moderation-entry", timeout=30_000)
    rows = opage.locator(f"#moderation-log tr:has(a[href='{iri}'])")
    entries = [tuple(rows.nth(i).locator("td").nth(k).inner_text().strip() for k in (1, 2, 3))
               for i in range(rows.count())]
    assert entries == [("shown again", MOD, "the link was removed"),
                       ("hidden", MOD, "advertising")]
    page_text = opage.inner_text("body")
    assert BODY not in page_text and "pigments" not in page_text
    # the same entries as ActivityStreams JSON-LD for software (the Accept header decides)
    log = opage.evaluate("""async () => {
        const cfg = {xsrf: document.querySelector("meta[name=xsrf]")?.content};
        const r = await fetch("moderation", {credentials: "same-origin", headers: {
            Accept: "application/ld+json", "X-XSRFToken": cfg.xsrf || ""}});
        return {status: r.status, text: await r.text()};
    }""")
    assert log["status"] == 200, log
    entries = [(e["action"], e["by"], e["summary"])
               for e in json.loads(log["text"])["orderedItems"] if e["object"] == iri]
    assert entries == [("shown", MOD, "the link was removed"), ("hidden", MOD, "advertising")]
    assert BODY not in log["text"]
    # and the outsider, back on the viewer, sees it again, still without a control
    opage.goto(url)
    opage.wait_for_selector(card, timeout=60_000)
    assert opage.locator(f"{card} button.hide").count() == 0
    octx.close()

    assert not errors, errors
    # the only addresses off the machine are the manifest's image (Bodleian's image service)
    assert all(u.startswith("https://iiif.bodleian.ox.ac.uk/") for u in outside), outside
