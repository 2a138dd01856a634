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

import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from echoes_lab.errors import WorkshopError
from echoes_lab.hub.services.workshops.accounts import Account
from echoes_lab.hub.services.workshops.registry import workshops_dir

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
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, **env})
    if done.returncode != 0:
        raise WorkshopError(f"{what}: git {args[0]} failed: {(done.stderr or done.stdout).strip()}")
    return done.stdout


def is_git_source(source: str) -> bool:
    if "://" in source or source.startswith("git@") or source.endswith(".git"):
        return True
    return (Path(source) / ".git").exists()


def _readable(folder: Path) -> None:
    """Let the seats' accounts read the repository (never write it)."""
    for path, dirs, files in os.walk(folder):
        os.chmod(path, 0o755)
        for name in files:
            os.chmod(os.path.join(path, name), 0o644)


def publish(state_dir: Path, name: str, source: str) -> tuple[str, str]:
    """Bring the workshop's repository up to date with ``source``.

    Returns the URL the seats pull from and the commit it now holds.
    """
    base = workshops_dir(state_dir) / name
    base.mkdir(parents=True, exist_ok=True)
    env = _git_env(state_dir)
    if is_git_source(source):
        repo = base / "materials.git"
        src = source if "://" in source or source.startswith("git@") else str(Path(source).resolve())
        if not repo.exists():
            _git("clone", "--quiet", "--mirror", src, str(repo), env=env, what=f"materials {source}")
        else:
            _git("remote", "set-url", "origin", src, cwd=repo, env=env, what=f"materials {source}")
            _git("remote", "update", "--prune", cwd=repo, env=env, what=f"materials {source}")
    else:
        folder = Path(source).expanduser().resolve()
        if not folder.is_dir():
            raise WorkshopError(f"materials {source}: no such folder or git repository")
        repo = base / "materials"
        if not repo.exists():
            repo.mkdir()
            _git("init", "--quiet", "--initial-branch=main", cwd=repo, env=env, what="materials repository")
        # the snapshot is the folder as it is now: tracked files first leave the work tree
        for entry in repo.iterdir():
            if entry.name != ".git":
                shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()
        shutil.copytree(folder, repo, dirs_exist_ok=True, symlinks=True,
                        ignore=shutil.ignore_patterns(".git", ".ipynb_checkpoints", "__pycache__"))
        _git("add", "--all", cwd=repo, env=env, what="materials repository")
        if _git("status", "--porcelain", cwd=repo, env=env, what="materials repository").strip():
            _git(*_COMMITTER, "commit", "--quiet", "-m", f"materials from {folder}", cwd=repo,
                 env=env, what="materials repository")
    _readable(repo)
    head = _git("rev-parse", "HEAD", cwd=repo, env=env, what="materials repository").strip()
    return f"file://{repo}", head


def pull_into(account: Account, url: str, folder: str, git_env: dict) -> str:
    """Run nbgitpuller as the seat's account into ``~/folder``; its output, or WorkshopError."""
    target = account.home / folder
    env = {**git_env, "HOME": str(account.home), "PATH": os.environ.get("PATH", os.defpath),
           # the whole history: a merge needs the common ancestor of old and new materials
           "NBGITPULLER_DEPTH": "0"}
    done = subprocess.run([sys.executable, "-m", "nbgitpuller.pull", url, "", str(target)],
                          capture_output=True, text=True, env=env, **account.run_as())
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise WorkshopError(f"seat {account.name}: materials could not be pulled into {target}: {last}")
    return done.stdout


def pull_all(state_dir: Path, accounts: list[Account], url: str, folder: str,
             workers: int = 4) -> dict[str, str]:
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
