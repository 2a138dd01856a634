"""Metrics with a real hub and a real Prometheus server (issue 33).

A scripted day (people sign in, annotations by a person and by a software actor, a report
that runs and one that fails) is counted
by the hub's and the services' ``/metrics``, scraped by Debian's ``prometheus`` run by the
metrics service, and read back from Prometheus's HTTP API and from the admins' dashboard,
where a figure about fewer than 5 people is withheld. Every ``/metrics`` refuses a caller
without ``read:metrics`` with 403, as JupyterHub's own ``/hub/metrics`` does.
"""

from __future__ import annotations

import csv
import io
import json
import stat

import pytest
import requests

from harness import REPO, free_port, login, wait_for

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


def test_prometheus_is_the_metrics_services_child(hub):
    from harness import processes

    data = str(hub.state / "metrics" / "data")
    found = processes(lambda p: f"--storage.tsdb.path={data}" in p.cmdline())
    assert len(found) == 1
    proc = found[0]
    assert f"--web.listen-address=127.0.0.1:{PROM_PORT}" in proc.cmdline()
    assert "echoes_lab.hub.services.metrics" in " ".join(proc.parent().cmdline())
    # the hub's token is in a 0600 file, not in Prometheus's environment
    assert "JUPYTERHUB_API_TOKEN" not in proc.environ()
    # (module_hubs fails the module if it is left running when the hub stops)
