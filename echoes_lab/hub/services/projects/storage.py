"""Project folders on the shared storage of the ``local`` profile.

Run by the hub's administrator (``echoes-lab project``). Under root (``spawner.isolation``
allows system accounts) every project gets a Unix group ``echoes-p-NAME`` and its folder is
``root:echoes-p-NAME``, mode 2770 (setgid: new files belong to the project's group) with
default ACLs ``group::rwx``, ``other::---`` and the project's group, so files stay writable by
every member whatever their umask (POSIX.1e ACLs, ``acl(5)``). Members get the group in their
server's supplementary groups at start (:mod:`.lab`); non-members cannot even list the folder.

Without root there is one account for everybody: the folder is plain (mode 0700 of the hub's
account) and **not isolated** — every user's server can read every project.

Root never follows a path a user controls: the projects root and each project folder are
created and changed through file descriptors opened with ``O_NOFOLLOW`` relative to their
parent (``dir_fd``).

**Leavers keep nothing** (:func:`revoke`, run at every removal and at archive). Inside a
project folder root only walks the tree folder by folder (:func:`_walk`: every folder opened
relative to its parent's descriptor with ``O_NOFOLLOW | O_DIRECTORY``, so a link swapped in
mid-walk leads nowhere) and changes a file only through a descriptor opened with
``O_NOFOLLOW | O_NONBLOCK`` and checked with ``fstat`` to be a regular file:

* setuid and setgid bits are stripped from every file (a member's ``cp /bin/bash; chmod
  2755`` would otherwise give the project's group to whoever runs it, for ever). The bits
  belong to the inode, so a hard link the leaver made in their home loses them too. Stripping
  was chosen over a ``nosuid`` bind mount: mounting needs ``CAP_SYS_ADMIN`` (absent in most
  containers), must be redone at every boot, and the folder stays reachable by its unmounted
  path, where ``nosuid`` does not apply;
* files and folders the leaver owns become root's (group and mode kept, so members keep
  their access): the owner's rights would let a hard link kept in their home go on reading
  and writing that file;
* outside the folder, the same bits are stripped from every file of the project's group in
  the leavers' homes and the machine's world-writable folders (``/tmp``, ``/var/tmp``,
  ``/dev/shm``): a member may ``chgrp`` a file of his own to any of his groups and make it
  setgid (``chmod(2)``), so ``cp /bin/bash ~/.gsh; chgrp echoes-p-NAME ~/.gsh; chmod 2755
  ~/.gsh`` made a key the project folder's walk never saw (issue 26, second round). At
  archive, the homes walked are those of the members given by the caller;
* processes of the leaver (at archive: of anybody) that still hold the project's group —
  servers are restarted through the hub beforehand, this catches what they left (a
  ``nohup``, a setgid shell) — are killed (``/proc/PID/status``: ``Gid`` and ``Groups``).

At archive every file and folder also loses its write bits (``chmod`` also narrows the ACL
mask, so the project's ACL entries lose write too): the folder is read-only to all.
"""

from __future__ import annotations

import contextlib
import errno
import grp
import logging
import os
import pwd
import resource
import shutil
import signal
import stat
import struct
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from echoes_lab.hub.accounts import isolated
from echoes_lab.hub.services.projects import ProjectError, check_name, unix_group
from echoes_lab.hub.settings import Settings

_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
#: a file root changes inside a project: never through a link, never blocking on a FIFO
_FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
_SPECIAL = stat.S_ISUID | stat.S_ISGID
_WRITE = stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH
log = logging.getLogger("echoes.projects")


def projects_root(settings: Settings) -> Path:
    return settings.path(settings.projects.folder, settings.state_dir)


def folder(settings: Settings, project: str) -> Path:
    return projects_root(settings) / check_name(project)


def _open_root(settings: Settings) -> int:
    """The projects root, mode 0711: members pass through to their project; nobody lists."""
    root = projects_root(settings)
    root.parent.mkdir(parents=True, exist_ok=True)
    parent = os.open(root.parent, _DIR)
    try:
        with contextlib.suppress(FileExistsError):
            os.mkdir(root.name, 0o711, dir_fd=parent)
        fd = os.open(root.name, _DIR, dir_fd=parent)
    except OSError as exc:
        os.close(parent)
        msg = f"{root}: cannot use it as the projects folder ({exc.strerror}); it must be a folder"
        raise ProjectError(msg) from None
    os.close(parent)
    st = os.fstat(fd)
    if st.st_uid == os.geteuid():
        os.fchmod(fd, 0o711)
    return fd


def ensure_unix_group(project: str) -> int:
    """The gid of ``echoes-p-NAME``, created (``groupadd --system``) if missing."""
    name = unix_group(project)
    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        pass
    groupadd = shutil.which("groupadd") or "/usr/sbin/groupadd"
    done = subprocess.run([groupadd, "--system", name], capture_output=True, text=True)
    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        why = done.stderr.strip() or done.stdout.strip()
        msg = f"could not create the Unix group {name}: {why}"
        raise ProjectError(msg) from None


def _set_acl(fd: int, group: str) -> None:
    """Default and access ACLs on the folder open as ``fd`` (setfacl through /proc/self/fd)."""
    setfacl = shutil.which("setfacl")
    if not setfacl:
        msg = "setfacl is missing: install the Debian package 'acl'"
        raise ProjectError(msg)
    spec = (f"g:{group}:rwx,m::rwx,o::---,"
            f"d:u::rwx,d:g::rwx,d:g:{group}:rwx,d:m::rwx,d:o::---")
    # the path is setfacl's own inherited descriptor: the folder we opened, not a name to follow
    done = subprocess.run([setfacl, "-m", spec, f"/proc/self/fd/{fd}"], pass_fds=(fd,),
                          capture_output=True, text=True)
    if done.returncode:
        msg = f"setfacl on the project folder failed: {done.stderr.strip()}"
        raise ProjectError(msg)


def ensure_folder(settings: Settings, project: str) -> Path:
    """Create (or repair) the project's folder with its owner, mode and ACLs; return its path.

    Returns
    -------
    Path
        ``<state>/<projects.folder>/NAME``.
    """
    check_name(project)
    root_fd = _open_root(settings)
    try:
        with contextlib.suppress(FileExistsError):
            os.mkdir(project, 0o700, dir_fd=root_fd)
        try:
            fd = os.open(project, _DIR, dir_fd=root_fd)
        except OSError as exc:
            msg = (f"{folder(settings, project)} is not a folder ({exc.strerror}): "
                   f"move it away and run the command again")
            raise ProjectError(msg) from None
        try:
            if isolated(settings.spawner.isolation):
                gid = ensure_unix_group(project)
                os.fchown(fd, 0, gid)
                os.fchmod(fd, 0o2770)
                _set_acl(fd, unix_group(project))
            else:
                os.fchmod(fd, 0o700)
        finally:
            os.close(fd)
    finally:
        os.close(root_fd)
    return folder(settings, project)


def isolation_note(settings: Settings) -> str:
    """One sentence saying whether project folders are protected on this machine."""
    if isolated(settings.spawner.isolation):
        return "writable by its members only (Unix group, setgid folder, default ACLs)"
    return ("NOT isolated: the hub does not run as root, so every user's server runs as one "
            "account and can read and write every project folder")


@dataclass
class Revoked:
    """What :func:`revoke` changed in a project folder (for the command's and page's reply)."""

    stripped: list[str] = field(default_factory=list)  # setuid/setgid removed (relative paths)
    disowned: int = 0  # files and folders of leavers given to root
    killed: list[int] = field(default_factory=list)  # pids of processes holding the group
    read_only: bool = False


def _open_project(settings: Settings, project: str) -> int:
    root_fd = _open_root(settings)
    try:
        return os.open(check_name(project), _DIR, dir_fd=root_fd)
    except OSError as exc:
        msg = (f"{folder(settings, project)} is not a folder ({exc.strerror}): "
               f"run 'echoes-lab project create' to repair it")
        raise ProjectError(msg) from None
    finally:
        os.close(root_fd)


#: ``acl_ea_entry`` tags of a named user and a named group (``acl/libacl.h``; the
#: ``system.posix_acl_access`` attribute: a 4-byte version, then 8-byte entries tag, perm, id)
_ACL_USER, _ACL_GROUP = 0x02, 0x08


def _foreign_acl(fd: int, gid: int) -> bool:
    """Whether the file's access ACL names a user, or a group other than ``gid``."""
    try:
        raw = os.getxattr(fd, "system.posix_acl_access")
    except OSError:
        return False  # no ACL (ENODATA) or no ACL support
    for off in range(4, len(raw) - 7, 8):
        tag, _perm, ident = struct.unpack_from("<HHI", raw, off)
        if tag == _ACL_USER or (tag == _ACL_GROUP and ident != gid):
            return True
    return False


def _drop_acl(fd: int) -> None:
    """Remove the file's extended ACL entries (``setfacl -b``; owner, group, others stay)."""
    setfacl = shutil.which("setfacl")
    if not setfacl:
        msg = "setfacl is missing: install the Debian package 'acl'"
        raise ProjectError(msg)
    done = subprocess.run([setfacl, "-b", f"/proc/self/fd/{fd}"], pass_fds=(fd,),
                          capture_output=True, text=True)
    if done.returncode:
        msg = f"setfacl -b on a leaver's file failed: {done.stderr.strip()}"
        raise ProjectError(msg)


def _fix(fd: int, uids: set[int], read_only: bool, is_dir: bool,
         gid: int = -1) -> tuple[bool, bool]:
    """Strip setuid/setgid (files), give leavers' inodes to root, drop write bits (archive).

    A leaver's inode becomes ``root:<project group>`` with no access for others and no ACL
    entry naming a user or another group: a hard link he made in his home while a member
    reaches the inode without the project folder, and its mode, group (his own) or ACL would
    have kept it his to read and write (issue 26, fourth round). Returns whether special bits
    were stripped and whether the owner was changed.
    """
    st = os.fstat(fd)
    mode = stat.S_IMODE(st.st_mode)
    disowned = st.st_uid in uids
    if disowned:
        # chown clears setuid/setgid of a file by itself
        os.fchown(fd, 0, gid)
        if not is_dir and _foreign_acl(fd, gid):
            _drop_acl(fd)  # (a folder keeps its default ACL: no link reaches into a folder)
        mode = stat.S_IMODE(os.fstat(fd).st_mode)
    # folders keep setgid: it is what makes new files the project's group
    new = mode if is_dir else mode & ~_SPECIAL
    if disowned:
        new &= ~stat.S_IRWXO
    if read_only:
        new &= ~_WRITE
    if new != stat.S_IMODE(os.fstat(fd).st_mode):
        os.fchmod(fd, new)
    return (not is_dir and bool(mode & _SPECIAL)), disowned


def _walk(top: int, skipped: list[str]):
    """Every entry under the folder open as ``top``: ``(path, fd, None)`` for each folder (open
    as ``fd``), then ``(path, fd, name)`` for each other entry in it.

    Depth first and without recursion (a member's folder 5000 levels deep is walked, where
    :func:`os.fwalk` recurses); only the folders on the current path are open, each opened
    relative to its parent with ``O_NOFOLLOW | O_DIRECTORY``, so a link swapped in for a
    folder is refused, never followed. Folders that cannot be opened or listed are added to
    ``skipped``.
    """
    with contextlib.suppress(ValueError, OSError):  # more open folders allowed, up to the cap
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        want = hard if hard != resource.RLIM_INFINITY else 1 << 20
        if soft != resource.RLIM_INFINITY and soft < want:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    first = os.dup(top)
    stack = [(".", first, iter(sorted(os.listdir(first))))]
    try:
        yield ".", first, None
        while stack:
            path, fd, names = stack[-1]
            name = next(names, None)
            if name is None:
                os.close(fd)
                stack.pop()
                continue
            try:
                st = os.stat(name, dir_fd=fd, follow_symlinks=False)
            except OSError:
                continue  # gone meanwhile
            if not stat.S_ISDIR(st.st_mode):
                yield path, fd, name
                continue
            where = os.path.normpath(os.path.join(path, name))
            try:
                child = os.open(name, _DIR, dir_fd=fd)
            except OSError as exc:
                if exc.errno not in (errno.ENOENT, errno.ELOOP, errno.ENOTDIR):
                    skipped.append(where)  # not swapped or removed: a folder left unchecked
                continue
            try:
                entries = iter(sorted(os.listdir(child)))
            except OSError:
                os.close(child)
                skipped.append(where)
                continue
            stack.append((where, child, entries))
            yield where, child, None
    finally:
        for _, fd, _ in stack:
            os.close(fd)


def secure_tree(settings: Settings, project: str, leavers: list[str] = (),
                read_only: bool = False) -> Revoked:
    """Walk the project folder as root, never following a link (see the module's docstring).

    Parameters
    ----------
    leavers
        System account names whose files become root's.
    read_only
        Drop every write bit (archive).
    """
    uids = set()
    for name in leavers:
        with contextlib.suppress(KeyError):
            uids.add(pwd.getpwnam(name).pw_uid)
    done = Revoked(read_only=read_only)
    skipped: list[str] = []
    try:
        gid = grp.getgrnam(unix_group(project)).gr_gid
    except KeyError:
        gid = -1  # no group (not isolated): leavers' inodes keep theirs
    top = _open_project(settings, project)
    try:
        for path, fd, name in _walk(top, skipped):
            if name is None:  # the folder itself, open as fd
                done.disowned += _fix(fd, uids, read_only, is_dir=True, gid=gid)[1]
                continue
            try:
                st = os.stat(name, dir_fd=fd, follow_symlinks=False)
                if not stat.S_ISREG(st.st_mode):
                    continue  # links (not followed), FIFOs, sockets
                if not (st.st_mode & (_SPECIAL | (_WRITE if read_only else 0))
                        or st.st_uid in uids):
                    continue
                file_fd = os.open(name, _FILE, dir_fd=fd)
            except OSError:
                continue  # gone or swapped for a link meanwhile: nothing to change
            try:
                if stat.S_ISREG(os.fstat(file_fd).st_mode):
                    special, owned = _fix(file_fd, uids, read_only, is_dir=False, gid=gid)
                    done.disowned += owned
                    if special:
                        done.stripped.append(os.path.normpath(os.path.join(path, name)))
            finally:
                os.close(file_fd)
    finally:
        os.close(top)
    if skipped:
        msg = (f"project {project}: {len(skipped)} folder(s) could not be checked for setuid/"
               f"setgid files (e.g. {skipped[0]}); move them out of the project folder and run "
               f"the command again")
        raise ProjectError(msg)
    for path in done.stripped:
        log.warning("project %s: setuid/setgid bits removed from %s", project, path)
    return done


#: folders anybody may write in, where a member may have left a setgid file of the group
_SHARED_TEMP = ("/tmp", "/var/tmp", "/dev/shm")


def strip_group_keys(project: str, tops: list[str]) -> list[str]:
    """Strip setuid/setgid from every regular file of the project's group under ``tops``.

    A member can give a file of his own the project's group and the setgid bit anywhere he
    may write (``chown(2)``/``chmod(2)`` allow both to a member of the group); such a file
    outside the project folder would give him the group after he left. Walked as
    :func:`secure_tree` walks (no link followed, files changed through ``O_NOFOLLOW``
    descriptors); folders that cannot be read are passed over (nothing of the leaver's can be
    run from a folder nobody can read). Returns the paths changed.
    """
    try:
        gid = grp.getgrnam(unix_group(project)).gr_gid
    except KeyError:
        return []
    stripped: list[str] = []
    for top in dict.fromkeys(tops):
        try:
            top_fd = os.open(top, _DIR)
        except OSError:
            continue  # no such home (never started) or not a folder
        try:
            for path, fd, name in _walk(top_fd, []):
                if name is None:
                    continue
                try:
                    st = os.stat(name, dir_fd=fd, follow_symlinks=False)
                    if not (stat.S_ISREG(st.st_mode) and st.st_gid == gid
                            and st.st_mode & _SPECIAL):
                        continue
                    file_fd = os.open(name, _FILE, dir_fd=fd)
                except OSError:
                    continue  # gone or swapped for a link meanwhile
                try:
                    st = os.fstat(file_fd)
                    if (stat.S_ISREG(st.st_mode) and st.st_gid == gid
                            and st.st_mode & _SPECIAL):
                        os.fchmod(file_fd, stat.S_IMODE(st.st_mode) & ~_SPECIAL)
                        stripped.append(os.path.normpath(os.path.join(top, path, name)))
                finally:
                    os.close(file_fd)
        finally:
            os.close(top_fd)
    for path in stripped:
        log.warning("project %s: setuid/setgid bits removed from %s (outside the project "
                    "folder)", project, path)
    return stripped


def _holds(pid: int, gid: int, uids: set[int] | None) -> bool:
    """Whether process ``pid`` has ``gid`` (real, effective, saved, fs or supplementary) and,
    when ``uids`` is given, runs as one of them (real, effective or saved uid)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            fields = dict(line.split(":", 1) for line in f if ":" in line)
    except OSError:
        return False  # ended meanwhile
    gids = {int(g) for key in ("Gid", "Groups") for g in fields.get(key, "").split()}
    proc_uids = {int(u) for u in fields.get("Uid", "").split()[:3]}
    if gid not in gids or 0 in proc_uids:
        return False
    return uids is None or bool(proc_uids & uids)


def kill_group_holders(project: str, leavers: list[str] | None) -> list[int]:
    """SIGKILL every process holding the project's Unix group: of ``leavers`` (system account
    names), or of anybody but root when ``leavers`` is None (archive). Rescans until none is
    left, so a process forking meanwhile is caught too."""
    try:
        gid = grp.getgrnam(unix_group(project)).gr_gid
    except KeyError:
        return []
    uids = None
    if leavers is not None:
        uids = set()
        for name in leavers:
            with contextlib.suppress(KeyError):
                uids.add(pwd.getpwnam(name).pw_uid)
        if not uids:
            return []
    killed: list[int] = []
    for _ in range(20):
        found = [int(p) for p in os.listdir("/proc") if p.isdigit() and _holds(int(p), gid, uids)]
        found = [p for p in found if p != os.getpid()]
        if not found:
            break
        for pid in found:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        killed += found
    for pid in sorted(set(killed)):
        log.warning("project %s: killed process %d, which still held %s", project, pid,
                    unix_group(project))
    return sorted(set(killed))


def revoke(settings: Settings, project: str, leavers: list[str] | None,
           archive: bool = False, members: list[str] = ()) -> Revoked:
    """After removal (``leavers``: hub user names) or at archive: what the group gave is gone.

    Call it once the hub no longer lists the leavers in the project's group and their servers
    were stopped (see :func:`echoes_lab.hub.services.projects.manage.remove`). Without root
    (one account for all) there is no group to revoke and nothing is done. ``members`` (hub
    user names) are the homes searched for setgid files of the group at archive.
    """
    if not isolated(settings.spawner.isolation):
        return Revoked()
    from echoes_lab.hub.accounts import system_username

    accounts = None if leavers is None else [system_username(u) for u in leavers]
    killed = kill_group_holders(project, None if archive else accounts)
    done = secure_tree(settings, project, accounts or [], read_only=archive)
    homes = [str(settings.homes_dir / user) for user in (leavers or [])]
    for account in [system_username(u) for u in (leavers or members)]:
        with contextlib.suppress(KeyError):
            homes.append(pwd.getpwnam(account).pw_dir)
    homes += [str(settings.homes_dir / user) for user in members]
    done.stripped += strip_group_keys(project, [*homes, *_SHARED_TEMP])
    if archive:
        top = _open_project(settings, project)
        try:
            os.fchmod(top, 0o2550)  # root:echoes-p-NAME r-x; the ACL mask follows (r-x)
        finally:
            os.close(top)
    done.killed = killed
    return done
