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


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def test_catalog_lists_the_demo_datasets(demo_data, home):
    table = echoes_lab.catalog(demo_data)
    assert {"demo-collection", "demo-climate", "demo-colour", "demo-spectral"} <= set(table.index)
    assert table["available"].all()
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


def test_unknown_and_missing_datasets(tmp_path, home):
    with pytest.raises(DatasetError, match="no dataset called 'nope'.*known: demo-"):
        echoes_lab.open_dataset("nope", tmp_path)
    with pytest.raises(DatasetError, match="is missing"):
        echoes_lab.open_dataset("demo-colour", tmp_path)


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
    env = {"HOME": str(home), "PATH": "/usr/bin:/bin"}

    def cli(*args):
        return subprocess.run([EXE, "datasets", "--data", str(demo_data), *args],
                              capture_output=True, text=True, env=env, timeout=120)

    assert "demo-climate" in cli("list").stdout
    assert "sha256" in cli("info", "demo-spectral").stdout
    verify = cli("verify")
    assert verify.returncode == 0 and verify.stdout.count(": ok") >= 4
    own = tmp_path / "x.csv"
    own.write_text("a\n1\n")
    assert cli("add", str(own), "--name", "x").returncode == 0
    assert "x" in cli("list").stdout
    bad = cli("info", "nope")
    assert bad.returncode == 1 and bad.stderr.count("\n") == 1 and "no dataset called 'nope'" in bad.stderr
