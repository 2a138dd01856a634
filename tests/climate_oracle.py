"""The previous, array-at-a-time ``risk_table`` and ``ashrae``: the oracle of the one-pass
engine (:mod:`echoes_lab.climate.engine`). Every metric is a full array per reading and per
ASHRAE class, reduced with xarray; slow, obviously right, kept here only to check the engine."""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from echoes_lab.climate.metrics import (
    ASHRAE_CLASSES,
    EMC_OK,
    TWPI_GOOD,
    TWPI_OK,
    _step,
)


def ashrae(ds: xr.Dataset, freq: str = "YS", required: float = 1.0) -> pd.DataFrame:
    ok = ds.climate.ashrae_compliance()
    ok = ok.reset_coords(drop=True)
    share = ok.resample(time=freq).mean()
    seconds = (ds["time"] - np.datetime64("1970-01-01")) / np.timedelta64(1, "s")
    first_fail = xr.Dataset({k: seconds.where(v == 0).resample(time=freq).min()
                             for k, v in ok.items()})
    share, first_fail = share.compute(), first_fail.compute()
    rows = share.to_dataframe().add_suffix(" share").join(
        first_fail.to_dataframe().add_suffix(" first failure"))
    for name in ASHRAE_CLASSES:
        col = f"{name} first failure"
        rows[col] = pd.to_datetime(rows[col], unit="s")
    met = [rows[f"{n} share"] >= required for n in ASHRAE_CLASSES]
    rows.insert(0, "class", np.select(met, list(ASHRAE_CLASSES), default="none"))
    return rows.reset_index().rename(columns={"time": "period"})


def risk_table(ds: xr.Dataset, t_band=(16.0, 25.0), rh_band=(40.0, 60.0)) -> pd.DataFrame:
    c = ds.climate
    t, rh = c.t, c.rh
    emc = c.emc_wood()
    mould = c.mould_risk()
    band = c.en15757()
    ok = c.ashrae_compliance()
    step_h = _step(ds) / pd.Timedelta("1h")
    lazy = xr.Dataset({
        "readings": t.notnull().sum("time"),
        "flagged": (
            (ds["quality"] > 1).sum("time") if "quality" in ds else t.isnull().sum("time") * 0
        ),
        "T mean": t.mean("time"), "T min": t.min("time"), "T max": t.max("time"),
        "RH mean": rh.mean("time"), "RH min": rh.min("time"), "RH max": rh.max("time"),
        "dew point max": c.dew_point().max("time"),
        "TWPI (years)": c.twpi(),
        "EMC min": emc.min("time"), "EMC max": emc.max("time"),
        "mould risk (h)": mould.sum("time") * step_h,
        "EN 15757 excursions": band["excursion"].sum("time") / t.notnull().sum("time"),
        **{f"ASHRAE {k}": v.mean("time") for k, v in ok.items()},
        **{f"in band ({k})": v for k, v in c.time_in_band(t_band, rh_band).items()},
    }).compute()
    table = lazy.to_dataframe()
    table = table.drop(columns=[col for col in table.columns if col not in lazy.data_vars])
    if "room" in ds.coords:
        table.insert(0, "room", ds["room"].to_numpy())
    classes = [table[f"ASHRAE {k}"] >= 1.0 for k in ASHRAE_CLASSES]
    table["ASHRAE class"] = np.select(classes, list(ASHRAE_CLASSES), default="none")
    table["natural ageing"] = np.where(table["TWPI (years)"] >= TWPI_GOOD, "GOOD",
                                       np.where(table["TWPI (years)"] >= TWPI_OK, "OK", "RISK"))
    emc_ok = (table["EMC min"] >= EMC_OK[0]) & (table["EMC max"] <= EMC_OK[1])
    table["mechanical damage"] = np.where(emc_ok, "OK", "RISK")
    table["mould"] = np.where(table["mould risk (h)"] > 0, "RISK", "GOOD")
    return table.drop(columns=[f"ASHRAE {k}" for k in ASHRAE_CLASSES])
