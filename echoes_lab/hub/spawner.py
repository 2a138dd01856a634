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
import hashlib
import os
import pwd
import re
import shutil
import sys
import time

from jupyterhub.spawner import LocalProcessSpawner, set_user_setuid
from tornado.httpclient import AsyncHTTPClient, HTTPClientError
from traitlets import Unicode

from echoes_lab.hub.limits import prepare_limits

#: run as the user: copy the curated notebooks (argv[1]) to ~/examples (argv[2]), never overwriting
_COPY_EXAMPLES = (
    "import shutil, sys; shutil.copytree(sys.argv[1], sys.argv[2], dirs_exist_ok=False, "
    "ignore=shutil.ignore_patterns('.ipynb_checkpoints', '__pycache__'))"
)

_SYSTEM_NAME = re.compile(r"^[a-z_][a-z0-9_-]*$")
#: endings of the hashed account names (old: ``-`` and 7 hex digits; now ``-`` and 16): a hub
#: user whose own name ends like this gets a hashed account too, so that the plain and the
#: hashed names can never meet
_HASHED_TAIL = re.compile(r"-[0-9a-f]{7}$|-[0-9a-f]{16}$")


def _legacy_username(name: str) -> str:
    """The mapping before 2026-11 (could give ``jean.dupont`` and ``jeandupont-c6314bc`` one
    account): still honoured for accounts it created, see :func:`system_username`."""
    candidate = f"jupyter-{name}"
    if len(candidate) <= 32 and _SYSTEM_NAME.match(candidate):
        return candidate
    digest = hashlib.sha256(name.encode()).hexdigest()[:7]
    safe = re.sub(r"[^a-z0-9_-]", "", name.lower())[:15]
    return f"jupyter-{safe}-{digest}"


def system_username(name: str) -> str:
    """The system account of hub user ``name``; two hub users never get the same one.

    * ``jupyter-<name>`` when that is a valid Linux user name (``[a-z_][a-z0-9_-]*``, at most
      32 characters) and ``name`` does not end like a hashed name (``-`` and 7 or 16 hex
      digits) — the convention of The Littlest JupyterHub;
    * otherwise ``jupyter-<up to 7 letters of the name>-<16 hex digits of its SHA-256>``: its
      8th character from the end is a hex digit, where the earlier hashed names have ``-``,
      and no plain name ends like it; two hashed names meet only if SHA-256 does on 64 bits.
    * An account made by the earlier mapping (7 hex digits) stays its user's: it is used when
      it exists and its home folder is this user's (``…/homes/<name>``, set by useradd when
      it was created), so whichever of two colliding users came first keeps it, and the
      other gets a new account of their own.
    """
    candidate = f"jupyter-{name}"
    if len(candidate) <= 32 and _SYSTEM_NAME.match(candidate) and not _HASHED_TAIL.search(name):
        return candidate
    legacy = _legacy_username(name)
    try:
        if os.path.basename(pwd.getpwnam(legacy).pw_dir.rstrip("/")) == name:
            return legacy
    except KeyError:
        pass
    digest = hashlib.sha256(name.encode()).hexdigest()[:16]
    safe = re.sub(r"[^a-z0-9]", "", name.lower())[:7]
    return f"jupyter-{safe}-{digest}"


def isolated(isolation: str) -> bool:
    """Whether users' processes run under their own system accounts: the ``spawner.isolation``
    setting allows it (``auto`` or ``system-users``) and this process runs as root.

    The spawner, the gateway's backend, the reports service and the workshop tools all ask
    this, so a user's server, clusters, scheduled runs and seat share one account.
    """
    return isolation != "none" and os.geteuid() == 0


def useradd_command(name: str, home: str | os.PathLike) -> list[str]:
    """The command creating hub user ``name``'s system account, home ``home`` (not created)."""
    useradd = shutil.which("useradd") or "/usr/sbin/useradd"
    return [useradd, "--system", "--user-group", "--no-create-home", "--home-dir", str(home),
            "--shell", "/bin/bash", system_username(name)]


class EchoesSpawner(LocalProcessSpawner):
    """LocalProcessSpawner with homes under the state directory and optional uid isolation."""

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
