"""Small file jobs run *as a user's own account* by :mod:`~echoes_lab.hub.services.workshops.homes`.

Run as a script (``python -I _asuser.py ACTION ...``, never imported by the hub), in a child
process whose uid and gid are already the user's (``subprocess`` ``user=``/``group=``), with its
working directory set to the user's home. Whatever links the user has placed in their home, this
process can reach only what the user could reach anyway: that is the whole point.

Actions
-------
``write REL [--keep]``
    Copy standard input to ``REL`` (relative to the home), creating folders (mode 0700) and
    replacing the file atomically (mode 0600). ``--keep``: exit 3 without writing if ``REL``
    already exists.
``archive NAME``
    Write to standard output a gzip-compressed tar stream of the whole home, its members named
    ``NAME/...``; links are stored as links (never followed), unreadable entries skipped.
``pack PATTERN...``
    Write to standard output an uncompressed tar stream of the regular files matching the
    glob patterns (a folder: everything inside). Symbolic links, at any level, are skipped.
"""

import os
import sys
import tarfile
from pathlib import Path


def write(rel: str, keep: bool) -> int:
    target = Path(rel)
    if target.is_absolute() or ".." in target.parts:
        sys.stderr.write(f"refusing to write outside the home: {rel}\n")
        return 2
    if keep and os.path.lexists(target):
        return 3
    target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.part")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as out:
        while chunk := sys.stdin.buffer.read(1 << 20):
            out.write(chunk)
    os.replace(tmp, target)
    return 0


def _regular_files(match: Path):
    if match.is_symlink():
        return
    if match.is_file():
        yield match
        return
    if match.is_dir():
        for folder, dirs, files in os.walk(match):  # os.walk does not follow links to folders
            dirs[:] = sorted(d for d in dirs if not os.path.islink(os.path.join(folder, d)))
            for name in sorted(files):
                path = Path(folder, name)
                if not path.is_symlink() and path.is_file():
                    yield path


def pack(patterns: list[str]) -> int:
    home = Path(".")
    seen = set()
    with tarfile.open(fileobj=sys.stdout.buffer, mode="w|") as tar:
        for pattern in patterns:
            for match in sorted(home.glob(pattern)):
                # a link among the parents (``sub -> /elsewhere``, then ``sub/file``) is skipped too
                if any(p.is_symlink() for p in match.parents if p != home):
                    continue
                for path in _regular_files(match):
                    rel = os.path.normpath(path)
                    if rel in seen:
                        continue
                    seen.add(rel)
                    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
                    with os.fdopen(fd, "rb") as fh:
                        info = tar.gettarinfo(arcname=rel, fileobj=fh)
                        if info.isreg():
                            info.uname = info.gname = ""
                            tar.addfile(info, fh)
    return 0


def archive(name: str) -> int:
    def readable(info: tarfile.TarInfo):
        path = "." + info.name[len(name) :]
        return info if info.issym() or os.access(path, os.R_OK) else None

    with tarfile.open(fileobj=sys.stdout.buffer, mode="w|gz") as tar:
        tar.add(".", arcname=name, filter=readable)  # tarfile stores links as links
    return 0


def main(argv: list[str]) -> int:
    if argv[:1] == ["archive"] and len(argv) == 2:
        return archive(argv[1])
    if argv[:1] == ["write"] and len(argv) in (2, 3):
        return write(argv[1], keep=argv[2:] == ["--keep"])
    if argv[:1] == ["pack"]:
        return pack(argv[1:])
    sys.stderr.write(f"usage: {__doc__.splitlines()[0]}\n")
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
