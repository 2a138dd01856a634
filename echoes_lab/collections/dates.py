"""Historical and fuzzy dates as cataloguers write them, turned into year intervals and EDTF.

``parse("c.1830–41")`` reads the years **as written** (1830 to 1841), says how they are
qualified (approximate, uncertain, before/after, an event such as "exhibited"), offers a
**widened** interval for the qualifiers (``c.`` widens by ``approx_years`` on each side,
"before"/"after" open one end), and an EDTF string (Library of Congress Extended Date/Time
Format, ISO 8601-2:2019), checked with the ``edtf`` package. A string that matches no known
form is reported as unparsed, never guessed.

Conventions follow how museums record machine-readable years beside display dates (e.g. the
Tate's ``date_start``/``date_end``): the earliest year is the first year written, the latest
the last one ("1978, printed 2005" → 1978–2005); short range ends take the start's century
("1823–4" → 1823–1824); a decade covers its ten years ("1850s" → 1850–1859) and its early,
mid and late parts 1850–1855, 1853–1857 and 1855–1859; a century covers its hundred years
("18th century" → 1700–1799), early and late parts its halves and "mid" 1830–1870-like middle
two fifths, quarters and halves when named.

Recognised (English, French, Italian, German, Spanish): plain years, ranges with short ends,
``c.``/``ca.``/``circa``/``about``/``vers``/``verso``/``um``/``hacia``/``hacia el``, ``?``,
decades ("1850s", "années 1850", "1850er Jahre"), centuries and parts of them ("early 19th
century", "XVIIIe siècle", "début du XIXe siècle", "secolo XVIII", "fine del XVIII secolo",
"18. Jahrhundert", "Anfang des 19. Jahrhunderts", "siglo XVIII", "finales del siglo XIX"),
"before/after X" (avant, après, vor, nach, antes de, después de, prima del, dopo il), event
words ("exhibited 1836", "published 1787", "printed", "cast", ...), lists ("1956, 1957",
"1827 or 1828"), "n.d."/"date not known" (a known absence of a date), and EDTF itself.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from functools import lru_cache

import pandas as pd

__all__ = ["DateRange", "parse", "parse_series", "unparsed"]

#: years added on each side of an approximate ("c.") date in the widened interval
APPROX_YEARS = 5

UNKNOWN = re.compile(
    r"^\s*\(?\s*(n\.?\s?d\.?|no date|undated|date not known|date unknown|unknown|not dated|"
    r"s\.\s?d\.?|sans date|senza data|s\.\s?d|o\.\s?j\.?|ohne jahr|sin fecha|sine dato)\s*\)?\s*$",
    re.I,
)
APPROX = re.compile(r"\b(c\.|ca\.?|circa|about|around|approx\.?|vers|verso|um|hacia|intorno al|env\.?)(?=\s|\d|$)|\bc(?=\d)", re.I)
BEFORE = re.compile(r"\b(before|avant|vor|antes de|prima del|prima di|ante)\b", re.I)
AFTER = re.compile(r"\b(after|après|apres|nach|después de|despues de|dopo il|dopo|post)\b", re.I)
EVENTS = re.compile(
    r"\b(exhibited|published|first published|printed|reprinted|cast|engraved|reproduced|"
    r"enlarged version|reconstructed|remade|replica|editioned|reworked|dated|signed|inscribed|"
    r"erected|completed|begun|started|finished|issued|photographed|executed|posthumous)\b", re.I)

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


# parts of a century / decade, as fractions of its span (start, end)
PARTS = [
    (re.compile(r"\b(first quarter|1st quarter|premier quart)\b", re.I), (0.0, 0.25)),
    (re.compile(r"\b(second quarter|2nd quarter)\b", re.I), (0.25, 0.5)),
    (re.compile(r"\b(third quarter|3rd quarter)\b", re.I), (0.5, 0.75)),
    (re.compile(r"\b(last quarter|fourth quarter|4th quarter|dernier quart)\b", re.I), (0.75, 1.0)),
    (re.compile(r"\b(first half|1st half|première moitié|premiere moitie|prima metà|erste hälfte|primera mitad)\b", re.I), (0.0, 0.5)),
    (re.compile(r"\b(second half|2nd half|seconde moitié|deuxième moitié|seconda metà|zweite hälfte|segunda mitad)\b", re.I), (0.5, 1.0)),
    (re.compile(r"\b(early|début|debut|inizio|anfang|frühe[sn]?|fruehe[sn]?|principios|principio|comienzos)\b", re.I), (0.0, 0.5)),
    (re.compile(r"\b(mid|middle|milieu|metà|meta|mitte|mediados)\b", re.I), (0.3, 0.7)),
    (re.compile(r"\b(late|fin|fine|ende|späte[sn]?|spaete[sn]?|finales|final)\b", re.I), (0.5, 1.0)),
]

CENTURY_WORD = r"(?:century|cent\.?|c\b|siècle|siecle|s\.|secolo|sec\.|jahrhundert[s]?|jh\.?|siglo)"
CENTURY_NUM = re.compile(
    rf"(?P<n>\d{{1,2}})(?:st|nd|rd|th|e|er|ème|eme|\.|°|º)?\s*-?\s*{CENTURY_WORD}", re.I)
CENTURY_ROMAN_AFTER = re.compile(rf"\b(?P<r>[IVXL]{{1,7}})(?:e|er|ème|eme|°|º)?\s+{CENTURY_WORD}", re.I)
CENTURY_ROMAN_BEFORE = re.compile(r"\b(?:secolo|siglo|sec\.)\s+(?P<r>[IVXL]{1,7})\b", re.I)
DECADE = re.compile(r"(?P<y>\d{3}0)(?:'?s\b|er\b(?:\s*jahre)?)", re.I)
DECADE_WORDED = re.compile(r"\b(?:années|anni|años|decade of the)\s+(?P<y>\d{3}0)\b", re.I)
RANGE = re.compile(
    r"(?P<a>\d{3,4})\s*(?:[-–—‐/]|\bto\b|\bà\b|\ba\b|\bbis\b|\bal\b)\s*(?:c\.\s*|ca\.?\s*|\?)?(?P<b>\d{1,4})(?!\d|\s*(?:st|nd|rd|th)\b)",
    re.I)
YEAR = re.compile(r"(?<!\d)(?<!\d\.)(?P<y>\d{3,4})(?![\d]|'?s\b|er\b|\s*(?:st|nd|rd|th)\b)")
EDTF_LIKE = re.compile(r"^[\dXu~?%/.\[\]{},\-\s]+$")


@dataclass(frozen=True)
class DateRange:
    """A parsed display date.

    ``earliest``/``latest`` are the years as written; ``earliest_widened``/``latest_widened``
    apply the qualifiers (``None`` = open); ``known`` is False for "n.d."-like statements.
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
    parts: tuple = field(default=(), repr=False)


def _part(text: str) -> tuple[float, float] | None:
    for pattern, span in PARTS:
        if pattern.search(text):
            return span
    return None


def _items(s: str) -> list[tuple[int, int, str]]:
    """Every year expression in ``s``, in order, as (first year, last year, EDTF piece)."""
    found: list[tuple[int, int, int, str]] = []  # (position, lo, hi, edtf)
    taken = [False] * len(s)

    def claim(m, lo, hi, edtf):
        if any(taken[m.start():m.end()]):
            return
        for i in range(m.start(), m.end()):
            taken[i] = True
        found.append((m.start(), lo, hi, edtf))

    for m in list(CENTURY_NUM.finditer(s)) + list(CENTURY_ROMAN_AFTER.finditer(s)) + list(CENTURY_ROMAN_BEFORE.finditer(s)):
        n = int(m.group("n")) if "n" in m.groupdict() and m.group("n") else _roman(m.group("r"))
        if not n or n > 21:
            continue
        start = (n - 1) * 100
        window = s[max(0, m.start() - 25):m.end() + 4]
        span = _part(window)
        if span:
            lo, hi = start + round(span[0] * 100), start + round(span[1] * 100) - 1
            claim(m, lo, hi, f"{lo:04d}/{hi:04d}")
        else:
            claim(m, start, start + 99, f"{start // 100:02d}XX")
    for pattern in (DECADE_WORDED, DECADE):
        for m in pattern.finditer(s):
            y = int(m.group("y"))
            span = _part(s[max(0, m.start() - 12):m.start() + 1])
            if span:  # "early 1840s" -> 1840-1845, "mid" 1843-1847, "late" 1845-1849 (Tate usage)
                lo, hi = y + math.floor(span[0] * 10), min(y + 9, y + math.ceil(span[1] * 10))
                claim(m, lo, hi, f"{lo}/{hi}")
            else:
                claim(m, y, y + 9, f"{y // 10}X")
    for m in RANGE.finditer(s):
        a, b = m.group("a"), m.group("b")
        if len(b) < len(a):
            b = a[: len(a) - len(b)] + b
        lo, hi = int(a), int(b)
        if hi < lo:
            if len(m.group("b")) <= 2 and hi + 100 > lo:
                hi += 100
            else:
                continue
        claim(m, lo, hi, f"{lo}/{hi}")
    for m in YEAR.finditer(s):
        y = int(m.group("y"))
        claim(m, y, y, f"{y:04d}")
    found.sort()
    return [(lo, hi, edtf) for _, lo, hi, edtf in found]


def _edtf_from_items(items, approximate, uncertain, joiner, qualifier) -> str:
    mark = "%" if approximate and uncertain else "~" if approximate else "?" if uncertain else ""

    def piece(lo, hi, text, in_set):
        if lo == hi:
            return f"{lo:04d}{mark}"
        if "X" in text and not mark and not in_set:
            return text
        return f"{lo:04d}{mark}..{hi:04d}{mark}" if in_set else f"{lo:04d}{mark}/{hi:04d}{mark}"

    if qualifier == "before":
        return f"../{items[-1][1]:04d}{mark}"
    if qualifier == "after":
        return f"{items[0][0]:04d}{mark}/.."
    if len(items) == 1:
        return piece(*items[0], in_set=False)
    inner = ",".join(piece(*it, in_set=True) for it in items)
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
    lo, hi = parsed.lower_strict(), parsed.upper_strict()
    lo_y = None if isinstance(lo, float) and math.isinf(lo) else lo.tm_year
    hi_y = None if isinstance(hi, float) and math.isinf(hi) else hi.tm_year
    return DateRange(text=text, earliest=lo_y, latest=hi_y, earliest_widened=lo_y, latest_widened=hi_y,
                     edtf=text.replace(" ", ""), approximate="~" in text or "%" in text,
                     uncertain="?" in text or "%" in text)


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
    s = " ".join(raw.replace("\u2009", " ").split())
    if not s:
        return DateRange(text=raw, known=False, parsed=False)
    if UNKNOWN.match(s):
        return DateRange(text=raw, known=False, edtf=None)
    if EDTF_LIKE.match(s) and re.search(r"[Xu~%\[{]|\d\?$|/", s) and not re.search(r"\d\s*[-–]\s*\d", s):
        hit = _from_edtf(s)
        if hit is not None:
            return DateRange(**{**hit.__dict__, "text": raw})
    items = _items(s)
    if not items:
        return DateRange(text=raw, parsed=False, known=True)
    approximate = bool(APPROX.search(s))
    uncertain = "?" in s
    qualifier = None
    if BEFORE.search(s) and len(items) == 1:
        qualifier = "before"
    elif AFTER.search(s) and len(items) == 1:
        qualifier = "after"
    elif m := EVENTS.search(s):
        qualifier = m.group(1).lower()
    joiner = "or" if re.search(r"\b(or|ou|oder|o)\b", s, re.I) else "and"
    earliest = min(lo for lo, _, _ in items)
    latest = max(hi for _, hi, _ in items)
    w_lo, w_hi = earliest, latest
    if approximate:
        w_lo, w_hi = earliest - approx_years, latest + approx_years
    if qualifier == "before":
        w_lo = None
    elif qualifier == "after":
        w_hi = None
    edtf = _edtf_from_items(items, approximate, uncertain, joiner, qualifier)
    # we emit whole years only, so validity depends on the shape, not on the digits: checking
    # each shape once with the edtf package's grammar (~6 ms a call) keeps parsing fast
    if not _valid_edtf(re.sub(r"\d", "1", edtf)):
        edtf = f"{earliest:04d}/{latest:04d}" if earliest != latest else f"{earliest:04d}"
    return DateRange(text=raw, earliest=earliest, latest=latest, earliest_widened=w_lo,
                     latest_widened=w_hi, edtf=edtf, approximate=approximate, uncertain=uncertain,
                     qualifier=qualifier, parts=tuple(items))


COLUMNS = ["date_text", "date_earliest", "date_latest", "date_earliest_widened",
           "date_latest_widened", "date_edtf", "date_approximate", "date_uncertain",
           "date_qualifier", "date_known", "date_parsed"]


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
