"""The demo datasets are reproducible: regenerated from their seeds, they match the catalogue."""

from __future__ import annotations

import yaml

from echoes_lab.demo import PACKAGED


def test_generated_files_match_the_packaged_catalogue(demo_data):
    packaged = {d["name"]: d for d in yaml.safe_load(PACKAGED.read_text())["datasets"]}
    generated = {d["name"]: d for d in yaml.safe_load((demo_data / "catalog.yaml").read_text())["datasets"]}
    assert set(generated) == set(packaged) == {"demo-collection", "demo-climate", "demo-colour", "demo-spectral"}
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
    objects = pd.read_csv(demo_data / "collection" / "objects.csv", dtype=str, keep_default_na=False)
    assert objects.duplicated().any()
    assert objects["Date"].str.startswith("c.").any() and (objects["Date"] == "n.d.").any()
