"""The commons at scale and in the open, through a real hub and proxy (issue 29): a software
actor's 20,000 annotations in batches, each there once with its provenance; invalid items
reported with their reasons while the others are stored; a service killed mid-batch loses
nothing acknowledged and, retried with the same idempotency keys, stores nothing twice; full
text in three languages; the public moderation log."""

from __future__ import annotations

import io
import json
import os
import signal
import threading
import time
import zipfile

import pytest
import requests

from harness import gone, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CANVAS = "https://iiif.example.org/manifest/bulk-ms/canvas/p{}"
CRATE = "https://hub.example/runs/ocr-7/ro-crate-metadata.json"
LD = {"Content-Type": "application/ld+json"}


@pytest.fixture(scope="module")
def commons_hub(module_hubs):
    hub = module_hubs(gateway={"enabled": False}, workshops={"enabled": False},
                      reports={"enabled": False}, projects={"enabled": False},
                      commons={"page_size": 100}, auth={"admins": ["bulkadmin"]})
    for name in ("bulkocr", "bulkpeer"):
        hub.create_user(name)
    hub.create_user("bulkadmin", admin=True)
    base = f"{hub.url}/services/commons/"
    wait_for(lambda: requests.get(base + "annotations/", timeout=5).status_code == 200, 60,
             "the commons")
    return hub, base


def token(hub, user: str) -> str:
    r = hub.api("POST", f"/users/{user}/tokens",
                json={"scopes": ["access:services!service=commons"], "note": "bulk"})
    assert r.status_code == 201, r.text
    return r.json()["token"]


def line(page: int, n: int, text: str) -> dict:
    return {"@context": "http://www.w3.org/ns/anno.jsonld", "type": "Annotation",
            "motivation": "transcribing", "visibility": "public", "confidence": 0.9,
            "body": {"type": "TextualBody", "value": text, "format": "text/plain"},
            "target": {"type": "SpecificResource",
                       "source": {"id": CANVAS.format(page), "type": "Canvas"},
                       "selector": {"type": "FragmentSelector", "value": f"xywh=0,{n * 20},800,20",
                                    "conformsTo": "http://www.w3.org/TR/media-frags/"}}}


def everything_by(base: str, generator: str) -> list[dict]:
    """Every annotation of a generator, in one request (the RO-Crate export of a search)."""
    r = requests.get(f"{base}export/crate", params={"generator": generator}, timeout=300)
    assert r.status_code == 200, r.text[:300]
    with zipfile.ZipFile(io.BytesIO(r.content)) as z:
        data = json.loads(z.read("annotations.jsonld"))
    return data["first"]["items"]


def test_a_software_actor_posts_20000_annotations_in_batches(commons_hub):
    from echoes_lab import commons

    hub, base = commons_hub
    commons.connect(url=base, token=token(hub, "bulkocr"))
    ocr = commons.actor("bulk-tesseract", "5.3.0", run=CRATE)
    lines = [line(i // 40, i % 40, f"ligne {i} de la chronique") for i in range(20_000)]
    started = time.perf_counter()
    results = ocr.contribute(lines, batch=2000, progress=False)
    took = time.perf_counter() - started
    print(f"20,000 annotations through the hub in {took:.1f} s ({20_000 / took:,.0f}/s)")
    assert [r["status"] for r in results] == [201] * 20_000
    assert len({r["id"] for r in results}) == 20_000

    stored = everything_by(base, "bulk-tesseract")
    texts = [a["body"]["value"] for a in stored]
    assert len(texts) == 20_000 and set(texts) == {f"ligne {i} de la chronique"
                                                   for i in range(20_000)}
    assert {a["id"] for a in stored} == {r["id"] for r in results}
    for a in stored[:: 997]:  # provenance of every item: the person, the software, the run
        assert a["creator"]["nickname"] == "bulkocr"
        assert a["generator"]["name"] == "bulk-tesseract" and a["generator"]["version"] == "5.3.0"
        assert a["generator"]["homepage"] == CRATE and a["rights"].startswith("https://")
    assert all(a["generator"]["id"] == ocr.iri for a in stored)
    # read whole by key, as the knowledge service re-reads the commons: pages of 1,000
    # linked by `next`, every one once (batches go in parallel: the order stored is the store
    # test's concern), a filter kept across pages
    url, seen, pages = f"{base}annotations/?generator=bulk-tesseract&iris=1&after=0", [], 0
    started = time.perf_counter()
    while url:
        r = requests.get(url, timeout=60)
        assert r.status_code == 200, r.text[:300]
        page = r.json()
        assert page["type"] == "AnnotationPage" and page["partOf"]["id"].startswith(
            f"{base}annotations/?generator=bulk-tesseract")
        seen += page["items"]
        pages += 1
        url = page.get("next")
    print(f"20,000 read by key in {pages} pages, {time.perf_counter() - started:.1f} s")
    assert pages == 20 and len(seen) == len(set(seen)) == 20_000
    assert set(seen) == {r["id"] for r in results}
    # the canvas's page of the protocol shows them like any other annotation
    page = requests.get(f"{base}search", params={"canvas": CANVAS.format(7)}, timeout=60).json()
    assert page["total"] == 40
    assert {a["body"]["value"] for a in page["first"]["items"]} == {
        f"ligne {i} de la chronique" for i in range(280, 320)}


def test_a_batch_with_invalid_items_stores_the_others_and_says_why(commons_hub):
    hub, base = commons_hub
    auth = {"Authorization": f"token {token(hub, 'bulkpeer')}"}
    other = requests.post(f"{base}actors/", json={"name": "not-mine", "version": "1"},
                          headers={"Authorization": f"token {token(hub, 'bulkocr')}"}).json()
    items = [line(900, i, f"peer line {i}") for i in range(10)]
    del items[2]["target"]
    items[5]["motivation"] = "shouting"
    items[8]["generator"] = {"id": other["id"]}
    page = {"@context": "http://www.w3.org/ns/anno.jsonld", "type": "AnnotationPage",
            "items": items}
    headers = {**auth, **LD, "Idempotency-Key": "peer-batch-1"}
    r = requests.post(f"{base}bulk", json=page, headers=headers, timeout=60)
    assert r.status_code == 200, r.text
    got = r.json()
    assert (got["total"], got["created"], got["failed"]) == (10, 7, 3)
    errors = {x["index"]: x for x in got["items"] if "error" in x}
    assert set(errors) == {2, 5, 8}
    assert errors[2]["status"] == 400 and "'target' is required" in errors[2]["error"]
    assert errors[5]["status"] == 400 and "unknown motivation 'shouting'" in errors[5]["error"]
    assert errors[8]["status"] == 403 and "not one of yours" in errors[8]["error"]
    made = {x["index"]: x["id"] for x in got["items"] if x.get("status") == 201}
    assert set(made) == {0, 1, 3, 4, 6, 7, 9}
    for i, iri in made.items():
        assert requests.get(iri, timeout=30).json()["body"]["value"] == f"peer line {i}"

    # the answer was lost: the same batch again finds what was stored, stores nothing twice
    again = requests.post(f"{base}bulk", json=page, headers=headers, timeout=60).json()
    assert (again["created"], again["existing"], again["failed"]) == (0, 7, 3)
    assert {x["index"]: x["id"] for x in again["items"] if "id" in x} == made
    found = requests.get(f"{base}search", params={"creator": "bulkpeer"}, timeout=60).json()
    assert found["total"] == 7

    # NDJSON: a line that is not JSON is named by its line number
    body = "\n".join([json.dumps(line(901, 0, "nd one")), "{not json", "",
                      json.dumps(line(901, 1, "nd two"))])
    r = requests.post(f"{base}bulk", data=body.encode(), timeout=60,
                      headers={**auth, "Content-Type": "application/x-ndjson"})
    got = r.json()
    assert r.status_code == 200 and (got["created"], got["failed"]) == (2, 1)
    assert "line 2 is not JSON" in got["items"][1]["error"]
    # lines end at \n (\r\n too) only: a raw U+2028 inside a string (JSON allows it) stays
    # in its line and its text; bytes that are not UTF-8 make their line an error, not "\ufffd"
    odd = "vers\u2028ligne"
    body = b"\r\n".join([json.dumps(line(902, 0, odd), ensure_ascii=False).encode(),
                         json.dumps(line(902, 1, "caf\u00e9")).encode().replace(
                             b"caf\\u00e9", b"caf\xe9"),
                         json.dumps(line(902, 2, "nd three")).encode()]) + b"\r\n"
    r = requests.post(f"{base}bulk", data=body, timeout=60,
                      headers={**auth, "Content-Type": "application/x-ndjson"})
    got = r.json()
    assert r.status_code == 200 and (got["total"], got["created"], got["failed"]) == (3, 2, 1)
    assert "line 2 is not JSON" in got["items"][1]["error"]
    assert requests.get(got["items"][0]["id"], timeout=30).json()["body"]["value"] == odd
    # not a collection at all, or anonymous: the whole request is refused
    assert requests.post(f"{base}bulk", json={"type": "Annotation"}, headers={**auth, **LD},
                         timeout=30).status_code == 400
    assert requests.post(f"{base}bulk", json=page, headers=LD, timeout=30).status_code in (401,
                                                                                           403)


def service_pid(hub) -> int | None:
    found = hub.service_processes().get("commons") or []
    return found[0].pid if found else None


def test_service_killed_mid_batch_loses_nothing_acknowledged_and_doubles_nothing(commons_hub):
    from echoes_lab import commons

    hub, base = commons_hub
    remote = commons.connect(url=base, token=token(hub, "bulkocr"))
    robot = commons.actor("bulk-crash", "1.0", run=CRATE)
    batches = [[{**line(2000 + n, i, f"crash {n}-{i}"), "generator": {"id": robot.iri}}
                for i in range(400)] for n in range(10)]
    acked: dict[str, str] = {}
    failure: list[BaseException] = []

    def send():
        try:
            for n, batch in enumerate(batches):
                # post_batch sends again, with the same key, while the service is away
                for r in remote.post_batch(batch, f"crash-run-{n}", patience=180):
                    assert r["status"] in (200, 201), r
                    acked[r["id"]] = f"crash {n}-{r['index']}"
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            failure.append(exc)

    sender = threading.Thread(target=send)
    sender.start()
    wait_for(lambda: len(acked) >= 3 * 400, 120, "three batches acknowledged")
    killed = service_pid(hub)
    os.kill(killed, signal.SIGKILL)  # a crash mid-stream: the hub starts the service again
    at_kill = len(acked)
    wait_for(lambda: gone(killed), 30, "the killed service to end")
    sender.join(300)
    assert not sender.is_alive() and not failure, failure
    assert at_kill < 10 * 400 and len(acked) == 10 * 400
    assert service_pid(hub) not in (None, killed)

    stored = everything_by(base, "bulk-crash")
    texts = [a["body"]["value"] for a in stored]
    assert len(texts) == len(set(texts)) == 10 * 400  # every item once
    by_id = {a["id"]: a["body"]["value"] for a in stored}
    assert all(by_id.get(iri) == text for iri, text in acked.items())  # nothing acked is lost


def test_full_text_search_through_the_hub_in_three_languages(commons_hub):
    hub, base = commons_hub
    auth = {"Authorization": f"token {token(hub, 'bulkpeer')}"}
    texts = [("en", "The paintings were restored"), ("fr", "Les chevaux de la fresque"),
             ("de", "Die Farbe des Gemäldes"), ("fr", "Un cheval, un cheval blanc, cheval"),
             ("en", "A drawing of horses")]
    page = {"type": "AnnotationPage", "items": [
        {**line(950, i, ""), "body": {"type": "TextualBody", "value": t, "language": lang}}
        for i, (lang, t) in enumerate(texts)]}
    assert requests.post(f"{base}bulk", json=page, headers={**auth, **LD},
                         timeout=60).json()["created"] == 5

    def search(**params) -> list[str]:
        r = requests.get(f"{base}search", params=params, timeout=60)
        assert r.status_code == 200, r.text
        got = r.json()
        return [a["body"]["value"] for a in got["first"]["items"]] if got["total"] else []

    assert search(text="painting") == ["The paintings were restored"]
    assert search(text="gemälde") == ["Die Farbe des Gemäldes"]
    # French stems, ranked: three "cheval" before one "chevaux"
    assert search(text="chevaux", lang="fr") == ["Un cheval, un cheval blanc, cheval",
                                                 "Les chevaux de la fresque"]
    assert search(text="chevaux", creator="bulkocr") == []  # with the other filters
    assert search(text="chevaux", canvas=CANVAS.format(950)) != []
    one = requests.get(f"{base}search", params={"text": "cheval", "page": 0}, timeout=60)
    assert one.status_code == 200  # paged like every collection of the protocol
    assert one.json()["partOf"]["total"] == 2 and "text=cheval" in one.json()["partOf"]["id"]
    assert requests.get(f"{base}search", params={"text": "cheval", "page": 1},
                        timeout=60).status_code == 404


def test_the_moderation_log_shows_hide_and_restore_with_reasons(commons_hub):
    hub, base = commons_hub
    peer = {"Authorization": f"token {token(hub, 'bulkpeer')}"}
    ocr = {"Authorization": f"token {token(hub, 'bulkocr')}"}
    admin = {"Authorization": f"token {token(hub, 'bulkadmin')}"}
    secret = "buy cheap pigments at spam.example"
    made = requests.post(f"{base}annotations/", headers={**peer, **LD}, timeout=30,
                         json={**line(960, 0, secret)}).json()
    iri = made["id"]
    # a person who is not a moderator cannot hide, and nothing is logged
    r = requests.put(iri + "/hidden", json={"reason": "I dislike it"}, headers=ocr, timeout=30)
    assert r.status_code == 403
    assert requests.put(iri + "/hidden", json={"reason": "advertising"}, headers=admin,
                        timeout=30).status_code == 200
    assert requests.get(iri, timeout=30).status_code == 404  # hidden from the public
    r = requests.delete(iri + "/hidden", params={"reason": "the author removed the link"},
                        headers=admin, timeout=30)
    assert r.status_code == 204 and requests.get(iri, timeout=30).status_code == 200

    # every signed-in user reads the log; anonymous people do not
    assert requests.get(f"{base}moderation", timeout=30).status_code == 401
    log = requests.get(f"{base}moderation", headers=ocr, timeout=30)
    assert log.status_code == 200, log.text
    entries = [e for e in log.json()["orderedItems"] if e["object"] == iri]
    assert [(e["action"], e["by"], e["summary"]) for e in entries] == [
        ("shown", "bulkadmin", "the author removed the link"),
        ("hidden", "bulkadmin", "advertising")]
    assert all(e["published"].endswith("Z") for e in entries)
    assert secret not in log.text  # the log never shows the content it is about


def harvest(base: str, known: set[str]) -> list[tuple[str, str]]:
    """What an aggregator does (IIIF Change Discovery 1.0 §3.3): from the last page backwards
    until an activity it already has; returns the new (type, object) oldest first."""
    feed = requests.get(f"{base}changes", timeout=30).json()
    assert feed["type"] == "OrderedCollection" and "discovery/1" in feed["@context"]
    new: list[dict] = []
    page_ref = feed["last"] if feed["totalItems"] else None
    while page_ref:
        page = requests.get(page_ref["id"], timeout=30).json()
        assert page["type"] == "OrderedCollectionPage" and page["partOf"]["id"] == feed["id"]
        fresh = [a for a in page["orderedItems"] if a["id"] not in known]
        new = fresh + new
        if len(fresh) < len(page["orderedItems"]):
            break
        page_ref = page.get("prev")
    for a in new:
        assert a["endTime"].endswith("Z") and a["object"]["type"] == "Annotation"
        known.add(a["id"])
    return [(a["type"], a["object"]["id"]) for a in new]


def test_an_aggregator_harvesting_twice_gets_exactly_the_changes_between(commons_hub):
    hub, base = commons_hub
    peer = {"Authorization": f"token {token(hub, 'bulkpeer')}", **LD}
    known: set[str] = set()
    before = harvest(base, known)
    assert len(before) >= 20_000  # the public annotations of the tests before, as Creates
    assert harvest(base, known) == []

    def post(text, visibility="public"):
        return requests.post(f"{base}annotations/", json={**line(970, 0, text),
                                                          "visibility": visibility},
                             headers=peer, timeout=30).json()

    a, b = post("feed a"), post("feed b")
    post("feed private", "private")
    r = requests.put(a["id"], json={**a, "body": {"type": "TextualBody", "value": "feed a2"}},
                     headers=peer, timeout=30)
    assert r.status_code == 200
    assert requests.delete(b["id"], headers=peer, timeout=30).status_code == 204
    assert harvest(base, known) == [("Create", a["id"]), ("Create", b["id"]),
                                    ("Update", a["id"]), ("Delete", b["id"])]
    assert harvest(base, known) == []
    one = requests.get(f"{base}changes/1", timeout=30)
    assert one.status_code == 200 and one.json()["type"] == "Create"


def test_a_person_exports_everything_they_contributed(commons_hub):
    hub, base = commons_hub
    peer = {"Authorization": f"token {token(hub, 'bulkpeer')}"}
    mine = requests.post(f"{base}annotations/", headers={**peer, **LD}, timeout=30,
                         json={**line(980, 0, "only for me"), "visibility": "private",
                               "rights": "http://creativecommons.org/publicdomain/zero/1.0/"})
    assert mine.status_code == 201
    r = requests.get(f"{base}export/mine", headers=peer, timeout=60)
    assert r.status_code == 200 and "attachment" in r.headers["Content-Disposition"]
    got = r.json()
    assert got["type"] == "AnnotationCollection" and got["total"] == len(got["first"]["items"])
    items = got["first"]["items"]
    assert {a["creator"]["nickname"] for a in items} == {"bulkpeer"}  # nobody else's
    private = next(a for a in items if a["id"] == mine.json()["id"])
    assert private["visibility"] == "private"
    assert private["rights"] == "http://creativecommons.org/publicdomain/zero/1.0/"  # CC0 kept
    assert any(a["body"]["value"] == "peer line 0" for a in items)  # the bulk ones too
    assert requests.get(f"{base}export/mine", timeout=30).status_code == 401


def test_an_account_withdrawn_on_request_keeps_attributed_tombstones(commons_hub):
    hub, base = commons_hub
    hub.create_user("bulkgone")
    gone_auth = {"Authorization": f"token {token(hub, 'bulkgone')}"}
    public = requests.post(f"{base}annotations/", headers={**gone_auth, **LD}, timeout=30,
                           json=line(990, 0, "a public reading")).json()
    private = requests.post(f"{base}annotations/", headers={**gone_auth, **LD}, timeout=30,
                            json={**line(990, 1, "a private hunch"), "visibility": "private"}
                            ).json()
    person = f"{base}people/bulkgone"
    other = {"Authorization": f"token {token(hub, 'bulkpeer')}"}
    assert requests.delete(person, params={"confirm": "bulkgone"}, headers=other,
                           timeout=30).status_code == 403
    assert requests.delete(person, headers=gone_auth, timeout=30).status_code == 400
    r = requests.delete(person, params={"confirm": "bulkgone"}, headers=gone_auth, timeout=30)
    assert r.status_code == 200 and (r.json()["erased"], r.json()["withdrawn"]) == (1, 1)
    assert requests.get(private["id"], headers=gone_auth, timeout=30).status_code == 404
    assert requests.get(public["id"], timeout=30).status_code == 410
    admin = {"Authorization": f"token {token(hub, 'bulkadmin')}"}
    history = requests.get(public["id"] + "/versions", headers=admin, timeout=30).json()
    first = history["first"]["items"][0]
    assert first["creator"]["nickname"] == "bulkgone" and "body" not in first
    assert "a public reading" not in json.dumps(history)
