"""echoes_lab.read_climate on messy logger exports: preambles, decimal commas, °F, duplicated
timestamps, gaps, impossible readings, readings out of order, no timestamp; NetCDF and Zarr."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import echoes_lab
from echoes_lab.climate.readers import DUPLICATE, MISSING, OUT_OF_ORDER, RH_OUT_OF_RANGE
from echoes_lab.errors import DataError


@pytest.fixture
def data(data_dir):
    return data_dir / "climate"


def test_preamble_is_skipped(data):
    ds = echoes_lab.read_climate(data / "preamble.csv", room="Store")
    assert ds.sizes == {"sensor": 1, "time": 5}
    assert ds["sensor"].item() == "preamble" and ds["room"].item() == "Store"
    assert ds.indexes["time"][0] == pd.Timestamp("2024-03-05 10:00")  # ambiguous → day first
    assert ds["temperature"].attrs["units"] == "degC"
    assert ds["relative_humidity"].attrs["units"] == "%"
    assert ds["relative_humidity"].values[0, 0] == 51.2


def test_decimal_commas_semicolons_and_separate_date_time(data):
    ds = echoes_lab.read_climate(data / "decimal_comma.csv", sensor="Raum 1")
    assert ds.indexes["time"][1] == pd.Timestamp("2025-01-13 09:00")
    np.testing.assert_allclose(ds["temperature"].values[0], [18.4, 18.9, 19.3, 19.6])
    np.testing.assert_allclose(ds["relative_humidity"].values[0], [55.2, 54.0, 53.1, 52.5])


def test_fahrenheit_detected_from_header_or_declared(data):
    ds = echoes_lab.read_climate(data / "fahrenheit.csv")
    np.testing.assert_allclose(ds["temperature"].values[0], [20.0, 22.0, 25.0])
    frame = pd.DataFrame({"time": ["2024-01-01 00:00", "2024-01-01 01:00"],
                          "temperature": [68.0, 77.0], "rh": [50, 50]})
    with pytest.raises(DataError, match="temperature_unit"):  # 68 "°C" indoors is not believable
        echoes_lab.read_climate(frame)
    declared = echoes_lab.read_climate(frame, temperature_unit="degF")
    np.testing.assert_allclose(declared["temperature"].values[0], [20.0, 25.0])


def test_duplicates_gaps_impossible_and_out_of_order_are_flagged(data):
    ds = echoes_lab.read_climate(data / "duplicates_gaps.csv")
    q = ds["quality"].to_pandas()
    g1, s2 = q.loc["G1"], q.loc["S2"]
    assert g1[pd.Timestamp("2024-01-01 00:15")] & DUPLICATE
    assert g1[pd.Timestamp("2024-01-01 01:45")] & RH_OUT_OF_RANGE
    # masked, not kept
    assert np.isnan(ds["relative_humidity"].sel(sensor="G1", time="2024-01-01 01:45"))
    # the rest stays
    assert ds["temperature"].sel(sensor="G1", time="2024-01-01 01:45") == 20.7
    assert s2[pd.Timestamp("2024-01-01 00:15")] & OUT_OF_ORDER
    assert s2[pd.Timestamp("2024-01-01 00:45")] & RH_OUT_OF_RANGE
    assert s2[pd.Timestamp("2024-01-01 01:30")] & MISSING
    issues = "\n".join(ds.climate.issues)
    assert "G1: 1 duplicated timestamps (lines 4)" in issues
    assert "S2: 1 readings earlier than the one before (lines 10)" in issues
    assert "G1: 1 RH readings outside 0–100 % (lines 7; values [101.3])" in issues
    assert "S2: 1 RH readings outside" in issues and "lines 11" in issues


def test_resample_to_a_regular_step(data):
    ds = echoes_lab.read_climate(data / "duplicates_gaps.csv", resample="30min")
    assert (np.diff(ds.indexes["time"].values) == np.timedelta64(30, "m")).all()
    g1 = ds.sel(sensor="G1")
    # mean of 20.0, 20.1
    assert float(g1["temperature"].sel(time="2024-01-01 00:00")) == pytest.approx(20.05)
    assert int(g1["quality"].sel(time="2024-01-01 00:00")) & DUPLICATE
    assert int(g1["quality"].sel(time="2024-01-01 01:00")) & MISSING


def test_no_timestamp_column_names_the_file(data):
    with pytest.raises(DataError, match=r"no_timestamp\.csv: no header line with a timestamp"):
        echoes_lab.read_climate(data / "no_timestamp.csv")


def test_unreadable_timestamp_names_the_line(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("time,temperature,rh\n2024-01-01 00:00,20,50\nyesterday,20,50\n")
    with pytest.raises(DataError, match=r"bad\.csv: line 3: cannot read 'yesterday'"):
        echoes_lab.read_climate(bad)


def test_demo_csv_and_netcdf_round_trip(demo_data, tmp_path):
    ds = echoes_lab.read_climate(demo_data / "climate" / "loggers.csv")
    assert ds.sizes["sensor"] == 4 and ds["room"].sel(sensor="L03").item() == "Gallery 3"
    # was °F
    assert float(ds["temperature"].sel(sensor="L03").mean()) == pytest.approx(21.0, abs=0.6)
    assert int((ds["quality"].sel(sensor="A0B") & RH_OUT_OF_RANGE > 0).sum()) == 5
    assert any("S0A" in i and "gap" in i for i in ds.climate.issues)
    path = tmp_path / "loggers.nc"
    ds.drop_attrs().assign_attrs(source="demo").to_netcdf(path)
    again = echoes_lab.read_climate(path)
    np.testing.assert_allclose(again["relative_humidity"].values, ds["relative_humidity"].values)


def test_zarr_with_fahrenheit_and_bad_rh_is_flagged_lazily(tmp_path):
    time = pd.date_range("2024-01-01", periods=6, freq="1h")
    import xarray as xr
    ds = xr.Dataset({"temp": (("sensor", "time"), np.full((2, 6), 68.0), {"units": "degF"}),
                     "RH": (("sensor", "time"),
                            np.array([[50, 51, 120, 50, 50, 50], [40] * 6], float))},
                    coords={"sensor": ["a", "b"], "time": time})
    ds.to_zarr(tmp_path / "s.zarr", consolidated=False)
    out = echoes_lab.read_climate(tmp_path / "s.zarr")
    assert out["temperature"].chunks is not None
    np.testing.assert_allclose(out["temperature"].values, 20.0)
    assert int(out["quality"].sel(sensor="a").values[2]) & RH_OUT_OF_RANGE
    assert np.isnan(out["relative_humidity"].values[0, 2])


def test_gaps_are_measured_against_each_sensors_own_interval():
    """A logger every 5 h beside one every 15 min: no false gaps for the slow one (issue 16)."""
    fast = pd.DataFrame({"time": pd.date_range("2024-01-01", periods=200, freq="15min"),
                         "sensor": "fast"})
    slow = pd.DataFrame({"time": pd.date_range("2024-01-01", periods=10, freq="5h"),
                         "sensor": "slow"})
    frame = pd.concat([fast, slow]).assign(temperature=20.0, rh=50.0)
    frame = frame[~frame["time"].isin(pd.to_datetime(["2024-01-01 12:00", "2024-01-01 12:15"]))
                  | (frame["sensor"] == "slow")]  # one real gap (45 min) for "fast"
    issues = "\n".join(echoes_lab.read_climate(frame).climate.issues)
    assert "fast: 1 gap(s)" in issues and "slow:" not in issues


def test_date_order_needs_evidence_and_contradictions_are_refused(tmp_path):
    mixed = tmp_path / "mixed.csv"
    mixed.write_text("Date,Temperature,RH\n13/01/2024 10:00,20,50\n01/14/2024 10:00,20,50\n")
    with pytest.raises(DataError, match="mixes two date orders"):
        echoes_lab.read_climate(mixed)
    bad = tmp_path / "bad.csv"
    bad.write_text("Date,Temperature,RH\n2024-01-13 10:00,20,50\nsensor reset,20,50\n")
    with pytest.raises(DataError, match="line 3: cannot read 'sensor reset'.*not a date") as err:
        echoes_lab.read_climate(bad)
    assert "dayfirst" not in str(err.value)


def test_rh_only_logger(tmp_path):
    f = tmp_path / "rh.csv"
    f.write_text("Timestamp;RH (%)\n2024-01-13 10:00;50,5\n2024-01-13 10:15;51,0\n")
    ds = echoes_lab.read_climate(f)
    assert ds["relative_humidity"].values[0].tolist() == [50.5, 51.0]
    assert ds["temperature"].attrs["measured"] == "no"
