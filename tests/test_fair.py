"""FAIR assessment (``echoes_lab.fair``) of the catalogue's real datasets and a run's RO-Crate.

Expected values are what a person reads in ``echoes_lab/catalog.yaml``: MoMA's dataset cites
its Zenodo DOI and every file has a published HTTPS URL; the Tate's artworks file is derived
(a mirror only) and its citation names no DOI; the demo datasets are generated here.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from echoes_lab import fair
from echoes_lab.errors import EchoesError


@pytest.fixture(scope="module")
def assessed() -> dict[str, fair.Assessment]:
    return {a.subject: a for a in fair.assess_catalog()}


def test_moma_and_the_pigment_library_pass_every_offline_indicator(assessed):
    moma = assessed["moma-collection"]
    assert moma.score == 1.0
    assert moma.indicator("FsF-F1-02D").evidence == "stated: doi:10.5281/zenodo.18588830"
    assert moma.indicator("FsF-A1-03D").evidence == "2 of 2 files at an HTTPS URL"
    assert moma.indicator("FsF-R1.1-01M").evidence == (
        "licence CC0-1.0 (https://spdx.org/licenses/CC0-1.0)")
    assert "57093e8fff3aea993c07cd7be7c5eed4e548747f" in moma.indicator("FsF-R1.2-01M").evidence
    pigments = assessed["hyperspectral-pigments"]
    assert "doi:10.5281/zenodo.5592485" in pigments.indicator("FsF-F1-02D").evidence
    assert pigments.indicator("FsF-R1.1-01M").passed  # CC-BY-4.0


def test_what_the_tate_and_conscir_entries_lack_is_named(assessed):
    tate = assessed["tate-collection"]
    assert not tate.indicator("FsF-F1-02D").passed
    a1 = tate.indicator("FsF-A1-03D")
    assert not a1.passed and "tate-collection/artworks.csv.gz" in a1.evidence
    assert a1.evidence.startswith("1 of 2 files at an HTTPS URL")
    assert tate.score == pytest.approx(4 / 6)
    conscir = assessed["conscir-climate"]
    assert conscir.score == pytest.approx(5 / 6)
    assert "GPL-3.0-or-later" in conscir.indicator("FsF-R1.1-01M").evidence


def test_generated_demo_data_is_not_accessible_but_has_provenance(assessed):
    demo = assessed["demo-climate"]
    assert not demo.indicator("FsF-A1-03D").passed
    assert "echoes_lab.demo.climate" in demo.indicator("FsF-R1.2-01M").evidence
    assert demo.indicator("FsF-R1.2-01M").passed


def test_an_unknown_licence_fails_with_the_reason():
    entry = {"name": "x", "title": "X", "description": "d", "citation": "c", "version": "1",
             "licence": "All rights reserved", "files": []}
    result = fair.assess_dataset(entry)
    assert not result.indicator("FsF-R1.1-01M").passed
    assert "'All rights reserved'" in result.indicator("FsF-R1.1-01M").evidence


def test_catalogue_listing_has_a_fair_column():
    table = fair.catalog_table()
    assert table.loc["moma-collection", "fair"] == 1.0
    assert table.loc["tate-collection", "fair"] == 0.67


def test_a_runs_crate_is_assessed_and_validated(tmp_path):
    from echoes_lab.runs.provenance import write_crate

    (tmp_path / "source").mkdir()
    for name in ("source/r.ipynb", "r.ipynb", "r.html"):
        (tmp_path / name).write_text("{}")
    t = datetime(2026, 3, 1, 6, 0, tzinfo=UTC)
    write_crate(tmp_path, source=tmp_path / "source/r.ipynb", executed=tmp_path / "r.ipynb",
                html=tmp_path / "r.html", parameters={"x": 1}, datasets=[], start=t, end=t,
                status="completed", owner="ada")
    crate = fair.assess_crate(tmp_path)
    assert crate.indicator("FsF-R1.2-01M").passed  # the run's CreateAction
    assert "source/r.ipynb" in crate.indicator("FsF-R1.2-01M").evidence
    assert crate.indicator("FsF-I2-01M").passed
    # a run's crate states no licence and no identifier until someone deposits it
    assert not crate.indicator("FsF-R1.1-01M").passed
    assert not crate.indicator("FsF-F1-02D").passed
    assert fair.validate_crate(tmp_path) == []
    assert crate.to_dict()["score"] == 0.5


def test_a_file_that_is_not_a_crate_is_refused_by_name(tmp_path):
    bad = tmp_path / "ro-crate-metadata.json"
    bad.write_text("{not json")
    with pytest.raises(EchoesError, match="ro-crate-metadata.json: not a readable RO-Crate"):
        fair.assess_crate(tmp_path)
