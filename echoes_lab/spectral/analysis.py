"""Computations on a cube: PCA and MNF out of core, the spectral angle mapper against a library,
per-region statistics."""

from __future__ import annotations

from pathlib import Path

import dask.array as da
import numpy as np
import pandas as pd
import xarray as xr

from echoes_lab.errors import SpectralError
from echoes_lab.spectral.cubes import VAR, auto_chunks
from echoes_lab.spectral.libraries import read_library


def cube_of(obj) -> xr.DataArray:
    arr = obj[VAR] if isinstance(obj, xr.Dataset) else obj
    if (
        not isinstance(arr, xr.DataArray)
        or "band" not in arr.dims
        or "wavelength" not in arr.coords
    ):
        msg = (
            "expected a cube with a 'band' dimension and a 'wavelength' coordinate "
            "(see echoes_lab.read_cube)"
        )
        raise SpectralError(msg)
    return arr


def _pixels(arr: xr.DataArray):
    """(pixels, bands) float64, lazily: whole rows per chunk so the reshape needs no rechunk."""
    arr = arr.transpose("y", "x", "band")
    data = arr.data
    if not isinstance(data, da.Array):
        data = da.from_array(
            np.asarray(data), chunks=auto_chunks(arr.shape, arr.dtype.itemsize, "auto")["y"]
        )
    data = data.rechunk({1: -1, 2: -1})
    return data.reshape(-1, arr.sizes["band"]).astype(np.float64)


def _eigh_sorted(cov: np.ndarray, noise: np.ndarray | None = None):
    import scipy.linalg

    vals, vecs = scipy.linalg.eigh(cov, noise) if noise is not None else np.linalg.eigh(cov)
    order = np.argsort(vals)[::-1]
    vals, vecs = vals[order], vecs[:, order].T
    # deterministic sign: the largest |loading| of every component positive (as scikit-learn's
    # svd_flip)
    signs = np.sign(vecs[np.arange(len(vecs)), np.argmax(np.abs(vecs), axis=1)])
    return vals, vecs * signs[:, None]


def _scores(arr: xr.DataArray, X, mean, vecs, kind: str) -> xr.Dataset:
    k = vecs.shape[0]
    scores = ((X - mean) @ vecs.T).reshape(arr.sizes["y"], arr.sizes["x"], k)
    if not isinstance(arr.data, da.Array):
        scores = scores.compute()
    comp = np.arange(1, k + 1)
    return xr.Dataset(
        {
            "scores": (("y", "x", "component"), scores),
            "components": (("component", "band"), vecs),
            "mean": ("band", mean),
        },
        coords={"y": arr["y"], "x": arr["x"], "component": comp, "wavelength": arr["wavelength"]},
        attrs={"method": kind},
    )


def pca(cube, n_components: int | None = None) -> xr.Dataset:
    """Principal components of a cube's pixel spectra, out of core.

    The mean spectrum is computed in one pass and the covariance
    ``C = (X − μ)ᵀ(X − μ) / (n − 1)`` (Jolliffe 2002, *Principal Component Analysis*, §1.1)
    in a second, chunk by chunk and summed by dask, so memory holds a few chunks and the
    bands × bands matrix, never the cube. ``numpy.linalg.eigh`` gives the components, sorted
    by decreasing variance, signs fixed as scikit-learn does (largest loading positive).

    Returns
    -------
    xarray.Dataset
        ``scores(y, x, component)`` (lazy if the cube is), ``components(component, band)``,
        ``mean(band)``, ``explained_variance(component)`` and ``explained_variance_ratio``.
    """
    arr = cube_of(cube)
    X = _pixels(arr)
    n = X.shape[0]
    mean = X.mean(axis=0).compute()
    Xc = X - mean
    cov = (Xc.T @ Xc).compute() / (n - 1)
    vals, vecs = _eigh_sorted(cov)
    k = n_components or len(vals)
    out = _scores(arr, X, mean, vecs[:k], "PCA")
    out["explained_variance"] = ("component", vals[:k])
    out["explained_variance_ratio"] = ("component", vals[:k] / vals.sum())
    return out


def mnf(cube, n_components: int | None = None) -> xr.Dataset:
    """Minimum noise fraction transform (Green, Berman, Switzer & Craig 1988, IEEE TGRS
    26(1):65–74).

    The noise covariance is estimated from differences of horizontally adjacent pixels,
    ``Σ_N = cov(X[y, x] − X[y, x+1]) / 2`` (the shift-difference estimate of Green et al. §III),
    the signal covariance as in :func:`pca`; the generalised eigenproblem ``Σ v = λ Σ_N v``
    (``scipy.linalg.eigh``) orders components by decreasing signal-to-noise ratio ``λ``.
    Both covariances are accumulated chunk by chunk by dask.

    Returns
    -------
    xarray.Dataset
        As :func:`pca`, with ``snr(component)`` (= λ) instead of explained variance.
    """
    arr = cube_of(cube).transpose("y", "x", "band")
    X = _pixels(arr)
    n = X.shape[0]
    mean = X.mean(axis=0).compute()
    Xc = X - mean
    cube3 = X.reshape(arr.sizes["y"], arr.sizes["x"], arr.sizes["band"])
    diff = (cube3[:, 1:, :] - cube3[:, :-1, :]).reshape(-1, arr.sizes["band"])
    cov, dcov, dmean = da.compute(Xc.T @ Xc, diff.T @ diff, diff.mean(axis=0))
    m = diff.shape[0]
    noise = (dcov - m * np.outer(dmean, dmean)) / (m - 1) / 2.0
    vals, vecs = _eigh_sorted(cov / (n - 1), noise)
    k = n_components or len(vals)
    out = _scores(arr, X, mean, vecs[:k], "MNF")
    out["snr"] = ("component", vals[:k])
    return out


def _library(library, wavelength: np.ndarray) -> pd.DataFrame:
    """Reference spectra as rows (name) × columns (wavelength nm), resampled to the cube's grid."""
    if isinstance(library, (str, Path)) and (
        Path(library).suffix.lower() in (".sli", ".hdr")
        or Path(library).with_suffix(".hdr").is_file()
    ):
        library = read_library(library)
    if isinstance(library, (str, Path)):
        from echoes_lab.spectral.readers import read_spectra

        spectra = read_spectra(library, scale="fraction")
        names = next(
            (c for c in ("sample", "name", "material", "pigment", "measurement")
             if c in spectra.coords), None
        )
        library = pd.DataFrame(
            spectra.values,
            columns=spectra["wavelength"].values,
            index=spectra[names].values if names else None,
        )
    if isinstance(library, xr.DataArray):
        other = [d for d in library.dims if d != "wavelength"][0]
        library = library.transpose(other, "wavelength").to_pandas()
    lib = library.copy()
    lib.columns = [float(c) for c in lib.columns]
    lw = np.array(lib.columns)
    if lw.min() > wavelength.min() + 1e-6 or lw.max() < wavelength.max() - 1e-6:
        msg = (
            f"the reference library's field 'wavelength' covers {lw.min():g}–{lw.max():g} nm "
            f"but the cube's covers {wavelength.min():g}–{wavelength.max():g} nm; the grids "
            "must overlap fully"
        )
        raise SpectralError(msg)
    if lib.isna().any().any():
        msg = f"reference '{lib.index[lib.isna().any(axis=1)][0]}' has missing (NaN) values"
        raise SpectralError(msg)
    return pd.DataFrame(
        [np.interp(wavelength, lw, row) for row in lib.to_numpy()],
        index=lib.index,
        columns=wavelength,
    )


def sam(cube, library, threshold: float | None = None) -> xr.Dataset:
    """Spectral angle mapper: the angle between each pixel's spectrum and each reference.

    ``α = arccos(t·r / (|t| |r|))`` in radians (Kruse et al. 1993, *Remote Sens. Environ.*
    44:145–163); insensitive to overall brightness, so shading does not change the match.
    The library (DataFrame name × wavelength, a DataArray, or a CSV with one row per
    reference) is linearly interpolated to the cube's wavelengths and must cover them.

    Returns
    -------
    xarray.Dataset
        ``angle(y, x, reference)``, ``best(y, x)`` (index of the closest reference, −1 where
        the smallest angle exceeds ``threshold``) with the reference names as attribute
        ``references``, and ``best_angle(y, x)``.
    """
    arr = cube_of(cube).transpose("y", "x", "band")
    lib = _library(library, np.asarray(arr["wavelength"], dtype=float))
    refs = lib.to_numpy()
    refs = refs / np.linalg.norm(refs, axis=1, keepdims=True)
    t = arr.astype("float64")
    norm = np.sqrt((t**2).sum("band"))
    cos = xr.dot(t, xr.DataArray(refs, dims=("reference", "band")), dim="band") / norm
    angle = np.arccos(cos.clip(-1, 1)).assign_coords(reference=[str(i) for i in lib.index])
    best_angle = angle.min("reference")
    best = angle.argmin("reference")
    if threshold is not None:
        best = best.where(best_angle <= threshold, -1)
    return xr.Dataset(
        {"angle": angle, "best": best, "best_angle": best_angle},
        attrs={"references": [str(i) for i in lib.index], "units": "radian"},
    )


def region_stats(cube, mask) -> pd.DataFrame:
    """Per-band statistics of each region: count, mean, std, min, max.

    ``mask`` is a boolean (y, x) array (one region, True inside) or integer labels (0 =
    background, every other value one region), as a numpy array or DataArray.
    Returns a long table: region, wavelength, count, mean, std, min, max.
    """
    arr = cube_of(cube).transpose("y", "x", "band")
    labels = np.asarray(mask)
    if labels.shape != (arr.sizes["y"], arr.sizes["x"]):
        msg = (
            f"the mask is {labels.shape[0]} × {labels.shape[1]} but the cube is "
            f"{arr.sizes['y']} × {arr.sizes['x']} pixels (field 'mask' shape)"
        )
        raise SpectralError(msg)
    labels = labels.astype(int)
    rows = []
    for region in sorted(set(np.unique(labels)) - {0}):
        inside = xr.DataArray(labels == region, dims=("y", "x"))
        sel = arr.where(inside)
        stats = xr.Dataset(
            {
                "count": inside.sum(),
                "mean": sel.mean(("y", "x")),
                "std": sel.std(("y", "x")),
                "min": sel.min(("y", "x")),
                "max": sel.max(("y", "x")),
            }
        ).compute()
        frame = stats.drop_vars([c for c in stats.coords if c != "wavelength"]).to_dataframe()
        frame = frame.reset_index(drop=True).assign(region=int(region))
        frame["count"] = int(stats["count"])
        rows.append(frame)
    if not rows:
        msg = "the mask selects no pixel (every value is 0 or False)"
        raise SpectralError(msg)
    return pd.concat(rows, ignore_index=True)[
        ["region", "wavelength", "count", "mean", "std", "min", "max"]
    ]
