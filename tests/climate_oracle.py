"""An independent reference for the climate engine: the published formulas in plain numpy and
pandas, one sensor at a time, written from the sources and not from ``echoes_lab``.

Nothing here imports ``echoes_lab``: it reads the arrays out of the Dataset and recomputes
every column of ``ds.climate.risk_table()`` and ``ds.climate.ashrae()`` with pandas
(``rolling``, ``resample``, ``Series.mean``) and numpy (``nanpercentile``), so an error in the
engine's one-pass arithmetic, in its moving means or its selection of percentiles, or in the
definitions of ``metrics.py`` shows as a disagreement. ``test_climate_engine.py`` checks these
functions against published values first, then the engine against them to 1e-9.

Sources (each function cites its own page, table or equation):

* Alduchov, O. A. & Eskridge, R. E. (1996), "Improved Magnus form approximation of saturation
  vapor pressure", J. Appl. Meteor. 35, 601-609 (the AERK coefficients, eq. 21);
* Forest Products Laboratory (2010), *Wood Handbook*, FPL-GTR-190, ch. 4, eq. 4-5 and
  Table 4-2 (after Simpson 1973, Wood and Fiber 5, 41-49);
* Reilly, J. M., Nishimura, D. W. & Zinn, E. (1995), *New Tools for Preservation*, Commission
  on Preservation and Access (the Preservation Index and its time-weighted mean); the fit's
  constants as Padfield, T., *The Preservation Index and the Time Weighted Preservation Index*
  (conservationphysics.org/twpi/twpi_01.php) writes them out;
* Sedlbauer, K. (2001), *Vorhersage von Schimmelpilzbildung auf und in Bauteilen*, Univ.
  Stuttgart, the LIM 0 isopleth, as fitted by Zeng, L. et al. (2023), Build. Serv. Eng. Res.
  Technol. 44, 63-79; IPI's limits of mould risk (no risk below 65 % RH or outside 2-45 °C,
  the Dew Point Calculator, dpcalc.org);
* EN 15757:2010, *Conservation of Cultural Property — Specifications for temperature and
  relative humidity to limit climate-induced mechanical damage in organic hygroscopic
  materials*, §4-5 and annex A (30-day centred moving average; 7th and 93rd percentiles of the
  short-term fluctuations; ±10 % RH where that band is narrower);
* ASHRAE (2019), *Handbook — HVAC Applications*, ch. 24 "Museums, Galleries, Archives and
  Libraries", Table 2 (the classes AA, As, A, B, C, D);
* IPI (2011), *Understanding Preservation Metrics*, and the Dew Point Calculator: the ratings
  (TWPI ≥ 75 GOOD, ≥ 45 OK; wood EMC 5-12.5 % OK).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

# -- the formulas -------------------------------------------------------------------------------


def dew_point(t, rh):
    """Dew point (°C) from T (°C) and RH (%): the Magnus form ``e_s = 6.1094·exp(17.625 T /
    (T + 243.04))`` hPa (Alduchov & Eskridge 1996, eq. 21, "AERK") solved for the temperature
    where ``e_s(T_d) = RH/100 · e_s(T)``: ``T_d = 243.04·L / (17.625 − L)``,
    ``L = ln(RH/100) + 17.625 T / (243.04 + T)`` (Lawrence 2005, BAMS 86, 225, eq. 8)."""
    t, rh = np.asarray(t, float), np.asarray(rh, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        ell = np.log(rh / 100.0) + 17.625 * t / (243.04 + t)
        return 243.04 * ell / (17.625 - ell)


def emc_wood(t, rh):
    """Equilibrium moisture content of wood (% of dry mass), Wood Handbook (2010) eq. 4-5:
    ``EMC = 1800/W · [Kh/(1 − Kh) + (K1 K h + 2 K1 K2 K² h²)/(1 + K1 K h + K1 K2 K² h²)]``,
    h = RH/100, with, for T in °C (the Handbook's metric coefficients):
    ``W = 349 + 1.29 T + 0.0135 T²``, ``K = 0.805 + 0.000736 T − 0.00000273 T²``,
    ``K1 = 6.27 − 0.00938 T − 0.000303 T²``, ``K2 = 1.91 + 0.0407 T − 0.000293 T²``."""
    t, h = np.asarray(t, float), np.asarray(rh, float) / 100.0
    w = 349 + 1.29 * t + 0.0135 * np.square(t)
    k = 0.805 + 0.000736 * t - 0.00000273 * np.square(t)
    k1 = 6.27 - 0.00938 * t - 0.000303 * np.square(t)
    k2 = 1.91 + 0.0407 * t - 0.000293 * np.square(t)
    kh = k * h
    with np.errstate(divide="ignore", invalid="ignore"):
        sorbed = (k1 * kh + 2 * k1 * k2 * np.square(kh)) / (1 + k1 * kh + k1 * k2 * np.square(kh))
        return (1800 / w) * (kh / (1 - kh) + sorbed)


def preservation_index(t, rh):
    """IPI Preservation Index (years): ``PI = exp(E/(R·T_K) − 134.9·RH/(R·T_K) + 0.0284·RH
    − 28.023) / 365`` with E = 95,220 J/mol, R = 8.314 J/(mol·K), T_K = T + 273.15 (Reilly,
    Nishimura & Zinn 1995; constants as Padfield writes them out)."""
    t_k, rh = np.asarray(t, float) + 273.15, np.asarray(rh, float)
    with np.errstate(over="ignore"):
        rt = 8.314 * t_k
        return np.exp(95220 / rt - 134.9 * rh / rt + 0.0284 * rh - 28.023) / 365


def twpi(pi) -> float:
    """Time-Weighted Preservation Index over equal time steps: the harmonic mean of the PI,
    ``n / Σ 1/PI`` (Reilly et al. 1995: decay rates, not lifetimes, add up over time)."""
    rates = pd.Series(1.0 / np.asarray(pi, float))
    return 1.0 / rates.mean()  # pandas skips the missing readings


def mould_possible(t, rh):
    """True where mould can germinate: RH at or above Sedlbauer's LIM 0 isopleth as fitted by
    Zeng et al. (2023), ``RH = 100·(0.02633·cosh(0.10083 (T − 30)) + 0.7153)``, and within
    IPI's limits (RH ≥ 65 %, 2 °C ≤ T ≤ 45 °C)."""
    t, rh = np.asarray(t, float), np.asarray(rh, float)
    lim0 = 100 * (0.02633 * np.cosh(0.10083 * (t - 30)) + 0.7153)
    return (rh >= 65) & (t >= 2) & (t <= 45) & (rh >= lim0)


# ASHRAE Handbook — HVAC Applications (2019), ch. 24, Table 2, transcribed: the short-term
# fluctuations allowed (±), the seasonal adjustment of the set point (up, down), and the limits
# the class adds. T in K (= °C differences), RH in % RH. "None" = no lower limit on T ("as low
# as necessary"). AA-B also keep "RH reliably below 75 %" (the class D rule) and need an
# annual average T between 15 and 25 °C (the table's "set point or annual average" row).
ASHRAE_TABLE_2 = pd.DataFrame(
    [
        # class  ±RH  RH up/down  ±T  T up  T down   RH range        T max
        ("AA", 5, 0, 0, 2, 5, 5, 0, "< 75", None),
        ("As", 5, 10, 10, 2, 5, 10, 0, "< 75", None),
        ("A", 10, 0, 0, 2, 5, 10, 0, "< 75", None),
        ("B", 10, 10, 10, 5, 10, None, 0, "< 75", 30),
        ("C", None, None, None, None, None, None, 25, "<= 75", 30),
        ("D", None, None, None, None, None, None, 0, "< 75", None),
    ],
    columns=["class", "rh_short", "rh_up", "rh_down", "t_short", "t_up", "t_down", "rh_min",
             "rh_max", "t_max"],
).set_index("class")
ANNUAL_T = (15, 25)


def moving_mean(x: pd.Series, half: int) -> pd.Series:
    """EN 15757 §4.2 / annex A.2: the seasonal cycle, a centred moving average over 30 days
    (``2·half + 1`` readings), shortened at the ends of the record; a value needs at least half
    a window of readings (no cycle invented across a long gap)."""
    return x.rolling(2 * half + 1, center=True, min_periods=max(half, 1)).mean()


def ashrae_ok(t: pd.Series, rh: pd.Series, half: int) -> pd.DataFrame:
    """Per valid reading and class: does it meet ASHRAE Table 2? Set point = the record's
    average ("historic annual average"); seasonal set point = the 30-day moving average clipped
    to the allowed seasonal adjustment; short fluctuation = distance from the seasonal set
    point. NaN where T or RH is missing."""
    valid = t.notna() & rh.notna()
    t_mean, rh_mean = t.mean(), rh.mean()
    t_season, rh_season = moving_mean(t, half), moving_mean(rh, half)
    out = {}
    for name, row in ASHRAE_TABLE_2.iterrows():
        ok = pd.Series(True, index=t.index)
        if pd.notna(row["rh_short"]):
            rh_set = rh_season.clip(rh_mean - row["rh_down"], rh_mean + row["rh_up"])
            t_low = -np.inf if pd.isna(row["t_down"]) else t_mean - row["t_down"]
            t_set = t_season.clip(t_low, t_mean + row["t_up"])
            ok &= ((rh - rh_set).abs() <= row["rh_short"]) & ((t - t_set).abs() <= row["t_short"])
            ok &= ANNUAL_T[0] <= t_mean <= ANNUAL_T[1]
        ok &= rh >= row["rh_min"]
        ok &= (rh <= 75) if row["rh_max"] == "<= 75" else (rh < 75)
        if pd.notna(row["t_max"]):
            ok &= t <= row["t_max"]
        out[name] = ok.astype(float).where(valid)
    return pd.DataFrame(out)


def en15757_band(rh: pd.Series, half: int, percentiles=(7, 93), min_half_width=10.0):
    """EN 15757 §5 / annex A: seasonal cycle, fluctuations = reading − cycle, band = cycle +
    the 7th and 93rd percentiles of the fluctuations over the record (numpy's linear
    interpolation between ranks, Hyndman & Fan 1996 definition 7), widened to ±10 % RH where
    narrower (§5.2). Returns (seasonal, lower, upper)."""
    seasonal = moving_mean(rh, half)
    fluct = (rh - seasonal).dropna().to_numpy()
    low, high = np.percentile(fluct, percentiles) if len(fluct) else (np.nan, np.nan)
    if min_half_width is not None:
        low, high = np.minimum(low, -min_half_width), np.maximum(high, min_half_width)
    return seasonal, seasonal + low, seasonal + high


# -- the tables, sensor by sensor --------------------------------------------------------------


def _sensors(ds: xr.Dataset):
    index = pd.DatetimeIndex(ds["time"].to_numpy())
    steps = np.unique(np.diff(index.asi8))
    assert len(steps) == 1, "the oracle needs a regular time axis"
    step = pd.Timedelta(int(steps[0]), unit=index.unit)
    half = int(pd.Timedelta("30D") / step) // 2
    for i, name in enumerate(ds["sensor"].to_numpy()):
        t = pd.Series(ds["temperature"].transpose("sensor", "time").to_numpy()[i], index=index)
        rh = pd.Series(ds["relative_humidity"].transpose("sensor", "time").to_numpy()[i],
                       index=index)
        quality = (
            pd.Series(ds["quality"].transpose("sensor", "time").to_numpy()[i], index=index)
            if "quality" in ds
            else None
        )
        yield i, name, t, rh, quality, step, half


def risk_table(ds: xr.Dataset, t_band=(16.0, 25.0), rh_band=(40.0, 60.0)) -> pd.DataFrame:
    """The risk table, one row per sensor, recomputed from the formulas above."""
    rows = {}
    for _i, name, t, rh, quality, step, half in _sensors(ds):
        valid = t.notna() & rh.notna()
        tv, hv = t[valid], rh[valid]
        _, lower, upper = en15757_band(rh, half)
        excursions = int(((rh < lower) | (rh > upper)).sum())  # NaN compares False
        ok = ashrae_ok(t, rh, half)
        in_t, in_h = tv.between(*t_band), hv.between(*rh_band)
        share = ok.mean()  # NaN (missing readings) skipped
        rows[name] = {
            "readings": int(t.notna().sum()),
            # quality flags above 1 (bit 0 = a missing reading, already NaN) are the readings
            # the ingest judged wrong (duplicate, out of range, out of order)
            "flagged": int((quality > 1).sum()) if quality is not None else 0,
            "T mean": t.mean(), "T min": t.min(), "T max": t.max(),
            "RH mean": rh.mean(), "RH min": rh.min(), "RH max": rh.max(),
            "dew point max": pd.Series(dew_point(tv, hv)).max(),
            "TWPI (years)": twpi(preservation_index(tv, hv)),
            "EMC min": pd.Series(emc_wood(tv, hv)).min(),
            "EMC max": pd.Series(emc_wood(tv, hv)).max(),
            "mould risk (h)": int(mould_possible(tv, hv).sum()) * (step / pd.Timedelta("1h")),
            "EN 15757 excursions": excursions / t.notna().sum() if t.notna().any() else np.nan,
            "in band (temperature)": in_t.mean(),
            "in band (relative_humidity)": in_h.mean(),
            "in band (both)": (in_t & in_h).mean(),
            "ASHRAE class": next((c for c in ASHRAE_TABLE_2.index if share[c] >= 1.0), "none"),
        }
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "sensor"
    if "room" in ds.coords:
        table.insert(0, "room", ds["room"].to_numpy())
    twpi_years = table["TWPI (years)"]
    table["natural ageing"] = np.where(twpi_years >= 75, "GOOD",
                                       np.where(twpi_years >= 45, "OK", "RISK"))
    emc_ok = (table["EMC min"] >= 5) & (table["EMC max"] <= 12.5)
    table["mechanical damage"] = np.where(emc_ok, "OK", "RISK")
    table["mould"] = np.where(table["mould risk (h)"] > 0, "RISK", "GOOD")
    return table


def ashrae(ds: xr.Dataset, freq: str = "YS", required: float = 1.0) -> pd.DataFrame:
    """Per period and sensor: the share of valid readings meeting each class, the first
    reading that did not, and the best class met by at least ``required`` of them."""
    frames = []
    for _i, name, t, rh, _q, _step, half in _sensors(ds):
        ok = ashrae_ok(t, rh, half)
        share = ok.resample(freq).mean().add_suffix(" share")
        failed = ok.eq(0.0)
        first = pd.DataFrame(
            {f"{c} first failure": failed[c].index.to_series().where(failed[c]).resample(freq).min()
             for c in ASHRAE_TABLE_2.index}
        )
        frame = share.join(first)
        frame.insert(0, "class", "none")
        for c in reversed(ASHRAE_TABLE_2.index):  # the best (first) class met wins
            frame.loc[frame[f"{c} share"] >= required, "class"] = c
        frame.insert(0, "sensor", name)
        frames.append(frame.rename_axis("period").reset_index())
    out = pd.concat(frames, ignore_index=True)
    return out.sort_values("period", kind="stable").reset_index(drop=True)  # periods first
