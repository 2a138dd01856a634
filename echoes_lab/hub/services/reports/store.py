"""Schedules and their run history in SQLite (``<state_dir>/reports.sqlite``).

One connection, used from the service's single event loop. Times are stored as ISO 8601 UTC
strings. Deleting a schedule keeps its history rows and never touches the output files.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timezone
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS schedules (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    owner TEXT NOT NULL,
    name TEXT NOT NULL,
    notebook TEXT NOT NULL,          -- relative to the owner's home
    parameters TEXT NOT NULL,        -- JSON
    cron TEXT NOT NULL,
    enabled INTEGER NOT NULL DEFAULT 1,
    created TEXT NOT NULL,
    next_run TEXT,                   -- the next fire time the scheduler will act on
    sha256 TEXT,                     -- the notebook content its owner confirmed (pinned)
    author TEXT,                     -- the notebook's file owner when pinned
    modified TEXT,                   -- its last change when pinned
    seen TEXT                        -- JSON: other content a run refused, to confirm
);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    schedule_id INTEGER NOT NULL,
    owner TEXT NOT NULL,
    trigger TEXT NOT NULL,           -- schedule | manual | retry | catch-up
    attempt INTEGER NOT NULL DEFAULT 1,
    status TEXT NOT NULL,            -- queued | running | completed | failed | missed |
                                     -- interrupted | cancelled | refused
    queued TEXT NOT NULL,
    started TEXT,
    finished TEXT,
    output_dir TEXT,
    outputs TEXT,                    -- JSON {"notebook": name, "html": name, "crate": name}
    error TEXT,
    note TEXT,
    kernel TEXT                      -- the runner kernel in the owner's server, while running
);
CREATE INDEX IF NOT EXISTS runs_by_schedule ON runs (schedule_id);
"""


def now() -> datetime:
    return datetime.now(timezone.utc)


def iso(t: datetime | None) -> str | None:
    return t.isoformat() if t else None


def parse(t: str | None) -> datetime | None:
    return datetime.fromisoformat(t) if t else None


class Store:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.db = sqlite3.connect(str(self.path), isolation_level=None)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.executescript(SCHEMA)
        columns = {r[1] for r in self.db.execute("PRAGMA table_info(runs)")}
        if "kernel" not in columns:  # a database from before runs went through the spawner
            self.db.execute("ALTER TABLE runs ADD COLUMN kernel TEXT")
        columns = {r[1] for r in self.db.execute("PRAGMA table_info(schedules)")}
        for column in ("sha256", "author", "modified", "seen"):  # before notebooks were pinned
            if column not in columns:
                self.db.execute(f"ALTER TABLE schedules ADD COLUMN {column} TEXT")
        self.path.chmod(0o600)  # owners' parameters and notebook paths: the service's only

    # -- schedules --------------------------------------------------------------------------
    def _schedule(self, row) -> dict | None:
        if row is None:
            return None
        d = dict(row)
        d["parameters"] = json.loads(d["parameters"])
        d["enabled"] = bool(d["enabled"])
        d["seen"] = json.loads(d["seen"]) if d.get("seen") else None
        return d

    def add_schedule(
        self,
        owner: str,
        name: str,
        notebook: str,
        parameters: dict,
        cron: str,
        next_run: datetime,
        enabled: bool = True,
        pin: dict | None = None,
    ) -> dict:
        pin = pin or {}
        cur = self.db.execute(
            "INSERT INTO schedules"
            " (owner, name, notebook, parameters, cron, enabled, created, next_run,"
            " sha256, author, modified)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                owner,
                name,
                notebook,
                json.dumps(parameters),
                cron,
                int(enabled),
                iso(now()),
                iso(next_run),
                pin.get("sha256"),
                pin.get("author"),
                pin.get("modified"),
            ),
        )
        return self.schedule(cur.lastrowid)

    def schedule(self, sid: int) -> dict | None:
        return self._schedule(
            self.db.execute("SELECT * FROM schedules WHERE id = ?", (sid,)).fetchone()
        )

    def schedules(self, owner: str | None = None) -> list[dict]:
        if owner is None:
            rows = self.db.execute("SELECT * FROM schedules ORDER BY id")
        else:
            rows = self.db.execute("SELECT * FROM schedules WHERE owner = ? ORDER BY id", (owner,))
        return [self._schedule(r) for r in rows]

    def update_schedule(self, sid: int, **fields) -> dict:
        if "parameters" in fields:
            fields["parameters"] = json.dumps(fields["parameters"])
        if "enabled" in fields:
            fields["enabled"] = int(fields["enabled"])
        if "next_run" in fields:
            fields["next_run"] = iso(fields["next_run"])
        if "seen" in fields:
            fields["seen"] = json.dumps(fields["seen"]) if fields["seen"] else None
        if fields:
            sets = ", ".join(f"{k} = ?" for k in fields)
            self.db.execute(f"UPDATE schedules SET {sets} WHERE id = ?", (*fields.values(), sid))
        return self.schedule(sid)

    def delete_schedule(self, sid: int) -> int:
        """Remove a schedule; its queued runs are cancelled (returns how many)."""
        self.db.execute("DELETE FROM schedules WHERE id = ?", (sid,))
        return self.cancel_queued("schedule_id = ?", sid, "the schedule was deleted")

    def cancel_queued(self, where: str, value, why: str) -> int:
        cur = self.db.execute(
            f"UPDATE runs SET status = 'cancelled', finished = ?, error = ? "
            f"WHERE status = 'queued' AND {where}",
            (iso(now()), why, value),
        )
        return cur.rowcount

    def disable_owner(self, owner: str, why: str) -> int:
        """Pause every schedule of ``owner`` and cancel their queued runs; returns how many
        schedules were enabled (a closed workshop seat, a deleted user)."""
        cur = self.db.execute(
            "UPDATE schedules SET enabled = 0 WHERE owner = ? AND enabled = 1", (owner,)
        )
        self.cancel_queued("owner = ?", owner, why)
        return cur.rowcount

    def owners(self) -> list[str]:
        """Owners with an enabled schedule."""
        rows = self.db.execute("SELECT DISTINCT owner FROM schedules WHERE enabled = 1")
        return [r[0] for r in rows]

    # -- runs -------------------------------------------------------------------------------
    def _run(self, row) -> dict | None:
        if row is None:
            return None
        d = dict(row)
        d["outputs"] = json.loads(d["outputs"]) if d["outputs"] else {}
        return d

    def add_run(
        self,
        schedule: dict,
        trigger: str,
        attempt: int = 1,
        status: str = "queued",
        note: str | None = None,
    ) -> dict:
        cur = self.db.execute(
            "INSERT INTO runs (schedule_id, owner, trigger, attempt, status, queued, note)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (schedule["id"], schedule["owner"], trigger, attempt, status, iso(now()), note),
        )
        return self.run(cur.lastrowid)

    def run(self, rid: int) -> dict | None:
        return self._run(self.db.execute("SELECT * FROM runs WHERE id = ?", (rid,)).fetchone())

    def runs(self, schedule_id: int, limit: int = 200) -> list[dict]:
        rows = self.db.execute(
            "SELECT * FROM runs WHERE schedule_id = ? ORDER BY id DESC LIMIT ?",
            (schedule_id, limit),
        )
        return [self._run(r) for r in rows]

    def update_run(self, rid: int, **fields) -> dict:
        if "outputs" in fields:
            fields["outputs"] = json.dumps(fields["outputs"])
        for key in ("started", "finished"):
            if isinstance(fields.get(key), datetime):
                fields[key] = iso(fields[key])
        sets = ", ".join(f"{k} = ?" for k in fields)
        self.db.execute(f"UPDATE runs SET {sets} WHERE id = ?", (*fields.values(), rid))
        return self.run(rid)

    def with_status(self, *statuses: str, owner: str | None = None) -> list[dict]:
        marks = ", ".join("?" for _ in statuses)
        sql, args = f"SELECT * FROM runs WHERE status IN ({marks})", list(statuses)
        if owner is not None:
            sql, args = sql + " AND owner = ?", [*args, owner]
        return [self._run(r) for r in self.db.execute(sql + " ORDER BY id", args)]

    def interrupt_unfinished(self) -> int:
        """Runs left queued or running by a previous service process: marked ``interrupted``."""
        cur = self.db.execute(
            "UPDATE runs SET status = 'interrupted', finished = ?, "
            "error = 'the reports service stopped before this run finished; "
            "partial outputs are kept'"
            " WHERE status IN ('queued', 'running')",
            (iso(now()),),
        )
        return cur.rowcount

    def close(self) -> None:
        self.db.close()
