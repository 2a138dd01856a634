"""Preventive-conservation climate analytics: the ``ds.climate`` accessor.

Read logger data with :func:`echoes_lab.read_climate` (see :mod:`echoes_lab.climate.readers`),
then::

    ds.climate.dew_point()          # °C, Magnus (Alduchov & Eskridge 1996)
    ds.climate.preservation_index() # years, IPI (Reilly et al. 1995); .twpi() per sensor
    ds.climate.en15757()            # EN 15757:2010 target band and excursions
    ds.climate.ashrae("MS")         # ASHRAE classes AA/As/A/B/C/D met per sensor and month
    ds.climate.risk_table()         # one row per sensor, IPI ratings

Every function is elementwise numpy/xarray arithmetic or a reduction along ``time``, so the same
calls run on a NumPy-backed Dataset and on a dask-chunked one (the large Zarr demo); nothing is
computed until asked (``.compute()``, ``.load()``, a plot or :meth:`risk_table`). Readings the
ingest flagged as impossible are already NaN and are skipped by every summary.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from echoes_lab.errors import DataError

# Magnus coefficients over water, Alduchov & Eskridge (1996), J. Appl. Meteor. 35, 601-609,
# "AERK" set: relative error below 0.4 % between -40 and 50 °C.
MAGNUS_A, MAGNUS_B, MAGNUS_C = 6.1094, 17.625, 243.04  # hPa, -, °C
R_WATER = 461.524  # J/(kg K), gas constant of water vapour (ASHRAE Fundamentals 2017, ch. 1)
EPSILON = 0.621945  # molar-mass ratio water/dry air (ASHRAE Fundamentals 2017, ch. 1, eq. 20)
STANDARD_PRESSURE = 101325.0  # Pa

#: ASHRAE Handbook—HVAC Applications (2019), ch. 24 "Museums, Galleries, Archives and Libraries",
#: Table 2: allowed short fluctuations (±) and seasonal adjustments (up/down) of the set point,
#: which is the historic annual average. ``None`` = no limit ("as low as necessary").
ASHRAE_CLASSES = {
    "AA": {
        "rh_short": 5,
        "rh_up": 0,
        "rh_down": 0,
        "t_short": 2,
        "t_up": 5,
        "t_down": 5,
        "rh_max": 75,
    },
    "As": {
        "rh_short": 5,
        "rh_up": 10,
        "rh_down": 10,
        "t_short": 2,
        "t_up": 5,
        "t_down": 10,
        "rh_max": 75,
    },
    "A": {
        "rh_short": 10,
        "rh_up": 0,
        "rh_down": 0,
        "t_short": 2,
        "t_up": 5,
        "t_down": 10,
        "rh_max": 75,
    },
    "B": {
        "rh_short": 10,
        "rh_up": 10,
        "rh_down": 10,
        "t_short": 5,
        "t_up": 10,
        "t_down": None,
        "t_max": 30,
        "rh_max": 75,
    },
    "C": {"rh_min": 25, "rh_max": 75, "t_max": 30},
    "D": {"rh_max": 75},
}
#: set point / annual average temperature allowed for the precision classes (Table 2, first row)
ASHRAE_SETPOINT_T = (15.0, 25.0)

#: IPI ratings used by eClimateNotebook and the Dew Point Calculator (dpcalc.org; IPI,
#: "Understanding Preservation Metrics", 2011): natural ageing by TWPI, mechanical damage by
#: the EMC of wood.
TWPI_GOOD, TWPI_OK = 75.0, 45.0
EMC_OK = (5.0, 12.5)


# -- psychrometrics ---------------------------------------------------------------------------


def saturation_vapour_pressure(temperature):
    """Saturation vapour pressure over water in Pa (Magnus form).

    ``e_s = 610.94 exp(17.625 T / (T + 243.04))`` with T in °C: Alduchov, O. A. & Eskridge,
    R. E. (1996), "Improved Magnus form approximation of saturation vapor pressure", J. Appl.
    Meteor. 35, 601-609 (their AERK coefficients).
    """
    return 100.0 * MAGNUS_A * np.exp(MAGNUS_B * temperature / (temperature + MAGNUS_C))


def vapour_pressure(temperature, relative_humidity):
    """Partial pressure of water vapour in Pa, ``RH/100 · e_s(T)`` (WMO-No. 8 definition of RH)."""
    return relative_humidity / 100.0 * saturation_vapour_pressure(temperature)


def dew_point(temperature, relative_humidity):
    """Dew point in °C from temperature (°C) and RH (%), by inverting the Magnus form.

    ``γ = ln(RH/100) + bT/(c+T)``, ``T_d = cγ/(b−γ)`` with b = 17.625, c = 243.04 °C
    (Alduchov & Eskridge 1996; Lawrence 2005, Bull. Amer. Meteor. Soc. 86, 225-233, eq. 8).
    """
    gamma = np.log(relative_humidity / 100.0) + MAGNUS_B * temperature / (MAGNUS_C + temperature)
    return MAGNUS_C * gamma / (MAGNUS_B - gamma)


def absolute_humidity(temperature, relative_humidity):
    """Water-vapour density in g/m³: ``ρ_v = e / (R_w T)`` (ideal gas, ASHRAE Fundamentals
    2017 ch. 1)."""
    return (
        1000.0
        * vapour_pressure(temperature, relative_humidity)
        / (R_WATER * (temperature + 273.15))
    )


def mixing_ratio(temperature, relative_humidity, pressure=STANDARD_PRESSURE):
    """Humidity (mixing) ratio in g of water per kg of dry air: ``W = 0.621945 e / (p − e)``.

    ASHRAE Handbook—Fundamentals (2017), ch. 1, eq. 20; ``pressure`` in Pa (sea level by default).
    """
    e = vapour_pressure(temperature, relative_humidity)
    return 1000.0 * EPSILON * e / (pressure - e)


def emc_wood(temperature, relative_humidity):
    """Equilibrium moisture content of wood in % of dry mass (Hailwood-Horrobin, Simpson 1973).

    ``M = 1800/W [Kh/(1−Kh) + (K₁Kh + 2K₁K₂K²h²)/(1 + K₁Kh + K₁K₂K²h²)]`` with h = RH/100 and,
    for T in °C, W = 349 + 1.29T + 0.0135T², K = 0.805 + 0.000736T − 0.00000273T²,
    K₁ = 6.27 − 0.00938T − 0.000303T², K₂ = 1.91 + 0.0407T − 0.000293T²: Forest Products
    Laboratory (2010), *Wood Handbook*, FPL-GTR-190, ch. 4, eq. 4-5 (after Simpson, W. T. 1973,
    Wood and Fiber 5, 41-49); it reproduces the Handbook's Table 4-2.
    """
    t, h = temperature, relative_humidity / 100.0
    w = 349.0 + 1.29 * t + 0.0135 * t**2
    k = 0.805 + 0.000736 * t - 0.00000273 * t**2
    k1 = 6.27 - 0.00938 * t - 0.000303 * t**2
    k2 = 1.91 + 0.0407 * t - 0.000293 * t**2
    kh = k * h
    return (
        1800.0
        / w
        * (kh / (1 - kh) + (k1 * kh + 2 * k1 * k2 * kh**2) / (1 + k1 * kh + k1 * k2 * kh**2))
    )


# -- IPI preservation metrics ----------------------------------------------------------------


def preservation_index(temperature, relative_humidity):
    """IPI Preservation Index: years to a defined state of decay of an unstable organic object.

    ``PI = exp((E − 134.9·RH)/(R·T) + 0.0284·RH − 28.023) / 365`` with E = 95 220 J/mol,
    R = 8.314 J/(mol K), T in K, RH in %: the Image Permanence Institute's Arrhenius fit to the
    decay of cellulose triacetate (Reilly, Nishimura & Zinn 1995, *New Tools for Preservation*,
    Commission on Preservation and Access; Sebera 1994, *Isoperms*), as written out by Padfield
    (2004, conservationphysics.org/twpi). It gives IPI's published anchors: PI = 45 years at
    20 °C/50 % RH (Dew Point Calculator, dpcalc.org) and 50 years at 20 °C/45 % RH (Richardson
    et al. 2023, *Heritage* 6, 4202).
    """
    rh, t_k = relative_humidity, temperature + 273.15
    return np.exp((95220.0 - 134.9 * rh) / (8.314 * t_k) + 0.0284 * rh - 28.023) / 365.0


def twpi(pi, dim="time"):
    """Time-Weighted Preservation Index: ``n / Σ(1/PI_i)`` over equal time steps.

    Decay *rates* (1/PI) add up over time, so the TWPI is the harmonic mean of the PI
    (Reilly, Nishimura & Zinn 1995; Nishimura, IPI). Missing readings are skipped.
    """
    if isinstance(pi, xr.DataArray):
        return 1.0 / (1.0 / pi).mean(dim, skipna=True)
    return 1.0 / np.nanmean(1.0 / np.asarray(pi))


def mould_rh_limit(temperature):
    """Lowest RH (%) at which mould can grow at ``temperature`` (°C): the LIM0 isopleth.

    ``RH_crit = 100 (0.02633 cosh(0.10083 (T − 30)) + 0.7153)``: the lowest isopleth for mould of
    Sedlbauer (2001, *Vorhersage von Schimmelpilzbildung auf und in Bauteilen*, Univ. Stuttgart)
    as fitted by Zeng et al. (2023), Build. Serv. Eng. Res. Technol. 44, 63-79.
    """
    return 100.0 * (0.02633 * np.cosh(0.10083 * (temperature - 30.0)) + 0.7153)


def mould_risk(temperature, relative_humidity):
    """True where mould can germinate: RH at or above :func:`mould_rh_limit`.

    IPI's cut-offs apply first: no mould risk below 65 % RH or outside 2-45 °C (IPI Dew Point
    Calculator, dpcalc.org). IPI's own days-to-germination table (its Mold Risk Factor) is not
    published as numbers, so the limit curve above stands in for it; the time spent at risk is
    reported by :meth:`ClimateAccessor.risk_table`.
    """
    possible = (relative_humidity >= 65) & (temperature >= 2) & (temperature <= 45)
    return possible & (relative_humidity >= mould_rh_limit(temperature))


# -- moving averages on a regular time axis -----------------------------------------------------


def _centred_mean(values: np.ndarray, half: int, min_count: int) -> np.ndarray:
    """Centred moving mean over ``2·half + 1`` steps along the last axis, NaNs skipped.

    Cumulative sums make it O(n) whatever the window (30 days at 5 min is 8,641 steps).
    """
    valid = ~np.isnan(values)
    zero = np.zeros(values.shape[:-1] + (1,))
    sums = np.concatenate([zero, np.cumsum(np.where(valid, values, 0.0), axis=-1)], axis=-1)
    counts = np.concatenate([zero, np.cumsum(valid, axis=-1)], axis=-1)
    n = values.shape[-1]
    idx = np.arange(n)
    hi, lo = np.minimum(idx + half + 1, n), np.maximum(idx - half, 0)
    count = counts[..., hi] - counts[..., lo]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count >= min_count, (sums[..., hi] - sums[..., lo]) / count, np.nan)


def _step(ds) -> pd.Timedelta:
    steps = np.unique(np.diff(ds.indexes["time"].values))  # unit-safe (datetime64[us] or [ns])
    if len(steps) != 1:
        msg = (
            "the time axis is not regular (steps of "
            f"{', '.join(str(pd.Timedelta(s)) for s in steps[:4])}); "
            "read the data with read_climate(..., resample='15min') first"
        )
        raise DataError(msg)
    return pd.Timedelta(steps[0])


def moving_average(da: xr.DataArray, window: str = "30D") -> xr.DataArray:
    """Centred moving average over ``window`` on a regular time axis (lazy on dask).

    The window holds ``2·⌊w/2⌋ + 1`` readings, ``w`` = window / step; a value needs at least
    half a window of valid readings, otherwise it is NaN (no seasonal cycle is invented
    across a long gap).
    """
    half = int(pd.Timedelta(window) / _step(da)) // 2
    if da.chunks is not None:
        da = da.chunk({"time": -1})
    return xr.apply_ufunc(
        _centred_mean,
        da,
        kwargs={"half": half, "min_count": half},
        input_core_dims=[["time"]],
        output_core_dims=[["time"]],
        dask="parallelized",
        output_dtypes=[float],
    )


# -- the accessor -------------------------------------------------------------------------------


class ClimateAccessor:
    """Climate metrics of a ``Dataset(sensor, time)`` with ``temperature`` (°C) and
    ``relative_humidity`` (%), as :func:`echoes_lab.read_climate` returns."""

    def __init__(self, ds: xr.Dataset):
        self._ds = ds

    @property
    def t(self) -> xr.DataArray:
        return self._ds["temperature"]

    @property
    def rh(self) -> xr.DataArray:
        return self._ds["relative_humidity"]

    @property
    def issues(self) -> list[str]:
        """What the ingest found and flagged (duplicates, gaps, impossible readings)."""
        return list(self._ds.attrs.get("issues", []))

    def _named(self, da, name, units, long_name):
        return da.rename(name).assign_attrs(units=units, long_name=long_name)

    # elementwise metrics
    def dew_point(self):
        """Dew point (°C); see :func:`dew_point`."""
        return self._named(dew_point(self.t, self.rh), "dew_point", "degC", "dew point")

    def absolute_humidity(self):
        """Water-vapour density (g/m³); see :func:`absolute_humidity`."""
        return self._named(
            absolute_humidity(self.t, self.rh), "absolute_humidity", "g m-3", "absolute humidity"
        )

    def mixing_ratio(self, pressure: float = STANDARD_PRESSURE):
        """Humidity ratio (g/kg dry air); see :func:`mixing_ratio`."""
        return self._named(
            mixing_ratio(self.t, self.rh, pressure), "mixing_ratio", "g kg-1", "humidity ratio"
        )

    def emc_wood(self):
        """Equilibrium moisture content of wood (%); see :func:`emc_wood`."""
        return self._named(
            emc_wood(self.t, self.rh), "emc_wood", "%", "equilibrium moisture content of wood"
        )

    def preservation_index(self):
        """IPI Preservation Index (years) at each reading; see :func:`preservation_index`."""
        return self._named(
            preservation_index(self.t, self.rh),
            "preservation_index",
            "years",
            "IPI preservation index",
        )

    def twpi(self, freq: str | None = None):
        """Time-Weighted Preservation Index (years) per sensor, or per sensor and period
        (``freq="MS"``, ``"YS"``); see :func:`twpi`."""
        pi = self.preservation_index()
        if freq:
            rate = (1.0 / pi).resample(time=freq).mean()
            return self._named(1.0 / rate, "twpi", "years", "time-weighted preservation index")
        return self._named(twpi(pi), "twpi", "years", "time-weighted preservation index")

    def mould_risk(self):
        """True where mould can germinate; see :func:`mould_risk` (NaN readings are False)."""
        return mould_risk(self.t, self.rh).rename("mould_risk")

    # EN 15757
    def en15757(
        self,
        variable: str = "relative_humidity",
        window: str = "30D",
        percentiles=(7, 93),
        min_half_width: float | None = 10.0,
    ) -> xr.Dataset:
        """Target band from the historical climate, EN 15757:2010 (sections 4-5, annex A).

        1. seasonal cycle = centred moving average over ``window`` (30 days);
        2. short-term fluctuations = reading − seasonal cycle;
        3. band limits = seasonal cycle + the 7th and 93rd percentiles of the fluctuations
           of each sensor over the record (the standard asks for at least a year);
        4. where that band is narrower than ±``min_half_width`` (10 % RH in the standard), the
           ±10 % band may be used instead; ``None`` keeps the percentile band;
        5. ``excursion`` marks readings outside the band.

        Returns a Dataset ``seasonal``, ``fluctuation``, ``lower``, ``upper``, ``excursion``.
        """
        x = self._ds[variable]
        if x.chunks is not None:
            x = x.chunk({"time": -1})
        seasonal = moving_average(x, window)
        fluctuation = x - seasonal
        q = fluctuation.quantile([p / 100 for p in percentiles], dim="time", skipna=True)
        low, high = q.isel(quantile=0, drop=True), q.isel(quantile=1, drop=True)
        if min_half_width is not None:
            low, high = np.minimum(low, -min_half_width), np.maximum(high, min_half_width)
        lower, upper = seasonal + low, seasonal + high
        excursion = ((x < lower) | (x > upper)) & x.notnull() & seasonal.notnull()
        units = x.attrs.get("units", "")
        return xr.Dataset(
            {
                "seasonal": seasonal.assign_attrs(units=units),
                "fluctuation": fluctuation,
                "lower": lower.assign_attrs(units=units),
                "upper": upper.assign_attrs(units=units),
                "excursion": excursion,
            }
        )

    # ASHRAE
    def ashrae_compliance(self, window: str = "30D") -> xr.Dataset:
        """Per reading and class (AA, As, A, B, C, D): does it meet the ASHRAE class?

        ASHRAE (2019), HVAC Applications ch. 24, Table 2. The set point is the record's
        average (the "historic annual average"); the seasonal set point is the centred
        ``window`` moving average, clipped to the allowed seasonal adjustment (up/down) around
        it; a reading meets the short-fluctuation limit if it lies within ± the allowed
        fluctuation of that seasonal set point. Classes B and C also need T ≤ 30 °C, C RH in
        25-75 %, D RH < 75 %; AA-B need an average T of 15-25 °C, and, as every class is meant
        to include the protection of the classes below it, RH below 75 % (class D). The
        Handbook does not say how to average; the 30-day window follows EN 15757.
        """
        t, rh = self.t, self.rh
        t_mean, rh_mean = t.mean("time"), rh.mean("time")
        t_season, rh_season = moving_average(t, window), moving_average(rh, window)
        valid = t.notnull() & rh.notnull()
        setpoint_ok = (t_mean >= ASHRAE_SETPOINT_T[0]) & (t_mean <= ASHRAE_SETPOINT_T[1])
        out = {}
        for name, spec in ASHRAE_CLASSES.items():
            ok = xr.ones_like(valid)
            if "rh_short" in spec:
                rh_set = rh_season.clip(rh_mean - spec["rh_down"], rh_mean + spec["rh_up"])
                down = -np.inf if spec["t_down"] is None else t_mean - spec["t_down"]
                t_set = t_season.clip(down, t_mean + spec["t_up"])
                ok = (
                    ok
                    & (abs(rh - rh_set) <= spec["rh_short"])
                    & (abs(t - t_set) <= spec["t_short"])
                    & setpoint_ok
                )
            if "rh_min" in spec:
                ok = ok & (rh >= spec["rh_min"])
            if "rh_max" in spec:
                ok = ok & (rh <= spec["rh_max"]) if name == "C" else ok & (rh < spec["rh_max"])
            if "t_max" in spec:
                ok = ok & (t <= spec["t_max"])
            out[name] = ok.where(valid)  # NaN where there is no reading
        return xr.Dataset(out)

    def _assess(self, freq: str = "MS", t_band=(16.0, 25.0), rh_band=(40.0, 60.0)):
        """The one-pass engine's tables (:func:`echoes_lab.climate.engine.assess`), kept for
        the next call with the same arguments on the same variables."""
        from echoes_lab.climate.engine import assess

        key = (
            freq,
            tuple(t_band),
            tuple(rh_band),
            *(
                id(v)
                for k, v in self._ds.variables.items()
                if k in ("temperature", "relative_humidity", "quality", "time")
            ),
        )
        if getattr(self, "_assessed", (None,))[0] != key:
            self._assessed = (key, assess(self._ds, freq=freq, t_band=t_band, rh_band=rh_band))
        return self._assessed[1]

    def ashrae(self, freq: str = "YS", required: float = 1.0) -> pd.DataFrame:
        """Which ASHRAE class each sensor meets in each period, and when each class failed.

        A class is met in a period if at least ``required`` (default all) of the valid
        readings meet it (see :meth:`ashrae_compliance`, whose definitions the one-pass engine
        evaluates). Columns: ``sensor``, ``period``, ``class`` (the best met, or "none"), and
        per class the share of readings that met it and the first reading that did not.
        """
        _, per_period = self._assess(freq)
        classes = list(ASHRAE_CLASSES)
        rows = (
            per_period[classes]
            .to_dataframe()
            .add_suffix(" share")
            .join(per_period[[f"{c} first failure" for c in classes]].to_dataframe())
        )
        for name in classes:
            col = f"{name} first failure"
            rows[col] = pd.to_datetime(rows[col], unit="s")
        met = [rows[f"{n} share"] >= required for n in classes]
        rows.insert(0, "class", np.select(met, classes, default="none"))
        return rows.reset_index().rename(columns={"time": "period"})

    # summaries
    def summary(self, freq: str = "D") -> xr.Dataset:
        """Mean, minimum and maximum of T and RH per ``freq``: ``"D"`` daily, ``"MS"``
        monthly, ``"season"`` meteorological seasons (DJF, MAM, JJA, SON; labelled by their
        first month)."""
        rule = "QS-DEC" if freq == "season" else freq
        pair = self._ds[["temperature", "relative_humidity"]]
        r = pair.resample(time=rule)
        parts = [
            r.mean().rename({k: f"{k}_mean" for k in pair}),
            r.min().rename({k: f"{k}_min" for k in pair}),
            r.max().rename({k: f"{k}_max" for k in pair}),
            pair["relative_humidity"].notnull().resample(time=rule).sum().rename("readings"),
        ]
        return xr.merge(parts)

    def time_in_band(
        self, t_band=(16.0, 25.0), rh_band=(40.0, 60.0), freq: str | None = None
    ) -> xr.Dataset:
        """Share of valid readings with T, RH and both inside the agreed band, per sensor
        (and per period with ``freq``)."""
        t, rh = self.t, self.rh
        valid = t.notnull() & rh.notnull()
        in_t, in_rh = (t >= t_band[0]) & (t <= t_band[1]), (rh >= rh_band[0]) & (rh <= rh_band[1])
        ds = xr.Dataset(
            {"temperature": in_t, "relative_humidity": in_rh, "both": in_t & in_rh}
        ).where(valid)
        return ds.resample(time=freq).mean() if freq else ds.mean("time")

    def risk_table(self, t_band=(16.0, 25.0), rh_band=(40.0, 60.0)) -> pd.DataFrame:
        """One row per sensor: coverage, climate, IPI metrics with their ratings, mould, EN 15757
        excursions, ASHRAE class over the whole record and time in band; computed in one pass
        over the readings by :mod:`echoes_lab.climate.engine` (which also keeps the monthly
        ASHRAE table for :meth:`ashrae`).

        Ratings follow IPI (dpcalc.org): natural ageing GOOD if TWPI ≥ 75, OK ≥ 45, else
        RISK; mechanical damage OK while the wood EMC stays within 5-12.5 %; mould RISK if any
        reading is at risk.
        """
        ds = self._ds
        s, _ = self._assess("MS", t_band, rh_band)
        step_h = _step(ds) / pd.Timedelta("1h")
        classes = list(ASHRAE_CLASSES)
        columns = {
            "readings": s["readings"],
            "flagged": s["flagged"],
            "T mean": s["T mean"],
            "T min": s["T min"],
            "T max": s["T max"],
            "RH mean": s["RH mean"],
            "RH min": s["RH min"],
            "RH max": s["RH max"],
            "dew point max": s["dew point max"],
            "TWPI (years)": s["TWPI (years)"],
            "EMC min": s["EMC min"],
            "EMC max": s["EMC max"],
            "mould risk (h)": s["mould"] * step_h,
            "EN 15757 excursions": s["excursions"] / s["readings"],
            **{f"ASHRAE {k}": s[f"ASHRAE {k}"] for k in classes},
            **{k: s[k] for k in s.data_vars if k.startswith("in band")},
        }
        table = pd.DataFrame(
            {k: v.to_numpy() for k, v in columns.items()},
            index=pd.Index(s["sensor"].to_numpy(), name="sensor"),
        )
        if "room" in ds.coords:
            table.insert(0, "room", ds["room"].to_numpy())
        met = [table[f"ASHRAE {k}"] >= 1.0 for k in classes]
        table["ASHRAE class"] = np.select(met, classes, default="none")
        table["natural ageing"] = np.where(
            table["TWPI (years)"] >= TWPI_GOOD,
            "GOOD",
            np.where(table["TWPI (years)"] >= TWPI_OK, "OK", "RISK"),
        )
        emc_ok = (table["EMC min"] >= EMC_OK[0]) & (table["EMC max"] <= EMC_OK[1])
        table["mechanical damage"] = np.where(emc_ok, "OK", "RISK")
        table["mould"] = np.where(table["mould risk (h)"] > 0, "RISK", "GOOD")
        return table.drop(columns=[f"ASHRAE {k}" for k in classes])

    # plots (matplotlib, imported on use)
    def plot(self, sensor=None, **kwargs):
        """Climate chart of one sensor with its EN 15757 band; see
        :func:`echoes_lab.climate.plots.climate_chart`."""
        from echoes_lab.climate.plots import climate_chart

        return climate_chart(self._ds, sensor, **kwargs)

    def psychrometric(self, **kwargs):
        """Psychrometric scatter; see :func:`climate_plots.psychrometric_scatter`."""
        from echoes_lab.climate.plots import psychrometric_scatter

        return psychrometric_scatter(self._ds, **kwargs)

    def dashboard(self, **kwargs):
        """Risk dashboard per room; see :func:`echoes_lab.climate.plots.risk_dashboard`."""
        from echoes_lab.climate.plots import risk_dashboard

        return risk_dashboard(self._ds, **kwargs)
