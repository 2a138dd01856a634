"""Whose notebook a report runs: file owner, last change, content hash — checked as the owner.

Running a notebook runs its author's code with the rights of whoever runs it. In a project
folder (``~/projects/NAME``, writable by every member) a notebook may belong to a colleague, or
have been changed by one after the report's owner looked at it. So (issue 26, item 5):

* **Saving a schedule or "Run now"** reads the notebook's file owner, modification time and
  sha256 in a kernel of the owner's ``reports`` server (as the owner: the service itself reads
  no file). A notebook whose file belongs to another user is refused with 409 and the author
  and time, until the request repeats with ``"confirm": <sha256>`` — the content the owner was
  shown. The schedule keeps that hash (*pins* it).
* **Every run** checks the pin again in the owner's server just before it starts. A notebook
  in a shared folder (or another user's) whose content is not the pinned one is **refused**:
  nothing runs, the run is recorded as ``refused`` with the reason, and the page offers to
  confirm the new content. A notebook in the owner's own home that only they can write is
  re-pinned silently (their own edits). A checked shared notebook runs from a private copy of
  the bytes that were hashed (``<run>/pinned/``), so nobody can swap it between the check and
  the run; its working folder is that copy's folder.
* **Links**: a notebook whose real path (links followed) leaves the owner's home and the
  projects folder is refused; the picker lists notebooks without following links, except the
  ``~/projects/NAME`` links into the projects folder.

The code sent to the kernel is standard library only and prints one line per result,
``ECHOES-NB {json}``.
"""

from __future__ import annotations

import json

from echoes_lab.errors import RunError

#: the prefix of the kernel's result lines
LINE = "ECHOES-NB "

#: functions defined in the owner's kernel (standard library only)
_KERNEL_LIB = r'''
import hashlib as _h, json as _j, os as _o, pwd as _p, shutil as _s, stat as _st
from datetime import datetime as _dt, timezone as _tz

_ECHOES_MAX = 256 << 20  # bytes: a notebook read (and hashed) whole in the owner's kernel

def _echoes_roots():
    home = _o.path.realpath(_o.path.expanduser("~"))
    projects = _o.environ.get("ECHOES_PROJECTS") or ""
    return home, (_o.path.realpath(projects) if projects else "")

def _echoes_within(real, root):
    return bool(root) and (real == root or real.startswith(root.rstrip("/") + "/"))

def _echoes_author(uid):
    try:
        entry = _p.getpwuid(uid)
    except KeyError:
        return "uid %d" % uid
    # hub users' accounts have their home at .../homes/<hub name>
    return _o.path.basename(entry.pw_dir.rstrip("/")) or entry.pw_name

def _echoes_read(path):
    """(info, bytes) of a notebook relative to the home, or (info with 'error', None)."""
    home, projects = _echoes_roots()
    real = _o.path.realpath(_o.path.join(home, path))
    shared = _echoes_within(real, projects)
    if not (_echoes_within(real, home) or shared):
        return {"path": path, "error": "%s leads out of your home and your projects (through "
                "a link): only notebooks inside them can be scheduled" % path}, None
    try:
        fd = _o.open(real, _o.O_RDONLY | _o.O_NOFOLLOW | _o.O_NONBLOCK)
    except OSError as exc:
        return {"path": path, "error": "%s: cannot be read (%s)" % (path, exc.strerror)}, None
    try:
        st = _o.fstat(fd)
        if not _st.S_ISREG(st.st_mode):
            return {"path": path, "error": "%s: not a file" % path}, None
        if st.st_size > _ECHOES_MAX:
            return {"path": path, "error": "%s: %d MB, more than a notebook of %d MB can be "
                    "(outputs kept in it?)" % (path, st.st_size >> 20, _ECHOES_MAX >> 20)}, None
        chunks = []
        while True:
            chunk = _o.read(fd, 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        _o.close(fd)
    data = b"".join(chunks)
    return {"path": path, "sha256": _h.sha256(data).hexdigest(),
            "author": _echoes_author(st.st_uid), "mine": st.st_uid == _o.getuid(),
            "shared": shared,
            "modified": _dt.fromtimestamp(st.st_mtime, _tz.utc).isoformat(timespec="seconds")}, data

def _echoes_say(obj):
    print("ECHOES-NB " + _j.dumps(obj), flush=True)
'''

_INSPECT = r'''
for _path in _j.loads(_echoes_args):
    _echoes_say(_echoes_read(_path)[0])
'''

_LIST = r'''
def _echoes_list(skip, limit=500, depth=4):
    home, projects = _echoes_roots()
    found, tops = [], [(home, "")]
    box = _o.path.join(home, "projects")
    if projects and _o.path.isdir(box) and not _o.path.islink(box):
        for name in sorted(_o.listdir(box)):
            link = _o.path.join(box, name)
            real = _o.path.realpath(link)
            # the hub's own links into the projects folder, nothing else
            if _o.path.islink(link) and _echoes_within(real, projects) and _o.path.isdir(real):
                tops.append((real, "projects/" + name))
    for top, label in tops:
        base = top.count("/")
        for folder, dirs, files in _o.walk(top, followlinks=False):
            rel = _o.path.relpath(folder, top)
            rel = "" if rel == "." else rel
            dirs[:] = sorted(d for d in dirs if not d.startswith(".")
                             and _o.path.join(rel, d) not in skip
                             and not (label == "" and rel == "" and d == "projects")
                             and folder.count("/") - base < depth)
            for name in sorted(files):
                if name.startswith(".") or not name.endswith(".ipynb"):
                    continue
                path = "/".join(p for p in (label, rel, name) if p)
                real = _o.path.realpath(_o.path.join(folder, name))
                if not (_echoes_within(real, home) or _echoes_within(real, projects)):
                    continue  # a link out of the home and the projects
                try:
                    uid = _o.stat(real).st_uid  # the owner only: no need to read the file
                except OSError:
                    continue
                found.append({"path": path, "author": _echoes_author(uid),
                              "mine": uid == _o.getuid()})
                if len(found) >= limit:
                    return found
    return found

_echoes_say(_echoes_list(set(_j.loads(_echoes_args))))
'''

_GUARD = r'''
def _echoes_guard(jobs):
    """Check each job's pin; refused jobs end here, shared notebooks run from a pinned copy."""
    home = _o.path.expanduser("~")
    keep = []
    for job in jobs:
        info, data = _echoes_read(job["notebook"])
        pin = job.pop("sha256", None)
        if "error" in info:
            reason = info["error"]
        elif info["sha256"] == pin or (info["mine"] and (not info["shared"] or pin is None)):
            reason = None
        elif pin is None:
            reason = ("%s was written by %s (file owner; last changed %s) and its content was "
                      "never confirmed" % (job["notebook"], info["author"], info["modified"]))
        else:
            reason = ("%s changed since you confirmed it (confirmed sha256 %s…, now %s…; file "
                      "owner %s; last changed %s)" % (job["notebook"], pin[:12],
                      info["sha256"][:12], info["author"], info["modified"]))
        if reason:
            print("ECHOES-RUN " + _j.dumps({"event": "end", "key": job["key"], "status": "refused",
                  "error": "refused, nothing ran: " + reason + ". Open the reports page and "
                  "confirm this content to run it.", "seen": info}), flush=True)
            continue
        print("ECHOES-RUN " + _j.dumps({"event": "checked", "key": job["key"], "seen": info}),
              flush=True)
        if info["shared"] or not info["mine"]:
            # run the very bytes that were checked: a co-member cannot swap the file meanwhile
            folder = _o.path.join(home, job["output_dir"], "pinned")
            _o.makedirs(folder, mode=0o700, exist_ok=True)
            copy = _o.path.join(folder, _o.path.basename(job["notebook"]))
            with open(copy, "wb") as f:
                f.write(data)
            job["notebook"] = _o.path.relpath(copy, home)
        keep.append(job)
    return keep

_echoes_jobs = _echoes_guard(_j.loads(_echoes_args))
'''

_RUN = r'''
if _echoes_jobs:
    from echoes_lab.runs import serve_jobs
    serve_jobs(_j.dumps(_echoes_jobs), workers=2)
'''


def _code(body: str, args) -> str:
    return f"_echoes_args = {json.dumps(json.dumps(args))}\n" + _KERNEL_LIB + body


def guard_code(jobs: list[dict]) -> str:
    """The runner's code: check every job's pinned ``sha256``, then run the rest."""
    return _code(_GUARD + _RUN, jobs)


async def _results(servers, owner: str, code: str, timeout: float = 120) -> list:
    lines: list = []

    def on_line(line: str) -> None:
        if line.startswith(LINE):
            lines.append(json.loads(line[len(LINE):]))

    async with servers.lease(owner):
        await servers.execute(owner, code, on_line, timeout)
    return lines


async def inspect(servers, owner: str, path: str) -> dict:
    """``{path, sha256, author, mine, shared, modified}`` of the owner's notebook, or
    ``{path, error}`` (read as the owner, in their ``reports`` server)."""
    found = await _results(servers, owner, _code(_INSPECT, [path]))
    if not found:
        msg = f"{path}: the owner's server gave no answer about this notebook"
        raise RunError(msg)
    return found[0]


async def list_notebooks(servers, owner: str, skip: list[str]) -> list[dict]:
    """The owner's notebooks (``{path, author, mine}``), links not followed (but the
    ``~/projects/NAME`` ones)."""
    found = await _results(servers, owner, _code(_LIST, skip))
    return found[0] if found else []


def needs_confirmation(info: dict, pinned: str | None) -> bool:
    """Whether running this content needs its owner's confirmation first: another user's
    file, or a shared one that is not the pinned content."""
    if info["sha256"] == pinned:
        return False
    return not info["mine"] or info["shared"] and pinned is not None


def ask(info: dict, pinned: str | None) -> str:
    """The sentence shown when confirmation is needed (the author and the time)."""
    if pinned and info["sha256"] != pinned:
        what = (f"{info['path']} changed since you confirmed it (file owner {info['author']}, "
                f"last changed {info['modified']})")
    else:
        what = (f"{info['path']} was written by {info['author']} (file owner; last changed "
                f"{info['modified']})")
    return (f"{what}: running it runs that code as you, with your files and rights. Read it "
            f"first; to run it, send \"confirm\": \"{info['sha256']}\" (this content's sha256).")
