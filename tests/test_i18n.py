"""The service pages in the user's language (issue 34 item 3, a first part): gettext catalogues
read with Babel, the language chosen from ``?lang=``, the ``echoes-lang`` cookie or the
browser's ``Accept-Language`` (RFC 9110 §12.5.4), and a test that fails when a page string is
missing from a catalogue."""

from __future__ import annotations

import html
import re
import threading
from http.client import HTTPConnection

import pytest
from babel.messages.extract import extract_from_file
from babel.messages.pofile import read_po
from jinja2.ext import babel_extract

from echoes_lab.hub import i18n
from echoes_lab.hub.services.base import TEMPLATES, template_environment

PLACEHOLDER = re.compile(r"%\((\w+)\)s")


def _page_strings() -> list[str]:
    found = []
    for name in i18n.TRANSLATED_TEMPLATES:
        for _line, msgid, _comments, _context in extract_from_file(babel_extract,
                                                                   TEMPLATES / name):
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
        # the same placeholders, or a page would fail (or lose a value) in that language
        assert set(PLACEHOLDER.findall(message.string)) == set(PLACEHOLDER.findall(msgid)), msgid


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
    with i18n.rendering_in("en"):  # and English as written, in the same environment
        assert "Scheduled reports" in env.get_template("reports.html").render(**ns)


@pytest.fixture
def service_pages():
    """A real tornado server on a free loopback port with the services' own not-found handler
    (the scaffold every service page goes through: template_namespace, render, write_error)."""
    import asyncio

    from tornado import web
    from tornado.httpserver import HTTPServer
    from tornado.netutil import bind_sockets

    from echoes_lab.hub.services.base import NotFoundHandler

    sockets = bind_sockets(0, "127.0.0.1")
    port = sockets[0].getsockname()[1]
    started, loop_box = threading.Event(), {}

    def serve():
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        app = web.Application([(r".*", NotFoundHandler)], hub_prefix="/hub/")
        server = HTTPServer(app)
        server.add_sockets(sockets)
        loop_box.update(loop=loop, server=server)
        loop.call_soon(started.set)
        loop.run_forever()
        server.stop()
        loop.run_until_complete(server.close_all_connections())
        loop.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert started.wait(10)
    yield port
    loop_box["loop"].call_soon_threadsafe(loop_box["loop"].stop)
    thread.join(10)
    assert not thread.is_alive()


def _get(port, path, **headers):
    conn = HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        return response.status, response.getheaders(), html.unescape(response.read().decode())
    finally:
        conn.close()


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
