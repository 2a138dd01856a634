"""The reports service end to end on a real hub: a scheduled report runs in the owner's named
server, started through the hub's REST API while the owner is logged out; their default server
is untouched; the service runs without root, yet the outputs belong to the owner.

Time is advanced through the service's ``utcnow`` seam (``<state>/reports/clock-offset``), not
waited for.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from datetime import UTC, datetime
from pathlib import Path

import nbformat
import psutil
import pytest
import requests

from echoes_lab.runs.provenance import read_crate, validate_crate

from harness import REPO, gone, login, wait_for

pytestmark = pytest.mark.integration

RUNS = REPO / "tests" / "data" / "runs"


def processes(hub, marker: str, **env) -> list[psutil.Process]:
    """The hub's descendants whose command line holds ``marker`` (and whose env matches)."""
    found = []
    for p in psutil.Process(hub.proc.pid).children(recursive=True):
        try:
            if marker in " ".join(p.cmdline()) and all(
                p.environ().get(k) == v for k, v in env.items()
            ):
                found.append(p)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return found


def upload(hub, user: str, path: str, notebook: Path) -> None:
    """Put a notebook into the user's home through their server's contents API (as them)."""
    token = hub.api(
        "POST", f"/users/{user}/tokens", json={"scopes": [f"access:servers!user={user}"]}
    ).json()["token"]
    headers = {"Authorization": f"token {token}"}
    base = f"{hub.url}/user/{user}/api/contents"
    folder = path.rsplit("/", 1)[0]
    requests.put(f"{base}/{folder}", json={"type": "directory"}, headers=headers, timeout=30)
    r = requests.put(
        f"{base}/{path}",
        headers=headers,
        timeout=30,
        json={"type": "notebook", "format": "json", "content": json.loads(notebook.read_text())},
    )
    assert r.status_code in (200, 201), r.text


def test_a_scheduled_report_runs_in_the_owners_named_server(hub_factory):
    hub = hub_factory(
        reports={"retries": 0, "server_linger": 5},
        data={"install_demo": True, "fetch": []},
        gateway={"enabled": False},
        workshops={"enabled": False},
        commons={"enabled": False},
    )
    api = f"{hub.url}/services/reports/api"

    def token_for(user: str) -> dict:
        r = hub.api(
            "POST",
            f"/users/{user}/tokens",
            json={"scopes": ["access:services!service=reports"], "note": "reports"},
        )
        assert r.status_code == 201, r.text
        return {"Authorization": f"token {r.json()['token']}"}

    for name in ("alice", "bob"):
        hub.create_user(name)
    alice, bob = token_for("alice"), token_for("bob")

    # alice's default server runs (she works in her lab) and holds her notebooks
    hub.start_server("alice")
    default_pid = processes(
        hub, "echoes_lab.hub.singleuser", JUPYTERHUB_USER="alice", JUPYTERHUB_SERVER_NAME=""
    )[0].pid
    upload(hub, "alice", "work/report.ipynb", RUNS / "report.ipynb")
    upload(hub, "alice", "work/fails.ipynb", RUNS / "fails.ipynb")

    # checks when saving: read as alice by her 'reports' server; bad input is a clear 400
    def post(body, headers=alice):
        return requests.post(f"{api}/schedules", headers=headers, json=body, timeout=60)

    nb = "work/report.ipynb"
    r = post({"notebook": nb, "cron": "0 6 * * *", "parameters": {"scael": 2}})
    assert r.status_code == 400 and "scale (float)" in r.json()["message"], r.text
    r = post({"notebook": nb, "cron": "0 0 31 2 *"})
    assert r.status_code == 400 and "never fires" in r.json()["message"]
    r = post({"notebook": nb, "cron": "* * * * * *"})
    assert r.status_code == 400 and "min_interval" in r.json()["message"]
    r = post({"notebook": nb, "cron": "0 6 * * *", "parameters": {"label": "x" * 20000}})
    assert r.status_code == 400 and "max_parameter_bytes" in r.json()["message"]
    r = post({"notebook": "work/absent.ipynb", "cron": "0 6 * * *"})
    assert r.status_code == 400 and "no such notebook" in r.text, r.text
    assert post({"notebook": "../bob/x.ipynb", "cron": "0 6 * * *"}).status_code == 400
    cron = requests.get(f"{api}/cron", params={"expr": "0 6 1 * *"}, headers=alice, timeout=30)
    assert cron.json()["description"] == "At 06:00, on day 1 of the month (UTC)"
    assert len(cron.json()["next"]) == 3
    assert "work/report.ipynb" in requests.get(f"{api}/notebooks", headers=alice, timeout=60).json()

    colour = post(
        {
            "name": "colour G3",
            "notebook": nb,
            "cron": "0 6 * * *",
            "parameters": {"scale": 2, "label": "G3"},
        }
    ).json()
    broken = post({"name": "broken", "notebook": "work/fails.ipynb", "cron": "0 6 * * *"}).json()

    # the page (hub OAuth, template in the hub's look), then alice signs out
    browser = login(hub, "alice", hub.secrets["user_password"])
    page = browser.get(f"{hub.url}/services/reports/", timeout=60)
    assert page.status_code == 200 and "colour G3" in page.text and "jpy-logo" in page.text
    xsrf = re.search(r'<meta name="xsrf" content="([^"]+)"', page.text).group(1)
    assert xsrf
    browser.get(f"{hub.url}/hub/logout", timeout=30)

    # 06:00 comes: the service's clock jumps there instead of the test waiting
    due = datetime.fromisoformat(colour["next_run"])
    offset = (due - datetime.now(UTC)).total_seconds() + 1
    (hub.state / "reports" / "clock-offset").write_text(str(offset))

    def history(sid):
        return requests.get(f"{api}/schedules/{sid}", headers=alice, timeout=30).json()["runs"]

    def settled(sid):
        runs = history(sid)
        return runs if runs and runs[0]["status"] in ("completed", "failed") else None

    [run] = wait_for(lambda: settled(colour["id"]), 120, "the scheduled run", interval=1)
    [fail] = wait_for(lambda: settled(broken["id"]), 60, "the failing run", interval=1)
    assert run["status"] == "completed" and run["trigger"] == "schedule", run["error"]
    assert fail["status"] == "failed" and "ZeroDivisionError" in fail["error"]

    # the named server is stopped after the batch; the default one never noticed
    try:
        wait_for(
            lambda: "reports" not in hub.api("GET", "/users/alice").json()["servers"],
            120,
            "the 'reports' server to stop",
        )
    except TimeoutError:
        said = [ln for ln in hub.log_tail(400).splitlines() if "reports" in ln]
        raise AssertionError("\n".join(said[-30:])) from None
    assert not gone(default_pid)
    assert (
        processes(
            hub, "echoes_lab.hub.singleuser", JUPYTERHUB_USER="alice", JUPYTERHUB_SERVER_NAME=""
        )[0].pid
        == default_pid
    )

    # the service is not root, the outputs are alice's, the crate is valid
    [service] = processes(hub, "echoes_lab.hub.services.reports")
    home = hub.state / "homes" / "alice"
    out = home / run["output_dir"]
    if os.geteuid() == 0:
        assert service.uids().real != 0 and service.uids().effective != 0
        for f in ("report.ipynb", "report.html", "ro-crate-metadata.json"):
            assert (out / f).owner() == "jupyter-alice"
    assert validate_crate(out) == []
    crate = read_crate(out)
    assert crate["status"] == "completed" and crate["parameters"] == {"scale": 2.0, "label": "G3"}
    shared = hub.state / "shared" / "colour" / "fading-spectra.csv"
    assert (
        crate["inputs"][0]["files"][0]["sha256"] == hashlib.sha256(shared.read_bytes()).hexdigest()
    )
    html = requests.get(f"{hub.url}{run['links']['html']}", headers=alice, timeout=60)
    assert html.status_code == 200 and "G3: RESULT" in html.text
    nb_text = requests.get(f"{hub.url}{run['links']['notebook']}", headers=alice, timeout=60).text
    assert "G3: RESULT" in json.dumps(nbformat.reads(nb_text, as_version=4))
    assert "before the failure" in (home / fail["output_dir"] / "fails.ipynb").read_text()

    # bob sees nothing of alice's; deleting the schedule leaves the files
    sid, rid = colour["id"], run["id"]
    assert requests.get(f"{api}/schedules", headers=bob, timeout=30).json() == []
    for method, path in [
        ("GET", f"/schedules/{sid}"),
        ("DELETE", f"/schedules/{sid}"),
        ("GET", f"/runs/{rid}/files/html"),
        ("POST", "/users/alice/disable"),
    ]:
        r = requests.request(method, f"{api}{path}", headers=bob, json={}, timeout=30)
        assert r.status_code in (403, 404), (method, path, r.status_code)
    assert requests.delete(f"{api}/schedules/{sid}", headers=alice, timeout=30).status_code == 204
    assert (out / "report.html").is_file()
    # an admin (hub_config: auth.admins) pauses all of a user's schedules; pausing reads no file
    r = requests.post(f"{api}/users/alice/disable", headers=token_for("admin"), json={}, timeout=30)
    assert r.status_code == 200 and r.json() == {"user": "alice", "disabled": 1}
    r = requests.patch(
        f"{api}/schedules/{broken['id']}", headers=alice, json={"enabled": False}, timeout=30
    )
    assert r.status_code == 200 and r.json()["enabled"] is False
