"""Map a validated settings file onto JupyterHub's traitlets configuration.

``hub_config/jupyterhub_config.py`` calls :func:`configure` and nothing else, so every
deployment decision is data in the profile's settings file and every line here is a plain
translation of one setting (or one fixed choice, commented with its reason).
"""

from __future__ import annotations

import sys
from pathlib import Path

from echoes_lab.hub.secrets import ensure_secrets
from echoes_lab.hub.settings import Settings, load_settings

#: Single-user server extensions a heritage user never sees; skipping them makes spawns faster.
#: Language-server support needs a language server installed, which we do not ship.
DEFAULT_DISABLED_EXTENSIONS = ("jupyter_lsp",)


def proxy_command(settings: Settings) -> str:
    """The configurable-http-proxy executable: from settings, else the project-local install."""
    if settings.proxy.command:
        return str(settings.path(settings.proxy.command))
    return str(Path(sys.prefix) / "proxy" / "node_modules" / ".bin" / "configurable-http-proxy")


def kernel_dir(settings: Settings) -> Path:
    """Where the deployment's ECHOES kernel spec (with its ``ECHOES_DATA``) is installed."""
    return settings.state_dir / "jupyter"


def singleuser_args(settings: Settings) -> list[str]:
    disabled = [*DEFAULT_DISABLED_EXTENSIONS, *settings.spawner.disabled_extensions]
    args = [f"--ServerApp.jpserver_extensions={{{', '.join(repr(e) + ': False' for e in disabled)}}}"]
    args += [
        "--MappingKernelManager.default_kernel_name=echoes",
        # no calls to the internet from the lab: the machines here have none, and asking costs time
        "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]
    return args + list(settings.spawner.server_args)


def grant_users(roles: list[dict], scope: str) -> None:
    """Add ``scope`` to JupyterHub's ``user`` role (every user), defining the role if needed.

    JupyterHub's default ``user`` role is ``["self"]``, which reaches no service; each service
    that users call (the gateway, reports) adds its ``access:services!service=…`` scope here.
    """
    user_role = next((r for r in roles if r["name"] == "user"), None)
    if user_role is None:
        roles.append(user_role := {"name": "user", "scopes": ["self"]})
    user_role["scopes"] = [*user_role["scopes"], scope]


def configure(c, settings_file: str | Path) -> Settings:
    """Fill the JupyterHub config object ``c`` from a profile's settings file."""
    s = load_settings(settings_file)
    state = s.state_dir
    secrets, _ = ensure_secrets(state)
    hub = s.hub

    c.JupyterHub.ip = hub.ip
    c.JupyterHub.port = hub.port
    c.JupyterHub.hub_ip = "127.0.0.1"
    c.JupyterHub.hub_port = hub.hub_port
    c.JupyterHub.log_level = hub.log_level
    c.JupyterHub.db_url = f"sqlite:///{state / 'jupyterhub.sqlite'}"
    c.JupyterHub.cookie_secret_file = str(secrets.cookie_secret_file)
    c.JupyterHub.pid_file = str(state / "jupyterhub.pid")
    # a hub restart must keep users' running servers (nothing lost)
    c.JupyterHub.cleanup_servers = False

    c.JupyterHub.proxy_class = "configurable-http-proxy"
    c.ConfigurableHTTPProxy.command = [proxy_command(s)]
    c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{hub.proxy_api_port}"
    c.ConfigurableHTTPProxy.auth_token = secrets.proxy_auth_token
    c.ConfigurableHTTPProxy.pid_file = str(state / "proxy.pid")
    c.ConfigurableHTTPProxy.log_level = "warn"

    auth = s.auth
    c.JupyterHub.authenticator_class = "shared-password"
    c.SharedPasswordAuthenticator.admin_password = secrets.admin_password
    c.SharedPasswordAuthenticator.user_password = secrets.user_password
    c.Authenticator.admin_users = set(auth.admins)
    c.Authenticator.allow_all = auth.allow_all
    c.Authenticator.allowed_users = set(auth.allowed_users)
    c.Authenticator.allow_existing_users = True

    sp = s.spawner
    c.JupyterHub.spawner_class = "echoes_lab.hub.spawner.EchoesSpawner"
    c.EchoesSpawner.homes_root = str(s.homes_dir)
    c.EchoesSpawner.shared_data = str(s.shared_dir)
    c.EchoesSpawner.jupyter_path = str(kernel_dir(s))
    c.EchoesSpawner.isolation = sp.isolation
    c.EchoesSpawner.examples_dir = str(s.path(sp.examples)) if sp.examples else ""
    c.Spawner.cmd = [sys.executable, "-m", "echoes_lab.hub.singleuser"]
    c.Spawner.default_url = sp.default_url
    c.Spawner.start_timeout = sp.start_timeout
    c.Spawner.http_timeout = sp.http_timeout
    c.Spawner.args = singleuser_args(s)
    if sp.mem_limit:
        c.Spawner.mem_limit = sp.mem_limit

    services, roles = [], []
    if s.culler.enabled:
        services.append({
            "name": "idle-culler",
            "api_token": secrets.api_tokens["idle-culler"],
            "command": [sys.executable, "-m", "jupyterhub_idle_culler",
                        f"--timeout={s.culler.timeout}", f"--cull-every={s.culler.every}"],
        })
        roles.append({
            "name": "idle-culler",
            "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"],
            "services": ["idle-culler"],
        })
    # the echoes-lab command line on this machine (workshops, tests) talks to the REST API
    services.append({"name": "echoes-cli", "api_token": secrets.api_tokens["echoes-cli"]})
    roles.append({
        "name": "echoes-cli",
        "scopes": ["admin:users", "admin:groups", "admin:servers", "access:servers", "tokens",
                   "read:hub", "read:roles", "list:services", "read:services", "shares"],
        "services": ["echoes-cli"],
    })
    # -- Dask Gateway (echoes_lab.hub.services.gateway): users' Dask clusters, at /services/dask-gateway/
    if s.gateway.enabled:
        from echoes_lab.hub.services import gateway as dg

        gateway, gateway_env = dg.hub_service(s, secrets.api_tokens[dg.SERVICE])
        services.append(gateway)
        grant_users(roles, dg.ACCESS)
        c.Spawner.environment.update(gateway_env)
        # users' server tokens may call the gateway (it checks this scope); the first two are
        # JupyterHub's default 'server' role
        token_scopes = (c.Spawner.server_token_scopes if "server_token_scopes" in c.Spawner
                        else ["users:activity!user", "access:servers!server"])
        c.Spawner.server_token_scopes = [*token_scopes, dg.ACCESS]
        # a user's clusters end with their server (the gateway's idle timeout is the fallback)
        c.Spawner.post_stop_hook = dg.stop_clusters_hook(gateway["url"] + dg.PREFIX)
    # -- workshops (echoes_lab.hub.services.workshops.auth): seat passwords, trainers' roles, announcements
    if s.workshops.enabled:
        from echoes_lab.hub.services.workshops.auth import configure_hub as configure_workshops

        configure_workshops(c, s, services, roles, secrets.api_tokens["workshops"])
    # -- reports (echoes_lab.hub.services.reports): scheduled notebook runs, at /services/reports/
    if s.reports.enabled:
        from echoes_lab.hub.services.reports.config import hub_service as reports_service

        reports, reports_role = reports_service(s, settings_file, secrets.api_tokens["reports"])
        services.append(reports)
        roles.append(reports_role)
        grant_users(roles, f"access:services!service={reports['name']}")
    c.JupyterHub.services = services
    c.JupyterHub.load_roles = roles
    return s
