"""A messy collection-management export, as museums hand them over.

A few thousand object records with what real exports have: dates written every which way
("c.1830–41", "?1829", "1850s", "n.d.", "vers 1850"), several makers in one field, free-text
media and dimensions, blank and whitespace-padded cells, and a few exact and near duplicates.
Seeded: the same seed and size give the same bytes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from echoes_lab.demo.entry import entry

SURNAMES = ["Turner", "Constable", "Gainsborough", "Blake", "Hepworth", "Moore", "Riley", "Hockney",
            "Rossetti", "Millais", "Whistler", "Sickert", "Nash", "Spencer", "Bacon", "Freud",
            "Kauffman", "Siddal", "Carrington", "John"]
FORENAMES = ["Joseph", "John", "Thomas", "William", "Barbara", "Henry", "Bridget", "David", "Dante",
             "Gwen", "Walter", "Paul", "Stanley", "Francis", "Lucian", "Angelica", "Elizabeth",
             "Dora"]
TYPES = ["painting", "Painting", "drawing", "print", "sculpture", "photograph", "textile",
         " painting "]
MEDIA = ["Oil paint on canvas", "oil on canvas", "Watercolour on paper", "Graphite on paper",
         "Etching on paper", "Bronze", "Marble", "Gelatin silver print", "Wool and silk",
         "Oil paint on wood", "Ink and wash on paper", ""]
PLACES = ["London", "Paris", "Venice", "Edinburgh", "Rome", "Amsterdam", "", "Madrid", "Berlin"]
RIGHTS = ["CC0", "CC BY-NC-ND 4.0", "In copyright", "Public domain", ""]


def _date(rng: np.random.Generator, year: int) -> str:
    """One date as a cataloguer might have typed it."""
    style = rng.integers(0, 16)
    end = year + int(rng.integers(1, 12))
    return [
        f"{year}", f"{year}", f"{year}", f"c.{year}", f"circa {year}", f"?{year}",
        f"{year}–{str(end)[-2:]}", f"{year}-{end}", f"{year // 10 * 10}s",
        f"exhibited {year}", f"published {year}", "n.d.", "date not known",
        f"vers {year}", f"{year}, {year + 1}", f"{year} or {year + 1}",
    ][style]


def records(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        year = int(rng.integers(1700, 1990))
        makers = [f"{rng.choice(SURNAMES)}, {rng.choice(FORENAMES)}"
                  for _ in range(1 + (rng.random() < 0.08))]
        h, w = int(rng.integers(80, 2500)), int(rng.integers(80, 2500))
        dims = (f"support: {h} x {w} mm" if rng.random() < 0.6 else
                f"{h / 10:.1f} × {w / 10:.1f} cm" if rng.random() < 0.7 else "")
        rows.append({
            "Object Number": f"ECH{i + 1:05d}",
            "Title": (("  " if rng.random() < 0.02 else "")
                      + f"Study {i % 400} of {rng.choice(PLACES) or 'a view'}"),
            "Maker": "; ".join(makers) if rng.random() > 0.03 else "",
            "Date": _date(rng, year),
            "Object Type": str(rng.choice(TYPES)),
            "Medium": str(rng.choice(MEDIA)),
            "Dimensions": dims,
            "Place": str(rng.choice(PLACES)),
            "Rights": str(rng.choice(RIGHTS)),
            "Acquired": int(year + rng.integers(0, 200)) if rng.random() > 0.1 else "",
        })
    df = pd.DataFrame(rows)
    # exact duplicates (a record exported twice) and near duplicates (re-keyed by hand)
    dupes = df.sample(n=max(1, n // 200), random_state=seed)
    near = df.sample(n=max(1, n // 200), random_state=seed + 1).copy()
    near["Object Number"] = near["Object Number"].str.replace("ECH", "ECH-", regex=False)
    near["Title"] = near["Title"].str.upper()
    return pd.concat([df, dupes, near], ignore_index=True)


def write(out_dir: Path, size: str = "small", seed: int = 1830) -> list[dict]:
    n = {"small": 3000, "large": 1_000_000}[size]
    path = Path(out_dir) / "collection" / "objects.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    records(n, seed).to_csv(path, index=False, lineterminator="\n")
    return [entry(
        __name__, seed, "demo-collection", "Demo collection export (synthetic)",
        f"{n:,} object records plus duplicates, exported from a fictional collection-management "
        "system, with the messy dates, makers, media and dimensions of real exports. For trying "
        "the records and dates tools.",
        [str(path.relative_to(out_dir))], dtype="string", keep_default_na=False)]
