"""Issue 26, fourth round: an independent attacker's probes against the new main.

* **Voilà's ``/voila/files/`` asked for nobody.** Voilà serves a lab's images with tornado's
  bare ``StaticFileHandler``: no sign-in, no read-only guard (which lives in the identity
  provider that handler never calls), links followed, hidden files served, no
  ``Content-Security-Policy``. Anyone could fetch ``/user/NAME/voila/files/…png`` of any lab —
  through a co-member's link named ``x.png`` that leads to the owner's kernel connection file,
  its key — and an ``.svg`` a co-member put in a project ran its script on the owner's origin
  from one click on ``/hub/user-redirect/voila/files/projects/p2/evil.svg``.

Users and projects are named for this module only (Unix accounts are the machine's).
"""

from __future__ import annotations

import os

import pytest
import requests

from harness import REPO

OWNER, SHAREE, STRANGER = "rfouann", "rfoucat", "rfoudav"
READ_ONLY = f"custom:echoes-lab:read-only!server={OWNER}/"
LEAN = {section: {"enabled": False}
        for section in ("culler", "gateway", "reports", "workshops", "commons", "knowledge")
        if f"[{section}]" in (REPO / "hub_config" / "local.toml").read_text()}
PNG = b"\x89PNG\r\n\x1a\n" + b"rfou-owners-private-image"
SVG = ('<svg xmlns="http://www.w3.org/2000/svg"><script>'
       'fetch("/hub/api/user")</script><text>rfou-svg</text></svg>')


@pytest.fixture(scope="module")
def hub(module_hubs):
    if os.geteuid() != 0:
        pytest.skip("users' accounts need root")
    hub = module_hubs(**LEAN, services={"auth_cache_age": 2})
    for user in (OWNER, SHAREE, STRANGER):
        hub.create_user(user)
    hub.start_server(OWNER)
    hub.tokens = {u: hub.api("POST", f"/users/{u}/tokens", json={}).json()["token"]
                  for u in (OWNER, SHAREE, STRANGER)}
    r = hub.api("POST", f"/shares/{OWNER}/", token=hub.tokens[OWNER], json={
        "user": SHAREE, "scopes": [f"access:servers!server={OWNER}/", READ_ONLY]})
    assert r.status_code in (200, 201), r.text
    out = hub.execute(OWNER, (
        "import os\n"
        f"open(os.path.expanduser('~/pic.png'), 'wb').write({PNG!r})\n"
        f"open(os.path.expanduser('~/pic.svg'), 'w').write({SVG!r})\n"
        f"open(os.path.expanduser('~/.hidden.png'), 'wb').write({PNG!r})\n"))
    assert out["status"] == "ok" and not out["errors"], out
    return hub


def call(hub, user, method, path, **kw):
    kw.setdefault("allow_redirects", False)
    headers = {"Authorization": f"token {hub.tokens[user]}"} if user else {}
    return requests.request(method, f"{hub.url}/user/{OWNER}{path}", timeout=60,
                            headers=headers, **kw)


@pytest.mark.integration
def test_voila_files_ask_for_a_user_and_are_sandboxed(hub):
    """Voilà's ``/voila/files/`` served a lab's ``.png/.jpg/.gif/.svg`` files with tornado's
    bare static handler: to anyone, signed in or not (before the fix: 200 and the owner's
    image for an anonymous request, for a user without a share and for a read-only sharee,
    whose guard it skipped), links followed and hidden files served, and an ``.svg``'s script
    ran on the owner's origin (no ``Content-Security-Policy``). Now it is jupyter-server's
    ``/files/``: signed in, allowed the lab, no hidden file, sandboxed."""
    for user in (None, STRANGER, SHAREE):
        for path in ("/voila/files/pic.png", "/voila/files/pic.svg"):
            r = call(hub, user, "GET", path)
            assert r.status_code in (302, 403), (user, path, r.status_code)
            assert b"rfou-" not in r.content, (user, path)
            if r.status_code == 302:  # to the hub's sign-in, not to the file
                assert "/hub/" in r.headers["Location"], r.headers["Location"]
    png = call(hub, OWNER, "GET", "/voila/files/pic.png")
    assert (png.status_code, png.content) == (200, PNG)
    svg = call(hub, OWNER, "GET", "/voila/files/pic.svg")
    assert svg.status_code == 200 and b"rfou-svg" in svg.content
    policy = svg.headers.get("Content-Security-Policy", "")
    assert "sandbox" in policy and "allow-same-origin" not in policy, policy
    hidden = call(hub, OWNER, "GET", "/voila/files/.hidden.png")
    assert hidden.status_code in (403, 404) and b"rfou-" not in hidden.content
    assert call(hub, OWNER, "GET", "/voila/files/notes.ipynb").status_code == 403  # deny-list
