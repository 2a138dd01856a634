"""The ``local`` profile's spawner: one JupyterLab process per user on this machine.

How users are kept apart depends on who runs the hub:

* **as root** (``isolation = "auto"`` or ``"system-users"``): every hub user gets a system
  account ``jupyter-<name>`` (the convention of The Littlest JupyterHub), created on first
  spawn, and the server runs under that uid with a home folder mode 0700 under the state
  directory. Users cannot read each other's files; the shared datasets belong to root and are
  read-only for them.
* **as an ordinary user** (or ``isolation = "none"``): all servers run as the hub's own uid, each
  in its own home folder. There is no operating-system isolation between users; fit for one
  person or a trusted team on a laptop.

Servers are started in their own session, so stopping or restarting the hub leaves them
running (``cleanup_servers = False``) and the next hub finds them again by their pid.
"""

from __future__ import annotations

import asyncio
import os
import pwd
import sys
import time

from jupyterhub.spawner import LocalProcessSpawner, set_user_setuid
from tornado.httpclient import AsyncHTTPClient, HTTPClientError
from traitlets import Unicode
from traitlets.config import LoggingConfigurable

from echoes_lab.hub.accounts import isolated, system_username, useradd_command
from echoes_lab.hub.limits import prepare_limits

#: run as the user: copy the curated notebooks (argv[1]) to ~/examples (argv[2]), never overwriting
_COPY_EXAMPLES = (
    "import shutil, sys; shutil.copytree(sys.argv[1], sys.argv[2], dirs_exist_ok=False, "
    "ignore=shutil.ignore_patterns('.ipynb_checkpoints', '__pycache__'))"
)

class UserHomes(LoggingConfigurable):
    """Users' homes under the state directory, their system accounts (with uid isolation) and
    the curated notebooks in new homes: what the local profile's spawner and the slurm
    profile's (:mod:`echoes_lab.hub.slurm.spawner`) share. A mixin before the spawner class;
    it uses the spawner's ``user`` and ``log``."""

    homes_root = Unicode(config=True, help="Folder holding one home folder per user.")
    shared_data = Unicode(config=True, help="The read-only shared datasets folder.")
    jupyter_path = Unicode("", config=True, help="Extra JUPYTER_PATH (the ECHOES kernel).")
    isolation = Unicode("auto", config=True, help="auto | system-users | none")
    examples_dir = Unicode("", config=True, help="Curated notebooks copied into new homes.")

    @property
    def home_dir(self) -> str:
        return os.path.join(self.homes_root, self.user.name)

    @property
    def isolated(self) -> bool:
        return isolated(self.isolation)

    @property
    def system_user(self) -> str | None:
        return system_username(self.user.name) if self.isolated else None

    async def _ensure_account(self) -> tuple[int, int]:
        """Create the system account and home folder if needed; return uid, gid."""
        home = self.home_dir
        if not self.isolated:
            os.makedirs(home, mode=0o700, exist_ok=True)
            await self._copy_examples(os.getuid(), os.getgid())
            return os.getuid(), os.getgid()
        name = self.system_user
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            # asynchronously: a burst of first logins must not stall the hub's event loop
            proc = await asyncio.create_subprocess_exec(
                *useradd_command(self.user.name, home),
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            )
            output, _ = await proc.communicate()
            try:
                entry = pwd.getpwnam(name)
            except KeyError:
                msg = f"could not create the account {name}: {output.decode()}"
                raise RuntimeError(msg) from None
        os.makedirs(home, mode=0o700, exist_ok=True)
        st = os.stat(home)
        if (st.st_uid, st.st_gid) != (entry.pw_uid, entry.pw_gid):
            os.chown(home, entry.pw_uid, entry.pw_gid)
        await self._copy_examples(entry.pw_uid, entry.pw_gid)
        return entry.pw_uid, entry.pw_gid

    async def _copy_examples(self, uid: int, gid: int) -> None:
        """Give a user the curated notebooks once, in ``~/examples``; never overwrite.

        The copy runs as the user (a child process with the user's uid and gid): the home is
        theirs, and root must not follow a link they may have placed in it. A user who wants the
        current versions renames or deletes their ``examples`` folder.
        """
        target = os.path.join(self.home_dir, "examples")
        if not self.examples_dir or os.path.lexists(target):
            return
        as_user = {} if uid == os.getuid() else {"user": uid, "group": gid, "extra_groups": []}
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-I", "-c", _COPY_EXAMPLES, self.examples_dir, target,
            cwd=self.home_dir, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE, **as_user)
        _, err = await proc.communicate()
        if proc.returncode:
            self.log.warning("could not copy the examples into %s's home: %s", self.user.name,
                             err.decode(errors="replace")[-500:])


class EchoesSpawner(UserHomes, LocalProcessSpawner):
    """LocalProcessSpawner with homes under the state directory and optional uid isolation."""

    async def start(self):
        await self._ensure_account()
        self.notebook_dir = self.home_dir
        # kernels start where the server runs: the user's home, not the hub's folder
        self.popen_kwargs = {**self.popen_kwargs, "cwd": self.home_dir}
        # per-user memory/CPU limits (echoes_lab.hub.limits): cgroups where root may write them
        self._limits = prepare_limits(system_username(self.user.name), self.mem_limit or None,
                                      self.cpu_limit or None)
        if self._limits.mem or self._limits.cpu:
            self.log.info("limits of %s: memory %s bytes, %s CPUs, by %s", self.user.name,
                          self._limits.mem, self._limits.cpu, self._limits.how)
        ip, port = await super().start()
        await self._wait_until_answering(ip, port)
        return ip, port

    async def _wait_until_answering(self, ip: str, port: int) -> None:
        """Return as soon as the new server answers HTTP.

        The hub checks a starting server with exponential back-off (0.2 s doubling to 5 s), so
        a server ready after 2.1 s is often seen only at 3 s or later; polling every 50 ms here
        hands the hub a server that answers its first check. On timeout or exit we return and
        let the hub's own check report the failure as usual.
        """
        client = AsyncHTTPClient()
        base = getattr(self.server, "base_url", "/") if self.server else "/"
        url = f"http://{ip}:{port}{base}api"
        deadline = time.monotonic() + self.http_timeout
        while time.monotonic() < deadline and self.proc is not None and self.proc.poll() is None:
            try:
                resp = await client.fetch(url, raise_error=False, request_timeout=2,
                                          follow_redirects=False)
                if resp.code != 599:
                    return
            except (OSError, HTTPClientError):
                pass  # not listening yet
            await asyncio.sleep(0.05)

    def make_preexec_fn(self, name):
        setup = self._account_preexec_fn(name)
        limits = getattr(self, "_limits", None)
        if limits is None or not limits.active:
            return setup

        def preexec() -> None:
            limits.enter()  # as root, before the setuid: join the user's groups
            if setup is not None:
                setup()

        return preexec

    def _account_preexec_fn(self, name):
        # -- team projects (echoes_lab.hub.services.projects.lab): set_user_setuid plus the
        # Unix groups of the user's current projects, and ~/projects/NAME links made as the user
        if "ECHOES_PROJECTS" in self.environment:
            from echoes_lab.hub.services.projects.lab import preexec_fn

            return preexec_fn(self, self.system_user)
        if self.isolated:
            return set_user_setuid(self.system_user, chdir=False)
        return None

    def user_env(self, env):
        env["USER"] = self.system_user or self.user.name
        env["HOME"] = self.home_dir
        env["SHELL"] = "/bin/bash"
        # the venv's tools first, whether or not the hub was started from an activated venv
        venv_bin = os.path.dirname(sys.executable)
        env["PATH"] = os.pathsep.join([venv_bin, env.get("PATH", os.defpath)])
        env["ECHOES_DATA"] = self.shared_data
        if self.jupyter_path:
            env["JUPYTER_PATH"] = self.jupyter_path
        return env

    async def move_certs(self, paths):
        return paths
