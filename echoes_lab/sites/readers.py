"""Read heritage place inventories into one schema, in WGS84 (``read_sites``).

Formats: GeoJSON, GeoPackage, Shapefile (also zipped), KML (GDAL through pyogrio), and CSV
whose places are latitude/longitude columns, projected x/y columns with a ``crs``, a WKT column
or British National Grid references (``'TQ 30 80'``).

The schema, one row per place (:data:`COLUMNS`):

``id``, ``name``, ``designation`` (what the register calls it: "église paroissiale",
"Cultural"), ``protection`` (the legal status: "classé MH", "Grade I", "in danger"),
``authority`` (who designated it), ``period`` (the text) with ``period_earliest`` /
``period_latest`` (years, from :func:`echoes_lab.collections.dates.parse`), ``geometry`` (WGS84,
EPSG:4326), ``source`` (file name), ``licence`` and ``original`` (the source row as a dict, so
nothing read is lost). ``gdf.attrs`` holds ``source_crs`` (what the file was in),
``transformation`` (the pyproj operation used and its accuracy in metres) and ``quality`` (the
list ``gdf.sites.quality()`` shows).

Coordinates are transformed with pyproj (PROJ), without network access. The library ships
Ordnance Survey's OSTN15 grid (``echoes_lab/data/proj``, the NTv2 file as PROJ publishes it) and
puts it on PROJ's search path, so British National Grid coordinates (EPSG:27700) go through
"OSGB36 to WGS 84 (9)" (OSTN15, EPSG accuracy 1 m; it reproduces Ordnance Survey's published
test points to better than 1 cm) rather than the 7-parameter Helmert fallback "OSGB36 to WGS 84
(6)" (stated 2 m; up to 4.9 m off on those points). ``attrs["transformation"]`` names the
operation, its accuracy and the grids it used; where PROJ's best operation needs a grid that is
not installed, the fallback used and its accuracy are recorded in the quality report and a
warning says so rather than silently trusting the result. A point outside the grid of the
operation (PROJ returns infinity) loses its place and is listed in the quality report.
Once this module is loaded, geopandas' own ``to_crs`` to or from the British grid takes OSTN15
too; PROJ then reads a grid tile per point in row order, so sort a large frame of scattered
points spatially first (``read_sites`` does: 10,000 scattered points, 12 s in row order, 0.09 s
sorted).

References
----------
Ordnance Survey, *Transformations and OSGM15 user guide* (OSTN15), and its developer pack test
points ``OSTN15_OSGM15_TestInput/TestOutput`` (``tests/data/real/sites-ostn15``).
EPSG Geodetic Parameter Dataset, transformations 7710 "OSGB36 to WGS 84 (9)" (OSTN15, 1 m)
and 1314 "OSGB36 to WGS 84 (6)" (Helmert, 2 m).
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import warnings
import zipfile
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS
from pyproj.transformer import TransformerGroup

from echoes_lab.errors import DataError

WGS84 = "EPSG:4326"

#: PROJ grids shipped with the library (OSTN15); added to PROJ's search path before transforming
GRIDS = Path(__file__).resolve().parent.parent / "data" / "proj"

#: the columns of every table ``read_sites`` returns, in order
COLUMNS = ["id", "name", "designation", "protection", "authority", "period", "period_earliest",
           "period_latest", "source", "licence", "original", "geometry"]

#: column names tried, in order, when a field is not named by the caller (lower-cased)
GUESSES: dict[str, tuple[str, ...]] = {
    "id": ("id", "reference", "ref", "listentry", "list_entry", "monument_id", "id_no",
           "monumentnummer", "rijksmonument_nummer"),
    "name": ("name", "name_en", "nom", "naam", "title", "label", "appellation"),
    "designation": ("designation", "type", "category", "denomination", "grade"),
    "protection": ("protection", "status", "grade", "protection_status"),
    "authority": ("authority", "register", "organisation"),
    "period": ("period", "date", "century", "datering", "siecle"),
    "lat": ("latitude", "lat", "y_wgs84"),
    "lon": ("longitude", "lon", "lng", "long", "x_wgs84"),
    "wkt": ("wkt", "geometry", "geom", "the_geom"),
    "gridref": ("gridref", "grid_reference", "ngr", "national_grid_reference"),
}

#: the field mappings of registers read often; a preset fills what the caller leaves out
PRESETS: dict[str, dict[str, str | None]] = {
    # Inventaire général du patrimoine culturel / Mérimée open data (Ministère de la Culture)
    "merimee": {"name": "chptico", "designation": "chpdeno", "protection": "chpprot",
                "period": "chpscle", "authority": "chpuser", "id": None,
                "licence": "Licence Ouverte / Open Licence 2.0 (Etalab)"},
    # UNESCO World Heritage List export (whc-sites-*.csv)
    "whc": {"id": "id_no", "name": "name_en", "designation": "category", "protection": None,
            "period": None, "authority": None, "lat": "latitude", "lon": "longitude",
            "licence": "CC BY-SA 3.0 IGO (UNESCO World Heritage Centre)"},
}

_VECTOR = {".geojson", ".json", ".gpkg", ".shp", ".kml", ".kmz", ".zip", ".fgb", ".gml"}


# --------------------------------------------------------------------- British National Grid
def grid_reference(ref: str) -> tuple[float, float, float]:
    """Easting, northing (metres, EPSG:27700) of the south-west corner of a grid square, and
    the square's size.

    ``'TQ 30 80'`` is the 1 km square at E 530000, N 180000; ``'TG 51409 13177'`` the 1 m square
    at E 651409, N 313177. The letters name 500 km and 100 km squares of the false origin.

    References
    ----------
    Ordnance Survey, *A Guide to Coordinate Systems in Great Britain* (v3.6, 2020), section 9
    "The National Grid reference system"; the worked example of Annex C uses TG 51409 13177.
    """
    s = re.sub(r"\s+", "", str(ref)).upper()
    m = re.fullmatch(r"([A-HJ-Z])([A-HJ-Z])(\d*)", s)
    if not m or len(m.group(3)) % 2 or len(m.group(3)) > 10:
        msg = (f"'{ref}' is not a British National Grid reference: expected two letters and an "
               "even number of digits (up to 10), e.g. 'TQ 30 80' or 'TQ3080'")
        raise DataError(msg)
    # the letter I is not used; letters index a 5x5 grid from the top left
    idx = [ord(c) - ord("A") - (ord(c) > ord("I")) for c in m.group(1, 2)]
    e500, n500 = (idx[0] % 5 - 2) * 500_000, (3 - idx[0] // 5) * 500_000
    e100, n100 = (idx[1] % 5) * 100_000, (4 - idx[1] // 5) * 100_000
    digits = m.group(3)
    half = len(digits) // 2
    size = 10 ** (5 - half)
    e = float(digits[:half] or 0) * size
    n = float(digits[half:] or 0) * size
    if e500 + e100 < 0 or n500 + n100 < 0:
        msg = f"'{ref}' lies outside the British National Grid"
        raise DataError(msg)
    return e500 + e100 + e, n500 + n100 + n, float(size)


# ------------------------------------------------------------------------------ reading
def _c1(err: UnicodeDecodeError) -> tuple[str, int]:
    """The five bytes windows-1252 leaves undefined read as the C1 controls of the same number,
    as the WHATWG Encoding Standard's windows-1252 does (browsers read such files so)."""
    return err.object[err.start:err.end].decode("latin-1"), err.end


codecs.register_error("echoes-whatwg-c1", _c1)


def _read_text(path: Path, encoding: str | None) -> str:
    raw = path.read_bytes()
    if encoding:
        try:
            if codecs.lookup(encoding).name == "cp1252":
                return raw.decode("cp1252", errors="echoes-whatwg-c1")
            return raw.decode(encoding)
        except (LookupError, UnicodeDecodeError) as err:
            msg = f"{path}: cannot be read as {encoding} ({err})"
            raise DataError(msg) from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        msg = (f"{path}: not UTF-8 (byte 0x{raw[err.start]:02x} at offset {err.start}); "
               "pass encoding='cp1252' (Windows) or 'latin-1', whichever the register used")
        raise DataError(msg) from None


def _pick(frame: pd.DataFrame, field: str, given, path: Path):
    """The column named for ``field``: the caller's, else the first guess present."""
    if given is not None:
        if given not in frame.columns:
            msg = (f"{path}: no column '{given}' for {field}; columns are "
                   f"{', '.join(map(str, frame.columns[:25]))}")
            raise DataError(msg)
        return given
    lower = {str(c).lower(): c for c in frame.columns}
    for guess in GUESSES.get(field, ()):
        if guess in lower:
            return lower[guess]
    return None


def _vector(path: Path, layer, encoding) -> gpd.GeoDataFrame:
    import pyogrio

    target = str(path)
    if path.suffix.lower() == ".zip":
        with zipfile.ZipFile(path) as z:
            inner = [n for n in z.namelist() if n.lower().endswith((".shp", ".gpkg", ".geojson"))]
        if not inner:
            msg = f"{path}: the zip file holds no .shp, .gpkg or .geojson"
            raise DataError(msg)
        target = f"/vsizip/{path}/{inner[0]}"
    errors = pyogrio.errors
    try:
        return gpd.read_file(target, layer=layer, engine="pyogrio", encoding=encoding)
    except UnicodeDecodeError as err:
        msg = (f"{path}: text not in UTF-8 (byte 0x{err.object[err.start]:02x}); GeoJSON must be "
               "UTF-8 (RFC 7946 section 11); for a shapefile pass encoding='cp1252' or other")
        raise DataError(msg) from None
    except (errors.DataSourceError, errors.DataLayerError, errors.FieldError,
            errors.GeometryError, errors.CRSError) as err:
        msg = f"{path}: GDAL cannot read it as a vector file ({err})"
        raise DataError(msg) from None


def _table(path: Path, encoding, f, crs) -> gpd.GeoDataFrame:
    text = _read_text(path, encoding)
    try:
        dialect = csv.Sniffer().sniff(text[:20000], delimiters=",;\t|")
        sep = dialect.delimiter
    except csv.Error:
        sep = ","
    try:
        frame = pd.read_csv(io.StringIO(text), sep=sep, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        msg = f"{path}: not a readable table ({err})"
        raise DataError(msg) from None
    lat, lon = _pick(frame, "lat", f.get("lat"), path), _pick(frame, "lon", f.get("lon"), path)
    wkt, grid = _pick(frame, "wkt", f.get("wkt"), path), _pick(frame, "gridref",
                                                                 f.get("gridref"), path)
    x, y = f.get("x"), f.get("y")
    if x is not None or y is not None:
        if crs is None:
            msg = (f"{path}: columns '{x}'/'{y}' are projected coordinates; say in which "
                   "system with crs='EPSG:2154' (Lambert-93), 'EPSG:27700' (British grid), ...")
            raise DataError(msg)
        xs, ys = _numbers(frame, _pick(frame, "x", x, path), path), _numbers(
            frame, _pick(frame, "y", y, path), path)
        geometry, source_crs = gpd.points_from_xy(xs, ys), crs
    elif lat is not None and lon is not None:
        la, lo = _numbers(frame, lat, path), _numbers(frame, lon, path)
        bad = np.flatnonzero((np.abs(la) > 90) | (np.abs(lo) > 180))
        if bad.size:
            i = int(bad[0])
            msg = (f"{path}, line {i + 2}: latitude {la[i]} / longitude {lo[i]} out of range "
                   f"(columns '{lat}', '{lon}'); are they swapped or projected? then pass "
                   "x=, y= and crs=")
            raise DataError(msg)
        geometry, source_crs = gpd.points_from_xy(lo, la), crs or WGS84
    elif grid is not None:
        pts = []
        for i, ref in enumerate(frame[grid]):
            if not str(ref).strip():
                pts.append(None)
                continue
            try:
                e, n, size = grid_reference(ref)
            except DataError as err:
                msg = f"{path}, line {i + 2}, column '{grid}': {err}"
                raise DataError(msg) from None
            pts.append(shapely.Point(e + size / 2, n + size / 2))  # a reference names a square
        geometry, source_crs = gpd.GeoSeries(pts), "EPSG:27700"
    elif wkt is not None:
        try:
            geometry = shapely.from_wkt(frame[wkt].replace("", None).to_numpy(), on_invalid="raise")
        except shapely.errors.GEOSException as err:
            msg = f"{path}, column '{wkt}': not well-known text ({err})"
            raise DataError(msg) from None
        if crs is None:
            msg = f"{path}: a WKT column has no coordinate system; pass crs='EPSG:4326' or other"
            raise DataError(msg)
        source_crs = crs
    else:
        msg = (f"{path}: no place columns found; name them with lat=/lon=, x=/y= with crs=, "
               f"wkt= or gridref= (columns are {', '.join(frame.columns[:25])})")
        raise DataError(msg)
    return gpd.GeoDataFrame(frame, geometry=geometry, crs=source_crs)


def _numbers(frame: pd.DataFrame, column, path: Path) -> np.ndarray:
    text = frame[column].astype(str).str.strip().str.replace(",", ".", regex=False)
    values = pd.to_numeric(text.replace("", None), errors="coerce")
    bad = values.isna() & (text != "")
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        msg = f"{path}, line {i + 2}, column '{column}': '{frame[column].iloc[i]}' is not a number"
        raise DataError(msg)
    return values.to_numpy(dtype=float)


def use_shipped_grids() -> None:
    """Put the PROJ grids shipped with the library (:data:`GRIDS`, OSTN15) on PROJ's search path
    of this process, once, so that PROJ finds them locally; it never turns on PROJ's network."""
    import pyproj.datadir

    if GRIDS.is_dir() and str(GRIDS) not in pyproj.datadir.get_data_dir().split(":"):
        pyproj.datadir.append_data_dir(str(GRIDS))


def transformer(source) -> tuple[object, dict, str | None]:
    """The pyproj transformer ``read_sites`` uses from ``source`` to WGS84 (x = longitude),
    a note of it (``source_crs``, ``operation``, ``accuracy_m``, ``grids``) and, where PROJ's
    best operation needs a grid that is not installed, why the fallback was used (else None)."""
    use_shipped_grids()
    source = CRS.from_user_input(source)
    with warnings.catch_warnings():  # a missing grid is reported by the caller, named
        warnings.simplefilter("ignore", UserWarning)
        group = TransformerGroup(source, 4326, always_xy=True)
    if not group.transformers:
        return None, {"source_crs": source.to_string()}, None
    best = group.transformers[0]
    grids = sorted({g.short_name for op in (best.operations or ()) for g in op.grids})
    note = {"source_crs": source.to_string(), "operation": best.description,
            "accuracy_m": best.accuracy, "grids": grids}
    missing = None
    if not group.best_available:
        wanted = sorted({g.short_name for op in group.unavailable_operations[:1]
                         for g in op.grids if not g.available})
        missing = (f"PROJ's best operation needs the grid {', '.join(wanted) or '(unnamed)'}, "
                   f"not installed; used '{best.description}' (accuracy {best.accuracy} m)")
    return best, note, missing


def _to_wgs84(gdf: gpd.GeoDataFrame, path: Path,
              quality: list[dict]) -> tuple[gpd.GeoDataFrame, dict]:
    source = CRS.from_user_input(gdf.crs)
    note = {"source_crs": source.to_string(), "operation": "none", "accuracy_m": 0.0,
            "grids": []}
    if source.equals(CRS.from_epsg(4326), ignore_axis_order=True):
        return gdf, note
    best, note, missing = transformer(source)
    if best is None:
        msg = f"{path}: PROJ knows no way from {source.name} to WGS84"
        raise DataError(msg)
    if missing:
        quality.append({"row": None, "id": None, "issue": "transformation", "detail": missing})
        warnings.warn(f"{path}: {missing}; reinstall echoes_lab (it ships the OSTN15 grid in "
                      f"{GRIDS}) or install the grid in PROJ's data directory", stacklevel=3)
    geoms = np.asarray(gdf.geometry.array).copy()
    xy = shapely.get_coordinates(geoms, include_z=False)
    if len(xy):
        # in row order a grid-based operation (OSTN15) reads a grid tile per point: 10,000
        # points scattered over Britain took 12 s, sorted by northing then easting 0.09 s
        order = np.lexsort((xy[:, 0], xy[:, 1]))
        out = np.empty_like(xy)
        out[order, 0], out[order, 1] = best.transform(xy[order, 0], xy[order, 1])
        geoms = shapely.set_coordinates(geoms, out)
        # PROJ answers infinity outside the grid of a grid-based operation: no place, listed
        lost = ~np.isfinite(shapely.bounds(geoms)).all(axis=1) & ~shapely.is_empty(geoms)
        lost &= ~shapely.is_missing(geoms)
        for i in np.flatnonzero(lost):
            quality.append({"row": int(i) + 1, "id": None, "issue": "outside the grid",
                            "detail": f"outside the area of '{best.description}' "
                                      f"({', '.join(note['grids'])}); kept without a place"})
            geoms[i] = None
    out = gdf.set_geometry(gpd.GeoSeries(geoms, index=gdf.index, crs=WGS84))
    return out, note


def read_sites(path, *, preset: str | None = None, layer=None, crs=None, encoding=None,
               source: str | None = None, licence: str | None = None, **fields) -> gpd.GeoDataFrame:
    """Read an inventory of monuments and sites into the schema of this module, in WGS84.

    Parameters
    ----------
    path
        A GeoJSON, GeoPackage, Shapefile (or a zip holding one), KML or CSV file.
    preset
        ``'merimee'`` or ``'whc'`` (UNESCO World Heritage List): the field names of that register.
    layer
        The layer of a multi-layer file (GeoPackage).
    crs
        The coordinate system of x/y or WKT columns, or of a file that does not say.
    encoding
        Of a CSV file that is not UTF-8.
    source, licence
        Recorded in every row (the file name by default).
    **fields
        Column names: ``id``, ``name``, ``designation``, ``protection``, ``authority``,
        ``period``, and the place: ``lat``/``lon``, ``x``/``y``, ``wkt`` or ``gridref``.

    Returns
    -------
    geopandas.GeoDataFrame
        Columns :data:`COLUMNS`; ``attrs``: ``source_crs``, ``transformation``, ``quality``.
    """
    from echoes_lab.collections.dates import parse_series

    path = Path(path)
    if not path.exists():
        msg = f"{path}: no such file"
        raise DataError(msg)
    unknown = set(fields) - {"id", "name", "designation", "protection", "authority", "period",
                             "lat", "lon", "x", "y", "wkt", "gridref"}
    if unknown:
        msg = f"read_sites: unknown field(s) {sorted(unknown)}"
        raise DataError(msg)
    f: dict = {}
    if preset is not None:
        if preset not in PRESETS:
            msg = f"read_sites: unknown preset '{preset}'; known: {', '.join(PRESETS)}"
            raise DataError(msg)
        f.update(PRESETS[preset])
        licence = licence or f.pop("licence", None)
    f.pop("licence", None)
    f.update(fields)
    suffix = path.suffix.lower()
    if suffix in _VECTOR:
        gdf = _vector(path, layer, encoding)
        if gdf.crs is None:
            if crs is None:
                msg = f"{path}: the file names no coordinate system; pass crs='EPSG:...'"
                raise DataError(msg)
            gdf = gdf.set_crs(crs)
    elif suffix in {".csv", ".tsv", ".txt"}:
        gdf = _table(path, encoding, f, crs)
    else:
        msg = (f"{path}: unknown kind of file '{suffix}'; read_sites reads .geojson, .gpkg, "
               ".shp, .zip, .kml and .csv")
        raise DataError(msg)

    quality: list[dict] = []
    gdf, note = _to_wgs84(gdf, path, quality)
    attrs_frame = pd.DataFrame(gdf.drop(columns=gdf.geometry.name))
    # a preset's None means "this register has no such field": do not guess one
    cols = {k: None if (k in f and f[k] is None) else _pick(attrs_frame, k, f.get(k), path)
            for k in ("id", "name", "designation", "protection", "authority", "period")}
    n = len(gdf)

    def col(key):
        c = cols[key]
        if c is None:
            return pd.array([pd.NA] * n, dtype="string")
        return attrs_frame[c].astype("string").replace("", pd.NA).array

    ids = col("id")
    if cols["id"] is None:
        ids = pd.array([f"{path.name}#{i + 1}" for i in range(n)], dtype="string")
    periods = parse_series(pd.Series(col("period")).fillna(""))

    geoms = np.asarray(gdf.geometry.array)
    outside = set()
    for q in quality:  # rows the transformation could not place: name them, list them once
        if q["issue"] == "outside the grid":
            q["id"] = ids[q["row"] - 1]
            outside.add(q["row"])
    for i, g in enumerate(geoms):
        if g is None or shapely.is_empty(g):
            if i + 1 not in outside:
                quality.append({"row": i + 1, "id": ids[i], "issue": "no geometry",
                                "detail": "the record has no place; kept, not drawn"})
        elif not shapely.is_valid(g):
            reason = shapely.is_valid_reason(g)
            fixed = shapely.make_valid(g)
            if fixed.geom_type == g.geom_type or fixed.geom_type == f"Multi{g.geom_type}":
                geoms[i] = fixed
                quality.append({"row": i + 1, "id": ids[i], "issue": "invalid geometry",
                                "detail": f"{reason}; repaired with shapely.make_valid"})
            else:  # the repair changed the kind of geometry: not safe to guess, keep as read
                quality.append({"row": i + 1, "id": ids[i], "issue": "invalid geometry",
                                "detail": f"{reason}; not repaired (make_valid gives "
                                          f"{fixed.geom_type})"})
    originals = attrs_frame.astype(object).where(attrs_frame.notna(), None).to_dict("records")
    out = gpd.GeoDataFrame({
        "id": ids, "name": col("name"), "designation": col("designation"),
        "protection": col("protection"), "authority": col("authority"),
        "period": col("period"),
        "period_earliest": periods["date_earliest"].array,
        "period_latest": periods["date_latest"].array,
        "source": pd.array([source or path.name] * n, dtype="string"),
        "licence": pd.array([licence] * n, dtype="string"),
        "original": originals,
    }, geometry=gpd.GeoSeries(geoms, crs=WGS84), crs=WGS84)
    out.attrs.update(source_crs=note["source_crs"], transformation=note, quality=quality,
                     source=str(path))
    return out


# on PROJ's path from the moment the sites module loads, so that geopandas' own to_crs() in the
# same session (a hazard layer to the British grid, say) takes OSTN15 too, whatever ran first
use_shipped_grids()
