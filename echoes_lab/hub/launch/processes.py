"""Finding and stopping the processes of one state directory's hub (its proxy and services),
never another hub's and never users' servers."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import TYPE_CHECKING

import psutil

from echoes_lab.errors import SetupError

if TYPE_CHECKING:
    # not at run time: the launcher's supervising process, which stays resident for the hub's
    # life, imports this module and no settings machinery (pydantic: ~10 MiB, issue 36)
    from echoes_lab.hub.secrets import Secrets
    from echoes_lab.hub.settings import Settings

#: seconds a left-over process gets between SIGTERM and SIGKILL
STOP_GRACE = 5.0


def _read_pid(pid_file: Path) -> int | None:
    try:
        return int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None


def _command(proc: psutil.Process) -> str:
    try:
        # one line whatever the arguments hold (``python -c`` code has newlines)
        return " ".join(" ".join(proc.cmdline()).split())[:200] or proc.name()
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return "?"


class StateProcesses:
    """Find the processes that belong to one state directory's hub.

    A process is this hub's when it carries one of the deployment's own secrets in its
    environment (the proxy's ``CONFIGPROXY_AUTH_TOKEN``, a managed service's
    ``JUPYTERHUB_API_TOKEN`` from ``secrets.json``), when ``ECHOES_SETTINGS`` names a settings
    file with this state directory, or when a pid file of the state directory names it (the
    hub, the proxy, services' ``services/*.pid``). Secrets match exactly, so another hub's
    processes are never taken for ours. Users' servers and kernels carry none of these: they
    are never selected, and keep running across restarts.
    """

    def __init__(self, settings: Settings | Path, secrets: Secrets | None,
                 known: dict[str, Path] | None = None):
        # the hub's settings, or its state directory (the launcher's supervising process);
        # ``known``: settings files whose state directory is known (the hub's own), so that
        # finding the hub's processes reads no settings file
        self.state = settings if isinstance(settings, Path) else settings.state_dir
        self.secrets = secrets
        self._settings_state: dict[str, Path | None] = dict(known or {})

    def _state_of(self, settings_file: str) -> Path | None:
        if settings_file not in self._settings_state:
            from echoes_lab.hub.settings import load_settings

            try:
                state = load_settings(settings_file).state_dir
            except Exception:  # noqa: BLE001 - anything unreadable is simply not ours
                state = None
            self._settings_state[settings_file] = state
        return self._settings_state[settings_file]

    def _pid_files(self) -> dict[int, str]:
        files = {self.state / "jupyterhub.pid": "hub", self.state / "proxy.pid": "proxy"}
        services = self.state / "services"
        if services.is_dir():
            files.update({f: f"service {f.stem}" for f in services.glob("*.pid")})
        return {pid: what for f, what in files.items() if (pid := _read_pid(f)) is not None}

    def why_ours(self, proc: psutil.Process) -> str | None:
        """What ``proc`` is for this hub ("proxy", "service reports", ...), or ``None``."""
        try:
            env = proc.environ()
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            return None
        if self.secrets is not None:
            if env.get("CONFIGPROXY_AUTH_TOKEN") == self.secrets.proxy_auth_token:
                return "proxy"
            token = env.get("JUPYTERHUB_API_TOKEN")
            for name, value in self.secrets.api_tokens.items():
                # echoes-cli is the token of commands an operator runs: never stopped here
                if token == value and name != "echoes-cli":
                    return f"service {name}"
        settings_file = env.get("ECHOES_SETTINGS")
        if settings_file and self._state_of(settings_file) == self.state:
            return "hub" if "jupyterhub" in _command(proc) else "service"
        return None

    def _our_service(self, proc: psutil.Process) -> bool:
        # a pid file alone is weak (pids are reused): only one of our services started with
        # a settings file of this state directory
        try:
            argv = proc.cmdline()
        except psutil.Error:
            return False
        ours = any(a.startswith("echoes_lab.hub.services") for a in argv)
        if not ours or "--settings" not in argv:
            return False
        index = argv.index("--settings") + 1
        return index < len(argv) and self._state_of(argv[index]) == self.state

    def find(self, exclude: set[int] = frozenset()) -> dict[int, tuple[psutil.Process, str]]:
        """Every running process of this hub: ``{pid: (process, what)}``."""
        me = {os.getpid(), *exclude}
        with contextlib.suppress(psutil.Error):
            me |= {p.pid for p in psutil.Process().parents()}
        found: dict[int, tuple[psutil.Process, str]] = {}
        pid_files = self._pid_files()
        for proc in psutil.process_iter():
            if proc.pid in me:
                continue
            try:
                if proc.status() == psutil.STATUS_ZOMBIE:
                    continue
            except psutil.Error:
                continue
            what = self.why_ours(proc)
            if what is None and proc.pid in pid_files and self._our_service(proc):
                what = pid_files[proc.pid]
            if what is not None:
                found[proc.pid] = (proc, what)
        return found

    def running_hub(self) -> tuple[int, str] | None:
        """The pid and command of a hub of this state directory that still runs, if any."""
        for pid, (proc, what) in self.find().items():
            if what == "hub":
                return pid, _command(proc)
        return None


def stop_processes(procs: dict[int, tuple[psutil.Process, str]],
                   grace: float = STOP_GRACE) -> list[str]:
    """SIGTERM, then SIGKILL after ``grace`` seconds; return a description of each process."""
    described = [f"{what} (pid {pid}: {_command(proc)})" for pid, (proc, what) in procs.items()]
    alive = []
    for proc, _ in procs.values():
        try:
            proc.terminate()
            alive.append(proc)
        except psutil.Error:
            pass
    _, alive = psutil.wait_procs(alive, timeout=grace)
    for proc in alive:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    psutil.wait_procs(alive, timeout=grace)
    return described


def clear_stale(settings: Settings, secrets: Secrets | None) -> list[str]:
    """Stop what an earlier hub of this state directory left running (proxy, services).

    A hub of this state directory that still runs is not stale: that is an error. Returns a
    description of every process stopped.
    """
    procs = StateProcesses(settings, secrets)
    running = procs.running_hub()
    if running is not None:
        pid, command = running
        msg = (f"a hub from this state directory is already running (pid {pid}: {command}): "
               f"stop it first (kill {pid})")
        raise SetupError(msg)
    return _stop_rounds(procs)


def _stop_rounds(procs: StateProcesses) -> list[str]:
    """Stop every process of this state directory; a process stopped may leave a child of its
    own (dask-gateway's proxy), hence a few rounds."""
    stopped: list[str] = []
    for _ in range(3):
        found = procs.find()
        if not found:
            break
        stopped += stop_processes(found)
    return stopped


def tell_services_to_stop(settings: Settings | Path, secrets: Secrets, exclude: set[int],
                          known: dict[str, Path] | None = None) -> None:
    """SIGTERM to this hub's managed services (not the hub, not its proxy); no waiting."""
    for proc, what in StateProcesses(settings, secrets, known).find(exclude).values():
        if what.startswith("service"):
            with contextlib.suppress(psutil.Error):
                proc.terminate()


def clear_stale_after_exit(settings: Settings | Path, secrets: Secrets,
                           known: dict[str, Path] | None = None) -> list[str]:
    """After the hub exited: stop its proxy and services that still run."""
    return _stop_rounds(StateProcesses(settings, secrets, known))
