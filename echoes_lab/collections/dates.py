"""Historical and fuzzy dates as cataloguers write them, turned into year intervals and EDTF.

``parse("c.1830–41")`` reads the years **as written** (1830 to 1841), says how they are
qualified (approximate, uncertain, before/after, an event such as "exhibited"), offers a
**widened** interval for the qualifiers (``c.`` widens by ``approx_years`` on each side,
"before"/"after" open one end), and an EDTF string (Library of Congress Extended Date/Time
Format, ISO 8601-2:2019), checked with the ``edtf`` package. A string that matches no known
form is reported as unparsed, never guessed.

Conventions follow how museums record machine-readable years beside display dates (e.g. the
Tate's ``date_start``/``date_end``): the earliest year is the first year written, the latest
the last one ("1978, printed 2005" → 1978–2005) except the years of a later re-issue of the same
work (``REISSUE_EVENTS``: "1825, reprinted 1874" → 1825; in brackets a printing too: "1972
(printed 1983)" → 1972), kept in ``parts``; short range ends take the start's century
("1823–4" → 1823–1824); a decade covers its ten years ("1850s" → 1850–1859) and its early,
mid and late parts 1850–1855, 1853–1857 and 1855–1859; a century's hundreds are the century
("1800s" → 1800–1899, rule "hundreds as century") and their parts its thirds ("late 1900s" →
1967–1999, ``HUNDREDS``); a range of parts runs from the first's start to the second's end
("mid- to late 1800s" → 1833–1899); a century covers its hundred years
("18th century" → 1700–1799), early and late parts its halves and "mid" 1830–1870-like middle
two fifths, quarters and halves when named; French "début", "milieu" and "fin" are its thirds, as
French archives give them ("fin XVIIIe siècle" → 1767–1799, FranceArchives' own years 1768/1800).

Recognised (English, French, Italian, German, Spanish): plain years, ranges with short ends,
``c.``/``ca.``/``circa``/``about``/``vers``/``verso``/``um``/``hacia``/``hacia el``, ``?``,
decades ("1850s", "années 1850", "1850er Jahre"), centuries and parts of them ("early 19th
century", "XVIIIe siècle", "début du XIXe siècle", "secolo XVIII", "fine del XVIII secolo",
"18. Jahrhundert", "Anfang des 19. Jahrhunderts", "siglo XVIII", "finales del siglo XIX"),
"before/after X" (avant, après, vor, nach, antes de, después de, prima del, dopo il), event
words ("exhibited 1836", "published 1787", "printed", "cast", ...), lists ("1956, 1957",
"1827 or 1828"), "n.d."/"date not known" (a known absence of a date), and EDTF itself; calendar
dates ("1921-07-01", "1.7.1921", "12 March 1921") and months ("7.1921") keep their year; a part
may follow its century as catalogues order it ("sec. XVI, primo quarto", "XIXe siècle (fin)");
a bare Roman numeral is a century ("XVIII", the Italian catalogue's DTZG field), so is one with a
French ordinal ending ("[XIXe]", "XVIIe-XVIIIe siècles") and one after "s." ("s. XVII"); two
centuries may share one word ("siglos XVI-XVII", "... principios del XIX"). Dates of the French
Republican calendar ("an II", "15 nivôse an II", "5e jour complémentaire an IV") become the
Gregorian years they fall in. Dutch, as the Nationaal Archief's finding aids write it: "19de eeuw",
"begin/midden/eind der 18de eeuw" (halves and middle as in other languages), "2de helft",
"laatste helft", "Eind der 16de of begin der 17de eeuw" (one shared "eeuw"), "omstreeks",
"voor"/"na", "z.j." (no year); digits supplied in brackets ("(14)16", "14(20)") and a typed
"l" for 1 in a year ("l428") are read as the year they complete.

The other languages of Europe's collections (every official EU language, Catalan, Basque,
Galician, Welsh, Norwegian, Icelandic, Ukrainian, Serbian in both scripts, Turkish, Russian) are
read from their vocabularies in ``date_languages.LANGUAGES``: centuries with the number before
or after the word ("20. század", "Século XX", "Secolul al XIX-lea", "15ú haois", "19ος
αιώνας", "XIX w."), the Nordic hundreds as centuries ("1900-talet", "1900-luku" = 1900–1999,
rule "hundreds as century") and other years with those endings as decades ("1920-talet",
"1920'erne", "1920-е годы"), parts before or after the century ("początek XIX wieku", "19.
század eleje", "1800-talets första hälft"), circa/before/after ("ok.", "före", "után"), eras
("p.n.e.", "f.Kr.", "π.Χ.", "до н. э.") and month names. Decimal digits of any script
("١٠/٠٣/١٨٦٩") are read as their values (rule "digits of another script"), unless the year
they give is still to come: then it is another calendar's and refused. Roman numerals typed in
Cyrillic look-alikes ("ХІХ"), Unicode Roman numeral signs ("Ⅻ") and Greek alphabetic numerals
("ιθʹ αιώνας") are read as the numbers they are.
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import lru_cache

import pandas as pd

from echoes_lab.collections.date_languages import LANGUAGES

__all__ = ["DateRange", "parse", "parse_series", "unparsed"]

#: years added on each side of an approximate ("c.") date in the widened interval
APPROX_YEARS = 5


def _vocab(*keys: str) -> str:
    """The words of every language in ``date_languages.LANGUAGES`` for ``keys``, longest first
    (so "talets" is tried before "tal"), as one alternation."""
    words = {w for entry in LANGUAGES.values() for k in keys for w in entry.get(k, ())}
    return "|".join(sorted(words, key=len, reverse=True))


def _words(*keys: str) -> re.Pattern:
    """A whole-word pattern of the languages' ``keys`` words (bounded by non-letters, so words
    ending in a full stop, "ок.", "pocz.", match as well)."""
    return re.compile(_word_pattern(*keys), re.I)


def _word_pattern(*keys: str) -> str:
    return rf"(?<!\w)(?:{_vocab(*keys)})(?![^\W\d_])"


UNKNOWN = re.compile(
    r"^\s*\(?\s*(n\.?\s?d\.?|no date|undated|date not known|date unknown|unknown|not dated|"
    r"s\.\s?d\.?|sans date|senza data|s\.\s?d|o\.\s?j\.?|ohne jahr|sin fecha|sine dato|"
    # Dutch: "z.j." (zonder jaar), "z.d." (zonder datum), "ongedateerd" (Nationaal Archief)
    r"z\.\s?j\.?|zj\.?|z\.\s?d\.?|zonder jaar|zonder datum|ongedateerd|"
    # and the other languages' ("b.d.", "u.å.", "б.г.", "bez roku", "tarihsiz")
    + _vocab("no_date") + r")\s*\)?\s*$",
    re.I,
)
APPROX = re.compile(r"\b(c\.|ca\.?|circa|about|around|approx\.?|aprox\.?|aproximadamente|vers|"
                    r"verso|um|hacia|intorno al|env\.?|environ|omstreeks|ongeveer|rond)"
                    r"(?=\s|\d|\)|\]|$)|\bc(?=\d)|"
                    r"\bh\.(?=\s*\d{3,4})"  # "h. 1650": Spanish catalogues' "hacia"
                    "|" + _word_pattern("circa"), re.I)  # "około", "noin", "körül", ...
BEFORE = re.compile(r"\b(before|avant|vor|antes de|antes del|anterior a|antérieur à|prima del|"
                    r"prima di|ante|until|till|up to|jusqu'à|jusqu'en|jusque|bis|hasta|fino al|"
                    r"voor|vóór)\b|" + _word_pattern("before"), re.I)
AFTER = re.compile(r"\b(after|après|apres|nach|después de|despues de|después del|posterior a|"
                   r"postérieur à|dopo il|dopo|post|from|since|depuis|dès|à partir de|ab|seit|"
                   r"desde|a partir de|dal|na)\b|" + _word_pattern("after"), re.I)
EVENTS = re.compile(
    r"\b(exhibited|published|first published|printed|reprinted|cast|engraved|reproduced|"
    r"enlarged version|reconstructed|remade|replica|editioned|reworked|dated|signed|inscribed|"
    r"erected|completed|begun|started|finished|issued|photographed|executed|posthumous)\b", re.I)
#: events that re-issue an existing work (a new impression, edition or cast): a year written
#: after one of them is kept in ``parts`` but does not extend the work's span, as in the Tate's
#: date_start/date_end ("1825, reprinted 1874" → 1825: 108 Tate rows against 1; "published" 65
#: against 16, "cast" 92 against 12); "printed" (199 against 56) and "exhibited" do extend it.
#: A year "after" such a date ("1968, printed after 1971") is not in the span either.
REISSUE_EVENTS = ("reprinted", "re-issued", "reissued", "published", "first published", "cast",
                  "replica", "after")
#: a re-issue in brackets after the work's date is not in its span either, "printed" included:
#: "1972 (printed 1983)" → 1972, as the National Portrait Gallery writes its later prints (651 of
#: its 653 such ``Dated`` values end at the work's year in its own DateEnd, american-art/npg
#: NPGObjects3.csv); after a comma a printing extends the span (Tate; the Autry's "1988,
#: printed 2006" = 1988–2006). A bound on a re-issue ("1892, printed before 1913", "printed
#: after 1971") dates the re-issue only, never the work.
BRACKETED_REISSUE_EVENTS = REISSUE_EVENTS[:-1] + ("printed", "editioned", "restruck", "issued")
_BRACKETED = "|".join(BRACKETED_REISSUE_EVENTS)
REISSUE = re.compile(r"\b(?:" + "|".join(REISSUE_EVENTS) + r")\b"
                     rf"|\(\s*(?:{_BRACKETED})\b|\b(?:{_BRACKETED})\s+before\b", re.I)

ROMAN = re.compile(r"\b([IVXL]{1,7})(?:e|er|ème|eme|°|º)?\b")
_ROMAN_VALUES = {"I": 1, "V": 5, "X": 10, "L": 50}


def _roman(s: str) -> int | None:
    total, prev = 0, 0
    for ch in reversed(s.upper()):
        v = _ROMAN_VALUES.get(ch)
        if v is None:
            return None
        total = total - v if v < prev else total + v
        prev = max(prev, v)
    return total if 0 < total <= 21 else None


def _republican_year(n: int, month: int | None, day: int | None) -> tuple[int, int]:
    """Gregorian years of a Republican date: year ``n`` alone spans two Gregorian years, a month
    one or two, a day one (its 1 January falls in nivôse)."""
    y, d = REPUBLICAN_NEW_YEAR[n]
    start = date(y, 9, d)
    if month is None:
        end = REPUBLICAN_NEW_YEAR.get(n + 1, (y + 1, 22))
        return y, (date(end[0], 9, end[1]) - timedelta(days=1)).year
    first = (month - 1) * 30 + (day or 1) - 1
    last = first if day else first + (5 if month == 13 else 29)
    return (start + timedelta(days=first)).year, (start + timedelta(days=last)).year


def _republican(s: str) -> tuple[str, int]:
    """Rewrite Republican dates as the Gregorian years they fall in ("an II" → "1793–1794",
    "15 nivôse an II" → "1794"). A month without its year takes the next one written ("15
    nivôse-1er messidor an II"), as catalogues share it."""
    hits = list(REPUBLICAN_DATE.finditer(s))
    if not any(m.group("n") or m.group("y") for m in hits):
        return s, 0
    out, year, count = [], None, 0
    for m in reversed(hits):
        roman = m.group("n") or m.group("y")
        n = _roman(roman) if roman else year
        if roman:
            year = n
        if not n or n > 14:
            continue
        month = None
        if m.group("m"):
            month = next(i + 1 for i, pat in enumerate(REPUBLICAN_MONTHS)
                         if re.fullmatch(pat, m.group("m"), re.I))
        day = int(m.group("d")) if m.group("d") else None
        lo, hi = _republican_year(n, month, day if day and day <= 30 else None)
        out.append((m.start(), m.end(), f"{lo}" if lo == hi else f"{lo}–{hi}"))
        count += 1
    for start, end, text in out:  # right to left: positions stay valid
        s = s[:start] + text + s[end:]
    return s, count


# parts of a century / decade, as fractions of its span (start, end). Ordinals of quarters,
# thirds and halves in English, French, Italian, German and Spanish ("2e quart", "primer tercio",
# "zweites Viertel", "seconda metà"); "last" is the final one of its kind.
_ORDINALS = {
    1: r"first|1st|premier|premi[eè]re|1er|1[eè]re|1re|primo|prima|primer|primera|primero|"
       r"erste[snr]?|1\.|eerste|1ste",
    2: r"second|2nd|deuxi[eè]me|seconde?|2e|2[eè]me|secondo|seconda|segundo|segunda|"
       r"zweite[snr]?|2\.|tweede|2de",
    3: r"third|3rd|troisi[eè]me|3e|3[eè]me|terzo|terza|tercer|tercera|tercero|dritte[snr]?|3\.|"
       r"derde|3de",
    4: r"fourth|4th|quatri[eè]me|4e|4[eè]me|quarto|quarta|cuarto|cuarta|vierte[snr]?|4\.|"
       r"vierde|4de",
    -1: r"last|final|dernier|derni[eè]re|ultimo|ultima|[uú]ltimo|[uú]ltima|letzte[snr]?|laatste",
}
_UNITS = {4: r"quarter|quart|quarto|cuarto|viertel|kwart",
          3: r"third|tiers|terzo|tercio|drittel",
          2: r"half|moiti[eé]|met[aà]|mitad|h[aä]lfte|haelfte|helft"}
# and the other languages' ordinals and units, from their vocabularies ("druga połowa",
# "első fele", "1800-talets första hälft")
for _k, _key in ((1, "first"), (2, "second"), (3, "third_ord"), (4, "fourth"), (-1, "last")):
    if _extra := _vocab(_key):
        _ORDINALS[_k] += "|" + _extra
for _k, _key in ((4, "quarter"), (3, "third"), (2, "half")):
    if _extra := _vocab(_key):
        _UNITS[_k] += "|" + _extra
# "1ª mitad", "2.º cuarto", "1° quarto": a numeral with an ordinal indicator; "4-я четверть",
# "2-га половина": with a Russian or Ukrainian ending
_ORDINALS = {k: (v + rf"|{k}\.?[ªº°]|{k}-?(?:я|й|ая|ой|ий|га|ша)" if k > 0 else v)
             for k, v in _ORDINALS.items()}
ORDINAL_PART = re.compile(
    r"(?<!\w)(?P<ord>" + "|".join(f"(?:{v})" for v in _ORDINALS.values()) + r")\s+(?P<unit>"
    + "|".join(f"(?:{v})" for v in _UNITS.values()) + r")(?!\w)", re.I)
#: French archivists read "début", "milieu" and "fin" of a century as its thirds: the
#: FranceArchives finding aids give "début XVIIIe siècle" as 1701/1733, "milieu XIXe siècle" as
#: 1834/1867 and "fin XVIIIe siècle" as 1768/1800 in their own ``normal`` attribute
#: (tests/data/real/dates/ead-francearchives.csv); other languages' early/late keep halves (the
#: Tate: "late 18th C" = 1750-1799)
FRENCH_THIRDS = [
    (re.compile(r"\b(d[ée]but)\b", re.I), (0.0, 1 / 3), "early"),
    (re.compile(r"\b(milieu)\b", re.I), (1 / 3, 2 / 3), "mid"),
    (re.compile(r"\b(fin)\b", re.I), (2 / 3, 1.0), "late"),
]
PARTS = FRENCH_THIRDS + [
    (re.compile(r"\b(early|inizio|anfang|fr[üu]he[sn]?|fruehe[sn]?|principios|"
                r"principio|comienzos|begin)\b", re.I), (0.0, 0.5), "early"),
    (re.compile(r"\b(mid|middle|met[àa]|mitte|mediados|midden)\b", re.I), (0.3, 0.7), "mid"),
    (re.compile(r"\b(late|fine|ende|sp[äa]te[sn]?|spaete[sn]?|finales|final|tardo|tarda|"
                r"eind|einde|laatst)\b", re.I),
     (0.5, 1.0), "late"),
    # the other languages' words before the century ("początek XIX wieku", "конец XVIII века",
    # "slutet av 1800-talet"): halves and middle two fifths, as in English, German and Spanish
    (_words("early"), (0.0, 0.5), "early"),
    (_words("mid"), (0.3, 0.7), "mid"),
    (_words("late"), (0.5, 1.0), "late"),
]
#: part words that follow their century ("19. század eleje", "1800-luvun loppu", "XIX a.
#: pabaiga", "20. yüzyıl başları")
PARTS_AFTER = [(re.compile(r"\s*-?\s*(?:" + _vocab(key + "_after") + r")(?![^\W\d_])", re.I),
                span) for key, span in (("early", (0.0, 0.5)), ("mid", (0.3, 0.7)),
                                        ("late", (0.5, 1.0)))]
# English part words and a range of two ("mid- to late", "early-mid", "early to mid-"): the
# range runs from the first part's start to the second's end
_EN_PART = r"early|middle|mid|late"
_EN_SPANS = {"early": (0.0, 0.5), "middle": (0.3, 0.7), "mid": (0.3, 0.7), "late": (0.5, 1.0)}
PART_RANGE = re.compile(
    rf"\b(?P<a>{_EN_PART})\b\s*-?\s*(?:to|-|–|—)\s*(?P<b>{_EN_PART})\b", re.I)
# the part words right before a number ("late 1900s", "mid- to late 1800s", "second half of the")
PART_BEFORE = re.compile(
    rf"\b(?P<a>{_EN_PART})\b(?:\s*-?\s*(?:to|-|–|—)\s*(?P<b>{_EN_PART})\b)?"
    r"\s*-?\s*(?:(?:of\s+)?the\s+)?$", re.I)
#: "1800s", "1900s": a century's hundreds, not the decade 1800–1809. A part before them ("late
#: 1900s") makes the century almost certain; alone, the form is ambiguous and the real sources
#: read it as the century: the Autry Museum's own EARLIEST_YEAR/LATEST_YEAR (american-art/autry
#: AutryDated.csv) give "late 1800s" 1867–1899, "mid-1800s" 1834–1866, "early 1900s" 1900–1933,
#: "mid- to late 1800s" 1833–1899 and 1845–1899, "late 1900s" 1975–1999: its parts are thirds,
#: which we count as French archives' are (1800–1832, 1833–1866, 1867–1899). The rule is named
#: "hundreds as century"; beside a decade that is not a hundred ("1890s–1900s") the hundreds are
#: that decade ("hundreds as decade"). "2000s" is the decade 2000–2009, as written today.
HUNDREDS = re.compile(r"(?<!\d)(?P<y>1\d00)'?s\b")
_HUNDREDS_THIRDS = {"early": (0.0, 1 / 3), "middle": (1 / 3, 2 / 3), "mid": (1 / 3, 2 / 3),
                    "late": (2 / 3, 1.0)}


def _span_of_parts(m: re.Match, spans: dict) -> tuple[float, float]:
    """The fraction of a span that one part word or a range of two ("mid- to late") covers."""
    a = spans[m.group("a").lower()]
    b = spans[m.group("b").lower()] if m.group("b") else a
    return min(a[0], b[0]), max(a[1], b[1])


def _ordinal_span(m: re.Match) -> tuple[float, float]:
    word, unit = m.group("ord"), m.group("unit")
    n = next(k for k, v in _UNITS.items() if re.fullmatch(v, unit, re.I))
    k = next(k for k, v in _ORDINALS.items() if re.fullmatch(v, word, re.I))
    k = n if k == -1 else min(k, n)
    return ((k - 1) / n, k / n)


CENTURY_WORD = (r"(?:century|cent\.?|c\b|siècle|siecle|s\.|secolo|sec\.|jahrhundert[s]?|jh\.?|"
                r"siglo|eeuw|" + _vocab("century") + ")")
#: the endings of an ordinal number before "century": English, Dutch, French, Italian ("19th",
#: "19de", "19e", "19esimo"), a full stop (German, the Nordic, Baltic and Slavic languages,
#: Hungarian, Turkish, Basque: "19. század", "XIX. mendea"), Greek "19ος"/"19ου", Irish "19ú",
#: Welsh "19eg"/"18fed", Swedish "19:e"/"1:a", Russian/Ukrainian "19-й", Turkish "19'uncu"
_ORDINAL_END = (r"(?:st|nd|rd|th|ste|de|e|er|ème|eme|esimo|\.|°|º|ος|ου|ός|ού|ο|ú|fed|ed|eg|ain|"
                r":e|:a|-?й|-?го|-?ти|-?те|'?[iıuü]n?c[iıuü])")
#: abbreviations of "century" ("XIX w.", "19. sz.", "XV a.", "XIX в."): read only after a Roman
#: numeral or an ordinal number with its full stop, as they are written, never after a bare
#: number ("augustus 2 St. Angliae" is no century)
_CENTURY_ABBR = _vocab("century_abbr")
CENTURY_NUM = re.compile(
    rf"(?<![\d.])(?P<n>\d{{1,2}})(?:{_ORDINAL_END}?\s*-?\s*{CENTURY_WORD}"
    rf"|\.\s*(?:{_CENTURY_ABBR})(?![^\W\d_]))", re.I)
#: words for "century" written before its number: "Siglo 19", "secolo 20", "século XIX",
#: "segle XV", "Secolul al XIX-lea", "is-seklu 18"
_CENTURY_BEFORE = r"secolo|siglo|" + _vocab("century_before")
CENTURY_NUM_BEFORE = re.compile(
    rf"(?<!\w)(?:{_CENTURY_BEFORE})\s+(?P<n>\d{{1,2}})(?![\d.]|\s*(?:st|nd|rd|th)\b)", re.I
)
FRENCH_SHORT_CENTURY = re.compile(
    r"^\s*(?P<part>(?:d[ée]but|milieu|fin)\s+(?:du\s+)?)?(?P<n>[2-9]|1\d|2[01])(?:e|ème|eme)\s*$",
    re.I)
CENTURY_ROMAN_AFTER = re.compile(
    rf"\b(?P<r>[IVXL]{{1,7}})(?:e|er|ème|eme|°|º|\.)?\s+{CENTURY_WORD}"
    rf"|\b(?P<ra>(?-i:[IVXL]{{1,7}}))\.?\s*(?:{_CENTURY_ABBR})(?![^\W\d_])", re.I)
# centuries named by their hundreds ("Cinquecento", "'500": the 1500s, Italian usage) or by an
# ordinal word ("Sedicesimo secolo", "sixteenth century"): rewritten as "16th century" before
# the years are read, so parts and eras apply to them as to any century
NAMED_CENTURIES = {"duecento": 13, "trecento": 14, "quattrocento": 15, "cinquecento": 16,
                   "seicento": 17, "settecento": 18, "ottocento": 19, "novecento": 20}
NAMED_CENTURY = re.compile(r"(?<!\w)(?:(?P<name>" + "|".join(NAMED_CENTURIES)
                           + r")|'(?P<h>[2-9])00)(?!\w)", re.I)


def _named_century(m: re.Match) -> int:
    if m.group("name"):
        return NAMED_CENTURIES[m.group("name").lower()]
    return 11 + int(m.group("h"))  # "'500" is the Cinquecento: the 16th century


_ORDINAL_WORDS = {
    "it": ["primo", "secondo", "terzo", "quarto", "quinto", "sesto", "settimo", "ottavo", "nono",
           "decimo", "undicesimo", "dodicesimo", "tredicesimo", "quattordicesimo",
           "quindicesimo", "sedicesimo", "diciassettesimo", "diciottesimo", "diciannovesimo",
           "ventesimo", "ventunesimo"],
    # Spanish counts its centuries with cardinals after the word: "siglo diecinueve"
    "es": ["uno", "dos", "tres", "cuatro", "cinco", "seis", "siete", "ocho", "nueve", "diez",
           "once", "doce", "trece", "catorce", "quince", "dieciséis", "diecisiete", "dieciocho",
           "diecinueve", "veinte", "veintiuno"],
    "en": ["first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth",
           "tenth", "eleventh", "twelfth", "thirteenth", "fourteenth", "fifteenth", "sixteenth",
           "seventeenth", "eighteenth", "nineteenth", "twentieth", "twenty-first"],
}
# Finnish ordinals before "vuosisata" ("Ensimmäinen vuosisata"), Catalan and Portuguese
# cardinals after "segle"/"século" ("Segle dinou", "Século vinte"): from their vocabularies
_NUMBERS_AFTER = [LANGUAGES[k]["numbers_before"] for k in LANGUAGES
                  if "numbers_before" in LANGUAGES[k]]
_ORDINAL_WORDS.update({k: v["numbers_before_word"] for k, v in LANGUAGES.items()
                       if "numbers_before_word" in v})
ORDINAL_WORD = {w: i + 1 for words in [*_ORDINAL_WORDS.values(), *_NUMBERS_AFTER]
                for i, w in enumerate(words)}
_WORDS = "|".join(sorted(ORDINAL_WORD, key=len, reverse=True))
ORDINAL_CENTURY = re.compile(rf"(?<!\w)(?:(?P<w>{_WORDS})[\s-]+(?:secolo|century|vuosisa\w*)"
                             rf"|(?:siglo|segle|século)\s+(?P<es>{_WORDS}))(?!\w)", re.I)
# superscript letters of ordinals ("XIXᵉ siècle", "1ᵉʳ quart")
SUPERSCRIPTS = str.maketrans({"ᵉ": "e", "ʳ": "r", "ᵈ": "d", "ᵗ": "t", "ʰ": "h", "ˢ": "s",
                              "ⁿ": "n"})
# a part written after its century, as catalogues order them: "sec. XVI, primo quarto" (the
# Italian catalogue's DTZG + DTZS), "XIXe siècle (fin)", "18. Jh., 2. Hälfte"
PART_AFTER = re.compile(r"\s*[,(]\s*(?P<p>[^,;()]{2,30}?)\s*(?=\)|[,;]|$)")
# a whole date that is one Roman numeral, with a part perhaps: a century ("XVIII", "XX, inizio")
BARE_ROMAN = re.compile(r"^\s*(?P<r>[IVXL]{1,7})(?:e|er|ème|eme|°|º)?\s*(?P<rest>,.*)?$")
CENTURY_ROMAN_BEFORE = re.compile(rf"(?<!\w)(?:{_CENTURY_BEFORE}|sec\.)\s+(?P<r>[IVXL]{{1,7}})\b",
                                  re.I)
# "s. XVII" (Spanish and French catalogues): the numeral in capitals, so "s. v." is not one
CENTURY_S_ROMAN = re.compile(r"(?<!\w)[sS]\.\s*(?P<r>[IVXL]{1,7})\b")
# a Roman numeral with a French ordinal ending is a century even without "siècle": "[XIXe]",
# "XVIIe-XXe siècles", "[ca XVIIe]" (French archives' unitdate)
# ("IIIe République" is not one: a capitalised word after the numeral names something else)
CENTURY_ROMAN_ORDINAL = re.compile(
    r"(?<!\w)(?P<r>[IVXL]{1,7})(?:e|er|ème|eme)(?!\w)(?!\s+[A-ZÀ-Ý][a-zà-ÿ])")
# two centuries under one word: "siglos XVI-XVII", "s. XVI-XVII", "secoli XV-XVI": each is read
CENTURY_PAIR = re.compile(
    r"(?<!\w)(?P<w>siglos?|secoli|secolo|sec\.|s\.|séculos?|segles?)\s*(?P<a>(?-i:[IVXL]{1,7}))\s*"
    r"(?:-|–|/|\by\b|\be\b)\s*(?P<b>(?-i:[IVXL]{1,7}))\b", re.I)
# two Roman numerals before one word or abbreviation for centuries: "XIX–XX вв.", "XV-XVI wiek",
# "XVIII-XIX. század", "XVIII і XIX століття" (with the languages' "and"/"or"): each is a century
CENTURY_PAIR_AFTER = re.compile(
    r"(?<!\w)(?P<a>[IVXL]{1,7})\.?\s*(?:[-–/]|\s(?:and|or|et|ou|e|o|y|i|і|и|или|або|und|oder|"
    r"en|of|og|eller|och|ja|tai|és|vagy|ve|ir|un|in|si|și|sau|και|ή|agus|nó|a|ac|neu|u|jew|"
    r"eta|edo)\s)\s*(?P<b>[IVXL]{1,7})(?=\.?\s*(?i:"
    + CENTURY_WORD + "|" + _CENTURY_ABBR + r")(?![^\W\d_]))")
# a second century written without its word after a first: "finales del siglo XVIII -
# principios del XIX", "fin du XVIIIe - début du XIXe"
# (not Romanian "secolul al XIX-lea", whose "al" belongs to its numeral)
CENTURY_CONTINUED = re.compile(r"(?<!\w)(?<!(?i:secolul) )(?<!(?i:secolului) )(?<!(?i:sec)\. )"
                               r"(?<!(?i:veacul) )(?P<p>(?i:del|al|du|au|dal))\s+"
                               r"(?P<r>[IVXL]{1,7})(?!\w)")
# Dutch: the first of two centuries without its word, "Eind der 16de of begin der 17de eeuw",
# "Laatst 17de of begin 18de eeuw" (Nationaal Archief finding aids): the word is shared
DUTCH_CENTURY_SHARED = re.compile(
    r"(?<![\w.])(?P<n>\d{1,2}(?:ste|de|e))(?=\s*(?:of|en|tot|-|–)\s+(?:\w+\s+){0,2}"
    r"\d{1,2}(?:ste|de|e)\s+eeuw\b)", re.I)
# digits a cataloguer supplied in brackets inside a year, "(14)16", "14(20) sep. 11": one year
SUPPLIED_DIGITS = re.compile(r"(?<![\d(])(?:\((?P<a>\d{1,3})\)(?P<b>\d{1,3})|"
                             r"(?P<c>\d{1,3})\((?P<d>\d{1,3})\))(?![\d)])")
# a lower-case "l" typed for the digit 1 in a four-character year ("l428", "l4l0" in the
# Nationaal Archief's older finding aids): read as 1, never as the 3-digit year "428"
LETTER_L_YEAR = re.compile(r"(?<![^\W_])(?=[l\d]{4}(?![^\W_]))(?=[\d]*l)(?=l*\d)[l\d]{4}")

# the French Republican calendar (in use from 22 September 1792, "an I", to 31 December 1805,
# "11 nivôse an XIV"), still how French archives date the records of those years: "an II",
# "15 nivôse an II", "5e jour complémentaire an IV". Its year N began on 1 vendémiaire, on the
# Gregorian dates below (decree of 4 frimaire an II; sextile years III, VII and XI push the next
# new year a day later); months have 30 days, then 5 or 6 "jours complémentaires".
REPUBLICAN_NEW_YEAR = {1: (1792, 22), 2: (1793, 22), 3: (1794, 22), 4: (1795, 23), 5: (1796, 22),
                       6: (1797, 22), 7: (1798, 22), 8: (1799, 23), 9: (1800, 23), 10: (1801, 23),
                       11: (1802, 23), 12: (1803, 24), 13: (1804, 23), 14: (1805, 23)}
REPUBLICAN_MONTHS = ["vend[ée]miaire", "brumaire", "frimaire", "niv[ôo]se", "pluvi[ôo]se",
                     "vent[ôo]se", "germinal", "flor[ée]al", "prairial", "messidor", "thermidor",
                     "fructidor", r"(?:e\s+)?jours?\s+compl[ée]mentaires?"]
_REP_MONTH = "|".join(f"(?:{m})" for m in REPUBLICAN_MONTHS)
# (a day before a misspelt month, "16 vendémaire an IV", keeps the year: the month is not read)
REPUBLICAN_DATE = re.compile(
    rf"(?<!\w)(?:(?P<d>\d{{1,2}})(?:er|e)?\s*)?(?P<m>{_REP_MONTH})(?!\w)"
    r"(?:\s+an\s+(?P<n>(?-i:[IVX]{1,4}))(?!\w))?"
    r"|(?<!\w)(?:\d{1,2}(?:er|e)?\s+[^\W\d_]+\s+)?an\s+(?P<y>(?-i:[IVX]{1,4}))(?!\w)", re.I)
DECADE = re.compile(r"(?P<y>\d{3}0)(?:'?s\b|er\b(?:\s*jahre)?)", re.I)
DECADE_WORDED = re.compile(r"(?<!\w)(?:années|anni|años|décadas? de|decade of the|"
                           + _vocab("decade_before") + r")\s+(?P<y>\d{3}0)\b", re.I)
#: a hundred with a Nordic ending is a century: "1800-talet" (Swedish), "1800-tallet" (Danish,
#: Norwegian), "1800-luku"/"1800-luvun" (Finnish) are the 19th century, "000-talet" the first,
#: as Europeana's century entities label them (1801-1900); other years with those endings
#: are decades ("1920-talet", "1920-luvulla"), as are "1920'erne", "1920-årene", "1920-as
#: évek", "1920-е годы", "1920'ler", "1920-ih" (DECADE_ENDED)
HUNDREDS_ENDED = re.compile(
    r"(?<!\d)(?P<y>\d{0,2}00|0)\s*[-–]?\s*(?:" + _vocab("hundreds") + r")(?![^\W\d_])", re.I)
DECADE_ENDED = re.compile(
    r"(?<!\d)(?P<y>\d{3}0)\s*[-–]?\s*(?:" + _vocab("decade") + r")(?![^\W\d_])", re.I)
_RANGE_SEP = r"\s*(?:[-–—‐/]|\bto\b|\bà\b|\ba\b|\bbis\b|\bal\b)\s*(?:c\.\s*|ca\.?\s*|\?)?"
RANGE = re.compile(
    rf"(?P<a>\d{{3,4}}){_RANGE_SEP}(?P<b>\d{{1,4}})(?!\d|\s*(?:st|nd|rd|th)\b)", re.I)
YEAR = re.compile(r"(?<!\d)(?<!\d\.)(?P<y>\d{3,4})(?![\d]|'?s\b|er\b|\s*(?:st|nd|rd|th)\b)")
YEAR_SHORT = re.compile(r"(?<![\d.])(?P<y>\d{1,4})(?![\d]|'?s\b|er\b|\s*(?:st|nd|rd|th)\b)")
RANGE_SHORT = re.compile(
    rf"(?<![\d.])(?P<a>\d{{1,4}}){_RANGE_SEP}(?P<b>\d{{1,4}})(?!\d|\s*(?:st|nd|rd|th)\b)", re.I)
EDTF_LIKE = re.compile(r"^[\dXu~?%/.\[\]{},\-\s]+$")

# whole calendar dates and timestamps: only their year is kept (we work in whole years), so the
# month of "1921-07-01" (or unpadded "1884-9-8", as Europeana's eSbírky records write it) can
# never be read as the end of a short range ("1921–07")
ISO_DATE = re.compile(
    r"(?<![\d.])(?P<y>\d{4})-(?P<m>0?[1-9]|1[0-2])-(?P<d>0?[1-9]|[12]\d|3[01])"
    r"(?:[T ]\d{1,2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?(?![\d])"
)
# day-month-year with dots or slashes (European "1.7.1921", "01/07/1921"; month-first orders
# give the same year, which is all we keep)
DMY_DATE = re.compile(r"(?<![\d.])(?P<a>\d{1,2})[./](?P<b>\d{1,2})[./](?P<y>\d{4})(?![\d])")
# month and year ("7.1921", "08.1923": KENOM coin records; "03/1850")
MONTH_YEAR = re.compile(r"(?<![\d./])(?P<m>0?[1-9]|1[0-2])[./](?P<y>\d{4})(?![\d./])")
# "-31.12.1921": a leading hyphen before a whole calendar date can only mean "until" (a negative
# astronomical year has no day and month), so it opens the start like "– 1850"
LEADING_HYPHEN_DATE = re.compile(r"^-\s*(?=\d{1,2}[./](?:\d{1,2}[./])?\d{4}\s*$)")
# decimal digits of other scripts ("١٠/٠٣/١٨٦٩", Arabic-Indic, in museum-digital's LIDO for
# 10.03.1869) are read as the digits they are (Unicode's decimal value); a year after this one
# written in them is refused as another calendar's (museum-digital's Persian "۳۰/۰۵/۲۴۹۰" for
# the same day), never read as a Gregorian year
FOREIGN_DIGIT = re.compile(r"(?![0-9])\d")
_MONTHS = (r"january|february|march|april|may|june|july|august|september|october|november|"
           r"december|jan|feb|mar|apr|jun|jul|aug|sept?|oct|nov|dec|"
           r"janvier|f[ée]vrier|mars|avril|mai|juin|juillet|ao[uû]t|septembre|octobre|novembre|"
           r"d[ée]cembre|gennaio|febbraio|marzo|aprile|maggio|giugno|luglio|agosto|settembre|"
           r"ottobre|dicembre|januar|j[aä]nner|februar|m[aä]rz|juni|juli|oktober|dezember|enero|"
           r"febrero|abril|mayo|junio|julio|septiembre|setiembre|octubre|noviembre|diciembre|"
           + _vocab("months"))
MONTH_DATE = re.compile(
    rf"(?<!\w)(?:\d{{1,2}}(?:er|\.|º|°|st|nd|rd|th)?\s+(?:de\s+)?)?(?:{_MONTHS})\.?\s+"
    rf"(?:(?:de\s+)?\d{{1,2}}(?:st|nd|rd|th)?,?\s+)?(?:de\s+)?(?P<y>\d{{3,4}})(?!\d)", re.I)
# the year first, as Hungarian, Lithuanian and Latvian write a date: "1869. március 10."
YEAR_MONTH_DATE = re.compile(
    rf"(?<![\w.])(?P<y>\d{{3,4}})\.?\s+(?:m\.\s+|gada\s+)?(?:{_MONTHS})\.?"
    rf"(?:\s+\d{{1,2}}\.?(?:\s*d\.)?)?(?!\w)", re.I)
# eras. The era words are blanked out (same length, so positions hold) before the years are read:
# "a.C." and "J.-C." contain "C.", which would otherwise read as "circa"
BC = re.compile(r"(?<!\w)(?:B\.?\s?C\.?(?:\s?E\.?)?|before Christ|av(?:ant|\.)?\s*J\.?\s*-?\s*C\.?|"
                r"a\.\s?C\.?|a\.\s?Chr\.?|v\.\s?Chr\.?|vor Christus|avanti Cristo|"
                r"antes de Cristo|voor Christus|" + _vocab("bc") + r")(?!\w)", re.I)
AD = re.compile(r"(?<!\w)(?:A\.\s?D\.?|AD|C\.E\.|CE|apr\.?\s*J\.?\s*-?\s*C\.?|d\.\s?C\.?|"
                r"n\.\s?Chr\.?|(?i:despu[ée]s de Cristo|dopo Cristo|apr[èe]s J[ée]sus-Christ|"
                r"nach Christus|na Christus|anno Domini|" + _vocab("ad") + r"))(?!\w)")


@dataclass(frozen=True)
class DateRange:
    """A parsed display date.

    ``earliest``/``latest`` are the years as written (historical years: 300 BC is ``-300``,
    there is no year 0); ``earliest_widened``/``latest_widened`` apply the qualifiers (``None``
    = open); ``known`` is False for "n.d."-like statements; ``rule`` names the rules that
    produced the result ("iso-date, year", "century-part, BC", ...) so a cataloguer can audit
    it. ``edtf`` uses EDTF's astronomical year numbering (300 BC is ``-0299``).
    """

    text: str
    earliest: int | None = None
    latest: int | None = None
    earliest_widened: int | None = None
    latest_widened: int | None = None
    edtf: str | None = None
    approximate: bool = False
    uncertain: bool = False
    qualifier: str | None = None  # "before", "after" or an event word ("exhibited", ...)
    known: bool = True
    parsed: bool = True
    rule: str | None = None
    parts: tuple = field(default=(), repr=False)


def _y(year: int) -> str:
    """A historical year as EDTF writes it (astronomical numbering: 1 BC is year 0000)."""
    if year < 0:
        return f"{year + 1:05d}" if year < -1 else "0000"
    return f"{year:04d}"


def _part(text: str) -> tuple[tuple[float, float], str] | None:
    m = ORDINAL_PART.search(text)
    if m:
        return _ordinal_span(m), "century-part"
    if m := PART_RANGE.search(text):  # "early to mid 19th century": a range of parts
        return _span_of_parts(m, _EN_SPANS), "century-part"
    for pattern, span, _name in PARTS:
        if pattern.search(text):
            return span, "century-part"
    return None


def _part_after(s: str, end: int) -> tuple[tuple[float, float], str] | None:
    """A part written right after a century ("…, primo quarto", "… (fin)"), if one is there and
    is not itself followed by a date of its own."""
    for pattern, span in PARTS_AFTER:  # "19. század eleje", "1800-luvun loppupuoli"
        if pattern.match(s, end):
            return span, "century-part"
    if (m := re.compile(r"\s+" + ORDINAL_PART.pattern, re.I).match(s, end)):
        return _ordinal_span(m), "century-part"  # "19. század első fele"
    m = PART_AFTER.match(s, end)
    if not m or YEAR.search(m.group("p")) or ROMAN.search(m.group("p")):
        return None
    return _part(m.group("p"))


def _items(s: str, bc_before: int = -1) -> list[tuple[int, int, int, int, str, str]]:
    """Every year expression in ``s``, in order, as (start, end, first year, last year, EDTF
    piece, kind); start and end are the expression's position in ``s``.

    Expressions starting before position ``bc_before`` are years before Christ.
    """
    found: list[tuple[int, int, int, int, str, str]] = []
    taken = [False] * len(s)

    def claim(m, lo, hi, edtf, kind, bc=None):
        if any(taken[m.start():m.end()]):
            return
        for i in range(m.start(), m.end()):
            taken[i] = True
        if (m.start() < bc_before) if bc is None else bc:
            lo, hi = sorted((-lo, -hi))
            edtf = f"{_y(lo)}/{_y(hi)}" if lo != hi else _y(lo)
        found.append((m.start(), m.end(), lo, hi, edtf, kind))

    centuries = (list(CENTURY_NUM.finditer(s)) + list(CENTURY_ROMAN_AFTER.finditer(s))
                 + list(CENTURY_ROMAN_BEFORE.finditer(s)) + list(CENTURY_NUM_BEFORE.finditer(s))
                 + list(CENTURY_S_ROMAN.finditer(s)) + list(CENTURY_ROMAN_ORDINAL.finditer(s)))
    for m in centuries:
        n = (int(m.group("n")) if m.groupdict().get("n")
             else _roman(m.group("r") or m.groupdict().get("ra") or ""))
        if not n or n > 21:
            continue
        window = s[max(0, m.start() - 25):m.end() + 4]
        part = _part(window) or _part_after(s, m.end())
        span = part[0] if part else (0.0, 1.0)
        if m.start() < bc_before:  # n-th century BC: from n*100 BC to (n-1)*100+1 BC
            start = -(n * 100)
            lo, hi = start + round(span[0] * 100), start + round(span[1] * 100) - 1
            found_edtf = f"{_y(lo)}/{_y(hi)}"
            # claim() would negate again: hand it the AD mirror and let it flip back
            claim(m, -lo, -hi, found_edtf, part[1] if part else "century")
            continue
        start = (n - 1) * 100
        if part:
            lo, hi = start + round(span[0] * 100), start + round(span[1] * 100) - 1
            lo = max(lo, 1)  # there is no year 0: the first century starts in AD 1
            claim(m, lo, hi, f"{lo:04d}/{hi:04d}", "century-part")
        elif n == 1:
            claim(m, 1, 99, "0001/0099", "century")
        else:
            claim(m, start, start + 99, f"{start // 100:02d}XX", "century")
    # "1800s", "late 1900s": a century's hundreds (see HUNDREDS), unless a decade that is not a
    # hundred stands beside them ("1890s–1900s")
    beside_decade = any(int(m.group("y")) % 100 for m in DECADE.finditer(s))
    for m in () if beside_decade else HUNDREDS.finditer(s):
        y = int(m.group("y"))
        before = s[max(0, m.start() - 30):m.start()]
        if o := re.search(ORDINAL_PART.pattern + r"\s*(?:of\s+)?(?:the\s+)?$", before, re.I):
            span = _ordinal_span(o)  # "second half of the 1800s"
        elif p := PART_BEFORE.search(before):
            span = _span_of_parts(p, _HUNDREDS_THIRDS)
        else:
            claim(m, y, y + 99, f"{y // 100:02d}XX", "hundreds as century")
            continue
        lo, hi = y + round(span[0] * 100), y + round(span[1] * 100) - 1
        claim(m, lo, hi, f"{lo:04d}/{hi:04d}", "hundreds as century-part")
    for pattern in (DECADE_WORDED, DECADE):
        for m in pattern.finditer(s):
            y = int(m.group("y"))
            kind = "hundreds as decade" if HUNDREDS.match(s, m.start()) else "decade"
            rng = PART_BEFORE.search(s[max(0, m.start() - 25):m.start()])
            if rng and rng.group("b"):  # "mid- to late 1840s": a range of parts
                part = (_span_of_parts(rng, _EN_SPANS), "decade-part")
            else:
                part = _part(s[max(0, m.start() - 12):m.start() + 1])
            if part:  # "early 1840s" -> 1840-1845, "mid" 1843-1847, "late" 1845-1849 (Tate usage)
                span = part[0]
                lo, hi = y + math.floor(span[0] * 10), min(y + 9, y + math.ceil(span[1] * 10))
                claim(m, lo, hi, f"{lo}/{hi}", f"{kind}-part" if kind == "decade" else kind)
            else:
                claim(m, y, y + 9, f"{y // 10}X", kind)
    for m in (RANGE_SHORT if bc_before > 0 else RANGE).finditer(s):
        a, b = m.group("a"), m.group("b")
        if m.start("b") < bc_before:  # "300-200 BC": descending is the normal order
            claim(m, int(a), int(b), "", "range")
            continue
        if m.start() < bc_before:  # "100 BC - AD 50"
            lo, hi = -int(a), int(b)
            claim(m, lo, hi, f"{_y(lo)}/{_y(hi)}", "range", bc=False)
            continue
        if len(b) < len(a):
            b = a[: len(a) - len(b)] + b
        lo, hi = int(a), int(b)
        if hi < lo:
            if len(m.group("b")) <= 2 and hi + 100 > lo:
                hi += 100
            else:
                continue
        claim(m, lo, hi, f"{lo}/{hi}", "range")
    for m in (YEAR_SHORT if bc_before > 0 else YEAR).finditer(s):
        y = int(m.group("y"))
        if y == 0:
            continue
        claim(m, y, y, f"{y:04d}", "year")
    found.sort()
    return found


def _edtf_from_items(items, approximate, uncertain, joiner, qualifier) -> str:
    mark = "%" if approximate and uncertain else "~" if approximate else "?" if uncertain else ""

    def piece(lo, hi, text, in_set):
        if lo == hi:
            return f"{_y(lo)}{mark}"
        if "X" in text and not mark and not in_set:
            return text
        return f"{_y(lo)}{mark}..{_y(hi)}{mark}" if in_set else f"{_y(lo)}{mark}/{_y(hi)}{mark}"

    if qualifier == "before":
        return f"../{_y(items[-1][1])}{mark}"
    if qualifier == "after":
        return f"{_y(items[0][0])}{mark}/.."
    if len(items) == 1:
        return piece(*items[0][:3], in_set=False)
    inner = ",".join(piece(*it[:3], in_set=True) for it in items)
    return f"[{inner}]" if joiner == "or" else f"{{{inner}}}"


@lru_cache(maxsize=None)
def _valid_edtf(text: str) -> bool:
    from edtf import parse_edtf

    try:
        parse_edtf(text)
        return True
    except Exception:  # the edtf package raises several kinds; any means "not EDTF"
        return False


def _from_edtf(text: str) -> DateRange | None:
    """EDTF input ("1984?", "198X", "1850/1860", "[1667,1668]") read by the edtf package."""
    from edtf import parse_edtf

    try:
        parsed = parse_edtf(text.replace(" ", ""))
    except Exception:
        return None
    try:
        lo, hi = parsed.lower_strict(), parsed.upper_strict()
    except Exception:  # e.g. an interval the package cannot bound
        return None
    lo_y = None if isinstance(lo, float) and math.isinf(lo) else lo.tm_year
    hi_y = None if isinstance(hi, float) and math.isinf(hi) else hi.tm_year
    # EDTF counts years astronomically (0000 = 1 BC); we report historical years
    lo_y = lo_y - 1 if lo_y is not None and lo_y <= 0 else lo_y
    hi_y = hi_y - 1 if hi_y is not None and hi_y <= 0 else hi_y
    return DateRange(text=text, earliest=lo_y if lo_y is not None else hi_y,
                     latest=hi_y if hi_y is not None else lo_y, earliest_widened=lo_y,
                     latest_widened=hi_y, edtf=text.replace(" ", ""),
                     approximate="~" in text or "%" in text, uncertain="?" in text or "%" in text,
                     qualifier="before" if lo_y is None else "after" if hi_y is None else None,
                     rule="edtf")


# Roman numerals typed with Cyrillic look-alike letters ("ХІХ століття": Cyrillic Kha and the
# Ukrainian/Belarusian I), and the Unicode Roman numeral signs ("Ⅻ"): read as Latin numerals
CYRILLIC_ROMAN = re.compile(
    r"(?<![^\W\d_])(?:(?=[IVXLХІ]*[ХІ])[IVXLХІ]{2,7}|Х)(?![^\W\d_])")
_CYRILLIC_TO_LATIN = str.maketrans({"Х": "X", "І": "I"})
ROMAN_SIGNS = re.compile("[\u2160-\u2188]")
# Greek alphabetic numerals with their keraia before "αιώνας"/"αι.": "ιθʹ αιώνας" = 19th century
_GREEK_NUMERALS = {"α": 1, "β": 2, "γ": 3, "δ": 4, "ε": 5, "ϛ": 6, "στ": 6, "ζ": 7, "η": 8,
                   "θ": 9, "ι": 10, "κ": 20}
GREEK_NUMERAL = re.compile(r"(?<!\w)(?P<g>κ?ι?(?:στ|[α-θϛ])?)[ʹ΄'’](?=\s*αι)", re.I)


def _greek_numeral(m: re.Match) -> str:
    text, total = m.group("g").lower(), 0
    for token in re.findall(r"στ|.", text):
        total += _GREEK_NUMERALS[token]
    return f"{total}ος" if text else m.group(0)


def _scripts(s: str) -> tuple[str, list[str]]:
    """Digits and numerals of other scripts rewritten in Latin ones, with the rules that did."""
    rules = []
    if FOREIGN_DIGIT.search(s):
        s = "".join(str(unicodedata.decimal(c)) if c.isdecimal() and c > "9" else c for c in s)
        rules.append("digits of another script")
    if ROMAN_SIGNS.search(s):
        s = ROMAN_SIGNS.sub(lambda m: unicodedata.normalize("NFKC", m.group(0)), s)
        rules.append("roman numeral signs")
    s, n = CYRILLIC_ROMAN.subn(lambda m: m.group(0).translate(_CYRILLIC_TO_LATIN), s)
    if n:
        rules.append("cyrillic roman numeral")
    s, n = GREEK_NUMERAL.subn(_greek_numeral, s)
    if n:
        rules.append("greek numeral")
    return s, rules


# a decade named by its tens within a century, as Slavic catalogues write it: "lata 20. XX wieku"
# (Polish), "20. léta 20. století" (Czech), "20-е годы XX века" (Russian), "20-ті роки XX
# століття" (Ukrainian), "20-ih godina 20. stoljeća" (Croatian): the 1920s
DECADE_OF_CENTURY = re.compile(
    r"(?<!\w)(?:(?:lata|lat|léta|leta|roky)\s+(?P<a>[1-9]0)\.?"
    r"|(?P<b>[1-9]0)(?:\.|-?е|-?х|-?ті|-?ih|-?их|-?te)?\s*(?:léta|leta|let|roky|rokoch|годы|годов|"
    r"гг\.|роки|років|godine|godina|години))\s+"
    rf"(?P<c>[IVXL]{{1,7}}|\d{{1,2}})\.?\s*(?:{CENTURY_WORD}|{_CENTURY_ABBR})(?![^\W\d_])", re.I)


def _decade_of_century(m: re.Match) -> str:
    c = m.group("c")
    n = int(c) if c.isdigit() else _roman(c)
    if not n or n > 21:
        return m.group(0)
    return f"decade of the {(n - 1) * 100 + int(m.group('a') or m.group('b'))}"


# "between 1850 and 1860" in the languages' words, before the years ("zwischen", "mezi", "entre")
# or after them ("1850 és 1860 között", "1850 ja 1860 välillä"): the range 1850–1860
_AND = r"(?:and|et|und|e|y|en|" + _vocab("and") + ")"
_ART = r"(?:(?:il|l'|le|el|the|dem|den|de)\s*)?"
BETWEEN = re.compile(
    rf"(?<!\w)(?:between|entre|zwischen|tra|fra|tussen|{_vocab('between')})\s+{_ART}"
    rf"(?P<a>\d{{1,4}})\s+{_AND}\s+{_ART}(?P<b>\d{{1,4}})(?!\d)"
    rf"|(?<![\w.])(?P<c>\d{{1,4}})\s+{_AND}\s+(?P<d>\d{{1,4}})\s+(?:{_vocab('between_after')})"
    r"(?![^\W\d_])", re.I)

OPEN_END = re.compile(r"\d\s*[-–—]\s*$")
OPEN_START = re.compile(r"^\s*(?:[–—]\s*|-\s+)\d")


@lru_cache(maxsize=200_000)
def parse(text: str, approx_years: int = APPROX_YEARS) -> DateRange:
    """Parse one display date; see the module docstring for the forms understood.

    Parameters
    ----------
    text
        The date as written, e.g. ``"c.1830–41"``, ``"XVIIIe siècle"``, ``"1850s"``.
    approx_years
        Years added on each side of an approximate date in the widened interval.
    """
    raw = "" if text is None else str(text)
    s = " ".join(raw.replace("\u2009", " ").replace("\u00a0", " ").translate(SUPERSCRIPTS).split())
    if not s:
        return DateRange(text=raw, known=False, parsed=False, rule="empty")
    if UNKNOWN.match(s):
        return DateRange(text=raw, known=False, edtf=None, rule="no date")
    s, script_rules = _scripts(s)
    if (EDTF_LIKE.match(s) and re.search(r"[Xu~%\[{]|\d\?$|/", s)
            and not re.search(r"\d\s*[-–]\s*\d", s)):
        hit = _from_edtf(s)
        if hit is not None:
            return DateRange(**{**hit.__dict__, "text": raw})
    rules: list[str] = list(script_rules)
    if LEADING_HYPHEN_DATE.match(s):  # "-31.12.1921": until that day
        s = LEADING_HYPHEN_DATE.sub("– ", s)
        rules.append("open start")
    if re.match(r"^-\d", s):  # "-1850": a negative (astronomical) year or "until 1850"? not guessed
        return DateRange(text=raw, parsed=False, rule="ambiguous leading hyphen")
    s, n_named = NAMED_CENTURY.subn(lambda m: f"{_named_century(m)}th century", s)
    s, n_ordinal = ORDINAL_CENTURY.subn(
        lambda m: f"{ORDINAL_WORD[(m.group('w') or m.group('es')).lower()]}th century", s)
    if n_named or n_ordinal:
        rules.append("named century")
    # "1800-talet", "1900-luku": the Nordic hundreds are centuries; "1920-talet", "1920'erne",
    # "1920-е годы" decades (rewritten in forms read below, so parts and eras apply)
    s, n_hundreds = HUNDREDS_ENDED.subn(lambda m: f"{int(m.group('y')) // 100 + 1}th century", s)
    if n_hundreds:
        rules.append("hundreds as century")
    s = DECADE_OF_CENTURY.sub(_decade_of_century, s)
    s = DECADE_ENDED.sub(lambda m: f"decade of the {m.group('y')}", s)
    s, n_between = BETWEEN.subn(lambda m: f"{m.group('a') or m.group('c')}–"
                                          f"{m.group('b') or m.group('d')}", s)
    if n_between:
        rules.append("between")
    s, n_republican = _republican(s)
    if n_republican:
        rules.append("republican calendar")
    s, n_pair = CENTURY_PAIR.subn(lambda m: f"siglo {m.group('a')} - siglo {m.group('b')}", s)
    s, n_pair_after = CENTURY_PAIR_AFTER.subn(
        lambda m: f"siglo {m.group('a')} - siglo {m.group('b')}", s)
    n_pair += n_pair_after
    if (n_pair or CENTURY_ROMAN_BEFORE.search(s) or CENTURY_ROMAN_AFTER.search(s)
            or CENTURY_S_ROMAN.search(s) or CENTURY_ROMAN_ORDINAL.search(s)):
        s, n_cont = CENTURY_CONTINUED.subn(lambda m: f"{m.group('p')} siglo {m.group('r')}", s)
    else:
        n_cont = 0
    s, n_dutch = DUTCH_CENTURY_SHARED.subn(lambda m: f"{m.group('n')} eeuw", s)
    if n_pair or n_cont or n_dutch:
        rules.append("centuries sharing a word")
    s, n_supplied = SUPPLIED_DIGITS.subn(lambda m: m.group("a") + m.group("b") if m.group("a")
                                         else m.group("c") + m.group("d"), s)
    if n_supplied:
        rules.append("supplied digits")
    s, n_l = LETTER_L_YEAR.subn(lambda m: m.group(0).replace("l", "1"), s)
    if n_l:
        rules.append("letter l as 1")
    # "16e", "début 19e" (French shorthand, the Cité de la musique's MIMO records): a century
    # only when the whole date is that, so "1er janvier" or "2e quart" are never read as one
    if m := FRENCH_SHORT_CENTURY.match(s):
        s = f"{m.group('part') or ''}{m.group('n')}e siècle"
        rules.append("century shorthand")
    # "XVIII" alone (the Italian catalogue's DTZG field): a century
    if (m := BARE_ROMAN.match(s)) and _roman(m.group("r")):
        s = f"sec. {m.group('r')}{m.group('rest') or ''}"
        rules.append("bare roman numeral")
    s, n_iso = ISO_DATE.subn(lambda m: m.group("y"), s)
    s, n_dmy = DMY_DATE.subn(lambda m: m.group("y") if int(m.group("a")) <= 31
                             and int(m.group("b")) <= 31 else m.group(0), s)
    s, n_month = MONTH_DATE.subn(lambda m: m.group("y"), s)
    s, n_year_month = YEAR_MONTH_DATE.subn(lambda m: m.group("y"), s)
    n_month += n_year_month
    s, n_month_year = MONTH_YEAR.subn(lambda m: m.group("y"), s)
    if n_iso:
        rules.append("iso-date")
    if n_dmy or n_month:
        rules.append("day-month-year")
    if n_month_year:
        rules.append("month-year")
    bc_before = -1
    blank = lambda m: " " * len(m.group(0))  # noqa: E731 - keeps positions
    if bc := BC.search(s):
        # AD is looked for outside the BC words: "n.e." is inside Polish "p.n.e." (BC)
        bc_before = bc.start() if AD.search(BC.sub(blank, s)) else len(s) + 1
        rules.append("BC")
    s = AD.sub(blank, BC.sub(blank, s))
    located = _items(s, bc_before)
    if not located:
        return DateRange(text=raw, parsed=False, known=True, rule="no year found")
    items = [it[2:] for it in located]
    # a year written after a re-issue ("1825, reprinted 1874") is not in the work's span
    span = [it[2:] for i, it in enumerate(located)
            if i == 0 or not REISSUE.search(s, located[i - 1][1], it[0])]
    approximate = bool(APPROX.search(s))
    uncertain = "?" in s
    qualifier = None
    single = len(items) == 1 and items[0][3] != "range"
    if single and (BEFORE.search(s) or OPEN_START.search(s)):
        qualifier = "before"
    elif single and (AFTER.search(s) or OPEN_END.search(s)):
        qualifier = "after"
    elif m := EVENTS.search(s):
        qualifier = m.group(1).lower()
    joiner = "or" if re.search(r"\b(or|ou|oder|o)\b", s, re.I) else "and"
    earliest = min(it[0] for it in span)
    latest = max(it[1] for it in span)
    if "digits of another script" in rules and latest > date.today().year:
        # a year to come is another calendar's (museum-digital's Persian "۳۰/۰۵/۲۴۹۰"): refused
        return DateRange(text=raw, parsed=False,
                         rule="digits of another script: a year after today, another calendar")
    w_lo, w_hi = earliest, latest
    if approximate:
        w_lo, w_hi = earliest - approx_years, latest + approx_years
    if qualifier == "before":
        w_lo = None
    elif qualifier == "after":
        w_hi = None
    edtf = _edtf_from_items(span, approximate, uncertain, joiner, qualifier)
    # we emit whole years only, so validity depends on the shape, not on the digits: checking
    # each shape once with the edtf package's grammar (~6 ms a call) keeps parsing fast
    if not _valid_edtf(re.sub(r"\d", "1", edtf)):
        edtf = f"{_y(earliest)}/{_y(latest)}" if earliest != latest else _y(earliest)
    kinds = list(dict.fromkeys(it[3] for it in items))
    rules += kinds if len(items) == 1 else ["list of " + "+".join(kinds)]
    if approximate:
        rules.append("approximate")
    if uncertain:
        rules.append("uncertain")
    if qualifier:
        rules.append(qualifier if qualifier in ("before", "after") else f"event: {qualifier}")
    if len(span) < len(items):
        rules.append("re-issue years not in span")
    return DateRange(text=raw, earliest=earliest, latest=latest, earliest_widened=w_lo,
                     latest_widened=w_hi, edtf=edtf, approximate=approximate, uncertain=uncertain,
                     qualifier=qualifier, rule=", ".join(rules), parts=tuple(items))


COLUMNS = ["date_text", "date_earliest", "date_latest", "date_earliest_widened",
           "date_latest_widened", "date_edtf", "date_approximate", "date_uncertain",
           "date_qualifier", "date_known", "date_parsed", "date_rule"]


def parse_series(series: pd.Series, approx_years: int = APPROX_YEARS) -> pd.DataFrame:
    """Parse a column of display dates; one row per input row, columns ``COLUMNS``.

    Each distinct string is parsed once (collections repeat their date strings heavily), so a
    million rows cost about as much as their few thousand distinct values.
    """
    codes, uniques = pd.factorize(series.astype("string").fillna(""), sort=False)
    results = [parse(u, approx_years) for u in uniques]
    table = pd.DataFrame({
        "date_text": [r.text for r in results],
        "date_earliest": pd.array([r.earliest for r in results], dtype="Int64"),
        "date_latest": pd.array([r.latest for r in results], dtype="Int64"),
        "date_earliest_widened": pd.array([r.earliest_widened for r in results], dtype="Int64"),
        "date_latest_widened": pd.array([r.latest_widened for r in results], dtype="Int64"),
        "date_edtf": pd.array([r.edtf for r in results], dtype="string"),
        "date_approximate": [r.approximate for r in results],
        "date_uncertain": [r.uncertain for r in results],
        "date_qualifier": pd.array([r.qualifier for r in results], dtype="string"),
        "date_known": [r.known for r in results],
        "date_parsed": [r.parsed for r in results],
        "date_rule": pd.array([r.rule for r in results], dtype="string"),
    })
    if len(uniques) == 0:
        return table.reindex(range(len(series))).set_axis(series.index)
    out = table.take(codes).set_axis(series.index)
    out["date_text"] = series.astype("string").to_numpy()
    return out


def unparsed(series: pd.Series) -> pd.Series:
    """The distinct strings that matched no known form, with how often each occurs."""
    values = series.astype("string").fillna("")
    distinct = values.drop_duplicates()
    bad = distinct[[not parse(v).parsed for v in distinct]]
    return values[values.isin(bad)].value_counts()
