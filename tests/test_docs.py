"""The documentation (issue 35): its generated settings reference is complete, the hub serves
the built pages, and the README stays a front page.

``make docs`` (in ``make test``) builds the whole site with warnings as errors and runs its
examples; these tests check what that build cannot: that the reference lists every key the
hub accepts, and the handler that serves the HTML at ``/hub/docs/``.
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

import pytest
from pydantic import BaseModel
from tornado import web
from tornado.testing import AsyncHTTPTestCase

from echoes_lab.hub import docs as hub_docs
from echoes_lab.hub.settings import Settings

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"


def schema_keys() -> set[str]:
    """Every key a settings file may hold, as ``section.key`` (``profile`` at the top level),
    walked from the pydantic models themselves."""
    keys = set()
    for name, field in Settings.model_fields.items():
        if field.exclude:
            continue
        model = field.annotation
        if isinstance(model, type) and issubclass(model, BaseModel):
            keys |= {f"{name}.{key}" for key in model.model_fields}
        else:
            keys.add(name)
    return keys


@pytest.fixture(scope="module")
def settings_page(tmp_path_factory) -> str:
    """The settings reference rendered by Sphinx with the docs' own extension: the HTML a
    reader gets at ``operator/settings.html``."""
    from sphinx.cmd.build import build_main

    src = tmp_path_factory.mktemp("src")
    out = tmp_path_factory.mktemp("html")
    (src / "conf.py").write_text(
        f"import sys\nsys.path.insert(0, {str(DOCS / '_ext')!r})\n"
        "extensions = ['myst_parser', 'settings_reference']\n")
    (src / "index.md").write_text((DOCS / "operator" / "settings.md").read_text())
    assert build_main(["-b", "html", "-W", "-q", str(src), str(out)]) == 0
    return (out / "index.html").read_text()


def test_settings_reference_lists_every_key_of_the_schema(settings_page):
    import html
    import re

    # each table row: the key's cell, within its section ("[hub]" heading)
    listed = set()
    for section in re.split(r"<section ", settings_page)[1:]:
        title = re.search(r"<h[12][^>]*>(.*?)<a", section, re.S)
        name = html.unescape(title.group(1)).strip() if title else ""
        name = "" if name == "top level" else name.strip("[]")
        for key in re.findall(r"<tr[^>]*>\s*<td><p><code[^>]*><span class=\"pre\">([a-z_]+)",
                              section):
            listed.add(f"{name}.{key}" if name else key)
    expected = schema_keys()
    assert len(expected) > 60  # the walk found the sections' keys, not an empty model
    assert expected - listed == set(), "keys of hub/settings.py missing from the reference"
    assert listed - expected == set(), "keys in the reference the hub would refuse"
    # the descriptions the models carry are shown with their keys
    assert "public port of the proxy" in settings_page
    assert "seconds of inactivity before a server stops" in settings_page


def test_settings_reference_covers_the_shipped_profiles():
    """Every key set in ``hub_config/local.toml`` is one the reference documents."""
    raw = tomllib.loads((REPO / "hub_config" / "local.toml").read_text())
    used = set()
    for section, value in raw.items():
        used |= {f"{section}.{key}" for key in value} if isinstance(value, dict) else {section}
    assert used, "local.toml holds settings"
    assert used <= schema_keys()


class DocsHandlerTest(AsyncHTTPTestCase):
    """``/hub/docs/`` as the hub mounts it (JupyterHub adds its ``/hub`` prefix to these)."""

    root: Path

    def get_app(self):
        import tempfile

        self.root = Path(tempfile.mkdtemp(prefix="echoes-docs-"))
        cfg = type("C", (), {})()
        cfg.JupyterHub = _Section()
        hub_docs.configure_hub(cfg, None)
        handlers = [(pattern.replace("/docs", "/hub/docs", 1), handler,
                     {**kw, "path": str(self.root)} if "path" in kw else kw)
                    for pattern, handler, kw in cfg.JupyterHub.extra_handlers]
        return web.Application(handlers)

    def tearDown(self):
        import shutil

        shutil.rmtree(self.root, ignore_errors=True)
        super().tearDown()

    def test_not_built_says_how_to_build(self):
        response = self.fetch("/hub/docs/")
        assert response.code == 404
        assert "make docs" in response.body.decode()

    def test_serves_the_built_pages(self):
        (self.root / "trainer").mkdir()
        (self.root / "index.html").write_text("<title>ECHOES Lab</title>")
        (self.root / "trainer" / "guide.html").write_text("<h1>The trainer's guide</h1>")
        assert b"ECHOES Lab" in self.fetch("/hub/docs/").body
        assert b"trainer's guide" in self.fetch("/hub/docs/trainer/guide.html").body
        moved = self.fetch("/hub/docs", follow_redirects=False)
        assert moved.code in (301, 302) and moved.headers["Location"] == "docs/"
        # nothing outside the built folder, however the path is spelled
        outside = self.root.parent / f"{self.root.name}-secret.txt"
        outside.write_text("secret")
        try:
            for path in (f"../{outside.name}", f"..%2f{outside.name}"):
                response = self.fetch(f"/hub/docs/{path}")
                assert response.code in (400, 403, 404) and b"secret" not in response.body
        finally:
            outside.unlink()


class _Section(dict):
    """What ``c.JupyterHub`` is to ``configure_hub``: attributes that are also ``get``-able."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name, value):
        self[name] = value


def test_docs_feature_is_plugged_in():
    from echoes_lab.hub import config

    assert "echoes_lab.hub.docs" in config.FEATURES
    assert sys.modules["echoes_lab.hub.docs"].FEATURE.name == "docs"


@pytest.mark.slow  # three Sphinx builds: make test runs them, make test-unit leaves them out
@pytest.mark.parametrize("page, builder, says", [
    ("See [the trainer](trainer.md).\n", "html", "trainer"),
    ("See [setting up](#no-such-heading).\n", "html", "no-such-heading"),
    ("```{doctest}\n>>> 1 + 1\n3\n```\n", "doctest", "1 failure"),
], ids=["missing page", "missing anchor", "failing example"])
def test_make_docs_options_fail_on_a_broken_link_or_example(tmp_path, page, builder, says):
    """What ``make docs`` runs (``-W --keep-going``, the docs' MyST settings) refuses a link to
    a page or heading that does not exist, and an example whose output is not the one shown."""
    from sphinx.cmd.build import build_main

    makefile = (REPO / "Makefile").read_text()
    assert f"sphinx-build -b {builder} -W --keep-going" in makefile
    conf = (DOCS / "conf.py").read_text()
    assert "myst_heading_anchors = 3" in conf and '"sphinx.ext.doctest"' in conf
    src = tmp_path / "src"
    src.mkdir()
    (src / "conf.py").write_text("extensions = ['myst_parser', 'sphinx.ext.doctest']\n"
                                 "myst_heading_anchors = 3\n")
    (src / "index.md").write_text(f"# Index\n\n## Setting up\n\n{page}")
    warnings = tmp_path / "warnings.txt"
    code = build_main(["-b", builder, "-W", "--keep-going", "-q", "-w", str(warnings),
                       str(src), str(tmp_path / "out")])
    assert code != 0
    output = warnings.read_text()
    if builder == "doctest":
        output += (tmp_path / "out" / "output.txt").read_text()
    assert says in output


def test_readme_is_a_front_page_that_sends_readers_to_the_docs():
    """Issue 35: at most 150 lines: what ECHOES Lab is, the two set-up commands, a picture of
    the home page, and where to read on (every docs page it names exists)."""
    import re

    text = (REPO / "README.md").read_text()
    assert len(text.splitlines()) <= 150
    assert "make hub\nmake test\n" in text
    pictures = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert pictures and all((REPO / p).is_file() for p in pictures)
    named = set(re.findall(r"`(docs/[^`]+\.md)`", text))
    assert {"docs/getting-started.md", "docs/trainer/guide.md",
            "docs/operator/index.md"} <= named
    assert all((REPO / p).is_file() for p in named), named
    assert "/hub/docs/" in text
