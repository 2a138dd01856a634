"""Sphinx configuration of the ECHOES Lab documentation (``make docs``).

MyST Markdown pages (myst-nb: the curated notebooks render from their ``.ipynb`` files), the
API reference generated from the library's numpy-style docstrings (autodoc, autosummary,
napoleon), the settings reference generated from ``echoes_lab.hub.settings`` (``_ext``), and
``doctest`` examples that ``make docs`` runs. Nothing here reaches the network.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
REPO = DOCS.parent
sys.path[:0] = [str(DOCS / "_ext"), str(REPO)]

project = "ECHOES Lab"
author = "ECHOES Lab contributors"
copyright = "ECHOES Lab contributors"  # noqa: A001 (Sphinx's name)

extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.doctest",
    "settings_reference",
]

# the curated notebooks live in ../notebooks (the labs copy them from there); Sphinx reads
# only its source folder, so the build takes a fresh copy each time (not in git)
NOTEBOOKS = DOCS / "notebooks" / "copy"
shutil.rmtree(NOTEBOOKS, ignore_errors=True)
shutil.copytree(REPO / "notebooks", NOTEBOOKS,
                ignore=shutil.ignore_patterns(".ipynb_checkpoints", "solutions", "*.md"))

# the API reference lists every public module of the notebook library as the tree has it now
# (a new module is in the reference without anyone remembering to add it); the hub side is
# configured through settings (operator/settings.md), the command line has its own page
LIBRARY = REPO / "echoes_lab"
MODULES = sorted(({p.stem for p in LIBRARY.glob("[a-z]*.py")}
                  | {p.parent.name for p in LIBRARY.glob("[a-z]*/__init__.py")})
                 - {"hub", "cli"})
(DOCS / "reference").mkdir(exist_ok=True)
(DOCS / "reference" / "index.md").write_text("""# API reference

Generated from the docstrings of the notebook library, `echoes_lab`: what `help()` shows in a
notebook, searchable. The hub side (`echoes_lab.hub`) is configured through settings, not
called from notebooks: see the [settings reference](../operator/settings.md).

```{eval-rst}
.. autosummary::
   :toctree: generated
   :recursive:

""" + "".join(f"   echoes_lab.{m}\n" for m in MODULES) + "```\n")

exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "**.ipynb_checkpoints"]
source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}
root_doc = "index"

# the notebooks are stored without outputs (pre-commit strips them) and running all of them
# takes minutes and real datasets: they are rendered as written, code and text
nb_execution_mode = "off"
myst_enable_extensions = ["colon_fence", "deflist"]
# "#heading" links inside and between pages resolve (a wrong one is a warning, so an error)
myst_heading_anchors = 3

autosummary_generate = True
autodoc_default_options = {"members": True, "ignore-module-all": True}
# each object is documented once, in the module that defines it: a package re-exporting a
# function named like its module (runs.cli, knowledge.remote) would otherwise document it twice
autodoc_typehints = "description"
autodoc_member_order = "bysource"
napoleon_numpy_docstring = True
napoleon_google_docstring = False

# only the explicit ``{doctest}`` examples of the guides run: the docstrings' own ``>>>``
# examples talk to a hub or the network and are shown, not run
doctest_test_doctest_blocks = ""

html_theme = "pydata_sphinx_theme"
html_title = "ECHOES Lab"
html_static_path = ["_static"]
# _templates/hub-link.html: served by the hub at /hub/docs/, every page leads back to its home
templates_path = ["_templates"]
html_theme_options = {
    # no fonts, icons or search from elsewhere: the hub serves these pages without internet
    "navbar_end": ["hub-link", "navbar-icon-links"],
    "show_prev_next": True,
    "navigation_with_keys": False,
}
html_show_sourcelink = False
html_copy_source = False
