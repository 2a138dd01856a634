"""Links into the commons viewer from a notebook (echoes_lab.commons.viewer) and from the
commons page (echoes_lab.hub.services.commons.viewer.viewer_link), on real IIIF manifests."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from echoes_lab.collections.records import read
from echoes_lab.commons.viewer import viewer_url
from echoes_lab.errors import EchoesError

BODLEIAN = "https://iiif.bodleian.ox.ac.uk/iiif/manifest/9cca8fdd-4a61-4429-8ac1-f648764b4d6d.json"


@pytest.mark.parametrize("name", ["mirador-v3-001.json", "mirador-v2-001.json"])
def test_a_record_read_from_a_real_manifest_opens_that_manifest(data_dir, name):
    record = read(data_dir / "real" / "iiif" / name).iloc[0]
    url = urlsplit(viewer_url(record, base_url="/lab-base/"))
    assert url.path == "/lab-base/services/commons/viewer"
    assert parse_qs(url.query) == {"manifest": [BODLEIAN]}


def test_the_hub_base_url_of_the_lab_and_a_canvas(monkeypatch):
    monkeypatch.setenv("JUPYTERHUB_BASE_URL", "/echoes/")
    canvas = "https://iiif.bodleian.ox.ac.uk/iiif/canvas/9cca8fdd-4a61-4429-8ac1-f648764b4d6d.json"
    url = urlsplit(viewer_url(BODLEIAN, canvas))
    assert url.path == "/echoes/services/commons/viewer"
    assert parse_qs(url.query) == {"manifest": [BODLEIAN], "canvas": [canvas]}


def test_what_is_no_manifest_is_refused_with_the_fix(data_dir):
    with pytest.raises(EchoesError, match="file:///etc/passwd.*is not one"):
        viewer_url("file:///etc/passwd")
    lido = next((data_dir / "real" / "lido").glob("*.xml"))
    record = read(lido).iloc[0]
    with pytest.raises(EchoesError, match="not from a IIIF manifest.*format='iiif'"):
        viewer_url(record)
    with pytest.raises(EchoesError, match="not int"):
        viewer_url(3)


def test_the_commons_page_links_annotations_on_a_canvas_of_a_manifest():
    from echoes_lab.hub.services.commons.viewer import viewer_link

    canvas = "https://iiif.example.org/c/1"
    on_canvas = {"target": {"source": {"id": canvas, "type": "Canvas",
                                       "partOf": [{"id": BODLEIAN, "type": "Manifest"}]},
                            "selector": {"type": "FragmentSelector", "value": "xywh=1,2,3,4"}}}
    link = urlsplit(viewer_link("/services/commons/", on_canvas))
    assert link.path == "/services/commons/viewer"
    assert parse_qs(link.query) == {"manifest": [BODLEIAN], "canvas": [canvas]}
    assert viewer_link("/services/commons/", {"target": canvas}) is None
    no_manifest = {"target": {"source": {"id": canvas}, "selector": {}}}
    assert viewer_link("/services/commons/", no_manifest) is None
    javascript = {"target": {"source": {"id": canvas, "partOf": ["javascript:alert(1)"]}}}
    assert viewer_link("/services/commons/", javascript) is None
