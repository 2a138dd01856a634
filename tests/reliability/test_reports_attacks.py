"""Attacks on the reports service (issue 13, item 3), on a real hub started as root.

The reproduction: while alice POSTs ``api/schedules`` for ``work/race.ipynb``, a process of hers
swaps that path between a real notebook and links to files she may not read (bob's notebook
with a secret in its parameters cell, the hub's secrets) or to a text file that is no notebook.
Before the fix the service validated the notebook as root, so an error reply quoted what root
had read. Now the notebook is read by alice's own named server (as alice), and error replies
never quote a file: no reply may contain any of those files' text.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import requests

from harness import REPO

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
