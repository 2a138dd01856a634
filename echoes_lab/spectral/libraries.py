"""ENVI spectral libraries (``.sli`` + ``.hdr`` and their variants): reference spectra as
``reflectance(spectrum, wavelength)``."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import xarray as xr

from echoes_lab.errors import SpectralError


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
    path = Path(path).expanduser()
    hdr, raw, looked = _library_pair(path)
    meta, lines, samples, dtype, offset = _header(hdr)
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
    wavelength = _wavelengths(hdr, meta, samples, notes)
    values = _without_ignored(values, meta, notes)
    wavelength, values = _increasing(wavelength, values, notes)
    attrs = {"source": str(raw), "header": str(hdr), "format": "ENVI spectral library",
             "warnings": notes}
    factor = _scale_factor(meta)
    if factor is not None:
        attrs["reflectance_scale_factor"] = factor
    return xr.DataArray(values, dims=("spectrum", "wavelength"),
                        coords=_coords(hdr, meta, lines, wavelength), name="reflectance",
                        attrs=attrs)


def _header(hdr: Path) -> tuple[dict, int, int, np.dtype, int]:
    """The header (Spectral Python's reader) and the layout of the records it describes:
    spectra (``lines``), bands (``samples``), data type with its byte order, offset."""
    import spectral.io.envi as envi

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
    file_type = str(meta.get("file type", "")).strip().lower()
    if file_type and file_type != "envi spectral library" or bands != 1:
        msg = (
            f"{hdr}: field 'file type' = {meta.get('file type')!r}, 'bands' = "
            f"{meta.get('bands')}: an image, not a spectral library; read it with "
            f"echoes_lab.read_cube({str(hdr)!r})"
        )
        raise SpectralError(msg)
    return meta, lines, samples, dtype.newbyteorder(">" if byte_order == 1 else "<"), offset


def _wavelengths(hdr: Path, meta: dict, samples: int, notes: list[str]) -> np.ndarray:
    """The bands' wavelengths in nm (micrometres converted, also when the units are unknown
    but every value is under 30, which no nm grid is)."""
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
    return wavelength


def _without_ignored(values: np.ndarray, meta: dict, notes: list[str]) -> np.ndarray:
    """The header's ``data ignore value`` (USGS: −1.23e34 for deleted channels) as NaN."""
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
    return values


def _increasing(wavelength: np.ndarray, values: np.ndarray, notes: list[str]):
    """Bands sorted by wavelength, a repeated wavelength's first reading kept (detectors
    that overlap)."""
    if np.any(np.diff(wavelength) <= 0):
        i = int(np.argmax(np.diff(wavelength) <= 0))
        notes.append(
            f"field 'wavelength' is not increasing ({wavelength[i]:g} nm is followed by "
            f"{wavelength[i + 1]:g} nm: overlapping detectors); bands sorted by wavelength"
        )
        order = np.argsort(wavelength, kind="stable")
        wavelength, values = wavelength[order], values[:, order]
    repeated = np.concatenate([[False], np.diff(wavelength) == 0])
    if repeated.any():
        notes.append(f"{int(repeated.sum())} repeated wavelength(s) "
                     f"({', '.join(f'{w:g}' for w in wavelength[repeated][:3])} nm): first kept")
        wavelength, values = wavelength[~repeated], values[:, ~repeated]
    return wavelength, values


def _coords(hdr: Path, meta: dict, lines: int, wavelength: np.ndarray) -> dict:
    """The spectra's names and every per-spectrum header list (``pname``, ``pnumber``)."""
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
    return coords
