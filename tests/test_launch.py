"""``echoes-lab hub``'s launcher: which processes are this hub's, every port of the profile, the
banner with the passwords kept out of logs, a private log file (issue 13, items 5, 6, 8)."""

from __future__ import annotations

import contextlib
import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from echoes_lab.errors import SetupError
from echoes_lab.hub import launch
from echoes_lab.hub.secrets import ensure_secrets
from echoes_lab.hub.settings import load_settings

from harness import wait_for


def settings_file(tmp_path, extra: str = ""):
    path = tmp_path / "s.toml"
    path.write_text(f'profile = "local"\n[hub]\nstate_dir = "{tmp_path / "state"}"\n'
                    'port = 18000\nproxy_api_port = 18001\nhub_port = 18081\n'
                    '[spawner]\nisolation = "none"\n' + extra)
    return path


def sleeper(env: dict[str, str] | None = None, args: tuple[str, ...] = ()) -> subprocess.Popen:
    """A real process with a chosen environment and command line (as a stale service has)."""
    argv = [sys.executable, "-c", "import time; time.sleep(60)", *args]
    proc = subprocess.Popen(argv, env={"PATH": os.defpath, **(env or {})})
    wait_execd(proc, argv)
    return proc


def wait_execd(proc: subprocess.Popen, argv: list[str]) -> None:
    """Wait until ``proc`` runs ``argv`` (exec done: its environment is readable in /proc)."""
    cmdline = Path(f"/proc/{proc.pid}/cmdline")
    wait_for(lambda: cmdline.read_bytes().split(b"\0")[:-1] == [a.encode() for a in argv],
             10, f"pid {proc.pid} to exec", interval=0.02)


def test_every_fixed_port_of_the_profile(tmp_path):
    s = load_settings(settings_file(tmp_path, "[gateway]\nport = 18010\nscheduler_port = 18011\n"
                                              "api_port = 18012\n[reports]\nport = 18020\n"
                                              "[workshops]\nport = 0\n"))
    keys = {key: port for _, key, port in launch.profile_ports(s)}
    assert keys["hub.port"] == 18000 and keys["hub.proxy_api_port"] == 18001
    assert keys["hub.hub_port"] == 18081
    assert keys["gateway.scheduler_port"] == 18011 and keys["gateway.api_port"] == 18012
    assert keys["gateway.port"] == 18010 and keys["reports.port"] == 18020
    assert "workshops.port" not in keys  # 0: any free port at each start
    off = load_settings(settings_file(tmp_path, "[gateway]\nenabled = false\n"))
    assert not any(k.startswith("gateway.") for _, k, _ in launch.profile_ports(off))


def test_processes_of_this_state_directory_and_no_others(tmp_path):
    path = settings_file(tmp_path)
    s = load_settings(path)
    secrets, _ = ensure_secrets(s.state_dir)
    other = tmp_path / "other"
    other.mkdir()
    other_secrets, _ = ensure_secrets(other)
    procs = {
        "service": sleeper({"JUPYTERHUB_API_TOKEN": secrets.api_tokens["reports"]}),
        "proxy": sleeper({"CONFIGPROXY_AUTH_TOKEN": secrets.proxy_auth_token}),
        "settings": sleeper({"ECHOES_SETTINGS": str(path)}),
        "other-hub": sleeper({"JUPYTERHUB_API_TOKEN": other_secrets.api_tokens["reports"]}),
        # the operator's command line token: a running `echoes-lab workshop`, never stopped
        "cli": sleeper({"JUPYTERHUB_API_TOKEN": secrets.api_tokens["echoes-cli"]}),
        "user-server": sleeper({"JUPYTERHUB_API_URL": "http://127.0.0.1:18081/hub/api",
                                "JUPYTERHUB_USER": "alice", "JUPYTERHUB_API_TOKEN": "x" * 32}),
    }
    # a service known only by its pid file (started with this profile's settings)
    pid_only = sleeper(args=("-m", "echoes_lab.hub.services.commons", "--settings", str(path)))
    (s.state_dir / "services").mkdir()
    (s.state_dir / "services" / "commons.pid").write_text(f"{pid_only.pid}\n")
    try:
        found = launch.StateProcesses(s, secrets).find()
        ours = {procs["service"].pid, procs["proxy"].pid, procs["settings"].pid, pid_only.pid}
        assert set(found) == ours
        assert found[procs["service"].pid][1] == "service reports"
        assert found[procs["proxy"].pid][1] == "proxy"
        assert found[pid_only.pid][1] == "service commons"
        stopped = launch.clear_stale(s, secrets)
        assert len(stopped) == 4 and any("service reports" in line for line in stopped)
        for pid in ours:
            assert next(p for p in [*procs.values(), pid_only] if p.pid == pid).wait(10) is not None
        for name in ("other-hub", "cli", "user-server"):
            assert procs[name].poll() is None, f"{name} must not be stopped"
    finally:
        for p in [*procs.values(), pid_only]:
            p.kill()
            p.wait()


def test_a_running_hub_of_this_state_is_an_error_not_a_victim(tmp_path):
    path = settings_file(tmp_path)
    s = load_settings(path)
    secrets, _ = ensure_secrets(s.state_dir)
    argv = [sys.executable, "-c", "import time; time.sleep(60)", "jupyterhub"]
    hub = subprocess.Popen(argv, env={"PATH": os.defpath, "ECHOES_SETTINGS": str(path)})
    wait_execd(hub, argv)
    try:
        with pytest.raises(SetupError, match=f"already running \\(pid {hub.pid}"):
            launch.clear_stale(s, secrets)
        assert hub.poll() is None
    finally:
        hub.kill()
        hub.wait()


def test_port_held_by_another_process_is_named(tmp_path):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        s = load_settings(settings_file(tmp_path, f"[gateway]\napi_port = {port}\n"))
        with pytest.raises(SetupError) as err:
            launch.check_ports(s)
    line = str(err.value)
    assert f"port {port} ('gateway.api_port')" in line and f"pid {os.getpid()}" in line
    assert str(s.source) in line


def test_first_start_banner_never_reaches_a_log(tmp_path):
    """Started with its output in a file (no terminal): the passwords are not written."""
    path = settings_file(tmp_path)
    code = ("import sys; from echoes_lab.hub import launch; "
            "from echoes_lab.hub.settings import load_settings; "
            "from echoes_lab.hub.secrets import ensure_secrets; "
            f"s = load_settings({str(path)!r}); sec, first = ensure_secrets(s.state_dir); "
            "launch.announce(s, sec, first)")
    log = tmp_path / "out.log"
    with open(log, "w") as fh:
        # start_new_session: no controlling terminal, as under a service manager
        subprocess.run([sys.executable, "-c", code], stdout=fh, stderr=subprocess.STDOUT,
                       check=True, start_new_session=True)
    secrets = json.loads((tmp_path / "state" / "secrets.json").read_text())
    text = log.read_text()
    assert "first start" in text and "secrets.json" in text
    assert secrets["admin_password"] not in text and secrets["user_password"] not in text
    banner = launch.login_message(load_settings(path), ensure_secrets(tmp_path / "state")[0],
                                  True)
    assert secrets["admin_password"] in banner  # what a terminal gets


def test_log_file_is_private(tmp_path):
    log = tmp_path / "hub.log"
    os.close(launch.open_log(log))
    assert stat.S_IMODE(log.stat().st_mode) == 0o600
    link = tmp_path / "link.log"
    link.symlink_to(tmp_path / "elsewhere")
    with pytest.raises(OSError):
        launch.open_log(link)


def test_new_service_token_is_not_a_first_start(tmp_path):
    secrets, first = ensure_secrets(tmp_path)
    assert first
    data = json.loads((tmp_path / "secrets.json").read_text())
    del data["api_tokens"]["commons"]
    (tmp_path / "secrets.json").write_text(json.dumps(data))
    again, first = ensure_secrets(tmp_path, services=("extra",))
    assert not first  # the banner (passwords) is not shown again for a new token
    assert again.admin_password == secrets.admin_password
    assert {"commons", "extra"} <= set(again.api_tokens)


def test_a_hub_that_ignores_sigterm_is_killed_and_its_services_swept(tmp_path):
    """The launcher's deadline: JupyterHub 6.1 can hang while stopping its services; the
    launcher kills it after the deadline and stops what is left of this state directory."""
    import signal
    import threading

    s = load_settings(settings_file(tmp_path))
    secrets, _ = ensure_secrets(s.state_dir)
    stuck_hub = subprocess.Popen([sys.executable, "-c", (
        "import signal, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)\n")], stdout=subprocess.PIPE, text=True)
    service = sleeper({"JUPYTERHUB_API_TOKEN": secrets.api_tokens["dask-gateway"]})
    stranger = sleeper()
    try:
        assert stuck_hub.stdout.readline().strip() == "ready"
        threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGTERM)).start()
        started = time.monotonic()
        assert launch.supervise(stuck_hub, s, secrets, deadline=1.0) == 0
        took = time.monotonic() - started
        assert stuck_hub.poll() == -signal.SIGKILL
        assert service.wait(5) is not None  # stopped by the launcher, not by the "hub"
        assert stranger.poll() is None
        assert took < 1.0 + 2 * launch.STOP_GRACE
        # the launcher's own handlers are put back
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    finally:
        for p in (stuck_hub, service, stranger):
            p.kill()
            p.wait()


def test_launcher_becomes_the_supervisor_and_a_signal_meanwhile_is_not_lost(tmp_path):
    """After the hub's start the launcher re-executes itself as the light supervising module
    (issue 36); a SIGTERM that arrives before its handlers exist waits, pending, and then stops
    the "hub" (here a real sleeping process) as any later SIGTERM would: exit status 0."""
    state = tmp_path / "state"
    state.mkdir()
    ensure_secrets(state)
    launcher = subprocess.Popen([sys.executable, "-c", (
        "import os, signal, subprocess, sys, types\n"
        "from pathlib import Path\n"
        "from echoes_lab.hub.launch.supervision import STOP_SIGNALS, become_supervisor\n"
        "hub = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        "print(hub.pid, flush=True)\n"
        "signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)\n"
        "os.kill(os.getpid(), signal.SIGTERM)  # before the supervisor's handlers\n"
        f"become_supervisor(hub, types.SimpleNamespace(state_dir=Path({str(state)!r})), "
        f"Path({str(tmp_path / 's.toml')!r}))\n"
        "sys.exit(3)  # not reached: execv replaced this program\n")],
        stdout=subprocess.PIPE, text=True)
    hub = int(launcher.stdout.readline())
    try:
        assert launcher.wait(30) == 0
        # ended and reaped by the supervisor (its parent), as the real hub is
        assert not psutil.pid_exists(hub)
    finally:
        launcher.kill()
        launcher.wait()
        with contextlib.suppress(psutil.Error):
            psutil.Process(hub).kill()


def test_cli_file_errors_are_one_line(tmp_path):
    """``datasets add`` where the home cannot hold the catalogue: one line, no traceback."""
    data = tmp_path / "data.csv"
    data.write_text("a,b\n1,2\n")
    not_a_folder = tmp_path / "home"
    not_a_folder.write_text("a file, not a home folder")
    done = subprocess.run([os.path.join(os.path.dirname(sys.executable), "echoes-lab"),
                           "datasets", "add", str(data)], capture_output=True, text=True,
                          env={**os.environ, "HOME": str(not_a_folder)}, timeout=60)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("echoes-lab: ") and str(not_a_folder) in lines[0]
