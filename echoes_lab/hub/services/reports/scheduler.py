"""When and where scheduled notebooks run: cron times (croniter), the owner's named server,
retries.

* **Cron.** Standard five-field expressions (minute hour day month weekday), evaluated in UTC;
  a six-field expression has seconds first (``*/30 * * * * *``), as in APScheduler and Quartz.
  Parsed by ``croniter``. An expression that never fires (``0 0 31 2 *``) or fires more often
  than ``reports.min_interval`` seconds is refused.
* **In the owner's server.** A run starts the owner's named server (``reports.server``)
  through the hub's REST API, executes there as the owner (:mod:`.servers`), and the server is
  stopped when no run needs it any more. The service itself reads no user file and needs no
  root. Outputs go to ``~/reports/<schedule>-<id>/<time>-run<id>/`` in the owner's home.
* **Batches.** The queued runs of one owner go to one server and one runner kernel, two at a
  time, each in a fresh kernel started ahead (:func:`echoes_lab.runs.run_many`). At most
  ``reports.max_concurrent`` owners' batches run at once; other runs wait (``queued``).
* **Retries.** A failed run is tried again up to ``reports.retries`` times, after
  ``retry_backoff`` seconds, doubling each time. Every attempt is kept in the history.
* **Missed runs** (fire times that fell while the service was down), policy
  ``reports.missed``: ``"run-once"`` runs the notebook once at start-up, noting how many times
  were missed; ``"skip"`` records one ``missed`` entry. Either way the next run is the next fire
  time after start-up.
* **Pinned content.** Each batch first checks, in the owner's server, that every notebook is
  the content its owner confirmed (:mod:`.authorship`); a changed shared notebook is
  ``refused`` (not retried) and its new content waits on the page for the owner's
  confirmation.
* **The final state is the truth.** A run still ``running`` when the service restarts is
  looked up in the owner's home: its crate's status wins (a run that completed while the
  service was down is ``completed``); if its runner is still alive the service waits for it;
  only a run with neither is ``interrupted``. Queued runs of a deleted schedule are cancelled.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import PurePosixPath
from urllib.parse import quote

from croniter import croniter

from echoes_lab.errors import RunError
from echoes_lab.hub.services.reports.authorship import guard_code
from echoes_lab.hub.services.reports.servers import NotFound, OwnerServers
from echoes_lab.hub.services.reports.store import Store, now, parse
from echoes_lab.hub.settings import Settings

log = logging.getLogger("echoes.reports")

#: the runner's progress lines (printed by echoes_lab.runs.serve_jobs)
EVENT = "ECHOES-RUN "
CRATE = "ro-crate-metadata.json"
_STATUS = {
    "http://schema.org/CompletedActionStatus": "completed",
    "http://schema.org/FailedActionStatus": "failed",
}


def _croniter(cron: str, start: datetime) -> croniter:
    return croniter(cron, start, second_at_beginning=len(cron.split()) == 6)


def check_cron(cron: str, min_interval: float | None = None) -> str:
    """``cron`` normalised if it is a valid expression that fires, else ValueError.

    Parameters
    ----------
    cron
        Five fields (minute hour day month weekday) or six with seconds first.
    min_interval
        Seconds: the shortest time allowed between two fire times (checked over the next 50).
    """
    cron = " ".join(str(cron).split())
    six = len(cron.split()) == 6
    if len(cron.split()) not in (5, 6) or not croniter.is_valid(cron, second_at_beginning=six):
        msg = (
            f"'{cron}' is not a cron expression: give five fields, minute hour day "
            "month weekday (e.g. '0 6 1 * *' = 06:00 UTC on the 1st of each month)"
        )
        raise ValueError(msg)
    try:
        times = next_times(cron, now(), 51)
    except Exception:  # croniter: CroniterBadDateError (no such date, e.g. 31 February)
        msg = (
            f"'{cron}' never fires (no calendar date matches it, e.g. 31 February); "
            "check the day and month fields"
        )
        raise ValueError(msg) from None
    if min_interval:
        gap = min((b - a).total_seconds() for a, b in zip(times, times[1:], strict=False))
        if gap < min_interval:
            every = max(1, round(min_interval / 60))
            msg = (
                f"'{cron}' fires every {gap:.0f} s; this hub allows at most one run every "
                f"{min_interval:.0f} s (reports.min_interval), e.g. '*/{every} * * * *'"
            )
            raise ValueError(msg)
    return cron


def next_fire(cron: str, after: datetime) -> datetime:
    return _croniter(cron, after).get_next(datetime)


def next_times(cron: str, after: datetime, n: int = 3) -> list[datetime]:
    it = _croniter(cron, after)
    return [it.get_next(datetime) for _ in range(n)]


def describe_cron(cron: str) -> str:
    """The expression in words (cron-descriptor), with the time zone said."""
    from cron_descriptor import Options, get_description

    options = Options()
    options.use_24hour_time_format = True
    return get_description(cron, options) + " (UTC)"


def check_notebook_path(notebook: str) -> str:
    """A notebook path relative to the owner's home, normalised; ValueError otherwise."""
    path = PurePosixPath(str(notebook).strip())
    if (
        not str(notebook).strip()
        or path.is_absolute()
        or ".." in path.parts
        or path.suffix != ".ipynb"
    ):
        msg = (
            f"'{notebook}': give the path of a .ipynb file inside your home folder, "
            "relative to it (e.g. reports/gallery3.ipynb)"
        )
        raise ValueError(msg)
    return path.as_posix()


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-")[:40] or "report"


def crate_status(text: str) -> str | None:
    """The ``actionStatus`` of a run's crate (``completed``/``failed``), None if unreadable."""
    try:
        graph = json.loads(text)["@graph"]
        run = next(e for e in graph if e.get("@id") == "#run")
        status = run["actionStatus"]
        return _STATUS.get(status["@id"] if isinstance(status, dict) else status)
    except (ValueError, KeyError, StopIteration, TypeError):
        return None


class Scheduler:
    """Fires schedules, queues runs and executes them in owners' named servers.

    Parameters
    ----------
    settings
        The deployment's settings.
    store
        Schedules and runs.
    servers
        The owners' named servers (through the hub).
    clock
        ``clock() -> datetime`` (UTC): the service's ``utcnow`` seam, patched by tests.
    """

    def __init__(
        self,
        settings: Settings,
        store: Store,
        servers: OwnerServers,
        clock: Callable[[], datetime] = now,
    ):
        self.settings = settings
        self.cfg = settings.reports
        self.store = store
        self.servers = servers
        self.clock = clock
        self.busy: set[str] = set()  # owners with a batch under way
        self.tasks: set[asyncio.Task] = set()
        self.timers: list[asyncio.TimerHandle] = []
        self.wake = asyncio.Event()

    # -- start-up and the clock -------------------------------------------------------------
    def start(self) -> None:
        for run in self.store.with_status("queued"):
            self.store.update_run(
                run["id"],
                status="interrupted",
                finished=self.clock(),
                error="the reports service stopped before this run started",
            )
        for run in self.store.with_status("running"):
            self._spawn(self._reconcile(run))
        self.apply_missed_policy(self.clock())
        self._spawn(self._tick_forever())
        self._spawn(self._dispatch_forever())

    def apply_missed_policy(self, t: datetime) -> None:
        for sch in self.store.schedules():
            due = parse(sch["next_run"])
            if not sch["enabled"] or due is None or due > t:
                continue
            it, missed = _croniter(sch["cron"], due - timedelta(seconds=1)), 0
            while missed < 10000 and it.get_next(datetime) <= t:
                missed += 1
            note = (
                f"{missed} scheduled time(s) from {due.isoformat()} fell while the service was down"
            )
            if self.cfg.missed == "run-once":
                self.enqueue(sch, "catch-up", note=note + "; run once now")
            else:
                self.store.add_run(sch, "schedule", status="missed", note=note + "; skipped")
            self.store.update_schedule(sch["id"], next_run=next_fire(sch["cron"], t))

    def tick(self, t: datetime | None = None) -> int:
        """Queue a run of every enabled schedule due at ``t``; returns how many."""
        t = t or self.clock()
        fired = 0
        for sch in self.store.schedules():
            due = parse(sch["next_run"])
            if sch["enabled"] and due is not None and due <= t:
                self.store.update_schedule(sch["id"], next_run=next_fire(sch["cron"], t))
                self.enqueue(sch, "schedule")
                fired += 1
        return fired

    async def _tick_forever(self) -> None:
        while True:
            try:
                self.tick()
            except Exception:  # one bad row must not stop every schedule
                log.exception("scheduler tick")
            await asyncio.sleep(1 - (now().microsecond / 1e6) + 0.01)

    def _spawn(self, coro) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    # -- queue and batches -----------------------------------------------------------------
    def enqueue(
        self, schedule: dict, trigger: str, attempt: int = 1, note: str | None = None
    ) -> dict:
        run = self.store.add_run(schedule, trigger, attempt, note=note)
        self.wake.set()
        return run

    async def _dispatch_forever(self) -> None:
        while True:
            await self.wake.wait()
            self.wake.clear()
            self.dispatch()

    def dispatch(self) -> None:
        """Start a batch for every owner with queued runs, within ``max_concurrent``."""
        for run in self.store.with_status("queued"):
            owner = run["owner"]
            if owner in self.busy or len(self.busy) >= self.cfg.max_concurrent:
                continue
            self.busy.add(owner)
            self._spawn(self._batch(owner))

    async def _batch(self, owner: str) -> None:
        try:
            queued = self.store.with_status("queued", owner=owner)
            if queued:
                await self._run_batch(owner, queued)
        except Exception:  # the service must outlive any one batch
            log.exception("batch of %s", owner)
        finally:
            self.busy.discard(owner)
            self.wake.set()  # runs queued meanwhile (this owner's or others')

    async def _run_batch(self, owner: str, queued: list[dict]) -> None:
        jobs, runs = [], {}
        started = self.clock()
        for run in queued:
            sch = self.store.schedule(run["schedule_id"])
            if sch is None:  # deleted between queueing and now
                self.store.update_run(
                    run["id"],
                    status="cancelled",
                    finished=started,
                    error="the schedule was deleted",
                )
                continue
            out = (
                f"{self.cfg.outputs}/{_slug(sch['name'])}-{sch['id']}/"
                f"{started:%Y%m%dT%H%M%SZ}-run{run['id']}"
            )
            self.store.update_run(run["id"], status="running", started=started, output_dir=out)
            runs[run["id"]] = (run, sch)
            jobs.append(
                {
                    "key": run["id"],
                    "notebook": sch["notebook"],
                    "output_dir": out,
                    "parameters": sch["parameters"],
                    "timeout": self.cfg.run_timeout,
                    "owner": owner,
                    "sha256": sch.get("sha256"),
                }
            )
        if not jobs:
            return
        finished: set[int] = set()

        def on_line(line: str) -> None:
            if not line.startswith(EVENT):
                return
            event = json.loads(line[len(EVENT) :])
            rid = event["key"]
            if rid not in runs:
                return
            sid = runs[rid][1]["id"]
            seen = event.get("seen") or {}
            if event["event"] == "checked" and seen.get("sha256"):
                # the owner's own notebook in their own home, changed by them: pinned anew
                self.store.update_schedule(sid, sha256=seen["sha256"], author=seen.get("author"),
                                           modified=seen.get("modified"), seen=None)
            elif event["event"] == "end":
                finished.add(rid)
                if event["status"] == "refused":
                    self.store.update_schedule(sid, seen=seen if seen.get("sha256") else None)
                self._finish(rid, event["status"], event.get("error"), event.get("outputs") or {})

        def on_kernel(kid: str) -> None:
            for rid in runs:
                self.store.update_run(rid, kernel=kid)

        code = guard_code(jobs)
        timeout = self.cfg.run_timeout * len(jobs) + 120
        error = None
        try:
            async with self.servers.lease(owner):
                await self.servers.execute(owner, code, on_line, timeout, on_kernel=on_kernel)
        except RunError as exc:
            error = str(exc)
        except Exception as exc:
            log.exception("runs of %s", owner)
            error = f"{type(exc).__name__}: {exc}"
        for rid in runs:
            if rid not in finished:
                self._finish(rid, "failed", error or "the runner ended without a result", {})

    def _finish(self, rid: int, status: str, error: str | None, outputs: dict) -> None:
        run = self.store.update_run(
            rid, status=status, finished=self.clock(), error=error, outputs=outputs, kernel=None
        )
        log.info("run %d of schedule %d (%s): %s", rid, run["schedule_id"], run["owner"], status)
        if status == "failed" and run["attempt"] <= self.cfg.retries:
            delay = self.cfg.retry_backoff * 2 ** (run["attempt"] - 1)
            self.store.update_run(
                rid, note="; ".join(filter(None, [run["note"], f"retry in {delay} s"]))
            )
            self.timers.append(
                asyncio.get_running_loop().call_later(
                    delay, self._retry, run["schedule_id"], run["attempt"] + 1
                )
            )

    def _retry(self, sid: int, attempt: int) -> None:
        schedule = self.store.schedule(sid)
        if schedule and schedule["enabled"]:
            self.enqueue(schedule, "retry", attempt)

    # -- after a restart: the final state is the truth -----------------------------------------
    async def _reconcile(self, run: dict) -> None:
        """Settle a run left ``running`` by an earlier service process from its crate."""
        owner, rid = run["owner"], run["id"]
        status, outputs = None, {}
        try:
            async with self.servers.lease(owner):
                loop = asyncio.get_running_loop()
                deadline = loop.time() + self.cfg.run_timeout
                while (
                    run.get("kernel")
                    and loop.time() < deadline
                    and await self.servers.kernel_alive(owner, run["kernel"])
                ):
                    await asyncio.sleep(2)  # its runner still works: wait for it
                status, outputs = await self.read_outputs(owner, run)
        except Exception as exc:
            log.warning("run %d: cannot look at its outputs (%s)", rid, exc)
        if status:
            self.store.update_run(
                rid,
                status=status,
                finished=self.clock(),
                outputs=outputs,
                kernel=None,
                note="; ".join(
                    filter(None, [run["note"], "finished while the service was restarting"])
                ),
            )
        else:
            self.store.update_run(
                rid,
                status="interrupted",
                finished=self.clock(),
                kernel=None,
                outputs=outputs,
                error="the reports service stopped before "
                "this run finished; partial outputs are kept",
            )

    async def read_outputs(self, owner: str, run: dict) -> tuple[str | None, dict]:
        """The status in a run's crate and which outputs exist, read through the owner's server."""
        folder = run["output_dir"]
        try:
            listing = await self.servers.contents(owner, folder, content=1)
        except NotFound:
            return None, {}
        names = {e["name"] for e in listing.get("content") or []}
        sch = self.store.schedule(run["schedule_id"])
        stem = PurePosixPath(sch["notebook"]).stem if sch else None
        outputs = {
            k: n
            for k, n in (("notebook", f"{stem}.ipynb"), ("html", f"{stem}.html"), ("crate", CRATE))
            if n in names
        }
        if CRATE not in names:
            return None, outputs
        crate = await self.servers.contents(
            owner, f"{folder}/{CRATE}", type="file", format="text", content=1
        )
        return crate_status(crate.get("content") or ""), outputs

    # -- closing an account -----------------------------------------------------------------
    async def disable_owner(self, owner: str, why: str) -> int:
        """Pause all of ``owner``'s schedules, cancel queued runs, stop running ones."""
        count = self.store.disable_owner(owner, why)
        for run in self.store.with_status("running", owner=owner):
            if run.get("kernel"):
                try:
                    await self.servers.delete_kernel(owner, run["kernel"])
                except Exception as exc:
                    log.warning("run %d: %s", run["id"], exc)
            self.store.update_run(
                run["id"], status="interrupted", finished=self.clock(), kernel=None, error=why
            )
        return count

    async def check_owners(self) -> None:
        """Disable the schedules of owners the hub no longer knows (deleted users)."""
        for owner in self.store.owners():
            code, _ = await self.servers.hub("GET", f"/users/{quote(owner, safe='')}")
            if code == 404:
                n = await self.disable_owner(owner, f"{owner} is no longer a user of the hub")
                log.warning("%s was deleted from the hub: %d schedule(s) disabled", owner, n)

    async def stop(self) -> None:
        """Stop the clock and the dispatcher; runs in owners' servers finish on their own."""
        for timer in self.timers:
            timer.cancel()
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.servers.close()
