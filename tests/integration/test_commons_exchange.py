"""The commons exchanging with another commons and moderated by groups, through two real hubs
(issue 29, items 4 and 5).

Hub ``origin`` is another project's commons; hub ``copy`` imports its container on a schedule
(``[[commons.imports]]``, every 2 s). The import copies the origin's public annotations once,
however often it runs and across a restart of the service, with the origin's IRIs (``via``,
``canonical``) and creators; it follows updates and deletions at the origin. A source on a
loopback address is refused unless its settings allow private networks.

On ``origin``, the hub role ``commons-moderators-exmods`` (from ``[commons] moderators``) gives
``custom:commons-moderate!group=exmods``: its holder hides and shows again annotations of that
group's members, not others'; the moderation log says who did it and why.
"""

from __future__ import annotations

import os
import signal

import pytest
import requests

from harness import Hub, gone, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

LD = {"Content-Type": "application/ld+json"}
CANVAS = "https://iiif.example.org/manifest/exchange/canvas/p1"
OFF = {"gateway": {"enabled": False}, "workshops": {"enabled": False},
       "reports": {"enabled": False}, "projects": {"enabled": False},
       "knowledge": {"enabled": False}}


@pytest.fixture(scope="module")
def hubs(module_hubs):
    origin = module_hubs(**OFF, commons={"page_size": 5, "moderators": {"exmods": ["exmod"]}})
    container = f"{origin.url}/services/commons/annotations/"
    # the same origin by a name that resolves to loopback, without private_network: refused
    refused = container.replace("127.0.0.1", "localhost")
    copy = module_hubs(**OFF, commons={"imports": [
        {"url": container, "every": 2, "private_network": True},
        {"url": refused, "every": 2}]}, auth={"admins": ["excopyadmin"]})
    for name in ("exauthor", "exother", "exnobody"):
        origin.create_user(name)
    r = origin.api("POST", "/groups/exmods", json={"users": ["exauthor"]})
    assert r.status_code in (201, 409), r.text
    copy.create_user("excopyadmin", admin=True)
    copy.create_user("exreader")
    for hub in (origin, copy):
        wait_for(lambda h=hub: answers(f"{h.url}/services/commons/annotations/"), 90,
                 "the commons")
    return origin, copy, container, refused


def auth(hub: Hub, user: str, *scopes: str) -> dict:
    r = hub.api("POST", f"/users/{user}/tokens", json={
        "scopes": ["access:services!service=commons", *scopes], "note": "exchange"})
    assert r.status_code == 201, r.text
    return {"Authorization": f"token {r.json()['token']}"}


def note(text: str, visibility: str = "public") -> dict:
    return {"@context": "http://www.w3.org/ns/anno.jsonld", "type": "Annotation",
            "motivation": "commenting", "visibility": visibility,
            "body": {"type": "TextualBody", "value": text, "language": "en"},
            "target": {"type": "SpecificResource", "source": CANVAS,
                       "selector": {"type": "FragmentSelector", "value": "xywh=1,2,3,4"}}}


def answers(url: str) -> bool:
    """Whether ``url`` answers 200 now: a service being restarted listens before it serves
    (a request may wait or be reset meanwhile)."""
    try:
        return requests.get(url, timeout=10).status_code == 200
    except requests.RequestException:
        return False


def imports_state(copy: Hub, headers: dict) -> dict:
    r = requests.get(f"{copy.url}/services/commons/imports", headers=headers, timeout=30)
    assert r.status_code == 200, r.text
    return {s["source"]: s for s in r.json()["imports"]}


def two_more_runs(copy: Hub, headers: dict, source: str) -> dict:
    """Wait until a run that began after this call has ended; its state."""
    before = imports_state(copy, headers)[source]["runs"]

    def done():
        s = imports_state(copy, headers)[source]
        return s if s["runs"] >= before + 2 and s["finished"] and \
            s["finished"] >= s["started"] else None

    return wait_for(done, 90, f"two more imports from {source}")


def everything(base: str) -> list[dict]:
    """Every annotation anyone may read at ``base``, page by page (the protocol's paging)."""
    coll = requests.get(f"{base}annotations/", timeout=30).json()
    page, items = coll.get("first"), []
    while page:
        items += page["items"]
        page = requests.get(page["next"], timeout=30).json() if page.get("next") else None
    return items


def test_an_import_copies_the_public_annotations_once_however_often_it_runs(hubs):
    origin, copy, container, refused = hubs
    obase, cbase = f"{origin.url}/services/commons/", f"{copy.url}/services/commons/"
    author = {**auth(origin, "exauthor"), **LD}
    made = [requests.post(container, json=note(f"public note {i}"), headers=author,
                          timeout=30).json() for i in range(12)]
    for vis in ("private", "group:exmods"):
        r = requests.post(container, json=note(f"a {vis} note", vis), headers=author, timeout=30)
        assert r.status_code == 201
    reader = auth(copy, "exreader")
    state = two_more_runs(copy, reader, container)
    assert "error" not in state["result"], state["result"]
    copied = everything(cbase)
    assert len(copied) == 12, [a["body"]["value"] for a in copied]  # 3 pages of 5 at the origin
    assert {a["via"] for a in copied} == {m["id"] for m in made}
    assert {a["canonical"] for a in copied} == {m["id"] for m in made}
    assert all(a["id"].startswith(cbase + "annotations/") for a in copied)
    by_via = {a["via"]: a for a in copied}
    for m in made:  # the origin's creator and times, the same content
        a = by_via[m["id"]]
        assert a["creator"] == m["creator"] and a["creator"]["id"].startswith(obase)
        assert (a["created"], a["body"], a["target"], a["rights"]) == (
            m["created"], m["body"], m["target"], m["rights"])
    assert not [a for a in copied if "private" in a["body"]["value"]
                or "group" in a["body"]["value"]]

    # however often it runs: nothing twice
    state = two_more_runs(copy, reader, container)
    assert state["result"]["created"] == 0 and state["result"]["unchanged"] == 12
    assert len(everything(cbase)) == 12
    creates = requests.get(f"{cbase}changes", timeout=30).json()["totalItems"]
    assert creates == 12  # the copy's own change feed: each copy created once

    # the loopback source without private_network is refused, saying why and what to set
    bad = imports_state(copy, reader)[refused]
    assert "not a public address" in bad["result"]["error"]
    assert "private_network = true" in bad["result"]["error"]

    # changes at the origin: one updated, one deleted, one private made public
    upd = {k: v for k, v in made[0].items() if k != "visibility"}
    upd["body"] = {"type": "TextualBody", "value": "public note 0, corrected", "language": "en"}
    r = requests.put(made[0]["id"], json=upd, headers=author, timeout=30)
    assert r.status_code == 200, r.text
    assert requests.delete(made[1]["id"], headers=author, timeout=30).status_code == 204
    extra = requests.post(container, json=note("published later"), headers=author,
                          timeout=30).json()
    state = two_more_runs(copy, reader, container)
    copied = {a["via"]: a for a in everything(cbase)}
    assert set(copied) == {m["id"] for m in made[2:]} | {made[0]["id"], extra["id"]}
    assert copied[made[0]["id"]]["body"]["value"] == "public note 0, corrected"
    versions = requests.get(copied[made[0]["id"]]["id"] + "/versions", headers=reader,
                            timeout=30).json()
    assert [v["action"] for v in versions["first"]["items"]] == ["created", "updated"]

    # a restart of the copy's service (killed) neither forgets nor doubles
    pid = (copy.service_processes().get("commons") or [None])[0].pid
    runs = imports_state(copy, reader)[container]["runs"]
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: gone(pid), 30, "the killed service to end")
    wait_for(lambda: answers(f"{cbase}annotations/"), 120,
             "the commons again (the hub restarts its service)")
    state = two_more_runs(copy, reader, container)
    assert state["runs"] >= runs + 2 and state["result"]["created"] == 0
    assert len(everything(cbase)) == 12


def test_a_group_moderator_hides_their_groups_annotations_not_others(hubs):
    origin, _, container, _ = hubs
    obase = f"{origin.url}/services/commons/"
    member = requests.post(container, json=note("buy pigments at spam.example"),
                           headers={**auth(origin, "exauthor"), **LD}, timeout=30).json()
    outsider = requests.post(container, json=note("a note by someone outside the group"),
                             headers={**auth(origin, "exother"), **LD}, timeout=30).json()
    mod = auth(origin, "exmod", "custom:commons-moderate!group=exmods")
    nobody = auth(origin, "exnobody")

    r = requests.put(member["id"] + "/hidden", json={"reason": "advertising"}, headers=nobody,
                     timeout=30)
    assert r.status_code == 403 and "moderators" in r.json()["message"]
    r = requests.put(outsider["id"] + "/hidden", json={"reason": "off topic"}, headers=mod,
                     timeout=30)
    assert r.status_code == 403 and "exother, not a member" in r.json()["message"]
    assert requests.get(outsider["id"], timeout=30).status_code == 200

    r = requests.put(member["id"] + "/hidden", json={"reason": "advertising"}, headers=mod,
                     timeout=30)
    assert r.status_code == 200, r.text
    assert requests.get(member["id"], timeout=30).status_code == 404  # hidden from the public
    r = requests.delete(member["id"] + "/hidden", params={"reason": "the link was removed"},
                        headers=mod, timeout=30)
    assert r.status_code == 204 and requests.get(member["id"], timeout=30).status_code == 200

    # the hub role holds the scope: a token of someone without it cannot claim it
    r = origin.api("POST", "/users/exnobody/tokens",
                   json={"scopes": ["custom:commons-moderate!group=exmods"]})
    assert r.status_code == 400 and "not held by User exnobody" in r.text

    log = requests.get(f"{obase}moderation", headers=nobody, timeout=30).json()
    entries = [(e["action"], e["by"], e["summary"]) for e in log["orderedItems"]
               if e["object"] in (member["id"], outsider["id"])]
    assert entries == [("shown", "exmod", "the link was removed"),
                       ("hidden", "exmod", "advertising")]
