"""Map a validated settings file onto JupyterHub's traitlets configuration.

``hub_config/jupyterhub_config.py`` calls :func:`configure` and nothing else, so every
deployment decision is data in the profile's settings file and every line here is a plain
translation of one setting (or one fixed choice, commented with its reason).
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

from echoes_lab.hub.secrets import ensure_secrets
from echoes_lab.hub.services import Feature
from echoes_lab.hub.services.host import share
from echoes_lab.hub.settings import Settings, load_settings

#: Single-user server extensions a heritage user never sees; skipping them makes spawns faster.
#: Language-server support needs a language server installed, which we do not ship.
DEFAULT_DISABLED_EXTENSIONS = ("jupyter_lsp",)
#: Server extensions replaced by a lighter loader of our own: the Dask panel's routes without
#: importing dask and distributed into every user's server (``echoes_lab.hub.dask_panel``).
REPLACED_EXTENSIONS = {"dask_labextension": "echoes_lab.hub.dask_panel"}


def proxy_command(settings: Settings) -> str:
    """The configurable-http-proxy executable: from settings, else the project-local install."""
    if settings.proxy.command:
        return str(settings.path(settings.proxy.command))
    return str(Path(sys.prefix) / "proxy" / "node_modules" / ".bin" / "configurable-http-proxy")


def kernel_dir(settings: Settings) -> Path:
    """Where the deployment's ECHOES kernel spec (with its ``ECHOES_DATA``) is installed."""
    return settings.state_dir / "jupyter"


def environment_labextensions() -> list[str]:
    """The folders of JupyterLab extensions installed with the environment or the system.

    Not a user's own (``~/.local/share/jupyter/labextensions``, first in Jupyter's default
    search path, ``jupyter_core.paths.jupyter_path``): a lab someone else opens through a share
    runs in that visitor's browser the JavaScript its owner dropped there. Defence in depth, not
    isolation: the owner still runs their own server process (docs/operator/isolation.md).
    """
    from jupyter_core.paths import ENV_JUPYTER_PATH, SYSTEM_JUPYTER_PATH

    return [str(Path(p) / "labextensions") for p in (*ENV_JUPYTER_PATH, *SYSTEM_JUPYTER_PATH)]


def singleuser_args(settings: Settings) -> list[str]:
    disabled = [*DEFAULT_DISABLED_EXTENSIONS, *settings.spawner.disabled_extensions]
    enabled = {e: False for e in [*disabled, *REPLACED_EXTENSIONS]}
    enabled.update({e: True for e in REPLACED_EXTENSIONS.values()})
    # read-only shares enforced, the lab's Share page (echoes_lab.hub.services.projects.serverext)
    enabled["echoes_lab.hub.services.projects.serverext"] = True
    args = [f"--ServerApp.jpserver_extensions={enabled!r}"]
    args += [
        "--MappingKernelManager.default_kernel_name=echoes",
        # no calls to the internet from the lab: the machines here have none, and asking costs time
        "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        # collaboration: a revoked or expired share stops working within this many seconds
        # (JupyterHub's default is 300); the live-editing history in each user's own data folder
        f"--HubOAuth.cache_max_age={settings.services.auth_cache_age}",
        "--SQLiteYStore.db_path=.local/share/jupyter/echoes_ystore.db",
    ]
    # the lab's JavaScript only from the environment (not the owner's data folder); one flag
    # per folder: LabApp is not the server's own class, so a list literal would be one string
    args += [f"--LabApp.labextensions_path={p}" for p in environment_labextensions()]
    return args + list(settings.spawner.server_args)


def subdomain(name: str, domain: str, kind: str) -> str:
    """Where JupyterHub puts a user or a service when ``[hub] subdomain_host`` is set.

    One origin per trust level: each user's server on a subdomain of its own (JupyterHub's
    ``idna`` rule: ``alice.echoes.example.org``), since a user controls what their server
    serves; the hub's services, which are ours like the hub, on the hub's own origin, where
    the home page, the labs and the kernels' clients already find them (``/services/NAME/``).
    """
    from jupyterhub.utils import subdomain_hook_idna

    return domain if kind == "service" else subdomain_hook_idna(name, domain, kind)


def _culler_service(s: Settings, secrets) -> dict:
    # jupyterhub-idle-culler is JupyterHub's own service, not one of ours on the scaffold; where
    # our services share a host process, share() runs it there (services/culler.py)
    return {"name": "idle-culler",
            "command": [sys.executable, "-m", "jupyterhub_idle_culler",
                        f"--timeout={s.culler.timeout}", f"--cull-every={s.culler.every}"]}


#: stops servers idle for ``[culler] timeout`` seconds
CULLER = Feature(
    "idle-culler", enabled=lambda s: s.culler.enabled, service=_culler_service,
    roles=lambda s: [{"name": "idle-culler", "services": ["idle-culler"], "scopes": [
        "list:users", "read:users:activity", "read:servers", "delete:servers"]}])

#: the echoes-lab command line on this machine (workshops, tests) talks to the REST API with
#: this service's token; no process of its own
ECHOES_CLI = Feature(
    "echoes-cli", service=lambda s, secrets: {"name": "echoes-cli"},
    roles=lambda s: [{"name": "echoes-cli", "services": ["echoes-cli"], "scopes": [
        "admin:users", "admin:groups", "admin:servers", "access:servers", "tokens", "read:hub",
        "read:roles", "list:services", "read:services", "shares"]}])

#: Every hub feature, one entry each, applied by :func:`configure` in this order: a
#: :class:`~echoes_lab.hub.services.base.Feature`, or the module exporting one as ``FEATURE``
#: (imported only when the hub is configured). Adding a service is adding one line here.
FEATURES: list[Feature | str] = [
    CULLER,
    ECHOES_CLI,
    "echoes_lab.hub.services.gateway",          # Dask Gateway, /services/dask-gateway/
    "echoes_lab.hub.services.workshops.auth",   # seats, trainers' roles, trainers' page
    "echoes_lab.hub.services.reports.config",   # scheduled notebook runs, /services/reports/
    "echoes_lab.hub.services.commons",          # the shared commons, /services/commons/
    "echoes_lab.hub.services.knowledge",        # SPARQL knowledge base, /services/knowledge/
    "echoes_lab.hub.services.projects",         # collaboration projects, /services/projects/
    "echoes_lab.hub.services.metrics",          # Prometheus, usage dashboard, /services/metrics/
    "echoes_lab.hub.docs",                      # the documentation, /hub/docs/
    "echoes_lab.hub.face",                      # templates, logo, home page; Voilà, usage meter
    "echoes_lab.hub.voila_assets",              # Voilà apps with no request for the internet
]


def features() -> list[Feature]:
    """The :data:`FEATURES` table with every module entry imported."""
    out = []
    for entry in FEATURES:
        if isinstance(entry, Feature):
            out.append(entry)
            continue
        out.append(importlib.import_module(entry).FEATURE)
    return out


def _grant_users(roles: list[dict], scopes: list[str]) -> None:
    """Add ``scopes`` to JupyterHub's ``user`` role (every user), defining it if needed.

    JupyterHub's default ``user`` role is ``["self"]``, which reaches no service.
    """
    user_role = next((r for r in roles if r["name"] == "user"), None)
    if user_role is None:
        roles.append(user_role := {"name": "user", "scopes": ["self"]})
    user_role["scopes"] = [*user_role["scopes"], *scopes]


def configure(c, settings_file: str | Path) -> Settings:
    """Fill the JupyterHub config object ``c`` from a profile's settings file."""
    s = load_settings(settings_file)
    state = s.state_dir
    table = features()
    # a token for every feature's service, in the secrets file (kept across restarts)
    secrets, _ = ensure_secrets(state, tuple(f.name for f in table))
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
    if hub.subdomain_host:  # each user's server on its own origin (docs/operator/isolation.md)
        c.JupyterHub.subdomain_host = hub.subdomain_host
        c.JupyterHub.subdomain_hook = subdomain

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
    if auth.authenticator:  # the site's identity provider (workshops compose seats with it)
        from echoes_lab.hub.services.workshops.auth import load_authenticator

        site = load_authenticator(auth.authenticator, s.source)
        c.JupyterHub.authenticator_class = site
        c[site.__name__].update(auth.options)

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
    # Stopping a server: JupyterHub sends SIGINT, waits interrupt_timeout (10 s), then SIGTERM.
    # A jupyter-server answers SIGINT only by asking "Shutdown this Jupyter server?" on its
    # stdin and resuming after 5 s, so those 10 s are always lost (and a 30-seat room's close
    # waits for them); SIGTERM stops it cleanly in about a second.
    c.LocalProcessSpawner.interrupt_timeout = 1
    c.Spawner.args = singleuser_args(s)
    # what nbgitpuller links may clone (echoes_lab.hub.services.projects.links)
    c.Spawner.environment.update({"ECHOES_GIT_PULL_SCHEMES": ",".join(sp.git_pull_schemes)})
    if sp.map_tiles:  # echoes_lab.sites maps: the deployment's own tile server
        c.Spawner.environment.update({"ECHOES_MAP_TILES": sp.map_tiles})
    if sp.mem_limit:
        c.Spawner.mem_limit = sp.mem_limit

    services, roles, user_scopes = [], [], []
    for feature in table:
        if not feature.enabled(s):
            continue
        service = feature.service(s, secrets)
        if service is not None:
            token = secrets.api_tokens.get(service["name"])
            if token:  # else the hub makes one at each start
                service.setdefault("api_token", token)
            services.append(service)
        roles += feature.roles(s)
        user_scopes += feature.user_scopes(s)
        c.Spawner.environment.update(feature.environment(s))
        feature.configure_hub(c, s)
    if user_scopes:
        _grant_users(roles, user_scopes)
    # our services that may share a process run in one (the hub side's memory, issue 36)
    c.JupyterHub.services = share(services)
    c.JupyterHub.load_roles = roles
    if s.profile == "slurm":  # servers as Slurm jobs (hub_config/slurm.toml)
        from echoes_lab.hub.slurm import configure_slurm

        configure_slurm(c, s)
    return s
