"""Attacks on the reports service (issue 13, item 3; issue 26, item 5), on a real hub
started as root.

The reproduction: while alice POSTs ``api/schedules`` for ``work/race.ipynb``, a process of hers
swaps that path between a real notebook and links to files she may not read (bob's notebook
with a secret in its parameters cell, the hub's secrets) or to a text file that is no notebook.
Before the fix the service validated the notebook as root, so an error reply quoted what root
had read. Now the notebook is read by alice's own named server (as alice), and error replies
never quote a file: no reply may contain any of those files' text.
"""

from __future__ import annotations

import hashlib
import json
import os
import pwd
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests

from harness import REPO, sign_in

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="users' accounts need root"),
]

SWAPPER = """
import os, time
work = os.path.join(os.path.expanduser("~"), "work")
targets = {targets!r}
real = os.path.join(work, "real.ipynb")
end = time.time() + 60
i = 0
while time.time() < end:
    tmp = os.path.join(work, ".race.tmp")
    try:
        os.unlink(tmp)
    except FileNotFoundError:
        pass
    os.symlink(targets[(i // 2) % len(targets)] if i % 2 else real, tmp)
    os.replace(tmp, os.path.join(work, "race.ipynb"))
    i += 1
    time.sleep(0.0005)
"""


def test_swapping_links_while_saving_a_schedule_reveals_nothing(hub_factory):
    hub = hub_factory(
        data={"install_demo": False, "fetch": []},
        gateway={"enabled": False},
        workshops={"enabled": False},
        commons={"enabled": False},
        projects={"enabled": False},
        reports={"server_linger": 30},
    )
    own = {}
    for name in ("alice", "bob"):
        hub.create_user(name)
        hub.start_server(name)
        token = hub.api(
            "POST", f"/users/{name}/tokens", json={"scopes": [f"access:servers!user={name}"]}
        ).json()["token"]
        own[name] = {"Authorization": f"token {token}"}

    report = json.loads((REPO / "tests/data/runs/report.ipynb").read_text())
    secret_nb = json.loads(json.dumps(report))
    secret_nb["cells"][1]["source"] = ['api_key = "BOB-SECRET-PARAM-7f3a"\n']
    for user, path, body in [
        ("bob", "secret.ipynb", secret_nb),
        ("alice", "work/real.ipynb", report),
    ]:
        requests.put(
            f"{hub.url}/user/{user}/api/contents/work",
            json={"type": "directory"},
            headers=own[user],
            timeout=30,
        )
        r = requests.put(
            f"{hub.url}/user/{user}/api/contents/{path}",
            headers=own[user],
            timeout=30,
            json={"type": "notebook", "format": "json", "content": body},
        )
        assert r.status_code in (200, 201), r.text
    # a file alice may read that is no notebook: its text must not come back either
    r = requests.put(
        f"{hub.url}/user/alice/api/contents/work/notes.txt",
        headers=own["alice"],
        timeout=30,
        json={"type": "file", "format": "text", "content": '{"cells": "ALICE-MARKER-LINE-91c2"'},
    )
    assert r.status_code in (200, 201), r.text

    homes = hub.state / "homes"
    secrets = hub.secrets
    targets = [
        str(homes / "bob" / "secret.ipynb"),
        str(hub.state / "secrets.json"),
        str(homes / "alice" / "work" / "notes.txt"),
    ]
    forbidden = [
        "BOB-SECRET-PARAM-7f3a",
        "ALICE-MARKER-LINE-91c2",
        secrets["admin_password"],
        secrets["user_password"],
        secrets["api_tokens"]["echoes-cli"][:16],
    ]

    token = hub.api(
        "POST", "/users/alice/tokens", json={"scopes": ["access:services!service=reports"]}
    ).json()["token"]
    alice = {"Authorization": f"token {token}"}
    api = f"{hub.url}/services/reports/api/schedules"
    # alice's server is up already: her named 'reports' server starts for the first check
    first = requests.post(
        api,
        headers=alice,
        timeout=120,
        json={"notebook": "work/real.ipynb", "cron": "0 6 * * *", "parameters": {"scale": 2}},
    )
    assert first.status_code == 201, first.text

    # alice's own process (her account, her home) swaps the path as fast as it can
    swapper = subprocess.Popen(
        [sys.executable, "-c", SWAPPER.replace("{targets!r}", repr(targets))],
        user="jupyter-alice",
        group="jupyter-alice",
        env={"HOME": str(homes / "alice")},
        cwd=homes / "alice",
    )
    try:
        replies = []
        for _ in range(30):
            r = requests.post(
                api,
                headers=alice,
                timeout=60,
                json={
                    "notebook": "work/race.ipynb",
                    "cron": "0 6 * * *",
                    "parameters": {"scale": 3},
                },
            )
            replies.append((r.status_code, r.text))
        assert swapper.poll() is None  # it swapped during every request
    finally:
        swapper.kill()
        swapper.wait(10)

    codes = {c for c, _ in replies}
    assert codes <= {201, 400}, replies
    assert 400 in codes  # the links were met, and refused
    for code, text in replies:
        for secret in forbidden:
            assert secret not in text, (code, text)
    # what was saved is alice's real notebook's parameters, never bob's
    for s in requests.get(api, headers=alice, timeout=30).json():
        assert set(s["parameters"]) <= {"scale", "label", "dataset"}


# -- issue 26, reproduction 7: running someone else's notebook says so ------------------------

NOTEBOOK = """
import json, os
import nbformat
nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell({code!r})])
path = os.path.expanduser({path!r})
nbformat.write(nb, path)
print(json.dumps(path))
"""


def pwned(marker: str) -> str:
    # what "evil" code does when it runs: leaves a mark in the home of whoever runs it
    return (f"import os\nopen(os.path.expanduser('~/{marker}'), 'w').write(str(os.getuid()))\n")


@pytest.mark.browser
def test_another_members_notebook_never_runs_silently_as_you(hub_factory):
    """carol's notebook in p2: saving a schedule of it, or "Run now", shows carol as its author
    and asks alice first; a co-member's change to alice's scheduled notebook is refused at the
    next fire (recorded, with the reason, on the page) until alice confirms the new content;
    the picker does not follow a co-member's link out of the projects."""
    import tempfile

    from playwright.sync_api import sync_playwright

    from harness import CHROMIUM, CHROMIUM_FLAGS, lean, wait_for

    # only projects and reports: the other services cost start-up time
    hub = hub_factory(**lean("reports"), reports={"retries": 0, "server_linger": 60})
    hub.cli("project", "create", "p2", "--members", "alice,carol")
    for name in ("alice", "carol"):
        hub.start_server(name)

    def as_user(user, code):
        out = hub.execute(user, code)
        assert out["status"] == "ok" and not out["errors"], (user, out)
        return json.loads(out["stdout"].strip().splitlines()[-1])

    home = hub.state / "homes" / "alice"
    as_user("carol", NOTEBOOK.format(code=pwned("pwned-evil"), path="~/projects/p2/evil.ipynb"))
    as_user("alice", NOTEBOOK.format(code="print('alice')", path="~/projects/p2/mine.ipynb"))
    # carol's link in the project to a folder of hers outside it, readable by alice
    outside = Path(tempfile.mkdtemp(prefix="echoes-carol-"))
    os.chmod(outside, 0o755)
    try:
        os.chown(outside, *(lambda e: (e.pw_uid, e.pw_gid))(pwd.getpwnam("jupyter-carol")))
        as_user("carol", NOTEBOOK.format(code=pwned("pwned-link"), path=f"{outside}/far.ipynb")
                + f"os.symlink({str(outside)!r}, os.path.expanduser('~/projects/p2/far'))\n")

        token = hub.api("POST", "/users/alice/tokens",
                        json={"scopes": ["access:services!service=reports"]}).json()["token"]
        alice = {"Authorization": f"token {token}"}
        api = f"{hub.url}/services/reports/api"

        def post(path, body):
            return requests.post(f"{api}/{path}", headers=alice, json=body, timeout=120)

        listed = requests.get(f"{api}/notebooks", headers=alice, params={"details": 1},
                              timeout=120).json()
        by_path = {n["path"]: n for n in listed}
        assert by_path["projects/p2/evil.ipynb"]["author"] == "carol", listed
        assert by_path["projects/p2/mine.ipynb"]["mine"] is True
        assert not [p for p in by_path if "far" in p], listed
        r = post("schedules", {"notebook": "projects/p2/far/far.ipynb", "cron": "0 6 * * *"})
        # refused by the owner's server (a link out of the lab) or by the check in it
        assert r.status_code == 400 and ("leads out of your home" in r.json()["message"]
                                         or "HTTP 403" in r.json()["message"]), r.text

        # carol's notebook: 409 naming carol and when; nothing ran
        evil = hub.state / "projects" / "p2" / "evil.ipynb"
        r = post("schedules", {"notebook": "projects/p2/evil.ipynb", "cron": "0 6 * * *",
                               "enabled": False})
        assert r.status_code == 409, r.text
        asked = r.json()
        assert "written by carol" in asked["message"], asked
        assert asked["confirm"]["sha256"] == hashlib.sha256(evil.read_bytes()).hexdigest()
        assert asked["confirm"]["author"] == "carol" and asked["confirm"]["modified"]
        r = post("schedules", {"notebook": "projects/p2/evil.ipynb", "cron": "0 6 * * *",
                               "enabled": False, "confirm": "0" * 64})
        assert r.status_code == 409
        r = post("schedules", {"notebook": "projects/p2/evil.ipynb", "cron": "0 6 * * *",
                               "enabled": False, "confirm": asked["confirm"]["sha256"]})
        assert r.status_code == 201 and r.json()["author"] == "carol", r.text

        # alice's own notebook in p2, scheduled (pinned), then changed by carol
        mine = post("schedules", {"notebook": "projects/p2/mine.ipynb", "cron": "0 6 * * *"})
        assert mine.status_code == 201, mine.text
        mine = mine.json()
        assert mine["author"] == "alice" and len(mine["sha256"]) == 64
        # carol replaces it with a notebook of hers (the folder is the members'): now it is
        # carol's notebook that alice's "Run now" would run
        as_user("carol", "import os\nos.unlink(os.path.expanduser('~/projects/p2/mine.ipynb'))\n"
                + NOTEBOOK.format(code=pwned("pwned-mine"), path="~/projects/p2/mine.ipynb"))
        changed = hashlib.sha256((hub.state / "projects/p2/mine.ipynb").read_bytes()).hexdigest()
        r = post(f"schedules/{mine['id']}/run", {})
        assert r.status_code == 409, r.text
        assert "changed since you confirmed it (file owner carol" in r.json()["message"]
        assert r.json()["confirm"]["sha256"] == changed

        # 06:00 comes: the run is refused, recorded with its reason; nothing ran
        due = datetime.fromisoformat(mine["next_run"])
        offset = (due - datetime.now(UTC)).total_seconds() + 1
        (hub.state / "reports" / "clock-offset").write_text(str(offset))

        def settled():
            runs = requests.get(f"{api}/schedules/{mine['id']}", headers=alice,
                                timeout=30).json()["runs"]
            return runs if runs and runs[0]["status"] not in ("queued", "running") else None

        [run] = wait_for(settled, 120, "the scheduled run", interval=1)
        assert run["status"] == "refused", run
        assert "changed since you confirmed" in run["error"] and "nothing ran" in run["error"]
        assert "file owner carol" in run["error"]
        assert not (home / "pwned-mine").exists() and not (home / "pwned-evil").exists()
        sch = requests.get(f"{api}/schedules/{mine['id']}", headers=alice, timeout=30).json()
        assert sch["seen"]["sha256"] == changed and sch["sha256"] == mine["sha256"]

        # the page, in a browser: the picker says whose notebook it is; saving carol's asks
        # first (declined: nothing saved); the changed notebook waits for "Confirm new content"
        count = len(requests.get(f"{api}/schedules", headers=alice, timeout=30).json())
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                         args=CHROMIUM_FLAGS)
            try:
                page = browser.new_page()
                errors, dialogs = [], []
                page.on("pageerror", lambda exc: errors.append(str(exc)))
                page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
                sign_in(page, hub, "alice", "/services/reports/")
                page.wait_for_url("**/services/reports/**", timeout=120_000)
                assert "refused" in page.inner_text("#schedules")
                option = "#notebook option[value='projects/p2/evil.ipynb']"
                page.wait_for_selector(option, state="attached", timeout=120_000)
                assert page.inner_text(option).endswith("(by carol)")
                page.select_option("#notebook", value="projects/p2/evil.ipynb")
                page.click("#new-schedule button[type=submit]")
                page.wait_for_function("document.getElementById('msg').textContent.length > 0",
                                       timeout=120_000)
                assert dialogs and "written by carol" in dialogs[0], dialogs
                assert "written by carol" in page.inner_text("#msg")
                button = f"[data-confirm='{mine['id']}']"
                assert page.get_attribute(button, "data-sha") == changed
                # alice reads it and confirms: now it runs (as alice, who chose to)
                page.click(button)
                page.wait_for_selector(button, state="detached", timeout=120_000)
                assert not errors, errors
            finally:
                browser.close()
        assert len(requests.get(f"{api}/schedules", headers=alice, timeout=30).json()) == count
        sch = requests.get(f"{api}/schedules/{mine['id']}", headers=alice, timeout=30).json()
        assert sch["sha256"] == changed and not sch["seen"]
        r = post(f"schedules/{mine['id']}/run", {})
        assert r.status_code == 202, r.text
        wait_for(lambda: (settled() or [{}])[0].get("trigger") == "manual", 120, "the run")
        assert settled()[0]["status"] == "completed", settled()[0]
        assert (home / "pwned-mine").read_text() == str(pwd.getpwnam("jupyter-alice").pw_uid)
        assert not (home / "pwned-evil").exists()
    finally:
        shutil.rmtree(outside, ignore_errors=True)
