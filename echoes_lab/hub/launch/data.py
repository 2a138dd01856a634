"""The shared datasets folder: the demo data generated once, the real datasets fetched and
verified, the tree made read-only."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from echoes_lab.errors import SetupError
from echoes_lab.hub.launch.messages import say
from echoes_lab.hub.settings import Settings


def install_real_data(settings: Settings) -> None:
    """Fetch the real datasets of ``[data] fetch`` into the shared folder, verified (once).

    From ``[data] mirror`` (or ``$ECHOES_MIRROR``) first, else their pinned urls. One that
    cannot be had (no mirror, no internet) is reported and skipped: the hub still starts.
    """
    from echoes_lab import datasets
    from echoes_lab.errors import EchoesError

    shared, mirror = settings.shared_dir, settings.data.mirror or None
    if mirror and "://" not in mirror:
        mirror = str(settings.path(mirror))
    for name in settings.data.fetch:
        try:
            entry = datasets.info(name, shared)
            if all((shared / f["path"]).exists() for f in entry["files"]):
                continue
            for folder, _, _ in os.walk(shared):  # read_only() made it 0555 on an earlier start
                os.chmod(folder, 0o755)
            say(f"ECHOES Lab: installing the dataset {name} into {shared}")
            datasets.fetch(name, shared, mirror=mirror, shared_only=True)
        except EchoesError as exc:
            say(f"ECHOES Lab: dataset {name} not installed: {exc}")


def install_demo_data(shared: Path) -> None:
    """Generate the seeded demo datasets into the shared folder (once; kept afterwards)."""
    os.chmod(shared, 0o755)
    for folder, dirs, files in os.walk(shared):
        for name in dirs:
            os.chmod(os.path.join(folder, name), 0o755)
        for name in files:
            os.chmod(os.path.join(folder, name), 0o644)
    say(f"ECHOES Lab: generating the demo datasets into {shared} (first start only)")
    done = subprocess.run([sys.executable, "-m", "echoes_lab.demo", "--out", str(shared)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        msg = f"could not generate the demo datasets into {shared}: {last}"
        raise SetupError(msg)


def read_only(folder: Path) -> None:
    """Make a folder tree read-only for everyone (its owner may still lift that)."""
    for path, _dirs, files in os.walk(folder):
        for name in files:
            os.chmod(os.path.join(path, name), 0o444)
        os.chmod(path, 0o555)
