"""How the hub runs the reports service: its entry in ``echoes_lab.hub.config.FEATURES``."""

from __future__ import annotations

import os
import pwd

from echoes_lab.errors import EchoesError
from echoes_lab.hub.accounts import isolated
from echoes_lab.hub.services import Feature, access_scope, managed_service, service_command
from echoes_lab.hub.settings import Settings

SERVICE = "reports"


def _service(s: Settings, secrets) -> dict:
    """The managed service; it learns everything else (homes, the shared folder, the kernel)
    from the same settings file as the hub, given on its command line.

    Under root it runs as ``reports.service_user``, not as root: it reads no user's file (runs
    and reads happen in the owners' named servers, through the hub's spawner).
    """
    extra = {"user": s.reports.service_user} if isolated(s.spawner.isolation) else {}
    return managed_service(
        SERVICE, s, service_command("echoes_lab.hub.services.reports", s), port=s.reports.port,
        info={"description": "Scheduled notebook runs with their provenance"}, **extra)


def _roles(s: Settings) -> list[dict]:
    # names and admin flags of its users; start, stop and use their named runs server
    # (JupyterHub scopes cannot be limited to one server name across users)
    return [{"name": SERVICE, "scopes": ["read:users:name", "servers", "access:servers"],
             "services": [SERVICE]}]


def prepare_state(s: Settings) -> None:
    """``<state>/reports/``: the service's own folder (database, lock), owned by its account.

    Done by the hub (root) when it loads its config. The state directory is the hub's, not a
    user's; still, nothing here follows a link (O_NOFOLLOW, lchown).
    """
    folder = s.state_dir / "reports"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    old = s.state_dir / "reports.sqlite"  # before the service had a folder of its own
    if old.is_file() and not old.is_symlink() and not (folder / "reports.sqlite").exists():
        os.rename(old, folder / "reports.sqlite")
    if not isolated(s.spawner.isolation):
        return
    try:
        account = pwd.getpwnam(s.reports.service_user)
    except KeyError:
        msg = (f"reports.service_user: no account '{s.reports.service_user}' on this machine; "
               "create it (useradd --system NAME) or name another unprivileged account")
        raise EchoesError(msg) from None
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        os.fchown(fd, account.pw_uid, account.pw_gid)
        for name in os.listdir(fd):
            os.chown(name, account.pw_uid, account.pw_gid, dir_fd=fd, follow_symlinks=False)
    finally:
        os.close(fd)


def _configure_hub(c, s: Settings) -> None:
    # runs execute in each owner's named server (reports.server), started through the spawner
    c.JupyterHub.allow_named_servers = True
    if "named_server_limit_per_user" not in c.JupyterHub:
        c.JupyterHub.named_server_limit_per_user = 3
    prepare_state(s)


FEATURE = Feature(SERVICE, enabled=lambda s: s.reports.enabled, service=_service, roles=_roles,
                  user_scopes=lambda s: [access_scope(SERVICE)], configure_hub=_configure_hub)
