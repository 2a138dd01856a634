"""Spectra readers on real files (tests/data/real/spectra/, sources and licences in
tests/data/real/SOURCES.md, section "Spectra").

Every test asserts what a person reads in the file: the number of spectra, their names, the
wavelength range and step, and a value at a wavelength, as written in the file (converted
only where the file says so: micrometres to nm, percent to a fraction). The last tests check
that each format comes from at least five institutions or manufacturers, and feed every file
truncated, re-encoded and shuffled to the reader: values or an ``EchoesError``, nothing else.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from echoes_lab.errors import EchoesError, SpectralError
from echoes_lab.spectral import read_library, read_spectra, read_spectrum_table

SPECTRA = Path(__file__).parent / "data" / "real" / "spectra"


def layout(arr) -> dict:
    return json.loads(arr.attrs["layout"])


def at(arr, nm: float, i: int = 0) -> float:
    return float(arr.isel(measurement=i).sel(wavelength=nm, method="nearest"))


# -- CGATS ---------------------------------------------------------------------------------------

def test_cgats_xrite_spectrolino_export():
    s = read_spectra(SPECTRA / "xrite-digital-colour-checker.txt")
    assert s.sizes == {"measurement": 10, "wavelength": 36}
    assert s["sample"].values.tolist()[:3] == ["X1", "X2", "X3"]
    assert (s.wavelength[0], s.wavelength[-1]) == (380, 730)
    assert at(s, 380, 3) == pytest.approx(0.1763)          # X4, nm380
    assert layout(s)["grid"] == "380–730 nm by 10 nm"
    assert layout(s)["format"] == "CGATS (GretagMacbeth/X-Rite LGO)"


def test_cgats_argyll_spect_percent_from_spectral_norm():
    s = read_spectra(SPECTRA / "argyll_SOtele.sp")
    assert s.sizes == {"measurement": 1, "wavelength": 36}
    assert s["sample"].item() == "Argyll Spectrolino tele adapter compensation filter"
    assert at(s, 380) == pytest.approx(0.6789389)        # SPEC_380 67.89389, SPECTRAL_NORM 100
    assert layout(s)["scale_evidence"] == "SPECTRAL_NORM 100.000000"


def test_cgats_cie_test_colour_samples_tab_separated():
    s = read_spectra(SPECTRA / "cie-tcs_colord.sp")
    assert s.sizes == {"measurement": 15, "wavelength": 95}
    assert s["sample"].values.tolist()[::7] == ["TCS01", "TCS08", "TCS15"]
    assert layout(s)["grid"] == "360–830 nm by 5 nm"
    assert at(s, 360, 8) == pytest.approx(0.069)           # TCS09 at 360 nm


def test_cgats_argyll_ccss_rounded_field_names_use_the_keywords():
    table = read_spectrum_table(SPECTRA / "argyll_CRT.ccss")
    wl = np.array(table.columns[1:], dtype=float)
    assert table.shape == (14, 119)                       # NUMBER_OF_SETS 14, 118 bands
    assert wl[1] == pytest.approx(353.3333, abs=1e-3)      # field SPEC_353; 350–740 in 118
    assert np.allclose(np.diff(wl), 390 / 117)
    assert table.iloc[0, 1] == pytest.approx(-7.37e-4)
    with pytest.raises(SpectralError, match=r"argyll_CRT\.ccss .*negative reflectance"):
        read_spectra(SPECTRA / "argyll_CRT.ccss")          # display emission, not reflectance


@pytest.mark.parametrize("name, fields", [
    ("colord_colormunki_reference.ti3", "SAMPLE_ID, RGB_R, RGB_G, RGB_B, XYZ_X"),
    ("datacolor_SpyderChecker24.cie", "SAMPLE_ID, XYZ_X, XYZ_Y, XYZ_Z"),
])
def test_cgats_without_spectra_says_what_it_has(name, fields):
    with pytest.raises(SpectralError, match="without spectral fields") as err:
        read_spectra(SPECTRA / name)
    assert name in str(err.value) and fields in str(err.value)


# -- text exports ----------------------------------------------------------------------------------

def test_csv_ohta_both_layouts_keep_the_wavelength_coordinate():
    cols = read_spectra(SPECTRA / "colorchecker_n_ohta.csv")
    rows = read_spectra(SPECTRA / "colorchecker_n_ohta_transposed.csv")
    for s in (cols, rows):
        assert s.sizes == {"measurement": 24, "wavelength": 81}
        assert layout(s)["grid"] == "380–780 nm by 5 nm"    # not the patch numbers 1–24
        assert at(s, 380) == pytest.approx(0.048)


def test_asd_semicolon_export_and_its_water_bands():
    with pytest.raises(SpectralError, match=r"1394.*range_nm"):
        read_spectra(SPECTRA / "asd-fieldspec_ribb00001.asd.txt")  # −14 in the 1400 nm band
    s = read_spectra(SPECTRA / "asd-fieldspec_ribb00001.asd.txt", range_nm=(350, 1340))
    assert s["sample"].item() == "ribb00001.asd"
    assert s.sizes["wavelength"] == 991 and layout(s)["separator"] == "semicolon"
    assert at(s, 350) == pytest.approx(0.98379368955811)
    assert at(s, 550) == pytest.approx(0.974415286905102)


def test_utf16_export_with_a_byte_order_mark_reads_the_same(tmp_path):
    """Windows instrument software often saves UTF-16 with a BOM."""
    wide = tmp_path / "ribb00001.asd.txt"
    wide.write_bytes((SPECTRA / "asd-fieldspec_ribb00001.asd.txt").read_text().encode("utf-16"))
    s = read_spectra(wide, range_nm=(350, 1340))
    assert layout(s)["encoding"] == "utf-16" and at(s, 350) == pytest.approx(0.98379368955811)


@pytest.mark.parametrize("name, title, owner, n, um, percent", [
    ("ecostress_jhu.becknic.vegetation.trees.conifers.solid.conifer.spectrum.txt",
     "Conifer", "JHU", 550, 1.0, 48.746),
    ("ecostress_jpl.nicolet.mineral.silicate.phyllosilicate.coarse.ps21a.spectrum.txt",
     "Prehnite Ca_2Al_2Si_3O_10(OH)_2", "JPL", 2256, 4.99984, 5.84871),
    ("ecostress_usgs.perknic.rock.igneous.felsic.solid.rhy149.spectrum.txt",
     "Rhyolite", "United States Geological Survey, L. C. Rowan", 2530, 1.001, 33.8189),
])
def test_ecostress_library_files(name, title, owner, n, um, percent):
    table = read_spectrum_table(SPECTRA / name)
    info = table.attrs["layout"]
    assert info["Owner"] == owner and table["sample"].item() == title
    wl = np.array(table.columns[1:], dtype=float)
    assert wl.size == n and np.all(np.diff(wl) > 0)         # JPL and USGS files run downwards
    assert table[round(um * 1000, 3)].item() == pytest.approx(percent)
    with pytest.raises(SpectralError, match="not evenly spaced.*resample="):
        read_spectra(SPECTRA / name)
    s = read_spectra(SPECTRA / name, resample=10)
    assert layout(s)["scale_evidence"] == "Y Units: Reflectance (percent)"
    assert s.values.max() < 1


def test_usgs_splib07_ascii_reads_the_wavelength_file_beside_it(tmp_path):
    name = "usgs-splib07a_Brilliant(Hansa)yellowGDS785_ASDFRa_AREF.txt"
    s = read_spectra(SPECTRA / name)
    assert s["sample"].item() == "Brilliant(Hansa)yellowGDS785 ASDFRa AREF"
    assert layout(s)["grid"] == "350–2500 nm by 1 nm"
    assert at(s, 350) == pytest.approx(0.011358514) and at(s, 600) == pytest.approx(0.58580446)
    with pytest.raises(SpectralError, match="holds the library's wavelengths"):
        read_spectra(SPECTRA / "usgs-s07_ASD_Wavelengths_ASD_0.35-2.5_microns_2151_ch.txt")
    alone = tmp_path / name
    alone.write_bytes((SPECTRA / name).read_bytes())
    with pytest.raises(SpectralError, match=r"no wavelength file of 2151 values beside it"):
        read_spectra(alone)


def test_ocean_optics_spectrasuite_header_block_and_counts():
    name = "oceanoptics-hr2000_DH-3PlusCalLight-DeuteriumHalogen_HRD10391_13-38-32-533.txt"
    table = read_spectrum_table(SPECTRA / name)
    info = table.attrs["layout"]
    assert info["format"] == "Ocean Optics SpectraSuite/OceanView"
    assert info["Spectrometer"] == "HR+D1039" and info["Integration Time (sec)"] == "2.730000E-2"
    assert table.shape == (1, 1 + int(info["Number of Pixels in Spectrum"]))   # 2048 pixels
    assert table[188.309].item() == pytest.approx(6.59)
    with pytest.raises(SpectralError, match="not reflectance even as percent"):
        read_spectra(SPECTRA / name, resample=1)        # scope-mode counts up to ~15 000


def test_ocean_optics_original_line_endings(tmp_path):
    """SpectraSuite wrote CR LF data lines and a lone CR after "Node" (the corpus copy has LF
    endings, see SOURCES.md): the bytes as exported read the same."""
    src = SPECTRA / "oceanoptics-hr2000_DH-3PlusCalLight-DeuteriumHalogen_HRD10391_13-38-32-533.txt"
    head, marker, data = src.read_text(encoding="utf-8").partition(">>>>>Begin Spectral Data<<<<<")
    original = tmp_path / "original.txt"
    original.write_bytes((head.replace(" Node\n", " Node\n\r", 1) + marker
                          + data.replace("\n", "\r\n")).encode())
    assert b"Node\n\rDate" in original.read_bytes()
    table = read_spectrum_table(original)
    assert table.shape == (1, 2049) and table[188.309].item() == pytest.approx(6.59)
    assert table.attrs["layout"]["Date"] == "Thu Feb 15 13:38:32 EST 2018"


def test_ocean_optics_decimal_comma_export(tmp_path):
    """OceanView in a German or French locale writes decimal commas; same values."""
    src = SPECTRA / "oceanoptics-hr2000_DH-3PlusCalLight-DeuteriumHalogen_HRD10391_13-38-32-533.txt"
    text = src.read_text(encoding="utf-8")
    head, _, data = text.partition(">>>>>Begin Spectral Data<<<<<")
    comma = tmp_path / "comma.txt"
    comma.write_text(head + ">>>>>Begin Spectral Data<<<<<" + data.replace(".", ","))
    table = read_spectrum_table(comma)
    assert table.attrs["layout"]["decimal"] == "comma"
    assert table[188.309].item() == pytest.approx(6.59)


def test_svc_sig_reflectance_column_and_overlap():
    table = read_spectrum_table(SPECTRA / "svc-hr1024i_wyken1_049.sig")
    info = table.attrs["layout"]
    assert info["instrument"] == "HI: 1132001 (HR-1024i)" and info["name"] == "wyken1_049.sig"
    assert table[549.5].item() == pytest.approx(7.61)      # 4th column, percent
    assert table.shape == (1, 1 + 1024 - 2)                  # two overlap wavelengths repeated
    s = read_spectra(SPECTRA / "svc-hr1024i_wyken1_049.sig", resample=5)
    assert s["sample"].item() == "wyken1_049.sig"
    assert at(s, 550) == pytest.approx(0.0766, abs=0.002)     # 550.9 nm: 7.66 %


def test_envi_ascii_plot_file_names_from_column_lines():
    s = read_spectra(SPECTRA / "gmu-neon_envi-ascii-plot_tree-species.txt", resample=5)
    assert s["sample"].values.tolist() == ["ACRU", "LIST", "OTHER", "PIEL", "PIPA", "PITA",
                                           "QUGE", "QULA", "QUNI"]
    table = read_spectrum_table(SPECTRA / "gmu-neon_envi-ascii-plot_tree-species.txt")
    assert table.columns[1] == pytest.approx(382.7)        # 0.3827 µm
    assert table.iloc[0, 1] == pytest.approx(0.01202720588235294)


# -- ENVI spectral libraries ---------------------------------------------------------------------

def test_envi_ntnu_pigments_with_per_spectrum_fields():
    lib = read_library(SPECTRA / "ntnu-hyperspectral-pigments_averages.sli")
    assert lib.sizes == {"spectrum": 5, "wavelength": 186}
    assert lib["pname"].values.tolist()[2] == "smalt--very fine--1"
    assert float(lib.wavelength[0]) == pytest.approx(405.369888)
    s = read_spectra(SPECTRA / "ntnu-hyperspectral-pigments_averages.hdr")
    assert s["sample"].values.tolist()[:2] == ["OV_1_1_p1_sh1", "CD_1_3_p2_sh1"]
    assert s["pname"].values.tolist()[4] == "malachite--synthetic--1"


def test_envi_hu_berlin_library_scaled_by_10000_from_the_plot_title():
    lib = read_library(SPECTRA / "hu-berlin_urban-gradient_library.hdr")
    assert lib.sizes == {"spectrum": 75, "wavelength": 177}
    assert lib["spectrum"].values.tolist()[:2] == ["red clay tile 1", "red clay tile 2"]
    assert (float(lib.wavelength[0]), float(lib.wavelength[-1])) == (460.0, 2409.0)  # from µm
    assert lib.attrs["reflectance_scale_factor"] == 10000
    s = read_spectra(SPECTRA / "hu-berlin_urban-gradient_library.sli", resample=10)
    assert layout(s)["scale_evidence"] == "divided by 10000" and s.values.max() < 1


def test_envi_gfz_library_data_file_without_suffix():
    for path in ("gfz-engeomap_gamsberg_field_library", "gfz-engeomap_gamsberg_field_library.hdr"):
        s = read_spectra(SPECTRA / path)
        assert s.sizes == {"measurement": 3, "wavelength": 2151}
        assert s["sample"].values.tolist()[1] == "16_03_12_2_N7_dry_vegetetion"
        assert layout(s)["grid"] == "350–2500 nm by 1 nm"


def test_envi_pml_library_with_sli_hdr_name_and_overlapping_detectors():
    lib = read_library(SPECTRA / "pml-arf_atsc15_targets_avg_all_envi.sli")
    assert lib["spectrum"].values.tolist() == ["Black", "Grey", "White"]
    assert lib.sizes == {"spectrum": 3, "wavelength": 1019}   # 1021 bands, 2 repeated
    assert float(lib.wavelength[0]) == pytest.approx(339.799988)
    white = lib.sel(spectrum="White").sel(wavelength=549.700012, method="nearest")
    assert float(white) == pytest.approx(0.745229)
    assert "not increasing (1009.2 nm is followed by 970.1 nm" in lib.attrs["warnings"][0]
    s = read_spectra(SPECTRA / "pml-arf_atsc15_targets_avg_all_envi.sli.hdr", resample=5)
    assert s.sizes == {"measurement": 3, "wavelength": 436}


def test_envi_usgs_av95_unsorted_wavelengths_and_deleted_channels():
    lib = read_library(SPECTRA / "usgs-splib07_AV95_pigments.sli")
    assert lib.sizes == {"spectrum": 7, "wavelength": 224}
    assert lib["spectrum"].values[0].startswith("Azurite WS316")
    assert np.all(np.diff(lib.wavelength.values) >= 0)      # 687 → 664.3 nm in the header
    assert any("not increasing" in w for w in lib.attrs["warnings"])
    assert int(lib.isnull().sum()) == 5                       # −1.23e34 = deleted
    s = read_spectra(SPECTRA / "usgs-splib07_AV95_pigments.hdr", resample=10)
    assert s.sizes["measurement"] == 7 and "left out" in " ".join(s.attrs["warnings"])


# -- tolerance, resampling, errors -------------------------------------------------------------

def test_negative_noise_is_clipped_with_a_warning(tmp_path):
    text = (SPECTRA / "cie-tcs_colord.sp").read_text()
    noisy = tmp_path / "noisy.sp"
    noisy.write_text(text.replace("TCS15\t0.0\t", "TCS15\t-0.00002\t", 1))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        s = read_spectra(noisy)
    assert at(s, 360, 14) == 0.0
    assert any("clipped to 0" in str(w.message) for w in caught)
    assert "clipped to 0" in " ".join(s.attrs["warnings"])


def test_resampling_keeps_values_on_the_grid_points():
    s = read_spectra(SPECTRA / "cie-tcs_colord.sp", resample=10)
    assert layout(s)["grid"] == "360–830 nm by 5 nm" and s.sizes["wavelength"] == 48
    assert at(s, 360, 8) == pytest.approx(0.069, abs=1e-9)


def test_errors_name_the_file_and_line(tmp_path):
    short = tmp_path / "short.sp"
    short.write_text((SPECTRA / "cie-tcs_colord.sp").read_text().replace("\t0.069", "", 1))
    with pytest.raises(SpectralError, match=r"short\.sp: line 23: 95 values for the 96 fields"):
        read_spectra(short)
    bad = tmp_path / "bad.asd.txt"
    bad.write_text("Wavelength;x\n350; 0.5\n351; 0.5\n352; n/a\n")
    with pytest.raises(SpectralError, match=r"bad\.asd\.txt: line 4: not numbers"):
        read_spectra(bad)


# -- sources and fuzzing -------------------------------------------------------------------------

#: file → (format, institution or manufacturer that made the data)
SOURCES = {
    "xrite-digital-colour-checker.txt": ("CGATS", "X-Rite (Spectrolino export)"),
    "argyll_SOtele.sp": ("CGATS", "ArgyllCMS / GretagMacbeth Spectrolino"),
    "argyll_CRT.ccss": ("CGATS", "ArgyllCMS / GretagMacbeth Spectrolino"),
    "cie-tcs_colord.sp": ("CGATS", "CIE (13.3 test colour samples)"),
    "colord_colormunki_reference.ti3": ("CGATS", "Hughski colord / X-Rite ColorMunki"),
    "datacolor_SpyderChecker24.cie": ("CGATS", "Datacolor"),
    "colorchecker_n_ohta.csv": ("text", "N. Ohta (colour-science)"),
    "colorchecker_n_ohta_transposed.csv": ("text", "N. Ohta (colour-science)"),
    "asd-fieldspec_ribb00001.asd.txt": ("text", "ASD FieldSpec (HU Berlin EnMAP-Box)"),
    "ecostress_jhu.becknic.vegetation.trees.conifers.solid.conifer.spectrum.txt":
        ("text", "Johns Hopkins University"),
    "ecostress_jpl.nicolet.mineral.silicate.phyllosilicate.coarse.ps21a.spectrum.txt":
        ("text", "NASA JPL"),
    "ecostress_usgs.perknic.rock.igneous.felsic.solid.rhy149.spectrum.txt":
        ("text", "USGS (ECOSTRESS)"),
    "usgs-splib07a_Brilliant(Hansa)yellowGDS785_ASDFRa_AREF.txt":
        ("text", "USGS Spectroscopy Laboratory"),
    "usgs-s07_ASD_Wavelengths_ASD_0.35-2.5_microns_2151_ch.txt":
        ("text", "USGS Spectroscopy Laboratory"),
    "oceanoptics-hr2000_DH-3PlusCalLight-DeuteriumHalogen_HRD10391_13-38-32-533.txt":
        ("text", "Ocean Optics HR2000+"),
    "gmu-neon_envi-ascii-plot_tree-species.txt": ("text", "George Mason University / NEON"),
    "svc-hr1024i_wyken1_049.sig": ("text", "Spectra Vista HR-1024i (PML / NERC-ARF)"),
    "ntnu-hyperspectral-pigments_averages.sli": ("ENVI", "NTNU (H. Deborah)"),
    "hu-berlin_urban-gradient_library.sli": ("ENVI", "Humboldt-Universität zu Berlin"),
    "gfz-engeomap_gamsberg_field_library": ("ENVI", "GFZ Potsdam (EnGeoMAP)"),
    "usgs-splib07_AV95_pigments.sli": ("ENVI", "USGS Spectroscopy Laboratory"),
    "pml-arf_atsc15_targets_avg_all_envi.sli": ("ENVI", "Plymouth Marine Laboratory (NERC-ARF)"),
}
MINIMUM = {"CGATS": 5, "text": 5, "ENVI": 5}


def test_every_file_is_listed_and_each_format_has_its_sources():
    files = {p.name for p in SPECTRA.iterdir() if p.suffix != ".hdr"}
    assert files == set(SOURCES)
    for fmt, minimum in MINIMUM.items():
        sources = {src for f, src in SOURCES.values() if f == fmt}
        assert len(sources) >= minimum, (fmt, sorted(sources))


def _variants(raw: bytes, suffix: str):
    yield "truncated", raw[: len(raw) // 2]
    yield "truncated-early", raw[: max(1, len(raw) // 20)]
    yield "utf-16", raw.decode("utf-8", "replace").encode("utf-16")
    yield "cp1252", raw.decode("utf-8", "replace").encode("cp1252", "replace")
    if suffix in (".csv", ".txt", ".sp", ".ti3", ".cie", ".ccss", ".sig"):
        lines = raw.decode("utf-8", "replace").splitlines()
        yield "reversed-fields", "\n".join("\t".join(ln.split()[::-1]) for ln in lines).encode()


@pytest.mark.parametrize("name", sorted(p.name for p in SPECTRA.iterdir()))
def test_fuzzed_files_give_values_or_an_echoes_error(name, tmp_path):
    path = SPECTRA / name
    for kind, data in _variants(path.read_bytes(), path.suffix):
        bad = tmp_path / f"{kind}{path.suffix}"
        bad.write_bytes(data)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                read_spectra(bad)
        except EchoesError as exc:
            assert str(bad) in str(exc), (kind, str(exc)[:200])
