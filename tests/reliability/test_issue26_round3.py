"""Issue 26, third round: what a lab's owner can do to the people who open it, and what a
read-only sharee's lab shows.

* **A folder swapped for a link while it is listed.** The read-only guard resolved a folder's
  path, then the contents manager listed it again by name: a co-member swapping a link to the
  owner's hidden runtime folder in for a harmless folder (``rename(2)`` in a loop) had about
  one listing in three show the names inside it (119 of 400 in the probe below before the
  fix). Folders are now listed through the descriptor that was checked.
* **The owner's JavaScript in a visitor's browser.** A lab loaded JupyterLab extensions from its
  owner's ``~/.local/share/jupyter/labextensions``: whoever opened a shared lab ran them. Labs
  now load extensions from the environment only (defence in depth: the owner still runs their
  own server; the isolation is ``[hub] subdomain_host``, ``tests/integration/test_subdomains.py``).
* **A read-only sharee's lab polls** the owner's kernels, sessions and terminals every few
  seconds: answered with empty lists (no 403s, none of the owner's kernels shown).
* **A read that writes.** Reading an unreadable notebook made jupyter-server repair it from its
  atomic-write intermediate (two renames, as the owner); a read-only sharee's read no longer
  does.

Users and projects are named for this module only (Unix accounts are the machine's).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import re
import threading

import pytest
import requests

from harness import lean, wait_for

OWNER, SHAREE = "rthrann", "rthrcat"
READ_ONLY = f"custom:echoes-lab:read-only!server={OWNER}/"
EVIL_EXTENSION = "echoes-r3-evil-extension"
SECRET = "r3-owners-api-key"
LEAN = lean()


def test_a_folder_swapped_for_a_link_lists_nothing_hidden(tmp_path, monkeypatch):
    """A thread swaps a link to a hidden folder in and out of ``d`` while a read-only sharee's
    contents manager (jupyter-server's own, with the guard's reads) lists ``d`` 400 times:
    every listing is the harmless folder's or a refusal, never the hidden folder's names."""
    from jupyter_server.services.contents.largefilemanager import AsyncLargeFileManager
    from tornado import web

    from echoes_lab.hub.services.projects import serverext

    home = tmp_path / "home"
    (home / ".local" / "runtime").mkdir(parents=True)
    (home / ".local" / "runtime" / "kernel-secret.json").write_text("{}")
    (home / "real").mkdir()
    (home / "real" / "harmless.txt").write_text("x")
    monkeypatch.setenv("ECHOES_PROJECTS", str(tmp_path / "projects"))
    manager = serverext._mixed(serverext.CheckedReads, AsyncLargeFileManager)(root_dir=str(home))
    stop = threading.Event()
    os.symlink(home / "real", home / "d")  # there before the first listing, whenever the
    # swapping thread gets the CPU (on a busy machine all 400 once ran before it did: 404s)

    def swap():
        while not stop.is_set():
            for target in (home / ".local" / "runtime", home / "real"):
                os.symlink(target, home / ".l")
                os.rename(home / ".l", home / "d")

    async def listings() -> dict:
        serverext._SHAREE.set(True)
        seen: dict = {}
        for n in itertools.count():
            # at least 400 listings, and on until the race has gone both ways
            if n >= 400 and (seen.get("listed") and seen.get(403) or n >= 20_000):
                break
            try:
                names = [e["name"] for e in (await manager.get("d"))["content"]]
            except web.HTTPError as exc:
                seen[exc.status_code] = seen.get(exc.status_code, 0) + 1
                continue
            assert "kernel-secret.json" not in names, names
            assert names == ["harmless.txt"], names
            seen["listed"] = seen.get("listed", 0) + 1
        return seen

    swapper = threading.Thread(target=swap)
    swapper.start()
    try:
        seen = asyncio.run(listings())
    finally:
        stop.set()
        swapper.join(30)
    assert seen.get("listed") and seen.get(403), seen  # the race ran both ways


def test_a_listing_has_the_contents_models_fields(tmp_path, monkeypatch):
    """What a sharee's listing shows is what jupyter-server shows the owner, minus hidden
    names: the same fields, types and sizes."""
    from jupyter_server.services.contents.largefilemanager import AsyncLargeFileManager

    from echoes_lab.hub.services.projects import serverext

    (tmp_path / "sub").mkdir()
    (tmp_path / "notes.txt").write_text("four")
    (tmp_path / "nb.ipynb").write_text("{}")
    (tmp_path / ".hidden").write_text("x")
    (tmp_path / "link").symlink_to(tmp_path / "sub")
    monkeypatch.setenv("ECHOES_PROJECTS", str(tmp_path / "projects"))
    manager = serverext._mixed(serverext.CheckedReads, AsyncLargeFileManager)(
        root_dir=str(tmp_path))

    async def both():
        owner = await manager.get("")
        serverext._SHAREE.set(True)
        return owner, await manager.get("")

    owner, sharee = asyncio.run(both())
    by_name = {e["name"]: e for e in owner["content"]}
    assert sorted(by_name) == ["link", "nb.ipynb", "notes.txt", "sub"]
    assert [e["name"] for e in sharee["content"]] == sorted(by_name)
    for entry in sharee["content"]:
        expected = by_name[entry["name"]]
        assert set(entry) == set(expected), entry["name"]
        for key in ("type", "mimetype", "size", "path", "format", "content", "writable"):
            assert entry[key] == expected[key], (entry["name"], key)
    assert set(sharee) == set(owner) and sharee["type"] == "directory"


def test_a_sharees_read_never_repairs_a_notebook(tmp_path, monkeypatch):
    """jupyter-server answers the read of an unreadable notebook by renaming it aside and
    its atomic-write intermediate (``.~NAME``) over it: a read-only sharee's ``GET`` made the
    owner's server write. The sharee now gets the 400; the owner's own read still repairs."""
    from jupyter_server.services.contents.largefilemanager import AsyncLargeFileManager
    from tornado import web

    from echoes_lab.hub.services.projects import serverext

    good = json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5})
    (tmp_path / "x.ipynb").write_text("{not json")
    (tmp_path / ".~x.ipynb").write_text(good)
    monkeypatch.setenv("ECHOES_PROJECTS", str(tmp_path / "projects"))
    manager = serverext._mixed(serverext.CheckedReads, AsyncLargeFileManager)(
        root_dir=str(tmp_path))
    assert manager.use_atomic_writing

    async def read(sharee: bool):
        serverext._SHAREE.set(sharee)
        return await manager.get("x.ipynb")

    with pytest.raises(web.HTTPError) as refusal:
        asyncio.run(read(True))
    assert refusal.value.status_code == 400
    assert sorted(p.name for p in tmp_path.iterdir()) == [".~x.ipynb", "x.ipynb"]
    assert (tmp_path / "x.ipynb").read_text() == "{not json"
    assert asyncio.run(read(False))["content"]["nbformat"] == 4  # the owner's: repaired
    assert not (tmp_path / ".~x.ipynb").exists()
    assert asyncio.run(read(True))["content"]["cells"] == []  # a good notebook reads


@pytest.mark.integration
@pytest.mark.skipif(os.geteuid() != 0, reason="users' accounts need root")
def test_the_owners_extensions_and_kernels_stay_with_the_owner(module_hubs):
    """The owner drops a JupyterLab extension in their data folder: their lab, as any visitor
    gets it, does not load it (an extension of the environment is still loaded). A read-only
    sharee's lab gets empty lists of kernels, sessions and terminals while the owner has a
    kernel; the kernel itself and every other route stay refused."""
    hub = module_hubs(**LEAN, services={"auth_cache_age": 2})
    for user in (OWNER, SHAREE):
        hub.create_user(user)
    hub.start_server(OWNER)
    tokens = {u: hub.api("POST", f"/users/{u}/tokens", json={}).json()["token"]
              for u in (OWNER, SHAREE)}
    r = hub.api("POST", f"/shares/{OWNER}/", token=tokens[OWNER], json={
        "user": SHAREE, "scopes": [f"access:servers!server={OWNER}/", READ_ONLY]})
    assert r.status_code in (200, 201), r.text

    def call(user, method, path, **kw):
        return requests.request(method, f"{hub.url}/user/{OWNER}{path}", timeout=60,
                                allow_redirects=False,
                                headers={"Authorization": f"token {tokens[user]}"}, **kw)

    # the owner's own extension, written from the owner's kernel, as an owner would
    out = hub.execute(OWNER, (
        "import json, os\n"
        f"d = os.path.expanduser('~/.local/share/jupyter/labextensions/{EVIL_EXTENSION}')\n"
        "os.makedirs(d + '/static', exist_ok=True)\n"
        "open(d + '/static/remoteEntry.abc.js', 'w').write('fetch(\"/hub/api/user\")')\n"
        f"json.dump({{'name': {EVIL_EXTENSION!r}, 'version': '1.0.0', 'jupyterlab': "
        "{'_build': {'load': 'static/remoteEntry.abc.js', 'extension': './extension'}}}, "
        "open(d + '/package.json', 'w'))\n"
        # and a kernel of their own whose environment holds a secret
        "k = os.path.expanduser('~/.local/share/jupyter/kernels/r3secret')\n"
        "os.makedirs(k, exist_ok=True)\n"
        "json.dump({'argv': ['python3', '-m', 'ipykernel_launcher', '-f', '{connection_file}'], "
        f"'display_name': 'R3', 'language': 'python', 'env': {{'API_KEY': {SECRET!r}}}}}, "
        "open(k + '/kernel.json', 'w'))\n"))
    assert out["status"] == "ok" and not out["errors"], out
    assert hub.api("DELETE", f"/users/{OWNER}/server").status_code in (202, 204)
    wait_for(lambda: not hub.api("GET", f"/users/{OWNER}").json()["servers"], 60,
             "the owner's server to stop")
    hub.start_server(OWNER)
    page = call(OWNER, "GET", "/lab")
    assert page.status_code == 200, page.text[:300]
    config = json.loads(re.search(r'id="jupyter-config-data"[^>]*>(.*?)</script>', page.text,
                                  re.S)[1])
    loaded = [e["name"] for e in config["federated_extensions"]]
    assert "@jupyter-widgets/jupyterlab-manager" in loaded  # the environment's: loaded
    assert EVIL_EXTENSION not in loaded and EVIL_EXTENSION not in page.text
    assert not any("/homes/" in p for p in config["labextensionsPath"]), config
    assert call(OWNER, "GET", f"/lab/extensions/{EVIL_EXTENSION}/static/remoteEntry.abc.js"
                ).status_code == 404

    kernel = call(OWNER, "POST", "/api/kernels", json={"name": "echoes"}).json()["id"]
    try:
        wait_for(lambda: call(SHAREE, "GET", "/api/contents").status_code == 200, 30,
                 "the share to reach the owner's server")
        for path in ("/api/kernels", "/api/sessions", "/api/terminals"):
            r = call(SHAREE, "GET", path)
            assert (r.status_code, r.json()) == (200, []), (path, r.text[:300])
            assert r.headers["Content-Type"].startswith("application/json")
        assert [k["id"] for k in call(OWNER, "GET", "/api/kernels").json()] == [kernel]
        for method, path in (("GET", f"/api/kernels/{kernel}"), ("HEAD", "/api/kernels"),
                             ("POST", "/api/kernels"), ("POST", "/api/sessions"),
                             ("POST", "/api/terminals"), ("GET", "/api/metrics/v1"),
                             # a kernel's files beside its logos (its env may hold secrets)
                             ("GET", "/kernelspecs/echoes/kernel.json"),
                             ("GET", "/kernelspecs/python3/kernel.json")):
            r = call(SHAREE, method, path, json={} if method == "POST" else None)
            assert r.status_code == 403, (method, path, r.status_code, r.text[:200])
            assert kernel not in r.text
        # the owner's kernels are listed to the sharee, without their environment
        owners = call(OWNER, "GET", "/api/kernelspecs").json()["kernelspecs"]
        assert owners["r3secret"]["spec"]["env"] == {"API_KEY": SECRET}
        for path in ("/api/kernelspecs", "/api/kernelspecs/r3secret"):
            r = call(SHAREE, "GET", path)
            assert r.status_code == 200 and SECRET not in r.text, (path, r.text[:300])
        listed = call(SHAREE, "GET", "/api/kernelspecs").json()["kernelspecs"]
        assert set(listed) == set(owners) and listed["r3secret"]["spec"]["env"] == {}
        assert listed["r3secret"]["resources"] == owners["r3secret"]["resources"]
        logo = call(SHAREE, "GET", "/kernelspecs/python3/logo-64x64.png")
        assert logo.status_code == 200 and logo.content.startswith(b"\x89PNG")
    finally:
        call(OWNER, "DELETE", f"/api/kernels/{kernel}")
