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

To add a language: copy a catalogue, translate its ``msgstr`` lines, add the code to
``LANGUAGES``; ``tests/test_i18n.py`` fails while a page string is missing from a catalogue.
"""

from __future__ import annotations

import contextlib
import io
from contextvars import ContextVar
from functools import cache
from pathlib import Path

from echoes_lab.errors import EchoesError

LOCALE_DIR = Path(__file__).resolve().parent / "locale"
DOMAIN = "echoes"
#: the languages pages are offered in (English: the templates' own), by their own names
LANGUAGES = {"en": "English", "fr": "Français", "de": "Deutsch", "it": "Italiano",
             "es": "Español"}
DEFAULT = "en"
COOKIE = "echoes-lang"
#: the templates whose strings are marked (the catalogue test extracts them)
TRANSLATED_TEMPLATES = ("service-page.html", "error.html", "reports.html")
_current: ContextVar[str] = ContextVar("echoes_page_language", default=DEFAULT)


def catalogue_path(lang: str) -> Path:
    return LOCALE_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.po"


@cache
def translations(lang: str):
    """The compiled catalogue of ``lang`` (for English or a language without one: the strings
    as written)."""
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po
    from babel.support import NullTranslations, Translations

    path = catalogue_path(lang)
    if lang not in LANGUAGES or lang == DEFAULT:
        return NullTranslations()
    if not path.is_file():  # a language offered without its catalogue: a packaging defect
        msg = (f"{path}: the {LANGUAGES[lang]} catalogue of the hub's pages is missing; "
               "reinstall echoes-lab (its wheel ships hub/locale/*/LC_MESSAGES/*.po)")
        raise EchoesError(msg)
    with path.open("rb") as f:
        catalog = read_po(f, locale=lang, domain=DOMAIN)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return Translations(buffer, domain=DOMAIN)


def gettext(message: str, **variables) -> str:
    """``message`` in the page's language, ``%(name)s`` filled from ``variables``."""
    text = translations(_current.get()).gettext(message)
    return text % variables if variables else text


def ngettext(singular: str, plural: str, n: int, **variables) -> str:
    text = translations(_current.get()).ngettext(singular, plural, n)
    return text % {"num": n, **variables}


def install(env):
    """Give a Jinja2 environment the translating ``_``, ``gettext`` and ``ngettext``."""
    env.globals.update(_=gettext, gettext=gettext, ngettext=ngettext)
    return env


@contextlib.contextmanager
def rendering_in(lang: str):
    """Render the templates of this block in ``lang``."""
    token = _current.set(lang if lang in LANGUAGES else DEFAULT)
    try:
        yield
    finally:
        _current.reset(token)


def parse_accept_language(header: str | None) -> list[str]:
    """The languages of an ``Accept-Language`` header, best first (``q`` weights, ties in the
    header's order; ``*`` and ``q=0`` dropped), lower case:
    "fr-CH, fr;q=0.9, en;q=0.8" → ["fr-ch", "fr", "en"]."""
    ranked = []
    for position, part in enumerate((header or "").split(",")):
        tag, _, params = part.strip().partition(";")
        tag, q = tag.strip().lower(), 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if tag and tag != "*" and q > 0:
            ranked.append((-q, position, tag))
    return [tag for _, _, tag in sorted(ranked)]


def choose(switch: str | None, cookie: str | None, accept_language: str | None) -> str:
    """The page's language: the switch, the cookie, the browser's languages, then English."""
    for tag in (switch, cookie, *parse_accept_language(accept_language)):
        tag = (tag or "").strip().lower()
        for candidate in (tag, tag.split("-")[0]):
            if candidate in LANGUAGES:
                return candidate
    return DEFAULT
