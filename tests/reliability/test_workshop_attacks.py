"""Attacks on the root-run workshop tools, reproduced exactly, and "closed means closed".

Issue 13, items 1, 2 and 7. The first tests call the tools' file layer on a temporary state
directory as root (no hub: seconds); the last ones run ``echoes-lab workshop`` against a real hub
started as root, with a trainer who plants the link from their own kernel, as in the report.
Everything here needs root, as the hub that creates accounts does; the tests with a hub are
marked ``integration``.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import tarfile
from datetime import datetime, timedelta
from pathlib import Path

import psutil
import pytest
import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
from echoes_lab.errors import WorkshopError  # noqa: E402
from echoes_lab.hub.services.workshops import manage, materials, registry  # noqa: E402
from echoes_lab.hub.services.workshops.cards import render_cards  # noqa: E402
from echoes_lab.hub.services.workshops.homes import LocalHomes  # noqa: E402
from echoes_lab.hub.settings import load_settings  # noqa: E402

from harness import BIN, REPO, gone, new_root, processes, wait_for  # noqa: E402

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the attacks need root, as the hub has")

COURSE = REPO / "tests" / "data" / "workshops" / "materials-v1"
SECRET = '{"admin_password": "never-shown-to-users"}'


def owners(folder: Path) -> set[int]:
    return {os.lstat(p).st_uid for p in [folder, *folder.rglob("*")]}


def as_account(account, code: str) -> None:
    """Run ``code`` in a Python process of ``account``, in its home (what its kernel can do)."""
    subprocess.run([sys.executable, "-I", "-c", code], check=True, **account.run_as())


@pytest.fixture
def state():
    root = new_root("echoes-attack-")
    state = root / "state"
    (state / "homes").mkdir(parents=True)
    os.chmod(state, 0o711)
    os.chmod(state / "homes", 0o711)
    secrets = state / "secrets.json"
    fd = os.open(secrets, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, SECRET.encode())
    os.close(fd)
    settings = root / "settings.toml"
    settings.write_text(f'profile = "local"\n[hub]\nstate_dir = "{state}"\n')
    yield load_settings(settings)
    shutil.rmtree(root, ignore_errors=True)


def test_a_trainers_link_to_another_home_hands_over_nothing(state):
    """Issue 13.1 at the file layer: ``~trainer3/workshops -> <state>/homes/alice``, then the
    trainer's cards, collected work and archives are written. Before: alice's home was
    ``chown``-ed to jupyter-trainer3 (``give`` followed the link). Now: written as the trainer,
    the link leads nowhere the trainer could not write, and the tool says so."""
    homes = LocalHomes(state)
    alice = homes.ensure("atk-alice")
    homes.put_files(alice, "thesis", {"chapter1.md": b"alice's own words"})
    trainer = homes.ensure("atk-trainer3")
    as_account(trainer, f"import os; os.symlink({str(alice.home)!r}, 'workshops')")
    seat = homes.ensure("atk-wd-01")
    homes.put_files(seat, "submissions", {"answer.txt": b"42\n"})
    workshop = registry.Workshop(
        name="wd",
        trainers=[trainer.name],
        seats={seat.name: ""},
        ends=(registry.now() + timedelta(hours=1)).isoformat(),
    )
    folder, account = manage.trainer_folder(state, workshop)
    assert account == trainer and folder == "workshops/wd"

    with pytest.raises(WorkshopError, match="link"):
        homes.put_files(
            account, folder, render_cards("wd", "http://hub", "today", {seat.name: "pw"})
        )
    with pytest.raises(WorkshopError, match="link"):
        homes.collect([seat.name], ["submissions"], account, f"{folder}/collected/now")
    with pytest.raises(WorkshopError, match="link"):
        homes.archive(seat.name, account, f"{folder}/archive")

    assert owners(alice.home) == {alice.uid}
    assert not (alice.home / "wd").exists()
    assert (alice.home / "thesis" / "chapter1.md").read_bytes() == b"alice's own words"
    assert stat.S_IMODE(os.stat(alice.home).st_mode) == 0o700


def test_a_home_that_is_a_link_is_refused(state):
    """Root makes and hands over the home folder itself: never through a link."""
    os.symlink(state.state_dir, state.homes_dir / "atk-mallory")
    with pytest.raises(WorkshopError, match="link"):
        LocalHomes(state).ensure("atk-mallory")
    assert os.stat(state.state_dir).st_uid == 0
    assert stat.S_IMODE(os.stat(state.state_dir / "secrets.json").st_mode) == 0o600


def test_materials_with_a_link_to_the_secrets_leave_them_private(state):
    """Issue 13.2 at the file layer: ``notes.json -> <state>/secrets.json`` in the materials.
    Before: the link was copied into the workshop's repository and ``chmod 0644`` followed it.
    Now: the link is skipped (and named), secrets.json stays 0600 and is in no commit."""
    course = state.state_dir.parent / "course"
    shutil.copytree(COURSE, course)
    os.symlink(state.state_dir / "secrets.json", course / "notes.json")
    os.symlink(state.state_dir, course / "everything")
    os.link(state.state_dir / "secrets.json", course / "hard.json")  # root can; users cannot
    skipped: list[str] = []
    url, head = materials.publish(state.state_dir, "wd", str(course), skipped=skipped)

    secrets = state.state_dir / "secrets.json"
    assert stat.S_IMODE(os.stat(secrets).st_mode) == 0o600 and secrets.read_text() == SECRET
    assert any("notes.json: a symbolic link" in s for s in skipped), skipped
    assert any("everything: a symbolic link" in s for s in skipped), skipped
    assert any("hard.json: a hard link" in s for s in skipped), skipped
    repo = Path(url.removeprefix("file://"))
    tracked = subprocess.run(
        ["git", "-c", "safe.directory=*", "ls-files"],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert "01-intro.ipynb" in tracked
    assert not {"notes.json", "hard.json"} & set(tracked)
    assert not any(t.startswith("everything") for t in tracked)
    for path in repo.rglob("*"):
        assert not path.is_symlink(), path
        if path.is_file() and ".git" not in path.parts:
            assert SECRET not in path.read_text(errors="replace")


def test_a_materials_path_through_a_link_is_refused(state):
    link = state.state_dir.parent / "course-link"
    os.symlink(state.state_dir, link)
    with pytest.raises(WorkshopError, match="link"):
        materials.publish(state.state_dir, "wd", str(link))
    assert stat.S_IMODE(os.stat(state.state_dir / "secrets.json").st_mode) == 0o600


def test_collect_reads_a_seat_as_the_seat(state):
    """A seat's ``submissions/`` with links to root's files: only the seat's own files travel."""
    homes = LocalHomes(state)
    seat = homes.ensure("atk-wd-02")
    trainer = homes.ensure("atk-tina")
    homes.put_files(seat, "submissions", {"answer.txt": b"42\n"})
    as_account(
        seat,
        "import os\n"
        f"os.symlink({str(state.state_dir / 'secrets.json')!r}, 'submissions/s.json')\n"
        f"os.symlink({str(state.state_dir)!r}, 'submissions/state')\n",
    )
    rows = homes.collect([seat.name], ["submissions", "submissions/state/*"], trainer, "out")
    assert [(r["seat"], r["file"]) for r in rows] == [(seat.name, "submissions/answer.txt")]
    collected = trainer.home / "out"
    assert owners(collected) == {trainer.uid}
    assert (collected / seat.name / "submissions" / "answer.txt").read_bytes() == b"42\n"
    assert "answer.txt" in (collected / "manifest.csv").read_text()
    assert SECRET not in "".join(p.read_text() for p in collected.rglob("*") if p.is_file())
    archive = homes.archive(seat.name, trainer, "archive")
    with tarfile.open(archive) as tar:
        links = {m.name: m.linkname for m in tar.getmembers() if m.issym()}
        assert links[f"{seat.name}/submissions/s.json"].endswith("secrets.json")  # a link, kept
        assert SECRET.encode() not in b"".join(
            tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()
        )
    assert os.stat(archive).st_uid == trainer.uid


# -- the same attacks through the command line, on a real hub ------------------------------


@pytest.fixture(scope="module")
def hub(module_hubs):
    # only what these tests need: workshops and reports (and a lean, fast hub)
    # services trust a checked token for [services] auth_cache_age seconds: 2 here, so that
    # "revoked everywhere" is checked within seconds rather than the default 30
    overrides = {"culler": {"enabled": False}, "services": {"auth_cache_age": 2}}
    profile = (REPO / "hub_config" / "local.toml").read_text()
    for other in ("gateway", "commons"):  # projects stays: it makes the labs shareable
        if f"[{other}]" in profile:
            overrides[other] = {"enabled": False}
    return module_hubs(**overrides)


def workshop(hub, *args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "echoes-lab"), "workshop", "--settings", str(hub.settings_file), *args],
        capture_output=True,
        text=True,
        timeout=240,
    )


def ends() -> str:
    return (datetime.now() + timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M")


@pytest.mark.integration
def test_cli_trainer_link_attack(hub):
    """Exactly issue 13.1: trainer3 signs in and plants the link from a kernel; an admin runs
    ``echoes-lab workshop create wd --seats 1 --trainer trainer3``; alice keeps her files."""
    for name in ("alice", "trainer3"):
        hub.create_user(name)
        hub.start_server(name)
    wrote = hub.execute("alice", "open('diary.txt', 'w').write('alice only'); print('ok')")
    assert wrote["stdout"].strip() == "ok", wrote
    alice_home = hub.state / "homes" / "alice"
    planted = hub.execute("trainer3", f"import os; os.symlink({str(alice_home)!r}, 'workshops')")
    assert planted["errors"] == [], planted

    done = workshop(
        hub,
        "create",
        "wd",
        "--seats",
        "1",
        "--trainer",
        "trainer3",
        "--materials",
        str(COURSE),
        "--ends",
        ends(),
    )
    assert done.returncode == 1 and "link" in done.stdout, done
    assert "cards are in" in done.stdout  # the workshop exists; the cards are safe with root
    alice_uid = os.stat(alice_home).st_uid
    assert (
        owners(alice_home) == {alice_uid}
        and alice_uid != os.stat(hub.state / "homes" / "trainer3").st_uid
    )
    assert not (alice_home / "wd").exists()
    assert (alice_home / "diary.txt").read_text() == "alice only"


@pytest.mark.integration
def test_cli_materials_link_attack(hub, tmp_path):
    """Exactly issue 13.2: ``notes.json -> <state>/secrets.json`` passed to ``--materials``."""
    course = tmp_path / "course"
    shutil.copytree(COURSE, course)
    os.symlink(hub.state / "secrets.json", course / "notes.json")
    before = stat.S_IMODE(os.stat(hub.state / "secrets.json").st_mode)
    done = workshop(
        hub,
        "create",
        "wm",
        "--seats",
        "1",
        "--trainer",
        "tm",
        "--materials",
        str(course),
        "--ends",
        ends(),
    )
    assert "skipped notes.json: a symbolic link" in done.stdout, done
    assert "materials in 1 of 1 seats" in done.stdout
    assert before == stat.S_IMODE(os.stat(hub.state / "secrets.json").st_mode) == 0o600
    seat_copy = hub.state / "homes" / "wm-01" / "wm"
    assert (seat_copy / "01-intro.ipynb").is_file() and not os.path.lexists(
        seat_copy / "notes.json"
    )


@pytest.fixture(scope="module")
def closed(hub):
    """A one-seat workshop whose seat left a detached process and a schedule, then closed."""
    made = workshop(hub, "create", "wc", "--seats", "1", "--trainer", "tc", "--warm",
                    "--materials", str(COURSE), "--ends", ends())
    assert made.returncode == 0, made
    # --warm: the seat's server was started through the hub's API, before anyone signed in
    assert "servers running for 1 of 1 seats" in made.stdout
    seat = "wc-01"
    assert hub.api("GET", f"/users/{seat}").json()["servers"][""]["ready"]
    started = hub.execute(
        seat,
        (
            "import nbformat, subprocess\n"
            "nb = nbformat.v4.new_notebook(metadata={'kernelspec': {'name': 'echoes', "
            "'display_name': 'ECHOES Lab (Python 3)', 'language': 'python'}})\n"
            "nb.cells = [nbformat.v4.new_code_cell('x = 1', metadata={'tags': ['parameters']})]\n"
            "nbformat.write(nb, 'daily.ipynb')\n"
            "p = subprocess.Popen(['setsid', 'sleep', '600'])  # setsid execs sleep: same pid\n"
            "print(p.pid)\n"
        ),
    )
    assert started["errors"] == [], started
    pid = int(started["stdout"].split()[-1])
    token = hub.api(
        "POST", f"/users/{seat}/tokens", json={"scopes": ["access:services!service=reports"]}
    ).json()["token"]
    reports = f"{hub.url}/services/reports/api/schedules"
    made = requests.post(
        reports,
        headers={"Authorization": f"token {token}"},
        timeout=60,
        json={"notebook": "daily.ipynb", "cron": "0 3 * * *", "parameters": {"x": 2}},
    )
    uid = psutil.Process(pid).uids().real
    done = workshop(hub, "close", "wc")
    return {
        "seat": seat,
        "pid": pid,
        "uid": uid,
        "token": token,
        "reports": reports,
        "made": made,
        "close": done,
    }


@pytest.mark.integration
def test_close_ends_every_process_and_token(hub, closed):
    """Issue 13.7: after ``close`` the seat's detached (``setsid``) process is gone and its
    tokens no longer work; its home is archived and the workshop marked closed."""
    done, seat = closed["close"], closed["seat"]
    assert done.returncode == 0, done
    assert closed["uid"] == os.stat(hub.state / "homes" / seat).st_uid  # the seat's own account

    assert gone(closed["pid"]), "the detached process of the seat survived close"
    assert not processes(lambda p: closed["uid"] in p.uids())
    assert "other processes ended" in done.stdout
    auth = {"Authorization": f"token {closed['token']}"}
    assert hub.api("GET", "/user", token=closed["token"]).status_code == 403
    assert hub.api("GET", f"/users/{seat}/tokens").json()["api_tokens"] == []
    wait_for(
        lambda: requests.get(closed["reports"], headers=auth, timeout=60).status_code in (401, 403),
        2 + 10,
        "the reports service to refuse the revoked token",
    )
    assert (
        hub.state / "homes" / "tc" / "workshops" / "wc" / "archive" / f"{seat}.tar.gz"
    ).is_file()
    assert json.loads((hub.state / "workshops" / "wc" / "workshop.json").read_text())["closed"]
    assert hub.api("GET", f"/shares/{seat}").json()["items"] == []


@pytest.mark.integration
def test_close_pauses_the_seats_schedules(hub, closed):
    """Issue 13.7: the seat's schedule no longer runs (paused, kept with its history)."""
    assert closed["made"].status_code == 201, closed["made"].text
    assert "1 schedules paused" in closed["close"].stdout, closed["close"].stdout
    fresh = hub.api(
        "POST",
        f"/users/{closed['seat']}/tokens",
        json={"scopes": ["access:services!service=reports"]},
    ).json()["token"]
    listed = requests.get(
        closed["reports"], headers={"Authorization": f"token {fresh}"}, timeout=60
    ).json()
    assert [s["enabled"] for s in listed] == [False]
