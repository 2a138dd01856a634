"""Reading temperature / relative-humidity logger exports into one xarray Dataset.

:func:`read_climate` is the one way in. It accepts a CSV export of a common logger (Hanwell,
Meaco, Testo, Lascar EasyLog, HOBO and the like: header preambles, ``,`` ``;`` or tab
separators, decimal commas, ISO or day-first/month-first timestamps, a date and a time column,
°C or °F), a NetCDF file, a Zarr store or a pandas DataFrame, long (one ``sensor`` column) or
for one logger. It returns ``Dataset(sensor, time)`` with

* ``temperature`` in °C and ``relative_humidity`` in %, units in ``attrs["units"]``;
* ``room`` (and any other location column) as a coordinate along ``sensor``;
* ``quality``: a CF bit-mask flag variable (``flag_masks`` / ``flag_meanings``) saying why a
  cell is empty or was changed. Nothing is silently dropped: impossible readings are masked
  *and* flagged, duplicated timestamps are kept once and flagged, readings out of time order
  are sorted and flagged, and every such fault is also described, with the sensor and the
  file lines, in ``ds.attrs["issues"]`` (``ds.climate.issues``).

Resampling to a regular step (``resample="15min"``) averages the valid readings in each step
and OR-combines their flags; empty steps are flagged ``missing``.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from echoes_lab.errors import DataError

#: quality bits (CF conventions, ``flag_masks``)
MISSING, DUPLICATE, RH_OUT_OF_RANGE, T_OUT_OF_RANGE, OUT_OF_ORDER = 1, 2, 4, 8, 16
FLAGS = {"missing": MISSING, "duplicate_timestamp": DUPLICATE, "rh_out_of_range": RH_OUT_OF_RANGE,
         "temperature_out_of_range": T_OUT_OF_RANGE, "out_of_time_order": OUT_OF_ORDER}

_TIME = re.compile(r"^(date[ _/-]?time|timestamp|time[ _]?stamp|datum[ _/-]?zeit|zeitstempel|horodatage|"
                   r"date|datum|time|zeit|heure|fecha|data)\b", re.I)
_COMBINED = re.compile(r"^(date[ _/-]?time|timestamp|time[ _]?stamp|datum[ _/-]?zeit|zeitstempel|horodatage)",
                       re.I)
_DATE_ONLY = re.compile(r"^(date|datum|fecha|data)\b", re.I)
_TIME_ONLY = re.compile(r"^(time|zeit|heure|hora)\b", re.I)
_TEMP = re.compile(r"temp|°\s*[cf]\b|celsius|fahrenheit|^t\s*\(", re.I)
_RH = re.compile(r"\brh\b|%\s*rh|rel.*hum|humid|feuchte|^hr\b|^hum", re.I)
_SENSOR = re.compile(r"^(sensor|logger|serial|device|channel|probe|station)", re.I)
_ROOM = re.compile(r"^(room|location|space|gallery|site|raum|salle)", re.I)
_FAHRENHEIT = re.compile(r"°\s*f\b|\bdeg\s*f\b|degf|fahrenheit|\(f\)|\bf\)", re.I)


def read_climate(source, *, sensor: str | None = None, room: str | None = None,
                 temperature_unit: str | dict | None = None, resample: str | None = None,
                 dayfirst: bool | None = None, rh_range: tuple[float, float] = (0.0, 100.0),
                 t_range: tuple[float, float] = (-40.0, 70.0)) -> xr.Dataset:
    """Read logger data into ``Dataset(sensor, time)`` of temperature (°C) and RH (%).

    Parameters
    ----------
    source
        A CSV/TXT export, a NetCDF file (``.nc``), a Zarr store (``.zarr``), a pandas
        DataFrame, or an xarray Dataset (validated and flagged the same way).
    sensor, room
        Name and room of the logger when the file holds one logger and has no such column
        (default: the file name).
    temperature_unit
        ``"degC"`` or ``"degF"`` (for all sensors, or a dict per sensor) when the export does not
        say; detected from the header (``°F``, ``degF``, ``Fahrenheit``) or a
        ``temperature_unit`` column otherwise.
    resample
        A pandas offset (``"15min"``, ``"1h"``) to put every sensor on one regular step.
    dayfirst
        Force day-first (``True``) or month-first (``False``) dates; by default ISO 8601 is
        tried, then whichever order parses every row into the most regular series.
    rh_range, t_range
        Physically possible readings; anything outside is masked and flagged, never dropped
        silently.

    Raises
    ------
    DataError
        No timestamp, temperature or RH column, or timestamps that cannot be parsed; the
        message names the file and the line.
    """
    if isinstance(source, xr.Dataset):
        return _validate_gridded(source, "dataset", temperature_unit, rh_range, t_range)
    if isinstance(source, pd.DataFrame):
        frame, name, lines = source.copy(), "DataFrame", None
    else:
        path = Path(source)
        name = str(path)
        if not path.exists():
            raise DataError(f"{path}: no such file")
        if path.suffix in (".nc", ".nc4", ".netcdf", ".h5"):
            return _validate_gridded(xr.open_dataset(path, chunks={}), name, temperature_unit, rh_range, t_range)
        if path.suffix == ".zarr" or (path / ".zattrs").exists() or (path / "zarr.json").exists():
            return _validate_gridded(xr.open_zarr(path, consolidated=(path / ".zmetadata").exists()), name, temperature_unit, rh_range, t_range)
        frame, lines = _read_text(path)
        sensor = sensor or path.stem
    return _from_long(frame, name, lines, sensor, room, temperature_unit, resample, dayfirst, rh_range, t_range)


# -- text exports ----------------------------------------------------------------------------

def _read_text(path: Path) -> tuple[pd.DataFrame, int]:
    """Find the header line under any preamble, the separator and the decimal mark."""
    raw = path.read_bytes()
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            text = raw.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    head = text.splitlines()[:60]
    header_at, sep = None, None
    for i, line in enumerate(head):
        for candidate in (",", ";", "\t"):
            fields = [f.strip().strip('"') for f in line.split(candidate)]
            if len(fields) >= 2 and any(_TIME.match(f) for f in fields) and (
                    any(_RH.search(f) for f in fields) or any(_TEMP.search(f) for f in fields)):
                header_at, sep = i, candidate
                break
        if header_at is not None:
            break
    if header_at is None:
        raise DataError(f"{path}: no header line with a timestamp column (date/time/timestamp) and a "
                        "temperature or RH column in the first 60 lines; is this a logger export?")
    body = "\n".join(text.splitlines()[header_at:header_at + 6])
    decimal = "," if sep != "," and re.search(r"\d,\d", body) else "."
    frame = pd.read_csv(io.StringIO(text), skiprows=header_at, sep=sep, decimal=decimal,
                        skipinitialspace=True, quoting=csv.QUOTE_MINIMAL, dtype_backend="numpy_nullable")
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame, header_at + 2  # file line of the first data row (1-based)


def _pick(columns, pattern, what, name, required=True):
    hits = [c for c in columns if pattern.search(str(c))]
    if not hits and required:
        raise DataError(f"{name}: no {what} column among {list(columns)}")
    return hits[0] if hits else None


def _parse_times(values: pd.Series, name: str, first_line: int | None, dayfirst: bool | None) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(values):
        return values
    text = values.astype("string").str.strip()
    attempts = []
    if dayfirst is None:
        try:
            return pd.to_datetime(text, format="ISO8601")
        except (ValueError, TypeError):
            pass
    for first in ([dayfirst] if dayfirst is not None else [True, False]):
        parsed = pd.to_datetime(text, format="mixed", dayfirst=first, errors="coerce")
        attempts.append((int(parsed.isna().sum()), parsed.diff().nunique(), parsed))
    bad, _, parsed = min(attempts, key=lambda a: (a[0], a[1]))
    if bad:
        row = int(np.flatnonzero(parsed.isna().to_numpy())[0])
        where = f"line {first_line + row}" if first_line else f"row {row}"
        raise DataError(f"{name}: {where}: cannot read {text.iloc[row]!r} as a date and time "
                        f"({bad} such values); pass dayfirst= or fix the export")
    return parsed


def _lines(rows: np.ndarray, first_line: int | None, limit: int = 8) -> str:
    label = "lines" if first_line else "rows"
    shown = ", ".join(str(int(r) + (first_line or 0)) for r in rows[:limit])
    return f"{label} {shown}" + (f" and {len(rows) - limit} more" if len(rows) > limit else "")


def _from_long(frame, name, first_line, sensor, room, temperature_unit, resample, dayfirst, rh_range, t_range):
    cols = list(frame.columns)
    combined = _pick(cols, _COMBINED, "timestamp", name, required=False)
    date_col = _pick(cols, _DATE_ONLY, "date", name, required=False)
    time_col = _pick(cols, _TIME_ONLY, "time", name, required=False)
    if not combined and date_col and time_col:  # exports with a Date and a Time column
        stamp = frame[date_col].astype("string") + " " + frame[time_col].astype("string")
    else:
        stamp = frame[combined or _pick(cols, _TIME, "timestamp (date/time/timestamp)", name)]
    frame = frame.assign(_row=np.arange(len(frame)), time=_parse_times(stamp, name, first_line, dayfirst))
    t_col = _pick([c for c in cols if not _RH.search(c)], _TEMP, "temperature", name)
    rh_col = _pick(cols, _RH, "relative humidity", name)
    s_col = _pick(cols, _SENSOR, "sensor", name, required=False)
    r_col = _pick(cols, _ROOM, "room", name, required=False)
    frame["sensor"] = frame[s_col].astype(str) if s_col else (sensor or "sensor")
    frame["room"] = frame[r_col].astype(str) if r_col else (room or frame["sensor"])
    for col in (t_col, rh_col):
        frame[col] = pd.to_numeric(frame[col], errors="coerce").astype("float64")
    frame = frame.rename(columns={t_col: "temperature", rh_col: "relative_humidity"})
    frame["temperature"] = _to_celsius(frame, t_col, temperature_unit, name)

    issues: list[str] = []
    pieces = {}
    for key, one in frame.groupby("sensor", sort=True):
        backwards = np.flatnonzero(one["time"].diff().to_numpy() < np.timedelta64(0))
        flags = pd.Series(0, index=one.index, dtype="int16")
        if len(backwards):
            flags.iloc[backwards] |= OUT_OF_ORDER
            issues.append(f"{key}: {len(backwards)} readings earlier than the one before ("
                          f"{_lines(one['_row'].to_numpy()[backwards], first_line)}); sorted by time and flagged")
        one = one.assign(quality=flags).sort_values("time", kind="stable")
        dup = one["time"].duplicated(keep="first").to_numpy()
        if dup.any():
            clash = one[one["time"].duplicated(keep=False)].groupby("time")[["temperature", "relative_humidity"]].nunique()
            differing = int((clash > 1).any(axis=1).sum())
            issues.append(f"{key}: {int(dup.sum())} duplicated timestamps ({_lines(one['_row'].to_numpy()[dup], first_line)}); "
                          f"first reading kept and flagged" + (f", {differing} of them with differing values" if differing else ""))
            keep_flag = one["time"].duplicated(keep=False).to_numpy() & ~dup
            one = one.assign(quality=one["quality"].to_numpy() | np.where(keep_flag, DUPLICATE, 0))[~dup]
        one = _flag_range(one, key, "relative_humidity", rh_range, "%", RH_OUT_OF_RANGE, "RH", first_line, issues)
        one = _flag_range(one, key, "temperature", t_range, "°C", T_OUT_OF_RANGE, "temperature", first_line, issues)
        pieces[key] = one.set_index("time")
    if not pieces:
        raise DataError(f"{name}: no readings")

    rooms = {k: str(p["room"].iloc[0]) for k, p in pieces.items()}
    if resample:
        grid = pd.date_range(min(p.index.min() for p in pieces.values()).floor(resample),
                             max(p.index.max() for p in pieces.values()), freq=resample)
        for key, one in pieces.items():
            values = one[["temperature", "relative_humidity"]].resample(resample).mean()
            bits = [((one["quality"] & b) > 0).resample(resample).max().fillna(False).astype("int16") * b
                    for b in FLAGS.values() if b != MISSING]
            pieces[key] = values.assign(quality=sum(bits)).reindex(grid)
    times = pd.DatetimeIndex(sorted(set().union(*(p.index for p in pieces.values()))), name="time")
    sensors = sorted(pieces)
    shape = (len(sensors), len(times))
    t, rh = np.full(shape, np.nan), np.full(shape, np.nan)
    q = np.zeros(shape, dtype="int16")
    for i, key in enumerate(sensors):
        one = pieces[key].reindex(times)
        t[i], rh[i] = one["temperature"].to_numpy(float), one["relative_humidity"].to_numpy(float)
        q[i] = one["quality"].fillna(0).to_numpy("int16")
    q |= np.where(np.isnan(t) & np.isnan(rh), MISSING, 0).astype("int16")
    _describe_gaps(sensors, times, q, issues)
    ds = xr.Dataset({"temperature": (("sensor", "time"), t), "relative_humidity": (("sensor", "time"), rh),
                     "quality": (("sensor", "time"), q)},
                    coords={"sensor": sensors, "time": times, "room": ("sensor", [rooms[s] for s in sensors])})
    return _attrs(ds, name, issues)


def _to_celsius(frame, t_col, declared, name):
    temp = frame["temperature"]
    if declared is not None:
        units = frame["sensor"].map(declared) if isinstance(declared, dict) else pd.Series(declared, index=frame.index)
    elif "temperature_unit" in frame.columns:
        units = frame["temperature_unit"].astype(str)
    elif _FAHRENHEIT.search(t_col):
        units = pd.Series("degF", index=frame.index)
    else:
        units = pd.Series("degC", index=frame.index)
        if temp.median() > 45:
            raise DataError(f"{name}: column {t_col!r} has a median of {temp.median():.1f}, too warm for °C "
                            "indoors and the header names no unit; pass temperature_unit='degF' or 'degC'")
    units = units.fillna("degC").str.replace("°", "deg").str.strip()
    unknown = sorted(set(units) - {"degC", "degF", "C", "F", "degc", "degf"})
    if unknown:
        raise DataError(f"{name}: unknown temperature unit(s) {unknown}; use degC or degF")
    fahrenheit = units.str.upper().str.endswith("F").to_numpy()
    return temp.where(~fahrenheit, (temp - 32.0) * 5.0 / 9.0)


def _flag_range(one, key, col, bounds, unit, bit, label, first_line, issues):
    bad = ~one[col].between(*bounds) & one[col].notna()
    if bad.any():
        values = sorted(set(one.loc[bad, col].round(2)))[:5]
        issues.append(f"{key}: {int(bad.sum())} {label} readings outside {bounds[0]:g}–{bounds[1]:g} {unit} "
                      f"({_lines(one.loc[bad, '_row'].to_numpy(), first_line)}; values {values}); masked and flagged")
        one = one.assign(quality=one["quality"].to_numpy() | np.where(bad, bit, 0), **{col: one[col].mask(bad)})
    return one


def _describe_gaps(sensors, times, q, issues, limit=3):
    if len(times) < 3:
        return
    step = pd.Series(times).diff().median()
    for i, key in enumerate(sensors):
        present = times[(q[i] & MISSING) == 0]
        if len(present) < 2:
            continue
        gaps = pd.Series(present[1:] - present[:-1], index=present[:-1])
        big = gaps[gaps > 2 * step]
        if len(big):
            shown = "; ".join(f"{a:%Y-%m-%d %H:%M} to {a + g:%Y-%m-%d %H:%M}" for a, g in big.iloc[:limit].items())
            issues.append(f"{key}: {len(big)} gap(s) longer than two steps of {step}: {shown}"
                          + (" …" if len(big) > limit else ""))


# -- NetCDF / Zarr -------------------------------------------------------------------------

def _validate_gridded(ds, name, declared, rh_range, t_range):
    names = {v: v for v in ds.data_vars}
    t_var = _pick([v for v in names if not _RH.search(v)], _TEMP, "temperature", name)
    rh_var = _pick(list(names), _RH, "relative humidity", name)
    ds = ds.rename({t_var: "temperature", rh_var: "relative_humidity"}) if (t_var, rh_var) != (
        "temperature", "relative_humidity") else ds
    if set(ds["temperature"].dims) != {"sensor", "time"}:
        raise DataError(f"{name}: temperature has dims {ds['temperature'].dims}; expected (sensor, time)")
    ds = ds.transpose("sensor", "time", ...)
    unit = (declared if isinstance(declared, str) else None) or ds["temperature"].attrs.get("units", "degC")
    unit = str(unit).replace("°", "deg").strip()
    if unit in ("degF", "F", "fahrenheit"):
        ds["temperature"] = (ds["temperature"] - 32.0) * 5.0 / 9.0
    elif unit in ("K", "kelvin"):
        ds["temperature"] = ds["temperature"] - 273.15
    elif unit not in ("degC", "C", "celsius", "degree_Celsius"):
        raise DataError(f"{name}: temperature units {unit!r} not understood; use degC, degF or K")
    issues: list[str] = []
    index = ds.indexes["time"]
    if not index.is_monotonic_increasing or index.has_duplicates:
        stamps = index.values
        order = np.flatnonzero(np.diff(stamps) <= np.timedelta64(0)) + 1
        issues.append(f"all sensors: time index not increasing at positions {_lines(order, None)}; "
                      "sorted, and of each duplicated timestamp the first kept")
        ds = ds.isel(time=np.sort(np.unique(stamps, return_index=True)[1])).sortby("time")
    rh, t = ds["relative_humidity"], ds["temperature"]
    bad_rh = (rh < rh_range[0]) | (rh > rh_range[1])
    bad_t = (t < t_range[0]) | (t > t_range[1])
    quality = (xr.where(t.isnull() & rh.isnull(), MISSING, 0) | xr.where(bad_rh, RH_OUT_OF_RANGE, 0)
               | xr.where(bad_t, T_OUT_OF_RANGE, 0)).astype("int16")
    if "quality" in ds:
        quality = quality | ds["quality"].astype("int16")
    ds = ds.assign(temperature=t.where(~bad_t), relative_humidity=rh.where(~bad_rh), quality=quality)
    return _attrs(ds, name, issues)


def _attrs(ds, name, issues):
    ds["temperature"].attrs = {"units": "degC", "long_name": "air temperature", "standard_name": "air_temperature"}
    ds["relative_humidity"].attrs = {"units": "%", "long_name": "relative humidity", "standard_name": "relative_humidity"}
    ds["quality"].attrs = {"long_name": "quality flags", "flag_masks": list(FLAGS.values()),
                           "flag_meanings": " ".join(FLAGS)}
    ds.attrs.update({"source": name, "issues": issues})
    return ds
