"""The demo datasets are reproducible: regenerated from their seeds, they match the catalogue."""

from __future__ import annotations

import pytest
import yaml

from echoes_lab.demo import PACKAGED


def test_generated_files_match_the_packaged_catalogue(demo_data):
    packaged = {d["name"]: d for d in yaml.safe_load(PACKAGED.read_text())["datasets"]
                if d.get("generator")}
    written = yaml.safe_load((demo_data / "catalog.yaml").read_text())["datasets"]
    generated = {d["name"]: d for d in written}
    assert set(generated) == set(packaged) == {"demo-collection", "demo-climate", "demo-colour",
                                               "demo-spectral"}
    for name, entry in packaged.items():
        assert generated[name]["files"] == entry["files"], (
            f"{name}: regenerated files differ from echoes_lab/catalog.yaml; if the generator "
            "changed on purpose, run python -m echoes_lab.demo --out DIR --write-catalog")


def test_demo_data_are_messy_as_promised(demo_data):
    import pandas as pd

    logs = pd.read_csv(demo_data / "climate" / "loggers.csv", parse_dates=["time"])
    assert set(logs["temperature_unit"]) == {"degC", "degF"}
    assert logs.duplicated(["sensor", "time"]).any()
    assert (logs["relative_humidity"] > 100).any()
    store = logs[logs["sensor"] == "S0A"]["time"].diff().max()
    assert store > pd.Timedelta(days=13)
    objects = pd.read_csv(demo_data / "collection" / "objects.csv", dtype=str,
                          keep_default_na=False)
    assert objects.duplicated().any()
    assert objects["Date"].str.startswith("c.").any() and (objects["Date"] == "n.d.").any()


@pytest.mark.slow
def test_a_curated_report_runs_with_no_shared_folder_and_no_hub(tmp_path, repo_root):
    """On a laptop, Binder or the CLI: no ECHOES_DATA, no hub, an empty home and cache.

    The demo logs are generated from their seed into the user's cache on first use and the
    notebook runs to the end, with the generated file's sha256 in the run's RO-Crate.
    """
    import json
    import subprocess
    import sys
    from pathlib import Path

    home = tmp_path / "home"
    home.mkdir()
    env = {"PATH": "/usr/bin:/bin", "HOME": str(home), "XDG_CACHE_HOME": str(home / ".cache")}
    exe = str(Path(sys.executable).with_name("echoes-lab"))
    done = subprocess.run([exe, "run", str(repo_root / "notebooks" / "02-climate-report.ipynb"),
                           "-o", str(tmp_path / "out")], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    made = home / ".cache" / "echoes-lab" / "climate" / "loggers.csv"
    assert made.is_file()
    crate = json.loads((tmp_path / "out" / "ro-crate-metadata.json").read_text())
    packaged = {d["name"]: d for d in yaml.safe_load(PACKAGED.read_text())["datasets"]}
    assert packaged["demo-climate"]["files"][0]["sha256"] in json.dumps(crate)
