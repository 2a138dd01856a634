"""The hub as the launcher's child: its command, its log, and its stop in bounded time on
SIGTERM/SIGINT/SIGHUP (the launcher stays its parent)."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from echoes_lab.hub import HUB_CONFIG_DIR
from echoes_lab.hub.launch.messages import say
from echoes_lab.hub.launch.processes import clear_stale_after_exit, tell_services_to_stop
from echoes_lab.hub.secrets import Secrets
from echoes_lab.hub.settings import Settings

HUB_CONFIG = HUB_CONFIG_DIR / "jupyterhub_config.py"


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


def supervise(proc: subprocess.Popen, settings: Settings, secrets: Secrets,
              deadline: float = HUB_STOP_DEADLINE) -> int:
    """Wait for the hub; on SIGTERM/SIGINT/SIGHUP stop it, and leave none of its processes.

    The hub runs in a session of its own, so a signal to the launcher's process group (``make
    hub``, a terminal's Ctrl-C) reaches the hub exactly once, through here. The hub gets
    ``deadline`` seconds to stop its proxy and services (JupyterHub 6.1 can hang there: a
    managed service that failed to bind, ``check_services_health`` meeting a deleted server);
    then it is killed, and whatever of this state directory still runs is stopped. Users'
    servers are not the hub's processes and keep running (``cleanup_servers = False``).
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

    handled = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
    previous = {s: signal.signal(s, on_signal) for s in handled}
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
                tell_services_to_stop(settings, secrets, exclude={proc.pid})
            if asked and time.monotonic() - asked[0] > deadline:
                say(f"ECHOES Lab: the hub did not stop within {deadline:.0f} s: killing it")
                proc.kill()
                proc.wait()
                break
        left = clear_stale_after_exit(settings, secrets)
        if left:
            say("ECHOES Lab: stopped what the hub left running: " + "; ".join(left))
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return 0 if asked else proc.returncode
