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

Point spectra (one reflectance curve per measurement) come from :func:`read_spectra`, which
detects the layout of instrument exports and reference libraries — CGATS.17 and ArgyllCMS,
Ocean Optics SpectraSuite/OceanView, ASD, Avantes AvaSoft, Spectra Vista ``.sig``,
ECOSTRESS/ASTER and USGS splib ASCII, ENVI ASCII plots and ENVI spectral libraries
(:func:`read_library`) — says what it detected in ``attrs["layout"]`` and validates the values
with :func:`echoes_lab.colour.read_spectra`; :func:`read_spectrum_table` gives the raw values
of exports that are not reflectance (counts, radiance).
"""

from __future__ import annotations

import re
import warnings
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


def _library_pair(path: Path) -> tuple[Path, Path | None, list[Path]]:
    """The header and the data file of an ENVI spectral library, whichever of them is given.

    Libraries come as ``name.hdr`` + ``name.sli`` (ENVI), ``name.sli`` + ``name.sli.hdr``
    (ENVI 5 and several tools), or a data file without any suffix beside ``name.hdr``
    (EnGeoMAP, GFZ Potsdam)."""
    data_suffixes = (".sli", ".lib", ".spl", "")
    if path.suffix.lower() == ".hdr":
        hdr = path
        stem = path.with_suffix("")
        cands = [stem] if stem.suffix.lower() in data_suffixes[:-1] else []
        cands += [path.with_suffix(s) for s in data_suffixes]
    else:
        cands = [path]
        hdr = next(
            (h for h in (path.with_suffix(".hdr"), Path(f"{path}.hdr")) if h.is_file()),
            path.with_suffix(".hdr"),
        )
    if not hdr.is_file():
        msg = f"{path}: an ENVI spectral library needs its header {hdr.name} beside it"
        raise SpectralError(msg)
    raw = next((p for p in cands if p != hdr and p.is_file()), None)
    return hdr, raw, [p for p in cands if p != hdr]


def _scale_factor(meta: dict) -> float | None:
    """The number the stored values are divided by to give reflectance 0–1: the header's
    ``reflectance scale factor`` or, as the EnMAP-Box writes it, ``[*10000]`` in the
    ``z plot titles``."""
    import re

    value = meta.get("reflectance scale factor")
    if value is None:
        titles = meta.get("z plot titles", "")
        titles = " ".join(titles) if isinstance(titles, list) else str(titles)
        found = re.search(r"\[\s*\*\s*(\d+(?:\.\d+)?)\s*\]", titles)
        value = found.group(1) if found else None
    try:
        factor = float(value) if value is not None else None
    except ValueError:
        return None
    return factor if factor and np.isfinite(factor) and factor > 0 else None


def read_library(path) -> xr.DataArray:
    """Read an ENVI spectral library (``.sli`` beside its ``.hdr``) as
    ``reflectance(spectrum, wavelength)``, the spectra's names as the ``spectrum`` coordinate.

    In a library the header's ``lines`` count spectra and ``samples`` count bands (ENVI's
    convention; Harris Geospatial, "ENVI Spectral Libraries"), one band-interleaved record per
    spectrum. Usable directly as the ``library`` of :func:`sam`.

    What real libraries do, and what happens here (each recorded in ``attrs["warnings"]``):

    * the data file is ``name.sli``, ``name.lib``, or has no suffix; the header is
      ``name.hdr`` or ``name.sli.hdr``;
    * ``data ignore value`` (USGS writes −1.23e34 for deleted channels) becomes NaN;
    * wavelengths that are not increasing (AVIRIS's four spectrometers overlap, so the USGS
      ``s07_AV95`` grid goes back from 687 to 664 nm) are sorted, so interpolation and band
      selection are right;
    * per-spectrum header lists (e.g. ``pname``, ``pnumber``) become coordinates;
    * micrometres are converted to nm; the ``reflectance scale factor`` is kept in ``attrs``.
    """
    import spectral.io.envi as envi

    path = Path(path).expanduser()
    hdr, raw, looked = _library_pair(path)
    try:
        meta = envi.read_envi_header(str(hdr))
        lines, samples = int(meta["lines"]), int(meta["samples"])
        dtype = np.dtype(envi.envi_to_dtype[str(meta["data type"])])
        byte_order = int(meta.get("byte order", 0))
        offset = int(meta.get("header offset", 0))
        bands = int(meta.get("bands", 1))
    except KeyError as exc:
        msg = f"{hdr}: ENVI header lacks the field {exc} (or gives an unknown data type)"
        raise SpectralError(msg) from None
    except Exception as exc:  # SPy raises its own errors for unreadable headers
        msg = f"{hdr}: not a readable ENVI header ({type(exc).__name__}: {str(exc)[:120]})"
        raise SpectralError(msg) from None
    dtype = dtype.newbyteorder(">" if byte_order == 1 else "<")
    file_type = str(meta.get("file type", "")).strip().lower()
    if file_type and file_type != "envi spectral library" or bands != 1:
        msg = (
            f"{hdr}: field 'file type' = {meta.get('file type')!r}, 'bands' = "
            f"{meta.get('bands')}: an image, not a spectral library; read it with "
            f"echoes_lab.read_cube({str(hdr)!r})"
        )
        raise SpectralError(msg)
    if raw is None:
        msg = (
            f"{path}: an ENVI spectral library needs its data file beside the header "
            f"(looked for {', '.join(p.name for p in looked)})"
        )
        raise SpectralError(msg)
    expected = offset + dtype.itemsize * lines * samples
    if raw.stat().st_size != expected:
        msg = (
            f"{hdr}: fields 'lines' × 'samples' ({lines} × {samples}) × "
            f"{dtype.itemsize} bytes + offset {offset} = {expected} bytes, but "
            f"{raw.name} has {raw.stat().st_size}"
        )
        raise SpectralError(msg)
    values = np.fromfile(raw, dtype=dtype, offset=offset).reshape(lines, samples).astype(float)
    notes: list[str] = []
    try:
        wavelength = np.asarray(meta.get("wavelength", np.arange(samples)), dtype=float)
    except ValueError:
        msg = f"{hdr}: field 'wavelength' holds non-numbers"
        raise SpectralError(msg) from None
    if len(wavelength) != samples:
        msg = f"{hdr}: field 'wavelength' has {len(wavelength)} values for {samples} bands"
        raise SpectralError(msg)
    units = meta.get("wavelength units", "nm")
    units = str(units[0] if isinstance(units, list) and units else units).strip("{} ").lower()
    if units in ("micrometers", "micrometer", "um", "µm", "microns") or (
        units in ("unknown", "") and samples and 0 < np.nanmax(wavelength) < 30
    ):
        if units in ("unknown", ""):
            notes.append(f"'wavelength units' = {units or 'missing'!r} but the values are under "
                         "30: read as micrometres")
        wavelength = np.round(wavelength * 1000.0, 3)  # float32 µm: 0.35100001
    ignore = meta.get("data ignore value")
    try:
        ignore = float(ignore) if ignore is not None else None
    except ValueError:
        ignore = None
    if ignore is not None and np.isfinite(ignore):
        hit = np.isclose(values, ignore, rtol=1e-6)
        if hit.any():
            values[hit] = np.nan
            notes.append(f"{int(hit.sum())} value(s) equal to the 'data ignore value' "
                         f"{ignore:g} read as missing (NaN)")
    if np.any(np.diff(wavelength) <= 0):
        i = int(np.argmax(np.diff(wavelength) <= 0))
        notes.append(
            f"field 'wavelength' is not increasing ({wavelength[i]:g} nm is followed by "
            f"{wavelength[i + 1]:g} nm: overlapping detectors); bands sorted by wavelength"
        )
        order = np.argsort(wavelength, kind="stable")
        wavelength, values = wavelength[order], values[:, order]
    repeated = np.concatenate([[False], np.diff(wavelength) == 0])
    if repeated.any():  # detectors overlapping on the same wavelength: keep the first reading
        notes.append(f"{int(repeated.sum())} repeated wavelength(s) "
                     f"({', '.join(f'{w:g}' for w in wavelength[repeated][:3])} nm): first kept")
        wavelength, values = wavelength[~repeated], values[:, ~repeated]
    names = [str(n).strip() for n in meta.get("spectra names", [])] or [
        f"spectrum {i}" for i in range(lines)
    ]
    if len(names) != lines:
        msg = f"{hdr}: field 'spectra names' has {len(names)} names for {lines} spectra"
        raise SpectralError(msg)
    coords = {
        "spectrum": ("spectrum", names),
        "wavelength": ("wavelength", wavelength, {"units": "nm"}),
    }
    skip = {"spectra names", "wavelength", "fwhm", "bbl", "band names"}
    for key, value in meta.items():
        if key not in skip and isinstance(value, list) and len(value) == lines and lines > 1:
            coords[key.replace(" ", "_")] = ("spectrum", [str(v).strip() for v in value])
    attrs = {"source": str(raw), "header": str(hdr), "format": "ENVI spectral library",
             "warnings": notes}
    factor = _scale_factor(meta)
    if factor is not None:
        attrs["reflectance_scale_factor"] = factor
    return xr.DataArray(values, dims=("spectrum", "wavelength"), coords=coords,
                        name="reflectance", attrs=attrs)


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


# -- point spectra: instrument exports and reference libraries --------------------------------

#: the marker SpectraSuite and OceanView (Ocean Optics / Ocean Insight) write between their
#: header and the data
_OCEAN_MARKER = re.compile(r"^>>>>>Begin (?:Processed )?Spectral Data<<<<<$")
#: CGATS field names that hold one wavelength: X-Rite ``nm380``, CGATS.17 / i1Profiler
#: ``SPECTRAL_NM380`` and ``SPECTRAL_380``, ArgyllCMS ``SPEC_380``, and ``R380``
_CGATS_SPECTRAL = re.compile(
    r"^(?:SPECTRAL_NM_?|SPECTRAL_|SPEC_|NM_?|R_?)(\d{3,4}(?:\.\d+)?)$", re.IGNORECASE
)
#: first tokens of the CGATS family: CGATS.17, ArgyllCMS (CTI1/2/3, SPECT, CCSS, CMF), IT8
_CGATS_IDS = ("CGATS", "CTI1", "CTI2", "CTI3", "SPECT", "CCSS", "CCMX", "CMF", "IT8", "ISO28178")
#: USGS Spectral Library (splib06/07) marks deleted channels with this value
_USGS_DELETED = -1.23e34
#: the title line of a USGS splib ASCII file: "splib07a Record=18386: …", "s07_ASD Record=19: …"
_USGS_TITLE = r"^\s*(?:s?splib\d\d\w*|s\d\d_\w+)\s+Record=\d+:"
_NUMBER = re.compile(r"^[-+]?(?:\d+(?:[.,]\d*)?|[.,]\d+)(?:[eE][-+]?\d+)?$")
_MICRONS = ("micrometer", "micron", "µm", "um)", "(um")


def _number(token: str, decimal_comma: bool) -> float:
    return float(token.replace(",", ".") if decimal_comma else token)


def _text(path: Path) -> tuple[str, str]:
    """The file's text and the encoding it was read with."""
    from echoes_lab.collections.metadata import guard_table

    guard_table(path)
    raw = path.read_bytes()
    if raw[:2] in (b"\xff\xfe", b"\xfe\xff"):  # UTF-16 with a byte-order mark (Windows tools)
        try:
            return raw.decode("utf-16"), "utf-16"
        except UnicodeDecodeError:
            msg = f"{path}: starts as UTF-16 but does not decode; re-save it as UTF-8"
            raise SpectralError(msg) from None
    if b"\x00" in raw[:4096]:
        msg = (
            f"{path}: binary, not a text export (UTF-16 or a raw data file?); an ENVI "
            "spectral library is read from its .hdr + .sli pair, a UTF-16 export must be "
            "re-saved as UTF-8"
        )
        raise SpectralError(msg)
    try:
        return raw.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError:  # instrument software on Windows writes its code page
        return raw.decode("cp1252", errors="replace"), "cp1252 (not UTF-8)"


def _cgats(path: Path, text: str) -> tuple[pd.DataFrame, dict]:
    """A CGATS.17 file (ANSI CGATS.17-2009; also ArgyllCMS ``.ti3``/``.sp``/``.ccss`` and
    X-Rite exports): keywords, ``BEGIN_DATA_FORMAT`` field names, ``BEGIN_DATA`` rows."""
    import shlex

    keywords: dict[str, str] = {}
    fields: list[str] = []
    rows: list[tuple[int, list[str]]] = []
    seen: list[str] = []
    state = "header"
    lines = text.splitlines()
    for n, line in enumerate(lines, start=1):
        body = line.split("#", 1)[0].strip() if not line.lstrip().startswith('"') else line
        if not body:
            continue
        word = body.split(None, 1)[0].upper()
        if word == "BEGIN_DATA_FORMAT":
            state = "format"
        elif word == "END_DATA_FORMAT":
            state = "header"
        elif word == "BEGIN_DATA":
            state = "data"
        elif word == "END_DATA":
            if fields and any(_CGATS_SPECTRAL.match(f) for f in fields):
                break
            seen += [f for f in fields if f not in seen]
            fields, rows, state = [], [], "header"  # a table without spectra: try the next
        elif state == "format":
            fields += body.split()
        elif state == "data":
            try:
                rows.append((n, shlex.split(line, comments=True, posix=True)))
            except ValueError:
                msg = f"{path}: line {n}: unbalanced quotes in a data row ({body[:60]!r})"
                raise SpectralError(msg) from None
        elif " " in body or "\t" in body:
            key, _, value = body.partition(" ") if " " in body else body.partition("\t")
            keywords.setdefault(key.strip(), value.strip().strip('"'))
    spectral = [(i, f, float(m.group(1))) for i, f in enumerate(fields)
                if (m := _CGATS_SPECTRAL.match(f))]
    if not spectral:
        msg = (
            f"{path}: a CGATS file without spectral fields (nm380, SPECTRAL_NM380, SPEC_380 …)"
            + (f"; its fields are {', '.join((fields or seen)[:12])}" if fields or seen else "")
            + "; export the measurements with spectral data"
        )
        raise SpectralError(msg)
    if not rows:
        msg = f"{path}: no BEGIN_DATA … END_DATA rows under the spectral fields"
        raise SpectralError(msg)
    decimal_comma = any("," in t and _NUMBER.match(t) for _, r in rows[:5] for t in r)
    name_field = next((f for f in ("SAMPLE_NAME", "SampleName", "SAMPLE_ID", "SampleID")
                       if f in fields), None)
    records = []
    for n, row in rows:
        if len(row) != len(fields):
            msg = (
                f"{path}: line {n}: {len(row)} values for the {len(fields)} fields of "
                "BEGIN_DATA_FORMAT (a value with a space must be quoted)"
            )
            raise SpectralError(msg)
        rec = {"sample": row[fields.index(name_field)] if name_field else str(len(records) + 1)}
        for i, f, wl in spectral:
            try:
                rec[wl] = _number(row[i], decimal_comma)
            except ValueError:
                msg = f"{path}: line {n}, field '{f}': not a number ({row[i][:30]!r})"
                raise SpectralError(msg) from None
        records.append(rec)
    try:  # ArgyllCMS rounds field names (SPEC_353 for 353.33 nm); its keywords are exact
        start, end = float(keywords["SPECTRAL_START_NM"]), float(keywords["SPECTRAL_END_NM"])
        bands = int(float(keywords["SPECTRAL_BANDS"]))
    except (KeyError, ValueError):
        bands = 0
    if bands == len(spectral) > 1:
        exact = np.linspace(start, end, bands)
        if np.allclose(exact, [wl for *_, wl in spectral], atol=0.5):
            for rec in records:
                for (_, _, wl), w in zip(spectral, exact, strict=True):
                    rec[float(w)] = rec.pop(wl)
    if not name_field and len(records) == 1 and keywords.get("DESCRIPTOR"):
        records[0]["sample"] = keywords["DESCRIPTOR"]
    norm = keywords.get("SPECTRAL_NORM")
    info = {
        "format": f"CGATS ({_cgats_kind(lines)})",
        "fields": f"{len(spectral)} spectral fields {spectral[0][1]} … {spectral[-1][1]}",
        "first_data_line": rows[0][0],
        "keywords": {k: keywords[k] for k in list(keywords)[:12]},
    }
    if decimal_comma:
        info["decimal"] = "comma"
    if norm:
        try:
            info["scale"] = "percent" if float(norm) == 100 else "fraction"
            info["scale_evidence"] = f"SPECTRAL_NORM {norm}"
        except ValueError:
            pass
    return pd.DataFrame(records), info


def _cgats_kind(lines: list[str]) -> str:
    word = next((ln.split()[0] for ln in lines if ln.strip()), "CGATS")
    return {"LGOROWLENGTH": "GretagMacbeth/X-Rite LGO", "CTI3": "ArgyllCMS CTI3",
            "SPECT": "ArgyllCMS SPECT", "CCSS": "ArgyllCMS CCSS"}.get(word.upper(), word)


def _key_values(lines: list[str], first: str = ":") -> dict[str, str]:
    out = {}
    second = "=" if first == ":" else ":"
    for line in lines:
        key, sep, value = line.partition(first)
        if not sep:
            key, sep, value = line.partition(second)
        if sep and key.strip() and len(key) < 60:
            out.setdefault(key.strip(), value.strip())
    return out


def _two_columns(path: Path, lines: list[str], start: int, sep: str | None,
                 decimal_comma: bool) -> tuple[np.ndarray, np.ndarray]:
    """Numeric rows from ``start`` (0-based) on: wavelength and one or more values."""
    rows, where = [], []
    for n in range(start, len(lines)):
        body = lines[n].strip()
        if not body:
            continue
        parts = [t.strip() for t in (body.split(sep) if sep else body.split())]
        parts = [t for t in parts if t != ""]
        try:
            rows.append([_number(t, decimal_comma) for t in parts])
        except ValueError:
            msg = (
                f"{path}: line {n + 1}: not numbers ({body[:60]!r}); the data block of "
                "this export must hold only wavelength and value columns"
            )
            raise SpectralError(msg) from None
        where.append(n + 1)
    if len(rows) < 3:
        msg = f"{path}: fewer than 3 data lines after the header (line {start})"
        raise SpectralError(msg)
    width = len(rows[0])
    bad = next((i for i, r in enumerate(rows) if len(r) != width), None)
    if bad is not None or width < 2:
        line = where[bad] if bad is not None else where[0]
        msg = (
            f"{path}: line {line}: {len(rows[bad if bad is not None else 0])} values where "
            f"the data block has {width}; expected a wavelength and one value per column"
        )
        raise SpectralError(msg)
    table = np.asarray(rows, dtype=float)
    return table[:, 0], table[:, 1:]


def _separator(lines: list[str]) -> tuple[str | None, bool]:
    """The column separator of numeric data lines and whether decimals use a comma."""
    sample = [ln.strip() for ln in lines if ln.strip()][:50]
    for sep in ("\t", ";"):
        if sample and all(sep in ln for ln in sample):
            comma = any(_NUMBER.match(t.strip()) and "," in t for ln in sample
                        for t in ln.split(sep))
            return sep, comma
    if sample and all("," in ln for ln in sample):
        parts = [ln.split(",") for ln in sample]
        # "400,0.123" is comma-separated; "400 0,123" has a decimal comma
        if all(len(p) >= 2 and all(_NUMBER.match(t.strip()) for t in p) for p in parts) and \
                not any(" " in ln.strip() for ln in sample):
            return ",", False
        return None, True
    return None, False


def _first_numeric(lines: list[str], start: int = 0) -> int | None:
    """Index of the first line of a block of ≥ 3 lines that start with a number."""
    run = 0
    for i in range(start, len(lines)):
        first = re.split(r"[\s;,]+", lines[i].strip(), maxsplit=1)[0] if lines[i].strip() else ""
        if first and _NUMBER.match(first.replace(",", ".")):
            run += 1
            if run == 3:
                return i - 2
        elif lines[i].strip():
            run = 0
    return None


def _point_text(path: Path, text: str) -> tuple[pd.DataFrame, dict] | None:
    """Instrument exports with one row per wavelength: Ocean Optics SpectraSuite/OceanView,
    ECOSTRESS/ASTER library files, USGS splib ASCII, ASD and other two-column exports with
    a header block. ``None`` when the file is a plain table for :func:`colour.read_spectra`."""
    lines = text.splitlines()
    info: dict = {}
    wl_factor = 1.0
    name = path.stem
    head = "\n".join(lines[:40])
    if any(_OCEAN_MARKER.match(ln.strip()) for ln in lines[:200]):
        marker = next(i for i, ln in enumerate(lines) if _OCEAN_MARKER.match(ln.strip()))
        meta = _key_values(lines[1:marker])
        info = {"format": "Ocean Optics SpectraSuite/OceanView", "header_lines": marker + 1}
        for key in ("Spectrometer", "Integration Time (sec)", "Integration Time (usec)",
                    "Scans to average", "Number of Pixels in Spectrum", "Date"):
            if key in meta:
                info[key] = meta[key]
        first = lines[0].strip()
        if first.startswith("Data from "):
            name = first.removeprefix("Data from ").removesuffix(" Node").strip()
        start = marker + 1
    elif re.search(r"^\s*X Units:", head, re.M) and re.search(r"^\s*Y Units:", head, re.M):
        start = _first_numeric(lines)
        if start is None:
            msg = f"{path}: an ECOSTRESS/ASTER library file without data lines"
            raise SpectralError(msg)
        meta = _key_values(lines[:start])
        info = {"format": "ECOSTRESS/ASTER spectral library", "header_lines": start}
        for key in ("Name", "Owner", "Sample No.", "Measurement", "X Units", "Y Units"):
            if key in meta:
                info[key] = meta[key]
        name = meta.get("Name", name)
        if any(u in meta.get("X Units", "").lower() for u in _MICRONS):
            wl_factor = 1000.0
        y_units = meta.get("Y Units", "").lower()
        if "percent" in y_units:
            info["scale"], info["scale_evidence"] = "percent", f"Y Units: {meta['Y Units']}"
    elif lines and lines[0].strip().startswith("/*** Spectra Vista SIG Data ***/"):
        # SVC .sig (Spectra Vista HR-1024i, GER): "key= value" lines, then "data=" and rows
        # of wavelength, reference, target and reflectance in percent (SVC HR-1024i manual)
        start = next((i + 1 for i, ln in enumerate(lines) if ln.strip().startswith("data=")),
                     None)
        if start is None:
            msg = f"{path}: a Spectra Vista .sig file without its 'data=' line"
            raise SpectralError(msg)
        meta = _key_values(lines[1:start - 1], first="=")
        info = {"format": "Spectra Vista (SVC) .sig", "header_lines": start,
                "scale": "percent", "scale_evidence": "SVC .sig: 4th column is reflectance %"}
        for key in ("name", "instrument", "units", "time", "optic"):
            if key in meta:
                info[key] = meta[key]
        wavelength, vals = _two_columns(path, lines, start, None, False)
        if vals.shape[1] != 3:
            msg = (
                f"{path}: line {start + 1}: {vals.shape[1] + 1} columns; an SVC .sig with "
                "reflectance has 4 (wavelength, reference, target, reflectance %)"
            )
            raise SpectralError(msg)
        return _rows_frame(wavelength, vals[:, 2:], [meta.get("name", path.stem)], info)
    elif lines and lines[0].strip().lower() == "envi ascii plot file":
        start = _first_numeric(lines)
        if start is None:
            msg = f"{path}: an ENVI ASCII plot file without data lines"
            raise SpectralError(msg)
        cols = dict(re.findall(r"^\s*Column (\d+):\s*(.*?)\s*$", "\n".join(lines[:start]), re.M))
        wavelength, vals = _two_columns(path, lines, start, None, False)
        names = [cols.get(str(i + 2), f"column {i + 2}") for i in range(vals.shape[1])]
        info = {"format": "ENVI ASCII plot file", "header_lines": start}
        if wavelength.max() < 30:
            wavelength = wavelength * 1000.0
            info["wavelength_units"] = "micrometres (values under 30; converted to nm)"
        return _rows_frame(np.round(wavelength, 3), vals, names, info)
    elif re.match(_USGS_TITLE, lines[0] if lines else ""):
        title = lines[0].strip()
        info = {"format": "USGS Spectral Library ASCII (one value per line)", "title": title}
        if re.search(r"Wavelengths|Bandpass|Resolution", title):
            msg = (
                f"{path}: line 1 ({title!r}): this file holds the library's wavelengths or "
                "bandpasses, not a spectrum; keep it beside the spectra, which read it"
            )
            raise SpectralError(msg)
        values = []
        for n, line in enumerate(lines[1:], start=2):
            if line.strip():
                try:
                    values.append(float(line))
                except ValueError:
                    msg = f"{path}: line {n}: not a number ({line.strip()[:40]!r})"
                    raise SpectralError(msg) from None
        wl = _usgs_wavelengths(path, len(values))
        info["wavelength_file"] = wl.name
        with open(wl, encoding="utf-8", errors="replace") as fh:
            wl_values = [float(x) for x in fh.read().split("\n")[1:] if x.strip()]
        name = re.sub(_USGS_TITLE + r"\s*", "", title)
        wavelength = np.round(np.asarray(wl_values, float) * 1000.0, 3)
        vals = np.asarray(values, float)[:, None]
        info["wavelength_units"] = "micrometres (converted to nm)"
        return _rows_frame(wavelength, vals, [name], info)
    else:
        start = _first_numeric(lines)
        if start is None:
            return None
        if start == 0 or start == 1 and not lines[0].lstrip().startswith("#") and \
                _plain_csv(lines):
            return None  # a plain table: colour.read_spectra reads it
        sep, comma = _separator(lines[start:start + 50])

        def cut(text: str) -> list[str]:
            return [t.strip() for t in (text.split(sep) if sep else text.split())]

        at = start - 1
        while at >= 0 and not lines[at].strip():
            at -= 1  # AvaSoft leaves a blank line before the data
        units: list[str] = []
        if at >= 0 and all(re.fullmatch(r"\[.*\]", t) for t in cut(lines[at]) if t):
            units, at = cut(lines[at])[1:], at - 1  # a units line: [nm] ;[counts] ;[%]
        header = lines[at] if at >= 0 else ""
        info = {"format": "text export, one row per wavelength", "header_lines": start}
        meta = _key_values(lines[: max(0, at)])
        if meta:
            info["header"] = dict(list(meta.items())[:10])
        names = cut(header)[1:]
        wavelength, vals = _two_columns(path, lines, start, sep, comma)
        info["separator"] = {"\t": "tab", ";": "semicolon", ",": "comma", None: "whitespace"}[sep]
        if comma:
            info["decimal"] = "comma"
        if len(names) != vals.shape[1] or not all(names):
            names = [path.stem] if vals.shape[1] == 1 else [
                f"column {i + 2}" for i in range(vals.shape[1])]
        refl = [i for i, n in enumerate(names)
                if re.match(r"(?i)^(reflect|transmi|absorb|%r\b|r%)", n)]
        if refl and len(names) > 1:  # AvaSoft: wave, sample, dark, reference, reflectance
            info["columns_used"] = [names[i] for i in refl]
            if len(refl) == 1 and len(units) > refl[0] and units[refl[0]] == "[%]":
                info["scale"], info["scale_evidence"] = "percent", f"units line: {units[refl[0]]}"
            first = lines[0].strip()
            label = first if at > 0 and first and ":" not in first and len(first) < 80 else None
            vals = vals[:, refl]
            names = [label or path.stem] if len(refl) == 1 else [names[i] for i in refl]
        if wavelength.max() < 30:  # micrometres: no visible/NIR wavelength is under 30 nm
            wl_factor = 1000.0
            info["wavelength_units"] = "micrometres (values under 30; converted to nm)"
        return _rows_frame(np.round(wavelength * wl_factor, 3), vals, names, info)
    sep, comma = _separator(lines[start:start + 50])
    if comma:
        info["decimal"] = "comma"
    wavelength, vals = _two_columns(path, lines, start, sep, comma)
    if vals.shape[1] > 1:
        vals = vals[:, :1]  # ECOSTRESS and SpectraSuite: one value column
    if wl_factor != 1.0:
        info["wavelength_units"] = "micrometres (converted to nm)"
    return _rows_frame(np.round(wavelength * wl_factor, 3), vals, [name], info)


def _plain_csv(lines: list[str]) -> bool:
    """A header line and comma/semicolon rows: the layouts colour.read_spectra already reads."""
    head = lines[0]
    return head.count(",") >= 2 or head.count(";") >= 2 or head.count("\t") >= 2


def _usgs_wavelengths(path: Path, count: int) -> Path:
    for cand in sorted(path.parent.glob("*Wavelengths*")):
        try:
            with open(cand, encoding="utf-8", errors="replace") as fh:
                n = sum(1 for line in fh if line.strip()) - 1
        except OSError:
            continue
        if n == count and cand != path:
            return cand
    msg = (
        f"{path}: a USGS splib ASCII spectrum of {count} values, but no wavelength file of "
        f"{count} values beside it; put the library's '*Wavelengths*_{count}_ch.txt' "
        "(e.g. splib07a_Wavelengths_ASD_0.35-2.5_microns_2151_ch.txt) in the same folder"
    )
    raise SpectralError(msg)


def _rows_frame(wavelength: np.ndarray, values: np.ndarray, names: list[str],
                info: dict) -> tuple[pd.DataFrame, dict]:
    """One row per measurement, wavelengths increasing; deleted values and repeated
    wavelengths handled and recorded in ``info['notes']``."""
    notes = info.setdefault("notes", [])
    values = values.astype(float)
    deleted = values < _USGS_DELETED / 10
    if deleted.any():
        values[deleted] = np.nan
        notes.append(f"{int(deleted.sum())} deleted channel(s) (−1.23e34) read as missing")
    if np.any(np.diff(wavelength) < 0):
        order = np.argsort(wavelength, kind="stable")
        wavelength, values = wavelength[order], values[order]
        notes.append("wavelengths in decreasing order in the file: sorted")
    dup = np.concatenate([[False], np.diff(wavelength) == 0])
    if dup.any():
        notes.append(f"{int(dup.sum())} repeated wavelength(s) (spliced segments): first kept")
        wavelength, values = wavelength[~dup], values[~dup]
    frame = pd.DataFrame(values.T, columns=wavelength)
    frame.insert(0, "sample", names)
    return frame, info


def _grid(wl: np.ndarray) -> str:
    steps = np.diff(wl)
    if steps.size and np.allclose(steps, steps[0], atol=1e-6):
        return f"{wl[0]:g}–{wl[-1]:g} nm by {steps[0]:g} nm"
    return (f"{wl[0]:g}–{wl[-1]:g} nm, uneven steps of {steps.min():g} to {steps.max():g} nm"
            if steps.size else f"{wl[0]:g} nm")


def _csv_frame(path: Path, text: str) -> pd.DataFrame:
    """A plain CSV table (one row per measurement or per wavelength), leading ``#`` lines
    being the export's notes, separator detected by pandas."""
    import csv
    import io

    lines = text.splitlines(keepends=True)
    skip = next((i for i, line in enumerate(lines) if not line.startswith("#")), 0)
    try:
        frame = pd.read_csv(io.StringIO("".join(lines[skip:])), sep=None, engine="python")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, csv.Error, ValueError) as exc:
        msg = f"{path}: cannot be read as a CSV table ({str(exc)[:160]})"
        raise SpectralError(msg) from None
    # a label column called "wavelength" in a table of wavelength columns would replace the
    # wavelength coordinate: keep it under another name
    if sum(str(c).strip().isdigit() for c in frame.columns) >= 3:
        frame = frame.rename(columns={c: "label" for c in frame.columns
                                      if str(c).strip().lower() == "wavelength"})
    return frame


def read_spectra(source, *, layout: str = "auto", scale: str = "auto",
                 resample: float | None = None, negative_tolerance: float | None = None,
                 range_nm: tuple[float, float] | None = None) -> xr.DataArray:
    """Read reflectance spectra from any instrument export or library this module knows.

    The file's layout is detected and reported in ``attrs["layout"]`` (a JSON string: the
    format, the header lines, separator and decimal mark, the scale and its evidence, notes):

    * CGATS.17 and its relatives — X-Rite/i1Profiler exports (``nm380``,
      ``SPECTRAL_NM380``), ArgyllCMS ``.ti3``/``.sp``/``.ccss`` (``SPEC_380``, scale from
      ``SPECTRAL_NORM``) — ANSI CGATS.17-2009;
    * Ocean Optics SpectraSuite/OceanView text (the ``>>>>>Begin Spectral Data<<<<<``
      header block; tab-separated, decimal commas in European locales);
    * ECOSTRESS/ASTER library files (``X Units``/``Y Units`` header; micrometres and percent;
      Baldridge et al. 2009, *Remote Sens. Environ.* 113:711–715; Meerdink et al. 2019,
      *Remote Sens. Environ.* 230:111196);
    * USGS Spectral Library ASCII (one value per line, the wavelengths in the library's
      ``*Wavelengths*`` file beside it; deleted channels −1.23e34; Kokaly et al. 2017, USGS
      Data Series 1035);
    * ENVI spectral libraries (``.sli`` + ``.hdr``, see :func:`read_library`);
    * two-column text exports with a header block (ASD, Avantes, StellarNet …): separator
      (tab, semicolon, comma, spaces) and decimal comma detected; micrometres converted;
    * anything else: the CSV layouts of :func:`echoes_lab.colour.read_spectra`.

    Then the values are validated and scaled by :func:`echoes_lab.colour.read_spectra`:
    ``scale``, ``resample`` (colour-science interpolation to a regular grid) and the clipping
    of negative noise within ``negative_tolerance`` (recorded in ``attrs["warnings"]``) work
    as there. Values still above 2 (200 %) after scaling are refused: they are counts or
    radiance, not reflectance. ``range_nm=(start, stop)`` keeps only those wavelengths, e.g.
    to leave out the noisy water-absorption bands of a field spectrum.

    Parameters
    ----------
    source
        A file path (any format above) or a DataFrame / list, passed to
        :func:`echoes_lab.colour.read_spectra` unchanged.
    layout, scale, resample, negative_tolerance
        As :func:`echoes_lab.colour.read_spectra`; ``scale="auto"`` takes the file's own
        evidence first (``SPECTRAL_NORM``, ``Y Units``, a reflectance scale factor).
    range_nm
        ``(start, stop)`` in nm: wavelengths outside are left out before validation.

    Returns
    -------
    xarray.DataArray
        ``reflectance(measurement, wavelength)`` as a fraction, the spectra's names in the
        ``sample`` coordinate, ``attrs["layout"]`` (what was detected) and
        ``attrs["warnings"]`` (what was changed).

    Raises
    ------
    SpectralError
        Naming the file, the line or field, and the fix.
    """
    import json

    from echoes_lab.colour import NEGATIVE_TOLERANCE
    from echoes_lab.colour import read_spectra as validate

    tolerance = NEGATIVE_TOLERANCE if negative_tolerance is None else negative_tolerance
    if not isinstance(source, (str, Path)):
        return validate(source, layout=layout, scale=scale, resample=resample,
                        negative_tolerance=tolerance)
    path = Path(source).expanduser()
    if not path.is_file():
        msg = f"{path}: no such file"
        raise SpectralError(msg)
    info: dict
    extra: dict = {}
    if path.suffix.lower() in (".sli", ".lib", ".spl", ".hdr") or (
        path.suffix == "" and path.with_suffix(".hdr").is_file()
    ):
        lib = read_library(path)
        extra = {k: lib[k].values for k in lib.coords
                 if k != "spectrum" and lib[k].dims == ("spectrum",)}
        info = {"format": "ENVI spectral library", "header": Path(lib.attrs["header"]).name,
                "notes": list(lib.attrs["warnings"])}
        frame = lib.to_pandas()
        frame.columns = lib["wavelength"].values
        frame = frame.reset_index().rename(columns={"spectrum": "sample"})
        factor = lib.attrs.get("reflectance_scale_factor")
        if factor and factor != 1 and scale == "auto":
            frame[frame.columns[1:]] = frame[frame.columns[1:]] / factor
            info["scale"], info["scale_evidence"] = "fraction", f"divided by {factor:g}"
        if frame.iloc[:, 1:].isna().any().any():
            keep = ~frame.iloc[:, 1:].isna().any(axis=0)
            dropped = int((~keep).sum())
            frame = frame.loc[:, [True, *keep.tolist()]]
            info["notes"].append(f"{dropped} band(s) with missing values in some spectrum "
                                 "left out")
    else:
        text, encoding = _text(path)
        head = text[:65536]
        first = head.lstrip().split(None, 1)[0].upper() if head.strip() else ""
        if first.startswith(_CGATS_IDS) or "BEGIN_DATA_FORMAT" in head:
            frame, info = _cgats(path, text)
        else:
            parsed = _point_text(path, text)
            if parsed is None:
                table = _csv_frame(path, text)
                try:
                    out = validate(table, layout=layout, scale=scale, resample=resample,
                                   negative_tolerance=tolerance)
                except SpectralError as exc:
                    raise SpectralError(str(exc).replace("the table", str(path))) from None
                info = {"format": "CSV table", "grid": _grid(out["wavelength"].values),
                        "scale": out.attrs["scale_read"], "encoding": encoding}
                out.attrs.update(source=str(path), layout=json.dumps(info))
                return out
            frame, info = parsed
        info["encoding"] = encoding
    wl = np.asarray([c for c in frame.columns if not isinstance(c, str)], dtype=float)
    if wl.size and np.any(np.diff(wl) < 0):
        order = np.argsort(wl, kind="stable")
        cols = ["sample", *[frame.columns[1:][i] for i in order]]
        frame = frame[cols]
        wl = wl[order]
    if range_nm is not None:
        keep = (wl >= min(range_nm)) & (wl <= max(range_nm))
        frame = frame[["sample", *[c for c, k in zip(frame.columns[1:], keep, strict=True)
                                   if k]]]
        info.setdefault("notes", []).append(
            f"kept {int(keep.sum())} of {wl.size} wavelengths in {min(range_nm):g}–"
            f"{max(range_nm):g} nm (range_nm)")
        wl = wl[keep]
    info["grid"] = _grid(wl) if wl.size else "no wavelengths"
    if scale == "auto" and "scale" in info:
        scale = info["scale"]
    values = frame.iloc[:, 1:].to_numpy(dtype=float)
    if values.size and np.nanmax(values) > 200:  # beyond percent: counts or radiance
        msg = (
            f"{path}: values up to {np.nanmax(values):g} are not reflectance even as percent "
            f"({info['format']}: counts, irradiance or radiance?); read the raw values with "
            "echoes_lab.spectral.read_spectrum_table, or divide by the white reference first"
        )
        raise SpectralError(msg)
    if np.isnan(values).any():
        i, j = np.argwhere(np.isnan(values))[0]
        msg = (
            f"{path}: spectrum {frame['sample'].iloc[i]!r}, {wl[j]:g} nm: missing value "
            f"({int(np.isnan(values).sum())} in all; {info['format']}); pass resample= to "
            "interpolate over a gap, or cut the range"
        )
        raise SpectralError(msg)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            out = validate(frame, layout="columns", scale=scale, resample=resample,
                           negative_tolerance=tolerance)
    except SpectralError as exc:
        text = str(exc).replace("the table", f"{path} ({info['format']})")
        text = re.sub(r"line (\d+), column", lambda m: f"spectrum {int(m.group(1)) - 1}, "
                      "column", text)
        if "negative reflectance" in text:
            text += "; or pass range_nm=(start, stop) to leave out noisy bands"
        raise SpectralError(text) from None
    for w in caught:
        warnings.warn(f"{path}: {str(w.message).removeprefix('the table: ')}", stacklevel=2)
    if float(np.nanmax(out.values)) > 2.0:
        msg = (
            f"{path}: values up to {float(np.nanmax(values)):g} are not reflectance even as "
            f"percent ({info['format']}: counts, irradiance or radiance?); read the raw "
            "values with echoes_lab.spectral.read_spectrum_table, or divide by the white "
            "reference first"
        )
        raise SpectralError(msg)
    if extra:
        out = out.assign_coords({k: ("measurement", v) for k, v in extra.items()})
    info["scale"] = out.attrs["scale_read"]
    info["notes"] = info.get("notes", []) + out.attrs["warnings"]
    out.attrs.update(source=str(path), layout=json.dumps(info, ensure_ascii=False, default=str),
                     warnings=info["notes"])
    return out


def read_spectrum_table(path) -> pd.DataFrame:
    """The values of a point-spectrum export as they are in the file (counts, irradiance,
    reflectance…): one row per measurement, one column per wavelength (nm), ``sample`` names
    first; the detected layout in ``attrs['layout']``. For exports that are not reflectance,
    such as a SpectraSuite scope-mode spectrum or a lamp's irradiance."""
    path = Path(path).expanduser()
    text, encoding = _text(path)
    first = text.lstrip().split(None, 1)[0].upper() if text.strip() else ""
    if first.startswith(_CGATS_IDS) or "BEGIN_DATA_FORMAT" in text[:65536]:
        frame, info = _cgats(path, text)
    else:
        parsed = _point_text(path, text)
        if parsed is None:
            msg = f"{path}: not a point-spectrum export this reader knows; try read_spectra"
            raise SpectralError(msg)
        frame, info = parsed
    frame.attrs["layout"] = {**info, "encoding": encoding}
    return frame


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
    if isinstance(library, (str, Path)) and (
        Path(library).suffix.lower() in (".sli", ".hdr")
        or Path(library).with_suffix(".hdr").is_file()
    ):
        library = read_library(library)
    if isinstance(library, (str, Path)):
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
