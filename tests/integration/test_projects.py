"""Team projects on a real hub as root: a folder writable by its members only, in every
member's lab as ~/projects/NAME; leaving takes effect at the next server start, files stay;
the project admins' page adds and removes members."""

from __future__ import annotations

import os
import re

import pytest

from harness import lean, login

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="Unix groups per project need a hub run as root"),
]

# only what projects need: the other services cost start-up time on a small machine
LEAN = lean()


def run(hub, user: str, code: str) -> str:
    out = hub.execute(user, code)
    assert out["status"] == "ok" and not out["errors"], (user, out)
    return out["stdout"]


def test_project_folder_is_for_members_only(hub_factory):
    hub = hub_factory(**LEAN)
    out = hub.cli("project", "create", "p1", "--members", "alice,bob", "--admins", "alice")
    assert "writable by its members only" in out
    folder = hub.state / "projects" / "p1"
    st = folder.stat()
    assert oct(st.st_mode & 0o7777) == "0o2770" and st.st_uid == 0
    hub.create_user("carol")
    for user in ("alice", "bob", "carol"):
        hub.start_server(user)

    # bob writes from his kernel, in his lab's ~/projects/p1
    run(hub, "bob", "import os\nopen(os.path.expanduser('~/projects/p1/notes.txt'), 'w')"
                    ".write('bob\\n')")
    # alice edits it from hers
    text = run(hub, "alice", "import os\np = os.path.expanduser('~/projects/p1/notes.txt')\n"
                             "open(p, 'a').write('alice\\n')\nprint(open(p).read(), end='')")
    assert text == "bob\nalice\n"
    # carol has no link and cannot read the file by its real path
    denied = run(hub, "carol", (
        "import os\n"
        f"print(os.path.lexists(os.path.expanduser('~/projects/p1')))\n"
        "try:\n"
        f"    open({str(folder / 'notes.txt')!r}).read(); print('read')\n"
        "except PermissionError:\n"
        "    print('denied')\n"))
    assert denied.split() == ["False", "denied"]

    # bob leaves: his server restarts at once, without the link or the group; files stay
    assert "their access ended now" in hub.cli("project", "remove", "p1", "bob")
    hub.start_server("bob")  # restarted by the removal: this waits until it is ready
    after = run(hub, "bob", (
        "import os\n"
        "print(os.path.lexists(os.path.expanduser('~/projects/p1')))\n"
        "try:\n"
        f"    open({str(folder / 'notes.txt')!r}).read(); print('read')\n"
        "except PermissionError:\n"
        "    print('denied')\n"))
    assert after.split() == ["False", "denied"]
    assert (folder / "notes.txt").read_text() == "bob\nalice\n"
    listed = hub.cli("project", "list")
    assert re.search(r"project p1: members alice; admins alice", listed), listed

    # the project admins' page: alice (admin) adds carol; carol (not an admin) may not
    pw = hub.secrets["user_password"]
    alice = login(hub, "alice", pw)
    page = alice.get(f"{hub.url}/services/projects/", timeout=60)
    assert page.status_code == 200 and 'id="project-p1"' in page.text
    alice_xsrf = xsrf = re.search(r'name="_xsrf" value="([^"]+)"', page.text).group(1)
    r = alice.post(f"{hub.url}/services/projects/", timeout=60,
                   data={"_xsrf": xsrf, "project": "p1", "action": "add", "user": "carol"})
    assert r.status_code == 200 and "carol added to p1" in r.text
    assert "carol" in hub.api("GET", "/groups/project-p1").json()["users"]
    carol = login(hub, "carol", pw)
    page = carol.get(f"{hub.url}/services/projects/", timeout=60)
    assert 'id="project-p1"' in page.text and "Add member" not in page.text
    xsrf = re.search(r'name="_xsrf" value="([^"]+)"', page.text)
    r = carol.post(f"{hub.url}/services/projects/", timeout=60, data={
        "_xsrf": xsrf.group(1) if xsrf else "", "project": "p1", "action": "remove",
        "user": "alice"})
    assert r.status_code == 403
    assert "alice" in hub.api("GET", "/groups/project-p1").json()["users"]

    # alice removes carol on the page: at once, as the command does (carol's server restarts)
    before = hub.api("GET", "/users/carol").json()["servers"][""]["started"]
    r = alice.post(f"{hub.url}/services/projects/", timeout=240, data={
        "_xsrf": alice_xsrf, "project": "p1", "action": "remove", "user": "carol"})
    assert r.status_code == 200 and "their access ended now" in r.text, r.text[-2000:]
    assert "carol" not in hub.api("GET", "/groups/project-p1").json()["users"]
    assert hub.start_server("carol")["servers"][""]["started"] != before
