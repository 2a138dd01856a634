"""echoes_lab.hub.services.reports without a hub: cron checks, the store, the missed-run policy, run failures.

The service end to end (hub OAuth, runs as the owner, restarts) is in
tests/integration/test_reports_service.py.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import pytest
import tomli_w

from echoes_lab.hub.settings import load_settings
from echoes_lab.hub.services.reports.scheduler import Scheduler, check_cron, next_fire
from echoes_lab.hub.services.reports.store import Store


def make_settings(tmp_path, **reports):
    f = tmp_path / "site.toml"
    f.write_text(tomli_w.dumps({"profile": "test", "hub": {"state_dir": str(tmp_path / "state")},
                                "spawner": {"isolation": "none"}, "reports": reports}))
    (tmp_path / "state" / "homes").mkdir(parents=True)
    return load_settings(f)


def test_cron_five_fields_or_six_with_seconds_first():
    t = datetime(2026, 11, 25, 6, 0, 30, tzinfo=timezone.utc)
    assert next_fire(check_cron("* * * * *"), t) == datetime(2026, 11, 25, 6, 1, tzinfo=timezone.utc)
    assert next_fire(check_cron("0 6 1 * *"), t) == datetime(2026, 12, 1, 6, 0, tzinfo=timezone.utc)
    assert next_fire(check_cron("*/20 * * * * *"), t) == datetime(2026, 11, 25, 6, 0, 40, tzinfo=timezone.utc)
    for bad in ("every minute", "* * * *", "61 * * * *"):
        with pytest.raises(ValueError, match="not a cron expression"):
            check_cron(bad)


@pytest.mark.parametrize("policy", ["skip", "run-once"])
def test_runs_missed_while_down_follow_the_policy(tmp_path, policy):
    settings = make_settings(tmp_path, missed=policy, retries=0)
    store = Store(settings.state_dir / "reports.sqlite")
    t = datetime.now(timezone.utc).replace(microsecond=0)
    # due at the minute 3 min before now's, every minute: 4 fire times fell while it was down
    sch = store.add_schedule("ada", "r", "r.ipynb", {}, "* * * * *", t.replace(second=0) - timedelta(minutes=3))
    paused = store.add_schedule("ada", "p", "p.ipynb", {}, "* * * * *", t - timedelta(minutes=5), enabled=False)
    stale = store.add_run(sch, "schedule", status="running")

    async def start_and_settle():
        scheduler = Scheduler(settings, store)
        assert store.interrupt_unfinished() == 1
        scheduler.apply_missed_policy(t)
        await asyncio.gather(*scheduler.tasks)

    asyncio.run(start_and_settle())
    assert store.run(stale["id"])["status"] == "interrupted"
    runs = [r for r in store.runs(sch["id"]) if r["id"] != stale["id"]]
    assert len(runs) == 1
    assert runs[0]["note"].startswith("4 scheduled time(s)")
    if policy == "skip":
        assert runs[0]["status"] == "missed"
    else:
        # the catch-up run was tried; ada never signed in, so it fails and says why
        assert runs[0]["trigger"] == "catch-up" and runs[0]["status"] == "failed"
        assert "has no home folder yet" in runs[0]["error"]
    assert store.schedule(sch["id"])["next_run"] == (t + timedelta(minutes=1)).replace(second=0).isoformat()
    assert store.runs(paused["id"]) == []  # a paused schedule misses nothing
