"""``echoes-lab hub``: check the machine, prepare the state directory, start JupyterHub.

Every problem found before the start (a bad settings file, no Node.js, no proxy, a port in
use) is one clear line with the fix, raised as an :mod:`echoes_lab.errors` exception.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

from echoes_lab.errors import SetupError
from echoes_lab.hub.config import kernel_dir, proxy_command
from echoes_lab.hub.secrets import Secrets, ensure_secrets
from echoes_lab.hub.settings import Settings, load_settings
from echoes_lab.hub.spawner import isolated

REPO = Path(__file__).resolve().parents[2]
DEFAULT_SETTINGS = REPO / "hub_config" / "local.toml"
HUB_CONFIG = REPO / "hub_config" / "jupyterhub_config.py"
KERNEL_TEMPLATE = REPO / "kernels" / "echoes"


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
    shutil.copy2(REPO / "hub_config" / "lab" / "overrides.json", dest / "overrides.json")
    return dest / "overrides.json"


def _pid_alive(pid_file: Path) -> bool:
    try:
        os.kill(int(pid_file.read_text().strip()), 0)
    except (OSError, ValueError):
        return False
    return True


def _check_port(ip: str, port: int, key: str, settings: Settings) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((ip, port))
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise SetupError(f"cannot listen on {ip}:{port} ({exc.strerror})") from None
            raise SetupError(
                f"port {port} on {ip} is already in use (is another hub running?): stop it, "
                f"or set '{key}' in {settings.source}"
            ) from None


def _private_ancestor(path: Path) -> Path | None:
    """The first folder above ``path`` that other accounts cannot pass through, if any."""
    for folder in [*reversed(path.parents)]:
        if folder.exists() and not os.stat(folder).st_mode & 0o001:
            return folder
    return None


def preflight(settings: Settings) -> None:
    """Check what the hub needs on this machine before anything starts."""
    if isolated(settings.spawner.isolation):
        for needed in (Path(sys.executable).resolve(), Path(sys.prefix), settings.state_dir):
            private = _private_ancestor(needed / "x")
            if private is not None:
                raise SetupError(
                    f"users' servers run under their own accounts, which cannot pass through "
                    f"{private} to reach {needed}: build the environment with a Python outside "
                    f"private folders (make clean-venv hub uses /usr/bin/python3), or set "
                    f"spawner.isolation = \"none\" in {settings.source}"
                )
    if shutil.which("node") is None:
        raise SetupError(
            "Node.js ('node') is not installed, and the hub's proxy needs it: "
            "install it (apt-get install nodejs), then run 'make hub' again"
        )
    proxy = Path(proxy_command(settings))
    if not proxy.exists():
        raise SetupError(
            f"configurable-http-proxy is missing ({proxy}): run 'make hub', which installs it "
            "with npm, or set 'proxy.command' in " + str(settings.source)
        )
    hub = settings.hub
    # a proxy left running by the previous hub is ours: the hub replaces it itself
    if not _pid_alive(settings.state_dir / "proxy.pid"):
        _check_port(hub.ip, hub.port, "hub.port", settings)
        _check_port("127.0.0.1", hub.proxy_api_port, "hub.proxy_api_port", settings)
    if not _pid_alive(settings.state_dir / "jupyterhub.pid"):
        _check_port("127.0.0.1", hub.hub_port, "hub.hub_port", settings)
    else:
        raise SetupError(
            f"a hub from this state directory is already running (pid file "
            f"{settings.state_dir / 'jupyterhub.pid'}): stop it first"
        )


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
    read_only(shared)
    return secrets, first_run


def install_demo_data(shared: Path) -> None:
    """Generate the seeded demo datasets into the shared folder (once; kept afterwards)."""
    os.chmod(shared, 0o755)
    for folder, dirs, files in os.walk(shared):
        for name in dirs:
            os.chmod(os.path.join(folder, name), 0o755)
        for name in files:
            os.chmod(os.path.join(folder, name), 0o644)
    print(f"ECHOES Lab: generating the demo datasets into {shared} (first start only)", flush=True)
    done = subprocess.run([sys.executable, "-m", "echoes_lab.demo", "--out", str(shared)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise SetupError(f"could not generate the demo datasets into {shared}: {last}")


def read_only(folder: Path) -> None:
    """Make a folder tree read-only for everyone (its owner may still lift that)."""
    for path, dirs, files in os.walk(folder):
        for name in files:
            os.chmod(os.path.join(path, name), 0o444)
        os.chmod(path, 0o555)


def login_message(settings: Settings, secrets: Secrets, first_run: bool) -> str:
    url = f"http://{settings.hub.ip}:{settings.hub.port}"
    store = settings.state_dir / "secrets.json"
    if not first_run:
        return f"ECHOES Lab: starting at {url} (credentials are in {store}, mode 0600)"
    admins = ", ".join(settings.auth.admins) or "(none)"
    return "\n".join([
        f"ECHOES Lab: first start. Open {url} and sign in:",
        f"  admin ({admins}): password {secrets.admin_password}",
        f"  everyone else: any user name, password {secrets.user_password}",
        f"These are shown this once; they are kept in {store} (mode 0600).",
    ])


def hub_command(settings_file: Path) -> tuple[list[str], dict[str, str]]:
    exe = Path(sys.executable).with_name("jupyterhub")
    env = {**os.environ, "ECHOES_SETTINGS": str(settings_file)}
    env["PATH"] = os.pathsep.join([str(exe.parent), env.get("PATH", os.defpath)])
    return [str(exe), "-f", str(HUB_CONFIG)], env


def run_hub(settings_file: str | Path | None = None) -> None:
    """Check, prepare and start the hub in this process (``echoes-lab hub``)."""
    settings_file = Path(settings_file or DEFAULT_SETTINGS).resolve()
    settings = load_settings(settings_file)
    preflight(settings)
    secrets, first_run = prepare(settings)
    print(login_message(settings, secrets, first_run), flush=True)
    argv, env = hub_command(settings_file)
    os.chdir(settings.state_dir)
    # the state directory is 0711 so users pass through to their homes: every file the hub
    # and its services create there (the databases, their journals) must be theirs alone;
    # what users need (homes, kernel spec, shared data, gateway folders) gets explicit modes
    os.umask(0o077)
    os.execve(argv[0], argv, env)
