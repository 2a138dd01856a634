"""Voilà's page without requests for the internet (echoes_lab.hub.voila_assets), unit level.

The ``echoes`` template, installed as the hub installs it, is rendered by Voilà's own exporter
beside Voilà's stock ``lab`` template: the stock page links Font Awesome on cdn.jsdelivr.net
and imports mermaid.js from cdnjs, ours does neither and keeps the rest of the page. Every lab
is started with the template and with MathJax from Voilà's bundle. The whole path (hub, lab,
Voilà, chromium cut off from the internet) is tests/integration/test_browser_sites.py.
"""

from __future__ import annotations

import asyncio
import re

import nbformat
from jupyter_core.paths import jupyter_path
from traitlets.config import Config

from echoes_lab.hub import voila_assets

#: what a page would fetch from another host: a link, a script, an import from a URL
EXTERNAL = re.compile(r"""(?:href=|src=|import\()["']?(https?://[^"' )]+)""")


def _render(prefix, template: str) -> str:
    from voila.exporter import VoilaExporter
    from voila.paths import collect_template_paths

    paths = collect_template_paths(["voila", "nbconvert"], template,
                                   root_dirs=[str(prefix), *jupyter_path()])
    exporter = VoilaExporter(template_paths=paths, template_name=template, base_url="/",
                             settings={})
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# Sites at risk")])
    # what Voilà's handler passes: a kernel's id and the executed cells (none here)
    context = {"kernel_start": lambda nb: "kernel-id", "cell_generator": lambda nb, k: iter(())}

    async def page() -> str:
        chunks = []
        async for chunk in exporter.generate_from_notebook_node(
                nb, resources={"base_url": "/", "theme": "light", "labextensions": []},
                page_config={}, extra_context=context):
            chunks.append(chunk[0] if isinstance(chunk, tuple) else chunk)
        return "".join(chunks)

    return asyncio.run(page())


def test_echoes_template_is_voila_lab_without_the_cdn_links(tmp_path):
    dest = voila_assets.install_voila_template(tmp_path)
    assert dest == tmp_path / "voila" / "templates" / "echoes"
    assert {p.name for p in dest.iterdir()} == {"conf.json", "index.html.j2"}
    assert all(p.stat().st_mode & 0o777 == 0o644 for p in dest.iterdir())

    stock = _render(tmp_path, "lab")
    ours = _render(tmp_path, "echoes")
    # the stock page: Font Awesome's all.min.css and v4-shims.min.css, and mermaid.js on cdnjs
    assert len(EXTERNAL.findall(stock)) == 3, EXTERNAL.findall(stock)
    assert not EXTERNAL.findall(ours)
    # the rest of Voilà's head is kept: its style for empty cells, the spinner, the page config
    for kept in (".jp-mod-noOutputs.jp-mod-noInput", "spinner", "jupyter-config-data"):
        assert kept in ours, kept


def test_every_lab_uses_the_template_and_the_bundled_mathjax():
    from jupyter_server.serverapp import ServerApp

    c = Config()
    c.Spawner.args = ["--ResourceUseDisplay.track_cpu_percent=True"]
    voila_assets.configure_hub(c, settings=None)
    assert c.Spawner.args[0] == "--ResourceUseDisplay.track_cpu_percent=True"
    assert "--VoilaConfiguration.template=echoes" in c.Spawner.args
    # the lab parses the option as Voilà's page config reads it: both null, the bundle's MathJax
    app = ServerApp()
    app.parse_command_line([a for a in c.Spawner.args if a.startswith("--ServerApp.")])
    assert app.tornado_settings == {"mathjax_url": None, "mathjax_config": None}


def test_the_hub_plugs_the_feature_in():
    from echoes_lab.hub import config

    assert "echoes_lab.hub.voila_assets" in config.FEATURES
