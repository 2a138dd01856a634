"""``echoes-lab hub``: check the machine, prepare the state directory, start the hub and
watch it."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from echoes_lab.errors import SetupError
from echoes_lab.hub import HUB_CONFIG_DIR
from echoes_lab.hub.accounts import isolated
from echoes_lab.hub.config import kernel_dir, proxy_command
from echoes_lab.hub.launch.data import install_demo_data, install_real_data, read_only
from echoes_lab.hub.launch.kernelspec import install_kernel
from echoes_lab.hub.launch.messages import announce, say
from echoes_lab.hub.launch.ports import check_ports
from echoes_lab.hub.launch.processes import clear_stale
from echoes_lab.hub.launch.supervision import become_supervisor, start_hub, supervise
from echoes_lab.hub.secrets import Secrets, ensure_secrets, read_secrets
from echoes_lab.hub.settings import Settings, load_settings
from echoes_lab.hub.voila_assets import install_voila_template

DEFAULT_SETTINGS = HUB_CONFIG_DIR / "local.toml"


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
    install_voila_template(kernel_dir(settings))  # Voilà apps with no CDN (hub.voila_assets)
    shared = settings.shared_dir
    shared.mkdir(parents=True, exist_ok=True)
    if settings.data.install_demo and not (shared / "catalog.yaml").exists():
        install_demo_data(shared)
    install_real_data(settings)
    read_only(shared)
    return secrets, first_run


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
    proc = start_hub(settings, settings_file, log_file)
    become_supervisor(proc, settings, settings_file)  # returns only if it could not
    return supervise(proc, settings, secrets)
