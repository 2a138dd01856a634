"""ECHOES Lab's face on the hub: its templates, logo and home page, and what every lab shows.

The hub's own pages (``templates/hub/``: the home page, the sign-in page and the page frame
they share) extend JupyterHub's stock templates (``{% extends "templates/page.html" %}``) and
say what the workbench offers: the datasets of the catalogue, the curated notebooks, the apps
for colleagues who do not code (Voilà renders a curated notebook without its code, in the
user's own server and as that user), and the services (commons, reports, workshops, team
projects, Dask). Service pages extend ``templates/service-page.html``, which shows the same
logo (the hub's ``/hub/logo``, served from :data:`LOGO`).

In every lab: Voilà's server extension (``/voila/render/…``) and jupyter-resource-usage's
memory and CPU indicator; JupyterHub passes the spawner's ``mem_limit`` to each server as
``MEM_LIMIT``, which the indicator reads, so a workshop seat sees its limit.

Hub-side code: reads YAML and notebook JSON only (no pandas), once, when the hub starts.
"""

from __future__ import annotations

import json
from pathlib import Path

from echoes_lab.hub import i18n
from echoes_lab.hub.i18n import N_
from echoes_lab.hub.services import Feature
from echoes_lab.hub.settings import Settings

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates" / "hub"
LOGO = HERE / "static" / "echoes-logo.svg"

#: The apps on the home page: curated notebooks under ``notebooks/apps`` (``~/examples/apps``
#: in every home), rendered by Voilà at ``/user/<name>/voila/render/<path>``.
APPS = [
    {"title": N_("Climate dashboard"), "path": "examples/apps/climate-dashboard.ipynb",
     "text": N_("Pick a dataset and a sensor: risk to the objects, the ASHRAE class met, "
                "temperature and humidity against the band.")},
    {"title": N_("Collection explorer"), "path": "examples/apps/collection-explorer.ipynb",
     "text": N_("Filter a collection by type and years: counts, a timeline and a quality "
                "report.")},
    {"title": N_("Oral history player"), "path": "examples/apps/oral-history-player.ipynb",
     "text": N_("Listen with the transcript in sync, search it, and mark what a passage is "
                "about.")},
    {"title": N_("Sites at risk"), "path": "examples/apps/sites-at-risk.ipynb",
     "text": N_("Monuments and sites on a map that needs no internet: filter by country, "
                "see each record, which sites are at risk and why.")},
]

#: What each hub service is for, in the home page's words (shown only to users who may use it).
SERVICES = {
    "commons": N_("Interpretations of objects, images and sensor data: record, find, reply, "
                  "assess."),
    "knowledge": N_("One SPARQL question across museums' Linked Art, records and the commons."),
    "reports": N_("Schedule a notebook to run with parameters, and keep every run's report."),
    "workshops": N_("Trainers: your workshops' seats, their labs and the collected work."),
    "projects": N_("Team projects: a shared folder, a shared lab and notebook history."),
    "dask-gateway": N_("Dask clusters on demand (from a notebook: echoes_lab.compute.cluster())."),
}


def _title(notebook: Path) -> str:
    """A notebook's first heading (its title), or its file name."""
    try:
        cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    except (OSError, ValueError, KeyError):
        return notebook.stem
    for cell in cells:
        if cell.get("cell_type") == "markdown":
            for line in "".join(cell.get("source", "")).splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return notebook.stem


def examples(settings: Settings) -> list[dict]:
    """The curated notebooks every user has in ``~/examples`` (top level only)."""
    folder = settings.path(settings.spawner.examples) if settings.spawner.examples else None
    if folder is None or not folder.is_dir():
        return []
    return [{"title": _title(nb), "path": f"examples/{nb.name}"}
            for nb in sorted(folder.glob("*.ipynb"))]


def datasets(settings: Settings) -> list[dict]:
    """The catalogue's datasets, for the home page (demo ones marked), each with its FAIR
    score: the offline FAIRsFAIR indicators passed (:func:`echoes_lab.fair.assess_dataset`)."""
    from echoes_lab import datasets as catalogue
    from echoes_lab import fair

    rows = []
    for e in catalogue.entries(settings.shared_dir):
        checked = fair.assess_dataset(e).indicators
        rows.append({"name": e["name"], "title": e["title"], "licence": e["licence"],
                     "demo": bool(e.get("generator")), "homepage": e.get("homepage", ""),
                     "citation": e["citation"],
                     "fair": f"{sum(i.passed for i in checked)}/{len(checked)}",
                     # the indicators' ids (language-neutral), passed or not
                     "fair_indicators": " ".join(f"{i.metric}{'✓' if i.passed else '✗'}"
                                                 for i in checked)})
    return sorted(rows, key=lambda r: (r["demo"], r["name"]))


def configure_hub(c, settings: Settings) -> None:
    """Templates, logo and home-page content on the hub; Voilà and resource usage in labs."""
    c.JupyterHub.template_paths = [str(TEMPLATES), *c.JupyterHub.get("template_paths", [])]
    c.JupyterHub.logo_file = str(LOGO)
    i18n.configure_hub(c)  # the hub's pages and the labs in the user's language
    c.JupyterHub.template_vars = {
        **c.JupyterHub.get("template_vars", {}),
        "echoes_datasets": datasets(settings), "echoes_examples": examples(settings),
        "echoes_apps": APPS, "echoes_services": SERVICES,
    }
    # every lab: the memory/CPU indicator (MEM_LIMIT is set by JupyterHub from the spawner's
    # mem_limit); Voilà's and its server extensions are enabled by their packages' own
    # jupyter_server_config.d files, which jpserver_extensions on the command line extends
    c.Spawner.args = [
        *c.Spawner.get("args", []),
        "--ResourceUseDisplay.track_cpu_percent=True",
        "--ResourceUseDisplay.mem_warning_threshold=0.1",
    ]


FEATURE = Feature("face", configure_hub=configure_hub)
