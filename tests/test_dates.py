"""Historical and fuzzy dates.

References: the Library of Congress *Extended Date/Time Format (EDTF) Specification* (2019,
ISO 8601-2) for the EDTF forms and their meaning; the Tate's own machine-readable
``date_start``/``date_end`` beside its display dates (Tate collection snapshot, CC0) for how a
museum turns "c.1830–41" into years. Every EDTF string we emit is read back by the independent
``edtf`` package, whose bounds must equal ours.
"""

from __future__ import annotations

import math

import pandas as pd
import pytest
from edtf import parse_edtf

from echoes_lab.collections.dates import COLUMNS, parse, parse_series, unparsed

CASES = [
    # text, earliest, latest, edtf, approximate, uncertain, qualifier
    ("1830", 1830, 1830, "1830", False, False, None),
    ("c.1830–41", 1830, 1841, "1830~/1841~", True, False, None),
    ("1823–4", 1823, 1824, "1823/1824", False, False, None),
    ("1750-75", 1750, 1775, "1750/1775", False, False, None),
    ("1899–05", 1899, 1905, "1899/1905", False, False, None),
    ("ca. 1750", 1750, 1750, "1750~", True, False, None),
    ("circa 1600", 1600, 1600, "1600~", True, False, None),
    ("?1829", 1829, 1829, "1829?", False, True, None),
    ("?c.1820", 1820, 1820, "1820%", True, True, None),
    ("1850s", 1850, 1859, "185X", False, False, None),
    ("early 1840s", 1840, 1845, "1840/1845", False, False, None),   # Tate: 1840-1845
    ("18th century", 1700, 1799, "17XX", False, False, None),
    ("late 18th C", 1750, 1799, "1750/1799", False, False, None),   # Tate: 1750-1799
    ("early 19th century", 1800, 1849, "1800/1849", False, False, None),
    ("first half of the 18th century", 1700, 1749, "1700/1749", False, False, None),
    ("before 1850", 1850, 1850, "../1850", False, False, "before"),
    ("after 1850", 1850, 1850, "1850/..", False, False, "after"),
    ("exhibited 1836", 1836, 1836, "1836", False, False, "exhibited"),
    ("published 1787", 1787, 1787, "1787", False, False, "published"),
    ("1978, printed 2005", 1978, 2005, "{1978,2005}", False, False, "printed"),
    ("1956, 1957", 1956, 1957, "{1956,1957}", False, False, None),
    ("1827 or 1828", 1827, 1828, "[1827,1828]", False, False, None),
    # EDTF specification examples, given as input
    ("1984?", 1984, 1984, "1984?", False, True, None),
    ("198X", 1980, 1989, "198X", False, False, None),
    ("1850/1860", 1850, 1860, "1850/1860", False, False, None),
    ("[1667,1668]", 1667, 1668, "[1667,1668]", False, False, None),
    # French, Italian, German, Spanish
    ("vers 1850", 1850, 1850, "1850~", True, False, None),
    ("XVIIIe siècle", 1700, 1799, "17XX", False, False, None),
    ("début du XIXe siècle", 1800, 1849, "1800/1849", False, False, None),
    ("fin du XVIIIe siècle", 1750, 1799, "1750/1799", False, False, None),
    ("années 1850", 1850, 1859, "185X", False, False, None),
    ("secolo XVIII", 1700, 1799, "17XX", False, False, None),
    ("fine del XVIII secolo", 1750, 1799, "1750/1799", False, False, None),
    ("um 1800", 1800, 1800, "1800~", True, False, None),
    ("18. Jahrhundert", 1700, 1799, "17XX", False, False, None),
    ("Anfang des 19. Jahrhunderts", 1800, 1849, "1800/1849", False, False, None),
    ("1850er Jahre", 1850, 1859, "185X", False, False, None),
    ("nach 1800", 1800, 1800, "1800/..", False, False, "after"),
    ("hacia 1800", 1800, 1800, "1800~", True, False, None),
    ("siglo XVIII", 1700, 1799, "17XX", False, False, None),
    ("finales del siglo XIX", 1850, 1899, "1850/1899", False, False, None),
    ("antes de 1700", 1700, 1700, "../1700", False, False, "before"),
]


@pytest.mark.parametrize("text, lo, hi, edtf, approx, uncertain, qualifier", CASES, ids=[c[0] for c in CASES])
def test_forms(text, lo, hi, edtf, approx, uncertain, qualifier):
    r = parse(text)
    assert r.parsed and r.known
    assert (r.earliest, r.latest) == (lo, hi)
    assert r.edtf == edtf
    assert (r.approximate, r.uncertain, r.qualifier) == (approx, uncertain, qualifier)


@pytest.mark.parametrize("text", [c[0] for c in CASES])
def test_emitted_edtf_is_read_back_with_the_same_bounds_by_the_edtf_package(text):
    r = parse(text)
    parsed = parse_edtf(r.edtf)
    lower, upper = parsed.lower_strict(), parsed.upper_strict()
    if r.qualifier != "before":
        assert lower.tm_year == r.earliest
    else:
        assert math.isinf(lower)
    if r.qualifier != "after":
        assert upper.tm_year == r.latest
    else:
        assert math.isinf(upper)


def test_widened_interval():
    assert (parse("c.1830").earliest_widened, parse("c.1830").latest_widened) == (1825, 1835)
    assert (parse("c.1830", approx_years=10).earliest_widened) == 1820
    assert parse("before 1850").earliest_widened is None and parse("before 1850").latest_widened == 1850
    assert parse("after 1850").latest_widened is None
    assert parse("?1829").earliest_widened == 1829  # uncertain is not approximate


@pytest.mark.parametrize("text", ["n.d.", "nd", "date not known", "no date", "undated", "s.d.", "sans date", "o.J."])
def test_known_absence_of_a_date(text):
    r = parse(text)
    assert r.parsed and not r.known and r.earliest is None and r.edtf is None


@pytest.mark.parametrize("text", ["", "garbage", "see file", "Ming dynasty"])
def test_unrecognised_strings_are_reported_not_guessed(text):
    r = parse(text)
    assert not r.parsed and r.earliest is None and r.latest is None


def test_series_is_the_same_as_one_by_one_and_reports_unparsed():
    s = pd.Series(["c.1830–41", "n.d.", "garbage", "c.1830–41", None, "1850s"], index=list("abcdef"))
    table = parse_series(s)
    assert list(table.columns) == COLUMNS and list(table.index) == list("abcdef")
    assert table.loc["a", "date_earliest"] == 1830 and table.loc["d", "date_latest"] == 1841
    assert table.loc["f", "date_edtf"] == "185X"
    assert table["date_parsed"].tolist() == [True, True, False, True, False, True]
    assert unparsed(s).to_dict() == {"garbage": 1, "": 1}


def test_tate_years_as_written_match_the_museum(tate_dir):
    """Acceptance: ≥ 95 % of the rows where the Tate gives a start year get the same
    start and end years from our parse of its display date (as written, before widening)."""
    df = pd.read_csv(tate_dir / "artworks.csv.gz", dtype=str, keep_default_na=False)
    parsed = parse_series(df["date_text"])
    has_start = df["date_start"] != ""
    start = pd.to_numeric(df["date_start"], errors="coerce").astype("Int64")
    end = pd.to_numeric(df["date_end"].where(df["date_end"] != "", df["date_start"]), errors="coerce").astype("Int64")
    same = ((parsed["date_earliest"] == start) & (parsed["date_latest"] == end)).fillna(False)
    share = float(same[has_start].mean())
    parse_rate = float(parsed["date_parsed"].mean())
    print(f"\nTate: {share:.2%} of {int(has_start.sum())} rows with a museum start year match "
          f"(as written); {parse_rate:.2%} of all {len(df)} display dates parsed")
    assert share >= 0.95
    assert parse_rate >= 0.99


# issue 16: forms that were read as wrong values, each with the rule that now reads it
ISSUE_16 = [
    ("1921-07-01", 1921, 1921, "iso-date"),
    ("2012-07-13T14:27:31Z", 2012, 2012, "iso-date"),
    ("1.7.1921-31.12.1921", 1921, 1921, "day-month-year"),
    ("12 March 1921", 1921, 1921, "day-month-year"),
    ("American, c. 1707 - c. 1751", 1707, 1751, "range"),
    ("Italian, 1521 - c. 1580", 1521, 1580, "range"),
    ("300 BC", -300, -300, "BC"),
    ("300-200 BC", -300, -200, "BC"),
    ("Siglo III a.C.", -300, -201, "BC"),
    ("IIe siècle av. J.-C.", -200, -101, "BC"),
    ("50 v. Chr.", -50, -50, "BC"),
    ("100 BC - AD 50", -100, 50, "BC"),
    ("2e quart du 18e siècle", 1725, 1749, "century-part"),
    ("1ère moitié 19e siècle", 1800, 1849, "century-part"),
    ("primer tercio del siglo XVII", 1600, 1632, "century-part"),
    ("último tercio del siglo XVIII", 1767, 1799, "century-part"),
    ("secondo quarto del XVIII secolo", 1725, 1749, "century-part"),
    ("zweites Viertel des 18. Jahrhunderts", 1725, 1749, "century-part"),
    ("2. Hälfte des 17. Jahrhunderts", 1650, 1699, "century-part"),
    ("third quarter of the 19th century", 1850, 1874, "century-part"),
    ("1850s", 1850, 1859, "decade"),
    ("1850-", 1850, 1850, "after"),
    ("– 1850", 1850, 1850, "before"),
    ("from 1850", 1850, 1850, "after"),
    ("bis 1850", 1850, 1850, "before"),
]


@pytest.mark.parametrize("text, lo, hi, rule", ISSUE_16, ids=[c[0] for c in ISSUE_16])
def test_issue_16_forms_and_the_rule_that_read_them(text, lo, hi, rule):
    r = parse(text)
    assert (r.earliest, r.latest) == (lo, hi)
    assert rule in r.rule
    if r.edtf:  # EDTF counts years astronomically: 300 BC is -0299
        parsed = parse_edtf(r.edtf)
        if r.qualifier != "before":
            assert parsed.lower_strict().tm_year == (lo + 1 if lo < 0 else lo)


def test_ambiguous_and_range_words_are_not_guessed():
    assert not parse("-1850").parsed and parse("-1850").rule == "ambiguous leading hyphen"
    r = parse("1850 bis 1860")
    assert (r.earliest, r.latest, r.qualifier) == (1850, 1860, None)
    assert parse_series(pd.Series(["c.1830–41"]))["date_rule"].iloc[0] == "range, approximate"
