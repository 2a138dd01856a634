"""Apps in the user's language: gettext catalogues and the choice of a language.

The curated apps (Voilà renders ``~/examples/apps/*.ipynb`` in the user's own server) mark
their labels, buttons and messages as ``_("Update")`` or ``_("%(n)s sites shown", n=5)`` with
a :func:`translator`. Their catalogues are data a community can extend: gettext PO files,
``echoes_lab/locale/<lang>/LC_MESSAGES/apps.po``, read with Babel and compiled in memory.

An app's language is, in order (:func:`app_language`): ``?lang=xx`` in the app's address (the
hub's home page adds it when the user chose a language other than the browser's; Voilà passes
the query to the kernel as ``QUERY_STRING``), the browser's ``Accept-Language`` (every lab's
Voilà passes it to the kernel as ``HTTP_ACCEPT_LANGUAGE``), the language the user's lab was
started in (``ECHOES_LANG``), else English, the language the apps are written in.

The hub's pages use the same choice (:func:`choose`) with their own catalogues
(``echoes_lab.hub.i18n``).
"""

from __future__ import annotations

import io
import os
from functools import cache
from pathlib import Path
from urllib.parse import parse_qs

from echoes_lab.errors import EchoesError

LOCALE_DIR = Path(__file__).resolve().parent / "locale"
DOMAIN = "apps"
#: the languages pages and apps are offered in (English: as written), by their own names
LANGUAGES = {"en": "English", "fr": "Français", "de": "Deutsch", "it": "Italiano",
             "es": "Español"}
DEFAULT = "en"
#: the cookie that remembers a language chosen with a page's switch
COOKIE = "echoes-lang"


def parse_accept_language(header: str | None) -> list[str]:
    """The languages of an ``Accept-Language`` header, best first (RFC 9110 §12.5.4: ``q``
    weights, ties in the header's order; ``*`` and ``q=0`` dropped), lower case:
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
    """The language: the switch, the cookie, the browser's languages (a regional tag takes its
    language), then English."""
    for tag in (switch, cookie, *parse_accept_language(accept_language)):
        tag = (tag or "").strip().lower()
        for candidate in (tag, tag.split("-")[0]):
            if candidate in LANGUAGES:
                return candidate
    return DEFAULT


@cache
def read_catalogue(path: Path, lang: str, domain: str):
    """The compiled gettext catalogue in PO file ``path`` (Babel's reader, compiled in memory:
    no ``.mo`` build step); English, or a language not offered, gets the strings as written."""
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po
    from babel.support import NullTranslations, Translations

    if lang not in LANGUAGES or lang == DEFAULT:
        return NullTranslations()
    if not path.is_file():  # a language offered without its catalogue: a packaging defect
        msg = (f"{path}: the {LANGUAGES[lang]} catalogue ({domain}) is missing; reinstall "
               "echoes-lab (its wheel ships the locale/*/LC_MESSAGES/*.po files)")
        raise EchoesError(msg)
    with path.open("rb") as f:
        catalog = read_po(f, locale=lang, domain=domain)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return Translations(buffer, domain=domain)


def app_language(environ: dict | None = None) -> str:
    """The language an app is shown in (see the module's text), from the kernel's environment
    (``os.environ`` unless given)."""
    environ = os.environ if environ is None else environ
    switch = parse_qs(environ.get("QUERY_STRING", "")).get("lang", [None])[-1]
    browser = environ.get("HTTP_ACCEPT_LANGUAGE") or environ.get("ECHOES_LANG")
    return choose(switch, None, browser)


class Translator:
    """``_`` of an app: ``_(message, **values)`` is ``message`` in :attr:`lang` with its
    ``%(name)s`` placeholders filled."""

    def __init__(self, lang: str, locale_dir: Path = LOCALE_DIR, domain: str = DOMAIN):
        self.lang = lang if lang in LANGUAGES else DEFAULT
        self._catalogue = read_catalogue(locale_dir / self.lang / "LC_MESSAGES" /
                                         f"{domain}.po", self.lang, domain)

    def __call__(self, message: str, **values) -> str:
        text = self._catalogue.gettext(message)
        return text % values if values else text

    def number(self, value, decimals: int | None = None) -> str:
        """``value`` written as the language writes numbers (CLDR's symbols and grouping
        through Babel: 12 345,6 in French, 12.345,6 in German), with ``decimals`` places if
        given."""
        from babel.numbers import format_decimal

        places = "." + "0" * decimals if decimals else ""
        return format_decimal(value, format=None if decimals is None else "#,##0" + places,
                              locale=self.lang)

    def percent(self, fraction: float, decimals: int = 0) -> str:
        """``fraction`` (0.256) as a percentage in the language's own pattern (CLDR's: 25.6%
        in English, 25,6 % in French and German)."""
        from babel import Locale
        from babel.numbers import format_percent

        pattern = Locale.parse(self.lang).percent_formats[None].pattern
        if decimals:
            pattern = pattern.replace("#,##0", "#,##0." + "0" * decimals, 1)
        return format_percent(fraction, format=pattern, locale=self.lang)

    def __repr__(self) -> str:
        return f"Translator({self.lang!r})"


def translator(lang: str | None = None) -> Translator:
    """The ``_`` of an app in ``lang`` (default: :func:`app_language`).

    >>> from echoes_lab.i18n import translator
    >>> _ = translator("fr")
    >>> _("Update")
    'Mettre à jour'
    """
    return Translator(app_language() if lang is None else lang)
