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
import json
import re
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from echoes_lab.collections.metadata import guard_table as _guard
from echoes_lab.errors import DataError

#: default guards on text exports: a logger export is never this wide or this large; a file that
#: is (e.g. one line of a million fields) is refused before pandas tries to hold it
MAX_COLUMNS = 10_000
MAX_BYTES = 2_000_000_000

#: quality bits (CF conventions, ``flag_masks``)
MISSING, DUPLICATE, RH_OUT_OF_RANGE, T_OUT_OF_RANGE, OUT_OF_ORDER = 1, 2, 4, 8, 16
FLAGS = {"missing": MISSING, "duplicate_timestamp": DUPLICATE, "rh_out_of_range": RH_OUT_OF_RANGE,
         "temperature_out_of_range": T_OUT_OF_RANGE, "out_of_time_order": OUT_OF_ORDER}

_TIME = re.compile(
    r"^(date[ _/-]?time|timestamp|time[ _]?stamp|datum[ _/-]?zeit|zeitstempel|horodatage|"
    r"date|datum|time|zeit|heure|fecha|data)\b",
    re.I,
)
_COMBINED = re.compile(
    r"^(date[ _/-]?time|timestamp|time[ _]?stamp|datum[ _/-]?zeit|zeitstempel|horodatage)", re.I
)
_DATE_ONLY = re.compile(r"^(date|datum|fecha|data)\b", re.I)
_TIME_ONLY = re.compile(r"^(time|zeit|heure|hora)\b", re.I)
_TEMP = re.compile(r"temp|°\s*[cf]\b|celsius|fahrenheit|^t\s*\(", re.I)
_RH = re.compile(r"\brh\b|%\s*rh|rel.*hum|humid|feuchte|^hr\b|^hum", re.I)
_SENSOR = re.compile(r"^(sensor|logger|serial|device|channel|probe|station|transmitter)", re.I)
_ROOM = re.compile(r"^(room|location|space|gallery|site|raum|salle|standort|description)", re.I)
_FAHRENHEIT = re.compile(r"°\s*f\b|\bdeg\s*f\b|degf|fahrenheit|\(f\)|\bf\)", re.I)


_warming: threading.Thread | None = None


def _warm_engine() -> None:
    """Load the climate engine's compiled kernels in a background thread while the data are
    read: numba's first use in a process sets up LLVM and its target (about 0.5 s of CPU,
    whoever pays it), which the read then hides from the first ``risk_table()``. Once per
    process; a failure here only means the first call pays it."""
    global _warming
    if _warming is not None:
        return

    def warm():
        try:
            from echoes_lab.climate import engine

            engine.warm()
        except Exception:  # noqa: BLE001 - the call itself will report anything real
            return

    _warming = threading.Thread(target=warm, name="echoes-climate-warm", daemon=True)
    _warming.start()


def read_climate(source, *, sensor: str | None = None, room: str | None = None,
                 temperature_unit: str | dict | None = None, resample: str | None = None,
                 dayfirst: bool | None = None, rh_range: tuple[float, float] = (0.0, 100.0),
                 t_range: tuple[float, float] = (-40.0, 70.0), max_columns: int = MAX_COLUMNS,
                 max_bytes: int = MAX_BYTES) -> xr.Dataset:
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
    max_columns, max_bytes
        Guards against files that are not logger exports (a line of a million fields would
        otherwise take gigabytes to read).

    Returns
    -------
    xarray.Dataset
        ``ds.attrs["layout"]`` (JSON text) says what was detected: encoding, manufacturer
        preset, separator, header, units and marker lines, decimal mark, and the date order
        with its evidence. A logger measuring only one quantity gives the other as all-NaN with
        ``attrs["measured"] = "no"``. Text columns other than time and values (location,
        receiver, serial …) are kept as coordinates along ``sensor``.

    Raises
    ------
    DataError
        No timestamp, temperature or RH column, or timestamps that cannot be parsed; the
        message names the file and the line.
    """
    _warm_engine()
    layout: dict = {}
    if isinstance(source, xr.Dataset):
        return _validate_gridded(source, "dataset", temperature_unit, rh_range, t_range)
    if isinstance(source, pd.DataFrame):
        frame, name, lines = source.copy(), "DataFrame", None
    else:
        path = Path(source)
        name = str(path)
        if not path.exists():
            msg = f"{path}: no such file"
            raise DataError(msg)
        if path.suffix in (".nc", ".nc4", ".netcdf", ".h5"):
            return _validate_gridded(
                xr.open_dataset(path, chunks={}), name, temperature_unit, rh_range, t_range
            )
        if path.suffix == ".zarr" or (path / ".zattrs").exists() or (path / "zarr.json").exists():
            return _validate_gridded(
                xr.open_zarr(path, consolidated=(path / ".zmetadata").exists()),
                name,
                temperature_unit,
                rh_range,
                t_range,
            )
        frame, lines, layout = _read_text(path, max_columns, max_bytes)
        sensor = sensor or path.stem
    ds = _from_long(frame, name, lines, sensor, room, temperature_unit, resample, dayfirst,
                    rh_range, t_range, layout)
    ds.attrs["layout"] = json.dumps(layout, ensure_ascii=False)
    return ds


# -- text exports ----------------------------------------------------------------------------


_MOJIBAKE_DEGREE = re.compile(r"(?:Â°|ï¿½|�|º|°)\s*C\b|\bdeg\s*C\b|^C$", re.I)


_DATA_FIELD = re.compile(r"^-?\d+(?:[.,]\d+)?$|\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}|\d{1,2}:\d{2}")


def _decode(path: Path, raw: bytes) -> tuple[str, str]:
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return raw.decode(encoding), encoding
        except UnicodeDecodeError:
            continue
    return raw.decode("latin-1"), "latin-1"  # never reached: cp1252 leaves few bytes undefined


def _split(line: str, sep: str) -> list[str]:
    return [f.strip().strip('"').strip() for f in next(csv.reader([line], delimiter=sep), [])]


def _preset(lines: list[str]) -> tuple[str, dict] | None:
    """Recognise the exports of manufacturers whose layout the generic search cannot read:
    the header names no variable (T&D, Tinytag) or sits behind marker lines (Rotronic)."""
    head = [ln.strip() for ln in lines[:80]]
    first = head[0] if head else ""
    if "Date/Time" in first and "No.1" in first and len(head) > 3:  # T&D (TR-7x, RTR-5xx)
        sep = ";" if first.count(";") > first.count(",") else ","
        return "T&D", {"sep": sep, "names": 1, "units": 2, "data": 3}
    if re.match(r'^"?,?"?Time"?,', first) and any(h.startswith("Property") for h in head[:10]):
        prop = next(i for i, h in enumerate(head) if h.startswith("Property"))
        return "Tinytag", {"sep": ",", "names": prop, "units": prop, "data": prop + 1}
    markers = {h.split(",")[0]: i for i, h in enumerate(head) if h.startswith("[#")}
    if "[#D]" in markers and "[#H]" in markers:  # Rotronic HW4 export
        return "Rotronic", {"sep": ",", "names": markers["[#H]"] + 1, "units": None,
                            "data": markers["[#D]"] + 1, "markers": sorted(markers.values())}
    return None


def _read_text(path: Path, max_columns: int = MAX_COLUMNS,
               max_bytes: int = MAX_BYTES) -> tuple[pd.DataFrame, int, dict]:
    """Find the layout of a text export and read it: preset or header line under any preamble,
    separator, units line, marker lines, decimal mark. Returns the table, the file line of its
    first data row and the layout found."""
    _guard(path, max_columns, max_bytes)
    text, encoding = _decode(path, path.read_bytes())
    lines = text.splitlines()
    layout: dict = {"encoding": encoding}
    preset = _preset(lines)
    if preset:
        name, spec = preset
        sep = spec["sep"]
        names = _split(lines[spec["names"]], sep)
        units = (
            _split(lines[spec["units"]], sep) if spec["units"] is not None else [""] * len(names)
        )
        body = [ln for ln in lines[spec["data"]:] if ln.strip().strip(sep).strip()]
        rows = [_split(ln, sep) for ln in body]
        width = max([len(names)] + [len(r) for r in rows])
        rows = [r + [""] * (width - len(r)) for r in rows]
        frame = pd.DataFrame(rows, columns=[f"c{i}" for i in range(width)])
        columns: dict[str, pd.Series] = {}
        if name == "Tinytag":
            desc = next(
                (_split(ln, sep) for ln in lines[: spec["names"]] if ln.startswith("Description")),
                [],
            )
            serial = next(
                (_split(ln, sep) for ln in lines[: spec["names"]] if ln.startswith("S/N")), []
            )
            columns["time"] = frame["c1"]
            for i, prop in enumerate(names):
                col = {"temperature": "temperature", "humidity": "relative humidity"}.get(
                    prop.lower()
                )
                if col:
                    columns[col] = frame[f"c{i}"]
            where = next((d for d in desc[2:] if d), None)
            if where:
                columns["location"] = pd.Series(where, index=frame.index)
            if serial[2:] and serial[2]:
                columns["serial"] = pd.Series(serial[2], index=frame.index)
            layout["units_line"] = spec["names"] + 1
        elif name == "T&D":
            columns["time"] = frame["c0"]
            for i, unit in enumerate(units):
                if _MOJIBAKE_DEGREE.search(unit) and "temperature" not in columns:
                    columns["temperature"] = frame[f"c{i}"]
                elif unit.strip() == "%" and "relative humidity" not in columns:
                    columns["relative humidity"] = frame[f"c{i}"]
            layout["units_line"] = spec["units"] + 1
        else:  # Rotronic: Date, Time and the variables named in [#H]; units in the [#n] blocks
            for i, col in enumerate(names):
                columns[col] = frame[f"c{i}"]
            layout["marker_lines"] = [m + 1 for m in spec["markers"]]
        out = pd.DataFrame(columns)
        decimal = "."
        if sep != "," and any(re.search(r"\d,\d", v) for v in body[:50]):
            decimal = ","
            for col in ("temperature", "relative humidity"):
                if col in out:
                    out[col] = out[col].str.replace(",", ".", regex=False)
        layout.update({"preset": name, "separator": sep, "header_line": spec["names"] + 1,
                       "first_data_line": spec["data"] + 1, "decimal": decimal})
        return out, spec["data"] + 1, layout
    head = lines[:60]
    header_at, sep, best = None, None, 0
    for i, line in enumerate(head):
        for candidate in (",", ";", "\t"):
            fields = _split(line, candidate)
            # the separator that splits the header into most fields
            if (len(fields) >= 2 and any(_TIME.match(f) for f in fields)
                    and (any(_RH.search(f) for f in fields) or any(_TEMP.search(f) for f in fields))
                    and len(fields) > best):
                header_at, sep, best = i, candidate, len(fields)
        if header_at is not None:
            break
    if header_at is None:
        msg = (
            f"{path}: no header line with a timestamp column (date/time/timestamp) and a "
            "temperature or RH column in the first 60 lines; is this a logger export? "
            "(exports of T&D, Tinytag and Rotronic are recognised by their layout)"
        )
        raise DataError(msg)
    names = _split(lines[header_at], sep)
    skip = []
    units_line = None
    nxt = header_at + 1
    # a units line ("°C;%RH") or marker lines ("[#D]", "---") between header and data
    while nxt < len(lines) and nxt < header_at + 5:
        fields = _split(lines[nxt], sep)
        if any(_DATA_FIELD.match(f) for f in fields):  # a reading or a date: data starts here
            break
        if any(_MOJIBAKE_DEGREE.search(f) or f.strip() in ("%", "%RH", "%rh") for f in fields):
            units_line = nxt
        skip.append(nxt)
        nxt += 1
    body = "\n".join(lines[nxt:nxt + 50])
    decimal = "," if sep != "," and re.search(r"\d,\d", body) else "."
    try:
        frame = pd.read_csv(io.StringIO(text), skiprows=[*range(header_at), *skip], sep=sep,
                            decimal=decimal, skipinitialspace=True, quoting=csv.QUOTE_MINIMAL,
                            dtype_backend="numpy_nullable", index_col=False, on_bad_lines="error")
    except (pd.errors.ParserError, ValueError) as exc:
        msg = (
            f"{path}: cannot read the table under the header on line {header_at + 1} "
            f"with separator {sep!r} ({exc}); check the export's separator"
        )
        raise DataError(msg) from None
    frame.columns = [str(c).strip() for c in frame.columns]
    frame = frame.loc[:, [c for c in frame.columns if c and not c.startswith("Unnamed")]]
    if units_line is not None:  # "T/°C" in the header or "°C" on the units line: the same thing
        units = _split(lines[units_line], sep)
        frame.columns = [
            f"{c} ({u})" if u and u not in c else c
            for c, u in zip(frame.columns, units + [""] * len(frame.columns), strict=False)
        ]
    layout.update({"preset": None, "separator": sep, "header_line": header_at + 1,
                   "units_line": units_line + 1 if units_line is not None else None,
                   "marker_lines": [s + 1 for s in skip if s != units_line],
                   "first_data_line": nxt + 1, "decimal": decimal})
    del names
    return frame, nxt + 1, layout


def _date_order(text: pd.Series) -> tuple[bool | None, str]:
    """Day-first or month-first, decided with evidence from every row (a first number above 12
    is a day, a second above 12 too); ``None`` when no row decides it."""
    parts = text.str.extract(r"^\s*(\d{1,2})[./-](\d{1,2})[./-](\d{2,4})\b")
    if parts[0].isna().all():
        return None, "not ambiguous: the month is written as a word (or the dates are not d/m/y)"
    a, b = pd.to_numeric(parts[0], errors="coerce"), pd.to_numeric(parts[1], errors="coerce")
    day_first = np.flatnonzero((a > 12).to_numpy(dtype=bool))
    month_first = np.flatnonzero((b > 12).to_numpy(dtype=bool))
    if len(day_first) and len(month_first):
        return None, (
            f"contradictory: row {day_first[0]} ({text.iloc[day_first[0]]!r}) is day-first, "
            f"row {month_first[0]} ({text.iloc[month_first[0]]!r}) month-first"
        )
    if len(day_first):
        return (
            True,
            f"day first: {text.iloc[day_first[0]]!r} (row {day_first[0]}) has a day above 12",
        )
    if len(month_first):
        return (
            False,
            f"month first: {text.iloc[month_first[0]]!r} (row {month_first[0]}) has a day above 12",
        )
    return None, "ambiguous: no day above 12 in any row"


def _pick(columns, pattern, what, name, required=True):
    hits = [c for c in columns if pattern.search(str(c))]
    if not hits and required:
        msg = f"{name}: no {what} column among {list(columns)}"
        raise DataError(msg)
    return hits[0] if hits else None


def _parse_times(values: pd.Series, name: str, first_line: int | None, dayfirst: bool | None,
                 layout: dict | None = None) -> pd.Series:
    layout = {} if layout is None else layout
    if pd.api.types.is_datetime64_any_dtype(values):
        layout["date_order"] = "already dates"
        return values
    text = values.astype("string").str.strip()
    # "07.08.25,00:00:00" (miniClima): a comma between date and time
    text = text.str.replace(r"^(\S+?),(\d{1,2}:\d{2})", r"\1 \2", regex=True)
    evidence = "given by dayfirst="
    if dayfirst is None:
        try:
            parsed = pd.to_datetime(text, format="ISO8601")
            layout["date_order"] = "ISO 8601"
            return parsed
        except (ValueError, TypeError):
            pass
        dayfirst, evidence = _date_order(text)
        if evidence.startswith("contradictory"):
            msg = (
                f"{name}: the dates are {evidence}; the export mixes two date orders: "
                "fix the export (or pass dayfirst= and check the flagged rows)"
            )
            raise DataError(msg)
        if dayfirst is None and text.str.match(r"^\s*\d{1,2}\.\d{1,2}\.\d{2,4}").any():
            dayfirst, evidence = True, "day first: dates written with dots (d.m.y) are day-first"
    attempts = []
    for first in ([dayfirst] if dayfirst is not None else [True, False]):
        parsed = pd.to_datetime(text, format="mixed", dayfirst=first, errors="coerce")
        attempts.append((int(parsed.isna().sum()), parsed.diff().nunique(), first, parsed))
    bad, _, first, parsed = min(attempts, key=lambda a: (a[0], a[1]))
    if dayfirst is None and evidence.startswith("ambiguous"):
        evidence += (
            f"; read {'day' if first else 'month'} first, the order giving the most regular series"
        )
    layout["date_order"] = evidence
    if bad:
        row = int(np.flatnonzero(parsed.isna().to_numpy())[0])
        where = f"line {first_line + row}" if first_line else f"row {row}"
        value = text.iloc[row]
        other = pd.to_datetime(
            pd.Series([value]), format="mixed", dayfirst=not first, errors="coerce"
        )
        hint = (
            "pass dayfirst=True or False"
            if pd.notna(value) and other.notna().all()
            else "the time column holds something that is not a date here: fix or delete that line"
        )
        msg = (
            f"{name}: {where}: cannot read {value!r} as a date and time ({bad} such values); {hint}"
        )
        raise DataError(msg)
    return parsed


def _lines(rows: np.ndarray, first_line: int | None, limit: int = 8) -> str:
    label = "lines" if first_line else "rows"
    shown = ", ".join(str(int(r) + (first_line or 0)) for r in rows[:limit])
    return f"{label} {shown}" + (f" and {len(rows) - limit} more" if len(rows) > limit else "")


def _from_long(frame, name, first_line, sensor, room, temperature_unit, resample, dayfirst,
               rh_range, t_range, layout=None):
    layout = {} if layout is None else layout
    cols = list(frame.columns)
    combined = _pick(cols, _COMBINED, "timestamp", name, required=False)
    date_col = _pick(cols, _DATE_ONLY, "date", name, required=False)
    time_col = _pick(cols, _TIME_ONLY, "time", name, required=False)
    if not combined and date_col and time_col:  # exports with a Date and a Time column
        stamp = frame[date_col].astype("string") + " " + frame[time_col].astype("string")
    else:
        stamp = frame[combined or _pick(cols, _TIME, "timestamp (date/time/timestamp)", name)]
    frame = frame.assign(_row=np.arange(len(frame)),
                         time=_parse_times(stamp, name, first_line, dayfirst, layout))
    t_col = _pick(
        [c for c in cols if not _RH.search(c)], _TEMP, "temperature", name, required=False
    )
    rh_col = _pick(cols, _RH, "relative humidity", name, required=False)
    if t_col is None and rh_col is None:
        msg = (
            f"{name}: no temperature or relative humidity column among {list(cols)}; "
            "name them (e.g. 'Temperature (°C)', 'RH (%)') or pass a DataFrame"
        )
        raise DataError(msg)
    layout["variables"] = [
        v for v, c in (("temperature", t_col), ("relative_humidity", rh_col)) if c
    ]
    s_col = _pick(cols, _SENSOR, "sensor", name, required=False)
    r_col = _pick(cols, _ROOM, "room", name, required=False)
    frame["sensor"] = frame[s_col].astype(str) if s_col else (sensor or "sensor")
    frame["room"] = frame[r_col].astype(str) if r_col else (room or frame["sensor"])
    used = {
        combined,
        date_col,
        time_col,
        t_col,
        rh_col,
        s_col,
        r_col,
        "sensor",
        "room",
        "time",
        "_row",
        "temperature_unit",
    }
    extra = [c for c in cols if c not in used and not pd.api.types.is_numeric_dtype(frame[c])
             and frame.groupby("sensor")[c].nunique(dropna=False).max() == 1]
    for col in (t_col, rh_col):
        if col is not None:
            frame[col] = pd.to_numeric(frame[col], errors="coerce").astype("float64")
    frame = frame.rename(columns={t_col: "temperature", rh_col: "relative_humidity"})
    for missing in ({"temperature", "relative_humidity"} - set(frame.columns)):
        frame[missing] = np.nan
    frame["temperature"] = _to_celsius(frame, t_col or "", temperature_unit, name)

    issues: list[str] = []
    pieces = {}
    for key, one in frame.groupby("sensor", sort=True):
        backwards = np.flatnonzero(one["time"].diff().to_numpy() < np.timedelta64(0))
        flags = pd.Series(0, index=one.index, dtype="int16")
        if len(backwards):
            flags.iloc[backwards] |= OUT_OF_ORDER
            issues.append(
                f"{key}: {len(backwards)} readings earlier than the one before ("
                f"{_lines(one['_row'].to_numpy()[backwards], first_line)}); "
                "sorted by time and flagged"
            )
        one = one.assign(quality=flags).sort_values("time", kind="stable")
        dup = one["time"].duplicated(keep="first").to_numpy()
        if dup.any():
            clash = (
                one[one["time"].duplicated(keep=False)]
                .groupby("time")[["temperature", "relative_humidity"]]
                .nunique()
            )
            differing = int((clash > 1).any(axis=1).sum())
            issues.append(
                f"{key}: {int(dup.sum())} duplicated timestamps "
                f"({_lines(one['_row'].to_numpy()[dup], first_line)}); "
                f"first reading kept and flagged"
                + (f", {differing} of them with differing values" if differing else "")
            )
            keep_flag = one["time"].duplicated(keep=False).to_numpy() & ~dup
            one = one.assign(quality=one["quality"].to_numpy() | np.where(keep_flag, DUPLICATE, 0))[
                ~dup
            ]
        one = _flag_range(
            one, key, "relative_humidity", rh_range, "%", RH_OUT_OF_RANGE, "RH", first_line, issues
        )
        one = _flag_range(
            one,
            key,
            "temperature",
            t_range,
            "°C",
            T_OUT_OF_RANGE,
            "temperature",
            first_line,
            issues,
        )
        pieces[key] = one.set_index("time")
    if not pieces:
        msg = f"{name}: no readings"
        raise DataError(msg)

    rooms = {k: str(p["room"].iloc[0]) for k, p in pieces.items()}
    kept = {c: {k: str(p[c].iloc[0]) for k, p in pieces.items()} for c in extra}
    if resample:
        grid = pd.date_range(min(p.index.min() for p in pieces.values()).floor(resample),
                             max(p.index.max() for p in pieces.values()), freq=resample)
        for key, one in pieces.items():
            values = one[["temperature", "relative_humidity"]].resample(resample).mean()
            bits = [
                ((one["quality"] & b) > 0).resample(resample).max().fillna(False).astype("int16")
                * b
                for b in FLAGS.values()
                if b != MISSING
            ]
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
    ds = xr.Dataset(
        {
            "temperature": (("sensor", "time"), t),
            "relative_humidity": (("sensor", "time"), rh),
            "quality": (("sensor", "time"), q),
        },
        coords={
            "sensor": sensors,
            "time": times,
            "room": ("sensor", [rooms[s] for s in sensors]),
            **{_coord_name(c): ("sensor", [kept[c][s] for s in sensors]) for c in extra},
        },
    )
    ds = _attrs(ds, name, issues)
    for var in ("temperature", "relative_humidity"):
        if var not in layout.get("variables", [var]):
            ds[var].attrs["measured"] = "no"
            ds[var].attrs["comment"] = "this logger does not measure it: all values are NaN"
    return ds


def _coord_name(column: str) -> str:
    name = re.sub(r"\W+", "_", column.strip().lower()).strip("_") or "column"
    return name if name not in ("sensor", "time", "room", "temperature", "relative_humidity",
                                "quality") else f"{name}_column"


def _to_celsius(frame, t_col, declared, name):
    temp = frame["temperature"]
    if declared is not None:
        units = (
            frame["sensor"].map(declared)
            if isinstance(declared, dict)
            else pd.Series(declared, index=frame.index)
        )
    elif "temperature_unit" in frame.columns:
        units = frame["temperature_unit"].astype(str)
    elif _FAHRENHEIT.search(t_col):
        units = pd.Series("degF", index=frame.index)
    else:
        units = pd.Series("degC", index=frame.index)
        if temp.notna().any() and temp.median() > 45:
            msg = (
                f"{name}: column {t_col!r} has a median of {temp.median():.1f}, too warm for °C "
                "indoors and the header names no unit; pass temperature_unit='degF' or 'degC'"
            )
            raise DataError(msg)
    units = units.fillna("degC").str.replace("°", "deg").str.strip()
    unknown = sorted(set(units) - {"degC", "degF", "C", "F", "degc", "degf"})
    if unknown:
        msg = f"{name}: unknown temperature unit(s) {unknown}; use degC or degF"
        raise DataError(msg)
    fahrenheit = units.str.upper().str.endswith("F").to_numpy()
    return temp.where(~fahrenheit, (temp - 32.0) * 5.0 / 9.0)


def _flag_range(one, key, col, bounds, unit, bit, label, first_line, issues):
    bad = ~one[col].between(*bounds) & one[col].notna()
    if bad.any():
        values = sorted(set(one.loc[bad, col].round(2)))[:5]
        issues.append(
            f"{key}: {int(bad.sum())} {label} readings outside {bounds[0]:g}–{bounds[1]:g} {unit} "
            f"({_lines(one.loc[bad, '_row'].to_numpy(), first_line)}; values {values}); "
            "masked and flagged"
        )
        one = one.assign(
            quality=one["quality"].to_numpy() | np.where(bad, bit, 0), **{col: one[col].mask(bad)}
        )
    return one


def _describe_gaps(sensors, times, q, issues, limit=3):
    """Gaps of each sensor against its **own** usual interval (the median step between its
    readings), so a logger recording every 5 h beside one recording every 15 min has no false
    gaps."""
    for i, key in enumerate(sensors):
        present = times[(q[i] & MISSING) == 0]
        if len(present) < 3:
            continue
        gaps = pd.Series(present[1:] - present[:-1], index=present[:-1])
        step = gaps.median()
        big = gaps[gaps > 2 * step]
        if len(big):
            shown = "; ".join(
                f"{a:%Y-%m-%d %H:%M} to {a + g:%Y-%m-%d %H:%M}" for a, g in big.iloc[:limit].items()
            )
            issues.append(
                f"{key}: {len(big)} gap(s) longer than two of its steps of {step}: {shown}"
                + (" …" if len(big) > limit else "")
            )


# -- NetCDF / Zarr -------------------------------------------------------------------------

def _validate_gridded(ds, name, declared, rh_range, t_range):
    names = {v: v for v in ds.data_vars}
    t_var = _pick([v for v in names if not _RH.search(v)], _TEMP, "temperature", name)
    rh_var = _pick(list(names), _RH, "relative humidity", name)
    ds = ds.rename({t_var: "temperature", rh_var: "relative_humidity"}) if (t_var, rh_var) != (
        "temperature", "relative_humidity") else ds
    if set(ds["temperature"].dims) != {"sensor", "time"}:
        msg = f"{name}: temperature has dims {ds['temperature'].dims}; expected (sensor, time)"
        raise DataError(msg)
    ds = ds.transpose("sensor", "time", ...)
    unit = (declared if isinstance(declared, str) else None) or ds["temperature"].attrs.get(
        "units", "degC"
    )
    unit = str(unit).replace("°", "deg").strip()
    if unit in ("degF", "F", "fahrenheit"):
        ds["temperature"] = (ds["temperature"] - 32.0) * 5.0 / 9.0
    elif unit in ("K", "kelvin"):
        ds["temperature"] = ds["temperature"] - 273.15
    elif unit not in ("degC", "C", "celsius", "degree_Celsius"):
        msg = f"{name}: temperature units {unit!r} not understood; use degC, degF or K"
        raise DataError(msg)
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
    ds = ds.assign(
        temperature=t.where(~bad_t), relative_humidity=rh.where(~bad_rh), quality=quality
    )
    return _attrs(ds, name, issues)


def _attrs(ds, name, issues):
    ds["temperature"].attrs = {
        "units": "degC",
        "long_name": "air temperature",
        "standard_name": "air_temperature",
    }
    ds["relative_humidity"].attrs = {
        "units": "%",
        "long_name": "relative humidity",
        "standard_name": "relative_humidity",
    }
    ds["quality"].attrs = {"long_name": "quality flags", "flag_masks": list(FLAGS.values()),
                           "flag_meanings": " ".join(FLAGS)}
    ds.attrs.update({"source": name, "issues": issues})
    return ds
