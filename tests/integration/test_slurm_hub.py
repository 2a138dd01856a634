"""The ``slurm`` profile's hub on a real Slurm cluster: users' servers are Slurm jobs on two
compute nodes, each in its own network namespace (``slurm_cluster.py``), the hub on this
machine, its API and its proxy listening on the cluster's bridge address (``[slurm] hub_ip``),
with every service a lab links to (commons, knowledge, metrics, projects) and a team project
of alice and bob from the start.

One cluster and one hub for the module; the tests run in order (alice's server, her lab's
links to the services, the port report's attacks, limits, Dask, a report while she is signed
out, a workshop seat, the team project, a hub restart, then a node lost under her server).
"""

from __future__ import annotations

import csv
import json
import pwd
import shutil
import tarfile
from datetime import UTC, datetime, timedelta

import pytest
import requests
from slurm_cluster import SlurmCluster, daemons_left, links_left, slurm_profile

from echoes_lab.hub.accounts import system_username

from harness import REPO, login, processes, wait_for

RUNS = REPO / "tests" / "data" / "runs"

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ALICE = "slurm-alice"  # user names of this module only (system accounts are shared)
BOB = "slurm-bob"
TEAM = "slurmteam"  # alice's and bob's team project, from the hub's start


@pytest.fixture(scope="module")
def slurm():
    cluster = SlurmCluster(nodes=2)
    try:
        yield cluster.start()
        # after the hub's teardown (set up after this fixture): its servers' jobs are gone
        wait_for(lambda: not cluster.jobs(), 30, f"no jobs after the hub: {cluster.jobs()}")
    finally:
        left = cluster.close()
        assert not left, f"processes left in the nodes' namespaces: {left}"
        assert not daemons_left(cluster), daemons_left(cluster)
        assert not links_left(cluster), links_left(cluster)


@pytest.fixture(scope="module")
def hub(slurm, module_hubs):
    # every service a lab links to (commons, knowledge, metrics, projects): as on one machine
    hub = module_hubs(start=False, culler={"enabled": False}, metrics={"enabled": True},
                      reports={"retries": 0, "server_linger": 30})
    slurm_profile(hub, slurm)
    hub.start(timeout=120)
    hub.cli("project", "create", TEAM, "--members", f"{ALICE},{BOB}")
    return hub


def squeue(slurm: SlurmCluster) -> list[dict]:
    out = slurm.run("squeue", "-h", "-o", "%i|%T|%N|%u|%j", check=False)
    keys = ("id", "state", "node", "user", "name")
    return [dict(zip(keys, line.split("|"), strict=True)) for line in out.splitlines() if line]


def running_job(slurm: SlurmCluster, user: str) -> dict:
    account = system_username(user)
    return wait_for(lambda: next((j for j in squeue(slurm) if j["user"] == account
                                  and j["state"] == "RUNNING"), None),
                    30, f"{account}'s running job: {squeue(slurm)}")


#: run in a kernel: the address this process leaves by towards the hub, its uid, its job
WHERE = """
import os, socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.connect(({hub_ip!r}, 9))
print(s.getsockname()[0], os.getuid(), os.environ.get("SLURM_JOB_ID"))
"""


def upload(hub, user: str, path: str, notebook) -> None:
    """Put a notebook into the user's home through their server's contents API (as them)."""
    base = f"{hub.url}/user/{user}/api/contents"
    headers = {"Authorization": f"token {hub.token}"}
    requests.put(f"{base}/{path.rsplit('/', 1)[0]}", json={"type": "directory"},
                 headers=headers, timeout=60)
    r = requests.put(f"{base}/{path}", headers=headers, timeout=60, json={
        "type": "notebook", "format": "json", "content": json.loads(notebook.read_text())})
    assert r.status_code in (200, 201), r.text


def where(hub, slurm, user: str) -> tuple[str, int, str]:
    out = hub.execute(user, WHERE.format(hub_ip=slurm.host_addr), timeout=120)
    assert not out.get("errors"), out
    addr, uid, job = out["stdout"].split()
    return addr, int(uid), job


def test_alices_server_is_a_job_on_a_compute_node(hub, slurm):
    hub.create_user(ALICE)
    hub.start_server(ALICE, timeout=180)
    job = running_job(slurm, ALICE)
    assert job["node"] in slurm.nodes, job
    shown = slurm.run("scontrol", "show", "job", job["id"])
    assert f"NodeList={job['node']}" in shown and "Partition=echoes" in shown
    assert "Requeue=0" in shown  # a lost node's server ends, it does not come back elsewhere
    assert "NumCPUs=1" in shown and "mem=1G" in shown, shown  # the profile's defaults
    # her notebook, through the hub's proxy: a kernel on that node, as her, in that job
    addr, uid, job_id = where(hub, slurm, ALICE)
    assert addr == slurm.nodes[job["node"]]
    assert uid == pwd.getpwnam(system_username(ALICE)).pw_uid != 0
    assert job_id == job["id"]


#: run in alice's kernel on her node: the library's commons and links, as on one machine
LINKS = """
import json, os, requests
from echoes_lab import commons
made = commons.annotate("https://collection.example.org/object/7", "seen from a compute node")
back = commons.get(made["id"])
token = {"Authorization": "token " + os.environ["JUPYTERHUB_API_TOKEN"]}
codes = {key: requests.get(os.environ[key], headers=token, allow_redirects=False,
                           timeout=30).status_code
         for key in ("ECHOES_KNOWLEDGE_URL", "ECHOES_PROJECTS_URL")}
# what echoes_lab.datasets does when a lab opens a catalogued dataset (the dashboard is admins')
codes["opened"] = requests.post(os.environ["ECHOES_METRICS_URL"] + "api/opened", headers=token,
                                json={"dataset": "tate-collection"}, timeout=30).status_code
print(json.dumps({"where": commons.where(), "made": made["id"], "back": back, "codes": codes,
                  "links": {k: v for k, v in os.environ.items() if k.endswith("_URL")
                            and k.startswith("ECHOES_")}}))
"""


def test_her_labs_links_to_the_services_work_from_the_compute_node(hub, slurm):
    """The commons, knowledge, metrics and projects links lead through the proxy at its
    address on the cluster's network (the features make them from loopback addresses, which
    a node's own namespace cannot reach: connection refused)."""
    out = hub.execute(ALICE, LINKS, timeout=120)
    assert not out.get("errors"), out
    seen = json.loads(out["stdout"])
    origin = hub.url + "/"
    assert seen["links"] and all(v.startswith(origin) for v in seen["links"].values()), seen
    assert seen["where"].startswith(origin + "services/commons/"), seen
    # the annotation went through the hub and came back as the commons keeps it
    assert seen["back"]["id"] == seen["made"]
    assert seen["back"]["target"] == "https://collection.example.org/object/7"
    assert "seen from a compute node" in json.dumps(seen["back"]["body"])
    assert seen["codes"] == {"ECHOES_KNOWLEDGE_URL": 200, "ECHOES_PROJECTS_URL": 200,
                             "opened": 204}, seen["codes"]


def _server_token(user: str) -> str:
    [server] = processes(lambda p: p.environ().get("JUPYTERHUB_USER") == user
                         and "echoes_lab.hub.slurm.server" in " ".join(p.cmdline()))
    return server.environ()["JUPYTERHUB_API_TOKEN"]


def test_the_port_report_takes_a_port_and_nothing_else(hub, slurm):
    """batchspawner's handler set any attribute a request named on the spawner (its submit
    command, run by the hub as root); the server's own token may report a port, once."""
    job = running_job(slurm, ALICE)
    url = f"{hub.url}/hub/api/batchspawner"

    def report(body, token):
        return requests.post(url, data=json.dumps(body), timeout=30,
                             headers={"Authorization": f"token {token}"})

    server = _server_token(ALICE)
    marker = hub.root / "owned"
    for body in ({"port": 5555, "exec_prefix": f"touch {marker};"},
                 {"exec_prefix": f"touch {marker};"}, {"cmd": ["/bin/sh"]},
                 {"ip": "10.0.0.99"}, {"port": "5555"}, {"port": 70000}, {"port": 0},
                 {"port": True}, {"port": 5555.0}, [5555]):
        r = report(body, server)
        assert r.status_code == 400, (body, r.status_code, r.text)
    # a well-formed port from the right token, but the server runs already: refused
    r = report({"port": 5555}, server)
    assert r.status_code == 409, r.text
    # anyone else's token: alice's own API token, the hub's command-line service
    user_token = hub.api("POST", f"/users/{ALICE}/tokens", json={}).json()["token"]
    for token in (user_token, hub.token):
        r = report({"port": 5555}, token)
        assert r.status_code == 403, r.text
    # nothing changed: the same job serves her notebook, nothing ran the injected command
    assert running_job(slurm, ALICE)["id"] == job["id"]
    assert where(hub, slurm, ALICE)[2] == job["id"]
    assert not marker.exists()


def test_spawn_options_are_checked_against_the_profiles_limits(hub, slurm):
    bob = BOB
    for options, said in (({"cores": 3}, "at most 2"), ({"memory": 64}, "at most 2"),
                          ({"partition": "gpu"}, "not offered"),
                          ({"prologue": "id"}, "unknown server option 'prologue'")):
        r = hub.api("POST", f"/users/{bob}/server", json=options)
        if r.status_code in (201, 202):  # the spawn failed after the request returned
            wait_for(lambda: not hub.api("GET", f"/users/{bob}").json()["pending"], 30,
                     "the refused start to end")
        assert said in r.text or said in hub.log_tail(200), (options, r.text)
        assert not [j for j in squeue(slurm) if j["user"] == system_username(bob)]
        assert not hub.api("GET", f"/users/{bob}").json()["servers"]

    # the spawn form in a browser session: the profile's partitions and limits, then a start
    browser = login(hub, bob, hub.secrets["user_password"], "/hub/home")
    form = browser.get(f"{hub.url}/hub/spawn/{bob}", timeout=60)
    assert form.status_code == 200
    assert '<option value="echoes">' in form.text and 'max="2"' in form.text, form.text
    r = browser.post(f"{hub.url}/hub/spawn/{bob}", timeout=120, data={
        "partition": "echoes", "cores": "2", "memory": "0.5", "hours": "1",
        "_xsrf": browser.cookies.get("_xsrf")})
    assert r.status_code == 200, r.text
    wait_for(lambda: (hub.api("GET", f"/users/{bob}").json()["servers"].get("") or {})
             .get("ready"), 180, "bob's server from the form")
    shown = slurm.run("scontrol", "show", "job", running_job(slurm, bob)["id"])
    # the form's cores as --cpus-per-task, its memory as --mem, its hours as --time
    assert "NumCPUs=2" in shown and "CPUs/Task=2" in shown, shown
    assert "mem=512M" in shown and "TimeLimit=01:00:00" in shown, shown
    assert hub.api("DELETE", f"/users/{bob}/server").status_code in (202, 204)
    wait_for(lambda: not hub.api("GET", f"/users/{bob}").json()["servers"], 60,
             "bob's server to stop")


#: run in alice's kernel: the same call as on one machine, workers as Slurm jobs of hers
DASK = """
import time
from echoes_lab import compute
client = compute.cluster(workers=2, worker_cores=1, worker_memory=0.5)
try:
    client.wait_for_workers(2, timeout=150)
    hosts = sorted(w["host"] for w in client.scheduler_info()["workers"].values())
    total = client.submit(sum, client.map(lambda x: x * x, range(100))).result()
    print(compute.slurm_partition(), total, *hosts)
finally:
    client.shutdown()
"""


def test_a_dask_cluster_from_her_lab_has_workers_as_slurm_jobs(hub, slurm):
    lab = where(hub, slurm, ALICE)[2]
    out = hub.execute(ALICE, DASK, timeout=240)
    assert not out.get("errors"), out
    partition, total, *hosts = out["stdout"].split()
    assert (partition, total) == ("echoes", str(sum(x * x for x in range(100))))
    # one worker job on each node (a node has 2 CPUs; her lab holds 1 of one of them)
    assert sorted(hosts) == sorted(slurm.nodes.values()), hosts
    wait_for(lambda: [j["id"] for j in squeue(slurm)] == [lab], 60,
             f"only her lab's job left after client.shutdown(): {squeue(slurm)}")


def test_a_report_runs_through_slurm_while_its_owner_is_signed_out(hub, slurm):
    """Signed out: no browser session; her lab's server may run (as in test_reports_service),
    the report runs in her named server 'reports', a Slurm job of its own."""
    upload(hub, ALICE, "work/report.ipynb", RUNS / "report.ipynb")
    lab_job = where(hub, slurm, ALICE)[2]
    token = hub.api("POST", f"/users/{ALICE}/tokens",
                    json={"scopes": ["access:services!service=reports"]}).json()["token"]
    headers = {"Authorization": f"token {token}"}
    api = f"{hub.url}/services/reports/api"
    seen: dict[str, str] = {}  # job id -> node, every running job of hers but her lab's

    def note_jobs():
        seen.update({j["id"]: j["node"] for j in squeue(slurm) if j["state"] == "RUNNING"
                     and j["user"] == system_username(ALICE) and j["id"] != lab_job})

    # saving reads the notebook through her 'reports' server (started through Slurm, kept
    # for server_linger seconds); the run comes at once and may reuse it
    r = requests.post(f"{api}/schedules", headers=headers, timeout=120, json={
        "name": "on slurm", "notebook": "work/report.ipynb", "cron": "0 6 * * *",
        "parameters": {"scale": 2, "label": "slurm"}})
    assert r.status_code in (200, 201), r.text
    schedule = r.json()
    note_jobs()

    due = datetime.fromisoformat(schedule["next_run"])
    (hub.state / "reports" / "clock-offset").write_text(
        str((due - datetime.now(UTC)).total_seconds() + 1))

    def settled():
        note_jobs()
        runs = requests.get(f"{api}/schedules/{schedule['id']}", headers=headers,
                            timeout=30).json()["runs"]
        return runs if runs and runs[0]["status"] in ("completed", "failed") else None

    [run] = wait_for(settled, 180, "the scheduled run", interval=0.5)
    assert run["status"] == "completed" and run["trigger"] == "schedule", run
    assert seen and set(seen.values()) <= set(slurm.nodes), seen
    assert "reports" in hub.api("GET", f"/users/{ALICE}").json()["servers"]
    executed = hub.state / "homes" / ALICE / run["output_dir"] / "report.ipynb"
    assert executed.stat().st_uid == pwd.getpwnam(system_username(ALICE)).pw_uid


def test_a_workshop_seat_is_a_slurm_job_and_closing_archives_it(hub, slurm):
    materials = hub.root / "materials"
    shutil.copytree(REPO / "tests" / "data" / "workshops" / "materials-v1", materials)
    ends = (datetime.now() + timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M")
    out = hub.cli("workshop", "create", "swk", "--seats", "2", "--trainer", "slurm-tina",
                   "--materials", str(materials), "--ends", ends, "--mem-limit", "768M")
    assert "materials in 2 of 2 seats" in out, out
    cards = hub.state / "homes" / "slurm-tina" / "workshops" / "swk" / "cards.csv"
    with open(cards, newline="") as fh:
        password = {r["username"]: r["password"] for r in csv.DictReader(fh)}["swk-01"]
    seat = login(hub, "swk-01", password, "/hub/home")  # the seat's own one-time password
    assert seat.get(f"{hub.url}/hub/api/user", timeout=30).json()["name"] == "swk-01"
    hub.start_server("swk-01", timeout=180)
    job = running_job(slurm, "swk-01")
    # the workshop's per-seat memory limit is the seat's job's --mem (local: the server's)
    shown = slurm.run("scontrol", "show", "job", job["id"])
    assert "mem=768M" in shown and "MinMemoryNode=768M" in shown, shown
    out = hub.execute("swk-01", "import os, pathlib; pathlib.Path('answer.txt').write_text("
                      "'42'); print(os.environ['SLURM_JOB_ID'], sorted(os.listdir('swk')))")
    assert not out["errors"] and out["stdout"].split()[0] == job["id"], out
    assert "01-intro.ipynb" in out["stdout"]
    hub.cli("workshop", "close", "swk")
    assert not hub.api("GET", "/users/swk-01").json()["servers"]
    wait_for(lambda: job["id"] not in {j["id"] for j in squeue(slurm)}, 30,
             f"the seat's job to end: {squeue(slurm)}")
    archive = cards.parent / "archive" / "swk-01.tar.gz"
    with tarfile.open(archive) as tar:
        assert "swk-01/answer.txt" in tar.getnames(), tar.getnames()


#: run in a kernel: the job's groups (``id``), and a write into the project's folder
IN_PROJECT = """
import json, os, pathlib, subprocess
folder = pathlib.Path(os.environ["ECHOES_PROJECTS"]) / {project!r}
link = pathlib.Path.home() / "projects" / {project!r}
try:
    (folder / os.environ["JUPYTERHUB_USER"]).write_text("from job " + os.environ["SLURM_JOB_ID"])
    wrote, seen = "yes", sorted(p.name for p in link.iterdir())
except OSError as exc:
    wrote, seen = type(exc).__name__, []
print(json.dumps({{"groups": subprocess.run(["id", "-Gn"], capture_output=True,
                                             text=True).stdout.split(),
                  "job": os.environ["SLURM_JOB_ID"], "link": link.is_symlink(),
                  "wrote": wrote, "seen": seen}}))
"""


def in_project(hub, user: str, name: str) -> dict:
    out = hub.execute(user, IN_PROJECT.format(project=name), timeout=120)
    assert not out.get("errors"), out
    return json.loads(out["stdout"])


def test_a_team_projects_folder_is_shared_by_its_members_jobs_only(hub, slurm):
    """On one machine the spawner gives a server its projects' groups itself; a Slurm job gets
    the account's groups from the group database, so the spawner keeps the account's
    membership there right before each submission (and takes it away when a member leaves)."""
    bob, carol, name = BOB, "slurm-carol", TEAM
    hub.create_user(carol)
    group = f"echoes-p-{name}"
    # alice's lab runs since the first test; bob's and carol's jobs are submitted together
    for user in (bob, carol):  # one core each (bob's last start from the form asked for 2)
        r = hub.api("POST", f"/users/{user}/server", json={"cores": 1})
        assert r.status_code in (201, 202), r.text
    for user in (bob, carol):
        hub.start_server(user, timeout=180)
    seen = {user: in_project(hub, user, name) for user in (ALICE, bob, carol)}
    for user in (ALICE, bob):
        assert group in seen[user]["groups"] and seen[user]["wrote"] == "yes", seen[user]
        assert seen[user]["link"] and seen[user]["job"] == running_job(slurm, user)["id"]
    # each member's job reads what the other's wrote, through ~/projects/NAME
    assert set(seen[bob]["seen"]) >= {ALICE, bob}, seen[bob]
    assert group not in seen[carol]["groups"] and seen[carol]["wrote"] == "PermissionError"
    assert not seen[carol]["link"], seen[carol]

    # bob leaves: his server restarts at once, and the new job has no group and no access
    hub.cli("project", "remove", name, bob)
    wait_for(lambda: (hub.api("GET", f"/users/{bob}").json()["servers"].get("") or {})
             .get("ready"), 180, "bob's restarted server")
    after = in_project(hub, bob, name)
    assert after["job"] != seen[bob]["job"]
    assert group not in after["groups"] and after["wrote"] == "PermissionError", after
    assert not after["link"], after
    for user in (bob, carol):  # their CPUs back for the tests that follow
        assert hub.api("DELETE", f"/users/{user}/server").status_code in (202, 204)
    wait_for(lambda: not [j for j in squeue(slurm) if j["user"] in
                          {system_username(bob), system_username(carol)}], 60,
             f"bob's and carol's jobs to end: {squeue(slurm)}")


def test_a_hub_restart_keeps_her_server_job(hub, slurm):
    """Nothing lost: the hub stops and starts again (cleanup_servers = False); it finds her
    server's job in its database and in Slurm, and her lab answers through the proxy."""
    job = where(hub, slurm, ALICE)[2]
    hub.stop_hub()
    assert job in {j["id"] for j in squeue(slurm)}  # the job outlives the hub
    hub.start(timeout=120)
    server = hub.api("GET", f"/users/{ALICE}").json()["servers"][""]
    assert server["ready"], server
    assert where(hub, slurm, ALICE)[2] == job


def test_a_lost_node_stops_the_server_and_a_new_start_lands_on_the_other(hub, slurm):
    job = where(hub, slurm, ALICE)[2]  # her lab's server, running since the first test
    lost = next(j["node"] for j in squeue(slurm) if j["id"] == job)
    other = next(n for n in slurm.nodes if n != lost)
    slurm.stop_node(lost)  # slurmd and every process on the node killed, as in a crash
    # Slurm declares the node down after SlurmdTimeout (10 s), ending its jobs (no requeue);
    # the hub's poll of the job (every 10 s) then shows the server as stopped
    wait_for(lambda: "" not in hub.api("GET", f"/users/{ALICE}").json()["servers"], 120,
             f"the hub to see the server gone; nodes {slurm.node_states()}")
    assert slurm.node_states()[lost].startswith("down")
    hub.start_server(ALICE, timeout=180)
    addr, _, job = where(hub, slurm, ALICE)
    assert addr == slurm.nodes[other]
    assert next(j["node"] for j in squeue(slurm) if j["id"] == job) == other
