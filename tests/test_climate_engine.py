"""echoes_lab.climate.engine: the one-pass engine equals the array-at-a-time oracle to 1e-9.

The oracle (``tests/climate_oracle.py``) is the previous implementation of ``risk_table`` and
``ashrae``; it evaluates every definition of :mod:`echoes_lab.climate.metrics` as full arrays.
The published reference values themselves are tested in ``test_climate.py``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from echoes_lab.climate import engine

import climate_oracle as oracle


def climate(sensors=5, days=80, freq="1h", start="2024-01-01", seed=1, nan_share=0.03,
            quality=True) -> xr.Dataset:
    """Seeded indoor climate with gaps, spikes into the mould zone and flagged readings."""
    rng = np.random.default_rng(seed)
    time = pd.date_range(start, periods=int(pd.Timedelta(f"{days}D") / pd.Timedelta(freq)),
                         freq=freq)
    n = len(time)
    day = np.arange(n) * (pd.Timedelta(freq) / pd.Timedelta("1D"))
    t = rng.uniform(14, 24, (sensors, 1)) + 3 * np.sin(2 * np.pi * day / 365)[None] \
        + rng.normal(0, 0.8, (sensors, n))
    rh = rng.uniform(35, 65, (sensors, 1)) + 8 * np.sin(2 * np.pi * day / 30)[None] \
        + rng.normal(0, 4, (sensors, n))
    rh[0, n // 3: n // 3 + 48] = 85.0  # a damp spell: mould risk, excursions, class D fails
    for a in (t, rh):
        a[rng.random(a.shape) < nan_share] = np.nan
    t[1, : n // 2] = np.nan  # a sensor whose temperature failed for half the record
    ds = xr.Dataset({"temperature": (("sensor", "time"), t),
                     "relative_humidity": (("sensor", "time"), rh)},
                    coords={"sensor": [f"S{i}" for i in range(sensors)], "time": time,
                            "room": ("sensor", [f"R{i // 2}" for i in range(sensors)])})
    if quality:
        ds["quality"] = (("sensor", "time"), rng.choice([0, 1, 2], size=(sensors, n),
                                                        p=[0.9, 0.07, 0.03]).astype("int16"))
    return ds


def assert_same(ds: xr.Dataset, freq: str = "MS"):
    pd.testing.assert_frame_equal(ds.climate.risk_table(), oracle.risk_table(ds),
                                  rtol=1e-9, check_dtype=False)
    pd.testing.assert_frame_equal(ds.climate.ashrae(freq), oracle.ashrae(ds, freq),
                                  rtol=1e-9, check_dtype=False)


@pytest.mark.parametrize("freq", ["MS", "YS", "D", "QS-DEC", "W"])
def test_engine_equals_oracle_on_random_data_with_gaps_and_flags(freq):
    assert_same(climate(), freq)


def test_engine_equals_oracle_on_dask_and_across_block_boundaries(monkeypatch):
    ds = climate(sensors=7, seed=3)
    monkeypatch.setattr(engine, "BLOCK_BYTES", 8 * ds.sizes["time"] * 2)  # blocks of 2 sensors
    assert engine.block_size(ds.sizes["time"]) == 2
    chunked = ds.chunk({"sensor": 3, "time": 500})
    assert_same(chunked)
    pd.testing.assert_frame_equal(chunked.climate.risk_table(), ds.climate.risk_table(),
                                  rtol=1e-9)


def test_engine_edge_cases_leap_year_short_sensors_no_quality():
    """29 February, sensors with fewer than 30 days of data (no seasonal mean anywhere), a
    sensor with no readings at all, no quality variable, 5-minute UTC steps (no DST)."""
    ds = climate(sensors=4, days=20, freq="5min", start="2024-02-20", quality=False)
    ds["relative_humidity"][3] = np.nan
    ds["temperature"][3] = np.nan
    assert_same(ds)
    table = ds.climate.risk_table()
    assert table.loc["S3", "readings"] == 0 and table.loc["S3", "ASHRAE class"] == "none"


def test_exact_boundaries_agree():
    """Readings exactly on class limits (RH 75 %, T 30 °C) are judged as the oracle judges."""
    ds = climate(sensors=2, days=60, nan_share=0.0)
    ds["relative_humidity"][0, ::7] = 75.0
    ds["temperature"][1, ::5] = 30.0
    assert_same(ds)


def test_results_are_cached_per_call_and_refreshed_when_data_change():
    ds = climate(sensors=2, days=40)
    first = ds.climate.risk_table()
    ds["temperature"] = ds["temperature"] + 1.0
    assert (ds.climate.risk_table()["T mean"] - first["T mean"]).round(9).eq(1.0).all()
