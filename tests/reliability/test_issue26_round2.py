"""Issue 26, second round of probes: holes found in the first round's fixes, on a real hub
started as root (users' servers under their own system accounts).

* **A swapped link.** The read-only guard resolves a path before the request is answered;
  the contents manager then opened it again by name. A co-member of the owner's project who
  swaps a link in for a harmless file in a loop (``rename(2)``) had some reads follow the link
  to the owner's kernel connection file (its key: code as the owner), through
  ``/api/contents`` and ``/files/``.
* **A notebook swapped between the app's confirmation and its run.** The confirmation of an
  app of a co-member's notebook is bound to the file's hash, but the check hashed the file by
  name and Voila then read it again by name: a co-member swapping an evil notebook in and out
  (``rename(2)`` in a loop) had the owner's confirmed app run the evil one, as the owner.
* **A setgid key outside the project folder.** A member need not put the setgid shell in the
  project folder: the project's group is one of his groups, so a copy of bash in his home (or
  in ``/tmp``) may be given that group and the setgid bit (``chown(2)``, ``chmod(2)``); the
  removal's walk of the project folder never saw it, and after ``project remove`` the copy
  still gave him the group.

Users and projects are named for this module only (Unix accounts are the machine's).
"""

from __future__ import annotations

import json
import os
import re
import stat
import time

import pytest
import requests

from harness import gone, lean, wait_for

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="users' accounts need root"),
]

OWNER, LEAVER, SHAREE = "rtwoann", "rtwoben", "rtwocat"
KEYS_PROJECT, SHARED_PROJECT = "r2-keys", "r2-share"
READ_ONLY = f"custom:echoes-lab:read-only!server={OWNER}/"
LEAN = lean()


def run(hub, user: str, code: str):
    out = hub.execute(user, code)
    assert out["status"] == "ok" and not out["errors"], (user, out)
    return json.loads(out["stdout"].strip().splitlines()[-1])


@pytest.fixture(scope="module")
def hub(module_hubs):
    hub = module_hubs(**LEAN, services={"auth_cache_age": 2})
    hub.cli("project", "create", KEYS_PROJECT, "--members", f"{OWNER},{LEAVER}", "--admins", OWNER)
    hub.cli("project", "create", SHARED_PROJECT, "--members", f"{OWNER},{SHAREE}")
    for user in (OWNER, SHAREE):
        hub.start_server(user)
    hub.tokens = {u: hub.api("POST", f"/users/{u}/tokens", json={}).json()["token"]
                  for u in (OWNER, SHAREE)}
    r = hub.api("POST", f"/shares/{OWNER}/", token=hub.tokens[OWNER], json={
        "user": SHAREE, "scopes": [f"access:servers!server={OWNER}/", READ_ONLY]})
    assert r.status_code in (200, 201), r.text
    return hub


def call(hub, user, method, path, **kw):
    kw.setdefault("allow_redirects", False)
    return requests.request(method, f"{hub.url}/user/{OWNER}{path}", timeout=60,
                            headers={"Authorization": f"token {hub.tokens[user]}"}, **kw)


SWAPPER = """
import json, os, subprocess, sys
folder, target = {folder!r}, {target!r}
loop = '''
import os, sys, time
folder, target = sys.argv[1], sys.argv[2]
os.chdir(folder)
end = time.monotonic() + 120
while time.monotonic() < end and not os.path.exists(".stop"):
    os.symlink(target, ".l")
    os.rename(".l", "sw")
    with open(".f", "w") as f:
        f.write("harmless")
    os.rename(".f", "sw")
'''
with open(os.path.join(folder, "sw"), "w") as f:
    f.write("harmless")
p = subprocess.Popen([sys.executable, "-c", loop, folder, target], start_new_session=True)
print(json.dumps(p.pid))
"""


def test_a_link_swapped_in_after_the_check_is_not_read(hub):
    """The sharee swaps a link to the owner's kernel connection file in and out of a file of
    the shared project while reading it: every read gives the harmless file or a refusal,
    never the key (before the fix, about one read in four gave the key)."""
    kernel = call(hub, OWNER, "POST", "/api/kernels", json={"name": "echoes"}).json()["id"]
    folder = hub.state / "projects" / SHARED_PROJECT
    connection = (hub.state / "homes" / OWNER / ".local" / "share" / "jupyter" / "runtime"
                  / f"kernel-{kernel}.json")
    swapper = None
    try:
        wait_for(connection.exists, 30, "the owner's connection file")
        key = json.loads(connection.read_text())["key"]
        swapper = run(hub, SHAREE, SWAPPER.format(folder=str(folder), target=str(connection)))
        seen: dict[str, int] = {}
        deadline = time.monotonic() + 20
        for i in range(400):
            route = ("/api/contents/projects/{}/sw", "/files/projects/{}/sw")[i % 2]
            r = call(hub, SHAREE, "GET", route.format(SHARED_PROJECT))
            assert key not in r.text, (route, r.status_code)
            outcome = "harmless" if "harmless" in r.text else str(r.status_code)
            seen[outcome] = seen.get(outcome, 0) + 1
            if time.monotonic() > deadline:
                break
        assert not gone(swapper), "the swapping loop ended early: the probe proved nothing"
        # the race ran both ways: harmless reads and refusals of the link
        assert seen.get("harmless") and seen.get("403"), seen
    finally:
        (folder / ".stop").touch()
        if swapper:
            wait_for(lambda: gone(swapper), 30, "the swapping loop to end")
        call(hub, OWNER, "DELETE", f"/api/kernels/{kernel}")


def notebook(source: str) -> dict:
    return {"cells": [{"cell_type": "code", "execution_count": None, "id": "c", "metadata": {},
                       "outputs": [], "source": source}],
            "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python",
                                        "name": "python3"}},
            "nbformat": 4, "nbformat_minor": 5}


MARKER = "ran-r2-evil"
APP_SWAPPER = """
import json, os, subprocess, sys
folder, benign, evil = {folder!r}, {benign!r}, {evil!r}
loop = '''
import os, sys, time
folder, benign, evil = sys.argv[1:4]
os.chdir(folder)
end = time.monotonic() + 120
while time.monotonic() < end and not os.path.exists(".stop-app"):
    for text in (evil, benign):
        with open(".n", "w") as f:
            f.write(text)
        os.rename(".n", "app.ipynb")
'''
with open(os.path.join(folder, "app.ipynb"), "w") as f:
    f.write(benign)
p = subprocess.Popen([sys.executable, "-c", loop, folder, benign, evil],
                     start_new_session=True)
print(json.dumps(p.pid))
"""


def test_an_app_runs_the_notebook_that_was_confirmed(hub):
    """The owner confirms a co-member's harmless app; the co-member then swaps an evil
    notebook in and out of its file: each run renders the confirmed notebook or asks again,
    never runs the evil one as the owner."""
    folder = hub.state / "projects" / SHARED_PROJECT
    marker = hub.state / "homes" / OWNER / MARKER
    benign = json.dumps(notebook("print('harm' + 'less')"))
    evil = json.dumps(notebook(
        f"import os; open(os.path.expanduser('~/{MARKER}'), 'w').write('x')"))
    path = f"projects/{SHARED_PROJECT}/app.ipynb"
    run(hub, SHAREE, f"import json; open({str(folder / 'app.ipynb')!r}, 'w').write({benign!r}); "
                     "print(json.dumps(1))")
    page = call(hub, OWNER, "GET", f"/echoes/app?path={path}")
    assert page.status_code == 200, page.text[:300]
    token = re.search(r"echoes_confirm=([0-9a-f]{64})", page.text)[1]
    swapper = run(hub, SHAREE, APP_SWAPPER.format(folder=str(folder), benign=benign,
                                                  evil=evil))
    seen: dict[int, int] = {}
    try:
        deadline = time.monotonic() + 45
        for _ in range(12):
            r = call(hub, OWNER, "GET", f"/voila/render/{path}?echoes_confirm={token}")
            assert not marker.exists(), "the evil notebook ran as the owner"
            if r.status_code == 200:
                assert "harmless" in r.text
            seen[r.status_code] = seen.get(r.status_code, 0) + 1
            if time.monotonic() > deadline:
                break
        assert not gone(swapper), "the swapping loop ended early: the probe proved nothing"
        assert seen.get(200) and seen.get(302), seen  # confirmed runs, and asked again
    finally:
        (folder / ".stop-app").touch()
        wait_for(lambda: gone(swapper), 30, "the swapping loop to end")
        for kernel in call(hub, OWNER, "GET", "/api/kernels").json():
            call(hub, OWNER, "DELETE", f"/api/kernels/{kernel['id']}")
    assert not marker.exists()


READER, READERS = "rtwodee", "r2-readers"
ENCODED = ("//api/kernels", "/api/kernels/", "/api//kernels", "/API/kernels", "/api/kernels;x",
           "/api/%6Bernels", "/lab/../api/kernels", "/api/contents/%2E%2E/%2E%2E/etc/passwd",
           "/api/contents/projects%2F..%2F.local", "/files/%2elocal/share/jupyter/runtime",
           "/api/contents/.local%2Fshare", "/api/contents/projects/../.ssh",
           "/api/contents/%EF%BC%8Elocal", "/nbconvert/html/.local/x.ipynb")
DENIED = [(m, "/api/kernels") for m in ("POST", "PUT", "PATCH", "DELETE", "OPTIONS")] + [
    ("GET", p) for p in ("/voila/tree", "/voila/render/x.ipynb",
                         "/api/collaboration/room/json:notebook:x", "/api/events/subscribe",
                         "/lsp/status", "/api/metrics/v1", "/git/settings", "/nbdime/difftool",
                         "/api/nbconvert/x", "/nbconvert/webpdf/x.ipynb", "/echoes/share",
                         "/echoes/git-pull?repo=https%3A%2F%2Fexample.org%2Fr.git",
                         "/git-pull?repo=https%3A%2F%2Fexample.org%2Fr.git")] + [
    ("POST", "/api/events"), ("PUT", "/lab/api/settings/@jupyterlab/apputils-extension:themes"),
    ("PUT", "/lab/api/workspaces/x"), ("POST", "/api/contents/projects"),
    ("HEAD", "/api/kernels"), ("HEAD", "/voila/render/x.ipynb")]


def test_a_group_share_is_read_only_on_every_route_and_encoding(hub):
    """The held list, probed again for a read-only share given to a group: other verbs
    (HEAD, OPTIONS, PATCH), other extensions' routes (Voila's tree,
    collaboration, events, LSP, resource usage, git, nbdime, settings and workspaces PUT) and
    path encodings (double slashes, trailing slash, case, ';', %-escapes, '..', a fullwidth
    dot) are refused; a token in the query string gets the same answer; reading still works."""
    hub.create_user(READER)
    assert hub.api("POST", f"/groups/{READERS}", json={"users": [READER]}).status_code in (
        201, 409)
    r = hub.api("POST", f"/shares/{OWNER}/", token=hub.tokens[OWNER], json={
        "group": READERS, "scopes": [f"access:servers!server={OWNER}/", READ_ONLY]})
    assert r.status_code in (200, 201), r.text
    hub.tokens[READER] = hub.api("POST", f"/users/{READER}/tokens", json={}).json()["token"]
    wait_for(lambda: call(hub, READER, "GET", "/api/contents").status_code == 200, 30,
             "the group's share to reach the owner's server")
    for method, path in DENIED:
        r = call(hub, READER, method, path, json={} if method in ("POST", "PUT", "PATCH")
                 else None)
        assert r.status_code == 403, (method, path, r.status_code, r.text[:200])
    for path in ENCODED:
        r = call(hub, READER, "GET", path, allow_redirects=True)  # '/x/' redirects to '/x'
        if r.status_code == 200:  # '/lab/../api/kernels' is the kernels' list: answered empty
            assert r.json() == [], (path, r.text[:200])
        else:
            assert r.status_code in (403, 404), (path, r.status_code, r.text[:200])
        assert '"key"' not in r.text and "root:x:0" not in r.text
    in_url = requests.post(f"{hub.url}/user/{OWNER}/api/kernels", timeout=60,
                           params={"token": hub.tokens[READER]}, json={})
    assert in_url.status_code == 403
    assert call(hub, READER, "GET", "/api/kernelspecs").status_code == 200
    assert call(hub, READER, "GET", f"/api/contents/projects/{SHARED_PROJECT}").status_code == 200


KEYS = """
import grp, json, os, shutil, subprocess
gid = grp.getgrnam({group!r}).gr_gid
folder = {folder!r}
keys = [os.path.expanduser("~/.gsh2"), "/tmp/{leaver}-gsh"]
def gsh(key, command):
    done = subprocess.run([key, "-p", "-c", command], capture_output=True, text=True,
                          timeout=30)
    return done.returncode, done.stderr.strip()[-200:]
if {make}:
    for key in keys:
        shutil.copy("/bin/bash", key)
        os.chown(key, -1, gid)  # allowed: the project's group is one of his groups
        os.chmod(key, 0o2755)
print(json.dumps([gsh(key, "echo x > " + folder + "/via-" + os.path.basename(key))
                  for key in keys]))
"""


def test_a_setgid_key_outside_the_project_folder_is_stripped_at_removal(hub):
    folder = hub.state / "projects" / KEYS_PROJECT
    group = f"echoes-p-{KEYS_PROJECT}"
    hub.start_server(LEAVER)
    keys = [hub.state / "homes" / LEAVER / ".gsh2", f"/tmp/{LEAVER}-gsh"]
    try:
        before = run(hub, LEAVER, KEYS.format(group=group, folder=str(folder), leaver=LEAVER,
                                               make=True))
        # the keys work while he is a member (else this test would prove nothing)
        assert [rc for rc, _ in before] == [0, 0], before
        assert (folder / "via-.gsh2").exists()

        hub.cli("project", "remove", KEYS_PROJECT, LEAVER)
        wait_for(lambda: (hub.api("GET", f"/users/{LEAVER}").json().get("servers", {})
                          .get("", {}).get("ready")), 120, "his server to run again")

        for key in keys:
            st = os.stat(key)
            assert not st.st_mode & (stat.S_ISGID | stat.S_ISUID), (key, oct(st.st_mode))
        after = run(hub, LEAVER, KEYS.format(group=group, folder=str(folder), leaver=LEAVER,
                                              make=False))
        assert all(rc != 0 and "Permission denied" in err for rc, err in after), after
    finally:
        for key in keys:
            if os.path.lexists(key):
                os.unlink(key)
