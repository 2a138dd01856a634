"""Fork server of the gateway: schedulers and workers from an interpreter that imported them once.

A cluster's scheduler or worker started the stock way is a fresh interpreter importing
``distributed``, tornado and (for the scheduler's dashboard) bokeh: about 1.2 CPU-s for a
scheduler, 0.8 for a worker's nanny, on every cluster (``benchmarks/cluster.py``). This
process, started by the gateway (:class:`ForkServer`), imports them once and then forks one
child per request; the child drops to the user's account and runs the same command-line entry
point (``python -m distributed.cli.dask_scheduler`` / ``dask_worker``) with the same arguments
and environment the gateway would have given a fresh process.

It runs as the gateway's user (root) and holds no secret: it is started with a small fixed
environment (no hub or gateway token), never reads TLS keys, and never sees a request's
contents. A request is one datagram on the socket pair it shares with the gateway (no name
in the file system, so no user can connect to it) carrying two file descriptors: the log
file the gateway opened for the process and one end of a fresh socket pair on which the
gateway writes the request (command, environment with the cluster's token and TLS paths,
account, folder). Only the forked child reads that, so no cluster's token ever lands in this
process's memory, which later children (of other users, readable to them) inherit.

The child, in order: new session; default signal handlers, none blocked; stdin from
``/dev/null``, stdout and stderr to the log; every other descriptor closed; the gateway's
umask; the groups, gid and uid of the user's account (checked: real, effective and saved ids
all the user's, no capability left); dumpable again (the user can see and signal their own
process, as one started with ``exec``); the cluster's folder as working directory (entered as
the user); the environment replaced (plus :data:`MARKER`) and Dask's configuration re-read from
it; ``/proc/<pid>/cmdline`` and ``environ`` pointed at that command and environment (as after
``exec``: what finds processes by them keeps working); then the entry point runs as
``__main__``. The gateway tracks the child's pid as it tracks any of its
processes. When run (by path, ``python -P``) it imports of ``echoes_lab`` only the package's
light ``__init__`` and :mod:`echoes_lab.hub.forking`.

References: fork(2), setresuid(2), capabilities(7) (a uid change from 0 clears the permitted
and effective sets), prctl(2) (``PR_SET_DUMPABLE``: cleared by a uid change),
unix(7) (``SCM_RIGHTS``); ``multiprocessing.forkserver`` follows the same pattern unprivileged.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import os
import signal
import socket
import sys
import threading

from echoes_lab.hub.forking import PR_SET_DUMPABLE, PR_SET_NAME, prctl, show_in_proc

#: entry points the fork server runs (what the gateway's scheduler_cmd / worker_cmd name)
MODULES = ("distributed.cli.dask_scheduler", "distributed.cli.dask_worker")
#: in the fork server's (and so its children's) environment block, ``/proc/<pid>/environ``
MARKER = "ECHOES_GATEWAY_FORK_SERVER"

_MAX_REQUEST = 1 << 20


def _capabilities() -> dict[str, int]:
    with open("/proc/self/status") as f:
        return {line.split(":")[0]: int(line.split()[1], 16)
                for line in f if line.startswith(("CapPrm", "CapEff", "CapAmb"))}


def _read_all(fd: int) -> bytes:
    chunks, size = [], 0
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
        size += len(chunk)
        if size > _MAX_REQUEST:
            msg = "request too large"
            raise ValueError(msg)
    return b"".join(chunks)


def _run_child(request_fd: int, log_fd: int) -> None:  # pragma: no cover - runs in the child
    """Become the requested process; never returns."""
    code = 1
    try:
        os.setsid()
        for sig in signal.valid_signals():
            if sig not in (signal.SIGKILL, signal.SIGSTOP):
                with contextlib.suppress(OSError, ValueError):
                    signal.signal(sig, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_SETMASK, [])
        request = json.loads(_read_all(request_fd))
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(log_fd, 1)
        os.dup2(log_fd, 2)
        os.closerange(3, os.sysconf("SC_OPEN_MAX"))
        os.umask(request["umask"])
        uid, gid = request["uid"], request["gid"]
        if uid is not None:
            os.setgroups([gid])
            os.setgid(gid)
            os.setuid(uid)
            if (set(os.getresuid()) != {uid} or set(os.getresgid()) != {gid}
                    or os.getgroups() not in ([gid], [])):
                msg = "could not switch to the user's ids"
                raise RuntimeError(msg)
            if any(_capabilities().values()):
                msg = "capabilities remain after the switch to the user's ids"
                raise RuntimeError(msg)
            prctl(PR_SET_DUMPABLE, 1)
        os.chdir(request["cwd"])
        env = {**request["env"], MARKER: "1"}  # the marker tells operators it was forked
        os.environ.clear()
        os.environ.update(env)
        module = request["module"]
        argv = request.get("argv") or [sys.executable, "-m", module, *request["args"]]
        try:
            show_in_proc(argv, env)
        except OSError as exc:  # still recognised by its folder (config._cluster_process)
            sys.stderr.write("fork server: /proc shows the fork server's command and "
                             f"environment (the kernel refused PR_SET_MM_MAP: {exc})\n")
        import dask.config

        dask.config.refresh()  # the configuration was read from the fork server's environment
        prctl(PR_SET_NAME, module.rsplit(".", 1)[-1].replace("_", "-").encode()[:15])
        sys.argv = [module, *request["args"]]
        import runpy

        # run afresh as __main__ (what it imports stays imported): as `python -m` would
        sys.modules.pop(module, None)
        runpy.run_module(module, run_name="__main__", alter_sys=True)
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):  # the process ends either way
                stream.flush()
        os._exit(code)


def serve(control: socket.socket) -> None:
    """Import the entry points, then fork one child per request until the gateway hangs up."""
    import importlib

    for module in (*MODULES, "dask_gateway.scheduler_preload", "distributed.dashboard.scheduler",
                   "distributed.nanny", "distributed.worker", "runpy"):
        importlib.import_module(module)
    if threading.active_count() != 1:  # forking a process with threads could copy held locks
        msg = "threads were started while importing; refusing to fork"
        raise RuntimeError(msg)
    # children are reaped by the kernel: the gateway watches them by pid (zombie or gone = ended)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    sys.stdout.flush()
    sys.stderr.flush()
    gc.collect()
    gc.freeze()  # what was imported stays out of the children's collections (no copy-on-write)
    while True:
        try:
            message, fds, _, _ = socket.recv_fds(control, 16, 2)
        except ConnectionResetError:
            return
        if not message:  # the gateway closed its end: it stopped
            return
        if message != b"spawn" or len(fds) != 2:
            for fd in fds:
                os.close(fd)
            control.send(b"error")
            continue
        request_fd, log_fd = fds
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            control.detach()  # closed with every other descriptor in _run_child
            _run_child(request_fd, log_fd)
        os.close(request_fd)
        os.close(log_fd)
        control.send(str(pid).encode())


class ForkServer:
    """The gateway's handle on its fork server (started by the gateway's backend)."""

    def __init__(self, log, environment: dict[str, str], timeout: float = 120.0):
        # timeout: for the fork server's reply, which waits for its imports once (seconds on
        # a busy machine); a request timed out is then exec'd, and the server replaced
        self.log = log
        self.environment = environment
        self.timeout = timeout
        self.process: asyncio.subprocess.Process | None = None
        self._control: socket.socket | None = None
        self._lock = threading.Lock()

    @staticmethod
    def serves(cmd: list[str]) -> bool:
        """Whether ``cmd`` is an entry point the fork server runs (``python -m <module> ...``)."""
        return (len(cmd) >= 3 and cmd[1] == "-m" and cmd[2] in MODULES
                and os.path.realpath(cmd[0]) == os.path.realpath(sys.executable))

    async def start(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-P", __file__, str(theirs.fileno()),
                pass_fds=[theirs.fileno()], env={**self.environment, MARKER: "1"},
                stdin=asyncio.subprocess.DEVNULL, cwd="/", start_new_session=True)
        finally:
            theirs.close()
        ours.settimeout(self.timeout)
        self._control = ours
        self.log.info("Fork server for schedulers and workers started (pid %d)", self.process.pid)

    @property
    def alive(self) -> bool:
        return (self._control is not None and self.process is not None
                and self.process.returncode is None)

    def spawn(self, request: dict, log_fd: int) -> int:
        """Fork a child for ``request``; return its pid (blocking: call it in a thread)."""
        payload = json.dumps(request).encode()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        with self._lock:
            control = self._control
            if control is None:
                msg = "the fork server is not running"
                raise ConnectionError(msg)
            try:
                socket.send_fds(control, [b"spawn"], [theirs.fileno(), log_fd])
                theirs.close()
                ours.settimeout(self.timeout)
                ours.sendall(payload)
                ours.close()
                reply = control.recv(64)
                return int(reply)
            except (OSError, ValueError):
                self._close()  # out of step with the server: it is not used again
                raise
            finally:
                theirs.close()
                ours.close()

    def _close(self) -> None:
        if self._control is not None:
            self._control.close()
            self._control = None

    async def stop(self) -> None:
        """Hang up; the fork server exits (its children, users' clusters, keep running)."""
        with self._lock:
            self._close()
        if self.process is not None and self.process.returncode is None:
            try:
                await asyncio.wait_for(self.process.wait(), 10)
            except asyncio.TimeoutError:
                self.process.kill()
                await self.process.wait()


if __name__ == "__main__":  # pragma: no cover - the fork server process
    serve(socket.socket(fileno=int(sys.argv[1])))
