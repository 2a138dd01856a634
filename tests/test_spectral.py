"""echoes_lab.spectral: readers, band tools, PCA/MNF against scikit-learn and theory,
SAM, regions."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import dask.array as da
import numpy as np
import pandas as pd
import pytest
import xarray as xr

import echoes_lab
from echoes_lab.errors import SpectralError
from echoes_lab.spectral import mnf, pca, read_cube, sam


@pytest.fixture(scope="module")
def panel(demo_data):
    return demo_data / "spectral" / "panel.hdr"


@pytest.fixture(scope="module")
def cube(panel):
    return read_cube(panel)


def synthetic(ny=120, nx=80, nb=20, seed=0):
    """Three smooth abundance maps mixing three spectra, plus white noise of
    band-dependent level."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:ny, 0:nx] / 40.0
    abund = np.stack(
        [np.sin(y) ** 2, np.cos(x * 1.3) ** 2, np.sin(0.7 * x + 0.3 * y) ** 2], axis=-1
    )
    spectra = rng.uniform(0.1, 0.9, (3, nb)) * np.array([[3.0], [1.5], [0.7]])
    noise_sd = np.linspace(0.002, 0.02, nb)
    data = abund @ spectra + rng.normal(0, 1, (ny, nx, nb)) * noise_sd
    wl = np.linspace(400, 1000, nb)
    return xr.Dataset({"reflectance": (("y", "x", "band"), data)},
                      coords={"wavelength": ("band", wl)})


def test_reads_the_demo_envi_cube_lazily(cube, panel, demo_data, monkeypatch):
    arr = cube["reflectance"]
    assert arr.dims == ("y", "x", "band") and arr.shape == (48, 64, 12)
    assert isinstance(arr.data, da.Array)
    np.testing.assert_allclose(cube["wavelength"], np.linspace(400, 1000, 12), atol=0.06)
    monkeypatch.setenv("ECHOES_DATA", str(demo_data))
    reference = echoes_lab.open_dataset("demo-spectral")  # SPy's own memory map
    np.testing.assert_array_equal(arr.values, reference["reflectance"].values)
    assert read_cube(panel.with_suffix(".img"), chunks=None)["reflectance"].shape == (48, 64, 12)


@pytest.mark.parametrize("interleave", ["bil", "bip"])
def test_reads_every_envi_interleave(cube, panel, tmp_path, interleave):
    values = cube["reflectance"].values  # (lines, samples, bands)
    order = {"bil": (0, 2, 1), "bip": (0, 1, 2)}[interleave]
    (tmp_path / "c.img").write_bytes(
        np.ascontiguousarray(values.transpose(order)).astype(">f4").tobytes()
    )
    header = panel.read_text().replace("interleave = bsq", f"interleave = {interleave}")
    (tmp_path / "c.hdr").write_text(header.replace("byte order = 0", "byte order = 1"))
    back = read_cube(tmp_path / "c.hdr", chunks={"y": 5, "x": -1, "band": -1})
    np.testing.assert_array_equal(back["reflectance"].values, values)
    np.testing.assert_array_equal(
        back["reflectance"][7:19:3, 4, 2:5].values, values[7:19:3, 4, 2:5]
    )


def test_envi_header_that_disagrees_with_the_file_is_named(panel, tmp_path):
    for name in ("panel.hdr", "panel.img"):
        shutil.copy(panel.parent / name, tmp_path / name)
    hdr = tmp_path / "panel.hdr"
    hdr.write_text(hdr.read_text().replace("lines = 48", "lines = 50"))
    with pytest.raises(SpectralError,
                       match=r"panel.hdr: fields 'lines' × 'samples' × 'bands'.*50 × 64 × 12.*"
                             r"disagree with the size of panel.img \(147456 bytes\)"):
        read_cube(hdr)
    hdr.write_text(hdr.read_text().replace("lines = 50\n", ""))
    with pytest.raises(SpectralError, match="panel.hdr: ENVI header lacks the field 'lines'"):
        read_cube(hdr)
    hdr.write_text(
        (panel.parent / "panel.hdr").read_text().replace("wavelength = {400.0, ", "wavelength = {")
    )
    with pytest.raises(SpectralError,
                       match="panel.hdr: field 'wavelength' lists 11 wavelengths for 12 bands"):
        read_cube(hdr)


def test_tiff_netcdf_and_zarr_round_trip(cube, tmp_path):
    import tifffile

    values = cube["reflectance"].values
    wl = cube["wavelength"].values
    tifffile.imwrite(tmp_path / "stack.tif", np.moveaxis(values, -1, 0),
                     metadata={"wavelength": wl.tolist()})
    tifffile.imwrite(tmp_path / "bare.tif", np.moveaxis(values, -1, 0))
    cube.compute().to_netcdf(tmp_path / "cube.nc", engine="h5netcdf")
    cube.compute().rename(band="wavelength_band").rename(wavelength_band="band").to_zarr(
        tmp_path / "cube.zarr"
    )
    for path, kwargs in [("stack.tif", {}), ("bare.tif", {"wavelengths": wl}), ("cube.nc", {}),
                         ("cube.zarr", {})]:
        back = read_cube(tmp_path / path, **kwargs)
        np.testing.assert_array_equal(back["reflectance"].values, values)
        np.testing.assert_allclose(back["wavelength"].values, wl)
    with pytest.raises(SpectralError, match="bare.tif: no 'wavelengths"):
        read_cube(tmp_path / "bare.tif")
    with pytest.raises(SpectralError, match="lists 3 wavelengths for 12 bands"):
        read_cube(tmp_path / "bare.tif", wavelengths=[1, 2, 3])


def test_band_selection_composites_and_ratios(cube):
    acc = cube.spectral
    assert float(acc.band(655)["wavelength"]) == pytest.approx(672.7)
    with pytest.raises(SpectralError, match="no band within 5 nm of 1200 nm"):
        acc.band(1200, tolerance=5)
    assert acc.select(500, 800).sizes["band"] == 6
    irfc = acc.irfc()
    assert irfc.shape == (48, 64, 3) and float(irfc.min()) >= 0 and float(irfc.max()) <= 1
    assert irfc.attrs["bands_nm"] == pytest.approx([890.9, 672.7, 563.6])
    ir = acc.band(900).values
    lo, hi = np.percentile(ir, [2, 98])
    np.testing.assert_allclose(irfc.values[..., 0], np.clip((ir - lo) / (hi - lo), 0, 1))
    ratio = acc.ratio(900, 650)
    np.testing.assert_allclose(ratio.values, acc.band(900).values / acc.band(650).values, rtol=1e-6)


@pytest.mark.parametrize("chunks", [None, {"y": 7}])
def test_pca_matches_scikit_learn(chunks):
    from sklearn.decomposition import PCA

    ds = synthetic()
    if chunks:
        ds = ds.chunk(chunks)
    ours = pca(ds, n_components=3)
    X = ds["reflectance"].values.reshape(-1, 20)
    ref = PCA(n_components=3, svd_solver="full").fit(X)
    signs = np.sign(np.sum(ours["components"].values * ref.components_, axis=1))
    np.testing.assert_allclose(
        ours["components"].values * signs[:, None], ref.components_, atol=1e-6
    )
    np.testing.assert_allclose(
        ours["explained_variance"].values, ref.explained_variance_, rtol=1e-9
    )
    np.testing.assert_allclose(
        ours["explained_variance_ratio"].values, ref.explained_variance_ratio_, rtol=1e-9
    )
    scores = ours["scores"].values.reshape(-1, 3)
    np.testing.assert_allclose(scores * signs, ref.transform(X), atol=1e-6)


def test_pca_of_the_demo_cube_matches_scikit_learn(cube):
    from sklearn.decomposition import PCA

    ours = cube.spectral.pca(3)
    ref = PCA(3, svd_solver="full").fit(cube["reflectance"].values.reshape(-1, 12).astype(float))
    np.testing.assert_allclose(
        np.abs(ours["components"].values), np.abs(ref.components_), atol=1e-6
    )


def test_mnf_separates_signal_from_noise():
    """Green et al. (1988): with Σ = Σ_S + Σ_N, the generalised eigenvalues are 1 + SNR, so
    directions of pure noise have eigenvalue 1; three mixed sources give three large ones."""
    ds = synthetic(ny=160, nx=160, seed=3).chunk({"y": 40})
    out = mnf(ds)
    snr = out["snr"].values
    assert (snr[:3] > 50).all()
    np.testing.assert_allclose(snr[3:], 1.0, atol=0.05)
    assert out["scores"].shape == (160, 160, 20)


def test_sam_finds_each_region_and_ignores_brightness(cube):
    arr = cube["reflectance"].values.astype(float)
    library = pd.DataFrame(arr[[5, 24, 24], [5, 19, 50]], index=["ground", "blue", "red"],
                           columns=cube["wavelength"].values)
    out = cube.spectral.sam(library, threshold=0.1)
    assert out.attrs["references"] == ["ground", "blue", "red"]
    assert (
        int(out["best"][5, 5]) == 0 and int(out["best"][24, 19]) == 1
        and int(out["best"][24, 50]) == 2
    )
    t, r = arr[30, 30], library.loc["red"].to_numpy()
    expected = np.arccos(t @ r / np.linalg.norm(t) / np.linalg.norm(r))  # Kruse et al. 1993, eq. 1
    assert float(out["angle"].sel(reference="red")[30, 30]) == pytest.approx(expected, abs=1e-6)
    darker = sam(cube.assign(reflectance=cube["reflectance"] * 0.5), library)
    np.testing.assert_allclose(darker["angle"].values, out["angle"].values, atol=1e-6)
    narrow = library.loc[:, library.columns < 900]
    with pytest.raises(SpectralError, match="library's field 'wavelength' covers 400–890.9 nm "
                                            "but the cube's covers 400–1000"):
        cube.spectral.sam(narrow)


def test_region_stats_from_labels(cube):
    labels = np.zeros((48, 64), int)
    labels[20:28, 10:20] = 1
    labels[5:10, 40:60] = 2
    stats = cube.spectral.region_stats(labels)
    assert sorted(stats["region"].unique()) == [1, 2] and len(stats) == 24
    inside = cube["reflectance"].values[5:10, 40:60].reshape(-1, 12)
    two = stats[stats["region"] == 2]
    np.testing.assert_allclose(two["mean"], inside.mean(0), rtol=1e-6)
    np.testing.assert_allclose(two["std"], inside.std(0), rtol=1e-5)
    assert (two["count"] == 100).all()
    with pytest.raises(SpectralError, match="mask is 4 × 4 but the cube is 48 × 64"):
        cube.spectral.region_stats(np.ones((4, 4), bool))


def test_display_helpers_draw(cube):
    import matplotlib

    matplotlib.use("Agg")
    labels = np.zeros((48, 64), int)
    labels[20:28, 10:20] = 1
    ax = cube.spectral.show()
    assert ax.images and ax.images[0].get_array().shape == (48, 64, 3)
    ax = cube.spectral.plot_spectra(labels, names={1: "blue"})
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["blue"]


def test_envi_spectral_library_real_file():
    """The Hyperspectral Pigment Dataset's averaged library (Deborah 2022, CC BY 4.0; see
    tests/data/real/datasets/SOURCES.md): 1,592 spectra × 186 bands, 405.37–995.83 nm, names
    and values as the header and SPy (an independent ENVI reader) give them."""
    import spectral.io.envi as envi

    from echoes_lab.spectral import read_library

    base = Path(__file__).parent / "data" / "real" / "datasets" / "hyperspectral-pigments"
    lib = read_library(base / "__speclib_averages.sli")
    assert lib.shape == (1592, 186)
    assert lib["spectrum"].values[0] == "ER_1_1_p4_sh1"
    assert float(lib["wavelength"][0]) == pytest.approx(405.369888)
    assert float(lib["wavelength"][-1]) == pytest.approx(995.827873)
    spy = envi.open(str(base / "__speclib_averages.hdr"), str(base / "__speclib_averages.sli"))
    np.testing.assert_array_equal(lib.values, spy.spectra)
    with pytest.raises(SpectralError, match="read_library"):
        read_cube(base / "__speclib_averages.hdr")


# -- ENVI spectral libraries: file pairs and their errors ---------------------------------------

REAL_SPECTRA = Path(__file__).parent / "data" / "real" / "spectra"


def test_library_with_sli_hdr_naming_and_missing_parts(tmp_path):
    """ENVI 5 writes ``name.sli.hdr``; a missing data file names what was looked for."""
    from echoes_lab.spectral import read_library

    src = REAL_SPECTRA / "ntnu-hyperspectral-pigments_averages"
    shutil.copy(src.with_suffix(".sli"), tmp_path / "lib.sli")
    shutil.copy(src.with_suffix(".hdr"), tmp_path / "lib.sli.hdr")
    lib = read_library(tmp_path / "lib.sli")
    assert lib.sizes == {"spectrum": 5, "wavelength": 186}
    assert read_library(tmp_path / "lib.sli.hdr").equals(lib)
    (tmp_path / "lib.sli").unlink()
    with pytest.raises(SpectralError, match=r"lib\.sli\.hdr: an ENVI spectral library needs "
                                            r"its data file .*looked for lib\.sli"):
        read_library(tmp_path / "lib.sli.hdr")
    with pytest.raises(SpectralError, match=r"needs its header other\.hdr beside it"):
        read_library(tmp_path / "other.sli")


def test_sam_takes_a_cgats_file_as_library(cube):
    """Reference spectra from a CGATS file (CIE test colour samples) as a SAM library."""
    wl = cube["wavelength"].values
    inside = cube.spectral.select(max(wl.min(), 360), min(wl.max(), 830))
    out = sam(inside, REAL_SPECTRA / "cie-tcs_colord.sp")
    assert out.attrs["references"][:2] == ["TCS01", "TCS02"]
    assert out["angle"].sizes["reference"] == 15


def test_library_refuses_an_image_header_and_reads_unknown_units_as_micrometres(
    tmp_path, panel
):
    """An image's .hdr is sent to read_cube; 'wavelength units = Unknown' with values under 30
    (as ENVI writes for Landsat endmember libraries) is micrometres, with a note."""
    from echoes_lab.spectral import read_library

    with pytest.raises(SpectralError, match=r"an image, not a spectral library.*read_cube"):
        read_library(panel)
    src = REAL_SPECTRA / "ntnu-hyperspectral-pigments_averages"
    text = src.with_suffix(".hdr").read_text()
    start = text.index("wavelength = {")
    end = text.index("}", start)
    wl = [float(w) / 1000 for w in text[start + 14:end].split(",")]
    text = text[:start] + "wavelength = {" + ", ".join(f"{w:.6f}" for w in wl) + text[end:]
    (tmp_path / "lib.hdr").write_text(text.replace("wavelength units = { nm }",
                                                   "wavelength units = Unknown"))
    shutil.copy(src.with_suffix(".sli"), tmp_path / "lib.sli")
    lib = read_library(tmp_path / "lib.sli")
    assert float(lib.wavelength[0]) == pytest.approx(405.37, abs=1e-3)
    assert "read as micrometres" in lib.attrs["warnings"][0]


def test_avasoft_layout_units_line_and_decimal_comma(tmp_path):
    """The layout of an Avantes AvaSoft ASCII export (described in AvaSoft's manual and seen in
    public exports: name line, settings, column names, a units line, a blank line, then
    semicolon-separated rows with decimal commas); the numbers here are made up."""
    from echoes_lab.spectral import read_spectra

    ava = tmp_path / "tile.txt"
    ava.write_text(
        "tile 7\nIntegration time [ms]:  15,000\nAveraging Nr. [scans]: 10\n"
        "Smoothing Nr. [pixels]: 0\nData measured with spectrometer [name]: 1204091U1\n"
        "Wave   ;Sample   ;Dark     ;Reference;Reflectance\n"
        "[nm]   ;[counts] ;[counts] ;[counts] ;[%]\n\n"
        "400,00;20000,0; 2000,0;40000,0;47,36842\n"
        "401,00;21000,0; 2000,0;40000,0;50,00000\n"
        "402,00;22000,0; 2000,0;40000,0;52,63158\n"
    )
    s = read_spectra(ava)
    info = json.loads(s.attrs["layout"])
    assert s["sample"].item() == "tile 7"
    assert info["columns_used"] == ["Reflectance"] and info["decimal"] == "comma"
    assert info["scale_evidence"] == "units line: [%]"
    assert s.sel(wavelength=401).item() == pytest.approx(0.5)
    assert info["header"]["Integration time [ms]"] == "15,000"
