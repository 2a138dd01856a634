"""State-of-conservation surveys: grades over time, a trend per site, a transparent "at risk" rule.

A survey is one row: ``site_id``, ``date``, ``assessor``, ``grade``, ``threats`` (factors,
``;``-separated) and ``source``.

**Grades** are Historic England's condition categories of the Heritage at Risk register
(*Heritage at Risk: Methodology*, Historic England 2023): very bad, poor, fair, generally
satisfactory but with significant localised problems ("generally satisfactory"), good — in
:data:`GRADES` from worst to best.

**Threats** are the primary factors of the UNESCO World Heritage Centre's *List of factors
affecting the properties* (the standard list of the State of Conservation reports and the
Periodic Reporting questionnaire, whc.unesco.org/en/factors), :data:`FACTORS`; a survey names
them by their text or their number (1-14).

**At risk** (one rule, so that anyone can check it): a site is at risk when its latest grade is
"poor" or "very bad", or when its grade fell between its last two surveys. The trend is the
least-squares slope of the grade's rank (0 = very bad ... 4 = good) against time, in ranks per
decade: below -0.1 "worsening", above +0.1 "improving", else "stable" (one survey: "single
survey").
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from echoes_lab.errors import DataError

#: Historic England's condition categories, worst first (rank = position)
GRADES = ("very bad", "poor", "fair", "generally satisfactory", "good")

#: UNESCO World Heritage "factors affecting the properties": primary factors, numbered
FACTORS = {
    1: "Buildings and development",
    2: "Transportation infrastructure",
    3: "Utilities or service infrastructure",
    4: "Pollution",
    5: "Biological resource use/modification",
    6: "Physical resource extraction",
    7: "Local conditions affecting physical fabric",
    8: "Social/cultural uses of heritage",
    9: "Other human activities",
    10: "Climate change and severe weather events",
    11: "Sudden ecological or geological events",
    12: "Invasive/alien species or hyper-abundant species",
    13: "Management and institutional factors",
    14: "Other factor(s)",
}
_BY_NAME = {v.lower(): v for v in FACTORS.values()}
SURVEY_COLUMNS = ("site_id", "date", "assessor", "grade", "threats", "source")


def _factor(text: str, line: int) -> str:
    t = text.strip()
    if t.isdigit() and int(t) in FACTORS:
        return FACTORS[int(t)]
    if t.lower() in _BY_NAME:
        return _BY_NAME[t.lower()]
    msg = (f"surveys, row {line}: threat '{t}' is not one of the World Heritage factors; use a "
           f"number 1-14 or one of: {'; '.join(FACTORS.values())}")
    raise DataError(msg)


def validate_surveys(surveys: pd.DataFrame) -> pd.DataFrame:
    """The surveys checked: dates parsed, grades known, threats mapped to the factors list."""
    missing = [c for c in ("site_id", "date", "grade") if c not in surveys.columns]
    if missing:
        msg = f"surveys: missing column(s) {missing}; a survey has {', '.join(SURVEY_COLUMNS)}"
        raise DataError(msg)
    out = surveys.copy()
    for c in SURVEY_COLUMNS:
        if c not in out.columns:
            out[c] = ""
    out["date"] = pd.to_datetime(out["date"], errors="coerce")
    if out["date"].isna().any():
        i = int(np.flatnonzero(out["date"].isna().to_numpy())[0])
        msg = f"surveys, row {i + 1}: date '{surveys['date'].iloc[i]}' is not a date (YYYY-MM-DD)"
        raise DataError(msg)
    grades = out["grade"].astype(str).str.strip().str.lower()
    unknown = ~grades.isin(GRADES)
    if unknown.any():
        i = int(np.flatnonzero(unknown.to_numpy())[0])
        msg = (f"surveys, row {i + 1}: grade '{surveys['grade'].iloc[i]}' is not one of "
               f"{', '.join(GRADES)}")
        raise DataError(msg)
    out["grade"] = grades
    out["rank"] = grades.map({g: i for i, g in enumerate(GRADES)})
    out["threats"] = [[_factor(t, i + 1) for t in str(v).split(";") if t.strip()]
                      for i, v in enumerate(out["threats"].fillna(""))]
    return out.sort_values(["site_id", "date"], ignore_index=True)


def condition_table(surveys: pd.DataFrame) -> pd.DataFrame:
    """One row per site: surveys, first/latest date and grade, trend, at_risk and why."""
    s = validate_surveys(surveys)
    rows = []
    for site, g in s.groupby("site_id", sort=True):
        latest, first = g.iloc[-1], g.iloc[0]
        if len(g) > 1:
            years = (g["date"] - g["date"].iloc[0]).dt.days.to_numpy() / 365.25
            slope = (np.polyfit(years, g["rank"].to_numpy(float), 1)[0] * 10
                     if years[-1] > 0 else 0.0)
            trend = "worsening" if slope < -0.1 else "improving" if slope > 0.1 else "stable"
            fell = g["rank"].iloc[-1] < g["rank"].iloc[-2]
        else:
            slope, trend, fell = np.nan, "single survey", False
        reasons = []
        if latest["rank"] <= GRADES.index("poor"):
            reasons.append(f"latest grade {latest['grade']}")
        if fell:
            reasons.append(f"grade fell from {g['grade'].iloc[-2]} to {latest['grade']}")
        rows.append({"site_id": site, "surveys": len(g), "first_date": first["date"],
                     "first_grade": first["grade"], "latest_date": latest["date"],
                     "latest_grade": latest["grade"], "trend": trend,
                     "ranks_per_decade": slope, "threats": latest["threats"],
                     "at_risk": bool(reasons), "why": "; ".join(reasons)})
    return pd.DataFrame(rows)
