"""Voilà in every lab without a request for the internet: its template and its MathJax.

Voilà 0.5, as it ships, makes every app page ask two other hosts for assets: its ``lab``
template links Font Awesome 5 from cdn.jsdelivr.net (voila-dashboards/voila issue 539, open
since 2020), and its default ``mathjax_url`` points its page at MathJax 2 on cdnjs. On a hub
whose machines have no internet (or whose users must not be tracked by a CDN) that costs a
page a timeout or a stall, and it tells a third party who opened which app. Both are settings:

* **Font Awesome**: the ``echoes`` Voilà template (``hub_config/voila/templates/echoes``) is
  the ``lab`` template without the two links. Nothing is lost: the same Font Awesome 5.15.4,
  with its fonts, is bundled in Voilà's own ``voila-style.js``, which the user's server serves.
  The hub installs the template into its Jupyter data folder (the one on every server's
  ``JUPYTER_PATH``, beside the ECHOES kernel) and every lab starts with
  ``--VoilaConfiguration.template=echoes``. The template also empties nbconvert's block that
  imports mermaid.js from cdnjs when a page holds a mermaid diagram (shown as its source text).
* **MathJax**: with ``mathjax_url`` and ``mathjax_config`` both null in the server's tornado
  settings, Voilà's page loads JupyterLab's ``@jupyterlab/mathjax-extension`` (MathJax 3,
  bundled with Voilà) instead of fetching MathJax 2 from the URL (voila/utils.py
  ``get_page_config`` and the ``fullMathjaxUrl`` check in Voilà's ``main``).

The browser test of the *Sites at risk* app (tests/integration/test_browser_sites.py) fails on
any request to a host other than the machine's own.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from echoes_lab.hub import HUB_CONFIG_DIR
from echoes_lab.hub.services import Feature
from echoes_lab.hub.settings import Settings

#: the template's name (``--VoilaConfiguration.template``) and where the package keeps it
TEMPLATE = "echoes"
TEMPLATE_DIR = HUB_CONFIG_DIR / "voila" / "templates" / TEMPLATE

#: every lab's options: the template, and MathJax from Voilà's bundle rather than a CDN
LAB_ARGS = [
    f"--VoilaConfiguration.template={TEMPLATE}",
    "--ServerApp.tornado_settings={'mathjax_url': None, 'mathjax_config': None}",
]


def install_voila_template(prefix: Path) -> Path:
    """Install the ``echoes`` Voilà template under ``prefix/voila/templates/echoes``.

    ``prefix`` is a Jupyter data folder on the servers' ``JUPYTER_PATH`` (the hub's
    ``<state>/jupyter``); files are world-readable, since every user's server reads them.
    """
    dest = prefix / "voila" / "templates" / TEMPLATE
    dest.mkdir(parents=True, exist_ok=True)
    for source in TEMPLATE_DIR.iterdir():
        shutil.copy2(source, dest / source.name)
        os.chmod(dest / source.name, 0o644)
    for folder in (prefix / "voila", prefix / "voila" / "templates", dest):
        os.chmod(folder, 0o755)
    return dest


def configure_hub(c, settings: Settings) -> None:
    """Every lab renders Voilà apps with the ``echoes`` template and the bundled MathJax."""
    c.Spawner.args = [*c.Spawner.get("args", []), *LAB_ARGS]


FEATURE = Feature("voila", configure_hub=configure_hub)
