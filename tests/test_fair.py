"""FAIR assessment (``echoes_lab.fair``) of the catalogue's real datasets and a run's RO-Crate.

Expected values are what a person reads in ``echoes_lab/catalog.yaml``: MoMA's dataset cites
its Zenodo DOI and every file has a published HTTPS URL; the Tate's artworks file is derived
(a mirror only) and its citation names no DOI; the demo datasets are generated here.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from echoes_lab import fair
from echoes_lab.errors import EchoesError

REAL = Path(__file__).parent / "data" / "real" / "annotations"


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


def test_the_w3c_example_collection_scores_what_it_states():
    """The W3C Working Group's 43 example annotations (tests/data/real/annotations): every id
    an HTTP IRI, the W3C context and motivations; but a person reads in the file that only 3
    name their creator, 2 also when (anno11 and anno38), and 1 a licence (anno16, CC0)."""
    a = fair.assess_annotations(REAL / "w3c-collection1.json")
    assert a.subject == "http://example.org/collection1"
    assert a.indicator("FsF-A1-03D").passed and a.indicator("FsF-I2-01M").passed
    assert a.indicator("FsF-I2-01M").evidence.endswith(
        "motivations bookmarking, classifying, commenting, tagging: all in the W3C vocabulary")
    assert a.indicator("FsF-F2-01M").evidence == (
        "label 'Annotation Examples'; 2 of 43 annotations state creator and created")
    assert a.indicator("FsF-R1.1-01M").evidence == (
        "1 of 43 annotations state a known licence (CC0-1.0 x1)")
    assert a.indicator("FsF-R1.2-01M").evidence.startswith("3 of 43 annotations name who")
    assert not a.indicator("FsF-F1-02D").passed
    assert a.score == pytest.approx(2 / 6)


def test_the_commons_crate_export_is_assessed_and_validated(tmp_path, monkeypatch):
    """The commons' RO-Crate export (export/crate) of a person's and a software's annotations
    from a real (local) commons: licences and makers pass; roc-validator finds no MUST broken
    in its RO-Crate (1.3, as the rocrate library writes it)."""
    import zipfile

    from echoes_lab import commons
    from echoes_lab.hub.services.commons.exports import crate_zip

    monkeypatch.chdir(tmp_path)
    commons.connect(local=tmp_path / "commons.sqlite")
    page = commons.target.region("https://iiif.example/ms1/canvas/p3", 120, 40, 300, 90)
    commons.annotate(page, "Smalt, discoloured", motivation="describing")
    commons.actor("tesseract", "5.3.0").annotate(page, "ANNO 1642", motivation="describing")
    found = list(commons.annotations(canvas="https://iiif.example/ms1/canvas/p3")["annotation"])
    assert len(found) == 2
    export = tmp_path / "export.zip"
    export.write_bytes(crate_zip(found, "https://lab.example/services/commons/search?canvas=p3"))
    a = fair.assess_annotations(export)
    assert a.indicator("FsF-R1.1-01M").evidence == (
        "2 of 2 annotations state a known licence (CC-BY-4.0 x2)")
    assert a.indicator("FsF-R1.2-01M").evidence == (
        "2 of 2 annotations name who made them (creator: 2, generator, i.e. software: 1)")
    assert a.indicator("FsF-I2-01M").passed
    assert not a.indicator("FsF-F1-02D").passed  # a search's URL, not a PID
    folder = tmp_path / "crate"
    with zipfile.ZipFile(export) as zf:
        zf.extractall(folder)
    # (before software actors had a url and a version: ro-crate-1.2_32.2 and _32.3)
    assert fair.validate_export(folder) == []


def test_an_export_that_is_not_annotations_is_refused_by_name(tmp_path):
    bad = tmp_path / "manifest.json"
    bad.write_text('{"type": "Manifest", "items": []}')
    with pytest.raises(EchoesError, match="holds no annotations"):
        fair.assess_annotations(bad)
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(EchoesError, match="broken.json: not a readable Web Annotation export"):
        fair.assess_annotations(tmp_path / "broken.json")


def test_the_hubs_catalogue_shows_each_datasets_fair_score(tmp_path):
    """The home page's datasets table (echoes_lab.hub.face) has a FAIR column: indicators
    passed, and which, by their FsF ids."""
    from echoes_lab.hub import face

    rows = {r["name"]: r for r in face.datasets(type("S", (), {"shared_dir": tmp_path})())}
    assert rows["moma-collection"]["fair"] == "6/6"
    assert rows["tate-collection"]["fair"] == "4/6"
    assert "FsF-F1-02D✗" in rows["tate-collection"]["fair_indicators"]
    assert "FsF-R1.1-01M✓" in rows["tate-collection"]["fair_indicators"]
