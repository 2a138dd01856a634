"""The gateway side of Dask Gateway: the profile's settings onto dask-gateway-server's options.

``hub_config/dask_gateway_config.py`` calls :func:`configure_gateway` and nothing else. The hub
side (the managed service, users' environment, clusters ending with the server) is
``echoes_lab.hub.services.gateway``; it does not import this module, because importing
dask-gateway-server changes the logging formatter of every traitlets application in the process.

Users authenticate with their JupyterHub token: the gateway asks the hub who the token belongs
to (and that it carries ``access:services!service=dask-gateway``), and each user sees, connects
to and stops only their own clusters.

The ``local`` profile uses the gateway's local process backend. Who runs the processes follows
the spawner's isolation:

* **hub as root** (``spawner.isolation`` ``auto`` or ``system-users``): :class:`EchoesLocalBackend`,
  dask-gateway's ``LocalBackend`` with every scheduler and worker started under the user's own
  system account ``jupyter-<name>`` (the account their server runs under), working directory
  mode 0700;
* **hub as an ordinary user**: :class:`EchoesUnsafeLocalBackend` (``UnsafeLocalBackend``): all
  clusters run under the hub's account; the gateway still keeps users' clusters apart at its API
  and with a TLS key per cluster, but not at the operating-system level.

Both cap the number of clusters per user (dask-gateway itself has no such limit) and signal
only processes that are still their clusters' (pids are reused).
"""

from __future__ import annotations

import asyncio
import os
import pwd
import signal
import sys
import time
from pathlib import Path

import psutil
from dask_gateway_server.backends.base import PublicException
from dask_gateway_server.backends.local import LocalBackend, UnsafeLocalBackend
from dask_gateway_server.options import Float, Integer, Options
from traitlets import Bool
from traitlets import Float as FloatTrait
from traitlets import Integer as IntegerTrait
from traitlets.config import LoggingConfigurable

from echoes_lab.errors import SettingsError
from echoes_lab.hub.accounts import isolated, system_username
from echoes_lab.hub.services.gateway import FORK_SERVER_VARIABLE, PREFIX, SERVICE
from echoes_lab.hub.services.gateway.forkserver import MARKER, ForkServer
from echoes_lab.hub.services.gateway.scheduler_preload import WORKERS_VARIABLE
from echoes_lab.hub.settings import Settings, load_settings

GIB = 2**30

#: loaded by every cluster's scheduler by path (importing nothing of echoes_lab there): the
#: first heartbeat at once, with the workers asked for at creation
SCHEDULER_PRELOAD = str(Path(__file__).with_name("scheduler_preload.py"))

#: Each worker's nanny forks its worker process instead of spawning a fresh interpreter that
#: imports ``distributed`` again (0.45 CPU-s per worker; ``benchmarks/cluster.py``). The nanny
#: still watches the worker and enforces its memory limit. With ``fork`` the variables of
#: ``distributed.nanny.pre-spawn-environ`` would come too late, so the processes start with
#: them (distributed's own defaults).
WORKER_ENVIRONMENT = {
    "DASK_DISTRIBUTED__WORKER__MULTIPROCESSING_METHOD": "fork",
    "MALLOC_TRIM_THRESHOLD_": "65536",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
}


class _ClusterCap(LoggingConfigurable):
    """Refuse a new cluster when the user already has ``clusters_per_user`` active ones."""

    clusters_per_user = IntegerTrait(0, min=0, help="0 = no limit").tag(config=True)

    async def start_cluster(self, user, cluster_options):
        if self.clusters_per_user:
            active = await self.list_clusters(username=user.name)
            if len(active) >= self.clusters_per_user:
                msg = (f"you already have {len(active)} Dask cluster(s) running, the most this "
                       f"hub allows per user ({self.clusters_per_user}): shut one down "
                       "(client.shutdown()) or reuse it")
                raise PublicException(msg)
        return await super().start_cluster(user, cluster_options)


class _FinishStopping(LoggingConfigurable):
    """On shutdown, finish stopping the clusters already asked to stop; leave the others.

    With ``stop_clusters_on_shutdown = False`` dask-gateway-server exits at once, abandoning a
    cluster half-stopped (its workers gone, its scheduler still running) when the hub stops
    right after a user's server (whose stop asks for the user's clusters to end).
    """

    stopping_grace = FloatTrait(4.0, min=0, help="seconds to wait for clusters being stopped")

    async def cleanup(self):
        from dask_gateway_server.backends.db_base import JobStatus

        db = getattr(self, "db", None)
        stopping = [] if db is None else [
            c for c in db.name_to_cluster.values()
            if c.target >= JobStatus.STOPPED and c.status < JobStatus.STOPPED
        ]
        if stopping:
            self.log.info("Finishing the stop of %d cluster(s)...", len(stopping))
            done, _ = await asyncio.wait([asyncio.ensure_future(_flag(c.shutdown))
                                          for c in stopping], timeout=self.stopping_grace)
            if len(done) < len(stopping):
                self.log.warning("%d cluster(s) still stopping: the next start finishes them",
                                 len(stopping) - len(done))
        await super().cleanup()


async def _flag(flag) -> None:
    await flag


class _WorkersWithoutDashboard(LoggingConfigurable):
    """Workers start without a dashboard of their own, as ``LocalCluster``'s do.

    Each worker's dashboard imports bokeh (0.5 CPU-s of a worker's 1.0 s start, measured with
    ``benchmarks/cluster.py``) and listens on a loopback port no user can reach: the gateway
    proxies only the scheduler's dashboard, which shows every worker.
    """

    def get_worker_command(self, cluster, worker_name, scheduler_address=None):
        cmd = super().get_worker_command(cluster, worker_name, scheduler_address)
        if "--dashboard-address" in cmd:
            i = cmd.index("--dashboard-address")
            cmd = [*cmd[:i], *cmd[i + 2:]]
        return [*cmd, "--no-dashboard"]


class _SchedulerReportsAtOnce(LoggingConfigurable):
    """Every scheduler also loads :data:`SCHEDULER_PRELOAD`: it reports to the gateway as soon
    as it has started (not 0.25 s later) with the workers asked for with the cluster, so
    that they start in the same step that marks the cluster running instead of after the
    client's scale request (``benchmarks/cluster.py``)."""

    def get_scheduler_command(self, cluster):
        return [*super().get_scheduler_command(cluster), "--preload", SCHEDULER_PRELOAD]


class _SignalOnlyOurProcesses(LoggingConfigurable):
    """Signal a cluster's scheduler or worker only while its pid still names that process.

    dask-gateway's local backends remember pids and stop them with SIGINT, SIGTERM, then
    SIGKILL, checking ``kill(pid, 0)`` in between. Pids are reused (``kernel.pid_max`` is 32768
    on many hosts, this one included): the pid of a worker that already ended may by then name
    a user's server, which the gateway, running as root, would signal. Only a process whose
    environment names a gateway cluster is ours, and psutil's signals check that the pid still
    names the same process (its start time) before each one.
    """

    async def stop_process(self, pid):
        proc = _cluster_process(pid, self.clusters_directory)
        if proc is None:
            return
        for sig, timeout in ((signal.SIGINT, self.sigint_timeout),
                             (signal.SIGTERM, self.sigterm_timeout),
                             (signal.SIGKILL, self.sigkill_timeout)):
            self.log.debug("Sending %s to process %d", sig.name, pid)
            try:
                proc.send_signal(sig)
            except psutil.NoSuchProcess:
                return
            if await _ended(proc, timeout):
                return
        self.log.warning("Failed to stop process %d", pid)

    def _check_status(self, o):
        pid = o.state.get("pid")
        return pid is not None and _cluster_process(pid, self.clusters_directory) is not None


async def _ended(proc: psutil.Process, timeout: float) -> bool:
    """Whether ``proc`` ends (or is a zombie) within ``timeout`` seconds; polled, not waited
    for, so that asyncio's child watcher still reaps the gateway's own children."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if proc.status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        await asyncio.sleep(0.1)
    return False


def _cluster_process(pid: int, clusters_directory: str | None = None) -> psutil.Process | None:
    """The process ``pid`` if it is a gateway cluster's.

    A process started with ``exec`` shows the environment it was given, which names its
    cluster; so does one forked by the fork server, which points ``/proc/<pid>/environ`` at its
    new environment. Where the kernel refuses that, a forked process shows the fork server's
    environment block, which carries :data:`MARKER`, and works in its cluster's folder, one
    directly inside the clusters directory (the fork server itself works in ``/``).
    """
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None
        environ = proc.environ()
        if "DASK_GATEWAY_CLUSTER_NAME" in environ:
            return proc
        if (MARKER in environ and clusters_directory is not None
                and os.path.dirname(proc.cwd()) == os.path.realpath(clusters_directory)):
            return proc
    except psutil.Error:
        pass
    return None


class _ForkedProcesses(LoggingConfigurable):
    """Schedulers and workers forked by the fork server (``forkserver.py``), not exec'd.

    The fork server has imported ``distributed`` (and bokeh for the scheduler's dashboard)
    once; each child drops to the user's account and runs the same entry point with the same
    arguments and environment as a fresh process would (``benchmarks/cluster.py`` measures
    the difference). The pid is tracked, stopped and checked as before; ``/proc`` shows the
    command and environment an exec'd process would have, plus :data:`MARKER`. When the fork
    server is off or fails, the process is exec'd the stock way; when it ended, a new one is
    started.

    The fork server is memory used for clusters (~70 MiB, ``benchmarks/memory.py``), not a
    fixed cost of the hub: it starts with the first cluster asked for (its imports overlap the
    cluster's TLS key and records, and the scheduler's fork waits for them), stays while any
    cluster is active, and ends once none has been for ``fork_server_idle`` seconds.
    """

    fork_server = Bool(True, help="start schedulers and workers through the fork server"
                       ).tag(config=True)
    fork_server_idle = FloatTrait(600.0, min=0, help="seconds with no active cluster before "
                                  "the fork server ends (the next cluster starts it again)"
                                  ).tag(config=True)

    _forks: ForkServer | None = None
    _idle_watch: asyncio.Task | None = None

    def _account(self, cluster) -> tuple[int | None, int | None]:
        return None, None

    async def setup(self, app):
        if self.fork_server:
            env = {k: os.environ[k] for k in self.inherited_environment if k in os.environ}
            # no token, no secret: distributed reads these at import, in the fork server
            self._fork_environment = {**env, **WORKER_ENVIRONMENT}
            self._restart = asyncio.Lock()
            self._used = time.monotonic()
        await super().setup(app)
        if self.fork_server:
            self._idle_watch = asyncio.ensure_future(self._end_when_idle())

    async def cleanup(self):
        if self._idle_watch is not None:
            self._idle_watch.cancel()
        await super().cleanup()
        if self._forks is not None:
            await self._forks.stop()

    async def _fork_server(self) -> ForkServer | None:
        """The running fork server, started (or started again) if it is not."""
        if not self.fork_server:
            return None
        self._used = time.monotonic()
        if self._forks is None or not self._forks.alive:
            async with self._restart:  # several processes may be asked for at once
                if self._forks is not None and not self._forks.alive:
                    # it ended (killed, or out of step after a failure): a new one; its
                    # children, clusters already running, live in sessions of their own
                    self.log.warning("Fork server not running: starting it again")
                    await self._forks.stop()
                    self._forks = None
                if self._forks is None:
                    forks = ForkServer(self.log, self._fork_environment)
                    try:
                        await forks.start()
                    except OSError as exc:  # an optimisation, never a condition of a cluster
                        self.log.warning("No fork server (%s): processes start the stock way",
                                         exc)
                        return None
                    self._forks = forks
        return self._forks

    async def _end_when_idle(self) -> None:
        """End the fork server once no cluster has been active for ``fork_server_idle`` s."""
        period = min(max(self.fork_server_idle / 4, 0.5), 10.0)
        while True:
            await asyncio.sleep(period)
            try:
                if self._forks is None:
                    continue
                if any(True for _ in self.db.active_clusters()):
                    self._used = time.monotonic()
                    continue
                if time.monotonic() - self._used < self.fork_server_idle:
                    continue
                async with self._restart:
                    forks, self._forks = self._forks, None
                    if forks is not None:
                        self.log.info("Fork server ended: no cluster for %.0f s; the next "
                                      "cluster starts it again", self.fork_server_idle)
                        await forks.stop()
            except asyncio.CancelledError:
                raise
            except Exception:  # the watch must outlive a failed check; the next one retries
                self.log.exception("Checking whether the fork server is idle failed")

    async def start_cluster(self, user, cluster_options):
        # started now, its imports run while the gateway makes the cluster's key and records
        await self._fork_server()
        return await super().start_cluster(user, cluster_options)

    async def start_process(self, cluster, cmd, env, name):
        forks = await self._fork_server()
        if forks is None or not forks.serves(cmd):
            return await super().start_process(cluster, cmd, env, name)
        workdir = cluster.state["workdir"]
        uid, gid = self._account(cluster)
        # the logs folder is the user's: opened without following a link put in its place
        logs = os.open(self.get_logs_directory(workdir),
                       os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        fd = None
        try:
            fd = os.open(f"{name}.log", os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                         | os.O_CLOEXEC, 0o644, dir_fd=logs)
            request = {"module": cmd[2], "args": cmd[3:], "argv": cmd, "env": env, "cwd": workdir,
                       "uid": uid, "gid": gid, "umask": _umask(), "name": name}
            try:
                return await asyncio.to_thread(forks.spawn, request, fd)
            except (OSError, ValueError) as exc:
                self.log.warning("Fork server failed (%s); starting %s of %s the stock way",
                                 exc, name, cluster.name)
                os.unlink(f"{name}.log", dir_fd=logs)  # the stock way creates it anew
        finally:
            os.close(logs)
            if fd is not None:
                os.close(fd)
        return await super().start_process(cluster, cmd, env, name)


def _umask() -> int:
    """This process's umask, read without changing it (``os.umask`` would, for every thread)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    return 0o022


class EchoesLocalBackend(_ForkedProcesses, _SignalOnlyOurProcesses, _FinishStopping,
                         _WorkersWithoutDashboard, _SchedulerReportsAtOnce, _ClusterCap,
                         LocalBackend):
    """``LocalBackend`` running each user's cluster under their ``jupyter-<name>`` account.

    dask-gateway's ``LocalBackend`` switches to a system account named like the gateway user;
    the hub's users map to ``jupyter-<name>`` (see ``echoes_lab.hub.accounts``), so every place
    that names the account goes through :func:`system_username`.
    """

    def _account(self, cluster):
        entry = pwd.getpwnam(system_username(cluster.username))
        return entry.pw_uid, entry.pw_gid

    async def start_cluster(self, user, cluster_options):
        try:
            pwd.getpwnam(system_username(user.name))
        except KeyError:
            msg = (f"user {user.name} has no account on this machine yet: start your server "
                   "from the hub once, then ask for a cluster again")
            raise PublicException(msg) from None
        return await super().start_cluster(user, cluster_options)

    def set_file_permissions(self, paths, username):
        # dask-gateway-server 2026.3.0 passes the *characters* of the TLS file paths here too
        # (``paths.extend(path)`` in LocalBackend.setup_working_directory), so the stock method
        # would chown "/" to the user. Only the new working directory's own tree is handed over.
        workdir = os.path.realpath(paths[0])
        if os.path.dirname(workdir) != os.path.realpath(self.clusters_directory):
            msg = f"refusing to hand over {workdir}: not a cluster folder"
            raise PublicException(msg)
        entry = pwd.getpwnam(system_username(username))
        for folder, dirs, files in os.walk(workdir):
            for name in [folder, *(os.path.join(folder, f) for f in dirs + files)]:
                os.chown(name, entry.pw_uid, entry.pw_gid, follow_symlinks=False)

    def make_preexec_fn(self, cluster):
        entry = pwd.getpwnam(system_username(cluster.username))
        workdir = cluster.state["workdir"]

        def preexec():  # pragma: no cover - runs in the child
            os.setgid(entry.pw_gid)
            os.setgroups([entry.pw_gid])
            os.setuid(entry.pw_uid)
            os.chdir(workdir)

        return preexec

    def get_env(self, cluster):
        env = super().get_env(cluster)
        env["USER"] = system_username(cluster.username)
        return env


class EchoesUnsafeLocalBackend(_SignalOnlyOurProcesses, _FinishStopping,
                               _WorkersWithoutDashboard, _SchedulerReportsAtOnce, _ClusterCap,
                               UnsafeLocalBackend):
    """``UnsafeLocalBackend`` (all clusters under the hub's account) with the per-user cap."""


def check_limits(settings: Settings) -> None:
    """Defaults must lie within the limits; say which key of which file when not."""
    gw = settings.gateway
    for key, top in (("worker_cores", "max_worker_cores"), ("worker_memory", "max_worker_memory")):
        if getattr(gw, key) > getattr(gw, top):
            msg = (f"{settings.source}: gateway.{key} ({getattr(gw, key)}) is above "
                   f"gateway.{top} ({getattr(gw, top)})")
            raise SettingsError(msg)


def cluster_options(settings: Settings) -> Options:
    """The options users may set per cluster, bounded by the settings."""
    gw = settings.gateway

    def handler(options):
        # the workers asked for with the cluster reach its scheduler (scheduler_preload.py)
        # through its environment; more than max_workers is cut there by the gateway, and the
        # client's scale request then says the limit
        workers = str(min(options.workers, gw.max_workers))
        return {"worker_cores": options.worker_cores,
                "worker_memory": int(options.worker_memory * GIB),
                "environment": {**WORKER_ENVIRONMENT, WORKERS_VARIABLE: workers}}

    return Options(
        Integer("workers", default=0, min=0, label="Workers at start"),
        Integer("worker_cores", default=gw.worker_cores, min=1, max=gw.max_worker_cores,
                label="Worker cores"),
        Float("worker_memory", default=gw.worker_memory, min=0.25, max=gw.max_worker_memory,
              label="Worker memory (GiB)"),
        handler=handler,
    )


def _private_file(path: Path, content: bytes | None = None) -> bytes:
    """Create ``path`` at mode 0600 (writing ``content``) unless it exists; return its bytes.

    The state directory is the hub's own; ``O_NOFOLLOW`` still refuses a link put in its place.
    """
    flags = os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | flags, 0o600)
    except FileExistsError:
        fd = os.open(path, os.O_RDONLY | flags)
    else:
        if content:
            os.write(fd, content)
    try:
        os.fchmod(fd, 0o600)  # files from an older version, or a wider umask
        os.lseek(fd, 0, os.SEEK_SET)
        return os.read(fd, 1 << 16)
    finally:
        os.close(fd)


def persist_clusters(c, state: Path) -> None:
    """Keep the gateway's records on disk so users' clusters survive a restart of the hub.

    dask-gateway-server keeps clusters in a database (in memory by default) and stops every
    cluster when it shuts down. Here the database is ``<state>/dask-gateway.sqlite`` (0600), its
    secrets (each cluster's TLS key and API token) encrypted with a Fernet key generated on the
    first start into ``<state>/dask-gateway.key`` (0600), and clusters are left running when the
    gateway stops: the local backend starts schedulers and workers in sessions of their own, so
    they outlive the gateway, and the next gateway finds them again by the pids it recorded
    (their heartbeats resume; one that died meanwhile misses its heartbeat and is marked
    failed, which its owner sees in ``gateway.list_clusters()``). A user's clusters still end
    with their server (``echoes_lab.hub.services.gateway.stop_clusters_hook``).
    """
    from cryptography.fernet import Fernet

    key_file, database = state / "dask-gateway.key", state / "dask-gateway.sqlite"
    if not key_file.exists() and database.exists():
        # records encrypted with a lost key cannot be read (the gateway would not start)
        database.rename(database.with_suffix(f".sqlite.unreadable-{int(time.time())}"))
    key = _private_file(key_file, Fernet.generate_key() + b"\n").strip()
    _private_file(database)  # sqlite would create it with the process's umask
    c.DBBackendBase.db_url = f"sqlite:///{database}"
    c.DBBackendBase.db_encrypt_keys = [key.decode("ascii")]
    c.DBBackendBase.stop_clusters_on_shutdown = False


def configure_gateway(c, settings_file: str | Path) -> Settings:
    """Fill dask-gateway-server's config object ``c`` from a profile's settings file."""
    from echoes_lab.hub.secrets import read_secrets

    s = load_settings(settings_file)
    check_limits(s)
    gw = s.gateway
    state = s.state_dir
    bindir = Path(sys.executable).parent

    c.DaskGateway.address = f"127.0.0.1:{gw.api_port}"
    c.DaskGateway.log_level = gw.log_level
    c.Proxy.address = f"127.0.0.1:{gw.port}"
    c.Proxy.tcp_address = f"{s.hub.ip}:{gw.scheduler_port}"
    c.Proxy.prefix = PREFIX

    c.DaskGateway.authenticator_class = "dask_gateway_server.auth.JupyterHubAuthenticator"
    c.JupyterHubAuthenticator.jupyterhub_api_url = f"http://127.0.0.1:{s.hub.hub_port}/hub/api"
    c.JupyterHubAuthenticator.jupyterhub_api_token = read_secrets(state).api_tokens[SERVICE]
    # tokens must carry access:services!service=dask-gateway (users' server tokens do)
    c.JupyterHubAuthenticator.jupyterhub_service_name = SERVICE

    backend = EchoesLocalBackend if isolated(s.spawner.isolation) else EchoesUnsafeLocalBackend
    c.DaskGateway.backend_class = f"{backend.__module__}.{backend.__name__}"
    c.LocalBackend.clusters_per_user = gw.clusters_per_user
    c.EchoesLocalBackend.fork_server = os.environ.get(FORK_SERVER_VARIABLE, "1") != "0"
    c.EchoesLocalBackend.fork_server_idle = float(gw.fork_server_idle)
    clusters = state / "dask-gateway"
    clusters.mkdir(exist_ok=True)
    os.chmod(clusters, 0o711)  # each cluster's own folder inside is 0700 and the user's
    c.LocalBackend.clusters_directory = str(clusters)
    c.LocalBackend.cluster_options = cluster_options(s)
    persist_clusters(c, state)

    # distributed's own command modules (what `dask scheduler` / `dask worker` run), without
    # the `dask` command's discovery of every installed subcommand (0.08 CPU-s per process)
    python = str(bindir / Path(sys.executable).name)
    c.ClusterConfig.scheduler_cmd = [python, "-m", "distributed.cli.dask_scheduler"]
    c.ClusterConfig.worker_cmd = [python, "-m", "distributed.cli.dask_worker"]
    c.ClusterConfig.cluster_max_workers = gw.max_workers
    c.ClusterConfig.worker_cores = gw.worker_cores
    c.ClusterConfig.worker_memory = int(gw.worker_memory * GIB)
    c.ClusterConfig.scheduler_memory = int(1 * GIB)
    c.ClusterConfig.idle_timeout = float(gw.idle_timeout)
    c.ClusterConfig.environment = WORKER_ENVIRONMENT
    return s
