"""JupyterHub configuration of ECHOES Lab: a thin loader of one settings file per profile.

The settings file is named by ``ECHOES_SETTINGS`` (``echoes-lab hub`` sets it); without it, the
embedded ``local`` profile beside this file. Every decision lives in that file; the mapping onto
JupyterHub's options is ``echoes_lab.hub.config.configure``.
"""

import os
from pathlib import Path

from echoes_lab.hub.config import configure

configure(c, os.environ.get("ECHOES_SETTINGS") or Path(__file__).with_name("local.toml"))  # noqa: F821
