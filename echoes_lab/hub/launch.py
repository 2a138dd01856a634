"""``echoes-lab hub``: check the machine, prepare the state directory, start JupyterHub.

Every problem found before the start (a bad settings file, no Node.js, no proxy, a port in
use) is one clear line with the fix, raised as an :mod:`echoes_lab.errors` exception.

The launcher owns the hub's life cycle: before the start it stops what an earlier hub of the
same state directory left running (after a ``kill -9``) and checks every fixed port of the
profile; it stays JupyterHub's parent, so SIGTERM/SIGINT/SIGHUP end the hub, its proxy and its
services in bounded time, and the hub gets SIGTERM if the launcher itself is killed. Users'
servers are never the launcher's to stop.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
from pydantic import BaseModel

from echoes_lab.errors import SetupError
from echoes_lab.hub import HUB_CONFIG_DIR, KERNELS_DIR
from echoes_lab.hub.accounts import isolated
from echoes_lab.hub.config import kernel_dir, proxy_command
from echoes_lab.hub.secrets import Secrets, ensure_secrets, read_secrets
from echoes_lab.hub.settings import Settings, load_settings

DEFAULT_SETTINGS = HUB_CONFIG_DIR / "local.toml"
HUB_CONFIG = HUB_CONFIG_DIR / "jupyterhub_config.py"
KERNEL_TEMPLATE = KERNELS_DIR / "echoes"


def say(line: str) -> None:
    """One line for the operator on standard output (``echoes-lab hub`` is a command line)."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def install_kernel(prefix: Path, data_dir: Path | None = None) -> Path:
    """Install the ECHOES kernel spec under ``prefix/kernels/echoes``.

    The spec in ``kernels/echoes`` names ``python``; here it gets this environment's own
    interpreter, so the kernel finds ``echoes_lab`` whatever the caller's ``PATH``, and, when
    given, the deployment's shared datasets folder as ``ECHOES_DATA`` (the hub installs one
    such spec per deployment into its state directory and puts it first on ``JUPYTER_PATH``).
    """
    spec = json.loads((KERNEL_TEMPLATE / "kernel.json").read_text(encoding="utf-8"))
    spec["argv"][0] = sys.executable
    env = spec.setdefault("env", {})
    if data_dir is not None:
        env["ECHOES_DATA"] = str(data_dir)
    else:
        # no deployment folder to name: the kernel inherits ECHOES_DATA from whoever starts it
        env.pop("ECHOES_DATA", None)
    dest = prefix / "kernels" / "echoes"
    dest.mkdir(parents=True, exist_ok=True)
    for extra in KERNEL_TEMPLATE.iterdir():
        if extra.name != "kernel.json":
            shutil.copy2(extra, dest / extra.name)
    (dest / "kernel.json").write_text(json.dumps(spec, indent=1) + "\n", encoding="utf-8")
    for path in (prefix, prefix / "kernels", dest, *dest.iterdir()):
        os.chmod(path, 0o755 if path.is_dir() else 0o644)
    return dest


def install_lab_settings(prefix: Path) -> Path:
    """Install the lab's default settings (``hub_config/lab/overrides.json``) into ``prefix``.

    JupyterLab reads ``<prefix>/share/jupyter/lab/settings/overrides.json`` as the defaults a
    user may still change; ours turn off the news and update checks, which need the internet.
    """
    dest = prefix / "share" / "jupyter" / "lab" / "settings"
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy2(HUB_CONFIG_DIR / "lab" / "overrides.json", dest / "overrides.json")
    return dest / "overrides.json"


# -- processes of this state directory ------------------------------------------------------

#: seconds the hub gets, after SIGTERM, to stop its proxy and managed services by itself
HUB_STOP_DEADLINE = 12.0
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

    def __init__(self, settings: Settings, secrets: Secrets | None):
        self.settings = settings
        self.state = settings.state_dir
        self.secrets = secrets
        self._settings_state: dict[str, Path | None] = {}

    def _state_of(self, settings_file: str) -> Path | None:
        if settings_file not in self._settings_state:
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


def profile_ports(settings: Settings) -> list[tuple[str, str, int]]:
    """Every fixed port of the profile: ``(address, settings key, port)``.

    The hub's three, then every ``port`` / ``*_port`` key of the other sections that is not
    0 (0 means "any free port, chosen at each start"), so a service added later is checked
    without a change here.
    """
    hub = settings.hub
    ports = [(hub.ip, "hub.port", hub.port),
             ("127.0.0.1", "hub.proxy_api_port", hub.proxy_api_port),
             ("127.0.0.1", "hub.hub_port", hub.hub_port)]
    for section in type(settings).model_fields:
        value = getattr(settings, section)
        if section == "hub" or not isinstance(value, BaseModel):
            continue
        if hasattr(value, "enabled") and not value.enabled:
            continue
        for key in type(value).model_fields:
            port = getattr(value, key)
            if (key == "port" or key.endswith("_port")) and isinstance(port, int) and port:
                ports.append(("127.0.0.1", f"{section}.{key}", port))
    return ports


def _listening_pids() -> dict[int, set[int]]:
    """``{port: {pid, ...}}`` of every listening TCP socket this account can see."""
    found: dict[int, set[int]] = {}
    try:
        conns = psutil.net_connections(kind="inet")
    except psutil.Error:
        return found
    for conn in conns:
        if conn.status == psutil.CONN_LISTEN and conn.pid and conn.laddr:
            found.setdefault(conn.laddr.port, set()).add(conn.pid)
    return found


def _processes(pids: set[int]) -> list[psutil.Process]:
    procs = []
    for pid in sorted(pids):
        with contextlib.suppress(psutil.NoSuchProcess):
            procs.append(psutil.Process(pid))
    return procs


def _port_in_use(ip: str, port: int) -> OSError | None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((ip, port))
        except OSError as exc:
            return exc
    return None


def check_ports(settings: Settings) -> None:
    """Raise :class:`SetupError` naming the process that holds a port of the profile."""
    listening = _listening_pids()
    for ip, key, port in profile_ports(settings):
        holders = _processes(listening.get(port, set()))
        addresses = [ip] if ip == "127.0.0.1" else [ip, "127.0.0.1"]
        problem = next((e for a in addresses if (e := _port_in_use(a, port))), None)
        if not holders and problem is None:
            continue
        if problem is not None and problem.errno != errno.EADDRINUSE:
            msg = f"cannot listen on {ip}:{port} ('{key}': {problem.strerror})"
            raise SetupError(msg)
        who = ", ".join(f"pid {p.pid} ({_command(p)})" for p in holders) or (
            "a process this account cannot see")
        msg = (f"port {port} ('{key}') is already in use by {who}, which is not this hub's: "
               f"stop it, or set '{key}' in {settings.source}")
        raise SetupError(msg)


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


def _private_ancestor(path: Path) -> Path | None:
    """The first folder above ``path`` that other accounts cannot pass through, if any."""
    for folder in [*reversed(path.parents)]:
        if folder.exists() and not os.stat(folder).st_mode & 0o001:
            return folder
    return None


def preflight(settings: Settings) -> list[str]:
    """Check what the hub needs on this machine before anything starts.

    Stops the processes an earlier hub of the same state directory left behind, then checks
    every port of the profile; returns what was stopped.
    """
    if isolated(settings.spawner.isolation):
        for needed in (Path(sys.executable).resolve(), Path(sys.prefix), settings.state_dir):
            private = _private_ancestor(needed / "x")
            if private is not None:
                msg = (
                    f"users' servers run under their own accounts, which cannot pass through "
                    f"{private} to reach {needed}: build the environment with a Python outside "
                    f"private folders (make clean-venv hub uses /usr/bin/python3), or set "
                    f"spawner.isolation = \"none\" in {settings.source}"
                )
                raise SetupError(msg)
    if shutil.which("node") is None:
        msg = ("Node.js ('node') is not installed, and the hub's proxy needs it: "
               "install it (apt-get install nodejs), then run 'make hub' again")
        raise SetupError(msg)
    proxy = Path(proxy_command(settings))
    if not proxy.exists():
        msg = (f"configurable-http-proxy is missing ({proxy}): run 'make hub', which installs "
               f"it with npm, or set 'proxy.command' in {settings.source}")
        raise SetupError(msg)
    try:
        secrets = read_secrets(settings.state_dir)
    except (OSError, ValueError, TypeError):
        secrets = None  # first start: nothing of ours can be running
    stopped = clear_stale(settings, secrets)
    check_ports(settings)
    return stopped


def prepare(settings: Settings) -> tuple[Secrets, bool]:
    """Create the state directory, secrets, kernel spec and shared data folder."""
    state = settings.state_dir
    state.mkdir(parents=True, exist_ok=True)
    # 0711: users' servers (other uids when the hub runs as root) may pass through to their
    # own home, but cannot list the state directory or read the database and secrets
    os.chmod(state, 0o711)
    settings.homes_dir.mkdir(exist_ok=True)
    os.chmod(settings.homes_dir, 0o711)
    secrets, first_run = ensure_secrets(state)
    for db in state.glob("*.sqlite*"):  # made by a hub before the umask below was set
        os.chmod(db, 0o600)
    install_kernel(kernel_dir(settings), settings.shared_dir)
    shared = settings.shared_dir
    shared.mkdir(parents=True, exist_ok=True)
    if settings.data.install_demo and not (shared / "catalog.yaml").exists():
        install_demo_data(shared)
    install_real_data(settings)
    read_only(shared)
    return secrets, first_run


def install_real_data(settings: Settings) -> None:
    """Fetch the real datasets of ``[data] fetch`` into the shared folder, verified (once).

    From ``[data] mirror`` (or ``$ECHOES_MIRROR``) first, else their pinned urls. One that
    cannot be had (no mirror, no internet) is reported and skipped: the hub still starts.
    """
    from echoes_lab import datasets
    from echoes_lab.errors import EchoesError

    shared, mirror = settings.shared_dir, settings.data.mirror or None
    if mirror and "://" not in mirror:
        mirror = str(settings.path(mirror))
    for name in settings.data.fetch:
        try:
            entry = datasets.info(name, shared)
            if all((shared / f["path"]).exists() for f in entry["files"]):
                continue
            for folder, _, _ in os.walk(shared):  # read_only() made it 0555 on an earlier start
                os.chmod(folder, 0o755)
            say(f"ECHOES Lab: installing the dataset {name} into {shared}")
            datasets.fetch(name, shared, mirror=mirror, shared_only=True)
        except EchoesError as exc:
            say(f"ECHOES Lab: dataset {name} not installed: {exc}")


def install_demo_data(shared: Path) -> None:
    """Generate the seeded demo datasets into the shared folder (once; kept afterwards)."""
    os.chmod(shared, 0o755)
    for folder, dirs, files in os.walk(shared):
        for name in dirs:
            os.chmod(os.path.join(folder, name), 0o755)
        for name in files:
            os.chmod(os.path.join(folder, name), 0o644)
    say(f"ECHOES Lab: generating the demo datasets into {shared} (first start only)")
    done = subprocess.run([sys.executable, "-m", "echoes_lab.demo", "--out", str(shared)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        msg = f"could not generate the demo datasets into {shared}: {last}"
        raise SetupError(msg)


def read_only(folder: Path) -> None:
    """Make a folder tree read-only for everyone (its owner may still lift that)."""
    for path, _dirs, files in os.walk(folder):
        for name in files:
            os.chmod(os.path.join(path, name), 0o444)
        os.chmod(path, 0o555)


def login_message(settings: Settings, secrets: Secrets, first_run: bool) -> str:
    """The first-start banner with both passwords (the terminal only), or one plain line."""
    url = f"http://{settings.hub.ip}:{settings.hub.port}"
    store = settings.state_dir / "secrets.json"
    if not first_run:
        return f"ECHOES Lab: starting at {url} (credentials are in {store}, mode 0600)"
    admins = ", ".join(settings.auth.admins) or "(none)"
    return "\n".join([
        f"ECHOES Lab: first start. Open {url} and sign in:",
        f"  admin ({admins}): password {secrets.admin_password}",
        f"  everyone else: any user name, password {secrets.user_password}",
        f"These are shown this once, on this terminal; they are kept in {store} (mode 0600).",
    ])


def _terminal():
    """A stream that reaches the person who ran the command, never a file: stderr when it is
    a terminal, else the controlling terminal; ``None`` when there is none (a service manager,
    a pipe into a log)."""
    if sys.stderr is not None and sys.stderr.isatty():
        return sys.stderr
    try:
        return open("/dev/tty", "w", encoding="utf-8")  # noqa: SIM115 - closed by announce
    except OSError:
        return None


def announce(settings: Settings, secrets: Secrets, first_run: bool) -> None:
    """Tell the operator where the hub is; the passwords go to a terminal, never to a log."""
    url = f"http://{settings.hub.ip}:{settings.hub.port}"
    store = settings.state_dir / "secrets.json"
    say(f"ECHOES Lab: starting at {url} (credentials are in {store}, mode 0600)")
    if not first_run:
        return
    tty = _terminal()
    if tty is None:
        say("ECHOES Lab: first start, and no terminal to show the passwords on: read them in "
            f"{store} (admin_password, user_password)")
        return
    try:
        tty.write(login_message(settings, secrets, first_run) + "\n")
        tty.flush()
    finally:
        if tty is not sys.stderr:
            tty.close()


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


def tell_services_to_stop(settings: Settings, secrets: Secrets, exclude: set[int]) -> None:
    """SIGTERM to this hub's managed services (not the hub, not its proxy); no waiting."""
    for proc, what in StateProcesses(settings, secrets).find(exclude).values():
        if what.startswith("service"):
            with contextlib.suppress(psutil.Error):
                proc.terminate()


def clear_stale_after_exit(settings: Settings, secrets: Secrets) -> list[str]:
    """After the hub exited: stop its proxy and services that still run."""
    return _stop_rounds(StateProcesses(settings, secrets))


def run_hub(settings_file: str | Path | None = None, log_file: str | Path | None = None) -> int:
    """Check, prepare, start the hub and watch it until it stops (``echoes-lab hub``)."""
    settings_file = Path(settings_file or DEFAULT_SETTINGS).resolve()
    settings = load_settings(settings_file)
    stopped = preflight(settings)
    if stopped:
        say("ECHOES Lab: stopped processes an earlier hub of this state directory left "
            "running: " + "; ".join(stopped))
    secrets, first_run = prepare(settings)
    announce(settings, secrets, first_run)
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
    return supervise(proc, settings, secrets)
