"""Date parsing: ``echoes_lab.collections.dates`` against the ``edtf`` and ``undate`` parsers, one run.

A million display dates are drawn from real museum patterns: the Tate snapshot's ``date_text``
distribution when ``../shared/datasets/tate-collection`` is present (with its frequencies),
mixed with multilingual and EDTF forms. Each parser gets every string (as a user would call
it on a column: ``edtf.parse_edtf`` and ``undate.Undate.parse(text, "omnibus")`` per value,
ours on the whole column). Reported: strings per second, coverage (share of strings each one
turns into a date or interval), and the ratios.

Usage: ``.venv/bin/python benchmarks/dates.py [--rows 1000000] [--sample 20000]``. The stock
parsers are slow (milliseconds a string), so they are timed on a random ``--sample`` of the
same strings and their throughput is extrapolated; coverage is measured on that sample. They
are also timed on the column's distinct strings only, the trick ours uses, for a fair ratio.
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from echoes_lab.collections.dates import parse_series

TATE = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "tate-collection" / "artworks.csv.gz"
OTHER = ["vers 1850", "XVIIIe siècle", "début du XIXe siècle", "secolo XVIII", "fine del XVIII secolo",
         "um 1800", "18. Jahrhundert", "Anfang des 19. Jahrhunderts", "hacia 1800", "siglo XVIII",
         "1850s", "early 19th century", "before 1850", "1827 or 1828", "1984?", "198X", "1850/1860",
         "n.d.", "ca. 1750", "1750-75"]


def corpus(rows: int, seed: int = 1) -> pd.Series:
    rng = np.random.default_rng(seed)
    if TATE.exists():
        texts = pd.read_csv(TATE, usecols=["date_text"], dtype=str, keep_default_na=False)["date_text"]
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


def agreement() -> None:
    """Years parsed from display dates against the years the source itself gives for them:
    the Tate's date_start/date_end, and the machine dates of every record of the real corpus
    (LIDO earliestDate/latestDate, EDM edm:begin/end, IIIF navDate). Exact and within ±1 year."""
    from echoes_lab.collections.records import read

    rows = []
    if TATE.exists():
        df = pd.read_csv(TATE, dtype=str, keep_default_na=False)
        df = df[df["date_start"] != ""]
        end = df["date_end"].where(df["date_end"] != "", df["date_start"])
        rows.append(("Tate (en)", df["date_text"], pd.to_numeric(df["date_start"], errors="coerce"),
                     pd.to_numeric(end, errors="coerce")))
    frames = []
    for path in sorted(REAL.rglob("*")):
        if path.suffix in (".xml", ".json") and "datasets" not in path.parts and "cookbook" not in str(path):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                frames.append(read(path))
    corpus_df = pd.concat(frames)
    corpus_df = corpus_df[corpus_df["date_machine_earliest"].notna() & corpus_df["date_text"].notna()]
    rows.append(("real corpus: LIDO/EDM/IIIF/OAI (de, nl, pl, en, la)", corpus_df["date_text"],
                 corpus_df["date_machine_earliest"].astype(float), corpus_df["date_machine_latest"].astype(float)))
    print(f"{'source':52} {'strings':>8} {'exact':>7} {'±1 year':>8} {'parsed':>7}")
    for label, text, lo, hi in rows:
        parsed = parse_series(pd.Series(text.to_numpy(), dtype="string"))
        e, l_ = parsed["date_earliest"].astype(float).to_numpy(), parsed["date_latest"].astype(float).to_numpy()
        lo, hi = np.asarray(lo, dtype=float), np.asarray(hi, dtype=float)
        exact = np.mean((e == lo) & (l_ == hi))
        near = np.mean((np.abs(e - lo) <= 1) & (np.abs(l_ - hi) <= 1))
        print(f"{label:52} {len(text):8,} {exact:7.2%} {near:8.2%} {parsed['date_parsed'].mean():7.1%}")


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
    print(f"{len(values):,} strings, {values.nunique():,} distinct")

    t0 = time.perf_counter()
    ours = parse_series(values)
    ours_rate = len(values) / (time.perf_counter() - t0)
    ours_cov = float((ours["date_parsed"] & ours["date_known"]).mean())

    sample = values.sample(n=min(args.sample, len(values)), random_state=2).tolist()
    distinct = values.unique().tolist()
    rows = [("echoes_lab.collections.dates (whole column)", ours_rate, ours_cov)]
    for name in ("edtf", "undate"):
        rate, cov = stock(name, sample)
        rows.append((f"{name}, per value ({len(sample):,} sample)", rate, cov))
        # the same de-duplication ours does: parse each distinct string once
        d_rate, _ = stock(name, distinct)
        rows.append((f"{name}, distinct strings only", d_rate * len(values) / len(distinct), cov))
    print(f"{'parser':42} {'strings/s':>12} {'coverage':>9} {'ours is x faster':>17}")
    for label, rate, cov in rows:
        print(f"{label:42} {rate:12,.0f} {cov:9.1%} {ours_rate / rate:16.1f}x")


if __name__ == "__main__":
    main()
