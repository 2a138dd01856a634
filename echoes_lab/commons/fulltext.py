"""Full-text search over the bodies of annotations, in their languages.

An annotation's bodies say their language (``"language": "fr"``, Web Annotation Data Model
§3.2.4); words are reduced to their stems by that language's Snowball stemmer (M. F. Porter,
"Snowball: A language for stemming algorithms", 2001, https://snowballstem.org/), so that
*peintures* finds *peinture* and *Gemälde* finds *Gemäldes*.

* **PostgreSQL**: a ``tsvector`` per annotation and language, made by ``to_tsvector`` with the
  language's text search configuration (``english``, ``french``, ``german`` …; ``simple``
  when the language is not given), in a GIN index; queries by ``websearch_to_tsquery``, ranked
  by ``ts_rank`` (https://www.postgresql.org/docs/current/textsearch-controls.html).
* **SQLite**: an FTS5 table (https://www.sqlite.org/fts5.html) whose text is the stems made
  here with the ``snowballstemmer`` package (the same Snowball algorithms PostgreSQL's
  dictionaries use); ranked by FTS5's ``bm25``.

A query without a language matches the stems of every supported language (a word is looked up
as the English, French, German … stemmers reduce it); ``lang=fr`` restricts it to one.
"""

from __future__ import annotations

import re
from functools import cache, lru_cache

#: BCP 47 primary language subtags -> the name shared by Snowball and PostgreSQL's configurations
LANGUAGES = {
    "da": "danish", "de": "german", "en": "english", "es": "spanish", "fi": "finnish",
    "fr": "french", "hu": "hungarian", "it": "italian", "nl": "dutch", "no": "norwegian",
    "nb": "norwegian", "nn": "norwegian", "pt": "portuguese", "ro": "romanian",
    "ru": "russian", "sv": "swedish",
}
CONFIGS = tuple(sorted(set(LANGUAGES.values())))
WORD = re.compile(r"\w+", re.UNICODE)


def config(language: str | None) -> str:
    """The stemmer / PostgreSQL configuration of a BCP 47 tag (``simple``: no stemming)."""
    if not language:
        return "simple"
    return LANGUAGES.get(language.split("-")[0].lower(), "simple")


@cache
def _stemmer(name: str):
    import snowballstemmer

    return snowballstemmer.stemmer(name)


@lru_cache(maxsize=200_000)
def _stem(language: str, word: str) -> str:
    # a corpus repeats its words: the pure-Python Snowball stemmer runs once per distinct word
    return _stemmer(language).stemWord(word)


def words(text: str) -> list[str]:
    return [w.lower() for w in WORD.findall(text)]


def stems(text: str, language: str) -> list[str]:
    """The words of ``text`` reduced by the stemmer ``language`` (a name of :data:`CONFIGS`)."""
    ws = words(text)
    return ws if language == "simple" else [_stem(language, w) for w in ws]


def document(parts: list[tuple[str | None, str]]) -> str:
    """What SQLite's FTS5 indexes for an annotation: its words, stemmed in their language."""
    return " ".join(" ".join(stems(text, config(lang))) for lang, text in parts)


def fts5_query(q: str, lang: str | None = None) -> str | None:
    """An FTS5 ``MATCH`` expression: every word of ``q``, each as any of its stems.

    Words are quoted (FTS5 syntax in the text is taken literally); None when ``q`` has no word.
    """
    names = (config(lang),) if lang else ("simple", *CONFIGS)
    terms = []
    for word in words(q):
        forms = sorted({word} | {_stem(n, word) for n in names if n != "simple"})
        terms.append("(" + " OR ".join(f'"{f}"' for f in forms) + ")")
    return " AND ".join(terms) or None
