"""Date parsing: ``echoes_lab.collections.dates`` against the ``edtf`` and ``undate`` parsers.

A million display dates are drawn from real museum patterns: the Tate snapshot's ``date_text``
distribution when ``../shared/datasets/tate-collection`` is present (with its frequencies),
mixed with multilingual and EDTF forms. Reported: strings per second, coverage (share of
strings each parser turns into a date or interval), and the ratios.

Usage: ``.venv/bin/python benchmarks/dates.py [--rows 1000000] [--sample 20000]``. Every ratio
compares like with like (issue 27): the headline gives every parser the same de-duplication
(each distinct string parsed once, the column filled from the results, as ``parse_series``
does); the second line calls every parser once per value with no cache on either side (ours
through ``parse.__wrapped__``), on a random ``--sample`` of the same strings, since the stock
parsers take milliseconds a string. Coverage is measured on that sample for the stock parsers.
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from echoes_lab.collections.dates import parse, parse_series
from echoes_lab.errors import EchoesError

TATE = (Path(__file__).resolve().parents[2] / "shared" / "datasets" / "tate-collection"
        / "artworks.csv.gz")
OTHER = ["vers 1850", "XVIIIe siècle", "début du XIXe siècle", "secolo XVIII",
         "fine del XVIII secolo", "um 1800", "18. Jahrhundert", "Anfang des 19. Jahrhunderts",
         "hacia 1800", "siglo XVIII",
         "1850s", "early 19th century", "before 1850", "1827 or 1828", "1984?", "198X", "1850/1860",
         "n.d.", "ca. 1750", "1750-75"]


def corpus(rows: int, seed: int = 1) -> pd.Series:
    rng = np.random.default_rng(seed)
    if TATE.exists():
        texts = pd.read_csv(TATE, usecols=["date_text"], dtype=str,
                            keep_default_na=False)["date_text"]
        freq = texts.value_counts(normalize=True)
        tate = rng.choice(freq.index.to_numpy(), size=int(rows * 0.9), p=freq.to_numpy())
        other = rng.choice(OTHER, size=rows - len(tate))
        values = np.concatenate([tate, other])
    else:
        print("(Tate snapshot absent: using the multilingual patterns only)")
        values = rng.choice(OTHER, size=rows)
    rng.shuffle(values)
    return pd.Series(values, dtype="string")


def stock(name: str, values: list[str]) -> tuple[float, float]:
    if name == "edtf":
        from edtf import parse_edtf as one
    else:
        from undate import Undate

        def one(text):
            return Undate.parse(text, "omnibus")

    ok = 0
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for text in values:
            try:
                one(text)
                ok += 1
            except Exception:  # a parser's refusal of a string is what we count
                pass
    return len(values) / (time.perf_counter() - t0), ok / len(values)


REAL = Path(__file__).resolve().parents[1] / "tests" / "data" / "real"


DATES = REAL / "dates"
#: the languages with at least 15 source-dated strings in the corpus, each reported on its own
LANGUAGES = ("en", "fr", "it", "de", "es", "nl", "sv", "ru")


#: a parsed date further than this from the source's own years (no overlap, in years) moves the
#: object to another decade in a timeline or a date facet: "silently wrong"
WRONG_BEYOND = 10


def agreement_flags(text, lo, hi) -> pd.DataFrame:
    """Per string, our years for ``text`` against the source's ``lo``/``hi`` (one row each):

    ``exact``; ``near``: both ends within one year as written; ``agree``: within one year as
    written or widened ("c. 1850" widened to 1845-1855, "before 1850" open at its start), or the
    source's own years inside ours (±1) where they are more specific than the display date says
    (the Italian catalogue's DTSI/DTSF "1769" beside "sec. XVIII"; "begin 19de eeuw" stored as
    1800/1810); ``within``: the source's years inside ours (±1); ``wrong``: parsed and further
    than ``WRONG_BEYOND`` years from the source's interval; ``parsed``: read at all.
    """
    parsed = parse_series(pd.Series(np.asarray(text, dtype=object), dtype="string"))

    def years(column):
        return parsed[column].astype(float).to_numpy()

    e, l_ = years("date_earliest"), years("date_latest")
    ew, lw = years("date_earliest_widened"), years("date_latest_widened")
    lo, hi = np.asarray(lo, dtype=float), np.asarray(hi, dtype=float)
    ok = ~np.isnan(e)
    near = (np.abs(e - lo) <= 1) & (np.abs(l_ - hi) <= 1)
    # an open widened end ("before 1850": no earliest) agrees with any source year on that side
    widened = ok & (np.isnan(ew) | (np.abs(ew - lo) <= 1)) & (np.isnan(lw) | (np.abs(lw - hi) <= 1))
    within = (e - 1 <= lo) & (hi <= l_ + 1)
    return pd.DataFrame({
        "exact": (e == lo) & (l_ == hi), "near": near, "agree": near | widened | within,
        "within": within, "wrong": ok & ((lo > l_ + WRONG_BEYOND) | (hi < e - WRONG_BEYOND)),
        "parsed": parsed["date_parsed"].to_numpy() & ok})


def scores(text, lo, hi) -> dict:
    """The shares of ``agreement_flags`` over a group of strings, and their count."""
    flags = agreement_flags(text, lo, hi)
    return {"strings": len(flags), **{k: float(flags[k].mean()) for k in flags}}


def date_corpus() -> pd.DataFrame:
    """The display dates with source-given years: ``tests/data/real/dates/*.csv`` and the rows
    of the Tate excerpt ``tests/data/real/csv/tate-artworks-excerpt.csv`` that have a start."""
    frames = [pd.read_csv(f, dtype=str, keep_default_na=False) for f in sorted(DATES.glob("*.csv"))]
    tate = pd.read_csv(REAL / "csv" / "tate-artworks-excerpt.csv", dtype=str,
                       keep_default_na=False)
    tate = tate[tate["date_start"] != ""]
    frames.append(pd.DataFrame({
        "lang": "en", "source": "tategallery/collection (excerpt)", "text": tate["date_text"],
        "begin": tate["date_start"],
        "end": tate["date_end"].where(tate["date_end"] != "", tate["date_start"])}))
    df = pd.concat(frames, ignore_index=True)
    df["begin"], df["end"] = pd.to_numeric(df["begin"]), pd.to_numeric(df["end"])
    return df


def agreement() -> None:
    """Years parsed from display dates against the years the source itself gives for them:
    the Tate's date_start/date_end, the real-date corpus ``tests/data/real/dates`` (LIDO
    earliestDate/latestDate, the Italian catalogue's DTSI/DTSF, Europeana time spans'
    edm:begin/edm:end, French and Dutch archives' EAD unitdate/@normal) per source and
    language, and the machine dates of the readers' corpus (LIDO, EDM edm:begin/end, IIIF
    navDate). Exact, within ±1 year, and within the parsed span."""
    from echoes_lab.collections.records import read

    rows = []
    if TATE.exists():
        df = pd.read_csv(TATE, dtype=str, keep_default_na=False)
        df = df[df["date_start"] != ""]
        end = df["date_end"].where(df["date_end"] != "", df["date_start"])
        rows.append(("Tate artworks.csv", "en", df["date_text"],
                     pd.to_numeric(df["date_start"], errors="coerce"),
                     pd.to_numeric(end, errors="coerce")))
    corpus = date_corpus()
    for (source, lang), group in corpus.groupby(["source", "lang"], sort=True):
        if lang in LANGUAGES:
            rows.append((source, lang, group["text"], group["begin"], group["end"]))
    for lang in LANGUAGES:
        group = corpus[corpus["lang"] == lang]
        rows.append(("real-date corpus, all sources", lang, group["text"], group["begin"],
                     group["end"]))
    # every other language on its own line (fewer than 15 strings each: figures, no bar)
    for lang, group in corpus[~corpus["lang"].isin(LANGUAGES)].groupby("lang", sort=True):
        rows.append(("real-date corpus, all sources", lang, group["text"], group["begin"],
                     group["end"]))
    frames, skipped = [], 0
    for path in sorted(REAL.rglob("*")):
        if (path.suffix in (".xml", ".json") and "datasets" not in path.parts
                and "cookbook" not in str(path)):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                try:
                    frames.append(read(path))
                except EchoesError:  # a file a reader refuses has no dates to compare
                    skipped += 1
    read_df = pd.concat(frames)
    read_df = read_df[read_df["date_machine_earliest"].notna() & read_df["date_text"].notna()]
    if skipped:
        print(f"(readers' corpus: {skipped} file(s) refused by the readers, not compared)")
    rows.append(("readers' corpus: LIDO/EDM/IIIF/OAI records", "mix",
                 read_df["date_text"], read_df["date_machine_earliest"].astype(float),
                 read_df["date_machine_latest"].astype(float)))
    print(f"| {'source':46} | lang | strings |  exact | ±1 year | within |  agree | wrong "
          f"| parsed |")
    print(f"|{'-' * 48}|------|--------:|-------:|--------:|-------:|-------:|------:|-------:|")
    for label, lang, text, lo, hi in rows:
        if len(text) == 0:
            print(f"| {label:46} | {lang:4} | {0:7,} |      – |       – |      – |      – |     – "
                  f"|      – |")
            continue
        r = scores(text, lo, hi)
        wrong = round(r["wrong"] * r["strings"])
        print(f"| {label:46} | {lang:4} | {r['strings']:7,} | {r['exact']:6.1%} | "
              f"{r['near']:7.1%} | {r['within']:6.1%} | {r['agree']:6.1%} | {wrong:5} | "
              f"{r['parsed']:6.1%} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--sample", type=int, default=20_000)
    parser.add_argument("--agreement", action="store_true",
                        help="only compare parsed years with the sources' own begin/end years")
    args = parser.parse_args()
    if args.agreement:
        agreement()
        return
    values = corpus(args.rows)
    distinct = values.unique().tolist()
    print(f"{len(values):,} strings, {len(distinct):,} distinct")

    # like for like 1 (the headline): every parser parses each distinct string once and the
    # column is filled from those results, as parse_series does
    parse.cache_clear()
    t0 = time.perf_counter()
    ours = parse_series(values)
    ours_rate = len(values) / (time.perf_counter() - t0)
    ours_cov = float((ours["date_parsed"] & ours["date_known"]).mean())
    # like for like 2: one call per value, no cache on either side, on the same sample
    sample = values.sample(n=min(args.sample, len(values)), random_state=2).tolist()
    uncached = parse.__wrapped__
    t0 = time.perf_counter()
    ours_sample = [uncached(text) for text in sample]
    ours_per_value = len(sample) / (time.perf_counter() - t0)
    ours_sample_cov = float(np.mean([r.parsed and r.known for r in ours_sample]))
    print(f"\n{'parser':52} {'strings/s':>12} {'coverage':>9} {'ours ÷ theirs':>14}")
    for name in ("edtf", "undate"):
        d_rate, _ = stock(name, distinct)
        rate, cov = stock(name, sample)
        d_rate *= len(values) / len(distinct)
        print(f"{'distinct strings once (both), ours':52} {ours_rate:12,.0f} {ours_cov:9.1%}")
        print(f"{'distinct strings once (both), ' + name:52} {d_rate:12,.0f} {cov:9.1%} "
              f"{ours_rate / d_rate:13.1f}x  <- headline")
        print(f"{'per value, no cache (both), ours':52} {ours_per_value:12,.0f} "
              f"{ours_sample_cov:9.1%}")
        print(f"{'per value, no cache (both), ' + name:52} {rate:12,.0f} {cov:9.1%} "
              f"{ours_per_value / rate:13.1f}x")


if __name__ == "__main__":
    main()
