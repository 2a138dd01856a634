"""A 5-seat workshop on a real hub: cards, trainer's access, materials merge, collect, close."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import subprocess
import tarfile
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import requests

from harness import REPO, login

pytestmark = pytest.mark.integration

DATA = REPO / "tests" / "data" / "workshops"


def form_login(hub, username, password) -> requests.Response:
    s = requests.Session()
    s.get(f"{hub.url}/hub/login", timeout=30)
    return s.post(
        f"{hub.url}/hub/login",
        data={"username": username, "password": password, "_xsrf": s.cookies.get("_xsrf")},
        timeout=60,
    )


def open_lab(session: requests.Session, hub, seat: str) -> requests.Response:
    """GET a seat's lab as a browser does, clicking 'Authorize' on the hub's consent page."""
    r = session.get(f"{hub.url}/user/{seat}/lab", timeout=60)
    if r.status_code == 200 and "/hub/api/oauth2/authorize" in r.url and 'name="scopes"' in r.text:
        scopes = re.findall(r'type="hidden" name="scopes" value="([^"]*)"', r.text)
        xsrf = re.search(r'name="_xsrf" value="([^"]+)"', r.text).group(1)
        r = session.post(r.url, data={"_xsrf": xsrf, "scopes": scopes}, timeout=60)
    return r


def files_under(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and not p.is_symlink()}


def test_five_seat_workshop(hub_factory, tmp_path):
    overrides = {"culler": {"enabled": False}}
    profile = (REPO / "hub_config" / "local.toml").read_text()
    for other in ("gateway", "commons"):  # not needed here; keeps the test lean
        if f"[{other}]" in profile:
            overrides[other] = {"enabled": False}
    hub = hub_factory(**overrides)
    materials = hub.root / "materials"  # the trainer's folder; changed mid-workshop below
    subprocess.run(["cp", "-r", str(DATA / "materials-v1"), str(materials)], check=True)
    ends = (datetime.now() + timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M")

    out = hub.cli(
        "workshop",
        "create",
        "wk",
        "--seats",
        "5",
        "--trainer",
        "tina",
        "--materials",
        str(materials),
        "--ends",
        ends,
    )
    assert "materials in 5 of 5 seats" in out
    assert "labs shared with the trainers: 5 of 5" in out
    # the trainer reaches the seats' labs through JupyterHub's sharing (issue 18.4)
    shares = hub.api("GET", "/shares/wk-01").json()["items"]
    assert [(s["user"]["name"], s["scopes"]) for s in shares] == [
        ("tina", ["access:servers!server=wk-01/"])
    ]
    seats = [f"wk-0{i}" for i in range(1, 6)]
    group = hub.api("GET", "/groups/wk").json()
    assert sorted(group["users"]) == seats

    # credentials: one password per seat on the cards (CSV beside the printable sheet)
    tina_dir = hub.state / "homes" / "tina" / "workshops" / "wk"
    with open(tina_dir / "cards.csv", newline="") as fh:
        cards = {row["username"]: row["password"] for row in csv.DictReader(fh)}
    assert sorted(cards) == seats and len(set(cards.values())) == 5
    sheet = (tina_dir / "cards.html").read_text()
    assert all(cards[s] in sheet for s in seats)
    user_pw = hub.secrets["user_password"]
    assert form_login(hub, "wk-01", cards["wk-02"]).status_code == 403
    assert form_login(hub, "wk-01", user_pw).status_code == 403, (
        "the shared password must not open a seat"
    )
    trainee = login(hub, "wk-01", cards["wk-01"])
    assert trainee.get(f"{hub.url}/hub/api/user").json()["name"] == "wk-01"

    # materials are in every home, owned by the seat's account
    for seat in seats:
        home = hub.state / "homes" / seat
        assert (home / "wk" / "01-intro.ipynb").is_file()
        if os.geteuid() == 0:
            assert (home / "wk" / "01-intro.ipynb").owner() == f"jupyter-{seat}"

    hub.start_server("wk-01")
    hub.start_server("wk-02")

    # the trainer opens a trainee's lab through the proxy; someone else cannot
    trainer = login(hub, "tina", user_pw)
    lab = open_lab(trainer, hub, "wk-01")
    assert (
        lab.status_code == 200 and lab.url.endswith("/user/wk-01/lab") and "JupyterLab" in lab.text
    )
    # an editing share: the trainer writes into the seat's lab (the seat's server writes it, as
    # the seat), which is what working together in the same notebook needs
    xsrf = trainer.cookies.get("_xsrf", path="/user/wk-01/") or ""
    put = trainer.put(f"{hub.url}/user/wk-01/api/contents/from-tina.txt", timeout=60,
                      headers={"X-XSRFToken": xsrf},
                      json={"type": "file", "format": "text", "content": "hint: use df.records"})
    assert put.status_code in (200, 201), put.text
    written = hub.state / "homes" / "wk-01" / "from-tina.txt"
    assert written.read_text() == "hint: use df.records"
    if os.geteuid() == 0:
        assert written.owner() == "jupyter-wk-01"
    outsider = login(hub, "oscar", user_pw)
    assert open_lab(outsider, hub, "wk-01").status_code == 403
    # the trainer's role reaches the workshop's group only; the default 'user' role is kept
    assert trainer.get(f"{hub.url}/hub/api/user").json()["name"] == "tina"
    assert "last_activity" in trainer.get(f"{hub.url}/hub/api/users/wk-03").json()
    # beyond the group at most a name (every user may look names up to share a lab with them)
    outside = trainer.get(f"{hub.url}/hub/api/users/oscar")
    private = {"last_activity", "servers", "groups", "roles", "created"}
    assert outside.status_code == 404 or not private & set(outside.json()), outside.text
    assert {u["name"] for u in trainer.get(f"{hub.url}/hub/api/users").json()} <= {*seats, "tina"}

    # the trainers' page (the workshops service, through hub OAuth) lists the seats
    page = trainer.get(f"{hub.url}/services/workshops/", timeout=60)
    assert page.status_code == 200 and "wk-05" in page.text and "2 servers running" in page.text
    assert outsider.get(f"{hub.url}/services/workshops/", timeout=60).status_code == 403

    # an announcement on the hub pages of the workshop's people only
    hub.cli("workshop", "announce", "wk", "Break until 11:00 <coffee>")
    assert "Break until 11:00 &lt;coffee&gt;" in trainee.get(f"{hub.url}/hub/home").text
    assert "Break until" not in outsider.get(f"{hub.url}/hub/home").text

    # the trainee edits the notebook where the next version changes it, and hands in work
    edit = hub.execute(
        "wk-01",
        (
            "import json, pathlib\n"
            "p = pathlib.Path('wk/01-intro.ipynb'); nb = json.loads(p.read_text())\n"
            "nb['cells'][1]['source'] = 'import echoes_lab\\nanswer = 42  # mine'\n"
            "p.write_text(json.dumps(nb, indent=1))\n"
            "pathlib.Path('submissions').mkdir(exist_ok=True)\n"
            "pathlib.Path('submissions/answer.txt').write_text('42\\n')\n"
            "print('done')\n"
        ),
    )
    assert edit["errors"] == [] and edit["stdout"].strip() == "done", edit
    mine = (hub.state / "homes" / "wk-01" / "wk" / "01-intro.ipynb").read_bytes()

    subprocess.run(
        f"rm -rf {materials} && cp -r {DATA / 'materials-v2'} {materials}", shell=True, check=True
    )
    assert "materials in 5 of 5 seats" in hub.cli("workshop", "update-materials", "wk")
    home1, home2 = hub.state / "homes" / "wk-01", hub.state / "homes" / "wk-02"
    assert (home1 / "wk" / "01-intro.ipynb").read_bytes() == mine, "the trainee's edit must be kept"
    for home in (home1, home2):
        assert (home / "wk" / "02-dates.ipynb").read_bytes() == (
            DATA / "materials-v2" / "02-dates.ipynb"
        ).read_bytes()
    assert (home2 / "wk" / "01-intro.ipynb").read_bytes() == (
        DATA / "materials-v2" / "01-intro.ipynb"
    ).read_bytes()

    rows = {r["seat"]: r for r in json.loads(hub.cli("workshop", "status", "wk", "--json"))}
    assert rows["wk-01"]["signed_in"] and rows["wk-01"]["server"] == "running"
    assert rows["wk-03"]["server"] == "stopped" and not rows["wk-03"]["signed_in"]

    # collect: the submissions with a manifest of checksums, in the trainer's home
    manifest = Path(hub.cli("workshop", "collect", "wk").strip().split("manifest ")[-1])
    assert manifest.parent.parent == tina_dir / "collected"
    with open(manifest, newline="") as fh:
        entries = list(csv.DictReader(fh))
    assert [(e["seat"], e["file"]) for e in entries] == [("wk-01", "submissions/answer.txt")]
    assert entries[0]["sha256"] == hashlib.sha256(b"42\n").hexdigest()
    assert (manifest.parent / "wk-01" / "submissions" / "answer.txt").read_text() == "42\n"

    # close: servers stopped, one archive per seat with every file, logins refused, nothing deleted
    hub.cli("workshop", "close", "wk")
    assert not hub.api("GET", "/users/wk-01").json()["servers"]
    assert hub.api("GET", "/shares/wk-01").json()["items"] == []
    assert open_lab(trainer, hub, "wk-01").status_code != 200
    for seat in seats:
        home = hub.state / "homes" / seat
        with tarfile.open(tina_dir / "archive" / f"{seat}.tar.gz") as tar:
            archived = {m.name.split("/", 1)[1] for m in tar.getmembers() if m.isfile()}
        assert archived == files_under(home) and "wk/01-intro.ipynb" in archived
        assert (home / "wk" / "01-intro.ipynb").is_file()
    assert "submissions/answer.txt" in files_under(home1)
    assert form_login(hub, "wk-01", cards["wk-01"]).status_code == 403
    if os.geteuid() == 0:
        assert (tina_dir / "archive" / "wk-01.tar.gz").owner() == "jupyter-tina"
