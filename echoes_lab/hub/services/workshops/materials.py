"""Course materials: one git repository per workshop, pulled into every seat with nbgitpuller.

The trainer names a folder or a git repository (URL or local clone). The tool keeps the
workshop's copy in the state directory, readable by the seats' accounts:

* a **folder** becomes a git repository ``<state>/workshops/<NAME>/materials`` with one commit
  per ``create`` / ``update-materials`` (a snapshot of the folder as it is then);
* a **git repository** is mirrored to ``<state>/workshops/<NAME>/materials.git`` (one fetch
  from the network, however many seats).

Every seat then runs nbgitpuller's ``GitPuller`` under its own account into ``~/<NAME>``: the
first time a clone, afterwards nbgitpuller's merge, which keeps every change the trainee made
(conflicts resolve to the trainee's side, ``git merge -Xours``; a trainee's new file in the way
of a new upstream file is renamed, not overwritten) and adds the new files.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import stat
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from echoes_lab.errors import WorkshopError
from echoes_lab.hub.services.workshops.accounts import Account
from echoes_lab.hub.services.workshops.registry import workshops_dir

log = logging.getLogger("echoes.workshops")

#: the tool and the seats' accounts read repositories they do not own, which git >= 2.35.2
#: refuses unless ``safe.directory`` allows it in a *global* config: the git processes run here
#: get one of their own (``GIT_CONFIG_GLOBAL``); nobody's ~/.gitconfig changes
_SAFE = "[safe]\n\tdirectory = *\n"


def _git_env(state_dir: Path) -> dict:
    config = workshops_dir(state_dir) / "gitconfig"
    if not config.exists() or config.read_text() != _SAFE:
        config.write_text(_SAFE)
    os.chmod(config, 0o644)
    return {"GIT_CONFIG_GLOBAL": str(config), "GIT_TERMINAL_PROMPT": "0", "LANG": "C.UTF-8"}


_COMMITTER = ["-c", "user.name=ECHOES Lab workshop", "-c", "user.email=workshop@echoes-lab.invalid"]


def _git(*args: str, env: dict, cwd: Path | None = None, what: str) -> str:
    done = subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, env={**os.environ, **env}
    )
    if done.returncode != 0:
        msg = f"{what}: git {args[0]} failed: {(done.stderr or done.stdout).strip()}"
        raise WorkshopError(msg)
    return done.stdout


def is_git_source(source: str) -> bool:
    if "://" in source or source.startswith("git@") or source.endswith(".git"):
        return True
    return (Path(source) / ".git").exists()


def _readable(folder: Path) -> None:
    """Let the seats' accounts read the repository (never write it).

    The repository is root's own (links were never copied into it), and ``os.fwalk`` neither
    follows links to folders nor is a link's target ever changed: ``chmod`` is applied through
    a descriptor opened with ``O_NOFOLLOW``.
    """
    for _path, _dirs, files, dir_fd in os.fwalk(folder):
        os.chmod(dir_fd, 0o755)
        for name in files:
            try:
                fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dir_fd)
            except OSError:  # a link (ELOOP) or a vanished file: nothing to open up
                continue
            try:
                if stat.S_ISREG(os.fstat(fd).st_mode):
                    os.fchmod(fd, 0o644)
            finally:
                os.close(fd)


_IGNORED = {".git", ".ipynb_checkpoints", "__pycache__"}


def _open_folder(path: Path) -> int:
    """A descriptor of the folder ``path``, reached without following any link on the way.

    Every component is opened with ``O_NOFOLLOW`` relative to the previous one, so a trainer
    cannot swap their course folder (or a folder above it) for a link between a check and the
    copy.
    """
    fd = os.open("/", os.O_RDONLY | os.O_DIRECTORY)
    try:
        for part in path.parts[1:]:
            try:
                nxt = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            except OSError as exc:
                msg = (
                    f"materials {path}: {part!r} is a link or not a folder ({exc.strerror}); "
                    "give the real path of the course folder, with no link on the way"
                )
                raise WorkshopError(msg) from None
            os.close(fd)
            fd = nxt
    except BaseException:
        os.close(fd)
        raise
    return fd


def snapshot(source: Path, dest: Path) -> list[str]:
    """Copy the regular files of ``source`` into ``dest``; what was skipped, and why.

    Runs as root on a folder a trainer controls, so nothing in it is followed: folders are walked
    with ``os.fwalk`` from a descriptor (links to folders are not entered), every file is opened
    with ``O_NOFOLLOW`` relative to its folder's descriptor and checked with ``fstat`` (a regular
    file with a single link). Symbolic links, hard links and special files are skipped and named
    in the returned messages, never copied.
    """
    skipped = []
    top = _open_folder(source)
    try:
        for rel, dirs, files, dir_fd in os.fwalk(".", dir_fd=top):
            dirs[:] = [d for d in dirs if d not in _IGNORED]
            for name in dirs:
                if stat.S_ISLNK(os.lstat(name, dir_fd=dir_fd).st_mode):
                    skipped.append(f"{os.path.normpath(os.path.join(rel, name))}: a symbolic link")
            out_dir = dest / rel
            out_dir.mkdir(parents=True, exist_ok=True)
            for name in files:
                shown = os.path.normpath(os.path.join(rel, name))
                try:
                    fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dir_fd)
                except OSError as exc:
                    skipped.append(
                        f"{shown}: a symbolic link"
                        if exc.errno == errno.ELOOP
                        else f"{shown}: {exc.strerror}"
                    )
                    continue
                with os.fdopen(fd, "rb") as fh:
                    st = os.fstat(fh.fileno())
                    if not stat.S_ISREG(st.st_mode):
                        skipped.append(f"{shown}: not a regular file")
                        continue
                    if st.st_nlink > 1:
                        skipped.append(f"{shown}: a hard link (copy the file itself)")
                        continue
                    with open(out_dir / name, "wb") as out:
                        shutil.copyfileobj(fh, out)
    finally:
        os.close(top)
    return skipped


def publish(
    state_dir: Path, name: str, source: str, skipped: list[str] | None = None
) -> tuple[str, str]:
    """Bring the workshop's repository up to date with ``source``.

    Returns the URL the seats pull from and the commit it now holds. Files of a folder that
    were not copied (links, special files) are logged and appended to ``skipped``.
    """
    base = workshops_dir(state_dir) / name
    base.mkdir(parents=True, exist_ok=True)
    env = _git_env(state_dir)
    if is_git_source(source):
        repo = base / "materials.git"
        src = (
            source if "://" in source or source.startswith("git@") else str(Path(source).resolve())
        )
        if not repo.exists():
            # --no-local: a local path is read through git's pack protocol, never by copying or
            # hard-linking its object folder (which may hold links: CVE-2022-39253)
            _git(
                "clone",
                "--quiet",
                "--mirror",
                "--no-local",
                src,
                str(repo),
                env=env,
                what=f"materials {source}",
            )
        else:
            _git("remote", "set-url", "origin", src, cwd=repo, env=env, what=f"materials {source}")
            _git("remote", "update", "--prune", cwd=repo, env=env, what=f"materials {source}")
    else:
        folder = Path(os.path.abspath(Path(source).expanduser()))
        if not folder.is_dir():
            msg = f"materials {source}: no such folder or git repository"
            raise WorkshopError(msg)
        repo = base / "materials"
        if not repo.exists():
            repo.mkdir()
            _git(
                "init",
                "--quiet",
                "--initial-branch=main",
                cwd=repo,
                env=env,
                what="materials repository",
            )
        # the snapshot is the folder as it is now: tracked files first leave the work tree
        for entry in repo.iterdir():
            if entry.name != ".git":
                shutil.rmtree(
                    entry
                ) if entry.is_dir() and not entry.is_symlink() else entry.unlink()
        for reason in snapshot(folder, repo):
            message = f"materials {source}: skipped {reason}"
            log.warning("%s", message)
            if skipped is not None:
                skipped.append(message)
        _git("add", "--all", cwd=repo, env=env, what="materials repository")
        if _git("status", "--porcelain", cwd=repo, env=env, what="materials repository").strip():
            _git(
                *_COMMITTER,
                "commit",
                "--quiet",
                "-m",
                f"materials from {folder}",
                cwd=repo,
                env=env,
                what="materials repository",
            )
    _readable(repo)
    head = _git("rev-parse", "HEAD", cwd=repo, env=env, what="materials repository").strip()
    return f"file://{repo}", head


def pull_into(account: Account, url: str, folder: str, git_env: dict) -> str:
    """Run nbgitpuller as the seat's account into ``~/folder``; its output, or WorkshopError."""
    target = account.home / folder
    env = {
        **git_env,
        "HOME": str(account.home),
        "PATH": os.environ.get("PATH", os.defpath),
        # the whole history: a merge needs the common ancestor of old and new materials
        "NBGITPULLER_DEPTH": "0",
    }
    done = subprocess.run(
        [sys.executable, "-m", "nbgitpuller.pull", url, "", str(target)],
        capture_output=True,
        text=True,
        env=env,
        **account.run_as(),
    )
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        msg = f"seat {account.name}: materials could not be pulled into {target}: {last}"
        raise WorkshopError(msg)
    return done.stdout


def pull_all(
    state_dir: Path, accounts: list[Account], url: str, folder: str, workers: int = 4
) -> dict[str, str]:
    """Pull into every seat (a few at a time); ``{seat: "ok" or the error}``, never stops early."""
    git_env = _git_env(state_dir)

    def one(account: Account) -> tuple[str, str]:
        try:
            pull_into(account, url, folder, git_env)
            return account.name, "ok"
        except WorkshopError as exc:
            return account.name, str(exc)

    with ThreadPoolExecutor(workers) as pool:
        return dict(pool.map(one, accounts))
