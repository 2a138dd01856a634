"""The commons behind a real hub and proxy: every MUST of the W3C Web Annotation Protocol,
the data model's required properties, visibility by hub groups, software actors, exports, and
no acknowledged annotation lost when the service is killed and the hub restarted mid-write."""

from __future__ import annotations

import io
import os
import signal
import threading
import time
import zipfile

import jsonschema
import pytest
import requests

from harness import Hub, login, wait_for

pytestmark = pytest.mark.integration

ANNO = "http://www.w3.org/ns/anno.jsonld"
LDP = "http://www.w3.org/ns/ldp#"
CANVAS = "https://iiif.example.org/manifest/ms-1/canvas/p3"
MOTIVATIONS = ["assessing", "bookmarking", "classifying", "commenting", "describing", "editing",
               "highlighting", "identifying", "linking", "moderating", "questioning", "replying",
               "tagging", "transcribing"]
#: the data model's MUSTs for an annotation (W3C Web Annotation Data Model §3.1, §3.3): a
#: context naming anno.jsonld, an IRI id, type Annotation, at least one target; agents typed;
#: times as xsd:dateTime; motivations from §3.3.5 (written from the spec, in the spirit of the
#: definitions in web-platform-tests/wpt annotation-model/definitions)
SCHEMA = {
    "type": "object",
    "required": ["@context", "id", "type", "target"],
    "properties": {
        "@context": {"anyOf": [{"const": ANNO},
                               {"type": "array", "contains": {"const": ANNO}}]},
        "id": {"type": "string", "pattern": "^https?://"},
        "type": {"anyOf": [{"const": "Annotation"},
                           {"type": "array", "contains": {"const": "Annotation"}}]},
        "target": {"anyOf": [{"type": "string", "minLength": 1},
                             {"type": "object", "anyOf": [{"required": ["id"]},
                                                          {"required": ["source"]}]},
                             {"type": "array", "minItems": 1}]},
        "motivation": {"anyOf": [{"enum": MOTIVATIONS},
                                 {"type": "array", "items": {"enum": MOTIVATIONS}}]},
        "creator": {"type": "object", "required": ["id", "type"],
                    "properties": {"type": {"const": "Person"}}},
        "generator": {"type": "object", "required": ["id", "type", "name"],
                      "properties": {"type": {"const": "Software"}}},
        "created": {"type": "string", "format": "date-time"},
        "modified": {"type": "string", "format": "date-time"},
        "rights": {"type": "string", "pattern": "^https?://"},
    },
}


def region(xywh: str) -> dict:
    return {"type": "SpecificResource", "source": {"id": CANVAS, "type": "Canvas"},
            "selector": {"type": "FragmentSelector", "value": f"xywh={xywh}",
                         "conformsTo": "http://www.w3.org/TR/media-frags/"}}


def note(text: str, **extra) -> dict:
    return {"@context": ANNO, "type": "Annotation", "motivation": "commenting",
            "body": {"type": "TextualBody", "value": text, "format": "text/plain"},
            "target": region("10,10,50,50"), **extra}


def service_pid(hub) -> int | None:
    """The pid of the process running the commons (alone, or with our other services)."""
    found = hub.service_processes().get("commons") or []
    return found[0].pid if found else None


def test_commons_protocol_access_and_nothing_lost(hub_factory):
    hub = hub_factory(gateway={"enabled": False}, workshops={"enabled": False},
                      reports={"enabled": False}, projects={"enabled": False},
                      commons={"page_size": 10})
    base = f"{hub.url}/services/commons/"
    container = f"{base}annotations/"
    for name in ("alice", "bob", "carol"):
        hub.create_user(name)
    hub.create_user("admin", admin=True)
    assert hub.api("POST", "/groups/lab").status_code in (201, 409)
    assert hub.api("POST", "/groups/lab/users", json={"users": ["alice", "bob"]}).ok

    def auth(user: str) -> dict:
        r = hub.api("POST", f"/users/{user}/tokens",
                    json={"scopes": ["access:services!service=commons"], "note": "commons"})
        assert r.status_code == 201, r.text
        return {"Authorization": f"token {r.json()['token']}"}

    alice, bob, carol, admin = (auth(u) for u in ("alice", "bob", "carol", "admin"))
    ld = {"Content-Type": "application/ld+json"}
    wait_for(lambda: requests.get(container, timeout=5).status_code == 200, 30, "the commons")

    # -- creation (protocol §5.4) ------------------------------------------------------------
    canonical = "urn:uuid:4c3c3a88-5d2b-4f0e-9a55-2b9b3c5a7e01"
    r = requests.post(container, json=note("Smalt, discoloured", visibility="public",
                                           canonical=canonical), headers={**alice, **ld})
    assert r.status_code == 201, r.text
    first = r.json()
    jsonschema.validate(first, SCHEMA, format_checker=jsonschema.FormatChecker())
    assert first["id"].startswith(container) and r.headers["Location"] == first["id"]
    assert first["canonical"] == canonical
    assert first["creator"]["nickname"] == "alice" and first["creator"]["type"] == "Person"
    assert first["rights"] == "https://creativecommons.org/licenses/by/4.0/"
    assert 'profile="http://www.w3.org/ns/anno.jsonld"' in r.headers["Content-Type"]
    for i in range(26):
        r = requests.post(container, json=note(f"note {i}", visibility="public"),
                          headers={**alice, **ld})
        assert r.status_code == 201

    # -- the container (§5.1-5.3): headers, representation, paging ------------------------
    r = requests.get(container, headers=alice)
    assert r.status_code == 200
    for method in ("GET", "HEAD", "OPTIONS", "POST"):
        assert method in r.headers["Allow"]
    assert r.headers["Content-Type"].startswith("application/ld+json")
    assert "Accept" in r.headers["Vary"] and r.headers["ETag"]
    assert f'<{LDP}BasicContainer>; rel="type"' in r.headers["Link"]
    assert (f'<http://www.w3.org/TR/annotation-protocol/>; rel="{LDP}constrainedBy"'
            in r.headers["Link"])
    coll = r.json()
    assert {"BasicContainer", "AnnotationCollection"} <= set(coll["type"])
    assert r.headers["Content-Location"] == coll["id"] == container
    assert coll["total"] == 27
    assert requests.head(container, headers=alice).status_code == 200
    assert requests.options(container).status_code == 200
    # same representation, same ETag; a new annotation, a new one
    assert requests.get(container, headers=alice).headers["ETag"] == r.headers["ETag"]
    page, seen = coll["first"], []
    assert page["type"] == "AnnotationPage" and "prev" not in page
    while True:
        seen += [a["id"] for a in page["items"]]
        if "next" not in page:
            break
        nxt = requests.get(page["next"], headers=alice)
        assert nxt.status_code == 200 and nxt.headers["Link"] == f'<{LDP}Resource>; rel="type"'
        page = nxt.json()
        assert page["partOf"]["id"] == container and page["partOf"]["total"] == 27
        assert "prev" in page
    assert len(seen) == len(set(seen)) == 27 and page["id"] == coll["last"]
    iris = requests.get(container, headers={**alice, "Prefer": 'return=representation;include='
                                            '"http://www.w3.org/ns/oa#PreferContainedIRIs"'})
    assert all(isinstance(i, str) for i in iris.json()["first"]["items"])
    assert iris.headers["ETag"] != r.headers["ETag"]
    minimal = requests.get(container, headers={**alice, "Prefer": 'return=representation;include='
                                               '"http://www.w3.org/ns/ldp#PreferMinimalContainer"'})
    assert isinstance(minimal.json()["first"], str)
    assert requests.get(container + "?page=99").status_code == 404
    # pages by key (a whole-collection reader, the knowledge service): the same annotations
    # in the same order, a valid AnnotationPage without the per-page count
    keyed = requests.get(container + "?iris=1&after=0", headers=alice)
    assert keyed.status_code == 200 and keyed.headers["Link"] == f'<{LDP}Resource>; rel="type"'
    kp = keyed.json()
    assert kp["type"] == "AnnotationPage" and kp["partOf"] == {"id": container}
    assert kp["id"] == container + "?iris=1&after=0" and "next" not in kp
    assert kp["items"] == seen
    assert requests.get(container + "?after=x").status_code == 400
    assert requests.get(container + "?after=0&page=0").status_code == 400

    # -- one annotation (§4): headers, ETag / If-Match, update, delete, 410 --------------------
    url = first["id"]
    r = requests.get(url, headers=alice)
    assert r.status_code == 200 and r.headers["Link"] == f'<{LDP}Resource>; rel="type"'
    for method in ("GET", "HEAD", "OPTIONS", "PUT", "DELETE"):
        assert method in r.headers["Allow"]
    assert "Accept" in r.headers["Vary"] and r.headers["ETag"]
    assert requests.head(url).status_code == 200 and requests.options(url).status_code == 200
    etag = r.headers["ETag"]
    changed = dict(r.json(), body={"type": "TextualBody", "value": "Azurite, not smalt"})
    put = requests.put(url, json=changed, headers={**alice, **ld, "If-Match": etag})
    assert put.status_code == 200 and put.json()["body"]["value"] == "Azurite, not smalt"
    assert put.headers["ETag"] != etag and put.json()["created"] == first["created"]
    stale = requests.put(url, json=changed, headers={**alice, **ld, "If-Match": etag})
    assert stale.status_code == 412
    hist = requests.get(url + "/versions", headers=alice).json()
    assert hist["total"] == 2 and hist["first"]["items"][0]["body"]["value"] == "Smalt, discoloured"
    v1 = requests.get(url + "/versions/1")
    assert v1.status_code == 200 and v1.json()["id"] == url + "/versions/1"
    assert requests.get(container + "nosuchannotation").status_code == 404

    # -- who may see and change what -------------------------------------------------------
    private = requests.post(container, json=note("my hunch"), headers={**alice, **ld}).json()
    group = requests.post(container, json=note("for the lab", visibility="group:lab"),
                          headers={**alice, **ld}).json()
    assert requests.get(private["id"], headers=alice).status_code == 200
    for who in (bob, carol, {}):
        assert requests.get(private["id"], headers=who).status_code == 404
    assert requests.get(group["id"], headers=bob).status_code == 200
    assert requests.get(group["id"], headers=carol).status_code == 404
    assert requests.get(group["id"]).status_code == 404
    assert requests.get(url, headers={"Origin": "https://mirador.example"}).headers[
        "Access-Control-Allow-Origin"] == "*"
    assert requests.put(url, json=changed, headers={**bob, **ld}).status_code == 403
    assert requests.delete(url, headers=bob).status_code == 403
    assert requests.post(container, json=note("anonymous"), headers=ld).status_code in (401, 403)
    assert requests.post(container, json=note("as alice", creator={
        "type": "Person", "nickname": "alice"}), headers={**bob, **ld}).status_code == 403
    assert requests.post(container, json=note("not my group", visibility="group:lab"),
                         headers={**carol, **ld}).status_code == 403

    # -- a software actor posts; its human owner is the creator ------------------------------
    actor = requests.post(f"{base}actors/", json={"name": "tesseract", "version": "5.3.0"},
                          headers=carol)
    assert actor.status_code == 201
    robot = actor.json()
    crate = "https://hub.example/runs/42/ro-crate-metadata.json"
    r = requests.post(container, headers={**carol, **ld}, json={
        **note("ANNO 1642", visibility="public", confidence=0.91), "motivation": "transcribing",
        "generator": {"id": robot["id"], "homepage": crate}})
    assert r.status_code == 201, r.text
    made = r.json()
    jsonschema.validate(made, SCHEMA)
    assert made["generator"] == {"id": robot["id"], "type": "Software", "name": "tesseract",
                                 "version": "5.3.0", "homepage": crate}
    assert made["creator"]["nickname"] == "carol" and made["confidence"] == 0.91
    assert requests.post(container, headers={**bob, **ld}, json={
        **note("stolen"), "generator": {"id": robot["id"]}}).status_code == 403

    # -- search and exports ----------------------------------------------------------------
    found = requests.get(f"{base}search", params={"canvas": CANVAS, "generator": "tesseract"})
    assert found.json()["total"] == 1 and found.json()["first"]["items"][0]["id"] == made["id"]
    assert requests.get(f"{base}search", params={"q": "azurite"}).json()["total"] == 1
    assert requests.get(f"{base}search", params={"creator": "alice"}).json()["total"] == 27
    assert requests.get(f"{base}search", params={"group": "lab"}, headers=bob).json()["total"] == 1
    import iiif_prezi3

    iiif = requests.get(f"{base}export/iiif", params={"canvas": CANVAS}).json()
    page = iiif_prezi3.AnnotationPage(**iiif)
    assert len(page.items) == 28 and iiif["items"][0]["target"].endswith("#xywh=10,10,50,50")
    z = zipfile.ZipFile(io.BytesIO(requests.get(f"{base}export/crate",
                                                params={"generator": "tesseract"}).content))
    assert {"ro-crate-metadata.json", "annotations.jsonld"} <= set(z.namelist())

    # -- delete is a tombstone; an admin restores; an admin hides ---------------------------
    assert requests.delete(url, headers={**alice, "If-Match": '"stale"'}).status_code == 412
    assert requests.delete(url, headers=alice).status_code == 204
    assert requests.get(url, headers=alice).status_code == 410
    assert requests.get(url).status_code == 410
    assert requests.post(url + "/restore", headers=alice).status_code == 403
    assert requests.post(url + "/restore", headers=admin).status_code == 200
    assert requests.get(url).status_code == 200
    assert requests.put(url + "/hidden", json={"reason": "spam"}, headers=admin).status_code == 200
    assert requests.get(url).status_code == 404 and requests.get(url, headers=alice).ok
    assert [v["action"] for v in requests.get(url + "/versions", headers=alice)
            .json()["first"]["items"]] == ["created", "updated", "deleted", "restored"]

    # -- people in a browser (hub OAuth) and code in a lab (the server's own token) ---------
    browser = login(hub, "bob", hub.secrets["user_password"])
    home = browser.get(base, timeout=30)
    assert home.status_code == 200 and "The commons" in home.text and "for the lab" in home.text
    hub.start_server("alice")
    # alice's own token runs the kernel (the harness's admin token may only read in labs)
    own = hub.api("POST", "/users/alice/tokens", json={"scopes": ["access:servers!user=alice"]})

    class AsAlice:
        url, token = hub.url, own.json()["token"]
        remember_processes = hub.remember_processes

    out = Hub.execute(AsAlice(), "alice", (
        "from echoes_lab import commons\n"
        f"a = commons.annotate(commons.target.region({CANVAS!r}, 1, 2, 3, 4), 'from the lab',"
        " visibility='public')\n"
        "print(commons.where(), a['creator']['nickname'], a['id'])\n"))
    assert not out["errors"], out
    where, who, made_in_lab = out["stdout"].split()
    assert where == base and who == "alice"
    assert requests.get(made_in_lab).json()["body"]["value"] == "from the lab"

    # -- 200 concurrent writes by 4 users; the service is killed, then the hub restarted -----
    writers = {"alice": alice, "bob": bob, "carol": carol, "admin": admin}
    acked: list[str] = []
    lock = threading.Lock()

    def write(user: str, headers: dict):
        for i in range(50):
            while True:
                try:
                    r = requests.post(container, json=note(f"{user} {i}", visibility="public"),
                                      headers={**headers, **ld}, timeout=10)
                except requests.RequestException:
                    time.sleep(0.2)
                    continue
                if r.status_code == 201:
                    with lock:
                        acked.append(r.json()["id"])
                    time.sleep(0.1)  # paced, so that the restarts land in the middle of the writes
                    break
                time.sleep(0.2)  # 502/503 while the service or the proxy is away: try again

    threads = [threading.Thread(target=write, args=item) for item in writers.items()]
    for t in threads:
        t.start()
    wait_for(lambda: len(acked) >= 50, 60, "50 acknowledged writes")
    killed = service_pid(hub)
    os.kill(killed, signal.SIGKILL)  # a crash: the hub starts it again
    at_kill = len(acked)
    wait_for(lambda: len(acked) >= at_kill + 40, 90, "writes after the service restarted")
    at_restart = len(acked)
    assert service_pid(hub) not in (None, killed)
    hub.stop_hub()
    hub.start()
    for t in threads:
        t.join(180)
    assert len(acked) == 200 and not any(t.is_alive() for t in threads)
    assert at_kill < at_restart < 200  # both interruptions came in the middle of the writes
    for ann_id in acked:
        r = requests.get(ann_id, headers=admin)
        assert r.status_code == 200, ann_id
        versions = requests.get(ann_id + "/versions", headers=admin).json()
        assert versions["total"] == 1 and versions["first"]["items"][0]["action"] == "created"
