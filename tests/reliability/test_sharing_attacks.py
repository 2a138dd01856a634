"""Issue 26's reproductions 1-5 and 8 against a real hub started as root: a read-only sharee,
a link or a shared page must not run code as another user.

Users: alice (owner), carol (read-only sharee of alice's lab, co-member of project p2), dave
(read-only sharee number 204, past JupyterHub's page of 200 shares). Each user's server runs
under its own system account. The "evil" notebook writes a marker file in the home of
whoever runs it, so "it ran as alice" is a file in alice's home.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import re
import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import quote

import pytest
import requests
import websocket

from harness import free_port, login, wait_for

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="users' accounts need root"),
]

READ_ONLY = "custom:echoes-lab:read-only!server=alice/"
MARKER = "ran-evil"
EVIL = {
    "cells": [{"cell_type": "code", "execution_count": None, "id": "evil", "metadata": {},
               "outputs": [], "source": [
                   "import os\n",
                   f"open(os.path.expanduser('~/{MARKER}'), 'w').write(str(os.getuid()))\n"]}],
    "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python",
                                "name": "python3"}},
    "nbformat": 4, "nbformat_minor": 5,
}


@pytest.fixture(scope="module")
def hub(module_hubs):
    hub = module_hubs(
        culler={"enabled": False}, gateway={"enabled": False}, reports={"enabled": False},
        workshops={"enabled": False}, commons={"enabled": False},
        services={"auth_cache_age": 2},
        # http:// so that a clone can be checked on a closed network; git://, file:// refused
        spawner={"git_pull_schemes": ["https", "http"]})
    for user in ("alice", "carol", "dave"):
        hub.create_user(user)
    hub.cli("project", "create", "p2", "--members", "alice,carol")
    for user in ("alice", "carol"):
        hub.start_server(user)
    hub.tokens = {u: hub.api("POST", f"/users/{u}/tokens", json={}).json()["token"]
                  for u in ("alice", "carol", "dave")}
    # alice shares, as the Share page does (the hub lets her grant the read-only scope)
    r = hub.api("POST", "/shares/alice/", token=hub.tokens["alice"], json={
        "user": "carol", "scopes": ["access:servers!server=alice/", READ_ONLY]})
    assert r.status_code in (200, 201), r.text
    return hub


def call(hub, user, method, path, lab="alice", **kw):
    kw.setdefault("allow_redirects", False)
    return requests.request(method, f"{hub.url}/user/{lab}{path}", timeout=60,
                            headers={"Authorization": f"token {hub.tokens[user]}"}, **kw)


def home(hub, user):
    return hub.state / "homes" / user


def write_evil(hub, user, path):
    r = call(hub, user, "PUT", f"/api/contents/{path}", lab=user,
             json={"type": "notebook", "format": "json", "content": EVIL})
    assert r.status_code in (200, 201), r.text


def test_read_only_sharee_cannot_run_code_as_the_owner(hub):
    """Reproduction 1: Voilà, nbgitpuller, nbconvert that runs programs, server-proxy — all
    GETs — are refused to a read-only sharee; reading still works."""
    write_evil(hub, "carol", "projects/p2/evil.ipynb")
    nb = "projects/p2/evil.ipynb"
    for path in (f"/voila/render/{nb}", "/voila/tree", f"/nbconvert/pdf/{nb}",
                 f"/nbconvert/webpdf/{nb}",
                 "/git-pull?repo=git%3A%2F%2F127.0.0.1%3A18766%2Fevil.git&targetpath=gp-git",
                 "/git-pull/api?repo=git%3A%2F%2F127.0.0.1%3A18766%2Fevil.git&targetpath=gp",
                 "/interact?repo=x", f"/proxy/{hub.settings['hub']['port']}/hub/api",
                 "/echoes/git-pull?repo=https%3A%2F%2Fexample.org%2Fr.git",
                 f"/echoes/app?path={nb}", "/api/collaboration/room/x", "/echoes/share",
                 "/dask/clusters", "/git/settings", "/lab/api/extensions"):
        r = call(hub, "carol", "GET", path)
        assert r.status_code == 403, (path, r.status_code, r.text[:300])
        assert "read-only access to this lab" in r.text, (path, r.text[:300])  # says why
    assert not (home(hub, "alice") / MARKER).exists()
    assert not (home(hub, "alice") / "gp-git").exists()
    # what a read-only share is for
    assert call(hub, "carol", "GET", f"/api/contents/{nb}").json()["content"]["cells"]
    page = call(hub, "carol", "GET", f"/nbconvert/html/{nb}")
    assert page.status_code == 200 and MARKER in page.text
    assert call(hub, "carol", "GET", "/lab").status_code == 200
    r = call(hub, "alice", "PUT", "/api/contents/from-alice.txt",
             json={"type": "file", "format": "text", "content": "alice's"})
    assert r.status_code in (200, 201)
    assert call(hub, "carol", "GET", "/files/from-alice.txt").text == "alice's"
    # the held list: writes, kernels, terminals, settings, git stay refused
    assert call(hub, "carol", "PUT", "/api/contents/x.txt",
                json={"type": "file", "format": "text", "content": "x"}).status_code == 403
    for method, path in (("POST", "/api/kernels"), ("POST", "/api/sessions"),
                         ("POST", "/api/terminals"), ("PUT", "/lab/api/settings/x:y"),
                         ("POST", "/git/init")):
        assert call(hub, "carol", method, path, json={}).status_code == 403, path


def test_reading_stops_at_hidden_files_and_links_out(hub):
    """Reproductions 4 and 8: a link a co-member plants in a shared project folder reaches
    neither the owner's hidden files (kernel connection files, cookie secret) nor anything
    outside the lab, on any route; the owner's kernels, sessions, terminals and metrics are
    not listed to a read-only sharee."""
    runtime = home(hub, "alice") / ".local" / "share" / "jupyter" / "runtime"
    kernel = call(hub, "alice", "POST", "/api/kernels", json={"name": "echoes"}).json()["id"]
    try:
        connection = f"kernel-{kernel}.json"
        wait_for(lambda: (runtime / connection).exists(), 30, "alice's connection file")
        out = hub.execute("carol", (
            "import os\n"
            "p2 = os.path.expanduser('~/projects/p2')\n"
            f"os.symlink({str(runtime)!r}, os.path.join(p2, 'rt'))\n"
            f"os.symlink({str(home(hub, 'alice'))!r}, os.path.join(p2, 'ah'))\n"
            "os.symlink('/etc', os.path.join(p2, 'etc'))\n"))
        assert out["status"] == "ok", out
        for path in (f"/api/contents/projects/p2/rt/{connection}", "/api/contents/projects/p2/rt",
                     f"/files/projects/p2/rt/{connection}",
                     f"/nbconvert/html/projects/p2/rt/{connection}",
                     f"/api/contents/projects/p2/ah/.local/share/jupyter/runtime/{connection}",
                     "/api/contents/projects/p2/etc/hostname", "/files/projects/p2/etc/hostname",
                     "/api/contents/projects/p2/etc", "/api/contents/.local",
                     f"/api/kernels/{kernel}", f"/api/kernels/{kernel}/channels",
                     "/api/metrics/v1", "/metrics", "/api/status"):
            r = call(hub, "carol", "GET", path)
            assert r.status_code == 403, (path, r.status_code, r.text[:300])
            assert '"key"' not in r.text
        # the lists the owner's lab page polls: empty (no 403 every few seconds, no kernels)
        for path in ("/api/kernels", "/api/sessions", "/api/terminals"):
            r = call(hub, "carol", "GET", path)
            assert (r.status_code, r.json()) == (200, []), (path, r.status_code, r.text[:300])
        # nor its websocket (the held list: no websocket at all for a read-only sharee)
        ws_url = (f"ws://{hub.url.removeprefix('http://')}/user/alice/api/kernels/{kernel}"
                  f"/channels")
        with pytest.raises(websocket.WebSocketBadStatusException) as refusal:
            websocket.create_connection(
                ws_url, header=[f"Authorization: token {hub.tokens['carol']}"], timeout=30)
        assert refusal.value.status_code == 403
        # the owner keeps them all
        assert call(hub, "alice", "GET", "/api/kernels").json()[0]["id"] == kernel
        assert call(hub, "alice", "GET", "/api/metrics/v1").status_code == 200
        # a link inside the lab is read as any file
        assert call(hub, "carol", "GET", "/api/contents/projects/p2/ah").status_code == 200
    finally:
        call(hub, "alice", "DELETE", f"/api/kernels/{kernel}")


@contextlib.contextmanager
def web_server(folder):
    handler = lambda *a: http.server.SimpleHTTPRequestHandler(*a, directory=str(folder))  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def test_shared_pages_are_sandboxed(hub, tmp_path):
    """Reproduction 3: a page carol serves through her server-proxy, and HTML files in a lab,
    come with a CSP sandbox without allow-same-origin (an opaque origin: no hub cookies, no
    reading the hub's pages); the requests such a page fired at alice's server are refused."""
    site = tmp_path  # served by this process (root), not read by users' accounts
    (site / "evil3.html").write_text(
        '<img src="/user/alice/git-pull/api?repo=git://127.0.0.1:18766/evil.git">')
    with web_server(site) as port:
        page = call(hub, "carol", "GET", f"/proxy/{port}/evil3.html", lab="carol")
        assert page.status_code == 200 and "git-pull" in page.text
        policies = page.headers.get("Content-Security-Policy", "")
        assert "sandbox" in policies and "allow-same-origin" not in policies, policies
    write_evil(hub, "carol", "page.ipynb")
    (home(hub, "carol") / "page.html").write_text("<script>fetch('/hub/api/user')</script>")
    os.chown(home(hub, "carol") / "page.html", *_ids(hub, "carol"))
    for path in ("/files/page.html", "/nbconvert/html/page.ipynb"):
        r = call(hub, "carol", "GET", path, lab="carol")
        policy = r.headers.get("Content-Security-Policy", "")
        assert r.status_code == 200 and "sandbox" in policy, (path, policy)
        assert "allow-same-origin" not in policy
    # the image's request, as alice's own browser would send it: refused, nothing cloned
    r = call(hub, "alice", "GET", "/git-pull/api?repo=git%3A%2F%2F127.0.0.1%3A18766%2Fe.git")
    assert r.status_code == 403


def _ids(hub, user):
    st = os.stat(home(hub, user))
    return st.st_uid, st.st_gid


def _git_repo(root):
    """A real git repository with the evil notebook, bare and ready for git's "dumb" HTTP
    transport (any static web server serves it; a local clone of another account's
    repository is refused by git itself: "dubious ownership")."""
    work = root / "work"
    work.mkdir()
    (work / "evil.ipynb").write_text(json.dumps(EVIL))
    git = ["git", "-C", str(work), "-c", "user.name=Mallory", "-c", "user.email=m@example.org"]
    for args in (["init", "-q", "-b", "main"], ["add", "evil.ipynb"], ["commit", "-qm", "evil"]):
        subprocess.run(git + args, check=True, capture_output=True, timeout=60)
    bare = root / "evil.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(bare)], check=True,
                   capture_output=True, timeout=60)
    subprocess.run(["git", "-C", str(bare), "update-server-info"], check=True, timeout=60)
    return root


def test_a_link_asks_before_cloning_and_never_runs_straight_away(hub, tmp_path):
    """Reproduction 2 (and 1b's pull): one click on a git-pull link whose urlpath renders an
    app clones nothing and runs nothing; it shows what it would clone, from where; git://
    is refused; targetpath stays in the home; only the page's POST clones."""
    browser = login(hub, "alice", hub.secrets["user_password"], next_url="/hub/home")
    # depth=0: a full clone (git's "dumb" HTTP transport, used here, cannot make shallow ones)
    link = ("/hub/user-redirect/git-pull?repo={repo}&branch=main&targetpath=gp-link&depth=0"
            "&urlpath=voila%2Frender%2Fgp-link%2Fevil.ipynb")
    r = browser.get(hub.url + link.format(repo=quote("git://127.0.0.1:18766/evil.git", "")),
                    timeout=60)
    assert r.status_code == 400 and "/echoes/git-pull" in r.url, (r.status_code, r.url)
    assert "git:// sources are not allowed" in r.text
    r = browser.get(hub.url + link.format(repo=quote("file:///srv/evil.git", "")), timeout=60)
    assert r.status_code == 400 and "file:// sources are not allowed" in r.text
    with web_server(_git_repo(tmp_path)) as port:  # served over HTTP by this process
        _link_asks(hub, browser, link, f"http://127.0.0.1:{port}/evil.git")


def _link_asks(hub, browser, link, repo):
    r = browser.get(hub.url + link.format(repo=quote(repo, "")), timeout=60)
    assert r.status_code == 200 and repo in r.text
    assert "runs code from this repository as you" in " ".join(r.text.split())
    assert not (home(hub, "alice") / "gp-link").exists()  # a GET clones nothing
    xsrf = re.search(r'name="xsrf" content="([^"]+)"', r.text)[1]
    # clone and open the folder, not the app
    done = browser.post(r.url, data={"_xsrf": xsrf, "open": "lab"}, timeout=120,
                        allow_redirects=False)
    assert done.status_code == 302, done.text[:500]
    assert done.headers["Location"].endswith("/user/alice/lab/tree/gp-link")
    cloned = home(hub, "alice") / "gp-link" / "evil.ipynb"
    assert cloned.exists() and cloned.stat().st_uid == _ids(hub, "alice")[0]
    assert not (home(hub, "alice") / MARKER).exists()
    # the page's form without its XSRF token (a cross-site form) clones nothing
    again = browser.post(r.url.replace("gp-link", "gp-csrf"), data={"open": "app"}, timeout=60,
                         allow_redirects=False)
    assert again.status_code == 403 and not (home(hub, "alice") / "gp-csrf").exists()
    # targetpath stays in the home: absolute, '..', hidden, and a link leading out
    (home(hub, "alice") / "out").symlink_to(hub.state / "projects")
    for target in ("/tmp/gp-abs", "../carol/gp", ".local/gp", "out/p2/gp", "projects/p2/gp"):
        url = f"/user/alice/echoes/git-pull?repo={quote(repo, '')}&targetpath="
        bad = browser.get(hub.url + url + quote(target, ""), timeout=60)
        assert bad.status_code == 400 and "targetpath" in bad.text, target
        assert browser.post(hub.url + url + quote(target, ""), timeout=60,
                            data={"_xsrf": xsrf, "open": "lab"}).status_code == 400
    assert not (hub.state / "projects" / "p2" / "gp").exists()


def test_an_app_of_someone_elses_notebook_asks_first(hub):
    """Deliver item 5 (the app half): alice opening carol's project notebook as an app sees
    who wrote it and when, and it runs only once she confirms, for that content only."""
    nb = "projects/p2/evil.ipynb"
    write_evil(hub, "carol", nb)
    r = call(hub, "alice", "GET", f"/voila/render/{nb}")
    assert r.status_code == 302 and "/echoes/app?path=" in r.headers["Location"]
    page = call(hub, "alice", "GET", f"/echoes/app?path={quote(nb)}")
    assert page.status_code == 200
    assert re.search(r'id="app-writer">carol<', page.text), page.text
    assert re.search(r'id="app-changed">\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC<', page.text)
    assert not (home(hub, "alice") / MARKER).exists()
    run = re.search(r'id="app-run" href="([^"]+)"', page.text)[1].replace("&amp;", "&")
    ran = call(hub, "alice", "GET", run.removeprefix("/user/alice"))
    assert ran.status_code == 200, ran.text[:500]
    wait_for(lambda: (home(hub, "alice") / MARKER).exists(), 60, "the confirmed app to run")
    assert (home(hub, "alice") / MARKER).read_text() == str(_ids(hub, "alice")[0])
    # carol changes it: the same confirmation no longer runs it
    changed = json.loads(json.dumps(EVIL))
    changed["cells"][0]["source"].append("# changed\n")
    r = call(hub, "carol", "PUT", f"/api/contents/{nb}", lab="carol",
             json={"type": "notebook", "format": "json", "content": changed})
    assert r.status_code == 200
    again = call(hub, "alice", "GET", run.removeprefix("/user/alice"))
    assert again.status_code == 302 and "/echoes/app?" in again.headers["Location"]
    # nothing to ask about a notebook that is not someone else's, or out of the lab
    assert call(hub, "alice", "GET", "/echoes/app?path=nothing.ipynb").status_code == 404
    assert call(hub, "alice", "GET", "/echoes/app?path=../../../../etc/passwd").status_code == 404
    # the held list: Voilà's own path traversal stays refused
    r = call(hub, "alice", "GET", "/voila/render/%2E%2E/%2E%2E/%2E%2E/%2E%2E/etc/passwd",
             allow_redirects=True)
    assert r.status_code != 200 or "root:x:0" not in r.text, r.status_code


def test_read_only_past_two_hundred_shares(hub):
    """Reproduction 5: with more than 200 shares (JupyterHub's page size) the lab still finds
    dave's read-only share (number 204) and refuses him a kernel."""
    names = [f"s{i:03d}" for i in range(202)]
    r = hub.api("POST", "/users", json={"usernames": names})
    assert r.status_code in (201, 409), r.text

    def share(name):
        return hub.api("POST", "/shares/alice/", token=hub.tokens["alice"], json={
            "user": name, "scopes": ["access:servers!server=alice/"]}).status_code

    with ThreadPoolExecutor(4) as pool:
        assert set(pool.map(share, names)) <= {200, 201}
    r = hub.api("POST", "/shares/alice/", token=hub.tokens["alice"], json={
        "user": "dave", "scopes": ["access:servers!server=alice/", READ_ONLY]})
    assert r.status_code in (200, 201), r.text
    assert hub.api("GET", "/shares/alice/").json()["items"][-1]["user"]["name"] != "dave"
    # a token for alice's server only: it carries no read-only scope, the share list decides
    hub.tokens["dave"] = hub.api("POST", "/users/dave/tokens", json={
        "scopes": ["access:servers!server=alice/"]}).json()["token"]
    wait_for(lambda: call(hub, "dave", "GET", "/api/contents").status_code == 200, 30,
             "dave's share to reach alice's server")
    kernels = call(hub, "alice", "GET", "/api/kernels").json()
    assert call(hub, "dave", "POST", "/api/kernels", json={"name": "echoes"}).status_code == 403
    assert call(hub, "dave", "GET", "/api/kernels").json() == []  # the owner's not shown
    assert call(hub, "alice", "GET", "/api/kernels").json() == kernels
    # a browser's OAuth token carries no read-only scope: the same decision
    browser = login(hub, "dave", hub.secrets["user_password"], next_url="/hub/home")
    lab = browser.get(f"{hub.url}/user/alice/lab", timeout=60)
    if "oauth2/authorize" in lab.url:  # JupyterHub asks once before a shared server is used
        form = browser.post(lab.url, data={"_xsrf": browser.cookies.get("_xsrf", path="/hub/"),
                                           "scopes": []}, timeout=60)
        lab = form
    assert lab.status_code == 200, (lab.url, lab.status_code)
    xsrf = browser.cookies.get("_xsrf", path="/user/alice/")
    refused = browser.post(f"{hub.url}/user/alice/api/kernels", json={"name": "echoes"},
                           headers={"X-XSRFToken": xsrf or ""}, timeout=60)
    assert refused.status_code == 403, refused.text[:300]


@pytest.mark.parametrize(("repo", "scheme"), [
    ("https://github.com/org/repo", "https"), ("git://127.0.0.1:18766/evil.git", "git"),
    ("file:///srv/evil.git", "file"), ("/srv/evil.git", "file"), ("../evil", "file"),
    ("git@github.com:org/repo.git", "ssh"), ("ext::sh -c id", "ext"), ("fd::3", "fd")])
def test_link_sources_by_scheme(repo, scheme, monkeypatch, tmp_path):
    """Only the schemes the settings allow are cloned; git's remote helpers never."""
    from echoes_lab.hub.services.projects import links

    monkeypatch.setenv(links.SCHEMES_ENV, "https")
    assert links.repo_scheme(repo) == scheme
    if scheme == "https":
        assert links.check_link({"repo": repo}, str(tmp_path))["targetpath"] == "repo"
    else:
        with pytest.raises(links.LinkError, match="not allowed"):
            links.check_link({"repo": repo}, str(tmp_path))


def test_read_only_paths(tmp_path, monkeypatch):
    """What a sharee may read: inside the home and the project folders, nothing hidden."""
    from echoes_lab.hub.services.projects.serverext import path_allowed

    home, projects = tmp_path / "home", tmp_path / "projects"
    (home / ".local").mkdir(parents=True)
    (projects / "p2").mkdir(parents=True)
    (home / "projects").mkdir()
    (home / "projects" / "p2").symlink_to(projects / "p2")
    (projects / "p2" / "rt").symlink_to(home / ".local")
    (projects / "p2" / "up").symlink_to(tmp_path)
    monkeypatch.setenv("ECHOES_PROJECTS", str(projects))
    assert path_allowed("projects/p2/notes.txt", str(home))
    assert path_allowed("projects/p2", str(home))
    for bad in (".local/x", "projects/p2/rt/x", "projects/p2/rt", "projects/p2/up",
                "projects/p2/up/home/.local", "%2elocal/x", "a/../.local"):
        assert not path_allowed(bad, str(home)), bad
