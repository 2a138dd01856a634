"""The ECHOES kernel's launcher: the notebook's folder on ``sys.path`` where nobody else's
file in it can stand in for installed code.

``python -m ipykernel_launcher`` starts in the notebook's folder with that folder first on
``sys.path``, and IPython then keeps it ahead of ``site-packages``. In a team project's folder a
co-member's ``ipykernel_launcher.py`` (or ``numpy.py``) would so run as whoever opens a notebook
there. The kernel spec runs ``python -P -m echoes_lab._kernel`` instead: ``-P`` keeps the
folder off the path while Python starts (it is a flag, not ``PYTHONSAFEPATH``: the kernel's own
``!python script.py`` behaves as usual), and :func:`place_folder` puts it back — where IPython
puts it in a folder only the user can write, *after* ``site-packages`` in one that others can
write, so a module next to the notebook is still found when nothing installed has its name.
"""

from __future__ import annotations

import os
import stat
import sys


def shared_folder(path: str = ".") -> bool:
    """Whether someone other than this user can put files into ``path``."""
    info = os.stat(path)
    return info.st_uid != os.getuid() or bool(info.st_mode & (stat.S_IWGRP | stat.S_IWOTH))


def place_folder() -> None:
    """Put the working folder (``""``) on ``sys.path``: before the first ``site-packages`` (as
    IPython's ``init_path`` does) when only this user can write it, last otherwise."""
    if "" in sys.path:
        return
    if shared_folder():
        sys.path.append("")
        return
    for index, entry in enumerate(sys.path):
        if os.path.basename(entry) in {"site-packages", "dist-packages"}:
            sys.path.insert(index, "")
            return
    sys.path.insert(0, "")


if __name__ == "__main__":
    place_folder()
    from ipykernel import kernelapp

    kernelapp.launch_new_instance()
