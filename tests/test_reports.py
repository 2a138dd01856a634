"""echoes_lab.hub.services.reports without a hub: cron checks, the store, the missed-run policy,
deleted schedules, closed accounts, and a run's final state after a restart.

The service end to end (hub OAuth, runs in the owner's named server, restarts) is in
tests/integration/test_reports_service.py; the attacks in tests/reliability/.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import tomli_w

from echoes_lab.hub.services.reports.scheduler import (
    Scheduler,
    check_cron,
    check_notebook_path,
    crate_status,
    describe_cron,
    next_fire,
    next_times,
)
from echoes_lab.hub.services.reports.servers import NotFound, OwnerServers
from echoes_lab.hub.services.reports.store import Store
from echoes_lab.hub.settings import load_settings


def make_settings(tmp_path, **reports):
    f = tmp_path / "site.toml"
    f.write_text(
        tomli_w.dumps(
            {
                "profile": "test",
                "hub": {"state_dir": str(tmp_path / "state")},
                "spawner": {"isolation": "none"},
                "reports": reports,
            }
        )
    )
    (tmp_path / "state" / "homes").mkdir(parents=True)
    return load_settings(f)


def unreachable_hub() -> OwnerServers:
    # a port nobody listens on: every call fails as a hub that is down does
    return OwnerServers("http://127.0.0.1:9/hub/api", "x", "http://127.0.0.1:9", linger=0)


def test_cron_five_fields_or_six_with_seconds_first():
    t = datetime(2026, 11, 25, 6, 0, 30, tzinfo=UTC)
    assert next_fire(check_cron("* * * * *"), t) == datetime(2026, 11, 25, 6, 1, tzinfo=UTC)
    assert next_fire(check_cron("0 6 1 * *"), t) == datetime(2026, 12, 1, 6, 0, tzinfo=UTC)
    assert next_fire(check_cron("*/20 * * * * *"), t) == datetime(
        2026, 11, 25, 6, 0, 40, tzinfo=UTC
    )
    for bad in ("every minute", "* * * *", "61 * * * *"):
        with pytest.raises(ValueError, match="not a cron expression"):
            check_cron(bad)
    assert next_times("0 6 1 * *", t) == [
        datetime(2026, 12, 1, 6, tzinfo=UTC),
        datetime(2027, 1, 1, 6, tzinfo=UTC),
        datetime(2027, 2, 1, 6, tzinfo=UTC),
    ]
    assert describe_cron("0 6 1 * *") == "At 06:00, on day 1 of the month (UTC)"


def test_impossible_and_too_frequent_crons_are_refused_clearly():
    with pytest.raises(ValueError, match="never fires"):
        check_cron("0 0 31 2 *")
    with pytest.raises(ValueError, match=r"fires every 1 s.*reports.min_interval"):
        check_cron("* * * * * *", min_interval=300)
    # the shortest gap counts, not the first one
    with pytest.raises(ValueError, match="fires every 60 s"):
        check_cron("0,1 * * * *", min_interval=300)
    assert check_cron("*/5 * * * *", min_interval=300) == "*/5 * * * *"


def test_notebook_paths_stay_inside_the_home():
    assert check_notebook_path(" work/r.ipynb ") == "work/r.ipynb"
    for bad in ("/etc/passwd.ipynb", "../bob/r.ipynb", "a/../../r.ipynb", "r.py", ""):
        with pytest.raises(ValueError, match="inside your home folder"):
            check_notebook_path(bad)


@pytest.mark.parametrize("policy", ["skip", "run-once"])
def test_runs_missed_while_down_follow_the_policy(tmp_path, policy):
    settings = make_settings(tmp_path, missed=policy, retries=0)
    store = Store(settings.state_dir / "reports.sqlite")
    t = datetime.now(UTC).replace(microsecond=0)
    # due at the minute 3 min before now's, every minute: 4 fire times fell while it was down
    sch = store.add_schedule(
        "ada", "r", "r.ipynb", {}, "* * * * *", t.replace(second=0) - timedelta(minutes=3)
    )
    paused = store.add_schedule(
        "ada", "p", "p.ipynb", {}, "* * * * *", t - timedelta(minutes=5), enabled=False
    )

    async def start_and_settle():
        scheduler = Scheduler(settings, store, unreachable_hub(), clock=lambda: t)
        scheduler.apply_missed_policy(t)
        scheduler.dispatch()
        while scheduler.busy:
            await asyncio.sleep(0.05)

    asyncio.run(start_and_settle())
    runs = store.runs(sch["id"])
    assert len(runs) == 1
    assert runs[0]["note"].startswith("4 scheduled time(s)")
    if policy == "skip":
        assert runs[0]["status"] == "missed"
    else:
        # the catch-up run was tried; the hub is down here, so it fails and says why
        assert runs[0]["trigger"] == "catch-up" and runs[0]["status"] == "failed"
        assert "cannot reach" in runs[0]["error"]
    assert (
        store.schedule(sch["id"])["next_run"]
        == (t + timedelta(minutes=1)).replace(second=0).isoformat()
    )
    assert store.runs(paused["id"]) == []  # a paused schedule misses nothing


def test_deleting_a_schedule_drops_its_queued_runs_and_closing_an_account_pauses_all(tmp_path):
    store = Store(tmp_path / "r.sqlite")
    t = datetime.now(UTC)
    a = store.add_schedule("ada", "a", "a.ipynb", {}, "0 6 * * *", t)
    b = store.add_schedule("ada", "b", "b.ipynb", {}, "0 6 * * *", t)
    other = store.add_schedule("bob", "c", "c.ipynb", {}, "0 6 * * *", t)
    queued = store.add_run(a, "schedule")
    assert store.delete_schedule(a["id"]) == 1
    assert store.run(queued["id"])["status"] == "cancelled"

    settings = make_settings(tmp_path)
    scheduler = Scheduler(settings, store, unreachable_hub(), clock=lambda: t)
    waiting = store.add_run(b, "schedule")
    assert asyncio.run(scheduler.disable_owner("ada", "the workshop was closed")) == 1
    assert store.schedule(b["id"])["enabled"] is False
    assert store.run(waiting["id"])["status"] == "cancelled"
    assert store.run(waiting["id"])["error"] == "the workshop was closed"
    assert store.schedule(other["id"])["enabled"] is True
    assert store.owners() == ["bob"]


class FolderServers(OwnerServers):
    """The owner's server answered from a local folder: a stand-in for the hub's contents API
    (only the two calls reconciliation makes), so a restart can be replayed without a hub."""

    def __init__(self, home: Path, alive: set[str]):
        super().__init__("http://127.0.0.1:9/hub/api", "x", "http://127.0.0.1:9", linger=0)
        self.home, self.alive = home, alive

    @contextlib.asynccontextmanager
    async def lease(self, owner):
        yield self

    async def kernel_alive(self, owner, kernel_id):
        return kernel_id in self.alive

    async def contents(self, owner, path, **params):
        p = self.home / path
        if not p.exists():
            raise NotFound(path)
        if p.is_dir():
            return {"content": [{"name": c.name} for c in p.iterdir()]}
        return {"content": p.read_text()}


def test_a_run_that_completed_is_never_marked_interrupted_after_a_restart(tmp_path):
    """The service died while runs were under way; at its next start the crates decide."""
    from echoes_lab.runs.provenance import write_crate

    settings = make_settings(tmp_path)
    home = tmp_path / "home"
    store = Store(tmp_path / "r.sqlite")
    t = datetime.now(UTC)
    sch = store.add_schedule("ada", "r", "work/r.ipynb", {}, "0 6 * * *", t)
    done, lost = store.add_run(sch, "schedule"), store.add_run(sch, "schedule")
    for run, folder in ((done, "reports/r-1/a-run1"), (lost, "reports/r-1/b-run2")):
        store.update_run(run["id"], status="running", output_dir=folder, kernel="k-gone")
    out = home / "reports/r-1/a-run1"
    (out / "source").mkdir(parents=True)
    for name in ("source/r.ipynb", "r.ipynb", "r.html"):
        (out / name).write_text("{}")
    write_crate(
        out,
        source=out / "source/r.ipynb",
        executed=out / "r.ipynb",
        html=out / "r.html",
        parameters={},
        datasets=[],
        start=t,
        end=t,
        status="completed",
    )
    assert crate_status((out / "ro-crate-metadata.json").read_text()) == "completed"

    async def restart():
        scheduler = Scheduler(settings, store, FolderServers(home, alive=set()), clock=lambda: t)
        scheduler.start()
        while any(r["status"] == "running" for r in store.runs(sch["id"])):
            await asyncio.sleep(0.05)
        await scheduler.stop()

    asyncio.run(restart())
    assert store.run(done["id"])["status"] == "completed"
    assert store.run(done["id"])["outputs"] == {
        "notebook": "r.ipynb",
        "html": "r.html",
        "crate": "ro-crate-metadata.json",
    }
    assert store.run(lost["id"])["status"] == "interrupted"
    assert json.loads((out / "ro-crate-metadata.json").read_text())  # untouched


def test_the_named_server_is_stopped_after_its_last_use_even_after_an_error():
    """Leases: one start for overlapping uses, one stop after the last (errors included); a
    use cut off by the service's own stop leaves the server to the run under way."""
    calls = []

    class Recorded(OwnerServers):
        async def _start(self, owner):
            calls.append(("start", owner))

        async def stop(self, owner):
            calls.append(("stop", owner))

    async def scenario():
        s = Recorded("http://127.0.0.1:9/hub/api", "x", "http://127.0.0.1:9", linger=0.05)
        async with s.lease("ada"), s.lease("ada"):
            pass
        await asyncio.sleep(0.2)
        with pytest.raises(NotFound):
            async with s.lease("ada"):
                raise NotFound("x")
        await asyncio.sleep(0.2)
        assert s.leases["ada"] == 0

        async def cut_off():
            async with s.lease("bob"):
                await asyncio.sleep(10)

        task = asyncio.ensure_future(cut_off())
        await asyncio.sleep(0.05)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await asyncio.sleep(0.2)

    asyncio.run(scenario())
    assert calls == [("start", "ada"), ("start", "ada"), ("stop", "ada"), ("start", "ada"),
                     ("stop", "ada"), ("start", "bob")]


# -- whose notebook runs (issue 26): the code the service sends to the owner's kernel ---------


def _in_kernel(code: str, home: Path, projects: Path) -> list[str]:
    """Run the service's kernel code as a kernel would (a fresh interpreter, the owner's HOME
    and the projects root in its environment); return its output lines."""
    env = {**os.environ, "HOME": str(home), "ECHOES_PROJECTS": str(projects)}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=60, check=True)
    return done.stdout.splitlines()


@pytest.fixture
def lab(tmp_path):
    """A home with a notebook, a project linked as ~/projects/p2 with a co-member's notebook,
    a link out of the home and a link in the project to a folder outside it."""
    home, projects, outside = tmp_path / "home", tmp_path / "projects", tmp_path / "outside"
    for folder in (home / "work", home / "projects", projects / "p2", outside, home / "reports"):
        folder.mkdir(parents=True)
    (home / "work" / "mine.ipynb").write_text('{"cells": []}')
    (home / "reports" / "old-run.ipynb").write_text("{}")
    (projects / "p2" / "theirs.ipynb").write_text('{"cells": ["x"]}')
    (outside / "far.ipynb").write_text("{}")
    (home / "projects" / "p2").symlink_to(projects / "p2")
    (home / "work" / "far.ipynb").symlink_to(outside / "far.ipynb")
    (projects / "p2" / "far").symlink_to(outside)
    return home, projects


def test_the_picker_and_the_check_do_not_follow_links_out_of_home_and_projects(lab):
    from echoes_lab.hub.services.reports import authorship

    home, projects = lab
    [line] = _in_kernel(authorship._code(authorship._LIST, ["reports"]), home, projects)
    listed = [n["path"] for n in json.loads(line.removeprefix(authorship.LINE))]
    # the outputs folder is skipped; ~/projects/p2 is the hub's link, so it is walked
    assert listed == ["work/mine.ipynb", "projects/p2/theirs.ipynb"]

    paths = ["work/far.ipynb", "projects/p2/far/far.ipynb", "projects/p2/theirs.ipynb"]
    out = _in_kernel(authorship._code(authorship._INSPECT, paths), home, projects)
    far, far2, theirs = (json.loads(x.removeprefix(authorship.LINE)) for x in out)
    assert "leads out of your home and your projects" in far["error"]
    assert "leads out of your home and your projects" in far2["error"]
    data = (projects / "p2" / "theirs.ipynb").read_bytes()
    assert theirs["sha256"] == hashlib.sha256(data).hexdigest()
    assert theirs["shared"] is True and theirs["mine"] is True  # one account here


def test_a_changed_shared_notebook_is_refused_and_a_checked_one_runs_from_its_copy(lab):
    from echoes_lab.hub.services.reports import authorship

    home, projects = lab
    theirs = projects / "p2" / "theirs.ipynb"
    pinned = hashlib.sha256(theirs.read_bytes()).hexdigest()
    jobs = [
        {"key": 1, "notebook": "projects/p2/theirs.ipynb", "output_dir": "reports/a/1",
         "sha256": pinned},
        {"key": 2, "notebook": "projects/p2/theirs.ipynb", "output_dir": "reports/a/2",
         "sha256": "0" * 64},
        {"key": 3, "notebook": "work/mine.ipynb", "output_dir": "reports/b/3", "sha256": None},
        {"key": 4, "notebook": "work/far.ipynb", "output_dir": "reports/c/4", "sha256": None},
    ]
    code = authorship._code(authorship._GUARD, jobs) + "print('JOBS ' + _j.dumps(_echoes_jobs))"
    lines = _in_kernel(code, home, projects)
    events = [json.loads(x.removeprefix("ECHOES-RUN ")) for x in lines if x.startswith("ECHOES")]
    status = {e["key"]: (e["event"], e.get("status")) for e in events}
    assert status == {1: ("checked", None), 2: ("end", "refused"), 3: ("checked", None),
                      4: ("end", "refused")}
    refused = next(e for e in events if e["key"] == 2)
    assert "changed since you confirmed it" in refused["error"]
    assert refused["seen"]["sha256"] == pinned
    kept = json.loads(lines[-1].removeprefix("JOBS "))
    # the shared notebook runs from the copy of the bytes that were checked; the owner's own
    # notebook in their home runs in place
    assert [j["notebook"] for j in kept] == ["reports/a/1/pinned/theirs.ipynb", "work/mine.ipynb"]
    assert (home / "reports/a/1/pinned/theirs.ipynb").read_bytes() == theirs.read_bytes()
    assert all("sha256" not in j for j in kept)


def test_confirmation_is_asked_for_another_users_or_a_changed_shared_notebook():
    from echoes_lab.hub.services.reports.authorship import ask, needs_confirmation

    info = {"path": "projects/p2/x.ipynb", "sha256": "a" * 64, "author": "carol",
            "modified": "2026-12-06T10:00:00+00:00", "mine": False, "shared": True}
    assert needs_confirmation(info, None) and needs_confirmation(info, "b" * 64)
    assert not needs_confirmation(info, "a" * 64)
    assert "written by carol" in ask(info, None) and "2026-12-06T10:00" in ask(info, None)
    own = {**info, "author": "alice", "mine": True}
    assert not needs_confirmation(own, None)  # a new schedule of one's own notebook
    assert needs_confirmation(own, "b" * 64)  # a co-member changed it in the project
    assert "changed since you confirmed it" in ask(own, "b" * 64)
    assert not needs_confirmation({**own, "shared": False}, "b" * 64)  # own home: own edits


def test_schedules_from_before_pinning_are_kept_and_run_only_once_confirmed(tmp_path):
    """A database made before notebooks were pinned opens with the new columns empty; the
    runner then refuses such a schedule's notebook if it is another user's (see the guard)."""

    old = sqlite3.connect(tmp_path / "reports.sqlite")
    old.executescript(
        "CREATE TABLE schedules (id INTEGER PRIMARY KEY AUTOINCREMENT, owner TEXT NOT NULL,"
        " name TEXT NOT NULL, notebook TEXT NOT NULL, parameters TEXT NOT NULL, cron TEXT NOT"
        " NULL, enabled INTEGER NOT NULL DEFAULT 1, created TEXT NOT NULL, next_run TEXT);"
        "INSERT INTO schedules (owner, name, notebook, parameters, cron, created)"
        " VALUES ('alice', 'r', 'projects/p2/r.ipynb', '{}', '0 6 * * *', '2026-01-01');")
    old.commit()
    old.close()
    store = Store(tmp_path / "reports.sqlite")
    [sch] = store.schedules()
    assert sch["notebook"] == "projects/p2/r.ipynb" and sch["sha256"] is None
    assert sch["seen"] is None
    seen = {"sha256": "a" * 64, "author": "carol", "modified": "2026-12-06T10:00:00+00:00"}
    assert store.update_schedule(sch["id"], seen=seen)["seen"] == seen
    store.close()
