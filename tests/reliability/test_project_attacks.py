"""Leavers cannot keep a project (issue 26, reproduction 6), on a real hub started as root.

While still a member of p1, bob copies bash into the project with the setgid bit
(``cp /bin/bash p1/.gsh; chmod 2755 p1/.gsh``), hard-links it into his home and leaves a
detached process behind. Before the fix, after ``echoes-lab project remove p1 bob``, a restart
and ``project archive p1``, ``~/.gsh -p -c 'echo x > p1/…'`` still wrote as the project's
group. Now removal strips the bits from the inode (so from the hard link too), takes bob's
files from him, kills what still holds the group and restarts his server without it; archive
leaves the folder read-only to everybody.
"""

from __future__ import annotations

import json
import os
import stat

import pytest

from harness import gone, lean, wait_for

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="Unix groups per project need a hub run as root"),
]

P1 = "p1-leavers"  # the p1
LEAN = lean()


def run(hub, user: str, code: str) -> dict:
    out = hub.execute(user, code)
    assert out["status"] == "ok" and not out["errors"], (user, out)
    return json.loads(out["stdout"].strip().splitlines()[-1])


def server_started(hub, user: str) -> str | None:
    """When the user's default server started, if it is ready (a restart changes it)."""
    server = hub.api("GET", f"/users/{user}").json().get("servers", {}).get("")
    return server["started"] if server and server.get("ready") else None


SHELL = """
import json, os, subprocess
home = os.path.expanduser("~")
def gsh(command):
    try:
        done = subprocess.run([os.path.join(home, ".gsh"), "-p", "-c", command],
                              capture_output=True, text=True, timeout=30)
    except PermissionError as exc:  # his inode became root's, no access for others
        return 126, exc.strerror
    return done.returncode, done.stderr.strip()[-200:]
"""


def test_a_removed_member_keeps_no_setgid_shell_file_or_process(hub_factory):
    hub = hub_factory(**LEAN)
    # Unix groups are the machine's: a name no other test uses, as archive kills whatever
    # holds the group (other hubs' tests run beside this one)
    hub.cli("project", "create", P1, "--members", "alice,bob", "--admins", "alice")
    folder = hub.state / "projects" / P1
    for user in ("alice", "bob"):
        hub.start_server(user)

    # bob, still a member: a setgid copy of bash in the project, hard-linked into his home;
    # a file of his own there, also hard-linked; a detached process holding the group
    before = run(hub, "bob", SHELL + f"""
p1 = {str(folder)!r}
subprocess.run(["cp", "/bin/bash", p1 + "/.gsh"], check=True)
os.chmod(p1 + "/.gsh", 0o2755)
os.link(p1 + "/.gsh", home + "/.gsh")
open(p1 + "/bob.txt", "w").write("bob's\\n")
os.link(p1 + "/bob.txt", home + "/bob-link.txt")
sleeper = subprocess.Popen(["sleep", "600"], start_new_session=True)
print(json.dumps({{"write": gsh("id -Gn; echo x > " + p1 + "/via-gsh"), "sleeper": sleeper.pid}}))
""")
    # the attack works while bob is a member (else this test would prove nothing)
    assert before["write"][0] == 0, before
    assert (folder / "via-gsh").read_text() == "x\n"
    sleeper = before["sleeper"]
    assert not gone(sleeper)
    bob_started = server_started(hub, "bob")

    out = hub.cli("project", "remove", P1, "bob")
    assert "their access ended now" in out, out

    # at once: the detached process is gone, bob's server runs again (a new process)
    wait_for(lambda: gone(sleeper), 30, "bob's detached process to be killed")
    new_server = wait_for(lambda: server_started(hub, "bob"), 120, "bob's server to run again")
    assert new_server != bob_started
    # the inode lost setgid and bob: the hard link in his home is root's, without the bit
    gsh = os.stat(hub.state / "homes" / "bob" / ".gsh")
    assert not gsh.st_mode & (stat.S_ISGID | stat.S_ISUID) and gsh.st_uid == 0, oct(gsh.st_mode)
    assert os.stat(folder / "bob.txt").st_uid == 0

    after = run(hub, "bob", SHELL + f"""
p1 = {str(folder)!r}
try:
    open(home + "/bob-link.txt", "a").write("still here\\n")
    kept = "wrote"
except PermissionError:
    kept = "denied"
print(json.dumps({{"write": gsh("echo x > " + p1 + "/after"), "list": gsh("ls " + p1),
                   "groups": os.getgroups(), "link": kept}}))
""")
    assert after["write"][0] != 0 and after["list"][0] != 0, after
    assert "Permission denied" in after["write"][1], after
    assert after["link"] == "denied"
    assert not (folder / "after").exists()
    assert (folder / "bob.txt").read_text() == "bob's\n"  # the files stay
    p1_gid = int(hub.api("GET", f"/groups/project-{P1}").json()["properties"]["gid"])
    assert p1_gid not in after["groups"]

    # alice, still a member, keeps writing (the group and ACLs are untouched)
    kept = run(hub, "alice", f"""
import json
open({str(folder / 'alice.txt')!r}, "w").write("a")
print(json.dumps(open({str(folder / 'bob.txt')!r}).read()))
""")
    assert kept == "bob's\n"

    # archive: alice's server restarts without the group; the folder is read-only to all
    alice_started = server_started(hub, "alice")
    out = hub.cli("project", "archive", P1)
    assert "read-only" in out
    wait_for(lambda: server_started(hub, "alice") not in (None, alice_started), 120,
             "alice's server to run again")
    assert stat.S_IMODE(folder.stat().st_mode) == 0o2550
    for path in [folder, *folder.rglob("*")]:
        st = path.lstat()
        assert not st.st_mode & 0o222, (path, oct(st.st_mode))
        assert not (stat.S_ISREG(st.st_mode) and st.st_mode & 0o6000), path
    denied = run(hub, "alice", f"""
import json
try:
    open({str(folder / 'alice.txt')!r}, "a").write("b"); print(json.dumps("wrote"))
except PermissionError:
    print(json.dumps("denied"))
""")
    assert denied == "denied"
