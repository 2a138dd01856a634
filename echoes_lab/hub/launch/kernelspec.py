"""The ECHOES kernel spec and the lab's default settings, installed from the package's
``kernels/`` and ``hub_config/lab/``."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

from echoes_lab.hub import HUB_CONFIG_DIR, KERNELS_DIR

KERNEL_TEMPLATE = KERNELS_DIR / "echoes"


def install_kernel(prefix: Path, data_dir: Path | None = None) -> Path:
    """Install the ECHOES kernel spec under ``prefix/kernels/echoes``.

    The spec in ``kernels/echoes`` names ``python``; here it gets this environment's own
    interpreter, so the kernel finds ``echoes_lab`` whatever the caller's ``PATH``, and, when
    given, the deployment's shared datasets folder as ``ECHOES_DATA`` (the hub installs one
    such spec per deployment into its state directory and puts it first on ``JUPYTER_PATH``).
    """
    spec = json.loads((KERNEL_TEMPLATE / "kernel.json").read_text(encoding="utf-8"))
    spec["argv"][0] = sys.executable
    env = spec.setdefault("env", {})
    if data_dir is not None:
        env["ECHOES_DATA"] = str(data_dir)
    else:
        # no deployment folder to name: the kernel inherits ECHOES_DATA from whoever starts it
        env.pop("ECHOES_DATA", None)
    dest = prefix / "kernels" / "echoes"
    dest.mkdir(parents=True, exist_ok=True)
    for extra in KERNEL_TEMPLATE.iterdir():
        if extra.name != "kernel.json":
            shutil.copy2(extra, dest / extra.name)
    (dest / "kernel.json").write_text(json.dumps(spec, indent=1) + "\n", encoding="utf-8")
    for path in (prefix, prefix / "kernels", dest, *dest.iterdir()):
        os.chmod(path, 0o755 if path.is_dir() else 0o644)
    return dest


def install_lab_settings(prefix: Path) -> Path:
    """Install the lab's default settings (``hub_config/lab/overrides.json``) into ``prefix``.

    JupyterLab reads ``<prefix>/share/jupyter/lab/settings/overrides.json`` as the defaults a
    user may still change; ours turn off the news and update checks, which need the internet.
    """
    dest = prefix / "share" / "jupyter" / "lab" / "settings"
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy2(HUB_CONFIG_DIR / "lab" / "overrides.json", dest / "overrides.json")
    return dest / "overrides.json"
