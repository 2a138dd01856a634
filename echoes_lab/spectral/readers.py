"""The one public reader of point spectra, :func:`read_spectra` (also ``echoes_lab.read_spectra``
and ``echoes_lab.colour.read_spectra``), and the raw values of exports that are not
reflectance, :func:`read_spectrum_table`."""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from echoes_lab.errors import SpectralError
from echoes_lab.spectral.instruments import csv_frame, describe_grid, parse_export, read_text
from echoes_lab.spectral.libraries import read_library

#: beyond percent: counts, irradiance or radiance, not reflectance
NOT_REFLECTANCE = ("are not reflectance even as percent ({format}: counts, irradiance or "
                   "radiance?); read the raw values with echoes_lab.spectral.read_spectrum_table, "
                   "or divide by the white reference first")


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
    * anything else: a CSV table, one column per wavelength (headers such as ``400``,
      ``400 nm``, ``R400``; other columns kept as metadata) or one row per wavelength
      (``layout``); leading ``#`` lines are the export's notes.

    Then the values are validated and scaled (:func:`echoes_lab.colour.spectra_from_table`):
    no gaps, no negative values beyond noise, an even grid. Values still above 2 (200 %)
    after scaling are refused: they are counts or radiance, not reflectance.
    ``range_nm=(start, stop)`` keeps only those wavelengths, e.g. to leave out the noisy
    water-absorption bands of a field spectrum.

    Parameters
    ----------
    source
        A file path (any format above), a DataFrame (e.g.
        ``echoes_lab.open_dataset("demo-colour")``), or a list of them, combined (their
        wavelength grids must agree).
    layout
        For tables: ``"columns"`` (one row per measurement), ``"rows"`` (the first column
        holds wavelengths, every other column is one measurement) or ``"auto"``.
    scale
        ``"fraction"`` (0–1), ``"percent"`` (0–100) or ``"auto"``: the file's own evidence
        first (``SPECTRAL_NORM``, ``Y Units``, a reflectance scale factor), else percent when
        any value exceeds 1.5, as no ordinary surface reflects 150 %.
    resample
        A wavelength step in nm: spectra on an uneven (or another) grid are interpolated to a
        regular grid with this step by colour-science (``SpectralDistribution.interpolate``,
        Sprague or cubic-spline interpolation as CIE 167:2005 recommends).
    negative_tolerance
        Negative values no lower than ``-negative_tolerance`` (as a fraction; default
        :data:`echoes_lab.colour.NEGATIVE_TOLERANCE`) are noise: clipped to 0 and recorded in
        ``attrs["warnings"]``.
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
    from echoes_lab.colour import NEGATIVE_TOLERANCE, spectra_from_table

    options = {"layout": layout, "scale": scale, "resample": resample,
               "negative_tolerance": (NEGATIVE_TOLERANCE if negative_tolerance is None
                                      else negative_tolerance)}
    if isinstance(source, (list, tuple)):
        return _combined([read_spectra(s, **options, range_nm=range_nm) for s in source])
    if not isinstance(source, (str, Path)):
        return spectra_from_table(source, **options)
    path = Path(source).expanduser()
    if not path.is_file():
        msg = f"{path}: no such file"
        raise SpectralError(msg)
    extra: dict = {}
    if _is_library(path):
        frame, info, extra = _library_table(path, scale)
    else:
        text, encoding = read_text(path)
        parsed = parse_export(path, text)
        if parsed is None:
            return _csv_spectra(path, text, encoding, options)
        frame, info = parsed
        info["encoding"] = encoding
    frame, wl = _in_order(frame)
    if range_nm is not None:
        frame, wl = _cut(frame, wl, range_nm, info)
    info["grid"] = describe_grid(wl) if wl.size else "no wavelengths"
    if scale == "auto" and "scale" in info:
        options["scale"] = info["scale"]
    _refuse_raw(path, frame, wl, info)
    out = _validated(path, frame, info, options)
    if extra:
        out = out.assign_coords({k: ("measurement", v) for k, v in extra.items()})
    info["scale"] = out.attrs["scale_read"]
    info["notes"] = info.get("notes", []) + out.attrs["warnings"]
    out.attrs.update(source=str(path), layout=json.dumps(info, ensure_ascii=False, default=str),
                     warnings=info["notes"])
    return out


def _combined(parts: list[xr.DataArray]) -> xr.DataArray:
    """Spectra read one by one as one array; their grids must agree."""
    for part in parts[1:]:
        a, b = parts[0]["wavelength"].values, part["wavelength"].values
        if a.shape != b.shape or not np.allclose(a, b):
            msg = (
                f"{part.attrs['source']}: field 'wavelength' ({b[0]:g}–{b[-1]:g} nm, "
                f"{b.size} values) differs "
                f"from {parts[0].attrs['source']} ({a[0]:g}–{a[-1]:g} nm, {a.size} values); "
                "resample one to the other's grid before combining"
            )
            raise SpectralError(msg)
    out = xr.concat(parts, dim="measurement")
    out.attrs["source"] = ", ".join(p.attrs["source"] for p in parts)
    return out


def _is_library(path: Path) -> bool:
    return path.suffix.lower() in (".sli", ".lib", ".spl", ".hdr") or (
        path.suffix == "" and path.with_suffix(".hdr").is_file())


def _library_table(path: Path, scale: str) -> tuple[pd.DataFrame, dict, dict]:
    """An ENVI spectral library as a table, what was found, and its per-spectrum fields."""
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
    return frame, info, extra


def _csv_spectra(path: Path, text: str, encoding: str, options: dict) -> xr.DataArray:
    """A plain CSV table, validated as a table."""
    from echoes_lab.colour import spectra_from_table

    try:
        out = spectra_from_table(csv_frame(path, text), **options)
    except SpectralError as exc:
        raise SpectralError(str(exc).replace("the table", str(path))) from None
    info = {"format": "CSV table", "grid": describe_grid(out["wavelength"].values),
            "scale": out.attrs["scale_read"], "encoding": encoding}
    out.attrs.update(source=str(path), layout=json.dumps(info))
    return out


def _in_order(frame: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """The wavelength columns in increasing order (spliced detectors, reversed exports)."""
    wl = np.asarray([c for c in frame.columns if not isinstance(c, str)], dtype=float)
    if wl.size and np.any(np.diff(wl) < 0):
        order = np.argsort(wl, kind="stable")
        frame = frame[["sample", *[frame.columns[1:][i] for i in order]]]
        wl = wl[order]
    return frame, wl


def _cut(frame: pd.DataFrame, wl: np.ndarray, range_nm, info: dict):
    """Only the wavelengths in ``range_nm``, noted in ``info``."""
    keep = (wl >= min(range_nm)) & (wl <= max(range_nm))
    frame = frame[["sample", *[c for c, k in zip(frame.columns[1:], keep, strict=True) if k]]]
    info.setdefault("notes", []).append(
        f"kept {int(keep.sum())} of {wl.size} wavelengths in {min(range_nm):g}–"
        f"{max(range_nm):g} nm (range_nm)")
    return frame, wl[keep]


def _refuse_raw(path: Path, frame: pd.DataFrame, wl: np.ndarray, info: dict) -> None:
    """Counts or radiance, and gaps, are refused before validation, naming the spectrum."""
    values = frame.iloc[:, 1:].to_numpy(dtype=float)
    if values.size and np.nanmax(values) > 200:
        msg = (f"{path}: values up to {np.nanmax(values):g} "
               + NOT_REFLECTANCE.format(format=info["format"]))
        raise SpectralError(msg)
    if np.isnan(values).any():
        i, j = np.argwhere(np.isnan(values))[0]
        msg = (
            f"{path}: spectrum {frame['sample'].iloc[i]!r}, {wl[j]:g} nm: missing value "
            f"({int(np.isnan(values).sum())} in all; {info['format']}); pass resample= to "
            "interpolate over a gap, or cut the range"
        )
        raise SpectralError(msg)


def _validated(path: Path, frame: pd.DataFrame, info: dict, options: dict) -> xr.DataArray:
    """The table validated as reflectance, errors and warnings naming the file and spectrum."""
    from echoes_lab.colour import spectra_from_table

    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            out = spectra_from_table(frame, **{**options, "layout": "columns"})
    except SpectralError as exc:
        text = str(exc).replace("the table", f"{path} ({info['format']})")
        text = re.sub(r"line (\d+), column", lambda m: f"spectrum {int(m.group(1)) - 1}, "
                      "column", text)
        if "negative reflectance" in text:
            text += "; or pass range_nm=(start, stop) to leave out noisy bands"
        raise SpectralError(text) from None
    for w in caught:
        warnings.warn(f"{path}: {str(w.message).removeprefix('the table: ')}", stacklevel=3)
    if float(np.nanmax(out.values)) > 2.0:
        values = frame.iloc[:, 1:].to_numpy(dtype=float)
        msg = (f"{path}: values up to {float(np.nanmax(values)):g} "
               + NOT_REFLECTANCE.format(format=info["format"]))
        raise SpectralError(msg)
    return out


def read_spectrum_table(path) -> pd.DataFrame:
    """The values of a point-spectrum export as they are in the file (counts, irradiance,
    reflectance…): one row per measurement, one column per wavelength (nm), ``sample`` names
    first; the detected layout in ``attrs['layout']``. For exports that are not reflectance,
    such as a SpectraSuite scope-mode spectrum or a lamp's irradiance."""
    path = Path(path).expanduser()
    text, encoding = read_text(path)
    parsed = parse_export(path, text)
    if parsed is None:
        msg = f"{path}: not a point-spectrum export this reader knows; try read_spectra"
        raise SpectralError(msg)
    frame, info = parsed
    frame.attrs["layout"] = {**info, "encoding": encoding}
    return frame
