"""The hub as the launcher's child: its command, its log, and its stop in bounded time on
SIGTERM/SIGINT/SIGHUP (the launcher stays its parent).

Once the hub has started, the launcher has no more use for what preparing it took (the settings
and their validation, the data installers, the kernel spec: ~20 MiB of modules, resident for
the hub's whole life, issue 36): it replaces itself (``execv``, same pid, so still the hub's
parent and the target of its ``PR_SET_PDEATHSIG``) with ``python -m
echoes_lab.hub.launch.supervision HUB_PID STATE_DIR SETTINGS_FILE``, which imports only this
module, :mod:`~echoes_lab.hub.launch.processes`, psutil and the secrets file's reader. The
signals that end the hub are blocked across the ``execv`` (a blocked signal stays pending
through it: execve(2)) and delivered once the new image's handlers are in place.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from echoes_lab.hub import HUB_CONFIG_DIR
from echoes_lab.hub.launch.messages import say
from echoes_lab.hub.launch.processes import clear_stale_after_exit, tell_services_to_stop

if TYPE_CHECKING:
    from echoes_lab.hub.secrets import Secrets
    from echoes_lab.hub.settings import Settings

HUB_CONFIG = HUB_CONFIG_DIR / "jupyterhub_config.py"
MODULE = "echoes_lab.hub.launch.supervision"
#: what ends the hub; blocked across the launcher's ``execv`` into :data:`MODULE`
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


#: seconds the hub gets, after SIGTERM, to stop its proxy and managed services by itself
HUB_STOP_DEADLINE = 12.0


def hub_command(settings_file: Path) -> tuple[list[str], dict[str, str]]:
    # this interpreter's JupyterHub, as every service is started (python -m): an environment
    # whose packages come from elsewhere (a layered image) may have no jupyterhub script;
    # echoes_lab.hub.app is JupyterHub stopping its services at once on SIGTERM/SIGINT
    env = {**os.environ, "ECHOES_SETTINGS": str(settings_file)}
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", os.defpath)])
    return [sys.executable, "-m", "echoes_lab.hub.app", "-f", str(HUB_CONFIG)], env


def _die_with_parent(parent: int):
    """``preexec_fn`` for the hub: SIGTERM when the launcher dies, however it dies (Linux)."""
    def setup() -> None:
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
            libc.prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            return
        if os.getppid() != parent:  # the launcher died before prctl
            os.kill(os.getpid(), signal.SIGTERM)
    return setup


def open_log(path: str | Path) -> int:
    """Open (append) the hub's log file, private to the hub's account (0600)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, 0o600)
    os.fchmod(fd, 0o600)
    return fd


def start_hub(settings: Settings, settings_file: Path,
              log_file: str | Path | None = None) -> subprocess.Popen:
    """Start JupyterHub in a session of its own, the launcher its parent (SIGTERM to the hub
    when the launcher dies), its output to ``log_file`` (private) or the launcher's."""
    argv, env = hub_command(settings_file)
    # the state directory is 0711 so users pass through to their homes: every file the hub
    # and its services create there (the databases, their journals) must be theirs alone;
    # what users need (homes, kernel spec, shared data, gateway folders) gets explicit modes
    os.umask(0o077)
    output = open_log(log_file) if log_file else None
    try:
        proc = subprocess.Popen(argv, env=env, cwd=settings.state_dir, start_new_session=True,
                                preexec_fn=_die_with_parent(os.getpid()),
                                stdout=output, stderr=subprocess.STDOUT if output else None)
    finally:
        if output is not None:
            os.close(output)
    return proc


class _Child:
    """The hub as a pid of this process's (after the ``execv``, no ``Popen`` object is left):
    what :func:`supervise` uses of a ``Popen``."""

    def __init__(self, pid: int):
        self.pid = pid
        self.returncode: int | None = None

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.returncode is None:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:  # reaped already (cannot happen here, but not a hang)
                self.returncode = 0
                break
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
                break
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise subprocess.TimeoutExpired(str(self.pid), timeout)
            self._until_exit(left)
        return self.returncode

    def _until_exit(self, timeout: float | None) -> None:
        # a pidfd becomes readable when the process exits (pidfd_open(2), Linux 5.3); without
        # one, poll as Popen.wait does
        try:
            fd = os.pidfd_open(self.pid)
        except (AttributeError, OSError):
            time.sleep(0.05 if timeout is None else min(0.05, timeout))
            return
        try:
            select.select([fd], [], [], timeout)
        finally:
            os.close(fd)

    def send_signal(self, signum: int) -> None:
        if self.returncode is None:
            os.kill(self.pid, signum)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


def supervise(proc: subprocess.Popen | _Child, settings: Settings | Path, secrets: Secrets,
              deadline: float = HUB_STOP_DEADLINE,
              known: dict[str, Path] | None = None) -> int:
    """Wait for the hub; on SIGTERM/SIGINT/SIGHUP stop it, and leave none of its processes.

    The hub runs in a session of its own, so a signal to the launcher's process group (``make
    hub``, a terminal's Ctrl-C) reaches the hub exactly once, through here. The hub gets
    ``deadline`` seconds to stop its proxy and services (JupyterHub 6.1 can hang there: a
    managed service that failed to bind, ``check_services_health`` meeting a deleted server);
    then it is killed, and whatever of this state directory still runs is stopped. Users'
    servers are not the hub's processes and keep running (``cleanup_servers = False``).
    ``settings``: the hub's settings or its state directory; ``known``: settings files whose
    state directory is known (:class:`~echoes_lab.hub.launch.processes.StateProcesses`).
    """
    asked: list[float] = []
    services_told = False

    def on_signal(signum, frame) -> None:
        if not asked:
            asked.append(time.monotonic())
            with contextlib.suppress(OSError):
                proc.send_signal(signal.SIGTERM)
        elif signum == signal.SIGINT:  # Ctrl-C twice: no more waiting
            asked[0] = -deadline

    previous = {s: signal.signal(s, on_signal) for s in STOP_SIGNALS}
    # signals blocked by the launcher before its execv (pending ones are delivered now)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
    try:
        while True:
            try:
                proc.wait(timeout=0.2)
                break
            except subprocess.TimeoutExpired:
                pass
            if asked and not services_told:
                # JupyterHub stops its services one after the other, waiting for each (2-3 s
                # apiece here); told now, all at once, they are gone when the hub asks
                services_told = True
                tell_services_to_stop(settings, secrets, exclude={proc.pid}, known=known)
            if asked and time.monotonic() - asked[0] > deadline:
                say(f"ECHOES Lab: the hub did not stop within {deadline:.0f} s: killing it")
                proc.kill()
                proc.wait()
                break
        left = clear_stale_after_exit(settings, secrets, known=known)
        if left:
            say("ECHOES Lab: stopped what the hub left running: " + "; ".join(left))
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return 0 if asked else proc.returncode


def become_supervisor(proc: subprocess.Popen, settings: Settings, settings_file: Path) -> None:
    """Replace the launcher (same pid: still the hub's parent) with :func:`main`, which imports
    only what supervising takes; returns only if ``execv`` fails."""
    sys.stdout.flush()
    sys.stderr.flush()
    # from here to the new image's handlers, a signal to the launcher waits (pending) instead of
    # ending it with the default action, which would leave the hub without its supervisor
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    argv = [sys.executable, "-P", "-m", MODULE, str(proc.pid), str(settings.state_dir),
            str(settings_file)]
    try:
        os.execv(sys.executable, argv)
    except OSError:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)


def main(argv: list[str] | None = None) -> int:
    """``python -P -m echoes_lab.hub.launch.supervision HUB_PID STATE_DIR SETTINGS_FILE``: the
    launcher after the hub's start (:func:`become_supervisor`): supervise the hub, its child."""
    from echoes_lab.hub.secrets import read_secrets

    pid, state, settings_file = sys.argv[1:4] if argv is None else argv
    state_dir = Path(state)
    hub = _Child(int(pid))
    try:
        secrets = read_secrets(state_dir)
    except (OSError, ValueError, TypeError) as exc:  # written by the launcher just before
        say(f"ECHOES Lab: cannot read {state_dir / 'secrets.json'} ({exc}): stopping the hub")
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
        hub.kill()
        hub.wait()
        return 1
    return supervise(hub, state_dir, secrets, known={settings_file: state_dir})


if __name__ == "__main__":
    sys.exit(main())
