"""The hub's service pages in the user's language: gettext catalogues (Babel) for Jinja2.

Catalogues are data a community can extend: ``echoes_lab/hub/locale/<lang>/LC_MESSAGES/
echoes.po``, gettext PO files read with Babel and compiled in memory (no build step, no binary
``.mo`` in the repository). Templates mark their strings as ``{{ _("Home") }}`` or
``{{ _("… %(server)s …", server=server) }}`` (gettext calls, which Babel's Jinja2 extractor
finds); :func:`install` gives an environment ``_``/``gettext``/``ngettext`` that translate into
the language of the page being rendered (:func:`rendering_in`), English otherwise, so a template
renders in any environment that installed them.

A page's language is, in order (:func:`choose`): the ``?lang=xx`` switch every service page shows
(remembered in the ``echoes-lang`` cookie), that cookie, the browser's ``Accept-Language``
(RFC 9110 §12.5.4: the highest-``q`` language we have; a regional tag takes its language), else
English, the language the templates are written in.

The hub's own pages (``templates/hub/``: the frame, sign-in, home, token, spawn and stop
pending, not running, error) are rendered by JupyterHub's own Jinja2 environments.
:class:`HubPages`, a Jinja2 extension that :func:`configure_hub` lists in
``c.JupyterHub.jinja_environment_options``, gives those environments the same ``_``; there the
page's language comes from the request being rendered (JupyterHub passes every template its
handler's bound ``static_url``, whose handler has the query, the cookie and the headers),
so no handler of JupyterHub's is subclassed or patched.

JupyterLab speaks the language too: at spawn the hub passes the page language of the request
that started the server (``ECHOES_LANG``), and the user's server, running as the user, writes
it as the user's JupyterLab language setting unless the user has one (:func:`set_lab_language`).

To add a language: copy a catalogue, translate its ``msgstr`` lines, add the code to
``LANGUAGES``; ``tests/test_i18n.py`` fails while a page string is missing from a catalogue.
"""

from __future__ import annotations

import contextlib
from contextvars import ContextVar
from pathlib import Path

from jinja2 import pass_context, pass_eval_context
from jinja2.ext import Extension
from markupsafe import Markup

# the language choice and the catalogue reader are the library's (the apps use them too)
from echoes_lab.i18n import (
    COOKIE,
    DEFAULT,
    LANGUAGES,
    choose,
    parse_accept_language,
    read_catalogue,
)

__all__ = ["COOKIE", "DEFAULT", "LANGUAGES", "choose", "parse_accept_language", "HubPages",
           "configure_hub", "gettext", "install", "language_of", "rendering_in",
           "set_lab_language", "translations"]

LOCALE_DIR = Path(__file__).resolve().parent / "locale"
DOMAIN = "echoes"
#: the templates whose strings are marked (the catalogue test extracts them)
TRANSLATED_TEMPLATES = ("service-page.html", "error.html", "reports.html", "workshops.html",
                        "projects.html", "commons.html", "knowledge.html", "hub/page.html",
                        "hub/login.html", "hub/home.html", "hub/spawn_pending.html",
                        "hub/not_running.html", "hub/error.html", "hub/404.html",
                        "hub/token.html", "hub/stop_pending.html", "metrics.html",
                        "commons-viewer.html", "commons-moderation.html", "lab-app.html",
                        "lab-git-pull.html", "lab-share.html", "forms.html")
#: the Python modules whose page strings are marked with ``N_`` (the home page's lists, the
#: dashboard's figures and charts, the lab's Share page's messages)
TRANSLATED_MODULES = ("face.py", "i18n.py", "services/metrics/app.py",
                      "services/metrics/charts.py", "services/projects/serverext.py")
#: JupyterLab's language pack for each language a browser may ask for (PyPI's packs; there is
#: no pt-PT pack, Portuguese is Brazil's)
LAB_PACKS = {"fr": "fr_FR", "de": "de_DE", "it": "it_IT", "es": "es_ES", "nl": "nl_NL",
             "pl": "pl_PL", "pt": "pt_BR"}
LAB_SETTING = ("@jupyterlab", "translation-extension", "plugin.jupyterlab-settings")
_current: ContextVar[str] = ContextVar("echoes_page_language", default=DEFAULT)


def catalogue_path(lang: str) -> Path:
    return LOCALE_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.po"


def translations(lang: str):
    """The compiled catalogue of ``lang`` (for English or a language without one: the strings
    as written)."""
    return read_catalogue(catalogue_path(lang), lang, DOMAIN)


def N_(message: str) -> str:  # noqa: N802 (gettext's name for "mark, translate later")
    """Mark ``message`` for the catalogue where it is defined; pages translate it when shown."""
    return message


#: what JupyterHub passes its pages in English: the reasons of the HTTP errors its error page
#: shows most (``status_message``) and the sign-in page's ``login_error``
HUB_MESSAGES = (N_("Invalid username or password"), N_("Bad Request"), N_("Forbidden"),
                N_("Not Found"), N_("Method Not Allowed"), N_("Internal Server Error"),
                N_("Service Unavailable"), N_("Too Many Requests"), N_("Unauthorized"),
                N_("Bad Gateway"), N_("Request Timeout"))


def gettext(message: str, **variables) -> str:
    """``message`` in the page's language, ``%(name)s`` filled from ``variables``."""
    text = translations(_current.get()).gettext(message)
    return text % variables if variables else text


def ngettext(singular: str, plural: str, n: int, **variables) -> str:
    text = translations(_current.get()).ngettext(singular, plural, n)
    return text % {"num": n, **variables}


def when(value) -> str:
    """A time (a datetime, or the ISO 8601 text the services store) written the way the page's
    language writes dates and times (CLDR's medium pattern through Babel: "6 déc. 2026,
    07:30:00" in French), in UTC, which it says; any other text unchanged."""
    from datetime import UTC, datetime

    from babel.dates import format_datetime

    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return value
    if not isinstance(value, datetime):
        return "" if value is None else str(value)
    if value.tzinfo is None:  # the services' times are UTC
        value = value.replace(tzinfo=UTC)
    return format_datetime(value, "medium", tzinfo=UTC, locale=_current.get()) + " UTC"


@pass_eval_context
def _page_gettext(eval_ctx, message: str, **variables) -> str:
    if variables and eval_ctx.autoescape:  # as on the hub's pages (_hub_gettext)
        return Markup(translations(_current.get()).gettext(message)) % variables
    return gettext(message, **variables)


@pass_eval_context
def _page_ngettext(eval_ctx, singular: str, plural: str, n: int, **variables) -> str:
    if eval_ctx.autoescape:
        text = Markup(translations(_current.get()).ngettext(singular, plural, n))
        return text % {"num": n, **variables}
    return ngettext(singular, plural, n, **variables)


def install(env):
    """Give a Jinja2 environment the translating ``_``, ``gettext`` and ``ngettext``, and the
    ``when`` filter (times in the page's language). With autoescaping, a translated text is the
    page's own markup and the values put in it are escaped unless they are markup themselves,
    as Jinja2's i18n extension does."""
    env.globals.update(_=_page_gettext, gettext=_page_gettext, ngettext=_page_ngettext)
    env.filters["when"] = when
    return env


@contextlib.contextmanager
def rendering_in(lang: str):
    """Render the templates of this block in ``lang``."""
    token = _current.set(lang if lang in LANGUAGES else DEFAULT)
    try:
        yield
    finally:
        _current.reset(token)


def language_of(handler, cookie_path: str = "/") -> str:
    """The language of the page a tornado ``handler`` is answering (:func:`choose` on its
    ``?lang=``, cookie and ``Accept-Language``); a switch is remembered in the cookie for a year,
    on ``cookie_path`` (the deployment's root: hub, services and labs share it)."""
    switch = handler.get_query_argument("lang", None)
    lang = choose(switch, handler.get_cookie(COOKIE),
                  handler.request.headers.get("Accept-Language"))
    if switch and lang == switch.strip().lower() and not handler._headers_written:
        handler.set_cookie(COOKIE, lang, expires_days=365, samesite="Lax", path=cookie_path)
    return lang


def hub_language(context) -> str:
    """The language of the hub page being rendered in Jinja2 ``context``: its request's (found
    through the handler's bound ``static_url`` JupyterHub passes every template), else the
    block's (:func:`rendering_in`)."""
    handler = getattr(context.get("static_url"), "__self__", None)
    if handler is None or not hasattr(handler, "request"):
        return _current.get()
    lang = getattr(handler, "_echoes_lang", None)
    if lang is None:  # once per request: the switch's cookie is set once, before any output
        lang = handler._echoes_lang = language_of(handler, context.get("prefix") or "/")
    return lang


@pass_context
def _hub_gettext(context, message: str, **variables) -> str:
    text = translations(hub_language(context)).gettext(message)
    if variables and context.eval_ctx.autoescape:
        # as Jinja2's i18n extension does: the catalogue's text is the page's own markup, the
        # values are escaped unless they are markup themselves (a <code> the template built)
        return Markup(text) % variables
    return text % variables if variables else text


@pass_context
def _hub_ngettext(context, singular: str, plural: str, n: int, **variables) -> str:
    text = translations(hub_language(context)).ngettext(singular, plural, n)
    return text % {"num": n, **variables}


@pass_context
def _app_query(context) -> str:
    """``?lang=xx`` for a link to an app when the page's language is not the one the browser
    asks for (a switch or the cookie chose it: the app, which sees only the browser's
    ``Accept-Language``, is told), else nothing."""
    handler = getattr(context.get("static_url"), "__self__", None)
    lang = hub_language(context)
    browser = (choose(None, None, handler.request.headers.get("Accept-Language"))
               if hasattr(handler, "request") else DEFAULT)
    return "" if lang == browser else f"?lang={lang}"


class HubPages(Extension):
    """Gives JupyterHub's Jinja2 environments ``_``/``gettext``/``ngettext`` in the language of
    the request being rendered, ``echoes_lang()`` (that language's code) and
    ``echoes_languages`` (the switch's choices) and ``echoes_app_query()`` (what a link to an
    app adds to carry a chosen language)."""

    def __init__(self, environment):
        super().__init__(environment)
        environment.globals.update(_=_hub_gettext, gettext=_hub_gettext, ngettext=_hub_ngettext,
                                   echoes_lang=pass_context(hub_language),
                                   echoes_app_query=_app_query, echoes_languages=LANGUAGES)


def spawn_language(spawner) -> str:
    """``ECHOES_LANG`` of a server: the language of the hub request that started it (a
    ``c.Spawner.environment`` callable; JupyterHub sets ``spawner.handler`` while it spawns),
    English for a server started through the REST API without a browser."""
    handler = getattr(spawner, "handler", None)
    if handler is None or not hasattr(handler, "request"):
        return DEFAULT
    return choose(None, handler.get_cookie(COOKIE), handler.request.headers.get("Accept-Language"))


def configure_hub(c) -> None:
    """The hub's pages translated (:class:`HubPages` in both of JupyterHub's Jinja2
    environments), every lab started in its user's language (``ECHOES_LANG``) and every app
    told the browser's languages."""
    options = dict(c.JupyterHub.get("jinja_environment_options", {}))
    options["extensions"] = [*options.get("extensions", []), f"{__name__}.HubPages"]
    c.JupyterHub.jinja_environment_options = options
    c.Spawner.environment.update({"ECHOES_LANG": spawn_language})
    # Voilà passes the browser's languages to an app's kernel (HTTP_ACCEPT_LANGUAGE, RFC 3875
    # §4.1.18), where echoes_lab.i18n.app_language reads them
    c.Spawner.args = [*c.Spawner.get("args", []),
                      "--VoilaConfiguration.http_header_envs=['Accept-Language']"]


def set_lab_language(lang: str | None, settings_dir: str | Path | None = None) -> Path | None:
    """Make ``lang`` (a hub language code, ``ECHOES_LANG``) the user's JupyterLab language,
    unless the user has chosen one (JupyterLab's Settings › Language writes the same file, which
    is then kept). Runs in the user's server, as the user; returns the file written, if any.

    The setting is ``@jupyterlab/translation-extension:plugin``'s ``locale``; the file lives in
    JupyterLab's user-settings directory (``$JUPYTERLAB_SETTINGS_DIR``, else
    ``~/.jupyter/lab/user-settings``, as jupyterlab_server finds it).
    """
    import json
    import os

    pack = LAB_PACKS.get((lang or "").strip().lower())
    if pack is None:
        return None
    if settings_dir is None:
        from jupyter_core.paths import jupyter_config_dir

        settings_dir = os.environ.get("JUPYTERLAB_SETTINGS_DIR") or os.path.join(
            jupyter_config_dir(), "lab", "user-settings")
    path = Path(settings_dir).joinpath(*LAB_SETTING)
    if path.exists() or path.is_symlink():
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps({"locale": pack}, indent=4) + "\n"
    try:  # O_EXCL: a file made meanwhile (the user's own choice) is kept, never overwritten
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return None
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    return path
