"""The last pages in the user's language (issue 34 item 3): the admin dashboard, the commons
viewer and its script, and the lab's own pages (Share, git-pull link, app of someone else's
notebook), rendered in French; the lab pages' language chosen on a real tornado server as the
lab's server extension chooses it. tests/test_i18n.py checks that every string of these pages
is in every catalogue."""

from __future__ import annotations

import html
import json
import re

import pytest

from echoes_lab.hub import i18n
from echoes_lab.hub.services.base import TEMPLATES, template_environment
from echoes_lab.hub.services.projects import serverext

from harness import http_get, serve_tornado

NS = {"hub_prefix": "/hub/", "service_name": "metrics", "user": {"name": "ada", "admin": True},
      "xsrf_token": "x", "languages": i18n.LANGUAGES}


def _render(env, template, lang, **ns):
    with i18n.rendering_in(lang):
        return env.get_template(template).render(**{**NS, "lang": lang, **ns})


def test_the_dashboard_renders_in_french_and_keeps_its_data_as_written():
    rows = [{"section": "people", "figure": "active users, last 24 h", "label": "",
             "value": None, "note": "fewer than 5 people"},
            {"section": "servers", "figure": "servers running", "label": "", "value": 3.0,
             "note": ""}]
    charts = [{"title": "servers running", "people": True, "svg": "<svg></svg>"}]
    page = _render(template_environment(), "metrics.html", "fr", base_url="/services/metrics/",
                   rows=rows, top=3.0, charts=charts, days=30.0, floor=5)
    text = " ".join(html.unescape(re.sub(r"<[^>]+>", "", page)).split())  # as read
    for french in ("Utilisation et contributions", "Graphiques des derniers", "jours",
                   "Afficher", "utilisateurs actifs, dernières 24 h", "serveurs en marche",
                   "moins de 5 personnes", "Les valeurs portant sur moins de 5 personnes "
                   "ne sont pas tracées.", "en CSV ou en JSON"):
        assert french in text, french
    assert "Usage and contributions" not in text and "Charts of the last" not in text
    # the links stay links, the figures' keys stay as the CSV and JSON write them
    assert '<a href="/services/metrics/api/usage.csv">CSV</a>' in page
    assert 'data-figure="servers running"' in page and 'data-chart="servers running"' in page


def test_the_dashboards_figures_and_charts_are_all_in_the_catalogue():
    from babel.messages.pofile import read_po

    from echoes_lab.hub.services.metrics import app, charts

    shown = {s for row in app.FIGURES for s in row[:2]} | {c[0] for c in charts.CHARTS}
    for lang in ("fr", "de", "it", "es"):
        with i18n.catalogue_path(lang).open("rb") as f:
            catalog = read_po(f, locale=lang)
        missing = [s for s in shown if not (catalog.get(s) and catalog.get(s).string)]
        assert not missing, (lang, missing)
    assert i18n.translations("de").gettext("servers running") == "laufende Server"


def test_the_commons_viewer_and_its_script_speak_french():
    licences = {"http://creativecommons.org/licenses/by/4.0/": "CC BY 4.0"}
    page = _render(template_environment(), "commons-viewer.html", "fr",
                   base_url="/services/commons/", manifest="https://example.org/m.json?a=1&b=2",
                   canvas="", licences=licences, default_licence="",
                   user={"name": "ada", "groups": ["atelier-x"]}, moderator=True,
                   query={"manifest": "https://example.org/m.json?a=1&b=2"})
    text = html.unescape(page)
    for french in ("Visionneuse de l'espace commun", "Tracer un rectangle", "Commentaire",
                   "privée (vous seul)", "groupe atelier-x", "Annotations sur ce canevas",
                   "Filtrer par texte", "confiance min."):
        assert french in text, french
    config = json.loads(re.search(r'id="viewer-config">(.*?)</script>', page, re.S).group(1))
    words = config["words"]
    assert words["saved"] == "Annotation enregistrée."
    assert words["not_saved"] == "Non enregistrée : {reason}"
    # a moderator's controls speak French too
    assert config["moderator"] is True and words["was_hidden"] == "Annotation masquée."
    assert words["title"] == "{label} · Visionneuse de l'espace commun"
    # every word the script reads is given to it, and its placeholders are the script's
    script = (TEMPLATES.parent / "services" / "commons" / "viewer_static" / "viewer.js")
    code = script.read_text(encoding="utf-8")
    used = set(re.findall(r"\bT\.(\w+)", code)) | set(re.findall(r'fill\("(\w+)"', code))
    assert used and used <= set(words), used - set(words)
    # the language switch keeps the manifest the page shows
    switch = 'href="?manifest=https%3A%2F%2Fexample.org%2Fm.json%3Fa%3D1%26b%3D2&amp;lang=de"'
    assert switch in page


def test_the_lab_pages_render_in_french_with_their_values_escaped():
    env = serverext._environment()
    common = {"owner": "ada", "lab_url": "/user/ada/lab", "base_url": "/user/ada/"}
    share = html.unescape(_render(env, "lab-share.html", "fr", **common, message="", error="",
                                  shares=[{"with": "bob", "kind": "user", "read_only": True,
                                           "expires_at": "2026-12-24T18:00:00Z"}]))
    for french in ("Partager votre lab", "lecture seule", "utilisateur", "Révoquer",
                   "24 déc. 2026", "Retour au lab"):
        assert french in share, french
    assert "<strong>Édition</strong>" in share and "<code>/user/ada/</code>" in share
    app = _render(env, "lab-app.html", "fr", **common, path="a<b>.ipynb", run_url="/run",
                  read_url="/read", about={"yours": False, "writer": "bob", "changed": "hier",
                                           "in_project": True})
    assert "<code>a&lt;b&gt;.ipynb</code> <strong>en votre nom</strong>" in app
    assert "Le lire d'abord dans le lab" in html.unescape(app)
    pull = _render(env, "lab-git-pull.html", "fr", **common, error="",
                   link={"repo": "https://example.org/r.git", "branch": "", "targetpath": "r",
                         "is_app": True, "urlpath": "voila/render/r/app.ipynb"})
    assert ("qui <strong>exécute du code de ce dépôt en votre nom</strong>"
            in html.unescape(pull))
    assert "<code>celle par défaut</code>" in pull
    assert "<code>https://example.org/r.git</code>" in pull
    with i18n.rendering_in("en"):  # English as written, in the same environment
        page = env.get_template("lab-git-pull.html").render(**NS, **common, error="", link={
            "repo": "r", "branch": "main", "targetpath": "r", "is_app": True, "urlpath": "x"})
    assert "runs code from this repository as you" in page


@pytest.fixture
def lab_page(monkeypatch):
    """A real tornado server on a free loopback port whose handler chooses its page's language
    as the lab's pages do (serverext.page_words) and renders the git-pull page."""
    from tornado import web

    monkeypatch.setenv("JUPYTERHUB_BASE_URL", "/echoes/")
    env = serverext._environment()

    class Page(web.RequestHandler):
        def get(self):
            words = serverext.page_words(self)
            with i18n.rendering_in(words["lang"]):
                self.finish(env.get_template("lab-git-pull.html").render(
                    hub_prefix="/echoes/hub/", user={"name": "ada"}, xsrf_token="x",
                    owner="ada", lab_url="/lab", base_url="/", error="",
                    link={"repo": self.get_query_argument("repo", ""), "branch": "",
                          "targetpath": "r", "is_app": False}, **words))

    with serve_tornado(web.Application([(r".*", Page)])) as port:
        yield port


def test_a_lab_page_follows_the_browser_the_switch_and_the_cookie(lab_page):
    _, _, page = http_get(lab_page, "/echoes/git-pull?repo=https://example.org/r.git",
                          **{"Accept-Language": "es-ES,es;q=0.9"})
    assert '<html lang="es">' in page and "Obtener archivos de un repositorio" in page
    # the switch keeps the link's repository (the page asks again, nothing is copied)
    assert 'href="?repo=https%3A%2F%2Fexample.org%2Fr.git&amp;lang=it"' in page
    _, headers, page = http_get(lab_page, "/echoes/git-pull?repo=r&lang=it",
                                **{"Accept-Language": "es"})
    assert "Prendi file da un repository" in page
    cookie = next(v for k, v in headers if k.lower() == "set-cookie")
    # remembered for the whole deployment, hub, services and labs
    assert cookie.startswith(f"{i18n.COOKIE}=it") and "Path=/echoes/" in cookie
    _, _, page = http_get(lab_page, "/echoes/git-pull?repo=r", Cookie=f"{i18n.COOKIE}=it",
                          **{"Accept-Language": "es"})
    assert '<html lang="it">' in page
    _, _, page = http_get(lab_page, "/echoes/git-pull?repo=r")
    assert '<html lang="en">' in page and "Get files from a repository" in page
