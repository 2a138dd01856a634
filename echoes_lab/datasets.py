"""The datasets catalogue: open a dataset with one call, its files fetched and verified first.

A catalogue is a YAML file listing datasets: name, title, description, licence, citation,
format, files (path relative to the data folder, with sha256, and for published data the
``url`` of that exact version) and the loader that turns the files into a pandas DataFrame or
an xarray Dataset. Three catalogues are merged, later ones winning on a name:

1. the catalogue packaged with ECHOES Lab (``echoes_lab/catalog.yaml``): the demo datasets
   (generated from their seeds by :mod:`echoes_lab.demo`) and real, openly licensed heritage
   datasets pinned to one published version (``url`` and sha256 per file);
2. ``catalog.yaml`` in the shared folder itself, if the deployment added its own datasets;
3. the user's own ``~/.echoes/catalog.yaml`` (written by :func:`add`), whose relative paths are
   relative to that file.

Where the files are. A file is looked for in the shared folder (``ECHOES_DATA``, read in one
place, :func:`data_dir`), then in the user's cache (:func:`cache_dir`, like pooch's own). If it
is in neither, it is *materialised* on first use: copied from a mirror (``ECHOES_MIRROR``: a
folder or a base URL holding the catalogue's paths, for air-gapped sites and CI), else
downloaded from its published ``url`` with pooch, else generated from its seed (demo data).
Every file is checked against its sha256 before it is used; a file that fails is refused,
never used. New files go into the shared folder when this process may write there (the
administrator running ``echoes-lab datasets fetch``), otherwise into the user's cache.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from echoes_lab.errors import DatasetError

if TYPE_CHECKING:  # pandas is imported where a table is made: the hub reads entries only
    import pandas as pd

PACKAGED = Path(__file__).with_name("catalog.yaml")
FIELDS = ["name", "title", "description", "licence", "citation", "format", "files", "loader"]
_OPENED: list[dict] = []
#: When a notebook runs under :func:`echoes_lab.runs.run`, the runner names a file in this
#: environment variable (read here only, at each opening) and every opening is written to it
#: as JSON, so the record leaves the kernel process for the run's RO-Crate.
RUN_RECORD_ENV = "ECHOES_RUN_RECORD"
#: A folder or base URL holding copies of catalogued files at their catalogue paths (also
#: under ``datasets/``), tried before any download: for air-gapped sites and CI.
MIRROR_ENV = "ECHOES_MIRROR"
#: The hub's metrics service, in labs the hub starts: openings of catalogued datasets are
#: counted there (:func:`open_dataset`).
METRICS_ENV = "ECHOES_METRICS_URL"
#: Overrides the user cache folder (default: pooch's ``os_cache("echoes-lab")``).
CACHE_ENV = "ECHOES_CACHE"


def data_dir(path: str | Path | None = None) -> Path:
    """The shared datasets folder: ``path``, else ``$ECHOES_DATA``, else ``~/echoes-data``."""
    if path is not None:
        return Path(path).expanduser()
    env = os.environ.get("ECHOES_DATA", "")
    if env and not env.startswith("${"):
        return Path(env).expanduser()
    return Path.home() / "echoes-data"


def cache_dir() -> Path:
    """The user's cache of fetched and generated datasets (``$ECHOES_CACHE`` or pooch's cache).

    pooch's ``os_cache`` follows the platform's convention (``$XDG_CACHE_HOME/echoes-lab``,
    else ``~/.cache/echoes-lab`` on Linux).
    """
    env = os.environ.get(CACHE_ENV, "")
    if env:
        return Path(env).expanduser()
    import pooch

    return Path(pooch.os_cache("echoes-lab"))


def mirrors(mirror: str | Path | None = None) -> list[str]:
    """The mirrors to try first: ``mirror`` if given, else ``$ECHOES_MIRROR`` (space-separated)."""
    value = str(mirror) if mirror is not None else os.environ.get(MIRROR_ENV, "")
    return value.split()


def user_catalog() -> Path:
    return Path.home() / ".echoes" / "catalog.yaml"


def _read_catalog(path: Path, source: str, base: Path) -> dict[str, dict]:
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        return {}
    except yaml.YAMLError as exc:
        msg = f"{path}: not a valid catalogue ({exc})"
        raise DatasetError(msg) from None
    entries = {}
    for i, entry in enumerate(doc.get("datasets", [])):
        missing = [f for f in FIELDS if f not in entry]
        if missing:
            msg = (f"{path}: dataset #{i + 1} ({entry.get('name', '?')}) lacks "
                   f"{', '.join(missing)}")
            raise DatasetError(msg)
        for j, f in enumerate(entry["files"]):
            if "path" not in f or len(str(f.get("sha256", ""))) != 64:
                msg = (f"{path}: dataset '{entry['name']}', file #{j + 1} needs a 'path' and a "
                       "64-character 'sha256'")
                raise DatasetError(msg)
        entries[entry["name"]] = {**entry, "source": source, "base": str(base)}
    return entries


def _entries(data: Path) -> dict[str, dict]:
    entries = _read_catalog(PACKAGED, "packaged", data)
    entries.update(_read_catalog(data / "catalog.yaml", "shared", data))
    uc = user_catalog()
    entries.update(_read_catalog(uc, "user", uc.parent))
    return entries


def entries(data: str | Path | None = None) -> list[dict]:
    """Every catalogue entry as a plain dict (YAML only: light enough for the hub's pages)."""
    return list(_entries(data_dir(data)).values())


def _places(entry: dict, f: dict, shared_only: bool = False) -> list[Path]:
    """Where a file may already be: the data folder, then (catalogued data) the user cache."""
    base = Path(entry["base"]) / f["path"]
    if shared_only or entry["source"] == "user" or Path(f["path"]).is_absolute():
        return [base]
    return [base, cache_dir() / f["path"]]


def _present(entry: dict, f: dict, shared_only: bool = False) -> Path | None:
    return next((p for p in _places(entry, f, shared_only) if p.exists()), None)


def catalog(data: str | Path | None = None):
    """All datasets one can open, one row each: whether their files are here, and where from.

    ``available`` says the files are already in the shared folder or the cache; ``fetch``
    says how the others arrive on first use (``mirror or url``, ``generated`` or ``-``).
    """
    import pandas as pd

    rows = []
    for e in entries(data):
        here = [_present(e, f) for f in e["files"]]
        rows.append({
            "name": e["name"], "title": e["title"], "format": e["format"],
            "licence": e["licence"], "files": len(e["files"]),
            "size_mb": round(sum(p.stat().st_size for p in here if p) / 1e6, 3),
            "available": all(here), "fetch": _how(e), "source": e["source"],
            "description": e["description"], "citation": e["citation"],
            "homepage": e.get("homepage", ""),
        })
    if not rows:
        return pd.DataFrame(columns=["name"]).set_index("name")
    return pd.DataFrame(rows).set_index("name")


def _how(entry: dict) -> str:
    """How missing files arrive on first use."""
    if entry.get("generator"):
        return "generated"
    urls = [bool(f.get("url")) for f in entry["files"]]
    if all(urls):
        return "mirror or url"
    if entry["source"] == "user":
        return "-"
    return "mirror (url for some files)" if any(urls) else "mirror"


def info(name: str, data: str | Path | None = None) -> dict:
    """The catalogue entry of dataset ``name``."""
    known = _entries(data_dir(data))
    if name not in known:
        names = ", ".join(sorted(known)) or "none"
        msg = f"no dataset called '{name}' in the catalogue (known: {names})"
        raise DatasetError(msg)
    return known[name]


def _check(entry: dict, path: Path, sha256: str, what: str = "") -> str:
    import pooch

    found = pooch.file_hash(str(path), alg="sha256")
    if found != sha256:
        fix = (f"delete it and run 'echoes-lab datasets fetch {entry['name']}' for a fresh copy"
               if not what else "replace the mirror's copy with the catalogued version, or "
               "remove it from the mirror so that the file is downloaded from its url")
        msg = (f"dataset '{entry['name']}': {what}{path} fails its checksum (expected sha256 "
               f"{sha256}, found {found}); the file changed or is damaged: {fix}")
        raise DatasetError(msg)
    return found


def _writable_target(entry: dict, f: dict, shared_only: bool = False) -> Path:
    """The shared folder if it exists and this process may write there, else the user cache."""
    shared = Path(entry["base"])
    if shared_only or shared.is_dir() and os.access(shared, os.W_OK):
        return shared / f["path"]
    return cache_dir() / f["path"]


def _copy(source: Path, target: Path, progress: bool) -> None:
    """Copy a mirror's file into place atomically, with a progress bar for large files."""
    target.parent.mkdir(parents=True, exist_ok=True)
    size = source.stat().st_size
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        with os.fdopen(fd, "wb") as out, source.open("rb") as src:
            bar = None
            if progress and size > 5_000_000:
                from tqdm.auto import tqdm

                bar = tqdm(total=size, unit="B", unit_scale=True, desc=target.name)
            while chunk := src.read(1 << 20):
                out.write(chunk)
                if bar is not None:
                    bar.update(len(chunk))
            if bar is not None:
                bar.close()
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _download(entry: dict, url: str, sha256: str, target: Path, progress: bool,
              path: str = "") -> None:
    import pooch

    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        pooch.retrieve(url, known_hash=f"sha256:{sha256}", fname=target.name,
                       path=target.parent, progressbar=progress)
    except ValueError as exc:  # pooch's checksum mismatch: the download is deleted
        msg = (f"dataset '{entry['name']}': the download from {url} fails its checksum "
               f"({exc}); it was discarded")
        raise DatasetError(msg) from None
    except Exception as exc:  # requests' connection errors, HTTP errors
        msg = (f"dataset '{entry['name']}': could not download {url} ({type(exc).__name__}: "
               f"{exc}); without internet, set {MIRROR_ENV} to a folder holding "
               f"{path or target.name} and run "
               f"'echoes-lab datasets fetch {entry['name']}'")
        raise DatasetError(msg) from None


def _generate(entry: dict) -> None:
    """Write a demo dataset's files from its seeded generator into the user cache."""
    module = importlib.import_module(entry["generator"])
    cache = cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache, prefix=".generate-") as tmp:
        module.write(Path(tmp), size="small")
        for f in entry["files"]:
            made = Path(tmp) / f["path"]
            if not made.exists():
                msg = (f"dataset '{entry['name']}': generator {entry['generator']} did not "
                       f"write {f['path']}")
                raise DatasetError(msg)
            (cache / f["path"]).parent.mkdir(parents=True, exist_ok=True)
            os.replace(made, cache / f["path"])


def _missing(entry: dict, f: dict) -> DatasetError:
    where = " or ".join(str(p) for p in _places(entry, f))
    if entry["source"] == "user":
        fix = "put it back, or catalogue it again with 'echoes-lab datasets add PATH'"
    elif f.get("url") or entry["source"] == "packaged":
        fix = (f"set {MIRROR_ENV} to a folder holding {f['path']} (e.g. ../shared/datasets) "
               f"and run 'echoes-lab datasets fetch {entry['name']}'")
    else:
        fix = (f"the shared folder's catalogue lists it: check ECHOES_DATA (it is "
               f"{entry['base']}), or ask the hub's administrator to restore it")
    return DatasetError(f"dataset '{entry['name']}': file {f['path']} is missing (looked in "
                        f"{where}): {fix}")


def _materialise(entry: dict, f: dict, mirror: str | Path | None, progress: bool,
                 shared_only: bool = False) -> Path:
    """Bring one missing file into place: from a mirror, its url, or its generator."""
    if entry["source"] == "user":
        raise _missing(entry, f)
    target = _writable_target(entry, f, shared_only)
    for m in mirrors(mirror):
        if "://" in m:
            try:
                _download(entry, f"{m.rstrip('/')}/{f['path']}", f["sha256"], target, progress)
                return target
            except DatasetError:
                continue  # not on this mirror: try the next, then the url
        for candidate in (Path(m) / f["path"], Path(m) / "datasets" / f["path"]):
            if candidate.is_file():
                # a damaged mirror is refused, not silently bypassed: someone must fix it
                _check(entry, candidate, f["sha256"], what="mirror file ")
                _copy(candidate, target, progress)
                return target
    if f.get("url"):
        _download(entry, f["url"], f["sha256"], target, progress, path=f["path"])
        return target
    if entry.get("generator") and not shared_only:
        _generate(entry)
        return cache_dir() / f["path"]
    raise _missing(entry, f)


def _verified_files(entry: dict, fetch: bool = True, mirror: str | Path | None = None,
                    progress: bool = True, shared_only: bool = False) -> list[dict]:
    files = []
    for f in entry["files"]:
        path = _present(entry, f, shared_only)
        if path is None:
            if not fetch:
                raise _missing(entry, f)
            path = _materialise(entry, f, mirror, progress, shared_only)
        found = _check(entry, path, f["sha256"])
        record = {"path": str(path), "sha256": found}
        if f.get("url"):
            record["url"] = f["url"]
        files.append(record)
    return files


def fetch(name: str, data: str | Path | None = None, mirror: str | Path | None = None,
          progress: bool = True, shared_only: bool = False) -> list[dict]:
    """Make dataset ``name``'s files present and verified (mirror, url or seed); list them.

    ``shared_only``: into the shared folder ``data`` itself, never the user's cache (the hub
    installing datasets for everyone).
    """
    return _verified_files(info(name, data), fetch=True, mirror=mirror, progress=progress,
                           shared_only=shared_only)


def _loader(spec: str):
    module, _, func = spec.partition(":")
    try:
        return getattr(importlib.import_module(module), func)
    except (ImportError, AttributeError):
        msg = f"the catalogue names a loader that does not exist: {spec}"
        raise DatasetError(msg) from None


def open_dataset(name: str, data: str | Path | None = None):
    """Open a catalogued dataset after checking every file's sha256.

    Missing files are fetched first (mirror, published url or seed; see the module's notes).
    Returns what its loader returns: a pandas DataFrame or an xarray Dataset (dask-chunked
    where the loader says so). The opening is recorded for provenance (:func:`opened`).
    """
    entry = info(name, data)
    files = _verified_files(entry)
    result = _loader(entry["loader"])([Path(f["path"]) for f in files],
                                      **entry.get("loader_kwargs", {}))
    _OPENED.append({"name": name, "files": files, "catalogue": entry["source"]})
    record = os.environ.get(RUN_RECORD_ENV)
    if record:
        Path(record).write_text(json.dumps(opened(), indent=1), encoding="utf-8")
    if entry["source"] != "user":
        _count_opening(name)
    return result


def _count_opening(name: str) -> None:
    """Tell the hub's usage counts that a dataset of the deployment's catalogue was opened.

    Only in a lab started by a hub with its metrics service (``$ECHOES_METRICS_URL``), with the
    lab's own token; the service keeps the dataset's name and the day, not who opened it. A
    count is not worth a user's analysis: if the service does not answer, the opening is not
    counted and the notebook goes on (logged at debug level).
    """
    url, token = os.environ.get(METRICS_ENV, ""), os.environ.get("JUPYTERHUB_API_TOKEN", "")
    if not url or not token:
        return
    import requests

    from echoes_lab._rest import session

    try:
        r = session(token).post(url.rstrip("/") + "/api/opened", json={"dataset": name},
                                timeout=5)
        r.raise_for_status()
    except requests.RequestException as exc:
        logging.getLogger(__name__).debug("opening of %s not counted: %s", name, exc)


def opened() -> list[dict]:
    """Datasets opened in this process so far, with the sha256 of every file (for run records)."""
    return [dict(d) for d in _OPENED]


def reset_opened() -> None:
    _OPENED.clear()


def verify(data: str | Path | None = None) -> dict[str, str]:
    """Check every present dataset's files; returns ``{name: "ok" | "not fetched" | problem}``.

    Nothing is fetched: a dataset none of whose files are here yet is ``"not fetched"``.
    """
    report = {}
    for name, entry in _entries(data_dir(data)).items():
        if not any(_present(entry, f) for f in entry["files"]):
            report[name] = "not fetched"
            continue
        try:
            _verified_files(entry, fetch=False)
            report[name] = "ok"
        except DatasetError as exc:
            report[name] = str(exc)
    return report


LOADERS_BY_SUFFIX = {".csv": "echoes_lab.datasets:read_csv",
                     ".nc": "echoes_lab.datasets:read_netcdf",
                     ".zarr": "echoes_lab.datasets:read_zarr"}


def add(path: str | Path, name: str | None = None, title: str | None = None, *,
        description: str = "", licence: str = "unknown", citation: str = "",
        loader: str | None = None, catalog_file: str | Path | None = None) -> dict:
    """Catalogue a file or folder of one's own: hashes its files and writes the entry.

    The entry goes into ``catalog_file`` (default: the user's ``~/.echoes/catalog.yaml``), with
    paths relative to that file's folder when the data lie below it, absolute otherwise.
    """
    import pooch

    path = Path(path).expanduser().resolve()
    if not path.exists():
        msg = f"{path}: no such file or folder"
        raise DatasetError(msg)
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    if not files:
        msg = f"{path}: the folder holds no files"
        raise DatasetError(msg)
    target = Path(catalog_file).expanduser().resolve() if catalog_file else user_catalog()
    base = target.parent

    def rel(p: Path) -> str:
        return str(p.relative_to(base)) if p.is_relative_to(base) else str(p)

    one = path.is_file() or path.suffix == ".zarr"
    suffix = path.suffix.lower() if one else files[0].suffix.lower()
    entry = {
        "name": name or path.stem, "title": title or path.stem, "description": description,
        "licence": licence, "citation": citation, "format": suffix.lstrip(".") or "files",
        "files": [{"path": rel(p), "sha256": pooch.file_hash(str(p), alg="sha256")} for p in files],
        "loader": loader or LOADERS_BY_SUFFIX.get(suffix, "echoes_lab.datasets:read_csv"),
        "loader_kwargs": {},
    }
    doc = yaml.safe_load(target.read_text()) if target.exists() else None
    doc = doc or {"datasets": []}
    doc["datasets"] = [d for d in doc["datasets"] if d["name"] != entry["name"]] + [entry]
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return entry


# -- generic loaders (a dataset's own loader may live in the module of its science) ----------

def read_csv(paths: list[Path], **kwargs) -> pd.DataFrame:
    """One or more CSV files as one DataFrame (``pandas.read_csv`` options pass through)."""
    import pandas as pd

    frames = [pd.read_csv(p, **kwargs) for p in paths]
    return frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)


def read_netcdf(paths: list[Path], chunks: dict | str | None = "auto", **kwargs):
    """NetCDF files as one xarray Dataset, dask-chunked (lazy) by default."""
    import xarray as xr

    return xr.open_mfdataset([str(p) for p in paths], chunks=chunks, **kwargs)


def read_zarr(paths: list[Path], **kwargs):
    """A Zarr store (its files listed in the catalogue) as a lazy, dask-chunked xarray Dataset."""
    import xarray as xr

    return xr.open_zarr(str(paths[0]).split(".zarr")[0] + ".zarr", **kwargs)


def read_table(paths: list[Path], file: str, **kwargs) -> pd.DataFrame:
    """The one CSV file of a multi-file dataset whose name is ``file`` (others stay on disk).

    Used for collection exports published as several tables (artworks, artists): the
    catalogue opens the objects table; the others are beside it (:func:`fetch` lists them).
    """
    import pandas as pd

    chosen = [p for p in paths if p.name == file]
    if not chosen:
        msg = f"the dataset has no file called {file} (files: {', '.join(p.name for p in paths)})"
        raise DatasetError(msg)
    return pd.read_csv(chosen[0], **kwargs)


def read_spectral_library(paths: list[Path]) -> pd.DataFrame:
    """An ENVI spectral library (``.hdr`` + ``.sli``) as one row per spectrum.

    The rows are indexed by (``spectrum``, ``pigment``, ``pigment_number``) from the header's
    ``spectra names``, ``pname`` and ``pnumber`` fields where present; the columns are the
    band centres in nm (``wavelength``), the values reflectance factors. Read with Spectral
    Python's ENVI reader (``spectral.io.envi``).
    """
    import pandas as pd
    from spectral.io import envi

    hdr = next((p for p in paths if p.suffix.lower() == ".hdr"), None)
    sli = next((p for p in paths if p.suffix.lower() == ".sli"), None)
    if hdr is None or sli is None:
        got = ", ".join(str(p) for p in paths)
        msg = f"an ENVI spectral library needs a .hdr and a .sli file (got {got})"
        raise DatasetError(msg)
    try:
        lib = envi.open(str(hdr), str(sli))
    except Exception as exc:  # SPy raises its own and OSError/ValueError for damaged files
        msg = f"{hdr}: not a readable ENVI spectral library ({exc})"
        raise DatasetError(msg) from None
    meta = lib.metadata
    n = lib.spectra.shape[0]
    names = list(lib.names) if lib.names else [f"spectrum {i + 1}" for i in range(n)]
    index = pd.MultiIndex.from_arrays(
        [names, list(meta.get("pname", [""] * n)), list(meta.get("pnumber", [""] * n))],
        names=["spectrum", "pigment", "pigment_number"])
    columns = pd.Index([round(float(c), 3) for c in lib.bands.centers], name="wavelength")
    return pd.DataFrame(lib.spectra.astype("float64"), index=index, columns=columns)


def read_logger_workbook(paths: list[Path], sheet: int | str = 0, **kwargs) -> pd.DataFrame:
    """A logger workbook (``.xlsx``) sheet as a long table that :func:`read_climate` reads.

    Needs openpyxl, pandas' reader for ``.xlsx`` files.
    """
    import pandas as pd

    try:
        return pd.read_excel(paths[0], sheet_name=sheet, **kwargs)
    except ImportError:
        msg = (f"{paths[0]}: reading .xlsx workbooks needs the openpyxl package: "
               "pip install openpyxl")
        raise DatasetError(msg) from None
