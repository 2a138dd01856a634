"""Image cubes: ENVI (header parsed with Spectral Python, raw data read by rows), multi-page TIFF
stacks (tifffile), NetCDF and Zarr, read as ``reflectance(y, x, band)`` with a ``wavelength``
coordinate (nm), lazily dask-chunked when asked."""

from __future__ import annotations

from pathlib import Path

import dask.array as da
import numpy as np
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


def auto_chunks(shape: tuple, itemsize: int, chunks):
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
    c = auto_chunks(shape, dtype.itemsize, chunks)
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
    c = auto_chunks(cube.shape, cube.dtype.itemsize, chunks)
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
