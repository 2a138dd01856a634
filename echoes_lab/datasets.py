"""The shared datasets catalogue: open a dataset with one call, its checksums verified.

A catalogue is a YAML file listing datasets: name, title, description, licence, citation,
format, files (path relative to the data folder, with sha256) and the loader that turns the
files into a pandas DataFrame or an xarray Dataset. Three catalogues are merged, later ones
winning on a name:

1. the catalogue packaged with ECHOES Lab (``echoes_lab/catalog.yaml``), describing the demo
   datasets the hub installs into its shared folder;
2. ``catalog.yaml`` in the shared folder itself, if the deployment added its own datasets;
3. the user's own ``~/.echoes/catalog.yaml`` (written by :func:`add`), whose relative paths are
   relative to that file.

The shared folder is ``ECHOES_DATA`` (set by the hub for every user's server), read in one
place, :func:`data_dir`. It is read-only for users: nothing here writes into it.
"""

from __future__ import annotations

import importlib
import json
import os
from pathlib import Path

import pandas as pd
import pooch
import yaml

from echoes_lab.errors import DatasetError

PACKAGED = Path(__file__).with_name("catalog.yaml")
FIELDS = ["name", "title", "description", "licence", "citation", "format", "files", "loader"]
_OPENED: list[dict] = []
#: When a notebook runs under :func:`echoes_lab.runs.run`, the runner names a file in this
#: environment variable (read here only, at each opening) and every opening is written to it
#: as JSON, so the record leaves the kernel process for the run's RO-Crate.
RUN_RECORD_ENV = "ECHOES_RUN_RECORD"


def data_dir(path: str | Path | None = None) -> Path:
    """The shared datasets folder: ``path`` if given, else ``$ECHOES_DATA``, else ``~/echoes-data``."""
    if path is not None:
        return Path(path).expanduser()
    env = os.environ.get("ECHOES_DATA", "")
    return Path(env).expanduser() if env and not env.startswith("${") else Path.home() / "echoes-data"


def user_catalog() -> Path:
    return Path.home() / ".echoes" / "catalog.yaml"


def _read_catalog(path: Path, source: str, base: Path) -> dict[str, dict]:
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        return {}
    except yaml.YAMLError as exc:
        raise DatasetError(f"{path}: not a valid catalogue ({exc})") from None
    entries = {}
    for i, entry in enumerate(doc.get("datasets", [])):
        missing = [f for f in FIELDS if f not in entry]
        if missing:
            raise DatasetError(f"{path}: dataset #{i + 1} ({entry.get('name', '?')}) lacks {', '.join(missing)}")
        entries[entry["name"]] = {**entry, "source": source, "base": str(base)}
    return entries


def _entries(data: Path) -> dict[str, dict]:
    entries = _read_catalog(PACKAGED, "packaged", data)
    entries.update(_read_catalog(data / "catalog.yaml", "shared", data))
    uc = user_catalog()
    entries.update(_read_catalog(uc, "user", uc.parent))
    return entries


def catalog(data: str | Path | None = None) -> pd.DataFrame:
    """All datasets one can open, one row each, with whether their files are present."""
    folder = data_dir(data)
    rows = []
    for e in _entries(folder).values():
        base = Path(e["base"])
        rows.append({
            "name": e["name"], "title": e["title"], "format": e["format"], "licence": e["licence"],
            "files": len(e["files"]),
            "size_mb": round(sum((base / f["path"]).stat().st_size for f in e["files"]
                                 if (base / f["path"]).exists()) / 1e6, 3),
            "available": all((base / f["path"]).exists() for f in e["files"]),
            "source": e["source"], "description": e["description"], "citation": e["citation"],
        })
    return pd.DataFrame(rows).set_index("name") if rows else pd.DataFrame(columns=["name"]).set_index("name")


def info(name: str, data: str | Path | None = None) -> dict:
    """The catalogue entry of dataset ``name``."""
    entries = _entries(data_dir(data))
    if name not in entries:
        known = ", ".join(sorted(entries)) or "none"
        raise DatasetError(f"no dataset called '{name}' in the catalogue (known: {known})")
    return entries[name]


def _verified_files(entry: dict) -> list[dict]:
    base = Path(entry["base"])
    files = []
    for f in entry["files"]:
        path = base / f["path"]
        if not path.exists():
            raise DatasetError(
                f"dataset '{entry['name']}': file {path} is missing (is ECHOES_DATA right? it is {base})"
            )
        found = pooch.file_hash(str(path), alg="sha256")
        if found != f["sha256"]:
            raise DatasetError(
                f"dataset '{entry['name']}': {path} fails its checksum "
                f"(expected sha256 {f['sha256']}, found {found}); the file changed or is damaged"
            )
        files.append({"path": str(path), "sha256": found})
    return files


def _loader(spec: str):
    module, _, func = spec.partition(":")
    try:
        return getattr(importlib.import_module(module), func)
    except (ImportError, AttributeError):
        raise DatasetError(f"the catalogue names a loader that does not exist: {spec}") from None


def open_dataset(name: str, data: str | Path | None = None):
    """Open a catalogued dataset after checking every file's sha256.

    Returns what its loader returns: a pandas DataFrame or an xarray Dataset (dask-chunked
    where the loader says so). The opening is recorded for provenance (:func:`opened`).
    """
    entry = info(name, data)
    files = _verified_files(entry)
    result = _loader(entry["loader"])([Path(f["path"]) for f in files], **entry.get("loader_kwargs", {}))
    _OPENED.append({"name": name, "files": files, "catalogue": entry["source"]})
    record = os.environ.get(RUN_RECORD_ENV)
    if record:
        Path(record).write_text(json.dumps(opened(), indent=1), encoding="utf-8")
    return result


def opened() -> list[dict]:
    """Datasets opened in this process so far, with the sha256 of every file (for run records)."""
    return [dict(d) for d in _OPENED]


def reset_opened() -> None:
    _OPENED.clear()


def verify(data: str | Path | None = None) -> dict[str, str]:
    """Check every available dataset's files; returns ``{name: "ok" | problem}``."""
    report = {}
    for name, entry in _entries(data_dir(data)).items():
        try:
            _verified_files(entry)
            report[name] = "ok"
        except DatasetError as exc:
            report[name] = str(exc)
    return report


LOADERS_BY_SUFFIX = {".csv": "echoes_lab.datasets:read_csv", ".nc": "echoes_lab.datasets:read_netcdf",
                     ".zarr": "echoes_lab.datasets:read_zarr"}


def add(path: str | Path, name: str | None = None, title: str | None = None, *,
        description: str = "", licence: str = "unknown", citation: str = "",
        loader: str | None = None, catalog_file: str | Path | None = None) -> dict:
    """Catalogue a file or folder of one's own: hashes its files and writes the entry.

    The entry goes into ``catalog_file`` (default: the user's ``~/.echoes/catalog.yaml``), with
    paths relative to that file's folder when the data lie below it, absolute otherwise.
    """
    path = Path(path).expanduser().resolve()
    if not path.exists():
        raise DatasetError(f"{path}: no such file or folder")
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    if not files:
        raise DatasetError(f"{path}: the folder holds no files")
    target = Path(catalog_file).expanduser().resolve() if catalog_file else user_catalog()
    base = target.parent

    def rel(p: Path) -> str:
        return str(p.relative_to(base)) if p.is_relative_to(base) else str(p)

    suffix = path.suffix.lower() if path.is_file() or path.suffix == ".zarr" else files[0].suffix.lower()
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
