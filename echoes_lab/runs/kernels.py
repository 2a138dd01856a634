"""Fresh kernels for a batch of runs, forked from a template that has imported them once.

Starting an IPython kernel is a new interpreter importing ipykernel, IPython and zmq, and a
report then imports numpy and pandas in it: about 1 CPU s per run, paid again by every run of
a batch, when the run itself takes a few milliseconds. A batch (:func:`echoes_lab.runs.run_many`)
instead starts one *template* process that imports those modules once, and asks it to
``fork`` a kernel for each run, as :mod:`multiprocessing`'s ``forkserver`` does with its
``set_forkserver_preload`` modules. Each kernel is still a process of its own, started for one
run and stopped after it, with nothing of an earlier run in it: the template never runs code
of a notebook; a child of it only changes to the run's folder and environment, then becomes
an ``IPKernelApp`` on the connection file jupyter_client wrote, exactly as the kernel spec's
``python -P -m echoes_lab._kernel -f FILE`` does.

:class:`ForkedProvisioner` is the jupyter_client kernel provisioner that does this for a kernel
spec running this interpreter's ``echoes_lab._kernel``; any other kernel spec (another
interpreter, another language) is started as usual. A template whose pipe closes (the batch's
process ended) stops its kernels and exits; a kernel exits when its template does.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import psutil
from jupyter_client.provisioning import LocalProvisioner

from echoes_lab._kernel import place_folder

#: what the template imports before forking: the kernel itself, and the libraries a report's
#: kernel imports first (``echoes_lab`` readers return pandas objects)
PRELOAD = ("ipykernel.kernelapp", "IPython", "numpy", "pandas", "echoes_lab")
MODULE = "echoes_lab.runs.kernels"
#: variables set for each kernel (its run record, its parent); every other variable a kernel
#: gets must be the template's, which imported the modules under them
PER_RUN = frozenset({"ECHOES_RUN_RECORD", "JPY_PARENT_PID", "JPY_SESSION_NAME"})


#: the kernel spec's arguments after the interpreter, up to the connection file
LAUNCHER = ["-P", "-m", "echoes_lab._kernel", "-f"]


def forkable(argv: list[str]) -> bool:
    """Whether a kernel spec's ``argv`` is this interpreter's ``echoes_lab._kernel``."""
    # the same path, not the same binary: another environment's python links to it too
    return (len(argv) == len(LAUNCHER) + 2 and argv[1:-1] == LAUNCHER
            and os.path.abspath(argv[0]) == os.path.abspath(sys.executable))


def _shared(env: dict[str, str]) -> dict[str, str]:
    """A kernel's environment without what differs from run to run."""
    return {k: v for k, v in env.items() if k not in PER_RUN}


class _Forked:
    """A kernel forked by the template, with the part of ``subprocess.Popen`` the provisioner
    uses. It is the template's child, not ours: it is watched by pid and start time
    (:mod:`psutil`, so a reused pid is not mistaken for it), and a zombie counts as ended."""

    stdin = stdout = stderr = None

    def __init__(self, pid: int):
        self.pid = pid
        self.returncode: int | None = None
        try:
            self._proc: psutil.Process | None = psutil.Process(pid)
        except psutil.NoSuchProcess:
            self._proc, self.returncode = None, -1

    def poll(self) -> int | None:
        if self.returncode is None:
            try:
                gone = (not self._proc.is_running()
                        or self._proc.status() == psutil.STATUS_ZOMBIE)
            except psutil.NoSuchProcess:
                gone = True
            if gone:
                self.returncode = 0
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        try:
            if self._proc is not None:
                self._proc.wait(timeout)
        except psutil.NoSuchProcess:
            pass
        except psutil.TimeoutExpired:
            raise subprocess.TimeoutExpired(["kernel"], timeout) from None
        self.returncode = 0 if self.returncode is None else self.returncode
        return self.returncode

    def send_signal(self, signum: int) -> None:
        if self.poll() is None:
            try:
                self._proc.send_signal(signum)
            except psutil.NoSuchProcess:
                self.returncode = 0

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)


class Template:
    """The process kernels are forked from (one per batch; thread-safe).

    It starts with the first kernel's environment (less :data:`PER_RUN`), so the modules it
    imports see what that kernel's would; a kernel asked for with another environment is not
    its to fork (:meth:`accepts`).
    """

    def __init__(self, preload: tuple[str, ...] = PRELOAD):
        self.preload = preload
        self.proc: subprocess.Popen | None = None
        self.env: dict[str, str] | None = None
        self._lock = threading.Lock()

    def accepts(self, env: dict[str, str]) -> bool:
        with self._lock:
            return self.env is None or self.env == _shared(env)

    def fork(self, connection_file: str, cwd: str | None, env: dict[str, str]) -> _Forked:
        """A new kernel on ``connection_file``, in ``cwd`` with exactly ``env``."""
        request = {"connection_file": connection_file, "cwd": cwd or os.getcwd(), "env": env}
        with self._lock:
            if self.proc is None:
                self.env = _shared(env)
                self.proc = subprocess.Popen(
                    [sys.executable, "-P", "-m", MODULE, *self.preload], stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE, text=True, bufsize=1, env=self.env)
            if self.proc.poll() is not None:
                msg = f"the kernel template exited with {self.proc.returncode}"
                raise RuntimeError(msg)
            self.proc.stdin.write(json.dumps(request) + "\n")
            self.proc.stdin.flush()
            answer = self.proc.stdout.readline()
        if not answer:
            msg = f"the kernel template ended (status {self.proc.wait()})"
            raise RuntimeError(msg)
        reply = json.loads(answer)
        if "error" in reply:
            raise RuntimeError(reply["error"])
        return _Forked(reply["pid"])

    def close(self) -> None:
        """Stop the template (and any kernel of it still running)."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.stdin.close()  # the template stops its kernels and exits
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()


class ForkedProvisioner(LocalProvisioner):
    """jupyter_client's local provisioner, forking this interpreter's IPython kernels from a
    :class:`Template` (``template``, set by the caller) instead of starting an interpreter."""

    template: Template | None = None

    async def launch_kernel(self, cmd: list[str], **kwargs: Any):
        env = kwargs.get("env") or dict(os.environ)
        if self.template is None or not forkable(cmd) or not self.template.accepts(env):
            return await super().launch_kernel(cmd, **kwargs)
        self.process = self.template.fork(cmd[-1], kwargs.get("cwd"), env)
        self.pid = self.pgid = self.process.pid  # the kernel leads a session of its own
        self.cwd = kwargs.get("cwd", Path.cwd())
        return self.connection_info


# -- the template process -----------------------------------------------------------------------

def _child(request: dict, template_pid: int) -> None:
    """In the forked child: become the kernel of ``request``; never returns."""
    code = 1
    try:
        os.setsid()
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(2, 1)  # the template's stdout is its pipe to the batch: the kernel's goes to stderr
        os.close(devnull)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # the kernel's own subprocesses
        signal.signal(signal.SIGINT, signal.default_int_handler)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        # as the kernel spec's launcher in that folder (the template started with -P)
        sys.argv = ["echoes_lab._kernel", "-f", request["connection_file"]]
        place_folder()
        from ipykernel.kernelapp import IPKernelApp

        # the kernel exits when its parent, the template, does (ipykernel's parent poller)
        IPKernelApp.launch_instance(argv=["-f", request["connection_file"],
                                          f"--IPKernelApp.parent_handle={template_pid}"])
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 0
    except BaseException:  # noqa: BLE001 -- reported on stderr, the kernel's log
        import traceback

        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def serve(preload: list[str]) -> int:
    """The template: import ``preload``, then fork one kernel per request line on stdin."""
    import importlib

    for name in preload:
        importlib.import_module(name)
    # our children are reaped by the kernel (the batch watches them by pid): no zombies
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    children: list[int] = []
    me = os.getpid()
    for line in sys.stdin:
        try:
            request = json.loads(line)
            pid = os.fork()
        except (ValueError, OSError) as exc:
            sys.stdout.write(json.dumps({"error": f"{type(exc).__name__}: {exc}"}) + "\n")
            sys.stdout.flush()
            continue
        if pid == 0:
            _child(request, me)
        children.append(pid)
        sys.stdout.write(json.dumps({"pid": pid}) + "\n")
        sys.stdout.flush()
    for pid in children:  # the batch is gone: so are its kernels (each leads its session)
        try:
            if psutil.Process(pid).ppid() == me:  # still ours, not a reused pid
                os.killpg(pid, signal.SIGKILL)
        except (psutil.NoSuchProcess, ProcessLookupError, PermissionError):
            pass
    return 0


if __name__ == "__main__":
    sys.exit(serve(sys.argv[1:]))
