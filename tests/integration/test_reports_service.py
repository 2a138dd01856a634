"""The reports service end to end: a real hub, hub OAuth and tokens, real scheduled Papermill runs
as the owner while they are logged out, a service restart, failures with retries, isolation."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
from pathlib import Path

import nbformat
import psutil
import pytest
import requests

from echoes_lab.runs.provenance import read_crate, validate_crate
from harness import REPO, login, wait_for

pytestmark = pytest.mark.integration

RUNS = REPO / "tests" / "data" / "runs"


def service_pid(hub) -> int | None:
    for p in psutil.Process(hub.proc.pid).children(recursive=True):
        try:
            if "echoes_lab.hub.services.reports" in p.cmdline():
                return p.pid
        except psutil.NoSuchProcess:
            pass
    return None


def upload(hub, user: str, path: str, notebook: Path) -> None:
    """Put a notebook into the user's home through their server's contents API."""
    headers = {"Authorization": f"token {hub.token}"}
    base = f"{hub.url}/user/{user}/api/contents"
    folder = path.rsplit("/", 1)[0]
    requests.put(f"{base}/{folder}", json={"type": "directory"}, headers=headers, timeout=30)
    r = requests.put(f"{base}/{path}", headers=headers, timeout=30, json={
        "type": "notebook", "format": "json", "content": json.loads(notebook.read_text())})
    assert r.status_code in (200, 201), r.text


def test_scheduled_reports_run_as_the_owner_while_away(hub_factory):
    # the other services are not needed here (and cost CPU on a small machine)
    hub = hub_factory(reports={"retries": 1, "retry_backoff": 2}, data={"install_demo": True},
                      gateway={"enabled": False}, workshops={"enabled": False})
    api = f"{hub.url}/services/reports/api"
    secrets = hub.secrets

    def token_for(user: str) -> dict:
        r = hub.api("POST", f"/users/{user}/tokens",
                    json={"scopes": ["access:services!service=reports"], "note": "reports script"})
        assert r.status_code == 201, r.text
        return {"Authorization": f"token {r.json()['token']}"}

    hub.create_user("alice")
    hub.create_user("bob")
    hub.create_user("admin", admin=True)
    alice, bob, admin = token_for("alice"), token_for("bob"), token_for("admin")

    # alice works in her lab once: her notebooks live in her home; then she stops and signs out
    browser = login(hub, "alice", secrets["user_password"])
    hub.start_server("alice")
    upload(hub, "alice", "work/report.ipynb", RUNS / "report.ipynb")
    upload(hub, "alice", "work/fails.ipynb", RUNS / "fails.ipynb")

    # parameters are checked when the schedule is saved
    bad = requests.post(f"{api}/schedules", headers=alice, timeout=30, json={
        "notebook": "work/report.ipynb", "cron": "* * * * *", "parameters": {"scael": 2}})
    assert bad.status_code == 400 and "scale (float, default 1.0)" in bad.json()["message"]
    assert requests.post(f"{api}/schedules", headers=alice, timeout=30, json={
        "notebook": "work/report.ipynb", "cron": "every minute"}).status_code == 400

    r = requests.post(f"{api}/schedules", headers=alice, timeout=30, json={
        "name": "colour G3", "notebook": "work/report.ipynb", "cron": "* * * * *",
        "parameters": {"scale": 2, "label": "G3"}})
    assert r.status_code == 201, r.text
    colour = r.json()
    r = requests.post(f"{api}/schedules", headers=alice, timeout=30, json={
        "name": "broken", "notebook": "work/fails.ipynb", "cron": "0 0 1 1 *"})
    broken = r.json()

    # the service's page through hub OAuth, linked from the hub's home page; its "Run now"
    # button on the failing notebook (cookie + XSRF token): kept as failed, retried once
    assert "/services/reports/" in browser.get(f"{hub.url}/hub/home", timeout=30).text
    page = browser.get(f"{hub.url}/services/reports/", timeout=60)
    assert page.status_code == 200 and "Scheduled reports" in page.text and "colour G3" in page.text
    xsrf = re.search(r'<meta name="xsrf" content="([^"]+)"', page.text).group(1)
    assert browser.post(f"{api}/schedules/{broken['id']}/run", timeout=30).status_code == 403
    now = browser.post(f"{api}/schedules/{broken['id']}/run", headers={"X-XSRFToken": xsrf}, timeout=30)
    assert now.status_code == 202, now.text

    hub.api("DELETE", "/users/alice/server")
    wait_for(lambda: not hub.api("GET", "/users/alice").json()["servers"], 60, "alice's server to stop")
    browser.get(f"{hub.url}/hub/logout", timeout=30)
    assert browser.get(f"{hub.url}/hub/api/user", timeout=30).status_code == 403

    def history(sid):
        return requests.get(f"{api}/schedules/{sid}", headers=alice, timeout=30).json()["runs"]

    def completed(sid):
        return [r for r in history(sid) if r["status"] == "completed"]

    # the first scheduled run; then the service is killed and the hub restarts it
    first = wait_for(lambda: completed(colour["id"]), 100, "the first scheduled run", interval=2)[-1]
    assert first["trigger"] == "schedule"
    failed = wait_for(lambda: [r for r in history(broken["id"]) if r["status"] == "failed"][1:] and
                      [r for r in history(broken["id"]) if r["status"] == "failed"], 60, "two failed attempts")
    before = requests.get(f"{api}/schedules/{colour['id']}", headers=alice, timeout=30).json()
    pid = service_pid(hub)
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: service_pid(hub) not in (None, pid), 60, "the hub to restart the service", interval=1)
    after = wait_for(lambda: (r := requests.get(f"{api}/schedules/{colour['id']}", headers=alice, timeout=30))
                     .status_code == 200 and r.json(), 30, "the restarted service", interval=0.5)
    for key in ("owner", "name", "notebook", "cron", "parameters", "enabled"):
        assert after[key] == before[key]
    assert {r["id"] for r in before["runs"]} <= {r["id"] for r in after["runs"]}

    runs = wait_for(lambda: [r for r in completed(colour["id"]) if r["trigger"] == "schedule"][1:] and
                    completed(colour["id"]), 100, "the second scheduled run", interval=2)
    assert not hub.api("GET", "/users/alice").json()["servers"]  # nobody logged in meanwhile

    shared = hub.state / "shared" / "colour" / "fading-spectra.csv"
    sha = hashlib.sha256(shared.read_bytes()).hexdigest()
    for run in runs[:2]:
        assert set(run["links"]) == {"notebook", "html", "crate"}
        html = requests.get(f"{hub.url}{run['links']['html']}", headers=alice, timeout=30)
        assert html.status_code == 200 and "G3: RESULT" in html.text
        nb = requests.get(f"{hub.url}{run['links']['notebook']}", headers=alice, timeout=30)
        assert "G3: RESULT" in json.dumps(nbformat.reads(nb.text, as_version=4))
        out = Path(run["output_dir"])
        assert out.is_relative_to(hub.state / "homes" / "alice" / "reports")
        if os.geteuid() == 0:
            assert out.owner() == "jupyter-alice"  # ran as alice, not as the service
        assert validate_crate(out) == []
        crate = read_crate(out)
        assert crate["status"] == "completed" and crate["parameters"] == {"scale": 2.0, "label": "G3"}
        assert crate["inputs"][0]["files"][0]["sha256"] == sha

    # the failing notebook: both attempts failed, partial notebooks kept and marked
    assert [r["attempt"] for r in failed[:2]] == [2, 1]
    for run in failed[:2]:
        assert "ZeroDivisionError" in run["error"]
        partial = Path(run["output_dir"]) / "fails.ipynb"
        assert "before the failure" in partial.read_text()
        assert read_crate(partial.parent)["status"] == "failed"

    # another user sees nothing of alice's; an admin sees everything
    sid, rid = colour["id"], runs[0]["id"]
    assert requests.get(f"{api}/schedules", headers=bob, timeout=30).json() == []
    for method, path in [("GET", f"/schedules/{sid}"), ("PATCH", f"/schedules/{sid}"),
                         ("DELETE", f"/schedules/{sid}"), ("POST", f"/schedules/{sid}/run"),
                         ("GET", f"/runs/{rid}"), ("GET", f"/runs/{rid}/files/html"),
                         ("GET", f"/runs/{rid}/files/crate")]:
        r = requests.request(method, f"{api}{path}", headers=bob, json={}, timeout=30)
        assert r.status_code in (403, 404), (method, path, r.status_code)
    assert requests.get(f"{api}/schedules", timeout=30, allow_redirects=False).status_code == 403
    everyone = requests.get(f"{api}/schedules", headers=admin, timeout=30).json()
    assert {s["owner"] for s in everyone} == {"alice"} and len(everyone) == 2
