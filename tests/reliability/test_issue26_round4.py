"""Issue 26, fourth round: an independent attacker's probes against the new main.

* **Voilà's ``/voila/files/`` asked for nobody.** Voilà serves a lab's images with tornado's
  bare ``StaticFileHandler``: no sign-in, no read-only guard (which lives in the identity
  provider that handler never calls), links followed, hidden files served, no
  ``Content-Security-Policy``. Anyone could fetch ``/user/NAME/voila/files/…png`` of any lab —
  through a co-member's link named ``x.png`` that leads to the owner's kernel connection file,
  its key — and an ``.svg`` a co-member put in a project ran its script on the owner's origin
  from one click on ``/hub/user-redirect/voila/files/projects/p2/evil.svg``.
* **An app's path with ``..`` between encoded slashes** (``x%2F..%2Fevil.ipynb``) skipped the
  "someone else's notebook" question and ran a co-member's notebook as the owner.
* **A user's page as their "Dask dashboard"**: the Dask panel's proxy served it on the hub's
  origin without the sandbox ``/proxy/`` pages get.
* **A leaver's hard links**: files he made in the project, hard-linked into his home, stayed
  his to write after removal (access for others, his own group, or an ACL entry).
* **A co-member's module in the project folder** (``ipykernel_launcher.py``, ``numpy.py``)
  ran as whoever started a kernel there.
* Held (kept as a test): a read-only co-member reads nothing hidden of the owner's, by 38
  spellings of the path on every reading route, ``GET`` and ``HEAD``.

Users and projects are named for this module only (Unix accounts are the machine's).
"""

from __future__ import annotations

import contextlib
import json
import os

import pytest
import requests

from harness import lean

OWNER, SHAREE, STRANGER = "rfouann", "rfoucat", "rfoudav"
READ_ONLY = f"custom:echoes-lab:read-only!server={OWNER}/"
LEAN = lean()
PNG = b"\x89PNG\r\n\x1a\n" + b"rfou-owners-private-image"
PROJECT = "r4-shared"
SECRET = "rfou-owners-hidden-secret"
SVG = ('<svg xmlns="http://www.w3.org/2000/svg"><script>'
       'fetch("/hub/api/user")</script><text>rfou-svg</text></svg>')


@pytest.fixture(scope="module")
def hub(module_hubs):
    if os.geteuid() != 0:
        pytest.skip("users' accounts need root")
    hub = module_hubs(**LEAN, services={"auth_cache_age": 2})
    for user in (OWNER, SHAREE, STRANGER):
        hub.create_user(user)
    hub.cli("project", "create", PROJECT, "--members", f"{OWNER},{SHAREE}")
    hub.start_server(OWNER)
    hub.tokens = {u: hub.api("POST", f"/users/{u}/tokens", json={}).json()["token"]
                  for u in (OWNER, SHAREE, STRANGER)}
    r = hub.api("POST", f"/shares/{OWNER}/", token=hub.tokens[OWNER], json={
        "user": SHAREE, "scopes": [f"access:servers!server={OWNER}/", READ_ONLY]})
    assert r.status_code in (200, 201), r.text
    out = hub.execute(OWNER, (
        "import json, os\n"
        f"open(os.path.expanduser('~/pic.png'), 'wb').write({PNG!r})\n"
        f"open(os.path.expanduser('~/pic.svg'), 'w').write({SVG!r})\n"
        f"open(os.path.expanduser('~/.hidden.png'), 'wb').write({PNG!r})\n"
        "os.makedirs(os.path.expanduser('~/.rfou'), exist_ok=True)\n"
        f"open(os.path.expanduser('~/.rfou/secret.txt'), 'w').write({SECRET!r})\n"
        "import nbformat\n"
        "nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("
        f"{f'print({SECRET!r})'!r})])\n"
        "nbformat.write(nb, os.path.expanduser('~/.rfou/nb.ipynb'))\n"
        "print(json.dumps(os.path.expanduser('~')))\n"))
    assert out["status"] == "ok" and not out["errors"], out
    hub.owner_home = json.loads(out["stdout"].strip().splitlines()[-1])
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


def plant(hub, name: str, target: str) -> str:
    """A link the co-member (the sharee) puts in the shared project, as they could."""
    folder = hub.state / "projects" / PROJECT
    link = folder / name
    link.parent.mkdir(parents=True, exist_ok=True)
    if link.is_symlink():
        link.unlink()
    link.symlink_to(target)  # (made by the test, as root: the guard does not trust owners)
    return f"projects/{PROJECT}/{name}"


@pytest.mark.integration
def test_a_read_only_sharee_reads_nothing_hidden_whatever_the_spelling(hub):
    """Held: the read-only sharee, also a co-member of a project of the owner's, asks for the
    owner's hidden ``~/.rfou/secret.txt`` (and a notebook there) by every spelling tried —
    percent-encoded dots and slashes, double slashes, ``;`` parameters, trailing dots, a link
    of theirs in the project to the file or its folder, reached through ``…/checkpoints/``
    (which the guard's pattern splits off the path it checks), through ``/files``, ``/view``,
    ``/nbconvert`` exporters, Voilà's files, with ``?content=1&format=base64&type=file`` and
    ``HEAD`` — and never gets the secret."""
    home = hub.owner_home
    lnk = plant(hub, "lnk", f"{home}/.rfou/secret.txt")
    lnkdir = plant(hub, "lnkdir", f"{home}/.rfou")
    nb = plant(hub, "nb.ipynb", f"{home}/.rfou/nb.ipynb")
    png = plant(hub, "x.png", f"{home}/.rfou/secret.txt")
    ckpt = plant(hub, "checkpoints/lnk", f"{home}/.rfou/secret.txt")
    p = f"projects/{PROJECT}"
    probes = [
        "/api/contents/.rfou/secret.txt", "/api/contents/%2Erfou/secret.txt",
        "/api/contents/%2erfou%2Fsecret.txt", "/api/contents//.rfou/secret.txt",
        "/api/contents/%252Erfou/secret.txt", f"/api/contents/{p}/%2e%2e/%2e%2e/.rfou/secret.txt",
        f"/api/contents/{p}%2F..%2F..%2F.rfou%2Fsecret.txt", "/api/contents/.rfou;/secret.txt",
        "/api/contents/.rfou./secret.txt", f"/api/contents/{lnk}", f"/api/contents/{lnk};x",
        f"/api/contents/{lnk}?content=1&format=base64&type=file", f"/api/contents/{lnkdir}",
        f"/api/contents/{lnkdir}/secret.txt", f"/api/contents/{ckpt}",
        f"/api/contents/{p}/checkpoints/lnk?type=file&format=text",
        f"/api/contents/{nb}", f"/api/contents/{nb}/checkpoints",
        f"/files/{lnk}", f"/files/{lnkdir}/secret.txt", "/files/.rfou/secret.txt",
        "/files/%2Erfou/secret.txt", f"/files/{p}/%2e%2e/%2e%2e/.rfou/secret.txt",
        f"/view/{lnk}", f"/voila/files/{png}", f"/voila/render/{nb}",
        f"/voila/render/{p}/x%2F..%2Fnb.ipynb",
        *(f"/nbconvert/{fmt}/{nb}" for fmt in ("html", "script", "notebook", "markdown",
                                                 "python", "HTML", "webpdf", "latex")),
        f"/nbconvert/html/{nb}?download=true", "/nbconvert/script/.rfou/nb.ipynb",
        f"/lab/tree/{lnk}", f"/api/contents/{ckpt}/checkpoints",
    ]
    leaks = []
    for method in ("GET", "HEAD"):
        for path in probes:
            r = call(hub, SHAREE, method, path)
            if r.status_code < 300 and (SECRET in r.text or (
                    method == "HEAD" and "rfou" in path and "lab/tree" not in path)):
                leaks.append((method, path, r.status_code, r.text[:120]))
            assert SECRET not in r.text, (method, path, r.status_code)
    assert not leaks, leaks
    # the owner, who may, reads the same links (the probes' files are there)
    assert SECRET in call(hub, OWNER, "GET", f"/api/contents/{lnk}").text
    assert SECRET in call(hub, OWNER, "GET", f"/nbconvert/script/{nb}").text


@pytest.mark.integration
def test_an_app_spelled_with_an_encoded_slash_still_asks(hub):
    """A co-member's notebook opened as an app by the owner asks first — also when its path
    hides a ``..`` behind encoded slashes (``x%2F..%2Fevil.ipynb``), which the app check
    skipped as "out of the lab" while the contents manager resolved it inside."""
    folder = hub.state / "projects" / PROJECT
    import nbformat
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "import os; print('rfou-ran-as-' + str(os.getuid()))")])
    nbformat.write(nb, folder / "evil.ipynb")  # any writer: a project's notebooks ask first
    p = f"projects/{PROJECT}"
    for path in (f"{p}/evil.ipynb", f"{p}/x%2F..%2Fevil.ipynb", f"{p}/x%2F%2E%2E%2Fevil.ipynb",
                 f"{p}%2Fevil.ipynb", f"{p}/.%2Fevil.ipynb", f"{p}//evil.ipynb"):
        r = call(hub, OWNER, "GET", f"/voila/render/{path}")
        assert "rfou-ran-as-" not in r.text, (path, r.status_code)
        if r.status_code == 302:  # our page: who wrote it, when; run only if confirmed
            assert "/echoes/app?" in r.headers["Location"], (path, r.headers["Location"])
        else:
            assert r.status_code in (403, 404), (path, r.status_code)
    # confirmed, the app runs (the probe's notebook works)
    page = call(hub, OWNER, "GET", f"/voila/render/{p}/evil.ipynb")
    assert page.status_code == 302
    confirm = call(hub, OWNER, "GET", page.headers["Location"].split(f"/user/{OWNER}", 1)[1])
    assert confirm.status_code == 200 and "echoes_confirm=" in confirm.text, confirm.text[:300]


PLANTED = "import os\nopen(os.environ['HOME'] + '/rfou-planted-{name}', 'w').write('x')\n"


@pytest.mark.integration
def test_a_co_members_module_does_not_stand_in_for_the_kernels_code(hub):
    """A co-member's ``ipykernel_launcher.py`` in the project ran as whoever started a kernel
    there (``python -m`` puts the working folder first on ``sys.path``; before the fix the
    marker was written with the owner's uid), and a ``numpy.py`` there would have run at the
    owner's ``import numpy`` (IPython keeps the folder ahead of ``site-packages``). The kernel
    now starts as ``python -P -m echoes_lab._kernel``, with a folder others can write *last*
    on the path: nothing planted runs, installed modules are the installed ones, and a module
    of the team's own next to the notebook is still imported."""
    import grp
    import pwd

    folder = hub.state / "projects" / PROJECT
    if not hub.api("GET", f"/users/{SHAREE}").json()["servers"]:
        hub.start_server(SHAREE)  # the co-member's account is made with their first server
    member = pwd.getpwnam(f"jupyter-{SHAREE}").pw_uid
    group = grp.getgrnam(f"echoes-p-{PROJECT}").gr_gid
    for name, text in (("ipykernel_launcher", PLANTED.format(name="launcher")),
                       ("numpy", PLANTED.format(name="numpy")),
                       ("rfou_team", "VALUE = 'rfou-team-module'\n")):
        module = folder / f"{name}.py"
        module.write_text(text)
        os.chown(module, member, group)  # as the co-member would have written it
        module.chmod(0o664)
    code = ("import glob, json, os, numpy, rfou_team\n"
            "print(json.dumps([numpy.__file__, rfou_team.VALUE, os.getcwd(),\n"
            "                  glob.glob(os.environ['HOME'] + '/rfou-planted*')]))\n")
    out = hub.execute(OWNER, code, path=f"projects/{PROJECT}")
    assert out["status"] == "ok" and not out["errors"], out
    numpy_file, team, cwd, planted = json.loads(out["stdout"].strip().splitlines()[-1])
    assert "site-packages" in numpy_file, numpy_file
    assert team == "rfou-team-module" and cwd.endswith(PROJECT), (team, cwd)
    assert planted == [], planted


DASK_PAGE = "<html><body><script>document.title='rfou-dask-page'</script>rfou-dask</body></html>"


@pytest.mark.integration
def test_a_users_page_through_the_dask_dashboard_proxy_is_sandboxed(hub):
    """A user's own web page served as their "Dask dashboard": their dask configuration names
    any local address as the cluster's dashboard (``distributed.dashboard.link``), and
    ``/user/NAME/dask/dashboard/ID/…`` proxies it on the hub's origin — the reproduction 3 of
    the issue (a colleague's page acting on your lab) by another proxy than ``/proxy/``, which
    alone was sandboxed. Before the fix: 200, the page, no ``Content-Security-Policy``."""
    from harness import free_port, gone, wait_for

    user, port = STRANGER, free_port()
    hub.start_server(user)
    out = hub.execute(user, (
        "import os\n"
        "os.makedirs(os.path.expanduser('~/.config/dask'), exist_ok=True)\n"
        "open(os.path.expanduser('~/.config/dask/rfou.yaml'), 'w').write(\n"
        f"    'distributed:\\n  dashboard:\\n    link: http://127.0.0.1:{port}/status\\n'\n"
        "    'labextension:\\n  factory:\\n    module: distributed\\n    class: LocalCluster\\n'\n"
        "    '    args: []\\n    kwargs: {processes: false, n_workers: 0}\\n')\n"
        "os.makedirs(os.path.expanduser('~/www'), exist_ok=True)\n"
        f"open(os.path.expanduser('~/www/evil.html'), 'w').write({DASK_PAGE!r})\n"))
    assert out["status"] == "ok" and not out["errors"], out
    # the server reads the dask configuration when it first serves the Dask panel: restart it
    assert hub.api("DELETE", f"/users/{user}/server").status_code in (202, 204)
    wait_for(lambda: not hub.api("GET", f"/users/{user}").json()["servers"], 60,
             "the server to stop")
    hub.start_server(user)
    out = hub.execute(user, (
        "import os, subprocess, sys\n"
        f"p = subprocess.Popen([sys.executable, '-m', 'http.server', '{port}', '--bind', "
        "'127.0.0.1', '--directory', os.path.expanduser('~/www')], start_new_session=True, "
        "stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
        "print(p.pid)\n"))
    assert out["status"] == "ok" and not out["errors"], out
    server_pid = int(out["stdout"].strip().splitlines()[-1])
    headers = {"Authorization": f"token {hub.tokens[user]}"}
    base = f"{hub.url}/user/{user}/dask"
    try:
        r = requests.put(f"{base}/clusters", headers=headers, timeout=120)
        assert r.status_code == 200, r.text[:300]
        cluster = r.json()["id"]
        url = f"{base}/dashboard/{cluster}/evil.html"
        wait_for(lambda: requests.get(url, headers=headers, timeout=30).status_code == 200, 30,
                 "the user's page through the dashboard proxy")
        page = requests.get(url, headers=headers, timeout=30)
        assert "rfou-dask" in page.text  # the probe reaches the user's own page
        policy = page.headers.get("Content-Security-Policy", "")
        assert "sandbox" in policy and "allow-same-origin" not in policy, policy
        requests.delete(f"{base}/clusters/{cluster}", headers=headers, timeout=60)
    finally:
        import psutil
        with contextlib.suppress(psutil.NoSuchProcess):
            psutil.Process(server_pid).kill()
        wait_for(lambda: gone(server_pid), 30, "the probe's web server to end")


KEEP_PROJECT = "r4-keep"
HARDLINKS = """
import json, os, pwd, subprocess
folder, home, make = {folder!r}, os.path.expanduser('~'), {make!r}
me = pwd.getpwuid(os.getuid()).pw_name
keys = {{'other': 'shared.py', 'group': 'grp.txt', 'acl': 'acl.txt'}}
if make:
    for kind, name in keys.items():
        path = os.path.join(folder, name)
        with open(path, 'w') as f:
            f.write('x = 1\\n')
        if kind == 'other':   # readable and writable by anybody who reaches the inode
            os.chmod(path, 0o666)
        elif kind == 'group':  # of his own primary group, not the project's
            os.chown(path, -1, os.getgid()); os.chmod(path, 0o660)
        else:                  # an ACL entry naming him
            subprocess.run(['setfacl', '-m', f'u:{{me}}:rw,o::---', path], check=True)
        # a hard link in his home reaches the inode without the project folder
        os.link(path, os.path.join(home, 'r4-' + name))
result = {{}}
for kind, name in keys.items():
    try:
        with open(os.path.join(home, 'r4-' + name), 'a') as f:
            f.write('# changed by the leaver\\n')
        result[kind] = 'wrote'
    except OSError as exc:
        result[kind] = exc.strerror
print(json.dumps(result))
"""


@pytest.mark.integration
def test_a_leaver_keeps_no_project_file_through_a_hard_link(hub):
    """Reproduction 6 without setgid: while a member, the leaver makes files of his in the
    project readable and writable by others, or of his own group, or names himself in their
    ACL, and hard-links them into his home. Removal gave his inodes to root but kept their
    group, mode and ACL: after ``project remove`` he still wrote the project's files through
    the links (a module the team imports is code he runs as them). Now his inodes become
    ``root:<project group>``, without access for others or ACL entries of their own."""
    folder = hub.state / "projects" / KEEP_PROJECT
    hub.cli("project", "create", KEEP_PROJECT, "--members", f"{OWNER},{STRANGER}")
    from harness import wait_for

    # his server again, now with the project's group
    if hub.api("GET", f"/users/{STRANGER}").json()["servers"]:
        assert hub.api("DELETE", f"/users/{STRANGER}/server").status_code in (202, 204)
        wait_for(lambda: not hub.api("GET", f"/users/{STRANGER}").json()["servers"], 60,
                 "his server to stop")
    hub.start_server(STRANGER)

    def leaver(make: bool) -> dict:
        out = hub.execute(STRANGER, HARDLINKS.format(folder=str(folder), make=make))
        assert out["status"] == "ok" and not out["errors"], out
        return json.loads(out["stdout"].strip().splitlines()[-1])

    assert leaver(True) == {"other": "wrote", "group": "wrote", "acl": "wrote"}
    hub.cli("project", "remove", KEEP_PROJECT, STRANGER)
    wait_for(lambda: (hub.api("GET", f"/users/{STRANGER}").json().get("servers", {})
                      .get("", {}).get("ready")), 120, "his server to run again")
    after = leaver(False)
    assert after == {k: "Permission denied" for k in ("other", "group", "acl")}, after
    # the members (the project's group) still read and write them
    import grp
    gid = grp.getgrnam(f"echoes-p-{KEEP_PROJECT}").gr_gid
    for name in ("shared.py", "grp.txt", "acl.txt"):
        st = os.stat(folder / name)
        assert (st.st_uid, st.st_gid) == (0, gid), name
        assert st.st_mode & 0o060 == 0o060 and not st.st_mode & 0o007, (name, oct(st.st_mode))
