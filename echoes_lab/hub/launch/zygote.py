"""Our services forked from one process that imported what they share (issue 36).

Every Python service of the hub side (ours on :mod:`echoes_lab.hub.services.base`, the Dask
Gateway's server, and jupyterhub-idle-culler when it runs alone rather than in our services'
shared process) imports the same ~70 MiB of modules: tornado, JupyterHub's OAuth helper
(which imports JupyterHub's ORM, SQLAlchemy, alembic, aiohttp), jinja2, traitlets, pydantic.
Started with ``exec``, each process holds its own copy. Here one process, the *zygote*, imports
them once, freezes its objects out of the garbage collector's reach (:func:`gc.freeze`, so a
collection in a child does not write to every shared object's header) and forks each service:
the pages no child changes stay shared copy-on-write, and PSS divides them among the processes.

The hub (:mod:`echoes_lab.hub.app`) starts the zygote before its services and, through
:class:`ZygoteServiceSpawner`, asks it for each managed service whose command is ``python -m
MODULE ...`` of this interpreter and of :data:`FORKABLE`; anything else (a command of another
interpreter, Prometheus) is started by JupyterHub as before, and so is every service if the
zygote cannot be used (it did not start, it died, the kernel refuses the steps below): the
fork server is an optimisation, never a condition of the hub starting.

A forked child becomes what ``exec`` would have made it, in this order:

* its own session (JupyterHub's ``start_new_session``), a fresh interpreter's signal
  dispositions, none of the zygote's file descriptors beyond 0-2;
* the command and environment JupyterHub gave it, also in ``/proc/PID/cmdline`` and
  ``/proc/PID/environ`` (``prctl(PR_SET_MM_MAP)``): the launcher finds the hub's processes,
  and operators and tests find a service, by what these hold;
* the service's account when it has one (reports under ``reports.service_user`` when users are
  isolated): ``initgroups``, ``setgid``, ``setuid``, as JupyterHub's ``set_user_setuid`` does;
  then ``PR_SET_DUMPABLE`` 0, because without ``exec`` its memory is a copy of a root process's
  (the other services' requests passed through it), which no process of that account may read;
* ``PR_SET_PDEATHSIG``: SIGTERM when the zygote ends; the zygote itself ends when the hub's
  end of its socket closes (the hub exited or was killed) and gets SIGTERM if the hub dies, so
  a killed hub leaves no service behind;
* then ``runpy.run_module(MODULE)`` with the command's arguments, as ``python -m`` runs it, and
  a normal interpreter exit.

The zygote reaps its children and tells the hub each one's exit status, so JupyterHub sees a
service exit as it sees a child's (:class:`ForkedProcess` is a ``Popen`` to it) and starts it
again. The protocol is JSON messages on a ``SOCK_SEQPACKET`` socket pair the hub creates: no
path any account could reach.

``ECHOES_NO_FORK_SERVER=1`` in the hub's environment turns it off (``benchmarks/memory.py
--no-fork-server`` measures the difference). The ``_ServiceSpawner`` JupyterHub 6.1's
``Service.start`` looks up in its module is replaced by a subclass (:func:`install`): the one
place JupyterHub lets a service's process be made otherwise than by ``Popen``.

References: the technique is Android's zygote and ``multiprocessing``'s forkserver start
method (Python documentation, "Contexts and start methods"); :func:`gc.freeze` was added for
this use (Python 3.7 documentation of :mod:`gc`: "to avoid copy-on-write ... in a pre-fork
server"). ``PR_SET_MM_MAP``, ``PR_SET_DUMPABLE`` and ``PR_SET_PDEATHSIG``: prctl(2).
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import socket
import subprocess
import sys
import time

from echoes_lab.hub.forking import PR_SET_DUMPABLE, PR_SET_PDEATHSIG, prctl, show_in_proc

MODULE = "echoes_lab.hub.launch.zygote"
#: modules (``python -m``) the zygote may run: ours, JupyterHub's idle culler (when no shared
#: process of ours hosts it, :mod:`echoes_lab.hub.services.culler`) and the Dask
#: Gateway's server (its aiohttp, SQLAlchemy, traitlets, pydantic are the preloads' modules;
#: run, not preloaded: no other service imports dask_gateway_server itself)
FORKABLE = ("echoes_lab.hub.services.", "jupyterhub_idle_culler", "dask_gateway_server")
#: what every forked service imports: imported once, in the zygote (``requests`` and ``sqlite3``:
#: imported at start by three or four services, seen in their memory maps; tornado's asyncio
#: platform by five of the six, wsgiref's server with http.server by the four serving
#: ``/metrics``: their ``sys.modules`` read at idle, issue 36). Only modules that read no
#: environment variable at import: jupyterhub_idle_culler's class defaults read
#: ``JUPYTERHUB_API_URL`` then, so it is run, not preloaded (its own imports are tornado's and
#: dateutil's); prometheus_client reads ``PROMETHEUS_MULTIPROC_DIR`` and
#: ``PROMETHEUS_DISABLE_CREATED_SERIES`` (the zygote's environment is not the services'), so the
#: four that import it keep a copy each (0.6 MiB)
PRELOAD = ("echoes_lab.hub.services.base", "echoes_lab.hub.services.host", "requests",
           "sqlite3", "tornado.platform.asyncio", "wsgiref.simple_server")
#: seconds the hub waits for the zygote to answer a request before it starts the service itself
ANSWER_TIMEOUT = 60.0
#: seconds between the hub's polls of each service it manages (JupyterHub's default: 30)
SERVICE_POLL_INTERVAL = 3
#: the largest message (a service's environment; a few KiB in practice)
MAX_MESSAGE = 1 << 20

def forkable(cmd: list[str]) -> str | None:
    """The module ``cmd`` runs when it is ``python -m MODULE ...`` of this interpreter and of
    :data:`FORKABLE`; else None."""
    if len(cmd) < 3 or cmd[0] != sys.executable or cmd[1] != "-m":
        return None
    module = cmd[2]
    return module if any(module == f or (f.endswith(".") and module.startswith(f))
                         for f in FORKABLE) else None


# -- in the child ------------------------------------------------------------------------------
def _become(request: dict, zygote: int) -> list[str]:
    """In the forked child: become the service ``request`` describes; return its ``sys.argv``."""
    import pwd

    os.setsid()
    # the dispositions a fresh interpreter starts with: SIGINT raises KeyboardInterrupt,
    # SIGPIPE and SIGXFSZ ignored (errors instead), the rest the defaults
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGCHLD):
        signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    signal.set_wakeup_fd(-1)
    signal.pthread_sigmask(signal.SIG_SETMASK, set())
    os.closerange(3, os.sysconf("SC_OPEN_MAX") if os.sysconf("SC_OPEN_MAX") < 65536 else 65536)
    cmd, env = request["cmd"], request["env"]
    show_in_proc(cmd, env)
    os.environ.clear()
    os.environ.update(env)
    if request.get("cwd"):
        os.chdir(request["cwd"])
    user = request.get("user")
    if user:
        pw = pwd.getpwnam(user)
        os.initgroups(user, pw.pw_gid)
        os.setgid(pw.pw_gid)
        os.setuid(pw.pw_uid)
        prctl(PR_SET_DUMPABLE, 0)
    # after setuid: a change of credentials clears the parent-death signal
    prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != zygote:  # the zygote ended before prctl
        os._exit(1)
    return [cmd[2], *cmd[3:]]


def _run_child(request: dict, zygote: int) -> int:
    import runpy

    try:
        sys.argv = _become(request, zygote)
    except Exception as exc:  # noqa: BLE001 - the child must never return into the zygote's loop
        sys.stderr.write(f"ECHOES Lab: could not start {request.get('cmd')}: {exc}\n")
        sys.stderr.flush()
        os._exit(1)
    sys.orig_argv = list(request["cmd"])
    runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)
    return 0


# -- the zygote --------------------------------------------------------------------------------
def _preload(modules: tuple[str, ...]) -> None:
    import gc
    import importlib

    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            sys.stderr.write(f"ECHOES Lab: the fork server could not preload {module}: {exc}\n")
    gc.collect()
    gc.freeze()  # the objects above stay out of every child's collections: their pages shared


def _serve(sock: socket.socket) -> dict | None:
    """Answer the hub's requests until its end closes; in a forked child, return its request."""
    me = os.getpid()
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)  # a handler, so that the wakeup fd is written
    children: set[int] = set()
    while True:
        try:
            ready, _, _ = select.select([sock, wake_r], [], [])
        except InterruptedError:
            continue
        if wake_r in ready:
            with contextlib.suppress(BlockingIOError):
                os.read(wake_r, 4096)
        while children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            children.discard(pid)
            with contextlib.suppress(OSError):
                sock.send(json.dumps({"exit": pid,
                                      "status": os.waitstatus_to_exitcode(status)}).encode())
        if sock in ready:
            data = sock.recv(MAX_MESSAGE)
            if not data:  # the hub is gone: PR_SET_PDEATHSIG ends every child
                return None
            request = json.loads(data)
            pid = os.fork()
            if pid == 0:
                sock.close()
                os.close(wake_r)
                os.close(wake_w)
                return request
            children.add(pid)
            del request, data  # the next child need not carry this one's environment
            sock.send(json.dumps({"pid": pid, "id": me}).encode())


def main(argv: list[str] | None = None) -> int:
    """``python -m echoes_lab.hub.launch.zygote FD``: serve the hub on socket ``FD``."""
    argv = sys.argv[1:] if argv is None else argv
    sock = socket.socket(fileno=int(argv[0]))
    hub = os.getppid()
    prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != hub:
        return 1
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the hub decides when its services stop
    # the kernel must let a child show its own command and environment, or the launcher and
    # operators could not tell the services apart: try it on ourselves (a no-op change)
    try:
        show_in_proc(sys.orig_argv, dict(os.environ))
        usable = True
    except OSError as exc:
        sys.stderr.write(f"ECHOES Lab: no fork server ({exc}): services start as commands\n")
        usable = False
    sock.send(json.dumps({"usable": usable}).encode())
    if not usable:
        return 0
    _preload(PRELOAD)
    sock.send(json.dumps({"ready": True}).encode())
    request = _serve(sock)
    if request is None:
        return 0
    return _run_child(request, os.getppid())


# -- in the hub --------------------------------------------------------------------------------
class Zygote:
    """The hub's end of the fork server: start it, ask it for services, hear of their exits."""

    def __init__(self, proc, sock: socket.socket):
        self.proc = proc
        self.sock = sock
        self.exits: dict[int, int] = {}
        self.alive = True
        self.ready = False  # its imports done: a fork is then a matter of milliseconds

    @classmethod
    def start(cls, log) -> Zygote | None:
        """Start the fork server (the hub's child, its own session); None if it cannot serve."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        # only what locates this hub's processes (ECHOES_SETTINGS, for the launcher) and the
        # interpreter's own needs: no token of the hub's passes into every service's memory
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("JUPYTERHUB_", "CONFIGPROXY_", "JPY_"))}
        try:
            proc = subprocess.Popen([sys.executable, "-m", MODULE, str(theirs.fileno())],
                                    pass_fds=[theirs.fileno()], env=env,
                                    start_new_session=True)
        except OSError as exc:
            log.warning("No fork server for the services (%s): each starts as a command", exc)
            return None
        finally:
            theirs.close()
        zygote = cls(proc, ours)
        hello = zygote._receive(ANSWER_TIMEOUT)
        if not hello or not hello.get("usable"):
            zygote.close()
            log.warning("No fork server for the services: each starts as a command")
            return None
        log.info("Fork server for the services: pid %i", proc.pid)
        return zygote

    def _receive(self, timeout: float | None) -> dict | None:
        """One message (an exit is recorded and None returned); None on timeout or EOF."""
        if not self.alive:
            return None
        ready, _, _ = select.select([self.sock], [], [], timeout)
        if not ready:
            return None
        try:
            data = self.sock.recv(MAX_MESSAGE)
        except OSError:
            data = b""
        if not data:
            self.alive = False
            with contextlib.suppress(Exception):
                self.proc.wait(5)  # it has ended, or is about to: reap it
            return None
        message = json.loads(data)
        if "exit" in message:
            self.exits[message["exit"]] = message["status"]
            return None
        if "ready" in message:
            self.ready = True
            return None
        return message

    def wait_ready(self, timeout: float = ANSWER_TIMEOUT) -> bool:
        """Wait until the zygote has imported what it preloads (blocking: the hub runs this in a
        thread, before it starts any service, so its own requests are answered meanwhile)."""
        deadline = time.monotonic() + timeout
        while self.alive and not self.ready and time.monotonic() < deadline:
            self._receive(deadline - time.monotonic())
        return self.ready

    def pump(self) -> None:
        """Record every exit the zygote has reported so far."""
        while self.alive and select.select([self.sock], [], [], 0)[0]:
            self._receive(0)

    def spawn(self, cmd: list[str], env: dict[str, str], cwd: str | None,
              user: str | None) -> ForkedProcess:
        """Fork ``cmd`` (a :func:`forkable` command) as a child of the zygote."""
        self.pump()
        if not self.alive:
            msg = "the fork server has ended"
            raise OSError(msg)
        self.sock.send(json.dumps({"cmd": cmd, "env": env, "cwd": cwd, "user": user}).encode())
        deadline = time.monotonic() + ANSWER_TIMEOUT
        while self.alive and time.monotonic() < deadline:
            answer = self._receive(deadline - time.monotonic())
            if answer and "pid" in answer:
                return ForkedProcess(self, answer["pid"], cmd)
        self.close()  # no answer: a zygote that hangs is not asked again
        msg = "the fork server did not answer"
        raise OSError(msg)

    def close(self) -> None:
        self.alive = False
        with contextlib.suppress(OSError):
            self.sock.close()
        with contextlib.suppress(OSError):
            self.proc.terminate()
        with contextlib.suppress(Exception):
            self.proc.wait(5)


class ForkedProcess(subprocess.Popen):
    """A service the zygote forked, as JupyterHub uses a ``Popen`` (its spawner's ``proc`` must
    be one): ``pid``, ``returncode``, :meth:`poll`, :meth:`wait`, signals, a context manager.
    ``Popen.__init__`` is not called: nothing is executed here."""

    _child_created = False  # Popen.__del__ has nothing to reap

    def __init__(self, zygote: Zygote, pid: int, args: list[str]):  # noqa: PLW0231
        self.zygote, self.pid, self.args = zygote, pid, args
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is not None:
            return self.returncode
        self.zygote.pump()
        if self.pid in self.zygote.exits:
            self.returncode = self.zygote.exits.pop(self.pid)
        elif not self.zygote.alive:
            # the zygote ended (its children get SIGTERM): gone once the pid is, or a zombie
            # that whoever inherited it (init, a subreaper) has not reaped; status unknown
            import psutil

            try:
                ended = psutil.Process(self.pid).status() == psutil.STATUS_ZOMBIE
            except psutil.NoSuchProcess:
                ended = True
            except psutil.Error:
                ended = False
            if ended:
                self.returncode = -signal.SIGTERM
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() >= deadline:
                raise subprocess.TimeoutExpired(self.args, timeout)
            if self.zygote.alive:
                self.zygote._receive(0.1)
            else:
                time.sleep(0.1)  # no event to wait on: the pid of an orphan is polled
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, sig)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def __enter__(self) -> ForkedProcess:
        return self

    def __exit__(self, *exc) -> None:
        return None


def install(app) -> Zygote | None:
    """Start the fork server for ``app``'s (the hub's) managed services that can be forked, and
    have JupyterHub start those through it (its ``_ServiceSpawner``, looked up at each start)."""
    from jupyterhub.services import service as jh_service
    from traitlets import default

    managed = [s for s in app._service_map.values() if s.managed and forkable(s.command)]
    if not managed or os.environ.get("ECHOES_NO_FORK_SERVER"):
        return None
    if not isinstance(getattr(jh_service, "_ServiceSpawner", None), type):
        # a JupyterHub that makes its services' processes otherwise: they start as commands
        app.log.warning("No fork server: this JupyterHub has no services._ServiceSpawner")
        return None
    zygote = Zygote.start(app.log)
    if zygote is None:
        return None
    base = jh_service._ServiceSpawner

    class ZygoteServiceSpawner(base):
        """JupyterHub's service spawner, forking our services from the zygote."""

        @default("poll_interval")
        def _poll_often(self):
            # a poll of a forked service is a select() on the zygote's socket: one that died is
            # forked again within seconds (cheap: nothing to import), not after JupyterHub's
            # 30 s (meant for remote servers); a command, whose restart costs a whole start-up
            # (a service failing in a loop), keeps JupyterHub's interval
            if forkable(self.cmd) and zygote.alive:
                return SERVICE_POLL_INTERVAL
            return base.poll_interval.default_value

        def start(self):
            if not forkable(self.cmd) or not zygote.alive:
                return super().start()
            env = self.get_env()
            env.pop("JUPYTERHUB_ACTIVITY_URL", None)  # as JupyterHub's: none for services
            self.log.info("Forking %s", " ".join(self.cmd))
            try:
                self.proc = zygote.spawn(list(self.cmd), env, self.cwd or None,
                                         self.user.name or None)
            except OSError as exc:
                self.log.warning("Fork server failed (%s): starting %s as a command", exc,
                                 self.cmd[2])
                return super().start()
            self.pid = self.proc.pid
            return None

    jh_service._ServiceSpawner = ZygoteServiceSpawner
    return zygote


if __name__ == "__main__":
    sys.exit(main())
