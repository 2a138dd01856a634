"""echoes_lab.climate.engine against an independent oracle, and the engine's costs.

``tests/climate_oracle.py`` recomputes every column of ``risk_table`` and ``ashrae`` from the
published formulas in plain numpy/pandas, without importing ``echoes_lab``. It is checked here
against published values first (the same sources ``test_climate.py`` holds ``metrics.py`` to),
then the engine is checked against it to 1e-9 on random data with gaps and flags, dask input,
block boundaries, leap years, short records and readings exactly on class limits.

The engine's costs are observed, not assumed: NumPy input runs no dask code at all (a profiler
sees every Python call), and a new process with an empty numba cache directory (a user whose
kernel cannot write into the installed package) loads the compiled kernels instead of
compiling them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading

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


def test_vectorised_exponential_agrees_with_libm_to_two_ulp():
    """The engine's exp (Cody–Waite reduction and a Taylor polynomial, so that LLVM can
    vectorise it) against libm's over the whole range it is used on, and the bits of 2^k."""
    import numba

    z = np.concatenate([np.linspace(-engine._EXP_SAFE, engine._EXP_SAFE, 200_001),
                        [0.0, -0.0, 1e-300, -1e-300, 0.5 * np.log(2), -0.5 * np.log(2)]])

    @numba.njit
    def run(z, p, bits):
        for j in range(z.shape[0]):
            p[j], k = engine._exp_reduced(z[j])
            bits[j] = (k + 1023) << 52

    p, bits = np.empty_like(z), np.empty(z.shape, dtype=np.int64)
    run(z, p, bits)
    value = p * bits.view(np.float64)
    assert np.all(np.abs(value / np.exp(z) - 1) <= 2 * np.finfo(float).eps)


def test_readings_far_outside_any_room_agree_with_the_oracle():
    """Temperatures whose 1/PI exponent leaves the vectorised exponential's range (below
    about −257 °C) take libm's exp; the tables still equal the oracle's."""
    ds = climate(sensors=2, days=40, nan_share=0.0)
    ds["temperature"][0, ::11] = -260.0
    ds["temperature"][1, ::13] = -200.0
    assert_same(ds)


def test_results_are_cached_per_call_and_refreshed_when_data_change():
    ds = climate(sensors=2, days=40)
    first = ds.climate.risk_table()
    ds["temperature"] = ds["temperature"] + 1.0
    assert (ds.climate.risk_table()["T mean"] - first["T mean"]).round(9).eq(1.0).all()


# -- the oracle against published values ------------------------------------------------------


@pytest.mark.parametrize("t, rh, lo, hi", [(20, 50, 9, 10), (25, 60, 16, 17)])
def test_oracle_dew_point_against_the_steam_table(t, rh, lo, hi):
    """Saturation pressures of IAPWS-95 as ASHRAE Fundamentals (2017) ch. 1, Table 3 lists
    them (kPa): 9 °C 1.1481, 10 °C 1.2282, 16 °C 1.8185, 17 °C 1.9380, 20 °C 2.3393, 25 °C
    3.1699. The dew point is where e_s(T_d) = RH·e_s(T): 20 °C/50 % → e = 1.16965 kPa →
    9.269 °C; 25 °C/60 % → 1.90194 kPa → 16.698 °C (linear between the rows)."""
    table = {9: 1.1481, 10: 1.2282, 16: 1.8185, 17: 1.9380, 20: 2.3393, 25: 3.1699}
    e = rh / 100 * table[t]
    expected = lo + (e - table[lo]) / (table[hi] - table[lo])
    assert float(oracle.dew_point(t, rh)) == pytest.approx(expected, abs=0.05)
    assert float(oracle.dew_point(21.3, 100.0)) == pytest.approx(21.3)  # saturated air


@pytest.mark.parametrize("rh, table", [(30, 6.2), (50, 9.2), (80, 16.0)])
def test_oracle_wood_emc_against_the_wood_handbook(rh, table):
    """Wood Handbook FPL-GTR-190 (2010), Table 4-2, the 70 °F (21.1 °C) row."""
    assert float(oracle.emc_wood((70 - 32) * 5 / 9, rh)) == pytest.approx(table, abs=0.1)


def test_oracle_preservation_index_and_twpi_against_ipi():
    """IPI's anchors: PI 45 years at 20 °C/50 % RH (Dew Point Calculator, dpcalc.org) and
    about 50 years at 20 °C/45 % (Richardson, Cummings & Bigourdan 2023, Heritage 6, 4202);
    TWPI = harmonic mean (Reilly et al. 1995): half the time at each of two PIs gives
    2/(1/a + 1/b), and a missing reading is skipped."""
    assert round(float(oracle.preservation_index(20, 50))) == 45
    assert float(oracle.preservation_index(20, 45)) == pytest.approx(50, abs=1.5)
    a, b = oracle.preservation_index(20, 50), oracle.preservation_index(28, 60)
    assert oracle.twpi([a, a, b, b, np.nan]) == pytest.approx(2 / (1 / a + 1 / b), rel=1e-12)


def test_oracle_mould_isopleth_and_ipi_limits():
    """LIM 0 (Sedlbauer 2001, fit of Zeng et al. 2023): its minimum 100·(0.02633 + 0.7153) =
    74.163 % at 30 °C, 75.6 % at 20 °C; IPI: no risk below 65 % RH or outside 2-45 °C."""
    t = np.array([30.0, 30.0, 20.0, 20.0, 1.0, 46.0])
    rh = np.array([74.2, 74.1, 75.5, 75.7, 99.0, 99.0])
    assert oracle.mould_possible(t, rh).tolist() == [True, False, False, True, False, False]


def test_oracle_en15757_worked_example_by_hand():
    """EN 15757 annex A steps on ten daily readings, 3-day window (one reading each side):
    sorted fluctuations −4, −3.333, −2.667, −1.333, −1, 0, 1.333, 2, 3, 6.667; P7 at rank
    0.07·9 = 0.63: −4 + 0.63·0.667 = −3.58; P93 at rank 8.37: 3 + 0.37·3.667 = 4.3567."""
    rh = pd.Series([50, 52, 50, 48, 50, 60, 50, 50, 44, 50],
                   index=pd.date_range("2024-01-01", periods=10), dtype=float)
    seasonal, lower, upper = oracle.en15757_band(rh, half=1, min_half_width=None)
    assert seasonal.iloc[0] == 51.0 and seasonal.iloc[5] == pytest.approx(160 / 3)
    np.testing.assert_allclose(lower - seasonal, -3.58, atol=1e-9)
    np.testing.assert_allclose(upper - seasonal, 3 + 0.37 * (20 / 3 - 3), atol=1e-9)
    outside = (rh < lower) | (rh > upper)
    assert np.flatnonzero(outside).tolist() == [5, 8]
    _, lower, upper = oracle.en15757_band(rh, half=1)  # the ±10 % RH floor of §5.2
    assert not ((rh < lower) | (rh > upper)).any()


def _year(rh_short=0.0, rh_season=0.0, rh_mean=50.0, t=20.0) -> xr.Dataset:
    hours = np.arange(365 * 24)
    rh = (rh_mean + rh_short * np.sin(2 * np.pi * hours / 24)
          + rh_season * np.cos(2 * np.pi * hours / (365 * 24)))
    return xr.Dataset({"temperature": (("sensor", "time"), np.full((1, len(hours)), t)),
                       "relative_humidity": (("sensor", "time"), rh[None])},
                      coords={"sensor": ["S"], "time": pd.date_range("2024-01-01",
                                                                     periods=len(hours),
                                                                     freq="1h")})


@pytest.mark.parametrize("kwargs, expected", [
    ({"rh_short": 4}, "AA"),                    # ±4 % short, no seasonal change
    ({"rh_short": 4, "rh_season": 8}, "As"),    # a seasonal ±8 % is allowed only in As
    ({"rh_short": 8}, "A"),                     # ±8 % short fluctuations
    ({"rh_short": 8, "rh_season": 9}, "B"),     # both
    ({"rh_short": 20}, "C"),                    # 30-70 % RH
    ({"rh_short": 20, "t": 31}, "D"),           # C needs T ≤ 30 °C
    ({"rh_short": 5, "rh_mean": 78}, "none"),   # never below 75 %: not even D
])
def test_oracle_ashrae_classes_from_table_2(kwargs, expected):
    """Series built to ASHRAE Handbook—HVAC Applications (2019) ch. 24, Table 2's limits."""
    ds = _year(**kwargs)
    assert oracle.ashrae(ds, "YS")["class"].tolist() == [expected]
    assert oracle.risk_table(ds)["ASHRAE class"].tolist() == [expected]
    assert ds.climate.risk_table()["ASHRAE class"].tolist() == [expected]


def test_the_oracle_imports_nothing_of_echoes_lab():
    code = ("import sys, climate_oracle; "
            "print([m for m in sys.modules if m.split('.')[0] == 'echoes_lab'])")
    env = {**os.environ, "PYTHONPATH": os.path.dirname(oracle.__file__)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         check=True, timeout=120)
    assert out.stdout.strip() == "[]"


# -- what the engine costs -----------------------------------------------------------------------


def _python_calls_into(package: str, call) -> list[str]:
    """Every Python function of ``package`` that runs during ``call()``, in any thread."""
    seen = []

    def profile(frame, event, _arg):
        if event == "call" and f"/{package}/" in frame.f_code.co_filename:
            seen.append(f"{frame.f_code.co_filename}:{frame.f_code.co_name}")

    threading.setprofile(profile)
    sys.setprofile(profile)
    try:
        call()
    finally:
        sys.setprofile(None)
        threading.setprofile(None)
    return seen


def test_numpy_input_builds_no_dask_graph_and_hashes_nothing():
    """NumPy-backed data: no dask function runs but xarray's type check
    ``is_dask_collection`` (no graph, no ``tokenize`` of the data, no scheduler); the same
    profiler sees dask build and hash a graph on the chunked copy, so it would have seen it."""
    ds = climate(sensors=3, days=40)
    calls = _python_calls_into("dask", lambda: (ds.climate.risk_table(), ds.climate.ashrae("MS")))
    assert calls and {c.rsplit(":", 1)[1] for c in calls} == {"is_dask_collection"}
    chunked = climate(sensors=3, days=40).chunk({"sensor": 1})
    assert any("tokenize" in c for c in _python_calls_into("dask", chunked.climate.risk_table))


def test_a_new_process_loads_the_kernels_instead_of_compiling_them(tmp_path):
    """A user's kernel on a package it cannot write to: numba's cache is then per user
    (here ``NUMBA_CACHE_DIR``, empty); the install-time compiled kernels are copied there and
    loaded. numba's dispatcher counts a cache hit and no miss (a miss = a compilation)."""
    # the first-ever call (``make install`` does it): the cache beside engine.py is current
    subprocess.run([sys.executable, "-c", "from echoes_lab.climate import engine; engine.warm()"],
                   check=True, timeout=600)
    code = textwrap.dedent("""
        import json, time
        import numpy as np, pandas as pd, xarray as xr
        start = time.perf_counter()
        from echoes_lab.climate import engine
        imported = time.perf_counter() - start
        n = 288 * 60
        rng = np.random.default_rng(0)
        ds = xr.Dataset(
            {"temperature": (("sensor", "time"), 20 + rng.normal(0, 1, (4, n))),
             "relative_humidity": (("sensor", "time"), 50 + rng.normal(0, 5, (4, n))),
             "quality": (("sensor", "time"), np.zeros((4, n), "int16"))},
            coords={"sensor": list("abcd"),
                    "time": pd.date_range("2025-01-01", periods=n, freq="5min")})
        start = time.perf_counter()
        table = ds.climate.risk_table()
        first_call = time.perf_counter() - start
        stats = engine._sensors.stats
        print(json.dumps({"hits": stats.cache_hits.total(), "misses": stats.cache_misses.total(),
                          "path": stats.cache_path, "rows": len(table),
                          "import": imported, "first_call": first_call}))
    """)
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "numba")}
    for _ in range(2):  # the first new process seeds the cache, the second finds it there
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             env=env, timeout=600)
        assert out.returncode == 0, out.stderr[-2000:]
        result = json.loads(out.stdout.strip().splitlines()[-1])
        assert result["path"].startswith(str(tmp_path / "numba"))
        assert (result["hits"], result["misses"], result["rows"]) == (1, 0, 4), result
