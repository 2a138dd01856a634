"""Metrics with a real hub and a real Prometheus server (issue 33).

A scripted day (people sign in, annotations by a person and by a software actor, a report
that runs and one that fails, a catalogued dataset opened in a user's kernel, a server that
ends, two people in a project) is counted by the hub's and the services' ``/metrics``, scraped
by Debian's ``prometheus`` run by the metrics service, and read back from Prometheus's HTTP
API and from the admins' dashboard (its figures, charts and exports), where a figure about
fewer than 5 people is withheld; in chromium an admin sees the dashboard and another user is
refused. Every ``/metrics`` refuses a caller without ``read:metrics`` with 403, as
JupyterHub's own ``/hub/metrics`` does.
"""

from __future__ import annotations

import csv
import io
import json
import stat
import time
from datetime import datetime

import pytest
import requests

from harness import REPO, free_port, login, sign_in, wait_for

pytestmark = [pytest.mark.integration]

SERVICES = ("reports", "commons", "knowledge", "workshops", "projects", "metrics")
PEOPLE = [f"p10m{i}" for i in range(1, 7)]  # names of this module's own (Unix users are shared)
PROM_PORT = free_port()
RUNS = REPO / "tests" / "data" / "runs"


@pytest.fixture(scope="module")
def hub(module_hubs):
    return module_hubs(gateway={"enabled": False}, data={"install_demo": True, "fetch": []},
                       reports={"retries": 0, "server_linger": 1},
                       metrics={"enabled": True, "scrape_interval": 1,
                                "prometheus_port": PROM_PORT})


def prom(query: str) -> list[dict]:
    r = requests.get(f"http://127.0.0.1:{PROM_PORT}/api/v1/query", params={"query": query},
                     timeout=10)
    assert r.status_code == 200, r.text
    return r.json()["data"]["result"]


def value(query: str) -> float | None:
    result = prom(query)
    return float(result[0]["value"][1]) if result else None


def test_every_metrics_endpoint_needs_read_metrics(hub):
    name = PEOPLE[0]
    hub.create_user(name)
    # the user's own token: every scope the user has (the services' access among them)
    r = hub.api("POST", f"/users/{name}/tokens", json={"note": "no read:metrics"})
    assert r.status_code == 201, r.text
    token = r.json()["token"]
    metrics_token = hub.secrets["api_tokens"]["metrics"]
    for path in ["/hub/metrics", *(f"/services/{s}/metrics" for s in SERVICES)]:
        url = hub.url + path
        assert requests.get(url, timeout=30).status_code == 403, path
        assert requests.get(url, headers={"Authorization": f"token {token}"},
                            timeout=30).status_code == 403, path
        # the metrics service's token (read:metrics) is what Prometheus scrapes with
        ok = requests.get(url, headers={"Authorization": f"token {metrics_token}"}, timeout=30)
        assert ok.status_code == 200, (path, ok.text[:300])
        assert "# TYPE" in ok.text


def test_prometheus_runs_from_the_state_directory(hub):
    folder = hub.state / "metrics"
    token_file = folder / "token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert token_file.read_text() == hub.secrets["api_tokens"]["metrics"]
    assert hub.secrets["api_tokens"]["metrics"] not in hub.log_path.read_text(errors="replace")
    assert (folder / "data").is_dir()
    # every job answers: the hub and each service, scraped with the token
    wait_for(lambda: {r["metric"]["job"] for r in prom("up == 1")} >= {"jupyterhub", *SERVICES},
             60, "every scrape target up")


def test_a_day_is_counted_and_small_groups_are_withheld(hub):
    password = hub.secrets["user_password"]
    for name in PEOPLE[:3]:
        hub.create_user(name)
        login(hub, name, password, next_url="/hub/home")
    a, b = PEOPLE[0], PEOPLE[1]

    def token(user: str) -> dict:
        r = hub.api("POST", f"/users/{user}/tokens",
                    json={"scopes": ["access:services!service=commons"], "note": "p10"})
        assert r.status_code == 201, r.text
        return {"Authorization": f"token {r.json()['token']}"}

    base = f"{hub.url}/services/commons/"
    ld = {"Content-Type": "application/ld+json"}
    target = "https://iiif.example.org/canvas/p10"
    person = requests.post(f"{base}annotations/", headers={**token(a), **ld}, json={
        "@context": "http://www.w3.org/ns/anno.jsonld", "type": "Annotation",
        "motivation": "commenting", "target": target,
        "body": {"type": "TextualBody", "value": "Smalt, discoloured"}}, timeout=30)
    assert person.status_code == 201, person.text
    bob = token(b)
    actor = requests.post(f"{base}actors/", json={"name": "tesseract", "version": "5.3.0"},
                          headers=bob, timeout=30)
    assert actor.status_code == 201, actor.text
    software = requests.post(f"{base}annotations/", headers={**bob, **ld}, json={
        "@context": "http://www.w3.org/ns/anno.jsonld", "type": "Annotation",
        "motivation": "transcribing", "target": target,
        "body": {"type": "TextualBody", "value": "ANNO 1642"},
        "generator": {"id": actor.json()["id"]}}, timeout=30)
    assert software.status_code == 201, software.text

    # Prometheus has scraped them: the commons' counts, the hub's sign-ins and active users
    expected = {'echoes_commons_annotations{actor="person",motivation="commenting"}': 1,
                'echoes_commons_annotations{actor="software",motivation="transcribing"}': 1,
                'jupyterhub_active_users{period="24h"}': 3,
                'sum(jupyterhub_login_duration_seconds_count{status=~".*success"})': 3}
    seen = {}

    def counted():
        seen.update({q: value(q) for q in expected})
        return seen == expected

    try:
        wait_for(counted, 60, "the day's counts in Prometheus")
    except TimeoutError:
        pytest.fail(f"Prometheus has {seen}, not {expected}")
    assert value("echoes_reports_queue_length") == 0
    assert value('sum(echoes_workshops{state="open"})') == 0

    # the dashboard (an admin signs in: 4 people active) withholds the active users
    admin = login(hub, "admin", hub.secrets["admin_password"], next_url="/hub/home")
    wait_for(lambda: value('jupyterhub_active_users{period="24h"}') == 4, 60, "4 active")
    page = admin.get(f"{hub.url}/services/metrics/", timeout=60)
    assert page.status_code == 200, page.text[:500]
    assert 'href="/hub/static/css/style.min.css"' in page.text  # the hub's look
    usage = admin.get(f"{hub.url}/services/metrics/api/usage", timeout=60).json()["figures"]

    def row(figure: str, label: str = "") -> dict:
        return next(r for r in usage if r["figure"] == figure and r["label"] == label)

    active = row("active users, last 24 h")
    assert active["value"] is None and active["note"] == "fewer than 5 people"
    assert row("annotations by actor", "person")["value"] == 1
    assert row("annotations by actor", "software")["value"] == 1
    assert row("annotations by motivation", "transcribing")["value"] == 1
    assert "fewer than 5 people" in page.text and "transcribing" in page.text
    # a user who is not an admin sees none of it
    plain = login(hub, PEOPLE[2], password, next_url="/hub/home")
    assert plain.get(f"{hub.url}/services/metrics/api/usage", timeout=30).status_code == 403

    # two more people sign in: 6 active, and the figure is shown
    for name in PEOPLE[3:5]:
        hub.create_user(name)
        login(hub, name, password, next_url="/hub/home")
    wait_for(lambda: value('jupyterhub_active_users{period="24h"}') == 6, 60, "6 active")
    exported = admin.get(f"{hub.url}/services/metrics/api/usage.csv", timeout=60)
    assert exported.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    shown = next(r for r in rows if r["figure"] == "active users, last 24 h")
    assert float(shown["value"]) == 6 and shown["note"] == ""


def test_a_report_that_runs_and_one_that_fails_are_counted(hub):
    owner = PEOPLE[5]
    hub.create_user(owner)
    hub.start_server(owner)
    token = hub.api("POST", f"/users/{owner}/tokens", json={"scopes": [
        f"access:servers!user={owner}", "access:services!service=reports"]}).json()["token"]
    headers = {"Authorization": f"token {token}"}
    contents = f"{hub.url}/user/{owner}/api/contents"
    requests.put(f"{contents}/work", json={"type": "directory"}, headers=headers, timeout=30)
    for name in ("report", "fails"):
        nb = json.loads((RUNS / f"{name}.ipynb").read_text())
        r = requests.put(f"{contents}/work/{name}.ipynb", headers=headers, timeout=30,
                         json={"type": "notebook", "format": "json", "content": nb})
        assert r.status_code in (200, 201), r.text
    api = f"{hub.url}/services/reports/api"
    ids = []
    for name in ("report", "fails"):
        r = requests.post(f"{api}/schedules", headers=headers, timeout=60, json={
            "name": name, "notebook": f"work/{name}.ipynb", "cron": "0 6 * * *"})
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
        assert requests.post(f"{api}/schedules/{ids[-1]}/run", headers=headers,
                             timeout=60).status_code == 202
    expected = {'echoes_reports_runs{status="completed",trigger="manual"}': 1,
                'echoes_reports_runs{status="failed",trigger="manual"}': 1,
                'echoes_reports_run_duration_seconds_count{status="completed"}': 1,
                'echoes_reports_run_duration_seconds_count{status="failed"}': 1}
    seen = {}

    def counted():
        seen.update({q: value(q) for q in expected})
        return seen == expected

    try:
        wait_for(counted, 180, "the runs' counts in Prometheus", interval=1)
    except TimeoutError:
        pytest.fail(f"Prometheus has {seen}, not {expected}\n{hub.log_tail(40)}")
    assert value('echoes_reports_run_duration_seconds_sum{status="completed"}') > 0

    # the run index links each run's FAIR assessment, its crate read as the owner
    [run] = requests.get(f"{api}/schedules/{ids[0]}", headers=headers, timeout=30).json()["runs"]
    assert run["links"]["fair"] == f"/services/reports/api/runs/{run['id']}/fair"
    r = requests.get(f"{hub.url}{run['links']['fair']}", headers=headers, timeout=60)
    assert r.status_code == 200, r.text
    fair = {i["metric"]: i for i in r.json()["indicators"]}
    assert r.json()["score"] == 0.5  # no identifier nor licence until someone deposits it
    assert fair["FsF-R1.2-01M"]["passed"] and "CreateAction" in fair["FsF-R1.2-01M"]["evidence"]
    assert not fair["FsF-R1.1-01M"]["passed"]
    hub.create_user(PEOPLE[0])  # another user: the run is not theirs to see
    other = hub.api("POST", f"/users/{PEOPLE[0]}/tokens", json={
        "scopes": ["access:services!service=reports"]}).json()["token"]
    assert requests.get(f"{hub.url}{run['links']['fair']}", timeout=30,
                        headers={"Authorization": f"token {other}"}).status_code == 404


def counted_in_prometheus(expected: dict, timeout: float, log: str = "") -> None:
    seen = {}

    def counted():
        seen.update({q: value(q) for q in expected})
        return seen == expected

    try:
        wait_for(counted, timeout, "the counts in Prometheus", interval=0.5)
    except TimeoutError:
        pytest.fail(f"Prometheus has {seen}, not {expected}\n{log}")


def test_datasets_opened_servers_ended_and_project_members_are_counted(hub):
    owner = PEOPLE[5]
    hub.create_user(owner)
    hub.start_server(owner)
    # a catalogued dataset opened in the owner's kernel, as a notebook does
    out = hub.execute(owner, "from echoes_lab import datasets\n"
                             "print(len(datasets.open_dataset('demo-collection')))")
    assert not out.get("errors"), out
    # a name not in the hub's catalogue is refused, naming the field
    token = hub.api("POST", f"/users/{owner}/tokens", json={
        "scopes": ["access:services!service=metrics"], "note": "p10"}).json()["token"]
    bad = requests.post(f"{hub.url}/services/metrics/api/opened", json={"dataset": "no-such"},
                        headers={"Authorization": f"token {token}"}, timeout=30)
    assert bad.status_code == 400 and "'dataset'" in bad.json()["message"], bad.text
    # the server ends: its lifetime is counted (read from the hub every scrape interval)
    started = hub.api("GET", f"/users/{owner}").json()["servers"][""]["started"]
    stopped = time.time()
    assert hub.api("DELETE", f"/users/{owner}/server").status_code in (202, 204)
    # two people in a project (its hub group, marked as a project's by a hub admin)
    group = "project-p10m"
    for name in PEOPLE[:2]:
        hub.create_user(name)
    assert hub.api("POST", f"/groups/{group}", json={"users": PEOPLE[:2]}).status_code == 201
    assert hub.api("PUT", f"/groups/{group}/properties",
                   json={"echoes_project": True}).status_code == 200
    counted_in_prometheus({'echoes_datasets_opened_total{dataset="demo-collection"}': 1,
                           "echoes_projects_members": 2, "echoes_workshops_active_seats": 0,
                           # the report test's servers may have ended too: this one at least
                           "echoes_server_lifetime_seconds_count >= bool 1": 1}, 90,
                          hub.log_tail(40))
    # the server was seen gone after its stop was asked for: it lived at least until then
    lived = stopped - datetime.fromisoformat(started.replace("Z", "+00:00")).timestamp()
    assert value("echoes_server_lifetime_seconds_sum") >= lived - 1

    admin = login(hub, "admin", hub.secrets["admin_password"], next_url="/hub/home")
    # the page (signing in to the service: OAuth), its charts of the last 72 minutes
    page = admin.get(f"{hub.url}/services/metrics/", params={"days": "0.05"}, timeout=60)
    assert page.status_code == 200, page.text[:500]
    assert page.text.count("<svg") == 5 and 'data-chart="datasets opened"' in page.text
    assert "demo-collection" in page.text
    r = admin.get(f"{hub.url}/services/metrics/api/usage", timeout=60)
    assert r.status_code == 200, r.text
    rows = {(f["figure"], f["label"]): f for f in r.json()["figures"]}
    assert rows["openings", "demo-collection"]["value"] == 1
    assert rows["servers ended", ""]["value"] >= 1
    assert rows["mean lifetime (min)", ""]["value"] > 0
    members = rows["members", ""]  # 2 people: withheld
    assert members["value"] is None and members["note"] == "fewer than 5 people"
    # the charts' points: the openings over the last hour, the small groups' values withheld
    series = admin.get(f"{hub.url}/services/metrics/api/series", params={"days": "0.05"},
                       timeout=60).json()
    charts = {c["title"]: c for c in series["charts"]}
    assert charts["datasets opened"]["series"]["demo-collection"][-1][1] == 1
    active = charts["active users, last 24 h"]["series"][""]
    assert active and all(v is None or v == 0 or v >= 5 for _, v in active)
    assert admin.get(f"{hub.url}/services/metrics/api/series", params={"days": "-1"},
                     timeout=30).status_code == 400


def test_the_monthly_usage_report_runs_through_the_reports_service(hub):
    """notebooks/09-monthly-usage-report.ipynb, scheduled by an admin, reads this hub's figures
    with the lab's own token (read:metrics reaches admins' labs only)."""
    owner = "p10madm"
    # made an admin by the hub's admin (the harness's own token may not grant admin)
    admin = login(hub, "admin", hub.secrets["admin_password"], next_url="/hub/home")
    r = admin.post(f"{hub.url}/hub/api/users/{owner}", json={"admin": True},
                   headers={"X-XSRFToken": admin.cookies.get("_xsrf")}, timeout=30)
    assert r.status_code == 201, r.text
    hub.start_server(owner)
    token = hub.api("POST", f"/users/{owner}/tokens", json={"scopes": [
        f"access:servers!user={owner}", "access:services!service=reports"]}).json()["token"]
    headers = {"Authorization": f"token {token}"}
    nb = json.loads((REPO / "notebooks" / "09-monthly-usage-report.ipynb").read_text())
    r = requests.put(f"{hub.url}/user/{owner}/api/contents/usage.ipynb", headers=headers,
                     json={"type": "notebook", "format": "json", "content": nb}, timeout=30)
    assert r.status_code in (200, 201), r.text
    api = f"{hub.url}/services/reports/api"
    r = requests.post(f"{api}/schedules", headers=headers, timeout=60, json={
        "name": "monthly usage", "notebook": "usage.ipynb", "cron": "0 6 1 * *",
        "parameters": {"days": 0.05}})
    assert r.status_code == 201, r.text
    sid = r.json()["id"]
    assert requests.post(f"{api}/schedules/{sid}/run", headers=headers,
                         timeout=60).status_code == 202

    def settled():
        runs = requests.get(f"{api}/schedules/{sid}", headers=headers, timeout=30).json()["runs"]
        return runs[0] if runs and runs[0]["status"] in ("completed", "failed") else None

    run = wait_for(settled, 180, "the usage report's run", interval=1)
    assert run["status"] == "completed", f"{run['error']}\n{hub.log_tail(40)}"
    text = requests.get(f"{hub.url}{run['links']['notebook']}", headers=headers,
                        timeout=60).text
    assert "from this hub's metrics service" in text
    # the day's annotations, one by a person and one by software, in the report's summary
    assert "annotations by people / by software" in text and "1 / 1" in text


@pytest.mark.browser
def test_an_admin_sees_the_dashboard_and_others_are_refused(hub, browser):
    page = browser.new_page(viewport={"width": 1300, "height": 900})
    try:
        page.goto(f"{hub.url}/hub/login?next=/services/metrics/")
        page.fill("#username_input", "admin")
        page.fill("#password_input", hub.secrets["admin_password"])
        page.click("#login_submit")
        page.wait_for_selector("#usage", timeout=60_000)
        assert page.locator("h1").inner_text() == "Usage and contributions"
        # the figures and the charts, drawn on the server (inline SVG, nothing fetched)
        assert page.locator("#charts figure svg").count() == 5
        sections = page.locator("#usage tbody td:first-child").all_inner_texts()
        assert {"people", "servers", "reports", "commons", "datasets"} <= set(sections)
        person = page.locator('#usage tr[data-figure="annotations by actor"]'
                              '[data-label="person"] td.value')
        assert float(person.inner_text()) >= 1
        with page.expect_download() as download:
            page.click('a:has-text("CSV")')
        assert download.value.suggested_filename == "echoes-usage.csv"
    finally:
        page.context.clear_cookies()
        page.close()
    other = browser.new_page()
    try:
        sign_in(other, hub, PEOPLE[2], next_url="/services/metrics/")
        other.wait_for_load_state()
        wait_for(lambda: "for the hub's admins" in other.inner_text("body"), 60, "the refusal")
        assert other.locator("#usage").count() == 0
    finally:
        other.close()


def test_prometheus_is_the_metrics_services_child(hub):
    from harness import processes

    data = str(hub.state / "metrics" / "data")
    found = processes(lambda p: f"--storage.tsdb.path={data}" in p.cmdline())
    assert len(found) == 1
    proc = found[0]
    assert f"--web.listen-address=127.0.0.1:{PROM_PORT}" in proc.cmdline()
    # the metrics service's process: its own, or the one hosting several services
    parent = " ".join(proc.parent().cmdline())
    assert "echoes_lab.hub.services.metrics" in parent or "echoes_lab.hub.services.host" in parent
    # the hub's token is in a 0600 file, not in Prometheus's environment
    assert "JUPYTERHUB_API_TOKEN" not in proc.environ()
    # (module_hubs fails the module if it is left running when the hub stops)
