"""The datasets catalogue: one call opens a dataset, after its checksums are verified."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import xarray as xr
import yaml

import echoes_lab
from echoes_lab import datasets
from echoes_lab.errors import DatasetError

EXE = str(Path(sys.executable).with_name("echoes-lab"))


REAL_MIRROR = Path(__file__).resolve().parent / "data" / "real" / "datasets"
SHARED_MIRROR = Path(__file__).resolve().parents[2] / "shared" / "datasets"
REAL = [e["name"] for e in yaml.safe_load(datasets.PACKAGED.read_text())["datasets"]
        if not e.get("generator")]


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A fresh home and user cache; no shared folder or mirror named in the environment."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "home" / ".cache"))
    for name in ("ECHOES_DATA", "ECHOES_MIRROR", "ECHOES_CACHE"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path / "home"


def test_catalog_lists_the_demo_datasets(demo_data, home):
    table = echoes_lab.catalog(demo_data)
    assert {"demo-collection", "demo-climate", "demo-colour", "demo-spectral"} <= set(table.index)
    demo = table.loc[[n for n in table.index if n.startswith("demo-")]]
    assert demo["available"].all() and (demo["fetch"] == "generated").all()
    assert set(REAL) <= set(table.index) and len(REAL) >= 4
    for column in ("title", "licence", "citation", "format", "description"):
        assert table[column].astype(bool).all(), column


def test_open_dataset_returns_frames_and_cubes_and_records_provenance(demo_data, home):
    datasets.reset_opened()
    objects = echoes_lab.open_dataset("demo-collection", demo_data)
    assert isinstance(objects, pd.DataFrame) and len(objects) > 3000
    cube = echoes_lab.open_dataset("demo-spectral", demo_data)
    assert isinstance(cube, xr.Dataset)
    assert cube["reflectance"].dims == ("y", "x", "band")
    assert cube["wavelength"].values[0] == 400.0 and cube["wavelength"].values[-1] == 1000.0
    log = datasets.opened()
    assert [d["name"] for d in log] == ["demo-collection", "demo-spectral"]
    assert all(len(f["sha256"]) == 64 for d in log for f in d["files"])


def test_environment_names_the_shared_folder(demo_data, home, monkeypatch):
    monkeypatch.setenv("ECHOES_DATA", str(demo_data))
    assert datasets.data_dir() == demo_data
    assert isinstance(echoes_lab.open_dataset("demo-colour"), pd.DataFrame)


def test_a_changed_file_fails_its_checksum(demo_data, tmp_path, home):
    copy = tmp_path / "copy"
    shutil.copytree(demo_data, copy)
    path = copy / "colour" / "fading-spectra.csv"
    path.write_text(path.read_text().replace("0.8", "0.9", 1))
    with pytest.raises(DatasetError) as err:
        echoes_lab.open_dataset("demo-colour", copy)
    assert str(path) in str(err.value) and "expected sha256" in str(err.value)
    assert datasets.verify(copy)["demo-colour"] != "ok"
    assert datasets.verify(copy)["demo-collection"] == "ok"


def test_unknown_datasets_and_demo_data_made_on_first_use(tmp_path, home):
    with pytest.raises(DatasetError, match="no dataset called 'nope'.*known: .*demo-climate"):
        echoes_lab.open_dataset("nope", tmp_path)
    # no shared folder, no ECHOES_DATA: the demo dataset is generated from its seed into the
    # user's cache (pooch's os_cache) and verified against the catalogue's sha256
    frame = echoes_lab.open_dataset("demo-colour", tmp_path / "no-shared-folder")
    assert isinstance(frame, pd.DataFrame) and len(frame) > 0
    made = home / ".cache" / "echoes-lab" / "colour" / "fading-spectra.csv"
    assert made.is_file()
    assert datasets.opened()[-1]["files"][0]["path"] == str(made)


def test_a_missing_real_file_names_the_command_that_fixes_it(tmp_path, home):
    # the Tate's artworks table is a derivative published nowhere else: mirrors only
    with pytest.raises(DatasetError) as err:
        echoes_lab.open_dataset("tate-collection", tmp_path)
    text = str(err.value)
    assert "tate-collection/artworks.csv.gz is missing" in text
    assert "ECHOES_MIRROR" in text and "echoes-lab datasets fetch tate-collection" in text


def test_a_corrupted_mirror_file_is_refused(tmp_path, home):
    mirror = tmp_path / "mirror"
    bad = mirror / "hyperspectral-pigments" / "__speclib_averages.hdr"
    bad.parent.mkdir(parents=True)
    bad.write_text("ENVI\nsamples = 186\n")
    with pytest.raises(DatasetError) as err:
        datasets.fetch("hyperspectral-pigments", tmp_path / "data", mirror=str(mirror))
    text = str(err.value)
    assert f"mirror file {bad} fails its checksum" in text
    assert "expected sha256 49672293b034" in text and "replace the mirror's copy" in text
    # nothing damaged was put in place, in the shared folder or the cache
    assert not (home / ".cache" / "echoes-lab" / "hyperspectral-pigments").exists()
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize("name", REAL)
def test_every_real_dataset_verifies_from_the_mirror(name, tmp_path, home):
    """Each real entry: licence, citation, pinned url and sha256; its mirror copy verifies."""
    entry = datasets.info(name, tmp_path)
    assert entry["licence"] and entry["citation"] and entry["homepage"].startswith("https://")
    for f in entry["files"]:
        assert len(f["sha256"]) == 64
        # a pinned version: the url names a 40-hex commit, never a branch
        assert f.get("url") or f.get("derived_from"), f["path"]
        link = f.get("url") or f["derived_from"]
        assert any(len(part) == 40 and all(c in "0123456789abcdef" for c in part)
                   for part in link.split("/")), link
    held = [m for m in (SHARED_MIRROR, REAL_MIRROR)
            if all((m / f["path"]).is_file() for f in entry["files"])]
    if not held:
        pytest.skip(f"no mirror here holds {name} ({SHARED_MIRROR} is absent or lacks it)")
    data = tmp_path / "shared"
    data.mkdir()
    files = datasets.fetch(name, data, mirror=" ".join(map(str, held)), progress=False)
    assert [f["sha256"] for f in files] == [f["sha256"] for f in entry["files"]]
    assert all(Path(f["path"]).is_relative_to(data) for f in files)  # writable shared folder
    assert datasets.verify(data)[name] == "ok"


def test_the_pigment_library_reads_as_published(tmp_path, home):
    datasets.fetch("hyperspectral-pigments", tmp_path, mirror=str(REAL_MIRROR), progress=False)
    lib = echoes_lab.open_dataset("hyperspectral-pigments", tmp_path)
    # values as a reader of the ENVI header and library sees them
    assert lib.shape == (1592, 186)
    assert lib.columns[0] == pytest.approx(405.369888)
    assert lib.columns[-1] == pytest.approx(995.827873)
    first = lib.index[0]
    assert first == ("ER_1_1_p4_sh1", "french ochre RTFLES--1", "40020")
    assert lib.iloc[0, 0] == pytest.approx(0.08086228, rel=1e-6)


def test_the_tate_collection_opens_from_the_shared_mirror(tate_dir, tmp_path, home):
    datasets.fetch("tate-collection", tmp_path, mirror=str(tate_dir.parent), progress=False)
    raw = echoes_lab.open_dataset("tate-collection", tmp_path)
    assert len(raw) == 69202 and raw.loc[0, "accession_number"] == "A00001"
    objects = echoes_lab.read_records(raw, preset="tate")
    assert len(objects) == 69202


def test_add_writes_a_user_entry_that_opens(tmp_path, home):
    own = tmp_path / "mine.csv"
    own.write_text("room,rh\nG1,50\nG2,48\n")
    entry = datasets.add(own, name="my-rooms", title="My rooms", licence="CC-BY-4.0")
    catalogue = yaml.safe_load((home / ".echoes" / "catalog.yaml").read_text())
    assert catalogue["datasets"][0]["files"][0]["sha256"] == entry["files"][0]["sha256"]
    frame = echoes_lab.open_dataset("my-rooms", tmp_path / "empty")
    assert list(frame["rh"]) == [50, 48]
    assert echoes_lab.catalog(tmp_path / "empty").loc["my-rooms", "source"] == "user"


def test_cli_list_info_verify_add(demo_data, tmp_path, home):
    env = {"HOME": str(home), "PATH": "/usr/bin:/bin", "XDG_CACHE_HOME": str(home / ".cache")}

    def cli(*args):
        return subprocess.run([EXE, "datasets", "--data", str(demo_data), *args],
                              capture_output=True, text=True, env=env, timeout=120)

    assert "demo-climate" in cli("list").stdout
    assert "sha256" in cli("info", "demo-spectral").stdout
    verify = cli("verify")
    assert verify.returncode == 0 and verify.stdout.count(": ok") >= 4
    assert "moma-collection: not fetched" in verify.stdout
    fetch = cli("fetch", "hyperspectral-pigments", "--mirror", str(REAL_MIRROR))
    assert fetch.returncode == 0, fetch.stderr
    assert "hyperspectral-pigments: ok (2 files verified" in fetch.stdout
    assert cli("fetch").returncode == 2
    own = tmp_path / "x.csv"
    own.write_text("a\n1\n")
    assert cli("add", str(own), "--name", "x").returncode == 0
    assert "x" in cli("list").stdout
    bad = cli("info", "nope")
    assert bad.returncode == 1 and bad.stderr.count("\n") == 1
    assert "no dataset called 'nope'" in bad.stderr
