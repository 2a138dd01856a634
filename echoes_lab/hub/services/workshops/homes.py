"""Where workshops keep people's files: the account, home and archive work behind one interface.

:class:`Homes` is what the workshop verbs (:mod:`~echoes_lab.hub.services.workshops.manage`)
need from the storage of users' homes; everything the hub itself holds (users, groups, servers,
tokens, shares) goes through the hub's REST API in ``manage`` and is the same on every profile.

``local`` (:class:`LocalHomes`)
    Homes are folders under ``<state>/homes`` on this machine, owned by the accounts
    ``jupyter-<name>`` when the hub runs as root. **Root never works inside a home**: it creates
    the home folder itself (``O_NOFOLLOW``, ``fchown``, relative to the homes folder's
    descriptor) and does everything else in a child process running as the home's owner
    (``subprocess`` with ``user=``/``group=``/``extra_groups=[]``, then the small script
    :mod:`~echoes_lab.hub.services.workshops._asuser` or GNU tar). Reading a seat's files
    happens as the seat, writing into a trainer's folder as the trainer; the two meet only in a
    pipe. A link planted in a home then reaches only what its owner could reach already.

``slurm``
    The same :class:`LocalHomes`: homes are under ``<state>/homes`` on the file system every
    node mounts (``[slurm] shared_fs``), the accounts are this machine's (and the nodes'), and
    the seats' servers are Slurm jobs stopped through the hub's API like any server.

``kubernetes`` (not implemented here; how it plugs in)
    The same five methods, with the hub's KubeSpawner and the profile's storage class:

    * :meth:`Homes.ensure`: nothing to create up front. A seat's home is the PersistentVolumeClaim
      ``claim-{username}`` that KubeSpawner makes on the seat's first start
      (``singleuser.storage.type: dynamic`` in the Zero to JupyterHub chart); there are no Unix
      accounts (every pod runs as uid 1000 with ``fsGroup``), so ``Account.isolated`` is False.
    * :meth:`Homes.pull_materials`: the materials repository is published where pods can reach
      it (a git server or a ``git daemon`` Service), and each seat pulls it on its first start
      with nbgitpuller (a ``postStart`` lifecycle hook ``gitpuller URL main ~/NAME``) rather than
      the tool writing into PVCs it cannot mount.
    * :meth:`Homes.put_files` / :meth:`Homes.collect` / :meth:`Homes.archive`: a Kubernetes Job
      per seat mounting the seat's claim read-only and the trainer's claim read-write, running
      as the pod's uid (``securityContext.runAsUser``), executing ``_asuser.py pack`` / ``tar``
      exactly as the local child processes do; or, for a seat whose server is running, the same
      commands through the server's terminals API. The hub's API token of the workshops service
      never enters the Job.
    * :meth:`Homes.stop_processes`: stopping the seat's servers through the hub API deletes
      their pods, and with them every process; nothing else to do.

    Only :func:`homes_for` chooses; ``echoes-lab workshop`` keeps the same commands.
"""

from __future__ import annotations

import abc
import contextlib
import csv
import hashlib
import io
import logging
import os
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

from echoes_lab.errors import WorkshopError
from echoes_lab.hub.services.workshops import materials as _materials
from echoes_lab.hub.services.workshops.accounts import Account, ensure_account
from echoes_lab.hub.settings import Settings

log = logging.getLogger("echoes.workshops")

#: the child script run as a user (by path: it imports nothing of ``echoes_lab``)
ASUSER = Path(__file__).with_name("_asuser.py")
MANIFEST_FIELDS = ["seat", "file", "sha256", "bytes", "modified"]


class Homes(abc.ABC):
    """The account, home and archive work of workshops on one deployment profile."""

    def __init__(self, settings: Settings):
        self.settings = settings

    @abc.abstractmethod
    def ensure(self, name: str) -> Account:
        """The user's account and home, created if missing."""

    @abc.abstractmethod
    def put_files(self, account: Account, folder: str, files: dict[str, bytes]) -> Path:
        """Write ``files`` (name: content, mode 0600) into ``~account/folder``, as its owner."""

    @abc.abstractmethod
    def pull_materials(self, accounts: list[Account], url: str, folder: str) -> dict[str, str]:
        """Merge the materials repository at ``url`` into every ``~seat/folder``."""

    @abc.abstractmethod
    def collect(
        self, seats: list[str], patterns: list[str], trainer: Account, folder: str
    ) -> list[dict]:
        """Copy each seat's files matching ``patterns`` into ``~trainer/folder/<seat>/``;
        returns the manifest rows (``MANIFEST_FIELDS``)."""

    @abc.abstractmethod
    def archive(self, seat: str, trainer: Account, folder: str) -> Path | None:
        """Archive ``~seat`` into ``~trainer/folder/<seat>.tar.gz`` (kept if it exists)."""

    @abc.abstractmethod
    def stop_processes(self, name: str) -> int:
        """End every process of the user's account (not only the server); how many."""


def _run_as(account: Account) -> dict:
    env = {"PATH": os.environ.get("PATH", os.defpath), "HOME": str(account.home), "LANG": "C.UTF-8"}
    return {**account.run_as(), "env": env}


def _failed(what: str, account: Account, stderr: bytes) -> WorkshopError:
    text = stderr.decode(errors="replace").strip().splitlines()
    msg = (
        f"{what} as {account.name}'s account failed: {text[-1] if text else 'no message'} "
        f"(is a folder on the way a link, or not writable by {account.name}?)"
    )
    return WorkshopError(msg)


class _Hashing:
    """A file object that computes the SHA-256 of what is read through it."""

    def __init__(self, raw):
        self.raw, self.digest = raw, hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        self.digest.update(data)
        return data


class LocalHomes(Homes):
    """Homes as folders on this machine (the ``local`` profile); see the module's docstring."""

    def ensure(self, name: str) -> Account:
        return ensure_account(self.settings, name)

    def _writer(self, account: Account, rel: str, keep: bool = False) -> subprocess.Popen:
        args = [sys.executable, "-I", str(ASUSER), "write", rel, *(["--keep"] if keep else [])]
        return subprocess.Popen(
            args, stdin=subprocess.PIPE, stderr=subprocess.PIPE, **_run_as(account)
        )

    def put_files(self, account: Account, folder: str, files: dict[str, bytes]) -> Path:
        for name, data in files.items():
            proc = self._writer(account, f"{folder}/{name}")
            _, err = proc.communicate(data)
            if proc.returncode != 0:
                what = f"writing ~{account.name}/{folder}/{name}"
                raise _failed(what, account, err)
        return account.home / folder

    def pull_materials(self, accounts: list[Account], url: str, folder: str) -> dict[str, str]:
        return _materials.pull_all(self.settings.state_dir, accounts, url, folder)

    def collect(
        self, seats: list[str], patterns: list[str], trainer: Account, folder: str
    ) -> list[dict]:
        rows: list[dict] = []
        # one extracting tar as the trainer for the whole collection; its input is built here
        # from what each seat's own account could read (members: regular files only)
        writer = subprocess.Popen(
            ["tar", "-x", "-f", "-", "--no-same-owner"],
            stdin=subprocess.PIPE,
            stderr=subprocess.PIPE,
            **_run_as(trainer),
        )
        try:
            with tarfile.open(fileobj=writer.stdin, mode="w|") as out:
                for seat in seats:
                    home = self.settings.homes_dir / seat
                    if not home.is_dir() or home.is_symlink():
                        continue
                    rows += self._collect_seat(self.ensure(seat), patterns, out, folder)
                manifest = io.StringIO()
                table = csv.DictWriter(manifest, fieldnames=MANIFEST_FIELDS)
                table.writeheader()
                table.writerows(rows)
                data = manifest.getvalue().encode()
                info = tarfile.TarInfo(f"{folder}/manifest.csv")
                info.size, info.mode, info.mtime = len(data), 0o600, time.time()
                out.addfile(info, io.BytesIO(data))
        except BrokenPipeError:
            pass  # the writer stopped early: its message is read below
        with contextlib.suppress(BrokenPipeError):
            writer.stdin.close()
        err = writer.stderr.read()
        if writer.wait() != 0:
            what = f"writing into ~{trainer.name}/{folder}"
            raise _failed(what, trainer, err)
        return rows

    def _collect_seat(
        self, seat: Account, patterns: list[str], out: tarfile.TarFile, folder: str
    ) -> list[dict]:
        from datetime import datetime, timezone

        reader = subprocess.Popen(
            [sys.executable, "-I", str(ASUSER), "pack", *patterns],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            **_run_as(seat),
        )
        rows = []
        with tarfile.open(fileobj=reader.stdout, mode="r|") as tar:
            for member in tar:
                if not member.isreg() or member.name.startswith(("/", "..")):
                    continue
                source = _Hashing(tar.extractfile(member))  # streamed: files may be large
                info = tarfile.TarInfo(f"{folder}/{seat.name}/{member.name}")
                info.size, info.mode, info.mtime = member.size, 0o600, member.mtime
                out.addfile(info, source)
                rows.append(
                    {
                        "seat": seat.name,
                        "file": member.name,
                        "sha256": source.digest.hexdigest(),
                        "bytes": member.size,
                        "modified": datetime.fromtimestamp(member.mtime, timezone.utc).isoformat(
                            timespec="seconds"
                        ),
                    }
                )
        err = reader.stderr.read()
        if reader.wait() != 0:
            log.warning("%s", _failed(f"reading ~{seat.name}", seat, err))
        return rows

    def archive(self, seat: str, trainer: Account, folder: str) -> Path | None:
        home = self.settings.homes_dir / seat
        if not home.is_dir() or home.is_symlink():
            return None
        account = self.ensure(seat)
        rel = f"{folder}/{seat}.tar.gz"
        # the seat's account reads its home (links are stored as links, never followed); the
        # trainer's account writes the archive; root only connects the two
        reader = subprocess.Popen(
            [sys.executable, "-I", str(ASUSER), "archive", seat],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            **_run_as(account),
        )
        writer = self._writer(trainer, rel, keep=True)
        for chunk in iter(lambda: reader.stdout.read(1 << 20), b""):
            try:
                writer.stdin.write(chunk)
            except BrokenPipeError:
                break  # --keep: the archive exists already (exit 3), or the writer failed
        reader.stdout.close()
        with_errors = reader.stderr.read()
        with contextlib.suppress(BrokenPipeError):
            writer.stdin.close()
        werr = writer.stderr.read()
        wcode, rcode = writer.wait(), reader.wait()
        if wcode not in (0, 3):
            what = f"writing ~{trainer.name}/{rel}"
            raise _failed(what, trainer, werr)
        if rcode != 0 and wcode == 0:
            what = f"archiving ~{seat}"
            raise _failed(what, account, with_errors)
        return trainer.home / rel

    def stop_processes(self, name: str) -> int:
        account = self.ensure(name)
        return kill_processes(account)


def _belongs(proc, account: Account) -> bool:
    import psutil

    try:
        if account.isolated:
            return account.uid in proc.uids()
        # one shared uid (hub not run as root): the hub's spawner marks every process it
        # starts for a user with JUPYTERHUB_USER, and children (setsid or not) inherit it
        return proc.environ().get("JUPYTERHUB_USER") == account.name
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return False


def kill_processes(account: Account, rounds: int = 5) -> int:
    """SIGKILL every process of ``account`` (detached ones too), until none is left.

    Under root a seat has a uid of its own, so "its processes" is exact: every process whose
    real, effective or saved uid is the seat's. Repeated because a process may fork while its
    siblings are being killed.
    """
    import psutil

    if account.isolated and account.uid == 0:
        msg = f"refusing to kill the processes of {account.name}: its account is root"
        raise WorkshopError(msg)
    me = os.getpid()
    killed = 0
    for _ in range(rounds):
        procs = [p for p in psutil.process_iter() if p.pid != me and _belongs(p, account)]
        if not procs:
            break
        for proc in procs:
            try:
                proc.send_signal(signal.SIGKILL)
                killed += 1
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
        psutil.wait_procs(procs, timeout=5)
    return killed


def homes_for(settings: Settings) -> Homes:
    """The :class:`Homes` of the settings' profile."""
    if settings.profile in ("local", "slurm"):  # slurm: homes on the shared file system,
        return LocalHomes(settings)               # which the hub's machine mounts too
    msg = (
        f"workshops keep homes on the 'local' profile only so far, not {settings.profile!r}; "
        "see echoes_lab.hub.services.workshops.homes for the Kubernetes design"
    )
    raise WorkshopError(msg)
