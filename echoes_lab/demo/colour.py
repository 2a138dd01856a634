"""Colour measurements over time: reflectance spectra of a few objects as a fading study.

Five objects, three measurement points each, measured every two months for three years with a
spectrophotometer (400–700 nm in 10 nm steps, the layout of common instrument CSV exports:
one row per measurement, one column per wavelength). Light-sensitive colorants lose their
absorption band a little at every measurement, at different rates. Seeded: same seed, same bytes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from echoes_lab.demo.entry import entry

WAVELENGTHS = np.arange(400, 701, 10)
OBJECTS = [  # object, absorption centre (nm), width, depth, fading per year (fraction of depth)
    ("ECH00017 carmine lake", 530, 45, 0.65, 0.12),
    ("ECH00102 indigo textile", 610, 60, 0.55, 0.05),
    ("ECH00245 yellow lake", 450, 40, 0.60, 0.20),
    ("ECH01030 vermilion", 480, 70, 0.70, 0.005),
    ("ECH02011 Prussian blue", 640, 80, 0.75, 0.01),
]


def spectra(seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    dates = pd.date_range("2023-01-15", periods=19, freq="2MS") + pd.Timedelta(days=14)
    rows = []
    for name, centre, width, depth, rate in OBJECTS:
        for point in ("P1", "P2", "P3"):
            base = 0.82 + rng.normal(0, 0.01)
            for date in dates:
                years = (date - dates[0]).days / 365.25
                d = depth * (1 - rate) ** years
                refl = base - d * np.exp(-0.5 * ((WAVELENGTHS - centre) / width) ** 2)
                refl = np.clip(refl + rng.normal(0, 0.002, len(WAVELENGTHS)), 0.01, 1.0)
                values = {str(w): round(float(r), 4)
                          for w, r in zip(WAVELENGTHS, refl, strict=True)}
                rows.append({"object": name, "point": point, "date": date.strftime("%Y-%m-%d"),
                             **values})
    return pd.DataFrame(rows)


def write(out_dir: Path, size: str = "small", seed: int = 1905) -> list[dict]:
    path = Path(out_dir) / "colour" / "fading-spectra.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    spectra(seed).to_csv(path, index=False, lineterminator="\n")
    return [entry(
        __name__, seed, "demo-colour",
        "Demo colour monitoring: reflectance spectra over time (synthetic)",
        "Five objects, three points each, measured every two months for three years: "
        "reflectance 400-700 nm in 10 nm steps (columns), as exported by spectrophotometers. "
        "Colorants fade at different rates.",
        [str(path.relative_to(out_dir))], parse_dates=["date"])]
