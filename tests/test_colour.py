"""echoes_lab.colour against published reference values, and its errors on bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import echoes_lab
from echoes_lab.colour import (
    ILLUSTRATIVE_BLUE_WOOL,
    blue_wool,
    delta_e,
    read_spectra,
    to_lab,
    to_xyz,
)
from echoes_lab.errors import SpectralError


@pytest.fixture(scope="module")
def colour_dir(data_dir):
    return data_dir / "colour"


def test_delta_e00_matches_all_34_pairs_of_sharma_wu_dalal_2005(colour_dir):
    """Sharma, Wu & Dalal (2005), Color Res. Appl. 30(1):21–30, Table 1: every pair to 1e-4,
    in both orders (ΔE00 is symmetric)."""
    table = pd.read_csv(colour_dir / "sharma2005-ciede2000.csv", comment="#")
    assert len(table) == 34
    lab1, lab2 = table[["L1", "a1", "b1"]].to_numpy(), table[["L2", "a2", "b2"]].to_numpy()
    for first, second in [(lab1, lab2), (lab2, lab1)]:
        got = delta_e(first, second, "CIE 2000")
        np.testing.assert_allclose(got, table["dE00"].to_numpy(), atol=1e-4, rtol=0)


def test_delta_e_ab_and_94_follow_their_cie_definitions(colour_dir):
    """ΔE*ab is the Euclidean distance (CIE 15:2004 eq. 8.11); ΔE94 (CIE 116-1995) with
    SL = 1, SC = 1 + 0.045 C*1, SH = 1 + 0.015 C*1, checked on Sharma's pairs."""
    table = pd.read_csv(colour_dir / "sharma2005-ciede2000.csv", comment="#")
    lab1, lab2 = table[["L1", "a1", "b1"]].to_numpy(), table[["L2", "a2", "b2"]].to_numpy()
    np.testing.assert_allclose(
        delta_e(lab1, lab2, "ab"), np.linalg.norm(lab1 - lab2, axis=1), atol=1e-12
    )
    c1, c2 = np.hypot(lab1[:, 1], lab1[:, 2]), np.hypot(lab2[:, 1], lab2[:, 2])
    dl, dc = lab1[:, 0] - lab2[:, 0], c1 - c2
    dh2 = np.maximum(np.sum((lab1[:, 1:] - lab2[:, 1:]) ** 2, axis=1) - dc ** 2, 0)
    expected = np.sqrt(dl ** 2 + (dc / (1 + 0.045 * c1)) ** 2 + dh2 / (1 + 0.015 * c1) ** 2)
    np.testing.assert_allclose(delta_e(lab1, lab2, "94"), expected, atol=1e-9)


def test_colorchecker_spectra_give_babelcolors_published_colorimetry(colour_dir):
    """BabelColor's average ColorChecker spectra (D. Pascale 2012) → XYZ under D50 and the 2°
    observer reproduce BabelColor's own published colorimetry: chromaticity x, y within 0.001,
    Y within 1 %, CIELAB within ΔE00 0.2 (mean < 0.05). The margins are what the transcription
    allows: reflectance to 3 decimals (±0.0005, i.e. ±1 % on the darkest patches) and xyY to 4."""
    spectra = read_spectra(colour_dir / "babelcolor-colorchecker-spectra.csv")
    published = pd.read_csv(colour_dir / "babelcolor-colorchecker-xyY-D50.csv", comment="#")
    assert spectra.sizes == {"measurement": 24, "wavelength": 36}
    assert list(spectra["name"].values) == list(published["name"])
    xyz = to_xyz(spectra, "D50", 2).values / 100
    xyY = np.column_stack([xyz[:, :2] / xyz.sum(axis=1, keepdims=True), xyz[:, 1]])
    np.testing.assert_allclose(xyY[:, :2], published[["x", "y"]].to_numpy(), atol=1e-3, rtol=0)
    np.testing.assert_allclose(xyY[:, 2], published["Y"].to_numpy(), rtol=0.01)

    import colour

    white = colour.CCS_ILLUMINANTS["CIE 1931 2 Degree Standard Observer"]["D50"]
    lab_published = colour.XYZ_to_Lab(
        colour.xyY_to_XYZ(published[["x", "y", "Y"]].to_numpy()), white
    )
    lab = to_lab(spectra, "D50", 2)
    assert list(lab["lab"].values) == ["L", "a", "b"]
    differences = delta_e(lab.values, lab_published)
    assert differences.max() < 0.2 and differences.mean() < 0.05


def test_illuminants_and_observers_change_lab_as_expected(colour_dir):
    spectra = read_spectra(colour_dir / "babelcolor-colorchecker-spectra.csv")
    white = spectra.isel(measurement=[18])  # "white 9.5": a near-neutral patch
    labs = {(i, o): to_lab(white, i, o).values[0] for i in ("D65", "D50") for o in (2, 10)}
    # a neutral stays neutral under any of them (chromatic adaptation by white point)
    for lab in labs.values():
        assert 95 < lab[0] < 98 and abs(lab[1]) < 2 and abs(lab[2]) < 4
    red = spectra.isel(measurement=[14])
    assert not np.allclose(to_lab(red, "D65", 2), to_lab(red, "D50", 10))
    with pytest.raises(SpectralError, match="illuminant"):
        to_lab(red, "A", 2)
    with pytest.raises(SpectralError, match="observer"):
        to_lab(red, "D65", 5)


def test_reads_row_layout_and_percent(tmp_path):
    wl = np.arange(400, 701, 10)
    frame = pd.DataFrame({"wavelength (nm)": wl, "sample A": np.full(wl.size, 50.0),
                          "sample B": np.linspace(10, 90, wl.size)})
    path = tmp_path / "rows.csv"
    frame.to_csv(path, index=False)
    spectra = read_spectra(path)
    assert list(spectra["measurement"].values) == ["sample A", "sample B"]
    np.testing.assert_allclose(spectra.sel(wavelength=550).values, [0.5, 0.5])
    assert spectra.attrs["scale_read"] == "percent"
    # a flat 50 % reflector is a neutral grey: L* = 116·0.5^(1/3) − 16 = 76.07 (CIE 15:2004 eq. 8.9)
    np.testing.assert_allclose(to_lab(spectra).values[0], [76.0693, 0, 0], atol=2e-3)


@pytest.mark.parametrize("value, message", [(np.nan, "line 3, column '550': missing"),
                                            (-0.02, "line 3, column '550': negative reflectance")])
def test_bad_values_are_named_by_file_line_and_column(tmp_path, value, message):
    wl = np.arange(400, 701, 10)
    frame = pd.DataFrame(np.full((3, wl.size), 0.4), columns=[str(w) for w in wl])
    frame.insert(0, "object", ["a", "b", "c"])
    frame.loc[1, "550"] = value
    path = tmp_path / "export.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(SpectralError, match=f"export.csv: {message}"):
        read_spectra(path)


def test_mismatched_wavelength_grids_are_refused(tmp_path):
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    pd.DataFrame(
        [np.full(31, 0.5)], columns=[str(w) for w in range(400, 701, 10)]
    ).to_csv(a, index=False)
    pd.DataFrame(
        [np.full(36, 0.5)], columns=[str(w) for w in range(380, 731, 10)]
    ).to_csv(b, index=False)
    with pytest.raises(SpectralError, match=r"b.csv: field 'wavelength' \(380–730 nm, 36 values\) "
                                            r"differs from .*a.csv"):
        read_spectra([a, b])
    assert read_spectra([a, a]).sizes["measurement"] == 2
    uneven = tmp_path / "uneven.csv"
    pd.DataFrame(
        [np.full(4, 0.5)], columns=["400", "410", "430", "440"]
    ).to_csv(uneven, index=False)
    with pytest.raises(SpectralError, match="uneven.csv: field 'wavelength': "
                                            "not evenly spaced .*pass resample="):
        read_spectra(uneven)


def test_nan_in_a_dataarray_is_refused():
    spectra = xr.DataArray(np.full((2, 31), 0.5), dims=("measurement", "wavelength"),
                           coords={"wavelength": np.arange(400, 701, 10)})
    spectra[1, 3] = np.nan
    with pytest.raises(SpectralError, match="NaN"):
        to_lab(spectra)


def test_fading_of_the_demo_objects(demo_data, monkeypatch):
    monkeypatch.setenv("ECHOES_DATA", str(demo_data))
    table = echoes_lab.open_dataset("demo-colour")
    result = table.colour.fading(threshold=2.0)
    s = result.summary
    assert len(s) == 15 and (s["n"] == 19).all()
    first = result.series.groupby(["object", "point"]).head(1)
    assert (first["dE00"] == 0).all() and (first["years"] == 0).all()
    # the demo's colorants fade at 20 %/yr (yellow lake) ... 0.5 %/yr (vermilion): the ranking shows
    rate = s["rate_per_year"].groupby("object").mean().sort_values()
    assert rate.index[0] == "ECH01030 vermilion" and rate.index[-1] in (
        "ECH00245 yellow lake", "ECH00017 carmine lake"
    )
    fast = s.loc["ECH00245 yellow lake"]
    assert (~fast["projected"]).all() and (fast["years_to_threshold"] < 1).all()
    slow = s.loc["ECH01030 vermilion"]
    assert slow["projected"].all() and (slow["years_to_threshold"] > 3).all()
    # time to threshold is where the measured curve crosses it
    one = result.series[
        (result.series["object"] == "ECH00245 yellow lake") & (result.series["point"] == "P1")
    ]
    t = fast.loc["P1", "years_to_threshold"]
    assert np.interp(t, one["years"], one["dE00"]) == pytest.approx(2.0, abs=1e-9)


def test_blue_wool_picks_the_curve_the_object_follows(colour_dir):
    """An object whose ΔE00 follows one reference curve exactly is matched to it."""
    refs = pd.read_csv(ILLUSTRATIVE_BLUE_WOOL, comment="#")
    curve = refs[refs["standard"] == "BW3"]
    years = curve["exposure_mlxh"].to_numpy() * 1e6 / (50 * 3000)
    series = pd.DataFrame({"object": "x", "point": "P1",
                           "date": (pd.Timestamp("2024-01-01")
                                    + pd.to_timedelta(years * 365.25, "D")),
                           "years": years, "dE00": curve["dE00"].to_numpy()})
    summary = pd.DataFrame({"object": ["x"], "point": ["P1"]}).set_index(["object", "point"])
    from echoes_lab.colour import Fading

    result = blue_wool(Fading(series, summary, 1.0, "date"), ILLUSTRATIVE_BLUE_WOOL)
    row = result.loc[("x", "P1")]
    assert row["closest"] == "BW3" and row["rms_dE00"] < 1e-9 and row["runner_up"] in ("BW2", "BW4")
    with pytest.raises(SpectralError, match="outside every Blue Wool curve"):
        blue_wool(Fading(series.assign(years=series["years"] * 100), summary, 1.0, "date"),
                  ILLUSTRATIVE_BLUE_WOOL)
    bad = refs.drop(columns="dE00")
    with pytest.raises(SpectralError, match="need columns"):
        blue_wool(Fading(series, summary, 1.0, "date"), bad)


def test_public_entries_are_reexported():
    for name in ("to_lab", "delta_e", "fading", "blue_wool"):
        assert getattr(echoes_lab, name) is getattr(echoes_lab.colour, name)
    # the public reader detects instrument formats first, then validates with colour's
    assert echoes_lab.read_spectra is echoes_lab.spectral.read_spectra


def test_floating_point_noise_is_clipped_with_a_recorded_warning_and_resampling():
    """A 190-patch export had −2e-16 values: noise, not a calibration fault (issue 16)."""
    frame = pd.DataFrame(
        [[0.5] * 31, [-2e-16] + [0.2] * 30], columns=[str(w) for w in range(400, 701, 10)]
    )
    with pytest.warns(UserWarning, match="clipped to 0"):
        spectra = read_spectra(frame)
    assert spectra.values.min() == 0.0 and "clipped to 0" in spectra.attrs["warnings"][0]
    with pytest.raises(SpectralError, match="negative reflectance -0.01"):
        read_spectra(pd.DataFrame(
            [[-0.01] + [0.2] * 30], columns=[str(w) for w in range(400, 701, 10)]
        ))
    uneven = pd.DataFrame([[0.1, 0.2, 0.4, 0.5]], columns=["400", "410", "430", "440"])
    regular = read_spectra(uneven, resample=10)
    np.testing.assert_allclose(regular["wavelength"].values, [400, 410, 420, 430, 440])
    assert 0.2 < float(regular.sel(wavelength=420).values[0]) < 0.4


def test_error_messages_stay_short_and_a_bom_suggests_the_encoding():
    wl = [400 + 3.3 * i ** 1.1 for i in range(300)]   # 300 uneven wavelengths
    with pytest.raises(SpectralError) as err:
        read_spectra(pd.DataFrame([[0.5] * 300], columns=[f"{w:.4f}" for w in wl]))
    assert len(str(err.value)) < 400 and "np.float64" not in str(err.value)
    bom = pd.DataFrame([[1, 0.5, 0.5, 0.5]], columns=["ï»¿id", "400", "410", "420"])
    spectra = read_spectra(bom)
    assert "id" in spectra.coords and "utf-8-sig" in spectra.attrs["warnings"][0]


def test_cgats_xrite_export_read_through_colour(real_dir=Path(__file__).parent / "data" / "real"):
    spectra = read_spectra(real_dir / "spectra" / "xrite-digital-colour-checker.txt")
    assert spectra.sizes == {"measurement": 10, "wavelength": 36}
    assert spectra["sample"].values[:2].tolist() == ["X1", "X2"]
    assert float(spectra.sel(wavelength=380).values[0]) == pytest.approx(0.0069)
