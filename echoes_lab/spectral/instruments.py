"""The layouts of point-spectrum exports: CGATS.17 and ArgyllCMS, Ocean Optics
SpectraSuite/OceanView, ECOSTRESS/ASTER and USGS splib ASCII, two-column text with a header block
(ASD, Avantes, StellarNet, Spectra Vista ``.sig``), ENVI ASCII plots. Each parser gives a table
(``sample`` then one column per wavelength in nm) and what it found (``info``), which
:func:`echoes_lab.spectral.read_spectra` validates."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from echoes_lab.errors import SpectralError

#: the marker SpectraSuite and OceanView (Ocean Optics / Ocean Insight) write between their
#: header and the data
_OCEAN_MARKER = re.compile(r"^>>>>>Begin (?:Processed )?Spectral Data<<<<<$")
#: CGATS field names that hold one wavelength: X-Rite ``nm380``, CGATS.17 / i1Profiler
#: ``SPECTRAL_NM380`` and ``SPECTRAL_380``, ArgyllCMS ``SPEC_380``, and ``R380``
_CGATS_SPECTRAL = re.compile(
    r"^(?:SPECTRAL_NM_?|SPECTRAL_|SPEC_|NM_?|R_?)(\d{3,4}(?:\.\d+)?)$", re.IGNORECASE
)
#: first tokens of the CGATS family: CGATS.17, ArgyllCMS (CTI1/2/3, SPECT, CCSS, CMF), IT8
CGATS_IDS = ("CGATS", "CTI1", "CTI2", "CTI3", "SPECT", "CCSS", "CCMX", "CMF", "IT8", "ISO28178")
#: USGS Spectral Library (splib06/07) marks deleted channels with this value
_USGS_DELETED = -1.23e34
#: the title line of a USGS splib ASCII file: "splib07a Record=18386: …", "s07_ASD Record=19: …"
_USGS_TITLE = r"^\s*(?:s?splib\d\d\w*|s\d\d_\w+)\s+Record=\d+:"
_NUMBER = re.compile(r"^[-+]?(?:\d+(?:[.,]\d*)?|[.,]\d+)(?:[eE][-+]?\d+)?$")
_MICRONS = ("micrometer", "micron", "µm", "um)", "(um")


def _number(token: str, decimal_comma: bool) -> float:
    return float(token.replace(",", ".") if decimal_comma else token)


def read_text(path: Path) -> tuple[str, str]:
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


def parse_cgats(path: Path, text: str) -> tuple[pd.DataFrame, dict]:
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


def parse_point_text(path: Path, text: str) -> tuple[pd.DataFrame, dict] | None:
    """Instrument exports with one row per wavelength: Ocean Optics SpectraSuite/OceanView,
    ECOSTRESS/ASTER library files, Spectra Vista ``.sig``, ENVI ASCII plots, USGS splib
    ASCII, ASD and other two-column exports with a header block. ``None`` when the file is a
    plain table, for :func:`csv_frame`."""
    lines = text.splitlines()
    head = "\n".join(lines[:40])
    if any(_OCEAN_MARKER.match(ln.strip()) for ln in lines[:200]):
        return _one_value_column(path, lines, *_ocean_header(path, lines))
    if re.search(r"^\s*X Units:", head, re.M) and re.search(r"^\s*Y Units:", head, re.M):
        return _one_value_column(path, lines, *_ecostress_header(path, lines))
    if lines and lines[0].strip().startswith("/*** Spectra Vista SIG Data ***/"):
        return _svc_sig(path, lines)
    if lines and lines[0].strip().lower() == "envi ascii plot file":
        return _envi_plot(path, lines)
    if re.match(_USGS_TITLE, lines[0] if lines else ""):
        return _usgs_ascii(path, lines)
    return _text_export(path, lines)


def _ocean_header(path: Path, lines: list[str]) -> tuple[int, str, dict, float]:
    """SpectraSuite/OceanView: the header block above ``>>>>>Begin Spectral Data<<<<<``."""
    name = path.stem
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
    return marker + 1, name, info, 1.0


def _ecostress_header(path: Path, lines: list[str]) -> tuple[int, str, dict, float]:
    """ECOSTRESS/ASTER: ``key: value`` lines with ``X Units``/``Y Units`` (micrometres and
    percent in most files)."""
    wl_factor = 1.0
    start = _first_numeric(lines)
    if start is None:
        msg = f"{path}: an ECOSTRESS/ASTER library file without data lines"
        raise SpectralError(msg)
    meta = _key_values(lines[:start])
    info = {"format": "ECOSTRESS/ASTER spectral library", "header_lines": start}
    for key in ("Name", "Owner", "Sample No.", "Measurement", "X Units", "Y Units"):
        if key in meta:
            info[key] = meta[key]
    name = meta.get("Name", path.stem)
    if any(u in meta.get("X Units", "").lower() for u in _MICRONS):
        wl_factor = 1000.0
    y_units = meta.get("Y Units", "").lower()
    if "percent" in y_units:
        info["scale"], info["scale_evidence"] = "percent", f"Y Units: {meta['Y Units']}"
    return start, name, info, wl_factor


def _one_value_column(path: Path, lines: list[str], start: int, name: str, info: dict,
                      wl_factor: float) -> tuple[pd.DataFrame, dict]:
    """The data lines below a header: wavelength and one value (ECOSTRESS and SpectraSuite)."""
    sep, comma = _separator(lines[start:start + 50])
    if comma:
        info["decimal"] = "comma"
    wavelength, vals = _two_columns(path, lines, start, sep, comma)
    if vals.shape[1] > 1:
        vals = vals[:, :1]  # ECOSTRESS and SpectraSuite: one value column
    if wl_factor != 1.0:
        info["wavelength_units"] = "micrometres (converted to nm)"
    return _rows_frame(np.round(wavelength * wl_factor, 3), vals, [name], info)


def _svc_sig(path: Path, lines: list[str]) -> tuple[pd.DataFrame, dict]:
    """Spectra Vista ``.sig`` (HR-1024i, GER)."""
    # "key= value" lines, then "data=" and rows of wavelength, reference, target and
    # reflectance in percent (SVC HR-1024i manual)
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


def _envi_plot(path: Path, lines: list[str]) -> tuple[pd.DataFrame, dict]:
    """An ENVI ASCII plot file: wavelength and one column per plotted spectrum."""
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


def _usgs_ascii(path: Path, lines: list[str]) -> tuple[pd.DataFrame, dict]:
    """USGS splib ASCII: a title line, one value per line, the wavelengths in the library's
    ``*Wavelengths*`` file beside it."""
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


def _text_export(path: Path, lines: list[str]) -> tuple[pd.DataFrame, dict] | None:
    """Two-column (or more) text exports with a header block (ASD, Avantes AvaSoft,
    StellarNet): separator, decimal comma, column names, a units line and micrometres found
    here; ``None`` for a plain table."""
    wl_factor = 1.0
    start = _first_numeric(lines)
    if start is None:
        return None
    notes = next((i for i, ln in enumerate(lines) if not ln.lstrip().startswith("#")), 0)
    if start == 0 or start == notes + 1 and _plain_csv(lines[notes:]):
        return None  # a plain table (after its '#' notes, if any): csv_frame reads it
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


def _plain_csv(lines: list[str]) -> bool:
    """A header line and comma/semicolon/tab rows: a plain table, for :func:`csv_frame`."""
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


def describe_grid(wl: np.ndarray) -> str:
    steps = np.diff(wl)
    if steps.size and np.allclose(steps, steps[0], atol=1e-6):
        return f"{wl[0]:g}–{wl[-1]:g} nm by {steps[0]:g} nm"
    return (f"{wl[0]:g}–{wl[-1]:g} nm, uneven steps of {steps.min():g} to {steps.max():g} nm"
            if steps.size else f"{wl[0]:g} nm")


def csv_frame(path: Path, text: str) -> pd.DataFrame:
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


def parse_export(path: Path, text: str) -> tuple[pd.DataFrame, dict] | None:
    """A CGATS file or another instrument export this module knows, as (table, what was
    found); ``None`` for a plain table (:func:`csv_frame`)."""
    head = text[:65536]
    first = head.lstrip().split(None, 1)[0].upper() if head.strip() else ""
    if first.startswith(CGATS_IDS) or "BEGIN_DATA_FORMAT" in head:
        return parse_cgats(path, text)
    return parse_point_text(path, text)
