"""echoes_lab.climate.metrics: every formula against published reference values, EN 15757 by hand,
ASHRAE classes on series built to the Handbook's limits, and the same results on dask."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import echoes_lab
from echoes_lab.climate import metrics as climate
from echoes_lab.errors import DataError


def frame(t, rh, freq="1h", sensors=("S1",), start="2024-01-01"):
    """A Dataset(sensor, time) as read_climate returns it, from arrays."""
    t, rh = np.atleast_2d(np.asarray(t, float)), np.atleast_2d(np.asarray(rh, float))
    t = np.broadcast_to(t, rh.shape) if t.shape != rh.shape else t
    time = pd.date_range(start, periods=rh.shape[1], freq=freq)
    return xr.Dataset({"temperature": (("sensor", "time"), t.copy()),
                       "relative_humidity": (("sensor", "time"), rh.copy()),
                       "quality": (("sensor", "time"), np.zeros(rh.shape, "int16"))},
                      coords={"sensor": list(sensors), "time": time,
                              "room": ("sensor", [f"room {s}" for s in sensors])})


# -- psychrometrics ------------------------------------------------------------------------

# Saturation vapour pressure over liquid water (kPa), IAPWS-95 (Wagner & Pruß 2002), as
# tabulated in ASHRAE Handbook—Fundamentals (2017) ch. 1, Table 3 and the CRC Handbook.
STEAM_TABLE = {0: 0.6112, 9: 1.1481, 10: 1.2282, 16: 1.8185, 17: 1.9380, 20: 2.3393, 25: 3.1699,
               30: 4.2470, 40: 7.3849}


@pytest.mark.parametrize("t", sorted(STEAM_TABLE))
def test_saturation_pressure_matches_steam_table_within_magnus_error(t):
    # Alduchov & Eskridge (1996) give < 0.4 % error for their coefficients over -40..50 °C.
    assert climate.saturation_vapour_pressure(t) / 1000 == pytest.approx(STEAM_TABLE[t], rel=0.004)


@pytest.mark.parametrize("t, rh, lo, hi", [(20, 50, 9, 10), (25, 60, 16, 17)])
def test_dew_point_against_steam_table(t, rh, lo, hi):
    # The dew point is where e_s(T_d) = RH · e_s(T). Worked from the table:
    #   20 °C, 50 %: e = 0.5 × 2.3393 = 1.16965 kPa, between 9 °C (1.1481) and 10 °C (1.2282):
    #   T_d = 9 + (1.16965 − 1.1481) / (1.2282 − 1.1481) = 9.269 °C.
    #   25 °C, 60 %: e = 0.6 × 3.1699 = 1.90194 kPa, between 16 °C (1.8185) and 17 °C (1.9380):
    #   T_d = 16 + (1.90194 − 1.8185) / (1.9380 − 1.8185) = 16.698 °C.
    e = rh / 100 * STEAM_TABLE[t]
    expected = lo + (e - STEAM_TABLE[lo]) / (STEAM_TABLE[hi] - STEAM_TABLE[lo])
    assert climate.dew_point(t, rh) == pytest.approx(expected, abs=0.05)


def test_dew_point_agrees_with_psychrolib():
    # Secondary check only: psychrolib (ASHRAE Hyland-Wexler) over the indoor range.
    psychrolib = pytest.importorskip("psychrolib")
    psychrolib.SetUnitSystem(psychrolib.SI)
    for t in (5.0, 12.0, 18.0, 21.0, 27.0, 33.0):
        for rh in (20.0, 45.0, 60.0, 85.0):
            if climate.dew_point(t, rh) < 0:  # psychrolib gives the frost point (over ice) there
                continue
            assert climate.dew_point(t, rh) == pytest.approx(
                psychrolib.GetTDewPointFromRelHum(t, rh / 100), abs=0.1
            )
    assert climate.dew_point(20.0, 100.0) == pytest.approx(20.0)


def test_absolute_humidity_and_mixing_ratio_against_tables():
    # Saturated vapour density, CRC Handbook of Chemistry and Physics: 17.3 g/m³ at 20 °C,
    # 30.4 g/m³ at 30 °C.
    assert climate.absolute_humidity(20, 100) == pytest.approx(17.3, rel=0.006)
    assert climate.absolute_humidity(30, 100) == pytest.approx(30.4, rel=0.006)
    # Saturation humidity ratio at 20 °C, 101.325 kPa: 14.758 g/kg (ASHRAE Fundamentals 2017,
    # ch. 1, Table 2); the table includes the enhancement factor (~0.4 %) we do not model.
    assert climate.mixing_ratio(20, 100) == pytest.approx(14.758, rel=0.01)


@pytest.mark.parametrize("rh, table", [(30, 6.2), (50, 9.2), (80, 16.0)])
def test_wood_emc_against_wood_handbook_table(rh, table):
    # Wood Handbook FPL-GTR-190 (2010), Table 4-2, row 70 °F (21.1 °C).
    assert climate.emc_wood((70 - 32) * 5 / 9, rh) == pytest.approx(table, abs=0.1)


# -- IPI ---------------------------------------------------------------------------------

def test_preservation_index_published_anchors():
    # IPI Dew Point Calculator (dpcalc.org): PI 45 at 20 °C/50 % RH; IPI's benchmark 50 years
    # at 20 °C/45 % RH (Richardson, Cummings & Bigourdan 2023, Heritage 6, 4202).
    assert round(float(climate.preservation_index(20, 50))) == 45
    # 51.1 from the fit:
    assert float(climate.preservation_index(20, 45)) == pytest.approx(50, abs=1.5)
    # Warmer and damper is worse: the isoperm ordering of Sebera (1994).
    assert (
        climate.preservation_index(25, 50)
        < climate.preservation_index(20, 50)
        < climate.preservation_index(15, 50)
    )
    assert climate.preservation_index(20, 60) < climate.preservation_index(20, 40)


def test_twpi_is_the_time_weighted_harmonic_mean():
    # Reilly, Nishimura & Zinn (1995): rates add up. Half the time at PI_a, half at PI_b:
    #   TWPI = 2 / (1/PI_a + 1/PI_b).
    pi_a, pi_b = climate.preservation_index(20, 50), climate.preservation_index(28, 60)
    ds = frame([[20] * 6 + [28] * 6], [[50] * 6 + [60] * 6])
    assert float(ds.climate.twpi().item()) == pytest.approx(2 / (1 / pi_a + 1 / pi_b))
    assert float(ds.climate.twpi().item()) < (pi_a + pi_b) / 2  # not the arithmetic mean
    constant = frame([[20] * 4], [[50] * 4])
    assert float(constant.climate.twpi().item()) == pytest.approx(pi_a)


def test_mould_limit_and_ipi_cutoffs():
    # Zeng et al. (2023) LIM0: its minimum 0.02633 + 0.7153 = 74.16 % at 30 °C.
    assert climate.mould_rh_limit(30.0) == pytest.approx(74.163)
    assert (
        climate.mould_rh_limit(10.0) > climate.mould_rh_limit(20.0) > climate.mould_rh_limit(30.0)
    )
    t = np.array([20.0, 20.0, 20.0, 1.0, 50.0])
    rh = np.array([60.0, 75.0, 85.0, 95.0, 95.0])
    # below 65 %: no risk (IPI); 75 % at 20 °C is below LIM0 (75.6 %); outside 2-45 °C: no risk.
    assert climate.mould_risk(t, rh).tolist() == [False, False, True, False, False]


# -- EN 15757 ----------------------------------------------------------------------------

def test_en15757_worked_example_by_hand():
    rh = [50, 52, 50, 48, 50, 60, 50, 50, 44, 50]
    ds = frame([[20] * 10], [rh], freq="1D")
    band = ds.climate.en15757(window="3D", min_half_width=None).isel(sensor=0)
    # Step 1, seasonal cycle = centred moving average over 3 days (2 readings at the ends):
    seasonal = [(50 + 52) / 2, (50 + 52 + 50) / 3, (52 + 50 + 48) / 3, (50 + 48 + 50) / 3,
                (48 + 50 + 60) / 3, (50 + 60 + 50) / 3, (60 + 50 + 50) / 3, (50 + 50 + 44) / 3,
                (50 + 44 + 50) / 3, (44 + 50) / 2]
    np.testing.assert_allclose(band["seasonal"], seasonal)
    # Step 2, fluctuations = reading − seasonal:
    #   -1, 1.333, 0, -1.333, -2.667, 6.667, -3.333, 2, -4, 3
    np.testing.assert_allclose(band["fluctuation"], np.array(rh) - seasonal)
    # Step 3, percentiles of the 10 sorted fluctuations (linear interpolation between ranks):
    #   sorted: -4, -3.333, -2.667, -1.333, -1, 0, 1.333, 2, 3, 6.667
    #   P7  at rank 0.07 × 9 = 0.63: -4 + 0.63 × (−3.333 + 4)  = -3.58
    #   P93 at rank 0.93 × 9 = 8.37:  3 + 0.37 × (6.667 − 3)    =  4.3567
    np.testing.assert_allclose(band["lower"], np.array(seasonal) - 3.58, atol=1e-9)
    np.testing.assert_allclose(
        band["upper"], np.array(seasonal) + 3 + 0.37 * (20 / 3 - 3), atol=1e-9
    )
    # Step 4, excursions: fluctuation −4 < −3.58 (day 9) and 6.667 > 4.357 (day 6).
    assert np.flatnonzero(band["excursion"].values).tolist() == [5, 8]
    # The standard's ±10 % RH floor widens this narrow band, and nothing is an excursion.
    assert not ds.climate.en15757(window="3D").excursion.any()


# -- ASHRAE --------------------------------------------------------------------------------

def year(rh_short=0.0, rh_season=0.0, rh_mean=50.0, t=20.0):
    # The seasonal term is a cosine so that the record starts and ends at a turning point, where
    # the shortened moving-average window at the ends of the record is unbiased.
    hours = np.arange(365 * 24)
    rh = (
        rh_mean
        + rh_short * np.sin(2 * np.pi * hours / 24)
        + rh_season * np.cos(2 * np.pi * hours / (365 * 24))
    )
    return frame([[t] * len(hours)], [rh])


@pytest.mark.parametrize("series, expected", [
    (year(rh_short=4), "AA"),                    # ±4 % short, no seasonal change
    (year(rh_short=4, rh_season=8), "As"),       # seasonal ±8 % allowed only in As
    (year(rh_short=8), "A"),                     # ±8 % short fluctuations: A, not As
    (year(rh_short=8, rh_season=9), "B"),        # both: B
    (year(rh_short=20), "C"),                    # 30-70 % RH
    (year(rh_short=20, t=31), "D"),              # C needs T ≤ 30 °C
    (year(rh_short=5, rh_mean=78), "none"),      # never below 75 %: not even D, so no class
])
def test_ashrae_classes_from_handbook_limits(series, expected):
    # ASHRAE Handbook—HVAC Applications (2019) ch. 24, Table 2.
    table = series.climate.ashrae("YS")
    assert table["class"].tolist() == [expected]


def test_ashrae_says_when_a_class_failed():
    ds = year(rh_short=4)
    ds["relative_humidity"][0, 24 * 100 + 5] = 57.0  # one reading 7 % above on 10 April, 05:00
    row = ds.climate.ashrae("MS").set_index("period").loc["2024-04-01"]
    assert row["class"] == "A" and row["AA first failure"] == pd.Timestamp("2024-04-10 05:00")
    assert ds.climate.ashrae("MS").set_index("period").loc["2024-03-01", "class"] == "AA"


# -- summaries, risk table, dask -------------------------------------------------------------

def test_summaries_and_time_in_band():
    ds = frame([[18.0, 22.0, 26.0, 20.0]], [[45.0, 55.0, 65.0, np.nan]], freq="12h")
    daily = ds.climate.summary("D").isel(sensor=0)
    assert daily["temperature_mean"].values.tolist() == [20.0, 23.0]
    assert daily["relative_humidity_max"].values.tolist() == [55.0, 65.0]
    assert daily["readings"].values.tolist() == [2, 1]
    band = ds.climate.time_in_band(t_band=(16, 25), rh_band=(40, 60)).isel(sensor=0)
    assert float(band["both"]) == pytest.approx(2 / 3)  # the NaN reading is not counted


@pytest.fixture(scope="module")
def demo(demo_data):
    return echoes_lab.read_climate(demo_data / "climate" / "loggers.csv", resample="1h")


def test_risk_table_on_demo(demo):
    table = demo.climate.risk_table()
    assert list(table.index) == ["A0B", "L01", "L03", "S0A"]
    assert table.loc["L03", "T mean"] == pytest.approx(21.0, abs=0.6)  # °F converted
    assert table.loc["A0B", "RH max"] <= 100
    assert set(table["natural ageing"]) <= {"GOOD", "OK", "RISK"}
    # the cool store ages slower
    assert table.loc["S0A", "TWPI (years)"] > table.loc["L03", "TWPI (years)"]


def test_same_results_on_dask(demo):
    chunked = demo.chunk({"sensor": 2, "time": 2000})
    assert chunked.climate.dew_point().chunks is not None  # stays lazy
    pd.testing.assert_frame_equal(
        chunked.climate.risk_table(), demo.climate.risk_table(), rtol=1e-9
    )
    pd.testing.assert_frame_equal(chunked.climate.ashrae("QS"), demo.climate.ashrae("QS"))
    xr.testing.assert_allclose(chunked.climate.en15757().compute(), demo.climate.en15757())


def test_irregular_time_axis_is_refused():
    ds = frame([[20.0] * 4], [[50.0] * 4])
    ds = ds.isel(time=[0, 1, 3])
    with pytest.raises(DataError, match="resample"):
        ds.climate.en15757()


def test_plots(demo, tmp_path):
    import matplotlib
    matplotlib.use("Agg")
    for fig in (demo.climate.plot("L03", start="2024-06-01", end="2024-08-31"),
                demo.climate.psychrometric(), demo.climate.dashboard()):
        assert fig.axes and any(ax.has_data() for ax in fig.axes)
        fig.savefig(tmp_path / "plot.png")
