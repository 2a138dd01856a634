"""Deployment settings: one TOML file per profile, validated before the hub starts.

A settings file is data. ``load_settings`` reads it and checks every key and type; an unknown
key or a wrong type stops everything with a :class:`~echoes_lab.errors.SettingsError` that
names the file and the key. Relative paths in the file are relative to the file itself.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_core import PydanticCustomError

from echoes_lab.errors import SettingsError

#: a memory limit as JupyterHub's ``mem_limit`` takes it: a number and K, M, G or T
MEM_LIMIT_PATTERN = r"^\d+(\.\d+)?[KMGT]$"


class _Section(BaseModel):
    # strict: "8000" is not a port; extra="forbid": a misspelt key is an error, not ignored
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class HubSettings(_Section):
    ip: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535, description="public port of the proxy")
    proxy_api_port: int = Field(8001, ge=1, le=65535)
    hub_port: int = Field(8081, ge=1, le=65535, description="the hub's own (internal) port")
    state_dir: str = Field("../.state", description="database, secrets, homes, shared data")
    log_level: Literal["DEBUG", "INFO", "WARN", "ERROR"] = "INFO"
    subdomain_host: str = Field(
        "", description="the hub's public address, e.g. \"https://echoes.example.org\": each "
                        "user's server then has its own origin (https://alice.echoes.example.org), "
                        "so one user's pages cannot act on another's lab; needs a wildcard DNS "
                        "entry and certificate. The production setting; \"\" = every lab on the "
                        "hub's origin (one machine, docs/operator/isolation.md)")

    @field_validator("subdomain_host")
    @classmethod
    def _origin(cls, value: str) -> str:
        # JupyterHub takes the origin as given and derives users' hosts from it: a path or an
        # upper-case host would make addresses the proxy never routes
        if value and not re.fullmatch(r"https?://[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[0-9]{1,5})?",
                                      value):
            kind, msg = "origin", ('an origin such as "https://echoes.example.org" '
                                   "(lower-case host, optional port, no path)")
            raise PydanticCustomError(kind, msg)
        return value


class AuthSettings(_Section):
    admins: list[str] = ["admin"]
    allow_all: bool = Field(True, description="anyone with the user password may sign in")
    allowed_users: list[str] = []
    authenticator: str = Field(
        "", description="the site's identity provider: a JupyterHub authenticator's name "
                        "(e.g. \"generic-oauth\", \"ldapauthenticator\") or class; \"\" = the "
                        "shared password. Workshop seats still sign in with their own passwords")
    options: dict[str, str | int | float | bool | list[str]] = Field(
        {}, description="the authenticator's options (its traits, e.g. client_id); secrets "
                        "from the environment, never here")


class SpawnerSettings(_Section):
    default_url: str = "/lab"
    start_timeout: int = Field(120, gt=0)
    http_timeout: int = Field(60, gt=0)
    isolation: Literal["auto", "system-users", "none"] = "auto"
    mem_limit: str | None = Field(None, pattern=MEM_LIMIT_PATTERN,
                                  description="each server's memory, e.g. \"2G\", \"512M\" "
                                              "(suffix K, M, G or T); on Slurm its job's --mem")
    examples: str = Field("../notebooks", description="notebooks copied to ~/examples; \"\" = none")
    disabled_extensions: list[str] = []
    server_args: list[str] = []
    map_tiles: str = Field("", description="tile server URL template for maps in labs "
                           "(echoes_lab.sites), e.g. https://tiles.example/{z}/{x}/{y}.png; "
                           "\"\" = none: maps draw the base map shipped as data, offline")
    git_pull_schemes: list[Literal["https", "http", "ssh", "git", "file"]] = Field(
        ["https"], description="sources nbgitpuller links may clone (git:// and file:// are "
                               "unauthenticated or read this machine's disk)")


class CullerSettings(_Section):
    enabled: bool = True
    timeout: int = Field(3600, gt=0, description="seconds of inactivity before a server stops")
    every: int = Field(300, gt=0, description="seconds between checks")


class ProxySettings(_Section):
    command: str = Field("", description="configurable-http-proxy; empty = the project's own")


class DataSettings(_Section):
    shared_dir: str = Field("shared", description="read-only shared datasets, under state_dir")
    install_demo: bool = True
    mirror: str = Field("", description="folder (relative to this file) or URL holding "
                        "catalogued datasets, tried before their urls (else $ECHOES_MIRROR)")
    fetch: list[str] = Field(default_factory=lambda: ["tate-collection"],
                             description="real datasets put into the shared folder at start")


class GatewaySettings(_Section):
    """Dask Gateway, a managed service of the hub (see
    ``echoes_lab.hub.services.gateway.config``)."""

    enabled: bool = True
    port: int = Field(8010, ge=1, le=65535,
                      description="web API, behind the hub at /services/dask-gateway/")
    scheduler_port: int = Field(8011, ge=1, le=65535,
                                description="users' clients reach their schedulers here")
    api_port: int = Field(8012, ge=1, le=65535, description="the gateway's private API")
    clusters_per_user: int = Field(2, ge=1)
    max_workers: int = Field(4, ge=1, description="workers per cluster")
    worker_cores: int = Field(1, ge=1, description="default cores per worker")
    max_worker_cores: int = Field(2, ge=1)
    worker_memory: float = Field(2.0, gt=0, description="default GiB per worker")
    max_worker_memory: float = Field(4.0, gt=0, description="GiB")
    idle_timeout: int = Field(1800, gt=0, description="seconds before an idle cluster stops")
    fork_server_idle: int = Field(
        600, ge=0, description="seconds the fork server of schedulers and workers stays with no "
        "cluster running (started again by the next cluster; 0 = it ends at once)")
    log_level: Literal["DEBUG", "INFO", "WARN", "ERROR"] = "INFO"


class WorkshopsSettings(_Section):
    """Trainers' workshops (``echoes-lab workshop``, see ``echoes_lab.hub.services.workshops``)."""

    enabled: bool = Field(True, description="seat passwords, trainer roles, announcements")
    mem_limit: str | None = Field(None, pattern=MEM_LIMIT_PATTERN,
                                  description="default per-seat memory limit, e.g. \"2G\"")
    auth_refresh_age: int = Field(60, gt=0, description="seconds before a login is re-checked")
    port: int = Field(0, ge=0, le=65535,
                      description="the trainers' page service; 0 = any free port")


class ReportsSettings(_Section):
    """The reports service: scheduled notebook runs (see ``echoes_lab.hub.services.reports``)."""

    enabled: bool = True
    port: int = Field(0, ge=0, le=65535, description="loopback port; 0 = a free port at each start")
    max_concurrent: int = Field(2, ge=1, description="runs at a time, all users together")
    retries: int = Field(2, ge=0, description="new attempts after a failed run")
    retry_backoff: int = Field(60, ge=0, description="seconds before the first retry, doubling")
    run_timeout: int = Field(3600, gt=0, description="seconds a run may take before it is stopped")
    missed: Literal["run-once", "skip"] = Field("run-once", description="runs missed while down")
    outputs: str = Field("reports", description="folder in the owner's home for run outputs")
    min_interval: int = Field(300, ge=1, description="seconds: the shortest cron interval accepted")
    max_parameter_bytes: int = Field(16384, gt=0, description="a parameter value's size, as JSON")
    server: str = Field("reports", pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$",
                        description="the owner's named server the runs execute in")
    server_linger: int = Field(20, ge=0, description="seconds an idle runs server is kept")
    service_user: str = Field("nobody", description="account the service runs as under root")


class ProjectsSettings(_Section):
    """Team projects and shared labs (see ``echoes_lab.hub.services.projects``)."""

    enabled: bool = Field(True, description="project folders, the projects page, share expiry")
    folder: str = Field("projects", description="the projects' folders, under state_dir")
    port: int = Field(0, ge=0, le=65535, description="the projects page; 0 = any free port")
    expiry_check_every: int = Field(30, gt=0,
                                    description="seconds between checks of shares' expiry")


class CommonsImport(_Section):
    """``[[commons.imports]]``: another W3C Web Annotation Protocol container whose public
    annotations the commons copies (``echoes_lab.hub.services.commons.imports``)."""

    url: str = Field(description="the container's IRI (an AnnotationCollection, paged)")
    every: int = Field(3600, ge=1, description="seconds between two imports from it")
    private_network: bool = Field(
        False, description="allow a loopback or private address (refused by default: the "
                           "import runs inside the hub's network)")


class CommonsSettings(_Section):
    """The digital commons: W3C Web Annotations (see ``echoes_lab.hub.services.commons``)."""

    enabled: bool = True
    port: int = Field(0, ge=0, le=65535, description="loopback port; 0 = a free port at each start")
    db_url: str = Field("",
                        description="SQLAlchemy URL; empty = SQLite commons.sqlite in state_dir")
    licence: str = Field("https://creativecommons.org/licenses/by/4.0/",
                         description="licence IRI of contributions that name none")
    page_size: int = Field(20, ge=1, le=1000, description="annotations per AnnotationPage")
    public_url: str = Field("", description="the hub's public address in annotation IRIs; "
                                            "empty = http://hub.ip:hub.port")
    imports: list[CommonsImport] = Field(
        [], description="other annotation servers whose public annotations are copied, each "
                        "{url, every, private_network}")
    moderators: dict[str, list[str]] = Field(
        {}, description="hub group -> people who moderate that group's annotations (the "
                        "hub role commons-moderators-GROUP, scope custom:commons-moderate)")


class KnowledgeSettings(_Section):
    """The knowledge base's SPARQL service (see ``echoes_lab.hub.services.knowledge``)."""

    enabled: bool = True
    port: int = Field(0, ge=0, le=65535, description="loopback port; 0 = a free port at each start")
    store: str = Field("knowledge", description="the pyoxigraph store's folder, under state_dir")
    query_timeout: float = Field(20.0, gt=0, le=3600,
                                 description="seconds a query may run before it is stopped")
    max_result_bytes: int = Field(20_000_000, gt=0,
                                  description="bytes of one serialised answer; larger: refused")
    max_concurrent: int = Field(4, ge=1, le=64,
                                description="queries running at once, all users together")
    query_memory: int = Field(2048, ge=512,
                              description="MB one query's process may allocate; above: stopped")


class MetricsSettings(_Section):
    """``[metrics]``: a Prometheus server scraping the hub and every service, its dashboard."""

    enabled: bool = Field(True, description="run Prometheus and the usage dashboard")
    port: int = Field(0, ge=0, le=65535, description="the dashboard; 0 = a free port at each start")
    prometheus: str = Field("/usr/bin/prometheus", description="the Prometheus server binary")
    prometheus_port: int = Field(0, ge=0, le=65535,
                                 description="Prometheus's loopback port; 0 = a free port")
    scrape_interval: int = Field(15, ge=1, le=3600, description="seconds between scrapes")
    retention_days: int = Field(400, ge=1, description="days of samples Prometheus keeps")
    min_group: int = Field(5, ge=1, description="figures about fewer people are not shown")


class SlurmSettings(_Section):
    """``[slurm]``: the ``slurm`` profile's users' servers as Slurm jobs
    (``echoes_lab.hub.slurm``); ignored by the other profiles."""

    conf: str = Field("", description="the cluster's slurm.conf; \"\" = Slurm's own default "
                                      "(/etc/slurm/slurm.conf or configless)")
    hub_ip: str = Field("", description="the address the hub's API listens on, which the "
                                        "compute nodes reach (not 127.0.0.1)")
    shared_fs: str = Field("", description="the file system every node mounts at the same "
                                           "path; hub.state_dir (homes, shared datasets, "
                                           "projects) must lie in it")
    partitions: list[str] = Field(["batch"], min_length=1,
                                  description="partitions users may choose; the first is the "
                                              "default")
    cores: int = Field(1, ge=1, description="CPUs of a server's job by default")
    max_cores: int = Field(4, ge=1, description="CPUs a user may ask for in the spawn form")
    memory: float = Field(2.0, gt=0, description="GiB of a server's job by default")
    max_memory: float = Field(8.0, gt=0, description="GiB a user may ask for")
    hours: int = Field(8, ge=1, description="a server job's time limit by default")
    max_hours: int = Field(24, ge=1, description="hours a user may ask for")
    dask_walltime: str = Field("01:00:00", pattern=r"^\d{1,3}:\d{2}:\d{2}$",
                               description="time limit of each Dask worker job (H:MM:SS)")


class ServicesSettings(_Section):
    """What every service of the hub shares (``echoes_lab.hub.services.base``)."""

    max_body_size: int = Field(1048576, gt=0, description="bytes; larger request bodies get 413")
    auth_cache_age: int = Field(30, ge=0, description="seconds a service trusts a checked token")
    hub_check_every: int = Field(5, gt=0, description="seconds between checks the hub is there")


class Settings(_Section):
    profile: str
    hub: HubSettings = HubSettings()
    auth: AuthSettings = AuthSettings()
    spawner: SpawnerSettings = SpawnerSettings()
    culler: CullerSettings = CullerSettings()
    proxy: ProxySettings = ProxySettings()
    data: DataSettings = DataSettings()
    gateway: GatewaySettings = GatewaySettings()
    workshops: WorkshopsSettings = WorkshopsSettings()
    reports: ReportsSettings = ReportsSettings()
    services: ServicesSettings = ServicesSettings()
    commons: CommonsSettings = CommonsSettings()
    knowledge: KnowledgeSettings = KnowledgeSettings()
    projects: ProjectsSettings = ProjectsSettings()
    metrics: MetricsSettings = MetricsSettings()
    slurm: SlurmSettings = SlurmSettings()
    source: Path = Field(Path("."), exclude=True)

    def path(self, value: str, base: Path | None = None) -> Path:
        """Resolve a path from the settings, relative to ``base`` or to the settings file."""
        p = Path(value).expanduser()
        return (p if p.is_absolute() else (base or self.source.parent) / p).resolve()

    @property
    def state_dir(self) -> Path:
        return self.path(self.hub.state_dir)

    @property
    def shared_dir(self) -> Path:
        return self.path(self.data.shared_dir, self.state_dir)

    @property
    def homes_dir(self) -> Path:
        return self.state_dir / "homes"


_TYPE_WORDS = {
    "int_type": "a whole number",
    "bool_type": "true or false",
    "string_type": "a quoted string",
    "list_type": "a list, e.g. [\"a\", \"b\"]",
}


def _describe(path: Path, err: dict) -> str:
    key = ".".join(str(part) for part in err["loc"])
    if err["type"] == "extra_forbidden":
        return f"{path}: unknown key '{key}' (check its spelling; see hub_config/local.toml)"
    if err["type"] == "missing":
        return f"{path}: missing key '{key}'"
    wanted = _TYPE_WORDS.get(err["type"], err["msg"].lower())
    return f"{path}: key '{key}' must be {wanted}, not {err.get('input')!r}"


def load_settings(path: str | Path) -> Settings:
    """Read and validate a deployment settings file.

    Parameters
    ----------
    path
        A TOML settings file, e.g. ``hub_config/local.toml``.

    Raises
    ------
    SettingsError
        The file is missing or not TOML, or a key is unknown or of the wrong type; the
        message names the file and the key.
    """
    path = Path(path).resolve()
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        msg = f"{path}: settings file not found"
        raise SettingsError(msg) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        msg = f"{path}: not valid TOML ({exc})"
        raise SettingsError(msg) from None
    try:
        return Settings(**raw, source=path)
    except ValidationError as exc:
        problems = [_describe(path, e) for e in exc.errors()]
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise SettingsError(problems[0] + more) from None
