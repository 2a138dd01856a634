"""Colour from reflectance spectra, colour differences and fading, on top of colour-science.

A heritage scientist measures the same points of an object with a spectrophotometer every few
months and wants to know whether, how fast and how visibly it fades. Here:

* :func:`read_spectra` (the one reader of spectra, :func:`echoes_lab.spectral.read_spectra`)
  turns an instrument export, a CSV table (one column per wavelength, or one row per
  wavelength) or a DataFrame into a validated xarray ``reflectance(measurement,
  wavelength)`` with the other columns (object, point, date...) as coordinates; the checks
  are :func:`spectra_from_table`'s;
* :func:`to_xyz` / :func:`to_lab` give CIE XYZ and CIELAB under D65 or D50 for the CIE 1931 2°
  or CIE 1964 10° observer (CIE 15:2004; tristimulus weights of ASTM E308-22, as implemented
  by colour-science);
* :func:`delta_e` gives ΔE*ab (CIE 1976), ΔE94 (CIE 116-1995) and ΔE00 (CIE 142-2001; Sharma,
  Wu & Dalal 2005);
* :func:`fading` follows every object/point over time: ΔE00 to the first measurement, a rate,
  and the time to a chosen just-noticeable threshold;
* :func:`blue_wool` says which Blue Wool reference a measured fading curve is closest to,
  given reference curves supplied as data.

The accessors ``df.colour`` (a wide instrument table) and ``spectra.colour`` (a reflectance
DataArray) offer the same as methods. colour-science is imported on first use (it takes a
second), so ``import echoes_lab`` stays quick.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from echoes_lab.errors import SpectralError

#: Illustrative Blue Wool curves (ΔE00 = 12·(1 − exp(−H/Hₙ)), Hₙ doubling per grade, the
#: design of ISO 105-B08), for trying :func:`blue_wool`; replace with your own measured cards.
ILLUSTRATIVE_BLUE_WOOL = Path(__file__).with_name("data") / "blue-wool-illustrative.csv"

OBSERVERS = {2: "CIE 1931 2 Degree Standard Observer", 10: "CIE 1964 10 Degree Standard Observer"}
ILLUMINANTS = ("D65", "D50")
DELTA_E = {"CIE 1976": "CIE 1976", "ab": "CIE 1976", "76": "CIE 1976",
           "CIE 1994": "CIE 1994", "94": "CIE 1994",
           "CIE 2000": "CIE 2000", "00": "CIE 2000", "2000": "CIE 2000"}
LAB = ["L", "a", "b"]
_WL_HEADER = re.compile(r"^\s*(?:[A-Za-z%]{0,3}[\s_]?)?(\d{3,4}(?:\.\d+)?)\s*(?:nm)?\s*$")


# -- reading ----------------------------------------------------------------------------------

def _wavelength(name) -> float | None:
    if isinstance(name, (int, float, np.number)) and not isinstance(name, bool):
        return float(name)
    m = _WL_HEADER.match(str(name))
    return float(m.group(1)) if m else None


def _check_grid(wl: np.ndarray, where: str) -> None:
    if wl.size < 3:
        msg = f"{where}: fewer than 3 wavelength columns found ({wl.tolist()})"
        raise SpectralError(msg)
    steps = np.diff(wl)
    if np.any(steps <= 0):
        i = int(np.argmax(steps <= 0))
        msg = f"{where}: wavelengths must increase; {wl[i]:g} nm is followed by {wl[i + 1]:g} nm"
        raise SpectralError(msg)
    if not np.allclose(steps, steps[0], atol=1e-6):
        i = int(np.argmax(~np.isclose(steps, steps[0], atol=1e-6)))
        msg = (
            f"{where}: field 'wavelength': not evenly spaced ({wl.size} values, "
            f"{wl[0]:g}–{wl[-1]:g} nm; steps of {float(steps.min()):g} to "
            f"{float(steps.max()):g} nm, first irregular at {wl[i]:g} → {wl[i + 1]:g} nm); "
            "pass resample=<step in nm> to read_spectra, or resample to a regular grid first, "
            "as ASTM E308 requires"
        )
        raise SpectralError(msg)


#: negative reflectances smaller than this (as a fraction) are floating-point or instrument noise:
#: clipped to 0 with a recorded warning; anything more negative is an error
NEGATIVE_TOLERANCE = 1e-4


def _short(value, width: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= width else text[: width - 1] + "…"


def spectra_from_table(frame: pd.DataFrame, *, layout: str = "auto", scale: str = "auto",
                       resample: float | None = None,
                       negative_tolerance: float = NEGATIVE_TOLERANCE) -> xr.DataArray:
    """A table of reflectance spectra, validated, as ``reflectance(measurement, wavelength)``.

    The checks every reader of spectra ends with (:func:`echoes_lab.read_spectra` gives
    files, instrument exports and tables to it; the arguments are described there): no
    missing or non-numeric value, no negative value beyond ``negative_tolerance`` (smaller
    ones clipped to 0 and recorded in ``attrs["warnings"]``), wavelengths increasing and
    evenly spaced unless ``resample`` is given, as ASTM E308 requires of the tristimulus
    integration.

    Returns
    -------
    xarray.DataArray
        Reflectance as a fraction, metadata columns as coordinates on ``measurement``;
        ``attrs``: ``source``, ``scale_read``, ``warnings``.

    Raises
    ------
    SpectralError
        Naming the table's line (or column) and wavelength, and the fix.
    """
    where = "the table"
    notes: list[str] = []
    frame = _without_bom(frame, notes)
    frame, line_of = _one_row_per_measurement(frame, layout, where)
    wl_cols = [c for c in frame.columns if _wavelength(c) is not None]
    meta_cols = [c for c in frame.columns if c not in wl_cols]
    wl = np.array([_wavelength(c) for c in wl_cols])
    if resample is None or wl.size < 3 or np.any(np.diff(wl) <= 0):
        # resampling needs increasing wavelengths: the same error as without
        _check_grid(wl, where)
    values = frame[wl_cols].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
    bad = ~np.isfinite(values)
    if bad.any():
        i, j = np.argwhere(bad)[0]
        msg = (
            f"{where}: {line_of(i, wl_cols[j])}: missing or non-numeric reflectance "
            f"({_short(frame[wl_cols[j]].iloc[i])}); {int(bad.sum())} such value(s) in all"
        )
        raise SpectralError(msg)
    if scale == "auto":
        scale = "percent" if values.max() > 1.5 else "fraction"
    if scale not in ("percent", "fraction"):
        msg = f"scale must be 'fraction', 'percent' or 'auto', not {scale!r}"
        raise SpectralError(msg)
    values = _without_noise(values, scale, negative_tolerance, where, notes,
                            lambda i, j: line_of(i, wl_cols[j]))
    if scale == "percent":
        values = values / 100.0
    if resample is not None:
        wl, values = _resample(wl, values, float(resample), where)
        notes.append(f"resampled to {wl[0]:g}–{wl[-1]:g} nm by {float(resample):g} nm")
    coords = {"wavelength": ("wavelength", wl, {"units": "nm"})}
    for c in meta_cols:
        # a label column literally called "wavelength" (Ohta's transposed table) must not
        # replace the wavelength coordinate
        name = "label" if str(c) == "wavelength" else str(c)
        coords[name] = ("measurement", frame[c].to_numpy())
    return xr.DataArray(
        values,
        dims=("measurement", "wavelength"),
        coords=coords,
        name="reflectance",
        attrs={"units": "1", "source": where, "scale_read": scale, "warnings": notes},
    )




def _without_bom(frame: pd.DataFrame, notes: list[str]) -> pd.DataFrame:
    """Column names with a byte-order mark read as text (a file decoded with the wrong
    encoding) put right, and noted."""
    bom = [c for c in frame.columns if str(c).startswith(("\ufeff", "ï»¿", "\ufffe"))]
    if not bom:
        return frame
    notes.append(
        f"column {_short(str(bom[0]))} began with a byte-order mark (the file is UTF-8 "
        "with BOM read as another encoding; read it with encoding='utf-8-sig'); removed"
    )
    return frame.rename(
        columns={c: str(c).lstrip("\ufeff\ufffe").removeprefix("ï»¿") for c in bom})


def _one_row_per_measurement(frame: pd.DataFrame, layout: str, where: str):
    """The table with one row per measurement, and how to name a value's place in the
    table as the user sees it (a line and column, or a measurement and wavelength)."""
    if layout == "auto":
        layout = (
            "columns" if sum(_wavelength(c) is not None for c in frame.columns) >= 3 else "rows"
        )
    if layout == "columns":
        return frame, lambda i, col: f"line {i + 2}, column '{col}'"
    if layout != "rows":
        msg = f"layout must be 'columns', 'rows' or 'auto', not {layout!r}"
        raise SpectralError(msg)
    first = pd.to_numeric(frame.iloc[:, 0], errors="coerce")
    if first.isna().any():
        line = int(np.argmax(first.isna().to_numpy())) + 2
        msg = (
            f"{where}: line {line}, column {_short(str(frame.columns[0]))}: not a "
            f"wavelength ({_short(frame.iloc[line - 2, 0])}); with one row per wavelength "
            "the first column must hold wavelengths in nm (check the separator)"
        )
        raise SpectralError(msg)
    frame = frame.set_index(frame.columns[0]).T
    frame.index.name = "measurement"
    frame = frame.reset_index()
    return frame, lambda i, col: f"column '{frame['measurement'].iloc[i]}', wavelength {col}"


def _without_noise(values: np.ndarray, scale: str, negative_tolerance: float, where: str,
                   notes: list[str], place) -> np.ndarray:
    """Negative values within the tolerance clipped to 0 (noise, noted); beyond it, an
    error naming the ``place`` of the first."""
    tolerance = negative_tolerance * (100.0 if scale == "percent" else 1.0)
    if values.min() < -tolerance:
        i, j = np.argwhere(values < -tolerance)[0]
        msg = (
            f"{where}: {place(i, j)}: negative reflectance {values[i, j]:g}; "
            "check the instrument's white/black calibration"
        )
        raise SpectralError(msg)
    if values.min() < 0:
        n = int((values < 0).sum())
        notes.append(
            f"{n} negative value(s) down to {values.min():.3g} (floating-point noise, within "
            f"the tolerance of {negative_tolerance:g}) clipped to 0"
        )
        warnings.warn(f"{where}: {notes[-1]}", stacklevel=4)
        values = np.clip(values, 0.0, None)
    return values


def _resample(wl: np.ndarray, values: np.ndarray, step: float, where: str):
    """Interpolate every spectrum to a regular grid with colour-science."""
    import colour

    if step <= 0:
        msg = f"{where}: resample must be a positive step in nm, not {step:g}"
        raise SpectralError(msg)
    start, end = np.ceil(wl[0] / step) * step, np.floor(wl[-1] / step) * step
    shape = colour.SpectralShape(float(start), float(end), step)
    out = []
    for row in values:
        sd = colour.SpectralDistribution(dict(zip(wl.tolist(), row.tolist(), strict=True)))
        out.append(sd.copy().interpolate(shape).values)
    return np.asarray(shape.wavelengths, dtype=float), np.clip(np.asarray(out), 0.0, None)


# -- colorimetry ------------------------------------------------------------------------------

def _as_spectra(reflectance) -> xr.DataArray:
    if isinstance(reflectance, pd.DataFrame):
        return spectra_from_table(reflectance)
    if not isinstance(reflectance, xr.DataArray) or "wavelength" not in reflectance.dims:
        msg = (
            "reflectance must be an xarray DataArray with a 'wavelength' dimension "
            "(see echoes_lab.read_spectra)"
        )
        raise SpectralError(msg)
    where = reflectance.attrs.get("source", "the spectra")
    _check_grid(np.asarray(reflectance["wavelength"], dtype=float), where)
    values = np.asarray(reflectance)
    if not np.isfinite(values).all():
        msg = (
            f"{where}: {int((~np.isfinite(values)).sum())} reflectance value(s) are NaN or infinite"
        )
        raise SpectralError(msg)
    if values.min() < 0:
        msg = f"{where}: negative reflectance ({values.min():g}) is not physical"
        raise SpectralError(msg)
    return reflectance


def _conditions(illuminant: str, observer: int):
    import colour

    if illuminant not in ILLUMINANTS:
        msg = f"illuminant must be one of {', '.join(ILLUMINANTS)}, not {illuminant!r}"
        raise SpectralError(msg)
    if observer not in OBSERVERS:
        msg = f"observer must be 2 or 10 (degrees), not {observer!r}"
        raise SpectralError(msg)
    return colour.MSDS_CMFS[OBSERVERS[observer]], colour.SDS_ILLUMINANTS[illuminant]


def to_xyz(reflectance, illuminant: str = "D65", observer: int = 2) -> xr.DataArray:
    """CIE XYZ tristimulus values (Y of the perfect white = 100) of reflectance spectra.

    Computed by :func:`colour.msds_to_XYZ` with the ASTM E308 tristimulus weighting factors
    for the spectra's wavelength interval (ASTM E308-22, *Standard Practice for Computing the
    Colors of Objects by Using the CIE System*; CIE 15:2004, §7). Spectra not covering
    360–780 nm are extended by repeating their end values, as ASTM E308 §7.3.2 prescribes.

    Parameters
    ----------
    reflectance
        DataArray with a ``wavelength`` dimension (fractions 0–1), or a wide DataFrame.
    illuminant
        ``"D65"`` or ``"D50"``.
    observer
        2 (CIE 1931) or 10 (CIE 1964) degrees.

    Returns
    -------
    xarray.DataArray
        The input's other dimensions plus ``xyz`` = X, Y, Z.
    """
    import colour

    spectra = _as_spectra(reflectance)
    cmfs, illum = _conditions(illuminant, observer)
    moved = spectra.transpose(..., "wavelength")
    flat = np.asarray(moved, dtype=float).reshape(-1, moved.sizes["wavelength"])
    msds = colour.MultiSpectralDistributions(
        flat.T, domain=np.asarray(moved["wavelength"], dtype=float)
    )
    with warnings.catch_warnings():  # colour-science notes every spectrum it extends to 360–780 nm
        warnings.simplefilter("ignore", colour.utilities.ColourRuntimeWarning)
        xyz = np.asarray(colour.msds_to_XYZ(msds, cmfs, illum, method="ASTM E308")).reshape(-1, 3)
    dims = [d for d in moved.dims if d != "wavelength"]
    out = xr.DataArray(
        xyz.reshape(*[moved.sizes[d] for d in dims], 3),
        dims=[*dims, "xyz"],
        coords={
            **{k: v for k, v in moved.coords.items() if "wavelength" not in v.dims},
            "xyz": ["X", "Y", "Z"],
        },
        name="XYZ",
    )
    out.attrs.update(illuminant=illuminant, observer=observer, method="ASTM E308")
    return out


def to_lab(reflectance, illuminant: str = "D65", observer: int = 2) -> xr.DataArray:
    """CIELAB L*, a*, b* of reflectance spectra (CIE 15:2004 §8.2.1, via :func:`colour.XYZ_to_Lab`).

    XYZ from :func:`to_xyz`. The reference white Xn, Yn, Zn is the perfect reflecting
    diffuser computed with the same weights on the same wavelength grid (CIE 15:2004 §8.2.1),
    so a spectrally flat sample is exactly neutral (a* = b* = 0). Returns the input's other
    dimensions plus ``lab`` = L, a, b.
    """
    import colour

    spectra = _as_spectra(reflectance)
    xyz = to_xyz(spectra, illuminant, observer)
    wl = np.asarray(spectra["wavelength"], dtype=float)
    perfect = xr.DataArray(
        np.ones((1, wl.size)), dims=("m", "wavelength"), coords={"wavelength": wl}
    )
    white = colour.XYZ_to_xy(to_xyz(perfect, illuminant, observer).values[0] / 100.0)
    lab = colour.XYZ_to_Lab(np.asarray(xyz) / 100.0, white)
    out = xyz.copy(data=lab).rename({"xyz": "lab"}).assign_coords(lab=LAB).rename("Lab")
    out.attrs["white_xy"] = white.tolist()
    return out


def delta_e(lab1, lab2, method: str = "CIE 2000"):
    """Colour difference between CIELAB values, through :func:`colour.delta_E`.

    Parameters
    ----------
    lab1, lab2
        Arrays with L*, a*, b* on the last axis, or DataArrays with a ``lab`` dimension
        (broadcast against each other).
    method
        ``"CIE 1976"`` (ΔE*ab, CIE 15:2004 eq. 8.11), ``"CIE 1994"`` (ΔE*94, CIE 116-1995,
        graphic-arts weights) or ``"CIE 2000"`` (ΔE00, CIE 142-2001; implementation notes
        and test data in Sharma, Wu & Dalal 2005, *Color Res. Appl.* 30(1):21–30);
        short forms ``"ab"``, ``"94"``, ``"00"``.

    Returns
    -------
    numpy.ndarray or xarray.DataArray
        One difference per pair.
    """
    import colour

    if method not in DELTA_E:
        msg = f"unknown ΔE method {method!r}; use one of {', '.join(sorted(set(DELTA_E.values())))}"
        raise SpectralError(msg)
    if isinstance(lab1, xr.DataArray) or isinstance(lab2, xr.DataArray):
        a, b = xr.broadcast(
            *(
                x
                if isinstance(x, xr.DataArray)
                else xr.DataArray(np.asarray(x, dtype=float), dims=["lab"])
                for x in (lab1, lab2)
            )
        )
        a, b = a.transpose(..., "lab"), b.transpose(..., "lab")
        return a.isel(lab=0, drop=True).copy(data=colour.delta_E(np.asarray(a), np.asarray(b),
                                                                 method=DELTA_E[method])).rename("delta_E")
    lab1, lab2 = np.asarray(lab1, dtype=float), np.asarray(lab2, dtype=float)
    if lab1.shape[-1] != 3 or lab2.shape[-1] != 3:
        msg = (f"CIELAB values need 3 components on the last axis, got shapes {lab1.shape} "
               f"and {lab2.shape}")
        raise SpectralError(msg)
    return colour.delta_E(lab1, lab2, method=DELTA_E[method])


# -- fading -----------------------------------------------------------------------------------

@dataclass
class Fading:
    """The result of :func:`fading`: per measurement (``series``), per object (``summary``)."""

    series: pd.DataFrame
    summary: pd.DataFrame
    threshold: float
    time: str

    def plot(self, ax=None):
        """ΔE00 against time, one line per object/point, the threshold dashed."""
        import matplotlib.pyplot as plt

        ax = ax or plt.subplots(figsize=(9, 4.5))[1]
        keys = [c for c in self.summary.index.names]
        for key, group in self.series.groupby(keys, sort=False):
            ax.plot(group[self.time], group["dE00"], marker="o", ms=3,
                    label=" · ".join(map(str, key if isinstance(key, tuple) else (key,))))
        ax.axhline(
            self.threshold, ls="--", color="grey", label=f"threshold ΔE00 = {self.threshold:g}"
        )
        ax.set_ylabel("ΔE00 to first measurement")
        ax.legend(fontsize="x-small", ncol=2)
        return ax


def fading(spectra, *, time: str = "date", by=("object", "point"), threshold: float = 1.0,
           illuminant: str = "D65", observer: int = 10) -> Fading:
    """Fading of each object/point over time: ΔE00 to the first reading, rate, time to threshold.

    For every group in ``by``, measurements are sorted by ``time``; ΔE00 (CIE 142-2001) is
    taken between each measurement and the group's first one (the cumulative change).
    The rate is the least-squares slope of ΔE00 on elapsed years through the origin
    (ΔE00 is 0 at the first measurement by definition), i.e. Σ tΔE / Σ t², the linear early
    stage of fading curves as used in microfading (Whitmore, Pan & Bailie 1999, *JAIC*
    38(3):395–409). The time to ``threshold`` is where the measured curve first crosses it
    (linear interpolation between measurements); if it never does, ``threshold / rate`` is
    given and flagged ``projected``.

    Parameters
    ----------
    spectra
        Reflectance (DataArray from :func:`read_spectra` or a wide DataFrame) with ``time``
        and ``by`` as columns/coordinates.
    threshold
        ΔE00 taken as just noticeable (default 1.0; choose what your institution uses).
    illuminant, observer
        Viewing conditions for CIELAB (default D65 and the 10° observer, as most museum
        monitoring uses).

    Returns
    -------
    Fading
        ``series``: one row per measurement with L, a, b, elapsed ``years`` and ``dE00``;
        ``summary``: one row per group with n, first/last time, last ΔE00, ``rate_per_year``,
        ``years_to_threshold`` and ``projected``.
    """
    spectra = _as_spectra(spectra)
    by = [by] if isinstance(by, str) else list(by)
    missing = [c for c in [time, *by] if c not in spectra.coords]
    if missing:
        msg = (
            f"{spectra.attrs.get('source', 'the spectra')}: no column(s) {', '.join(missing)} "
            f"(have {', '.join(c for c in spectra.coords if c != 'wavelength')})"
        )
        raise SpectralError(msg)
    lab = to_lab(spectra, illuminant, observer)
    table = pd.DataFrame(np.asarray(lab), columns=LAB)
    for c in [*by, time]:
        table[c] = np.asarray(spectra[c])
    table[time] = pd.to_datetime(table[time])
    table = table.sort_values([*by, time], kind="stable").reset_index(drop=True)
    first = table.groupby(by, sort=False)[LAB].transform("first")
    table["dE00"] = delta_e(table[LAB].to_numpy(), first.to_numpy(), "CIE 2000")
    start = table.groupby(by, sort=False)[time].transform("first")
    table["years"] = (table[time] - start).dt.total_seconds() / (365.25 * 86400)
    rows = []
    for key, g in table.groupby(by, sort=False):
        t, d = g["years"].to_numpy(), g["dE00"].to_numpy()
        rate = float((t * d).sum() / (t * t).sum()) if (t * t).sum() > 0 else float("nan")
        above = np.nonzero(d >= threshold)[0]
        if above.size:
            k = above[0]
            years = float(t[k - 1] + (threshold - d[k - 1]) * (t[k] - t[k - 1]) / (d[k] - d[k - 1]))
            projected = False
        else:
            years = threshold / rate if rate > 0 else float("inf")
            projected = True
        rows.append(
            {
                **dict(zip(by, key if isinstance(key, tuple) else (key,), strict=False)),
                "n": len(g),
                "first": g[time].iloc[0],
                "last": g[time].iloc[-1],
                "dE00_last": float(d[-1]),
                "rate_per_year": rate,
                "years_to_threshold": years,
                "projected": projected,
            }
        )
    summary = pd.DataFrame(rows).set_index(by)
    return Fading(series=table[[*by, time, "years", *LAB, "dE00"]], summary=summary,
                  threshold=float(threshold), time=time)


def read_blue_wool(source) -> pd.DataFrame:
    """Blue Wool reference curves as data: columns ``standard``, ``exposure_mlxh``, ``dE00``.

    Blue Wool curves depend on the cloth batch and the light, so they are *user-supplied*,
    ideally ΔE00 measured on ISO 105-B08 Blue Wool references exposed beside the objects (as
    in microfading practice, Whitmore et al. 1999), with the exposure in megalux-hours. Lines
    starting with ``#`` are comments (for the source). :data:`ILLUSTRATIVE_BLUE_WOOL` is a
    labelled illustration for trying the tools, not a measurement.
    """
    frame = pd.read_csv(source, comment="#") if isinstance(source, (str, Path)) else source.copy()
    where = str(source) if isinstance(source, (str, Path)) else "the Blue Wool table"
    need = {"standard", "exposure_mlxh", "dE00"}
    if not need <= set(frame.columns):
        msg = (
            f"{where}: Blue Wool curves need columns {', '.join(sorted(need))}; "
            f"found {', '.join(map(str, frame.columns))}"
        )
        raise SpectralError(msg)
    for col in ("exposure_mlxh", "dE00"):
        vals = pd.to_numeric(frame[col], errors="coerce")
        if vals.isna().any() or (vals < 0).any():
            i = int(np.argmax((vals.isna() | (vals < 0)).to_numpy()))
            msg = (
                f"{where}: row {i + 1}, column '{col}': {frame[col].iloc[i]!r} is not a "
                "non-negative number"
            )
            raise SpectralError(msg)
        frame[col] = vals
    return frame.sort_values(["standard", "exposure_mlxh"]).reset_index(drop=True)


def blue_wool(
    result: Fading, references, *, lux: float = 50.0, hours_per_year: float = 3000.0
) -> pd.DataFrame:
    """The Blue Wool standard whose fading curve is closest to each object/point's.

    Elapsed time becomes light exposure, ``years × hours_per_year × lux / 10⁶`` Mlx·h
    (Michalski, CCI *Agent of deterioration: light*, 50 lx × 3000 h a year by default);
    each reference curve (see :func:`read_blue_wool`) is interpolated at those exposures and
    the standard with the smallest root-mean-square ΔE00 difference is chosen, the comparison
    microfading uses to rank objects against Blue Wool 1–3 (Whitmore, Pan & Bailie 1999).
    Only exposures inside a reference curve's measured range are compared.

    Returns
    -------
    pandas.DataFrame
        Per object/point: ``closest`` standard, its ``rms_dE00``, the runner-up, and the
        number of measurements compared.
    """
    refs = read_blue_wool(references)
    rows = []
    keys = result.summary.index.names
    for key, g in result.series.groupby(keys, sort=False):
        exposure = g["years"].to_numpy() * hours_per_year * lux / 1e6
        scores = {}
        for std, curve in refs.groupby("standard", sort=False):
            x, y = curve["exposure_mlxh"].to_numpy(), curve["dE00"].to_numpy()
            inside = (exposure >= x.min()) & (exposure <= x.max())
            if inside.sum() >= 2:
                diff = g["dE00"].to_numpy()[inside] - np.interp(exposure[inside], x, y)
                scores[std] = (float(np.sqrt(np.mean(diff ** 2))), int(inside.sum()))
        if not scores:
            msg = (
                f"{key}: the exposures ({exposure.max():.3g} Mlx·h at most) fall outside every "
                "Blue Wool curve's range; supply curves covering them"
            )
            raise SpectralError(msg)
        ranked = sorted(scores.items(), key=lambda kv: kv[1][0])
        rows.append({**dict(zip(keys, key if isinstance(key, tuple) else (key,), strict=False)),
                     "closest": ranked[0][0], "rms_dE00": ranked[0][1][0],
                     "runner_up": ranked[1][0] if len(ranked) > 1 else None,
                     "runner_up_rms_dE00": ranked[1][1][0] if len(ranked) > 1 else float("nan"),
                     "compared": ranked[0][1][1]})
    return pd.DataFrame(rows).set_index(keys)


# -- accessors --------------------------------------------------------------------------------

class _ColourMethods:
    def _spectra(self) -> xr.DataArray:
        raise NotImplementedError

    def spectra(self) -> xr.DataArray:
        """The validated ``reflectance(measurement, wavelength)`` (see :func:`read_spectra`)."""
        return self._spectra()

    def xyz(self, illuminant: str = "D65", observer: int = 2) -> xr.DataArray:
        """CIE XYZ (see :func:`to_xyz`)."""
        return to_xyz(self._spectra(), illuminant, observer)

    def lab(self, illuminant: str = "D65", observer: int = 2) -> xr.DataArray:
        """CIELAB (see :func:`to_lab`)."""
        return to_lab(self._spectra(), illuminant, observer)

    def fading(self, **kwargs) -> Fading:
        """Fading per object/point over time (see :func:`fading`)."""
        return fading(self._spectra(), **kwargs)


class ColourFrameAccessor(_ColourMethods):
    """``df.colour``: colorimetry of a wide instrument table (one column per wavelength)."""

    def __init__(self, frame: pd.DataFrame):
        self._frame = frame

    def _spectra(self) -> xr.DataArray:
        return spectra_from_table(self._frame, layout="columns")


class ColourArrayAccessor(_ColourMethods):
    """``spectra.colour``: colorimetry of a reflectance DataArray with a ``wavelength`` dim."""

    def __init__(self, array: xr.DataArray):
        self._array = array

    def _spectra(self) -> xr.DataArray:
        return _as_spectra(self._array)


def __getattr__(name: str):
    # one reader of spectra for every format: echoes_lab.spectral's, loaded on first use
    # (spectral imports this module's checks)
    if name == "read_spectra":
        from echoes_lab.spectral.readers import read_spectra

        return read_spectra
    msg = f"module {__name__!r} has no attribute {name!r}"
    raise AttributeError(msg)
