"""Dates in the languages of Europe's collections (issue 34): every official EU language and
Catalan, Basque, Galician, Welsh, Norwegian, Icelandic, Ukrainian, Serbian (both scripts),
Turkish, and Russian.

The real strings are Europeana's century entities (``edm:TimeSpan`` labels with their own
``edm:begin``/``edm:end``) in 20 languages besides the six of ``test_dates.py``, and the Russian
labels of the Semium time spans in Europeana records, in
``tests/data/real/dates/europeana-timespans-languages.csv`` (source and licence in
``tests/data/real/dates/SOURCES.md``); ``test_dates.py`` holds every language with 15 or more of
them to the cataloguer's bar. The forms below are each language's standard ways of writing
centuries, decades, parts, qualifiers and eras (its style guides' abbreviations: "p.n.e." in
Polish, "f.Kr." in the Nordic languages, "до н. э." in Russian), each with the rule that reads it.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from edtf import parse_edtf

from echoes_lab.collections.date_languages import LANGUAGES
from echoes_lab.collections.dates import parse

REAL = Path(__file__).parent / "data" / "real" / "dates"

# lang, text, earliest, latest, a rule named in date_rule, qualifier
FORMS = [
    ("bg", "19 век", 1800, 1899, "century", None),
    ("bg", "началото на XX век", 1900, 1949, "century-part", None),
    ("bg", "300 пр.н.е.", -300, -300, "BC", None),
    ("ca", "Segle XIX", 1800, 1899, "century", None),
    ("ca", "Segle dinou", 1800, 1899, "named century", None),
    ("ca", "finals del segle XVIII", 1750, 1799, "century-part", None),
    ("ca", "cap a 1850", 1850, 1850, "approximate", None),
    ("cs", "19. století", 1800, 1899, "century", None),
    ("cs", "1. polovina 19. století", 1800, 1849, "century-part", None),
    ("cs", "konec 18. století", 1750, 1799, "century-part", None),
    ("cs", "kolem 1850", 1850, 1850, "approximate", None),
    ("cs", "10. března 1869", 1869, 1869, "day-month-year", None),
    ("cy", "19eg ganrif", 1800, 1899, "century", None),
    ("cy", "18fed ganrif", 1700, 1799, "century", None),
    ("cy", "tua 1850", 1850, 1850, "approximate", None),
    ("cy", "1920au", 1920, 1929, "decade", None),
    ("da", "19. århundrede", 1800, 1899, "century", None),
    ("da", "1800-tallet", 1800, 1899, "hundreds as century", None),
    ("da", "slutningen af 1800-tallet", 1850, 1899, "century-part", None),
    ("da", "1920'erne", 1920, 1929, "decade", None),
    ("da", "før 1850", 1850, 1850, "before", "before"),
    ("el", "19ος αιώνας", 1800, 1899, "century", None),
    ("el", "ιθʹ αιώνας", 1800, 1899, "greek numeral", None),
    ("el", "αρχές του 20ού αιώνα", 1900, 1949, "century-part", None),
    ("el", "300 π.Χ.", -300, -300, "BC", None),
    ("et", "19. sajand", 1800, 1899, "century", None),
    ("et", "19. sajandi algus", 1800, 1849, "century-part", None),
    ("et", "umbes 1850", 1850, 1850, "approximate", None),
    ("eu", "XIX. mendea", 1800, 1899, "century", None),
    ("eu", "XIX. mendearen hasiera", 1800, 1849, "century-part", None),
    ("fi", "1900-luku", 1900, 1999, "hundreds as century", None),
    ("fi", "1920-luku", 1920, 1929, "decade", None),
    ("fi", "1920-luvulla", 1920, 1929, "decade", None),
    ("fi", "1800-luvun loppupuoli", 1850, 1899, "century-part", None),
    ("fi", "Ensimmäinen vuosisata", 1, 99, "named century", None),
    ("fi", "noin 1850", 1850, 1850, "approximate", None),
    ("fi", "300 eaa.", -300, -300, "BC", None),
    ("ga", "19ú haois", 1800, 1899, "century", None),
    ("ga", "deireadh an 19ú haois", 1850, 1899, "century-part", None),
    ("gl", "século XIX", 1800, 1899, "century", None),
    ("gl", "finais do século XVIII", 1750, 1799, "century-part", None),
    ("gl", "cara a 1850", 1850, 1850, "approximate", None),
    ("hr", "19. stoljeće", 1800, 1899, "century", None),
    ("hr", "početkom 20. stoljeća", 1900, 1949, "century-part", None),
    ("hr", "prije 1850", 1850, 1850, "before", "before"),
    ("hu", "20. század", 1900, 1999, "century", None),
    ("hu", "19. század eleje", 1800, 1849, "century-part", None),
    ("hu", "19. század első fele", 1800, 1849, "century-part", None),
    ("hu", "1850 körül", 1850, 1850, "approximate", None),
    ("hu", "1920-as évek", 1920, 1929, "decade", None),
    ("hu", "1869. március 10.", 1869, 1869, "day-month-year", None),
    ("is", "19. öld", 1800, 1899, "century", None),
    ("is", "300 f.Kr.", -300, -300, "BC", None),
    ("lt", "XIX amžius", 1800, 1899, "century", None),
    ("lt", "XIX a. pabaiga", 1850, 1899, "century-part", None),
    ("lt", "apie 1850", 1850, 1850, "approximate", None),
    ("lv", "19. gadsimts", 1800, 1899, "century", None),
    ("lv", "19. gadsimta beigas", 1850, 1899, "century-part", None),
    ("lv", "pirms 1850", 1850, 1850, "before", "before"),
    ("mt", "is-seklu 18", 1700, 1799, "century", None),
    ("mt", "madwar 1850", 1850, 1850, "approximate", None),
    ("no", "1800-tallet", 1800, 1899, "hundreds as century", None),
    ("no", "19. århundre", 1800, 1899, "century", None),
    ("no", "1920-årene", 1920, 1929, "decade", None),
    ("no", "etter 1850", 1850, 1850, "after", "after"),
    ("pl", "XIX wiek", 1800, 1899, "century", None),
    ("pl", "początek XIX wieku", 1800, 1849, "century-part", None),
    ("pl", "II połowa XIX w.", 1850, 1899, "century-part", None),
    ("pl", "ok. 1850", 1850, 1850, "approximate", None),
    ("pl", "I wiek p.n.e.", -100, -1, "BC", None),
    ("pl", "XV-XVI wiek", 1400, 1599, "centuries sharing a word", None),
    ("pt", "Século XX", 1900, 1999, "century", None),
    ("pt", "Século vinte", 1900, 1999, "named century", None),
    ("pt", "meados do século XIX", 1830, 1869, "century-part", None),
    ("pt", "cerca de 1850", 1850, 1850, "approximate", None),
    ("pt", "década de 1920", 1920, 1929, "decade", None),
    ("ro", "Secolul al XIX-lea", 1800, 1899, "century", None),
    ("ro", "sfârșitul secolului al XVIII-lea", 1750, 1799, "century-part", None),
    ("ro", "anii 1920", 1920, 1929, "decade", None),
    ("ru", "XIX век", 1800, 1899, "century", None),
    ("ru", "кон. XIX в.", 1850, 1899, "century-part", None),
    ("ru", "XIX–XX вв.", 1800, 1999, "centuries sharing a word", None),
    ("ru", "1920-е годы", 1920, 1929, "decade", None),
    ("ru", "ок. 1850", 1850, 1850, "approximate", None),
    ("ru", "300 до н. э.", -300, -300, "BC", None),
    ("sk", "19. storočie", 1800, 1899, "century", None),
    ("sk", "začiatok 20. storočia", 1900, 1949, "century-part", None),
    ("sl", "19. stoletje", 1800, 1899, "century", None),
    ("sl", "konec 19. stoletja", 1850, 1899, "century-part", None),
    ("sr", "XIX век", 1800, 1899, "century", None),
    ("sr", "XIX vek", 1800, 1899, "century", None),
    ("sr", "крајем 19. века", 1850, 1899, "century-part", None),
    ("sr", "oko 1850", 1850, 1850, "approximate", None),
    ("sv", "1900-talet", 1900, 1999, "hundreds as century", None),
    ("sv", "1920-talet", 1920, 1929, "decade", None),
    ("sv", "början av 1800-talet", 1800, 1849, "century-part", None),
    ("sv", "1800-talets första hälft", 1800, 1849, "century-part", None),
    ("sv", "000-talet", 1, 99, "hundreds as century", None),
    ("sv", "19:e århundradet", 1800, 1899, "century", None),
    ("sv", "omkring 1850", 1850, 1850, "approximate", None),
    ("sv", "100 f.Kr. - 100 e.Kr.", -100, 100, "BC", None),
    ("tr", "15. yüzyıl", 1400, 1499, "century", None),
    ("tr", "20. yüzyıl başları", 1900, 1949, "century-part", None),
    ("tr", "1920'ler", 1920, 1929, "decade", None),
    ("tr", "M.Ö. 300", -300, -300, "BC", None),
    ("uk", "ХІХ століття", 1800, 1899, "cyrillic roman numeral", None),
    ("uk", "19 століття", 1800, 1899, "century", None),
    ("uk", "кінець XVIII століття", 1750, 1799, "century-part", None),
    ("uk", "близько 1850", 1850, 1850, "approximate", None),
    ("uk", "після 1850", 1850, 1850, "after", "after"),
]


@pytest.mark.parametrize("lang, text, lo, hi, rule, qualifier", FORMS,
                         ids=[f"{f[0]}-{f[1]}" for f in FORMS])
def test_each_language_form_and_the_rule_that_reads_it(lang, text, lo, hi, rule, qualifier):
    r = parse(text)
    assert (r.earliest, r.latest, r.qualifier) == (lo, hi, qualifier), r
    assert rule in r.rule
    bounds = parse_edtf(r.edtf)  # our EDTF, read back by the edtf package
    if qualifier != "before":
        assert bounds.lower_strict().tm_year == (lo + 1 if lo < 0 else lo)
    if qualifier != "after":
        assert bounds.upper_strict().tm_year == (hi + 1 if hi < 0 else hi)


def test_every_language_of_the_vocabularies_has_forms_here():
    assert {f[0] for f in FORMS} == set(LANGUAGES)
    eu = {"bg", "cs", "da", "de", "el", "en", "es", "et", "fi", "fr", "ga", "hr", "hu", "it", "lt",
          "lv", "mt", "nl", "pl", "pt", "ro", "sk", "sl", "sv"}
    regional = {"ca", "eu", "gl", "cy", "no", "is", "uk", "sr", "tr"}
    assert (eu | regional) - {"de", "en", "es", "fr", "it", "nl"} <= set(LANGUAGES)


# languages of the vocabularies without a source-dated real string yet: each one found moves out
WITHOUT_REAL_STRINGS = {"cy", "gl", "is", "mt", "no", "sr"}


def test_real_strings_in_the_languages_and_what_is_still_missing():
    corpus = pd.concat([pd.read_csv(f, dtype=str, keep_default_na=False)
                        for f in sorted(REAL.glob("*.csv"))])
    have = set(corpus["lang"])
    assert set(LANGUAGES) - have == WITHOUT_REAL_STRINGS


def test_each_europeana_century_label_is_within_a_year_of_its_timespan():
    """Europeana's own edm:begin/edm:end (1801-1900 for the 19th century) against our years
    (1800-1899): within one year at both ends, for every label in every language."""
    df = pd.read_csv(REAL / "europeana-timespans-languages.csv", dtype=str,
                     keep_default_na=False)
    df = df[df["source"].str.startswith("europeana/")]  # the century entities (not Semium's)
    assert len(df) >= 130 and df["lang"].nunique() >= 20
    for text, begin, end in df[["text", "begin", "end"]].itertuples(index=False):
        r = parse(text)
        assert r.parsed, text
        assert abs(r.earliest - int(begin)) <= 1 and abs(r.latest - int(end)) <= 1, text


# the Nordic hundreds are centuries, the other years with those endings decades: "1900-talet"
# was read as the year 1900 before (issue 34)
@pytest.mark.parametrize("text, lo, hi", [
    ("1900-talet", 1900, 1999), ("1900-luku", 1900, 1999), ("1800-tallet", 1800, 1899),
    ("1920-talet", 1920, 1929), ("1920-luku", 1920, 1929), ("1990-tallet", 1990, 1999),
    ("1900-е годы", 1900, 1909),  # Russian: a decade, even of a hundred
])
def test_nordic_hundreds_are_centuries_and_other_endings_decades(text, lo, hi):
    assert (parse(text).earliest, parse(text).latest) == (lo, hi)


# any Unicode decimal digits are read as what they are (museum-digital's LIDO writes the same
# day, 10.03.1869, in 22 languages' forms: tests/data/real/dates/lido-ddb-kenom.csv)
@pytest.mark.parametrize("text, year", [
    ("١٠/٠٣/١٨٦٩", 1869),  # Arabic-Indic
    ("۱۸۶۹", 1869),  # Extended Arabic-Indic (Persian)
    ("१८६९", 1869),  # Devanagari
    ("১৮৬৯", 1869),  # Bengali
    ("１８６９年", 1869),  # fullwidth
    ("ca. ١٨٥٠", 1850),
])
def test_unicode_decimal_digits_are_read(text, year):
    r = parse(text)
    assert (r.earliest, r.latest) == (year, year)
    assert "digits of another script" in r.rule


def test_a_year_to_come_in_other_digits_is_another_calendar_and_refused():
    r = parse("۳۰/۰۵/۲۴۹۰")  # museum-digital's Persian form of 10.03.1869
    assert not r.parsed and r.earliest is None and "another calendar" in r.rule


@pytest.mark.parametrize("text, lo, hi, rule", [
    ("Ⅻ век", 1100, 1199, "roman numeral signs"),
    ("ХІХ ст.", 1800, 1899, "cyrillic roman numeral"),  # Cyrillic Kha and Ukrainian I
    ("Х век", 900, 999, "cyrillic roman numeral"),
    ("κʹ αιώνας", 1900, 1999, "greek numeral"),
])
def test_numerals_of_other_scripts(text, lo, hi, rule):
    r = parse(text)
    assert (r.earliest, r.latest) == (lo, hi) and rule in r.rule


@pytest.mark.parametrize("text, expected", [
    # a bare number before an abbreviation of "century" is no century (Nationaal Archief)
    ("1585 augustus 12 (augustus 2 St. Angliae)", (1585, 1585)),
    ("2 St.", (None, None)),
    ("s. v. Dupont", (None, None)),
    # Ukrainian "і" (and) stays a word; "до" is "until" only before a single year
    ("XVIII і XIX століття", (1700, 1899)),
    ("1850 до 1860", (1850, 1860)),
])
def test_words_that_look_like_date_words_are_not_read_as_them(text, expected):
    r = parse(text)
    assert (r.earliest, r.latest) == expected


# "between X and Y", the word before the years or after them, in the languages' own words
@pytest.mark.parametrize("text", [
    "between 1850 and 1860", "zwischen 1850 und 1860", "tra il 1850 e il 1860",
    "entre 1850 et 1860", "mezi 1850 a 1860", "między 1850 a 1860", "между 1850 и 1860",
    "1850 és 1860 között", "1850 ja 1860 välillä", "mellan 1850 och 1860", "mellom 1850 og 1860",
    "1850 ile 1860 arasında", "între 1850 și 1860", "μεταξύ 1850 και 1860", "idir 1850 agus 1860",
])
def test_between_two_years_is_their_range(text):
    r = parse(text)
    assert (r.earliest, r.latest, r.qualifier) == (1850, 1860, None)
    assert "between" in r.rule and r.edtf == "1850/1860"


# "no date" in the languages' own abbreviations: a known absence, not an unparsed string
@pytest.mark.parametrize("text", ["b.d.", "bez daty", "b.r.", "u.å.", "udateret", "б.г.",
                                  "без года", "sem data", "tarihsiz", "év nélkül"])
def test_no_date_in_other_languages_is_a_known_absence(text):
    r = parse(text)
    assert r.parsed and not r.known and r.earliest is None and r.rule == "no date"


# a decade named by its tens within a century, as Slavic catalogues write it
@pytest.mark.parametrize("text, lo, hi", [
    ("lata 20. XX wieku", 1920, 1929), ("lata 80. XIX w.", 1880, 1889),
    ("20. léta 20. století", 1920, 1929), ("20-е годы XX века", 1920, 1929),
    ("20-ті роки XX століття", 1920, 1929), ("20-ih godina 20. stoljeća", 1920, 1929),
    ("początek lat 20. XX wieku", 1920, 1925),  # early part of the decade, as "early 1920s"
])
def test_decade_of_a_century(text, lo, hi):
    r = parse(text)
    assert (r.earliest, r.latest) == (lo, hi) and "decade" in r.rule


# calendar dates with the languages' month names (genitive forms included): the year is kept
@pytest.mark.parametrize("text", [
    "10 marca 1869", "10 martie 1869", "10 Μαρτίου 1869", "10 марта 1869 г.",
    "1869 m. kovo 10 d.", "10. maaliskuuta 1869", "10 de març de 1869", "10 de março de 1869",
    "10. března 1869", "10. ožujka 1869.", "10 Mart 1869", "10. marts 1869",
    "10 березня 1869 р.", "10 Mawrth 1869", "10 Márta 1869", "martxoaren 10, 1869",
])
def test_calendar_dates_with_month_names(text):
    r = parse(text)
    assert (r.earliest, r.latest) == (1869, 1869) and "day-month-year" in r.rule
