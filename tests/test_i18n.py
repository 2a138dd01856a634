"""The service pages in the user's language (issue 34 item 3, a first part): gettext catalogues
read with Babel, the language chosen from ``?lang=``, the ``echoes-lang`` cookie or the
browser's ``Accept-Language`` (RFC 9110 §12.5.4), and a test that fails when a page string is
missing from a catalogue."""

from __future__ import annotations

import html
import json
import re
import sys
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_file
from babel.messages.pofile import read_po
from jinja2.ext import babel_extract

from echoes_lab.hub import i18n
from echoes_lab.hub.services.base import TEMPLATES, template_environment
from echoes_lab.i18n import DEFAULT, LANGUAGES, LOCALE_DIR, app_language, translator

from harness import http_get, serve_tornado

PLACEHOLDER = re.compile(r"%\((\w+)\)s")
HUB = TEMPLATES.parent


def _page_strings() -> list[str]:
    """Every string the pages mark: gettext calls in the templates (service pages and the hub's
    own) and ``N_`` in the hub modules whose lists the pages show."""
    found = []
    sources = [(babel_extract, TEMPLATES / name, {}) for name in i18n.TRANSLATED_TEMPLATES]
    sources += [("python", HUB / name, {"keywords": {"N_": None}})
                for name in i18n.TRANSLATED_MODULES]
    for method, path, options in sources:
        for _line, msgid, _comments, _context in extract_from_file(method, path, **options):
            if msgid not in found:
                found.append(msgid)
    return found


def test_templates_mark_their_strings():
    strings = _page_strings()
    assert len(strings) >= 35
    assert {"Home", "Logout", "Scheduled reports", "Save"} <= set(strings)


@pytest.mark.parametrize("lang", [code for code in i18n.LANGUAGES if code != i18n.DEFAULT])
def test_every_page_string_is_translated_in_every_catalogue(lang):
    with i18n.catalogue_path(lang).open("rb") as f:
        catalog = read_po(f, locale=lang)
    for msgid in _page_strings():
        message = catalog.get(msgid)
        assert message is not None and message.string, f"{lang}: no translation of {msgid!r}"
        # the same placeholders, or a page would fail (or lose a value) in that language; a
        # plural (ngettext) has them in every form
        forms = message.string if isinstance(message.string, tuple) else (message.string,)
        wanted = set(PLACEHOLDER.findall(msgid if isinstance(msgid, str) else msgid[1]))
        for form in forms:
            assert form and set(PLACEHOLDER.findall(form)) == wanted, msgid


@pytest.mark.parametrize("header, expected", [
    ("fr-CH, fr;q=0.9, en;q=0.8, de;q=0.7, *;q=0.5", "fr"),  # RFC 9110's own example, in French
    ("de-AT", "de"),
    ("pt-BR, es;q=0.5", "es"),
    ("en;q=0.1, it", "it"),
    ("fr;q=0, de;q=0.2", "de"),
    ("ja, zh", "en"),
    ("", "en"),
    (None, "en"),
])
def test_the_language_from_accept_language(header, expected):
    assert i18n.choose(None, None, header) == expected


def test_the_switch_wins_over_the_cookie_and_the_cookie_over_the_browser():
    assert i18n.choose("es", "de", "fr") == "es"
    assert i18n.choose(None, "de", "fr") == "de"
    assert i18n.choose("xx", None, "it") == "it"  # an unknown switch is ignored


def test_the_reports_page_renders_in_french():
    env = template_environment()
    ns = {"hub_prefix": "/hub/", "base_url": "/services/reports/", "service_name": "reports",
          "user": {"name": "ada", "admin": True}, "xsrf_token": "x", "lang": "fr",
          "languages": i18n.LANGUAGES, "schedules": [], "admin": True, "server": "",
          "min_interval": 60}
    with i18n.rendering_in("fr"):
        page = html.unescape(env.get_template("reports.html").render(**ns))
    assert '<html lang="fr">' in page
    for text in ("Rapports planifiés", "Accueil", "Se déconnecter", "Nouvelle planification",
                 "Enregistrer", "Au plus une exécution toutes les 60 s.",
                 "En tant qu'administrateur"):
        assert text in page
    for english in ("Scheduled reports", "Logout", "New schedule", "No schedules yet"):
        assert english not in page
    # the switch on the page, every language by its own name
    assert all(f'href="?lang={code}"' in page for code in i18n.LANGUAGES)
    # the script's words, from the same catalogue (a JSON object the script reads)
    words = json.loads(re.search(r"const T = (\{.*?\});", page, re.S).group(1))
    assert words["next_runs"] == "Prochaines exécutions :"
    assert words["by"] == "{path} (par {author})"
    with i18n.rendering_in("en"):  # and English as written, in the same environment
        assert "Scheduled reports" in env.get_template("reports.html").render(**ns)


@pytest.fixture
def service_pages():
    """A real tornado server on a free loopback port with the services' own not-found handler
    (the scaffold every service page goes through: template_namespace, render, write_error)."""
    from tornado import web

    from echoes_lab.hub.services.base import NotFoundHandler

    app = web.Application([(r".*", NotFoundHandler)], hub_prefix="/hub/")
    with serve_tornado(app) as port:
        yield port


def _get(port, path, **headers):
    status, got, page = http_get(port, path, **headers)
    return status, got, html.unescape(page)


def test_a_service_page_follows_the_browser_the_switch_and_the_cookie(service_pages):
    status, _, page = _get(service_pages, "/nowhere", **{"Accept-Language": "fr-FR,fr;q=0.9"})
    assert status == 404 and '<html lang="fr">' in page
    assert "Retour à l'accueil d'ECHOES Lab" in page and "Se connecter" in page
    # the switch: German, remembered in a cookie that outranks the browser's French
    status, headers, page = _get(service_pages, "/nowhere?lang=de",
                                 **{"Accept-Language": "fr"})
    assert "Zurück zur Startseite von ECHOES Lab" in page
    cookie = next(v for k, v in headers if k.lower() == "set-cookie")
    assert cookie.startswith(f"{i18n.COOKIE}=de")
    _, _, page = _get(service_pages, "/nowhere", Cookie=f"{i18n.COOKIE}=de",
                      **{"Accept-Language": "fr"})
    assert '<html lang="de">' in page and "Anmelden" in page
    _, _, page = _get(service_pages, "/nowhere")  # no preference: English, as written
    assert '<html lang="en">' in page and "Back to ECHOES Lab home" in page


#: the JupyterLab language packs the [hub] extra installs in every lab (PyPI's names; there is no
#: pt-PT pack, Portuguese is Brazil's)
LAB_LANGUAGES = ("fr_FR", "de_DE", "it_IT", "es_ES", "nl_NL", "pl_PL", "pt_BR")


def test_jupyterlab_offers_the_language_packs():
    from jupyterlab_server.translation_utils import get_language_pack, get_language_packs

    packs, message = get_language_packs("en")
    assert not message and set(LAB_LANGUAGES) <= set(packs)
    # each pack translates JupyterLab's own strings, its menus among them
    expected = {"fr_FR": ("Edit", "Édition"), "de_DE": ("Save", "Speichern"),
                "it_IT": ("Save", "Salva"), "es_ES": ("Save", "Guardar"),
                "nl_NL": ("Edit", "Bewerk"), "pl_PL": ("Save", "Zapisz"),
                "pt_BR": ("Save", "Salvar")}
    for locale, (english, word) in expected.items():
        pack, message = get_language_pack(locale)
        assert not message, message
        assert len(pack["jupyterlab"]) > 300, locale
        assert pack["jupyterlab"][english] == [word], locale


# -- the apps (echoes_lab.i18n: the library's side) ---------------------------------------------

APPS = sorted((HUB.parents[1] / "notebooks" / "apps").glob("*.ipynb"))


def _app_strings() -> list[str]:
    """Every ``_("…")`` of the apps' code cells (Babel's Python extractor, cell by cell)."""
    import io

    import nbformat
    from babel.messages.extract import extract

    found = []
    for path in APPS:
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type == "code":
                for _line, msgid, _c, _ctx in extract("python", io.BytesIO(cell.source.encode()),
                                                      keywords={"_": None}):
                    if msgid not in found:
                        found.append(msgid)
    return found


@pytest.mark.parametrize("lang", [code for code in LANGUAGES if code != DEFAULT])
def test_every_app_string_is_translated_in_every_catalogue(lang):
    strings = _app_strings()
    assert len(strings) >= 30 and {"Update", "Country", "# Climate dashboard"} <= set(strings)
    path = LOCALE_DIR / lang / "LC_MESSAGES" / "apps.po"
    with path.open("rb") as f:
        catalog = read_po(f, locale=lang)
    for msgid in strings:
        message = catalog.get(msgid)
        assert message is not None and message.string, f"{lang}: no translation of {msgid!r}"
        assert set(PLACEHOLDER.findall(message.string)) == set(PLACEHOLDER.findall(msgid)), msgid


def test_an_app_takes_the_language_voila_gives_its_kernel():
    # Voilà's kernel environment: the query (QUERY_STRING) and the browser's header
    # (HTTP_ACCEPT_LANGUAGE, VoilaConfiguration.http_header_envs); ECHOES_LANG is the lab's
    assert app_language({"QUERY_STRING": "lang=de", "HTTP_ACCEPT_LANGUAGE": "fr"}) == "de"
    assert app_language({"QUERY_STRING": "x=1", "HTTP_ACCEPT_LANGUAGE": "fr-FR,fr;q=0.9"}) == "fr"
    assert app_language({"HTTP_ACCEPT_LANGUAGE": "it", "ECHOES_LANG": "es"}) == "it"
    assert app_language({"ECHOES_LANG": "es"}) == "es"
    assert app_language({}) == "en"
    _ = translator("fr")
    assert _("Update") == "Mettre à jour"
    assert (_("%(shown)s sites shown, %(risk)s at risk", shown=42, risk=1)
            == "42 sites affichés, dont 1 en danger")
    assert translator("en")("Update") == "Update" and translator("xx").lang == "en"


@pytest.mark.parametrize("lang, number, percent", [
    # CLDR 47's symbols and patterns (Unicode TR35 numbers; Babel's data): French groups with
    # a narrow no-break space and puts a no-break space before %, German groups with a dot
    ("en", "12,345.7", "25.6%"),
    ("fr", "12\u202f345,7", "25,6\u00a0%"),
    ("de", "12.345,7", "25,6\u00a0%"),
    ("it", "12.345,7", "25,6%"),
    ("es", "12.345,7", "25,6\u00a0%"),
])
def test_numbers_in_the_users_locale(lang, number, percent):
    _ = translator(lang)
    assert _.number(12345.678, 1) == number
    assert _.percent(0.256, 1) == percent


# -- JupyterLab in the user's language ----------------------------------------------------------

def test_the_lab_language_is_written_as_jupyterlab_reads_it(tmp_path):
    from jupyterlab_server.settings_utils import get_settings

    from echoes_lab.hub.i18n import set_lab_language

    lab = Path(sys.prefix) / "share" / "jupyter" / "lab"
    settings = tmp_path / "user-settings"
    written = set_lab_language("fr", settings)
    assert written is not None and written.stat().st_mode & 0o777 == 0o600
    # jupyterlab_server's own reader, as the lab's settings API answers the browser
    found, _warnings = get_settings(str(lab / "settings"), str(lab / "schemas"), str(settings),
                                    "@jupyterlab/translation-extension:plugin")
    assert found["settings"]["locale"] == "fr_FR"
    # the user's own choice (JupyterLab's Settings › Language writes the same file) is kept
    written.write_text('{"locale": "de_DE"}')
    assert set_lab_language("es", settings) is None
    assert json.loads(written.read_text()) == {"locale": "de_DE"}
    # a language without a pack (or none) writes nothing
    assert set_lab_language("en", tmp_path / "other") is None
    assert set_lab_language(None, tmp_path / "other") is None
    assert not (tmp_path / "other").exists()


def test_the_lab_language_never_follows_a_link(tmp_path):
    from echoes_lab.hub.i18n import LAB_SETTING, set_lab_language

    target = tmp_path / "elsewhere"
    path = tmp_path.joinpath("settings", *LAB_SETTING)
    path.parent.mkdir(parents=True)
    path.symlink_to(target)  # a link where the file goes: left alone, nothing written through it
    assert set_lab_language("fr", tmp_path / "settings") is None
    assert not target.exists()


# -- the hub's own pages ------------------------------------------------------------------------

def _hub_environment():
    """A Jinja2 environment arranged as JupyterHub arranges its own (app.py
    init_tornado_settings: its stock templates under ``templates/``, then the template paths),
    with the extension the hub configuration lists."""
    from jinja2 import ChoiceLoader, Environment, FileSystemLoader, PrefixLoader

    from echoes_lab.hub import face

    stock = str(Path(sys.prefix) / "share" / "jupyterhub" / "templates")
    loader = ChoiceLoader([PrefixLoader({"templates": FileSystemLoader([stock])}, "/"),
                           FileSystemLoader([str(face.TEMPLATES), stock])])
    return Environment(loader=loader, autoescape=True, extensions=[f"{i18n.__name__}.HubPages"])


def test_the_hub_pages_render_in_french():
    from echoes_lab.hub import face

    class User:
        name, url = "ada", "/user/ada/"
        spawner = type("Spawner", (), {"options_form": None})()

        def all_spawners(self, include_default=False):
            return []

    ns = {"base_url": "/hub/", "prefix": "/", "user": User(), "login_url": "/hub/login",
          "logout_url": "/hub/logout", "static_url": lambda path, **kw: f"/hub/static/{path}",
          "services": [], "parsed_scopes": set(), "xsrf": "x", "echoes_apps": face.APPS,
          "echoes_services": face.SERVICES, "echoes_datasets": [], "echoes_examples": [],
          "default_server": type("Server", (), {"active": False})(), "url": "/hub/spawn",
          "allow_named_servers": True, "named_server_limit_per_user": 0,
          "authenticator_login_url": "/hub/login",
          "authenticator": type("Authenticator", (), {"request_otp": False})(),
          "login_error": "Invalid username or password", "status_code": 404,
          "status_message": "Not Found", "message": "", "server_name": "<b>x</b>",
          "failed": False, "spawn_url": "/hub/spawn"}
    expected = {
        "login.html": ("Connexion", "Nom d'utilisateur :", "Mot de passe :",
                       "Nom d'utilisateur ou mot de passe incorrect"),
        "home.html": ("Démarrer mon serveur", "Tableau de bord climatique", "Jeux de données",
                      "Serveurs nommés", "Ajouter un serveur"),
        "spawn_pending.html": ("Votre serveur démarre.", "Journal des événements",
                               "Arrêter le serveur"),
        "not_running.html": ("Serveur arrêté", "Voulez-vous le démarrer ?"),
        "error.html": ("404 : Page introuvable", "Retour à l'accueil d'ECHOES Lab"),
        "404.html": ("404 : Page introuvable", "Il n'y a pas de page à cette adresse."),
        "token.html": ("Demander un nouveau jeton d'API", "Le jeton expire dans"),
        "stop_pending.html": ("Votre serveur s'arrête.",),
    }
    env = _hub_environment()
    for name, texts in expected.items():
        with i18n.rendering_in("fr"):
            page = env.get_template(name).render(**ns)
        text = html.unescape(page)
        for t in texts:
            assert t in text, (name, t)
        assert 'document.documentElement.lang = "fr"' in page
        assert all(f'href="?lang={code}"' in page for code in LANGUAGES)  # the switch
        assert "Accueil" in text and "Home</a>" not in text  # JupyterHub's own navbar too
    # a value in a translated sentence is escaped; the template's own markup is not
    with i18n.rendering_in("fr"):
        page = env.get_template("not_running.html").render(**ns)
    assert "Votre serveur &lt;b&gt;x&lt;/b&gt; n'est pas démarré." in page.replace("&#39;", "'")
    with i18n.rendering_in("fr"):
        page = env.get_template("home.html").render(**ns)
    assert "la bibliothèque <code>echoes_lab</code>" in page
    with i18n.rendering_in("en"):  # English as written
        assert "Start My Server" in env.get_template("home.html").render(**ns)


@pytest.mark.parametrize("lang, text", [
    # CLDR's medium date-time pattern of each language (Babel's data)
    ("en", "Dec 7, 2026, 7:30:00\u202fAM UTC"),
    ("fr", "7 déc. 2026, 07:30:00 UTC"),
    ("de", "07.12.2026, 07:30:00 UTC"),
    ("it", "7 dic 2026, 07:30:00 UTC"),
    ("es", "7 dic 2026, 7:30:00 UTC"),
])
def test_times_on_service_pages_in_the_users_locale(lang, text):
    with i18n.rendering_in(lang):
        assert i18n.when("2026-12-07T07:30:00+00:00") == text
        assert i18n.when("2026-12-07T07:30:00") == text  # stored without a zone: UTC
        assert i18n.when("not a time") == "not a time" and i18n.when(None) == ""


def test_the_workshops_and_projects_pages_render_in_french():
    from datetime import UTC, datetime

    env = template_environment()
    ns = {"hub_prefix": "/hub/", "base_url": "/services/workshops/", "service_name": "workshops",
          "user": {"name": "ada", "admin": False}, "xsrf_token": "x", "lang": "fr",
          "languages": i18n.LANGUAGES, "message": "",
          "workshops": [{"name": "w1", "state": "open", "ends_at": datetime(2026, 12, 7, 16, 0,
                                                                             tzinfo=UTC),
                         "announcement": "", "signed_in": 3, "running": 2,
                         "rows": [{"seat": "w1-01", "signed_in": True, "server": "running",
                                   "last_activity": ""}] * 5}],
          "projects": [{"name": "p1", "archived": False, "admins": ["ada"],
                        "members": ["ada", "bo"], "manage": True}]}
    with i18n.rendering_in("fr"):
        workshops = html.unescape(env.get_template("workshops.html").render(**ns))
        projects = html.unescape(env.get_template("projects.html").render(**ns))
    for text in ("Vos ateliers", "3 connectés sur 5, 2 serveurs en marche.",
                 "open, fin le 7 déc. 2026, 16:00:00 UTC", "ouvrir le lab", "oui"):
        assert text in workshops, text
    for text in ("Projets d'équipe", "Ajouter un membre", "Retirer", "administrateurs : ada",
                 "dans son lab sous <code>~/projects/NAME</code>"):
        assert text in projects, text
    ns.update(base_url="/services/commons/", total=2, annotations=[], visibility={},
              searched={}, viewer_link=lambda base, a: "")
    with i18n.rendering_in("fr"):
        commons = env.get_template("commons.html").render(**ns)
    for text in ("L&#39;espace commun", "2 annotations visibles pour vous.",
                 'Le code les lit et les écrit à <a href="/services/commons/annotations/">',
                 'ouvrez-le dans la <a id="open-viewer" href="/services/commons/viewer">'
                 "visionneuse</a>.", 'placeholder="Auteur (nom sur le hub)"'):
        assert text in commons, text
    ns.update(base_url="/services/knowledge/", endpoint="/services/knowledge/sparql",
              example="ASK {}")
    with i18n.rendering_in("fr"):
        knowledge = env.get_template("knowledge.html").render(**ns)
    assert "Les préfixes <code>crm: la:" in knowledge
    assert "Le code interroge <code>/services/knowledge/sparql</code>" in knowledge
    words = json.loads(re.search(r"const T = (\{.*?\});", knowledge, re.S).group(1))
    assert words["rows"] == "{rows} lignes en {seconds} s"
