"""Multispectral and hyperspectral image cubes: read, select, composite, PCA/MNF, SAM, regions.

A cube is an xarray Dataset with ``reflectance(y, x, band)`` and a ``wavelength`` coordinate
on ``band`` (nm), lazily dask-chunked when asked, so cubes larger than memory work.
:func:`read_cube` reads ENVI (``.hdr`` + raw; header parsed with Spectral Python), multi-page
TIFF stacks (tifffile), NetCDF and Zarr. The ``ds.spectral`` accessor then offers:

* ``band`` / ``select``: bands by wavelength; ``composite`` / ``irfc``: false-colour images
  (infrared false colour after Cosentino 2014, *Heritage Science* 2:8); ``ratio``;
* ``pca`` and ``mnf``: principal components (Jolliffe 2002) and the minimum noise fraction
  (Green et al. 1988, *IEEE TGRS* 26(1):65–74), computed out of core: the band×band
  covariance is accumulated chunk by chunk by dask, then decomposed with ``numpy.linalg.eigh``;
* ``sam``: the spectral angle mapper against a library of reference spectra (Kruse et al.
  1993, *Remote Sens. Environ.* 44:145–163);
* ``region_stats``: per-band statistics inside a mask or labelled regions;
* ``show`` / ``plot_spectra``: matplotlib display helpers.
"""

from __future__ import annotations

from pathlib import Path

import dask.array as da
import numpy as np
import pandas as pd
import xarray as xr

from echoes_lab.errors import SpectralError

VAR = "reflectance"
CHUNK_BYTES = (
    8 * 2**20
)  # ~8 MiB per chunk: small next to a worker's memory, a few hundred tasks per GiB


# -- reading ----------------------------------------------------------------------------------


class _RawCube:
    """A lazily read ENVI raw file: picklable (only path and layout), so dask workers in other
    processes read their own chunks. Rows are read with plain file reads, not a memory map, so
    a process holds only the rows it asked for."""

    def __init__(self, path: Path, dtype: np.dtype, shape: tuple, interleave: str, offset: int):
        self.path, self.dtype, self.offset, self.interleave = str(path), dtype, offset, interleave
        self.shape, self.ndim = shape, 3

    def _rows(self, start: int, stop: int) -> np.ndarray:
        lines, samples, bands = self.shape
        n, item = stop - start, self.dtype.itemsize
        with open(self.path, "rb") as fh:
            if self.interleave == "bsq":  # one contiguous run of rows per band
                out = np.empty((bands, n, samples), dtype=self.dtype)
                for b in range(bands):
                    fh.seek(self.offset + (b * lines + start) * samples * item)
                    out[b] = np.fromfile(fh, dtype=self.dtype, count=n * samples).reshape(
                        n, samples
                    )
                out = out.transpose(1, 2, 0)
            else:  # bil and bip: the rows are one contiguous block
                fh.seek(self.offset + start * samples * bands * item)
                block = np.fromfile(fh, dtype=self.dtype, count=n * samples * bands)
                out = (
                    block.reshape(n, bands, samples).transpose(0, 2, 1)
                    if self.interleave == "bil"
                    else block.reshape(n, samples, bands)
                )
        return np.ascontiguousarray(out, dtype=self.dtype.newbyteorder("="))

    def __getitem__(self, key):
        key = key if isinstance(key, tuple) else (key,)
        rows = key[0] if key and isinstance(key[0], slice) else slice(None)
        start, stop, step = rows.indices(self.shape[0])
        block = (
            self._rows(start, max(start, stop)) if step == 1 else self._rows(0, self.shape[0])[rows]
        )
        rest = (slice(None),) + tuple(key[1:]) if key and isinstance(key[0], slice) else key
        return block[rest]


def _auto_chunks(shape: tuple, itemsize: int, chunks):
    if chunks is None:
        return None
    if chunks == "auto":
        rows = max(1, CHUNK_BYTES // max(1, shape[1] * shape[2] * itemsize))
        return {"y": min(rows, shape[0]), "x": -1, "band": -1}
    return chunks


def _read_envi(path: Path, chunks) -> xr.Dataset:
    import spectral.io.envi as envi

    hdr = path if path.suffix.lower() == ".hdr" else path.with_suffix(".hdr")
    if not hdr.exists():
        msg = f"{path}: no ENVI header {hdr.name} beside it"
        raise SpectralError(msg)
    try:
        meta = envi.read_envi_header(str(hdr))
    except Exception as exc:  # SPy raises its own FileNotAnEnviHeader and plain errors
        msg = f"{hdr}: not a readable ENVI header ({exc})"
        raise SpectralError(msg) from None
    fields = {}
    for key in ("lines", "samples", "bands", "data type"):
        if key not in meta:
            msg = f"{hdr}: ENVI header lacks the field '{key}'"
            raise SpectralError(msg)
        try:
            fields[key] = int(meta[key])
        except ValueError:
            msg = f"{hdr}: field '{key}' = {meta[key]!r} is not a whole number"
            raise SpectralError(msg) from None
    if str(meta["data type"]) not in envi.envi_to_dtype:
        msg = f"{hdr}: field 'data type' = {meta['data type']} is not an ENVI data type"
        raise SpectralError(msg)
    if str(meta.get("file type", "")).strip().lower() == "envi spectral library":
        msg = (
            f"{hdr}: an ENVI spectral library (spectra, not an image): read it "
            f"with echoes_lab.spectral.read_library({str(hdr)!r})"
        )
        raise SpectralError(msg)
    interleave = str(meta.get("interleave", "bsq")).lower()
    if interleave not in ("bsq", "bil", "bip"):
        msg = f"{hdr}: field 'interleave' = {interleave!r}; expected bsq, bil or bip"
        raise SpectralError(msg)
    dtype = np.dtype(envi.envi_to_dtype[str(meta["data type"])])
    dtype = dtype.newbyteorder(">" if int(meta.get("byte order", 0)) == 1 else "<")
    offset = int(meta.get("header offset", 0))
    raw = next(
        (
            p
            for p in (
                hdr.with_suffix(s) for s in (".img", ".raw", ".dat", ".bsq", ".bil", ".bip", "")
            )
            if p.is_file() and p != hdr
        ),
        None,
    )
    if raw is None:
        msg = f"{hdr}: no raw data file beside it (looked for {hdr.stem}.img/.raw/.dat/...)"
        raise SpectralError(msg)
    shape = (fields["lines"], fields["samples"], fields["bands"])
    expected = offset + dtype.itemsize * int(np.prod(shape))
    size = raw.stat().st_size
    if size != expected:
        msg = (
            f"{hdr}: fields 'lines' × 'samples' × 'bands' × data type {fields['data type']} "
            f"({shape[0]} × {shape[1]} × {shape[2]} × {dtype.itemsize} bytes "
            f"+ header offset {offset} "
            f"= {expected} bytes) disagree with the size of {raw.name} ({size} bytes)"
        )
        raise SpectralError(msg)
    wavelengths = None
    if "wavelength" in meta:
        try:
            wavelengths = np.array(meta["wavelength"], dtype=float)
        except ValueError:
            msg = f"{hdr}: field 'wavelength' holds non-numbers"
            raise SpectralError(msg) from None
        if str(meta.get("wavelength units", "nm")).lower() in (
            "micrometers",
            "um",
            "µm",
            "microns",
        ):
            wavelengths = wavelengths * 1000.0
    source = _RawCube(raw, dtype, shape, interleave, offset)
    c = _auto_chunks(shape, dtype.itemsize, chunks)
    data = (
        da.from_array(
            source,
            chunks=(c["y"], shape[1], shape[2]),
            name=f"envi-{raw.name}-{size}",
            meta=np.empty((0, 0, 0), dtype=dtype.newbyteorder("=")),
        )
        if c
        else source[:, :, :]
    )
    return _as_cube(
        xr.DataArray(data, dims=("y", "x", "band")),
        wavelengths,
        hdr,
        "wavelength",
        {"source": str(raw), "description": str(meta.get("description", ""))},
    )


def _read_tiff(path: Path, wavelengths, chunks) -> xr.Dataset:
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            data = tif.asarray()
            meta = (tif.shaped_metadata or [{}])[0] or {}
    except (tifffile.TiffFileError, OSError) as exc:
        msg = f"{path}: not a readable TIFF ({exc})"
        raise SpectralError(msg) from None
    if data.ndim != 3:
        msg = (f"{path}: a TIFF stack needs 3 dimensions (pages × height × width), "
               f"found shape {data.shape}")
        raise SpectralError(msg)
    # one page per band is the stack convention; a single page with many samples is (y, x, band)
    cube = (
        np.moveaxis(data, 0, -1)
        if data.shape[0] < min(data.shape[1:]) or "wavelength" in meta
        else data
    )
    if wavelengths is None and "wavelength" in meta:
        wavelengths = meta["wavelength"]
    arr = xr.DataArray(cube, dims=("y", "x", "band"))
    ds = _as_cube(
        arr,
        None if wavelengths is None else np.asarray(wavelengths, float),
        path,
        "wavelengths (argument or 'wavelength' in the TIFF metadata)",
        {"source": str(path)},
    )
    c = _auto_chunks(cube.shape, cube.dtype.itemsize, chunks)
    return ds.chunk(c) if c else ds


def _read_xarray(path: Path, variable: str | None, chunks, kind: str) -> xr.Dataset:
    try:
        ds = (
            xr.open_zarr(path, chunks=chunks if chunks is not None else None)
            if kind == "zarr"
            else xr.open_dataset(
                path, engine="h5netcdf", chunks=chunks if chunks is not None else None
            )
        )
    except Exception as exc:  # the backends raise many kinds; the user needs the file named
        msg = f"{path}: cannot be opened as {kind} ({type(exc).__name__}: {exc})"
        raise SpectralError(msg) from None
    if variable is None:
        cands = [v for v in ds.data_vars if ds[v].ndim == 3]
        variable = VAR if VAR in ds.data_vars else (cands[0] if len(cands) == 1 else None)
        if variable is None:
            msg = (
                f"{path}: cannot tell which variable is the cube ({', '.join(ds.data_vars)}); "
                "pass variable="
            )
            raise SpectralError(msg)
    if variable not in ds.data_vars:
        msg = f"{path}: no variable '{variable}' (have {', '.join(ds.data_vars)})"
        raise SpectralError(msg)
    arr = ds[variable]
    if "wavelength" in arr.dims:
        arr = arr.rename(wavelength="band")
    if set(arr.dims) != {"y", "x", "band"}:
        msg = (
            f"{path}: variable '{variable}' has dimensions {arr.dims}; expected y, x and band "
            "(or wavelength)"
        )
        raise SpectralError(msg)
    wl = arr["wavelength"].values if "wavelength" in arr.coords else None
    arr = arr.transpose("y", "x", "band").drop_vars([c for c in arr.coords if c not in ("y", "x")])
    return _as_cube(arr, wl, path, "wavelength", {"source": str(path)})


def _as_cube(arr: xr.DataArray, wavelengths, where, field: str, attrs: dict) -> xr.Dataset:
    if wavelengths is None:
        msg = f"{where}: no '{field}' given; a cube needs the wavelength of every band"
        raise SpectralError(msg)
    wavelengths = np.asarray(wavelengths, dtype=float)
    nb = arr.sizes["band"]
    if wavelengths.shape != (nb,):
        msg = f"{where}: field '{field}' lists {wavelengths.size} wavelengths for {nb} bands"
        raise SpectralError(msg)
    if not np.isfinite(wavelengths).all() or np.any(np.diff(wavelengths) <= 0):
        msg = f"{where}: field '{field}' must be finite and increasing ({wavelengths.tolist()})"
        raise SpectralError(msg)
    arr = arr.assign_coords(
        y=np.arange(arr.sizes["y"]),
        x=np.arange(arr.sizes["x"]),
        wavelength=("band", wavelengths, {"units": "nm"}),
    )
    arr.name = VAR
    arr.attrs.update(attrs)
    return arr.to_dataset()


def read_library(path) -> xr.DataArray:
    """Read an ENVI spectral library (``.sli`` beside its ``.hdr``) as
    ``reflectance(spectrum, wavelength)``, the spectra's names as the ``spectrum`` coordinate.

    In a library the header's ``lines`` count spectra and ``samples`` count bands (ENVI's
    convention; Harris Geospatial, "ENVI Spectral Libraries"), one band-interleaved record per
    spectrum. Usable directly as the ``library`` of :func:`sam`.
    """
    import spectral.io.envi as envi

    path = Path(path).expanduser()
    hdr = path if path.suffix.lower() == ".hdr" else path.with_suffix(".hdr")
    raw = next(
        (p for p in (hdr.with_suffix(s) for s in (".sli", ".lib", ".spl")) if p.is_file()), None
    )
    if not hdr.is_file() or raw is None:
        missing = hdr.name if not hdr.is_file() else f"{hdr.stem}.sli"
        msg = f"{path}: an ENVI spectral library needs {missing} beside it"
        raise SpectralError(msg)
    try:
        meta = envi.read_envi_header(str(hdr))
        lines, samples = int(meta["lines"]), int(meta["samples"])
        dtype = np.dtype(envi.envi_to_dtype[str(meta["data type"])])
    except KeyError as exc:
        msg = f"{hdr}: ENVI header lacks the field {exc}"
        raise SpectralError(msg) from None
    except Exception as exc:  # SPy raises its own errors for unreadable headers
        msg = f"{hdr}: not a readable ENVI header ({exc})"
        raise SpectralError(msg) from None
    dtype = dtype.newbyteorder(">" if int(meta.get("byte order", 0)) == 1 else "<")
    offset = int(meta.get("header offset", 0))
    expected = offset + dtype.itemsize * lines * samples
    if raw.stat().st_size != expected:
        msg = (
            f"{hdr}: fields 'lines' × 'samples' ({lines} × {samples}) × "
            f"{dtype.itemsize} bytes + offset {offset} = {expected} bytes, but "
            f"{raw.name} has {raw.stat().st_size}"
        )
        raise SpectralError(msg)
    values = np.fromfile(raw, dtype=dtype, offset=offset).reshape(lines, samples)
    wavelength = np.asarray(meta.get("wavelength", np.arange(samples)), dtype=float)
    if len(wavelength) != samples:
        msg = f"{hdr}: field 'wavelength' has {len(wavelength)} values for {samples} bands"
        raise SpectralError(msg)
    units = str(meta.get("wavelength units", "nm")).strip("{} ").lower()
    if units in ("micrometers", "um", "µm", "microns"):
        wavelength = wavelength * 1000.0
    names = list(meta.get("spectra names", [f"spectrum {i}" for i in range(lines)]))
    if len(names) != lines:
        msg = f"{hdr}: field 'spectra names' has {len(names)} names for {lines} spectra"
        raise SpectralError(msg)
    return xr.DataArray(
        values.astype(float),
        dims=("spectrum", "wavelength"),
        coords={
            "spectrum": ("spectrum", names),
            "wavelength": ("wavelength", wavelength, {"units": "nm"}),
        },
        name="reflectance",
        attrs={"source": str(raw)},
    )


def read_cube(path, *, wavelengths=None, variable: str | None = None, chunks="auto") -> xr.Dataset:
    """Read an image cube as ``reflectance(y, x, band)`` with a ``wavelength`` coordinate (nm).

    Parameters
    ----------
    path
        ``.hdr`` (or its raw ``.img``) for ENVI, ``.tif``/``.tiff`` for a multi-page stack (one
        page per band), ``.nc`` for NetCDF, ``.zarr`` for a Zarr store.
    wavelengths
        Band wavelengths in nm, for TIFF stacks that do not carry them in their metadata.
    variable
        The cube's variable in a NetCDF/Zarr file with several.
    chunks
        ``"auto"`` (default): dask chunks of whole rows, about 8 MiB each, read lazily, so a
        cube larger than memory can be processed; ``None``: read into memory; or a dict.

    Raises
    ------
    SpectralError
        An ENVI header whose lines × samples × bands disagree with the raw file's size, a
        missing field, a wavelength list of the wrong length; the message names file and field.
    """
    path = Path(path).expanduser()
    if not path.exists():
        msg = f"{path}: no such file"
        raise SpectralError(msg)
    suffix = path.suffix.lower()
    if suffix == ".sli":
        msg = (
            f"{path}: an ENVI spectral library (spectra, not an image): read it "
            f"with echoes_lab.spectral.read_library({str(path)!r})"
        )
        raise SpectralError(msg)
    if suffix in (".hdr", ".img", ".raw", ".dat", ".bsq", ".bil", ".bip"):
        ds = _read_envi(path, chunks)
        if wavelengths is not None:
            ds = ds.assign_coords(
                wavelength=("band", np.asarray(wavelengths, float), {"units": "nm"})
            )
        return ds
    if suffix in (".tif", ".tiff"):
        return _read_tiff(path, wavelengths, chunks)
    if suffix in (".nc", ".nc4", ".h5", ".netcdf"):
        return _read_xarray(path, variable, chunks, "netcdf")
    if suffix == ".zarr" or (path / "zarr.json").exists() or (path / ".zgroup").exists():
        return _read_xarray(path, variable, chunks, "zarr")
    msg = f"{path}: unknown cube format '{suffix}' (ENVI .hdr, TIFF, NetCDF .nc or Zarr .zarr)"
    raise SpectralError(msg)


def read_envi(paths, chunks=None) -> xr.Dataset:
    """Catalogue loader for an ENVI pair (``files`` lists the .hdr and the raw file)."""
    hdr = next(Path(p) for p in paths if str(p).lower().endswith(".hdr"))
    return read_cube(hdr, chunks=chunks)


# -- computations on a cube -------------------------------------------------------------------


def _cube(obj) -> xr.DataArray:
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
            np.asarray(data), chunks=_auto_chunks(arr.shape, arr.dtype.itemsize, "auto")["y"]
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
    arr = _cube(cube)
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
    arr = _cube(cube).transpose("y", "x", "band")
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
    if isinstance(library, (str, Path)) and Path(library).suffix.lower() in (".sli", ".hdr"):
        library = read_library(library)
    if isinstance(library, (str, Path)):
        from echoes_lab.colour import read_spectra

        spectra = read_spectra(library, scale="fraction")
        names = next(
            (c for c in ("name", "material", "pigment", "measurement") if c in spectra.coords), None
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
    arr = _cube(cube).transpose("y", "x", "band")
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
    arr = _cube(cube).transpose("y", "x", "band")
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


def _stretch(img: np.ndarray, low: float, high: float) -> np.ndarray:
    """Percentile contrast stretch to 0–1, each channel separately."""
    img = np.asarray(img, dtype=float)
    flat = img.reshape(-1, img.shape[-1]) if img.ndim == 3 else img.reshape(-1, 1)
    lo, hi = np.nanpercentile(flat, [low, high], axis=0)
    out = (img - lo) / np.where(hi > lo, hi - lo, 1.0)
    return np.clip(out, 0, 1)


# -- the accessor -----------------------------------------------------------------------------


class SpectralAccessor:
    """``ds.spectral``: analyses of a cube Dataset from :func:`read_cube`."""

    def __init__(self, ds: xr.Dataset):
        self._ds = ds

    @property
    def cube(self) -> xr.DataArray:
        return _cube(self._ds)

    def band(self, wavelength: float, tolerance: float | None = None) -> xr.DataArray:
        """The band nearest ``wavelength`` nm as an image (y, x); refused beyond ``tolerance``
        nm."""
        arr = self.cube
        wl = np.asarray(arr["wavelength"], dtype=float)
        i = int(np.argmin(np.abs(wl - wavelength)))
        if tolerance is not None and abs(wl[i] - wavelength) > tolerance:
            msg = f"no band within {tolerance:g} nm of {wavelength:g} nm (nearest {wl[i]:g} nm)"
            raise SpectralError(msg)
        return arr.isel(band=i)

    def select(self, start: float, stop: float) -> xr.Dataset:
        """The bands with ``start ≤ wavelength ≤ stop`` nm."""
        wl = np.asarray(self.cube["wavelength"], dtype=float)
        keep = (wl >= start) & (wl <= stop)
        if not keep.any():
            msg = f"no band between {start:g} and {stop:g} nm (bands {wl.min():g}–{wl.max():g} nm)"
            raise SpectralError(msg)
        return self._ds.isel(band=np.nonzero(keep)[0])

    def composite(self, red: float, green: float, blue: float, stretch=(2, 98)) -> xr.DataArray:
        """A three-band false-colour image (y, x, rgb) in 0–1 from the bands nearest the
        wavelengths,
        each channel stretched between the given percentiles."""
        rgb = np.stack([np.asarray(self.band(w)) for w in (red, green, blue)], axis=-1)
        out = xr.DataArray(
            _stretch(rgb, *stretch),
            dims=("y", "x", "rgb"),
            coords={"y": self.cube["y"], "x": self.cube["x"], "rgb": ["R", "G", "B"]},
        )
        out.attrs["bands_nm"] = [float(self.band(w)["wavelength"]) for w in (red, green, blue)]
        return out

    def irfc(
        self, infrared: float = 900.0, red: float = 650.0, green: float = 550.0, stretch=(2, 98)
    ) -> xr.DataArray:
        """Infrared false colour: infrared → red, red → green, green → blue (Cosentino 2014,
        *Heritage Science* 2:8), which tells apart pigments that look alike in the visible."""
        return self.composite(infrared, red, green, stretch)

    def ratio(self, numerator: float, denominator: float) -> xr.DataArray:
        """Band ratio image ``R(λ₁) / R(λ₂)``; NaN where the denominator is 0."""
        num, den = self.band(numerator), self.band(denominator)
        return (num / den.where(den != 0)).rename(
            f"ratio {float(num['wavelength']):g}/{float(den['wavelength']):g}"
        )

    def pca(self, n_components: int | None = None) -> xr.Dataset:
        """Principal components (see :func:`pca`)."""
        return pca(self._ds, n_components)

    def mnf(self, n_components: int | None = None) -> xr.Dataset:
        """Minimum noise fraction (see :func:`mnf`)."""
        return mnf(self._ds, n_components)

    def sam(self, library, threshold: float | None = None) -> xr.Dataset:
        """Spectral angle mapper (see :func:`sam`)."""
        return sam(self._ds, library, threshold)

    def region_stats(self, mask) -> pd.DataFrame:
        """Per-band statistics inside a mask or labels (see :func:`region_stats`)."""
        return region_stats(self._ds, mask)

    def show(self, image=None, ax=None, stretch=(2, 98), title: str | None = None, **kwargs):
        """Display an image: an (y, x, rgb) composite, an (y, x) band, or by default an IRFC."""
        import matplotlib.pyplot as plt

        image = self.irfc() if image is None else image
        ax = ax or plt.subplots(figsize=(6, 6 * self.cube.sizes["y"] / self.cube.sizes["x"]))[1]
        values = np.asarray(image)
        if values.ndim == 2:
            kwargs.setdefault("cmap", "gray")
            values = _stretch(values, *stretch)
        ax.imshow(values, **kwargs)
        ax.set_axis_off()
        if title or getattr(image, "name", None):
            ax.set_title(title or image.name)
        return ax

    def plot_spectra(self, mask, ax=None, names: dict | None = None):
        """Mean spectrum ± one standard deviation of every region of ``mask`` against wavelength."""
        import matplotlib.pyplot as plt

        stats = self.region_stats(mask)
        ax = ax or plt.subplots(figsize=(8, 4))[1]
        for region, g in stats.groupby("region"):
            label = (names or {}).get(region, f"region {region}")
            ax.plot(g["wavelength"], g["mean"], label=label)
            ax.fill_between(g["wavelength"], g["mean"] - g["std"], g["mean"] + g["std"], alpha=0.2)
        ax.set_xlabel("wavelength (nm)")
        ax.set_ylabel("reflectance")
        ax.legend(fontsize="small")
        return ax
