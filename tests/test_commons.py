"""``echoes_lab.commons`` outside a hub: the local commons keeps the service's rules."""

from __future__ import annotations

import numpy as np
import pytest

from echoes_lab import commons
from echoes_lab.hub.services.commons.exports import iiif_page

CANVAS = "https://iiif.example.org/manifest/ms-1/canvas/p3"


@pytest.fixture
def local(tmp_path, monkeypatch):
    monkeypatch.delenv("ECHOES_COMMONS_URL", raising=False)
    monkeypatch.setenv("JUPYTERHUB_USER", "alice")
    c = commons.connect(local=tmp_path / "commons.sqlite")
    yield c
    c.store.close()
    commons._current = None


def test_annotate_review_reply_and_find(local):
    assert commons.where() == str(local.path)
    region = commons.target.region(CANVAS, 10, 20, 30, 40, manifest="https://iiif.example.org/m")
    a = commons.annotate(region, "Smalt, discoloured", motivation="describing", tags=["smalt"],
                         visibility="public")
    assert a["creator"]["nickname"] == "alice"
    assert a["target"]["selector"]["value"] == "xywh=10,20,30,40"
    ocr = commons.actor("tesseract", "5.3.0", run="runs/1/ro-crate-metadata.json")
    t = ocr.annotate(region, "ANNO 1642", motivation="transcribing", confidence=0.87)
    assert t["generator"]["name"] == "tesseract" and t["generator"]["homepage"].endswith(".json")
    r = commons.review(t["id"], "Reads 1642, agreed", verdict="agree")
    commons.reply(r["id"], "Thanks!")
    frame = commons.annotations(canvas=CANVAS)
    assert list(frame["text"]) == ["Smalt, discoloured", "ANNO 1642"]
    assert frame.loc[1, "confidence"] == 0.87 and frame.loc[1, "generator"] == "tesseract"
    assert frame.loc[0, "tags"] == ["smalt"]
    assert len(commons.annotations(target=t["id"], tag="agree")) == 1
    assert len(commons.annotations(motivation="replying")) == 1
    changed = commons.update(a, body={"type": "TextualBody", "value": "Azurite"})
    assert [v["action"] for v in commons.history(changed["id"])] == ["created", "updated"]
    commons.delete(a["id"])
    with pytest.raises(commons.CommonsError):
        commons.get(a["id"])
    # the IIIF page of the canvas is valid Presentation 3
    import iiif_prezi3

    page = iiif_page("https://hub.example/export", list(commons.annotations(canvas=CANVAS)
                                                         ["annotation"]))
    assert len(iiif_prezi3.AnnotationPage(**page).items) == 1


def test_targets_and_refusals(local):
    sensor = commons.target.sensor("https://museum.example/sensors/G3-T1",
                                   "2026-05-01", "2026-05-31T23:59:59+02:00")
    assert sensor["selector"]["value"] == "t=clock:2026-05-01T00:00:00Z,2026-05-31T21:59:59Z"
    assert commons.target.dataset("demo-spectral")["id"] == (
        "tag:echoes-lab.eu,2026:dataset/demo-spectral")
    cube = commons.target.cube("demo-spectral", 1, 2, 3, 4, label="blue")
    assert cube["source"]["id"].endswith("demo-spectral") and cube["scope"] == "blue"
    assert commons.target.record({"id": "1994.12"}, base="https://m.example/o/")["id"] == (
        "https://m.example/o/1994.12")
    with pytest.raises(commons.CommonsError, match="base="):
        commons.target.record({"id": "1994.12"})
    with pytest.raises(commons.CommonsError, match="someone else"):
        commons.annotate("https://o/1", "x", creator={"type": "Person", "nickname": "bob"})
    with pytest.raises(commons.CommonsError, match="motivation"):
        commons.annotate("https://o/1", "x", motivation="liking")


def test_show_and_widget(local):
    import matplotlib

    matplotlib.use("Agg")
    commons.annotate(commons.target.region(CANVAS, 5, 5, 10, 10), "a box")
    ax = commons.show(np.zeros((40, 60)), canvas=CANVAS)
    assert len(ax.patches) == 1
    panel = commons.widget(np.zeros((40, 60)), CANVAS)
    form = panel.children[1].children
    form[2].value, form[3].value = 7, 8
    panel.children[2].children[0].value = "from the form"
    panel.children[3].children[0].click()
    assert "added" in panel.children[3].children[1].value
    assert len(commons.annotations(canvas=CANVAS)) == 2


def test_contribute_many_with_an_actor_in_batches(local, capsys):
    ocr = commons.actor("kraken", "5.2", run="runs/7/ro-crate-metadata.json")
    lines = [commons.build(commons.target.region(CANVAS, 0, 30 * i, 600, 30), f"Zeile {i}",
                           motivation="transcribing", visibility="public") for i in range(250)]
    lines[17] = {"type": "Annotation", "body": "no target"}
    results = ocr.contribute(lines, batch=100, key="kraken-run-7")
    assert "250/250" in capsys.readouterr().err  # tqdm's bar reached the end
    assert [r["index"] for r in results] == list(range(250))
    assert results[17]["status"] == 400 and "'target' is required" in results[17]["error"]
    made = [r for r in results if r.get("status") == 201]
    assert len(made) == 249
    frame = commons.annotations(canvas=CANVAS)
    assert len(frame) == 249 and set(frame["generator"]) == {"kraken"}
    assert commons.get(made[0]["id"])["generator"]["homepage"] == "runs/7/ro-crate-metadata.json"
    # interrupted and called again with the same key: found, not stored twice
    again = ocr.contribute(lines, batch=100, key="kraken-run-7", progress=False)
    assert [r.get("id") for r in again] == [r.get("id") for r in results]
    assert {r["status"] for r in again if "id" in r} == {200}
    assert len(commons.annotations(canvas=CANVAS)) == 249


def test_licence_is_cc_by_by_default_cc0_allowed_nothing_else(local):
    region = commons.target.region(CANVAS, 1, 2, 3, 4)
    assert commons.annotate(region, "by default")["rights"] == (
        "https://creativecommons.org/licenses/by/4.0/")
    cc0 = "http://creativecommons.org/publicdomain/zero/1.0/"
    assert commons.annotate(region, "given away", licence=cc0)["rights"] == cc0
    with pytest.raises(commons.CommonsError, match="'rights' .* choose .*CC0"):
        commons.annotate(region, "all rights reserved", licence="https://example.org/mine")


def test_a_large_batch_goes_in_requests_under_the_size_limit_with_the_same_keys_each_time():
    import orjson

    remote = commons._Remote("http://127.0.0.1:9/services/commons/", "unused")
    remote.max_bytes = 1000
    items = [{"type": "Annotation", "body": {"value": "x" * (10 * (i % 30))}, 7: i}
             for i in range(200)]
    parts = list(remote._parts(items, "run"))
    # every item once, in order, one per line; lines are cut between requests only
    lines = [line for _, body, _ in parts for line in body.split(b"\n")]
    assert [orjson.loads(x) for x in lines] == [{**{k: v for k, v in it.items() if k != 7},
                                                "7": it[7]} for it in items]
    assert all(len(body) < remote.max_bytes for _, body, _ in parts)
    assert [first for first, _, _ in parts] == [0] + [
        sum(len(b.split(b"\n")) for _, b, _ in parts[:n]) for n in range(1, len(parts))]
    assert [key for _, _, key in parts] == [f"run.{n}" for n in range(len(parts))]
    assert len(parts) > 10
    # the split depends only on the items: sent again, the same requests under the same keys
    assert list(remote._parts(items, "run")) == parts
    # an item larger than the limit goes alone (the service answers 413 for it)
    big = list(remote._parts([{"v": "y" * 5000}, {"v": 1}], "b"))
    assert [(first, key) for first, _, key in big] == [(0, "b.0"), (1, "b.1")]
