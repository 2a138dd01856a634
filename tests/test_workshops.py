"""Workshops without a hub: registry, passwords, cards, the authenticator, materials merging.

The end-to-end test with a real hub is ``tests/integration/test_workshop_session.py``.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace

import pytest
from tornado import web

from echoes_lab.errors import WorkshopError
from echoes_lab.hub.services.workshops import materials, registry
from echoes_lab.hub.services.workshops.accounts import Account
from echoes_lab.hub.services.workshops.auth import WorkshopAuthenticator, announcement_for
from echoes_lab.hub.services.workshops.cards import write_cards

DATA = Path(__file__).parent / "data" / "workshops"
SHARED = "shared-user-password"


def test_scrypt_matches_rfc_7914_test_vector():
    """RFC 7914 §12, second vector: scrypt("password", "NaCl", N=1024, r=8, p=16, dkLen=64)."""
    expected = (
        "fdbabe1c9d3472007856e7190d01e9fe7c6ad7cbc8237830e77376634b373162"
        "2eaf30d92e22a3886ff109279d9830dac727afb94a83ee6d8360cbdfa2cc0640"
    )
    stored = f"scrypt$1024$8$16${b'NaCl'.hex()}${expected}"
    assert registry.verify_password("password", stored)
    assert not registry.verify_password("Password", stored)
    assert hashlib.scrypt(b"password", salt=b"NaCl", n=1024, r=8, p=16, dklen=64).hex() == expected


def test_passwords_are_random_readable_and_hashed():
    pw = registry.new_password()
    assert len(pw) == 14 and pw.count("-") == 2 and not set(pw) & set("01lIoO")
    stored = registry.hash_password(pw)
    assert pw not in stored and registry.verify_password(pw, stored)
    assert registry.hash_password(pw) != stored  # salted
    assert not registry.verify_password(pw, "plain-text")


@pytest.mark.parametrize("name", ["", "A", "x", "Colour-101", "1course", "a" * 21, "wk_1", "wk 1"])
def test_bad_workshop_names_are_refused(name):
    with pytest.raises(WorkshopError, match="lower-case letters"):
        registry.check_name(name)


def test_seat_names_and_role_reach_only_the_group():
    assert registry.seat_names("wk", 3) == ["wk-01", "wk-02", "wk-03"]
    assert registry.seat_names("wk", 120)[-1] == "wk-120"
    w = registry.Workshop(name="wk", trainers=["tina"], seats={}, ends="2026-12-01T17:00+00:00")
    role = w.role()
    assert role["name"] == "workshop-wk-trainer"
    assert all(s.endswith("!group=wk") for s in role["scopes"])
    assert {"servers!group=wk", "read:users!group=wk"} <= set(role["scopes"])
    # opening the seats' labs comes from JupyterHub shares (manage.share_with_trainers)
    assert not any(s.startswith("access:servers") for s in role["scopes"])


def test_ends_parsing():
    assert registry.parse_ends("2026-12-01T17:00").tzinfo is not None
    assert registry.parse_ends("2026-12-01T17:00+01:00").utcoffset() == timedelta(hours=1)
    with pytest.raises(WorkshopError, match="--ends 'tomorrow': write a date"):
        registry.parse_ends("tomorrow")


def test_cards_html_and_csv(tmp_path):
    html, table = write_cards(
        tmp_path,
        "wk",
        "http://hub:8000",
        "2026-12-01 17:00",
        {"wk-02": "bbbb-<x>", "wk-01": "aaaa-aaaa"},
    )
    text = html.read_text()
    assert text.count('class="card"') == 2 and "bbbb-&lt;x&gt;" in text and "<x>" not in text
    rows = list(csv.DictReader(table.open()))
    assert [r["username"] for r in rows] == ["wk-01", "wk-02"] and rows[1]["password"] == "bbbb-<x>"
    for path in (html, table):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600


def _save(state: Path, **kw) -> registry.Workshop:
    base = dict(
        name="wk",
        trainers=["tina"],
        ends=(registry.now() + timedelta(hours=2)).isoformat(),
        seats={
            "wk-01": registry.hash_password("card-pw-1"),
            "wk-02": registry.hash_password("card-pw-2"),
        },
    )
    w = registry.Workshop(**{**base, **kw})
    registry.save(state, w)
    return w


def _auth(state: Path) -> WorkshopAuthenticator:
    return WorkshopAuthenticator(
        state_dir=str(state),
        user_password=SHARED,
        admin_password="a" * 40,
        admin_users={"admin"},
        allow_all=True,
        manage_roles=True,
    )


def _login(auth, username, password):
    return asyncio.run(auth.authenticate(None, {"username": username, "password": password}))


def test_authenticator_seats_trainers_and_others(tmp_path):
    _save(tmp_path)
    auth = _auth(tmp_path)
    assert _login(auth, "wk-01", "card-pw-1") == {"name": "wk-01"}
    assert _login(auth, "wk-01", "card-pw-2") is None
    assert _login(auth, "wk-01", SHARED) is None  # the shared password never opens a seat
    trainer = _login(auth, "tina", SHARED)
    assert trainer["name"] == "tina"
    assert [r["name"] for r in trainer["roles"]] == [
        "user",
        "workshop-wk-trainer",
        "workshop-trainers-page",
    ]
    other = _login(auth, "oscar", SHARED)
    assert other["name"] == "oscar" and "roles" not in other  # no roles key: roles untouched
    roles = {r["name"]: r for r in asyncio.run(auth.load_managed_roles())}
    assert (
        roles["workshop-wk-trainer"]["users"]
        == roles["workshop-trainers-page"]["users"]
        == ["tina"]
    )


def test_closed_or_ended_workshop_refuses_its_seats(tmp_path):
    w = _save(tmp_path)
    auth = _auth(tmp_path)
    seat = SimpleNamespace(name="wk-01")
    assert asyncio.run(auth.refresh_user(seat)) is True
    w.closed = registry.now().isoformat()
    registry.save(tmp_path, w)
    with pytest.raises(web.HTTPError) as err:
        _login(auth, "wk-01", "card-pw-1")
    assert err.value.status_code == 403 and "closed" in err.value.log_message
    assert asyncio.run(auth.refresh_user(seat)) is False
    # the trainer keeps signing in, without the closed workshop's role
    assert [r["name"] for r in _login(auth, "tina", SHARED)["roles"]] == ["user"]
    _save(
        tmp_path,
        name="late",
        ends=(registry.now() - timedelta(minutes=1)).isoformat(),
        seats={"late-01": registry.hash_password("x")},
    )
    with pytest.raises(web.HTTPError, match="403"):
        _login(auth, "late-01", "x")


def test_announcement_is_escaped_and_for_members_only(tmp_path):
    _save(tmp_path, announcement="Break <b>now</b>")
    show = announcement_for(tmp_path)
    assert (
        show(SimpleNamespace(name="wk-02")) == "<strong>wk</strong>: Break &lt;b&gt;now&lt;/b&gt;"
    )
    assert show(SimpleNamespace(name="tina")).endswith("Break &lt;b&gt;now&lt;/b&gt;")
    assert show(SimpleNamespace(name="oscar")) == "" and show(None) == ""


def _nb(path: Path) -> bytes:
    return path.read_bytes()


def test_materials_merge_keeps_trainee_edits_and_adds_new_files(tmp_path):
    """Real git and nbgitpuller, as the current user (the hub's accounts: with the hub)."""
    state = tmp_path / "state"
    source = tmp_path / "course"
    shutil.copytree(DATA / "materials-v1", source)
    url, first = materials.publish(state, "wk", str(source))
    homes = [tmp_path / "homes" / s for s in ("wk-01", "wk-02")]
    accounts = []
    for home in homes:
        home.mkdir(parents=True)
        accounts.append(Account(home.name, home, os.getuid(), os.getgid(), False))
    assert materials.pull_all(state, accounts, url, "wk") == {"wk-01": "ok", "wk-02": "ok"}
    intro = homes[0] / "wk" / "01-intro.ipynb"
    nb = json.loads(intro.read_text())
    nb["cells"][1]["source"] = "import echoes_lab\nanswer = 42  # mine"
    intro.write_text(json.dumps(nb, indent=1))
    mine = intro.read_bytes()
    (homes[0] / "wk" / "notes.txt").write_text("my notes")

    shutil.rmtree(source)
    shutil.copytree(DATA / "materials-v2", source)
    url, second = materials.publish(state, "wk", str(source))
    assert second != first
    assert materials.publish(state, "wk", str(source))[1] == second  # unchanged: no new commit
    assert materials.pull_all(state, accounts, url, "wk") == {"wk-01": "ok", "wk-02": "ok"}
    assert intro.read_bytes() == mine
    assert (homes[0] / "wk" / "notes.txt").read_text() == "my notes"
    for home in homes:
        assert _nb(home / "wk" / "02-dates.ipynb") == _nb(DATA / "materials-v2" / "02-dates.ipynb")
    assert _nb(homes[1] / "wk" / "01-intro.ipynb") == _nb(DATA / "materials-v2" / "01-intro.ipynb")


def test_materials_from_a_git_repository_and_bad_sources(tmp_path):
    repo = tmp_path / "upstream"
    shutil.copytree(DATA / "materials-v1", repo)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.org"]
    subprocess.run(["git", "init", "-q", "-b", "trunk"], cwd=repo, check=True)
    subprocess.run(["git", "add", "-A"], cwd=repo, check=True)
    subprocess.run([*git, "commit", "-qm", "v1"], cwd=repo, check=True)
    url, head = materials.publish(tmp_path / "state", "wk", str(repo))
    assert url.endswith("materials.git") and len(head) == 40
    home = tmp_path / "home"
    home.mkdir()
    materials.pull_into(
        Account("s", home, os.getuid(), os.getgid(), False),
        url,
        "wk",
        materials._git_env(tmp_path / "state"),
    )
    assert (home / "wk" / "README.md").is_file()
    with pytest.raises(WorkshopError, match="no such folder"):
        materials.publish(tmp_path / "state", "wk2", str(tmp_path / "missing"))


def test_cli_reports_bad_input_in_one_line(tmp_path):
    exe = str(Path(sys.executable).with_name("echoes-lab"))
    settings = tmp_path / "s.toml"
    settings.write_text(f'profile = "local"\n[hub]\nstate_dir = "{tmp_path / "state"}"\n')
    past = (datetime.now(timezone.utc) - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    for args, words in [
        (
            [
                "create",
                "wk",
                "--seats",
                "0",
                "--trainer",
                "t",
                "--materials",
                ".",
                "--ends",
                "2030-01-01T10:00",
            ],
            "--seats 0",
        ),
        (
            ["create", "wk", "--seats", "3", "--trainer", "t", "--materials", ".", "--ends", past],
            "already passed",
        ),
        (["status", "nothere"], "no workshop named 'nothere'"),
    ]:
        done = subprocess.run(
            [exe, "workshop", "--settings", str(settings), *args],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 1, done
        assert words in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_overdue_lists_ended_workshops_not_yet_closed(tmp_path):
    from echoes_lab.hub.services.workshops.manage import overdue

    settings = tmp_path / "s.toml"
    settings.write_text(f'profile = "local"\n[hub]\nstate_dir = "{tmp_path}"\n')
    past = (registry.now() - timedelta(minutes=5)).isoformat()
    _save(tmp_path)
    _save(tmp_path, name="ended", ends=past, seats={})
    _save(tmp_path, name="done", ends=past, seats={}, closed=past)
    assert overdue(settings) == ["ended"]


def _local_homes(tmp_path):
    from echoes_lab.hub.services.workshops.homes import LocalHomes
    from echoes_lab.hub.settings import load_settings

    settings = tmp_path / "s.toml"
    settings.write_text(
        f'profile = "local"\n[hub]\nstate_dir = "{tmp_path / "state"}"\n'
        '[spawner]\nisolation = "none"\n'
    )
    return LocalHomes(load_settings(settings))


def test_local_homes_cards_collect_and_archive_round_trip(tmp_path):
    """The ``local`` Homes without root (one shared uid): files land where they should, the
    manifest's checksums are the files', the archive holds the whole home."""
    homes = _local_homes(tmp_path)
    seat, trainer = homes.ensure("wk-01"), homes.ensure("tina")
    assert stat.S_IMODE(seat.home.stat().st_mode) == 0o700
    homes.put_files(seat, "submissions", {"answer.txt": b"42\n", "notes.md": b"# notes\n"})
    (seat.home / "submissions" / "link.txt").symlink_to(seat.home / "submissions" / "notes.md")
    folder = homes.put_files(trainer, "workshops/wk", {"cards.csv": b"a,b\n"})
    assert (folder / "cards.csv").read_bytes() == b"a,b\n"
    assert stat.S_IMODE((folder / "cards.csv").stat().st_mode) == 0o600

    rows = homes.collect(["wk-01", "wk-02"], ["submissions"], trainer, "workshops/wk/c")
    assert [(r["file"], r["bytes"]) for r in rows] == [
        ("submissions/answer.txt", 3),
        ("submissions/notes.md", 8),
    ]
    assert rows[0]["sha256"] == hashlib.sha256(b"42\n").hexdigest()
    out = trainer.home / "workshops" / "wk" / "c"
    assert (out / "wk-01" / "submissions" / "answer.txt").read_bytes() == b"42\n"
    assert not (out / "wk-01" / "submissions" / "link.txt").exists()  # links are not collected
    with open(out / "manifest.csv", newline="") as fh:
        assert [r["file"] for r in csv.DictReader(fh)] == [r["file"] for r in rows]

    archive = homes.archive("wk-01", trainer, "workshops/wk/archive")
    import tarfile

    with tarfile.open(archive) as tar:
        names = {m.name for m in tar.getmembers()}
        assert {"wk-01/submissions/answer.txt", "wk-01/submissions/link.txt"} <= names
        assert tar.getmember("wk-01/submissions/link.txt").issym()
    before = archive.read_bytes()
    assert homes.archive("wk-01", trainer, "workshops/wk/archive") == archive
    assert archive.read_bytes() == before  # an archive is never overwritten
    assert homes.archive("nobody", trainer, "workshops/wk/archive") is None


def test_kill_processes_ends_detached_ones(tmp_path):
    """Without root all users share one uid: a seat's processes are those the spawner marked
    with its JUPYTERHUB_USER (inherited by children, setsid or not)."""
    from echoes_lab.hub.services.workshops.homes import kill_processes

    from harness import processes

    def marked(name):
        return processes(lambda p: p.environ().get("JUPYTERHUB_USER") == name)

    env = {**os.environ, "JUPYTERHUB_USER": "wk-kill-01"}
    # setsid --fork: the sleep runs detached in a session of its own, its parent exits
    subprocess.run(["setsid", "--fork", "sleep", "300"], env=env, check=True)
    other = subprocess.Popen(["sleep", "300"], env={**os.environ, "JUPYTERHUB_USER": "someone"})
    try:
        assert len(marked("wk-kill-01")) == 1
        account = Account("wk-kill-01", tmp_path, os.getuid(), os.getgid(), False)
        assert kill_processes(account) == 1
        assert marked("wk-kill-01") == []
        assert other.poll() is None  # somebody else's process is untouched
    finally:
        for p in marked("wk-kill-01"):
            p.kill()
        other.kill()
        other.wait()


def test_starts_makes_a_workshop_due_to_warm_ten_minutes_before(tmp_path):
    from echoes_lab.hub.services.workshops.manage import WARM_LEAD, due_to_warm

    settings = tmp_path / "s.toml"
    settings.write_text(f'profile = "local"\n[hub]\nstate_dir = "{tmp_path}"\n')
    soon = (registry.now() + WARM_LEAD - timedelta(minutes=1)).isoformat()
    later = (registry.now() + WARM_LEAD + timedelta(minutes=5)).isoformat()
    _save(tmp_path, name="soon", starts=soon)
    _save(tmp_path, name="later", starts=later)
    _save(tmp_path, name="done", starts=soon, warmed=registry.now().isoformat())
    _save(tmp_path, name="nostart")
    assert due_to_warm(settings) == ["soon"]
    with pytest.raises(WorkshopError, match="--starts 'at nine'"):
        registry.parse_ends("at nine", "--starts")
