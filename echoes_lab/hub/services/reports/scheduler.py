"""When and how scheduled notebooks run: cron times (croniter), the owner's account, retries.

* **Cron.** Standard five-field expressions (minute hour day month weekday), evaluated in UTC;
  a six-field expression has seconds first (``*/30 * * * * *``: every 30 seconds), as in
  APScheduler and Quartz. Parsed by ``croniter``.
* **As the owner.** Each run is ``echoes-lab run`` in a subprocess under the owner's system
  account ``jupyter-<name>`` when the service runs as root (as their lab does), else under the
  service's own account; with the owner's home as working folder and the environment their lab
  has (``HOME``, ``ECHOES_DATA``, ``JUPYTER_PATH`` with the deployment's ECHOES kernel).
  Outputs go to ``~/reports/<schedule>-<id>/<time>-run<id>/`` in the owner's home.
* **Concurrency.** At most ``reports.max_concurrent`` runs at a time across all users; others
  wait in order (status ``queued``).
* **Retries.** A failed run is tried again up to ``reports.retries`` times, after
  ``retry_backoff`` seconds, doubling each time. Every attempt is kept in the history.
* **Missed runs** (fire times that fell while the service was down), policy
  ``reports.missed``: ``"run-once"`` (default) runs the notebook once at start-up, noting how
  many times were missed; ``"skip"`` runs nothing and records one ``missed`` entry saying how
  many. Either way the next run is the next fire time after start-up. Runs that were queued or
  running when the service stopped are marked ``interrupted`` (their partial outputs stay).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import pwd
import re
import signal
import sys
from datetime import datetime, timedelta
from pathlib import Path

from croniter import croniter

from echoes_lab.errors import RunError
from echoes_lab.hub.config import kernel_dir
from echoes_lab.hub.settings import Settings
from echoes_lab.hub.spawner import isolated, system_username
from echoes_lab.hub.services.reports.store import Store, now, parse

log = logging.getLogger("echoes.reports")


def _croniter(cron: str, start: datetime) -> croniter:
    return croniter(cron, start, second_at_beginning=len(cron.split()) == 6)


def check_cron(cron: str) -> str:
    """``cron`` if it is a valid 5-field (or 6-field, seconds first) expression, else ValueError."""
    cron = " ".join(str(cron).split())
    if len(cron.split()) not in (5, 6) or not croniter.is_valid(cron, second_at_beginning=len(cron.split()) == 6):
        raise ValueError(f"'{cron}' is not a cron expression: give five fields, minute hour day "
                         "month weekday (e.g. '0 6 1 * *' = 06:00 UTC on the 1st of each month)")
    return cron


def next_fire(cron: str, after: datetime) -> datetime:
    return _croniter(cron, after).get_next(datetime)


def owner_home(settings: Settings, owner: str) -> Path:
    return settings.homes_dir / owner


def resolve_notebook(settings: Settings, owner: str, notebook: str) -> Path:
    """The owner's notebook as an absolute path, which must lie inside their home."""
    home = owner_home(settings, owner).resolve()
    path = (home / notebook).resolve()
    if not path.is_relative_to(home):
        raise RunError(f"{notebook}: the notebook must be inside your home folder")
    if not path.is_file() or path.suffix != ".ipynb":
        raise RunError(f"{notebook}: no such notebook in your home folder")
    return path


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-")[:40] or "report"


class Scheduler:
    def __init__(self, settings: Settings, store: Store):
        self.settings = settings
        self.cfg = settings.reports
        self.store = store
        self.slots = asyncio.Semaphore(self.cfg.max_concurrent)
        self.procs: dict[int, asyncio.subprocess.Process] = {}
        self.tasks: set[asyncio.Task] = set()
        self.isolated = isolated(settings.spawner.isolation)

    # -- start-up and the clock -------------------------------------------------------------
    def start(self) -> None:
        interrupted = self.store.interrupt_unfinished()
        if interrupted:
            log.warning("%d run(s) were interrupted when the service last stopped", interrupted)
        self.apply_missed_policy(now())
        self._spawn(self._clock())

    def apply_missed_policy(self, t: datetime) -> None:
        for sch in self.store.schedules():
            due = parse(sch["next_run"])
            if not sch["enabled"] or due is None or due > t:
                continue
            it, missed = _croniter(sch["cron"], due - timedelta(seconds=1)), 0
            while missed < 10000 and it.get_next(datetime) <= t:
                missed += 1
            note = f"{missed} scheduled time(s) from {due.isoformat()} fell while the service was down"
            if self.cfg.missed == "run-once":
                self.enqueue(sch, "catch-up", note=note + "; run once now")
            else:
                self.store.add_run(sch, "schedule", status="missed", note=note + "; skipped")
            self.store.update_schedule(sch["id"], next_run=next_fire(sch["cron"], t))

    async def _clock(self) -> None:
        while True:
            t = now()
            try:
                for sch in self.store.schedules():
                    due = parse(sch["next_run"])
                    if sch["enabled"] and due is not None and due <= t:
                        self.store.update_schedule(sch["id"], next_run=next_fire(sch["cron"], t))
                        self.enqueue(sch, "schedule")
            except Exception:  # one bad row must not stop every schedule
                log.exception("scheduler tick")
            await asyncio.sleep(1 - (now().microsecond / 1e6) + 0.01)

    def _spawn(self, coro) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    # -- runs -------------------------------------------------------------------------------
    def enqueue(self, schedule: dict, trigger: str, attempt: int = 1, note: str | None = None) -> dict:
        run = self.store.add_run(schedule, trigger, attempt, note=note)
        self._spawn(self._execute(run["id"], schedule))
        return run

    def owner_env(self, owner: str) -> tuple[dict, object]:
        """The environment the owner's lab has, and the preexec function switching to them."""
        home = owner_home(self.settings, owner)
        if not home.is_dir():
            raise RunError(f"{owner} has no home folder yet ({home}): they must sign in once")
        preexec, user = None, owner
        if self.isolated:
            from jupyterhub.spawner import set_user_setuid

            user = system_username(owner)
            try:
                pwd.getpwnam(user)
            except KeyError:
                raise RunError(f"{owner} has no system account ({user}) yet: they must sign in once") from None
            preexec = set_user_setuid(user, chdir=False)
        # the same variables EchoesSpawner.user_env gives the owner's lab
        env = {"HOME": str(home), "USER": user, "SHELL": "/bin/bash", "LANG": "C.UTF-8",
               "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.defpath]),
               "ECHOES_DATA": str(self.settings.shared_dir),
               "JUPYTER_PATH": str(kernel_dir(self.settings))}
        return env, preexec

    async def _execute(self, rid: int, schedule: dict) -> None:
        async with self.slots:
            if self.store.run(rid)["status"] != "queued":
                return
            started = now()
            out = (owner_home(self.settings, schedule["owner"]) / self.cfg.outputs
                   / f"{_slug(schedule['name'])}-{schedule['id']}" / f"{started:%Y%m%dT%H%M%SZ}-run{rid}")
            self.store.update_run(rid, status="running", started=started, output_dir=str(out))
            try:
                status, error = await self._papermill(rid, schedule, out)
            except RunError as exc:
                status, error = "failed", str(exc)
            except Exception as exc:  # the service must outlive any one run
                log.exception("run %d", rid)
                status, error = "failed", f"{type(exc).__name__}: {exc}"
            outputs = {}
            stem = Path(schedule["notebook"]).stem
            for key, name in (("notebook", f"{stem}.ipynb"), ("html", f"{stem}.html"),
                              ("crate", "ro-crate-metadata.json")):
                if (out / name).is_file():
                    outputs[key] = name
            run = self.store.update_run(rid, status=status, finished=now(), error=error, outputs=outputs)
        log.info("run %d of schedule %d (%s): %s", rid, schedule["id"], schedule["owner"], status)
        if status == "failed" and run["attempt"] <= self.cfg.retries:
            delay = self.cfg.retry_backoff * 2 ** (run["attempt"] - 1)
            self.store.update_run(rid, note="; ".join(filter(None, [run["note"], f"retry in {delay} s"])))
            asyncio.get_running_loop().call_later(delay, self._retry, schedule["id"], run["attempt"] + 1)

    def _retry(self, sid: int, attempt: int) -> None:
        schedule = self.store.schedule(sid)
        if schedule and schedule["enabled"]:
            self.enqueue(schedule, "retry", attempt)

    async def _papermill(self, rid: int, schedule: dict, out: Path) -> tuple[str, str | None]:
        owner = schedule["owner"]
        env, preexec = self.owner_env(owner)
        notebook = resolve_notebook(self.settings, owner, schedule["notebook"])
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "echoes_lab.cli", "run", str(notebook), "--parameters", "-",
            "-o", str(out), stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, env=env, cwd=env["HOME"], preexec_fn=preexec,
            start_new_session=True)  # its own process group: a timeout stops the kernel too
        self.procs[rid] = proc
        try:
            _, err = await asyncio.wait_for(
                proc.communicate(json.dumps(schedule["parameters"]).encode()), self.cfg.run_timeout)
        except asyncio.TimeoutError:
            self._kill(proc)
            await proc.wait()
            return "failed", f"stopped after {self.cfg.run_timeout} s (reports.run_timeout)"
        finally:
            self.procs.pop(rid, None)
        if proc.returncode == 0:
            return "completed", None
        lines = [ln for ln in err.decode(errors="replace").splitlines() if ln.strip()]
        said = [ln for ln in lines if ln.startswith("echoes-lab: ")]
        return "failed", (said[-1][len("echoes-lab: "):] if said else "\n".join(lines[-5:])
                          or f"exit status {proc.returncode}")

    @staticmethod
    def _kill(proc) -> None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    async def stop(self) -> None:
        """Stop every running notebook (and its kernel); their runs stay ``running`` → interrupted."""
        for proc in list(self.procs.values()):
            self._kill(proc)
        for task in list(self.tasks):
            task.cancel()
